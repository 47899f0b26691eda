-- Audit: enable/disable/tracked, the log's content for every operation, excluded columns,
-- composite and missing keys, TRUNCATE, partitioned tables, hostile names, history/row_at,
-- retention, privileges. Leaves the database as it found it (extension re-created at the end).
SET TimeZone = 'UTC';
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.plan_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || q; END $$;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text; h text;
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || SQLERRM || CASE WHEN d <> '' THEN ' | detail: ' || d ELSE '' END
                                       || CASE WHEN h <> '' THEN ' | hint: ' || h ELSE '' END;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO PUBLIC;
-- the log without the columns that change from run to run
CREATE VIEW pg_temp.log AS
SELECT id - (SELECT coalesce(min(id), 0) FROM audit.log) + 1 AS n, table_name, op, pk, old_pk,
       old_row, new_row, changed_columns, role_name, db_user = session_user AS db_user_ok
  FROM audit.log;

CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, password_hash text, login_count int DEFAULT 0);
-- errors first: nothing is created by a failed call
SELECT pg_temp.err($$SELECT audit.enable('users', ARRAY['password_hash', 'nope', 'Name'])$$);
SELECT pg_temp.err($$SELECT audit.enable('users', ARRAY[NULL])$$);
CREATE VIEW users_v AS SELECT * FROM users;
SELECT pg_temp.err($$SELECT audit.enable('users_v')$$);
SELECT pg_temp.err($$SELECT audit.enable('audit._log_row')$$);
SELECT pg_temp.err($$SELECT audit.enable(NULL)$$);
SELECT count(*) AS tracked, (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'users'::regclass) AS triggers
  FROM audit.tracked;

-- enable, then again with other options: one configuration, five triggers, enabled_at kept
SELECT audit.enable('users');
SELECT enabled_at AS first_enabled FROM audit.tracked \gset
SELECT audit.enable('users', ARRAY['password_hash', 'password_hash'], true);
SELECT table_name, exclude_columns, capture_query, enabled_at = :'first_enabled' AS enabled_at_kept
  FROM audit.tracked ORDER BY table_name::text;
SELECT tgname, pg_get_triggerdef(oid) LIKE '%FOR EACH STATEMENT%' AS per_statement
  FROM pg_trigger WHERE tgrelid = 'users'::regclass ORDER BY tgname;

-- every operation; the excluded column is in no image and no changed_columns
INSERT INTO users (id, name, password_hash) VALUES (1, 'ann', 'h1'), (2, 'bob', 'h2'), (3, 'cy', 'h3');
UPDATE users SET login_count = login_count + 1 WHERE id <= 2;
UPDATE users SET password_hash = 'changed';                 -- only an excluded column: no rows
UPDATE users SET name = name;                               -- nothing changed: no rows
UPDATE users SET id = 30, name = 'cyd' WHERE id = 3;        -- key change
DELETE FROM users WHERE id = 1;
UPDATE users SET id = id WHERE false;                       -- no row: no log row
SELECT * FROM pg_temp.log ORDER BY n;
SELECT count(*) FILTER (WHERE query LIKE 'INSERT INTO users%') AS insert_query_captured,
       count(*) FILTER (WHERE application_name = current_setting('application_name')) AS with_app,
       count(DISTINCT txid) AS transactions, bool_and(ts <= now()) AS ts_ok,
       bool_and(client_addr IS NOT DISTINCT FROM inet_client_addr()) AS client_addr_ok
  FROM audit.log;

-- history and row_at
SELECT op, pk, old_pk, new_row FROM audit.history('users', '{"id": 30}');
SELECT count(*) AS history_of_3 FROM audit.history('users', '{"id": 3}');
SELECT audit.row_at('users', '{"id": 1}', now()) AS deleted_row,
       audit.row_at('users', '{"id": 2}', now()) AS current_row,
       audit.row_at('users', '{"id": 3}', now()) AS old_key;
-- before audit.enable the log cannot answer: 22023 naming the moment it can answer from
SELECT pg_temp.err($$SELECT audit.row_at('users', '{"id": 2}', now() - interval '1 day')$$)
       LIKE '22023: the audit log of public.users cannot answer for % | detail: The earliest moment it answers for is % (when audit.enable began capturing the table).%' AS before_enable;

