-- Migrations capability: versioned, checksummed, linted, lock-safe, reversible schema changes
-- run inside the database (docs/migrations.md). PostgreSQL's parser splits and describes the
-- scripts (storage._migration_statements, storage._lint_migration: Rust, the rules in
-- pg_storage_core::lint); the runner is here. The user's SQL runs with the caller's search_path;
-- everything else with the pinned one.
--
-- Stored SQL (docs/security.md): the scripts, checks and hooks kept here are run later (by the
-- background executor, by a resume, by every migration for hooks), so the tables holding them
-- are written only by the extension: storage.migrate / migrate_down (src/migrations: they note
-- the calling role, then do their bookkeeping as the extension's owner) and its workers. Nobody
-- is granted privileges on them, and a trigger refuses any other writer even if someone were.
-- Each piece of stored SQL runs as the role that wrote it (applied_by, a hook's author), and the
-- background executor runs only a script whose sha256 is the one it was queued with. Delegation
-- is membership in storage_migrator, never table privileges.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'storage_migrator') THEN
        CREATE ROLE storage_migrator NOLOGIN;
    END IF;
END
$$;

-- Every attempt: applied, reverted, pending (a non-transactional migration still running or
-- interrupted) or failed (rolled back; kept with its error, written by an autonomous
-- transaction). Dumped with the database.
CREATE TABLE storage._migration_history (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version text NOT NULL,
    description text NOT NULL DEFAULT '',
    checksum text NOT NULL,
    up text NOT NULL,
    down text,
    pre_check text,
    post_check text,
    transactional boolean NOT NULL DEFAULT true,
    allowed text[] NOT NULL DEFAULT '{}',
    status text NOT NULL CHECK (status IN ('applied', 'reverted', 'pending', 'failed')),
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by name NOT NULL,
    execution_time interval,
    done_statements integer NOT NULL DEFAULT 0,
    error text,
    lint_accepted jsonb NOT NULL DEFAULT '[]',
    validation jsonb NOT NULL DEFAULT '[]',
    search_path text,
    direction text NOT NULL DEFAULT 'up' CHECK (direction IN ('up', 'down')),
    resumes integer NOT NULL DEFAULT 0
);
CREATE INDEX _migration_history_version ON storage._migration_history (version, id);
COMMENT ON TABLE storage._migration_history IS
    'Internal: every attempt of storage.migrate / migrate_down; storage.migrations shows the latest per version.';
SELECT pg_catalog.pg_extension_config_dump('storage._migration_history', '');
SELECT pg_catalog.pg_extension_config_dump('storage._migration_history_id_seq', '');

CREATE VIEW storage.migrations AS
SELECT DISTINCT ON (h.version)
       h.version, h.description, h.checksum, h.applied_at, h.applied_by, h.execution_time, h.status,
       h.down IS NOT NULL AS has_down, h.lint_accepted, h.validation, h.error, h.transactional,
       h.done_statements, h.direction
  FROM storage._migration_history h
 ORDER BY h.version, h.id DESC;
COMMENT ON VIEW storage.migrations IS
    'One row per migration version, its latest attempt: checksum (sha256 of up), applied_at/by, execution_time, status (applied, reverted, pending, failed), has_down, the lint findings accepted, the post-migration validation, the error of a failed attempt, its direction (up, or down: a revert).';

CREATE TABLE storage.migration_hooks (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phase text NOT NULL CHECK (phase IN ('before', 'after')),
    position integer NOT NULL DEFAULT 0,
    sql text NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    description text,
    author name NOT NULL DEFAULT current_user,
    search_path text NOT NULL DEFAULT pg_catalog.current_setting('search_path')
);
COMMENT ON TABLE storage.migration_hooks IS
    'SQL run before and after every transactional migration (phase), in position order, inside it (a failing hook fails the migration), as its author with the search_path it was written with; e.g. ANALYZE of changed tables, SELECT storage.refresh_due(). Written only by the extension owner.';
SELECT pg_catalog.pg_extension_config_dump('storage.migration_hooks', '');
SELECT pg_catalog.pg_extension_config_dump('storage.migration_hooks_id_seq', '');

-- The lock that serializes migrators: storage.migrate takes it in SHARE UPDATE EXCLUSIVE mode
-- (as the extension's owner), the background executor holds it for the whole of a
-- non-transactional migration (a session lock). No other role may LOCK it (no privileges),
-- unlike the advisory lock key space, which every role shares; and the modes a role without
-- privileges can still hold on it (ACCESS SHARE, ROW SHARE, ROW EXCLUSIVE: parse analysis of a
-- PREPAREd SELECT ... FOR UPDATE or INSERT locks before it checks privileges) do not conflict
-- with that mode. It never holds a row.
CREATE TABLE storage._migration_lock ();
COMMENT ON TABLE storage._migration_lock IS
    'Internal: the lock that serializes migrations (no rows; no role but the extension owner may lock it).';

-- Refuses every write to a table holding stored SQL but the extension's own (its owner's), a
-- migration row whose checksum is not the sha256 of its script, and a custom metric whose SQL is
-- not one query. Every table of any capability that holds stored SQL is guarded here.
CREATE FUNCTION storage._stored_sql_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'USAGE') THEN
        RAISE EXCEPTION '%.% is written only by pg_storage_ext', quote_ident(TG_TABLE_SCHEMA), quote_ident(TG_TABLE_NAME)
              USING ERRCODE = 'insufficient_privilege',
                    DETAIL = 'It holds SQL that the extension runs later; only the extension (its owner) may change it.',
                    HINT = CASE WHEN TG_TABLE_NAME = 'custom_metrics'
                                THEN 'Ask the extension''s owner (a superuser) to add the metric.'
                                ELSE 'Migrate with storage.migrate and storage.migrate_down; delegate with GRANT storage_migrator TO a role.' END;
    END IF;
    IF TG_LEVEL = 'STATEMENT' THEN
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        RETURN OLD;
    ELSIF TG_TABLE_NAME = '_migration_history' THEN
        IF NEW.checksum IS DISTINCT FROM encode(sha256(convert_to(NEW.up, 'UTF8')), 'hex') THEN
            RAISE EXCEPTION 'a migration''s checksum is the sha256 of its up script'
                  USING ERRCODE = 'invalid_parameter_value', DETAIL = format('Migration %s.', NEW.version);
        END IF;
    ELSIF TG_TABLE_NAME = 'custom_metrics' THEN
        PERFORM storage._custom_metric_statement(NEW.sql);
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION storage._stored_sql_guard() IS
    'Internal: the trigger that lets only the extension (its owner) write the tables holding stored SQL (_migration_history, migration_hooks, custom_metrics), keeps a migration''s checksum the sha256 of its script and a custom metric''s SQL one query.';
CREATE TRIGGER _stored_sql_guard BEFORE INSERT OR UPDATE OR DELETE ON storage._migration_history
    FOR EACH ROW EXECUTE FUNCTION storage._stored_sql_guard();
CREATE TRIGGER _stored_sql_guard_truncate BEFORE TRUNCATE ON storage._migration_history
    FOR EACH STATEMENT EXECUTE FUNCTION storage._stored_sql_guard();
CREATE TRIGGER _stored_sql_guard BEFORE INSERT OR UPDATE OR DELETE ON storage.migration_hooks
    FOR EACH ROW EXECUTE FUNCTION storage._stored_sql_guard();
CREATE TRIGGER _stored_sql_guard_truncate BEFORE TRUNCATE ON storage.migration_hooks
    FOR EACH STATEMENT EXECUTE FUNCTION storage._stored_sql_guard();
CREATE TRIGGER _stored_sql_guard BEFORE INSERT OR UPDATE OR DELETE ON storage.custom_metrics
    FOR EACH ROW EXECUTE FUNCTION storage._stored_sql_guard();
CREATE TRIGGER _stored_sql_guard_truncate BEFORE TRUNCATE ON storage.custom_metrics
    FOR EACH STATEMENT EXECUTE FUNCTION storage._stored_sql_guard();
-- also under session_replication_role = replica
ALTER TABLE storage.custom_metrics ENABLE ALWAYS TRIGGER _stored_sql_guard;
ALTER TABLE storage.custom_metrics ENABLE ALWAYS TRIGGER _stored_sql_guard_truncate;
ALTER TABLE storage._migration_history ENABLE ALWAYS TRIGGER _stored_sql_guard;
ALTER TABLE storage._migration_history ENABLE ALWAYS TRIGGER _stored_sql_guard_truncate;
ALTER TABLE storage.migration_hooks ENABLE ALWAYS TRIGGER _stored_sql_guard;
ALTER TABLE storage.migration_hooks ENABLE ALWAYS TRIGGER _stored_sql_guard_truncate;

-- A version as a sortable key: its parts split at '.', '_' and '-', numbers compared as numbers
-- ('1.10' after '1.9').
CREATE FUNCTION storage._version_key(version text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT array_agg(CASE WHEN p ~ '^[0-9]+$' THEN lpad(ltrim(p, '0'), 40, '0') ELSE p END ORDER BY i)
      FROM regexp_split_to_table(version, '[._-]') WITH ORDINALITY AS t(p, i)
$$;
COMMENT ON FUNCTION storage._version_key(text) IS
    'Internal: a migration version as a sortable key (numeric parts compared as numbers).';

-- Whether a column's type change rewrites the table: a different type without a binary-coercible
-- cast, or the same type with a smaller (or new) type modifier.
CREATE FUNCTION storage._type_change_rewrites(tbl regclass, col text, new_type text) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a pg_attribute;
    t oid;
    m integer;
BEGIN
    SELECT * INTO a FROM pg_attribute WHERE attrelid = tbl AND attname = col AND NOT attisdropped;
    BEGIN
        t := to_regtype(new_type);
        m := to_regtypemod(new_type);
    EXCEPTION WHEN OTHERS THEN
        t := NULL;
    END;
    IF a.attrelid IS NULL OR t IS NULL THEN
        RETURN true;   -- unknown here: assume the worst
    ELSIF t = a.atttypid THEN
        RETURN NOT (m = -1 OR (a.atttypmod <> -1 AND m >= a.atttypmod));
    END IF;
    -- another type: only a binary-coercible cast without a length check keeps the rows
    RETURN m <> -1 OR NOT EXISTS (SELECT FROM pg_cast c WHERE c.castsource = a.atttypid AND c.casttarget = t AND c.castmethod = 'b');
END $$;
COMMENT ON FUNCTION storage._type_change_rewrites(regclass, text, text) IS
    'Internal: whether ALTER COLUMN … TYPE to new_type rewrites the table (no binary-coercible cast, or a narrower type modifier).';

CREATE FUNCTION storage.lint_migration(sql text, transactional boolean DEFAULT true)
RETURNS TABLE(statement integer, rule text, severity text, message text, hint text)
LANGUAGE sql VOLATILE AS $$
    -- no pinned search_path: the script's names resolve with the caller's; the body qualifies
    -- every name and passes the path to the pinned internal
    SELECT * FROM storage._lint_migration($1, coalesce($2, true), pg_catalog.current_setting('search_path'),
                                          storage._migration_setting('large_table_bytes', 104857600)::bigint)
$$;
COMMENT ON FUNCTION storage.lint_migration(text, boolean) IS
    'Lints a migration with PostgreSQL''s own parser, statement by statement: errors (on a table that existed before the migration): require-concurrent-index-creation, adding-not-nullable-field, changing-column-type (a rewrite), constraint-missing-not-valid (FOREIGN KEY, CHECK); warnings: adding-volatile-default, dropping-table, dropping-column, renaming-table, renaming-column, concurrently-in-transaction, access-exclusive-on-large-table (pg_storage_ext.migration_large_table_bytes). A syntax error is PostgreSQL''s (42601).';

-- pg_storage_ext.migration_lock_timeout in milliseconds (a duration: '2s', 500).
CREATE FUNCTION storage._migration_lock_ms() RETURNS integer
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(CASE WHEN s ~ '^\s*[0-9]+\s*$' THEN s::integer
                         ELSE (extract(epoch FROM s::interval) * 1000)::integer END, 2000)
      FROM (SELECT nullif(current_setting('pg_storage_ext.migration_lock_timeout', true), '') AS s) AS x
$$;
COMMENT ON FUNCTION storage._migration_lock_ms() IS
    'Internal: pg_storage_ext.migration_lock_timeout in milliseconds (2000 when unset).';

-- A migration setting: pg_storage_ext.migration_<name>, or the default.
CREATE FUNCTION storage._migration_setting(name text, fallback double precision) RETURNS double precision
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(nullif(current_setting('pg_storage_ext.migration_' || name, true), '')::float8, fallback)
$$;
COMMENT ON FUNCTION storage._migration_setting(text, double precision) IS
    'Internal: the setting pg_storage_ext.migration_<name> as a number, or fallback when unset.';

-- Post-migration validation: what a migration may have left behind.
CREATE FUNCTION storage._migration_validate() RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(jsonb_agg(f ORDER BY f ->> 'check', f ->> 'object'), '[]') FROM (
        SELECT jsonb_build_object('check', 'invalid index', 'object', i.indexrelid::regclass::text,
                                  'detail', 'left invalid: never used, maintained on every write') AS f
          FROM pg_index i WHERE NOT i.indisvalid
        UNION ALL
        SELECT jsonb_build_object('check', 'constraint not validated', 'object', format('%s on %s', quote_ident(c.conname), c.conrelid::regclass),
                                  'detail', 'NOT VALID: run ALTER TABLE … VALIDATE CONSTRAINT in a later migration')
          FROM pg_constraint c WHERE NOT c.convalidated AND c.conrelid <> 0
        UNION ALL
        SELECT jsonb_build_object('check', 'table without the application roles'' grants', 'object', c.oid::regclass::text,
                                  'detail', format('%s may use schema %s but has no SELECT on it: run storage.grant_schema(%L)', r.role, n.nspname, n.nspname))
          FROM storage._role_names('') r
          JOIN pg_roles ro ON ro.rolname = r.role
          JOIN pg_namespace n ON has_schema_privilege(ro.oid, n.oid, 'USAGE')
          JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
         WHERE r.kind = 'read_only_user' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'storage', 'audit', 'cron')
           AND n.nspname !~ '^pg_' AND NOT has_table_privilege(ro.oid, c.oid, 'SELECT')
    ) AS x
$$;
COMMENT ON FUNCTION storage._migration_validate() IS
    'Internal: post-migration validation: invalid indexes, constraints left NOT VALID, tables the application roles (storage.create_roles) may not read in schemas they use.';

