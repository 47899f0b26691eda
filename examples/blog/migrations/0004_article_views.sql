-- Blog migration 0004: article_views, partitioned by month on created_at (the partition capability manages its children).
-- Apply the folder in order: for f in examples/blog/migrations/*.sql; do psql -v ON_ERROR_STOP=1 -f "$f"; done
SELECT storage.migrate(
    version => '0004',
    description => 'article_views, partitioned by month on created_at (the partition capability manages its children)',
    up => $up$
CREATE TABLE article_views (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    article_id  bigint NOT NULL,
    user_id     bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE article_views_default PARTITION OF article_views DEFAULT;
$up$,
    down => $down$DROP TABLE article_views$down$);
