#!/usr/bin/env bash
# The audit change feed under pgbench (issue 40), after bench/audit_feed.sql:
# 1. single-row UPDATE transactions, 8 clients, on an audited table a feed reads vs the same
#    audited table no feed reads (goal <= 1.05 in time per transaction); and the floor of a
#    notification per commit: a bare UPDATE with pg_notify vs the bare UPDATE (PostgreSQL
#    serialises the commits of notifying transactions: one lock for the queue).
# 2. one consumer reading and acknowledging 100k changes (20k transactions of 5 rows) in batches
#    of 1,000 with a commit per batch, in the database (a procedure): changes per second against
#    the issue's 100,000, and against a reader of audit.log by id range in the same batches (the
#    naive consumer that misses late commits).
# 3. LISTEN: the wake-up latency of a consumer from a commit (bench/feed_listen.c: probe statement
#    sent to notification received) while 8 pgbench clients update a fed table: p99 against the
#    issue's 100 ms, and against the same probe notifying by a plain NOTIFY of its own.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"
quick=${BENCH_QUICK:-}
db=${PGDATABASE:-postgres}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", a / b}'; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# 1. pgbench UPDATE
q -c "CREATE TABLE bench.fu_fed (id int PRIMARY KEY, n int NOT NULL, body text)" \
  -c "INSERT INTO bench.fu_fed SELECT i, 0, md5(i::text) FROM generate_series(1, 100000) i" \
  -c "CREATE TABLE bench.fu_plain (LIKE bench.fu_fed INCLUDING ALL)" \
  -c "INSERT INTO bench.fu_plain SELECT * FROM bench.fu_fed" \
  -c "CREATE TABLE bench.fu_bare (LIKE bench.fu_fed INCLUDING ALL)" \
  -c "INSERT INTO bench.fu_bare SELECT * FROM bench.fu_fed" \
  -c "SELECT audit.enable('bench.fu_fed'), audit.enable('bench.fu_plain')" \
  -c "SELECT audit.create_feed('bench_u', ARRAY['bench.fu_fed']::regclass[])" \
  -c "VACUUM ANALYZE bench.fu_fed, bench.fu_plain, bench.fu_bare" -c "CHECKPOINT" >/dev/null
for t in fed plain bare; do
  printf '\\set id random(1, 100000)\nUPDATE bench.fu_%s SET n = n + 1 WHERE id = :id;\n' "$t" >"$dir/$t.sql"
done
printf '\\set id random(1, 100000)\nBEGIN;\nUPDATE bench.fu_bare SET n = n + 1 WHERE id = :id;\nSELECT pg_notify('"'"'bench_floor'"'"', '"'"'bench.fu_bare'"'"');\nCOMMIT;\n' >"$dir/notify.sql"
printf '\\set id random(1, 100000)\nBEGIN;\nUPDATE bench.fu_bare SET n = n + 1 WHERE id = :id;\nCOMMIT;\n' >"$dir/bare_tx.sql"
chmod -R a+rX "$dir"
a=() b=() f=() g=()
for _ in $(seq "$runs"); do
  a+=("$(tps "$dir/fed.sql" -M prepared -c 8 -j 2)")
  b+=("$(tps "$dir/plain.sql" -M prepared -c 8 -j 2)")
  f+=("$(tps "$dir/notify.sql" -M prepared -c 8 -j 2)")
  g+=("$(tps "$dir/bare_tx.sql" -M prepared -c 8 -j 2)")
done
ma=$(med "${a[@]}") mb=$(med "${b[@]}") mf=$(med "${f[@]}") mg=$(med "${g[@]}")
record 'audit feed: pgbench single-row UPDATE, 8 clients, fed vs audited without a feed (time per transaction)' "$ma" "$mb" "$(ratio "$mb" "$ma")" '<= 1.05'
record 'audit feed floor: bare UPDATE + pg_notify vs bare UPDATE, 8 clients (time per transaction)' "$mf" "$mg" "$(ratio "$mg" "$mf")" ''
q -c "SELECT audit.drop_feed('bench_u')" >/dev/null

# 2. one consumer's throughput
txns=$([ -n "$quick" ] && echo 2000 || echo 20000)
q -c "TRUNCATE audit._log_row, audit._log_statement" \
  -c "CREATE TABLE bench.fr (id bigint PRIMARY KEY, n int, body text)" \
  -c "SELECT audit.enable('bench.fr')" -c "SELECT audit.create_feed('bench_r', ARRAY['bench.fr']::regclass[])" \
  -c "CREATE TABLE bench.fr_naive (last bigint)" -c "INSERT INTO bench.fr_naive VALUES (0)" >/dev/null
q -c "DO \$\$ BEGIN FOR i IN 0..$((txns - 1)) LOOP
        INSERT INTO bench.fr SELECT i * 5 + g, 0, md5(g::text) FROM generate_series(1, 5) g; COMMIT;
      END LOOP; END \$\$" >/dev/null
