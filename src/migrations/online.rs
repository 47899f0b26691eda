//! Online schema changes (`storage.alter_column_type`, `add_not_null`, `add_check`,
//! `add_foreign_key`, `abort_schema_change`): the entry points, which check the caller and bind
//! its expressions before the extension owner takes over, and the worker that carries a change
//! through its phases, each unit of work in a transaction of its own. The phases themselves are
//! SQL (`storage._schema_change_step` in `sql/migrations.sql`): the worker only calls it, runs the
//! top-level statement it asks for (CREATE INDEX CONCURRENTLY) as the table's owner, retries a
//! lock wait that timed out, and reports progress.

use crate::error::{raise, spi_failed};
use crate::ident::Regclass;
use crate::worker::top_level::{run_top_level, Failure, RunAs};
use crate::worker::{caught, connect_as, numbers, one_row, pause, queued_by, start};
use crate::worker::{unblock_signals, WAIT_FOR_QUEUE};
use pgrx::bgworkers::{BackgroundWorker, BgWorkerStartTime};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;
use std::time::{Duration, Instant};

/// The checks every entry makes as the caller: a primary, a table the caller owns.
fn check_caller(relid: pg_sys::Oid, what: &str) {
    crate::catalog::require_primary(what);
    let table = crate::ident::require_table(relid, what);
    if !crate::privilege::owns_relation(crate::privilege::current_user(), relid) {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be owner of table {table}"),
            Some(format!(
                "{what} changes the table's definition, which only its owner may do."
            )),
            Some("Run it as the table's owner (or a member of the owning role).".into()),
        );
    }
}

/// `42601` unless `expr` is exactly one SQL expression (nothing glued on after a parenthesis).
fn one_expression(what: &str, expr: &str) {
    if let Err(why) =
        super::check_wrapper(&format!("SELECT (\n{expr}\n)"), "`SELECT (…)`", |from| {
            from.is_empty()
        })
    {
        raise(
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            format!("{what} must be one SQL expression"),
            Some(format!("{why}; it was: {expr}")),
            Some("Write one expression over the table's columns, by name, e.g. payload::jsonb or price >= 0.".into()),
        );
    }
}

/// Internal: an online schema change's entry (`kind`: alter_column_type, add_not_null,
/// add_check, add_foreign_key; `args` its arguments as JSON text, passed on to SQL unread; `expr`
/// the user's expression, if any). As the caller: the table is one it owns, the expression is
/// one expression, and the caller's effective search_path (the schemas of `caller_search_path`
/// it may use) is what its names are bound with. Then, as the extension owner,
/// `storage._schema_change_begin` does the short part in this transaction and starts the worker.
/// NULL for a NULL kind, table or arguments.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn _schema_change(
    kind: Option<&str>,
    target: Option<Regclass>,
    args: Option<&str>,
    expr: Option<&str>,
    caller_search_path: Option<&str>,
) -> Option<String> {
    let (Some(kind), Some(target), Some(args)) = (kind, target, args) else {
        return None;
    };
    let what = format!("storage.{kind}");
    check_caller(target.0, &what);
    match (kind, expr) {
        ("add_check", None) => raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "storage.add_check needs an expression",
            None,
            Some("storage.add_check('articles', 'views_positive', 'views >= 0').".into()),
        ),
        ("add_check", Some(e)) => one_expression("a CHECK's expression", e),
        (_, Some(e)) => one_expression("using_expr", e),
        _ => {}
    }
    let path = std::ffi::CString::new(caller_search_path.unwrap_or("public"))
        .unwrap_or_else(|_| c"public".to_owned());
    let effective = crate::privilege::with_setting(c"search_path", &path, || {
        crate::catalog::read_one::<String>(
            "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(s), ', ' ORDER BY o) \
               FROM pg_catalog.unnest(pg_catalog.current_schemas(true)) WITH ORDINALITY AS u(s, o) \
              WHERE s OPERATOR(pg_catalog.!~) '^pg_temp_'",
        )
        .ok()
        .flatten()
    });
    let effective = match effective {
        Some(p) => format!("{p}, pg_temp"),
        None => "pg_catalog, pg_temp".into(),
    };
    let caller = crate::privilege::current_user();
    crate::privilege::as_owner(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    "SELECT storage._schema_change_begin($1, $2, $3::pg_catalog.jsonb, $4, $5, $6, pg_catalog.pg_backend_pid(), \
                            (SELECT a.backend_start FROM pg_catalog.pg_stat_activity a \
                              WHERE a.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()))",
                    Some(1),
                    &[
                        kind.into(),
                        target.0.into(),
                        args.into(),
                        expr.into(),
                        caller.into(),
                        effective.into(),
                    ],
                )
                .and_then(|t| t.first().get_one::<String>())
                .unwrap_or_else(|e| spi_failed(e))
        })
    })
}

