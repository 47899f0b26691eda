-- The standby behaviour of every public function, decided once (docs/replicas.md): run on a hot
-- standby by scripts/test-http.sh, after the primary made sb.t (audited, one UPDATE logged),
-- sb.p (registered, partitioned by day) and sb.mv (a registered matview). Table-driven over the
-- catalog: a public function of the extension without a row here fails the test.
--   reads   it works on the standby (no error)
--   refuses 25006 read_only_sql_transaction, its hint naming the primary
--   trigger a trigger function: called directly it is refused as on a primary (39P01); it never
--           fires on a standby, where nothing is written
DO $behaviour$
DECLARE
    r record;
    state text;
    hint text;
    msg text;
    bad text[] := '{}';
    checked int := 0;
BEGIN
    FOR r IN
        WITH decided(fn, expected, call) AS (VALUES
            ('audit.ack_feed(text,bigint)', 'refuses', $$SELECT audit.ack_feed('sb_f', 0)$$),
            ('audit.create_feed(text,regclass[],text)', 'refuses', $$SELECT audit.create_feed('sb_f')$$),
            ('audit.drop_feed(text)', 'refuses', $$SELECT audit.drop_feed('sb_f')$$),
            ('audit.read_feed(text,integer)', 'refuses', $$SELECT count(*) FROM audit.read_feed('sb_f')$$),
            ('audit.disable(regclass)', 'refuses', $$SELECT audit.disable('sb.t')$$),
            ('audit.enable(regclass,text[],boolean)', 'refuses', $$SELECT audit.enable('sb.t')$$),
            ('audit.history(regclass,jsonb,jsonb)', 'reads', $$SELECT count(*) FROM audit.history('sb.t', '{"id": 1}')$$),
            ('audit.restore_row(regclass,jsonb,timestamp with time zone)', 'refuses', $$SELECT audit.restore_row('sb.t', '{"id": 1}', now())$$),
            ('audit.revert_statement(bigint,boolean)', 'refuses', $$SELECT count(*) FROM audit.revert_statement((SELECT max(id) FROM audit.log), false)$$),
            ('audit.revert_transaction(bigint,boolean)', 'refuses', $$SELECT count(*) FROM audit.revert_transaction(1, false)$$),
            ('audit.row_at(regclass,jsonb,timestamp with time zone)', 'reads', $$SELECT audit.row_at('sb.t', '{"id": 1}', now())$$),
            ('audit.table_at(anyelement,timestamp with time zone)', 'reads', $$SELECT count(*) FROM audit.table_at(NULL::sb.t, now())$$),
            ('audit.set_retention(interval)', 'refuses', $$SELECT audit.set_retention('12 months')$$),
            ('storage.convert_to_partitioned(regclass,name,text,integer)', 'refuses', $$SELECT storage.convert_to_partitioned('sb.t', 'id', '100')$$),
            ('storage.create_partitions(regclass,text,integer,text,text,boolean,boolean,text,name)', 'refuses', $$SELECT storage.create_partitions('sb.p', '1 day')$$),
            ('storage.create_roles(text)', 'refuses', $$SELECT * FROM storage.create_roles('sb_')$$),
            ('storage.disable_tenant_isolation(regclass)', 'refuses', $$SELECT storage.disable_tenant_isolation('sb.t')$$),
            ('storage.enable_search(regclass,name,text,jsonb,jsonb)', 'refuses', $$SELECT storage.enable_search('sb.t', 'tsv', 'english', '{"v": "A"}')$$),
            ('storage.enable_tenant_isolation(regclass,name,text)', 'refuses', $$SELECT storage.enable_tenant_isolation('sb.t', 'tenant')$$),
            ('storage.ensure_partition(regclass,text)', 'refuses', $$SELECT storage.ensure_partition('sb.p', now()::text)$$),
            ('storage.grant_schema(name,text)', 'refuses', $$SELECT storage.grant_schema('sb')$$),
            ('storage.health()', 'reads', $$SELECT count(*) FROM storage.health()$$),
            ('storage.health_report_html(interval,boolean)', 'reads', $$SELECT length(storage.health_report_html())$$),
            ('storage.top_queries(interval,integer)', 'reads', $$SELECT count(*) FROM storage.top_queries()$$),
            ('storage.query_regressions(interval,double precision,bigint)', 'reads', $$SELECT count(*) FROM storage.query_regressions('1 day')$$),
            ('storage.json_schema_check(jsonb,jsonb)', 'reads', $$SELECT storage.json_schema_check('{"type": "object"}', '{}')$$),
            ('storage.json_schema_errors(jsonb,jsonb)', 'reads', $$SELECT storage.json_schema_errors('{"type": "object"}', '[]')$$),
            ('storage.json_schema_is_valid(jsonb)', 'reads', $$SELECT storage.json_schema_is_valid('{"type": "object"}')$$),
            ('storage.json_schema_valid(jsonb,jsonb)', 'reads', $$SELECT storage.json_schema_valid('{"type": "object"}', '{}')$$),
            ('storage.jsonb_diff(jsonb,jsonb)', 'reads', $$SELECT storage.jsonb_diff('{"a": 1}', '{"a": 2}')$$),
            ('storage.jsonb_merge_deep(jsonb,jsonb)', 'reads', $$SELECT storage.jsonb_merge_deep('{"a": 1}', '{"b": 2}')$$),
            ('storage.jsonb_merge_patch(jsonb,jsonb)', 'reads', $$SELECT storage.jsonb_merge_patch('{"a": 1}', '{"a": null}')$$),
            ('storage.jsonb_patch(jsonb,jsonb)', 'reads', $$SELECT storage.jsonb_patch('{"a": 1}', '[{"op": "remove", "path": "/a"}]')$$),
            ('storage.lint_migration(text,boolean)', 'reads', $$SELECT count(*) FROM storage.lint_migration('CREATE INDEX ON sb.t (v)')$$),
            ('storage.maintenance_plan()', 'reads', $$SELECT count(*) FROM storage.maintenance_plan()$$),
            ('storage.metrics_prometheus()', 'reads', $$SELECT length(storage.metrics_prometheus())$$),
            ('storage.metrics_snapshot()', 'refuses', $$SELECT storage.metrics_snapshot()$$),
            ('storage.migrate(text,text,text,text,text,text,boolean,text[])', 'refuses', $$SELECT storage.migrate('1', 'x', 'SELECT 1')$$),
            ('storage.migrate_down(text, boolean)', 'refuses', $$SELECT storage.migrate_down('1')$$),
            ('storage.alter_column_type(regclass,name,text,text)', 'refuses', $$SELECT storage.alter_column_type('sb.t', 'id', 'bigint')$$),
            ('storage.add_not_null(regclass,name)', 'refuses', $$SELECT storage.add_not_null('sb.t', 'id')$$),
            ('storage.add_check(regclass,name,text)', 'refuses', $$SELECT storage.add_check('sb.t', 'c', 'id > 0')$$),
            ('storage.add_foreign_key(regclass,name[],regclass,name[])', 'refuses', $$SELECT storage.add_foreign_key('sb.t', '{id}', 'sb.t', '{id}')$$),
            ('storage.abort_schema_change(regclass)', 'refuses', $$SELECT storage.abort_schema_change('sb.t')$$),
            ('storage.partition_data_proc(regclass,integer)', 'refuses', $$CALL storage.partition_data_proc('sb.p')$$),
            ('storage.partitions(regclass)', 'reads', $$SELECT count(*) FROM storage.partitions('sb.p')$$),
            ('storage.rebuild_search(regclass,name,integer)', 'refuses', $$SELECT storage.rebuild_search('sb.t', 'tsv')$$),
            ('storage.refresh_due()', 'refuses', $$SELECT count(*) FROM storage.refresh_due()$$),
            ('storage.refresh_matview(regclass,boolean)', 'refuses', $$SELECT storage.refresh_matview('sb.mv')$$),
            ('storage.register_matview(regclass,interval,boolean)', 'refuses', $$SELECT storage.register_matview('sb.mv', '1 hour')$$),
            ('storage.replication_status()', 'reads', $$SELECT count(*) FROM storage.replication_status()$$),
            ('storage.run_maintenance(regclass)', 'refuses', $$SELECT count(*) FROM storage.run_maintenance()$$),
            ('storage.run_maintenance_plan(boolean)', 'refuses', $$SELECT count(*) FROM storage.run_maintenance_plan()$$),
            ('storage.run_maintenance_proc(interval)', 'refuses', $$CALL storage.run_maintenance_proc()$$),
            ('storage.schedule_jobs(text,text,text,text,text,text[])', 'refuses', $$SELECT storage.schedule_jobs()$$),
            ('storage.search(regclass,text,integer,integer,boolean)', 'reads', $$SELECT count(*) FROM storage.search('sb.doc', 'replica')$$),
            ('storage.search_suggest(regclass,text)', 'reads', $$SELECT storage.search_suggest('sb.doc', 'replicas')$$),
            ('storage.search_synonyms(regconfig,text,text[])', 'refuses', $$SELECT storage.search_synonyms('english', 'copy', '{replica}')$$),
            ('storage.search_tsquery(regconfig,text)', 'reads', $$SELECT storage.search_tsquery('english', 'standby replica')$$),
            ('storage.security_report()', 'reads', $$SELECT count(*) FROM storage.security_report()$$),
            ('storage.ssl_status()', 'reads', $$SELECT count(*) FROM storage.ssl_status()$$),
            ('storage.tsvector_update()', 'trigger', $$SELECT storage.tsvector_update()$$),
            ('storage.undo_partitioning(regclass,integer)', 'refuses', $$SELECT storage.undo_partitioning('sb.p')$$),
            ('storage.unregister_matview(regclass)', 'refuses', $$SELECT storage.unregister_matview('sb.mv')$$),
            ('storage.verify_tenant_isolation(regclass,text,text)', 'refuses', $$SELECT count(*) FROM storage.verify_tenant_isolation('sb.t', '1', '2')$$),
            ('storage.version()', 'reads', $$SELECT storage.version()$$)),
        public AS (
            SELECT format('%s.%s(%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)) AS fn
              FROM pg_proc p
              JOIN pg_namespace n ON n.oid = p.pronamespace
              JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
              JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_storage_ext'
             WHERE p.proname !~ '^_')
        SELECT coalesce(p.fn, d.fn) AS fn, d.expected, d.call, p.fn IS NOT NULL AS exists
          FROM public p FULL JOIN decided d ON replace(d.fn, ', ', ',') = replace(p.fn, ', ', ',')
         ORDER BY 1
    LOOP
        IF r.expected IS NULL THEN
            bad := bad || format('%s: no decided standby behaviour (add it to tests/standby/behaviour.sql and docs/replicas.md)', r.fn);
            CONTINUE;
        ELSIF NOT r.exists THEN
            bad := bad || format('%s: decided here but not a function of the extension', r.fn);
            CONTINUE;
        END IF;
        state := '00000';
        hint := NULL;
        msg := NULL;
        BEGIN
            EXECUTE r.call;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, hint = PG_EXCEPTION_HINT, msg = MESSAGE_TEXT;
        END;
        checked := checked + 1;
        IF (r.expected = 'reads' AND state <> '00000')
           OR (r.expected = 'refuses' AND (state <> '25006' OR hint !~ '^Run it on the primary'))
           OR (r.expected = 'trigger' AND state <> '39P01') THEN
            bad := bad || format('%s: expected %s, got %s: %s (hint: %s)', r.fn, r.expected, state, coalesce(msg, '-'), coalesce(hint, '-'));
        END IF;
    END LOOP;
    IF cardinality(bad) > 0 THEN
        RAISE EXCEPTION 'standby behaviour: % of % functions wrong', cardinality(bad), checked
              USING DETAIL = array_to_string(bad, E'\n');
    END IF;
    RAISE NOTICE 'standby behaviour: % functions as decided', checked;
END
$behaviour$;

-- The extension's scheduled jobs (pg_cron's sessions) return at once on a standby: no error.
SET application_name = 'pg_cron';
SELECT count(*) AS due_on_standby FROM storage.refresh_due();
CALL storage.run_maintenance_proc();
SELECT storage.metrics_snapshot() IS NULL AS snapshot_skipped;
SELECT count(*) AS maintenance_run_on_standby FROM storage.run_maintenance_plan();
RESET application_name;
-- a dry run of the maintenance plan reads
SELECT count(*) >= 0 AS maintenance_dry_run_reads FROM storage.run_maintenance_plan(true);

-- What the primary wrote reads correctly here.
SELECT count(*) AS history_rows FROM audit.history('sb.t', '{"id": 1}');
SELECT audit.row_at('sb.t', '{"id": 1}', now()) ->> 'v' AS row_now;
SELECT count(*) >= 3 AS partitions_replicated FROM storage.partitions('sb.p');
SELECT count(*) AS matviews_registered FROM storage.matview_status WHERE view = 'sb.mv'::regclass;
-- search reads the primary's search column, with snippets
SELECT key, headline FROM storage.search('sb.doc', 'standby replicas sear');
