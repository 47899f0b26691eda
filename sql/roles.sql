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
    rel regclass;
    skipped regclass[];
    kept text;
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
    -- every table, view and materialized view (what ON ALL TABLES IN SCHEMA names), except what
    -- reads a table isolated by tenant without its policies: through it every tenant would see
    -- every tenant's rows
    skipped := ARRAY(SELECT DISTINCT b.obj::regclass FROM storage._tenant_bypasses() b JOIN pg_class c ON c.oid = b.obj
                      WHERE b.classid = 'pg_class'::regclass
                        AND c.relnamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = schema));
    FOR rel IN SELECT c.oid::regclass FROM pg_class c
                WHERE c.relnamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = schema)
                  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                  AND c.oid <> ALL (skipped)
                ORDER BY c.oid LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', rel, app);
        EXECUTE format('GRANT SELECT ON %s TO %I', rel, ro);
    END LOOP;
    IF cardinality(skipped) > 0 THEN
        -- privileges granted before (by hand, or while the object did not bypass) are not taken:
        -- they are named
        SELECT string_agg(format('%s (%s)', r, (SELECT string_agg(DISTINCT g.rolname, ', ' ORDER BY g.rolname)
                                                  FROM aclexplode(c.relacl) a JOIN pg_roles g ON g.oid = a.grantee
                                                 WHERE g.rolname IN (app, ro))), ', ' ORDER BY r::text)
          INTO kept
          FROM unnest(skipped) r JOIN pg_class c ON c.oid = r
         WHERE EXISTS (SELECT FROM aclexplode(c.relacl) a JOIN pg_roles g ON g.oid = a.grantee WHERE g.rolname IN (app, ro));
        RAISE WARNING 'pg_storage_ext: % and % are not granted privileges on %: they read tables isolated by tenant without the tenant policies',
                      app, ro, (SELECT string_agg(r::text, ', ' ORDER BY r::text) FROM unnest(skipped) r)
              USING DETAIL = 'Materialized views, views without security_invoker and what is built on them hand every tenant''s rows to whoever may read them.'
                             || CASE WHEN kept IS NOT NULL
                                     THEN ' Privileges granted earlier are kept, on: ' || kept || '.' ELSE '' END,
                    HINT = 'storage.security_report() says how to fix each; REVOKE what was granted earlier, and GRANT explicitly only what every tenant may see whole.';
    END IF;
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', schema, app);
    -- what admin_user creates later is covered the same way
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
                   admin, schema, app);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT USAGE ON SEQUENCES TO %I', admin, schema, app);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I', admin, schema, ro);
