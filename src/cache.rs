//! The one cache-invalidation helper: per-backend caches ([`Cache`]) of what is built from the
//! catalog (trigger plans, capture configuration) are made under the [`epoch`] and dropped when
//! it moved. PostgreSQL's invalidation messages move it: any relcache invalidation (DDL on any
//! relation, and the explicit ones [`invalidate`] sends when the extension's configuration
//! tables change), and changes to types, text search configurations and roles (a renamed role).

use pgrx::pg_sys;
use std::cell::Cell;

/// The one cache type: entries of one generation of an invalidation counter (the [`epoch`] for
/// what is built from the catalog), bounded, least recently used out first.
pub(crate) use pg_storage_core::cache::Cache;

thread_local! {
    static EPOCH: Cell<u64> = const { Cell::new(0) };
    static CALLBACKS: Cell<bool> = const { Cell::new(false) };
}

fn bump() {
    EPOCH.with(|e| e.set(e.get().wrapping_add(1)));
}

unsafe extern "C-unwind" fn bump_rel(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    // SAFETY: an invalidation callback, called by C
    unsafe { crate::guard::callback(bump) }
}

unsafe extern "C-unwind" fn bump_syscache(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    // SAFETY: an invalidation callback, called by C
    unsafe { crate::guard::callback(bump) }
}

/// The current invalidation epoch (registers the callbacks at the first call of the backend).
pub(crate) fn epoch() -> u64 {
    if !CALLBACKS.with(|c| c.replace(true)) {
        // SAFETY: backend-lifetime callbacks that only bump a counter.
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(Some(bump_rel), pg_sys::Datum::from(0));
            for cache in [
                pg_sys::SysCacheIdentifier::TYPEOID,
                pg_sys::SysCacheIdentifier::TSCONFIGOID,
                pg_sys::SysCacheIdentifier::AUTHOID,
            ] {
                pg_sys::CacheRegisterSyscacheCallback(
                    cache as i32,
                    Some(bump_syscache),
                    pg_sys::Datum::from(0),
                );
            }
        }
    }
    EPOCH.with(Cell::get)
}

/// Queues a relcache invalidation of `rel` (sent to every backend at commit, seen by this one at
/// the next command): caches built from a configuration table are rebuilt after it changed.
pub(crate) fn invalidate(rel: pg_sys::Relation) {
    // SAFETY: an open relation, given by the trigger manager.
    unsafe { pg_sys::CacheInvalidateRelcache(rel) };
}