-- rollback leaves nothing; a rolled-back savepoint leaves nothing of its own
SELECT count(*) AS before FROM audit.log \gset
BEGIN;
INSERT INTO users (id, name) VALUES (100, 'gone');
ROLLBACK;
BEGIN;
INSERT INTO users (id, name) VALUES (101, 'kept');
SAVEPOINT s;
UPDATE users SET name = 'gone' WHERE id = 101;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT (SELECT count(*) FROM audit.log) - :before AS rows_added, op, new_row ->> 'name' AS name
  FROM audit.log WHERE pk IN ('{"id": 100}', '{"id": 101}') ORDER BY id;

-- TRUNCATE: one row, and row_at knows the rows are gone
TRUNCATE users;
SELECT op, pk, old_row, new_row FROM audit.log WHERE op = 'TRUNCATE';
SELECT audit.row_at('users', '{"id": 2}', now()) AS after_truncate;

-- bulk statements: INSERT ... SELECT and COPY, one log row per row
INSERT INTO users (id, name) SELECT g, 'user ' || g FROM generate_series(1000, 1999) g;
COPY users (id, name) FROM stdin;
5000	copied one
5001	copied two
\.
UPDATE users SET login_count = 7 WHERE id BETWEEN 1000 AND 1499;
DELETE FROM users WHERE id >= 1900;
SELECT op, count(*), count(DISTINCT pk) AS keys FROM audit.log WHERE (pk ->> 'id')::int >= 1000
 GROUP BY op ORDER BY op;
SELECT count(*) AS update_pairs_match FROM audit.log
 WHERE op = 'UPDATE' AND (pk ->> 'id')::int >= 1000 AND old_row ->> 'id' = new_row ->> 'id'
   AND new_row ->> 'login_count' = '7' AND changed_columns = '{login_count}';

-- an UPDATE stores the changed columns only (audit._delta); they compare as jsonb does: numbers
-- by value, containers deeply, a JSON null is a value, a missing member is not
SELECT audit._delta(
    '{"a": 1, "b": "x", "c": {"d": [1, 2]}, "e": null, "f": 1.0, "i": [1]}',
    '{"a": 1.00, "b": "y", "c": {"d": [1, 2]}, "e": null, "f": 2, "g": 1, "i": [1, 2]}') AS changed,
       audit._delta('{"a": 1}', '{"a": 1}') AS unchanged, audit._delta('[1]', '[2]') AS not_objects;
SELECT count(*) AS update_rows, count(*) FILTER (WHERE r.new_row = '{"login_count": 7}') AS only_changed
  FROM audit._log_row r JOIN audit._log_statement s ON s.id = r.statement_id WHERE s.op = 'UPDATE'
   AND (r.old_row ->> 'id')::int >= 1000;
CREATE TABLE settings (id int PRIMARY KEY, prefs jsonb, score numeric, note text);
SELECT audit.enable('settings');
INSERT INTO settings VALUES (1, '{"theme": "dark", "n": {"push": true}}', 1.5, NULL);
UPDATE settings SET prefs = '{"n": {"push": true}, "theme": "dark"}', score = 1.50;   -- same values: no row
UPDATE settings SET prefs = jsonb_set(prefs, '{n,push}', 'false'), note = 'x';
SELECT op, changed_columns FROM pg_temp.log WHERE table_name = 'settings' ORDER BY n;
SELECT audit.disable('settings');
DROP TABLE settings;

-- composite key, no key
CREATE TABLE user_favorites (user_id int, article_id int, note text, PRIMARY KEY (user_id, article_id));
CREATE TABLE article_views (article_id int, viewed_at timestamptz);
SELECT audit.enable('user_favorites'), audit.enable('article_views');
INSERT INTO user_favorites VALUES (1, 10, 'a'), (2, 20, 'b');
UPDATE user_favorites SET note = 'c' WHERE user_id = 2;
INSERT INTO article_views VALUES (10, '2026-01-01'), (10, '2026-01-01');
DELETE FROM article_views;
SELECT table_name, op, pk, old_row, new_row, changed_columns FROM pg_temp.log
 WHERE table_name IN ('user_favorites', 'article_views') ORDER BY n;
