-- The blog every pg_storage_ext example uses (from the plan documents in shared/seeds).
-- article_views is the partitioning case; articles carries the weighted `searchable` tsvector;
-- users carries jsonb preferences and social_links.
CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    email         text NOT NULL UNIQUE,
    display_name  text,
    is_active     boolean NOT NULL DEFAULT true,
    preferences   jsonb NOT NULL DEFAULT '{}',
    social_links  jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_users_active ON users (email) WHERE is_active;
CREATE INDEX idx_users_preferences ON users USING gin (preferences jsonb_path_ops);

CREATE TABLE articles (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id     bigint NOT NULL REFERENCES users (id),
    title         text NOT NULL,
    summary       text,
    content       text NOT NULL,
    status        text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'archived')),
    view_count    bigint NOT NULL DEFAULT 0,
    searchable    tsvector,
    published_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_articles_author_status_covering ON articles (author_id, status) INCLUDE (id, title, published_at);

CREATE TABLE tags (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name  text NOT NULL UNIQUE
);

CREATE TABLE article_tags (
    article_id  bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    tag_id      bigint NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (article_id, tag_id)
);

CREATE TABLE comments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    article_id  bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users (id),
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_comments_article ON comments (article_id);

CREATE TABLE user_favorites (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    article_id  bigint NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, article_id)
);

-- Partitioned by month on created_at (the partition capability manages its children).
CREATE TABLE article_views (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    article_id  bigint NOT NULL,
    user_id     bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE article_views_default PARTITION OF article_views DEFAULT;

-- The seeds' analytics views, counted per table (the seeds' single query over three LEFT JOINs
-- multiplies the counts). Created empty; the demo registers and refreshes them.
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
