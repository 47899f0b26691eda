//! Range-partition arithmetic: steps, aligned periods, child names, and which ranges to create
//! between existing children. Times are civil (wall-clock) instants in the parent's time zone,
//! written `YYYY-MM-DD HH:MM:SS[.ffffff]`; integers are decimal. SQL converts column values to
//! and from these positions, so nothing here depends on a time zone.

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

    /// The position at or below `p` where its period starts.
    pub fn floor(&self, p: i64) -> i64 {
        match *self {
            Step::Minutes(n) => p.div_euclid(n * MICROS_PER_MINUTE) * n * MICROS_PER_MINUTE,
            Step::Days(n) => {
                let day = p.div_euclid(MICROS_PER_DAY);
                let origin = if n % 7 == 0 { MONDAY_EPOCH_DAYS } else { 0 };
                ((day - origin).div_euclid(n) * n + origin) * MICROS_PER_DAY
            }
            Step::Months(n) => {
                let (y, m, _, _) = civil_parts(p);
                let index = (y * 12 + m - 1).div_euclid(n) * n;
                from_civil(index.div_euclid(12), index.rem_euclid(12) + 1, 1, 0)
            }
            Step::Int(n) => p.div_euclid(n) * n,
        }
    }

    /// `p` moved by `k` steps (p is a period start); None on overflow.
    pub fn add(&self, p: i64, k: i64) -> Option<i64> {
        match *self {
            Step::Minutes(n) => p.checked_add(k.checked_mul(n)?.checked_mul(MICROS_PER_MINUTE)?),
            Step::Days(n) => p.checked_add(k.checked_mul(n)?.checked_mul(MICROS_PER_DAY)?),
            Step::Months(n) => {
                let (y, m, d, rest) = civil_parts(p);
                let index = (y * 12 + m - 1).checked_add(k.checked_mul(n)?)?;
                if !(0..12 * 300_000).contains(&index) {
                    return None;
                }
                Some(from_civil(
                    index.div_euclid(12),
                    index.rem_euclid(12) + 1,
                    d,
                    rest,
                ))
            }
            Step::Int(n) => p.checked_add(k.checked_mul(n)?),
        }
    }

    /// Parses a position written for this kind of step.
    pub fn parse_pos(&self, text: &str) -> Result<i64, PartitionError> {
        if self.is_time() {
            parse_civil(text)
        } else {
            text.trim()
                .parse::<i64>()
                .map_err(|_| err(format!("\"{text}\" is not a whole number"), INT_HINT))
        }
    }

    /// Writes a position for this kind of step.
    pub fn format_pos(&self, p: i64) -> String {
        if self.is_time() {
            format_civil(p)
        } else {
            p.to_string()
        }
    }

    /// Child-name suffix for a child starting at `lower`: `_pYYYYMMDD`, `_pYYYYMMDD_HH24MI` for
    /// sub-day steps (or a lower bound off the day), `_p<lower>` for integers.
    pub fn suffix(&self, lower: i64) -> String {
        match self {
            Step::Int(_) => format!("_p{lower}"),
            _ => {
                let (y, m, d, rest) = civil_parts(lower);
                let mut s = format!("_p{y:04}{m:02}{d:02}");
                if matches!(self, Step::Minutes(_)) || rest != 0 {
                    let minutes = rest / MICROS_PER_MINUTE;
                    s.push_str(&format!("_{:02}{:02}", minutes / 60, minutes % 60));
                    let sub = rest % MICROS_PER_MINUTE;
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
    }
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
    step: &Step,
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

// ---- civil time: microseconds since 1970-01-01 00:00 on a calendar with no time zone ----

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let next = if m == 12 {
        days_from_civil(y + 1, 1, 1)
    } else {
        days_from_civil(y, m + 1, 1)
    };
    next - days_from_civil(y, m, 1)
}

/// (year, month, day, microseconds into the day)
fn civil_parts(p: i64) -> (i64, i64, i64, i64) {
    let (y, m, d) = civil_from_days(p.div_euclid(MICROS_PER_DAY));
    (y, m, d, p.rem_euclid(MICROS_PER_DAY))
}

/// The day is clamped to the month's length (as PostgreSQL does for `+ interval '1 month'`).
fn from_civil(y: i64, m: i64, d: i64, rest: i64) -> i64 {
    let d = d.min(days_in_month(y, m));
    days_from_civil(y, m, d) * MICROS_PER_DAY + rest
}

/// `YYYY-MM-DD[ HH:MM[:SS[.ffffff]]]` (also with `T`) to a civil position.
pub fn parse_civil(text: &str) -> Result<i64, PartitionError> {
    let bad = || {
        err(
            format!("\"{text}\" is not a civil time YYYY-MM-DD HH:MM:SS"),
            TIME_HINT,
        )
    };
    let t = text.trim();
    let (date, time) = match t.find([' ', 'T']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mut dp = date.splitn(3, '-');
    let num = |s: Option<&str>| -> Result<i64, PartitionError> {
        s.filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)
    };
    let (y, m, d) = (num(dp.next())?, num(dp.next())?, num(dp.next())?);
    // years 1 to 9999: the positions PostgreSQL's to_char writes, and no arithmetic past them
    if !(1..=9999).contains(&y) {
        return Err(err(
            format!("\"{text}\" is outside the years partitions cover (1 to 9999)"),
            "Give a finite value from 0001-01-01 to 9999-12-31.",
        ));
    }
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(bad());
    }
    let mut rest = 0i64;
    if let Some(time) = time {
        let (hms, frac) = match time.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (time, None),
        };
        let mut tp = hms.split(':');
        let h = num(tp.next())?;
        let mi = num(tp.next())?;
        let s = match tp.next() {
            Some(s) => num(Some(s))?,
            None => 0,
        };
        if tp.next().is_some() || h > 23 || mi > 59 || s > 59 {
            return Err(bad());
        }
        let mut micros = 0;
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            micros = format!("{f:0<6}").parse::<i64>().map_err(|_| bad())?;
        }
        rest = ((h * 60 + mi) * 60 + s) * 1_000_000 + micros;
    }
    Ok(days_from_civil(y, m, d) * MICROS_PER_DAY + rest)
}

