//! `audit._capture()`: the AFTER … FOR EACH STATEMENT trigger that writes `audit.log`.
//!
//! One statement, whatever its row count, is one `INSERT … SELECT` into `audit.log`, run as the
//! extension owner ([`crate::privilege::as_owner`]) from a plan cached per trigger and row type;
//! key extraction (`image - non-key columns`), exclusion and the no-change filter are set-based
//! jsonb operators in it, `changed_columns` a call of `audit._changed_columns` per pair. The row
//! images come from one of two places ([`Images`]):
//! - inline, `to_jsonb` over the transition tables inside that INSERT, when converting the row
//!   type runs no user code ([`json_safe`]) — the usual case, one SPI execution;
//! - otherwise (a column type with a user-defined cast to json), first `array_agg(to_jsonb(t))`
//!   as the statement's own role, passed to the INSERT as arrays — two SPI executions, and the
//!   user's cast never runs with the owner's privileges.
//!
//! The statement's constants (time, transaction, users, application, client address, query)
//! are computed once by the trigger and passed as parameters, not evaluated by the plan.
//!
//! UPDATE pairs the old and new images by position: PostgreSQL appends a row's old and new
//! versions to the two transition tables together, so the n-th rows belong to the same row.

use super::{NEW_TABLE, OLD_TABLE};
use crate::error::raise;
use crate::privilege::{as_owner, current_user};
use pg_storage_core::audit::{logged, non_key, Options, Scope};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::trigger_support::{
    trigger_fired_after, trigger_fired_by_delete, trigger_fired_by_insert,
    trigger_fired_by_truncate, trigger_fired_by_update, trigger_fired_for_statement,
};
use pgrx::IntoDatum;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::hash::{Hash, Hasher};

const USAGE: &str =
    "Capture triggers are created by audit.enable(table); call it again to repair them.";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Insert,
    Update,
    Delete,
    Truncate,
}

/// The owner-side INSERT of each operation. Parameters: $1 role (oid), $2 table (oid),
/// $3 excluded columns, $4 non-key columns (NULL without a primary key), $5 capture_query,
/// $6 schema name, $7 table name, $8 new images, $9 old images, $10 logged columns in order,
/// $11 (TRUNCATE of a partition only) the partition's qualified name, and the statement's
/// constants, computed once by the trigger ([`constants`]): $12 ts, $13 txid, $14 db_user,
/// $15 role_name, $16 application_name, $17 client_addr, $18 query. $1 and $5 are no longer
/// read by the plan ($15 and $18 are made from them) but keep the numbering of the others.
const COLUMNS: &str =
    "ts, txid, table_oid, schema_name, table_name, op, pk, old_pk, old_row, new_row, \
     changed_columns, db_user, role_name, application_name, client_addr, query";

/// Where the row images come from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Images {
    /// `to_jsonb` over the transition tables inside the owner's INSERT (row types whose json
    /// conversion runs no user code).
    Inline,
    /// Arrays `$8` (new) and `$9` (old) built beforehand as the statement's role.
    Params,
}

fn agg(table: &str) -> String {
    format!("(SELECT pg_catalog.array_agg(pg_catalog.to_jsonb(t)) FROM {table} AS t)")
}

fn rows(table: &str, param: &str, images: Images) -> String {
    match images {
        Images::Inline => {
            format!("(SELECT pg_catalog.to_jsonb(t) AS f FROM {table} AS t OFFSET 0) AS r")
        }
        Images::Params => format!("pg_catalog.unnest({param}) AS r(f)"),
    }
}

