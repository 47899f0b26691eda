-- Maintenance: storage.maintenance_plan() from statistics and catalogs. Tables with autovacuum off
-- so the statistics stay as the test leaves them; each case checks its row (action, reason,
-- command, priority) and that fixing it removes the row.
SET client_min_messages = warning;
CREATE SCHEMA mnt;
CREATE FUNCTION pg_temp.flush() RETURNS void LANGUAGE sql AS $$
    SELECT pg_stat_force_next_flush(); SELECT pg_stat_clear_snapshot();
$$;
CREATE FUNCTION pg_temp.plan() RETURNS TABLE (object text, action text, reason text, command text, priority int)
LANGUAGE sql AS $$
    SELECT p.object::text, p.action, regexp_replace(p.reason, '\(\d{4}-\d\d-\d\d [^)]*\)', '(<time>)'), p.command, p.priority
      FROM storage.maintenance_plan() p WHERE p.object::text LIKE 'mnt.%' ORDER BY 1, 2
$$;
SET pg_storage_ext.maintenance_vacuum_threshold = 100;
SET pg_storage_ext.maintenance_analyze_threshold = 100;

-- never analysed; then analysed; then many rows changed since
CREATE TABLE mnt.fresh (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off);
INSERT INTO mnt.fresh SELECT g, 'v' FROM generate_series(1, 1000) g;
SELECT pg_temp.flush();
SELECT * FROM pg_temp.plan();
ANALYZE mnt.fresh;
SELECT pg_temp.flush();
-- analysed, but an insert-only table never vacuumed: its visibility map is unset
SELECT object, action, reason, command, priority FROM pg_temp.plan() WHERE object = 'mnt.fresh';
VACUUM (ANALYZE) mnt.fresh;
SELECT pg_temp.flush();
SELECT count(*) AS rows_after_vacuum_analyze FROM pg_temp.plan() WHERE object = 'mnt.fresh';
UPDATE mnt.fresh SET v = 'w' WHERE id <= 250;
SELECT pg_temp.flush();
SELECT object, action, reason, command, priority FROM pg_temp.plan() WHERE object = 'mnt.fresh';

-- 90 % of the rows deleted: VACUUM (ANALYZE), which also covers the statistics
DELETE FROM mnt.fresh WHERE id > 100;
SELECT pg_temp.flush();
SELECT object, action, reason ~ '^\d+ dead tuples, past 100 \+ 0.2 x 1000 rows' AS reason_ok, command, priority FROM pg_temp.plan() WHERE object = 'mnt.fresh';
VACUUM (ANALYZE) mnt.fresh;
SELECT pg_temp.flush();
SELECT count(*) AS rows_after_vacuum FROM pg_temp.plan() WHERE object = 'mnt.fresh';

