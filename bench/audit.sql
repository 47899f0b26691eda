-- Audit benchmarks: 100k-row INSERT ... SELECT into an audited table (our statement-level capture
-- into the partitioned audit.log with its default indexes) vs the same into an unaudited table,
-- and vs a per-row PL/pgSQL trigger as in the PostgreSQL docs (bench/baselines/audit_plpgsql.sql).
-- The pgbench single-row UPDATE comparison is bench/audit.sh.
SELECT (100000 * :scale)::int AS rows \gset
\ir baselines/audit_plpgsql.sql

CREATE TABLE bench.a_src AS
SELECT i AS id, 'user_' || i AS username, 'user' || i || '@example.com' AS email,
       md5(i::text) || md5((i * 7)::text) AS bio, 0 AS n, timestamptz '2026-01-01' + i * interval '1 minute' AS created_at
  FROM generate_series(1, :rows) AS i;
CREATE TABLE bench.a_bare (id int PRIMARY KEY, username text, email text, bio text, n int, created_at timestamptz);
CREATE TABLE bench.a_audited (LIKE bench.a_bare INCLUDING ALL);
CREATE TABLE bench.a_plpgsql (LIKE bench.a_bare INCLUDING ALL);
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON bench.a_plpgsql
    FOR EACH ROW EXECUTE FUNCTION bench.audit_plpgsql();
SELECT audit.enable('bench.a_audited');
VACUUM ANALYZE bench.a_src;

SELECT bench.compare('audit INSERT ... SELECT 100k rows, audited vs unaudited',
    'INSERT INTO bench.a_audited SELECT * FROM bench.a_src',
    'INSERT INTO bench.a_bare SELECT * FROM bench.a_src',
    'TRUNCATE bench.a_audited, bench.a_bare; TRUNCATE audit.log', 5, '<= 1.6');
SELECT bench.compare('audit INSERT ... SELECT 100k rows, audited vs per-row PL/pgSQL trigger (docs)',
    'INSERT INTO bench.a_audited SELECT * FROM bench.a_src',
    'INSERT INTO bench.a_plpgsql SELECT * FROM bench.a_src',
    'TRUNCATE bench.a_audited, bench.a_plpgsql, bench.audit_plpgsql_log; TRUNCATE audit.log', 5, '4x faster');

-- The floor of any design that writes the log the issue specifies in the same transaction: no
-- trigger at all, the table's INSERT and the log rows (same columns, same partitioned audit.log
-- with its indexes, images by to_jsonb) written by one plain statement. 'floor vs unaudited' is
-- what the log's content costs by itself; 'audited vs floor' is what capturing it costs on top.
CREATE TABLE bench.a_floor (LIKE bench.a_bare INCLUDING ALL);
\set floor_insert 'WITH i AS (INSERT INTO bench.a_floor SELECT * FROM bench.a_src RETURNING *) INSERT INTO audit.log (ts, txid, table_oid, schema_name, table_name, op, pk, new_row, db_user, role_name, application_name, client_addr) SELECT statement_timestamp(), pg_current_xact_id(), ''bench.a_floor''::regclass, ''bench'', ''a_floor'', ''INSERT'', to_jsonb(i) - ''{username,email,bio,n,created_at}''::text[], to_jsonb(i), session_user, current_user, current_setting(''application_name''), inet_client_addr() FROM i'
SELECT bench.compare('audit INSERT ... SELECT 100k rows, floor (table + log rows in one plain statement, no trigger) vs unaudited',
    :'floor_insert',
    'INSERT INTO bench.a_bare SELECT * FROM bench.a_src',
    'TRUNCATE bench.a_floor, bench.a_bare; TRUNCATE audit.log', 5);
SELECT bench.compare('audit INSERT ... SELECT 100k rows, audited vs floor',
    'INSERT INTO bench.a_audited SELECT * FROM bench.a_src',
    :'floor_insert',
    'TRUNCATE bench.a_audited, bench.a_floor; TRUNCATE audit.log', 5);

-- the blog's users table (examples/blog/schema.sql: unique username and email, a partial index,
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
    'TRUNCATE bench.u_audited, bench.u_bare; TRUNCATE audit.log', 5, '<= 1.6');
SELECT bench.compare('audit INSERT ... SELECT 100k blog users (5 indexes), audited vs per-row PL/pgSQL trigger (docs)',
    'INSERT INTO bench.u_audited SELECT * FROM bench.u_src',
    'INSERT INTO bench.u_plpgsql SELECT * FROM bench.u_src',
    'TRUNCATE bench.u_audited, bench.u_plpgsql, bench.audit_plpgsql_log; TRUNCATE audit.log', 5, '4x faster');
-- a bulk UPDATE and DELETE, set-based old/new pairing
SELECT bench.compare('audit UPDATE 100k blog users, audited vs unaudited',
    'UPDATE bench.u_audited SET display_name = display_name || ''!''',
    'UPDATE bench.u_bare SET display_name = display_name || ''!''',
    'TRUNCATE bench.u_audited, bench.u_bare; TRUNCATE audit.log; INSERT INTO bench.u_audited SELECT * FROM bench.u_src; INSERT INTO bench.u_bare SELECT * FROM bench.u_src', 3);