-- Records a failed attempt in its own transaction (the caller's rolls back with the error).
CREATE FUNCTION storage._migration_record_failure(version text, description text, checksum text, up text, down text,
                                                  pre_check text, post_check text, transactional boolean, allowed text[],
                                                  error text, took interval, author name) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF version IS NULL OR length(version) > 200 OR up IS NULL OR checksum IS NULL OR transactional IS NULL THEN
        RETURN false;   -- not an attempt storage.migrate makes
    END IF;
    IF NOT coalesce(storage._autonomous(format(
        'INSERT INTO storage._migration_history (version, description, checksum, up, down, pre_check, post_check, transactional, allowed, status, applied_by, execution_time, error)
         VALUES (%L, %L, %L, %L, %L, %L, %L, %L, %L, ''failed'', %L, %L, %L)',
        version, description, checksum, up, down, pre_check, post_check, transactional, allowed, author, took, error)), false) THEN
        RAISE WARNING 'the failed attempt of migration % could not be recorded', version
              USING HINT = 'A background worker slot is needed (max_worker_processes); see the server log.';
        RETURN false;
    END IF;
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    -- never in place of the migration's own error
    RAISE WARNING 'the failed attempt of migration % could not be recorded: %', version, SQLERRM;
    RETURN false;
END $$;
COMMENT ON FUNCTION storage._migration_record_failure(text, text, text, text, text, text, text, boolean, text[], text, interval, name) IS
    'Internal: records a failed migration attempt of author through an autonomous transaction, so it stays visible after the caller''s rollback; false (with a WARNING) when it could not.';

-- A boolean check of the user's, run as its author: true, or an error naming it. One expression
-- (storage._migration_check_value refuses anything else with 42601).
CREATE FUNCTION storage._migration_check(what text, version text, sql text, caller_search_path text, author oid) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ok boolean;
BEGIN
    IF sql IS NULL THEN
        RETURN;
    END IF;
    ok := storage._migration_check_value(what, sql, caller_search_path, author);
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION '% of migration % is %', what, version, coalesce(ok::text, 'NULL')
              USING ERRCODE = 'check_violation',
                    DETAIL = format('%s: %s', what, sql),
                    HINT = CASE what WHEN 'pre_check' THEN 'The database is not in the state this migration expects; nothing was changed.'
                                     ELSE 'The migration did not produce what its post_check expects; its changes were rolled back.' END;
    END IF;
END $$;
COMMENT ON FUNCTION storage._migration_check(text, text, text, text, oid) IS
    'Internal: runs a pre_check or post_check (one SQL expression returning boolean) as its author with the caller''s search_path; false, NULL or an error aborts.';

-- Serializes migrators: storage._migration_lock in SHARE UPDATE EXCLUSIVE mode (until the
-- transaction ends), waited for at most `wait`. Taken as the extension's owner: no other role
-- may take a mode of it that conflicts.
CREATE FUNCTION storage._migration_lock(wait interval) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + wait;
BEGIN
    LOOP
        BEGIN
            LOCK TABLE storage._migration_lock IN SHARE UPDATE EXCLUSIVE MODE NOWAIT;
            RETURN;
        EXCEPTION WHEN lock_not_available THEN
            IF clock_timestamp() > deadline THEN
                RAISE EXCEPTION 'another migration is running'
                      USING ERRCODE = 'lock_not_available',
                            DETAIL = format('Waited %s for the migration lock.', wait),
                            HINT = 'See storage.migrations and pg_stat_activity; call again when it has finished.';
            END IF;
        END;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
COMMENT ON FUNCTION storage._migration_lock(interval) IS
    'Internal: takes the migration lock (storage._migration_lock in SHARE UPDATE EXCLUSIVE mode, until the transaction ends), waiting at most the given time.';

-- storage.migrate's work, as the extension's owner (src/migrations: storage._migrate notes the
-- calling role, `caller`, and switches): the bookkeeping as the owner, the migration's own SQL
-- (statements, checks) as the caller with the caller's search_path, hooks as their authors.
CREATE FUNCTION storage._migrate_owner(version text, description text, up text, down text, pre_check text, post_check text,
                                       transactional boolean, allow text[], caller_search_path text, caller oid) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    sum text;
    prev storage._migration_history;
    latest text;
    findings jsonb;
    blocking text;
    s record;
    t0 timestamptz := clock_timestamp();
    loaded text := storage.version();   -- the library defines the settings
    lock_ms integer := storage._migration_lock_ms();
    retries integer := storage._migration_setting('retries', 5)::integer;
    attempt integer := 0;
    state text;
    msg text;
    det text;
    hnt text;
    checked jsonb;
    id bigint;
    author name := (SELECT r.rolname FROM pg_roles r WHERE r.oid = caller);
    recorded boolean;
BEGIN
    PERFORM storage._require_primary('storage.migrate');
    IF coalesce(btrim(version), '') = '' OR up IS NULL THEN
        RAISE EXCEPTION 'a migration needs a version and an up script'
              USING ERRCODE = 'null_value_not_allowed', HINT = 'storage.migrate(''1'', ''create users'', ''CREATE TABLE users (id bigint PRIMARY KEY)'').';
    ELSIF length(version) > 200 OR version ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'a migration version is at most 200 characters, without control characters'
              USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a number or a date, e.g. ''2026.11.29.1''.';
    END IF;
    transactional := coalesce(transactional, true);
    allow := coalesce(allow, '{}');
    -- checks are one expression each (42601 otherwise), known before anything runs
    PERFORM storage._migration_expression('pre_check', pre_check) WHERE pre_check IS NOT NULL;
    PERFORM storage._migration_expression('post_check', post_check) WHERE post_check IS NOT NULL;
    sum := encode(sha256(convert_to(up, 'UTF8')), 'hex');
    -- a non-transactional migration still running holds the lock: no need to wait for it
    SELECT * INTO prev FROM storage._migration_history h WHERE h.version = version ORDER BY h.id DESC LIMIT 1;
    IF prev.status = 'pending' AND prev.direction = 'up' AND prev.checksum = sum
       AND EXISTS (SELECT FROM pg_stat_activity a WHERE a.backend_type = 'pg_storage_ext migration' AND a.datname = current_database()) THEN
        RETURN 'pending';
    END IF;
    PERFORM storage._migration_lock(make_interval(secs => greatest(lock_ms / 1000.0 * (retries + 1) * 3, 30)));
    SELECT * INTO prev FROM storage._migration_history h WHERE h.version = version ORDER BY h.id DESC LIMIT 1;
    IF prev.direction = 'down' AND prev.status = 'pending' THEN
        RAISE EXCEPTION 'migration % is being reverted', version
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    HINT = 'Wait for its down script to finish (storage.migrations), then apply it again.';
    END IF;
    IF prev.status IN ('applied', 'pending') THEN
        IF prev.checksum <> sum THEN
            RAISE EXCEPTION 'migration % was % with checksum %, this script has checksum %', version, prev.status, prev.checksum, sum
                  USING ERRCODE = 'data_exception',
                        DETAIL = format('Applied at %s by %s; an applied migration is never edited.', prev.applied_at, prev.applied_by),
                        HINT = 'Write the change as a new version; or revert this one with storage.migrate_down(' || quote_literal(version) || ') first.';
        ELSIF prev.status = 'pending' AND NOT prev.transactional
              AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.backend_type = 'pg_storage_ext migration' AND a.datname = current_database()) THEN
            -- interrupted (a crash, a killed worker): resume where it stopped. The stored script is
            -- this caller's own (same checksum), so it now runs as this caller.
            UPDATE storage._migration_history h SET applied_by = author, search_path = caller_search_path, resumes = 0 WHERE h.id = prev.id;
            IF storage._migration_launch(prev.id, sum, lock_ms, retries) IS NULL THEN
                RAISE EXCEPTION 'no background worker slot to resume migration %', version
                      USING ERRCODE = 'configuration_limit_exceeded', HINT = 'Raise max_worker_processes, or call again later.';
            END IF;
            RETURN 'pending';
        END IF;
        RETURN CASE prev.status WHEN 'applied' THEN 'already applied' ELSE 'pending' END;
    END IF;
    SELECT h.version INTO latest FROM storage.migrations h WHERE h.status = 'applied'
     ORDER BY storage._version_key(h.version) DESC LIMIT 1;
    IF latest IS NOT NULL AND storage._version_key(version) < storage._version_key(latest) AND NOT 'out_of_order' = ANY (allow) THEN
        RAISE EXCEPTION 'migration % is older than the latest applied migration %', version, latest
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'Give it a later version, or apply it anyway with allow => ARRAY[''out_of_order''].';
    END IF;
    -- lint: error-level findings refuse the migration unless their rule is allowed
    SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.statement), '[]'),
           string_agg(format('statement %s: %s: %s', f.statement, f.rule, f.message), E'\n' ORDER BY f.statement)
             FILTER (WHERE f.severity = 'error' AND NOT f.rule = ANY (allow))
      INTO findings, blocking
      FROM storage._lint_migration(up, transactional, caller_search_path,
                                   storage._migration_setting('large_table_bytes', 104857600)::bigint) f;
    IF blocking IS NOT NULL THEN
        RAISE EXCEPTION 'migration % has lint errors', version
              USING ERRCODE = 'invalid_parameter_value', DETAIL = blocking,
                    HINT = 'Fix them (the hints of storage.lint_migration say how), or accept a rule with allow => ARRAY[''rule-name''].';
    END IF;
    IF NOT transactional AND EXISTS (SELECT FROM storage._migration_statements(up) m
                                      WHERE m.tag IN ('BEGIN', 'START TRANSACTION', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE',
                                                      'PREPARE TRANSACTION', 'COMMIT PREPARED', 'ROLLBACK PREPARED')) THEN
        RAISE EXCEPTION 'a migration statement may not begin or end a transaction'
              USING ERRCODE = 'active_sql_transaction',
                    HINT = 'Each statement of a non-transactional migration runs in a transaction of its own; remove BEGIN, COMMIT, ROLLBACK and SAVEPOINT.';
    END IF;
    IF NOT transactional THEN
        -- its pre_check now, in this transaction; its post_check after its last statement
        PERFORM storage._migration_check('pre_check', version, pre_check, caller_search_path, caller);
        INSERT INTO storage._migration_history AS h (version, description, checksum, up, down, pre_check, post_check, transactional,
                                                     allowed, status, lint_accepted, search_path, applied_by)
        VALUES (version, coalesce(description, ''), sum, up, down, pre_check, post_check, false, allow, 'pending', findings,
                caller_search_path, author)
        RETURNING h.id INTO id;
        IF storage._migration_launch(id, sum, lock_ms, retries) IS NULL THEN
            RAISE EXCEPTION 'no background worker slot for migration %', version
                  USING ERRCODE = 'configuration_limit_exceeded', HINT = 'Raise max_worker_processes, or call again later.';
        END IF;
        RETURN 'pending';
    END IF;
    -- the whole migration in one subtransaction, retried from the start when a lock wait times
    -- out (so no lock is held while it waits to retry)
    LOOP
        attempt := attempt + 1;
        BEGIN
            PERFORM storage._migration_check('pre_check', version, pre_check, caller_search_path, caller);
            FOR s IN SELECT k.id, k.sql, k.search_path, k.author FROM storage.migration_hooks k WHERE k.enabled AND k.phase = 'before' ORDER BY k.position, k.id LOOP
                PERFORM storage._migration_run(s.sql, s.search_path, storage._migration_author(s.author, format('before hook %s', s.id)));
            END LOOP;
            PERFORM pg_catalog.set_config('lock_timeout', lock_ms || 'ms', true);
            FOR s IN SELECT m.statement FROM storage._migration_statements(up) m ORDER BY m.n LOOP
                PERFORM storage._migration_run(s.statement, caller_search_path, caller);
            END LOOP;
            PERFORM pg_catalog.set_config('lock_timeout', '0', true);
            FOR s IN SELECT k.id, k.sql, k.search_path, k.author FROM storage.migration_hooks k WHERE k.enabled AND k.phase = 'after' ORDER BY k.position, k.id LOOP
                PERFORM storage._migration_run(s.sql, s.search_path, storage._migration_author(s.author, format('after hook %s', s.id)));
            END LOOP;
            PERFORM storage._migration_check('post_check', version, post_check, caller_search_path, caller);
            EXIT;
        EXCEPTION
            WHEN lock_not_available THEN
                IF attempt > retries THEN
                    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
                    PERFORM storage._migration_record_failure(version, coalesce(description, ''), sum, up, down, pre_check, post_check,
                                                              true, allow, msg, clock_timestamp() - t0, author);
                    RAISE EXCEPTION 'migration % gave up: a lock was not granted within % ms, % times', version, lock_ms, attempt
                          USING ERRCODE = 'lock_not_available', DETAIL = msg,
                                HINT = 'A long transaction holds a lock the migration needs (pg_stat_activity, storage.health()); retry when it ends, or raise pg_storage_ext.migration_lock_timeout / migration_retries.';
                END IF;
                PERFORM pg_sleep(least(attempt, 10) * lock_ms / 1000.0 / 2);
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
                recorded := storage._migration_record_failure(version, coalesce(description, ''), sum, up, down, pre_check, post_check,
                                                              true, allow, msg, clock_timestamp() - t0, author);
                RAISE EXCEPTION USING ERRCODE = state, MESSAGE = format('migration %s failed: %s', version, msg),
                                      DETAIL = coalesce(nullif(det, ''), CASE WHEN recorded
                                          THEN 'Nothing of it was applied; the attempt is recorded in storage.migrations.'
                                          ELSE 'Nothing of it was applied; the attempt could not be recorded (see the WARNING).' END),
                                      HINT = coalesce(nullif(hnt, ''), 'Fix the script and call storage.migrate again with the same version.');
        END;
    END LOOP;
    checked := storage._migration_validate();
    INSERT INTO storage._migration_history (version, description, checksum, up, down, pre_check, post_check, transactional,
                                            allowed, status, execution_time, lint_accepted, validation, done_statements, applied_by,
                                            search_path)
    VALUES (version, coalesce(description, ''), sum, up, down, pre_check, post_check, true, allow, 'applied',
            clock_timestamp() - t0, findings, checked, (SELECT count(*) FROM storage._migration_statements(up)), author,
            caller_search_path);
    IF jsonb_array_length(checked) > 0 THEN
        RETURN 'applied; validation: ' || (SELECT string_agg(format('%s %s', c ->> 'check', c ->> 'object'), '; ') FROM jsonb_array_elements(checked) c);
    END IF;
    RETURN 'applied';
END $$;
COMMENT ON FUNCTION storage._migrate_owner(text, text, text, text, text, text, boolean, text[], text, oid) IS
    'Internal: storage.migrate''s work as the extension owner; the migration''s SQL runs as caller with the caller''s search_path.';

CREATE FUNCTION storage.migrate(version text, description text, up text, down text DEFAULT NULL, pre_check text DEFAULT NULL,
                                post_check text DEFAULT NULL, transactional boolean DEFAULT true, allow text[] DEFAULT '{}')
RETURNS text
LANGUAGE sql VOLATILE AS $$
    -- no pinned search_path: the migration's SQL runs with the caller's; the body qualifies
    -- every name and passes the path to the pinned internal
    SELECT storage._migrate($1, $2, $3, $4, $5, $6, coalesce($7, true), $8, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION storage.migrate(text, text, text, text, text, text, boolean, text[]) IS
    'Applies migration version once: ''applied'' (with the post-migration validation appended when it found something), ''already applied'' (same checksum), or ''pending'' (transactional => false: run statement by statement, top-level, by a background worker; resumed by calling again after an interruption). Serialized by an advisory lock; a changed script of an applied version, an older version (unless allow names out_of_order) and error-level lint findings (unless allow names the rule) are refused; pre_check and post_check (SQL returning boolean) and any error roll the whole migration back, and the failed attempt stays visible in storage.migrations. Each statement waits at most pg_storage_ext.migration_lock_timeout for a lock; the whole migration is retried pg_storage_ext.migration_retries times.';

-- storage.migrate_down's work, as the extension's owner (as storage._migrate_owner).
CREATE FUNCTION storage._migrate_down_owner(version text, caller_search_path text, caller oid, force boolean) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    cur storage._migration_history;
    latest text;
    s record;
    t0 timestamptz := clock_timestamp();
    loaded text := storage.version();
    lock_ms integer := storage._migration_lock_ms();
    retries integer := storage._migration_setting('retries', 5)::integer;
    author name := (SELECT r.rolname FROM pg_roles r WHERE r.oid = caller);
    reverting boolean;
    id bigint;
BEGIN
    PERFORM storage._require_primary('storage.migrate_down');
    force := coalesce(force, false);
    PERFORM storage._migration_lock(interval '30 seconds');
    -- the newest version still applied, wholly or partly (a down that failed or is running)
    SELECT h.version INTO latest FROM storage.migrations h
     WHERE h.status = 'applied' OR (h.direction = 'down' AND h.status IN ('pending', 'failed'))
     ORDER BY storage._version_key(h.version) DESC LIMIT 1;
    SELECT * INTO cur FROM storage._migration_history h WHERE h.version = version ORDER BY h.id DESC LIMIT 1;
    -- a non-transactional down that was interrupted or failed is the one to finish (or to mark)
    reverting := cur.direction = 'down' AND cur.status IN ('pending', 'failed');
    IF reverting AND cur.status = 'pending'
       AND EXISTS (SELECT FROM pg_stat_activity a WHERE a.backend_type = 'pg_storage_ext migration' AND a.datname = current_database()) THEN
        RETURN 'pending';
    ELSIF NOT reverting AND cur.status IS DISTINCT FROM 'applied' THEN
        RAISE EXCEPTION 'migration % is not applied', version
              USING ERRCODE = 'invalid_parameter_value', DETAIL = format('Its status is %s.', coalesce(cur.status, 'unknown (never run)')),
                    HINT = 'See storage.migrations.';
    ELSIF NOT reverting AND version <> latest THEN
        RAISE EXCEPTION 'migration % is not the latest applied one (%)', version, latest
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = format('Revert %s first: migrations are reverted newest first (a down that cannot run: revert it by hand, then storage.migrate_down(%L, force => true)).', latest, latest);
    ELSIF force AND author IS DISTINCT FROM cur.applied_by
          AND NOT pg_has_role(caller, (SELECT e.extowner FROM pg_extension e WHERE e.extname = 'pg_storage_ext'), 'USAGE') THEN
        RAISE EXCEPTION 'only the role that applied migration % (%) or the extension owner may mark it reverted with force', version, cur.applied_by
              USING ERRCODE = 'insufficient_privilege',
                    HINT = 'Revert it with its down script (storage.migrate_down without force), or ask that role.';
    ELSIF force THEN
        -- the way out of a down that cannot run (reverted by hand): recorded, nothing run
        INSERT INTO storage._migration_history (version, description, checksum, up, down, pre_check, post_check, transactional,
                                                allowed, status, execution_time, validation, applied_by, direction, error)
        VALUES (cur.version, cur.description, cur.checksum, cur.up, cur.down, cur.pre_check, cur.post_check, cur.transactional,
                cur.allowed, 'reverted', clock_timestamp() - t0, storage._migration_validate(), author, 'down',
                format('marked reverted by %s with force => true: its down script was not run%s', author,
                       CASE WHEN reverting THEN format(' (the down that %s: %s)', cur.status, coalesce(cur.error, 'interrupted')) ELSE '' END));
        RETURN 'reverted (forced: nothing was run)';
    ELSIF cur.down IS NULL THEN
        RAISE EXCEPTION 'migration % has no down script', version
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    HINT = 'Write the reverse change as a new migration (storage.migrate with a later version), or, once reverted by hand, record it with storage.migrate_down(' || quote_literal(version) || ', force => true).';
    END IF;
    IF NOT cur.transactional THEN
        -- the way its up ran: statement by statement, top-level, by the background executor, as
        -- the role that wrote it; resumable where it stopped
        IF reverting THEN
            UPDATE storage._migration_history h SET status = 'pending', error = NULL, resumes = 0 WHERE h.id = cur.id;
            id := cur.id;
        ELSE
            INSERT INTO storage._migration_history AS h (version, description, checksum, up, down, pre_check, post_check, transactional,
                                                         allowed, status, applied_by, direction, search_path)
            VALUES (cur.version, cur.description, cur.checksum, cur.up, cur.down, cur.pre_check, cur.post_check, false,
                    cur.allowed, 'pending', cur.applied_by, 'down', cur.search_path)
            RETURNING h.id INTO id;
        END IF;
        IF storage._migration_launch(id, encode(sha256(convert_to(cur.down, 'UTF8')), 'hex'), lock_ms, retries) IS NULL THEN
            RAISE EXCEPTION 'no background worker slot to revert migration %', version
                  USING ERRCODE = 'configuration_limit_exceeded', HINT = 'Raise max_worker_processes, or call again later.';
        END IF;
        RETURN 'pending';
    END IF;
    PERFORM pg_catalog.set_config('lock_timeout', lock_ms || 'ms', true);
    -- the stored down script runs as the role that wrote it (who applied that version), never
    -- with the rights of whoever reverts it
    -- with the search_path it was written with, whoever reverts it
    FOR s IN SELECT m.statement FROM storage._migration_statements(cur.down) m ORDER BY m.n LOOP
        PERFORM storage._migration_run(s.statement, coalesce(cur.search_path, 'public'),
                                       storage._migration_author(cur.applied_by, format('the down script of migration %s', version)));
    END LOOP;
    PERFORM pg_catalog.set_config('lock_timeout', '0', true);
    INSERT INTO storage._migration_history (version, description, checksum, up, down, pre_check, post_check, transactional,
                                            allowed, status, execution_time, validation, applied_by, direction)
    VALUES (cur.version, cur.description, cur.checksum, cur.up, cur.down, cur.pre_check, cur.post_check, cur.transactional,
            cur.allowed, 'reverted', clock_timestamp() - t0, storage._migration_validate(), author, 'down');
    RETURN 'reverted';
END $$;
COMMENT ON FUNCTION storage._migrate_down_owner(text, text, oid, boolean) IS
    'Internal: storage.migrate_down''s work as the extension owner; the down script runs as the role that wrote it, with the caller''s search_path (transactional), or is queued for the executor (non-transactional); force records it reverted without running it.';

-- The role a hook runs as: its author, who must still exist.
CREATE FUNCTION storage._migration_author(author name, what text) RETURNS oid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r oid := (SELECT x.oid FROM pg_roles x WHERE x.rolname = author);
BEGIN
    IF r IS NULL THEN
        RAISE EXCEPTION '% was written by role %, which no longer exists', what, author
              USING ERRCODE = 'undefined_object',
                    DETAIL = 'Stored SQL runs only as the role that wrote it.',
                    HINT = 'Write it again as an existing role (a hook: delete it and insert it again).';
    END IF;
    RETURN r;
END $$;
COMMENT ON FUNCTION storage._migration_author(name, text) IS
    'Internal: the OID of the role that wrote a piece of stored SQL (a hook, a down script: the role it runs as); an error naming what when that role no longer exists.';

CREATE FUNCTION storage.migrate_down(version text, force boolean DEFAULT false) RETURNS text
LANGUAGE sql VOLATILE AS $$
    -- no pinned search_path: as storage.migrate
    SELECT storage._migrate_down($1, pg_catalog.current_setting('search_path'), coalesce($2, false))
$$;
COMMENT ON FUNCTION storage.migrate_down(text, boolean) IS
    'Reverts the latest applied migration (only that one) with its stored down script, as the role that wrote it: in one transaction with the same lock_timeout (''reverted''), or, for a migration applied with transactional => false, statement by statement by the background executor (''pending''; called again after an interruption or a failure, it resumes where the down stopped). force => true records the version reverted without running anything (after reverting it by hand: the way out of a down that cannot run). An error with a hint when the version is not the latest applied one or has no down script.';

-- The non-transactional executor's side (src/maintenance: the worker runs each statement as a
-- top-level statement and records progress here, each in its own transaction).
CREATE FUNCTION storage._migration_next(id bigint, queued_checksum text, OUT n integer, OUT statement text, OUT drop_first text,
                                        OUT author oid, OUT search_path text) RETURNS SETOF record
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h storage._migration_history;
    idx oid;
    refused text;
    script text;
