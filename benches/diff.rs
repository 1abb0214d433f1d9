//! Shadow comparison throughput: `diff` on a realistic ~100 KiB JSON pair (order listing with
//! 400 items), parsing included, under a typical rule set. Goal: ≥ 2,000 comparisons/s/core.
//!
//! Run: `cargo bench --bench diff -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use switchyard::compare::{Captured, CompareConfig, CompareRules, diff, diff_json};

#[path = "../src/compare/tests/orders.rs"]
mod orders;

fn documents() -> (Value, Value) {
    let a = orders::document(400);
    // The shadow: new timestamps everywhere, items in another order, a few real changes.
    let mut b = a.clone();
    b["generated_at"] = json!("2024-05-01T12:00:01Z");
    b["request_id"] = json!("req_0000aaaa1111bbbb");
    if let Some(items) = b["items"].as_array_mut() {
        for (i, it) in items.iter_mut().enumerate() {
            it["updated_at"] = json!(format!("2024-06-0{}T00:00:00Z", i % 9 + 1));
            if i.is_multiple_of(97) {
                it["price"] = json!(1.5);
            }
        }
        items.reverse();
    }
    (a, b)
}

fn captured(v: &Value) -> Captured {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    Captured {
        status: 200,
        headers,
        body: Bytes::from(v.to_string()),
        truncated: false,
    }
}

fn rules() -> CompareRules {
    let mut cfg = CompareConfig {
        ignore: vec![
            "/generated_at".into(),
            "/request_id".into(),
            "/items/*/updated_at".into(),
        ],
        unordered: vec!["/items/*/tags".into()],
        redact: vec!["/account/email".into()],
        ..CompareConfig::default()
    };
    cfg.keyed.insert("/items".into(), "id".into());
    CompareRules::compile(&cfg).unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let (a, b) = documents();
    let (pa, pb) = (captured(&a), captured(&b));
    let rules = rules();
    let found = diff(&pa, &pb, &rules);
    assert_eq!(found.differences.len(), 5, "{found:#?}");
    eprintln!("body sizes: {} and {} bytes", pa.body.len(), pb.body.len());

    let mut group = c.benchmark_group("diff");
    group.throughput(Throughput::Elements(1));
    group.bench_function("100KiB_json_pair_parse_included", |bench| {
        bench.iter(|| diff(black_box(&pa), black_box(&pb), &rules));
    });
    group.bench_function("100KiB_json_pair_parsed", |bench| {
        bench.iter(|| diff_json(black_box(&a), black_box(&b), &rules));
    });
    let default = CompareRules::default();
    group.bench_function("100KiB_json_equal_but_reformatted_no_rules", |bench| {
        let pretty = Captured {
            body: Bytes::from(serde_json::to_vec_pretty(&a).unwrap_or_default()),
            ..pa.clone()
        };
        bench.iter(|| diff(black_box(&pa), black_box(&pretty), &default));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
