//! The core gateway end to end: real loopback upstreams, the real gateway over TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::*;

#[tokio::test]
async fn routes_by_tenant_and_falls_through_to_default() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let gw = TestGateway::start(&config(&legacy.url(), &new.url(), "")).await;

    let a = get(&gw.url("/api/cards/1"), &[("x-tenant-id", "acme")]).await;
    assert_eq!(a.served_by(), "cards");
    assert_eq!(a.header("x-switchyard-side"), Some("new"));
    assert_eq!(a.header("x-switchyard-route"), Some("cards"));
    assert_eq!(a.header("x-switchyard-generation"), Some("1"));

    let i = get(&gw.url("/api/cards/1"), &[("x-tenant-id", "initech")]).await;
    assert_eq!(i.served_by(), "legacy");

    let h = get(&gw.url("/api/cards"), &[("host", "acme.app.example.com")]).await;
    assert_eq!(h.served_by(), "cards", "host-derived tenant");

    let d = get(&gw.url("/other"), &[("x-tenant-id", "acme")]).await;
    assert_eq!(d.served_by(), "legacy");
    assert_eq!(d.header("x-switchyard-route"), Some("default"));
    gw.shutdown().await;
}

#[tokio::test]
async fn forwarding_headers_and_hop_by_hop_hygiene() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let gw = TestGateway::start(&config(
        &legacy.url(),
        &new.url(),
        r#"rewrite = { strip_prefix = "/api" }"#,
    ))
    .await;
    let a = get(
        &gw.url("/api/cards/7?x=1"),
        &[
            ("x-tenant-id", "acme"),
            ("connection", "x-private"),
            ("x-private", "secret"),
            ("x-request-id", "req-123"),
            ("x-switchyard-force", "legacy"),
        ],
    )
    .await;
    let doc = a.json();
    assert_eq!(doc["path"], "/cards/7?x=1", "strip_prefix on the new side");
    let h = &doc["headers"];
    assert!(
        h.get("x-private").is_none(),
        "Connection-named header forwarded"
    );
    assert!(
        h.get("x-switchyard-force").is_none(),
        "force header forwarded"
    );
    assert_eq!(h["x-request-id"], "req-123");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(h["via"].as_str().unwrap().contains("switchyard"));
    assert_eq!(a.header("x-request-id"), Some("req-123"));

    // Legacy side: no rewrite, a generated request id.
    let l = get(&gw.url("/api/cards/7"), &[("x-tenant-id", "initech")]).await;
    assert_eq!(l.json()["path"], "/api/cards/7");
    assert_eq!(l.header("x-request-id").map(str::len), Some(32));
    gw.shutdown().await;
}

