//! Learned noise end to end: two services that agree on everything but stamp a fresh id and
//! time into every answer, behind the real gateway, read back through the admin API. The
//! report must tell the truth once the noise is learned — including for the comparisons made
//! while it was being learned — and still catch a rare real difference.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "admin/helpers.rs"]
mod helpers;

#[path = "shadow_report/workload.rs"]
mod workload;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use helpers::*;
use serde_json::{Value, json};
use support::*;
use switchyard::body;
use workload::report_config;

/// Shadowed requests per run: with one self-check in five, about 60 self-checks, three times
/// what learning needs.
const REQUESTS: u64 = 300;

/// A service answering `{"price", "request_id", "at"}` with a fresh id and time on every
/// call, as `content_type`. `price(n)` gives the price of its n-th answer (n from 0); every
/// answer whose price is not 10 is counted in `odd`.
async fn stamping<F>(
    side: &'static str,
    content_type: &'static str,
    price: F,
) -> (Upstream, Arc<AtomicU64>)
where
    F: Fn(u64) -> u32 + Send + Sync + 'static,
{
    let n = Arc::new(AtomicU64::new(0));
    let odd = Arc::new(AtomicU64::new(0));
    let price = Arc::new(price);
    let counted = odd.clone();
    let upstream = Upstream::start(move |_req| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        let p = price(i);
        if p != 10 {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        async move {
            let doc = json!({
                "price": p,
                "request_id": format!("{side}-{:032x}", rand::random::<u128>()),
                "at": switchyard::clock::Clock::system().now_ms() * 1000 + i as i64,
            });
            let mut r = http::Response::new(body::full(doc.to_string()));
            r.headers_mut()
                .insert("content-type", content_type.parse().unwrap());
            r
        }
    })
    .await;
    (upstream, odd)
}

/// A gateway shadowing every GET on `cards` to the new side, one self-check in five, with
/// `compare` as given.
async fn gateway(legacy: &Upstream, new: &Upstream, compare: &str) -> TestGateway {
    let route = format!("shadow = {{ percent = 100, self_check_percent = 20 }}\n{compare}");
    let text = report_config(&legacy.url(), &new.url(), &route, "");
    let tokens = tokens_file();
    TestGateway::start_with(&text, &[("tokens.toml", tokens.as_bytes())], false).await
}

/// Send `requests` requests (tenant globex: legacy serves, new is shadowed), wait for every
/// comparison to be stored, and read the route's report.
async fn run(gw: &TestGateway, requests: u64) -> Value {
    for i in 0..requests {
        let a = get(
            &gw.url(&format!("/api/cards/{i}")),
            &[("x-tenant-id", "globex")],
        )
        .await;
        assert_eq!(a.status, 200);
    }
    gw.gw().proxy.shadow.flush(Duration::from_secs(20)).await;
    let r = admin(
        gw,
        "GET",
        "/admin/shadow/report?route=cards",
        Some(READ),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["routes"][0].clone()
}

fn class<'a>(route: &'a Value, pattern: &str) -> &'a str {
    route["top_paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pattern"] == pattern)
        .and_then(|p| p["classification"].as_str())
        .unwrap_or_else(|| panic!("{pattern} not in {route:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learned_noise_alone_reads_its_true_parity_and_ready() {
    let (legacy, _) = stamping("legacy", "application/json", |_| 10).await;
    let (new, _) = stamping("new", "application/json", |_| 10).await;
    let gw = gateway(&legacy, &new, "").await;
    let route = run(&gw, REQUESTS).await;

    // Hand count: every request shadowed once; every extra call to legacy was a self-check.
    assert_eq!(new.hits() as u64, REQUESTS);
    let self_checks = legacy.hits() as u64 - REQUESTS;
    assert!(self_checks >= 20, "{self_checks} self-checks");
    for (key, want) in [
        ("compared", REQUESTS),
        ("matched", 0),
        ("mismatched", 0),
        ("noise_only", REQUESTS),
        ("errors", 0),
        ("skipped", 0),
        ("self_checked", self_checks),
    ] {
        assert_eq!(route[key], want, "{key}: {route:#}");
    }
    assert_eq!(route["parity"]["percent"], 100.0, "{route:#}");
    assert_eq!(route["verdict"], "ready", "{route:#}");
    assert_eq!(class(&route, "/request_id"), "noise");
    assert_eq!(class(&route, "/at"), "noise");
    // The live pipeline called the first comparisons mismatches before it had learned; the
    // report does not keep that verdict.
    let metrics = gw.gw().metrics.render();
    assert!(
        metrics.contains("switchyard_shadow_total{route=\"cards\",result=\"mismatch\"}"),
        "{metrics}"
    );
    // The request ids are offered as an ignore rule.
    let suggested: Vec<&str> = route["suggested_ignore"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["ignore"].as_str())
        .collect();
    assert!(suggested.contains(&"/request_id"), "{route:#}");
    gw.shutdown().await;

    // The same traffic with the two fields ignored reads the same parity.
    let (legacy, _) = stamping("legacy", "application/json", |_| 10).await;
    let (new, _) = stamping("new", "application/json", |_| 10).await;
    let gw = gateway(
        &legacy,
        &new,
        r#"compare = { ignore = ["/request_id", "/at"] }"#,
    )
    .await;
    let ignored = run(&gw, REQUESTS).await;
    assert_eq!(ignored["matched"], REQUESTS, "{ignored:#}");
    assert_eq!(ignored["verdict"], "ready");
    let (a, b) = (
        route["parity"]["percent"].as_f64().unwrap(),
        ignored["parity"]["percent"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 0.5, "{a} vs {b}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rare_real_difference_stays_real_even_in_json_sent_as_text() {
    // JSON sent as text/plain: compared as JSON all the same (sniffed), so the planted /price
    // difference on 1 answer in 200 is a path of its own, not one more `body` text difference.
    let (legacy, _) = stamping("legacy", "text/plain", |_| 10).await;
    let (new, planted) = stamping(
        "new",
        "text/plain",
        |n| if n % 200 == 100 { 11 } else { 10 },
    )
    .await;
    let gw = gateway(&legacy, &new, "").await;
    let requests = 400;
    let route = run(&gw, requests).await;

    let planted = planted.load(Ordering::SeqCst);
    assert_eq!(planted, 2, "answers 100 and 300 of the new side");
    assert_eq!(route["compared"], requests, "{route:#}");
    assert_eq!(route["mismatched"], planted, "{route:#}");
    assert_eq!(route["noise_only"], requests - planted, "{route:#}");
    assert_eq!(route["parity"]["percent"], 99.5, "{route:#}");
    assert_eq!(class(&route, "/price"), "real");
    assert_eq!(class(&route, "/request_id"), "noise");
    assert_eq!(route["verdict"], "not_ready", "{route:#}");
    assert!(
        route["verdict_reason"].as_str().unwrap().contains("/price"),
        "{route:#}"
    );

    // The sample view says the bodies were compared as JSON although sent as text.
    let price = route["top_paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pattern"] == "/price")
        .unwrap();
    let id = price["sample_ids"][0].as_i64().unwrap();
    let s = admin(
        &gw,
        "GET",
        &format!("/admin/shadow/samples/{id}"),
        Some(READ),
        Value::Null,
    )
    .await
    .json();
    assert_eq!(s["body_compared_as"], "json_sniffed", "{s:#}");
    assert!(
        s["body_comparison"]
            .as_str()
            .unwrap()
            .starts_with("compared as JSON (sniffed"),
        "{s:#}"
    );
    gw.shutdown().await;
}
