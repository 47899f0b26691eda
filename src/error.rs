//! The one way the extension reports an error: SQLSTATE, message, detail and hint.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Raises an ERROR. Never returns: PostgreSQL unwinds to the caller's transaction.
#[track_caller]
pub fn raise(
    code: PgSqlErrorCode,
    message: impl Into<String>,
    detail: Option<String>,
    hint: Option<String>,
) -> ! {
    let mut report = ErrorReport::new(code, message.into(), "pg_storage_ext");
    if let Some(d) = detail {
        report = report.set_detail(d);
    }
    if let Some(h) = hint {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// Raises XX000 for a broken invariant (a PostgreSQL function returning NULL where it cannot, a
/// column missing from a descriptor just read): an error report, never a Rust panic.
#[track_caller]
pub fn internal(what: &str) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("pg_storage_ext internal error: {what}"),
        None,
        Some("Please report this with the statement that caused it.".into()),
    )
}

/// Raises XX000 for an SPI call that failed without a PostgreSQL error (a protocol misuse).
#[track_caller]
pub fn spi_failed(e: pgrx::spi::SpiError) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("SPI failed: {e}"),
        None,
        None,
    )
}
