//! Deep merge, merge patch and diff on the binary jsonb, as core's `||` works: members are read in
//! place (PostgreSQL's JsonbIterator, one level at a time, nested containers as binary values),
//! looked up by binary search (getKeyJsonValueFromContainer), and the result is built with
//! pushJsonbValue; an untouched member (a whole nested container included) is copied as it is
//! stored, never turned into a serde_json value. Same results as the serde_json definitions in
//! `pg_storage_core::jsonb` (the pg_test below compares them).

use super::datum::{member, same, JsonbRef};
use pg_sys::JsonbIteratorToken::*;
use pgrx::pg_sys;

type State = *mut pg_sys::JsonbParseState;

fn is_object(c: *mut pg_sys::JsonbContainer) -> bool {
    // SAFETY: a valid container header
    unsafe { (*c).header & pg_sys::JB_FOBJECT != 0 }
}

/// The object container a member value holds, if it holds one.
fn object_of(v: &pg_sys::JsonbValue) -> Option<*mut pg_sys::JsonbContainer> {
    // SAFETY: the binary field is read only for a binary value
    unsafe {
        (v.type_ == pg_sys::jbvType::jbvBinary && is_object(v.val.binary.data))
            .then_some(v.val.binary.data)
    }
}

fn key_bytes(k: &pg_sys::JsonbValue) -> &[u8] {
    // SAFETY: a key is a string value pointing into its container
    unsafe {
        std::slice::from_raw_parts(
            k.val.string.val.cast::<u8>(),
            k.val.string.len.max(0) as usize,
        )
    }
}

/// The members of an object container, top level only (nested containers as binary values).
fn pairs(c: *mut pg_sys::JsonbContainer) -> Vec<(pg_sys::JsonbValue, pg_sys::JsonbValue)> {
    let mut out = Vec::new();
    // SAFETY: iterates a valid container; the values point into it
    unsafe {
        let mut it = pg_sys::JsonbIteratorInit(c);
        let mut k = pg_sys::JsonbValue::default();
        let mut v = pg_sys::JsonbValue::default();
        loop {
            match pg_sys::JsonbIteratorNext(&mut it, &mut k, true) {
                WJB_KEY => {
                    if pg_sys::JsonbIteratorNext(&mut it, &mut v, true) != WJB_VALUE {
                        crate::error::internal("a jsonb key without a value");
                    }
                    out.push((k, v));
                }
                WJB_DONE => break,
                _ => {}
            }
        }
    }
    out
}

fn push(state: &mut State, token: pg_sys::JsonbIteratorToken::Type, v: &pg_sys::JsonbValue) {
    let mut v = *v;
    // SAFETY: pushJsonbValue copies what it keeps; a binary value is unpacked member by member
    unsafe { pg_sys::pushJsonbValue(state, token, &mut v) };
}

fn open(state: &mut State) {
    // SAFETY: opens an object in the parse state
    unsafe { pg_sys::pushJsonbValue(state, WJB_BEGIN_OBJECT, std::ptr::null_mut()) };
}

fn close(state: &mut State) -> *mut pg_sys::JsonbValue {
    // SAFETY: closes the object opened last
    unsafe { pg_sys::pushJsonbValue(state, WJB_END_OBJECT, std::ptr::null_mut()) }
}

fn finish(v: *mut pg_sys::JsonbValue) -> pg_sys::Datum {
    // SAFETY: a complete value built by pushJsonbValue
    unsafe { pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(v)) }
}

fn null() -> pg_sys::JsonbValue {
    pg_sys::JsonbValue {
        type_: pg_sys::jbvType::jbvNull,
        ..Default::default()
    }
}

