//! JSON Schema compilation and error listing over the `jsonschema` crate.
//!
//! The draft comes from `$schema` (2020-12 when absent). Remote `$ref`s are never fetched: there
//! is no network inside the database, and a schema that needs one is reported as such.

use jsonschema::Validator;
use serde_json::Value;

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

/// Compiles `schema`. With `formats`, `format` keywords are asserted, not just annotations.
pub fn compile(schema: &Value, formats: bool) -> Result<Validator, SchemaError> {
    jsonschema::options()
        .offline()
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

/// Every failure of `instance` against `validator`, in the validator's order.
pub fn failures(validator: &Validator, instance: &Value) -> Vec<Failure> {
    validator
        .iter_errors(instance)
        .map(|e| Failure {
            instance_path: e.instance_path().as_str().to_string(),
            schema_path: e.schema_path().as_str().to_string(),
            message: e.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn invalid_and_remote_schemas() {
        let e = compile(&json!({"type": 12}), true).expect_err("invalid");
        assert!(!e.needs_remote_ref);
        let e = compile(&json!({"$ref": "https://example.com/s.json"}), true).expect_err("remote");
        assert!(e.needs_remote_ref, "{e:?}");
    }
}
