#!/usr/bin/env bash
# Writers' latency while a column's type changes (int -> bigint) under 8 pgbench writers at a
# fixed rate (each transaction updates a row and inserts one), plain ALTER TABLE … TYPE vs
# storage.alter_column_type: the p99 of the latency of the writers' transactions that ended
# while the change ran (from their scheduled start: pgbench -R counts the time a transaction
# waited to begin), and the change's total time. The floors of the total, timed alone: one copy
# of every row with the table's indexes built on it (what a copy and swap must write), and one
# UPDATE of every row (what a backfill in place must write). Run by scripts/bench.sh after
# bench/online_schema.sql.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"
dir=$(mktemp -d)
chmod 777 "$dir"
rows=$(q -c "SELECT count(*) FROM bench.osc_plain")
rate=800
# during NAME TABLE COMMAND...: runs the writers on TABLE, COMMAND 2 s in; prints the change's
# seconds, the writers' p99 (ms) over the transactions that ended while it ran, and their count
during() {
  local name=$1 table=$2 t0 t1 writers
  shift 2
  cat >"$dir/$name.sql" <<SQL
\set id random(1, $rows)
\set n random(1, 1000)
BEGIN;
UPDATE $table SET touched = touched + 1 WHERE id = :id;
INSERT INTO $table (id, author_id, views, title) VALUES (nextval('bench.osc_ids'), :n, :n, 'w');
END;
SQL
  chmod a+r "$dir/$name.sql"
  (cd "$dir" && as_user "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -T 600 -R $rate -c 8 -j 2 \
    -l --log-prefix="$dir/$name" -f "$dir/$name.sql" "${PGDATABASE:-postgres}" >/dev/null 2>&1) &
  writers=$!
  sleep 2
  t0=$(date +%s.%N)
  "$@" >/dev/null
  t1=$(date +%s.%N)
  sleep 2
  pkill -INT -f "log-prefix=$dir/$name" || true
  wait "$writers" || true
  # fields: client, transaction, time (µs), script, epoch, µs, schedule lag (µs)
  cat "$dir/$name".* | awk -v a="$t0" -v b="$t1" '{ end = $5 + $6 / 1e6; if (end >= a && end <= b + 1) print ($3 + $7) / 1000 }' |
    sort -g | awk -v took="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" '{v[NR] = $1} END {i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f %.3f %d\n", took, v[i], NR}'
}
# an online change returns at once and ends in its worker: called, then waited for (from here:
# a transaction waiting in the database would hold back its CREATE INDEX CONCURRENTLY)
online() {
  local state
  q -c "SELECT storage.alter_column_type('$1', '$2', '$3')"
  for _ in $(seq 1 36000); do
    state=$(q -c "SELECT state FROM storage._schema_changes WHERE relid = '$1'::regclass ORDER BY id DESC LIMIT 1")
    [ "$state" = running ] || break
    sleep 0.1
  done
  [ "$state" = done ] || die "the change of $1 ended $state: $(q -c "SELECT error FROM storage._schema_changes ORDER BY id DESC LIMIT 1")"
}
read -r plain_s plain_p99 plain_n < <(during plain bench.osc_plain q -c "ALTER TABLE bench.osc_plain ALTER COLUMN views TYPE bigint")
read -r ours_s ours_p99 ours_n < <(during ours bench.osc_ours online bench.osc_ours views bigint)
# the floors, alone and without writers. A copy and swap: every row copied once beside the table
# with its new column (one statement), the table's indexes built on the copy, and the new
# column's index built. A backfill in place: one UPDATE of every row writing its new column.
q -c "ALTER TABLE bench.osc_floor ADD COLUMN views_new bigint"
q -c "CREATE TABLE bench.osc_floor_copy (LIKE bench.osc_floor)"
f0=$(date +%s.%N)
q -c "INSERT INTO bench.osc_floor_copy SELECT id, author_id, views, title, touched, views FROM bench.osc_floor"
q -c "CREATE UNIQUE INDEX ON bench.osc_floor_copy (id)"
q -c "CREATE INDEX ON bench.osc_floor_copy (views)"
q -c "CREATE INDEX ON bench.osc_floor_copy (views_new)"
copy_floor_s=$(awk -v a="$f0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f", b - a}')
f0=$(date +%s.%N)
q -c "UPDATE bench.osc_floor SET views_new = views"
floor_s=$(awk -v a="$f0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f", b - a}')
rm -rf "$dir"
echo "plain ALTER: ${plain_s} s, writers' p99 ${plain_p99} ms ($plain_n transactions during it)"
echo "storage.alter_column_type: ${ours_s} s, writers' p99 ${ours_p99} ms ($ours_n transactions during it)"
echo "floor of a copy and swap (one copy of every row, the indexes built on it, alone): ${copy_floor_s} s"
echo "floor of a backfill in place (one UPDATE of every row, alone): ${floor_s} s"
q -c "SELECT bench.record('online schema changes: writers'' p99 latency (from their scheduled start, 8 writers at $rate tps) while int becomes bigint, storage.alter_column_type vs plain ALTER TABLE … TYPE', $ours_p99, $plain_p99, $ours_p99 / nullif($plain_p99, 0), '<= 0.05')"
q -c "SELECT bench.record('online schema changes: total time of the same change, storage.alter_column_type vs the plain rewrite (floor of its copy and swap: one copy of every row and its indexes, alone, ${copy_floor_s} s = ' || round($copy_floor_s / nullif($plain_s, 0), 2) || 'x; of a backfill in place: ${floor_s} s = ' || round($floor_s / nullif($plain_s, 0), 2) || 'x)', $ours_s, $plain_s, $ours_s / nullif($plain_s, 0), '<= 3', 's')"
