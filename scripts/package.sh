#!/usr/bin/env bash
# `make package`: the extension built for PostgreSQL 18 (`cargo pgrx package`, release) and laid
# out as Debian's postgresql-18 lays out extensions (/usr/lib/postgresql/18/lib,
# /usr/share/postgresql/18/extension), with the earlier releases' scripts beside the generated one
# (install_release_scripts), as a Debian package and as a tarball of the same files:
#   target/package/postgresql-18-pg-storage-ext_<crate version>_<arch>.deb (Depends: postgresql-18)
#   target/package/postgresql-18-pg-storage-ext_<crate version>_<arch>.tar.gz
# Prints both paths and sizes and the package's control fields and files.
# PGSE_MAINTAINER="Name <address>" sets the Maintainer field (default: the last commit's author).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$PGSE_ROOT"

PG_MAJOR=18
PKG=postgresql-$PG_MAJOR-pg-storage-ext
# the crate version: the first `version =` of Cargo.toml, the [package] section's
VERSION=$(sed -n 's/^version = "\([^"]*\)".*/\1/p' Cargo.toml | head -n1)
[ -n "$VERSION" ] || die "no version in Cargo.toml"
ARCH=$(dpkg --print-architecture)
OUT=$PGSE_ROOT/target/package
NAME=${PKG}_${VERSION}_$ARCH
# Debian's layout (pg_config of Debian's postgresql-18: --pkglibdir, --sharedir)
LIBDIR=usr/lib/postgresql/$PG_MAJOR/lib
EXTDIR=usr/share/postgresql/$PG_MAJOR/extension

PGC=$(find_pg_config)
[ "$(pg_major "$PGC")" = "$PG_MAJOR" ] || die "$PGC is not PostgreSQL $PG_MAJOR (run scripts/setup.sh)"
command -v cargo-pgrx >/dev/null || die "cargo-pgrx missing (run scripts/setup.sh)"

# 1. The release build, packaged by pgrx into a directory tree of that pg_config's paths.
step_start "cargo pgrx package"
rm -rf "$OUT/pgrx" "$OUT/root"
mkdir -p "$OUT"
log=$OUT/pgrx.log
cargo pgrx package --pg-config "$PGC" --out-dir "$OUT/pgrx" >"$log" 2>&1 ||
  { tail -n 40 "$log"; die "cargo pgrx package failed; see $log"; }
built_lib=$OUT/pgrx$("$PGC" --pkglibdir)
built_ext=$OUT/pgrx$("$PGC" --sharedir)/extension
[ -f "$built_lib/pg_storage_ext.so" ] || die "no pg_storage_ext.so under $built_lib"
[ -f "$built_ext/pg_storage_ext--$VERSION.sql" ] || die "no pg_storage_ext--$VERSION.sql under $built_ext"
step_end "release, $("$PGC" --version)"

# 2. The earlier releases' scripts beside the generated one (the one function that knows them).
step_start "release scripts"
install_release_scripts "$built_ext"
step_end "$(find "$built_ext" -name 'pg_storage_ext--*.sql' | wc -l) scripts"

# 3. Debian's layout. The library is stripped of its symbol table as Debian's packages are
#    (dh_strip); the dynamic symbols PostgreSQL looks up (Pg_magic_func, _PG_init, pg_finfo_*,
#    the functions) stay.
step_start "layout"
root=$OUT/root
install -d -m 0755 "$root/$LIBDIR" "$root/$EXTDIR" "$root/DEBIAN"
install -m 0644 "$built_lib/pg_storage_ext.so" "$root/$LIBDIR/"
strip --strip-unneeded "$root/$LIBDIR/pg_storage_ext.so"
# bitcode for PostgreSQL's JIT inlining, where the build made any (pgrx builds none today)
if [ -d "$built_lib/bitcode" ]; then
  install -d -m 0755 "$root/$LIBDIR/bitcode"
  cp -R "$built_lib/bitcode/." "$root/$LIBDIR/bitcode/"
fi
install -m 0644 "$built_ext/pg_storage_ext.control" "$built_ext"/pg_storage_ext--*.sql "$root/$EXTDIR/"
find "$root/usr" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
step_end ok

