-- JSON Schema: validity, error lists with paths, CHECK constraints, drafts, formats, bad schemas.
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE;
END $$;

SELECT storage.json_schema_valid('{"type": "object", "required": ["a"]}', '{"a": 1}') AS valid,
       storage.json_schema_valid('{"type": "object", "required": ["a"]}', '{"b": 1}') AS invalid;
SELECT * FROM storage.json_schema_errors(
    '{"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}, "age": {"minimum": 0}}}',
    '{"tags": ["a", 2, "c", false], "age": -1}') ORDER BY instance_path, schema_path;
SELECT count(*) AS no_errors_when_valid FROM storage.json_schema_errors('{"type": "string"}', '"x"');

-- drafts by $schema (2020-12 by default)
SELECT storage.json_schema_valid('{"$schema": "http://json-schema.org/draft-04/schema#", "maximum": 5, "exclusiveMaximum": true}', '5') AS draft4,
       storage.json_schema_valid('{"$schema": "http://json-schema.org/draft-06/schema#", "exclusiveMaximum": 5}', '5') AS draft6,
       storage.json_schema_valid('{"$schema": "http://json-schema.org/draft-07/schema#", "if": {"type": "string"}, "then": {"minLength": 2}}', '"a"') AS draft7,
       storage.json_schema_valid('{"$schema": "https://json-schema.org/draft/2019-09/schema", "dependentRequired": {"a": ["b"]}}', '{"a": 1}') AS draft2019,
       storage.json_schema_valid('{"prefixItems": [{"type": "string"}]}', '[1]') AS draft2020,
       storage.json_schema_valid('{"$schema": "http://json-schema.org/draft-07/schema#", "prefixItems": [{"type": "string"}]}', '[1]') AS draft7_has_no_prefixitems;

-- formats are asserted by default, annotations only when the setting is off
SELECT storage.json_schema_valid('{"format": "email"}', '"nope"') AS email,
       storage.json_schema_valid('{"format": "date-time"}', '"2026-11-22T10:00:00Z"') AS datetime,
       storage.json_schema_valid('{"format": "uuid"}', '"not-a-uuid"') AS uuid,
       storage.json_schema_valid('{"format": "ipv4"}', '"10.0.0.300"') AS ipv4;
-- internationalized host names and addresses are checked too (IDNA 2008, UTS 46)
SELECT storage.json_schema_valid('{"format": "idn-hostname"}', '"실례.테스트"') AS idn_hostname,
       storage.json_schema_valid('{"format": "idn-hostname"}', '"〮실례.테스트"') AS idn_hostname_bad_mark,
       storage.json_schema_valid('{"format": "idn-email"}', '"실례@실례.테스트"') AS idn_email,
       storage.json_schema_valid('{"format": "idn-email"}', '"2962"') AS idn_email_no_at;
SET pg_storage_ext.json_schema_formats = off;
SELECT storage.json_schema_valid('{"format": "email"}', '"nope"') AS email_unchecked;
RESET pg_storage_ext.json_schema_formats;

-- the schema itself
SELECT storage.json_schema_is_valid('{"type": "object"}') AS ok, storage.json_schema_is_valid('{"type": 12}') AS bad_type,
       storage.json_schema_is_valid('{"minimum": "x"}') AS bad_minimum;
SELECT storage.json_schema_valid('{"type": 12}', '1');
SELECT storage.json_schema_valid('{"$ref": "https://example.com/schemas/user.json"}', '{}');
-- a schema whose only fault is a remote $ref is not "invalid" to json_schema_is_valid either: the
-- same error, and the hint names where its own draft keeps local definitions
SELECT storage.json_schema_is_valid('{"$ref": "https://example.com/schemas/user.json"}');
SELECT storage.json_schema_is_valid('{"$schema": "http://json-schema.org/draft-07/schema#", "$ref": "https://example.com/u.json"}');
SELECT pg_temp.sqlstate_of($$SELECT storage.json_schema_valid('{"type": "nonsense"}', '1')$$);
SELECT storage.json_schema_valid('{"$defs": {"pos": {"minimum": 0}}, "properties": {"n": {"$ref": "#/$defs/pos"}}}', '{"n": -1}') AS local_ref;

-- numeric bounds are exact over decimals of any length (jsonb numbers are numeric)
SELECT storage.json_schema_valid('{"maximum": 100}', '100.00000000000000001') AS just_above_max,
       storage.json_schema_valid('{"maximum": 100}', '100.000') AS max_itself,
       storage.json_schema_valid('{"minimum": 0.5}', '0.49999999999999999999') AS just_below_min,
       storage.json_schema_valid('{"exclusiveMaximum": 0.3}', '0.29999999999999999999') AS just_below_exclusive,
       storage.json_schema_valid('{"exclusiveMaximum": 0.3}', '0.3') AS exclusive_itself,
       storage.json_schema_valid('{"maximum": 1e300}', '1e400') AS beyond_binary64,
       storage.json_schema_valid('{"minimum": -18446744073709551616}', '-18446744073709551617') AS below_big_negative,
       storage.json_schema_valid('{"$schema": "http://json-schema.org/draft-04/schema#", "minimum": 1, "exclusiveMinimum": false}', '1') AS draft4_inclusive;
SELECT * FROM storage.json_schema_errors('{"properties": {"a": {"maximum": 1.5}, "b": {"exclusiveMinimum": 0}}}', '{"a": 1.50000000000000000001, "b": 0}')
ORDER BY instance_path, schema_path;

-- documents read where they are stored: short values (1-byte header) and long compressed ones
CREATE TABLE docs (id int PRIMARY KEY, doc jsonb);
ALTER TABLE docs ALTER COLUMN doc SET STORAGE main;
INSERT INTO docs VALUES (1, '{"n": 1}'), (2, '{"n": "x"}'),
    (3, jsonb_build_object('n', 2, 'pad', repeat('ab', 5000))), (4, jsonb_build_object('n', 'y', 'pad', repeat('ab', 5000)));
SELECT id, storage.json_schema_valid('{"properties": {"n": {"type": "integer"}, "pad": {"type": "string", "minLength": 10000}}}', doc) AS valid
FROM docs ORDER BY id;
CREATE TABLE schemas (name text PRIMARY KEY, schema jsonb NOT NULL);
INSERT INTO schemas VALUES ('int', '{"type": "integer"}'), ('str', '{"type": "string"}');
SELECT d.id, s.name, storage.json_schema_valid(s.schema, d.doc -> 'n') AS valid
FROM docs AS d CROSS JOIN schemas AS s ORDER BY d.id, s.name;
DROP TABLE docs, schemas;

-- CHECK constraint that names what failed
CREATE TABLE accounts (id int PRIMARY KEY, preferences jsonb NOT NULL,
  CONSTRAINT preferences_schema CHECK (storage.json_schema_check(
    '{"type": "object", "properties": {"theme": {"enum": ["light", "dark"]}, "page_size": {"type": "integer", "maximum": 100}}, "required": ["theme"]}',
    preferences)));
INSERT INTO accounts VALUES (1, '{"theme": "light", "page_size": 20}');
INSERT INTO accounts VALUES (2, '{"theme": "neon", "page_size": 500}');
INSERT INTO accounts VALUES (3, '{"page_size": 5}');
SELECT pg_temp.sqlstate_of($$INSERT INTO accounts VALUES (4, '{}')$$);
INSERT INTO accounts SELECT i, jsonb_build_object('theme', 'dark', 'page_size', i % 100) FROM generate_series(10, 1009) AS i;
SELECT count(*) FROM accounts;
DROP TABLE accounts;
