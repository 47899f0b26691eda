//! Roles capability: application roles, tenant isolation and the security checks are SQL in
//! `sql/roles.sql`; this reads the server certificate's expiry for `storage.ssl_status()`
//! (`pg_storage_core::cert`).

use crate::error::raise;
use pgrx::prelude::*;

/// Internal: when the first certificate of a PEM text stops being valid.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _certificate_not_after(pem: &str) -> TimestampWithTimeZone {
    if pem.len() > 1 << 20 {
        raise(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            "a certificate file over 1 MB is not read",
            None,
            Some("ssl_cert_file should hold the server's certificate (and its chain).".into()),
        );
    }
    let seconds = pg_storage_core::cert::not_after(pem).unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "the text is not a PEM certificate",
            Some(e),
            Some("ssl_cert_file should hold the server's certificate in PEM form.".into()),
        )
    });
    // PostgreSQL's epoch is 2000-01-01; TimestampTz counts microseconds from it
    const PG_EPOCH_SECONDS: i64 = 946_684_800;
    let micros = (seconds - PG_EPOCH_SECONDS).saturating_mul(1_000_000);
    TimestampWithTimeZone::try_from(micros).unwrap_or_else(|_| {
        raise(
            PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
            "the certificate's expiry is out of range",
            None,
            None,
        )
    })
}
