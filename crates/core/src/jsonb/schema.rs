//! JSON Schema compilation and error listing over the `jsonschema` crate.
//!
//! The draft comes from `$schema` (2020-12 when absent). Remote `$ref`s are never fetched: there
//! is no network inside the database, and a schema that needs one is reported as such.
//!
//! `minimum`, `maximum`, `exclusiveMinimum` and `exclusiveMaximum` are our own keywords: jsonb
//! numbers are exact decimals, and the crate's exact path for a fractional bound (a big rational
//! built per instance) costs more than the rest of a typical document's validation. Ours compares
//! as binary64 first, which decides every case but a tie (rounding is monotonic: if the rounded
//! values differ, so do the numbers, in the same order), and compares the decimal digits on a tie
//! or outside binary64's range.

use super::number::compare_decimal;
use jsonschema::json::{Json, JsonNumber, Node};
use jsonschema::{Keyword, ValidationError, Validator};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// Why a schema could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub message: String,
    /// The schema refers to a document that would have to be fetched.
    pub needs_remote_ref: bool,
}

/// One way an instance fails its schema, with RFC 6901 paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub instance_path: String,
    pub schema_path: String,
    pub message: String,
}

/// Compiles `schema` for instances in the representation `F` (`SerdeJson` for `serde_json`
/// values, `Jsonb` for PostgreSQL's binary jsonb read in place). With `formats`, `format`
/// keywords are asserted, not just annotations.
pub fn compile<F: Json>(schema: &Value, formats: bool) -> Result<Validator<F>, SchemaError> {
    jsonschema::options_for::<F>()
        .offline()
        .with_keyword("minimum", |p, v, _| bound::<F>(p, v, Side::Min, false))
        .with_keyword("maximum", |p, v, _| bound::<F>(p, v, Side::Max, false))
        .with_keyword("exclusiveMinimum", |p, v, _| {
            bound::<F>(p, v, Side::Min, true)
        })
        .with_keyword("exclusiveMaximum", |p, v, _| {
            bound::<F>(p, v, Side::Max, true)
        })
        .should_validate_formats(formats)
        .build(schema)
        .map_err(|e| {
            let message = e.to_string();
            let needs_remote_ref = matches!(
                e.kind(),
                jsonschema::error::ValidationErrorKind::Referencing(_)
            );
            SchemaError {
                message,
                needs_remote_ref,
            }
        })
}

/// The keyword a schema's own draft keeps local definitions under: `definitions` for drafts 4, 6
/// and 7 (named by `$schema`), `$defs` for 2019-09, 2020-12 and schemas that name no draft (the
/// validator's default, 2020-12).
pub fn definitions_keyword(schema: &serde_json::Value) -> &'static str {
    match schema.get("$schema").and_then(|v| v.as_str()) {
        Some(uri)
            if ["draft-04", "draft-06", "draft-07"]
                .iter()
                .any(|d| uri.contains(d)) =>
        {
            "definitions"
        }
        _ => "$defs",
    }
}

/// The deepest nesting of documents and schemas handed to the `jsonschema` crate. Its walks
/// recurse (a `"$ref": "#"` schema follows the instance down) without a stack check of
/// PostgreSQL's, so deeper values are refused before they reach it (54001 in the extension).
pub const MAX_NESTING: usize = 256;

/// The nesting depth of `root` (a scalar is 0, `[]` is 1) when it is deeper than `limit`, else
/// None. Iterative, and it stops at the first container past the limit.
pub fn nesting_beyond<'a, F: Json, N: Node<'a, F>>(root: N, limit: usize) -> Option<usize> {
    use jsonschema::json::{Array, Object};
    let mut stack = vec![(root, 0usize)];
    while let Some((node, depth)) = stack.pop() {
        let children: Vec<N> = if let Some(o) = node.as_object() {
            o.members().map(|(_, v)| v).collect()
        } else if let Some(a) = node.as_array() {
            a.elements().collect()
        } else {
            continue;
        };
        if depth + 1 > limit {
            return Some(depth + 1);
        }
        stack.extend(children.into_iter().map(|c| (c, depth + 1)));
    }
    None
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Min,
    Max,
}

/// One numeric bound, exact over decimals of any length.
struct Bound {
    side: Side,
    exclusive: bool,
    /// The bound as written, for the exact comparison and the error message.
    text: String,
    /// The bound rounded to binary64; None past its range.
    rounded: Option<f64>,
}

