//! Shadow-diff reports through the admin API and the `switchyard report` binary, against a
//! known workload written straight into the gateway's store: exact counts, the Wilson
//! interval, verdicts, suggestions, one sample side by side, the timeline, what-if
//! re-evaluation that changes nothing, durability across a restart, and 503 without a store.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "admin/helpers.rs"]
mod helpers;

#[path = "shadow_report/workload.rs"]
mod workload;

use helpers::*;
use serde_json::{Value, json};
use support::*;
use workload::*;

/// Wilson 95% interval, written out independently of the library.
fn wilson(good: f64, n: f64) -> (f64, f64) {
    let z = 1.959_963_984_540_054_f64;
    let p = good / n;
    let denom = 1.0 + z * z / n;
    let center = (p + z * z / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (100.0 * (center - half), 100.0 * (center + half))
}

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|v| (v - want).abs() < 1e-9)
}

async fn read(gw: &TestGateway, path: &str) -> Value {
    let r = admin(gw, "GET", path, Some(READ), Value::Null).await;
    assert_eq!(
        r.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

fn path<'a>(route: &'a Value, pattern: &str) -> &'a Value {
    route["top_paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pattern"] == pattern)
        .unwrap_or_else(|| panic!("{pattern} not in {route}"))
}

#[tokio::test]
async fn the_report_reads_the_known_workload_exactly() {
    let (gw, _l, _n) = report_gateway("", &[]).await;
    inject(gw.gw().store.as_ref().unwrap()).await;

    let none = admin(&gw, "GET", "/admin/shadow/report", None, Value::Null).await;
    assert_eq!(none.status, 401);

    let report = read(
        &gw,
        "/admin/shadow/report?route=cards&since=1h&by_tenant=true",
    )
    .await;
    assert!(report["since_ms"].as_i64().is_some());
    let routes = report["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 1);
    let cards = &routes[0];
    assert_eq!(cards["route"], "cards");
    assert_eq!(cards["configured"], true);
    for (key, want) in [
        ("compared", 200),
        ("matched", 150),
        ("mismatched", 18),
        ("noise_only", 30),
        ("errors", 2),
        ("skipped", 5),
        ("self_checked", 20),
    ] {
        assert_eq!(cards[key], want, "{key}");
    }
    assert_eq!(cards["skipped_by_reason"], json!({"body_too_large": 5}));
    let (lo, hi) = wilson(180.0, 200.0);
    let parity = &cards["parity"];
    assert!(close(&parity["percent"], 90.0), "{parity}");
    assert!(close(&parity["ci95_low"], lo), "{parity} vs {lo}");
    assert!(close(&parity["ci95_high"], hi), "{parity} vs {hi}");
    assert!(
        (lo - 85.0).abs() < 0.2 && (hi - 93.5).abs() < 0.2,
        "{lo} {hi}"
    );
    assert!(
        close(&parity["target"], 95.0),
        "target from shadow.target_parity"
    );
    assert_eq!(cards["verdict"], "not_ready");
    assert!(
        cards["verdict_reason"].as_str().unwrap().contains("/price"),
        "{}",
        cards["verdict_reason"]
    );

    let price = path(cards, "/price");
    assert_eq!(price["count"], 18);
    assert!(close(&price["rate"], 0.09));
    assert_eq!(price["classification"], "real");
    assert_eq!(price["noise"], false);
    assert_eq!(price["sample_ids"].as_array().unwrap().len(), 5);
    let rid = path(cards, "/request_id");
    assert_eq!(
        (rid["count"].as_u64(), rid["self_diffs"].as_u64()),
        (Some(48), Some(20))
    );
    assert_eq!(rid["classification"], "noise");
    assert_eq!(rid["noise"], true);
    assert_eq!(cards["differing_paths"], 2);

    let latency = cards["latency"].as_array().unwrap();
    let sides: Vec<&str> = latency
        .iter()
        .map(|l| l["side"].as_str().unwrap())
        .collect();
    assert_eq!(sides, ["legacy", "new"]);
    assert_eq!(latency[0]["count"], 200);
    let p50 = latency[0]["p50_ms"].as_f64().unwrap();
    assert!((p50 - 12.0).abs() / 12.0 < 0.2, "legacy p50 {p50}");
    assert_eq!(latency[1]["count"], 198, "errors carry no shadow time");

    // The noise path's sample values are UUIDs: offered as an ignore rule.
    let suggested = cards["suggested_ignore"].as_array().unwrap();
    assert_eq!(suggested.len(), 1, "{suggested:?}");
    assert_eq!(suggested[0]["ignore"], "/request_id");
    assert_eq!(suggested[0]["looks_like"], "uuid");
    assert_eq!(
        cards["suggested_compare_ignore"],
        json!(["/generated_at", "/request_id"])
    );

    // Per tenant: the real mismatch is acme's; globex only has noise.
    let tenants = cards["tenants"].as_array().unwrap();
    let tenant = |name: &str| tenants.iter().find(|t| t["tenant"] == name).unwrap();
    assert_eq!(tenant("acme")["compared"], 120);
    assert_eq!(tenant("acme")["verdict"], "not_ready");
    assert_eq!(tenant("globex")["compared"], 80);
    assert_eq!(tenant("globex")["mismatched"], 0);
    assert!(close(&tenant("globex")["parity"]["percent"], 100.0));
    assert_eq!(tenant("globex")["verdict"], "insufficient_data");
    let globex = read(&gw, "/admin/shadow/report?tenant=globex").await;
    assert_eq!(globex["routes"][0]["compared"], 80);
    assert!(
        globex["routes"][0]["top_paths"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["pattern"] != "/price")
    );

    // Windows: nothing in the future; a bad instant is a 400.
    let later = read(&gw, "/admin/shadow/report?since=4000000000000").await;
    assert_eq!(later["routes"], json!([]));
    let bad = admin(
        &gw,
        "GET",
        "/admin/shadow/report?since=soon",
        Some(READ),
        Value::Null,
    )
    .await;
    assert_eq!(bad.status, 400);

    // The timeline adds up to the same counts.
    let tl = read(&gw, "/admin/shadow/timeline?route=cards&since=1h&bucket=5m").await;
    assert_eq!(tl["bucket_ms"], 300_000);
    let points = tl["routes"][0]["points"].as_array().unwrap();
    let sum = |k: &str| points.iter().map(|p| p[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(
        (sum("compared"), sum("mismatched"), sum("skipped")),
        (200, 18, 5)
    );
    let bad = admin(
        &gw,
        "GET",
        "/admin/shadow/timeline?bucket=5s",
        Some(READ),
        Value::Null,
    )
    .await;
    assert_eq!(bad.status, 400);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_sample_is_shown_side_by_side_without_credentials() {
    let (gw, _l, _n) = report_gateway("", &[]).await;
    inject(gw.gw().store.as_ref().unwrap()).await;
    let report = read(&gw, "/admin/shadow/report?route=cards").await;
    let id = path(&report["routes"][0], "/price")["sample_ids"][0]
        .as_i64()
        .unwrap();

    let s = read(&gw, &format!("/admin/shadow/samples/{id}")).await;
    assert_eq!(s["id"], id);
    assert_eq!(
        (s["route"].as_str(), s["tenant"].as_str()),
        (Some("cards"), Some("acme"))
    );
    assert_eq!(
        (s["pattern"].as_str(), s["kind"].as_str()),
        (Some("/price"), Some("value"))
    );
    assert_eq!(s["primary"]["side"], "legacy");
    assert_eq!(s["shadow"]["side"], "new");
    let diffs = s["differences"].as_array().unwrap();
    let paths: Vec<&str> = diffs.iter().map(|d| d["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["/price", "/request_id"],
        "current rules re-applied: {diffs:?}"
    );
    let rows = s["rows"].as_array().unwrap();
    let changed: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r["tag"] == "replace")
        .map(|r| (r["left"].as_str().unwrap(), r["right"].as_str().unwrap()))
        .collect();
    assert!(
        changed.contains(&("  \"price\": 10,", "  \"price\": 11,")),
        "{changed:?}"
    );
    assert!(rows.iter().any(|r| r["tag"] == "equal"));
    let curl = s["curl"].as_str().unwrap();
    assert!(
        curl.starts_with("curl 'http://gateway.test/api/cards/2"),
        "{curl}"
    );
    assert!(curl.contains("-H 'x-tenant-id: acme'"), "{curl}");
    let whole = s.to_string();
    assert!(
        !whole.contains("customer-secret"),
        "credentials never leave the store"
    );

    let missing = admin(
        &gw,
        "GET",
        "/admin/shadow/samples/999999",
        Some(READ),
        Value::Null,
    )
    .await;
    assert_eq!(missing.status, 404);
    let bad = admin(
        &gw,
        "GET",
        "/admin/shadow/samples/abc",
        Some(READ),
        Value::Null,
    )
    .await;
    assert_eq!(bad.status, 400);
    gw.shutdown().await;
}

#[tokio::test]
async fn what_if_drops_ignored_paths_and_changes_nothing() {
    let (gw, _l, _n) = report_gateway("", &[]).await;
    inject(gw.gw().store.as_ref().unwrap()).await;
    let config_before = std::fs::read_to_string(&gw.config).unwrap();
    let report_before = read(&gw, "/admin/shadow/report?route=cards").await["routes"].clone();

    // A read token may ask: it changes nothing.
    let draft = json!({"route": "cards", "compare": {"ignore": ["/generated_at", "/request_id"]}});
    let r = admin(&gw, "POST", "/admin/shadow/whatif", Some(READ), draft).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let w = r.json();
    assert_eq!(w["changed_nothing"], true);
    // 5 pairs kept for /price and 5 for /request_id; a mismatching pair can be in both
    // reservoirs and is evaluated once.
    let evaluated = w["samples"]["evaluated"].as_u64().unwrap();
    assert!((5..=10).contains(&evaluated), "{w}");
    assert_eq!(w["samples"]["current"]["differing"], evaluated);
    assert_eq!(
        w["removed_paths"],
        json!([{"pattern": "/request_id", "kind": "value"}])
    );
    assert_eq!(w["added_paths"], json!([]));
    let draft_paths = w["samples"]["draft"]["paths"].as_array().unwrap();
    assert_eq!(draft_paths.len(), 1, "{w}");
    assert_eq!(draft_paths[0]["pattern"], "/price");
    let pairs = draft_paths[0]["pairs"].as_u64().unwrap();
    assert!(pairs >= 5 && pairs <= evaluated, "{w}");
    let projected = &w["report"]["projected"];
    let kept: Vec<&str> = projected["top_paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pattern"].as_str().unwrap())
        .collect();
    assert_eq!(kept, ["/price"]);
    assert_eq!(projected["verdict"], "not_ready", "/price is still real");

    // Ignoring /price too: nothing real is left; the pairs that differed are credited.
    let draft = json!({"route": "cards", "compare": {"ignore": ["/price", "/request_id"]}});
    let w = admin(&gw, "POST", "/admin/shadow/whatif", Some(WRITE), draft)
        .await
        .json();
    assert_eq!(w["samples"]["draft"]["differing"], 0);
    assert_eq!(w["samples"]["made_clean"], evaluated);
    let projected = &w["report"]["projected"];
    assert_eq!(projected["top_paths"], json!([]));
    assert!(close(&projected["parity"]["percent"], 99.0), "{projected}");
    assert_eq!(projected["verdict"], "ready", "{projected}");
    assert_eq!(w["report"]["current"]["verdict"], "not_ready");

    // A draft with an unknown key or a bad pattern is refused with the reason.
    for bad in [
        json!({"route": "cards", "compare": {"ignroe": ["/x"]}}),
        json!({"route": "cards", "compare": {"ignore": ["price"]}}),
    ] {
        let r = admin(&gw, "POST", "/admin/shadow/whatif", Some(READ), bad).await;
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .starts_with("draft compare:")
        );
    }
    let r = admin(
        &gw,
        "POST",
        "/admin/shadow/whatif",
        Some(READ),
        json!({"route": "nope"}),
    )
    .await;
    assert_eq!(r.status, 404);

    // Nothing changed: config, generation, report, audit log.
    assert_eq!(std::fs::read_to_string(&gw.config).unwrap(), config_before);
    assert_eq!(gw.gw().live.load().generation, 1);
    let report_after = read(&gw, "/admin/shadow/report?route=cards").await["routes"].clone();
    assert_eq!(report_after, report_before);
    assert_eq!(read(&gw, "/admin/audit").await["entries"], json!([]));
    gw.shutdown().await;
}

#[tokio::test]
async fn results_survive_a_restart() {
    let (mut gw, _l, _n) = report_gateway("", &[]).await;
    inject(gw.gw().store.as_ref().unwrap()).await;
    let before = read(&gw, "/admin/shadow/report?by_tenant=true").await["routes"].clone();
    assert_eq!(before[0]["compared"], 200);
    restart(&mut gw).await;
    let after = read(&gw, "/admin/shadow/report?by_tenant=true").await["routes"].clone();
    assert_eq!(after, before);
    gw.shutdown().await;
}

#[tokio::test]
async fn without_a_store_shadow_reads_answer_503_and_the_dashboard_still_loads() {
    // The store's directory is a regular file: the store cannot be opened.
    let (gw, _l, _n) = report_gateway(
        "[store]\nurl = \"sqlite://blocker/shadow.db\"",
        &[("blocker", b"")],
    )
    .await;
    assert!(gw.gw().store.is_none());
    for (method, path, body) in [
        ("GET", "/admin/shadow/report", Value::Null),
        ("GET", "/admin/shadow/timeline", Value::Null),
        ("GET", "/admin/shadow/samples/1", Value::Null),
        ("POST", "/admin/shadow/whatif", json!({"route": "cards"})),
    ] {
        let r = admin(&gw, method, path, Some(READ), body).await;
        assert_eq!(r.status, 503, "{path}");
        assert_eq!(r.json()["kind"], "store_unavailable");
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .starts_with("shadow store unavailable"),
            "{}",
            r.json()
        );
    }
    let page = get(&format!("http://{}/", gw.gw().admin), &[]).await;
    assert_eq!(page.status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_dashboard_is_static_and_strict() {
    let (gw, _l, _n) = report_gateway("", &[]).await;
    let base = format!("http://{}", gw.gw().admin);
    let page = get(&format!("{base}/"), &[]).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("<html") && html.contains("type=\"password\""));
    for (asset, kind) in [
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
        ("/dashboard/icon.svg", "image/svg+xml"),
    ] {
        let r = get(&format!("{base}{asset}"), &[]).await;
        assert_eq!(r.status, 200, "{asset}");
        assert!(
            r.header("content-type").unwrap().starts_with(kind),
            "{asset}"
        );
    }
    // The data is not public: the API behind the page still wants a token.
    let r = get(&format!("{base}/admin/routes"), &[]).await;
    assert_eq!(r.status, 401);
    gw.shutdown().await;
}

/// Run the binary with `args`; `token` goes to `SWITCHYARD_ADMIN_TOKEN`.
async fn cli(args: Vec<String>, token: Option<&str>) -> (i32, String, String) {
    let token = token.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(&args).env_remove("SWITCHYARD_ADMIN_TOKEN");
        if let Some(token) = token {
            cmd.env("SWITCHYARD_ADMIN_TOKEN", token);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    })
    .await
    .unwrap()
}

fn args(list: &[&str], admin: &str) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.extend(["--admin".to_string(), admin.to_string()]);
    v
}

