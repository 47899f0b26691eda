-- Deterministic generated blog data: the same rows on every run (setseed + fixed timestamps).
SELECT setseed(0.42);

INSERT INTO users (username, email, display_name, is_active, preferences, social_links, created_at)
SELECT 'user' || i,
       'user' || i || '@example.com',
       'User ' || i,
       i % 10 <> 0,
       jsonb_build_object(
           'theme', (ARRAY['light', 'dark', 'system'])[1 + i % 3],
           'language', (ARRAY['en', 'fr', 'de', 'es'])[1 + i % 4],
           'notifications', jsonb_build_object('email', i % 2 = 0, 'push', i % 3 = 0),
           'page_size', 10 + (i % 5) * 10),
       CASE WHEN i % 4 = 0 THEN '{}'::jsonb
            ELSE jsonb_build_object('website', 'https://blog.example.com/~user' || i) END,
       timestamptz '2026-01-01 00:00+00' + make_interval(hours => i)
FROM generate_series(1, 500) AS i;

INSERT INTO tags (name)
SELECT unnest(ARRAY['postgres', 'rust', 'databases', 'performance', 'search', 'json', 'partitioning', 'audit']);

WITH words AS (
    SELECT ARRAY['postgres', 'index', 'query', 'vacuum', 'partition', 'rust', 'extension', 'planner',
                 'json', 'schema', 'trigger', 'replica', 'backup', 'latency', 'throughput', 'search',
                 'ranking', 'storage', 'audit', 'history', 'cache', 'lock', 'transaction', 'commit'] AS w
)
INSERT INTO articles (author_id, title, summary, content, status, view_count, published_at, created_at)
SELECT 1 + (i * 7) % 500,
       initcap(w[1 + i % 24] || ' ' || w[1 + (i * 5) % 24] || ' in practice #' || i),
       'Notes on ' || w[1 + (i * 3) % 24] || ' and ' || w[1 + (i * 11) % 24],
       (SELECT string_agg(w[1 + ((i * 13 + k * 7) % 24)], ' ') FROM generate_series(1, 120) AS k),
       CASE WHEN i % 5 = 0 THEN 'draft' ELSE 'published' END,
       (i * 37) % 1000,
       CASE WHEN i % 5 = 0 THEN NULL ELSE timestamptz '2026-02-01 00:00+00' + make_interval(hours => i * 3) END,
       timestamptz '2026-02-01 00:00+00' + make_interval(hours => i * 3)
FROM words, generate_series(1, 2000) AS i;

INSERT INTO article_tags (article_id, tag_id)
SELECT a.id, 1 + (a.id * k) % 8
FROM articles a, generate_series(1, 2) AS k
ON CONFLICT DO NOTHING;

INSERT INTO comments (article_id, user_id, body, created_at)
SELECT 1 + (i * 17) % 2000, 1 + (i * 31) % 500, 'Comment ' || i || ' on this article.',
       timestamptz '2026-03-01 00:00+00' + make_interval(mins => i * 7)
FROM generate_series(1, 6000) AS i;

INSERT INTO user_favorites (user_id, article_id, created_at)
SELECT 1 + (i * 13) % 500, 1 + (i * 29) % 2000, timestamptz '2026-03-01 00:00+00' + make_interval(mins => i * 11)
FROM generate_series(1, 3000) AS i
ON CONFLICT DO NOTHING;

INSERT INTO article_views (article_id, user_id, created_at)
SELECT 1 + (i * 7919) % 2000, CASE WHEN i % 3 = 0 THEN NULL ELSE 1 + (i * 104729) % 500 END,
       timestamptz '2026-01-01 00:00+00' + make_interval(mins => i * 5)
FROM generate_series(1, 20000) AS i;

ANALYZE;
