//! Guarded rollouts end to end: real loopback upstreams, the real gateway over TCP, the guard
//! driven tick by tick on a manual clock (the store's connection pool keeps real time).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::*;
use switchyard::clock::{Clock, ManualTime};
use switchyard::gateway::Options;
use switchyard::rules::RouteState;
use switchyard::store::AuditFilter;

const SCHEDULE: &str = r#"guard = { max_error_rate = 0.05, window = "1m", min_samples = 20 }
rollout = { steps = [1, 5, 25, 50, 100], bake = "10m" }"#;

async fn start(legacy: &Upstream, new: &Upstream, percent: u32) -> (TestGateway, Arc<ManualTime>) {
    let (clock, hand) = Clock::manual(1_800_000_000_000);
    let extra = format!("percent = {percent}\n{SCHEDULE}");
    let gw = TestGateway::start_opts(
        &config(&legacy.url(), &new.url(), &extra),
        &[],
        Options {
            clock: Some(clock),
            ..Options::default()
        },
    )
    .await;
    (gw, hand)
}

fn route(gw: &TestGateway) -> (RouteState, u32, bool) {
    let snapshot = gw.gw().live.load();
    let r = snapshot.rules.route("cards").unwrap();
    (r.state, r.percent_bp, r.guard.as_ref().unwrap().tripped)
}

/// Send `n` requests of tenant `acme` (listed on the route, so served by new while the route
/// is in rollout); the sides that answered them.
async fn traffic(gw: &TestGateway, n: usize) -> Vec<String> {
    let mut sides = Vec::new();
    for _ in 0..n {
        let a = get(&gw.url("/api/cards/1"), &[("x-tenant-id", "acme")]).await;
        assert_eq!(a.status, 200, "a client request failed");
        sides.push(a.served_by());
    }
    sides
}

