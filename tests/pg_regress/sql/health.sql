-- Health: the checks and their thresholds, statuses crossed by real work in this database,
-- snapshots and rates, the Prometheus text, and what a pg_monitor role sees.
\ir ../include/helpers.sql
SET client_min_messages = warning;

-- one row per check, seeded with the plan's numbers (warn) and sound critical levels
SELECT check_name, warn, critical, enabled FROM storage.health_thresholds ORDER BY check_name;
SELECT count(*) AS checks, count(DISTINCT check_name) AS distinct_checks,
       count(*) FILTER (WHERE status NOT IN ('ok', 'warning', 'critical', 'unknown')) AS bad_status,
       count(*) FILTER (WHERE status = 'unknown' AND detail IS NULL) AS unknown_without_why
  FROM storage.health();
-- status logic: higher is worse, and lower is worse (cache hit ratio, disk free)
SELECT v, storage._health_status(v, 1, 5, false) AS higher_worse, storage._health_status(v, 80, 50, true) AS lower_worse
  FROM (VALUES (NULL::numeric), (0), (0.99), (1), (4.9), (5), (50), (80), (80.1), (100)) AS t(v);

-- a first snapshot: rates from here on
SELECT storage.metrics_snapshot() > 20 AS sampled;
SELECT count(*) > 20 AS latest_rows, count(DISTINCT ts) AS snapshots FROM storage._metrics_latest;
SELECT parent::text, step, retention FROM storage.partition_config WHERE parent = 'storage.metrics'::regclass;

-- rolled-back transactions: the error rate since the snapshot crosses 5 % (critical)
BEGIN; SELECT 1; ROLLBACK;
BEGIN; SELECT 1; ROLLBACK;
BEGIN; SELECT 1; ROLLBACK;
BEGIN; SELECT 1; ROLLBACK;
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT check_name, status, value >= 5 AS at_least_5_percent FROM storage.health() WHERE check_name = 'error_rate';

-- an exhausted sequence, an index left invalid by a failed CREATE INDEX CONCURRENTLY, a database
-- connection limit nearly reached
CREATE SEQUENCE nearly_done MAXVALUE 100;
SELECT setval('nearly_done', 95);
CREATE TABLE dupes (x int);
INSERT INTO dupes VALUES (1), (1);
CREATE UNIQUE INDEX CONCURRENTLY dupes_x ON dupes (x);
ALTER DATABASE regression CONNECTION LIMIT 2;
-- sequences are read at the snapshot (health() then reads no sequence itself)
SELECT storage.metrics_snapshot() > 0 AS sampled;
SELECT check_name, status, value, regexp_replace(detail, 'snapshot of .*', 'snapshot of …') AS detail FROM storage.health()
 WHERE check_name IN ('sequence_exhaustion', 'invalid_indexes') ORDER BY 1;
SELECT status, detail LIKE '%worst limit: database regression uses 1 of its CONNECTION LIMIT 2' AS limit_in_detail
  FROM storage.health() WHERE check_name = 'connection_utilisation';
ALTER DATABASE regression CONNECTION LIMIT -1;
DROP TABLE dupes;
DROP SEQUENCE nearly_done;

-- an audited table written with its capture disabled: coverage and missing logs both see it
CREATE TABLE posts (id int PRIMARY KEY, title text);
SELECT audit.enable('posts');
INSERT INTO posts VALUES (1, 'logged');
SELECT storage.metrics_snapshot() > 0 AS sampled;
ALTER TABLE posts DISABLE TRIGGER USER;
INSERT INTO posts SELECT i, 'not logged' FROM generate_series(2, 50) AS i;
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT check_name, status, value FROM storage.health()
 WHERE check_name IN ('audit_coverage', 'missing_audit_logs') ORDER BY 1;
ALTER TABLE posts ENABLE TRIGGER USER;

-- a registered parent with rows waiting in its default partition
CREATE TABLE visits (at timestamptz NOT NULL, n int) PARTITION BY RANGE (at);
SELECT storage.create_partitions('visits', '1 month', premake => 1, start_from => '2100-01-01') > 0 AS created;
INSERT INTO visits VALUES ('2150-01-01', 1);
-- found at the snapshot, as the maintenance would
SELECT storage.metrics_snapshot() > 0 AS sampled;
SELECT check_name, status, value, detail ~ '^public.visits \(\d+ children to premake, rows in the default partition\) since the snapshot' AS detail_ok
  FROM storage.health() WHERE check_name = 'partition_premake';