-- a partitioned table: never analysed by autovacuum
CREATE TABLE mnt.parted (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE mnt.parted_2026 PARTITION OF mnt.parted FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') WITH (autovacuum_enabled = off);
SELECT * FROM pg_temp.plan() WHERE object LIKE 'mnt.parted%';
ANALYZE mnt.parted;
SELECT pg_temp.flush();
SELECT count(*) AS parted_rows_after_analyze FROM pg_temp.plan() WHERE object LIKE 'mnt.parted%';

-- freezing: with the fraction lowered, every table past it is planned first (priority 0)
SET pg_storage_ext.maintenance_freeze_fraction = 0.0000000001;
SELECT object, action, reason ~ '^transaction id age \d+ is past 0% of autovacuum_freeze_max_age' AS reason_ok, command, priority
  FROM pg_temp.plan() WHERE object = 'mnt.fresh';
RESET pg_storage_ext.maintenance_freeze_fraction;

-- an invalid index left by a failed concurrent build
CREATE TABLE mnt.dup (id int, k int) WITH (autovacuum_enabled = off);
INSERT INTO mnt.dup VALUES (1, 1), (2, 1);
ANALYZE mnt.dup;
CREATE UNIQUE INDEX CONCURRENTLY dup_k ON mnt.dup (k);
SELECT object, action, reason, command, priority FROM pg_temp.plan() WHERE action = 'REINDEX';
DROP INDEX mnt.dup_k;

-- advice: a duplicate index, a foreign key without an index
CREATE INDEX dup_a ON mnt.dup (id);
CREATE INDEX dup_b ON mnt.dup (id);
CREATE INDEX dup_c ON mnt.dup (id) WHERE k > 0;     -- another predicate: not a duplicate
CREATE TABLE mnt.parent (id int PRIMARY KEY);
CREATE TABLE mnt.child (id int PRIMARY KEY, parent_id int REFERENCES mnt.parent, other int REFERENCES mnt.parent);
CREATE INDEX ON mnt.child (other, id);               -- covers the second key
ANALYZE mnt.parent, mnt.child;
SELECT * FROM pg_temp.plan() WHERE action LIKE 'advice:%' AND action <> 'advice: unused index';
-- unused indexes: only once the statistics cover the settings' days; constraints' indexes never
SET pg_storage_ext.maintenance_unused_index_days = 0;
SELECT object, action, reason ~ '^no scans since statistics began' AS reason_ok, command
  FROM pg_temp.plan() WHERE action = 'advice: unused index' ORDER BY 1;
SET pg_storage_ext.maintenance_unused_index_days = 36500;
SELECT count(*) AS unused_before_statistics_cover_the_days FROM pg_temp.plan() WHERE action = 'advice: unused index';
RESET pg_storage_ext.maintenance_unused_index_days;

-- a bloated B-tree: most of its entries deleted and vacuumed away, its pages stay
CREATE TABLE mnt.big (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = off);
INSERT INTO mnt.big SELECT g, 'x' FROM generate_series(1, 100000) g;
DELETE FROM mnt.big WHERE id % 10 <> 0;
VACUUM (ANALYZE) mnt.big;
SELECT pg_temp.flush();
SELECT object, action, reason ~ '^about \d+% of its \d+ pages hold no entries \(estimated from pg_stats\)' AS reason_ok, command, priority
  FROM pg_temp.plan() WHERE object = 'mnt.big_pkey';
REINDEX INDEX mnt.big_pkey;
ANALYZE mnt.big;
SELECT count(*) AS after_reindex FROM pg_temp.plan() WHERE object = 'mnt.big_pkey';

-- run_maintenance_plan: a dry run lists what would run and changes nothing
CREATE TABLE mnt.churn (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off);
INSERT INTO mnt.churn SELECT g, 'v' FROM generate_series(1, 2000) g;
ANALYZE mnt.churn;
DELETE FROM mnt.churn WHERE id > 200;
SELECT pg_temp.flush();
SELECT object, action, outcome FROM storage.run_maintenance_plan(true) WHERE object::text LIKE 'mnt.%' ORDER BY 1;
SELECT count(*) AS logged_by_dry_run FROM storage.maintenance_log;
-- tables past the thresholds with no VACUUM or ANALYZE in the last day: the health check
SELECT status <> 'ok' AS flagged, detail LIKE '%mnt.churn (VACUUM: 1800 dead tuples)%' AS names_churn
  FROM storage.health() WHERE check_name = 'maintenance_overdue';
-- outside the window nothing runs
SET TimeZone = 'UTC';
SELECT set_config('pg_storage_ext.maintenance_window',
                  to_char(now() + interval '1 hour', 'HH24:MI') || '-' || to_char(now() + interval '2 hours', 'HH24:MI'), false) IS NOT NULL AS window_set;
SELECT object, action, outcome LIKE 'skipped: outside the maintenance window %' AS outside
  FROM storage.run_maintenance_plan() WHERE object::text LIKE 'mnt.%' ORDER BY 1;
SELECT count(*) AS logged_outside_window FROM storage.maintenance_log;
SELECT storage._maintenance_in_window('22:00-04:00', '2026-01-01 23:30+00') AS wraps_late,
       storage._maintenance_in_window('22:00-04:00', '2026-01-01 03:59+00') AS wraps_early,
       storage._maintenance_in_window('22:00-04:00', '2026-01-01 04:00+00') AS wraps_end,
       storage._maintenance_in_window('01:00-05:00', '2026-01-01 00:59+00') AS before_start,
       storage._maintenance_in_window('', '2026-01-01 12:00+00') AS empty_any_time;
SET pg_storage_ext.maintenance_window = '25:00-26:00';
SET client_min_messages = notice;
DO $$ BEGIN PERFORM storage.run_maintenance_plan(); EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%: %', SQLSTATE, SQLERRM; END $$;
SET pg_storage_ext.maintenance_window = 'nightly';
DO $$ BEGIN PERFORM storage.run_maintenance_plan(); EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%: %', SQLSTATE, SQLERRM; END $$;
SET client_min_messages = warning;
RESET pg_storage_ext.maintenance_window;
RESET TimeZone;
-- a failed command is reported by the health check
INSERT INTO storage.maintenance_log (object, relation, object_name, action, command, outcome, finished)
VALUES ('mnt.churn', 'mnt.churn', 'mnt.churn', 'VACUUM', 'VACUUM (ANALYZE) mnt.churn', 'failed: disk full', now());
SELECT status, value, detail FROM storage.health() WHERE check_name = 'maintenance_failures';
DELETE FROM storage.maintenance_log;

-- a setting of the wrong kind is refused
SELECT pg_temp.flush();
SET client_min_messages = notice;
DO $$ BEGIN SET pg_storage_ext.maintenance_index_bloat = 'lots'; EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%: %', SQLSTATE, SQLERRM; END $$;
DO $$ BEGIN SET pg_storage_ext.maintenance_index_bloat = 2; EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%: %', SQLSTATE, SQLERRM; END $$;
SET client_min_messages = warning;

-- pg_monitor may run it; PUBLIC may not
CREATE ROLE regress_mnt_monitor IN ROLE pg_monitor;
CREATE ROLE regress_mnt_nobody;
SET ROLE regress_mnt_monitor;
SELECT count(*) > 0 AS monitor_plans FROM storage.maintenance_plan();
RESET ROLE;
SET ROLE regress_mnt_nobody;
DO $$ BEGIN PERFORM storage.maintenance_plan(); EXCEPTION WHEN OTHERS THEN RAISE WARNING '%', SQLSTATE; END $$;
RESET ROLE;
-- running the plan is administrative: not pg_monitor's
SET ROLE regress_mnt_monitor;
DO $$ BEGIN PERFORM storage.run_maintenance_plan(true); EXCEPTION WHEN OTHERS THEN RAISE WARNING '%', SQLSTATE; END $$;
SELECT count(*) AS monitor_reads_the_log FROM storage.maintenance_log;
RESET ROLE;
DROP ROLE regress_mnt_monitor, regress_mnt_nobody;
DROP SCHEMA mnt CASCADE;
