//! Range-partition logic: steps, child names, and which ranges to create between existing
//! children. Positions are i64: an integer key's value, or for time keys a civil (wall-clock)
//! timestamp in the parent's time zone whose periods the database's own calendar computes
//! ([`Periods`]); nothing here keeps a calendar or depends on a time zone.

use std::fmt;

const MICROS_PER_MINUTE: i64 = 60_000_000;
const MICROS_PER_DAY: i64 = 86_400_000_000;
/// 1970-01-05 was a Monday: weeks start there.
const MONDAY_EPOCH_DAYS: i64 = 4;

/// Width of one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A whole number of minutes (sub-day steps), aligned on the epoch.
    Minutes(i64),
    /// A whole number of days; multiples of 7 start on Mondays.
    Days(i64),
    /// A whole number of months, aligned on January (3 = quarters, 12 = years).
    Months(i64),
    /// A positive integer width for integer keys, aligned on 0.
    Int(i64),
}

/// Why a step or position was refused; `Display` is the message, `hint` what to write instead.
#[derive(Debug, PartialEq, Eq)]
pub struct PartitionError {
    pub message: String,
    pub hint: &'static str,
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

const TIME_HINT: &str = "Use one unit: e.g. '15 minutes', '1 hour', '1 day', '1 week', '1 month', '3 months', '1 year'.";
const INT_HINT: &str = "For integer keys the step is a positive whole number, e.g. '1000'.";

fn err(message: String, hint: &'static str) -> PartitionError {
    PartitionError { message, hint }
}

impl Step {
    /// A step from an interval's fields. `date_only`: the key is a date, so sub-day steps are refused.
    pub fn from_interval(
        months: i32,
        days: i32,
        micros: i64,
        date_only: bool,
    ) -> Result<Step, PartitionError> {
        let parts = [months != 0, days != 0, micros != 0];
        if parts.iter().filter(|p| **p).count() != 1 {
            return Err(err(
                if parts.iter().any(|p| *p) {
                    "a partition step must use one unit (months, days or a time of day), not a mix"
                        .into()
                } else {
                    "a partition step must be positive, got zero".into()
                },
                TIME_HINT,
            ));
        }
        if months < 0 || days < 0 || micros < 0 {
            return Err(err("a partition step must be positive".into(), TIME_HINT));
        }
        if months > 0 {
            return Ok(Step::Months(i64::from(months)));
        }
        if days > 0 {
            return Ok(Step::Days(i64::from(days)));
        }
        if micros % MICROS_PER_MINUTE != 0 {
            return Err(err(
                "a sub-day partition step must be a whole number of minutes".into(),
                TIME_HINT,
            ));
        }
        if micros % MICROS_PER_DAY == 0 {
            return Ok(Step::Days(micros / MICROS_PER_DAY));
        }
        if date_only {
            return Err(err(
                "a date key cannot be partitioned by less than a day".into(),
                "Use a step of whole days, weeks, months or years for a date column.",
            ));
        }
        Ok(Step::Minutes(micros / MICROS_PER_MINUTE))
    }

    /// A step for an integer key from its text.
    pub fn parse_int(text: &str) -> Result<Step, PartitionError> {
        match text.trim().parse::<i64>() {
            Ok(n) if n > 0 => Ok(Step::Int(n)),
            Ok(n) => Err(err(
                format!("a partition step must be positive, got {n}"),
                INT_HINT,
            )),
            Err(_) => Err(err(format!("\"{text}\" is not a whole number"), INT_HINT)),
        }
    }

    /// Stable text form stored and passed between SQL functions: `months:3`, `int:1000`, ...
    pub fn canonical(&self) -> String {
        match self {
            Step::Minutes(n) => format!("minutes:{n}"),
            Step::Days(n) => format!("days:{n}"),
            Step::Months(n) => format!("months:{n}"),
            Step::Int(n) => format!("int:{n}"),
        }
    }

