-- Replicas capability: a heartbeat the primary writes and every standby replays, and replication
-- status that does not lie. `now() - pg_last_xact_replay_timestamp()` grows while the primary is
-- idle and says nothing of a standby whose WAL receiver is gone; the heartbeat (the primary's
-- clock and WAL position, written every few seconds by the pg_storage_ext.heartbeat job) tells a
-- standby how old the newest primary state it has is, whatever the application writes.

CREATE TABLE storage.heartbeat (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    primary_time timestamptz NOT NULL,
    wal_lsn      pg_lsn NOT NULL,
    every        interval
);
COMMENT ON TABLE storage.heartbeat IS
    'One row, written by storage._heartbeat() on the primary (the pg_storage_ext.heartbeat job): the primary''s clock and WAL position, and how long since the heartbeat before (1 s to 1 min: how often the job writes); replayed by every standby.';

CREATE FUNCTION storage._heartbeat() RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- on a standby the job has nothing to do (and no error for pg_cron's history)
    IF pg_is_in_recovery() THEN
        RETURN false;
    END IF;
    INSERT INTO storage.heartbeat AS h (id, primary_time, wal_lsn) VALUES (true, clock_timestamp(), pg_current_wal_lsn())
    ON CONFLICT (id) DO UPDATE
       SET primary_time = excluded.primary_time, wal_lsn = excluded.wal_lsn,
           every = least(greatest(excluded.primary_time - h.primary_time, interval '1 second'), interval '1 minute');
    -- self-healing within seconds of a crash or a terminated worker (storage._recover)
    BEGIN
        PERFORM storage._recover();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'pg_storage_ext: the heartbeat''s recovery step failed: %', SQLERRM;
    END;
    -- the search vocabulary: the lexemes the search trigger queued (typo tolerance)
    BEGIN
        PERFORM storage._search_words_merge();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'pg_storage_ext: the heartbeat''s search vocabulary step failed: %', SQLERRM;
    END;
    -- its own run history stays bounded: pg_cron keeps a row per run (17,000 a day at every 5
    -- seconds) and never prunes; the last hour is kept
    IF to_regclass('cron.job_run_details') IS NOT NULL THEN
        BEGIN
            EXECUTE $q$DELETE FROM cron.job_run_details d USING cron.job j
                        WHERE d.jobid = j.jobid AND j.jobname = $1 AND j.username = current_user
                          AND d.end_time < now() - interval '1 hour'$q$
              USING 'pg_storage_ext.heartbeat';
        EXCEPTION WHEN insufficient_privilege OR lock_not_available THEN
            NULL;   -- not the job's owner: nothing to prune here
        END;
    END IF;
    RETURN true;
END $$;
COMMENT ON FUNCTION storage._heartbeat() IS
    'Internal: the heartbeat job: writes the primary''s clock and WAL position into storage.heartbeat, runs the self-healing step (storage._recover()), merges the search vocabulary''s queue (storage._search_words_merge()) and prunes its own pg_cron run history to the last hour; on a standby returns false at once.';

CREATE FUNCTION storage.replication_status()
RETURNS TABLE (role text, state text, replay_lag interval, byte_lag numeric, last_heartbeat timestamptz, detail text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    hb storage.heartbeat;
    receiver text;
    sender text;
    pause text;
    behind numeric;
    last_xact timestamptz;
BEGIN
    SELECT * INTO hb FROM storage.heartbeat;
    IF pg_is_in_recovery() THEN
        role := 'standby';
        last_heartbeat := hb.primary_time;
        SELECT r.status, r.sender_host || ':' || r.sender_port INTO receiver, sender FROM pg_stat_wal_receiver r;
        pause := pg_get_wal_replay_pause_state();
        behind := pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn());
        byte_lag := greatest(behind, 0);
        last_xact := pg_last_xact_replay_timestamp();
        IF pause <> 'not paused' THEN
            state := 'paused';
            replay_lag := now() - coalesce(last_xact, hb.primary_time);
            detail := format('replay %s with pg_wal_replay_pause(); %s bytes received and not replayed', pause, byte_lag);
        ELSIF receiver IS DISTINCT FROM 'streaming' THEN
            -- no WAL receiver: nothing says the primary has not moved on; the heartbeat says how
            -- old the newest primary state here is
            state := 'disconnected';
            replay_lag := now() - hb.primary_time;
            detail := CASE WHEN receiver IS NULL THEN 'no WAL receiver is running'
                           ELSE format('the WAL receiver is %s', receiver) END
                      || CASE WHEN hb.primary_time IS NULL THEN '; no heartbeat replayed yet (schedule storage.schedule_jobs() on the primary)'
                              ELSE format('; the newest primary state here is from %s', hb.primary_time) END;
        ELSIF behind > 0 THEN
            state := 'catching up';
            replay_lag := now() - coalesce(least(last_xact, hb.primary_time), last_xact, hb.primary_time);
            detail := format('%s bytes received and not yet replayed, from %s', byte_lag, sender);
        ELSIF last_xact IS NULL OR last_xact < now() - interval '1 minute' THEN
            -- everything received is replayed and the primary has committed nothing for a while:
            -- no lag, whatever the time since the last transaction
            state := 'idle primary';
            replay_lag := interval '0';
            detail := format('caught up with %s; the primary has committed nothing since %s', sender, coalesce(last_xact::text, 'this standby started'));
        ELSE
            state := 'streaming';
            replay_lag := interval '0';
            detail := format('caught up with %s', sender);
        END IF;
        RETURN NEXT;
        RETURN;
    END IF;
    -- the primary: one row per standby, and per replication slot nobody uses that retains WAL
    RETURN QUERY
    SELECT 'primary', r.state, coalesce(r.replay_lag, interval '0'),
           pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn), hb.primary_time,
           format('standby %s at %s (sync %s)', coalesce(nullif(r.application_name, ''), 'unnamed'), coalesce(host(r.client_addr), 'local socket'), r.sync_state)
      FROM pg_stat_replication r;
    RETURN QUERY
    SELECT 'primary', 'inactive slot', NULL::interval,
           pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(s.restart_lsn, s.confirmed_flush_lsn)), hb.primary_time,
           format('replication slot %s is not in use and retains %s of WAL: drop it if its standby is gone', s.slot_name,
                  pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(s.restart_lsn, s.confirmed_flush_lsn))))
      FROM pg_replication_slots s
     WHERE NOT s.active AND coalesce(s.restart_lsn, s.confirmed_flush_lsn) IS NOT NULL;
