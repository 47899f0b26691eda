//! Partitions capability. The orchestration (create_partitions, ensure_partition, run_maintenance,
//! convert_to_partitioned) is SQL in `sql/partition.sql`; the arithmetic it relies on (steps,
//! names, which ranges to create) is `pg_storage_core::partition`, and periods of time steps are
//! PostgreSQL's own date arithmetic (`calendar`); exposed as internal `_partition_*` functions
//! over text positions.

mod calendar;

use crate::error::raise;
use calendar::TimePeriods;
use pg_storage_core::names::fit_identifier;
use pg_storage_core::partition::{
    int_suffix, parse_int_pos, plan, IntPeriods, PartitionError, Periods, Range, Step,
};
use pgrx::prelude::*;

pub(super) fn invalid(e: PartitionError, detail: Option<String>) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        e.message,
        detail,
        Some(e.hint.into()),
    )
}

fn step_of(canonical: &str) -> Step {
    Step::from_canonical(canonical).unwrap_or_else(|e| invalid(e, None))
}

/// A position from its text: a civil timestamp for time steps, the value for integers.
fn pos(step: &Step, text: &str) -> i64 {
    if step.is_time() {
        calendar::parse(text)
    } else {
        parse_int_pos(text).unwrap_or_else(|e| invalid(e, None))
    }
}

/// A position's text, as SQL writes it (`to_char(..., 'YYYY-MM-DD HH24:MI:SS.US')` for times).
fn text_of(step: &Step, p: i64) -> String {
    if step.is_time() {
        calendar::civil(p).format()
    } else {
        p.to_string()
    }
}

/// How the step's periods start and move: PostgreSQL's calendar for times.
fn periods(step: &Step) -> Box<dyn Periods> {
    match *step {
        Step::Int(n) => Box::new(IntPeriods(n)),
        Step::Minutes(n) => Box::new(TimePeriods::Minutes(n)),
        Step::Days(n) => Box::new(TimePeriods::Days {
            n,
            origin_days: step.origin_days(),
        }),
        Step::Months(n) => Box::new(TimePeriods::Months(n)),
    }
}

/// Canonical step (`days:1`, `months:3`, ...) of an interval; `date_only` refuses sub-day steps.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _partition_step_interval(step: Interval, date_only: bool, given: &str) -> String {
    Step::from_interval(step.months(), step.days(), step.micros(), date_only)
        .unwrap_or_else(|e| invalid(e, Some(format!("The step given was '{given}'."))))
        .canonical()
}

/// Canonical step (`int:N`) of an integer key's step.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _partition_step_int(step: &str) -> String {
    Step::parse_int(step)
        .unwrap_or_else(|e| invalid(e, None))
        .canonical()
}

/// Whether each period of the canonical step `outer` is a whole number of `inner` periods.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _partition_step_divides(outer: &str, inner: &str) -> bool {
    step_of(outer).divides_into(&step_of(inner))
}

/// Start of the period holding `pos`.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _partition_floor(step: &str, pos_text: &str) -> String {
    let s = step_of(step);
    text_of(&s, periods(&s).floor(pos(&s, pos_text)))
}

/// `pos` moved by `n` steps; NULL past the representable range.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _partition_add(step: &str, pos_text: &str, n: i64) -> Option<String> {
    let s = step_of(step);
    periods(&s)
        .add(pos(&s, pos_text), n)
        .map(|p| text_of(&s, p))
}

/// Child name: `parent` and the suffix of a child starting at `lower`, within 63 bytes; `nth` > 0
/// adds `_<nth>` (when the plain name is taken by another relation).
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn _partition_name(
    parent: Option<&str>,
    step: Option<&str>,
    lower: Option<&str>,
    nth: Option<i32>,
) -> Option<String> {
    // NULL for a NULL parent, step or nth (a lower bound of NULL is MINVALUE)
    let (parent, step, nth) = (parent?, step?, nth?);
    let mut suffix = match lower {
        None => "_pmin".to_string(),
        Some(l) => {
            let s = step_of(step);
            let lower = pos(&s, l);
            if s.is_time() {
                calendar::civil(lower).suffix(matches!(s, Step::Minutes(_)))
            } else {
                int_suffix(lower)
            }
        }
    };
    if nth > 0 {
        suffix.push_str(&format!("_{nth}"));
    }
    Some(fit_identifier(parent, &suffix))
}

/// Children to create so every period starting between floor(`from`) and floor(`to`) is
/// covered, cut around the existing children (`lowers[i]`, `uppers[i]`; NULL = unbounded).
/// `type_min`/`type_max`: the key type's limits (integers), beyond which bounds become
/// MINVALUE/MAXVALUE (NULL lower/upper here).
/// No rows when the step, `from` or `to` is NULL; NULL arrays are no existing children.
#[pg_extern(immutable, parallel_safe)]
#[allow(clippy::type_complexity)]
pub(crate) fn _partition_plan(
    step: Option<&str>,
    lowers: Option<Vec<Option<String>>>,
    uppers: Option<Vec<Option<String>>>,
    from: Option<&str>,
    to: Option<&str>,
    type_min: Option<i64>,
    type_max: Option<i64>,
) -> TableIterator<'static, (name!(lower, Option<String>), name!(upper, Option<String>))> {
    let (Some(step), Some(from), Some(to)) = (step, from, to) else {
        return TableIterator::new(Vec::new());
    };
    let (lowers, uppers) = (lowers.unwrap_or_default(), uppers.unwrap_or_default());
    let s = step_of(step);
    if lowers.len() != uppers.len() {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "lowers and uppers must have the same length",
            Some(format!(
                "{} lower bounds, {} upper bounds.",
                lowers.len(),
                uppers.len()
            )),
            Some("Pass one lower and one upper bound per existing child.".into()),
        );
    }
    let parse = |v: &Option<String>| v.as_deref().map(|t| pos(&s, t));
    let existing: Vec<Range> = lowers
        .iter()
        .zip(&uppers)
        .map(|(l, u)| Range {
            lower: parse(l),
            upper: parse(u),
        })
        .collect();
    let rows: Vec<_> = plan(
        periods(&s).as_ref(),
        &existing,
        pos(&s, from),
        pos(&s, to),
        (type_min, type_max),
    )
    .into_iter()
    .map(|r| {
        (
            r.lower.map(|p| text_of(&s, p)),
            r.upper.map(|p| text_of(&s, p)),
        )
    })
    .collect();
    TableIterator::new(rows)
}

/// `base` followed by `suffix`, within 63 bytes (cut with a hash when too long).
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _partition_fit(base: &str, suffix: &str) -> String {
    fit_identifier(base, suffix)
}

/// A trigger definition (`pg_get_triggerdef`) re-pointed at `table` (quoted and qualified): only
/// the relation after its `ON` changes, never its name, columns, WHEN clause or arguments.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _partition_retarget(def: &str, table: &str) -> String {
    pg_storage_core::partition::retarget_trigger(def, table).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "cannot read the table of a trigger definition",
            Some(def.to_owned()),
            Some("Drop the trigger before converting and recreate it afterwards.".into()),
        )
    })
}

/// `def` (a constraint or index definition) with the quoted `column` added to its key list.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _partition_extend_key(def: &str, column: &str) -> String {
    pg_storage_core::partition::extend_key_list(def, &crate::ident::quote(column)).unwrap_or_else(
        || {
            raise(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("cannot add the partition key to {def}"),
                None,
                Some(
                    "Drop this constraint or index before converting and recreate it afterwards."
                        .into(),
                ),
            )
        },
    )
}
