-- storage.progress: one row per running long operation, gone when it ends, fails or is cancelled.
\ir ../include/helpers.sql
SET client_min_messages = warning;
SELECT count(*) AS running_now FROM storage.progress WHERE pid = pg_backend_pid();
-- an operation reports its rows and phase; the view computes the share done
SELECT storage._progress_start('copy rows', 'public.t -> public.t_new', 200) AS h \gset
SELECT storage._progress_update(:h, 50, 'page 5 of 20');
SELECT operation, target, phase, rows_done, rows_total, percent, database = current_database() AS here,
       started <= updated AS ordered
  FROM storage.progress WHERE pid = pg_backend_pid();
SELECT storage._progress_end(:h);
SELECT count(*) AS after_end FROM storage.progress WHERE pid = pg_backend_pid();
-- an error ends it too (the transaction's abort frees the slot)
BEGIN;
SELECT storage._progress_start('copy rows', 'x', -1) IS NOT NULL AS started;
SELECT count(*) AS during FROM storage.progress WHERE pid = pg_backend_pid();
SELECT 1 / 0;
ROLLBACK;
SELECT count(*) AS after_error FROM storage.progress WHERE pid = pg_backend_pid();
-- an unknown total shows as NULL; a long target is cut, not refused
SELECT storage._progress_start('op', repeat('é', 300), -1) AS h2 \gset
SELECT rows_total, percent, length(target) <= 127 AS cut FROM storage.progress WHERE pid = pg_backend_pid();
SELECT storage._progress_end(:h2);
-- pg_monitor reads it; PUBLIC does not
CREATE ROLE regress_progress_monitor IN ROLE pg_monitor;
CREATE ROLE regress_progress_nobody;
SET ROLE regress_progress_monitor;
SELECT count(*) >= 0 AS monitor_reads FROM storage.progress;
RESET ROLE;
SET ROLE regress_progress_nobody;
SELECT pg_temp.outcome('SELECT count(*) FROM storage.progress') AS nobody_reads;
RESET ROLE;
DROP ROLE regress_progress_monitor, regress_progress_nobody;
