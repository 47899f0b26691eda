-- Blog migration 0005: the seeds' analytics views, counted per table; created empty (the demo registers and refreshes them).
-- Apply the folder in order: for f in examples/blog/migrations/*.sql; do psql -v ON_ERROR_STOP=1 -f "$f"; done
SELECT storage.migrate(
    version => '0005',
    description => 'the seeds'' analytics views, counted per table; created empty (the demo registers and refreshes them)',
    up => $up$
CREATE MATERIALIZED VIEW article_analytics AS
SELECT a.id AS article_id, a.title, a.published_at,
       (SELECT count(*) FROM article_views av WHERE av.article_id = a.id) AS view_count,
       (SELECT count(*) FROM comments c WHERE c.article_id = a.id) AS comment_count,
       (SELECT count(*) FROM user_favorites uf WHERE uf.article_id = a.id) AS favorite_count
FROM articles a
WHERE a.status = 'published'
WITH NO DATA;
CREATE UNIQUE INDEX ON article_analytics (article_id);

CREATE MATERIALIZED VIEW user_engagement AS
SELECT u.id AS user_id, u.username,
       count(aa.article_id) AS articles_published,
       coalesce(sum(aa.view_count), 0) AS views_received,
       coalesce(sum(aa.comment_count), 0) AS comments_received,
       (SELECT count(*) FROM comments c WHERE c.user_id = u.id) AS comments_written
FROM users u
LEFT JOIN articles a ON a.author_id = u.id
LEFT JOIN article_analytics aa ON aa.article_id = a.id
GROUP BY u.id, u.username
WITH NO DATA;
CREATE UNIQUE INDEX ON user_engagement (user_id);
$up$,
    down => $down$DROP MATERIALIZED VIEW user_engagement; DROP MATERIALIZED VIEW article_analytics$down$);
