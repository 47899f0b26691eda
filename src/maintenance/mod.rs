//! Maintenance capability: the top-level executor of `storage.run_maintenance_plan()` (and of
//! non-transactional migrations, and the autonomous transaction that keeps a failed migration's
//! record).
//!
//! VACUUM and REINDEX CONCURRENTLY refuse to run inside a transaction block, so never from a
//! function or through SPI. The plan (SQL, `sql/maintenance.sql`) queues each such command as a
//! row of `storage.maintenance_log` and launches one dynamic background worker for it
//! ([`_maintenance_launch`]); the worker runs the command as a top-level statement of its own
//! session, the way a client's simple query (or pg_cron's worker) does: one command at a time,
//! as the owner of the table under SECURITY_RESTRICTED_OPERATION, with `lock_timeout` and a
//! bounded retry, and records the outcome and the measured effect in the log row.

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use std::time::{Duration, Instant};

/// How long a worker waits for the transaction that queued its command to commit.
const WAIT_FOR_QUEUE: Duration = Duration::from_secs(600);

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
    )?
    .wait_for_startup()
    .ok()
}

/// PostgreSQL's own signal handling of a background worker (SIGTERM: die at the next interrupt
/// check, as pg_terminate_backend expects; SIGINT: cancel the statement), unblocked.
fn unblock_signals() {
    // SAFETY: the handlers PostgreSQL installed for this worker, unblocked once at its start
    unsafe { pg_sys::BackgroundWorkerUnblockSignals() };
}

/// Sleeps up to `pause` (or until the latch is set); false when the postmaster died. A
/// pg_terminate_backend ends the worker here.
fn pause(time: Duration) -> bool {
    let alive = BackgroundWorker::wait_latch(Some(time));
    pgrx::check_for_interrupts!();
    alive
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

/// Runs one statement in a transaction of the worker's own and hands its first row to `read`.
fn one_row<R>(
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
fn queued_by(xid: u64) -> Option<bool> {
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

/// A failed run: its SQLSTATE and message.
pub(crate) struct Failure {
    pub(crate) code: PgSqlErrorCode,
    pub(crate) message: String,
}

/// What a top-level statement runs as.
#[derive(Clone, Copy)]
pub(crate) enum RunAs<'a> {
    /// A maintenance command (VACUUM, REINDEX, DROP INDEX only) as the table's owner under
    /// SECURITY_RESTRICTED_OPERATION.
    Owner(pg_sys::Oid),
    /// Any statement of a migration but transaction control, as the role that queued it (its
    /// author) with its search_path; SET ROLE and SET SESSION AUTHORIZATION are refused inside,
    /// as in a SECURITY DEFINER function.
    Author(pg_sys::Oid, &'a std::ffi::CStr),
}

/// Runs one statement as a top-level statement in its own transaction: what exec_simple_query
/// does for a client.
///
/// The role is switched *before* the transaction starts, so that every transaction the
/// statement itself ends and starts (a procedure's or DO block's COMMIT and ROLLBACK, a
/// CREATE INDEX CONCURRENTLY's phases) begins as that role: an abort restores the role a
/// transaction began with, which must never be the worker's own. For a migration's statement
/// the author's search_path is set for the session, then the worker's session is reset
/// ([`reset_session`]) before it does anything of its own.
pub(crate) fn run_top_level(command: &str, run_as: RunAs) -> Result<(), Failure> {
    let sql = std::ffi::CString::new(command).map_err(|_| Failure {
        code: PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        message: "the command contains a NUL byte".into(),
    })?;
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0;
    // SAFETY: the calls exec_simple_query makes at the top of a backend's loop, after the
    // switch of role SECURITY DEFINER functions and maintenance commands make.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        let (role, flags) = match run_as {
            RunAs::Owner(owner) => (
                owner,
                pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION,
            ),
            RunAs::Author(author, _) => (author, pg_sys::SECURITY_LOCAL_USERID_CHANGE),
        };
        pg_sys::SetUserIdAndSecContext(role, saved_context | flags as i32);
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, sql.as_ptr());
        pg_sys::StartTransactionCommand();
    }
    let result = PgTryBuilder::new(|| {
        if let RunAs::Author(_, path) = run_as {
            // SAFETY: a session-level SET of search_path, as a client's SET would make it
            unsafe {
                pg_sys::set_config_option(
                    c"search_path".as_ptr(),
                    path.as_ptr(),
                    pg_sys::GucContext::PGC_USERSET,
                    pg_sys::GucSource::PGC_S_SESSION,
                    pg_sys::GucAction::GUC_ACTION_SET,
                    true,
                    0,
                    false,
                )
            };
        }
        // SAFETY: as exec_simple_query; the parse and plan trees live in a context of their own
        // (the statement commits transactions of its own while it runs).
        unsafe { execute(&sql, run_as) };
        Ok(())
    })
    .catch_others(|e| {
        let (code, message) = match &e {
            pg_sys::panic::CaughtError::PostgresError(r)
            | pg_sys::panic::CaughtError::ErrorReport(r)
            | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => {
                (r.sql_error_code(), r.message().to_owned())
            }
        };
        Err(Failure { code, message })
    })
    .execute();
    // SAFETY: the transaction ends either way (as the statement's role), then back to the
    // worker's own role.
    unsafe {
        if result.is_ok() {
            pg_sys::CommitTransactionCommand();
        } else {
            pg_sys::AbortCurrentTransaction();
        }
        pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null());
    }
    result
}

