//! Every setting of the extension, under the reserved prefix `pg_storage_ext.`.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::{CStr, CString};

/// Assert `format` keywords in JSON Schemas (off: formats are annotations only).
pub static JSON_SCHEMA_FORMATS: GucSetting<bool> = GucSetting::<bool>::new(true);

/// How many compiled JSON Schemas each backend keeps.
pub static JSON_SCHEMA_CACHE_SIZE: GucSetting<i32> = GucSetting::<i32>::new(64);

/// How long partition maintenance waits for one lock before retrying (milliseconds).
pub static PARTITION_LOCK_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(200);
/// Memory (kB) audit.table_at keeps its result in before spilling it to a temporary file (read by
/// sql/audit.sql; work_mem when that is larger).
pub static AUDIT_TABLE_AT_WORK_MEM: GucSetting<i32> = GucSetting::<i32>::new(65_536);

/// `pg_storage_ext.audit_feed_max_lag` (seconds): a change feed whose oldest change not
/// acknowledged committed longer ago is marked broken, and retention no longer keeps the log for
/// it (read by sql/audit.sql).
pub static AUDIT_FEED_MAX_LAG: GucSetting<i32> = GucSetting::<i32>::new(7 * 24 * 3600);

/// `pg_storage_ext.top_queries`: how many queries (by total time since the last snapshot) each
/// storage.metrics_snapshot() keeps in storage.query_stats (read by sql/health.sql).
pub static TOP_QUERIES: GucSetting<i32> = GucSetting::<i32>::new(50);

/// How many times partition maintenance retries a parent whose lock wait timed out.
pub static PARTITION_LOCK_RETRIES: GucSetting<i32> = GucSetting::<i32>::new(3);

/// Thresholds of storage.maintenance_plan() (sql/maintenance.sql reads them, with these defaults
/// when the library is not loaded): name, description, setting, minimum, maximum.
pub static MAINTENANCE_FREEZE_FRACTION: GucSetting<f64> = GucSetting::<f64>::new(0.8);
pub static MAINTENANCE_VACUUM_THRESHOLD: GucSetting<f64> = GucSetting::<f64>::new(1000.0);
pub static MAINTENANCE_VACUUM_SCALE_FACTOR: GucSetting<f64> = GucSetting::<f64>::new(0.2);
pub static MAINTENANCE_ANALYZE_THRESHOLD: GucSetting<f64> = GucSetting::<f64>::new(1000.0);
pub static MAINTENANCE_ANALYZE_SCALE_FACTOR: GucSetting<f64> = GucSetting::<f64>::new(0.1);
pub static MAINTENANCE_INDEX_BLOAT: GucSetting<f64> = GucSetting::<f64>::new(0.5);
pub static MAINTENANCE_PGSTATINDEX_MAX_PAGES: GucSetting<f64> = GucSetting::<f64>::new(12800.0);
pub static MAINTENANCE_UNUSED_INDEX_DAYS: GucSetting<f64> = GucSetting::<f64>::new(7.0);
pub static MAINTENANCE_LOCK_TIMEOUT: GucSetting<f64> = GucSetting::<f64>::new(5000.0);
pub static MAINTENANCE_RETRIES: GucSetting<f64> = GucSetting::<f64>::new(3.0);
pub static MAINTENANCE_NICE: GucSetting<f64> = GucSetting::<f64>::new(0.0);

/// Longest wait for one lock by a statement of a migration (storage.migrate).
pub static MIGRATION_LOCK_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(2000);
/// Retries of a migration whose lock wait timed out.
pub static MIGRATION_RETRIES: GucSetting<i32> = GucSetting::<i32>::new(5);
/// Rows per batch of an online schema change's backfill.
pub static MIGRATION_BATCH_ROWS: GucSetting<i32> = GucSetting::<i32>::new(10000);
/// Size from which lint_migration reports ACCESS EXCLUSIVE on a table.
pub static MIGRATION_LARGE_TABLE_BYTES: GucSetting<f64> = GucSetting::<f64>::new(104_857_600.0);
/// `pg_storage_ext.migration_auto_resume`: an interrupted non-transactional migration resumes by
/// itself (the heartbeat job finds it).
pub static MIGRATION_AUTO_RESUME: GucSetting<bool> = GucSetting::<bool>::new(true);

