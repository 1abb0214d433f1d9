//! The decision order of SPEC "Decision for a request", cohorts, overrides, shadow selection,
//! percent monotonicity and `explain`.

use std::sync::OnceLock;

use proptest::prelude::*;
use switchyard::rules::{bucket, explain, override_token};

use super::*;

const SECRET: &str = "override-secret-0123456789";

fn fixture() -> Fixture {
    let f = Fixture::new();
    f.write("override.key", format!("{SECRET}\n"));
    f.write(
        "tenants.toml",
        r#"[tenants.acme]
region = "us"
plan = "enterprise"
[tenants.globex]
region = "eu"
plan = "pro"
[tenants.initech]
region = "us"
plan = "free"
[tenants.soylent]
region = "eu"
plan = "enterprise"
[tenants.hooli]
region = "us"
plan = "enterprise"
"#,
    );
    f
}

fn config(routes: &str) -> String {
    let top = BASE.replace("[tenant]\n", "[tenant]\ndirectory = \"tenants.toml\"\n");
    format!(
        "{top}\n[admin]\noverride_secret_file = \"override.key\"\n\n[tenants.umbrella]\nside = \"new\"\n\n[tenants.hold]\nside = \"legacy\"\n\n{routes}"
    )
}

const CARDS: &str = r#"
[[routes]]
name = "cards"
path = ["/api/cards", "/api/cards/{*rest}"]
new = "new"
tenants = ["acme", "hold"]
exclude = ["initech", "umbrella"]
cohorts = [{ region = "us", plan = "enterprise" }, { plan = "pro" }]
"#;

fn decide(rules: &RuleSet, tenant: &str) -> (Side, Reason) {
    let out = Req::get("/api/cards/1").tenant(tenant).decide(rules);
    (out.side, out.reason)
}

#[test]
fn no_route_goes_to_the_default_upstream() {
    let f = fixture();
    let rules = f.rules(&config(CARDS));
    let out = Req::get("/other").tenant("acme").decide(&rules);
    assert_eq!(
        (out.route, out.side, out.upstream.as_str(), out.reason),
        (None, Side::Legacy, "legacy", Reason::NoRoute)
    );
}

#[test]
fn tenant_rules_in_order() {
    let f = fixture();
    let rules = f.rules(&config(CARDS));
    assert_eq!(decide(&rules, "acme"), (Side::New, Reason::TenantListed));
    // Excluded beats a tenant-wide cutover.
    assert_eq!(decide(&rules, "umbrella"), (Side::Legacy, Reason::Excluded));
    assert_eq!(decide(&rules, "initech"), (Side::Legacy, Reason::Excluded));
    // A tenant-wide hold beats the route's list.
    assert_eq!(decide(&rules, "hold"), (Side::Legacy, Reason::Excluded));
    // Cohorts: every pair of one table.
    assert_eq!(decide(&rules, "hooli"), (Side::New, Reason::Cohort));
    assert_eq!(decide(&rules, "globex"), (Side::New, Reason::Cohort));
    assert_eq!(decide(&rules, "soylent"), (Side::Legacy, Reason::Default));
    // Not in the directory, not listed, percent 0.
    assert_eq!(decide(&rules, "stranger"), (Side::Legacy, Reason::Default));
    let out = Req::get("/api/cards/1").decide(&rules);
    assert_eq!(
        (out.tenant, out.side, out.reason),
        (None, Side::Legacy, Reason::Default)
    );
    assert_eq!(
        Req::get("/api/cards/1")
            .tenant("acme")
            .decide(&rules)
            .upstream,
        "new"
    );
}

#[test]
fn tenant_wide_cutover() {
    let f = fixture();
    let rules = f.rules(&config(
        "[[routes]]\nname = \"users\"\npath = \"/api/cards/{*rest}\"\nnew = \"new\"\n",
    ));
    assert_eq!(
        decide(&rules, "umbrella"),
        (Side::New, Reason::TenantCutover)
    );
    assert_eq!(rules.tenant_side("umbrella"), Some(Side::New));
    assert_eq!(rules.tenant_side("hold"), Some(Side::Legacy));
    assert_eq!(rules.tenant_side("acme"), None);
}