/// Internal: `storage.abort_schema_change`'s entry: the caller owns the table; the extension
/// owner stops the worker and drops what the change made (`storage._schema_change_abort`).
#[pg_extern(volatile, strict)]
#[search_path(pg_catalog, pg_temp)]
fn _schema_change_abort_checked(target: Regclass) -> Option<String> {
    check_caller(target.0, "storage.abort_schema_change");
    crate::privilege::as_owner(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    "SELECT storage._schema_change_abort($1)",
                    Some(1),
                    &[target.0.into()],
                )
                .and_then(|t| t.first().get_one::<String>())
                .unwrap_or_else(|e| spi_failed(e))
        })
    })
}

/// Internal: starts the worker of online schema change `id`, which works once the calling
/// transaction has committed; the worker connects as the current role (the extension's owner:
/// the callers run as it). Its pid, NULL when no worker slot is free (the heartbeat's
/// `storage._recover` starts it later).
#[pg_extern(volatile, strict)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn _schema_change_launch(id: i64) -> Option<i32> {
    // SAFETY: reads of backend globals; assigns this transaction an xid if it has none
    let extra = unsafe {
        format!(
            "{} {} {}",
            pg_sys::MyDatabaseId.to_u32(),
            pg_sys::GetUserId().to_u32(),
            pg_sys::GetTopFullTransactionId().value,
        )
    };
    let worker = start(
        &format!("pg_storage_ext schema change {id}"),
        "pg_storage_ext schema change",
        "pg_storage_ext_schema_change_main",
        pg_sys::Datum::from(id),
        &extra,
        BgWorkerStartTime::RecoveryFinished,
    )?;
    worker.wait_for_startup().ok()
}

thread_local! {
    /// Set first thing in the worker of an online schema change, never from SQL.
    static IN_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Internal: true only in the worker of an online schema change. A table whose row security is
/// forced on its owner gets a permissive policy on it for the change, so that the backfill,
/// which runs as the owner, sees every row; in any other session the policy admits nothing.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn _schema_change_backfilling() -> bool {
    IN_WORKER.get()
}

/// What `storage._schema_change_step` asked for next.
enum Step {
    Next,
    Stop,
    TopLevel(String, pg_sys::Oid),
}

/// `work` in a transaction of the worker's own; an error is caught and the transaction aborted.
fn attempt<R>(work: impl FnOnce() -> R) -> Result<R, Failure> {
    let work = std::panic::AssertUnwindSafe(work);
    let result = PgTryBuilder::new(|| Ok(BackgroundWorker::transaction(work)))
        .catch_others(|e| {
            let (code, message) = caught(&e);
            Err(Failure { code, message })
        })
        .execute();
    if result.is_err() {
        // SAFETY: ends the transaction the error left open, as a worker's error recovery does
        unsafe { pg_sys::AbortCurrentTransaction() };
    }
    result
}