fn log_sql(op: Op, images: Images) -> String {
    let (old, new) = match images {
        Images::Inline => (agg(OLD_TABLE), agg(NEW_TABLE)),
        Images::Params => ("$9".to_owned(), "$8".to_owned()),
    };
    let body = match op {
        Op::Insert => format!(
            "SELECT $12, $13, $2, $6, $7, 'INSERT', \
                    r.f OPERATOR(pg_catalog.-) $4, NULL, NULL, r.f OPERATOR(pg_catalog.-) $3, NULL, \
                    $14, $15, $16, $17, $18 \
               FROM {}",
            rows(NEW_TABLE, "$8", images)
        ),
        Op::Delete => format!(
            "SELECT $12, $13, $2, $6, $7, 'DELETE', \
                    r.f OPERATOR(pg_catalog.-) $4, NULL, r.f OPERATOR(pg_catalog.-) $3, NULL, NULL, \
                    $14, $15, $16, $17, $18 \
               FROM {}",
            rows(OLD_TABLE, "$9", images)
        ),
        Op::Update => format!(
            "SELECT $12, $13, $2, $6, $7, 'UPDATE', \
                    u.nk, NULLIF(u.ok, u.nk), u.o, u.n, \
                    audit._changed_columns(u.o, u.n, $10), \
                    $14, $15, $16, $17, $18 \
               FROM (SELECT p.o OPERATOR(pg_catalog.-) $4 AS ok, p.n OPERATOR(pg_catalog.-) $4 AS nk, \
                               p.o OPERATOR(pg_catalog.-) $3 AS o, p.n OPERATOR(pg_catalog.-) $3 AS n \
                          FROM ROWS FROM (pg_catalog.unnest({old}), pg_catalog.unnest({new})) AS p(o, n) \
                        OFFSET 0) AS u \
              WHERE u.o IS DISTINCT FROM u.n"
        ),
        Op::Truncate => "SELECT $12, $13, $2, $6, $7, 'TRUNCATE', NULL, NULL, \
                    CASE WHEN $11 IS NOT NULL THEN pg_catalog.jsonb_build_object('partition', $11) END, \
                    NULL, NULL, $14, $15, $16, $17, $18"
            .to_owned(),
    };
    format!("INSERT INTO audit.log ({COLUMNS}) {body}")
}

/// The invoker-side query of row images for [`Images::Params`] (None for TRUNCATE).
fn image_sql(op: Op) -> Option<String> {
    let null = "NULL::pg_catalog.jsonb[]";
    match op {
        Op::Insert => Some(format!("SELECT {}, {null}", agg(NEW_TABLE))),
        Op::Delete => Some(format!("SELECT {null}, {}", agg(OLD_TABLE))),
        Op::Update => Some(format!("SELECT {}, {}", agg(NEW_TABLE), agg(OLD_TABLE))),
        Op::Truncate => None,
    }
}

/// True when `to_jsonb` of a value of type `typid` runs no user-defined code: built-in types,
/// and domains, arrays and composites of them; a user type only without a cast to json (such a
/// cast is a function to_jsonb would call, here with the extension owner's privileges).
fn json_safe(typid: pg_sys::Oid, depth: u32) -> bool {
    if depth > 32 {
        return false;
    }
    // SAFETY: syscache lookups on type OIDs; the row type descriptor is released after use.
    unsafe {
        let base = pg_sys::getBaseType(typid);
        let elem = pg_sys::get_element_type(base);
        if elem != pg_sys::InvalidOid {
            return json_safe(elem, depth + 1);
        }
        if pg_sys::get_typ_typrelid(base) != pg_sys::InvalidOid {
            let desc = pg_sys::lookup_rowtype_tupdesc(base, -1);
            let safe = pgrx::PgTupleDesc::from_pg_unchecked(desc)
                .iter()
                .filter(|a| !a.attisdropped)
                .all(|a| json_safe(a.atttypid, depth + 1));
            pg_sys::DecrTupleDescRefCount(desc);
            return safe;
        }
        if base.to_u32() < pg_sys::FirstNormalObjectId {
            return true;
        }
        let mut func = pg_sys::InvalidOid;
        let path = pg_sys::find_coercion_pathway(
            pg_sys::JSONOID,
            base,
            pg_sys::CoercionContext::COERCION_EXPLICIT,
            &mut func,
        );
        path != pg_sys::CoercionPathType::COERCION_PATH_FUNC && func == pg_sys::InvalidOid
    }
}

const LOG_ARG_TYPES: [pg_sys::Oid; 18] = [
    pg_sys::OIDOID,
    pg_sys::OIDOID,
    pg_sys::TEXTARRAYOID,
    pg_sys::TEXTARRAYOID,
    pg_sys::BOOLOID,
    pg_sys::NAMEOID,
    pg_sys::NAMEOID,
    pg_sys::JSONBARRAYOID,
    pg_sys::JSONBARRAYOID,
    pg_sys::TEXTARRAYOID,
    pg_sys::TEXTOID,
    pg_sys::TIMESTAMPTZOID,
    pg_sys::XID8OID,
    pg_sys::NAMEOID,
    pg_sys::NAMEOID,
    pg_sys::TEXTOID,
    pg_sys::INETOID,
    pg_sys::TEXTOID,
];

