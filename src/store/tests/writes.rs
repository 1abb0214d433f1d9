//! Reservoir sampling and retention.

use super::*;

/// Stored samples per (pattern, kind) of `route`.
async fn sample_counts(store: &Store, route: &str) -> Vec<(String, String, i64)> {
    let rows = sqlx::query(
        "SELECT pattern, kind, COUNT(*) AS n FROM shadow_samples WHERE route = $1 \
         GROUP BY pattern, kind ORDER BY pattern, kind",
    )
    .bind(route.to_owned())
    .fetch_all(store.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("pattern").unwrap(),
                r.try_get("kind").unwrap(),
                r.try_get("n").unwrap(),
            )
        })
        .collect()
}

fn mismatch(route: &str, at_ms: i64, patterns: &[&str]) -> ShadowResult {
    let mut r = result(route, Some("acme"), at_ms, Outcome::Mismatch);
    r.diffs = patterns.iter().map(|p| diff(p)).collect();
    r.sample = Some(sample(&format!("/{route}/{at_ms}")));
    r
}

pub(super) async fn reservoir_keeps_exactly_k_per_key(store: Store) {
    let config = WriterConfig {
        batch_max: 7,
        ..WriterConfig::default()
    };
    let writer = StoreWriter::spawn(store.clone(), config);
    for i in 0..200 {
        assert!(writer.try_send(mismatch("r", T0 + i, &["/a"])));
    }
    for i in 0..3 {
        assert!(writer.try_send(mismatch("r", T0 + 1_000 + i, &["/b"])));
    }
    for i in 0..4 {
        let mut m = result("r", None, T0 + 2_000 + i, Outcome::Match);
        m.sample = Some(sample("/match"));
        assert!(writer.try_send(m));
    }
    let mut skipped = result("r", None, T0, Outcome::Skipped);
    skipped.sample = Some(sample("/skipped"));
    assert!(writer.try_send(skipped));
    // One result differing on 20 patterns feeds at most 16 reservoirs.
    let wide: Vec<String> = (0..20).map(|i| format!("/f{i:02}")).collect();
    let wide: Vec<&str> = wide.iter().map(String::as_str).collect();
    assert!(writer.try_send(mismatch("wide", T0, &wide)));
    writer.flush().await;
    assert_eq!(writer.counters().written, 209);

    let expected: Vec<(String, String, i64)> = vec![
        (String::new(), "match".into(), 4),
        ("/a".into(), "value".into(), 5),
        ("/b".into(), "value".into(), 3),
    ];
    assert_eq!(sample_counts(&store, "r").await, expected);
    assert_eq!(sample_counts(&store, "wide").await.len(), 16);
    let seen: i64 = sqlx::query_scalar(
        "SELECT seen FROM shadow_reservoir WHERE route = $1 AND pattern = $2 AND kind = $3",
    )
    .bind("r".to_owned())
    .bind("/a".to_owned())
    .bind("value".to_owned())
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(seen, 200);
    // Algorithm R replaces as it goes: keeping exactly the first five offers out of 200 has
    // probability ~(5/200)^5.
    let kept = store.samples_for_route("r", 100).await.unwrap();
    assert!(
        kept.iter().any(|s| s.pattern == "/a" && s.at_ms >= T0 + 5),
        "{kept:?}"
    );

    // A smaller k, written straight through the batch API.
    let batch: Vec<ShadowResult> = (0..50).map(|i| mismatch("k2", T0 + i, &["/c"])).collect();
    for chunk in batch.chunks(10) {
        store.write_shadow_batch(chunk, 2).await.unwrap();
    }
    assert_eq!(
        sample_counts(&store, "k2").await,
        vec![("/c".into(), "value".into(), 2)]
    );
}

pub(super) async fn retention_deletes_by_age_and_caps_samples(store: Store) {
    let now = T0 + 10 * 86_400_000;
    let old_at = now - 2 * 86_400_000;
    let recent_at = now - 5 * 60_000;
    let mut batch = Vec::new();
    for i in 0..3 {
        let mut r = mismatch("ret", old_at + i, &["/old"]);
        r.self_check = Some(SelfCheck {
            differing_patterns: vec!["/old".into()],
        });
        batch.push(r);
    }
    let mut skip = result("ret", Some("acme"), old_at, Outcome::Skipped);
    skip.skip_reason = Some(SkipReason::RateLimited);
    batch.push(skip);
    for i in 0..4 {
        batch.push(mismatch("ret", recent_at + i, &["/new"]));
    }
    store.write_shadow_batch(&batch, 5).await.unwrap();

    let stats = store
        .retain_at(now, Duration::from_secs(86_400), 1_000)
        .await
        .unwrap();
    // Old minute: 1 outcome row, 1 skip row, 1 diff row, 1 self-diff row, 2 latency rows and
    // 1 difference-set count; the pattern /old and its set are no longer used.
    assert_eq!(
        stats,
        RetainStats {
            aggregate_rows: 7,
            samples_by_age: 3,
            samples_by_count: 0,
            reservoir_rows: 1,
            interned_rows: 2,
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
    let scope = &report.routes[0].scope;
    assert_eq!(
        (
            scope.counts.compared,
            scope.counts.mismatched,
            scope.counts.skipped
        ),
        (4, 4, 0)
    );
    assert_eq!(scope.top_paths.len(), 1);
    assert_eq!(scope.top_paths[0].pattern, "/new");
    assert_eq!(
        sample_counts(&store, "ret").await,
        vec![("/new".into(), "value".into(), 4)]
    );

    let stats = store
        .retain_at(now, Duration::from_secs(86_400), 2)
        .await
        .unwrap();
    assert_eq!(
        stats,
        RetainStats {
            samples_by_count: 2,
            ..RetainStats::default()
        }
    );
    let left: Vec<i64> = store
        .samples_for_route("ret", 10)
        .await
        .unwrap()
        .iter()
        .map(|s| s.at_ms)
        .collect();
    assert_eq!(
        left,
        vec![recent_at + 3, recent_at + 2],
        "the newest are kept"
    );

    // Nothing more to do: a second pass deletes nothing.
    let stats = store
        .retain_at(now, Duration::from_secs(86_400), 2)
        .await
        .unwrap();
    assert_eq!(stats, RetainStats::default());
}

pub(super) async fn writer_runs_retention_periodically(store: Store) {
    let config = WriterConfig {
        retention: Some(RetentionPolicy {
            max_age: Duration::from_secs(86_400),
            max_samples: 1_000,
            every: Duration::from_millis(100),
        }),
        ..WriterConfig::default()
    };
    let writer = StoreWriter::spawn(store.clone(), config);
    // T0 lies years in the past: the next retention pass removes it.
    assert!(writer.try_send(mismatch("stale", T0, &["/x"])));
    writer.flush().await;
    assert_eq!(writer.counters().written, 1);
    let clock = crate::clock::Clock::system();
    let deadline = clock.instant() + Duration::from_secs(10);
    loop {
        let report = store
            .report(
                &ReportFilter::default(),
                &ReportPolicy::default(),
                &noise_rule,
            )
            .await
            .unwrap();
        let samples = store.samples_for_route("stale", 10).await.unwrap();
        if report.routes.is_empty() && samples.is_empty() {
            break;
        }
        assert!(clock.instant() < deadline, "retention never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
