#!/usr/bin/env bash
# `make package-test`: the package of `make package` proven on Debian's own PostgreSQL 18. A Debian
# unstable root (debootstrap --variant=minbase sid, from the mirror of this machine's apt
# configuration) with Debian's postgresql-18 and postgresql-18-cron, cached as tarballs under
# $PGSE_CACHE/package-test (rebuilt when older than PGSE_PACKAGE_ROOT_DAYS, default 7); in a fresh
# copy of it, chrooted: the .deb installed with apt (its Depends resolved by apt), a cluster made
# by Debian's pg_createcluster with the settings docs/install.md gives (pg_cron preloaded, the
# extension not), CREATE EXTENSION and real statements of every capability on the blog with
# their results checked, updates from 0.2.0 and 0.1.0, then the extension preloaded for the
# metrics endpoint, fetched over HTTP. Fails at the first wrong result; the server log must not
# show a process terminated by a signal. Needs root (debootstrap, chroot, mount).
# Ports: PGSE_PACKAGE_PORT (default 29100) for the server, the next one for the endpoint.
# shellcheck disable=SC2016  # dpkg-query's ${Field} formats are single-quoted on purpose
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$PGSE_ROOT"
[ "$(id -u)" = 0 ] || die "package-test needs root (debootstrap, chroot, mount)"
t_start=$(date +%s)

VERSION=$(sed -n 's/^version = "\([^"]*\)".*/\1/p' Cargo.toml | head -n1)
ARCH=$(dpkg --print-architecture)
DEB_NAME=postgresql-18-pg-storage-ext_${VERSION}_$ARCH.deb
DEB=$PGSE_ROOT/target/package/$DEB_NAME
PORT=${PGSE_PACKAGE_PORT:-29100}
HTTP_PORT=$((PORT + 1))
MAX_DAYS=${PGSE_PACKAGE_ROOT_DAYS:-7}
ROOTS=$PGSE_CACHE/package-test
BASE_TAR=$ROOTS/sid-minbase.tar.zst
PG_TAR=$ROOTS/sid-postgresql-18.tar.zst
mkdir -p "$ROOTS"
ROOTS=$(realpath "$ROOTS")
R=$ROOTS/root
DB=blog
checks=0