#[tokio::test]
async fn a_new_side_failing_at_step_25_trips_back_to_legacy_without_failed_requests() {
    let legacy = Upstream::json("legacy").await;
    let failing = Arc::new(AtomicBool::new(false));
    let flag = failing.clone();
    let new = Upstream::start(move |req| {
        let flag = flag.clone();
        async move {
            let mut answer = json_answer("cards", req).await;
            if flag.load(Ordering::SeqCst) {
                *answer.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            }
            answer
        }
    })
    .await;
    let (gw, hand) = start(&legacy, &new, 25).await;
    let guard = gw.gw().guard.clone();
    guard.tick().await;
    assert!(traffic(&gw, 40).await.iter().all(|s| s == "cards"));
    hand.advance(Duration::from_secs(5));
    guard.tick().await;
    assert_eq!(route(&gw), (RouteState::Rollout, 2500, false));

    // The new side starts failing: fallback answers every request from legacy meanwhile.
    failing.store(true, Ordering::SeqCst);
    assert!(traffic(&gw, 40).await.iter().all(|s| s == "legacy"));
    hand.advance(Duration::from_secs(5));
    guard.tick().await;
    // Well within one window (1m): tripped, the route is on legacy.
    assert_eq!(route(&gw), (RouteState::Legacy, 2500, true));
    let hits = new.hits();
    assert!(traffic(&gw, 20).await.iter().all(|s| s == "legacy"));
    assert_eq!(new.hits(), hits, "a tripped route sends nothing to new");

    // The trip is in the config file, the audit log (with its evidence) and the metrics.
    let text = std::fs::read_to_string(&gw.config).unwrap();
    assert!(text.contains("tripped = true"), "{text}");
    assert!(text.contains("state = \"legacy\""), "{text}");
    let audit = gw
        .gw()
        .store
        .as_ref()
        .unwrap()
        .list_audit(&AuditFilter::default())
        .await
        .unwrap();
    let trip = audit.iter().find(|e| e.action == "guard_trip").unwrap();
    assert_eq!(trip.token_name, "guard");
    assert_eq!(trip.target, "cards");
    let evidence = &trip.after["evidence"];
    // The window holds both halves: 40 answered by new, 40 failed and retried on legacy.
    assert_eq!(evidence["requests"], 80);
    assert_eq!(evidence["failed"], 40);
    assert_eq!(evidence["error_rate"], 0.5);
    assert_eq!(evidence["breached"][0]["figure"], "error_rate");
    assert!(trip.reason.as_deref().unwrap().contains("error_rate"));
    assert!(
        gw.gw()
            .metrics
            .render()
            .contains("switchyard_guard_tripped_total{route=\"cards\"} 1")
    );
    let status = guard.status(&gw.gw().live.load());
    assert_eq!(status[0].state, switchyard::api::GuardState::Tripped);
    assert_eq!(
        status[0].schedule.as_ref().unwrap().hold.as_deref(),
        Some("the guard tripped; `switchyard guard rearm` re-arms it")
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_clean_new_side_walks_the_whole_schedule_to_100() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let (gw, hand) = start(&legacy, &new, 1).await;
    let guard = gw.gw().guard.clone();
    guard.tick().await;
    let mut previous = 100;
    for expected in [500, 2500, 5000, 10_000] {
        hand.advance(Duration::from_secs(9 * 60));
        traffic(&gw, 25).await;
        guard.tick().await;
        assert_eq!(route(&gw).1, previous, "still baking");
        previous = expected;
        hand.advance(Duration::from_secs(60));
        guard.tick().await;
        assert_eq!(route(&gw), (RouteState::Rollout, expected, false));
    }
    hand.advance(Duration::from_secs(3600));
    guard.tick().await;
    assert_eq!(route(&gw), (RouteState::Rollout, 10_000, false));
    let text = std::fs::read_to_string(&gw.config).unwrap();
    assert!(text.contains("percent = 100"), "{text}");
    let status = guard.status(&gw.gw().live.load());
    let schedule = status[0].schedule.as_ref().unwrap();
    assert_eq!((schedule.step, schedule.next_percent), (5, None));
    gw.shutdown().await;
}

#[path = "admin/helpers.rs"]
mod helpers;

use serde_json::{Value, json};

/// An upstream answering `{"price": price}` to every request.
async fn priced(price: u32) -> Upstream {
    Upstream::start(move |_req| async move {
        let mut answer = http::Response::new(switchyard::body::full(
            json!({ "price": price }).to_string(),
        ));
        answer.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        answer
    })
    .await
}

#[tokio::test]
async fn the_gate_refuses_a_cutover_while_not_ready_and_operators_steer_the_schedule() {
    let legacy = priced(10).await;
    let new = priced(11).await;
    let tail = format!("shadow = {{ percent = 100, self_check_percent = 100 }}\n{SCHEDULE}");
    let text = helpers::admin_config(&legacy.url(), &new.url(), "", &tail);
    let tokens = helpers::tokens_file();
    let gw = TestGateway::start_with(&text, &[("tokens.toml", tokens.as_bytes())], false).await;
    let call = |method: &'static str, path: &'static str, body: Value| {
        let gw = &gw;
        async move { helpers::admin(gw, method, path, Some(helpers::WRITE), body).await }
    };
    for _ in 0..60 {
        get(&gw.url("/api/cards/1"), &[("x-tenant-id", "acme")]).await;
    }
    let ready = eventually(Duration::from_secs(10), || async {
        let r = call("GET", "/admin/shadow/report?route=cards", Value::Null).await;
        r.json()["routes"][0]["verdict"] == "not_ready"
    })
    .await;
    assert!(ready, "the shadow report never said not_ready");
    let report = call("GET", "/admin/shadow/report?route=cards", Value::Null).await;
    assert_eq!(report.json()["routes"][0]["guard"]["state"], "armed");

    // The promotion gate.
    let cut = json!({"route": "cards", "state": "new"});
    let refused = call("POST", "/admin/rollout", cut.clone()).await;
    assert_eq!(refused.status, 409, "{:?}", refused.json());
    assert_eq!(refused.json()["kind"], "not_ready");
    assert_eq!(route(&gw).0, RouteState::Rollout);
    let forced = call(
        "POST",
        "/admin/rollout",
        json!({"route": "cards", "state": "new", "force": true, "reason": "deadline"}),
    )
    .await;
    assert_eq!(forced.status, 200, "{:?}", forced.json());
    assert_eq!(route(&gw).0, RouteState::New);
    let audit = call("GET", "/admin/audit?action=rollout", Value::Null).await;
    let entry = &audit.json()["entries"][0];
    assert_eq!(entry["after"]["forced"], true, "{entry:#}");
    assert!(entry["reason"].as_str().unwrap().contains("forced"));

    // Pause, resume, abort and re-arm, each persisted and audited.
    let back = json!({"route": "cards", "state": "rollout"});
    assert_eq!(call("POST", "/admin/rollout", back).await.status, 200);
    let pause = call(
        "POST",
        "/admin/schedule",
        json!({"route": "cards", "action": "pause"}),
    )
    .await;
    assert_eq!(pause.status, 200, "{:?}", pause.json());
    assert_eq!(pause.json()["action"], "schedule_pause");
    assert!(
        std::fs::read_to_string(&gw.config)
            .unwrap()
            .contains("paused = true")
    );
    let status = call("GET", "/admin/status", Value::Null).await.json();
    assert_eq!(status["guards"][0]["state"], "paused", "{status:#}");
    assert_eq!(status["guards"][0]["schedule"]["hold"], "paused");
    let resume = call(
        "POST",
        "/admin/schedule",
        json!({"route": "cards", "action": "resume"}),
    )
    .await;
    assert_eq!(resume.status, 200);
    assert!(
        !std::fs::read_to_string(&gw.config)
            .unwrap()
            .contains("paused = true")
    );
    let abort = call(
        "POST",
        "/admin/schedule",
        json!({"route": "cards", "action": "abort"}),
    )
    .await;
    assert_eq!(abort.status, 200);
    assert_eq!(route(&gw), (RouteState::Legacy, 0, false));
    let rearm = call("POST", "/admin/guard/rearm", json!({"route": "cards"})).await;
    assert_eq!(rearm.status, 200);
    assert_eq!(rearm.json()["changed"], false);
    let none = call("POST", "/admin/guard/rearm", json!({"route": "nope"})).await;
    assert_eq!(none.status, 404);
    gw.shutdown().await;
}
