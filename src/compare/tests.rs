//! Unit tests of `diff`: status, headers, bodies, limits, redaction. JSON rules are in
//! `tests/json_rules.rs`, the 100 KiB documents in `tests/realistic.rs`.

use std::io::Write;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::*;

mod json_rules;
mod realistic;

pub(super) fn rules(f: impl FnOnce(&mut CompareConfig)) -> CompareRules {
    let mut cfg = CompareConfig::default();
    f(&mut cfg);
    CompareRules::compile(&cfg).unwrap()
}

pub(super) fn captured(
    status: u16,
    headers: &[(&'static str, &'static str)],
    body: impl Into<Bytes>,
) -> Captured {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(*k, HeaderValue::from_static(v));
    }
    Captured {
        status,
        headers: map,
        body: body.into(),
        truncated: false,
    }
}

pub(super) fn json_resp(body: &Value) -> Captured {
    captured(
        200,
        &[("content-type", "application/json")],
        body.to_string(),
    )
}

/// (kind, path) of every difference.
pub(super) fn kinds(d: &Diff) -> Vec<(Kind, &str)> {
    d.differences
        .iter()
        .map(|d| (d.kind, d.path.as_str()))
        .collect()
}

pub(super) fn dj(a: Value, b: Value, r: &CompareRules) -> Diff {
    diff_json(&a, &b, r)
}

#[test]
fn identical_responses_match() {
    let a = captured(
        200,
        &[("content-type", "application/json"), ("date", "x")],
        r#"{"a":1}"#,
    );
    assert!(diff(&a, &a, &CompareRules::default()).is_empty());
}

#[test]
fn kind_names_round_trip() {
    for k in Kind::ALL {
        assert_eq!(Kind::parse(k.as_str()), Some(k));
        assert_eq!(
            serde_json::to_string(&k).unwrap(),
            format!("\"{}\"", k.as_str())
        );
    }
    assert_eq!(Kind::parse("nope"), None);
}

#[test]
fn status_exact_and_by_class() {
    let a = captured(200, &[], "");
    let b = captured(201, &[], "");
    let exact = diff(&a, &b, &CompareRules::default());
    assert_eq!(kinds(&exact), [(Kind::Status, "status")]);
    assert_eq!(exact.differences[0].primary.as_deref(), Some("200"));
    assert_eq!(exact.differences[0].shadow.as_deref(), Some("201"));
    let class = rules(|c| c.status = StatusMode::Class);
    assert!(diff(&a, &b, &class).is_empty());
    let c = captured(404, &[], "");
    assert_eq!(kinds(&diff(&a, &c, &class)), [(Kind::Status, "status")]);
}

