#!/usr/bin/env bash
# The metrics endpoint and the health report against a real cluster (run by scripts/test.sh):
# pg_storage_ext preloaded with pg_storage_ext.http_listen set, a LOGIN role with pg_monitor for
# the worker, a few metrics snapshots. Checks: GET /metrics is Prometheus text that promtool
# accepts; HEAD, 404, 405, 431 answers; /metrics still answers promptly while 50 slow clients hold
# connections open; GET / is the HTML report, which headless Chromium renders into a screenshot
# that is not blank, with every chart and no console error. Then a hot standby of the cluster
# (pg_basebackup) with its own endpoint: health() answers there, metrics_snapshot() is 25006, both
# pages are served. Prints "ok N" per check passed;
# exits non-zero on the first failure.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
port=${1:-28861}
http=${2:-28862}
sport=$((port + 2)) shttp=$((http + 2))
PGC=$(find_pg_config)
bin=$("$PGC" --bindir)
dir=$(run_dir)/http
promtool=$(promtool_path)
[ -x "$promtool" ] || die "promtool missing at $promtool: run scripts/setup.sh"
command -v chromium >/dev/null || die "chromium missing: run scripts/setup.sh"
"$PGSE_ROOT/scripts/cluster.sh" start http "$port"
slow_pids=()
cleanup() {
  for p in "${slow_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$dir/standby/postmaster.pid" ] && as_user "$bin/pg_ctl" -D "$dir/standby" -m immediate -w stop >/dev/null 2>&1
  "$PGSE_ROOT/scripts/cluster.sh" stop http "$port"
}
trap cleanup EXIT
q() { "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }
q "CREATE EXTENSION pg_storage_ext CASCADE" >/dev/null
# something for every family: an audited table with writes, a registered matview, a partitioned table
q "CREATE TABLE posts (id int PRIMARY KEY, title text); SELECT audit.enable('posts');
   INSERT INTO posts SELECT i, 't' || i FROM generate_series(1, 100) AS i;
   CREATE MATERIALIZED VIEW post_count AS SELECT count(*) AS n FROM posts;
   SELECT storage.register_matview('post_count', '1 minute');
   CREATE TABLE hits (at timestamptz NOT NULL) PARTITION BY RANGE (at);
   SELECT storage.create_partitions('hits', '1 day')" >/dev/null
for _ in 1 2 3; do q "SELECT storage.metrics_snapshot()" >/dev/null; sleep 1; done
n=0
pass() { n=$((n + 1)); echo "ok $n - http: $1"; }
fail() { die "http: $1"; }
out=$dir/out; mkdir -p "$out"
url=http://127.0.0.1:$http
# the server log written since byte $1
log_since() { tail -c +"$(($1 + 1))" "$dir/server.log"; }
# GET $1 until it answers 200, at most $2 seconds; prints the seconds waited
wait_up() {
  local t0=$SECONDS
  while [ $((SECONDS - t0)) -lt "$2" ]; do
    [ "$(curl -sS -o /dev/null --max-time 2 -w '%{http_code}' "$url$1" 2>/dev/null)" = 200 ] && { echo $((SECONDS - t0)); return 0; }
    sleep 0.2
  done
  return 1
}

# only http_listen set (issue 35 L2): the default role does not exist yet, so the endpoint
# says so once in the log and checks again later (10 s, 20 s, ...), no FATAL every 10 s;
# track_functions counts the endpoint's queries (the flood below)
as_user tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF
shared_preload_libraries = 'pg_cron,pg_storage_ext,pg_stat_statements'
cron.use_background_workers = on
pg_storage_ext.http_listen = '127.0.0.1:$http'
track_functions = 'all'
CONF
log0=$(stat -c %s "$dir/server.log")
as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w restart >/dev/null || die "the cluster did not restart: $(tail -5 "$dir/server.log")"
sleep 12
said=$(log_since "$log0" | grep -c 'pg_storage_ext http: not serving: role "pgse_http" (pg_storage_ext.http_role) does not exist: create it with CREATE ROLE pgse_http IN ROLE pg_monitor' || true)
fatal=$(log_since "$log0" | grep -c 'FATAL' || true)
[ "$said" = 1 ] && [ "$fatal" = 0 ] ||
  fail "with http_role's default missing: $said clear lines (want 1), $fatal FATAL lines (want 0): $(log_since "$log0" | grep -i 'http\|FATAL' | head -5)"
pass "only http_listen set, the default role missing: one clear log line in 12 s, no FATAL"
# the README's role (no LOGIN needed); pg_reload_conf() makes the endpoint check at once
# (two statements: in one, the reload would signal before the role's creation committed)
q "CREATE ROLE pgse_http IN ROLE pg_monitor" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
waited=$(wait_up /metrics 10) || fail "GET /metrics does not answer after the README's role was created: $(log_since "$log0" | grep 'pg_storage_ext http' | tail -3)"
pass "the README's role created: GET /metrics answers ${waited} s after pg_reload_conf()"

# the extension's jobs, as a user schedules them (maintenance every 2 seconds here, so a run after
# the promotion below is seen at once); they reach the standby in cron.job
q "CREATE EXTENSION pg_cron; SELECT storage.schedule_jobs(maintenance_schedule => '2 seconds')" >/dev/null
# the query statistics history (issue 39): a statement with a secret in its text is among the
# top queries, whose text neither page may show
q "CREATE EXTENSION pg_stat_statements; SELECT storage.metrics_snapshot()" >/dev/null
for _ in 1 2 3; do q "SELECT count(*) FROM pg_class /* secret-abc */" >/dev/null; done
q "SELECT storage.metrics_snapshot()" >/dev/null
[ "$(q "SELECT count(*) FROM storage.top_queries() WHERE query LIKE '%secret-abc%'")" = 1 ] || fail "the statement is not among the top queries"
# custom metrics (issue 39): one that works, with a help text to escape, and one that fails
q "CREATE TABLE jobs (queue text); INSERT INTO jobs VALUES ('mail'), ('mail'), ('export'); GRANT SELECT ON jobs TO pgse_http;
   INSERT INTO storage.custom_metrics (name, help, sql, labels) VALUES
     ('queue_depth', 'jobs \"waiting\" per queue\\', 'SELECT queue, count(*) AS value FROM public.jobs GROUP BY queue', '{queue}'),
     ('broken', 'fails', 'SELECT 1 / 0 AS value', '{}')" >/dev/null
# a client session open while /metrics is read: the longest running query, with a secret in
# its text (issue 35 H1: no query text is served)
"$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -X -q -c "SELECT pg_sleep(60) /* secret-xyz */" >/dev/null 2>&1 &
slow_pids+=($!)
sleep 1.2
curl -sS -o "$out/h1-report.html" "$url/" || fail "GET / failed"
curl -sS -o "$out/h1-metrics.txt" "$url/metrics" || fail "GET /metrics failed"
! grep -q 'secret-xyz\|secret-abc' "$out/h1-report.html" "$out/h1-metrics.txt" || fail "the endpoint serves query text: $(grep -o '.\{60\}secret-[xa][yb][zc].\{10\}' "$out/h1-report.html" "$out/h1-metrics.txt")"
grep -q '<table id="queries">' "$out/h1-report.html" && grep -q '^pg_storage_ext_query_calls_total{datname="postgres",queryid="' "$out/h1-metrics.txt" ||
  fail "the top queries are not on the report and in /metrics"
grep -q '<td>long_running_queries</td>.*<td>pid [0-9]* (postgres): active for 00:00:0[1-9]</td>' "$out/h1-report.html" ||
  fail "the report does not show the long-running query's pid, role, state and duration: $(grep long_running "$out/h1-report.html")"
[ "$(q "SELECT count(*) FROM storage.health() WHERE detail LIKE '%secret-xyz%' OR detail LIKE '%pg_sleep%'")" = 0 ] || fail "health() shows query text"
pass "GET /, GET /metrics and health() show the longest query's pid, role, state and duration, never its text; the top queries by queryid, never their text"

# /metrics: status, type, and the text promtool accepts
code=$(curl -sS -o "$out/metrics.txt" -w '%{http_code} %{content_type}' "$url/metrics")
[ "$code" = "200 text/plain; version=0.0.4; charset=utf-8" ] || fail "GET /metrics answered '$code'"
pass "GET /metrics is 200 text/plain; version=0.0.4"
"$promtool" check metrics <"$out/metrics.txt" >"$out/promtool.txt" 2>&1 || fail "promtool check metrics: $(cat "$out/promtool.txt")"
pass "promtool check metrics accepts the exposition"
grep -q '^pg_storage_ext_health_status{check="ssl"} ' "$out/metrics.txt" || fail "no health status of the ssl check"
grep -q '^pg_stat_database_xact_commit_total{datname="postgres"} ' "$out/metrics.txt" || fail "no pg_stat_database family"
grep -q '^pg_storage_ext_custom_queue_depth{queue="mail"} 2$' "$out/metrics.txt" && grep -q '^pg_storage_ext_custom_metric_up{metric="broken"} 0$' "$out/metrics.txt" ||
  fail "the custom metrics are not served: $(grep custom "$out/metrics.txt")"
pass "health statuses, pg_stat_database families and the custom metrics (a failing one as up 0) are there"
"$promtool" check rules "$PGSE_ROOT/examples/prometheus/alerts.yml" >"$out/rules.txt" 2>&1 || fail "promtool check rules: $(cat "$out/rules.txt")"
python3 - "$out/metrics.txt" "$PGSE_ROOT/examples/grafana/pg_storage_ext.json" "$PGSE_ROOT/examples/prometheus/alerts.yml" <<'PY' ||
import json, re, sys
families = set(re.findall(r"^# TYPE (\S+) ", open(sys.argv[1]).read(), re.M))
dash = json.load(open(sys.argv[2]))
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]] + [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
exprs.append(open(sys.argv[3]).read())
used = set(n for e in exprs for n in re.findall(r"\b(pg_(?:stat|storage_ext|settings)_[a-z_]+)\b", e))
# served only where there are standbys, and where there are change feeds
missing = sorted(used - families - {"pg_storage_ext_replication_lag_seconds", "pg_storage_ext_audit_feed_broken",
                                    "pg_storage_ext_audit_feed_lag_seconds"})
assert not missing, f"not in /metrics: {missing}"
print(f"{len(used)} metric families used, all served")
PY
  fail "the dashboard or the alert rules name metrics /metrics does not serve"
pass "alert rules pass promtool; every metric the dashboard and the rules use is served"
[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_storage_ext http' AND usename = 'pgse_http'")" = 1 ] ||
  fail "the worker does not run as pgse_http"
pass "the worker is connected as the pg_monitor role"

# other methods, paths and heads
[ "$(curl -sS -o /dev/null -w '%{http_code}' -I "$url/metrics")" = 200 ] || fail "HEAD /metrics"
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$url/nope")" = 404 ] || fail "GET /nope is not 404"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -X POST -d x "$url/metrics")" = 405 ] || fail "POST is not 405"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "$url/metrics")" = 431 ] ||
  fail "a 9 kB header is not 431"
