-- Materialized views: registration rules and errors, change detection, refresh outcomes, order.
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

CREATE TABLE mv_articles (id int PRIMARY KEY, author int NOT NULL, views int NOT NULL DEFAULT 0);
CREATE TABLE mv_comments (id int PRIMARY KEY, article int NOT NULL) PARTITION BY RANGE (id);
CREATE TABLE mv_comments_1 PARTITION OF mv_comments FOR VALUES FROM (0) TO (1000);
INSERT INTO mv_articles SELECT i, i % 3, i * 10 FROM generate_series(1, 9) AS i;
INSERT INTO mv_comments SELECT i, 1 + i % 9 FROM generate_series(1, 30) AS i;
CREATE VIEW mv_article_stats AS
    SELECT a.id, a.author, a.views, count(c.id) AS comments
      FROM mv_articles a LEFT JOIN mv_comments c ON c.article = a.id GROUP BY a.id;
CREATE MATERIALIZED VIEW article_analytics AS SELECT * FROM mv_article_stats;
CREATE UNIQUE INDEX ON article_analytics (id);
CREATE MATERIALIZED VIEW user_engagement AS
    SELECT author, sum(views) AS views, sum(comments) AS comments FROM article_analytics GROUP BY author
    WITH NO DATA;
CREATE MATERIALIZED VIEW broken AS SELECT id, 1 / (views - views) AS boom FROM mv_articles WITH NO DATA;

-- registration: sources found through the plain view, triggers on every partition
SELECT storage.register_matview('user_engagement', '1 hour');
SELECT storage.register_matview('article_analytics', '10 minutes');
SELECT storage.register_matview('article_analytics', '10 minutes');  -- idempotent
SELECT view, sources, depth FROM storage._matview_state ORDER BY depth, view::text;
SELECT tgrelid::regclass AS tracked FROM pg_trigger WHERE tgname = 'pg_storage_ext_matview_changes' ORDER BY tgrelid::regclass::text;
SELECT view, refresh_every, "concurrently", last_outcome, sources_changed FROM storage.matview_status ORDER BY view::text;

-- errors
SELECT pg_temp.sqlstate_of($$SELECT storage.register_matview('mv_article_stats')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.register_matview('mv_articles')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.register_matview('article_analytics', '0 seconds')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.register_matview('user_engagement', '1 hour', true)$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.refresh_matview('broken')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.unregister_matview('broken')$$);
SELECT pg_temp.sqlstate_of($$SELECT storage.schedule_jobs()$$);
-- the hint names the index to create
\set VERBOSITY default
SELECT storage.register_matview('user_engagement', '1 hour', "concurrently" => true);

-- refresh_due: unpopulated views are always due; dependency order; then nothing is due
SELECT view, outcome FROM storage.refresh_due();
SELECT view, outcome FROM storage.refresh_due();
SELECT count(*) AS rows FROM user_engagement;
-- nothing changed: skipped; force refreshes anyway
SELECT storage.refresh_matview('article_analytics');
SELECT storage.refresh_matview('article_analytics', force => true);
-- a change in a partition of a source: refreshed, and the dependent view sees its source changed
INSERT INTO mv_comments VALUES (500, 1);
SELECT view, sources_changed FROM storage.matview_status ORDER BY view::text;
SELECT storage.refresh_matview('article_analytics');
SELECT comments FROM article_analytics WHERE id = 1;
SELECT view, sources_changed FROM storage.matview_status ORDER BY view::text;
SELECT storage.refresh_matview('user_engagement');
SELECT storage.refresh_matview('user_engagement');
-- partitions created later are tracked too
CREATE TABLE mv_comments_2 PARTITION OF mv_comments FOR VALUES FROM (1000) TO (2000);
INSERT INTO mv_comments VALUES (1500, 2);
SELECT storage.refresh_matview('article_analytics');
-- a rolled-back change is no change
BEGIN;
UPDATE mv_articles SET views = views + 1;
ROLLBACK;
SELECT storage.refresh_matview('article_analytics');
-- TRUNCATE counts
TRUNCATE mv_comments;
SELECT storage.refresh_matview('article_analytics');
-- a failing view is recorded; the others still refresh
SELECT storage.register_matview('broken', '1 minute');
UPDATE mv_articles SET views = views + 1 WHERE id = 1;
-- an hour passes
UPDATE storage._matview_state SET last_attempt = last_attempt - interval '1 hour';
SELECT view, outcome FROM storage.refresh_due();
SELECT view, outcome, error FROM storage.matview_refresh_log WHERE outcome <> 'refreshed' ORDER BY id;
SELECT view, "concurrently", outcome FROM storage.matview_refresh_log ORDER BY id;
SELECT view, last_outcome FROM storage.matview_status ORDER BY view::text;

-- unregister keeps history and drops triggers nobody needs
SELECT storage.unregister_matview('broken');
SELECT storage.unregister_matview('user_engagement');
SELECT storage.unregister_matview('article_analytics');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname = 'pg_storage_ext_matview_changes';
SELECT count(*) > 0 AS history_kept FROM storage.matview_refresh_log;

DROP MATERIALIZED VIEW user_engagement, article_analytics, broken;
DROP VIEW mv_article_stats;
DROP TABLE mv_articles, mv_comments;
TRUNCATE storage.matview_refresh_log;
