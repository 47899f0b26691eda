//! The runner of non-transactional migrations: a worker (started by `storage._migration_launch`
//! once the transaction that queued the migration commits) runs its statements one by one as
//! top-level statements ([`crate::worker::top_level`]), as the role that queued it, holding the
//! migration lock across them, retrying a lock wait that timed out, and records each
//! statement's outcome with the migration.

use crate::worker::top_level::{run_top_level, RunAs};
use crate::worker::{
    connect_as, one_row, pause, queued_by, start, unblock_signals, WAIT_FOR_QUEUE,
};
use pgrx::bgworkers::{BackgroundWorker, BgWorkerStartTime};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use std::time::{Duration, Instant};

/// Internal: starts the worker that runs the pending non-transactional migration `id` statement
/// by statement, as top-level statements, as the role that queued it, once the calling
/// transaction has committed; the worker connects as the current role (the extension's owner:
/// storage._migrate_owner runs as it) and runs only a script whose sha256 starts with the first
/// 32 hex digits of `checksum`. Returns its pid, NULL when no worker slot is free.
#[pg_extern(volatile, strict)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn _migration_launch(
    id: i64,
    checksum: &str,
    lock_timeout_ms: i32,
    retries: i32,
) -> Option<i32> {
    let queued: String = checksum
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(32)
        .collect();
    // SAFETY: reads of backend globals; the caller wrote the history row, so it has an xid
    let extra = unsafe {
        format!(
            "{} {} {} {} {} {queued}",
            pg_sys::MyDatabaseId.to_u32(),
            pg_sys::GetUserId().to_u32(),
            pg_sys::GetTopFullTransactionId().value,
            lock_timeout_ms.max(1),
            retries.max(0)
        )
    };
    let worker = start(
        &format!("pg_storage_ext migration {id}"),
        "pg_storage_ext migration",
        "pg_storage_ext_migration_main",
        pg_sys::Datum::from(id),
        &extra,
        BgWorkerStartTime::RecoveryFinished,
    )?;
    worker.wait_for_startup().ok()
}

/// The next statement of a pending migration: (n, statement, an invalid index to drop first,
/// the role to run them as, with its search_path).
type Next = (i32, String, Option<String>, pg_sys::Oid, std::ffi::CString);

/// The next statement of pending migration `id` whose script was queued with checksum
/// `queued`; Err while the queuing transaction has not committed.
fn next_statement(id: i64, xid: u64, queued: &str) -> Result<Option<Next>, ()> {
    match queued_by(xid) {
        None => return Err(()),
        Some(false) => return Ok(None),
        Some(true) => {}
    }
    one_row(
        "SELECT x.n, x.statement, x.drop_first, x.author, x.search_path \
           FROM storage._migration_next($1, $2) AS x",
        &[id.into(), queued.into()],
        |row| {
            Ok(row.get::<i32>(1).ok().flatten().map(|n| {
                (
                    n,
                    row.get::<String>(2).ok().flatten().unwrap_or_default(),
                    row.get::<String>(3).ok().flatten(),
                    row.get::<pg_sys::Oid>(4)
                        .ok()
                        .flatten()
                        .unwrap_or(pg_sys::InvalidOid),
                    row.get::<String>(5)
                        .ok()
                        .flatten()
                        .and_then(|p| std::ffi::CString::new(p).ok())
                        .unwrap_or_else(|| c"public".to_owned()),
                )
            }))
        },
    )
}

thread_local! {
    /// The session lock this worker holds on storage._migration_lock, once taken.
    static MIGRATION_LOCK: std::cell::Cell<Option<pg_sys::LOCKTAG>> =
        const { std::cell::Cell::new(None) };
}

const MIGRATION_LOCK_MODE: pg_sys::LOCKMODE = pg_sys::ShareUpdateExclusiveLock as pg_sys::LOCKMODE;

