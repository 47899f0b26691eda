//! Audit capability: per-statement capture in Rust ([`capture`]); the log, its configuration,
//! history and retention, and the installing and removing of capture triggers are SQL in
//! `sql/audit.sql`. `audit.enable` / `audit.disable` here are the entry points that check the
//! caller, switch to the extension's owner and mark the work as the extension's own before
//! calling that SQL. Option parsing and column arithmetic live in `pg_storage_core::audit`.

pub(crate) mod capture;
mod feed;

use crate::error::{raise, spi_failed};
use crate::ident::{require_table, Regclass};
use crate::privilege::{as_owner, current_user, owns_relation};
use pgrx::pg_sys;
use pgrx::prelude::*;

#[pg_schema]
mod audit {
    use crate::ident::Regclass;
    use pgrx::pg_sys;
    use pgrx::prelude::*;

    /// Starts (or updates the options of) row-change capture on a table.
    #[pg_extern(volatile)]
    #[search_path(pg_catalog, pg_temp)]
    fn enable(
        target: Regclass,
        exclude_columns: default!(Option<Vec<Option<String>>>, "'{}'"),
        capture_query: default!(Option<bool>, false),
    ) {
        super::enable(target, exclude_columns, capture_query.unwrap_or(false));
    }

    /// Stops capture on a table; its history stays in audit.log.
    #[pg_extern(volatile)]
    #[search_path(pg_catalog, pg_temp)]
    fn disable(target: Regclass) {
        super::disable(target);
    }

    /// Internal: gives every partition of an audited partitioned table its capture triggers.
    #[pg_extern(volatile)]
    #[search_path(pg_catalog, pg_temp)]
    fn _sync_partitions(root: Regclass) -> i32 {
        super::sync_partitions(root.0)
    }

    /// Internal: moves the capture of `old` to `new` (storage.convert_to_partitioned and
    /// undo_partitioning, before the swap): same options, the history of `old` stays the history
    /// of `new`, and a DDL row with `command` as its tag records it. False when `old` is not
    /// audited.
    #[pg_extern(volatile)]
    #[search_path(pg_catalog, pg_temp)]
    fn _carry_capture(old: Regclass, new: Regclass, command: &str) -> bool {
        super::carry(old.0, new.0, command)
    }

    /// Internal: whether the extension itself is changing capture triggers right now (its DDL
    /// event trigger then logs nothing: the statement that asked for it is what gets checked).
    #[pg_extern(volatile)]
    fn _configuring_capture() -> bool {
        super::CONFIGURING.with(|c| c.get() > 0)
    }

    /// Internal: the pid of this database's change feed notifier, started when none runs (NULL:
    /// no background worker slot free).
    #[pg_extern(volatile)]
    #[search_path(pg_catalog, pg_temp)]
    fn _feed_notifier() -> Option<i32> {
        super::feed::notifier()
    }

    /// Internal: runs `command`, the ATTACH PARTITION of `child` by the extension's partition
    /// maintenance after it moved the child's rows in from the default partition, with `child`
    /// marked as relocated: the DDL event trigger does not log those rows as attached
    /// ([`_relocated`]). Not executable by PUBLIC.
    #[pg_extern(volatile)]
    #[search_path(pg_catalog, pg_temp)]
    fn _attach_moved(command: &str, child: Regclass) {
        super::capture::relocating(&[child.0], || {
            Spi::run(command).unwrap_or_else(|e| crate::error::spi_failed(e))
        })
    }

    /// Internal: whether the extension is relocating rows of `rel` right now (its partition
    /// maintenance; set only by its own code, never from SQL).
    #[pg_extern(volatile)]
    #[search_path(pg_catalog, pg_temp)]
    fn _relocated(rel: Regclass) -> bool {
        super::capture::is_moving(rel.0)
    }

