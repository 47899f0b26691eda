//! `audit._capture()`: the AFTER … FOR EACH STATEMENT trigger that writes the log.
//!
//! One statement, whatever its row count, is one `INSERT … SELECT` into `audit._log_row` (the
//! changed rows: the statement's id, the key's 64-bit hash, the images; for UPDATE the old image
//! and the changed columns only, `audit._delta`) and, when it wrote any, one row of
//! `audit._log_statement` pointing to its context (`audit._log_context`: the table's names and
//! columns, users, application, client address, stored once and cached here by id). Both run as
//! the extension owner ([`crate::privilege::as_owner`]) from plans cached per trigger; key
//! extraction (`image - non-key columns`), exclusion and the no-change filter are set-based
//! jsonb operators in it.
//!
//! The capture obeys the extension's configuration, not whoever made the trigger: the audited
//! table and its options come from `audit._tracked` (the table itself, or for a partition its
//! nearest audited ancestor), cached with the plan and rebuilt when the invalidation epoch moves
//! ([`crate::cache`]; a statement trigger on `audit._tracked` sends one at every change). A
//! trigger on a table that is not audited, or whose arguments differ from the configuration,
//! refuses the statement (39P01): the trigger's arguments are a dumped copy, checked, not obeyed.
//!
//! On Citus (docs/citus.md) the triggers are copied into every shard. A statement on a shard
//! is logged as its logical table ([`shard_target`]): a distributed table's in the log of the
//! node holding the shard, a reference table's only by the coordinator's copy, a TRUNCATE only by
//! the coordinator. A worker's configuration is `audit._citus_tracked` (by name); without an entry
//! there the shard's trigger, Citus's copy of the coordinator's, gives the options.
//!
//! Row images never run user-defined code: a row whose columns all have built-in types (or
//! domains, arrays and composites of them) is `to_jsonb(t)`; otherwise the columns of other
//! types are recorded as their type's output function prints them (`format('%s', v)`), never
//! through a cast a user defined to json.
//!
//! The statement's constants (time, transaction, context, query) are computed once by the
//! trigger and passed as parameters, not evaluated by the plan.
//!
//! UPDATE pairs the old and new images by position: PostgreSQL appends a row's old and new
//! versions to the two transition tables together, so the n-th rows belong to the same row.

use crate::cache::Cache;
use crate::error::raise;
use crate::ident::{literal, qualified, quote};
use crate::privilege::{as_log_writer, as_owner, current_user};
use pg_storage_core::audit::{logged, non_key, Options, Scope};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::trigger_support::{
    trigger_fired_after, trigger_fired_by_delete, trigger_fired_by_insert,
    trigger_fired_by_truncate, trigger_fired_by_update, trigger_fired_for_statement,
};
use pgrx::IntoDatum;
use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};
use std::rc::Rc;

mod legacy;

/// The capture trigger of TRUNCATE (BEFORE; AFTER when made before 0.3.0); the one after it,
/// `audit_capture_truncated`, checks that nothing changed the rows in between.
const TRUNCATE_CAPTURE: &str = "audit_capture_truncate";

/// Transition table names of the capture triggers (sql/audit.sql's audit._install_capture).
const NEW_TABLE: &str = "pg_storage_ext_new";
const OLD_TABLE: &str = "pg_storage_ext_old";

const USAGE: &str =
    "Capture triggers are created by audit.enable(table); call it again to repair them.";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Insert,
    Update,
    Delete,
    Truncate,
}

/// The parameters of a statement's log INSERT: $1 the statement's id, $2 its time, $3 its
/// transaction, $4 its context, $5 its text (with capture_query), $6 (TRUNCATE of a partition
/// only) the partition's qualified name, $7 the audited table, $8 the columns kept out of the
/// images, $9 the non-key columns (NULL without a primary key: no key hash), $10 (TRUNCATE
/// only) the relations whose rows the TRUNCATE logged already.
const LOG_ARG_TYPES: [pg_sys::Oid; 10] = [
    pg_sys::INT8OID,
    pg_sys::TIMESTAMPTZOID,
    pg_sys::XID8OID,
    pg_sys::INT8OID,
    pg_sys::TEXTOID,
    pg_sys::TEXTOID,
    pg_sys::OIDOID,
    pg_sys::TEXTARRAYOID,
    pg_sys::TEXTARRAYOID,
    pg_sys::OIDARRAYOID,
];

/// The context of a statement: $1 schema, $2 table, $3 db_user, $4 role_name, $5 application,
/// $6 client address, $7 logged columns, $8 non-key columns, $9 the seed of its id's hash, $10
/// the actor (JSON text; a database whose extension SQL predates the actor, 0.2.0's, has no
/// such argument: [`CONTEXT_SQL`] then).
/// (pg_storage_core::audit::actor_json keeps what jsonb refuses as strings; should its text still
/// not be jsonb, the actor is kept as one string rather than failing the writer's statement)
const CONTEXT_ACTOR_SQL: &str = "SELECT audit._context($1, $2, $3, $4, $5, $6, $7, $8, $9, \
     CASE WHEN pg_catalog.pg_input_is_valid($10, 'pg_catalog.jsonb') THEN $10::pg_catalog.jsonb \
          ELSE pg_catalog.to_jsonb($10) END)";
const CONTEXT_SQL: &str = "SELECT audit._context($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const CONTEXT_ARG_TYPES: [pg_sys::Oid; 10] = [
    pg_sys::NAMEOID,
    pg_sys::NAMEOID,
    pg_sys::NAMEOID,
    pg_sys::NAMEOID,
    pg_sys::TEXTOID,
    pg_sys::INETOID,
    pg_sys::TEXTARRAYOID,
    pg_sys::TEXTARRAYOID,
    pg_sys::INT8OID,
    pg_sys::TEXTOID,
];

/// The images of a transition table's rows, one row `f` each, as a FROM item.
fn rows(table: &str, image: &str) -> String {
    format!("(SELECT {image} AS f FROM {table} AS t OFFSET 0) AS r")
}

fn agg(table: &str, image: &str) -> String {
    format!("(SELECT pg_catalog.array_agg({image}) FROM {table} AS t)")
}

/// The log rows of removed rows (DELETE, TRUNCATE): the key's hash and the old image of each
/// row `r.f` of `from` ($8 the columns kept out of the images, $9 the non-key columns).
fn removed(from: &str) -> String {
    format!(
        "SELECT {ROW_ID}, $1, $2, {KEY_HASH}(r.f OPERATOR(pg_catalog.-) $9, 0), NULL, \
                r.f OPERATOR(pg_catalog.-) $8, NULL \
           FROM {from}"
    )
}

const ROW_ID: &str = "pg_catalog.nextval('audit.log_id_seq'::pg_catalog.regclass)";
const KEY_HASH: &str = "pg_catalog.jsonb_hash_extended";

