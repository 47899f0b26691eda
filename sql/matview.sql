-- Materialized views capability: registration, change tracking, refresh, status and history.
--
-- Change detection. Every source table of a registered view (found through pg_rewrite/pg_depend,
-- through nested views, including each partition of a partitioned source) carries one statement
-- trigger, pg_storage_ext_matview_changes, that appends (source, writer's xid) to
-- storage._matview_changes — an append, in the writer's own transaction, so it commits or rolls
-- back with the change and writers never wait on each other (no shared counter row). A refresh
-- records the snapshot it started from; a source has changed since when one of its rows has an xid
-- that snapshot does not see (pg_visible_in_snapshot). So a change committed before the refresh's
-- snapshot is in the refresh, and one committed after (or still running) is seen by the next
-- refresh_due. Rows every recorded snapshot sees are pruned. A registered matview refreshed by
-- refresh_matview/refresh_due records itself as changed for the views built on it; a source that
-- cannot be tracked (foreign table, unregistered matview) counts as always changed. An event
-- trigger puts the trigger on partitions created or attached later and recomputes sources when
-- views are replaced.

-- The change trigger (src/matview/mod.rs; its C entry refuses a call that is not a trigger).
CREATE FUNCTION storage._matview_source_changed() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', '_matview_source_changed_wrapper';

CREATE TABLE storage.matview_config (
    view          regclass PRIMARY KEY,
    refresh_every interval NOT NULL CHECK (refresh_every > interval '0'),
    "concurrently"  boolean,
    registered_at timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('storage.matview_config', '');
COMMENT ON TABLE storage.matview_config IS
    'Registered materialized views (storage.register_matview). concurrently NULL = automatic.';

-- Refresh state, not dumped: snapshots and xids mean nothing in another cluster, so a restored
-- database starts with every view due.
CREATE TABLE storage._matview_state (
    view          regclass PRIMARY KEY REFERENCES storage.matview_config ON DELETE CASCADE,
    sources       regclass[] NOT NULL DEFAULT '{}',
    untracked     boolean NOT NULL DEFAULT false,
    depth         integer NOT NULL DEFAULT 0,
    last_refresh  timestamptz,
    last_attempt  timestamptz,
    last_duration interval,
    last_outcome  text,
    last_snapshot pg_snapshot,
    -- the DDL event trigger could not update tracking without waiting: refresh_due redoes it
    resolve_pending boolean NOT NULL DEFAULT false
);

CREATE TABLE storage._matview_changes (
    source regclass NOT NULL,
    xid    xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ts     timestamptz NOT NULL DEFAULT statement_timestamp()
);

CREATE TABLE storage.matview_refresh_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    view         regclass NOT NULL,
    started_at   timestamptz NOT NULL,
    duration     interval,
    "concurrently" boolean,
    outcome      text NOT NULL,
    error        text
);
CREATE INDEX ON storage.matview_refresh_log (view, started_at);
SELECT pg_catalog.pg_extension_config_dump('storage.matview_refresh_log', '');
SELECT pg_catalog.pg_extension_config_dump('storage.matview_refresh_log_id_seq', '');
COMMENT ON TABLE storage.matview_refresh_log IS
    'Every refresh attempt (refreshed, skipped: running, failed) with duration and error; rows older than 7 days are pruned by refresh_due.';

-- The writers' trigger, storage._matview_source_changed(), is C (src/matview/): it appends
-- straight into the heap, so writers need no privilege on this table.
COMMENT ON FUNCTION storage._matview_source_changed() IS
    'Internal: statement trigger on matview sources; appends (source, xid) to storage._matview_changes.';

-- Relations a view reads, transitively through plain views: (relid, relkind).
CREATE FUNCTION storage._matview_sources(v regclass) RETURNS TABLE (relid regclass, relkind "char")
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    -- start at the matview itself, then follow the rules of the plain views it reads
    WITH RECURSIVE reads(relid) AS (
        SELECT v::oid
        UNION
        SELECT d.refobjid
          FROM reads
          JOIN pg_class c ON c.oid = reads.relid AND (c.oid = v OR c.relkind = 'v')
          JOIN pg_rewrite r ON r.ev_class = c.oid
          JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                          AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
    )
    SELECT c.oid::regclass, c.relkind
      FROM reads JOIN pg_class c ON c.oid = reads.relid
     WHERE c.relkind IN ('r', 'p', 'm', 'f') AND c.oid <> v
     ORDER BY c.oid
$$;
COMMENT ON FUNCTION storage._matview_sources(regclass) IS
    'Internal: tables, matviews and foreign tables a view reads, through nested views.';

-- Puts the change trigger on a source table and every partition below it.
CREATE FUNCTION storage._matview_track(src regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel regclass;
BEGIN
    FOR rel IN
        SELECT t.relid FROM pg_partition_tree(src) AS t
        UNION SELECT src
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger
                        WHERE tgrelid = rel AND tgname = 'pg_storage_ext_matview_changes') THEN
            EXECUTE format('CREATE TRIGGER pg_storage_ext_matview_changes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION storage._matview_source_changed()', rel);
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION storage._matview_track(regclass) IS
    'Internal: installs the change trigger on a source table and its partitions.';

-- Recomputes a registered view's sources, depth and trackability, and tracks its tables.
CREATE FUNCTION storage._matview_resolve(v regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s record;
    srcs regclass[] := '{}';
    untracked boolean := false;
BEGIN
    FOR s IN SELECT * FROM storage._matview_sources(v) LOOP
        srcs := srcs || s.relid;
        IF s.relkind IN ('r', 'p') AND storage._citus_kind(s.relid) IS NOT NULL THEN
            -- writes to a Citus table happen in its shards (on the workers), which a trigger here
            -- never hears of: like a foreign table, such a source is untracked, and the view is
            -- refreshed every time instead of ever being reported unchanged (docs/citus.md)
            untracked := true;
        ELSIF s.relkind IN ('r', 'p') THEN
            PERFORM storage._matview_track(s.relid);
        ELSIF s.relkind = 'f'
              OR (s.relkind = 'm' AND NOT EXISTS (SELECT 1 FROM storage.matview_config WHERE view = s.relid)) THEN
            untracked := true;
        END IF;
    END LOOP;
    INSERT INTO storage._matview_state AS st (view, sources, untracked)
    VALUES (v, srcs, untracked)
    ON CONFLICT (view) DO UPDATE SET sources = excluded.sources, untracked = excluded.untracked,
                                     resolve_pending = false;
    -- depth: how many registered matviews this one reads, directly or not (refresh order)
    UPDATE storage._matview_state AS st
       SET depth = (SELECT count(*) FROM unnest(st.sources) AS u(r)
                     WHERE EXISTS (SELECT 1 FROM storage.matview_config c WHERE c.view = u.r))
     WHERE st.view = v;
END $$;
COMMENT ON FUNCTION storage._matview_resolve(regclass) IS
    'Internal: recomputes the sources of a registered matview and installs change triggers.';

-- Whether REFRESH ... CONCURRENTLY is possible now: populated, and a valid unique index on plain
-- columns with no WHERE clause.
CREATE FUNCTION storage._matview_can_concurrently(v regclass) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.relispopulated AND EXISTS (
        SELECT 1 FROM pg_index i
         WHERE i.indrelid = v AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL)
      FROM pg_class c WHERE c.oid = v
$$;
COMMENT ON FUNCTION storage._matview_can_concurrently(regclass) IS
    'Internal: the matview is populated and has a unique index on plain columns without WHERE.';

CREATE FUNCTION storage._matview_sources_changed(v regclass) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.last_snapshot IS NULL OR s.untracked
           OR NOT (SELECT relispopulated FROM pg_class WHERE oid = v)
           OR EXISTS (SELECT 1 FROM storage._matview_changes ch
                       WHERE ch.source = ANY (s.sources) AND NOT pg_visible_in_snapshot(ch.xid, s.last_snapshot))
      FROM storage._matview_state s WHERE s.view = v
$$;
COMMENT ON FUNCTION storage._matview_sources_changed(regclass) IS
    'Internal: a source changed since the snapshot of the last refresh (or never refreshed, not populated, untrackable source).';

CREATE FUNCTION storage.register_matview(view regclass, refresh_every interval DEFAULT '5 minutes',
                                         "concurrently" boolean DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    first_col name;
BEGIN
    PERFORM storage._require_primary('storage.register_matview');
    IF (SELECT relkind FROM pg_class WHERE oid = view) IS DISTINCT FROM 'm' THEN
        RAISE EXCEPTION '% is not a materialized view', view
              USING ERRCODE = 'wrong_object_type',
                    HINT = 'storage.register_matview takes a materialized view (CREATE MATERIALIZED VIEW).';
    END IF;
    IF refresh_every IS NULL OR refresh_every <= interval '0' THEN
        RAISE EXCEPTION 'refresh_every must be a positive interval, got %', coalesce(refresh_every::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value', HINT = 'For example ''5 minutes'' or ''1 hour''.';
    END IF;
    IF "concurrently" AND NOT EXISTS (
        SELECT 1 FROM pg_index i
         WHERE i.indrelid = view AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL) THEN
        SELECT attname INTO first_col FROM pg_attribute WHERE attrelid = view AND attnum > 0 AND NOT attisdropped ORDER BY attnum LIMIT 1;
        RAISE EXCEPTION 'REFRESH MATERIALIZED VIEW CONCURRENTLY needs a unique index on %', view
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    DETAIL = 'The index must cover plain columns only and have no WHERE clause.',
                    HINT = format('Create one on the columns that identify a row, e.g. CREATE UNIQUE INDEX ON %s (%I); or register with "concurrently" => NULL for automatic.',
                                  view, first_col);
    END IF;
    INSERT INTO storage.matview_config AS c (view, refresh_every, "concurrently")
    VALUES (view, refresh_every, "concurrently")
    ON CONFLICT ON CONSTRAINT matview_config_pkey
    DO UPDATE SET refresh_every = excluded.refresh_every, "concurrently" = excluded."concurrently";
    PERFORM storage._matview_resolve(view);
    -- views built on this one now have a tracked source
    PERFORM storage._matview_resolve(st.view) FROM storage._matview_state st
      WHERE register_matview.view = ANY (st.sources);
END $$;
COMMENT ON FUNCTION storage.register_matview(regclass, interval, boolean) IS
    'Registers a materialized view for refresh_due: interval, and CONCURRENTLY (NULL = when populated and a unique plain index exists). Installs change tracking on its source tables. Idempotent.';

CREATE FUNCTION storage.unregister_matview(view regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src regclass;
BEGIN
    PERFORM storage._require_primary('storage.unregister_matview');
    DELETE FROM storage.matview_config c WHERE c.view = unregister_matview.view;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not registered', view
              USING ERRCODE = 'undefined_object', HINT = 'SELECT view FROM storage.matview_status lists the registered views.';
    END IF;
    -- drop change triggers no other registered view needs
    FOR src IN
        SELECT t.tgrelid::regclass FROM pg_trigger t
         WHERE t.tgname = 'pg_storage_ext_matview_changes'
           AND NOT EXISTS (SELECT 1 FROM storage._matview_state st, unnest(st.sources) AS u(r),
                                  LATERAL (SELECT p.relid FROM pg_partition_tree(u.r) p UNION SELECT u.r) AS tree(relid)
                            WHERE tree.relid = t.tgrelid)
    LOOP
        EXECUTE format('DROP TRIGGER pg_storage_ext_matview_changes ON %s', src);
    END LOOP;
    PERFORM storage._matview_resolve(st.view) FROM storage._matview_state st
      WHERE unregister_matview.view = ANY (st.sources);
END $$;
COMMENT ON FUNCTION storage.unregister_matview(regclass) IS
    'Stops managing a materialized view; keeps its refresh history; drops change triggers no other view needs.';

-- One refresh attempt. Returns the outcome; raises on failure (refresh_due catches).
CREATE FUNCTION storage._matview_refresh(v regclass, force boolean, log_skips boolean) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg storage.matview_config;
    conc boolean;
    snap pg_snapshot;
    t0 timestamptz;
    took interval;
BEGIN
    SELECT * INTO cfg FROM storage.matview_config WHERE view = v;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not registered', v
              USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Call storage.register_matview first.';
    END IF;
    IF NOT force AND NOT storage._matview_sources_changed(v) THEN
        RETURN 'skipped: unchanged';
    END IF;
    -- never queue behind a running refresh: ours (advisory lock) or anyone's (the EXCLUSIVE lock
    -- every REFRESH takes, asked for with NOWAIT)
    IF NOT pg_try_advisory_xact_lock(hashtext('pg_storage_ext.matview'), v::oid::integer) THEN
        IF log_skips THEN
            INSERT INTO storage.matview_refresh_log (view, started_at, outcome) VALUES (v, clock_timestamp(), 'skipped: running');
        END IF;
        RETURN 'skipped: running';
    END IF;
    IF NOT storage._try_lock_exclusive(v) THEN
        IF log_skips THEN
            INSERT INTO storage.matview_refresh_log (view, started_at, outcome) VALUES (v, clock_timestamp(), 'skipped: running');
        END IF;
        RETURN 'skipped: running';
    END IF;
    conc := CASE WHEN cfg."concurrently" IS NULL THEN storage._matview_can_concurrently(v)
                 ELSE cfg."concurrently" AND (SELECT relispopulated FROM pg_class WHERE oid = v) END;
    snap := pg_current_snapshot();
    t0 := clock_timestamp();
    EXECUTE format('REFRESH MATERIALIZED VIEW %s %s', CASE WHEN conc THEN 'CONCURRENTLY' ELSE '' END, v);
    took := clock_timestamp() - t0;
    -- views built on this one see it as changed
    INSERT INTO storage._matview_changes (source) VALUES (v);
    UPDATE storage._matview_state
       SET last_refresh = t0, last_attempt = t0, last_duration = took, last_outcome = 'refreshed', last_snapshot = snap
     WHERE view = v;
    INSERT INTO storage.matview_refresh_log (view, started_at, duration, "concurrently", outcome)
    VALUES (v, t0, took, conc, 'refreshed');
    RETURN 'refreshed';
END $$;
COMMENT ON FUNCTION storage._matview_refresh(regclass, boolean, boolean) IS
    'Internal: one refresh attempt of a registered matview.';

CREATE FUNCTION storage.refresh_matview(view regclass, force boolean DEFAULT false) RETURNS text
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT storage._require_primary('storage.refresh_matview');
    SELECT storage._matview_refresh(view, force, true)
$$;
COMMENT ON FUNCTION storage.refresh_matview(regclass, boolean) IS
    'Refreshes a registered matview now: ''refreshed'', ''skipped: unchanged'' (no source changed since the last refresh; force => true refreshes anyway) or ''skipped: running'' (never waits for another refresh).';

CREATE FUNCTION storage.refresh_due() RETURNS TABLE (view regclass, outcome text, duration interval)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '0' AS $$
DECLARE
    r record;
    t0 timestamptz;
    msg text;
BEGIN
    IF storage._require_primary('storage.refresh_due', true) THEN
        RETURN;
    END IF;
    -- every lock wait bounded: a view whose source a long transaction holds fails this run
    -- ('failed: canceling statement due to lock timeout') and the others are refreshed
    PERFORM storage._partition_fit('', '');   -- the library defines the setting
    PERFORM set_config('lock_timeout', current_setting('pg_storage_ext.partition_lock_timeout'), true);
    -- tracking the DDL event trigger had to leave for later (it never waits on a lock), and
    -- registrations without their state (a restore brings matview_config back, not the state,
    -- which names snapshots of another cluster): each such view is due once
    PERFORM storage._matview_resolve(s.view) FROM storage._matview_state s WHERE s.resolve_pending;
    PERFORM storage._matview_resolve(c.view) FROM storage.matview_config c
      WHERE NOT EXISTS (SELECT 1 FROM storage._matview_state s WHERE s.view = c.view)
        AND EXISTS (SELECT 1 FROM pg_class WHERE oid = c.view);
    FOR r IN
        SELECT c.view AS v, c.refresh_every, s.last_attempt, s.depth,
               NOT (SELECT relispopulated FROM pg_class WHERE oid = c.view) AS unpopulated
          FROM storage.matview_config c
          JOIN storage._matview_state s ON s.view = c.view
         WHERE EXISTS (SELECT 1 FROM pg_class WHERE oid = c.view)
         ORDER BY s.depth, c.view::oid
    LOOP
        view := r.v;
        t0 := clock_timestamp();
        IF NOT r.unpopulated AND r.last_attempt IS NOT NULL AND r.last_attempt + r.refresh_every > now() THEN
            outcome := 'skipped: not due';
        ELSE
            BEGIN
                outcome := storage._matview_refresh(r.v, false, true);
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
                outcome := 'failed: ' || msg;
                UPDATE storage._matview_state SET last_outcome = outcome, last_attempt = t0,
                       last_duration = clock_timestamp() - t0
                 WHERE _matview_state.view = r.v;
                INSERT INTO storage.matview_refresh_log (view, started_at, duration, outcome, error)
                VALUES (r.v, t0, clock_timestamp() - t0, 'failed', msg);
            END;
        END IF;
        duration := clock_timestamp() - t0;
        RETURN NEXT;
    END LOOP;
    -- prune: changes every recorded snapshot sees; history older than 7 days
    DELETE FROM storage._matview_changes
     WHERE xid < (SELECT min(pg_snapshot_xmin(last_snapshot)) FROM storage._matview_state)
        OR NOT EXISTS (SELECT 1 FROM storage._matview_state);
    DELETE FROM storage.matview_refresh_log WHERE started_at < now() - interval '7 days';
END $$;
COMMENT ON FUNCTION storage.refresh_due() IS
    'For pg_cron: refreshes every registered matview whose interval elapsed and whose sources changed, in dependency order; one row per view with outcome refreshed, skipped: unchanged / not due / running, or failed: <message>.';

CREATE VIEW storage.matview_status AS
SELECT c.view,
       c.refresh_every,
       coalesce(c."concurrently", storage._matview_can_concurrently(c.view)) AS "concurrently",
       s.last_refresh,
       s.last_duration,
       s.last_outcome,
       coalesce(ch.changed, true) AS sources_changed,
       CASE WHEN s.last_attempt IS NULL THEN now() ELSE s.last_attempt + c.refresh_every END AS next_due,
       CASE WHEN NOT ch.changed THEN interval '0'
            WHEN s.view IS NULL OR s.last_snapshot IS NULL OR s.untracked THEN now() - coalesce(s.last_refresh, c.registered_at)
            ELSE now() - coalesce((SELECT min(x.ts) FROM storage._matview_changes x
                                    WHERE x.source = ANY (s.sources)
                                      AND NOT pg_visible_in_snapshot(x.xid, s.last_snapshot)), now())
       END AS stale_for
  FROM storage.matview_config c
  LEFT JOIN storage._matview_state s ON s.view = c.view
  CROSS JOIN LATERAL (SELECT storage._matview_sources_changed(c.view) AS changed) AS ch;
COMMENT ON VIEW storage.matview_status IS
    'Registered matviews: interval, mode, last refresh and outcome, whether a source changed since, when next due, and for how long the data has been stale. After a restore every registered view is listed, due at once, until storage.refresh_due() has refreshed it.';

-- New partitions of tracked tables get the change trigger; replaced views change the sources of
-- the registered matviews that read them. SECURITY DEFINER: it fires for every role's DDL and
-- must read the registration tables; it only installs the extension's own fixed trigger on
-- partitions of already tracked tables. It acts only on what the extension manages (registered
-- matviews that read the changed view, tracked tables), never waits on a lock for long
-- (lock_timeout), and never fails the user's statement: on any error it warns and leaves the work
-- to the next storage.refresh_due().
CREATE FUNCTION storage._matview_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '100ms' AS $$
DECLARE
    obj record;
    root regclass;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM storage.matview_config) THEN
        RETURN;
    END IF;
    FOR obj IN SELECT objid, command_tag FROM pg_event_trigger_ddl_commands() WHERE classid = 'pg_class'::regclass LOOP
        BEGIN
            IF obj.command_tag IN ('CREATE VIEW', 'ALTER VIEW', 'CREATE MATERIALIZED VIEW') THEN
                -- the registered matviews that read this view, directly or through other views
                PERFORM storage._matview_resolve(c.view)
                   FROM storage.matview_config c
                  WHERE c.view IN (WITH RECURSIVE up(relid) AS (
                                       SELECT obj.objid
                                       UNION
                                       SELECT r.ev_class
                                         FROM up
                                         JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = up.relid
                                                         AND d.classid = 'pg_rewrite'::regclass
                                         JOIN pg_rewrite r ON r.oid = d.objid AND r.ev_class <> up.relid)
                                   SELECT relid FROM up);
                CONTINUE;
            END IF;
            SELECT a.relid INTO root FROM pg_partition_ancestors(obj.objid) AS a
             WHERE EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = a.relid AND t.tgname = 'pg_storage_ext_matview_changes')
             LIMIT 1;
            IF root IS NOT NULL THEN
                PERFORM storage._matview_track(root);
            ELSIF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = obj.objid AND t.tgname = 'pg_storage_ext_matview_changes') THEN
                PERFORM storage._matview_track(obj.objid::regclass);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pg_storage_ext: materialized view change tracking was not updated after %', obj.command_tag
                  USING DETAIL = SQLSTATE || ': ' || SQLERRM,
                        HINT = 'storage.refresh_due() (the pg_storage_ext.refresh_due job) updates it on its next run.';
            BEGIN
                UPDATE storage._matview_state SET resolve_pending = true WHERE NOT resolve_pending;
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'pg_storage_ext: could not mark matview tracking for the next refresh_due: %', SQLERRM;
            END;
        END;
    END LOOP;
END $$;
COMMENT ON FUNCTION storage._matview_ddl() IS
    'Internal: event trigger keeping matview change tracking on new partitions and replaced views.';
CREATE EVENT TRIGGER pg_storage_ext_matview_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'ALTER TABLE', 'CREATE VIEW', 'ALTER VIEW')
    EXECUTE FUNCTION storage._matview_ddl();

