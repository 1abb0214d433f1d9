//! A known shadow workload written straight into a gateway's store, and a gateway with admin
//! tokens and a shadowed `cards` route to read it through (shared by the report and the
//! dashboard tests).
#![allow(dead_code)]

use switchyard::rules::Side;
use switchyard::store::{
    DiffRecord, Outcome, SamplePair, SampleResponse, SelfCheck, ShadowResult, SkipReason, Store,
};

use crate::helpers::tokens_file;
use crate::support::{self, TestGateway, Upstream};

/// Route extra for `cards`: shadowed, parity target 95 %.
pub const SHADOWED: &str = "shadow = { percent = 100, target_parity = 95 }\n\
    compare = { ignore = [\"/generated_at\"] }";

/// The harness config with a tokens file and `route_extra` on `cards`, plus `tail`.
pub fn report_config(legacy: &str, new: &str, route_extra: &str, tail: &str) -> String {
    let text = support::config(legacy, new, route_extra).replace(
        "debug_headers = true\n",
        "debug_headers = true\ntokens_file = \"tokens.toml\"\n",
    );
    format!("{text}\n{tail}\n")
}

/// A gateway with a shadowed `cards` route, admin tokens and a SQLite store in its temp dir.
pub async fn report_gateway(
    tail: &str,
    files: &[(&str, &[u8])],
) -> (TestGateway, Upstream, Upstream) {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let text = report_config(&legacy.url(), &new.url(), SHADOWED, tail);
    let tokens = tokens_file();
    let mut all: Vec<(&str, &[u8])> = vec![("tokens.toml", tokens.as_bytes())];
    all.extend_from_slice(files);
    let gw = TestGateway::start_with(&text, &all, false).await;
    (gw, legacy, new)
}

fn uuid(i: usize, side: u8) -> String {
    format!("{:08x}-4a1b-4c2d-8e3f-{:04x}{:08x}", i, side, i * 7919)
}

fn body(i: usize, price: u32, side: u8) -> String {
    format!(
        r#"{{"id":{i},"name":"card {i}","price":{price},"request_id":"{}","tags":["a","b"]}}"#,
        uuid(i, side)
    )
}

fn pair(i: usize, tenant: &str, shadow_price: u32) -> SamplePair {
    let response = |side: Side, price: u32, n: u8| SampleResponse {
        side,
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body(i, price, n),
        elapsed_ms: if side == Side::Legacy { 12.0 } else { 30.0 },
    };
    SamplePair {
        method: "GET".into(),
        uri: format!("/api/cards/{i}"),
        request_headers: vec![
            ("host".into(), "gateway.test".into()),
            ("authorization".into(), "Bearer customer-secret".into()),
            ("x-tenant-id".into(), tenant.into()),
            ("accept".into(), "application/json".into()),
        ],
        request_body: None,
        primary: response(Side::Legacy, 10, 1),
        shadow: response(Side::New, shadow_price, 2),
    }
}

fn diff(pattern: &str, primary: &str, shadow: &str) -> DiffRecord {
    DiffRecord {
        pattern: pattern.into(),
        kind: "value".into(),
        primary: Some(primary.into()),
        shadow: Some(shadow.into()),
    }
}

/// The workload, all within the last few minutes, on route `cards`:
/// - 150 matches (acme 100, globex 50), 20 of them with a self-check where `/request_id`
///   differed (so `/request_id` is learned noise);
/// - 30 noise-only results (globex) differing on `/request_id`;
/// - 18 mismatches (acme) differing on `/price` (10 → 11) and `/request_id`;
/// - 2 errors (acme), 5 skips (`body_too_large`, acme).
///
/// Expected: compared 200, parity 180/200 = 90 %, `/price` real → `not_ready`.
pub fn workload(now_ms: i64) -> Vec<ShadowResult> {
    let mut out = Vec::new();
    let base = ShadowResult {
        at_ms: now_ms - 120_000,
        route: "cards".into(),
        tenant: None,
        primary_side: Side::Legacy,
        outcome: Outcome::Match,
        skip_reason: None,
        error: None,
        primary_ms: Some(12.0),
        shadow_ms: Some(30.0),
        diffs: Vec::new(),
        self_check: None,
        sample: None,
    };
    for i in 0..150 {
        let tenant = if i < 100 { "acme" } else { "globex" };
        out.push(ShadowResult {
            at_ms: now_ms - 120_000 + i as i64,
            tenant: Some(tenant.into()),
            self_check: (i < 20).then(|| SelfCheck {
                differing_patterns: vec!["/request_id".into()],
            }),
            ..base.clone()
        });
    }
    for i in 0..30 {
        out.push(ShadowResult {
            at_ms: now_ms - 60_000 + i as i64,
            tenant: Some("globex".into()),
            outcome: Outcome::NoiseOnly,
            diffs: vec![diff(
                "/request_id",
                &format!("\"{}\"", uuid(i, 1)),
                &format!("\"{}\"", uuid(i, 2)),
            )],
            sample: Some(pair(1000 + i, "globex", 10)),
            ..base.clone()
        });
    }
    for i in 0..18 {
        out.push(ShadowResult {
            at_ms: now_ms - 30_000 + i as i64,
            tenant: Some("acme".into()),
            outcome: Outcome::Mismatch,
            diffs: vec![
                diff("/price", "10", "11"),
                diff(
                    "/request_id",
                    &format!("\"{}\"", uuid(i, 1)),
                    &format!("\"{}\"", uuid(i, 2)),
                ),
            ],
            sample: Some(pair(2000 + i, "acme", 11)),
            ..base.clone()
        });
    }
    for i in 0..2 {
        out.push(ShadowResult {
            at_ms: now_ms - 20_000 + i,
            tenant: Some("acme".into()),
            outcome: Outcome::Error,
            error: Some("shadow timed out after 5s".into()),
            shadow_ms: None,
            ..base.clone()
        });
    }
    for i in 0..5 {
        out.push(ShadowResult {
            at_ms: now_ms - 10_000 + i,
            tenant: Some("acme".into()),
            outcome: Outcome::Skipped,
            skip_reason: Some(SkipReason::BodyTooLarge),
            primary_ms: None,
            shadow_ms: None,
            ..base.clone()
        });
    }
    out
}

/// Write the workload into `store` in one batch (reservoir of 5 samples per path).
pub async fn inject(store: &Store) {
    let stats = store
        .write_shadow_batch(&workload(switchyard::clock::Clock::system().now_ms()), 5)
        .await
        .unwrap();
    assert_eq!(stats.results, 205);
}
