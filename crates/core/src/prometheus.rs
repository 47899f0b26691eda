//! Prometheus text exposition format 0.0.4: label sets and sample values.

/// A label value with `\`, `"` and newlines escaped.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `name` is a valid metric or label name (`[a-zA-Z_:][a-zA-Z0-9_:]*`; colons only in
/// metric names).
pub fn valid_name(name: &str, label: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (!label && c == ':')
            || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

/// `{a="x",b="y"}` from label pairs (empty for none); pairs whose name is not a valid label name
/// are left out.
pub fn label_set<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let inner: Vec<String> = pairs
        .into_iter()
        .filter(|(k, _)| valid_name(k, true) && !k.starts_with("__"))
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
        .collect();
    if inner.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", inner.join(","))
    }
}

/// A sample value as the format writes it: `NaN`, `+Inf`, `-Inf` or a Go-style float.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_checked() {
        assert_eq!(label_set([]), "");
        assert_eq!(
            label_set([("datname", "a\"b\\c\nd"), ("state", "idle")]),
            "{datname=\"a\\\"b\\\\c\\nd\",state=\"idle\"}"
        );
        assert_eq!(
            label_set([("bad-name", "x"), ("__reserved", "y"), ("ok", "")]),
            "{ok=\"\"}"
        );
        assert!(valid_name("pg_stat_database_xact_commit_total", false));
        assert!(valid_name("a:b", false));
        assert!(!valid_name("a:b", true));
        assert!(!valid_name("1a", false));
        assert!(!valid_name("", true));
    }

    #[test]
    fn values() {
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(1e21), "1000000000000000000000");
    }
}
