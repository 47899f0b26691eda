//! Materialized views capability. The orchestration (registration, change tracking, refresh_due,
//! status) is SQL in `sql/matview.sql`; this holds what SQL cannot do.

use crate::ident::Regclass;
use pgrx::pg_sys;
use pgrx::prelude::*;

/// Takes the EXCLUSIVE lock every `REFRESH MATERIALIZED VIEW` takes, without waiting: false when
/// another session holds a conflicting lock (a refresh is running). `LOCK TABLE … NOWAIT` does
/// not accept materialized views. The lock is held to the end of the transaction.
#[pg_extern(volatile, strict)]
pub(crate) fn _try_lock_exclusive(view: Regclass) -> bool {
    // SAFETY: a conditional lock request on a relation OID; never waits, never raises.
    unsafe { pg_sys::ConditionalLockRelationOid(view.0, pg_sys::ExclusiveLock as pg_sys::LOCKMODE) }
}
