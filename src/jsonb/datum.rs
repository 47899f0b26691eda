//! jsonb arguments and results without the text round trip pgrx's `JsonB` takes (jsonb_out, then
//! serde_json parsing, and back through jsonb_in): we walk the binary container with PostgreSQL's
//! JsonbIterator and build results with pushJsonbValue. Numbers keep their exact digits.

use crate::error::raise;
use pg_storage_core::jsonb::binary::{self, Container, Node};
use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::pg_sys;
use pgrx::{FromDatum, IntoDatum, PgSqlErrorCode};
use serde_json::{Map, Number, Value};
use std::ffi::CStr;

/// A jsonb argument, detoasted, borrowed for the duration of the call.
pub struct JsonbRef {
    ptr: *mut pg_sys::Jsonb,
}

impl JsonbRef {
    /// The varlena's payload: the binary jsonb, suitable as a cache key for equal documents.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: ptr is a detoasted jsonb varlena that lives as long as the call.
        unsafe {
            let len = pgrx::varlena::varsize_any_exhdr(self.ptr.cast());
            let data = pgrx::varlena::vardata_any(self.ptr.cast());
            std::slice::from_raw_parts(data.cast::<u8>(), len)
        }
    }

    /// The root container, aligned: a value kept with a short header is first copied to a
    /// 4-byte-header one (a no-op otherwise). Lives as long as the call.
    pub fn container(&self) -> *mut pg_sys::JsonbContainer {
        // SAFETY: a valid jsonb datum, already neither compressed nor out of line (see
        // `from_polymorphic_datum`): only a short header needs the copy pg_detoast_datum makes.
        unsafe {
            let full = if pgrx::varlena::varatt_is_1b(self.ptr.cast()) {
                pg_sys::pg_detoast_datum(self.ptr.cast()).cast::<pg_sys::Jsonb>()
            } else {
                self.ptr
            };
            &raw mut (*full).root
        }
    }

    /// The root container's bytes (aligned, 4-byte header: see `container`).
    pub fn root(&self) -> Container<'_> {
        // SAFETY: `container` points just past the 4-byte header of a detoasted value whose
        // total size that header gives; both live as long as the call.
        unsafe {
            let c = self.container().cast::<u8>();
            let full = c.sub(binary::VARHDRSZ);
            let len = pgrx::varlena::varsize_4b(full.cast());
            Container::new(std::slice::from_raw_parts(c, len - binary::VARHDRSZ))
        }
    }

    /// The document as a serde_json value.
    pub fn to_value(&self) -> Value {
        // SAFETY: the iterator reads the container of a valid detoasted jsonb; a datum kept with
        // a short header is first copied to an aligned 4-byte-header one (a no-op otherwise).
        unsafe {
            let mut it = pg_sys::JsonbIteratorInit(self.container());
            let mut v = pg_sys::JsonbValue::default();
            let tok = pg_sys::JsonbIteratorNext(&mut it, &mut v, false);
            let value = read_container(&mut it, tok);
            if v.type_ == pg_sys::jbvType::jbvArray && v.val.array.rawScalar {
                match value {
                    Value::Array(mut a) if a.len() == 1 => a.pop().unwrap_or(Value::Null),
                    other => other,
                }
            } else {
                value
            }
        }
    }
}

unsafe fn scalar(v: &pg_sys::JsonbValue) -> Value {
    unsafe {
        match v.type_ {
            pg_sys::jbvType::jbvString => Value::String(jbv_str(v).to_owned()),
            pg_sys::jbvType::jbvBool => Value::Bool(v.val.boolean),
            pg_sys::jbvType::jbvNumeric => {
                let text = pgrx::direct_function_call::<&CStr>(
                    pg_sys::numeric_out,
                    &[Some(pg_sys::Datum::from(v.val.numeric))],
                );
                match text.and_then(|c| c.to_str().ok()) {
                    // numeric_out always writes ASCII digits, sign, point and exponent.
                    Some(s) => Value::Number(Number::from_string_unchecked(s.to_owned())),
                    None => raise(
                        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                        "numeric_out returned no text for a jsonb number",
                        None,
                        None,
                    ),
                }
            }
            _ => Value::Null,
        }
    }
}

unsafe fn jbv_str(v: &pg_sys::JsonbValue) -> &str {
    unsafe {
        let s = v.val.string;
        let bytes =
            std::slice::from_raw_parts(s.val.cast::<u8>(), usize::try_from(s.len).unwrap_or(0));
        // jsonb strings are in the database encoding; only UTF-8 maps onto Rust strings.
        match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => raise(
                PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
                "jsonb string is not valid UTF-8",
                Some(format!(
                    "invalid byte sequence at offset {}",
                    e.valid_up_to()
                )),
                Some("The JSONB functions of pg_storage_ext need a UTF8 database.".into()),
            ),
        }
    }
}

