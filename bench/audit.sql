-- Audit benchmarks: 100k-row INSERT ... SELECT into an audited narrow table (id bigint PK, title,
-- body of about 200 bytes, n, created; our statement-level capture into the normalized log with
-- its indexes) vs the same into an unaudited table, and vs a per-row PL/pgSQL trigger as in the
-- PostgreSQL docs (bench/baselines/audit_plpgsql.sql), and vs supa_audit 0.3.1 (INSERT and
-- UPDATE, in a database of its own); capture with three actor settings set vs none; the blog's
-- users table; the log's bytes against the 0.1.0 layout; audit.history among many log rows. The
-- pgbench single-row UPDATE comparisons are bench/audit.sh.
SELECT (100000 * :scale)::int AS rows \gset
\ir baselines/audit_plpgsql.sql

-- The narrow table's rows and columns, written once: made here and, for supa_audit, in its own
-- database by the same text.
\set a_src_query 'SELECT i::bigint AS id, ''Article title number '' || i AS title, repeat(md5(i::text), 6) || md5((i * 7)::text) AS body, 0 AS n, timestamptz ''2026-01-01 00:00:00+00'' + i * interval ''1 minute'' AS created FROM generate_series(1, ' :rows ') AS i'
\set a_columns '(id bigint PRIMARY KEY, title text, body text, n int, created timestamptz)'
CREATE TABLE bench.a_src AS :a_src_query;
CREATE TABLE bench.a_bare :a_columns;
CREATE TABLE bench.a_audited (LIKE bench.a_bare INCLUDING ALL);
CREATE TABLE bench.a_plpgsql (LIKE bench.a_bare INCLUDING ALL);
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON bench.a_plpgsql
    FOR EACH ROW EXECUTE FUNCTION bench.audit_plpgsql();
SELECT audit.enable('bench.a_audited');
VACUUM ANALYZE bench.a_src;

SELECT bench.compare('audit INSERT ... SELECT 100k rows, audited vs unaudited',
    'INSERT INTO bench.a_audited SELECT * FROM bench.a_src',
    'INSERT INTO bench.a_bare SELECT * FROM bench.a_src',
    'TRUNCATE bench.a_audited, bench.a_bare; TRUNCATE audit._log_row, audit._log_statement', 5, '<= 3.0');
SELECT bench.compare('audit INSERT ... SELECT 100k rows, audited vs per-row PL/pgSQL trigger (docs)',
    'INSERT INTO bench.a_audited SELECT * FROM bench.a_src',
    'INSERT INTO bench.a_plpgsql SELECT * FROM bench.a_src',
    'TRUNCATE bench.a_audited, bench.a_plpgsql, bench.audit_plpgsql_log; TRUNCATE audit._log_row, audit._log_statement', 5, '4x faster');

-- The floor of any design that writes this log in the same transaction: no trigger at all, the
-- table's INSERT, one statement row and the changed rows (id, statement, key hash, image by
-- to_jsonb) written by one plain statement into the same partitioned tables with their indexes.
-- 'floor vs unaudited' is what the log's content costs by itself; 'audited vs floor' is what
-- capturing it costs on top.
CREATE TABLE bench.a_floor (LIKE bench.a_bare INCLUDING ALL);
\set floor_insert 'WITH i AS (INSERT INTO bench.a_floor SELECT * FROM bench.a_src RETURNING *), s AS (INSERT INTO audit._log_statement (id, ts, txid, table_oid, op, context) VALUES (nextval(''audit.log_id_seq''), statement_timestamp(), pg_current_xact_id(), ''bench.a_floor''::regclass, ''INSERT'', 1) RETURNING id) INSERT INTO audit._log_row (id, statement_id, ts, key_hash, new_row) SELECT nextval(''audit.log_id_seq''), s.id, statement_timestamp(), jsonb_hash_extended(to_jsonb(i) - ''{title,body,n,created}''::text[], 0), to_jsonb(i) FROM i, s'
SELECT bench.compare('audit INSERT ... SELECT 100k rows, floor (table + log rows in one plain statement, no trigger) vs unaudited',
    :'floor_insert',
    'INSERT INTO bench.a_bare SELECT * FROM bench.a_src',
    'TRUNCATE bench.a_floor, bench.a_bare; TRUNCATE audit._log_row, audit._log_statement', 5);
