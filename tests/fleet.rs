//! A fleet end to end: real PostgreSQL (`SWITCHYARD_TEST_PG`; skipped without it), replicas
//! as real `switchyard run` processes sharing one rule document, each behind a TCP proxy the
//! test cuts to make the database unreachable or mutes to lose notifications.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "fleet/harness.rs"]
mod harness;

use std::time::Duration;

use harness::*;
use serde_json::{Value, json};
use sqlx::postgres::PgListener;
use support::Upstream;
use switchyard::config::source::{Author, PgSource, SourceError, SourceOptions};

/// Replicas sharing one document, with their database and upstreams. Fields drop in order:
/// processes first, the database last.
struct Fleet {
    replicas: Vec<Replica>,
    proxies: Vec<PgProxy>,
    db: TestDb,
    _legacy: Upstream,
    _new: Upstream,
    /// Working directories (tokens, caches).
    dir: tempfile::TempDir,
    seeded: u64,
}

impl Fleet {
    async fn start(n: usize) -> Option<Fleet> {
        let db = TestDb::create().await?;
        let legacy = Upstream::json("legacy").await;
        let new = Upstream::json("cards").await;
        let dir = tempfile::tempdir().unwrap();
        let text = document(&legacy.url(), &new.url());
        let seeded = seed(&db, &dir.path().join("ci"), &text).await;
        let mut proxies = Vec::new();
        let mut replicas = Vec::new();
        for i in 1..=n {
            let proxy = PgProxy::start(db.server).await;
            let name = format!("r{i}");
            let replica =
                Replica::start(&name, &dir.path().join(&name), &db.source_url(&proxy)).await;
            proxies.push(proxy);
            replicas.push(replica);
        }
        Some(Fleet {
            replicas,
            proxies,
            db,
            _legacy: legacy,
            _new: new,
            dir,
            seeded,
        })
    }

    /// Wait until every replica serves `revision`; how long that took.
    async fn converged(&self, revision: u64, within: Duration) -> Option<Duration> {
        time_until(within, || async {
            for r in &self.replicas {
                if r.generation().await != revision {
                    return false;
                }
            }
            true
        })
        .await
    }

    /// The newest revision's text, read straight from the table.
    async fn newest_text(&self) -> (u64, String) {
        let pool = self.db.pool().await;
        let (revision, text): (i64, String) = sqlx::query_as(
            "SELECT revision, text FROM switchyard_config.revisions \
             WHERE document = $1 ORDER BY revision DESC LIMIT 1",
        )
        .bind(DOCUMENT)
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        (revision as u64, text)
    }
}

fn rollout(tenant: &str) -> Value {
    json!({"route": "cards", "tenant": tenant, "side": "new", "reason": "fleet test"})
}

