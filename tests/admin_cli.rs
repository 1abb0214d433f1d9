//! The admin client (library calls and the `switchyard` binary) against a running gateway,
//! dry runs with real traffic behind them, the routes/status views, and tester overrides.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "admin/helpers.rs"]
mod helpers;

use std::collections::BTreeMap;

use helpers::*;
use serde_json::{Value, json};
use support::*;
use switchyard::client::{AdminClient, Call, RolloutArgs};
use switchyard::rules::{Side, bucket, override_token};

/// Run the binary with `args`; `token` goes to `SWITCHYARD_ADMIN_TOKEN`.
async fn cli(args: &[&str], token: Option<&str>) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
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

#[tokio::test]
async fn the_binary_rolls_out_audits_and_fails_in_one_line() {
    let (gw, _l, _n) = admin_gateway("", "").await;
    let url = format!("http://{}", gw.gw().admin);

    let rollout = ["rollout", "cards", "--tenant", "globex", "--side", "new"];
    let args = [
        &rollout[..],
        &["--admin", &url, "--reason", "contract-check"],
    ]
    .concat();
    let (code, out, err) = cli(&args, Some(WRITE)).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("cards: applied, generation 1 → 2"), "{out}");
    assert!(
        out.contains("cards: moved 1 tenant(s) to new: globex"),
        "{out}"
    );
    assert_eq!(
        get(&gw.url("/api/cards/1"), &[("x-tenant-id", "globex")])
            .await
            .served_by(),
        "cards"
    );
    assert!(
        std::fs::read_to_string(&gw.config)
            .unwrap()
            .contains("# keep-this-comment")
    );

    let (code, out, _) = cli(&["audit", "--admin", &url, "--json"], Some(READ)).await;
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["entries"][0]["reason"], "contract-check");
    assert_eq!(
        doc["entries"][0]["after"]["tenants"],
        json!(["acme", "globex"])
    );
    let (_, table, _) = cli(&["audit", "--admin", &url, "--route", "cards"], Some(READ)).await;
    assert!(table.starts_with("TIME"), "{table}");
    assert!(table.contains("ops"), "{table}");
    assert!(table.contains("tenants: [acme]→[acme,globex]"), "{table}");

    let (code, _, err) = cli(
        &["rollout", "cards", "--percent", "5", "--admin", &url],
        Some(READ),
    )
    .await;
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "switchyard: 403 forbidden: the token \"viewer\" has role read; rollout needs write\n"
    );
    let (code, _, err) = cli(&["status", "--admin", &url], None).await;
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("switchyard: 401 unauthorized: missing header"),
        "{err}"
    );
    assert!(err.contains("SWITCHYARD_ADMIN_TOKEN"), "{err}");
    let (code, _, err) = cli(&["history", "--admin", "http://127.0.0.1:1"], Some(READ)).await;
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("switchyard: cannot reach the admin API at http://127.0.0.1:1: "),
        "{err}"
    );

    // A hand edit not loaded yet: 409, one line, and the file keeps the edit.
    let hand = std::fs::read_to_string(&gw.config).unwrap() + "# edited by hand\n";
    std::fs::write(&gw.config, &hand).unwrap();
    let (code, _, err) = cli(&["rollout", "cards", "--off", "--admin", &url], Some(WRITE)).await;
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("switchyard: 409 conflict: nothing changed"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&gw.config).unwrap(), hand);

    let (code, out, _) = cli(&["reload", "--admin", &url], Some(WRITE)).await;
    assert_eq!(
        (code, out.starts_with("applied: generation 2 → 3")),
        (0, true),
        "{out}"
    );
    let (code, out, _) = cli(
        &["rollback", "1", "--admin", &url, "--reason", "undo"],
        Some(WRITE),
    )
    .await;
    assert_eq!(
        (code, out.starts_with("applied: generation 3 → 4")),
        (0, true),
        "{out}"
    );
    let (_, out, _) = cli(&["history", "--admin", &url], Some(READ)).await;
    assert!(
        out.starts_with("GEN") && out.contains("4*") && out.contains("rollback"),
        "{out}"
    );
    let (code, out, _) = cli(&["status", "--admin", &url], Some(READ)).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("generation 4 "), "{out}");
    assert!(out.contains("ROUTE") && out.contains("cards"), "{out}");
    gw.shutdown().await;
}

