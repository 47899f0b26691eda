-- Run by bench/citus.sh on a Citus coordinator with two workers (all three on this machine), the
-- harness loaded there. The same table twice: distributed over the two workers (32 shards), and
-- local to the coordinator ("one node": plain PostgreSQL, no Citus in the way).
SELECT (100000 * :scale)::int AS rows \gset
CREATE TABLE bench.c_src AS
SELECT i::bigint AS id, 'Article title number ' || i AS title,
       repeat(md5(i::text), 6) || md5((i * 7)::text) AS body, 0 AS n,
       timestamptz '2026-01-01' + i * interval '1 minute' AS created
  FROM generate_series(1, :rows) AS i;
CREATE TABLE bench.c_local (id bigint PRIMARY KEY, title text, body text, n int, created timestamptz);
CREATE TABLE bench.c_local_bare (LIKE bench.c_local INCLUDING ALL);
CREATE TABLE bench.c_dist (LIKE bench.c_local INCLUDING ALL);
CREATE TABLE bench.c_dist_bare (LIKE bench.c_local INCLUDING ALL);
SELECT create_distributed_table('bench.c_dist', 'id');
SELECT create_distributed_table('bench.c_dist_bare', 'id', colocate_with => 'bench.c_dist');
SELECT audit.enable('bench.c_local'), audit.enable('bench.c_dist');
VACUUM ANALYZE bench.c_src;

-- Bulk INSERT: Citus reads the rows on the coordinator and copies them into the shards, where
-- the capture writes each worker's own log; one node writes its table and log itself.
SELECT bench.compare('Citus: audited INSERT ... SELECT 100k rows, distributed over 2 workers vs one node',
    'INSERT INTO bench.c_dist SELECT * FROM bench.c_src',
    'INSERT INTO bench.c_local SELECT * FROM bench.c_src',
    'TRUNCATE bench.c_dist, bench.c_local', 5);
-- The floor: the same INSERT without audit, distributed vs one node (what Citus costs by itself
-- on this machine, where the coordinator and both workers share its cores)
SELECT bench.compare('Citus: floor, unaudited INSERT ... SELECT 100k rows, distributed over 2 workers vs one node',
    'INSERT INTO bench.c_dist_bare SELECT * FROM bench.c_src',
    'INSERT INTO bench.c_local_bare SELECT * FROM bench.c_src',
    'TRUNCATE bench.c_dist_bare, bench.c_local_bare', 5);
-- What the capture adds in the shards, against what it adds on one node
SELECT bench.compare('Citus: audited vs unaudited INSERT ... SELECT 100k rows, distributed',
    'INSERT INTO bench.c_dist SELECT * FROM bench.c_src',
    'INSERT INTO bench.c_dist_bare SELECT * FROM bench.c_src',
    'TRUNCATE bench.c_dist, bench.c_dist_bare', 5);
SELECT bench.compare('Citus: audited vs unaudited INSERT ... SELECT 100k rows, one node',
    'INSERT INTO bench.c_local SELECT * FROM bench.c_src',
    'INSERT INTO bench.c_local_bare SELECT * FROM bench.c_src',
    'TRUNCATE bench.c_local, bench.c_local_bare', 5);

-- audit.history of one row from the coordinator: a distributed table's rows come from every
-- worker's log (one round trip to each, in parallel: run_command_on_workers, which opens a new
-- connection to each worker every call), one node's from its own. 200 calls each, over rows with
-- an INSERT and an UPDATE logged; the floor is that round trip alone (one call per row of g).
INSERT INTO bench.c_dist SELECT * FROM bench.c_src;
INSERT INTO bench.c_local SELECT * FROM bench.c_src;
UPDATE bench.c_dist SET n = 1 WHERE id % 10 = 0;
UPDATE bench.c_local SET n = 1 WHERE id % 10 = 0;
SELECT bench.compare('Citus: 200 x audit.history of one row from the coordinator, distributed vs one node',
    format('SELECT count(*) FROM generate_series(1, 200) g, audit.history(''bench.c_dist'', jsonb_build_object(''id'', g * 10 %% %s + 1))', :rows),
    format('SELECT count(*) FROM generate_series(1, 200) g, audit.history(''bench.c_local'', jsonb_build_object(''id'', g * 10 %% %s + 1))', :rows),
    NULL, 5);
SELECT bench.compare('Citus: 200 x audit.history of one row from the coordinator, distributed vs its floor (200 x one round trip to every worker)',
    format('SELECT count(*) FROM generate_series(1, 200) g, audit.history(''bench.c_dist'', jsonb_build_object(''id'', g * 10 %% %s + 1))', :rows),
    'SELECT count(*) FROM generate_series(1, 200) g, run_command_on_workers(''SELECT '' || g)',
    NULL, 5);
