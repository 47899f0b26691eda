-- Audit: the table as it was (audit.table_at) and a row as it was (audit.row_at) after a scripted
-- mix of changes, each compared with a snapshot taken at that moment: rows inserted before
-- audit.enable, INSERT, UPDATE, a key change, DELETE, a re-insert, excluded columns (NULL), a
-- partitioned table with rows moving between partitions, TRUNCATE (of a table, a partition, a
-- partitioned table), a conversion to a partitioned table; 22023 before audit.enable and before a
-- TRUNCATE that did not log its rows (a capture trigger made before 0.3.0); who may read it.
-- Leaves the database as it found it.
SET TimeZone = 'UTC';
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'cannot answer for .*$', 'cannot answer for <moment>'); END $$;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO PUBLIC;
-- rows of the snapshot not in table_at, and of table_at not in the snapshot
CREATE FUNCTION pg_temp.differ(snap regclass, at timestamptz, tab text DEFAULT 'posts') RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((TABLE %1$s EXCEPT ALL SELECT * FROM audit.table_at(NULL::%2$s, $1))
                                          UNION ALL (SELECT * FROM audit.table_at(NULL::%2$s, $1) EXCEPT ALL TABLE %1$s)) d', snap, tab::regclass)
       INTO n USING at;
    RETURN n;
END $$;

CREATE TABLE posts (id int PRIMARY KEY, title text NOT NULL, secret text, n int NOT NULL DEFAULT 0);
INSERT INTO posts VALUES (1, 'before audit', 's1', 0), (2, 'two', 's2', 0), (3, 'three', 's3', 0);
SELECT clock_timestamp() AS before_enable \gset
SELECT audit.enable('posts', ARRAY['secret']);
-- each step: a snapshot (the excluded column as table_at gives it: NULL) and the moment after it
CREATE TABLE snap0 AS SELECT id, title, NULL::text AS secret, n FROM posts;
SELECT clock_timestamp() AS t0 \gset
INSERT INTO posts VALUES (4, 'four', 's4', 0), (5, 'five', 's5', 0);
CREATE TABLE snap1 AS SELECT id, title, NULL::text AS secret, n FROM posts;
SELECT clock_timestamp() AS t1 \gset
UPDATE posts SET title = 'one, edited', secret = 'x' WHERE id = 1;
CREATE TABLE snap2 AS SELECT id, title, NULL::text AS secret, n FROM posts;
SELECT clock_timestamp() AS t2 \gset
UPDATE posts SET id = 20 WHERE id = 2;
CREATE TABLE snap3 AS SELECT id, title, NULL::text AS secret, n FROM posts;
SELECT clock_timestamp() AS t3 \gset
DELETE FROM posts WHERE id = 3;
CREATE TABLE snap4 AS SELECT id, title, NULL::text AS secret, n FROM posts;
SELECT clock_timestamp() AS t4 \gset
INSERT INTO posts VALUES (3, 'three again', 's3b', 9), (2, 'a new two', NULL, 0);
CREATE TABLE snap5 AS SELECT id, title, NULL::text AS secret, n FROM posts;
SELECT clock_timestamp() AS t5 \gset
UPDATE posts SET n = n + 1;
DELETE FROM posts WHERE id = 20;
CREATE TABLE snap6 AS SELECT id, title, NULL::text AS secret, n FROM posts;
SELECT clock_timestamp() AS t6 \gset
SELECT pg_temp.differ('snap0', :'t0') AS d0, pg_temp.differ('snap1', :'t1') AS d1,
       pg_temp.differ('snap2', :'t2') AS d2, pg_temp.differ('snap3', :'t3') AS d3,
       pg_temp.differ('snap4', :'t4') AS d4, pg_temp.differ('snap5', :'t5') AS d5,
       pg_temp.differ('snap6', :'t6') AS d6;
SELECT id, title, secret FROM audit.table_at(NULL::posts, :'t3') ORDER BY id;