SELECT op, pk FROM audit.history('user_favorites', '{"user_id": 2, "article_id": 20}') ORDER BY id;

-- partitioned: rows through the parent and into a partition directly are logged once, under
-- the parent; partitions created or attached later are covered; TRUNCATE is logged once
CREATE TABLE comments (id int, posted date, body text, PRIMARY KEY (id, posted)) PARTITION BY RANGE (posted);
CREATE TABLE comments_2025 PARTITION OF comments FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
SELECT audit.enable('comments', ARRAY['body']);
CREATE TABLE comments_2026 PARTITION OF comments FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')
    PARTITION BY RANGE (posted);
CREATE TABLE comments_2026_h1 PARTITION OF comments_2026 FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE comments_2026_h2 (LIKE comments);
ALTER TABLE comments_2026 ATTACH PARTITION comments_2026_h2 FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
SELECT tgrelid::regclass AS partition, count(*) AS capture_triggers FROM pg_trigger
 WHERE tgfoid = 'audit._capture()'::regprocedure AND tgrelid::regclass::text LIKE 'comments%'
 GROUP BY 1 ORDER BY 1::text;
INSERT INTO comments VALUES (1, '2025-05-01', 'x'), (2, '2026-02-01', 'y'), (3, '2026-08-01', 'z');
INSERT INTO comments_2026_h2 VALUES (4, '2026-09-01', 'direct');
UPDATE comments SET posted = '2026-03-01' WHERE id = 1;      -- moves between partitions
UPDATE comments_2026_h1 SET body = 'excluded only';
DELETE FROM comments_2025;
TRUNCATE comments;
TRUNCATE comments_2026_h1;                                     -- one partition: says which
SELECT table_name, op, pk, old_row, new_row, changed_columns FROM pg_temp.log
 WHERE table_name LIKE 'comments%' ORDER BY n;
-- a detached partition is no longer logged
CREATE TABLE comments_old PARTITION OF comments FOR VALUES FROM ('2000-01-01') TO ('2001-01-01');
ALTER TABLE comments DETACH PARTITION comments_old;
INSERT INTO comments_old VALUES (9, '2000-05-05', 'detached');
SELECT count(*) AS detached_rows_logged FROM audit.log WHERE pk ->> 'id' = '9';

-- hostile names: quotes, spaces, dots, unicode
CREATE SCHEMA "we.ird ""sch""";
CREATE TABLE "we.ird ""sch"""."Tab le.""x"" ü" ("Id ""1""" int PRIMARY KEY, "ñ.col" text, "sec ret" text);
SELECT audit.enable('"we.ird ""sch"""."Tab le.""x"" ü"', ARRAY['sec ret']);
INSERT INTO "we.ird ""sch"""."Tab le.""x"" ü" VALUES (1, 'a', 's');
UPDATE "we.ird ""sch"""."Tab le.""x"" ü" SET "ñ.col" = 'b', "sec ret" = 't';
SELECT schema_name, table_name, op, pk, old_row, new_row, changed_columns FROM audit.log
 WHERE schema_name = 'we.ird "sch"' ORDER BY id;
SELECT table_name FROM audit.tracked WHERE table_name::text LIKE '%Tab%';
SELECT pg_temp.err($$SELECT audit.enable('"we.ird ""sch"""."Tab le.""x"" ü"', ARRAY['sec  ret'])$$);

