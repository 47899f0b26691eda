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