    /// Internal: one change-feed action for the calling role (audit.create_feed, read_feed,
    /// ack_feed, drop_feed call it): run as the extension owner, who alone writes the feeds,
    /// with the caller named.
    #[pg_extern(volatile)]
    #[search_path(pg_catalog, pg_temp)]
    #[allow(clippy::type_complexity)]
    fn _feed_gate(
        action: Option<&str>,
        name: Option<&str>,
        arg: Option<i64>,
        tables: Option<Vec<Option<pg_sys::Oid>>>,
        start: Option<&str>,
    ) -> TableIterator<
        'static,
        (
            name!(txid, i64),
            name!(position, i64),
            name!(committed_at, pgrx::datum::TimestampWithTimeZone),
        ),
    > {
        TableIterator::new(super::feed::act(action, name, arg, tables, start))
    }

    /// Internal: the members of new_row whose values differ from old_row's, as jsonb `=`
    /// decides: an UPDATE's changed columns with their new values, as the log stores them.
    #[pg_extern(immutable, strict, parallel_safe)]
    fn _delta(
        old_row: crate::jsonb::datum::JsonbRef,
        new_row: crate::jsonb::datum::JsonbRef,
    ) -> crate::jsonb::datum::JsonbRaw {
        crate::jsonb::datum::JsonbRaw(super::capture::delta(&old_row, &new_row))
    }
}

/// Trigger `audit._capture()`: AFTER INSERT/UPDATE/DELETE/TRUNCATE FOR EACH STATEMENT, created
/// by audit.enable (declared in sql/audit.sql).
fn capture_trigger<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    capture::capture(trigger.trigger_data());
    Ok(None)
}
crate::triggers::trigger_entry!(
    _capture_wrapper,
    pg_finfo__capture_wrapper,
    "audit._capture",
    capture_trigger
);

/// Trigger `audit._tracked_changed()`: AFTER … FOR EACH STATEMENT on `audit._tracked`; capture
/// caches its configuration, so every change to it invalidates them in every backend.
fn tracked_changed_trigger<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    crate::cache::invalidate(trigger.trigger_data().tg_relation);
    Ok(None)
}
crate::triggers::trigger_entry!(
    _tracked_changed_wrapper,
    pg_finfo__tracked_changed_wrapper,
    "audit._tracked_changed",
    tracked_changed_trigger
);

/// Runs `work` with `rels` marked as relocated, not changed ([`capture::relocating`]). A Citus
/// table's rows change in its shards, on the workers, where this backend's mark does not reach:
/// its capture triggers are switched off for the relocation (Citus switches them in every shard)
/// and on again after it, as the extension's own configuration; the relocation holds the table
/// locked, so no other write passes unlogged, and an error rolls the switch back with the
/// transaction.
pub(crate) fn moving<R>(rels: &[pg_sys::Oid], work: impl FnOnce() -> R) -> R {
    capture::relocating(rels, || {
        let paused = citus_capture_triggers(rels);
        switch_capture(&paused, false);
        let result = work();
        switch_capture(&paused, true);
        result
    })
}

/// The enabled capture triggers of the Citus tables among `rels`.
fn citus_capture_triggers(rels: &[pg_sys::Oid]) -> Vec<(pg_sys::Oid, String)> {
    rels.iter()
        .filter(|r| crate::catalog::citus_kind(**r).is_some())
        .flat_map(|r| {
            as_owner(|| {
                Spi::connect(|client| {
                    client
                        .select(
                            "SELECT tgname::text FROM pg_catalog.pg_trigger \
                              WHERE tgrelid OPERATOR(pg_catalog.=) $1 AND tgenabled OPERATOR(pg_catalog.<>) 'D' \
                                AND tgfoid OPERATOR(pg_catalog.=) 'audit._capture()'::pg_catalog.regprocedure",
                            None,
                            &[(*r).into()],
                        )
                        .map(|rows| {
                            rows.filter_map(|row| row.get::<String>(1).ok().flatten())
                                .map(|t| (*r, t))
                                .collect::<Vec<_>>()
                        })
                })
                .unwrap_or_else(|e| spi_failed(e))
            })
        })
        .collect()
}

