-- Partitions: create_partitions, partitions, ensure_partition, run_maintenance,
-- convert_to_partitioned, their errors, hostile names.
SET TimeZone = 'UTC';
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text; h text;
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || SQLERRM || CASE WHEN d <> '' THEN ' | detail: ' || d ELSE '' END
                                       || CASE WHEN h <> '' THEN ' | hint: ' || h ELSE '' END;
END $$;
CREATE FUNCTION pg_temp.layout(t regclass) RETURNS TABLE (partition text, lower_bound text, upper_bound text, is_default boolean)
LANGUAGE sql AS $$ SELECT partition::text, lower_bound, upper_bound, is_default FROM storage.partitions(t) $$;

-- monthly, from a start in the future (so the result does not depend on today): start + premake
CREATE TABLE views (id bigint GENERATED ALWAYS AS IDENTITY, article_id int NOT NULL,
                    viewed_at timestamptz NOT NULL, PRIMARY KEY (id, viewed_at)) PARTITION BY RANGE (viewed_at);
CREATE INDEX ON views (article_id);
SELECT storage.create_partitions('views', '1 month', premake => 2, start_from => '2100-01-15') AS created;
SELECT * FROM pg_temp.layout('views');
-- children follow the parent: indexes and the primary key
SELECT count(*) AS child_indexes FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indrelid
 WHERE h.inhparent = 'views'::regclass;
SELECT parent, control_column, control_type, step, premake, retention, default_partition, time_zone
  FROM storage.partition_config;
SELECT pg_temp.err($$SELECT storage.create_partitions('views', '1 month')$$);

-- rows routed, late rows in the default, ensure_partition moves them instead of failing
INSERT INTO views (article_id, viewed_at) VALUES (1, '2100-01-20'), (2, '2100-03-31 23:59:59'),
       (3, '2099-12-05'), (4, '2099-12-31 23:00'), (5, '2101-06-01'), (6, '2020-01-15');
SELECT tableoid::regclass AS part, article_id FROM views ORDER BY article_id;
SELECT storage.ensure_partition('views', '2100-02-02 10:00');   -- exists
SELECT storage.ensure_partition('views', '2099-12-24');         -- created, two rows moved
SELECT tableoid::regclass AS part, article_id FROM views ORDER BY article_id;
SELECT storage.ensure_partition('views', NULL) IS NULL AS null_value;
SELECT pg_temp.err($$SELECT storage.ensure_partition('views', 'not a time')$$);
SELECT pg_temp.err($$SELECT storage.ensure_partition('pg_class', '1')$$);

-- run_maintenance drains the default (2101-06, 2020-01) and premakes (from now: every month up to now + 2)
SELECT parent, created > 0 AS created_some, dropped, detached, moved_from_default
  FROM storage.run_maintenance('views');
SELECT tableoid::regclass AS part, article_id FROM views WHERE article_id IN (5, 6) ORDER BY article_id;
SELECT count(*) AS default_rows FROM ONLY views_default;
SELECT bool_and(lower_bound IS NOT NULL) AS all_bounded,
       max(upper_bound::timestamptz) FILTER (WHERE upper_bound::timestamptz < '2100-01-01')
         = date_trunc('month', now()) + interval '3 months' AS premade_from_now
  FROM storage.partitions('views') WHERE NOT is_default;
-- a second run has nothing to do
SELECT parent, created, dropped, detached, moved_from_default FROM storage.run_maintenance('views');

-- retention: drop (or detach) whole children older than now - retention
UPDATE storage.partition_config SET retention = '3 months' WHERE parent = 'views'::regclass;
SELECT dropped > 0 AS dropped_old FROM storage.run_maintenance('views');
SELECT count(*) AS children_ending_before_cutoff FROM storage.partitions('views')
 WHERE NOT is_default AND upper_bound::timestamptz <= now() - interval '3 months';
SELECT count(*) AS old_rows_gone FROM views WHERE viewed_at < now() - interval '4 months';

-- integer keys: steps of 1000, premake past the highest value; retention detaches
CREATE TABLE events (id bigint NOT NULL, payload text) PARTITION BY RANGE (id);
SELECT storage.create_partitions('events', '1000', premake => 2, retention => '2000', retention_keep_table => true) AS created;
SELECT pg_temp.err($$SELECT storage.create_partitions('events', '1 day')$$);
SELECT * FROM pg_temp.layout('events');
INSERT INTO events SELECT g, 'x' FROM generate_series(1, 4500) AS g;   -- 3000.. land in the default
SELECT parent, created, dropped, detached, moved_from_default FROM storage.run_maintenance('events');
SELECT * FROM pg_temp.layout('events');
SELECT tableoid::regclass::text AS part, count(*) FROM events GROUP BY 1 ORDER BY 1;
-- detached, not dropped: the table is still there, outside the parent
SELECT count(*) AS kept_rows FROM events_p0;

