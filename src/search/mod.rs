//! Full-text search capability: the weighted `storage.tsvector_update` trigger, and
//! `storage.enable_search` / `storage.rebuild_search` that install it, index the column and
//! backfill it. Argument parsing lives in `pg_storage_core::search`.

pub(crate) mod related;
pub(crate) mod trigger;
pub(crate) mod vocabulary;

use crate::error::{raise, spi_failed};
use crate::ident::{literal, qualified, quote, require_table, Name, Regclass};
use crate::jsonb::datum::JsonbRef;
use pg_storage_core::names::fit_identifier;
use pg_storage_core::search::{lexeme_query, order_sources, source_arg, split_typing, Weight};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::PgRelation;
use serde_json::Value;

const WEIGHTS_HINT: &str =
    "Pass an object of source columns and weights, e.g. '{\"title\": \"A\", \"summary\": \"B\", \"content\": \"C\"}'.";

/// The arguments of a `storage.tsvector_update` trigger, from `pg_trigger.tgargs`.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _trigger_args(tgargs: &[u8]) -> Vec<String> {
    let mut args: Vec<String> = tgargs
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // Every argument is NUL-terminated, so the split leaves one empty piece at the end.
    args.pop();
    args
}

/// What a search box holds, split for `storage.search_tsquery` (`pg_storage_core::search::split_typing`):
/// the words before the one being typed, that word when it is matched as a prefix, and whether
/// it follows the operator `or`.
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _search_split(
    query: &core::ffi::CStr,
) -> TableIterator<
    'static,
    (
        name!(rest, String),
        name!(word, Option<String>),
        name!(by_or, bool),
    ),
> {
    let t = split_typing(crate::ident::utf8_arg(query, "storage._search_split"));
    TableIterator::once((t.rest.to_owned(), t.word.map(str::to_owned), t.or))
}

/// A lexeme (`word:*` for a prefix) as tsquery input (`pg_storage_core::search::lexeme_query`).
#[pg_extern(immutable, strict, parallel_safe)]
pub(crate) fn _search_lexeme(word: &core::ffi::CStr) -> String {
    lexeme_query(crate::ident::utf8_arg(word, "storage._search_lexeme"))
}

/// The relation, open only while the returned value lives (the lock stays to the end of the
/// transaction).
fn open(relid: pg_sys::Oid) -> PgRelation {
    // SAFETY: relation_open raises a PostgreSQL error for an OID that is not a relation.
    unsafe { PgRelation::with_lock(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE) }
}

/// `storage.enable_search(regclass, name, text, jsonb)` of the releases before 0.3.0, whose
/// SQL names this symbol: a database not yet updated (`ALTER EXTENSION … UPDATE`) keeps calling
/// it with this library.
#[pg_extern(volatile, sql = false)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn enable_search(
    target: Regclass,
    search_column: Name,
    config: &str,
    weights: JsonbRef,
) -> i64 {
    enable_search_with_sources(target, search_column, config, weights, None)
}

