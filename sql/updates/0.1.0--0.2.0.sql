-- pg_storage_ext 0.1.0 -> 0.2.0: the hand-written part (scripts/gen-updates.py appends 0.2.0's
-- routines, views, comments and grants after the part above `-- @post-update`; `-- @new TEXT` is
-- the statement of sql/pg_storage_ext--0.2.0.sql containing TEXT). Users' data (the audit log,
-- partition and matview configuration) is kept in place.

-- Updates under load (issue 36, F4): every lock the update needs that writers also take, first,
-- in one fixed order, waiting at most 10 seconds: the audited tables (a writer's capture writes
-- the log), then the 0.1.0 log. A writer of an audited table then either finished before the
-- update or starts after its commit, when its capture follows the new layout (the update's DDL
-- invalidates the capture's cached plans in every session); none holds a table while it waits for
-- the log, so there is no deadlock. When a lock is not granted in time nothing has changed, and
-- the error says to retry.
DO $lock$
DECLARE
    t regclass;
    waited text := pg_catalog.current_setting('lock_timeout');
    holders text;
BEGIN
    PERFORM pg_catalog.set_config('lock_timeout', '10s', true);
    FOR t IN SELECT x.table_name FROM audit._tracked x ORDER BY x.table_name::oid LOOP
        EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', t);
    END LOOP;
    LOCK TABLE audit.log IN ACCESS EXCLUSIVE MODE;
    PERFORM pg_catalog.set_config('lock_timeout', waited, true);
EXCEPTION WHEN lock_not_available THEN
    SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('pid %s (%s)', l.pid, a.usename), ', ') INTO holders
      FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid
     WHERE l.locktype OPERATOR(pg_catalog.=) 'relation' AND l.granted AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
       AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
       AND (l.relation OPERATOR(pg_catalog.=) 'audit.log'::pg_catalog.regclass
            OR l.relation IN (SELECT x.table_name::pg_catalog.oid FROM audit._tracked x));
    RAISE EXCEPTION 'pg_storage_ext was not updated: the audited tables or the audit log stayed busy for 10 seconds'
          USING ERRCODE = 'lock_not_available',
                DETAIL = pg_catalog.format('The update locks every audited table and the audit log first; sessions holding them: %s.', pg_catalog.coalesce(holders, 'gone by now')),
                HINT = 'Nothing was changed. Run ALTER EXTENSION pg_storage_ext UPDATE again, or end those sessions first.';
END
$lock$;