#[test]
fn default_headers_are_compared_and_date_server_hop_by_hop_are_not() {
    let a = captured(
        200,
        &[
            ("content-type", "text/plain"),
            ("Cache-Control", "no-store"),
            ("date", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("server", "legacy/1.0"),
            ("connection", "keep-alive"),
            ("etag", "\"a\""),
            ("x-custom", "1"),
        ],
        "",
    );
    let b = captured(
        200,
        &[
            ("Content-Type", "TEXT/PLAIN"),
            ("cache-control", "no-cache"),
            ("date", "Tue, 02 Jan 2024 00:00:00 GMT"),
            ("server", "cards/2.0"),
            ("transfer-encoding", "chunked"),
            ("etag", "\"b\""),
            ("x-custom", "2"),
            ("location", "/x"),
        ],
        "",
    );
    let d = diff(&a, &b, &CompareRules::default());
    assert_eq!(
        kinds(&d),
        [
            (Kind::Header, "header:cache-control"),
            (Kind::Header, "header:location")
        ]
    );
    assert_eq!(d.differences[1].primary, None);
    assert_eq!(d.differences[1].shadow.as_deref(), Some("/x"));
    assert_eq!(d.differences[1].pattern, "header:location");

    let more = rules(|c| {
        c.headers = vec!["X-Custom".into(), "ETag".into()];
        c.ignore = vec!["header:cache-control".into(), "header:location".into()];
    });
    let d = diff(&a, &b, &more);
    assert_eq!(
        kinds(&d),
        [
            (Kind::Header, "header:etag"),
            (Kind::Header, "header:x-custom")
        ]
    );
}

#[test]
fn subset_accepts_headers_only_the_shadow_has() {
    let a = captured(200, &[], "");
    let b = captured(200, &[("location", "/x")], "");
    assert!(diff(&a, &b, &rules(|c| c.subset = true)).is_empty());
    assert_eq!(
        diff(&b, &a, &rules(|c| c.subset = true)).differences.len(),
        1
    );
}

#[test]
fn credential_and_redacted_headers_render_as_hashes() {
    let a = captured(
        200,
        &[("set-cookie", "sid=secret1"), ("x-token", "tok-1")],
        "",
    );
    let b = captured(
        200,
        &[("set-cookie", "sid=secret2"), ("x-token", "tok-2")],
        "",
    );
    let r = rules(|c| {
        c.headers = vec!["set-cookie".into(), "x-token".into()];
        c.redact = vec!["header:x-token".into()];
    });
    let d = diff(&a, &b, &r);
    assert_eq!(d.differences.len(), 2);
    let text = serde_json::to_string(&d).unwrap();
    assert!(!text.contains("secret") && !text.contains("tok-"), "{text}");
    for diff in &d.differences {
        assert!(diff.primary.as_deref().unwrap().starts_with("redacted:"));
    }
}

#[test]
fn text_bodies_compare_line_by_line() {
    let a = captured(
        200,
        &[("content-type", "text/plain")],
        "one\ntwo\nthree\nfour\n",
    );
    let b = captured(
        200,
        &[("content-type", "text/plain")],
        "one\nTWO\nthree\nfour\nfive\n",
    );
    let d = diff(&a, &b, &CompareRules::default());
    assert_eq!(kinds(&d), [(Kind::Text, "body")]);
    assert_eq!(
        d.differences[0].primary.as_deref(),
        Some("line 2, 1 of 4 lines differ: two")
    );
    assert_eq!(
        d.differences[0].shadow.as_deref(),
        Some("line 2, 2 of 5 lines differ: TWO")
    );
    // No content type, UTF-8 body: text as well.
    let c = captured(200, &[], "x\n");
    let e = captured(200, &[], "y\n");
    assert_eq!(
        kinds(&diff(&c, &e, &CompareRules::default())),
        [(Kind::Text, "body")]
    );
}

#[test]
fn binary_bodies_compare_by_digest() {
    let a = captured(
        200,
        &[("content-type", "image/png")],
        &b"\x89PNG\x00\x01"[..],
    );
    let b = captured(
        200,
        &[("content-type", "image/png")],
        &b"\x89PNG\x00\x02"[..],
    );
    let d = diff(&a, &b, &CompareRules::default());
    assert_eq!(kinds(&d), [(Kind::Binary, "body")]);
    let p = d.differences[0].primary.as_deref().unwrap();
    assert!(p.starts_with("sha256:") && p.ends_with("(6 bytes)"), "{p}");
    assert!(diff(&a, &a.clone(), &CompareRules::default()).is_empty());
    // Text content type but not UTF-8: binary.
    let t1 = captured(200, &[("content-type", "text/plain")], &b"\xff\xfe"[..]);
    let t2 = captured(200, &[("content-type", "text/plain")], &b"\xff\xfd"[..]);
    assert_eq!(
        kinds(&diff(&t1, &t2, &CompareRules::default())),
        [(Kind::Binary, "body")]
    );
}

#[test]
fn invalid_json_on_one_side_is_a_body_difference() {
    let a = json_resp(&json!({"a": 1}));
    let b = captured(200, &[("content-type", "application/json")], "{\"a\": 1");
    let d = diff(&a, &b, &CompareRules::default());
    assert_eq!(kinds(&d), [(Kind::Body, "body")]);
    assert_eq!(d.differences[0].primary.as_deref(), Some("valid JSON"));
    assert!(
        d.differences[0]
            .shadow
            .as_deref()
            .unwrap()
            .starts_with("invalid JSON")
    );
    // Both invalid: compared as text.
    let c = captured(200, &[("content-type", "application/json")], "{oops");
    assert_eq!(
        kinds(&diff(&b, &c, &CompareRules::default())),
        [(Kind::Text, "body")]
    );
}

#[test]
fn json_is_structural_whatever_the_formatting_and_suffix() {
    let a = captured(
        200,
        &[("content-type", "application/problem+json")],
        "{\"a\":1,\"b\":[1,2]}",
    );
    let b = captured(
        200,
        &[("content-type", "application/problem+json")],
        "{ \"b\": [1, 2.0],\n \"a\": 1.0 }",
    );
    assert!(diff(&a, &b, &CompareRules::default()).is_empty());
    // One side says JSON, the other text: the header differs, the body still compares as JSON.
    let c = captured(
        200,
        &[("content-type", "text/plain")],
        "{\"b\":[1,2],\"a\":2}",
    );
    let d = diff(&a, &c, &CompareRules::default());
    assert_eq!(
        kinds(&d),
        [(Kind::Header, "header:content-type"), (Kind::Value, "/a")]
    );
}

#[test]
fn json_without_a_json_content_type_is_sniffed() {
    use crate::compare::{BodyMode, body_mode};
    let rules = CompareRules::default();
    // No content type at all, or text/plain, or octet-stream: JSON bodies compare as JSON.
    for ct in [None, Some("text/plain"), Some("application/octet-stream")] {
        let headers: Vec<(&str, &str)> = ct.map(|c| ("content-type", c)).into_iter().collect();
        let a = captured(200, &headers, "{\"id\":1,\"at\":\"x\",\"tags\":[1,2]}");
        let b = captured(
            200,
            &headers,
            "{ \"tags\": [1, 2.0], \"at\": \"y\", \"id\": 1 }",
        );
        let d = diff(&a, &b, &rules);
        assert_eq!(kinds(&d), [(Kind::Value, "/at")], "{ct:?}");
        assert_eq!(body_mode(&a, &b, &rules), BodyMode::JsonSniffed, "{ct:?}");
    }
    // Declared JSON is not "sniffed"; equal bodies are not compared at all.
    let a = json_resp(&json!({"a": 1}));
    let b = json_resp(&json!({"a": 2}));
    assert_eq!(body_mode(&a, &b, &rules), BodyMode::Json);
    assert_eq!(body_mode(&a, &a.clone(), &rules), BodyMode::Equal);
    // Only one side parses, or a bare scalar: text, as before.
    let c = captured(200, &[], "{\"a\": 1}");
    let e = captured(200, &[], "{\"a\": 1");
    assert_eq!(kinds(&diff(&c, &e, &rules)), [(Kind::Text, "body")]);
    assert_eq!(body_mode(&c, &e, &rules), BodyMode::Text);
    let n1 = captured(200, &[], "42");
    let n2 = captured(200, &[], "42.0");
    assert_eq!(kinds(&diff(&n1, &n2, &rules)), [(Kind::Text, "body")]);
    // A body cut at max_body is never parsed.
    let mut cut = c.clone();
    cut.truncated = true;
    assert_eq!(body_mode(&cut, &c, &rules), BodyMode::AsReceived);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn encoded_bodies_are_decoded_first() {
    let plain = json_resp(&json!({"a": [1, 2, 3]}));
    let mut zipped = plain.clone();
    zipped.body = Bytes::from(gzip(&plain.body));
    zipped
        .headers
        .insert("content-encoding", HeaderValue::from_static("gzip"));
    assert!(diff(&plain, &zipped, &CompareRules::default()).is_empty());

    let mut broken = zipped.clone();
    broken.body = Bytes::from_static(b"not gzip at all");
    let d = diff(&plain, &broken, &CompareRules::default());
    assert_eq!(kinds(&d), [(Kind::Body, "body")]);
    assert!(d.differences[0].shadow.as_deref().unwrap().contains("gzip"));

    let bomb = Bytes::from(gzip(&vec![b' '; 4 << 20]));
    let mut big = zipped.clone();
    big.body = bomb;
    let small = CompareRules::default().with_max_decoded(1 << 20);
    let d = diff(&plain, &big, &small);
    assert_eq!(kinds(&d), [(Kind::Body, "body")]);
    assert!(
        d.differences[0]
            .shadow
            .as_deref()
            .unwrap()
            .contains("exceeds")
    );
}

#[test]
fn truncated_bodies_compare_only_as_far_as_captured() {
    let mut a = captured(
        200,
        &[("content-type", "application/json")],
        "{\"a\": [1, 2",
    );
    a.truncated = true;
    let b = a.clone();
    assert!(diff(&a, &b, &CompareRules::default()).is_empty());
    let mut c = a.clone();
    c.body = Bytes::from_static(b"{\"a\": [1, 3");
    let d = diff(&a, &c, &CompareRules::default());
    assert_eq!(kinds(&d), [(Kind::Body, "body")]);
    let full = captured(
        200,
        &[("content-type", "application/json")],
        "{\"a\": [1, 2]}",
    );
    let d = diff(&a, &full, &CompareRules::default());
    assert_eq!(
        d.differences[0].primary.as_deref(),
        Some("cut at 11 bytes (max_body)")
    );
}

#[test]
fn differences_are_capped() {
    let a: Value = (0..150)
        .map(|i| (format!("k{i:03}"), json!(i)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let b: Value = (0..150)
        .map(|i| (format!("k{i:03}"), json!(i + 1)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let d = diff(&json_resp(&a), &json_resp(&b), &CompareRules::default());
    assert_eq!(d.differences.len(), MAX_DIFFERENCES);
    assert!(d.truncated);
    assert!(!d.is_empty());
    assert_eq!(d.count(Kind::Value), MAX_DIFFERENCES);
}

/// serde_json drops values recursively; take deep ones apart by hand.
fn drop_deep(v: Value) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

fn nest(depth: usize, leaf: Value) -> Value {
    let mut v = leaf;
    for i in 0..depth {
        // Not `json!`: it would serialise `v` again (recursively) at every level.
        v = if i % 2 == 0 {
            Value::Array(vec![v])
        } else {
            Value::Object(std::iter::once(("k".to_string(), v)).collect())
        };
    }
    v
}

#[test]
fn deep_documents_are_bounded_not_overflowed() {
    let a = nest(5_000, json!(1));
    let b = nest(5_000, json!(2));
    let c = nest(5_000, json!(1.0));
    let d = diff_json(&a, &b, &CompareRules::default());
    assert_eq!(d.differences.len(), 1);
    assert_eq!(d.differences[0].kind, Kind::Body);
    assert_eq!(d.differences[0].path.matches('/').count(), MAX_DEPTH);
    assert!(diff_json(&a, &c, &CompareRules::default()).is_empty());
    for v in [a, b, c] {
        drop_deep(v);
    }
    // As bodies, nesting beyond serde_json's limit does not parse: compared as text.
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let other = "[".repeat(100_000) + "1" + &"]".repeat(100_000);
    let x = captured(200, &[("content-type", "application/json")], deep);
    let y = captured(200, &[("content-type", "application/json")], other);
    assert_eq!(
        kinds(&diff(&x, &y, &CompareRules::default())),
        [(Kind::Text, "body")]
    );
}

#[test]
fn rendered_values_are_short() {
    let long = "x".repeat(1000);
    let d = dj(
        json!({"s": long}),
        json!({"s": "y"}),
        &CompareRules::default(),
    );
    let p = d.differences[0].primary.as_deref().unwrap();
    assert!(p.chars().count() <= MAX_RENDERED + 1 && p.ends_with('…'));
}

#[test]
fn redacted_paths_never_leak_and_compare_as_one_value() {
    let r = rules(|c| c.redact = vec!["/owner/email".into(), "/cards/*/number".into()]);
    let a =
        json!({"owner": {"email": "a@example.com", "name": "A"}, "cards": [{"number": "4111"}]});
    let b =
        json!({"owner": {"email": "b@example.com", "name": "A"}, "cards": [{"number": "5500"}]});
    let d = dj(a.clone(), b.clone(), &r);
    assert_eq!(
        kinds(&d),
        [
            (Kind::Value, "/cards/0/number"),
            (Kind::Value, "/owner/email")
        ]
    );
    let text = serde_json::to_string(&d).unwrap();
    assert!(
        !text.contains("example.com") && !text.contains("4111"),
        "{text}"
    );
    // A difference above a redacted path renders the redacted part hashed.
    let d = dj(a.clone(), json!({"cards": []}), &r);
    let text = serde_json::to_string(&d).unwrap();
    assert!(
        !text.contains("example.com") && text.contains("redacted:"),
        "{text}"
    );
    // Diffing the raw documents and diffing the redacted documents agree.
    let (mut ra, mut rb) = (a.clone(), b.clone());
    redact_json(&mut ra, &r, process_key());
    redact_json(&mut rb, &r, process_key());
    let after = dj(ra, rb, &CompareRules::default());
    assert_eq!(after, dj(a, b, &r));
}

#[test]
fn redaction_with_a_configured_key_is_stable() {
    let r1 = rules(|c| c.redact = vec!["/s".into()]).with_redact_key(b"fleet-key");
    let r2 = rules(|c| c.redact = vec!["/s".into()]).with_redact_key(b"fleet-key");
    let d1 = dj(json!({"s": 1}), json!({"s": 2}), &r1);
    let d2 = dj(json!({"s": 1}), json!({"s": 2}), &r2);
    assert_eq!(d1, d2);
    let mut v = json!({"s": 1});
    redact_json(&mut v, &r1, b"fleet-key");
    assert_eq!(Some(v["s"].to_string()), d1.differences[0].primary);
}
