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