-- Audit: a lean, normalized log. The 0.1.0 table audit.log becomes audit._log_0_1 here; its rows
-- move into the new layout after the generated part (once the partition functions are this
-- version's), and it is dropped.
ALTER SEQUENCE audit.log_id_seq OWNED BY NONE;
ALTER TABLE audit.log RENAME TO _log_0_1;
DROP FUNCTION audit.history(regclass, jsonb);
DROP FUNCTION audit._changed_columns(jsonb, jsonb, text[]);
-- @new CREATE TABLE audit._log_context
-- @new CREATE TABLE audit._log_statement
-- @new CREATE TABLE audit._log_row
-- @new SELECT pg_catalog.pg_extension_config_dump('audit._log_context',
-- @new CREATE TABLE audit._ddl_state
-- @new CREATE TABLE audit._citus_tracked
-- replaced after the generated part, with the tags of this version
DROP EVENT TRIGGER pg_storage_ext_audit_ddl;

-- Functions that run SQL pin their search_path.
ALTER FUNCTION audit.enable(regclass, text[], boolean) SET search_path TO pg_catalog, pg_temp;
ALTER FUNCTION audit.disable(regclass) SET search_path TO pg_catalog, pg_temp;
ALTER FUNCTION audit._sync_partitions(regclass) SET search_path TO pg_catalog, pg_temp;
ALTER FUNCTION storage.enable_search(regclass, name, text, jsonb) SET search_path TO pg_catalog, pg_temp;
ALTER FUNCTION storage.rebuild_search(regclass, name, integer) SET search_path TO pg_catalog, pg_temp;

-- Routines whose signature changed.
-- (a fourth argument, direct: the parent's first children are made with PARTITION OF)
DROP FUNCTION storage._partition_create_child(storage.partition_config, text, text);
-- (two more arguments: sub_step, sub_column)
DROP FUNCTION storage.create_partitions(regclass, text, integer, text, text, boolean, boolean);
-- (the metrics, heartbeat and plan jobs, the choice of jobs, and what it scheduled returned)
DROP FUNCTION storage.schedule_jobs(text, text);
-- (a second argument: whether the default holds rows, as the caller's _partition_work found)
DROP FUNCTION storage._partition_maintain_one(storage.partition_config);

-- Materialized views: work the DDL event trigger could not do is left to refresh_due.
ALTER TABLE storage._matview_state ADD COLUMN resolve_pending boolean NOT NULL DEFAULT false;

-- Partitions: a template table per parent, retention into an archive schema, indexes of
-- detached children kept or dropped, the step parsed once and stored typed (filled in after the
-- generated part, by this version's parser).
-- @new CREATE DOMAIN storage.partition_step
ALTER TABLE storage.partition_config ADD COLUMN template_table regclass,
    ADD COLUMN retention_schema name, ADD COLUMN retention_keep_index boolean NOT NULL DEFAULT true,
    ADD COLUMN sub_step text, ADD COLUMN sub_column name, ADD COLUMN sub_retention text,
    ADD COLUMN step_canonical storage.partition_step;

-- New in 0.2.0: tenant isolation, health, metrics, heartbeat, maintenance, migrations.
-- @new CREATE TABLE storage.tenant_isolation
-- @new SELECT pg_catalog.pg_extension_config_dump('storage.tenant_isolation',
-- @new CREATE TABLE storage.health_thresholds
-- @new SELECT pg_catalog.pg_extension_config_dump('storage.health_thresholds',
-- @new CREATE TABLE storage.metrics
-- @new CREATE TABLE storage._metrics_latest
-- @new CREATE TABLE storage.heartbeat
-- @new CREATE TABLE storage.maintenance_log
-- @new CREATE INDEX maintenance_log_relation
-- @new SELECT pg_catalog.pg_extension_config_dump('storage.maintenance_log',
-- @new SELECT pg_catalog.pg_extension_config_dump('storage.maintenance_log_id_seq',
-- @new CREATE ROLE storage_migrator
-- @new CREATE TABLE storage._migration_history
-- @new CREATE INDEX _migration_history_version
-- @new SELECT pg_catalog.pg_extension_config_dump('storage._migration_history',
-- @new SELECT pg_catalog.pg_extension_config_dump('storage._migration_history_id_seq',
-- @new CREATE TABLE storage.migration_hooks
-- @new SELECT pg_catalog.pg_extension_config_dump('storage.migration_hooks',
-- @new SELECT pg_catalog.pg_extension_config_dump('storage.migration_hooks_id_seq',
-- @new CREATE TABLE storage._migration_lock
-- @post-update
-- Triggers and event triggers on this version's functions.
-- @new CREATE TRIGGER tracked_changed
-- @new CREATE TRIGGER read_only
-- @new CREATE EVENT TRIGGER pg_storage_ext_audit_ddl
-- the capture as configured now, for the tables audited before the update
INSERT INTO audit._ddl_state SELECT t.table_name, audit._capture_state(t) FROM audit._tracked t;
-- @new CREATE EVENT TRIGGER pg_storage_ext_partition_drop
-- @new CREATE TRIGGER upsert
-- @new INSERT INTO storage.health_thresholds
-- @new CREATE TRIGGER _stored_sql_guard BEFORE INSERT OR UPDATE OR DELETE ON storage._migration_history
-- @new CREATE TRIGGER _stored_sql_guard_truncate BEFORE TRUNCATE ON storage._migration_history
-- @new CREATE TRIGGER _stored_sql_guard BEFORE INSERT OR UPDATE OR DELETE ON storage.migration_hooks
-- @new CREATE TRIGGER _stored_sql_guard_truncate BEFORE TRUNCATE ON storage.migration_hooks
-- @new ALTER TABLE storage._migration_history ENABLE ALWAYS TRIGGER _stored_sql_guard;
-- @new ALTER TABLE storage._migration_history ENABLE ALWAYS TRIGGER _stored_sql_guard_truncate;
-- @new ALTER TABLE storage.migration_hooks ENABLE ALWAYS TRIGGER _stored_sql_guard;
-- @new ALTER TABLE storage.migration_hooks ENABLE ALWAYS TRIGGER _stored_sql_guard_truncate;

-- Partitions: the stored step, by this version's parser.
UPDATE storage.partition_config SET step_canonical = storage._partition_step(step, control_type);
ALTER TABLE storage.partition_config ALTER COLUMN step_canonical SET NOT NULL;


-- Audit: the 0.1.0 log's rows move into the new layout, under their ids (each old row becomes
-- a statement and, for INSERT, UPDATE and DELETE, a changed row; an UPDATE keeps the old image
-- and the changed columns), into monthly partitions of the new tables (retention carried).
DO $lean$
DECLARE
    cfg storage.partition_config;
    m timestamptz;
    part pg_catalog.regclass;
BEGIN
    SELECT * INTO cfg FROM storage.partition_config WHERE parent = 'audit._log_0_1'::pg_catalog.regclass;
    IF FOUND THEN
        DELETE FROM storage.partition_config WHERE parent = 'audit._log_0_1'::pg_catalog.regclass;
        PERFORM audit._ensure_log();
        UPDATE storage.partition_config SET retention = cfg.retention
         WHERE parent IN ('audit._log_statement'::pg_catalog.regclass, 'audit._log_row'::pg_catalog.regclass);
        FOR m IN SELECT DISTINCT pg_catalog.date_trunc('month', l.ts, 'UTC') FROM audit._log_0_1 l ORDER BY 1 LOOP
            PERFORM storage.ensure_partition('audit._log_statement', m::text),
                    storage.ensure_partition('audit._log_row', m::text);
        END LOOP;
        PERFORM audit._index_log_partitions();
        -- made while this script runs, the partitions became members of the extension: they are
        -- users' data (dumped with their rows), as the partitions made by audit.enable are
        FOR part IN SELECT i.inhrelid::pg_catalog.regclass FROM pg_catalog.pg_inherits i
                     WHERE i.inhparent IN ('audit._log_statement'::pg_catalog.regclass, 'audit._log_row'::pg_catalog.regclass)
                       AND EXISTS (SELECT FROM pg_catalog.pg_depend d
                                    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = i.inhrelid
                                      AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e')
        LOOP
            EXECUTE pg_catalog.format('ALTER EXTENSION pg_storage_ext DROP TABLE %s', part);
        END LOOP;
    END IF;
    CREATE TEMPORARY TABLE pg_temp.lean_0_1 ON COMMIT DROP AS
    SELECT l.*, CASE WHEN l.pk IS NOT NULL
                     THEN ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(coalesce(l.new_row, l.old_row)) AS k
                                 WHERE NOT l.pk OPERATOR(pg_catalog.?) k ORDER BY k) END AS non_key,
           coalesce(l.changed_columns, '{}') AS columns
      FROM audit._log_0_1 l;
    UPDATE pg_temp.lean_0_1 SET non_key = '{}' WHERE pk IS NOT NULL AND non_key IS NULL;
    INSERT INTO audit._log_context AS c
    SELECT DISTINCT ON (x.id) x.*
      FROM (SELECT pg_catalog.jsonb_hash_extended(pg_catalog.jsonb_build_array(l.schema_name, l.table_name, l.db_user, l.role_name,
                                                       l.application_name, l.client_addr, l.columns, l.non_key), 0) AS id,
                   l.schema_name, l.table_name, l.db_user, l.role_name, l.application_name, l.client_addr, l.columns, l.non_key
              FROM pg_temp.lean_0_1 l) AS x
    ON CONFLICT (id) DO NOTHING;
    INSERT INTO audit._log_statement (id, ts, txid, table_oid, op, context, query, detail)
    SELECT l.id, l.ts, l.txid, l.table_oid, l.op,
           pg_catalog.jsonb_hash_extended(pg_catalog.jsonb_build_array(l.schema_name, l.table_name, l.db_user, l.role_name,
                                              l.application_name, l.client_addr, l.columns, l.non_key), 0),
           l.query, CASE l.op WHEN 'TRUNCATE' THEN l.old_row WHEN 'DDL' THEN l.new_row END
      FROM pg_temp.lean_0_1 l;
    INSERT INTO audit._log_row (id, statement_id, ts, key_hash, old_key_hash, old_row, new_row)
    SELECT l.id, l.id, l.ts, pg_catalog.jsonb_hash_extended(l.pk, 0), pg_catalog.jsonb_hash_extended(l.old_pk, 0),
           l.old_row, CASE WHEN l.op = 'UPDATE' THEN audit._delta(l.old_row, l.new_row) ELSE l.new_row END
      FROM pg_temp.lean_0_1 l
     WHERE l.op IN ('INSERT', 'UPDATE', 'DELETE');
    DROP TABLE pg_temp.lean_0_1;
END
$lean$;
DROP TABLE audit._log_0_1;
-- @new CREATE EVENT TRIGGER pg_storage_ext_tenant_ddl