CREATE FUNCTION storage._housekeeping() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '0' AS $$
DECLARE
    t regclass;
    missing text[];
BEGIN
    -- every lock wait bounded (pg_storage_ext.partition_lock_timeout): a table a long
    -- transaction holds is skipped with a WARNING and done on the next run; the rest goes on
    PERFORM storage._partition_fit('', '');   -- the library defines the setting
    PERFORM set_config('lock_timeout', current_setting('pg_storage_ext.partition_lock_timeout'), true);
    DELETE FROM storage.matview_refresh_log WHERE started_at < now() - interval '7 days';
    -- partitions of audited tables that the audit DDL event trigger could not give their capture
    -- triggers (it never waits long on a lock, and leaves a restore to itself): give them now
    FOR t IN SELECT x.table_name FROM audit._tracked x ORDER BY x.table_name::oid LOOP
        BEGIN
            SELECT array_agg(p.p::text ORDER BY p.p::oid) INTO missing
              FROM audit._partitions(t) AS p(p)
             WHERE (SELECT count(*) FROM pg_trigger g     -- (the five of audit._install_capture)
                     WHERE g.tgrelid = p.p AND g.tgname LIKE 'audit\_capture\_%') < 5;
            IF missing IS NOT NULL AND EXISTS (SELECT FROM pg_class k WHERE k.oid = t AND k.relkind = 'p') THEN
                PERFORM audit._sync_partitions(t);
                -- the partitions were writable without capture until now: the log says so
                PERFORM audit._log_ddl(c.oid, n.nspname, c.relname, 'CAPTURE REPAIRED',
                                       jsonb_build_object('partitions', missing))
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = t;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            RAISE WARNING 'pg_storage_ext: housekeeping of audited table % skipped: lock not available', t
                  USING DETAIL = 'A long transaction holds a lock on it.', HINT = 'It is done on the next run of the maintenance job.';
        END;
    END LOOP;
    -- and detached partitions lose theirs
    BEGIN
        PERFORM audit.disable(o) FROM audit._orphans() AS o;
    EXCEPTION WHEN lock_not_available THEN
        RAISE WARNING 'pg_storage_ext: housekeeping of detached partitions skipped: lock not available'
              USING HINT = 'It is done on the next run of the maintenance job.';
    END;
