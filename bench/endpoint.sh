#!/usr/bin/env bash
# The HTTP endpoint's routing answers under load, and the cost of the query statistics history,
# on a cluster of its own (pg_storage_ext and pg_stat_statements preloaded, the endpoint on):
# - GET /primary, one probe every 20 ms while 8 pgbench clients run TPC-B, p99 latency, against
#   the probe a Kubernetes exec probe would run without the endpoint (pg_isready, its process
#   included) in the same load, alternating; goal p99 <= 50 ms (issue 39) and not slower than it.
# - metrics_snapshot() with pg_stat_statements holding 5,000 distinct queries: the backend's CPU
#   time of one snapshot (from /proc), as a share of the minute between two snapshots (goal
#   <= 1 % of one core), and against the snapshot without pg_stat_statements in the database.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"
eport=$((port + 40)) ehttp=$((port + 41))
quick=${BENCH_QUICK:-}
dir=$(run_dir)/bench_endpoint
PGSE_PRELOAD=pg_stat_statements "$PGSE_ROOT/scripts/cluster.sh" start bench_endpoint "$eport"
trap '"$PGSE_ROOT/scripts/cluster.sh" stop bench_endpoint '"$eport" EXIT
as_user tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF
shared_preload_libraries = 'pg_stat_statements,pg_cron,pg_storage_ext'
pg_stat_statements.max = 10000
pg_storage_ext.http_listen = '127.0.0.1:$ehttp'
CONF
eq() { "$bin/psql" -h 127.0.0.1 -p "$eport" -U postgres -d postgres -X -q -At -v ON_ERROR_STOP=1 "$@"; }
eq -c "CREATE EXTENSION pg_storage_ext CASCADE; CREATE EXTENSION pg_stat_statements; CREATE ROLE pgse_http IN ROLE pg_monitor" >/dev/null
as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w restart >/dev/null || die "the endpoint's cluster did not restart"
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$ehttp/primary" 2>/dev/null && break; sleep 0.1; done

# 1. routing latency under 8 pgbench clients
as_user "$bin/pgbench" -h 127.0.0.1 -p "$eport" -U postgres -i -q -s "$(awk -v s="${BENCH_SCALE:-1}" 'BEGIN {print (s < 1) ? 1 : 10}')" postgres >/dev/null 2>&1
probes=$([ -n "$quick" ] && echo 20 || echo 300)
load_secs=$(( probes * 2 / 50 + 10 ))
as_user "$bin/pgbench" -h 127.0.0.1 -p "$eport" -U postgres -n -c 8 -j 2 -T "$load_secs" postgres >/dev/null 2>&1 &
loader=$!
sleep 2
python3 - "$ehttp" "$bin/pg_isready" "$eport" "$probes" >"$dir/latency.txt" <<'PY'
import socket, subprocess, sys, time
http, isready_bin, pgport, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
def probe():
    t0 = time.monotonic()
    c = socket.create_connection(("127.0.0.1", http), timeout=5)
    c.sendall(b"GET /primary HTTP/1.1\r\nHost: x\r\n\r\n")
    d = b""
    while chunk := c.recv(65536):
        d += chunk
    c.close()
    assert d.startswith(b"HTTP/1.1 200 "), d[:40]
    return (time.monotonic() - t0) * 1000
def isready():
    t0 = time.monotonic()
    r = subprocess.run([isready_bin, "-h", "127.0.0.1", "-p", pgport, "-U", "postgres", "-q"])
    assert r.returncode == 0
    return (time.monotonic() - t0) * 1000
a, b = [], []
for _ in range(n):
    a.append(probe()); time.sleep(0.01)
    b.append(isready()); time.sleep(0.01)
def p99(v):
    v = sorted(v)
    return v[min(len(v) - 1, int(0.99 * len(v)))]
print(f"{p99(a):.2f} {p99(b):.2f} {max(a):.2f}")
PY
wait "$loader" || true
read -r ours base worst <"$dir/latency.txt"
q -c "SELECT bench.record('routing GET /primary p99 under 8 pgbench clients ($probes probes; worst ${worst} ms; goal p99 <= 50 ms) vs pg_isready p99', $ours, $base, $ours / $base, '<= 1')"
q -c "SELECT bench.record('routing GET /primary p99 under 8 pgbench clients vs the 50 ms the issue allows', $ours, 50, $ours / 50.0, '<= 1')"

# 2. metrics_snapshot() with 5,000 distinct queries in pg_stat_statements
tables=$([ -n "$quick" ] && echo 10 || echo 100)
cols=50
eq >/dev/null <<SQL
SELECT format('CREATE TABLE qs_%s (%s)', t, string_agg(format('c%s int', c), ', '))
  FROM generate_series(1, $tables) t, generate_series(1, $cols) c GROUP BY t \gexec
SQL
eq -c "SELECT format('SELECT count(*) FROM qs_%s WHERE c%s = 1;', t, c) FROM generate_series(1, $tables) t, generate_series(1, $cols) c" >"$dir/queries.sql"
chmod a+r "$dir/queries.sql"
cpu_ms="(SELECT (split_part(s, ' ', 12)::bigint + split_part(s, ' ', 13)::bigint) * 1000.0 / 100
          FROM (SELECT split_part(pg_read_file('/proc/self/stat'), ') ', 2) AS s) x)"
# one snapshot's CPU in a session of its own: CPU before, snapshot, CPU after
snap_cpu() {
  eq -c "CREATE TEMP TABLE t0 AS SELECT $cpu_ms AS v" -c "SELECT storage.metrics_snapshot()" -c "SELECT round($cpu_ms - (SELECT v FROM t0), 1)" | tail -1
}
eq -f "$dir/queries.sql" >/dev/null
eq -c "SELECT storage.metrics_snapshot()" >/dev/null   # the baseline of the deltas
entries=$(eq -c "SELECT count(*) FROM pg_stat_statements")
a=() b=()
for _ in $(seq "$runs"); do
  eq -f "$dir/queries.sql" >/dev/null
  a+=("$(snap_cpu)")
done
kept=$(eq -c "SELECT count(DISTINCT queryid) FROM storage.query_stats")
# the same snapshots without pg_stat_statements in the database
eq -c "DROP EXTENSION pg_stat_statements" >/dev/null
for _ in $(seq "$runs"); do
  eq -f "$dir/queries.sql" >/dev/null
  b+=("$(snap_cpu)")
done
ma=$(med "${a[@]}") mb=$(med "${b[@]}")
[ "$kept" -ge 50 ] || die "the query statistics history kept $kept queries"
q -c "SELECT bench.record('metrics_snapshot() CPU with pg_stat_statements holding $entries queries, as a share of one core at once a minute', $ma, 60000, $ma / 60000.0, '<= 0.01')"
q -c "SELECT bench.record('metrics_snapshot() CPU with pg_stat_statements ($entries queries) vs without it', $ma, $mb, $ma / nullif($mb, 0), NULL)"
