//! Every kind of config error, with its `file:line:col`, and many errors reported at once.

use super::*;

/// Asserts that `errors` has a line starting with `prefix` and containing `needle`.
#[track_caller]
fn has(errors: &[String], prefix: &str, needle: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(prefix) && e.contains(needle)),
        "no error `{prefix}…{needle}…` in:\n{}",
        errors.join("\n")
    );
}

#[test]
fn unknown_key_and_undefined_upstream_are_both_reported() {
    // The shape of the contract check: an unknown key in [listen] must not hide the route's
    // problems.
    let f = Fixture::new();
    let errors = f.errors("[listen]\nhttp = \"127.0.0.1:1\"\nbogus_key = 3\n[[routes]]\nname = \"x\"\nlegacy = \"nope\"\n");
    has(&errors, "gw.toml:3:1: ", "unknown field `bogus_key`");
    has(&errors, "gw.toml:5:8: ", "route \"x\" needs a `path`");
    has(&errors, "gw.toml:6:10: ", "undefined upstream \"nope\"");
}

#[test]
fn syntax_errors_carry_positions() {
    let f = Fixture::new();
    let errors = f.errors("[listen]\nhttp = \"127.0.0.1:1\n");
    assert!(errors[0].starts_with("gw.toml:2:"), "{errors:?}");
    let errors = f.errors("[listen]\nhttp = \"127.0.0.1:1\"\nhttp = \"127.0.0.1:2\"\n");
    assert!(errors[0].starts_with("gw.toml:3:1: "), "{errors:?}");
}

