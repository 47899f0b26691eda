-- Blog migration 0002: articles and tags.
-- Apply the folder in order: for f in examples/blog/migrations/*.sql; do psql -v ON_ERROR_STOP=1 -f "$f"; done
SELECT storage.migrate(
    version => '0002',
    description => 'articles and tags',
    up => $up$
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
$up$,
    down => $down$DROP TABLE article_tags; DROP TABLE tags; DROP TABLE articles$down$);