#[test]
fn route_state_beats_tenant_lists() {
    let f = fixture();
    let rules = f.rules(&config(&format!("{CARDS}state = \"legacy\"\n")));
    assert_eq!(decide(&rules, "acme"), (Side::Legacy, Reason::StateLegacy));
    let rules = f.rules(&config(&format!("{CARDS}state = \"new\"\n")));
    assert_eq!(decide(&rules, "initech"), (Side::New, Reason::StateNew));
    assert_eq!(
        Req::get("/api/cards/1").decide(&rules).reason,
        Reason::StateNew
    );
}

#[test]
fn a_route_without_new_is_always_legacy() {
    let f = fixture();
    let rules = f.rules(&config(&CARDS.replace("new = \"new\"\n", "")));
    assert_eq!(
        decide(&rules, "acme"),
        (Side::Legacy, Reason::NoNewUpstream)
    );
    let token = override_token::mint(SECRET.as_bytes(), Side::New, unix_now() + 60);
    let out = Req::get("/api/cards/1")
        .tenant("acme")
        .header("x-switchyard-force", &token)
        .decide(&rules);
    assert_eq!(
        (out.side, out.reason, out.upstream.as_str()),
        (Side::Legacy, Reason::NoNewUpstream, "legacy")
    );
    let route = rules.route("cards").unwrap();
    assert_eq!(rules.upstream_for(Some(route), Side::New), "legacy");
    assert!(rules.tenants_on_new(route).is_empty());
}

#[test]
fn signed_override_comes_before_state_and_lists() {
    let f = fixture();
    let rules = f.rules(&config(&format!("{CARDS}state = \"legacy\"\n")));
    let now = unix_now();
    let forced = |token: &str, tenant: &str| {
        let out = Req::get("/api/cards/1")
            .tenant(tenant)
            .header("x-switchyard-force", token)
            .decide(&rules);
        (out.side, out.reason)
    };
    let to_new = override_token::mint(SECRET.as_bytes(), Side::New, now + 300);
    assert_eq!(forced(&to_new, "initech"), (Side::New, Reason::Forced));
    let to_legacy = override_token::mint(SECRET.as_bytes(), Side::Legacy, now + 300);
    let rules_rollout = f.rules(&config(CARDS));
    let out = Req::get("/api/cards/1")
        .tenant("acme")
        .header("x-switchyard-force", &to_legacy)
        .decide(&rules_rollout);
    assert_eq!((out.side, out.reason), (Side::Legacy, Reason::Forced));
    // Expired, forged, malformed, or a bare side name: ignored.
    let expired = override_token::mint(SECRET.as_bytes(), Side::New, now - 1);
    assert_eq!(
        forced(&expired, "initech"),
        (Side::Legacy, Reason::StateLegacy)
    );
    let forged = override_token::mint(b"guess", Side::New, now + 300);
    assert_eq!(
        forced(&forged, "initech"),
        (Side::Legacy, Reason::StateLegacy)
    );
    assert_eq!(
        forced("new", "initech"),
        (Side::Legacy, Reason::StateLegacy)
    );
    assert_eq!(
        forced("new.99999999999.abc", "initech"),
        (Side::Legacy, Reason::StateLegacy)
    );
}

#[test]
fn override_needs_the_operator_to_enable_it() {
    let f = fixture();
    let rules =
        f.rules(&config(CARDS).replace("[admin]\noverride_secret_file = \"override.key\"\n", ""));
    assert!(rules.admin.override_secret.is_none());
    let token = override_token::mint(SECRET.as_bytes(), Side::New, unix_now() + 300);
    let out = Req::get("/api/cards/1")
        .tenant("initech")
        .header("x-switchyard-force", &token)
        .decide(&rules);
    assert_eq!((out.side, out.reason), (Side::Legacy, Reason::Excluded));
}

