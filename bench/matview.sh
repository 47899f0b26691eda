#!/usr/bin/env bash
# Write overhead of matview change tracking as pgbench sees it: single-row INSERT transactions
# into a tracked source vs the same table untracked, alternating 3 runs of 5 s each; prints the
# median TPS of each and the ratio. Run by scripts/bench.sh after bench/matview.sql.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"
q -c "CREATE TABLE bench.pg_tracked (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, article_id int, viewed_at timestamptz)" \
  -c "CREATE TABLE bench.pg_untracked (LIKE bench.pg_tracked INCLUDING ALL)" \
  -c "CREATE MATERIALIZED VIEW bench.pg_views AS SELECT count(*) AS n FROM bench.pg_tracked" \
  -c "SELECT storage.register_matview('bench.pg_views')"
dir=$(mktemp -d)
for t in tracked untracked; do
  echo "INSERT INTO bench.pg_$t (article_id, viewed_at) VALUES (1, now());" >"$dir/$t.sql"
done
chmod -R a+rX "$dir"
a=() b=()
for _ in $(seq "$runs"); do a+=("$(tps "$dir/tracked.sql" -c 1)"); b+=("$(tps "$dir/untracked.sql" -c 1)"); done
ma=$(med "${a[@]}") mb=$(med "${b[@]}")
# the ratio is time per transaction, tracked / untracked
record 'matview tracking, pgbench single-row INSERT, tracked vs untracked (time per transaction)' "$ma" "$mb" \
  "$(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.4f", b / a}')" '<= 1.05'
q -c "SELECT storage.unregister_matview('bench.pg_views')" -c "DROP TABLE bench.pg_tracked, bench.pg_untracked CASCADE" >/dev/null 2>&1
rm -rf "$dir"
