//! Unit tests of config text edits: exact resulting text, comments kept.

#![allow(clippy::unwrap_used)]

use super::*;

const CONFIG: &str = r#"# Switchyard gateway — production
[listen]
http = "0.0.0.0:8080"   # public port

[[routes]]
name = "users"
path = "/api/users/{*rest}"
legacy = "legacy"
new = "users"

# Cards moved first.
[[routes]]
name = "cards"          # the card service
path = ["/api/cards", "/api/cards/{*rest}"]
legacy = "legacy"
new = "cards"
tenants = [ "acme", "initech" ]   # pilot customers
exclude = [
  "hooli",   # contract says legacy until Q3
  "wayne",
]
percent = 10 # ten percent of the rest
state = "rollout"

[store]
url = "sqlite://switchyard.db"
"#;

fn route(name: &str, change: RouteChange) -> Change {
    Change::Route {
        route: name.into(),
        change,
    }
}

fn strings(v: &toml::Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

fn cards(text: &str) -> toml::Value {
    let doc: toml::Table = text.parse().unwrap();
    doc["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"].as_str() == Some("cards"))
        .unwrap()
        .clone()
}

#[test]
fn adds_and_removes_tenants_keeping_comments_and_layout() {
    let out = apply(
        CONFIG,
        &route(
            "cards",
            RouteChange {
                tenants_add: vec!["globex".into(), "acme".into()],
                tenants_remove: vec!["acme".into()],
                exclude_add: vec!["umbrella".into()],
                exclude_remove: vec!["hooli".into()],
                ..RouteChange::default()
            },
        ),
    )
    .unwrap();
    // Removes run first, then adds: acme is removed and added back at the end.
    assert!(
        out.contains(r#"tenants = [ "initech", "globex", "acme" ]   # pilot customers"#),
        "{out}"
    );
    assert!(
        out.contains("exclude = [\n  \"wayne\",\n  \"umbrella\",\n]\n"),
        "{out}"
    );
    for comment in [
        "# Switchyard gateway — production",
        "# public port",
        "# Cards moved first.",
        "# the card service",
        "# ten percent of the rest",
    ] {
        assert!(out.contains(comment), "lost {comment:?}:\n{out}");
    }
    let c = cards(&out);
    assert_eq!(strings(&c["tenants"]), ["initech", "globex", "acme"]);
    assert_eq!(strings(&c["exclude"]), ["wayne", "umbrella"]);
    assert_eq!(c["percent"].as_integer(), Some(10));
    // Nothing else moved: the users route and the store are byte for byte the same.
    let head = CONFIG.split("# Cards moved first.").next().unwrap();
    assert!(out.starts_with(head));
    assert!(out.ends_with("[store]\nurl = \"sqlite://switchyard.db\"\n"));
}

#[test]
fn sets_percent_and_state_keeping_trailing_comments() {
    let out = apply(
        CONFIG,
        &route(
            "cards",
            RouteChange {
                percent: Some(25.0),
                state: Some(RouteState::Legacy),
                ..RouteChange::default()
            },
        ),
    )
    .unwrap();
    assert!(
        out.contains("percent = 25 # ten percent of the rest\nstate = \"legacy\"\n"),
        "{out}"
    );
    let out = apply(
        &out,
        &route(
            "cards",
            RouteChange {
                percent: Some(12.345),
                ..RouteChange::default()
            },
        ),
    )
    .unwrap();
    assert_eq!(cards(&out)["percent"].as_float(), Some(12.35));
}

#[test]
fn creates_missing_keys_in_the_right_route() {
    let out = apply(
        CONFIG,
        &route(
            "users",
            RouteChange {
                tenants_add: vec!["acme".into()],
                percent: Some(5.0),
                state: Some(RouteState::Rollout),
                exclude_remove: vec!["nobody".into()],
                ..RouteChange::default()
            },
        ),
    )
    .unwrap();
    let doc: toml::Table = out.parse().unwrap();
    let users = &doc["routes"].as_array().unwrap()[0];
    assert_eq!(users["name"].as_str(), Some("users"));
    assert_eq!(strings(&users["tenants"]), ["acme"]);
    assert_eq!(users["percent"].as_integer(), Some(5));
    assert_eq!(users["state"].as_str(), Some("rollout"));
    assert!(
        users.get("exclude").is_none(),
        "removing from nothing adds nothing"
    );
    // The new keys sit inside the users table, before the cards comment.
    let users_part = out.split("# Cards moved first.").next().unwrap();
    assert!(
        users_part.contains("tenants = [\"acme\"]\npercent = 5\n"),
        "{out}"
    );
    assert_eq!(cards(&out), cards(CONFIG), "cards untouched");
}

#[test]
fn tenant_wide_side_creates_and_updates_the_table() {
    let out = apply(
        CONFIG,
        &Change::TenantSide {
            tenant: "umbrella".into(),
            side: Side::New,
        },
    )
    .unwrap();
    assert!(
        out.contains("[tenants.umbrella]\nside = \"new\"\n"),
        "{out}"
    );
    assert!(
        !out.contains("[tenants]\n"),
        "no bare [tenants] header: {out}"
    );
    let out = apply(
        &out,
        &Change::TenantSide {
            tenant: "umbrella".into(),
            side: Side::Legacy,
        },
    )
    .unwrap();
    let doc: toml::Table = out.parse().unwrap();
    assert_eq!(doc["tenants"]["umbrella"]["side"].as_str(), Some("legacy"));
    assert_eq!(out.matches("[tenants.umbrella]").count(), 1);
    assert!(out.contains("# ten percent of the rest"));

    let inline = "tenants = { acme = { side = \"legacy\" } } # held\n";
    let out = apply(
        inline,
        &Change::TenantSide {
            tenant: "acme".into(),
            side: Side::New,
        },
    )
    .unwrap();
    assert_eq!(out, "tenants = { acme = { side = \"new\" } } # held\n");
}

fn edit_exclude(text: &str, add: &[&str], remove: &[&str]) -> String {
    let change = route(
        "cards",
        RouteChange {
            exclude_add: add.iter().map(|s| s.to_string()).collect(),
            exclude_remove: remove.iter().map(|s| s.to_string()).collect(),
            ..RouteChange::default()
        },
    );
    apply(text, &change).unwrap()
}

#[test]
fn guard_and_schedule_flags_are_set_and_removed_in_place() {
    let text = "[[routes]]\nname = \"cards\"\nguard = { max_error_rate = 0.01 } # keep\n\n[routes.rollout]\nsteps = [1, 5]\n";
    let trip = RouteChange {
        guard_tripped: Some(true),
        schedule_paused: Some(true),
        ..RouteChange::default()
    };
    let tripped = apply(text, &route("cards", trip)).unwrap();
    let doc = cards(&tripped);
    assert_eq!(doc["guard"]["tripped"].as_bool(), Some(true));
    assert_eq!(doc["rollout"]["paused"].as_bool(), Some(true));
    assert!(tripped.contains("# keep"), "{tripped}");
    let rearm = RouteChange {
        guard_tripped: Some(false),
        schedule_paused: Some(false),
        ..RouteChange::default()
    };
    assert_eq!(apply(&tripped, &route("cards", rearm)).unwrap(), text);
    let missing = "[[routes]]\nname = \"cards\"\n";
    let trip = RouteChange {
        guard_tripped: Some(true),
        ..RouteChange::default()
    };
    assert!(matches!(
        apply(missing, &route("cards", trip)),
        Err(EditError::Shape(_))
    ));
}

#[test]
fn removing_an_element_keeps_its_neighbours_comments() {
    let head = "[[routes]]\nname = \"cards\"\n";
    let multi = format!(
        "{head}exclude = [\n  # held\n  \"a\",  # about a\n  \"b\",  # about b\n  \"c\",  # about c\n]\n"
    );
    assert_eq!(
        edit_exclude(&multi, &[], &["b"]),
        format!("{head}exclude = [\n  # held\n  \"a\",  # about a\n  \"c\",  # about c\n]\n")
    );
    assert_eq!(
        edit_exclude(&multi, &[], &["c"]),
        format!("{head}exclude = [\n  # held\n  \"a\",  # about a\n  \"b\",  # about b\n]\n")
    );
    assert_eq!(
        edit_exclude(&multi, &["d"], &[]),
        format!(
            "{head}exclude = [\n  # held\n  \"a\",  # about a\n  \"b\",  # about b\n  \"c\",  # about c\n  \"d\",\n]\n"
        )
    );
    let no_comma = format!("{head}exclude = [\n  \"a\",  # about a\n  \"b\"\n]\n");
    let out = edit_exclude(&no_comma, &[], &["b"]);
    assert_eq!(out, format!("{head}exclude = [\n  \"a\"  # about a\n]\n"));
    let out = edit_exclude(&out, &["z"], &[]);
    assert_eq!(
        out,
        format!("{head}exclude = [\n  \"a\"  # about a\n,\n  \"z\"]\n")
    );
    assert_eq!(
        cards(&out)["exclude"].as_array().unwrap().len(),
        2,
        "odd but valid TOML"
    );
    let single = format!("{head}exclude = [\"a\", \"b\"]\n");
    assert_eq!(
        edit_exclude(&single, &[], &["a"]),
        format!("{head}exclude = [\"b\"]\n")
    );
    assert_eq!(
        edit_exclude(&single, &[], &["a", "b"]),
        format!("{head}exclude = []\n")
    );
}

#[test]
fn inline_route_arrays_are_edited_too() {
    let text = "routes = [\n  { name = \"cards\", legacy = \"l\", tenants = [\"acme\"] },\n]\n";
    let out = apply(
        text,
        &route(
            "cards",
            RouteChange {
                tenants_add: vec!["globex".into()],
                ..RouteChange::default()
            },
        ),
    )
    .unwrap();
    assert_eq!(
        out,
        "routes = [\n  { name = \"cards\", legacy = \"l\", tenants = [\"acme\", \"globex\"] },\n]\n"
    );
}

#[test]
fn refuses_what_it_cannot_edit() {
    let none = route("nope", RouteChange::default());
    assert_eq!(apply(CONFIG, &none), Err(EditError::NoRoute("nope".into())));
    let bad = route(
        "cards",
        RouteChange {
            percent: Some(101.0),
            ..RouteChange::default()
        },
    );
    assert_eq!(apply(CONFIG, &bad), Err(EditError::BadPercent(101.0)));
    let nan = route(
        "cards",
        RouteChange {
            percent: Some(f64::NAN),
            ..RouteChange::default()
        },
    );
    assert!(matches!(apply(CONFIG, &nan), Err(EditError::BadPercent(_))));
    let shape = "[[routes]]\nname = \"cards\"\ntenants = \"acme\"\n";
    let add = route(
        "cards",
        RouteChange {
            tenants_add: vec!["x".into()],
            ..RouteChange::default()
        },
    );
    assert_eq!(
        apply(shape, &add),
        Err(EditError::Shape("routes.cards.tenants".into()))
    );
    assert!(matches!(
        apply("[[routes]\n", &add),
        Err(EditError::Parse(_))
    ));
    let empty = route(
        "cards",
        RouteChange {
            exclude_add: vec![String::new()],
            ..RouteChange::default()
        },
    );
    assert_eq!(apply(CONFIG, &empty), Err(EditError::EmptyTenant));
}

mod properties {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// Array layouts found in hand-written configs.
    const LAYOUTS: [&str; 4] = [
        "tenants = []\n",
        "tenants = [ \"a\", \"b\" ]  # pilots\n",
        "tenants = [\n  \"a\",  # first\n  \"b\",\n]\n",
        "tenants = [\n  # listed\n  \"a\",\n  \"b\"  # last\n]\n",
    ];

    proptest! {
        /// Any sequence of additions and removals leaves exactly the expected set, in a file
        /// that still parses and keeps every comment not attached to a removed tenant.
        #[test]
        fn edits_behave_like_set_operations(
            layout in 0..LAYOUTS.len(),
            ops in proptest::collection::vec((any::<bool>(), "[a-e]"), 0..12),
        ) {
            let mut text = format!("# top\n[[routes]]\nname = \"cards\"\n{}", LAYOUTS[layout]);
            let start: toml::Table = text.parse().unwrap();
            let mut expected: BTreeSet<String> = start["routes"][0]["tenants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            for (add, tenant) in &ops {
                let change = RouteChange {
                    tenants_add: if *add { vec![tenant.clone()] } else { vec![] },
                    tenants_remove: if *add { vec![] } else { vec![tenant.clone()] },
                    ..RouteChange::default()
                };
                text = apply(&text, &Change::Route { route: "cards".into(), change }).unwrap();
                if *add {
                    expected.insert(tenant.clone());
                } else {
                    expected.remove(tenant);
                }
                let doc: toml::Table = text
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}\n{text}"));
                let got: Vec<String> = doc["routes"][0]["tenants"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                let unique: BTreeSet<String> = got.iter().cloned().collect();
                prop_assert_eq!(unique.len(), got.len(), "duplicates in {}", text);
                prop_assert_eq!(&unique, &expected, "{}", text);
            }
            prop_assert!(text.starts_with("# top\n"));
        }
    }
}