/// A civil position as `YYYY-MM-DD HH:MM:SS`, with `.ffffff` when not on a whole second.
pub fn format_civil(p: i64) -> String {
    let (y, m, d, rest) = civil_parts(p);
    let secs = rest / 1_000_000;
    let mut s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if rest % 1_000_000 != 0 {
        s.push_str(&format!(".{:06}", rest % 1_000_000));
    }
    s
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

    fn t(s: &str) -> i64 {
        parse_civil(s).unwrap()
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
    fn civil_round_trips() {
        for s in [
            "2026-01-01 00:00:00",
            "2024-02-29 23:59:59",
            "1969-12-31 12:00:00.000001",
            "0001-01-01 00:00:00",
            "9999-12-31 23:59:59.5",
        ] {
            let p = t(s);
            let back = format_civil(p);
            assert_eq!(t(&back), p, "{s}");
        }
        assert_eq!(format_civil(0), "1970-01-01 00:00:00");
        assert_eq!(t("2026-03-01"), t("2026-03-01 00:00:00"));
        assert_eq!(t("2026-03-01T10:30"), t("2026-03-01 10:30:00"));
        assert!(parse_civil("2025-02-29 00:00:00").is_err());
        assert!(parse_civil("2026-13-01").is_err());
        assert!(parse_civil("2026-01-01 24:00:00").is_err());
        assert!(parse_civil("yesterday").is_err());
    }

    #[test]
    fn floors_align_periods() {
        let p = t("2026-05-17 13:47:12.5");
        assert_eq!(
            format_civil(Step::Months(1).floor(p)),
            "2026-05-01 00:00:00"
        );
        assert_eq!(
            format_civil(Step::Months(3).floor(p)),
            "2026-04-01 00:00:00"
        );
        assert_eq!(
            format_civil(Step::Months(12).floor(p)),
            "2026-01-01 00:00:00"
        );
        assert_eq!(format_civil(Step::Days(1).floor(p)), "2026-05-17 00:00:00");
        // 2026-05-17 is a Sunday: its week started on Monday the 11th
        assert_eq!(format_civil(Step::Days(7).floor(p)), "2026-05-11 00:00:00");
        assert_eq!(
            format_civil(Step::Minutes(60).floor(p)),
            "2026-05-17 13:00:00"
        );
        assert_eq!(
            format_civil(Step::Minutes(15).floor(p)),
            "2026-05-17 13:45:00"
        );
        // before the epoch
        assert_eq!(
            format_civil(Step::Months(1).floor(t("1969-07-20 20:17:00"))),
            "1969-07-01 00:00:00"
        );
        assert_eq!(Step::Int(100).floor(250), 200);
        assert_eq!(Step::Int(100).floor(-1), -100);
        assert_eq!(Step::Int(100).floor(0), 0);
    }

    #[test]
    fn adding_steps() {
        let jan = t("2026-01-01");
        assert_eq!(
            format_civil(Step::Months(1).add(jan, 1).unwrap()),
            "2026-02-01 00:00:00"
        );
        assert_eq!(
            format_civil(Step::Months(3).add(jan, 4).unwrap()),
            "2027-01-01 00:00:00"
        );
        assert_eq!(
            format_civil(Step::Months(1).add(jan, -1).unwrap()),
            "2025-12-01 00:00:00"
        );
        assert_eq!(
            format_civil(Step::Days(7).add(jan, 1).unwrap()),
            "2026-01-08 00:00:00"
        );
        assert_eq!(Step::Int(10).add(i64::MAX - 5, 1), None);
    }

    #[test]
    fn suffixes() {
        assert_eq!(Step::Months(1).suffix(t("2026-01-01")), "_p20260101");
        assert_eq!(Step::Days(1).suffix(t("2026-01-31")), "_p20260131");
        assert_eq!(
            Step::Minutes(60).suffix(t("2026-01-31 05:00")),
            "_p20260131_0500"
        );
        // a piece cut around an existing child that does not start at midnight
        assert_eq!(
            Step::Days(1).suffix(t("2026-01-31 06:30")),
            "_p20260131_0630"
        );
        assert_eq!(
            Step::Days(1).suffix(t("2026-01-31 06:30:15")),
            "_p20260131_063015"
        );
        assert_eq!(Step::Int(1000).suffix(5000), "_p5000");
        assert_eq!(Step::Int(1000).suffix(-1000), "_p-1000");
    }

    fn r(lower: Option<i64>, upper: Option<i64>) -> Range {
        Range { lower, upper }
    }

    #[test]
    fn plans_cover_periods_and_skip_existing() {
        let s = Step::Int(100);
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
        let s = Step::Int(10_000);
        let got = plan(&s, &[], -32_768, 32_767, (Some(-32_768), Some(32_767)));
        assert_eq!(got.first(), Some(&r(None, Some(-30_000))));
        assert_eq!(got.last(), Some(&r(Some(30_000), None)));
        assert_eq!(got.len(), 8);
        let got = plan(&Step::Int(10), &[], i64::MAX - 3, i64::MAX, (None, None));
        assert_eq!(got, vec![r(Some(i64::MAX - 7), None)]);
    }

    #[test]
    fn plans_months() {
        let s = Step::Months(1);
        let got = plan(&s, &[], t("2026-01-15"), t("2026-03-02"), (None, None));
        let text: Vec<_> = got
            .iter()
            .map(|r| {
                (
                    format_civil(r.lower.unwrap()),
                    format_civil(r.upper.unwrap()),
                )
            })
            .collect();
        assert_eq!(
            text,
            vec![
                (
                    "2026-01-01 00:00:00".to_string(),
                    "2026-02-01 00:00:00".to_string()
                ),
                (
                    "2026-02-01 00:00:00".to_string(),
                    "2026-03-01 00:00:00".to_string()
                ),
                (
                    "2026-03-01 00:00:00".to_string(),
                    "2026-04-01 00:00:00".to_string()
                ),
            ]
        );
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
