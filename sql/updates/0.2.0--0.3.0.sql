-- pg_storage_ext 0.2.0 -> 0.3.0: the hand-written part (scripts/gen-updates.py appends 0.3.0's
-- routines, views, comments and grants after the part above `-- @post-update`; `-- @new TEXT` is
-- the statement of the current full script containing TEXT). Only what is not idempotent goes
-- here: new and changed tables, roles, triggers, data moves, DROPs of removed or re-signatured
-- routines and views.

-- No change yet.