/// What one capture trigger runs, planned for one row type of its table.
#[derive(Clone, Copy)]
struct TriggerPlan {
    fingerprint: u64,
    epoch: u64,
    images: Images,
    /// Inline: the owner's INSERT over the transition tables. Params: the image query.
    plan: pg_sys::SPIPlanPtr,
}

thread_local! {
    /// Owner-side INSERT plans with images as parameters, by operation (saved plans: the plan
    /// cache replans them when audit.log changes, e.g. a new partition).
    static LOG_PLANS: RefCell<HashMap<u8, pg_sys::SPIPlanPtr>> = RefCell::new(HashMap::new());
    /// Plans by trigger. A plan over a transition table is not invalidated by the plan cache
    /// when the table's row type changes: it is rebuilt when the row type's fingerprint or the
    /// invalidation epoch (casts, types, relations) changed.
    static TRIGGER_PLANS: RefCell<HashMap<pg_sys::Oid, TriggerPlan>> = RefCell::new(HashMap::new());
    static EPOCH: Cell<u64> = const { Cell::new(0) };
    static CALLBACKS: Cell<bool> = const { Cell::new(false) };
    /// (transaction, command after the write, table) of the last whole-table TRUNCATE logged.
    /// TRUNCATE of a partitioned table fires the trigger of every partition too, right after
    /// the parent's (no command in between): those are not logged again.
    static LAST_TRUNCATE: Cell<(u32, u32, pg_sys::Oid)> =
        const { Cell::new((0, 0, pg_sys::InvalidOid)) };
    /// inet_client_addr() of this backend (fixed for its life), kept in TopMemoryContext.
    static CLIENT_ADDR: Cell<Option<Option<pg_sys::Datum>>> = const { Cell::new(None) };
}

/// The statement's constants of a log row, $12..$18 of the log INSERT: what
/// statement_timestamp(), pg_current_xact_id(), SESSION_USER, pg_get_userbyid(actor),
/// current_setting('application_name'), inet_client_addr() and current_query() return, computed
/// once per statement rather than by the plan.
fn constants(actor: pg_sys::Oid, capture_query: bool) -> [Option<pg_sys::Datum>; 7] {
    let user_name = |role: pg_sys::Oid| {
        // SAFETY: a syscache lookup; NULL (noerr) for a role dropped meanwhile.
        let n = unsafe { pg_sys::GetUserNameFromId(role, true) };
        if n.is_null() {
            format!("unknown (OID={})", role.to_u32())
        } else {
            cstr(n)
        }
    };
    // SAFETY: transaction and session state getters; the GUC name is a literal; the client
    // address is computed once per backend into TopMemoryContext.
    unsafe {
        let ts = pg_sys::GetCurrentStatementStartTimestamp();
        let txid = pg_sys::GetTopFullTransactionId().value;
        let app = pg_sys::GetConfigOption(c"application_name".as_ptr(), true, false);
        let addr = CLIENT_ADDR.with(Cell::get).unwrap_or_else(|| {
            let old = pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
            let addr = pgrx::direct_function_call_as_datum(pg_sys::inet_client_addr, &[]);
            pg_sys::MemoryContextSwitchTo(old);
            CLIENT_ADDR.with(|c| c.set(Some(addr)));
            addr
        });
        let query = (capture_query && !pg_sys::debug_query_string.is_null())
            .then(|| cstr(pg_sys::debug_query_string));
        [
            Some(pg_sys::Datum::from(ts)),
            Some(pg_sys::Datum::from(txid)),
            Some(name_datum(&user_name(pg_sys::GetSessionUserId()))),
            Some(name_datum(&user_name(actor))),
            (!app.is_null())
                .then(|| cstr(app))
                .and_then(IntoDatum::into_datum),
            addr,
            query.and_then(IntoDatum::into_datum),
        ]
    }
}

unsafe extern "C-unwind" fn bump_rel(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    EPOCH.with(|e| e.set(e.get().wrapping_add(1)));
}

unsafe extern "C-unwind" fn bump_syscache(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    EPOCH.with(|e| e.set(e.get().wrapping_add(1)));
}