/// Holds `storage._migration_lock` in SHARE UPDATE EXCLUSIVE mode as a session lock (across the statements'
/// own transactions), the lock storage.migrate takes per transaction; false while another
/// migration holds it. PostgreSQL releases a session lock at a transaction's abort (a statement
/// that failed: it is taken again before the next one) but not at exit: a callback releases it
/// when the worker exits, however it exits.
fn hold_migration_lock() -> bool {
    BackgroundWorker::transaction(|| {
        let relid = crate::catalog::read_one::<pg_sys::Oid>(
            "SELECT pg_catalog.to_regclass('storage._migration_lock')::pg_catalog.oid",
        )
        .ok()
        .flatten()
        .unwrap_or(pg_sys::InvalidOid);
        if relid == pg_sys::InvalidOid {
            return false;
        }
        // a relation lock tag, as SET_LOCKTAG_RELATION makes it
        let tag = pg_sys::LOCKTAG {
            // SAFETY: a backend global
            locktag_field1: unsafe { pg_sys::MyDatabaseId }.to_u32(),
            locktag_field2: relid.to_u32(),
            locktag_field3: 0,
            locktag_field4: 0,
            locktag_type: pg_sys::LockTagType::LOCKTAG_RELATION as u8,
            locktag_lockmethodid: 1, // DEFAULT_LOCKMETHOD
        };
        // SAFETY: lock manager calls on a valid tag; the exit callback is registered once
        unsafe {
            if pg_sys::LockHeldByMe(&tag, MIGRATION_LOCK_MODE, false) {
                return true;
            }
            let got = pg_sys::LockAcquire(&tag, MIGRATION_LOCK_MODE, true, true)
                != pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL;
            if got && MIGRATION_LOCK.replace(Some(tag)).is_none() {
                pg_sys::before_shmem_exit(Some(release_migration_lock), pg_sys::Datum::from(0));
            }
            got
        }
    })
}

unsafe extern "C-unwind" fn release_migration_lock(_code: i32, _arg: pg_sys::Datum) {
    // SAFETY: an exit callback, called by C; releases only the session lock taken above
    unsafe {
        crate::guard::callback(|| {
            if let Some(tag) = MIGRATION_LOCK.get() {
                while pg_sys::LockHeldByMe(&tag, MIGRATION_LOCK_MODE, false) {
                    if !pg_sys::LockRelease(&tag, MIGRATION_LOCK_MODE, true) {
                        break;
                    }
                }
            }
        })
    }
}

/// Waits (up to [`WAIT_FOR_QUEUE`] since `since`) until this worker holds the migration lock:
/// Ok(true) held, Ok(false) the worker was stopped, Err when another migration kept it.
fn wait_for_migration_lock(since: Instant) -> Result<bool, String> {
    while !hold_migration_lock() {
        if !pause(Duration::from_millis(100)) {
            return Ok(false);
        }
        if since.elapsed() > WAIT_FOR_QUEUE {
            return Err(format!(
                "another migration held the migration lock for {} s",
                WAIT_FOR_QUEUE.as_secs()
            ));
        }
    }
    Ok(true)
}

/// The worker's own session, as it is before and after every statement of a migration: every
/// setting back to its default (whatever a statement SET for the session, a DO block included),
/// then the pinned search_path, the lock timeout and the application name. Everything the
/// worker runs itself is schema-qualified and runs with this.
fn reset_session(lock_timeout: &str) {
    one_row("RESET ALL", &[], |_| ());
    one_row(
        "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false), \
                pg_catalog.set_config('lock_timeout', $1, false), \
                pg_catalog.set_config('application_name', 'pg_storage_ext migration', false)",
        &[lock_timeout.into()],
        |_| (),
    );
}

