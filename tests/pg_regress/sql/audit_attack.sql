-- Audit: the attacks a fresh-context tester found on the actor, table_at/row_at and undo, each
-- refused: a forged log context (fails closed, ids are sha256), a table owner's code run by a
-- superuser who only reads (casts to json, domain checks), a column named t, actor values jsonb
-- refuses, a NULL dry run, error messages; and what a second one found on TRUNCATE capture and
-- undo (a trigger changing rows after the capture, rows logged twice, inheritance children, a
-- conversion, two tables in one undo, readers of coverage, generated and json columns). Leaves
-- the database as it found it.
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

-- The second attacker, on TRUNCATE capture and undo (0.3.0):
-- 7. A BEFORE TRUNCATE trigger that fires after the capture (later in name order) and changes
-- rows the log has just recorded: the check after the TRUNCATE refuses it, nothing is kept
CREATE TABLE sneaky (id int PRIMARY KEY, v text);
SELECT audit.enable('sneaky');
INSERT INTO sneaky VALUES (1, 'one');
CREATE FUNCTION pg_temp.sneak() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sneaky VALUES (2, 'ghost'); UPDATE sneaky SET v = 'changed' WHERE id = 1; RETURN NULL; END $$;
CREATE TRIGGER zz_sneak BEFORE TRUNCATE ON sneaky FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.sneak();
SELECT pg_temp.err('TRUNCATE sneaky') AS truncate_with_a_later_trigger;
SELECT id, v FROM sneaky ORDER BY id;
SELECT count(*) AS nothing_logged FROM audit.log WHERE table_oid = 'sneaky'::regclass AND op = 'TRUNCATE';
-- (one that fires first is fine: its changes are logged before the rows are read)
DROP TRIGGER zz_sneak ON sneaky;
CREATE TRIGGER a_first BEFORE TRUNCATE ON sneaky FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.sneak();
TRUNCATE sneaky;
SELECT count(*) FILTER (WHERE pk IS NOT NULL) AS rows_logged, max(old_row ->> 'rows') AS said
  FROM audit.log WHERE table_oid = 'sneaky'::regclass AND op = 'TRUNCATE';
-- (and a TRUNCATE followed by new rows in the same transaction is no tampering)
DROP TRIGGER a_first ON sneaky;
BEGIN;
TRUNCATE sneaky;
INSERT INTO sneaky VALUES (3, 'after');
COMMIT;
SELECT id FROM sneaky;

