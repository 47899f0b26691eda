//! Time positions by PostgreSQL's own calendar. A time position is a `timestamp` without time
//! zone holding the civil time in the parent's time zone (SQL converts column values with
//! `timezone(cfg.time_zone, v)`). Periods start where `date_bin` puts them (minutes; days, whole
//! weeks from Monday 1970-01-05) or `date_trunc('month')` less the months past an aligned month
//! (month steps, aligned on January of year 0), and move by `timestamp + interval`; text is read
//! by `timestamp_in` and broken into fields by `timestamp2tm`.

use super::invalid;
use pg_storage_core::partition::{Civil, PartitionError, Periods};
use pgrx::datetime::{DateTimeParts, Interval, Timestamp};
use pgrx::prelude::*;
use pgrx::{direct_function_call, pg_sys};
use std::ffi::CString;

/// 1970-01-01 00:00 as a PostgreSQL timestamp (microseconds since 2000-01-01).
const UNIX_EPOCH: i64 = -946_684_800_000_000;
const MICROS_PER_DAY: i64 = 86_400_000_000;

fn ts(p: i64) -> Timestamp {
    Timestamp::saturating_from_raw(p)
}

fn interval(months: i64, days: i64, micros: i64) -> Option<Interval> {
    Interval::new(months.try_into().ok()?, days.try_into().ok()?, micros).ok()
}

fn out_of_range(what: &str) -> ! {
    invalid(
        PartitionError {
            message: format!("a partition step of {what} is out of range"),
            hint: "Use a step shorter than 10,000 years.",
        },
        None,
    )
}

/// Fields of a finite timestamp, by PostgreSQL's calendar.
pub(super) fn civil(p: i64) -> Civil {
    let mut tm = pg_sys::pg_tm::default();
    let mut fsec: pg_sys::fsec_t = 0;
    // SAFETY: a null time zone asks for the fields of the timestamp itself; tm and fsec are ours
    let rc = unsafe {
        pg_sys::timestamp2tm(
            p,
            std::ptr::null_mut(),
            &mut tm,
            &mut fsec,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if rc != 0 {
        invalid(
            PartitionError {
                message: "timestamp out of range".into(),
                hint: "Give a finite value from 0001-01-01 to 9999-12-31.",
            },
            None,
        );
    }
    Civil {
        year: i64::from(tm.tm_year),
        month: i64::from(tm.tm_mon),
        day: i64::from(tm.tm_mday),
        micros: (i64::from(tm.tm_hour) * 3600 + i64::from(tm.tm_min) * 60 + i64::from(tm.tm_sec))
            * 1_000_000
            + i64::from(fsec),
    }
}

/// A position written `YYYY-MM-DD HH24:MI:SS[.US]`, read by `timestamp_in`; years 1 to 9999.
pub(super) fn parse(text: &str) -> i64 {
    let bad = |message: String| -> ! {
        invalid(
            PartitionError {
                message,
                hint: "Give a finite value from 0001-01-01 to 9999-12-31.",
            },
            None,
        )
    };
    let Ok(c) = CString::new(text) else {
        bad(format!("\"{text}\" is not a timestamp"))
    };
    // SAFETY: timestamp_in takes (cstring, oid, typmod) and returns a by-value timestamp
    let t: Timestamp = unsafe {
        direct_function_call(
            pg_sys::timestamp_in,
            &[
                c.as_c_str().into_datum(),
                pg_sys::InvalidOid.into_datum(),
                (-1i32).into_datum(),
            ],
        )
    }
    .unwrap_or_else(|| bad(format!("\"{text}\" is not a timestamp")));
    let p = t.into_inner();
    if !t.is_finite() || !(1..=9999).contains(&civil(p).year) {
        bad(format!(
            "\"{text}\" is outside the years partitions cover (1 to 9999)"
        ));
    }
    p
}

/// Periods of a time step on civil timestamps.
/// The time steps (an integer step has `IntPeriods`), so every match below is whole.
pub(super) enum TimePeriods {
    Minutes(i64),
    /// `origin_days`: days after 1970-01-01 where periods start (Mondays for whole weeks)
    Days {
        n: i64,
        origin_days: i64,
    },
    Months(i64),
}

impl TimePeriods {
    fn bin(&self, stride: Interval, p: i64, origin: i64) -> i64 {
        // SAFETY: date_bin(interval, timestamp, timestamp) on finite values
        let t: Option<Timestamp> = unsafe {
            direct_function_call(
                pg_sys::timestamp_bin,
                &[
                    stride.into_datum(),
                    ts(p).into_datum(),
                    ts(origin).into_datum(),
                ],
            )
        };
        t.map(Timestamp::into_inner).unwrap_or(p)
    }
}

impl Periods for TimePeriods {
    fn floor(&self, p: i64) -> i64 {
        match *self {
            TimePeriods::Minutes(n) => {
                let stride = n
                    .checked_mul(60_000_000)
                    .and_then(|m| interval(0, 0, m))
                    .unwrap_or_else(|| out_of_range(&format!("{n} minutes")));
                self.bin(stride, p, UNIX_EPOCH)
            }
            TimePeriods::Days { n, origin_days } => {
                let stride =
                    interval(0, n, 0).unwrap_or_else(|| out_of_range(&format!("{n} days")));
                self.bin(stride, p, UNIX_EPOCH + origin_days * MICROS_PER_DAY)
            }
            TimePeriods::Months(n) => {
                let c = civil(p);
                let past = (c.year * 12 + c.month - 1).rem_euclid(n);
                let month = ts(p).truncate(DateTimeParts::Month);
                let back =
                    interval(-past, 0, 0).unwrap_or_else(|| out_of_range(&format!("{n} months")));
                (month + back).into_inner()
            }
        }
    }

    fn add(&self, p: i64, k: i64) -> Option<i64> {
        let by = match *self {
            TimePeriods::Minutes(n) => interval(0, 0, k.checked_mul(n)?.checked_mul(60_000_000)?),
            TimePeriods::Days { n, .. } => interval(0, k.checked_mul(n)?, 0),
            TimePeriods::Months(n) => interval(k.checked_mul(n)?, 0, 0),
        }?;
        // past PostgreSQL's last timestamp there is no period start
        PgTryBuilder::new(|| Some((ts(p) + by).into_inner()))
            .catch_when(PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW, |_| None)
            .execute()
    }
}