impl Bound {
    /// True when `n` is on the allowed side of the bound.
    fn admits<N: JsonNumber>(&self, n: &N) -> bool {
        let order = match (n.as_f64(), self.rounded) {
            (Some(x), Some(b)) if x != b => x.partial_cmp(&b).unwrap_or(Ordering::Equal),
            _ => compare_decimal(&n.as_str(), &self.text).unwrap_or(Ordering::Equal),
        };
        match (self.side, self.exclusive) {
            (Side::Min, false) => order != Ordering::Less,
            (Side::Min, true) => order == Ordering::Greater,
            (Side::Max, false) => order != Ordering::Greater,
            (Side::Max, true) => order == Ordering::Less,
        }
    }
}

/// A keyword that accepts everything: draft 4's boolean `exclusiveMinimum`/`exclusiveMaximum`,
/// which only modify their sibling bound.
struct Modifier;

impl<'i, F: Json> Keyword<'i, F> for Modifier {
    fn validate(&self, _: F::Node<'i>) -> Result<(), ValidationError<'i>> {
        Ok(())
    }

    fn is_valid(&self, _: F::Node<'i>) -> bool {
        true
    }
}

impl<'i, F: Json> Keyword<'i, F> for Bound {
    fn validate(&self, instance: F::Node<'i>) -> Result<(), ValidationError<'i>> {
        match instance.as_number() {
            Some(n) if !self.admits(&n) => {
                let relation = match (self.side, self.exclusive) {
                    (Side::Min, false) => "less than the minimum",
                    (Side::Min, true) => "less than or equal to the minimum",
                    (Side::Max, false) => "greater than the maximum",
                    (Side::Max, true) => "greater than or equal to the maximum",
                };
                Err(ValidationError::custom(format!(
                    "{} is {relation} of {}",
                    n.as_str(),
                    self.text
                )))
            }
            _ => Ok(()),
        }
    }

    fn is_valid(&self, instance: F::Node<'i>) -> bool {
        instance.as_number().is_none_or(|n| self.admits(&n))
    }
}

/// Builds the keyword for `value`. In draft 4 `exclusiveMinimum`/`exclusiveMaximum` are booleans
/// that make the sibling `minimum`/`maximum` strict; from draft 6 on they are bounds themselves.
fn bound<'a, F: Json>(
    parent: &'a Map<String, Value>,
    value: &'a Value,
    side: Side,
    exclusive: bool,
) -> Result<Box<dyn for<'i> Keyword<'i, F>>, ValidationError<'a>> {
    match value {
        Value::Bool(_) if exclusive => Ok(Box::new(Modifier)),
        Value::Number(n) => {
            let modifier = if side == Side::Min {
                "exclusiveMinimum"
            } else {
                "exclusiveMaximum"
            };
            let strict = exclusive || parent.get(modifier) == Some(&Value::Bool(true));
            Ok(Box::new(Bound {
                side,
                exclusive: strict,
                text: n.to_string(),
                rounded: n.as_f64().filter(|f| f.is_finite()),
            }))
        }
        _ => Err(ValidationError::custom(format!("{value} is not a number"))),
    }
}