#[test]
fn sticky_buckets_by_tenant_header_and_cookie() {
    let f = fixture();
    let rules = f.rules(&config(
        "[[routes]]\nname = \"users\"\npath = \"/u/{*rest}\"\nnew = \"new\"\npercent = 50\n",
    ));
    for i in 0..50 {
        let t = format!("tenant-{i}");
        let expected = if bucket("users", &t) < 5_000 {
            (Side::New, Reason::Bucket)
        } else {
            (Side::Legacy, Reason::Default)
        };
        let out = Req::get("/u/x").tenant(&t).decide(&rules);
        assert_eq!((out.side, out.reason), expected, "{t}");
    }
    // No tenant, no key: not bucketed.
    assert_eq!(Req::get("/u/x").decide(&rules).reason, Reason::Default);
    let rules = f.rules(&config(
        "[[routes]]\nname = \"users\"\npath = \"/u/{*rest}\"\nnew = \"new\"\npercent = 50\nsalt = \"shared\"\nsticky = \"header:x-user\"\n\n[[routes]]\nname = \"cart\"\npath = \"/c/{*rest}\"\nnew = \"new\"\npercent = 50\nsticky = \"cookie:sid\"\n",
    ));
    for i in 0..50 {
        let user = format!("user-{i}");
        let expected = if bucket("shared", &user) < 5_000 {
            Side::New
        } else {
            Side::Legacy
        };
        // The tenant does not matter with a header key.
        assert_eq!(
            Req::get("/u/x")
                .tenant("acme")
                .header("x-user", &user)
                .decide(&rules)
                .side,
            expected
        );
        let expected = if bucket("cart", &user) < 5_000 {
            Side::New
        } else {
            Side::Legacy
        };
        assert_eq!(
            Req::get("/c/x")
                .header("cookie", &format!("sid={user}"))
                .decide(&rules)
                .side,
            expected
        );
    }
    assert_eq!(
        Req::get("/u/x").tenant("acme").decide(&rules).reason,
        Reason::Default
    );
}

#[test]
fn percent_share_over_ten_thousand_tenants() {
    let f = fixture();
    let rules = f.rules(&config(
        "[[routes]]\nname = \"users\"\npath = \"/u/{*rest}\"\nnew = \"new\"\npercent = 10\n",
    ));
    let on_new = (0..10_000)
        .filter(|i| {
            Req::get("/u/x")
                .tenant(&format!("t{i}"))
                .decide(&rules)
                .side
                == Side::New
        })
        .count();
    assert!((850..=1_150).contains(&on_new), "{on_new}");
}

