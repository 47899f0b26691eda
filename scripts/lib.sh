# Shared settings for the project's scripts. Source it; it defines variables and helpers only.
# shellcheck shell=bash

PGSE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The cache lives outside the work tree, where the unprivileged test user can read it.
if [ -z "${PGSE_CACHE:-}" ]; then
  if [ "$(id -u)" = 0 ]; then
    PGSE_CACHE=/var/cache/pg_storage_ext
  else
    PGSE_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pg_storage_ext
  fi
fi
export PGSE_CACHE
# the test user runs what the cache holds (PostgreSQL's binaries): a cache made by
# `mktemp -d` (mode 0700) must be traversable
if [ "$(id -u)" = 0 ]; then mkdir -p "$PGSE_CACHE" && chmod a+rx "$PGSE_CACHE"; fi

# The OS user that runs initdb/postgres when we are root (they refuse root).
PGSE_USER=${PGSE_USER:-pgse}
if [ "$(id -u)" = 0 ]; then PGSE_RUNAS=$PGSE_USER; else PGSE_RUNAS=$(id -un); fi
export PGSE_USER PGSE_RUNAS

# pgrx version: read from Cargo.toml's exact pin, the one place it is written.
PGRX_VERSION=$(sed -n 's/^pgrx = "=\([0-9.]*\)".*/\1/p' "$PGSE_ROOT/Cargo.toml" | head -n1)
export PGRX_VERSION
export PGRX_HOME=${PGRX_HOME:-$PGSE_CACHE/pgrx}
CARGO_PGRX_ROOT=$PGSE_CACHE/cargo-pgrx-$PGRX_VERSION
export PATH="$CARGO_PGRX_ROOT/bin:$PATH"

# Fallback pin for pg_cron when the mirror lacks the version its index names.
PG_CRON_FALLBACK_VERSION=1.6.7
PG_CRON_FALLBACK_SHA256=d950bc29155f31017567e23a31d268ff672e98276c0e9d062512fb7870351f03

step_start() { _step_name=$1; _step_t0=$(date +%s); }
step_end() { printf '%-28s %s (%ss)\n' "$_step_name" "$1" "$(( $(date +%s) - _step_t0 ))"; }
die() { echo "error: $*" >&2; exit 1; }

# Installs the Debian packages of this list that are missing, naming only those (naming installed
# ones would upgrade them), through the machine's apt configuration; prints what it did:
# install_packages PACKAGE...
install_packages() {
  local p log missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo present
    return
  fi
  [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]} (install them as root)"
  log=$PGSE_CACHE/apt.log
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$log" 2>&1 || { cat "$log"; die "apt-get install ${missing[*]} failed"; }
  echo "installed ${missing[*]}"
}

# Run a command as the unprivileged user (ourselves when not root).
as_user() {
  if [ "$(id -u)" = 0 ]; then
    sudo -H -u "$PGSE_RUNAS" env PATH="$PATH" "$@"
  else
    "$@"
  fi
}

# Major version of a pg_config, or nothing.
pg_major() { "$1" --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p'; }

# The pg_config in use: $PG_CONFIG, a PG 18 pg_config on PATH, or the cached build.
find_pg_config() {
  if [ -n "${PG_CONFIG:-}" ]; then
    [ "$(pg_major "$PG_CONFIG")" = 18 ] || die "PG_CONFIG=$PG_CONFIG is not PostgreSQL 18"
    echo "$PG_CONFIG"; return
  fi
  local c
  c=$(command -v pg_config 2>/dev/null || true)
  if [ -n "$c" ] && [ "$(pg_major "$c")" = 18 ]; then echo "$c"; return; fi
  echo "$PGSE_CACHE/pg18/bin/pg_config"
}

# Debian archive base URL, read from this machine's apt configuration.
debian_mirror() {
  apt-get indextargets --format '$(SITE) $(ORIGIN) $(RELEASE)' 2>/dev/null |
    awk '$2 == "Debian" && $3 !~ /security/ { print $1; exit }'
}

# Where throwaway clusters live: under target/ when the unprivileged user can reach the checkout,
# else in the cache (e.g. a checkout under /root, which is mode 700).
# promtool (Prometheus's checker of exposition text), extracted by setup.sh from Debian's
# prometheus package into the cache (the package itself, a server, is not installed).
promtool_path() {
  echo "$PGSE_CACHE/promtool/promtool"
}
# prometheus (the server), from the same package, run as a process by scripts/test-prometheus.sh.
prometheus_path() {
  echo "$PGSE_CACHE/promtool/prometheus"
}

run_dir() {
  local d=$PGSE_ROOT/target/run
  if [ "$(id -u)" = 0 ] && ! sudo -u "$PGSE_RUNAS" test -x "$PGSE_ROOT" 2>/dev/null; then
    d=$PGSE_CACHE/run
  fi
  mkdir -p "$d"
  [ "$(id -u)" = 0 ] && chown "$PGSE_RUNAS" "$d"
  echo "$d"
}

# Builds and installs the extension into the PG 18 in use (pass --release for an optimized build).
install_extension() {
  step_start "install extension${1:+ ($1)}"
  local log
  log=$(mktemp)
  if ! cargo pgrx install "$@" --pg-config "$(find_pg_config)" >"$log" 2>&1; then
    cat "$log"; rm -f "$log"; die "cargo pgrx install failed"
  fi
  rm -f "$log"
  install_release_scripts "$("$(find_pg_config)" --sharedir)/extension"
  step_end ok
}

# Completes an extension directory holding the current version's generated script (what
# `cargo pgrx install` or `cargo pgrx package` wrote there) with the scripts of earlier releases:
# the frozen full scripts of released versions (sql/EXT--X.Y.Z.sql), so that
# `CREATE EXTENSION ... VERSION 'X.Y.Z'` works on the current library, and every update script.
# install_release_scripts EXTENSION_DIR
install_release_scripts() {
  local f ext=$1
  for f in "$PGSE_ROOT"/sql/pg_storage_ext--*.sql; do
    cp "$f" "$ext/"
  done
  python3 "$PGSE_ROOT/scripts/gen-updates.py" "$ext" || die "generating the update scripts failed"
}

# Builds a Debian unstable source package with PGXS into the PostgreSQL of $PGC and prints its
# tarball's name: pgxs_from_debian NAME PACKAGE [FALLBACK_VERSION FALLBACK_SHA256].
pgxs_from_debian() {
  local name=$1 pkg=$2 tarball build
  tarball=$("$PGSE_ROOT/scripts/debian-source.sh" "$pkg" "${3:-}" "${4:-}")
  build=$PGSE_CACHE/build/$name
  rm -rf "$build"; mkdir -p "$build"
  tar -xf "$tarball" -C "$build" --strip-components=1
  (cd "$build" && make PG_CONFIG="$PGC" >"$build/make.log" 2>&1 &&
    make PG_CONFIG="$PGC" install >"$build/install.log" 2>&1) ||
    die "$name build failed (is $PGC writable?); see $build/make.log"
  rm -rf "$build"
  basename "$tarball"
}