    /// Reads the canonical form back.
    pub fn from_canonical(text: &str) -> Result<Step, PartitionError> {
        let bad = || err(format!("\"{text}\" is not a partition step"), INT_HINT);
        let (unit, n) = text.split_once(':').ok_or_else(bad)?;
        let n: i64 = n.parse().map_err(|_| bad())?;
        if n <= 0 {
            return Err(bad());
        }
        match unit {
            "minutes" => Ok(Step::Minutes(n)),
            "days" => Ok(Step::Days(n)),
            "months" => Ok(Step::Months(n)),
            "int" => Ok(Step::Int(n)),
            _ => Err(bad()),
        }
    }

    pub fn is_time(&self) -> bool {
        !matches!(self, Step::Int(_))
    }

    /// Whether every period of `self` is a whole number of periods of `inner`, starting on one
    /// (sub-partitions fill each partition exactly): months into months that divide them, days or
    /// any divisor of a day; days into days that divide them on the same origin (weeks start on
    /// Mondays); minutes into minutes that divide them; integers into divisors.
    pub fn divides_into(&self, inner: &Step) -> bool {
        let day_divisor = |k: i64| (24 * 60) % k == 0;
        match (*self, *inner) {
            (Step::Months(m), Step::Months(k)) => m % k == 0,
            (Step::Months(_), Step::Days(d)) => d == 1,
            (Step::Months(_) | Step::Days(_), Step::Minutes(k)) => day_divisor(k),
            (Step::Days(d), Step::Days(e)) => {
                let origin = |n: i64| if n % 7 == 0 { MONDAY_EPOCH_DAYS } else { 0 };
                d % e == 0 && (origin(d) - origin(e)) % e == 0
            }
            (Step::Minutes(m), Step::Minutes(k)) => m % k == 0,
            (Step::Int(n), Step::Int(k)) => n % k == 0,
            _ => false,
        }
    }

    /// Days after 1970-01-01 where periods of a day step start: Monday 1970-01-05 for whole
    /// weeks, the epoch otherwise.
    pub fn origin_days(&self) -> i64 {
        match *self {
            Step::Days(n) if n % 7 == 0 => MONDAY_EPOCH_DAYS,
            _ => 0,
        }
    }
}

/// Where periods start and how a period start moves by whole steps. Integer keys are aligned on 0
/// here ([`IntPeriods`]); time keys are aligned by the database's own calendar (`date_bin`,
/// `date_trunc` and interval arithmetic on civil timestamps in the parent's time zone), in the
/// extension's pgrx layer.
pub trait Periods {
    /// The position at or below `p` where its period starts.
    fn floor(&self, p: i64) -> i64;
    /// `p` (a period start) moved by `k` steps; None past the representable range.
    fn add(&self, p: i64, k: i64) -> Option<i64>;
}

/// Periods of an integer key: `[k*n, (k+1)*n)`.
pub struct IntPeriods(pub i64);

impl Periods for IntPeriods {
    fn floor(&self, p: i64) -> i64 {
        p.div_euclid(self.0) * self.0
    }

    fn add(&self, p: i64, k: i64) -> Option<i64> {
        p.checked_add(k.checked_mul(self.0)?)
    }
}

/// A civil (wall-clock) instant broken into fields, as the database's calendar gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    /// microseconds since midnight
    pub micros: i64,
}

impl Civil {
    /// `YYYY-MM-DD HH:MM:SS`, with `.ffffff` when not on a whole second: the text positions SQL
    /// writes with `to_char(..., 'YYYY-MM-DD HH24:MI:SS.US')`.
    pub fn format(&self) -> String {
        let secs = self.micros / 1_000_000;
        let mut s = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year,
            self.month,
            self.day,
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
        if self.micros % 1_000_000 != 0 {
            s.push_str(&format!(".{:06}", self.micros % 1_000_000));
        }
        s
    }

