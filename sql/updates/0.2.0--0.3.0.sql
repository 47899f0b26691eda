-- pg_storage_ext 0.2.0 -> 0.3.0: the hand-written part (scripts/gen-updates.py appends 0.3.0's
-- routines, views, comments and grants after the part above `-- @post-update`; `-- @new TEXT` is
-- the statement of the current full script containing TEXT). Only what is not idempotent goes
-- here: new and changed tables, roles, triggers, data moves, DROPs of removed or re-signatured
-- routines and views.



-- Updates under load: the locks writers also take, first, bounded (audit._lock_for_update).
-- @new CREATE FUNCTION audit._lock_for_update
SELECT audit._lock_for_update(ARRAY['audit._log_context'::pg_catalog.regclass, 'audit._log_statement'::pg_catalog.regclass]);

-- Audit: the actor (pg_storage_ext.audit_actor_settings) of every statement, in its context.
ALTER TABLE audit._log_context ADD COLUMN actor jsonb;
-- @new CREATE INDEX _log_context_actor
-- (a tenth argument: the actor)
DROP FUNCTION audit._context(name, name, name, name, text, inet, text[], text[], bigint);
-- (audit.log's rows from Citus workers gain the actor column: a new return type)
DROP FUNCTION audit._from_workers(text, regclass);
-- (an actor filter: a third argument)
DROP FUNCTION audit.history(regclass, jsonb);
-- Replicas: how often the heartbeat comes, for the routing endpoints' lag (issue 39).
ALTER TABLE storage.heartbeat ADD COLUMN every interval;
-- Health: the checks that name the culprit (issue 39), seeded where they are missing.
INSERT INTO storage.health_thresholds (check_name, warn, critical, description)
SELECT v.* FROM (VALUES
    ('xmin_horizon', 10000000::numeric, 500000000::numeric, 'transactions since the oldest xmin VACUUM must keep (a session, replication slot, prepared transaction or standby); detail: which, since when, and the command that releases it'),
    ('archiver', 1, 20, 'WAL segments waiting to be archived while archive_command fails (0 when it works or archive_mode is off); detail: the last failure'),
    ('checkpoints', 20, 50, '% of checkpoints since the last snapshot that were requested (WAL past max_wal_size, CHECKPOINT, backups) rather than timed'),
    ('wal_rate', NULL, NULL, 'bytes of WAL written per second since the last snapshot; detail: the share of max_wal_size one checkpoint_timeout writes at that rate'),
    ('audit_feed_lag', 50, 100, '% of pg_storage_ext.audit_feed_max_lag the most lagging change feed lags (100: broken, retention no longer keeps its changes); detail: each feed and how far behind'))
    AS v(check_name, warn, critical, description)
 WHERE NOT EXISTS (SELECT FROM storage.health_thresholds t WHERE t.check_name = v.check_name);
-- Health: the query statistics history (issue 39).
-- @new CREATE TABLE storage.query_stats
-- @new CREATE INDEX query_stats_query
-- @new CREATE TABLE storage._query_stats_last
-- Health: custom metrics (issue 39), stored SQL guarded as the migrations' is.
-- @new CREATE TABLE storage.custom_metrics
-- @new pg_extension_config_dump('storage.custom_metrics'
-- @new CREATE TRIGGER _stored_sql_guard BEFORE INSERT OR UPDATE OR DELETE ON storage.custom_metrics
-- @new CREATE TRIGGER _stored_sql_guard_truncate BEFORE TRUNCATE ON storage.custom_metrics
-- @new ALTER TABLE storage.custom_metrics ENABLE ALWAYS TRIGGER _stored_sql_guard;
-- @new ALTER TABLE storage.custom_metrics ENABLE ALWAYS TRIGGER _stored_sql_guard_truncate;
-- Audit: change feeds (issue 40). A statement's row records how many rows it logged.
ALTER TABLE audit._log_statement ADD COLUMN rows integer;
-- @new CREATE TABLE audit._log_epoch
-- (the database's log began before the update: its transaction ids are this cluster's)
INSERT INTO audit._log_epoch (since) VALUES ('-infinity');
-- @new CREATE TABLE audit._feed (
-- @new CREATE TABLE audit._feed_window (
-- @new ALTER TABLE audit._feed ENABLE ROW LEVEL SECURITY
-- @new ALTER TABLE audit._feed_window ENABLE ROW LEVEL SECURITY
-- @new CREATE POLICY own ON audit._feed FOR SELECT
-- @new CREATE POLICY own ON audit._feed_window FOR SELECT
-- (a second argument: with_query_text)
DROP FUNCTION storage.health_report_html(interval);
-- Search: synonyms (their generated columns call the function, made first here) and the
-- vocabulary of typo tolerance, filled by the heartbeat's merge (storage._search_words_merge).
-- @new CREATE FUNCTION storage._search_alternatives
-- @new CREATE TABLE storage.search_synonyms (
-- @new pg_extension_config_dump('storage.search_synonyms'
-- @new CREATE TABLE storage._search_words (
-- @new CREATE TABLE storage._search_words_queue (
-- @new CREATE INDEX _search_words_queue_word
-- text from related tables: their configuration, and enable_search's new argument sources
-- @new CREATE TABLE storage._search_sources (
-- @new CREATE INDEX _search_sources_related
-- @new CREATE INDEX _search_sources_lookup
-- @new pg_extension_config_dump('storage._search_sources'
DROP FUNCTION storage.enable_search(regclass, name, text, jsonb);
-- Migrations: online schema changes (issue 42), their record guarded as stored SQL is.
-- @new CREATE TABLE storage._schema_changes (
-- @new CREATE UNIQUE INDEX _schema_changes_open
-- @new pg_extension_config_dump('storage._schema_changes'
-- @new pg_extension_config_dump('storage._schema_changes_id_seq'
-- @new CREATE TRIGGER _stored_sql_guard BEFORE INSERT OR UPDATE OR DELETE ON storage._schema_changes
-- @new CREATE TRIGGER _stored_sql_guard_truncate BEFORE TRUNCATE ON storage._schema_changes
-- @new ALTER TABLE storage._schema_changes ENABLE ALWAYS TRIGGER _stored_sql_guard;
-- @new ALTER TABLE storage._schema_changes ENABLE ALWAYS TRIGGER _stored_sql_guard_truncate;
-- @post-update
-- audit.log no longer reads it (its successor is audit._cluster_rows)
DROP FUNCTION audit._cluster_log();
-- the statements' index by context, on the log partitions made before
DO $index$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhparent = 'audit._log_statement'::pg_catalog.regclass) THEN
        PERFORM audit._index_log_partitions();
    END IF;
END
$index$;
-- Audit: the capture of TRUNCATE fires before it and logs the rows it removes. The triggers of
-- the tables audited before are made so here, as audit.enable makes them; the DDL event trigger
-- is left out of it (this is no tampering), and the state it compares with is the new one.
ALTER EVENT TRIGGER pg_storage_ext_audit_ddl DISABLE;
DO $truncate$
DECLARE
    t audit._tracked;
    r record;
BEGIN
    FOR t IN SELECT * FROM audit._tracked LOOP
        FOR r IN SELECT t.table_name::pg_catalog.regclass AS rel, 'table' AS scope
                 UNION ALL
                 SELECT p.p, 'partition' FROM audit._partitions(t.table_name) AS p(p)
        LOOP
            IF EXISTS (SELECT FROM pg_catalog.pg_trigger g
                        WHERE g.tgrelid OPERATOR(pg_catalog.=) r.rel AND g.tgname OPERATOR(pg_catalog.=) 'audit_capture_truncate'
                          AND g.tgfoid OPERATOR(pg_catalog.=) 'audit._capture()'::pg_catalog.regprocedure) THEN
                PERFORM audit._install_capture(r.rel, audit._capture_args(r.scope, t.capture_query, t.exclude_columns));
            END IF;
        END LOOP;
    END LOOP;
END
$truncate$;
UPDATE audit._ddl_state d SET state = audit._capture_state(t) FROM audit._tracked t WHERE t.table_name OPERATOR(pg_catalog.=) d.table_name;
ALTER EVENT TRIGGER pg_storage_ext_audit_ddl ENABLE;
