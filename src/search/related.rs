//! Text from related tables in a search column (docs/search.md, "Text from related tables"): an
//! article's tags, its author's name. `storage.enable_search(…, sources => …)` records each
//! related source in `storage._search_sources` (the extension's configuration: the triggers read
//! it, never their arguments) and puts statement triggers on the related table.
//!
//! - The row trigger of the searched table adds, after its own columns, each source's text: the
//!   related rows' column values for the row's key, sorted and joined by spaces, read as the
//!   searched table's owner (restricted), weighted as configured.
//! - `storage._search_related()`, AFTER INSERT, UPDATE, DELETE (with their transition tables)
//!   and TRUNCATE FOR EACH STATEMENT on the related table, sets the search column of the rows
//!   whose related rows changed to NULL, as the searched table's owner, which makes their row
//!   trigger (fired by an `UPDATE OF` the search column) compute it again at once.

use crate::error::{raise, spi_failed};
use crate::ident::{qualified, quote};
use pg_storage_core::search::Weight;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::trigger_support::{
    trigger_fired_after, trigger_fired_by_delete, trigger_fired_by_insert,
    trigger_fired_by_truncate, trigger_fired_by_update, trigger_fired_for_statement,
};

/// The transition tables the related table's statement triggers declare.
pub(crate) const NEW_ROWS: &str = "pgse_new";
pub(crate) const OLD_ROWS: &str = "pgse_old";

/// One related source of a search column, resolved for the row trigger.
#[derive(Debug)]
pub(crate) struct Related {
    /// `SELECT string_agg(…) FROM related WHERE key = $1`.
    sql: String,
    /// The searched table's key column (1-based) and type.
    key_attnum: i16,
    key_type: pg_sys::Oid,
    weight: Weight,
}

/// The related sources of `table`'s search column `column` (the searched table at the top of
/// its tree), from the extension's configuration, in name order.
pub(crate) fn sources_of(table: pg_sys::Oid, column: &str) -> Vec<Related> {
    if !crate::catalog::has_function("storage._search_related()") {
        // a library newer than the database's extension: no related sources yet
        return Vec::new();
    }
    crate::privilege::as_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT s.related::pg_catalog.oid, s.key_column::text, s.text_column::text, s.weight::text, \
                            a.attnum, a.atttypid, s.lookup::pg_catalog.oid, s.lookup_key::text, s.lookup_text::text \
                       FROM storage._search_sources s \
                       JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.target \
                        AND a.attname OPERATOR(pg_catalog.=) s.target_key AND NOT a.attisdropped \
                      WHERE s.target OPERATOR(pg_catalog.=) $1 AND s.search_column OPERATOR(pg_catalog.=) $2 \
                      ORDER BY s.name",
                    None,
                    &[table.into(), column.into()],
                )
                .unwrap_or_else(|e| spi_failed(e))
                .map(|row| {
                    let related: pg_sys::Oid = row.get(1).ok().flatten().unwrap_or(pg_sys::InvalidOid);
                    let key: String = row.get(2).ok().flatten().unwrap_or_default();
                    let text: String = row.get(3).ok().flatten().unwrap_or_default();
                    let weight: String = row.get(4).ok().flatten().unwrap_or_default();
                    let lookup: Option<pg_sys::Oid> = row.get(7).ok().flatten();
                    let sql = match lookup {
                        // the text is in a lookup table the related rows point to (tags by id)
                        Some(lookup) => {
                            let lookup_key: String = row.get(8).ok().flatten().unwrap_or_default();
                            let col = quote(&row.get::<String>(9).ok().flatten().unwrap_or_default());
                            format!(
                                "SELECT pg_catalog.string_agg(l.{col}::pg_catalog.text, ' ' ORDER BY l.{col}::pg_catalog.text) \
                                   FROM {} AS r JOIN {} AS l ON l.{} OPERATOR(pg_catalog.=) r.{} \
                                  WHERE r.{} OPERATOR(pg_catalog.=) $1",
                                qualified(related),
                                qualified(lookup),
                                quote(&lookup_key),
                                quote(&text),
                                quote(&key)
                            )
                        }
                        None => {
                            let col = quote(&text);
                            format!(
                                "SELECT pg_catalog.string_agg(r.{col}::pg_catalog.text, ' ' ORDER BY r.{col}::pg_catalog.text) \
                                   FROM {} AS r WHERE r.{} OPERATOR(pg_catalog.=) $1",
                                qualified(related),
                                quote(&key)
                            )
                        }
                    };
                    Related {
                        sql,
                        key_attnum: row.get(5).ok().flatten().unwrap_or(0),
                        key_type: row.get(6).ok().flatten().unwrap_or(pg_sys::InvalidOid),
                        weight: Weight::parse(&weight).unwrap_or(Weight::D),
                    }
                })
                .collect()
        })
    })
}