-- row_at: a row unchanged since audit.enable is the live row (without the excluded column); one
-- changed later is what that change found; one not yet inserted is NULL
SELECT audit.row_at('posts', '{"id": 4}', :'t6') AS unchanged_since_insert,
       audit.row_at('posts', '{"id": 1}', :'t0') AS before_its_first_change,
       audit.row_at('posts', '{"id": 20}', :'t2') AS key_not_yet_changed_to,
       audit.row_at('posts', '{"id": 2}', :'t2') AS key_before_change,
       audit.row_at('posts', '{"id": 3}', :'t4') AS deleted,
       audit.row_at('posts', '{"id": 3}', :'t5') AS reinserted;

-- before audit.enable: 22023
SELECT pg_temp.err(format('SELECT count(*) FROM audit.table_at(NULL::posts, %L)', :'before_enable')) AS before_enable;
SELECT pg_temp.err('SELECT count(*) FROM audit.table_at(NULL::int, now())') AS not_a_table;
SELECT pg_temp.err('SELECT count(*) FROM audit.table_at(NULL::snap0, now())') AS not_audited;
-- a TRUNCATE logs the rows it removes: the table before it is known, and after it
TRUNCATE posts;
SELECT clock_timestamp() AS t7 \gset
INSERT INTO posts VALUES (7, 'after truncate', NULL, 0), (4, 'four again', 's', 1);
CREATE TABLE snap8 AS SELECT id, title, NULL::text AS secret, n FROM posts;
SELECT clock_timestamp() AS t8 \gset
UPDATE posts SET n = 5 WHERE id = 4;
SELECT pg_temp.differ('snap6', :'t6') AS d6_across_truncate, pg_temp.differ('snap8', :'t8') AS d8;
SELECT audit.row_at('posts', '{"id": 4}', :'t6') AS row_before_truncate,
       audit.row_at('posts', '{"id": 5}', :'t7') AS row_after_truncate;
SELECT count(*) AS rows_after_truncate FROM audit.table_at(NULL::posts, :'t7');
SELECT id, title FROM audit.table_at(NULL::posts, now()) ORDER BY id;
SELECT op, pk, old_row ->> 'title' AS title, CASE WHEN pk IS NULL THEN old_row END AS statement
  FROM audit.log WHERE table_oid = 'posts'::regclass AND op = 'TRUNCATE' ORDER BY id;

-- a partitioned table: rows moving between partitions
CREATE TABLE events (id int, day date, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
CREATE TABLE events_2 PARTITION OF events FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
INSERT INTO events VALUES (1, '2026-01-05', 'a'), (2, '2026-01-06', 'b');
SELECT audit.enable('events');
CREATE TABLE esnap0 AS TABLE events;
SELECT clock_timestamp() AS e0 \gset
UPDATE events SET day = '2026-02-05' WHERE id = 1;
INSERT INTO events VALUES (3, '2026-02-07', 'c');
DELETE FROM events WHERE id = 2;
CREATE TABLE esnap1 AS TABLE events;
SELECT clock_timestamp() AS e1 \gset
UPDATE events SET v = v || '!';
CREATE TABLE esnap2 AS TABLE events;
SELECT clock_timestamp() AS e2 \gset
TRUNCATE events_1;                                           -- one partition
INSERT INTO events VALUES (4, '2026-01-09', 'd');
CREATE TABLE esnap3 AS TABLE events;
SELECT clock_timestamp() AS e3 \gset
TRUNCATE events;                                             -- every partition
INSERT INTO events VALUES (5, '2026-02-09', 'e');
SELECT pg_temp.differ('esnap0', :'e0', 'events') AS e_d0, pg_temp.differ('esnap1', :'e1', 'events') AS e_d1,
       pg_temp.differ('esnap2', :'e2', 'events') AS e_d2, pg_temp.differ('esnap3', :'e3', 'events') AS e_d3;
-- the parent's TRUNCATE is one statement (its partitions' triggers log nothing more)
SELECT count(*) FILTER (WHERE pk IS NULL) AS statements, count(*) FILTER (WHERE pk IS NOT NULL) AS rows,
       array_agg(old_row ORDER BY id) FILTER (WHERE pk IS NULL) AS details
  FROM audit.log WHERE table_name = 'events' AND op = 'TRUNCATE';

