-- Foundation: install, reinstall, version, schemas, settings.
SELECT storage.version() = extversion AS version_matches, extversion
FROM pg_extension WHERE extname = 'pg_storage_ext';
SELECT obj_description(oid, 'pg_extension') FROM pg_extension WHERE extname = 'pg_storage_ext';
SELECT nspname FROM pg_namespace WHERE nspname IN ('storage', 'audit') ORDER BY nspname;
DROP EXTENSION pg_storage_ext;
SELECT count(*) AS audit_schema_left FROM pg_namespace WHERE nspname = 'audit';
CREATE EXTENSION pg_storage_ext;
SELECT storage.version() IS NOT NULL AS reinstalled;
-- Every function of the extension has a comment.
SELECT p.oid::regprocedure AS function_without_comment
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_storage_ext')
  AND obj_description(p.oid, 'pg_proc') IS NULL
ORDER BY 1;
-- Settings live under a reserved prefix.
SHOW pg_storage_ext.json_schema_formats;
SHOW pg_storage_ext.json_schema_cache_size;
SHOW pg_storage_ext.partition_lock_timeout;
SHOW pg_storage_ext.partition_lock_retries;
SET pg_storage_ext.no_such_setting = 1;
