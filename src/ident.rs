//! Identifier quoting for the SQL the extension builds: every name goes through PostgreSQL's own
//! `quote_identifier`; values go as `$n` parameters, never into the text.

use pgrx::pg_sys;
use std::ffi::{CStr, CString};

/// `name` quoted as PostgreSQL would (only when needed).
pub(crate) fn quote(name: &str) -> String {
    let c = CString::new(name).unwrap_or_else(|_| {
        crate::error::raise(
            pgrx::PgSqlErrorCode::ERRCODE_INVALID_NAME,
            "identifier contains a NUL byte",
            None,
            None,
        )
    });
    // SAFETY: quote_identifier returns its argument or a palloc'd quoted copy.
    unsafe { CStr::from_ptr(pg_sys::quote_identifier(c.as_ptr())) }
        .to_string_lossy()
        .into_owned()
}

/// `schema.relation`, both quoted, for a relation OID.
pub(crate) fn qualified(relid: pg_sys::Oid) -> String {
    // SAFETY: syscache lookups; NULL when the relation is gone.
    unsafe {
        let rel = pg_sys::get_rel_name(relid);
        if rel.is_null() {
            crate::error::raise(
                pgrx::PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                format!("relation with OID {} does not exist", relid.to_u32()),
                None,
                None,
            );
        }
        let nsp = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid));
        format!(
            "{}.{}",
            quote(&CStr::from_ptr(nsp).to_string_lossy()),
            quote(&CStr::from_ptr(rel).to_string_lossy())
        )
    }
}

/// The relation's kind (`b'r'`, `b'p'`, `b'v'`, ...; 0 when it does not exist).
pub(crate) fn relkind(relid: pg_sys::Oid) -> u8 {
    // SAFETY: a syscache lookup.
    unsafe { pg_sys::get_rel_relkind(relid) as u8 }
}

/// The name of the schema of `relid` ('' when it has none).
pub(crate) fn namespace_of(relid: pg_sys::Oid) -> String {
    // SAFETY: syscache lookups; a missing namespace gives NULL.
    unsafe {
        let p = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid));
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// The quoted name of `relid`, a user's permanent table: 42809 when it is not a plain or
/// partitioned table, 0A000 for a temporary table (other sessions and the scheduled jobs cannot
/// see it) and for the tables of the extension and of the system catalogs. `what` names the
/// function in the hint.
pub(crate) fn require_table(relid: pg_sys::Oid, what: &str) -> String {
    let table = qualified(relid);
    if !matches!(relkind(relid), b'r' | b'p') {
        crate::error::raise(
            pgrx::PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!("{table} is not a table"),
            None,
            Some(format!("{what} works on plain and partitioned tables.")),
        );
    }
    // SAFETY: a syscache lookup.
    if unsafe { pg_sys::get_rel_persistence(relid) } as u8 == pg_sys::RELPERSISTENCE_TEMP {
        crate::error::raise(
            pgrx::PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("{table} is a temporary table"),
            Some("A temporary table lives only in its own session; other sessions and the scheduled jobs cannot see it.".into()),
            Some(format!("{what} works on permanent tables.")),
        );
    }
    if matches!(
        namespace_of(relid).as_str(),
        "audit" | "storage" | "pg_catalog" | "information_schema" | "pg_toast"
    ) {
        crate::error::raise(
            pgrx::PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("{what} does not work on {table}"),
            Some("Tables of pg_storage_ext and of the system catalogs are managed by the extension or by PostgreSQL.".into()),
            Some("Use it on your own tables.".into()),
        );
    }
    table
}

/// A string literal for the few places SQL takes no parameters (trigger arguments).
pub(crate) fn literal(value: &str) -> String {
    let c = CString::new(value).unwrap_or_else(|_| {
        crate::error::raise(
            pgrx::PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "value contains a NUL byte",
            None,
            None,
        )
    });
    // SAFETY: quote_literal_cstr returns a palloc'd quoted copy.
    unsafe { CStr::from_ptr(pg_sys::quote_literal_cstr(c.as_ptr())) }
        .to_string_lossy()
        .into_owned()
}

/// An argument that must not be NULL: a NULL raises 22004 naming its position and type.
///
/// # Safety
/// The argument must be of the SQL type `T` reads.
unsafe fn required<'fcx, T: pgrx::FromDatum>(
    arg: pgrx::callconv::Arg<'_, 'fcx>,
    sql_type: &str,
) -> T {
    let index = arg.index();
    // SAFETY: the caller guarantees the argument's type.
    unsafe { arg.unbox_arg_using_from_datum() }.unwrap_or_else(|| {
        crate::error::raise(
            pgrx::PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{sql_type} argument {} must not be null", index + 1),
            None,
            None,
        )
    })
}

/// A `name` argument (NameData: up to 63 bytes, NUL-terminated).
pub(crate) struct Name(pub String);

impl pgrx::FromDatum for Name {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        // SAFETY: a non-null name datum points to a NUL-terminated NameData.
        (!is_null).then(|| {
            Name(
                unsafe { CStr::from_ptr(datum.cast_mut_ptr()) }
                    .to_string_lossy()
                    .into_owned(),
            )
        })
    }
}

unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for Name {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        // SAFETY: the argument is declared as name.
        unsafe { required(arg, "name") }
    }
}

pgrx::impl_sql_translatable!(Name, "name");

/// A `regclass` argument as a bare OID: unlike pgrx's `PgRelation` it keeps no relation open,
/// so the function may ALTER the table.
#[derive(Clone, Copy)]
pub(crate) struct Regclass(pub pg_sys::Oid);

impl pgrx::FromDatum for Regclass {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        (!is_null).then(|| Regclass(pg_sys::Oid::from(datum.value() as u32)))
    }
}

unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for Regclass {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        // SAFETY: the argument is declared as regclass.
        unsafe { required(arg, "regclass") }
    }
}

pgrx::impl_sql_translatable!(Regclass, "regclass");

/// A `cstring` argument's text as UTF-8. The query side of search takes its text this way, not as
/// `&str`, whose conversion would fail inside pgrx (an XX000 naming Rust) on bytes that are not
/// UTF-8, which a SQL_ASCII database lets through: here they are `22021` with the way out.
pub(crate) fn utf8_arg<'a>(arg: &'a std::ffi::CStr, what: &str) -> &'a str {
    std::str::from_utf8(arg.to_bytes()).unwrap_or_else(|e| {
        crate::error::raise(
            pgrx::PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            format!("{what}: the text is not valid UTF-8"),
            Some(format!(
                "Byte {} of the argument starts no UTF-8 character.",
                e.valid_up_to() + 1
            )),
            Some("Search text in a UTF8 database (CREATE DATABASE … ENCODING 'UTF8').".into()),
        )
    })
}