impl Related {
    pub(crate) fn weight(&self) -> Weight {
        self.weight
    }

    /// The related rows' text for the row `tuple` of the searched table `table` (NULL key or no
    /// related row: None), read as `table`'s owner.
    ///
    /// # Safety
    /// `tuple` is a row of a table described by `tupdesc`.
    pub(crate) unsafe fn text(
        &self,
        table: pg_sys::Oid,
        tuple: pg_sys::HeapTuple,
        tupdesc: &pgrx::PgTupleDesc,
    ) -> Option<String> {
        let mut isnull = false;
        // SAFETY: the caller's tuple and descriptor; the attribute number was looked up for it.
        let key = unsafe {
            pg_sys::heap_getattr(tuple, self.key_attnum.into(), tupdesc.as_ptr(), &mut isnull)
        };
        if isnull {
            return None;
        }
        // SAFETY: the datum is of the key column's type.
        let arg = unsafe { pgrx::datum::DatumWithOid::new(key, self.key_type) };
        on_behalf_of(table, || {
            Spi::get_one_with_args::<String>(&self.sql, &[arg]).unwrap_or_else(|e| spi_failed(e))
        })
    }
}

/// One source reading the related table, for its statement trigger.
struct Reader {
    target: pg_sys::Oid,
    search_column: String,
    key_column: String,
    target_key: String,
    key_type: String,
    /// Fired on the source's lookup table: the related table, its column pointing into the
    /// lookup table and that column's type, and the lookup table's key.
    via: Option<Via>,
}

struct Via {
    related: pg_sys::Oid,
    pointer: String,
    pointer_type: String,
    lookup_key: String,
}

