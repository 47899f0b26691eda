//! Maintenance capability: the top-level executor of `storage.run_maintenance_plan()`.
//!
//! VACUUM and REINDEX CONCURRENTLY refuse to run inside a transaction block, so never from a
//! function or through SPI. The plan (SQL, `sql/maintenance.sql`) queues each such command as a
//! row of `storage.maintenance_log` and launches one dynamic background worker for it
//! ([`_maintenance_launch`]); the worker runs the command as a top-level statement of its own
//! session, the way a client's simple query (or pg_cron's worker) does: one command at a time,
//! as the owner of the table under SECURITY_RESTRICTED_OPERATION, with `lock_timeout` and a
//! bounded retry, and records the outcome and the measured effect in the log row.

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use std::time::{Duration, Instant};

/// How long a worker waits for the transaction that queued its command to commit.
const WAIT_FOR_QUEUE: Duration = Duration::from_secs(600);

/// Internal: starts the background worker that runs the queued command of
/// `storage.maintenance_log` row `id`, connected as `role` (the extension's owner), with
/// `lock_timeout_ms` per lock wait and `retries` retries of a lock wait that timed out. Returns
/// the worker's pid, NULL when no background worker slot is free.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn _maintenance_launch(
    id: i64,
    role: pg_sys::Oid,
    lock_timeout_ms: i32,
    retries: i32,
) -> Option<i32> {
    launch(id, role, lock_timeout_ms, retries)
}

fn launch(id: i64, role: pg_sys::Oid, lock_timeout_ms: i32, retries: i32) -> Option<i32> {
    // SAFETY: plain reads of backend globals; the caller wrote the log row, so its transaction
    // has an id.
    let (db, xid, me) = unsafe {
        (
            pg_sys::MyDatabaseId,
            pg_sys::GetTopFullTransactionId().value,
            pg_sys::MyProcPid,
        )
    };
    let extra = format!(
        "{} {} {} {} {}",
        db.to_u32(),
        role.to_u32(),
        xid,
        lock_timeout_ms.max(1),
        retries.max(0)
    );
    let worker = BackgroundWorkerBuilder::new(&format!("pg_storage_ext maintenance {id}"))
        .set_type("pg_storage_ext maintenance")
        .set_library("pg_storage_ext")
        .set_function("pg_storage_ext_maintenance_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .set_argument(Some(pg_sys::Datum::from(id)))
        .set_extra(&extra)
        .set_notify_pid(me)
        .load_dynamic()
        .ok()?;
    worker.wait_for_startup().ok()
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
    BackgroundWorker::transaction(|| {
        Spi::connect_mut(|client| {
            let row = client
                .update(
                    "SELECT b.command, b.owner, pg_catalog.pg_xact_status($2::text::pg_catalog.xid8) \
                       FROM (SELECT) AS x LEFT JOIN LATERAL storage._maintenance_begin($1) AS b ON true",
                    None,
                    &[id.into(), xid.to_string().into()],
                )
                .unwrap_or_else(|e| crate::error::spi_failed(e));
            let row = row.first();
            let command = row.get::<String>(1).ok().flatten();
            let owner = row.get::<pg_sys::Oid>(2).ok().flatten();
            let status = row.get::<String>(3).ok().flatten();
            match (command, owner, status.as_deref()) {
                (Some(c), Some(o), _) => Queue::Run(c, o),
                (_, _, Some("in progress")) => Queue::Wait,
                _ => Queue::Gone,
            }
        })
    })
}

/// A failed run: its SQLSTATE and message.
struct Failure {
    code: PgSqlErrorCode,
    message: String,
}

/// Runs one utility statement (VACUUM, REINDEX, DROP INDEX) as a top-level statement in its own
/// transaction, as `owner` under SECURITY_RESTRICTED_OPERATION; what exec_simple_query does for
/// a client, with the statement's kind checked first.
fn run_top_level(command: &str, owner: pg_sys::Oid) -> Result<(), Failure> {
    let sql = std::ffi::CString::new(command).map_err(|_| Failure {
        code: PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        message: "the command contains a NUL byte".into(),
    })?;
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0;
    // SAFETY: the calls exec_simple_query makes at the top of a backend's loop.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, sql.as_ptr());
        pg_sys::StartTransactionCommand();
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
    }
    let result = PgTryBuilder::new(|| {
        // SAFETY: as exec_simple_query; the parse and plan trees live in a context of their own
        // (the statement commits transactions of its own while it runs).
        unsafe { execute(&sql, owner, saved_context) };
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
    // SAFETY: back to the worker's own role; the transaction ends either way.
    unsafe {
        pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
        if result.is_ok() {
            pg_sys::CommitTransactionCommand();
        } else {
            pg_sys::AbortCurrentTransaction();
        }
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null());
    }
    result
}

unsafe fn execute(sql: &std::ffi::CStr, owner: pg_sys::Oid, context: i32) {
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
        pg_sys::SetUserIdAndSecContext(
            owner,
            context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
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
    BackgroundWorker::transaction(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    "SELECT storage._maintenance_end($1, $2, $3)",
                    None,
                    &[id.into(), outcome.into(), attempts.into()],
                )
                .unwrap_or_else(|e| crate::error::spi_failed(e));
        })
    });
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_storage_ext_maintenance_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let id = arg.value() as i64;
    let extra: Vec<u64> = BackgroundWorker::get_extra()
        .split(' ')
        .filter_map(|s| s.parse().ok())
        .collect();
    let [db, role, xid, lock_timeout_ms, retries] = extra[..] else {
        return;
    };
    BackgroundWorker::connect_worker_to_spi_by_oid(
        Some(pg_sys::Oid::from(db as u32)),
        Some(pg_sys::Oid::from(role as u32)),
    );
    BackgroundWorker::transaction(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false), \
                            pg_catalog.set_config('lock_timeout', $1, false), \
                            pg_catalog.set_config('application_name', 'pg_storage_ext maintenance', false)",
                    None,
                    &[format!("{lock_timeout_ms}ms").into()],
                )
                .unwrap_or_else(|e| crate::error::spi_failed(e));
        })
    });
    // the row becomes visible when the transaction that queued it commits
    let waited = Instant::now();
    let (command, owner) = loop {
        match claim(id, xid) {
            Queue::Run(command, owner) => break (command, owner),
            Queue::Gone => return,
            Queue::Wait => {}
        }
        if !BackgroundWorker::wait_latch(Some(Duration::from_millis(50)))
            || waited.elapsed() > WAIT_FOR_QUEUE
        {
            return;
        }
    };
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        match run_top_level(&command, owner) {
            Ok(()) => break "done".to_owned(),
            Err(f) if f.code == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE => {
                if attempts > retries as i32 {
                    break "skipped: locked".to_owned();
                }
                // back off a little longer each time (1 s, 2 s, ... at most 10 s)
                let pause = Duration::from_secs((attempts as u64).min(10));
                if !BackgroundWorker::wait_latch(Some(pause)) {
                    break "skipped: locked (the worker was stopped)".to_owned();
                }
            }
            Err(f) => break format!("failed: {}", f.message),
        }
    };
    finish(id, &outcome, attempts);
}