    /// Child-name suffix for a child starting here: `_pYYYYMMDD`, with `_HH24MI[SS[_ffffff]]` for
    /// sub-day steps or a start off midnight (a piece cut around an existing child).
    pub fn suffix(&self, sub_day: bool) -> String {
        let mut s = format!("_p{:04}{:02}{:02}", self.year, self.month, self.day);
        if sub_day || self.micros != 0 {
            let minutes = self.micros / MICROS_PER_MINUTE;
            s.push_str(&format!("_{:02}{:02}", minutes / 60, minutes % 60));
            let sub = self.micros % MICROS_PER_MINUTE;
            if sub != 0 {
                s.push_str(&format!("{:02}", sub / 1_000_000));
                if sub % 1_000_000 != 0 {
                    s.push_str(&format!("_{:06}", sub % 1_000_000));
                }
            }
        }
        s
    }
}

/// An integer key's position from its text.
pub fn parse_int_pos(text: &str) -> Result<i64, PartitionError> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| err(format!("\"{text}\" is not a whole number"), INT_HINT))
}

/// Child-name suffix of an integer child starting at `lower`.
pub fn int_suffix(lower: i64) -> String {
    format!("_p{lower}")
}

/// A child to create: `[lower, upper)`; `None` = MINVALUE / MAXVALUE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub lower: Option<i64>,
    pub upper: Option<i64>,
}

/// The children to create so that every period whose start lies between `floor(from)` and
/// `floor(to)` is covered, given the ranges that already exist (`None` = unbounded). A period that
/// overlaps an existing child is cut around it, so new children never overlap old ones. `limits`
/// are the key type's bounds: a period reaching past them becomes MINVALUE/MAXVALUE.
pub fn plan(
    step: &dyn Periods,
    existing: &[Range],
    from: i64,
    to: i64,
    limits: (Option<i64>, Option<i64>),
) -> Vec<Range> {
    let mut out = Vec::new();
    let mut lower = step.floor(from);
    let last = step.floor(to);
    // never more than a million periods in one call
    for _ in 0..1_000_000 {
        if lower > last {
            break;
        }
        let upper = step.add(lower, 1);
        let lo = match limits.0 {
            Some(min) if lower <= min => None,
            _ => Some(lower),
        };
        let hi = match (upper, limits.1) {
            (None, _) => None,
            (Some(u), Some(max)) if u > max => None,
            (Some(u), _) => Some(u),
        };
        out.extend(subtract(
            Range {
                lower: lo,
                upper: hi,
            },
            existing,
        ));
        match (upper, hi) {
            (Some(u), Some(_)) => lower = u,
            _ => break,
        }
    }
    out
}

fn lt_lower(a: Option<i64>, b: Option<i64>) -> bool {
    // lower bounds: None is -infinity
    match (a, b) {
        (None, None) => false,
        (None, Some(_)) => true,
        (Some(_), None) => false,
        (Some(x), Some(y)) => x < y,
    }
}

/// `lower < upper` where lower None = -inf and upper None = +inf.
fn below(lower: Option<i64>, upper: Option<i64>) -> bool {
    match (lower, upper) {
        (Some(l), Some(u)) => l < u,
        _ => true,
    }
}

/// Parts of `r` not covered by any of `existing`.
fn subtract(r: Range, existing: &[Range]) -> Vec<Range> {
    let mut pieces = vec![r];
    for e in existing {
        let mut next = Vec::new();
        for p in pieces {
            // overlap: p.lower < e.upper && e.lower < p.upper
            if !(below(p.lower, e.upper) && below(e.lower, p.upper)) {
                next.push(p);
                continue;
            }
            if lt_lower(p.lower, e.lower) {
                next.push(Range {
                    lower: p.lower,
                    upper: e.lower,
                });
            }
            // e.upper < p.upper (upper None = +inf)
            if let Some(eu) = e.upper {
                if below(Some(eu), p.upper) {
                    next.push(Range {
                        lower: Some(eu),
                        upper: p.upper,
                    });
                }
            }
        }
        pieces = next;
    }
    pieces
}

