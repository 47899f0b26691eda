//! Custom metrics (`storage.custom_metrics`): the check that a metric's SQL is one query the
//! reading statement keeps whole, and its run within a time limit of its own (a nested query does
//! not start the statement timeout: the limit is armed here, and the caller's put back).

use pgrx::prelude::*;

/// The statement that reads a custom metric (`storage.custom_metrics.sql`):
/// `SELECT pg_catalog.to_jsonb(q) FROM (<sql>) AS q`, one JSON object per row; `42601` unless
/// `sql` is exactly one query the wrapper keeps whole (nothing that closes the parenthesis and
/// adds clauses, statements or set operations). Checked when the metric is written and again
/// before each run: the SQL runs exactly as verified.
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn _custom_metric_statement(sql: &str) -> String {
    statement(sql)
}

fn statement(sql: &str) -> String {
    use crate::migrations::{is, list};
    let statement = format!("SELECT pg_catalog.to_jsonb(q) FROM ({sql}\n) AS q");
    let refuse = |why: &str| -> ! {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            "a custom metric's sql must be one query",
            Some(format!("{why}; the sql was: {sql}")),
            Some("Write one SELECT returning a column named value and one column per label, e.g. SELECT queue, count(*) AS value FROM jobs GROUP BY queue.".into()),
        )
    };
    let c = std::ffi::CString::new(statement.as_str())
        .unwrap_or_else(|_| refuse("it contains a NUL byte"));
    // SAFETY: the parser's result lives in the current memory context for this call; a syntax
    // error is PostgreSQL's own, raised through pgrx's guarded call
    unsafe {
        let raws = list::<pg_sys::RawStmt>(pg_sys::pg_parse_query(c.as_ptr()));
        if raws.len() != 1 {
            refuse(&format!("it makes {} statements", raws.len()));
        }
        let node = (*raws[0]).stmt;
        if !is(node, pg_sys::NodeTag::T_SelectStmt) {
            refuse("it is not a query");
        }
        let s = node as *mut pg_sys::SelectStmt;
        let from = list::<pg_sys::Node>((*s).fromClause);
        let whole = (*s).op == pg_sys::SetOperation::SETOP_NONE
            && list::<pg_sys::Node>((*s).targetList).len() == 1
            && from.len() == 1
            && is(from[0], pg_sys::NodeTag::T_RangeSubselect)
            && !(*(from[0] as *mut pg_sys::RangeSubselect)).lateral
            && (*s).distinctClause.is_null()
            && (*s).intoClause.is_null()
            && (*s).whereClause.is_null()
            && (*s).groupClause.is_null()
            && (*s).havingClause.is_null()
            && (*s).windowClause.is_null()
            && (*s).valuesLists.is_null()
            && (*s).sortClause.is_null()
            && (*s).limitOffset.is_null()
            && (*s).limitCount.is_null()
            && (*s).lockingClause.is_null()
            && (*s).withClause.is_null();
        if !whole {
            refuse("it adds clauses to the query that reads it");
        }
    }
    statement
}

/// `STATEMENT_TIMEOUT` of `enum TimeoutId` (utils/timeout.h), whose functions pgrx does not bind.
const STATEMENT_TIMEOUT: u32 = 3;

mod raw {
    use pgrx::pg_sys::TimestampTz;
    unsafe extern "C-unwind" {
        pub(super) fn enable_timeout_at(id: u32, fin_time: TimestampTz);
        pub(super) fn disable_timeout(id: u32, keep_indicator: bool);
        pub(super) fn get_timeout_active(id: u32) -> bool;
        pub(super) fn get_timeout_finish_time(id: u32) -> TimestampTz;
    }
}

// Each call through pgrx's guard (an elog(ERROR) in them becomes a Rust panic, never a longjmp
// over Rust frames), with nothing to drop on the stack.
unsafe fn enable_timeout_at(id: u32, fin_time: pg_sys::TimestampTz) {
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| raw::enable_timeout_at(id, fin_time)) }
}
unsafe fn disable_timeout(id: u32, keep_indicator: bool) {
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| raw::disable_timeout(id, keep_indicator)) }
}
unsafe fn get_timeout_active(id: u32) -> bool {
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| raw::get_timeout_active(id)) }
}
unsafe fn get_timeout_finish_time(id: u32) -> pg_sys::TimestampTz {
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| raw::get_timeout_finish_time(id)) }
}

/// The rows of a custom metric's query (checked by [`statement`]) as JSON objects, at most
/// `max_rows + 1` of them, within `timeout_ms`: past it `54000` with the limit named (and the
/// caller's statement timeout put back as it was). A cancel that is not this limit's is the
/// caller's own, raised as it came.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn _custom_metric_rows(sql: &str, max_rows: i32, timeout_ms: i32) -> Vec<pgrx::JsonB> {
    let query = format!(
        "SELECT j FROM ({} LIMIT {}) AS r(j)",
        statement(sql),
        i64::from(max_rows.max(0)) + 1
    );
    // SAFETY: the timeout functions of the backend's timeout module, on its own thread; the
    // caller's timer is read before and put back after, on every path
    unsafe {
        let outer = get_timeout_active(STATEMENT_TIMEOUT)
            .then(|| get_timeout_finish_time(STATEMENT_TIMEOUT));
        let deadline = pg_sys::GetCurrentTimestamp() + i64::from(timeout_ms.max(1)) * 1000;
        let ours = outer.is_none_or(|finish| finish > deadline);
        if ours {
            enable_timeout_at(STATEMENT_TIMEOUT, deadline);
        }
        let restore = move || {
            if ours {
                disable_timeout(STATEMENT_TIMEOUT, false);
                if let Some(finish) = outer {
                    enable_timeout_at(STATEMENT_TIMEOUT, finish);
                }
            }
        };
        PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
            let rows = Spi::connect(|client| {
                client
                    .select(&query, None, &[])?
                    .map(|row| row.get::<pgrx::JsonB>(1))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_else(|e| crate::error::spi_failed(e));
            restore();
            rows.into_iter().flatten().collect()
        }))
        .catch_others(|e| {
            // ProcessInterrupts has read (and reset) the timer's indicator to word its message:
            // the cancel is this limit's when it came past the deadline this call armed
            let fired = ours
                && matches!(&e, pg_sys::panic::CaughtError::PostgresError(r)
                    | pg_sys::panic::CaughtError::ErrorReport(r)
                    if r.sql_error_code() == PgSqlErrorCode::ERRCODE_QUERY_CANCELED)
                && pg_sys::GetCurrentTimestamp() >= deadline;
            restore();
            if fired {
                // a limit of its own (54000), not a cancel (57014, which PL/pgSQL's OTHERS does
                // not catch): the collector turns it into the metric's failure
                crate::error::raise(
                    PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                    format!("a custom metric's query ran over {timeout_ms} ms"),
                    None,
                    Some("Make the query cheaper (an index, a smaller scan), or keep a summary the query reads.".into()),
                )
            }
            e.rethrow()
        })
        .execute()
    }
}
