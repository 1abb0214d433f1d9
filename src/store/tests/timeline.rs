//! The timeline folds per-minute aggregates into wider buckets, per route.

use super::*;

pub(super) async fn timeline_folds_minutes_into_buckets(store: Store) {
    // Minute 0: 3 match + 1 mismatch; minute 1: 1 mismatch + 1 skipped; minute 5: 2 errors;
    // minute 0 is on a 5-minute boundary.
    let five = 300_000;
    let base = T0 - T0.rem_euclid(five) + five;
    let mut batch = Vec::new();
    for (offset, outcome) in [
        (0, Outcome::Match),
        (10, Outcome::Match),
        (20, Outcome::Match),
        (30, Outcome::Mismatch),
        (60_000, Outcome::Mismatch),
        (60_001, Outcome::Skipped),
        (300_000, Outcome::Error),
        (300_500, Outcome::Error),
    ] {
        batch.push(result("cards", Some("acme"), base + offset, outcome));
    }
    batch.push(result("users", None, base, Outcome::Match));
    store.write_shadow_batch(&batch, 0).await.unwrap();

    let filter = ReportFilter {
        route: Some("cards".into()),
        ..Default::default()
    };
    let tl = store
        .timeline(&filter, five, &ReportPolicy::default(), &noise_rule)
        .await
        .unwrap();
    assert_eq!(tl.len(), 1);
    assert_eq!(tl[0].route, "cards");
    let points: Vec<(i64, u64, u64, u64, u64)> = tl[0]
        .points
        .iter()
        .map(|p| (p.at_ms, p.compared, p.mismatched, p.errors, p.skipped))
        .collect();
    assert_eq!(
        points,
        vec![(base, 5, 2, 0, 1), (base + five, 2, 0, 2, 0)],
        "{tl:?}"
    );
    assert!((tl[0].points[0].mismatch_rate.unwrap() - 0.4).abs() < 1e-12);
    assert_eq!(tl[0].points[1].error_rate, Some(1.0));

    // One-minute buckets, both routes, a window that starts at minute 1.
    let all = ReportFilter {
        since_ms: Some(base + 60_000),
        ..Default::default()
    };
    let tl = store
        .timeline(&all, 60_000, &ReportPolicy::default(), &noise_rule)
        .await
        .unwrap();
    let names: Vec<&str> = tl.iter().map(|r| r.route.as_str()).collect();
    assert_eq!(names, ["cards"], "users has nothing since minute 1");
    let at: Vec<i64> = tl[0].points.iter().map(|p| p.at_ms).collect();
    assert_eq!(at, vec![base + 60_000, base + five]);
    assert_eq!(tl[0].points[0].mismatch_rate, Some(1.0));
}
