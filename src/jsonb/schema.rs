//! JSON Schema validation for SQL and CHECK constraints. Compiled schemas are cached per backend
//! ([`crate::cache::Cache`], bounded by `pg_storage_ext.json_schema_cache_size`) keyed by the
//! schema's binary jsonb content, so a CHECK over many rows compiles its schema once. Instances are validated in place: the validator walks the stored binary jsonb
//! (the `jsonschema` crate's `Jsonb` representation), with no text rendering or re-parsing.

use super::datum::JsonbRef;
use crate::cache::Cache;
use crate::error::raise;
use crate::gucs;
use jsonschema::json::{Jsonb, JsonbNode};
use jsonschema::Validator;
use pg_storage_core::jsonb::schema::{self, Failure, MAX_NESTING};
use pgrx::prelude::*;
use std::sync::Arc;

/// A compiled schema depends on its content only: its cache is never invalidated.
const CONTENT_ADDRESSED: u64 = 0;

thread_local! {
    /// One cache per value of pg_storage_ext.json_schema_formats (index 0: off, 1: on), keyed by
    /// the schema's binary jsonb.
    static CACHE: [Cache<Vec<u8>, Arc<Validator<Jsonb>>>; 2] =
        const { [Cache::new(64), Cache::new(64)] };
}

/// Refuses a value nested deeper than the `jsonschema` crate may be handed (its walks recurse
/// without PostgreSQL's stack check): 54001, naming the depth and the limit.
fn check_nesting(depth: Option<usize>, what: &str) {
    if let Some(depth) = depth {
        raise(
            PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX,
            format!("{what} is nested too deeply for JSON Schema validation"),
            Some(format!("Its nesting depth exceeds {MAX_NESTING} (at least {depth} levels); the limit is {MAX_NESTING}.")),
            Some("Flatten the document or schema; the other JSONB functions of pg_storage_ext take any depth PostgreSQL's jsonb does.".into()),
        )
    }
}

/// Compiles a schema after checking its nesting.
fn compile(schema: &JsonbRef, formats: bool) -> Result<Validator<Jsonb>, schema::SchemaError> {
    let value = schema.to_value();
    check_nesting(
        schema::nesting_beyond::<jsonschema::json::SerdeJson, _>(&value, MAX_NESTING),
        "the JSON Schema",
    );
    schema::compile::<Jsonb>(&value, formats)
}

/// The compiled validator for `schema`, from the cache or freshly compiled.
fn validator(schema: &JsonbRef) -> Arc<Validator<Jsonb>> {
    let formats = gucs::JSON_SCHEMA_FORMATS.get();
    let capacity = usize::try_from(gucs::JSON_SCHEMA_CACHE_SIZE.get()).unwrap_or(0);
    let built = if capacity == 0 {
        compile(schema, formats).map(Arc::new)
    } else {
        CACHE.with(|c| {
            let cache = &c[usize::from(formats)];
            cache.set_bound(capacity);
            cache.get_or_try_insert_with(CONTENT_ADDRESSED, schema.bytes(), || {
                compile(schema, formats).map(Arc::new)
            })
        })
    };
    built.unwrap_or_else(|e| schema_error(schema, e))
}

/// The error of a schema that does not compile: its message, and a hint fit for the cause (a
/// remote `$ref` names where its own draft keeps local definitions).
fn schema_error(schema: &JsonbRef, e: schema::SchemaError) -> ! {
    let hint = if e.needs_remote_ref {
        let defs = schema::definitions_keyword(&schema.to_value());
        format!(
            "Remote $ref documents are never fetched inside the database: put the referenced schema under \"{defs}\" and refer to it as \"#/{defs}/name\"."
        )
    } else {
        "Check the schema against its draft's meta-schema, e.g. with storage.json_schema_is_valid(schema).".into()
    };
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        "invalid JSON Schema",
        Some(e.message),
        Some(hint),
    )
}

/// The instance as the validator reads it: the stored container, in place. Keys and strings are
/// read as UTF-8, so in a database of another encoding the document is first checked the way
/// every other JSONB function of the extension checks it (an error for non-UTF-8 text).
///
/// Its nesting is measured first, but only when it is long enough to be too deep: every level of
/// a jsonb container costs at least 8 bytes (a header and its entry in the parent).
fn instance(doc: &JsonbRef) -> JsonbNode<'_> {
    // SAFETY: reads the database encoding, set for the whole session.
    if unsafe { pg_sys::GetDatabaseEncoding() } != pg_sys::pg_enc::PG_UTF8 as i32 {
        doc.to_value();
    }
    let root = Jsonb::root(doc.bytes());
    if doc.bytes().len() >= 8 * MAX_NESTING {
        check_nesting(
            schema::nesting_beyond::<Jsonb, _>(root, MAX_NESTING),
            "the jsonb document",
        );
    }
    root
}

/// True when `instance` satisfies `schema`.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn json_schema_valid(schema: JsonbRef, instance: JsonbRef) -> bool {
    validator(&schema).is_valid(self::instance(&instance))
}

/// Every failure of `instance` against `schema`, with JSON Pointer paths; no rows when valid.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn json_schema_errors(
    schema: JsonbRef,
    instance: JsonbRef,
) -> TableIterator<
    'static,
    (
        name!(instance_path, String),
        name!(schema_path, String),
        name!(message, String),
    ),
> {
    let v = validator(&schema);
    let failures = schema::failures(&v, self::instance(&instance));
    TableIterator::new(
        failures
            .into_iter()
            .map(|f| (f.instance_path, f.schema_path, f.message)),
    )
}

fn describe(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| {
            let at = if f.instance_path.is_empty() {
                "(document)"
            } else {
                &f.instance_path
            };
            format!("{at}: {}", f.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// True when valid; otherwise raises check_violation (23514) whose DETAIL lists what failed.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn json_schema_check(schema: JsonbRef, instance: JsonbRef) -> bool {
    let v = validator(&schema);
    let doc = self::instance(&instance);
    if v.is_valid(doc) {
        return true;
    }
    let failures = schema::failures(&v, doc);
    raise(
        PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
        format!("jsonb value does not match its JSON Schema ({} error{})", failures.len(), if failures.len() == 1 { "" } else { "s" }),
        Some(describe(&failures)),
        Some("storage.json_schema_errors(schema, value) lists every failure with its instance and schema path.".into()),
    )
}

/// True when `schema` is itself a valid JSON Schema (for its `$schema` draft, 2020-12 by default).
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn json_schema_is_valid(schema: JsonbRef) -> bool {
    match compile(&schema, gucs::JSON_SCHEMA_FORMATS.get()) {
        Ok(_) => true,
        // a schema whose only fault is a document the database never fetches is not "invalid":
        // the same error the other functions raise says so
        Err(e) if e.needs_remote_ref => schema_error(&schema, e),
        Err(_) => false,
    }
}
