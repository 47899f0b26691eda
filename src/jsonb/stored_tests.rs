//! The functions on the stored form against their serde_json definitions in
//! `pg_storage_core::jsonb`, and the writer against PostgreSQL's own (byte for byte).

#[pgrx::pg_schema]
mod tests {
    use super::super::datum::{encode, value_to_jsonb, JsonbRef};
    use pg_storage_core::jsonb as ops;
    use pg_storage_core::jsonb::binary::{Item, Node};
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
        fn pointer(&mut self, doc: &Value) -> String {
            let mut p = String::new();
            let mut cur = doc;
            while !self.next().is_multiple_of(3) {
                let t = match cur {
                    Value::Object(m) if !m.is_empty() => {
                        let k = m.keys().nth((self.next() as usize) % m.len()).unwrap();
                        cur = &m[k];
                        k.clone()
                    }
                    Value::Array(a) if !a.is_empty() => {
                        let i = (self.next() as usize) % a.len();
                        cur = &a[i];
                        i.to_string()
                    }
                    _ => break,
                };
                p.push('/');
                p.push_str(&ops::escape_token(&t));
            }
            if self.next().is_multiple_of(4) {
                p.push_str(["/-", "/zz", "/0", "/01"][(self.next() % 4) as usize]);
            }
            p
        }
        /// A patch of 1–3 operations on `doc`, most of them applicable.
        fn patch(&mut self, doc: &Value) -> Value {
            let ops: Vec<Value> = (0..1 + self.next() % 3)
                .map(|_| {
                    let op = ["add", "remove", "replace", "move", "copy", "test"]
                        [(self.next() % 6) as usize];
                    let mut o = json!({"op": op, "path": self.pointer(doc)});
                    if matches!(op, "move" | "copy") {
                        o["from"] = json!(self.pointer(doc));
                    }
                    if matches!(op, "add" | "replace" | "test") {
                        o["value"] = self.value(2);
                    }
                    o
                })
                .collect();
            Value::Array(ops)
        }
    }

    fn arg(v: &Value) -> JsonbRef {
        unsafe {
            JsonbRef::from_polymorphic_datum(value_to_jsonb(v), false, pg_sys::JSONBOID).unwrap()
        }
    }

    fn back(d: pg_sys::Datum) -> Value {
        unsafe { JsonbRef::from_polymorphic_datum(d, false, pg_sys::JSONBOID) }
            .unwrap()
            .to_value()
    }

    fn call(f: fn(JsonbRef, JsonbRef) -> super::super::JsonbRaw, a: &Value, b: &Value) -> Value {
        back(f(arg(a), arg(b)).0)
    }

    /// The functions on the stored form give what the serde_json definitions give, on 2,000
    /// pairs of overlapping documents (scalars and arrays at the root too) and 2,000 patches
    /// (the failing ones checked to fail).
    #[pg_test]
    fn stored_form_operations_match_the_definitions() {
        use super::super::{jsonb_diff, jsonb_merge_deep, jsonb_merge_patch, jsonb_patch};
        let mut g = Gen(42);
        let mut failed = 0;
        for i in 0..2000 {
            let (a, b) = if i % 10 == 0 {
                (g.value(0), g.value(0))
            } else {
                (g.object(0), g.object(0))
            };
            for (name, f, want) in [
                (
                    "merge_deep",
                    jsonb_merge_deep as fn(_, _) -> _,
                    ops::merge_deep(a.clone(), b.clone()),
                ),
                (
                    "merge_patch",
                    jsonb_merge_patch,
                    ops::merge_patch(a.clone(), b.clone()),
                ),
                ("diff", jsonb_diff, ops::diff(&a, &b)),
            ] {
                let got = call(f, &a, &b);
                assert!(
                    ops::json_eq(&got, &want),
                    "{name}({a}, {b}) = {got}, want {want}"
                );
            }
            let p = g.patch(&a);
            match ops::apply_patch(&a, &p) {
                Ok(want) => {
                    let got = call(jsonb_patch, &a, &p);
                    assert!(
                        ops::json_eq(&got, &want),
                        "patch({a}, {p}) = {got}, want {want}"
                    );
                }
                Err(_) => {
                    failed += 1;
                    let (d, o) = (arg(&a), arg(&p));
                    let (d, o) = (d.root(), o.root());
                    assert!(
                        pg_storage_core::jsonb::binary::patch(
                            d.root_item(),
                            o.root_item(),
                            &super::super::datum::numeric_eq
                        )
                        .is_none(),
                        "patch({a}, {p}) applies on the stored form but not by definition"
                    );
                }
            }
        }
        assert!(
            (200..1800).contains(&failed),
            "{failed} of 2000 patches failed"
        );
    }

    fn expand_all(n: &mut Node) {
        n.expand();
        match n {
            Node::Object(pairs) => pairs.iter_mut().for_each(|(_, v)| expand_all(v)),
            Node::Array(elems) => elems.iter_mut().for_each(expand_all),
            Node::Item(_) => {}
        }
    }

    fn bytes(d: pg_sys::Datum) -> Vec<u8> {
        unsafe { JsonbRef::from_polymorphic_datum(d, false, pg_sys::JSONBOID) }
            .unwrap()
            .bytes()
            .to_vec()
    }

    /// Opened up to its last scalar and written again, a document is byte for byte what
    /// PostgreSQL writes (numerics, padding, offset strides of 32 members included).
    #[pg_test]
    fn the_writer_writes_what_postgres_writes() {
        let mut g = Gen(7);
        let wide = Value::Object(
            (0..100)
                .map(|i| (format!("key{i}"), json!([i, "x", 1.5, {"n": null}])))
                .collect(),
        );
        for v in std::iter::once(wide).chain((0..500).map(|_| g.value(0))) {
            let d = value_to_jsonb(&v);
            let r = arg(&v);
            let root = r.root();
            let mut n = Node::Item(root.root_item());
            expand_all(&mut n);
            assert_eq!(bytes(encode(&n)), bytes(d), "{v}");
            assert!(n.equals(root.root_item(), &|a, b| a == b));
            assert!(!matches!(n, Node::Item(Item::Container(_))));
        }
    }
}