END $$;
COMMENT ON FUNCTION storage.replication_status() IS
    'On a standby, one row: state streaming, catching up, paused, disconnected (no WAL receiver) or idle primary (caught up, nothing committed for a minute), replay lag from the replayed heartbeat and the last replayed transaction (0 when caught up, never a false 0 when disconnected), bytes received and not replayed. On the primary, one row per standby from pg_stat_replication and one per inactive slot retaining WAL.';

GRANT SELECT ON storage.heartbeat TO pg_monitor;
GRANT EXECUTE ON FUNCTION storage.replication_status() TO pg_monitor;

-- The routing endpoints of the HTTP endpoint (/primary, /replica?lag=, /read-only, /health,
-- /readiness; crates/core/src/routing.rs decides from this row): the server's own state, no
-- query text. On a standby the seconds of lag come from the replayed heartbeat: its age past the
-- interval the heartbeats come at (and a second) is primary time this standby has not seen, so
-- an idle primary is never a false lag and a stream that stopped delivering (a partition, a
-- stuck sender) is; a paused replay with WAL waiting counts from its last replayed commit. No
-- heartbeat replayed: not known. A lock on storage.heartbeat (replayed from the primary) is
-- waited on for 50 ms at most: then the lag is not known, and the rest still answers.
CREATE FUNCTION storage._routing_state(
    OUT standby boolean, OUT receiving boolean, OUT replication text,
    OUT byte_lag numeric, OUT lag_seconds double precision, OUT clients bigint, OUT client_slots bigint)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    hb_time timestamptz;
    hb_every interval;
    hb_lag double precision;
BEGIN
    standby := pg_is_in_recovery();
    IF standby THEN
        receiving := EXISTS (SELECT FROM pg_stat_wal_receiver w WHERE w.status = 'streaming');
        BEGIN
            PERFORM set_config('lock_timeout', '50ms', true);
            SELECT h.primary_time, h.every INTO hb_time, hb_every FROM storage.heartbeat h;
            SELECT r.state, r.byte_lag, extract(epoch FROM r.replay_lag)
              INTO replication, byte_lag, lag_seconds
              FROM storage.replication_status() r;
        EXCEPTION WHEN lock_not_available THEN
            replication := 'not known: storage.heartbeat is locked';
            hb_time := NULL;
        END;
        byte_lag := coalesce(byte_lag, greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0));
        IF hb_time IS NULL THEN
            lag_seconds := NULL;
        ELSE
            hb_lag := greatest(0, extract(epoch FROM now() - hb_time - coalesce(hb_every, interval '10 seconds') - interval '1 second'));
            lag_seconds := CASE WHEN replication = 'paused' AND byte_lag > 0 THEN greatest(lag_seconds, hb_lag) ELSE hb_lag END;
        END IF;
    ELSE
        receiving := false; replication := 'primary'; byte_lag := 0; lag_seconds := 0;
    END IF;
    SELECT count(*) INTO clients FROM pg_stat_activity a WHERE a.backend_type = 'client backend';
    client_slots := greatest(1, current_setting('max_connections')::int
                                - current_setting('superuser_reserved_connections')::int
                                - current_setting('reserved_connections')::int);
END $$;
COMMENT ON FUNCTION storage._routing_state() IS
    'Internal: the server''s state the HTTP endpoint''s routing endpoints answer from (standby, streaming, bytes received and not replayed, seconds of lag from the replayed heartbeat, client connections and slots); no query text.';
GRANT EXECUTE ON FUNCTION storage._routing_state() TO pg_monitor;