fn merge_deep_into(
    state: &mut State,
    a: *mut pg_sys::JsonbContainer,
    b: *mut pg_sys::JsonbContainer,
) -> *mut pg_sys::JsonbValue {
    // SAFETY: raises 54001 past the stack limit instead of overflowing
    unsafe { pg_sys::check_stack_depth() };
    open(state);
    for (k, av) in pairs(a) {
        push(state, WJB_KEY, &k);
        match member(b, key_bytes(&k)) {
            None => push(state, WJB_VALUE, &av),
            Some(bv) => match (object_of(&av), object_of(&bv)) {
                (Some(ao), Some(bo)) => {
                    merge_deep_into(state, ao, bo);
                }
                _ => push(state, WJB_VALUE, &bv),
            },
        }
    }
    for (k, bv) in pairs(b) {
        if member(a, key_bytes(&k)).is_none() {
            push(state, WJB_KEY, &k);
            push(state, WJB_VALUE, &bv);
        }
    }
    close(state)
}

/// Objects merged key by key, recursively; for anything else `b` wins.
pub(crate) fn merge_deep(a: &JsonbRef, b: &JsonbRef) -> pg_sys::Datum {
    let (ac, bc) = (a.container(), b.container());
    if !(is_object(ac) && is_object(bc)) {
        return pg_sys::Datum::from(b.as_ptr());
    }
    let mut state: State = std::ptr::null_mut();
    finish(merge_deep_into(&mut state, ac, bc))
}

/// RFC 7396: the patch's members applied to `target` (None: no object to start from).
fn merge_patch_into(
    state: &mut State,
    target: Option<*mut pg_sys::JsonbContainer>,
    patch: *mut pg_sys::JsonbContainer,
) -> *mut pg_sys::JsonbValue {
    // SAFETY: raises 54001 past the stack limit instead of overflowing
    unsafe { pg_sys::check_stack_depth() };
    open(state);
    if let Some(t) = target {
        for (k, tv) in pairs(t) {
            match member(patch, key_bytes(&k)) {
                None => {
                    push(state, WJB_KEY, &k);
                    push(state, WJB_VALUE, &tv);
                }
                Some(pv) if pv.type_ == pg_sys::jbvType::jbvNull => {}
                Some(pv) => {
                    push(state, WJB_KEY, &k);
                    match object_of(&pv) {
                        Some(po) => {
                            merge_patch_into(state, object_of(&tv), po);
                        }
                        None => push(state, WJB_VALUE, &pv),
                    }
                }
            }
        }
    }
    for (k, pv) in pairs(patch) {
        if target.is_some_and(|t| member(t, key_bytes(&k)).is_some())
            || pv.type_ == pg_sys::jbvType::jbvNull
        {
            continue;
        }
        push(state, WJB_KEY, &k);
        match object_of(&pv) {
            Some(po) => {
                merge_patch_into(state, None, po);
            }
            None => push(state, WJB_VALUE, &pv),
        }
    }
    close(state)
}

/// RFC 7396 merge patch.
pub(crate) fn merge_patch(target: &JsonbRef, patch: &JsonbRef) -> pg_sys::Datum {
    let (tc, pc) = (target.container(), patch.container());
    if !is_object(pc) {
        return pg_sys::Datum::from(patch.as_ptr());
    }
    let mut state: State = std::ptr::null_mut();
    finish(merge_patch_into(
        &mut state,
        is_object(tc).then_some(tc),
        pc,
    ))
}

fn diff_into(
    state: &mut State,
    a: *mut pg_sys::JsonbContainer,
    b: *mut pg_sys::JsonbContainer,
) -> *mut pg_sys::JsonbValue {
    // SAFETY: raises 54001 past the stack limit instead of overflowing
    unsafe { pg_sys::check_stack_depth() };
    open(state);
    for (k, _) in pairs(a) {
        if member(b, key_bytes(&k)).is_none() {
            push(state, WJB_KEY, &k);
            push(state, WJB_VALUE, &null());
        }
    }
    for (k, bv) in pairs(b) {
        match member(a, key_bytes(&k)) {
            Some(av) if same(&av, &bv) => {}
            Some(av) => {
                push(state, WJB_KEY, &k);
                match (object_of(&av), object_of(&bv)) {
                    (Some(ao), Some(bo)) => {
                        diff_into(state, ao, bo);
                    }
                    _ => push(state, WJB_VALUE, &bv),
                }
            }
            None => {
                push(state, WJB_KEY, &k);
                push(state, WJB_VALUE, &bv);
            }
        }
    }
    close(state)
}

