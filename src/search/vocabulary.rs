//! The search vocabulary behind typo tolerance (docs/search.md, "Typos"): every lexeme of a
//! table's search column, in `storage._search_words`, kept without re-reading the table.
//!
//! The search trigger hands each new value's lexemes to [`note_words`], which queues those this
//! backend has not queued before (`storage._search_words_queue`, plain inserts: writers never
//! wait on each other for a word) as the extension's owner; `storage._search_words_merge`, run by
//! the heartbeat job and at the end of `enable_search`/`rebuild_search`, moves the queue into the
//! vocabulary, one merger at a time. What a backend queued counts as queued only once its
//! transaction commits (an aborted one's rows are gone; a rolled-back savepoint forgets the
//! transaction's words, which at worst queues a word twice).
//!
//! [`_search_correction`] finds, for a word of a query that matches no row the caller can see,
//! the closest vocabulary word (pg_trgm) that does match one: the candidates are read as the
//! extension's owner, every check against the table runs as the caller, under its privileges
//! and row security, so neither a suggestion nor whether there is one tells anything of a row
//! the caller cannot read (the vocabulary itself answers nothing directly).

use crate::error::spi_failed;
use crate::ident::{quote, Name, Regclass};
use pg_storage_core::search::{lexeme_query, word_key};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Words a backend remembers as queued before it forgets them all (memory bound).
const REMEMBERED: usize = 500_000;

/// Candidates tried per unknown word.
const CANDIDATES: i64 = 20;

/// A set of [`word_key`]s: the keys are hashes already, so they are used as they are.
type Keys = HashSet<u64, BuildHasherDefault<KeyHasher>>;

#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // only u64 keys are hashed (write_u64); any other input is folded in
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Default)]
struct Queued {
    /// Committed to the queue (or the vocabulary) by this backend: keys of (table, lexeme).
    committed: Keys,
    /// Queued by the running transaction.
    open: Keys,
    /// Whether the transaction callbacks are registered (once per backend).
    registered: bool,
}

thread_local! {
    static QUEUED: RefCell<Queued> = RefCell::new(Queued::default());
}

unsafe extern "C-unwind" fn xact_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    // SAFETY: a transaction callback, called by C
    unsafe {
        crate::guard::callback(|| {
            QUEUED.with(|q| {
                let mut q = q.borrow_mut();
                match event {
                    pg_sys::XactEvent::XACT_EVENT_COMMIT
                    | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT => {
                        let open = std::mem::take(&mut q.open);
                        if q.committed.len() + open.len() > REMEMBERED {
                            q.committed.clear();
                        }
                        q.committed.extend(open);
                    }
                    pg_sys::XactEvent::XACT_EVENT_ABORT
                    | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => q.open.clear(),
                    _ => {}
                }
            })
        })
    }
}

unsafe extern "C-unwind" fn subxact_event(
    event: pg_sys::SubXactEvent::Type,
    _my: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        // SAFETY: a subtransaction callback, called by C
        unsafe { crate::guard::callback(|| QUEUED.with(|q| q.borrow_mut().open.clear())) }
    }
}

/// Queues the lexemes of `vector` (a tsvector) that this backend has not queued for `table`.
pub(crate) fn note_words(table: pg_sys::Oid, vector: pg_sys::Datum) {
    // (typo tolerance needs a UTF8 database: the lexemes cross into Rust as text)
    // SAFETY: a backend global's getter
    if table == pg_sys::InvalidOid
        || unsafe { pg_sys::GetDatabaseEncoding() } != pg_sys::pg_enc::PG_UTF8 as i32
    {
        return;
    }
    let t = table.to_u32();
    let new: Vec<String> = QUEUED.with(|q| {
        let mut q = q.borrow_mut();
        if !q.registered {
            // SAFETY: backend-lifetime callbacks that only touch this backend's sets.
            unsafe {
                pg_sys::RegisterXactCallback(Some(xact_event), std::ptr::null_mut());
                pg_sys::RegisterSubXactCallback(Some(subxact_event), std::ptr::null_mut());
            }
            q.registered = true;
        }
        let mut new = Vec::new();
        // SAFETY: a tsvector datum the trigger just computed.
        unsafe {
            each_lexeme(vector, |lexeme| {
                let k = word_key(t, lexeme);
                if !q.committed.contains(&k) && q.open.insert(k) {
                    new.push(String::from_utf8_lossy(lexeme).into_owned());
                }
            })
        };
        new
    });
    // (a library newer than the database's extension, before ALTER EXTENSION UPDATE: no queue)
    if new.is_empty() || !queue_exists() {
        return;
    }
    crate::privilege::as_owner(|| {
        Spi::run_with_args(
            "INSERT INTO storage._search_words_queue (table_name, word) \
             SELECT $1, w FROM pg_catalog.unnest($2::pg_catalog.text[]) AS w",
            &[table.into(), new.into()],
        )
        .unwrap_or_else(|e| spi_failed(e))
    });
}

