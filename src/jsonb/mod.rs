//! JSONB capability: deep merge, RFC 7396 merge patch and diff, RFC 6902 JSON Patch, and JSON
//! Schema validation. The logic lives in `pg_storage_core::jsonb`; this is the SQL layer.

mod binary;
pub(crate) mod datum;
pub(crate) mod schema;

use crate::error::raise;
use datum::{JsonbOut, JsonbRaw, JsonbRef};
use pg_storage_core::jsonb as ops;
use pgrx::prelude::*;

/// Objects merged key by key, recursively; for anything else `b` wins.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn jsonb_merge_deep(a: JsonbRef, b: JsonbRef) -> JsonbRaw {
    JsonbRaw(binary::merge_deep(&a, &b))
}

/// RFC 7396 JSON Merge Patch.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn jsonb_merge_patch(target: JsonbRef, patch: JsonbRef) -> JsonbRaw {
    JsonbRaw(binary::merge_patch(&target, &patch))
}

/// A merge patch p with jsonb_merge_patch(a, p) = b.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn jsonb_diff(a: JsonbRef, b: JsonbRef) -> JsonbRaw {
    JsonbRaw(binary::diff(&a, &b))
}

/// RFC 6902 JSON Patch; all operations or none.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn jsonb_patch(doc: JsonbRef, operations: JsonbRef) -> JsonbOut {
    match ops::apply_patch(&doc.to_value(), &operations.to_value()) {
        Ok(v) => JsonbOut(v),
        Err(e) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("JSON Patch failed: {e}"),
            Some(match (e.index, &e.pointer) {
                (Some(i), Some(p)) => format!("operation index {i}, pointer \"{p}\"; the document was not changed"),
                (Some(i), None) => format!("operation index {i}; the document was not changed"),
                _ => "the document was not changed".to_string(),
            }),
            Some("Operations follow RFC 6902: {\"op\": \"add|remove|replace|move|copy|test\", \"path\": \"/a/0\", ...}; pointers escape \"~\" as ~0 and \"/\" as ~1.".into()),
        ),
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn q(sql: &str) -> Option<String> {
        Spi::get_one::<String>(sql).expect("query runs")
    }

    #[pg_test]
    fn round_trip_keeps_numbers_and_unicode() {
        let doc = r#"{"a": [1, 2.50, -0.000000000000000000001, 1e+30], "é": "ü\"\\", "n": null, "t": true}"#;
        let got = q(&format!(
            "SELECT storage.jsonb_merge_deep('{doc}'::jsonb, '{{}}')::text"
        ));
        let want = q(&format!("SELECT '{doc}'::jsonb::text"));
        assert_eq!(got, want);
        assert_eq!(
            q("SELECT storage.jsonb_merge_patch('1', '\"x\"')::text").as_deref(),
            Some("\"x\"")
        );
        assert_eq!(
            q("SELECT storage.jsonb_diff('[1]', 'null')::text").as_deref(),
            Some("null")
        );
    }

    #[pg_test(
        error = "JSON Patch failed: operation 1 at \"/x\": test failed: value is 1, expected 2"
    )]
    fn patch_error_names_operation() {
        Spi::run(r#"SELECT storage.jsonb_patch('{}', '[{"op":"add","path":"/x","value":1},{"op":"test","path":"/x","value":2}]')"#)
            .expect("raises");
    }
}
