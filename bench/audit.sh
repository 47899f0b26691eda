#!/usr/bin/env bash
# Audit overhead as pgbench sees it: single-row UPDATE transactions (pgbench's TPC-B-like
# `UPDATE ... SET n = n + :delta WHERE id = :id` over 100k rows) on an audited table vs the same
# table unaudited, 2 clients, alternating 3 runs of 5 s each; prints the median TPS of each and
# the ratio audited / bare, and the same for the floor (the UPDATE and its log row written by one
# plain statement, no trigger). Run by scripts/bench.sh after bench/audit.sql.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"

# Undo (first: the log still holds bench/audit.sql's 10M history rows): audit.revert_transaction
# of a committed 10k-row UPDATE of bench.at_t (100k rows) vs the UPDATE itself, both audited,
# each timed statement its own transaction (bench.compare would run them all in one: an undo of
# the transaction it runs in). 5 rounds (quick: 1) of UPDATE, its undo (timed), the UPDATE (timed).
undo_runs=$([ "$runs" -gt 1 ] && echo 5 || echo 1)
a=() b=()
for _ in $(seq "$undo_runs"); do
  q -c "UPDATE bench.at_t SET n = n + 1 WHERE id % 10 = 0" >/dev/null
  a+=("$(q -c "SELECT bench.time_ms('SELECT count(*) FROM audit.revert_transaction((SELECT s.txid::text::bigint FROM audit._log_statement s WHERE s.table_oid = ''bench.at_t''::regclass ORDER BY s.id DESC LIMIT 1), false)')")")
  b+=("$(q -c "SELECT bench.time_ms('UPDATE bench.at_t SET n = n + 1 WHERE id % 10 = 0')")")
done
# (bench/audit.sql left n = 1 on the 10k rows; each round adds 1, undoes it, adds 1)
q -c "SELECT bench.assert((SELECT count(*) FROM bench.at_t WHERE id % 10 = 0 AND n = 1 + $undo_runs) = (SELECT count(*) FROM bench.at_t WHERE id % 10 = 0), 'every undo put its 10k rows back')" >/dev/null
echo "(undo runs, ms: revert ${a[*]}; update ${b[*]})"
ma=$(med "${a[@]}") mb=$(med "${b[@]}")
q -c "SELECT bench.record('audit.revert_transaction of a 10k-row UPDATE vs the UPDATE itself', $ma, $mb, $ma / $mb, '<= 2', 'ms')"

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

# The actor: the audited single-row UPDATE in a transaction that first sets three settings per
# transaction as PostgREST does (one SELECT of set_config(..., true): a user id among 100 end
# users, a tenant, the user's request.jwt.claims from bench.jwt_claims, bench/audit.sql), with
# pg_storage_ext.audit_actor_settings naming the three, against the same transaction setting the
# same values under three names the list does not hold: the same statements, only the capture
# differs. The log is emptied before each run and checked after it: every row of a run with the
# settings carries that end user's three, no row of a run without them carries any. 7 runs each
# (quick: 1), the pair's order swapped every round (the two cores are shared: a few runs are
# slowed by what else runs); the ratio is time per transaction, set / none.
q -c "ALTER DATABASE ${PGDATABASE:-postgres} SET pg_storage_ext.audit_actor_settings = 'app.user_id, app.tenant, request.jwt.claims'" \
  -c "VACUUM ANALYZE bench.a_audited" -c "CHECKPOINT" >/dev/null
for t in set none; do
  if [ $t = set ]; then names=(app.user_id app.tenant request.jwt.claims); else names=(unlisted.user_id unlisted.tenant unlisted.jwt_claims); fi
  cat >"$dir/actor_$t.sql" <<SQL
\set id random(1, $rows)
\set delta random(-5000, 5000)
\set uid random(1, 100)
BEGIN;
SELECT set_config('${names[0]}', :uid::text, true), set_config('${names[1]}', 'tenant-' || (:uid::int % 10), true), set_config('${names[2]}', bench.jwt_claims(:uid::int), true);
UPDATE bench.a_audited SET n = n + :delta WHERE id = :id;
END;
SQL
done
chmod -R a+rX "$dir"
# after a run: how many UPDATE rows, and how many of them do not carry what the run set
actor_check() {
  local want=$1 got
  if [ "$want" = set ]; then
    bad="actor IS NULL OR actor->'request.jwt.claims'->>'email' IS DISTINCT FROM format('user%s@example.com', actor->>'app.user_id')
         OR actor->>'app.tenant' IS DISTINCT FROM 'tenant-' || (actor->>'app.user_id')::int % 10
         OR actor->'request.jwt.claims' <> bench.jwt_claims((actor->>'app.user_id')::int)::jsonb"
  else
    bad="actor IS NOT NULL"
  fi
  got=$(q -c "SELECT count(*) || ' ' || count(*) FILTER (WHERE $bad) FROM audit.log WHERE op = 'UPDATE' AND table_name = 'a_audited'")
  [ "${got%% *}" -gt 0 ] && [ "${got##* }" = 0 ] ||
    die "actor capture, run with settings $want: of ${got%% *} UPDATE rows logged, ${got##* } do not carry the actor they should"
}
actor_runs=$([ "$runs" -gt 1 ] && echo 7 || echo 1)
a=() b=()
for i in $(seq "$actor_runs"); do
  for t in $([ $((i % 2)) = 1 ] && echo set none || echo none set); do
    q -c "TRUNCATE audit._log_row, audit._log_statement" >/dev/null
    v=$(tps "$dir/actor_$t.sql" -M prepared -c 2 -j 2)
    actor_check $t
    if [ $t = set ]; then a+=("$v"); else b+=("$v"); fi
  done
done
q -c "ALTER DATABASE ${PGDATABASE:-postgres} RESET pg_storage_ext.audit_actor_settings" >/dev/null
echo "(actor runs, tps: set ${a[*]}; none ${b[*]})"
ma=$(med "${a[@]}") mb=$(med "${b[@]}")
record 'audit pgbench single-row UPDATE, three actor settings set vs none (time per transaction)' "$ma" "$mb" "$(ratio "$mb" "$ma")" '<= 1.05'
rm -rf "$dir"
