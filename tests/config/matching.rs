//! Route matching: path specificity, matcher counts, file order, fallback to less specific
//! patterns, host and header matchers.

use super::*;

fn route_of(rules: &RuleSet, req: Req) -> Option<String> {
    req.decide(rules).route
}

fn routes(body: &str) -> String {
    format!("{BASE}\n{body}")
}

#[test]
fn static_beats_param_beats_catch_all() {
    let f = Fixture::new();
    let rules = f.rules(&routes(
        r#"
[[routes]]
name = "all"
path = "/{*rest}"

[[routes]]
name = "api"
path = "/api/{*rest}"

[[routes]]
name = "card"
path = "/api/cards/{id}"

[[routes]]
name = "mine"
path = "/api/cards/mine"

[[routes]]
name = "image"
path = "/img/{name}.png"
"#,
    ));
    assert_eq!(
        route_of(&rules, Req::get("/api/cards/mine")).as_deref(),
        Some("mine")
    );
    assert_eq!(
        route_of(&rules, Req::get("/api/cards/7")).as_deref(),
        Some("card")
    );
    // `{id}` is one segment: matchit backtracks to the catch-all.
    assert_eq!(
        route_of(&rules, Req::get("/api/cards/7/notes")).as_deref(),
        Some("api")
    );
    assert_eq!(
        route_of(&rules, Req::get("/api/cards")).as_deref(),
        Some("api")
    );
    assert_eq!(
        route_of(&rules, Req::get("/img/logo.png")).as_deref(),
        Some("image")
    );
    assert_eq!(
        route_of(&rules, Req::get("/img/logo.jpg")).as_deref(),
        Some("all")
    );
    assert_eq!(
        route_of(&rules, Req::get("/index.html")).as_deref(),
        Some("all")
    );
    // A catch-all needs at least one character.
    assert_eq!(route_of(&rules, Req::get("/")), None);
}

#[test]
fn catch_all_does_not_match_its_parent() {
    let f = Fixture::new();
    let rules = f.rules(&routes("[[routes]]\nname = \"cards\"\npath = \"/api/cards/{*rest}\"\n\n[[routes]]\nname = \"both\"\npath = [\"/v2/cards\", \"/v2/cards/{*rest}\"]\n"));
    assert_eq!(route_of(&rules, Req::get("/api/cards")), None);
    assert_eq!(
        route_of(&rules, Req::get("/api/cards/1")).as_deref(),
        Some("cards")
    );
    assert_eq!(
        route_of(&rules, Req::get("/v2/cards")).as_deref(),
        Some("both")
    );
    assert_eq!(
        route_of(&rules, Req::get("/v2/cards/1/x")).as_deref(),
        Some("both")
    );
    // The query string is not part of the path.
    assert_eq!(
        route_of(&rules, Req::get("/v2/cards?x=1")).as_deref(),
        Some("both")
    );
}

#[test]
fn more_matchers_win_on_a_shared_pattern_then_file_order() {
    let f = Fixture::new();
    let rules = f.rules(&routes(
        r#"
[[routes]]
name = "plain"
path = "/api/cards/{id}"

[[routes]]
name = "reads"
path = "/api/cards/{id}"
methods = ["GET", "HEAD"]

[[routes]]
name = "beta-reads"
path = "/api/cards/{id}"
methods = ["GET"]
headers = { "x-beta" = "1" }

[[routes]]
name = "by-header"
path = "/api/cards/{id}"
headers = { "x-canary" = "yes" }
"#,
    ));
    assert_eq!(
        route_of(&rules, Req::get("/api/cards/1").header("x-beta", "1")).as_deref(),
        Some("beta-reads")
    );
    assert_eq!(
        route_of(&rules, Req::get("/api/cards/1").header("x-beta", "2")).as_deref(),
        Some("reads")
    );
    assert_eq!(
        route_of(
            &rules,
            Req::new("POST", "/api/cards/1").header("x-beta", "1")
        )
        .as_deref(),
        Some("plain")
    );
    // "reads" and "by-header" both have one matcher: file order decides.
    assert_eq!(
        route_of(&rules, Req::get("/api/cards/1").header("x-canary", "yes")).as_deref(),
        Some("reads")
    );
    assert_eq!(
        route_of(
            &rules,
            Req::new("PUT", "/api/cards/1").header("x-canary", "yes")
        )
        .as_deref(),
        Some("by-header")
    );
    // Several values of a header: any may match.
    let two = Req::get("/api/cards/1")
        .header("x-beta", "0")
        .header("x-beta", "1");
    assert_eq!(route_of(&rules, two).as_deref(), Some("beta-reads"));
}

