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
RESET search_path;
DROP SCHEMA mig CASCADE;
DELETE FROM storage._migration_history;