pass "HEAD 200, unknown path 404, POST 405, oversized head 431"

# 200 slow clients (issue 35 M2), each sending its request line one byte a second: when the
# 64 connections are taken, the oldest one still reading its head makes room, so a scrape
# answers at once
python3 - "$http" >"$out/slow.txt" 2>&1 <<'PY' || fail "GET /metrics with 200 slow clients: $(cat "$out/slow.txt")"
import socket, sys, time
port = int(sys.argv[1])
slow = []
for _ in range(200):
    s = socket.socket()
    s.settimeout(2)
    s.connect(("127.0.0.1", port))
    try:
        s.send(b"G")
    except OSError:
        pass
    slow.append(s)
def dribble():
    for s in slow:
        try:
            s.send(b"E")
        except OSError:
            pass
for _ in range(2):
    time.sleep(1)
    dribble()
t0 = time.monotonic()
c = socket.create_connection(("127.0.0.1", port), timeout=5)
c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
while True:
    try:
        chunk = c.recv(65536)
    except OSError:
        break
    if not chunk:
        break
    data += chunk
ms = (time.monotonic() - t0) * 1000
dribble()
status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else "none"
print(f"{status} {ms:.0f}")
assert status == "200" and ms < 1000, f"answered {status} in {ms:.0f} ms"
PY
read -r code ms <"$out/slow.txt"
pass "GET /metrics answers $code in $ms ms while 200 slow clients hold (or try to hold) connections"

