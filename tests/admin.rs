//! The admin API end to end over real sockets: auth (401/403), reads that change nothing,
//! the body limit, rollouts that rewrite the config keeping its comments and survive a
//! restart, conflicts with a hand edit, the audit log, reload/rollback, a missing store.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "admin/helpers.rs"]
mod helpers;

use std::time::Duration;

use helpers::*;
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn tokens_gate_the_api_and_metrics_stay_open() {
    let (gw, _l, _n) = admin_gateway("", "").await;
    let before = std::fs::read_to_string(&gw.config).unwrap();

    let none = admin(&gw, "GET", "/admin/status", None, Value::Null).await;
    assert_eq!(none.status, 401);
    assert!(
        none.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(none.json()["kind"], "unauthorized");
    let wrong = admin(
        &gw,
        "GET",
        "/admin/status",
        Some("write-token-x"),
        Value::Null,
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"], "unknown admin token");

    let read = admin(&gw, "GET", "/admin/status", Some(READ), Value::Null).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["generation"], 1);

    let body = json!({"route": "cards", "percent": 50});
    let forbidden = admin(&gw, "POST", "/admin/rollout", Some(READ), body).await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        forbidden.json()["error"],
        "the token \"viewer\" has role read; rollout needs write"
    );
    for path in ["/admin/reload", "/admin/rollback"] {
        let r = admin(&gw, "POST", path, Some(READ), json!({"generation": 1})).await;
        assert_eq!(r.status, 403, "{path}");
    }
    assert_eq!(std::fs::read_to_string(&gw.config).unwrap(), before);
    assert_eq!(gw.gw().live.load().generation, 1);

    let metrics = get(&format!("http://{}/metrics", gw.gw().admin), &[]).await;
    assert_eq!(metrics.status, 200);
    assert!(String::from_utf8_lossy(&metrics.body).contains("switchyard_config_generation"));

    let missing = admin(&gw, "GET", "/admin/nothing", Some(READ), Value::Null).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["kind"], "not_found");
    gw.shutdown().await;
}

