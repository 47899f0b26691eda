-- Scale-out on Citus (docs/citus.md): the workloads run on a Citus coordinator with two
-- workers that bench/citus.sh starts (the Citus tier's cluster, built from the vendored source);
-- they are bench/_citus_cluster.sql. Without the vendored source the workload says it skipped.
SELECT 1 AS citus_workloads_run_in_bench_citus_sh;