/// `pg_storage_ext.audit_actor_settings`: the settings whose values are recorded as the actor
/// of every audited change (the end user behind a pooled connection).
pub static AUDIT_ACTOR_SETTINGS: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"app.user_id, request.jwt.claims"));

/// Daily window (`HH:MM-HH:MM`, server time zone) outside which storage.run_maintenance_plan()
/// runs nothing; empty: any time.
pub static MAINTENANCE_WINDOW: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);

type Threshold = (
    &'static CStr,
    &'static CStr,
    &'static GucSetting<f64>,
    f64,
    f64,
);
const MAINTENANCE: [Threshold; 11] = [
    (c"pg_storage_ext.maintenance_freeze_fraction", c"VACUUM (FREEZE) is planned past this fraction of autovacuum_freeze_max_age (and of the multixact one).", &MAINTENANCE_FREEZE_FRACTION, 0.0, 1.0),
    (c"pg_storage_ext.maintenance_vacuum_threshold", c"Dead (or, for the visibility map, inserted) tuples before VACUUM is planned, plus the scale factor times the rows.", &MAINTENANCE_VACUUM_THRESHOLD, 0.0, 1e12),
    (c"pg_storage_ext.maintenance_vacuum_scale_factor", c"Fraction of a table's rows added to the vacuum threshold.", &MAINTENANCE_VACUUM_SCALE_FACTOR, 0.0, 100.0),
    (c"pg_storage_ext.maintenance_analyze_threshold", c"Rows changed since the last analyse before ANALYZE is planned, plus the scale factor times the rows.", &MAINTENANCE_ANALYZE_THRESHOLD, 0.0, 1e12),
    (c"pg_storage_ext.maintenance_analyze_scale_factor", c"Fraction of a table's rows added to the analyse threshold.", &MAINTENANCE_ANALYZE_SCALE_FACTOR, 0.0, 100.0),
    (c"pg_storage_ext.maintenance_index_bloat", c"Share of a B-tree's pages holding no entries past which REINDEX CONCURRENTLY is planned.", &MAINTENANCE_INDEX_BLOAT, 0.0, 1.0),
    (c"pg_storage_ext.maintenance_pgstatindex_max_pages", c"Largest index (pages) whose estimated bloat is confirmed by pgstatindex when pgstattuple is installed.", &MAINTENANCE_PGSTATINDEX_MAX_PAGES, 0.0, 1e12),
    (c"pg_storage_ext.maintenance_unused_index_days", c"Days the statistics must cover before an index never scanned is reported unused.", &MAINTENANCE_UNUSED_INDEX_DAYS, 0.0, 36500.0),
    (c"pg_storage_ext.maintenance_lock_timeout", c"Longest wait (milliseconds) for one lock by a command of storage.run_maintenance_plan(); a command whose wait timed out is retried, then skipped until the next run.", &MAINTENANCE_LOCK_TIMEOUT, 1.0, 600_000.0),
    (c"pg_storage_ext.maintenance_retries", c"Retries of a maintenance command whose lock wait timed out (1 s, 2 s, ... apart).", &MAINTENANCE_RETRIES, 0.0, 100.0),
    (c"pg_storage_ext.maintenance_nice", c"CPU priority (nice, 0 to 19) of the background worker that runs VACUUM and REINDEX CONCURRENTLY; above 0 it also starts no parallel workers (they would run at the normal priority).", &MAINTENANCE_NICE, 0.0, 19.0),
];

/// Address the metrics endpoint listens on (`host:port`); empty: no endpoint.
pub static HTTP_LISTEN: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Database the metrics endpoint reads.
pub static HTTP_DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));

/// Role the metrics endpoint connects as (with pg_monitor, not a superuser). Not `pg_`-prefixed:
/// PostgreSQL reserves those role names, so such a default could never exist.
/// TLS and basic authentication of the endpoint (src/health/secure.rs), read again at a reload.
pub static HTTP_TLS_CERT_FILE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);
pub static HTTP_TLS_KEY_FILE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);
pub static HTTP_AUTH_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static HTTP_AUTH_ROUTING: GucSetting<bool> = GucSetting::<bool>::new(true);

pub static HTTP_ROLE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pgse_http"));

