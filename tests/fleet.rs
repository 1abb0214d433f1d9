//! A fleet end to end: real PostgreSQL (`SWITCHYARD_TEST_PG`; skipped without it), replicas
//! as real `switchyard run` processes sharing one rule document, each behind a TCP proxy the
//! test cuts to make the database unreachable or mutes to lose notifications.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "fleet/harness.rs"]
mod harness;

#[path = "fleet/bad_revision.rs"]
mod bad_revision;
#[path = "fleet/edits.rs"]
mod edits;
#[path = "fleet/outage.rs"]
mod outage;
#[path = "fleet/source.rs"]
mod source;

use std::time::Duration;

use harness::*;
use serde_json::{Value, json};
use support::Upstream;

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