/// Shape errors (unknown keys, wrong types) stop their own section or route, so each section
/// and each route reports its first one; the other sections and routes are still checked.
#[test]
fn unknown_keys_everywhere_are_named() {
    let f = Fixture::new();
    let config = format!(
        "{BASE}\n[admin]\nlisten = \"127.0.0.1:9901\"\ndebug = true\n\n[[routes]]\nname = \"cards\"\npath = \"/api/cards\"\nnew = \"new\"\nprecent = 10\n\n[[routes]]\nname = \"users\"\npath = \"/api/users\"\nnew = \"new\"\nshadow = {{ percent = 5, method = [\"GET\"] }}\n\n[bogus]\nx = 1\n"
    );
    let errors = f.errors(&config);
    has(&errors, "gw.toml:15:1: ", "unknown field `debug`");
    has(&errors, "gw.toml:21:1: ", "unknown field `precent`");
    has(&errors, "gw.toml:27:25: ", "unknown field `method`");
    has(&errors, "gw.toml:29:2: ", "unknown section `bogus`");
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

#[test]
fn bad_values_are_all_reported_at_their_values() {
    let f = Fixture::new();
    let config = r#"[listen]
http = "localhost:80"
idle_timeout = "5 parsecs"
max_header_bytes = "12 furlongs"
workers = 0

[admin]
listen = "127.0.0.1:99999"

[tenant]
sources = [{ header = "x-tenant-id", trusted_proxies = ["10.0.0.0/33"] }]
unknown = "maybe"

[upstreams.legacy]
origins = ["ftp://127.0.0.1:8001"]
timeout = "soon"

[upstreams.new]
origins = ["http://127.0.0.1:8002/api"]
eject_after = 0

[[routes]]
name = "cards"
path = "/api/cards"
legacy = "legacy"
new = "new"
percent = 150
state = "sideways"
sticky = "ip"
fallback_buffer = -1

[[routes]]
name = "users"
path = "/api/users"
new = "new"
percent = 12.345
methods = ["GET", "FETCH"]
host = "bad host"
tenants = ["acme", "not valid!"]

[store]
url = "mysql://db"
"#;
    let errors = f.errors(config);
    for (prefix, needle) in [
        (
            "gw.toml:2:8: ",
            "listen.http: invalid address \"localhost:80\"",
        ),
        ("gw.toml:3:16: ", "invalid duration \"5 parsecs\""),
        ("gw.toml:4:20: ", "invalid size \"12 furlongs\""),
        (
            "gw.toml:5:11: ",
            "workers must be between 1 and 1024, got 0",
        ),
        ("gw.toml:8:10: ", "admin.listen: invalid address"),
        ("gw.toml:11:57: ", "invalid CIDR \"10.0.0.0/33\""),
        (
            "gw.toml:12:11: ",
            "`unknown` must be \"default\" or \"reject\"",
        ),
        ("gw.toml:15:12: ", "must start with http:// or https://"),
        ("gw.toml:16:11: ", "invalid duration \"soon\""),
        ("gw.toml:19:12: ", "must not have a path or query"),
        (
            "gw.toml:20:15: ",
            "eject_after must be between 1 and 1000000, got 0",
        ),
        (
            "gw.toml:27:11: ",
            "percent must be between 0 and 100, got 150",
        ),
        (
            "gw.toml:28:9: ",
            "`state` must be \"legacy\", \"rollout\" or \"new\"",
        ),
        (
            "gw.toml:29:10: ",
            "`sticky` must be \"tenant\", \"header:<name>\" or \"cookie:<name>\"",
        ),
        ("gw.toml:30:19: ", "size must not be negative"),
        ("gw.toml:36:11: ", "percent has a resolution of 0.01"),
        ("gw.toml:37:19: ", "unknown HTTP method \"FETCH\""),
        ("gw.toml:38:8: ", "invalid host \"bad host\""),
        ("gw.toml:39:20: ", "invalid tenant id \"not valid!\""),
        ("gw.toml:42:7: ", "invalid store url \"mysql://db\""),
    ] {
        has(&errors, prefix, needle);
    }
    assert_eq!(errors.len(), 20, "{errors:#?}");
}

#[test]
fn route_checks() {
    let f = Fixture::new();
    let config = format!(
        r#"{BASE}
[default]
upstream = "missing"

[[routes]]
name = "cards"
path = "/api/cards/{{id}}"
legacy = "legacy"
new = "cards-v2"
tenants = ["acme", "initech"]
exclude = ["initech"]
methods = []

[[routes]]
name = "cards"
path = "/api/other"

[[routes]]
name = "a"
path = "/api/a/{{id}}"
methods = ["GET"]

[[routes]]
name = "b"
path = ["/api/a/{{id}}"]
methods = ["get"]

[[routes]]
name = "c"
path = "/api/a/{{name}}"
headers = {{ "x-beta" = "1" }}

[[routes]]
name = "d"
path = ["/api/d/{{*rest}}/more", "no-slash"]

[[routes]]
name = "e"
path = "/api/e"
shadow = {{ percent = 100 }}
compare = {{ ignore = ["/x"] }}

[[routes]]
name = "g"
path = []

[[routes]]
name = "f"
path = "/api/f"
new = "new"
compare = {{ ignore = ["/x"] }}
cohorts = [{{ region = "eu" }}]
"#
    );
    let errors = f.errors(&config);
    for (prefix, needle) in [
        (
            "gw.toml:14:12: ",
            "undefined upstream \"missing\" (defined: legacy, new)",
        ),
        ("gw.toml:20:7: ", "undefined upstream \"cards-v2\""),
        (
            "gw.toml:22:12: ",
            "tenant \"initech\" is in both `tenants` and `exclude`",
        ),
        ("gw.toml:23:11: ", "`methods` is empty"),
        (
            "gw.toml:26:8: ",
            "duplicate route name \"cards\" (first defined on line 17)",
        ),
        (
            "gw.toml:35:8: ",
            "route \"b\" can never match: route \"a\" (line 30)",
        ),
        (
            "gw.toml:41:8: ",
            "path pattern \"/api/a/{name}\" conflicts with \"/api/a/{id}\" (route \"a\")",
        ),
        (
            "gw.toml:46:9: ",
            "invalid path pattern \"/api/d/{*rest}/more\"",
        ),
        (
            "gw.toml:46:32: ",
            "path pattern \"no-slash\" must start with '/'",
        ),
        (
            "gw.toml:51:10: ",
            "`shadow` needs a route with both `legacy` and `new` upstreams",
        ),
        ("gw.toml:56:8: ", "`path` must not be an empty list"),
        (
            "gw.toml:62:11: ",
            "`compare` has no effect without `shadow`",
        ),
        (
            "gw.toml:63:12: ",
            "`cohorts` match tenant directory attributes",
        ),
    ] {
        has(&errors, prefix, needle);
    }
    assert_eq!(errors.len(), 13, "{errors:#?}");
}

#[test]
fn shadow_checks() {
    let f = Fixture::new();
    let config = format!(
        r#"{BASE}
[[routes]]
name = "cards"
path = "/api/cards"
new = "new"
shadow = {{ percent = 101, methods = ["GET", "POST"], tenants = ["acme"], exclude = ["acme"], max_body = "1 lightyear", strip_headers = ["bad header"] }}
"#
    );
    let errors = f.errors(&config);
    has(
        &errors,
        "gw.toml:17:22: ",
        "percent must be between 0 and 100",
    );
    has(
        &errors,
        "gw.toml:17:45: ",
        "POST has side effects: shadowing it needs `unsafe_methods = true`",
    );
    has(&errors, "gw.toml:17:85: ", "tenant \"acme\" is in both");
    has(&errors, "gw.toml:17:105: ", "invalid size \"1 lightyear\"");
    has(
        &errors,
        "gw.toml:17:137: ",
        "invalid header name \"bad header\"",
    );
    assert_eq!(errors.len(), 5, "{errors:#?}");
    // With the opt-in, POST may be shadowed.
    let ok = config
        .replace("percent = 101", "percent = 100, unsafe_methods = true")
        .replace(", exclude = [\"acme\"]", "")
        .replace("1 lightyear", "2MiB")
        .replace("bad header", "x-api-key");
    let rules = f.rules(&ok);
    let policy = rules.route("cards").unwrap().shadow.as_ref().unwrap();
    assert_eq!(policy.methods, vec![Method::GET, Method::POST]);
    assert_eq!(policy.max_body, 2 << 20);
    assert_eq!(policy.strip_headers, vec!["x-api-key".to_owned()]);
}

#[test]
fn listen_needs_an_address_and_tls_pairs() {
    let f = Fixture::new();
    let errors = f.errors(
        "[listen]\nworkers = 2\n\n[upstreams.legacy]\norigins = [\"http://127.0.0.1:1\"]\n",
    );
    has(
        &errors,
        "gw.toml:1:1: ",
        "[listen] needs `http` and/or `https`",
    );
    let errors = f.errors("[listen]\nhttps = \"127.0.0.1:8443\"\ntls_cert = \"missing.pem\"\n\n[upstreams.legacy]\norigins = [\"http://127.0.0.1:1\"]\n");
    has(
        &errors,
        "gw.toml:2:9: ",
        "`https` needs both `tls_cert` and `tls_key`",
    );
    has(&errors, "gw.toml:3:12: ", "listen.tls_cert: cannot read");
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

#[test]
fn no_default_upstream_without_legacy() {
    let f = Fixture::new();
    let errors = f.errors("[listen]\nhttp = \"127.0.0.1:1\"\n[upstreams.a]\norigins = [\"http://127.0.0.1:1\"]\n[upstreams.b]\norigins = [\"http://127.0.0.1:2\"]\n");
    has(&errors, "gw.toml:1:1: ", "missing [default] upstream");
    // An upstream called legacy is the default.
    let rules = f.rules(BASE);
    assert_eq!(rules.default_upstream, "legacy");
}

#[test]
fn referenced_file_errors_name_that_file() {
    let f = Fixture::new();
    f.write("tenants.toml", "[tenants.acme]\nregion = \"us\"\n\n[tenants.\"bad id!\"]\nregion = \"eu\"\n[tenants.globex]\nside = \"new\"\n");
    f.write("tokens.toml", "[tokens.ops]\nrole = \"admin\"\nsecret = \"0123456789\"\n[tokens.ro]\nrole = \"read\"\nsecret_sha256 = \"abc\"\n");
    f.write(
        "jwks.json",
        "{\n  \"keys\": [\n    { \"kty\": \"RSA\", \n  ]\n}\n",
    );
    f.write("empty.key", "\n \n");
    let config = format!(
        r#"{BASE}
[admin]
tokens_file = "tokens.toml"
override_secret_file = "empty.key"

[tenant]
sources = [{{ jwt_claim = "org", jwks = "jwks.json" }}, {{ cookie = "tenant" }}, {{ jwt_claim = "org", hs256_secret_file = "nowhere.key" }}]
directory = "tenants.toml"
"#
    )
    .replace("[tenant]\nsources = [{ header = \"x-tenant-id\" }]\n", "");
    let errors = f.errors(&config);
    has(
        &errors,
        "tenants.toml:4:10: ",
        "invalid tenant id \"bad id!\"",
    );
    has(
        &errors,
        "tenants.toml:7:1: ",
        "`side` is not a directory attribute",
    );
    has(
        &errors,
        "tokens.toml:2:8: ",
        "role must be \"read\" or \"write\"",
    );
    has(
        &errors,
        "tokens.toml:6:17: ",
        "secret_sha256 must be 64 hex digits",
    );
    has(&errors, "jwks.json:4:3: ", "invalid JWKS");
    has(
        &errors,
        "empty.key:1:1: ",
        "admin.override_secret_file: the file is empty",
    );
    has(
        &errors,
        "gw.toml:16:119: ",
        "hs256_secret_file: cannot read",
    );
    assert_eq!(errors.len(), 7, "{errors:#?}");
}

#[test]
fn directory_syntax_errors_have_positions() {
    let f = Fixture::new();
    f.write("tenants.toml", "[tenants.acme]\nregion = us\n");
    let config = BASE.replace("[tenant]\n", "[tenant]\ndirectory = \"tenants.toml\"\n");
    let errors = f.errors(&config);
    has(&errors, "tenants.toml:2:10: ", "");
    assert_eq!(errors.len(), 1, "{errors:#?}");
}

#[test]
fn tenant_source_shapes() {
    let f = Fixture::new();
    let config = BASE.replace(
        "sources = [{ header = \"x-tenant-id\" }]",
        r#"sources = [
  { header = "x-tenant-id", host = "{tenant}.example.com" },
  { host = "example.com" },
  { path = "/t/x{tenant}/" },
  { cookie = "a;b" },
  { cookie = "tenant", trusted_proxies = ["10.0.0.0/8"] },
  { jwt_claim = "org" },
  { jwks = "jwks.json" },
  { header = "bad header" },
]"#,
    );
    let errors = f.errors(&config);
    has(
        &errors,
        "gw.toml:6:3: ",
        "exactly one of `header`, `host`, `path`, `cookie` or `jwt_claim`",
    );
    has(
        &errors,
        "gw.toml:7:12: ",
        "invalid host pattern \"example.com\"",
    );
    has(
        &errors,
        "gw.toml:8:12: ",
        "invalid path pattern \"/t/x{tenant}/\"",
    );
    has(&errors, "gw.toml:9:14: ", "invalid cookie name \"a;b\"");
    has(
        &errors,
        "gw.toml:10:3: ",
        "`trusted_proxies` only applies to a `header` source",
    );
    has(
        &errors,
        "gw.toml:11:3: ",
        "needs exactly one of `jwks` (RS256/ES256 keys) or `hs256_secret_file`",
    );
    has(&errors, "gw.toml:12:3: ", "`jwks` belongs to a JWT source");
    has(
        &errors,
        "gw.toml:13:14: ",
        "invalid header name \"bad header\"",
    );
    assert_eq!(errors.len(), 8, "{errors:#?}");
}

#[test]
fn errors_are_ordered_and_displayed_one_per_line() {
    let f = Fixture::new();
    let err = f
        .load("[listen]\nhttp = \"x\"\n[upstreams.legacy]\norigins = []\n")
        .err()
        .unwrap();
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("gw.toml:2:8: "), "{text}");
    assert!(
        lines[1].contains("gw.toml:4:11: `origins` must not be empty"),
        "{text}"
    );
}

