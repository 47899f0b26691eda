#!/usr/bin/env bash
# `make bench`: a release build of the extension in a throwaway cluster; each bench/*.sql runs its
# workloads against a baseline measured in the same run and prints
# `name: ours X ms, baseline Y ms, ratio R`; bench/name.sh, when present, runs after bench/name.sql
# (pgbench workloads). BENCH=name runs only that one.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$PGSE_ROOT"
PGC=$(find_pg_config)
install_extension --release
# pg_partman, the anchor of bench/partition.sql: Debian unstable's pg-partman source, built once
# into the PostgreSQL in use (bench only; the extension does not need it).
if [ ! -f "$("$PGC" --sharedir)/extension/pg_partman.control" ]; then
  step_start "pg_partman"
  built=$(pgxs_from_debian pg_partman pg-partman)
  step_end "built $built"
fi
scripts/cluster.sh start bench 28820
trap 'scripts/cluster.sh stop bench 28820' EXIT
psql_bench() { scripts/cluster.sh psql bench 28820 -X -q -At -v ON_ERROR_STOP=1 "$@"; }
psql_bench -c 'CREATE EXTENSION pg_storage_ext' -f bench/_harness.sql
echo "PostgreSQL $("$PGC" --version | awk '{print $2}'), $(nproc) cores, $(uname -m)"
for f in bench/*.sql; do
  name=$(basename "$f" .sql)
  case $name in _*) continue ;; esac
  [ -n "${BENCH:-}" ] && [ "$BENCH" != "$name" ] && continue
  echo "== $name"
  psql_bench -f "$f"
  if [ -x "bench/$name.sh" ]; then "bench/$name.sh" 28820; fi
done