-- without a recent snapshot it is worked out per parent
DELETE FROM storage._metrics_latest;
SELECT check_name, status, value, detail FROM storage.health() WHERE check_name = 'partition_premake';
DROP TABLE visits;

-- a disabled check is not run; thresholds are the user's to tune
UPDATE storage.health_thresholds SET enabled = false WHERE check_name = 'cpu';
UPDATE storage.health_thresholds SET warn = 0 WHERE check_name = 'long_running_queries';
SELECT count(*) FILTER (WHERE check_name = 'cpu') AS cpu_rows,
       min(status) FILTER (WHERE check_name = 'long_running_queries') AS long_running
  FROM storage.health();
UPDATE storage.health_thresholds SET enabled = true WHERE check_name = 'cpu';
UPDATE storage.health_thresholds SET warn = 1 WHERE check_name = 'long_running_queries';

-- Prometheus text: HELP and TYPE once per family, before its samples; counters end in _total;
-- one status per check
CREATE TEMP TABLE expo AS
SELECT n, line FROM regexp_split_to_table(storage.metrics_prometheus(), E'\n') WITH ORDINALITY AS t(line, n);
SELECT count(*) FILTER (WHERE line LIKE '# TYPE %') = count(DISTINCT split_part(line, ' ', 3)) FILTER (WHERE line LIKE '# TYPE %') AS type_once,
       count(*) FILTER (WHERE line LIKE '# HELP %') = count(*) FILTER (WHERE line LIKE '# TYPE %') AS help_per_type,
       count(*) FILTER (WHERE line LIKE '# TYPE % counter' AND split_part(line, ' ', 3) NOT LIKE '%\_total') AS counters_without_total,
       count(*) FILTER (WHERE line LIKE 'pg_storage_ext_health_status{check="%"} %') AS status_lines,
       count(*) FILTER (WHERE line <> '' AND line NOT LIKE '#%'
                        AND line !~ '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,|(?=\})))*\})? (NaN|[+-]Inf|-?[0-9.e+-]+)$') AS malformed
  FROM expo;
-- every sample follows its family's TYPE line
SELECT count(*) AS orphan_samples
  FROM expo s
 WHERE s.line <> '' AND s.line NOT LIKE '#%'
   AND NOT EXISTS (SELECT FROM expo t WHERE t.line = '# TYPE ' || substring(s.line FROM '^[a-zA-Z_:][a-zA-Z0-9_:]*') || ' counter' AND t.n < s.n
                   UNION ALL
                   SELECT FROM expo t WHERE t.line = '# TYPE ' || substring(s.line FROM '^[a-zA-Z_:][a-zA-Z0-9_:]*') || ' gauge' AND t.n < s.n);
-- label values are escaped
SELECT storage._prometheus_labels('{a,bad-name,n,__x,m}', ARRAY[E'x"y\\z\nw', '1', '2', '3', NULL]) AS labels;

-- the HTML report: one self-contained page, a row per check, nine charts, no script
SELECT r LIKE '<!DOCTYPE html>%' AS html,
       (length(r) - length(replace(r, '<svg', ''))) / length('<svg') AS charts,
       (length(r) - length(replace(r, '<tr class="', ''))) / length('<tr class="') AS check_rows,
       r NOT LIKE '%<script%' AND r NOT LIKE '%http://%.css%' AS self_contained
  FROM storage.health_report_html('1 hour') AS r;
SELECT pg_temp.outcome($$SELECT storage.health_report_html('-1 hour')$$) AS negative_since;
SELECT storage._html_escape('<b title="x">Tom & Jerry''s</b>') AS escaped;

-- the checks that name the culprit (issue 39): checkpoints requested rather than timed, the WAL
-- rate, what holds the xmin horizon back, the archiver
SELECT storage.metrics_snapshot() > 0 AS snapshot;
CHECKPOINT;
CHECKPOINT;
CHECKPOINT;
CHECKPOINT;
CREATE TABLE wal_maker AS SELECT g FROM generate_series(1, 20000) AS g;
DROP TABLE wal_maker;
SELECT check_name, status,
       CASE check_name WHEN 'checkpoints' THEN value >= 50 WHEN 'wal_rate' THEN value > 0 ELSE value = 0 END AS value_ok,
       regexp_replace(regexp_replace(regexp_replace(regexp_replace(detail,
           '[0-9.]+ (kB|MB|bytes)/s', 'N/s'), '[0-9.]+%', 'N%'),
           'snapshot of [0-9-]+ [0-9:]+ \S+', 'snapshot of T'), '^[0-9]+ of [0-9]+', 'N of M') AS detail
  FROM storage.health() WHERE check_name IN ('checkpoints', 'wal_rate', 'xmin_horizon', 'archiver')
 ORDER BY 1;