/// Adds `column` (already quoted as an identifier) to the first parenthesised key list of an index
/// or constraint definition, as PostgreSQL prints them (`PRIMARY KEY (id)`, `CREATE UNIQUE INDEX i
/// ON t USING btree (a, lower(b))`), unless it is already one of its elements. Quotes and nested
/// parentheses are skipped. None when the text has no key list.
pub fn extend_key_list(def: &str, column: &str) -> Option<String> {
    let bytes = def.as_bytes();
    let mut depth = 0usize;
    let mut open = None;
    let mut elements = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'"' | b'\'') => {
                // skip a quoted identifier or literal; doubled quotes stay inside
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == q {
                        if i + 1 < bytes.len() && bytes[i + 1] == q {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'(' => {
                depth += 1;
                if depth == 1 && open.is_none() {
                    open = Some(i);
                    start = i + 1;
                }
            }
            b')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 && open.is_some() {
                    elements.push(def[start..i].trim());
                    if elements.contains(&column) {
                        return Some(def.to_string());
                    }
                    return Some(format!("{}, {column}{}", &def[..i], &def[i..]));
                }
            }
            b',' if depth == 1 && open.is_some() => {
                elements.push(def[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// A trigger definition as `pg_get_triggerdef` prints it, re-pointed at `table` (already quoted
/// and qualified): the relation name after the first `ON` keyword that is a word of its own
/// (not inside a quoted identifier, a literal or a comment) is replaced. The trigger's name, its
/// `UPDATE OF` columns, its WHEN clause and its arguments stay byte for byte, whatever they
/// contain. None when the text has no such `ON` followed by a relation name.
pub fn retarget_trigger(def: &str, table: &str) -> Option<String> {
    let bytes = def.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    // the end of the quoted token starting at i (a doubled quote stays inside)
    let quoted_end = |mut i: usize| -> Option<usize> {
        let q = bytes[i];
        i += 1;
        while i < bytes.len() {
            if bytes[i] == q {
                if i + 1 < bytes.len() && bytes[i + 1] == q {
                    i += 2;
                    continue;
                }
                return Some(i + 1);
            }
            i += 1;
        }
        None
    };
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => i = quoted_end(i)?,
            b if word(b) => {
                let start = i;
                while i < bytes.len() && word(bytes[i]) {
                    i += 1;
                }
                if def[start..i].eq_ignore_ascii_case("on") {
                    // the relation name: identifiers (plain or quoted) joined by dots
                    let mut j = i;
                    while j < bytes.len() && bytes[j] == b' ' {
                        j += 1;
                    }
                    let name_start = j;
                    loop {
                        if j < bytes.len() && bytes[j] == b'"' {
                            j = quoted_end(j)?;
                        } else if j < bytes.len() && word(bytes[j]) {
                            while j < bytes.len() && word(bytes[j]) {
                                j += 1;
                            }
                        } else {
                            return None;
                        }
                        if j < bytes.len() && bytes[j] == b'.' {
                            j += 1;
                        } else {
                            break;
                        }
                    }
                    return Some(format!("{}{table}{}", &def[..name_start], &def[j..]));
                }
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_divide_into_aligned_sub_steps() {
        let d = |n| Step::Days(n);
        assert!(Step::Months(1).divides_into(&d(1)));
        assert!(Step::Months(12).divides_into(&Step::Months(3)));
        assert!(!Step::Months(3).divides_into(&Step::Months(2)));
        assert!(
            !Step::Months(1).divides_into(&d(7)),
            "weeks straddle months"
        );
        assert!(Step::Months(1).divides_into(&Step::Minutes(60)));
        assert!(!Step::Months(1).divides_into(&Step::Minutes(7)));
        assert!(d(7).divides_into(&d(1)));
        assert!(d(14).divides_into(&d(7)));
        assert!(
            d(14).divides_into(&d(2)),
            "Monday-aligned fortnights start on even days"
        );
        assert!(!d(7).divides_into(&d(2)));
        assert!(!d(1).divides_into(&Step::Months(1)));
        assert!(Step::Minutes(60).divides_into(&Step::Minutes(15)));
        assert!(Step::Int(1000).divides_into(&Step::Int(100)));
        assert!(!Step::Int(1000).divides_into(&Step::Int(300)));
        assert!(!Step::Int(1000).divides_into(&d(1)));
    }

    #[test]
    fn retarget_trigger_replaces_only_the_table() {
        let t = "public.t_new";
        assert_eq!(
            retarget_trigger(
                "CREATE TRIGGER \"x ON public.t y\" BEFORE UPDATE OF \"on\", \"a ON public.t\" ON public.t FOR EACH ROW WHEN ((new.v <> ' ON public.t ')) EXECUTE FUNCTION f('ON public.t')",
                t
            )
            .as_deref(),
            Some("CREATE TRIGGER \"x ON public.t y\" BEFORE UPDATE OF \"on\", \"a ON public.t\" ON public.t_new FOR EACH ROW WHEN ((new.v <> ' ON public.t ')) EXECUTE FUNCTION f('ON public.t')")
        );
        assert_eq!(
            retarget_trigger("CREATE CONSTRAINT TRIGGER c AFTER INSERT ON \"My Schema\".\"a\"\"b\" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION g()", t).as_deref(),
            Some("CREATE CONSTRAINT TRIGGER c AFTER INSERT ON public.t_new DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION g()")
        );
        assert_eq!(
            retarget_trigger("CREATE TRIGGER \"ON\" AFTER TRUNCATE", t),
            None
        );
        assert_eq!(
            retarget_trigger("CREATE TRIGGER x AFTER INSERT ON ", t),
            None
        );
        assert_eq!(
            retarget_trigger("CREATE TRIGGER \"unterminated ON t", t),
            None
        );
    }

    #[test]
    fn steps_from_intervals() {
        assert_eq!(Step::from_interval(1, 0, 0, false), Ok(Step::Months(1)));
        assert_eq!(Step::from_interval(12, 0, 0, true), Ok(Step::Months(12)));
        assert_eq!(Step::from_interval(0, 7, 0, false), Ok(Step::Days(7)));
        assert_eq!(
            Step::from_interval(0, 0, 3_600_000_000, false),
            Ok(Step::Minutes(60))
        );
        assert_eq!(
            Step::from_interval(0, 0, 2 * MICROS_PER_DAY, false),
            Ok(Step::Days(2))
        );
        assert!(Step::from_interval(0, 0, 0, false).is_err());
        assert!(Step::from_interval(-1, 0, 0, false).is_err());
        assert!(Step::from_interval(1, 1, 0, false).is_err());
        assert!(Step::from_interval(0, 0, 90_000_000, false).is_err());
        assert!(Step::from_interval(0, 0, 3_600_000_000, true).is_err());
        assert_eq!(Step::parse_int(" 100 "), Ok(Step::Int(100)));
        assert!(Step::parse_int("0").is_err());
        assert!(Step::parse_int("-5").is_err());
        assert!(Step::parse_int("1 day").is_err());
    }

    #[test]
    fn canonical_round_trips() {
        for s in [
            Step::Minutes(15),
            Step::Days(7),
            Step::Months(3),
            Step::Int(1000),
        ] {
            assert_eq!(Step::from_canonical(&s.canonical()), Ok(s));
        }
        assert!(Step::from_canonical("weeks:1").is_err());
        assert!(Step::from_canonical("days:0").is_err());
    }

    #[test]
    fn integer_periods() {
        let p = IntPeriods(100);
        assert_eq!(p.floor(250), 200);
        assert_eq!(p.floor(-1), -100);
        assert_eq!(p.floor(0), 0);
        assert_eq!(p.add(200, 3), Some(500));
        assert_eq!(p.add(200, -3), Some(-100));
        assert_eq!(IntPeriods(10).add(i64::MAX - 5, 1), None);
        assert_eq!(
            Step::Days(14).origin_days(),
            4,
            "weeks start on Monday 1970-01-05"
        );
        assert_eq!(Step::Days(3).origin_days(), 0);
    }

    #[test]
    fn civil_text_and_suffixes() {
        let c = |year, month, day, micros| Civil {
            year,
            month,
            day,
            micros,
        };
        assert_eq!(c(2026, 1, 1, 0).format(), "2026-01-01 00:00:00");
        assert_eq!(c(1, 2, 3, 1).format(), "0001-02-03 00:00:00.000001");
        assert_eq!(
            c(2024, 2, 29, 86_399_500_000).format(),
            "2024-02-29 23:59:59.500000"
        );
        assert_eq!(c(2026, 1, 1, 0).suffix(false), "_p20260101");
        assert_eq!(
            c(2026, 1, 31, 5 * 3_600_000_000).suffix(true),
            "_p20260131_0500"
        );
        // a piece cut around an existing child that does not start at midnight
        assert_eq!(
            c(2026, 1, 31, 23_400_000_000).suffix(false),
            "_p20260131_0630"
        );
        assert_eq!(
            c(2026, 1, 31, 23_415_000_000).suffix(false),
            "_p20260131_063015"
        );
        assert_eq!(
            c(2026, 1, 31, 23_415_000_007).suffix(false),
            "_p20260131_063015_000007"
        );
        assert_eq!(int_suffix(5000), "_p5000");
        assert_eq!(int_suffix(-1000), "_p-1000");
    }

    fn r(lower: Option<i64>, upper: Option<i64>) -> Range {
        Range { lower, upper }
    }

    #[test]
    fn plans_cover_periods_and_skip_existing() {
        let s = IntPeriods(100);
        let got = plan(&s, &[], 150, 420, (None, None));
        assert_eq!(
            got,
            vec![
                r(Some(100), Some(200)),
                r(Some(200), Some(300)),
                r(Some(300), Some(400)),
                r(Some(400), Some(500))
            ]
        );
        let existing = [r(Some(200), Some(300)), r(Some(350), Some(380))];
        let got = plan(&s, &existing, 150, 420, (None, None));
        assert_eq!(
            got,
            vec![
                r(Some(100), Some(200)),
                r(Some(300), Some(350)),
                r(Some(380), Some(400)),
                r(Some(400), Some(500))
            ]
        );
        // an unbounded existing child covers everything above it
        let got = plan(&s, &[r(Some(300), None)], 150, 420, (None, None));
        assert_eq!(got, vec![r(Some(100), Some(200)), r(Some(200), Some(300))]);
        assert!(plan(&s, &[r(None, None)], 150, 420, (None, None)).is_empty());
    }

    #[test]
    fn plans_respect_type_limits() {
        let s = IntPeriods(10_000);
        let got = plan(&s, &[], -32_768, 32_767, (Some(-32_768), Some(32_767)));
        assert_eq!(got.first(), Some(&r(None, Some(-30_000))));
        assert_eq!(got.last(), Some(&r(Some(30_000), None)));
        assert_eq!(got.len(), 8);
        let got = plan(&IntPeriods(10), &[], i64::MAX - 3, i64::MAX, (None, None));
        assert_eq!(got, vec![r(Some(i64::MAX - 7), None)]);
    }

    #[test]
    fn key_lists_get_the_partition_column() {
        assert_eq!(
            extend_key_list("PRIMARY KEY (id)", "viewed_at").as_deref(),
            Some("PRIMARY KEY (id, viewed_at)")
        );
        assert_eq!(
            extend_key_list("PRIMARY KEY (id, viewed_at)", "viewed_at").as_deref(),
            Some("PRIMARY KEY (id, viewed_at)")
        );
        assert_eq!(
            extend_key_list(
                "UNIQUE NULLS NOT DISTINCT (\"a,)\", b) INCLUDE (c)",
                "\"k y\""
            )
            .as_deref(),
            Some("UNIQUE NULLS NOT DISTINCT (\"a,)\", b, \"k y\") INCLUDE (c)")
        );
        assert_eq!(
            extend_key_list("USING btree (lower(a), (b || ')')) WHERE (c > 0)", "d").as_deref(),
            Some("USING btree (lower(a), (b || ')'), d) WHERE (c > 0)")
        );
        assert_eq!(extend_key_list("PRIMARY KEY", "d"), None);
        assert_eq!(extend_key_list("x (a", "d"), None);
    }
}
