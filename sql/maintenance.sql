-- Maintenance capability: what the database needs now, and why, from statistics and catalogs
-- only (no table is scanned): storage.maintenance_plan(). Thresholds are the settings
-- pg_storage_ext.maintenance_* (docs/maintenance.md): the plan loads the library first (its first
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
      JOIN pg_class t ON t.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     -- one pg_stats row per key column, looked up by its keys (the view's indexes serve it)
     CROSS JOIN LATERAL (SELECT CASE WHEN count(*) FILTER (WHERE x.avg_width IS NULL) = 0 AND i.indexprs IS NULL
                                     THEN sum(x.avg_width) END AS width
                           FROM unnest(i.indkey[0:i.indnkeyatts - 1]) AS k(attnum)
                          CROSS JOIN LATERAL (SELECT (SELECT s.avg_width FROM pg_stats s
                                                       WHERE s.schemaname = n.nspname AND s.tablename = t.relname
                                                         AND s.attname = (SELECT a.attname FROM pg_attribute a
                                                                           WHERE a.attrelid = i.indrelid AND a.attnum = k.attnum))
                                                AS avg_width) AS x) AS w
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
    SELECT i.indexrelid::regclass,
           CASE WHEN leftover THEN 'DROP INDEX' ELSE 'REINDEX' END,
           CASE WHEN leftover
                THEN format('invalid index on %s left by an interrupted REINDEX CONCURRENTLY: maintained on every write, never used',
                            i.indrelid::regclass)
                ELSE format('invalid index on %s (a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY): maintained on every write, never used',
                            i.indrelid::regclass) END,
           format(CASE WHEN leftover THEN 'DROP INDEX CONCURRENTLY %s' ELSE 'REINDEX INDEX CONCURRENTLY %s' END, i.indexrelid::regclass), 1
      FROM pg_index i
     CROSS JOIN LATERAL (SELECT (SELECT c2.relname FROM pg_class c2 WHERE c2.oid = i.indexrelid) ~ '_cc(new|old)[0-9]*$' AS leftover) AS l
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
    'What the database needs now and why, from statistics and catalogs only: VACUUM (FREEZE) near wraparound, VACUUM for dead tuples autovacuum has not caught up with and insert-only tables with an unset visibility map, ANALYZE of tables never or long ago analysed (and partitioned tables, which autovacuum never analyses), REINDEX INDEX CONCURRENTLY of invalid and bloated indexes (DROP INDEX CONCURRENTLY of the leftovers of an interrupted REINDEX CONCURRENTLY), and advice never run automatically (unused and duplicate indexes, foreign keys without an index). Thresholds: the pg_storage_ext.maintenance_* settings.';
GRANT EXECUTE ON FUNCTION storage.maintenance_plan(), storage._maintenance_setting(text, double precision),
                          storage._btree_bloat(regclass) TO pg_monitor;

-- Tables overdue for maintenance: past the plan's VACUUM or ANALYZE thresholds with neither in
-- the last day (the health check maintenance_overdue; storage.metrics_snapshot() keeps it, so
-- storage.health() reads it from the snapshot instead of every table's statistics).
CREATE FUNCTION storage._maintenance_overdue() RETURNS TABLE(rel regclass, what text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    -- two statistics lookups per table (dead tuples, rows changed since the last analyse), the
    -- times of the last runs only for the few past a threshold: not the whole statistics view
    WITH t AS MATERIALIZED (SELECT storage._maintenance_setting('vacuum_threshold', 1000) AS vt,
                      storage._maintenance_setting('vacuum_scale_factor', 0.2) AS vs,
                      storage._maintenance_setting('analyze_threshold', 1000) AS at,
                      storage._maintenance_setting('analyze_scale_factor', 0.1) AS asf,
                      now() - interval '1 day' AS day_ago),
    c AS (SELECT c.oid, greatest(c.reltuples, 0) AS rows,
                 pg_stat_get_dead_tuples(c.oid) AS dead, pg_stat_get_mod_since_analyze(c.oid) AS changed
            FROM pg_class c
           WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
             AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pg_toast'::regnamespace))
    SELECT c.oid::regclass,
           CASE WHEN c.dead > t.vt + t.vs * c.rows
                     AND coalesce(greatest(pg_stat_get_last_vacuum_time(c.oid), pg_stat_get_last_autovacuum_time(c.oid)), '-infinity') < t.day_ago
                THEN format('VACUUM: %s dead tuples', c.dead)
                ELSE format('ANALYZE: %s rows changed', c.changed) END
      FROM c, t
     WHERE (c.dead > t.vt + t.vs * c.rows
            AND coalesce(greatest(pg_stat_get_last_vacuum_time(c.oid), pg_stat_get_last_autovacuum_time(c.oid)), '-infinity') < t.day_ago)
        OR (c.changed > t.at + t.asf * c.rows
            AND coalesce(greatest(pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid)), '-infinity') < t.day_ago)
     ORDER BY c.oid::regclass::text
$$;
COMMENT ON FUNCTION storage._maintenance_overdue() IS
    'Internal: tables past the maintenance thresholds for VACUUM or ANALYZE with neither in the last day.';

-- What storage.run_maintenance_plan() did: one row per command it ran or queued, with the
-- measured effect (dead tuples of the table, size of the object, leaf density of a B-tree)
-- before and after. Dumped with the database; rows older than 90 days are deleted by each run.
CREATE TABLE storage.maintenance_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    object regclass NOT NULL,
    relation regclass NOT NULL,
    object_name text NOT NULL,
    action text NOT NULL,
    reason text,
    command text NOT NULL,
    queued timestamptz NOT NULL DEFAULT now(),
    started timestamptz,
    finished timestamptz,
    outcome text NOT NULL DEFAULT 'queued',
    attempts integer NOT NULL DEFAULT 0,
    pid integer,
    dead_tuples_before bigint,
    dead_tuples_after bigint,
    bytes_before bigint,
    bytes_after bigint,
    leaf_density_before double precision,
    leaf_density_after double precision
);
CREATE INDEX maintenance_log_relation ON storage.maintenance_log (relation, queued);
COMMENT ON TABLE storage.maintenance_log IS
    'What storage.run_maintenance_plan() ran: object, action, reason, command, queued/started/finished, outcome (queued, running, done, skipped: locked, skipped: ..., failed: ...), attempts, and the measured effect before and after (dead tuples of the table, bytes of the object, leaf density of a B-tree index in %).';
SELECT pg_catalog.pg_extension_config_dump('storage.maintenance_log', '');
SELECT pg_catalog.pg_extension_config_dump('storage.maintenance_log_id_seq', '');

-- Whether `at` falls in the daily window 'HH:MM-HH:MM' (server time zone; may wrap midnight).
CREATE FUNCTION storage._maintenance_in_window(win text, at timestamptz DEFAULT now()) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a time;
    b time;
    t time := at::time;
BEGIN
    IF coalesce(btrim(win), '') = '' THEN
        RETURN true;
    END IF;
    BEGIN
        a := btrim(split_part(win, '-', 1))::time;
        b := btrim(split_part(win, '-', 2))::time;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
        a := NULL;
    END;
    IF a IS NULL OR b IS NULL OR split_part(win, '-', 3) <> '' THEN
        RAISE EXCEPTION 'invalid maintenance window "%"', win
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'pg_storage_ext.maintenance_window is a daily window: two times of day separated by "-".',
                    HINT = 'For example SET pg_storage_ext.maintenance_window = ''01:00-05:00'' (it may wrap midnight: ''22:00-04:00''), or empty for any time.';
    END IF;
    RETURN CASE WHEN a <= b THEN t >= a AND t < b ELSE t >= a OR t < b END;
END $$;
COMMENT ON FUNCTION storage._maintenance_in_window(text, timestamptz) IS
    'Internal: whether a time falls in a daily maintenance window ''HH:MM-HH:MM'' (server time zone, may wrap midnight); 22023 for a malformed window.';

-- The effect of maintenance on an object, measured now: dead tuples of its table, its size, and
-- the leaf density of a B-tree index (pgstatindex when pgstattuple is installed and the index is
-- small enough, else the estimate).
CREATE FUNCTION storage._maintenance_measure(obj regclass, OUT dead_tuples bigint, OUT bytes bigint, OUT leaf_density double precision)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET lock_timeout = '200ms' AS $$
DECLARE
    tbl oid := coalesce((SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = obj), obj);
    pgstatindex regprocedure := (SELECT p.oid::regprocedure FROM pg_proc p
                                   JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
                                   JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pgstattuple'
                                  WHERE p.proname = 'pgstatindex' AND p.proargtypes[0] = 'regclass'::regtype LIMIT 1);
BEGIN
    PERFORM pg_stat_clear_snapshot();
    dead_tuples := (SELECT s.n_dead_tup FROM pg_stat_all_tables s WHERE s.relid = tbl);
    IF NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = obj) THEN
        RETURN;
    END IF;
    BEGIN
        -- the size functions lock the relation: a table another session holds is not waited
        -- for (lock_timeout of this function)
        bytes := CASE WHEN tbl = obj THEN pg_table_size(obj) ELSE pg_relation_size(obj) END;
    EXCEPTION WHEN lock_not_available THEN
        RETURN;
    END;
    IF tbl <> obj AND (SELECT c.relam = (SELECT a.oid FROM pg_am a WHERE a.amname = 'btree') AND i.indisvalid
                         FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE c.oid = obj) THEN
        IF pgstatindex IS NOT NULL AND bytes <= storage._maintenance_setting('pgstatindex_max_pages', 12800) * 8192 THEN
            BEGIN
                EXECUTE format('SELECT avg_leaf_density FROM %s($1)', pgstatindex::regproc) INTO leaf_density USING obj;
            EXCEPTION WHEN insufficient_privilege OR object_not_in_prerequisite_state THEN
                leaf_density := NULL;
            END;
        END IF;
        leaf_density := coalesce(leaf_density, round(((1 - storage._btree_bloat(obj)) * 100)::numeric, 2)::float8);
    END IF;
END $$;
COMMENT ON FUNCTION storage._maintenance_measure(regclass) IS
    'Internal: dead tuples of the object''s table, the object''s size in bytes, and a B-tree index''s leaf density in % (pgstatindex when available, else estimated), measured now.';

-- The executor's side of a queued row: claims it (running, its pid, the effect before) and
-- returns the command and the owner of the table it runs as; no row when it is not queued.
CREATE FUNCTION storage._maintenance_begin(id bigint, OUT command text, OUT owner oid) RETURNS SETOF record
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m record;
BEGIN
    UPDATE storage.maintenance_log l
       SET outcome = 'running', started = clock_timestamp(), pid = pg_backend_pid()
     WHERE l.id = _maintenance_begin.id AND l.outcome = 'queued'
    RETURNING l.object, l.relation, l.command INTO m;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE storage.maintenance_log l
       SET dead_tuples_before = x.dead_tuples, bytes_before = x.bytes, leaf_density_before = x.leaf_density
      FROM storage._maintenance_measure(m.object) x
     WHERE l.id = _maintenance_begin.id;
    command := m.command;
    owner := (SELECT c.relowner FROM pg_class c WHERE c.oid = m.relation);
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION storage._maintenance_begin(bigint) IS
    'Internal: the maintenance executor claims a queued storage.maintenance_log row (running, its pid, the effect before) and gets its command and the owner of its table.';

CREATE FUNCTION storage._maintenance_end(id bigint, outcome text, attempts integer) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    -- REINDEX CONCURRENTLY gives the rebuilt index a new oid under the old name
    UPDATE storage.maintenance_log l
       SET outcome = _maintenance_end.outcome, attempts = _maintenance_end.attempts, finished = clock_timestamp(),
           object = o.now, dead_tuples_after = x.dead_tuples, bytes_after = x.bytes, leaf_density_after = x.leaf_density
      FROM (SELECT CASE WHEN o.object = o.relation THEN o.object
                        ELSE coalesce(pg_catalog.to_regclass(o.object_name), o.object) END AS now
              FROM storage.maintenance_log o WHERE o.id = _maintenance_end.id) AS o
     CROSS JOIN LATERAL storage._maintenance_measure(o.now) AS x
     WHERE l.id = _maintenance_end.id
$$;
COMMENT ON FUNCTION storage._maintenance_end(bigint, text, integer) IS
    'Internal: records the outcome of a storage.maintenance_log row and the effect measured after (on the rebuilt index, which REINDEX CONCURRENTLY gives a new oid).';

CREATE FUNCTION storage.run_maintenance_plan(dry_run boolean DEFAULT false)
RETURNS TABLE(object regclass, action text, outcome text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    win text := coalesce(current_setting('pg_storage_ext.maintenance_window', true), '');
    lock_ms integer := storage._maintenance_setting('lock_timeout', 5000)::integer;
    retries integer := storage._maintenance_setting('retries', 3)::integer;
    executor oid := (SELECT e.extowner FROM pg_extension e WHERE e.extname = 'pg_storage_ext');
    in_window boolean := storage._maintenance_in_window(win);
    saved_lock_timeout text := current_setting('lock_timeout');
    p record;
    log_id bigint;
    worker_pid integer;
    tries integer;
    res text;
BEGIN
    IF NOT dry_run THEN
        -- on a standby: refused, and the scheduled job returns at once
        IF storage._require_primary('storage.run_maintenance_plan', true) THEN
            RETURN;
        END IF;
        DELETE FROM storage.maintenance_log l WHERE l.finished < now() - interval '90 days';
        -- commands whose worker is gone without reporting (a crash, a restart), and an
        -- interrupted migration (storage._recover, which the heartbeat job runs too)
        PERFORM storage._recover();
    END IF;
    -- one command per table and run (the most urgent), and besides it every invalid index an
    -- interrupted concurrent build left (all dropped in one run, not one per run); advice is
    -- never run
    FOR p IN
        SELECT x.object, x.action, x.reason, x.command, x.tbl, x.leftover, x.priority FROM (
            SELECT DISTINCT ON (t.tbl) m.object, m.action, m.reason, m.command, t.tbl, false AS leftover, m.priority
              FROM storage.maintenance_plan() m
             CROSS JOIN LATERAL (SELECT coalesce((SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = m.object), m.object::oid)::regclass AS tbl) AS t
             WHERE m.action NOT LIKE 'advice:%' AND m.action <> 'DROP INDEX'
             ORDER BY t.tbl, m.priority, m.object
        ) AS x
        UNION ALL
        SELECT m.object, m.action, m.reason, m.command, i.indrelid::regclass, true, m.priority
          FROM storage.maintenance_plan() m JOIN pg_index i ON i.indexrelid = m.object
         WHERE m.action = 'DROP INDEX'
         ORDER BY 6 DESC, 5, 7
    LOOP
        object := p.object;
        action := p.action;
        IF dry_run THEN
            outcome := 'dry run: ' || p.command;
            RETURN NEXT;
            CONTINUE;
        ELSIF NOT in_window THEN
            outcome := format('skipped: outside the maintenance window %s', win);
            RETURN NEXT;
            CONTINUE;
        ELSIF NOT p.leftover
              AND EXISTS (SELECT FROM storage.maintenance_log l WHERE l.relation = p.tbl AND l.outcome IN ('queued', 'running')) THEN
            outcome := 'skipped: busy (a command on this table is still running)';
            RETURN NEXT;
            CONTINUE;
        END IF;
        INSERT INTO storage.maintenance_log AS l (object, relation, object_name, action, reason, command)
        VALUES (p.object, p.tbl, p.object::text, p.action, p.reason, p.command)
        RETURNING l.id INTO log_id;
        IF p.action = 'ANALYZE' THEN
            -- ANALYZE runs in a transaction: here, as the table's owner, with bounded lock waits
            PERFORM storage._maintenance_begin(log_id);
            tries := 0;
            LOOP
                tries := tries + 1;
                BEGIN
                    PERFORM set_config('lock_timeout', lock_ms || 'ms', true);
                    PERFORM storage._run_as_owner(p.tbl, p.command);
                    res := 'done';
                    EXIT;
                EXCEPTION
                    WHEN lock_not_available THEN
                        IF tries > retries THEN
                            res := 'skipped: locked';
                            EXIT;
                        END IF;
                        PERFORM pg_sleep(least(tries, 10));
                    WHEN OTHERS THEN
                        res := 'failed: ' || SQLERRM;
                        EXIT;
                END;
            END LOOP;
            PERFORM set_config('lock_timeout', saved_lock_timeout, true);
            PERFORM storage._maintenance_end(log_id, res, tries);
        ELSE
            -- VACUUM and REINDEX CONCURRENTLY cannot run in a transaction block: a background
            -- worker runs them top-level once this transaction commits
            worker_pid := storage._maintenance_launch(log_id, executor, lock_ms, retries,
                                                      storage._maintenance_setting('nice', 0)::integer);
            IF worker_pid IS NULL THEN
                res := 'skipped: no free background worker slot (max_worker_processes)';
                UPDATE storage.maintenance_log l SET outcome = res, finished = now() WHERE l.id = log_id;
            ELSE
                res := 'queued';
                UPDATE storage.maintenance_log l SET pid = worker_pid WHERE l.id = log_id;
            END IF;
        END IF;
        outcome := res;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION storage.run_maintenance_plan(boolean) IS
    'Runs storage.maintenance_plan() (one command per table and run, the most urgent; never the advice): ANALYZE here, as the table''s owner; VACUUM, REINDEX and DROP INDEX CONCURRENTLY queued to a background worker that runs each as a top-level statement once this transaction commits, as the table''s owner under SECURITY_RESTRICTED_OPERATION. Lock waits bounded by pg_storage_ext.maintenance_lock_timeout with pg_storage_ext.maintenance_retries retries, then ''skipped: locked'' until the next run; nothing outside pg_storage_ext.maintenance_window; refused on a hot standby. dry_run: what would run, nothing changed. Outcomes and effects: storage.maintenance_log.';
GRANT SELECT ON storage.maintenance_log TO pg_monitor;
GRANT EXECUTE ON FUNCTION storage._maintenance_overdue() TO pg_monitor;
COMMENT ON FUNCTION storage._maintenance_launch(bigint, oid, integer, integer, integer) IS
    'Internal: starts the background worker that runs a queued storage.maintenance_log command top-level (connected as the given role, the extension owner; the command as the table''s owner), with its lock timeout, retries and CPU priority; returns the worker''s pid, NULL when no worker slot is free.';
