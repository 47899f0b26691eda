//! The one guarded crossing from PostgreSQL's C code back into Rust.
//!
//! A PostgreSQL ERROR is a longjmp; pgrx turns one raised inside a `pg_sys` call into a Rust
//! panic that unwinds to the nearest Rust boundary. When Rust code is itself called *from* C
//! (an expression-tree walker's callback, a cache or transaction callback), that unwind would
//! cross C frames, which Rust cannot do: the process aborts ("non-unwinding panic") and the
//! postmaster restarts every session. Every callback PostgreSQL calls therefore runs its body
//! through [`callback`]: an ERROR (or a panic) inside becomes a PostgreSQL ERROR raised at the
//! callback's own boundary, where C expects it, with its SQLSTATE and text.

use pgrx::pg_sys;
use std::ffi::c_void;

/// Runs the body of a callback that PostgreSQL's C code calls.
///
/// # Safety
/// Only at the top of a function called by C (an `extern "C-unwind"` callback).
pub(crate) unsafe fn callback<R>(body: impl FnOnce() -> R) -> R {
    // SAFETY: what `#[pg_guard]` wraps a function called by C in
    unsafe { pg_sys::submodules::panic::pgrx_extern_c_guard(body) }
}

/// Visits every node of a raw (parse-tree) expression, depth first: PostgreSQL's own walker,
/// which checks the stack depth at every level (`54001` past `max_stack_depth`), with the
/// callback guarded.
pub(crate) fn walk_raw(node: *mut pg_sys::Node, visit: &mut dyn FnMut(*mut pg_sys::Node)) {
    unsafe extern "C-unwind" fn step(node: *mut pg_sys::Node, cx: *mut c_void) -> bool {
        // SAFETY: called by raw_expression_tree_walker with the context given below
        unsafe {
            callback(|| {
                if node.is_null() {
                    return false;
                }
                let visit = &mut *(cx as *mut &mut dyn FnMut(*mut pg_sys::Node));
                visit(node);
                pg_sys::raw_expression_tree_walker_impl(node, Some(step), cx)
            })
        }
    }
    let mut visit = visit;
    // SAFETY: the context outlives the walk; `step` only casts it back
    unsafe {
        step(
            node,
            &mut visit as *mut &mut dyn FnMut(*mut pg_sys::Node) as *mut c_void,
        )
    };
}