/// A merge patch p with merge_patch(a, p) = b.
pub(crate) fn diff(a: &JsonbRef, b: &JsonbRef) -> pg_sys::Datum {
    let (ac, bc) = (a.container(), b.container());
    if !(is_object(ac) && is_object(bc)) {
        return pg_sys::Datum::from(b.as_ptr());
    }
    let mut state: State = std::ptr::null_mut();
    finish(diff_into(&mut state, ac, bc))
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::super::datum::{value_to_jsonb, JsonbRef};
    use pg_storage_core::jsonb as ops;
    use pgrx::prelude::*;
    use serde_json::{json, Map, Value};

    /// A deterministic generator of documents whose keys overlap (a few names, a few levels).
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn value(&mut self, depth: u32) -> Value {
            match self.next() % if depth > 3 { 5 } else { 8 } {
                0 => Value::Null,
                1 => json!(self.next().is_multiple_of(2)),
                2 => json!(self.next() % 7),
                3 => serde_json::from_str(
                    ["1.0", "1e0", "-0.5", "123456789012345678901234567890"]
                        [(self.next() % 4) as usize],
                )
                .unwrap(),
                4 => json!(["a", "é", "", "k1"][(self.next() % 4) as usize]),
                5 => Value::Array(
                    (0..self.next() % 3)
                        .map(|_| self.value(depth + 1))
                        .collect(),
                ),
                _ => self.object(depth + 1),
            }
        }
        fn object(&mut self, depth: u32) -> Value {
            let mut m = Map::new();
            for _ in 0..self.next() % 5 {
                let k = ["a", "b", "c", "dd", "é"][(self.next() % 5) as usize];
                m.insert(k.to_owned(), self.value(depth));
            }
            Value::Object(m)
        }
    }

    fn run(f: fn(&JsonbRef, &JsonbRef) -> pg_sys::Datum, a: &Value, b: &Value) -> Value {
        let arg = |v: &Value| unsafe {
            JsonbRef::from_polymorphic_datum(value_to_jsonb(v), false, pg_sys::JSONBOID).unwrap()
        };
        let out = f(&arg(a), &arg(b));
        unsafe { JsonbRef::from_polymorphic_datum(out, false, pg_sys::JSONBOID) }
            .unwrap()
            .to_value()
    }

    /// The binary operations give what the serde_json definitions give, on 2,000 pairs of
    /// overlapping documents (scalars and arrays at the root too).
    #[pg_test]
    fn binary_operations_match_the_definitions() {
        let mut g = Gen(42);
        for i in 0..2000 {
            let (a, b) = if i % 10 == 0 {
                (g.value(0), g.value(0))
            } else {
                (g.object(0), g.object(0))
            };
            let want = ops::merge_deep(a.clone(), b.clone());
            let got = run(super::merge_deep, &a, &b);
            assert!(
                ops::json_eq(&got, &want),
                "merge_deep({a}, {b}) = {got}, want {want}"
            );
            let want = ops::merge_patch(a.clone(), b.clone());
            let got = run(super::merge_patch, &a, &b);
            assert!(
                ops::json_eq(&got, &want),
                "merge_patch({a}, {b}) = {got}, want {want}"
            );
            let want = ops::diff(&a, &b);
            let got = run(super::diff, &a, &b);
            assert!(
                ops::json_eq(&got, &want),
                "diff({a}, {b}) = {got}, want {want}"
            );
        }
    }
}
