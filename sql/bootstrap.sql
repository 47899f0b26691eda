-- The schemas every capability builds on. `storage` is the extension's own schema
-- (created by CREATE EXTENSION from the control file); `audit` belongs to the extension.
CREATE SCHEMA audit;
COMMENT ON SCHEMA audit IS 'pg_storage_ext: row-change history';

-- What a writing function does on a hot standby, decided in one place (docs/replicas.md): false
-- on a primary; on a standby, true for the extension's scheduled jobs (pg_cron's sessions: the
-- job returns at once, no error in the job's history) and a 25006 error naming the primary for
-- everyone else (the Rust functions call it too: crate::catalog::require_primary). `what` names the
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

-- Citus (docs/citus.md): what a table is to Citus — 'distributed', 'reference' or 'citus
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

-- A Citus shard on this node (a placement of a distributed, reference or Citus-local table):
-- the table it is a shard of (its shell on this node), that table's kind, and whether this node
-- is the coordinator (Citus group 0). No row for anything else, or without Citus. A shard is
-- named <table>_<shard id> in its table's schema; checked against Citus's own shard_name().
CREATE FUNCTION storage._citus_shard(rel regclass, OUT logical regclass, OUT kind text, OUT on_coordinator boolean)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- the name from regclass output: Citus hides shards from queries of pg_class
    parts text[] := parse_ident(rel::text);
    sid text := substring(parts[cardinality(parts)] FROM '_([0-9]{1,18})$');
BEGIN
    IF sid IS NULL OR cardinality(parts) <> 2 OR to_regclass('pg_catalog.pg_dist_shard') IS NULL THEN
        RETURN;
    END IF;
    -- shard_name() qualifies the name unless the schema is public: compare schema and name
    EXECUTE 'SELECT s.logicalrelid FROM pg_catalog.pg_dist_shard s
               JOIN pg_catalog.pg_class l ON l.oid = s.logicalrelid
               JOIN pg_catalog.pg_namespace ns ON ns.oid = l.relnamespace
              WHERE s.shardid = $1 AND ns.nspname = $2
                AND (SELECT n[cardinality(n)] FROM pg_catalog.parse_ident(pg_catalog.shard_name(s.logicalrelid, s.shardid)) AS n) = $3'
       INTO logical USING sid::bigint, parts[1], parts[2];
    IF logical IS NULL THEN
        RETURN;
    END IF;
    kind := storage._citus_kind(logical);
    EXECUTE 'SELECT groupid = 0 FROM pg_catalog.pg_dist_local_group' INTO on_coordinator;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION storage._citus_shard(regclass) IS
    'Internal: for a Citus shard on this node, its logical table (the shell here), that table''s kind and whether this node is the coordinator; no row otherwise.';

-- Whether this database is a Citus coordinator with workers (group 0 and other active primaries).
CREATE FUNCTION storage._citus_workers() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found boolean;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT (SELECT groupid = 0 FROM pg_catalog.pg_dist_local_group)
                    AND EXISTS (SELECT FROM pg_catalog.pg_dist_node n
                                 WHERE n.groupid <> 0 AND n.noderole = ''primary'' AND n.isactive)'
       INTO found;
    RETURN coalesce(found, false);
END
$$;
COMMENT ON FUNCTION storage._citus_workers() IS
    'Internal: true on a Citus coordinator that has active workers.';

-- Runs one command on every Citus worker (run_command_on_workers, in parallel) and returns each
-- worker's single result; a worker that fails raises the error here (never a silent gap).
CREATE FUNCTION storage._on_workers(command text, OUT node text, OUT result text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    FOR r IN EXECUTE 'SELECT nodename, nodeport, success, result FROM pg_catalog.run_command_on_workers($1)' USING command LOOP
        IF NOT r.success THEN
            RAISE EXCEPTION 'Citus worker %:% failed: %', r.nodename, r.nodeport, r.result
                  USING ERRCODE = 'connection_failure',
                        DETAIL = format('The command was: %s', left(command, 200)),
                        HINT = 'Check the worker (storage.health() runs citus_node_health), then repeat.';
        END IF;
        node := format('%s:%s', r.nodename, r.nodeport);
        result := r.result;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION storage._on_workers(text) IS
    'Internal: one command on every Citus worker, each worker''s result; raises if one fails.';

-- The one refusal of a function that would be wrong on a Citus table (docs/citus.md lists
-- which): 0A000 at once, naming the table, its kind, why, and what to do instead.
CREATE FUNCTION storage._refuse_on_citus(target regclass, what text, why text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kind text := storage._citus_kind(target);
BEGIN
    IF kind IS NOT NULL THEN
        RAISE EXCEPTION '% does not support Citus % tables: % is one', what, kind, target
              USING ERRCODE = 'feature_not_supported', DETAIL = why,
                    HINT = 'Use it on a table that stays on the coordinator (undistribute_table() makes one of a Citus table); docs/citus.md lists what works on Citus tables.';
    END IF;
END
$$;
COMMENT ON FUNCTION storage._refuse_on_citus(regclass, text, text) IS
    'Internal: raises 0A000 when the table is a Citus table, for a function that would be wrong on one.';
