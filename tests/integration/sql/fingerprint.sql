-- A catalog fingerprint of pg_storage_ext's objects: one row (kind, object, detail) per fact that
-- an updated installation must share with a fresh CREATE EXTENSION of the same version. Read by
-- tests/integration/tests/upgrade.rs, which compares the rows of two databases. Names, not OIDs;
-- users' objects (audited tables, log partitions, registered parents) are not members, so only
-- the extension's own objects and their sub-objects are listed.
WITH ext AS (
    SELECT oid, extconfig, extcondition FROM pg_catalog.pg_extension WHERE extname = 'pg_storage_ext'
), members AS (
    SELECT d.classid, d.objid
      FROM pg_catalog.pg_depend d, ext
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.refobjid = ext.oid AND d.deptype = 'e'
), rels AS (
    SELECT c.* FROM pg_catalog.pg_class c
      JOIN members m ON m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND m.objid = c.oid
), facts(kind, object, detail) AS (
    -- every member, whatever its kind: the sets must match
    SELECT 'member', pg_catalog.pg_describe_object(m.classid, m.objid, 0), ''
      FROM members m
    UNION ALL
    SELECT 'extension', 'pg_storage_ext', pg_catalog.concat_ws(' | ',
           'schema ' || e.extnamespace::pg_catalog.regnamespace, 'relocatable ' || e.extrelocatable,
           'owner ' || pg_catalog.pg_get_userbyid(e.extowner))
      FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_storage_ext'
    UNION ALL
    SELECT 'config dump', c.cfg::pg_catalog.regclass::text, coalesce(c.cond, '')
      FROM ext, LATERAL ROWS FROM (pg_catalog.unnest(ext.extconfig), pg_catalog.unnest(ext.extcondition)) AS c(cfg, cond)
    UNION ALL
    SELECT 'function', p.oid::pg_catalog.regprocedure::text, pg_catalog.concat_ws(' | ',
           'returns ' || pg_catalog.pg_get_function_result(p.oid),
           'args ' || pg_catalog.pg_get_function_arguments(p.oid),
           'kind ' || p.prokind::text, 'language ' || l.lanname, 'volatility ' || p.provolatile::text,
           'strict ' || p.proisstrict, 'parallel ' || p.proparallel::text,
           'security definer ' || p.prosecdef, 'leakproof ' || p.proleakproof,
           'config ' || coalesce(p.proconfig::text, '-'),
           'cost ' || p.procost, 'rows ' || p.prorows,
           'source ' || pg_catalog.md5(p.prosrc), 'library ' || coalesce(p.probin, '-'),
           'owner ' || pg_catalog.pg_get_userbyid(p.proowner),
           'acl ' || coalesce(p.proacl::text, 'default'))
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_language l ON l.oid = p.prolang
      JOIN members m ON m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND m.objid = p.oid
    UNION ALL
    SELECT 'schema', n.nspname::text, pg_catalog.concat_ws(' | ',
           'owner ' || pg_catalog.pg_get_userbyid(n.nspowner),
           'acl ' || coalesce(n.nspacl::text, 'default'))
      FROM pg_catalog.pg_namespace n
      JOIN members m ON m.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND m.objid = n.oid
    UNION ALL
    SELECT 'relation', c.oid::pg_catalog.regclass::text, pg_catalog.concat_ws(' | ',
           'kind ' || c.relkind::text, 'persistence ' || c.relpersistence::text,
           'options ' || coalesce(c.reloptions::text, '-'),
           'partition key ' || coalesce(pg_catalog.pg_get_partkeydef(c.oid), '-'),
           'replica identity ' || c.relreplident::text, 'rls ' || c.relrowsecurity || '/' || c.relforcerowsecurity,
           'owner ' || pg_catalog.pg_get_userbyid(c.relowner),
           'acl ' || coalesce(c.relacl::text, 'default'),
           'view ' || coalesce(pg_catalog.md5(pg_catalog.pg_get_viewdef(c.oid)), '-'))
      FROM rels c
    UNION ALL
    SELECT 'column', c.oid::pg_catalog.regclass::text || '.' || a.attname, pg_catalog.concat_ws(' | ',
           'position ' || rank() OVER (PARTITION BY c.oid ORDER BY a.attnum),
           'type ' || pg_catalog.format_type(a.atttypid, a.atttypmod), 'not null ' || a.attnotnull,
           'default ' || coalesce(pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '-'),
           'identity ' || a.attidentity::text, 'generated ' || a.attgenerated::text,
           'collation ' || coalesce(a.attcollation::pg_catalog.regcollation::text, '-'),
           'acl ' || coalesce(a.attacl::text, 'default'))
      FROM rels c
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    UNION ALL
    SELECT 'sequence', s.seqrelid::pg_catalog.regclass::text, pg_catalog.concat_ws(' | ',
           'type ' || s.seqtypid::pg_catalog.regtype, 'start ' || s.seqstart, 'increment ' || s.seqincrement,
           'min ' || s.seqmin, 'max ' || s.seqmax, 'cache ' || s.seqcache, 'cycle ' || s.seqcycle)
      FROM pg_catalog.pg_sequence s JOIN rels c ON c.oid = s.seqrelid
    UNION ALL
    SELECT 'index', i.indexrelid::pg_catalog.regclass::text, pg_catalog.pg_get_indexdef(i.indexrelid)
      FROM pg_catalog.pg_index i JOIN rels c ON c.oid = i.indrelid
    UNION ALL
    SELECT 'constraint', c.oid::pg_catalog.regclass::text || ' ' || k.conname,
           pg_catalog.pg_get_constraintdef(k.oid)
      FROM pg_catalog.pg_constraint k JOIN rels c ON c.oid = k.conrelid
    UNION ALL
    SELECT 'trigger', c.oid::pg_catalog.regclass::text || ' ' || t.tgname,
           pg_catalog.pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
      FROM pg_catalog.pg_trigger t JOIN rels c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'policy', c.oid::pg_catalog.regclass::text || ' ' || pol.polname, pg_catalog.concat_ws(' | ',
           pol.polcmd::text::text, pol.polpermissive::text, pol.polroles::text,
           pg_catalog.pg_get_expr(pol.polqual, pol.polrelid), pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid))
      FROM pg_catalog.pg_policy pol JOIN rels c ON c.oid = pol.polrelid
    UNION ALL
    SELECT 'event trigger', e.evtname::text, pg_catalog.concat_ws(' | ',
           e.evtevent::text, e.evtfoid::pg_catalog.regproc::text, 'enabled ' || e.evtenabled::text,
           'tags ' || coalesce(e.evttags::text, '-'), 'owner ' || pg_catalog.pg_get_userbyid(e.evtowner))
      FROM pg_catalog.pg_event_trigger e
      JOIN members m ON m.classid = 'pg_catalog.pg_event_trigger'::pg_catalog.regclass AND m.objid = e.oid
    UNION ALL
    SELECT 'operator', o.oid::pg_catalog.regoperator::text, pg_catalog.concat_ws(' | ',
           'function ' || o.oprcode::text, 'commutator ' || o.oprcom::pg_catalog.regoperator::text,
           'negator ' || o.oprnegate::pg_catalog.regoperator::text, 'result ' || o.oprresult::pg_catalog.regtype,
           'restrict ' || o.oprrest::text, 'join ' || o.oprjoin::text)
      FROM pg_catalog.pg_operator o
      JOIN members m ON m.classid = 'pg_catalog.pg_operator'::pg_catalog.regclass AND m.objid = o.oid
    UNION ALL
    SELECT 'type', t.oid::pg_catalog.regtype::text, pg_catalog.concat_ws(' | ',
           'kind ' || t.typtype::text, 'input ' || t.typinput::text, 'output ' || t.typoutput::text,
           'acl ' || coalesce(t.typacl::text, 'default'))
      FROM pg_catalog.pg_type t
      JOIN members m ON m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND m.objid = t.oid
    UNION ALL
    -- comments on every member and on the columns of member relations
    SELECT 'comment', pg_catalog.pg_describe_object(m.classid, m.objid, 0), d.description
      FROM members m
      JOIN pg_catalog.pg_description d ON d.classoid = m.classid AND d.objoid = m.objid AND d.objsubid = 0
    UNION ALL
    SELECT 'comment', pg_catalog.pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description
      FROM rels c
      JOIN pg_catalog.pg_description d ON d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                      AND d.objoid = c.oid AND d.objsubid > 0
)
SELECT kind, object, detail FROM facts ORDER BY kind, object, detail