fn epoch() -> u64 {
    if !CALLBACKS.with(|c| c.replace(true)) {
        // SAFETY: backend-lifetime callbacks that only bump a counter.
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(Some(bump_rel), pg_sys::Datum::from(0));
            for cache in [
                pg_sys::SysCacheIdentifier::CASTSOURCETARGET,
                pg_sys::SysCacheIdentifier::TYPEOID,
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

/// Statement trigger body; reports problems with ereport, never returns an error.
pub(crate) fn capture(td: &pg_sys::TriggerData) {
    let event = td.tg_event;
    // SAFETY: PostgreSQL passes a valid trigger and relation.
    let (trigger, rel) = unsafe { (&*td.tg_trigger, td.tg_relation) };
    let tgname = cstr(trigger.tgname);
    if !trigger_fired_after(event) || !trigger_fired_for_statement(event) {
        raise(
            PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            format!(
                "audit._capture must be fired AFTER … FOR EACH STATEMENT (trigger \"{tgname}\")"
            ),
            None,
            Some(USAGE.into()),
        );
    }
    let op = if trigger_fired_by_insert(event) {
        Op::Insert
    } else if trigger_fired_by_update(event) {
        Op::Update
    } else if trigger_fired_by_delete(event) {
        Op::Delete
    } else if trigger_fired_by_truncate(event) {
        Op::Truncate
    } else {
        crate::error::internal("a trigger event that is none of INSERT, UPDATE, DELETE, TRUNCATE")
    };
    let args: Vec<String> = (0..trigger.tgnargs.max(0) as usize)
        // SAFETY: tgargs holds tgnargs NUL-terminated strings.
        .map(|i| cstr(unsafe { *trigger.tgargs.add(i) }))
        .collect();
    let options = Options::parse(&args).unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("audit capture trigger \"{tgname}\" has bad arguments: {e}"),
            None,
            Some(USAGE.into()),
        )
    });
    check_transition_tables(op, trigger, &tgname);
    // SAFETY: the relation is open for the trigger.
    if super::is_moving(unsafe { (*rel).rd_id }) {
        return; // rows the extension relocates (a partition drain) are not changes
    }
    let actor = current_user();
    // SAFETY: the relation is open for the trigger.
    let relid = unsafe { (*rel).rd_id };

    // SAFETY: an SPI connection for this call; PostgreSQL's abort cleanup closes it on error.
    unsafe {
        if pg_sys::SPI_connect() < 0 {
            crate::error::internal("SPI_connect failed");
        }
    }
    let table = match options.scope {
        Scope::Table => Some(relid),
        Scope::Partition => as_owner(|| audited_ancestor(relid)),
    };
    if let Some(table) = table {
        // A TRUNCATE right after a whole-table TRUNCATE of the same table is its partitions'.
        if op != Op::Truncate || truncate_key(table) != LAST_TRUNCATE.with(Cell::get) {
            write(td, op, &options, table, actor);
        }
    }
    // SAFETY: closes the connection opened above.
    unsafe {
        pg_sys::SPI_finish();
    }
    if op == Op::Truncate && table == Some(relid) {
        // A whole-table TRUNCATE: the partitions' triggers that follow skip it.
        LAST_TRUNCATE.with(|l| l.set(truncate_key(relid)));
    }
}

