-- Benchmark harness: times a workload and its baseline in the same run, alternating them,
-- and reports the median of each. Loaded by scripts/bench.sh before every bench/*.sql.
CREATE SCHEMA IF NOT EXISTS bench;

CREATE OR REPLACE FUNCTION bench.time_ms(q text) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;

-- compare(name, ours, baseline, reset, runs): `reset` runs (untimed) before each timed statement.
CREATE OR REPLACE FUNCTION bench.compare(name text, ours text, baseline text, reset text DEFAULT NULL, runs int DEFAULT 5)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    a double precision[] := '{}';
    b double precision[] := '{}';
    ma double precision;
    mb double precision;
BEGIN
    FOR i IN 1..runs LOOP
        IF reset IS NOT NULL THEN EXECUTE reset; END IF;
        a := a || bench.time_ms(ours);
        IF reset IS NOT NULL THEN EXECUTE reset; END IF;
        b := b || bench.time_ms(baseline);
    END LOOP;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO ma FROM unnest(a) x;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO mb FROM unnest(b) x;
    RETURN format('%s: ours %s ms, baseline %s ms, ratio %s', name,
                  round(ma::numeric, 1), round(mb::numeric, 1), round((ma / nullif(mb, 0))::numeric, 2));
END $$;
