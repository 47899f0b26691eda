-- Maintenance benchmark: storage.maintenance_plan() over 10,000 tables (at scale 1; each with a
-- primary key, statistics and a few rows) against the same over 100 tables, in one database.
-- The plan reads statistics and catalogs only, in set-based queries (goal: <= 3x).
SELECT greatest((10000 * :scale)::int, 200) AS tables \gset
CREATE SCHEMA m;
CREATE FUNCTION bench.make_tables(first int, last int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN first..last LOOP
        EXECUTE format('CREATE TABLE m.t%s (id int PRIMARY KEY, v text)', i);
        EXECUTE format('INSERT INTO m.t%s SELECT g, ''v'' FROM generate_series(1, 10) g', i);
    END LOOP;
END $$;
CREATE FUNCTION bench.median_ms(q text) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    t double precision[] := '{}';
BEGIN
    FOR i IN 1..5 LOOP
        t := t || bench.time_ms(q);
    END LOOP;
    RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(t) x);
END $$;
-- the floor: one read of what the plan reads at the least, every table's statistics and every
-- index's catalog row
\set floor 'SELECT count(*) FROM pg_stat_all_tables s JOIN pg_class c ON c.oid = s.relid LEFT JOIN pg_index i ON i.indrelid = c.oid'
SELECT bench.make_tables(1, 100);
ANALYZE;
SELECT bench.median_ms('SELECT count(*) FROM storage.maintenance_plan()') AS small,
       bench.median_ms(:'floor') AS small_floor \gset
SELECT bench.make_tables(101, :tables);
ANALYZE;
SELECT bench.median_ms('SELECT count(*) FROM storage.maintenance_plan()') AS large,
       bench.median_ms(:'floor') AS large_floor \gset
SELECT bench.record(format('maintenance_plan() over %s tables vs over 100 tables', :tables), :large, :small,
                    :large / :small, '<= 3');
SELECT bench.record(format('maintenance floor (reading every table''s statistics once) over %s tables vs over 100 tables', :tables),
                    :large_floor, :small_floor, :large_floor / :small_floor);
SELECT bench.record(format('maintenance_plan() vs its floor, over %s tables', :tables), :large, :large_floor,
                    :large / :large_floor);
