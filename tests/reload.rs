//! Live rules: reloads under load never fail a request, bad edits never take the gateway down,
//! upgraded connections survive reloads, ConfigMap symlink swaps are picked up, rollback works.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::*;
use switchyard::live::{ReloadOutcome, Trigger};

/// Rule set A lists globex on new; rule set B does not.
fn rule_sets(legacy: &str, new: &str) -> (String, String) {
    let a =
        config(legacy, new, "").replace(r#"tenants = ["acme"]"#, r#"tenants = ["acme", "globex"]"#);
    let b = config(legacy, new, "");
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_reloads_under_load_fail_nothing() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let (a, b) = rule_sets(&legacy.url(), &new.url());
    let gw = TestGateway::start(&a).await;
    let url = gw.url("/api/cards/1");
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (url, stop, failures, served) =
            (url.clone(), stop.clone(), failures.clone(), served.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = get(&url, &[("x-tenant-id", "globex")]).await;
                let generation: u64 = answer
                    .header("x-switchyard-generation")
                    .and_then(|g| g.parse().ok())
                    .unwrap_or(0);
                // Odd generations run rule set A (globex on new), even ones B (legacy).
                let expected = if generation % 2 == 1 {
                    "cards"
                } else {
                    "legacy"
                };
                if answer.status != 200 || answer.served_by() != expected {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                served.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for i in 0..200 {
        let text = if i % 2 == 0 { &b } else { &a };
        std::fs::write(&gw.config, text).unwrap();
        let outcome = gw.gw().live.reload(Trigger::Admin).await.unwrap();
        assert!(
            matches!(outcome, ReloadOutcome::Applied { .. }),
            "{outcome:?}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(gw.gw().live.load().generation, 201);
    assert!(
        served.load(Ordering::Relaxed) > 50,
        "too little load to mean anything"
    );
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "requests failed or mixed generations"
    );
    assert_eq!(gw.gw().live.history().len(), switchyard::live::HISTORY_LEN);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_edit_keeps_the_old_rules_serving() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let (a, _) = rule_sets(&legacy.url(), &new.url());
    let gw = TestGateway::start_with(&a, &[], true).await;
    let url = gw.url("/api/cards/1");
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let load = {
        let (url, stop, failures, served) =
            (url.clone(), stop.clone(), failures.clone(), served.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = get(&url, &[("x-tenant-id", "globex")]).await;
                if answer.status != 200 || answer.served_by() != "cards" {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                served.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let broken = format!(
        "{a}\n[[routes]]\nname = \"broken\"\npath = \"/x\"\nlegacy = \"missing-upstream\"\n"
    );
    std::fs::write(&gw.config, &broken).unwrap();
    let live = gw.gw().live.clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            let live = live.clone();
            async move { live.last_error().is_some() }
        })
        .await,
        "the watcher did not report the invalid edit"
    );
    let error = live.last_error().unwrap();
    assert!(
        error.message.contains("missing-upstream"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("gw.toml:"),
        "no file:line:col in {}",
        error.message
    );
    assert_eq!(live.load().generation, 1);
    let outcome = live.reload(Trigger::Admin).await;
    assert!(outcome.is_err());
    // Keep the load on for a good number of requests after the rejected reload.
    let served = served.clone();
    let after = served.load(Ordering::Relaxed) + 100;
    assert!(
        eventually(Duration::from_secs(10), || {
            let served = served.clone();
            async move { served.load(Ordering::Relaxed) >= after }
        })
        .await,
        "the load stopped after the rejected reload"
    );
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    let metrics = gw.gw().metrics.render();
    assert!(
        metrics.contains("switchyard_config_reloads_total{result=\"error\"}"),
        "{metrics}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn identical_content_makes_no_new_generation_and_rollback_restores() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let (a, b) = rule_sets(&legacy.url(), &new.url());
    let gw = TestGateway::start(&a).await;
    let live = gw.gw().live.clone();
    let same = live.reload(Trigger::Admin).await.unwrap();
    assert!(matches!(
        same,
        ReloadOutcome::Unchanged { generation: 1, .. }
    ));

    std::fs::write(&gw.config, &b).unwrap();
    assert_eq!(live.reload(Trigger::Admin).await.unwrap().generation(), 2);
    let url = gw.url("/api/cards/1");
    assert_eq!(
        get(&url, &[("x-tenant-id", "globex")]).await.served_by(),
        "legacy"
    );

    let back = live.rollback(1).await.unwrap();
    assert_eq!(back.generation(), 3);
    assert_eq!(
        get(&url, &[("x-tenant-id", "globex")]).await.served_by(),
        "cards"
    );
    // The file holds the rolled-back rules, so a restart keeps them.
    assert_eq!(std::fs::read_to_string(&gw.config).unwrap(), a);
    let history = live.history();
    assert_eq!(
        history.iter().map(|h| h.generation).collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
    assert!(live.rollback(99).await.is_err());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_survives_twenty_reloads() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() {
                        let _ = ws.send(msg).await;
                    }
                }
            });
        }
    });
    let url = format!("http://{addr}");
    let (a, b) = rule_sets(&url, &url);
    let gw = TestGateway::start(&a).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", gw.http))
        .await
        .unwrap();
    for i in 0..20 {
        std::fs::write(&gw.config, if i % 2 == 0 { &b } else { &a }).unwrap();
        gw.gw().live.reload(Trigger::Admin).await.unwrap();
    }
    assert_eq!(gw.gw().live.load().generation, 21);
    ws.send(tokio_tungstenite::tungstenite::Message::text("still here"))
        .await
        .unwrap();
    let echo = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echo.into_text().unwrap().as_str(), "still here");
    gw.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_symlink_swap_is_picked_up() {
    use std::os::unix::fs::symlink;
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let (a, b) = rule_sets(&legacy.url(), &new.url());
    // Kubernetes layout: gw.toml -> ..data/gw.toml, ..data -> ..v1
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("..v1")).unwrap();
    std::fs::write(root.join("..v1/gw.toml"), &b).unwrap();
    symlink("..v1", root.join("..data")).unwrap();
    symlink("..data/gw.toml", root.join("gw.toml")).unwrap();
    let gateway = switchyard::gateway::Gateway::start(
        &root.join("gw.toml"),
        switchyard::gateway::Options {
            watch: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let url = format!("http://{}/api/cards/1", gateway.http.unwrap());
    assert_eq!(
        get(&url, &[("x-tenant-id", "globex")]).await.served_by(),
        "legacy"
    );

    std::fs::create_dir(root.join("..v2")).unwrap();
    std::fs::write(root.join("..v2/gw.toml"), &a).unwrap();
    symlink("..v2", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    let moved = eventually(Duration::from_secs(5), || {
        let url = url.clone();
        async move { get(&url, &[("x-tenant-id", "globex")]).await.served_by() == "cards" }
    })
    .await;
    assert!(moved, "the symlink swap was not picked up");
    gateway.shutdown().await;
}

#[tokio::test]
async fn history_survives_a_restart_and_rollback_reaches_past_it() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let (a, b) = rule_sets(&legacy.url(), &new.url());
    let gw = TestGateway::start(&a).await;
    std::fs::write(&gw.config, &b).unwrap();
    assert_eq!(
        gw.gw()
            .live
            .reload(Trigger::Admin)
            .await
            .unwrap()
            .generation(),
        2
    );
    let dir = gw.dir.path().to_path_buf();
    let config = gw.config.clone();
    let TestGateway {
        gateway, dir: keep, ..
    } = gw;
    gateway.unwrap().shutdown().await;

    let restarted =
        switchyard::gateway::Gateway::start(&config, switchyard::gateway::Options::default())
            .await
            .unwrap();
    assert_eq!(
        restarted.live.load().generation,
        3,
        "generations keep counting across restarts"
    );
    let generations: Vec<u64> = restarted
        .live
        .history()
        .iter()
        .map(|h| h.generation)
        .collect();
    assert_eq!(generations, vec![3, 2, 1]);
    let url = format!("http://{}/api/cards/1", restarted.http.unwrap());
    assert_eq!(
        get(&url, &[("x-tenant-id", "globex")]).await.served_by(),
        "legacy"
    );
    restarted.live.rollback(1).await.unwrap();
    assert_eq!(
        get(&url, &[("x-tenant-id", "globex")]).await.served_by(),
        "cards"
    );
    assert!(dir.join("switchyard.db").exists());
    restarted.shutdown().await;
    drop(keep);
}