BEGIN
    SELECT * INTO h FROM storage._migration_history x WHERE x.id = _migration_next.id AND x.status = 'pending';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- only the script that was verified when it was queued, as the role that queued it
    author := (SELECT r.oid FROM pg_roles r WHERE r.rolname = h.applied_by);
    search_path := coalesce(h.search_path, 'public');
    script := CASE h.direction WHEN 'down' THEN h.down ELSE h.up END;
    IF h.checksum IS DISTINCT FROM encode(sha256(convert_to(h.up, 'UTF8')), 'hex') OR length(queued_checksum) < 32
       OR left(encode(sha256(convert_to(script, 'UTF8')), 'hex'), length(queued_checksum)) IS DISTINCT FROM queued_checksum THEN
        refused := 'the stored script is not the one that was queued (its checksum differs): nothing more of it was run';
    ELSIF author IS NULL THEN
        refused := format('the role that queued it, %s, no longer exists: nothing more of it was run', h.applied_by);
    END IF;
    IF refused IS NOT NULL THEN
        UPDATE storage._migration_history x SET status = 'failed', error = refused WHERE x.id = h.id;
        RETURN;
    END IF;
    SELECT m.n, m.statement, m.index_name INTO n, statement, drop_first
      FROM storage._migration_statements(script) m WHERE m.n = h.done_statements + 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- an index build interrupted halfway left an invalid index of that name (resolved with the
    -- migration's search_path): dropped first
    IF drop_first IS NOT NULL THEN
        PERFORM pg_catalog.set_config('search_path', coalesce(h.search_path, 'public'), true);
        SELECT i.indexrelid INTO idx FROM pg_catalog.pg_index i
         WHERE i.indexrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(drop_first) AND NOT i.indisvalid;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        drop_first := CASE WHEN idx IS NOT NULL THEN format('DROP INDEX CONCURRENTLY %s', idx::regclass) END;
    END IF;
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION storage._migration_next(bigint, text) IS
    'Internal: the next statement of a pending non-transactional migration, the DROP of an invalid index an interrupted build of it left, and the role to run them as (its author) with its search_path; nothing, and the migration marked failed, when its script is not the one queued with queued_checksum.';

CREATE FUNCTION storage._migration_progress(id bigint, n integer, error text, took interval) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h storage._migration_history;
BEGIN
    SELECT * INTO h FROM storage._migration_history x WHERE x.id = _migration_progress.id FOR UPDATE;
    IF error IS NOT NULL THEN
        UPDATE storage._migration_history x SET status = 'failed', error = _migration_progress.error,
               execution_time = coalesce(x.execution_time, '0') + took
         WHERE x.id = _migration_progress.id;
    ELSIF h.direction = 'down' AND n >= (SELECT count(*) FROM storage._migration_statements(h.down)) THEN
        -- the last statement of a down script: reverted
        UPDATE storage._migration_history x SET status = 'reverted', done_statements = n, validation = storage._migration_validate(),
               execution_time = coalesce(x.execution_time, '0') + took
         WHERE x.id = _migration_progress.id;
    ELSIF h.direction = 'up' AND n >= (SELECT count(*) FROM storage._migration_statements(h.up)) THEN
        -- the last statement: the post_check decides (a non-transactional migration cannot be
        -- rolled back; a false post_check marks it failed, with its statements done)
        BEGIN
            PERFORM storage._migration_check('post_check', h.version, h.post_check, coalesce(h.search_path, 'public'),
                                             (SELECT r.oid FROM pg_roles r WHERE r.rolname = h.applied_by));
            UPDATE storage._migration_history x SET status = 'applied', done_statements = n, validation = storage._migration_validate(),
                   execution_time = coalesce(x.execution_time, '0') + took
             WHERE x.id = _migration_progress.id;
        EXCEPTION WHEN OTHERS THEN
            UPDATE storage._migration_history x SET status = 'failed', done_statements = n, error = SQLERRM,
                   execution_time = coalesce(x.execution_time, '0') + took
             WHERE x.id = _migration_progress.id;
        END;
    ELSE
        UPDATE storage._migration_history x SET done_statements = n, execution_time = coalesce(x.execution_time, '0') + took
         WHERE x.id = _migration_progress.id;
    END IF;
END $$;
COMMENT ON FUNCTION storage._migration_progress(bigint, integer, text, interval) IS
    'Internal: records that statement n of a pending migration is done (applied after the last), or that it failed.';

-- Self-healing after a crash, a restart or a terminated worker, found by the next run of the
-- heartbeat job (every few seconds) or of the maintenance plan, without anyone stepping in:
-- maintenance commands whose worker is gone without reporting are marked failed, and an
-- interrupted non-transactional migration (pending, no executor) is started again where it
-- stopped, as its author with its search_path, unless pg_storage_ext.migration_auto_resume is
-- off. Returns what it did (NULL when nothing).
CREATE FUNCTION storage._recover() RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET lock_timeout = '1s' AS $$
DECLARE
    h storage._migration_history;
    stale bigint;
    done text[] := '{}';
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN NULL;
    END IF;
    UPDATE storage.maintenance_log l
       SET outcome = 'failed: the maintenance worker exited without reporting (see the server log)', finished = now()
     WHERE l.outcome IN ('queued', 'running') AND l.queued < now() - interval '10 seconds'
       AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.pid = l.pid AND a.backend_type = 'pg_storage_ext maintenance');
    GET DIAGNOSTICS stale = ROW_COUNT;
    IF stale > 0 THEN
        done := done || format('%s maintenance command(s) marked failed', stale);
    END IF;
    IF storage._migration_setting_on('auto_resume')
       AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.backend_type = 'pg_storage_ext migration' AND a.datname = current_database()) THEN
        SELECT * INTO h FROM storage._migration_history x WHERE x.status = 'pending' AND NOT x.transactional ORDER BY x.id LIMIT 1;
        IF FOUND AND h.resumes >= 3 THEN
            -- an executor that keeps stopping (a statement that ends its own session, a crash it
            -- causes) is not started again and again: failed, with the way on
            UPDATE storage._migration_history x
               SET status = 'failed',
                   error = format('the executor stopped %s times without finishing (see the server log); not resumed again by itself: call storage.migrate again to resume it', h.resumes + 1)
             WHERE x.id = h.id;
            done := done || format('migration %s failed: interrupted too often', h.version);
        ELSIF FOUND THEN
            UPDATE storage._migration_history x SET resumes = x.resumes + 1 WHERE x.id = h.id;
            IF storage._migration_launch(h.id, encode(sha256(convert_to(CASE h.direction WHEN 'down' THEN h.down ELSE h.up END, 'UTF8')), 'hex'),
                                         storage._migration_lock_ms(), storage._migration_setting('retries', 5)::integer) IS NOT NULL THEN
                done := done || format('migration %s resumed', h.version);
            END IF;
        END IF;
    END IF;
    -- online schema changes whose worker is gone
    IF storage._migration_setting_on('auto_resume') THEN
        done := done || storage._schema_change_recover();
    END IF;
    -- the change feeds' notifier, gone after a restart
    IF EXISTS (SELECT FROM audit._feed)
       AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.backend_type = 'pg_storage_ext feed notifier' AND a.datname = current_database()) THEN
        IF audit._feed_notifier() IS NOT NULL THEN
            done := done || 'change feed notifier started'::text;
        END IF;
    END IF;
    RETURN nullif(array_to_string(done, '; '), '');
END $$;
COMMENT ON FUNCTION storage._recover() IS
    'Internal: self-healing run by the heartbeat job and the maintenance plan: maintenance commands whose worker is gone marked failed; an interrupted non-transactional migration resumed where it stopped (unless pg_storage_ext.migration_auto_resume is off); the change feeds'' notifier started when feeds exist and it does not run.';

-- A boolean migration setting: pg_storage_ext.migration_<name>, on when unset.
CREATE FUNCTION storage._migration_setting_on(name text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(nullif(current_setting('pg_storage_ext.migration_' || name, true), '')::boolean, true)
$$;
COMMENT ON FUNCTION storage._migration_setting_on(text) IS
    'Internal: the boolean setting pg_storage_ext.migration_<name>, true when unset.';

GRANT SELECT ON storage.migrations TO pg_monitor;
-- Delegation: GRANT storage_migrator TO a role. The entry points switch to the extension's
-- owner for the bookkeeping; the migration's SQL runs as the calling role.
GRANT SELECT ON storage.migrations TO storage_migrator;
GRANT EXECUTE ON FUNCTION storage.migrate(text, text, text, text, text, text, boolean, text[]),
                          storage.migrate_down(text, boolean),
                          storage.lint_migration(text, boolean),
                          storage._migrate(text, text, text, text, text, text, boolean, text[], text),
                          storage._migrate_down(text, text, boolean),
                          storage._lint_migration(text, boolean, text, bigint),
                          storage._migration_setting(text, double precision),
                          storage._type_change_rewrites(regclass, text, text)
   TO storage_migrator;
COMMENT ON FUNCTION storage._autonomous(text) IS
    'Internal: runs SQL in a transaction of its own (a background worker connected as the current role) and waits for it: true when it committed. Keeps a failed migration''s record.';
COMMENT ON FUNCTION storage._lint_migration(text, boolean, text, bigint) IS
    'Internal: storage.lint_migration with the caller''s search_path and the large-table size.';
COMMENT ON FUNCTION storage._migration_launch(bigint, text, integer, integer) IS
    'Internal: starts the worker that runs a pending non-transactional migration statement by statement, top-level, as the role that queued it, once its script is verified against checksum; returns its pid, NULL when no worker slot is free.';
COMMENT ON FUNCTION storage._migrate(text, text, text, text, text, text, boolean, text[], text) IS
    'Internal: storage.migrate with the caller''s search_path: notes the calling role and does the work as the extension owner (storage._migrate_owner).';
COMMENT ON FUNCTION storage._migrate_down(text, text, boolean) IS
    'Internal: storage.migrate_down with the caller''s search_path: notes the calling role and does the work as the extension owner (storage._migrate_down_owner).';
COMMENT ON FUNCTION storage._migration_run(text, text, oid) IS
    'Internal: runs stored SQL of a migration (a statement, a hook) as the role that wrote it, with the given search_path.';
COMMENT ON FUNCTION storage._migration_expression(text, text) IS
    'Internal: the statement that evaluates a pre_check or post_check; 42601 unless it is exactly one SQL expression.';
COMMENT ON FUNCTION storage._migration_check_value(text, text, text, oid) IS
    'Internal: the value of a pre_check or post_check (one SQL expression) evaluated as its author with the given search_path.';
COMMENT ON FUNCTION storage._migration_statements(text) IS
    'Internal: the statements of a migration as PostgreSQL''s parser splits them: position, text, command tag, and the index a CREATE INDEX names.';

-- ==========================================================================================
-- Online schema changes (docs/migrations.md, "Online schema changes"): a column's type, NOT NULL,
-- a CHECK, a foreign key, without locking writers out. The call does the short part in the
-- caller's transaction (a new column and the trigger keeping it in step, a constraint NOT
-- VALID); a worker of its own ("pg_storage_ext schema change", src/migrations/online.rs) does
-- the rest, each unit of work in a transaction of its own, and records where it is here, so a
-- crash, a restart or a killed worker resumes from there. Every statement on the user's table
-- runs as its owner (storage._run_as_owner), and the user's expressions are bound once, when
-- the call is made, with the caller's search_path (a CHECK in pg_constraint, a conversion in a
-- function with a SQL-standard body): the worker runs no SQL text a user wrote.
CREATE TABLE storage._schema_changes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    relid oid NOT NULL,
    table_name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('alter_column_type', 'add_not_null', 'add_foreign_key', 'add_check')),
    column_name name,
    new_type text,
    using_expr text,
    constraint_name name,
    columns name[],
    ref oid,
    ref_columns name[],
    made_index name,
    lock_timeout_ms integer NOT NULL DEFAULT 2000,
    batch_rows integer NOT NULL DEFAULT 10000,
    retries integer NOT NULL DEFAULT 5,
    state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'failed', 'done', 'aborted')),
    phase text NOT NULL,
    step integer NOT NULL DEFAULT 0,
    plan jsonb NOT NULL DEFAULT '{}',
    leaves oid[],
    leaf_blocks bigint[],
    leaf integer NOT NULL DEFAULT 1,
    block bigint NOT NULL DEFAULT 0,
    rows_done bigint NOT NULL DEFAULT 0,
    rows_total bigint,
    requested_by name NOT NULL,
    requested_pid integer,
    requested_backend timestamptz,
    worker_pid integer,
    resumes integer NOT NULL DEFAULT 0,
    started_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    error text
);
CREATE UNIQUE INDEX _schema_changes_open ON storage._schema_changes (relid) WHERE state IN ('running', 'failed');
COMMENT ON TABLE storage._schema_changes IS
    'Internal: every online schema change (storage.alter_column_type, add_not_null, add_foreign_key, add_check): its phase and position, written only by the extension; storage.schema_changes shows the unfinished ones.';
SELECT pg_catalog.pg_extension_config_dump('storage._schema_changes', '');
SELECT pg_catalog.pg_extension_config_dump('storage._schema_changes_id_seq', '');
CREATE TRIGGER _stored_sql_guard BEFORE INSERT OR UPDATE OR DELETE ON storage._schema_changes
    FOR EACH ROW EXECUTE FUNCTION storage._stored_sql_guard();
CREATE TRIGGER _stored_sql_guard_truncate BEFORE TRUNCATE ON storage._schema_changes
    FOR EACH STATEMENT EXECUTE FUNCTION storage._stored_sql_guard();
ALTER TABLE storage._schema_changes ENABLE ALWAYS TRIGGER _stored_sql_guard;
ALTER TABLE storage._schema_changes ENABLE ALWAYS TRIGGER _stored_sql_guard_truncate;

CREATE VIEW storage.schema_changes AS
SELECT s.id, s.relid::pg_catalog.regclass AS table_name, s.kind,
       coalesce(s.column_name::text, pg_catalog.array_to_string(s.columns, ', ')) AS column_name,
       coalesce(s.new_type, s.constraint_name::text) AS change, s.state, s.phase,
       s.rows_done, s.rows_total,
       CASE WHEN s.rows_total > 0 THEN pg_catalog.round(100.0 * least(s.rows_done, s.rows_total) / s.rows_total, 1) END AS percent,
       s.started_at, s.updated_at, s.requested_by,
       CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_stat_activity a
                          WHERE a.pid = s.worker_pid AND a.backend_type = 'pg_storage_ext schema change') THEN s.worker_pid END AS worker_pid,
       -- an error quotes rows: only for those with the table owner's privileges
       CASE WHEN pg_catalog.pg_has_role(current_user, (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = s.relid), 'USAGE')
            THEN s.error END AS error
  FROM storage._schema_changes s
 WHERE s.state IN ('running', 'failed');
COMMENT ON VIEW storage.schema_changes IS
    'The unfinished online schema changes (the error only for roles with the table owner''s privileges): table, kind (alter_column_type, add_not_null, add_foreign_key, add_check), column, the new type or constraint, state (running, or failed with its error: call the function again to resume, or storage.abort_schema_change), phase (backfill, index, not null, swap, check, validate), rows done of the estimated total, the worker''s pid while it runs.';

-- The names an online change gives to what it makes (pg_storage_core knows none of them: plain
-- SQL): the new column, its functions, its trigger, its temporary indexes and check.
CREATE FUNCTION storage._schema_change_name(id bigint, what text) RETURNS name
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT (CASE what WHEN 'trigger' THEN 'zz_pgse_schema_change_' ELSE '_pgse_sc' END || id || CASE what WHEN 'trigger' THEN '' ELSE '_' || what END)::name
$$;
COMMENT ON FUNCTION storage._schema_change_name(bigint, text) IS
    'Internal: the name of what online schema change id makes (what: new, sync, trigger, backfill, not_null, i<oid of the index it replaces>; for a copy: copy, log, logger, and c<index oid>).';

-- The tables holding a table's rows: itself, or its partitions at any depth (audit._partitions;
-- plain inheritance trees are refused).
CREATE FUNCTION storage._schema_change_leaves(target regclass) RETURNS oid[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(k.oid ORDER BY k.oid), '{}')
      FROM pg_class k
     WHERE (k.oid = target OR k.oid IN (SELECT p::oid FROM audit._partitions(target) AS p))
       AND k.relkind = 'r'
$$;
COMMENT ON FUNCTION storage._schema_change_leaves(regclass) IS
    'Internal: the tables holding a table''s rows (itself, or its partitions at any depth), in OID order.';

-- A name in a PL/pgSQL body, always quoted (quote_ident leaves PL/pgSQL's own reserved words,
-- IF, LOOP, BEGIN…, bare).
CREATE FUNCTION storage._schema_change_quote(n name) RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT '"' || replace(n, '"', '""') || '"'
$$;
COMMENT ON FUNCTION storage._schema_change_quote(name) IS
    'Internal: a name double-quoted whatever it is (for the body of an online change''s trigger function).';

-- A statement on a user's table in the caller's transaction, its lock wait bounded and tried again.
CREATE FUNCTION storage._schema_change_retry(target regclass, command text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tries integer := 0;
    retries integer := storage._migration_setting('retries', 5)::integer;
BEGIN
    LOOP
        BEGIN
            RETURN storage._run_as_owner(target, command);
        EXCEPTION WHEN lock_not_available THEN
            tries := tries + 1;
            IF tries > retries THEN
                RAISE;
            END IF;
            PERFORM pg_sleep(least(5.0, 0.05 * tries * tries));
        END;
    END LOOP;
END $$;
COMMENT ON FUNCTION storage._schema_change_retry(regclass, text) IS
    'Internal: one statement on a user''s table as its owner (storage._run_as_owner), tried again after a lock wait that timed out (pg_storage_ext.migration_lock_timeout), up to pg_storage_ext.migration_retries times.';

-- An index's definition again, as a statement that makes it on target named name: the same
-- method, columns (column attnum replaced by newcol, when given), collations, operator
-- classes, orderings, INCLUDE, NULLS NOT DISTINCT, options, tablespace and predicate; built
-- concurrently or not.
CREATE FUNCTION storage._schema_change_index_def(idx oid, target regclass, name name, attnum smallint, newcol name, online boolean) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    i record;
    cols text[] := '{}';
    k integer;
BEGIN
    SELECT x.*, am.amname INTO i FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am am ON am.oid = c.relam WHERE x.indexrelid = idx;
    FOR k IN 1 .. i.indnatts LOOP
        cols := cols || (CASE WHEN i.indkey[k - 1] = attnum AND attnum <> 0 THEN quote_ident(newcol)
                              ELSE pg_get_indexdef(i.indexrelid, k, false) END
                         -- a collation or an operator class other than the column's default
                         || CASE WHEN k <= i.indnkeyatts AND i.indcollation[k - 1] <> 0
                                      AND i.indcollation[k - 1] IS DISTINCT FROM (SELECT a.attcollation FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[k - 1] AND i.indkey[k - 1] <> 0)
                                 THEN ' COLLATE ' || (SELECT format('%I.%I', n.nspname, c.collname) FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
                                                       WHERE c.oid = i.indcollation[k - 1]) ELSE '' END
                         || CASE WHEN k <= i.indnkeyatts AND NOT (SELECT o.opcdefault FROM pg_opclass o WHERE o.oid = i.indclass[k - 1])
                                 THEN ' ' || (SELECT format('%I.%I', n.nspname, o.opcname) FROM pg_opclass o JOIN pg_namespace n ON n.oid = o.opcnamespace
                                               WHERE o.oid = i.indclass[k - 1]) ELSE '' END
                         || CASE WHEN k <= i.indnkeyatts AND i.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END
                         || CASE WHEN k <= i.indnkeyatts AND i.indoption[k - 1] & 1 = 1 AND i.indoption[k - 1] & 2 = 0 THEN ' NULLS LAST'
                                 WHEN k <= i.indnkeyatts AND i.indoption[k - 1] & 1 = 0 AND i.indoption[k - 1] & 2 = 2 THEN ' NULLS FIRST'
                                 ELSE '' END);
    END LOOP;
    RETURN format('CREATE %sINDEX %s%I ON %s USING %I (%s)%s%s',
                  CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END, CASE WHEN online THEN 'CONCURRENTLY ' ELSE '' END,
                  name, target, i.amname,
                  array_to_string(cols[1:i.indnkeyatts], ', '),
                  CASE WHEN i.indnatts > i.indnkeyatts THEN format(' INCLUDE (%s)', array_to_string(cols[i.indnkeyatts + 1:], ', ')) ELSE '' END,
                  CASE WHEN i.indnullsnotdistinct THEN ' NULLS NOT DISTINCT' ELSE '' END)
           || coalesce(' WITH (' || (SELECT array_to_string(c.reloptions, ', ') FROM pg_class c WHERE c.oid = i.indexrelid) || ')', '')
           || coalesce(' TABLESPACE ' || (SELECT quote_ident(t.spcname) FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace
                                           WHERE c.oid = i.indexrelid), '')
           || coalesce(' WHERE ' || pg_get_expr(i.indpred, i.indrelid), '');
END $$;
COMMENT ON FUNCTION storage._schema_change_index_def(oid, regclass, name, smallint, name, boolean) IS
    'Internal: CREATE [UNIQUE] INDEX [CONCURRENTLY] name ON target, an index''s definition again (its column attnum replaced by newcol when attnum is not 0), for an online type change.';

-- The indexes of column attnum of target that a new column replaces, as statements that build
-- them on newcol concurrently; raises 0A000 for the ones it cannot carry.
CREATE FUNCTION storage._schema_change_indexes(id bigint, target regclass, attnum smallint, newcol name) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    i record;
    out jsonb := '[]';
    con record;
BEGIN
    FOR i IN SELECT x.*, c.relname
               FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
              WHERE x.indrelid = target AND (attnum = ANY (x.indkey::int2[])
                    OR EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = x.indexrelid
                                 AND d.refobjid = target AND d.refobjsubid = attnum))
              ORDER BY x.indexrelid
    LOOP
        IF i.indexprs IS NOT NULL OR i.indpred IS NOT NULL OR NOT i.indisvalid THEN
            RAISE EXCEPTION 'index % uses the column in an expression or a predicate (or is invalid)', i.relname
                  USING ERRCODE = 'feature_not_supported',
                        DETAIL = 'An online type change rebuilds the indexes of plain columns only.',
                        HINT = 'Drop the index, change the type, and create it again concurrently.';
        END IF;
        SELECT c.conname, c.contype, c.condeferrable, c.condeferred, obj_description(c.oid, 'pg_constraint') AS comment INTO con
          FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = target;
        IF con.contype IS NOT NULL AND con.contype NOT IN ('p', 'u') THEN
            RAISE EXCEPTION 'index % backs constraint % (an exclusion constraint)', i.relname, con.conname
                  USING ERRCODE = 'feature_not_supported', HINT = 'Drop the constraint, change the type, and add it again.';
        END IF;
        out := out || jsonb_build_object(
            -- (named after the index it replaces: the same name whenever it is computed)
            'name', i.relname, 'oid', i.indexrelid, 'temp', storage._schema_change_name(id, 'i' || i.indexrelid),
            'create', storage._schema_change_index_def(i.indexrelid, target, storage._schema_change_name(id, 'i' || i.indexrelid), attnum, newcol, true),
            'replident', i.indisreplident, 'clustered', i.indisclustered, 'comment', obj_description(i.indexrelid, 'pg_class'),
            'constraint', con.conname, 'contype', con.contype, 'constraint_comment', con.comment,
            'deferrable', coalesce(con.condeferrable, false), 'deferred', coalesce(con.condeferred, false));
    END LOOP;
    RETURN out;
