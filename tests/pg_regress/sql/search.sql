-- Full-text search: the weighted tsvector_update trigger, enable_search, rebuild_search, the view.
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- every source type, NULLs, unicode; the result must equal the SQL expression exactly
CREATE TABLE docs (
    id int PRIMARY KEY, title text, summary varchar(200), code char(12), content text,
    tags text[], labels varchar[], meta jsonb, extra json, views int DEFAULT 0, tsv tsvector);
CREATE TRIGGER docs_tsv BEFORE INSERT OR UPDATE ON docs FOR EACH ROW EXECUTE FUNCTION
    storage.tsvector_update('tsv', 'english', 'title:A', 'summary:b', 'code', 'content:C', 'tags:B', 'labels:D', 'meta:A', 'extra:C');
CREATE FUNCTION pg_temp.expected(d docs) RETURNS tsvector LANGUAGE sql AS $$
    SELECT setweight(to_tsvector('english', coalesce(d.title, '')), 'A')
        || setweight(to_tsvector('english', coalesce(d.summary, '')), 'B')
        || setweight(to_tsvector('english', coalesce(d.code, '')), 'D')
        || setweight(to_tsvector('english', coalesce(d.content, '')), 'C')
        || setweight(to_tsvector('english', coalesce(array_to_string(d.tags, ' '), '')), 'B')
        || setweight(to_tsvector('english', coalesce(array_to_string(d.labels, ' '), '')), 'D')
        || setweight(jsonb_to_tsvector('english', coalesce(d.meta, '{}'), '["string"]'), 'A')
        || setweight(json_to_tsvector('english', coalesce(d.extra, '{}'), '["string"]'), 'C') $$;
-- deterministic pseudo-random words (md5), unicode words, NULLs in every column now and then
CREATE FUNCTION pg_temp.words(seed int, n int) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg((ARRAY['running', 'runner', 'Café', 'naïve', 'Ünïcödé', '東京', 'данные', 'the', 'of',
                              'quick-brown', 'fox''s', 'e-mail@example.com', 'x2', '3.14', 'über', 'ran', 'https://example.test/a?b=c'])
                       [1 + ('x' || substr(md5(seed::text || ':' || i), 1, 6))::bit(24)::int % 17], ' ')
      FROM generate_series(1, n) AS i $$;
INSERT INTO docs (id, title, summary, code, content, tags, labels, meta, extra)
SELECT i,
       CASE WHEN i % 7 = 0 THEN NULL ELSE pg_temp.words(i, 1 + i % 5) END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE pg_temp.words(i + 1000, 3) END,
       CASE WHEN i % 3 = 0 THEN NULL ELSE left(pg_temp.words(i + 2000, 2), 12) END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE pg_temp.words(i + 3000, 10 + i % 40) END,
       CASE WHEN i % 4 = 0 THEN NULL ELSE ARRAY[pg_temp.words(i + 4000, 1), NULL, pg_temp.words(i + 5000, 2)] END,
       CASE WHEN i % 6 = 0 THEN NULL ELSE ARRAY[[pg_temp.words(i + 6000, 1)], [pg_temp.words(i + 7000, 1)]]::varchar[] END,
       CASE WHEN i % 8 = 0 THEN NULL ELSE jsonb_build_object('a', pg_temp.words(i + 8000, 2), 'n', i, 'arr', jsonb_build_array(pg_temp.words(i + 9000, 1), true)) END,
       CASE WHEN i % 9 = 0 THEN NULL ELSE json_build_object('k', pg_temp.words(i + 9500, 3), 'k', 'duplicate key kept') END
  FROM generate_series(1, 400) AS i;
SELECT count(*) AS rows, count(*) FILTER (WHERE d.tsv = pg_temp.expected(d)) AS equal,
       count(*) FILTER (WHERE d.tsv = ''::tsvector) AS empty
  FROM docs AS d;
SELECT tsv FROM docs WHERE id = 1;
-- all sources NULL: an empty vector, not NULL
INSERT INTO docs (id) VALUES (1000);
SELECT tsv, tsv IS NULL AS is_null FROM docs WHERE id = 1000;