-- privileges: a writer records its own role; a SECURITY DEFINER function records its owner;
-- nobody but the extension owner edits the log; only the table owner stops capture
CREATE ROLE regress_audit_owner;
CREATE ROLE regress_audit_writer;
CREATE ROLE regress_audit_definer;
CREATE ROLE regress_audit_reader_member IN ROLE audit_reader;
CREATE TABLE articles (id int PRIMARY KEY, title text);
ALTER TABLE articles OWNER TO regress_audit_owner;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON articles TO regress_audit_writer, regress_audit_definer;
SET ROLE regress_audit_writer;
SELECT pg_temp.err($$SELECT audit.enable('articles')$$);
RESET ROLE;
SET ROLE regress_audit_owner;
SELECT audit.enable('articles');
RESET ROLE;
CREATE FUNCTION public.retitle(i int) RETURNS void LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog AS $$ UPDATE public.articles SET title = 'by definer' WHERE id = i $$;
ALTER FUNCTION public.retitle(int) OWNER TO regress_audit_definer;
SET ROLE regress_audit_writer;
INSERT INTO articles VALUES (1, 'hello');
SELECT public.retitle(1);
SELECT pg_temp.err($$SELECT count(*) FROM audit.log$$) AS writer_reads_log;
SELECT pg_temp.err($$UPDATE audit.log SET role_name = 'nobody'$$) AS upd;
SELECT pg_temp.err($$DELETE FROM audit.log$$) AS del;
SELECT pg_temp.err($$TRUNCATE audit.log$$) AS trunc;
SELECT pg_temp.err($$INSERT INTO audit.log (ts, txid, table_oid, schema_name, table_name, op, db_user, role_name) VALUES (now(), '1', 1, 'x', 'y', 'INSERT', 'a', 'b')$$) AS ins;
SELECT pg_temp.err($$SELECT audit.disable('articles')$$) AS disable;
SELECT pg_temp.err($$ALTER TABLE articles DISABLE TRIGGER audit_capture_update$$) AS alter_trigger;
SELECT pg_temp.err($$SELECT audit.set_retention('1 year')$$) AS retention;
SELECT pg_temp.err($$SELECT audit._sync_partitions('articles')$$) AS internal;
-- reading history without audit_reader: the error names the role to grant, not an internal object
SELECT pg_temp.err($$SELECT * FROM audit.history('articles', '{"id": 1}')$$) AS history_not_reader;
SELECT pg_temp.err($$SELECT audit.row_at('articles', '{"id": 1}', now())$$) AS row_at_not_reader;
RESET ROLE;
SET ROLE regress_audit_reader_member;
SELECT op, role_name, new_row ->> 'title' AS title FROM audit.log WHERE table_name = 'articles' ORDER BY id;
SELECT count(*) AS reader_history, audit.row_at('articles', '{"id": 1}', now()) ->> 'title' AS reader_row_at
  FROM audit.history('articles', '{"id": 1}');
SELECT count(*) AS reader_sees_tracked FROM audit.tracked WHERE table_name = 'articles'::regclass;
SELECT pg_temp.err($$DELETE FROM audit.log$$) AS reader_del;
RESET ROLE;
-- the owner stops capture; history stays, new changes are not logged
SET ROLE regress_audit_owner;
SELECT audit.disable('articles');
SELECT audit.disable('articles');
INSERT INTO articles VALUES (2, 'not logged');
RESET ROLE;
SELECT count(*) AS articles_logged,
       (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'articles'::regclass) AS triggers_left,
       (SELECT count(*) FROM audit.tracked WHERE table_name::text = 'articles') AS tracked
  FROM audit.log WHERE table_name = 'articles';

-- retention: applied by storage.run_maintenance; whole months only
SELECT pg_temp.err($$SELECT audit.set_retention('1 day')$$);
SELECT audit.set_retention('12 months');
SELECT parent, retention FROM storage.partition_config WHERE parent::text LIKE 'audit.%' ORDER BY 1;
-- an old month (written here by the extension owner) goes at the next maintenance
INSERT INTO audit._log_statement (id, ts, txid, table_oid, op, context)
VALUES (nextval('audit.log_id_seq'), '2020-01-15', '1', 1, 'INSERT',
        audit._context('public', 'old', 'x', 'x', NULL, NULL, '{}', NULL));