SELECT count(*) FILTER (WHERE line LIKE 'pg_stat_checkpointer_num_requested_total %') AS requested,
       count(*) FILTER (WHERE line LIKE 'pg_stat_wal_bytes_total %') AS wal_bytes,
       count(*) FILTER (WHERE line LIKE 'pg_stat_archiver_failed_count_total %') AS archive_failures,
       count(*) FILTER (WHERE line LIKE 'pg_storage_ext_health_status{check="xmin_horizon"} 0') AS xmin_ok
  FROM regexp_split_to_table(storage.metrics_prometheus(), E'\n') AS line;
-- a snapshot taken, no checkpoint since: too few to judge, ok
SELECT storage.metrics_snapshot() > 0 AS snapshot;
SELECT status, value, detail LIKE '0 of 0 checkpoints requested rather than timed since the snapshot of % (too few to judge); max_wal_size %' AS detail_ok
  FROM storage.health() WHERE check_name = 'checkpoints';

-- custom metrics (issue 39): stored SQL written only by the extension's owner, one query each,
-- run read-only within 1 s as the endpoint's role (never as the superuser collecting them); a
-- failing one is its own sample, never a broken exposition
CREATE ROLE pgse_http IN ROLE pg_monitor;
CREATE TABLE jobs (queue text, state text);
INSERT INTO jobs VALUES ('mail', 'waiting'), ('mail', 'waiting'), ('export', 'waiting'), ('mail', 'done');
GRANT SELECT ON jobs TO pgse_http;
CREATE SEQUENCE metric_seq;
GRANT USAGE ON SEQUENCE metric_seq TO pgse_http;
INSERT INTO storage.custom_metrics (name, help, kind, sql, labels) VALUES
    ('queue_depth', 'jobs waiting per queue', 'gauge', $$SELECT queue, count(*) AS value FROM public.jobs WHERE state = 'waiting' GROUP BY queue$$, '{queue}'),
    ('jobs_done_total', 'jobs done', 'counter', $$SELECT count(*) FILTER (WHERE state = 'done') AS value FROM public.jobs$$, '{}'),
    ('run_as', 'who runs it', 'gauge', $$SELECT current_user::text AS who, current_setting('transaction_read_only') AS ro, 1 AS value$$, '{who,ro}'),
    ('slow', 'over the limit', 'gauge', $$SELECT 1 AS value FROM pg_sleep(3)$$, '{}'),
    ('writer', 'writes', 'gauge', $$SELECT nextval('public.metric_seq') AS value$$, '{}'),
    ('not_a_number', 'bad value', 'gauge', $$SELECT 'many' AS value$$, '{}'),
    ('too_many', 'over 1000 series', 'gauge', $$SELECT g AS value, g AS n FROM generate_series(1, 1001) g$$, '{n}'),
    ('no_access', 'a table the role may not read', 'gauge', $$SELECT count(*) AS value FROM storage._query_stats_last$$, '{}');
SELECT line FROM regexp_split_to_table(storage.metrics_prometheus(), E'\n') AS line
 WHERE line LIKE '%custom%' AND line NOT LIKE 'pg_storage_ext_custom_metric_seconds{%' ORDER BY line;
-- the limit of 1 s, and the caller's settings untouched after the collection
SET statement_timeout = '5s';
SELECT value BETWEEN 0.9 AND 2 AS slow_stopped_at_1s
  FROM storage._custom_metrics_collect() WHERE metric = 'pg_storage_ext_custom_metric_seconds' AND labels = '{"metric": "slow"}';
SELECT current_user = session_user AS same_user, current_setting('transaction_read_only') AS read_only,
       current_setting('statement_timeout') AS statement_timeout, current_setting('search_path') AS search_path;
RESET statement_timeout;
-- kept by the snapshot
SELECT storage.metrics_snapshot() > 0 AS snapshot;
SELECT metric, labels, value FROM storage._metrics_latest
 WHERE metric LIKE 'pg_storage_ext_custom_%' AND metric NOT LIKE 'pg_storage_ext_custom_metric%' ORDER BY 1, 2::text;
