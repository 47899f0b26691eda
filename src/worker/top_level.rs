//! A statement run as a client's top-level statement in a worker's session, in a transaction of
//! its own: the maintenance executor's VACUUM or REINDEX CONCURRENTLY, a non-transactional
//! migration's statements. Neither can run inside a function or through SPI.

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;

/// A failed run: its SQLSTATE and message.
pub(crate) struct Failure {
    pub(crate) code: PgSqlErrorCode,
    pub(crate) message: String,
}

/// What a top-level statement runs as.
#[derive(Clone, Copy)]
pub(crate) enum RunAs<'a> {
    /// A maintenance command (VACUUM, REINDEX, DROP INDEX, and an online schema change's
    /// CREATE INDEX CONCURRENTLY only) as the table's owner under SECURITY_RESTRICTED_OPERATION.
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
/// (`crate::migrations::runner`'s `reset_session`) before it does anything of its own.
pub(crate) fn run_top_level(command: &str, run_as: RunAs) -> Result<(), Failure> {
    let sql = std::ffi::CString::new(command).map_err(|_| Failure {
        code: PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        message: "the command contains a NUL byte".into(),
    })?;
    // the switch of role SECURITY DEFINER functions and maintenance commands make
    let saved = match run_as {
        RunAs::Owner(owner) => crate::privilege::switch_role(owner, true),
        RunAs::Author(author, _) => crate::privilege::switch_role(author, false),
    };
    // SAFETY: the calls exec_simple_query makes at the top of a backend's loop
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, sql.as_ptr());
        pg_sys::StartTransactionCommand();
    }
    let result = PgTryBuilder::new(|| {
        if let RunAs::Author(_, path) = run_as {
            crate::privilege::set_for_session(c"search_path", path);
        }
        // SAFETY: as exec_simple_query; the parse and plan trees live in a context of their own
        // (the statement commits transactions of its own while it runs).
        unsafe { execute(&sql, run_as) };
        Ok(())
    })
    .catch_others(|e| {
        let (code, message) = super::caught(&e);
        Err(Failure { code, message })
    })
    .execute();
    // SAFETY: the transaction ends either way (as the statement's role)
    unsafe {
        if result.is_ok() {
            pg_sys::CommitTransactionCommand();
        } else {
            pg_sys::AbortCurrentTransaction();
        }
    }
    // then back to the worker's own role
    saved.restore();
    // SAFETY: the activity a backend reports between statements
    unsafe { pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null()) };
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
                    | pg_sys::NodeTag::T_IndexStmt
            ) {
                crate::error::raise(
                    PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    "the maintenance executor runs one VACUUM, ANALYZE, REINDEX, CREATE INDEX or DROP INDEX statement",
                    Some(format!("The queued command was: {}", sql.to_string_lossy())),
                    Some("Commands are queued by storage.run_maintenance_plan() and the online schema changes only.".into()),
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
