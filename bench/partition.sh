#!/usr/bin/env bash
# Maintenance that commits after each parent: CALL storage.run_maintenance_proc() vs CALL
# partman.run_maintenance_proc() over the parents bench/partition.sql left (100 each side, 5 in a
# quick run), each missing its newest child before every timed call. A procedure that commits
# cannot be timed inside a function, so each CALL is a psql session of its own, timed from here
# (the same connection cost on both sides); alternating runs, median of each.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"
parents=$(q -c "SELECT count(*) FROM storage.partition_config WHERE parent::text LIKE 'ours\_%'")
reset() {
  q -c "SELECT set_config('bench.parents', '$parents', false)" \
    -c "SELECT bench.drop_newest('ours_'), bench.drop_newest('pm_')" >/dev/null
}
# ms SQL: milliseconds one psql session running SQL takes
ms() {
  local t0 t1
  t0=$(date +%s%N)
  q -c "$1" >/dev/null
  t1=$(date +%s%N)
  awk -v d=$((t1 - t0)) 'BEGIN {printf "%.1f", d / 1e6}'
}
a=() b=()
for _ in $(seq "$runs"); do
  reset
  a+=("$(ms 'CALL storage.run_maintenance_proc()')")
  reset
  b+=("$(ms 'CALL partman.run_maintenance_proc()')")
done
ma=$(med "${a[@]}") mb=$(med "${b[@]}")
q -c "SELECT bench.record('partition run_maintenance_proc, $parents parents, one child each vs pg_partman run_maintenance_proc',
                          $ma, $mb, $ma / $mb, 'not slower')"