fn tenants_of(text: &str) -> Vec<String> {
    let doc: toml::Value = toml::from_str(text).unwrap();
    doc["routes"][0]["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_writes_with_compare_and_set_and_announces_revisions() {
    let _serial = SERIAL.lock().await;
    let Some(db) = TestDb::create().await else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let options = SourceOptions {
        replica: "unit".into(),
        cache_dir: Some(cache.path().to_path_buf()),
    };
    let pg = PgSource::parse(&db.direct_source_url(), &options).unwrap();
    assert!(matches!(pg.read().await, Err(SourceError::Empty { .. })));
    let mut listener: PgListener = pg.listen().await.unwrap();
    let author = Author {
        name: Some("ops".into()),
        reason: Some("first".into()),
    };

    assert_eq!(
        pg.write("a = 1\n", Some(0), &author, "push").await.unwrap(),
        1
    );
    let lost = pg
        .write("a = 2\n", Some(0), &author, "admin")
        .await
        .unwrap_err();
    assert!(
        matches!(
            lost,
            SourceError::Moved {
                based_on: 0,
                newest: 1
            }
        ),
        "{lost}"
    );
    assert_eq!(
        pg.write("a = 2\n", Some(1), &author, "admin")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        pg.write("a = 3\n", None, &author, "rollback")
            .await
            .unwrap(),
        3
    );
    for expected in ["main:1", "main:2", "main:3"] {
        let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n.payload(), expected);
    }

    let newest = pg.read().await.unwrap();
    assert_eq!(
        (newest.revision, newest.text.as_str()),
        (Some(3), "a = 3\n")
    );
    assert_eq!(pg.read_revision(1).await.unwrap(), "a = 1\n");
    assert!(matches!(
        pg.read_revision(9).await,
        Err(SourceError::NoRevision { revision: 9, .. })
    ));

    // A revision inserted by hand is announced too, and recorded as such.
    let pool = db.pool().await;
    sqlx::query(
        "INSERT INTO switchyard_config.revisions (document, revision, text) VALUES ($1, 4, 'a = 4')",
    )
    .bind(DOCUMENT)
    .execute(&pool)
    .await
    .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pg.announced(n.payload()), Some(4));
    let history = pg.revisions(10).await.unwrap();
    let numbers: Vec<u64> = history.iter().map(|r| r.revision).collect();
    assert_eq!(numbers, [4, 3, 2, 1]);
    assert_eq!(
        (history[0].origin.as_str(), history[0].hash.is_none()),
        ("sql", true)
    );
    assert_eq!(history[1].origin, "rollback");
    assert_eq!(history[3].author, "ops");
    assert_eq!(history[3].replica.as_deref(), Some("unit"));
    assert_eq!(history[3].reason.as_deref(), Some("first"));

    // Eight writers computed from revision 4 at once: exactly one wins.
    let writes = (0..8).map(|i| {
        let pg = pg.clone();
        let author = author.clone();
        tokio::spawn(async move {
            pg.write(&format!("a = {i}\n"), Some(4), &author, "admin")
                .await
        })
    });
    let mut won = 0;
    for write in writes {
        match write.await.unwrap() {
            Ok(5) => won += 1,
            Err(SourceError::Moved {
                based_on: 4,
                newest: 5,
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);

    // Heartbeats make the fleet view; leaving removes the row.
    pg.heartbeat(&switchyard::config::source::Heartbeat {
        revision: 5,
        loaded_at_ms: 1,
        started_at_ms: 1,
        admin: Some("127.0.0.1:9901".into()),
        listening: true,
        last_error: None,
    })
    .await
    .unwrap();
    let view = pg.fleet(Duration::from_secs(60)).await.unwrap();
    assert_eq!(view.newest, 5);
    assert_eq!(view.replicas.len(), 1);
    assert_eq!(
        (view.replicas[0].replica.as_str(), view.replicas[0].revision),
        ("unit", Some(5))
    );
    pg.leave().await.unwrap();
    assert!(
        pg.fleet(Duration::from_secs(60))
            .await
            .unwrap()
            .replicas
            .is_empty()
    );

    // The last good revision is cached; without the database, it is what a start reads.
    pg.save_cache(5, "a = 5\n").await.unwrap();
    let gone = PgSource::parse("postgres://sy:sy@127.0.0.1:9/sy?document=main", &options).unwrap();
    let cached = gone.read_or_cached().await.unwrap();
    assert_eq!(
        (cached.revision, cached.text.as_str()),
        (Some(5), "a = 5\n")
    );
    let no_cache = SourceOptions {
        replica: "unit".into(),
        cache_dir: Some(cache.path().join("empty")),
    };
    let gone = PgSource::parse("postgres://sy:sy@127.0.0.1:9/sy?document=main", &no_cache).unwrap();
    let error = gone.read_or_cached().await.unwrap_err().to_string();
    assert!(
        error.contains("unavailable") && error.contains("no cached copy"),
        "{error}"
    );

    pg.close().await;
    pool.close().await;
}

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
