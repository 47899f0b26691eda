//! The autonomous transaction that keeps a failed migration's record (`storage._autonomous`):
//! SQL committed by a worker of its own, whatever the caller's transaction does.

use crate::worker::{connect_as, numbers, start, unblock_signals};
use pgrx::bgworkers::{BackgroundWorker, BgWorkerStartTime};
use pgrx::pg_sys;
use pgrx::prelude::*;

/// Internal: runs `sql` in a transaction of its own (an autonomous transaction: it commits
/// whatever the caller's transaction does), in a background worker connected as the current
/// role; waits for it. True when it committed. Used to keep a failed migration's record.
#[pg_extern(volatile, strict)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn _autonomous(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    // SAFETY: a segment of this transaction's resource owner, written before the worker starts,
    // read after it stopped; byte 0 is the worker's verdict, the SQL follows, NUL-terminated.
    unsafe {
        let seg = pg_sys::dsm_create(bytes.len() + 2, 0);
        let base = pg_sys::dsm_segment_address(seg) as *mut u8;
        *base = 0;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(1), bytes.len());
        *base.add(1 + bytes.len()) = 0;
        let extra = format!(
            "{} {}",
            pg_sys::MyDatabaseId.to_u32(),
            pg_sys::GetUserId().to_u32()
        );
        let handle = pg_sys::dsm_segment_handle(seg);
        let ok = match start(
            "pg_storage_ext autonomous transaction",
            "pg_storage_ext autonomous",
            "pg_storage_ext_autonomous_main",
            pg_sys::Datum::from(handle),
            &extra,
            BgWorkerStartTime::RecoveryFinished,
        ) {
            Some(w) => w.wait_for_shutdown().is_ok() && *base == 1,
            None => false,
        };
        pg_sys::dsm_detach(seg);
        ok
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_storage_ext_autonomous_main(arg: pg_sys::Datum) {
    unblock_signals();
    let [db, role] = numbers(BackgroundWorker::get_extra())[..] else {
        return;
    };
    connect_as(db, role);
    // SAFETY: the segment the caller keeps until this worker has stopped
    unsafe {
        let seg = pg_sys::dsm_attach(arg.value() as pg_sys::dsm_handle);
        if seg.is_null() {
            return;
        }
        let base = pg_sys::dsm_segment_address(seg) as *mut u8;
        let sql = std::ffi::CStr::from_ptr(base.add(1) as *const std::ffi::c_char)
            .to_string_lossy()
            .into_owned();
        BackgroundWorker::transaction(|| {
            Spi::run(&sql).unwrap_or_else(|e| crate::error::spi_failed(e));
        });
        *base = 1;
        pg_sys::dsm_detach(seg);
    }
}