/// Rule sets at rising percents, built once for the property test.
fn ladder() -> &'static [(u32, RuleSet)] {
    static LADDER: OnceLock<Vec<(u32, RuleSet)>> = OnceLock::new();
    LADDER.get_or_init(|| {
        let f = fixture();
        ["0", "0.01", "1", "5", "10", "12.5", "25", "50", "75", "99.99", "100"]
            .iter()
            .map(|p| {
                let rules = f.rules(&config(&format!("[[routes]]\nname = \"users\"\npath = \"/u/{{*rest}}\"\nnew = \"new\"\npercent = {p}\n")));
                (rules.route("users").map_or(0, |r| r.percent_bp), rules)
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn raising_percent_never_moves_a_tenant_back(tenant in "[A-Za-z0-9._-]{1,64}", a in 0usize..11, b in 0usize..11) {
        let ladder = ladder();
        let (low, high) = (a.min(b), a.max(b));
        let side = |i: usize| Req::get("/u/x").tenant(&tenant).decide(&ladder[i].1).side;
        prop_assert!(ladder[low].0 <= ladder[high].0);
        if side(low) == Side::New {
            prop_assert_eq!(side(high), Side::New);
        }
        prop_assert_eq!(side(0), Side::Legacy);
        prop_assert_eq!(side(10), Side::New);
    }
}

const SHADOWED: &str = r#"
[[routes]]
name = "cards"
path = "/api/cards/{*rest}"
new = "new"
tenants = ["acme"]
"#;

#[test]
fn shadow_selection() {
    let f = fixture();
    let rules = f.rules(&config(&format!(
        "{SHADOWED}shadow = {{ percent = 100, methods = [\"GET\"] }}\n"
    )));
    let shadow = |req: Req| req.decide(&rules).shadow;
    assert_eq!(
        shadow(Req::get("/api/cards/1").tenant("globex")),
        Some(Side::New)
    );
    assert_eq!(
        shadow(Req::get("/api/cards/1").tenant("acme")),
        Some(Side::Legacy)
    );
    assert_eq!(
        shadow(Req::get("/api/cards/1")),
        Some(Side::New),
        "no tenant filter: tenantless requests too"
    );
    assert_eq!(
        shadow(Req::new("HEAD", "/api/cards/1")),
        None,
        "HEAD not listed"
    );
    assert_eq!(shadow(Req::new("POST", "/api/cards/1")), None);
    assert_eq!(
        shadow(Req::get("/api/cards/1").header("x-switchyard-shadow", "1")),
        None,
        "loop guard"
    );
    assert_eq!(shadow(Req::get("/other")), None);
    // Default methods: GET, HEAD, OPTIONS.
    let rules = f.rules(&config(&format!("{SHADOWED}shadow = {{}}\n")));
    for (m, expected) in [
        ("GET", true),
        ("HEAD", true),
        ("OPTIONS", true),
        ("POST", false),
        ("DELETE", false),
    ] {
        assert_eq!(
            Req::new(m, "/api/cards/1").decide(&rules).shadow.is_some(),
            expected,
            "{m}"
        );
    }
    // The global kill switch.
    let rules =
        f.rules(&(config(&format!("{SHADOWED}shadow = {{}}\n")) + "\n[shadow]\nenabled = false\n"));
    assert_eq!(Req::get("/api/cards/1").decide(&rules).shadow, None);
    // Unsafe methods need the opt-in and the listing.
    let rules = f.rules(&config(&format!(
        "{SHADOWED}shadow = {{ methods = [\"GET\", \"POST\"], unsafe_methods = true }}\n"
    )));
    assert_eq!(
        Req::new("POST", "/api/cards/1").decide(&rules).shadow,
        Some(Side::New)
    );
    assert_eq!(Req::new("PUT", "/api/cards/1").decide(&rules).shadow, None);
}

#[test]
fn shadow_tenant_filters_and_sampling() {
    let f = fixture();
    let rules = f.rules(&config(&format!(
        "{SHADOWED}shadow = {{ tenants = [\"acme\", \"globex\"], exclude = [\"initech\"] }}\n"
    )));
    let shadow = |t: Option<&str>| {
        let r = Req::get("/api/cards/1");
        match t {
            Some(t) => r.tenant(t),
            None => r,
        }
        .decide(&rules)
        .shadow
    };
    assert!(shadow(Some("acme")).is_some());
    assert!(shadow(Some("globex")).is_some());
    assert!(shadow(Some("hooli")).is_none());
    assert!(shadow(None).is_none());
    let rules = f.rules(&config(&format!(
        "{SHADOWED}shadow = {{ exclude = [\"initech\"] }}\n"
    )));
    assert!(
        Req::get("/api/cards/1")
            .tenant("initech")
            .decide(&rules)
            .shadow
            .is_none()
    );
    assert!(
        Req::get("/api/cards/1")
            .tenant("hooli")
            .decide(&rules)
            .shadow
            .is_some()
    );
    // Per request: the caller's sample against the percent.
    let rules = f.rules(&config(&format!("{SHADOWED}shadow = {{ percent = 50 }}\n")));
    assert!(
        Req::get("/api/cards/1")
            .sample(4_999)
            .decide(&rules)
            .shadow
            .is_some()
    );
    assert!(
        Req::get("/api/cards/1")
            .sample(5_000)
            .decide(&rules)
            .shadow
            .is_none()
    );
    // Sticky: a bucket salted apart from the rollout bucket.
    let rules = f.rules(&config(&format!(
        "{SHADOWED}shadow = {{ percent = 50, sticky = \"tenant\" }}\n"
    )));
    assert_eq!(
        rules.route("cards").unwrap().shadow.as_ref().unwrap().salt,
        "shadow:cards"
    );
    for i in 0..40 {
        let t = format!("t{i}");
        let expected = bucket("shadow:cards", &t) < 5_000;
        for sample in [0, 9_999] {
            let out = Req::get("/api/cards/1")
                .tenant(&t)
                .sample(sample)
                .decide(&rules);
            assert_eq!(out.shadow.is_some(), expected, "{t}");
        }
    }
    assert!(
        Req::get("/api/cards/1").decide(&rules).shadow.is_none(),
        "no key, no sticky sample"
    );
}

#[test]
fn tenants_on_new_lists_who_moved() {
    let f = fixture();
    let rules = f.rules(&config(&format!("{CARDS}\n[[routes]]\nname = \"all\"\npath = \"/all\"\nnew = \"new\"\npercent = 100\nexclude = [\"globex\"]\n")));
    let cards = rules.route("cards").unwrap();
    assert_eq!(rules.tenants_on_new(cards), vec!["acme", "globex", "hooli"]);
    let all = rules.route("all").unwrap();
    assert_eq!(
        rules.tenants_on_new(all),
        vec!["acme", "hooli", "initech", "soylent", "umbrella"]
    );
    assert_eq!(rules.known_tenants().len(), 7);
}

#[test]
fn explain_has_the_contract_fields() {
    let f = fixture();
    let rules = f.rules(&config(&format!("{SHADOWED}shadow = {{}}\n")));
    let (method, uri, headers) = (Method::GET, "/api/cards/7".parse::<Uri>().unwrap(), {
        let mut h = HeaderMap::new();
        h.insert("x-tenant-id", HeaderValue::from_static("acme"));
        h
    });
    let view = RequestView {
        method: &method,
        uri: &uri,
        headers: &headers,
        peer: None,
        sample: 0,
    };
    let d = rules.decide(&view, switchyard::clock::Clock::system().now());
    let v = explain(&rules, &d, 42);
    assert_eq!(v["route"], "cards");
    assert_eq!(v["tenant"], "acme");
    assert_eq!(v["side"], "new");
    assert_eq!(v["upstream"], "new");
    assert_eq!(v["reason"], "tenant_listed");
    assert_eq!(v["shadow"], "legacy");
    assert_eq!(v["generation"], 42);
    assert_eq!(v["reject"], serde_json::Value::Null);
    let unmatched = Req::get("/nope");
    let view = RequestView {
        method: &unmatched.method,
        uri: &unmatched.uri,
        headers: &unmatched.headers,
        peer: None,
        sample: 0,
    };
    let v = explain(
        &rules,
        &rules.decide(&view, switchyard::clock::Clock::system().now()),
        1,
    );
    assert_eq!(
        (v["route"].clone(), v["reason"].clone(), v["side"].clone()),
        (serde_json::Value::Null, "no_route".into(), "legacy".into())
    );
}

#[test]
fn reason_names_are_snake_case() {
    for (reason, name) in [
        (Reason::NoRoute, "no_route"),
        (Reason::StateLegacy, "state_legacy"),
        (Reason::TenantCutover, "tenant_cutover"),
        (Reason::NoNewUpstream, "no_new_upstream"),
        (Reason::UnknownTenant, "unknown_tenant"),
    ] {
        assert_eq!(reason.as_str(), name);
        assert_eq!(serde_json::to_value(reason).unwrap(), name);
    }
}
