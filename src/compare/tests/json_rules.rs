//! JSON kinds and rules: value/type/missing/extra/size/order, numbers, unordered, keyed,
//! ignore, subset.

use serde_json::json;

use super::{captured, dj, kinds, rules};
use crate::compare::{CompareRules, Kind, diff};

#[test]
fn each_json_kind_at_its_pointer() {
    let a = json!({"v": 1, "t": "1", "m": true, "arr": [1, 2], "o": [1, 2, 3], "n": {"x": null}});
    let b = json!({"v": 2, "t": 1, "e": false, "arr": [1, 2, 3], "o": [3, 1, 2], "n": {"x": {}}});
    let d = dj(a, b, &CompareRules::default());
    assert_eq!(
        kinds(&d),
        [
            (Kind::Size, "/arr"),
            (Kind::Missing, "/m"),
            (Kind::Type, "/n/x"),
            (Kind::Order, "/o"),
            (Kind::Type, "/t"),
            (Kind::Value, "/v"),
            (Kind::Extra, "/e"),
        ]
    );
    let by_path = |p: &str| d.differences.iter().find(|x| x.path == p).unwrap();
    assert_eq!(by_path("/arr").primary.as_deref(), Some("2 items"));
    assert_eq!(by_path("/arr").shadow.as_deref(), Some("3 items"));
    assert_eq!(by_path("/m").primary.as_deref(), Some("true"));
    assert_eq!(by_path("/m").shadow, None);
    assert_eq!(by_path("/e").primary, None);
    assert_eq!(by_path("/t").primary.as_deref(), Some("\"1\""));
    assert_eq!(by_path("/o").shadow.as_deref(), Some("[3,1,2]"));
}

#[test]
fn root_differences_use_the_empty_pointer() {
    let d = dj(json!({}), json!([]), &CompareRules::default());
    assert_eq!(kinds(&d), [(Kind::Type, "")]);
}

#[test]
fn pointers_escape_and_patterns_collapse_indices() {
    let a = json!({"a/b": {"c~d": [{"p": 1}, {"p": 2}]}});
    let b = json!({"a/b": {"c~d": [{"p": 1}, {"p": 3}]}});
    let d = dj(a.clone(), b, &CompareRules::default());
    assert_eq!(d.differences[0].path, "/a~1b/c~0d/1/p");
    assert_eq!(d.differences[0].pattern, "/a~1b/c~0d/*/p");
    assert!(a.pointer(&d.differences[0].path).is_some());
}

#[test]
fn size_still_compares_the_common_prefix() {
    let d = dj(json!([1, 2, 3]), json!([1, 5]), &CompareRules::default());
    assert_eq!(kinds(&d), [(Kind::Size, ""), (Kind::Value, "/1")]);
}

#[test]
fn numbers_by_value_exactly_and_with_tolerance() {
    let r = CompareRules::default();
    assert!(dj(json!({"a": 1, "b": [2.0]}), json!({"a": 1.0, "b": [2]}), &r).is_empty());
    let big_a: serde_json::Value = serde_json::from_str("[18446744073709551615]").unwrap();
    let big_b: serde_json::Value = serde_json::from_str("[18446744073709551614]").unwrap();
    assert_eq!(kinds(&dj(big_a, big_b, &r)), [(Kind::Value, "/0")]);
    let tol = rules(|c| c.tolerance = Some(0.01));
    assert!(dj(json!({"p": 9.99}), json!({"p": 9.995}), &tol).is_empty());
    assert_eq!(
        kinds(&dj(json!({"p": 9.99}), json!({"p": 10.01}), &tol)),
        [(Kind::Value, "/p")]
    );
}