-- UPDATE: a source change recomputes; anything else leaves the row as it is, without parsing
UPDATE docs SET title = 'renamed title' WHERE id = 1;
SELECT d.tsv = pg_temp.expected(d) AS equal, d.tsv @@ 'renam'::tsquery AS finds_new_title FROM docs AS d WHERE id = 1;
UPDATE docs SET tsv = 'hand:1'::tsvector WHERE id = 2;
UPDATE docs SET views = views + 1 WHERE id = 2;
SELECT tsv, views FROM docs WHERE id = 2;
UPDATE docs SET tags = tags WHERE id = 2;
SELECT tsv FROM docs WHERE id = 2;
-- ... but a NULL tsvector is never kept: setting it to NULL with an unchanged source recomputes it
UPDATE docs SET tsv = NULL, tags = tags WHERE id = 2;
SELECT d.tsv = pg_temp.expected(d) AS equal FROM docs AS d WHERE id = 2;
UPDATE docs SET tags = array_append(tags, 'appended') WHERE id = 2;
SELECT d.tsv = pg_temp.expected(d) AS equal FROM docs AS d WHERE id = 2;
-- COPY goes through the trigger too
COPY docs (id, title, content) FROM stdin;
2001	copied title	copied content words
\.
SELECT tsv FROM docs WHERE id = 2001;

-- per-row configuration: a regconfig column and a text column
CREATE TABLE multi (id int, lang regconfig, body text, tsv tsvector);
CREATE TRIGGER multi_tsv BEFORE INSERT OR UPDATE ON multi FOR EACH ROW
    EXECUTE FUNCTION storage.tsvector_update('tsv', 'lang', 'body:B');
INSERT INTO multi VALUES (1, 'english', 'The runners were running'), (2, 'simple', 'The runners were running'),
                         (3, 'french', 'Les coureurs couraient');
SELECT id, lang, tsv, tsv = setweight(to_tsvector(lang, body), 'B') AS equal FROM multi ORDER BY id;
-- changing only the configuration column recomputes
UPDATE multi SET lang = 'simple' WHERE id = 1;
SELECT tsv FROM multi WHERE id = 1;
SELECT pg_temp.sqlstate_of($$INSERT INTO multi VALUES (4, NULL, 'x')$$);
CREATE TABLE multi_text (id int, lang text, body text, tsv tsvector);
CREATE TRIGGER multi_text_tsv BEFORE INSERT OR UPDATE ON multi_text FOR EACH ROW
    EXECUTE FUNCTION storage.tsvector_update('tsv', 'lang', 'body');
INSERT INTO multi_text VALUES (1, 'pg_catalog.english', 'Running dogs'), (2, 'simple', 'Running dogs');
SELECT id, tsv FROM multi_text ORDER BY id;
SELECT pg_temp.sqlstate_of($$INSERT INTO multi_text VALUES (3, 'klingon', 'x')$$);

-- wrong arguments: named, with SQLSTATE, at the first row
CREATE TABLE bad (id int, body text, n int, tsv tsvector, notvec text);
-- each case: create the trigger (timing, event, arguments), fire it once, report, drop it
CREATE FUNCTION pg_temp.trigger_error(timing text, args text, dml text DEFAULT 'INSERT INTO bad (id) VALUES (1)')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE result text;
BEGIN
    EXECUTE format('CREATE TRIGGER probe %s ON bad FOR EACH ROW EXECUTE FUNCTION storage.tsvector_update(%s)', timing, args);
    result := pg_temp.sqlstate_of(dml);
    DROP TRIGGER probe ON bad;
    RETURN result;
END $$;
SELECT args, pg_temp.trigger_error('BEFORE INSERT', args) AS error
  FROM (VALUES (1, $$'tsv', 'english'$$),
               (2, $$'nope', 'english', 'body'$$),
               (3, $$'notvec', 'english', 'body'$$),
               (4, $$'tsv', 'no_such_config', 'body'$$),
               (5, $$'tsv', 'english', 'body:E'$$),
               (6, $$'tsv', 'english', 'missing:A'$$),
               (7, $$'tsv', 'english', 'n'$$),
               (8, $$'tsv', 'n', 'body'$$)) AS cases(k, args)
 ORDER BY k;