/// The setting's text, empty when unset.
pub fn text(setting: &GucSetting<Option<CString>>) -> String {
    setting
        .get()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn init() {
    GucRegistry::define_int_guc(
        c"pg_storage_ext.audit_feed_max_lag",
        c"How far an audit change feed may lag before retention stops keeping the log for it.",
        c"A feed whose oldest change not acknowledged committed longer ago is marked broken (health check audit_feed_lag); until then retention keeps every change it has not acknowledged.",
        &AUDIT_FEED_MAX_LAG,
        60,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"pg_storage_ext.top_queries",
        c"Queries each storage.metrics_snapshot() keeps in storage.query_stats.",
        c"Where pg_stat_statements is installed: the queries with the most time since the previous snapshot, with their deltas; 0 keeps none.",
        &TOP_QUERIES,
        0,
        10_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_storage_ext.table_at_work_mem",
        c"Memory audit.table_at keeps its result in before writing it to a temporary file.",
        c"A function in FROM hands over its whole result at once: the table as it was is kept in memory up to this size (or work_mem, when larger) for the call.",
        &AUDIT_TABLE_AT_WORK_MEM,
        64,
        i32::MAX / 1024,
        GucContext::Userset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"pg_storage_ext.partition_lock_timeout",
        c"Longest wait for one lock in storage.run_maintenance.",
        c"A parent whose lock is not granted in time is retried, then skipped until the next run; inserts never queue behind maintenance for longer.",
        &PARTITION_LOCK_TIMEOUT,
        1,
        600_000,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pg_storage_ext.partition_lock_retries",
        c"Retries of a parent whose lock wait timed out in storage.run_maintenance.",
        c"Each retry waits a little longer (jittered back-off).",
        &PARTITION_LOCK_RETRIES,
        0,
        100,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"pg_storage_ext.json_schema_formats",
        c"Validate JSON Schema \"format\" keywords (email, uri, date-time, ...).",
        c"When off, \"format\" is an annotation only, as in pg_jsonschema.",
        &JSON_SCHEMA_FORMATS,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_storage_ext.json_schema_cache_size",
        c"Compiled JSON Schemas kept per backend.",
        c"Least recently used schemas beyond this number are dropped; 0 compiles on every call.",
        &JSON_SCHEMA_CACHE_SIZE,
        0,
        10_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    for (name, short, setting, min, max) in MAINTENANCE {
        GucRegistry::define_float_guc(
            name,
            short,
            c"Read by storage.maintenance_plan() and storage.run_maintenance_plan().",
            setting,
            min,
            max,
            GucContext::Userset,
            GucFlags::default(),
        );
    }
    GucRegistry::define_int_guc(
        c"pg_storage_ext.migration_lock_timeout",
        c"Longest wait for one lock by a statement of storage.migrate / migrate_down.",
        c"A migration whose lock wait timed out is rolled back and retried from the start (pg_storage_ext.migration_retries), so it never holds a queue of readers behind it for longer.",
        &MIGRATION_LOCK_TIMEOUT,
        1,
        3_600_000,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pg_storage_ext.migration_retries",
        c"Retries of a migration whose lock wait timed out.",
        c"Each retry waits a little longer; no lock is held meanwhile.",
        &MIGRATION_RETRIES,
        0,
        100,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_storage_ext.migration_batch_rows",
        c"Rows per batch of an online schema change's backfill (storage.alter_column_type).",
        c"Each batch is a transaction of its own; a smaller batch holds its row locks for less time, a larger one finishes sooner.",
        &MIGRATION_BATCH_ROWS,
        1,
        10_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"pg_storage_ext.migration_auto_resume",
        c"Resume an interrupted non-transactional migration without anyone calling storage.migrate again.",
        c"The heartbeat job (storage.schedule_jobs) finds a pending migration whose executor is gone (a crash, a restart, a terminated worker) and starts it again, as its author, where it stopped.",
        &MIGRATION_AUTO_RESUME,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"pg_storage_ext.migration_large_table_bytes",
        c"Size (bytes, indexes and TOAST included) from which storage.lint_migration reports ACCESS EXCLUSIVE on a table.",
        c"Rule access-exclusive-on-large-table.",
        &MIGRATION_LARGE_TABLE_BYTES,
        0.0,
        1e15,
        GucContext::Userset,
        GucFlags::default(),
    );
    // Superuser-only: a session may set the values it is recorded with (that is the
    // application's business), but not which settings are recorded; set per database or role
    // with ALTER DATABASE / ALTER ROLE ... SET.
    GucRegistry::define_string_guc(
        c"pg_storage_ext.audit_actor_settings",
        c"Settings recorded as the actor of every audited change (comma-separated names).",
        c"Their values when a statement changes audited rows are stored with its context and shown as audit.log.actor, e.g. {\"app.user_id\": \"42\"}; a value holding a JSON object or array (PostgREST's request.jwt.claims) as JSON; unset ones are left out.",
        &AUDIT_ACTOR_SETTINGS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pg_storage_ext.maintenance_window",
        c"Daily window (HH:MM-HH:MM, server time zone) in which storage.run_maintenance_plan() runs commands; empty: any time.",
        c"A window may wrap midnight (22:00-04:00). Outside it, the plan's commands are reported as skipped.",
        &MAINTENANCE_WINDOW,
        GucContext::Userset,
        GucFlags::default(),
    );
    // The endpoint's settings exist only where they can act: a library loaded at server start
    // (PostgreSQL defines no PGC_POSTMASTER setting later).
    // SAFETY: a flag PostgreSQL sets while it loads shared_preload_libraries
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        GucRegistry::define_string_guc(
            c"pg_storage_ext.http_listen",
            c"Address of the metrics endpoint (e.g. 127.0.0.1:9187); empty: off.",
            c"Needs pg_storage_ext in shared_preload_libraries. A background worker serves GET /metrics (Prometheus text) and GET / (the HTML health report), read-only.",
            &HTTP_LISTEN,
            GucContext::Postmaster,
            GucFlags::default(),
        );
        GucRegistry::define_string_guc(
            c"pg_storage_ext.http_database",
            c"Database the metrics endpoint reads.",
            c"pg_storage_ext must be installed in it.",
            &HTTP_DATABASE,
            GucContext::Postmaster,
            GucFlags::default(),
        );
        GucRegistry::define_string_guc(
            c"pg_storage_ext.http_role",
            c"Role the metrics endpoint connects as.",
            c"Create it with CREATE ROLE pgse_http IN ROLE pg_monitor (LOGIN is not needed); the endpoint refuses to run as a superuser.",
            &HTTP_ROLE,
            GucContext::Postmaster,
            GucFlags::default(),
        );
        GucRegistry::define_string_guc(
            c"pg_storage_ext.http_tls_cert_file",
            c"PEM certificate (chain) of the metrics endpoint; with http_tls_key_file it serves HTTPS only.",
            c"TLS 1.2 and 1.3; read again at every reload (pg_reload_conf()), the previous certificate kept if the new one cannot be used.",
            &HTTP_TLS_CERT_FILE,
            GucContext::Sighup,
            GucFlags::SUPERUSER_ONLY,
        );
        GucRegistry::define_string_guc(
            c"pg_storage_ext.http_tls_key_file",
            c"PEM private key of the metrics endpoint's certificate.",
            c"Read again at every reload.",
            &HTTP_TLS_KEY_FILE,
            GucContext::Sighup,
            GucFlags::SUPERUSER_ONLY,
        );
        GucRegistry::define_string_guc(
            c"pg_storage_ext.http_auth_file",
            c"Users of the metrics endpoint: basic_auth_users with bcrypt hashes (Prometheus exporter-toolkit format); empty: no authentication.",
            c"Every path answers 401 without valid credentials (the routing endpoints too unless http_auth_routing is off); read again at every reload.",
            &HTTP_AUTH_FILE,
            GucContext::Sighup,
            GucFlags::SUPERUSER_ONLY,
        );
        GucRegistry::define_bool_guc(
            c"pg_storage_ext.http_auth_routing",
            c"Whether the routing endpoints (/primary, /replica, /health, ...) need credentials when http_auth_file is set.",
            c"Off: load balancers and probes that cannot send credentials get their status; the pages and /metrics still need them.",
            &HTTP_AUTH_ROUTING,
            GucContext::Sighup,
            GucFlags::default(),
        );
    }
    // SAFETY: called once from _PG_init with a static C string.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"pg_storage_ext".as_ptr()) };
}
