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
use std::ffi::CStr;

/// The role that owns `audit.log`, i.e. the role that ran `CREATE EXTENSION pg_storage_ext`.
pub(crate) fn extension_owner() -> pg_sys::Oid {
    // SAFETY: syscache lookups by name.
    let relid = unsafe {
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
        relid
    };
    relation_owner(relid)
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

/// Runs `work` as the extension owner with `search_path = pg_catalog, pg_temp` and the output
/// settings of values pinned (`extra_float_digits`, `IntervalStyle`, `bytea_output`), then
/// restores the caller's role, security context and settings. On an error PostgreSQL's (sub)transaction
/// abort restores them, as it does for a SECURITY DEFINER function.
pub(crate) fn as_owner<R>(work: impl FnOnce() -> R) -> R {
    as_owner_with(&[], work)
}

/// [`as_owner`] for writing the audit log's images: also `TimeZone` (UTC) and `DateStyle` (ISO)
/// pinned, so that a value is logged as the same text whoever writes it (a timestamptz key's
/// text and hash, a daterange's text read back later in another session's DateStyle).
pub(crate) fn as_log_writer<R>(work: impl FnOnce() -> R) -> R {
    as_owner_with(&[(c"TimeZone", c"UTC"), (c"DateStyle", c"ISO, MDY")], work)
}

fn as_owner_with<R>(extra: &[(&CStr, &CStr)], work: impl FnOnce() -> R) -> R {
    as_role(extension_owner(), false, || {
        // values printed the same whoever calls (the audit log's images): a caller's
        // extra_float_digits = -15 would print 2.71828 as 3 and hide the change. Set only when
        // the session's differ (the capture runs this for every statement it logs).
        for &(name, value) in [
            (c"extra_float_digits", c"1"),
            (c"IntervalStyle", c"postgres"),
            (c"bytea_output", c"hex"),
        ]
        .iter()
        .chain(extra)
        {
            // SAFETY: a built-in setting read by name; the string is PostgreSQL's, read at once
            let now = unsafe { pg_sys::GetConfigOption(name.as_ptr(), false, false) };
            if now.is_null() || !prints_as(name, unsafe { CStr::from_ptr(now) }, value) {
                set_option(name, value, pg_sys::GucAction::GUC_ACTION_SAVE);
            }
        }
        work()
    })
}

/// Whether a setting's value `now` prints values as `value` does: the same, or for `TimeZone`
/// another name of UTC (initdb's is often `Etc/UTC`), so the usual session changes nothing.
fn prints_as(name: &CStr, now: &CStr, value: &CStr) -> bool {
    const UTC: [&str; 10] = [
        "UTC",
        "Etc/UTC",
        "GMT",
        "Etc/GMT",
        "UCT",
        "Etc/UCT",
        "Universal",
        "Etc/Universal",
        "Zulu",
        "Etc/Zulu",
    ];
    now == value
        || (name == c"TimeZone"
            && value == c"UTC"
            && UTC
                .iter()
                .any(|z| now.to_bytes().eq_ignore_ascii_case(z.as_bytes())))
}

/// The owner of a relation.
pub(crate) fn relation_owner(relid: pg_sys::Oid) -> pg_sys::Oid {
    // SAFETY: a syscache lookup by OID; the tuple is released before returning.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::RELOID as i32,
            pg_sys::Datum::from(relid),
        );
        if tuple.is_null() {
            raise(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                format!("relation with OID {} does not exist", relid.to_u32()),
                None,
                None,
            );
        }
        let owner = (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_class>(tuple)).relowner;
        pg_sys::ReleaseSysCache(tuple);
        owner
    }
}

/// Runs `work` on a user's table as that table's owner under SECURITY_RESTRICTED_OPERATION,
/// as VACUUM, CLUSTER, CREATE INDEX and REFRESH MATERIALIZED VIEW do (CVE-2022-1552): the
/// table's triggers, defaults, CHECK constraints and index expressions then run with the owner's
/// rights, never with those of a superuser (a pg_cron job) who called us, and cannot change the
/// session (SET ROLE, temporary objects, ...). The caller must already have the owner's
/// privileges (be the owner, a member of it, or a superuser): this never adds rights.
pub(crate) fn as_table_owner<R>(relid: pg_sys::Oid, work: impl FnOnce() -> R) -> R {
    as_table_owner_with_path(relid, c"pg_catalog, pg_temp", work)
}

/// [`as_table_owner`] with `search_path` = `path` instead of the pinned one: a user's
/// expression bound with the caller's effective search_path.
pub(crate) fn as_table_owner_with_path<R>(
    relid: pg_sys::Oid,
    path: &CStr,
    work: impl FnOnce() -> R,
) -> R {
    let owner = relation_owner(relid);
    let caller = current_user();
    // SAFETY: a catalog-backed membership check.
    if !unsafe { pg_sys::has_privs_of_role(caller, owner) } {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "must have the privileges of the table's owner",
            Some(format!(
                "Work on relation {} runs as its owner, and the current role is not a member of it.",
                relid.to_u32()
            )),
            Some("Run it as the table's owner or as a superuser.".into()),
        );
    }
    as_role_with_path(owner, true, path, work)
}