/// One step of change `id`, and where the change is (rows done, of about, phase).
fn step(id: i64) -> Result<(Step, i64, i64, String), Failure> {
    attempt(|| {
        Spi::connect_mut(|client| {
            let row = client
                .update(
                    "SELECT x.action, x.statement, x.run_as FROM storage._schema_change_step($1) AS x",
                    Some(1),
                    &[id.into()],
                )
                .unwrap_or_else(|e| spi_failed(e));
            let row = row.first();
            let action = row.get::<String>(1).ok().flatten().unwrap_or_default();
            let step = match action.as_str() {
                "next" => Step::Next,
                "top" => Step::TopLevel(
                    row.get::<String>(2).ok().flatten().unwrap_or_default(),
                    row.get::<pg_sys::Oid>(3)
                        .ok()
                        .flatten()
                        .unwrap_or(pg_sys::InvalidOid),
                ),
                _ => Step::Stop,
            };
            let at = client
                .select(
                    "SELECT x.rows_done, x.rows_total, x.phase FROM storage._schema_changes x \
                      WHERE x.id OPERATOR(pg_catalog.=) $1",
                    Some(1),
                    &[id.into()],
                )
                .unwrap_or_else(|e| spi_failed(e));
            let at = at.first();
            (
                step,
                at.get::<i64>(1).ok().flatten().unwrap_or(0),
                at.get::<i64>(2).ok().flatten().unwrap_or(-1),
                at.get::<String>(3).ok().flatten().unwrap_or_default(),
            )
        })
    })
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_storage_ext_schema_change_main(arg: pg_sys::Datum) {
    unblock_signals();
    IN_WORKER.set(true);
    let id = arg.value() as i64;
    let [db, role, xid] = numbers(BackgroundWorker::get_extra())[..] else {
        return;
    };
    connect_as(db, role);
    // the transaction that started it must have committed (its row, its new column)
    let waited = Instant::now();
    loop {
        match queued_by(xid) {
            Some(true) => break,
            Some(false) => return,
            None if pause(Duration::from_millis(50)) && waited.elapsed() < WAIT_FOR_QUEUE => {}
            None => return,
        }
    }
    one_row(
        "SELECT pg_catalog.set_config('application_name', 'pg_storage_ext schema change', false), \
                pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)",
        &[],
        |_| (),
    );
    let outcome = PgTryBuilder::new(|| run(id))
        .catch_others(|e| {
            let (code, message) = caught(&e);
            Err(Failure { code, message })
        })
        .execute();
    if let Err(f) = outcome {
        // SAFETY: ends whatever transaction the error left open
        unsafe { pg_sys::AbortCurrentTransaction() };
        // told to stop (pg_terminate_backend, a shutdown): not a failure of the change, which the
        // heartbeat resumes after a restart (abort_schema_change stops it this way too)
        if f.code == PgSqlErrorCode::ERRCODE_ADMIN_SHUTDOWN {
            return;
        }
        let error = f.message;
        one_row(
            "SELECT storage._schema_change_failed($1, $2)",
            &[id.into(), error.into()],
            |_| (),
        );
    }
}

/// Carries change `id` to its end: Ok when it ended (done, aborted, or recorded failed), Err
/// with why the worker could not go on.
fn run(id: i64) -> Result<(), Failure> {
    let (lock_ms, retries) = one_row(
        "SELECT x.lock_timeout_ms, x.retries FROM storage._schema_changes x WHERE x.id OPERATOR(pg_catalog.=) $1",
        &[id.into()],
        |row| {
            (
                row.get::<i32>(1).ok().flatten().unwrap_or(2000).max(1),
                row.get::<i32>(2).ok().flatten().unwrap_or(5).max(0),
            )
        },
    );
    let (kind, table) = one_row(
        "SELECT x.kind, x.table_name FROM storage._schema_changes x WHERE x.id OPERATOR(pg_catalog.=) $1",
        &[id.into()],
        |row| {
            (
                row.get::<String>(1).ok().flatten().unwrap_or_default(),
                row.get::<String>(2).ok().flatten().unwrap_or_default(),
            )
        },
    );
    // for the statements the worker runs itself (its steps set their own)
    one_row(
        "SELECT pg_catalog.set_config('lock_timeout', $1, false)",
        &[format!("{lock_ms}ms").into()],
        |_| (),
    );
    let progress = crate::ops::progress::start(&kind, &table, -1);
    let mut tries = 0;
    let mut done = 0;
    let result = loop {
        if !pause(Duration::ZERO) {
            break Ok(());
        }
        let outcome = match step(id) {
            Ok((Step::Stop, ..)) => break Ok(()),
            Ok((Step::Next, rows, total, phase)) => {
                done = rows;
                crate::ops::progress::update(progress, done, &phase);
                if total >= 0 {
                    crate::ops::progress::set_total(progress, total);
                }
                Ok(())
            }
            Ok((Step::TopLevel(statement, owner), _, _, phase)) => {
                crate::ops::progress::update(progress, done, &phase);
                run_top_level(&statement, RunAs::Owner(owner))
            }
            Err(f) => Err(f),
        };
        match outcome {
            Ok(()) => tries = 0,
            Err(f) if f.code == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE && tries < retries => {
                tries += 1;
                let wait = Duration::from_millis((lock_ms as u64 / 2).max(50) * tries as u64);
                if !pause(wait) {
                    break Ok(());
                }
            }
            Err(f) => break Err(f),
        }
    };
    crate::ops::progress::end(progress);
    result
}

/// The migration runner's side: after a statement of a non-transactional migration, waits
/// until the online schema changes it started (recorded with this backend) end; Err with the
/// first one's error when one failed. False from `stopped` when the worker was told to stop.
pub(crate) fn wait_for_started() -> Result<bool, String> {
    loop {
        let open = one_row(
            "SELECT x.id, x.state, x.error FROM storage._schema_changes x \
              WHERE x.requested_pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() \
                AND x.requested_backend OPERATOR(pg_catalog.=) (SELECT a.backend_start FROM pg_catalog.pg_stat_activity a \
                                            WHERE a.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()) \
                AND x.state OPERATOR(pg_catalog.=) ANY (ARRAY['running', 'failed']) \
              ORDER BY x.id LIMIT 1",
            &[],
            |row| {
                row.get::<i64>(1).ok().flatten().map(|id| {
                    (
                        id,
                        row.get::<String>(2).ok().flatten().unwrap_or_default(),
                        row.get::<String>(3).ok().flatten().unwrap_or_default(),
                    )
                })
            },
        );
        match open {
            None => return Ok(true),
            Some((id, state, error)) if state == "failed" => {
                return Err(format!("online schema change {id} failed: {error}"))
            }
            Some(_) => {
                if !pause(Duration::from_millis(250)) {
                    return Ok(false);
                }
            }
        }
    }
}

/// A writable copy of the catalog row of relation `oid` in syscache `cache` (RELOID for
/// `pg_class`, INDEXRELID for `pg_index`); 42P01 when there is none.
///
/// # Safety
/// A syscache lookup: the caller frees the tuple (`heap_freetuple`) or leaves it to its memory
/// context.
unsafe fn catalog_row(
    cache: pg_sys::SysCacheIdentifier::Type,
    oid: pg_sys::Oid,
) -> pg_sys::HeapTuple {
    let tuple = pg_sys::SearchSysCacheCopy(
        cache as i32,
        pg_sys::Datum::from(oid),
        pg_sys::Datum::from(0),
        pg_sys::Datum::from(0),
        pg_sys::Datum::from(0),
    );
    if tuple.is_null() {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            format!("relation with OID {} does not exist", oid.to_u32()),
            None,
            None,
        );
    }
    tuple
}

