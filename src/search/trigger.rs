//! `storage.tsvector_update()`: a BEFORE INSERT OR UPDATE row trigger that keeps a tsvector column
//! equal to `setweight(E1, w1) || setweight(E2, w2) || …` over weighted source columns.
//!
//! The trigger's arguments are read once per trigger and kept in a per-backend plan cache; any
//! relcache or text-search-configuration invalidation empties it, so DDL on the table (renamed,
//! dropped or retyped columns) or a dropped configuration is seen at the next row. Each value is
//! built with the very functions the SQL expression calls (`to_tsvector`, `jsonb_to_tsvector`
//! with the "string" filter, `setweight`, `||`), in argument order, so the result is the SQL's,
//! byte for byte. On UPDATE, when no source column and no configuration column changed (binary
//! comparison of the old and new values) and the new row's tsvector is not NULL, the new row is
//! returned as it is, without parsing.

use crate::cache::Cache;
use crate::error::{internal, raise};
use pg_storage_core::search::{split_source, Weight};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::trigger_support::{
    trigger_fired_before, trigger_fired_by_insert, trigger_fired_by_update, trigger_fired_for_row,
};
use pgrx::{PgRelation, PgTupleDesc};
use std::cell::RefCell;
use std::ffi::CStr;
use std::rc::Rc;

const USAGE: &str = "Use EXECUTE FUNCTION storage.tsvector_update('tsvector_column', 'config or config_column', 'source_column:A', 'other_column:B', ...) in a BEFORE INSERT OR UPDATE ... FOR EACH ROW trigger.";

/// How a source column becomes a tsvector.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// text, varchar, char and domains over them: `to_tsvector(cfg, coalesce(col, ''))`.
    Text,
    /// text[] or varchar[]: `to_tsvector(cfg, coalesce(array_to_string(col, ' '), ''))`.
    TextArray,
    /// `jsonb_to_tsvector(cfg, coalesce(col, '{}'), '["string"]')`.
    Jsonb,
    /// `json_to_tsvector(cfg, coalesce(col, '{}'), '["string"]')`.
    Json,
}

#[derive(Debug)]
struct Source {
    attnum: i16,
    kind: Kind,
    weight: Weight,
}

#[derive(Debug)]
enum Config {
    Fixed(pg_sys::Oid),
    Column {
        attnum: i16,
        name: String,
        is_text: bool,
    },
}

/// A column compared between the old and the new row.
#[derive(Debug)]
struct Watched {
    /// 0-based position in the tuple descriptor.
    index: usize,
    len: i16,
    byval: bool,
}

/// Everything the trigger needs about its arguments, resolved against the table.
#[derive(Debug)]
struct Plan {
    target: i16,
    config: Config,
    sources: Vec<Source>,
    /// Columns whose change requires a new value: the sources and the configuration column.
    watched: Vec<Watched>,
    /// The table whose search vocabulary the values' lexemes go to (the top of a partition
    /// tree); InvalidOid until the trigger fires.
    words_of: pg_sys::Oid,
    /// Text from related tables (the extension's configuration for `words_of`'s column).
    related: Vec<super::related::Related>,
}

