-- Audit: the attacks a fresh-context tester found on the actor, table_at/row_at and undo, each
-- refused: a forged log context (fails closed, ids are sha256), a table owner's code run by a
-- superuser who only reads (casts to json, domain checks), a column named t, actor values jsonb
-- refuses, a NULL dry run, error messages. Leaves the database as it found it.
SET TimeZone = 'UTC';
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '\d{6,}', 'N', 'g'); END $$;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO PUBLIC;
CREATE ROLE regress_mallory LOGIN;
CREATE ROLE regress_alice LOGIN;
CREATE SCHEMA m AUTHORIZATION regress_mallory;

-- 1. Log contexts: the id is the sha256 of the values, and a row already under an id must hold the
-- very values (a forged one makes the writer fail closed, never logs it as someone else)
CREATE TABLE accounts (id int PRIMARY KEY, balance int);
SELECT audit.enable('accounts');
GRANT SELECT, UPDATE ON accounts TO regress_mallory, regress_alice;
INSERT INTO accounts VALUES (1, 100), (2, 200);
SELECT c.id <> jsonb_hash_extended(jsonb_build_array(c.schema_name, c.table_name, c.db_user, c.role_name,
                                                     c.application_name, c.client_addr, c.columns, c.non_key), 0) AS not_the_linear_hash
  FROM audit._log_context c WHERE c.table_name = 'accounts';
-- plant, as the owner, the context alice's next change will use, with mallory's values
INSERT INTO audit._log_context (id, schema_name, table_name, db_user, role_name, application_name, client_addr, columns, non_key)
SELECT ('x' || left(encode(sha256(convert_to(jsonb_build_array(0, 'public', 'accounts', session_user, 'regress_alice',
        current_setting('application_name'), inet_client_addr(), '{id,balance}'::text[], '{balance}'::text[], NULL::jsonb)::text, 'UTF8')), 'hex'), 16))::bit(64)::bigint,
       'public', 'accounts', 'regress_mallory', 'regress_mallory', 'forged', NULL, '{id,balance}', '{balance}';
SET ROLE regress_alice;
SELECT pg_temp.err('UPDATE accounts SET balance = 0 WHERE id = 1') AS alice_update_with_a_forged_context;
RESET ROLE;
SELECT count(*) AS logged_as_mallory FROM audit.log WHERE table_oid = 'accounts'::regclass AND role_name = 'regress_mallory';
DELETE FROM audit._log_context WHERE application_name = 'forged';
SET ROLE regress_alice;
UPDATE accounts SET balance = 0 WHERE id = 1;
RESET ROLE;
SELECT op, role_name FROM audit.log WHERE table_oid = 'accounts'::regclass ORDER BY id;

-- 2. A superuser who reads the log runs no code of the table owner's types
SET ROLE regress_mallory;
CREATE TYPE m.mood AS ENUM ('ok', 'meh');
CREATE FUNCTION m.mood_json(m.mood) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE regress_mallory SUPERUSER';
    END IF;
    RETURN to_json($1::text);
END $$;
CREATE CAST (m.mood AS json) WITH FUNCTION m.mood_json(m.mood);
CREATE TABLE m.status (id int PRIMARY KEY, mood m.mood);
INSERT INTO m.status VALUES (1, 'ok'), (2, 'meh');
SELECT audit.enable('m.status');
UPDATE m.status SET mood = 'meh' WHERE id = 1;
RESET ROLE;
SELECT txid::text::bigint AS tx FROM audit.log WHERE table_oid = 'm.status'::regclass ORDER BY id DESC LIMIT 1 \gset
SELECT pg_temp.err('SELECT audit.row_at(''m.status'', ''{"id": 2}'', now())') AS row_at_live;
SELECT pg_temp.err('SELECT count(*) FROM audit.table_at(NULL::m.status, now())') AS table_at;
SELECT pg_temp.err(format('SELECT count(*) FROM audit.revert_transaction(%s)', :tx)) AS revert_dry_run;
SELECT pg_temp.err('SELECT audit.restore_row(''m.status'', ''{"id": 1}'', now())') AS restore_row;
SELECT rolsuper AS mallory_became_superuser FROM pg_roles WHERE rolname = 'regress_mallory';
-- as the owner it is the owner's own code: allowed
GRANT audit_reader TO regress_mallory;
SET ROLE regress_mallory;
SELECT audit.row_at('m.status', '{"id": 2}', now()) AS as_owner;
RESET ROLE;

-- 3. A column named t (or k, w, x, f) is not taken for the row
CREATE TABLE events (id int PRIMARY KEY, t timestamptz, k text, w text, x text, f jsonb);
SELECT audit.enable('events');
INSERT INTO events VALUES (1, '2026-01-01', 'k', 'w', 'x', '{"id": 99}');
SELECT clock_timestamp() AS e0 \gset
UPDATE events SET k = 'k2', f = '{"forged": true}';
SELECT op, pk, new_row ->> 'k' AS k, new_row -> 'f' AS f FROM audit.log WHERE table_oid = 'events'::regclass ORDER BY id;
SELECT audit.row_at('events', '{"id": 1}', :'e0') ->> 'k' AS row_at_k,
       (SELECT k FROM audit.table_at(NULL::events, :'e0')) AS table_at_k,
       audit.restore_row('events', '{"id": 1}', :'e0') AS restored,
       (SELECT k FROM events) AS k_now;

-- 4. Actor values that JSON parsers take and jsonb refuses are kept as strings; the write goes on
SET request.jwt.claims = '{"sub": "u-1", "name": "a\u0000b"}';
UPDATE accounts SET balance = 1 WHERE id = 2;
SET request.jwt.claims = '[1e200000]';
UPDATE accounts SET balance = 2 WHERE id = 2;
RESET request.jwt.claims;
SELECT jsonb_typeof(actor -> 'request.jwt.claims') AS kept_as FROM audit.log
 WHERE table_oid = 'accounts'::regclass AND actor IS NOT NULL ORDER BY id;

-- 5. A NULL dry run is a dry run; 6. messages
UPDATE accounts SET balance = 3 WHERE id = 2;
SELECT txid::text::bigint AS tx2 FROM audit.log WHERE table_oid = 'accounts'::regclass ORDER BY id DESC LIMIT 1 \gset
SELECT count(*) AS shown FROM audit.revert_transaction(:tx2, NULL);
SELECT balance AS not_reverted FROM accounts WHERE id = 2;
SELECT max(id) AS last_row FROM audit.log WHERE table_oid = 'accounts'::regclass \gset
SELECT count(*) AS shown FROM audit.revert_statement(:last_row, NULL);
SELECT balance AS not_reverted FROM accounts WHERE id = 2;
SET ROLE regress_alice;
SELECT pg_temp.err(format('SELECT * FROM audit.revert_statement(%s)', :last_row)) AS revert_statement_not_reader;
RESET ROLE;
SELECT pg_temp.err('SELECT audit._put_row(''accounts'', ''{"id": 2}'', ''{"nocol": 1}'')') AS image_of_no_column;
SELECT pg_temp.err('SELECT audit.row_at(''accounts'', ''[1]'', now())') AS key_not_an_object;

SELECT audit.disable('accounts');
SELECT audit.disable('events');
SELECT audit.disable('m.status');
DROP TABLE accounts, events;
DROP SCHEMA m CASCADE;
DROP ROLE regress_mallory, regress_alice;
