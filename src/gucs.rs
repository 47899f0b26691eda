//! Every setting of the extension, under the reserved prefix `pg_storage_ext.`.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Assert `format` keywords in JSON Schemas (off: formats are annotations only).
pub static JSON_SCHEMA_FORMATS: GucSetting<bool> = GucSetting::<bool>::new(true);

/// How many compiled JSON Schemas each backend keeps.
pub static JSON_SCHEMA_CACHE_SIZE: GucSetting<i32> = GucSetting::<i32>::new(64);

/// How long partition maintenance waits for one lock before retrying (milliseconds).
pub static PARTITION_LOCK_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(200);

/// How many times partition maintenance retries a parent whose lock wait timed out.
pub static PARTITION_LOCK_RETRIES: GucSetting<i32> = GucSetting::<i32>::new(3);

pub fn init() {
    GucRegistry::define_int_guc(
        c"pg_storage_ext.partition_lock_timeout",
        c"Longest wait for one lock in storage.run_maintenance.",
        c"A parent whose lock is not granted in time is retried, then skipped until the next run; inserts never queue behind maintenance for longer.",
        &PARTITION_LOCK_TIMEOUT,
        1,
        600_000,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pg_storage_ext.partition_lock_retries",
        c"Retries of a parent whose lock wait timed out in storage.run_maintenance.",
        c"Each retry waits a little longer (jittered back-off).",
        &PARTITION_LOCK_RETRIES,
        0,
        100,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"pg_storage_ext.json_schema_formats",
        c"Validate JSON Schema \"format\" keywords (email, uri, date-time, ...).",
        c"When off, \"format\" is an annotation only, as in pg_jsonschema.",
        &JSON_SCHEMA_FORMATS,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_storage_ext.json_schema_cache_size",
        c"Compiled JSON Schemas kept per backend.",
        c"Least recently used schemas beyond this number are dropped; 0 compiles on every call.",
        &JSON_SCHEMA_CACHE_SIZE,
        0,
        10_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    // SAFETY: called once from _PG_init with a static C string.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"pg_storage_ext".as_ptr()) };
}