/// Trigger function `storage._search_related()`: AFTER … FOR EACH STATEMENT on a related table.
fn search_related<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let td = trigger.trigger_data();
    let event = td.tg_event;
    if !trigger_fired_after(event) || !trigger_fired_for_statement(event) {
        raise(
            PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
            "storage._search_related must be fired AFTER … FOR EACH STATEMENT",
            None,
            Some("storage.enable_search creates its triggers; do not create them by hand.".into()),
        );
    }
    // SAFETY: a trigger's relation is open.
    let related = unsafe { (*td.tg_relation).rd_id };
    let readers: Vec<Reader> = crate::privilege::as_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT s.target::pg_catalog.oid, s.search_column::text, s.key_column::text, s.target_key::text, \
                            pg_catalog.format_type(a.atttypid, a.atttypmod), \
                            s.related OPERATOR(pg_catalog.<>) $1, s.related::pg_catalog.oid, s.text_column::text, \
                            (SELECT pg_catalog.format_type(p.atttypid, p.atttypmod) FROM pg_catalog.pg_attribute p \
                              WHERE p.attrelid OPERATOR(pg_catalog.=) s.related AND p.attname OPERATOR(pg_catalog.=) s.text_column \
                                AND NOT p.attisdropped), \
                            s.lookup_key::text \
                       FROM storage._search_sources s \
                       JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.target \
                        AND a.attname OPERATOR(pg_catalog.=) s.target_key AND NOT a.attisdropped \
                      WHERE s.related OPERATOR(pg_catalog.=) $1 OR s.lookup OPERATOR(pg_catalog.=) $1 \
                      ORDER BY s.target, s.search_column, s.name",
                    None,
                    &[related.into()],
                )
                .unwrap_or_else(|e| spi_failed(e))
                .map(|row| Reader {
                    target: row.get(1).ok().flatten().unwrap_or(pg_sys::InvalidOid),
                    search_column: row.get(2).ok().flatten().unwrap_or_default(),
                    key_column: row.get(3).ok().flatten().unwrap_or_default(),
                    target_key: row.get(4).ok().flatten().unwrap_or_default(),
                    key_type: row.get(5).ok().flatten().unwrap_or_default(),
                    via: row.get::<bool>(6).ok().flatten().unwrap_or(false).then(|| Via {
                        related: row.get(7).ok().flatten().unwrap_or(pg_sys::InvalidOid),
                        pointer: row.get(8).ok().flatten().unwrap_or_default(),
                        pointer_type: row.get(9).ok().flatten().unwrap_or_default(),
                        lookup_key: row.get(10).ok().flatten().unwrap_or_default(),
                    }),
                })
                .collect()
        })
    });
    let truncate = trigger_fired_by_truncate(event);
    let tables: Vec<&str> = match (
        trigger_fired_by_insert(event),
        trigger_fired_by_update(event),
        trigger_fired_by_delete(event),
    ) {
        (true, _, _) => vec![NEW_ROWS],
        (_, true, _) => vec![NEW_ROWS, OLD_ROWS],
        (_, _, true) => vec![OLD_ROWS],
        _ => vec![],
    };
    for r in readers {
        let set = format!(
            "UPDATE {} AS t SET {} = NULL",
            qualified(r.target),
            quote(&r.search_column)
        );
        if truncate {
            // every row's related text may have gone
            on_behalf_of(r.target, || run(&set, None));
            continue;
        }
        if tables.is_empty() {
            continue;
        }
        // the keys the statement's rows had, read from its transition tables (as the writer:
        // its own rows): of the searched table's rows, or of the lookup rows they point to
        let column = r.via.as_ref().map_or(&r.key_column, |v| &v.lookup_key);
        let union: Vec<String> = tables
            .iter()
            .map(|t| format!("SELECT {}::pg_catalog.text AS k FROM {t}", quote(column)))
            .collect();
        let keys: Vec<String> =
            crate::privilege::with_setting(c"search_path", c"pg_catalog, pg_temp", || {
                Spi::connect(|client| {
                    // SAFETY: the trigger data of this trigger call, for this SPI connection.
                    unsafe {
                        pg_sys::SPI_register_trigger_data(
                            td as *const pg_sys::TriggerData as *mut pg_sys::TriggerData,
                        )
                    };
                    client
                        .select(
                            &format!(
                                "SELECT DISTINCT u.k FROM ({}) AS u WHERE u.k IS NOT NULL",
                                union.join(" UNION ALL ")
                            ),
                            None,
                            &[],
                        )
                        .unwrap_or_else(|e| spi_failed(e))
                        .filter_map(|row| row.get::<String>(1).ok().flatten())
                        .collect()
                })
            });
        if keys.is_empty() {
            continue;
        }
        let sql = match &r.via {
            None => format!(
                "{set} WHERE t.{} OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]::{}[])",
                quote(&r.target_key),
                r.key_type
            ),
            // the searched rows whose related rows point to the changed lookup rows
            Some(v) => format!(
                "{set} WHERE t.{} IN (SELECT r.{} FROM {} AS r \
                                       WHERE r.{} OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]::{}[]))",
                quote(&r.target_key),
                quote(&r.key_column),
                qualified(v.related),
                quote(&v.pointer),
                v.pointer_type
            ),
        };
        on_behalf_of(r.target, || run(&sql, Some(keys)));
    }
    Ok(None)
}

