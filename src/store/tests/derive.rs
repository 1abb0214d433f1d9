//! Outcomes derived when the report is read: learned noise applies to results written before it
//! was learned, ignore rules apply to stored differences, evidence ages with the noise window,
//! and both databases count alike.

use super::*;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// The comparison module's own noise rule (Fisher's exact test), as the gateway uses it.
fn fisher(c: &PathCounts) -> NoiseFlag {
    crate::shadow::noise_flag(c)
}

/// A compared result differing on `patterns` (value), with the outcome the live pipeline
/// stored.
fn differing(route: &str, at_ms: i64, outcome: Outcome, patterns: &[&str]) -> ShadowResult {
    let mut r = result(route, Some("acme"), at_ms, outcome);
    r.diffs = patterns.iter().map(|p| diff(p)).collect();
    r
}

/// Two identical services stamping a fresh id and time into every answer, 300 requests over
/// five minutes, a self-check on every fifth. The live pipeline needs 20 self-checks before it
/// calls the fields noise, so it stored the first 100 results as mismatches. Route `bug` is the
/// same plus a planted `/price` difference on 1 request in 200 (i = 7 and 207).
fn learned_noise_workload() -> Vec<ShadowResult> {
    let mut out = Vec::new();
    for route in ["ids", "bug"] {
        for i in 0..300i64 {
            let mut patterns = vec!["/request_id", "/at"];
            if route == "bug" && i % 200 == 7 {
                patterns.push("/price");
            }
            let learned = i >= 100 && !patterns.contains(&"/price");
            let outcome = if learned {
                Outcome::NoiseOnly
            } else {
                Outcome::Mismatch
            };
            let mut r = differing(route, T0 + i * 1_000, outcome, &patterns);
            if i % 5 == 0 {
                r.self_check = Some(SelfCheck {
                    differing_patterns: vec!["/at".into(), "/request_id".into()],
                });
            }
            out.push(r);
        }
    }
    out
}

/// Ignores `/request_id` and `/at` on every route, as `compare = { ignore = […] }` would.
struct IgnoreIds;

impl PathRules for IgnoreIds {
    fn noise(&self, c: &PathCounts) -> NoiseFlag {
        fisher(c)
    }

    fn counts(&self, _route: &str, pattern: &str, _kind: &str) -> bool {
        !matches!(pattern, "/request_id" | "/at")
    }
}

fn route<'a>(report: &'a Report, name: &str) -> &'a RouteReport {
    report.routes.iter().find(|r| r.route == name).unwrap()
}

