-- Benchmark harness: times a workload and its baseline in the same run, alternating them,
-- and reports the median of each. Loaded by scripts/bench.sh before every bench/*.sql.
-- Every figure is also kept in bench.results, which scripts/bench.sh prints as one table at the
-- end of the run and writes as CSV. In a quick run (BENCH_QUICK=1, the GUC bench.quick = on)
-- every comparison is timed once: the figures only prove that the workload runs.
CREATE SCHEMA IF NOT EXISTS bench;

CREATE TABLE IF NOT EXISTS bench.results (
    id serial PRIMARY KEY,
    workload text NOT NULL,
    ours double precision,
    baseline double precision,
    unit text NOT NULL,
    ratio double precision,
    goal text,
    met boolean
);

CREATE OR REPLACE FUNCTION bench.time_ms(q text) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;

-- Whether a ratio meets a goal written as '<= 1.3', '>= 0.85', '8x faster' (ratio <= 1/8) or
-- 'not slower' (ratio <= 1); NULL when there is no goal or no ratio.
CREATE OR REPLACE FUNCTION bench.meets(ratio double precision, goal text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE m text[];
BEGIN
    IF goal IS NULL OR ratio IS NULL THEN RETURN NULL; END IF;
    m := regexp_match(goal, '^\s*(<=|>=|<|>)\s*([0-9.]+)');
    IF m IS NOT NULL THEN
        RETURN CASE m[1] WHEN '<=' THEN ratio <= m[2]::float8 WHEN '>=' THEN ratio >= m[2]::float8
                         WHEN '<' THEN ratio < m[2]::float8 ELSE ratio > m[2]::float8 END;
    END IF;
    m := regexp_match(goal, '^\s*([0-9.]+)\s*x faster');
    IF m IS NOT NULL THEN RETURN ratio <= 1 / m[1]::float8; END IF;
    IF goal ~ '^\s*not slower' THEN RETURN ratio <= 1; END IF;
    RAISE EXCEPTION 'bench: goal "%" is not of the form "<= R", ">= R", "Nx faster" or "not slower"', goal;
END $$;

-- assert(ok, message): fails the workload (and so the run) with the message unless ok; for what a
-- workload must have done for its figures to mean anything (a log that holds what it should).
CREATE OR REPLACE FUNCTION bench.assert(ok boolean, message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN RAISE EXCEPTION 'bench: %', message; END IF;
END $$;

-- record(name, ours, baseline, ratio, goal, unit): keeps one figure and returns its line.
CREATE OR REPLACE FUNCTION bench.record(name text, ours double precision, baseline double precision,
                                        ratio double precision, goal text DEFAULT NULL, unit text DEFAULT 'ms')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE ok boolean := bench.meets(ratio, goal);
BEGIN
    INSERT INTO bench.results (workload, ours, baseline, unit, ratio, goal, met)
    VALUES (name, ours, baseline, unit, ratio, goal, ok);
    RETURN format('%s: ours %s %s, baseline %s %s, ratio %s%s', name,
                  round(ours::numeric, 1), unit, round(baseline::numeric, 1), unit, round(ratio::numeric, 3),
                  CASE WHEN goal IS NULL THEN '' ELSE format(' (goal %s: %s)', goal, CASE WHEN ok THEN 'met' ELSE 'not met' END) END);
END $$;

-- compare(name, ours, baseline, reset, runs, goal): `reset` runs (untimed) before each timed
-- statement; the ratio is ours / baseline of the medians.
CREATE OR REPLACE FUNCTION bench.compare(name text, ours text, baseline text, reset text DEFAULT NULL,
                                         runs int DEFAULT 5, goal text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    a double precision[] := '{}';
    b double precision[] := '{}';
    ma double precision;
    mb double precision;
BEGIN
    IF current_setting('bench.quick', true) = 'on' THEN runs := 1; END IF;
    FOR i IN 1..runs LOOP
        IF reset IS NOT NULL THEN EXECUTE reset; END IF;
        a := a || bench.time_ms(ours);
        IF reset IS NOT NULL THEN EXECUTE reset; END IF;
        b := b || bench.time_ms(baseline);
    END LOOP;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO ma FROM unnest(a) x;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO mb FROM unnest(b) x;
    RETURN bench.record(name, ma, mb, ma / nullif(mb, 0), goal);
END $$;