#[tokio::test]
async fn side_and_state_flags_take_the_api_spellings_and_fail_in_one_line() {
    // Refused while parsing the command line: the closed port is never called.
    let admin = ["--admin", "http://127.0.0.1:1"];
    let cases: [(&[&str], &str); 3] = [
        (
            &["rollout", "cards", "--tenant", "acme", "--side", "up"],
            "switchyard: --side must be legacy or new, not up\n",
        ),
        (
            &["rollout", "cards", "--state", "off"],
            "switchyard: --state must be legacy, rollout or new, not off\n",
        ),
        (
            &["override-token", "--config", "gw.toml", "--side", "New"],
            "switchyard: --side must be legacy or new, not New\n",
        ),
    ];
    for (args, line) in cases {
        let args = if args[0] == "rollout" {
            [args, &admin[..]].concat()
        } else {
            args.to_vec()
        };
        let (code, out, err) = cli(&args, Some(WRITE)).await;
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (1, "", line),
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn the_client_library_rewrites_the_file_keeping_comments() {
    let (gw, _l, _n) = admin_gateway("", "").await;
    let client =
        AdminClient::new(&format!("http://{}", gw.gw().admin), Some(WRITE.into())).unwrap();
    let args = RolloutArgs {
        route: "cards".into(),
        percent: Some(25.0),
        exclude: vec!["hooli".into()],
        reason: Some("quarter".into()),
        ..RolloutArgs::default()
    };
    let answer = client.call(&Call::Rollout(args)).await.unwrap();
    assert_eq!(answer["result"], "applied");
    let text = std::fs::read_to_string(&gw.config).unwrap();
    assert!(text.starts_with("# keep-this-comment\n"));
    assert!(
        text.contains("exclude = [\"initech\", \"hooli\"]  # held back\n"),
        "{text}"
    );
    assert!(text.contains("percent = 25\n"), "{text}");
    let err = AdminClient::new(&format!("http://{}", gw.gw().admin), Some(READ.into()))
        .unwrap()
        .call(&Call::Reload { reason: None })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    gw.shutdown().await;
}

/// Requests from `t-00`..`t-39` (1–3 each), acme ×5, initech ×2; the counts per tenant.
async fn traffic(gw: &TestGateway) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    let mut tenants: Vec<(String, u64)> =
        (0..40).map(|i| (format!("t-{i:02}"), i % 3 + 1)).collect();
    tenants.push(("acme".into(), 5));
    tenants.push(("initech".into(), 2));
    for (tenant, n) in tenants {
        for _ in 0..n {
            let a = get(&gw.url("/api/cards/1"), &[("x-tenant-id", &tenant)]).await;
            assert_eq!(a.status, 200);
        }
        counts.insert(tenant, n);
    }
    counts
}

#[tokio::test]
async fn a_dry_run_names_the_movers_and_their_share_and_changes_nothing() {
    let (gw, _l, _n) = admin_gateway("", "").await;
    let counts = traffic(&gw).await;
    let text = std::fs::read_to_string(&gw.config).unwrap();

    let body = json!({"route": "cards", "percent": 50, "reason": "what if"});
    let r = admin(
        &gw,
        "POST",
        "/admin/rollout?dry_run=true",
        Some(WRITE),
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let doc = r.json();
    assert_eq!(doc["result"], "dry_run");
    assert_eq!(doc["generation"], Value::Null);
    assert_eq!(doc["after"]["percent"], 50.0);
    let movers: Vec<String> = counts
        .keys()
        .filter(|t| t.starts_with("t-") && bucket("cards", t) < 5000)
        .cloned()
        .collect();
    assert!(!movers.is_empty() && movers.len() < 40, "{movers:?}");
    let m = &doc["moves"][0];
    assert_eq!(m["to_new"], json!(movers));
    assert_eq!(m["to_legacy"], json!([]));
    let total: u64 = counts.values().sum();
    let moving: u64 = movers.iter().map(|t| counts[t]).sum();
    assert_eq!(m["requests_1h"], total);
    assert_eq!(m["moving_requests_1h"], moving);
    let share = m["share_1h"].as_f64().unwrap();
    assert!(
        (share - moving as f64 / total as f64).abs() < 1e-9,
        "{share}"
    );
    assert_eq!(m["basis"], "busiest_tenants");

    assert_eq!(
        std::fs::read_to_string(&gw.config).unwrap(),
        text,
        "nothing written"
    );
    assert_eq!(gw.gw().live.load().generation, 1);
    assert_eq!(
        get(&gw.url("/api/cards/1"), &[("x-tenant-id", &movers[0])])
            .await
            .served_by(),
        "legacy"
    );
    let audit = admin(&gw, "GET", "/admin/audit", Some(READ), Value::Null)
        .await
        .json();
    let e = &audit["entries"][0];
    assert_eq!(
        (e["dry_run"].clone(), e["generation"].clone()),
        (json!(true), Value::Null)
    );
    assert_eq!(e["reason"], "what if");

    // The CLI says the same in words, and the kill switch dry run moves the whole new side.
    let url = format!("http://{}", gw.gw().admin);
    let (_, out, err) = cli(
        &["rollout", "cards", "--off", "--dry-run", "--admin", &url],
        Some(WRITE),
    )
    .await;
    assert!(
        out.starts_with("cards: dry run, nothing changed"),
        "{out}{err}"
    );
    assert!(
        out.contains("cards: would move 1 tenant(s) to legacy: acme"),
        "{out}"
    );
    let new_share = format!("{:.0}%", 100.0 * 5.0 / (total + 1) as f64);
    assert!(
        out.contains(&format!(
            "{new_share} of the last hour's requests (5 of {})",
            total + 1
        )),
        "{out}"
    );
    assert_eq!(gw.gw().live.load().generation, 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn routes_and_status_show_rules_traffic_and_health() {
    let (gw, _l, _n) = admin_gateway("", "").await;
    let counts = traffic(&gw).await;
    let routes = admin(&gw, "GET", "/admin/routes", Some(READ), Value::Null)
        .await
        .json();
    let cards = &routes["routes"][0];
    assert_eq!(cards["name"], "cards");
    assert_eq!(cards["paths"], json!(["/api/cards", "/api/cards/{*rest}"]));
    assert_eq!(
        (cards["legacy"].clone(), cards["new"].clone()),
        (json!("legacy"), json!("cards"))
    );
    assert_eq!(cards["state"], "rollout");
    assert_eq!(cards["tenants"], json!(["acme"]));
    assert_eq!(cards["exclude"], json!(["initech"]));
    assert_eq!(
        cards["tenants_on_new"],
        json!({"count": 1, "tenants": ["acme"]})
    );
    assert_eq!(cards["shadow"]["on"], false);
    let total: u64 = counts.values().sum();
    // 15 minutes: robust against a minute boundary during the test.
    assert_eq!(cards["traffic"]["15m"]["new"], 5);
    assert_eq!(cards["traffic"]["15m"]["legacy"], total - 5);
    let share = cards["traffic"]["1h"]["new_share"].as_f64().unwrap();
    assert!((share - 5.0 / total as f64).abs() < 1e-9, "{share}");
    assert_eq!(
        cards["busiest_tenants"][0],
        json!({"tenant": "acme", "requests": 5, "new": 5, "error": 0})
    );
    assert_eq!(cards["busiest_tenants"].as_array().unwrap().len(), 10);

    let status = admin(&gw, "GET", "/admin/status", Some(READ), Value::Null)
        .await
        .json();
    assert_eq!(status["last_reload_error"], Value::Null);
    assert_eq!(status["guards"], json!([]));
    assert_eq!(status["audit_store"], "ok");
    let upstreams: Vec<Value> = status["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["upstream"].clone())
        .collect();
    assert_eq!(upstreams, [json!("cards"), json!("legacy")]);

    // A broken hand edit: the reload is refused whole and shows in the status.
    std::fs::write(&gw.config, "[[routes]\n").unwrap();
    let r = admin(&gw, "POST", "/admin/reload", Some(WRITE), Value::Null).await;
    assert_eq!(r.status, 422);
    let status = admin(&gw, "GET", "/admin/status", Some(READ), Value::Null)
        .await
        .json();
    assert_eq!(status["generation"], 1);
    assert!(
        status["last_reload_error"]["message"]
            .as_str()
            .unwrap()
            .contains("gw.toml")
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_signed_override_picks_the_side_and_never_reaches_the_upstream() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let text = admin_config(
        &legacy.url(),
        &new.url(),
        "override_secret_file = \"override.key\"",
        "",
    );
    let tokens = tokens_file();
    let files: [(&str, &[u8]); 2] = [
        ("tokens.toml", tokens.as_bytes()),
        ("override.key", b"tester-secret-0123456789\n"),
    ];
    let gw = TestGateway::start_with(&text, &files, false).await;
    let expires = switchyard::clock::Clock::system().now_ms() as u64 / 1000 + 3600;
    let token = override_token::mint(b"tester-secret-0123456789", Side::New, expires);
    let forced = get(
        &gw.url("/api/cards/1"),
        &[("x-tenant-id", "initech"), ("x-switchyard-force", &token)],
    )
    .await;
    assert_eq!(forced.served_by(), "cards", "excluded, but forced to new");
    assert!(forced.json()["headers"].get("x-switchyard-force").is_none());
    let forged = override_token::mint(b"someone-else-secret", Side::New, expires);
    let ignored = get(
        &gw.url("/api/cards/1"),
        &[("x-tenant-id", "initech"), ("x-switchyard-force", &forged)],
    )
    .await;
    assert_eq!(ignored.served_by(), "legacy");
    let plain = get(
        &gw.url("/api/cards/1"),
        &[("x-tenant-id", "initech"), ("x-switchyard-force", "new")],
    )
    .await;
    assert_eq!(plain.served_by(), "legacy", "an unsigned header is ignored");
    gw.shutdown().await;
}