/// Adds the tsvector column if missing, (re)creates the weighted trigger, adds a GIN index if the
/// column has none, records the text from related tables (`sources`), and backfills every row.
/// Returns the rows backfilled.
#[pg_extern(volatile, name = "enable_search")]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn enable_search_with_sources(
    target: Regclass,
    search_column: Name,
    config: &str,
    weights: JsonbRef,
    sources: default!(Option<pgrx::JsonB>, "NULL"),
) -> i64 {
    crate::catalog::require_primary("storage.enable_search");
    let relid = target.0;
    let table = require_table(relid, "storage.enable_search");
    let citus = crate::catalog::citus_kind(relid);
    let column = search_column.0;
    let weighted = weights_to_sources(&weights.to_value());

    let existing = open(relid)
        .tuple_desc()
        .iter()
        .find(|a| !a.attisdropped && pg_sys::name_data_to_str(&a.attname) == column)
        .map(|a| a.atttypid);
    match existing {
        Some(t) if t != pg_sys::TSVECTOROID => raise(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!("column \"{column}\" of {table} is not of type tsvector"),
            None,
            Some("Name a new column (it is added) or an existing tsvector column.".into()),
        ),
        Some(_) => {}
        None => {
            run(
                &format!("ALTER TABLE {table} ADD COLUMN {} tsvector", quote(&column)),
                &[],
            );
        }
    }

    let mut args = vec![column.clone(), config.to_owned()];
    args.extend(weighted.iter().map(|(c, w)| source_arg(c, *w)));
    let watched = trigger::validate_args(&args, &open(relid).tuple_desc(), &table);
    // text from related tables: recorded, their triggers made; the row trigger then also fires
    // when the column itself is set (to NULL, by those triggers)
    let related = related::configure(relid, &table, &column, sources.as_ref().map(|j| &j.0));
    let mut watched = watched;
    if related && !watched.contains(&column) {
        watched.push(column.clone());
    }

    Spi::connect_mut(|client| {
        for (name, _) in our_triggers(client, relid, &column, true) {
            update(
                client,
                &format!("DROP TRIGGER {} ON {table}", quote(&name)),
                &[],
            );
        }
        let arg_list: Vec<String> = args.iter().map(|a| literal(a)).collect();
        let of_columns: Vec<String> = watched.iter().map(|c| quote(c)).collect();
        // UPDATE OF: an UPDATE that does not set a source column does not fire the trigger at all
        // (PostgreSQL skips even forming the new row for it).
        let create = format!(
            "CREATE TRIGGER {} BEFORE INSERT OR UPDATE OF {} ON {table} FOR EACH ROW EXECUTE FUNCTION storage.tsvector_update({})",
            quote(&fit_identifier(&column, "_tsvector_update")),
            of_columns.join(", "),
            arg_list.join(", ")
        );
        if citus.is_some() {
            // Citus copies the trigger to every shard (and every copy of a reference table) and
            // refuses triggers on its tables unless told they are safe. This one is: it reads
            // and rewrites only the row it fires for, in the shard that holds it — no other
            // table, no other shard, no query — so the visibility and deadlock hazards Citus
            // warns of cannot arise, and every copy computes the same value.
            crate::privilege::with_setting(c"citus.enable_unsafe_triggers", c"on", || {
                update(client, &create, &[])
            });
        } else {
            update(client, &create, &[]);
        }
        let has_gin = client
            .select(
                "SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                 WHERE i.indrelid = $1 AND am.amname = 'gin' AND a.attname = $2::name",
                Some(1),
                &[relid.into(), column.as_str().into()],
            )
            .map(|t| !t.is_empty())
            .unwrap_or_else(|e| spi_failed(e));
        if !has_gin {
            update(
                client,
                &format!("CREATE INDEX ON {table} USING gin ({})", quote(&column)),
                &[],
            );
        }
    });
    if citus.is_some() {
        let rows = rebuild_citus("enable_search", relid, &column, &watched);
        renew_words(relid);
        return rows;
    }
    let rows = rebuild("enable_search", relid, &column, &watched, 10_000);
    merge_words();
    rows
}

/// A Citus table's vocabulary, read again from its shards (their triggers queue nothing: see
/// `vocabulary::vocabulary_of`).
fn renew_words(relid: pg_sys::Oid) {
    if !crate::catalog::has_function("storage._search_words_merge(integer)") {
        return;
    }
    crate::privilege::as_owner(|| {
        Spi::run_with_args(
            "DELETE FROM storage._search_words w WHERE w.table_name OPERATOR(pg_catalog.=) $1",
            &[relid.into()],
        )
        .unwrap_or_else(|e| spi_failed(e))
    });
    merge_words();
}

/// The lexemes a rebuild queued, merged into the search vocabulary at once.
fn merge_words() {
    // (a database whose extension SQL predates the vocabulary: nothing to merge)
    if !crate::catalog::has_function("storage._search_words_merge(integer)") {
        return;
    }
    // (as the extension's owner: the merge is internal, and enable_search's caller may be a role
    // granted only enable_search)
    crate::privilege::as_owner(|| {
        Spi::run("SELECT storage._search_words_merge(2147483647)").unwrap_or_else(|e| spi_failed(e))
    });
}