-- smallint: periods past the type's range become MINVALUE / MAXVALUE
CREATE TABLE small (k smallint NOT NULL) PARTITION BY RANGE (k);
SELECT storage.create_partitions('small', '10000', premake => 10, start_from => '-32768', default_partition => false) AS created;
SELECT * FROM pg_temp.layout('small');
INSERT INTO small VALUES (-32768), (32767);

-- other time types and steps: timestamp daily, date weekly (Mondays), hourly, quarterly, yearly
CREATE TABLE t_day (at timestamp NOT NULL) PARTITION BY RANGE (at);
SELECT storage.create_partitions('t_day', '1 day', 2, '2100-02-27 13:00', default_partition => false);
SELECT * FROM pg_temp.layout('t_day');
CREATE TABLE t_week (d date NOT NULL) PARTITION BY RANGE (d);
SELECT storage.create_partitions('t_week', '1 week', 1, '2100-03-03', default_partition => false);
SELECT partition, lower_bound, to_char(lower_bound::date, 'Dy') AS starts_on FROM pg_temp.layout('t_week');
CREATE TABLE t_hour (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT storage.create_partitions('t_hour', '1 hour', 1, '2100-01-01 23:30+00', default_partition => false);
SELECT * FROM pg_temp.layout('t_hour');
CREATE TABLE t_quarter (d date NOT NULL) PARTITION BY RANGE (d);
SELECT storage.create_partitions('t_quarter', '3 months', 1, '2100-05-17', default_partition => false);
SELECT * FROM pg_temp.layout('t_quarter');
CREATE TABLE t_year (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SET TimeZone = 'Asia/Kolkata';   -- bounds are midnights in the zone of registration
SELECT storage.create_partitions('t_year', '1 year', 1, '2100-06-01', default_partition => false);
SET TimeZone = 'UTC';
SELECT * FROM pg_temp.layout('t_year');
SELECT time_zone FROM storage.partition_config WHERE parent = 't_year'::regclass;
-- maintenance from another zone premakes this year and the next, on the registered zone's
-- midnights (no overlap with the children above)
SELECT created FROM storage.run_maintenance('t_year');
SELECT count(*) AS children,
       bool_and(to_char(lower_bound::timestamptz AT TIME ZONE 'Asia/Kolkata', 'MM-DD HH24:MI') = '01-01 00:00') AS kolkata_new_years
  FROM storage.partitions('t_year');

-- an existing child with odd bounds: new periods are cut around it, names stay unique
CREATE TABLE odd (at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE odd_manual PARTITION OF odd FOR VALUES FROM ('2100-01-10') TO ('2100-01-20');
SELECT storage.create_partitions('odd', '1 month', 0, '2100-01-01', default_partition => false);
SELECT * FROM pg_temp.layout('odd');

-- bad input: SQLSTATE, detail, hint; nothing created
CREATE TABLE plain (at timestamptz);
CREATE TABLE listed (k int) PARTITION BY LIST (k);
CREATE TABLE two_cols (a int, b int) PARTITION BY RANGE (a, b);
CREATE TABLE expr_key (at timestamptz) PARTITION BY RANGE (date_trunc('day', at AT TIME ZONE 'UTC'));
CREATE TABLE texty (s text) PARTITION BY RANGE (s);
CREATE TABLE fresh (at timestamptz NOT NULL, n int) PARTITION BY RANGE (at);
CREATE TABLE fresh_int (n int NOT NULL) PARTITION BY RANGE (n);
CREATE TABLE fresh_date (d date NOT NULL) PARTITION BY RANGE (d);
SELECT q, pg_temp.err(q) FROM (VALUES
    ($$SELECT storage.create_partitions('plain', '1 month')$$),
    ($$SELECT storage.create_partitions('listed', '1')$$),
    ($$SELECT storage.create_partitions('two_cols', '1')$$),
    ($$SELECT storage.create_partitions('expr_key', '1 day')$$),
    ($$SELECT storage.create_partitions('texty', '1')$$),
    ($$SELECT storage.create_partitions('fresh', '0 days')$$),
    ($$SELECT storage.create_partitions('fresh', '-1 month')$$),
    ($$SELECT storage.create_partitions('fresh', '1 month 2 days')$$),
    ($$SELECT storage.create_partitions('fresh', '90 seconds')$$),
    ($$SELECT storage.create_partitions('fresh', '1000')$$),
    ($$SELECT storage.create_partitions('fresh', NULL)$$),
    ($$SELECT storage.create_partitions('fresh', '1 month', -1)$$),
    ($$SELECT storage.create_partitions('fresh', '1 month', retention => '1 week')$$),
    ($$SELECT storage.create_partitions('fresh', '1 month', retention => 'soon')$$),
    ($$SELECT storage.create_partitions('fresh', '1 month', start_from => 'someday')$$),
    ($$SELECT storage.create_partitions('fresh_int', '1 day')$$),
    ($$SELECT storage.create_partitions('fresh_int', '0')$$),
    ($$SELECT storage.create_partitions('fresh_int', '100', retention => '50')$$),
    ($$SELECT storage.create_partitions('fresh_date', '1 hour')$$),
    ($$SELECT storage.run_maintenance('fresh')$$),
    ($$SELECT storage.partitions('plain')$$)
) AS t(q);
SELECT count(*) AS nothing_created FROM pg_inherits WHERE inhparent IN ('fresh'::regclass, 'fresh_int'::regclass, 'fresh_date'::regclass);
SELECT count(*) AS nothing_registered FROM storage.partition_config
 WHERE parent IN ('fresh'::regclass, 'fresh_int'::regclass, 'fresh_date'::regclass);

-- hostile names: schema and table with dots, quotes, spaces, unicode; a 63-byte name
CREATE SCHEMA "we.ird ""s""";
CREATE TABLE "we.ird ""s"""."Tab ""x"". é" ("Viewed At" timestamptz NOT NULL, "a:B" int) PARTITION BY RANGE ("Viewed At");
SELECT storage.create_partitions('"we.ird ""s"""."Tab ""x"". é"', '1 month', 1, '2100-01-01') AS created;
SELECT * FROM pg_temp.layout('"we.ird ""s"""."Tab ""x"". é"');
INSERT INTO "we.ird ""s"""."Tab ""x"". é" VALUES ('2100-01-05', 1), ('2000-01-01', 2);
SELECT storage.ensure_partition('"we.ird ""s"""."Tab ""x"". é"', '2000-01-31');
SELECT tableoid::regclass AS part, "a:B" FROM "we.ird ""s"""."Tab ""x"". é" ORDER BY 2;
CREATE TABLE long_parent_name_that_is_exactly_sixty_three_bytes_long_abcdefg (at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE long_parent_name_that_is_exactly_sixty_three_bytes_long_abcdefh (at date NOT NULL) PARTITION BY RANGE (at);
SELECT storage.create_partitions('long_parent_name_that_is_exactly_sixty_three_bytes_long_abcdefg', '1 day', 1, '2100-01-01');
SELECT storage.create_partitions('long_parent_name_that_is_exactly_sixty_three_bytes_long_abcdefh', '1 day', 1, '2100-01-01');
SELECT partition, octet_length(partition) <= 63 AS fits FROM (
    SELECT partition FROM pg_temp.layout('long_parent_name_that_is_exactly_sixty_three_bytes_long_abcdefg')
    UNION ALL
    SELECT partition FROM pg_temp.layout('long_parent_name_that_is_exactly_sixty_three_bytes_long_abcdefh')) s
 ORDER BY 1;

-- convert_to_partitioned: rows, constraints, indexes, defaults, identity, grants, comments, views
CREATE ROLE part_reader NOLOGIN;
CREATE TABLE hits (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, article_id int NOT NULL CHECK (article_id > 0),
                   visitor text DEFAULT 'anon', at timestamptz NOT NULL, twice int GENERATED ALWAYS AS (article_id * 2) STORED);
CREATE UNIQUE INDEX hits_visit ON hits (visitor, article_id) WHERE visitor <> 'anon';
CREATE INDEX "hits by at" ON hits (at DESC);
COMMENT ON TABLE hits IS 'article hits';
COMMENT ON COLUMN hits.visitor IS 'who';
GRANT SELECT ON hits TO part_reader;
CREATE VIEW hits_per_article AS SELECT article_id, count(*) AS n FROM hits GROUP BY article_id;
GRANT SELECT ON hits_per_article TO part_reader;
INSERT INTO hits (article_id, visitor, at)
SELECT 1 + g % 7, CASE WHEN g % 3 = 0 THEN 'anon' ELSE 'v' || g END, timestamptz '2100-01-01' + g * interval '7 hours'
  FROM generate_series(1, 3000) AS g;
CREATE TEMP TABLE before AS SELECT count(*) AS n, sum(hashtext(h::text)) AS h FROM hits h;
SELECT storage.convert_to_partitioned('hits', 'at', '1 month', batch_rows => 200) AS moved;
SELECT (SELECT n FROM before) = count(*) AS same_count, (SELECT h FROM before) = sum(hashtext(h::text)) AS same_checksum
  FROM hits h;
SELECT relkind FROM pg_class WHERE oid = 'hits'::regclass;
SELECT pg_get_constraintdef(oid) AS constraints FROM pg_constraint WHERE conrelid = 'hits'::regclass AND contype IN ('p', 'c') ORDER BY 1;
SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'hits'::regclass ORDER BY 1;
SELECT obj_description('hits'::regclass, 'pg_class') AS comment, col_description('hits'::regclass, 3) AS col_comment,
       has_table_privilege('part_reader', 'hits', 'SELECT') AS reader_can_select;
SELECT * FROM hits_per_article ORDER BY article_id;
INSERT INTO hits (article_id, at) VALUES (7, '2100-02-01') RETURNING id, visitor, twice, tableoid::regclass;
SELECT count(*) AS children, count(*) FILTER (WHERE is_default) AS defaults FROM storage.partitions('hits');
SELECT to_regclass('hits_pse_old') IS NULL AS old_table_gone;
SELECT q, pg_temp.err(q) FROM (VALUES
    ($$SELECT storage.convert_to_partitioned('hits', 'at', '1 month')$$),
    ($$SELECT storage.convert_to_partitioned('plain', 'nope', '1 month')$$),
    ($$SELECT storage.convert_to_partitioned('plain', 'at', '1000')$$),
    ($$SELECT storage.convert_to_partitioned('plain', 'at', '1 month', 0)$$),
    ($$SELECT storage.convert_to_partitioned('hits_per_article', 'n', '10')$$)
) AS t(q);

-- periods are PostgreSQL's own date arithmetic: floors agree with date_bin / date_trunc over
-- 1,199 instants from 1899 to 2101 (leap days, pre-epoch, DST-free civil times), and a period
-- start moved by k steps is the start + k * step
SELECT s.step, count(*) AS instants,
       count(*) FILTER (WHERE storage._partition_floor(s.step, to_char(t, 'YYYY-MM-DD HH24:MI:SS.US'))
                              <> to_char(s.expected, 'YYYY-MM-DD HH24:MI:SS')) AS disagree
  FROM generate_series(timestamp '1899-12-31 23:59:59.5', timestamp '2101-03-01', interval '61 days 7 hours 13 minutes 1.25 seconds') AS t
 CROSS JOIN LATERAL (VALUES
    ('minutes:15', date_bin('15 minutes', t, timestamp '1970-01-01')),
    ('minutes:90', date_bin('90 minutes', t, timestamp '1970-01-01')),
    ('days:1', date_trunc('day', t)),
    ('days:7', date_trunc('week', t)),
    ('days:14', date_bin('14 days', t, timestamp '1970-01-05')),
    ('months:1', date_trunc('month', t)),
    ('months:3', date_trunc('quarter', t)),
    ('months:5', date_trunc('month', t) - make_interval(months => ((extract(year FROM t)::int * 12 + extract(month FROM t)::int - 1) % 5))),
    ('months:12', date_trunc('year', t))) AS s(step, expected)
 GROUP BY s.step ORDER BY s.step;
SELECT s.step, k, storage._partition_add(s.step, '2024-01-29 00:00:00', k) AS moved
  FROM (VALUES ('months:1'), ('days:7'), ('minutes:90')) AS s(step), (VALUES (-1), (1), (13)) AS n(k)
 ORDER BY 1, 2;
-- past the last timestamp PostgreSQL has there is no period start
SELECT storage._partition_add('months:12', '9999-01-01 00:00:00', 300000) IS NULL AS beyond_range;

DROP SCHEMA "we.ird ""s""" CASCADE;
DROP TABLE views, events, events_p0, small, t_day, t_week, t_hour, t_quarter, t_year, odd, plain, listed, two_cols,
           expr_key, texty, fresh, fresh_int, fresh_date, hits CASCADE;
DROP TABLE long_parent_name_that_is_exactly_sixty_three_bytes_long_abcdefg,
           long_parent_name_that_is_exactly_sixty_three_bytes_long_abcdefh;
DROP ROLE part_reader;
-- maintenance forgets dropped parents
SELECT count(*) AS runs FROM storage.run_maintenance();
SELECT count(*) AS registered FROM storage.partition_config;
