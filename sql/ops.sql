-- Operations capability: comments on the generated functions, and every schedule the extension
-- keeps (the pg_cron jobs of schedule_jobs; their bodies are in the capabilities).
COMMENT ON FUNCTION storage.version() IS 'The installed pg_storage_ext library version (the crate version).';
COMMENT ON FUNCTION storage._run_as_owner(regclass, text, text[], oid[]) IS
    'Internal: runs one command on a user''s table as the table''s owner under SECURITY_RESTRICTED_OPERATION (as VACUUM and REFRESH do); the caller must have the owner''s privileges. Row changes of the relocating relations are moves, not logged by audit capture. Returns the rows processed.';

CREATE FUNCTION storage.schedule_jobs(refresh_schedule text DEFAULT '* * * * *',
                                      maintenance_schedule text DEFAULT '*/15 * * * *',
                                      metrics_schedule text DEFAULT '* * * * *',
                                      heartbeat_schedule text DEFAULT '5 seconds',
                                      maintenance_plan_schedule text DEFAULT '*/10 * * * *',
                                      jobs text[] DEFAULT ARRAY['refresh_due', 'maintenance', 'metrics', 'heartbeat', 'maintenance_plan'])
RETURNS TABLE (job text, schedule text, command text, effect text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j record;
    unknown text[];
BEGIN
    PERFORM storage._require_primary('storage.schedule_jobs');
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    DETAIL = 'storage.schedule_jobs creates pg_cron jobs.',
                    HINT = 'Add pg_cron to shared_preload_libraries, restart, and CREATE EXTENSION pg_cron in the database named by cron.database_name.';
    END IF;
    jobs := coalesce(jobs, '{}');
    SELECT array_agg(x) INTO unknown FROM unnest(jobs) AS x
     WHERE x NOT IN ('refresh_due', 'maintenance', 'metrics', 'heartbeat', 'maintenance_plan');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown job %', array_to_string(unknown, ', ')
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'The jobs are refresh_due, maintenance, metrics, heartbeat and maintenance_plan.';
    END IF;
    -- the one list of the extension's jobs: name, schedule, command, what it does
    FOR j IN SELECT * FROM (VALUES
        ('refresh_due', refresh_schedule, 'SELECT count(*) FROM storage.refresh_due()',
         'refreshes every registered matview whose interval elapsed and whose sources changed'),
        ('maintenance', maintenance_schedule, 'CALL storage.run_maintenance_proc()',
         'premakes and retires partitions, drains default partitions, gives new partitions of audited tables their capture, prunes the refresh history'),
        ('metrics', metrics_schedule, 'SELECT storage.metrics_snapshot()',
         'samples the health checks and counters into storage.metrics (the history of the report and of /metrics)'),
        ('heartbeat', heartbeat_schedule, 'SELECT storage._heartbeat()',
         'writes the primary''s clock into storage.heartbeat, from which standbys measure their lag; keeps its own run history to an hour'),
        ('maintenance_plan', maintenance_plan_schedule, 'SELECT count(*) FROM storage.run_maintenance_plan()',
         'runs what storage.maintenance_plan() finds needed on its own: VACUUM, ANALYZE, REINDEX CONCURRENTLY, in the background executor')
    ) AS x(name, sched, cmd, eff) ORDER BY name LOOP
        IF j.name = ANY (jobs) THEN
            EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, current_database())'
              USING 'pg_storage_ext.' || j.name, j.sched, j.cmd;
            job := 'pg_storage_ext.' || j.name;
            schedule := j.sched;
            command := j.cmd;
            effect := j.eff;
            RETURN NEXT;
        ELSE
            -- not chosen: not scheduled (an earlier job of that name goes)
            EXECUTE 'SELECT cron.unschedule(c.jobid) FROM cron.job c WHERE c.jobname = $1 AND c.username = current_user'
              USING 'pg_storage_ext.' || j.name;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION storage.schedule_jobs(text, text, text, text, text, text[]) IS
    'Creates or updates the pg_cron jobs of this database that jobs names (all five by default), unscheduling the others, and returns one row per job scheduled with its schedule, command and effect: pg_storage_ext.refresh_due (matviews), pg_storage_ext.maintenance (partitions, housekeeping), pg_storage_ext.metrics (storage.metrics_snapshot()), pg_storage_ext.heartbeat (storage._heartbeat(), for the standbys'' lag; its run history kept to an hour) and pg_storage_ext.maintenance_plan (storage.run_maintenance_plan(): VACUUM, ANALYZE, REINDEX CONCURRENTLY as needed).';

-- Long operations of the extension running now, in any session (src/ops/progress.rs: a named
-- dynamic shared memory segment, so no shared_preload_libraries is needed).
CREATE VIEW storage.progress AS
SELECT p.pid, d.datname AS database, p.operation, p.target, p.phase, p.rows_done, p.rows_total,
       round(100.0 * p.rows_done / nullif(p.rows_total, 0), 1) AS percent, p.started, p.updated
  FROM storage._progress() p
  LEFT JOIN pg_catalog.pg_database d ON d.oid = p.database
 WHERE EXISTS (SELECT FROM pg_catalog.pg_stat_activity a WHERE a.pid = p.pid);
COMMENT ON VIEW storage.progress IS
    'One row per long operation of the extension running now in any session (search backfills and rebuilds, table copies of convert_to_partitioned / undo_partitioning, partition_data_proc, the maintenance executor): pid, database, operation, target, phase, rows_done, rows_total (an estimate), percent, started, updated. Empty when nothing runs; a row goes when its operation ends, fails or is cancelled.';
GRANT SELECT ON storage.progress TO pg_monitor;
GRANT EXECUTE ON FUNCTION storage._progress() TO pg_monitor;
COMMENT ON FUNCTION storage._progress() IS
    'Internal: the running long operations of every session, from the progress segment (storage.progress reads it).';
COMMENT ON FUNCTION storage._progress_start(text, text, bigint) IS
    'Internal: starts reporting a long operation (storage.progress, NOTICEs); returns its handle, NULL when no slot is free.';
COMMENT ON FUNCTION storage._progress_update(integer, bigint, text) IS
    'Internal: records the rows an operation has done and its phase; a NOTICE at most once a second.';
COMMENT ON FUNCTION storage._progress_end(integer) IS
    'Internal: ends an operation''s reporting (its slot is free).';
