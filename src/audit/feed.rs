//! The change feeds' notifier: one background worker per database that has feeds, which every
//! 20 ms looks for transactions committed since its last look that changed a table a feed reads
//! (`audit._feed_announce`, SQL) and sends one notification per such table on the channel
//! `audit_feed`. The writers send nothing: PostgreSQL serialises the commits of notifying
//! transactions (one lock for the notification queue), which a NOTIFY from every writer would
//! cost them (docs/audit.md, "A change feed that never skips a commit").
//!
//! It is started by `audit.create_feed`, `audit.read_feed` and the heartbeat job's self-healing
//! step (`storage._recover`) when none runs in the database, connected as the extension's owner;
//! a second one started at the same time leaves at once, and it leaves when the database has had
//! no feed for 10 s, or when a session wants the database alone (DROP DATABASE).

use crate::worker::{numbers, one_row, pause, start, unblock_signals};
use pgrx::bgworkers::{BackgroundWorker, BgWorkerStartTime};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::Duration;

/// The notifier's `backend_type` in pg_stat_activity.
const KIND: &str = "pg_storage_ext feed notifier";

/// How often it looks.
const EVERY: Duration = Duration::from_millis(20);

/// How long it stays without any feed in the database.
const IDLE: Duration = Duration::from_secs(10);

/// How often it looks whether its database is wanted without connections.
const WANTED_EVERY: Duration = Duration::from_millis(500);

/// The pid of this database's notifier, started when none runs; None when no worker slot is free
/// (consumers then find the changes at their next read: docs/audit.md).
pub(crate) fn notifier() -> Option<i32> {
    // a standby writes no log (and a worker waiting for recovery to end would not start)
    // SAFETY: a backend global's getter
    if unsafe { pg_sys::RecoveryInProgress() } {
        return None;
    }
    // (as the extension's owner: pg_stat_activity shows another role's backend_type only to
    // monitoring roles, and a reader that saw none would start one at every read)
    let running = crate::privilege::as_owner(|| {
        Spi::get_one_with_args::<i32>(
            "SELECT (SELECT a.pid FROM pg_catalog.pg_stat_activity a \
                  WHERE a.backend_type OPERATOR(pg_catalog.=) $1 \
                    AND a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database() \
                  LIMIT 1)",
            &[KIND.into()],
        )
        .unwrap_or_else(|e| crate::error::spi_failed(e))
    });
    if running.is_some() {
        return running;
    }
    let owner = crate::privilege::extension_owner();
    // what the caller may not have seen yet: every transaction from its snapshot's xmin on (a
    // commit between this and the notifier's first look is announced, not lost)
    let from = Spi::get_one::<String>(
        "SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text",
    )
    .unwrap_or_else(|e| crate::error::spi_failed(e))?;
    // SAFETY: a backend global
    let db = unsafe { pg_sys::MyDatabaseId };
    start(
        &format!("{KIND} {}", db.to_u32()),
        KIND,
        "pg_storage_ext_feed_notifier_main",
        pg_sys::Datum::from(0),
        &format!("{} {} {from}", db.to_u32(), owner.to_u32()),
        BgWorkerStartTime::RecoveryFinished,
    )?
    .wait_for_startup()
    .ok()
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_storage_ext_feed_notifier_main(_arg: pg_sys::Datum) {
    unblock_signals();
    let [db, role, from] = numbers(BackgroundWorker::get_extra())[..] else {
        return;
    };
    BackgroundWorker::connect_worker_to_spi_by_oid(
        Some(pg_sys::Oid::from(db as u32)),
        Some(pg_sys::Oid::from(role as u32)),
    );
    // settings first (a database's or role's search_path never reaches the SQL below); then one
    // notifier per database: of two started at once (both connected, so both shown), the one
    // with the lower pid stays (not an advisory lock, which any session could take first)
    // (and a database's `SET role`, applied at connection, undone: the notifier is the owner)
    one_row(
        "SELECT pg_catalog.set_config('role', 'none', false), \
                pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false), \
                pg_catalog.set_config('lock_timeout', '1s', false), \
                pg_catalog.set_config('application_name', $1, false)",
        &[KIND.into()],
        |_| (),
    );
    if !oldest() {
        return;
    }
    // nothing seen yet from the starter's xmin on
    let mut since = format!("{from}:{from}:");
    // no feed for this long: leave (the feed that started it may not have committed yet)
    let mut without = std::time::Instant::now();
    let mut looked = std::time::Instant::now();
    while pause(EVERY) {
        if looked.elapsed() >= WANTED_EVERY {
            looked = std::time::Instant::now();
            if wanted_alone() || !oldest() {
                return;
            }
        }
        match one_row(
            "SELECT audit._feed_announce($1::pg_catalog.pg_snapshot)::text",
            &[since.as_str().into()],
            |row| row.get::<String>(1).ok().flatten(),
        ) {
            Some(next) => {
                since = next;
                without = std::time::Instant::now();
            }
            None if without.elapsed() > IDLE => return,
            None => {}
        }
    }
}

/// Whether this is the database's oldest notifier (by start, then pid): of two started at once
/// (both connected, so both shown) the younger leaves, and so does one that finds an older one
/// later (pids wrap around).
fn oldest() -> bool {
    one_row(
        "SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a, pg_catalog.pg_stat_activity me \
                             WHERE me.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() \
                               AND a.backend_type OPERATOR(pg_catalog.=) $1 \
                               AND a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database() \
                               AND a.pid OPERATOR(pg_catalog.<>) me.pid \
                               AND (a.backend_start OPERATOR(pg_catalog.<) me.backend_start \
                                    OR (a.backend_start OPERATOR(pg_catalog.=) me.backend_start \
                                        AND a.pid OPERATOR(pg_catalog.<) me.pid)))",
        &[KIND.into()],
        |row| row.get::<bool>(1).ok().flatten().unwrap_or(false),
    )
}

/// Whether a session wants the database without other connections: DROP DATABASE, ALTER DATABASE
/// RENAME or SET TABLESPACE, CREATE DATABASE from it as a template hold (or wait for) a lock on it
/// stronger than a connection's, and fail after 5 s while another backend is connected. The
/// notifier leaves then, if that session's role may do it (the database's owner, a member of it,
/// or a superuser: the lock is taken before the privilege is checked, and anyone's attempts must
/// not stop it); the next read of a feed, or the heartbeat job, starts it again.
fn wanted_alone() -> bool {
    one_row(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_locks l \
                          JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) l.objid \
                          JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid \
                          JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) a.usename \
                         WHERE l.locktype OPERATOR(pg_catalog.=) 'object' \
                           AND l.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_database'::pg_catalog.regclass \
                           AND d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database() \
                           AND l.mode OPERATOR(pg_catalog.=) ANY ('{ShareLock,ExclusiveLock,AccessExclusiveLock}') \
                           AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid() \
                           AND (r.rolsuper OR pg_catalog.pg_has_role(r.oid, d.datdba, 'MEMBER')))",
        &[],
        |row| row.get::<bool>(1).ok().flatten().unwrap_or(false),
    )
}

