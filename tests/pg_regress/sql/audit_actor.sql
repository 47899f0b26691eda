-- Audit: the actor, the end user behind a pooled connection (pg_storage_ext.audit_actor_settings):
-- recorded per statement from the settings set at that moment (SET, SET LOCAL, set_config),
-- JSON settings kept as JSON, unset ones left out, NULL when none is set; rolled-back work leaves
-- no context; audit.history filters by actor; audit.log WHERE actor @> ... uses an index; only a
-- superuser chooses the settings. Leaves the database as it found it.
SET TimeZone = 'UTC';
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.plan_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || q; END $$;
CREATE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
GRANT EXECUTE ON FUNCTION pg_temp.outcome(text) TO PUBLIC;

CREATE TABLE articles (id int PRIMARY KEY, title text NOT NULL);
SELECT audit.enable('articles');
-- (defined once the library is loaded, as here by audit.enable)
SHOW pg_storage_ext.audit_actor_settings;
-- none set: NULL
INSERT INTO articles VALUES (1, 'no actor');
-- a session setting
SET app.user_id = '42';
INSERT INTO articles VALUES (2, 'by 42');
-- a pooled transaction: SET LOCAL and PostgREST's transaction-local JSON claims
BEGIN;
SET LOCAL app.user_id = '7';
SELECT set_config('request.jwt.claims', '{"sub": "u-7", "role": "authenticated", "n": [1, 2]}', true) IS NOT NULL AS claims_set;
UPDATE articles SET title = 'by 7' WHERE id = 1;
COMMIT;
-- after the transaction the session's value again
DELETE FROM articles WHERE id = 2;
-- an empty value is unset
SET app.user_id = '';
INSERT INTO articles VALUES (3, 'unset again');
-- not JSON: a string
SELECT set_config('request.jwt.claims', '{not json', false) IS NOT NULL AS broken_claims;
INSERT INTO articles VALUES (4, 'broken claims');
RESET request.jwt.claims;
RESET app.user_id;
SELECT op, pk, actor FROM audit.log WHERE table_name = 'articles' ORDER BY id;

-- rolled back: no context row with that actor
BEGIN;
SET LOCAL app.user_id = '999';
INSERT INTO articles VALUES (5, 'rolled back');
ROLLBACK;
BEGIN;
SET LOCAL app.user_id = '998';
SAVEPOINT s;
INSERT INTO articles VALUES (6, 'rolled back to a savepoint');
ROLLBACK TO SAVEPOINT s;
SET LOCAL app.user_id = '997';
INSERT INTO articles VALUES (7, 'kept');
COMMIT;
SELECT actor ->> 'app.user_id' AS actor, count(*) FROM audit._log_context
 WHERE actor IS NOT NULL AND table_name = 'articles' GROUP BY 1 ORDER BY 1;
SELECT op, pk, actor FROM audit.log WHERE table_name = 'articles' AND (pk ->> 'id')::int >= 5 ORDER BY id;

-- history by actor
SELECT op, actor FROM audit.history('articles', '{"id": 1}') ORDER BY id;
SELECT op, actor FROM audit.history('articles', '{"id": 1}', actor => '{"app.user_id": "7"}');
SELECT count(*) AS none_by_42 FROM audit.history('articles', '{"id": 1}', actor => '{"app.user_id": "42"}');
SELECT count(*) AS by_claim_role FROM audit.log
 WHERE actor @> '{"request.jwt.claims": {"role": "authenticated"}}';

-- the actor query uses the index on the contexts
SET enable_seqscan = off;
SELECT count(*) > 0 AS uses_actor_index
  FROM pg_temp.plan_lines($$SELECT * FROM audit.log WHERE actor @> '{"app.user_id": "42"}'$$) AS l
 WHERE l LIKE '%_log_context_actor%';
RESET enable_seqscan;

-- which settings are recorded: per database or role, by a superuser only
SET pg_storage_ext.audit_actor_settings = 'app.tenant';
SET app.tenant = 'acme';
SET app.user_id = '43';
INSERT INTO articles VALUES (8, 'tenant only');
SELECT actor FROM audit.log WHERE table_name = 'articles' AND pk = '{"id": 8}';
RESET app.tenant;
RESET app.user_id;
RESET pg_storage_ext.audit_actor_settings;
CREATE ROLE regress_actor_writer;
GRANT INSERT ON articles TO regress_actor_writer;
SET ROLE regress_actor_writer;
SELECT pg_temp.outcome($$SET pg_storage_ext.audit_actor_settings = ''$$) AS hide_actor;
SELECT pg_temp.outcome($$SET app.user_id = 'anyone'$$) AS own_value;
RESET ROLE;
RESET app.user_id;

SELECT audit.disable('articles');
DROP TABLE articles;
DROP ROLE regress_actor_writer;