END $$;
COMMENT ON FUNCTION storage._schema_change_indexes(bigint, regclass, smallint, name) IS
    'Internal: the indexes on a column that an online type change rebuilds on the new column (CREATE INDEX CONCURRENTLY statements, the constraint each backs); 0A000 for an index on an expression or with a predicate using it.';

-- The views an online type change carries across its swap: those reading the column and those
-- reading them, in the order they are made again (each after the views it reads), with what
-- makes each one again as its owner. 0A000 for a view it cannot carry: a materialized view (its
-- rows would be computed again under the swap's lock), one owned by another role than the
-- table's (made again as the extension's owner, its query would be parsed as it), one with
-- triggers or rules of its own.
CREATE FUNCTION storage._schema_change_views(target regclass, attnum smallint) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v record;
    out jsonb := '[]';
BEGIN
    FOR v IN
        WITH RECURSIVE readers(oid, depth) AS (
            SELECT DISTINCT r.ev_class, 1
              FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
             WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
               AND d.refobjid = target AND d.refobjsubid = attnum AND r.ev_class <> target
            UNION
            SELECT DISTINCT r.ev_class, readers.depth + 1
              FROM readers JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = readers.oid
              JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
             WHERE r.ev_class <> readers.oid AND readers.depth < 100)
        SELECT k.oid, k.relkind, k.relowner, k.reloptions, k.relacl, max(readers.depth) AS depth
          FROM readers JOIN pg_class k ON k.oid = readers.oid
         GROUP BY k.oid, k.relkind, k.relowner, k.reloptions, k.relacl
         ORDER BY max(readers.depth), k.oid
    LOOP
        IF v.relkind <> 'v' OR v.relowner <> (SELECT k.relowner FROM pg_class k WHERE k.oid = target)
           OR EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = v.oid)
           OR EXISTS (SELECT FROM pg_rewrite r WHERE r.ev_class = v.oid AND r.rulename <> '_RETURN') THEN
            RAISE EXCEPTION '% reads column "%" of %', v.oid::regclass, (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = target AND a.attnum = _schema_change_views.attnum), target
                  USING ERRCODE = 'feature_not_supported',
                        DETAIL = CASE WHEN v.relkind = 'm' THEN 'A materialized view would be computed again under the swap''s lock.'
                                      WHEN v.relkind <> 'v' THEN 'Only views are made again across the swap.'
                                      WHEN v.relowner <> (SELECT k.relowner FROM pg_class k WHERE k.oid = target) THEN 'It belongs to another role than the table: it is made again only as its owner, who is not the table''s.'
                                      ELSE 'It has triggers or rules of its own, which would not be made again.' END,
                        HINT = 'Drop it, change the type, and create it again (in the same migration).';
        END IF;
        out := out || jsonb_build_object(
            'oid', v.oid, 'name', v.oid::regclass::text, 'depth', v.depth,
            'create', format('CREATE VIEW %s%s AS %s', v.oid::regclass,
                             coalesce(' WITH (' || array_to_string(v.reloptions, ', ') || ')', ''),
                             rtrim(pg_get_viewdef(v.oid), ';')),
            'grants', (SELECT coalesce(jsonb_agg(format('GRANT %s ON %s TO %s%s', a.privilege_type, v.oid::regclass,
                                                        CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                                                        CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)), '[]')
                         FROM aclexplode(v.relacl) a WHERE a.grantee <> v.relowner),
            'comments', (SELECT coalesce(jsonb_agg(x.c), '[]') FROM (
                             SELECT format('COMMENT ON VIEW %s IS %L', v.oid::regclass, obj_description(v.oid, 'pg_class')) AS c
                              WHERE obj_description(v.oid, 'pg_class') IS NOT NULL
                             UNION ALL
                             SELECT format('COMMENT ON COLUMN %s.%I IS %L', v.oid::regclass, a.attname, col_description(v.oid, a.attnum))
                               FROM pg_attribute a WHERE a.attrelid = v.oid AND a.attnum > 0 AND col_description(v.oid, a.attnum) IS NOT NULL) AS x));
    END LOOP;
    RETURN out;
END $$;
COMMENT ON FUNCTION storage._schema_change_views(regclass, smallint) IS
    'Internal: the views an online type change drops and makes again in its swap (reading the column, and reading those), in the order they are made, with their options, grants and comments; 0A000 for a materialized view, a view of another owner, a view with triggers or rules.';

