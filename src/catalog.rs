//! What the extension asks the database about itself before it acts: whether this is a primary,
//! what a table is to Citus, whether a function of its SQL exists (a database whose extension SQL
//! is older than the library), and the one read-only query helper a hot standby can run.
//! Errors are [`crate::error`]'s; this module only reads.

use crate::error::{internal, spi_failed};

/// Nothing on a primary; on a hot standby, the 25006 error of `storage._require_primary` (the
/// one place that words it and names the primary) for the writing function `what`. Read-only
/// SPI: a standby has no transaction id to give pgrx's writing path.
pub(crate) fn require_primary(what: &str) {
    // SAFETY: reads the shared recovery state.
    if unsafe { pgrx::pg_sys::RecoveryInProgress() } {
        let _ = pgrx::Spi::connect(|client| {
            client
                .select(
                    "SELECT storage._require_primary($1)",
                    Some(1),
                    &[what.into()],
                )
                .map(|_| ())
        });
        internal("storage._require_primary returned on a hot standby");
    }
}

/// What `relid` is to Citus — `distributed`, `reference`, `citus local` — or None (no Citus, a
/// table it does not manage, or extension SQL older than `storage._citus_kind`). Asked as the
/// extension's owner: the internal function is not executable by the roles a public function is
/// granted to, and it only reads Citus's catalog.
pub(crate) fn citus_kind(relid: pgrx::pg_sys::Oid) -> Option<String> {
    use pgrx::pg_sys;
    // without Citus in this database (its catalog absent: a syscache lookup), no query at all
    // SAFETY: a syscache lookup by name in pg_catalog.
    let citus = unsafe {
        pg_sys::get_relname_relid(
            c"pg_dist_partition".as_ptr(),
            pg_sys::Oid::from(pg_sys::PG_CATALOG_NAMESPACE),
        ) != pg_sys::InvalidOid
    };
    if !citus || !has_function("storage._citus_kind(regclass)") {
        return None;
    }
    crate::privilege::as_owner(|| {
        pgrx::Spi::connect(|client| {
            client
                .select("SELECT storage._citus_kind($1)", Some(1), &[relid.into()])?
                .first()
                .get_one::<String>()
        })
    })
    .unwrap_or_else(|e| spi_failed(e))
}

/// Whether the function `signature` exists: the library also serves a database whose extension
/// SQL is still an older version's, until `ALTER EXTENSION pg_storage_ext UPDATE` runs there.
pub(crate) fn has_function(signature: &str) -> bool {
    pgrx::Spi::connect(|client| {
        client
            .select(
                "SELECT pg_catalog.to_regprocedure($1) IS NOT NULL",
                Some(1),
                &[signature.into()],
            )?
            .first()
            .get_one::<bool>()
    })
    .unwrap_or_else(|e| spi_failed(e))
    .unwrap_or(false)
}

/// The first column of the first row of a read-only query. pgrx's `Spi::get_one` goes through
/// its writing path, which takes a transaction id: a hot standby has none to give.
pub(crate) fn read_one<T: pgrx::FromDatum + pgrx::IntoDatum>(
    sql: &str,
) -> Result<Option<T>, pgrx::spi::Error> {
    pgrx::Spi::connect(|client| client.select(sql, Some(1), &[])?.first().get_one::<T>())
}

/// [`read_one`] with arguments.
pub(crate) fn read_one_with_args<T: pgrx::FromDatum + pgrx::IntoDatum>(
    sql: &str,
    args: &[pgrx::datum::DatumWithOid<'_>],
) -> Result<Option<T>, pgrx::spi::Error> {
    pgrx::Spi::connect(|client| client.select(sql, Some(1), args)?.first().get_one::<T>())
}

/// The relation and every partition under it, at any depth (`pg_partition_tree`, which takes no
/// lock: the caller holds one on the relation, as a TRUNCATE does on all of them).
pub(crate) fn inheritors(relid: pgrx::pg_sys::Oid) -> Vec<pgrx::pg_sys::Oid> {
    pgrx::Spi::connect(|client| {
        client
            .select(
                "SELECT relid::pg_catalog.oid FROM pg_catalog.pg_partition_tree($1)",
                None,
                &[relid.into()],
            )?
            .map(|row| row.get::<pgrx::pg_sys::Oid>(1))
            .collect::<Result<Vec<_>, _>>()
    })
    .map(|v| v.into_iter().flatten().collect::<Vec<_>>())
    .map(|v| if v.is_empty() { vec![relid] } else { v })
    .unwrap_or_else(|e| spi_failed(e))
}
