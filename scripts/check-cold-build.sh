#!/usr/bin/env bash
# The cold path of the set-up, as a fresh machine runs it: PostgreSQL 18 and pg_cron built from
# Debian's source packages into a throwaway cache (downloads included), then checked: pg_config
# says 18, postgres runs, pg_cron.so is installed. Exits non-zero when any of it fails. CI runs it
# before `make test` (which keeps using the machine's cache), so a set-up that cannot build on a
# fresh machine makes CI red.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cold=$(mktemp -d "${TMPDIR:-/tmp}/pgse-cold.XXXXXX")
trap 'rm -rf "$cold"' EXIT
chmod 755 "$cold"
t0=$(date +%s)
# No PG_CONFIG and no pg_config on PATH: setup.sh must build PostgreSQL itself.
env -u PG_CONFIG PGSE_CACHE="$cold" PATH="$(echo "$PATH" | tr ':' '\n' | grep -v '/pg18/bin' | paste -sd:)" \
  "$PGSE_ROOT/scripts/setup.sh" --postgres-only
pgc=$cold/pg18/bin/pg_config
[ -x "$pgc" ] || die "cold build: no pg_config at $pgc"
[ "$(pg_major "$pgc")" = 18 ] || die "cold build: $("$pgc" --version) is not PostgreSQL 18"
"$("$pgc" --bindir)/postgres" --version >/dev/null || die "cold build: postgres --version failed"
[ -f "$("$pgc" --pkglibdir)/pg_cron.so" ] || die "cold build: pg_cron.so missing"
echo "cold build: $("$("$pgc" --bindir)/postgres" --version), pg_cron.so present ($(( $(date +%s) - t0 ))s)"
