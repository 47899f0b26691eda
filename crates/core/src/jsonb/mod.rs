//! JSON document operations: deep merge, RFC 7396 merge patch and diff, RFC 6902 JSON Patch.
//!
//! Numbers are compared by value (`1`, `1.0` and `1e0` are equal), as PostgreSQL's jsonb does,
//! whatever textual form serde_json keeps them in.

pub mod binary;
pub(crate) mod number;
mod patch;
mod pointer;
pub mod schema;

pub use number::numbers_equal;
pub use patch::{apply_patch, PatchError};
pub use pointer::{escape_token, parse_pointer, PointerError};

use serde_json::{Map, Value};

/// Equality of JSON values with numbers compared by value.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            crate::stack::check();
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            crate::stack::check();
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Deep merge: objects are merged key by key, recursively; for anything else `b` wins.
pub fn merge_deep(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut a), Value::Object(b)) => {
            crate::stack::check();
            for (k, bv) in b {
                let merged = match a.remove(&k) {
                    Some(av) => merge_deep(av, bv),
                    None => bv,
                };
                a.insert(k, merged);
            }
            Value::Object(a)
        }
        (_, b) => b,
    }
}

/// RFC 7396 merge patch: object members of `patch` are applied recursively, a null member
/// deletes the key, anything that is not an object replaces the target.
pub fn merge_patch(target: Value, patch: Value) -> Value {
    match patch {
        Value::Object(patch) => {
            crate::stack::check();
            let mut target = match target {
                Value::Object(t) => t,
                _ => Map::new(),
            };
            for (k, pv) in patch {
                if pv.is_null() {
                    target.remove(&k);
                } else {
                    let old = target.remove(&k).unwrap_or(Value::Null);
                    target.insert(k, merge_patch(old, pv));
                }
            }
            Value::Object(target)
        }
        other => other,
    }
}

/// An RFC 7396 merge patch `p` such that `merge_patch(a, p) == b`.
///
/// RFC 7396 cannot express setting an object member to JSON null (null means delete). Where `b`
/// holds a null member that `a` does not already hold, the returned patch carries that null, so
/// applying it deletes the member: the result is `b` without that null member. Nothing else is
/// lost: arrays (nulls inside them included) are replaced whole.
pub fn diff(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            crate::stack::check();
            let mut p = Map::new();
            for k in a.keys() {
                if !b.contains_key(k) {
                    p.insert(k.clone(), Value::Null);
                }
            }
            for (k, bv) in b {
                match a.get(k) {
                    Some(av) if json_eq(av, bv) => {}
                    Some(av) => {
                        p.insert(k.clone(), diff(av, bv));
                    }
                    None => {
                        p.insert(k.clone(), bv.clone());
                    }
                }
            }
            Value::Object(p)
        }
        (_, b) => b.clone(),
    }
}

/// `v` with object members whose value is null removed, recursively through objects (arrays are
/// kept as they are). This is what a merge patch round trip can reproduce of `v`.
pub fn strip_object_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object({
            crate::stack::check();
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_object_nulls(v)))
                .collect()
        }),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests;