/// `ALTER TABLE ONLY … ENABLE|DISABLE TRIGGER` of these triggers, as the extension's own
/// configuration (Citus switches them in every shard, and wants to be told that is safe).
fn switch_capture(triggers: &[(pg_sys::Oid, String)], enable: bool) {
    let how = if enable { "ENABLE" } else { "DISABLE" };
    for (rel, trigger) in triggers {
        let sql = format!(
            "ALTER TABLE ONLY {} {how} TRIGGER {}",
            crate::ident::qualified(*rel),
            crate::ident::quote(trigger)
        );
        as_owner(|| {
            configuring(|| {
                crate::privilege::with_setting(c"citus.enable_unsafe_triggers", c"on", || {
                    Spi::connect_mut(|client| client.update(&sql, None, &[]).map(|_| ()))
                        .unwrap_or_else(|e| spi_failed(e))
                })
            })
        });
    }
}

/// Recomputes a column the extension maintains on `relid` (the search column) with `work`: when
/// the table is audited, the column is left out of its images first (capture configured again,
/// as the extension's own configuration), so the recompute logs nothing for a row where only
/// that column changed (capture leaves out an UPDATE whose image did not change), while anything
/// else the table's own triggers change or do meanwhile is captured as usual; one DDL-kind row
/// `tag` records that it happened. Without audit, just `work`.
pub(crate) fn derived_change<R>(relid: pg_sys::Oid, tag: &str, work: impl FnOnce() -> R) -> R {
    // a database whose extension SQL is older than this library's: as that version did
    if !crate::catalog::has_function("audit._exclude_derived(regclass)") {
        return work();
    }
    let audited = as_owner(|| {
        configuring(|| {
            Spi::connect_mut(|client| {
                client
                    .update(
                        "SELECT audit._exclude_derived($1)",
                        Some(1),
                        &[relid.into()],
                    )?
                    .first()
                    .get_one::<bool>()
            })
            .unwrap_or_else(|e| spi_failed(e))
            .unwrap_or(false)
        })
    });
    if !audited {
        return work();
    }
    let result = work();
    as_owner(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    "SELECT audit._log_ddl(c.oid, n.nspname, c.relname, $2) \
                       FROM pg_catalog.pg_class c \
                       JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
                      WHERE c.oid OPERATOR(pg_catalog.=) $1",
                    None,
                    &[relid.into(), tag.into()],
                )
                .map(|_| ())
        })
        .unwrap_or_else(|e| spi_failed(e))
    });
    result
}

thread_local! {
    /// Depth of the extension's own changes to capture triggers (enable, disable, partition
    /// sync), read by audit._configuring_capture(). Set only from our C code, never from SQL.
    static CONFIGURING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `work` marked as the extension's own capture configuration (see [`CONFIGURING`]).
fn configuring<R>(work: impl FnOnce() -> R) -> R {
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            CONFIGURING.with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
    CONFIGURING.with(|c| c.set(c.get() + 1));
    let _done = Done;
    work()
}

/// Checks that `relid` is a table the caller may audit; returns its quoted name.
fn check_target(relid: pg_sys::Oid, what: &str) -> String {
    let table = require_table(relid, what);
    if !owns_relation(current_user(), relid) {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be owner of table {table}"),
            Some(format!(
                "{what} changes the table's triggers, which only its owner may do."
            )),
            Some("Run it as the table's owner (or a member of the owning role).".into()),
        );
    }
    table
}

