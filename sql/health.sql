-- Health capability: checks with thresholds, a metrics history, Prometheus text.
--
-- storage.health() reads the catalogs and statistics views only (never a user table), each check
-- in its own sub-block: a check the caller may not run (or that fails) is 'unknown' with why,
-- the others still answer. Rates (cache hit ratio, error rate, deadlocks, CPU, missing audit
-- logs) are taken between now and the last storage.metrics_snapshot(); a counter lower than at
-- the snapshot was reset and counts from zero. storage.metrics holds the snapshots, partitioned
-- by day by the partition capability (14 days kept).

CREATE TABLE storage.health_thresholds (
    check_name  text PRIMARY KEY,
    warn        numeric,
    critical    numeric,
    enabled     boolean NOT NULL DEFAULT true,
    description text NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('storage.health_thresholds', '');
COMMENT ON TABLE storage.health_thresholds IS
    'One row per check of storage.health(): warn and critical levels (NULL = never), enabled. Update rows to tune; dumped with the database.';
-- pg_dump dumps every row (tuned ones included); a restore COPYs them onto the rows CREATE
-- EXTENSION seeded, so an insert of an existing check updates it instead.
CREATE FUNCTION storage._health_thresholds_upsert() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE storage.health_thresholds t
       SET warn = NEW.warn, critical = NEW.critical, enabled = NEW.enabled, description = NEW.description
     WHERE t.check_name = NEW.check_name;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION storage._health_thresholds_upsert() IS
    'Internal: an insert of a check that exists updates it (a restore of tuned thresholds over the seeded ones).';
CREATE TRIGGER upsert BEFORE INSERT ON storage.health_thresholds
    FOR EACH ROW EXECUTE FUNCTION storage._health_thresholds_upsert();
INSERT INTO storage.health_thresholds (check_name, warn, critical, description) VALUES
    ('long_running_queries', 1, 60, 'seconds the longest active query has run'),
    ('idle_in_transaction', 60, 300, 'seconds the longest session has been idle in a transaction'),
    ('connection_utilisation', 80, 95, '% of max_connections (less reserved slots) in use'),
    ('cache_hit_ratio', 80, 50, '% of block reads served by shared buffers since the last snapshot (lower is worse)'),
    ('error_rate', 1, 5, '% of transactions rolled back since the last snapshot'),
    ('cpu', 80, 95, '% of host CPU time busy since the last snapshot (Linux /proc/stat)'),
    ('disk_free', 20, 10, '% of the data directory''s file system free (lower is worse)'),
    ('blocked_backends', 1, 5, 'sessions waiting on a lock'),
    ('deadlocks', 1, 5, 'deadlocks in this database since the last snapshot'),
    ('xid_wraparound', 50, 75, '% of the 2^31 transaction ids used by the oldest unfrozen database'),
    ('sequence_exhaustion', 75, 90, '% of its range the most used sequence has consumed'),
    ('invalid_indexes', 1, NULL, 'indexes left invalid (a failed CREATE INDEX CONCURRENTLY)'),
    ('replication_lag', 30, 300, 'seconds the furthest standby lags (on a standby: its own lag, from storage.replication_status())'),
    ('ssl', 1, NULL, 'client connections over TCP without SSL'),
    ('audit_coverage', 1, NULL, 'audited tables whose capture is not working (audit.coverage)'),
    ('missing_audit_logs', 1, NULL, 'audited tables written since the last snapshot with no log rows since'),
    ('audit_feed_lag', 50, 100, '% of pg_storage_ext.audit_feed_max_lag the most lagging change feed lags (100: broken, retention no longer keeps its changes); detail: each feed and how far behind'),
    ('partition_premake', 1, NULL, 'registered parents short of their premake or with rows in the default partition'),
    ('matview_freshness', 1, NULL, 'registered matviews stale for over twice their interval or whose last refresh failed'),
    ('cron_job_failures', 1, 3, 'failed runs of the extension''s pg_cron jobs in the last hour'),
    ('maintenance_overdue', 1, NULL, 'tables past the maintenance thresholds for VACUUM or ANALYZE with none in the last day'),
    ('maintenance_failures', 1, NULL, 'commands of storage.run_maintenance_plan() that failed in the last day'),
    ('xmin_horizon', 10000000, 500000000, 'transactions since the oldest xmin VACUUM must keep (a session, replication slot, prepared transaction or standby); detail: which, since when, and the command that releases it'),
    ('archiver', 1, 20, 'WAL segments waiting to be archived while archive_command fails (0 when it works or archive_mode is off); detail: the last failure'),
    ('checkpoints', 20, 50, '% of checkpoints since the last snapshot that were requested (WAL past max_wal_size, CHECKPOINT, backups) rather than timed'),
    ('wal_rate', NULL, NULL, 'bytes of WAL written per second since the last snapshot; detail: the share of max_wal_size one checkpoint_timeout writes at that rate'),
    ('citus_node_health', 1, 1, 'Citus: node pairs that cannot connect (citus_check_cluster_node_health()) plus inactive nodes; checked only where Citus is installed'),
    ('citus_rebalance', 1, NULL, 'Citus: shard moves the rebalancer plans (get_rebalance_table_shards_plan()); detail: shards per node; checked only where Citus is installed');

-- Snapshots: one row per sample; counters are cumulative (as the statistics views give them).
CREATE TABLE storage.metrics (
    ts     timestamptz NOT NULL,
    metric text NOT NULL,
    labels jsonb NOT NULL DEFAULT '{}',
    value  double precision
) PARTITION BY RANGE (ts);
COMMENT ON TABLE storage.metrics IS
    'Metrics history written by storage.metrics_snapshot(): counters (cumulative, names ending _total) and gauges; partitioned by day, 14 days kept.';

-- The latest snapshot, for the deltas of storage.health() (a few hundred rows, replaced each time).
CREATE TABLE storage._metrics_latest (
    ts     timestamptz NOT NULL,
    metric text NOT NULL,
    labels jsonb NOT NULL,
    value  double precision,
    PRIMARY KEY (metric, labels)
);
COMMENT ON TABLE storage._metrics_latest IS
    'Internal: the samples of the latest storage.metrics_snapshot(), which health() takes its rates against.';

-- The live samples: (metric, kind, help, labels, value). Statistics views only.
CREATE FUNCTION storage._metrics_collect()
RETURNS TABLE (metric text, kind text, help text, labels jsonb, value double precision)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET lock_timeout = '1s' AS $$
BEGIN
    RETURN QUERY
    SELECT 'pg_stat_database_' || c.k || '_total', 'counter', 'pg_stat_database.' || c.k,
           jsonb_build_object('datname', d.datname), c.v::double precision
      FROM pg_stat_database d
     CROSS JOIN LATERAL (VALUES ('xact_commit', d.xact_commit), ('xact_rollback', d.xact_rollback),
                                ('blks_hit', d.blks_hit), ('blks_read', d.blks_read),
                                ('tup_inserted', d.tup_inserted), ('tup_updated', d.tup_updated),
                                ('tup_deleted', d.tup_deleted), ('deadlocks', d.deadlocks),
                                ('temp_bytes', d.temp_bytes), ('conflicts', d.conflicts)) AS c(k, v)
     WHERE d.datname IS NOT NULL;
    RETURN QUERY
    SELECT 'pg_stat_activity_sessions', 'gauge', 'client sessions by database and state',
           jsonb_build_object('datname', coalesce(a.datname, ''), 'state', coalesce(a.state, 'unknown')), count(*)::double precision
      FROM pg_stat_activity a WHERE a.backend_type = 'client backend'
     GROUP BY a.datname, a.state;
    RETURN QUERY
    SELECT 'pg_settings_max_connections', 'gauge', 'max_connections', '{}'::jsonb,
           current_setting('max_connections')::double precision;
    RETURN QUERY
    SELECT 'pg_storage_ext_database_size_bytes', 'gauge', 'size of this database',
           jsonb_build_object('datname', current_database()), pg_database_size(current_database())::double precision;
    RETURN QUERY
    SELECT 'pg_storage_ext_host_cpu_seconds_total', 'counter', 'host CPU time since boot (mode busy or all)',
           jsonb_build_object('mode', m.mode), m.v
      FROM storage._host_cpu() h CROSS JOIN LATERAL (VALUES ('busy', h.busy_seconds), ('all', h.total_seconds)) AS m(mode, v);
    RETURN QUERY
    SELECT 'pg_storage_ext_disk_bytes', 'gauge', 'the data directory''s file system (kind total or free)',
           jsonb_build_object('kind', m.kind), m.v::double precision
      FROM storage._data_disk() d CROSS JOIN LATERAL (VALUES ('total', d.total_bytes), ('free', d.free_bytes)) AS m(kind, v);
    RETURN QUERY
    SELECT 'pg_storage_ext_replication_lag_seconds', 'gauge', 'replay lag of each standby (on a standby: its own, from the replayed heartbeat)',
           jsonb_build_object('application_name', coalesce(r.application_name, '')),
           coalesce(extract(epoch FROM r.replay_lag), 0)::double precision
      FROM pg_stat_replication r;
    IF pg_is_in_recovery() THEN
        RETURN QUERY
        SELECT 'pg_storage_ext_replication_lag_seconds', 'gauge', 'replay lag of each standby (on a standby: its own, from the replayed heartbeat)',
               '{"application_name": "self"}'::jsonb,
               -- from the replayed heartbeat; NaN, not 0, when nothing says how far behind it is
               coalesce((SELECT extract(epoch FROM r.replay_lag)::double precision FROM storage.replication_status() r), 'NaN');
    END IF;
    -- checkpoints, WAL, archiving and the xmin horizon (the checks of the same names take their
    -- rates against these)
    RETURN QUERY
    SELECT 'pg_stat_checkpointer_' || c.k || '_total', 'counter', 'pg_stat_checkpointer.' || c.k, '{}'::jsonb, c.v::double precision
      FROM pg_stat_checkpointer k
     CROSS JOIN LATERAL (VALUES ('num_timed', k.num_timed), ('num_requested', k.num_requested),
                                ('restartpoints_timed', k.restartpoints_timed), ('restartpoints_req', k.restartpoints_req),
                                ('buffers_written', k.buffers_written)) AS c(k, v);
    RETURN QUERY
    SELECT 'pg_stat_wal_bytes_total', 'counter', 'pg_stat_wal.wal_bytes: bytes of WAL written', '{}'::jsonb, w.wal_bytes::double precision
      FROM pg_stat_wal w;
    RETURN QUERY
    SELECT 'pg_stat_archiver_' || c.k || '_total', 'counter', 'pg_stat_archiver.' || c.k, '{}'::jsonb, c.v::double precision
      FROM pg_stat_archiver a CROSS JOIN LATERAL (VALUES ('archived_count', a.archived_count), ('failed_count', a.failed_count)) AS c(k, v);
    RETURN QUERY
    SELECT 'pg_storage_ext_xmin_horizon_age', 'gauge', 'transactions since the oldest xmin each kind of holder keeps (session, replication slot, prepared transaction, standby)',
           jsonb_build_object('kind', k.kind), coalesce(max(x.xmin_age), 0)::double precision
      FROM (VALUES ('session'), ('replication slot'), ('prepared transaction'), ('standby')) AS k(kind)
      LEFT JOIN storage._xmin_holders() x ON x.kind = k.kind
     GROUP BY k.kind;
    -- the extension's own figures, for roles that may read them (audit_reader for the audit ones)
    BEGIN
        -- writes of each audited table (its partitions included) and rows written to the audit log
        RETURN QUERY
        SELECT 'pg_storage_ext_audited_table_writes_total', 'counter', 'rows inserted, updated and deleted in each audited table',
               jsonb_build_object('table', t.table_name::text),
               sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del)::double precision
          FROM audit._tracked t
          JOIN pg_stat_all_tables s ON s.relid = t.table_name OR s.relid IN (SELECT x.relid FROM pg_partition_tree(t.table_name) x)
         GROUP BY t.table_name;
    EXCEPTION WHEN insufficient_privilege OR lock_not_available THEN NULL;   -- a held table: skipped this time
    END;
    BEGIN
        -- the change feeds' lags
        RETURN QUERY
        SELECT x.metric, 'gauge', x.help, jsonb_build_object('feed', f.name), x.v
          FROM audit._feed_status() f
         CROSS JOIN LATERAL (VALUES
            ('pg_storage_ext_audit_feed_lag_seconds', 'seconds since each change feed last caught up, while changes wait for it', f.lag_seconds),
            ('pg_storage_ext_audit_feed_broken', 'whether each change feed is broken (1: it lagged past pg_storage_ext.audit_feed_max_lag)',
             CASE WHEN f.broken THEN 1 ELSE 0 END::double precision)) AS x(metric, help, v);
    EXCEPTION WHEN insufficient_privilege OR lock_not_available THEN NULL;   -- not a monitoring role
    END;
    RETURN QUERY
    SELECT 'pg_storage_ext_audit_log_rows_total', 'counter', 'rows written to audit.log', '{}'::jsonb,
           coalesce(sum(s.n_tup_ins), 0)::double precision
      FROM pg_stat_all_tables s WHERE s.relid IN (SELECT x.relid FROM pg_partition_tree('audit._log_row') x);
    BEGIN
        RETURN QUERY
        SELECT 'pg_storage_ext_partitions', 'gauge', 'children of each registered parent',
               jsonb_build_object('parent', c.parent::text), count(i.inhrelid)::double precision
          FROM storage.partition_config c LEFT JOIN pg_inherits i ON i.inhparent = c.parent
         GROUP BY c.parent;
    EXCEPTION WHEN insufficient_privilege OR lock_not_available THEN NULL;   -- a held table: skipped this time
    END;
    -- slow-moving figures health() reads from the latest snapshot instead of per object: the
    -- five most used sequences, and what maintenance owes each registered parent
    RETURN QUERY
    SELECT 'pg_storage_ext_sequence_used_percent', 'gauge', 'share of its range the most used sequences have consumed',
           jsonb_build_object('sequence', format('%I.%I', q.schemaname, q.sequencename)), q.pct::double precision
      FROM (SELECT sq.schemaname, sq.sequencename,
                   100.0 * (sq.last_value - sq.min_value) / nullif(sq.max_value - sq.min_value, 0) AS pct
              FROM pg_sequences sq WHERE sq.last_value IS NOT NULL AND NOT sq.cycle
             ORDER BY 3 DESC NULLS LAST LIMIT 5) q
     WHERE q.pct IS NOT NULL;
    BEGIN
        RETURN QUERY
        SELECT x.metric, 'gauge', x.help, jsonb_build_object('parent', w.parent::text), x.v
          FROM (SELECT pc.parent, storage._partition_work(pc) AS w FROM storage.partition_config pc) w
         CROSS JOIN LATERAL (VALUES
            ('pg_storage_ext_partition_premake_missing', 'children maintenance still has to premake, per registered parent',
             (w.w).to_make::double precision),
            ('pg_storage_ext_partition_default_rows', 'whether rows wait in the default partition (1) or not (0), per registered parent',
             CASE WHEN (w.w).default_rows THEN 1 ELSE 0 END::double precision)) AS x(metric, help, v);
    EXCEPTION WHEN insufficient_privilege OR lock_not_available THEN NULL;   -- a held table: skipped this time
    END;
    BEGIN
        RETURN QUERY
        SELECT 'pg_storage_ext_matview_stale_seconds', 'gauge', 'how long each registered matview has been stale',
               jsonb_build_object('view', m.view::text), extract(epoch FROM m.stale_for)::double precision
          FROM storage.matview_status m;
    EXCEPTION WHEN insufficient_privilege OR lock_not_available THEN NULL;   -- a held table: skipped this time
    END;