/// The fields of a relation's `pg_class` row that follow its files (a heap's or an index's):
/// swapped between `a` and `b`, as CLUSTER's `swap_relation_files` does for two relations that
/// are not mapped. Both rows are written back; their relcache entries are invalidated by it.
///
/// # Safety
/// The caller holds ACCESS EXCLUSIVE on both relations and has checked that their files have
/// the same shape (access method, persistence, tablespace, columns or index definition).
unsafe fn swap_class_files(class: pg_sys::Relation, a: pg_sys::Oid, b: pg_sys::Oid, links: bool) {
    let (ta, tb) = (
        catalog_row(pg_sys::SysCacheIdentifier::RELOID, a),
        catalog_row(pg_sys::SysCacheIdentifier::RELOID, b),
    );
    let fa = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_class>(ta);
    let fb = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_class>(tb);
    std::mem::swap(&mut (*fa).relfilenode, &mut (*fb).relfilenode);
    std::mem::swap(&mut (*fa).relpages, &mut (*fb).relpages);
    std::mem::swap(&mut (*fa).reltuples, &mut (*fb).reltuples);
    std::mem::swap(&mut (*fa).relallvisible, &mut (*fb).relallvisible);
    std::mem::swap(&mut (*fa).relallfrozen, &mut (*fb).relallfrozen);
    std::mem::swap(&mut (*fa).relfrozenxid, &mut (*fb).relfrozenxid);
    std::mem::swap(&mut (*fa).relminmxid, &mut (*fb).relminmxid);
    if links {
        std::mem::swap(&mut (*fa).reltoastrelid, &mut (*fb).reltoastrelid);
    }
    pg_sys::CatalogTupleUpdate(class, &mut (*ta).t_self, ta);
    pg_sys::CatalogTupleUpdate(class, &mut (*tb).t_self, tb);
    pg_sys::heap_freetuple(ta);
    pg_sys::heap_freetuple(tb);
}

