-- Roles capability: the application's group roles with least privilege, tenant isolation with
-- row-level security, and lints of the database's security settings. Catalog and DDL
-- orchestration only: SQL and PL/pgSQL; work on a user's table runs as its owner
-- (storage._run_as_owner).

-- The four group roles of a prefix, checked: every name must fit in 63 bytes unchanged.
CREATE FUNCTION storage._role_names(prefix text) RETURNS TABLE (kind text, role name)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
BEGIN
    prefix := coalesce(prefix, '');
    FOREACH k IN ARRAY ARRAY['app_user', 'read_only_user', 'admin_user', 'audit_user'] LOOP
        IF octet_length(prefix || k) > 63 THEN
            RAISE EXCEPTION 'role name % is longer than 63 bytes', prefix || k
                  USING ERRCODE = 'name_too_long',
                        HINT = 'Use a shorter prefix: PostgreSQL would cut the name and two prefixes could meet.';
        END IF;
        kind := k;
        role := prefix || k;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION storage._role_names(text) IS
    'Internal: the app_user, read_only_user, admin_user and audit_user role names of a prefix.';

CREATE FUNCTION storage.create_roles(prefix text DEFAULT '') RETURNS TABLE (role name, created boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    r record;
    a pg_roles;
    audit_role name;
BEGIN
    PERFORM storage._require_primary('storage.create_roles');
    FOR r IN SELECT * FROM storage._role_names(prefix) LOOP
        SELECT * INTO a FROM pg_roles WHERE rolname = r.role;
        created := NOT FOUND;
        IF created THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r.role);
        ELSIF a.rolcanlogin OR a.rolsuper OR a.rolcreatedb OR a.rolcreaterole OR a.rolreplication OR a.rolbypassrls THEN
            -- drift: a group role logs in nowhere and has no power beyond its grants
            EXECUTE format('ALTER ROLE %I NOLOGIN', r.role);
            IF a.rolsuper THEN EXECUTE format('ALTER ROLE %I NOSUPERUSER', r.role); END IF;
            IF a.rolcreatedb THEN EXECUTE format('ALTER ROLE %I NOCREATEDB', r.role); END IF;
            IF a.rolcreaterole THEN EXECUTE format('ALTER ROLE %I NOCREATEROLE', r.role); END IF;
            IF a.rolreplication THEN EXECUTE format('ALTER ROLE %I NOREPLICATION', r.role); END IF;
            IF a.rolbypassrls THEN EXECUTE format('ALTER ROLE %I NOBYPASSRLS', r.role); END IF;
        END IF;
        EXECUTE format('COMMENT ON ROLE %I IS %L', r.role, 'pg_storage_ext ' || r.kind || CASE r.kind
            WHEN 'app_user' THEN ': reads and writes the rows of application schemas (storage.grant_schema); no DDL, no audit log'
            WHEN 'read_only_user' THEN ': reads application schemas'
            WHEN 'admin_user' THEN ': creates and changes objects in application schemas; not a superuser'
            ELSE ': reads the audit log and audit.coverage; changes nothing' END);
        role := r.role;
        RETURN NEXT;
        IF r.kind = 'audit_user' THEN
            audit_role := r.role;
        END IF;
    END LOOP;
    -- only audit_user reads the audit trail
    EXECUTE format('GRANT audit_reader TO %I', audit_role);
    FOR r IN SELECT k.role FROM storage._role_names(prefix) k
              WHERE k.kind <> 'audit_user'
                AND pg_has_role(k.role, 'audit_reader', 'MEMBER') LOOP
        EXECUTE format('REVOKE audit_reader FROM %I', r.role);
    END LOOP;
END $$;
COMMENT ON FUNCTION storage.create_roles(text) IS
    'Creates (or brings up to date) the NOLOGIN group roles <prefix>app_user, <prefix>read_only_user, <prefix>admin_user and <prefix>audit_user; storage.grant_schema gives them an application schema. Idempotent: re-running repairs drift (login, superuser and other attributes, audit log membership).';

CREATE FUNCTION storage.grant_schema(schema name, prefix text DEFAULT '') RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    app name;
    ro name;
    admin name;
    missing text;