#[test]
fn unreadable_config_file() {
    let err = load_file(std::path::Path::new("/definitely/not/here.toml"))
        .err()
        .unwrap();
    assert_eq!(err.0.len(), 1);
    assert!(
        err.to_string()
            .starts_with("/definitely/not/here.toml:1:1: cannot read config file")
    );
}

#[test]
fn hash_covers_referenced_files() {
    let f = Fixture::new();
    f.write("tenants.toml", "[tenants.acme]\nregion = \"us\"\n");
    let config = BASE.replace(
        "sources = [{ header = \"x-tenant-id\" }]",
        "sources = [{ header = \"x-tenant-id\" }]\ndirectory = \"tenants.toml\"",
    );
    let first = f.rules(&config);
    assert_eq!(first.files, vec![f.dir.path().join("tenants.toml")]);
    assert_eq!(first.hash.len(), 64);
    assert_eq!(f.rules(&config).hash, first.hash, "same inputs, same hash");
    f.write("tenants.toml", "[tenants.acme]\nregion = \"eu\"\n");
    assert_ne!(
        f.rules(&config).hash,
        first.hash,
        "a directory change changes the hash"
    );
}

#[test]
fn relative_paths_are_relative_to_the_config() {
    let f = Fixture::new();
    f.write("override.key", "s3cret\n");
    let config = format!(
        "{BASE}\n[admin]\noverride_secret_file = \"override.key\"\n\n[store]\nurl = \"sqlite://data/sw.db\"\n"
    );
    let rules = f.rules(&config);
    assert_eq!(rules.admin.override_secret.as_deref(), Some(&b"s3cret"[..]));
    assert_eq!(
        rules.store.url,
        format!("sqlite://{}", f.dir.path().join("data/sw.db").display())
    );
}

#[test]
fn the_noise_window_is_a_duration_of_at_least_a_minute() {
    let f = Fixture::new();
    let rules = f.rules(&format!("{BASE}\n[shadow]\nnoise_window = \"6h\"\n"));
    assert_eq!(
        rules.shadow.noise_window,
        std::time::Duration::from_secs(6 * 3600)
    );
    assert_eq!(
        f.rules(BASE).shadow.noise_window,
        std::time::Duration::from_secs(24 * 3600),
        "a day by default"
    );
    let errors = f.errors(&format!("{BASE}\n[shadow]\nnoise_window = \"30s\"\n"));
    has(
        &errors,
        "gw.toml:14:16: ",
        "shadow.noise_window must be at least 1m",
    );
    let errors = f.errors(&format!("{BASE}\n[shadow]\nnoise_window = \"a while\"\n"));
    has(&errors, "gw.toml:14:16: ", "invalid duration \"a while\"");
}
