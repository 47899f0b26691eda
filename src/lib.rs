//! pg_storage_ext: a PostgreSQL 18 data-storage toolkit (audit, partitions, materialized views,
//! full-text search, JSONB). This file holds the module magic, `_PG_init` and the module list.

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

pub(crate) mod audit;
mod cache;
mod catalog;
mod error;
mod guard;
mod gucs;
pub(crate) mod health;
mod ident;
pub(crate) mod jsonb;
mod maintenance;
pub(crate) mod matview;
mod migrations;
pub(crate) mod ops;
pub(crate) mod partition;
mod privilege;
pub(crate) mod roles;
pub(crate) mod search;
mod timer;
mod triggers;
mod worker;

extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!(
    "../sql/ops.sql",
    name = "ops",
    requires = [
        ops::version,
        ops::_run_as_owner,
        ops::progress::_progress,
        ops::progress::_progress_start,
        ops::progress::_progress_update,
        ops::progress::_progress_end,
    ]
);
extension_sql_file!(
    "../sql/jsonb.sql",
    name = "jsonb",
    requires = [
        jsonb::jsonb_merge_deep,
        jsonb::jsonb_merge_patch,
        jsonb::jsonb_diff,
        jsonb::jsonb_patch,
        jsonb::schema::json_schema_valid,
        jsonb::schema::json_schema_errors,
        jsonb::schema::json_schema_check,
        jsonb::schema::json_schema_is_valid,
    ]
);
extension_sql_file!(
    "../sql/search.sql",
    name = "search",
    requires = [
        search::enable_search_with_sources,
        search::rebuild_search,
        search::_trigger_args,
        search::_search_split,
    ]
);
extension_sql_file!(
    "../sql/matview.sql",
    name = "matview",
    requires = [matview::_try_lock_exclusive,]
);
extension_sql_file!(
    "../sql/partition.sql",
    name = "partition",
    requires = [
        partition::_partition_step_interval,
        partition::_partition_step_int,
        partition::_partition_floor,
        partition::_partition_add,
        partition::_partition_name,
        partition::_partition_plan,
        partition::_partition_fit,
        partition::_partition_extend_key,
        partition::_partition_retarget,
        partition::_partition_step_divides,
    ]
);
extension_sql_file!(
    "../sql/audit.sql",
    name = "audit",
    requires = [
        "partition",
        "search",
        audit::audit::enable,
        audit::audit::disable,
        audit::audit::_sync_partitions,
        audit::audit::_carry_capture,
        audit::audit::_delta,
        audit::audit::_configuring_capture,
        audit::audit::_feed_notifier,
        audit::audit::_feed_gate,
        audit::audit::_attach_moved,
        audit::audit::_relocated,
    ]
);

extension_sql_file!(
    "../sql/roles.sql",
    name = "roles",
    requires = [
        "partition",
        "audit",
        ops::_run_as_owner,
        roles::_certificate_not_after,
        roles::_tenant_int4,
        roles::_tenant_int8,
    ]
);

extension_sql_file!(
    "../sql/health.sql",
    name = "health",
    requires = [
        "roles",
        "matview",
        health::_host_cpu,
        health::_data_disk,
        health::_prometheus_labels,
        health::_prometheus_value,
        health::_html_escape,
        health::_svg_chart,
        health::custom::_custom_metric_statement,
        health::custom::_custom_metric_rows,
    ]
);

extension_sql_file!(
    "../sql/replicas.sql",
    name = "replicas",
    requires = ["health"]
);

extension_sql_file!(
    "../sql/maintenance.sql",
    name = "maintenance",
    requires = ["replicas", maintenance::_maintenance_launch]
);

extension_sql_file!(
    "../sql/migrations.sql",
    name = "migrations",
    requires = [
        "maintenance",
        migrations::_migration_statements,
        migrations::_lint_migration,
        migrations::_migrate,
        migrations::_migrate_down,
        migrations::_migration_run,
        migrations::_migration_expression,
        migrations::_migration_check_value,
        migrations::autonomous::_autonomous,
        migrations::runner::_migration_launch,
        migrations::online::_schema_change,
        migrations::online::_schema_change_abort_checked,
        migrations::online::_schema_change_launch,
        migrations::online::_schema_change_backfilling,
        ops::_run_as_owner_bound,
    ]
);

// Who may call what: last, over every function the extension has.
extension_sql_file!("../sql/grants.sql", name = "grants", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    no_backtraces();
    gucs::init();
    health::http::register();
    // Recursive walks in pg_storage_core check the stack as PostgreSQL's own code does.
    // SAFETY: check_stack_depth only reads the stack pointer and raises 54001 past the limit.
    pg_storage_core::stack::set_check(|| unsafe { pg_sys::check_stack_depth() });
}

/// No native stack trace ever reaches a client or the server log, whatever the server's
/// environment: pgrx's panic hook captures a backtrace into every error it reports (as DETAIL)
/// when `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` is set. `RUST_LIB_BACKTRACE=0` wins over both
/// and is read once per process, at the first capture, which comes after this: `_PG_init` runs
/// before any function of this library, in the postmaster when it is preloaded (its children
/// inherit the environment) and otherwise in the backend loading it, before any thread exists.
fn no_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none_or(|v| v != "0") {
        // single-threaded here (see above): nothing else reads the environment now
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
}

/// Required by `cargo pgrx test`: settings of the throwaway test cluster.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![
            "shared_preload_libraries = 'pg_cron'",
            "cron.database_name = 'pgrx_tests'",
        ]
    }
}