/// Runs `work` as `table`'s owner (restricted) for whoever fired a trigger: the work the
/// extension's configuration asks for, which the writer need not have the owner's rights for
/// (a writer of tags recomputes articles' search column).
fn on_behalf_of<R>(table: pg_sys::Oid, work: impl FnOnce() -> R) -> R {
    crate::privilege::as_owner(|| crate::privilege::as_table_owner(table, work))
}

fn run(sql: &str, keys: Option<Vec<String>>) {
    let args: Vec<pgrx::datum::DatumWithOid<'_>> = keys.into_iter().map(Into::into).collect();
    Spi::connect_mut(|client| client.update(sql, None, &args).map(|_| ()))
        .unwrap_or_else(|e| spi_failed(e));
}

crate::triggers::trigger_entry!(
    search_related_wrapper,
    pg_finfo_search_related_wrapper,
    "storage._search_related",
    search_related
);

const SOURCES_HINT: &str = "Pass an object of named sources, e.g. '{\"tags\": {\"table\": \"article_tags\", \"key\": \"article_id\", \"column\": \"tag\", \"weight\": \"B\"}}': the related table (in the searched table's schema unless qualified), its column holding the searched table's primary key, its text column (or, with \"lookup\": {\"table\", \"key\", \"column\"}, the column pointing into a lookup table holding the text), a weight A to D (D by default).";

fn bad_sources(message: String, detail: Option<String>) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        message,
        detail,
        Some(SOURCES_HINT.into()),
    )
}

/// One source as enable_search was given it, resolved.
struct Spec {
    name: String,
    related: pg_sys::Oid,
    key: String,
    text: String,
    weight: Weight,
    /// The table the related rows' `text` column points into: table, its key, its text column.
    lookup: Option<(pg_sys::Oid, String, String)>,
}

/// Records the related sources of `relid`'s search column `column` (None or `{}`: none) in the
/// extension's configuration and puts the statement triggers on each related table (as its
/// owner), removing those of related tables no source reads any more. Returns whether the
/// column has related sources (its row trigger then fires on an UPDATE OF the column itself).
pub(crate) fn configure(
    relid: pg_sys::Oid,
    table: &str,
    column: &str,
    sources: Option<&serde_json::Value>,
) -> bool {
    // a database whose extension SQL predates related sources: none
    if !crate::catalog::has_function("storage._search_related()") {
        return false;
    }
    let sources = match sources {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(m)) => m.clone(),
        Some(other) => bad_sources(
            "sources must be a JSON object".into(),
            Some(format!("Got {other}.")),
        ),
    };
    let specs: Vec<Spec> = sources
        .iter()
        .map(|(name, v)| resolve(relid, name, v))
        .collect();
    let target_key = if specs.is_empty() {
        None
    } else {
        Some(primary_key(relid, table))
    };
    for s in &specs {
        check_source(
            relid,
            table,
            s,
            target_key
                .as_ref()
                .map(|k| k.1)
                .unwrap_or(pg_sys::InvalidOid),
        );
    }
    let before: Vec<pg_sys::Oid> = config_rows(
        "SELECT DISTINCT t.oid FROM storage._search_sources s, \
                LATERAL (VALUES (s.related::pg_catalog.oid), (s.lookup::pg_catalog.oid)) AS t(oid) \
          WHERE s.target OPERATOR(pg_catalog.=) $1 AND s.search_column OPERATOR(pg_catalog.=) $2 AND t.oid IS NOT NULL",
        relid,
        column,
    );
    crate::privilege::as_owner(|| {
        Spi::connect_mut(|client| {
            client.update(
                "DELETE FROM storage._search_sources s \
                  WHERE s.target OPERATOR(pg_catalog.=) $1 AND s.search_column OPERATOR(pg_catalog.=) $2",
                None,
                &[relid.into(), column.into()],
            )?;
            for s in &specs {
                client.update(
                    "INSERT INTO storage._search_sources \
                       (target, search_column, name, related, key_column, text_column, target_key, weight, \
                        lookup, lookup_key, lookup_text) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    None,
                    &[
                        relid.into(),
                        column.into(),
                        s.name.as_str().into(),
                        s.related.into(),
                        s.key.as_str().into(),
                        s.text.as_str().into(),
                        target_key.as_ref().map(|k| k.0.as_str()).into(),
                        s.weight.letter().to_string().into(),
                        s.lookup.as_ref().map(|l| l.0).into(),
                        s.lookup.as_ref().map(|l| l.1.as_str()).into(),
                        s.lookup.as_ref().map(|l| l.2.as_str()).into(),
                    ],
                )?;
            }
            Ok::<(), pgrx::spi::SpiError>(())
        })
        .unwrap_or_else(|e| spi_failed(e))
    });
    for s in &specs {
        ensure_triggers(s.related);
        if let Some(l) = &s.lookup {
            ensure_triggers(l.0);
        }
    }
    // a related table no source reads any more loses its triggers
    for old in before {
        let still_read = crate::privilege::as_owner(|| {
            Spi::get_one_with_args::<bool>(
                "SELECT EXISTS (SELECT FROM storage._search_sources s \
                                 WHERE s.related OPERATOR(pg_catalog.=) $1 OR s.lookup OPERATOR(pg_catalog.=) $1)",
                &[old.into()],
            )
            .unwrap_or_else(|e| spi_failed(e))
            .unwrap_or(false)
        });
        if !still_read {
            drop_triggers(old);
        }
    }
    !specs.is_empty()
}

