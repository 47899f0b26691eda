//! PostgreSQL's statement timer (utils/timeout.h, which pgrx does not bind), for work that no
//! client statement times: a nested query that needs a limit of its own (a custom metric's), and
//! a background worker's queries (PostgreSQL arms `statement_timeout` only for a client's
//! statements). The caller's timer is read before and put back after; each call goes through
//! pgrx's guard (an elog(ERROR) in them becomes a Rust panic, never a longjmp over Rust frames).

use pgrx::pg_sys;

/// `STATEMENT_TIMEOUT` of `enum TimeoutId`.
const STATEMENT_TIMEOUT: u32 = 3;

mod raw {
    use pgrx::pg_sys::TimestampTz;
    unsafe extern "C-unwind" {
        pub(super) fn enable_timeout_at(id: u32, fin_time: TimestampTz);
        pub(super) fn disable_timeout(id: u32, keep_indicator: bool);
        pub(super) fn get_timeout_active(id: u32) -> bool;
        pub(super) fn get_timeout_finish_time(id: u32) -> TimestampTz;
    }
}

unsafe fn enable_timeout_at(id: u32, fin_time: pg_sys::TimestampTz) {
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| raw::enable_timeout_at(id, fin_time)) }
}
unsafe fn disable_timeout(id: u32, keep_indicator: bool) {
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| raw::disable_timeout(id, keep_indicator)) }
}
unsafe fn get_timeout_active(id: u32) -> bool {
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| raw::get_timeout_active(id)) }
}
unsafe fn get_timeout_finish_time(id: u32) -> pg_sys::TimestampTz {
    unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| raw::get_timeout_finish_time(id)) }
}

/// A statement timer armed by [`arm`]: disarm it on every path, success or error.
pub(crate) struct Armed {
    /// Whether this limit is the one armed (the caller's, if any, came later than it).
    ours: bool,
    /// The caller's timer, put back by `disarm`.
    outer: Option<pg_sys::TimestampTz>,
    deadline: pg_sys::TimestampTz,
}

/// Arms the statement timer `ms` milliseconds from now, unless the caller's fires sooner.
pub(crate) fn arm(ms: i32) -> Armed {
    // SAFETY: the backend's timeout module, on its own thread
    unsafe {
        let outer = get_timeout_active(STATEMENT_TIMEOUT)
            .then(|| get_timeout_finish_time(STATEMENT_TIMEOUT));
        let deadline = pg_sys::GetCurrentTimestamp() + i64::from(ms.max(1)) * 1000;
        let ours = outer.is_none_or(|finish| finish > deadline);
        if ours {
            enable_timeout_at(STATEMENT_TIMEOUT, deadline);
        }
        Armed {
            ours,
            outer,
            deadline,
        }
    }
}

impl Armed {
    /// Puts the caller's timer back; true when this limit was reached. Then a cancel it
    /// raised but nothing has processed yet (work without an interrupt check, or ended by
    /// another error) is withdrawn: it would otherwise cancel the caller's next statement.
    pub(crate) fn disarm(self) -> bool {
        // SAFETY: undoes what arm did, on the same thread
        unsafe {
            if !self.ours {
                return false;
            }
            disable_timeout(STATEMENT_TIMEOUT, false);
            let reached = pg_sys::GetCurrentTimestamp() >= self.deadline;
            if reached {
                pg_sys::QueryCancelPending = 0;
            }
            if let Some(finish) = self.outer {
                enable_timeout_at(STATEMENT_TIMEOUT, finish);
            }
            reached
        }
    }
}
