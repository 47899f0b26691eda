#!/usr/bin/env bash
# Usage: cluster.sh start|stop|psql NAME [PORT]
# A throwaway PostgreSQL 18 cluster with pg_cron preloaded, owned by the unprivileged user, data
# and socket under run_dir()/NAME, listening on 127.0.0.1:PORT. `start` replaces any old cluster
# of that name (stopping a leftover postmaster first). PGSE_PRELOAD names libraries to preload
# before pg_cron (scripts/citus.sh: citus, which must come first); PGSE_PREPARED sets
# max_prepared_transactions (0 otherwise, as by default).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cmd=$1 name=$2 port=${3:-28818}
PGC=$(find_pg_config)
bin=$("$PGC" --bindir)
dir=$(run_dir)/$name

stop() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 ||
      as_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
}

case $cmd in
  start)
    stop
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown "$PGSE_RUNAS" "$dir"
    as_user "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      die "initdb failed: $(cat "$dir/initdb.log")"
    as_user tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = '${PGSE_PRELOAD:+$PGSE_PRELOAD,}pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
max_locks_per_transaction = 1024
${PGSE_PREPARED:+max_prepared_transactions = $PGSE_PREPARED}
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    # RUST_BACKTRACE=1 (the environment a developer's shell may have): no backtrace may reach a
    # client or the log whatever the environment; scripts/test.sh greps the logs for one
    as_user env RUST_BACKTRACE="${PGSE_RUST_BACKTRACE:-1}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null ||
      die "cluster $name did not start: $(tail -5 "$dir/server.log")"
    ;;
  stop) stop ;;
  psql) exec "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres "${@:4}" ;;
  *) die "usage: cluster.sh start|stop|psql NAME [PORT]" ;;
esac
