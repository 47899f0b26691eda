-- Operations capability: comments on the generated functions.
COMMENT ON FUNCTION storage.version() IS 'The installed pg_storage_ext library version (the crate version).';