#[tokio::test]
async fn without_a_tokens_file_only_metrics_answers() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let gw = TestGateway::start(&config(&legacy.url(), &new.url(), "")).await;
    let r = admin(&gw, "GET", "/admin/status", Some(WRITE), Value::Null).await;
    assert_eq!(r.status, 401);
    assert!(r.json()["error"].as_str().unwrap().contains("tokens_file"));
    let metrics = get(&format!("http://{}/metrics", gw.gw().admin), &[]).await;
    assert_eq!(metrics.status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn reads_change_nothing() {
    let (gw, _l, _n) = admin_gateway("", "").await;
    let text = std::fs::read_to_string(&gw.config).unwrap();
    for path in [
        "/admin/status",
        "/admin/routes",
        "/admin/history",
        "/admin/audit",
        "/admin/routes?route=cards",
    ] {
        for token in [READ, WRITE] {
            let r = admin(&gw, "GET", path, Some(token), Value::Null).await;
            assert_eq!(
                r.status,
                200,
                "{path}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }
    // GET on a write call is not a way in: it is refused, and nothing changes.
    let r = admin(&gw, "GET", "/admin/reload", Some(WRITE), Value::Null).await;
    assert_eq!(r.status, 405);
    assert_eq!(std::fs::read_to_string(&gw.config).unwrap(), text);
    assert_eq!(gw.gw().live.load().generation, 1);
    assert_eq!(gw.gw().live.history().len(), 1);
    let audit = admin(&gw, "GET", "/admin/audit", Some(READ), Value::Null).await;
    assert_eq!(audit.json()["entries"], json!([]));
    gw.shutdown().await;
}

#[tokio::test]
async fn bodies_beyond_max_body_get_413() {
    let (gw, _l, _n) = admin_gateway("max_body = 1024", "").await;
    let reason = "x".repeat(4096);
    let big = json!({"route": "cards", "percent": 20, "reason": reason});
    let r = admin(&gw, "POST", "/admin/rollout", Some(WRITE), big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["kind"], "body_too_large");
    // Chunked, without a declared length: cut off while reading.
    let head = format!(
        "POST /admin/rollout HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {WRITE}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    let mut raw_request = head.into_bytes();
    for _ in 0..4 {
        raw_request.extend_from_slice(format!("400\r\n{}\r\n", "y".repeat(1024)).as_bytes());
    }
    raw_request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw(gw.gw().admin, &raw_request, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(gw.gw().live.load().generation, 1);
    // Under the limit the same call works.
    let ok = json!({"route": "cards", "percent": 20});
    assert_eq!(
        admin(&gw, "POST", "/admin/rollout", Some(WRITE), ok)
            .await
            .status,
        200
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_rollout_moves_the_tenant_rewrites_the_file_and_survives_a_restart() {
    let (mut gw, _l, _n) = admin_gateway("", "").await;
    let cards = gw.url("/api/cards/1");
    assert_eq!(
        get(&cards, &[("x-tenant-id", "globex")]).await.served_by(),
        "legacy"
    );

    let body = json!({"route": "cards", "tenant": "globex", "side": "new", "reason": "pilot"});
    let r = admin(&gw, "POST", "/admin/rollout", Some(WRITE), body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let doc = r.json();
    assert_eq!(doc["result"], "applied");
    assert_eq!(
        (
            doc["previous_generation"].clone(),
            doc["generation"].clone()
        ),
        (json!(1), json!(2))
    );
    assert_eq!(doc["before"]["tenants"], json!(["acme"]));
    assert_eq!(doc["after"]["tenants"], json!(["acme", "globex"]));
    assert_eq!(doc["moves"][0]["to_new"], json!(["globex"]));
    assert_eq!(doc["moves"][0]["to_legacy"], json!([]));

    assert_eq!(
        get(&cards, &[("x-tenant-id", "globex")]).await.served_by(),
        "cards"
    );
    let text = std::fs::read_to_string(&gw.config).unwrap();
    assert!(text.starts_with("# keep-this-comment\n"), "{text}");
    assert!(
        text.contains("tenants = [\"acme\", \"globex\"]\n"),
        "{text}"
    );
    assert!(
        text.contains("exclude = [\"initech\"]  # held back\n"),
        "{text}"
    );

    restart(&mut gw).await;
    assert_eq!(
        gw.gw().live.load().generation,
        3,
        "a fresh process goes on from the stored history"
    );
    assert_eq!(
        get(&gw.url("/api/cards/1"), &[("x-tenant-id", "globex")])
            .await
            .served_by(),
        "cards"
    );

    // The audit entry outlived the process too.
    let audit = admin(
        &gw,
        "GET",
        "/admin/audit?route=cards",
        Some(READ),
        Value::Null,
    )
    .await;
    let entries = audit.json()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e["token_name"], "ops");
    assert_eq!(e["action"], "rollout");
    assert_eq!(e["target"], "cards");
    assert_eq!(e["reason"], "pilot");
    assert_eq!(e["generation"], 2);
    assert_eq!(e["dry_run"], false);
    assert_eq!(
        e["before"],
        json!({"state": "rollout", "percent": 0.0, "tenants": ["acme"], "exclude": ["initech"]})
    );
    assert_eq!(
        e["after"],
        json!({"state": "rollout", "percent": 0.0, "tenants": ["acme", "globex"], "exclude": ["initech"]})
    );
    let now = switchyard::clock::Clock::system().now_ms();
    assert!((now - 60_000..=now).contains(&e["at_ms"].as_i64().unwrap()));
    gw.shutdown().await;
}

#[tokio::test]
async fn percent_state_and_tenant_wide_cutover() {
    let (gw, _l, _n) = admin_gateway("", "").await;
    let r = admin(
        &gw,
        "POST",
        "/admin/rollout",
        Some(WRITE),
        json!({"route": "cards", "percent": 12.5}),
    )
    .await;
    assert_eq!(r.json()["after"]["percent"], 12.5);
    let r = admin(
        &gw,
        "POST",
        "/admin/rollout",
        Some(WRITE),
        json!({"route": "cards", "state": "legacy"}),
    )
    .await;
    assert_eq!(r.json()["after"]["state"], "legacy");
    assert_eq!(
        get(&gw.url("/api/cards/1"), &[("x-tenant-id", "acme")])
            .await
            .served_by(),
        "legacy",
        "kill switch"
    );
    let text = std::fs::read_to_string(&gw.config).unwrap();
    assert!(
        text.contains("percent = 12.5\nstate = \"legacy\"\n"),
        "{text}"
    );

    let body = json!({"route": "cards", "state": "rollout", "tenants_add": ["hooli"]});
    admin(&gw, "POST", "/admin/rollout", Some(WRITE), body).await;
    let cutover =
        json!({"scope": "tenant", "tenant": "umbrella", "side": "new", "reason": "all in"});
    let r = admin(&gw, "POST", "/admin/rollout", Some(WRITE), cutover).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let doc = r.json();
    assert_eq!(doc["target"], "tenant:umbrella");
    assert_eq!(doc["before"], json!({"tenant": "umbrella", "side": null}));
    assert_eq!(doc["after"], json!({"tenant": "umbrella", "side": "new"}));
    assert_eq!(doc["moves"][0]["route"], "cards");
    assert_eq!(
        get(&gw.url("/api/cards/1"), &[("x-tenant-id", "umbrella")])
            .await
            .served_by(),
        "cards"
    );
    assert_eq!(
        get(&gw.url("/api/cards/1"), &[("x-tenant-id", "hooli")])
            .await
            .served_by(),
        "cards"
    );
    let text = std::fs::read_to_string(&gw.config).unwrap();
    assert!(
        text.contains("[tenants.umbrella]\nside = \"new\"\n"),
        "{text}"
    );
    assert_eq!(gw.gw().live.load().generation, 5);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_hand_edit_not_yet_loaded_is_a_conflict_and_nothing_is_lost() {
    let (gw, _l, _n) = admin_gateway("", "").await;
    let hand = std::fs::read_to_string(&gw.config).unwrap().replace(
        "tenants = [\"acme\"]",
        "tenants = [\"acme\", \"wayne\"]  # by hand",
    );
    std::fs::write(&gw.config, &hand).unwrap();

    let body = json!({"route": "cards", "tenant": "globex", "side": "new"});
    let r = admin(&gw, "POST", "/admin/rollout", Some(WRITE), body.clone()).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["kind"], "conflict");
    assert_eq!(
        std::fs::read_to_string(&gw.config).unwrap(),
        hand,
        "the hand edit is intact"
    );
    assert_eq!(gw.gw().live.load().generation, 1);

    let reload = admin(
        &gw,
        "POST",
        "/admin/reload",
        Some(WRITE),
        json!({"reason": "pick up"}),
    )
    .await;
    assert_eq!(reload.json()["result"], "applied");
    let r = admin(&gw, "POST", "/admin/rollout", Some(WRITE), body).await;
    assert_eq!(r.status, 200);
    let text = std::fs::read_to_string(&gw.config).unwrap();
    assert!(
        text.contains("tenants = [\"acme\", \"wayne\", \"globex\"]  # by hand"),
        "{text}"
    );
    let audit = admin(&gw, "GET", "/admin/audit", Some(READ), Value::Null).await;
    let actions: Vec<Value> = audit.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(
        actions,
        [json!("rollout"), json!("reload")],
        "the refused call left no entry"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn an_invalid_change_is_refused_whole() {
    let (gw, _l, _n) = admin_gateway("", "").await;
    let text = std::fs::read_to_string(&gw.config).unwrap();
    // initech is excluded: listing it as well is a contradiction the loader refuses.
    let body = json!({"route": "cards", "tenants_add": ["initech"]});
    let r = admin(&gw, "POST", "/admin/rollout", Some(WRITE), body).await;
    assert_eq!(r.status, 422);
    let doc = r.json();
    assert!(
        doc["errors"][0]
            .as_str()
            .unwrap()
            .contains("both `tenants` and `exclude`"),
        "{doc}"
    );
    for (body, status) in [
        (json!({"route": "cards", "percent": 150}), 400),
        (json!({"route": "nope", "percent": 5}), 404),
        (json!({"route": "cards", "tenant": "acme"}), 400),
        (json!({"route": "cards", "percnt": 5}), 400),
    ] {
        let r = admin(&gw, "POST", "/admin/rollout", Some(WRITE), body.clone()).await;
        assert_eq!(r.status, status, "{body}");
    }
    let r = admin(
        &gw,
        "POST",
        "/admin/rollback",
        Some(WRITE),
        json!({"generation": 9}),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(std::fs::read_to_string(&gw.config).unwrap(), text);
    assert_eq!(gw.gw().live.load().generation, 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn reload_and_rollback_are_audited_with_their_generations() {
    let (gw, _l, _n) = admin_gateway("", "").await;
    let original = std::fs::read_to_string(&gw.config).unwrap();
    std::fs::write(
        &gw.config,
        original.replace("[\"acme\"]", "[\"acme\", \"globex\"]"),
    )
    .unwrap();
    let r = admin(&gw, "POST", "/admin/reload", Some(WRITE), Value::Null).await;
    assert_eq!(r.json()["generation"], 2);
    let same = admin(&gw, "POST", "/admin/reload", Some(WRITE), Value::Null).await;
    assert_eq!(same.json()["result"], "unchanged");
    let r = admin(
        &gw,
        "POST",
        "/admin/rollback",
        Some(WRITE),
        json!({"generation": 1, "reason": "undo"}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["generation"], 3);
    assert_eq!(std::fs::read_to_string(&gw.config).unwrap(), original);
    assert_eq!(
        get(&gw.url("/api/cards/1"), &[("x-tenant-id", "globex")])
            .await
            .served_by(),
        "legacy"
    );

    let history = admin(&gw, "GET", "/admin/history", Some(READ), Value::Null)
        .await
        .json();
    assert_eq!(history["current"], 3);
    let gens: Vec<Value> = history["generations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["generation"].clone())
        .collect();
    assert_eq!(gens, [json!(3), json!(2), json!(1)]);

    let audit = admin(&gw, "GET", "/admin/audit?limit=2", Some(READ), Value::Null)
        .await
        .json();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["action"], "rollback");
    assert_eq!(entries[0]["reason"], "undo");
    assert_eq!(entries[0]["before"]["generation"], 2);
    assert_eq!(entries[0]["after"]["generation"], 3);
    assert_eq!(entries[0]["after"]["restored"], 1);
    assert_eq!(entries[1]["action"], "reload");
    assert_eq!(entries[1]["after"]["result"], "unchanged");
    let by_action = admin(
        &gw,
        "GET",
        "/admin/audit?action=reload&since=1h",
        Some(READ),
        Value::Null,
    )
    .await
    .json();
    assert_eq!(by_action["entries"].as_array().unwrap().len(), 2);
    let bad = admin(
        &gw,
        "GET",
        "/admin/audit?since=soon",
        Some(READ),
        Value::Null,
    )
    .await;
    assert_eq!(bad.status, 400);
    gw.shutdown().await;
}

#[tokio::test]
async fn without_a_store_writes_are_refused_and_the_rest_works() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    // The store's directory is a regular file: the store cannot be opened.
    let text = admin_config(
        &legacy.url(),
        &new.url(),
        "",
        "[store]\nurl = \"sqlite://blocker/audit.db\"",
    );
    let gw = TestGateway::start_with(
        &text,
        &[("tokens.toml", tokens_file().as_bytes()), ("blocker", b"")],
        false,
    )
    .await;
    let status = admin(&gw, "GET", "/admin/status", Some(READ), Value::Null).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["audit_store"], "unavailable");
    let body = json!({"route": "cards", "tenant": "globex", "side": "new"});
    let r = admin(&gw, "POST", "/admin/rollout", Some(WRITE), body).await;
    assert_eq!(r.status, 503);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("audit store unavailable")
    );
    assert_eq!(
        admin(&gw, "GET", "/admin/audit", Some(READ), Value::Null)
            .await
            .status,
        503
    );
    assert_eq!(
        get(&gw.url("/api/cards/1"), &[("x-tenant-id", "acme")])
            .await
            .served_by(),
        "cards"
    );
    assert_eq!(gw.gw().live.load().generation, 1);
    gw.shutdown().await;
}