#[tokio::test]
async fn falls_back_to_legacy_when_new_is_down_or_failing() {
    let legacy = Upstream::json("legacy").await;
    let failing = Upstream::status(503).await;
    let gw = TestGateway::start(&config(&legacy.url(), &failing.url(), "")).await;
    let a = get(&gw.url("/api/cards/1"), &[("x-tenant-id", "acme")]).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.served_by(), "legacy");
    assert_eq!(a.header("x-switchyard-fallback"), Some("1"));
    assert_eq!(failing.hits(), 1);

    // A POST with a small body is buffered and retried too, body intact.
    let p = send(
        "POST",
        &gw.url("/api/cards/1"),
        &[("x-tenant-id", "acme")],
        "hello",
    )
    .await;
    assert_eq!(p.served_by(), "legacy");
    assert_eq!(p.json()["received"], 5);
    gw.shutdown().await;

    // New side refusing connections.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let gw = TestGateway::start(&config(&legacy.url(), &dead_url, "")).await;
    let a = get(&gw.url("/api/cards/1"), &[("x-tenant-id", "acme")]).await;
    assert_eq!(a.served_by(), "legacy");
    let metrics = gw.gw().metrics.render();
    assert!(
        metrics.contains("switchyard_fallbacks_total{route=\"cards\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_upstream_errors_total{upstream=\"cards\",kind=\"connect\"} 1")
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn no_fallback_when_disabled() {
    let legacy = Upstream::json("legacy").await;
    let failing = Upstream::status(500).await;
    let cfg =
        config(&legacy.url(), &failing.url(), "").replace("fallback = true", "fallback = false");
    let gw = TestGateway::start(&cfg).await;
    let a = get(&gw.url("/api/cards/1"), &[("x-tenant-id", "acme")]).await;
    assert_eq!(a.status, 500);
    assert_eq!(legacy.hits(), 0);
    gw.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn upstream_down_is_502_and_slow_is_504_with_json() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let slow = Upstream::start(|_req| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        http::Response::new(switchyard::body::full("late"))
    })
    .await;
    let gw = TestGateway::start_paused(
        &config(&dead_url, &slow.url(), "").replace("fallback = true", "fallback = false"),
    )
    .await;
    let a = get(&gw.url("/other"), &[]).await;
    assert_eq!(a.status, 502);
    let doc = a.json();
    assert_eq!(doc["side"], "legacy");
    assert_eq!(doc["route"], serde_json::Value::Null);
    assert!(doc["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(doc["error"].as_str().is_some());

    let t = get(&gw.url("/api/cards/1"), &[("x-tenant-id", "acme")]).await;
    assert_eq!(t.status, 504);
    assert_eq!(t.json()["route"], "cards");
    assert_eq!(t.json()["side"], "new");
    gw.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_clear_answers() {
    let legacy = Upstream::json("legacy").await;
    let gw = TestGateway::start(&config(&legacy.url(), &legacy.url(), "")).await;
    let wait = Duration::from_secs(3);

    let both = raw(
        gw.http,
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        wait,
    )
    .await;
    assert!(both.starts_with("HTTP/1.1 400"), "CL+TE: {both}");

    let dup = raw(
        gw.http,
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        wait,
    )
    .await;
    assert!(dup.starts_with("HTTP/1.1 400"), "duplicate CL: {dup}");

    let dup_same = raw(
        gw.http,
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        wait,
    )
    .await;
    assert!(
        dup_same.starts_with("HTTP/1.1 400"),
        "duplicate equal CL: {dup_same}"
    );

    let big = format!(
        "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let answer = raw(gw.http, big.as_bytes(), wait).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "oversized header block: {answer:.80}"
    );

    let garbage = raw(gw.http, b"\x16\x03\x01 nonsense\r\n\r\n", wait).await;
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"),
        "{garbage}"
    );

    // The gateway still serves after all that.
    assert_eq!(get(&gw.url("/ok"), &[]).await.status, 200);
    gw.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn body_limit_is_413_and_stalled_body_is_408() {
    let legacy = Upstream::json("legacy").await;
    let cfg = config(&legacy.url(), &legacy.url(), "").replace(
        "workers = 2",
        "workers = 2\nmax_request_body = \"1KiB\"\nbody_timeout = \"300ms\"",
    );
    let gw = TestGateway::start_paused(&cfg).await;
    let a = send("POST", &gw.url("/upload"), &[], vec![b'x'; 4096]).await;
    assert_eq!(a.status, 413, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["kind"], "body_too_large");

    let stalled = raw(
        gw.http,
        b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly-a-little",
        Duration::from_secs(3),
    )
    .await;
    assert!(stalled.starts_with("HTTP/1.1 408"), "{stalled}");
    gw.shutdown().await;
}

// Paused time: the 800 ms of the slow upstream and the 200 ms before shutdown pass as soon as
// nothing else can run, so the test proves the ordering without waiting for it.
#[tokio::test(start_paused = true)]
async fn graceful_drain_finishes_a_request_in_flight() {
    let slow = Upstream::start(|_req| async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        http::Response::new(switchyard::body::full("done"))
    })
    .await;
    let gw = TestGateway::start_paused(&config(&slow.url(), &slow.url(), "")).await;
    let url = gw.url("/slow");
    let addr = gw.http;
    let in_flight = tokio::spawn(async move { get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shutdown = tokio::spawn(gw.shutdown());
    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(&answer.body[..], b"done");
    shutdown.await.unwrap();
    // And the listener is closed afterwards.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn passive_health_ejects_a_dead_origin() {
    let alive = Upstream::json("legacy").await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let cfg = config(&alive.url(), &alive.url(), "").replace(
        &format!("origins = [\"{}\"]\nconnect_timeout", alive.url()),
        &format!(
            "origins = [\"{dead_url}\", \"{}\"]\neject_after = 2\neject_for = \"30s\"\nconnect_timeout",
            alive.url()
        ),
    );
    let gw = TestGateway::start(&cfg).await;
    let mut failed = 0;
    for _ in 0..20 {
        if get(&gw.url("/x"), &[]).await.status != 200 {
            failed += 1;
        }
    }
    // Round-robin sends every other request to the dead origin until it is ejected after two
    // consecutive connect failures; from then on only the live origin is used.
    assert_eq!(failed, 2, "requests failed before the ejection");
    let health = gw.gw().live.load().pools.health();
    let legacy = health.iter().find(|u| u.upstream == "legacy").unwrap();
    assert!(!legacy.origins[0].healthy);
    assert!(legacy.origins[1].healthy);
    gw.shutdown().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let legacy = Upstream::json("legacy").await;
    let cfg = config(&legacy.url(), &legacy.url(), "")
        .replace("workers = 2", "workers = 2\nidle_timeout = \"300ms\"");
    let gw = TestGateway::start(&cfg).await;
    let mut stream = tokio::net::TcpStream::connect(gw.http).await.unwrap();
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Now idle: the gateway closes the connection on its own.
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert_eq!(
        closed,
        Ok(true),
        "an idle keep-alive connection stayed open"
    );
    gw.shutdown().await;
}
