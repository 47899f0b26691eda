#!/usr/bin/env bash
# Everything `make test` (and so CI) runs: set-up, formatting, lints, the pure-Rust tests, the
# #[pg_test]s, the pg_regress suite and the integration tests. Exits non-zero on any failure.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$PGSE_ROOT"
"$PGSE_ROOT/scripts/setup.sh"
PGC=$(find_pg_config)
export PG_CONFIG=$PGC
RUN=$(run_dir)
summary=$RUN/test-summary.log
: >"$summary"
# Keeps each runner's counts for the closing line.
count() { tee -a "$summary"; }

step_start "cargo fmt"
cargo fmt --all --check
step_end ok

step_start "cargo clippy"
cargo clippy --quiet --workspace --all-targets -- -D warnings
step_end ok

step_start "pure-Rust tests"
cargo test --quiet -p pg_storage_core --lib 2>&1 | count
step_end ok

step_start "pg_test (cargo pgrx test)"
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$RUN/pgrx-data"; chown "$PGSE_RUNAS" "$RUN/pgrx-data"
  cargo pgrx test pg18 --runas "$PGSE_RUNAS" --pgdata "$RUN/pgrx-data" 2>&1 | count
else
  cargo pgrx test pg18 2>&1 | count
fi
step_end ok

install_extension

step_start "pg_regress"
regress=$RUN/regress
rm -rf "$regress"; mkdir -p "$regress"
cp -r tests/pg_regress/sql tests/pg_regress/expected tests/pg_regress/include "$regress/"
printf "shared_preload_libraries = 'pg_cron'\ncron.database_name = 'regression'\n" >"$regress/temp.conf"
[ "$(id -u)" = 0 ] && chown -R "$PGSE_RUNAS" "$regress"
pg_regress=$(dirname "$("$PGC" --pgxs)")/../test/regress/pg_regress
tests=$(cd tests/pg_regress/sql && ls ./*.sql | sed 's|^\./||; s|\.sql$||' | sort)
# shellcheck disable=SC2086
# psql reads each file from standard input, so `\ir ../include/helpers.sql` resolves against the
# working directory: run from the copied sql/ folder. The temporary instance gets the C.UTF-8
# locale (so UTF8), as every cluster of scripts/cluster.sh, whatever the caller's environment (a
# caller without LANG would get SQL_ASCII: psql would align non-ASCII text by bytes, and text
# search would not lowercase it).
if ! (cd "$regress/sql" && as_user env LANG=C.UTF-8 "$pg_regress" --temp-instance="$regress/tmp" \
  --temp-config="$regress/temp.conf" \
  --inputdir="$regress" --outputdir="$regress" --bindir="$("$PGC" --bindir)" \
  --port=28830 --load-extension=pg_storage_ext $tests >"$regress/run.log" 2>&1); then
  cat "$regress/run.log"
  [ -f "$regress/regression.diffs" ] && cat "$regress/regression.diffs"
  die "pg_regress failed"
fi
grep -E '^(ok|not ok)' "$regress/run.log" | count
# No input may crash a backend: a crash is recovered from silently unless we look.
if grep -H 'terminated by signal' "$regress"/log/*.log; then die "a backend crashed during pg_regress"; fi
step_end ok

step_start "integration tests"
# pg_stat_statements preloaded for the query statistics history (tests/query_stats.rs)
# and prepared transactions for the xmin_horizon check's (tests/health.rs)
PGSE_PREPARED=8 PGSE_PRELOAD=pg_stat_statements "$PGSE_ROOT/scripts/cluster.sh" start itest 28819
trap '"$PGSE_ROOT/scripts/cluster.sh" stop itest 28819' EXIT
PGSE_TEST_PORT=28819 cargo test --quiet -p pg_storage_integration --test '*' -- --test-threads=1 2>&1 | count
# (but for the online schema change worker tests/online_schema.rs kills with SIGKILL on purpose)
if grep -H 'terminated by signal' "$RUN/itest/server.log" |
   grep -v 'background worker "pg_storage_ext schema change" (PID [0-9]*) was terminated by signal 9: Killed'; then
  die "a backend crashed during the integration tests"
fi
# the cluster ran with RUST_BACKTRACE=1 (scripts/cluster.sh): no native stack trace in its log
if grep -HE 'std::backtrace|pgrx_pg_sys::submodules::panic|\.cargo/registry/src' "$RUN/itest/server.log" | head -5 | grep .; then
  die "a Rust backtrace reached the server log during the integration tests"
fi
step_end ok

# The Citus tier (tests/integration/tests/citus.rs): a coordinator and two workers built from the
# vendored Citus source; without that source the tier is skipped, and says so (nothing counted).
step_start "citus tier"
if scripts/citus.sh available; then
  scripts/citus.sh build
  scripts/citus.sh start 28870
  trap '"$PGSE_ROOT/scripts/cluster.sh" stop itest 28819; "$PGSE_ROOT/scripts/citus.sh" stop 28870' EXIT
  PGSE_CITUS_PORT=28870 cargo test --quiet -p pg_storage_integration --test citus -- --ignored --test-threads=1 2>&1 | count
  for i in 0 1 2; do
    if grep -H 'terminated by signal' "$RUN/citus$i/server.log"; then die "a backend crashed during the Citus tier"; fi
  done
  scripts/citus.sh stop 28870
  step_end ok
else
  step_end "skipped: no vendored Citus source at $(scripts/citus.sh where) (not counted)"
fi

step_start "ssl cluster"
"$PGSE_ROOT/scripts/test-ssl.sh" 28841 | count
step_end ok

step_start "http endpoint"
"$PGSE_ROOT/scripts/test-http.sh" 28861 28862 | count
step_end ok

step_start "routing endpoints (haproxy)"
"$PGSE_ROOT/scripts/test-routing.sh" 28881 28882 | count
step_end ok

step_start "endpoint TLS and auth (prometheus)"
"$PGSE_ROOT/scripts/test-prometheus.sh" 28891 28892 | count
step_end ok

passed=$(awk '/^test result: ok\./ {n += $4} /^ok / {n++} END {print n + 0}' "$summary")
echo "make test: $passed passed, 0 failed"
