//! The C entry points of the extension's trigger functions. pgrx's `#[pg_trigger]` wrapper turns
//! a call that is not a trigger call (`SELECT audit._capture()`) into a Rust panic, an XX000 with
//! a backtrace; these refuse it with 39P01 and run the function otherwise. The SQL declarations
//! (`RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', '<symbol>'`) are in the capability's
//! `sql/*.sql`, with the symbol names the frozen 0.1.0 script names.

use crate::error::raise;
use pgrx::heap_tuple::PgHeapTuple;
use pgrx::pg_sys;
use pgrx::trigger_support::PgTrigger;
use pgrx::{AllocatedByPostgres, PgSqlErrorCode};
use std::convert::Infallible;

/// A trigger function's body: the trigger call, and the row to return (None: NULL).
pub(crate) type Body =
    for<'a> fn(
        &'a PgTrigger<'a>,
    ) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, Infallible>;

/// Runs `body` for a trigger call of the function `name`; any other call is a 39P01 error.
pub(crate) fn call(fcinfo: pg_sys::FunctionCallInfo, name: &str, body: Body) -> pg_sys::Datum {
    // SAFETY: PostgreSQL passes a valid fcinfo; called_as_trigger reads its context node.
    let is_trigger =
        !fcinfo.is_null() && unsafe { pgrx::trigger_support::called_as_trigger(fcinfo) };
    if !is_trigger {
        raise(
            PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            format!("{name}() can only be called as a trigger"),
            Some("It was called as a plain function.".into()),
            Some(
                "pg_storage_ext creates the triggers that use it; do not call it directly.".into(),
            ),
        );
    }
    // SAFETY: checked above that fcinfo is a trigger call.
    let trigger = unsafe { PgTrigger::from_fcinfo(&*fcinfo) }
        .unwrap_or_else(|_| crate::error::internal("a trigger call without trigger data"));
    // The trigger protocol returns a null pointer, not a NULL flag, for "no row".
    let result = body(&trigger);
    match result {
        Ok(Some(row)) => row.into_trigger_datum().unwrap_or(pg_sys::Datum::from(0)),
        Ok(None) => pg_sys::Datum::from(0),
        Err(never) => match never {},
    }
}

/// A trigger's arguments (`CREATE TRIGGER … EXECUTE FUNCTION f('a', 'b')`) as strings: the one
/// way the extension's trigger functions read them.
pub(crate) fn args(trigger: &pg_sys::Trigger) -> Vec<String> {
    (0..trigger.tgnargs.max(0) as usize)
        .map(|i| {
            // SAFETY: PostgreSQL gives tgnargs NUL-terminated strings in tgargs.
            unsafe { std::ffi::CStr::from_ptr(*trigger.tgargs.add(i)) }
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Declares the exported C function `$symbol` (and its `$finfo` record, version 1) running
/// `$body` through [`call`]; `$name` is the SQL name for errors.
macro_rules! trigger_entry {
    ($symbol:ident, $finfo:ident, $name:literal, $body:path) => {
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
            const V1: ::pgrx::pg_sys::Pg_finfo_record =
                ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        #[unsafe(no_mangle)]
        #[doc(hidden)]
        /// # Safety
        /// Called by PostgreSQL's function manager with a valid `fcinfo`.
        pub unsafe extern "C-unwind" fn $symbol(
            fcinfo: ::pgrx::pg_sys::FunctionCallInfo,
        ) -> ::pgrx::pg_sys::Datum {
            ::pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(move || {
                $crate::triggers::call(fcinfo, $name, $body)
            })
        }
    };
}
pub(crate) use trigger_entry;
