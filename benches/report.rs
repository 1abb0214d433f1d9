//! The shadow report over a SQLite store holding 1,000,000 comparison results. Goal: < 1 s.
//!
//! The store is filled once (kept in `target/bench-report/`, reused while it holds the same
//! workload): 4 routes × 10 tenants over 6 hours (about 46 results a second), every result
//! differing on a request id (learned noise: a self-check on one in ten), one in ten also on a
//! timestamp, and a few real differences — a `/price` on one in a hundred on `cards`, a
//! missing `/items/*/qty` on one in two hundred on `orders` — plus matches on `search`. That is
//! a dozen distinct difference sets, so the derivation classifies a dozen sets and sums about
//! 60,000 counter rows, whatever the number of results.
//!
//! Run: `cargo bench --bench report -- --warm-up-time 1 --measurement-time 10`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchyard::rules::Side;
use switchyard::store::{
    DiffRecord, Outcome, ReportFilter, ReportPolicy, SelfCheck, ShadowResult, Store,
};

const RESULTS: u64 = 1_000_000;
const SPAN_MS: i64 = 6 * 3_600_000;
const ROUTES: [&str; 4] = ["cards", "orders", "search", "users"];
const TENANTS: u64 = 10;
/// A minute-aligned instant (2023-11-14T22:14:00Z).
const T0: i64 = 1_700_000_040_000;
/// Bump when the workload changes: a store filled by another version is rebuilt.
const WORKLOAD_VERSION: &str = "2";

fn diff(pattern: &str) -> DiffRecord {
    DiffRecord {
        pattern: pattern.into(),
        kind: if pattern.ends_with("qty") {
            "missing"
        } else {
            "value"
        }
        .into(),
        primary: Some("1".into()),
        shadow: Some("2".into()),
    }
}

/// Result number `k` of the workload.
fn result(k: u64, rng: &mut StdRng) -> ShadowResult {
    let route = ROUTES[(k % ROUTES.len() as u64) as usize];
    let tenant = format!("tenant-{}", (k / 4) % TENANTS);
    let at_ms = T0 + (k as i64 * SPAN_MS) / RESULTS as i64;
    let mut diffs = Vec::new();
    if route != "search" || rng.random_range(0..5) == 0 {
        diffs.push(diff("/request_id"));
        if rng.random_range(0..10) == 0 {
            diffs.push(diff("/meta/generated_at"));
        }
        if route == "cards" && rng.random_range(0..100) == 0 {
            diffs.push(diff("/price"));
        }
        if route == "orders" && rng.random_range(0..200) == 0 {
            diffs.push(diff("/items/*/qty"));
        }
    }
    let self_check = (rng.random_range(0..10) == 0).then(|| SelfCheck {
        differing_patterns: vec!["/meta/generated_at".into(), "/request_id".into()],
    });
    let outcome = match diffs.len() {
        0 => Outcome::Match,
        _ if diffs
            .iter()
            .any(|d| d.pattern == "/price" || d.kind == "missing") =>
        {
            Outcome::Mismatch
        }
        _ => Outcome::NoiseOnly,
    };
    ShadowResult {
        at_ms,
        route: route.into(),
        tenant: Some(tenant),
        primary_side: Side::Legacy,
        outcome,
        skip_reason: None,
        error: None,
        primary_ms: Some(rng.random_range(2.0..40.0)),
        shadow_ms: Some(rng.random_range(2.0..60.0)),
        diffs,
        self_check,
        sample: None,
    }
}

fn store_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-report")
}

/// The filled store: reused when the marker says it holds this workload, else rebuilt.
async fn filled() -> Store {
    let dir = store_dir();
    let marker = dir.join("filled");
    let want = format!("{WORKLOAD_VERSION} {RESULTS}");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
        return Store::open("sqlite://1m.db", &dir)
            .await
            .expect("open store");
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench store directory");
    let store = Store::open("sqlite://1m.db", &dir)
        .await
        .expect("open store");
    #[allow(clippy::disallowed_methods)] // reports how long filling the bench store took
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(7);
    let mut batch = Vec::with_capacity(1_000);
    for k in 0..RESULTS {
        batch.push(result(k, &mut rng));
        if batch.len() == 1_000 {
            store.write_shadow_batch(&batch, 0).await.expect("write");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.write_shadow_batch(&batch, 0).await.expect("write");
    }
    eprintln!(
        "filled {RESULTS} results in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, want).expect("marker");
    store
}

fn report(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store = rt.block_on(filled());
    let policy = ReportPolicy::default();
    let all = ReportFilter::default();
    let check = rt
        .block_on(store.report(&all, &policy, &switchyard::shadow::noise_flag))
        .expect("report");
    let compared: u64 = check.routes.iter().map(|r| r.scope.counts.compared).sum();
    assert_eq!(compared, RESULTS);
    for r in &check.routes {
        eprintln!(
            "{}: parity {:.2}% {:?} ({} matched, {} noise only, {} mismatched)",
            r.route,
            r.scope.parity.percent.unwrap_or(0.0),
            r.scope.verdict,
            r.scope.counts.matched,
            r.scope.counts.noise_only,
            r.scope.counts.mismatched
        );
    }

    let mut g = c.benchmark_group("report_1m_results");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("all_routes", |b| {
        b.iter(|| {
            rt.block_on(store.report(black_box(&all), &policy, &switchyard::shadow::noise_flag))
                .expect("report")
        })
    });
    let by_tenant = ReportFilter {
        by_tenant: true,
        ..ReportFilter::default()
    };
    g.bench_function("all_routes_by_tenant", |b| {
        b.iter(|| {
            rt.block_on(store.report(
                black_box(&by_tenant),
                &policy,
                &switchyard::shadow::noise_flag,
            ))
            .expect("report")
        })
    });
    let one = ReportFilter {
        route: Some("cards".into()),
        ..ReportFilter::default()
    };
    g.bench_function("one_route", |b| {
        b.iter(|| {
            rt.block_on(store.report(black_box(&one), &policy, &switchyard::shadow::noise_flag))
                .expect("report")
        })
    });
    g.finish();
}

criterion_group!(benches, report);
criterion_main!(benches);
