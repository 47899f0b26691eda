#!/usr/bin/env bash
# Usage: citus.sh available | where | build | start PORT | stop PORT
# The Citus tier of `make test` (issue: scale-out on Citus). Citus is a test dependency, never the
# product's: users install it from its own packages. No registry reachable here carries it, so its
# upstream source is vendored beside the project (PGSE_VENDOR, default ../shared/vendor from the
# project root) with its sha256.
#   available   exit 0 when the vendored source is there
#   where       the path it is looked for at
#   build       checks the sha256, builds Citus with PGXS into the PostgreSQL in use (once: kept
#               in that installation, which lives in the cache)
#   start PORT  a coordinator on PORT and two workers on PORT+1 and PORT+2 (scripts/cluster.sh
#               clusters citus0..2 with citus preloaded), the workers added to the coordinator
#   stop PORT   stops the three
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$PGSE_ROOT"
version=14.0.1
# The vendored source: PGSE_VENDOR, else ../shared/vendor beside the project, or beside the
# repository a clone was made from (CI runs in a fresh clone of the work tree).
vendor=${PGSE_VENDOR:-}
if [ -z "$vendor" ]; then
  origin=$(git -C "$PGSE_ROOT" config --get remote.origin.url 2>/dev/null || true)
  for d in "$PGSE_ROOT/../shared/vendor" ${origin:+"$origin/../shared/vendor"}; do
    if [ -f "$d/citus-$version.tar.gz" ]; then vendor=$d; break; fi
  done
fi
archive=${vendor:-$PGSE_ROOT/../shared/vendor}/citus-$version.tar.gz
PGC=$(find_pg_config)

case ${1:-} in
  available) [ -f "$archive" ] && [ -f "$archive.sha256" ] ;;
  where) echo "$archive" ;;
  build)
    control=$("$PGC" --sharedir)/extension/citus.control
    if [ -f "$control" ] && grep -q "default_version = '14.0" "$control"; then
      echo "citus $version already built into $("$PGC" --bindir)/.."
      exit 0
    fi
    step_start "citus $version"
    [ -f "$archive" ] || die "no vendored Citus source at $archive"
    want=$(awk '{print $1}' "$archive.sha256")
    got=$(sha256sum "$archive" | awk '{print $1}')
    [ "$want" = "$got" ] || die "citus-$version.tar.gz: sha256 $got, expected $want"
    src=$PGSE_CACHE/build/citus-$version
    rm -rf "$src"; mkdir -p "$PGSE_CACHE/build"
    tar -xzf "$archive" -C "$PGSE_CACHE/build"
    log=$PGSE_CACHE/build/citus-$version.log
    (cd "$src" && ./configure PG_CONFIG="$PGC" --without-libcurl && make -j"$(nproc)" && make install) >"$log" 2>&1 ||
      die "building Citus failed: $(tail -5 "$log")"
    step_end "built from $(basename "$archive") (sha256 checked)"
    ;;
  start)
    port=${2:?port}
    for i in 0 1 2; do
      PGSE_PRELOAD=citus scripts/cluster.sh start "citus$i" $((port + i))
      scripts/cluster.sh psql "citus$i" $((port + i)) -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION citus" >/dev/null
    done
    scripts/cluster.sh psql citus0 "$port" -X -q -v ON_ERROR_STOP=1 \
      -c "SELECT citus_set_coordinator_host('127.0.0.1', $port)" \
      -c "SELECT citus_add_node('127.0.0.1', $((port + 1)))" \
      -c "SELECT citus_add_node('127.0.0.1', $((port + 2)))" >/dev/null
    ;;
  stop)
    port=${2:?port}
    for i in 0 1 2; do scripts/cluster.sh stop "citus$i" $((port + i)); done
    ;;
  *) die "usage: citus.sh available|where|build|start PORT|stop PORT" ;;
esac
