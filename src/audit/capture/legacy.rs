//! Capture into the 0.1.0 log, for a database whose extension SQL is still 0.1.0's (the library
//! is installed before `ALTER EXTENSION pg_storage_ext UPDATE` runs there): one row per changed
//! row in the `audit.log` table, as 0.1.0 wrote it. `changed_columns` is computed inline (0.1.0's
//! `audit._changed_columns` is gone from the library).

use super::{
    agg, client_addr, cstr, execute, name_datum, role_name, rows, Entry, Op, NEW_TABLE, OLD_TABLE,
};
use crate::ident::qualified;
use pgrx::pg_sys;
use pgrx::IntoDatum;

/// Parameters: $1 table (oid), $2 excluded columns, $3 non-key columns (NULL without a primary
/// key), $4 schema name, $5 table name, $6 logged columns in order, $7 (TRUNCATE of a partition
/// only) the partition's qualified name, $8 ts, $9 txid, $10 db_user, $11 role_name,
/// $12 application_name, $13 client_addr, $14 query.
pub(super) const ARG_TYPES: [pg_sys::Oid; 14] = [
    pg_sys::OIDOID,
    pg_sys::TEXTARRAYOID,
    pg_sys::TEXTARRAYOID,
    pg_sys::NAMEOID,
    pg_sys::NAMEOID,
    pg_sys::TEXTARRAYOID,
    pg_sys::TEXTOID,
    pg_sys::TIMESTAMPTZOID,
    pg_sys::XID8OID,
    pg_sys::NAMEOID,
    pg_sys::NAMEOID,
    pg_sys::TEXTOID,
    pg_sys::INETOID,
    pg_sys::TEXTOID,
];

/// The 0.1.0 log INSERT of `op`; `image` is the jsonb image of a transition-table row `t`.
pub(super) fn sql(op: Op, image: &str) -> String {
    let consts = "$10, $11, $12, $13, $14";
    let body = match op {
        Op::Insert => format!(
            "SELECT $8, $9, $1, $4, $5, 'INSERT', r.f OPERATOR(pg_catalog.-) $3, NULL, NULL, \
                    r.f OPERATOR(pg_catalog.-) $2, NULL, {consts} FROM {}",
            rows(NEW_TABLE, image)
        ),
        Op::Delete => format!(
            "SELECT $8, $9, $1, $4, $5, 'DELETE', r.f OPERATOR(pg_catalog.-) $3, NULL, \
                    r.f OPERATOR(pg_catalog.-) $2, NULL, NULL, {consts} FROM {}",
            rows(OLD_TABLE, image)
        ),
        Op::Update => format!(
            "SELECT $8, $9, $1, $4, $5, 'UPDATE', u.nk, NULLIF(u.ok, u.nk), u.o, u.n, \
                    ARRAY(SELECT c FROM pg_catalog.unnest($6) WITH ORDINALITY AS x(c, i) \
                           WHERE (u.o OPERATOR(pg_catalog.->) c) IS DISTINCT FROM (u.n OPERATOR(pg_catalog.->) c) \
                           ORDER BY i), {consts} \
               FROM (SELECT p.o OPERATOR(pg_catalog.-) $3 AS ok, p.n OPERATOR(pg_catalog.-) $3 AS nk, \
                            p.o OPERATOR(pg_catalog.-) $2 AS o, p.n OPERATOR(pg_catalog.-) $2 AS n \
                       FROM ROWS FROM (pg_catalog.unnest({}), pg_catalog.unnest({})) AS p(o, n) \
                     OFFSET 0) AS u \
              WHERE u.o IS DISTINCT FROM u.n",
            agg(OLD_TABLE, image),
            agg(NEW_TABLE, image)
        ),
        Op::Truncate => format!(
            "SELECT $8, $9, $1, $4, $5, 'TRUNCATE', NULL, NULL, \
                    CASE WHEN $7 IS NOT NULL THEN pg_catalog.jsonb_build_object('partition', $7) END, \
                    NULL, NULL, {consts}"
        ),
    };
    format!(
        "INSERT INTO audit.log (ts, txid, table_oid, schema_name, table_name, op, pk, old_pk, \
         old_row, new_row, changed_columns, db_user, role_name, application_name, client_addr, \
         query) {body}"
    )
}

/// Writes the statement's rows into the 0.1.0 log (the caller runs as the extension owner).
pub(super) fn write(entry: &Entry, op: Op, relid: pg_sys::Oid, actor: pg_sys::Oid) {
    let partition = (op == Op::Truncate && relid != entry.table).then(|| qualified(relid));
    // SAFETY: transaction and session state getters; the GUC name is a literal.
    let (ts, txid, session, app, query) = unsafe {
        let app = pg_sys::GetConfigOption(c"application_name".as_ptr(), true, false);
        (
            pg_sys::GetCurrentStatementStartTimestamp(),
            pg_sys::GetTopFullTransactionId().value,
            pg_sys::GetSessionUserId(),
            (!app.is_null()).then(|| cstr(app)),
            (entry.options.capture_query && !pg_sys::debug_query_string.is_null())
                .then(|| cstr(pg_sys::debug_query_string)),
        )
    };
    let params = [
        Some(pg_sys::Datum::from(entry.table)),
        entry.options.exclude.clone().into_datum(),
        entry.non_key.clone().and_then(IntoDatum::into_datum),
        Some(name_datum(&entry.schema)),
        Some(name_datum(&entry.name)),
        entry.logged.clone().into_datum(),
        partition.and_then(IntoDatum::into_datum),
        Some(pg_sys::Datum::from(ts)),
        Some(pg_sys::Datum::from(txid)),
        Some(name_datum(&role_name(session))),
        Some(name_datum(&role_name(actor))),
        app.and_then(IntoDatum::into_datum),
        client_addr(),
        query.and_then(IntoDatum::into_datum),
    ];
    execute(entry.plan, &params, pg_sys::SPI_OK_INSERT);
}