thread_local! {
    /// Plans by trigger, made under the invalidation epoch; the one of the trigger fired last is
    /// found without hashing (most statements fire one trigger).
    static PLANS: Cache<pg_sys::Oid, Rc<Plan>> = const { Cache::new(usize::MAX) };
    /// Set by `storage.rebuild_search` for the column it rebuilds: recompute even when no
    /// source changed.
    static FORCE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// While alive, UPDATEs recompute `column` even when no source changed.
pub(crate) struct ForceRecompute;

impl ForceRecompute {
    pub(crate) fn new(column: &str) -> ForceRecompute {
        FORCE.with(|f| *f.borrow_mut() = Some(column.to_owned()));
        ForceRecompute
    }
}

impl Drop for ForceRecompute {
    fn drop(&mut self) {
        FORCE.with(|f| *f.borrow_mut() = None);
    }
}

fn plan_for(
    trigger: &pg_sys::Trigger,
    (relid, partition): (pg_sys::Oid, bool),
    tupdesc: &PgTupleDesc,
    relname: impl Fn() -> String,
) -> Rc<Plan> {
    let epoch = crate::cache::epoch();
    PLANS.with(|p| {
        p.get_or_insert_with(epoch, &trigger.tgoid, || {
            let mut plan = build_plan(trigger, tupdesc, &relname());
            plan.words_of = super::vocabulary::vocabulary_of(relid, partition);
            let column = tupdesc
                .get(plan.target as usize - 1)
                .map(|a| pg_sys::name_data_to_str(&a.attname).to_owned())
                .unwrap_or_default();
            plan.related = super::related::sources_of(plan.words_of, &column);
            Rc::new(plan)
        })
    })
}

/// The live (not dropped) column named exactly `name`.
fn find_column<'a>(
    tupdesc: &'a PgTupleDesc,
    name: &str,
) -> Option<&'a pg_sys::FormData_pg_attribute> {
    tupdesc
        .iter()
        .find(|a| !a.attisdropped && pg_sys::name_data_to_str(&a.attname) == name)
}

fn type_name(typid: pg_sys::Oid) -> String {
    // SAFETY: format_type_be returns a palloc'd C string for any type OID.
    unsafe { CStr::from_ptr(pg_sys::format_type_be(typid)) }
        .to_string_lossy()
        .into_owned()
}

fn base_type(typid: pg_sys::Oid) -> pg_sys::Oid {
    // SAFETY: a syscache lookup; errors are PostgreSQL errors.
    unsafe { pg_sys::getBaseType(typid) }
}

/// A text search configuration by (possibly qualified) name, or None.
pub(crate) fn lookup_config(name: &str) -> Option<pg_sys::Oid> {
    let cname = std::ffi::CString::new(name).ok()?;
    let mut escontext = pg_sys::ErrorSaveContext {
        type_: pg_sys::NodeTag::T_ErrorSaveContext,
        error_occurred: false,
        details_wanted: false,
        error_data: std::ptr::null_mut(),
    };
    // SAFETY: soft errors go to escontext; get_ts_config_oid with missing_ok does not raise.
    unsafe {
        let names = pg_sys::stringToQualifiedNameList(
            cname.as_ptr(),
            (&raw mut escontext).cast::<pg_sys::Node>(),
        );
        if escontext.error_occurred || names.is_null() {
            return None;
        }
        let oid = pg_sys::get_ts_config_oid(names, true);
        (oid != pg_sys::InvalidOid).then_some(oid)
    }
}

fn arg_error(code: PgSqlErrorCode, n: usize, arg: &str, what: String, relname: &str) -> ! {
    raise(
        code,
        format!("storage.tsvector_update: argument {n} (\"{arg}\"): {what}"),
        Some(format!("The trigger is on table {relname}.")),
        Some(USAGE.to_owned()),
    )
}

fn build_plan(trigger: &pg_sys::Trigger, tupdesc: &PgTupleDesc, relname: &str) -> Plan {
    // SAFETY: tgname is a NUL-terminated trigger name.
    let name = unsafe { CStr::from_ptr(trigger.tgname) }.to_string_lossy();
    plan_from_args(&crate::triggers::args(trigger), &name, tupdesc, relname)
}

/// Checks trigger arguments against a table as the trigger will at its first row; raises the
/// same errors. Returns the names of the columns whose change needs a new value (sources and
/// configuration column), for `UPDATE OF`. Used by `storage.enable_search`.
pub(crate) fn validate_args(args: &[String], tupdesc: &PgTupleDesc, relname: &str) -> Vec<String> {
    plan_from_args(args, "(new)", tupdesc, relname)
        .watched
        .iter()
        .map(|w| {
            let att = tupdesc
                .get(w.index)
                .unwrap_or_else(|| internal("column missing from the tuple descriptor"));
            pg_sys::name_data_to_str(&att.attname).to_owned()
        })
        .collect()
}

