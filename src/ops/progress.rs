//! Progress of the extension's long operations (`storage.progress`): a table of slots in a named
//! dynamic shared memory segment (PostgreSQL's DSM registry: no `shared_preload_libraries`
//! needed), one per running operation in any session, and a NOTICE per batch at most once a
//! second. A slot is freed when its operation ends, when its transaction aborts (an error, a
//! cancel) and when its backend exits.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{RefCell, UnsafeCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SLOTS: usize = 128;
const TEXT: usize = 128;

#[repr(C)]
struct Slot {
    /// Odd while its owner writes it.
    seq: AtomicU64,
    pid: AtomicI32,
    database: AtomicU32,
    rows_done: AtomicI64,
    rows_total: AtomicI64,
    started: AtomicI64,
    updated: AtomicI64,
    operation: UnsafeCell<[u8; TEXT]>,
    target: UnsafeCell<[u8; TEXT]>,
    phase: UnsafeCell<[u8; TEXT]>,
}

#[repr(C)]
struct Table {
    slots: [Slot; SLOTS],
}

thread_local! {
    static TABLE: std::cell::Cell<*mut Table> = const { std::cell::Cell::new(std::ptr::null_mut()) };
    /// This backend's operations: slot -> (started, last notice, operation, target).
    static MINE: RefCell<HashMap<usize, Local>> = RefCell::new(HashMap::new());
}

struct Local {
    started: Instant,
    noticed: Option<Instant>,
    operation: String,
    target: String,
}

unsafe extern "C-unwind" fn init(ptr: *mut std::ffi::c_void) {
    // SAFETY: called by C with a fresh segment of size_of::<Table>() bytes; all-zero is a table
    // of free slots
    unsafe {
        crate::guard::callback(|| {
            std::ptr::write_bytes(ptr as *mut u8, 0, std::mem::size_of::<Table>())
        })
    };
}

unsafe extern "C-unwind" fn on_abort(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    // SAFETY: a transaction callback, called by C
    unsafe {
        crate::guard::callback(|| {
            if event == pg_sys::XactEvent::XACT_EVENT_ABORT
                || event == pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
            {
                free_all();
            }
        })
    }
}

unsafe extern "C-unwind" fn on_exit(_code: i32, _arg: pg_sys::Datum) {
    // SAFETY: an exit callback, called by C
    unsafe { crate::guard::callback(free_all) }
}

/// The shared table, attached (and the backend's cleanup registered) at the first use.
fn table() -> &'static Table {
    TABLE.with(|t| {
        if t.get().is_null() {
            let mut found = false;
            // SAFETY: the DSM registry creates the segment once (init zeroes it) and maps it
            // into this backend for its lifetime; the callbacks only free this backend's slots.
            unsafe {
                let p = pg_sys::GetNamedDSMSegment(
                    c"pg_storage_ext progress".as_ptr(),
                    std::mem::size_of::<Table>(),
                    Some(init),
                    &mut found,
                );
                pg_sys::RegisterXactCallback(Some(on_abort), std::ptr::null_mut());
                pg_sys::before_shmem_exit(Some(on_exit), pg_sys::Datum::from(0));
                t.set(p as *mut Table);
            }
        }
        // SAFETY: mapped for the backend's lifetime
        unsafe { &*t.get() }
    })
}

fn now() -> i64 {
    // SAFETY: reads the clock
    unsafe { pg_sys::GetCurrentTimestamp() }
}

/// Writes `s` (cut at TEXT - 1 bytes, on a character boundary) into a text field of a slot this
/// backend owns.
fn put(dst: &UnsafeCell<[u8; TEXT]>, s: &str) {
    let mut n = s.len().min(TEXT - 1);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    let mut buf = [0u8; TEXT];
    buf[..n].copy_from_slice(&s.as_bytes()[..n]);
    // SAFETY: only the owning backend writes a claimed slot; readers detect torn copies by seq
    unsafe { std::ptr::write_volatile(dst.get(), buf) };
}

fn get(src: &[u8; TEXT]) -> String {
    let n = src.iter().position(|b| *b == 0).unwrap_or(TEXT);
    String::from_utf8_lossy(&src[..n]).into_owned()
}

/// Writes our own slot between two bumps of its sequence number (readers retry while it is odd).
fn write_text(i: usize, f: impl FnOnce(&Slot)) {
    let slot = &table().slots[i];
    slot.seq.fetch_add(1, Ordering::AcqRel);
    f(slot);
    slot.seq.fetch_add(1, Ordering::AcqRel);
}

fn free(i: usize) {
    if i >= SLOTS {
        return;
    }
    let t = table();
    // SAFETY: reads this backend's pid
    let me = unsafe { pg_sys::MyProcPid };
    let _ = t.slots[i]
        .pid
        .compare_exchange(me, 0, Ordering::AcqRel, Ordering::Acquire);
    MINE.with(|m| m.borrow_mut().remove(&i));
}

fn free_all() {
    let mine: Vec<usize> = MINE.with(|m| m.borrow().keys().copied().collect());
    for i in mine {
        free(i);
    }
}

