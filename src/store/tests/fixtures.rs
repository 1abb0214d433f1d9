//! Records and the known workload the store tests inject.

use super::*;

/// A minute-aligned instant (2023-11-14T22:14:00Z).
pub(super) const T0: i64 = 1_700_000_040_000;

/// A shadow result with legacy as primary (10 ms) and new as shadow (20 ms).
pub(super) fn result(
    route: &str,
    tenant: Option<&str>,
    at_ms: i64,
    outcome: Outcome,
) -> ShadowResult {
    ShadowResult {
        at_ms,
        route: route.into(),
        tenant: tenant.map(Into::into),
        primary_side: Side::Legacy,
        outcome,
        skip_reason: None,
        error: None,
        primary_ms: Some(10.0),
        shadow_ms: Some(20.0),
        diffs: Vec::new(),
        self_check: None,
        sample: None,
    }
}

pub(super) fn diff(pattern: &str) -> DiffRecord {
    DiffRecord {
        pattern: pattern.into(),
        kind: "value".into(),
        primary: Some("1".into()),
        shadow: Some("2".into()),
    }
}

/// A sample pair carrying credentials the store must drop.
pub(super) fn sample(uri: &str) -> SamplePair {
    let response = |side: Side, cookie: &str| SampleResponse {
        side,
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("Set-Cookie".into(), cookie.into()),
        ],
        body: r#"{"email":"x"}"#.into(),
        elapsed_ms: 12.5,
    };
    SamplePair {
        method: "GET".into(),
        uri: uri.into(),
        request_headers: vec![
            ("authorization".into(), "Bearer top-secret".into()),
            ("Cookie".into(), "sid=abc".into()),
            ("x-tenant-id".into(), "acme".into()),
        ],
        request_body: None,
        primary: response(Side::Legacy, "p=1"),
        shadow: response(Side::New, "s=2"),
    }
}

pub(super) fn generation(g: u64) -> GenerationRecord {
    GenerationRecord {
        generation: g,
        hash: format!("sha256:{g:04}"),
        loaded_at_ms: T0 + i64::try_from(g).unwrap(),
        source: "/etc/switchyard/switchyard.toml".into(),
        content: format!("# generation {g}\n[listen]\nhttp = \"0.0.0.0:8080\"\n"),
        origin: if g == 1 {
            "start".into()
        } else {
            "file".into()
        },
    }
}

pub(super) fn audit_at(at_ms: i64) -> AuditEntry {
    AuditEntry {
        id: 0,
        at_ms,
        token_name: "ops".into(),
        action: "reload".into(),
        target: "*".into(),
        before: json!(null),
        after: json!({"generation": 2}),
        reason: None,
        generation: Some(2),
        dry_run: false,
        replica: None,
    }
}

/// The test's stand-in for the comparison module's statistical noise rule.
pub(super) fn noise_rule(c: &PathCounts) -> NoiseFlag {
    if c.self_total >= 10 && c.self_diffs * 2 >= c.self_total {
        NoiseFlag::Noise
    } else if c.cross_total >= 20 && c.cross_diffs >= 3 {
        NoiseFlag::Real
    } else {
        NoiseFlag::Undetermined
    }
}

/// The known workload (357 results over three minutes from T0):
/// - `cards`: 200 compared — i < 150 match, 150..198 noise-only on `/generated_at`, 198 and
///   199 errors (no shadow latency); even i → tenant acme, odd → globex; i < 20 self-checked
///   with `/generated_at` differing; minute = i % 3. Plus 5 `body_too_large` and 2
///   `queue_full` skips for acme at T0.
/// - `users` (tenant acme, at T0): 100 match, 20 mismatch on `/email`, of which the first 10
///   also differ on two array elements of `/items/*/price`; every mismatch offers a sample.
/// - `orders` (no tenant, at T0): 30 match.
pub(super) fn workload() -> Vec<ShadowResult> {
    let mut out = Vec::new();
    for i in 0..200i64 {
        let tenant = if i % 2 == 0 { "acme" } else { "globex" };
        let at = T0 + (i % 3) * 60_000 + i;
        let outcome = match i {
            0..150 => Outcome::Match,
            150..198 => Outcome::NoiseOnly,
            _ => Outcome::Error,
        };
        let mut r = result("cards", Some(tenant), at, outcome);
        if outcome == Outcome::NoiseOnly {
            r.diffs = vec![diff("/generated_at")];
        }
        if outcome == Outcome::Error {
            r.shadow_ms = None;
            r.error = Some("connect refused".into());
        }
        if i < 20 {
            r.self_check = Some(SelfCheck {
                differing_patterns: vec!["/generated_at".into()],
            });
        }
        out.push(r);
    }
    for (reason, n) in [(SkipReason::BodyTooLarge, 5), (SkipReason::QueueFull, 2)] {
        for _ in 0..n {
            let mut r = result("cards", Some("acme"), T0, Outcome::Skipped);
            r.skip_reason = Some(reason);
            r.primary_ms = None;
            r.shadow_ms = None;
            out.push(r);
        }
    }
    for i in 0..120i64 {
        let outcome = if i < 100 {
            Outcome::Match
        } else {
            Outcome::Mismatch
        };
        let mut r = result("users", Some("acme"), T0 + i, outcome);
        if outcome == Outcome::Mismatch {
            r.diffs.push(diff("/email"));
            if i < 110 {
                r.diffs.push(diff("/items/*/price"));
                r.diffs.push(diff("/items/*/price"));
            }
            r.sample = Some(sample(&format!("/api/users/{i}")));
        }
        out.push(r);
    }
    for i in 0..30i64 {
        out.push(result("orders", None, T0 + i, Outcome::Match));
    }
    out
}

/// Write the workload through a writer (several batches) and wait for it.
pub(super) async fn inject_workload(store: &Store) {
    let config = WriterConfig {
        batch_max: 64,
        ..WriterConfig::default()
    };
    let writer = StoreWriter::spawn(store.clone(), config);
    let results = workload();
    let n = u64::try_from(results.len()).unwrap();
    for r in results {
        assert!(writer.try_send(r));
    }
    writer.flush().await;
    assert_eq!(
        writer.counters(),
        WriterCounters {
            written: n,
            ..Default::default()
        }
    );
}