/// Recomputes the tsvector column of every row in batches of about `batch_rows` rows. Returns the
/// rows recomputed.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn rebuild_search(
    target: Regclass,
    search_column: Name,
    batch_rows: default!(i32, 10000),
) -> i64 {
    crate::catalog::require_primary("storage.rebuild_search");
    if batch_rows <= 0 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("batch_rows must be positive, got {batch_rows}"),
            None,
            Some("The default, 10000, suits most tables.".into()),
        );
    }
    let relid = target.0;
    let column = search_column.0;
    let triggers = Spi::connect_mut(|client| our_triggers(client, relid, &column, false));
    if triggers.is_empty() {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "{} has no storage.tsvector_update trigger for column \"{column}\"",
                qualified(relid)
            ),
            None,
            Some("Call storage.enable_search first, or create the trigger.".into()),
        );
    }
    // Every column of the triggers' UPDATE OF lists is assigned to itself, so the triggers fire.
    let mut of_columns: Vec<String> = triggers.into_iter().flat_map(|(_, cols)| cols).collect();
    of_columns.sort();
    of_columns.dedup();
    if crate::catalog::citus_kind(relid).is_some() {
        let rows = rebuild_citus("rebuild_search", relid, &column, &of_columns);
        renew_words(relid);
        return rows;
    }
    let rows = rebuild("rebuild_search", relid, &column, &of_columns, batch_rows);
    merge_words();
    rows
}

/// Orders the weights object into trigger sources: A first, then B, C, D; ties keep the jsonb
/// key order.
fn weights_to_sources(weights: &Value) -> Vec<(String, Weight)> {
    let Value::Object(map) = weights else {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "weights must be a JSON object",
            Some(format!("Got {weights}.")),
            Some(WEIGHTS_HINT.into()),
        )
    };
    if map.is_empty() {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "weights names no source column",
            None,
            Some(WEIGHTS_HINT.into()),
        );
    }
    let pairs = map
        .iter()
        .map(|(k, v)| match v.as_str().and_then(Weight::parse) {
            Some(w) => (k.clone(), w),
            None => raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("weight of \"{k}\" must be one of \"A\", \"B\", \"C\", \"D\""),
                Some(format!("Got {v}.")),
                Some(WEIGHTS_HINT.into()),
            ),
        })
        .collect();
    order_sources(pairs)
}

/// The `storage.tsvector_update` triggers of `relid` that maintain `column` (only those not
/// cloned from a parent when `top_level`): name, and the columns of its `UPDATE OF` list.
fn our_triggers(
    client: &mut SpiClient<'_>,
    relid: pg_sys::Oid,
    column: &str,
    top_level: bool,
) -> Vec<(String, Vec<String>)> {
    client
        .select(
            "SELECT t.tgname::text, \
                    ARRAY(SELECT a.attname::text FROM pg_attribute a \
                           WHERE a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr) ORDER BY a.attnum) \
               FROM pg_trigger t \
              WHERE t.tgrelid = $1 AND t.tgfoid = 'storage.tsvector_update()'::regprocedure \
                AND (t.tgparentid = 0 OR NOT $3) \
                AND (storage._trigger_args(t.tgargs))[1] = $2 ORDER BY t.tgname",
            None,
            &[relid.into(), column.into(), top_level.into()],
        )
        .unwrap_or_else(|e| spi_failed(e))
        .map(|row| {
            (
                row.get::<String>(1).ok().flatten().unwrap_or_default(),
                row.get::<Vec<String>>(2).ok().flatten().unwrap_or_default(),
            )
        })
        .collect()
}

fn update(client: &mut SpiClient<'_>, sql: &str, args: &[pgrx::datum::DatumWithOid<'_>]) -> usize {
    client
        .update(sql, None, args)
        .map(|t| t.len())
        .unwrap_or_else(|e| spi_failed(e))
}