/// Reads the container that token `tok` (BEGIN_ARRAY/BEGIN_OBJECT) opened.
unsafe fn read_container(
    it: &mut *mut pg_sys::JsonbIterator,
    tok: pg_sys::JsonbIteratorToken::Type,
) -> Value {
    use pg_sys::JsonbIteratorToken::*;
    unsafe {
        pg_sys::check_stack_depth();
        let mut v = pg_sys::JsonbValue::default();
        if tok == WJB_BEGIN_OBJECT {
            let mut map = Map::new();
            let mut key = String::new();
            loop {
                match pg_sys::JsonbIteratorNext(it, &mut v, false) {
                    WJB_KEY => key = jbv_str(&v).to_owned(),
                    WJB_VALUE => {
                        map.insert(std::mem::take(&mut key), scalar(&v));
                    }
                    t @ (WJB_BEGIN_ARRAY | WJB_BEGIN_OBJECT) => {
                        let inner = read_container(it, t);
                        map.insert(std::mem::take(&mut key), inner);
                    }
                    _ => return Value::Object(map),
                }
            }
        } else {
            let mut arr = Vec::new();
            loop {
                match pg_sys::JsonbIteratorNext(it, &mut v, false) {
                    WJB_ELEM => arr.push(scalar(&v)),
                    t @ (WJB_BEGIN_ARRAY | WJB_BEGIN_OBJECT) => arr.push(read_container(it, t)),
                    _ => return Value::Array(arr),
                }
            }
        }
    }
}

/// Numeric equality by value (`1.0` = `1`) on two numerics stored in jsonb containers.
pub(crate) fn numeric_eq(a: &[u8], b: &[u8]) -> bool {
    // SAFETY: each slice is a whole numeric varlena as jsonb stores it (4-byte aligned).
    unsafe {
        pgrx::direct_function_call::<bool>(
            pg_sys::numeric_eq,
            &[
                Some(pg_sys::Datum::from(a.as_ptr())),
                Some(pg_sys::Datum::from(b.as_ptr())),
            ],
        )
    }
    .unwrap_or(false)
}

/// A jsonb datum written from a result built on the stored form (untouched containers copied
/// byte for byte), palloc'd at its exact size.
pub(crate) fn encode(node: &Node<'_>) -> pg_sys::Datum {
    let too_large = || -> ! {
        raise(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            "the jsonb result is too large",
            Some("A jsonb container holds at most 268435455 bytes of members and a value at most 1 GB.".into()),
            Some("Split the document, or change it in smaller parts.".into()),
        )
    };
    let len = match binary::encoded_len(node) {
        Ok(len) if len < 0x3FFF_FFFF => len,
        _ => too_large(),
    };
    // SAFETY: palloc raises on failure; the buffer is exactly `len` bytes and fully written by
    // `encode` but for the header word, set last.
    unsafe {
        let p = pg_sys::palloc(len).cast::<u8>();
        let out = std::slice::from_raw_parts_mut(p, len);
        if binary::encode(node, out).is_err() {
            too_large();
        }
        pgrx::set_varsize_4b(p.cast(), len as i32);
        pg_sys::Datum::from(p)
    }
}

/// Builds a jsonb datum from a serde_json value.
pub fn value_to_jsonb(value: &Value) -> pg_sys::Datum {
    // SAFETY: pushJsonbValue builds in the current memory context; every JsonbValue we pass points
    // at memory that outlives the call (palloc'd strings and numerics).
    unsafe {
        let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
        let res = match value {
            Value::Array(_) | Value::Object(_) => push(&mut state, value),
            scalar_value => {
                let mut open = pg_sys::JsonbValue {
                    type_: pg_sys::jbvType::jbvArray,
                    ..Default::default()
                };
                open.val.array.rawScalar = true;
                open.val.array.nElems = 1;
                pg_sys::pushJsonbValue(
                    &mut state,
                    pg_sys::JsonbIteratorToken::WJB_BEGIN_ARRAY,
                    &mut open,
                );
                let mut s = to_scalar(scalar_value);
                pg_sys::pushJsonbValue(&mut state, pg_sys::JsonbIteratorToken::WJB_ELEM, &mut s);
                pg_sys::pushJsonbValue(
                    &mut state,
                    pg_sys::JsonbIteratorToken::WJB_END_ARRAY,
                    std::ptr::null_mut(),
                )
            }
        };
        pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(res))
    }
}

