//! RFC 6902 JSON Patch. The patch is applied to a copy: on any error the caller keeps the
//! original document untouched.

use super::json_eq;
use super::pointer::parse_pointer;
use serde_json::Value;
use std::fmt;

/// A patch operation that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    /// Zero-based index of the operation in the patch array (None: the patch itself is malformed).
    pub index: Option<usize>,
    /// The pointer involved (`path`, or `from` for move/copy sources), when there is one.
    pub pointer: Option<String>,
    pub message: String,
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.index {
            write!(f, "operation {i}")?;
            if let Some(p) = &self.pointer {
                write!(f, " at \"{p}\"")?;
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)
    }
}

fn err(index: usize, pointer: Option<&str>, message: impl Into<String>) -> PatchError {
    PatchError {
        index: Some(index),
        pointer: pointer.map(str::to_string),
        message: message.into(),
    }
}

/// Applies an RFC 6902 patch (a JSON array of operations) to `doc`.
pub fn apply_patch(doc: &Value, operations: &Value) -> Result<Value, PatchError> {
    let ops = operations.as_array().ok_or_else(|| PatchError {
        index: None,
        pointer: None,
        message: "a JSON Patch must be an array of operation objects".into(),
    })?;
    let mut doc = doc.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_one(&mut doc, i, op)?;
    }
    Ok(doc)
}

fn str_member<'a>(i: usize, op: &'a Value, name: &str) -> Result<&'a str, PatchError> {
    match op.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(err(i, None, format!("member \"{name}\" must be a string"))),
        None => Err(err(i, None, format!("member \"{name}\" is missing"))),
    }
}

fn tokens(i: usize, pointer: &str) -> Result<Vec<String>, PatchError> {
    parse_pointer(pointer).map_err(|e| err(i, Some(pointer), e.to_string()))
}

fn apply_one(doc: &mut Value, i: usize, op: &Value) -> Result<(), PatchError> {
    if !op.is_object() {
        return Err(err(i, None, "an operation must be an object"));
    }
    let name = str_member(i, op, "op")?;
    let path = str_member(i, op, "path")?;
    let path_t = tokens(i, path)?;
    let value = || {
        op.get("value").cloned().ok_or_else(|| {
            err(
                i,
                Some(path),
                format!("\"{name}\" needs a \"value\" member"),
            )
        })
    };
    match name {
        "add" => add(doc, &path_t, value()?).map_err(|m| err(i, Some(path), m)),
        "remove" => remove(doc, &path_t)
            .map(drop)
            .map_err(|m| err(i, Some(path), m)),
        "replace" => {
            let v = value()?;
            let slot = get_mut(doc, &path_t).map_err(|m| err(i, Some(path), m))?;
            *slot = v;
            Ok(())
        }
        "move" => {
            let from = str_member(i, op, "from")?;
            let from_t = tokens(i, from)?;
            if from_t.len() < path_t.len() && path_t[..from_t.len()] == from_t[..] {
                return Err(err(
                    i,
                    Some(from),
                    "cannot move a value into one of its own children",
                ));
            }
            let v = remove(doc, &from_t).map_err(|m| err(i, Some(from), m))?;
            add(doc, &path_t, v).map_err(|m| err(i, Some(path), m))
        }
        "copy" => {
            let from = str_member(i, op, "from")?;
            let from_t = tokens(i, from)?;
            let v = get(doc, &from_t)
                .map_err(|m| err(i, Some(from), m))?
                .clone();
            add(doc, &path_t, v).map_err(|m| err(i, Some(path), m))
        }
        "test" => {
            let expected = value()?;
            let actual = get(doc, &path_t).map_err(|m| err(i, Some(path), m))?;
            if json_eq(actual, &expected) {
                Ok(())
            } else {
                Err(err(
                    i,
                    Some(path),
                    format!("test failed: value is {actual}, expected {expected}"),
                ))
            }
        }
        other => Err(err(
            i,
            Some(path),
            format!(
                "unknown operation \"{other}\" (expected add, remove, replace, move, copy or test)"
            ),
        )),
    }
}

/// Index into an array for reading or replacing: digits only, no leading zero, in bounds.
pub(super) fn array_index(token: &str, len: usize) -> Result<usize, String> {
    index_within(token, len, false)
}

/// Index into an array of length `len` for an insertion (`add`): at most `len`, the end.
pub(super) fn insert_index(token: &str, len: usize) -> Result<usize, String> {
    index_within(token, len, true)
}

fn index_within(token: &str, len: usize, inserting: bool) -> Result<usize, String> {
    let valid = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    if !valid {
        return Err(format!("\"{token}\" is not an array index"));
    }
    match token.parse::<usize>() {
        Ok(n) if n < len || (inserting && n == len) => Ok(n),
        _ if inserting => Err(format!(
            "array index {token} is out of bounds for an insertion (length {len}: at most {len}, or \"-\")"
        )),
        _ => Err(format!(
            "array index {token} is out of bounds (length {len})"
        )),
    }
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Result<&'a Value, String> {
    let mut cur = doc;
    for t in path {
        cur = match cur {
            Value::Object(m) => m
                .get(t)
                .ok_or_else(|| format!("member \"{t}\" does not exist"))?,
            Value::Array(a) => &a[array_index(t, a.len())?],
            _ => return Err(format!("cannot descend into a scalar with \"{t}\"")),
        };
    }
    Ok(cur)
}

fn get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in path {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(t)
                .ok_or_else(|| format!("member \"{t}\" does not exist"))?,
            Value::Array(a) => {
                let n = array_index(t, a.len())?;
                &mut a[n]
            }
            _ => return Err(format!("cannot descend into a scalar with \"{t}\"")),
        };
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &[String], v: Value) -> Result<(), String> {
    let Some((last, parent)) = path.split_last() else {
        *doc = v;
        return Ok(());
    };
    match get_mut(doc, parent)? {
        Value::Object(m) => {
            m.insert(last.clone(), v);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(v);
            } else {
                let n = insert_index(last, a.len())?;
                a.insert(n, v);
            }
            Ok(())
        }
        _ => Err("the parent of the target is not an object or array".into()),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let Some((last, parent)) = path.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    match get_mut(doc, parent)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| format!("member \"{last}\" does not exist")),
        Value::Array(a) => {
            let n = array_index(last, a.len())?;
            Ok(a.remove(n))
        }
        _ => Err("the parent of the target is not an object or array".into()),
    }
}
