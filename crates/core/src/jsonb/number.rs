//! Value comparison of JSON numbers in any textual form, without going through f64.

use serde_json::Number;
use std::cmp::Ordering;

/// A decimal in canonical form: sign, significant digits without leading or trailing zeros, and
/// the power of ten of the last digit. Zero is `(false, "", 0)`.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

fn canonical(text: &str) -> Option<Decimal> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let all = format!("{int}{frac}");
    let mut exponent = exp.checked_sub(i64::try_from(frac.len()).ok()?)?;
    let trimmed = all.trim_start_matches('0');
    let no_trailing = trimmed.trim_end_matches('0');
    exponent = exponent.checked_add(i64::try_from(trimmed.len() - no_trailing.len()).ok()?)?;
    if no_trailing.is_empty() {
        return Some(Decimal {
            negative: false,
            digits: String::new(),
            exponent: 0,
        });
    }
    Some(Decimal {
        negative,
        digits: no_trailing.to_string(),
        exponent,
    })
}

/// True when two JSON numbers denote the same value (`1`, `1.0`, `10e-1` are equal).
pub fn numbers_equal(a: &Number, b: &Number) -> bool {
    let (sa, sb) = (a.to_string(), b.to_string());
    if sa == sb {
        return true;
    }
    match (canonical(&sa), canonical(&sb)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The order of two decimal numbers written in JSON's number syntax, exactly (any number of
/// digits, any exponent). None when either is not a number.
pub fn compare_decimal(a: &str, b: &str) -> Option<Ordering> {
    let (x, y) = (canonical(a)?, canonical(b)?);
    let sign = |d: &Decimal| match (d.digits.is_empty(), d.negative) {
        (true, _) => 0,
        (false, true) => -1,
        (false, false) => 1,
    };
    let (sx, sy) = (sign(&x), sign(&y));
    if sx != sy || sx == 0 {
        return Some(sx.cmp(&sy));
    }
    // Same sign, both non-zero: compare magnitudes, then flip for negatives. The magnitude's
    // order is that of the position of the leading digit, then of the digits themselves.
    let lead = |d: &Decimal| i128::from(d.exponent) + d.digits.len() as i128;
    let magnitude = lead(&x).cmp(&lead(&y)).then_with(|| {
        let (dx, dy) = (x.digits.as_bytes(), y.digits.as_bytes());
        let n = dx.len().max(dy.len());
        (0..n)
            .map(|i| {
                dx.get(i)
                    .copied()
                    .unwrap_or(b'0')
                    .cmp(&dy.get(i).copied().unwrap_or(b'0'))
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    Some(if sx < 0 {
        magnitude.reverse()
    } else {
        magnitude
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        serde_json::from_str(s).expect("number literal")
    }

    #[test]
    fn equal_forms() {
        for (a, b) in [
            ("1", "1.0"),
            ("1", "10e-1"),
            ("0", "-0.0"),
            ("120", "1.2e2"),
            ("-3.50", "-3.5"),
        ] {
            assert!(numbers_equal(&n(a), &n(b)), "{a} == {b}");
        }
    }

    #[test]
    fn unequal_forms() {
        for (a, b) in [("1", "-1"), ("1", "1.0001"), ("12", "120"), ("0.1", "0.01")] {
            assert!(!numbers_equal(&n(a), &n(b)), "{a} != {b}");
        }
    }

    #[test]
    fn compares_exactly() {
        use Ordering::*;
        for (a, b, want) in [
            ("100.00000000000000001", "100", Greater),
            ("0.49999999999999999999", "0.5", Less),
            ("1e500", "1e400", Greater),
            ("-1e500", "-1e400", Less),
            ("-0.0", "0", Equal),
            ("1.20", "12e-1", Equal),
            ("-2", "1", Less),
            ("0", "-0.001", Greater),
            ("99", "100", Less),
            ("-99", "-100", Greater),
            ("0.00012", "0.0012", Less),
            ("18446744073709551616", "18446744073709551615", Greater),
        ] {
            assert_eq!(compare_decimal(a, b), Some(want), "{a} vs {b}");
            assert_eq!(compare_decimal(b, a), Some(want.reverse()), "{b} vs {a}");
        }
        assert_eq!(compare_decimal("x", "1"), None);
    }

    #[test]
    fn canonical_rejects_garbage() {
        assert_eq!(canonical("1x"), None);
        assert_eq!(canonical("."), None);
    }
}
