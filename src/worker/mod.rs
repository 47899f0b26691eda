//! What the extension's background workers share: starting one from a backend and connecting
//! it, PostgreSQL's signal handling and a sleep that obeys it, the worker's own transactions,
//! the fate of the transaction that queued its work, and (`top_level`) running a statement as a
//! client's top-level statement. The maintenance executor (`crate::maintenance`), the migration
//! runner and the autonomous transaction (`crate::migrations`) and the metrics endpoint
//! (`crate::health::http`) are built from it.

pub(crate) mod top_level;

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, DynamicBackgroundWorker,
};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::Duration;

/// How long a worker waits for the transaction that queued its work to commit.
pub(crate) const WAIT_FOR_QUEUE: Duration = Duration::from_secs(600);

/// Starts a dynamic worker of this library running `function` with `arg` and `extra` once the
/// server reached `when`, tracked by this backend (so it can wait for it, and is told when it
/// stops).
pub(crate) fn start(
    name: &str,
    kind: &str,
    function: &str,
    arg: pg_sys::Datum,
    extra: &str,
    when: BgWorkerStartTime,
) -> Option<DynamicBackgroundWorker> {
    BackgroundWorkerBuilder::new(name)
        .set_type(kind)
        .set_library("pg_storage_ext")
        .set_function(function)
        .enable_spi_access()
        .set_start_time(when)
        .set_restart_time(None)
        .set_argument(Some(arg))
        .set_extra(extra)
        // SAFETY: this backend's pid
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .load_dynamic()
        .ok()
}

/// Connects a worker started by [`start`] to `db` as `role`, first thing in the worker. A role
/// that may not log in, too: nobody logs in, the role is the one whoever started the worker
/// chose (its own role, the endpoint's configured role).
pub(crate) fn connect_as(db: u64, role: u64) {
    // SAFETY: called once, first thing in the worker
    unsafe {
        pg_sys::BackgroundWorkerInitializeConnectionByOid(
            pg_sys::Oid::from(db as u32),
            pg_sys::Oid::from(role as u32),
            pg_sys::BGWORKER_BYPASS_ROLELOGINCHECK,
        )
    };
}

/// The numbers of a worker's `extra` (written by whoever started it), space-separated.
pub(crate) fn numbers(extra: &str) -> Vec<u64> {
    extra.split(' ').filter_map(|s| s.parse().ok()).collect()
}

/// A backend's signal handling in a background worker, unblocked: SIGTERM (pg_terminate_backend,
/// a shutdown) ends the worker at the next interrupt check, as it ends a client's backend, and
/// SIGINT cancels the statement. PostgreSQL's default SIGTERM handler for a background worker,
/// `bgworker_die`, raises FATAL inside the signal handler, wherever the worker is: in a critical
/// section that is a PANIC, and the whole server restarts.
pub(crate) fn unblock_signals() {
    unsafe extern "C-unwind" {
        /// PostgreSQL's SIGTERM handler of a backend (tcop/postgres.c), the C symbol itself:
        /// pgrx's `pg_sys::die` is a guarded Rust wrapper, not a signal handler.
        #[link_name = "die"]
        fn backend_die(signal: std::ffi::c_int);
    }
    // SAFETY: installs PostgreSQL's own handler (`die`: sets ProcDiePending and the latch), then
    // unblocks the signals, once at the worker's start
    unsafe {
        pg_sys::pqsignal_be(pg_sys::SIGTERM as i32, Some(backend_die));
        pg_sys::BackgroundWorkerUnblockSignals();
    }
}

/// Sleeps up to `time` (or until the latch is set); false when the postmaster died. A
/// pg_terminate_backend ends the worker here.
pub(crate) fn pause(time: Duration) -> bool {
    let alive = BackgroundWorker::wait_latch(Some(time));
    pgrx::check_for_interrupts!();
    alive
}

/// Runs one statement in a transaction of the worker's own and hands its first row to `read`.
pub(crate) fn one_row<R>(
    sql: &str,
    args: &[pgrx::datum::DatumWithOid<'_>],
    read: impl FnOnce(&pgrx::spi::SpiTupleTable<'_>) -> R,
) -> R {
    BackgroundWorker::transaction(std::panic::AssertUnwindSafe(|| {
        Spi::connect_mut(|client| {
            let table = client
                .update(sql, None, args)
                .unwrap_or_else(|e| crate::error::spi_failed(e));
            read(&table.first())
        })
    }))
}

/// The fate of the transaction that queued the work: Some(true) committed, Some(false) aborted,
/// None still in progress. Asked in a transaction of its own, before the work is looked at in
/// the next one (whose snapshot then sees what that commit wrote: asked in one statement, the
/// snapshot could predate a commit the status already reports).
pub(crate) fn queued_by(xid: u64) -> Option<bool> {
    one_row(
        "SELECT pg_catalog.pg_xact_status($1::text::pg_catalog.xid8)",
        &[xid.to_string().into()],
        |row| match row.get::<String>(1).ok().flatten().as_deref() {
            Some("committed") => Some(true),
            Some("in progress") => None,
            _ => Some(false),
        },
    )
}

/// The SQLSTATE and message of an error caught in a worker (a Rust panic's as pgrx reports it).
pub(crate) fn caught(e: &pg_sys::panic::CaughtError) -> (PgSqlErrorCode, String) {
    match e {
        pg_sys::panic::CaughtError::PostgresError(r)
        | pg_sys::panic::CaughtError::ErrorReport(r)
        | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => {
            (r.sql_error_code(), r.message().to_owned())
        }
    }
}
