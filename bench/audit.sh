#!/usr/bin/env bash
# Audit overhead as pgbench sees it: single-row UPDATE transactions (pgbench's TPC-B-like
# `UPDATE ... SET n = n + :delta WHERE id = :id` over 100k rows) on an audited table vs the same
# table unaudited, 2 clients, alternating 3 runs of 5 s each; prints the median TPS of each and
# the ratio audited / bare. Run by scripts/bench.sh after bench/audit.sql.
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
port=$1
bin=$("$(find_pg_config)" --bindir)
q() { scripts/cluster.sh psql bench "$port" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "TRUNCATE bench.a_audited, bench.a_bare" \
  -c "INSERT INTO bench.a_audited SELECT * FROM bench.a_src" \
  -c "INSERT INTO bench.a_bare SELECT * FROM bench.a_src" \
  -c "TRUNCATE audit.log" -c "VACUUM ANALYZE bench.a_audited, bench.a_bare" -c "CHECKPOINT"
rows=$(q -c "SELECT count(*) FROM bench.a_src")
dir=$(mktemp -d)
for t in audited bare; do
  printf '\\set id random(1, %s)\n\\set delta random(-5000, 5000)\nUPDATE bench.a_%s SET n = n + :delta WHERE id = :id;\n' \
    "$rows" "$t" >"$dir/$t.sql"
done
chmod -R a+rX "$dir"
tps() { as_user "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -M prepared -c 2 -j 2 -T 5 -f "$dir/$1.sql" postgres 2>&1 |
  awk '/^tps =/ {print $3}'; }
a=() b=()
for _ in 1 2 3; do a+=("$(tps audited)"); b+=("$(tps bare)"); done
med() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
ma=$(med "${a[@]}") mb=$(med "${b[@]}")
logged=$(q -c "SELECT count(*) FROM audit.log WHERE op = 'UPDATE'")
echo "audit, pgbench single-row UPDATE transactions: audited $ma tps, bare $mb tps, ratio $(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.3f", a / b}') (audited / bare TPS; $logged UPDATE rows logged)"
rm -rf "$dir"
