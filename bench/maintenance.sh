#!/usr/bin/env bash
# The index the plan rebuilds: a B-tree 75 % empty after a mass delete and VACUUM, rebuilt by
# storage.run_maintenance_plan() (REINDEX INDEX CONCURRENTLY in the background worker) while 4
# pgbench clients insert into its table. Prints its size and an index-only-scan query's time after
# vs before, and the writers' rate during the rebuild vs without it (rows per second, from the
# rows' own insert times; goal >= 0.8). Run by scripts/bench.sh after bench/maintenance.sql.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"
rows=$(awk -v s="${BENCH_SCALE:-1}" 'BEGIN {n = int(4000000 * s); print (n < 200000) ? 200000 : n}')
q -c "CREATE TABLE bench.mx (id bigint GENERATED ALWAYS AS IDENTITY, k int NOT NULL,
                             at timestamptz NOT NULL DEFAULT clock_timestamp()) WITH (autovacuum_enabled = false)" \
  -c "INSERT INTO bench.mx (k) SELECT g FROM generate_series(1, $rows) g" \
  -c "CREATE INDEX mx_k ON bench.mx (k)" \
  -c "DELETE FROM bench.mx WHERE id % 4 <> 0" >/dev/null
q -c "VACUUM (ANALYZE) bench.mx" >/dev/null
# an index-only scan over a tenth of the keys
scan="SELECT count(*) FROM bench.mx WHERE k BETWEEN 1 AND $((rows / 10))"
timed() {
  q -c "SET enable_seqscan = off" -c "SET enable_bitmapscan = off" -c "SELECT bench.median_ms(\$q\$$scan\$q\$)"
}
size_before=$(q -c "SELECT pg_relation_size('bench.mx_k')")
scan_before=$(timed)

dir=$(mktemp -d)
# the writers' keys lie past the scanned range: the scan reads the same entries before and after
echo "INSERT INTO bench.mx (k) VALUES ($((rows + 1)) + (random() * 1000000)::int);" >"$dir/w.sql"
chmod -R a+rX "$dir"
# the writers alone: rows per second over the middle of a run
t0=$(q -c "SELECT clock_timestamp()")
tps "$dir/w.sql" -c 4 -j 2 >/dev/null
t1=$(q -c "SELECT clock_timestamp()")
alone=$(q -c "SELECT count(*) / extract(epoch FROM ('$t1'::timestamptz - '$t0'::timestamptz) * 0.6)
                FROM bench.mx WHERE at >= '$t0'::timestamptz + ('$t1'::timestamptz - '$t0'::timestamptz) * 0.2
                                AND at <  '$t0'::timestamptz + ('$t1'::timestamptz - '$t0'::timestamptz) * 0.8")
# the writers while the plan's worker rebuilds the index (only the index is due: the other
# thresholds are out of reach for this run)
as_user "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -T 600 -c 4 -j 2 -f "$dir/w.sql" "${PGDATABASE:-postgres}" >/dev/null 2>&1 &
writers=$!
sleep 1
planned=$(q -c "SET pg_storage_ext.maintenance_vacuum_threshold = 1e12" -c "SET pg_storage_ext.maintenance_analyze_threshold = 1e12" \
  -c "SET pg_storage_ext.maintenance_freeze_fraction = 1" -c "SET pg_storage_ext.maintenance_index_bloat = 0.5" \
  -c "SELECT string_agg(object::text || ' ' || outcome, ', ') FROM storage.run_maintenance_plan()")
[ "$planned" = "bench.mx_k queued" ] || { kill "$writers"; die "the plan queued '$planned', not bench.mx_k"; }
outcome=
for _ in $(seq 600); do
  outcome=$(q -c "SELECT outcome FROM storage.maintenance_log WHERE object_name = 'bench.mx_k' AND outcome NOT IN ('queued', 'running')")
  [ -n "$outcome" ] && break
  sleep 0.2
done
sleep 1
kill "$writers" 2>/dev/null || true
wait "$writers" 2>/dev/null || true
[ "$outcome" = done ] || die "the rebuild ended '$outcome'"
during=$(q -c "SELECT count(*) / extract(epoch FROM l.finished - l.started)
                 FROM storage.maintenance_log l JOIN bench.mx m ON m.at BETWEEN l.started AND l.finished
                WHERE l.object_name = 'bench.mx_k' GROUP BY l.finished, l.started")
took=$(q -c "SELECT round(extract(epoch FROM finished - started)::numeric * 1000) FROM storage.maintenance_log WHERE object_name = 'bench.mx_k'")
q -c "VACUUM (ANALYZE) bench.mx" >/dev/null
size_after=$(q -c "SELECT pg_relation_size('bench.mx_k')")
scan_after=$(timed)
rm -rf "$dir"

mb() { awk -v b="$1" 'BEGIN {printf "%.3f", b / 1048576}'; }
q -c "SELECT bench.record('maintenance: index rebuilt by the plan vs the bloated one, size', $(mb "$size_after"), $(mb "$size_before"), $size_after::float8 / $size_before, NULL, 'MB')"
q -c "SELECT bench.record('maintenance: index rebuilt by the plan vs the bloated one, index-only scan of a tenth of the keys', $scan_after, $scan_before, $scan_after / $scan_before, NULL)"
record "maintenance: rate of 4 writers while the plan rebuilds their index (${took} ms) vs without, rows/s" "$during" "$alone" \
  "$(awk -v a="$during" -v b="$alone" 'BEGIN {printf "%.4f", a / b}')" '>= 0.8'
q -c "DROP TABLE bench.mx" >/dev/null