fn config_rows(sql: &str, relid: pg_sys::Oid, column: &str) -> Vec<pg_sys::Oid> {
    crate::privilege::as_owner(|| {
        Spi::connect(|client| {
            client
                .select(sql, None, &[relid.into(), column.into()])
                .unwrap_or_else(|e| spi_failed(e))
                .filter_map(|row| row.get::<pg_sys::Oid>(1).ok().flatten())
                .collect()
        })
    })
}

/// A source of the sources object, its tables looked up in the searched table's schema unless
/// qualified.
fn resolve(relid: pg_sys::Oid, name: &str, v: &serde_json::Value) -> Spec {
    if !v.is_object() || name.is_empty() {
        bad_sources(
            format!("source \"{name}\" must be a named object"),
            Some(format!("Got {v}.")),
        );
    }
    let (related, key, text) = table_key_column(relid, name, v, "");
    let weight = match v.get("weight").map(|w| w.as_str()) {
        None => Weight::D,
        Some(w) => w.and_then(Weight::parse).unwrap_or_else(|| {
            bad_sources(
                format!("weight of source \"{name}\" must be one of \"A\", \"B\", \"C\", \"D\""),
                Some(format!("Got {}.", v["weight"])),
            )
        }),
    };
    let lookup = v.get("lookup").map(|l| {
        if !l.is_object() {
            bad_sources(
                format!("the lookup of source \"{name}\" must be an object"),
                Some(format!("Got {l}.")),
            );
        }
        table_key_column(relid, name, l, "lookup ")
    });
    Spec {
        name: name.to_owned(),
        related,
        key,
        text,
        weight,
        lookup,
    }
}