#[tokio::test]
async fn the_report_command_prints_table_json_markdown_and_a_sample() {
    let (gw, _l, _n) = report_gateway("", &[]).await;
    inject(gw.gw().store.as_ref().unwrap()).await;
    let url = format!("http://{}", gw.gw().admin);

    let (code, out, err) = cli(
        args(&["report", "--route", "cards", "--since", "1h"], &url),
        Some(READ),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cards  NOT_READY  parity 90.00%"), "{out}");
    assert!(
        out.contains("suggested ignore: /request_id (uuid)"),
        "{out}"
    );

    let (code, out, _) = cli(args(&["report", "--format", "json"], &url), Some(READ)).await;
    assert_eq!(code, 0);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["routes"][0]["compared"], 200);

    let (code, md, _) = cli(args(&["report", "--format", "markdown"], &url), Some(READ)).await;
    assert_eq!(code, 0);
    assert!(md.contains("| cards | **not_ready** | 90.00% |"), "{md}");
    assert!(
        md.contains("| `/price` | value | 18 | 9.0% | real |"),
        "{md}"
    );
    assert!(
        md.contains("| `/request_id` | value | 48 | 24.0% | noise |"),
        "{md}"
    );

    let price = json["routes"][0]["top_paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pattern"] == "/price")
        .unwrap()
        .clone();
    let id = price["sample_ids"][0].as_i64().unwrap();
    let (code, out, err) = cli(
        args(&["report", "--sample", &id.to_string()], &url),
        Some(READ),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("--- legacy (primary)\n+++ new (shadow)\n"),
        "{out}"
    );
    assert!(out.contains("\n-  \"price\": 10,\n"), "{out}");
    assert!(out.contains("\n+  \"price\": 11,\n"), "{out}");
    assert!(
        out.contains("replay (credentials removed):\ncurl 'http://gateway.test/api/cards/"),
        "{out}"
    );
    assert!(!out.contains("customer-secret"));

    // Failures are one line and a non-zero exit.
    let (code, out, err) = cli(args(&["report"], &url), None).await;
    assert_ne!(code, 0);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("401") && err.contains("SWITCHYARD_ADMIN_TOKEN"),
        "{err}"
    );
    let (code, _, err) = cli(args(&["report", "--sample", "999999"], &url), Some(READ)).await;
    assert_ne!(code, 0);
    assert!(
        err.starts_with("switchyard: 404 not found: no stored sample 999999"),
        "{err}"
    );
    gw.shutdown().await;
}
