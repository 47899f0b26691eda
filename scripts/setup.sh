#!/usr/bin/env bash
# Idempotent machine set-up: system packages, the test user, PostgreSQL 18 (unless one is given),
# pg_cron, cargo-pgrx and `cargo pgrx init`. Prints one line per step; a warm run takes seconds.
# Options (environment): PG_CONFIG=/path/to/pg_config (use that PG 18), PGSE_CACHE=dir,
# PGSE_CASSERT=1 (build PostgreSQL with --enable-cassert into a separate prefix).
# With --postgres-only it stops after PostgreSQL and pg_cron (scripts/check-cold-build.sh).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mkdir -p "$PGSE_CACHE"
# Run under `make`, we inherit MAKELEVEL/MAKEFLAGS; PostgreSQL's Makefile.global generates its
# headers (errcodes.h, ...) only at MAKELEVEL 0, so the nested builds below must not see them.
unset MAKELEVEL MAKEFLAGS MFLAGS MAKEOVERRIDES

# 1. System packages: name only the missing ones (naming installed ones would upgrade them).
step_start "system packages"
need=(bison flex libclang-dev clang pkg-config libssl-dev libicu-dev liblz4-dev libzstd-dev
  libxml2-dev libreadline-dev zlib1g-dev xz-utils gpgv curl ca-certificates make gcc openssl
  chromium haproxy)
[ "$(id -u)" = 0 ] && need+=(sudo)
done_what=$(install_packages "${need[@]}")
step_end "$done_what"

# 2. The unprivileged user for initdb/postgres (root only).
step_start "test user"
if [ "$(id -u)" = 0 ]; then
  if ! id "$PGSE_USER" >/dev/null 2>&1; then
    useradd --system --create-home --home-dir "/var/lib/$PGSE_USER" --shell /bin/bash "$PGSE_USER"
    step_end "created $PGSE_USER"
  else
    step_end "$PGSE_USER"
  fi
else
  step_end "running as $(id -un)"
fi

# 3. PostgreSQL 18.
step_start "postgresql 18"
PGC=$(find_pg_config)
if [ -n "${PGSE_CASSERT:-}" ] && [ -z "${PG_CONFIG:-}" ]; then PGC=$PGSE_CACHE/pg18-cassert/bin/pg_config; fi
if [ -x "$PGC" ] && [ "$(pg_major "$PGC")" = 18 ]; then
  step_end "$("$PGC" --version) at $("$PGC" --bindir)"
else
  prefix=$(dirname "$(dirname "$PGC")")
  tarball=$("$PGSE_ROOT/scripts/debian-source.sh" postgresql-18)
  build=$PGSE_CACHE/build/pg18${PGSE_CASSERT:+-cassert}
  rm -rf "$build"; mkdir -p "$build"
  tar -xf "$tarball" -C "$build" --strip-components=1
  extra=()
  [ -n "${PGSE_CASSERT:-}" ] && extra+=(--enable-cassert --enable-debug)
  (cd "$build" &&
    ./configure --prefix="$prefix" --with-openssl --with-icu --with-lz4 --with-zstd --with-libxml \
      "${extra[@]}" >"$build/configure.log" 2>&1 &&
    make -j"$(nproc)" world-bin >"$build/make.log" 2>&1 &&
    make install-world-bin >"$build/install.log" 2>&1) ||
    die "PostgreSQL build failed; see $build/*.log"
  rm -rf "$build"
  step_end "built $("$PGC" --version) into $prefix"
fi
export PG_CONFIG=$PGC

# 4. pg_cron, built with PGXS into that PostgreSQL.
step_start "pg_cron"
if [ -f "$("$PGC" --pkglibdir)/pg_cron.so" ]; then
  step_end "present"
else
  built=$(pgxs_from_debian pg_cron pg-cron "$PG_CRON_FALLBACK_VERSION" "$PG_CRON_FALLBACK_SHA256")
  step_end "built $built"
fi
[ "${1:-}" = --postgres-only ] && exit 0

# 4b. promtool and prometheus, for scripts/test-http.sh (the exposition-format checks) and
# scripts/test-prometheus.sh (a real server scraping the endpoint over TLS with basic auth): the
# two binaries out of Debian's prometheus package (downloaded, not installed: no service).
step_start "promtool, prometheus"
if [ -x "$(promtool_path)" ] && [ -x "$(prometheus_path)" ]; then
  step_end "present"
else
  [ "$(id -u)" = 0 ] || die "promtool or prometheus missing in $(dirname "$(promtool_path)") (run scripts/setup.sh as root once)"
  tmp=$(mktemp -d)
  (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get download prometheus >/dev/null 2>&1; }; }) ||
    die "apt-get download prometheus failed"
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
  mkdir -p "$(dirname "$(promtool_path)")"
  cp "$tmp/x/usr/bin/promtool" "$(promtool_path)"
  cp "$tmp/x/usr/bin/prometheus" "$(prometheus_path)"
  rm -rf "$tmp"
  step_end "$("$(promtool_path)" --version 2>&1 | head -1)"
fi

# 5. cargo-pgrx, exactly the version pinned in Cargo.toml.
step_start "cargo-pgrx $PGRX_VERSION"
have=$(cargo pgrx --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" = "$PGRX_VERSION" ]; then
  step_end "present"
else
  cargo install cargo-pgrx --version "=$PGRX_VERSION" --locked --root "$CARGO_PGRX_ROOT" --quiet
  step_end "installed"
fi

# 6. cargo pgrx init, only when its config lacks this pg18 (rewriting it forces a rebuild).
step_start "pgrx init"
if grep -qsF "pg18 = \"$PGC\"" "$PGRX_HOME/config.toml"; then
  step_end "present"
else
  mkdir -p "$PGRX_HOME"
  cargo pgrx init --pg18="$PGC" >/dev/null
  step_end "pg18 = $PGC"
fi
