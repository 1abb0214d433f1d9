//! Fuzzes `diff` on arbitrary response bodies: it must never panic, a response must equal
//! itself under any rules, and without asymmetric rules the differences of (a, b) and (b, a)
//! must agree kind by kind with missing and extra swapped.
//!
//! Input layout: byte 0 picks the content types and encodings, byte 1 the rules, the rest is
//! split in two bodies at the first 0xff byte.

#![no_main]

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use switchyard::compare::{
    Captured, CompareConfig, CompareRules, Diff, Kind, diff, diff_json, redact_json,
};

const CONTENT_TYPES: [&str; 4] = ["application/json", "text/plain", "application/octet-stream", "application/problem+json"];
const ENCODINGS: [Option<&str>; 4] = [None, Some("gzip"), Some("br"), Some("deflate")];

fn rules(selector: u8) -> CompareRules {
    let pick = |bit: u8, paths: &[&str]| -> Vec<String> {
        if selector & bit != 0 { paths.iter().map(|p| p.to_string()).collect() } else { Vec::new() }
    };
    let mut cfg = CompareConfig {
        ignore: pick(1, &["/a", "/*/b", "header:content-type"]),
        unordered: pick(2, &["/tags", "/*"]),
        redact: pick(4, &["/id", "/*/secret"]),
        subset: selector & 8 != 0,
        tolerance: (selector & 16 != 0).then_some(0.5),
        ..CompareConfig::default()
    };
    if selector & 32 != 0 {
        cfg.keyed.insert("/items".into(), "id".into());
        cfg.keyed.insert("/*/list".into(), "/k".into());
    }
    CompareRules::compile(&cfg).unwrap_or_default()
}

fn captured(body: &[u8], content_type: &'static str, encoding: Option<&'static str>) -> Captured {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    if let Some(e) = encoding {
        headers.insert("content-encoding", HeaderValue::from_static(e));
    }
    Captured { status: 200, headers, body: Bytes::copy_from_slice(body), truncated: false }
}

fn counts(d: &Diff, swap: bool) -> BTreeMap<Kind, usize> {
    let mut out = BTreeMap::new();
    for x in &d.differences {
        let k = match (swap, x.kind) {
            (true, Kind::Missing) => Kind::Extra,
            (true, Kind::Extra) => Kind::Missing,
            (_, k) => k,
        };
        *out.entry(k).or_insert(0usize) += 1;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [shape, selector, rest @ ..] = data else {
        return;
    };
    let (body_a, body_b) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, rest),
    };
    let ct = |n: u8| CONTENT_TYPES[usize::from(n) % CONTENT_TYPES.len()];
    let enc = ENCODINGS[usize::from(shape >> 4) % ENCODINGS.len()];
    let a = captured(body_a, ct(shape & 3), enc);
    let b = captured(body_b, ct((shape >> 2) & 3), enc);
    let rules = rules(*selector);

    let ab = diff(&a, &b, &rules);
    assert!(ab.differences.len() <= switchyard::compare::MAX_DIFFERENCES);
    assert!(diff(&a, &a, &rules).is_empty(), "a response differs from itself");

    let symmetric = *selector & (8 | 16) == 0;
    let ba = diff(&b, &a, &rules);
    if symmetric && !ab.truncated && !ba.truncated {
        assert_eq!(counts(&ab, false), counts(&ba, true), "asymmetric: {ab:#?} vs {ba:#?}");
    }

    // The Value path agrees with itself, and redaction never panics.
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body_a) {
        assert!(diff_json(&v, &v, &rules).is_empty());
        redact_json(&mut v, &rules, b"fuzz-key");
        assert!(diff_json(&v, &v, &rules).is_empty());
    }
});