/// The "table", "key" and "column" of a source (or of its lookup, `what` = "lookup "), the table
/// found in the searched table's schema unless qualified.
fn table_key_column(
    relid: pg_sys::Oid,
    name: &str,
    v: &serde_json::Value,
    what: &str,
) -> (pg_sys::Oid, String, String) {
    let field =
        |f: &str| -> Option<String> { v.get(f).and_then(|x| x.as_str()).map(str::to_owned) };
    let (Some(table), Some(key), Some(text)) = (field("table"), field("key"), field("column"))
    else {
        bad_sources(
            format!("the {what}of source \"{name}\" needs \"table\", \"key\" and \"column\""),
            Some(format!("Got {v}.")),
        );
    };
    let oid = Spi::get_one_with_args::<pg_sys::Oid>(
        "SELECT (SELECT c.oid FROM pg_catalog.pg_class c \
                  WHERE c.relname OPERATOR(pg_catalog.=) p.n[pg_catalog.cardinality(p.n)] \
                    AND c.relnamespace OPERATOR(pg_catalog.=) CASE WHEN pg_catalog.cardinality(p.n) OPERATOR(pg_catalog.=) 1 \
                          THEN (SELECT t.relnamespace FROM pg_catalog.pg_class t WHERE t.oid OPERATOR(pg_catalog.=) $2) \
                          ELSE (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) p.n[1]) END) \
           FROM (SELECT pg_catalog.parse_ident($1) AS n) p \
          WHERE pg_catalog.cardinality(p.n) OPERATOR(pg_catalog.<=) 2",
        &[table.as_str().into(), relid.into()],
    )
    .unwrap_or_else(|e| spi_failed(e))
    .unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            format!("the {what}table \"{table}\" of source \"{name}\" does not exist"),
            Some("An unqualified name is looked up in the searched table's schema.".into()),
            Some(SOURCES_HINT.into()),
        )
    });
    (oid, key, text)
}

/// The searched table's primary key column and type: one column.
fn primary_key(relid: pg_sys::Oid, table: &str) -> (String, pg_sys::Oid) {
    let keys: Vec<(String, pg_sys::Oid)> = Spi::connect(|client| {
        client
            .select(
                "SELECT a.attname::text, a.atttypid FROM pg_catalog.pg_index i \
                   JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid \
                    AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[]) \
                  WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND i.indisprimary",
                None,
                &[relid.into()],
            )
            .unwrap_or_else(|e| spi_failed(e))
            .map(|row| {
                (
                    row.get::<String>(1).ok().flatten().unwrap_or_default(),
                    row.get::<pg_sys::Oid>(2)
                        .ok()
                        .flatten()
                        .unwrap_or(pg_sys::InvalidOid),
                )
            })
            .collect()
    });
    match keys.as_slice() {
        [one] => one.clone(),
        [] => raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("{table} has no primary key"),
            Some("A related source's rows name the searched row by its primary key.".into()),
            Some("Add a primary key of one column.".into()),
        ),
        _ => raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("{table} has a primary key of {} columns", keys.len()),
            Some("A related source's rows name the searched row by a key of one column.".into()),
            Some("Search text from related tables needs a primary key of one column.".into()),
        ),
    }
}

