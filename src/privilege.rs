//! Running a piece of work as the extension's owner: what `SECURITY DEFINER SET search_path`
//! does for a SQL function, done from Rust so that the caller's identity can be read first.
//!
//! A SECURITY DEFINER function cannot tell who called it (`current_user` is already the owner),
//! but the audit capture must record the statement's `current_user` and `audit.enable` must check
//! that the caller owns the table. So those functions are ordinary (SECURITY INVOKER) C
//! functions: they read `GetUserId()`, check what they must, and then call [`as_owner`] for the
//! part that needs the owner's privileges (writing the log, creating triggers).
//!
//! Review notes (privilege escalation): inside [`as_owner`] the `search_path` is
//! `pg_catalog, pg_temp`, every object of the extension is schema-qualified, and user data
//! only reaches SQL as `$n` parameters. User-defined code (casts to json, output functions)
//! runs before the switch, with the caller's own privileges.

use crate::error::raise;
use pgrx::pg_sys;
use pgrx::PgSqlErrorCode;

/// The role that owns `audit.log`, i.e. the role that ran `CREATE EXTENSION pg_storage_ext`.
pub(crate) fn extension_owner() -> pg_sys::Oid {
    // SAFETY: syscache lookups by name and OID; the tuple is released before returning.
    unsafe {
        let nsp = pg_sys::get_namespace_oid(c"audit".as_ptr(), true);
        let relid = if nsp == pg_sys::InvalidOid {
            pg_sys::InvalidOid
        } else {
            pg_sys::get_relname_relid(c"log".as_ptr(), nsp)
        };
        if relid == pg_sys::InvalidOid {
            raise(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                "audit.log does not exist",
                Some("A function of pg_storage_ext ran without its extension's objects.".into()),
                Some("Reinstall the extension: CREATE EXTENSION pg_storage_ext.".into()),
            );
        }
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::RELOID as i32,
            pg_sys::Datum::from(relid),
        );
        if tuple.is_null() {
            crate::error::internal("audit.log vanished from the relation cache");
        }
        let owner = (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_class>(tuple)).relowner;
        pg_sys::ReleaseSysCache(tuple);
        owner
    }
}

/// The role the current statement runs as (`current_user`).
pub(crate) fn current_user() -> pg_sys::Oid {
    // SAFETY: reads a backend global.
    unsafe { pg_sys::GetUserId() }
}

/// True when `role` owns the relation (or is a member of its owner, or a superuser).
pub(crate) fn owns_relation(role: pg_sys::Oid, relid: pg_sys::Oid) -> bool {
    // SAFETY: a syscache-backed privilege check.
    unsafe { pg_sys::object_ownercheck(pg_sys::RelationRelationId, relid, role) }
}

/// Runs `work` as the extension owner with `search_path = pg_catalog, pg_temp`, then restores
/// the caller's role, security context and settings. On an error PostgreSQL's (sub)transaction
/// abort restores them, as it does for a SECURITY DEFINER function.
pub(crate) fn as_owner<R>(work: impl FnOnce() -> R) -> R {
    let owner = extension_owner();
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0;
    // SAFETY: the same calls fmgr_security_definer makes around a SECURITY DEFINER function.
    let nest = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        );
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        nest
    };
    let result = work();
    // SAFETY: undoes exactly what was done above, in reverse order.
    unsafe {
        pg_sys::AtEOXact_GUC(true, nest);
        pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
    }
    result
}
