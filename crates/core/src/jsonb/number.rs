//! Value comparison of JSON numbers in any textual form, without going through f64.

use serde_json::Number;

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
    fn canonical_rejects_garbage() {
        assert_eq!(canonical("1x"), None);
        assert_eq!(canonical("."), None);
    }
}
