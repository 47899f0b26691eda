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

/// Nothing on a primary; on a hot standby, the 25006 error `storage._require_primary` raises for
/// the SQL functions (same message and detail; the hint from `storage._primary_hint()`, which
/// names the primary) for the writing function `what`.
pub(crate) fn require_primary(what: &str) {
    // SAFETY: reads the shared recovery state.
    if unsafe { pgrx::pg_sys::RecoveryInProgress() } {
        let hint = read_one::<String>("SELECT storage._primary_hint()")
            .ok()
            .flatten()
            .unwrap_or_else(|| "Run it on the primary server.".into());
        raise(
            PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            format!("{what} cannot run on a hot standby"),
            Some(
                "This server replays its primary's WAL and accepts no writes; what the function \
                 would change reaches it from the primary."
                    .into(),
            ),
            Some(hint),
        );
    }
}

/// The first column of the first row of a read-only query. pgrx's `Spi::get_one` goes through
/// its writing path, which takes a transaction id: a hot standby has none to give.
pub(crate) fn read_one<T: pgrx::FromDatum + pgrx::IntoDatum>(
    sql: &str,
) -> Result<Option<T>, pgrx::spi::Error> {
    pgrx::Spi::connect(|client| client.select(sql, Some(1), &[])?.first().get_one::<T>())
}
