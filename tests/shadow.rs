//! Shadow traffic end to end: real loopback upstreams that differ in known ways, the real
//! gateway, results read back from the store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use support::*;
use switchyard::body;
use switchyard::store::{Report, ReportFilter, ReportPolicy, Store};

/// An upstream answering a fixed JSON document, with a hook to vary it per request number.
async fn doc_upstream<F>(make: F) -> Upstream
where
    F: Fn(u64) -> serde_json::Value + Send + Sync + 'static,
{
    let n = Arc::new(AtomicU64::new(0));
    let make = Arc::new(make);
    Upstream::start(move |req| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        let make = make.clone();
        async move {
            let _ = req;
            let mut r = http::Response::new(body::full(make(i).to_string()));
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            r
        }
    })
    .await
}

/// An upstream whose answers wait until the returned `Notify` is notified (then `{}`).
async fn stuck_upstream() -> (Arc<tokio::sync::Notify>, Upstream) {
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = release.clone();
    let upstream = Upstream::start(move |_req| {
        let gate = gate.clone();
        async move {
            gate.notified().await;
            http::Response::new(body::full("{}"))
        }
    })
    .await;
    (release, upstream)
}

fn shadow_config(legacy: &str, new: &str, extra: &str) -> String {
    config(legacy, new, &format!("{extra}\n")).replace(
        "[default]",
        "[store]\nurl = \"sqlite://shadow.db\"\n\n[default]",
    )
}

async fn report(gw: &TestGateway) -> Report {
    gw.gw().proxy.shadow.flush(Duration::from_secs(10)).await;
    let store = Store::open("sqlite://shadow.db", gw.dir.path())
        .await
        .unwrap();
    store
        .report(
            &ReportFilter {
                route: Some("cards".into()),
                ..ReportFilter::default()
            },
            &ReportPolicy::default(),
            &switchyard::shadow::noise_flag,
        )
        .await
        .unwrap()
}

fn report_json(r: &Report) -> serde_json::Value {
    serde_json::to_value(r).unwrap()
}

