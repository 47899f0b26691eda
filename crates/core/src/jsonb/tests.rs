use super::*;
use proptest::prelude::*;
use serde_json::json;

fn j(s: &str) -> Value {
    serde_json::from_str(s).expect("test JSON")
}

/// RFC 7396 appendix A: target, patch, result.
const RFC7396: &[(&str, &str, &str)] = &[
    (r#"{"a":"b"}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
    (r#"{"a":"b"}"#, r#"{"b":"c"}"#, r#"{"a":"b","b":"c"}"#),
    (r#"{"a":"b"}"#, r#"{"a":null}"#, r#"{}"#),
    (r#"{"a":"b","b":"c"}"#, r#"{"a":null}"#, r#"{"b":"c"}"#),
    (r#"{"a":["b"]}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
    (r#"{"a":"c"}"#, r#"{"a":["b"]}"#, r#"{"a":["b"]}"#),
    (
        r#"{"a":{"b":"c"}}"#,
        r#"{"a":{"b":"d","c":null}}"#,
        r#"{"a":{"b":"d"}}"#,
    ),
    (r#"{"a":[{"b":"c"}]}"#, r#"{"a":[1]}"#, r#"{"a":[1]}"#),
    (r#"["a","b"]"#, r#"["c","d"]"#, r#"["c","d"]"#),
    (r#"{"a":"b"}"#, r#"["c"]"#, r#"["c"]"#),
    (r#"{"a":"foo"}"#, r#"null"#, r#"null"#),
    (r#"{"a":"foo"}"#, r#""bar""#, r#""bar""#),
    (r#"{"e":null}"#, r#"{"a":1}"#, r#"{"e":null,"a":1}"#),
    (r#"[1,2]"#, r#"{"a":"b","c":null}"#, r#"{"a":"b"}"#),
    (
        r#"{}"#,
        r#"{"a":{"bb":{"ccc":null}}}"#,
        r#"{"a":{"bb":{}}}"#,
    ),
];

#[test]
fn merge_patch_rfc7396_appendix() {
    for (t, p, r) in RFC7396 {
        assert_eq!(merge_patch(j(t), j(p)), j(r), "target {t} patch {p}");
    }
}

#[test]
fn merge_deep_examples() {
    assert_eq!(
        merge_deep(
            j(r#"{"a":{"x":1,"y":2},"b":1}"#),
            j(r#"{"a":{"y":3,"z":4},"c":null}"#)
        ),
        j(r#"{"a":{"x":1,"y":3,"z":4},"b":1,"c":null}"#)
    );
    assert_eq!(
        merge_deep(j(r#"{"a":[1,2]}"#), j(r#"{"a":[3]}"#)),
        j(r#"{"a":[3]}"#)
    );
    assert_eq!(merge_deep(j(r#"{"a":1}"#), j("[1]")), j("[1]"));
    assert_eq!(merge_deep(j("1"), j(r#"{"a":1}"#)), j(r#"{"a":1}"#));
}

#[test]
fn diff_examples() {
    assert_eq!(
        diff(&j(r#"{"a":1,"b":2}"#), &j(r#"{"a":1,"b":3,"c":4}"#)),
        j(r#"{"b":3,"c":4}"#)
    );
    assert_eq!(
        diff(&j(r#"{"a":1,"b":2}"#), &j(r#"{"a":1}"#)),
        j(r#"{"b":null}"#)
    );
    assert_eq!(
        diff(&j(r#"{"a":{"x":1,"y":2}}"#), &j(r#"{"a":{"x":1}}"#)),
        j(r#"{"a":{"y":null}}"#)
    );
    assert_eq!(diff(&j(r#"{"a":1.0}"#), &j(r#"{"a":1}"#)), j("{}"));
    assert_eq!(diff(&j("[1]"), &j("[1,2]")), j("[1,2]"));
    // The one case RFC 7396 cannot express: b sets a member to null. The patch deletes it.
    let a = j(r#"{"a":1}"#);
    let b = j(r#"{"a":null}"#);
    assert_eq!(diff(&a, &b), j(r#"{"a":null}"#));
    assert_eq!(merge_patch(a, diff(&j(r#"{"a":1}"#), &b)), j("{}"));
}

/// RFC 6902 appendix A, in order: document, patch, expected result or None for an error.
fn rfc6902() -> Vec<(Value, Value, Option<Value>)> {
    vec![
        (
            json!({"foo":"bar"}),
            json!([{"op":"add","path":"/baz","value":"qux"}]),
            Some(json!({"baz":"qux","foo":"bar"})),
        ),
        (
            json!({"foo":["bar","baz"]}),
            json!([{"op":"add","path":"/foo/1","value":"qux"}]),
            Some(json!({"foo":["bar","qux","baz"]})),
        ),
        (
            json!({"baz":"qux","foo":"bar"}),
            json!([{"op":"remove","path":"/baz"}]),
            Some(json!({"foo":"bar"})),
        ),
        (
            json!({"foo":["bar","qux","baz"]}),
            json!([{"op":"remove","path":"/foo/1"}]),
            Some(json!({"foo":["bar","baz"]})),
        ),
        (
            json!({"baz":"qux","foo":"bar"}),
            json!([{"op":"replace","path":"/baz","value":"boo"}]),
            Some(json!({"baz":"boo","foo":"bar"})),
        ),
        (
            json!({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}),
            json!([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]),
            Some(json!({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}})),
        ),
        (
            json!({"foo":["all","grass","cows","eat"]}),
            json!([{"op":"move","from":"/foo/1","path":"/foo/3"}]),
            Some(json!({"foo":["all","cows","eat","grass"]})),
        ),
        (
            json!({"baz":"qux","foo":["a",2,"c"]}),
            json!([{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]),
            Some(json!({"baz":"qux","foo":["a",2,"c"]})),
        ),
        (
            json!({"baz":"qux"}),
            json!([{"op":"test","path":"/baz","value":"bar"}]),
            None,
        ),
        (
            json!({"foo":"bar"}),
            json!([{"op":"add","path":"/child","value":{"grandchild":{}}}]),
            Some(json!({"foo":"bar","child":{"grandchild":{}}})),
        ),
        (
            json!({"foo":"bar"}),
            json!([{"op":"add","path":"/baz/bat","value":"qux"}]),
            None,
        ),
        (
            json!({"/":9,"~1":10}),
            json!([{"op":"test","path":"/~01","value":10}]),
            Some(json!({"/":9,"~1":10})),
        ),
        (
            json!({"/":9,"~1":10}),
            json!([{"op":"test","path":"/~01","value":"10"}]),
            None,
        ),
        (
            json!({"foo":["bar"]}),
            json!([{"op":"add","path":"/foo/-","value":["abc","def"]}]),
            Some(json!({"foo":["bar",["abc","def"]]})),
        ),
    ]
}

#[test]
fn patch_rfc6902_appendix() {
    for (doc, patch, want) in rfc6902() {
        let got = apply_patch(&doc, &patch);
        match want {
            Some(w) => assert_eq!(got, Ok(w), "patch {patch}"),
            None => assert!(got.is_err(), "patch {patch} should fail, got {got:?}"),
        }
    }
}

#[test]
fn patch_errors_name_index_and_pointer() {
    let doc = json!({"a":[1,2]});
    let e = apply_patch(
        &doc,
        &json!([{"op":"add","path":"/b","value":1},{"op":"remove","path":"/a/5"}]),
    )
    .expect_err("out of bounds");
    assert_eq!(e.index, Some(1));
    assert_eq!(e.pointer.as_deref(), Some("/a/5"));
    let e = apply_patch(&doc, &json!([{"op":"replace","path":"a","value":1}]))
        .expect_err("bad pointer");
    assert_eq!((e.index, e.pointer.as_deref()), (Some(0), Some("a")));
    let e = apply_patch(&doc, &json!([{"op":"frob","path":"/a"}])).expect_err("bad op");
    assert!(e.message.contains("unknown operation"));
    let e = apply_patch(&doc, &json!([{"op":"move","from":"/a","path":"/a/0"}]))
        .expect_err("into child");
    assert_eq!(e.pointer.as_deref(), Some("/a"));
    assert!(apply_patch(&doc, &json!({"op":"add"})).is_err());
    assert!(apply_patch(&doc, &json!([{"op":"add","path":"/a/01","value":0}])).is_err());
    assert_eq!(
        apply_patch(&doc, &json!([{"op":"add","path":"/a/2","value":3}])),
        Ok(json!({"a":[1,2,3]}))
    );
    assert_eq!(
        apply_patch(&doc, &json!([{"op":"replace","path":"","value":7}])),
        Ok(json!(7))
    );
    assert_eq!(
        apply_patch(&doc, &json!([{"op":"test","path":"/a/0","value":1.0}])),
        Ok(doc.clone())
    );
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1000i64..1000).prop_map(|n| json!(n)),
        "[a-c~/ é]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]{1,2}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn diff_round_trips(a in arb_json(), b in arb_json()) {
        let p = diff(&a, &b);
        let got = merge_patch(a.clone(), p);
        // Exact unless b needs an object member set to null (RFC 7396 cannot say that).
        prop_assert!(json_eq(&strip_object_nulls(&got), &strip_object_nulls(&b)));
        if strip_object_nulls(&b) == b {
            prop_assert!(json_eq(&got, &b), "a={} b={} got={}", a, b, got);
        }
    }

    #[test]
    fn merge_deep_is_idempotent(a in arb_json(), b in arb_json()) {
        let once = merge_deep(a, b.clone());
        prop_assert_eq!(merge_deep(once.clone(), b), once);
    }

    #[test]
    fn patch_never_half_applies(a in arb_json()) {
        let ops = json!([{"op":"add","path":"/zz","value":1},{"op":"test","path":"/zz","value":2}]);
        let before = a.clone();
        prop_assert!(apply_patch(&a, &ops).is_err());
        prop_assert_eq!(a, before);
    }
}

#[test]
fn add_past_the_end_names_the_arrays_own_length() {
    let doc = json!({"a":[1]});
    let e = apply_patch(
        &doc,
        &json!([{"op":"add","path":"/a/99999999999999999999","value":1}]),
    )
    .expect_err("out of bounds");
    assert!(e.message.contains("(length 1: at most 1"), "{}", e.message);
    let e = apply_patch(&doc, &json!([{"op":"add","path":"/a/2","value":1}]))
        .expect_err("out of bounds");
    assert!(e.message.contains("length 1"), "{}", e.message);
    assert_eq!(
        apply_patch(&doc, &json!([{"op":"add","path":"/a/1","value":2}])).unwrap(),
        json!({"a":[1,2]})
    );
}
