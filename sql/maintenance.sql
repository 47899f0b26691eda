-- Maintenance capability: what the database needs now, and why, from statistics and catalogs
-- only (no table is scanned): storage.maintenance_plan(). Thresholds are the settings
-- pg_storage_ext.maintenance_* (README: Maintenance): the plan loads the library first (its first
-- variable is storage.version()), so the settings are defined and checked when it reads them.

-- A maintenance setting as a number: pg_storage_ext.maintenance_<name>, or the default.
CREATE FUNCTION storage._maintenance_setting(name text, fallback double precision) RETURNS double precision
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(nullif(current_setting('pg_storage_ext.maintenance_' || name, true), '')::float8, fallback)
$$;
COMMENT ON FUNCTION storage._maintenance_setting(text, double precision) IS
    'Internal: the setting pg_storage_ext.maintenance_<name> as a number, or fallback when unset.';

-- The leaf-density estimate of a B-tree index from the statistics of its columns (ioguix's
-- method, simplified): the pages its tuples need at the index's fillfactor against the pages it
-- has. NULL for indexes it cannot estimate (expressions, columns without statistics, tiny ones).
CREATE FUNCTION storage._btree_bloat(idx regclass) RETURNS double precision
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN c.relpages < 16 OR w.width IS NULL OR c.reltuples <= 0 THEN NULL
                ELSE greatest(0, 1 - ceil(c.reltuples * (((8 + w.width + 7) / 8) * 8 + 4)
                                          / (8152 * coalesce((SELECT split_part(o, '=', 2)::int FROM unnest(c.reloptions) o
                                                               WHERE o LIKE 'fillfactor=%'), 90) / 100.0))
                                     / (c.relpages - 1)) END
      FROM pg_class c
      JOIN pg_index i ON i.indexrelid = c.oid
     CROSS JOIN LATERAL (SELECT CASE WHEN count(*) FILTER (WHERE s.avg_width IS NULL) = 0 AND i.indexprs IS NULL
                                     THEN sum(s.avg_width) END AS width
                           FROM unnest(i.indkey[0:i.indnkeyatts - 1]) AS k(attnum)
                           LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                           LEFT JOIN pg_class t ON t.oid = i.indrelid
                           LEFT JOIN pg_namespace n ON n.oid = t.relnamespace
                           LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = t.relname
                                               AND s.attname = a.attname) AS w
     WHERE c.oid = idx AND c.relam = (SELECT a.oid FROM pg_am a WHERE a.amname = 'btree')
$$;
COMMENT ON FUNCTION storage._btree_bloat(regclass) IS
    'Internal: estimated bloat of a B-tree index (0..1: the share of its pages its tuples do not need at its fillfactor), from pg_stats; NULL when it cannot be estimated.';

CREATE FUNCTION storage.maintenance_plan()
RETURNS TABLE(object regclass, action text, reason text, command text, priority integer)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    loaded text := storage.version();
    freeze_fraction float8 := storage._maintenance_setting('freeze_fraction', 0.8);
    vac_threshold float8 := storage._maintenance_setting('vacuum_threshold', 1000);
    vac_scale float8 := storage._maintenance_setting('vacuum_scale_factor', 0.2);
    an_threshold float8 := storage._maintenance_setting('analyze_threshold', 1000);
    an_scale float8 := storage._maintenance_setting('analyze_scale_factor', 0.1);
    bloat_limit float8 := storage._maintenance_setting('index_bloat', 0.5);
    exact_pages float8 := storage._maintenance_setting('pgstatindex_max_pages', 12800);
    unused_days float8 := storage._maintenance_setting('unused_index_days', 7);
    stats_since timestamptz := coalesce((SELECT d.stats_reset FROM pg_stat_database d WHERE d.datname = current_database()),
                                        pg_postmaster_start_time());
    pgstatindex regprocedure := (SELECT p.oid::regprocedure FROM pg_proc p
                                   JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
                                   JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pgstattuple'
                                  WHERE p.proname = 'pgstatindex' AND p.proargtypes[0] = 'regclass'::regtype LIMIT 1);
    xid_max float8 := current_setting('autovacuum_freeze_max_age')::float8;
    mxid_max float8 := current_setting('autovacuum_multixact_freeze_max_age')::float8;
    r record;
    density float8;