/// Calls `f` with each lexeme of the tsvector `vector`, in place (no copy).
///
/// # Safety
/// `vector` is a tsvector datum.
unsafe fn each_lexeme(vector: pg_sys::Datum, mut f: impl FnMut(&[u8])) {
    // SAFETY: a tsvector varlena, detoasted (the same pointer when it is plain); its entries
    // give each lexeme's offset and length in the string area after them (tsvector.h).
    unsafe {
        let v = pg_sys::pg_detoast_datum(vector.cast_mut_ptr()) as *const pg_sys::TSVectorData;
        let size = usize::try_from((*v).size).unwrap_or(0);
        let entries = (*v).entries.as_ptr();
        let strings = entries.add(size) as *const u8;
        for i in 0..size {
            let e = &*entries.add(i);
            let bytes = std::slice::from_raw_parts(strings.add(e.pos() as usize), e.len() as usize);
            f(bytes);
        }
    }
}

/// Whether `storage._search_words_queue` exists (syscache lookups).
fn queue_exists() -> bool {
    // SAFETY: name lookups in the syscache; InvalidOid when missing.
    unsafe {
        let nsp = pg_sys::get_namespace_oid(c"storage".as_ptr(), true);
        nsp != pg_sys::InvalidOid
            && pg_sys::get_relname_relid(c"_search_words_queue".as_ptr(), nsp) != pg_sys::InvalidOid
    }
}

/// The table a search trigger's vocabulary belongs to: the partitioned table at the top of a
/// partition's tree (storage.search reads the tree through it), else the table itself; none
/// (InvalidOid) for a Citus shard, whose words the coordinator reads from the shards instead
/// (`storage._search_words_merge` fills a Citus table's vocabulary, `rebuild_search` renews it).
pub(crate) fn vocabulary_of(relid: pg_sys::Oid, partition: bool) -> pg_sys::Oid {
    if crate::audit::capture::is_citus_shard(relid) {
        return pg_sys::InvalidOid;
    }
    if !partition {
        return relid;
    }
    crate::privilege::with_setting(c"search_path", c"pg_catalog, pg_temp", || {
        Spi::get_one_with_args::<pg_sys::Oid>(
            "SELECT pg_catalog.pg_partition_root($1)::pg_catalog.oid",
            &[relid.into()],
        )
        .unwrap_or_else(|e| spi_failed(e))
        .unwrap_or(relid)
    })
}

/// pg_trgm's schema, when it is installed in this database.
fn trigram_schema() -> Option<String> {
    crate::catalog::read_one::<String>(
        "SELECT (SELECT n.nspname::text FROM pg_catalog.pg_extension e \
           JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace \
          WHERE e.extname OPERATOR(pg_catalog.=) 'pg_trgm')",
    )
    .unwrap_or_else(|e| spi_failed(e))
}

/// The replacement storage.search uses for the lexeme `word` (`word:*` for a prefix): NULL when
/// a row the caller can see matches it; else the vocabulary word most similar to it (pg_trgm)
/// that matches such a row, or NULL when none does. Every check runs as the caller (its
/// privileges, its row security): only the candidates are read as the extension's owner, and
/// one is returned only once the caller's own query found it. Without pg_trgm a NOTICE says that
/// typo tolerance is unavailable.
#[pg_extern(stable, strict, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn _search_correction(
    target: Regclass,
    column: Name,
    word: &core::ffi::CStr,
) -> Option<String> {
    let word = crate::ident::utf8_arg(word, "storage._search_correction");
    let table = target.0;
    let (table_sql, column_sql) = (crate::ident::qualified(table), quote(&column.0));
    // Whether a row the caller can see matches `w`. The tsquery goes into the text as a quoted
    // constant, not as a parameter: the planner then knows the word (its frequency in the
    // column's statistics) and stops at the first of a common word's rows, or asks the index for
    // a rare or misspelt one; with a parameter it guesses, and a guess that the word is common
    // reads the whole table for a typo (350 ms on 50,000 articles, seconds on a million).
    let matches = |w: &str| -> bool {
        // a word the table's (filled) vocabulary and queue do not hold is in no row at all: no
        // row the caller can see has it either, and no table read says so
        if in_vocabulary(table, w) == Some(false) {
            return false;
        }
        // (`SELECT 1`, not `SELECT`: Citus plans an EXISTS over a distributed table with an
        // intermediate result, which a subquery of no columns cannot be read back from)
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {table_sql} AS t WHERE t.{column_sql} OPERATOR(pg_catalog.@@) {}::pg_catalog.tsquery)",
            crate::ident::literal(&lexeme_query(w))
        );
        crate::catalog::read_one::<bool>(&sql)
            .unwrap_or_else(|e| spi_failed(e))
            .unwrap_or(false)
    };
    let lexeme = word.strip_suffix(":*").unwrap_or(word);
    if lexeme.is_empty() || matches(word) {
        return None;
    }
    let Some(schema) = trigram_schema() else {
        pgrx::notice!(
            "pg_storage_ext: typo tolerance is unavailable: pg_trgm is not installed in this database (CREATE EXTENSION pg_trgm); searching as typed"
        );
        return None;
    };
    candidates(table, lexeme, &schema)
        .into_iter()
        .find(|c| matches(c))
}