/// The log INSERT of a statement of `op` on `table`: one statement in both tables. Its changed
/// rows go into audit._log_row (INSERT keeps the new image, DELETE the old one, UPDATE the old
/// image and the changed columns' new values, `audit._delta`, and no row when nothing changed;
/// each row takes its id from the log's sequence, so ids keep the order rows were written in),
/// and its statement row into audit._log_statement when it wrote any. TRUNCATE, fired before
/// the rows go, logs every row of `truncated` (the FROM item of the table it empties) as a
/// DELETE does and its statement row with `{"rows": n}` (the mark that its rows are in the log);
/// without `truncated` (a Citus table, whose rows are on the workers, or a trigger still fired
/// AFTER TRUNCATE) the statement row only. `image` is the jsonb image of a row `t`.
///
/// With `counted` (the log of 0.3.0 on) the statement row records how many rows it logged
/// (`rows`: what the change feeds cut their reads by, without counting them again).
fn log_sql(op: Op, image: &str, truncated: Option<&str>, counted: bool) -> String {
    let (rows_column, rows_value) = if counted {
        (
            ", rows",
            ", (SELECT pg_catalog.count(*) FROM r)::pg_catalog.int4",
        )
    } else {
        ("", "")
    };
    let (ex, nk) = ("$8", "$9");
    let partition =
        "CASE WHEN $6 IS NOT NULL THEN pg_catalog.jsonb_build_object('partition', $6) END";
    let body = match op {
        Op::Insert => format!(
            "SELECT {ROW_ID}, $1, $2, {KEY_HASH}(r.f OPERATOR(pg_catalog.-) {nk}, 0), NULL, NULL, \
                    r.f OPERATOR(pg_catalog.-) {ex} \
               FROM {}",
            rows(NEW_TABLE, image)
        ),
        Op::Delete => removed(&rows(OLD_TABLE, image)),
        Op::Truncate if truncated.is_some() => {
            let from = truncated.unwrap_or_default();
            return format!(
                "WITH r AS (INSERT INTO audit._log_row (id, statement_id, ts, key_hash, old_key_hash, old_row, new_row) \
                            {} RETURNING 1) \
                 INSERT INTO audit._log_statement (id, ts, txid, table_oid, op, context, query, detail{rows_column}) \
                 SELECT $1, $2, $3, $7, 'TRUNCATE', $4, $5, \
                        pg_catalog.jsonb_build_object('rows', (SELECT pg_catalog.count(*) FROM r)) \
                        OPERATOR(pg_catalog.||) COALESCE({partition}, '{{}}'::pg_catalog.jsonb){rows_value}",
                removed(&format!(
                    "(SELECT {image} AS f FROM {from} AS t \
                      WHERE t.tableoid OPERATOR(pg_catalog.<>) ALL ($10) OFFSET 0) AS r"
                ))
            );
        }
        Op::Update => format!(
            "SELECT {ROW_ID}, $1, $2, {KEY_HASH}(u.nk, 0), \
                    CASE WHEN u.ok OPERATOR(pg_catalog.<>) u.nk THEN {KEY_HASH}(u.ok, 0) END, u.o, u.d \
               FROM (SELECT p.o OPERATOR(pg_catalog.-) {nk} AS ok, p.n OPERATOR(pg_catalog.-) {nk} AS nk, \
                            p.o OPERATOR(pg_catalog.-) {ex} AS o, \
                            audit._delta(p.o OPERATOR(pg_catalog.-) {ex}, p.n OPERATOR(pg_catalog.-) {ex}) AS d \
                       FROM ROWS FROM (pg_catalog.unnest({}), pg_catalog.unnest({})) AS p(o, n) \
                     OFFSET 0) AS u \
              WHERE u.d OPERATOR(pg_catalog.<>) '{{}}'::pg_catalog.jsonb",
            agg(OLD_TABLE, image),
            agg(NEW_TABLE, image)
        ),
        Op::Truncate => {
            return format!(
                "INSERT INTO audit._log_statement (id, ts, txid, table_oid, op, context, query, detail) \
                 VALUES ($1, $2, $3, $7, 'TRUNCATE', $4, $5, {partition})"
            );
        }
    };
    let name = match op {
        Op::Insert => "INSERT",
        Op::Update => "UPDATE",
        _ => "DELETE",
    };
    format!(
        "WITH r AS (INSERT INTO audit._log_row (id, statement_id, ts, key_hash, old_key_hash, old_row, new_row) \
                    {body} RETURNING 1) \
         INSERT INTO audit._log_statement (id, ts, txid, table_oid, op, context, query{rows_column}) \
         SELECT $1, $2, $3, $7, '{name}', $4, $5{rows_value} WHERE EXISTS (SELECT FROM r)"
    )
}

/// True when the type is built in, or a domain, array or composite of built-in types: `to_jsonb`
/// of such a value runs no user-defined code (PostgreSQL looks for casts to json only for types
/// that are not built in).
fn builtin(typid: pg_sys::Oid, depth: u32) -> bool {
    if depth > 32 {
        return false;
    }
    // SAFETY: syscache lookups on type OIDs; the row type descriptor is released after use.
    unsafe {
        let base = pg_sys::getBaseType(typid);
        let elem = pg_sys::get_element_type(base);
        if elem != pg_sys::InvalidOid {
            return builtin(elem, depth + 1);
        }
        if pg_sys::get_typ_typrelid(base) != pg_sys::InvalidOid {
            let desc = pg_sys::lookup_rowtype_tupdesc(base, -1);
            let safe = pgrx::PgTupleDesc::from_pg_unchecked(desc)
                .iter()
                .filter(|a| !a.attisdropped)
                .all(|a| builtin(a.atttypid, depth + 1));
            pg_sys::DecrTupleDescRefCount(desc);
            return safe;
        }
        base.to_u32() < pg_sys::FirstNormalObjectId
    }
}

/// The jsonb image of a row `t` of the relation: `to_jsonb(t)` when every column is
/// [`builtin`]; otherwise an object built column by column, the other columns as their output
/// function's text (`jsonb_build_object` takes 50 pairs at most: objects of 50 are joined).
fn image_expr(rel: pg_sys::Relation) -> String {
    // SAFETY: the trigger's relation is open.
    let desc = unsafe { pgrx::PgTupleDesc::from_pg_unchecked((*rel).rd_att) };
    let live: Vec<(String, bool)> = desc
        .iter()
        .filter(|a| !a.attisdropped)
        .map(|a| {
            (
                pg_sys::name_data_to_str(&a.attname).to_owned(),
                builtin(a.atttypid, 0),
            )
        })
        .collect();
    if live.iter().all(|(_, safe)| *safe) {
        // `t.*`, not `t`: a column named t would be taken for the row
        return "pg_catalog.to_jsonb(t.*)".to_owned();
    }
    let pairs: Vec<String> = live
        .iter()
        .map(|(name, safe)| {
            let col = format!("t.{}", quote(name));
            let value = if *safe {
                col
            } else {
                format!(
                    "CASE WHEN pg_catalog.num_nulls({col}) OPERATOR(pg_catalog.=) 0 \
                     THEN pg_catalog.format('%s', {col}) END"
                )
            };
            format!("{}, {value}", literal(name))
        })
        .collect();
    pairs
        .chunks(50)
        .map(|c| format!("pg_catalog.jsonb_build_object({})", c.join(", ")))
        .collect::<Vec<_>>()
        .join(" OPERATOR(pg_catalog.||) ")
}