fn plan_from_args(
    args: &[String],
    trigger_name: &str,
    tupdesc: &PgTupleDesc,
    relname: &str,
) -> Plan {
    if args.len() < 3 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "storage.tsvector_update needs at least 3 arguments, trigger \"{trigger_name}\" has {}",
                args.len()
            ),
            Some(format!("The trigger is on table {relname}.")),
            Some(USAGE.to_owned()),
        );
    }

    let target = match find_column(tupdesc, &args[0]) {
        None => arg_error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
            1,
            &args[0],
            "no such column".into(),
            relname,
        ),
        Some(a) if a.atttypid != pg_sys::TSVECTOROID => arg_error(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            1,
            &args[0],
            format!("column is of type {}, not tsvector", type_name(a.atttypid)),
            relname,
        ),
        Some(a) => a.attnum,
    };

    let config = match find_column(tupdesc, &args[1]) {
        Some(a) => match base_type(a.atttypid) {
            pg_sys::REGCONFIGOID => Config::Column {
                attnum: a.attnum,
                name: args[1].clone(),
                is_text: false,
            },
            pg_sys::TEXTOID | pg_sys::VARCHAROID => Config::Column {
                attnum: a.attnum,
                name: args[1].clone(),
                is_text: true,
            },
            other => arg_error(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                2,
                &args[1],
                format!(
                    "configuration column is of type {}, not regconfig or text",
                    type_name(other)
                ),
                relname,
            ),
        },
        None => match lookup_config(&args[1]) {
            Some(oid) => Config::Fixed(oid),
            None => arg_error(
                PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                2,
                &args[1],
                "neither a text search configuration nor a column of the table".into(),
                relname,
            ),
        },
    };

    let mut sources = Vec::with_capacity(args.len() - 2);
    for (i, arg) in args.iter().enumerate().skip(2) {
        let n = i + 1;
        let (att, weight) = match find_column(tupdesc, arg) {
            Some(a) => (a, Weight::D),
            None => {
                let (name, weight) = split_source(arg).unwrap_or_else(|e| {
                    arg_error(
                        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                        n,
                        arg,
                        e.to_string(),
                        relname,
                    )
                });
                match find_column(tupdesc, name) {
                    Some(a) => (a, weight),
                    None => arg_error(
                        PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
                        n,
                        arg,
                        format!("column \"{name}\" does not exist"),
                        relname,
                    ),
                }
            }
        };
        let kind = match base_type(att.atttypid) {
            pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => Kind::Text,
            pg_sys::TEXTARRAYOID | pg_sys::VARCHARARRAYOID => Kind::TextArray,
            pg_sys::JSONBOID => Kind::Jsonb,
            pg_sys::JSONOID => Kind::Json,
            other => arg_error(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                n,
                arg,
                format!(
                    "column \"{}\" is of type {}; sources must be text, varchar, char, text[], jsonb or json",
                    pg_sys::name_data_to_str(&att.attname),
                    type_name(other)
                ),
                relname,
            ),
        };
        if att.attnum == target {
            arg_error(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                n,
                arg,
                "the tsvector column cannot be its own source".into(),
                relname,
            );
        }
        if att.attgenerated != 0 {
            // a BEFORE trigger runs before generated columns are computed: it would read NULL
            arg_error(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                n,
                arg,
                format!(
                    "column \"{}\" is generated, and a BEFORE trigger runs before it is computed",
                    pg_sys::name_data_to_str(&att.attname)
                ),
                relname,
            );
        }
        sources.push(Source {
            attnum: att.attnum,
            kind,
            weight,
        });
    }

    let mut attnums: Vec<i16> = sources.iter().map(|s| s.attnum).collect();
    if let Config::Column { attnum, .. } = config {
        attnums.push(attnum);
    }
    attnums.sort_unstable();
    attnums.dedup();
    let watched = attnums
        .into_iter()
        .map(|attnum| {
            let index = attnum as usize - 1;
            let att = tupdesc
                .get(index)
                .unwrap_or_else(|| internal("column missing from the tuple descriptor"));
            Watched {
                index,
                len: att.attlen,
                byval: att.attbyval,
            }
        })
        .collect();
    Plan {
        target,
        config,
        sources,
        watched,
        words_of: pg_sys::InvalidOid,
        related: Vec::new(),
    }
}