-- SQL that would not stay one query is refused when written
SELECT pg_temp.outcome($$INSERT INTO storage.custom_metrics (name, sql) VALUES ('inject', 'SELECT 1 AS value) AS q; DROP TABLE jobs; SELECT (SELECT 1')$$) AS two_statements;
SELECT pg_temp.outcome($$INSERT INTO storage.custom_metrics (name, sql) VALUES ('inject', 'SELECT 1 AS value) AS q WHERE (SELECT true')$$) AS added_clause;
SELECT pg_temp.outcome($$INSERT INTO storage.custom_metrics (name, sql) VALUES ('inject', 'SELECT 1 AS value) AS q UNION SELECT 1 FROM (SELECT 1')$$) AS set_operation;
SELECT pg_temp.outcome($$INSERT INTO storage.custom_metrics (name, sql) VALUES ('inject', 'SELECT 1 AS value --')$$) AS comment_at_the_end;
SELECT pg_temp.outcome($$INSERT INTO storage.custom_metrics (name, sql) VALUES ('inject', 'DELETE FROM jobs RETURNING 1 AS value')$$) AS not_a_query;
SELECT pg_temp.outcome($$INSERT INTO storage.custom_metrics (name, sql) VALUES ('Bad-Name', 'SELECT 1 AS value')$$) AS bad_name;
SELECT pg_temp.outcome($$INSERT INTO storage.custom_metrics (name, kind, sql) VALUES ('done', 'counter', 'SELECT 1 AS value')$$) AS counter_without_total;
SELECT pg_temp.outcome($$INSERT INTO storage.custom_metrics (name, sql, labels) VALUES ('x', 'SELECT 1 AS value', '{__name__}')$$) AS bad_label;
-- only the extension's owner writes them, even with the privilege granted; a pg_monitor role reads them
CREATE ROLE metric_writer LOGIN IN ROLE pg_monitor;
GRANT INSERT, UPDATE, DELETE, TRUNCATE ON storage.custom_metrics TO metric_writer;
SET ROLE metric_writer;
SELECT pg_temp.outcome($$INSERT INTO storage.custom_metrics (name, sql) VALUES ('mine', 'SELECT 1 AS value')$$) AS insert_by_other;
SELECT pg_temp.outcome($$UPDATE storage.custom_metrics SET sql = 'SELECT 2 AS value' WHERE name = 'queue_depth'$$) AS update_by_other;
SELECT pg_temp.outcome($$TRUNCATE storage.custom_metrics$$) AS truncate_by_other;
SELECT count(*) AS readable FROM storage.custom_metrics;
-- the runner of custom metrics, which a pg_monitor role may call, runs nothing as a role it has
-- not the privileges of, nor as a superuser
SELECT pg_temp.outcome($$SELECT storage._custom_metric_rows('SELECT 1 AS value', (SELECT oid FROM pg_roles WHERE rolname = 'pgse_http'), 10, 1000)$$) AS as_another_role;
SELECT pg_temp.outcome($$SELECT storage._custom_metric_rows('SELECT 1 AS value', 10, 10, 1000)$$) AS as_the_bootstrap_superuser;
SELECT storage._custom_metric_rows('SELECT current_user::text AS who, 1 AS value', (SELECT oid FROM pg_roles WHERE rolname = current_user), 10, 1000) AS as_itself;
SELECT count(*) FILTER (WHERE line LIKE 'pg_storage_ext_custom_run_as{%') AS collected_by_monitor,
       count(*) FILTER (WHERE line = 'pg_storage_ext_custom_run_as{ro="on",who="metric_writer"} 1') AS as_itself
  FROM regexp_split_to_table(storage.metrics_prometheus(), E'\n') AS line;
