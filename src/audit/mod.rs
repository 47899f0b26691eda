//! Audit capability: `audit.enable` / `audit.disable` install and remove the statement-level
//! capture triggers ([`capture`]); the log, its configuration, history and retention are SQL in
//! `sql/audit.sql`. Option encoding and column arithmetic live in `pg_storage_core::audit`.

pub(crate) mod capture;
mod legacy;

use crate::error::{raise, spi_failed};
use crate::ident::{literal, qualified, quote, relkind, require_table, Regclass};
use crate::privilege::{as_owner, current_user, owns_relation};
use pg_storage_core::audit::{unknown_columns, Options, Scope};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

/// Transition table names of the capture triggers.
pub(crate) const NEW_TABLE: &str = "pg_storage_ext_new";
pub(crate) const OLD_TABLE: &str = "pg_storage_ext_old";

/// The capture triggers: name and the part of CREATE TRIGGER between the name and ON.
const TRIGGERS: [(&str, &str); 4] = [
    ("audit_capture_insert", "AFTER INSERT"),
    ("audit_capture_update", "AFTER UPDATE"),
    ("audit_capture_delete", "AFTER DELETE"),
    ("audit_capture_truncate", "AFTER TRUNCATE"),
];

fn referencing(event: &str) -> String {
    match event {
        "AFTER INSERT" => format!("REFERENCING NEW TABLE AS {NEW_TABLE}"),
        "AFTER UPDATE" => format!("REFERENCING OLD TABLE AS {OLD_TABLE} NEW TABLE AS {NEW_TABLE}"),
        "AFTER DELETE" => format!("REFERENCING OLD TABLE AS {OLD_TABLE}"),
        _ => String::new(),
    }
}

const CAPTURE_FN: &str = "'audit._capture()'::pg_catalog.regprocedure";

