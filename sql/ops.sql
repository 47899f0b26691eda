-- Operations capability: comments on the generated functions.
COMMENT ON FUNCTION storage.version() IS 'The installed pg_storage_ext library version (the crate version).';
COMMENT ON FUNCTION storage._run_as_owner(regclass, text, text[], oid[]) IS
    'Internal: runs one command on a user''s table as the table''s owner under SECURITY_RESTRICTED_OPERATION (as VACUUM and REFRESH do); the caller must have the owner''s privileges. Row changes of the relocating relations are moves, not logged by audit capture. Returns the rows processed.';
