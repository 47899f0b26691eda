-- Audit capability: the log, its configuration, the reader role, history, retention and the
-- event trigger that follows partitions. audit.enable / audit.disable are generated from
-- src/audit/.

-- The capture trigger (src/audit/capture.rs; its C entry refuses a call that is not a trigger).
CREATE FUNCTION audit._capture() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', '_capture_wrapper';

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_reader') THEN
        CREATE ROLE audit_reader NOLOGIN;
    END IF;
END
$$;

-- The log, normalized. A statement that changed rows of an audited table writes one row of
-- audit._log_statement (time, transaction, table, operation, the statement text when asked for,
-- and a pointer to its context) and one narrow row of audit._log_row per changed row (the
-- statement, a 64-bit hash of the key for history, the images: INSERT the new row, DELETE the old
-- one, UPDATE the old row and only the changed columns' new values). What repeats from statement
-- to statement -- the table's names and columns, who ran it, from where -- is stored once in
-- audit._log_context and pointed to. audit.log is a view over the three with the columns and
-- meaning the log always had.
--
-- Rows are written only by audit._capture() (and the DDL event triggers), as the extension
-- owner; nobody else has INSERT, UPDATE, DELETE or TRUNCATE on them. The two logs are
-- range-partitioned by month of ts (UTC months): their partitions are made by
-- storage.create_partitions at the first audit.enable and kept by storage.run_maintenance(),
-- which also applies audit.set_retention to both.
CREATE SEQUENCE audit.log_id_seq;
CREATE TABLE audit._log_context (
    id bigint PRIMARY KEY,
    schema_name name NOT NULL,
    table_name name NOT NULL,
    db_user name NOT NULL,
    role_name name NOT NULL,
    application_name text,
    client_addr inet,
    columns text[] NOT NULL,
    non_key text[],
    actor jsonb
);
-- audit.log WHERE actor @> '{"app.user_id": "42"}': the few contexts of that actor, then their
-- statements by context (an index of each _log_statement partition)
CREATE INDEX _log_context_actor ON audit._log_context USING gin (actor jsonb_path_ops) WHERE actor IS NOT NULL;
CREATE TABLE audit._log_statement (
    id bigint NOT NULL,
    ts timestamptz NOT NULL,
    txid xid8 NOT NULL,
    table_oid oid NOT NULL,
    op text NOT NULL,
    context bigint NOT NULL,
    query text,
    detail jsonb,
    -- how many rows of audit._log_row it wrote (from 0.3.0; NULL before, and for DDL)
    rows integer
) PARTITION BY RANGE (ts);
CREATE TABLE audit._log_row (
    id bigint NOT NULL,
    statement_id bigint NOT NULL,
    ts timestamptz NOT NULL,
    key_hash bigint,
    old_key_hash bigint,
    old_row jsonb,
    new_row jsonb
) PARTITION BY RANGE (ts);
-- The indexes live on each partition, not on the parents: the parents belong to the extension and
-- their partitions do not, and pg_dump cannot restore a partitioned index of an extension's table
-- over partitions it dumps itself (the attach would create the child indexes a second time).
CREATE FUNCTION audit._index_log_partitions() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
BEGIN
    -- each index a partition lacks (by its name: the partition's name and the index's suffix),
    -- those added in 0.3.0 made for the partitions of earlier versions too
    FOR p IN SELECT c.oid::regclass AS part, storage._partition_fit(c.relname, d.suffix) AS name, d.definition
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               JOIN (VALUES ('audit._log_statement'::regclass, '_id_idx', 'UNIQUE INDEX %I ON %s (id)'),
                            ('audit._log_statement'::regclass, '_table_idx', 'INDEX %I ON %s (table_oid, ts)'),
                            ('audit._log_statement'::regclass, '_context_idx', 'INDEX %I ON %s (context)'),
                            -- the change feeds' transactions (audit.read_feed): a feed's tables
                            -- first, or every table (a skip scan of table_oid)
                            ('audit._log_statement'::regclass, '_feed_idx', 'INDEX %I ON %s (table_oid, txid)'),
                            -- the log only grows: its hash buckets are packed full
                            ('audit._log_row'::regclass, '_key_idx', 'INDEX %I ON %s USING hash (key_hash) WITH (fillfactor = 100)'),
                            -- the rows of a statement (the change feeds)
                            ('audit._log_row'::regclass, '_statement_idx', 'INDEX %I ON %s (statement_id)'),
                            ('audit._log_row'::regclass, '_old_key_idx',
                             'INDEX %I ON %s USING hash (old_key_hash) WITH (fillfactor = 100) WHERE old_key_hash IS NOT NULL'),
                            -- the rows of a time range or of ids, in the order they were written:
                            -- what audit.table_at and the undo read (a block range index, next to
                            -- free to keep)
                            ('audit._log_row'::regclass, '_ts_idx', 'INDEX %I ON %s USING brin (ts, id) WITH (autosummarize = on)'))
                    AS d(parent, suffix, definition) ON d.parent = i.inhparent
              WHERE NOT EXISTS (SELECT FROM pg_class x WHERE x.relnamespace = c.relnamespace
                                   AND x.relname = storage._partition_fit(c.relname, d.suffix))
              ORDER BY c.relname, d.suffix
    LOOP
        EXECUTE format('CREATE ' || p.definition, p.name, p.part);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION audit._index_log_partitions() FROM PUBLIC;
COMMENT ON FUNCTION audit._index_log_partitions() IS
    'Internal: gives every partition of the log without indexes its indexes (statements: unique id, (table_oid, ts), context; rows: hash of key_hash, hash of old_key_hash where set, hash buckets packed full, and a block range index of (ts, id)).';
-- The partitions are made after CREATE EXTENSION, so they are ordinary tables that pg_dump
-- dumps with their rows; the contexts and the sequence are dumped as configuration (ids go on
-- increasing).
SELECT pg_catalog.pg_extension_config_dump('audit.log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('audit._log_context', '');
REVOKE ALL ON audit._log_context, audit._log_statement, audit._log_row FROM PUBLIC;
COMMENT ON TABLE audit._log_context IS
    'Internal: what statements of the log share, stored once: the audited table''s names, logged columns (in table order) and non-key columns (NULL without a primary key), the session user, role, application and client address. id is a 64-bit hash of the rest.';
COMMENT ON TABLE audit._log_statement IS
    'Internal: one row per statement that changed rows of an audited table (and per TRUNCATE, per DDL row); read it through audit.log.';
COMMENT ON TABLE audit._log_row IS
    'Internal: one row per changed row: its statement, the hash of its key (and of the key before an UPDATE that changed it), the old image (UPDATE, DELETE) and the new one (INSERT; for UPDATE only the changed columns). Read it through audit.log.';

-- The context id of these constants: a 64-bit hash of them (with seed), the row written when
-- missing. The capture in a Citus shard seeds it with the shard: the parallel connections of one
-- distributed transaction (one per shard) then never insert the same id, which would make one
-- wait for the other's commit, itself waiting for the first: a distributed deadlock.
-- The actor (the settings of pg_storage_ext.audit_actor_settings that were set) is part of the
-- context. The id is the first 64 bits of the sha256 of the values: a session that controls some
-- of them (its application_name, its actor, its table's columns) cannot make its context collide
-- with another's (a linear hash such as jsonb_hash_extended can be steered so), and a row already
-- under that id must hold these very values.
CREATE FUNCTION audit._context(schema_name name, table_name name, db_user name, role_name name,
                               application_name text, client_addr inet, columns text[], non_key text[],
                               seed bigint DEFAULT 0, actor jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h bigint := ('x' || left(encode(sha256(convert_to(
                     jsonb_build_array(seed, schema_name, table_name, db_user, role_name, application_name,
                                       client_addr, columns, non_key, actor)::text, 'UTF8')), 'hex'), 16))::bit(64)::bigint;
BEGIN
    INSERT INTO audit._log_context AS c
    VALUES (h, schema_name, table_name, db_user, role_name, application_name, client_addr, columns, non_key, actor)
    ON CONFLICT (id) DO NOTHING;
    IF NOT EXISTS (SELECT FROM audit._log_context c
                    WHERE c.id = h AND c.schema_name = _context.schema_name AND c.table_name = _context.table_name
                      AND c.db_user = _context.db_user AND c.role_name = _context.role_name
                      AND c.application_name IS NOT DISTINCT FROM _context.application_name
                      AND c.client_addr IS NOT DISTINCT FROM _context.client_addr AND c.columns = _context.columns
                      AND c.non_key IS NOT DISTINCT FROM _context.non_key AND c.actor IS NOT DISTINCT FROM _context.actor) THEN
        RAISE EXCEPTION 'audit log context % holds other values', h
              USING ERRCODE = 'internal_error', DETAIL = 'Two contexts of the audit log hash alike; nothing was logged.';
    END IF;
    RETURN h;
END
$$;
REVOKE ALL ON FUNCTION audit._context(name, name, name, name, text, inet, text[], text[], bigint, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION audit._context(name, name, name, name, text, inet, text[], text[], bigint, jsonb) IS
    'Internal: the id of a log context (a 64-bit hash of its values, seeded), written to audit._log_context when missing.';

-- The changed rows with every column of audit.log, and the key hashes history looks rows up by.
CREATE VIEW audit._log_rows AS
SELECT r.id, s.ts, s.txid, s.table_oid, c.schema_name, c.table_name, s.op,
       k.pk, CASE WHEN s.op = 'UPDATE' AND r.old_key_hash IS NOT NULL THEN r.old_row OPERATOR(pg_catalog.-) c.non_key END AS old_pk,
       r.old_row, k.new_row,
       CASE WHEN s.op = 'UPDATE'
            THEN ARRAY(SELECT u.col FROM unnest(c.columns) WITH ORDINALITY AS u(col, n)
                        WHERE r.new_row OPERATOR(pg_catalog.?) u.col ORDER BY u.n) END AS changed_columns,
       c.db_user, c.role_name, c.application_name, c.client_addr, s.query,
       r.key_hash, r.old_key_hash, c.actor, r.statement_id,
       -- the row's own copy of its statement's time: a condition on it uses the rows' index
       r.ts AS row_ts
  FROM audit._log_row r
  JOIN audit._log_statement s ON s.id = r.statement_id
  JOIN audit._log_context c ON c.id = s.context
 CROSS JOIN LATERAL (SELECT CASE WHEN s.op = 'UPDATE' THEN r.old_row OPERATOR(pg_catalog.||) r.new_row ELSE r.new_row END AS new_row) AS n
 CROSS JOIN LATERAL (SELECT coalesce(n.new_row, r.old_row) OPERATOR(pg_catalog.-) c.non_key AS pk, n.new_row) AS k;
REVOKE ALL ON audit._log_rows FROM PUBLIC;
COMMENT ON VIEW audit._log_rows IS
    'Internal: the changed rows of the log with the columns of audit.log and their key hashes (audit.history and audit.row_at look rows up by them).';

-- Log rows a query run on every Citus worker returns (one jsonb array of audit.log rows each),
-- as audit.log rows; `target` (when given) is the table they are logged under here (a worker
-- logs under its own OID of the table), otherwise each row's table is found by its names.
CREATE FUNCTION audit._from_workers(command text, target regclass DEFAULT NULL)
RETURNS TABLE (id bigint, ts timestamptz, txid xid8, table_oid oid, schema_name name, table_name name, op text,
               pk jsonb, old_pk jsonb, old_row jsonb, new_row jsonb, changed_columns text[], db_user name,
               role_name name, application_name text, client_addr inet, query text, actor jsonb)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.id, r.ts, r.txid,
           coalesce(target::oid, to_regclass(format('%I.%I', r.schema_name, r.table_name))::oid, r.table_oid),
           r.schema_name, r.table_name, r.op, r.pk, r.old_pk, r.old_row, r.new_row, r.changed_columns,
           r.db_user, r.role_name, r.application_name, r.client_addr, r.query, r.actor
      FROM storage._on_workers(command) AS w
     CROSS JOIN LATERAL jsonb_to_recordset(w.result::jsonb)
           AS r(id bigint, ts timestamptz, txid xid8, table_oid oid, schema_name name, table_name name, op text,
                pk jsonb, old_pk jsonb, old_row jsonb, new_row jsonb, changed_columns text[], db_user name,
                role_name name, application_name text, client_addr inet, query text, actor jsonb)
$$;
COMMENT ON FUNCTION audit._from_workers(text, regclass) IS
    'Internal: the audit.log rows a command run on every Citus worker returns as a jsonb array (each worker''s result), under this node''s OID of their table.';

-- On a Citus coordinator, the rows the workers logged for the shards of distributed tables
-- (their row changes; TRUNCATE and DDL of a Citus table are logged here); nothing elsewhere.
CREATE FUNCTION audit._cluster_rows()
RETURNS TABLE (id bigint, ts timestamptz, txid xid8, table_oid oid, schema_name name, table_name name, op text,
               pk jsonb, old_pk jsonb, old_row jsonb, new_row jsonb, changed_columns text[], db_user name,
               role_name name, application_name text, client_addr inet, query text, actor jsonb)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT storage._citus_workers() THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM audit._from_workers(
        'SELECT coalesce(jsonb_agg(l), ''[]'') FROM audit._log_rows l WHERE l.op IN (''INSERT'', ''UPDATE'', ''DELETE'')');
END
$$;
COMMENT ON FUNCTION audit._cluster_rows() IS
    'Internal: on a Citus coordinator, the row changes the workers logged (shards of distributed tables); empty elsewhere.';

CREATE VIEW audit.log AS
SELECT id, ts, txid, table_oid, schema_name, table_name, op, pk, old_pk, old_row, new_row, changed_columns,
       db_user, role_name, application_name, client_addr, query, actor
  FROM audit._log_rows
UNION ALL
SELECT s.id, s.ts, s.txid, s.table_oid, c.schema_name, c.table_name, s.op, NULL::jsonb, NULL::jsonb,
       CASE WHEN s.op = 'TRUNCATE' THEN s.detail END, CASE WHEN s.op = 'DDL' THEN s.detail END, NULL::text[],
       c.db_user, c.role_name, c.application_name, c.client_addr, s.query, c.actor
  FROM audit._log_statement s
  JOIN audit._log_context c ON c.id = s.context
 WHERE s.op IN ('TRUNCATE', 'DDL')
UNION ALL
SELECT * FROM audit._cluster_rows();
-- The view is read-only: writes are refused by privileges (nobody but the extension owner has
-- them), and by this trigger for the owner and superusers.
CREATE FUNCTION audit._log_read_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'audit.log is read-only'
          USING ERRCODE = 'insufficient_privilege',
                DETAIL = 'Its rows are written by the capture triggers of audit.enable and removed by retention only.',
                HINT = 'Use audit.set_retention to keep less of the log.';
END
$$;
REVOKE ALL ON FUNCTION audit._log_read_only() FROM PUBLIC;
COMMENT ON FUNCTION audit._log_read_only() IS
    'Internal: INSTEAD OF trigger of the audit.log view; refuses every INSERT, UPDATE and DELETE through it.';
CREATE TRIGGER read_only INSTEAD OF INSERT OR UPDATE OR DELETE ON audit.log
    FOR EACH ROW EXECUTE FUNCTION audit._log_read_only();
REVOKE ALL ON audit.log FROM PUBLIC;
GRANT SELECT ON audit.log, audit._log_rows, audit._log_statement, audit._log_row, audit.log_id_seq TO audit_reader;
-- (of the contexts, what table_at and the undo read directly: who ran a statement is read through
-- audit.log, where retention removes it with its rows)
GRANT SELECT (id, columns, non_key) ON audit._log_context TO audit_reader;

COMMENT ON VIEW audit.log IS
    'pg_storage_ext: one row per changed row (a TRUNCATE: one per row it removed and one for the statement; one per DDL row), written by the capture triggers of audit.enable; a view over the normalized log (audit._log_statement, audit._log_row, audit._log_context), partitioned by month of ts.';
COMMENT ON COLUMN audit.log.id IS 'Increasing with every row written; orders the history of a row.';
COMMENT ON COLUMN audit.log.op IS 'INSERT, UPDATE, DELETE, TRUNCATE or DDL.';
COMMENT ON COLUMN audit.log.ts IS 'Statement start time of the change.';
COMMENT ON COLUMN audit.log.txid IS 'Top-level transaction id of the change (pg_current_xact_id()).';
COMMENT ON COLUMN audit.log.table_oid IS 'The audited table (for a partition: its audited ancestor).';
COMMENT ON COLUMN audit.log.pk IS 'Primary key columns of the row (after the change; before it for DELETE); NULL for tables without a primary key.';
COMMENT ON COLUMN audit.log.old_pk IS 'For an UPDATE that changed the primary key: the key before it.';
COMMENT ON COLUMN audit.log.old_row IS 'The row before the change (UPDATE, DELETE, a row a TRUNCATE removed), without excluded columns; for the row of a TRUNCATE statement (pk NULL), {"rows": how many it removed, "partition": name when it emptied one partition} ("rows" absent: its rows were not logged, before 0.3.0 or a Citus table).';
COMMENT ON COLUMN audit.log.new_row IS 'The row after the change (INSERT, UPDATE), without excluded columns; for DDL, {"command_tag": ...}.';
COMMENT ON COLUMN audit.log.changed_columns IS 'UPDATE only: the logged columns whose value changed, in table order.';
COMMENT ON COLUMN audit.log.db_user IS 'session_user of the change.';
COMMENT ON COLUMN audit.log.role_name IS 'current_user of the statement that changed the row.';
COMMENT ON COLUMN audit.log.query IS 'The top-level statement text, when enabled with capture_query.';
COMMENT ON COLUMN audit.log.actor IS 'The end user behind the statement: the settings named by pg_storage_ext.audit_actor_settings that were set, e.g. {"app.user_id": "42"} (a setting holding JSON as JSON); NULL when none was.';

-- Tables under capture. table_oids keeps every OID the table had: pg_restore gives it a new
-- one, and history keeps finding the rows logged under the old.
CREATE TABLE audit._tracked (
    table_name regclass PRIMARY KEY,
    exclude_columns text[] NOT NULL DEFAULT '{}',
    capture_query boolean NOT NULL DEFAULT false,
    enabled_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    table_oids oid[] NOT NULL DEFAULT '{}'
);
SELECT pg_catalog.pg_extension_config_dump('audit._tracked', '');
REVOKE ALL ON audit._tracked FROM PUBLIC;
GRANT SELECT ON audit._tracked TO audit_reader;
COMMENT ON TABLE audit._tracked IS
    'Internal: configuration of audit.enable per table (dumped by pg_dump). Read it through audit.tracked.';
-- Capture caches the configuration per backend: every change to it invalidates those caches.
CREATE FUNCTION audit._tracked_changed() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', '_tracked_changed_wrapper';
REVOKE ALL ON FUNCTION audit._tracked_changed() FROM PUBLIC;
COMMENT ON FUNCTION audit._tracked_changed() IS
    'Internal: trigger on audit._tracked; invalidates the capture configuration cached by every backend.';
CREATE TRIGGER tracked_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON audit._tracked
    FOR EACH STATEMENT EXECUTE FUNCTION audit._tracked_changed();

CREATE VIEW audit.tracked AS
SELECT table_name, exclude_columns, capture_query, enabled_at
  FROM audit._tracked;
REVOKE ALL ON audit.tracked FROM PUBLIC;
GRANT SELECT ON audit.tracked TO audit_reader;
COMMENT ON VIEW audit.tracked IS 'Tables under audit capture, with their options and when capture started.';

-- The capture state of each tracked table when last seen (audit._check_ddl), not dumped: after a
-- restore the first DDL sets it again without logging (pg_restore re-creates the triggers).
CREATE TABLE audit._ddl_state (
    table_name regclass PRIMARY KEY REFERENCES audit._tracked ON DELETE CASCADE,
    state jsonb NOT NULL
);
REVOKE ALL ON audit._ddl_state FROM PUBLIC;
COMMENT ON TABLE audit._ddl_state IS
    'Internal: the capture state (audit._capture_state) of each tracked table when last seen.';

-- The arguments of a capture trigger: scope ('table' or 'partition'), capture_query, the
-- excluded columns (the encoding audit._capture parses, pg_storage_core::audit::Options).
CREATE FUNCTION audit._capture_args(scope text, capture_query boolean, exclude_columns text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY[scope, capture_query::text] || exclude_columns
$$;
REVOKE ALL ON FUNCTION audit._capture_args(text, boolean, text[]) FROM PUBLIC;
COMMENT ON FUNCTION audit._capture_args(text, boolean, text[]) IS
    'Internal: the arguments of a capture trigger for a scope (table, partition) and options.';

-- What is wrong with the capture of a tracked table, '{}' when nothing is: the table is gone, or
-- one of its five capture triggers (on the table, and on each partition of a partitioned table)
-- is missing, disabled, or calls something else or with other options than audit.enable gave.
-- Every partition under a table, at any depth, read from the catalog without a lock (so a
-- long transaction holding the table never holds up audit.coverage or the DDL event trigger, as
-- pg_partition_tree would).
CREATE FUNCTION audit._partitions(root regclass) RETURNS SETOF regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE tree AS (
        SELECT i.inhrelid FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = root AND c.relispartition
        UNION
        SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.inhrelid)
    SELECT tree.inhrelid::regclass FROM tree ORDER BY tree.inhrelid::oid
$$;
REVOKE ALL ON FUNCTION audit._partitions(regclass) FROM PUBLIC;
COMMENT ON FUNCTION audit._partitions(regclass) IS
    'Internal: every partition under a table, at any depth, read from the catalog without taking a lock.';

CREATE FUNCTION audit._capture_problems(t audit._tracked) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(problem ORDER BY problem), '{}')
      FROM (SELECT 'table dropped' AS problem
             WHERE NOT EXISTS (SELECT FROM pg_class WHERE oid = t.table_name)
            UNION ALL
            SELECT format('%s: trigger %s %s', r.relid, n.name,
                          CASE WHEN g.oid IS NULL THEN 'missing'
                               WHEN g.tgenabled = 'D' THEN 'disabled'
                               ELSE 'changed' END)
              FROM (SELECT t.table_name AS relid, 'table' AS scope
                     WHERE EXISTS (SELECT FROM pg_class WHERE oid = t.table_name)
                    UNION ALL
                    SELECT p.p, 'partition' FROM audit._partitions(t.table_name) AS p(p)) AS r
             CROSS JOIN unnest(ARRAY['audit_capture_insert', 'audit_capture_update', 'audit_capture_delete',
                                     'audit_capture_truncate', 'audit_capture_truncated']) AS n(name)
              LEFT JOIN pg_trigger g ON g.tgrelid = r.relid AND g.tgname = n.name
             WHERE g.oid IS NULL OR g.tgenabled = 'D'
                OR g.tgfoid <> 'audit._capture()'::regprocedure
                -- fired BEFORE (tgtype bit 1) for TRUNCATE only: it reads the rows before they go
                OR (g.tgtype::int & 2 <> 0) <> (n.name = 'audit_capture_truncate')
                OR storage._trigger_args(g.tgargs) IS DISTINCT FROM audit._capture_args(r.scope, t.capture_query, t.exclude_columns)) AS p
$$;
REVOKE ALL ON FUNCTION audit._capture_problems(audit._tracked) FROM PUBLIC;
COMMENT ON FUNCTION audit._capture_problems(audit._tracked) IS
    'Internal: what is wrong with the capture triggers of a tracked table (empty when nothing).';

-- What DDL can change about a tracked table's capture: its name, its columns, its problems.
CREATE FUNCTION audit._capture_state(t audit._tracked) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
               'name', t.table_name::text,
               'columns', (SELECT coalesce(jsonb_agg(attname ORDER BY attnum), '[]') FROM pg_attribute
                            WHERE attrelid = t.table_name AND attnum > 0 AND NOT attisdropped),
               'problems', to_jsonb(audit._capture_problems(t)),
               -- its partitions, read without a lock (pg_partition_tree would take one): rows
               -- enter or leave the table with an ATTACH or DETACH, which is logged
               'partitions', (SELECT coalesce(jsonb_agg(p.p::oid ORDER BY p.p::oid), '[]') FROM audit._partitions(t.table_name) AS p(p)))
$$;
REVOKE ALL ON FUNCTION audit._capture_state(audit._tracked) FROM PUBLIC;
COMMENT ON FUNCTION audit._capture_state(audit._tracked) IS
    'Internal: the name, columns, capture problems and partitions of a tracked table, compared by audit._on_ddl.';

-- A 'DDL' row of the log: the table, the command tag (new_row.command_tag, with detail merged
-- in), the statement, the role (SET ROLE's, else the session user: inside the SECURITY DEFINER
-- event triggers current_user is the extension owner).
CREATE FUNCTION audit._log_ddl(rel oid, nsp name, relname name, tag text, detail jsonb DEFAULT NULL) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT audit._ensure_log();
    INSERT INTO audit._log_statement (id, ts, txid, table_oid, op, context, query, detail)
    VALUES (nextval('audit.log_id_seq'::regclass), statement_timestamp(), pg_current_xact_id(), rel, 'DDL',
            audit._context(nsp, relname, session_user,
                           CASE WHEN current_setting('role') = 'none' THEN session_user ELSE current_setting('role')::name END,
                           current_setting('application_name'), inet_client_addr(), '{}', NULL),
            current_query(), jsonb_build_object('command_tag', tag) || coalesce(detail, '{}'))
$$;
REVOKE ALL ON FUNCTION audit._log_ddl(oid, name, name, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION audit._log_ddl(oid, name, name, text, jsonb) IS
    'Internal: writes a DDL row of the log for a tracked table (or audit.log itself).';

-- Partitions that still carry partition-scope capture triggers but have no audited ancestor
-- any more (detached): their triggers would refuse every write, so they are removed.
CREATE FUNCTION audit._orphans() RETURNS SETOF regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT DISTINCT g.tgrelid::regclass
      FROM pg_trigger g
     WHERE g.tgfoid = 'audit._capture()'::regprocedure
       AND (storage._trigger_args(g.tgargs))[1] = 'partition'
       AND NOT EXISTS (SELECT FROM audit._tracked t
                        WHERE t.table_name IN (SELECT relid FROM pg_partition_ancestors(g.tgrelid)))
$$;
REVOKE ALL ON FUNCTION audit._orphans() FROM PUBLIC;
COMMENT ON FUNCTION audit._orphans() IS
    'Internal: relations with partition capture triggers and no audited ancestor (detached partitions).';

-- Records DDL that changed a tracked table's name or columns, or broke its capture (a problem
-- that was not there), and remembers the new state; returns whether it logged. Repairs (a
-- problem going away, as when pg_restore re-creates the triggers) are remembered, not logged;
-- so is the first state seen when none is remembered (after a restore).
CREATE FUNCTION audit._check_ddl(rel regclass, tag text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t audit._tracked;
    was jsonb;
    now_state jsonb;
    logged boolean;
    attached text[];
BEGIN
    SELECT * INTO t FROM audit._tracked WHERE table_name = rel;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    now_state := audit._capture_state(t);
    SELECT state INTO was FROM audit._ddl_state WHERE table_name = rel;
    IF was IS NOT DISTINCT FROM now_state THEN
        RETURN false;
    END IF;
    logged := was IS NOT NULL
              AND (now_state->'name' <> was->'name'
                   OR now_state->'columns' <> was->'columns'
                   OR NOT (was->'problems') @> (now_state->'problems')
                   -- a partition detached: its rows left the table without a row of the log (and
                   -- are no longer captured); the extension's own maintenance only adds partitions
                   OR (tag = 'ALTER TABLE' AND was ? 'partitions' AND NOT (now_state->'partitions') @> (was->'partitions')));
    -- a partition attached with rows: they entered the table without a row of the log (the
    -- extension's own partitions come empty)
    IF was IS NOT NULL AND tag = 'ALTER TABLE' AND was ? 'partitions' THEN
        -- (by its size, not by reading it: a snapshot older than the ATTACH's own would miss
        -- rows; a table of another kind, a foreign one, may hold rows whatever its size)
        SELECT array_agg(p.oid::regclass::text ORDER BY p.oid) INTO attached
          FROM jsonb_array_elements_text(now_state->'partitions') AS a(x)
          JOIN pg_class p ON p.oid = a.x::oid
         WHERE NOT (was->'partitions') @> to_jsonb(a.x::oid)
           AND (p.relkind <> 'r' OR pg_relation_size(p.oid) > 0)
           AND storage._citus_kind(p.oid) IS NULL
           -- rows the extension moved in from the default partition are no change
           AND NOT audit._relocated(p.oid::regclass);
        logged := logged OR attached IS NOT NULL;
    END IF;
    IF logged THEN
        PERFORM audit._log_ddl(c.oid, n.nspname, c.relname, tag,
                               CASE WHEN attached IS NOT NULL THEN jsonb_build_object('attached', to_jsonb(attached)) END)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel;
    END IF;
    INSERT INTO audit._ddl_state AS d VALUES (rel, now_state)
        ON CONFLICT (table_name) DO UPDATE SET state = EXCLUDED.state;
    RETURN logged;
END $$;
REVOKE ALL ON FUNCTION audit._check_ddl(regclass, text) FROM PUBLIC;
COMMENT ON FUNCTION audit._check_ddl(regclass, text) IS
    'Internal: logs a DDL row when a statement changed the capture state of a tracked table.';

CREATE VIEW audit.coverage AS
SELECT t.table_name, cardinality(p.problems) = 0 AS capture_ok,
       nullif(array_to_string(p.problems, '; '), '') AS problem
  FROM audit._tracked t
 CROSS JOIN LATERAL (SELECT audit._capture_problems(t) AS problems) AS p;
REVOKE ALL ON audit.coverage FROM PUBLIC;
GRANT SELECT ON audit.coverage TO audit_reader;
-- (the view calls them as its reader)
GRANT EXECUTE ON FUNCTION audit._capture_problems(audit._tracked), audit._capture_args(text, boolean, text[]),
                          audit._partitions(regclass), storage._trigger_args(bytea) TO audit_reader;
COMMENT ON VIEW audit.coverage IS
    'One row per tracked table: whether its capture works (capture_ok) and, when not, the problem (trigger missing, disabled or changed, table dropped).';

CREATE FUNCTION audit._ensure_log() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' AS $$
DECLARE
    log regclass;
BEGIN
    IF (SELECT count(*) FROM storage.partition_config
         WHERE parent IN ('audit._log_statement'::regclass, 'audit._log_row'::regclass)) < 2 THEN
        PERFORM pg_advisory_xact_lock(hashtext('pg_storage_ext.audit.log'));
        FOREACH log IN ARRAY ARRAY['audit._log_statement'::regclass, 'audit._log_row'::regclass] LOOP
            IF NOT EXISTS (SELECT FROM storage.partition_config c WHERE c.parent = log) THEN
                PERFORM storage.create_partitions(log, '1 month', premake => 3, default_partition => true);
            END IF;
        END LOOP;
        PERFORM audit._index_log_partitions();
    END IF;
END
$$;
REVOKE ALL ON FUNCTION audit._ensure_log() FROM PUBLIC;
COMMENT ON FUNCTION audit._ensure_log() IS
    'Internal: registers the two partitioned tables of the log with the partition capability (UTC months, 3 ahead, default partition) at the first audit.enable.';

CREATE FUNCTION audit._oids(target regclass) RETURNS oid[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY[target::oid] || coalesce((SELECT t.table_oids FROM audit._tracked t WHERE t.table_name = target), '{}')
$$;
COMMENT ON FUNCTION audit._oids(regclass) IS
    'Internal: the OIDs a table''s rows are logged under (its own, and those it had before a restore).';

-- Whether a key names only some of the table's primary-key columns (as after a conversion to a
-- partitioned table, whose key gained the partition column): history and row_at then also match
-- the logged keys that contain it.
CREATE FUNCTION audit._partial_key(target regclass, pk jsonb) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_typeof(pk) = 'object'
           AND EXISTS (SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                        WHERE i.indrelid = target AND i.indisprimary AND NOT pk ? a.attname::text)
$$;
COMMENT ON FUNCTION audit._partial_key(regclass, jsonb) IS
    'Internal: true when pk lacks some primary-key column of the table (history and row_at then match the logged keys containing it).';
GRANT EXECUTE ON FUNCTION audit._oids(regclass), audit._partial_key(regclass, jsonb) TO audit_reader;

-- The log rows of one row: its key's hash (hash indexes on key_hash and old_key_hash), the key
-- itself compared after, and, when the caller gives part of the key, every logged key containing
-- it. PL/pgSQL with generic plans, so each session plans these once (a key's hash is looked up
-- the same way whatever the key). With cluster, on a Citus coordinator, a distributed table's
-- rows come from every node's log (the workers log the rows of the shards they hold;
-- docs/citus.md), merged in time order.
CREATE FUNCTION audit._history(target regclass, pk jsonb, cluster boolean) RETURNS SETOF audit.log
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    oids oid[] := audit._oids(target);
    h bigint := jsonb_hash_extended(_history.pk, 0);
BEGIN
    IF cluster AND storage._citus_workers() AND storage._citus_kind(target) = 'distributed' THEN
        RETURN QUERY
        SELECT l.* FROM (SELECT * FROM audit._history(target, _history.pk, false)
                         UNION ALL
                         SELECT * FROM audit._from_workers(
                             format('SELECT coalesce(jsonb_agg(h), ''[]'') FROM audit._history(%L::regclass, %L::jsonb, false) h',
                                    target::text, _history.pk::text), target)) AS l
         ORDER BY l.ts, l.id;
        RETURN;
    END IF;
    IF NOT audit._partial_key(target, _history.pk) THEN
        RETURN QUERY
        SELECT l.id, l.ts, l.txid, l.table_oid, l.schema_name, l.table_name, l.op, l.pk, l.old_pk, l.old_row,
               l.new_row, l.changed_columns, l.db_user, l.role_name, l.application_name, l.client_addr, l.query, l.actor
          FROM audit._log_rows l
         WHERE (l.key_hash = h OR l.old_key_hash = h) AND l.table_oid = ANY (oids)
           AND (l.pk = _history.pk OR l.old_pk = _history.pk)
         ORDER BY l.id;
    ELSE
        RETURN QUERY
        SELECT l.id, l.ts, l.txid, l.table_oid, l.schema_name, l.table_name, l.op, l.pk, l.old_pk, l.old_row,
               l.new_row, l.changed_columns, l.db_user, l.role_name, l.application_name, l.client_addr, l.query, l.actor
          FROM audit._log_rows l
         WHERE l.table_oid = ANY (oids)
           AND (l.pk @> _history.pk OR l.old_pk @> _history.pk)
         ORDER BY l.id;
    END IF;
END
$$;
COMMENT ON FUNCTION audit._history(regclass, jsonb, boolean) IS
    'Internal: audit.history; with cluster, a Citus distributed table''s rows from every node''s log.';

-- The permission error of a reader of the log who may not read it names the role to grant
-- (audit_reader), not the internal function or view the reader would otherwise trip over.
-- Everyone may call it (sql/grants.sql): it reads only the caller's own memberships.
CREATE FUNCTION audit._require_reader(what text, target regclass) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT pg_has_role('audit_reader', 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to read the audit log%', coalesce(' of ' || target::text, '')
              USING ERRCODE = 'insufficient_privilege',
                    DETAIL = format('%s reads audit.log, which only members of audit_reader may read.', what),
                    HINT = format('GRANT audit_reader TO %I;', current_user);
    END IF;
END
$$;
COMMENT ON FUNCTION audit._require_reader(text, regclass) IS
    'Internal: raises 42501 naming audit_reader when the caller may not read the audit log.';

CREATE FUNCTION audit.history(target regclass, pk jsonb, actor jsonb DEFAULT NULL) RETURNS SETOF audit.log
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM audit._require_reader('audit.history', target);
    RETURN QUERY SELECT * FROM audit._history(target, pk, true) h
                  WHERE history.actor IS NULL OR h.actor @> history.actor;
END
$$;
COMMENT ON FUNCTION audit.history(regclass, jsonb, jsonb) IS
    'Every logged change of the row with primary key pk (e.g. ''{"id": 42}''), oldest first; an UPDATE that changed the key appears under both keys. A key naming only some primary-key columns (the key before a conversion to a partitioned table) matches every logged key containing it. With actor (e.g. ''{"app.user_id": "42"}''), only the changes whose actor contains it.';

-- what history, row_at and audit.log call on a Citus coordinator (each runs as the caller)
GRANT EXECUTE ON FUNCTION audit._history(regclass, jsonb, boolean), audit._from_workers(text, regclass),
                          audit._cluster_rows(), storage._citus_kind(regclass), storage._citus_workers(),
                          storage._on_workers(text) TO audit_reader;

-- The earliest moment the log answers for about a table (audit.row_at, audit.table_at): when its
-- capture began, or the oldest moment retention kept of the log, whichever is later. Before it
-- (or for a table not audited) a 22023 error naming that moment, never a guess.
CREATE FUNCTION audit._check_at(what text, target regclass, at timestamptz) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    enabled timestamptz := (SELECT t.enabled_at FROM audit._tracked t WHERE t.table_name = target);
    -- the lower bound of the oldest month of the log (the default partition has none)
    kept timestamptz := (SELECT min((regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz)
                           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                          WHERE i.inhparent = 'audit._log_statement'::regclass);
    horizon timestamptz := greatest(enabled, kept);
BEGIN
    IF enabled IS NULL THEN
        RAISE EXCEPTION '% is not audited', target
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = format('%s answers from the audit log of a table audited now.', what),
                    HINT = format('SELECT audit.enable(%L);', target::text);
    END IF;
    IF at IS NULL OR at < horizon THEN
        RAISE EXCEPTION 'the audit log of % cannot answer for %', target, coalesce(at::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = format('The earliest moment it answers for is %s (%s).', horizon,
                                    CASE WHEN horizon = enabled THEN 'when audit.enable began capturing the table'
                                         ELSE 'the oldest month retention kept' END),
                    HINT = 'Ask for a moment at or after it.';
    END IF;
END
$$;
COMMENT ON FUNCTION audit._check_at(text, regclass, timestamptz) IS
    'Internal: raises 22023 when the audit log cannot answer for target at that moment (not audited, before audit.enable or before what retention kept).';

-- A TRUNCATE logs the rows it removes ({"rows": n} in its statement's detail), except one logged
-- before 0.3.0 or of a Citus table: that one removed rows without logging them, and before it the
-- log cannot say which rows the table had (unless a row changed in between).
CREATE FUNCTION audit._truncated_since(target regclass, oids oid[], at timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT min(s.ts) FROM audit._log_statement s
     WHERE s.table_oid = ANY (oids) AND s.op = 'TRUNCATE' AND s.ts > at
       AND NOT coalesce(s.detail ? 'rows', false)
$$;
COMMENT ON FUNCTION audit._truncated_since(regclass, oid[], timestamptz) IS
    'Internal: the first TRUNCATE of the table after at that did not log its rows (NULL if none).';

CREATE FUNCTION audit._truncate_error(what text, target regclass, at timestamptz, cut timestamptz) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'the audit log of % cannot answer for %', target, at
          USING ERRCODE = 'invalid_parameter_value',
                DETAIL = format('%s: a TRUNCATE at %s removed the table''s rows without logging them, so the rows it had before are not known.', what, cut),
                HINT = format('Ask for a moment at or after %s.', cut);
END
$$;
COMMENT ON FUNCTION audit._truncate_error(text, regclass, timestamptz, timestamptz) IS
    'Internal: the 22023 error of row_at and table_at for a moment before a TRUNCATE that did not log its rows.';

-- The table's primary-key columns, in key order: what the log's keys are made of, and what
-- table_at, row_at and the undo functions find rows by.
CREATE FUNCTION audit._key_columns(target regclass) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum)), '{}')
      FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = target AND i.indisprimary
$$;
COMMENT ON FUNCTION audit._key_columns(regclass) IS
    'Internal: the primary-key columns of a table, in key order.';

-- Reading rows into JSON (to_jsonb), making rows of JSON (jsonb_populate_record) and writing them
-- run the code of the table's column types: a cast to json, a domain's CHECK, owned by whoever made
-- the type. A role other than the table's owner (a superuser included) does so only for built-in
-- types; for others it is told to act as the owner, whose code it then is.
CREATE FUNCTION audit._no_foreign_code(what text, target regclass) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    owner oid := (SELECT c.relowner FROM pg_class c WHERE c.oid = target);
BEGIN
    IF owner IS DISTINCT FROM current_user::regrole::oid
       AND EXISTS (SELECT FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                    WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped
                      AND (t.oid >= 16384 OR t.typelem >= 16384)) THEN
        RAISE EXCEPTION '% would run code of the column types of % as you', what, target
              USING ERRCODE = 'insufficient_privilege',
                    DETAIL = 'A column of the table has a type made in this database (its casts and domain checks are code of their owner).',
                    HINT = format('Run it as the table''s owner: SET ROLE %I;', owner::regrole);
    END IF;
END
$$;
COMMENT ON FUNCTION audit._no_foreign_code(text, regclass) IS
    'Internal: refuses (42501) to read or write a table''s rows through its column types'' code unless they are built in or the caller is the table''s owner.';

-- The live row with this key, as the caller reads it (its privileges, row security), as the log's
-- images have it: without the excluded non-key columns.
CREATE FUNCTION audit._live_row(target regclass, pk jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cond text;
    matched int;
    excluded text[];
    r jsonb;
BEGIN
    IF NOT has_table_privilege(target, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table %', target
              USING ERRCODE = 'insufficient_privilege',
                    DETAIL = 'The row has not changed since that moment: what it was then is the live row, which audit.row_at reads as you.',
                    HINT = format('GRANT SELECT ON %s TO %I;', target, current_user);
    END IF;
    PERFORM audit._no_foreign_code('reading the live row', target);
    IF jsonb_typeof(pk) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'key % does not name columns of %', pk, target
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'Give the primary key as an object of its columns, e.g. ''{"id": 42}''.';
    END IF;
    SELECT string_agg(format('t.%I = k.%I', a.attname, a.attname), ' AND '), count(*)
      INTO cond, matched
      FROM jsonb_object_keys(pk) AS j(name)
      JOIN pg_attribute a ON a.attrelid = target AND a.attname = j.name AND a.attnum > 0 AND NOT a.attisdropped;
    IF jsonb_typeof(pk) <> 'object' OR matched IS DISTINCT FROM (SELECT count(*) FROM jsonb_object_keys(pk))::int OR matched = 0 THEN
        RAISE EXCEPTION 'key % does not name columns of %', pk, target
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'Give the primary key as an object of its columns, e.g. ''{"id": 42}''.';
    END IF;
    excluded := ARRAY(SELECT x FROM audit._tracked t, unnest(t.exclude_columns) AS x WHERE t.table_name = target
                      EXCEPT SELECT unnest(audit._key_columns(target)));
    EXECUTE format('SELECT to_jsonb(t.*) - $2 FROM %s AS t, jsonb_populate_record(NULL::%s, $1) AS k WHERE %s LIMIT 1',
                   target, target, cond)
       INTO r USING pk, excluded;
    RETURN r;
END
$$;
COMMENT ON FUNCTION audit._live_row(regclass, jsonb) IS
    'Internal: the live row with this key as the caller reads it, without excluded non-key columns (audit.row_at of a row unchanged since).';

CREATE FUNCTION audit.row_at(target regclass, pk jsonb, at timestamptz) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    oids oid[];
    h bigint := jsonb_hash_extended(row_at.pk, 0);
    hit record;
    cut timestamptz;
    -- a Citus distributed table's row: its changes from every node's log, where ids are per
    -- node and time orders them (docs/citus.md)
    cluster boolean;
    partial boolean;
BEGIN
    PERFORM audit._require_reader('audit.row_at', target);
    PERFORM audit._check_at('audit.row_at', target, at);
    oids := audit._oids(target);
    cluster := storage._citus_workers() AND storage._citus_kind(target) = 'distributed';
    partial := audit._partial_key(target, row_at.pk);
    -- The last change at or before `at` (within one statement, a row's new key before another's
    -- old one: the statement swapped them)
    IF cluster THEN
        SELECT l.id, l.op, l.pk, l.new_row, l.ts INTO hit
          FROM audit._history(target, row_at.pk, true) l
         WHERE l.ts <= at
         ORDER BY l.ts DESC, l.id DESC LIMIT 1;
    ELSIF NOT partial THEN
        SELECT l.id, l.op, l.pk, l.new_row, l.ts INTO hit
          FROM audit._log_rows l
         WHERE (l.key_hash = h OR l.old_key_hash = h) AND l.table_oid = ANY (oids)
           AND (l.pk = row_at.pk OR l.old_pk = row_at.pk) AND l.ts <= at
         ORDER BY l.statement_id DESC, l.pk = row_at.pk DESC, l.id DESC LIMIT 1;
    ELSE
        SELECT l.id, l.op, l.pk, l.new_row, l.ts INTO hit
          FROM audit._log_rows l
         WHERE l.table_oid = ANY (oids)
           AND (l.pk @> row_at.pk OR l.old_pk @> row_at.pk) AND l.ts <= at
         ORDER BY l.statement_id DESC, l.pk @> row_at.pk DESC, l.id DESC LIMIT 1;
    END IF;
    IF hit.id IS NOT NULL THEN
        -- a TRUNCATE of the whole table that did not log its rows emptied it since then (a Citus
        -- table's is logged here); one that logged them is the row's last change
        IF EXISTS (SELECT FROM audit._log_statement s
                    WHERE s.table_oid = ANY (oids) AND s.op = 'TRUNCATE'
                      AND NOT coalesce(s.detail ?| ARRAY['partition', 'rows'], false)
                      AND s.ts <= at AND CASE WHEN cluster THEN s.ts > hit.ts ELSE s.id > hit.id END) THEN
            RETURN NULL;
        END IF;
        RETURN CASE WHEN hit.op IN ('INSERT', 'UPDATE') AND hit.pk @> row_at.pk THEN hit.new_row END;
    END IF;
    -- No change up to `at`: the row was what its first change after `at` found (the old image of
    -- an UPDATE or DELETE; nothing if that change made it), or the live row if it never changed.
    IF cluster THEN
        SELECT l.id, l.op, l.pk, l.old_pk, l.old_row, l.ts INTO hit
          FROM audit._history(target, row_at.pk, true) l
         WHERE l.ts > at
         ORDER BY l.ts, l.id LIMIT 1;
    ELSIF NOT partial THEN
        SELECT l.id, l.op, l.pk, l.old_pk, l.old_row, l.ts INTO hit
          FROM audit._log_rows l
         WHERE (l.key_hash = h OR l.old_key_hash = h) AND l.table_oid = ANY (oids)
           AND (l.pk = row_at.pk OR l.old_pk = row_at.pk) AND l.ts > at
         ORDER BY l.statement_id, coalesce(l.old_pk, l.pk) = row_at.pk AND l.op <> 'INSERT' DESC, l.id LIMIT 1;
    ELSE
        SELECT l.id, l.op, l.pk, l.old_pk, l.old_row, l.ts INTO hit
          FROM audit._log_rows l
         WHERE l.table_oid = ANY (oids)
           AND (l.pk @> row_at.pk OR l.old_pk @> row_at.pk) AND l.ts > at
         ORDER BY l.statement_id, coalesce(l.old_pk, l.pk) @> row_at.pk AND l.op <> 'INSERT' DESC, l.id LIMIT 1;
    END IF;
    cut := audit._truncated_since(target, oids, at);
    IF cut IS NOT NULL AND (hit.id IS NULL OR hit.ts > cut) THEN
        PERFORM audit._truncate_error('audit.row_at', target, at, cut);
    END IF;
    IF hit.id IS NOT NULL THEN
        RETURN CASE WHEN hit.op <> 'INSERT' AND coalesce(hit.old_pk, hit.pk) @> row_at.pk THEN hit.old_row END;
    END IF;
    RETURN audit._live_row(target, row_at.pk);
END
$$;
COMMENT ON FUNCTION audit.row_at(regclass, jsonb, timestamptz) IS
    'The row with primary key pk as it was at time at (statement times), without excluded columns; NULL if it did not exist then. A row unchanged since is read from the table (as the caller). Before the earliest moment the log answers for (audit.enable, retention, a TRUNCATE that did not log its rows): 22023. A partial key (see audit.history) should name one row.';

-- Whether a value of type t (whose base type, t itself unless a domain, is b) is what its input
-- function makes of the text jsonb_populate_record gives it from the log: a scalar, an enum, a
-- range (not an array, a composite, or a domain over a domain).
CREATE FUNCTION audit._from_text(t pg_type, b pg_type) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT b.typtype IN ('b', 'e', 'r', 'm') AND b.typcategory <> 'A' AND (t.typtype <> 'd' OR b.typtype <> 'd')
$$;
COMMENT ON FUNCTION audit._from_text(pg_type, pg_type) IS
    'Internal: whether values of a type (and its base type) are read back from their text in the log by a cast, as jsonb_populate_record reads them.';

-- The columns of a table made from a log image (SQL text over the image expression `image`), in
-- column order: each `(image ->> 'column')::type`, as jsonb_populate_record reads a scalar (a JSON
-- string's text, a number's or a boolean's; JSON null is NULL) without its per-row set-up; json
-- and jsonb columns take the value itself (JSON null is NULL there too, as jsonb_populate_record
-- has it: the log holds a NULL as JSON null). NULL when a column's type is one
-- jsonb_populate_record reads otherwise (an array, a composite, a domain over a domain): the
-- caller then uses jsonb_populate_record.
CREATE FUNCTION audit._image_columns(target regclass, image text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN bool_and(audit._from_text(t, b))
                THEN string_agg(CASE WHEN b.oid = 'jsonb'::regtype
                                     THEN format('nullif(%s -> %L, ''null'')::%s', image, a.attname, format_type(a.atttypid, a.atttypmod))
                                     WHEN b.oid = 'json'::regtype
                                     THEN format('nullif(%s -> %L, ''null'')::json::%s', image, a.attname, format_type(a.atttypid, a.atttypmod))
                                     ELSE format('(%s ->> %L)::%s', image, a.attname, format_type(a.atttypid, a.atttypmod)) END,
                                ', ' ORDER BY a.attnum) END
      FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      JOIN pg_type b ON b.oid = coalesce(nullif(t.typbasetype, 0), t.oid)
     WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION audit._image_columns(regclass, text) IS
    'Internal: SQL text of a table''s columns read from a log image expression (->> and a cast per column), or NULL when a column''s type needs jsonb_populate_record.';

-- pg_storage_ext.table_at_work_mem in kB: 64MB when unset; a number alone is kB (as the setting
-- reads once the library is loaded, which also checks it); between 64kB and 2GB.
CREATE FUNCTION audit._table_at_work_mem() RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    setting text := nullif(btrim(current_setting('pg_storage_ext.table_at_work_mem', true)), '');
    kb bigint;
BEGIN
    kb := CASE WHEN setting IS NULL THEN 65536
               WHEN setting ~ '^[0-9]{1,12}$' THEN setting::bigint
               WHEN setting ~* '^[0-9]{1,12}\s*(kB|MB|GB|TB)$' THEN pg_size_bytes(setting) / 1024 END;
    IF kb IS NULL THEN
        RAISE EXCEPTION 'invalid value for parameter "pg_storage_ext.table_at_work_mem": "%"', setting
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'audit.table_at keeps its result in memory up to this size.',
                    HINT = 'Use a size such as 64MB, or a number of kB.';
    END IF;
    RETURN least(greatest(kb, 64), 2097151);
END
$$;
COMMENT ON FUNCTION audit._table_at_work_mem() IS
    'Internal: pg_storage_ext.table_at_work_mem in kB (64MB when unset), checked and kept within 64kB..2GB.';

-- Whether a table's rows can be told apart by a hash set of the text of one key column as the log
-- holds it: a scalar type read back from that text (see audit._image_columns, not json) with a
-- default hash operator class.
CREATE FUNCTION audit._hashable_key(target regclass, key text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(bool_and(audit._from_text(t, b) AND b.oid NOT IN ('json'::regtype, 'jsonb'::regtype)
                             AND EXISTS (SELECT FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
                                          WHERE oc.opcdefault AND am.amname = 'hash' AND oc.opcintype IN (t.oid, b.oid))), false)
      FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      JOIN pg_type b ON b.oid = coalesce(nullif(t.typbasetype, 0), t.oid)
     WHERE a.attrelid = target AND a.attname = key AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION audit._hashable_key(regclass, text) IS
    'Internal: true when the key column''s values can be read back from their text in the log and hashed (audit.table_at''s hash set of touched keys).';

-- The whole table as it was at `at`: the live rows no change since `at` touched (read as the
-- caller, with its privileges and row security), and for every key a change since `at` touched,
-- what its first such change found (the old image of an UPDATE, DELETE or TRUNCATE; nothing if
-- that change made the row). Within one statement a row's old key comes before another's new key.
-- Columns excluded from the log come back NULL, in every row. Rows are told apart by the key
-- columns every change since `at` logged: a conversion to a partitioned table
-- (storage.convert_to_partitioned) adds the partition column to the key, and the changes before
-- it logged the key without it.
CREATE FUNCTION audit.table_at(target anyelement, at timestamptz) RETURNS SETOF anyelement
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel regclass := (SELECT nullif(t.typrelid, 0) FROM pg_type t WHERE t.oid = pg_typeof(target))::regclass;
    oids oid[];
    keys text[];
    partial text[];
    excluded text[];
    cols text;
    cut timestamptz;
    images text;
    touched text[];
    several boolean;
    typed text;
    mem text;
    missing text;
BEGIN
    IF rel IS NULL OR (SELECT c.relkind FROM pg_class c WHERE c.oid = rel) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'audit.table_at takes a table''s row type, got %', pg_typeof(target)
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'Call it as SELECT * FROM audit.table_at(NULL::schema.table, now() - interval ''1 hour'').';
    END IF;
    PERFORM audit._require_reader('audit.table_at', rel);
    PERFORM storage._refuse_on_citus(rel, 'audit.table_at',
                                     'It reads the log of this node only; a distributed table''s rows are logged by the workers (audit.history and audit.row_at read them there).');
    PERFORM audit._check_at('audit.table_at', rel, at);
    PERFORM audit._no_foreign_code('audit.table_at', rel);
    keys := audit._key_columns(rel);
    IF cardinality(keys) = 0 THEN
        RAISE EXCEPTION 'audit.table_at needs a primary key on %', rel
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'The log finds a row''s changes by its primary key.';
    END IF;
    oids := audit._oids(rel);
    cut := audit._truncated_since(rel, oids, at);
    IF cut IS NOT NULL THEN
        PERFORM audit._truncate_error('audit.table_at', rel, at, cut);
    END IF;
    excluded := (SELECT t.exclude_columns FROM audit._tracked t WHERE t.table_name = rel);
    -- In one pass over the statements since `at`: key columns some change logged as non-key
    -- columns (before a conversion: partial), and key columns some change did not log under this
    -- name (renamed since: missing; the log finds rows by their key, and would find none of those).
    SELECT coalesce(array_agg(DISTINCT k) FILTER (WHERE k = ANY (c.non_key)), '{}'),
           string_agg(DISTINCT k, ', ') FILTER (WHERE m.missing), max(s.ts) FILTER (WHERE m.missing)
      INTO partial, missing, cut
      FROM unnest(keys) AS k, audit._log_statement s JOIN audit._log_context c ON c.id = s.context
     CROSS JOIN LATERAL (SELECT s.op IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') AND NOT k = ANY (c.columns)
                                AND NOT k = ANY (coalesce(c.non_key, '{}')) AND NOT k = ANY (excluded) AS missing) AS m
     WHERE s.table_oid = ANY (oids) AND s.ts > at;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'the audit log of % cannot answer for %', rel, at
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = format('audit.table_at: changes since then (the last at %s) logged the table''s rows without its key column(s) %s (renamed since?); the log finds a row by its key.', cut, missing),
                    HINT = format('Ask for a moment at or after %s.', cut);
    END IF;
    SELECT string_agg(CASE WHEN a.attname::text = ANY (excluded) AND NOT a.attname::text = ANY (keys)
                           THEN format('NULL::%s', format_type(a.atttypid, a.atttypmod))
                           ELSE format('t.%I', a.attname) END, ', ' ORDER BY a.attnum)
      INTO cols
      FROM pg_attribute a WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped;
    -- A function in FROM hands over its whole result at once, in a store the first RETURN QUERY
    -- makes with the work_mem of that moment: made here with pg_storage_ext.table_at_work_mem (or
    -- work_mem, when larger), so the result is not written to a temporary file at work_mem; the
    -- queries below plan with the caller's work_mem.
    mem := current_setting('work_mem');
    PERFORM set_config('work_mem', greatest(pg_size_bytes(mem) / 1024, audit._table_at_work_mem()) || 'kB', true);
    RETURN QUERY EXECUTE format('SELECT * FROM %s WHERE false', rel);   -- (dynamic: no plan kept across ALTER TABLE)
    PERFORM set_config('work_mem', mem, true);
    -- A key of one column every change since `at` logged as the key, of a type read back from its
    -- text (the common case): three statements, each reading only what it returns, so the cost
    -- over reading the table is that of the rows changed since, not of the table.
    IF cardinality(keys) = 1 AND cardinality(partial) = 0 AND audit._hashable_key(rel, keys[1]) THEN
        -- 1. Every key a change since `at` touched (its key before the change, and the key an
        --    UPDATE gave it; told apart as jsonb, numbers by value), as the log's text; and
        --    whether some key was touched more than once
        --    (when none was, no key's first change needs looking for).
        WITH ev AS (
            SELECT coalesce(r.old_key_hash, r.key_hash) AS h, coalesce(r.old_row, r.new_row) -> keys[1] AS key
              FROM audit._log_row r JOIN audit._log_statement s ON s.id = r.statement_id
             WHERE s.table_oid = ANY (oids) AND s.ts > at AND r.ts > at
            UNION ALL
            SELECT r.key_hash, r.new_row -> keys[1]
              FROM audit._log_row r JOIN audit._log_statement s ON s.id = r.statement_id
             WHERE s.table_oid = ANY (oids) AND s.ts > at AND r.ts > at AND s.op = 'UPDATE' AND r.old_key_hash IS NOT NULL)
        SELECT coalesce(array_agg(g.key #>> '{}') FILTER (WHERE g.key IS NOT NULL), '{}'), coalesce(bool_or(g.n > 1), false)
          INTO touched, several
          FROM (SELECT e.h, e.key, count(*) AS n FROM ev e GROUP BY e.h, e.key) AS g;
        -- (the typed columns of an old image r.old_row)
        images := audit._image_columns(rel, 'r.old_row');
        typed := CASE WHEN images IS NULL
                      THEN format('CROSS JOIN LATERAL jsonb_populate_record(NULL::%s, r.old_row) AS p', rel) ELSE '' END;
        images := coalesce(images, 'p.*');
        IF NOT several THEN
            -- 2. Every key one change touched: the row as that change found it, unless it made it.
            RETURN QUERY EXECUTE format($q$
                SELECT %s FROM audit._log_row r JOIN audit._log_statement s ON s.id = r.statement_id %s
                 WHERE s.table_oid = ANY ($1) AND s.ts > $2 AND r.ts > $2 AND s.op <> 'INSERT'$q$, images, typed)
                USING oids, at;
        ELSE
            -- 3. Some key several changes touched: each key's first change (within one statement a
            --    row's old key before another's new key), the row as it found it, unless it made it.
            RETURN QUERY EXECUTE format($q$
                SELECT %s FROM (
                    SELECT DISTINCT ON (e.h, e.key) e.old_row, e.before FROM (
                        SELECT r.id, r.statement_id, r.old_row, coalesce(r.old_key_hash, r.key_hash) AS h,
                               coalesce(r.old_row, r.new_row) -> $3 AS key, s.op <> 'INSERT' AS before
                          FROM audit._log_row r JOIN audit._log_statement s ON s.id = r.statement_id
                         WHERE s.table_oid = ANY ($1) AND s.ts > $2 AND r.ts > $2
                        UNION ALL
                        SELECT r.id, r.statement_id, NULL, r.key_hash, r.new_row -> $3, false
                          FROM audit._log_row r JOIN audit._log_statement s ON s.id = r.statement_id
                         WHERE s.table_oid = ANY ($1) AND s.ts > $2 AND r.ts > $2
                           AND s.op = 'UPDATE' AND r.old_key_hash IS NOT NULL) AS e
                     ORDER BY e.h, e.key, e.statement_id, e.before DESC, e.id) AS r %s
                 WHERE r.before$q$, images, typed)
                USING oids, at, keys[1];
        END IF;
        -- 4. The rows no change since `at` touched, read as the caller: the keys a hash set, a
        --    constant made when the query is parsed (whatever the key type's input function).
        RETURN QUERY EXECUTE format('SELECT %s FROM %s AS t WHERE t.%I <> ALL (%L::%s[])', cols, rel, keys[1], touched,
                                    (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                                      WHERE a.attrelid = rel AND a.attname = keys[1]));
        RETURN;
    END IF;
    -- Read from the log's tables, not audit._log_rows (which builds every image whole): a row's
    -- key before its change is its old image's (its new one's for INSERT) without the non-key
    -- columns; after an UPDATE that changed it, the merged image's. Keys are sorted by their
    -- logged hash first (of the key, or of the key before an UPDATE that changed it), then by the
    -- key itself. When some change logged a partial key (before a conversion), every key is the
    -- table's key now, read from the images (they hold every column), and compared whole.
    RETURN QUERY EXECUTE format(
        $q$WITH ctx AS MATERIALIZED (
               SELECT c.id, CASE WHEN $4 THEN c.non_key
                                 ELSE ARRAY(SELECT x FROM unnest(c.non_key) AS x WHERE NOT x = ANY ($3)) END AS drop
                 FROM audit._log_context c
                WHERE c.id IN (SELECT s.context FROM audit._log_statement s WHERE s.table_oid = ANY ($1) AND s.ts > $2)),
           ev AS (
               SELECT r.statement_id, r.id, r.old_row, coalesce(r.old_row, r.new_row) - c.drop AS key,
                      CASE WHEN $4 THEN coalesce(r.old_key_hash, r.key_hash) END AS h, s.op <> 'INSERT' AS before
                 FROM audit._log_row r JOIN audit._log_statement s ON s.id = r.statement_id
                 JOIN ctx c ON c.id = s.context
                WHERE s.table_oid = ANY ($1) AND s.ts > $2 AND r.ts > $2
               UNION ALL
               SELECT r.statement_id, r.id, NULL, (r.old_row || r.new_row) - c.drop, CASE WHEN $4 THEN r.key_hash END, false
                 FROM audit._log_row r JOIN audit._log_statement s ON s.id = r.statement_id
                 JOIN ctx c ON c.id = s.context
                WHERE s.table_oid = ANY ($1) AND s.ts > $2 AND r.ts > $2 AND s.op = 'UPDATE'
                  AND CASE WHEN $4 THEN r.old_key_hash IS NOT NULL
                           ELSE (r.old_row || r.new_row) - c.drop <> r.old_row - c.drop END),
           first AS (
               SELECT DISTINCT ON (e.h, e.key) e.key, e.old_row, e.before FROM ev e
                ORDER BY e.h, e.key, e.statement_id, e.before DESC, e.id),
           -- the rows as they were before their first change, typed as the table's
           olds AS MATERIALIZED (
               SELECT r.* FROM first f CROSS JOIN LATERAL jsonb_populate_record(NULL::%2$s, f.old_row) AS r WHERE f.before),
           -- the keys touched since (theirs, and those of rows inserted since), for a hash anti-join
           touched AS (
               SELECT %4$s FROM olds AS k
               UNION ALL
               SELECT %4$s FROM first f CROSS JOIN LATERAL jsonb_populate_record(NULL::%2$s, f.key) AS k WHERE NOT f.before)
           SELECT %1$s FROM %2$s AS t WHERE NOT EXISTS (SELECT FROM touched k WHERE %3$s)
           UNION ALL
           SELECT * FROM olds$q$,
        cols, rel, (SELECT string_agg(format('k.%I = t.%I', k, k), ' AND ') FROM unnest(keys) AS k),
        (SELECT string_agg(format('k.%I', k), ', ') FROM unnest(keys) AS k))
        USING oids, at, keys, cardinality(partial) = 0;
END
$$;
COMMENT ON FUNCTION audit.table_at(anyelement, timestamptz) IS
    'Every row of the table as it was at time at, deleted rows included and rows inserted since left out: SELECT * FROM audit.table_at(NULL::public.users, now() - interval ''1 hour''). Unchanged rows come from the table (as the caller), the others from the log; columns excluded from the log are NULL. Needs audit_reader, SELECT on the table and a primary key; before the earliest moment the log answers for (audit.enable, retention, a TRUNCATE that did not log its rows): 22023. The result is kept in memory up to pg_storage_ext.table_at_work_mem (64MB; work_mem when larger).';
-- what row_at and table_at call, as the caller
GRANT EXECUTE ON FUNCTION audit._check_at(text, regclass, timestamptz), audit._truncated_since(regclass, oid[], timestamptz),
                          audit._truncate_error(text, regclass, timestamptz, timestamptz), audit._live_row(regclass, jsonb),
                          audit._image_columns(regclass, text), audit._hashable_key(regclass, text), audit._table_at_work_mem(),
                          audit._from_text(pg_type, pg_type),
                          storage._refuse_on_citus(regclass, text, text) TO audit_reader;

-- "Row l is row r" in the columns of a log image, as SQL: each column of the table the image
-- holds, compared typed (IS NOT DISTINCT FROM; json as jsonb, which the log holds it as; as text
-- for another type with no default btree equality, such as point); generated columns left out
-- (a virtual one is NULL in images taken from transition tables).
CREATE FUNCTION audit._same_columns(target regclass, image jsonb, l text, r text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(string_agg(
               CASE WHEN EXISTS (SELECT FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
                                  WHERE oc.opcdefault AND am.amname = 'btree'
                                    AND oc.opcintype IN (a.atttypid, t.typbasetype, t.typelem))
                         AND t.typelem = 0
                    THEN format('%1$s.%3$I IS NOT DISTINCT FROM %2$s.%3$I', l, r, a.attname)
                    -- (json went through jsonb in the log: compared as jsonb)
                    WHEN coalesce(nullif(t.typbasetype, 0), t.oid) = 'json'::regtype
                    THEN format('%1$s.%3$I::jsonb IS NOT DISTINCT FROM %2$s.%3$I::jsonb', l, r, a.attname)
                    ELSE format('%1$s.%3$I::text IS NOT DISTINCT FROM %2$s.%3$I::text', l, r, a.attname) END,
               ' AND ' ORDER BY a.attnum), 'true')
      FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
     WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
       AND image ? a.attname::text
$$;
COMMENT ON FUNCTION audit._same_columns(regclass, jsonb, text, text) IS
    'Internal: SQL text comparing two rows of a table in the columns of a log image (typed, or as text for types without btree equality; generated columns left out).';

-- Putting rows back: the one writer of audit.restore_row and audit.revert_*. One statement on the
-- table for many rows, run as the caller (its privileges, row security, the table's triggers)
-- through dynamic SQL with the rows as a parameter, so it is logged as an ordinary change. The
-- rows are pairs of a key and a row: rows, a jsonb array of {"key": ..., "row": ...}, or (rows
-- NULL) the rows the log holds for one statement (its id and time), each its key after the change
-- and its old image, read by the statement itself (an undo reads no image into PL/pgSQL). DELETE
-- the rows with these keys, INSERT these rows, or UPDATE the rows with these keys to these rows
-- (their logged columns; the others are left as they are, or their defaults for a row put back;
-- with move, the key columns too: an undone key change). A statement that does not change
-- expected rows (all of rows; given for a statement) raises: nothing of the caller's statement is
-- kept (a row gone, or hidden from the caller by row security).
CREATE FUNCTION audit._apply(target regclass, action text, rows jsonb, move boolean DEFAULT false,
                             statement bigint DEFAULT NULL, stamp timestamptz DEFAULT NULL, expected bigint DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keys text[] := audit._key_columns(target);
    cond text := (SELECT string_agg(format('t.%I = k.%I', k, k), ' AND ') FROM unnest(keys) AS k);
    source text;
    sample jsonb;
    cols text;
    vals text;
    sets text;
    overriding text;
    verify text;
    n bigint;
BEGIN
    IF cardinality(keys) = 0 THEN
        RAISE EXCEPTION '% has no primary key', target
              USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Rows are put back by their primary key.';
    END IF;
    PERFORM audit._no_foreign_code('putting rows back', target);
    IF action IS NULL OR action NOT IN ('DELETE', 'INSERT', 'UPDATE')
       OR (rows IS NULL AND (statement IS NULL OR stamp IS NULL OR expected IS NULL))
       OR jsonb_typeof(rows) <> 'array' THEN
        RAISE EXCEPTION 'audit._apply takes DELETE, INSERT or UPDATE and an array of rows or a statement of the log'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF rows IS NOT NULL THEN
        expected := jsonb_array_length(rows);
        source := 'jsonb_array_elements($1) AS e CROSS JOIN LATERAL (SELECT e -> ''key'' AS key, e -> ''row'' AS row) AS s';
        sample := (SELECT jsonb_object_agg(x, true) FROM jsonb_array_elements(rows) AS e, jsonb_object_keys(e -> 'row') AS x);
        verify := 'true';
    ELSE
        -- a statement's rows: each changed only where it is what the change left (its image after
        -- the change, in the columns of the images), a deleted row put back only where none is
        source := '(SELECT l.pk AS key, l.old_row AS row, l.new_row AS after FROM audit._log_rows l
                     WHERE l.statement_id = $2 AND l.ts = $3 AND l.row_ts = $3) AS s
                   CROSS JOIN LATERAL jsonb_populate_record(NULL::' || target::text || ', s.after) AS a';
        sample := (SELECT coalesce(r.old_row, r.new_row) FROM audit._log_row r WHERE r.statement_id = statement AND r.ts = stamp LIMIT 1);
        verify := CASE WHEN action = 'INSERT'
                       THEN format('NOT EXISTS (SELECT FROM %s AS t WHERE %s)', target,
                                   (SELECT string_agg(format('t.%I = w.%I', k, k), ' AND ') FROM unnest(keys) AS k))
                       ELSE audit._same_columns(target, sample, 't', 'a') END;
    END IF;
    -- the images' columns the table has and that can be written (not generated)
    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),
           string_agg(format('w.%I', a.attname), ', ' ORDER BY a.attnum),
           string_agg(format('%I = w.%I', a.attname, a.attname), ', ' ORDER BY a.attnum)
               FILTER (WHERE (move OR NOT a.attname::text = ANY (keys)) AND a.attidentity <> 'a'),
           CASE WHEN bool_or(a.attidentity = 'a') THEN 'OVERRIDING SYSTEM VALUE' ELSE '' END
      INTO cols, vals, sets, overriding
      FROM pg_attribute a
     WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
       AND sample ? a.attname::text;
    IF action <> 'DELETE' AND cols IS NULL THEN
        RAISE EXCEPTION 'the rows to put back name no column of %', target USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF action = 'DELETE' THEN
        EXECUTE format('DELETE FROM %1$s AS t USING %3$s
                          CROSS JOIN LATERAL jsonb_populate_record(NULL::%1$s, s.key) AS k WHERE %2$s AND %4$s',
                       target, cond, source, verify) USING rows, statement, stamp;
    ELSIF action = 'INSERT' THEN
        EXECUTE format('INSERT INTO %1$s (%2$s) %3$s SELECT %4$s FROM %5$s
                          CROSS JOIN LATERAL jsonb_populate_record(NULL::%1$s, s.row) AS w WHERE %6$s',
                       target, cols, overriding, vals, source, verify) USING rows, statement, stamp;
    ELSIF sets IS NULL THEN
        RETURN;
    ELSE
        EXECUTE format('UPDATE %1$s AS t SET %2$s FROM %4$s
                          CROSS JOIN LATERAL jsonb_populate_record(NULL::%1$s, s.key) AS k
                          CROSS JOIN LATERAL jsonb_populate_record(NULL::%1$s, s.row) AS w WHERE %3$s AND %5$s',
                       target, sets, cond, source, verify) USING rows, statement, stamp;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> expected THEN
        RAISE EXCEPTION '% of % row(s) of % changed % row(s)', action, expected, target, n
              USING ERRCODE = 'insufficient_privilege',
                    DETAIL = format('Not every row is there for you to change (row security hides it, it went meanwhile, or it is not what the change left)%s; nothing was changed.',
                                    CASE WHEN expected = 1 AND rows IS NOT NULL THEN ': ' || (rows -> 0 ->> 'key') ELSE '' END);
    END IF;
END
$$;
COMMENT ON FUNCTION audit._apply(regclass, text, jsonb, boolean, bigint, timestamptz, bigint) IS
    'Internal: one DELETE, INSERT or UPDATE of rows the log describes (given, or a statement''s), as the caller; raises unless it changed every row.';

-- One row made what the log says (want; NULL: no such row): the action it took, or unchanged.
CREATE FUNCTION audit._put_row(target regclass, key jsonb, want jsonb) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur jsonb := audit._live_row(target, key);
BEGIN
    IF want IS NULL THEN
        IF cur IS NULL THEN
            RETURN 'unchanged';
        END IF;
        PERFORM audit._apply(target, 'DELETE', jsonb_build_array(jsonb_build_object('key', key)));
        RETURN 'DELETE';
    ELSIF cur IS NULL THEN
        PERFORM audit._apply(target, 'INSERT', jsonb_build_array(jsonb_build_object('key', key, 'row', want)));
        RETURN 'INSERT';
    ELSIF NOT EXISTS (SELECT FROM jsonb_each(want) AS e WHERE cur -> e.key IS DISTINCT FROM e.value) THEN
        RETURN 'unchanged';
    END IF;
    PERFORM audit._apply(target, 'UPDATE', jsonb_build_array(jsonb_build_object('key', key, 'row', want)));
    RETURN 'UPDATE';
END
$$;
COMMENT ON FUNCTION audit._put_row(regclass, jsonb, jsonb) IS
    'Internal: makes the row with key what the log says (want; NULL: no such row), as the caller; what it did.';

CREATE FUNCTION audit.restore_row(target regclass, key jsonb, at timestamptz) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET application_name = 'audit.restore_row' AS $$
BEGIN
    PERFORM audit._require_reader('audit.restore_row', target);
    PERFORM storage._require_primary('audit.restore_row');
    RETURN audit._put_row(target, key, audit.row_at(target, key, at));
END
$$;
COMMENT ON FUNCTION audit.restore_row(regclass, jsonb, timestamptz) IS
    'Makes the row with primary key key what it was at time at (an UPDATE, the INSERT of a deleted row, or the DELETE of a row that did not exist then), as the caller (its privileges and row security), logged as an ordinary change whose application_name is audit.restore_row. Returns INSERT, UPDATE, DELETE or unchanged. Columns excluded from the log keep their values (their defaults for a row put back).';

-- The changes of an undo plan (audit._revert) whose row is not what they left: the ids (as keys
-- of a jsonb object) of each row's last change in the transaction whose row now differs from the
-- change's image (the columns of the images, typed), or exists though the change deleted it.
-- Needs SELECT on the tables, as the caller.
CREATE FUNCTION audit._revert_states(what text, plan jsonb, stmts bigint[], stamps timestamptz[]) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    states jsonb := '{}';
    found_states jsonb;
    t record;
    cond text;
    skip bigint[];
    sample jsonb;
    differs text;
BEGIN
    -- each row's last change in the transaction must be what the row is now
    FOR t IN SELECT DISTINCT (e ->> 'rel')::regclass AS rel FROM jsonb_array_elements(plan) AS e
              WHERE e ->> 'rel' IS NOT NULL AND e ->> 'op' <> 'TRUNCATE'
    LOOP
        IF NOT has_table_privilege(t.rel, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied for table %', t.rel
                  USING ERRCODE = 'insufficient_privilege',
                        DETAIL = format('%s reads the rows it would change, as you.', what),
                        HINT = format('GRANT SELECT ON %s TO %I;', t.rel, current_user);
        END IF;
        PERFORM audit._no_foreign_code(what, t.rel);
        cond := (SELECT string_agg(format('x.%I = k.%I', k, k), ' AND ') FROM unnest(audit._key_columns(t.rel)) AS k);
        -- (not the rows changed again in the transaction, nor those in conflict already)
        skip := ARRAY(SELECT (e ->> 'id')::bigint FROM jsonb_array_elements(plan) AS e
                       WHERE (e ->> 'rel')::regclass = t.rel AND (NOT (e -> 'last')::boolean OR e ->> 'conflict' IS NOT NULL));
        -- (the row each change left, from the log, against the live row, typed: the columns of
        -- the images; a deleted row must be gone)
        sample := (SELECT coalesce(r.old_row, r.new_row) FROM audit._log_row r JOIN audit._log_statement s ON s.id = r.statement_id
                    WHERE r.statement_id = ANY (stmts) AND r.ts = ANY (stamps) AND s.id = ANY (stmts)
                      AND s.table_oid = ANY (audit._oids(t.rel)) LIMIT 1);
        differs := format('NOT (%s)', audit._same_columns(t.rel, sample, 'x', 'a'));
        EXECUTE format(
            $q$SELECT coalesce(jsonb_object_agg(r.id::text, true), '{}')
                 FROM audit._log_statement s
                 JOIN audit._log_context c ON c.id = s.context
                 JOIN audit._log_row r ON r.statement_id = s.id
                CROSS JOIN LATERAL (SELECT CASE WHEN s.op = 'UPDATE' THEN r.old_row || r.new_row ELSE r.new_row END AS after) AS i
                CROSS JOIN LATERAL jsonb_populate_record(NULL::%1$s, coalesce(i.after, r.old_row) - c.non_key) AS k
                 LEFT JOIN %1$s AS x ON %2$s
                CROSS JOIN LATERAL jsonb_populate_record(NULL::%1$s, i.after) AS a
                WHERE s.id = ANY ($1) AND s.table_oid = ANY ($4) AND r.statement_id = ANY ($1) AND r.ts = ANY ($2)
                  AND r.ts BETWEEN (SELECT min(z) FROM unnest($2) AS z) AND (SELECT max(z) FROM unnest($2) AS z)
                  AND NOT r.id = ANY ($3)
                  AND CASE WHEN s.op IN ('DELETE', 'TRUNCATE') THEN x.%3$I IS NOT NULL
                           ELSE x.%3$I IS NULL OR %4$s END$q$,
            t.rel, cond, (audit._key_columns(t.rel))[1], differs)
          INTO found_states USING stmts, stamps, skip, audit._oids(t.rel);
        states := states || found_states;
    END LOOP;
    RETURN states;
END
$$;
COMMENT ON FUNCTION audit._revert_states(text, jsonb, bigint[], timestamptz[]) IS
    'Internal: the changes of an undo plan whose row is not what they left (changed since without being logged).';

-- Undo: the inverse of every row change of a transaction (or of one statement) to audited tables,
-- newest first. A change whose row a later transaction changed again, or whose row is not what
-- the change left (for its last change in the transaction), is a conflict: then nothing is applied
-- and the rows say which. A TRUNCATE's rows are put back as a DELETE's are; one that did not log
-- them (before 0.3.0, or of a Citus table) cannot be undone. Set-based: the
-- changes are read in one query, the rows' states checked with one query per table, and each
-- statement undone by one statement (audit._apply), newest first.
CREATE FUNCTION audit._revert(what text, tx xid8, statement bigint, dry_run boolean)
RETURNS TABLE (table_name regclass, key jsonb, action text, conflict text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    stmts bigint[];
    stamps timestamptz[];
    hashes bigint[];
    first_id bigint;
    keyless bigint;
    last_id bigint;
    since boolean;
    plan jsonb;
    states jsonb := '{}';
    st record;
BEGIN
    SELECT array_agg(s.id), array_agg(DISTINCT s.ts), (array_agg(s.txid))[1] INTO stmts, stamps, tx
      FROM audit._log_statement s
     WHERE CASE WHEN statement IS NULL THEN s.txid = tx ELSE s.id = statement END;
    -- the hashes of the keys the changes left, and where they start in the log
    SELECT array_agg(DISTINCT r.key_hash), min(r.id), max(r.id), (array_agg(r.statement_id) FILTER (WHERE r.key_hash IS NULL))[1]
      INTO hashes, first_id, last_id, keyless
      FROM audit._log_row r
     WHERE r.statement_id = ANY (stmts) AND r.ts = ANY (stamps)
       AND r.ts BETWEEN (SELECT min(x) FROM unnest(stamps) AS x) AND (SELECT max(x) FROM unnest(stamps) AS x);
    IF keyless IS NOT NULL THEN
        RAISE EXCEPTION '% has no primary key', (SELECT s.table_oid::regclass FROM audit._log_statement s WHERE s.id = keyless)
              USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Rows are put back by their primary key.';
    END IF;
    -- whether the log may hold a row change after these: the log's sequence handed out a later id
    -- (the undo of the latest change: no; then only the changes' own rows are read)
    since := (SELECT q.last_value FROM audit.log_id_seq q) > last_id;
    -- Every change, newest first, with what happened to its row after it: every change logged
    -- since of the keys the changes left (found by their hashes: one scan of the hash indexes),
    -- each row under its key after the change and under its key before it; per key, newest first,
    -- whether a later change of the same transaction touched it (then it is not the row's last)
    -- and the first later change of another transaction (a conflict). One sort, no join.
    -- (read from the log's tables: a row's key after its change is its new image's without the
    -- non-key columns, its old image's unless it was an INSERT or an UPDATE that changed the key)
    WITH touching AS (
             SELECT m.id, m.statement_id, s.op, m.old_key_hash IS NOT NULL AS moves, s.table_oid, s.txid, s.ts,
                    k.key, k.h, k.after
               FROM audit._log_row m
               JOIN audit._log_statement s ON s.id = m.statement_id
               JOIN audit._log_context c ON c.id = s.context
              CROSS JOIN LATERAL (VALUES (CASE WHEN s.op = 'INSERT' THEN m.new_row - c.non_key
                                               WHEN s.op = 'UPDATE' AND m.old_key_hash IS NOT NULL THEN (m.old_row || m.new_row) - c.non_key
                                               ELSE m.old_row - c.non_key END, m.key_hash, true),
                                         (CASE WHEN m.old_key_hash IS NOT NULL THEN m.old_row - c.non_key END, m.old_key_hash, false)) AS k(key, h, after)
              WHERE k.key IS NOT NULL
                AND CASE WHEN since
                         THEN (m.key_hash = ANY (hashes) OR m.old_key_hash = ANY (hashes)) AND m.id >= first_id
                              AND m.ts >= (SELECT min(x) FROM unnest(stamps) AS x) AND s.ts >= (SELECT min(x) FROM unnest(stamps) AS x)
                         ELSE m.statement_id = ANY (stmts) AND s.id = ANY (stmts) AND m.ts = ANY (stamps)
                              AND m.ts BETWEEN (SELECT min(x) FROM unnest(stamps) AS x) AND (SELECT max(x) FROM unnest(stamps) AS x) END),
         marked AS (
             SELECT w.*, bool_or(w.txid = tx) OVER later AS again,
                    -- (the smallest id's text: ids zero-padded sort as numbers)
                    substr(min(lpad(w.id::text, 20, '0') || ' ' || w.txid || ' at ' || w.ts) FILTER (WHERE w.txid <> tx) OVER later, 22) AS later
               FROM touching w
             WINDOW later AS (PARTITION BY w.table_oid, w.h, w.key ORDER BY w.id DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)),
         tracked AS (SELECT x.table_name AS rel, o.o FROM audit._tracked x, unnest(audit._oids(x.table_name)) AS o(o))
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', c.id, 'sid', c.statement_id, 'rel', c.rel, 'op', c.op, 'key', coalesce(c.key, '{}'),
               'moves', c.moves, 'last', c.last,
               'conflict', CASE WHEN c.rel IS NULL THEN 'the table is no longer audited'
                                WHEN c.op = 'TRUNCATE' THEN 'this TRUNCATE cannot be undone: its rows were not logged'
                                WHEN c.later IS NOT NULL THEN 'changed again by transaction ' || c.later END)
             ORDER BY c.statement_id DESC, c.id DESC), '[]')
      INTO plan
      -- (a row a TRUNCATE removed is undone as a deleted one)
      FROM (SELECT l.id, l.statement_id, CASE WHEN l.op = 'TRUNCATE' THEN 'DELETE' ELSE l.op END AS op,
                   l.key, l.moves,
                   (SELECT x.rel FROM tracked x WHERE x.o = l.table_oid LIMIT 1) AS rel,
                   NOT coalesce(l.again, false) AS last, l.later
              FROM marked l
             WHERE l.after AND l.statement_id = ANY (stmts)
            UNION ALL
            SELECT s.id, s.id, s.op, NULL, false,
                   (SELECT x.rel FROM tracked x WHERE x.o = s.table_oid LIMIT 1),
                   true, NULL
              FROM audit._log_statement s
             WHERE s.id = ANY (stmts) AND s.op = 'TRUNCATE' AND NOT coalesce(s.detail ? 'rows', false)) AS c;
    -- A dry run, or a change in conflict already: the rows say what would run, and which rows are
    -- not what their change left. Otherwise each statement is undone by one, newest first, from
    -- the log, each only where the row is what the change left (audit._apply); when one is not,
    -- nothing is kept and the rows say which.
    IF dry_run IS NOT FALSE OR EXISTS (SELECT FROM jsonb_array_elements(plan) AS e WHERE e ->> 'conflict' IS NOT NULL) THEN
        states := audit._revert_states(what, plan, stmts, stamps);
    ELSE
        BEGIN
            FOR st IN SELECT (e ->> 'sid')::bigint AS sid, (e ->> 'rel')::regclass AS rel, e ->> 'op' AS op,
                             bool_or((e -> 'moves')::boolean) AS moves, count(*) AS n
                        FROM jsonb_array_elements(plan) AS e
                       GROUP BY 1, 2, 3 ORDER BY 1 DESC
            LOOP
                PERFORM audit._apply(st.rel, CASE st.op WHEN 'INSERT' THEN 'DELETE' WHEN 'DELETE' THEN 'INSERT' ELSE 'UPDATE' END,
                                     NULL, st.moves, st.sid, (SELECT s.ts FROM audit._log_statement s WHERE s.id = st.sid), st.n);
            END LOOP;
        EXCEPTION WHEN insufficient_privilege THEN
            states := audit._revert_states(what, plan, stmts, stamps);
            IF states = '{}' THEN
                RAISE; -- not a row changed without being logged: row security, or a row gone
            END IF;
        END;
    END IF;
    RETURN QUERY
    SELECT (e ->> 'rel')::regclass, e -> 'key',
           CASE e ->> 'op' WHEN 'INSERT' THEN 'DELETE' WHEN 'DELETE' THEN 'INSERT' WHEN 'UPDATE' THEN 'UPDATE' ELSE 'none' END,
           coalesce(e ->> 'conflict',
                    CASE WHEN states ? (e ->> 'id') THEN 'the row is not what the change left (changed since without being logged)' END)
      FROM jsonb_array_elements(plan) WITH ORDINALITY AS p(e, n) ORDER BY p.n;
END
$$;
COMMENT ON FUNCTION audit._revert(text, xid8, bigint, boolean) IS
    'Internal: audit.revert_transaction and audit.revert_statement.';

CREATE FUNCTION audit.revert_transaction(txid bigint, dry_run boolean DEFAULT true)
RETURNS TABLE (table_name regclass, key jsonb, action text, conflict text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET application_name = 'audit.revert_transaction' AS $$
BEGIN
    PERFORM audit._require_reader('audit.revert_transaction', NULL);
    IF dry_run IS NOT DISTINCT FROM false THEN
        PERFORM storage._require_primary('audit.revert_transaction');
    END IF;
    RETURN QUERY SELECT * FROM audit._revert('audit.revert_transaction', txid::text::xid8, NULL, dry_run);
END
$$;
COMMENT ON FUNCTION audit.revert_transaction(bigint, boolean) IS
    'Undoes a transaction''s changes to audited tables (txid as audit.log.txid shows it): the inverse of each, newest first, as the caller (its privileges and row security), in the caller''s transaction, logged with application_name audit.revert_transaction. A row another transaction changed since, or not as the change left it, is a conflict: then nothing is applied. dry_run (the default) only shows what would run. One row per change: table, key, the inverse action, the conflict if any.';

CREATE FUNCTION audit.revert_statement(id bigint, dry_run boolean DEFAULT true)
RETURNS TABLE (table_name regclass, key jsonb, action text, conflict text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET application_name = 'audit.revert_statement' AS $$
DECLARE
    statement bigint;
BEGIN
    PERFORM audit._require_reader('audit.revert_statement', NULL);
    statement := coalesce((SELECT l.statement_id FROM audit._log_rows l WHERE l.id = revert_statement.id),
                          (SELECT s.id FROM audit._log_statement s WHERE s.id = revert_statement.id));
    IF statement IS NULL THEN
        RAISE EXCEPTION 'no statement of the audit log has id %', revert_statement.id
              USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the id of a row of audit.log.';
    END IF;
    IF dry_run IS NOT DISTINCT FROM false THEN
        PERFORM storage._require_primary('audit.revert_statement');
    END IF;
    RETURN QUERY SELECT * FROM audit._revert('audit.revert_statement', NULL, statement, dry_run);
END
$$;
COMMENT ON FUNCTION audit.revert_statement(bigint, boolean) IS
    'Undoes one statement''s changes to an audited table (id: the audit.log id of any row it logged), as audit.revert_transaction does for a transaction.';

-- what restore_row and revert_* call, as the caller
GRANT EXECUTE ON FUNCTION audit._apply(regclass, text, jsonb, boolean, bigint, timestamptz, bigint), audit._put_row(regclass, jsonb, jsonb),
                          audit._revert(text, xid8, bigint, boolean), audit._revert_states(text, jsonb, bigint[], timestamptz[]),
                          storage._require_primary(text, boolean),
                          audit._no_foreign_code(text, regclass), audit._key_columns(regclass),
                          audit._same_columns(regclass, jsonb, text, text) TO audit_reader;

CREATE FUNCTION audit.set_retention(keep interval) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET IntervalStyle = 'postgres' AS $$
DECLARE
    cfg storage.partition_config;
BEGIN
    PERFORM storage._require_primary('audit.set_retention');
    IF keep IS NOT NULL AND keep < interval '1 month' THEN
        RAISE EXCEPTION 'audit retention must be at least 1 month, got %', keep
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'The log is partitioned by month; whole months are dropped.',
                    HINT = 'Pass e.g. interval ''12 months'', or NULL to keep everything.';
    END IF;
    PERFORM audit._ensure_log();
    cfg := storage._partition_config('audit._log_statement'::regclass);
    IF keep IS NOT NULL THEN
        PERFORM storage._partition_check_retention(keep::text, cfg.step, 'timestamptz');
    END IF;
    -- statements and their rows are kept and dropped together (same months)
    UPDATE storage.partition_config SET retention = keep::text
     WHERE parent IN ('audit._log_statement'::regclass, 'audit._log_row'::regclass);
    -- on a Citus coordinator, the workers' logs (shards of distributed tables) keep the same
    IF storage._citus_workers() THEN
        PERFORM storage._on_workers(format('SELECT audit.set_retention(%L::interval)', keep));
    END IF;
    -- a change to what the trail keeps is itself recorded
    PERFORM audit._log_ddl('audit.log'::regclass, 'audit', 'log', 'audit.set_retention',
                           jsonb_build_object('retention', keep::text, 'previous', cfg.retention));
END
$$;
REVOKE ALL ON FUNCTION audit.set_retention(interval) FROM PUBLIC;
COMMENT ON FUNCTION audit.set_retention(interval) IS
    'Months of audit.log older than keep are dropped by storage.run_maintenance(); NULL keeps everything. Extension owner only.';

-- Capture configuration. These run only inside the extension's Rust entry points (audit.enable,
-- audit.disable, audit._sync_partitions, audit._carry_capture): they check the caller (the
-- table's owner), switch to the extension's owner and mark the work as the extension's own, a
-- mark SQL cannot set (the DDL event trigger then logs nothing). Not executable by PUBLIC.

-- (Re)creates the five capture triggers of a table with `args` unless they already carry them;
-- refuses to replace a trigger of the same name that is not a capture trigger.
CREATE FUNCTION audit._install_capture(target regclass, args text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
    existing record;
BEGIN
    -- Citus copies triggers to every shard of its tables, and refuses them unless told they are
    -- safe (set here for this function's statements: its SET clause restores it). The capture
    -- triggers are: each writes only its own node's log, in the transaction of the change, and
    -- reads nothing of another shard or node (docs/citus.md).
    IF storage._citus_kind(target) IS NOT NULL THEN
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    FOR t IN
        SELECT * FROM (VALUES
            ('audit_capture_insert', 'AFTER INSERT', 'REFERENCING NEW TABLE AS pg_storage_ext_new'),
            ('audit_capture_update', 'AFTER UPDATE',
             'REFERENCING OLD TABLE AS pg_storage_ext_old NEW TABLE AS pg_storage_ext_new'),
            ('audit_capture_delete', 'AFTER DELETE', 'REFERENCING OLD TABLE AS pg_storage_ext_old'),
            -- before: it logs the rows it removes (audit.table_at, the undo functions read them);
            -- after it, the check that no other trigger changed them in between
            ('audit_capture_truncate', 'BEFORE TRUNCATE', ''),
            ('audit_capture_truncated', 'AFTER TRUNCATE', '')) AS v(name, event, transition)
    LOOP
        SELECT g.tgfoid = 'audit._capture()'::regprocedure AS ours, storage._trigger_args(g.tgargs) AS args,
               (g.tgtype::int & 2 <> 0) = (t.event LIKE 'BEFORE %') AS timing
          INTO existing
          FROM pg_trigger g WHERE g.tgrelid = target AND g.tgname = t.name;
        IF FOUND AND NOT existing.ours THEN
            RAISE EXCEPTION 'trigger "%" for relation % already exists', t.name, target
                  USING ERRCODE = 'duplicate_object', DETAIL = 'It is not a pg_storage_ext capture trigger.',
                        HINT = format('Rename or drop that trigger, then call audit.enable(''%s'') again.', target);
        END IF;
        CONTINUE WHEN FOUND AND existing.args = args AND existing.timing;
        EXECUTE format('CREATE OR REPLACE TRIGGER %I %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION audit._capture(%s)',
                       t.name, t.event, target, t.transition,
                       (SELECT string_agg(quote_literal(a), ', ' ORDER BY i) FROM unnest(args) WITH ORDINALITY AS u(a, i)));
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION audit._install_capture(regclass, text[]) FROM PUBLIC;
COMMENT ON FUNCTION audit._install_capture(regclass, text[]) IS
    'Internal: creates or replaces the five capture triggers of a table with the given arguments.';

-- Drops the capture triggers of a table; returns how many there were.
CREATE FUNCTION audit._uninstall_capture(target regclass) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    name name;
    n integer := 0;
BEGIN
    IF storage._citus_kind(target) IS NOT NULL THEN
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true); -- see audit._install_capture
    END IF;
    FOR name IN SELECT tgname FROM pg_trigger
                 WHERE tgrelid = target AND tgfoid = 'audit._capture()'::regprocedure ORDER BY tgname
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', name, target);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION audit._uninstall_capture(regclass) FROM PUBLIC;
COMMENT ON FUNCTION audit._uninstall_capture(regclass) IS
    'Internal: drops the capture triggers of a table; returns how many there were.';

-- The partitions (at any depth) of an audited table that are tables and not audited on their own.
CREATE FUNCTION audit._capture_partitions(root regclass) RETURNS SETOF regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.relid
      FROM pg_partition_tree(root) AS p
      JOIN pg_class AS c ON c.oid = p.relid
     WHERE p.relid <> root AND c.relkind IN ('r', 'p')
       AND NOT EXISTS (SELECT FROM audit._tracked t WHERE t.table_name = p.relid)
     ORDER BY p.level, p.relid::oid
$$;
REVOKE ALL ON FUNCTION audit._capture_partitions(regclass) FROM PUBLIC;
COMMENT ON FUNCTION audit._capture_partitions(regclass) IS
    'Internal: the partitions of an audited table that take its capture (tables, not audited on their own).';

-- Gives every partition of an audited table partition-scope capture triggers with the table's
-- options (from its configuration row); returns how many partitions were visited.
CREATE FUNCTION audit._sync_capture(root regclass) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg audit._tracked;
    part regclass;
    n integer := 0;
BEGIN
    SELECT * INTO cfg FROM audit._tracked WHERE table_name = root;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    FOR part IN SELECT audit._capture_partitions(root) LOOP
        PERFORM audit._install_capture(part, audit._capture_args('partition', cfg.capture_query, cfg.exclude_columns));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION audit._sync_capture(regclass) FROM PUBLIC;
COMMENT ON FUNCTION audit._sync_capture(regclass) IS
    'Internal: gives every partition of an audited table its capture triggers; returns the partitions visited.';

-- audit.enable's work, after the entry point checked the caller and locked the table.
CREATE FUNCTION audit._enable_capture(target regclass, exclude_columns text[], capture_query boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    excluded text[];
    cols text[];
    unknown text[];
    was audit._tracked;
    kind text := storage._citus_kind(target);
BEGIN
    IF kind = 'reference' THEN
        IF NOT audit._citus_coordinator_copy(target) THEN
            PERFORM storage._refuse_on_citus(target, 'audit.enable',
                'A reference table is logged once, by its copy on the coordinator, and this coordinator holds no copy of it (it is not in Citus''s node list).');
        END IF;
    END IF;
    IF array_position(exclude_columns, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'exclude_columns must not contain NULL'
              USING ERRCODE = 'null_value_not_allowed', HINT = 'List column names, e.g. ARRAY[''password_hash''].';
    END IF;
    -- each name once, in the order given; the columns the extension maintains itself (a search
    -- column of storage.enable_search) are derived, never part of a row's history
    excluded := ARRAY(SELECT c FROM unnest(coalesce(exclude_columns, '{}') || audit._derived_columns(target))
                                    WITH ORDINALITY AS u(c, i)
                       GROUP BY c ORDER BY min(i));
    cols := ARRAY(SELECT attname::text FROM pg_attribute
                   WHERE attrelid = target AND attnum > 0 AND NOT attisdropped ORDER BY attnum);
    unknown := ARRAY(SELECT c FROM unnest(excluded) WITH ORDINALITY AS u(c, i) WHERE c <> ALL (cols) ORDER BY i);
    IF cardinality(unknown) > 0 THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', unknown[1], target
              USING ERRCODE = 'undefined_column',
                    DETAIL = format('exclude_columns names %s unknown column(s): %s.', cardinality(unknown),
                                    array_to_string(unknown, ', ')),
                    HINT = format('The table''s columns are: %s.', array_to_string(cols, ', '));
    END IF;
    PERFORM audit._ensure_log();
    -- a change of the options of an audited table changes what its history holds: logged
    SELECT * INTO was FROM audit._tracked t WHERE t.table_name = target;
    IF FOUND AND (was.exclude_columns IS DISTINCT FROM excluded OR was.capture_query IS DISTINCT FROM capture_query) THEN
        PERFORM audit._log_ddl(c.oid, n.nspname, c.relname, 'AUDIT OPTIONS',
                               jsonb_build_object('exclude_columns', excluded, 'was_exclude_columns', was.exclude_columns,
                                                  'capture_query', capture_query, 'was_capture_query', was.capture_query))
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target;
    END IF;
    PERFORM audit._install_capture(target, audit._capture_args('table', capture_query, excluded));
    INSERT INTO audit._tracked AS t (table_name, exclude_columns, capture_query, table_oids)
    VALUES (target, excluded, capture_query, ARRAY[target::oid])
    ON CONFLICT (table_name) DO UPDATE
       SET exclude_columns = EXCLUDED.exclude_columns, capture_query = EXCLUDED.capture_query,
           table_oids = CASE WHEN target::oid = ANY (t.table_oids) THEN t.table_oids ELSE t.table_oids || target::oid END;
    PERFORM audit._sync_capture(target) FROM pg_class WHERE oid = target AND relkind = 'p';
    -- the capture as configured now: DDL that changes it later is logged
    INSERT INTO audit._ddl_state AS d
    SELECT t.table_name, audit._capture_state(t) FROM audit._tracked t WHERE t.table_name = target
    ON CONFLICT (table_name) DO UPDATE SET state = EXCLUDED.state;
    -- a distributed table's rows are logged by the workers that hold its shards: each gets the
    -- configuration now, before this transaction commits the triggers Citus copies to them
    IF kind = 'distributed' AND storage._citus_workers() THEN
        PERFORM storage._on_workers(format('SELECT audit._enable_on_worker(%L, %L, %L::text[], %L::boolean)',
                                           n.nspname, c.relname, excluded, capture_query))
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION audit._enable_capture(regclass, text[], boolean) FROM PUBLIC;

-- The columns of a table that the extension maintains itself (derived from the row: the search
-- columns of storage.enable_search), kept out of its audit images.
CREATE FUNCTION audit._derived_columns(target regclass) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    -- only a tsvector column the extension's trigger really computes: enabled, unconditional,
    -- BEFORE ... FOR EACH ROW (a disabled or WHEN (false) trigger naming any column would
    -- otherwise take that column out of the history)
    SELECT coalesce(array_agg(DISTINCT s.column_name::text ORDER BY s.column_name::text), '{}')
      FROM storage.search_columns s
      JOIN pg_trigger g ON g.tgrelid = s.table_name AND g.tgname = s.trigger_name
      JOIN pg_attribute a ON a.attrelid = s.table_name AND a.attname = s.column_name AND NOT a.attisdropped
     WHERE s.table_name = target AND a.atttypid = 'tsvector'::regtype
       AND g.tgenabled <> 'D' AND g.tgqual IS NULL AND (g.tgtype & 3) = 3
$$;
REVOKE ALL ON FUNCTION audit._derived_columns(regclass) FROM PUBLIC;
COMMENT ON FUNCTION audit._derived_columns(regclass) IS
    'Internal: the columns the extension maintains itself on a table (search columns), which audit images leave out.';

-- A derived column added to an audited table (storage.enable_search): its capture is configured
-- again with the column left out of the images; false when the table is not audited.
CREATE FUNCTION audit._exclude_derived(target regclass) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg audit._tracked;
BEGIN
    SELECT * INTO cfg FROM audit._tracked t WHERE t.table_name = target;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF NOT audit._derived_columns(target) <@ cfg.exclude_columns THEN
        PERFORM audit._enable_capture(target, cfg.exclude_columns, cfg.capture_query);
    END IF;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION audit._exclude_derived(regclass) FROM PUBLIC;
COMMENT ON FUNCTION audit._exclude_derived(regclass) IS
    'Internal: configures the capture of an audited table again with its derived (search) columns left out of the images; false when it is not audited.';
COMMENT ON FUNCTION audit._enable_capture(regclass, text[], boolean) IS
    'Internal: the work of audit.enable (options checked, log ready, triggers on the table and its partitions, configuration row).';

-- Whether the coordinator holds a copy of a reference table (it does once it is in Citus's node
-- list, group 0).
CREATE FUNCTION audit._citus_coordinator_copy(target regclass) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found boolean;
BEGIN
    EXECUTE 'SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_dist_placement p USING (shardid)
                             WHERE s.logicalrelid = $1 AND p.groupid = 0)'
       INTO found USING target;
    RETURN found;
END
$$;
REVOKE ALL ON FUNCTION audit._citus_coordinator_copy(regclass) FROM PUBLIC;
COMMENT ON FUNCTION audit._citus_coordinator_copy(regclass) IS
    'Internal: whether the coordinator holds a copy of this Citus reference table.';

-- On a Citus worker: the capture configuration of the distributed tables audited on the
-- coordinator, by name (audit.enable writes it through its own connection, before the table
-- itself may be visible here: it can be created in the same transaction). The capture in a
-- shard obeys it (docs/citus.md).
CREATE TABLE audit._citus_tracked (
    schema_name name NOT NULL,
    table_name name NOT NULL,
    exclude_columns text[] NOT NULL DEFAULT '{}',
    capture_query boolean NOT NULL DEFAULT false,
    PRIMARY KEY (schema_name, table_name)
);
REVOKE ALL ON audit._citus_tracked FROM PUBLIC;
COMMENT ON TABLE audit._citus_tracked IS
    'Internal: on a Citus worker, the capture options of the distributed tables audit.enable set up on the coordinator, by schema and name.';

-- On a Citus worker: the log ready (partitioned, with a default partition) and its ids from this
-- node's own range (Citus group id × 2^48), so ids stay unique in the cluster. Called by
-- audit.enable and by storage.run_maintenance() on the coordinator (a worker added later is
-- ready after the next run).
CREATE FUNCTION audit._citus_worker_log() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    floor bigint;
BEGIN
    PERFORM audit._ensure_log();
    EXECUTE 'SELECT groupid::bigint << 48 FROM pg_catalog.pg_dist_local_group' INTO floor;
    IF (SELECT s.last_value FROM audit.log_id_seq s) < floor THEN
        PERFORM setval('audit.log_id_seq', floor, false);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION audit._citus_worker_log() FROM PUBLIC;
COMMENT ON FUNCTION audit._citus_worker_log() IS
    'Internal: on a Citus worker, the log partitioned and its ids in this node''s range.';

-- On a Citus worker, from audit.enable on the coordinator: the log ready, a distributed table's
-- options recorded.
CREATE FUNCTION audit._enable_on_worker(schema_name name, table_name name, exclude_columns text[], capture_query boolean)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM audit._citus_worker_log();
    INSERT INTO audit._citus_tracked AS t VALUES (schema_name, table_name, exclude_columns, capture_query)
    ON CONFLICT ON CONSTRAINT _citus_tracked_pkey DO UPDATE
       SET exclude_columns = EXCLUDED.exclude_columns, capture_query = EXCLUDED.capture_query;
END
$$;
REVOKE ALL ON FUNCTION audit._enable_on_worker(name, name, text[], boolean) FROM PUBLIC;
COMMENT ON FUNCTION audit._enable_on_worker(name, name, text[], boolean) IS
    'Internal: on a Citus worker, the log and the options of a distributed table audit.enable set up on the coordinator.';

-- audit.disable's work: returns the capture triggers and configuration rows removed.
CREATE FUNCTION audit._disable_capture(target regclass) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
    rows integer;
BEGIN
    -- stopping capture is itself recorded, once, before the configuration goes
    PERFORM audit._log_ddl(c.oid, s.nspname, c.relname, 'audit.disable')
       FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
      WHERE c.oid = target AND EXISTS (SELECT FROM audit._tracked t WHERE t.table_name = c.oid);
    n := audit._uninstall_capture(target);
    SELECT n + coalesce(sum(audit._uninstall_capture(p)), 0) INTO n FROM audit._capture_partitions(target) AS p;
    DELETE FROM audit._tracked WHERE table_name = target;
    GET DIAGNOSTICS rows = ROW_COUNT;
    RETURN n + rows;
END
$$;
REVOKE ALL ON FUNCTION audit._disable_capture(regclass) FROM PUBLIC;
COMMENT ON FUNCTION audit._disable_capture(regclass) IS
    'Internal: the work of audit.disable; returns the triggers and configuration rows removed (0: not audited).';

-- Moves the capture of `old` to `new` (a table conversion, before the swap): same options, the
-- history of `old` stays the history of `new`, a DDL row tagged `command`. False when `old` is
-- not audited.
CREATE FUNCTION audit._carry(old regclass, new regclass, command text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg audit._tracked;
BEGIN
    SELECT * INTO cfg FROM audit._tracked WHERE table_name = old;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- the state of the new table is first seen after its rename (not logged)
    DELETE FROM audit._ddl_state WHERE table_name = old;
    UPDATE audit._tracked
       SET table_name = new,
           table_oids = table_oids || CASE WHEN old::oid = ANY (table_oids) THEN '{}' ELSE ARRAY[old::oid] END
                                   || ARRAY[new::oid]
     WHERE table_name = old;
    PERFORM audit._install_capture(new, audit._capture_args('table', cfg.capture_query, cfg.exclude_columns));
    PERFORM audit._sync_capture(new) FROM pg_class WHERE oid = new AND relkind = 'p';
    PERFORM audit._log_ddl(new::oid, s.nspname, c.relname, command)
       FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
      WHERE c.oid = old;
    -- a change feed over the table reads the new one (its old changes stay under the old OID)
    UPDATE audit._feed f SET tables = array_append(f.tables, new::oid)
     WHERE old::oid = ANY (f.tables) AND NOT new::oid = ANY (f.tables);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION audit._carry(regclass, regclass, text) FROM PUBLIC;
COMMENT ON FUNCTION audit._carry(regclass, regclass, text) IS
    'Internal: the work of audit._carry_capture (a table conversion moves capture and history to the new table).';

-- Follows DDL: new partitions of an audited table get capture triggers; dropped tables leave
-- the configuration.
-- Acts only on partition trees under audit; never waits long on a lock (lock_timeout) and never
-- fails the user's statement: on an error it warns and says how to finish the work.
-- ALTER EXTENSION ... UPDATE under load: every lock an update needs that writers also take,
-- first, in one fixed order, waiting at most 10 seconds: the audited tables (a writer's capture
-- writes the log), then the log's tables the update changes. A writer then either finished
-- before the update or starts after its commit (the update's DDL invalidates the capture's
-- cached plans in every session); none holds a table while it waits for the log, so there is no
-- deadlock. When a lock is not granted in time nothing has changed, and the error says to retry.
-- Update scripts call it first (sql/updates/).
CREATE FUNCTION audit._lock_for_update(log_tables regclass[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '10s' AS $$
DECLARE
    t regclass;
    holders text;
BEGIN
    FOR t IN SELECT x.table_name FROM audit._tracked x ORDER BY x.table_name::oid LOOP
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', t);
    END LOOP;
    FOREACH t IN ARRAY log_tables LOOP
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', t);
    END LOOP;
EXCEPTION WHEN lock_not_available THEN
    SELECT string_agg(DISTINCT format('pid %s (%s)', l.pid, a.usename), ', ') INTO holders
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
       AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
       AND (l.relation = ANY (log_tables::oid[]) OR l.relation IN (SELECT x.table_name::oid FROM audit._tracked x));
    RAISE EXCEPTION 'pg_storage_ext was not updated: the audited tables or the audit log stayed busy for 10 seconds'
          USING ERRCODE = 'lock_not_available',
                DETAIL = format('The update locks every audited table and the audit log first; sessions holding them: %s.', coalesce(holders, 'gone by now')),
                HINT = 'Nothing was changed. Run ALTER EXTENSION pg_storage_ext UPDATE again, or end those sessions first.';
END
$$;
REVOKE ALL ON FUNCTION audit._lock_for_update(regclass[]) FROM PUBLIC;
COMMENT ON FUNCTION audit._lock_for_update(regclass[]) IS
    'Internal: the first step of an update script: locks the audited tables, then the given log tables, waiting at most 10 s (55P03 naming the holders).';

CREATE FUNCTION audit._on_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '100ms' AS $$
DECLARE
    root regclass;
BEGIN
    IF NOT EXISTS (SELECT FROM audit._tracked) THEN
        RETURN;
    END IF;
    -- A restore (pg_dump's output always sets row_security = off; no application session needs
    -- it) recreates every capture trigger itself: adding them to the partitions here first made
    -- the dump's own CREATE TRIGGER fail. Maintenance (storage._maintenance()) gives any partition
    -- left without capture its triggers; DDL that removes capture is logged below either way.
    FOR root IN
        SELECT DISTINCT t.table_name
          FROM pg_event_trigger_ddl_commands() AS c
         CROSS JOIN LATERAL pg_partition_ancestors(c.objid) AS a
          JOIN audit._tracked AS t ON t.table_name = a.relid
         WHERE c.classid = 'pg_class'::regclass AND c.object_type IN ('table', 'table column')
           -- partitioned, read from the catalog: pg_get_partkeydef would lock every audited
           -- table, and a long transaction on any of them made unrelated DDL fail
           AND EXISTS (SELECT FROM pg_class k WHERE k.oid = t.table_name AND k.relkind = 'p')
           AND current_setting('row_security') <> 'off'
    LOOP
        BEGIN
            PERFORM audit._sync_partitions(root);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pg_storage_ext: the partitions of audited table % did not all get their capture triggers', root
                  USING DETAIL = SQLSTATE || ': ' || SQLERRM || '. Writes through the table are captured; writes naming such a partition are not.',
                        HINT = format('The pg_storage_ext.maintenance job (storage._maintenance()) finishes it; or run SELECT audit.enable(%L) again once the lock is free.', root::text);
        END;
    END LOOP;
    -- A partition detached from an audited table keeps no capture triggers (they would refuse
    -- its writes).
    IF TG_TAG = 'ALTER TABLE' THEN
        FOR root IN SELECT audit._orphans() LOOP
            BEGIN
                PERFORM audit.disable(root);
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'pg_storage_ext: the capture triggers of %, no longer a partition of an audited table, were not removed', root
                      USING DETAIL = SQLSTATE || ': ' || SQLERRM || '. They refuse writes to it.',
                            HINT = 'The pg_storage_ext.maintenance job (storage._maintenance()) removes them; or run SELECT audit.disable(' || quote_literal(root::text) || ').';
            END;
        END LOOP;
    END IF;
    -- Tampering is recorded: a statement that changed the name, columns or capture triggers of a
    -- tracked table (through any of its partitions) writes a DDL row. DROP TRIGGER names no object
    -- here, so every tracked table is looked at then. The extension's own trigger changes
    -- (audit.enable/disable, the partition sync above) are not tampering.
    IF audit._configuring_capture() THEN
        RETURN;
    END IF;
    FOR root IN
        SELECT t.table_name FROM audit._tracked t
         WHERE TG_TAG = 'DROP TRIGGER'
            OR t.table_name IN (SELECT a.relid
                                  FROM pg_event_trigger_ddl_commands() AS c
                                  LEFT JOIN pg_trigger g ON c.classid = 'pg_trigger'::regclass AND g.oid = c.objid
                                 CROSS JOIN LATERAL (SELECT coalesce(g.tgrelid, c.objid) AS relid
                                                     UNION
                                                     SELECT relid FROM pg_partition_ancestors(coalesce(g.tgrelid, c.objid))) AS a
                                 WHERE c.classid IN ('pg_class'::regclass, 'pg_trigger'::regclass))
         ORDER BY t.table_name::oid
    LOOP
        BEGIN
            PERFORM audit._check_ddl(root, TG_TAG);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pg_storage_ext: a change to the capture of audited table % could not be logged', root
                  USING DETAIL = SQLSTATE || ': ' || SQLERRM,
                        HINT = 'audit.coverage shows the state of every audited table''s capture.';
        END;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION audit._on_ddl() FROM PUBLIC;
COMMENT ON FUNCTION audit._on_ddl() IS
    'Internal: event trigger; gives new or attached partitions of an audited table their capture triggers, and logs DDL that changes an audited table''s capture.';

CREATE FUNCTION audit._on_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT FROM audit._tracked) THEN
        PERFORM audit._log_ddl(d.objid, d.schema_name, d.object_name, TG_TAG)
           FROM pg_event_trigger_dropped_objects() AS d
           JOIN audit._tracked t ON t.table_name::oid = d.objid
          WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0;
        DELETE FROM audit._tracked t
         USING pg_event_trigger_dropped_objects() AS d
         WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND t.table_name::oid = d.objid;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION audit._on_drop() FROM PUBLIC;
COMMENT ON FUNCTION audit._on_drop() IS
    'Internal: event trigger; a dropped table is logged (DDL row) and leaves audit._tracked (its history stays in audit.log).';

CREATE EVENT TRIGGER pg_storage_ext_audit_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER', 'DROP TRIGGER')
    EXECUTE FUNCTION audit._on_ddl();
CREATE EVENT TRIGGER pg_storage_ext_audit_drop ON sql_drop
    EXECUTE FUNCTION audit._on_drop();

REVOKE ALL ON FUNCTION audit._sync_partitions(regclass) FROM PUBLIC;
COMMENT ON FUNCTION audit._sync_partitions(regclass) IS
    'Internal: gives every partition of an audited partitioned table (not audited on its own) its capture triggers; returns the partitions visited.';
REVOKE ALL ON FUNCTION audit._delta(jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION audit._delta(jsonb, jsonb) IS
    'Internal: the members of new_row whose values differ from old_row''s (as jsonb = decides, a JSON null is a value): the changed columns of an UPDATE with their new values, as the log stores them.';
COMMENT ON FUNCTION audit._configuring_capture() IS
    'Internal: true while pg_storage_ext itself changes capture triggers (its DDL event trigger then logs nothing).';
COMMENT ON FUNCTION audit._capture() IS
    'Trigger: the statement-level capture trigger created by audit.enable (AFTER INSERT/UPDATE/DELETE, BEFORE TRUNCATE and the check AFTER TRUNCATE, transition tables pg_storage_ext_new/pg_storage_ext_old). Arguments: scope (table|partition), capture_query, excluded columns.';
COMMENT ON FUNCTION audit.enable(regclass, text[], boolean) IS
    'Starts capture of INSERT, UPDATE, DELETE and TRUNCATE on a table (plain or partitioned, with later partitions) into audit.log; again to change the options. Owner of the table only.';
COMMENT ON FUNCTION audit.disable(regclass) IS
    'Stops capture on a table; its history stays. Owner of the table only.';
GRANT USAGE ON SCHEMA audit TO PUBLIC;
REVOKE ALL ON FUNCTION audit._attach_moved(text, regclass) FROM PUBLIC;
COMMENT ON FUNCTION audit._attach_moved(text, regclass) IS
    'Internal: runs partition maintenance''s ATTACH PARTITION of a child it moved rows into, the child marked as relocated (its rows are not logged as attached).';
COMMENT ON FUNCTION audit._relocated(regclass) IS
    'Internal: whether the extension is relocating rows of the relation right now (partition maintenance).';
COMMENT ON FUNCTION audit._carry_capture(regclass, regclass, text) IS
    'Internal: storage.convert_to_partitioned and undo_partitioning move the capture of an audited table to the new table (same options, history kept, a DDL row tagged with the command).';

-- The change feed: named consumers of the log that never skip a commit (docs/audit.md, "A change
-- feed that never skips a commit"). A log id is taken when a row is written, not when its transaction commits, so "the ids
-- after the last one I saw" misses a long transaction that commits late. A feed remembers instead
-- a snapshot (pg_snapshot): every transaction visible in it is behind the feed. Reading takes the
-- current snapshot and makes the transactions visible in it and not in the feed's its window,
-- each with a position (the feed's own counter), in the order of its last log id, which follows
-- the commit order of every pair of transactions that changed the same row (the second waited
-- for the first's commit before writing). The window is kept until acknowledged, so a reader
-- that dies loses nothing; acknowledging it whole moves the snapshot to the window's.
CREATE TABLE audit._feed (
    name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.:-]{1,63}$'),
    owner oid NOT NULL,
    tables oid[],
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    acked_snapshot pg_snapshot NOT NULL,
    window_snapshot pg_snapshot,
    position bigint NOT NULL DEFAULT 0,
    last_position bigint NOT NULL DEFAULT 0,
    acked_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    broken_at timestamptz,
    broken_reason text,
    -- when the acknowledged snapshot was taken (for a feed from the beginning: its creation), and
    -- the window's: the feed's lag is measured from it while changes wait
    acked_snapshot_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    window_snapshot_at timestamptz
);
CREATE TABLE audit._feed_window (
    feed text NOT NULL REFERENCES audit._feed ON DELETE CASCADE,
    position bigint NOT NULL,
    txid xid8 NOT NULL,
    committed_at timestamptz NOT NULL,
    changes bigint NOT NULL,
    PRIMARY KEY (feed, position)
);
COMMENT ON TABLE audit._feed IS
    'Internal: the change feeds (audit.create_feed): owner, tables (NULL: all audited), the snapshot every transaction visible in is acknowledged, the window being delivered, positions. Read it through audit.feeds; each owner reads and writes only its own rows (row security).';
COMMENT ON TABLE audit._feed_window IS
    'Internal: the transactions of each feed''s window, by position, until acknowledged (audit.read_feed returns them again until then).';
-- The feeds are written by the extension alone (audit._feed_act, as its owner, through
-- audit._feed_gate, which names the caller); a reader may read the rows of its own feeds (and of
-- roles it is a member of) and nothing else: no write, and so no lock stronger than a read's.
ALTER TABLE audit._feed ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit._feed_window ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON audit._feed FOR SELECT USING (pg_catalog.pg_has_role(owner, 'USAGE'));
CREATE POLICY own ON audit._feed_window FOR SELECT
    USING (EXISTS (SELECT FROM audit._feed f WHERE f.name OPERATOR(pg_catalog.=) feed));
REVOKE ALL ON audit._feed, audit._feed_window FROM PUBLIC;
GRANT SELECT ON audit._feed, audit._feed_window TO audit_reader;

-- Transaction ids belong to the cluster that assigned them: log rows restored from a dump of
-- another cluster carry ids this cluster assigns again later. The feeds read only what was
-- logged since the extension was created here (by CREATE EXTENSION, or by the pg_restore that
-- re-creates it: this table is not dumped, so a restore sets it anew).
CREATE TABLE audit._log_epoch (
    since timestamptz NOT NULL DEFAULT pg_catalog.now()
);
INSERT INTO audit._log_epoch DEFAULT VALUES;
REVOKE ALL ON audit._log_epoch FROM PUBLIC;
GRANT SELECT ON audit._log_epoch TO audit_reader;
COMMENT ON TABLE audit._log_epoch IS
    'Internal: when the extension was created in this database (or restored into it): the change feeds read only the log written since (transaction ids of restored rows belong to another cluster).';
CREATE FUNCTION audit._feed_epoch() RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT min(since) FROM audit._log_epoch
$$;
COMMENT ON FUNCTION audit._feed_epoch() IS
    'Internal: since when the change feeds read the log (audit._log_epoch).';

-- pg_storage_ext.audit_feed_max_lag (7 days when the library is not loaded in this session)
CREATE FUNCTION audit._feed_max_lag() RETURNS interval
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(nullif(current_setting('pg_storage_ext.audit_feed_max_lag', true), ''), '7d')::interval
$$;
COMMENT ON FUNCTION audit._feed_max_lag() IS
    'Internal: pg_storage_ext.audit_feed_max_lag as an interval (7 days when unset).';

-- The current snapshot, this transaction in progress in it: a reader that has written already
-- (its acknowledgement, or a change of an audited table) is not committed yet, and its changes
-- must not count as delivered.
CREATE FUNCTION audit._feed_snapshot() RETURNS pg_snapshot
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s pg_snapshot := pg_current_snapshot();
    me xid8 := pg_current_xact_id_if_assigned();
BEGIN
    IF me IS NULL OR me >= pg_snapshot_xmax(s) THEN
        RETURN s;
    END IF;
    RETURN format('%s:%s:%s', least(pg_snapshot_xmin(s), me), pg_snapshot_xmax(s),
                  (SELECT string_agg(x::text, ',' ORDER BY x)
                     FROM (SELECT pg_snapshot_xip(s) UNION SELECT me) AS u(x)))::pg_snapshot;
END
$$;
COMMENT ON FUNCTION audit._feed_snapshot() IS
    'Internal: pg_current_snapshot() with the calling transaction in progress in it.';

-- The transactions committed after snapshot lo and visible in hi that changed one of the tables
-- (all when NULL), in the order of their last log id, with their commit time (track_commit_timestamp
-- on: the commit's; otherwise the start of its last logged statement) and their changes (rows, or
-- one for a statement that logged none: DDL, an unlogged TRUNCATE).
CREATE FUNCTION audit._feed_transactions(lo pg_snapshot, hi pg_snapshot, tables oid[], excluded oid[] DEFAULT '{}')
RETURNS TABLE (txid xid8, committed_at timestamptz, changes bigint, last_id bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.txid,
           coalesce(CASE WHEN current_setting('track_commit_timestamp')::boolean
                         THEN pg_xact_commit_timestamp(s.txid::xid) END, max(s.ts)),
           -- the rows a statement logged (counted for one logged before 0.3.0), and the statement
           -- row of a TRUNCATE or DDL
           sum(coalesce(s.rows, (SELECT count(*) FROM audit._log_row r WHERE r.statement_id = s.id AND r.ts = s.ts))
               + CASE WHEN s.op IN ('TRUNCATE', 'DDL') THEN 1 ELSE 0 END),
           max(s.id)
      FROM audit._log_statement s
     -- not visible in lo: begun after it, or in progress then (a long transaction open does not
     -- make every read scan what committed since it began)
     WHERE ((s.txid >= pg_snapshot_xmax(lo) AND s.txid < pg_snapshot_xmax(hi)) OR s.txid = ANY (ARRAY(SELECT pg_snapshot_xip(lo))))
       AND pg_visible_in_snapshot(s.txid, hi) AND NOT pg_visible_in_snapshot(s.txid, lo)
       AND s.ts >= audit._feed_epoch()
       -- all tables: those whose changes the log holds, not the log's own settings (DDL rows of
       -- audit.log: audit.set_retention)
       AND CASE WHEN tables IS NULL THEN s.table_oid <> 'audit.log'::regclass AND s.table_oid <> ALL (excluded)
                ELSE s.table_oid = ANY (tables) END
     GROUP BY s.txid
     ORDER BY max(s.id)
$$;
REVOKE ALL ON FUNCTION audit._feed_transactions(pg_snapshot, pg_snapshot, oid[], oid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit._feed_transactions(pg_snapshot, pg_snapshot, oid[], oid[]) TO audit_reader;
COMMENT ON FUNCTION audit._feed_transactions(pg_snapshot, pg_snapshot, oid[], oid[]) IS
    'Internal: the transactions committed after snapshot lo and visible in hi that changed the tables (NULL: all but the excluded), in the order of their last log id, with commit time and number of changes.';

-- The changes of the transactions of a window (txids, with their positions and commit times) to
-- the tables (NULL: all), as audit.read_feed returns them: by position, then in log order. Run as
-- the extension owner: the actor is not readable by audit_reader on its own.
CREATE FUNCTION audit._feed_changes(txids xid8[], positions bigint[], committed timestamptz[], tables oid[], excluded oid[] DEFAULT '{}')
RETURNS TABLE ("position" bigint, txid bigint, committed_at timestamptz, table_name regclass, op text,
               key jsonb, old_row jsonb, new_row jsonb, actor jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.position, c.txid, c.committed_at, c.table_name, c.op, c.key, c.old_row, c.new_row, c.actor
      FROM (-- the changed rows
            SELECT w.position, s.txid::text::bigint AS txid, w.committed_at, s.table_oid::regclass AS table_name, s.op,
                   coalesce(CASE WHEN s.op = 'UPDATE' THEN r.old_row || r.new_row ELSE r.new_row END, r.old_row) - x.non_key AS key,
                   r.old_row, CASE WHEN s.op = 'UPDATE' THEN r.old_row || r.new_row ELSE r.new_row END AS new_row,
                   x.actor, r.id
              FROM unnest(txids, positions, committed) AS w(txid, position, committed_at)
              JOIN audit._log_statement s ON s.txid = w.txid
              JOIN audit._log_context x ON x.id = s.context
              JOIN audit._log_row r ON r.statement_id = s.id AND r.ts = s.ts
             WHERE s.txid = ANY (txids) AND s.ts >= audit._feed_epoch() AND s.op IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
               AND CASE WHEN tables IS NULL THEN s.table_oid <> 'audit.log'::regclass AND s.table_oid <> ALL (excluded)
                        ELSE s.table_oid = ANY (tables) END
            UNION ALL
            -- the statement rows of TRUNCATE ({"rows": n, "partition": ...} as old_row) and DDL
            -- (as new_row), before the rows a TRUNCATE removed
            SELECT w.position, s.txid::text::bigint, w.committed_at, s.table_oid::regclass, s.op, NULL,
                   CASE WHEN s.op = 'TRUNCATE' THEN s.detail END, CASE WHEN s.op = 'DDL' THEN s.detail END,
                   x.actor, s.id
              FROM unnest(txids, positions, committed) AS w(txid, position, committed_at)
              JOIN audit._log_statement s ON s.txid = w.txid
              JOIN audit._log_context x ON x.id = s.context
             WHERE s.txid = ANY (txids) AND s.ts >= audit._feed_epoch() AND s.op IN ('TRUNCATE', 'DDL')
               AND CASE WHEN tables IS NULL THEN s.table_oid <> 'audit.log'::regclass AND s.table_oid <> ALL (excluded)
                        ELSE s.table_oid = ANY (tables) END) AS c
     ORDER BY c.position, c.id
$$;
REVOKE ALL ON FUNCTION audit._feed_changes(xid8[], bigint[], timestamptz[], oid[], oid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit._feed_changes(xid8[], bigint[], timestamptz[], oid[], oid[]) TO audit_reader;
COMMENT ON FUNCTION audit._feed_changes(xid8[], bigint[], timestamptz[], oid[], oid[]) IS
    'Internal: the logged changes of a window''s transactions (with their positions and commit times) to the tables (NULL: all but the excluded), as audit.read_feed returns them.';

-- The notifier's look (src/audit/feed.rs, every 20 ms): one notification on audit_feed per table a
-- feed reads that a transaction committed since snapshot `since` changed (payload: the table's
-- qualified name); returns the snapshot it looked at, NULL when the database has no feed (the
-- notifier then leaves). The writers send nothing themselves: PostgreSQL serialises the commits
-- of notifying transactions.
CREATE FUNCTION audit._feed_announce(since pg_snapshot) RETURNS pg_snapshot
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur pg_snapshot := pg_current_snapshot();
BEGIN
    IF NOT EXISTS (SELECT FROM audit._feed) THEN
        RETURN NULL;
    END IF;
    IF cur::text = since::text THEN
        RETURN since;   -- nothing ended since
    END IF;
    PERFORM pg_notify('audit_feed', t.name)
       FROM (SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM (SELECT DISTINCT s.table_oid
               FROM audit._log_statement s
              WHERE ((s.txid >= pg_snapshot_xmax(since) AND s.txid < pg_snapshot_xmax(cur))
                     OR s.txid = ANY (ARRAY(SELECT pg_snapshot_xip(since))))
                AND pg_visible_in_snapshot(s.txid, cur) AND NOT pg_visible_in_snapshot(s.txid, since)
                AND s.ts >= audit._feed_epoch()) AS x
       JOIN pg_class c ON c.oid = x.table_oid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE EXISTS (SELECT FROM audit._feed f
                     WHERE CASE WHEN f.tables IS NULL THEN x.table_oid <> 'audit.log'::regclass
                                ELSE x.table_oid = ANY (f.tables) END)
      ORDER BY 1) AS t;
    RETURN cur;
END
$$;
REVOKE ALL ON FUNCTION audit._feed_announce(pg_snapshot) FROM PUBLIC;
COMMENT ON FUNCTION audit._feed_announce(pg_snapshot) IS
    'Internal: the change feed notifier''s look: notifies audit_feed (payload: the table) for each table a feed reads that a transaction committed since snapshot since changed; returns the snapshot looked at, NULL when there is no feed.';

-- The tables a feed reads, checked as the caller: audited, and readable (SELECT) by it.
CREATE FUNCTION audit._feed_tables(what text, tables oid[]) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t oid;
BEGIN
    FOR t IN SELECT u.t FROM unnest(coalesce(tables, ARRAY(SELECT tr.table_name::oid FROM audit._tracked tr ORDER BY 1))) AS u(t) LOOP
        IF NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = t) THEN
            CONTINUE;  -- dropped since: its changes stay readable, as its history is
        END IF;
        IF NOT has_table_privilege(t, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied to read the changes of %', t::regclass
                  USING ERRCODE = 'insufficient_privilege',
                        DETAIL = format('%s reads the rows of every table of the feed: it needs SELECT on each.', what),
                        HINT = format('GRANT SELECT ON %s TO %I;', t::regclass, current_user);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION audit._feed_tables(text, oid[]) IS
    'Internal: refuses (42501) a feed over a table the caller may not SELECT from (all audited tables when NULL).';

-- The audited tables an all-tables feed of `role` leaves out: those that exist and that it may not
-- read (a dropped table's changes stay in, as its history does).
CREATE FUNCTION audit._feed_excluded(role oid) RETURNS oid[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(t.table_name::oid ORDER BY t.table_name::oid), '{}')
      FROM audit._tracked t
     WHERE EXISTS (SELECT FROM pg_class c WHERE c.oid = t.table_name)
       AND NOT has_table_privilege(role, t.table_name, 'SELECT')
$$;
COMMENT ON FUNCTION audit._feed_excluded(oid) IS
    'Internal: the audited tables (that exist) a role may not read: an all-tables feed of that role leaves them out.';

-- The error of a feed the caller has not: whether another role has one of that name is not said.
CREATE FUNCTION audit._feed_missing(feed_name text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'audit feed "%" does not exist', feed_name
          USING ERRCODE = 'undefined_object',
                DETAIL = 'A feed is seen and used only by its owner (the role that created it) and the roles that are members of it.',
                HINT = 'audit.feeds lists your feeds; audit.create_feed makes one.';
END
$$;
COMMENT ON FUNCTION audit._feed_missing(text) IS
    'Internal: raises 42704 for a feed the caller has not (not saying whether another role has one of that name).';

-- What the functions below do as the extension owner, for `caller` (audit._feed_gate names it:
-- the role that called them). Only the extension owner may run it.
CREATE FUNCTION audit._feed_act(action text, feed_name text, arg bigint, tables oid[], start text, caller oid)
RETURNS TABLE (txid xid8, "position" bigint, committed_at timestamptz)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f audit._feed;
    hi pg_snapshot;
    made bigint;
    excluded oid[];
BEGIN
    IF action = 'create' THEN
        IF (SELECT count(*) FROM audit._feed x WHERE x.owner = caller) >= 32 THEN
            RAISE EXCEPTION 'role % has 32 audit feeds already', caller::regrole
                  USING ERRCODE = 'program_limit_exceeded',
                        DETAIL = 'Every feed is measured by health() and each scrape of the metrics: a role has at most 32.',
                        HINT = 'Drop a feed it no longer reads (audit.feeds lists them), or read several tables with one feed.';
        END IF;
        BEGIN
            INSERT INTO audit._feed (name, owner, tables, acked_snapshot)
            VALUES (feed_name, caller, tables,
                    -- nothing is visible in '3:3:' (3 is the first ordinary transaction id)
                    CASE WHEN start = 'beginning' THEN '3:3:'::pg_snapshot ELSE audit._feed_snapshot() END);
        EXCEPTION WHEN unique_violation THEN
            RAISE EXCEPTION 'audit feed "%" already exists', feed_name
                  USING ERRCODE = 'duplicate_object',
                        DETAIL = 'Feed names are unique in the database (another role''s feed may have it).',
                        HINT = format('Drop it first if it is yours (SELECT audit.drop_feed(%L);), or choose another name.', feed_name);
        END;
        RETURN;
    END IF;
    SELECT * INTO f FROM audit._feed x WHERE x.name = feed_name FOR UPDATE;
    IF NOT FOUND OR NOT pg_has_role(caller, f.owner, 'USAGE') THEN
        PERFORM audit._feed_missing(feed_name);
    END IF;
    IF action = 'drop' THEN
        DELETE FROM audit._feed x WHERE x.name = f.name;
        RETURN;
    END IF;
    IF action = 'ack' THEN
        IF arg IS NULL OR arg < f.position OR arg > f.last_position THEN
            RAISE EXCEPTION 'position % of audit feed "%" is not one to acknowledge', coalesce(arg::text, 'NULL'), f.name
                  USING ERRCODE = 'invalid_parameter_value',
                        DETAIL = format('The feed is acknowledged up to %s; audit.read_feed has returned positions up to %s.', f.position, f.last_position),
                        HINT = 'Acknowledge the position of the last row you processed.';
        END IF;
        DELETE FROM audit._feed_window fw WHERE fw.feed = f.name AND fw.position <= arg;
        UPDATE audit._feed x
           SET position = arg, acked_at = now(),
               -- the whole window acknowledged: the feed is where its snapshot is
               acked_snapshot = CASE WHEN arg = f.last_position AND f.window_snapshot IS NOT NULL
                                     THEN f.window_snapshot ELSE f.acked_snapshot END,
               acked_snapshot_at = CASE WHEN arg = f.last_position AND f.window_snapshot IS NOT NULL
                                        THEN f.window_snapshot_at ELSE f.acked_snapshot_at END,
               window_snapshot = CASE WHEN arg = f.last_position THEN NULL ELSE f.window_snapshot END,
               window_snapshot_at = CASE WHEN arg = f.last_position THEN NULL ELSE f.window_snapshot_at END
         WHERE x.name = f.name;
        RETURN;
    END IF;
    IF action <> 'read' THEN
        RAISE EXCEPTION 'unknown audit feed action %', quote_literal(action) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF f.broken_at IS NOT NULL THEN
        RAISE EXCEPTION 'audit feed "%" is broken', f.name
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    DETAIL = format('%s (since %s): retention may have removed changes it had not acknowledged.',
                                    f.broken_reason, to_char(f.broken_at, 'YYYY-MM-DD HH24:MI:SS TZ')),
                    HINT = format('Recreate it and resynchronise its consumer: SELECT audit.drop_feed(%L); SELECT audit.create_feed(%L, ...);', f.name, f.name);
    END IF;
    -- lagging past the limit, it is broken even before maintenance says so (retention may have
    -- gone past it: a row lock held on the feed keeps maintenance from marking it)
    IF audit._feed_lag(f) > extract(epoch FROM audit._feed_max_lag()) THEN
        RAISE EXCEPTION 'audit feed "%" is broken', f.name
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    DETAIL = format('It has not caught up since %s, longer ago than pg_storage_ext.audit_feed_max_lag (%s): retention may have removed changes it had not acknowledged.',
                                    to_char(f.acked_snapshot_at, 'YYYY-MM-DD HH24:MI:SS TZ'), audit._feed_max_lag()),
                    HINT = format('Recreate it and resynchronise its consumer: SELECT audit.drop_feed(%L); SELECT audit.create_feed(%L, ...);', f.name, f.name);
    END IF;
    -- a new window when the last one is acknowledged (an all-tables feed: the tables the caller
    -- may read)
    IF f.window_snapshot IS NULL THEN
        hi := audit._feed_snapshot();
        excluded := CASE WHEN f.tables IS NULL THEN audit._feed_excluded(caller) ELSE '{}' END;
        INSERT INTO audit._feed_window (feed, position, txid, committed_at, changes)
        SELECT f.name, f.last_position + row_number() OVER (ORDER BY t.last_id), t.txid, t.committed_at, t.changes
          FROM audit._feed_transactions(f.acked_snapshot, hi, f.tables, excluded) AS t;
        GET DIAGNOSTICS made = ROW_COUNT;
        IF made = 0 THEN
            -- nothing committed since: the feed is where this snapshot is
            UPDATE audit._feed x SET acked_snapshot = hi, acked_snapshot_at = now() WHERE x.name = f.name;
            RETURN;
        END IF;
        UPDATE audit._feed x SET window_snapshot = hi, window_snapshot_at = now(), last_position = f.last_position + made
         WHERE x.name = f.name;
    END IF;
    -- whole transactions, up to max_changes (arg) changes, at least one transaction
    RETURN QUERY
    SELECT w.txid, w.position, w.committed_at
      FROM (SELECT x.position, x.txid, x.committed_at,
                   sum(x.changes) OVER (ORDER BY x.position) - x.changes AS before
              FROM (SELECT * FROM audit._feed_window fw WHERE fw.feed = f.name
                     ORDER BY fw.position LIMIT arg) AS x) AS w
     WHERE w.before < arg
     ORDER BY w.position;
END
$$;
REVOKE ALL ON FUNCTION audit._feed_act(text, text, bigint, oid[], text, oid) FROM PUBLIC;
COMMENT ON FUNCTION audit._feed_act(text, text, bigint, oid[], text, oid) IS
    'Internal: a change-feed action (create, read, ack, drop) for the role caller, run as the extension owner (audit._feed_gate calls it, naming the calling role); a read returns the window''s transactions to return now.';

CREATE FUNCTION audit.create_feed(name text, tables regclass[] DEFAULT NULL, start text DEFAULT 'now') RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t regclass;
    oids oid[];
BEGIN
    PERFORM audit._require_reader('audit.create_feed', NULL);
    PERFORM storage._require_primary('audit.create_feed');
    IF create_feed.name IS NULL OR create_feed.name !~ '^[A-Za-z0-9_.:-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid audit feed name %', coalesce(quote_literal(create_feed.name), 'NULL')
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'A feed''s name is 1 to 63 letters, digits and _ . : -.',
                    HINT = 'E.g. audit.create_feed(''search_sync'').';
    END IF;
    IF start IS NULL OR start NOT IN ('now', 'beginning') THEN
        RAISE EXCEPTION 'invalid start % of audit feed "%"', coalesce(quote_literal(start), 'NULL'), create_feed.name
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'A feed starts with the transactions committed from now on (''now'') or with the oldest change the log holds (''beginning'').',
                    HINT = 'Use start => ''now'' or start => ''beginning''.';
    END IF;
    IF tables IS NOT NULL THEN
        IF cardinality(tables) = 0 OR array_position(tables, NULL) IS NOT NULL THEN
            RAISE EXCEPTION 'an audit feed needs at least one table, and no NULL'
                  USING ERRCODE = 'invalid_parameter_value',
                        HINT = 'Pass tables => NULL for every audited table.';
        END IF;
        FOREACH t IN ARRAY tables LOOP
            PERFORM storage._refuse_on_citus(t, 'audit.create_feed',
                'The changes of a Citus table are logged where its rows are (a distributed table''s on the workers that hold its shards), each node in its own transactions: a feed on the coordinator would miss them. Read a feed on each worker, or use Citus''s change data capture.');
            IF NOT EXISTS (SELECT FROM audit._tracked tr WHERE tr.table_name = t) THEN
                RAISE EXCEPTION 'table % is not audited', t
                      USING ERRCODE = 'invalid_parameter_value',
                            DETAIL = 'A feed reads the changes audit.log holds: only audited tables have them.',
                            HINT = format('Its owner can start capture: SELECT audit.enable(%L);', t::text);
            END IF;
        END LOOP;
        oids := ARRAY(SELECT DISTINCT u.t::oid FROM unnest(tables) AS u(t) ORDER BY 1);
    END IF;
    IF oids IS NOT NULL THEN
        PERFORM audit._feed_tables('audit.create_feed', oids);
    END IF;
    -- the notifications of LISTEN audit_feed
    PERFORM audit._feed_notifier();
    PERFORM audit._feed_gate('create', create_feed.name, NULL, oids, start);
END
$$;
COMMENT ON FUNCTION audit.create_feed(text, regclass[], text) IS
    'Creates a change feed, owned by the caller, over the audited tables given (all when NULL; the caller needs audit_reader and SELECT on each), starting with the transactions committed from now (''now'') or with the oldest change the log holds (''beginning''). Read it with audit.read_feed, acknowledge with audit.ack_feed.';

CREATE FUNCTION audit.read_feed(name text, max_changes int DEFAULT 1000)
RETURNS TABLE ("position" bigint, txid bigint, committed_at timestamptz, table_name regclass, op text,
               key jsonb, old_row jsonb, new_row jsonb, actor jsonb)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tables oid[];
    txids xid8[];
    positions bigint[];
    committed timestamptz[];
BEGIN
    PERFORM audit._require_reader('audit.read_feed', NULL);
    PERFORM storage._require_primary('audit.read_feed');
    IF max_changes IS NULL OR max_changes < 1 THEN
        RAISE EXCEPTION 'max_changes must be at least 1, got %', coalesce(max_changes::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'A read returns whole transactions up to max_changes changes (at least one transaction, whatever its size).';
    END IF;
    -- its tables, read as the caller (its own feeds only), checked as the caller: SELECT on each
    SELECT f.tables INTO tables FROM audit._feed f WHERE f.name = read_feed.name;
    IF NOT FOUND THEN
        PERFORM audit._feed_missing(read_feed.name);
    END IF;
    -- a feed over given tables needs SELECT on each (an all-tables feed reads those it may)
    IF tables IS NOT NULL THEN
        PERFORM audit._feed_tables('audit.read_feed', tables);
    END IF;
    -- (the notifier is gone after a restart until something starts it)
    PERFORM audit._feed_notifier();
    SELECT array_agg(g.txid::text::xid8 ORDER BY g.position), array_agg(g.position ORDER BY g.position),
           array_agg(g.committed_at ORDER BY g.position)
      INTO txids, positions, committed
      FROM audit._feed_gate('read', read_feed.name, max_changes, NULL, NULL) AS g;
    IF txids IS NOT NULL THEN
        RETURN QUERY SELECT * FROM audit._feed_changes(txids, positions, committed, tables,
                                                       CASE WHEN tables IS NULL THEN audit._feed_excluded(current_user::regrole::oid) ELSE '{}' END);
    END IF;
END
$$;
COMMENT ON FUNCTION audit.read_feed(text, int) IS
    'The next changes of the caller''s feed after its acknowledged position: whole transactions only, in commit order (the order of their last log id: any two that changed the same row in their commit order), up to max_changes changes (at least one transaction). The same rows again until audit.ack_feed acknowledges them (at least once). position is the transaction''s, increasing.';

CREATE FUNCTION audit.ack_feed(name text, "position" bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM audit._require_reader('audit.ack_feed', NULL);
    PERFORM storage._require_primary('audit.ack_feed');
    PERFORM audit._feed_gate('ack', ack_feed.name, ack_feed.position, NULL, NULL);
END
$$;
COMMENT ON FUNCTION audit.ack_feed(text, bigint) IS
    'Acknowledges the caller''s feed up to a position audit.read_feed returned: those changes are not returned again, and retention may drop them.';

CREATE FUNCTION audit.drop_feed(name text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM audit._require_reader('audit.drop_feed', NULL);
    PERFORM storage._require_primary('audit.drop_feed');
    PERFORM audit._feed_gate('drop', drop_feed.name, NULL, NULL, NULL);
END
$$;
COMMENT ON FUNCTION audit.drop_feed(text) IS
    'Drops the caller''s feed: the log it kept is left to retention.';

-- What a feed has not acknowledged, counted on the log: its changes, and the commit time of the
-- oldest transaction of them (the commit's with track_commit_timestamp, else the start of its last
-- statement). For audit.feeds (the caller's own feeds: it counts everything).
CREATE FUNCTION audit._feed_backlog(f audit._feed, OUT changes bigint, OUT oldest timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(sum(t.changes), 0)::bigint, min(t.committed_at)
      FROM audit._feed_transactions(f.acked_snapshot, pg_current_snapshot(), f.tables) AS t
$$;
COMMENT ON FUNCTION audit._feed_backlog(audit._feed) IS
    'Internal: the changes a feed has not acknowledged and the commit time of the oldest transaction of them (counted on the log).';

-- Since when a change waits for the feed (NULL: none does): its window's first transaction, or
-- the first transaction found committed since its snapshot that changed its tables (index scans
-- that stop there, not necessarily the oldest: the lag below takes the later of it and the
-- snapshot's time, so a long transaction of someone else's never makes a caught-up feed lag).
CREATE FUNCTION audit._feed_waiting_since(f audit._feed) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN f.window_snapshot IS NOT NULL
                THEN coalesce((SELECT w.committed_at FROM audit._feed_window w WHERE w.feed = f.name ORDER BY w.position LIMIT 1),
                              f.window_snapshot_at)
                ELSE least((SELECT s.ts FROM audit._log_statement s, (SELECT pg_current_snapshot() AS cur) AS c
                             WHERE s.txid >= pg_snapshot_xmax(f.acked_snapshot) AND s.txid < pg_snapshot_xmax(c.cur)
                               AND pg_visible_in_snapshot(s.txid, c.cur) AND s.ts >= audit._feed_epoch()
                               AND CASE WHEN f.tables IS NULL THEN s.table_oid <> 'audit.log'::regclass ELSE s.table_oid = ANY (f.tables) END
                             LIMIT 1),
                           (SELECT min(s.ts) FROM audit._log_statement s
                             WHERE s.txid = ANY (ARRAY(SELECT pg_snapshot_xip(f.acked_snapshot)))
                               AND pg_visible_in_snapshot(s.txid, pg_current_snapshot()) AND s.ts >= audit._feed_epoch()
                               AND CASE WHEN f.tables IS NULL THEN s.table_oid <> 'audit.log'::regclass ELSE s.table_oid = ANY (f.tables) END))
           END
$$;
COMMENT ON FUNCTION audit._feed_waiting_since(audit._feed) IS
    'Internal: since when a change waits for the feed (its window, or a transaction committed since its snapshot that changed its tables); NULL when none does.';

-- A feed's lag, in seconds, while a change waits for it (0 when none does): since the later of the
-- time its acknowledged snapshot was taken and the time the waiting change was made. Read from the
-- extension's own columns and the log's index, a few index probes whatever the backlog.
CREATE FUNCTION audit._feed_lag(f audit._feed) RETURNS double precision
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN w.since IS NULL THEN 0
                ELSE greatest(extract(epoch FROM now() - greatest(f.acked_snapshot_at, w.since)), 0)::double precision END
      FROM (SELECT audit._feed_waiting_since(f) AS since) AS w
$$;
COMMENT ON FUNCTION audit._feed_lag(audit._feed) IS
    'Internal: a feed''s lag in seconds while a change waits for it (0 when none does): since the later of its acknowledged snapshot''s time and the waiting change''s.';

CREATE VIEW audit.feeds WITH (security_invoker = true) AS
SELECT f.name, f.owner::regrole AS owner, f.tables::regclass[] AS tables, f.created_at, f.position,
       b.changes AS lag_changes, audit._feed_lag(f) AS lag_seconds,
       f.acked_at, f.broken_at IS NOT NULL AS broken, f.broken_reason
  FROM audit._feed f
 CROSS JOIN LATERAL audit._feed_backlog(f) AS b;
REVOKE ALL ON audit.feeds FROM PUBLIC;
GRANT SELECT ON audit.feeds TO audit_reader;
COMMENT ON VIEW audit.feeds IS
    'The caller''s change feeds: tables (NULL: all audited), acknowledged position, lag (changes committed and not acknowledged; seconds since the snapshot it acknowledged was taken while changes wait), whether broken (it lagged past pg_storage_ext.audit_feed_max_lag and retention went on).';

-- Feeds lagging past pg_storage_ext.audit_feed_max_lag are marked broken: retention no longer keeps
-- the log for them. Feeds whose owner was dropped are dropped. Maintenance calls it before the
-- audit log's retention.
CREATE FUNCTION audit._feed_mark_broken() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f audit._feed;
BEGIN
    DELETE FROM audit._feed x
     WHERE x.name IN (SELECT y.name FROM audit._feed y WHERE NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = y.owner)
                      FOR UPDATE SKIP LOCKED);
    -- (a feed whose row a reader holds locked is marked at a later run: until then retention
    -- leaves it out all the same, and a read refuses it)
    FOR f IN SELECT * FROM audit._feed x WHERE x.broken_at IS NULL ORDER BY x.name FOR UPDATE SKIP LOCKED LOOP
        IF audit._feed_lag(f) > extract(epoch FROM audit._feed_max_lag()) THEN
            UPDATE audit._feed x
               SET broken_at = now(),
                   broken_reason = format('it has not caught up since %s, longer ago than pg_storage_ext.audit_feed_max_lag (%s)',
                                          to_char(f.acked_snapshot_at, 'YYYY-MM-DD HH24:MI:SS TZ'), audit._feed_max_lag())
             WHERE x.name = f.name;
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION audit._feed_mark_broken() FROM PUBLIC;
COMMENT ON FUNCTION audit._feed_mark_broken() IS
    'Internal: marks broken the feeds lagging past pg_storage_ext.audit_feed_max_lag, and drops the feeds whose owner role was dropped.';

-- The time from which the log holds what the feeds still need (NULL: nothing): retention keeps the
-- months from it on. A feed needs the statements of the transactions its snapshot did not see:
-- those running when it was taken (looked up by id) and those begun after (whose statements
-- started at most a day before it: a statement running for longer straddling a month's end is
-- the only miss). A feed from the beginning needs everything. Broken feeds, and feeds lagging
-- past the limit or whose owner is gone, need nothing.
CREATE FUNCTION audit._feed_keep() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT min(least(CASE WHEN pg_snapshot_xmax(f.acked_snapshot) <= '3'::xid8 THEN '-infinity'::timestamptz
                          ELSE f.acked_snapshot_at - interval '1 day' END,
                     (SELECT min(s.ts) FROM audit._log_statement s
                       WHERE s.txid = ANY (ARRAY(SELECT pg_snapshot_xip(f.acked_snapshot)))
                         AND s.ts >= audit._feed_epoch())))
      FROM audit._feed f
     WHERE f.broken_at IS NULL AND EXISTS (SELECT FROM pg_roles r WHERE r.oid = f.owner)
       -- a feed nothing waits for needs nothing kept
       AND audit._feed_waiting_since(f) IS NOT NULL
       AND audit._feed_lag(f) <= extract(epoch FROM audit._feed_max_lag())
$$;
REVOKE ALL ON FUNCTION audit._feed_keep() FROM PUBLIC;
COMMENT ON FUNCTION audit._feed_keep() IS
    'Internal: the time from which the log holds what the change feeds (not broken, within pg_storage_ext.audit_feed_max_lag) have not acknowledged; retention keeps the log from it on.';

COMMENT ON FUNCTION audit._feed_gate(text, text, bigint, oid[], text) IS
    'Internal: one change-feed action (create, read, ack, drop) for the calling role, run as the extension owner (audit._feed_act) with the caller named; audit.create_feed, read_feed, ack_feed and drop_feed call it.';
COMMENT ON FUNCTION audit._feed_notifier() IS
    'Internal: the pid of this database''s change feed notifier (the background worker that sends the notifications of LISTEN audit_feed), started when none runs; NULL when no background worker slot is free.';
GRANT EXECUTE ON FUNCTION audit._feed_notifier(), audit._feed_gate(text, text, bigint, oid[], text), audit._feed_epoch(),
                          audit._feed_max_lag(), audit._feed_tables(text, oid[]), audit._feed_backlog(audit._feed),
                          audit._feed_waiting_since(audit._feed), audit._feed_lag(audit._feed), audit._feed_missing(text), audit._feed_excluded(oid),
                          storage._refuse_on_citus(regclass, text, text) TO audit_reader;

-- Every feed's lag, for health() and the metrics (as the extension owner: the feeds of every role;
-- monitoring roles may call it), a few index probes each.
CREATE FUNCTION audit._feed_status()
RETURNS TABLE (name text, lag_seconds double precision, lag_percent double precision, broken boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT f.name, l.lag,
           CASE WHEN f.broken_at IS NOT NULL THEN 100
                ELSE least(round((100 * l.lag / extract(epoch FROM audit._feed_max_lag()))::numeric, 2), 100) END::double precision,
           f.broken_at IS NOT NULL
      FROM audit._feed f CROSS JOIN LATERAL (SELECT audit._feed_lag(f) AS lag) AS l
     ORDER BY f.name
$$;
REVOKE ALL ON FUNCTION audit._feed_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit._feed_status() TO pg_monitor;
COMMENT ON FUNCTION audit._feed_status() IS
    'Internal: every change feed''s lag (seconds, % of pg_storage_ext.audit_feed_max_lag; 100 when broken), for health() and the metrics (pg_monitor).';