END $$;
COMMENT ON FUNCTION storage.grant_schema(name, text) IS
    'Puts an application schema under the roles of create_roles: app_user reads and writes its tables and uses its sequences, read_only_user reads, admin_user creates objects there; tables and sequences admin_user creates later get the same grants (default privileges). Views and materialized views that read a table isolated by tenant without its policies are skipped with a WARNING naming them (and lose the default privileges when created later: the event trigger pg_storage_ext_tenant_ddl). Not for system, extension or audit schemas.';

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
    -- one statement: the DDL event trigger (storage._tenant_ddl) sees the table either as it was
    -- or complete
    PERFORM storage._run_as_owner(rel, format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', rel));
END $$;
COMMENT ON FUNCTION storage._tenant_apply(regclass, name, text) IS
    'Internal: enables and forces row security on a table and gives it the four tenant policies, as its owner.';

-- Whether a table of an isolated tree (the root itself, a partition, a sub-partition) has row
-- security enabled and forced and the root's four tenant policies, the same (command, roles,
-- expressions as PostgreSQL prints them: a partition has the root's column names).
CREATE FUNCTION storage._tenant_covered(rel regclass, root regclass) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.relrowsecurity AND c.relforcerowsecurity
           AND (SELECT count(*) FROM pg_policy p WHERE p.polrelid = root AND p.polname LIKE 'pg\_storage\_ext\_tenant\_%') = 4
           AND NOT EXISTS (
               SELECT FROM pg_policy p
                WHERE p.polrelid = root AND p.polname LIKE 'pg\_storage\_ext\_tenant\_%'
                  AND NOT EXISTS (
                      SELECT FROM pg_policy q
                       WHERE q.polrelid = rel AND q.polname = p.polname AND q.polcmd = p.polcmd
                         AND q.polpermissive = p.polpermissive AND q.polroles = p.polroles
                         AND pg_get_expr(q.polqual, q.polrelid) IS NOT DISTINCT FROM pg_get_expr(p.polqual, p.polrelid)
                         AND pg_get_expr(q.polwithcheck, q.polrelid) IS NOT DISTINCT FROM pg_get_expr(p.polwithcheck, p.polrelid)))
      FROM pg_class c WHERE c.oid = rel
$$;
COMMENT ON FUNCTION storage._tenant_covered(regclass, regclass) IS
    'Internal: whether a table of an isolated partition tree has row security enabled and forced and the same four tenant policies as the tree''s root.';

-- Brings every table of an isolated tree under its tenant policies: the root (when they were
-- taken from it) and each partition and sub-partition, however it was made (CREATE TABLE …
-- PARTITION OF, ATTACH PARTITION, a partition moved from another tree); returns how many tables
-- it changed. `under` limits the partitions looked at to those under that table of the tree (the
-- one a DDL statement named). Run by the DDL event trigger.
CREATE FUNCTION storage._tenant_sync(root regclass, under regclass DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg storage.tenant_isolation;
    part regclass;
    n integer := 0;
    failed text[] := '{}';
BEGIN
    SELECT * INTO cfg FROM storage.tenant_isolation WHERE table_name = root;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    -- the partitions first, each on its own: one that cannot be done (a lock not free) leaves the
    -- others done; the root last
    FOR part IN SELECT x.rel FROM (SELECT p.relid AS rel, p.level FROM pg_partition_tree(coalesce(under, root)) p
                                    WHERE p.relid <> root
                                   UNION ALL
                                   SELECT root, 1000000) x
                 ORDER BY x.level, x.rel LOOP
        -- (the root against itself: row security on and forced, its four policies there)
        CONTINUE WHEN storage._tenant_covered(part, root);
        BEGIN
            PERFORM storage._tenant_apply(part, cfg.tenant_column, cfg.setting);
            n := n + 1;
        EXCEPTION WHEN OTHERS THEN
            failed := failed || format('%s (%s: %s)', part, SQLSTATE, SQLERRM);
        END;
    END LOOP;
    IF cardinality(failed) > 0 THEN
        RAISE WARNING 'pg_storage_ext: tables of %, isolated by tenant, did not get their tenant policies: %', root, array_to_string(failed, ', ')
              USING DETAIL = 'A partition without them, named directly, shows and changes every tenant''s rows.',
                    HINT = format('Run SELECT storage.enable_tenant_isolation(%L, %L, %L); once the lock is free.', root::text, cfg.tenant_column, cfg.setting);
    END IF;
    RETURN n;
END $$;
COMMENT ON FUNCTION storage._tenant_sync(regclass, regclass) IS
    'Internal: gives the root of an isolated table and every partition and sub-partition (under the given one) that lacks them row security and the tenant policies; returns the tables changed.';

-- What reads a table isolated by tenant (or a partition of it) without the tenant policies
-- applying to the reader: materialized views (row security never applies to what they hold),
-- views without security_invoker (they read with their owner's rights), anything built on those,
-- and SECURITY DEFINER routines run as a role row security does not bind (a superuser, a
-- BYPASSRLS role, or the table's owner while row security is not forced on it) whose body reads
-- the table, a partition or a view over it (pg_depend for SQL-standard bodies; otherwise the name
-- as a word of the body: PostgreSQL records no dependency for other bodies). Objects of
-- extensions are left out.
CREATE FUNCTION storage._tenant_bypasses()
RETURNS TABLE (classid regclass, obj oid, kind text, object text, isolated regclass, reason text, fix text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE up (isolated, rel, bypass, own) AS (
        -- (a plain table has no partition tree)
        SELECT t.table_name, t.table_name::oid, false, false FROM storage.tenant_isolation t
        UNION
        SELECT t.table_name, p.relid::oid, false, false
          FROM storage.tenant_isolation t CROSS JOIN LATERAL pg_partition_tree(t.table_name) p
        UNION
        SELECT up.isolated, c.oid, up.bypass OR b.own, b.own
          FROM up
          JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = up.rel AND d.classid = 'pg_rewrite'::regclass
          JOIN pg_rewrite r ON r.oid = d.objid
          JOIN pg_class c ON c.oid = r.ev_class AND c.oid <> up.rel AND c.relkind IN ('v', 'm')
         CROSS JOIN LATERAL (
             SELECT c.relkind = 'm'
                    OR NOT coalesce((SELECT bool_or(o.option_value::boolean) FROM pg_options_to_table(c.reloptions) o
                                      WHERE o.option_name = 'security_invoker'), false) AS own) b
    ), rels AS (
        SELECT up.isolated, up.rel, bool_or(up.bypass) AS bypass, bool_or(up.own) AS own FROM up GROUP BY up.isolated, up.rel
    )
    SELECT 'pg_class'::regclass, c.oid, CASE c.relkind WHEN 'm' THEN 'materialized view' ELSE 'view' END,
           c.oid::regclass::text, r.isolated,
           CASE WHEN c.relkind = 'm' THEN 'row security does not apply to a materialized view: whoever may read it sees every tenant''s rows it holds'
                WHEN r.own THEN 'the view reads with its owner''s rights (security_invoker is off): row security checks its owner, not the querying role'
                ELSE 'the view reads a view or materialized view that reads without the tenant policies' END,
           CASE WHEN c.relkind = 'm' THEN format('REVOKE ALL ON %s FROM <application roles>; (a view WITH (security_invoker = true) over %s is isolated)', c.oid::regclass, r.isolated)
                WHEN r.own THEN format('ALTER VIEW %s SET (security_invoker = true);', c.oid::regclass)
                ELSE 'Fix the objects it reads (listed too).' END
      FROM rels r JOIN pg_class c ON c.oid = r.rel
     WHERE r.bypass
       AND c.relpersistence <> 't'   -- a temporary view: only its own session reads it
       AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
    UNION ALL
    SELECT 'pg_proc'::regclass, p.oid, CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
           p.oid::regprocedure::text, t.table_name,
           format('a SECURITY DEFINER routine that runs as %s (%s), which the tenant policies do not bind, reads it',
                  quote_ident(o.rolname),
                  CASE WHEN o.rolsuper THEN 'a superuser' WHEN o.rolbypassrls THEN 'BYPASSRLS'
                       ELSE 'the table''s owner, row security not forced' END),
           format('ALTER ROUTINE %s SECURITY INVOKER; (or give it an owner the tenant policies bind)', p.oid::regprocedure)
      FROM pg_proc p
      JOIN pg_roles o ON o.oid = p.proowner
     CROSS JOIN storage.tenant_isolation t
     WHERE p.prosecdef
       AND p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       AND p.prolang NOT IN (SELECT l.oid FROM pg_language l WHERE l.lanname IN ('c', 'internal'))
       AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
       AND (o.rolsuper OR o.rolbypassrls
            OR EXISTS (SELECT FROM rels r JOIN pg_class c ON c.oid = r.rel
                        WHERE r.isolated = t.table_name AND c.relkind IN ('r', 'p') AND c.relowner = p.proowner
                          AND NOT c.relforcerowsecurity))
       AND EXISTS (SELECT FROM rels r JOIN pg_class c ON c.oid = r.rel
                    WHERE r.isolated = t.table_name
                      AND (EXISTS (SELECT FROM pg_depend d
                                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                                      AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid)
                           -- the name as written unquoted, or quoted (inner quotes doubled)
                           OR p.prosrc ~* ('(^|[^[:alnum:]_$])('
                                           || regexp_replace(c.relname, '([^[:alnum:]_])', '\\\1', 'g') || '|'
                                           || regexp_replace('"' || replace(c.relname, '"', '""') || '"', '([^[:alnum:]_])', '\\\1', 'g')
                                           || ')($|[^[:alnum:]_$])')))
$$;
COMMENT ON FUNCTION storage._tenant_bypasses() IS
    'Internal: materialized views, views without security_invoker (and what is built on them) and SECURITY DEFINER routines run as a role row security does not bind that read a table isolated by tenant, with why and the fix; objects of extensions left out.';

CREATE FUNCTION storage.enable_tenant_isolation(target regclass, tenant_column name,
                                                setting text DEFAULT 'app.tenant_id') RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    rel pg_class;
    attnum smallint;
    part regclass;
    v regclass;
    b record;
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
    -- recorded first: the DDL event trigger, woken by what follows, then brings partitions to
    -- this column and setting, not to an earlier one
    INSERT INTO storage.tenant_isolation AS t (table_name, tenant_column, setting) VALUES (target, tenant_column, setting)
        ON CONFLICT (table_name) DO UPDATE SET tenant_column = EXCLUDED.tenant_column, setting = EXCLUDED.setting;
    -- the table, then every partition, level by level (a partition read directly is not covered by
    -- its parent's policies)
    FOR part IN SELECT x.rel FROM (SELECT target AS rel, -1 AS level
                                   UNION ALL
                                   SELECT p.relid, p.level FROM pg_partition_tree(target) p WHERE p.relid <> target) x
                 ORDER BY x.level, x.rel LOOP
        PERFORM storage._tenant_apply(part, tenant_column, setting);
    END LOOP;
    -- an index led by the tenant column, unless one exists
    IF NOT EXISTS (SELECT FROM pg_index x WHERE x.indrelid = target AND x.indkey[0] = attnum) THEN
        PERFORM storage._run_as_owner(target, format('CREATE INDEX %I ON %s (%I)',
            storage._partition_fit(rel.relname, '_' || tenant_column || '_tenant'), target, tenant_column));
    END IF;
    -- views over the table check the querying role's rows, not their owner's
    -- (not a session's temporary view: only that session may change it, and it reads as its owner
    -- only for that session)
    FOR v IN SELECT d.view FROM storage._dependent_views(target) d JOIN pg_class c ON c.oid = d.view
              WHERE d.kind = 'v' AND c.relpersistence <> 't' LOOP
        PERFORM storage._run_as_owner(v, format('ALTER VIEW %s SET (security_invoker = true)', v));
    END LOOP;
    -- what reads the table without its policies: every role that may read it sees every tenant
    FOR b IN SELECT * FROM storage._tenant_bypasses() x WHERE x.isolated = target ORDER BY x.kind, x.object LOOP
        RAISE WARNING 'pg_storage_ext: % % reads %, isolated by tenant, without its tenant policies', b.kind, b.object, target
              USING DETAIL = b.reason || '. Every role that may read it sees every tenant''s rows.',
                    HINT = b.fix || ' storage.grant_schema gives the application roles no privileges on it; storage.security_report() lists it.';
    END LOOP;
END $$;
COMMENT ON FUNCTION storage.enable_tenant_isolation(regclass, name, text) IS
    'Isolates a table by tenant: row security enabled and forced (the owner too), one policy per command comparing tenant_column with the setting (read once per statement); an unset or empty setting sees and writes nothing; a row cannot be written into another tenant; an index led by the column; every partition covered, and every partition or sub-partition made or attached later by any DDL (the event trigger pg_storage_ext_tenant_ddl); views over the table switched to security_invoker; a WARNING names each object that still reads it without the policies (materialized views, views without security_invoker, SECURITY DEFINER routines of a role row security does not bind).';

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
    -- first, so that the DDL event trigger does not put back what this removes
    DELETE FROM storage.tenant_isolation WHERE table_name = target;
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
    part regclass;
    parts regclass[];
    covered boolean[];
    coltype text;
    bypasses jsonb;
    b record;
    n_all bigint;
    n_col bigint;
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
    coltype := (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = target AND attname = cfg.tenant_column);
    -- read before the role changes (the probe role may not call internal functions)
    -- (another session's temporary view is that session's alone, and out of reach)
    views := ARRAY(SELECT d.view FROM storage._dependent_views(target) d JOIN pg_class c ON c.oid = d.view
                    WHERE d.kind = 'v' AND c.relpersistence <> 't');
    -- every partition and sub-partition, each read directly below (its own row security applies,
    -- not its parent's)
    SELECT coalesce(array_agg(p.relid ORDER BY p.level, p.relid), '{}'),
           coalesce(array_agg(storage._tenant_covered(p.relid, target) ORDER BY p.level, p.relid), '{}')
      INTO parts, covered
      FROM pg_partition_tree(target) p WHERE p.relid <> target;
    -- what reads the table without its policies, each read below as the app role; a routine only
    -- when it needs no argument and cannot write (not VOLATILE)
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'classid', x.classid::oid, 'obj', x.obj, 'kind', x.kind, 'object', x.object, 'reason', x.reason,
               'nsp', n.nspname,
               'call', CASE WHEN x.classid = 'pg_class'::regclass THEN x.obj::regclass::text ELSE format('%I.%I()', n.nspname, f.proname) END,
               'callable', x.classid = 'pg_class'::regclass
                           OR (f.prokind = 'f' AND f.provolatile <> 'v' AND f.pronargs = f.pronargdefaults))
               ORDER BY x.kind, x.object), '[]')
      INTO bypasses
      FROM (SELECT DISTINCT ON (y.classid, y.obj) y.* FROM storage._tenant_bypasses() y WHERE y.isolated = target) x
      LEFT JOIN pg_class c ON x.classid = 'pg_class'::regclass AND c.oid = x.obj
      LEFT JOIN pg_proc f ON x.classid = 'pg_proc'::regclass AND f.oid = x.obj
      JOIN pg_namespace n ON n.oid = coalesce(c.relnamespace, f.pronamespace);
    BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', probe);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target), probe);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', target, probe);
        FOREACH v IN ARRAY views LOOP
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v), probe);
            EXECUTE format('GRANT SELECT ON %s TO %I', v, probe);
        END LOOP;
        FOREACH part IN ARRAY parts LOOP
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = part), probe);
            EXECUTE format('GRANT SELECT, UPDATE ON %s TO %I', part, probe);
        END LOOP;
        FOR b IN SELECT * FROM jsonb_to_recordset(bypasses) AS x(classid oid, obj oid, nsp name, callable boolean) WHERE x.callable LOOP
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', b.nsp, probe);
            IF b.classid = 'pg_class'::regclass THEN
                EXECUTE format('GRANT SELECT ON %s TO %I', b.obj::regclass, probe);
            ELSE
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', b.obj::regprocedure, probe);
            END IF;
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
        -- each partition named directly
        FOR i IN 1 .. cardinality(parts) LOOP
            results := results || jsonb_build_array(jsonb_build_array(format('partition %s: row security forced, with the tenant policies', parts[i]),
                covered[i], CASE WHEN covered[i] THEN 'as on ' || target ELSE 'missing, or not those of ' || target END));
        END LOOP;
        PERFORM set_config('role', probe, true);
        PERFORM set_config(cfg.setting, tenant_a, true);
        FOREACH part IN ARRAY parts LOOP
            BEGIN
                EXECUTE format('SELECT count(*) FROM %s WHERE %I::text = $1', part, cfg.tenant_column) INTO n USING tenant_b;
                results := results || jsonb_build_array(jsonb_build_array(format('app role: read the other tenant''s rows through partition %s', part),
                                                                          n = 0, n || ' rows seen'));
                EXECUTE format('UPDATE %s SET %I = CAST($2 AS %s) WHERE %I::text = $1', part, cfg.tenant_column, coltype, cfg.tenant_column)
                    USING tenant_b, tenant_a;
                GET DIAGNOSTICS n = ROW_COUNT;
                results := results || jsonb_build_array(jsonb_build_array(format('app role: take the other tenant''s rows through partition %s', part),
                                                                          n = 0, n || ' rows moved'));
                RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = 'undo';
            EXCEPTION WHEN assert_failure THEN NULL;
                      WHEN insufficient_privilege THEN
                results := results || jsonb_build_array(jsonb_build_array(format('app role: take the other tenant''s rows through partition %s', part),
                                                                          true, SQLERRM));
                      WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
                results := results || jsonb_build_array(jsonb_build_array(format('app role: read or take the other tenant''s rows through partition %s', part),
                                                                          NULL::boolean, 'inconclusive: ' || state || ' ' || SQLERRM));
            END;
        END LOOP;
        -- what reads the table without its policies, read through as the app role
        FOR b IN SELECT * FROM jsonb_to_recordset(bypasses) AS x(kind text, object text, reason text, call text, callable boolean) LOOP
            IF NOT b.callable THEN
                results := results || jsonb_build_array(jsonb_build_array(format('app role: read the other tenant''s rows through %s %s', b.kind, b.object),
                    NULL::boolean, 'not called (it takes arguments or is VOLATILE): ' || b.reason));
                CONTINUE;
            END IF;
            BEGIN
                EXECUTE format('SELECT count(*), count(*) FILTER (WHERE to_jsonb(x) ? $2), count(*) FILTER (WHERE to_jsonb(x) ->> $2 = $1) FROM %s AS x', b.call)
                   INTO n_all, n_col, n USING tenant_b, cfg.tenant_column::text;
                results := results || jsonb_build_array(jsonb_build_array(format('app role: read the other tenant''s rows through %s %s', b.kind, b.object),
                    CASE WHEN n_col = 0 AND n_all > 0 THEN NULL ELSE n = 0 END,
                    CASE WHEN n_col = 0 AND n_all > 0
                         THEN format('%s rows came back, none with a column %I to tell whose they are: %s', n_all, cfg.tenant_column, b.reason)
                         WHEN n > 0 THEN format('%s rows of the other tenant came back: %s', n, b.reason)
                         ELSE '0 rows of the other tenant came back' END));
                RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = 'undo';
            EXCEPTION WHEN assert_failure THEN NULL;
                      WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
                results := results || jsonb_build_array(jsonb_build_array(format('app role: read the other tenant''s rows through %s %s', b.kind, b.object),
                                                                          NULL::boolean, 'inconclusive: ' || state || ' ' || SQLERRM));
            END;
        END LOOP;
        PERFORM set_config('role', 'none', true);
        RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = 'undo';
    EXCEPTION WHEN assert_failure THEN NULL;
    END;
    RETURN QUERY SELECT e->>0, (e->>1)::boolean, e->>2 FROM jsonb_array_elements(results) e;
