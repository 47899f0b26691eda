-- pg_storage_ext 0.2.0 -> 0.3.0: the hand-written part (scripts/gen-updates.py appends 0.3.0's
-- routines, views, comments and grants after the part above `-- @post-update`; `-- @new TEXT` is
-- the statement of the current full script containing TEXT). Only what is not idempotent goes
-- here: new and changed tables, roles, triggers, data moves, DROPs of removed or re-signatured
-- routines and views.



-- Audit: the actor (pg_storage_ext.audit_actor_settings) of every statement, in its context.
ALTER TABLE audit._log_context ADD COLUMN actor jsonb;
-- @new CREATE INDEX _log_context_actor
-- (a tenth argument: the actor)
DROP FUNCTION audit._context(name, name, name, name, text, inet, text[], text[], bigint);
-- (audit.log's rows from Citus workers gain the actor column: a new return type)
DROP FUNCTION audit._from_workers(text, regclass);
-- (an actor filter: a third argument)
DROP FUNCTION audit.history(regclass, jsonb);
-- @post-update
-- audit.log no longer reads it (its successor is audit._cluster_rows)
DROP FUNCTION audit._cluster_log();
-- the statements' index by context, on the log partitions made before
DO $index$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhparent = 'audit._log_statement'::pg_catalog.regclass) THEN
        PERFORM audit._index_log_partitions();
    END IF;
END
$index$;
