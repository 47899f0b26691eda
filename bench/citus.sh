#!/usr/bin/env bash
# Scale-out on Citus: starts the Citus tier's coordinator and two workers (scripts/citus.sh, built
# from the vendored source into the PostgreSQL in use), runs bench/_citus_cluster.sql on the
# coordinator with the harness, and copies its figures into this workload's bench.results. Without
# the vendored source it says so and records nothing. Run by scripts/bench.sh after bench/citus.sql.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"
cd "$PGSE_ROOT"
if ! scripts/citus.sh available; then
  echo "  citus: skipped: no vendored Citus source at $(scripts/citus.sh where)"
  exit 0
fi
scripts/citus.sh build >/dev/null
cport=28870
env -u PGDATABASE scripts/citus.sh stop $cport >/dev/null 2>&1 || true
env -u PGDATABASE scripts/citus.sh start $cport
trap 'scripts/citus.sh stop '$cport EXIT
cq() { PGDATABASE=postgres scripts/cluster.sh psql citus0 $cport -X -q -At -v ON_ERROR_STOP=1 "$@"; }
cq -c 'CREATE EXTENSION pg_storage_ext' -f bench/_harness.sql
[ "${BENCH_QUICK:-}" ] && cq -c "ALTER DATABASE postgres SET bench.quick = on"
cq -v scale="${BENCH_SCALE:-1}" -f bench/_citus_cluster.sql
cq -c "\\copy (SELECT workload, ours, baseline, unit, ratio, goal, met FROM bench.results ORDER BY id) TO STDOUT" |
  q -c "\\copy bench.results (workload, ours, baseline, unit, ratio, goal, met) FROM STDIN"