/// Runs stored SQL that only reads (a custom metric's query) as `role` under
/// SECURITY_RESTRICTED_OPERATION with `search_path = pg_catalog, pg_temp`: whatever it reaches
/// (a table's policy, a type's cast, a function) runs with `role`'s rights and cannot take back
/// the session's role (`SET ROLE`, `RESET ROLE` and `set_config('role', …)` are refused inside).
/// Never adds rights: the caller must have `role`'s privileges, and `role` is never a superuser
/// (`42501` otherwise).
pub(crate) fn as_restricted<R>(role: pg_sys::Oid, work: impl FnOnce() -> R) -> R {
    let caller = current_user();
    // SAFETY: catalog-backed role checks
    let (member, superuser) = unsafe {
        (
            pg_sys::has_privs_of_role(caller, role),
            pg_sys::superuser_arg(role),
        )
    };
    if !member || superuser {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "stored SQL runs only as a role the caller has the privileges of, and never as a superuser",
            Some(format!(
                "Role {} was asked for by role {}.",
                role.to_u32(),
                caller.to_u32()
            )),
            Some("Custom metrics run as the endpoint's role (pg_storage_ext.http_role) or as the caller.".into()),
        );
    }
    as_role(role, true, work)
}

/// Runs `work` as `role` with `search_path` = `path`, then restores the role and the path: the
/// way a stored piece of SQL (a migration's statement, check or hook) runs as the role that
/// wrote it, inside work the extension does as its owner. Not restricted (a migration creates
/// objects), but SET ROLE and SET SESSION AUTHORIZATION are refused inside, as in a SECURITY
/// DEFINER function, so the statement cannot leave the role it was given.
pub(crate) fn as_author<R>(role: pg_sys::Oid, path: &CStr, work: impl FnOnce() -> R) -> R {
    as_role_with_path(role, false, path, work)
}

/// Runs `work` as `role` (optionally under SECURITY_RESTRICTED_OPERATION) with
/// `search_path = pg_catalog, pg_temp`: what fmgr does around a SECURITY DEFINER function.
fn as_role<R>(role: pg_sys::Oid, restricted: bool, work: impl FnOnce() -> R) -> R {
    as_role_with_path(role, restricted, c"pg_catalog, pg_temp", work)
}

fn as_role_with_path<R>(
    role: pg_sys::Oid,
    restricted: bool,
    path: &CStr,
    work: impl FnOnce() -> R,
) -> R {
    let saved = switch_role(role, restricted);
    let result = with_setting(c"search_path", path, work);
    saved.restore();
    result
}

/// The role and security context a [`switch_role`] replaced.
#[must_use = "the role is switched until restore()"]
pub(crate) struct SavedRole {
    user: pg_sys::Oid,
    context: i32,
}

impl SavedRole {
    /// Back to the role and security context before the switch. Not on an error: the
    /// (sub)transaction's abort restores them, as for a SECURITY DEFINER function.
    pub(crate) fn restore(self) {
        // SAFETY: undoes exactly what switch_role did
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) };
    }
}

/// Switches the current role to `role`, optionally under SECURITY_RESTRICTED_OPERATION: the
/// switch fmgr_security_definer and ExecRefreshMatView make (settings are the caller's to set).
pub(crate) fn switch_role(role: pg_sys::Oid, restricted: bool) -> SavedRole {
    let mut saved = SavedRole {
        user: pg_sys::InvalidOid,
        context: 0,
    };
    // SAFETY: the same calls fmgr_security_definer and ExecRefreshMatView make.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved.user, &mut saved.context);
        let mut context = saved.context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32;
        if restricted {
            context |= pg_sys::SECURITY_RESTRICTED_OPERATION as i32;
        }
        pg_sys::SetUserIdAndSecContext(role, context);
    }
    saved
}

/// Runs `work` with the setting `name` = `value`, restored afterwards (an error restores it with
/// the transaction): what a function's `SET name = value` clause does, and more: *every*
/// setting `work` changes, a session-level `SET` included, is undone when it returns (as at an
/// abort). Work done as another role (a table owner's trigger, a migration's statement) could
/// otherwise leave a `search_path` of its choosing to the code that called it, which may run
/// with more rights.
pub(crate) fn with_setting<R>(name: &CStr, value: &CStr, work: impl FnOnce() -> R) -> R {
    // SAFETY: the calls fmgr makes for a function's SET clause, undone in reverse order.
    let nest = unsafe { pg_sys::NewGUCNestLevel() };
    set_option(name, value, pg_sys::GucAction::GUC_ACTION_SAVE);
    let result = work();
    // SAFETY: pops the nest level pushed above, restoring every setting changed within it
    unsafe { pg_sys::AtEOXact_GUC(false, nest) };
    result
}

/// Sets `name` = `value` for the session, as a client's `SET` does: until the session changes it
/// (a top-level statement run as another role gets its search_path so).
pub(crate) fn set_for_session(name: &CStr, value: &CStr) {
    set_option(name, value, pg_sys::GucAction::GUC_ACTION_SET);
}

fn set_option(name: &CStr, value: &CStr, action: pg_sys::GucAction::Type) {
    // SAFETY: a user-settable option set from C strings; an invalid value is PostgreSQL's error
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            action,
            true,
            0,
            false,
        )
    };
}
