//! Store tests against a real SQLite file (always) and a real PostgreSQL (when
//! `SWITCHYARD_TEST_PG` holds a URL; each test then works in a schema of its own).

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use sqlx::Row;

use super::*;
use crate::rules::Side;

mod derive;
mod fixtures;
mod reads;
mod timeline;
mod writes;

use derive::*;
use fixtures::*;
use reads::*;
use timeline::*;
use writes::*;

/// Run `scenario` against a fresh SQLite file in a temporary directory.
async fn on_sqlite<F, Fut>(scenario: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open("sqlite://data/switchyard.db", dir.path())
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    scenario(store.clone()).await;
    store.close().await;
}

/// Run `scenario` against PostgreSQL in a throw-away schema, or say why it is skipped.
async fn on_postgres<F, Fut>(test: &str, scenario: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let Ok(url) = std::env::var("SWITCHYARD_TEST_PG") else {
        eprintln!("{test}: SWITCHYARD_TEST_PG is not set; PostgreSQL test skipped");
        return;
    };
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&url).await.unwrap();
    let schema = format!("sy_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options[search_path]={schema}");
    let store = Store::open(&scoped, Path::new("/")).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    scenario(store.clone()).await;
    store.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}

/// One `#[tokio::test]` per backend for each scenario.
macro_rules! both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::on_sqlite(super::$scenario).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::on_postgres(stringify!($scenario), super::$scenario).await;
                }
            )*
        }
    };
}

both_backends!(
    audit_roundtrip_and_filters,
    history_keeps_the_last_fifty,
    report_matches_the_injected_workload,
    report_windows_and_tenant_filter,
    reservoir_keeps_exactly_k_per_key,
    retention_deletes_by_age_and_caps_samples,
    flush_writes_everything_queued,
    writer_runs_retention_periodically,
    timeline_folds_minutes_into_buckets,
    learned_noise_counts_for_results_written_before_it,
    noise_evidence_ages_out_of_the_window,
    results_stored_before_difference_sets_keep_their_outcome,
);

async fn audit_roundtrip_and_filters(store: Store) {
    let entry = |at_ms, token: &str, action: &str, target: &str| AuditEntry {
        id: 0,
        at_ms,
        token_name: token.into(),
        action: action.into(),
        target: target.into(),
        before: json!({"percent": 10, "tenants": ["acme"]}),
        after: json!({"percent": 25, "tenants": ["acme", "globex"]}),
        reason: Some("ramp".into()),
        generation: Some(u64::from(u32::MAX) + 7),
        dry_run: false,
        replica: Some("gw-1".into()),
    };
    let a = store
        .append_audit(&entry(1_000, "ops", "rollout", "cards"))
        .await
        .unwrap();
    let b = store
        .append_audit(&entry(2_000, "ci", "reload", "*"))
        .await
        .unwrap();
    let mut dry = entry(3_000, "ops", "rollout", "users");
    dry.dry_run = true;
    dry.reason = None;
    dry.generation = None;
    let c = store.append_audit(&dry).await.unwrap();
    assert!(a < b && b < c, "ids increase: {a} {b} {c}");

    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![c, b, a],
        "newest first"
    );
    let mut expected = entry(1_000, "ops", "rollout", "cards");
    expected.id = a;
    assert_eq!(all[2], expected, "round trip keeps every field");
    assert!(all[0].dry_run && all[0].generation.is_none() && all[0].reason.is_none());

    let only = |f: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .list_audit(&f)
                .await
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        only(AuditFilter {
            target: Some("cards".into()),
            ..Default::default()
        })
        .await,
        vec![a]
    );
    assert_eq!(
        only(AuditFilter {
            token: Some("ops".into()),
            ..Default::default()
        })
        .await,
        vec![c, a]
    );
    assert_eq!(
        only(AuditFilter {
            action: Some("reload".into()),
            ..Default::default()
        })
        .await,
        vec![b]
    );
    let window = AuditFilter {
        since_ms: Some(1_500),
        until_ms: Some(3_000),
        ..Default::default()
    };
    assert_eq!(only(window).await, vec![c, b]);
    assert_eq!(
        only(AuditFilter {
            limit: Some(1),
            ..Default::default()
        })
        .await,
        vec![c]
    );
    // Admin query strings say `route=`.
    let f: AuditFilter = serde_json::from_value(json!({"route": "users"})).unwrap();
    assert_eq!(only(f).await, vec![c]);
}

async fn history_keeps_the_last_fifty(store: Store) {
    assert_eq!(store.latest_generation().await.unwrap(), None);
    for g in 1..=55u64 {
        store.save_generation(&generation(g)).await.unwrap();
    }
    let listed = store.list_generations(100).await.unwrap();
    assert_eq!(listed.len(), 50);
    assert_eq!(listed.first().map(|g| g.generation), Some(55));
    assert_eq!(listed.last().map(|g| g.generation), Some(6));
    assert_eq!(listed[0], GenerationSummary::from(&generation(55)));
    assert_eq!(store.list_generations(3).await.unwrap().len(), 3);
    assert_eq!(store.get_generation(5).await.unwrap(), None, "pruned");
    assert_eq!(store.get_generation(6).await.unwrap(), Some(generation(6)));
    assert_eq!(store.get_generation(u64::MAX).await.unwrap(), None);

    let mut again = generation(55);
    again.origin = "rollback".into();
    again.content = "# rolled back\n".into();
    store.save_generation(&again).await.unwrap();
    assert_eq!(store.latest_generation().await.unwrap(), Some(again));
    assert_eq!(store.list_generations(100).await.unwrap().len(), 50);

    let too_big = GenerationRecord {
        generation: u64::MAX,
        ..generation(1)
    };
    assert!(matches!(
        store.save_generation(&too_big).await,
        Err(StoreError::OutOfRange {
            what: "generation",
            ..
        })
    ));
}