# --- the chroot -----------------------------------------------------------------------------
in_root() {
  chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive HOME=/root "$@"
}
# mount points below a directory (itself too with a second argument), deepest first
mounts_under() {
  awk -v r="$1" -v self="${2:-}" '(self != "" && $5 == r) || index($5, r "/") == 1 { print $5 }' \
    /proc/self/mountinfo | sort -r
}
# The root lives in memory (about 400 MiB, and the cluster): unpacked in seconds, gone at umount.
root_fs() {
  mkdir -p "$R"
  mount -t tmpfs -o size=4g,mode=0755 pgse-package-root "$R"
}
enter_root() {
  [ -c "$R/dev/null" ] || die "$R/dev/null is not a device (debootstrap could not make device nodes)"
  mount -t proc proc "$R/proc"
  mount -t tmpfs -o mode=1777,size=256m pgse-shm "$R/dev/shm"
}
leave_root() {
  local m
  for m in $(mounts_under "$R" ${1:+self}); do umount "$m" 2>/dev/null || umount -l "$m"; done
  [ -z "$(mounts_under "$R" ${1:+self})" ] || die "still mounted under $R: $(mounts_under "$R" self | tr '\n' ' ')"
}
# Stops the cluster (a postmaster left behind is killed by its pid, when it runs in this root),
# unmounts, removes the root.
teardown() {
  [ -d "$R" ] || return 0
  local pidfile=$R/var/lib/postgresql/18/main/postmaster.pid pid
  if [ -f "$pidfile" ]; then
    if [ -d "$R/proc/self" ]; then
      in_root pg_ctlcluster 18 main stop -m fast >/dev/null 2>&1 ||
        in_root pg_ctlcluster 18 main stop -m immediate >/dev/null 2>&1 || true
    fi
    pid=$(head -n1 "$pidfile" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$R" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
    fi
  fi
  leave_root self
  rm -rf --one-file-system "$R"
}
cleanup() {
  local rc=$?
  if [ "$rc" != 0 ] && [ -f "$R/var/log/postgresql/postgresql-18-main.log" ]; then
    cp "$R/var/log/postgresql/postgresql-18-main.log" "$PGSE_ROOT/target/package/package-test-server.log"
    echo "server log: target/package/package-test-server.log; its end:" >&2
    tail -n 20 "$R/var/log/postgresql/postgresql-18-main.log" >&2
  fi
  teardown
  exit "$rc"
}

# --- checks ---------------------------------------------------------------------------------
fail() { echo "package-test FAILED: $*" >&2; exit 1; }
psql_db() {
  local db=$1; shift
  chroot "$R" runuser -u postgres -- /usr/bin/env -i PATH=/usr/bin:/bin LANG=C.UTF-8 PGPORT="$PORT" \
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"
}
# sql [DB] < script: runs statements, output discarded; fails with psql's message
sql() {
  local out
  out=$(psql_db "${1:-$DB}" 2>&1 >/dev/null) || fail "${out:-psql failed}"
}
val() { psql_db "${2:-$DB}" -At -c "$1"; }
# expect WHAT EXPECTED QUERY [DB]: the query's one value is EXPECTED
# (its NOTICEs, such as a long operation's progress, are not part of the value)
expect() {
  local got
  got=$(val "$3" "${4:-$DB}" 2>"$ROOTS/psql.err") || fail "$1: $(cat "$ROOTS/psql.err")"
  [ "$got" = "$2" ] || fail "$1: expected '$2', got '$got' from: $3"
  checks=$((checks + 1))
}
# expect_error WHAT SQLSTATE STATEMENT: the statement fails with that SQLSTATE
expect_error() {
  local out
  out=$(val "DO \$pgse\$ BEGIN EXECUTE \$s\$$3\$s\$; RAISE EXCEPTION 'no error';
    EXCEPTION WHEN OTHERS THEN IF SQLSTATE <> '$2' THEN
      RAISE EXCEPTION 'SQLSTATE %: %', SQLSTATE, SQLERRM; END IF; END \$pgse\$" 2>&1) ||
    fail "$1: expected SQLSTATE $2: $out"
  checks=$((checks + 1))
}
# wait_for WHAT SECONDS QUERY: polls until the query is true
wait_for() {
  local i
  for ((i = 0; i < $2 * 4; i++)); do
    if [ "$(val "$3" 2>/dev/null)" = t ]; then checks=$((checks + 1)); return; fi
    sleep 0.25
  done
  fail "$1: not true within $2 s: $3"
}

# --- 1. the package -------------------------------------------------------------------------
rm -f target/package/package-test-server.log
step_start "package"
[ -f "$DEB" ] || scripts/package.sh >/dev/null
step_end "$DEB_NAME, $(stat -c %s "$DEB") bytes"

# --- 2. tools and the cached Debian root -----------------------------------------------------
step_start "debootstrap, zstd"
done_what=$(install_packages debootstrap zstd)
step_end "$done_what"

exec 9>"$ROOTS/lock"
flock -n 9 || die "another package-test uses $ROOTS"
trap cleanup EXIT
trap 'exit 130' INT TERM
teardown  # a root left by an interrupted run

step_start "debian root"
root_fs
if [ -f "$PG_TAR" ] && [ -z "$(find "$PG_TAR" -mtime "+$MAX_DAYS")" ]; then
  tar -I 'zstd -q -T0' --numeric-owner -xpf "$PG_TAR" -C "$R"
  step_end "cached ($(( ($(date +%s) - $(stat -c %Y "$PG_TAR")) / 3600 )) h old)"
else
  rm -f "$PG_TAR"
  if [ ! -f "$BASE_TAR" ] || [ -n "$(find "$BASE_TAR" -mtime "+$MAX_DAYS")" ]; then
    mirror=$(debian_mirror)
    [ -n "$mirror" ] || die "no Debian mirror in this machine's apt configuration"
    log=$ROOTS/debootstrap.log
    debootstrap --variant=minbase sid "$R" "$mirror" >"$log" 2>&1 ||
      { tail -n 20 "$log"; die "debootstrap failed; see $log"; }
    tar -I 'zstd -q -T0' --numeric-owner -C "$R" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
  else
    tar -I 'zstd -q -T0' --numeric-owner -xpf "$BASE_TAR" -C "$R"
  fi
  # no service starts in the root; no cluster is made by the packages (the test makes its own)
  printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
  chmod 0755 "$R/usr/sbin/policy-rc.d"
  mkdir -p "$R/etc/postgresql-common/createcluster.d"
  echo 'create_main_cluster = false' >"$R/etc/postgresql-common/createcluster.d/package-test.conf"
  cp /etc/resolv.conf "$R/etc/resolv.conf"
  enter_root
  log=$ROOTS/apt.log
  # the archive's unstable Release file can be past its Valid-Until date
  { in_root apt-get -o Acquire::Check-Valid-Until=false update &&
    in_root apt-get install -y --no-install-recommends postgresql-18 postgresql-18-cron &&
    in_root apt-get clean; } >"$log" 2>&1 || { tail -n 20 "$log"; die "apt-get in the root failed; see $log"; }
  leave_root
  tar -I 'zstd -q -T0' --numeric-owner -C "$R" -cf "$PG_TAR.tmp" . && mv "$PG_TAR.tmp" "$PG_TAR"
  step_end "built ($(du -h "$PG_TAR" | cut -f1) cached)"
fi
enter_root
echo "  $(in_root dpkg-query -W -f='${Package} ${Version}, ' postgresql-18 postgresql-18-cron)Debian $(cat "$R/etc/debian_version")"

# --- 3. the package installed with apt ------------------------------------------------------
step_start "apt install ./$DEB_NAME"
mkdir -p "$R/tmp/pgse"
cp "$DEB" "$R/tmp/pgse/"
chmod -R a+rX "$R/tmp/pgse"
log=$ROOTS/install.log
in_root apt-get install -y --no-install-recommends "/tmp/pgse/$DEB_NAME" >"$log" 2>&1 ||
  { tail -n 20 "$log"; die "apt-get install of the package failed"; }
[ "$(in_root dpkg-query -W -f='${Status} ${Version}' postgresql-18-pg-storage-ext)" = "install ok installed $VERSION" ] ||
  fail "the package is not installed at $VERSION"
files=$(in_root dpkg -L postgresql-18-pg-storage-ext)
for f in /usr/lib/postgresql/18/lib/pg_storage_ext.so /usr/share/postgresql/18/extension/pg_storage_ext.control \
  "/usr/share/postgresql/18/extension/pg_storage_ext--$VERSION.sql" /usr/share/postgresql/18/extension/pg_storage_ext--0.1.0.sql \
  /usr/share/postgresql/18/extension/pg_storage_ext--0.2.0.sql; do
  grep -qx "$f" <<<"$files" || fail "the package does not hold $f"
  [ -f "$R$f" ] || fail "$f was not installed"
done
# its Depends is known to apt: removing the server removes the extension
removal=$(in_root apt-get -s remove postgresql-18)
grep -q '^Remv postgresql-18-pg-storage-ext' <<<"$removal" ||
  fail "apt does not know that the package depends on postgresql-18"
step_end "$(in_root dpkg-query -W -f='${Installed-Size}' postgresql-18-pg-storage-ext) KiB, Depends: $(in_root dpkg-query -W -f='${Depends}' postgresql-18-pg-storage-ext)"

# --- 4. a cluster as docs/install.md sets it up ---------------------------------------------
step_start "pg_createcluster 18 main"
clog=$ROOTS/cluster.log
# pg_cron preloaded (its scheduler), its jobs run by background workers (no password for a
# loopback connection); worker slots for pg_cron's jobs and the extension's executor (one per
# VACUUM or REINDEX of a maintenance run); pg_storage_ext is not preloaded: only its metrics
# endpoint needs that
in_root pg_createcluster 18 main --port "$PORT" --locale C.UTF-8 \
  -o "shared_preload_libraries=pg_cron" -o "cron.database_name=$DB" -o "cron.use_background_workers=on" \
  -o "max_worker_processes=16" \
  >"$clog" 2>&1 || { cat "$clog"; die "pg_createcluster failed"; }
in_root pg_ctlcluster 18 main start >>"$clog" 2>&1 || { cat "$clog"; die "pg_ctlcluster start failed"; }
chroot "$R" runuser -u postgres -- /usr/bin/env -i PATH=/usr/bin:/bin LANG=C.UTF-8 PGPORT="$PORT" \
  createdb "$DB" || fail "createdb $DB"
step_end "$(val 'SHOW server_version' postgres) on port $PORT"

# --- 5. the blog ----------------------------------------------------------------------------
step_start "create extension, blog"
sql <<'SQL'
CREATE EXTENSION pg_cron;
CREATE EXTENSION pg_storage_ext;
SQL
expect "extversion is the package's" "$VERSION" "SELECT extversion FROM pg_extension WHERE extname = 'pg_storage_ext'"
expect "storage.version() is the package's" "$VERSION" "SELECT storage.version()"
expect "module_pathname 'pg_storage_ext' is found in Debian's \$libdir" "pg_storage_ext.so" \
  "LOAD 'pg_storage_ext'; SELECT file_name FROM pg_get_loaded_modules() WHERE file_name LIKE 'pg_storage_ext%'"
for f in examples/blog/migrations/*.sql; do
  sql <"$f"
done
sql <examples/blog/seed.sql
expect "the blog's migrations are applied" "5" "SELECT count(*) FROM storage.migrations WHERE status = 'applied'"
expect "the seed" "500|2000|6000" "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM articles), (SELECT count(*) FROM comments)"
step_end ok

# --- 6. every capability --------------------------------------------------------------------
step_start "migrations"
expect "migrate applies" "applied" "SELECT storage.migrate('0100', 'pkg table', 'CREATE TABLE pkg_t (id int)', down => 'DROP TABLE pkg_t')"
expect "migrate again: already applied" "already applied" "SELECT storage.migrate('0100', 'pkg table', 'CREATE TABLE pkg_t (id int)', down => 'DROP TABLE pkg_t')"
expect "migrate_down reverts" "reverted" "SELECT storage.migrate_down('0100')"
expect "its table is gone" "" "SELECT to_regclass('pkg_t')"
expect "lint_migration (PostgreSQL's parser)" "require-concurrent-index-creation" \
  "SELECT rule FROM storage.lint_migration('CREATE INDEX ON comments (user_id)')"
expect "a non-transactional migration is queued" "pending" \
  "SELECT storage.migrate('0006', 'comment index', 'CREATE INDEX CONCURRENTLY idx_comments_user ON comments (user_id)', down => 'DROP INDEX CONCURRENTLY idx_comments_user', transactional => false)"
wait_for "the background executor applies it (a dynamic worker: no preload)" 60 \
  "SELECT status = 'applied' FROM storage.migrations WHERE version = '0006'"
expect "its index is valid" "t" "SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_comments_user'::regclass"
step_end ok

step_start "progress"
expect "progress: nothing running" "0" "SELECT count(*) FROM storage.progress"
expect "a slow non-transactional migration is queued" "pending" \
  "SELECT storage.migrate('0007', 'slow', 'SELECT pg_sleep(3); CREATE INDEX CONCURRENTLY idx_fav_created ON user_favorites (created_at)', transactional => false)"
wait_for "another session sees it in storage.progress" 30 \
  "SELECT EXISTS (SELECT FROM storage.progress WHERE operation = 'migration' AND phase LIKE 'statement%')"
wait_for "it ends" 60 "SELECT status = 'applied' FROM storage.migrations WHERE version = '0007'"
wait_for "and leaves storage.progress" 10 "SELECT NOT EXISTS (SELECT FROM storage.progress)"
step_end ok

step_start "jsonb"
expect "jsonb_merge_deep (||+)" '{"a": {"b": 1, "c": 2}}' \
  "SELECT '{\"a\": {\"b\": 1}}'::jsonb OPERATOR(storage.||+) '{\"a\": {\"c\": 2}}'"
expect "jsonb_diff" '{"b": null, "c": 3}' "SELECT storage.jsonb_diff('{\"a\": 1, \"b\": 2}', '{\"a\": 1, \"c\": 3}')"
expect "jsonb_merge_patch" '{"a": 1, "c": 3}' "SELECT storage.jsonb_merge_patch('{\"a\": 1, \"b\": 2}', '{\"b\": null, \"c\": 3}')"
expect "jsonb_patch" '{"b": 2}' \
  "SELECT storage.jsonb_patch('{\"a\": 1}', '[{\"op\": \"add\", \"path\": \"/b\", \"value\": 2}, {\"op\": \"remove\", \"path\": \"/a\"}]')"
expect_error "a failing JSON Patch test" 22023 \
  "SELECT storage.jsonb_patch('{\"x\": 1}', '[{\"op\": \"test\", \"path\": \"/x\", \"value\": 2}]')"
expect "json_schema_errors (format email)" '/contact|"not-an-email" is not a "email"' \
  "SELECT instance_path || '|' || message FROM storage.json_schema_errors('{\"properties\": {\"contact\": {\"type\": \"string\", \"format\": \"email\"}}}', '{\"contact\": \"not-an-email\"}')"
sql <<'SQL'
ALTER TABLE users ADD CONSTRAINT preferences_schema CHECK (storage.json_schema_check(
  '{"type": "object",
    "properties": {
      "theme": {"enum": ["light", "dark", "system"]},
      "language": {"type": "string", "pattern": "^[a-z]{2}$"},
      "page_size": {"type": "integer", "minimum": 10, "maximum": 100},
      "notifications": {"type": "object", "additionalProperties": {"type": "boolean"}}},
    "required": ["theme"]}', preferences));
SQL
expect_error "the JSON Schema CHECK refuses a wrong preference" 23514 \
  "UPDATE users SET preferences = '{\"theme\": \"neon\"}' WHERE id = 3"
expect "and takes a right one" "dark" \
  "WITH u AS (UPDATE users SET preferences = preferences || '{\"theme\": \"dark\"}' WHERE id = 3 RETURNING preferences->>'theme') SELECT * FROM u"
step_end ok

step_start "search"
expect "enable_search backfills the articles" "2000" \
  "SELECT storage.enable_search('articles', 'searchable', 'english', '{\"title\": \"A\", \"summary\": \"B\", \"content\": \"C\"}')"
expect "search_columns" "articles|searchable|searchable_tsvector_update" \
  "SELECT table_name || '|' || column_name || '|' || trigger_name FROM storage.search_columns"
sql <<'SQL'
INSERT INTO articles (author_id, title, summary, content, status, published_at)
VALUES (1, 'Debian packages of extensions', 'apt install', 'The server finds the library in its libdir.', 'published', now());
SQL
expect "the trigger indexes a new article: the search box's query finds it first" "Debian packages of extensions" \
  "SELECT title FROM articles, websearch_to_tsquery('english', 'debian package') q WHERE searchable @@ q AND status = 'published' ORDER BY ts_rank(searchable, q) DESC, id LIMIT 1"
expect "rebuild_search" "2001" "SELECT storage.rebuild_search('articles', 'searchable')"
expect "storage.search: the search box in one call, with a snippet" "Debian packages of extensions|<b>Debian</b> <b>packages</b> of extensions" \
  "SELECT a.title || '|' || s.headline FROM storage.search('articles', 'debian packag') s JOIN articles a ON a.id = (s.key ->> 'id')::int LIMIT 1"
sql <<<"CREATE EXTENSION pg_trgm; SELECT storage._search_words_merge();"
expect "a typo, with Debian's pg_trgm: did you mean" "debian packag" "SELECT storage.search_suggest('articles', 'debiann packag')"
step_end ok

step_start "matviews"
sql <<<"SELECT storage.register_matview('article_analytics', '5 minutes')"
expect "refresh_due refreshes the unpopulated view" "refreshed" \
  "SELECT outcome FROM storage.refresh_due() WHERE view = 'article_analytics'::regclass"
expect "unchanged sources: skipped" "skipped: unchanged" "SELECT storage.refresh_matview('article_analytics')"
sql <<<"INSERT INTO comments (article_id, user_id, body) VALUES (1, 2, 'Great read')"
expect "a new comment: refreshed" "refreshed" "SELECT storage.refresh_matview('article_analytics')"
expect "the view counts it" "t" \
  "SELECT comment_count = (SELECT count(*) FROM comments WHERE article_id = 1) FROM article_analytics WHERE article_id = 1"
expect "matview_status" "refreshed" "SELECT last_outcome FROM storage.matview_status WHERE view = 'article_analytics'::regclass"
step_end ok

step_start "partitions"
expect "create_partitions by month" "t" "SELECT storage.create_partitions('article_views', '1 month', premake => 2) > 3"
expect "the default partition's rows moved into their months" "0|20000" \
  "SELECT (SELECT count(*) FROM ONLY article_views_default), (SELECT count(*) FROM article_views)"
expect "ensure_partition" "article_views_p20200201" "SELECT storage.ensure_partition('article_views', '2020-02-29')"
expect "partitions()" "2020-02-01 00:00:00+00" \
  "SELECT lower_bound FROM storage.partitions('article_views') WHERE partition = 'article_views_p20200201'::regclass"
expect "run_maintenance" "article_views|0" "SELECT parent || '|' || moved_from_default FROM storage.run_maintenance('article_views')"
step_end ok

step_start "audit"
sql <<<"SELECT audit.enable('users', exclude_columns => '{social_links}')"
sql <<<"UPDATE users SET display_name = 'Ada L.' WHERE id = 1"
expect "history returns the change" "UPDATE|{display_name}|User 1|Ada L." \
  "SELECT op || '|' || changed_columns::text || '|' || (old_row->>'display_name') || '|' || (new_row->>'display_name') FROM audit.history('users', '{\"id\": 1}')"
expect "row_at now" "Ada L." "SELECT audit.row_at('users', '{\"id\": 1}', now())->>'display_name'"
expect "audit.coverage" "t" "SELECT capture_ok FROM audit.coverage WHERE table_name = 'users'::regclass"
sql <<<"CREATE ROLE pkg_nobody"
expect_error "history needs audit_reader" 42501 \
  "SET LOCAL ROLE pkg_nobody; SELECT * FROM audit.history('users', '{\"id\": 1}')"
step_end ok

step_start "roles, tenants"
expect "create_roles" "4" "SELECT count(*) FROM storage.create_roles('blog_')"
sql <<'SQL'
SELECT storage.grant_schema('public', 'blog_');
SET client_min_messages = error;
SELECT storage.enable_tenant_isolation('articles', 'author_id', 'blog.author_id');
SQL
expect "the app role sees only its tenant's articles" "t|0" \
  "BEGIN; SET LOCAL ROLE blog_app_user; SET LOCAL blog.author_id = '1';
   SELECT count(*) > 0, count(*) FILTER (WHERE author_id <> 1) FROM articles; COMMIT"
expect "verify_tenant_isolation: no hole for the app role" "0|7" \
  "SELECT count(*) FILTER (WHERE ok IS FALSE), count(*) FILTER (WHERE ok) FROM storage.verify_tenant_isolation('articles', '1', '2') WHERE check_name LIKE 'app role:%'"
expect "security_report names the matview that reads the isolated table" "error" \
  "SELECT severity FROM storage.security_report() WHERE object = 'public.article_analytics'"
sql <<<"SELECT storage.disable_tenant_isolation('articles')"
step_end ok

step_start "health, metrics"
expect "health(): every check has a status" "0|t" \
  "SELECT count(*) FILTER (WHERE status NOT IN ('ok', 'warning', 'critical', 'unknown')), count(*) >= 20 FROM storage.health()"
expect "health(): cache_hit_ratio" "ok" "SELECT status FROM storage.health() WHERE check_name = 'cache_hit_ratio'"
expect "metrics_snapshot" "t" "SELECT storage.metrics_snapshot() > 0"
expect "metrics history" "t" "SELECT count(*) > 0 FROM storage.metrics"
expect "metrics_prometheus" "t" \
  "SELECT storage.metrics_prometheus() ~ '(?n)^# TYPE pg_storage_ext_health_status gauge$' AND storage.metrics_prometheus() ~ '(?n)^pg_storage_ext_health_status\{check=\"cache_hit_ratio\"\} 0$'"
expect "health_report_html" "t" "SELECT storage.health_report_html() ~ '<svg'"
step_end ok

step_start "maintenance"
# the seeded tables vacuumed first, so that the plan's VACUUM of the test table is its own
sql <<<"VACUUM (ANALYZE)"
sql <<'SQL'
CREATE TABLE pkg_maint (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = off);
INSERT INTO pkg_maint SELECT g, 'x' FROM generate_series(1, 5000) g;
DELETE FROM pkg_maint WHERE id <= 4000;
SELECT pg_stat_force_next_flush();
SQL
wait_for "maintenance_plan: VACUUM of the table with 4000 dead rows" 30 \
  "SELECT EXISTS (SELECT FROM storage.maintenance_plan() WHERE object = 'pkg_maint'::regclass AND action = 'VACUUM')"
expect "run_maintenance_plan queues it to the executor" "queued" \
  "SELECT outcome FROM storage.run_maintenance_plan() WHERE object = 'pkg_maint'::regclass"
wait_for "the executor (a dynamic worker: no preload) vacuums it" 60 \
  "SELECT EXISTS (SELECT FROM storage.maintenance_log WHERE object_name = 'public.pkg_maint' AND outcome = 'done' AND dead_tuples_before >= 4000 AND dead_tuples_after = 0)"
step_end ok

step_start "replicas"
expect "_heartbeat on the primary" "t" "SELECT storage._heartbeat()"
expect "heartbeat table" "t" "SELECT primary_time > now() - interval '1 minute' FROM storage.heartbeat"
expect "replication_status: a primary without standbys" "0" "SELECT count(*) FROM storage.replication_status()"
step_end ok

step_start "pg_cron jobs"
expect "schedule_jobs" "5" "SELECT count(*) FROM storage.schedule_jobs()"
wait_for "pg_cron runs the heartbeat job" 30 \
  "SELECT EXISTS (SELECT FROM cron.job_run_details d JOIN cron.job j USING (jobid) WHERE j.jobname = 'pg_storage_ext.heartbeat' AND d.status = 'succeeded')"
expect "schedule_jobs(jobs => '{}') schedules none" "0" "SELECT count(*) FROM storage.schedule_jobs(jobs => '{}')"
expect "and unschedules the others" "0" "SELECT count(*) FROM cron.job"
step_end ok

# --- 7. updates from the earlier releases ---------------------------------------------------
for from in 0.2.0 0.1.0; do
  step_start "update from $from"
  db=update_${from//./_}
  val "CREATE DATABASE $db" postgres >/dev/null || fail "CREATE DATABASE $db"
  sql "$db" <<SQL
CREATE EXTENSION pg_storage_ext VERSION '$from';
CREATE TABLE ev (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL, v text,
                 PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
SELECT storage.create_partitions('ev', '1 month', premake => 1);
INSERT INTO ev (at, v) VALUES (now(), 'before');
SQL
  expect "installed at $from" "$from" "SELECT extversion FROM pg_extension WHERE extname = 'pg_storage_ext'" "$db"
  sql "$db" <<<"ALTER EXTENSION pg_storage_ext UPDATE"
  expect "updated from $from to the package's version" "$VERSION" \
    "SELECT extversion FROM pg_extension WHERE extname = 'pg_storage_ext'" "$db"
  expect "the partitions kept" "t|1" \
    "SELECT (SELECT count(*) >= 2 FROM storage.partitions('ev')), (SELECT count(*) FROM ev)" "$db"
  sql "$db" <<<"SELECT audit.enable('ev'); UPDATE ev SET v = 'after'"
  expect "audit works after the update" "UPDATE|after" \
    "SELECT op || '|' || (new_row->>'v') FROM audit.log WHERE table_name = 'ev' AND op = 'UPDATE'" "$db"
  step_end "$from -> $VERSION"
done

# --- 8. preloaded: the metrics endpoint ----------------------------------------------------
step_start "preloaded, /metrics"
sql <<<"CREATE ROLE pgse_http IN ROLE pg_monitor"
cat >"$R/etc/postgresql/18/main/conf.d/pg_storage_ext.conf" <<CONF
shared_preload_libraries = 'pg_cron,pg_storage_ext'
pg_storage_ext.http_listen = '127.0.0.1:$HTTP_PORT'
pg_storage_ext.http_database = '$DB'
CONF
in_root pg_ctlcluster 18 main restart >>"$clog" 2>&1 || { cat "$clog"; die "pg_ctlcluster restart failed"; }
expect "preloaded" "pg_cron,pg_storage_ext" "SHOW shared_preload_libraries"
wait_for "the endpoint's workers run" 30 \
  "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type IN ('pg_storage_ext http supervisor', 'pg_storage_ext http')"
metrics=$(curl -sS --max-time 10 "http://127.0.0.1:$HTTP_PORT/metrics") || fail "GET /metrics failed"
grep -q '^pg_storage_ext_health_status{check="cache_hit_ratio"}' <<<"$metrics" ||
  fail "GET /metrics lacks pg_storage_ext_health_status: $(head -c 300 <<<"$metrics")"
checks=$((checks + 1))
expect "the extension works as before" "$VERSION" "SELECT storage.version()"
step_end "http://127.0.0.1:$HTTP_PORT/metrics, $(wc -l <<<"$metrics") lines"

# --- 9. the server log, the cluster stopped, the package removed ----------------------------
step_start "server log"
in_root pg_ctlcluster 18 main stop -m fast >>"$clog" 2>&1 || fail "pg_ctlcluster stop failed"
serverlog=$R/var/log/postgresql/postgresql-18-main.log
if grep -E 'terminated by signal|PANIC' "$serverlog"; then fail "the server log shows a crash"; fi
step_end "no process terminated by a signal ($(wc -l <"$serverlog") lines)"

step_start "apt remove"
in_root apt-get remove -y postgresql-18-pg-storage-ext >>"$clog" 2>&1 || fail "apt-get remove failed"
left=$(find "$R/usr/lib/postgresql/18/lib" "$R/usr/share/postgresql/18/extension" -name 'pg_storage_ext*')
[ -z "$left" ] || fail "files left after removal: $left"
step_end ok

step_start "clean up"
teardown
trap - EXIT
step_end "root removed"
echo "package-test passed: $checks checks on Debian's postgresql-18 in $(( $(date +%s) - t_start )) s"