END $$;
COMMENT ON FUNCTION storage._housekeeping() IS
    'Internal: prunes the refresh history, gives partitions of audited tables missing capture triggers, removes those of detached partitions; every lock wait bounded by pg_storage_ext.partition_lock_timeout (a locked table is skipped with a WARNING).';

CREATE FUNCTION storage._maintenance() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM storage._housekeeping();
    IF to_regprocedure('storage.run_maintenance(regclass)') IS NOT NULL THEN
        EXECUTE 'SELECT count(*) FROM storage.run_maintenance()';
    END IF;
END $$;
COMMENT ON FUNCTION storage._maintenance() IS
    'Internal: the maintenance job of 0.1.0 (SELECT storage._maintenance()), in one transaction: housekeeping, then storage.run_maintenance(). schedule_jobs() now schedules CALL storage.run_maintenance_proc(), which commits after each parent.';

-- Maintenance of everything, committing as it goes: housekeeping, then each registered parent in
-- its own transaction (its locks are released before the next parent starts), pausing `wait`
-- between parents. A procedure with transaction control cannot carry SET search_path: it pins
-- search_path itself, again after each COMMIT (which ends the setting), and qualifies every name.
CREATE PROCEDURE storage.run_maintenance_proc(wait interval DEFAULT '0')
LANGUAGE plpgsql AS $$
DECLARE
    p pg_catalog.regclass;
    parents pg_catalog.regclass[];
