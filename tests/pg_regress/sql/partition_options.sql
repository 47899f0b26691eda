-- Per-parent options set in storage.partition_config: a template table for what PostgreSQL does
-- not give partitions (indexes, storage parameters, replica identity), and retention into an
-- archive schema with or without the children's indexes.
\ir ../include/helpers.sql
SET client_min_messages = warning;

CREATE SCHEMA archive;
CREATE TABLE ev (id bigint NOT NULL, at date NOT NULL, code text) PARTITION BY RANGE (at);
CREATE INDEX ev_at ON ev (at);
CREATE TABLE ev_template (id bigint NOT NULL, at date NOT NULL, code text)
    WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.05);
-- unique within each child, without the partition column: a partitioned table cannot have it
CREATE UNIQUE INDEX code_once ON ev_template (code);
ALTER TABLE ev_template REPLICA IDENTITY FULL;
SELECT storage.create_partitions('ev', '1 month', 1, start_from => (current_date - 150)::text) > 4 AS made_children;
CREATE TEMP TABLE old_children AS SELECT partition FROM storage.partitions('ev') WHERE NOT is_default;
INSERT INTO ev SELECT g, current_date - (g % 150), 'c' || g FROM generate_series(1, 300) g;

UPDATE storage.partition_config
   SET template_table = 'ev_template', premake = 3, retention = '2 months',
       retention_schema = 'archive', retention_keep_index = false
 WHERE parent = 'ev'::regclass;
SELECT created = 2 AS premade_two, detached > 0 AS detached_some, dropped FROM storage.run_maintenance('ev');

-- the new children have the template's index, storage parameters and replica identity
SELECT c.reloptions, c.relreplident,
       (SELECT count(*) FROM pg_index x WHERE x.indrelid = c.oid AND x.indisunique) AS unique_indexes,
       (SELECT count(*) FROM pg_index x WHERE x.indrelid = c.oid) AS indexes
  FROM storage.partitions('ev') p JOIN pg_class c ON c.oid = p.partition
 WHERE NOT p.is_default AND p.partition NOT IN (SELECT partition FROM old_children)
 ORDER BY p.lower_bound;
SELECT regexp_replace(pg_temp.outcome($$INSERT INTO ev VALUES (1, current_date + 70, 'dup'), (2, current_date + 70, 'dup')$$),
                      'ev_p[0-9]+', 'ev_pYYYYMMDD') AS duplicate_in_a_child;
-- children past retention are in the archive schema, detached, without indexes
SELECT count(*) > 0 AS archived,
       bool_and(NOT c.relispartition) AS all_detached,
       sum((SELECT count(*) FROM pg_index x WHERE x.indrelid = c.oid)) AS indexes_left
  FROM pg_class c WHERE c.relnamespace = 'archive'::regnamespace AND c.relkind = 'r';
SELECT count(*) < 300 AS some_rows_left_with_the_archive FROM ev;
-- a template that is gone is a clear error for that parent, the others go on
DROP TABLE ev_template;
UPDATE storage.partition_config SET premake = 4 WHERE parent = 'ev'::regclass;
SELECT pg_temp.outcome($$SELECT * FROM storage.run_maintenance('ev')$$);

DROP TABLE ev;
DROP SCHEMA archive CASCADE;

-- retention that drops rows the same run just moved out of the default partition says so
-- (issue 36, F9): a row older than the retention lands in the default, the run makes its child,
-- then retires it, with a WARNING
CREATE TABLE kept (id int, at date NOT NULL) PARTITION BY RANGE (at);
SELECT storage.create_partitions('kept', '1 day', premake => 1, retention => '3 days') > 0 AS created;
INSERT INTO kept VALUES (1, current_date - 30);
\set VERBOSITY terse
SELECT created > 0 AS made, dropped, moved_from_default FROM storage.run_maintenance('kept');
\set VERBOSITY default
SELECT count(*) AS rows_left FROM kept;
DROP TABLE kept;