/// Internal: the last step of an online type change's copy of `leaf` (src: `storage.
/// _schema_change_step`): the files of `copy`, the converted copy of its rows made beside it,
/// become `leaf`'s, and `leaf`'s old files `copy`'s, to be dropped with it. The heaps swap files,
/// each pair (`leaf_indexes[i]`, `copy_indexes[i]`) of indexes with the same definition swaps
/// files, and the TOAST tables swap owners (a TOAST pointer names its table), as CLUSTER does.
/// `leaf` keeps its OID and everything that hangs on it. The caller holds ACCESS EXCLUSIVE on
/// both tables and checked that their columns and the index pairs match; this checks again what
/// a mismatch of which would corrupt the table (the kind, access method, persistence and
/// tablespace of every pair, each index's table), and raises 55000 otherwise. Not for PUBLIC.
#[pg_extern(volatile, strict)]
#[search_path(pg_catalog, pg_temp)]
fn _schema_change_swap_files(
    leaf: pg_sys::Oid,
    copy: pg_sys::Oid,
    leaf_indexes: Vec<pg_sys::Oid>,
    copy_indexes: Vec<pg_sys::Oid>,
) {
    let refuse = |why: String| -> ! {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "the copy of a table does not match it",
            Some(why),
            Some("Abort the change (storage.abort_schema_change) and start it again.".into()),
        )
    };
    // SAFETY: lock checks and lock requests by OID
    let locked = unsafe {
        pg_sys::CheckRelationOidLockedByMe(leaf, pg_sys::AccessExclusiveLock as i32, false)
            && pg_sys::CheckRelationOidLockedByMe(copy, pg_sys::AccessExclusiveLock as i32, false)
    };
    if !locked || leaf == copy || leaf_indexes.len() != copy_indexes.len() {
        refuse("Both tables must be locked ACCESS EXCLUSIVE, and the indexes paired.".into());
    }
    let shape = |oid: pg_sys::Oid| {
        crate::catalog::read_one_with_args::<String>(
            "SELECT pg_catalog.concat_ws(' ', c.relkind, c.relam, c.relpersistence, c.reltablespace, c.reltoastrelid OPERATOR(pg_catalog.<>) 0, \
                    (SELECT x.indrelid FROM pg_catalog.pg_index x WHERE x.indexrelid OPERATOR(pg_catalog.=) c.oid), \
                    c.relfilenode OPERATOR(pg_catalog.<>) 0) \
               FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1",
            &[oid.into()],
        )
        .ok()
        .flatten()
        .unwrap_or_default()
    };
    // what the files hold: each column's place, type and storage, or each index's definition
    let held = |function: &str, oid: pg_sys::Oid| {
        crate::catalog::read_one_with_args::<String>(
            &format!("SELECT storage.{function}($1)"),
            &[oid.into()],
        )
        .ok()
        .flatten()
        .unwrap_or_default()
    };
    let (a, b) = (shape(leaf), shape(copy));
    if a.is_empty() || a != b || !a.starts_with("r ") || !a.ends_with(" t") {
        refuse(format!("table: {a} / copy: {b}"));
    }
    let (a, b) = (
        held("_schema_change_layout", leaf),
        held("_schema_change_layout", copy),
    );
    if a.is_empty() || a != b {
        refuse(format!("columns: {a} / copy: {b}"));
    }
    for (&l, &c) in leaf_indexes.iter().zip(copy_indexes.iter()) {
        // SAFETY: lock requests by OID (the tables' ACCESS EXCLUSIVE already covers them)
        unsafe {
            pg_sys::LockRelationOid(l, pg_sys::AccessExclusiveLock as i32);
            pg_sys::LockRelationOid(c, pg_sys::AccessExclusiveLock as i32);
        }
        let (x, y) = (shape(l), shape(c));
        let (xs, ys) = (
            x.replace(&format!(" {} ", leaf.to_u32()), " T "),
            y.replace(&format!(" {} ", copy.to_u32()), " T "),
        );
        if x.is_empty() || xs != ys || !xs.starts_with("i ") || !xs.contains(" T ") {
            refuse(format!("index {}: {x} / {}: {y}", l.to_u32(), c.to_u32()));
        }
        let (x, y) = (
            held("_schema_change_index_shape", l),
            held("_schema_change_index_shape", c),
        );
        if x.is_empty() || x != y {
            refuse(format!("index {}: {x} / {}: {y}", l.to_u32(), c.to_u32()));
        }
    }
    // a relation's TOAST table, and a TOAST table's index
    let related = |sql: &str, oid: pg_sys::Oid| {
        crate::catalog::read_one_with_args::<pg_sys::Oid>(sql, &[oid.into()])
            .ok()
            .flatten()
            .unwrap_or(pg_sys::InvalidOid)
    };
    let toast = |oid| {
        related(
            "SELECT c.reltoastrelid FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1",
            oid,
        )
    };
    let toast_index = |oid| {
        related(
            "SELECT x.indexrelid FROM pg_catalog.pg_index x WHERE x.indrelid OPERATOR(pg_catalog.=) $1 ORDER BY x.indexrelid LIMIT 1",
            oid,
        )
    };
    let (leaf_toast, copy_toast) = (toast(leaf), toast(copy));
    // SAFETY: catalog updates under the locks checked above, as cluster.c makes them
    unsafe {
        let class = pg_sys::table_open(pg_sys::RelationRelationId, pg_sys::RowExclusiveLock as i32);
        swap_class_files(class, leaf, copy, true);
        for (&l, &c) in leaf_indexes.iter().zip(copy_indexes.iter()) {
            swap_class_files(class, l, c, false);
        }
        pg_sys::table_close(class, pg_sys::RowExclusiveLock as i32);
        if leaf_toast != pg_sys::InvalidOid {
            // each TOAST table now belongs to the other table: its one dependency follows
            for (toast_rel, owner) in [(leaf_toast, copy), (copy_toast, leaf)] {
                let count = pg_sys::deleteDependencyRecordsFor(
                    pg_sys::RelationRelationId,
                    toast_rel,
                    false,
                );
                if count != 1 {
                    refuse(format!(
                        "TOAST table {} had {count} dependencies",
                        toast_rel.to_u32()
                    ));
                }
                let depender = pg_sys::ObjectAddress {
                    classId: pg_sys::RelationRelationId,
                    objectId: toast_rel,
                    objectSubId: 0,
                };
                let referenced = pg_sys::ObjectAddress {
                    classId: pg_sys::RelationRelationId,
                    objectId: owner,
                    objectSubId: 0,
                };
                pg_sys::recordDependencyOn(
                    &depender,
                    &referenced,
                    pg_sys::DependencyType::DEPENDENCY_INTERNAL,
                );
            }
            pg_sys::CommandCounterIncrement();
            // and the names that say whose it is (pg_toast_<table oid>, its index _index)
            let (leaf_index, copy_index) = (toast_index(leaf_toast), toast_index(copy_toast));
            let rename = |oid: pg_sys::Oid, name: String, is_index: bool| {
                let name = std::ffi::CString::new(name).unwrap_or_default();
                pg_sys::RenameRelationInternal(oid, name.as_ptr(), true, is_index);
                pg_sys::CommandCounterIncrement();
            };
            rename(
                leaf_toast,
                format!("pg_toast_{}_swap", leaf.to_u32()),
                false,
            );
            rename(copy_toast, format!("pg_toast_{}", leaf.to_u32()), false);
            rename(leaf_toast, format!("pg_toast_{}", copy.to_u32()), false);
            if leaf_index != pg_sys::InvalidOid && copy_index != pg_sys::InvalidOid {
                rename(
                    leaf_index,
                    format!("pg_toast_{}_index_swap", leaf.to_u32()),
                    true,
                );
                rename(
                    copy_index,
                    format!("pg_toast_{}_index", leaf.to_u32()),
                    true,
                );
                rename(
                    leaf_index,
                    format!("pg_toast_{}_index", copy.to_u32()),
                    true,
                );
            }
        }
        pg_sys::CommandCounterIncrement();
    }
}

