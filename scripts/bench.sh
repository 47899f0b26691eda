#!/usr/bin/env bash
# `make bench`: the extension in a throwaway cluster beside the anchors it is compared with; each
# bench/*.sql times its workloads against a baseline measured in the same run (bench/_harness.sql)
# and bench/NAME.sh, when present, runs after bench/NAME.sql (pgbench workloads). At the end every
# workload is printed as one row of a single table (workload, ours, baseline, ratio, goal, met?),
# and the same rows are written as CSV under the run directory, with the run's facts (dates,
# commit, machine, PostgreSQL, anchors) beside it in results-<time>.meta, from which
# scripts/bench-page.py writes docs/benchmarks.md.
#   BENCH=name       only that workload file
#   BENCH_NOTE=text  a sentence for docs/benchmarks.md about the run (what else ran meanwhile)
#   BENCH_QUICK=1    every workload at a small size, timed once, on the debug build: proves that
#                    the benchmarks run (CI); its figures are not results.
#   BENCH_PORT=n     the throwaway cluster's port (default 28820), so that two runs can share a
#                    machine (each from its own checkout: the cluster's data is under its run dir)
# Each workload file runs in a database of its own (bench_NAME, dropped after it), so no workload
# depends on what another left behind; its figures are gathered into bench.results of `postgres`.
# A workload that fails stops the run with its name, after the rows measured so far.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$PGSE_ROOT"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ) t0=$(date +%s) load0=$(cut -d' ' -f1-3 /proc/loadavg)
PGC=$(find_pg_config)
export PG_CONFIG=$PGC
quick=${BENCH_QUICK:-}
if [ -n "$quick" ]; then
  install_extension
  scale=0.05 pgbench_secs=1 pgbench_runs=1
else
  install_extension --release
  scale=1 pgbench_secs=5 pgbench_runs=3
fi
export BENCH_SCALE=$scale BENCH_PGBENCH_SECS=$pgbench_secs BENCH_PGBENCH_RUNS=$pgbench_runs

# The anchors, built from Debian source packages into the PostgreSQL in use (bench only; the
# extension does not need them): pg_partman for bench/partition.sql, check_postgres for
# bench/health.sh; supa_audit for bench/audit.sql from the vendored source (scripts/supa-audit.sh).
anchors=()
if [ ! -f "$("$PGC" --sharedir)/extension/pg_partman.control" ]; then
  step_start "pg_partman"
  built=$(pgxs_from_debian pg_partman pg-partman)
  step_end "built $built"
fi

# check_postgres (bench/health.sh), from Debian's check-postgres package
if ! command -v check_postgres >/dev/null; then
  step_start "check-postgres"
  [ "$(id -u)" = 0 ] || die "check_postgres missing: apt-get install check-postgres (as root)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends check-postgres >"$PGSE_CACHE/apt-bench.log" 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends check-postgres >"$PGSE_CACHE/apt-bench.log" 2>&1; } ||
    die "apt-get install check-postgres failed: $(tail -3 "$PGSE_CACHE/apt-bench.log")"
  step_end "installed"
fi

# supa_audit (bench/audit.sql's anchor), from its vendored source, with contrib's uuid-ossp that it
# requires, built from the source of the PostgreSQL in use (scripts/supa-audit.sh)
if scripts/supa-audit.sh available; then
  scripts/supa-audit.sh build
elif [ ! -f "$("$PGC" --sharedir)/extension/supa_audit.control" ]; then
  echo "supa_audit: skipped, no vendored source at $(scripts/supa-audit.sh where): bench/audit.sql leaves out its rows against supa_audit"
fi

port=${BENCH_PORT:-28820}
[[ $port =~ ^[0-9]+$ ]] || die "BENCH_PORT=$port is not a port number"
scripts/cluster.sh start bench $port
trap 'scripts/cluster.sh stop bench '$port EXIT
# notices (DROP … CASCADE lists) are not figures
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
psql_bench() { scripts/cluster.sh psql bench $port -X -q -At -v ON_ERROR_STOP=1 "$@"; }
psql_bench -c 'CREATE EXTENSION pg_storage_ext' -f bench/_harness.sql
for a in pg_partman pg_cron supa_audit uuid-ossp; do
  v=$(psql_bench -c "SELECT default_version FROM pg_available_extensions WHERE name = '$a'")
  anchors+=("$a ${v:-missing}")
