-- Audit: putting rows back (audit.restore_row) and undoing a transaction or a statement
-- (audit.revert_transaction, audit.revert_statement): round trips back to a snapshot, key
-- changes, dry runs, conflicts refused with nothing applied, the caller's privileges and row
-- security, the log of the undo itself. Leaves the database as it found it.
SET TimeZone = 'UTC';
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO PUBLIC;

CREATE TABLE posts (id int PRIMARY KEY, title text NOT NULL, secret text, n int NOT NULL DEFAULT 0);
INSERT INTO posts VALUES (1, 'one', 's1', 0), (2, 'two', 's2', 0), (3, 'three', 's3', 0);
SELECT audit.enable('posts', ARRAY['secret']);
CREATE TABLE snap AS SELECT id, title, n FROM posts;
SELECT clock_timestamp() AS t0 \gset

-- restore_row: an UPDATE, a DELETE and an INSERT put back one row at a time
UPDATE posts SET title = 'one, vandalised', n = 5 WHERE id = 1;
DELETE FROM posts WHERE id = 2;
INSERT INTO posts VALUES (4, 'four', 's4', 0);
SELECT audit.restore_row('posts', '{"id": 1}', :'t0') AS r1,
       audit.restore_row('posts', '{"id": 2}', :'t0') AS r2,
       audit.restore_row('posts', '{"id": 4}', :'t0') AS r4,
       audit.restore_row('posts', '{"id": 3}', :'t0') AS r3;
SELECT count(*) AS differ FROM ((TABLE snap EXCEPT SELECT id, title, n FROM posts)
                                UNION ALL (SELECT id, title, n FROM posts EXCEPT TABLE snap)) d;
-- the excluded column: kept on the updated row, the default on the row put back
SELECT id, secret FROM posts ORDER BY id;
-- logged as ordinary changes, by audit.restore_row
SELECT op, pk, application_name FROM audit.log WHERE table_name = 'posts' AND application_name = 'audit.restore_row' ORDER BY id;

-- revert_transaction: a transaction with an update, a key change, a delete, an insert and a
-- second change of one row; the dry run shows, the real run puts the table back
TRUNCATE snap;
INSERT INTO snap SELECT id, title, n FROM posts;
BEGIN;
UPDATE posts SET n = n + 10 WHERE id = 1;
UPDATE posts SET id = 30 WHERE id = 3;
DELETE FROM posts WHERE id = 2;
INSERT INTO posts VALUES (5, 'five', NULL, 0);
UPDATE posts SET title = 'one, twice' WHERE id = 1;
COMMIT;
SELECT txid::text::bigint AS tx FROM audit.log WHERE table_name = 'posts' ORDER BY id DESC LIMIT 1 \gset
SELECT * FROM audit.revert_transaction(:tx);
SELECT count(*) AS unchanged_by_dry_run FROM posts WHERE id IN (5, 30);
SELECT count(*) AS applied FROM audit.revert_transaction(:tx, dry_run => false);
SELECT count(*) AS differ FROM ((TABLE snap EXCEPT SELECT id, title, n FROM posts)
                                UNION ALL (SELECT id, title, n FROM posts EXCEPT TABLE snap)) d;
SELECT op, pk, old_pk FROM audit.log WHERE application_name = 'audit.revert_transaction' AND table_oid = 'posts'::regclass ORDER BY id;

-- conflicts: a row changed again by a later transaction; a row changed without being logged
UPDATE posts SET title = 'first' WHERE id = 1;
SELECT txid::text::bigint AS tx1 FROM audit.log WHERE table_name = 'posts' ORDER BY id DESC LIMIT 1 \gset
UPDATE posts SET title = 'second' WHERE id = 1;
SELECT table_name, key, action, conflict LIKE 'changed again by transaction %' AS changed_again
  FROM audit.revert_transaction(:tx1, dry_run => false);
SELECT title AS nothing_applied FROM posts WHERE id = 1;
UPDATE posts SET title = 'logged' WHERE id = 3;
SELECT txid::text::bigint AS tx2 FROM audit.log WHERE table_name = 'posts' ORDER BY id DESC LIMIT 1 \gset
SET session_replication_role = replica;   -- no triggers: a change the log does not see
UPDATE posts SET title = 'unlogged' WHERE id = 3;
RESET session_replication_role;
SELECT key, conflict FROM audit.revert_transaction(:tx2, dry_run => false);
SELECT title AS still_unlogged FROM posts WHERE id = 3;

-- revert_statement: by the id of any row the statement logged
UPDATE posts SET n = n + 1;
SELECT max(id) AS last_row FROM audit.log WHERE table_name = 'posts' \gset
SELECT count(*) AS undone FROM audit.revert_statement(:last_row, false);
SELECT sum(n) AS n_back FROM posts;
SELECT pg_temp.err('SELECT * FROM audit.revert_statement(-1)') AS no_such_statement;

-- a TRUNCATE is undone: its rows, logged, come back (by the id of its statement row or of a row)
TRUNCATE snap;
INSERT INTO snap SELECT id, title, n FROM posts;
TRUNCATE posts;
SELECT max(id) AS truncated FROM audit.log WHERE table_name = 'posts' AND op = 'TRUNCATE' AND pk IS NULL \gset
SELECT action, count(*) FROM audit.revert_statement(:truncated) GROUP BY action;
SELECT count(*) AS undone FROM audit.revert_statement(:truncated, false);
SELECT count(*) AS differ FROM ((TABLE snap EXCEPT SELECT id, title, n FROM posts)
                                UNION ALL (SELECT id, title, n FROM posts EXCEPT TABLE snap)) d;

-- who may: audit_reader to read the log; the statements it runs need the caller's privileges,
-- and row security hides other tenants' rows
CREATE ROLE regress_undo_reader IN ROLE audit_reader;
CREATE ROLE regress_undo_nobody;
GRANT SELECT ON posts TO regress_undo_reader, regress_undo_nobody;
SET ROLE regress_undo_nobody;
SELECT pg_temp.err(format('SELECT audit.restore_row(''posts'', ''{"id": 1}'', %L)', :'t0')) AS not_a_reader;
SELECT pg_temp.err(format('SELECT * FROM audit.revert_transaction(%s)', :tx)) AS not_a_reader_revert;
RESET ROLE;
SET ROLE regress_undo_reader;
SELECT pg_temp.err(format('SELECT audit.restore_row(''posts'', ''{"id": 1}'', %L)', :'t0')) AS no_update_privilege;
RESET ROLE;

CREATE TABLE notes (id int PRIMARY KEY, tenant int NOT NULL, body text);
INSERT INTO notes VALUES (1, 1, 'alice''s'), (2, 2, 'bob''s');
SELECT audit.enable('notes');
SELECT clock_timestamp() AS n0 \gset
UPDATE notes SET body = 'changed';
DELETE FROM notes WHERE id = 2;
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON notes USING (tenant = 1) WITH CHECK (tenant = 1);
CREATE ROLE regress_undo_alice IN ROLE audit_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO regress_undo_alice;
SET ROLE regress_undo_alice;
SELECT audit.restore_row('notes', '{"id": 1}', :'n0') AS own_row;
SELECT pg_temp.err(format('SELECT audit.restore_row(''notes'', ''{"id": 2}'', %L)', :'n0')) AS other_tenants_row;
RESET ROLE;
SELECT id, tenant, body FROM notes ORDER BY id;

SELECT audit.disable('posts');
SELECT audit.disable('notes');
DROP TABLE posts, snap, notes;
DROP ROLE regress_undo_reader, regress_undo_nobody, regress_undo_alice;