#[test]
fn falls_back_to_less_specific_patterns() {
    let f = Fixture::new();
    let rules = f.rules(&routes(
        r#"
[[routes]]
name = "card-reads"
path = "/api/cards/{id}"
methods = ["GET"]

[[routes]]
name = "api-writes"
path = "/api/{*rest}"
methods = ["POST", "PUT"]

[[routes]]
name = "other-api"
path = "/api/other/{id}"

[[routes]]
name = "everything"
path = "/{*rest}"
"#,
    ));
    assert_eq!(
        route_of(&rules, Req::get("/api/cards/1")).as_deref(),
        Some("card-reads")
    );
    // GET-only rejects the POST: the catch-all of /api takes it.
    assert_eq!(
        route_of(&rules, Req::new("POST", "/api/cards/1")).as_deref(),
        Some("api-writes")
    );
    // Both reject DELETE: down to the root catch-all, never the unrelated /api/other/{id}.
    assert_eq!(
        route_of(&rules, Req::new("DELETE", "/api/cards/1")).as_deref(),
        Some("everything")
    );
    assert_eq!(
        route_of(&rules, Req::new("DELETE", "/api/other/1")).as_deref(),
        Some("other-api")
    );
}

#[test]
fn fallback_without_a_catch_all_finds_nothing() {
    let f = Fixture::new();
    let rules = f.rules(&routes("[[routes]]\nname = \"reads\"\npath = \"/api/cards/{id}\"\nmethods = [\"GET\"]\n\n[[routes]]\nname = \"mine\"\npath = \"/api/cards/mine\"\nmethods = [\"GET\"]\n"));
    assert_eq!(route_of(&rules, Req::new("POST", "/api/cards/1")), None);
    // The static pattern rejects POST; the param pattern is tried and rejects it too.
    assert_eq!(route_of(&rules, Req::new("POST", "/api/cards/mine")), None);
    assert_eq!(
        route_of(&rules, Req::get("/api/cards/mine")).as_deref(),
        Some("mine")
    );
}

#[test]
fn static_pattern_falls_back_to_its_param_sibling() {
    let f = Fixture::new();
    let rules = f.rules(&routes("[[routes]]\nname = \"mine-beta\"\npath = \"/api/cards/mine\"\nheaders = { \"x-beta\" = \"1\" }\n\n[[routes]]\nname = \"card\"\npath = \"/api/cards/{id}\"\n"));
    assert_eq!(
        route_of(&rules, Req::get("/api/cards/mine").header("x-beta", "1")).as_deref(),
        Some("mine-beta")
    );
    assert_eq!(
        route_of(&rules, Req::get("/api/cards/mine")).as_deref(),
        Some("card")
    );
}

#[test]
fn host_matchers() {
    let f = Fixture::new();
    let rules = f.rules(&routes(
        r#"
[[routes]]
name = "exact"
path = "/api/{*rest}"
host = "API.example.com"

[[routes]]
name = "wild"
path = "/api/{*rest}"
host = "*.example.com"

[[routes]]
name = "any"
path = "/api/{*rest}"
"#,
    ));
    let at = |host: &str| route_of(&rules, Req::get("/api/x").header("host", host));
    assert_eq!(at("api.example.com").as_deref(), Some("exact"));
    assert_eq!(at("Api.Example.Com:8080").as_deref(), Some("exact"));
    assert_eq!(at("eu.example.com").as_deref(), Some("wild"));
    assert_eq!(at("a.b.example.com").as_deref(), Some("wild"));
    assert_eq!(at("example.com").as_deref(), Some("any"));
    assert_eq!(at("notexample.com").as_deref(), Some("any"));
    assert_eq!(route_of(&rules, Req::get("/api/x")).as_deref(), Some("any"));
    assert_eq!(
        route_of(&rules, Req::get("http://x.example.com/api/x")).as_deref(),
        Some("wild")
    );
}

#[test]
fn identical_routes_on_one_of_several_patterns_are_allowed() {
    // Only a route shadowed on every pattern is an error.
    let f = Fixture::new();
    let rules = f.rules(&routes("[[routes]]\nname = \"a\"\npath = \"/x\"\n\n[[routes]]\nname = \"b\"\npath = [\"/x\", \"/y\"]\n"));
    assert_eq!(route_of(&rules, Req::get("/x")).as_deref(), Some("a"));
    assert_eq!(route_of(&rules, Req::get("/y")).as_deref(), Some("b"));
    assert_eq!(rules.routes[1].index, 1);
}