/// `datumIsEqual`: byte equality of two non-null values of one column.
unsafe fn same_bytes(a: pg_sys::Datum, b: pg_sys::Datum, attlen: i16, byval: bool) -> bool {
    unsafe {
        if byval {
            return a == b;
        }
        let (pa, pb) = (a.cast_mut_ptr::<u8>(), b.cast_mut_ptr::<u8>());
        let len = match attlen {
            -1 => {
                let la = pgrx::varlena::varsize_any(pa.cast());
                if la != pgrx::varlena::varsize_any(pb.cast()) {
                    return false;
                }
                la
            }
            -2 => {
                let la = CStr::from_ptr(pa.cast()).to_bytes().len() + 1;
                if la != CStr::from_ptr(pb.cast()).to_bytes().len() + 1 {
                    return false;
                }
                la
            }
            n => n as usize,
        };
        std::slice::from_raw_parts(pa, len) == std::slice::from_raw_parts(pb, len)
    }
}

unsafe fn unchanged(
    plan: &Plan,
    old: pg_sys::HeapTuple,
    new: pg_sys::HeapTuple,
    tupdesc: &PgTupleDesc,
) -> bool {
    // Two deforms (one call into PostgreSQL each) instead of a heap_getattr per column: after the
    // first variable-width column, each heap_getattr walks the tuple from its start.
    const STACK: usize = 64;
    let natts = tupdesc.len();
    let zero = pg_sys::Datum::from(0);
    let (mut ov, mut on, mut nv, mut nn);
    let (mut ov_heap, mut on_heap, mut nv_heap, mut nn_heap);
    let (ovs, ons, nvs, nns): (
        &mut [pg_sys::Datum],
        &mut [bool],
        &mut [pg_sys::Datum],
        &mut [bool],
    ) = if natts <= STACK {
        ov = [zero; STACK];
        on = [false; STACK];
        nv = [zero; STACK];
        nn = [false; STACK];
        (&mut ov[..], &mut on[..], &mut nv[..], &mut nn[..])
    } else {
        ov_heap = vec![zero; natts];
        on_heap = vec![false; natts];
        nv_heap = vec![zero; natts];
        nn_heap = vec![false; natts];
        (
            &mut ov_heap[..],
            &mut on_heap[..],
            &mut nv_heap[..],
            &mut nn_heap[..],
        )
    };
    // SAFETY: both tuples belong to the trigger's relation; the buffers hold natts entries.
    unsafe {
        pg_sys::heap_deform_tuple(old, tupdesc.as_ptr(), ovs.as_mut_ptr(), ons.as_mut_ptr());
        pg_sys::heap_deform_tuple(new, tupdesc.as_ptr(), nvs.as_mut_ptr(), nns.as_mut_ptr());
        plan.watched
            .iter()
            .all(|w| match (ons[w.index], nns[w.index]) {
                (true, true) => true,
                (false, false) => same_bytes(ovs[w.index], nvs[w.index], w.len, w.byval),
                _ => false,
            })
    }
}

type PgFn = unsafe fn(pg_sys::FunctionCallInfo) -> pg_sys::Datum;

unsafe fn call2(f: PgFn, a: pg_sys::Datum, b: pg_sys::Datum) -> pg_sys::Datum {
    // SAFETY: the caller passes arguments of the types `f` expects; none of these functions
    // returns NULL for non-null arguments.
    unsafe { pgrx::direct_function_call_as_datum(f, &[Some(a), Some(b)]) }
        .unwrap_or_else(|| internal("a text search function returned NULL"))
}

fn text_datum(bytes: &[u8]) -> pg_sys::Datum {
    // SAFETY: copies the bytes into a new palloc'd text.
    unsafe {
        pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(
            bytes.as_ptr().cast(),
            bytes.len() as i32,
        ))
    }
}