SELECT bench.compare('audit INSERT ... SELECT 100k rows, audited vs floor',
    'INSERT INTO bench.a_audited SELECT * FROM bench.a_src',
    :'floor_insert',
    'TRUNCATE bench.a_audited, bench.a_floor; TRUNCATE audit._log_row, audit._log_statement', 5);

-- supa_audit 0.3.1 (supabase/supa_audit), the anchor: a per-row PL/pgSQL trigger
-- (audit.enable_tracking) writing the whole row, the old one, and a UUID v5 of the key
-- (uuid-ossp) into audit.record_version. scripts/supa-audit.sh builds it, and contrib's uuid-ossp
-- it requires, from the vendored source; when it is not installed its rows are left out, saying
-- so. It names its schema `audit` like ours, so it runs in a database of its own in this cluster,
-- bench_audit_supa, driven from this session through dblink: the same table (a_bare's columns)
-- and the same rows (bench.a_src, made there by the same query and checked equal). Its side pays
-- one dblink round trip and its own commit per statement (fsync and synchronous_commit are off
-- in this cluster: well under a millisecond). Ours is bench.a_audited, as above.
SELECT NOT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'supa_audit') AS no_supa \gset
\if :no_supa
\echo 'supa_audit: not installed (scripts/supa-audit.sh found no vendored source); the rows against it are left out'
\else
DROP DATABASE IF EXISTS bench_audit_supa;
CREATE DATABASE bench_audit_supa;
CREATE EXTENSION IF NOT EXISTS dblink WITH SCHEMA bench;
SELECT bench.dblink_connect('supa', format('dbname=bench_audit_supa host=127.0.0.1 port=%s user=%s',
                                           current_setting('port'), current_user)) \g /dev/null
SELECT bench.dblink_exec('supa', 'SET client_min_messages = warning') \g /dev/null
SELECT bench.dblink_exec('supa', 'CREATE EXTENSION supa_audit CASCADE') \g /dev/null
-- the real supa_audit on PostgreSQL's own uuid-ossp: the version, and the v5 UUID of uuid-ossp's
-- regression test
SELECT bench.assert(v = '0.3.1' AND u = '21f7f8de-8051-5b89-8680-0195ef798b6a',
                    format('supa_audit %s, uuid_generate_v5 %s: not supa_audit 0.3.1 on uuid-ossp', v, u))
  FROM bench.dblink('supa', $$SELECT (SELECT extversion FROM pg_extension WHERE extname = 'supa_audit'),
                                     uuid_generate_v5(uuid_ns_dns(), 'www.widgets.com')::text$$) AS t(v text, u text);
SELECT bench.dblink_exec('supa', 'CREATE SCHEMA bench') \g /dev/null
SELECT bench.dblink_exec('supa', 'CREATE TABLE bench.a_src AS ' || :'a_src_query') \g /dev/null
SELECT bench.dblink_exec('supa', 'CREATE TABLE bench.a_supa ' || :'a_columns') \g /dev/null
SELECT FROM bench.dblink('supa', $$SELECT audit.enable_tracking('bench.a_supa')::text$$) AS t(r text) \g /dev/null
SELECT bench.dblink_exec('supa', 'VACUUM ANALYZE bench.a_src') \g /dev/null
\set a_src_digest 'SELECT md5(string_agg(s::text, E''\n'' ORDER BY id)) FROM bench.a_src s'
SELECT bench.assert((:a_src_digest) = (SELECT d FROM bench.dblink('supa', :'a_src_digest') AS t(d text)),
                    'bench.a_src differs between bench_audit and bench_audit_supa');

-- Both logs are checked after every run: supa_audit's after the last (its rows count), ours by
-- the reset before each run, which notes what the previous run logged in bench.logged.
CREATE TABLE bench.logged (op text, n bigint);
\set logged 'INSERT INTO bench.logged SELECT op, count(*) FROM audit.log WHERE table_name = ''a_audited'' GROUP BY op'
TRUNCATE bench.a_audited; TRUNCATE audit._log_row, audit._log_statement;
SELECT bench.compare('audit INSERT ... SELECT 100k rows, audited vs audited by supa_audit 0.3.1 (per-row trigger)',
    'INSERT INTO bench.a_audited SELECT * FROM bench.a_src',
    $$SELECT bench.dblink_exec('supa', 'INSERT INTO bench.a_supa SELECT * FROM bench.a_src')$$,
    :'logged' || $$; TRUNCATE bench.a_audited; TRUNCATE audit._log_row, audit._log_statement;
      SELECT bench.dblink_exec('supa', 'TRUNCATE bench.a_supa; TRUNCATE audit.record_version')$$, 5, '8x faster');
