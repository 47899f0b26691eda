-- JSONB benchmarks: JSON Schema CHECK on 100k inserts of blog users.preferences; merge and patch
-- throughput over 100k documents against the nearest SQL expressions.
\set schema '''{"type": "object", "properties": {"theme": {"enum": ["light", "dark", "system"]}, "language": {"type": "string", "minLength": 2, "maxLength": 2}, "timezone": {"type": "string"}, "page_size": {"type": "integer", "minimum": 10, "maximum": 100}, "font_scale": {"type": "number", "minimum": 0.5, "maximum": 2}, "beta": {"type": "boolean"}, "digest": {"enum": ["daily", "weekly", "never"]}, "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10}, "notifications": {"type": "object", "properties": {"email": {"type": "boolean"}, "push": {"type": "boolean"}}}, "home": {"type": "string"}}, "required": ["theme", "language"]}'''

CREATE TABLE bench.prefs_src AS
SELECT jsonb_build_object(
    'theme', (ARRAY['light', 'dark', 'system'])[1 + i % 3], 'language', (ARRAY['en', 'fr', 'de'])[1 + i % 3],
    'timezone', 'Europe/Paris', 'page_size', 10 + i % 90, 'font_scale', 1.0 + (i % 5) / 10.0,
    'beta', i % 2 = 0, 'digest', (ARRAY['daily', 'weekly', 'never'])[1 + i % 3],
    'tags', jsonb_build_array('a' || i % 7, 'b' || i % 11), 'notifications', jsonb_build_object('email', true, 'push', i % 3 = 0),
    'home', '/u/' || i) AS doc
FROM generate_series(1, (100000 * :scale)::int) AS i;

CREATE TABLE bench.p_plain (doc jsonb);
CREATE TABLE bench.p_ours (doc jsonb CHECK (storage.json_schema_valid(:schema, doc)));
CREATE TABLE bench.p_sql (doc jsonb CHECK (
    jsonb_typeof(doc) = 'object' AND doc ? 'theme' AND doc ? 'language'
    AND doc->>'theme' IN ('light', 'dark', 'system')
    AND jsonb_typeof(doc->'language') = 'string' AND length(doc->>'language') = 2
    AND (NOT doc ? 'timezone' OR jsonb_typeof(doc->'timezone') = 'string')
    AND (NOT doc ? 'page_size' OR (jsonb_typeof(doc->'page_size') = 'number' AND (doc->>'page_size')::numeric % 1 = 0
         AND (doc->>'page_size')::numeric BETWEEN 10 AND 100))
    AND (NOT doc ? 'font_scale' OR (jsonb_typeof(doc->'font_scale') = 'number' AND (doc->>'font_scale')::numeric BETWEEN 0.5 AND 2))
    AND (NOT doc ? 'beta' OR jsonb_typeof(doc->'beta') = 'boolean')
    AND (NOT doc ? 'digest' OR doc->>'digest' IN ('daily', 'weekly', 'never'))
    AND (NOT doc ? 'tags' OR (jsonb_typeof(doc->'tags') = 'array' AND jsonb_array_length(doc->'tags') <= 10
         AND NOT jsonb_path_exists(doc->'tags', '$[*] ? (@.type() != "string")')))
    AND (NOT doc ? 'notifications' OR (jsonb_typeof(doc->'notifications') = 'object'
         AND coalesce(jsonb_typeof(doc->'notifications'->'email'), 'boolean') = 'boolean'
         AND coalesce(jsonb_typeof(doc->'notifications'->'push'), 'boolean') = 'boolean'))
    AND (NOT doc ? 'home' OR jsonb_typeof(doc->'home') = 'string')));
VACUUM ANALYZE bench.prefs_src;

SELECT bench.compare('json_schema CHECK insert 100k, one-column table, vs no CHECK',
    'INSERT INTO bench.p_ours SELECT doc FROM bench.prefs_src', 'INSERT INTO bench.p_plain SELECT doc FROM bench.prefs_src',
    'TRUNCATE bench.p_ours, bench.p_plain', 5, '<= 1.3');
SELECT bench.compare('json_schema CHECK insert 100k, one-column table, vs hand-written SQL CHECK',
    'INSERT INTO bench.p_ours SELECT doc FROM bench.prefs_src', 'INSERT INTO bench.p_sql SELECT doc FROM bench.prefs_src',
    'TRUNCATE bench.p_ours, bench.p_sql', 5, 'not slower');
