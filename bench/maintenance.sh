#!/usr/bin/env bash
# The index the plan rebuilds: a B-tree 75 % empty after a mass delete and VACUUM, rebuilt by
# storage.run_maintenance_plan() (REINDEX INDEX CONCURRENTLY in the background worker) while 4
# pgbench clients insert into its table. Prints its size and an index-only-scan query's time after
# vs before, and the writers' rate during the rebuild vs without it (rows per second, from the
# rows' own insert times; goal >= 0.8), with its floor measured in the same run: the same writers
# on an identical table while psql runs the same REINDEX INDEX CONCURRENTLY itself. Run by
# scripts/bench.sh after bench/maintenance.sql.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"
rows=$(awk -v s="${BENCH_SCALE:-1}" 'BEGIN {n = int(4000000 * s); print (n < 200000) ? 200000 : n}')
# bloated TABLE: a table of $rows keys with its index 75 % empty
bloated() {
  q -c "CREATE TABLE bench.$1 (id bigint GENERATED ALWAYS AS IDENTITY, k int NOT NULL,
                               at timestamptz NOT NULL DEFAULT clock_timestamp()) WITH (autovacuum_enabled = false)" \
    -c "INSERT INTO bench.$1 (k) SELECT g FROM generate_series(1, $rows) g" \
    -c "CREATE INDEX $1_k ON bench.$1 (k)" \
    -c "DELETE FROM bench.$1 WHERE id % 4 <> 0" >/dev/null
  q -c "VACUUM (ANALYZE) bench.$1" >/dev/null
}
bloated mx
# an index-only scan over a tenth of the keys
scan="SELECT count(*) FROM bench.mx WHERE k BETWEEN 1 AND $((rows / 10))"
timed() {
  q -c "SET enable_seqscan = off" -c "SET enable_bitmapscan = off" -c "SELECT bench.median_ms(\$q\$$scan\$q\$)"
}
size_before=$(q -c "SELECT pg_relation_size('bench.mx_k')")
scan_before=$(timed)

dir=$(mktemp -d)
chmod 755 "$dir"
# writers TABLE: 4 pgbench clients inserting into TABLE (keys past the scanned range, so the scan
# reads the same entries before and after), in the background until stop_writers
writers() {
  echo "INSERT INTO bench.$1 (k) VALUES ($((rows + 1)) + (random() * 1000000)::int);" >"$dir/$1.sql"
  chmod a+r "$dir/$1.sql"
  as_user "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -T 600 -c 4 -j 2 -f "$dir/$1.sql" \
    "${PGDATABASE:-postgres}" >/dev/null 2>&1 &
  sleep 1
}
# pgbench runs under sudo as the cluster's user: stopped by its script's name
stop_writers() {
  pkill -f -- "$dir/$1.sql" 2>/dev/null || true
  for _ in $(seq 50); do pgrep -f -- "$dir/$1.sql" >/dev/null || break; sleep 0.1; done
  wait 2>/dev/null || true
}
# rate TABLE FROM TO: rows per second the writers inserted into TABLE between two timestamps
rate() {
  q -c "SELECT count(*) / extract(epoch FROM '$3'::timestamptz - '$2'::timestamptz)
          FROM bench.$1 WHERE at BETWEEN '$2'::timestamptz AND '$3'::timestamptz"
}

# the writers alone, over 3 s
writers mx
t0=$(q -c "SELECT clock_timestamp()")
sleep 3
t1=$(q -c "SELECT clock_timestamp()")
alone=$(rate mx "$t0" "$t1")
# the writers while the plan's worker rebuilds the index (only the index is due: the other
# thresholds are out of reach for this run)
planned=$(q -c "SET pg_storage_ext.maintenance_vacuum_threshold = 1e12" -c "SET pg_storage_ext.maintenance_analyze_threshold = 1e12" \
  -c "SET pg_storage_ext.maintenance_freeze_fraction = 1" -c "SET pg_storage_ext.maintenance_index_bloat = 0.5" \
  -c "SELECT string_agg(object::text || ' ' || outcome, ', ') FROM storage.run_maintenance_plan()")
[ "$planned" = "bench.mx_k queued" ] || { stop_writers mx; die "the plan queued '$planned', not bench.mx_k"; }
# waited for in one session (a psql started every 200 ms would itself take CPU from the writers)
q -c "DO \$\$ BEGIN
        FOR i IN 1..2400 LOOP
            EXIT WHEN EXISTS (SELECT FROM storage.maintenance_log
                               WHERE object_name = 'bench.mx_k' AND outcome NOT IN ('queued', 'running'));
            COMMIT;   -- no snapshot held: REINDEX CONCURRENTLY waits for older ones
            PERFORM pg_sleep(0.1);
            COMMIT;
        END LOOP;
      END \$\$" >/dev/null
outcome=$(q -c "SELECT outcome FROM storage.maintenance_log WHERE object_name = 'bench.mx_k'")
stop_writers mx
[ "$outcome" = done ] || die "the rebuild ended '$outcome'"
took=$(q -c "SELECT round(extract(epoch FROM finished - started)::numeric * 1000) FROM storage.maintenance_log WHERE object_name = 'bench.mx_k'")
during=$(q -c "SELECT count(*) / extract(epoch FROM l.finished - l.started)
                 FROM storage.maintenance_log l JOIN bench.mx m ON m.at BETWEEN l.started AND l.finished
                WHERE l.object_name = 'bench.mx_k' GROUP BY l.finished, l.started")
q -c "VACUUM (ANALYZE) bench.mx" >/dev/null
size_after=$(q -c "SELECT pg_relation_size('bench.mx_k')")
scan_after=$(timed)

# the floor: the same rebuild run by psql itself, on an identical table, with the same writers
bloated mf
writers mf
# the window taken in the rebuilding session itself (not around a psql start-up)
times=$(q -c "SELECT clock_timestamp()" -c "REINDEX INDEX CONCURRENTLY bench.mf_k" -c "SELECT clock_timestamp()")
f0=$(sed -n 1p <<<"$times")
f1=$(sed -n 2p <<<"$times")
stop_writers mf
floor_rate=$(rate mf "$f0" "$f1")
floor_took=$(q -c "SELECT round(extract(epoch FROM '$f1'::timestamptz - '$f0'::timestamptz)::numeric * 1000)")
rm -rf "$dir"

mb() { awk -v b="$1" 'BEGIN {printf "%.3f", b / 1048576}'; }
q -c "SELECT bench.record('maintenance: index rebuilt by the plan vs the bloated one, size', $(mb "$size_after"), $(mb "$size_before"), $size_after::float8 / $size_before, NULL, 'MB')"
q -c "SELECT bench.record('maintenance: index rebuilt by the plan vs the bloated one, index-only scan of a tenth of the keys', $scan_after, $scan_before, $scan_after / $scan_before, NULL)"
record "maintenance: rate of 4 writers while the plan rebuilds their index (${took} ms) vs without, rows/s" "$during" "$alone" \
  "$(awk -v a="$during" -v b="$alone" 'BEGIN {printf "%.4f", a / b}')" '>= 0.8'
record "maintenance floor: rate of 4 writers while psql runs the same REINDEX INDEX CONCURRENTLY (${floor_took} ms) vs without, rows/s" "$floor_rate" "$alone" \
  "$(awk -v a="$floor_rate" -v b="$alone" 'BEGIN {printf "%.4f", a / b}')" ''
q -c "DROP TABLE bench.mx, bench.mf" >/dev/null