/// Every (pattern, kind, classification) in the report's first route.
fn paths(r: &serde_json::Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = r["routes"][0]["top_paths"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p["pattern"].as_str().unwrap_or("").to_string(),
                p["kind"].as_str().unwrap_or("").to_string(),
                p["classification"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_differences_are_reported_with_their_kinds() {
    let legacy = doc_upstream(|_| {
        serde_json::json!({"id": 1, "price": 10, "tags": ["a", "b"], "owner": {"name": "x"}, "items": [{"price": 1}, {"price": 2}]})
    })
    .await;
    let new = doc_upstream(|_| {
        serde_json::json!({"id": 1.0, "price": "10", "tags": ["b", "a"], "owner": {}, "extra": true, "items": [{"price": 1}, {"price": 3}]})
    })
    .await;
    let gw = TestGateway::start(&shadow_config(
        &legacy.url(),
        &new.url(),
        r#"shadow = { percent = 100, self_check_percent = 0 }
compare = { unordered = ["/tags"] }"#,
    ))
    .await;
    for i in 0..20 {
        let a = get(
            &gw.url(&format!("/api/cards/{i}")),
            &[("x-tenant-id", "globex")],
        )
        .await;
        assert_eq!(a.status, 200);
        assert_eq!(
            a.json()["price"],
            10,
            "the client gets the primary (legacy) answer"
        );
    }
    let r = report_json(&report(&gw).await);
    let route = &r["routes"][0];
    assert_eq!(route["compared"], 20, "{r:#}");
    assert_eq!(route["mismatched"], 20);
    let found: Vec<(String, String)> = paths(&r).into_iter().map(|(p, k, _)| (p, k)).collect();
    assert_eq!(
        found,
        vec![
            ("/extra".to_string(), "extra".to_string()),
            ("/items/*/price".to_string(), "value".to_string()),
            ("/owner/name".to_string(), "missing".to_string()),
            ("/price".to_string(), "type".to_string()),
        ],
        "1 vs 1.0 is equal, /tags is unordered: {r:#}"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_ids_are_noise_and_a_rare_real_difference_is_real() {
    // Both sides stamp a fresh id and time into every answer (noise). The new side also gets
    // /price wrong on one request in 500: rare, but never seen when legacy answers twice.
    let legacy = doc_upstream(
        |i| serde_json::json!({"price": 10, "request_id": format!("L{i:x}-{}", i * 7919), "at": i}),
    )
    .await;
    let new = doc_upstream(|i| {
        serde_json::json!({"price": if i == 100 { 11 } else { 10 }, "request_id": format!("N{i:x}"), "at": i + 1})
    })
    .await;
    let gw = TestGateway::start(&shadow_config(
        &legacy.url(),
        &new.url(),
        "shadow = { percent = 100, self_check_percent = 20 }",
    ))
    .await;
    for i in 0..250 {
        let a = get(
            &gw.url(&format!("/api/cards/{i}")),
            &[("x-tenant-id", "globex")],
        )
        .await;
        assert_eq!(a.status, 200);
    }
    let r = report_json(&report(&gw).await);
    let classified = paths(&r);
    let of = |p: &str| {
        classified
            .iter()
            .find(|(pat, _, _)| pat == p)
            .map(|(_, _, c)| c.clone())
    };
    assert_eq!(of("/request_id").as_deref(), Some("noise"), "{r:#}");
    assert_eq!(of("/at").as_deref(), Some("noise"), "{r:#}");
    assert_eq!(of("/price").as_deref(), Some("real"), "{r:#}");
    assert_eq!(r["routes"][0]["verdict"], "not_ready");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_dead_shadow_sides_do_not_touch_the_primary() {
    let legacy = Upstream::json("legacy").await;
    // The shadow side answers nothing until every primary has been answered: a primary that
    // waited on its shadow copy would never finish (no timing assumption involved).
    let (release, stuck) = stuck_upstream().await;
    let gw = TestGateway::start(&shadow_config(
        &legacy.url(),
        &stuck.url(),
        r#"shadow = { percent = 100, timeout = "5s" }"#,
    ))
    .await;
    let primaries = async {
        for i in 0..20 {
            let a = get(
                &gw.url(&format!("/api/cards/{i}")),
                &[("x-tenant-id", "globex")],
            )
            .await;
            assert_eq!(a.served_by(), "legacy");
        }
    };
    tokio::time::timeout(Duration::from_secs(20), primaries)
        .await
        .expect("a primary waited on a shadow side that had not answered");
    assert!(stuck.hits() > 0, "no shadow copy was sent");
    release.notify_waiters();
    gw.shutdown().await;

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let gw = TestGateway::start(&shadow_config(
        &legacy.url(),
        &dead_url,
        "shadow = { percent = 100 }",
    ))
    .await;
    for i in 0..10 {
        let a = get(
            &gw.url(&format!("/api/cards/{i}")),
            &[("x-tenant-id", "globex")],
        )
        .await;
        assert_eq!(a.status, 200);
        assert_eq!(a.served_by(), "legacy");
    }
    let r = report_json(&report(&gw).await);
    assert_eq!(r["routes"][0]["errors"], 10, "{r:#}");
    let metrics = gw.gw().metrics.render();
    assert!(
        metrics.contains("switchyard_shadow_total{route=\"cards\",result=\"error\"} 10"),
        "{metrics}"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_are_not_shadowed_unless_opted_in_and_loops_are_guarded() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let gw = TestGateway::start(&shadow_config(
        &legacy.url(),
        &new.url(),
        "shadow = { percent = 100 }",
    ))
    .await;
    for _ in 0..5 {
        send(
            "POST",
            &gw.url("/api/cards/1"),
            &[("x-tenant-id", "globex")],
            "x",
        )
        .await;
    }
    get(
        &gw.url("/api/cards/1"),
        &[("x-tenant-id", "globex"), ("x-switchyard-shadow", "1")],
    )
    .await;
    gw.gw().proxy.shadow.flush(Duration::from_secs(5)).await;
    assert_eq!(new.hits(), 0, "a POST or a shadow copy was shadowed");
    gw.shutdown().await;

    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let gw = TestGateway::start(&shadow_config(
        &legacy.url(),
        &new.url(),
        r#"methods = ["GET", "POST"]
shadow = { percent = 100, methods = ["POST"], unsafe_methods = true, self_check_percent = 0 }"#,
    ))
    .await;
    send(
        "POST",
        &gw.url("/api/cards/1"),
        &[("x-tenant-id", "globex")],
        "x",
    )
    .await;
    gw.gw().proxy.shadow.flush(Duration::from_secs(5)).await;
    assert_eq!(new.hits(), 1, "an opted-in POST was not shadowed");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_reach_the_store() {
    let legacy = doc_upstream(|_| serde_json::json!({"owner": {"email": "a@x.io"}, "v": 1})).await;
    let new = doc_upstream(|_| serde_json::json!({"owner": {"email": "b@x.io"}, "v": 2})).await;
    let gw = TestGateway::start(&shadow_config(
        &legacy.url(),
        &new.url(),
        r#"shadow = { percent = 100 }
compare = { redact = ["/owner/email"] }"#,
    ))
    .await;
    for i in 0..5 {
        get(
            &gw.url(&format!("/api/cards/{i}")),
            &[
                ("x-tenant-id", "globex"),
                ("authorization", "Bearer SECRET-TOKEN-123"),
                ("cookie", "session=SECRET-COOKIE-456"),
            ],
        )
        .await;
    }
    let r = report_json(&report(&gw).await);
    assert!(
        paths(&r).iter().any(|(p, _, _)| p == "/owner/email"),
        "{r:#}"
    );
    gw.gw().proxy.shadow.flush(Duration::from_secs(5)).await;
    // Read every byte the database holds (WAL included).
    let mut all = Vec::new();
    for entry in std::fs::read_dir(gw.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("shadow.db") {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    let text = String::from_utf8_lossy(&all);
    for secret in ["SECRET-TOKEN-123", "SECRET-COOKIE-456", "a@x.io", "b@x.io"] {
        assert!(!text.contains(secret), "{secret} reached the store");
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_skips_and_counts_instead_of_waiting() {
    let legacy = Upstream::json("legacy").await;
    // A shadow side that does not answer until released: the queue (2) and the one job in
    // flight fill at once, and every later request must be skipped, not queued behind them.
    let (release, stuck) = stuck_upstream().await;
    let cfg = shadow_config(&legacy.url(), &stuck.url(), "shadow = { percent = 100 }").replace(
        "[store]",
        "[shadow]\nqueue = 2\nmax_in_flight = 1\n\n[store]",
    );
    let gw = TestGateway::start(&cfg).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let url = gw.url(&format!("/api/cards/{i}"));
        tasks.push(tokio::spawn(async move {
            get(&url, &[("x-tenant-id", "globex")]).await.status
        }));
    }
    let primaries = async {
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), primaries)
        .await
        .expect("primaries waited on the shadow queue");
    release.notify_waiters();
    let metrics = gw.gw().metrics.render();
    let skipped: u64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("switchyard_shadow_skipped_total{route=\"cards\",reason=\"queue_full\"}")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0);
    assert!(
        skipped >= 30,
        "expected most of 40 to be skipped with queue 2 / in-flight 1, got {skipped}\n{metrics}"
    );
    gw.shutdown().await;
}
