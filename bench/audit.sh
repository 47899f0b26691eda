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
  -c "TRUNCATE audit.log" -c "VACUUM ANALYZE bench.a_audited, bench.a_bare, bench.a_floor" -c "CHECKPOINT"
rows=$(q -c "SELECT count(*) FROM bench.a_src")
dir=$(mktemp -d)
for t in audited bare; do
  printf '\\set id random(1, %s)\n\\set delta random(-5000, 5000)\nUPDATE bench.a_%s SET n = n + :delta WHERE id = :id;\n' \
    "$rows" "$t" >"$dir/$t.sql"
done
# The floor: the same UPDATE and its log row (old and new images, key, changed column) written by
# one plain statement into audit.log, no trigger: what the log itself costs per transaction.
cat >"$dir/floor.sql" <<'SQL'
\set id random(1, ROWS)
\set delta random(-5000, 5000)
WITH u AS (UPDATE bench.a_floor SET n = n + :delta WHERE id = :id RETURNING to_jsonb(old) AS o, to_jsonb(new) AS nw) INSERT INTO audit.log (ts, txid, table_oid, schema_name, table_name, op, pk, old_row, new_row, changed_columns, db_user, role_name, application_name, client_addr) SELECT statement_timestamp(), pg_current_xact_id(), 'bench.a_floor'::regclass, 'bench', 'a_floor', 'UPDATE', u.nw - '{username,email,bio,n,created_at}'::text[], u.o, u.nw, '{n}', session_user, current_user, current_setting('application_name'), inet_client_addr() FROM u WHERE u.o IS DISTINCT FROM u.nw;
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
record 'audit pgbench single-row UPDATE, audited vs bare (TPS ratio)' "$ma" "$mb" "$(ratio "$ma" "$mb")" '>= 0.85'
record 'audit pgbench floor (UPDATE + log row, one plain statement) vs bare (TPS ratio)' "$mf" "$mb" "$(ratio "$mf" "$mb")" ''
record 'audit pgbench audited vs floor (TPS ratio)' "$ma" "$mf" "$(ratio "$ma" "$mf")" ''
echo "($(q -c "SELECT count(*) FROM audit.log WHERE op = 'UPDATE'") UPDATE rows logged)"
rm -rf "$dir"
