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
    use crate::migrations::{check_wrapper, is};
    let statement = format!("SELECT pg_catalog.to_jsonb(q) FROM ({sql}\n) AS q");
    let refuse = |why: &str| -> ! {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            "a custom metric's sql must be one query",
            Some(format!("{why}; the sql was: {sql}")),
            Some("Write one SELECT returning a column named value and one column per label, e.g. SELECT queue, count(*) AS value FROM jobs GROUP BY queue.".into()),
        )
    };
    let checked = check_wrapper(&statement, "`SELECT to_jsonb(q) FROM (…) AS q`", |from| {
        // SAFETY: a parse node of the list the parser made for this call
        from.len() == 1
            && is(from[0], pg_sys::NodeTag::T_RangeSubselect)
            && !unsafe { (*(from[0] as *mut pg_sys::RangeSubselect)).lateral }
    });
    if let Err(why) = checked {
        refuse(&why);
    }
    statement
}

/// Largest text of all of a metric's rows: past it, the metric fails (an exposition of many
/// huge labels would otherwise outgrow what one text can hold).
const MAX_BYTES: usize = 1024 * 1024;

/// The rows of a custom metric's query (checked by [`statement`]) as the text of JSON objects, at
/// most `max_rows + 1` of them, run as `run_as` under SECURITY_RESTRICTED_OPERATION (what it
/// reaches — a policy, a cast, a function — cannot take back the session's role, a superuser's
/// when the snapshot job collects) with `search_path = pg_catalog, pg_temp`, within `timeout_ms`
/// (`54000` past it, and past MAX_BYTES of rows; the caller's statement timeout put back). A
/// cancel that is not this limit's is raised as it came.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn _custom_metric_rows(
    sql: &str,
    run_as: pg_sys::Oid,
    max_rows: i32,
    timeout_ms: i32,
) -> Vec<String> {
    let query = format!(
        "SELECT j::pg_catalog.text FROM ({} LIMIT {}) AS r(j)",
        statement(sql),
        i64::from(max_rows.max(0)) + 1
    );
    let limit = timeout_ms.max(1);
    let over = |what: String| -> ! {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("a custom metric's query {what}"),
            None,
            Some("Make the query cheaper (an index, a smaller scan, fewer or shorter labels), or keep a summary the query reads.".into()),
        )
    };
    let timer = crate::timer::arm(limit);
    // (an error leaves the role switched: the subtransaction the caller rolls back on it
    // restores the role, the context and the search_path, as for a SECURITY DEFINER function)
    let result = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
        Ok::<_, Box<pg_sys::panic::CaughtError>>(crate::privilege::as_restricted(run_as, || {
            Spi::connect(|client| {
                client
                    .select(&query, None, &[])?
                    .map(|row| row.get::<String>(1))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_else(|e| crate::error::spi_failed(e))
        }))
    }))
    .catch_others(|e| Err(Box::new(e)))
    .execute();
    // the limit reached, whatever ended the query: its failure (and its cancel withdrawn)
    if timer.disarm() {
        over(format!("ran over {limit} ms"));
    }
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => e.rethrow(),
    };
    let rows: Vec<String> = rows.into_iter().flatten().collect();
    if rows.iter().map(String::len).sum::<usize>() > MAX_BYTES {
        over(format!("gave over {} KiB of rows", MAX_BYTES / 1024));
    }
    rows
}