SELECT bench.compare('json_schema CHECK insert 100k, one-column table, cached vs compile per call',
    'INSERT INTO bench.p_ours SELECT doc FROM bench.prefs_src',
    $$SELECT set_config('pg_storage_ext.json_schema_cache_size', '0', true); INSERT INTO bench.p_ours SELECT doc FROM bench.prefs_src; SELECT set_config('pg_storage_ext.json_schema_cache_size', '64', true)$$,
    'TRUNCATE bench.p_ours', 3, '8x faster');

-- The same documents into two wider tables: the users table reduced to its key and preferences,
-- and the blog's users table as examples/blog/migrations/0001_users.sql defines it (unique username and email,
-- a partial index, a GIN index on preferences). The CHECK's cost is the same per row; what the
-- ratios show is how much of an insert it is.
CREATE TABLE bench.u_src AS
SELECT 'user' || i AS username, 'user' || i || '@example.com' AS email, 'User ' || i AS display_name, doc
FROM (SELECT row_number() OVER () AS i, doc FROM bench.prefs_src) AS s;
VACUUM ANALYZE bench.u_src;
CREATE TABLE bench.k_plain (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, preferences jsonb NOT NULL);
CREATE TABLE bench.k_ours (LIKE bench.k_plain INCLUDING ALL);
ALTER TABLE bench.k_ours ADD CHECK (storage.json_schema_valid(:schema, preferences));
CREATE TABLE bench.users_plain (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, username text NOT NULL UNIQUE, email text NOT NULL UNIQUE,
    display_name text, is_active boolean NOT NULL DEFAULT true, preferences jsonb NOT NULL DEFAULT '{}',
    social_links jsonb NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON bench.users_plain (email) WHERE is_active;
CREATE INDEX ON bench.users_plain USING gin (preferences jsonb_path_ops);
CREATE TABLE bench.users_ours (LIKE bench.users_plain INCLUDING ALL);
ALTER TABLE bench.users_ours ADD CHECK (storage.json_schema_valid(:schema, preferences));

SELECT bench.compare('json_schema CHECK insert 100k users(id, preferences) vs no CHECK',
    'INSERT INTO bench.k_ours (preferences) SELECT doc FROM bench.prefs_src', 'INSERT INTO bench.k_plain (preferences) SELECT doc FROM bench.prefs_src',
    'TRUNCATE bench.k_ours, bench.k_plain', 5, '<= 1.3');
SELECT bench.compare('json_schema CHECK insert 100k users(id, preferences), cached vs compile per call',
    'INSERT INTO bench.k_ours (preferences) SELECT doc FROM bench.prefs_src',
    $$SELECT set_config('pg_storage_ext.json_schema_cache_size', '0', true); INSERT INTO bench.k_ours (preferences) SELECT doc FROM bench.prefs_src; SELECT set_config('pg_storage_ext.json_schema_cache_size', '64', true)$$,
    'TRUNCATE bench.k_ours', 3, '8x faster');
SELECT bench.compare('json_schema CHECK insert 100k blog users (5 indexes) vs no CHECK',
    'INSERT INTO bench.users_ours (username, email, display_name, preferences) SELECT username, email, display_name, doc FROM bench.u_src',
    'INSERT INTO bench.users_plain (username, email, display_name, preferences) SELECT username, email, display_name, doc FROM bench.u_src',
    'TRUNCATE bench.users_ours, bench.users_plain', 3, '<= 1.3');
SELECT bench.compare('json_schema CHECK insert 100k blog users (5 indexes), cached vs compile per call',
    'INSERT INTO bench.users_ours (username, email, display_name, preferences) SELECT username, email, display_name, doc FROM bench.u_src',
    $$SELECT set_config('pg_storage_ext.json_schema_cache_size', '0', true); INSERT INTO bench.users_ours (username, email, display_name, preferences) SELECT username, email, display_name, doc FROM bench.u_src; SELECT set_config('pg_storage_ext.json_schema_cache_size', '64', true)$$,
    'TRUNCATE bench.users_ours', 3, '8x faster');
DROP TABLE bench.u_src, bench.k_plain, bench.k_ours, bench.users_plain, bench.users_ours;

SELECT bench.compare('jsonb_merge_deep 100k vs shallow ||',
    $$SELECT count(storage.jsonb_merge_deep(doc, '{"notifications": {"push": true}, "beta": false}')) FROM bench.prefs_src$$,
    $$SELECT count(doc || '{"notifications": {"push": true}, "beta": false}') FROM bench.prefs_src$$, NULL, 5, '<= 1.2');
SELECT bench.compare('jsonb_merge_deep 100k vs nested jsonb_set',
    $$SELECT count(storage.jsonb_merge_deep(doc, '{"notifications": {"push": true}, "beta": false}')) FROM bench.prefs_src$$,
    $$SELECT count(jsonb_set(jsonb_set(doc, '{notifications,push}', 'true'), '{beta}', 'false')) FROM bench.prefs_src$$);
SELECT bench.compare('jsonb_patch 100k vs jsonb_set/#- chain',
    $$SELECT count(storage.jsonb_patch(doc, '[{"op": "replace", "path": "/theme", "value": "dark"}, {"op": "remove", "path": "/home"}, {"op": "add", "path": "/tags/-", "value": "z"}]')) FROM bench.prefs_src$$,
    $$SELECT count(jsonb_insert(jsonb_set(doc, '{theme}', '"dark"') #- '{home}', '{tags,-1}', '"z"', true)) FROM bench.prefs_src$$, NULL, 5, '<= 1.2');

-- jsonb_diff of two ~390-byte documents (three members changed, one of them nested, one
-- removed), microseconds per call net of the scan that feeds it. In cache: each pair diffed 10
-- times in a row (what the function costs; the 1 µs goal). From the table: each pair once, the
-- documents coming from 75 MB of rows, where reading them is most of the cost: its floor is
-- core's `=` reading both documents whole (a = a AND b = b; `a = b` is no floor, it stops at the
-- differing member counts), and core's `||` on the same pairs is shown beside it.
CREATE TABLE bench.diff_pairs AS
SELECT a, jsonb_set(jsonb_set(a, '{theme}', '"dark"'), '{notifications,push}', 'false') - 'home' AS b
FROM (SELECT doc || jsonb_build_object('bio', repeat('x', 122)) AS a FROM bench.prefs_src) AS s;
VACUUM ANALYZE bench.diff_pairs;
DO $$
DECLARE
    hot float8[] := '{}'; hot0 float8[] := '{}'; d float8[] := '{}'; e float8[] := '{}';
    c float8[] := '{}'; s float8[] := '{}';
    n bigint; bytes int; mhot float8; mhot0 float8; md float8; me float8; mc float8; ms float8;
    runs int := CASE WHEN current_setting('bench.quick', true) = 'on' THEN 1 ELSE 5 END;
BEGIN
    SELECT count(*), avg(pg_column_size(a))::int INTO n, bytes FROM bench.diff_pairs;
    FOR i IN 1..runs LOOP
        hot := hot || bench.time_ms('SELECT count(storage.jsonb_diff(a, b)) FROM bench.diff_pairs, generate_series(1, 10)');
        hot0 := hot0 || bench.time_ms('SELECT count(*) FILTER (WHERE a IS NOT NULL AND b IS NOT NULL) FROM bench.diff_pairs, generate_series(1, 10)');
        d := d || bench.time_ms('SELECT count(storage.jsonb_diff(a, b)) FROM bench.diff_pairs');
        e := e || bench.time_ms('SELECT count(*) FILTER (WHERE a = a AND b = b) FROM bench.diff_pairs');
        c := c || bench.time_ms('SELECT count(a || b) FROM bench.diff_pairs');
        s := s || bench.time_ms('SELECT count(*) FILTER (WHERE a IS NOT NULL AND b IS NOT NULL) FROM bench.diff_pairs');
    END LOOP;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO mhot FROM unnest(hot) x;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO mhot0 FROM unnest(hot0) x;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO md FROM unnest(d) x;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO me FROM unnest(e) x;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO mc FROM unnest(c) x;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) INTO ms FROM unnest(s) x;
    PERFORM bench.record(format('jsonb_diff of two %s-byte documents in cache: µs per call vs the 1 µs goal', bytes),
                         (mhot - mhot0) * 1000 / (10 * n), 1, (mhot - mhot0) * 1000 / (10 * n), '<= 1', 'µs');
    PERFORM bench.record('jsonb_diff from a 100k-row table vs its floor, core = reading both documents (µs per call, net of the scan)',
                         (md - ms) * 1000 / n, (me - ms) * 1000 / n, (md - ms) / nullif(me - ms, 0), NULL, 'µs');
    PERFORM bench.record('jsonb_diff from a 100k-row table vs core || on the same pairs (µs per call, net of the scan)',
                         (md - ms) * 1000 / n, (mc - ms) * 1000 / n, (md - ms) / nullif(mc - ms, 0), NULL, 'µs');
END $$;
SELECT format('%s: %s µs vs %s µs, ratio %s', workload, round(ours::numeric, 3), round(baseline::numeric, 3), round(ratio::numeric, 3))
FROM bench.results WHERE workload LIKE 'jsonb_diff%';
DROP TABLE bench.diff_pairs;

DROP TABLE bench.prefs_src, bench.p_plain, bench.p_ours, bench.p_sql;