-- a conversion to a partitioned table: the key gains the partition column; the table before
-- and after it
CREATE TABLE conv (id int PRIMARY KEY, day date NOT NULL, v text);
INSERT INTO conv VALUES (1, '2026-01-05', 'a'), (2, '2026-02-06', 'b'), (3, '2026-02-07', 'c');
SELECT audit.enable('conv');
UPDATE conv SET v = 'a1' WHERE id = 1;
CREATE TABLE csnap0 AS TABLE conv;
SELECT clock_timestamp() AS c0 \gset
UPDATE conv SET v = 'b1' WHERE id = 2;
DELETE FROM conv WHERE id = 3;
CREATE TABLE csnap1 AS TABLE conv;
SELECT clock_timestamp() AS c1 \gset
SELECT storage.convert_to_partitioned('conv', 'day', '1 month') AS moved;
UPDATE conv SET v = 'a2' WHERE id = 1;
UPDATE conv SET v = 'b2' WHERE id = 2;
INSERT INTO conv VALUES (3, '2026-01-08', 'c again');
CREATE TABLE csnap2 AS TABLE conv;
SELECT clock_timestamp() AS c2 \gset
DELETE FROM conv WHERE id = 1;
SELECT pg_temp.differ('csnap0', :'c0', 'conv') AS c_d0, pg_temp.differ('csnap1', :'c1', 'conv') AS c_d1, pg_temp.differ('csnap2', :'c2', 'conv') AS c_d2;
SELECT audit.row_at('conv', '{"id": 1}', :'c0') ->> 'v' AS row_before_conversion;

