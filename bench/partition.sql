-- Partitions against pg_partman (built from Debian's pg-partman source by scripts/bench.sh), both
-- in this cluster, daily partitions on timestamptz, default partition on, premake 4:
-- (1) create ~1,000 daily partitions on one parent,
-- (2) maintenance of 100 registered parents with nothing to do,
-- (3) maintenance of 100 parents each missing its newest child (and in bench/partition.sh the
-- same with the procedures that commit after each parent).
CREATE SCHEMA IF NOT EXISTS partman;
CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;
SET client_min_messages = warning;
-- sizes: 1,000 children and 100 parents (a quick run: 50 and 5)
SELECT greatest(50, (1000 * :scale)::int) AS children, greatest(5, (100 * :scale)::int) AS parents \gset

CREATE FUNCTION bench.part_parent(name text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM storage.partition_config WHERE parent = to_regclass(quote_ident(name));
    DELETE FROM partman.part_config WHERE parent_table = 'public.' || name;
    EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', name);
    EXECUTE format('CREATE TABLE %I (id bigint NOT NULL, at timestamptz NOT NULL, v text) PARTITION BY RANGE (at)', name);
    EXECUTE format('CREATE INDEX ON %I (id)', name);
END $$;

-- (1) 1,000 daily children: from 995 days ago to 4 days ahead (+ a default partition)
SELECT (:children - 5) || ' days' AS back \gset
SELECT bench.compare('partition create 1000 daily children vs pg_partman create_parent',
    format($$SELECT storage.create_partitions('bench_ours', '1 day', 4, (now() - interval %L)::text)$$, :'back'),
    format($$SELECT partman.create_parent('public.bench_pm', 'at', '1 day', p_premake := 4,
                                   p_start_partition := (now() - interval %L)::text)$$, :'back'),
    $$SELECT bench.part_parent('bench_ours'), bench.part_parent('bench_pm')$$, 3, '2x faster');
SELECT format('children per run: ours %s, pg_partman %s',
              storage.create_partitions('bench_ours', '1 day', 4, (now() - :'back'::interval)::text),
              (SELECT count(*) FROM pg_inherits WHERE inhparent = 'bench_pm'::regclass));
SELECT bench.part_parent('bench_ours'), bench.part_parent('bench_pm');
DROP TABLE bench_ours, bench_pm;

-- 100 parents each side, a few rows each
SELECT set_config('bench.parents', :'parents', false) IS NULL AS _ \gset
DO $$
BEGIN
    FOR i IN 1 .. current_setting('bench.parents')::int LOOP
        PERFORM bench.part_parent('ours_' || i);
        PERFORM storage.create_partitions(('ours_' || i)::regclass, '1 day', 4);
        EXECUTE format('INSERT INTO %I SELECT g, now() - g * interval ''1 hour'', ''x'' FROM generate_series(0, 9) g', 'ours_' || i);
        PERFORM bench.part_parent('pm_' || i);
        PERFORM partman.create_parent('public.pm_' || i, 'at', '1 day', p_premake := 4);
        EXECUTE format('INSERT INTO %I SELECT g, now() - g * interval ''1 hour'', ''x'' FROM generate_series(0, 9) g', 'pm_' || i);
    END LOOP;
END $$;
ANALYZE;
SELECT count(*) AS warm_up FROM storage.run_maintenance() AS ours, partman.run_maintenance() AS pm \gset

-- (2) nothing to do
SELECT bench.compare('partition maintenance, 100 parents, nothing to do vs pg_partman run_maintenance',
    $$SELECT count(*) FROM storage.run_maintenance()$$,
    $$SELECT partman.run_maintenance()$$, NULL, 7, '5x faster');

-- (3) each parent misses its newest child (dropped before every timed run)
CREATE FUNCTION bench.drop_newest(prefix text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    victim regclass;
BEGIN
    -- only where the newest child is there, so each side misses exactly one when it runs
    FOR i IN 1 .. current_setting('bench.parents')::int LOOP
        victim := to_regclass(prefix || i || '_p' || to_char(now() + interval '4 days', 'YYYYMMDD'));
        IF victim IS NOT NULL THEN
            EXECUTE format('DROP TABLE %s', victim);
        END IF;
    END LOOP;
END $$;
SELECT bench.compare('partition maintenance, 100 parents, one child each vs pg_partman run_maintenance',
    $$SELECT count(*) FROM storage.run_maintenance()$$,
    $$SELECT partman.run_maintenance()$$,
    $$SELECT bench.drop_newest('ours_'), bench.drop_newest('pm_')$$, 5, 'not slower');
SELECT format('children after (3): ours %s, pg_partman %s',
              (SELECT count(*) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhparent WHERE c.relname LIKE 'ours\_%'),
              (SELECT count(*) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhparent WHERE c.relname LIKE 'pm\_%'));