/// Starts reporting an operation; None when every slot is taken (the operation runs anyway).
pub(crate) fn start(operation: &str, target: &str, rows_total: i64) -> Option<usize> {
    let t = table();
    // SAFETY: reads backend globals
    let (me, db) = unsafe { (pg_sys::MyProcPid, pg_sys::MyDatabaseId.to_u32()) };
    let i = (0..SLOTS).find(|i| {
        t.slots[*i]
            .pid
            .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    })?;
    let at = now();
    write_text(i, |s| {
        s.database.store(db, Ordering::Relaxed);
        s.rows_done.store(0, Ordering::Relaxed);
        s.rows_total.store(rows_total, Ordering::Relaxed);
        s.started.store(at, Ordering::Relaxed);
        s.updated.store(at, Ordering::Relaxed);
        put(&s.operation, operation);
        put(&s.target, target);
        put(&s.phase, "starting");
    });
    MINE.with(|m| {
        m.borrow_mut().insert(
            i,
            Local {
                started: Instant::now(),
                // the first NOTICE a second in: a short operation says nothing
                noticed: Some(Instant::now()),
                operation: operation.to_owned(),
                target: target.to_owned(),
            },
        )
    });
    Some(i)
}

/// Records rows done (and the phase); a NOTICE at most once a second.
pub(crate) fn update(slot: Option<usize>, rows_done: i64, phase: &str) {
    let Some(i) = slot else { return };
    if !MINE.with(|m| m.borrow().contains_key(&i)) {
        return;
    }
    let at = now();
    write_text(i, |s| {
        s.rows_done.store(rows_done, Ordering::Relaxed);
        s.updated.store(at, Ordering::Relaxed);
        put(&s.phase, phase);
    });
    let total = table().slots[i].rows_total.load(Ordering::Relaxed);
    let line = MINE.with(|m| {
        let mut m = m.borrow_mut();
        let l = m.get_mut(&i)?;
        if l.noticed
            .is_some_and(|n| n.elapsed() < Duration::from_secs(1))
        {
            return None;
        }
        l.noticed = Some(Instant::now());
        Some(pg_storage_core::report::progress_line(
            &l.operation,
            &l.target,
            phase,
            rows_done,
            total,
            l.started.elapsed(),
        ))
    });
    if let Some(line) = line {
        pgrx::notice!("{line}");
    }
}

/// Records the rows an operation now expects in all (an estimate made once it started).
pub(crate) fn set_total(slot: Option<usize>, rows_total: i64) {
    let Some(i) = slot else { return };
    if MINE.with(|m| m.borrow().contains_key(&i)) {
        table().slots[i]
            .rows_total
            .store(rows_total, Ordering::Relaxed);
    }
}

/// Ends an operation: its slot is free.
pub(crate) fn end(slot: Option<usize>) {
    if let Some(i) = slot {
        free(i);
    }
}

/// Internal: starts reporting a long operation of the extension (storage.progress, NOTICEs);
/// returns its handle for _progress_update / _progress_end (NULL when no slot is free).
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn _progress_start(operation: &str, target: &str, rows_total: i64) -> Option<i32> {
    start(operation, target, rows_total).map(|i| i as i32)
}

/// Internal: records the rows an operation has done and its phase (strict: a NULL handle, when
/// no slot was free, does nothing).
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn _progress_update(handle: i32, rows_done: i64, phase: &str) {
    update(slot(handle), rows_done, phase);
}

/// A handle from SQL as a slot of this table (anything else is no slot).
fn slot(handle: i32) -> Option<usize> {
    usize::try_from(handle).ok().filter(|h| *h < SLOTS)
}

/// Internal: ends an operation's reporting.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn _progress_end(handle: i32) {
    end(slot(handle));
}

/// Internal: the running operations of every session (storage.progress reads it).
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn _progress() -> TableIterator<
    'static,
    (
        name!(pid, i32),
        name!(database, pg_sys::Oid),
        name!(operation, String),
        name!(target, String),
        name!(phase, String),
        name!(rows_done, i64),
        name!(rows_total, Option<i64>),
        name!(started, pgrx::datum::TimestampWithTimeZone),
        name!(updated, pgrx::datum::TimestampWithTimeZone),
    ),
> {
    let t = table();
    let mut rows = Vec::new();
    for s in &t.slots {
        for _ in 0..100 {
            let before = s.seq.load(Ordering::Acquire);
            let pid = s.pid.load(Ordering::Acquire);
            if pid == 0 {
                break;
            }
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            // SAFETY: byte copies of the text fields; torn copies are detected by seq
            let (operation, target, phase) = unsafe {
                (
                    std::ptr::read_volatile(s.operation.get()),
                    std::ptr::read_volatile(s.target.get()),
                    std::ptr::read_volatile(s.phase.get()),
                )
            };
            let row = (
                pid,
                pg_sys::Oid::from(s.database.load(Ordering::Relaxed)),
                get(&operation),
                get(&target),
                get(&phase),
                s.rows_done.load(Ordering::Relaxed),
                Some(s.rows_total.load(Ordering::Relaxed)).filter(|t| *t >= 0),
                s.started.load(Ordering::Relaxed),
                s.updated.load(Ordering::Relaxed),
            );
            if s.seq.load(Ordering::Acquire) == before {
                let ts = |v: i64| {
                    // SAFETY: a TimestampTz written by GetCurrentTimestamp
                    unsafe {
                        pgrx::datum::TimestampWithTimeZone::from_datum(
                            pg_sys::Datum::from(v),
                            false,
                        )
                    }
                    .unwrap_or_else(|| crate::error::internal("progress timestamp"))
                };
                rows.push((
                    row.0,
                    row.1,
                    row.2,
                    row.3,
                    row.4,
                    row.5,
                    row.6,
                    ts(row.7),
                    ts(row.8),
                ));
                break;
            }
        }
    }
    TableIterator::new(rows)
}