/// What one capture trigger does, for one row type of its table and one configuration.
struct Entry {
    /// The audited table rows are logged under: the table, or its audited ancestor.
    table: pg_sys::Oid,
    /// Its schema and name now.
    schema: String,
    name: String,
    options: Options,
    /// Live columns not excluded, in order (changed_columns of an UPDATE, in the context).
    logged: Vec<String>,
    /// Columns that are not part of the primary key (None without a primary key).
    non_key: Option<Vec<String>>,
    /// Excluded columns that are not key columns: kept out of the images (the key stays in
    /// them: it is what history finds a row by).
    image_exclude: Vec<String>,
    /// The owner's log INSERT ([`log_sql`], a saved plan); into the 0.1.0 audit.log table when
    /// the database's extension SQL is still 0.1.0's ([`legacy`]).
    plan: pg_sys::SPIPlanPtr,
    /// Whether it is.
    legacy: bool,
    /// Whether the log's contexts have an actor (extension SQL of 0.3.0 on).
    actor_column: bool,
    /// The seed of context ids: 0, or in a Citus shard the shard's OID (see `audit._context`).
    context_seed: i64,
    /// Context ids by (session user, current user, application name), made under the abort
    /// count: valid while no transaction that may have written one aborted ([`ABORTS`]).
    contexts: Cache<ContextKey, i64>,
}

impl Drop for Entry {
    /// Frees the saved plan once no call uses the entry any more (the cache dropped it and no
    /// trigger call still runs it). Not at the process's exit, where thread-local values are
    /// dropped after PostgreSQL's own shutdown: the memory goes with the process.
    fn drop(&mut self) {
        // SAFETY: a backend global; the plan was saved by us and nothing else holds it
        unsafe {
            if !pg_sys::proc_exit_inprogress {
                pg_sys::SPI_freeplan(self.plan);
            }
        }
    }
}

/// Who ran a statement: session user, current user, application name, actor (raw: [`end_user`]).
type ContextKey = (pg_sys::Oid, pg_sys::Oid, Option<String>, Option<String>);

thread_local! {
    /// Entries by trigger. A plan over a transition table is not invalidated by the plan cache
    /// when the table's row type changes: an entry is rebuilt when the invalidation epoch moved
    /// (any change to the table's row type or keys is a relcache invalidation of it).
    static ENTRIES: Cache<pg_sys::Oid, Rc<Entry>> = const { Cache::new(512) };
    /// (transaction, command after the write, table) of the last TRUNCATE a capture trigger
    /// made before 0.3.0 (fired AFTER TRUNCATE) logged: the partitions' triggers that follow a
    /// whole-table TRUNCATE's log nothing more.
    static LAST_TRUNCATE: Cell<(u32, u32, pg_sys::Oid)> =
        const { Cell::new((0, 0, pg_sys::InvalidOid)) };
    /// inet_client_addr() of this backend (fixed for its life), kept in TopMemoryContext.
    static CLIENT_ADDR: Cell<Option<Option<pg_sys::Datum>>> = const { Cell::new(None) };
    /// Aborted transactions and subtransactions of this backend (with the callbacks that count
    /// them registered): a context row written by one of them is gone, so cached context ids are
    /// trusted only while this stays where it was when they were cached.
    static ABORTS: Cell<Option<u64>> = const { Cell::new(None) };
    /// The log's sequence (audit.log_id_seq).
    static SEQUENCE: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
}

unsafe extern "C-unwind" fn xact_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::XactEvent::XACT_EVENT_ABORT
        || event == pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
    {
        // SAFETY: a transaction callback, called by C
        unsafe { crate::guard::callback(count_abort) }
    }
    if event == pg_sys::XactEvent::XACT_EVENT_ABORT
        || event == pg_sys::XactEvent::XACT_EVENT_COMMIT
        || event == pg_sys::XactEvent::XACT_EVENT_PREPARE
    {
        // SAFETY: a transaction callback, called by C
        unsafe { crate::guard::callback(|| PENDING.with(|p| p.borrow_mut().open.clear())) }
    }
}

fn count_abort() {
    ABORTS.with(|a| a.set(Some(a.get().unwrap_or(0).wrapping_add(1))));
}

unsafe extern "C-unwind" fn subxact_event(
    event: pg_sys::SubXactEvent::Type,
    my: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        // SAFETY: a subtransaction callback, called by C
        unsafe {
            crate::guard::callback(|| {
                count_abort();
                PENDING.with(|p| p.borrow_mut().abort_sub(my));
            })
        }
    }
}

/// The abort count (registers the callbacks at the first call of the backend).
fn aborts() -> u64 {
    ABORTS.with(|a| {
        a.get().unwrap_or_else(|| {
            // SAFETY: backend-lifetime callbacks that only bump a counter.
            unsafe {
                pg_sys::RegisterXactCallback(Some(xact_event), std::ptr::null_mut());
                pg_sys::RegisterSubXactCallback(Some(subxact_event), std::ptr::null_mut());
            }
            a.set(Some(0));
            0
        })
    })
}

fn role_name(role: pg_sys::Oid) -> String {
    // SAFETY: a syscache lookup; NULL (noerr) for a role dropped meanwhile.
    let n = unsafe { pg_sys::GetUserNameFromId(role, true) };
    if n.is_null() {
        format!("unknown (OID={})", role.to_u32())
    } else {
        cstr(n)
    }
}

/// inet_client_addr() of this backend.
fn client_addr() -> Option<pg_sys::Datum> {
    CLIENT_ADDR.with(Cell::get).unwrap_or_else(|| {
        // SAFETY: computed once per backend into TopMemoryContext.
        let addr = unsafe {
            let old = pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
            let addr = pgrx::direct_function_call_as_datum(pg_sys::inet_client_addr, &[]);
            pg_sys::MemoryContextSwitchTo(old);
            addr
        };
        CLIENT_ADDR.with(|c| c.set(Some(addr)));
        addr
    })
}

/// The context id of a statement of `entry` by `actor`: cached, or from `audit._context` (which
/// writes the context row when missing). Runs as the extension owner on the open connection.
fn context_id(entry: &Entry, actor: pg_sys::Oid) -> i64 {
    // SAFETY: session state getters; the GUC name is a literal.
    let (session, app) = unsafe {
        let app = pg_sys::GetConfigOption(c"application_name".as_ptr(), true, false);
        (
            pg_sys::GetSessionUserId(),
            (!app.is_null()).then(|| cstr(app)),
        )
    };
    let end_user = if entry.actor_column { end_user() } else { None };
    let key = (session, actor, app, end_user);
    entry
        .contexts
        .get_or_insert_with(aborts(), &key, || new_context_id(entry, &key))
}

