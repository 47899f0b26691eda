-- Full-text search benchmarks: INSERT of blog articles (title, summary, ~2 KB content) through our
-- 3-column weighted trigger vs the built-in tsvector_update_trigger (unweighted) and a PL/pgSQL
-- weighted trigger (bench/baselines/search_plpgsql.sql); UPDATE of a non-source column
-- (view_count) with our trigger vs no trigger, vs PostgreSQL's cheapest C trigger (the floor of any
-- row trigger), and vs the built-in trigger.
-- Rows: 20000 by default (each run parses ~40 MB of text); `psql -v rows=100000` for more.
\if :{?rows}
\else
SELECT (20000 * :scale)::int AS rows \gset
\endif
\ir baselines/search_plpgsql.sql

CREATE TABLE bench.vocab AS
SELECT i, substr(md5(i::text), 1, 3 + i % 8) AS w FROM generate_series(0, 999) AS i;
CREATE TABLE bench.articles_src AS
SELECT a AS id,
       (SELECT string_agg(w, ' ' ORDER BY j) FROM bench.vocab, generate_series(1, 6) AS j WHERE i = (a * 7 + j * 131) % 1000) AS title,
       (SELECT string_agg(w, ' ' ORDER BY j) FROM bench.vocab, generate_series(1, 25) AS j WHERE i = (a * 11 + j * 37) % 1000) AS summary,
       (SELECT string_agg(w, ' ' ORDER BY j) FROM bench.vocab, generate_series(1, 300) AS j WHERE i = (a * 13 + j * 17 + j * j) % 1000) AS content
  FROM generate_series(1, :rows) AS a;
SELECT format('articles: %s rows, content %s bytes on average', count(*), round(avg(length(content)))) FROM bench.articles_src;

CREATE TABLE bench.s_ours (id int, title text, summary text, content text, view_count int DEFAULT 0, searchable tsvector);
CREATE TABLE bench.s_builtin (LIKE bench.s_ours INCLUDING DEFAULTS);
CREATE TABLE bench.s_plpgsql (LIKE bench.s_ours INCLUDING DEFAULTS);
CREATE TABLE bench.s_bare (LIKE bench.s_ours INCLUDING DEFAULTS);
-- the floor of any BEFORE ROW trigger: PostgreSQL's own C trigger that only compares the rows
CREATE TABLE bench.s_floor (LIKE bench.s_ours INCLUDING DEFAULTS);
CREATE TRIGGER t BEFORE UPDATE ON bench.s_floor FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
-- as storage.enable_search creates it: UPDATE OF the source columns
CREATE TRIGGER t BEFORE INSERT OR UPDATE OF title, summary, content ON bench.s_ours FOR EACH ROW
    EXECUTE FUNCTION storage.tsvector_update('searchable', 'pg_catalog.english', 'title:A', 'summary:B', 'content:C');
-- the same trigger firing on every UPDATE (as a hand-written CREATE TRIGGER without a column list)
CREATE TABLE bench.s_ours_all (LIKE bench.s_ours INCLUDING DEFAULTS);
CREATE TRIGGER t BEFORE INSERT OR UPDATE ON bench.s_ours_all FOR EACH ROW
    EXECUTE FUNCTION storage.tsvector_update('searchable', 'pg_catalog.english', 'title:A', 'summary:B', 'content:C');
CREATE TRIGGER t BEFORE INSERT OR UPDATE ON bench.s_builtin FOR EACH ROW
    EXECUTE FUNCTION tsvector_update_trigger(searchable, 'pg_catalog.english', title, summary, content);
CREATE TRIGGER t BEFORE INSERT OR UPDATE ON bench.s_plpgsql FOR EACH ROW
    EXECUTE FUNCTION bench.articles_tsv_plpgsql();
VACUUM ANALYZE bench.articles_src;

SELECT bench.compare('search INSERT, weighted trigger vs built-in tsvector_update_trigger',
    'INSERT INTO bench.s_ours (id, title, summary, content) SELECT id, title, summary, content FROM bench.articles_src',
    'INSERT INTO bench.s_builtin (id, title, summary, content) SELECT id, title, summary, content FROM bench.articles_src',
    'TRUNCATE bench.s_ours, bench.s_builtin', 3, '<= 1.05');
SELECT bench.compare('search INSERT, weighted trigger vs PL/pgSQL weighted trigger',
    'INSERT INTO bench.s_ours (id, title, summary, content) SELECT id, title, summary, content FROM bench.articles_src',
    'INSERT INTO bench.s_plpgsql (id, title, summary, content) SELECT id, title, summary, content FROM bench.articles_src',
    'TRUNCATE bench.s_ours, bench.s_plpgsql', 3, 'not slower');

-- UPDATE runs: before each timed statement both tables are reloaded with the same rows (trigger
-- disabled while loading), so neither run pays for the other's dead row versions.
TRUNCATE bench.s_ours;
INSERT INTO bench.s_ours (id, title, summary, content) SELECT id, title, summary, content FROM bench.articles_src;
CREATE TABLE bench.s_loaded AS SELECT * FROM bench.s_ours;
CREATE FUNCTION bench.reload(VARIADIC tables regclass[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE t regclass;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        EXECUTE format('ALTER TABLE %s DISABLE TRIGGER USER', t);
        EXECUTE format('TRUNCATE %s', t);
        EXECUTE format('INSERT INTO %s SELECT * FROM bench.s_loaded', t);
        EXECUTE format('ALTER TABLE %s ENABLE TRIGGER USER', t);
    END LOOP;
END $$;
SELECT bench.compare('search UPDATE of view_count, weighted trigger vs no trigger',
    'UPDATE bench.s_ours SET view_count = view_count + 1',
    'UPDATE bench.s_bare SET view_count = view_count + 1',
    'SELECT bench.reload(''bench.s_ours'', ''bench.s_bare'')', 7, '<= 1.1');
SELECT bench.compare('search UPDATE of view_count, no-op C trigger (floor) vs no trigger',
    'UPDATE bench.s_floor SET view_count = view_count + 1',
    'UPDATE bench.s_bare SET view_count = view_count + 1',
    'SELECT bench.reload(''bench.s_floor'', ''bench.s_bare'')', 7);
SELECT bench.compare('search UPDATE of view_count, weighted trigger without UPDATE OF vs no-op C trigger (floor)',
    'UPDATE bench.s_ours_all SET view_count = view_count + 1',
    'UPDATE bench.s_floor SET view_count = view_count + 1',
    'SELECT bench.reload(''bench.s_ours_all'', ''bench.s_floor'')', 7);
SELECT bench.compare('search UPDATE of view_count, weighted trigger vs built-in trigger',
    'UPDATE bench.s_ours SET view_count = view_count + 1',
    'UPDATE bench.s_builtin SET view_count = view_count + 1',
    'SELECT bench.reload(''bench.s_ours'', ''bench.s_builtin'')', 3, '10x faster');

DROP TABLE bench.vocab, bench.articles_src, bench.s_ours, bench.s_builtin, bench.s_plpgsql, bench.s_bare, bench.s_floor, bench.s_loaded, bench.s_ours_all;
DROP FUNCTION bench.reload(regclass[]);
DROP FUNCTION bench.articles_tsv_plpgsql();
