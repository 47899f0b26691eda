-- Sub-partitioning: children that are themselves partitioned, by range on the partition column
-- (a step that divides the parent's) or by hash of another column, made with every child
-- (registration, premake, default drain) and gone with it (retention).
\ir ../include/helpers.sql
SET client_min_messages = warning;
SET TimeZone = 'UTC';

-- monthly partitions, each by day
CREATE TABLE readings (sensor int NOT NULL, at timestamptz NOT NULL, v float8) PARTITION BY RANGE (at);
SELECT storage.create_partitions('readings', '1 month', 0, start_from => '2026-02-01', sub_step => '1 day') > 9 AS made;
SELECT c.relkind, pg_get_partkeydef(c.oid) AS key,
       (SELECT count(*) FROM pg_inherits WHERE inhparent = c.oid) AS sub_partitions
  FROM pg_class c WHERE c.oid = 'readings_p20260201'::regclass;
SELECT partition_bound FROM (SELECT pg_get_expr(c.relpartbound, c.oid) AS partition_bound, c.relname
                               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                              WHERE i.inhparent = 'readings_p20260201'::regclass ORDER BY c.relname LIMIT 2) x;
INSERT INTO readings VALUES (1, '2026-02-14 12:00+00', 1.5);
SELECT tableoid::regclass AS leaf FROM readings;
-- a row far ahead waits in the default; maintenance makes its month, sub-partitioned, and moves it
INSERT INTO readings VALUES (2, now() + interval '100 days', 2.5);
SELECT moved_from_default FROM storage.run_maintenance('readings');
SELECT (SELECT count(*) FROM pg_inherits WHERE inhparent = (SELECT inhparent FROM pg_inherits WHERE inhrelid = r.tableoid))
       = extract(day FROM date_trunc('month', r.at) + interval '1 month' - interval '1 day') AS every_day_of_its_month
  FROM readings r WHERE sensor = 2;
-- retention drops whole months with their days
UPDATE storage.partition_config SET retention = '1 month' WHERE parent = 'readings'::regclass;
SELECT dropped > 0 AS dropped_months FROM storage.run_maintenance('readings');
SELECT to_regclass('readings_p20260201') IS NULL AS february_gone,
       to_regclass('readings_p20260201_p20260214') IS NULL AS its_days_gone;

-- retention inside the kept months: days older than 10 days go, their months stay
CREATE TABLE ticks (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT storage.create_partitions('ticks', '1 month', 0, start_from => (now() - interval '40 days')::text, sub_step => '1 day') > 1 AS made;
UPDATE storage.partition_config SET sub_retention = '10 days' WHERE parent = 'ticks'::regclass;
SELECT dropped > 20 AS dropped_old_days FROM storage.run_maintenance('ticks');
SELECT count(*) = 0 AS no_day_older_than_10_days
  FROM storage.partitions('ticks') p CROSS JOIN LATERAL storage._partition_children(p.partition) d
 WHERE d.upper_bound::timestamptz <= now() - interval '10 days';
SELECT count(*) > 0 AS recent_days_kept
  FROM storage.partitions('ticks') p CROSS JOIN LATERAL storage._partition_children(p.partition) d
 WHERE d.upper_bound::timestamptz > now() - interval '10 days';
DROP TABLE ticks;

-- monthly partitions, each hashed by user into 4
CREATE TABLE visits (user_id int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
SELECT storage.create_partitions('visits', '1 month', 1, sub_step => 'hash:4', sub_column => 'user_id') AS made;
INSERT INTO visits SELECT g, current_date FROM generate_series(1, 200) g;
SELECT count(DISTINCT tableoid) AS leaves_used, count(*) AS visits FROM visits;
SELECT sub_step, sub_column FROM storage.partition_config WHERE parent = 'visits'::regclass;

-- what cannot be sub-partitioned
CREATE TABLE w (id int, at date NOT NULL) PARTITION BY RANGE (at);
SELECT pg_temp.outcome($$SELECT storage.create_partitions('w', '1 month', sub_step => '1 week')$$);
SELECT pg_temp.outcome($$SELECT storage.create_partitions('w', '1 month', sub_step => 'hash:4')$$);
SELECT pg_temp.outcome($$SELECT storage.create_partitions('w', '1 month', sub_step => 'hash:1', sub_column => 'id')$$);
SELECT pg_temp.outcome($$SELECT storage.create_partitions('w', '1 month', sub_step => 'hash:4', sub_column => 'nope')$$);
SELECT pg_temp.outcome($$SELECT storage.create_partitions('w', '1 month', sub_step => '1 day', sub_column => 'id')$$);
SELECT pg_temp.outcome($$SELECT storage.create_partitions('w', '1 month', sub_column => 'id')$$);
SELECT count(*) AS nothing_registered FROM storage.partition_config WHERE parent = 'w'::regclass;

DROP TABLE readings, visits, w;