unsafe fn execute(sql: &std::ffi::CStr, run_as: RunAs) {
    unsafe {
        let parse = pg_sys::AllocSetContextCreateInternal(
            pg_sys::TopMemoryContext,
            c"pg_storage_ext maintenance".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        );
        let old = pg_sys::MemoryContextSwitchTo(parse);
        let list = pg_sys::pg_parse_query(sql.as_ptr());
        pg_sys::MemoryContextSwitchTo(old);
        let len = if list.is_null() { 0 } else { (*list).length };
        let raw = if len == 1 {
            (*(*list).elements).ptr_value as *mut pg_sys::RawStmt
        } else {
            std::ptr::null_mut()
        };
        let tag = if raw.is_null() {
            pg_sys::NodeTag::T_Invalid
        } else {
            (*(*raw).stmt).type_
        };
        if raw.is_null() {
            crate::error::raise(
                PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
                "the executor runs exactly one statement at a time",
                Some(format!("The command was: {}", sql.to_string_lossy())),
                Some("Split the script into statements first.".into()),
            );
        }
        if matches!(run_as, RunAs::Author(..)) && tag == pg_sys::NodeTag::T_TransactionStmt {
            crate::error::raise(
                PgSqlErrorCode::ERRCODE_ACTIVE_SQL_TRANSACTION,
                "a migration statement may not begin or end a transaction",
                Some(format!("The statement was: {}", sql.to_string_lossy())),
                Some("Each statement of a non-transactional migration runs in a transaction of its own; remove BEGIN, COMMIT, ROLLBACK and SAVEPOINT.".into()),
            );
        }
        if let RunAs::Owner(_) = run_as {
            if !matches!(
                tag,
                pg_sys::NodeTag::T_VacuumStmt
                    | pg_sys::NodeTag::T_ReindexStmt
                    | pg_sys::NodeTag::T_DropStmt
            ) {
                crate::error::raise(
                    PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    "the maintenance executor runs one VACUUM, ANALYZE, REINDEX or DROP INDEX statement",
                    Some(format!("The queued command was: {}", sql.to_string_lossy())),
                    Some("Commands are queued by storage.run_maintenance_plan() only.".into()),
                );
            }
        }
        let command_tag = pg_sys::CreateCommandTag((*raw).stmt);
        let snapshot = pg_sys::analyze_requires_snapshot(raw);
        if snapshot {
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        }
        let old = pg_sys::MemoryContextSwitchTo(parse);
        let queries = pg_sys::pg_analyze_and_rewrite_fixedparams(
            raw,
            sql.as_ptr(),
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
        );
        let plans = pg_sys::pg_plan_queries(queries, sql.as_ptr(), 0, std::ptr::null_mut());
        if snapshot {
            pg_sys::PopActiveSnapshot();
        }
        let portal = pg_sys::CreatePortal(c"".as_ptr(), true, true);
        (*portal).visible = false;
        pg_sys::PortalDefineQuery(
            portal,
            std::ptr::null(),
            sql.as_ptr(),
            command_tag,
            plans,
            std::ptr::null_mut(),
        );
        pg_sys::PortalStart(portal, std::ptr::null_mut(), 0, std::ptr::null_mut());
        let receiver = pg_sys::CreateDestReceiver(pg_sys::CommandDest::DestNone);
        pg_sys::MemoryContextSwitchTo(old);
        let mut qc = pg_sys::QueryCompletion::default();
        pg_sys::PortalRun(portal, i64::MAX as _, true, receiver, receiver, &mut qc);
        if let Some(destroy) = (*receiver).rDestroy {
            destroy(receiver);
        }
        pg_sys::PortalDrop(portal, false);
        pg_sys::MemoryContextDelete(parse);
    }
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
    let extra: Vec<u64> = BackgroundWorker::get_extra()
        .split(' ')
        .filter_map(|s| s.parse().ok())
        .collect();
    let [db, role, xid, lock_timeout_ms, retries, nice] = extra[..] else {
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

/// Starts a dynamic worker of this library running `function` with `arg` and `extra`, tracked
/// by this backend (so it can wait for it).
fn start(
    name: &str,
    kind: &str,
    function: &str,
    arg: pg_sys::Datum,
    extra: &str,
) -> Option<pgrx::bgworkers::DynamicBackgroundWorker> {
    BackgroundWorkerBuilder::new(name)
        .set_type(kind)
        .set_library("pg_storage_ext")
        .set_function(function)
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .set_argument(Some(arg))
        .set_extra(extra)
        // SAFETY: this backend's pid
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .load_dynamic()
        .ok()
}

/// Connects a worker started by [`start`] to `db` as `role` (a role that may not log in, too:
/// it is the caller's own role).
fn connect_as(db: u64, role: u64) {
    // SAFETY: called once, first thing in the worker
    unsafe {
        pg_sys::BackgroundWorkerInitializeConnectionByOid(
            pg_sys::Oid::from(db as u32),
            pg_sys::Oid::from(role as u32),
            pg_sys::BGWORKER_BYPASS_ROLELOGINCHECK,
        )
    };
}

fn numbers(extra: &str) -> Vec<u64> {
    extra.split(' ').filter_map(|s| s.parse().ok()).collect()
}

/// Internal: runs `sql` in a transaction of its own (an autonomous transaction: it commits
/// whatever the caller's transaction does), in a background worker connected as the current
/// role; waits for it. True when it committed. Used to keep a failed migration's record.
#[pg_extern(volatile, strict)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn _autonomous(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    // SAFETY: a segment of this transaction's resource owner, written before the worker starts,
    // read after it stopped; byte 0 is the worker's verdict, the SQL follows, NUL-terminated.
    unsafe {
        let seg = pg_sys::dsm_create(bytes.len() + 2, 0);
        let base = pg_sys::dsm_segment_address(seg) as *mut u8;
        *base = 0;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(1), bytes.len());
        *base.add(1 + bytes.len()) = 0;
        let extra = format!(
            "{} {}",
            pg_sys::MyDatabaseId.to_u32(),
            pg_sys::GetUserId().to_u32()
        );
        let handle = pg_sys::dsm_segment_handle(seg);
        let ok = match start(
            "pg_storage_ext autonomous transaction",
            "pg_storage_ext autonomous",
            "pg_storage_ext_autonomous_main",
            pg_sys::Datum::from(handle),
            &extra,
        ) {
            Some(w) => w.wait_for_shutdown().is_ok() && *base == 1,
            None => false,
        };
        pg_sys::dsm_detach(seg);
        ok
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_storage_ext_autonomous_main(arg: pg_sys::Datum) {
    unblock_signals();
    let [db, role] = numbers(BackgroundWorker::get_extra())[..] else {
        return;
    };
    connect_as(db, role);
    // SAFETY: the segment the caller keeps until this worker has stopped
    unsafe {
        let seg = pg_sys::dsm_attach(arg.value() as pg_sys::dsm_handle);
        if seg.is_null() {
            return;
        }
        let base = pg_sys::dsm_segment_address(seg) as *mut u8;
        let sql = std::ffi::CStr::from_ptr(base.add(1) as *const std::ffi::c_char)
            .to_string_lossy()
            .into_owned();
        BackgroundWorker::transaction(|| {
            Spi::run(&sql).unwrap_or_else(|e| crate::error::spi_failed(e));
        });
        *base = 1;
        pg_sys::dsm_detach(seg);
    }
}

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
    let [db, role, xid, lock_timeout_ms, retries] = self::numbers(numbers)[..] else {
        return;
    };
    let queued = queued.to_owned();
    connect_as(db, role);
    let started = Instant::now();
    // whatever ends the work other than its end or a stop (an error anywhere, the lock not had in
    // time) is recorded with the migration, never left `pending` without a word
    let outcome =
        PgTryBuilder::new(|| run_migration(id, xid, &queued, lock_timeout_ms, retries as i32))
            .catch_others(|e| {
                Err(match &e {
                    pg_sys::panic::CaughtError::PostgresError(r)
                    | pg_sys::panic::CaughtError::ErrorReport(r)
                    | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => {
                        r.message().to_owned()
                    }
                })
            })
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
