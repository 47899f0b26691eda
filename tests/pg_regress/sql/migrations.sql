-- Migrations: storage.migrate / migrate_down / lint_migration / migrations / migration_hooks.
-- Each case asserts the outcome (or the SQLSTATE and message) and what the catalog holds after.
\ir ../include/helpers.sql
SET client_min_messages = warning;
CREATE SCHEMA mig;
SET search_path = mig, public;
-- a fingerprint of the schema mig: relations, columns, indexes, constraints
CREATE FUNCTION pg_temp.fingerprint() RETURNS text LANGUAGE sql AS $$
    SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
        SELECT format('%s:%s', c.relname, c.relkind) AS x FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'mig'
        UNION ALL
        SELECT format('%s.%s:%s:%s:%s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE n.nspname = 'mig' AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL
        SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'mig'
        UNION ALL
        SELECT format('%s:%s', k.conname, pg_get_constraintdef(k.oid)) FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = 'mig'
    ) AS f
$$;

-- applied once; again with the same script: already applied
SELECT storage.migrate('1', 'users', $$CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);
                                      CREATE INDEX users_email ON users (email);$$,
                       down => 'DROP TABLE users');
SELECT storage.migrate('1', 'users', $$CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);
                                      CREATE INDEX users_email ON users (email);$$,
                       down => 'DROP TABLE users');
-- the migration's SQL ran with the caller's search_path: the table is in mig
SELECT to_regclass('mig.users') IS NOT NULL AS in_caller_schema;
-- checksum drift: the same version with another script names both checksums
SELECT regexp_replace(pg_temp.outcome($$SELECT storage.migrate('1', 'users', 'CREATE TABLE users (id int)')$$), '[0-9a-f]{64}', '<sha256>', 'g') AS drift;
INSERT INTO users SELECT g, 'u' || g || '@example.com' FROM generate_series(1, 100) g;

-- a failing post_check leaves no trace of up, and the attempt is recorded
SELECT pg_temp.outcome($$SELECT storage.migrate('2', 'articles', 'CREATE TABLE articles (id bigint PRIMARY KEY)', post_check => 'false')$$) AS post_check;
SELECT to_regclass('mig.articles') IS NULL AS no_trace;
-- a pre_check that fails, a statement that errors: the same
SELECT pg_temp.outcome($$SELECT storage.migrate('2', 'articles', 'CREATE TABLE articles (id bigint PRIMARY KEY)', pre_check => 'SELECT count(*) = 0 FROM users')$$) AS pre_check;
SELECT pg_temp.outcome($$SELECT storage.migrate('2', 'articles', 'CREATE TABLE articles (id bigint PRIMARY KEY); SELECT 1/0')$$) AS failing_statement;
SELECT to_regclass('mig.articles') IS NULL AS still_no_trace;
SELECT version, status, error FROM storage._migration_history ORDER BY id;
-- a failed version is applied again, corrected (no repair step)
SELECT storage.migrate('2', 'articles', $$CREATE TABLE articles (id bigint PRIMARY KEY, author_id bigint NOT NULL, title text);$$,
                       down => 'DROP TABLE articles',
                       pre_check => 'SELECT count(*) = 100 FROM users',
                       post_check => $$SELECT to_regclass('articles') IS NOT NULL$$);
SELECT version, status, has_down, error IS NULL AS no_error, execution_time IS NOT NULL AS timed, applied_by FROM storage.migrations ORDER BY version;

-- out of order: refused unless allowed
SELECT pg_temp.outcome($$SELECT storage.migrate('1.5', 'old', 'CREATE TABLE old (id int)')$$) AS out_of_order;
SELECT storage.migrate('1.5', 'old', 'CREATE TABLE old (id int)', allow => ARRAY['out_of_order']);
-- versions compare part by part, numbers as numbers
SELECT storage._version_key('1.10') > storage._version_key('1.9') AS numeric_parts,
       storage._version_key('2024_01_02') > storage._version_key('2024_01_01_5') AS dates;