/// One change-feed action (`create`, `read`, `ack`, `drop`) for the role calling it: the feed
/// rows are written by the extension alone (its owner), so this switches to that role for the
/// action's SQL (`audit._feed_act`), passing who called. Not SECURITY DEFINER, which would hide
/// the caller: the caller is this function's `current_user`. A `read` returns the transactions
/// of the feed's window to return now (txid, position, commit time).
pub(crate) fn act(
    action: Option<&str>,
    name: Option<&str>,
    arg: Option<i64>,
    tables: Option<Vec<Option<pg_sys::Oid>>>,
    start: Option<&str>,
) -> Vec<(i64, i64, pgrx::datum::TimestampWithTimeZone)> {
    let caller = crate::privilege::current_user();
    crate::privilege::as_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT a.txid::pg_catalog.text::pg_catalog.int8, a.\"position\", a.committed_at \
                       FROM audit._feed_act($1, $2, $3, $4, $5, $6) AS a",
                    None,
                    &[
                        action.into(),
                        name.into(),
                        arg.into(),
                        tables.into(),
                        start.into(),
                        caller.into(),
                    ],
                )?
                .map(|row| {
                    Ok((
                        row.get::<i64>(1)?.unwrap_or_default(),
                        row.get::<i64>(2)?.unwrap_or_default(),
                        row.get::<pgrx::datum::TimestampWithTimeZone>(3)?
                            .unwrap_or_else(|| crate::error::internal("a window without a time")),
                    ))
                })
                .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        })
        .unwrap_or_else(|e| crate::error::spi_failed(e))
    })
}