-- one-column keys of other types (text with the characters an array's text quotes, uuid), the
-- columns read back from the log's text (json and jsonb holding a bare string, a domain, an enum,
-- a range, bytea, a float's last digit, timestamptz) and, with an array column, through
-- jsonb_populate_record; two keys swapped by one statement; a row changed several times
CREATE FUNCTION pg_temp.differ_json(snap regclass, at timestamptz, tab text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((SELECT to_jsonb(s) FROM %1$s s EXCEPT ALL SELECT to_jsonb(t) FROM audit.table_at(NULL::%2$s, $1) t)
                                          UNION ALL (SELECT to_jsonb(t) FROM audit.table_at(NULL::%2$s, $1) t EXCEPT ALL SELECT to_jsonb(s) FROM %1$s s)) d',
                   snap, tab::regclass)
       INTO n USING at;
    RETURN n;
END $$;
CREATE DOMAIN regress_at_positive AS numeric CHECK (VALUE > 0);
CREATE TYPE regress_at_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE typed (k text, doc json, meta jsonb, amount regress_at_positive, mood regress_at_mood, span int4range,
                    b bytea, f float8, at timestamptz, PRIMARY KEY (k) DEFERRABLE);
CREATE TABLE typed_arr (k uuid PRIMARY KEY DEFERRABLE, tags text[], meta jsonb);
INSERT INTO typed VALUES ('a,b', '{"x": 1}', '"just a string"', 1.50, 'ok', '[1,3)', '\x00ff', 0.1::float8 + 0.2::float8, '2026-01-01 10:00+02'),
                         ('x"y', '"s"', '{"k": [1, 2]}', 2, 'sad', 'empty', '\x', 1e-300, NULL),
                         ('{}', NULL, 'null', 3.000, 'happy', '(,5]', NULL, 'NaN', '-infinity'),
                         (E'back\\slash é', '[1, "two"]', '3.10', 4, NULL, NULL, '\xdeadbeef', -0.0, '2026-06-01 00:00+00'),
                         ('', '{}', '{}', 5, 'ok', '[2,2]', '\x01', 'Infinity', now());
INSERT INTO typed_arr VALUES ('00000000-0000-0000-0000-000000000001', '{a,"b c",NULL}', '"str"'),
                             ('00000000-0000-0000-0000-000000000002', '{}', '{"a": "b"}'),
                             ('00000000-0000-0000-0000-000000000003', NULL, '[1]');
SELECT audit.enable('typed'), audit.enable('typed_arr');
CREATE TABLE tsnap0 AS TABLE typed;
CREATE TABLE asnap0 AS TABLE typed_arr;
SELECT clock_timestamp() AS y0 \gset
UPDATE typed SET k = CASE k WHEN 'a,b' THEN 'x"y' ELSE 'a,b' END WHERE k IN ('a,b', 'x"y');   -- swapped keys
UPDATE typed SET meta = '"another string"', f = f * 3 WHERE k = '{}';
UPDATE typed SET meta = '[]', doc = '"t"' WHERE k = '{}';
DELETE FROM typed WHERE k = '';
INSERT INTO typed VALUES ('', '1', '1', 6, 'sad', '[5,6)', '\x02', 2.5, now());
UPDATE typed_arr SET k = '00000000-0000-0000-0000-000000000009', tags = '{z}' WHERE k = '00000000-0000-0000-0000-000000000001';
UPDATE typed_arr SET tags = tags || 'x'::text WHERE k = '00000000-0000-0000-0000-000000000002';
DELETE FROM typed_arr WHERE k = '00000000-0000-0000-0000-000000000003';
CREATE TABLE tsnap1 AS TABLE typed;
CREATE TABLE asnap1 AS TABLE typed_arr;
SELECT clock_timestamp() AS y1 \gset
UPDATE typed SET amount = amount + 1, mood = 'happy', span = '[7,8)';
INSERT INTO typed_arr VALUES ('00000000-0000-0000-0000-000000000003', '{back}', NULL);
SELECT pg_temp.differ_json('tsnap0', :'y0', 'typed') AS typed_d0, pg_temp.differ_json('tsnap1', :'y1', 'typed') AS typed_d1,
       pg_temp.differ_json('asnap0', :'y0', 'typed_arr') AS arr_d0, pg_temp.differ_json('asnap1', :'y1', 'typed_arr') AS arr_d1;
SELECT k, meta, pg_typeof(meta) AS meta_type, doc, doc IS NULL AS doc_null, meta IS NULL AS meta_null,
       f = 0.1::float8 + 0.2::float8 AS f_exact, amount, b, span FROM audit.table_at(NULL::typed, :'y0') ORDER BY k;
SELECT audit._hashable_key('typed', 'k') AS text_key, audit._hashable_key('typed_arr', 'k') AS uuid_key,
       audit._hashable_key('typed', 'span') AS range_column, audit._hashable_key('typed', 'meta') AS jsonb_column,
       audit._image_columns('typed_arr', 'i') IS NULL AS array_through_populate;

-- the result is kept in memory up to pg_storage_ext.table_at_work_mem (64MB by default; work_mem
-- when larger), not written to a temporary file at work_mem; the caller's work_mem is as it was
LOAD 'pg_storage_ext';
CREATE TABLE wide (id int PRIMARY KEY, v text);
INSERT INTO wide SELECT i, repeat('x', 200) FROM generate_series(1, 2000) AS i;
SELECT audit.enable('wide');
SELECT clock_timestamp() AS w0 \gset
UPDATE wide SET v = 'changed' WHERE id <= 10;
SET work_mem = '64kB';
SET temp_file_limit = 0;
SELECT count(*) AS in_memory, count(*) FILTER (WHERE v = 'changed') AS changed_since
  FROM audit.table_at(NULL::wide, :'w0');
SHOW work_mem;
SET pg_storage_ext.table_at_work_mem = '64kB';
SELECT pg_temp.err(format('SELECT count(*) FROM audit.table_at(NULL::wide, %L)', :'w0')) AS spilled;
RESET pg_storage_ext.table_at_work_mem;
RESET temp_file_limit;
RESET work_mem;
SELECT audit.disable('wide');
DROP TABLE wide;

-- who may: audit_reader and SELECT on the table; row security applies to the live rows
CREATE ROLE regress_at_reader IN ROLE audit_reader;
CREATE ROLE regress_at_nobody;
GRANT SELECT ON posts TO regress_at_nobody;
SET ROLE regress_at_nobody;
SELECT pg_temp.err('SELECT count(*) FROM audit.table_at(NULL::posts, now())') AS not_a_reader;
RESET ROLE;
SET ROLE regress_at_reader;
SELECT pg_temp.err('SELECT count(*) FROM audit.table_at(NULL::posts, now())') AS no_select;
SELECT audit.row_at('posts', '{"id": 4}', :'t6') ->> 'title' AS a_logged_row_needs_no_select;
RESET ROLE;

-- a row unchanged since audit.enable: row_at reads it from the table, as the caller; before a
-- TRUNCATE that did not log its rows (its trigger made AFTER TRUNCATE, as before 0.3.0), 22023
CREATE TABLE quiet (id int PRIMARY KEY, v text);
INSERT INTO quiet VALUES (1, 'one'), (2, 'two');
SELECT audit.enable('quiet');
SELECT clock_timestamp() AS q0 \gset
SELECT audit.row_at('quiet', '{"id": 1}', now()) AS live_row,
       audit.row_at('quiet', '{"id": 1}', :'q0') AS live_row_then;
SELECT pg_temp.err('SELECT audit.row_at(''quiet'', ''{"idx": 1}'', now())') AS not_a_key;
SET ROLE regress_at_reader;
SELECT pg_temp.err('SELECT audit.row_at(''quiet'', ''{"id": 1}'', now())') AS live_row_needs_select;
RESET ROLE;
CREATE OR REPLACE TRIGGER audit_capture_truncate AFTER TRUNCATE ON quiet
    FOR EACH STATEMENT EXECUTE FUNCTION audit._capture('table', 'false');
SELECT capture_ok, problem FROM audit.coverage WHERE table_name = 'quiet'::regclass;
TRUNCATE quiet;
SELECT pg_temp.err(format('SELECT audit.row_at(''quiet'', ''{"id": 2}'', %L)', :'q0')) AS row_before_truncate;
SELECT pg_temp.err(format('SELECT count(*) FROM audit.table_at(NULL::quiet, %L)', :'q0')) AS table_before_truncate;
SELECT count(*) FILTER (WHERE pk IS NULL) AS statements, count(*) FILTER (WHERE pk IS NOT NULL) AS rows
  FROM audit.log WHERE table_name = 'quiet' AND op = 'TRUNCATE';
-- audit.enable again repairs it
SELECT audit.enable('quiet');
SELECT capture_ok FROM audit.coverage WHERE table_name = 'quiet'::regclass;

SELECT audit.disable('posts');
SELECT audit.disable('events');
SELECT audit.disable('quiet');
SELECT audit.disable('conv');
SELECT audit.disable('typed'), audit.disable('typed_arr');
DROP TABLE posts, events, quiet, conv, snap0, snap1, snap2, snap3, snap4, snap5, snap6, snap8, esnap0, esnap1, esnap2, esnap3,
           csnap0, csnap1, csnap2, typed, typed_arr, tsnap0, tsnap1, asnap0, asnap1;
DROP DOMAIN regress_at_positive;
DROP TYPE regress_at_mood;
DROP ROLE regress_at_reader, regress_at_nobody;