/// The context id of `key` from `audit._context` (which writes the context row when missing).
fn new_context_id(entry: &Entry, key: &ContextKey) -> i64 {
    let (session, actor, _, _) = *key;
    let params = [
        Some(name_datum(&entry.schema)),
        Some(name_datum(&entry.name)),
        Some(name_datum(&role_name(session))),
        Some(name_datum(&role_name(actor))),
        key.2.clone().and_then(IntoDatum::into_datum),
        client_addr(),
        entry.logged.clone().into_datum(),
        entry.non_key.clone().and_then(IntoDatum::into_datum),
        Some(pg_sys::Datum::from(entry.context_seed)),
        key.3
            .as_deref()
            .and_then(actor_json)
            .and_then(IntoDatum::into_datum),
    ];
    let with_actor = usize::from(entry.actor_column);
    CONTEXT_PLANS.with(|plans| {
        let p = &plans[with_actor];
        let plan = p.get().unwrap_or_else(|| {
            let plan = if entry.actor_column {
                prepare(CONTEXT_ACTOR_SQL, &CONTEXT_ARG_TYPES)
            } else {
                prepare(CONTEXT_SQL, &CONTEXT_ARG_TYPES[..9])
            };
            p.set(Some(plan));
            plan
        });
        execute(plan, &params[..9 + with_actor], pg_sys::SPI_OK_SELECT);
        // SAFETY: one row, one column of the SELECT just run.
        unsafe {
            let result = &*pg_sys::SPI_tuptable;
            let mut isnull = false;
            let d = pg_sys::SPI_getbinval(*result.vals, result.tupdesc, 1, &mut isnull);
            if isnull || pg_sys::SPI_processed != 1 {
                crate::error::internal("audit._context returned no id");
            }
            d.value() as i64
        }
    })
}