pub(super) async fn learned_noise_counts_for_results_written_before_it(store: Store) {
    for chunk in learned_noise_workload().chunks(64) {
        store.write_shadow_batch(chunk, 0).await.unwrap();
    }
    let filter = ReportFilter {
        by_tenant: true,
        ..Default::default()
    };
    let policy = ReportPolicy::default();
    let report = store.report(&filter, &policy, &fisher).await.unwrap();

    // Hand count: 300 compared, every one differing only on the two noise fields.
    let ids = &route(&report, "ids").scope;
    assert_eq!(
        ids.counts,
        Counts {
            compared: 300,
            noise_only: 300,
            self_checked: 60,
            ..Counts::default()
        }
    );
    assert_eq!(ids.parity.percent, Some(100.0));
    let (lo, _) = wilson_interval(300, 300, Z95).unwrap();
    assert_eq!(ids.parity.ci95_low, Some(100.0 * lo));
    assert_eq!(ids.verdict, Verdict::Ready, "{}", ids.verdict_reason);
    let classes: Vec<(&str, NoiseFlag, u64)> = ids
        .top_paths
        .iter()
        .map(|p| (p.pattern.as_str(), p.classification, p.count))
        .collect();
    assert_eq!(
        classes,
        [
            ("/at", NoiseFlag::Noise, 300),
            ("/request_id", NoiseFlag::Noise, 300)
        ]
    );
    assert_eq!(route(&report, "ids").tenants[0].scope.counts, ids.counts);

    // The planted difference is still real: 2 mismatched, the rest noise.
    let bug = &route(&report, "bug").scope;
    assert_eq!(
        (
            bug.counts.compared,
            bug.counts.matched,
            bug.counts.mismatched,
            bug.counts.noise_only
        ),
        (300, 0, 2, 298)
    );
    assert_eq!(bug.verdict, Verdict::NotReady);
    assert!(
        bug.verdict_reason.contains("/price"),
        "{}",
        bug.verdict_reason
    );
    let price = bug
        .top_paths
        .iter()
        .find(|p| p.pattern == "/price")
        .unwrap();
    assert_eq!((price.count, price.classification), (2, NoiseFlag::Real));

    // The same stored results under `ignore` rules for the two fields: all matched.
    let ignored = store.report(&filter, &policy, &IgnoreIds).await.unwrap();
    let ids_ignored = &route(&ignored, "ids").scope;
    assert_eq!(
        (ids_ignored.counts.matched, ids_ignored.counts.mismatched),
        (300, 0)
    );
    assert_eq!(ids_ignored.parity.percent, ids.parity.percent);
    assert!(
        ids_ignored.top_paths.is_empty(),
        "ignored paths leave the list"
    );
    let bug_ignored = &route(&ignored, "bug").scope;
    assert_eq!(
        (
            bug_ignored.counts.matched,
            bug_ignored.counts.mismatched,
            bug_ignored.counts.noise_only
        ),
        (298, 2, 0)
    );
    assert_eq!(bug_ignored.differing_paths, 1);

    // The timeline derives the same counts, minute by minute.
    let tl = store
        .timeline(&ReportFilter::default(), MINUTE, &policy, &fisher)
        .await
        .unwrap();
    for name in ["ids", "bug"] {
        let points = &tl.iter().find(|r| r.route == name).unwrap().points;
        assert_eq!(points.len(), 5);
        let sum = |f: fn(&TimelinePoint) -> u64| points.iter().map(f).sum::<u64>();
        let scope = &route(&report, name).scope.counts;
        assert_eq!(
            (
                sum(|p| p.compared),
                sum(|p| p.matched),
                sum(|p| p.mismatched),
                sum(|p| p.noise_only)
            ),
            (
                scope.compared,
                scope.matched,
                scope.mismatched,
                scope.noise_only
            ),
            "{name}"
        );
    }
}

pub(super) async fn noise_evidence_ages_out_of_the_window(store: Store) {
    // Two hours in which /at differs between two calls of the primary (noise)…
    let mut batch = Vec::new();
    for m in 0..120 {
        let mut r = differing("age", T0 + m * MINUTE, Outcome::NoiseOnly, &["/at"]);
        r.self_check = Some(SelfCheck {
            differing_patterns: vec!["/at".into()],
        });
        batch.push(r);
    }
    // …then a day and more in which it is stable within the primary and matches across sides…
    for m in 120..(26 * 60) {
        let mut r = result("age", Some("acme"), T0 + m * MINUTE, Outcome::Match);
        r.self_check = Some(SelfCheck::default());
        batch.push(r);
    }
    // …and then differs across sides again: a regression on a field no longer noisy.
    let end = T0 + 26 * HOUR;
    for m in 0..3 {
        batch.push(differing(
            "age",
            end + m * MINUTE,
            Outcome::NoiseOnly,
            &["/at"],
        ));
    }
    for chunk in batch.chunks(500) {
        store.write_shadow_batch(chunk, 0).await.unwrap();
    }

    let recent = ReportFilter {
        since_ms: Some(end),
        ..Default::default()
    };
    let day = ReportPolicy::default();
    let r = store.report(&recent, &day, &fisher).await.unwrap();
    let scope = &r.routes[0].scope;
    assert_eq!(scope.top_paths[0].pattern, "/at");
    assert_eq!(scope.top_paths[0].classification, NoiseFlag::Real);
    assert_eq!(
        scope.top_paths[0].self_diffs, 0,
        "old self differences aged out"
    );
    assert_eq!((scope.counts.mismatched, scope.counts.noise_only), (3, 0));
    assert_eq!(scope.verdict, Verdict::NotReady);

    // With a window long enough to still hold the noisy hours, the same data reads as noise.
    let two_days = ReportPolicy {
        noise_window_ms: 48 * HOUR,
        ..ReportPolicy::default()
    };
    let r = store.report(&recent, &two_days, &fisher).await.unwrap();
    let scope = &r.routes[0].scope;
    assert_eq!(scope.top_paths[0].classification, NoiseFlag::Noise);
    assert_eq!((scope.counts.mismatched, scope.counts.noise_only), (0, 3));

    // The classification is the current one whatever the report's window: read back now, the
    // noisy hours' differences on /at are mismatches too, /at being noise no longer.
    let early = ReportFilter {
        until_ms: Some(T0 + 2 * HOUR - 1),
        ..Default::default()
    };
    let r = store.report(&early, &day, &fisher).await.unwrap();
    let c = &r.routes[0].scope.counts;
    assert_eq!((c.compared, c.mismatched, c.noise_only), (120, 120, 0));
}

