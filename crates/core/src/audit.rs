//! Audit capture options: what `audit.enable` writes into the capture triggers' arguments (as
//! `audit._capture_args` in sql/audit.sql encodes them) and what the trigger checks them against.
//!
//! A capture trigger carries its options in `pg_trigger.tgargs`, so they are dumped with the
//! trigger and visible in the catalog:
//! `[scope, capture_query, excluded column, ...]` where scope is `table` (the table `audit.enable`
//! was called on) or `partition` (a partition of it: rows are logged under the audited ancestor).
//! The trigger obeys the configuration (`audit._tracked`), not these arguments: it refuses to run
//! when they differ from [`Options::to_args`] of the configured options.

/// Where a capture trigger sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// On the audited table itself.
    Table,
    /// On a partition (at any depth) of an audited partitioned table.
    Partition,
}

/// The options of one capture trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub scope: Scope,
    pub capture_query: bool,
    /// Columns kept out of row images and `changed_columns`, without duplicates, in the order
    /// given.
    pub exclude: Vec<String>,
}

impl Options {
    pub fn new(scope: Scope, capture_query: bool, exclude: &[String]) -> Options {
        let mut seen = Vec::with_capacity(exclude.len());
        for c in exclude {
            if !seen.contains(c) {
                seen.push(c.clone());
            }
        }
        Options {
            scope,
            capture_query,
            exclude: seen,
        }
    }

    /// The trigger arguments that encode these options.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            match self.scope {
                Scope::Table => "table".to_owned(),
                Scope::Partition => "partition".to_owned(),
            },
            self.capture_query.to_string(),
        ];
        args.extend(self.exclude.iter().cloned());
        args
    }

    /// Options from trigger arguments; the error says which argument is wrong.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let scope = match args.first().map(String::as_str) {
            Some("table") => Scope::Table,
            Some("partition") => Scope::Partition,
            Some(other) => {
                return Err(format!(
                    "argument 1 must be 'table' or 'partition', got '{other}'"
                ))
            }
            None => return Err("the trigger has no arguments".to_owned()),
        };
        let capture_query = match args.get(1).map(String::as_str) {
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(format!(
                    "argument 2 must be 'true' or 'false', got '{other}'"
                ))
            }
            None => return Err("argument 2 (capture_query) is missing".to_owned()),
        };
        Ok(Options::new(scope, capture_query, &args[2..]))
    }
}

/// The columns that are not part of the key: `row_image - non_key` is the key as a jsonb object.
pub fn non_key(columns: &[String], key: &[String]) -> Vec<String> {
    columns
        .iter()
        .filter(|c| !key.contains(c))
        .cloned()
        .collect()
}

/// The columns logged, in table order: all but the excluded ones.
pub fn logged(columns: &[String], exclude: &[String]) -> Vec<String> {
    non_key(columns, exclude)
}

/// The largest setting value parsed as JSON for an actor; a longer one is kept as a string.
pub const ACTOR_JSON_MAX: usize = 64 * 1024;

/// Whether PostgreSQL's jsonb takes this JSON as it is: no NUL character in a string or key
/// (`\u0000`), and numbers within its numeric range (at most 131072 digits before the decimal
/// point and 16383 after). Anything else is kept as a string, never failing the writer.
fn jsonb_accepts(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => !s.contains('\0'),
        serde_json::Value::Number(n) => numeric_fits(&n.to_string()),
        serde_json::Value::Array(a) => a.iter().all(jsonb_accepts),
        serde_json::Value::Object(o) => {
            o.iter().all(|(k, v)| !k.contains('\0') && jsonb_accepts(v))
        }
        _ => true,
    }
}

/// Whether a JSON number's text fits PostgreSQL's numeric.
fn numeric_fits(text: &str) -> bool {
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => match text[i + 1..].parse::<i64>() {
            Ok(e) => (&text[..i], e),
            Err(_) => return false,
        },
        None => (text, 0),
    };
    let mantissa = mantissa.trim_start_matches('-');
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let int_digits = int.trim_start_matches('0').len() as i64;
    let frac_digits = frac.len() as i64;
    // digits before the point and after it once the exponent moved the point
    int_digits.saturating_add(exp) <= 131_072 && frac_digits.saturating_sub(exp) <= 16_383
}