END $$;
COMMENT ON FUNCTION storage.verify_tenant_isolation(regclass, text, text) IS
    'Proves the tenant isolation of a table: as a role with app_user''s privileges and as the table''s owner, with tenant_a set, reads, updates, deletes and inserts against tenant_b''s rows, and without any tenant; each partition and sub-partition named directly (its policies, reading and taking tenant_b''s rows); each materialized view, view without security_invoker and SECURITY DEFINER routine (no argument, not VOLATILE) that reads the table without its policies, read through; one row per check (ok false: a hole; NULL: inconclusive). Everything it tries is rolled back.';

-- The extension an object belongs to (pg_depend's 'e' link), or NULL.
CREATE FUNCTION storage._extension_of(classid regclass, objid oid) RETURNS name
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
     WHERE d.classid = $1 AND d.objid = $2 AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
     LIMIT 1
$$;
COMMENT ON FUNCTION storage._extension_of(regclass, oid) IS
    'Internal: the extension an object belongs to, or NULL.';

-- Lints of the database's security, after Supabase's splinter and the traps users fall into:
-- one row per finding, with the statement that fixes it and the extension the object belongs to
-- (NULL: the user's).
CREATE FUNCTION storage._security_findings()
RETURNS TABLE (object text, issue text, severity text, fix text, extension name)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    -- row security that the owner bypasses, or that admits nothing or everything
    RETURN QUERY
    SELECT c.oid::regclass::text, 'row level security is enabled but not forced: the table''s owner bypasses it', 'warning',
           format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', c.oid::regclass), storage._extension_of('pg_class', c.oid)
      FROM pg_class c
     WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND NOT c.relforcerowsecurity
       AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace);
    RETURN QUERY
    SELECT c.oid::regclass::text, 'row level security is enabled without any policy: only the owner sees rows', 'info',
           format('CREATE POLICY ... ON %s, or ALTER TABLE %s DISABLE ROW LEVEL SECURITY;', c.oid::regclass, c.oid::regclass),
           storage._extension_of('pg_class', c.oid)
      FROM pg_class c
     WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid);
    RETURN QUERY
    SELECT format('policy %I on %s', p.polname, p.polrelid::regclass), 'the policy is always true: it isolates nothing', 'error',
           format('ALTER POLICY %I ON %s USING (...) WITH CHECK (...);', p.polname, p.polrelid::regclass),
           storage._extension_of('pg_class', p.polrelid)
      FROM pg_policy p
     WHERE p.polpermissive
       AND (pg_get_expr(p.polqual, p.polrelid) = 'true' OR pg_get_expr(p.polwithcheck, p.polrelid) = 'true');
    RETURN QUERY
    SELECT format('%s (%s)', p.polrelid::regclass,
                  CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END),
           format('%s permissive policies apply to the same command: a row any of them admits is admitted (%s)',
                  count(*), string_agg(quote_ident(p.polname), ', ' ORDER BY p.polname)),
           'warning', 'Merge them into one policy, or make the extra ones AS RESTRICTIVE.', storage._extension_of('pg_class', p.polrelid)
      FROM pg_policy p
     WHERE p.polpermissive
     GROUP BY p.polrelid, p.polcmd HAVING count(*) > 1;
    -- views that read row-secured tables with their owner's rights
    RETURN QUERY
    SELECT DISTINCT v.oid::regclass::text,
           format('the view reads %s, which has row level security, as the view''s owner (security_invoker is off)', t.oid::regclass),
           'error', format('ALTER VIEW %s SET (security_invoker = true);', v.oid::regclass), storage._extension_of('pg_class', v.oid)
      FROM pg_class v
      JOIN pg_rewrite r ON r.ev_class = v.oid
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
      JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid AND t.relrowsecurity
     WHERE v.relkind = 'v'
       AND NOT coalesce((SELECT bool_or(o.option_value::boolean) FROM pg_options_to_table(v.reloptions) o
                          WHERE o.option_name = 'security_invoker'), false)
       -- reported below, with the isolated table they read
       AND v.oid NOT IN (SELECT b.obj FROM storage._tenant_bypasses() b WHERE b.classid = 'pg_class'::regclass);
    -- SECURITY DEFINER functions that resolve names through the caller's search_path
    RETURN QUERY
    SELECT p.oid::regprocedure::text, 'SECURITY DEFINER function without a pinned search_path: a caller can plant objects it resolves', 'error',
           format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp;', p.oid::regprocedure),
           storage._extension_of('pg_proc', p.oid)
      FROM pg_proc p
     WHERE p.prosecdef AND p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%');
    -- what PUBLIC may change
    RETURN QUERY
    SELECT c.oid::regclass::text, format('PUBLIC may %s it', string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type)), 'error',
           format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %s FROM PUBLIC;', c.oid::regclass),
           storage._extension_of('pg_class', c.oid)
      FROM pg_class c, aclexplode(c.relacl) a
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.grantee = 0
       AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
       AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
     GROUP BY c.oid;
    RETURN QUERY
    SELECT 'schema ' || quote_ident(n.nspname), 'PUBLIC may create objects in it (a user can plant functions and operators others resolve)', 'error',
           format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC;', n.nspname), storage._extension_of('pg_namespace', n.oid)
      FROM pg_namespace n, aclexplode(n.nspacl) a
     WHERE a.grantee = 0 AND a.privilege_type = 'CREATE';
    -- passwords and superusers
    IF current_setting('password_encryption') <> 'scram-sha-256' THEN
        RETURN QUERY SELECT 'setting password_encryption', format('passwords are stored as %s', current_setting('password_encryption')),
                            'error', 'ALTER SYSTEM SET password_encryption = ''scram-sha-256''; then set every password again.', NULL::name;
    END IF;
    IF has_table_privilege('pg_authid', 'SELECT') THEN
        RETURN QUERY
        SELECT 'role ' || quote_ident(a.rolname),
               CASE WHEN a.rolpassword IS NULL THEN 'the role can log in and has no password (it relies on trust or peer rules in pg_hba.conf)'
                    ELSE 'the role''s password is an MD5 hash' END,
               CASE WHEN a.rolpassword IS NULL THEN 'warning' ELSE 'error' END,
               format('ALTER ROLE %I PASSWORD ''...''; (with password_encryption = scram-sha-256)', a.rolname), NULL::name
          FROM pg_authid a
         WHERE a.rolcanlogin AND (a.rolpassword IS NULL OR a.rolpassword LIKE 'md5%')
           AND a.oid <> 10;   -- the bootstrap superuser logs in locally
    ELSE
        RETURN QUERY SELECT 'roles', 'passwords were not checked: reading pg_authid needs a superuser', 'info',
                            'Run storage.security_report() as a superuser.', NULL::name;
    END IF;
    RETURN QUERY
    SELECT 'role ' || quote_ident(s.usename),
           format('a superuser is used by %s client connection(s) (%s)', count(*), string_agg(DISTINCT coalesce(nullif(s.application_name, ''), '?'), ', ')),
           'warning', 'Give applications roles without SUPERUSER (storage.create_roles) and keep superusers for administration.', NULL::name
      FROM pg_stat_activity s JOIN pg_roles r ON r.oid = s.usesysid
     WHERE r.rolsuper AND s.backend_type = 'client backend' AND s.client_addr IS NOT NULL AND s.pid <> pg_backend_pid()
     GROUP BY s.usename;
    -- tenant isolation that a partition escapes (row security off or not forced, tenant policies
    -- missing or not those of the isolated table)
    RETURN QUERY
    SELECT p.relid::regclass::text, format('a partition of %s, isolated by tenant, lacks its tenant policies', t.table_name), 'error',
           format('SELECT storage.enable_tenant_isolation(%L, %L, %L);', t.table_name::text, t.tenant_column, t.setting), NULL::name
      FROM storage.tenant_isolation t CROSS JOIN LATERAL pg_partition_tree(t.table_name) p
     WHERE p.relid <> t.table_name AND NOT storage._tenant_covered(p.relid, t.table_name);
    -- and what reads an isolated table without its policies
    RETURN QUERY
    SELECT b.object, format('%s%s reads %s, isolated by tenant, without its tenant policies: %s', upper(left(b.kind, 1)), substr(b.kind, 2), b.isolated, b.reason),
           CASE WHEN b.classid = 'pg_class'::regclass THEN 'error' ELSE 'warning' END, b.fix, NULL::name
      FROM storage._tenant_bypasses() b;
