//! JSONB capability: deep merge, RFC 7396 merge patch and diff, RFC 6902 JSON Patch, and JSON
//! Schema validation. The logic lives in `pg_storage_core::jsonb`; this is the SQL layer.

pub(crate) mod datum;
pub(crate) mod schema;
#[cfg(any(test, feature = "pg_test"))]
mod stored_tests;

use crate::error::raise;
use datum::{encode, numeric_eq, value_to_jsonb, JsonbRaw, JsonbRef};
use pg_storage_core::jsonb as ops;
use pg_storage_core::jsonb::binary as bin;
use pgrx::prelude::*;

// Each function works on the stored form (`pg_storage_core::jsonb::binary`): members read where
// they lie, untouched containers copied byte for byte, only what changes built.

/// Objects merged key by key, recursively; for anything else `b` wins.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn jsonb_merge_deep(a: JsonbRef, b: JsonbRef) -> JsonbRaw {
    let (a, b) = (a.root(), b.root());
    JsonbRaw(encode(&bin::merge_deep(a.root_item(), b.root_item())))
}

/// RFC 7396 JSON Merge Patch.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn jsonb_merge_patch(target: JsonbRef, patch: JsonbRef) -> JsonbRaw {
    let (t, p) = (target.root(), patch.root());
    JsonbRaw(encode(&bin::merge_patch(t.root_item(), p.root_item())))
}

/// A merge patch p with jsonb_merge_patch(a, p) = b.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn jsonb_diff(a: JsonbRef, b: JsonbRef) -> JsonbRaw {
    let (a, b) = (a.root(), b.root());
    JsonbRaw(encode(&bin::diff(
        a.root_item(),
        b.root_item(),
        &numeric_eq,
    )))
}

/// RFC 6902 JSON Patch; all operations or none. A failing patch is run again by the reference
/// definition (`apply_patch`), which names the operation and the reason.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn jsonb_patch(doc: JsonbRef, operations: JsonbRef) -> JsonbRaw {
    let (d, o) = (doc.root(), operations.root());
    if let Some(node) = bin::patch(d.root_item(), o.root_item(), &numeric_eq) {
        return JsonbRaw(encode(&node));
    }
    match ops::apply_patch(&doc.to_value(), &operations.to_value()) {
        Ok(v) => JsonbRaw(value_to_jsonb(&v)),
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
