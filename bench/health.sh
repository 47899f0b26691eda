#!/usr/bin/env bash
# storage.health() next to check_postgres (Debian's check-postgres, the anchor of the health
# checks) on the database bench/health.sql left: the seven check_postgres actions that match our
# checks (backends, hitratio, txn_wraparound, txn_idle, query_time, locks, sequence), each one
# perl process and one psql session as its users run them from Nagios, against one psql session
# running every check of storage.health() (their number is in the row's name). Timed from here;
# alternating runs, median of each.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"
command -v check_postgres >/dev/null || die "check_postgres missing (scripts/bench.sh installs Debian's check-postgres)"
db=${PGDATABASE:-postgres}
cp_run() {
  local a
  for a in backends hitratio txn_wraparound "txn_idle --warning=60s" "query_time --warning=1s" locks sequence; do
    # shellcheck disable=SC2086
    PATH=$bin:$PATH check_postgres --action=$a --dbhost=127.0.0.1 --dbport="$port" --dbuser=postgres --dbname="$db" >/dev/null 2>&1 || true
  done
}
ours_run() { q -c "SELECT count(*) FROM storage.health()" >/dev/null; }
# ms FUNCTION: milliseconds the function takes
ms() {
  local t0 t1
  t0=$(date +%s%N)
  "$1"
  t1=$(date +%s%N)
  awk -v d=$((t1 - t0)) 'BEGIN {printf "%.1f", d / 1e6}'
}
# check_postgres must have answered for real once (a failure would make it look fast)
PATH=$bin:$PATH check_postgres --action=backends --dbhost=127.0.0.1 --dbport="$port" --dbuser=postgres --dbname="$db" |
  grep -q '^POSTGRES_BACKENDS OK' || die "check_postgres does not answer"
a=() b=()
for _ in $(seq "$((runs + 2))"); do
  a+=("$(ms ours_run)")
  b+=("$(ms cp_run)")
done
ma=$(med "${a[@]}") mb=$(med "${b[@]}")
n=$(q -c "SELECT count(*) FROM storage.health()")
q -c "SELECT bench.record('health(), $n checks in one session vs check_postgres, 7 matching actions', $ma, $mb, $ma / $mb, '10x faster')"
