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

/// The tenant setting's text, read straight from the GUC table; None when unset or empty.
fn tenant_setting(setting: &core::ffi::CStr) -> Option<&'static [u8]> {
    // SAFETY: GetConfigOption returns NULL or a pointer into the GUC table, valid until the
    // setting next changes; the caller reads it right away. restrict_privileged: a setting the
    // caller may not read raises PostgreSQL's own error, as current_setting() does.
    let value = unsafe { pg_sys::GetConfigOption(setting.as_ptr(), true, true) };
    if value.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string from the GUC table
    let text = unsafe { core::ffi::CStr::from_ptr(value) }.to_bytes();
    (!text.is_empty()).then_some(text)
}

fn tenant_number<T: std::str::FromStr>(setting: &core::ffi::CStr, type_name: &str) -> Option<T> {
    let text = tenant_setting(setting)?;
    match std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.trim().parse::<T>().ok())
    {
        Some(v) => Some(v),
        None => raise(
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            format!(
                "invalid input syntax for type {type_name}: \"{}\"",
                String::from_utf8_lossy(text)
            ),
            Some(format!(
                "The tenant setting {} holds it.",
                setting.to_string_lossy()
            )),
            Some(
                "Set the tenant to a value of the tenant column, e.g. SET app.tenant_id = '42'."
                    .into(),
            ),
        ),
    }
}

/// Internal: the tenant setting as an integer, for the tenant policies of an integer column:
/// NULL when unset or empty (no row matches), read once per call from the GUC table with no
/// text round trip through NULLIF and a cast (what row security costs per statement).
#[pg_extern(stable, strict, parallel_safe)]
pub(crate) fn _tenant_int4(setting: &core::ffi::CStr) -> Option<i32> {
    tenant_number(setting, "integer")
}

/// Internal: the tenant setting as a bigint, as `_tenant_int4` for bigint columns.
#[pg_extern(stable, strict, parallel_safe)]
pub(crate) fn _tenant_int8(setting: &core::ffi::CStr) -> Option<i64> {
    tenant_number(setting, "bigint")
}
