# Helpers of the pgbench workloads (bench/NAME.sh); source it with the cluster's port in $port.
# The workload's database comes in PGDATABASE (scripts/bench.sh).
# shellcheck shell=bash
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
bin=$("$(find_pg_config)" --bindir)
secs=${BENCH_PGBENCH_SECS:-5}
runs=${BENCH_PGBENCH_RUNS:-3}
q() { scripts/cluster.sh psql bench "$port" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
# tps FILE [pgbench options]: transactions per second of one run of a script.
tps() {
  local f=$1 t
  shift
  t=$(as_user "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -T "$secs" "$@" -f "$f" "${PGDATABASE:-postgres}" 2>&1 |
    awk '/^tps =/ {print $3}')
  [ -n "$t" ] || die "pgbench on $f reported no tps"
  echo "$t"
}
# median of the arguments
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# record NAME OURS BASELINE RATIO GOAL: keeps a tps figure in bench.results and prints its line.
record() { q -c "SELECT bench.record('$1', $2, $3, $4, NULLIF('$5', ''), 'tps')"; }
