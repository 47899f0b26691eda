#!/usr/bin/env bash
# Audit overhead as pgbench sees it: single-row UPDATE transactions (pgbench's TPC-B-like
# `UPDATE ... SET n = n + :delta WHERE id = :id` over 100k rows) on an audited table vs the same
# table unaudited, 2 clients, alternating 3 runs of 5 s each; prints the median TPS of each and
# the ratio audited / bare, and the same for the floor (the UPDATE and its log row written by one
# plain statement, no trigger). Run by scripts/bench.sh after bench/audit.sql.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"
q -c "TRUNCATE bench.a_audited, bench.a_bare, bench.a_floor" \
  -c "INSERT INTO bench.a_audited SELECT * FROM bench.a_src" \
  -c "INSERT INTO bench.a_bare SELECT * FROM bench.a_src" \
  -c "INSERT INTO bench.a_floor SELECT * FROM bench.a_src" \
  -c "TRUNCATE audit._log_row, audit._log_statement" -c "VACUUM ANALYZE bench.a_audited, bench.a_bare, bench.a_floor" -c "CHECKPOINT"
rows=$(q -c "SELECT count(*) FROM bench.a_src")
dir=$(mktemp -d)
for t in audited bare; do
  printf '\\set id random(1, %s)\n\\set delta random(-5000, 5000)\nUPDATE bench.a_%s SET n = n + :delta WHERE id = :id;\n' \
    "$rows" "$t" >"$dir/$t.sql"
done
# The floor: the same UPDATE and its log rows (a statement row, and the changed row with the key
# hash, the old image and the changed column) written by one plain statement into the same
# tables, no trigger: what the log itself costs per transaction.
cat >"$dir/floor.sql" <<'SQL'
\set id random(1, ROWS)
\set delta random(-5000, 5000)
WITH u AS (UPDATE bench.a_floor SET n = n + :delta WHERE id = :id RETURNING to_jsonb(old) AS o, to_jsonb(new) AS nw), s AS (INSERT INTO audit._log_statement (id, ts, txid, table_oid, op, context) SELECT nextval('audit.log_id_seq'), statement_timestamp(), pg_current_xact_id(), 'bench.a_floor'::regclass, 'UPDATE', 1 FROM u RETURNING id) INSERT INTO audit._log_row (id, statement_id, ts, key_hash, old_row, new_row) SELECT nextval('audit.log_id_seq'), s.id, statement_timestamp(), jsonb_hash_extended(u.nw - '{title,body,n,created}'::text[], 0), u.o, jsonb_build_object('n', u.nw -> 'n') FROM u, s WHERE u.o IS DISTINCT FROM u.nw;
SQL
sed -i "s/ROWS/$rows/" "$dir/floor.sql"
chmod -R a+rX "$dir"
a=() b=() f=()
for _ in $(seq "$runs"); do
  a+=("$(tps "$dir/audited.sql" -M prepared -c 2 -j 2)")
  b+=("$(tps "$dir/bare.sql" -M prepared -c 2 -j 2)")
  f+=("$(tps "$dir/floor.sql" -M prepared -c 2 -j 2)")
done
ma=$(med "${a[@]}") mb=$(med "${b[@]}") mf=$(med "${f[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", a / b}'; }
record 'audit pgbench single-row UPDATE, audited vs bare (TPS ratio)' "$ma" "$mb" "$(ratio "$ma" "$mb")" '>= 0.60'
record 'audit pgbench floor (UPDATE + log row, one plain statement) vs bare (TPS ratio)' "$mf" "$mb" "$(ratio "$mf" "$mb")" ''
record 'audit pgbench audited vs floor (TPS ratio)' "$ma" "$mf" "$(ratio "$ma" "$mf")" ''
echo "($(q -c "SELECT count(*) FROM audit.log WHERE op = 'UPDATE'") UPDATE rows logged)"
# The same with fsync and synchronous_commit on (the bench cluster runs with both off): a
# commit waits for its WAL to reach the disk, for audited and bare alike.
q -c "ALTER SYSTEM SET fsync = on" -c "SELECT pg_reload_conf()" -c "ALTER DATABASE ${PGDATABASE:-postgres} SET synchronous_commit = on" >/dev/null
a=() b=()
for _ in $(seq "$runs"); do
  a+=("$(tps "$dir/audited.sql" -M prepared -c 2 -j 2)")
  b+=("$(tps "$dir/bare.sql" -M prepared -c 2 -j 2)")
done
q -c "ALTER SYSTEM RESET fsync" -c "SELECT pg_reload_conf()" -c "ALTER DATABASE ${PGDATABASE:-postgres} RESET synchronous_commit" >/dev/null
ma=$(med "${a[@]}") mb=$(med "${b[@]}")
record 'audit pgbench single-row UPDATE with fsync and synchronous_commit on, audited vs bare (TPS ratio)' "$ma" "$mb" "$(ratio "$ma" "$mb")" '>= 0.90'
rm -rf "$dir"
