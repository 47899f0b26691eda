-- Materialized view benchmarks: 50 registered matviews over blog-like data. refresh_due() when no
-- source changed vs refreshing all 50; a refresh after one source row changed vs plain
-- REFRESH ... CONCURRENTLY; the cost change tracking adds to single-row INSERT statements.
CREATE TABLE bench.mv_articles (id int PRIMARY KEY, author int NOT NULL, status text NOT NULL);
CREATE TABLE bench.mv_views (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, article_id int NOT NULL,
                             viewed_at timestamptz NOT NULL);
INSERT INTO bench.mv_articles SELECT i, i % 500, CASE WHEN i % 5 = 0 THEN 'draft' ELSE 'published' END
  FROM generate_series(1, 2000) AS i;
INSERT INTO bench.mv_views (article_id, viewed_at)
SELECT 1 + i % 2000, timestamptz '2026-01-01' + make_interval(mins => i) FROM generate_series(1, (100000 * :scale)::int) AS i;
DO $$
BEGIN
    FOR i IN 0..49 LOOP
        EXECUTE format($q$CREATE MATERIALIZED VIEW bench.mv_%s AS
            SELECT a.author, count(*) AS views, max(v.viewed_at) AS last_view
              FROM bench.mv_articles a JOIN bench.mv_views v ON v.article_id = a.id
             WHERE a.author %% 50 = %s GROUP BY a.author$q$, i, i);
        EXECUTE format('CREATE UNIQUE INDEX ON bench.mv_%s (author)', i);
        PERFORM storage.register_matview(format('bench.mv_%s', i)::regclass, '1 second');
    END LOOP;
END $$;
CREATE TABLE bench.mv_untracked (LIKE bench.mv_views INCLUDING ALL);
VACUUM ANALYZE bench.mv_articles, bench.mv_views;
SELECT count(*) AS refreshed FROM storage.refresh_due() WHERE outcome = 'refreshed';

-- every interval has elapsed, no source changed: 50 'skipped: unchanged'
CREATE FUNCTION bench.all_due() RETURNS void LANGUAGE sql AS
    $$ UPDATE storage._matview_state SET last_attempt = last_attempt - interval '1 hour' $$;
SELECT bench.compare('matview refresh_due, 50 views, no source changed, vs refreshing all 50',
    'SELECT count(*) FROM storage.refresh_due()',
    $$SELECT count(*) FROM (SELECT storage.refresh_matview(view, force => true) FROM storage.matview_config) AS r$$,
    'SELECT bench.all_due()', 5, '<= 0.05');
SELECT bench.all_due();
SELECT format('refresh_due with nothing changed: %s', string_agg(DISTINCT outcome, ', ')) FROM storage.refresh_due();

-- one source row changed, then one view refreshed by us vs by plain REFRESH ... CONCURRENTLY
SELECT bench.compare('matview refresh_matview after one change vs REFRESH CONCURRENTLY',
    'SELECT storage.refresh_matview(''bench.mv_7'')',
    'REFRESH MATERIALIZED VIEW CONCURRENTLY bench.mv_7',
    'UPDATE bench.mv_views SET viewed_at = viewed_at + interval ''1 second'' WHERE id = 7', 7, '<= 1.05');

-- single-row INSERT statements into a tracked source vs the same table untracked
CREATE FUNCTION bench.inserts(t regclass, n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..n LOOP
        EXECUTE format('INSERT INTO %s (article_id, viewed_at) VALUES ($1, $2)', t) USING 1 + i % 2000, now();
    END LOOP;
END $$;
SELECT bench.compare('matview tracking, 5000 single-row INSERT statements, tracked vs untracked source',
    'SELECT bench.inserts(''bench.mv_views'', 5000)',
    'SELECT bench.inserts(''bench.mv_untracked'', 5000)', NULL, 5, '<= 1.05');

SELECT count(*) FROM (SELECT storage.unregister_matview(view) FROM storage.matview_config) AS u;
DROP TABLE bench.mv_articles, bench.mv_views, bench.mv_untracked CASCADE;
DROP FUNCTION bench.all_due(), bench.inserts(regclass, int);