BEGIN
    IF storage._require_primary('storage.run_maintenance_proc', true) THEN
        RETURN;
    END IF;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF wait IS NULL OR wait OPERATOR(pg_catalog.<) '0'::pg_catalog.interval THEN
        RAISE EXCEPTION 'wait must be a non-negative interval, got %', coalesce(wait::pg_catalog.text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value', HINT = 'CALL storage.run_maintenance_proc(''1 second'').';
    END IF;
    PERFORM storage._housekeeping();
    SELECT pg_catalog.array_agg(c.parent ORDER BY c.parent::pg_catalog.oid) INTO parents FROM storage.partition_config c;
    COMMIT;
    FOREACH p IN ARRAY coalesce(parents, '{}') LOOP
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        BEGIN
            -- a parent dropped meanwhile is gone from partition_config: skipped
            PERFORM storage._partition_run_maintenance(c.parent)
               FROM storage.partition_config c WHERE c.parent OPERATOR(pg_catalog.=) p;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pg_storage_ext: maintenance of % failed: %', p, SQLERRM
                  USING HINT = 'The other parents are maintained; fix this one and run storage.run_maintenance() again.';
        END;
        COMMIT;
        IF wait OPERATOR(pg_catalog.>) '0'::pg_catalog.interval THEN
            PERFORM pg_catalog.pg_sleep(pg_catalog.date_part('epoch', wait));
        END IF;
    END LOOP;
END $$;
COMMENT ON PROCEDURE storage.run_maintenance_proc(interval) IS
    'Maintenance of every registered parent (premake, default drain, retention) after the housekeeping of the maintenance job, committing after each parent so no parent''s locks are held while the next one is maintained; pauses wait between parents. CALL it as a statement of its own (not inside BEGIN ... COMMIT); schedule_jobs() schedules it.';

COMMENT ON FUNCTION storage._try_lock_exclusive(regclass) IS
    'Internal: takes the EXCLUSIVE lock of a REFRESH without waiting; false when a refresh is running.';
