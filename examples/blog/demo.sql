-- pg_storage_ext demo on the blog: each capability as it lands. Run by `make demo`.
\pset footer off
SET search_path = public, storage;
\echo '== pg_storage_ext'
SELECT extname, extversion, obj_description(oid, 'pg_extension') AS comment
FROM pg_extension WHERE extname = 'pg_storage_ext';
SELECT storage.version();

\echo '== The blog'
SELECT 'users' AS table_name, count(*) AS rows FROM users
UNION ALL SELECT 'articles', count(*) FROM articles
UNION ALL SELECT 'comments', count(*) FROM comments
UNION ALL SELECT 'user_favorites', count(*) FROM user_favorites
UNION ALL SELECT 'article_views', count(*) FROM article_views
ORDER BY table_name;

\echo '== JSONB: deep merge (||+) of a preferences change, and the merge patch between two versions (~>)'
SELECT preferences AS before,
       preferences ||+ '{"notifications": {"push": true}, "theme": "dark"}' AS after_deep_merge,
       preferences || '{"notifications": {"push": true}}' AS core_shallow_merge
FROM users WHERE id = 1;
SELECT preferences ~> storage.jsonb_merge_patch(preferences, '{"language": null, "page_size": 50}') AS diff
FROM users WHERE id = 1;

\echo '== JSONB: JSON Patch (RFC 6902), all or nothing'
SELECT storage.jsonb_patch(social_links,
       '[{"op": "add", "path": "/mastodon", "value": "@user2@example.social"},
         {"op": "move", "from": "/website", "path": "/homepage"}]') AS patched
FROM users WHERE id = 2;

\echo '== JSONB: JSON Schema in a CHECK constraint that says what failed'
ALTER TABLE users ADD CONSTRAINT preferences_schema CHECK (storage.json_schema_check(
  '{"type": "object",
    "properties": {
      "theme": {"enum": ["light", "dark", "system"]},
      "language": {"type": "string", "pattern": "^[a-z]{2}$"},
      "page_size": {"type": "integer", "minimum": 10, "maximum": 100},
      "notifications": {"type": "object", "additionalProperties": {"type": "boolean"}}},
    "required": ["theme"]}', preferences));
\set ON_ERROR_STOP 0
UPDATE users SET preferences = '{"theme": "neon", "page_size": 500, "notifications": {"email": "yes"}}' WHERE id = 3;
\set ON_ERROR_STOP 1
SELECT * FROM storage.json_schema_errors(
  '{"properties": {"contact": {"type": "string", "format": "email"}}}', '{"contact": "not-an-email"}');

\echo '== Full-text search: weighted tsvector kept by a trigger (title A, summary B, content C, tags B)'
CREATE EXTENSION IF NOT EXISTS pg_trgm;
SELECT storage.enable_search('articles', 'searchable', 'english',
       '{"title": "A", "summary": "B", "content": "C"}',
       sources => '{"tags": {"table": "article_tags", "key": "article_id", "column": "tag_id",
                             "lookup": {"table": "tags", "key": "id", "column": "name"}, "weight": "B"}}') AS rows_backfilled;
SELECT table_name, column_name, config, weights, trigger_name, index_name, related FROM storage.search_columns;
\echo 'The search box in one call: "partition vacuum", top 5, ranked (title matches weigh most), with snippets:'
SELECT key ->> 'id' AS id, round(rank::numeric, 3) AS rank, headline FROM storage.search('articles', 'partition vacuum', 5);
\echo 'As the user types, the last word is a prefix ("partition vac"):'
SELECT key ->> 'id' AS id, headline FROM storage.search('articles', 'partition vac', 3);
\echo 'A typo ("partiton vacum"): did you mean, and the search corrects it:'
SELECT storage.search_suggest('articles', 'partiton vacum ') AS did_you_mean;
SELECT key ->> 'id' AS id, headline FROM storage.search('articles', 'partiton vacum ', 3);
\echo 'A synonym: "cleanup" also finds vacuum:'
SELECT storage.search_synonyms('english', 'cleanup', '{vacuum}');
SELECT count(*) AS cleanup_finds FROM storage.search('articles', 'cleanup ', 1000);
\echo 'A tag: "performance" is no word of any article, only a tag (tags.name through article_tags):'
SELECT key ->> 'id' AS id, rank FROM storage.search('articles', 'performance ', 3);
\echo 'Your own conditions with the same query: published articles only'
SELECT id, title, round(ts_rank_cd(searchable, q)::numeric, 3) AS rank
FROM articles, storage.search_tsquery('english', 'partition vacuum') AS q
WHERE searchable @@ q AND status = 'published'
ORDER BY rank DESC, id
LIMIT 5;
\echo 'A new article is searchable at once; a view_count bump does not re-parse it:'
INSERT INTO articles (author_id, title, summary, content)
VALUES (1, 'Vacuum and partition maintenance', 'Keeping partitions lean', 'Autovacuum settings per partition.');
UPDATE articles SET view_count = view_count + 1 WHERE title = 'Vacuum and partition maintenance';
SELECT id, title FROM articles WHERE searchable @@ websearch_to_tsquery('english', '"partition maintenance"') ORDER BY id;

