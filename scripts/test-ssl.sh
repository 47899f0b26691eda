#!/usr/bin/env bash
# Connection security against a real SSL cluster (run by scripts/test.sh): a certificate made
# with openssl now (45 days), ssl = on, a pg_hba line that lets remote TCP clients in without SSL,
# one SSL and one plain TCP session; storage.ssl_status() must report each. Prints "ok N" per
# check passed; exits non-zero on the first failure.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
port=${1:-28841}
PGC=$(find_pg_config)
bin=$("$PGC" --bindir)
dir=$(run_dir)/ssl
"$PGSE_ROOT/scripts/cluster.sh" start ssl "$port"
cleanup() { "$PGSE_ROOT/scripts/cluster.sh" stop ssl "$port"; kill "${plain_pid:-}" 2>/dev/null || true; }
trap cleanup EXIT
as_user openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 45 -subj /CN=127.0.0.1 \
  -keyout "$dir/data/server.key" -out "$dir/data/server.crt" >/dev/null 2>&1 || die "openssl could not make a certificate"
chmod 600 "$dir/data/server.key"
as_user tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
CONF
echo "host all all 10.0.0.0/8 trust" | as_user tee -a "$dir/data/pg_hba.conf" >/dev/null
as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w restart >/dev/null || die "the SSL cluster did not restart: $(tail -5 "$dir/server.log")"
q() { "$bin/psql" "host=127.0.0.1 port=$port user=postgres dbname=postgres sslmode=$1" -X -q -At -v ON_ERROR_STOP=1 -c "$2"; }
q require "CREATE EXTENSION pg_storage_ext" >/dev/null
# a plain TCP session that stays open while the checks run
"$bin/psql" "host=127.0.0.1 port=$port user=postgres dbname=postgres sslmode=disable application_name=plain_client" \
  -X -q -c "SELECT pg_sleep(30)" >/dev/null 2>&1 &
plain_pid=$!
for _ in $(seq 50); do
  [ "$(q require "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'plain_client'")" = 1 ] && break
  sleep 0.1
done
n=0
check() { # check NAME SQL EXPECTED
  local got
  got=$(q require "$2")
  [ "$got" = "$3" ] || die "ssl: $1: expected '$3', got '$got'"
  n=$((n + 1))
  echo "ok $n - ssl: $1"
}
check "this session is encrypted" "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" t
check "ssl on" "SELECT ok FROM storage.ssl_status() WHERE setting = 'ssl'" t
check "certificate and key present" "SELECT bool_and(ok) FROM storage.ssl_status() WHERE setting IN ('ssl_cert_file', 'ssl_key_file')" t
check "certificate expiry read, 44 or 45 days left" \
  "SELECT ok AND detail IN ('44 days left', '45 days left') FROM storage.ssl_status() WHERE setting = 'certificate expiry'" t
check "pg_hba host line for a remote network reported" \
  "SELECT count(*) FROM storage.ssl_status() WHERE setting LIKE 'pg_hba.conf line %' AND value LIKE 'host %10.0.0.0%' AND NOT ok" 1
check "the plain TCP session is reported" \
  "SELECT NOT ok AND value::int >= 1 FROM storage.ssl_status() WHERE setting = 'connections without SSL'" t
check "the health check sees the plain TCP session" \
  "SELECT status = 'warning' AND value >= 1 AND detail LIKE '%(postgres)%' AND detail NOT LIKE '%127.0.0.1%' FROM storage.health() WHERE check_name = 'ssl'" t
check "the Prometheus text carries it" \
  "SELECT storage.metrics_prometheus() LIKE '%pg_storage_ext_health_status{check=\"ssl\"} 1%'" t
