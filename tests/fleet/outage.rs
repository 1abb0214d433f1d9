//! The database going away: traffic under load, writes refused, catching up afterwards, a
//! restart on the cached rules, and notifications that never arrive.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use crate::{Fleet, rollout, support};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_under_load_fails_nothing_and_every_replica_catches_up() {
    let _serial = SERIAL.lock().await;
    let Some(fleet) = Fleet::start(3).await else {
        return;
    };
    let rollout_ok = fleet.replicas[0]
        .admin("POST", "/admin/rollout", rollout("before"))
        .await;
    assert_eq!(rollout_ok.status, 200);
    let serving = fleet.seeded + 1;
    assert!(
        fleet
            .converged(serving, Duration::from_secs(5))
            .await
            .is_some()
    );

    // Steady traffic on every replica for the whole outage.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let urls: Vec<String> = fleet
        .replicas
        .iter()
        .map(|r| r.url("/api/cards/1"))
        .collect();
    let load: Vec<_> = (0..4)
        .map(|worker| {
            let (stop, urls) = (stop.clone(), urls.clone());
            tokio::spawn(async move {
                let client = support::client();
                let (mut sent, mut failed) = (0u64, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let url = &urls[(sent as usize + worker) % urls.len()];
                    let tenant = if sent % 2 == 0 { "before" } else { "globex" };
                    let request = http::Request::get(url)
                        .header("x-tenant-id", tenant)
                        .body(http_body_util::Full::new(bytes::Bytes::new()))
                        .unwrap();
                    match client.request(request).await {
                        Ok(r) if r.status() == 200 => {
                            use http_body_util::BodyExt;
                            let body = r.into_body().collect().await.unwrap().to_bytes();
                            let side: Value = serde_json::from_slice(&body).unwrap();
                            let expected = if tenant == "before" {
                                "cards"
                            } else {
                                "legacy"
                            };
                            if side["served_by"] != expected {
                                failed.push(format!("{tenant} served by {}", side["served_by"]));
                            }
                        }
                        Ok(r) => failed.push(format!("status {}", r.status())),
                        Err(e) => failed.push(e.to_string()),
                    }
                    sent += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                (sent, failed)
            })
        })
        .collect();

    for proxy in &fleet.proxies {
        proxy.cut();
    }
    let down = time_until(Duration::from_secs(15), || async {
        for r in &fleet.replicas {
            if !r.metrics().await.contains("switchyard_config_source_up 0") {
                return false;
            }
        }
        true
    })
    .await;
    assert!(down.is_some(), "replicas did not notice the outage");
    for r in &fleet.replicas {
        let status = r.status().await;
        assert_eq!(status["generation"], serving);
        assert_eq!(status["source"]["up"], false, "{status}");
        let refused = r.admin("POST", "/admin/rollout", rollout("during")).await;
        assert_eq!(
            refused.status,
            503,
            "{}",
            String::from_utf8_lossy(&refused.body)
        );
        let body = refused.json();
        assert_eq!(body["kind"], "source_unavailable");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("config database is unreachable"),
            "{body}"
        );
        let fleet_view = r.admin("GET", "/admin/fleet", Value::Null).await;
        assert_eq!(fleet_view.status, 200);
        assert_eq!(fleet_view.json()["source_up"], false);
        let history = r.admin("GET", "/admin/history", Value::Null).await;
        assert_eq!(history.status, 200);
    }
    // Meanwhile a revision lands in the database (CI pushed it straight there).
    let (_, text) = fleet.newest_text().await;
    let late = text.replacen("tenants = [", "tenants = [\"late\", ", 1);
    assert_ne!(late, text);
    let pushed = seed(&fleet.db, &fleet.dir.path().join("ci"), &late).await;
    assert_eq!(pushed, serving + 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for r in &fleet.replicas {
        assert_eq!(
            r.generation().await,
            serving,
            "nothing reaches a cut replica"
        );
    }

    for proxy in &fleet.proxies {
        proxy.restore();
    }
    let caught_up = fleet.converged(pushed, Duration::from_secs(15)).await;
    assert!(caught_up.is_some(), "replicas did not catch up");
    eprintln!("every replica on revision {pushed} {caught_up:?} after the database came back");
    for r in &fleet.replicas {
        assert_eq!(r.side_of("late").await, "cards");
        assert!(r.metrics().await.contains("switchyard_config_source_up 1"));
        let written = r
            .admin(
                "POST",
                "/admin/rollout",
                rollout(&format!("after-{}", r.name)),
            )
            .await;
        assert_eq!(
            written.status,
            200,
            "{}",
            String::from_utf8_lossy(&written.body)
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for worker in load {
        let (sent, failed) = worker.await.unwrap();
        assert!(failed.is_empty(), "failed requests: {failed:?}");
        total += sent;
    }
    eprintln!("{total} requests during the outage and recovery, none failed");
    assert!(total > 100, "too little load: {total}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_restarted_while_the_database_is_down_serves_the_cached_rules() {
    let _serial = SERIAL.lock().await;
    let Some(mut fleet) = Fleet::start(1).await else {
        return;
    };
    let answer = fleet.replicas[0]
        .admin("POST", "/admin/rollout", rollout("cached"))
        .await;
    assert_eq!(answer.status, 200);
    let revision = fleet.seeded + 1;
    // The cache is written by the sync loop after the swap.
    let cache = fleet.replicas[0].dir.join("switchyard-main.cache.json");
    let cached = time_until(Duration::from_secs(5), || async {
        let saved = format!("\"revision\":{revision}");
        std::fs::read_to_string(&cache).is_ok_and(|c| c.contains(&saved))
    })
    .await;
    assert!(cached.is_some(), "no cache at {}", cache.display());

    let mut old = fleet.replicas.pop().unwrap();
    old.kill();
    fleet.proxies[0].cut();
    let (dir, url) = (old.dir.clone(), old.source_url.clone());
    let replica = Replica::start("r1", &dir, &url).await;
    assert_eq!(replica.side_of("cached").await, "cards");
    assert_eq!(replica.side_of("globex").await, "legacy");
    let status = replica.status().await;
    assert_eq!(status["generation"], revision);
    assert_eq!(status["source"]["up"], false, "{status}");
    assert!(
        replica.log().contains("starting on the cached copy"),
        "{}",
        replica.log()
    );

    fleet.proxies[0].restore();
    let pushed = {
        let (_, text) = fleet.newest_text().await;
        let next = text.replace("fallback = true", "fallback = false");
        seed(&fleet.db, &fleet.dir.path().join("ci"), &next).await
    };
    fleet.replicas.push(replica);
    assert!(
        fleet
            .converged(pushed, Duration::from_secs(15))
            .await
            .is_some(),
        "the restarted replica did not catch up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_notifications_are_caught_up_by_the_poll() {
    let _serial = SERIAL.lock().await;
    let Some(fleet) = Fleet::start(2).await else {
        return;
    };
    let [r1, r2] = &fleet.replicas[..] else {
        unreachable!()
    };
    // Notifications to r2 are swallowed while its LISTEN connection looks healthy.
    fleet.proxies[1].mute_listeners();
    let answer = r1.admin("POST", "/admin/rollout", rollout("muted")).await;
    assert_eq!(answer.status, 200);
    let revision = answer.json()["generation"].as_u64().unwrap();
    let caught = time_until(POLL * 4, || async { r2.side_of("muted").await == "cards" }).await;
    eprintln!("r2 without notifications caught up in {caught:?} (poll {POLL:?})");
    assert!(caught.is_some_and(|t| t <= POLL * 2), "{caught:?}");
    // The poll did it: r1 heard of the revision, r2 did not.
    assert!(r1.was_announced(revision), "{}", r1.log());
    assert!(!r2.was_announced(revision), "{}", r2.log());

    // The LISTEN connections dropped by the server: revisions written meanwhile still arrive.
    let pool = fleet.db.pool().await;
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(&fleet.db.name)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(terminated.len(), 2, "one LISTEN connection per replica");
    let answer = r2.admin("POST", "/admin/rollout", rollout("dropped")).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let caught = time_until(POLL * 4, || async {
        r1.side_of("dropped").await == "cards"
    })
    .await;
    assert!(caught.is_some_and(|t| t <= POLL * 2), "{caught:?}");
    pool.close().await;
}