-- 8. One TRUNCATE logs each row once: a partition that is itself partitioned, a partition named
-- before its parent; and its undo puts every row back
CREATE TABLE pt (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
CREATE TABLE pt_a PARTITION OF pt FOR VALUES FROM (0) TO (10);
CREATE TABLE pt_b PARTITION OF pt FOR VALUES FROM (10) TO (20) PARTITION BY RANGE (k);
CREATE TABLE pt_b1 PARTITION OF pt_b FOR VALUES FROM (10) TO (15);
CREATE TABLE pt_b2 PARTITION OF pt_b FOR VALUES FROM (15) TO (20);
SELECT audit.enable('pt');
INSERT INTO pt VALUES (1, 1, 'a'), (2, 11, 'b'), (3, 16, 'c');
TRUNCATE pt_b;
SELECT count(*) FILTER (WHERE pk IS NOT NULL) AS rows_logged, count(*) FILTER (WHERE pk IS NULL) AS statements
  FROM audit.log WHERE table_oid = 'pt'::regclass AND op = 'TRUNCATE';
SELECT max(id) AS pt_truncate FROM audit.log WHERE table_oid = 'pt'::regclass AND op = 'TRUNCATE' \gset
SELECT count(*) AS put_back FROM audit.revert_statement(:pt_truncate, false);
BEGIN;
TRUNCATE pt_b2, pt;
SELECT txid_current() AS pt_tx \gset
COMMIT;
SELECT count(*) FILTER (WHERE pk IS NOT NULL) AS rows_logged_once
  FROM audit.log WHERE table_oid = 'pt'::regclass AND op = 'TRUNCATE' AND txid = :'pt_tx'::text::xid8;
SELECT count(*) AS put_back FROM audit.revert_transaction(:pt_tx, false);
SELECT id, k, v FROM pt ORDER BY id;

-- 9. A table with inheritance children: whether a TRUNCATE empties them is not known to the
-- capture, so its rows are not logged, and the table before it is not answered for
CREATE TABLE ip (id int PRIMARY KEY, v text);
SELECT audit.enable('ip');
CREATE TABLE ic () INHERITS (ip);
INSERT INTO ip VALUES (1, 'parent');
INSERT INTO ic VALUES (2, 'child');
SELECT clock_timestamp() AS ip0 \gset
TRUNCATE ip;
SELECT old_row AS statement FROM audit.log WHERE table_oid = 'ip'::regclass AND op = 'TRUNCATE';
SELECT left(pg_temp.err(format('SELECT count(*) FROM audit.table_at(NULL::ip, %L)', :'ip0')), 5) AS table_before_it;

-- 10. After a conversion, a row inserted with an existing id and another partition value does
-- not hide the row that kept that id
CREATE TABLE cv2 (id int PRIMARY KEY, ts timestamptz NOT NULL, v text);
SELECT audit.enable('cv2');
INSERT INTO cv2 SELECT i, '2026-12-01'::timestamptz + i * interval '1 day', 'v' || i FROM generate_series(1, 3) i;
CREATE TABLE cv2_then AS TABLE cv2;
SELECT clock_timestamp() AS cv0 \gset
UPDATE cv2 SET v = 'u' WHERE id = 2;
SELECT storage.convert_to_partitioned('cv2', 'ts', '1 month') AS moved;
INSERT INTO cv2 VALUES (1, '2027-01-15', 'dup');
SELECT count(*) AS differ FROM ((TABLE cv2_then EXCEPT ALL SELECT * FROM audit.table_at(NULL::cv2, :'cv0'))
                                UNION ALL (SELECT * FROM audit.table_at(NULL::cv2, :'cv0') EXCEPT ALL TABLE cv2_then)) d;

-- 11. An undo of a transaction over two tables sees a change nobody logged in either
CREATE TABLE ra (id int PRIMARY KEY, a text);
CREATE TABLE rb (id int PRIMARY KEY, b text);
SELECT audit.enable('ra'), audit.enable('rb');
INSERT INTO ra VALUES (1, 'a0');
INSERT INTO rb VALUES (1, 'b0');
BEGIN;
UPDATE rb SET b = 'b1';
UPDATE ra SET a = 'a1';
SELECT txid_current() AS rab \gset
COMMIT;
SET session_replication_role = replica;
UPDATE ra SET a = 'unlogged';
RESET session_replication_role;
SELECT table_name, key, conflict FROM audit.revert_transaction(:rab) ORDER BY table_name::text;
SELECT table_name, conflict IS NOT NULL AS refused FROM audit.revert_transaction(:rab, false) ORDER BY table_name::text;
SELECT a AS kept FROM ra;

-- 12. audit_reader reads audit.coverage; of the contexts, only what undo needs (not who)
CREATE ROLE regress_reader IN ROLE audit_reader;
SET ROLE regress_reader;
SELECT count(*) > 0 AS coverage_readable FROM audit.coverage;
SELECT pg_temp.err('SELECT db_user FROM audit._log_context LIMIT 1') AS who_not_readable;
SELECT pg_temp.err('SELECT nextval(''audit.log_id_seq'')') AS no_nextval;
SELECT pg_temp.err('DELETE FROM audit._log_row') AS no_delete;
RESET ROLE;
DROP ROLE regress_reader;

-- 13. Generated columns (a virtual one is NULL in images of transition tables) and types without
-- equality (json, point): the undo compares rows without false conflicts
CREATE TABLE vg (id int PRIMARY KEY, v text, j json, p point, g int GENERATED ALWAYS AS (id * 2) VIRTUAL);
SELECT audit.enable('vg');
INSERT INTO vg (id, v, j, p) VALUES (1, 'x', '{"a": 1}', '(1,2)');
SELECT max(id) AS vg_insert FROM audit.log WHERE table_oid = 'vg'::regclass \gset
SELECT action, conflict FROM audit.revert_statement(:vg_insert, false);
SELECT count(*) AS gone FROM vg;
INSERT INTO vg (id, v, j, p) VALUES (2, 'x', '{"a": 1}', '(1,2)');
UPDATE vg SET v = 'y', j = '{"a": 2}', p = '(3,4)';
SELECT max(id) AS vg_update FROM audit.log WHERE table_oid = 'vg'::regclass \gset
SELECT action, conflict FROM audit.revert_statement(:vg_update, false);
SELECT v, j::text, p::text, g FROM vg;

-- 14. The capture reads a TRUNCATE's rows as the extension's owner: never through a foreign
-- partition (the server's user mapping for that role would show another's data)
CREATE EXTENSION postgres_fdw;
DO $$ BEGIN
    EXECUTE format('CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %L, port %L, dbname %L)',
                   split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database());
END $$;
CREATE USER MAPPING FOR CURRENT_USER SERVER loop;
GRANT USAGE ON FOREIGN SERVER loop TO regress_mallory;
GRANT audit_reader TO regress_mallory;
CREATE TABLE secret (id int PRIMARY KEY, s text);
INSERT INTO secret VALUES (1, 'top secret');
SET ROLE regress_mallory;
CREATE TABLE m.bt (id int, s text) PARTITION BY LIST (id);
CREATE TABLE m.bt_0 PARTITION OF m.bt FOR VALUES IN (0);
SELECT audit.enable('m.bt');
CREATE FOREIGN TABLE m.bt_f PARTITION OF m.bt FOR VALUES IN (1) SERVER loop OPTIONS (schema_name 'public', table_name 'secret');
CREATE FUNCTION m.leak() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'rows of the secret in the log: %', (SELECT count(*) FROM audit._log_row WHERE old_row ->> 's' = 'top secret'); END $$;
CREATE TRIGGER zz_leak BEFORE TRUNCATE ON m.bt FOR EACH STATEMENT EXECUTE FUNCTION m.leak();
SELECT pg_temp.err('TRUNCATE m.bt') AS foreign_partition;
RESET ROLE;
SELECT audit.disable('m.bt');
DROP TABLE m.bt;
DROP TABLE secret;
DROP EXTENSION postgres_fdw CASCADE;
REVOKE audit_reader FROM regress_mallory;

-- The third attacker, on the fixes:
-- 15. The undo as an ordinary member of audit_reader (every helper it calls is granted)
CREATE ROLE regress_undoer IN ROLE audit_reader;
CREATE TABLE r1 (id int PRIMARY KEY, v text);
GRANT SELECT, INSERT, UPDATE, DELETE ON r1 TO regress_undoer;
SELECT audit.enable('r1');
INSERT INTO r1 VALUES (1, 'a');
SELECT txid::text::bigint AS r1tx FROM audit.log WHERE table_oid = 'r1'::regclass ORDER BY id DESC LIMIT 1 \gset
SET ROLE regress_undoer;
SELECT action, conflict FROM audit.revert_transaction(:r1tx);
SELECT action, conflict FROM audit.revert_transaction(:r1tx, false);
RESET ROLE;
SELECT count(*) AS undone FROM r1;

-- 16. A TRUNCATE of another audited table nested in a trigger does not end the check of the
-- outer one; a partition's trigger writing into its parent is caught; a subtransaction that
-- fails inside the trigger does not end it either
CREATE TABLE na (id int PRIMARY KEY, v text);
CREATE TABLE nc (id int PRIMARY KEY);
SELECT audit.enable('na'), audit.enable('nc');
INSERT INTO na VALUES (1, 'x');
INSERT INTO nc VALUES (1);
CREATE FUNCTION pg_temp.nested() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN TRUNCATE nc; UPDATE na SET v = 'changed'; INSERT INTO na VALUES (2, 'ghost'); RETURN NULL; END $$;
CREATE TRIGGER zz BEFORE TRUNCATE ON na FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.nested();
SELECT pg_temp.err('TRUNCATE na') AS nested_truncate;
DROP TRIGGER zz ON na;
CREATE FUNCTION pg_temp.failing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    BEGIN PERFORM 1 / 0; EXCEPTION WHEN division_by_zero THEN NULL; END;
    INSERT INTO na VALUES (3, 'ghost'); RETURN NULL;
END $$;
CREATE TRIGGER zz BEFORE TRUNCATE ON na FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.failing();
SELECT pg_temp.err('TRUNCATE na') AS after_a_failed_subtransaction;
DROP TRIGGER zz ON na;
SELECT id, v FROM na ORDER BY id;
CREATE TABLE np (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE np1 PARTITION OF np FOR VALUES FROM (0) TO (100);
CREATE TABLE np2 PARTITION OF np FOR VALUES FROM (100) TO (200);
INSERT INTO np VALUES (1, 'a'), (150, 'b');
SELECT audit.enable('np');
CREATE FUNCTION pg_temp.into_parent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO np VALUES (2, 'sneaky'); RETURN NULL; END $$;
CREATE TRIGGER zz BEFORE TRUNCATE ON np1 FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.into_parent();
SELECT pg_temp.err('TRUNCATE np') AS partition_trigger_writes_parent;
SELECT count(*) AS nothing_logged FROM audit.log WHERE table_oid = 'np'::regclass AND op = 'TRUNCATE';

-- 17. A write between the captures of one TRUNCATE (a harmless trigger) does not log rows twice
CREATE TABLE q (id int PRIMARY KEY) PARTITION BY LIST (id);
CREATE TABLE q1 PARTITION OF q FOR VALUES IN (1);
CREATE TABLE q2 PARTITION OF q FOR VALUES IN (2);
INSERT INTO q VALUES (1), (2);
SELECT audit.enable('q');
CREATE TABLE side (x int);
CREATE FUNCTION pg_temp.note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO side VALUES (1); RETURN NULL; END $$;
CREATE TRIGGER zz BEFORE TRUNCATE ON q1 FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.note();
TRUNCATE q1, q;
SELECT count(*) FILTER (WHERE pk IS NOT NULL) AS rows_logged, count(DISTINCT pk) AS distinct_rows
  FROM audit.log WHERE table_oid = 'q'::regclass AND op = 'TRUNCATE';

-- 18. A failed TRUNCATE caught in a subtransaction leaves no check behind
CREATE TABLE f1 (id int PRIMARY KEY);
CREATE TABLE f2 (id int PRIMARY KEY);
SELECT audit.enable('f1'), audit.enable('f2');
INSERT INTO f1 VALUES (1);
INSERT INTO f2 VALUES (1);
CREATE FUNCTION pg_temp.boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END $$;
CREATE TRIGGER zz BEFORE TRUNCATE ON f1 FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.boom();
DO $$ BEGIN
    BEGIN TRUNCATE f1; EXCEPTION WHEN OTHERS THEN NULL; END;
    INSERT INTO f1 VALUES (2);
    TRUNCATE f2;
END $$;
SELECT (SELECT count(*) FROM f1) AS f1_rows, (SELECT count(*) FROM f2) AS f2_rows;

-- 19. The writer's output settings do not change what is logged (extra_float_digits = -15
-- printed 2.71828 as 3, so an UPDATE to it from 3.14159265 looked like no change)
CREATE TABLE fl (id int PRIMARY KEY, x float8, d interval, b bytea);
SELECT audit.enable('fl');
INSERT INTO fl VALUES (1, 3.14159265, '1 day 2 hours', '\x0102');
BEGIN;
SET LOCAL extra_float_digits = -15;
SET LOCAL IntervalStyle = 'iso_8601';
SET LOCAL bytea_output = 'escape';
UPDATE fl SET x = 2.71828, d = '3 days', b = '\x0304';
COMMIT;
SELECT old_row, new_row FROM audit.log WHERE table_oid = 'fl'::regclass AND op = 'UPDATE';

-- 20. A json column (the log holds it as jsonb): no false conflict on undo
CREATE TABLE js (id int PRIMARY KEY, j json, n int);
SELECT audit.enable('js');
INSERT INTO js VALUES (1, '{"b": 1, "a": 2}', 0);
UPDATE js SET n = 1;
SELECT max(id) AS js_update FROM audit.log WHERE table_oid = 'js'::regclass \gset
SELECT action, conflict FROM audit.revert_statement(:js_update, false);
SELECT n FROM js;

-- 21. table_at after ALTER TABLE in the same session (a plan kept from before saw the old columns)
CREATE TABLE at_alter (id int PRIMARY KEY, a int);
SELECT audit.enable('at_alter');
INSERT INTO at_alter VALUES (1, 1);
SELECT count(*) AS before_alter FROM audit.table_at(NULL::at_alter, now());
ALTER TABLE at_alter ADD COLUMN b text;
SELECT count(*) AS after_add FROM audit.table_at(NULL::at_alter, now());
ALTER TABLE at_alter DROP COLUMN a;
SELECT * FROM audit.table_at(NULL::at_alter, now());

-- 22. A numeric key written back with another scale is one key (1.0 and 1.00 are equal)
CREATE TABLE at_num (id numeric PRIMARY KEY, v text);
SELECT audit.enable('at_num');
INSERT INTO at_num VALUES (1.0, 'a');
SELECT clock_timestamp() AS n1 \gset
UPDATE at_num SET id = 1.00, v = 'b' WHERE id = 1;
UPDATE at_num SET v = 'c' WHERE id = 1;
SELECT id::text, v FROM audit.table_at(NULL::at_num, :'n1');

-- 23. A key column renamed since: 22023, not rows lost
CREATE TABLE at_ren (id int PRIMARY KEY, v text);
SELECT audit.enable('at_ren');
INSERT INTO at_ren SELECT g, 'v' || g FROM generate_series(1, 5) AS g;
SELECT clock_timestamp() AS r0 \gset
UPDATE at_ren SET v = 'changed' WHERE id = 2;
ALTER TABLE at_ren RENAME COLUMN id TO ident;
UPDATE at_ren SET v = 'again' WHERE ident = 3;
SELECT regexp_replace(pg_temp.err(format('SELECT count(*) FROM audit.table_at(NULL::at_ren, %L)', :'r0')), 'answer for .*$', 'answer for <moment>') AS key_renamed;
SELECT count(*) AS after_the_rename FROM audit.table_at(NULL::at_ren, now());

-- 24. The writer's TimeZone and DateStyle do not change what is logged: a timestamptz key is one
-- key whoever writes it; a daterange written in DateStyle SQL, DMY reads back the same
SET TimeZone = 'UTC';
CREATE TABLE at_tz (id timestamptz PRIMARY KEY, v text, period daterange);
SELECT audit.enable('at_tz');
SELECT clock_timestamp() AS z0 \gset
INSERT INTO at_tz VALUES ('2020-01-01 00:00+00', 'new', '[2020-02-01,2020-03-05)');
SELECT clock_timestamp() AS z1 \gset
SET TimeZone = 'Europe/Paris';
SET DateStyle = 'SQL, DMY';
UPDATE at_tz SET v = 'paris', period = '[2021-01-01,2021-01-02)';
RESET DateStyle;
SET TimeZone = 'UTC';
UPDATE at_tz SET v = 'utc';
SELECT count(*) AS rows_before_insert FROM audit.table_at(NULL::at_tz, :'z0');
SELECT id, v, period FROM audit.table_at(NULL::at_tz, :'z1');
SELECT count(DISTINCT pk) AS logged_keys FROM audit.log WHERE table_oid = 'at_tz'::regclass;

-- 25. A key whose type's input function is not immutable (date): the keys touched since are a
-- constant of the key's type (made when the query is parsed), not text cast for every row
CREATE TABLE at_day (id date PRIMARY KEY, v int);
SELECT audit.enable('at_day');
INSERT INTO at_day SELECT date '2000-01-01' + g, 0 FROM generate_series(1, 3000) AS g;
SELECT clock_timestamp() AS d0 \gset
UPDATE at_day SET v = 1 WHERE extract(day FROM id) = 1;
DELETE FROM at_day WHERE extract(day FROM id) = 2;
SELECT count(*) AS rows, count(*) FILTER (WHERE v = 1) AS changed_since FROM audit.table_at(NULL::at_day, :'d0');

-- 26. table_at's new surface as ordinary LOGIN roles: without audit_reader neither table_at nor
-- its helpers run (42501); a reader with row security sees only its own live rows (the log's rows
-- are the log's, which it may read whole); the memory setting takes no SQL and no size beyond 2GB
CREATE ROLE regress_at_login LOGIN;
CREATE ROLE regress_at_rls LOGIN IN ROLE audit_reader;
CREATE TABLE at_rls (id int PRIMARY KEY, owner name, v text);
INSERT INTO at_rls VALUES (1, 'regress_at_rls', 'mine'), (2, 'someone', 'theirs'), (3, 'someone', 'theirs too');
SELECT audit.enable('at_rls');
ALTER TABLE at_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON at_rls USING (owner = current_user);
GRANT SELECT ON at_rls TO regress_at_login, regress_at_rls;
SELECT clock_timestamp() AS l0 \gset
UPDATE at_rls SET v = 'theirs, edited' WHERE id = 3;
SET ROLE regress_at_login;
SELECT pg_temp.err('SELECT count(*) FROM audit.table_at(NULL::at_rls, now())') AS not_a_reader,
       pg_temp.err('SELECT audit._image_columns(''at_rls'', ''x'')') AS image_columns,
       pg_temp.err('SELECT audit._hashable_key(''at_rls'', ''id'')') AS hashable_key,
       pg_temp.err('SELECT audit._table_at_work_mem()') AS work_mem_helper;
RESET ROLE;
SET ROLE regress_at_rls;
SELECT id, v FROM audit.table_at(NULL::at_rls, :'l0') ORDER BY id;
SELECT pg_temp.err('SET pg_storage_ext.table_at_work_mem = ''64MB''''; DROP TABLE at_rls; --''') AS injected,
       pg_temp.err('SET pg_storage_ext.table_at_work_mem = ''3GB''') AS too_big;
SET pg_storage_ext.table_at_work_mem = '1GB';
SELECT audit._table_at_work_mem() AS kb, count(*) AS rows FROM audit.table_at(NULL::at_rls, :'l0');
RESET pg_storage_ext.table_at_work_mem;
RESET ROLE;
SELECT count(*) AS at_rls_still_there FROM at_rls;

SELECT audit.disable(t) FROM unnest(ARRAY['accounts', 'events', 'm.status', 'sneaky', 'pt', 'ip', 'cv2', 'ra', 'rb', 'vg',
                                          'r1', 'na', 'nc', 'np', 'q', 'f1', 'f2', 'fl', 'js', 'at_alter', 'at_num', 'at_ren', 'at_tz', 'at_day', 'at_rls']::regclass[]) AS t;
DROP TABLE accounts, events, sneaky, pt, ip, ic, cv2, cv2_then, ra, rb, vg, r1, na, nc, np, q, side, f1, f2, fl, js, at_alter, at_num, at_ren, at_tz, at_day, at_rls;
DROP ROLE regress_undoer;
DROP SCHEMA m CASCADE;
DROP ROLE regress_mallory, regress_alice, regress_at_login, regress_at_rls;