/// A source's tables and columns: plain or partitioned tables, not on Citus, the key column of
/// the searched key's type, the text column present (or the lookup's key of the type of the
/// column pointing to it), readable by the searched table's owner.
fn check_source(relid: pg_sys::Oid, table: &str, s: &Spec, key_type: pg_sys::Oid) {
    let related = crate::ident::require_table(s.related, "storage.enable_search");
    if s.related == relid || s.lookup.as_ref().is_some_and(|l| l.0 == relid) {
        bad_sources(
            format!("source \"{}\" reads the searched table itself", s.name),
            None,
        );
    }
    let tables: Vec<pg_sys::Oid> = [relid, s.related]
        .into_iter()
        .chain(s.lookup.as_ref().map(|l| l.0))
        .collect();
    for t in &tables {
        crate::ident::require_table(*t, "storage.enable_search");
        crate::privilege::as_owner(|| {
            Spi::run_with_args(
                "SELECT storage._refuse_on_citus($1, 'storage.enable_search', \
                        'Text from related tables (sources) is kept by statement triggers on the related table, which would read shards on other nodes.')",
                &[(*t).into()],
            )
            .unwrap_or_else(|e| spi_failed(e))
        });
    }
    let key = column_type(s.related, &s.key, &s.name);
    if key != key_type {
        raise(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "column \"{}\" of {related} is not of the type of {table}'s primary key",
                s.key
            ),
            Some(format!(
                "Source \"{}\" names the searched row by it.",
                s.name
            )),
            Some(
                "Name the related table's column that references the searched table's primary key."
                    .into(),
            ),
        );
    }
    let pointer = column_type(s.related, &s.text, &s.name);
    if let Some((lookup, lookup_key, lookup_text)) = &s.lookup {
        if column_type(*lookup, lookup_key, &s.name) != pointer {
            raise(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!(
                    "column \"{lookup_key}\" of {} is not of the type of column \"{}\" of {related}",
                    qualified(*lookup),
                    s.text
                ),
                Some(format!("Source \"{}\": the related rows point to the lookup rows by it.", s.name)),
                Some("Name the lookup table's key the related table's column references.".into()),
            );
        }
        column_type(*lookup, lookup_text, &s.name);
    }
    let owner = crate::privilege::relation_owner(relid);
    for t in tables.iter().skip(1) {
        let readable = Spi::get_one_with_args::<bool>(
            "SELECT pg_catalog.has_table_privilege($1, $2, 'SELECT')",
            &[owner.into(), (*t).into()],
        )
        .unwrap_or_else(|e| spi_failed(e))
        .unwrap_or(false);
        if !readable {
            raise(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!("the owner of {table} may not read {}", qualified(*t)),
                Some(format!(
                    "Source \"{}\": the search column is computed as the searched table's owner.",
                    s.name
                )),
                Some(format!(
                    "GRANT SELECT ON {} TO the owner of {table}.",
                    qualified(*t)
                )),
            );
        }
    }
}

/// The type of `column` of `table` (`42703` when it has none).
fn column_type(table: pg_sys::Oid, column: &str, source: &str) -> pg_sys::Oid {
    Spi::get_one_with_args::<pg_sys::Oid>(
        "SELECT (SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) $1 \
                  AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)",
        &[table.into(), column.into()],
    )
    .unwrap_or_else(|e| spi_failed(e))
    .unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
            format!("column \"{column}\" of {} (source \"{source}\") does not exist", qualified(table)),
            None,
            Some(SOURCES_HINT.into()),
        )
    })
}

/// The statement triggers a related table's changes fire: AFTER INSERT, UPDATE and DELETE with
/// their transition tables, and TRUNCATE; created as the table's owner when missing.
fn ensure_triggers(related: pg_sys::Oid) {
    let table = qualified(related);
    for (name, event, referencing) in TRIGGERS {
        let exists = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) $1 \
                              AND t.tgname OPERATOR(pg_catalog.=) $2::pg_catalog.name)",
            &[related.into(), (*name).into()],
        )
        .unwrap_or_else(|e| spi_failed(e))
        .unwrap_or(false);
        if exists {
            continue;
        }
        let sql = format!(
            "CREATE TRIGGER {} AFTER {event} ON {table} {referencing} FOR EACH STATEMENT EXECUTE FUNCTION storage._search_related()",
            quote(name)
        );
        crate::privilege::as_table_owner(related, || run(&sql, None));
    }
}

fn drop_triggers(related: pg_sys::Oid) {
    let table = qualified(related);
    for (name, _, _) in TRIGGERS {
        let sql = format!("DROP TRIGGER IF EXISTS {} ON {table}", quote(name));
        crate::privilege::as_table_owner(related, || run(&sql, None));
    }
}

/// The related table's triggers: name, event, transition tables.
const TRIGGERS: [(&str, &str, &str); 4] = [
    (
        "pgse_search_related_insert",
        "INSERT",
        "REFERENCING NEW TABLE AS pgse_new",
    ),
    (
        "pgse_search_related_update",
        "UPDATE",
        "REFERENCING OLD TABLE AS pgse_old NEW TABLE AS pgse_new",
    ),
    (
        "pgse_search_related_delete",
        "DELETE",
        "REFERENCING OLD TABLE AS pgse_old",
    ),
    ("pgse_search_related_truncate", "TRUNCATE", ""),
];
