-- JSONB: deep merge, merge patch, diff, JSON Patch, operators.
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE;
END $$;

-- deep merge
SELECT storage.jsonb_merge_deep('{"a": {"x": 1, "y": 2}, "b": 1}', '{"a": {"y": 3, "z": 4}, "c": null}');
SELECT '{"a": {"x": 1}}'::jsonb OPERATOR(storage.||+) '{"a": {"y": [1, 2]}}';
SELECT storage.jsonb_merge_deep('{"a": [1, 2]}', '{"a": [3]}'), storage.jsonb_merge_deep('{"a": 1}', '[1]');
SELECT storage.jsonb_merge_deep(NULL, '{}') IS NULL AS strict;
-- numbers keep their digits, unicode and escapes survive
SELECT storage.jsonb_merge_deep('{"n": 1.50, "big": 123456789012345678901234567890.000001}', '{"s": "é\"\\\u0001"}');
SELECT storage.jsonb_merge_deep('"scalar"', 'true'), storage.jsonb_merge_deep('{}', '12.0');

-- RFC 7396 merge patch
SELECT storage.jsonb_merge_patch('{"a": "b", "c": {"d": "e", "f": "g"}}', '{"a": "z", "c": {"f": null}}');
SELECT storage.jsonb_merge_patch('{"a": "foo"}', 'null'), storage.jsonb_merge_patch('[1, 2]', '{"a": "b", "c": null}');

-- diff: merge_patch(a, diff(a, b)) = b
SELECT storage.jsonb_diff('{"a": 1, "b": 2, "c": {"x": 1, "y": 2}}', '{"a": 1, "b": 3, "c": {"x": 1}, "d": [1]}');
SELECT '{"a": 1}'::jsonb OPERATOR(storage.~>) '{"a": 1.0}' AS numerically_equal_is_no_change;
WITH pairs(a, b) AS (VALUES
    ('{"a": 1, "b": {"c": [1, 2], "d": "x"}}'::jsonb, '{"b": {"c": [2], "e": true}, "f": "new"}'::jsonb),
    ('[1, 2, 3]', '{"x": [null]}'),
    ('{"k": "v"}', '"s"'),
    ('{"p": {"q": {"r": 1}}}', '{"p": {"q": {"r": 2, "s": {}}}}'))
SELECT a, b, storage.jsonb_merge_patch(a, storage.jsonb_diff(a, b)) = b AS round_trips FROM pairs ORDER BY a::text;
-- the one case RFC 7396 cannot express: setting a member to null (the patch deletes it instead)
SELECT storage.jsonb_diff('{"a": 1}', '{"a": null}') AS patch,
       storage.jsonb_merge_patch('{"a": 1}', storage.jsonb_diff('{"a": 1}', '{"a": null}')) AS applied;

-- RFC 6902 JSON Patch
SELECT storage.jsonb_patch('{"foo": ["bar", "baz"], "q": {"r": 1}}', '[
    {"op": "add", "path": "/foo/1", "value": "qux"},
    {"op": "add", "path": "/foo/-", "value": "end"},
    {"op": "remove", "path": "/q/r"},
    {"op": "replace", "path": "/q", "value": {"new": true}},
    {"op": "copy", "from": "/foo/0", "path": "/first"},
    {"op": "move", "from": "/first", "path": "/q/moved"},
    {"op": "test", "path": "/foo/0", "value": "bar"}]');
SELECT storage.jsonb_patch('{"a/b": 1, "m~n": 2}', '[{"op": "replace", "path": "/a~1b", "value": 10}, {"op": "remove", "path": "/m~0n"}]');
SELECT storage.jsonb_patch('{"a": 1}', '[{"op": "replace", "path": "", "value": [1]}]');
-- errors name the operation index and pointer; nothing is half-applied
SELECT storage.jsonb_patch('{"a": 1}', '[{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 2}]');
SELECT storage.jsonb_patch('{"a": [1]}', '[{"op": "remove", "path": "/a/3"}]');
SELECT storage.jsonb_patch('{"a": 1}', '[{"op": "add", "path": "a", "value": 1}]');
SELECT storage.jsonb_patch('{"a": 1}', '[{"op": "add", "path": "/a~2", "value": 1}]');
SELECT storage.jsonb_patch('{"a": 1}', '[{"op": "frobnicate", "path": "/a"}]');
SELECT storage.jsonb_patch('{"a": 1}', '{"op": "add", "path": "/a", "value": 1}');
SELECT storage.jsonb_patch('{"a": {"b": 1}}', '[{"op": "move", "from": "/a", "path": "/a/b/c"}]');
SELECT storage.jsonb_patch('{"a": 1}', '[{"op": "add", "path": "/b"}]');
SELECT pg_temp.sqlstate_of($$SELECT storage.jsonb_patch('{}', '[{"op": "remove", "path": "/x"}]')$$);

-- stored documents: a table of preferences updated with each function
CREATE TABLE prefs (id int PRIMARY KEY, doc jsonb NOT NULL);
INSERT INTO prefs VALUES (1, '{"theme": "light", "n": {"email": true}}'), (2, '{"theme": "dark"}');
UPDATE prefs SET doc = doc OPERATOR(storage.||+) '{"n": {"push": false}}';
SELECT id, doc FROM prefs ORDER BY id;
DROP TABLE prefs;
