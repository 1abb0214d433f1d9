//! A revision that does not build, inserted by hand with SQL.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Fleet;
use crate::harness::*;
use crate::rollout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_revision_inserted_by_hand_is_refused_by_every_replica() {
    let _serial = SERIAL.lock().await;
    let Some(mut fleet) = Fleet::start(3).await else {
        return;
    };
    let good = fleet.seeded;
    let (_, text) = fleet.newest_text().await;
    let bad = text.replace("fallback = true", "fallback = \"sometimes\"");
    let line = bad.lines().position(|l| l.contains("sometimes")).unwrap() + 1;
    let pool = fleet.db.pool().await;
    sqlx::query(
        "INSERT INTO switchyard_config.revisions (document, revision, text) VALUES ($1, $2, $3)",
    )
    .bind(DOCUMENT)
    .bind((good + 1) as i64)
    .bind(&bad)
    .execute(&pool)
    .await
    .unwrap();
    let expected = format!("revision {}:{line}:", good + 1);
    let refused = time_until(Duration::from_secs(5), || async {
        for r in &fleet.replicas {
            let status = r.status().await;
            let message = status["last_reload_error"]["message"]
                .as_str()
                .unwrap_or("");
            if !message.contains(&expected) {
                return false;
            }
        }
        true
    })
    .await;
    assert!(refused.is_some(), "not every replica reported {expected}");
    // Several polls later: still the old rules, counted once, traffic as before.
    tokio::time::sleep(POLL * 3).await;
    for r in &fleet.replicas {
        assert_eq!(r.generation().await, good);
        assert!(
            r.metrics()
                .await
                .contains("switchyard_config_reloads_total{result=\"error\"} 1"),
            "{}",
            r.metrics().await
        );
        assert_eq!(r.side_of("acme").await, "cards");
        assert_eq!(r.side_of("globex").await, "legacy");
        assert!(r.log().contains(&expected), "{}", r.log());
    }
    let view = fleet.replicas[1]
        .admin("GET", "/admin/fleet", Value::Null)
        .await
        .json();
    for member in view["replicas"].as_array().unwrap() {
        assert_eq!(member["lag"], 1, "{view}");
        assert!(
            member["last_error"].as_str().unwrap().contains(&expected),
            "{view}"
        );
    }

    // A replica restarted meanwhile starts on its cached copy of the last good revision.
    let mut old = fleet.replicas.pop().unwrap();
    old.kill();
    let again = Replica::start("r3", &old.dir, &old.source_url).await;
    assert_eq!(again.generation().await, good);
    let reported = time_until(Duration::from_secs(5), || async {
        let status = again.status().await;
        status["last_reload_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&expected))
    })
    .await;
    assert!(reported.is_some(), "{}", again.log());
    fleet.replicas.push(again);

    // An edit computed from the last good revision does not silently replace the bad one…
    let edit = fleet.replicas[0]
        .admin("POST", "/admin/rollout", rollout("x"))
        .await;
    assert_eq!(edit.status, 409);
    // …a rollback does, and the fleet moves on.
    let back = fleet.replicas[2]
        .admin(
            "POST",
            "/admin/rollback",
            json!({"generation": good, "reason": "bad SQL push"}),
        )
        .await;
    assert_eq!(back.status, 200, "{}", String::from_utf8_lossy(&back.body));
    assert!(
        fleet
            .converged(good + 2, Duration::from_secs(5))
            .await
            .is_some()
    );
    for r in &fleet.replicas {
        assert!(r.status().await["last_reload_error"].is_null());
    }
    pool.close().await;
}