END $$;
COMMENT ON FUNCTION storage._metrics_collect() IS
    'Internal: the live metric samples (statistics views, host CPU and disk, the extension''s audit, partitions and matviews); a figure whose table a long transaction holds is left out (lock waits at most 1 s).';

-- What holds back VACUUM's horizon: every session, replication slot, prepared transaction and
-- standby (hot_standby_feedback) keeping an old xmin, with the command that releases it. Names
-- and pids, never query text (the health check's detail reaches the HTTP endpoint).
CREATE FUNCTION storage._xmin_holders()
RETURNS TABLE (kind text, holder text, xmin_age bigint, since timestamptz, release text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'session', format('pid %s (%s, %s)', a.pid, coalesce(a.usename::text, a.backend_type), coalesce(a.state, 'no state')),
           greatest(age(a.backend_xid), age(a.backend_xmin))::bigint, a.xact_start,
           format('SELECT pg_terminate_backend(%s)', a.pid)
      FROM pg_stat_activity a
     WHERE (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL) AND a.pid <> pg_backend_pid()
    UNION ALL
    SELECT 'replication slot', format('replication slot %L (%s%s)', s.slot_name, s.slot_type, CASE WHEN s.active THEN ', active' ELSE ', inactive' END),
           greatest(age(s.xmin), age(s.catalog_xmin))::bigint, NULL::timestamptz,
           format('SELECT pg_drop_replication_slot(%L)', s.slot_name)
      FROM pg_replication_slots s WHERE s.xmin IS NOT NULL OR s.catalog_xmin IS NOT NULL
    UNION ALL
    SELECT 'prepared transaction', format('prepared transaction %L (%s)', p.gid, p.owner), age(p.transaction)::bigint, p.prepared,
           format('ROLLBACK PREPARED %L', p.gid)
      FROM pg_prepared_xacts p
    UNION ALL
    SELECT 'standby', format('standby %s (hot_standby_feedback)', coalesce(quote_literal(nullif(r.application_name, '')), 'pid ' || r.pid)),
           age(r.backend_xmin)::bigint, r.backend_start,
           'end the long queries on that standby (or set hot_standby_feedback = off there)'
      FROM pg_stat_replication r WHERE r.backend_xmin IS NOT NULL
$$;
COMMENT ON FUNCTION storage._xmin_holders() IS
    'Internal: every session, replication slot, prepared transaction and standby keeping an xmin back, its age in transactions, since when, and the command that releases it.';

-- The latest snapshot's value of a metric with the given labels, and when it was taken.
CREATE FUNCTION storage._metrics_last(name text, lbl jsonb DEFAULT '{}', OUT ts timestamptz, OUT value double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT m.ts, m.value FROM storage._metrics_latest m
     WHERE m.metric = name AND m.labels = lbl AND m.ts > now() - interval '1 day'
$$;
COMMENT ON FUNCTION storage._metrics_last(text, jsonb) IS
    'Internal: a metric''s value in the latest snapshot of the last day (NULL without one).';

-- Growth of a counter since the snapshot; a counter below the snapshot was reset and counts from 0.
CREATE FUNCTION storage._metrics_delta(now_value double precision, then_value double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN then_value IS NULL OR now_value < then_value THEN now_value ELSE now_value - then_value END
$$;
COMMENT ON FUNCTION storage._metrics_delta(double precision, double precision) IS
    'Internal: how much a counter grew since a snapshot (the value itself after a statistics reset or without a snapshot).';

CREATE FUNCTION storage._ensure_metrics() RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT storage._ensure_daily('storage.metrics')
$$;

-- A history table of the health capability (storage.metrics, storage.query_stats) registered
-- with the partition capability at its first write: UTC days, 2 ahead, 14 days kept.
CREATE FUNCTION storage._ensure_daily(parent regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM storage.partition_config c WHERE c.parent = _ensure_daily.parent) THEN
        PERFORM pg_advisory_xact_lock(hashtext('pg_storage_ext.' || parent::text));
        IF NOT EXISTS (SELECT FROM storage.partition_config c WHERE c.parent = _ensure_daily.parent) THEN
            PERFORM storage.create_partitions(parent, '1 day', premake => 2, retention => '14 days',
                                              default_partition => true);
        END IF;
    END IF;
END $$;
COMMENT ON FUNCTION storage._ensure_daily(regclass) IS
    'Internal: registers a history table of the health capability with the partition capability (UTC days, 2 ahead, 14 days kept) at its first write.';
COMMENT ON FUNCTION storage._ensure_metrics() IS
    'Internal: registers storage.metrics with the partition capability (UTC days, 2 ahead, 14 days kept) at the first snapshot.';

CREATE FUNCTION storage.metrics_snapshot() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '1s' AS $$
DECLARE
    n bigint;
BEGIN
    -- it writes storage.metrics, which a standby receives from its primary (storage.health() and
    -- storage.metrics_prometheus() answer there)
    IF storage._require_primary('storage.metrics_snapshot', true) THEN
        RETURN NULL;
    END IF;
    PERFORM storage._ensure_metrics();
    -- one statement: the statuses are taken against the previous snapshot, then its samples
    -- become the latest
    WITH ins AS (
        INSERT INTO storage.metrics (ts, metric, labels, value)
        SELECT now(), c.metric, c.labels, c.value FROM storage._metrics_collect() c
        UNION ALL
        SELECT now(), c.metric, c.labels, c.value FROM storage._custom_metrics_collect() c
        UNION ALL
        SELECT now(), 'pg_storage_ext_health_status', jsonb_build_object('check', h.check_name),
               CASE h.status WHEN 'ok' THEN 0 WHEN 'warning' THEN 1 WHEN 'critical' THEN 2 END
          FROM storage._health(false) h
        UNION ALL
        -- per object, so kept here for storage.health(), not collected at every scrape
        SELECT now(), 'pg_storage_ext_maintenance_overdue', jsonb_build_object('table', o.rel::text, 'what', o.what), 1
          FROM storage._maintenance_overdue() o
        RETURNING ts, metric, labels, value)
    INSERT INTO storage._metrics_latest (ts, metric, labels, value)
    SELECT DISTINCT ON (i.metric, i.labels) i.ts, i.metric, i.labels, i.value FROM ins i
    ON CONFLICT (metric, labels) DO UPDATE SET ts = excluded.ts, value = excluded.value;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM storage._metrics_latest m WHERE m.ts < now();
    -- the top queries' deltas (where pg_stat_statements is installed)
    n := n + storage._query_stats_snapshot();
    RETURN n;
END $$;
COMMENT ON FUNCTION storage.metrics_snapshot() IS
    'Samples the statistics views, host CPU and disk, and the extension''s own figures into storage.metrics (with the health statuses); rates in storage.health() are taken since the latest snapshot. Returns the samples written.';

-- status of a value against its levels; lower_is_worse for ratios where less is bad
CREATE FUNCTION storage._health_status(value numeric, warn numeric, critical numeric, lower_is_worse boolean) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN value IS NULL THEN 'unknown'
                WHEN lower_is_worse AND value <= critical THEN 'critical'
                WHEN lower_is_worse AND value <= warn THEN 'warning'
                WHEN lower_is_worse THEN 'ok'
                WHEN value >= critical THEN 'critical'
                WHEN value >= warn THEN 'warning'
                ELSE 'ok' END
$$;
COMMENT ON FUNCTION storage._health_status(numeric, numeric, numeric, boolean) IS
    'Internal: ok, warning, critical or unknown (no value) of a check''s value against its thresholds.';

-- The checks; with_cpu_sample: without a snapshot, sample /proc/stat over 100 ms.
CREATE FUNCTION storage._health(with_cpu_sample boolean)
RETURNS TABLE (check_name text, status text, value numeric, warn numeric, critical numeric, detail text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
    v numeric;
    d text;
    lower_is_worse boolean;
    snap timestamptz := (SELECT max(m.ts) FROM storage._metrics_latest m WHERE m.ts > now() - interval '1 day');
    -- a snapshot of the last 5 minutes stands in for the per-object checks
    fresh boolean := snap > now() - interval '5 minutes';
    since text;
    n1 double precision;
    n2 double precision;
    p1 double precision;
    p2 double precision;
    timeout text;
    snap_at timestamptz;
BEGIN
    since := CASE WHEN snap IS NULL THEN 'since the statistics were reset (no snapshot in the last day: schedule storage.metrics_snapshot())'
                  ELSE format('since the snapshot of %s', to_char(snap, 'YYYY-MM-DD HH24:MI:SS TZ')) END;
    FOR t IN SELECT * FROM storage.health_thresholds h
              WHERE h.enabled
                -- cluster checks only where Citus is installed in this database
                AND (h.check_name NOT LIKE 'citus\_%' OR to_regclass('pg_catalog.pg_dist_node') IS NOT NULL)
              ORDER BY h.check_name LOOP
        v := NULL; d := NULL; lower_is_worse := t.check_name IN ('cache_hit_ratio', 'disk_free');
        BEGIN
            CASE t.check_name
            WHEN 'long_running_queries' THEN
                -- who and for how long, never the statement's text: the detail reaches the
                -- HTTP endpoint's report, which anyone who can open its port reads
                SELECT coalesce(max(extract(epoch FROM now() - x.query_start)), 0),
                       coalesce(max(format('pid %s (%s): %s for %s', x.pid, x.usename, x.state, date_trunc('second', now() - x.query_start)))
                       FILTER (WHERE x.query_start = (SELECT min(y.query_start) FROM pg_stat_activity y
                                                       WHERE y.state = 'active' AND y.backend_type = 'client backend' AND y.pid <> pg_backend_pid())), 'none')
                  INTO v, d
                  FROM pg_stat_activity x
                 WHERE x.state = 'active' AND x.backend_type = 'client backend' AND x.pid <> pg_backend_pid();
            WHEN 'idle_in_transaction' THEN
                SELECT coalesce(max(extract(epoch FROM now() - x.state_change)), 0),
                       coalesce(string_agg(DISTINCT format('pid %s (%s)', x.pid, x.usename), ', '), 'none')
                  INTO v, d
                  FROM pg_stat_activity x WHERE x.state IN ('idle in transaction', 'idle in transaction (aborted)');
            WHEN 'connection_utilisation' THEN
                -- of the slots ordinary roles may use: sessions in the reserved slots count as
                -- those slots being full, never as more than 100 %
                SELECT round(100.0 * least(count(*), a.slots) / a.slots, 1)
                  INTO v
                  FROM pg_stat_activity x,
                       (SELECT greatest(1, current_setting('max_connections')::int
                                           - current_setting('superuser_reserved_connections')::int
                                           - current_setting('reserved_connections')::int) AS slots) AS a
                 WHERE x.backend_type = 'client backend' GROUP BY a.slots;
                v := coalesce(v, 0);
                SELECT format('%s of %s connections; worst limit: %s', (SELECT count(*) FROM pg_stat_activity x WHERE x.backend_type = 'client backend'),
                              current_setting('max_connections'),
                              coalesce((SELECT format('%s %s uses %s of its CONNECTION LIMIT %s', w.kind, w.name, w.used, w.lim)
                                          FROM (SELECT 'role' AS kind, r.rolname::text AS name, count(x.pid) AS used, r.rolconnlimit AS lim
                                                  FROM pg_roles r JOIN pg_stat_activity x ON x.usesysid = r.oid AND x.backend_type = 'client backend'
                                                 WHERE r.rolconnlimit > 0 GROUP BY r.rolname, r.rolconnlimit
                                                UNION ALL
                                                SELECT 'database', db.datname::text, count(x.pid), db.datconnlimit
                                                  FROM pg_database db JOIN pg_stat_activity x ON x.datid = db.oid AND x.backend_type = 'client backend'
                                                 WHERE db.datconnlimit > 0 GROUP BY db.datname, db.datconnlimit) w
                                         ORDER BY w.used::numeric / w.lim DESC LIMIT 1), 'no role or database has a limit'))
                  INTO d;
            WHEN 'cache_hit_ratio' THEN
                SELECT storage._metrics_delta(s.blks_hit, (storage._metrics_last('pg_stat_database_blks_hit_total', jsonb_build_object('datname', s.datname))).value),
                       storage._metrics_delta(s.blks_read, (storage._metrics_last('pg_stat_database_blks_read_total', jsonb_build_object('datname', s.datname))).value)
                  INTO n1, n2 FROM pg_stat_database s WHERE s.datname = current_database();
                v := CASE WHEN n1 + n2 > 0 THEN round((100 * n1 / (n1 + n2))::numeric, 2) WHEN n1 IS NOT NULL THEN 100 END;
                d := format('%s hits, %s reads %s', n1, n2, since);
            WHEN 'error_rate' THEN
                SELECT storage._metrics_delta(s.xact_commit, (storage._metrics_last('pg_stat_database_xact_commit_total', jsonb_build_object('datname', s.datname))).value),
                       storage._metrics_delta(s.xact_rollback, (storage._metrics_last('pg_stat_database_xact_rollback_total', jsonb_build_object('datname', s.datname))).value)
                  INTO n1, n2 FROM pg_stat_database s WHERE s.datname = current_database();
                v := CASE WHEN n1 + n2 > 0 THEN round((100 * n2 / (n1 + n2))::numeric, 2) WHEN n1 IS NOT NULL THEN 0 END;
                d := format('%s rollbacks of %s transactions %s', n2, n1 + n2, since);
            WHEN 'cpu' THEN
                SELECT h.busy_seconds, h.total_seconds INTO n1, n2 FROM storage._host_cpu() h;
                IF n2 IS NULL THEN
                    d := 'not measured: /proc/stat is not readable (not Linux)';
                ELSE
                    p1 := (storage._metrics_last('pg_storage_ext_host_cpu_seconds_total', '{"mode": "busy"}')).value;
                    p2 := (storage._metrics_last('pg_storage_ext_host_cpu_seconds_total', '{"mode": "all"}')).value;
                    IF (p1 IS NULL OR n2 <= p2) AND with_cpu_sample THEN
                        p1 := n1; p2 := n2;
                        PERFORM pg_sleep(0.1);
                        SELECT h.busy_seconds, h.total_seconds INTO n1, n2 FROM storage._host_cpu() h;
                        d := 'over the last 100 ms (no snapshot)';
                    ELSE
                        d := since;
                    END IF;
                    IF p1 IS NOT NULL AND n2 > p2 THEN
                        v := round((100 * (n1 - p1) / (n2 - p2))::numeric, 1);
                    ELSE
                        d := 'no CPU time passed since the snapshot';
                    END IF;
                END IF;
            WHEN 'disk_free' THEN
                SELECT round(100.0 * x.free_bytes / nullif(x.total_bytes, 0), 1),
                       format('%s free of %s', pg_size_pretty(x.free_bytes), pg_size_pretty(x.total_bytes))
                  INTO v, d FROM storage._data_disk() x;
                d := coalesce(d, 'not measured: the data directory''s file system could not be read');
            WHEN 'blocked_backends' THEN
                SELECT count(*), coalesce(string_agg(format('pid %s waits on %s (blocked by %s)', x.pid, x.wait_event,
                                                           array_to_string(pg_blocking_pids(x.pid), ',')), '; '), 'none')
                  INTO v, d FROM pg_stat_activity x WHERE x.wait_event_type = 'Lock';
            WHEN 'deadlocks' THEN
                SELECT storage._metrics_delta(s.deadlocks, (storage._metrics_last('pg_stat_database_deadlocks_total', jsonb_build_object('datname', s.datname))).value)
                  INTO n1 FROM pg_stat_database s WHERE s.datname = current_database();
                v := n1; d := since;
            WHEN 'xid_wraparound' THEN
                SELECT round(100.0 * age(db.datfrozenxid) / 2147483648, 2), format('oldest unfrozen database: %s (age %s)', db.datname, age(db.datfrozenxid))
                  INTO v, d FROM pg_database db ORDER BY age(db.datfrozenxid) DESC LIMIT 1;
            WHEN 'sequence_exhaustion' THEN
                IF fresh THEN
                    -- read at the snapshot (reading every sequence is per object)
                    SELECT round(m.value::numeric, 2), format('%s at %s %% %s', m.labels->>'sequence', round(m.value::numeric, 2), since)
                      INTO v, d
                      FROM storage._metrics_latest m WHERE m.metric = 'pg_storage_ext_sequence_used_percent'
                     ORDER BY m.value DESC LIMIT 1;
                ELSE
                    SELECT coalesce(round(100.0 * (s.last_value - s.min_value) / nullif(s.max_value - s.min_value, 0), 2), 0),
                           coalesce(format('%I.%I at %s of %s', s.schemaname, s.sequencename, s.last_value, s.max_value), 'no sequence used yet')
                      INTO v, d
                      FROM pg_sequences s WHERE s.last_value IS NOT NULL AND NOT s.cycle
                     ORDER BY (s.last_value - s.min_value)::numeric / nullif(s.max_value - s.min_value, 0) DESC NULLS LAST LIMIT 1;
                END IF;
                v := coalesce(v, 0); d := coalesce(d, 'no sequence used yet (or none readable)');
            WHEN 'invalid_indexes' THEN
                SELECT count(*), coalesce(string_agg(x.indexrelid::regclass::text, ', '), 'none')
                  INTO v, d FROM pg_index x WHERE NOT x.indisvalid;
            WHEN 'replication_lag' THEN
                IF pg_is_in_recovery() THEN
                    -- from the replayed heartbeat (storage.replication_status): an idle primary is
                    -- no lag, a lost WAL receiver is never a false 0
                    SELECT extract(epoch FROM r.replay_lag), format('standby, %s: %s', r.state, r.detail)
                      INTO v, d FROM storage.replication_status() r;
                ELSE
                    SELECT coalesce(max(extract(epoch FROM r.replay_lag)), 0),
                           CASE WHEN count(*) = 0 THEN 'no standbys' ELSE format('%s standbys', count(*)) END
                      INTO v, d FROM pg_stat_replication r;
                END IF;
            WHEN 'ssl' THEN
                SELECT s.value::numeric INTO v FROM storage.ssl_status() s WHERE s.setting = 'connections without SSL';
                -- the sessions by pid and role, never their client addresses: this detail is
                -- served by the unauthenticated endpoint (storage.ssl_status() has them)
                SELECT coalesce(nullif(string_agg(format('pid %s (%s)', a.pid, a.usename), ', ' ORDER BY a.pid), ''), 'none')
                  INTO d
                  FROM pg_stat_activity a JOIN pg_stat_ssl l ON l.pid = a.pid
                 WHERE a.backend_type = 'client backend' AND a.client_addr IS NOT NULL AND NOT l.ssl;
            WHEN 'audit_coverage' THEN
                SELECT count(*) FILTER (WHERE NOT x.capture_ok),
                       coalesce(string_agg(format('%s: %s', x.table_name, x.problem), '; ') FILTER (WHERE NOT x.capture_ok),
                                format('%s audited tables, capture working', count(*)))
                  INTO v, d FROM audit.coverage x;
            WHEN 'audit_feed_lag' THEN
                SELECT coalesce(max(x.lag_percent), 0),
                       coalesce(string_agg(format('%s: %s s behind%s', x.name, round(x.lag_seconds::numeric),
                                                  CASE WHEN x.broken THEN ' (broken: recreate it)' ELSE '' END), '; '
                                           ORDER BY x.lag_percent DESC, x.name), 'no change feeds')
                  INTO v, d FROM audit._feed_status() x;
            WHEN 'missing_audit_logs' THEN
                IF snap IS NULL THEN
                    d := 'not measured: no snapshot in the last day (schedule storage.metrics_snapshot())';
                ELSE
                    SELECT count(*), coalesce(string_agg(w.table_name::text, ', '), 'none')
                      INTO v, d
                      FROM (SELECT tr.table_name,
                                   storage._metrics_delta(sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del),
                                                          (storage._metrics_last('pg_storage_ext_audited_table_writes_total',
                                                                                 jsonb_build_object('table', tr.table_name::text))).value) AS writes
                              FROM audit._tracked tr
                              JOIN pg_stat_all_tables s ON s.relid = tr.table_name OR s.relid IN (SELECT x.relid FROM pg_partition_tree(tr.table_name) x)
                             GROUP BY tr.table_name) w
                     WHERE w.writes > 0
                       AND NOT EXISTS (SELECT FROM audit._log_statement l WHERE l.table_oid = w.table_name AND l.ts >= snap AND l.op <> 'DDL');
                    d := d || ' ' || since;
                END IF;
            WHEN 'partition_premake' THEN
                IF fresh AND EXISTS (SELECT FROM storage._metrics_latest m WHERE m.metric = 'pg_storage_ext_partition_default_rows') THEN
                    -- found at the snapshot (maintenance's own reckoning is per parent)
                    SELECT count(*), coalesce(string_agg(format('%s (%s)', x.parent,
                                                                concat_ws(', ', CASE WHEN x.to_make > 0 THEN x.to_make || ' children to premake' END,
                                                                          CASE WHEN x.dflt > 0 THEN 'rows in the default partition' END)), '; ' ORDER BY x.parent) || ' ' || since, 'none')
                      INTO v, d
                      FROM (SELECT m.labels->>'parent' AS parent,
                                   max(m.value) FILTER (WHERE m.metric = 'pg_storage_ext_partition_premake_missing') AS to_make,
                                   max(m.value) FILTER (WHERE m.metric = 'pg_storage_ext_partition_default_rows') AS dflt
                              FROM storage._metrics_latest m
                             WHERE m.metric IN ('pg_storage_ext_partition_premake_missing', 'pg_storage_ext_partition_default_rows')
                             GROUP BY 1) x
                     WHERE x.to_make > 0 OR x.dflt > 0;
                ELSE
                    SELECT count(*), coalesce(string_agg(format('%s (%s)', c.parent,
                                                                concat_ws(', ', CASE WHEN (w).to_make > 0 THEN (w).to_make || ' children to premake' END,
                                                                          CASE WHEN (w).default_rows THEN 'rows in the default partition' END)), '; '), 'none')
                      INTO v, d
                      FROM (SELECT pc.parent, storage._partition_work(pc) AS w FROM storage.partition_config pc) c
                     WHERE (c.w).to_make > 0 OR (c.w).default_rows;
                END IF;
            WHEN 'matview_freshness' THEN
                SELECT count(*), coalesce(string_agg(format('%s (%s)', m.view,
                                                            -- not the error's text (it may quote the view's data):
                                                            -- storage.matview_status has it
                                                            CASE WHEN m.last_outcome LIKE 'failed%'
                                                                 THEN 'last refresh failed (see storage.matview_status)'
                                                                 ELSE 'stale for ' || m.stale_for END), '; '), 'none')
                  INTO v, d
                  FROM storage.matview_status m
                 WHERE m.stale_for > 2 * m.refresh_every
                    -- outcomes: refreshed, skipped: ..., failed: <message>
                    OR m.last_outcome LIKE 'failed%';
            WHEN 'cron_job_failures' THEN
                IF to_regclass('cron.job_run_details') IS NULL THEN
                    v := 0; d := 'pg_cron is not installed in this database';
                ELSE
                    EXECUTE $q$SELECT count(*), coalesce(string_agg(DISTINCT j.jobname, ', '), 'none')
                                 FROM cron.job_run_details r JOIN cron.job j ON j.jobid = r.jobid
                                WHERE j.jobname LIKE 'pg_storage_ext.%' AND r.status = 'failed'
                                  AND r.start_time > now() - interval '1 hour'
                                  -- still failing: a job that succeeded since (after a restart,
                                  -- which pg_cron records as a failure) is fine again
                                  AND NOT EXISTS (SELECT FROM cron.job_run_details s
                                                   WHERE s.jobid = r.jobid AND s.status = 'succeeded'
                                                     AND s.start_time > r.start_time)$q$ INTO v, d;
                END IF;
            WHEN 'maintenance_overdue' THEN
                IF fresh THEN
                    -- read at the snapshot (every table's statistics is per object)
                    SELECT count(*), coalesce(string_agg(format('%s (%s)', m.labels->>'table', m.labels->>'what'), ', '
                                                         ORDER BY m.labels->>'table'), 'none') || ' ' || since
                      INTO v, d
                      FROM storage._metrics_latest m WHERE m.metric = 'pg_storage_ext_maintenance_overdue';
                ELSE
                    SELECT count(*), coalesce(string_agg(format('%s (%s)', o.rel, o.what), ', '), 'none')
                      INTO v, d FROM storage._maintenance_overdue() o;
                END IF;
            WHEN 'maintenance_failures' THEN
                SELECT count(*), coalesce(string_agg(format('%s: %s', l.command, l.outcome), '; ' ORDER BY l.id), 'none')
                  INTO v, d
                  FROM storage.maintenance_log l
                 WHERE l.outcome LIKE 'failed%' AND l.finished > now() - interval '1 day';
            WHEN 'xmin_horizon' THEN
                SELECT x.xmin_age,
                       format('%s holds the oldest xmin (%s transactions%s): %s', x.holder, x.xmin_age,
                              CASE WHEN x.since IS NOT NULL THEN ', since ' || to_char(x.since, 'YYYY-MM-DD HH24:MI:SS TZ') ELSE '' END, x.release)
                  INTO v, d
                  FROM storage._xmin_holders() x ORDER BY x.xmin_age DESC NULLS LAST LIMIT 1;
                v := coalesce(v, 0); d := coalesce(d, 'nothing holds an xmin back');
            WHEN 'archiver' THEN
                IF current_setting('archive_mode') = 'off' THEN
                    v := 0; d := 'archive_mode is off';
                ELSE
                    SELECT count(*) INTO n1 FROM pg_ls_archive_statusdir() f WHERE f.name LIKE '%.ready';
                    SELECT CASE WHEN a.last_failed_time > coalesce(a.last_archived_time, '-infinity') THEN greatest(n1, 1) ELSE 0 END,
                           CASE WHEN a.last_failed_time > coalesce(a.last_archived_time, '-infinity')
                                THEN format('archive_command is failing: last failure %s at %s, %s failures since %s, last success %s; %s segments wait (the server log has archive_command''s error)',
                                            a.last_failed_wal, to_char(a.last_failed_time, 'YYYY-MM-DD HH24:MI:SS TZ'), a.failed_count,
                                            to_char(a.stats_reset, 'YYYY-MM-DD HH24:MI:SS TZ'),
                                            coalesce(a.last_archived_wal || ' at ' || to_char(a.last_archived_time, 'YYYY-MM-DD HH24:MI:SS TZ'), 'never'), n1)
                                ELSE format('archiving works: %s segments archived, the last %s; %s wait', a.archived_count,
                                            coalesce(a.last_archived_wal || ' at ' || to_char(a.last_archived_time, 'YYYY-MM-DD HH24:MI:SS TZ'), 'none yet'), n1) END
                      INTO v, d FROM pg_stat_archiver a;
                END IF;
            WHEN 'checkpoints' THEN
                -- on a standby, restartpoints
                SELECT storage._metrics_delta(c.t, (storage._metrics_last('pg_stat_checkpointer_' || c.tn || '_total')).value),
                       storage._metrics_delta(c.r, (storage._metrics_last('pg_stat_checkpointer_' || c.rn || '_total')).value)
                  INTO n1, n2
                  FROM (SELECT CASE WHEN pg_is_in_recovery() THEN k.restartpoints_timed ELSE k.num_timed END AS t,
                               CASE WHEN pg_is_in_recovery() THEN k.restartpoints_req ELSE k.num_requested END AS r,
                               CASE WHEN pg_is_in_recovery() THEN 'restartpoints_timed' ELSE 'num_timed' END AS tn,
                               CASE WHEN pg_is_in_recovery() THEN 'restartpoints_req' ELSE 'num_requested' END AS rn
                          FROM pg_stat_checkpointer k) c;
                v := CASE WHEN n1 + n2 >= 4 THEN round((100 * n2 / (n1 + n2))::numeric, 1) ELSE 0 END;
                d := format('%s of %s %s requested rather than timed %s%s; max_wal_size %s, checkpoint_timeout %s',
                            n2, n1 + n2, CASE WHEN pg_is_in_recovery() THEN 'restartpoints' ELSE 'checkpoints' END, since,
                            CASE WHEN n1 + n2 < 4 THEN ' (too few to judge)'
                                 WHEN v >= coalesce(t.warn, 'Infinity') THEN ': WAL fills max_wal_size before checkpoint_timeout (or CHECKPOINT is run by hand): raise max_wal_size'
                                 ELSE '' END,
                            current_setting('max_wal_size'), current_setting('checkpoint_timeout'));
            WHEN 'wal_rate' THEN
                SELECT w.wal_bytes, coalesce((storage._metrics_last('pg_stat_wal_bytes_total')).ts, w.stats_reset)
                  INTO n1, snap_at FROM pg_stat_wal w;
                n2 := storage._metrics_delta(n1, (storage._metrics_last('pg_stat_wal_bytes_total')).value);
                IF extract(epoch FROM now() - snap_at) > 0 THEN
                    v := round((n2 / extract(epoch FROM now() - snap_at))::numeric);
                    d := format('%s/s of WAL %s: one checkpoint_timeout (%s) at this rate writes %s%% of max_wal_size (%s)',
                                pg_size_pretty(v), since, current_setting('checkpoint_timeout'),
                                round(100 * v * extract(epoch FROM current_setting('checkpoint_timeout')::interval)
                                      / pg_size_bytes(current_setting('max_wal_size')), 1),
                                current_setting('max_wal_size'));
                ELSE
                    v := 0; d := 'no time passed since the snapshot';
                END IF;
            WHEN 'citus_node_health' THEN
                -- every node connects to every node; an unreachable node fails in 5 s, not
                -- Citus's default 30 s (for this check only: put back after it, or by the
                -- sub-block's rollback when it fails)
                timeout := current_setting('citus.node_connection_timeout');
                PERFORM set_config('citus.node_connection_timeout', '5000', true);
                EXECUTE $q$SELECT count(*) FILTER (WHERE h.result IS NOT TRUE)
                                  + (SELECT count(*) FROM pg_dist_node n WHERE NOT n.isactive AND n.noderole = 'primary'),
                                  coalesce(string_agg(format('%s:%s cannot reach %s:%s', h.from_nodename, h.from_nodeport,
                                                             h.to_nodename, h.to_nodeport), '; ') FILTER (WHERE h.result IS NOT TRUE)
                                           || '; ', '')
                                  || coalesce((SELECT string_agg(format('%s:%s inactive', n.nodename, n.nodeport), '; ')
                                                 FROM pg_dist_node n WHERE NOT n.isactive AND n.noderole = 'primary') || '; ', '')
                                  || format('%s nodes, %s connections checked', (SELECT count(*) FROM pg_dist_node n WHERE n.noderole = 'primary'), count(*))
                             FROM citus_check_cluster_node_health() h$q$ INTO v, d;
                PERFORM set_config('citus.node_connection_timeout', timeout, true);
            WHEN 'citus_rebalance' THEN
                EXECUTE $q$SELECT (SELECT count(*) FROM get_rebalance_table_shards_plan()),
                                  coalesce(string_agg(format('%s:%s %s shards (%s)', s.nodename, s.nodeport, s.shards, pg_size_pretty(s.bytes)),
                                                      ', ' ORDER BY s.nodename, s.nodeport), 'no shards')
                             FROM (SELECT n.nodename, n.nodeport, count(c.shardid) AS shards, coalesce(sum(c.shard_size), 0) AS bytes
                                     FROM pg_dist_node n
                                     LEFT JOIN citus_shards c ON c.nodename = n.nodename AND c.nodeport = n.nodeport
                                    WHERE n.noderole = 'primary' AND n.isactive
                                    GROUP BY 1, 2) s$q$ INTO v, d;
                d := 'shards per node: ' || d;
            ELSE
                d := 'no such check';
            END CASE;
        EXCEPTION WHEN insufficient_privilege THEN
            v := NULL;
            -- the hint names what this role lacks, never what it has
            d := format('not measured: %s (%s)', SQLERRM, CASE
                WHEN NOT pg_has_role('pg_monitor', 'USAGE') THEN 'grant pg_monitor to this role'
                WHEN t.check_name IN ('audit_coverage', 'missing_audit_logs') AND NOT pg_has_role('audit_reader', 'USAGE')
                    THEN 'grant audit_reader to this role for the audit checks'
                ELSE 'it needs a privilege pg_monitor does not give: run it as the extension''s owner' END);
        WHEN OTHERS THEN
            v := NULL;
            d := format('not measured: %s (%s)', SQLERRM, SQLSTATE);
        END;
        check_name := t.check_name; value := v; warn := t.warn; critical := t.critical; detail := d;
        status := storage._health_status(v, t.warn, t.critical, lower_is_worse);
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION storage._health(boolean) IS
    'Internal: the checks of storage.health(); with_cpu_sample samples CPU over 100 ms when there is no usable snapshot.';

CREATE FUNCTION storage.health()
RETURNS TABLE (check_name text, status text, value numeric, warn numeric, critical numeric, detail text)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp SET lock_timeout = '1s' AS $$
    SELECT * FROM storage._health(true)
$$;
COMMENT ON FUNCTION storage.health() IS
    'One row per enabled check of storage.health_thresholds: status ok, warning, critical or unknown (with why in detail), the measured value and its thresholds. Catalog and statistics views only; rates since the latest storage.metrics_snapshot().';

CREATE FUNCTION storage.metrics_prometheus() RETURNS text
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp SET lock_timeout = '1s'
    -- (its escapes are written for this; a database may set it off)
    SET standard_conforming_strings = on AS $$
    WITH h AS (SELECT * FROM storage._health(false)), s AS (
        SELECT c.metric, c.kind, c.help, c.labels, c.value FROM storage._metrics_collect() c
        UNION ALL
        SELECT 'pg_storage_ext_health_status', 'gauge', 'health check status: 0 ok, 1 warning, 2 critical, NaN unknown',
               jsonb_build_object('check', h.check_name),
               CASE h.status WHEN 'ok' THEN 0 WHEN 'warning' THEN 1 WHEN 'critical' THEN 2 ELSE 'NaN'::float8 END
          FROM h
        UNION ALL
        SELECT 'pg_storage_ext_health_value', 'gauge', 'the value each health check measured',
               jsonb_build_object('check', h.check_name), coalesce(h.value::float8, 'NaN'::float8)
          FROM h
        UNION ALL
        SELECT q.metric, q.kind, q.help, q.labels, q.value FROM storage._query_metrics() q
        UNION ALL
        SELECT c.metric, c.kind, c.help, c.labels, c.value FROM storage._custom_metrics_collect() c
    ), f AS (
        SELECT s.metric, min(s.kind) AS kind, min(s.help) AS help,
               string_agg(s.metric || (SELECT storage._prometheus_labels(array_agg(l.key ORDER BY l.key), array_agg(l.value ORDER BY l.key))
                                           FROM jsonb_each_text(s.labels) l) || ' ' || storage._prometheus_value(s.value), E'\n'
                          ORDER BY s.labels::text) AS samples
          FROM s WHERE s.value IS NOT NULL GROUP BY s.metric
    )
    SELECT coalesce(string_agg(format(E'# HELP %s %s\n# TYPE %s %s\n%s\n', f.metric,
                                      replace(replace(f.help, '\', '\\'), E'\n', '\n'), f.metric, f.kind, f.samples), '' ORDER BY f.metric), '')
      FROM f
$$;
COMMENT ON FUNCTION storage.metrics_prometheus() IS
    'The live metrics and the health checks in the Prometheus text exposition format 0.0.4 (HELP and TYPE once per family, counters ending _total, pg_storage_ext_health_status{check="…"} 0 ok, 1 warning, 2 critical).';

COMMENT ON FUNCTION storage._host_cpu() IS
    'Internal: host CPU time since boot in seconds (busy, total) from /proc/stat; no row where it cannot be read.';
COMMENT ON FUNCTION storage._data_disk() IS
    'Internal: size and free bytes of the file system holding the data directory (statvfs); no row where it cannot be read.';
COMMENT ON FUNCTION storage._prometheus_labels(text[], text[]) IS
    'Internal: the escaped Prometheus label set {k="v",...} of label names and values.';
COMMENT ON FUNCTION storage._html_escape(text) IS
    'Internal: text with &, <, >, " and '' as HTML entities.';
COMMENT ON FUNCTION storage._svg_chart(text, text, double precision[], double precision[]) IS
    'Internal: a line chart of (epoch seconds, value) points as inline SVG.';
COMMENT ON FUNCTION storage._prometheus_value(double precision) IS
    'Internal: a sample value as the Prometheus text format writes it (NaN, +Inf, -Inf or the number).';

-- The history as chart series: one row per chart and snapshot (rates between snapshots; a
-- counter below the one before it was reset and counts from zero).
CREATE FUNCTION storage._metrics_series(since interval)
RETURNS TABLE (n integer, chart text, unit text, ts timestamptz, value double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH m AS (
        SELECT x.ts, x.metric, x.labels, x.value FROM storage.metrics x WHERE x.ts >= now() - since
    ), per_ts AS (
        SELECT m.ts,
               sum(m.value) FILTER (WHERE m.metric = 'pg_stat_activity_sessions') AS connections,
               sum(m.value) FILTER (WHERE m.metric = 'pg_stat_database_xact_commit_total' AND m.labels->>'datname' = current_database()) AS commits,
               sum(m.value) FILTER (WHERE m.metric = 'pg_stat_database_xact_rollback_total' AND m.labels->>'datname' = current_database()) AS rollbacks,
               sum(m.value) FILTER (WHERE m.metric = 'pg_stat_database_blks_hit_total' AND m.labels->>'datname' = current_database()) AS hits,
               sum(m.value) FILTER (WHERE m.metric = 'pg_stat_database_blks_read_total' AND m.labels->>'datname' = current_database()) AS reads,
               sum(m.value) FILTER (WHERE m.metric = 'pg_storage_ext_host_cpu_seconds_total' AND m.labels->>'mode' = 'busy') AS cpu_busy,
               sum(m.value) FILTER (WHERE m.metric = 'pg_storage_ext_host_cpu_seconds_total' AND m.labels->>'mode' = 'all') AS cpu_all,
               sum(m.value) FILTER (WHERE m.metric = 'pg_storage_ext_disk_bytes' AND m.labels->>'kind' = 'free') AS disk_free,
               sum(m.value) FILTER (WHERE m.metric = 'pg_storage_ext_disk_bytes' AND m.labels->>'kind' = 'total') AS disk_total,
               max(m.value) FILTER (WHERE m.metric = 'pg_storage_ext_replication_lag_seconds') AS lag,
               sum(m.value) FILTER (WHERE m.metric = 'pg_storage_ext_audit_log_rows_total') AS audit_rows,
               sum(m.value) FILTER (WHERE m.metric = 'pg_storage_ext_partitions') AS partitions
          FROM m GROUP BY m.ts
    ), d AS (
        SELECT p.*, extract(epoch FROM p.ts - lag(p.ts) OVER w) AS dt,
               storage._metrics_delta(p.commits, lag(p.commits) OVER w) AS d_commits,
               storage._metrics_delta(p.rollbacks, lag(p.rollbacks) OVER w) AS d_rollbacks,
               storage._metrics_delta(p.hits, lag(p.hits) OVER w) AS d_hits,
               storage._metrics_delta(p.reads, lag(p.reads) OVER w) AS d_reads,
               storage._metrics_delta(p.cpu_busy, lag(p.cpu_busy) OVER w) AS d_busy,
               storage._metrics_delta(p.cpu_all, lag(p.cpu_all) OVER w) AS d_all,
               storage._metrics_delta(p.audit_rows, lag(p.audit_rows) OVER w) AS d_audit,
               lag(p.ts) OVER w IS NULL AS first
          FROM per_ts p WINDOW w AS (ORDER BY p.ts)
    )
    SELECT c.n, c.chart, c.unit, d.ts, c.v
      FROM d CROSS JOIN LATERAL (VALUES
        (1, 'Connections', 'sessions', d.connections),
        (2, 'Cache hit ratio', '%', CASE WHEN NOT d.first AND d.d_hits + d.d_reads > 0 THEN 100 * d.d_hits / (d.d_hits + d.d_reads) END),
        (3, 'Transactions', 'per second', CASE WHEN NOT d.first AND d.dt > 0 THEN (d.d_commits + d.d_rollbacks) / d.dt END),
        (4, 'Error rate', '% rolled back', CASE WHEN NOT d.first AND d.d_commits + d.d_rollbacks > 0 THEN 100 * d.d_rollbacks / (d.d_commits + d.d_rollbacks) END),
        (5, 'CPU', '% busy', CASE WHEN NOT d.first AND d.d_all > 0 THEN 100 * d.d_busy / d.d_all END),
        (6, 'Disk free', '%', CASE WHEN d.disk_total > 0 THEN 100 * d.disk_free / d.disk_total END),
        (7, 'Replication lag', 'seconds', coalesce(d.lag, 0)),
        (8, 'Audit log rows', 'per second', CASE WHEN NOT d.first AND d.dt > 0 THEN d.d_audit / d.dt END),
        (9, 'Partitions', 'children', coalesce(d.partitions, 0))) AS c(n, chart, unit, v)
$$;
COMMENT ON FUNCTION storage._metrics_series(interval) IS
    'Internal: the charts of the health report from storage.metrics since now() - since (rates between consecutive snapshots).';

CREATE FUNCTION storage.health_report_html(since interval DEFAULT '24 hours', with_query_text boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET lock_timeout = '1s' AS $$
DECLARE
    checks text;
    charts text;
    worst text;
    queries text;
BEGIN
    IF since IS NULL OR since <= interval '0' THEN
        RAISE EXCEPTION 'since must be a positive interval, got %', coalesce(since::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value', HINT = 'storage.health_report_html(''6 hours'').';
    END IF;
    SELECT string_agg(format('<tr class="%s"><td>%s</td><td class="st">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
                             h.status, storage._html_escape(h.check_name), h.status,
                             coalesce(h.value::text, ''), coalesce(h.warn::text, ''), coalesce(h.critical::text, ''),
                             storage._html_escape(coalesce(h.detail, ''))), E'\n' ORDER BY h.check_name),
           CASE WHEN bool_or(h.status = 'critical') THEN 'critical' WHEN bool_or(h.status = 'warning') THEN 'warning'
                WHEN bool_or(h.status = 'unknown') THEN 'unknown' ELSE 'ok' END
      INTO checks, worst
      FROM storage._health(false) h;
    SELECT string_agg(x.svg, E'\n' ORDER BY x.n) INTO charts
      FROM (SELECT s.n, storage._svg_chart(s.chart, s.unit,
                                           array_agg(extract(epoch FROM s.ts)::float8 ORDER BY s.ts),
                                           array_agg(s.value ORDER BY s.ts)) AS svg
              FROM storage._metrics_series(since) s GROUP BY s.n, s.chart, s.unit) x;
    IF charts IS NULL THEN
        -- no snapshot yet: the charts still stand, empty
        SELECT string_agg(storage._svg_chart(c.chart, c.unit, NULL, NULL), E'\n' ORDER BY c.n) INTO charts
          FROM (VALUES (1, 'Connections', 'sessions'), (2, 'Cache hit ratio', '%'), (3, 'Transactions', 'per second'),
                       (4, 'Error rate', '% rolled back'), (5, 'CPU', '% busy'), (6, 'Disk free', '%'),
                       (7, 'Replication lag', 'seconds'), (8, 'Audit log rows', 'per second'), (9, 'Partitions', 'children')) AS c(n, chart, unit);
    END IF;
    -- the top queries (never their text unless asked: the HTTP endpoint serves this page to
    -- whoever reaches its port)
    IF storage._pgss() IS NULL THEN
        queries := '<p>pg_stat_statements is not installed in this database: no query history.</p>';
    ELSE
        SELECT '<table id="queries"><thead><tr><th>queryid</th><th>database</th><th>calls</th><th>total ms</th><th>mean ms</th><th>rows</th><th>cache hit %</th>'
               || CASE WHEN with_query_text THEN '<th>query</th>' ELSE '' END || E'</tr></thead>\n<tbody>\n'
               || coalesce(string_agg(format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>%s</tr>',
                                              q.queryid, storage._html_escape(coalesce(q.datname::text, '')), q.calls,
                                              round(q.total_ms::numeric, 1), round(q.mean_ms::numeric, 3), q.rows,
                                              coalesce(round(100.0 * q.shared_blks_hit / nullif(q.shared_blks_hit + q.shared_blks_read, 0), 1)::text, ''),
                                              CASE WHEN with_query_text THEN '<td>' || storage._html_escape(coalesce(q.query, '')) || '</td>' ELSE '' END),
                                       E'\n' ORDER BY q.total_ms DESC, q.queryid), '')
               || E'\n</tbody></table>'
          INTO queries
          FROM storage._top_queries(since, 10, with_query_text) q;
    END IF;
    RETURN format($html$<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pg_storage_ext health: %1$s</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.3em; } .overall { padding: 0.2em 0.6em; border-radius: 4px; }
table { border-collapse: collapse; background: #fff; } td, th { border: 1px solid #ddd; padding: 0.3em 0.6em; font-size: 0.9em; text-align: left; }
tr.ok .st, .overall.ok { background: #d7f5d7; } tr.warning .st, .overall.warning { background: #ffe9a8; }
tr.critical .st, .overall.critical { background: #ffb3b3; } tr.unknown .st, .overall.unknown { background: #e4e4e4; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 1em; }
</style></head><body>
<h1>%2$s on %3$s: <span class="overall %1$s">%1$s</span></h1>
<p>At %4$s; charts of the last %5$s from storage.metrics (one point per storage.metrics_snapshot()).</p>
<table id="checks"><thead><tr><th>check</th><th>status</th><th>value</th><th>warn</th><th>critical</th><th>detail</th></tr></thead>
<tbody>
%6$s
</tbody></table>
<div class="charts" id="charts">
%7$s
</div>
<h2>Top queries by time</h2>
%8$s
</body></html>
$html$, worst, storage._html_escape(current_database()), storage._html_escape(coalesce(inet_server_addr()::text, 'local socket')),
          to_char(now(), 'YYYY-MM-DD HH24:MI:SS TZ'), storage._html_escape(since::text), coalesce(checks, ''), charts, queries);
END $$;
COMMENT ON FUNCTION storage.health_report_html(interval, boolean) IS
    'One self-contained HTML page (no script, no external asset): the health checks coloured by status, inline SVG charts of the metrics history since now() - since (connections, cache hit ratio, transactions per second, error rate, CPU, disk, replication lag, audit rows per second, partitions), and the top queries by time (storage.query_stats; their text only with with_query_text, as pg_stat_statements shows it to the caller; the HTTP endpoint never asks for it).';

-- Custom metrics: a team's own gauges and counters (queue depth, orders per minute), each one
-- query whose rows are the samples: a column `value` and one column per label. Stored SQL:
-- written only by the extension's owner (storage._stored_sql_guard, in sql/migrations.sql,
-- which also checks the SQL is one query), run exactly as checked at every scrape and snapshot,
-- never with superuser rights (as the endpoint's role when a superuser collects), read-only,
-- within 1 s, in a subtransaction that is always rolled back. A failing or slow query is its own
-- sample (pg_storage_ext_custom_metric_up 0), never a broken exposition.
CREATE TABLE storage.custom_metrics (
    name    text PRIMARY KEY
            CHECK (name ~ '^[a-z_][a-z0-9_]{0,99}$' AND name !~ '^metric_'),
    help    text NOT NULL DEFAULT '' CHECK (length(help) <= 1000),
    kind    text NOT NULL DEFAULT 'gauge' CHECK (kind IN ('gauge', 'counter')),
    sql     text NOT NULL CHECK (length(sql) <= 100000),
    labels  text[] NOT NULL DEFAULT '{}'
            CHECK (cardinality(labels) <= 10 AND array_position(labels, NULL) IS NULL
                   AND NOT ('value' = ANY (labels))
                   AND array_to_string(labels, ',') ~ '^([a-zA-Z][a-zA-Z0-9_]{0,62}(,|$))*$'),
    enabled boolean NOT NULL DEFAULT true,
    CHECK (kind = 'gauge' OR name ~ '_total$')
);
SELECT pg_catalog.pg_extension_config_dump('storage.custom_metrics', '');
COMMENT ON TABLE storage.custom_metrics IS
    'A team''s own metrics, served as pg_storage_ext_custom_<name> and kept by storage.metrics_snapshot(): sql is one query returning a column value and one column per name in labels; written only by the extension''s owner; run read-only within 1 s, never as a superuser.';

-- The samples of every enabled custom metric, and per metric whether its query worked (up) and
-- how long it took.
CREATE FUNCTION storage._custom_metrics_collect()
RETURNS TABLE (metric text, kind text, help text, labels jsonb, value double precision)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m record;
    run_as oid;
    rows text[];
    samples jsonb;
    valid boolean;
    t0 timestamptz;
    started timestamptz := clock_timestamp();
    ok boolean;
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
        -- a superuser (the snapshot job, an administrator) runs them as the endpoint's role
        SELECT r.oid INTO run_as FROM pg_roles r
         WHERE r.rolname OPERATOR(pg_catalog.=) coalesce(nullif(current_setting('pg_storage_ext.http_role', true), ''), 'pgse_http')
           AND NOT r.rolsuper;
    ELSE
        SELECT r.oid INTO run_as FROM pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
    END IF;
    FOR m IN SELECT c.* FROM storage.custom_metrics c WHERE c.enabled ORDER BY c.name LOOP
        ok := false;
        samples := NULL;
        t0 := clock_timestamp();
        -- at most 5 s for all of them: past it the rest are not run this time (up 0)
        IF run_as IS NOT NULL AND clock_timestamp() - started < interval '5 seconds' THEN
            BEGIN
                PERFORM set_config('transaction_read_only', 'on', true);
                rows := storage._custom_metric_rows(m.sql, run_as, 1000, 1000);
                IF coalesce(cardinality(rows), 0) <= 1000 THEN
                    -- every row a number in value, no two rows with the same labels (NULL is
                    -- the empty label)
                    SELECT jsonb_agg(jsonb_build_object('labels', x.l, 'value', x.v)),
                           coalesce(bool_and(x.v IS NOT NULL), true) AND count(DISTINCT x.l) = count(*)
                      INTO samples, valid
                      FROM (SELECT coalesce((SELECT jsonb_object_agg(l, coalesce(j.r ->> l, '')) FROM unnest(m.labels) AS l), '{}'::jsonb) AS l,
                                   (j.r ->> 'value')::double precision AS v
                              FROM unnest(rows) AS t(txt), LATERAL (SELECT t.txt::jsonb AS r) AS j) AS x;
                    -- and all of it within the 1 s
                    ok := valid AND clock_timestamp() - t0 < interval '1 second';
                END IF;
                -- end the subtransaction: read-only and anything the query changed go back
                RAISE EXCEPTION USING ERRCODE = 'PX001';
            EXCEPTION WHEN SQLSTATE 'PX001' THEN
                NULL;
            -- (a cancel or an assertion raised by what the query reaches fails this metric,
            -- not the exposition)
            WHEN query_canceled OR assert_failure THEN
                ok := false;
            WHEN OTHERS THEN
                ok := false;
            END;
        END IF;
        IF ok THEN
            RETURN QUERY
            SELECT 'pg_storage_ext_custom_' || m.name, m.kind, m.help, s -> 'labels', (s ->> 'value')::double precision
              FROM jsonb_array_elements(coalesce(samples, '[]')) AS s;
        END IF;
        metric := 'pg_storage_ext_custom_metric_up'; kind := 'gauge';
        help := 'whether each custom metric''s query answered at the last collection (1) or failed, ran over 1 s, gave over 1000 rows or 1 MiB, a value that is not a number or two rows with the same labels (0)';
        labels := jsonb_build_object('metric', m.name); value := CASE WHEN ok THEN 1 ELSE 0 END;
        RETURN NEXT;
        metric := 'pg_storage_ext_custom_metric_seconds'; kind := 'gauge';
        help := 'how long each custom metric''s query took at the last collection';
        value := extract(epoch FROM clock_timestamp() - t0);
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION storage._custom_metric_statement(text) IS
    'Internal: the statement that reads a custom metric (one JSON object per row of its query); 42601 unless the SQL is one query the statement keeps whole.';
COMMENT ON FUNCTION storage._custom_metric_rows(text, oid, integer, integer) IS
    'Internal: a custom metric''s rows as the text of JSON objects (at most max_rows + 1), run as run_as under SECURITY_RESTRICTED_OPERATION, within timeout_ms and 1 MiB (54000 past them), the caller''s statement timeout put back.';
COMMENT ON FUNCTION storage._custom_metrics_collect() IS
    'Internal: runs every enabled custom metric''s query (read-only, 1 s each and 5 s for all, under SECURITY_RESTRICTED_OPERATION, never as a superuser: as the endpoint''s role when a superuser collects) and returns its samples, with pg_storage_ext_custom_metric_up and _seconds per metric.';

-- Query statistics history: where pg_stat_statements (1.11 or later, preloaded) is installed in
-- this database, each storage.metrics_snapshot() keeps the deltas since the previous snapshot of
-- the queries with the most time (pg_storage_ext.top_queries), per database and queryid. The
-- deltas never go negative: an entry reset (pg_stat_statements_reset(), an eviction, a crash)
-- has a newer stats_since and counts from zero. No query text is kept: storage.top_queries()
-- reads it from pg_stat_statements as the caller, who sees what pg_stat_statements shows it.
CREATE TABLE storage.query_stats (
    ts               timestamptz NOT NULL,
    dbid             oid NOT NULL,
    queryid          bigint NOT NULL,
    calls            bigint NOT NULL,
    total_ms         double precision NOT NULL,
    rows             bigint NOT NULL,
    shared_blks_hit  bigint NOT NULL,
    shared_blks_read bigint NOT NULL,
    wal_bytes        numeric NOT NULL
) PARTITION BY RANGE (ts);
COMMENT ON TABLE storage.query_stats IS
    'Per-query deltas (calls, execution and planning time in ms, rows, shared blocks hit and read, WAL bytes) since the previous storage.metrics_snapshot() of the top queries by time (pg_storage_ext.top_queries), per database and queryid, from pg_stat_statements; partitioned by day, 14 days kept. No query text.';
CREATE INDEX query_stats_query ON storage.query_stats (queryid, ts);

CREATE TABLE storage._query_stats_last (
    userid           oid NOT NULL,
    dbid             oid NOT NULL,
    queryid          bigint NOT NULL,
    toplevel         boolean NOT NULL,
    stats_since      timestamptz,
    calls            bigint NOT NULL,
    total_ms         double precision NOT NULL,
    rows             bigint NOT NULL,
    shared_blks_hit  bigint NOT NULL,
    shared_blks_read bigint NOT NULL,
    wal_bytes        numeric NOT NULL
);
COMMENT ON TABLE storage._query_stats_last IS
    'Internal: every pg_stat_statements entry''s counters at the latest snapshot, which the next one takes its deltas against.';

-- pg_stat_statements(boolean) of this database's pg_stat_statements extension, schema-qualified
-- (a function the extension owns, found through pg_depend, never by search_path); NULL when it
-- is not installed or older than 1.11 (no stats_since).
CREATE FUNCTION storage._pgss() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('%I.%I', n.nspname, p.proname)
      FROM pg_extension e
      JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e'
                      AND d.classid = 'pg_proc'::regclass
      JOIN pg_proc p ON p.oid = d.objid AND p.proname = 'pg_stat_statements' AND p.pronargs = 1
      JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE e.extname = 'pg_stat_statements'
       AND string_to_array(e.extversion, '.')::int[] >= '{1,11}'
     LIMIT 1
$$;
COMMENT ON FUNCTION storage._pgss() IS
    'Internal: the schema-qualified pg_stat_statements(boolean) function of this database''s pg_stat_statements 1.11+, or NULL.';

-- storage._pgss() when the current role may call it (its schema usable, EXECUTE on it, the
-- library preloaded), else NULL.
CREATE FUNCTION storage._pgss_readable() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f text := storage._pgss();
BEGIN
    IF f IS NOT NULL THEN
        EXECUTE format('SELECT NULL FROM %s(false) LIMIT 0', f);
    END IF;
    RETURN f;
EXCEPTION WHEN insufficient_privilege OR object_not_in_prerequisite_state THEN
    RETURN NULL;
END $$;
COMMENT ON FUNCTION storage._pgss_readable() IS
    'Internal: storage._pgss() when the current role may call it, else NULL.';

-- The query (dbid, queryid, query) of the texts pg_stat_statements shows the caller for the
-- queryids of the CTE named `keys`, read once; no rows without pg_stat_statements (f NULL).
CREATE FUNCTION storage._pgss_texts(f text, keys text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN f IS NULL THEN 'SELECT NULL::oid AS dbid, NULL::bigint AS queryid, NULL::text AS query WHERE false'
                ELSE format('SELECT DISTINCT ON (p.dbid, p.queryid) p.dbid, p.queryid, p.query FROM %s(true) p
                              WHERE p.queryid IN (SELECT k.queryid FROM %I k) ORDER BY p.dbid, p.queryid, p.toplevel DESC', f, keys) END
$$;
COMMENT ON FUNCTION storage._pgss_texts(text, text) IS
    'Internal: the SQL that reads, once and as the caller, pg_stat_statements'' texts of the queryids of a CTE.';

CREATE FUNCTION storage._top_queries_setting() RETURNS integer
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    setting text := nullif(btrim(current_setting('pg_storage_ext.top_queries', true)), '');
BEGIN
    IF setting IS NULL THEN
        RETURN 50;
    ELSIF setting !~ '^[0-9]{1,5}$' OR setting::int > 10000 THEN
        RAISE EXCEPTION 'invalid value for parameter "pg_storage_ext.top_queries": "%"', setting
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'storage.metrics_snapshot() keeps this many queries in storage.query_stats.',
                    HINT = 'Use a whole number from 0 to 10000.';
    END IF;
    RETURN setting::int;
END $$;
COMMENT ON FUNCTION storage._top_queries_setting() IS
    'Internal: pg_storage_ext.top_queries (50 when unset), checked to be 0..10000.';

-- One snapshot of pg_stat_statements: the top queries' deltas into storage.query_stats, every
-- entry's counters into storage._query_stats_last; the first snapshot only takes the baseline.
-- Returns the rows kept; 0 without pg_stat_statements (or where it is not preloaded).
CREATE FUNCTION storage._query_stats_snapshot() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '1s' AS $$
DECLARE
    f text := storage._pgss();
    top integer := storage._top_queries_setting();
    kept bigint;
BEGIN
    IF f IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM storage._ensure_daily('storage.query_stats');
    BEGIN
        EXECUTE format($q$
            WITH cur AS MATERIALIZED (
                SELECT s.userid, s.dbid, s.queryid, s.toplevel, s.stats_since, s.calls,
                       s.total_exec_time + s.total_plan_time AS total_ms, s.rows,
                       s.shared_blks_hit, s.shared_blks_read, s.wal_bytes
                  FROM %s(false) s WHERE s.queryid IS NOT NULL),
            first AS (SELECT NOT EXISTS (SELECT FROM storage._query_stats_last) AS yes),
            d AS (
                SELECT c.dbid, c.queryid,
                       -- an entry new since the last snapshot, or reset since (newer stats_since,
                       -- or a counter gone down), counts from zero
                       (l.queryid IS NULL OR c.stats_since IS DISTINCT FROM l.stats_since OR c.calls < l.calls) AS fresh,
                       c.calls, c.total_ms, c.rows, c.shared_blks_hit, c.shared_blks_read, c.wal_bytes,
                       l.calls AS l_calls, l.total_ms AS l_total_ms, l.rows AS l_rows, l.shared_blks_hit AS l_hit,
                       l.shared_blks_read AS l_read, l.wal_bytes AS l_wal
                  FROM cur c
                  LEFT JOIN storage._query_stats_last l
                         ON l.userid = c.userid AND l.dbid = c.dbid AND l.queryid = c.queryid AND l.toplevel = c.toplevel),
            agg AS (
                SELECT d.dbid, d.queryid,
                       sum(CASE WHEN d.fresh THEN d.calls ELSE d.calls - d.l_calls END)::bigint AS calls,
                       sum(CASE WHEN d.fresh THEN d.total_ms ELSE greatest(d.total_ms - d.l_total_ms, 0) END) AS total_ms,
                       sum(CASE WHEN d.fresh THEN d.rows ELSE greatest(d.rows - d.l_rows, 0) END)::bigint AS rows,
                       sum(CASE WHEN d.fresh THEN d.shared_blks_hit ELSE greatest(d.shared_blks_hit - d.l_hit, 0) END)::bigint AS hit,
                       sum(CASE WHEN d.fresh THEN d.shared_blks_read ELSE greatest(d.shared_blks_read - d.l_read, 0) END)::bigint AS read,
                       sum(CASE WHEN d.fresh THEN d.wal_bytes ELSE greatest(d.wal_bytes - d.l_wal, 0) END) AS wal
                  FROM d GROUP BY d.dbid, d.queryid),
            ins AS (
                INSERT INTO storage.query_stats (ts, dbid, queryid, calls, total_ms, rows, shared_blks_hit, shared_blks_read, wal_bytes)
                SELECT now(), a.dbid, a.queryid, a.calls, a.total_ms, a.rows, a.hit, a.read, a.wal
                  FROM agg a, first
                 WHERE NOT first.yes AND a.calls > 0
                 ORDER BY a.total_ms DESC, a.dbid, a.queryid LIMIT $1
                RETURNING 1),
            gone AS (DELETE FROM storage._query_stats_last RETURNING 1),
            keep AS (
                INSERT INTO storage._query_stats_last
                SELECT c.userid, c.dbid, c.queryid, c.toplevel, c.stats_since, c.calls, c.total_ms, c.rows,
                       c.shared_blks_hit, c.shared_blks_read, c.wal_bytes
                  FROM cur c
                RETURNING 1)
            SELECT (SELECT count(*) FROM ins) + 0 * (SELECT count(*) FROM gone) + 0 * (SELECT count(*) FROM keep)$q$, f)
          INTO kept USING top;
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        -- pg_stat_statements installed but not preloaded: nothing to keep
        RETURN 0;
    END;
    RETURN kept;
END $$;
COMMENT ON FUNCTION storage._query_stats_snapshot() IS
    'Internal: the step of storage.metrics_snapshot() that keeps the top queries'' deltas since the previous snapshot (pg_stat_statements) in storage.query_stats.';

-- The Prometheus families of the top queries by time since pg_stat_statements last counted from
-- zero (pg_storage_ext.top_queries of them), per database and queryid: cumulative counters, no
-- query text (the endpoint that serves them has no authentication).
CREATE FUNCTION storage._query_metrics()
RETURNS TABLE (metric text, kind text, help text, labels jsonb, value double precision)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f text := storage._pgss();
BEGIN
    IF f IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format($q$
        SELECT 'pg_storage_ext_query_' || m.k, 'counter', m.help,
               jsonb_build_object('datname', coalesce(d.datname::text, q.dbid::text), 'queryid', q.queryid::text), m.v
          FROM (SELECT s.dbid, s.queryid, sum(s.calls) AS calls, sum(s.total_exec_time + s.total_plan_time) / 1000 AS secs,
                       sum(s.rows) AS rows, sum(s.shared_blks_hit) AS hit, sum(s.shared_blks_read) AS read, sum(s.wal_bytes) AS wal
                  FROM %s(false) s WHERE s.queryid IS NOT NULL
                 GROUP BY s.dbid, s.queryid
                 ORDER BY 4 DESC, 1, 2 LIMIT $1) q
          LEFT JOIN pg_database d ON d.oid = q.dbid
         CROSS JOIN LATERAL (VALUES
            ('calls_total', 'calls of each top query (pg_stat_statements)', q.calls::float8),
            ('seconds_total', 'execution and planning time of each top query (pg_stat_statements)', q.secs::float8),
            ('rows_total', 'rows of each top query (pg_stat_statements)', q.rows::float8),
            ('shared_blks_hit_total', 'shared blocks hit by each top query (pg_stat_statements)', q.hit::float8),
            ('shared_blks_read_total', 'shared blocks read by each top query (pg_stat_statements)', q.read::float8),
            ('wal_bytes_total', 'WAL bytes of each top query (pg_stat_statements)', q.wal::float8)) AS m(k, help, v)$q$, f)
    USING storage._top_queries_setting();
EXCEPTION WHEN object_not_in_prerequisite_state OR insufficient_privilege THEN
    -- installed but not preloaded, or in a schema (or with an EXECUTE) this role may not use
    RETURN;
END $$;
COMMENT ON FUNCTION storage._query_metrics() IS
    'Internal: the Prometheus samples (pg_storage_ext_query_*_total{datname, queryid}) of the top queries by time from pg_stat_statements; no query text.';

-- The queries with the most time in the snapshots since now() - since, summed; the text as
-- pg_stat_statements shows it to the caller (NULL once the entry is gone from it).
CREATE FUNCTION storage._top_queries(since interval, n integer, with_text boolean)
RETURNS TABLE (queryid bigint, datname name, calls bigint, total_ms double precision, mean_ms double precision,
               rows bigint, shared_blks_hit bigint, shared_blks_read bigint, wal_bytes numeric, query text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f text := CASE WHEN with_text THEN storage._pgss_readable() END;
BEGIN
    IF since IS NULL OR since <= interval '0' OR n IS NULL OR n < 0 THEN
        RAISE EXCEPTION 'since must be a positive interval and n a count, got % and %', coalesce(since::text, 'NULL'), coalesce(n::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value', HINT = 'storage.top_queries(''1 hour'', 20).';
    END IF;
    RETURN QUERY EXECUTE format($q$
    WITH q AS MATERIALIZED (
        SELECT s.dbid, s.queryid, sum(s.calls)::bigint AS calls, sum(s.total_ms) AS total_ms, sum(s.rows)::bigint AS rows,
               sum(s.shared_blks_hit)::bigint AS hit, sum(s.shared_blks_read)::bigint AS read, sum(s.wal_bytes) AS wal
          FROM storage.query_stats s WHERE s.ts > now() - $1
         GROUP BY s.dbid, s.queryid
         ORDER BY 4 DESC, 1, 2 LIMIT $2),
    texts AS MATERIALIZED (%s)
    SELECT q.queryid, d.datname, q.calls, q.total_ms, q.total_ms / nullif(q.calls, 0), q.rows, q.hit, q.read, q.wal, t.query
      FROM q
      LEFT JOIN pg_database d ON d.oid = q.dbid
      LEFT JOIN texts t ON t.dbid = q.dbid AND t.queryid = q.queryid
     ORDER BY q.total_ms DESC, q.dbid, q.queryid$q$,
        storage._pgss_texts(f, 'q'))
    USING since, n;
END $$;
COMMENT ON FUNCTION storage._top_queries(interval, integer, boolean) IS
    'Internal: storage.top_queries(), with the query text (as the caller sees it in pg_stat_statements) or without (the HTTP endpoint''s report).';

CREATE FUNCTION storage.top_queries(since interval DEFAULT '1 hour', n integer DEFAULT 20)
RETURNS TABLE (queryid bigint, datname name, calls bigint, total_ms double precision, mean_ms double precision,
               rows bigint, shared_blks_hit bigint, shared_blks_read bigint, wal_bytes numeric, query text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM storage._top_queries(since, n, true)
$$;
COMMENT ON FUNCTION storage.top_queries(interval, integer) IS
    'The n queries with the most time (execution and planning) in the snapshots of storage.query_stats since now() - since, with calls, mean time, rows, shared blocks hit and read, WAL bytes; query is the text pg_stat_statements shows the caller (NULL when it no longer holds the entry).';

-- Queries that got slower after a migration: for each migration applied since now() - since
-- (storage.migrations), each query's mean time in the snapshots after it (until the next
-- migration, or now) against the same length of time before it; a query at least `factor`
-- times slower, with at least min_calls calls on each side, names the version.
CREATE FUNCTION storage.query_regressions(since interval, factor double precision DEFAULT 2, min_calls bigint DEFAULT 5)
RETURNS TABLE (version text, applied_at timestamptz, queryid bigint, datname name, calls_before bigint, mean_ms_before double precision,
               calls_after bigint, mean_ms_after double precision, slowdown double precision, query text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f text := storage._pgss_readable();
BEGIN
    IF since IS NULL OR since <= interval '0' OR factor IS NULL OR factor <= 0 OR min_calls IS NULL OR min_calls < 1 THEN
        RAISE EXCEPTION 'since must be a positive interval, factor positive and min_calls at least 1'
              USING ERRCODE = 'invalid_parameter_value', HINT = 'storage.query_regressions(''1 day''), or with factor => 1.5.';
    END IF;
    RETURN QUERY EXECUTE format($q$
    WITH m AS (
        SELECT g.version, g.applied_at,
               least(coalesce(lead(g.applied_at) OVER (ORDER BY g.applied_at, g.version), now()), now()) AS until
          FROM storage.migrations g
         WHERE g.status = 'applied' AND g.direction = 'up' AND g.applied_at > now() - $1),
    w AS (
        SELECT m.version, m.applied_at, s.dbid, s.queryid,
               sum(s.calls) FILTER (WHERE s.ts <= m.applied_at)::bigint AS cb,
               sum(s.total_ms) FILTER (WHERE s.ts <= m.applied_at) AS tb,
               sum(s.calls) FILTER (WHERE s.ts > m.applied_at)::bigint AS ca,
               sum(s.total_ms) FILTER (WHERE s.ts > m.applied_at) AS ta
          FROM m JOIN storage.query_stats s
            ON s.ts > m.applied_at - (m.until - m.applied_at) AND s.ts <= m.until
         GROUP BY m.version, m.applied_at, s.dbid, s.queryid),
    r AS MATERIALIZED (
        SELECT w.*, w.tb / w.cb AS mb, w.ta / w.ca AS ma FROM w
         WHERE w.cb >= $3 AND w.ca >= $3 AND w.tb > 0 AND (w.ta / w.ca) >= $2 * (w.tb / w.cb)),
    texts AS MATERIALIZED (%s)
    SELECT r.version, r.applied_at, r.queryid, d.datname, r.cb, r.mb, r.ca, r.ma, r.ma / r.mb, t.query
      FROM r
      LEFT JOIN pg_database d ON d.oid = r.dbid
      LEFT JOIN texts t ON t.dbid = r.dbid AND t.queryid = r.queryid
     ORDER BY r.applied_at, r.ma / r.mb DESC, r.queryid$q$,
        storage._pgss_texts(f, 'r'))
    USING since, factor, min_calls;
END $$;
COMMENT ON FUNCTION storage.query_regressions(interval, double precision, bigint) IS
    'Queries whose mean time rose at least factor times after a migration applied since now() - since: the version, the query''s calls and mean time in the snapshots before and after it (the same length of time each side, up to the next migration), the slowdown, and the text as pg_stat_statements shows it to the caller.';

-- A monitoring role (pg_monitor) runs the checks and reads the metrics without superuser; the
-- checks it may not run (ssl's pg_hba lines, audit ones without audit_reader) say so.
GRANT SELECT ON storage.health_thresholds, storage.metrics, storage._metrics_latest TO pg_monitor;
GRANT SELECT ON storage.partition_config, storage.matview_status, storage._matview_state, storage._matview_changes TO pg_monitor;
GRANT EXECUTE ON FUNCTION storage._matview_sources_changed(regclass), storage._matview_can_concurrently(regclass) TO pg_monitor;
GRANT EXECUTE ON FUNCTION storage._xmin_holders() TO pg_monitor;
GRANT SELECT ON storage.query_stats, storage.custom_metrics TO pg_monitor;
GRANT EXECUTE ON FUNCTION storage._custom_metrics_collect(), storage._custom_metric_statement(text),
    storage._custom_metric_rows(text, oid, integer, integer) TO pg_monitor;
GRANT EXECUTE ON FUNCTION storage._pgss(), storage._pgss_readable(), storage._pgss_texts(text, text),
    storage._top_queries_setting(), storage._query_metrics(),
    storage._top_queries(interval, integer, boolean), storage.top_queries(interval, integer), storage.query_regressions(interval, double precision, bigint) TO pg_monitor;
GRANT EXECUTE ON FUNCTION storage.health(), storage.metrics_prometheus(), storage._health(boolean),
    storage._metrics_collect(), storage._metrics_last(text, jsonb), storage._metrics_delta(double precision, double precision),
    storage._health_status(numeric, numeric, numeric, boolean), storage._host_cpu(), storage._data_disk(),
    storage._prometheus_labels(text[], text[]), storage._prometheus_value(double precision), storage.ssl_status(),
    storage.health_report_html(interval, boolean), storage._metrics_series(interval), storage._html_escape(text),
    storage._svg_chart(text, text, double precision[], double precision[])
    TO pg_monitor;
