//! The dashboard in a real browser: a gateway holding a known shadow workload (plus traffic
//! and an audited rollout), and `tests/browser/dashboard.py` driving headless Chromium through
//! chromedriver to sign in with a read token, check the matrix, a verdict and a diff, and save
//! `target/dashboard.png`.
//!
//! Without `chromium` and `chromedriver` (or `python3`) the test says why and passes, unless
//! `SWITCHYARD_REQUIRE_BROWSER=1` (set by `.ci/run`), where a missing browser fails it.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "admin/helpers.rs"]
mod helpers;

#[path = "shadow_report/workload.rs"]
mod workload;

use std::path::{Path, PathBuf};

use helpers::*;
use serde_json::json;
use switchyard::rules::Side;
use switchyard::store::{DiffRecord, Outcome, ShadowResult};
use workload::*;

/// Routes beside `cards` so the matrix shows every state.
const MORE_ROUTES: &str = r#"
[[routes]]
name = "users"
path = "/api/users/{*rest}"
legacy = "legacy"
new = "cards"
state = "new"

[[routes]]
name = "invoices"
path = "/api/invoices/{*rest}"
legacy = "legacy"
new = "cards"
state = "legacy"
"#;

/// Earlier shadow results, every 30 minutes over the last 20 hours, with the share of
/// `/price` mismatches falling as the new side was fixed: gives the chart a history.
fn history(now_ms: i64) -> Vec<ShadowResult> {
    let mut out = Vec::new();
    for k in 1..=40i64 {
        let at_ms = now_ms - k * 30 * 60_000;
        let mismatches = (k / 3).min(12);
        for i in 0..30 {
            let mismatch = i < mismatches;
            out.push(ShadowResult {
                at_ms: at_ms + i,
                route: "cards".into(),
                tenant: Some("acme".into()),
                primary_side: switchyard::rules::Side::Legacy,
                outcome: if mismatch {
                    Outcome::Mismatch
                } else {
                    Outcome::Match
                },
                skip_reason: None,
                error: None,
                primary_ms: Some(11.0 + (i % 5) as f64),
                shadow_ms: Some(28.0 + (i % 7) as f64),
                diffs: if mismatch {
                    vec![DiffRecord {
                        pattern: "/price".into(),
                        kind: "value".into(),
                        primary: Some("10".into()),
                        shadow: Some("11".into()),
                    }]
                } else {
                    Vec::new()
                },
                self_check: None,
                sample: None,
            });
        }
    }
    out
}

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_matrix_verdict_and_diff_in_a_browser() {
    let required = std::env::var("SWITCHYARD_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let chromium = which(&["chromium", "chromium-browser"]);
    let driver = which(&["chromedriver"]);
    let python = which(&["python3"]);
    let (Some(chromium), Some(driver), Some(python)) = (chromium, driver, python) else {
        let why = "chromium, chromedriver or python3 is not installed \
                   (apt-get install chromium chromium-driver python3)";
        assert!(!required, "SWITCHYARD_REQUIRE_BROWSER=1 but {why}");
        eprintln!("dashboard browser test skipped: {why}");
        return;
    };

    let (gw, _l, _n) = report_gateway(MORE_ROUTES, &[]).await;
    let store = gw.gw().store.as_ref().unwrap();
    inject(store).await;
    store
        .write_shadow_batch(&history(switchyard::clock::Clock::system().now_ms()), 0)
        .await
        .unwrap();
    let traffic = &gw.gw().proxy.traffic;
    for i in 0..40 {
        let side = if i % 4 == 0 { Side::New } else { Side::Legacy };
        traffic.record(
            "cards",
            side,
            Some(if i % 4 == 0 { "acme" } else { "globex" }),
        );
    }
    for _ in 0..25 {
        traffic.record("users", Side::New, Some("umbrella"));
        traffic.record("invoices", Side::Legacy, Some("umbrella"));
    }
    let rollout = json!({"route": "cards", "percent": 10, "reason": "pilot at 10%"});
    let r = admin(&gw, "POST", "/admin/rollout", Some(WRITE), rollout).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target").join("dashboard.png");
    let script = root.join("tests").join("browser").join("dashboard.py");
    let url = format!("http://{}/", gw.gw().admin);
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args(["--url", &url, "--token", READ])
            .arg("--out")
            .arg(&out)
            .arg("--chromium")
            .arg(chromium)
            .arg("--chromedriver")
            .arg(driver)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("dashboard ok"), "{stdout}");
    let png = std::fs::read(root.join("target").join("dashboard.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    eprintln!("{}", stdout.trim());
    gw.shutdown().await;
}