END $$;
COMMENT ON FUNCTION storage._security_findings() IS
    'Internal: the findings of storage.security_report(), each with the extension its object belongs to (NULL: the user''s).';

-- Reports what the user owns and what pg_storage_ext made. Objects of other extensions are left
-- out: their privileges are their extension's (following a fix there, e.g. revoking what pg_cron
-- grants on cron.job_run_details, would break it); one info row per such extension says so.
CREATE FUNCTION storage.security_report() RETURNS TABLE (object text, issue text, severity text, fix text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH f AS (SELECT * FROM storage._security_findings())
    SELECT f.object, f.issue, f.severity, f.fix FROM f WHERE f.extension IS NULL OR f.extension = 'pg_storage_ext'
    UNION ALL
    SELECT 'extension ' || quote_ident(f.extension),
           format('%s finding(s) on objects of this extension left out (%s): the extension made them and manages their privileges; changing them could break it',
                  count(*), string_agg(DISTINCT f.object, ', ' ORDER BY f.object)),
           'info', 'Nothing to change here; secure it as that extension documents.'
      FROM f WHERE f.extension <> 'pg_storage_ext'
     GROUP BY f.extension;
END $$;
COMMENT ON FUNCTION storage.security_report() IS
    'Security lints over what the user owns and what pg_storage_ext made, one row per finding with its fix: row security not forced, without policies, always true or widened by several permissive policies; views over row-secured tables without security_invoker; SECURITY DEFINER functions without a pinned search_path; tables and schemas PUBLIC may change; password encryption, roles without passwords or with MD5 ones; superusers used by client connections; partitions escaping tenant isolation; materialized views, views and SECURITY DEFINER routines reading a table isolated by tenant without its policies. Objects of other extensions are left out (one info row per extension says how many findings).';

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

-- Follows DDL on what tenant isolation covers. A partition or sub-partition made or attached in
-- an isolated tree, however (CREATE TABLE … PARTITION OF, ATTACH PARTITION, a table moved from
-- another tree), gets row security and the tenant policies, as its owner; a view, materialized
-- view or SECURITY DEFINER routine that comes to read an isolated table without its policies is
-- named in a WARNING, and a new view or materialized view of that kind loses the privileges the
-- application roles (app_user and read_only_user of storage.create_roles, any prefix) got on it
-- from storage.grant_schema's default privileges. Acts only on isolated trees and on what reads
-- them; never waits long on a lock (lock_timeout) and never fails the user's statement: on an
-- error it warns and says how to finish the work. Its own DDL (storage._tenant_apply) does not
-- wake it again; nor does an ALTER TABLE run with row_security = off (a restore).
CREATE FUNCTION storage._tenant_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '100ms' AS $$
DECLARE
    ctx text;
    root regclass;
    under regclass;
    b record;
    app_roles text;
BEGIN
    IF NOT EXISTS (SELECT FROM storage.tenant_isolation) THEN
        RETURN;
    END IF;
    -- woken by the extension's own policy work (storage._tenant_apply's statements): nothing to
    -- sync there (the work converges anyway: a table it finishes is covered), but what reads an
    -- isolated table is still looked at below
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    -- A restore (pg_dump's output sets row_security = off) enables row security on each table
    -- with ALTER TABLE before it creates the dumped policies: policies made here would make those
    -- fail. A partition a restore ATTACHes comes with its policies.
    BEGIN
        FOR root, under IN
            SELECT DISTINCT t.table_name, c.objid::regclass
              FROM pg_event_trigger_ddl_commands() AS c
             CROSS JOIN LATERAL pg_partition_ancestors(c.objid) AS a
              JOIN storage.tenant_isolation AS t ON t.table_name = a.relid
             WHERE c.classid = 'pg_class'::regclass
               AND NOT (TG_TAG = 'ALTER TABLE' AND current_setting('row_security') = 'off')
               AND ctx !~ '(^|\n)PL/pgSQL function storage\._tenant_apply\(regclass,name,text\) line [0-9]+ at '
        LOOP
            BEGIN
                PERFORM storage._tenant_sync(root, under);
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'pg_storage_ext: the partitions of %, isolated by tenant, did not all get their tenant policies', root
                      USING DETAIL = SQLSTATE || ': ' || SQLERRM || '. A partition without them, named directly, shows and changes every tenant''s rows.',
                            HINT = format('Run SELECT storage.enable_tenant_isolation(%L, %L, %L); once the lock is free.', root::text,
                                          (SELECT tenant_column FROM storage.tenant_isolation WHERE table_name = root),
                                          (SELECT setting FROM storage.tenant_isolation WHERE table_name = root));
            END;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'pg_storage_ext: the partitions made by % were not checked against tenant isolation', TG_TAG
              USING DETAIL = SQLSTATE || ': ' || SQLERRM,
                    HINT = 'storage.security_report() lists partitions that escape tenant isolation; SELECT storage.enable_tenant_isolation(...) again covers them.';
    END;
    BEGIN
        IF NOT EXISTS (SELECT FROM pg_event_trigger_ddl_commands() AS c
                        WHERE c.classid = 'pg_proc'::regclass
                           OR (c.classid = 'pg_class'::regclass
                               AND EXISTS (SELECT FROM pg_class r WHERE r.oid = c.objid AND r.relkind IN ('v', 'm')))) THEN
            RETURN;
        END IF;
        FOR b IN
            SELECT DISTINCT ON (x.classid, x.obj) x.*
              FROM storage._tenant_bypasses() AS x
             WHERE (x.classid, x.obj) IN (SELECT c.classid, c.objid FROM pg_event_trigger_ddl_commands() AS c)
             ORDER BY x.classid, x.obj, x.isolated
        LOOP
            -- the application roles' privileges on it: a new object got them from grant_schema's
            -- default privileges, and loses them; an existing one keeps them (they may have been
            -- granted by hand), named
            SELECT string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolname) INTO app_roles
              FROM pg_roles r
             WHERE b.classid = 'pg_class'::regclass
               AND shobj_description(r.oid, 'pg_authid') ~ '^pg_storage_ext (app_user|read_only_user): '
               AND EXISTS (SELECT FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = b.obj AND a.grantee = r.oid);
            IF app_roles IS NOT NULL AND TG_TAG IN ('CREATE VIEW', 'CREATE MATERIALIZED VIEW') THEN
                EXECUTE format('REVOKE ALL ON %s FROM %s', b.obj::regclass, app_roles);
            END IF;
            RAISE WARNING 'pg_storage_ext: % % reads %, isolated by tenant, without its tenant policies', b.kind, b.object, b.isolated
                  USING DETAIL = b.reason || '. Every role that may read it sees every tenant''s rows.'
                                 || CASE WHEN app_roles IS NULL THEN ''
                                         WHEN TG_TAG IN ('CREATE VIEW', 'CREATE MATERIALIZED VIEW')
                                         THEN format(' The application roles %s lost the privileges storage.grant_schema''s default privileges gave them on it.', app_roles)
                                         ELSE format(' The application roles %s keep the privileges they have on it.', app_roles) END,
                        HINT = b.fix || CASE WHEN app_roles IS NOT NULL AND TG_TAG NOT IN ('CREATE VIEW', 'CREATE MATERIALIZED VIEW')
                                             THEN format(' Or REVOKE ALL ON %s FROM %s;', b.obj::regclass, app_roles) ELSE '' END
                               || ' GRANT it explicitly only if every tenant may see all of it; storage.security_report() lists it.';
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'pg_storage_ext: what % made was not checked against tenant isolation', TG_TAG
              USING DETAIL = SQLSTATE || ': ' || SQLERRM,
                    HINT = 'storage.security_report() lists what reads a table isolated by tenant without its policies.';
    END;
END $$;
COMMENT ON FUNCTION storage._tenant_ddl() IS
    'Internal: event trigger; gives partitions made or attached in a tree isolated by tenant their row security and tenant policies, and warns about (and takes the application roles'' default privileges from) new objects that read an isolated table without its policies.';
CREATE EVENT TRIGGER pg_storage_ext_tenant_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE VIEW', 'ALTER VIEW', 'CREATE MATERIALIZED VIEW',
                 'ALTER MATERIALIZED VIEW', 'CREATE FUNCTION', 'ALTER FUNCTION', 'CREATE PROCEDURE',
                 'ALTER PROCEDURE', 'ALTER ROUTINE')
    EXECUTE FUNCTION storage._tenant_ddl();