BEGIN
    PERFORM storage._require_primary('storage.grant_schema');
    IF schema IS NULL THEN
        RAISE EXCEPTION 'schema must not be NULL' USING ERRCODE = 'null_value_not_allowed',
              HINT = 'storage.grant_schema(''public'').';
    END IF;
    IF schema IN ('pg_catalog', 'information_schema', 'pg_toast', 'audit', 'storage', 'cron')
       OR schema LIKE 'pg\_temp%' OR schema LIKE 'pg\_toast%'
       OR EXISTS (SELECT FROM pg_namespace n JOIN pg_depend d ON d.classid = 'pg_namespace'::regclass AND d.objid = n.oid
                   WHERE n.nspname = schema AND d.deptype = 'e') THEN
        RAISE EXCEPTION 'schema % is not an application schema', quote_ident(schema)
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'System, extension and audit schemas keep their own privileges.',
                    HINT = 'Name the schema that holds the application''s tables, e.g. public.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = schema) THEN
        RAISE EXCEPTION 'schema % does not exist', quote_ident(schema) USING ERRCODE = 'invalid_schema_name',
              HINT = 'Create it first, or name an existing schema.';
    END IF;
    SELECT string_agg(role, ', ') INTO missing FROM storage._role_names(prefix) k
     WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = k.role);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'roles % do not exist', missing USING ERRCODE = 'undefined_object',
              HINT = format('Create them first: SELECT * FROM storage.create_roles(%L);', coalesce(prefix, ''));
    END IF;
    SELECT role INTO app FROM storage._role_names(prefix) WHERE kind = 'app_user';
    SELECT role INTO ro FROM storage._role_names(prefix) WHERE kind = 'read_only_user';
    SELECT role INTO admin FROM storage._role_names(prefix) WHERE kind = 'admin_user';
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I, %I, %I', schema, app, ro, admin);
    EXECUTE format('GRANT CREATE ON SCHEMA %I TO %I', schema, admin);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', schema, app);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', schema, app);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', schema, ro);
    -- what admin_user creates later is covered the same way
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
                   admin, schema, app);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT USAGE ON SEQUENCES TO %I', admin, schema, app);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I', admin, schema, ro);
END $$;
COMMENT ON FUNCTION storage.grant_schema(name, text) IS
    'Puts an application schema under the roles of create_roles: app_user reads and writes its tables and uses its sequences, read_only_user reads, admin_user creates objects there; tables and sequences admin_user creates later get the same grants (default privileges). Not for system, extension or audit schemas.';

