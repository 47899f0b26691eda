#!/usr/bin/env bash
# Write overhead of matview change tracking as pgbench sees it: single-row INSERT transactions
# into a tracked source vs the same table untracked, alternating 3 runs of 5 s each; prints the
# median TPS of each and the ratio. Run by scripts/bench.sh after bench/matview.sql.
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
port=$1
bin=$("$(find_pg_config)" --bindir)
q() { scripts/cluster.sh psql bench "$port" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE TABLE bench.pg_tracked (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, article_id int, viewed_at timestamptz)" \
  -c "CREATE TABLE bench.pg_untracked (LIKE bench.pg_tracked INCLUDING ALL)" \
  -c "CREATE MATERIALIZED VIEW bench.pg_views AS SELECT count(*) AS n FROM bench.pg_tracked" \
  -c "SELECT storage.register_matview('bench.pg_views')"
dir=$(mktemp -d)
for t in tracked untracked; do
  echo "INSERT INTO bench.pg_$t (article_id, viewed_at) VALUES (1, now());" >"$dir/$t.sql"
done
chmod -R a+rX "$dir"
tps() { as_user "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -c 1 -T 5 -f "$dir/$1.sql" postgres 2>&1 |
  awk '/^tps =/ {print $3}'; }
a=() b=()
for _ in 1 2 3; do a+=("$(tps tracked)"); b+=("$(tps untracked)"); done
med() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
ma=$(med "${a[@]}") mb=$(med "${b[@]}")
echo "matview tracking, pgbench single-row INSERT transactions: tracked $ma tps, untracked $mb tps, ratio $(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.3f", b / a}') (time per transaction, tracked / untracked)"
q -c "SELECT storage.unregister_matview('bench.pg_views')" -c "DROP TABLE bench.pg_tracked, bench.pg_untracked CASCADE" >/dev/null 2>&1
rm -rf "$dir"