q -c "VACUUM ANALYZE bench.fr" -c "VACUUM ANALYZE audit._log_row, audit._log_statement" >/dev/null
q <<'SQL'
CREATE PROCEDURE bench.consume(feed text, batch int, INOUT n bigint DEFAULT 0, INOUT ms double precision DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); got bigint; last bigint;
BEGIN
    LOOP
        SELECT count(*), max(r.position) INTO got, last FROM audit.read_feed(feed, batch) r;
        EXIT WHEN got = 0;
        PERFORM audit.ack_feed(feed, last);
        COMMIT;
        n := n + got;
    END LOOP;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;
CREATE PROCEDURE bench.consume_naive(batch int, INOUT n bigint DEFAULT 0, INOUT ms double precision DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); got bigint; upto bigint;
BEGIN
    LOOP
        SELECT count(*), max(l.id) INTO got, upto
          FROM (SELECT * FROM audit.log l WHERE l.id > (SELECT f.last FROM bench.fr_naive f) ORDER BY l.id LIMIT batch) l;
        EXIT WHEN got = 0;
        UPDATE bench.fr_naive SET last = upto;
        COMMIT;
        n := n + got;
    END LOOP;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;
SQL
read -r n1 ms1 < <(q -F ' ' -c "CALL bench.consume('bench_r', 1000)")
read -r n2 ms2 < <(q -F ' ' -c "CALL bench.consume_naive(1000)")
q -c "SELECT bench.assert($n1 = $((txns * 5)) AND $n2 = $((txns * 5)), 'both consumers read every change ($n1, $n2 of $((txns * 5)))')" >/dev/null
ours=$(awk -v n="$n1" -v ms="$ms1" 'BEGIN {printf "%.0f", n / ms * 1000}')
naive=$(awk -v n="$n2" -v ms="$ms2" 'BEGIN {printf "%.0f", n / ms * 1000}')
q -c "SELECT bench.record('audit feed: read_feed + ack_feed, one consumer, batches of 1,000 committed, vs the issue''s 100,000 (changes/s)', $ours, 100000, $ours / 100000.0, '>= 1', 'changes/s')"
q -c "SELECT bench.record('audit feed: read_feed + ack_feed vs a reader of audit.log by id range (changes/s, higher is better)', $ours, $naive, $ours::float8 / $naive, NULL, 'changes/s')"

# 3. LISTEN latency under 8 writers
PGC=$(find_pg_config)
cc -O2 -o "$dir/feed_listen" "$PGSE_ROOT/bench/feed_listen.c" -I"$("$PGC" --includedir)" -L"$("$PGC" --libdir)" \
  -Wl,-rpath,"$("$PGC" --libdir)" -lpq || die "bench/feed_listen.c did not compile"
chmod a+rx "$dir" "$dir/feed_listen"
q -c "CREATE TABLE bench.fl_probe (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())" \
  -c "CREATE TABLE bench.fl_plain (LIKE bench.fl_probe INCLUDING ALL)" \
  -c "SELECT audit.enable('bench.fl_probe'), audit.enable('bench.fl_plain')" \
  -c "SELECT audit.create_feed('bench_l', ARRAY['bench.fl_probe', 'bench.fu_fed']::regclass[])" >/dev/null
probes=$([ -n "$quick" ] && echo 20 || echo 300)
load_secs=$(( probes * 2 * 30 / 1000 + 15 ))
as_user "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -M prepared -c 8 -j 2 -T "$load_secs" -f "$dir/fed.sql" "$db" >/dev/null 2>&1 &
loader=$!
sleep 2
conn="host=127.0.0.1 port=$port user=postgres dbname=$db"
as_user "$dir/feed_listen" "$conn" audit_feed bench.fl_probe "INSERT INTO bench.fl_probe DEFAULT VALUES" "$probes" >"$dir/ours.txt" ||
  die "the feed's LISTEN probe failed"
as_user "$dir/feed_listen" "$conn" bench_plain x "INSERT INTO bench.fl_plain DEFAULT VALUES; NOTIFY bench_plain, 'x'" "$probes" >"$dir/plain.txt" ||
  die "the plain NOTIFY probe failed"
wait "$loader" || true
p99() { sort -g "$1" | awk '{v[NR] = $1} END {i = int(NR * 0.99); if (i < 1) i = 1; print v[i]}'; }
po=$(p99 "$dir/ours.txt") pp=$(p99 "$dir/plain.txt")
echo "(LISTEN probes: ours max $(sort -g "$dir/ours.txt" | tail -1) ms, plain NOTIFY max $(sort -g "$dir/plain.txt" | tail -1) ms)"
q -c "SELECT bench.record('audit feed: commit to LISTEN wake-up p99 under 8 pgbench writers, vs the issue''s 100 ms', $po, 100, $po / 100.0, '<= 1', 'ms')"
q -c "SELECT bench.record('audit feed: commit to LISTEN wake-up p99, vs a plain NOTIFY in the same load', $po, $pp, $po / $pp, NULL, 'ms')"