#[pg_schema]
mod audit {
    use crate::ident::Regclass;
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
        super::configuring(|| super::sync_from_config(root.0))
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

thread_local! {
    /// Relations whose row changes the extension is making as relocations, not changes (the
    /// rows moved out of a default partition into a new child): capture logs nothing for
    /// statements on them while [`moving`] runs. Set only from our C code, never from SQL.
    static MOVING: std::cell::RefCell<Vec<pg_sys::Oid>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `work` with `rels` marked as relocated (see [`MOVING`]); the mark is removed when `work`
/// returns or unwinds.
pub(crate) fn moving<R>(rels: &[pg_sys::Oid], work: impl FnOnce() -> R) -> R {
    struct Unmark(usize);
    impl Drop for Unmark {
        fn drop(&mut self) {
            MOVING.with(|m| m.borrow_mut().truncate(self.0));
        }
    }
    let _unmark = Unmark(MOVING.with(|m| {
        let mut m = m.borrow_mut();
        let before = m.len();
        m.extend_from_slice(rels);
        before
    }));
    work()
}

/// Whether statements on `relid` are relocations by the extension right now.
pub(crate) fn is_moving(relid: pg_sys::Oid) -> bool {
    MOVING.with(|m| m.borrow().contains(&relid))
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

/// Whether a relation of the extension exists: the library also serves a database whose SQL is
/// still an older version's, until `ALTER EXTENSION pg_storage_ext UPDATE` runs there.
fn has_relation(client: &SpiClient<'_>, name: &str) -> bool {
    client
        .select(
            "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
            None,
            &[name.into()],
        )
        .unwrap_or_else(|e| spi_failed(e))
        .first()
        .get::<bool>(1)
        .ok()
        .flatten()
        .unwrap_or(false)
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

/// Live column names of a table, in order.
fn columns(client: &SpiClient<'_>, relid: pg_sys::Oid) -> Vec<String> {
    client
        .select(
            "SELECT attname::text FROM pg_catalog.pg_attribute \
              WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            None,
            &[relid.into()],
        )
        .unwrap_or_else(|e| spi_failed(e))
        .filter_map(|row| row.get::<String>(1).ok().flatten())
        .collect()
}

fn enable(target: Regclass, exclude: Option<Vec<Option<String>>>, capture_query: bool) {
    crate::error::require_primary("audit.enable");
    let relid = target.0;
    let table = check_target(relid, "audit.enable");
    let exclude: Vec<String> = exclude
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            c.unwrap_or_else(|| {
                raise(
                    PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                    "exclude_columns must not contain NULL",
                    None,
                    Some("List column names, e.g. ARRAY['password_hash'].".into()),
                )
            })
        })
        .collect();
    // The lock CREATE TRIGGER takes, so the columns checked are the columns captured.
    // SAFETY: locks a relation by OID; released at transaction end.
    unsafe {
        pg_sys::LockRelationOid(relid, pg_sys::ShareRowExclusiveLock as pg_sys::LOCKMODE);
    }
    let options = Options::new(Scope::Table, capture_query, &exclude);
    as_owner(|| {
        configuring(|| {
            Spi::connect_mut(|client| {
                let cols = columns(client, relid);
                let unknown = unknown_columns(&options.exclude, &cols);
                if let Some(first) = unknown.first() {
                    raise(
                        PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
                        format!("column \"{first}\" of relation {table} does not exist"),
                        Some(format!(
                            "exclude_columns names {} unknown column(s): {}.",
                            unknown.len(),
                            unknown.join(", ")
                        )),
                        Some(format!("The table's columns are: {}.", cols.join(", "))),
                    );
                }
                client
                    .update("SELECT audit._ensure_log()", None, &[])
                    .unwrap_or_else(|e| spi_failed(e));
                install(client, relid, &options);
                client
                .update(
                    "INSERT INTO audit._tracked AS t (table_name, exclude_columns, capture_query, table_oids) \
                     VALUES ($1::pg_catalog.regclass, $2, $3, ARRAY[$1]) \
                     ON CONFLICT (table_name) DO UPDATE \
                        SET exclude_columns = EXCLUDED.exclude_columns, \
                            capture_query = EXCLUDED.capture_query, \
                            table_oids = CASE WHEN $1 = ANY (t.table_oids) THEN t.table_oids \
                                              ELSE t.table_oids || $1 END",
                    None,
                    &[
                        relid.into(),
                        options.exclude.clone().into(),
                        capture_query.into(),
                    ],
                )
                .unwrap_or_else(|e| spi_failed(e));
                if relkind(relid) == b'p' {
                    sync_partitions(client, relid, &options);
                }
                // the capture as configured now: DDL that changes it later is logged
                if has_relation(client, "audit._ddl_state") {
                    client
                        .update(
                            "INSERT INTO audit._ddl_state AS d \
                             SELECT t.table_name, audit._capture_state(t) FROM audit._tracked t \
                              WHERE t.table_name = $1 \
                             ON CONFLICT (table_name) DO UPDATE SET state = EXCLUDED.state",
                            None,
                            &[relid.into()],
                        )
                        .unwrap_or_else(|e| spi_failed(e));
                }
            })
        })
    });
}

/// (Re)creates the four capture triggers of `relid` with `options` unless they already carry
/// them. Refuses to replace a trigger of the same name that is not a capture trigger.
fn install(client: &mut SpiClient<'_>, relid: pg_sys::Oid, options: &Options) {
    let table = qualified(relid);
    let names: Vec<String> = TRIGGERS.iter().map(|(n, _)| (*n).to_owned()).collect();
    let existing: Vec<(String, bool, Vec<String>)> = client
        .select(
            &format!(
                "SELECT tgname::text, tgfoid = {CAPTURE_FN}, storage._trigger_args(tgargs) \
                   FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = ANY ($2)"
            ),
            None,
            &[relid.into(), names.into()],
        )
        .unwrap_or_else(|e| spi_failed(e))
        .map(|row| {
            (
                row.get::<String>(1).ok().flatten().unwrap_or_default(),
                row.get::<bool>(2).ok().flatten().unwrap_or(false),
                row.get::<Vec<String>>(3).ok().flatten().unwrap_or_default(),
            )
        })
        .collect();
    let args = options.to_args();
    for (name, event) in TRIGGERS {
        match existing.iter().find(|(n, _, _)| n == name) {
            Some((_, false, _)) => raise(
                PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
                format!("trigger \"{name}\" for relation {table} already exists"),
                Some("It is not a pg_storage_ext capture trigger.".into()),
                Some(format!(
                    "Rename or drop that trigger, then call audit.enable('{table}') again."
                )),
            ),
            Some((_, true, a)) if *a == args => continue,
            _ => {}
        }
        let arg_list: Vec<String> = args.iter().map(|a| literal(a)).collect();
        let sql = format!(
            "CREATE OR REPLACE TRIGGER {} {event} ON {table} {} FOR EACH STATEMENT \
             EXECUTE FUNCTION audit._capture({})",
            quote(name),
            referencing(event),
            arg_list.join(", ")
        );
        client
            .update(&sql, None, &[])
            .unwrap_or_else(|e| spi_failed(e));
    }
}

/// Drops the capture triggers of `relid`; returns how many there were.
fn uninstall(client: &mut SpiClient<'_>, relid: pg_sys::Oid) -> usize {
    let names: Vec<String> = client
        .select(
            &format!(
                "SELECT tgname::text FROM pg_catalog.pg_trigger \
                  WHERE tgrelid = $1 AND tgfoid = {CAPTURE_FN} ORDER BY tgname"
            ),
            None,
            &[relid.into()],
        )
        .unwrap_or_else(|e| spi_failed(e))
        .filter_map(|row| row.get::<String>(1).ok().flatten())
        .collect();
    for name in &names {
        let sql = format!("DROP TRIGGER {} ON {}", quote(name), qualified(relid));
        client
            .update(&sql, None, &[])
            .unwrap_or_else(|e| spi_failed(e));
    }
    names.len()
}

/// Partitions (at any depth) of `root` that are tables and not audited on their own.
fn partitions(client: &SpiClient<'_>, root: pg_sys::Oid) -> Vec<pg_sys::Oid> {
    client
        .select(
            "SELECT p.relid FROM pg_catalog.pg_partition_tree($1::pg_catalog.regclass) AS p \
               JOIN pg_catalog.pg_class AS c ON c.oid = p.relid \
              WHERE p.relid <> $1::pg_catalog.regclass AND c.relkind IN ('r', 'p') \
                AND NOT EXISTS (SELECT FROM audit._tracked t WHERE t.table_name = p.relid) \
              ORDER BY p.level, p.relid",
            None,
            &[root.into()],
        )
        .unwrap_or_else(|e| spi_failed(e))
        .filter_map(|row| row.get::<pg_sys::Oid>(1).ok().flatten())
        .collect()
}

/// Gives every partition of `root` partition-scope capture triggers with `options`; returns
/// how many partitions were visited.
fn sync_partitions(client: &mut SpiClient<'_>, root: pg_sys::Oid, options: &Options) -> i32 {
    let scoped = Options {
        scope: Scope::Partition,
        ..options.clone()
    };
    let parts = partitions(client, root);
    for part in &parts {
        install(client, *part, &scoped);
    }
    parts.len() as i32
}

/// The options audit.enable gave `table` (from `audit._tracked`), None when it is not audited.
fn tracked_options(client: &SpiClient<'_>, table: pg_sys::Oid) -> Option<Options> {
    client
        .select(
            "SELECT exclude_columns, capture_query FROM audit._tracked WHERE table_name = $1::pg_catalog.regclass",
            None,
            &[table.into()],
        )
        .unwrap_or_else(|e| spi_failed(e))
        .next()
        .map(|row| {
            let exclude = row.get::<Vec<String>>(1).ok().flatten().unwrap_or_default();
            let capture_query = row.get::<bool>(2).ok().flatten().unwrap_or(false);
            Options::new(Scope::Table, capture_query, &exclude)
        })
}

/// `audit._sync_partitions`: the options of `root` from its configuration row.
fn sync_from_config(root: pg_sys::Oid) -> i32 {
    Spi::connect_mut(|client| match tracked_options(client, root) {
        Some(options) => sync_partitions(client, root, &options),
        None => 0,
    })
}

fn carry(old: pg_sys::Oid, new: pg_sys::Oid, command: &str) -> bool {
    check_target(old, "audit._carry_capture");
    check_target(new, "audit._carry_capture");
    as_owner(|| {
        configuring(|| {
            Spi::connect_mut(|client| {
                let Some(options) = tracked_options(client, old) else {
                    return false;
                };
                // the state of the new table is first seen after its rename (not logged)
                client
                    .update(
                        "DELETE FROM audit._ddl_state WHERE table_name = $1",
                        None,
                        &[old.into()],
                    )
                    .unwrap_or_else(|e| spi_failed(e));
                client
                    .update(
                        "UPDATE audit._tracked \
                            SET table_name = $2::pg_catalog.oid::pg_catalog.regclass, \
                                table_oids = table_oids \
                                    || CASE WHEN $1 = ANY (table_oids) THEN '{}' ELSE ARRAY[$1] END \
                                    || ARRAY[$2] \
                          WHERE table_name = $1::pg_catalog.oid::pg_catalog.regclass",
                        None,
                        &[old.into(), new.into()],
                    )
                    .unwrap_or_else(|e| spi_failed(e));
                install(client, new, &options);
                if relkind(new) == b'p' {
                    sync_partitions(client, new, &options);
                }
                client
                    .update(
                        "SELECT audit._log_ddl($2, n.nspname, c.relname, $3) \
                           FROM pg_catalog.pg_class c \
                           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                          WHERE c.oid = $1",
                        None,
                        &[old.into(), new.into(), command.into()],
                    )
                    .unwrap_or_else(|e| spi_failed(e));
                true
            })
        })
    })
}

fn disable(target: Regclass) {
    crate::error::require_primary("audit.disable");
    let relid = target.0;
    let table = check_target(relid, "audit.disable");
    let dropped = as_owner(|| {
        configuring(|| {
            Spi::connect_mut(|client| {
                // stopping capture is itself recorded, once, before the configuration goes
                if has_relation(client, "audit._ddl_state") {
                    client
                        .update(
                            "SELECT audit._log_ddl(c.oid, n.nspname, c.relname, 'audit.disable') \
                               FROM pg_catalog.pg_class c \
                               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                              WHERE c.oid = $1 AND EXISTS (SELECT FROM audit._tracked t WHERE t.table_name = c.oid)",
                            None,
                            &[relid.into()],
                        )
                        .unwrap_or_else(|e| spi_failed(e));
                }
                let mut n = uninstall(client, relid);
                for part in partitions(client, relid) {
                    n += uninstall(client, part);
                }
                let rows = client
                    .update(
                        "DELETE FROM audit._tracked WHERE table_name = $1::pg_catalog.regclass",
                        None,
                        &[relid.into()],
                    )
                    .unwrap_or_else(|e| spi_failed(e))
                    .len();
                n + rows
            })
        })
    });
    if dropped == 0 {
        pgrx::notice!("{table} is not audited; nothing to disable");
    }
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
