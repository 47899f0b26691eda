-- JSON Schema conformance: the official JSON Schema Test Suite (drafts 4, 6, 7, 2019-09 and
-- 2020-12: every required test and the optional format tests), loaded by bench/json_suite.sh.
-- Each case runs storage.json_schema_valid(schema, data) against the suite's expected answer; a
-- schema the function refuses counts as a wrong answer, classified by why.
CREATE TABLE bench.suite (
    draft text NOT NULL,
    file text NOT NULL,
    optional boolean NOT NULL,
    description text NOT NULL,
    schema jsonb NOT NULL,
    data jsonb NOT NULL,
    valid boolean NOT NULL
);

-- 'pass', or why not: 'remote $ref' (never fetched: the documented refusal), 'format asserted'
-- (a required format.json test, which expects format as an annotation: asserting it is the
-- documented default), 'wrong' (anything else).
CREATE FUNCTION bench.suite_outcome(s bench.suite) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    got boolean;
    h text;
BEGIN
    got := storage.json_schema_valid(s.schema, s.data);
    IF got = s.valid THEN
        RETURN 'pass';
    END IF;
    RETURN CASE WHEN NOT s.optional AND s.file = 'format.json' THEN 'format asserted' ELSE 'wrong' END;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    RETURN CASE WHEN h LIKE 'Remote $ref documents are never fetched%' THEN 'remote $ref' ELSE 'wrong' END;
END $$;
