//! Edits through the admin API of one replica reach the others: convergence figures, the
//! fleet view, history and audit, the CLI, and two replicas editing at once.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;
use crate::{Fleet, median, rollout, support, tenants_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_through_one_replica_are_served_by_the_others_within_a_second() {
    let _serial = SERIAL.lock().await;
    let Some(fleet) = Fleet::start(3).await else {
        return;
    };
    let [r1, r2, r3] = &fleet.replicas[..] else {
        unreachable!()
    };
    let clock = switchyard::clock::Clock::system();
    let mut end_to_end = Vec::new();
    let mut after_commit = Vec::new();
    for i in 0..20 {
        let tenant = format!("pilot-{i}");
        assert_eq!(r2.side_of(&tenant).await, "legacy");
        let start = clock.instant();
        let answer = r1.admin("POST", "/admin/rollout", rollout(&tenant)).await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let committed = clock.instant();
        let served = time_until(Duration::from_secs(5), || async {
            r2.side_of(&tenant).await == "cards" && r3.side_of(&tenant).await == "cards"
        })
        .await;
        assert!(
            served.is_some(),
            "rollout {i} not served by r2 and r3 within 5 s"
        );
        let done = clock.instant();
        end_to_end.push(done - start);
        after_commit.push(done - committed);
    }
    let (med, max) = (
        median(end_to_end.clone()),
        *end_to_end.iter().max().unwrap(),
    );
    let (med_c, max_c) = (
        median(after_commit.clone()),
        *after_commit.iter().max().unwrap(),
    );
    eprintln!(
        "convergence over 20 rollouts, from the rollout call to r2 and r3 serving it: \
         median {med:?}, max {max:?}; from the call's answer: median {med_c:?}, max {max_c:?}"
    );
    assert!(max < Duration::from_secs(1), "max {max:?}");
    assert!(med < Duration::from_millis(200), "median {med:?}");
    let newest = fleet.seeded + 20;
    assert!(
        fleet
            .converged(newest, Duration::from_secs(5))
            .await
            .is_some()
    );

    // Every replica lists the whole fleet, all on the newest revision; the history is the
    // table's, the same on every replica, with who wrote each revision and where.
    // Heartbeats follow the swaps within milliseconds.
    let fleet_view = || async { r3.admin("GET", "/admin/fleet", Value::Null).await.json() };
    let current = time_until(Duration::from_secs(5), || async {
        let view = fleet_view().await;
        view["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["lag"] == 0)
    })
    .await;
    let view = fleet_view().await;
    assert!(current.is_some(), "{view}");
    assert_eq!(view["newest_revision"], newest);
    let names: Vec<&str> = view["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["replica"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["r1", "r2", "r3"], "{view}");
    assert!(
        view["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["lag"] == 0),
        "{view}"
    );
    let history = r2.admin("GET", "/admin/history", Value::Null).await.json();
    let top = &history["generations"][0];
    assert_eq!(top["generation"], newest);
    assert_eq!(
        (&top["author"], &top["replica"]),
        (&json!("ops"), &json!("r1"))
    );
    assert_eq!(history["generations"][20]["author"], "ci");
    let audit = r1
        .admin("GET", "/admin/audit?limit=1", Value::Null)
        .await
        .json();
    assert_eq!(audit["entries"][0]["replica"], "r1");
    let status = r2.status().await;
    assert_eq!(status["replica"], "r2");
    assert_eq!(status["source"]["up"], true);
    assert!(r2.metrics().await.contains("switchyard_config_source_up 1"));

    // The CLI: fleet, pull, push through a replica's admin API (CAS), check.
    let admin = format!("http://{}", r1.admin);
    let token = [("SWITCHYARD_ADMIN_TOKEN", WRITE)];
    let work = fleet.dir.path();
    let (ok, out, err) = cli(&["fleet", "--admin", &admin], &token, work).await;
    assert!(ok, "{err}");
    assert!(out.contains("r1*") && out.contains("r3"), "{out}");
    let (ok, pulled, err) = cli(&["config", "pull", "--admin", &admin], &token, work).await;
    assert!(ok, "{err}");
    assert!(pulled.contains("pilot-19"), "{pulled}");
    let edited = pulled.replace("fallback = true", "fallback = false");
    std::fs::write(work.join("reviewed.toml"), &edited).unwrap();
    let push = [
        "config",
        "push",
        "reviewed.toml",
        "--admin",
        &admin,
        "--reason",
        "review 7",
    ];
    let (ok, out, err) = cli(&push, &token, work).await;
    assert!(ok, "{err}");
    assert_eq!(revision_in(&out), newest + 1, "{out}");
    let stale = [
        "config",
        "push",
        "reviewed.toml",
        "--admin",
        &admin,
        "--base-revision",
        "1",
    ];
    let (ok, _, err) = cli(&stale, &token, work).await;
    assert!(!ok && err.contains("409"), "{err}");
    std::fs::write(
        work.join("broken.toml"),
        edited.replace("[default]", "[defualt]"),
    )
    .unwrap();
    let broken = ["config", "push", "broken.toml", "--admin", &admin];
    let (ok, _, err) = cli(&broken, &token, work).await;
    assert!(!ok && err.contains("broken.toml:"), "{err}");
    assert!(
        fleet
            .converged(newest + 1, Duration::from_secs(5))
            .await
            .is_some()
    );
    let url = fleet.db.direct_source_url();
    let (ok, out, err) = cli(&["check"], &[("SWITCHYARD_CONFIG", &url)], &r1.dir).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!("revision {}: ok", newest + 1)),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_editing_at_once_one_wins_and_nothing_is_lost() {
    let _serial = SERIAL.lock().await;
    let Some(fleet) = Fleet::start(2).await else {
        return;
    };
    let [r1, r2] = &fleet.replicas[..] else {
        unreachable!()
    };
    let mut conflicts = 0;
    for round in 0..10 {
        let (a, b) = (format!("left-{round}"), format!("right-{round}"));
        let before = fleet.newest_text().await.0;
        assert!(
            fleet
                .converged(before, Duration::from_secs(5))
                .await
                .is_some()
        );
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let edit = |replica: &Replica, tenant: String| {
            let barrier = barrier.clone();
            let admin = replica.admin;
            async move {
                barrier.wait().await;
                let url = format!("http://{admin}/admin/rollout");
                let auth = format!("Bearer {WRITE}");
                support::send(
                    "POST",
                    &url,
                    &[("authorization", auth.as_str())],
                    rollout(&tenant).to_string(),
                )
                .await
            }
        };
        let (left, right) = tokio::join!(edit(r1, a.clone()), edit(r2, b.clone()));
        let (revision, text) = fleet.newest_text().await;
        let tenants = tenants_of(&text);
        match (left.status.as_u16(), right.status.as_u16()) {
            (200, 200) => {
                // One saw the other's revision first: both changes are in, in order.
                assert_eq!(revision, before + 2);
                assert!(tenants.contains(&a) && tenants.contains(&b), "{tenants:?}");
            }
            (200, 409) | (409, 200) => {
                conflicts += 1;
                let (winner, loser, lost) = if left.status == 200 {
                    (&a, &b, &right)
                } else {
                    (&b, &a, &left)
                };
                assert_eq!(lost.json()["kind"], "conflict", "{}", lost.json());
                assert_eq!(revision, before + 1);
                assert!(tenants.contains(winner), "{tenants:?}");
                assert!(!tenants.contains(loser), "{tenants:?}");
            }
            other => panic!(
                "round {round}: {other:?}: {} / {}",
                String::from_utf8_lossy(&left.body),
                String::from_utf8_lossy(&right.body)
            ),
        }
        if conflicts >= 2 {
            break;
        }
    }
    assert!(conflicts >= 1, "no round produced a conflict");
}
