//! The request path's tracing work when `[telemetry] otlp_endpoint` is on: the request's trace
//! made from its head (a new trace, or a caller's continued), the `traceparent` sent upstream,
//! and the server span built at the record phase (the export itself is one `try_send`). With
//! tracing off none of this runs: the request path only tests one `Option`.
//!
//! Run: `cargo bench --bench trace -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};
use switchyard::trace::{RequestTrace, SpanData, TraceConfig};

fn bench(c: &mut Criterion) {
    let config = TraceConfig {
        endpoint: http::Uri::from_static("http://127.0.0.1:4318/v1/traces"),
        service_name: "switchyard".into(),
        sample_bp: 10_000,
    };
    let none = HeaderMap::new();
    let mut caller = HeaderMap::new();
    caller.insert(
        "traceparent",
        HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    c.bench_function("trace: start a new trace", |b| {
        b.iter(|| RequestTrace::start(&config, &Method::GET, black_box(&none), UNIX_EPOCH))
    });
    c.bench_function("trace: continue a caller's traceparent", |b| {
        b.iter(|| RequestTrace::start(&config, &Method::GET, black_box(&caller), UNIX_EPOCH))
    });
    let trace = RequestTrace::start(&config, &Method::GET, &caller, UNIX_EPOCH);
    c.bench_function("trace: traceparent header", |b| {
        b.iter(|| black_box(&trace).span.traceparent())
    });
    c.bench_function("trace: server span with its attributes", |b| {
        b.iter(|| {
            let t = black_box(&trace);
            let mut span = SpanData::server(
                t,
                format!("{} {}", t.method, "cards"),
                Duration::from_millis(3),
            );
            span.attr("http.request.method", t.method.as_str())
                .attr("switchyard.route", "cards")
                .attr("switchyard.side", "new")
                .attr("http.response.status_code", 200i64)
                .attr("switchyard.fallback", false)
                .attr("switchyard.shadowed", false)
                .attr(
                    "switchyard.request_id",
                    "0d5f6c3e-8d1f-4f7e-9d7b-1c2a3b4c5d6e",
                )
                .attr("switchyard.generation", 7i64)
                .attr("switchyard.reason", "tenant_listed")
                .attr("switchyard.upstream", "cards");
            span
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
