-- Blog migration 0001: users, with jsonb preferences and social links.
-- Apply the folder in order: for f in examples/blog/migrations/*.sql; do psql -v ON_ERROR_STOP=1 -f "$f"; done
SELECT storage.migrate(
    version => '0001',
    description => 'users, with jsonb preferences and social links',
    up => $up$
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
$up$,
    down => $down$DROP TABLE users$down$);