INSERT INTO audit._log_row (id, statement_id, ts, new_row)
VALUES (nextval('audit.log_id_seq'), currval('audit.log_id_seq') - 1, '2020-01-15', '{"id": 1}');
SELECT count(*) AS old_rows FROM audit.log WHERE ts < '2021-01-01';
SELECT parent FROM storage.run_maintenance();
SELECT count(*) AS old_rows_after FROM audit.log WHERE ts < '2021-01-01';
SELECT count(*) AS old_partitions FROM storage.partitions('audit._log_statement') WHERE lower_bound < '2021-01-01';
SELECT count(*) AS old_partitions FROM storage.partitions('audit._log_row') WHERE lower_bound < '2021-01-01';
-- every partition of the log, old and new, has its indexes (statements: id, table, context,
-- transaction; rows: key, old key, statement, (ts, id))
SELECT h.inhparent::regclass AS log,
       bool_and((SELECT count(*) FROM pg_index x WHERE x.indrelid = h.inhrelid)
                = 4) AS partitions_indexed
  FROM pg_inherits h WHERE h.inhparent IN ('audit._log_statement'::regclass, 'audit._log_row'::regclass)
 GROUP BY 1 ORDER BY 1;
SELECT audit.set_retention(NULL);
SELECT parent, retention FROM storage.partition_config WHERE parent::text LIKE 'audit.%' ORDER BY 1;
-- each change of what the trail keeps is itself a DDL row of audit.log
SELECT op, table_name, new_row->>'command_tag' AS command_tag, new_row->>'retention' AS retention,
       new_row->>'previous' AS previous
  FROM audit.log WHERE op = 'DDL' AND table_oid = 'audit.log'::regclass ORDER BY id;

-- a dropped table leaves the configuration, its history stays
DROP TABLE article_views;
SELECT count(*) AS still_tracked FROM audit.tracked WHERE table_name::text = 'article_views';
SELECT count(*) AS history_kept FROM audit.log WHERE table_name = 'article_views';

-- moves are not changes: rows the extension relocates out of a default partition (maintenance,
-- ensure_partition) leave the log as it was, and row_at(now()) is the live row
CREATE TABLE pa (id int, ts timestamptz, v text, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts);
SELECT storage.create_partitions('pa', '1 day', 1) > 0 AS registered;
SELECT audit.enable('pa');
INSERT INTO pa VALUES (1, now() + interval '10 days', 'far'), (2, now() + interval '20 days', 'farther');
UPDATE pa SET v = 'far!' WHERE id = 1;
SELECT tableoid::regclass AS in_default FROM pa ORDER BY id;
SELECT moved_from_default FROM storage.run_maintenance('pa');
SELECT storage.ensure_partition('pa', (now() + interval '20 days')::text) IS NOT NULL AS ensured;
SELECT count(*) AS rows_left_in_default FROM pa_default;
SELECT l.pk->>'id' AS key, l.op FROM audit.log l WHERE l.table_name = 'pa' ORDER BY l.id;
SELECT p.id, audit.row_at('pa', jsonb_build_object('id', p.id, 'ts', p.ts), now()) = to_jsonb(p) AS row_at_is_live
  FROM pa p ORDER BY p.id;
SELECT audit.disable('pa');
DELETE FROM storage.partition_config WHERE parent = 'pa'::regclass;
DROP TABLE pa;

-- tampering is recorded: DDL that changes an audited table's name, columns or capture triggers
-- writes a DDL row (command tag in new_row, the statement, the role); audit.coverage shows what
-- is wrong; the extension's own trigger work (enable, partition sync) is not logged as tampering
CREATE TABLE tam (id int PRIMARY KEY, v text);
SELECT audit.enable('tam');
CREATE VIEW pg_temp.cov AS SELECT capture_ok, problem FROM audit.coverage WHERE table_name::text IN ('tam', 'tam2');
SELECT * FROM pg_temp.cov;
ALTER TABLE tam DISABLE TRIGGER audit_capture_insert;
SELECT * FROM pg_temp.cov;
ALTER TABLE tam ENABLE TRIGGER audit_capture_insert;
DROP TRIGGER audit_capture_delete ON tam;
SELECT * FROM pg_temp.cov;
CREATE OR REPLACE TRIGGER audit_capture_update AFTER UPDATE ON tam
    REFERENCING OLD TABLE AS pg_storage_ext_old NEW TABLE AS pg_storage_ext_new
    FOR EACH STATEMENT EXECUTE FUNCTION audit._capture('table', 'false', 'v');