fn run(sql: &str, args: &[pgrx::datum::DatumWithOid<'_>]) -> usize {
    Spi::connect_mut(|client| update(client, sql, args))
}

/// Recomputes `column` of a Citus table: its rows are in shards on the workers (the coordinator's
/// table is empty), so one UPDATE of the logical table, which Citus runs in every shard in
/// parallel. It sets the column to NULL, which makes the trigger in each shard recompute it (the
/// per-backend [`trigger::ForceRecompute`] does not reach the workers' backends), and assigns
/// the `UPDATE OF` columns to themselves so the trigger fires. Batches by block ranges would read
/// the coordinator's empty table.
fn rebuild_citus(operation: &str, relid: pg_sys::Oid, column: &str, of_columns: &[String]) -> i64 {
    let assignments: Vec<String> = std::iter::once(format!("{} = NULL", quote(column)))
        .chain(
            of_columns
                .iter()
                .filter(|c| c.as_str() != column)
                .map(|c| format!("{0} = {0}", quote(c))),
        )
        .collect();
    let sql = format!("UPDATE {} SET {}", qualified(relid), assignments.join(", "));
    let progress = crate::ops::progress::start(operation, &qualified(relid), -1);
    let total = crate::privilege::as_table_owner(relid, || run(&sql, &[])) as i64;
    crate::ops::progress::update(progress, total, "every shard");
    crate::ops::progress::end(progress);
    total
}

/// Recomputes `column` on every leaf table of `relid` by ranges of blocks. Row versions this
/// rebuild itself created (an UPDATE may put a row on a later page) are not visited twice.
fn rebuild(
    operation: &str,
    relid: pg_sys::Oid,
    column: &str,
    of_columns: &[String],
    batch_rows: i32,
) -> i64 {
    let _force = trigger::ForceRecompute::new(column);
    // SAFETY: plain transaction-state getters.
    let (xid, start_cid) = unsafe {
        (
            pg_sys::GetCurrentTransactionId(),
            pg_sys::GetCurrentCommandId(false),
        )
    };
    let xid = xid.into_inner().to_string();
    let start_cid = i64::from(start_cid);
    let assignments: Vec<String> = std::iter::once(column)
        .chain(
            of_columns
                .iter()
                .map(String::as_str)
                .filter(|c| *c != column),
        )
        .map(|c| format!("{0} = {0}", quote(c)))
        .collect();
    // an audited table: the column left out of its images, and the recompute one DDL-kind row
    // of its log rather than an UPDATE per row (crate::audit::derived_change)
    let tag = operation.to_uppercase().replace('_', " ");
    crate::audit::derived_change(relid, &tag, || {
        recompute(operation, relid, &assignments, &xid, start_cid, batch_rows)
    })
}

/// The batches of [`rebuild`]: every leaf of the tree, a block range at a time, as its owner.
fn recompute(
    operation: &str,
    relid: pg_sys::Oid,
    assignments: &[String],
    xid: &str,
    start_cid: i64,
    batch_rows: i32,
) -> i64 {
    Spi::connect_mut(|client| {
        let leaves: Vec<(pg_sys::Oid, i64, f64, i32)> = client
            .select(
                "SELECT c.oid, pg_relation_size(c.oid) / current_setting('block_size')::bigint, c.reltuples::float8, c.relpages \
                 FROM (SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf UNION SELECT $1::regclass) p \
                 JOIN pg_class c ON c.oid = p.relid WHERE c.relkind = 'r' ORDER BY c.oid",
                None,
                &[relid.into()],
            )
            .unwrap_or_else(|e| spi_failed(e))
            .map(|row| {
                (
                    row.get::<pg_sys::Oid>(1).ok().flatten().unwrap_or(pg_sys::InvalidOid),
                    row.get::<i64>(2).ok().flatten().unwrap_or(0),
                    row.get::<f64>(3).ok().flatten().unwrap_or(-1.0),
                    row.get::<i32>(4).ok().flatten().unwrap_or(0),
                )
            })
            .collect();
        let mut total: i64 = 0;
        let estimate: f64 = leaves.iter().map(|l| l.2.max(0.0)).sum();
        let progress = crate::ops::progress::start(operation, &qualified(relid), estimate as i64);
        for (leaf, nblocks, reltuples, relpages) in leaves {
            let per_block = if reltuples > 0.0 && relpages > 0 {
                reltuples / f64::from(relpages)
            } else {
                50.0
            };
            let step = ((f64::from(batch_rows) / per_block.max(1.0)).floor() as i64).max(1);
            let sql = format!(
                "UPDATE {} SET {} WHERE ctid >= $1::text::tid AND ctid < $2::text::tid \
                 AND NOT (xmin = $3::text::xid AND cmin::text::bigint >= $4)",
                qualified(leaf),
                assignments.join(", ")
            );
            let mut block: i64 = 0;
            while block < nblocks {
                let end = (block + step).min(nblocks);
                let lo = format!("({block},0)");
                let hi = format!("({end},0)");
                // the table's triggers and expressions run as its owner, restricted
                total += crate::privilege::as_table_owner(leaf, || {
                    update(
                        client,
                        &sql,
                        &[
                            lo.as_str().into(),
                            hi.as_str().into(),
                            xid.into(),
                            start_cid.into(),
                        ],
                    )
                }) as i64;
                block = end;
                let phase = if leaf == relid {
                    format!("block {end} of {nblocks}")
                } else {
                    format!("{} block {end} of {nblocks}", qualified(leaf))
                };
                crate::ops::progress::update(progress, total, &phase);
            }
        }
        crate::ops::progress::end(progress);
        total
    })
}
