#!/usr/bin/env bash
# Usage: supa-audit.sh available | where | build
# supa_audit, the anchor of the audit benchmark (bench/audit_supa.sql; scripts/bench.sh). A bench
# dependency only, never the product's. No registry reachable here carries it, so its upstream
# source is vendored beside the project (PGSE_VENDOR, default ../shared/vendor from the project
# root) with its sha256. Its control file requires uuid-ossp, which a PostgreSQL configured without
# --with-uuid (scripts/setup.sh's build) lacks: `build` first builds contrib's uuid-ossp from the
# source of the PostgreSQL in use (the Debian orig tarball setup.sh built it from, in
# $PGSE_CACHE/src), configured as that build was plus --with-uuid=e2fs against Debian's uuid-dev.
#   available   exit 0 when the vendored source is there
#   where       the path it is looked for at
#   build       uuid-ossp (when the PostgreSQL in use has none), then supa_audit (sha256 checked),
#               installed into that PostgreSQL (once: kept in that installation, in the cache)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$PGSE_ROOT"
# Run under `make`, we inherit MAKELEVEL/MAKEFLAGS; PostgreSQL's Makefile.global generates its
# headers only at MAKELEVEL 0 (as in scripts/setup.sh).
unset MAKELEVEL MAKEFLAGS MFLAGS MAKEOVERRIDES
version=0.3.1
# The vendored source: PGSE_VENDOR, else ../shared/vendor beside the project, or beside the
# repository a clone was made from (CI runs in a fresh clone of the work tree).
vendor=${PGSE_VENDOR:-}
if [ -z "$vendor" ]; then
  origin=$(git -C "$PGSE_ROOT" config --get remote.origin.url 2>/dev/null || true)
  for d in "$PGSE_ROOT/../shared/vendor" ${origin:+"$origin/../shared/vendor"}; do
    if [ -f "$d/supa_audit-$version.tar.gz" ]; then vendor=$d; break; fi
  done
fi
archive=${vendor:-$PGSE_ROOT/../shared/vendor}/supa_audit-$version.tar.gz
PGC=$(find_pg_config)
ext=$("$PGC" --sharedir)/extension

# contrib/uuid-ossp of the PostgreSQL in use, built with Debian's libuuid (e2fs).
build_uuid_ossp() {
  local pgv tarball src log configure prefix packages
  step_start "uuid-ossp"
  packages=$(install_packages uuid-dev)
  # the source of this very version (setup.sh left its tarball in the cache), else Debian's
  # current postgresql-18 (same major version: the same server ABI)
  pgv=$("$PGC" --version | awk '{print $2}')
  tarball=$(ls "$PGSE_CACHE"/src/postgresql-18_"$pgv".orig.tar.* 2>/dev/null | head -n1 || true)
  if [ -z "$tarball" ]; then
    tarball=$(scripts/debian-source.sh postgresql-18)
    echo "note: no source of PostgreSQL $pgv in $PGSE_CACHE/src; uuid-ossp from $(basename "$tarball")" >&2
  fi
  src=$PGSE_CACHE/build/uuid-ossp
  log=$PGSE_CACHE/build/uuid-ossp.log
  rm -rf "$src"; mkdir -p "$src"
  tar -xf "$tarball" -C "$src" --strip-components=1
  # configured as the PostgreSQL in use was (its pg_config says how), into its prefix (the
  # installation may have moved since: setup.sh's prefix is pg_config's grandparent), plus uuid
  eval "configure=($("$PGC" --configure))"
  prefix=$(dirname "$(dirname "$PGC")")
  (cd "$src" &&
    ./configure "${configure[@]}" --prefix="$prefix" --with-uuid=e2fs &&
    make -C contrib/uuid-ossp &&
    make -C contrib/uuid-ossp install) >"$log" 2>&1 ||
    die "building uuid-ossp failed: $(tail -5 "$log")"
  [ -f "$ext/uuid-ossp.control" ] || die "uuid-ossp built but not installed into $ext (see $log)"
  rm -rf "$src"
  step_end "built from $(basename "$tarball") (--with-uuid=e2fs; uuid-dev $packages)"
}

case ${1:-} in
  available) [ -f "$archive" ] && [ -f "$archive.sha256" ] ;;
  where) echo "$archive" ;;
  build)
    [ -f "$ext/uuid-ossp.control" ] || build_uuid_ossp
    if [ -f "$ext/supa_audit.control" ] && grep -q "default_version = '$version'" "$ext/supa_audit.control"; then
      exit 0
    fi
    step_start "supa_audit $version"
    [ -f "$archive" ] || die "no vendored supa_audit source at $archive"
    want=$(awk '{print $1}' "$archive.sha256")
    got=$(sha256sum "$archive" | awk '{print $1}')
    [ "$want" = "$got" ] || die "supa_audit-$version.tar.gz: sha256 $got, expected $want"
    src=$PGSE_CACHE/build/supa_audit-$version
    log=$PGSE_CACHE/build/supa_audit-$version.log
    rm -rf "$src"; mkdir -p "$src"
    tar -xzf "$archive" -C "$src" --strip-components=1
    (cd "$src" && make install PG_CONFIG="$PGC") >"$log" 2>&1 || die "installing supa_audit failed: $(tail -5 "$log")"
    rm -rf "$src"
    step_end "installed from $(basename "$archive") (sha256 checked)"
    ;;
  *) die "usage: supa-audit.sh available|where|build" ;;
esac
