-- Blog migration 0003: comments and user_favorites.
-- Apply the folder in order: for f in examples/blog/migrations/*.sql; do psql -v ON_ERROR_STOP=1 -f "$f"; done
SELECT storage.migrate(
    version => '0003',
    description => 'comments and user_favorites',
    up => $up$
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
$up$,
    down => $down$DROP TABLE user_favorites; DROP TABLE comments$down$);