/// Marks pending migration `id` failed with `error` (and the time it took), in a transaction of
/// the worker's own.
fn record_progress(id: i64, n: i32, error: Option<String>, took: Duration) {
    let took = format!("{} milliseconds", took.as_millis());
    one_row(
        "SELECT storage._migration_progress($1, $2, $3, $4::pg_catalog.interval)",
        &[id.into(), n.into(), error.into(), took.into()],
        |_| (),
    );
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_storage_ext_migration_main(arg: pg_sys::Datum) {
    unblock_signals();
    let id = arg.value() as i64;
    let extra = BackgroundWorker::get_extra().to_owned();
    let (numbers, queued) = extra.rsplit_once(' ').unwrap_or_default();
    let [db, role, xid, lock_timeout_ms, retries] = crate::worker::numbers(numbers)[..] else {
        return;
    };
    let queued = queued.to_owned();
    connect_as(db, role);
    let started = Instant::now();
    // whatever ends the work other than its end or a stop (an error anywhere, the lock not had in
    // time) is recorded with the migration, never left `pending` without a word
    let outcome =
        PgTryBuilder::new(|| run_migration(id, xid, &queued, lock_timeout_ms, retries as i32))
            .catch_others(|e| Err(crate::worker::caught(&e).1))
            .execute();
    if let Err(error) = outcome {
        // SAFETY: ends whatever transaction the error left open, as a worker's error recovery does
        unsafe { pg_sys::AbortCurrentTransaction() };
        record_progress(
            id,
            0,
            Some(format!("the migration executor stopped: {error}")),
            started.elapsed(),
        );
    }
}

/// Runs pending migration `id`: Ok when it ended (applied, failed and recorded, or nothing to
/// do), Err with the reason when it could not go on.
fn run_migration(
    id: i64,
    xid: u64,
    queued: &str,
    lock_timeout_ms: u64,
    retries: i32,
) -> Result<(), String> {
    // one migration at a time (the lock storage.migrate takes per transaction)
    let waited = Instant::now();
    if !wait_for_migration_lock(waited)? {
        return Ok(());
    }
    let settings = format!("{lock_timeout_ms}ms");
    reset_session(&settings);
    loop {
        let (n, statement, drop_first, author, path) = match next_statement(id, xid, queued) {
            Ok(Some(next)) => next,
            Ok(None) => return Ok(()),
            Err(()) => {
                // the transaction that queued it has not committed yet (its row cannot be
                // written before it does)
                if !pause(Duration::from_millis(50)) || waited.elapsed() > WAIT_FOR_QUEUE {
                    pgrx::warning!(
                        "pg_storage_ext: migration {id} was not committed within {} s; call storage.migrate again to run it",
                        WAIT_FOR_QUEUE.as_secs()
                    );
                    return Ok(());
                }
                continue;
            }
        };
        let started = Instant::now();
        let progress = crate::ops::progress::start("migration", &statement, -1);
        crate::ops::progress::update(progress, i64::from(n) - 1, &format!("statement {n}"));
        // each attempt: the invalid index an interrupted or timed-out CREATE INDEX CONCURRENTLY
        // of this statement left (found again before every attempt), then the statement; a lock
        // wait that timed out in either is tried again
        let mut drop = drop_first;
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            // held again after an attempt that aborted (an abort releases a session lock)
            if !wait_for_migration_lock(Instant::now())? {
                return Ok(());
            }
            let attempt = match drop.take() {
                Some(d) => run_top_level(&d, RunAs::Author(author, &path)),
                None => Ok(()),
            }
            .and_then(|()| run_top_level(&statement, RunAs::Author(author, &path)));
            // whatever the statement set for the session is undone before the worker's own work
            reset_session(&settings);
            // an online schema change the statement started is part of it: waited for
            let attempt = attempt.and_then(|()| match super::online::wait_for_started() {
                Ok(true) => Ok(()),
                Ok(false) => Err(crate::worker::top_level::Failure {
                    code: PgSqlErrorCode::ERRCODE_ADMIN_SHUTDOWN,
                    message: "the migration executor was stopped".into(),
                }),
                Err(message) => Err(crate::worker::top_level::Failure {
                    code: PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    message,
                }),
            });
            match attempt {
                Err(f)
                    if f.code == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE
                        && attempts <= retries =>
                {
                    let wait =
                        Duration::from_millis((lock_timeout_ms / 2).max(50) * attempts as u64);
                    if !pause(wait) {
                        return Ok(());
                    }
                    if let Ok(Some((_, _, d, _, _))) = next_statement(id, xid, queued) {
                        drop = d;
                    }
                }
                other => break other,
            }
        };
        crate::ops::progress::end(progress);
        let error = result.err().map(|f| f.message);
        let failed = error.is_some();
        record_progress(id, n, error, started.elapsed());
        if failed {
            return Ok(());
        }
    }
}