fn cstr(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated string from PostgreSQL.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn check_transition_tables(op: Op, trigger: &pg_sys::Trigger, tgname: &str) {
    let new = cstr(trigger.tgnewtable);
    let old = cstr(trigger.tgoldtable);
    let ok = match op {
        Op::Insert => new == NEW_TABLE,
        Op::Delete => old == OLD_TABLE,
        Op::Update => new == NEW_TABLE && old == OLD_TABLE,
        Op::Truncate => true,
    };
    if !ok {
        raise(
            PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            format!("audit capture trigger \"{tgname}\" lacks its transition tables"),
            Some(format!(
                "It must declare REFERENCING NEW TABLE AS {NEW_TABLE} and/or OLD TABLE AS {OLD_TABLE}."
            )),
            Some(USAGE.into()),
        );
    }
}

/// The nearest audited ancestor of a partition; None once it is detached from it.
fn audited_ancestor(relid: pg_sys::Oid) -> Option<pg_sys::Oid> {
    let sql = c"SELECT a.relid FROM pg_catalog.pg_partition_ancestors($1) WITH ORDINALITY AS a(relid, n) \
                 JOIN audit._tracked t ON t.table_name OPERATOR(pg_catalog.=) a.relid \
                WHERE a.relid OPERATOR(pg_catalog.<>) $1 ORDER BY a.n LIMIT 1";
    let mut types = [pg_sys::REGCLASSOID];
    let mut values = [pg_sys::Datum::from(relid)];
    // SAFETY: an SPI query with one typed parameter on the open connection.
    unsafe {
        let rc = pg_sys::SPI_execute_with_args(
            sql.as_ptr(),
            1,
            types.as_mut_ptr(),
            values.as_mut_ptr(),
            std::ptr::null(),
            true,
            1,
        );
        if rc != pg_sys::SPI_OK_SELECT as i32 || pg_sys::SPI_processed == 0 {
            return None;
        }
        let table = &*pg_sys::SPI_tuptable;
        let mut isnull = false;
        let d = pg_sys::SPI_getbinval(*table.vals, table.tupdesc, 1, &mut isnull);
        (!isnull).then(|| pg_sys::Oid::from(d.value() as u32))
    }
}

/// Where a TRUNCATE of `table` stands: transaction, command, table.
fn truncate_key(table: pg_sys::Oid) -> (u32, u32, pg_sys::Oid) {
    // SAFETY: transaction-state getters.
    unsafe {
        (
            pg_sys::GetTopTransactionIdIfAny().into_inner(),
            pg_sys::GetCurrentCommandId(false),
            table,
        )
    }
}

/// Live columns of the relation in order, its primary-key columns, and a fingerprint of its row
/// type (names, types, dropped columns).
fn describe(rel: pg_sys::Relation) -> (Vec<String>, Vec<String>, u64) {
    let mut columns = Vec::new();
    let mut key = Vec::new();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    // SAFETY: the trigger's relation is open; its descriptor and key bitmap come from relcache.
    unsafe {
        let desc = pgrx::PgTupleDesc::from_pg_unchecked((*rel).rd_att);
        let pk = pg_sys::RelationGetIndexAttrBitmap(
            rel,
            pg_sys::IndexAttrBitmapKind::INDEX_ATTR_BITMAP_PRIMARY_KEY,
        );
        for a in desc.iter() {
            let name = pg_sys::name_data_to_str(&a.attname).to_owned();
            (
                name.as_str(),
                a.atttypid.to_u32(),
                a.atttypmod,
                a.attisdropped,
            )
                .hash(&mut hasher);
            if a.attisdropped {
                continue;
            }
            let member = i32::from(a.attnum) - pg_sys::FirstLowInvalidHeapAttributeNumber;
            if !pk.is_null() && pg_sys::bms_is_member(member, pk) {
                key.push(name.clone());
            }
            columns.push(name);
        }
    }
    (columns, key, hasher.finish())
}

/// A saved plan for `sql` with parameter types `types`.
fn prepare(sql: &str, types: &[pg_sys::Oid]) -> pg_sys::SPIPlanPtr {
    let c = CString::new(sql).unwrap_or_else(|_| crate::error::internal("NUL in capture SQL"));
    // SAFETY: prepares and saves a plan on the open SPI connection.
    unsafe {
        let plan = pg_sys::SPI_prepare(c.as_ptr(), types.len() as i32, types.as_ptr().cast_mut());
        if plan.is_null() || pg_sys::SPI_keepplan(plan) != 0 {
            crate::error::internal("could not prepare the audit capture query");
        }
        plan
    }
}

/// A `name` datum (palloc'd NameData).
fn name_datum(value: &str) -> pg_sys::Datum {
    let c = CString::new(value).unwrap_or_else(|_| crate::error::internal("NUL in a name"));
    // SAFETY: NameData is NAMEDATALEN bytes; namestrcpy truncates and NUL-terminates.
    unsafe {
        let p = pg_sys::palloc0(pg_sys::NAMEDATALEN as usize).cast::<pg_sys::NameData>();
        pg_sys::namestrcpy(p, c.as_ptr());
        pg_sys::Datum::from(p)
    }
}

fn execute(
    plan: pg_sys::SPIPlanPtr,
    values: &mut [pg_sys::Datum],
    nulls: &[std::ffi::c_char],
    read_only: bool,
) -> i32 {
    // SAFETY: a saved plan with as many parameters as values given.
    unsafe {
        pg_sys::SPI_execute_plan(
            plan,
            if values.is_empty() {
                std::ptr::null_mut()
            } else {
                values.as_mut_ptr()
            },
            if nulls.is_empty() {
                std::ptr::null()
            } else {
                nulls.as_ptr()
            },
            read_only,
            0,
        )
    }
}

/// The plan of this trigger for the relation's current row type.
fn trigger_plan(
    td: &pg_sys::TriggerData,
    op: Op,
    fingerprint: u64,
    columns_safe: impl Fn() -> bool,
) -> TriggerPlan {
    // SAFETY: the trigger is valid for the call.
    let tgoid = unsafe { (*td.tg_trigger).tgoid };
    let epoch = epoch();
    if let Some(tp) = TRIGGER_PLANS.with(|p| p.borrow().get(&tgoid).copied()) {
        if tp.fingerprint == fingerprint && tp.epoch == epoch {
            return tp;
        }
    }
    TRIGGER_PLANS.with(|p| {
        let mut p = p.borrow_mut();
        let stale: Vec<pg_sys::Oid> = if p.len() >= 512 {
            p.keys().copied().collect()
        } else {
            p.get(&tgoid).map(|_| tgoid).into_iter().collect()
        };
        for k in stale {
            if let Some(old) = p.remove(&k) {
                // SAFETY: a plan saved by us, no longer used.
                unsafe { pg_sys::SPI_freeplan(old.plan) };
            }
        }
    });
    let images = if columns_safe() {
        Images::Inline
    } else {
        Images::Params
    };
    let plan = match images {
        Images::Inline => as_owner(|| prepare(&log_sql(op, Images::Inline), &LOG_ARG_TYPES)),
        Images::Params => prepare(
            &image_sql(op).unwrap_or_else(|| crate::error::internal("no image query for TRUNCATE")),
            &[],
        ),
    };
    let tp = TriggerPlan {
        fingerprint,
        epoch,
        images,
        plan,
    };
    TRIGGER_PLANS.with(|p| p.borrow_mut().insert(tgoid, tp));
    tp
}

fn write(
    td: &pg_sys::TriggerData,
    op: Op,
    options: &Options,
    table: pg_sys::Oid,
    actor: pg_sys::Oid,
) {
    let rel = td.tg_relation;
    let (columns, key, fingerprint) = describe(rel);
    // SAFETY: the trigger's relation is open.
    let relid = unsafe { (*rel).rd_id };
    let mut new_images = None;
    let mut old_images = None;
    let mut inline_plan = None;
    if op != Op::Truncate {
        // SAFETY: registers the transition tables of this trigger call on our connection.
        unsafe {
            pg_sys::SPI_register_trigger_data(std::ptr::from_ref(td).cast_mut());
        }
        let safe = || {
            // SAFETY: the relation's descriptor is valid for the call.
            let desc = unsafe { pgrx::PgTupleDesc::from_pg_unchecked((*rel).rd_att) };
            desc.iter()
                .filter(|a| !a.attisdropped)
                .all(|a| json_safe(a.atttypid, 0))
        };
        let tp = trigger_plan(td, op, fingerprint, safe);
        match tp.images {
            Images::Inline => inline_plan = Some(tp.plan),
            Images::Params => {
                // Row images as the statement's role.
                if execute(tp.plan, &mut [], &[], true) != pg_sys::SPI_OK_SELECT as i32 {
                    crate::error::internal("the row-image query failed");
                }
                // SAFETY: the result of the query just run, valid until SPI_finish.
                unsafe {
                    let result = &*pg_sys::SPI_tuptable;
                    let (mut new_null, mut old_null) = (false, false);
                    let new = pg_sys::SPI_getbinval(*result.vals, result.tupdesc, 1, &mut new_null);
                    let old = pg_sys::SPI_getbinval(*result.vals, result.tupdesc, 2, &mut old_null);
                    new_images = (!new_null).then_some(new);
                    old_images = (!old_null).then_some(old);
                }
                if new_images.is_none() && old_images.is_none() {
                    return; // the statement changed no row
                }
            }
        }
    }
    // SAFETY: syscache lookups of the audited table's names.
    let (schema, name) = unsafe {
        let rel_name = pg_sys::get_rel_name(table);
        if rel_name.is_null() {
            crate::error::internal("the audited table vanished");
        }
        (
            cstr(pg_sys::get_namespace_name(pg_sys::get_rel_namespace(table))),
            cstr(rel_name),
        )
    };
    let partition = (op == Op::Truncate && relid != table).then(|| crate::ident::qualified(relid));
    let non_key_columns = (!key.is_empty()).then(|| non_key(&columns, &key));
    let logged_columns = logged(&columns, &options.exclude);
    let datum = |d: Option<pg_sys::Datum>| (d.unwrap_or(pg_sys::Datum::from(0)), d.is_none());
    let params = [
        datum(Some(pg_sys::Datum::from(actor))),
        datum(Some(pg_sys::Datum::from(table))),
        datum(options.exclude.clone().into_datum()),
        datum(non_key_columns.and_then(IntoDatum::into_datum)),
        datum(options.capture_query.into_datum()),
        datum(Some(name_datum(&schema))),
        datum(Some(name_datum(&name))),
        datum(new_images),
        datum(old_images),
        datum(logged_columns.into_datum()),
        datum(partition.and_then(IntoDatum::into_datum)),
    ];
    let params: Vec<(pg_sys::Datum, bool)> = params
        .into_iter()
        .chain(constants(actor, options.capture_query).map(datum))
        .collect();
    let mut values: Vec<pg_sys::Datum> = params.iter().map(|p| p.0).collect();
    let nulls: Vec<std::ffi::c_char> = params
        .iter()
        .map(|p| {
            if p.1 {
                b'n' as std::ffi::c_char
            } else {
                b' ' as std::ffi::c_char
            }
        })
        .collect();
    as_owner(|| {
        let plan = inline_plan.unwrap_or_else(|| {
            LOG_PLANS.with(|p| {
                *p.borrow_mut()
                    .entry(op as u8)
                    .or_insert_with(|| prepare(&log_sql(op, Images::Params), &LOG_ARG_TYPES))
            })
        });
        if execute(plan, &mut values, &nulls, false) != pg_sys::SPI_OK_INSERT as i32 {
            crate::error::internal("the audit log INSERT did not run");
        }
    });
}

/// The member `key` of an object container, if present.
fn member(container: *mut pg_sys::JsonbContainer, key: &str) -> Option<pg_sys::JsonbValue> {
    let mut value = pg_sys::JsonbValue::default();
    // SAFETY: a valid container; the key bytes outlive the call; the result is written into
    // `value` (NULL when absent or when the container is not an object).
    let found = unsafe {
        pg_sys::getKeyJsonValueFromContainer(
            container,
            key.as_ptr().cast(),
            i32::try_from(key.len()).unwrap_or(i32::MAX),
            &mut value,
        )
    };
    (!found.is_null()).then_some(value)
}

/// jsonb equality of two members, as `=` on the jsonb values they are (numbers by value).
fn same(a: &pg_sys::JsonbValue, b: &pg_sys::JsonbValue) -> bool {
    use pg_sys::jbvType as t;
    if a.type_ != b.type_ {
        return false;
    }
    // SAFETY: each union field is read for the type the value carries.
    unsafe {
        match a.type_ {
            t::jbvNull => true,
            t::jbvBool => a.val.boolean == b.val.boolean,
            t::jbvString => {
                let (x, y) = (a.val.string, b.val.string);
                x.len == y.len
                    && std::slice::from_raw_parts(x.val.cast::<u8>(), x.len.max(0) as usize)
                        == std::slice::from_raw_parts(y.val.cast::<u8>(), y.len.max(0) as usize)
            }
            t::jbvNumeric => pgrx::direct_function_call::<bool>(
                pg_sys::numeric_eq,
                &[
                    Some(pg_sys::Datum::from(a.val.numeric)),
                    Some(pg_sys::Datum::from(b.val.numeric)),
                ],
            )
            .unwrap_or(false),
            t::jbvBinary => {
                pg_sys::compareJsonbContainers(a.val.binary.data, b.val.binary.data) == 0
            }
            _ => false,
        }
    }
}

/// The columns whose values differ between two row images, in the order given.
pub(crate) fn changed_columns(
    old: &crate::jsonb::datum::JsonbRef,
    new: &crate::jsonb::datum::JsonbRef,
    columns: Vec<Option<String>>,
) -> Vec<String> {
    let (o, n) = (old.container(), new.container());
    columns
        .into_iter()
        .flatten()
        .filter(|c| match (member(o, c), member(n, c)) {
            (None, None) => false,
            (Some(x), Some(y)) => !same(&x, &y),
            _ => true,
        })
        .collect()
}
