-- Health: storage.health() must not work per table. Its time with 100 application tables, then
-- with 10,000 tables (each with an identity sequence) and 10 partitioned parents of 50 children
-- (500 partitions) registered with the partition capability; and what the every-minute
-- metrics_snapshot() costs as a share of one core. Quick runs use fewer tables.
SELECT greatest(120, (10000 * :scale)::int) AS many, greatest(2, (10 * :scale)::int) AS parents \gset
SELECT set_config('bench.parents', :'parents', false);
CREATE SCHEMA app;
DO $$ BEGIN
    FOR i IN 1 .. 100 LOOP
        EXECUTE format('CREATE TABLE app.t%s (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)', i);
    END LOOP;
END $$;
SELECT storage.metrics_snapshot() > 0 AS sampled;   -- rates against a snapshot: no 100 ms CPU sample
CREATE TEMP TABLE small AS SELECT bench.time_ms('SELECT count(*) FROM storage.health()') AS ms FROM generate_series(1, 7);

-- the big catalog, in batches of 1,000 tables a transaction
CREATE PROCEDURE app.make(n int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 101 .. n LOOP
        EXECUTE format('CREATE TABLE app.t%s (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)', i);
        IF i % 1000 = 0 THEN COMMIT; END IF;
    END LOOP;
END $$;
CALL app.make(:many);
DO $$ BEGIN
    FOR p IN 1 .. current_setting('bench.parents')::int LOOP
        EXECUTE format('CREATE TABLE app.p%s (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at)', p);
        PERFORM storage.create_partitions(format('app.p%s', p)::regclass, '1 day', premake => 49 - 1,
                                          start_from => to_char(now() - interval '1 day', 'YYYY-MM-DD'));
    END LOOP;
END $$;
SELECT count(*) AS tables FROM pg_class WHERE relnamespace = 'app'::regnamespace AND relkind IN ('r', 'p');
SELECT storage.metrics_snapshot() > 0 AS sampled;
CREATE TEMP TABLE big AS SELECT bench.time_ms('SELECT count(*) FROM storage.health()') AS ms FROM generate_series(1, 7);
SELECT bench.record(format('health(), %s tables and %s partitions vs 100 tables', (SELECT count(*) FROM pg_class WHERE relnamespace = 'app'::regnamespace AND relkind = 'r'),
                           (SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relnamespace = 'app'::regnamespace)),
                    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM big),
                    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM small),
                    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM big) / (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM small),
                    '<= 3');
-- one snapshot a minute: its time against 1 % of a minute (600 ms)
CREATE TEMP TABLE snap AS SELECT bench.time_ms('SELECT storage.metrics_snapshot()') AS ms FROM generate_series(1, 5);
SELECT bench.record('metrics_snapshot() every minute with the big catalog vs 1 % of one core (600 ms a minute)',
                    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM snap), 600,
                    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM snap) / 600, '<= 1');
