-- The schemas every capability builds on. `storage` is the extension's own schema
-- (created by CREATE EXTENSION from the control file); `audit` belongs to the extension.
CREATE SCHEMA audit;
COMMENT ON SCHEMA audit IS 'pg_storage_ext: row-change history';