/// Every failure of `instance` against `validator`, ordered by instance path (the validator's own
/// order follows the representation's key order, which differs between jsonb and serde_json),
/// then in the validator's order.
pub fn failures<'i, F: Json>(validator: &'i Validator<F>, instance: F::Node<'i>) -> Vec<Failure> {
    let mut failures = validator
        .iter_errors(instance)
        .map(|e| Failure {
            instance_path: e.instance_path().as_str().to_string(),
            schema_path: e.schema_path().as_str().to_string(),
            message: e.to_string(),
        })
        .collect::<Vec<_>>();
    failures.sort_by(|a, b| a.instance_path.cmp(&b.instance_path));
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonschema::json::SerdeJson;
    use serde_json::json;

    fn compile(schema: &Value, formats: bool) -> Result<Validator<SerdeJson>, SchemaError> {
        super::compile::<SerdeJson>(schema, formats)
    }

    #[test]
    fn lists_paths() {
        let v = compile(
            &json!({"type":"object","properties":{"a":{"type":"array","items":{"type":"integer"}}},"required":["b"]}),
            true,
        )
        .expect("valid schema");
        let mut f = failures(&v, &json!({"a":[1,"x"]}));
        f.sort_by(|x, y| x.instance_path.cmp(&y.instance_path));
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].instance_path, "");
        assert!(f[0].message.contains("\"b\""), "{}", f[0].message);
        assert_eq!(f[1].instance_path, "/a/1");
        assert_eq!(f[1].schema_path, "/properties/a/items/type");
        assert!(failures(&v, &json!({"a":[1],"b":0})).is_empty());
    }

    #[test]
    fn formats_switch() {
        let s = json!({"type":"string","format":"email"});
        assert!(!compile(&s, true)
            .expect("schema")
            .is_valid(&json!("not an email")));
        assert!(compile(&s, false)
            .expect("schema")
            .is_valid(&json!("not an email")));
        let d = json!({"format":"date"});
        assert!(!compile(&d, true)
            .expect("schema")
            .is_valid(&json!("2026-13-01")));
    }

    #[test]
    fn drafts_by_dollar_schema() {
        // exclusiveMaximum is a boolean modifier in draft 4 and a number from draft 6 on.
        let d4 = json!({"$schema":"http://json-schema.org/draft-04/schema#","maximum":5,"exclusiveMaximum":true});
        assert!(!compile(&d4, true).expect("draft 4").is_valid(&json!(5)));
        let d7 = json!({"$schema":"http://json-schema.org/draft-07/schema#","exclusiveMaximum":5});
        assert!(!compile(&d7, true).expect("draft 7").is_valid(&json!(5)));
        // prefixItems exists in 2020-12 only (the default).
        let d = json!({"prefixItems":[{"type":"string"}]});
        assert!(!compile(&d, true).expect("2020-12").is_valid(&json!([1])));
    }

    #[test]
    fn bounds_are_exact() {
        let n = |s: &str| serde_json::from_str::<Value>(s).expect("number");
        let max = compile(&json!({"maximum": 100}), true).expect("schema");
        assert!(max.is_valid(&n("100")));
        assert!(max.is_valid(&n("100.0")));
        assert!(!max.is_valid(&n("100.00000000000000001")));
        assert!(!max.is_valid(&n("1e500")));
        let min = compile(&json!({"minimum": n("0.5")}), true).expect("schema");
        assert!(!min.is_valid(&n("0.49999999999999999999")));
        assert!(min.is_valid(&n("0.5")));
        assert!(min.is_valid(&json!("not a number")));
        let ex = compile(
            &json!({"exclusiveMinimum": 0, "exclusiveMaximum": n("0.3")}),
            true,
        )
        .expect("schema");
        assert!(!ex.is_valid(&n("0")));
        assert!(ex.is_valid(&n("0.29999999999999999999")));
        assert!(!ex.is_valid(&n("0.3")));
        let d4 = json!({"$schema":"http://json-schema.org/draft-04/schema#","minimum":1,"exclusiveMinimum":true});
        assert!(!compile(&d4, true).expect("draft 4").is_valid(&n("1")));
        let d4 = json!({"$schema":"http://json-schema.org/draft-04/schema#","minimum":1,"exclusiveMinimum":false});
        assert!(compile(&d4, true).expect("draft 4").is_valid(&n("1")));
        let f = failures(&max, &n("101"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].message, "101 is greater than the maximum of 100");
        assert_eq!(f[0].schema_path, "/maximum");
        assert!(compile(&json!({"minimum": "x"}), true).is_err());
    }

    #[test]
    fn nesting_is_measured_without_recursion() {
        use jsonschema::json::SerdeJson;
        // values this deep are built, compared and dropped recursively by serde_json itself:
        // run on a big stack, as a backend's check would stop us long before
        std::thread::Builder::new()
            .stack_size(512 << 20)
            .spawn(|| {
                let deep = |n: usize| {
                    let mut v = Value::from(1);
                    for _ in 0..n {
                        v = Value::Array(vec![v]);
                    }
                    serde_json::json!({ "a": v })
                };
                let v = deep(3);
                assert_eq!(nesting_beyond::<SerdeJson, _>(&v, 4), None);
                assert_eq!(nesting_beyond::<SerdeJson, _>(&v, 3), Some(4));
                assert_eq!(nesting_beyond::<SerdeJson, _>(&Value::from(1), 0), None);
                let huge = deep(100_000);
                assert_eq!(
                    nesting_beyond::<SerdeJson, _>(&huge, MAX_NESTING),
                    Some(MAX_NESTING + 1)
                );
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn invalid_and_remote_schemas() {
        let e = compile(&json!({"type": 12}), true).expect_err("invalid");
        assert!(!e.needs_remote_ref);
        let e = compile(&json!({"$ref": "https://example.com/s.json"}), true).expect_err("remote");
        assert!(e.needs_remote_ref, "{e:?}");
    }

    #[test]
    fn definitions_follow_the_draft() {
        let d = |s| definitions_keyword(&s);
        assert_eq!(
            d(json!({"$schema": "http://json-schema.org/draft-07/schema#"})),
            "definitions"
        );
        assert_eq!(
            d(json!({"$schema": "http://json-schema.org/draft-04/schema#"})),
            "definitions"
        );
        assert_eq!(
            d(json!({"$schema": "https://json-schema.org/draft/2020-12/schema"})),
            "$defs"
        );
        assert_eq!(
            d(json!({"$schema": "https://json-schema.org/draft/2019-09/schema"})),
            "$defs"
        );
        assert_eq!(d(json!({"type": "object"})), "$defs");
        assert_eq!(d(json!(true)), "$defs");
    }
}