SELECT bench.assert(count(*) >= 1 AND bool_and(n = :rows), format('pg_storage_ext logged %s INSERT rows of %s', string_agg(n::text, ', '), :rows))
  FROM bench.logged WHERE op = 'INSERT';
SELECT bench.assert(n = :rows, format('supa_audit logged %s INSERT rows of %s', n, :rows))
  FROM bench.dblink('supa', $$SELECT count(*) FROM audit.record_version
                                WHERE op = 'INSERT' AND table_name = 'a_supa' AND record_id IS NOT NULL$$) AS t(n bigint);
-- one column of every row; both tables reloaded and both logs emptied before each run (supa_audit's
-- table with its trigger off, session_replication_role = replica: untimed either way)
SELECT bench.compare('audit UPDATE 100k rows (one column), audited vs audited by supa_audit 0.3.1 (per-row trigger)',
    'UPDATE bench.a_audited SET n = n + 1',
    $$SELECT bench.dblink_exec('supa', 'UPDATE bench.a_supa SET n = n + 1')$$,
    :'logged' || $$; TRUNCATE bench.a_audited; INSERT INTO bench.a_audited SELECT * FROM bench.a_src;
      TRUNCATE audit._log_row, audit._log_statement;
      SELECT bench.dblink_exec('supa', 'TRUNCATE bench.a_supa; SET session_replication_role = replica;
          INSERT INTO bench.a_supa SELECT * FROM bench.a_src; RESET session_replication_role;
          TRUNCATE audit.record_version')$$, 3, '5x faster');
SELECT bench.assert(n = :rows, format('supa_audit logged %s UPDATE rows of %s', n, :rows))
  FROM bench.dblink('supa', $$SELECT count(*) FROM audit.record_version
                                WHERE op = 'UPDATE' AND table_name = 'a_supa' AND old_record IS NOT NULL$$) AS t(n bigint);
SELECT bench.assert(count(*) >= 1 AND bool_and(n = :rows), format('pg_storage_ext logged %s UPDATE rows of %s', string_agg(n::text, ', '), :rows))
  FROM bench.logged WHERE op = 'UPDATE';
SELECT bench.dblink_disconnect('supa') \g /dev/null
DROP DATABASE bench_audit_supa;
\endif

-- The actor (pg_storage_ext.audit_actor_settings): the same INSERT captured with three actor
-- settings set -- a user id, a tenant and PostgREST's request.jwt.claims (JSON, stored as JSON)
-- -- against none of them set (each set to '', which counts as unset). The reset before every
-- run notes which actor the previous run's log rows carry, so that every run is checked: each
-- run with the settings recorded them on every row, each run without recorded none.
-- bench.jwt_claims(user): the claims PostgREST sets for a Supabase-style access token (~550 bytes).
CREATE FUNCTION bench.jwt_claims(uid int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
SELECT jsonb_build_object(
    'aud', 'authenticated', 'exp', 1767229200, 'iat', 1767225600,
    'iss', 'https://auth.example.com/auth/v1',
    'sub', format('6f1c2a4e-3b7d-4e1a-9c2f-%s', lpad(uid::text, 12, '0')),
    'email', format('user%s@example.com', uid), 'phone', '',
    'app_metadata', jsonb_build_object('provider', 'email', 'providers', jsonb_build_array('email')),
    'user_metadata', jsonb_build_object('email', format('user%s@example.com', uid), 'email_verified', true,
                                        'phone_verified', false, 'sub', format('6f1c2a4e-3b7d-4e1a-9c2f-%s', lpad(uid::text, 12, '0'))),
    'role', 'authenticated', 'aal', 'aal1',
    'amr', jsonb_build_array(jsonb_build_object('method', 'password', 'timestamp', 1767225600)),
    'session_id', format('0b7e2f5c-91d4-4c3a-8e6b-%s', lpad(uid::text, 12, '0')),
    'is_anonymous', false)::text
$$;
SET pg_storage_ext.audit_actor_settings = 'app.user_id, app.tenant, request.jwt.claims';
CREATE TABLE bench.actor_seen (actor jsonb, n bigint);
\set actor_seen 'INSERT INTO bench.actor_seen SELECT actor, count(*) FROM audit.log WHERE op = ''INSERT'' AND table_name = ''a_audited'' GROUP BY actor'
TRUNCATE bench.a_audited; TRUNCATE audit._log_row, audit._log_statement;
SELECT bench.compare('audit INSERT ... SELECT 100k rows, three actor settings set vs none',
    $$SELECT set_config('app.user_id', '42', false), set_config('app.tenant', 'tenant-2', false),
             set_config('request.jwt.claims', bench.jwt_claims(42), false);
      INSERT INTO bench.a_audited SELECT * FROM bench.a_src$$,
    $$SELECT set_config('app.user_id', '', false), set_config('app.tenant', '', false),
             set_config('request.jwt.claims', '', false);
      INSERT INTO bench.a_audited SELECT * FROM bench.a_src$$,
    :'actor_seen' || '; TRUNCATE bench.a_audited; TRUNCATE audit._log_row, audit._log_statement',
    7, '<= 1.05');
:actor_seen;
SELECT bench.assert(set_runs >= 1 AND set_runs = none_runs AND other = 0,
                    format('actor capture: %s runs recorded the three settings on every row, %s runs none, %s runs something else (%s)',
                           set_runs, none_runs, other, (SELECT string_agg(coalesce(actor::text, 'NULL') || ' x ' || n, '; ') FROM bench.actor_seen)))
  FROM (SELECT count(*) FILTER (WHERE actor = expected AND n = :rows) AS set_runs,
               count(*) FILTER (WHERE actor IS NULL AND n = :rows) AS none_runs,
               count(*) FILTER (WHERE NOT coalesce((actor = expected OR actor IS NULL) AND n = :rows, false)) AS other
          FROM bench.actor_seen,
               LATERAL (SELECT jsonb_build_object('app.user_id', '42', 'app.tenant', 'tenant-2',
                                                  'request.jwt.claims', bench.jwt_claims(42)::jsonb) AS expected) e) x;
RESET pg_storage_ext.audit_actor_settings;
RESET app.user_id; RESET app.tenant; RESET request.jwt.claims;

-- the blog's users table (examples/blog/migrations/0001_users.sql: unique username and email, a partial index,
-- a GIN index on preferences), 100k users with ~200-byte preferences
CREATE TABLE bench.u_src AS
SELECT i AS id, 'user_' || i AS username, 'user' || i || '@example.com' AS email, 'User ' || i AS display_name,
       i % 10 <> 0 AS is_active,
       jsonb_build_object('theme', CASE WHEN i % 2 = 0 THEN 'dark' ELSE 'light' END, 'language', 'en',
                          'notifications', jsonb_build_object('email', true, 'push', i % 3 = 0),
                          'timezone', 'Europe/Paris', 'items_per_page', 20 + i % 30) AS preferences,
       jsonb_build_object('twitter', '@user' || i) AS social_links,
       timestamptz '2026-01-01' + i * interval '1 minute' AS created_at
  FROM generate_series(1, :rows) AS i;
CREATE TABLE bench.u_bare (
    id bigint PRIMARY KEY, username text NOT NULL UNIQUE, email text NOT NULL UNIQUE, display_name text,
    is_active boolean NOT NULL DEFAULT true, preferences jsonb NOT NULL DEFAULT '{}',
    social_links jsonb NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON bench.u_bare (email) WHERE is_active;
CREATE INDEX ON bench.u_bare USING gin (preferences jsonb_path_ops);
CREATE TABLE bench.u_audited (LIKE bench.u_bare INCLUDING ALL);
CREATE TABLE bench.u_plpgsql (LIKE bench.u_bare INCLUDING ALL);
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON bench.u_plpgsql
    FOR EACH ROW EXECUTE FUNCTION bench.audit_plpgsql();
SELECT audit.enable('bench.u_audited');
VACUUM ANALYZE bench.u_src;
SELECT bench.compare('audit INSERT ... SELECT 100k blog users (5 indexes), audited vs unaudited',
    'INSERT INTO bench.u_audited SELECT * FROM bench.u_src',
    'INSERT INTO bench.u_bare SELECT * FROM bench.u_src',
    'TRUNCATE bench.u_audited, bench.u_bare; TRUNCATE audit._log_row, audit._log_statement', 5, '<= 1.4');
SELECT bench.compare('audit INSERT ... SELECT 100k blog users (5 indexes), audited vs per-row PL/pgSQL trigger (docs)',
    'INSERT INTO bench.u_audited SELECT * FROM bench.u_src',
    'INSERT INTO bench.u_plpgsql SELECT * FROM bench.u_src',
    'TRUNCATE bench.u_audited, bench.u_plpgsql, bench.audit_plpgsql_log; TRUNCATE audit._log_row, audit._log_statement', 5, '4x faster');
-- the floor of the users INSERT: table and log rows written by one plain statement, no trigger
CREATE TABLE bench.u_floor (LIKE bench.u_bare INCLUDING ALL);
\set u_floor_insert 'WITH i AS (INSERT INTO bench.u_floor SELECT * FROM bench.u_src RETURNING *), s AS (INSERT INTO audit._log_statement (id, ts, txid, table_oid, op, context) VALUES (nextval(''audit.log_id_seq''), statement_timestamp(), pg_current_xact_id(), ''bench.u_floor''::regclass, ''INSERT'', 1) RETURNING id) INSERT INTO audit._log_row (id, statement_id, ts, key_hash, new_row) SELECT nextval(''audit.log_id_seq''), s.id, statement_timestamp(), jsonb_hash_extended(jsonb_build_object(''id'', i.id), 0), to_jsonb(i) FROM i, s'
SELECT bench.compare('audit INSERT ... SELECT 100k blog users, floor (table + log rows in one plain statement, no trigger) vs unaudited',
    :'u_floor_insert',
    'INSERT INTO bench.u_bare SELECT * FROM bench.u_src',
    'TRUNCATE bench.u_floor, bench.u_bare; TRUNCATE audit._log_row, audit._log_statement', 5);
-- a bulk UPDATE and DELETE, set-based old/new pairing
SELECT bench.compare('audit UPDATE 100k blog users, audited vs unaudited',
    'UPDATE bench.u_audited SET display_name = display_name || ''!''',
    'UPDATE bench.u_bare SET display_name = display_name || ''!''',
    'TRUNCATE bench.u_audited, bench.u_bare; TRUNCATE audit._log_row, audit._log_statement; INSERT INTO bench.u_audited SELECT * FROM bench.u_src; INSERT INTO bench.u_bare SELECT * FROM bench.u_src', 3, '<= 1.8');
-- its floor: the UPDATE and its log rows (old image, the changed column) in one plain statement
\set u_floor_update 'WITH u AS (UPDATE bench.u_floor SET display_name = display_name || ''!'' RETURNING to_jsonb(old) AS o, to_jsonb(new) AS n), s AS (INSERT INTO audit._log_statement (id, ts, txid, table_oid, op, context) VALUES (nextval(''audit.log_id_seq''), statement_timestamp(), pg_current_xact_id(), ''bench.u_floor''::regclass, ''UPDATE'', 1) RETURNING id) INSERT INTO audit._log_row (id, statement_id, ts, key_hash, old_row, new_row) SELECT nextval(''audit.log_id_seq''), s.id, statement_timestamp(), jsonb_hash_extended(jsonb_build_object(''id'', u.n -> ''id''), 0), u.o, jsonb_build_object(''display_name'', u.n -> ''display_name'') FROM u, s'
SELECT bench.compare('audit UPDATE 100k blog users, floor (UPDATE + log rows in one plain statement, no trigger) vs unaudited',
    :'u_floor_update',
    'UPDATE bench.u_bare SET display_name = display_name || ''!''',
    'TRUNCATE bench.u_floor, bench.u_bare; TRUNCATE audit._log_row, audit._log_statement; INSERT INTO bench.u_floor SELECT * FROM bench.u_src; INSERT INTO bench.u_bare SELECT * FROM bench.u_src', 3);


-- The log's bytes on disk (heap and indexes of every partition) after a 100k-row UPDATE of one
-- column of the narrow table, against the same log rows in the 0.1.0 layout (one table, four
-- name columns, key and both full images per row, its two indexes), filled from the audit.log view.
TRUNCATE bench.a_audited; TRUNCATE audit._log_row, audit._log_statement;
INSERT INTO bench.a_audited SELECT * FROM bench.a_src;
TRUNCATE audit._log_row, audit._log_statement;
UPDATE bench.a_audited SET n = n + 1;
CREATE TABLE bench.log_0_1 (
    id bigint NOT NULL, ts timestamptz NOT NULL, txid xid8 NOT NULL, table_oid oid NOT NULL,
    schema_name name NOT NULL, table_name name NOT NULL, op text NOT NULL, pk jsonb, old_pk jsonb,
    old_row jsonb, new_row jsonb, changed_columns text[], db_user name NOT NULL, role_name name NOT NULL,
    application_name text, client_addr inet, query text);
CREATE INDEX ON bench.log_0_1 (table_oid, pk, id);
CREATE INDEX ON bench.log_0_1 (table_oid, old_pk) WHERE old_pk IS NOT NULL;
-- the 0.1.0 columns (audit.log has gained actor since)
INSERT INTO bench.log_0_1
SELECT id, ts, txid, table_oid, schema_name, table_name, op, pk, old_pk, old_row, new_row, changed_columns,
       db_user, role_name, application_name, client_addr, query
  FROM audit.log;
VACUUM ANALYZE bench.log_0_1;
SELECT bench.record('audit log bytes after a 100k-row one-column UPDATE, lean layout vs the 0.1.0 layout',
    (SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree('audit._log_row') p)
      + (SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree('audit._log_statement') p)
      + pg_total_relation_size('audit._log_context'),
    pg_total_relation_size('bench.log_0_1'),
    ((SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree('audit._log_row') p)
      + (SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree('audit._log_statement') p)
      + pg_total_relation_size('audit._log_context'))::float8 / pg_total_relation_size('bench.log_0_1'),
    '<= 0.4', 'bytes');

-- audit.history of one key among 10M log rows (at scale 1): the rows of one INSERT statement
-- of the narrow table written straight into the log, then history of one key by its hash
-- index, against the goal of 2 ms (the baseline column is that goal).
TRUNCATE audit._log_row, audit._log_statement;
INSERT INTO audit._log_statement (id, ts, txid, table_oid, op, context)
VALUES (nextval('audit.log_id_seq'), now(), pg_current_xact_id(), 'bench.a_audited'::regclass, 'INSERT',
        audit._context('bench', 'a_audited', session_user, current_user, NULL, NULL,
                       '{id,title,body,n,created}', '{title,body,n,created}'))
RETURNING id AS hist_statement \gset
INSERT INTO audit._log_row (id, statement_id, ts, key_hash, new_row)
SELECT nextval('audit.log_id_seq'), :hist_statement, now(),
       jsonb_hash_extended(jsonb_build_object('id', i), 0), jsonb_build_object('id', i, 'title', 't', 'n', 0)
  FROM generate_series(1, (10000000 * :scale)::int) AS i;
VACUUM ANALYZE audit._log_row, audit._log_statement;
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY t) AS hist_ms
  FROM (SELECT bench.time_ms(format('SELECT * FROM audit.history(''bench.a_audited'', ''{"id": %s}'')', k * 7919 % (10000000 * :scale)::int + 1)) AS t
          FROM generate_series(1, 11) AS g(k)) x \gset
SELECT bench.record(format('audit.history of one key among %s log rows (ms; baseline: the 2 ms goal)',
                           (SELECT count(*) FROM audit._log_row)), :hist_ms, 2.0, :hist_ms / 2.0, '<= 1');

-- The table as it was: audit.table_at of a 100k-row audited table with 10 % of its rows changed
-- since that moment (one UPDATE of 10k rows) vs SELECT * of the live table, both read whole. Run
-- after the 10M-row history log above: the log it reads is not empty. Each side's rows are
-- written out as COPY writes them (to /dev/null): the work a client's SELECT * costs the server,
-- and nothing kept. (Kept in the backend's memory instead, as a PL/pgSQL EXECUTE keeps a result,
-- the SELECT * side varies twice over with what the previous statement left allocated: those
-- figures follow, without a goal.)
-- (a copy of the narrow table, audited; returns the moment after, before any change)
CREATE FUNCTION bench.at_table(t text) RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE %s (LIKE bench.a_bare INCLUDING ALL)', t);
    EXECUTE format('INSERT INTO %s SELECT * FROM bench.a_src', t);
    PERFORM audit.enable(t::regclass);
    RETURN clock_timestamp();
END $$;
SELECT bench.at_table('bench.at_t') AS at_moment \gset
UPDATE bench.at_t SET n = n + 1 WHERE id % 10 = 0;
VACUUM ANALYZE bench.at_t, audit._log_row, audit._log_statement;
-- (table_at of such a copy at its moment vs SELECT * of it, each written out as COPY does; every
-- row as it was has n = 0, or the figures mean nothing)
CREATE FUNCTION bench.at_compare(name text, t text, at timestamptz, goal text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE changed bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM audit.table_at(NULL::%s, $1) WHERE n <> 0', t) INTO changed USING at;
    PERFORM bench.assert(changed = 0, 'table_at gives the rows as they were at the moment');
    RETURN bench.compare(name, format('COPY (SELECT * FROM audit.table_at(NULL::%s, %L)) TO ''/dev/null''', t, at),
                         format('COPY (SELECT * FROM %s) TO ''/dev/null''', t), NULL, 9, goal);
END $$;
SELECT bench.at_compare('audit.table_at of 100k rows, 10 % changed since, vs SELECT * of the live table (rows written out as COPY does)',
                        'bench.at_t', :'at_moment', '<= 3');
-- The floor of any set-returning function: the live table returned through PL/pgSQL's RETURN
-- QUERY (materialized once more, as every function in FROM is), no log read at all; with its
-- result store made at work_mem (4MB here: written to a temporary file), and at the memory
-- table_at makes it with (pg_storage_ext.table_at_work_mem, 64MB).
CREATE FUNCTION bench.srf_floor(target anyelement, mem text) RETURNS SETOF anyelement
LANGUAGE plpgsql SET work_mem FROM CURRENT AS $$
BEGIN
    PERFORM set_config('work_mem', mem, true);
    RETURN QUERY EXECUTE format('SELECT * FROM %s', pg_typeof(target));
END $$;
SELECT bench.compare('audit.table_at floor: the live table through a set-returning function, in memory (64MB, as table_at keeps it), vs SELECT * (written out as COPY does)',
    'COPY (SELECT * FROM bench.srf_floor(NULL::bench.at_t, ''64MB'')) TO ''/dev/null''', 'COPY (SELECT * FROM bench.at_t) TO ''/dev/null''', NULL, 9, NULL);
SELECT bench.compare('audit.table_at of 100k rows, 10 % changed since, vs SELECT *, both results kept in the backend (PL/pgSQL EXECUTE)',
    format('SELECT * FROM audit.table_at(NULL::bench.at_t, %L)', :'at_moment'),
    'SELECT * FROM bench.at_t', NULL, 9, NULL);
SELECT bench.compare('audit.table_at floor: the live table through a set-returning function at work_mem (a temporary file) vs SELECT *, both kept in the backend',
    format('SELECT * FROM bench.srf_floor(NULL::bench.at_t, %L)', current_setting('work_mem')), 'SELECT * FROM bench.at_t', NULL, 9, NULL);
SELECT bench.compare('audit.table_at floor: the same in memory (64MB) vs SELECT *, both kept in the backend',
    'SELECT * FROM bench.srf_floor(NULL::bench.at_t, ''64MB'')', 'SELECT * FROM bench.at_t', NULL, 9, NULL);
-- The same with each of those rows changed twice since (each key's first change is looked for):
-- a copy of the table, changed after the figures above were taken (no goal).
SELECT bench.at_table('bench.at_t2') AS at_moment2 \gset
UPDATE bench.at_t2 SET n = n + 1 WHERE id % 10 = 0;
UPDATE bench.at_t2 SET n = n + 1 WHERE id % 10 = 0;
VACUUM ANALYZE bench.at_t2, audit._log_row, audit._log_statement;
SELECT bench.at_compare('audit.table_at of 100k rows, 10 % changed twice since, vs SELECT * of the live table (rows written out as COPY does)',
                        'bench.at_t2', :'at_moment2', NULL);
-- (audit.revert_transaction of a 10k-row UPDATE: bench/audit.sh, each statement its own transaction)