pub(super) async fn results_stored_before_difference_sets_keep_their_outcome(store: Store) {
    let mut batch = Vec::new();
    for i in 0..10 {
        batch.push(differing("old", T0 + i, Outcome::Mismatch, &["/a"]));
        batch.push(differing("old", T0 + i, Outcome::NoiseOnly, &["/b"]));
        batch.push(result("old", Some("acme"), T0 + i, Outcome::Match));
    }
    // A result claiming to differ without saying where cannot be re-derived.
    batch.push(result("old", Some("acme"), T0, Outcome::Mismatch));
    store.write_shadow_batch(&batch, 0).await.unwrap();
    // As a store written before migration 0002 holds them: bucket counters, no sets; the
    // migration's backfill gives them the reserved sets.
    sqlx::query("DELETE FROM shadow_set_counts")
        .execute(store.pool())
        .await
        .unwrap();
    let migration = include_str!("../../../migrations/sqlite/0002_diff_sets.sql");
    assert_eq!(
        migration,
        include_str!("../../../migrations/postgres/0002_diff_sets.sql")
            .replacen(
                "PostgreSQL dialect. Keep in step with ../sqlite",
                "SQLite dialect. Keep in step with ../postgres",
                1
            )
            .replace(
                "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                "id INTEGER PRIMARY KEY AUTOINCREMENT"
            ),
        "same schema in both dialects"
    );
    for statement in migration.split(';') {
        let statement = statement
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if statement.trim_start().starts_with("INSERT") {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(store.pool())
                .await
                .unwrap();
        }
    }
    let r = store
        .report(
            &ReportFilter::default(),
            &ReportPolicy::default(),
            &|_: &PathCounts| NoiseFlag::Noise,
        )
        .await
        .unwrap();
    let c = &r.routes[0].scope.counts;
    assert_eq!(
        (c.compared, c.matched, c.mismatched, c.noise_only),
        (31, 10, 11, 10)
    );
}

/// The learned-noise workload on one store, read back as JSON (no samples: their ids come from
/// a random reservoir).
async fn derived_json(store: &Store) -> serde_json::Value {
    for chunk in learned_noise_workload().chunks(37) {
        store.write_shadow_batch(chunk, 0).await.unwrap();
    }
    let filter = ReportFilter {
        by_tenant: true,
        ..Default::default()
    };
    let policy = ReportPolicy::default();
    let report = store.report(&filter, &policy, &fisher).await.unwrap();
    let timeline = store
        .timeline(&filter, 2 * MINUTE, &policy, &fisher)
        .await
        .unwrap();
    serde_json::json!({"report": report, "timeline": timeline})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_count_alike() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open("sqlite://alike.db", dir.path()).await.unwrap();
    let from_sqlite = derived_json(&sqlite).await;
    sqlite.close().await;
    assert_eq!(from_sqlite["report"]["routes"][1]["noise_only"], 300);
    on_postgres("sqlite_and_postgres_count_alike", |pg| async move {
        let from_pg = derived_json(&pg).await;
        assert_eq!(from_pg, from_sqlite);
    })
    .await;
}