RESET ROLE;
-- what the attacker of custom metrics found: code a metric reaches (a table owner's row policy, a
-- type's cast to json) runs as the endpoint's role under SECURITY_RESTRICTED_OPERATION and
-- cannot take back the collecting superuser's role; a cancel or an assertion it raises, a cancel
-- the limit left pending, a value that is not a number, two rows with the same labels fail that
-- metric only
CREATE ROLE metric_owner;
CREATE SCHEMA app AUTHORIZATION metric_owner;
SET ROLE metric_owner;
CREATE TYPE app.state AS ENUM ('waiting', 'done');
CREATE TABLE app.tasks (id int, state app.state);
INSERT INTO app.tasks VALUES (1, 'waiting'), (2, 'done');
CREATE FUNCTION app.state_json(app.state) RETURNS json LANGUAGE sql AS
    $$SELECT pg_catalog.to_json(current_user || ' ' || (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) || ' ' || $1::text)$$;
CREATE CAST (app.state AS json) WITH FUNCTION app.state_json(app.state);
CREATE TABLE app.escape (id int);
INSERT INTO app.escape VALUES (1);
CREATE FUNCTION app.take_back() RETURNS boolean LANGUAGE plpgsql AS
    $$BEGIN PERFORM pg_catalog.set_config('role', 'none', true); RETURN true; END$$;
CREATE POLICY back ON app.escape USING (app.take_back());
ALTER TABLE app.escape ENABLE ROW LEVEL SECURITY;
CREATE TABLE app.cancel (id int);
INSERT INTO app.cancel VALUES (1);
CREATE FUNCTION app.cancel() RETURNS boolean LANGUAGE plpgsql AS
    $$BEGIN RAISE EXCEPTION 'no metrics for you' USING ERRCODE = 'query_canceled'; END$$;
CREATE POLICY c ON app.cancel USING (app.cancel());
ALTER TABLE app.cancel ENABLE ROW LEVEL SECURITY;
GRANT USAGE ON SCHEMA app TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA app TO PUBLIC;
RESET ROLE;
DELETE FROM storage.custom_metrics;
INSERT INTO storage.custom_metrics (name, sql, labels) VALUES
    ('by_state', 'SELECT state, count(*) AS value FROM app.tasks GROUP BY state', '{state}'),
    ('take_back', 'SELECT count(*) AS value FROM app.escape', '{}'),
    ('cancel', 'SELECT count(*) AS value FROM app.cancel', '{}'),
    ('pending_cancel', $q$SELECT length(md5(repeat(t.x, 4000000))) / 0 AS value FROM (SELECT repeat('x', 64) AS x FROM pg_sleep(0.6) OFFSET 0) t$q$, '{}'),
    ('null_value', 'SELECT NULL::int AS value', '{}'),
    ('same_labels', 'SELECT 1 AS value FROM generate_series(1, 2)', '{}');
SELECT line FROM regexp_split_to_table(storage.metrics_prometheus(), E'\n') AS line
 WHERE line LIKE 'pg_storage_ext_custom_%' AND line NOT LIKE 'pg_storage_ext_custom_metric_seconds{%' AND line NOT LIKE '#%' ORDER BY line;
SELECT current_user = session_user AS same_user, 1 AS next_statement_runs;
-- 5 s for all of them: the seventh of seven taking 0.9 s each (starting 5.4 s in) is not run
DELETE FROM storage.custom_metrics;
INSERT INTO storage.custom_metrics (name, sql)
SELECT 'slow_' || i, 'SELECT 1 AS value FROM pg_sleep(0.9)' FROM generate_series(1, 7) AS i;
SELECT labels ->> 'metric' AS metric, value AS up
  FROM storage._custom_metrics_collect() WHERE metric = 'pg_storage_ext_custom_metric_up' ORDER BY 1;
DELETE FROM storage.custom_metrics;
-- a database that turns standard_conforming_strings off does not break the exposition
SET standard_conforming_strings = off;
SELECT storage.metrics_prometheus() LIKE '%# TYPE pg_storage_ext_health_status gauge%' AS exposition_with_scs_off;
RESET standard_conforming_strings;
DROP SCHEMA app CASCADE;
DROP ROLE metric_owner;
-- without the endpoint's role a superuser does not run them at all
DROP OWNED BY pgse_http;
DROP ROLE pgse_http;
INSERT INTO storage.custom_metrics (name, sql) VALUES ('one', 'SELECT 1 AS value');
SELECT count(*) FILTER (WHERE metric = 'pg_storage_ext_custom_metric_up' AND value = 0) AS not_run,
       count(*) FILTER (WHERE metric NOT LIKE 'pg_storage_ext_custom_metric_%') AS samples
  FROM storage._custom_metrics_collect();
DELETE FROM storage.custom_metrics;
DROP OWNED BY metric_writer;
DROP ROLE metric_writer;
DROP TABLE jobs;
DROP SEQUENCE metric_seq;

-- a monitoring role without superuser: every check answers; those it may not run say why
CREATE ROLE health_monitor IN ROLE pg_monitor;
SET ROLE health_monitor;
SELECT check_name, status, detail FROM storage.health() WHERE status = 'unknown' ORDER BY 1;
SELECT storage.metrics_prometheus() LIKE '%pg_storage_ext_health_status{check="cache_hit_ratio"}%' AS exposition;
SELECT pg_temp.outcome('SELECT storage.metrics_snapshot()') AS snapshot_by_monitor;
RESET ROLE;
DROP ROLE health_monitor;

SELECT audit.disable('posts');
DROP TABLE posts;

-- clean up: the extension's state (the metrics and audit log registrations made above)
DROP EXTENSION pg_storage_ext CASCADE;
CREATE EXTENSION pg_storage_ext;