/// The names of `pg_storage_ext.audit_actor_settings`: a comma-separated list, blanks around
/// names ignored, empty names and repeats left out.
pub fn actor_settings(list: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// The actor of a statement as JSON object text: each setting that is set (a non-empty value),
/// under its name; a value holding a JSON object or array (PostgREST's `request.jwt.claims`) as
/// that JSON, any other as a string. None when no setting is set.
pub fn actor_json<'a>(values: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<String> {
    let mut actor = serde_json::Map::new();
    for (name, value) in values {
        if value.is_empty() {
            continue;
        }
        let trimmed = value.trim_start();
        let json = (value.len() <= ACTOR_JSON_MAX
            && (trimmed.starts_with('{') || trimmed.starts_with('[')))
        .then(|| serde_json::from_str::<serde_json::Value>(value).ok())
        .flatten()
        .filter(jsonb_accepts);
        actor.insert(
            name.to_owned(),
            json.unwrap_or_else(|| serde_json::Value::String(value.to_owned())),
        );
    }
    (!actor.is_empty()).then(|| serde_json::Value::Object(actor).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn options_round_trip_through_trigger_arguments() {
        let o = Options::new(
            Scope::Table,
            true,
            &s(&["password", "a \"b\".c", "password"]),
        );
        assert_eq!(o.exclude, s(&["password", "a \"b\".c"]));
        assert_eq!(o.to_args(), s(&["table", "true", "password", "a \"b\".c"]));
        assert_eq!(Options::parse(&o.to_args()), Ok(o));
        let p = Options::new(Scope::Partition, false, &[]);
        assert_eq!(p.to_args(), s(&["partition", "false"]));
        assert_eq!(Options::parse(&p.to_args()), Ok(p));
    }

    #[test]
    fn bad_arguments_are_named() {
        assert_eq!(
            Options::parse(&[]),
            Err("the trigger has no arguments".to_owned())
        );
        assert!(Options::parse(&s(&["tabel", "true"]))
            .unwrap_err()
            .contains("argument 1"));
        assert!(Options::parse(&s(&["table", "yes"]))
            .unwrap_err()
            .contains("argument 2"));
        assert!(Options::parse(&s(&["table"]))
            .unwrap_err()
            .contains("missing"));
    }

    #[test]
    fn column_arithmetic() {
        let cols = s(&["id", "tenant", "body", "secret"]);
        assert_eq!(
            non_key(&cols, &s(&["tenant", "id"])),
            s(&["body", "secret"])
        );
        assert_eq!(logged(&cols, &s(&["secret"])), s(&["id", "tenant", "body"]));
    }

    #[test]
    fn actor_settings_list() {
        assert_eq!(
            actor_settings(" app.user_id, request.jwt.claims ,,app.user_id,"),
            s(&["app.user_id", "request.jwt.claims"])
        );
        assert!(actor_settings("").is_empty());
    }

    #[test]
    fn actor_json_values() {
        assert_eq!(actor_json([]), None);
        assert_eq!(actor_json([("app.user_id", "")]), None);
        assert_eq!(
            actor_json([("app.user_id", "42"), ("app.tenant", "")]).as_deref(),
            Some(r#"{"app.user_id":"42"}"#)
        );
        // JSON claims stay JSON; numbers keep their text (arbitrary precision)
        let claims = r#"{"sub": "u-7", "role": "authenticated", "exp": 17000000000000000001}"#;
        let v: serde_json::Value =
            serde_json::from_str(&actor_json([("request.jwt.claims", claims)]).unwrap()).unwrap();
        assert_eq!(v["request.jwt.claims"]["sub"], "u-7");
        assert_eq!(
            v["request.jwt.claims"]["exp"].to_string(),
            "17000000000000000001"
        );
        // not JSON, or too long to parse: a string
        let broken = actor_json([("request.jwt.claims", "{not json")]).unwrap();
        assert_eq!(broken, r#"{"request.jwt.claims":"{not json"}"#);
        let long = format!("[{}0]", "0,".repeat(ACTOR_JSON_MAX));
        let v: serde_json::Value =
            serde_json::from_str(&actor_json([("x", long.as_str())]).unwrap()).unwrap();
        assert!(v["x"].is_string());
        // what serde takes and jsonb refuses: a string (a writer never fails on its actor)
        for v in [
            r#"{"name": "a\u0000b"}"#,
            r#"{"a\u0000": 1}"#,
            "[1e200000]",
            "[1e131072]",
            "[1e-16384]",
        ] {
            let out: serde_json::Value =
                serde_json::from_str(&actor_json([("x", v)]).unwrap()).unwrap();
            assert_eq!(out["x"], serde_json::Value::String(v.to_owned()), "{v}");
        }
        for v in ["[1e131071]", "[-1e-16383]", "[12.5, -3, 0.001]"] {
            let out: serde_json::Value =
                serde_json::from_str(&actor_json([("x", v)]).unwrap()).unwrap();
            assert!(out["x"].is_array(), "{v}");
        }
        // deeper than serde_json's recursion limit: a string, never a crash
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let v: serde_json::Value =
            serde_json::from_str(&actor_json([("x", deep.as_str())]).unwrap()).unwrap();
        assert!(v["x"].is_string());
    }
}