done
anchors+=("check_postgres $(check_postgres --version 2>/dev/null | awk '{print $NF}')")
echo "PostgreSQL $("$PGC" --version | awk '{print $2}'), $(nproc) cores, $(uname -m); pg_storage_ext $(psql_bench -c 'SELECT storage.version()')"
echo "anchors: $(IFS=,; echo "${anchors[*]}" | sed 's/,/, /g')"
[ -n "$quick" ] && echo "quick run (BENCH_QUICK=1): scale $scale, one timing each, debug build; not results"

out=$(run_dir)/bench-results
mkdir -p "$out"
csv=$out/results-$(date -u +%Y%m%dT%H%M%SZ)${quick:+-quick}.csv

# The one table of every figure measured so far, and its CSV.
report() {
  echo "== results"
  scripts/cluster.sh psql bench $port -X -q -P footer=off -v ON_ERROR_STOP=1 -c \
    "SELECT workload, round(ours::numeric, 1) AS ours, round(baseline::numeric, 1) AS baseline, unit,
            round(ratio::numeric, 3) AS ratio, goal,
            CASE WHEN met THEN 'yes' WHEN NOT met THEN 'no' ELSE '' END AS \"met?\"
       FROM bench.results ORDER BY id" || true
  psql_bench -c "\\copy (SELECT workload, ours, baseline, unit, ratio, goal, met FROM bench.results ORDER BY id) TO '$csv' CSV HEADER" &&
    ln -sf "$(basename "$csv")" "$out/latest${quick:+-quick}.csv" && echo "csv: $csv"
  write_meta "${1:-}"
}

# The run's facts beside its CSV (results-<time>.meta, `key: value`): what docs/benchmarks.md
# says of the run (scripts/bench-page.py). `full: yes` only for a whole run of every workload.
write_meta() {
  local meta=${csv%.csv}.meta secs=$(($(date +%s) - t0)) dirty=
  git diff --quiet HEAD -- 2>/dev/null || dirty=' (with uncommitted changes)'
  {
    echo "started: $started"
    echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "duration: $((secs / 60)) min $((secs % 60)) s, the build included"
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$dirty"
    echo "postgresql: $("$PGC" --version | awk '{print $2}')"
    echo "cores: $(nproc)"
    echo "memory: $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo) ($(uname -m))"
    echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "kernel: $(uname -r)"
    echo "pg_storage_ext: $(psql_bench -c 'SELECT storage.version()')"
    echo "anchors: $(IFS=,; echo "${anchors[*]}" | sed 's/,/, /g')"
    echo "load: $load0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
    if [ -n "$quick" ]; then echo "quick: yes"; else echo "quick: no"; fi
    if [ -n "$1" ]; then echo "full: no (stopped at $1)"
    elif [ -n "${BENCH:-}" ] || [ -n "$quick" ]; then echo "full: no (${BENCH:+BENCH=$BENCH${quick:+, }}${quick:+BENCH_QUICK=1})"
    else echo "full: yes"; fi
    if [ -n "${BENCH_NOTE:-}" ]; then echo "note: $BENCH_NOTE"; fi
  } >"$meta" && echo "meta: $meta"
}

# Copies a workload database's figures into bench.results of `postgres`.
collect() {
  PGDATABASE=$1 psql_bench -c "\\copy (SELECT workload, ours, baseline, unit, ratio, goal, met FROM bench.results ORDER BY id) TO STDOUT" |
    psql_bench -c "\\copy bench.results (workload, ours, baseline, unit, ratio, goal, met) FROM STDIN"
}

ran=0
for f in bench/*.sql; do
  name=$(basename "$f" .sql)
  case $name in _*) continue ;; esac
  [ -n "${BENCH:-}" ] && [ "$BENCH" != "$name" ] && continue
  echo "== $name"
  db=bench_$name
  psql_bench -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  [ -n "$quick" ] && psql_bench -c "ALTER DATABASE $db SET bench.quick = on"
  PGDATABASE=$db psql_bench -c 'CREATE EXTENSION pg_storage_ext' -f bench/_harness.sql
  failed=
  if ! PGDATABASE=$db psql_bench -v scale="$scale" -f "$f"; then
    failed=bench/$name.sql
  elif [ -x "bench/$name.sh" ] && ! PGDATABASE=$db "bench/$name.sh" $port; then
    failed=bench/$name.sh
  fi
  collect "$db"
  if [ -n "$failed" ]; then
    report "$name"; die "benchmark workload '$name' failed ($failed); the rows above were measured before it"
  fi
  psql_bench -c "DROP DATABASE $db"
  ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || die "no benchmark named '${BENCH:-}' (bench/*.sql)"
report