unsafe fn to_scalar(v: &Value) -> pg_sys::JsonbValue {
    unsafe {
        let mut out = pg_sys::JsonbValue::default();
        match v {
            Value::Null => out.type_ = pg_sys::jbvType::jbvNull,
            Value::Bool(b) => {
                out.type_ = pg_sys::jbvType::jbvBool;
                out.val.boolean = *b;
            }
            Value::String(s) => set_string(&mut out, s),
            Value::Number(n) => {
                out.type_ = pg_sys::jbvType::jbvNumeric;
                // A JSON number has no NUL byte; numeric_in either returns a value or raises.
                let text = std::ffi::CString::new(n.as_str()).unwrap_or_default();
                let d = pgrx::direct_function_call_as_datum(
                    pg_sys::numeric_in,
                    &[
                        Some(pg_sys::Datum::from(text.as_ptr())),
                        Some(pg_sys::Datum::from(pg_sys::InvalidOid)),
                        Some(pg_sys::Datum::from(-1i32)),
                    ],
                );
                match d {
                    Some(d) => out.val.numeric = d.cast_mut_ptr(),
                    None => raise(
                        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                        format!("numeric_in returned NULL for {n}"),
                        None,
                        None,
                    ),
                }
            }
            Value::Array(_) | Value::Object(_) => out.type_ = pg_sys::jbvType::jbvNull,
        }
        out
    }
}

unsafe fn set_string(out: &mut pg_sys::JsonbValue, s: &str) {
    unsafe {
        out.type_ = pg_sys::jbvType::jbvString;
        let p = pg_sys::palloc(s.len().max(1)).cast::<u8>();
        std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
        out.val.string.val = p.cast();
        out.val.string.len = i32::try_from(s.len()).unwrap_or(i32::MAX);
    }
}

unsafe fn push(state: &mut *mut pg_sys::JsonbParseState, v: &Value) -> *mut pg_sys::JsonbValue {
    use pg_sys::JsonbIteratorToken::*;
    unsafe {
        pg_sys::check_stack_depth();
        match v {
            Value::Object(m) => {
                pg_sys::pushJsonbValue(state, WJB_BEGIN_OBJECT, std::ptr::null_mut());
                for (k, val) in m {
                    let mut key = pg_sys::JsonbValue::default();
                    set_string(&mut key, k);
                    pg_sys::pushJsonbValue(state, WJB_KEY, &mut key);
                    push_member(state, val, WJB_VALUE);
                }
                pg_sys::pushJsonbValue(state, WJB_END_OBJECT, std::ptr::null_mut())
            }
            Value::Array(a) => {
                pg_sys::pushJsonbValue(state, WJB_BEGIN_ARRAY, std::ptr::null_mut());
                for val in a {
                    push_member(state, val, WJB_ELEM);
                }
                pg_sys::pushJsonbValue(state, WJB_END_ARRAY, std::ptr::null_mut())
            }
            _ => std::ptr::null_mut(),
        }
    }
}

/// Pushes an object member's value or an array element: containers recursively, scalars with
/// `token` (WJB_VALUE or WJB_ELEM).
unsafe fn push_member(
    state: &mut *mut pg_sys::JsonbParseState,
    val: &Value,
    token: pg_sys::JsonbIteratorToken::Type,
) {
    unsafe {
        if val.is_object() || val.is_array() {
            push(state, val);
        } else {
            let mut sv = to_scalar(val);
            pg_sys::pushJsonbValue(state, token, &mut sv);
        }
    }
}

/// A jsonb result already built as a datum.
pub struct JsonbRaw(pub pg_sys::Datum);

impl IntoDatum for JsonbRaw {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

unsafe impl BoxRet for JsonbRaw {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

impl FromDatum for JsonbRef {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            None
        } else {
            // SAFETY: a non-null jsonb datum. Only a compressed or out-of-line value is copied
            // (into the call's memory context); a short-header value is used where it lies,
            // which is all `bytes()` needs.
            let ptr = unsafe { pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr()) };
            Some(JsonbRef { ptr: ptr.cast() })
        }
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for JsonbRef {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        match unsafe { arg.unbox_arg_using_from_datum() } {
            Some(v) => v,
            None => raise(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                format!("jsonb argument {} must not be null", index + 1),
                None,
                None,
            ),
        }
    }
}

pgrx::impl_sql_translatable!(JsonbRef, "jsonb");
pgrx::impl_sql_translatable!(JsonbRaw, "jsonb");
