//! Unit tests of the rollout planning and of who moves (real config loader, no sockets).

#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::*;

struct Fixture {
    dir: tempfile::TempDir,
}

const CONFIG: &str = r#"
[listen]
http = "127.0.0.1:0"

[tenant]
sources = [{ header = "x-tenant-id" }]
directory = "tenants.toml"

[upstreams.legacy]
origins = ["http://127.0.0.1:9"]

[upstreams.new]
origins = ["http://127.0.0.1:10"]

[tenants.umbrella]
side = "new"

[tenants.t-0007]
side = "legacy"

[[routes]]
name = "cards"
path = "/api/cards/{*rest}"
legacy = "legacy"
new = "new"
tenants = ["acme", "t-0003"]
exclude = ["initech"]
cohorts = [{ region = "eu", plan = "pro" }]
percent = 30

[[routes]]
name = "users"
path = "/api/users/{*rest}"
legacy = "legacy"
new = "new"
state = "legacy"
tenants = ["acme"]

[[routes]]
name = "search"
path = "/api/search/{*rest}"
legacy = "legacy"
new = "new"
state = "new"

[[routes]]
name = "files"
path = "/api/files/{*rest}"
legacy = "legacy"
percent = 100

[[routes]]
name = "carts"
path = "/api/carts/{*rest}"
legacy = "legacy"
new = "new"
sticky = "header:x-user"
percent = 50
"#;

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut directory = String::new();
        for i in 0..300 {
            let region = ["us", "eu", "apac"][i % 3];
            let plan = ["pro", "free"][i % 2];
            writeln!(
                directory,
                "[tenants.t-{i:04}]\nregion = \"{region}\"\nplan = \"{plan}\""
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("tenants.toml"), directory).unwrap();
        Fixture { dir }
    }

    fn load(&self, text: &str) -> RuleSet {
        crate::config::load_str(text, &self.dir.path().join("gw.toml"))
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

fn route_change(route: &str, change: RouteChange) -> Change {
    Change::Route {
        route: route.into(),
        change,
    }
}

#[test]
fn tenant_side_agrees_with_the_engine_on_every_route_and_known_tenant() {
    let f = Fixture::new();
    let rules = f.load(CONFIG);
    let mut checked = 0;
    for route in &rules.routes {
        let on_new: BTreeSet<String> = rules.tenants_on_new(route).into_iter().collect();
        for tenant in rules.known_tenants() {
            assert_eq!(
                tenant_side(&rules, route, &tenant) == Side::New,
                on_new.contains(&tenant),
                "route {} tenant {tenant}",
                route.name
            );
            checked += 1;
        }
    }
    assert!(checked > 1000);
    let cards = rules.route("cards").unwrap();
    assert_eq!(tenant_side(&rules, cards, "umbrella"), Side::New, "cutover");
    assert_eq!(tenant_side(&rules, cards, "t-0007"), Side::Legacy, "held");
    assert_eq!(
        tenant_side(&rules, cards, "initech"),
        Side::Legacy,
        "excluded"
    );
    // An unknown tenant: the bucket alone decides.
    let bucket = rules::bucket("cards", "stranger");
    let expected = if bucket < 3000 {
        Side::New
    } else {
        Side::Legacy
    };
    assert_eq!(tenant_side(&rules, cards, "stranger"), expected);
    assert_eq!(
        tenant_side(&rules, rules.route("files").unwrap(), "acme"),
        Side::Legacy
    );
}

#[test]
fn a_percent_change_moves_exactly_the_tenants_crossing_the_boundary() {
    let f = Fixture::new();
    let before = f.load(CONFIG);
    let change = route_change(
        "cards",
        RouteChange {
            percent: Some(60.0),
            ..RouteChange::default()
        },
    );
    let after = f.load(&config_edit::apply(CONFIG, &change).unwrap());
    let traffic = Traffic::new(crate::clock::Clock::system());
    let crossing: Vec<String> = (0..300)
        .map(|i| format!("t-{i:04}"))
        .filter(|t| (3000..6000).contains(&rules::bucket("cards", t)))
        .filter(|t| {
            let cards = before.route("cards").unwrap();
            // Listed, excluded, held, cut over or in the cohort: the bucket does not apply.
            !cards.tenants.contains(t)
                && before.tenant_side(t).is_none()
                && !before
                    .tenant_attributes(t)
                    .is_some_and(|a| a["region"] == "eu" && a["plan"] == "pro")
        })
        .collect();
    assert!(crossing.len() > 30, "{}", crossing.len());
    // Traffic: two crossing tenants and one that stays.
    let stays = (0..300)
        .map(|i| format!("t-{i:04}"))
        .find(|t| rules::bucket("cards", t) >= 6000)
        .unwrap();
    for _ in 0..6 {
        traffic.record("cards", Side::Legacy, Some(&crossing[0]));
    }
    for _ in 0..2 {
        traffic.record("cards", Side::Legacy, Some(&crossing[1]));
    }
    for _ in 0..12 {
        traffic.record("cards", Side::Legacy, Some(&stays));
    }
    let moved = moves(&before, &after, &change, &[], &traffic);
    assert_eq!(moved.len(), 1);
    let m = &moved[0];
    assert_eq!(m.to_new, crossing);
    assert_eq!(m.to_new_count, crossing.len());
    assert!(
        m.to_legacy.is_empty(),
        "raising the percent never moves back"
    );
    assert_eq!((m.requests_1h, m.moving_requests_1h), (20, 8));
    assert_eq!(m.share_1h, Some(0.4));
    assert_eq!(m.basis, Basis::BusiestTenants);
}

#[test]
fn a_kill_switch_moves_the_whole_new_side() {
    let f = Fixture::new();
    let before = f.load(CONFIG);
    let change = route_change(
        "cards",
        RouteChange {
            state: Some(RouteState::Legacy),
            ..RouteChange::default()
        },
    );
    let after = f.load(&config_edit::apply(CONFIG, &change).unwrap());
    let traffic = Traffic::new(crate::clock::Clock::system());
    for _ in 0..3 {
        traffic.record("cards", Side::New, Some("acme"));
    }
    traffic.record("cards", Side::Legacy, None);
    let m = &moves(&before, &after, &change, &[], &traffic)[0];
    let on_new = before.tenants_on_new(before.route("cards").unwrap());
    assert_eq!(m.to_legacy, on_new);
    assert!(m.to_new.is_empty());
    assert_eq!(
        (m.requests_1h, m.moving_requests_1h, m.basis),
        (4, 3, Basis::SideCounters)
    );
}

#[test]
fn a_tenant_wide_cutover_lists_every_route_it_changes() {
    let f = Fixture::new();
    let before = f.load(CONFIG);
    let change = Change::TenantSide {
        tenant: "initech".into(),
        side: Side::New,
    };
    let after = f.load(&config_edit::apply(CONFIG, &change).unwrap());
    let moved = moves(
        &before,
        &after,
        &change,
        &["initech".into()],
        &Traffic::new(crate::clock::Clock::system()),
    );
    // cards excludes initech, users is legacy by state, search is new already, files has no
    // new side: only carts (a header-keyed bucket ignores the tenant) changes.
    let routes: Vec<&str> = moved.iter().map(|m| m.route.as_str()).collect();
    assert_eq!(routes, ["carts"]);
    assert_eq!(moved[0].to_new, ["initech"]);
}

fn request(json: Value) -> RolloutRequest {
    serde_json::from_value(json).unwrap()
}

#[test]
fn plans_validate_the_request() {
    let f = Fixture::new();
    let rules = f.load(CONFIG);
    let status = |json: Value| {
        plan(&request(json), &rules)
            .err()
            .map(|e| e.status().as_u16())
    };
    assert_eq!(
        status(json!({"tenant": "acme", "side": "new"})),
        Some(400),
        "no route"
    );
    assert_eq!(status(json!({"route": "nope", "percent": 5})), Some(404));
    assert_eq!(
        status(json!({"route": "cards"})),
        Some(400),
        "nothing to change"
    );
    assert_eq!(
        status(json!({"route": "cards", "tenant": "acme"})),
        Some(400)
    );
    // Unknown sides, states and scopes do not read as a request (400 from `AdminJson`).
    for bad in [
        json!({"route": "cards", "tenant": "a", "side": "up"}),
        json!({"route": "cards", "state": "off"}),
        json!({"scope": "everyone", "tenant": "a", "side": "new"}),
    ] {
        assert!(
            serde_json::from_value::<RolloutRequest>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    assert_eq!(
        status(json!({"route": "cards", "tenants_add": ["a b"]})),
        Some(400)
    );
    assert_eq!(
        status(json!({"route": "cards", "scope": "tenant", "tenant": "a", "side": "new"})),
        Some(400)
    );
    assert_eq!(status(json!({"scope": "tenant", "tenant": "a"})), Some(400));
    assert!(
        serde_json::from_value::<RolloutRequest>(json!({"route": "x", "tenant_add": []})).is_err()
    );

    let p = plan(
        &request(json!({"route": "cards", "tenant": "initech", "side": "new"})),
        &rules,
    )
    .unwrap();
    assert_eq!(p.target, "cards");
    let Change::Route { change, .. } = &p.change else {
        panic!("route change expected")
    };
    assert_eq!(change.tenants_add, ["initech"]);
    assert_eq!(change.exclude_remove, ["initech"]);
    assert!(change.exclude_add.is_empty() && change.tenants_remove.is_empty());

    let p = plan(
        &request(json!({"route": "cards", "tenant": "acme", "side": "legacy", "tenants_add": ["acme", "b"]})),
        &rules,
    )
    .unwrap();
    let Change::Route { change, .. } = &p.change else {
        panic!("route change expected")
    };
    assert_eq!(
        change.tenants_add,
        ["b"],
        "the side wins over a contradicting list"
    );
    assert_eq!(change.tenants_remove, ["acme"]);
    assert_eq!(change.exclude_add, ["acme"]);

    let p = plan(
        &request(json!({"scope": "tenant", "tenant": "acme", "side": "new"})),
        &rules,
    )
    .unwrap();
    assert_eq!(p.target, "tenant:acme");
    assert_eq!(
        p.change,
        Change::TenantSide {
            tenant: "acme".into(),
            side: Side::New
        }
    );
}

#[test]
fn notes_when_the_state_overrides_the_lists() {
    let f = Fixture::new();
    let rules = f.load(CONFIG);
    let change = route_change(
        "users",
        RouteChange {
            tenants_add: vec!["globex".into()],
            ..RouteChange::default()
        },
    );
    assert!(note(&change, &rules).unwrap().contains("state legacy"));
    let change = route_change(
        "cards",
        RouteChange {
            percent: Some(5.0),
            ..RouteChange::default()
        },
    );
    assert_eq!(note(&change, &rules), None);
    assert!(parse_flag(Some("maybe")).is_err());
    assert!(parse_flag(Some("true")).unwrap());
    assert!(!parse_flag(None).unwrap());
}