async fn flush_writes_everything_queued(store: Store) {
    // A batch interval far beyond the test: only flush can make these visible.
    let config = WriterConfig {
        batch_interval: Duration::from_secs(3600),
        ..WriterConfig::default()
    };
    let writer = StoreWriter::spawn(store.clone(), config);
    for i in 0..10 {
        assert!(writer.try_send(result("r", Some("t"), T0 + i, Outcome::Match)));
    }
    writer.flush().await;
    assert_eq!(
        writer.counters(),
        WriterCounters {
            written: 10,
            ..Default::default()
        }
    );
    let report = store
        .report(
            &ReportFilter::default(),
            &ReportPolicy::default(),
            &noise_rule,
        )
        .await
        .unwrap();
    assert_eq!(report.routes[0].scope.counts.matched, 10);
}

#[tokio::test]
async fn open_resolves_relative_paths_and_enables_wal() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open("sqlite://nested/dir/sy.db", dir.path())
        .await
        .unwrap();
    assert!(dir.path().join("nested/dir/sy.db").is_file());
    let row = sqlx::query("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let mode: String = row.try_get(0).unwrap();
    assert_eq!(mode, "wal");
    store.append_audit(&audit_at(5)).await.unwrap();
    store.close().await;

    // Reopening runs the (already applied) migrations again and keeps the data.
    let abs = format!("sqlite://{}", dir.path().join("nested/dir/sy.db").display());
    let store = Store::open(&abs, Path::new("/elsewhere")).await.unwrap();
    assert_eq!(
        store
            .list_audit(&AuditFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );

    let mem = Store::open("sqlite::memory:", Path::new("/"))
        .await
        .unwrap();
    mem.append_audit(&audit_at(1)).await.unwrap();
    assert_eq!(
        mem.list_audit(&AuditFilter::default()).await.unwrap().len(),
        1
    );

    assert!(matches!(
        Store::open("redis://x", dir.path()).await,
        Err(StoreError::UnsupportedUrl { .. })
    ));
}

/// The store being down must never block `try_send`: results are dropped and counted.
async fn assert_down_store_drops_without_blocking(store: Store) {
    let config = WriterConfig {
        capacity: 64,
        batch_max: 16,
        batch_interval: Duration::from_millis(10),
        max_retries: 2,
        retry_backoff: Duration::from_millis(5),
        retention: None,
        ..WriterConfig::default()
    };
    let writer = StoreWriter::spawn(store, config);
    let started = crate::clock::Clock::system().instant();
    let mut accepted = 0u64;
    for i in 0..20_000 {
        if writer.try_send(result("down", None, T0 + i, Outcome::Match)) {
            accepted += 1;
        }
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "try_send blocked: {elapsed:?} for 20k sends"
    );
    tokio::time::timeout(Duration::from_secs(60), writer.flush())
        .await
        .expect("flush finishes");
    let c = writer.counters();
    assert_eq!(c.written, 0);
    assert!(c.dropped_full > 0, "{c:?}");
    assert_eq!(c.dropped_full + accepted, 20_000, "{c:?}");
    assert_eq!(
        c.dropped_error, accepted,
        "every accepted result was dropped after retries: {c:?}"
    );
    assert!(c.retries >= 2, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_on_unreachable_postgres_drops_and_counts() {
    // Port 1 on loopback: nothing listens, connections are refused.
    let store =
        Store::open_lazy_for_tests("postgres://sy:sy@127.0.0.1:1/none", Path::new("/")).unwrap();
    assert_down_store_drops_without_blocking(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_on_broken_sqlite_drops_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open("sqlite://broken.db", dir.path()).await.unwrap();
    // Every batch now fails inside its transaction, as with a corrupt or foreign database.
    sqlx::query("DROP TABLE shadow_buckets")
        .execute(store.pool())
        .await
        .unwrap();
    assert_down_store_drops_without_blocking(store).await;
}

/// The admin API (axum) needs `Send` futures from every read and write it calls.
#[tokio::test]
async fn store_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let store = Store::open_lazy_for_tests("sqlite::memory:", Path::new("/")).unwrap();
    send(&store.report(
        &ReportFilter::default(),
        &ReportPolicy::default(),
        &noise_rule,
    ));
    send(&store.list_audit(&AuditFilter::default()));
    send(&store.append_audit(&audit_at(0)));
    send(&store.save_generation(&generation(1)));
    send(&store.write_shadow_batch(&[], 5));
    send(&store.retain_at(0, Duration::from_secs(1), 1));
    send(&store.sample(1));
}
