//! The stack check of recursive walks. Core has no database, so the extension registers
//! PostgreSQL's `check_stack_depth` here at load time; every recursive walk over a JSON value calls
//! [`check`] once per container level, so a deeply nested document raises PostgreSQL's
//! "stack depth limit exceeded" (54001) instead of overflowing the backend's stack. Without a
//! registered check (plain `cargo test`) it does nothing.

use std::sync::OnceLock;

static CHECK: OnceLock<fn()> = OnceLock::new();

/// Registers the check; the first registration wins.
pub fn set_check(f: fn()) {
    let _ = CHECK.set(f);
}

/// Runs the registered check (it may raise and unwind).
#[inline]
pub fn check() {
    if let Some(f) = CHECK.get() {
        f();
    }
}
