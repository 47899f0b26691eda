#!/usr/bin/env bash
# `make demo`: install the extension into the PG 18 in use, start a throwaway cluster, load the
# blog and run examples/blog/demo.sql. KEEP=1 leaves the cluster running (`make psql`).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$PGSE_ROOT"
install_extension
step_start "demo cluster"
scripts/cluster.sh start demo 28818
step_end "127.0.0.1:28818"
[ -z "${KEEP:-}" ] && trap 'scripts/cluster.sh stop demo 28818' EXIT
psql_demo() { scripts/cluster.sh psql demo 28818 -X -q -v ON_ERROR_STOP=1 "$@"; }
step_start "load blog"
psql_demo -c 'CREATE EXTENSION pg_storage_ext' >/dev/null
# the schema as migrations, applied in order as a deployment would
for f in examples/blog/migrations/*.sql; do psql_demo -f "$f" >/dev/null; done
psql_demo -f examples/blog/seed.sql >/dev/null
step_end ok
psql_demo -f examples/blog/demo.sql
[ -n "${KEEP:-}" ] && echo "cluster left running: make psql"
exit 0