SELECT pg_temp.trigger_error('AFTER INSERT', $$'tsv', 'english', 'body'$$) AS after_trigger;
INSERT INTO bad (id) VALUES (1);
SELECT pg_temp.trigger_error('BEFORE DELETE', $$'tsv', 'english', 'body'$$, 'DELETE FROM bad') AS delete_trigger;
-- the message in full, once
CREATE TRIGGER b11 BEFORE INSERT ON bad FOR EACH ROW EXECUTE FUNCTION storage.tsvector_update('tsv', 'english', 'body', 'missing:B');
INSERT INTO bad (id) VALUES (2);
DROP TRIGGER b11 ON bad;
-- DDL after the first row is seen: a dropped source column is reported, not read
CREATE TRIGGER b12 BEFORE INSERT OR UPDATE ON bad FOR EACH ROW EXECUTE FUNCTION storage.tsvector_update('tsv', 'english', 'body', 'notvec:B');
INSERT INTO bad (id, body) VALUES (3, 'first row');
ALTER TABLE bad DROP COLUMN notvec;
SELECT pg_temp.sqlstate_of($$INSERT INTO bad (id, body) VALUES (4, 'second row')$$);
DROP TABLE bad;

-- enable_search on a blog-shaped articles table, then ranked queries
CREATE TABLE articles (id int PRIMARY KEY, title text NOT NULL, summary text, content text, view_count int DEFAULT 0);
INSERT INTO articles (id, title, summary, content) VALUES
    (1, 'PostgreSQL partitioning in practice', 'Range partitions for time series', 'We partition article views by month and keep twelve months.'),
    (2, 'Cooking with cast iron', 'A pan for life', 'Season it, heat it, and it will outlive you. Nothing about databases.'),
    (3, 'Full-text search with weights', 'Title beats summary beats content', 'PostgreSQL ranks matches in titles above matches in the body, if you weight them.'),
    (4, 'Notes', 'Odds and ends', 'A short note that mentions PostgreSQL search only in passing.'),
    (5, 'Search engines compared', 'PostgreSQL search versus dedicated engines', 'Weighted tsvector columns and GIN indexes go a long way.');
SELECT storage.enable_search('articles', 'searchable', 'english', '{"title": "A", "summary": "B", "content": "C"}') AS backfilled;
SELECT count(*) FILTER (WHERE searchable = setweight(to_tsvector('english', title), 'A')
                                        || setweight(to_tsvector('english', coalesce(summary, '')), 'B')
                                        || setweight(to_tsvector('english', coalesce(content, '')), 'C')) AS equal_to_seed_expression
  FROM articles;
SELECT table_name, column_name, config, weights, trigger_name, index_name, sources FROM storage.search_columns ORDER BY table_name::text, trigger_name;
SELECT id, title, round(ts_rank(searchable, websearch_to_tsquery('english', 'postgresql search'))::numeric, 4) AS rank
  FROM articles WHERE searchable @@ websearch_to_tsquery('english', 'postgresql search')
 ORDER BY rank DESC, id;
SELECT id FROM articles WHERE searchable @@ websearch_to_tsquery('english', '"cast iron"') ORDER BY id;
SELECT id FROM articles WHERE searchable @@ websearch_to_tsquery('english', '"cast iron" -databases') ORDER BY id;
-- the GIN index is used
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM articles WHERE searchable @@ to_tsquery('english', 'partition');
RESET enable_seqscan;
-- new rows and edits are kept up to date
INSERT INTO articles (id, title, content) VALUES (6, 'Partition maintenance from pg_cron', 'Premake and retention.');
UPDATE articles SET summary = 'Now about search' WHERE id = 2;
SELECT id FROM articles WHERE searchable @@ to_tsquery('english', 'partition | search') ORDER BY id;
-- calling again with other weights replaces the trigger and re-backfills
SELECT storage.enable_search('articles', 'searchable', 'simple', '{"content": "A", "title": "D"}') AS backfilled;
SELECT trigger_name, config, sources FROM storage.search_columns WHERE table_name = 'articles'::regclass;
SELECT count(*) FILTER (WHERE searchable = setweight(to_tsvector('simple', coalesce(content, '')), 'A')
                                        || setweight(to_tsvector('simple', title), 'D')) AS equal FROM articles;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'articles'::regclass AND NOT tgisinternal;