/// `array_to_string(arr, ' ')` for a text-like array: elements in storage order, NULLs skipped.
unsafe fn join_text_array(d: pg_sys::Datum) -> pg_sys::Datum {
    unsafe {
        let arr = pg_sys::pg_detoast_datum(d.cast_mut_ptr()).cast::<pg_sys::ArrayType>();
        let mut elems: *mut pg_sys::Datum = std::ptr::null_mut();
        let mut nulls: *mut bool = std::ptr::null_mut();
        let mut n: i32 = 0;
        pg_sys::deconstruct_array(
            arr,
            (*arr).elemtype,
            -1,
            false,
            pg_sys::TYPALIGN_INT as _,
            &mut elems,
            &mut nulls,
            &mut n,
        );
        let mut out: Vec<u8> = Vec::new();
        let mut printed = false;
        for i in 0..n as usize {
            if *nulls.add(i) {
                continue;
            }
            if printed {
                out.push(b' ');
            }
            out.extend_from_slice(pgrx::varlena::varlena_to_byte_slice(
                pg_sys::pg_detoast_datum_packed((*elems.add(i)).cast_mut_ptr()),
            ));
            printed = true;
        }
        text_datum(&out)
    }
}

/// The configuration OID of this row.
unsafe fn row_config(plan: &Plan, tuple: pg_sys::HeapTuple, tupdesc: &PgTupleDesc) -> pg_sys::Oid {
    match &plan.config {
        Config::Fixed(oid) => *oid,
        Config::Column {
            attnum,
            name,
            is_text,
        } => unsafe {
            let mut isnull = false;
            let d = pg_sys::heap_getattr(tuple, (*attnum).into(), tupdesc.as_ptr(), &mut isnull);
            if isnull {
                raise(
                    PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                    format!("storage.tsvector_update: configuration column \"{name}\" is NULL"),
                    Some("The row names no text search configuration.".into()),
                    Some(format!(
                        "Give \"{name}\" a value such as 'english' or 'simple', or a DEFAULT."
                    )),
                );
            }
            if !*is_text {
                return pg_sys::Oid::from_datum(d, false)
                    .unwrap_or_else(|| internal("NULL regconfig"));
            }
            let s = pgrx::varlena::text_to_rust_str_unchecked(pg_sys::pg_detoast_datum_packed(
                d.cast_mut_ptr(),
            ));
            lookup_config(s).unwrap_or_else(|| {
                raise(
                    PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                    format!("text search configuration \"{s}\" does not exist"),
                    Some(format!("Named by column \"{name}\" of the row.")),
                    Some("SELECT cfgname FROM pg_ts_config lists the configurations.".into()),
                )
            })
        },
    }
}

/// `setweight(E1, w1) || setweight(E2, w2) || …` for one row.
unsafe fn compute(plan: &Plan, tuple: pg_sys::HeapTuple, tupdesc: &PgTupleDesc) -> pg_sys::Datum {
    unsafe {
        let cfg = pg_sys::Datum::from(row_config(plan, tuple, tupdesc));
        let mut acc: Option<pg_sys::Datum> = None;
        for s in &plan.sources {
            let mut isnull = false;
            let d = pg_sys::heap_getattr(tuple, s.attnum.into(), tupdesc.as_ptr(), &mut isnull);
            let vector = match s.kind {
                Kind::Text => call2(
                    pg_sys::to_tsvector_byid,
                    cfg,
                    if isnull { text_datum(b"") } else { d },
                ),
                Kind::TextArray => call2(
                    pg_sys::to_tsvector_byid,
                    cfg,
                    if isnull {
                        text_datum(b"")
                    } else {
                        join_text_array(d)
                    },
                ),
                Kind::Jsonb => {
                    let doc = if isnull {
                        empty_object(pg_sys::jsonb_in)
                    } else {
                        d
                    };
                    call2(pg_sys::jsonb_string_to_tsvector_byid, cfg, doc)
                }
                Kind::Json => {
                    let doc = if isnull {
                        empty_object(pg_sys::json_in)
                    } else {
                        d
                    };
                    call2(pg_sys::json_string_to_tsvector_byid, cfg, doc)
                }
            };
            let weighted = call2(
                pg_sys::tsvector_setweight,
                vector,
                pg_sys::Datum::from(s.weight.letter() as u8 as i8),
            );
            acc = Some(match acc {
                None => weighted,
                Some(left) => call2(pg_sys::tsvector_concat, left, weighted),
            });
        }
        // then each related source's text (after the row's own columns)
        for r in &plan.related {
            let Some(text) = r.text(plan.words_of, tuple, tupdesc) else {
                continue;
            };
            let vector = call2(pg_sys::to_tsvector_byid, cfg, text_datum(text.as_bytes()));
            let weighted = call2(
                pg_sys::tsvector_setweight,
                vector,
                pg_sys::Datum::from(r.weight().letter() as u8 as i8),
            );
            acc = Some(match acc {
                None => weighted,
                Some(left) => call2(pg_sys::tsvector_concat, left, weighted),
            });
        }
        acc.unwrap_or_else(|| internal("a trigger plan without sources"))
    }
}