# 4. The control file names the library so that Debian's server finds it: module_pathname is
#    'pg_storage_ext' or '$libdir/pg_storage_ext', resolved in $libdir (= /usr/lib/postgresql/18/lib
#    on Debian); every script's library is MODULE_PATHNAME or a '$libdir/x' the package ships; the
#    default version is the crate's and its script is there.
step_start "control file"
control=$root/$EXTDIR/pg_storage_ext.control
module=$(sed -n "s/^module_pathname *= *'\([^']*\)'.*/\1/p" "$control")
lib=${module#\$libdir/}
case $lib in */*|'') die "module_pathname '$module' is not a library name in \$libdir" ;; esac
[ -f "$root/$LIBDIR/$lib.so" ] || die "module_pathname '$module': no $LIBDIR/$lib.so in the package"
default=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" "$control")
[ "$default" = "$VERSION" ] || die "default_version '$default' is not the crate version $VERSION"
[ -f "$root/$EXTDIR/pg_storage_ext--$default.sql" ] || die "no script for default_version $default"
for s in "$root/$EXTDIR"/pg_storage_ext--*.sql; do
  # shellcheck disable=SC2016  # a literal $libdir
  for l in $(grep -o "'\$libdir/[^']*'" "$s" | tr -d "'" | sed 's|^\$libdir/||' | sort -u || true); do
    [ -f "$root/$LIBDIR/$l.so" ] || die "$(basename "$s") loads \$libdir/$l, which the package lacks"
  done
done
step_end "module_pathname '$module' -> /$LIBDIR/$lib.so"

# 5. The Debian package. Depends: postgresql-18 (the server whose ABI the library was built
#    for), and the shared libraries the library links beyond PostgreSQL's, as dpkg-shlibdeps
#    would name them: libc6 at the newest symbol version used, libgcc-s1 (unwinding).
step_start "deb"
depends="postgresql-$PG_MAJOR"
glibc=$(objdump -T "$root/$LIBDIR/pg_storage_ext.so" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' |
  sort -V | tail -n1)
for needed in $(readelf -d "$root/$LIBDIR/pg_storage_ext.so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  case $needed in
    libc.so.6|libm.so.6|libpthread.so.0|libdl.so.2|librt.so.1|ld-linux*) ;;
    libgcc_s.so.1) depends="$depends, libgcc-s1" ;;
    *) die "pg_storage_ext.so links $needed: name its package in scripts/package.sh" ;;
  esac
done
[ -n "$glibc" ] && depends="$depends, libc6 (>= $glibc)"
# Installed-Size in KiB as dpkg-gencontrol counts it: each file rounded up, one per directory
installed_size=$(cd "$root" && {
  find usr -type f -printf '%s\n' | awk '{ s += int(($1 + 1023) / 1024) } END { print s }'
  find usr -type d | wc -l; } | awk '{ t += $1 } END { print t }')
maintainer=${PGSE_MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || true)}
[ -n "$maintainer" ] || die "no Maintainer: set PGSE_MAINTAINER='Name <address>'"
cat >"$root/DEBIAN/control" <<CONTROL
Package: $PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Section: database
Priority: optional
Description: pg_storage_ext extension for PostgreSQL $PG_MAJOR
 A data-storage toolkit inside the database: audit history, range
 partitions, materialized-view refresh, weighted full-text search, JSONB
 merge/patch/diff and JSON Schema validation, application roles with
 tenant isolation, health checks with a metrics history and a Prometheus
 endpoint, maintenance plans and in-database migrations, driven from SQL
 and from pg_cron.
 .
 Install it in a database with CREATE EXTENSION pg_storage_ext; update a
 database to this package's version with ALTER EXTENSION pg_storage_ext
 UPDATE. Holds the library, the control file, the full scripts of every
 release and every update script.
CONTROL
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
# member times from the last commit, so that the same commit gives the same files
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
rm -f "$OUT/$NAME.deb" "$OUT/$NAME.tar.gz"
dpkg-deb --root-owner-group -Zxz --build "$root" "$OUT/$NAME.deb" >/dev/null
step_end "$depends"

# 6. The tarball: the same files at the same paths (usr/...), owned by root.
step_start "tarball"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  -C "$root" -cf - usr | gzip -n -9 >"$OUT/$NAME.tar.gz"
step_end ok

echo
for f in "$OUT/$NAME.deb" "$OUT/$NAME.tar.gz"; do
  printf '%s  %s bytes (%s)\n' "$f" "$(stat -c %s "$f")" "$(du -h --apparent-size "$f" | cut -f1)"
done
echo
dpkg-deb --field "$OUT/$NAME.deb" Package Version Architecture Depends Installed-Size
echo
dpkg-deb --contents "$OUT/$NAME.deb" | awk '{ printf "%s %10s  %s\n", $1, $3, $6 }'
