//! Properties of `diff`: a document equals itself under any rules; differences are symmetric
//! (same counts per kind with missing/extra swapped); pointers resolve; arbitrary bodies never
//! panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..4).prop_map(Value::from),
        prop_oneof![Just(0.5), Just(1.0), Just(-2.25), Just(3.0)].prop_map(Value::from),
        prop_oneof![Just(u64::MAX), Just(u64::MAX - 1)].prop_map(Value::from),
        "[ab~/]{0,2}".prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("id".to_string()),
        Just("tags".to_string()),
        Just("x/y".to_string()),
        Just("t~".to_string()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5).prop_map(
                |m: BTreeMap<String, Value>| Value::Object(m.into_iter().collect::<Map<_, _>>())
            ),
        ]
    })
}

const PATHS: &[&str] = &[
    "/a", "/tags", "/a/*", "/*/b", "/*", "/b/*/id", "/x~1y", "/t~0", "/0",
];

/// Rules drawn from a small pool of paths, so they actually hit the generated documents.
fn rules_strategy(allow_asymmetric: bool) -> impl Strategy<Value = CompareRules> {
    let pick = || prop::sample::subsequence(PATHS, 0..3);
    (pick(), pick(), pick(), pick(), any::<bool>(), any::<bool>()).prop_map(
        move |(ignore, unordered, keyed, redact, subset, tol)| {
            let keyed: BTreeMap<String, String> = keyed
                .into_iter()
                .filter(|p| !unordered.contains(p))
                .map(|p| (p.to_string(), "id".to_string()))
                .collect();
            let cfg = CompareConfig {
                ignore: ignore.iter().map(|s| s.to_string()).collect(),
                unordered: unordered.iter().map(|s| s.to_string()).collect(),
                keyed,
                redact: redact.iter().map(|s| s.to_string()).collect(),
                subset: allow_asymmetric && subset,
                tolerance: (allow_asymmetric && tol).then_some(0.5),
                ..CompareConfig::default()
            };
            CompareRules::compile(&cfg).unwrap()
        },
    )
}

fn counts(d: &Diff, swap: bool) -> BTreeMap<Kind, usize> {
    let mut out = BTreeMap::new();
    for x in &d.differences {
        let k = match (swap, x.kind) {
            (true, Kind::Missing) => Kind::Extra,
            (true, Kind::Extra) => Kind::Missing,
            (_, k) => k,
        };
        *out.entry(k).or_insert(0) += 1;
    }
    out
}

/// The same document with every integer written as a float.
fn floated(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_i64() => n.as_f64().map_or(v.clone(), Value::from),
        Value::Array(items) => Value::Array(items.iter().map(floated).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), floated(v))).collect()),
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_document_equals_itself(a in json_value(), r in rules_strategy(true)) {
        prop_assert!(diff_json(&a, &a, &r).is_empty());
        prop_assert!(diff_json(&a, &floated(&a), &r).is_empty());
        // Through the body parser: compact against pretty-printed text.
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", http::HeaderValue::from_static("application/json"));
        let compact = Captured { status: 200, headers: headers.clone(), body: a.to_string().into(), truncated: false };
        let pretty = Captured { status: 200, headers, body: serde_json::to_vec_pretty(&a).unwrap().into(), truncated: false };
        prop_assert!(diff(&compact, &pretty, &r).is_empty());
    }

    #[test]
    fn differences_are_symmetric(a in json_value(), b in json_value(), r in rules_strategy(false)) {
        let ab = diff_json(&a, &b, &r);
        let ba = diff_json(&b, &a, &r);
        prop_assume!(!ab.truncated && !ba.truncated);
        prop_assert_eq!(counts(&ab, false), counts(&ba, true), "{:#?}\n{:#?}", ab, ba);
    }

    #[test]
    fn pointers_resolve_on_their_side(a in json_value(), b in json_value()) {
        let d = diff_json(&a, &b, &CompareRules::default());
        for x in &d.differences {
            match x.kind {
                Kind::Missing => prop_assert!(a.pointer(&x.path).is_some(), "{}", x.path),
                Kind::Extra => prop_assert!(b.pointer(&x.path).is_some(), "{}", x.path),
                _ => prop_assert!(a.pointer(&x.path).is_some() && b.pointer(&x.path).is_some(), "{}", x.path),
            }
            prop_assert!(x.primary.as_ref().is_none_or(|s| s.chars().count() <= MAX_RENDERED + 1));
        }
    }

    #[test]
    fn subset_never_reports_extra(a in json_value(), b in json_value(), r in rules_strategy(true)) {
        let d = diff_json(&a, &b, &r);
        if r.subset {
            prop_assert_eq!(d.count(Kind::Extra), 0);
        }
        prop_assert!(d.differences.len() <= MAX_DIFFERENCES);
    }

    #[test]
    fn arbitrary_bodies_never_panic(
        a in prop::collection::vec(any::<u8>(), 0..200),
        b in prop::collection::vec(any::<u8>(), 0..200),
        ct in prop_oneof![Just("application/json"), Just("text/plain"), Just("application/octet-stream")],
        enc in prop_oneof![Just("identity"), Just("gzip"), Just("br"), Just("deflate")],
    ) {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", http::HeaderValue::from_static(ct));
        headers.insert("content-encoding", http::HeaderValue::from_static(enc));
        let p = Captured { status: 200, headers: headers.clone(), body: a.into(), truncated: false };
        let s = Captured { status: 200, headers, body: b.into(), truncated: false };
        let d = diff(&p, &s, &CompareRules::default());
        prop_assert!(d.differences.len() <= MAX_DIFFERENCES);
        prop_assert!(diff(&p, &p, &CompareRules::default()).is_empty());
    }
}