unsafe fn empty_object(input: PgFn) -> pg_sys::Datum {
    // SAFETY: the type input function of json/jsonb on a constant.
    unsafe {
        pgrx::direct_function_call_as_datum(input, &[Some(pg_sys::Datum::from(c"{}".as_ptr()))])
    }
    .unwrap_or_else(|| internal("a text search function returned NULL"))
}

/// Trigger function `storage.tsvector_update(tsvector_column, config, source[:weight], ...)`.
fn tsvector_update<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let td = trigger.trigger_data();
    let event = td.tg_event;
    let insert = trigger_fired_by_insert(event);
    let update = trigger_fired_by_update(event);
    if !trigger_fired_for_row(event) || !trigger_fired_before(event) || !(insert || update) {
        raise(
            PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            "storage.tsvector_update must be fired BEFORE INSERT OR UPDATE FOR EACH ROW",
            None,
            Some(USAGE.to_owned()),
        );
    }
    // SAFETY: a row trigger's TriggerData has a valid relation, trigger and tuples.
    unsafe {
        let rel = td.tg_relation;
        let tupdesc = PgTupleDesc::from_pg_unchecked((*rel).rd_att);
        let relname = || {
            let r = PgRelation::from_pg(rel);
            format!("{}.{}", r.namespace(), r.name())
        };
        let plan = plan_for(
            &*td.tg_trigger,
            ((*rel).rd_id, (*(*rel).rd_rel).relispartition),
            &tupdesc,
            relname,
        );
        let tuple = if update {
            td.tg_newtuple
        } else {
            td.tg_trigtuple
        };
        let forced = update
            && FORCE.with(|f| {
                f.borrow().as_deref().is_some_and(|c| {
                    tupdesc
                        .get(plan.target as usize - 1)
                        .map(|a| pg_sys::name_data_to_str(&a.attname))
                        == Some(c)
                })
            });
        // A NULL column is never left as it is: the value is always derived (an UPDATE setting it
        // to NULL asks for it to be computed, as the backfill of a Citus table does in shards).
        if update
            && !forced
            && !pg_sys::heap_attisnull(tuple, plan.target.into(), tupdesc.as_ptr())
            && unchanged(&plan, td.tg_trigtuple, tuple, &tupdesc)
        {
            return Ok(Some(PgHeapTuple::from_heap_tuple(tupdesc, tuple)));
        }
        let value = compute(&plan, tuple, &tupdesc);
        super::vocabulary::note_words(plan.words_of, value);
        let col: i32 = plan.target.into();
        let isnull = false;
        let modified =
            pg_sys::heap_modify_tuple_by_cols(tuple, tupdesc.as_ptr(), 1, &col, &value, &isnull);
        Ok(Some(PgHeapTuple::from_heap_tuple(tupdesc, modified)))
    }
}

crate::triggers::trigger_entry!(
    tsvector_update_wrapper,
    pg_finfo_tsvector_update_wrapper,
    "storage.tsvector_update",
    tsvector_update
);
