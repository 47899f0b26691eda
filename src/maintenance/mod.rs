//! Maintenance capability: the top-level executor of `storage.run_maintenance_plan()`.
//!
//! VACUUM and REINDEX CONCURRENTLY refuse to run inside a transaction block, so never from a
//! function or through SPI. The plan (SQL, `sql/maintenance.sql`) queues each such command as a
//! row of `storage.maintenance_log` and launches one dynamic background worker for it
//! ([`_maintenance_launch`]); the worker runs the command as a top-level statement of its own
//! session ([`crate::worker::top_level`]), the way a client's simple query (or pg_cron's worker)
//! does: one command at a time, as the owner of the table under SECURITY_RESTRICTED_OPERATION,
//! with `lock_timeout` and a bounded retry, and records the outcome and the measured effect in
//! the log row.

use crate::worker::top_level::{run_top_level, RunAs};
use crate::worker::{one_row, pause, queued_by, start, unblock_signals, WAIT_FOR_QUEUE};
use pgrx::bgworkers::{BackgroundWorker, BgWorkerStartTime};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::{Duration, Instant};

/// Internal: starts the background worker that runs the queued command of
/// `storage.maintenance_log` row `id`, connected as `role` (the extension's owner), with
/// `lock_timeout_ms` per lock wait, `retries` retries of a lock wait that timed out, at CPU
/// priority `nice`. Returns the worker's pid, NULL when no background worker slot is free.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn _maintenance_launch(
    id: i64,
    role: pg_sys::Oid,
    lock_timeout_ms: i32,
    retries: i32,
    nice: i32,
) -> Option<i32> {
    // SAFETY: plain reads of backend globals; the caller wrote the log row, so its transaction
    // has an id.
    let (db, xid) = unsafe {
        (
            pg_sys::MyDatabaseId,
            pg_sys::GetTopFullTransactionId().value,
        )
    };
    let extra = format!(
        "{} {} {} {} {} {}",
        db.to_u32(),
        role.to_u32(),
        xid,
        lock_timeout_ms.max(1),
        retries.max(0),
        nice.clamp(0, 19)
    );
    start(
        &format!("pg_storage_ext maintenance {id}"),
        "pg_storage_ext maintenance",
        "pg_storage_ext_maintenance_main",
        pg_sys::Datum::from(id),
        &extra,
        BgWorkerStartTime::RecoveryFinished,
    )?
    .wait_for_startup()
    .ok()
}

/// What the worker learnt from its log row.
enum Queue {
    /// The command to run and the owner of its table.
    Run(String, pg_sys::Oid),
    /// The queuing transaction is still in progress.
    Wait,
    /// Nothing to do: the transaction aborted, or the row is no longer queued.
    Gone,
}

fn claim(id: i64, xid: u64) -> Queue {
    match queued_by(xid) {
        None => return Queue::Wait,
        Some(false) => return Queue::Gone,
        Some(true) => {}
    }
    one_row(
        "SELECT b.command, b.owner FROM storage._maintenance_begin($1) AS b",
        &[id.into()],
        |row| match (
            row.get::<String>(1).ok().flatten(),
            row.get::<pg_sys::Oid>(2).ok().flatten(),
        ) {
            (Some(c), Some(o)) => Queue::Run(c, o),
            _ => Queue::Gone,
        },
    )
}

/// Records the outcome of log row `id` (and the effect measured now).
fn finish(id: i64, outcome: &str, attempts: i32) {
    one_row(
        "SELECT storage._maintenance_end($1, $2, $3)",
        &[id.into(), outcome.into(), attempts.into()],
        |_| (),
    );
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_storage_ext_maintenance_main(arg: pg_sys::Datum) {
    unblock_signals();
    let id = arg.value() as i64;
    let [db, role, xid, lock_timeout_ms, retries, nice] =
        crate::worker::numbers(BackgroundWorker::get_extra())[..]
    else {
        return;
    };
    // when asked, the application's sessions go first: a lower CPU priority for this process
    // (and no parallel workers below, which would run at the normal priority)
    // SAFETY: setpriority of the calling process; raising one's own nice needs no privilege
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice as i32) };
    BackgroundWorker::connect_worker_to_spi_by_oid(
        Some(pg_sys::Oid::from(db as u32)),
        Some(pg_sys::Oid::from(role as u32)),
    );
    one_row(
        "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false), \
                pg_catalog.set_config('lock_timeout', $1, false), \
                pg_catalog.set_config('application_name', 'pg_storage_ext maintenance', false), \
                CASE WHEN $2 > 0 THEN pg_catalog.set_config('max_parallel_maintenance_workers', '0', false) END",
        &[format!("{lock_timeout_ms}ms").into(), (nice as i32).into()],
        |_| (),
    );
    // the row becomes visible when the transaction that queued it commits
    let waited = Instant::now();
    let (command, owner) = loop {
        match claim(id, xid) {
            Queue::Run(command, owner) => break (command, owner),
            Queue::Gone => return,
            Queue::Wait => {}
        }
        if !pause(Duration::from_millis(50)) || waited.elapsed() > WAIT_FOR_QUEUE {
            return;
        }
    };
    let progress = crate::ops::progress::start("maintenance", &command, -1);
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        crate::ops::progress::update(progress, 0, &format!("attempt {attempts}"));
        match run_top_level(&command, RunAs::Owner(owner)) {
            Ok(()) => break "done".to_owned(),
            Err(f) if f.code == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE => {
                if attempts > retries as i32 {
                    break "skipped: locked".to_owned();
                }
                // back off a little longer each time (1 s, 2 s, ... at most 10 s)
                let wait = Duration::from_secs((attempts as u64).min(10));
                if !pause(wait) {
                    break "skipped: locked (the worker was stopped)".to_owned();
                }
            }
            Err(f) => break format!("failed: {}", f.message),
        }
    };
    finish(id, &outcome, attempts);
    crate::ops::progress::end(progress);
}
