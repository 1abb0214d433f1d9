//! `RuleSet::decide` on a large rule set: 10 000 tenants × 2 000 routes, generated into a
//! temporary directory (see `tests/config/generate.rs`).
//!
//! Run: `cargo bench --bench decide -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method, Uri};
use jsonwebtoken::{EncodingKey, Header, encode};
use switchyard::rules::{RequestView, RuleSet};

#[path = "../tests/config/generate.rs"]
mod generate;

struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Request {
    fn new(method: Method, uri: &str, headers: &[(&'static str, String)]) -> Self {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        Request {
            method,
            uri: uri.parse().unwrap(),
            headers: map,
        }
    }

    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            peer: None,
            sample: 1234,
        }
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = generate::write_big_config(dir.path(), 10_000, 2_000);
    let started = switchyard::clock::Clock::system().instant();
    let rules: RuleSet = switchyard::config::load_file(&path).unwrap();
    eprintln!(
        "loaded 10000 tenants x 2000 routes in {} ms",
        started.elapsed().as_millis()
    );
    let now = switchyard::clock::Clock::system().now();
    let exp = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
        + 3_600;
    let token = encode(
        &Header::default(),
        &serde_json::json!({"org": "t5000", "exp": exp}),
        &EncodingKey::from_secret(generate::JWT_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();

    let cases = [
        (
            "header tenant, matched route",
            Request::new(
                Method::GET,
                "/svc1002/items/42",
                &[("x-tenant-id", "t5000".into())],
            ),
        ),
        (
            "header tenant, method fallback",
            Request::new(
                Method::POST,
                "/svc1000/items/42",
                &[("x-tenant-id", "t5000".into())],
            ),
        ),
        (
            "unmatched path",
            Request::new(
                Method::GET,
                "/nothing/here/at/all",
                &[("x-tenant-id", "t5000".into())],
            ),
        ),
        (
            "jwt tenant, matched route",
            Request::new(
                Method::GET,
                "/svc1002/items/42",
                &[("authorization", format!("Bearer {token}"))],
            ),
        ),
    ];
    let mut group = c.benchmark_group("decide");
    for (name, req) in &cases {
        let view = req.view();
        assert!(
            rules.decide(&view, now).tenant.is_some(),
            "{name}: no tenant"
        );
        group.bench_function(*name, |b| {
            b.iter(|| black_box(rules.decide(black_box(&view), now)).side)
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
