-- The HTTP endpoint and the query statistics history: both need pg_storage_ext and
-- pg_stat_statements in shared_preload_libraries, so bench/endpoint.sh measures them on a
-- cluster of its own (started and stopped there). Nothing to time in this database.
SELECT 1 AS endpoint_bench_runs_in_endpoint_sh;
