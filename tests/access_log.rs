//! The JSON access log: one line per request with the documented fields, tenant names only
//! when the config allows them, no query strings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::*;

/// The access log's lines once `n` are there.
async fn lines(gw: &TestGateway, n: usize) -> Vec<serde_json::Value> {
    let path = gw.dir.path().join("access.log");
    let path2 = path.clone();
    assert!(
        eventually(Duration::from_secs(10), move || {
            let path = path2.clone();
            async move {
                std::fs::read_to_string(&path).is_ok_and(|text| text.lines().count() >= n)
            }
        })
        .await,
        "fewer than {n} access log lines"
    );
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

#[tokio::test]
async fn one_json_line_per_request_without_tenants_by_default() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let cfg =
        config(&legacy.url(), &new.url(), "") + "\n[telemetry]\naccess_log = \"access.log\"\n";
    let cfg = cfg.replace(
        "[default]\nupstream = \"legacy\"",
        &format!("[upstreams.dead]\norigins = [\"{dead_url}\"]\n\n[default]\nupstream = \"dead\""),
    );
    let gw = TestGateway::start(&cfg).await;
    let a = get(
        &gw.url("/api/cards/7?token=secret"),
        &[("x-tenant-id", "acme"), ("x-request-id", "req-1")],
    )
    .await;
    assert_eq!(a.status, 200);
    let b = get(&gw.url("/nowhere"), &[]).await;
    assert_eq!(b.status, 502);

    let log = lines(&gw, 2).await;
    let first = log.iter().find(|l| l["request_id"] == "req-1").unwrap();
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/api/cards/7", "no query string: {first}");
    assert_eq!(first["route"], "cards");
    assert_eq!(first["side"], "new");
    assert_eq!(first["reason"], "tenant_listed");
    assert_eq!(first["upstream"], "cards");
    assert_eq!(first["status"], 200);
    assert_eq!(first["fallback"], false);
    assert_eq!(first["generation"], 1);
    assert!(first["duration_ms"].as_f64().is_some());
    assert!(first["ts"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(first["client"], "127.0.0.1");
    assert!(
        first.get("tenant").is_none(),
        "tenant names are opt-in: {first}"
    );
    let text = std::fs::read_to_string(gw.dir.path().join("access.log")).unwrap();
    assert!(!text.contains("secret"));

    let second = log.iter().find(|l| l["path"] == "/nowhere").unwrap();
    assert_eq!(second["status"], 502);
    assert_eq!(second["route"], "default");
    assert_eq!(second["error"], "connect");
    gw.shutdown().await;
}

#[tokio::test]
async fn tenant_names_appear_when_the_config_allows_them() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let cfg = config(&legacy.url(), &new.url(), "")
        + "\n[telemetry]\naccess_log = \"access.log\"\naccess_log_tenants = true\n";
    let gw = TestGateway::start(&cfg).await;
    get(&gw.url("/api/cards/1"), &[("x-tenant-id", "globex")]).await;
    let log = lines(&gw, 1).await;
    assert_eq!(log[0]["tenant"], "globex");
    gw.shutdown().await;
}