SELECT * FROM pg_temp.cov;
ALTER TABLE tam ADD COLUMN w int;
ALTER TABLE tam RENAME COLUMN w TO w2;
ALTER TABLE tam RENAME TO tam2;
CREATE INDEX tam2_v ON tam2 (v);
ALTER TABLE tam2 DROP COLUMN w2;
SELECT audit.enable('tam2');
SELECT * FROM pg_temp.cov;
SELECT audit.disable('tam2');
SELECT l.op, l.table_name, l.new_row->>'command_tag' AS command_tag, l.query
  FROM audit.log l WHERE l.table_oid = 'tam2'::regclass AND l.op = 'DDL' ORDER BY l.id;
CREATE TABLE tam3 (id int PRIMARY KEY);
SELECT audit.enable('tam3');
SELECT 'tam3'::regclass::oid AS tam3_oid \gset
DROP TABLE tam3;
SELECT l.op, l.table_name, l.new_row->>'command_tag' AS command_tag FROM audit.log l WHERE l.table_oid = :tam3_oid;
SELECT count(*) AS tam_tracked FROM audit.tracked WHERE table_name::oid = :tam3_oid;
DROP TABLE tam2;

-- the lean log: a statement's constants are one row, its context (table names, columns, users,
-- application, address) is stored once for every statement of the same session and table; an
-- UPDATE keeps the old image and the changed columns only; history is found by the key hash
CREATE TABLE lean (id int PRIMARY KEY, title text, body text, n int);
SELECT audit.enable('lean');
INSERT INTO lean SELECT i, 't' || i, repeat('b', 50), 0 FROM generate_series(1, 20) i;
UPDATE lean SET n = n + 1 WHERE id <= 5;
UPDATE lean SET n = n + 1 WHERE id = 1;
UPDATE lean SET n = n WHERE id = 2;   -- nothing changed: no row, no statement
SET application_name = 'lean-app';
DELETE FROM lean WHERE id = 20;
RESET application_name;
SELECT s.op, count(DISTINCT s.id) AS statements, count(r.id) AS row_rows, count(DISTINCT s.context) AS contexts,
       min(r.new_row::text) AS a_new_row
  FROM audit._log_statement s LEFT JOIN audit._log_row r ON r.statement_id = s.id
 WHERE s.table_oid = 'lean'::regclass GROUP BY s.op ORDER BY s.op;
SELECT count(*) AS lean_contexts, array_agg(DISTINCT application_name) AS apps
  FROM audit._log_context WHERE table_name = 'lean';
SELECT op, pk, changed_columns, new_row ->> 'n' AS n FROM audit.history('lean', '{"id": 1}');
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE line ~ 'Index Scan|Bitmap Index Scan') > 0 AS history_by_index,
       count(*) FILTER (WHERE line ~ '_key_idx') > 0 AS key_hash_index
  FROM pg_temp.plan_lines($$SELECT * FROM audit._log_rows l
                             WHERE l.key_hash = jsonb_hash_extended('{"id": 1}'::jsonb, 0)$$) AS line;
RESET enable_seqscan;
-- a context written by a rolled-back statement is not trusted afterwards
BEGIN;
SET LOCAL application_name = 'rolled-back';
INSERT INTO lean VALUES (100, 'x', 'y', 0);
ROLLBACK;
SET application_name = 'rolled-back';
INSERT INTO lean VALUES (101, 'x', 'y', 0);
RESET application_name;
SELECT op, pk, application_name FROM audit.log WHERE table_name = 'lean' AND (pk ->> 'id')::int > 100;
SELECT audit.disable('lean');
DROP TABLE lean;

-- clean up: roles and the extension's state
DROP TABLE articles;
DROP FUNCTION public.retitle(int);
DROP ROLE regress_audit_owner, regress_audit_writer, regress_audit_definer, regress_audit_reader_member;
DROP SCHEMA "we.ird ""sch""" CASCADE;
DROP TABLE users, user_favorites, comments, comments_old CASCADE;
DROP VIEW pg_temp.log;
DROP EXTENSION pg_storage_ext CASCADE;
CREATE EXTENSION pg_storage_ext;