-- What other objects depend on a column, that an online type change cannot carry: 0A000 listing them.
CREATE FUNCTION storage._schema_change_refuse_dependents(target regclass, attnum smallint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found text;
BEGIN
    SELECT string_agg(DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid), ', ') INTO found
      FROM pg_depend d
     WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = target AND d.refobjsubid = attnum
       AND d.deptype IN ('n', 'a')
       AND NOT (d.classid = 'pg_class'::regclass AND EXISTS (SELECT FROM pg_index x WHERE x.indexrelid = d.objid))
       AND NOT (d.classid = 'pg_constraint'::regclass AND EXISTS (SELECT FROM pg_constraint c WHERE c.oid = d.objid AND c.contype IN ('c', 'f', 'p', 'u', 'n')))
       AND NOT (d.classid = 'pg_class'::regclass AND EXISTS (SELECT FROM pg_class s WHERE s.oid = d.objid AND s.relkind = 'S'))
       -- (the column's own default; another column's is a generated column's expression)
       AND NOT (d.classid = 'pg_attrdef'::regclass AND EXISTS (SELECT FROM pg_attrdef ad WHERE ad.oid = d.objid AND ad.adrelid = target AND ad.adnum = attnum))
       -- views (storage._schema_change_views: carried, or refused by name)
       AND NOT (d.classid = 'pg_rewrite'::regclass AND EXISTS (SELECT FROM pg_rewrite r JOIN pg_class k ON k.oid = r.ev_class
                                                                WHERE r.oid = d.objid AND r.rulename = '_RETURN' AND k.oid <> target));
    PERFORM storage._schema_change_views(target, attnum);
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'other objects depend on column %: %', (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = target AND a.attnum = _schema_change_refuse_dependents.attnum), found
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'An online type change swaps in a new column; policies, rules, triggers naming the column, generated columns and statistics on the old one would block the swap.',
                    HINT = 'Drop them, change the type, and create them again (in the same migration).';
    END IF;
END $$;
COMMENT ON FUNCTION storage._schema_change_refuse_dependents(regclass, smallint) IS
    'Internal: 0A000 naming the policies, rules, triggers, generated columns and statistics that depend on a column an online type change would swap, and the views it cannot carry (storage._schema_change_views).';

-- The start of an online schema change, in the caller's transaction, as the extension owner
-- (storage._schema_change, src/migrations/online.rs, checked that the caller owns the table and
-- that expr, the user's expression, is one expression): the short part, the record, the worker. path is the
-- caller's effective search_path (the schemas it may use), with which a type name and the
-- user's expressions are bound, once. Returns started, resumed, running or done.
CREATE FUNCTION storage._schema_change_begin(kind text, target regclass, args jsonb, expr text, caller oid, path text,
                                             pid integer, backend timestamptz) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
DECLARE
    rel pg_class;
    att pg_attribute;
    s storage._schema_changes;
    typid oid;
    typmod integer;
    canonical text;
    cname name;
    cols name[];
    refcols name[];
    refrel oid;
    params text;
    newcol name;
    fn name;
    collate_clause text := '';
    lf record;
    caller_name name := (SELECT r.rolname FROM pg_roles r WHERE r.oid = caller);
    running boolean;
BEGIN
    PERFORM set_config('lock_timeout', storage._migration_lock_ms() || 'ms', true);
    SELECT * INTO rel FROM pg_class c WHERE c.oid = target;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', target USING ERRCODE = 'wrong_object_type',
              HINT = 'Online schema changes work on tables and partitioned tables.';
    END IF;
    IF rel.relispartition THEN
        RAISE EXCEPTION '% is a partition', target USING ERRCODE = 'wrong_object_type',
              DETAIL = 'A partition''s columns and constraints are its partitioned table''s.',
              HINT = format('Change the partitioned table, %s: the change runs partition by partition.',
                            (SELECT i.inhparent::regclass FROM pg_inherits i WHERE i.inhrelid = target));
    END IF;
    PERFORM storage._refuse_on_citus(target, 'storage.' || kind,
        'Citus propagates ALTER TABLE to every shard itself, and its shards'' rows live on the workers, out of reach of a backfill on the coordinator.');

    IF kind IN ('alter_column_type', 'add_not_null') THEN
        SELECT * INTO att FROM pg_attribute a WHERE a.attrelid = target AND a.attname = (args ->> 'column') AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of relation % does not exist', args ->> 'column', target USING ERRCODE = 'undefined_column';
        END IF;
    END IF;
    IF kind = 'alter_column_type' THEN
        PERFORM set_config('search_path', path, true);
        BEGIN
            typid := to_regtype(args ->> 'type');
            typmod := to_regtypemod(args ->> 'type');
        EXCEPTION WHEN OTHERS THEN
            typid := NULL;
        END;
        PERFORM set_config('search_path', 'pg_catalog, pg_temp', true);
        IF typid IS NULL THEN
            RAISE EXCEPTION 'type "%" does not exist', args ->> 'type' USING ERRCODE = 'undefined_object',
                  HINT = 'Name a type as in ALTER TABLE … TYPE, e.g. bigint, varchar(200), jsonb.';
        ELSIF NOT has_type_privilege(caller, typid, 'USAGE') THEN
            RAISE EXCEPTION 'permission denied for type %', format_type(typid, typmod) USING ERRCODE = 'insufficient_privilege';
        END IF;
        canonical := format_type(typid, typmod);
    ELSIF kind = 'add_foreign_key' THEN
        cols := ARRAY(SELECT jsonb_array_elements_text(args -> 'columns'));
        refcols := ARRAY(SELECT jsonb_array_elements_text(args -> 'ref_columns'));
        refrel := (args ->> 'ref')::oid;
        IF cardinality(cols) = 0 OR cardinality(cols) <> cardinality(refcols) THEN
            RAISE EXCEPTION 'a foreign key needs as many referenced columns as columns, and at least one'
                  USING ERRCODE = 'invalid_foreign_key', DETAIL = format('columns %s, ref_columns %s', cols, refcols);
        END IF;
        IF (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = target AND a.attname = ANY (cols) AND a.attnum > 0 AND NOT a.attisdropped) <> cardinality(cols) THEN
            RAISE EXCEPTION 'a column of % does not exist: %', target, cols USING ERRCODE = 'undefined_column';
        END IF;
        IF NOT EXISTS (SELECT FROM pg_index x WHERE x.indrelid = refrel AND x.indisunique AND x.indisvalid AND x.indpred IS NULL AND x.indexprs IS NULL
                          AND x.indnkeyatts = cardinality(refcols)
                          AND (SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_attribute a WHERE a.attrelid = refrel AND a.attnum = ANY ((x.indkey::int2[])[0:x.indnkeyatts - 1]))
                              = (SELECT array_agg(c ORDER BY c) FROM unnest(refcols) c)) THEN
            RAISE EXCEPTION 'there is no unique constraint matching given keys for referenced table %', refrel::regclass
                  USING ERRCODE = 'invalid_foreign_key', HINT = format('Add a primary key or a unique index on %s (%s) first.', refrel::regclass, array_to_string(refcols, ', '));
        END IF;
        -- the constraint is added as the table's owner, whose privilege PostgreSQL checks
        IF NOT pg_has_role(rel.relowner, (SELECT c.relowner FROM pg_class c WHERE c.oid = refrel), 'USAGE')
           AND NOT (SELECT bool_and(has_column_privilege(rel.relowner, refrel, c, 'REFERENCES')) FROM unnest(refcols) c) THEN
            RAISE EXCEPTION 'permission denied for table %', refrel::regclass USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A foreign key needs the REFERENCES privilege on the referenced columns.';
        END IF;
        cname := left(rel.relname || '_' || array_to_string(cols, '_'), 58) || '_fkey';
        -- the supporting index is built concurrently, which a partitioned table's cannot be
        IF rel.relkind = 'p' AND NOT EXISTS (
               SELECT FROM pg_index x WHERE x.indrelid = target AND x.indpred IS NULL AND x.indnkeyatts >= cardinality(cols)
                  AND (SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_attribute a
                        WHERE a.attrelid = target AND a.attnum = ANY ((x.indkey::int2[])[0:cardinality(cols) - 1]))
                      = (SELECT array_agg(c ORDER BY c) FROM unnest(cols) c)) THEN
            RAISE EXCEPTION 'partitioned table % has no index led by %', target, array_to_string(cols, ', ') USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'The index supporting a foreign key is built concurrently first, which a partitioned table''s index cannot be.',
                  HINT = 'Create the index on each partition concurrently and attach them to one on the partitioned table (CREATE INDEX … ON ONLY), then add the foreign key.';
        END IF;
    ELSIF kind = 'add_check' THEN
        cname := args ->> 'name';
    ELSIF kind = 'add_not_null' THEN
        cname := NULL;
    END IF;

    -- one unfinished change per table: the same one again resumes it
    SELECT * INTO s FROM storage._schema_changes x WHERE x.relid = target AND x.state IN ('running', 'failed') FOR UPDATE;
    IF FOUND THEN
        IF s.kind = kind AND s.column_name IS NOT DISTINCT FROM (args ->> 'column') AND s.new_type IS NOT DISTINCT FROM canonical
           AND s.using_expr IS NOT DISTINCT FROM expr AND s.columns IS NOT DISTINCT FROM cols AND s.ref IS NOT DISTINCT FROM refrel
           AND s.ref_columns IS NOT DISTINCT FROM refcols AND (kind <> 'add_check' OR s.constraint_name = cname) THEN
            running := EXISTS (SELECT FROM pg_stat_activity a WHERE a.pid = s.worker_pid AND a.backend_type = 'pg_storage_ext schema change');
            UPDATE storage._schema_changes x SET requested_pid = pid, requested_backend = backend, state = 'running', error = NULL, updated_at = now(),
                   lock_timeout_ms = storage._migration_lock_ms(), batch_rows = greatest(1, storage._migration_setting('batch_rows', 10000)::integer),
                   retries = greatest(0, storage._migration_setting('retries', 5)::integer),
                   -- a backfill that failed passes again over every block
                   leaves = CASE WHEN x.phase = 'backfill' AND x.state = 'failed' THEN NULL ELSE x.leaves END,
                   plan = CASE WHEN x.phase = 'backfill' AND x.state = 'failed' THEN x.plan - 'repassed' ELSE x.plan END,
                   worker_pid = CASE WHEN running THEN x.worker_pid ELSE storage._schema_change_launch(x.id) END
             WHERE x.id = s.id;
            RETURN CASE WHEN running THEN 'running' ELSE 'resumed' END;
        END IF;
    END IF;

    -- nothing to do: done already (a migration run again after a failure runs its finished
    -- steps again). A column that has the type already is left alone, whatever using_expr; a
    -- constraint of that name is this one only when this extension made it with these arguments.
    IF kind = 'alter_column_type' AND att.atttypid = typid AND att.atttypmod = typmod THEN
        RETURN 'done';
    ELSIF kind = 'add_not_null' AND att.attnotnull THEN
        RETURN 'done';
    ELSIF kind IN ('add_check', 'add_foreign_key') AND EXISTS (SELECT FROM pg_constraint c WHERE c.conrelid = target AND c.conname = cname) THEN
        IF EXISTS (SELECT FROM pg_constraint c WHERE c.conrelid = target AND c.conname = cname AND c.convalidated)
           AND EXISTS (SELECT FROM storage._schema_changes x WHERE x.relid = target AND x.kind = _schema_change_begin.kind AND x.state = 'done'
                          AND x.constraint_name = cname AND x.using_expr IS NOT DISTINCT FROM expr AND x.columns IS NOT DISTINCT FROM cols
                          AND x.ref IS NOT DISTINCT FROM refrel AND x.ref_columns IS NOT DISTINCT FROM refcols) THEN
            RETURN 'done';
        END IF;
        RAISE EXCEPTION 'constraint "%" of relation % already exists', cname, target USING ERRCODE = 'duplicate_object',
              HINT = 'Drop it first, or name the new one otherwise.';
    END IF;
    IF s.id IS NOT NULL THEN
        RAISE EXCEPTION '% already has an unfinished schema change: % (%)', target, s.kind, s.state
              USING ERRCODE = 'object_in_use', DETAIL = format('Change %s, phase %s%s.', s.id, s.phase, coalesce(': ' || s.error, '')),
                    HINT = 'Wait for it (storage.schema_changes), resume it by calling the same function again, or roll it back with storage.abort_schema_change.';
    END IF;

    INSERT INTO storage._schema_changes (relid, table_name, kind, column_name, new_type, using_expr, constraint_name, columns, ref, ref_columns,
                                         lock_timeout_ms, batch_rows, retries, phase, requested_by, requested_pid, requested_backend)
    VALUES (target, target::text, kind, args ->> 'column', canonical, expr, cname, cols, refrel, refcols,
            storage._migration_lock_ms(), greatest(1, storage._migration_setting('batch_rows', 10000)::integer),
            greatest(0, storage._migration_setting('retries', 5)::integer),
            CASE kind WHEN 'alter_column_type' THEN 'backfill' WHEN 'add_foreign_key' THEN 'index' WHEN 'add_not_null' THEN 'check' ELSE 'validate' END,
            caller_name, pid, backend)
    RETURNING * INTO s;

    IF kind = 'alter_column_type' THEN
        IF att.attgenerated <> '' THEN
            RAISE EXCEPTION 'column "%" is a generated column', att.attname USING ERRCODE = 'feature_not_supported',
                  HINT = 'Change it with ALTER TABLE … TYPE, or drop the generation first.';
        END IF;
        IF EXISTS (WITH RECURSIVE d(oid) AS (SELECT typid UNION SELECT t.typbasetype FROM pg_type t JOIN d ON t.oid = d.oid WHERE t.typtype = 'd')
                   SELECT FROM pg_type t JOIN d ON t.oid = d.oid
                    WHERE t.typtype = 'd' AND (t.typnotnull OR EXISTS (SELECT FROM pg_constraint c WHERE c.contypid = t.oid))) THEN
            RAISE EXCEPTION 'type % is a domain with constraints', canonical USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Adding a column of such a domain rewrites the table under ACCESS EXCLUSIVE (each row''s NULL is checked).',
                  HINT = 'Change it to the domain''s base type online, then to the domain with ALTER TABLE … TYPE (no rewrite; a scan).';
        END IF;
        IF att.attidentity <> '' AND NOT EXISTS (SELECT FROM pg_type t WHERE t.oid = typid AND t.typname IN ('int2', 'int4', 'int8')) THEN
            RAISE EXCEPTION 'an identity column is an integer: % is not one', canonical USING ERRCODE = 'feature_not_supported';
        END IF;
        IF EXISTS (SELECT FROM pg_partitioned_table p WHERE p.partrelid = target AND att.attnum = ANY (p.partattrs::int2[])) THEN
            RAISE EXCEPTION 'column "%" is in the partition key of %', att.attname, target USING ERRCODE = 'feature_not_supported';
        END IF;
        PERFORM storage._schema_change_refuse_dependents(target, att.attnum);
        IF rel.relkind = 'r' AND EXISTS (SELECT FROM pg_inherits i WHERE i.inhparent = target OR i.inhrelid = target) THEN
            RAISE EXCEPTION '% is in an inheritance tree', target USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A trigger is not inherited: the children''s rows would not be kept in step (partitions are).',
                  HINT = 'Change the type with ALTER TABLE … TYPE, or make the tree a partitioned table.';
        END IF;
        -- the keys other tables reference: only a change that keeps every value (no expression; a
        -- binary-coercible type, a wider integer, a longer or unbounded length)
        IF EXISTS (SELECT FROM pg_constraint c WHERE c.confrelid = target AND c.conrelid <> target AND att.attnum = ANY (c.confkey))
           AND NOT (expr IS NULL
                    AND ((typid = att.atttypid AND (typmod = -1 OR (att.atttypmod <> -1 AND typmod >= att.atttypmod)))
                         OR (att.atttypid, typid) IN (('int2'::regtype, 'int4'::regtype), ('int2'::regtype, 'int8'::regtype), ('int4'::regtype, 'int8'::regtype))
                         OR (typmod = -1 AND EXISTS (SELECT FROM pg_cast c WHERE c.castsource = att.atttypid AND c.casttarget = typid AND c.castmethod = 'b')))) THEN
            RAISE EXCEPTION 'foreign keys of other tables reference column "%" of %', att.attname, target USING ERRCODE = 'feature_not_supported',
                  DETAIL = format('Changing %s to %s%s could change the keys they reference, and their rows are not this table''s owner''s to check.',
                                  format_type(att.atttypid, att.atttypmod), canonical, CASE WHEN expr IS NOT NULL THEN ' with an expression' ELSE '' END),
                  HINT = 'Keep every value (a wider integer, a longer length, a binary-coercible type), or drop those foreign keys first.';
        END IF;
        IF rel.relkind = 'p' AND EXISTS (SELECT FROM pg_index x WHERE x.indrelid = target AND att.attnum = ANY (x.indkey::int2[])) THEN
            RAISE EXCEPTION 'column "%" of partitioned table % is indexed', att.attname, target USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Indexes of a partitioned table cannot be built concurrently.',
                  HINT = 'Drop the index, change the type, then create it on each partition concurrently and attach them.';
        END IF;
        -- the indexes to rebuild, checked now (an index on an expression of the column is refused)
        PERFORM storage._schema_change_indexes(s.id, target, att.attnum, storage._schema_change_name(s.id, 'new'));
        newcol := storage._schema_change_name(s.id, 'new');
        IF att.attcollation <> 0 AND (SELECT t.typcollation FROM pg_type t WHERE t.oid = typid) <> 0
           AND att.attcollation <> (SELECT t.typcollation FROM pg_type t WHERE t.oid = typid) THEN
            collate_clause := ' COLLATE ' || (SELECT format('%I.%I', n.nspname, c.collname) FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace WHERE c.oid = att.attcollation);
        END IF;
        PERFORM storage._schema_change_retry(target, format('ALTER TABLE %s ADD COLUMN %I %s%s', target, newcol, canonical, collate_clause));
        -- the conversion: the user's expression (or a cast of the column), checked now as the
        -- table's owner with the caller's effective search_path, then kept in step by a trigger
        -- whose function evaluates it with that path, as whoever writes the table (its owner for
        -- the backfill). It is never parsed as the extension's owner: a literal's input function
        -- or a domain's CHECK would run as it. Each column is a variable of the same name.
        -- (a generated column is computed after BEFORE triggers: not there for the expression)
        PERFORM storage._run_as_owner_bound(target,
            format('SELECT CAST((%s) AS %s) FROM (SELECT %s FROM %s) AS t LIMIT 0', coalesce(E'\n' || expr || E'\n', quote_ident(att.attname)), canonical,
                   (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                     WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' AND a.attname <> newcol),
                   target), path);
        IF EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped AND a.attname LIKE '\_pgse\_%' AND a.attname <> newcol) THEN
            RAISE EXCEPTION '% has a column named _pgse_…', target USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Names starting with _pgse_ are the extension''s own.';
        END IF;
        SELECT string_agg(format('%s %s := _pgse_row.%s;', storage._schema_change_quote(a.attname), format_type(a.atttypid, a.atttypmod),
                                 storage._schema_change_quote(a.attname)), E'\n' ORDER BY a.attnum)
          INTO params
          FROM pg_attribute a WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' AND a.attname <> newcol;
        fn := storage._schema_change_name(s.id, 'sync');
        -- (left by an extension dropped and made again, which counts changes from 1 again)
        IF to_regproc(format('storage.%I', fn)) IS NOT NULL THEN
            EXECUTE format('DROP FUNCTION storage.%I()', fn);
        END IF;
        IF expr IS NULL THEN
            -- the column assigned (as ALTER TABLE … TYPE converts it: a value too long for the
            -- new type is an error, not cut): nothing of the caller's to resolve
            EXECUTE format('CREATE FUNCTION storage.%I() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS %L', fn,
                           format(E'BEGIN\nNEW.%s := NEW.%s;\nRETURN NEW;\nEND', storage._schema_change_quote(newcol), storage._schema_change_quote(att.attname)));
        ELSE
            EXECUTE format('CREATE FUNCTION storage.%I() RETURNS trigger LANGUAGE plpgsql SET search_path = %s AS %L', fn, path,
                           format(E'DECLARE\n_pgse_row record := NEW;\n_pgse_value %s;\nBEGIN\nDECLARE\n%s\nBEGIN\n_pgse_value := (\n%s\n);\nEND;\nNEW.%s := _pgse_value;\nRETURN NEW;\nEND',
                                  canonical, params, expr, storage._schema_change_quote(newcol)));
        END IF;
        EXECUTE format('ALTER FUNCTION storage.%I() OWNER TO %I', fn, (SELECT r.rolname FROM pg_roles r WHERE r.oid = rel.relowner));
        EXECUTE format('REVOKE ALL ON FUNCTION storage.%I() FROM PUBLIC', fn);
        -- under FORCE ROW LEVEL SECURITY an owner sees only what its policies let it: the backfill
        -- (the worker, and only it: storage._schema_change_backfilling()) sees every row, on
        -- every table holding rows (a partition's own row security too)
        FOR lf IN SELECT k.oid, r.rolname FROM pg_class k JOIN pg_roles r ON r.oid = k.relowner
                  WHERE k.oid = ANY (storage._schema_change_leaves(target)) AND k.relrowsecurity AND k.relforcerowsecurity
                    AND NOT r.rolsuper AND NOT r.rolbypassrls
        LOOP
            IF EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = lf.oid AND NOT p.polpermissive) THEN
                RAISE EXCEPTION '% has restrictive row security policies', lf.oid::regclass USING ERRCODE = 'feature_not_supported',
                      DETAIL = 'Its row security is forced on its owner, and a restrictive policy would hide rows from the backfill.',
                      HINT = 'Change the type with ALTER TABLE … TYPE, or drop the restrictive policies for the change.';
            END IF;
            PERFORM storage._schema_change_retry(lf.oid::regclass, format('CREATE POLICY %I ON %s AS PERMISSIVE FOR ALL TO %I USING (storage._schema_change_backfilling())',
                                                                          storage._schema_change_name(s.id, 'backfill'), lf.oid::regclass, lf.rolname));
        END LOOP;
        PERFORM storage._schema_change_retry(target, format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION storage.%I()',
                                                           storage._schema_change_name(s.id, 'trigger'), target, fn));
        PERFORM storage._schema_change_retry(target, format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', target, storage._schema_change_name(s.id, 'trigger')));
    ELSIF kind = 'add_check' THEN
        PERFORM storage._run_as_owner_bound(target, format(E'ALTER TABLE %s ADD CONSTRAINT %I CHECK (\n%s\n) NOT VALID', target, cname, expr), path);
    END IF;
    UPDATE storage._schema_changes x SET worker_pid = storage._schema_change_launch(x.id) WHERE x.id = s.id;
    RETURN 'started';
END $$;
COMMENT ON FUNCTION storage._schema_change_begin(text, regclass, jsonb, text, oid, text, integer, timestamptz) IS
    'Internal: the start of an online schema change in the caller''s transaction, as the extension owner: checks, the new column with the trigger that converts into it (alter_column_type) or the CHECK NOT VALID (add_check), the record, the worker; the same change again resumes it.';

-- The copy (docs/migrations.md, "Online schema changes", Backfill): a table holding rows is
-- not updated row by row but copied beside itself, converted, and its files swapped in, as
-- pg_repack and CLUSTER do: a rewrite's cost, not an UPDATE's. The copy, storage._pgse_sc<id>_copy,
-- has the table's columns in the same places (its dropped ones dropped), with no constraint,
-- default or trigger of the table's; a log, storage._pgse_sc<id>_log, gets the key of every row
-- written meanwhile (a trigger of the table's, ALWAYS), and those rows are copied again from the
-- table until, under ACCESS EXCLUSIVE for the last few, the copy is the table. Then the files of
-- the table, of each of its indexes and of its TOAST table change places with the copy's
-- (storage._schema_change_swap_files): the table keeps its OID, so everything that hangs on it
-- stays. All of it belongs to the table's owner, and runs as it.

-- What keeps a table from being copied (NULL: it can be): the rows of one without a key, one
-- whose rows logical replication publishes, one of another access method… are updated in place.
CREATE FUNCTION storage._schema_change_uncopyable(leaf oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN k.relkind <> 'r' OR k.relam <> (SELECT a.oid FROM pg_am a WHERE a.amname = 'heap') THEN 'not a heap table'
        WHEN k.relpersistence NOT IN ('p', 'u') THEN 'a temporary table'
        WHEN storage._schema_change_copy_key(leaf) IS NULL THEN 'no primary key or unique index on NOT NULL columns'
        WHEN EXISTS (SELECT FROM pg_index x WHERE x.indrelid = leaf AND NOT (x.indisvalid AND x.indisready AND x.indislive)) THEN 'an invalid index'
        WHEN EXISTS (SELECT FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indexrelid WHERE x.indrelid = leaf AND a.attoptions IS NOT NULL) THEN 'an index with operator class options'
        WHEN EXISTS (SELECT FROM pg_publication p WHERE p.puballtables)
             OR EXISTS (SELECT FROM pg_publication_rel r WHERE r.prrelid = leaf OR r.prrelid IN (SELECT a.relid FROM pg_partition_ancestors(leaf) a))
             OR EXISTS (SELECT FROM pg_publication_namespace n JOIN pg_class c ON c.relnamespace = n.pnnspid
                         WHERE c.oid = leaf OR c.oid IN (SELECT a.relid FROM pg_partition_ancestors(leaf) a)) THEN 'published by logical replication'
        WHEN EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = leaf AND a.attnum > 0 AND NOT a.attisdropped AND a.attname LIKE '\_pgse\_dropped\_%') THEN 'a column named _pgse_dropped_…'
    END
      FROM pg_class k WHERE k.oid = leaf
$$;
COMMENT ON FUNCTION storage._schema_change_uncopyable(oid) IS
    'Internal: why an online type change cannot copy a table (updating its rows in place instead), or NULL when it can: a heap table with a primary key or a unique index on NOT NULL columns, valid indexes, not published.';

-- The key by which the log names a row: the primary key, or else the narrowest unique index on
-- NOT NULL columns without expression or predicate.
CREATE FUNCTION storage._schema_change_copy_key(leaf oid) RETURNS name[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (SELECT array_agg(a.attname ORDER BY u.o) FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS u(n, o)
              JOIN pg_attribute a ON a.attrelid = leaf AND a.attnum = u.n
             WHERE u.o <= x.indnkeyatts)
      FROM pg_index x
     WHERE x.indrelid = leaf AND x.indisunique AND x.indisvalid AND x.indpred IS NULL AND x.indexprs IS NULL
       AND NOT EXISTS (SELECT FROM unnest((x.indkey::int2[])[0:x.indnkeyatts - 1]) AS u(n)
                         JOIN pg_attribute a ON a.attrelid = leaf AND a.attnum = u.n
                        WHERE NOT a.attnotnull
                           -- (NOT NULL … NOT VALID sets attnotnull, and old rows may still be NULL)
                           OR EXISTS (SELECT FROM pg_constraint c WHERE c.conrelid = leaf AND c.contype = 'n'
                                         AND c.conkey = ARRAY[a.attnum] AND NOT c.convalidated))
     ORDER BY x.indisprimary DESC, x.indnkeyatts, x.indexrelid
     LIMIT 1
$$;
COMMENT ON FUNCTION storage._schema_change_copy_key(oid) IS
    'Internal: the columns naming a row of a table for the log of an online type change''s copy (its primary key, or the narrowest unique index on validated NOT NULL columns), NULL when there is none.';

-- What must be the same in a table and its copy for their files to change places: each
-- column's place, name, type, storage and collation (a dropped one only dropped), in order.
CREATE FUNCTION storage._schema_change_layout(rel oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT string_agg(CASE WHEN a.attisdropped THEN a.attnum || ' dropped'
                           ELSE concat_ws(' ', a.attnum, quote_ident(a.attname), a.atttypid, a.atttypmod, a.attcollation, a.attlen,
                                          a.attbyval, a.attalign, a.attstorage, a.attcompression) END, ', ' ORDER BY a.attnum)
      FROM pg_attribute a WHERE a.attrelid = rel AND a.attnum > 0
$$;
COMMENT ON FUNCTION storage._schema_change_layout(oid) IS
    'Internal: the columns of a table as its files hold them (place, name, type, storage; dropped ones only as dropped), compared between a table and its copy.';

-- What must be the same in an index of the table and its copy's for their files to change places.
CREATE FUNCTION storage._schema_change_index_shape(idx oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT concat_ws(' | ', c.relam, c.relpersistence, c.reltablespace, c.reloptions::text, x.indnatts, x.indnkeyatts, x.indisunique,
                     x.indnullsnotdistinct, x.indkey::text, x.indclass::text, x.indcollation::text, x.indoption::text,
                     pg_get_expr(x.indexprs, x.indrelid), pg_get_expr(x.indpred, x.indrelid),
                     (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attoptions IS NOT NULL))
      FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
     WHERE x.indexrelid = idx
$$;
COMMENT ON FUNCTION storage._schema_change_index_shape(oid) IS
    'Internal: an index''s method, columns, operator classes, collations, options, expressions and predicate, compared between a table''s index and its copy''s.';

-- The copy's objects dropped (a change aborted, a copy started again, a table copied).
CREATE FUNCTION storage._schema_change_copy_drop(id bigint, leaf oid) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = leaf AND t.tgname = storage._schema_change_name(id, 'log')) THEN
        PERFORM storage._schema_change_retry(leaf::regclass, format('DROP TRIGGER %I ON %s', storage._schema_change_name(id, 'log'), leaf::regclass));
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS storage.%I, storage.%I', storage._schema_change_name(id, 'copy'), storage._schema_change_name(id, 'log'));
    EXECUTE format('DROP FUNCTION IF EXISTS storage.%I()', storage._schema_change_name(id, 'logger'));
END $$;
COMMENT ON FUNCTION storage._schema_change_copy_drop(bigint, oid) IS
    'Internal: drops what an online type change made to copy a table: the log''s trigger on it, the log, its function, the copy.';

-- The rows the log entries seqs name, copied again from the table as they are now, as its owner.
CREATE FUNCTION storage._schema_change_copy_rows(s storage._schema_changes, leaf oid, seqs bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c jsonb := s.plan -> 'copy';
    copy_name text := format('storage.%I', storage._schema_change_name(s.id, 'copy'));
    log_name text := format('storage.%I', storage._schema_change_name(s.id, 'log'));
    keys text := (SELECT string_agg(quote_ident(k), ', ' ORDER BY o) FROM jsonb_array_elements_text(c -> 'key') WITH ORDINALITY AS u(k, o));
BEGIN
    PERFORM storage._run_as_owner(leaf::regclass,
        format('DELETE FROM %s WHERE (%s) IN (SELECT %s FROM %s WHERE _pgse_seq = ANY ($1::pg_catalog.int8[]))', copy_name, keys, keys, log_name),
        ARRAY[seqs::text]);
    PERFORM storage._run_as_owner(leaf::regclass,
        format('INSERT INTO %s (%s) SELECT %s FROM ONLY %s WHERE (%s) IN (SELECT %s FROM %s WHERE _pgse_seq = ANY ($1::pg_catalog.int8[]))',
               copy_name, c ->> 'into', c ->> 'select', leaf::regclass, keys, keys, log_name),
        ARRAY[seqs::text]);
END $$;
COMMENT ON FUNCTION storage._schema_change_copy_rows(storage._schema_changes, oid, bigint[]) IS
    'Internal: the rows of a table that log entries of an online type change''s copy name, deleted from the copy and copied again as they are now, as the table''s owner.';

-- The rows the log names, copied again from the table (each row as it is now: one written
-- again meanwhile is logged again and copied once more), at most max of them; the number done.
CREATE FUNCTION storage._schema_change_copy_replay(s storage._schema_changes, leaf oid, max integer) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    log_name text := format('storage.%I', storage._schema_change_name(s.id, 'log'));
    seqs bigint[];
BEGIN
    EXECUTE format('SELECT array_agg(l._pgse_seq ORDER BY l._pgse_seq) FROM (SELECT _pgse_seq FROM %s ORDER BY _pgse_seq LIMIT $1) AS l', log_name) INTO seqs USING max;
    IF seqs IS NULL THEN
        RETURN 0;
    END IF;
    BEGIN
        PERFORM storage._schema_change_copy_rows(s, leaf, seqs);
    EXCEPTION WHEN unique_violation THEN
        -- the cut fell inside a transaction that moved a unique value from one row to another
        -- (the copy holds it in a row the cut left out): every entry there is now, which
        -- leaves the copy as the table is
        EXECUTE format('SELECT array_agg(l._pgse_seq ORDER BY l._pgse_seq) FROM %s AS l', log_name) INTO seqs;
        PERFORM storage._schema_change_copy_rows(s, leaf, seqs);
    END;
    EXECUTE format('DELETE FROM %s WHERE _pgse_seq = ANY ($1)', log_name) USING seqs;
    RETURN cardinality(seqs);
END $$;
COMMENT ON FUNCTION storage._schema_change_copy_replay(storage._schema_changes, oid, integer) IS
    'Internal: copies again, as the table''s owner, the rows of a table its copy''s log names (at most max log entries, oldest first), and forgets those entries; how many.';

-- One unit of work of the copy of leaf s.leaves[s.leaf] (storage._schema_change_step's
-- backfill): set up, copy a batch, copy again what was written meanwhile, build an index on
-- the copy, or swap.
CREATE FUNCTION storage._schema_change_copy(s storage._schema_changes, att pg_attribute) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    leaf oid := s.leaves[s.leaf];
    c jsonb := s.plan -> 'copy';
    copy_name name := storage._schema_change_name(s.id, 'copy');
    log_name name := storage._schema_change_name(s.id, 'log');
    logger name := storage._schema_change_name(s.id, 'logger');
    newcol name := storage._schema_change_name(s.id, 'new');
    owner_name name := (SELECT r.rolname FROM pg_class t JOIN pg_roles r ON r.oid = t.relowner WHERE t.oid = leaf);
    k pg_class;
    copy_oid oid := to_regclass(format('storage.%I', copy_name));
    key name[];
    why text;
    cols text;
    into_list text;
    select_list text;
    per_block float8;
    upto bigint;
    n bigint;
    idx oid;
    pairs jsonb;
    adopt jsonb;
    e jsonb;
    held timestamptz;
BEGIN
    SELECT * INTO k FROM pg_class x WHERE x.oid = leaf;
    -- a copy of another leaf (a backfill started again), or of a leaf gone
    IF c IS NOT NULL AND ((c ->> 'leaf')::oid <> leaf OR k.oid IS NULL) THEN
        PERFORM storage._schema_change_copy_drop(s.id, (c ->> 'leaf')::oid);
        UPDATE storage._schema_changes x SET plan = x.plan - 'copy', updated_at = now() WHERE x.id = s.id;
        RETURN;
    END IF;
    -- the table rewritten since the copy began (VACUUM FULL, CLUSTER, TRUNCATE, SET TABLESPACE),
    -- its columns changed, or the copy changed or emptied by its owner: the copy begins again
    IF c IS NOT NULL AND (k.relfilenode <> (c ->> 'filenode')::oid OR storage._schema_change_layout(leaf) <> c ->> 'layout'
                          OR copy_oid IS DISTINCT FROM (c ->> 'table')::oid OR storage._schema_change_layout(copy_oid) <> c ->> 'layout'
                          OR (SELECT x.relfilenode FROM pg_class x WHERE x.oid = copy_oid) <> (c ->> 'copy_filenode')::oid) THEN
        PERFORM storage._schema_change_copy_drop(s.id, leaf);
        UPDATE storage._schema_changes x SET plan = (x.plan - 'copy') || jsonb_build_object('recopied', coalesce((x.plan ->> 'recopied')::integer, 0) + 1), block = 0, updated_at = now() WHERE x.id = s.id;
        RETURN;
    END IF;

    IF c IS NULL THEN
        PERFORM storage._schema_change_copy_drop(s.id, leaf);
        key := storage._schema_change_copy_key(leaf);
        -- the log: the key of every row written from now on, by whoever writes it. It is the
        -- extension's (nobody else can put a trigger, a rule or a policy on it), as is its
        -- function, whose body is fixed (no operator, no cast: a domain's key is logged as its
        -- base type, whose constraints are not checked); the table's owner may read it.
        EXECUTE format('CREATE TABLE storage.%I (_pgse_seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, %s)', log_name,
                       (SELECT string_agg(format('%I %s%s', a.attname,
                                                 (WITH RECURSIVE d(t, m) AS (SELECT a.atttypid, a.atttypmod
                                                                             UNION ALL
                                                                             SELECT y.typbasetype, y.typtypmod FROM d JOIN pg_type y ON y.oid = d.t WHERE y.typtype = 'd')
                                                  SELECT format_type(d.t, d.m) FROM d JOIN pg_type z ON z.oid = d.t WHERE z.typtype <> 'd'),
                                                 CASE WHEN a.attcollation <> 0 THEN ' COLLATE ' || (SELECT format('%I.%I', n.nspname, l.collname) FROM pg_collation l JOIN pg_namespace n ON n.oid = l.collnamespace WHERE l.oid = a.attcollation) ELSE '' END),
                                          ', ' ORDER BY u.o)
                          FROM unnest(key) WITH ORDINALITY AS u(name, o) JOIN pg_attribute a ON a.attrelid = leaf AND a.attname = u.name));
        EXECUTE format('GRANT SELECT ON storage.%I TO %I', log_name, owner_name);
        EXECUTE format('CREATE FUNCTION storage.%I() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L', logger,
                       format(E'BEGIN\nIF TG_OP <> ''INSERT'' THEN\nINSERT INTO storage.%I (%s) VALUES (%s);\nEND IF;\nIF TG_OP <> ''DELETE'' THEN\nINSERT INTO storage.%I (%s) VALUES (%s);\nEND IF;\nRETURN NULL;\nEND',
                              log_name, (SELECT string_agg(storage._schema_change_quote(x), ', ') FROM unnest(key) x),
                              (SELECT string_agg('OLD.' || storage._schema_change_quote(x), ', ') FROM unnest(key) x),
                              log_name, (SELECT string_agg(storage._schema_change_quote(x), ', ') FROM unnest(key) x),
                              (SELECT string_agg('NEW.' || storage._schema_change_quote(x), ', ') FROM unnest(key) x)));
        EXECUTE format('REVOKE ALL ON FUNCTION storage.%I() FROM PUBLIC', logger);
        -- (to make the trigger, as the table's owner; called directly, a trigger function errs)
        EXECUTE format('GRANT EXECUTE ON FUNCTION storage.%I() TO %I', logger, owner_name);
        -- (SHARE ROW EXCLUSIVE: the writers before it have committed when it is made)
        PERFORM storage._schema_change_retry(leaf::regclass, format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION storage.%I()',
                                                                    log_name, leaf::regclass, logger));
        PERFORM storage._schema_change_retry(leaf::regclass, format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', leaf::regclass, log_name));
        -- the copy: the same columns in the same places, nothing else of the table's
        SELECT string_agg(CASE WHEN a.attisdropped THEN format('_pgse_dropped_%s integer', a.attnum)
                               ELSE format('%I %s STORAGE %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                                           CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END,
                                           CASE a.attcompression WHEN 'p' THEN ' COMPRESSION pglz' WHEN 'l' THEN ' COMPRESSION lz4' ELSE '' END,
                                           CASE WHEN a.attcollation <> 0 THEN ' COLLATE ' || (SELECT format('%I.%I', n.nspname, l.collname) FROM pg_collation l JOIN pg_namespace n ON n.oid = l.collnamespace WHERE l.oid = a.attcollation) ELSE '' END)
                          END, ', ' ORDER BY a.attnum)
          INTO cols
          FROM pg_attribute a WHERE a.attrelid = leaf AND a.attnum > 0;
        EXECUTE format('CREATE %sTABLE storage.%I (%s)%s%s', CASE k.relpersistence WHEN 'u' THEN 'UNLOGGED ' ELSE '' END, copy_name, cols,
                       coalesce(' WITH (' || nullif(array_to_string(k.reloptions || ARRAY(SELECT 'toast.' || o FROM pg_class t, unnest(t.reloptions) o WHERE t.oid = k.reltoastrelid), ', '), '') || ')', ''),
                       coalesce(' TABLESPACE ' || (SELECT quote_ident(t.spcname) FROM pg_tablespace t WHERE t.oid = k.reltablespace), ''));
        FOR n IN SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = leaf AND a.attnum > 0 AND a.attisdropped ORDER BY a.attnum LOOP
            EXECUTE format('ALTER TABLE storage.%I DROP COLUMN %I', copy_name, '_pgse_dropped_' || n);
        END LOOP;
        copy_oid := to_regclass(format('storage.%I', copy_name));
        -- a TOAST table where the table has one, and not elsewhere
        IF (k.reltoastrelid <> 0) <> ((SELECT x.reltoastrelid FROM pg_class x WHERE x.oid = copy_oid) <> 0)
           OR storage._schema_change_layout(copy_oid) <> storage._schema_change_layout(leaf) THEN
            PERFORM storage._schema_change_copy_drop(s.id, leaf);
            UPDATE storage._schema_changes x SET plan = jsonb_set(x.plan, '{inplace}', coalesce(x.plan -> 'inplace', '{}') || jsonb_build_object(leaf::text, 'its copy differs')), updated_at = now()
             WHERE x.id = s.id;
            RETURN;
        END IF;
        EXECUTE format('ALTER TABLE storage.%I OWNER TO %I', copy_name, owner_name);
        -- what is copied: every column as it is, the new one converted (the column assigned, as
        -- ALTER TABLE … TYPE converts it; or, with an expression, by the trigger that keeps the
        -- table's new column in step, bound when the change began)
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
               string_agg(CASE WHEN a.attname = newcol THEN quote_ident(att.attname) ELSE quote_ident(a.attname) END, ', ' ORDER BY a.attnum)
          INTO into_list, select_list
          FROM pg_attribute a WHERE a.attrelid = leaf AND a.attnum > 0 AND NOT a.attisdropped AND (s.using_expr IS NULL OR a.attname <> newcol)
           -- (a virtual generated column is computed when read: its place holds NULL)
           AND a.attgenerated <> 'v';
        IF s.using_expr IS NOT NULL THEN
            PERFORM storage._run_as_owner(copy_oid::regclass, format('CREATE TRIGGER %I BEFORE INSERT ON storage.%I FOR EACH ROW EXECUTE FUNCTION storage.%I()',
                                                                     storage._schema_change_name(s.id, 'trigger'), copy_name, storage._schema_change_name(s.id, 'sync')));
        END IF;
        -- the new column's indexes (of a table, not of partitions: a partitioned table's column
        -- is not indexed), built on the copy too and taken over by the table with its files
        adopt := CASE WHEN leaf = s.relid
                      THEN (SELECT coalesce(jsonb_agg(jsonb_build_object('oid', ie -> 'oid', 'temp', ie -> 'temp')), '[]')
                              FROM jsonb_array_elements(storage._schema_change_indexes(s.id, leaf::regclass, att.attnum, newcol)) ie)
                      ELSE '[]' END;
        UPDATE storage._schema_changes x
           SET plan = x.plan || jsonb_build_object('copy', jsonb_build_object(
                          'new_indexes', adopt, 'adopt', '{}'::jsonb,
                          'leaf', leaf, 'table', copy_oid, 'stage', 'copy', 'filenode', k.relfilenode, 'layout', storage._schema_change_layout(leaf),
                          'copy_filenode', (SELECT x.relfilenode FROM pg_class x WHERE x.oid = copy_oid),
                          'key', to_jsonb(key), 'into', into_list, 'select', select_list, 'pairs', '[]'::jsonb)),
               -- every block there is now: a row written from now on is in the log
               leaf_blocks[x.leaf] = pg_relation_size(leaf) / current_setting('block_size')::bigint,
               block = 0, updated_at = now()
         WHERE x.id = s.id;
        RETURN;
    END IF;

    IF c ->> 'stage' = 'copy' THEN
        IF s.block >= s.leaf_blocks[s.leaf] THEN
            UPDATE storage._schema_changes x SET plan = jsonb_set(x.plan, '{copy,stage}', '"replayed"'), updated_at = now() WHERE x.id = s.id;
            RETURN;
        END IF;
        per_block := CASE WHEN k.relpages > 0 AND k.reltuples > 0 THEN k.reltuples / k.relpages ELSE 50 END;
        upto := least(s.leaf_blocks[s.leaf], s.block + greatest(1, floor(s.batch_rows / greatest(per_block, 1))::bigint));
        n := storage._run_as_owner(leaf::regclass,
                 format('INSERT INTO storage.%I (%s) SELECT %s FROM ONLY %s WHERE ctid >= $1::pg_catalog.tid AND ctid < $2::pg_catalog.tid',
                        copy_name, c ->> 'into', c ->> 'select', leaf::regclass),
                 ARRAY[format('(%s,0)', s.block), format('(%s,0)', upto)]);
        UPDATE storage._schema_changes x SET block = upto, rows_done = x.rows_done + n, updated_at = now() WHERE x.id = s.id;
        RETURN;
    END IF;

    IF c ->> 'stage' = 'replayed' THEN
        -- a row written while the copy went on may be in it twice (moved past the batches): what
        -- the log names is copied again before the copy's unique indexes are built
        n := storage._schema_change_copy_replay(s, leaf, 2147483647);
        UPDATE storage._schema_changes x SET plan = jsonb_set(x.plan, '{copy,stage}', '"index"'), updated_at = now() WHERE x.id = s.id;
        RETURN;
    END IF;

    IF c ->> 'stage' = 'index' THEN
        -- the table's indexes, one at a time, on the copy (not concurrently: nobody else writes it)
        SELECT x.indexrelid INTO idx FROM pg_index x
         WHERE x.indrelid = leaf AND NOT EXISTS (SELECT FROM jsonb_array_elements(c -> 'pairs') p WHERE (p ->> 0)::oid = x.indexrelid)
         ORDER BY x.indexrelid LIMIT 1;
        IF idx IS NULL THEN
            SELECT ne INTO e FROM jsonb_array_elements(c -> 'new_indexes') ne WHERE NOT (c -> 'adopt') ? (ne ->> 'temp') LIMIT 1;
            IF e IS NOT NULL THEN
                IF EXISTS (SELECT FROM pg_index x WHERE x.indexrelid = (e ->> 'oid')::oid AND x.indrelid = leaf) THEN
                    EXECUTE storage._schema_change_index_def((e ->> 'oid')::oid, copy_oid::regclass, e ->> 'temp', att.attnum, newcol, false);
                END IF;
                UPDATE storage._schema_changes x
                   SET plan = jsonb_set(x.plan, ARRAY['copy', 'adopt', e ->> 'temp'], coalesce(to_jsonb(to_regclass(format('storage.%I', e ->> 'temp'))::oid), 'null')),
                       updated_at = now()
                 WHERE x.id = s.id;
                RETURN;
            END IF;
            -- (its statistics: the rows the log names are found by the key's index)
            -- (as its owner under SECURITY_RESTRICTED_OPERATION, as ANALYZE runs)
            EXECUTE format('ANALYZE storage.%I', copy_name);
            UPDATE storage._schema_changes x SET plan = jsonb_set(x.plan, '{copy,stage}', '"replay"'), updated_at = now() WHERE x.id = s.id;
            RETURN;
        END IF;
        -- made by the extension's owner in its schema, which nobody else may create in:
        -- PostgreSQL builds it as the copy's owner, the table's, under SECURITY_RESTRICTED_OPERATION
        EXECUTE storage._schema_change_index_def(idx, copy_oid::regclass, storage._schema_change_name(s.id, 'c' || idx), 0::smallint, NULL, false);
        UPDATE storage._schema_changes x
           SET plan = jsonb_set(x.plan, '{copy,pairs}', (x.plan -> 'copy' -> 'pairs') || jsonb_build_array(jsonb_build_array(idx,
                          to_regclass(format('storage.%I', storage._schema_change_name(s.id, 'c' || idx)))::oid))),
               updated_at = now()
         WHERE x.id = s.id;
        RETURN;
    END IF;

    IF c ->> 'stage' = 'replay' THEN
        n := storage._schema_change_copy_replay(s, leaf, greatest(s.batch_rows, 1000));
        -- few enough left to copy under the lock
        IF n < 1000 THEN
            UPDATE storage._schema_changes x SET plan = jsonb_set(x.plan, '{copy,stage}', '"swap"'), updated_at = now() WHERE x.id = s.id;
        ELSE
            UPDATE storage._schema_changes x SET updated_at = now() WHERE x.id = s.id;
        END IF;
        RETURN;
    END IF;

    IF c ->> 'stage' = 'swap' THEN
        PERFORM storage._run_as_owner(leaf::regclass, format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', leaf::regclass));
        held := clock_timestamp();
        EXECUTE format('LOCK TABLE storage.%I IN ACCESS EXCLUSIVE MODE', copy_name);
        -- what was checked before the locks, again under them: a rewrite or a change of
        -- columns committed while the worker waited begins the copy again
        IF (SELECT x.relfilenode FROM pg_class x WHERE x.oid = leaf) <> (c ->> 'filenode')::oid
           OR (SELECT x.relfilenode FROM pg_class x WHERE x.oid = copy_oid) <> (c ->> 'copy_filenode')::oid
           OR to_jsonb(storage._schema_change_copy_key(leaf)) IS DISTINCT FROM c -> 'key'
           OR storage._schema_change_layout(leaf) <> c ->> 'layout' OR storage._schema_change_layout(copy_oid) <> c ->> 'layout' THEN
            PERFORM storage._schema_change_copy_drop(s.id, leaf);
            UPDATE storage._schema_changes x SET plan = (x.plan - 'copy') || jsonb_build_object('recopied', coalesce((x.plan ->> 'recopied')::integer, 0) + 1), block = 0, updated_at = now() WHERE x.id = s.id;
            RETURN;
        END IF;
        -- the indexes again, under the lock: one made meanwhile is made on the copy first, one
        -- dropped leaves its copy's, one being built concurrently is waited for
        IF EXISTS (SELECT FROM pg_index x WHERE x.indrelid = leaf AND NOT (x.indisvalid AND x.indisready AND x.indislive)) THEN
            RAISE EXCEPTION 'an index of % is being built', leaf::regclass USING ERRCODE = 'lock_not_available',
                  DETAIL = 'The copy''s files replace the table''s once every index of the table is valid.';
        END IF;
        IF EXISTS (SELECT FROM pg_index x WHERE x.indrelid = leaf AND NOT EXISTS (SELECT FROM jsonb_array_elements(c -> 'pairs') p WHERE (p ->> 0)::oid = x.indexrelid)) THEN
            UPDATE storage._schema_changes x SET plan = jsonb_set(x.plan, '{copy,stage}', '"index"'), updated_at = now() WHERE x.id = s.id;
            RETURN;
        END IF;
        -- published meanwhile (its subscribers must get the new column as updates): in place
        why := storage._schema_change_uncopyable(leaf);
        IF why IS NOT NULL THEN
            PERFORM storage._schema_change_copy_drop(s.id, leaf);
            UPDATE storage._schema_changes x
               SET plan = jsonb_set(x.plan - 'copy', '{inplace}', coalesce(x.plan -> 'inplace', '{}') || jsonb_build_object(leaf::text, why)),
                   block = 0, updated_at = now()
             WHERE x.id = s.id;
            RETURN;
        END IF;
        pairs := '[]';
        FOR idx IN SELECT (p ->> 1)::oid FROM jsonb_array_elements(c -> 'pairs') p WHERE NOT EXISTS (SELECT FROM pg_index x WHERE x.indexrelid = (p ->> 0)::oid AND x.indrelid = leaf) LOOP
            EXECUTE format('DROP INDEX IF EXISTS %s', idx::regclass);
        END LOOP;
        SELECT coalesce(jsonb_agg(p), '[]') INTO pairs FROM jsonb_array_elements(c -> 'pairs') p WHERE EXISTS (SELECT FROM pg_index x WHERE x.indexrelid = (p ->> 0)::oid AND x.indrelid = leaf);
        -- the new column's indexes the table takes over: each as the index it replaces would be
        -- made on the new column (that index still there, the name free in the table's schema)
        adopt := '[]';
        FOR e IN SELECT ne FROM jsonb_array_elements(c -> 'new_indexes') ne LOOP
            idx := (c -> 'adopt' ->> (e ->> 'temp'))::oid;
            CONTINUE WHEN idx IS NULL OR NOT EXISTS (SELECT FROM pg_index x WHERE x.indexrelid = idx AND x.indrelid = copy_oid);
            IF EXISTS (SELECT FROM pg_index x WHERE x.indexrelid = (e ->> 'oid')::oid AND x.indrelid = leaf)
               AND to_regclass(format('%I.%I', (SELECT n.nspname FROM pg_namespace n WHERE n.oid = k.relnamespace), e ->> 'temp')) IS NULL
               AND storage._schema_change_index_def(idx, copy_oid::regclass, e ->> 'temp', 0::smallint, NULL, false)
                   = storage._schema_change_index_def((e ->> 'oid')::oid, copy_oid::regclass, e ->> 'temp', att.attnum, newcol, false)
               -- (nor CLUSTER ON or REPLICA IDENTITY its owner set on the copy's index)
               AND (SELECT x.indisvalid AND x.indisready AND x.indislive AND NOT x.indisclustered AND NOT x.indisreplident
                      FROM pg_index x WHERE x.indexrelid = idx) THEN
                adopt := adopt || to_jsonb(idx);
            ELSE
                EXECUTE format('DROP INDEX %s', idx::regclass);
            END IF;
        END LOOP;
        IF EXISTS (SELECT FROM jsonb_array_elements(pairs) p
                    WHERE NOT EXISTS (SELECT FROM pg_index x WHERE x.indexrelid = (p ->> 1)::oid AND x.indrelid = copy_oid)
                       OR storage._schema_change_index_shape((p ->> 0)::oid) IS DISTINCT FROM storage._schema_change_index_shape((p ->> 1)::oid))
           OR EXISTS (SELECT FROM pg_index x WHERE x.indrelid = copy_oid AND NOT EXISTS (SELECT FROM jsonb_array_elements(pairs) p WHERE (p ->> 1)::oid = x.indexrelid)
                                                                     AND NOT adopt @> to_jsonb(x.indexrelid))
           OR EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = copy_oid AND (t.tgname <> storage._schema_change_name(s.id, 'trigger') OR t.tgenabled = 'D'
                          OR t.tgfoid <> to_regprocedure(format('storage.%I()', storage._schema_change_name(s.id, 'sync')))))
           OR (s.using_expr IS NOT NULL AND NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = copy_oid))
           OR EXISTS (SELECT FROM pg_rewrite r WHERE r.ev_class = copy_oid)
           OR EXISTS (SELECT FROM pg_constraint r WHERE r.conrelid = copy_oid)
           OR EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid = copy_oid OR i.inhparent = copy_oid)
           OR (SELECT x.relrowsecurity OR x.relkind <> 'r' FROM pg_class x WHERE x.oid = copy_oid) THEN
            -- the copy was changed by its owner: made again
            PERFORM storage._schema_change_copy_drop(s.id, leaf);
            UPDATE storage._schema_changes x SET plan = (x.plan - 'copy') || jsonb_build_object('recopied', coalesce((x.plan ->> 'recopied')::integer, 0) + 1), block = 0, updated_at = now() WHERE x.id = s.id;
            RETURN;
        END IF;
        n := storage._schema_change_copy_replay(s, leaf, 2147483647);
        PERFORM storage._schema_change_swap_files(leaf, copy_oid, ARRAY(SELECT (p ->> 0)::oid FROM jsonb_array_elements(pairs) p ORDER BY (p ->> 0)::oid),
                                                  ARRAY(SELECT (p ->> 1)::oid FROM jsonb_array_elements(pairs) p ORDER BY (p ->> 0)::oid));
        FOR idx IN SELECT a::oid FROM jsonb_array_elements_text(adopt) a LOOP
            PERFORM storage._schema_change_adopt_index(leaf, copy_oid, idx);
        END LOOP;
        -- the copy now holds the table's old files: dropped with the log
        PERFORM storage._schema_change_copy_drop(s.id, leaf);
        UPDATE storage._schema_changes x
           SET plan = (x.plan - 'copy') || jsonb_build_object('copied', coalesce(x.plan -> 'copied', '[]') || to_jsonb(leaf),
                                                              'adopted', coalesce((x.plan ->> 'adopted')::integer, 0) + jsonb_array_length(adopt),
                                                              'copy_swap_ms', greatest((x.plan ->> 'copy_swap_ms')::numeric,
                                                                  round((extract(epoch FROM clock_timestamp() - held) * 1000)::numeric, 1))),
               leaf = x.leaf + 1, block = 0, updated_at = now()
         WHERE x.id = s.id;
        RETURN;
    END IF;
    RAISE EXCEPTION 'schema change % copies % in an unknown stage: %', s.id, leaf::regclass, c ->> 'stage' USING ERRCODE = 'internal_error';
END $$;
COMMENT ON FUNCTION storage._schema_change_copy(storage._schema_changes, pg_attribute) IS
    'Internal: one unit of work of an online type change''s copy of a table (set-up, a batch, the rows written meanwhile copied again, an index of the copy, the swap of files), as the table''s owner; its stage in the change''s plan.';

-- The worker's side: one unit of work of change id per call, in the worker's transaction (a
-- batch of the backfill, an ADD … NOT VALID, a VALIDATE, the swap), or the top-level statement
-- the worker must run itself (CREATE INDEX CONCURRENTLY) and as whom. action: next (call again),
-- top (run statement as run_as, then call again), stop (done, failed or aborted).
CREATE FUNCTION storage._schema_change_step(id bigint, OUT action text, OUT statement text, OUT run_as oid) RETURNS record
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
DECLARE
    s storage._schema_changes;
    target regclass;
    att pg_attribute;
    newcol name;
    leaf oid;
    per_block float8;
    upto bigint;
    n bigint;
    idx jsonb;
    tmp regclass;
    nsp name;
    c record;
    carry jsonb := '[]';
    revalidate jsonb := '[]';
    default_expr text;
    col_comment text;
    checkname name;
    fkindex name;
    owner_name name;
    held timestamptz;
    views jsonb;
    ident jsonb;
    why text;
BEGIN
    PERFORM set_config('lock_timeout', storage._migration_lock_ms() || 'ms', true);
    action := 'next';
    SELECT * INTO s FROM storage._schema_changes x WHERE x.id = _schema_change_step.id FOR UPDATE;
    IF NOT FOUND OR s.state <> 'running' THEN
        action := 'stop';
        RETURN;
    END IF;
    -- the settings of the session that made the change
    PERFORM set_config('lock_timeout', s.lock_timeout_ms || 'ms', true);
    IF NOT EXISTS (SELECT FROM pg_class k WHERE k.oid = s.relid) THEN
        UPDATE storage._schema_changes x SET state = 'failed', error = 'the table was dropped', worker_pid = NULL, updated_at = now() WHERE x.id = s.id;
        action := 'stop';
        RETURN;
    END IF;
    target := s.relid;
    run_as := (SELECT k.relowner FROM pg_class k WHERE k.oid = target);
    nsp := (SELECT k.relnamespace::regnamespace::name FROM pg_class k WHERE k.oid = target);
    newcol := storage._schema_change_name(s.id, 'new');
    checkname := storage._schema_change_name(s.id, 'not_null');
    IF s.column_name IS NOT NULL THEN
        SELECT * INTO att FROM pg_attribute a WHERE a.attrelid = target AND a.attname = s.column_name AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            UPDATE storage._schema_changes x SET state = 'failed', error = format('column %I was dropped', s.column_name), worker_pid = NULL, updated_at = now() WHERE x.id = s.id;
            action := 'stop';
            RETURN;
        END IF;
    END IF;

    IF s.kind = 'alter_column_type' AND s.phase = 'backfill' THEN
        IF s.leaves IS NULL THEN
            -- (a copy under way is begun again: the batches start again from the first leaf)
            IF s.plan ? 'copy' THEN
                PERFORM storage._schema_change_copy_drop(s.id, (s.plan -> 'copy' ->> 'leaf')::oid);
                UPDATE storage._schema_changes x SET plan = x.plan - 'copy' WHERE x.id = s.id;
            END IF;
            -- the leaves and their sizes now: a row version written after the trigger was made
            -- has its value already, and the batches stop at these sizes
            SELECT coalesce(array_agg(k.oid ORDER BY k.oid), '{}'),
                   coalesce(array_agg(pg_relation_size(k.oid) / current_setting('block_size')::bigint ORDER BY k.oid), '{}'),
                   sum(CASE WHEN k.reltuples >= 0 THEN k.reltuples
                            ELSE pg_relation_size(k.oid) / current_setting('block_size')::bigint * 50 END)::bigint
              INTO s.leaves, s.leaf_blocks, s.rows_total
              FROM pg_class k
             WHERE k.oid = ANY (storage._schema_change_leaves(target));
            UPDATE storage._schema_changes x SET leaves = s.leaves, leaf_blocks = s.leaf_blocks, rows_total = s.rows_total,
                   leaf = 1, block = 0, updated_at = now() WHERE x.id = s.id;
            RETURN;
        END IF;
        IF s.leaf > cardinality(s.leaves) THEN
            -- a partition attached meanwhile: backfilled too
            IF EXISTS (SELECT FROM unnest(storage._schema_change_leaves(target)) AS l(oid) WHERE l.oid <> ALL (s.leaves)) THEN
                UPDATE storage._schema_changes x
                   SET leaves = x.leaves || ARRAY(SELECT l.oid FROM unnest(storage._schema_change_leaves(target)) AS l(oid) WHERE l.oid <> ALL (x.leaves) ORDER BY l.oid),
                       leaf_blocks = x.leaf_blocks || ARRAY(SELECT pg_relation_size(l.oid) / current_setting('block_size')::bigint
                                                              FROM unnest(storage._schema_change_leaves(target)) AS l(oid) WHERE l.oid <> ALL (x.leaves) ORDER BY l.oid),
                       updated_at = now()
                 WHERE x.id = s.id;
                RETURN;
            END IF;
            -- every row version older than the change was updated by the backfill: one still
            -- NULL in the new column and older than the change was not (hidden from it, moved
            -- behind it by VACUUM FULL or CLUSTER, skipped by a trigger of the table). Read as
            -- the extension's owner: every row, and no code of the table's runs for IS NULL.
            n := 0;
            -- (a table copied has no row older than its copy)
            FOR leaf IN SELECT l.oid FROM unnest(storage._schema_change_leaves(target)) AS l(oid)
                         WHERE NOT coalesce(s.plan -> 'copied', '[]') ? l.oid::text LOOP
                EXECUTE format('SELECT count(*) FROM ONLY %s WHERE %I IS NULL AND age(xmin) >= age(xid($1))', leaf::regclass, newcol)
                   INTO upto USING s.started_xid;
                n := n + upto;
            END LOOP;
            IF n > 0 AND NOT s.plan ? 'repassed' THEN
                -- once more over every block: the rows left are found wherever they are now
                UPDATE storage._schema_changes x SET leaves = NULL, plan = x.plan || '{"repassed": true}', updated_at = now() WHERE x.id = s.id;
                RETURN;
            ELSIF n > 0 THEN
                RAISE EXCEPTION '% rows of % were not backfilled', n, target USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'Rows older than the change still have no value in the new column after a second pass: a BEFORE UPDATE trigger of the table skips the backfill''s UPDATE, or row security hides them from the table''s owner.',
                      HINT = 'Let the trigger pass the UPDATE (or the owner see the rows), then call the function again (it backfills again), or abort it.';
            END IF;
            UPDATE storage._schema_changes x SET phase = 'index', step = 0, updated_at = now() WHERE x.id = s.id;
            RETURN;
        END IF;
        leaf := s.leaves[s.leaf];
        -- a table with a key is copied and swapped (storage._schema_change_copy), the others
        -- (and a second pass) updated in place
        IF s.plan ? 'copy' THEN
            PERFORM storage._schema_change_copy(s, att);
            RETURN;
        END IF;
        IF NOT EXISTS (SELECT FROM pg_class k WHERE k.oid = leaf) OR s.block >= s.leaf_blocks[s.leaf] THEN
            UPDATE storage._schema_changes x SET leaf = x.leaf + 1, block = 0, updated_at = now() WHERE x.id = s.id;
            RETURN;
        END IF;
        IF s.block = 0 AND NOT s.plan ? 'repassed' AND NOT coalesce(s.plan -> 'inplace', '{}') ? leaf::text THEN
            why := storage._schema_change_uncopyable(leaf);
            IF why IS NULL THEN
                PERFORM storage._schema_change_copy(s, att);
            ELSE
                idx := jsonb_build_object(leaf::text, why);
                UPDATE storage._schema_changes x SET plan = jsonb_set(x.plan, '{inplace}', coalesce(x.plan -> 'inplace', '{}') || idx), updated_at = now()
                 WHERE x.id = s.id;
            END IF;
            RETURN;
        END IF;
        per_block := (SELECT CASE WHEN k.relpages > 0 AND k.reltuples > 0 THEN k.reltuples / k.relpages ELSE 50 END FROM pg_class k WHERE k.oid = leaf);
        upto := least(s.leaf_blocks[s.leaf], s.block + greatest(1, floor(s.batch_rows / greatest(per_block, 1))::bigint));
        -- an UPDATE of each row as the table's owner: its triggers fire as for any update (this
        -- change's last), its audit capture logs nothing (a move of the extension's own), its
        -- search column is not recomputed (its sources did not change)
        n := storage._run_as_owner(leaf::regclass,
                 format('UPDATE ONLY %s SET %I = NULL WHERE ctid >= $1::pg_catalog.tid AND ctid < $2::pg_catalog.tid AND %I IS NULL',
                        leaf::regclass, newcol, newcol),
                 ARRAY[format('(%s,0)', s.block), format('(%s,0)', upto)], ARRAY[leaf]);
        UPDATE storage._schema_changes x SET block = upto, rows_done = x.rows_done + n, updated_at = now() WHERE x.id = s.id;
        RETURN;
    END IF;

    IF s.kind IN ('alter_column_type', 'add_foreign_key') AND s.phase = 'index' THEN
        IF s.kind = 'alter_column_type' THEN
            IF s.step = 0 THEN
                UPDATE storage._schema_changes x
                   SET plan = jsonb_set(x.plan, '{indexes}', storage._schema_change_indexes(s.id, target, att.attnum, newcol)), step = 1, updated_at = now()
                 WHERE x.id = s.id;
                RETURN;
            END IF;
            idx := s.plan -> 'indexes' -> (s.step - 1);
            IF idx IS NULL THEN
                UPDATE storage._schema_changes x SET phase = 'not null', step = 0, updated_at = now() WHERE x.id = s.id;
                RETURN;
            END IF;
        ELSE
            -- a foreign key's supporting index: any valid index led by its columns will do
            IF EXISTS (SELECT FROM pg_index x WHERE x.indrelid = target AND x.indisvalid AND x.indpred IS NULL
                          AND (SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_attribute a
                                WHERE a.attrelid = target AND a.attnum = ANY ((x.indkey::int2[])[0:cardinality(s.columns) - 1]))
                              = (SELECT array_agg(k ORDER BY k) FROM unnest(s.columns) k)
                          AND x.indnkeyatts >= cardinality(s.columns)) THEN
                UPDATE storage._schema_changes x SET phase = 'check', step = 0, updated_at = now() WHERE x.id = s.id;
                RETURN;
            END IF;
            fkindex := coalesce(s.made_index, (left((SELECT k.relname FROM pg_class k WHERE k.oid = target) || '_' || array_to_string(s.columns, '_'), 59) || '_idx')::name);
            IF s.made_index IS NULL THEN
                IF to_regclass(format('%I.%I', nsp, fkindex)) IS NOT NULL THEN
                    fkindex := (left(fkindex, 50) || '_' || s.id || '_idx')::name;
                END IF;
                UPDATE storage._schema_changes x SET made_index = fkindex, updated_at = now() WHERE x.id = s.id;
            END IF;
            idx := jsonb_build_object('temp', fkindex,
                       'create', format('CREATE INDEX CONCURRENTLY %I ON %s (%s)', fkindex, target,
                                        (SELECT string_agg(quote_ident(k), ', ' ORDER BY o) FROM unnest(s.columns) WITH ORDINALITY AS u(k, o))));
        END IF;
        tmp := to_regclass(format('%I.%I', nsp, idx ->> 'temp'));
        IF tmp IS NOT NULL AND (SELECT x.indisvalid FROM pg_index x WHERE x.indexrelid = tmp) THEN
            UPDATE storage._schema_changes x SET step = x.step + 1, updated_at = now() WHERE x.id = s.id;
            RETURN;
        END IF;
        -- a build interrupted before left an invalid index of that name: dropped first
        action := 'top';
        statement := CASE WHEN tmp IS NOT NULL THEN format('DROP INDEX CONCURRENTLY %s', tmp) ELSE idx ->> 'create' END;
        RETURN;
    END IF;

    IF (s.kind = 'alter_column_type' AND s.phase = 'not null') OR (s.kind = 'add_not_null' AND s.phase IN ('check', 'validate')) THEN
        -- CHECK (column IS NOT NULL) NOT VALID, then validated (SHARE UPDATE EXCLUSIVE: writers go
        -- on): SET NOT NULL then needs no scan
        IF s.kind = 'alter_column_type' AND NOT att.attnotnull THEN
            UPDATE storage._schema_changes x SET phase = 'swap', step = 0, updated_at = now() WHERE x.id = s.id;
            RETURN;
        END IF;
        IF NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = target AND k.conname = checkname) THEN
            PERFORM storage._run_as_owner(target, format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NOT NULL) NOT VALID', target, checkname,
                                                         CASE s.kind WHEN 'alter_column_type' THEN newcol ELSE s.column_name END));
            UPDATE storage._schema_changes x SET phase = CASE x.kind WHEN 'add_not_null' THEN 'validate' ELSE x.phase END, updated_at = now() WHERE x.id = s.id;
        ELSIF NOT (SELECT k.convalidated FROM pg_constraint k WHERE k.conrelid = target AND k.conname = checkname) THEN
            PERFORM storage._run_as_owner(target, format('ALTER TABLE %s VALIDATE CONSTRAINT %I', target, checkname));
            UPDATE storage._schema_changes x SET updated_at = now() WHERE x.id = s.id;
        ELSE
            UPDATE storage._schema_changes x SET phase = 'swap', step = 0, updated_at = now() WHERE x.id = s.id;
        END IF;
        RETURN;
    END IF;

    IF s.kind = 'add_not_null' AND s.phase = 'swap' THEN
        PERFORM storage._run_as_owner(target, format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', target, s.column_name));
        PERFORM storage._run_as_owner(target, format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', target, checkname));
        UPDATE storage._schema_changes x SET phase = 'done', state = 'done', finished_at = now(), updated_at = now(), worker_pid = NULL WHERE x.id = s.id;
        action := 'stop';
        RETURN;
    END IF;

    IF s.kind = 'add_foreign_key' AND s.phase = 'check' THEN
        IF NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = target AND k.conname = s.constraint_name) THEN
            PERFORM storage._run_as_owner(target, format('ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (%s) REFERENCES %s (%s) NOT VALID',
                target, s.constraint_name,
                (SELECT string_agg(quote_ident(k), ', ' ORDER BY o) FROM unnest(s.columns) WITH ORDINALITY AS u(k, o)), s.ref::regclass,
                (SELECT string_agg(quote_ident(k), ', ' ORDER BY o) FROM unnest(s.ref_columns) WITH ORDINALITY AS u(k, o))));
        END IF;
        UPDATE storage._schema_changes x SET phase = 'validate', step = 0, updated_at = now() WHERE x.id = s.id;
        RETURN;
    END IF;

    IF s.kind IN ('add_foreign_key', 'add_check') AND s.phase = 'validate' THEN
        IF EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = target AND k.conname = s.constraint_name AND NOT k.convalidated) THEN
            PERFORM storage._run_as_owner(target, format('ALTER TABLE %s VALIDATE CONSTRAINT %I', target, s.constraint_name));
        END IF;
        UPDATE storage._schema_changes x SET phase = 'done', state = 'done', finished_at = now(), updated_at = now(), worker_pid = NULL WHERE x.id = s.id;
        action := 'stop';
        RETURN;
    END IF;

    IF s.kind = 'alter_column_type' AND s.phase = 'swap' THEN
        -- the one short transaction: ACCESS EXCLUSIVE for as long as the catalog takes
        PERFORM storage._run_as_owner(target, format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', target));
        held := clock_timestamp();
        -- the indexes to rebuild, read again under the lock: one made meanwhile goes back to
        -- the index phase
        IF (SELECT count(*) FROM jsonb_array_elements(storage._schema_change_indexes(s.id, target, att.attnum, newcol)))
           <> jsonb_array_length(coalesce(s.plan -> 'indexes', '[]')) THEN
            UPDATE storage._schema_changes x SET phase = 'index', step = 0, updated_at = now() WHERE x.id = s.id;
            RETURN;
        END IF;
        IF EXISTS (SELECT FROM unnest(storage._schema_change_leaves(target)) AS l(oid) WHERE l.oid <> ALL (s.leaves)) THEN
            UPDATE storage._schema_changes x SET phase = 'backfill', updated_at = now() WHERE x.id = s.id;
            RETURN;
        END IF;
        owner_name := (SELECT r.rolname FROM pg_roles r WHERE r.oid = run_as);
        -- the constraints to carry: the table's CHECKs and foreign keys on the column, and the
        -- foreign keys of other tables referencing it (dropped first: they hang on its index)
        FOR c IN SELECT k.oid, k.conrelid, k.conname, k.convalidated, regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', '') AS def
                   FROM pg_constraint k
                  WHERE k.conparentid = 0 AND k.contype IN ('c', 'f')
                    AND ((k.conrelid = target AND att.attnum = ANY (k.conkey))
                         OR (k.confrelid = target AND att.attnum = ANY (k.confkey)))
                    AND k.conname <> checkname
                  ORDER BY k.oid
        LOOP
            carry := carry || jsonb_build_object('relid', c.conrelid, 'name', c.conname, 'def', c.def, 'valid', c.convalidated);
            IF c.conrelid <> target THEN
                PERFORM storage._run_as_owner(c.conrelid::regclass, format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname));
            END IF;
        END LOOP;
        default_expr := (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d WHERE d.adrelid = target AND d.adnum = att.attnum);
        -- an identity column's sequence goes with it: made again on the new one, where it was
        IF att.attidentity <> '' THEN
            SELECT jsonb_build_object('name', format('%I.%I', n.nspname, q.relname), 'increment', x.seqincrement, 'min', x.seqmin,
                                      'max', CASE WHEN x.seqmax <> CASE x.seqtypid WHEN 'int2'::regtype THEN 32767 WHEN 'int4'::regtype THEN 2147483647
                                                                                    ELSE 9223372036854775807 END THEN x.seqmax END,
                                      'cache', x.seqcache, 'cycle', x.seqcycle)
              INTO ident
              FROM pg_sequence x JOIN pg_class q ON q.oid = x.seqrelid JOIN pg_namespace n ON n.oid = q.relnamespace
             WHERE x.seqrelid = pg_get_serial_sequence(target::text, att.attname)::regclass;
            EXECUTE format('SELECT CASE WHEN is_called THEN last_value + %s ELSE last_value END FROM %s', ident ->> 'increment', ident ->> 'name') INTO n;
            ident := ident || jsonb_build_object('start', n);
        END IF;
        col_comment := col_description(target, att.attnum);
        PERFORM storage._run_as_owner(target, format('DROP TRIGGER %I ON %s', storage._schema_change_name(s.id, 'trigger'), target));
        FOR c IN SELECT p.polrelid FROM pg_policy p WHERE p.polname = storage._schema_change_name(s.id, 'backfill') LOOP
            PERFORM storage._run_as_owner(c.polrelid::regclass, format('DROP POLICY %I ON %s', storage._schema_change_name(s.id, 'backfill'), c.polrelid::regclass));
        END LOOP;
        -- sequences owned by the column (serial) move to the new one before it goes
        FOR c IN SELECT d.objid FROM pg_depend d JOIN pg_class q ON q.oid = d.objid AND q.relkind = 'S'
                  WHERE d.classid = 'pg_class'::regclass AND d.refobjid = target AND d.refobjsubid = att.attnum AND d.deptype = 'a'
        LOOP
            PERFORM storage._run_as_owner(c.objid::regclass, format('ALTER SEQUENCE %s OWNED BY %s.%I', c.objid::regclass, target, newcol));
        END LOOP;
        -- the views reading the column, deepest first; made again below, as the table's owner
        views := storage._schema_change_views(target, att.attnum);
        FOR idx IN SELECT e FROM jsonb_array_elements(views) WITH ORDINALITY AS u(e, o) ORDER BY o DESC LOOP
            PERFORM storage._run_as_owner(target, format('DROP VIEW %s', (idx ->> 'oid')::oid::regclass));
        END LOOP;
        PERFORM storage._run_as_owner(target, format('ALTER TABLE %s DROP COLUMN %I', target, att.attname));
        PERFORM storage._run_as_owner(target, format('ALTER TABLE %s RENAME COLUMN %I TO %I', target, newcol, att.attname));
        IF default_expr IS NOT NULL THEN
            PERFORM storage._run_as_owner(target, format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', target, att.attname, default_expr));
        END IF;
        IF att.attnotnull THEN
            -- proven by the validated CHECK: no scan
            PERFORM storage._run_as_owner(target, format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', target, att.attname));
            PERFORM storage._run_as_owner(target, format('ALTER TABLE %s DROP CONSTRAINT %I', target, checkname));
        END IF;
        IF att.attidentity <> '' THEN
            PERFORM storage._run_as_owner(target, format('ALTER TABLE %s ALTER COLUMN %I ADD GENERATED %s AS IDENTITY (SEQUENCE NAME %s START WITH %s INCREMENT BY %s MINVALUE %s%s CACHE %s%s)',
                target, att.attname, CASE att.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END, ident ->> 'name', ident ->> 'start',
                ident ->> 'increment', ident ->> 'min', coalesce(' MAXVALUE ' || (ident ->> 'max'), ''), ident ->> 'cache',
                CASE WHEN (ident ->> 'cycle')::boolean THEN ' CYCLE' ELSE '' END));
        END IF;
        -- (one the copy made for an index dropped since: not carried)
        FOR c IN SELECT x.indexrelid FROM pg_index x JOIN pg_class k ON k.oid = x.indexrelid
                  WHERE x.indrelid = target AND k.relname LIKE '\_pgse\_sc' || s.id || '\_i%'
                    AND k.relname NOT IN (SELECT e ->> 'temp' FROM jsonb_array_elements(coalesce(s.plan -> 'indexes', '[]')) e)
        LOOP
            PERFORM storage._run_as_owner(target, format('DROP INDEX %s', c.indexrelid::regclass));
        END LOOP;
        FOR idx IN SELECT * FROM jsonb_array_elements(coalesce(s.plan -> 'indexes', '[]')) LOOP
            IF idx ->> 'constraint' IS NOT NULL THEN
                PERFORM storage._run_as_owner(target, format('ALTER TABLE %s ADD CONSTRAINT %I %s USING INDEX %I%s', target, idx ->> 'constraint',
                    CASE idx ->> 'contype' WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END, idx ->> 'temp',
                    CASE WHEN (idx ->> 'deferred')::boolean THEN ' DEFERRABLE INITIALLY DEFERRED' WHEN (idx ->> 'deferrable')::boolean THEN ' DEFERRABLE' ELSE '' END));
            ELSE
                PERFORM storage._run_as_owner(target, format('ALTER INDEX %I.%I RENAME TO %I', nsp, idx ->> 'temp', idx ->> 'name'));
            END IF;
            IF (idx ->> 'replident')::boolean THEN
                PERFORM storage._run_as_owner(target, format('ALTER TABLE %s REPLICA IDENTITY USING INDEX %I', target,
                                                             coalesce(idx ->> 'constraint', idx ->> 'name')));
            END IF;
            IF (idx ->> 'clustered')::boolean THEN
                PERFORM storage._run_as_owner(target, format('ALTER TABLE %s CLUSTER ON %I', target, coalesce(idx ->> 'constraint', idx ->> 'name')));
            END IF;
            IF idx ->> 'comment' IS NOT NULL THEN
                PERFORM storage._run_as_owner(target, format('COMMENT ON INDEX %I.%I IS %L', nsp, coalesce(idx ->> 'constraint', idx ->> 'name'), idx ->> 'comment'));
            END IF;
            IF idx ->> 'constraint_comment' IS NOT NULL THEN
                PERFORM storage._run_as_owner(target, format('COMMENT ON CONSTRAINT %I ON %s IS %L', idx ->> 'constraint', target, idx ->> 'constraint_comment'));
            END IF;
        END LOOP;
        -- the constraints again, NOT VALID (no scan now), validated next
        FOR idx IN SELECT * FROM jsonb_array_elements(carry) LOOP
            PERFORM storage._run_as_owner((idx ->> 'relid')::oid::regclass,
                format('ALTER TABLE %s ADD CONSTRAINT %I %s NOT VALID', (idx ->> 'relid')::oid::regclass, idx ->> 'name', idx ->> 'def'));
            IF (idx ->> 'valid')::boolean THEN
                revalidate := revalidate || jsonb_build_object('relid', idx -> 'relid', 'name', idx -> 'name');
            END IF;
        END LOOP;
        IF col_comment IS NOT NULL THEN
            PERFORM storage._run_as_owner(target, format('COMMENT ON COLUMN %s.%I IS %L', target, att.attname, col_comment));
        END IF;
        FOR idx IN SELECT e FROM jsonb_array_elements(views) WITH ORDINALITY AS u(e, o) ORDER BY o LOOP
            PERFORM storage._run_as_owner(target, idx ->> 'create');
            PERFORM storage._run_as_owner(target, g) FROM jsonb_array_elements_text(idx -> 'grants') AS g;
            PERFORM storage._run_as_owner(target, m) FROM jsonb_array_elements_text(idx -> 'comments') AS m;
        END LOOP;
        FOR c IN SELECT p.privilege_type, p.grantee, p.is_grantable FROM aclexplode(att.attacl) p LOOP
            PERFORM storage._run_as_owner(target, format('GRANT %s (%I) ON %s TO %s%s', c.privilege_type, att.attname, target,
                CASE WHEN c.grantee = 0 THEN 'PUBLIC' ELSE quote_ident((SELECT r.rolname FROM pg_roles r WHERE r.oid = c.grantee)) END,
                CASE WHEN c.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END));
        END LOOP;
        IF att.attstattarget IS NOT NULL AND att.attstattarget >= 0 THEN
            PERFORM storage._run_as_owner(target, format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', target, att.attname, att.attstattarget));
        END IF;
        -- the audit log: the type change as one DDL row (the rows before and after stay readable:
        -- a value's JSON)
        IF EXISTS (SELECT FROM audit._tracked t WHERE t.table_name = target) THEN
            PERFORM audit._log_ddl(target, nsp, (SELECT k.relname FROM pg_class k WHERE k.oid = target), 'storage.alter_column_type',
                                   jsonb_build_object('column', att.attname, 'from', format_type(att.atttypid, att.atttypmod), 'to', s.new_type,
                                                      'using', s.using_expr));
        END IF;
        EXECUTE format('DROP FUNCTION storage.%I()', storage._schema_change_name(s.id, 'sync'));
        -- how long the lock was held (the rest of the transaction is its commit)
        UPDATE storage._schema_changes x
           SET phase = 'validate', step = 0, updated_at = now(),
               plan = x.plan || jsonb_build_object('revalidate', revalidate,
                                                   'swap_ms', round((extract(epoch FROM clock_timestamp() - held) * 1000)::numeric, 1))
         WHERE x.id = s.id;
        RETURN;
    END IF;

    IF s.kind = 'alter_column_type' AND s.phase = 'validate' THEN
        idx := s.plan -> 'revalidate' -> s.step;
        IF idx IS NULL THEN
            UPDATE storage._schema_changes x SET phase = 'done', state = 'done', finished_at = now(), updated_at = now(), worker_pid = NULL WHERE x.id = s.id;
            action := 'stop';
            RETURN;
        END IF;
        IF EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = (idx ->> 'relid')::oid AND k.conname = idx ->> 'name' AND NOT k.convalidated) THEN
            PERFORM storage._run_as_owner((idx ->> 'relid')::oid::regclass, format('ALTER TABLE %s VALIDATE CONSTRAINT %I', (idx ->> 'relid')::oid::regclass, idx ->> 'name'));
        END IF;
        UPDATE storage._schema_changes x SET step = x.step + 1, updated_at = now() WHERE x.id = s.id;
        RETURN;
    END IF;
    RAISE EXCEPTION 'schema change % is in an unknown phase: % %', s.id, s.kind, s.phase USING ERRCODE = 'internal_error';
END $$;
COMMENT ON FUNCTION storage._schema_change_step(bigint) IS
    'Internal: one unit of work of an online schema change in the worker''s transaction (a backfill batch, an ADD … NOT VALID, a VALIDATE, the swap), or the top-level statement the worker runs next (CREATE INDEX CONCURRENTLY) and the role to run it as.';

CREATE FUNCTION storage._schema_change_failed(id bigint, error text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s storage._schema_changes;
BEGIN
    UPDATE storage._schema_changes x SET state = 'failed', error = _schema_change_failed.error, worker_pid = NULL, updated_at = now()
     WHERE x.id = _schema_change_failed.id AND x.state = 'running'
    RETURNING * INTO s;
    -- a copy under way is dropped (its log would grow with every write until the change is
    -- resumed, which copies again); if the table cannot be locked for it now, the resume or the
    -- abort drops it
    IF s.plan ? 'copy' THEN
        BEGIN
            PERFORM storage._schema_change_copy_drop(s.id, (s.plan -> 'copy' ->> 'leaf')::oid);
            UPDATE storage._schema_changes x SET plan = x.plan - 'copy' WHERE x.id = s.id;
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END IF;
END $$;
COMMENT ON FUNCTION storage._schema_change_failed(bigint, text) IS
    'Internal: records that an online schema change stopped with error (failed: called again, it resumes), and drops its copy under way.';

-- storage.abort_schema_change's work, as the extension owner (src/migrations/online.rs checked
-- that the caller owns the table): the worker stopped, then what the change made dropped.
CREATE FUNCTION storage._schema_change_abort(target regclass) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
DECLARE
    s storage._schema_changes;
    nsp name := (SELECT k.relnamespace::regnamespace::name FROM pg_class k WHERE k.oid = target);
    c record;
BEGIN
    PERFORM set_config('lock_timeout', storage._migration_lock_ms() || 'ms', true);
    SELECT * INTO s FROM storage._schema_changes x WHERE x.relid = target AND x.state IN ('running', 'failed');
    IF NOT FOUND THEN
        RETURN 'none';
    END IF;
    IF s.kind = 'alter_column_type' AND s.phase = 'validate' THEN
        RAISE EXCEPTION 'the change of column % of % to % is past its swap', s.column_name, target, s.new_type
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    DETAIL = 'The column has its new type; only the validation of constraints carried across it remains.',
                    HINT = 'Let it finish (call storage.alter_column_type again), then change the type back with storage.alter_column_type.';
    END IF;
    -- the worker first (it holds the row while it works)
    IF EXISTS (SELECT FROM pg_stat_activity a WHERE a.pid = s.worker_pid AND a.backend_type = 'pg_storage_ext schema change') THEN
        PERFORM pg_terminate_backend(s.worker_pid, 10000);
    END IF;
    SELECT * INTO s FROM storage._schema_changes x WHERE x.id = s.id FOR UPDATE;
    IF s.state NOT IN ('running', 'failed') OR (s.kind = 'alter_column_type' AND s.phase = 'validate') THEN
        RAISE EXCEPTION 'schema change % of % ended while it was being aborted (%)', s.id, target, s.state
              USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'See storage.schema_changes.';
    END IF;
    IF s.kind = 'alter_column_type' THEN
        IF s.plan ? 'copy' THEN
            PERFORM storage._schema_change_copy_drop(s.id, (s.plan -> 'copy' ->> 'leaf')::oid);
        END IF;
        PERFORM storage._schema_change_retry(target, format('DROP TRIGGER IF EXISTS %I ON %s', storage._schema_change_name(s.id, 'trigger'), target));
        -- its indexes and its NOT NULL check go with it
        PERFORM storage._schema_change_retry(target, format('ALTER TABLE %s DROP COLUMN IF EXISTS %I', target, storage._schema_change_name(s.id, 'new')));
        IF to_regproc(format('storage.%I', storage._schema_change_name(s.id, 'sync'))) IS NOT NULL THEN
            EXECUTE format('DROP FUNCTION storage.%I()', storage._schema_change_name(s.id, 'sync'));
        END IF;
        FOR c IN SELECT p.polrelid FROM pg_policy p WHERE p.polname = storage._schema_change_name(s.id, 'backfill') LOOP
            PERFORM storage._schema_change_retry(c.polrelid::regclass, format('DROP POLICY %I ON %s', storage._schema_change_name(s.id, 'backfill'), c.polrelid::regclass));
        END LOOP;
    ELSIF s.kind = 'add_not_null' THEN
        PERFORM storage._schema_change_retry(target, format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', target, storage._schema_change_name(s.id, 'not_null')));
    ELSE
        IF EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = target AND k.conname = s.constraint_name AND NOT k.convalidated) THEN
            PERFORM storage._schema_change_retry(target, format('ALTER TABLE %s DROP CONSTRAINT %I', target, s.constraint_name));
        END IF;
        IF s.made_index IS NOT NULL AND to_regclass(format('%I.%I', nsp, s.made_index)) IS NOT NULL THEN
            PERFORM storage._schema_change_retry(target, format('DROP INDEX %I.%I', nsp, s.made_index));
        END IF;
    END IF;
    UPDATE storage._schema_changes x SET state = 'aborted', phase = 'aborted', worker_pid = NULL, finished_at = now(), updated_at = now() WHERE x.id = s.id;
    RETURN 'aborted';
END $$;
COMMENT ON FUNCTION storage._schema_change_abort(regclass) IS
    'Internal: storage.abort_schema_change as the extension owner: stops the worker, drops the new column, its trigger and functions, or the constraint NOT VALID and the index the change made.';

-- Changes whose worker is gone (a crash, a restart, a terminated worker), started again where
-- they stopped by storage._recover: the heartbeat's self-healing.
CREATE FUNCTION storage._schema_change_recover() RETURNS text[]
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s storage._schema_changes;
    done text[] := '{}';
BEGIN
    FOR s IN SELECT * FROM storage._schema_changes x
              WHERE x.state = 'running' AND x.updated_at < now() - interval '5 seconds'
                AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.pid = x.worker_pid AND a.backend_type = 'pg_storage_ext schema change')
              ORDER BY x.id
    LOOP
        IF s.resumes >= 5 THEN
            UPDATE storage._schema_changes x
               SET state = 'failed', worker_pid = NULL, updated_at = now(),
                   error = format('the worker stopped %s times without finishing (see the server log); not resumed again by itself: call the function again to resume it', s.resumes + 1)
             WHERE x.id = s.id AND x.state = 'running';
            done := done || format('schema change %s failed: interrupted too often', s.id);
        ELSE
            UPDATE storage._schema_changes x SET resumes = x.resumes + 1, updated_at = now(), worker_pid = storage._schema_change_launch(x.id)
             WHERE x.id = s.id AND x.state = 'running';
            IF FOUND THEN
                done := done || format('schema change %s resumed', s.id);
            END IF;
        END IF;
    END LOOP;
    RETURN done;
END $$;
COMMENT ON FUNCTION storage._schema_change_recover() IS
    'Internal: starts the worker again for every running online schema change whose worker is gone (5 times at most; then failed, to be resumed by calling the function again).';

CREATE FUNCTION storage.alter_column_type(target regclass, column_name name, new_type text, using_expr text DEFAULT NULL) RETURNS text
LANGUAGE sql VOLATILE AS $$
    -- no pinned search_path: the type and the expression are bound with the caller's
    SELECT storage._schema_change('alter_column_type', $1,
               pg_catalog.jsonb_build_object('column', $2, 'type', $3)::text, $4, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION storage.alter_column_type(regclass, name, text, text) IS
    'Changes a column''s type without locking writers out: a new column kept in step by a trigger, filled by a worker in batches (pg_storage_ext.migration_batch_rows): a table with a key copied beside itself with the rows written meanwhile copied again and its files swapped in (a short ACCESS EXCLUSIVE), others updated in place; its indexes built concurrently, then swapped in one short ACCESS EXCLUSIVE transaction (bounded by migration_lock_timeout, retried); constraints and foreign keys on it are carried NOT VALID and validated after. using_expr converts (as ALTER TABLE … USING; columns by name). Returns started, resumed (an interrupted one, called again), running, or done; storage.schema_changes shows its progress. The column moves to the end of the table''s columns.';

CREATE FUNCTION storage.add_not_null(target regclass, column_name name) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT storage._schema_change('add_not_null', $1, pg_catalog.jsonb_build_object('column', $2)::text, NULL, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION storage.add_not_null(regclass, name) IS
    'Makes a column NOT NULL without locking writers out: CHECK (column IS NOT NULL) NOT VALID, validated (SHARE UPDATE EXCLUSIVE), then SET NOT NULL using it (no scan) and the check dropped, by a worker. Returns started, resumed, running or done.';

CREATE FUNCTION storage.add_check(target regclass, name name, expr text) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT storage._schema_change('add_check', $1, pg_catalog.jsonb_build_object('name', $2)::text, $3, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION storage.add_check(regclass, name, text) IS
    'Adds CHECK (expr) named name without locking writers out: added NOT VALID now (expr bound with the caller''s search_path), validated by a worker (SHARE UPDATE EXCLUSIVE). Returns started, resumed, running or done.';

CREATE FUNCTION storage.add_foreign_key(target regclass, columns name[], ref regclass, ref_columns name[]) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT storage._schema_change('add_foreign_key', $1,
               pg_catalog.jsonb_build_object('columns', $2, 'ref', $3::pg_catalog.oid, 'ref_columns', $4)::text, NULL,
               pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION storage.add_foreign_key(regclass, name[], regclass, name[]) IS
    'Adds FOREIGN KEY (columns) REFERENCES ref (ref_columns), named <table>_<columns>_fkey, without locking writers out: the supporting index on columns built concurrently first when none leads with them, the key added NOT VALID, then validated (SHARE UPDATE EXCLUSIVE on the table, ROW SHARE on ref) by a worker. Returns started, resumed, running or done.';

CREATE FUNCTION storage.abort_schema_change(target regclass) RETURNS text
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT storage._schema_change_abort_checked($1)
$$;
COMMENT ON FUNCTION storage.abort_schema_change(regclass) IS
    'Rolls back the unfinished online schema change of a table, leaving it as it was: the worker stopped, the new column, its trigger, indexes and checks, a copy under way with its log (or the constraint NOT VALID and the index made for it) dropped. Returns aborted, or none when nothing was unfinished; 55000 once a type change is past its swap.';

GRANT SELECT ON storage.schema_changes TO pg_monitor, storage_migrator;
GRANT EXECUTE ON FUNCTION storage.alter_column_type(regclass, name, text, text),
                          storage.add_not_null(regclass, name),
                          storage.add_check(regclass, name, text),
                          storage.add_foreign_key(regclass, name[], regclass, name[]),
                          storage.abort_schema_change(regclass),
                          storage._schema_change(text, regclass, text, text, text),
                          storage._schema_change_abort_checked(regclass)
   TO storage_migrator;
COMMENT ON FUNCTION storage._schema_change(text, regclass, text, text, text) IS
    'Internal: an online schema change''s entry: checks that the caller owns the table (and that an expression is one expression), notes the caller and its effective search_path, then starts it as the extension owner (storage._schema_change_begin).';
COMMENT ON FUNCTION storage._schema_change_abort_checked(regclass) IS
    'Internal: storage.abort_schema_change''s entry: checks that the caller owns the table, then aborts as the extension owner (storage._schema_change_abort).';
COMMENT ON FUNCTION storage._schema_change_launch(bigint) IS
    'Internal: starts the worker of an online schema change once the calling transaction commits; its pid, NULL when no worker slot is free.';
COMMENT ON FUNCTION storage._schema_change_adopt_index(oid, oid, oid) IS
    'Internal: after the swap of an online type change''s copy, an index it built on the copy over the new column becomes the table''s (pg_index, schema, dependencies), so that no concurrent build scans the table again; 55000 unless it is the copy''s and both tables are locked.';
COMMENT ON FUNCTION storage._schema_change_swap_files(oid, oid, oid[], oid[]) IS
    'Internal: the swap of an online type change''s copy: the files of the table, of each pair of indexes and its TOAST table (by links) change places with the copy''s, checked again under both tables'' ACCESS EXCLUSIVE (columns, index definitions); 55000 when they differ.';
COMMENT ON FUNCTION storage._schema_change_backfilling() IS
    'Internal: true only in the worker of an online schema change: the policy that lets its backfill see every row of a table whose row security is forced on its owner.';
COMMENT ON FUNCTION storage._run_as_owner_bound(regclass, text, text) IS
    'Internal: one statement on a user''s table as its owner under SECURITY_RESTRICTED_OPERATION, its names resolved with search_path (a user''s expression, bound once).';
