//! Operations: version, the progress of long operations (`progress`), and the one way the SQL
//! orchestration runs a command on a user's table (`storage._run_as_owner`).

pub(crate) mod progress;

use pgrx::pg_sys;
use pgrx::prelude::*;

/// The extension's crate version, e.g. `0.1.0`.
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// `storage._run_as_owner(target, command, args, relocating)`: runs one SQL command on a user's
/// table as its owner under SECURITY_RESTRICTED_OPERATION
/// ([`crate::privilege::as_table_owner`]), the arguments as text parameters `$1`, `$2`, ...;
/// returns the rows it processed. The orchestration in SQL
/// (partition drains, conversion copies) calls it for every statement that fires the table's
/// triggers or evaluates its expressions. Row changes of the `relocating` relations are moves
/// made by the extension, not changes: audit capture does not log them. Not executable by PUBLIC.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn _run_as_owner(
    target: crate::ident::Regclass,
    command: &str,
    args: pgrx::default!(Vec<Option<String>>, "'{}'"),
    relocating: pgrx::default!(Vec<Option<pg_sys::Oid>>, "'{}'"),
) -> i64 {
    let relocating: Vec<pg_sys::Oid> = relocating.into_iter().flatten().collect();
    crate::privilege::as_table_owner(target.0, || {
        crate::audit::moving(&relocating, || {
            let params: Vec<pgrx::datum::DatumWithOid<'_>> =
                args.iter().map(|a| a.as_deref().into()).collect();
            pgrx::Spi::connect_mut(|client| {
                client
                    .update(command, None, &params)
                    .map(|t| t.len() as i64)
                    .unwrap_or_else(|e| crate::error::spi_failed(e))
            })
        })
    })
}

/// `storage._run_as_owner_bound(target, command, search_path)`: one SQL command on a user's table
/// as its owner under SECURITY_RESTRICTED_OPERATION, as [`_run_as_owner`] runs it, but with its
/// names resolved with `search_path` rather than the pinned one: how a user's expression (an
/// online change's conversion, a CHECK) is bound once, with the caller's effective search_path.
/// Returns the rows it processed. Not executable by PUBLIC.
#[pg_extern(volatile, strict)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn _run_as_owner_bound(
    target: crate::ident::Regclass,
    command: &str,
    search_path: &str,
) -> i64 {
    let path = std::ffi::CString::new(search_path).unwrap_or_else(|_| c"pg_catalog".to_owned());
    crate::privilege::as_table_owner_with_path(target.0, &path, || {
        pgrx::Spi::connect_mut(|client| {
            client
                .update(command, None, &[])
                .map(|t| t.len() as i64)
                .unwrap_or_else(|e| crate::error::spi_failed(e))
        })
    })
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// Released versions: the frozen full scripts `sql/pg_storage_ext--X.Y.Z.sql` in the tree.
    fn releases() -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sql");
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("read sql/")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|f| {
                let v = f.strip_prefix("pg_storage_ext--")?.strip_suffix(".sql")?;
                (!v.contains("--")).then(|| v.to_owned())
            })
            .collect();
        v.sort();
        v
    }

    /// Every released version has an update path to this one (a version bump without its
    /// update script fails here): consecutive releases, then this version, each joined by the
    /// hand-written part of its update (`sql/updates/A--B.sql`, from which the build generates
    /// the script; tests/integration/tests/upgrade.rs runs them), and the installed extension
    /// is this library's version.
    #[pg_test]
    fn every_release_updates_to_this_version() {
        let this = Spi::get_one::<String>("SELECT storage.version()")
            .expect("spi")
            .expect("version");
        let installed = Spi::get_one::<String>(
            "SELECT extversion FROM pg_extension WHERE extname = 'pg_storage_ext'",
        )
        .expect("spi");
        assert_eq!(installed.as_deref(), Some(this.as_str()));
        let mut versions = releases();
        assert!(
            versions.contains(&"0.1.0".to_owned()),
            "frozen 0.1.0 missing: {versions:?}"
        );
        if !versions.contains(&this) {
            versions.push(this.clone());
        }
        for pair in versions.windows(2) {
            let part = format!(
                "{}/sql/updates/{}--{}.sql",
                env!("CARGO_MANIFEST_DIR"),
                pair[0],
                pair[1]
            );
            assert!(
                std::path::Path::new(&part).exists(),
                "no update path from {} to {}: add {part}",
                pair[0],
                pair[1]
            );
        }
    }
}