-- lint: each rule with a case that fires and one that does not
SELECT statement, rule, severity FROM storage.lint_migration($$
    CREATE INDEX ON users (email);
    CREATE INDEX CONCURRENTLY ON users (email);
    CREATE TABLE fresh (id int);
    CREATE INDEX ON fresh (id);
    ALTER TABLE users ADD COLUMN a int NOT NULL;
    ALTER TABLE users ADD COLUMN b int NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN c timestamptz DEFAULT clock_timestamp();
    ALTER TABLE users ADD COLUMN d timestamptz DEFAULT now();
    ALTER TABLE users ADD COLUMN e bigserial;
    ALTER TABLE users ALTER COLUMN id TYPE numeric;
    ALTER TABLE users ALTER COLUMN email TYPE varchar(10);
    ALTER TABLE users ALTER COLUMN email TYPE text;
    ALTER TABLE articles ADD CONSTRAINT fk FOREIGN KEY (author_id) REFERENCES users;
    ALTER TABLE articles ADD CONSTRAINT fk2 FOREIGN KEY (author_id) REFERENCES users NOT VALID;
    ALTER TABLE articles ADD CONSTRAINT ck CHECK (id > 0);
    ALTER TABLE articles ADD CONSTRAINT ck2 CHECK (id > 0) NOT VALID;
    ALTER TABLE fresh ADD CONSTRAINT fk3 FOREIGN KEY (id) REFERENCES users;
    DROP TABLE fresh;
    ALTER TABLE users DROP COLUMN email;
    ALTER TABLE users RENAME TO customers;
    ALTER TABLE users RENAME COLUMN email TO mail;
    VACUUM FULL users;
$$) ORDER BY statement, rule;
-- ACCESS EXCLUSIVE on a large table (the threshold lowered to this one's size)
SET pg_storage_ext.migration_large_table_bytes = 1;
SELECT statement, rule, severity, message FROM storage.lint_migration('ALTER TABLE users ADD COLUMN z int; ALTER TABLE users ALTER COLUMN email SET STATISTICS 100');
RESET pg_storage_ext.migration_large_table_bytes;
-- outside a transaction, CONCURRENTLY is fine
SELECT count(*) AS findings_non_transactional FROM storage.lint_migration('CREATE INDEX CONCURRENTLY ON users (email)', false);
-- a syntax error is PostgreSQL's
SELECT pg_temp.outcome($$SELECT * FROM storage.lint_migration('CREATE TABLE (')$$) AS syntax;

-- migrate refuses error-level findings unless allowed; warnings are recorded
SELECT regexp_replace(pg_temp.outcome($$SELECT storage.migrate('3', 'email index', 'CREATE INDEX users_email2 ON users (email)')$$), E'\n', ' ', 'g') AS refused;
SELECT storage.migrate('3', 'email index', 'CREATE INDEX users_email2 ON users (email)', down => 'DROP INDEX users_email2',
                       allow => ARRAY['require-concurrent-index-creation']);
SELECT version, jsonb_path_query_array(lint_accepted, '$[*].rule') AS accepted FROM storage.migrations WHERE version = '3';

-- post-migration validation: a constraint left NOT VALID is reported in the result
SELECT storage.migrate('4', 'fk', 'ALTER TABLE articles ADD CONSTRAINT articles_author FOREIGN KEY (author_id) REFERENCES users NOT VALID',
                       down => 'ALTER TABLE articles DROP CONSTRAINT articles_author');
SELECT jsonb_path_query_array(validation, '$[*].check') AS validation FROM storage.migrations WHERE version = '4';

-- migrate_down: only the latest applied one, back to the catalog before it
SELECT pg_temp.outcome($$SELECT storage.migrate_down('3')$$) AS not_latest;
SELECT pg_temp.fingerprint() AS before_4 \gset
SELECT storage.migrate_down('4');
SELECT storage.migrate_down('3');
SELECT storage.migrate('4', 'fk', 'ALTER TABLE articles ADD CONSTRAINT articles_author FOREIGN KEY (author_id) REFERENCES users NOT VALID',
                       down => 'ALTER TABLE articles DROP CONSTRAINT articles_author');
SELECT pg_temp.fingerprint() AS before_down \gset
-- CONCURRENTLY in a transactional migration: a warning, then PostgreSQL's error; nothing kept
SELECT pg_temp.outcome($$SELECT storage.migrate('5', 'views', 'ALTER TABLE articles ADD COLUMN views bigint; CREATE INDEX CONCURRENTLY articles_views ON articles (views)')$$) AS concurrently_in_transaction;
SELECT storage.migrate('5', 'views', 'ALTER TABLE articles ADD COLUMN views bigint DEFAULT 0; ALTER TABLE articles ALTER COLUMN title SET NOT NULL',
                       down => 'ALTER TABLE articles ALTER COLUMN title DROP NOT NULL; ALTER TABLE articles DROP COLUMN views');
SELECT pg_temp.fingerprint() = :'before_down' AS changed_is_same;
SELECT storage.migrate_down('5');
SELECT pg_temp.fingerprint() = :'before_down' AS restored;
SELECT version, status FROM storage.migrations ORDER BY storage._version_key(version);

-- hooks run inside the migration, in order, with the caller's search_path
CREATE TABLE hook_log (at serial, what text);
INSERT INTO storage.migration_hooks (phase, position, sql) VALUES
    ('before', 1, $$INSERT INTO hook_log (what) VALUES ('before')$$),
    ('after', 1, $$INSERT INTO hook_log (what) SELECT 'after: ' || count(*) FROM information_schema.tables WHERE table_name = 'tags'$$);
SELECT storage.migrate('6', 'tags', 'CREATE TABLE tags (id int)');
SELECT what FROM hook_log ORDER BY at;
-- a failing hook fails the migration
INSERT INTO storage.migration_hooks (phase, position, sql) VALUES ('after', 2, 'SELECT 1/0');
SELECT pg_temp.outcome($$SELECT storage.migrate('7', 'more', 'CREATE TABLE more (id int)')$$) AS failing_hook;
SELECT to_regclass('mig.more') IS NULL AS hook_rolled_back, (SELECT count(*) FROM hook_log) AS hook_rows;
DELETE FROM storage.migration_hooks;
-- the latest has no down script
SELECT pg_temp.outcome($$SELECT storage.migrate_down('6')$$) AS no_down;

-- who may: the extension owner; not PUBLIC, not pg_monitor (who may read the view)
CREATE ROLE regress_mig_monitor IN ROLE pg_monitor;
SET ROLE regress_mig_monitor;
SELECT pg_temp.outcome($$SELECT storage.migrate('8', 'x', 'SELECT 1')$$) AS monitor_migrates;
SELECT count(*) > 0 AS monitor_reads FROM storage.migrations;
RESET ROLE;
DROP ROLE regress_mig_monitor;

-- stored SQL is written only by the extension (issue 35, C1): a delegated migrator holding every
-- table privilege (as the README once said to grant) still cannot insert, rewrite or delete a
-- migration row or a hook; the migrator may migrate, as itself
CREATE ROLE regress_mig_bob IN ROLE storage_migrator;
GRANT ALL ON SCHEMA mig TO regress_mig_bob;
GRANT ALL ON storage._migration_history, storage.migration_hooks TO regress_mig_bob;
SET ROLE regress_mig_bob;
SELECT pg_temp.outcome($$INSERT INTO storage._migration_history (version, description, checksum, up, transactional, status, applied_by)
    VALUES ('9', 'add index', encode(sha256(convert_to('CREATE INDEX bt_j ON mig.users (id)', 'UTF8')), 'hex'),
            'ALTER ROLE regress_mig_bob SUPERUSER', false, 'pending', 'postgres')$$) AS forged_row;
SELECT pg_temp.outcome($$UPDATE storage._migration_history SET down = 'ALTER ROLE regress_mig_bob SUPERUSER' WHERE version = '4'$$) AS forged_down;
SELECT pg_temp.outcome($$UPDATE storage._migration_history SET post_check = '(SELECT true FROM pg_sleep(0))' WHERE version = '4'$$) AS forged_post_check;
SELECT pg_temp.outcome($$INSERT INTO storage.migration_hooks (phase, sql) VALUES ('before', 'ALTER ROLE regress_mig_bob SUPERUSER')$$) AS forged_hook;
SELECT pg_temp.outcome($$DELETE FROM storage._migration_history$$) AS deleted;
SELECT pg_temp.outcome($$TRUNCATE storage._migration_history$$) AS truncated;
-- the serializing lock is not the shared advisory key space: a migrator cannot take it by hand
SELECT pg_temp.outcome($$LOCK TABLE storage._migration_lock IN EXCLUSIVE MODE$$) AS lock_by_hand;
-- a migration of its own runs as itself: objects belong to it, applied_by names it, and a script
-- that tries to take more rights fails (it is not a superuser afterwards)
SELECT storage.migrate('8', 'bob''s table', 'CREATE TABLE bob_t (id int)', down => 'DROP TABLE bob_t');
SELECT pg_temp.outcome($$SELECT storage.migrate('9', 'escalate', 'ALTER ROLE regress_mig_bob SUPERUSER')$$) AS escalate;
SELECT pg_temp.outcome($$SELECT storage.migrate('9', 'escalate', 'SET ROLE postgres; ALTER ROLE regress_mig_bob SUPERUSER')$$) AS set_role;
-- checks are one expression (L4): statements glued on are refused before anything runs
SELECT pg_temp.outcome($$SELECT storage.migrate('9', 'x', 'SELECT 1', pre_check => '1); ALTER ROLE regress_mig_bob SUPERUSER; SELECT (true')$$) AS pre_check_statements;
SELECT pg_temp.outcome($$SELECT storage.migrate('9', 'x', 'SELECT 1', post_check => 'true) FROM pg_class WHERE (true')$$) AS post_check_clauses;
SELECT pg_temp.outcome($$SELECT storage.migrate('9', 'x', 'SELECT 1', post_check => 'true) -- ')$$) AS post_check_comment;
RESET ROLE;
SELECT rolsuper AS bob_is_superuser FROM pg_roles WHERE rolname = 'regress_mig_bob';
SELECT pg_get_userbyid(relowner) AS bob_t_owner FROM pg_class WHERE oid = 'mig.bob_t'::regclass;
SELECT version, applied_by, status FROM storage.migrations WHERE version IN ('8', '9') ORDER BY version;
-- a down script bob wrote runs as bob when the superuser reverts it (never as the superuser)
SET ROLE regress_mig_bob;
SELECT storage.migrate('11', 'bob''s down', 'CREATE TABLE bob_v (id int)', down => 'ALTER ROLE regress_mig_bob SUPERUSER; DROP TABLE bob_v');
RESET ROLE;
SELECT regexp_replace(pg_temp.outcome($$SELECT storage.migrate_down('11')$$), E'\n.*', '') AS down_as_author;
SELECT rolsuper AS bob_is_superuser FROM pg_roles WHERE rolname = 'regress_mig_bob';
-- hooks run as their author with the search_path they were written with
INSERT INTO storage.migration_hooks (phase, sql) VALUES ('before', $$INSERT INTO hook_log (what) VALUES ('hook as ' || current_user)$$);
SELECT author = current_user AS author_is_writer, search_path FROM storage.migration_hooks;
SET ROLE regress_mig_bob;
SET search_path = public;
SELECT storage.migrate('12', 'bob again', 'CREATE TABLE mig.bob_w (id int)');
RESET ROLE;
SET search_path = mig, public;
SELECT what = 'hook as ' || current_user AS hook_ran_as_author FROM hook_log WHERE what LIKE 'hook as %';
DELETE FROM storage.migration_hooks;

-- no SQL text aborts the server (C2): nestings 1,000 to 100,000 deep of every kind, in a column
-- default (the linter walks it) and as a statement, through lint_migration and migrate; each
-- gives a result or an error (the run fails on a crashed backend in the server log)
CREATE TABLE deep (id int);
CREATE FUNCTION pg_temp.deep(kind text, n int) RETURNS text LANGUAGE sql AS $f$
    SELECT CASE kind
        WHEN 'calls' THEN repeat('abs(', n) || '1' || repeat(')', n)
        WHEN 'operators' THEN '1' || repeat(' + 1', n)
        WHEN 'nested operators' THEN repeat('1 + (', n) || '1' || repeat(')', n)
        WHEN 'concatenation' THEN $$'a'$$ || repeat($$ || 'a'$$, n)
        WHEN 'case' THEN repeat('CASE WHEN true THEN ', n) || '1' || repeat(' END', n)
        WHEN 'subselects' THEN repeat('(SELECT ', n) || '1' || repeat(')', n)
        WHEN 'arrays' THEN 'ARRAY' || repeat('[', n) || '1' || repeat(']', n)
        WHEN 'parentheses' THEN repeat('(', n) || '1' || repeat(')', n)
    END
$f$;
CREATE TEMP TABLE deep_outcomes AS
SELECT k.kind, d.n, w.form,
       pg_temp.outcome(format('SELECT count(*) FROM storage.lint_migration(%L)', q.sql)) AS lint,
       pg_temp.outcome(format('SELECT storage.migrate(%L, %L, %L, post_check => %L)', 'deep', 'deep', q.sql, 'false')) AS migrate
  FROM unnest(ARRAY['calls', 'operators', 'nested operators', 'concatenation', 'case', 'subselects', 'arrays', 'parentheses']) AS k(kind),
       unnest(ARRAY[1000, 10000, 100000]) AS d(n),
       unnest(ARRAY['default', 'statement']) AS w(form),
       LATERAL (SELECT CASE w.form WHEN 'default' THEN 'ALTER TABLE deep ADD COLUMN z int DEFAULT ' || pg_temp.deep(k.kind, d.n)
                                   ELSE 'SELECT ' || pg_temp.deep(k.kind, d.n) END AS sql) AS q;
-- every outcome is a result or an expected error: stack depth (54001), the parser's limits
-- (42601, 54000), a type error of the generated SQL (42804), the failing post_check (23514)
SELECT count(*) AS cases,
       count(*) FILTER (WHERE lint ~ '^(ok|54001|54000|42601|42804)' AND migrate ~ '^(ok|54001|54000|42601|42804|23514)') AS expected,
       count(*) FILTER (WHERE lint LIKE '54001%' OR migrate LIKE '54001%') > 0 AS some_too_deep
  FROM deep_outcomes;
SELECT kind, n, form, lint, migrate FROM deep_outcomes
 WHERE NOT (lint ~ '^(ok|54001|54000|42601|42804)' AND migrate ~ '^(ok|54001|54000|42601|42804|23514)');
DROP TABLE deep_outcomes;
DROP TABLE deep;
RESET search_path;
DROP SCHEMA mig CASCADE;
DELETE FROM storage._migration_history;
DROP OWNED BY regress_mig_bob;
DROP ROLE regress_mig_bob;