-- UPDATE OF the sources: an UPDATE that sets only other columns does not fire it
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'articles'::regclass AND NOT tgisinternal;
SELECT count(*) AS gin_indexes FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
 WHERE i.indrelid = 'articles'::regclass AND am.amname = 'gin';
-- rebuild_search recomputes every row once, whatever the batch size
UPDATE articles SET searchable = NULL;
SELECT storage.rebuild_search('articles', 'searchable', 2) AS rebuilt;
SELECT count(*) FILTER (WHERE searchable IS NULL) AS still_null FROM articles;
-- errors
SELECT pg_temp.sqlstate_of($$SELECT storage.enable_search('articles', 'searchable', 'english', '{"titel": "A"}')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.enable_search('articles', 'searchable', 'english', '{"title": "E"}')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.enable_search('articles', 'searchable', 'english', '{}')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.enable_search('articles', 'searchable', 'english', '["title"]')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.enable_search('articles', 'title', 'english', '{"summary": "A"}')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.enable_search('articles', 's2', 'english', '{"view_count": "A"}')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.enable_search('articles', 's2', 'nope', '{"title": "A"}')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.enable_search('storage.search_columns', 's2', 'english', '{"title": "A"}')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.rebuild_search('articles', 'summary')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.rebuild_search('articles', 'searchable', 0)$$);
-- a failed call leaves nothing behind (no column s2 was added)
SELECT count(*) AS s2_columns FROM pg_attribute WHERE attrelid = 'articles'::regclass AND attname = 's2';

-- partitioned table, hostile names: quotes, spaces, dots, unicode, a colon in a column name
CREATE SCHEMA "we""ird.schema";
CREATE TABLE "we""ird.schema"."Blog posts" (id int, "posted on" date, "Tïtle" text, "a:B" text) PARTITION BY RANGE ("posted on");
CREATE TABLE "we""ird.schema"."Blog posts 2026" PARTITION OF "we""ird.schema"."Blog posts" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE "we""ird.schema"."Blog posts rest" PARTITION OF "we""ird.schema"."Blog posts" DEFAULT;
INSERT INTO "we""ird.schema"."Blog posts" SELECT i, date '2025-12-30' + i, 'Title ' || i, 'colon column ' || i FROM generate_series(1, 10) AS i;
SELECT storage.enable_search('"we""ird.schema"."Blog posts"', 'search "vec"', 'simple', '{"Tïtle": "A", "a:B": "C"}') AS backfilled;
SELECT tableoid::regclass AS part, id, "search ""vec""" FROM "we""ird.schema"."Blog posts" ORDER BY id LIMIT 4;
INSERT INTO "we""ird.schema"."Blog posts" VALUES (11, '2026-06-01', 'Later', 'row');
SELECT "search ""vec""" FROM "we""ird.schema"."Blog posts" WHERE id = 11;
SELECT table_name, column_name, weights, index_name FROM storage.search_columns WHERE column_name = 'search "vec"';
SELECT storage.rebuild_search('"we""ird.schema"."Blog posts"', 'search "vec"', 3) AS rebuilt;
SELECT storage.rebuild_search('"we""ird.schema"."Blog posts 2026"', 'search "vec"') AS rebuilt_one_partition;
-- a manual trigger whose source is the column literally named "a:B" (weight D)
CREATE TABLE colon ("a:B" text, v tsvector);
CREATE TRIGGER colon_tsv BEFORE INSERT ON colon FOR EACH ROW EXECUTE FUNCTION storage.tsvector_update('v', 'simple', 'a:B');
INSERT INTO colon VALUES ('word');
SELECT v FROM colon;

-- leave the database as we found it
DROP FUNCTION pg_temp.expected(docs);
DROP TABLE docs, multi, multi_text, articles, colon;
DROP SCHEMA "we""ird.schema" CASCADE;