# heads an attacker sends (issue 35 L5 and the endpoint's own attack round): a bare CR and a TLS
# handshake are 400 at once (not after the 5 s limit); an absolute-form target is served;
# pipelined requests get one answer and the end of the connection; 100 clients at once each get
# a complete answer (200, or 503 past the 64 connections), none a dropped connection
python3 - "$http" >"$out/attack.txt" 2>&1 <<'PY' || fail "attack round: $(cat "$out/attack.txt")"
import socket, sys, threading, time
port = int(sys.argv[1])
def talk(payload, timeout=8):
    t0 = time.monotonic()
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    c.sendall(payload)
    data = b""
    while True:
        try:
            x = c.recv(65536)
        except OSError:
            break
        if not x:
            break
        data += x
    c.close()
    return data, time.monotonic() - t0
def check(name, payload, want, limit=1.0):
    d, t = talk(payload)
    got = d.split(b"\r\n", 1)[0].decode(errors="replace")
    assert got.startswith(f"HTTP/1.1 {want} ") and t < limit, f"{name}: {got!r} in {t:.2f} s"
    return d
check("bare CR", b"GET /metrics HTTP/1.1\r\rHost: x\r\r", 400)
check("TLS ClientHello", bytes.fromhex("160301020001000001fc0303") + bytes(64), 400)
check("absolute-form target", b"GET http://127.0.0.1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 200)
check("bare LF line ends", b"GET /metrics HTTP/1.1\nHost: x\n\n", 200)
d = check("pipelined", b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, 3.0)
assert d.count(b"HTTP/1.1 ") == 1, "pipelined: more than one answer"
res = []
def one():
    d, _ = talk(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=20)
    res.append(d.split(b" ", 2)[1].decode() if d.startswith(b"HTTP/1.1 ") and b"\r\n\r\n" in d else "nothing")
ts = [threading.Thread(target=one) for _ in range(100)]
for t in ts: t.start()
for t in ts: t.join()
ok, busy = res.count("200"), res.count("503")
assert ok + busy == 100 and ok >= 64, f"100 clients at once: {ok} 200, {busy} 503, {100 - ok - busy} without an answer"
print(ok, busy)
PY
read -r ok busy <"$out/attack.txt"
pass "a bare CR and a TLS handshake are 400 at once, absolute-form targets and bare LF are served, pipelining gets one answer, 100 clients at once all get one ($ok 200, $busy 503)"

# a flood (issue 35 M3): answers are kept (/metrics 1 s, / 10 s), so 6 s of requests run each
# query a few times only; the worker's function statistics count them (sent when it exits,
# here by pg_terminate_backend, whose restart is checked next)
sleep 2
q "SELECT pg_stat_reset_single_function_counters('storage.health_report_html(interval, boolean)'::regprocedure),
          pg_stat_reset_single_function_counters('storage.metrics_prometheus()'::regprocedure)" >/dev/null
python3 - "$http" >"$out/flood.txt" 2>&1 <<'PY' || fail "the flood: $(cat "$out/flood.txt")"
import socket, sys, threading, time
port = int(sys.argv[1])
end = time.monotonic() + 6
counts = {"/": 0, "/metrics": 0}
lock = threading.Lock()
def client(path):
    while time.monotonic() < end:
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = b""
            while chunk := c.recv(65536):
                data += chunk
            c.close()
        except OSError:
            continue
        if data.startswith(b"HTTP/1.1 200 "):
            with lock:
                counts[path] += 1
threads = [threading.Thread(target=client, args=(p,)) for p in ["/", "/metrics"] * 3]
for t in threads: t.start()
for t in threads: t.join()
print(counts["/"], counts["/metrics"])
PY
read -r n_report n_metrics <"$out/flood.txt"
[ "$n_report" -ge 100 ] && [ "$n_metrics" -ge 100 ] || fail "the flood got $n_report and $n_metrics answers"
worker=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_storage_ext http'")
[ -n "$worker" ] || fail "no endpoint worker in pg_stat_activity"
log1=$(stat -c %s "$dir/server.log")
q "SELECT pg_terminate_backend($worker, 5000)" >/dev/null
calls() { q "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcid = '$1'::regprocedure"; }
c_report=$(calls 'storage.health_report_html(interval, boolean)') c_metrics=$(calls 'storage.metrics_prometheus()')
[ "$c_report" -ge 1 ] && [ "$c_report" -le 2 ] && [ "$c_metrics" -ge 1 ] && [ "$c_metrics" -le 8 ] ||
  fail "6 s of flood ($n_report GET /, $n_metrics GET /metrics answered) ran health_report_html() $c_report times (want 1 or 2) and metrics_prometheus() $c_metrics times (want 1 to 8)"
pass "6 s of flood ($n_report GET /, $n_metrics GET /metrics answered) ran health_report_html() $c_report times and metrics_prometheus() $c_metrics times"

# the worker comes back after pg_terminate_backend (issue 36 F1), saying why it stopped; so
# does its supervisor
waited=$(wait_up /metrics 15) || fail "GET /metrics does not answer within 15 s of pg_terminate_backend on the endpoint's worker: $(log_since "$log1" | grep 'http' | tail -5)"
log_since "$log1" | grep -q 'pg_storage_ext http: stopping on SIGTERM' || fail "the worker did not log why it stopped"
log_since "$log1" | grep -q "pg_storage_ext http: the endpoint's worker stopped after [0-9]* s (why is logged above); starting it again in 1 s" ||
  fail "the supervisor did not log the restart: $(log_since "$log1" | grep 'http' | tail -5)"
[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_storage_ext http' AND pid <> $worker")" = 1 ] || fail "no new endpoint worker"
pass "GET /metrics answers again ${waited} s after pg_terminate_backend on the endpoint's worker, which logged why it stopped"
log1=$(stat -c %s "$dir/server.log")
q "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE backend_type = 'pg_storage_ext http supervisor'" >/dev/null
sleep 1.5
waited=$(wait_up /metrics 15) || fail "GET /metrics does not answer within 15 s of pg_terminate_backend on the supervisor: $(log_since "$log1" | grep 'http' | tail -5)"
log_since "$log1" | grep -q 'pg_storage_ext http: supervisor stopping: SIGTERM' || fail "the supervisor did not log why it stopped"
! log_since "$log0" | grep -q 'terminated by signal' || fail "a process was terminated by a signal: $(log_since "$log0" | grep 'terminated by signal')"
pass "GET /metrics answers again within $((waited + 2)) s of pg_terminate_backend on the supervisor"

# the report: HTML, every chart, rendered by headless Chromium
code=$(curl -sS -o "$out/report.html" -w '%{http_code} %{content_type}' "$url/")
[ "$code" = "200 text/html; charset=utf-8" ] || fail "GET / answered '$code'"
[ "$(grep -o '<svg' "$out/report.html" | wc -l)" = 9 ] || fail "the report does not have 9 charts"
pass "GET / is the HTML report with 9 charts"
chrome=(chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
  --disable-component-update --disable-sync --user-data-dir="$out/chromium" --window-size=1280,1600)
timeout 120 "${chrome[@]}" --enable-logging=stderr --v=0 --screenshot="$out/report.png" "$url/" >"$out/chromium.log" 2>&1 ||
  fail "chromium could not render the report: $(tail -5 "$out/chromium.log")"
! grep -q 'CONSOLE' "$out/chromium.log" || fail "console messages while rendering: $(grep CONSOLE "$out/chromium.log")"
pass "chromium renders the report with no console message"
timeout 120 "${chrome[@]}" --dump-dom "$url/" >"$out/dom.html" 2>/dev/null || fail "chromium --dump-dom failed"
charts=$(grep -o '<svg[^>]*class="chart"' "$out/dom.html" | wc -l)
lines=$(grep -o '<polyline' "$out/dom.html" | wc -l)
rows=$(grep -o '<tr class="' "$out/dom.html" | wc -l)
[ "$charts" = 9 ] && [ "$lines" -ge 5 ] && [ "$rows" -ge 19 ] ||
  fail "rendered DOM: $charts charts, $lines lines, $rows check rows"
pass "rendered DOM: 9 charts, $lines with lines, $rows check rows"
python3 - "$out/report.png" <<'PY' || fail "the screenshot is blank or unreadable"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w, h, ctype = 8, b"", 0, 0, 0
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        assert depth == 8 and ctype in (2, 6), "unexpected PNG format"
    elif kind == b"IDAT":
        idat += body
    pos += 12 + length
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
colors, dark = set(), 0
i = 0
for _ in range(h):
    f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp * 4):
        px = bytes(line[x:x + 3]); colors.add(px)
        if sum(px) < 300: dark += 1
    prev = line
share = dark / (w * h / 4)
print(f"{w}x{h}, {len(colors)} colours, {share:.1%} dark pixels")
assert len(colors) > 20 and share > 0.005, "blank"
PY
pass "the screenshot is not blank"

# a hot standby of this cluster (pg_basebackup), with its own endpoint: health() and both pages
# answer there; metrics_snapshot() refuses with 25006
as_user "$bin/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres -D "$dir/standby" -R -X stream >/dev/null 2>&1 ||
  fail "pg_basebackup failed"
as_user tee -a "$dir/standby/postgresql.conf" >/dev/null <<CONF
port = $sport
unix_socket_directories = '$dir'
pg_storage_ext.http_listen = '127.0.0.1:$shttp'
CONF
as_user "$bin/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w start >/dev/null || fail "the standby did not start: $(tail -5 "$dir/standby.log")"
sq() { "$bin/psql" -h 127.0.0.1 -p "$sport" -U postgres -d postgres -X -q -At -c "$1" 2>&1; }
[ "$(sq "SELECT pg_is_in_recovery()")" = t ] || fail "the standby is not in recovery"
[ "$(sq "SELECT count(*) FROM storage.health() WHERE status IN ('ok', 'warning', 'critical', 'unknown')")" = 26 ] ||
  fail "health() on the standby: $(sq "SELECT * FROM storage.health()")"
[ "$(sq "SELECT status FROM storage.health() WHERE check_name = 'replication_lag'")" = ok ] ||
  fail "replication_lag on a caught-up standby: $(sq "SELECT status, detail FROM storage.health() WHERE check_name = 'replication_lag'")"
pass "health() answers every check on the hot standby"
got=$(sq "SELECT storage.metrics_snapshot()" || true)
[[ $got == *"cannot run on a hot standby"*"HINT:  Run it"* ]] || fail "metrics_snapshot() on the standby: $got"
[ "$("$bin/psql" -h 127.0.0.1 -p "$sport" -U postgres -d postgres -X -q -At -c "DO \$\$ BEGIN PERFORM storage.metrics_snapshot(); EXCEPTION WHEN read_only_sql_transaction THEN RAISE NOTICE 'x'; END \$\$" 2>&1)" = "NOTICE:  x" ] ||
  fail "metrics_snapshot() on the standby is not 25006"
pass "metrics_snapshot() on the standby is 25006 with a hint"

# every public function on the standby behaves as decided (tests/standby/behaviour.sql, table-driven
# over the catalog): objects made on the primary first, replayed here
q "CREATE SCHEMA sb;
   CREATE TABLE sb.t (id int PRIMARY KEY, v text, tenant int);
   INSERT INTO sb.t VALUES (1, 'a', 1);
   SELECT audit.enable('sb.t');
   UPDATE sb.t SET v = 'b';
   CREATE TABLE sb.p (id int, at timestamptz NOT NULL) PARTITION BY RANGE (at);
   SELECT storage.create_partitions('sb.p', '1 day', 2);
   CREATE MATERIALIZED VIEW sb.mv AS SELECT count(*) AS c FROM sb.t;
   CREATE UNIQUE INDEX ON sb.mv (c);
   SELECT storage.register_matview('sb.mv', '1 hour');
   CREATE TABLE sb.doc (id int PRIMARY KEY, body text);
   INSERT INTO sb.doc VALUES (1, 'Standby replicas answer searches');
   SELECT storage.enable_search('sb.doc', 'tsv', 'english', '{\"body\": \"A\"}');" >/dev/null
lsn=$(q "SELECT pg_current_wal_lsn()")
for _ in $(seq 100); do [ "$(sq "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && break; sleep 0.1; done
[ "$(sq "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] || fail "the standby did not replay the set-up"
cp tests/standby/behaviour.sql "$dir/behaviour.sql"
got=$("$bin/psql" -h 127.0.0.1 -p "$sport" -U postgres -d postgres -X -q -At -v ON_ERROR_STOP=1 -f "$dir/behaviour.sql" 2>&1) ||
  fail "standby behaviour: $got"
got=$(sed 's/^psql:[^ ]* //' <<<"$got")
expected="NOTICE:  standby behaviour: 66 functions as decided
0
t
0
t
1
b
t
1
{\"id\": 1}|<b>Standby</b> <b>replicas</b> answer <b>searches</b>"
[ "$got" = "$expected" ] || fail "standby behaviour: got
$got"
pass "every public function behaves on the standby as decided (66: reads, refuses with 25006 naming the primary, or a trigger); the jobs return at once there and a dry run of the maintenance plan reads; history, row_at, partitions, matviews and search read what the primary wrote"
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$shttp/metrics" 2>/dev/null && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$shttp/metrics" >"$out/standby-metrics.txt" || fail "GET /metrics on the standby"
"$promtool" check metrics <"$out/standby-metrics.txt" >"$out/promtool-standby.txt" 2>&1 || fail "promtool on the standby's /metrics: $(cat "$out/promtool-standby.txt")"
grep -q '^pg_storage_ext_replication_lag_seconds{application_name="self"} ' "$out/standby-metrics.txt" || fail "no own lag on the standby"
[ "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$shttp/")" = 200 ] || fail "GET / on the standby"
pass "the standby's endpoint serves /metrics (promtool passes, its own lag) and /"

# replication status from the heartbeat: caught up, paused, disconnected
q "SELECT storage._heartbeat()" >/dev/null
for _ in $(seq 50); do [ -n "$(sq "SELECT primary_time FROM storage.heartbeat")" ] && break; sleep 0.1; done
[ "$(q "SELECT state FROM storage.replication_status() WHERE state <> 'inactive slot'")" = streaming ] || fail "the primary does not see its standby streaming"
# (the primary's jobs write every few seconds: the standby is caught up between two of them)
for _ in $(seq 100); do
  st=$(sq "SELECT state || ' ' || replay_lag || ' ' || (last_heartbeat IS NOT NULL) FROM storage.replication_status()")
  [[ $st == "streaming 00:00:00 true" || $st == "idle primary 00:00:00 true" ]] && break
  sleep 0.1
done
[[ $st == "streaming 00:00:00 true" || $st == "idle primary 00:00:00 true" ]] || fail "a caught-up standby: $st"
pass "replication_status(): the primary sees the standby streaming; the standby is caught up (lag 0) with the heartbeat"
# an idle primary (its jobs paused, autovacuum off: nothing committed for a minute) is
# 'idle primary' with lag 0 on the standby, not a minute of lag
q "SELECT count(cron.alter_job(jobid, active => false)) FROM cron.job" >/dev/null
q "ALTER SYSTEM SET autovacuum = off" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
ok=
for _ in $(seq 90); do
  [ "$(sq "SELECT state = 'idle primary' AND replay_lag = interval '0' FROM storage.replication_status()")" = t ] && { ok=1; break; }
  sleep 1
done
[ -n "$ok" ] || fail "an idle primary: $(sq "SELECT * FROM storage.replication_status()")"
q "SELECT count(cron.alter_job(jobid, active => true)) FROM cron.job" >/dev/null
q "ALTER SYSTEM RESET autovacuum" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
# the jobs active again on the standby too (the promotion below runs them there)
lsn=$(q "SELECT pg_current_wal_lsn()")
for _ in $(seq 100); do [ "$(sq "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && break; sleep 0.1; done
[ "$(sq "SELECT count(*) FROM cron.job WHERE NOT active")" = 0 ] || fail "the standby did not replay the jobs' reactivation"
pass "replication_status(): a primary idle for a minute is 'idle primary' with lag 0 on the standby"
sq "SELECT pg_wal_replay_pause()" >/dev/null
q "CREATE TABLE after_pause AS SELECT g FROM generate_series(1, 1000) g; SELECT storage._heartbeat()" >/dev/null
ok=
for _ in $(seq 50); do
  [ "$(sq "SELECT state = 'paused' AND byte_lag > 0 FROM storage.replication_status()")" = t ] && { ok=1; break; }
  sleep 0.1
done
[ -n "$ok" ] || fail "a paused standby: $(sq "SELECT * FROM storage.replication_status()")"
sq "SELECT pg_wal_replay_resume()" >/dev/null
pass "replication_status(): paused replay is 'paused' with the bytes not replayed"
sq "ALTER SYSTEM SET primary_conninfo = ''" >/dev/null
sq "SELECT pg_reload_conf()" >/dev/null
ok=
for _ in $(seq 100); do
  [ "$(sq "SELECT state = 'disconnected' AND replay_lag IS NOT NULL AND replay_lag >= interval '0' FROM storage.replication_status()")" = t ] && { ok=1; break; }
  sleep 0.1
done
[ -n "$ok" ] || fail "a standby without WAL receiver: $(sq "SELECT * FROM storage.replication_status()")"
[ "$(sq "SELECT status <> 'unknown' AND detail LIKE 'standby, disconnected: no WAL receiver%' FROM storage.health() WHERE check_name = 'replication_lag'")" = t ] ||
  fail "the lag check of a disconnected standby: $(sq "SELECT status, detail FROM storage.health() WHERE check_name = 'replication_lag'")"
pass "replication_status(): without a WAL receiver the standby is 'disconnected', its lag measured from the last heartbeat (never a false 0)"

# promotion: the standby becomes a primary and the extension's scheduled jobs run there with no
# manual step (pg_cron's launcher starts when recovery ends and finds the jobs replicated in
# cron.job); on the old primary, were it to come back as a standby, pg_cron would run nothing
sq "SELECT pg_promote()" >/dev/null
for _ in $(seq 100); do [ "$(sq "SELECT pg_is_in_recovery()")" = f ] && break; sleep 0.1; done
[ "$(sq "SELECT pg_is_in_recovery()")" = f ] || fail "the standby was not promoted"
promoted=$(sq "SELECT now()")
ok=
for _ in $(seq 400); do
  [ "$(sq "SELECT count(*) > 0 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
            WHERE j.jobname = 'pg_storage_ext.maintenance' AND d.status = 'succeeded' AND d.start_time > '$promoted'")" = t ] &&
    [ "$(sq "SELECT primary_time > '$promoted' FROM storage.heartbeat")" = t ] && { ok=1; break; }
  sleep 0.1
done
[ -n "$ok" ] || fail "no scheduled job ran on the promoted standby: $(sq "SELECT j.jobname, j.active, d.status, d.return_message, d.start_time > '$promoted' FROM cron.job j LEFT JOIN cron.job_run_details d USING (jobid) ORDER BY d.start_time DESC NULLS LAST LIMIT 6")"
[ "$(sq "SELECT role FROM storage.replication_status() LIMIT 1")" != standby ] || fail "the promoted server still reports itself a standby"
pass "after pg_promote() the extension's jobs run on the new primary with no manual step: maintenance succeeded, the heartbeat moves"

# the query statistics history across a restart and a crash (issue 39): pg_stat_statements keeps
# its entries over a clean restart and loses them in a crash; either way no delta is negative and
# what ran after counts
q "CREATE TABLE after_fast (i int); CREATE TABLE after_immediate (i int)" >/dev/null
for _ in 1 2 3 4 5; do q "SELECT count(*) FROM after_fast" >/dev/null; q "SELECT count(*) FROM after_immediate" >/dev/null; done
q "SELECT storage.metrics_snapshot()" >/dev/null
for how in fast immediate; do
  as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m "$how" -w restart >/dev/null || fail "the cluster did not restart ($how)"
  for _ in 1 2 3 4 5; do q "SELECT count(*) FROM after_$how" >/dev/null; done
  q "SELECT storage.metrics_snapshot()" >/dev/null
  got=$(q "SELECT count(*) FILTER (WHERE calls < 0 OR total_ms < 0 OR rows < 0 OR shared_blks_hit < 0 OR shared_blks_read < 0 OR wal_bytes < 0)
                  || ' ' || coalesce((SELECT sum(s.calls) FROM storage.query_stats s
                                       WHERE s.ts = (SELECT max(ts) FROM storage.query_stats)
                                         AND s.queryid IN (SELECT queryid FROM pg_stat_statements WHERE query LIKE '%FROM after_$how')), 0)
             FROM storage.query_stats")
  [ "$got" = "0 5" ] || fail "the query history after a $how restart: negative deltas and calls counted: $got (want 0 5)"
done
pass "the query history across a clean restart (entries kept) and a crash (entries lost): no delta negative, the 5 calls since counted, not the 10 in all"

# a wrong configuration is one clear log line with a growing retry delay, never a FATAL (issue
# 35 L2): a superuser role, then a database that does not exist, then an address that cannot be
# listened on (each checked before the one set before it)
for bad in "pg_storage_ext.http_role = 'postgres'|role \"postgres\" (pg_storage_ext.http_role) is a superuser" \
  "pg_storage_ext.http_database = 'nope'|database \"nope\" (pg_storage_ext.http_database) does not exist" \
  "pg_storage_ext.http_listen = '127.0.0.1:1'|cannot listen on pg_storage_ext.http_listen = \"127.0.0.1:1\""; do
  echo "${bad%%|*}" | as_user tee -a "$dir/data/postgresql.conf" >/dev/null
  log2=$(stat -c %s "$dir/server.log")
  as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w restart >/dev/null || fail "the cluster did not restart with ${bad%%|*}"
  sleep 3
  said=$(log_since "$log2" | grep -cF "pg_storage_ext http: not serving: ${bad#*|}" || true)
  again=$(log_since "$log2" | grep -cF "checking again in 10 s, then less and less often" || true)
  fatal=$(log_since "$log2" | grep 'FATAL' | grep -vc 'due to administrator command' || true)
  [ "$said" = 1 ] && [ "$again" = 1 ] && [ "$fatal" = 0 ] ||
    fail "with ${bad%%|*}: $said clear lines, $again retry notes, $fatal FATAL: $(log_since "$log2" | grep -i 'http\|FATAL' | head -5)"
done
pass "a superuser role, a missing database, an address that cannot be listened on: one clear log line each with a growing retry delay, no FATAL"
