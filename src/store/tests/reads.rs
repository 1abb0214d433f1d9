//! Report figures checked against the known workload of `fixtures::workload`.

use std::collections::BTreeMap;

use super::*;

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

fn reasons(pairs: &[(&str, u64)]) -> BTreeMap<SkipReason, u64> {
    pairs
        .iter()
        .map(|(k, v)| (SkipReason::parse(k).unwrap(), *v))
        .collect()
}

fn counts(compared: u64, matched: u64, mismatched: u64, noise_only: u64, errors: u64) -> Counts {
    Counts {
        compared,
        matched,
        mismatched,
        noise_only,
        errors,
        ..Counts::default()
    }
}

fn in_bin_of(estimate: Option<f64>, truth: f64) -> bool {
    let (lo, hi) = bin_bounds_ms(bin_index(truth));
    estimate.is_some_and(|e| e >= lo && e <= hi)
}

pub(super) async fn report_matches_the_injected_workload(store: Store) {
    inject_workload(&store).await;
    let filter = ReportFilter {
        by_tenant: true,
        ..Default::default()
    };
    let report = store
        .report(&filter, &ReportPolicy::default(), &noise_rule)
        .await
        .unwrap();
    let names: Vec<&str> = report.routes.iter().map(|r| r.route.as_str()).collect();
    assert_eq!(names, ["cards", "orders", "users"]);
    let route = |name: &str| report.routes.iter().find(|r| r.route == name).unwrap();

    // cards: ready at exactly the 99.0% target.
    let cards = &route("cards").scope;
    let expected = Counts {
        skipped: 7,
        skipped_by_reason: reasons(&[("body_too_large", 5), ("queue_full", 2)]),
        self_checked: 20,
        ..counts(200, 150, 0, 48, 2)
    };
    assert_eq!(cards.counts, expected);
    assert!(close(cards.parity.percent, 99.0));
    // Wilson 95% for 198/200, computed by hand: (96.4278…, 99.7253…).
    assert!(
        close(cards.parity.ci95_low, 96.427_823_828_382_32),
        "{:?}",
        cards.parity
    );
    assert!(
        close(cards.parity.ci95_high, 99.725_334_186_645_55),
        "{:?}",
        cards.parity
    );
    assert_eq!(cards.verdict, Verdict::Ready, "{}", cards.verdict_reason);
    assert_eq!(cards.differing_paths, 1);
    let p = &cards.top_paths[0];
    assert_eq!(
        (p.pattern.as_str(), p.kind.as_str(), p.count),
        ("/generated_at", "value", 48)
    );
    assert!((p.rate - 0.24).abs() < 1e-12);
    assert_eq!(
        (p.first_seen_ms, p.last_seen_ms),
        (T0 + 150, T0 + 120_000 + 197)
    );
    assert_eq!(
        (p.classification, p.noise, p.self_diffs),
        (NoiseFlag::Noise, true, 20)
    );
    assert!(p.sample_ids.is_empty());
    let sides: Vec<(&str, u64)> = cards
        .latency
        .iter()
        .map(|l| (l.side.as_str(), l.count))
        .collect();
    assert_eq!(sides, [("legacy", 200), ("new", 198)]);
    for (l, truth) in cards.latency.iter().zip([10.0, 20.0]) {
        for q in [l.p50_ms, l.p95_ms, l.p99_ms] {
            assert!(in_bin_of(q, truth), "{} {q:?} vs {truth}", l.side);
        }
    }
    let tenants: Vec<(Option<&str>, &Counts)> = route("cards")
        .tenants
        .iter()
        .map(|t| (t.tenant.as_deref(), &t.scope.counts))
        .collect();
    let acme = Counts {
        skipped: 7,
        skipped_by_reason: reasons(&[("body_too_large", 5), ("queue_full", 2)]),
        self_checked: 10,
        ..counts(100, 75, 0, 24, 1)
    };
    let globex = Counts {
        self_checked: 10,
        ..counts(100, 75, 0, 24, 1)
    };
    assert_eq!(tenants, [(Some("acme"), &acme), (Some("globex"), &globex)]);
    let acme_scope = &route("cards").tenants[0].scope;
    assert_eq!(acme_scope.verdict, Verdict::Ready);
    assert!(close(acme_scope.parity.ci95_low, 94.551_380_382_129_45));
    assert_eq!(acme_scope.top_paths[0].count, 24);

    // users: a real mismatch.
    let users = &route("users").scope;
    assert_eq!(users.counts, counts(120, 100, 20, 0, 0));
    assert!(close(users.parity.ci95_low, 75.654_718_606_737_73));
    assert!(close(users.parity.ci95_high, 88.944_003_632_015_4));
    assert_eq!(users.verdict, Verdict::NotReady);
    assert!(
        users.verdict_reason.contains("/email"),
        "{}",
        users.verdict_reason
    );
    let paths: Vec<(&str, u64, NoiseFlag, usize)> = users
        .top_paths
        .iter()
        .map(|p| {
            (
                p.pattern.as_str(),
                p.count,
                p.classification,
                p.sample_ids.len(),
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            ("/email", 20, NoiseFlag::Real, 5),
            ("/items/*/price", 10, NoiseFlag::Real, 5)
        ],
        "an element-wise pattern counts once per result; k = 5 samples each"
    );
    let stored = store
        .sample(users.top_paths[0].sample_ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            stored.route.as_str(),
            stored.pattern.as_str(),
            stored.kind.as_str()
        ),
        ("users", "/email", "value")
    );
    assert_eq!(stored.tenant.as_deref(), Some("acme"));
    assert!(stored.pair.uri.starts_with("/api/users/1"));
    assert_eq!(
        stored.pair.request_headers,
        vec![("x-tenant-id".to_string(), "acme".to_string())]
    );
    let text = serde_json::to_string(&stored).unwrap();
    for secret in ["top-secret", "sid=abc", "p=1", "s=2"] {
        assert!(!text.contains(secret), "{secret} reached storage: {text}");
    }

    // orders: all matching, too few to judge.
    let orders = route("orders");
    assert_eq!(orders.scope.counts, counts(30, 30, 0, 0, 0));
    assert!(close(orders.scope.parity.percent, 100.0));
    assert!(close(orders.scope.parity.ci95_low, 88.648_660_682_603_12));
    assert_eq!(orders.scope.verdict, Verdict::InsufficientData);
    assert_eq!(orders.tenants.len(), 1);
    assert_eq!(orders.tenants[0].tenant, None);

    // Samples for a what-if: newest first.
    let newest = store.samples_for_route("users", 3).await.unwrap();
    assert_eq!(newest.len(), 3);
    assert!(newest.windows(2).all(|w| w[0].at_ms >= w[1].at_ms));
    assert_eq!(
        store.samples_for_route("users", 100).await.unwrap().len(),
        10
    );
    assert!(
        store
            .samples_for_route("orders", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.sample(i64::MAX).await.unwrap(), None);

    // The JSON the admin API will serve.
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(v["routes"][0]["route"], "cards");
    assert_eq!(v["routes"][0]["verdict"], "ready");
    assert_eq!(v["routes"][0]["compared"], 200);
    assert_eq!(v["routes"][0]["skipped_by_reason"]["queue_full"], 2);
    assert_eq!(v["routes"][0]["top_paths"][0]["classification"], "noise");
    assert_eq!(v["routes"][0]["top_paths"][0]["noise"], true);
    assert_eq!(v["routes"][0]["tenants"][1]["tenant"], "globex");
    assert_eq!(v["routes"][1]["verdict"], "insufficient_data");
    assert_eq!(v["routes"][2]["verdict"], "not_ready");
    assert_eq!(v["routes"][2]["top_paths"][0]["classification"], "real");
    assert_eq!(v["routes"][2]["top_paths"][0]["noise"], false);
}

pub(super) async fn report_windows_and_tenant_filter(store: Store) {
    inject_workload(&store).await;
    let policy = ReportPolicy::default();
    let run = |filter: ReportFilter, policy: ReportPolicy| {
        let store = store.clone();
        async move { store.report(&filter, &policy, &noise_rule).await.unwrap() }
    };

    // Third minute only (the minute holding `since` counts whole).
    let r = run(
        ReportFilter {
            since_ms: Some(T0 + 120_500),
            ..Default::default()
        },
        policy.clone(),
    )
    .await;
    assert_eq!(r.routes.len(), 1);
    assert_eq!(
        r.routes[0].scope.counts,
        Counts {
            self_checked: 6,
            ..counts(66, 50, 0, 16, 0)
        }
    );

    // First minute only.
    let r = run(
        ReportFilter {
            until_ms: Some(T0 + 59_999),
            ..Default::default()
        },
        policy.clone(),
    )
    .await;
    let by_name: BTreeMap<&str, &Counts> = r
        .routes
        .iter()
        .map(|r| (r.route.as_str(), &r.scope.counts))
        .collect();
    let first_minute_cards = Counts {
        skipped: 7,
        skipped_by_reason: reasons(&[("body_too_large", 5), ("queue_full", 2)]),
        self_checked: 7,
        ..counts(67, 50, 0, 16, 1)
    };
    assert_eq!(by_name["cards"], &first_minute_cards);
    assert_eq!(by_name["users"], &counts(120, 100, 20, 0, 0));
    assert_eq!(by_name["orders"], &counts(30, 30, 0, 0, 0));

    // One tenant.
    let f = ReportFilter {
        tenant: Some("globex".into()),
        ..Default::default()
    };
    let r = run(f, policy.clone()).await;
    assert_eq!(r.routes.len(), 1);
    assert_eq!(
        r.routes[0].scope.counts,
        Counts {
            self_checked: 10,
            ..counts(100, 75, 0, 24, 1)
        }
    );

    // One route, with per-route targets and thresholds.
    let strict = ReportPolicy {
        target_parity: [("cards".to_owned(), 99.5)].into_iter().collect(),
        ..policy.clone()
    };
    let f = ReportFilter {
        route: Some("cards".into()),
        ..Default::default()
    };
    let r = run(f.clone(), strict).await;
    assert_eq!(r.routes.len(), 1);
    assert_eq!(r.routes[0].scope.parity.target, 99.5);
    assert_eq!(r.routes[0].scope.verdict, Verdict::NotReady);
    assert!(r.routes[0].scope.verdict_reason.contains("below target"));
    let demanding = ReportPolicy {
        min_samples: 250,
        ..policy.clone()
    };
    assert_eq!(
        run(f, demanding).await.routes[0].scope.verdict,
        Verdict::InsufficientData
    );

    // Truncated listing, verdict still sees every path.
    let short = ReportPolicy {
        top_paths: 1,
        ..policy.clone()
    };
    let f = ReportFilter {
        route: Some("users".into()),
        ..Default::default()
    };
    let users = run(f, short).await.routes.remove(0).scope;
    assert_eq!((users.top_paths.len(), users.differing_paths), (1, 2));
    assert_eq!(users.verdict, Verdict::NotReady);

    // Nothing in range: an empty report, not an error.
    let f = ReportFilter {
        since_ms: Some(T0 + 3_600_000),
        ..Default::default()
    };
    assert!(run(f, policy).await.routes.is_empty());
}