BEGIN
    -- Tables: freezing, dead tuples, the visibility map of insert-only tables, statistics (a
    -- VACUUM (ANALYZE) planned for a table covers its ANALYZE).
    RETURN QUERY
    WITH t AS (
        SELECT c.oid::regclass AS rel, c.relkind, greatest(c.reltuples, 0)::bigint AS rows, c.relpages, c.relallvisible,
               age(c.relfrozenxid) AS xid_age, mxid_age(c.relminmxid) AS mxid_age,
               s.n_dead_tup, s.n_ins_since_vacuum, s.n_mod_since_analyze, s.n_live_tup,
               coalesce(s.last_analyze, s.last_autoanalyze) AS analysed
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
         WHERE c.relkind IN ('r', 'm', 'p') AND c.relpersistence <> 't'
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_'),
    f AS (
        SELECT t.*,
               t.relkind <> 'p' AND t.xid_age > freeze_fraction * xid_max AS frz_xid,
               t.relkind <> 'p' AND t.mxid_age > freeze_fraction * mxid_max AS frz_mxid,
               t.relkind = 'r' AND t.n_dead_tup > vac_threshold + vac_scale * t.rows AS dead,
               t.relkind = 'r' AND t.relpages > 0 AND t.relallvisible < 0.5 * t.relpages
                   AND t.n_ins_since_vacuum > vac_threshold + vac_scale * t.rows AS vm
          FROM t)
    SELECT f.rel, x.action, x.reason, x.command, x.priority
      FROM f
     CROSS JOIN LATERAL (
        SELECT 'VACUUM (FREEZE)', format('transaction id age %s is past %s%% of autovacuum_freeze_max_age (%s)',
                                         f.xid_age, round(freeze_fraction * 100), xid_max),
               format('VACUUM (FREEZE) %s', f.rel), 0
         WHERE f.frz_xid
        UNION ALL
        SELECT 'VACUUM (FREEZE)', format('multixact age %s is past %s%% of autovacuum_multixact_freeze_max_age (%s)',
                                         f.mxid_age, round(freeze_fraction * 100), mxid_max),
               format('VACUUM (FREEZE) %s', f.rel), 0
         WHERE f.frz_mxid AND NOT f.frz_xid
        UNION ALL
        SELECT 'VACUUM', format('%s dead tuples, past %s + %s x %s rows (autovacuum has not caught up)',
                                f.n_dead_tup, vac_threshold, vac_scale, f.rows),
               format('VACUUM (ANALYZE) %s', f.rel), 2
         WHERE f.dead AND NOT (f.frz_xid OR f.frz_mxid)
        UNION ALL
        SELECT 'VACUUM', format('%s rows inserted since the last vacuum and %s of %s pages all-visible (index-only scans read the heap)',
                                f.n_ins_since_vacuum, f.relallvisible, f.relpages),
               format('VACUUM (ANALYZE) %s', f.rel), 5
         WHERE f.vm AND NOT (f.frz_xid OR f.frz_mxid OR f.dead)
        UNION ALL
        -- autovacuum never analyses a partitioned table: its own statistics come from ANALYZE
        SELECT 'ANALYZE', 'a partitioned table is never analysed by autovacuum; it has no statistics of its own',
               format('ANALYZE %s', f.rel), 3
         WHERE f.relkind = 'p' AND f.analysed IS NULL AND EXISTS (SELECT FROM pg_inherits i WHERE i.inhparent = f.rel)
        UNION ALL
        SELECT 'ANALYZE', 'never analysed', format('ANALYZE %s', f.rel), 1
         WHERE f.relkind <> 'p' AND NOT (f.dead OR f.vm) AND f.analysed IS NULL
           AND (f.n_live_tup > 0 OR f.n_mod_since_analyze > 0 OR f.rows > 0)
        UNION ALL
        SELECT 'ANALYZE', format('%s rows changed since the last analyse (%s), past %s + %s x %s rows',
                                 f.n_mod_since_analyze, to_char(f.analysed AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'), an_threshold, an_scale, f.rows),
               format('ANALYZE %s', f.rel), 3
         WHERE f.relkind <> 'p' AND NOT (f.dead OR f.vm) AND f.analysed IS NOT NULL
           AND f.n_mod_since_analyze > an_threshold + an_scale * f.rows) AS x(action, reason, command, priority)
     ORDER BY f.rel::oid;

    -- Indexes: left invalid by a failed concurrent build (and not being built now), or bloated
    -- (estimated from pg_stats for B-trees of 16 pages or more; confirmed by pgstatindex, from
    -- pgstattuple, when it is installed and the index is small enough).
    RETURN QUERY
    SELECT i.indexrelid::regclass, 'REINDEX',
           format('invalid index on %s (a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY): maintained on every write, never used',
                  i.indrelid::regclass),
           format('REINDEX INDEX CONCURRENTLY %s', i.indexrelid::regclass), 1
      FROM pg_index i
      JOIN pg_class c ON c.oid = i.indexrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT i.indisvalid AND c.relpersistence <> 't'
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_'
       AND NOT EXISTS (SELECT FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid)
     ORDER BY i.indexrelid;
    FOR r IN
        SELECT c.oid::regclass AS idx, c.relpages, b.bloat
          FROM pg_class c
          JOIN pg_index i ON i.indexrelid = c.oid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         CROSS JOIN LATERAL (SELECT storage._btree_bloat(c.oid) AS bloat) AS b
         WHERE c.relkind = 'i' AND c.relam = (SELECT a.oid FROM pg_am a WHERE a.amname = 'btree') AND c.relpages >= 16 AND i.indisvalid
           AND c.relpersistence <> 't'
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_'
           AND b.bloat > bloat_limit
         ORDER BY c.oid
    LOOP
        density := r.bloat;
        IF pgstatindex IS NOT NULL AND r.relpages <= exact_pages THEN
            BEGIN
                EXECUTE format('SELECT 1 - avg_leaf_density / 100 FROM %s($1)', pgstatindex::regproc) INTO density USING r.idx;
            EXCEPTION WHEN insufficient_privilege THEN
                NULL;  -- the estimate stands
            END;
        END IF;
        IF density > bloat_limit THEN
            RETURN QUERY SELECT r.idx, 'REINDEX',
                format('about %s%% of its %s pages hold no entries (%s)', round(density::numeric * 100), r.relpages,
                       CASE WHEN pgstatindex IS NOT NULL AND r.relpages <= exact_pages
                            THEN 'pgstatindex' ELSE 'estimated from pg_stats' END),
                format('REINDEX INDEX CONCURRENTLY %s', r.idx), 4;
        END IF;
    END LOOP;

    -- Advice, never run by the plan: unused indexes, duplicate indexes, foreign keys without an index.
    IF stats_since < now() - make_interval(days => unused_days::int) THEN
        RETURN QUERY
        SELECT s.indexrelid::regclass, 'advice: unused index',
               format('no scans since statistics began (%s), %s', to_char(stats_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
                      pg_size_pretty(pg_relation_size(s.indexrelid))),
               format('DROP INDEX CONCURRENTLY %s', s.indexrelid::regclass), 9
          FROM pg_stat_all_indexes s
          JOIN pg_index i ON i.indexrelid = s.indexrelid
         WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND s.schemaname !~ '^pg_temp_'
           AND s.idx_scan = 0 AND i.indisvalid AND NOT i.indisunique AND NOT i.indisprimary AND NOT i.indisexclusion
           AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = s.indexrelid)
         ORDER BY s.indexrelid;
    END IF;
    RETURN QUERY
    SELECT d.indexrelid::regclass, 'advice: duplicate index',
           format('same definition as %s', k.indexrelid::regclass),
           format('DROP INDEX CONCURRENTLY %s', d.indexrelid::regclass), 9
      FROM pg_index d
      JOIN pg_index k ON k.indrelid = d.indrelid AND k.indexrelid <> d.indexrelid
                     AND k.indkey::text = d.indkey::text AND k.indclass::text = d.indclass::text
                     AND k.indcollation::text = d.indcollation::text AND k.indoption::text = d.indoption::text
                     AND k.indisunique = d.indisunique
                     AND pg_get_expr(k.indexprs, k.indrelid) IS NOT DISTINCT FROM pg_get_expr(d.indexprs, d.indrelid)
                     AND pg_get_expr(k.indpred, k.indrelid) IS NOT DISTINCT FROM pg_get_expr(d.indpred, d.indrelid)
      JOIN pg_class c ON c.oid = d.indexrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_temp_'
       AND d.indisvalid AND k.indisvalid
       -- of two equal indexes, the one backing a constraint stays; else the older one
       AND NOT EXISTS (SELECT FROM pg_constraint x WHERE x.conindid = d.indexrelid)
       AND (EXISTS (SELECT FROM pg_constraint x WHERE x.conindid = k.indexrelid) OR k.indexrelid < d.indexrelid)
     ORDER BY d.indexrelid;
    RETURN QUERY
    SELECT f.conrelid::regclass, 'advice: foreign key without index',
           format('foreign key %I (%s) has no index starting with its columns: every DELETE or key UPDATE on %s scans %s',
                  f.conname, cols.list, f.confrelid::regclass, f.conrelid::regclass),
           format('CREATE INDEX CONCURRENTLY ON %s (%s)', f.conrelid::regclass, cols.list), 9
      FROM pg_constraint f
      JOIN pg_class c ON c.oid = f.conrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     CROSS JOIN LATERAL (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) AS list
                           FROM unnest(f.conkey) WITH ORDINALITY AS k(attnum, n)
                           JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.attnum) AS cols
     WHERE f.contype = 'f' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND c.relkind = 'r'
       AND NOT EXISTS (SELECT FROM pg_index i
                        WHERE i.indrelid = f.conrelid AND i.indisvalid
                          AND (SELECT array_agg(x ORDER BY x) FROM unnest(i.indkey[0:cardinality(f.conkey) - 1]) x)
                              = (SELECT array_agg(x ORDER BY x) FROM unnest(f.conkey) x))
     ORDER BY f.oid;
END
$$;
COMMENT ON FUNCTION storage.maintenance_plan() IS
    'What the database needs now and why, from statistics and catalogs only: VACUUM (FREEZE) near wraparound, VACUUM for dead tuples autovacuum has not caught up with and insert-only tables with an unset visibility map, ANALYZE of tables never or long ago analysed (and partitioned tables, which autovacuum never analyses), REINDEX INDEX CONCURRENTLY of invalid and bloated indexes, and advice never run automatically (unused and duplicate indexes, foreign keys without an index). Thresholds: the pg_storage_ext.maintenance_* settings.';
GRANT EXECUTE ON FUNCTION storage.maintenance_plan(), storage._maintenance_setting(text, double precision),
                          storage._btree_bloat(regclass) TO pg_monitor;