#[test]
fn unordered_arrays_are_multisets() {
    let r = rules(|c| c.unordered = vec!["/tags".into(), "/groups/*/members".into()]);
    let a = json!({"tags": ["a", "b", "b", "c"], "groups": [{"members": [1, 2]}]});
    let b = json!({"tags": ["b", "c", "a", "b"], "groups": [{"members": [2, 1]}]});
    assert!(dj(a, b, &r).is_empty());

    // Surplus at each side's own index.
    let d = dj(
        json!({"tags": ["a", "b", "x"]}),
        json!({"tags": ["b", "a"]}),
        &r,
    );
    assert_eq!(kinds(&d), [(Kind::Missing, "/tags/2")]);
    let d = dj(json!({"tags": ["a"]}), json!({"tags": ["z", "a", "y"]}), &r);
    assert_eq!(
        kinds(&d),
        [(Kind::Extra, "/tags/0"), (Kind::Extra, "/tags/2")]
    );

    // Unmatched elements pair up in order of appearance and report their fields.
    let r = rules(|c| c.unordered = vec!["/items".into()]);
    let a = json!({"items": [{"id": 1, "p": 5}, {"id": 2, "p": 7}]});
    let b = json!({"items": [{"id": 2, "p": 7}, {"id": 1, "p": 6}]});
    let d = dj(a, b, &r);
    assert_eq!(kinds(&d), [(Kind::Value, "/items/0/p")]);
    assert_eq!(d.differences[0].pattern, "/items/*/p");
}

#[test]
fn keyed_arrays_match_on_the_key() {
    let r = rules(|c| {
        c.keyed.insert("/items".into(), "id".into());
    });
    let a = json!({"items": [{"id": 1, "p": 5}, {"id": 2, "p": 7}, {"id": 3, "p": 9}]});
    let b = json!({"items": [{"id": 4, "p": 1}, {"id": 2, "p": 7}, {"id": 1.0, "p": 6}]});
    let d = dj(a, b, &r);
    assert_eq!(
        kinds(&d),
        [
            (Kind::Value, "/items/0/p"),
            (Kind::Missing, "/items/2"),
            (Kind::Extra, "/items/0")
        ]
    );
    assert_eq!(
        d.differences[1].primary.as_deref(),
        Some("{\"id\":3,\"p\":9}")
    );

    // Order is not compared; duplicates meet in order; keyless elements pair by position.
    let a = json!({"items": [{"id": "x", "n": 1}, {"id": "x", "n": 2}, {"note": "a"}]});
    let b = json!({"items": [{"note": "b"}, {"id": "x", "n": 1}, {"id": "x", "n": 2}]});
    assert_eq!(kinds(&dj(a, b, &r)), [(Kind::Value, "/items/2/note")]);

    let nested = rules(|c| {
        c.keyed.insert("/orders/*/lines".into(), "/sku/code".into());
    });
    let a = json!({"orders": [{"lines": [{"sku": {"code": "A"}, "q": 1}, {"sku": {"code": "B"}, "q": 2}]}]});
    let b = json!({"orders": [{"lines": [{"sku": {"code": "B"}, "q": 2}, {"sku": {"code": "A"}, "q": 1}]}]});
    assert!(dj(a, b, &nested).is_empty());
}

#[test]
fn ignore_covers_the_subtree_and_wildcards_match_one_segment() {
    let r = rules(|c| c.ignore = vec!["/meta".into(), "/items/*/updated_at".into()]);
    let a =
        json!({"meta": {"x": 1, "y": [1]}, "items": [{"updated_at": 1, "n": {"updated_at": 1}}]});
    let b = json!({"meta": {"x": 2}, "items": [{"n": {"updated_at": 2}}]});
    let d = dj(a, b, &r);
    // `*` matched `0`; the nested /items/0/n/updated_at is not covered.
    assert_eq!(kinds(&d), [(Kind::Value, "/items/0/n/updated_at")]);
    assert!(dj(json!({"a": 1}), json!({"a": 1, "meta": 5}), &r).is_empty());

    // Ignoring every element of an unordered array ignores its membership too.
    let r = rules(|c| {
        c.ignore = vec!["/tags/*".into()];
        c.unordered = vec!["/tags".into()];
    });
    assert!(dj(json!({"tags": [1]}), json!({"tags": [2, 3]}), &r).is_empty());
}