/// Whether the vocabulary or its queue holds the lexeme `w` (`w:*`: a word starting with it),
/// read as the extension's owner; None when the table's vocabulary is not filled (no mark `''`).
fn in_vocabulary(table: pg_sys::Oid, w: &str) -> Option<bool> {
    let (lexeme, prefix) = match w.strip_suffix(":*") {
        Some(l) => (l, true),
        None => (w, false),
    };
    // the words from `lexeme` up to (not including) `lexeme` followed by the last code point:
    // every word starting with it, in the "C" order of the column
    let upper = format!("{lexeme}\u{10FFFF}");
    let holds = |t: &str| {
        if prefix {
            format!(
                "EXISTS (SELECT FROM storage.{t} w WHERE w.table_name OPERATOR(pg_catalog.=) $1 \
                           AND w.word OPERATOR(pg_catalog.>=) $2 AND w.word OPERATOR(pg_catalog.<) $3 \
                           AND pg_catalog.starts_with(w.word, $2))"
            )
        } else {
            format!(
                "EXISTS (SELECT FROM storage.{t} w WHERE w.table_name OPERATOR(pg_catalog.=) $1 \
                           AND w.word OPERATOR(pg_catalog.=) $2)"
            )
        }
    };
    let sql = format!(
        "SELECT CASE WHEN EXISTS (SELECT FROM storage._search_words w WHERE w.table_name OPERATOR(pg_catalog.=) $1 \
                                    AND w.word OPERATOR(pg_catalog.=) '') \
                     THEN {} OR {} END",
        holds("_search_words"),
        holds("_search_words_queue")
    );
    crate::privilege::as_owner(|| {
        crate::catalog::read_one_with_args::<bool>(
            &sql,
            &[table.into(), lexeme.into(), upper.as_str().into()],
        )
        .unwrap_or_else(|e| spi_failed(e))
    })
}

/// The vocabulary's words most similar to `lexeme` (pg_trgm's `%` and similarity), read as the
/// extension's owner.
fn candidates(table: pg_sys::Oid, lexeme: &str, schema: &str) -> Vec<String> {
    let s = quote(schema);
    let sql = format!(
        "SELECT w.word::text FROM storage._search_words w \
          WHERE w.table_name OPERATOR(pg_catalog.=) $1 AND w.word OPERATOR({s}.%) $2::pg_catalog.text \
          ORDER BY {s}.similarity(w.word, $2::pg_catalog.text) DESC, w.word LIMIT {CANDIDATES}"
    );
    crate::privilege::as_owner(|| {
        Spi::connect(|client| {
            client
                .select(&sql, None, &[table.into(), lexeme.into()])
                .unwrap_or_else(|e| spi_failed(e))
                .filter_map(|row| row.get::<String>(1).ok().flatten())
                .collect()
        })
    })
}

/// Fills the vocabulary of `target`'s search column `column` with the column's lexemes
/// (`ts_stat`) and the mark `''` that it has one: the table is read as its owner (restricted,
/// like any work on a user's table), the words written as the extension's owner. Called by
/// `storage._search_words_merge` for a table without a vocabulary; returns the words added.
#[pg_extern(volatile, strict)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn _search_words_fill(target: Regclass, column: Name) -> i64 {
    // (typo tolerance needs a UTF8 database: the lexemes cross into Rust as text)
    // SAFETY: a backend global's getter
    if unsafe { pg_sys::GetDatabaseEncoding() } != pg_sys::pg_enc::PG_UTF8 as i32 {
        return 0;
    }
    let table = target.0;
    crate::ident::require_table(table, "storage._search_words_fill");
    let read = format!(
        "SELECT s.word::pg_catalog.text FROM pg_catalog.ts_stat({}) AS s",
        crate::ident::literal(&format!(
            "SELECT t.{} FROM {} AS t",
            quote(&column.0),
            crate::ident::qualified(table)
        ))
    );
    let words: Vec<String> = crate::privilege::as_owner(|| {
        crate::privilege::as_table_owner(table, || {
            Spi::connect(|client| {
                client
                    .select(&read, None, &[])
                    .unwrap_or_else(|e| spi_failed(e))
                    .filter_map(|row| row.get::<String>(1).ok().flatten())
                    .collect()
            })
        })
    });
    crate::privilege::as_owner(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    "INSERT INTO storage._search_words (table_name, word) \
                     SELECT $1, w FROM pg_catalog.unnest($2::pg_catalog.text[] OPERATOR(pg_catalog.||) ''::pg_catalog.text) AS w \
                     ON CONFLICT DO NOTHING",
                    None,
                    &[table.into(), words.into()],
                )
                .map(|t| t.len() as i64)
                .unwrap_or_else(|e| spi_failed(e))
        })
    })
}
