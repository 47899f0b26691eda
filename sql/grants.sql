-- Who may call what, decided once for every function of the extension, present and future (the
-- table is in docs/security.md). Runs last in CREATE EXTENSION; every update script repeats it
-- (scripts/gen-updates.py repeats a block quoted $grants$), and pg_regress `security` prints the
-- result from the catalog.
--
-- * Everyone (PUBLIC): the pure functions and their operators, as core's jsonb functions and
--   pg_jsonschema's are; the search trigger function, which table owners may attach themselves;
--   the query side of search (storage.search, storage.search_tsquery: the caller's own query);
--   audit.enable/disable (they check that the caller owns the table), audit.history/row_at
--   (they read audit.log, which only audit_reader may read) and the change feeds' functions
--   (they check audit_reader, and each role reaches only its own feeds); the tenant policies' readers of the
--   tenant setting (policies run as the querying role).
-- * Nobody but the extension owner (a superuser) and roles it grants EXECUTE to: everything
--   else, i.e. the administrative functions (partitions, search set-up, matview registration and
--   refresh, scheduling, retention) and every internal `_` function. Work they do on a user's
--   table runs as that table's owner (storage._run_as_owner), never with the caller's rights.
GRANT USAGE ON SCHEMA storage TO PUBLIC;
DO $grants$
DECLARE
    f text;
BEGIN
    -- signatures spelled out (schema.name(types)): regprocedure's text depends on search_path
    FOR f IN
        SELECT pg_catalog.format('%I.%I(%s)', n.nspname, p.proname, pg_catalog.oidvectortypes(p.proargtypes))
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                                     AND d.objid = p.oid AND d.deptype = 'e'
          JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_storage_ext'
    LOOP
        CONTINUE WHEN f IN (
            'storage.version()',
            'storage.jsonb_merge_deep(jsonb, jsonb)', 'storage.jsonb_merge_patch(jsonb, jsonb)',
            'storage.jsonb_diff(jsonb, jsonb)', 'storage.jsonb_patch(jsonb, jsonb)',
            'storage.json_schema_valid(jsonb, jsonb)', 'storage.json_schema_errors(jsonb, jsonb)',
            'storage.json_schema_check(jsonb, jsonb)', 'storage.json_schema_is_valid(jsonb)',
            'storage.tsvector_update()',
            -- read by the storage.search_columns view, which PUBLIC may select
            'storage._trigger_args(bytea)',
            -- the query side of search: the caller's own query, under its privileges and policies
            'storage.search(regclass, text, integer, integer, boolean)',
            'storage._search(regclass, text, integer, integer, boolean)',
            'storage.search_tsquery(regconfig, text)', 'storage.search_suggest(regclass, text)',
            'storage._search_split(cstring)',
            'storage._search_alternatives(regconfig, text[])', 'storage._search_synonyms_applied(regconfig, tsquery)',
            'storage._search_target(regclass, text)', 'storage._search_fixes(regclass, name, regconfig, text)',
            'storage._search_lexeme(cstring)', 'storage._search_any(tsquery)',
            -- the related tables' statement trigger, which their owners create (it acts only on
            -- the sources enable_search recorded for the table it fires on)
            'storage._search_related()',
            -- reads the vocabulary as the extension owner, but checks every word as the caller
            -- and returns only words of rows the caller can see
            'storage._search_correction(regclass, name, cstring)',
            -- the policy an online schema change puts on a table whose row security is forced on
            -- its owner, run as the querying role: true only in the change's own worker
            'storage._schema_change_backfilling()',
            -- in tenant policies, which run as the querying role
            'storage._tenant_int4(cstring)', 'storage._tenant_int8(cstring)',
            'audit.enable(regclass, text[], boolean)', 'audit.disable(regclass)',
            'audit.history(regclass, jsonb, jsonb)', 'audit.row_at(regclass, jsonb, timestamp with time zone)',
            'audit.table_at(anyelement, timestamp with time zone)',
            'audit.restore_row(regclass, jsonb, timestamp with time zone)',
            'audit.revert_transaction(bigint, boolean)', 'audit.revert_statement(bigint, boolean)',
            'audit.create_feed(text, regclass[], text)', 'audit.read_feed(text, integer)',
            'audit.ack_feed(text, bigint)', 'audit.drop_feed(text)',
            -- their permission error, naming audit_reader, raised as the caller
            'audit._require_reader(text, regclass)');
        EXECUTE pg_catalog.format('REVOKE ALL ON ROUTINE %s FROM PUBLIC', f);
    END LOOP;
END $grants$;