thread_local! {
    /// Relations whose row changes the extension is making as relocations, not changes (the
    /// rows moved out of a default partition into a new child), with the trigger depth the
    /// relocation runs at: capture logs nothing for the relocation's own statements on them
    /// while [`relocating`] runs, and logs what a trigger fired by it changes (one level deeper:
    /// the table owner's code). Set only from our C code, never from SQL.
    static MOVING: RefCell<Vec<(pg_sys::Oid, i32)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` with `rels` marked as relocated (see [`MOVING`]); the mark is removed when `work`
/// returns or unwinds.
pub(super) fn relocating<R>(rels: &[pg_sys::Oid], work: impl FnOnce() -> R) -> R {
    struct Unmark(usize);
    impl Drop for Unmark {
        fn drop(&mut self) {
            MOVING.with(|m| m.borrow_mut().truncate(self.0));
        }
    }
    let depth = trigger_depth();
    let _unmark = Unmark(MOVING.with(|m| {
        let mut m = m.borrow_mut();
        let before = m.len();
        m.extend(rels.iter().map(|r| (*r, depth)));
        before
    }));
    work()
}

/// Whether statements on `relid` are relocations by the extension right now.
pub(super) fn is_moving(relid: pg_sys::Oid) -> bool {
    MOVING.with(|m| m.borrow().iter().any(|(r, _)| *r == relid))
}

/// Whether this capture trigger call logs a relocation's own statement on `relid`: the trigger
/// fired one level below the relocation (a statement a trigger of the relocation ran fires
/// deeper, and is logged).
fn relocation_here(relid: pg_sys::Oid) -> bool {
    let depth = trigger_depth();
    MOVING.with(|m| {
        m.borrow()
            .iter()
            .any(|(r, d)| *r == relid && depth == d.saturating_add(1))
    })
}

/// `pg_trigger_depth()`: how many triggers are running in this backend now.
fn trigger_depth() -> i32 {
    // SAFETY: a built-in function of no arguments
    unsafe { pgrx::direct_function_call::<i32>(pg_sys::pg_trigger_depth, &[]) }.unwrap_or(0)
}

thread_local! {
    /// The saved plans of [`CONTEXT_SQL`] and [`CONTEXT_ACTOR_SQL`].
    static CONTEXT_PLANS: [Cell<Option<pg_sys::SPIPlanPtr>>; 2] = const { [Cell::new(None), Cell::new(None)] };
}

/// The end user behind this statement: the settings named by
/// `pg_storage_ext.audit_actor_settings` that are set, read now (so a `SET LOCAL` of a pooled
/// transaction is the value recorded), as the raw text the context cache is keyed on (name, NUL,
/// value, NUL, ...: a setting's value holds no NUL); None when none is set. The actor's JSON
/// ([`actor_json`]) is built from it only for a context not cached yet.
fn end_user() -> Option<String> {
    let list = crate::gucs::text(&crate::gucs::AUDIT_ACTOR_SETTINGS);
    let mut raw = String::new();
    for name in pg_storage_core::audit::actor_settings(&list) {
        let Ok(c) = std::ffi::CString::new(name.as_str()) else {
            continue;
        };
        // SAFETY: a setting looked up by name; NULL when there is none (missing_ok).
        let v = unsafe { pg_sys::GetConfigOption(c.as_ptr(), true, false) };
        if v.is_null() {
            continue;
        }
        // SAFETY: a C string of the setting's value, valid until the next change of it
        let value = unsafe { std::ffi::CStr::from_ptr(v) }.to_string_lossy();
        if !value.is_empty() {
            raw.push_str(&name);
            raw.push('\0');
            raw.push_str(&value);
            raw.push('\0');
        }
    }
    (!raw.is_empty()).then_some(raw)
}

/// The actor's JSON (pg_storage_core::audit::actor_json) of [`end_user`]'s raw text.
fn actor_json(raw: &str) -> Option<String> {
    let parts: Vec<&str> = raw.split('\0').collect();
    pg_storage_core::audit::actor_json(
        parts
            .chunks(2)
            .filter(|pair| pair.len() == 2)
            .map(|pair| (pair[0], pair[1])),
    )
}

/// Runs a saved plan with these parameters; anything but `expect` is an internal error.
fn execute(plan: pg_sys::SPIPlanPtr, params: &[Option<pg_sys::Datum>], expect: u32) -> u64 {
    let mut values: Vec<pg_sys::Datum> = params
        .iter()
        .map(|p| p.unwrap_or(pg_sys::Datum::from(0)))
        .collect();
    let nulls: Vec<std::ffi::c_char> = params
        .iter()
        .map(|p| {
            if p.is_none() {
                b'n' as std::ffi::c_char
            } else {
                b' ' as std::ffi::c_char
            }
        })
        .collect();
    // SAFETY: a saved plan with as many parameters as values given.
    unsafe {
        let rc = pg_sys::SPI_execute_plan(plan, values.as_mut_ptr(), nulls.as_ptr(), false, 0);
        if rc != expect as i32 {
            crate::error::internal("an audit log statement did not run");
        }
        pg_sys::SPI_processed
    }
}

/// Statement trigger body; reports problems with ereport, never returns an error.
pub(crate) fn capture(td: &pg_sys::TriggerData) {
    let event = td.tg_event;
    // SAFETY: PostgreSQL passes a valid trigger and relation.
    let (trigger, rel) = unsafe { (&*td.tg_trigger, td.tg_relation) };
    let tgname = cstr(trigger.tgname);
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
    // TRUNCATE's rows are read before they go; an AFTER TRUNCATE trigger (made before 0.3.0)
    // still logs the statement
    if !(trigger_fired_after(event) || op == Op::Truncate) || !trigger_fired_for_statement(event) {
        raise(
            PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            format!(
                "audit._capture must be fired AFTER … FOR EACH STATEMENT, BEFORE for TRUNCATE (trigger \"{tgname}\")"
            ),
            None,
            Some(USAGE.into()),
        );
    }
    check_transition_tables(op, trigger, &tgname);
    // SAFETY: the relation is open for the trigger.
    let relid = unsafe { (*rel).rd_id };
    if op == Op::Truncate && trigger_fired_after(event) && tgname != TRUNCATE_CAPTURE {
        return truncated(relid); // the check after a TRUNCATE (audit_capture_truncated)
    }
    if relocation_here(relid) {
        return; // rows the extension relocates (a partition drain) are not changes
    }
    let actor = current_user();

    // SAFETY: an SPI connection for this call; PostgreSQL's abort cleanup closes it on error.
    unsafe {
        if pg_sys::SPI_connect() < 0 {
            crate::error::internal("SPI_connect failed");
        }
    }
    if op != Op::Truncate {
        // SAFETY: registers the transition tables of this trigger call on our connection.
        unsafe {
            pg_sys::SPI_register_trigger_data(std::ptr::from_ref(td).cast_mut());
        }
    }
    let Some(logical) = shard_target(relid, op) else {
        // SAFETY: closes the connection opened above.
        unsafe { pg_sys::SPI_finish() };
        return; // a copy of a Citus table that another node logs (see shard_target)
    };
    let entry = entry(td, op, &tgname, logical);
    if op == Op::Truncate && trigger_fired_after(event) {
        legacy_truncate(&entry, relid, actor);
    } else if op == Op::Truncate {
        truncate(&entry, relid, actor);
    } else {
        pending(|p| p.changed(entry.table));
        write(&entry, op, relid, actor, &[]);
    }
    // SAFETY: closes the connection opened above.
    unsafe {
        pg_sys::SPI_finish();
    }
}

/// A TRUNCATE of `relid`, captured before it: nothing when the TRUNCATE logged its rows already
/// (a partition of a table logged before it); otherwise its rows but those logged already, and
/// the relations it covers remembered for the triggers that follow. The audited table is
/// pending until the check after the TRUNCATE ([`truncated`]).
fn truncate(entry: &Entry, relid: pg_sys::Oid, actor: pg_sys::Oid) {
    let covered = pending(|p| p.start(entry.table, relid));
    if covered.contains(&relid) {
        return;
    }
    write(entry, Op::Truncate, relid, actor, &covered);
    let under = crate::catalog::inheritors(relid);
    pending(|p| p.covers(entry.table, &under));
}

/// A TRUNCATE captured by a trigger made before 0.3.0 (AFTER TRUNCATE: the rows are gone): its
/// statement only, once for a whole table and the partitions whose triggers follow it.
fn legacy_truncate(entry: &Entry, relid: pg_sys::Oid, actor: pg_sys::Oid) {
    if command_key(entry.table) != LAST_TRUNCATE.with(Cell::get) {
        write(entry, Op::Truncate, relid, actor, &[]);
    }
    if entry.table == relid {
        LAST_TRUNCATE.with(|l| l.set(command_key(relid)));
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

/// What a Citus shard is to capture (docs/citus.md), cached per relation and invalidation
/// epoch: its logical table (the shell on this node), its kind, whether this node is the
/// coordinator.
#[derive(Clone)]
struct ShardOf {
    logical: pg_sys::Oid,
    kind: String,
    on_coordinator: bool,
}

thread_local! {
    static SHARDS: Cache<pg_sys::Oid, Option<ShardOf>> = const { Cache::new(4096) };
}

/// The relation a statement on `relid` is logged as: `relid` itself, or for a Citus shard its
/// logical table; None when this copy is logged elsewhere. Citus copies the capture triggers to
/// every shard: a distributed table's rows are logged where they are, in the log of the worker
/// holding the shard, under the logical table (the coordinator reads the workers' logs); a
/// reference table is logged once, by its copy on the coordinator, not by the workers' copies;
/// a TRUNCATE of a Citus table is logged once by the coordinator's table, never by shards.
fn shard_target(relid: pg_sys::Oid, op: Op) -> Option<pg_sys::Oid> {
    let epoch = crate::cache::epoch();
    let shard =
        SHARDS.with(|s| s.get_or_insert_with(epoch, &relid, || as_owner(citus_shard_of(relid))));
    match shard {
        None => Some(relid),
        Some(_) if op == Op::Truncate => None,
        Some(s) if s.kind == "reference" && !s.on_coordinator => None,
        Some(s) => Some(s.logical),
    }
}

/// Whether `relid` is a Citus shard (asked as the extension's owner; no query without Citus).
pub(crate) fn is_citus_shard(relid: pg_sys::Oid) -> bool {
    // SAFETY: a syscache lookup by name in pg_catalog.
    let citus = unsafe {
        pg_sys::get_relname_relid(
            c"pg_dist_partition".as_ptr(),
            pg_sys::Oid::from(pg_sys::PG_CATALOG_NAMESPACE),
        ) != pg_sys::InvalidOid
    };
    citus && as_owner(citus_shard_of(relid)).is_some()
}

/// `storage._citus_shard(relid)` (absent in a database whose extension SQL predates it).
fn citus_shard_of(relid: pg_sys::Oid) -> impl FnOnce() -> Option<ShardOf> {
    move || {
        if !crate::catalog::has_function("storage._citus_shard(regclass)") {
            return None;
        }
        pgrx::Spi::connect(|client| {
            let rows = client.select(
                "SELECT logical::pg_catalog.oid, kind, on_coordinator FROM storage._citus_shard($1)",
                Some(1),
                &[relid.into()],
            )?;
            Ok::<_, pgrx::spi::Error>(rows.into_iter().next().map(|row| ShardOf {
                logical: row.get::<pg_sys::Oid>(1).ok().flatten().unwrap_or(relid),
                kind: row.get::<String>(2).ok().flatten().unwrap_or_default(),
                on_coordinator: row.get::<bool>(3).ok().flatten().unwrap_or(false),
            }))
        })
        .unwrap_or_else(|e| crate::error::spi_failed(e))
    }
}

/// The audit configuration that applies to `relid`: the nearest of the relation and its
/// ancestors in `audit._tracked` — (that table, its excluded columns, capture_query).
fn configuration(relid: pg_sys::Oid) -> Option<(pg_sys::Oid, Vec<String>, bool)> {
    lookup(
        c"SELECT a.relid::pg_catalog.oid, t.exclude_columns, t.capture_query \
            FROM (SELECT $1, 0 UNION ALL \
                  SELECT * FROM pg_catalog.pg_partition_ancestors($1) WITH ORDINALITY) AS a(relid, n) \
            JOIN audit._tracked t ON t.table_name OPERATOR(pg_catalog.=) a.relid \
           ORDER BY a.n LIMIT 1",
        relid,
    )
}

/// On a Citus worker, the configuration audit.enable on the coordinator recorded for a
/// distributed table (`audit._citus_tracked`, by name): the nearest of the shard's logical
/// table and its ancestors.
fn worker_configuration(relid: pg_sys::Oid) -> Option<(pg_sys::Oid, Vec<String>, bool)> {
    lookup(
        c"SELECT a.relid::pg_catalog.oid, t.exclude_columns, t.capture_query \
            FROM (SELECT $1, 0 UNION ALL \
                  SELECT * FROM pg_catalog.pg_partition_ancestors($1) WITH ORDINALITY) AS a(relid, n) \
            JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.relid \
            JOIN pg_catalog.pg_namespace s ON s.oid OPERATOR(pg_catalog.=) c.relnamespace \
            JOIN audit._citus_tracked t ON t.schema_name OPERATOR(pg_catalog.=) s.nspname \
                                       AND t.table_name OPERATOR(pg_catalog.=) c.relname \
           ORDER BY a.n LIMIT 1",
        relid,
    )
}

/// One row (table, excluded columns, capture_query) of a configuration query on `relid`.
fn lookup(sql: &CStr, relid: pg_sys::Oid) -> Option<(pg_sys::Oid, Vec<String>, bool)> {
    let mut types = [pg_sys::REGCLASSOID];
    let mut values = [pg_sys::Datum::from(relid)];
    // SAFETY: an SPI query with one typed parameter on the open connection; the values are
    // read before the next SPI call.
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
        let result = &*pg_sys::SPI_tuptable;
        let (row, desc) = (*result.vals, result.tupdesc);
        let mut isnull = false;
        let table = pg_sys::SPI_getbinval(row, desc, 1, &mut isnull);
        let exclude = pg_sys::SPI_getbinval(row, desc, 2, &mut isnull);
        let exclude: Vec<String> = if isnull {
            Vec::new()
        } else {
            Vec::<Option<String>>::from_polymorphic_datum(exclude, false, pg_sys::TEXTARRAYOID)
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect()
        };
        let capture_query = pg_sys::SPI_getbinval(row, desc, 3, &mut isnull);
        Some((
            pg_sys::Oid::from(table.value() as u32),
            exclude,
            !isnull && capture_query.value() != 0,
        ))
    }
}

/// A shard's configuration from its trigger's arguments, when this worker has none recorded
/// (a worker added after audit.enable, a table renamed since): the trigger is Citus's copy of
/// the one audit.enable made on the coordinator from its configuration, and no one else can
/// make one (`audit._capture` is not executable by PUBLIC). A partition's rows are logged under
/// the root of its partition tree.
fn shard_configuration(
    trigger: &pg_sys::Trigger,
    relid: pg_sys::Oid,
) -> Option<(pg_sys::Oid, Vec<String>, bool)> {
    let options = Options::parse(&crate::triggers::args(trigger)).ok()?;
    let table = if options.scope == Scope::Table {
        relid
    } else {
        pgrx::Spi::get_one_with_args::<pg_sys::Oid>(
            "SELECT pg_catalog.pg_partition_root($1)::pg_catalog.oid",
            &[relid.into()],
        )
        .ok()
        .flatten()?
    };
    Some((table, options.exclude, options.capture_query))
}

/// The options the configuration gives the trigger on `relid`, or a 39P01 error: a capture
/// trigger on a table that is not audited, or whose arguments are not the configuration's.
fn configured(
    trigger: &pg_sys::Trigger,
    relid: pg_sys::Oid,
    tgname: &str,
    shard: bool,
) -> (pg_sys::Oid, Options) {
    let found = as_owner(|| {
        configuration(relid).or_else(|| {
            shard
                .then(|| {
                    worker_configuration(relid).or_else(|| shard_configuration(trigger, relid))
                })
                .flatten()
        })
    });
    let Some((table, exclude, capture_query)) = found else {
        let name = qualified(relid);
        raise(
            PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            format!("audit capture trigger \"{tgname}\" is on {name}, which is not audited"),
            Some(
                "audit._capture logs only tables that audit.enable set up (audit.tracked), and \
                 their partitions."
                    .into(),
            ),
            Some(if crate::catalog::has_function("storage._citus_shard(regclass)")
                && crate::catalog::read_one::<bool>(
                    "SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NOT NULL",
                )
                .ok()
                .flatten()
                .unwrap_or(false)
            {
                // a shard whose table Citus has not committed to this node yet
                "On Citus: a table distributed (or a partition created) in the same transaction \
                 as a write to it is not known to the workers before that transaction commits; \
                 commit it first, then write."
                    .to_owned()
            } else {
                format!(
                    "Drop the trigger, or start capture with SELECT audit.enable({}).",
                    literal(&name)
                )
            }),
        );
    };
    let scope = if table == relid {
        Scope::Table
    } else {
        Scope::Partition
    };
    let options = Options::new(scope, capture_query, &exclude);
    let args = crate::triggers::args(trigger);
    // On a Citus shard the trigger is Citus's copy of the coordinator's, whose configuration
    // reaches this node's audit._tracked first (audit.enable updates the workers before its own
    // transaction commits the new triggers): the configuration is obeyed, as everywhere, and a
    // copy not yet replaced is no error.
    if args != options.to_args() && !shard {
        let name = qualified(table);
        let show = |a: &[String]| a.iter().map(|x| literal(x)).collect::<Vec<_>>().join(", ");
        raise(
            PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            format!(
                "audit capture trigger \"{tgname}\" on {} does not match the audit configuration of {name}",
                qualified(relid)
            ),
            Some(format!(
                "Its arguments are ({}); audit.tracked says ({}).",
                show(&args),
                show(&options.to_args())
            )),
            Some(format!(
                "Repair the triggers with SELECT audit.enable({}, exclude_columns => {}, capture_query => {}).",
                literal(&name),
                literal(&format!(
                    "{{{}}}",
                    options
                        .exclude
                        .iter()
                        .map(|c| format!("\"{}\"", c.replace('\\', "\\\\").replace('"', "\\\"")))
                        .collect::<Vec<_>>()
                        .join(",")
                )),
                options.capture_query
            )),
        );
    }
    (table, options)
}

/// The audited tables TRUNCATEs are emptying in this transaction: each opened by the first
/// capture before its TRUNCATE, closed by the check after it (`audit_capture_truncated`), and
/// dropped with the subtransaction that opened it when that aborts (a TRUNCATE that failed). A
/// TRUNCATE fires the capture of every table it empties, partitions included: while a table is
/// open, the relations whose rows it logged are covered (a partition under a table logged
/// already logs nothing more; a table logged after one of its partitions leaves that
/// partition's rows out). Another trigger firing after the capture (a BEFORE TRUNCATE trigger
/// later in name order, on a partition, on another table of the TRUNCATE, or a TRUNCATE nested
/// in one) could change rows the log has just recorded; such a change marks the table, and the
/// check after the TRUNCATE refuses it.
#[derive(Default)]
struct Pending {
    open: Vec<Open>,
}

struct Open {
    table: pg_sys::Oid,
    /// The subtransaction that opened it.
    opened: pg_sys::SubTransactionId,
    /// Relations whose captures fired for it (their checks close it).
    relations: Vec<pg_sys::Oid>,
    /// Relations whose rows it logged.
    covered: Vec<pg_sys::Oid>,
    /// The first subtransaction that changed its rows since it was opened.
    changed: Option<pg_sys::SubTransactionId>,
}

fn subtransaction() -> pg_sys::SubTransactionId {
    // SAFETY: a transaction-state getter
    unsafe { pg_sys::GetCurrentSubTransactionId() }
}

impl Pending {
    /// A capture before a TRUNCATE of `relid` under `table`: opens the table if it is not open;
    /// the relations whose rows this TRUNCATE logged already.
    fn start(&mut self, table: pg_sys::Oid, relid: pg_sys::Oid) -> Vec<pg_sys::Oid> {
        let i = match self.open.iter().position(|o| o.table == table) {
            Some(i) => i,
            None => {
                self.open.push(Open {
                    table,
                    opened: subtransaction(),
                    relations: Vec::new(),
                    covered: Vec::new(),
                    changed: None,
                });
                self.open.len() - 1
            }
        };
        let o = &mut self.open[i];
        if !o.relations.contains(&relid) {
            o.relations.push(relid);
        }
        o.covered.clone()
    }

    fn covers(&mut self, table: pg_sys::Oid, relations: &[pg_sys::Oid]) {
        if let Some(o) = self.open.iter_mut().find(|o| o.table == table) {
            o.covered.extend_from_slice(relations);
        }
    }

    /// Rows of `table` changed (an INSERT, UPDATE or DELETE captured).
    fn changed(&mut self, table: pg_sys::Oid) {
        if let Some(o) = self.open.iter_mut().find(|o| o.table == table) {
            o.changed.get_or_insert_with(subtransaction);
        }
    }

    /// The check after the TRUNCATE of `relid`: closes the table it opened; whether its rows
    /// changed meanwhile.
    fn close(&mut self, relid: pg_sys::Oid) -> Option<pg_sys::Oid> {
        let i = self
            .open
            .iter()
            .position(|o| o.relations.contains(&relid))?;
        let o = self.open.remove(i);
        o.changed.map(|_| o.table)
    }

    /// Subtransaction `sub` aborted: what it (and those under it) opened and changed is undone.
    fn abort_sub(&mut self, sub: pg_sys::SubTransactionId) {
        self.open.retain(|o| o.opened < sub);
        for o in &mut self.open {
            if o.changed.is_some_and(|c| c >= sub) {
                o.changed = None;
            }
        }
    }
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

fn pending<R>(f: impl FnOnce(&mut Pending) -> R) -> R {
    aborts(); // (registers the transaction callbacks that keep it)
    PENDING.with(|p| f(&mut p.borrow_mut()))
}

/// After a TRUNCATE (the trigger `audit_capture_truncated`): refuses it when rows of the table it
/// emptied changed after the capture had logged them.
fn truncated(relid: pg_sys::Oid) {
    if let Some(table) = pending(|p| p.close(relid)) {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "TRUNCATE refused: rows of audited table {} changed after the audit had logged them",
                qualified(table)
            ),
            Some(format!(
                "A trigger of the TRUNCATE of {} (BEFORE TRUNCATE, firing after audit_capture_truncate) changed them; the TRUNCATE would remove rows the log holds as they were not.",
                qualified(relid)
            )),
            Some("Make that trigger AFTER TRUNCATE, or have it fire first (a name sorting before audit_capture_truncate).".into()),
        );
    }
}

/// Where a TRUNCATE of `table` stands: transaction, command, table.
fn command_key(table: pg_sys::Oid) -> (u32, u32, pg_sys::Oid) {
    // SAFETY: transaction-state getters.
    unsafe {
        (
            pg_sys::GetTopTransactionIdIfAny().into_inner(),
            pg_sys::GetCurrentCommandId(false),
            table,
        )
    }
}

/// Live columns of the relation in order, and its primary-key columns.
fn describe(rel: pg_sys::Relation) -> (Vec<String>, Vec<String>) {
    let mut columns = Vec::new();
    let mut key = Vec::new();
    // SAFETY: the trigger's relation is open; its descriptor and key bitmap come from relcache.
    unsafe {
        let desc = pgrx::PgTupleDesc::from_pg_unchecked((*rel).rd_att);
        let pk = pg_sys::RelationGetIndexAttrBitmap(
            rel,
            pg_sys::IndexAttrBitmapKind::INDEX_ATTR_BITMAP_PRIMARY_KEY,
        );
        for a in desc.iter().filter(|a| !a.attisdropped) {
            let name = pg_sys::name_data_to_str(&a.attname).to_owned();
            let member = i32::from(a.attnum) - pg_sys::FirstLowInvalidHeapAttributeNumber;
            if !pk.is_null() && pg_sys::bms_is_member(member, pk) {
                key.push(name.clone());
            }
            columns.push(name);
        }
    }
    (columns, key)
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

/// The entry of this trigger for the relation's current row type and configuration.
fn entry(td: &pg_sys::TriggerData, op: Op, tgname: &str, logical: pg_sys::Oid) -> Rc<Entry> {
    // SAFETY: the trigger is valid for the call.
    let tgoid = unsafe { (*td.tg_trigger).tgoid };
    let epoch = crate::cache::epoch();
    ENTRIES.with(|c| {
        c.get_or_insert_with(epoch, &tgoid, || {
            Rc::new(new_entry(td, op, tgname, logical))
        })
    })
}

/// An entry built from the relation and the configuration now.
fn new_entry(td: &pg_sys::TriggerData, op: Op, tgname: &str, logical: pg_sys::Oid) -> Entry {
    // SAFETY: the trigger and relation are valid for the call.
    let (trigger, rel) = unsafe { (&*td.tg_trigger, td.tg_relation) };
    let (columns, key) = describe(rel);
    // SAFETY: the relation is open for the trigger.
    let shard = logical != unsafe { (*rel).rd_id };
    let (table, options) = configured(trigger, logical, tgname, shard);
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
    let image = image_expr(rel);
    // SAFETY: syscache lookups by name.
    let (legacy, actor_column, counted) = unsafe {
        let nsp = pg_sys::get_namespace_oid(c"audit".as_ptr(), false);
        let contexts = pg_sys::get_relname_relid(c"_log_context".as_ptr(), nsp);
        let statements = pg_sys::get_relname_relid(c"_log_statement".as_ptr(), nsp);
        (
            pg_sys::get_relname_relid(c"_log_row".as_ptr(), nsp) == pg_sys::InvalidOid,
            contexts != pg_sys::InvalidOid && pg_sys::get_attnum(contexts, c"actor".as_ptr()) != 0,
            statements != pg_sys::InvalidOid
                && pg_sys::get_attnum(statements, c"rows".as_ptr()) != 0,
        )
    };
    let image_exclude: Vec<String> = options
        .exclude
        .iter()
        .filter(|c| !key.contains(c))
        .cloned()
        .collect();
    let non_key = (!key.is_empty()).then(|| non_key(&columns, &key));
    let truncated = (op == Op::Truncate && !trigger_fired_after(td.tg_event) && !shard)
        .then(|| truncated_rows(rel))
        .flatten();
    let plan = as_owner(|| {
        if legacy {
            prepare(&legacy::sql(op, &image), &legacy::ARG_TYPES)
        } else {
            prepare(
                &log_sql(op, &image, truncated.as_deref(), counted),
                &LOG_ARG_TYPES,
            )
        }
    });
    Entry {
        table,
        schema,
        name,
        logged: logged(&columns, &options.exclude),
        non_key,
        image_exclude,
        options,
        plan,
        legacy,
        actor_column,
        // SAFETY: the relation is open for the trigger.
        context_seed: if shard {
            i64::from(unsafe { (*rel).rd_id }.to_u32())
        } else {
            0
        },
        contexts: Cache::new(256),
    }
}

/// The FROM item of the rows a TRUNCATE of `rel` removes: the table itself (`ONLY`: a TRUNCATE
/// fires the trigger of every table it empties), or every partition of a partitioned table; None
/// (the statement is logged, not its rows) for a Citus table (its rows are on the workers), a
/// table with inheritance children, a partitioned table with a foreign partition.
fn truncated_rows(rel: pg_sys::Relation) -> Option<String> {
    // SAFETY: the trigger's relation is open.
    let (relid, kind, children) = unsafe {
        (
            (*rel).rd_id,
            (*(*rel).rd_rel).relkind as u8,
            (*(*rel).rd_rel).relhassubclass,
        )
    };
    if crate::catalog::citus_kind(relid).is_some() {
        return None;
    }
    let local = |r: &pg_sys::Oid| {
        // SAFETY: a syscache lookup of a partition's kind
        let k = unsafe { pg_sys::get_rel_relkind(*r) } as u8;
        k == pg_sys::RELKIND_RELATION || k == pg_sys::RELKIND_PARTITIONED_TABLE
    };
    match kind {
        // a plain table with inheritance children: whether the TRUNCATE empties them too (no
        // ONLY) is not known here, and they are not captured: its rows are not logged
        pg_sys::RELKIND_RELATION if !children => Some(format!("ONLY {}", qualified(relid))),
        // every partition, all of them local tables: the rows are read as the extension's owner,
        // which must never read a foreign table (through a server's user mapping for that role)
        pg_sys::RELKIND_PARTITIONED_TABLE
            if crate::catalog::inheritors(relid).iter().all(local) =>
        {
            Some(qualified(relid))
        }
        _ => None,
    }
}

/// The next value of the log's sequence (the caller runs as the extension owner).
fn next_id() -> i64 {
    let seq = SEQUENCE.with(|s| {
        if s.get() == pg_sys::InvalidOid {
            // SAFETY: syscache lookups by name; the sequence exists with the extension.
            let oid = unsafe {
                let nsp = pg_sys::get_namespace_oid(c"audit".as_ptr(), false);
                pg_sys::get_relname_relid(c"log_id_seq".as_ptr(), nsp)
            };
            if oid == pg_sys::InvalidOid {
                crate::error::internal("audit.log_id_seq does not exist");
            }
            s.set(oid);
        }
        s.get()
    });
    // SAFETY: nextval of an existing sequence (the owner's USAGE is checked).
    unsafe {
        pgrx::direct_function_call::<i64>(pg_sys::nextval_oid, &[Some(pg_sys::Datum::from(seq))])
    }
    .unwrap_or_else(|| crate::error::internal("nextval returned NULL"))
}

/// Writes the statement's rows, then (when it changed any, or for TRUNCATE) its statement row.
fn write(entry: &Entry, op: Op, relid: pg_sys::Oid, actor: pg_sys::Oid, logged: &[pg_sys::Oid]) {
    if entry.legacy {
        return as_log_writer(|| legacy::write(entry, op, relid, actor));
    }
    let partition = (op == Op::Truncate && relid != entry.table).then(|| qualified(relid));
    as_log_writer(|| {
        let context = context_id(entry, actor);
        let id = next_id();
        // SAFETY: transaction state getters; the statement text of this backend, when asked for.
        let (ts, txid, query) = unsafe {
            (
                pg_sys::GetCurrentStatementStartTimestamp(),
                pg_sys::GetTopFullTransactionId().value,
                (entry.options.capture_query && !pg_sys::debug_query_string.is_null())
                    .then(|| cstr(pg_sys::debug_query_string)),
            )
        };
        let params = [
            Some(pg_sys::Datum::from(id)),
            Some(pg_sys::Datum::from(ts)),
            Some(pg_sys::Datum::from(txid)),
            Some(pg_sys::Datum::from(context)),
            query.and_then(IntoDatum::into_datum),
            partition.and_then(IntoDatum::into_datum),
            Some(pg_sys::Datum::from(entry.table)),
            entry.image_exclude.clone().into_datum(),
            entry.non_key.clone().and_then(IntoDatum::into_datum),
            logged.to_vec().into_datum(),
        ];
        execute(entry.plan, &params, pg_sys::SPI_OK_INSERT);
    });
}

/// The members of `new` whose values differ from `old`'s (or that `old` lacks), as `=` on jsonb
/// decides (numbers by value, containers deeply, a JSON null is a value): the changed columns of
/// an UPDATE with their new values. Both are row images (objects); anything else is compared as
/// a whole and returned whole when it differs.
pub(crate) fn delta(
    old: &crate::jsonb::datum::JsonbRef,
    new: &crate::jsonb::datum::JsonbRef,
) -> pg_sys::Datum {
    use crate::jsonb::datum::{encode, numeric_eq};
    let (o, n) = (old.root(), new.root());
    encode(&pg_storage_core::jsonb::binary::changed_members(
        o.root_item(),
        n.root_item(),
        &numeric_eq,
    ))
}
