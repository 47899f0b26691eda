//! Materialized views capability. The orchestration (registration, change tracking, refresh_due,
//! status) is SQL in `sql/matview.sql`; this holds what SQL cannot do.

use crate::cache::Cache;
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

thread_local! {
    /// (subtransaction, source) already recorded in the top transaction (the cache's
    /// generation): one row per source per subtransaction is enough, since the row commits or
    /// rolls back with that subtransaction.
    static RECORDED: Cache<(u32, pg_sys::Oid), ()> = const { Cache::new(usize::MAX) };
}

/// Statement trigger on every source table of a registered matview: appends (source, top-level
/// xid, statement time) to `storage._matview_changes`, once per source per subtransaction. The row
/// is written straight into the heap (the table has no index, no trigger): no SPI, no planner, and
/// no privilege on the change table needed by the writer.
fn _matview_source_changed<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let td = trigger.trigger_data();
    // SAFETY: transaction-state getters and a heap insert into the extension's own table, opened
    // and locked as an INSERT would.
    unsafe {
        let source = (*td.tg_relation).rd_id;
        let fxid = pg_sys::GetTopFullTransactionId().value;
        let subxid = pg_sys::GetCurrentSubTransactionId();
        let mut fresh = false;
        RECORDED.with(|r| r.get_or_insert_with(fxid, &(subxid, source), || fresh = true));
        if !fresh {
            return Ok(None);
        }
        let nsp = pg_sys::get_namespace_oid(c"storage".as_ptr(), false);
        let relid = pg_sys::get_relname_relid(c"_matview_changes".as_ptr(), nsp);
        if relid == pg_sys::InvalidOid {
            crate::error::raise(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                "storage._matview_changes does not exist",
                Some("A change trigger of pg_storage_ext outlived its extension.".into()),
                Some("DROP TRIGGER pg_storage_ext_matview_changes ON the table, or reinstall pg_storage_ext.".into()),
            );
        }
        let rel = pg_sys::table_open(relid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
        let values = [
            pg_sys::Datum::from(source),
            pg_sys::Datum::from(fxid as i64),
            pg_sys::Datum::from(pg_sys::GetCurrentStatementStartTimestamp()),
        ];
        let nulls = [false; 3];
        let tuple = pg_sys::heap_form_tuple((*rel).rd_att, values.as_ptr(), nulls.as_ptr());
        pg_sys::simple_heap_insert(rel, tuple);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    }
    Ok(None)
}

crate::triggers::trigger_entry!(
    _matview_source_changed_wrapper,
    pg_finfo__matview_source_changed_wrapper,
    "storage._matview_source_changed",
    _matview_source_changed
);