#[test]
fn ignored_fields_inside_unordered_elements_do_not_block_matching() {
    let r = rules(|c| {
        c.unordered = vec!["/items".into()];
        c.ignore = vec!["/items/*/ts".into()];
    });
    let a = json!({"items": [{"id": 1, "ts": 10}, {"id": 2, "ts": 11}]});
    let b = json!({"items": [{"id": 2, "ts": 99}, {"id": 1, "ts": 98}]});
    assert!(dj(a, b, &r).is_empty());
}

#[test]
fn subset_drops_only_extra() {
    let r = rules(|c| {
        c.subset = true;
        c.unordered = vec!["/tags".into()];
    });
    let a = json!({"a": 1, "tags": ["x"], "list": [{"k": 1}]});
    let b = json!({"a": 1, "new": 2, "tags": ["y", "x"], "list": [{"k": 1, "more": true}]});
    assert!(dj(a.clone(), b.clone(), &r).is_empty());
    let d = dj(b, a, &r);
    assert_eq!(
        kinds(&d),
        [
            (Kind::Missing, "/list/0/more"),
            (Kind::Missing, "/new"),
            (Kind::Missing, "/tags/0")
        ]
    );
}

#[test]
fn order_is_reported_once_and_only_for_permutations() {
    let r = CompareRules::default();
    let d = dj(
        json!([{"a": 1}, {"b": 2}, 3]),
        json!([3, {"a": 1.0}, {"b": 2}]),
        &r,
    );
    assert_eq!(kinds(&d), [(Kind::Order, "")]);
    // Not a permutation: element by element.
    let d = dj(json!([1, 2, 3]), json!([3, 2, 4]), &r);
    assert_eq!(kinds(&d), [(Kind::Value, "/0"), (Kind::Value, "/2")]);
}

#[test]
fn unordered_matching_stays_fast_on_adversarial_arrays() {
    // 3000 objects that only differ in a number, with a tolerance: every element hashes alike,
    // and matching must not go quadratic without bound.
    let r = rules(|c| {
        c.unordered = vec!["/a".into()];
        c.tolerance = Some(0.5);
    });
    let a: Vec<_> = (0..3000).map(|i| json!({"v": i})).collect();
    let mut b = a.clone();
    b.reverse();
    b[0] = json!({"v": -5});
    let start = crate::clock::Clock::system().instant();
    let d = dj(json!({ "a": a }), json!({ "a": b }), &r);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(!d.is_empty());
}

#[test]
fn repeated_keys_meet_in_order_and_stay_symmetric() {
    let json = [("content-type", "application/json")];
    let a = captured(200, &json, r#"{"x": 1, "x": 2, "y": 0}"#);
    let b = captured(200, &json, r#"{"y": 0, "x": 1}"#);
    let r = CompareRules::default();
    assert_eq!(kinds(&diff(&a, &b, &r)), [(Kind::Missing, "/x")]);
    assert_eq!(kinds(&diff(&b, &a, &r)), [(Kind::Extra, "/x")]);
    assert!(diff(&a, &a, &r).is_empty());
}

#[test]
fn large_objects_with_other_key_orders_match_by_key() {
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let forward: Vec<String> = keys
        .iter()
        .map(|k| format!("\"{k}\": {}", k.len()))
        .collect();
    let mut backward = forward.clone();
    backward.reverse();
    backward[3] = "\"extra\": true".into();
    let json = [("content-type", "application/json")];
    let pa = captured(200, &json, format!("{{{}}}", forward.join(",")));
    let pb = captured(200, &json, format!("{{{}}}", backward.join(",")));
    let d = diff(&pa, &pb, &CompareRules::default());
    assert_eq!(
        kinds(&d),
        [(Kind::Missing, "/k36"), (Kind::Extra, "/extra")]
    );
}
