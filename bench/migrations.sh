#!/usr/bin/env bash
# Readers' worst latency while a schema change waits behind a long transaction: 8 pgbench clients
# read bench.mg while one session holds ACCESS SHARE on it for a few seconds; after 1 s a schema
# change arrives. A plain ALTER TABLE (as psql runs it) queues for ACCESS EXCLUSIVE and every
# reader queues behind it until the long transaction ends; storage.migrate waits at most
# pg_storage_ext.migration_lock_timeout (100 ms here), rolls back, retries, and applies once the
# long transaction is gone. The worst reader latency of each, from pgbench's per-transaction log,
# and the ratio (goal <= 0.05). Run by scripts/bench.sh after bench/migrations.sql.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"
hold=$(awk -v s="${BENCH_SCALE:-1}" 'BEGIN {print (s < 1) ? 3 : 6}')
dir=$(mktemp -d)
chmod 777 "$dir"
echo "SELECT count(*) FROM bench.mg WHERE id < 100;" >"$dir/read.sql"
chmod a+r "$dir/read.sql"
# worst NAME CHANGE: the worst reader latency (ms) while CHANGE arrives behind the long reader
worst() {
  local name=$1 change=$2
  q -c "SELECT 1" >/dev/null
  (q -c "BEGIN" -c "SELECT count(*) FROM bench.mg" -c "SELECT pg_sleep($hold)" -c "COMMIT" >/dev/null) &
  local holder=$!
  (cd "$dir" && as_user "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -T $((hold + 2)) -c 8 -j 2 \
    -l --log-prefix="$dir/$name" -f "$dir/read.sql" "${PGDATABASE:-postgres}" >/dev/null 2>&1) &
  local readers=$!
  sleep 1
  q -c "$change" >/dev/null
  wait "$holder" "$readers"
  cat "$dir/$name".* | awk 'BEGIN {m = 0} {if ($3 > m) m = $3} END {printf "%.1f", m / 1000}'
}
plain=$(worst plain "ALTER TABLE bench.mg ADD COLUMN plain_col int")
ours=$(worst ours "SET pg_storage_ext.migration_lock_timeout = '100ms'; SET pg_storage_ext.migration_retries = 100;
                   SELECT storage.migrate('bench1', 'add a column', 'ALTER TABLE bench.mg ADD COLUMN ours_col int')")
applied=$(q -c "SELECT status FROM storage.migrations WHERE version = 'bench1'")
[ "$applied" = applied ] || die "the migration did not apply after the long transaction (status '$applied')"
rm -rf "$dir"
q -c "SELECT bench.record('migrations: readers'' worst latency while a schema change waits behind a ${hold} s transaction, storage.migrate (lock_timeout 100 ms, retried) vs plain ALTER TABLE', $ours, $plain, $ours / $plain, '<= 0.05')"
q -c "ALTER TABLE bench.mg DROP COLUMN plain_col, DROP COLUMN ours_col" >/dev/null