/// Internal: after `_schema_change_swap_files`, an index an online type change built on its
/// copy over the new column (its file describes the rows the table now holds) becomes the
/// table's: its `pg_index` row names the table, it moves to the table's schema, and its
/// dependencies on the copy's columns become dependencies on the table's (the same places).
/// The index phase then finds it built, and no `CREATE INDEX CONCURRENTLY` scans the table
/// again. The caller holds ACCESS EXCLUSIVE on both tables, swapped their files in this
/// transaction and checked the index's definition; 55000 unless `index` is an index of `copy`.
/// Not for PUBLIC.
#[pg_extern(volatile, strict)]
#[search_path(pg_catalog, pg_temp)]
fn _schema_change_adopt_index(leaf: pg_sys::Oid, copy: pg_sys::Oid, index: pg_sys::Oid) {
    // SAFETY: lock checks by OID
    let locked = unsafe {
        pg_sys::CheckRelationOidLockedByMe(leaf, pg_sys::AccessExclusiveLock as i32, false)
            && pg_sys::CheckRelationOidLockedByMe(copy, pg_sys::AccessExclusiveLock as i32, false)
    };
    let owned = crate::catalog::read_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) x.indexrelid \
                         WHERE x.indexrelid OPERATOR(pg_catalog.=) $1 AND x.indrelid OPERATOR(pg_catalog.=) $2 AND c.relkind OPERATOR(pg_catalog.=) 'i')",
        &[index.into(), copy.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false);
    let namespace = crate::catalog::read_one_with_args::<pg_sys::Oid>(
        "SELECT c.relnamespace FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1",
        &[leaf.into()],
    )
    .ok()
    .flatten();
    let (true, true, Some(namespace)) = (locked, owned && leaf != copy, namespace) else {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "an index of the copy cannot become the table's",
            Some(format!(
                "Index {} of copy {} for table {}: both tables must be locked ACCESS EXCLUSIVE and the index be the copy's.",
                index.to_u32(),
                copy.to_u32(),
                leaf.to_u32()
            )),
            Some("Abort the change (storage.abort_schema_change) and start it again.".into()),
        )
    };
    // SAFETY: catalog updates under the locks checked above
    unsafe {
        pg_sys::LockRelationOid(index, pg_sys::AccessExclusiveLock as i32);
        let catalog = pg_sys::table_open(pg_sys::IndexRelationId, pg_sys::RowExclusiveLock as i32);
        let tuple = catalog_row(pg_sys::SysCacheIdentifier::INDEXRELID, index);
        (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_index>(tuple)).indrelid = leaf;
        pg_sys::CatalogTupleUpdate(catalog, &mut (*tuple).t_self, tuple);
        pg_sys::heap_freetuple(tuple);
        pg_sys::table_close(catalog, pg_sys::RowExclusiveLock as i32);
        let catalog =
            pg_sys::table_open(pg_sys::RelationRelationId, pg_sys::RowExclusiveLock as i32);
        let tuple = catalog_row(pg_sys::SysCacheIdentifier::RELOID, index);
        (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_class>(tuple)).relnamespace =
            namespace;
        pg_sys::CatalogTupleUpdate(catalog, &mut (*tuple).t_self, tuple);
        pg_sys::heap_freetuple(tuple);
        pg_sys::table_close(catalog, pg_sys::RowExclusiveLock as i32);
        let moved = pg_sys::changeDependencyFor(
            pg_sys::RelationRelationId,
            index,
            pg_sys::RelationRelationId,
            copy,
            leaf,
        );
        if moved < 1 {
            raise(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "an index of the copy cannot become the table's",
                Some(format!(
                    "Index {} depended on no column of the copy.",
                    index.to_u32()
                )),
                None,
            );
        }
        // both tables' lists of indexes changed
        pg_sys::CacheInvalidateRelcacheByRelid(leaf);
        pg_sys::CacheInvalidateRelcacheByRelid(copy);
        pg_sys::CommandCounterIncrement();
    }
}
