-- JSONB capability: operators and comments. Functions are generated from src/jsonb/.

CREATE OPERATOR storage.||+ (
    LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = storage.jsonb_merge_deep
);
COMMENT ON OPERATOR storage.||+ (jsonb, jsonb) IS 'deep merge: objects merged recursively, otherwise the right side wins';

CREATE OPERATOR storage.~> (
    LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = storage.jsonb_diff
);
COMMENT ON OPERATOR storage.~> (jsonb, jsonb) IS 'a ~> b: the RFC 7396 merge patch that turns a into b';

COMMENT ON FUNCTION storage.jsonb_merge_deep(jsonb, jsonb) IS
    'Deep merge: objects merged key by key, recursively; for anything else b wins. Operator ||+.';
COMMENT ON FUNCTION storage.jsonb_merge_patch(jsonb, jsonb) IS
    'RFC 7396 JSON Merge Patch: null members delete, objects merge, anything else replaces.';
COMMENT ON FUNCTION storage.jsonb_diff(jsonb, jsonb) IS
    'RFC 7396 merge patch p with jsonb_merge_patch(a, p) = b. Setting a member to JSON null cannot be expressed: p carries null, which deletes it. Operator ~>.';
COMMENT ON FUNCTION storage.jsonb_patch(jsonb, jsonb) IS
    'RFC 6902 JSON Patch (add, remove, replace, move, copy, test); all or nothing, errors 22023 name the operation index and pointer.';
COMMENT ON FUNCTION storage.json_schema_valid(jsonb, jsonb) IS
    'True when the instance (2nd) satisfies the JSON Schema (1st). Drafts 4, 6, 7, 2019-09, 2020-12 by $schema; formats asserted unless pg_storage_ext.json_schema_formats is off.';
COMMENT ON FUNCTION storage.json_schema_errors(jsonb, jsonb) IS
    'Every failure of the instance against the schema: instance_path, schema_path (JSON Pointers), message. Empty when valid.';
COMMENT ON FUNCTION storage.json_schema_check(jsonb, jsonb) IS
    'For CHECK constraints: true when valid, else check_violation (23514) whose DETAIL lists the failing paths and messages.';
COMMENT ON FUNCTION storage.json_schema_is_valid(jsonb) IS
    'True when the argument is a valid JSON Schema for its draft; a schema that refers to a remote document (never fetched inside the database) raises the error the validating functions raise.';