\echo '== Materialized views: registered, refreshed only when a source changed, never queued'
SELECT storage.register_matview('article_analytics', '5 minutes');
SELECT storage.register_matview('user_engagement', '15 minutes');
SELECT view, sources, depth FROM storage._matview_state ORDER BY depth, view::text;
\echo 'refresh_due: both are unpopulated, so due; article_analytics first (user_engagement reads it):'
SELECT view, outcome FROM storage.refresh_due();
\echo 'Nothing changed since: a refresh is skipped.'
SELECT storage.refresh_matview('article_analytics');
INSERT INTO comments (article_id, user_id, body) VALUES (1, 2, 'Great read');
\echo 'After a new comment:'
SELECT view, "concurrently", last_outcome, sources_changed, next_due > now() AS waits_for_interval FROM storage.matview_status ORDER BY view::text;
SELECT storage.refresh_matview('article_analytics');
SELECT article_id, title, view_count, comment_count, favorite_count FROM article_analytics ORDER BY comment_count DESC, article_id LIMIT 3;
SELECT view, outcome, "concurrently" FROM storage.matview_refresh_log ORDER BY id;

\echo '== Partitions: article_views by month; the rows already in its default partition move into their months'
SELECT storage.create_partitions('article_views', '1 month', premake => 2) AS partitions_created;
SELECT partition, lower_bound, upper_bound, is_default,
       (SELECT count(*) FROM article_views v WHERE v.tableoid = p.partition) AS rows
  FROM storage.partitions('article_views') AS p;
\echo 'A view from an old month lands in the default; ensure_partition (or the next run_maintenance) gives it its month:'
INSERT INTO article_views (article_id, created_at) VALUES (1, '2020-02-29 12:00');
SELECT storage.ensure_partition('article_views', '2020-02-29') AS month;
SELECT parent, created, dropped, detached, moved_from_default FROM storage.run_maintenance('article_views');

\echo '== Audit: every change of users, set-based capture, history and point-in-time rows'
SELECT audit.enable('users', exclude_columns => '{social_links}');
SELECT table_name, exclude_columns, capture_query FROM audit.tracked ORDER BY table_name::text;
UPDATE users SET display_name = 'Ada L.', preferences = preferences || '{"theme": "dark"}' WHERE id = 1;
SELECT clock_timestamp() AS between_changes \gset
SELECT pg_sleep(0.01) \gset
UPDATE users SET is_active = false WHERE id = 1;
\echo 'The history of user 1 (oldest first; social_links excluded from every image):'
SELECT op, changed_columns, new_row->>'display_name' AS display_name, new_row->>'is_active' AS is_active,
       new_row->'preferences'->>'theme' AS theme, db_user
  FROM audit.history('users', '{"id": 1}');
\echo 'User 1 between the two changes (row_at), and now:'
SELECT 'between' AS at, r->>'display_name' AS display_name, r->>'is_active' AS is_active
  FROM audit.row_at('users', '{"id": 1}', :'between_changes') AS r
UNION ALL
SELECT 'now', r->>'display_name', r->>'is_active' FROM audit.row_at('users', '{"id": 1}', now()) AS r;

\echo '== Roles and tenant isolation: the application role sees only its author''s articles'
SELECT role, created FROM storage.create_roles('blog_');
SELECT storage.grant_schema('public', 'blog_');
SELECT storage.enable_tenant_isolation('articles', 'author_id', 'blog.author_id');
BEGIN;
SET LOCAL ROLE blog_app_user;
SET LOCAL blog.author_id = '1';
SELECT count(*) AS articles_of_author_1, count(*) FILTER (WHERE author_id <> 1) AS of_others FROM articles;
RESET ROLE;
COMMIT;
\echo 'verify_tenant_isolation: the app role is isolated; the demo''s tables belong to a superuser, who bypasses row security, and the last row says so:'
SELECT check_name, ok FROM storage.verify_tenant_isolation('articles', '1', '2') ORDER BY 1;
\echo 'Security lints of this database:'
SELECT object, severity, issue FROM storage.security_report() ORDER BY severity, object;
SELECT storage.disable_tenant_isolation('articles');