/// Runs one call of the capture configuration (PL/pgSQL in sql/audit.sql) as the extension's
/// owner, marked as the extension's own (see [`CONFIGURING`]); returns its one value. A database
/// whose extension SQL is older than the library (0.1.0's, before `ALTER EXTENSION … UPDATE`)
/// has no such functions: `what` is refused there with the way out (capture itself goes on).
fn configure<T: pgrx::FromDatum + pgrx::IntoDatum>(
    what: &str,
    sql: &str,
    args: &[pgrx::datum::DatumWithOid],
) -> Option<T> {
    if !crate::catalog::has_function("audit._enable_capture(regclass, text[], boolean)") {
        raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("{what} needs the extension's SQL objects of this library's version"),
            Some(format!(
                "The library is pg_storage_ext {}; this database's extension is still at an older version. Capture goes on meanwhile.",
                env!("CARGO_PKG_VERSION")
            )),
            Some("Run ALTER EXTENSION pg_storage_ext UPDATE.".into()),
        );
    }
    as_owner(|| {
        configuring(|| {
            Spi::connect_mut(|client| {
                client
                    .update(sql, None, args)
                    .unwrap_or_else(|e| spi_failed(e))
                    .first()
                    .get::<T>(1)
                    .ok()
                    .flatten()
            })
        })
    })
}

fn enable(target: Regclass, exclude: Option<Vec<Option<String>>>, capture_query: bool) {
    crate::catalog::require_primary("audit.enable");
    let relid = target.0;
    check_target(relid, "audit.enable");
    // The lock CREATE TRIGGER takes, so the columns checked are the columns captured.
    // SAFETY: locks a relation by OID; released at transaction end.
    unsafe {
        pg_sys::LockRelationOid(relid, pg_sys::ShareRowExclusiveLock as pg_sys::LOCKMODE);
    }
    configure::<String>(
        "audit.enable",
        "SELECT audit._enable_capture($1, $2, $3)::text",
        &[
            relid.into(),
            exclude.unwrap_or_default().into(),
            capture_query.into(),
        ],
    );
}

fn disable(target: Regclass) {
    crate::catalog::require_primary("audit.disable");
    let relid = target.0;
    let table = check_target(relid, "audit.disable");
    let removed = configure::<i32>(
        "audit.disable",
        "SELECT audit._disable_capture($1)",
        &[relid.into()],
    );
    if removed.unwrap_or(0) == 0 {
        pgrx::notice!("{table} is not audited; nothing to disable");
    }
}

/// `audit._sync_partitions`: on a database still at 0.1.0's SQL (its DDL event trigger calls
/// this on a user's CREATE TABLE … PARTITION OF) a warning, never a failed statement.
fn sync_partitions(root: pg_sys::Oid) -> i32 {
    if !crate::catalog::has_function("audit._sync_capture(regclass)") {
        pgrx::warning!(
            "pg_storage_ext: new partitions of audited tables get no capture triggers until ALTER EXTENSION pg_storage_ext UPDATE"
        );
        return 0;
    }
    configure::<i32>(
        "audit._sync_partitions",
        "SELECT audit._sync_capture($1)",
        &[root.into()],
    )
    .unwrap_or(0)
}

fn carry(old: pg_sys::Oid, new: pg_sys::Oid, command: &str) -> bool {
    check_target(old, "audit._carry_capture");
    check_target(new, "audit._carry_capture");
    configure::<bool>(
        "audit._carry_capture",
        "SELECT audit._carry($1, $2, $3)",
        &[old.into(), new.into(), command.into()],
    )
    .unwrap_or(false)
}

/// The C symbols of `audit._changed_columns`, which the frozen 0.1.0 script declares (so a
/// database can be created at 0.1.0 and updated) and 0.2.0 dropped with the normalized log:
/// a call is refused with the way out.
#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo__changed_columns_wrapper() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[unsafe(no_mangle)]
#[doc(hidden)]
/// # Safety
/// Called by PostgreSQL's function manager.
pub unsafe extern "C-unwind" fn _changed_columns_wrapper(
    _fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    pg_sys::submodules::panic::pgrx_extern_c_guard(|| {
        raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "audit._changed_columns was removed in pg_storage_ext 0.2.0",
            Some(
                "The log stores an UPDATE's changed columns with their values (audit._delta)."
                    .into(),
            ),
            Some("Run ALTER EXTENSION pg_storage_ext UPDATE.".into()),
        )
    })
}
