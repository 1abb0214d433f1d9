//! Rendering of `switchyard report` answers: Markdown, table, one sample, request paths.

#![allow(clippy::unwrap_used)]
use super::*;
use serde_json::json;

fn report() -> Value {
    json!({
        "since_ms": null, "until_ms": null,
        "routes": [{
            "route": "cards", "compared": 300, "matched": 0, "mismatched": 300,
            "noise_only": 0, "errors": 0, "skipped": 2,
            "skipped_by_reason": {"queue_full": 2},
            "parity": {"percent": 0.0, "ci95_low": 0.0, "ci95_high": 1.26, "target": 99.0},
            "latency": [{"side": "legacy", "count": 300, "p50_ms": 1.5, "p95_ms": 3.0, "p99_ms": 12.0}],
            "top_paths": [
                {"pattern": "/price", "kind": "value", "count": 300, "rate": 1.0,
                 "classification": "real", "noise": false, "first_seen_ms": 1700000000000i64,
                 "last_seen_ms": 1700000060000i64, "sample_ids": [4, 9]},
                {"pattern": "/a|b", "kind": "value", "count": 3, "rate": 0.01,
                 "classification": "noise", "noise": true, "first_seen_ms": 1700000000000i64,
                 "last_seen_ms": 1700000000000i64, "sample_ids": []}
            ],
            "verdict": "not_ready",
            "verdict_reason": "1 real mismatching path(s), e.g. /price (value) in 300 of 300 compared",
            "suggested_ignore": [{"ignore": "/request_id", "looks_like": "uuid"}]
        }]
    })
}

#[test]
fn markdown_has_a_summary_then_the_paths() {
    let md = markdown(&report());
    assert!(
        md.contains(
            "| cards | **not_ready** | 0.00% | 0.00–1.26% | 99.0% | 300 | 300 | 0 | 0 | 2 |"
        ),
        "{md}"
    );
    assert!(md.contains("| `/price` | value | 300 | 100.0% | real | 2023-11-14T22:13:20Z | 2023-11-14T22:14:20Z | 4,9 |"), "{md}");
    assert!(md.contains("`/a\\|b`"), "pipes are escaped: {md}");
    assert!(
        md.contains("Suggested `ignore`: /request_id (uuid)"),
        "{md}"
    );
    let summary = md.find("| Route |").unwrap();
    assert!(summary < md.find("#### cards").unwrap());
}

#[test]
fn table_reads_as_a_verdict_line_and_columns() {
    let t = table(&report());
    assert!(
        t.contains("cards  NOT_READY  parity 0.00% (95% CI 0.00–1.26%, target 99.0%)"),
        "{t}"
    );
    assert!(t.contains("skipped 2 (queue_full 2)"), "{t}");
    assert!(t.contains("legacy 1.50 / 3.00 / 12 ms"), "{t}");
    assert!(t.contains("/price"), "{t}");
    assert_eq!(
        table(&json!({})),
        "shadow report, everything kept\nno shadow results in this window\n"
    );
}

#[test]
fn sample_shows_a_unified_diff_and_the_curl_line() {
    let s = json!({
        "id": 4, "route": "cards", "tenant": "acme", "pattern": "/price", "kind": "value",
        "at_ms": 1700000000000i64,
        "request": {"method": "GET", "uri": "/api/cards/1"},
        "primary": {"side": "legacy", "status": 200, "elapsed_ms": 1.0, "body": "{\"id\":1,\"price\":10}"},
        "shadow": {"side": "new", "status": 200, "elapsed_ms": 2.0, "body": "{\"id\":1,\"price\":11}"},
        "differences": [{"path": "/price", "kind": "value", "primary": "10", "shadow": "11"}],
        "body_compared_as": "json_sniffed",
        "body_comparison": "compared as JSON (sniffed: no JSON content type, both bodies parse)",
        "curl": "curl 'http://h/api/cards/1' -H 'x-tenant-id: acme'"
    });
    let out = sample(&s);
    assert!(
        out.contains(
            "\nbody compared as JSON (sniffed: no JSON content type, both bodies parse)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("--- legacy (primary)\n+++ new (shadow)\n"),
        "{out}"
    );
    assert!(
        out.contains("-  \"price\": 10\n+  \"price\": 11\n"),
        "{out}"
    );
    assert!(!out.contains("No newline"), "{out}");
    assert!(
        out.contains("replay (credentials removed):\ncurl 'http://h/api/cards/1'"),
        "{out}"
    );
}

#[test]
fn paths_carry_the_filters() {
    let args = ReportArgs {
        route: Some("cards".into()),
        since: Some("1h".into()),
        by_tenant: true,
        ..ReportArgs::default()
    };
    assert_eq!(
        args.path(),
        "/admin/shadow/report?route=cards&since=1h&by_tenant=true"
    );
    assert_eq!(ReportArgs::default().path(), "/admin/shadow/report");
    let one = ReportArgs {
        sample: Some(7),
        ..ReportArgs::default()
    };
    assert_eq!(one.path(), "/admin/shadow/samples/7");
}
