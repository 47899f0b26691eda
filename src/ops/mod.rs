//! Operations: version, and the progress of long operations (`progress`).

pub(crate) mod progress;

use pgrx::prelude::*;

/// The extension's crate version, e.g. `0.1.0`.
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
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
    /// upgrade script fails here), and the installed extension is this library's version.
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
        let releases = releases();
        assert!(
            releases.contains(&"0.1.0".to_owned()),
            "frozen 0.1.0 missing: {releases:?}"
        );
        for r in releases {
            if r == this {
                continue;
            }
            let path = Spi::get_one_with_args::<String>(
                "SELECT path FROM pg_extension_update_paths('pg_storage_ext') WHERE source = $1 AND target = $2",
                &[r.as_str().into(), this.as_str().into()],
            )
            .expect("spi");
            assert!(
                path.is_some(),
                "no update path from {r} to {this}: add sql/pg_storage_ext--{r}--{this}.sql"
            );
        }
    }
}
