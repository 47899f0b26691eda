-- The schemas every capability builds on. `storage` is the extension's own schema
-- (created by CREATE EXTENSION from the control file); `audit` belongs to the extension.
CREATE SCHEMA audit;
COMMENT ON SCHEMA audit IS 'pg_storage_ext: row-change history';

-- What a writing function does on a hot standby, decided in one place (README: Replicas): false
-- on a primary; on a standby, true for the extension's scheduled jobs (pg_cron's sessions: the
-- job returns at once, no error in the job's history) and a 25006 error naming the primary for
-- everyone else (the Rust functions call it too: crate::error::require_primary). `what` names the
-- function in the message; the primary's host and port come from pg_stat_wal_receiver when the
-- caller may see them (pg_read_all_stats).
CREATE FUNCTION storage._require_primary(what text, job boolean DEFAULT false) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    sender text := (SELECT format('host %s, port %s', r.sender_host, r.sender_port)
                      FROM pg_stat_wal_receiver r WHERE r.sender_host IS NOT NULL);
BEGIN
    IF NOT pg_is_in_recovery() THEN
        RETURN false;
    END IF;
    IF job AND current_setting('application_name') = 'pg_cron' THEN
        RETURN true;
    END IF;
    RAISE EXCEPTION '% cannot run on a hot standby', what
          USING ERRCODE = 'read_only_sql_transaction',
                DETAIL = 'This server replays its primary''s WAL and accepts no writes; what the function would change reaches it from the primary.',
                HINT = CASE WHEN sender IS NOT NULL THEN format('Run it on the primary (%s).', sender)
                            ELSE 'Run it on the primary server (pg_stat_wal_receiver names it to pg_read_all_stats members).' END;
END
$$;
COMMENT ON FUNCTION storage._require_primary(text, boolean) IS
    'Internal: false on a primary; on a hot standby, true for a scheduled job of the extension (it returns at once) and otherwise a 25006 error whose hint names the primary.';

-- Citus (README: Scale-out): what a table is to Citus — 'distributed', 'reference' or 'citus
-- local' — or NULL (no Citus, or a table it does not manage). Read from Citus's own catalog when
-- it is installed (pg_dist_partition), so the extension neither needs nor loads Citus.
CREATE FUNCTION storage._citus_kind(target regclass) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kind text;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT CASE WHEN partmethod = ''n'' AND repmodel = ''t'' THEN ''reference''
                         WHEN partmethod = ''n'' AND colocationid = 0 THEN ''citus local''
                         ELSE ''distributed'' END
               FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1'
       INTO kind USING target;
    RETURN kind;
END
$$;
COMMENT ON FUNCTION storage._citus_kind(regclass) IS
    'Internal: distributed, reference or citus local for a table Citus manages; NULL otherwise (or without Citus).';

-- The one refusal of a function that would be wrong on a Citus table (README: Scale-out lists
-- which): 0A000 at once, naming the table, its kind, why, and what to do instead.
CREATE FUNCTION storage._refuse_on_citus(target regclass, what text, why text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kind text := storage._citus_kind(target);
BEGIN
    IF kind IS NOT NULL THEN
        RAISE EXCEPTION '% does not support Citus % tables: % is one', what, kind, target
              USING ERRCODE = 'feature_not_supported', DETAIL = why,
                    HINT = 'Use it on a table that stays on the coordinator (undistribute_table() makes one of a Citus table); README: Scale-out lists what works on Citus tables.';
    END IF;
END
$$;
COMMENT ON FUNCTION storage._refuse_on_citus(regclass, text, text) IS
    'Internal: raises 0A000 when the table is a Citus table, for a function that would be wrong on one.';
