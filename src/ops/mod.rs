//! Operations: version and (as they land) health checks, scheduling, roles.

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

    #[pg_test]
    fn version_matches_crate_and_control() {
        let v = Spi::get_one::<String>("SELECT storage.version()").expect("spi");
        assert_eq!(v.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        let installed = Spi::get_one::<String>(
            "SELECT extversion FROM pg_extension WHERE extname = 'pg_storage_ext'",
        )
        .expect("spi");
        assert_eq!(installed, v);
    }
}