-- Tables isolated by tenant: their column and the setting that names the session's tenant.
CREATE TABLE storage.tenant_isolation (
    table_name    regclass PRIMARY KEY,
    tenant_column name NOT NULL,
    setting       text NOT NULL,
    enabled_at    timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('storage.tenant_isolation', '');
COMMENT ON TABLE storage.tenant_isolation IS
    'Tables isolated by storage.enable_tenant_isolation: the tenant column and the setting holding the session''s tenant (dumped by pg_dump).';

-- The policy expression: the column equals the setting cast to the column's type; an unset or
-- empty setting is NULL and matches nothing. For the rows a statement reads (USING) the setting is
-- a scalar subquery, an InitPlan evaluated once per statement rather than once per row scanned;
-- for the rows it writes (WITH CHECK) it is read directly, once per row written, which for the
-- usual single-row INSERT costs less than setting up an InitPlan.
CREATE FUNCTION storage._tenant_expr(target regclass, tenant_column name, setting text, per_statement boolean) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    -- integer columns read the setting typed (storage._tenant_int4/8: no NULLIF and cast per
    -- statement); other types cast its text
    SELECT format(CASE WHEN per_statement THEN '%I = (SELECT %s)' ELSE '%I = %s' END, tenant_column,
                  CASE a.atttypid WHEN 'integer'::regtype THEN format('storage._tenant_int4(%L)', setting)
                                  WHEN 'bigint'::regtype THEN format('storage._tenant_int8(%L)', setting)
                                  ELSE format('NULLIF(pg_catalog.current_setting(%L, true), %L)::%s', setting, '',
                                              format_type(a.atttypid, a.atttypmod)) END)
      FROM pg_attribute a WHERE a.attrelid = target AND a.attname = tenant_column AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION storage._tenant_expr(regclass, name, text, boolean) IS
    'Internal: the tenant policy expression of a table: the setting read once per statement (a scalar subquery) or directly, typed by storage._tenant_int4/8 for integer columns, else cast to the column''s type.';

-- Row security and the four tenant policies on one table (a partitioned table, or one of its
-- partitions: a partition read directly has its own row security), as its owner.
CREATE FUNCTION storage._tenant_apply(rel regclass, tenant_column name, setting text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- the setting read once per statement (a scalar subquery), except on a Citus table, whose
    -- policies Citus copies to the shards and cannot copy with a subquery in them
    expr text := storage._tenant_expr(rel, tenant_column, setting, storage._citus_kind(rel) IS NULL);
    check_expr text := storage._tenant_expr(rel, tenant_column, setting, false);
    cmd text;
BEGIN
    FOREACH cmd IN ARRAY ARRAY['select', 'insert', 'update', 'delete'] LOOP
        IF EXISTS (SELECT FROM pg_policy WHERE polrelid = rel AND polname = 'pg_storage_ext_tenant_' || cmd) THEN
            PERFORM storage._run_as_owner(rel, format('DROP POLICY %I ON %s', 'pg_storage_ext_tenant_' || cmd, rel));
        END IF;
        PERFORM storage._run_as_owner(rel, format('CREATE POLICY %I ON %s FOR %s TO PUBLIC%s%s',
            'pg_storage_ext_tenant_' || cmd, rel, upper(cmd),
            CASE WHEN cmd <> 'insert' THEN format(' USING (%s)', expr) ELSE '' END,
            CASE WHEN cmd IN ('insert', 'update') THEN format(' WITH CHECK (%s)', check_expr) ELSE '' END));
    END LOOP;
    PERFORM storage._run_as_owner(rel, format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', rel));
    PERFORM storage._run_as_owner(rel, format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', rel));
END $$;
COMMENT ON FUNCTION storage._tenant_apply(regclass, name, text) IS
    'Internal: enables and forces row security on a table and gives it the four tenant policies, as its owner.';

CREATE FUNCTION storage.enable_tenant_isolation(target regclass, tenant_column name,
                                                setting text DEFAULT 'app.tenant_id') RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    rel pg_class;
    attnum smallint;
    part regclass;
    v regclass;
BEGIN
    PERFORM storage._require_primary('storage.enable_tenant_isolation');
    IF storage._citus_kind(target) IS NOT NULL THEN
        -- the policies reach the shards; the setting reaches them only as Citus sends it
        RAISE WARNING 'on the Citus table %, the tenant setting % reaches the shards only when set with SET LOCAL inside a transaction and citus.propagate_set_commands = ''local''', target, setting
              USING DETAIL = 'Citus runs the statements in the shards on the workers, in its own sessions there: a session-level SET stays on the coordinator, and the shards then see no tenant and return and accept nothing.',
                    HINT = format('ALTER ROLE app_user SET citus.propagate_set_commands = ''local''; then BEGIN; SET LOCAL %s = ''...''; ... COMMIT;', setting);
    END IF;
    IF target IS NULL OR tenant_column IS NULL OR setting IS NULL THEN
        RAISE EXCEPTION 'target, tenant_column and setting must not be NULL' USING ERRCODE = 'null_value_not_allowed',
              HINT = 'storage.enable_tenant_isolation(''articles'', ''tenant_id'').';
    END IF;
    SELECT * INTO rel FROM pg_class WHERE oid = target;
    IF rel.relkind NOT IN ('r', 'p') OR rel.relispartition THEN
        RAISE EXCEPTION '% is not a table', target USING ERRCODE = 'wrong_object_type',
              DETAIL = CASE WHEN rel.relispartition THEN 'It is a partition: isolate its partitioned table.' ELSE format('relkind is %L.', rel.relkind) END,
              HINT = 'Name a table (plain or partitioned).';
    END IF;
    IF rel.relpersistence = 't' OR rel.relnamespace IN ('pg_catalog'::regnamespace, 'storage'::regnamespace, 'audit'::regnamespace) THEN
        RAISE EXCEPTION '% cannot be isolated by tenant', target USING ERRCODE = 'feature_not_supported',
              HINT = 'Isolate a permanent application table.';
    END IF;
    SELECT a.attnum INTO attnum FROM pg_attribute a
     WHERE a.attrelid = target AND a.attname = tenant_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column % of % does not exist', quote_ident(tenant_column), target USING ERRCODE = 'undefined_column',
              HINT = 'Name the column that holds the tenant (e.g. tenant_id, author_id).';
    END IF;
    IF setting !~ '^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)+$' THEN
        RAISE EXCEPTION 'setting % is not a custom setting name', quote_literal(setting) USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Use a dotted name such as app.tenant_id; the application sets it with SET app.tenant_id = ''...''.';
    END IF;
    -- the table and every partition (a partition read directly is not covered by its parent's policies)
    FOR part IN SELECT target UNION SELECT relid FROM pg_partition_tree(target) LOOP
        PERFORM storage._tenant_apply(part, tenant_column, setting);
    END LOOP;
    -- an index led by the tenant column, unless one exists
    IF NOT EXISTS (SELECT FROM pg_index x WHERE x.indrelid = target AND x.indkey[0] = attnum) THEN
        PERFORM storage._run_as_owner(target, format('CREATE INDEX %I ON %s (%I)',
            storage._partition_fit(rel.relname, '_' || tenant_column || '_tenant'), target, tenant_column));
    END IF;
    -- views over the table check the querying role's rows, not their owner's
    FOR v IN SELECT view FROM storage._dependent_views(target) WHERE kind = 'v' LOOP
        PERFORM storage._run_as_owner(v, format('ALTER VIEW %s SET (security_invoker = true)', v));
    END LOOP;
    INSERT INTO storage.tenant_isolation AS t (table_name, tenant_column, setting) VALUES (target, tenant_column, setting)
        ON CONFLICT (table_name) DO UPDATE SET tenant_column = EXCLUDED.tenant_column, setting = EXCLUDED.setting;
END $$;
COMMENT ON FUNCTION storage.enable_tenant_isolation(regclass, name, text) IS
    'Isolates a table by tenant: row security enabled and forced (the owner too), one policy per command comparing tenant_column with the setting (read once per statement); an unset or empty setting sees and writes nothing; a row cannot be written into another tenant; an index led by the column; every partition covered; views over the table switched to security_invoker.';

CREATE FUNCTION storage.disable_tenant_isolation(target regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    part regclass;
    cmd text;
BEGIN
    PERFORM storage._require_primary('storage.disable_tenant_isolation');
    IF NOT EXISTS (SELECT FROM storage.tenant_isolation WHERE table_name = target) THEN
        RAISE NOTICE '% is not isolated by tenant; nothing to disable', target;
        RETURN;
    END IF;
    FOR part IN SELECT target UNION SELECT relid FROM pg_partition_tree(target) LOOP
        FOREACH cmd IN ARRAY ARRAY['select', 'insert', 'update', 'delete'] LOOP
            IF EXISTS (SELECT FROM pg_policy WHERE polrelid = part AND polname = 'pg_storage_ext_tenant_' || cmd) THEN
                PERFORM storage._run_as_owner(part, format('DROP POLICY %I ON %s', 'pg_storage_ext_tenant_' || cmd, part));
            END IF;
        END LOOP;
        PERFORM storage._run_as_owner(part, format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', part));
        -- other policies keep row security on
        IF NOT EXISTS (SELECT FROM pg_policy WHERE polrelid = part) THEN
            PERFORM storage._run_as_owner(part, format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', part));
        END IF;
    END LOOP;
    DELETE FROM storage.tenant_isolation WHERE table_name = target;
END $$;
COMMENT ON FUNCTION storage.disable_tenant_isolation(regclass) IS
    'Removes the tenant policies of a table and its partitions; row security stays on where other policies remain. The index is kept.';

-- Proves the isolation of a table: as a throwaway role with the privileges app_user has (and
-- as the table's owner, whom FORCE covers too), with tenant_a set, every command against
-- tenant_b's rows must see or change nothing, and writing a row into tenant_b must fail; with no
-- tenant set, nothing is seen or written. Everything it does is rolled back.
CREATE FUNCTION storage.verify_tenant_isolation(target regclass, tenant_a text, tenant_b text)
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    cfg storage.tenant_isolation;
    probe name := 'storage_verify_' || pg_backend_pid();
    who record;
    cols text;
    n bigint;
    results jsonb := '[]';
    v regclass;
    views regclass[];
    state text;
BEGIN
    PERFORM storage._require_primary('storage.verify_tenant_isolation');
    PERFORM storage._refuse_on_citus(target, 'storage.verify_tenant_isolation',
        'It proves the isolation as a throwaway role it creates and rolls back; Citus would connect to the workers as that role, which they cannot see before it commits.');
    SELECT * INTO cfg FROM storage.tenant_isolation t WHERE t.table_name = target;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not isolated by tenant', target USING ERRCODE = 'undefined_object',
              HINT = format('SELECT storage.enable_tenant_isolation(%L, ''tenant_id'');', target::text);
    END IF;
    IF tenant_a IS NULL OR tenant_b IS NULL OR tenant_a = tenant_b THEN
        RAISE EXCEPTION 'tenant_a and tenant_b must be two different tenants' USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Pass two tenants that both have rows.';
    END IF;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols FROM pg_attribute
     WHERE attrelid = target AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
    -- read before the role changes (the probe role may not call internal functions)
    views := ARRAY(SELECT view FROM storage._dependent_views(target) WHERE kind = 'v');
    BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', probe);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', (SELECT relnamespace::regnamespace::name FROM pg_class WHERE oid = target), probe);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', target, probe);
        FOREACH v IN ARRAY views LOOP
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', (SELECT relnamespace::regnamespace::name FROM pg_class WHERE oid = v), probe);
            EXECUTE format('GRANT SELECT ON %s TO %I', v, probe);
        END LOOP;
        -- an owner who is a superuser or has BYPASSRLS is not bound by any policy, FORCE or not
        IF EXISTS (SELECT FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner
                    WHERE c.oid = target AND (o.rolsuper OR o.rolbypassrls)) THEN
            results := results || jsonb_build_array(jsonb_build_array('table owner: bound by row security', false,
                'the owner ' || (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = target) || ' is a superuser or has BYPASSRLS'));
        END IF;
        FOR who IN SELECT probe AS r, 'app role' AS label
                   UNION ALL
                   SELECT pg_get_userbyid(c.relowner), 'table owner' FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner
                    WHERE c.oid = target AND NOT o.rolsuper AND NOT o.rolbypassrls LOOP
            PERFORM set_config('role', who.r, true);
            PERFORM set_config(cfg.setting, tenant_a, true);
            EXECUTE format('SELECT count(*) FROM %s WHERE %I::text = $1', target, cfg.tenant_column) INTO n USING tenant_b;
            results := results || jsonb_build_array(jsonb_build_array(who.label || ': read the other tenant''s rows', n = 0, n || ' rows seen'));
            EXECUTE format('SELECT count(*) FROM %s WHERE %I::text = $1', target, cfg.tenant_column) INTO n USING tenant_a;
            results := results || jsonb_build_array(jsonb_build_array(who.label || ': read its own rows', n > 0, n || ' rows seen'));
            BEGIN
                EXECUTE format('UPDATE %s SET %I = %I WHERE %I::text = $1', target, cfg.tenant_column, cfg.tenant_column, cfg.tenant_column) USING tenant_b;
                GET DIAGNOSTICS n = ROW_COUNT;
                results := results || jsonb_build_array(jsonb_build_array(who.label || ': update the other tenant''s rows', n = 0, n || ' rows updated'));
                EXECUTE format('DELETE FROM %s WHERE %I::text = $1', target, cfg.tenant_column) USING tenant_b;
                GET DIAGNOSTICS n = ROW_COUNT;
                results := results || jsonb_build_array(jsonb_build_array(who.label || ': delete the other tenant''s rows', n = 0, n || ' rows deleted'));
                RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = 'undo';
            EXCEPTION WHEN assert_failure THEN NULL;
            END;
            -- writing a row into the other tenant: a copy of one of its own rows with the tenant changed
            BEGIN
                EXECUTE format('INSERT INTO %1$s (%2$s) OVERRIDING SYSTEM VALUE SELECT %2$s FROM jsonb_populate_record(NULL::%1$s, '
                               '(SELECT to_jsonb(t) FROM %1$s t WHERE %3$I::text = $1 LIMIT 1) || jsonb_build_object(%4$L, $2))',
                               target, cols, cfg.tenant_column, cfg.tenant_column) USING tenant_a, tenant_b;
                results := results || jsonb_build_array(jsonb_build_array(who.label || ': insert a row into the other tenant', false, 'the row was inserted'));
                RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = 'undo';
            EXCEPTION WHEN assert_failure THEN NULL;
                      WHEN insufficient_privilege THEN
                results := results || jsonb_build_array(jsonb_build_array(who.label || ': insert a row into the other tenant', true, SQLERRM));
                      WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
                results := results || jsonb_build_array(jsonb_build_array(who.label || ': insert a row into the other tenant', NULL::boolean,
                                                                          'inconclusive: ' || state || ' ' || SQLERRM));
            END;
            BEGIN
                EXECUTE format('UPDATE %s SET %I = CAST($2 AS %s) WHERE %I::text = $1', target, cfg.tenant_column,
                               (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = target AND attname = cfg.tenant_column),
                               cfg.tenant_column) USING tenant_a, tenant_b;
                GET DIAGNOSTICS n = ROW_COUNT;
                results := results || jsonb_build_array(jsonb_build_array(who.label || ': move its rows to the other tenant', n = 0, n || ' rows moved'));
                RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = 'undo';
            EXCEPTION WHEN assert_failure THEN NULL;
                      WHEN insufficient_privilege THEN
                results := results || jsonb_build_array(jsonb_build_array(who.label || ': move its rows to the other tenant', true, SQLERRM));
            END;
            FOREACH v IN ARRAY views LOOP
                results := results || jsonb_build_array(jsonb_build_array(format('%s: view %s checks the querying role', who.label, v),
                    coalesce((SELECT 'security_invoker=true' = ANY (reloptions) OR 'security_invoker=on' = ANY (reloptions) FROM pg_class WHERE oid = v), false),
                    'security_invoker'));
            END LOOP;
            PERFORM set_config(cfg.setting, '', true);
            EXECUTE format('SELECT count(*) FROM %s', target) INTO n;
            results := results || jsonb_build_array(jsonb_build_array(who.label || ': no tenant set sees nothing', n = 0, n || ' rows seen'));
            PERFORM set_config('role', 'none', true);
        END LOOP;
        RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = 'undo';
    EXCEPTION WHEN assert_failure THEN NULL;
    END;
    RETURN QUERY SELECT e->>0, (e->>1)::boolean, e->>2 FROM jsonb_array_elements(results) e;
END $$;
COMMENT ON FUNCTION storage.verify_tenant_isolation(regclass, text, text) IS
    'Proves the tenant isolation of a table: as a role with app_user''s privileges and as the table''s owner, with tenant_a set, reads, updates, deletes and inserts against tenant_b''s rows, and without any tenant; one row per check (ok false: a hole; NULL: inconclusive). Everything it tries is rolled back.';

-- Lints of the database's security, after Supabase's splinter and the traps users fall into:
-- one row per finding, with the statement that fixes it.
CREATE FUNCTION storage.security_report() RETURNS TABLE (object text, issue text, severity text, fix text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    -- row security that the owner bypasses, or that admits nothing or everything
    RETURN QUERY
    SELECT c.oid::regclass::text, 'row level security is enabled but not forced: the table''s owner bypasses it', 'warning',
           format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', c.oid::regclass)
      FROM pg_class c
     WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND NOT c.relforcerowsecurity
       AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace);
    RETURN QUERY
    SELECT c.oid::regclass::text, 'row level security is enabled without any policy: only the owner sees rows', 'info',
           format('CREATE POLICY ... ON %s, or ALTER TABLE %s DISABLE ROW LEVEL SECURITY;', c.oid::regclass, c.oid::regclass)
      FROM pg_class c
     WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid);
    RETURN QUERY
    SELECT format('policy %I on %s', p.polname, p.polrelid::regclass), 'the policy is always true: it isolates nothing', 'error',
           format('ALTER POLICY %I ON %s USING (...) WITH CHECK (...);', p.polname, p.polrelid::regclass)
      FROM pg_policy p
     WHERE p.polpermissive
       AND (pg_get_expr(p.polqual, p.polrelid) = 'true' OR pg_get_expr(p.polwithcheck, p.polrelid) = 'true');
    RETURN QUERY
    SELECT format('%s (%s)', p.polrelid::regclass,
                  CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END),
           format('%s permissive policies apply to the same command: a row any of them admits is admitted (%s)',
                  count(*), string_agg(quote_ident(p.polname), ', ' ORDER BY p.polname)),
           'warning', 'Merge them into one policy, or make the extra ones AS RESTRICTIVE.'
      FROM pg_policy p
     WHERE p.polpermissive
     GROUP BY p.polrelid, p.polcmd HAVING count(*) > 1;
    -- views that read row-secured tables with their owner's rights
    RETURN QUERY
    SELECT DISTINCT v.oid::regclass::text,
           format('the view reads %s, which has row level security, as the view''s owner (security_invoker is off)', t.oid::regclass),
           'error', format('ALTER VIEW %s SET (security_invoker = true);', v.oid::regclass)
      FROM pg_class v
      JOIN pg_rewrite r ON r.ev_class = v.oid
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
      JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid AND t.relrowsecurity
     WHERE v.relkind = 'v'
       AND NOT coalesce('security_invoker=true' = ANY (v.reloptions) OR 'security_invoker=on' = ANY (v.reloptions)
                        OR 'security_invoker=1' = ANY (v.reloptions), false);
    -- SECURITY DEFINER functions that resolve names through the caller's search_path
    RETURN QUERY
    SELECT p.oid::regprocedure::text, 'SECURITY DEFINER function without a pinned search_path: a caller can plant objects it resolves', 'error',
           format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp;', p.oid::regprocedure)
      FROM pg_proc p
     WHERE p.prosecdef AND p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%');
    -- what PUBLIC may change
    RETURN QUERY
    SELECT c.oid::regclass::text, format('PUBLIC may %s it', string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type)), 'error',
           format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %s FROM PUBLIC;', c.oid::regclass)
      FROM pg_class c, aclexplode(c.relacl) a
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.grantee = 0
       AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
     GROUP BY c.oid;
    RETURN QUERY
    SELECT 'schema ' || quote_ident(n.nspname), 'PUBLIC may create objects in it (a user can plant functions and operators others resolve)', 'error',
           format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC;', n.nspname)
      FROM pg_namespace n, aclexplode(n.nspacl) a
     WHERE a.grantee = 0 AND a.privilege_type = 'CREATE';
    -- passwords and superusers
    IF current_setting('password_encryption') <> 'scram-sha-256' THEN
        RETURN QUERY SELECT 'setting password_encryption', format('passwords are stored as %s', current_setting('password_encryption')),
                            'error', 'ALTER SYSTEM SET password_encryption = ''scram-sha-256''; then set every password again.';
    END IF;
    IF has_table_privilege('pg_authid', 'SELECT') THEN
        RETURN QUERY
        SELECT 'role ' || quote_ident(a.rolname),
               CASE WHEN a.rolpassword IS NULL THEN 'the role can log in and has no password (it relies on trust or peer rules in pg_hba.conf)'
                    ELSE 'the role''s password is an MD5 hash' END,
               CASE WHEN a.rolpassword IS NULL THEN 'warning' ELSE 'error' END,
               format('ALTER ROLE %I PASSWORD ''...''; (with password_encryption = scram-sha-256)', a.rolname)
          FROM pg_authid a
         WHERE a.rolcanlogin AND (a.rolpassword IS NULL OR a.rolpassword LIKE 'md5%')
           AND a.oid <> 10;   -- the bootstrap superuser logs in locally
    ELSE
        RETURN QUERY SELECT 'roles', 'passwords were not checked: reading pg_authid needs a superuser', 'info',
                            'Run storage.security_report() as a superuser.';
    END IF;
    RETURN QUERY
    SELECT 'role ' || quote_ident(s.usename),
           format('a superuser is used by %s client connection(s) (%s)', count(*), string_agg(DISTINCT coalesce(nullif(s.application_name, ''), '?'), ', ')),
           'warning', 'Give applications roles without SUPERUSER (storage.create_roles) and keep superusers for administration.'
      FROM pg_stat_activity s JOIN pg_roles r ON r.oid = s.usesysid
     WHERE r.rolsuper AND s.backend_type = 'client backend' AND s.client_addr IS NOT NULL AND s.pid <> pg_backend_pid()
     GROUP BY s.usename;
    -- tenant isolation that a partition escapes
    RETURN QUERY
    SELECT p.relid::regclass::text, format('a partition of %s, isolated by tenant, lacks its tenant policies', t.table_name), 'error',
           format('SELECT storage.enable_tenant_isolation(%L, %L, %L);', t.table_name::text, t.tenant_column, t.setting)
      FROM storage.tenant_isolation t CROSS JOIN LATERAL pg_partition_tree(t.table_name) p
     WHERE p.relid <> t.table_name
       AND (NOT (SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = p.relid)
            OR (SELECT count(*) FROM pg_policy WHERE polrelid = p.relid AND polname LIKE 'pg\_storage\_ext\_tenant\_%') < 4);
END $$;
COMMENT ON FUNCTION storage.security_report() IS
    'Security lints over the database, one row per finding with its fix: row security not forced, without policies, always true or widened by several permissive policies; views over row-secured tables without security_invoker; SECURITY DEFINER functions without a pinned search_path; tables and schemas PUBLIC may change; password encryption, roles without passwords or with MD5 ones; superusers used by client connections; partitions escaping tenant isolation.';

-- Connection security: SSL on, its files present, the certificate's days left, the minimum
-- protocol, pg_hba lines that let TCP clients in without SSL, and live TCP connections without it.
CREATE FUNCTION storage.ssl_status() RETURNS TABLE (setting text, value text, ok boolean, detail text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    f text;
    expires timestamptz;
BEGIN
    RETURN QUERY SELECT 'ssl', current_setting('ssl'), current_setting('ssl') = 'on',
                        CASE WHEN current_setting('ssl') = 'on' THEN 'the server accepts SSL connections'
                             ELSE 'SSL is off: set ssl = on with a certificate and key' END;
    FOREACH f IN ARRAY ARRAY['ssl_cert_file', 'ssl_key_file'] LOOP
        BEGIN
            RETURN QUERY SELECT f, current_setting(f), coalesce((pg_stat_file(current_setting(f), true)).size > 0, false),
                                CASE WHEN pg_stat_file(current_setting(f), true) IS NULL THEN 'the file does not exist'
                                     ELSE 'present' END;
        EXCEPTION WHEN insufficient_privilege THEN
            RETURN QUERY SELECT f, current_setting(f), NULL::boolean, 'not checked: reading server files needs pg_read_server_files';
        END;
    END LOOP;
    BEGIN
        expires := storage._certificate_not_after(pg_read_file(current_setting('ssl_cert_file')));
        RETURN QUERY SELECT 'certificate expiry', to_char(expires AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
                            expires > now() + interval '30 days',
                            format('%s days left', floor(extract(epoch FROM expires - now()) / 86400));
    EXCEPTION WHEN insufficient_privilege THEN
        RETURN QUERY SELECT 'certificate expiry', NULL::text, NULL::boolean, 'not checked: reading server files needs pg_read_server_files';
    WHEN undefined_file OR invalid_parameter_value THEN
        RETURN QUERY SELECT 'certificate expiry', NULL::text, false, 'unreadable: ' || SQLERRM;
    END;
    RETURN QUERY SELECT 'ssl_min_protocol_version', current_setting('ssl_min_protocol_version'),
                        current_setting('ssl_min_protocol_version') IN ('TLSv1.2', 'TLSv1.3'),
                        'TLSv1.2 or later';
    BEGIN
        RETURN QUERY
        SELECT 'pg_hba.conf line ' || r.line_number, r.type || ' ' || array_to_string(r.database, ',') || ' '
                   || array_to_string(r.user_name, ',') || ' ' || coalesce(r.address, '') || ' ' || coalesce(r.auth_method, ''),
               false, 'lets TCP clients in without SSL: use hostssl'
          FROM pg_hba_file_rules r
         WHERE r.type IN ('host', 'hostnossl') AND r.auth_method <> 'reject' AND r.error IS NULL
           AND coalesce(r.address, '') NOT IN ('127.0.0.1', '::1', 'localhost', 'samehost');
    EXCEPTION WHEN insufficient_privilege THEN
        RETURN QUERY SELECT 'pg_hba.conf', NULL::text, NULL::boolean, 'not checked: reading pg_hba_file_rules needs a superuser';
    END;
    RETURN QUERY
    SELECT 'connections without SSL', count(*)::text, count(*) = 0,
           coalesce('TCP clients: ' || string_agg(DISTINCT format('%s@%s', a.usename, host(a.client_addr)), ', '), 'none')
      FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid
     WHERE a.client_addr IS NOT NULL AND NOT s.ssl AND a.backend_type = 'client backend';
END $$;
COMMENT ON FUNCTION storage.ssl_status() IS
    'Connection security: ssl on, certificate and key present, the certificate''s expiry (ok with more than 30 days left), ssl_min_protocol_version, pg_hba.conf lines that let remote TCP clients in without SSL, and live TCP connections without SSL.';
COMMENT ON FUNCTION storage._certificate_not_after(text) IS
    'Internal: when the first certificate of a PEM text stops being valid (22023 for text that is not one).';
COMMENT ON FUNCTION storage._tenant_int4(cstring) IS
    'Internal: the tenant setting as an integer (NULL when unset or empty), for tenant policies; executable by everyone, as policies run as the querying role.';
COMMENT ON FUNCTION storage._tenant_int8(cstring) IS
    'Internal: the tenant setting as a bigint (NULL when unset or empty), for tenant policies; executable by everyone, as policies run as the querying role.';
