//! Config loading and the rule engine, end to end through `load_file` / `load_str`: error
//! reporting (`file:line:col`), tenant sources, the decision order, route matching and scale.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use switchyard::config::{ConfigErrors, load_file};
use switchyard::rules::{Reason, RequestView, RuleSet, Side};

#[path = "config/decide.rs"]
mod decide;
#[path = "config/errors.rs"]
mod errors;
#[path = "config/matching.rs"]
mod matching;
#[path = "config/scale.rs"]
mod scale;
#[path = "config/tenants.rs"]
mod tenants;

/// The top of most test configs: one header tenant source, two upstreams.
pub const BASE: &str = r#"[listen]
http = "127.0.0.1:8080"

[tenant]
sources = [{ header = "x-tenant-id" }]

[upstreams.legacy]
origins = ["http://127.0.0.1:8001"]

[upstreams.new]
origins = ["http://127.0.0.1:8002"]
"#;

/// A temporary directory holding a config and the files it names.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    /// Writes `gw.toml` and loads it.
    pub fn load(&self, config: &str) -> Result<RuleSet, ConfigErrors> {
        load_file(&self.write("gw.toml", config))
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("gw.toml")
    }

    /// Loads a config that must be valid.
    pub fn rules(&self, config: &str) -> RuleSet {
        match self.load(config) {
            Ok(rules) => rules,
            Err(e) => panic!("config should load:\n{e}\n---\n{config}"),
        }
    }

    /// Loads a config that must fail; its errors as `gw.toml:line:col: message` lines.
    pub fn errors(&self, config: &str) -> Vec<String> {
        match self.load(config) {
            Ok(_) => panic!("config should not load:\n{config}"),
            Err(e) => {
                let dir = format!("{}/", self.dir.path().display());
                e.0.iter()
                    .map(|x| x.to_string().replace(&dir, ""))
                    .collect()
            }
        }
    }
}

/// A decision with everything owned, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub route: Option<String>,
    pub tenant: Option<String>,
    pub side: Side,
    pub upstream: String,
    pub reason: Reason,
    pub shadow: Option<Side>,
    pub rejected: bool,
}

/// A request to decide on.
pub struct Req {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub peer: Option<std::net::IpAddr>,
    pub sample: u16,
}

impl Req {
    pub fn new(method: &str, uri: &str) -> Self {
        Req {
            method: method.parse().unwrap(),
            uri: uri.parse().unwrap(),
            headers: HeaderMap::new(),
            peer: None,
            sample: 0,
        }
    }

    pub fn get(uri: &str) -> Self {
        Self::new("GET", uri)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    pub fn tenant(self, tenant: &str) -> Self {
        self.header("x-tenant-id", tenant)
    }

    pub fn peer(mut self, ip: &str) -> Self {
        self.peer = Some(ip.parse().unwrap());
        self
    }

    pub fn sample(mut self, sample: u16) -> Self {
        self.sample = sample;
        self
    }

    pub fn decide_at(&self, rules: &RuleSet, now: SystemTime) -> Outcome {
        let view = RequestView {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            peer: self.peer,
            sample: self.sample,
        };
        let d = rules.decide(&view, now);
        Outcome {
            route: d.route.map(|r| r.name.clone()),
            tenant: d.tenant.as_deref().map(str::to_owned),
            side: d.side,
            upstream: d.upstream.to_owned(),
            reason: d.reason,
            shadow: d.shadow,
            rejected: d.reject.is_some(),
        }
    }

    pub fn decide(&self, rules: &RuleSet) -> Outcome {
        self.decide_at(rules, switchyard::clock::Clock::system().now())
    }
}

pub fn unix_now() -> u64 {
    switchyard::clock::Clock::system()
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

#[test]
fn rule_sets_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<RuleSet>();
}

#[test]
fn demo_config_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    let rules = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rules.routes.len(), 4);
    assert_eq!(rules.admin.tokens.len(), 2);
    assert!(rules.admin.debug_headers);
    assert_eq!(rules.files.len(), 2, "{:?}", rules.files);
    assert!(
        rules.store.url.starts_with("sqlite://") && rules.store.url.ends_with("config/demo.db")
    );
    let cards = rules.route("cards").unwrap();
    assert_eq!(cards.percent_bp, 2_500);
    let policy = cards.shadow.as_ref().unwrap();
    assert!(!policy.compare.config().ignore.is_empty());
    // Decisions a demo user will try.
    assert_eq!(
        Req::get("/api/cards/1").tenant("acme").decide(&rules).side,
        Side::New
    );
    assert_eq!(
        Req::get("/api/cards/1")
            .tenant("initech")
            .decide(&rules)
            .side,
        Side::Legacy
    );
    assert_eq!(
        Req::get("/api/invoices/9")
            .tenant("acme")
            .decide(&rules)
            .reason,
        Reason::StateLegacy
    );
    assert_eq!(
        Req::get("/api/users")
            .tenant("globex")
            .decide(&rules)
            .reason,
        Reason::Cohort
    );
    assert_eq!(
        Req::get("/api/search?q=x").decide(&rules).reason,
        Reason::StateNew
    );
    assert_eq!(
        Req::get("/api/users/1")
            .tenant("umbrella")
            .decide(&rules)
            .reason,
        Reason::TenantCutover
    );
    let by_host = Req::get("/api/cards/1")
        .header("host", "acme.localhost:8080")
        .decide(&rules);
    assert_eq!(
        (by_host.tenant.as_deref(), by_host.side),
        (Some("acme"), Side::New)
    );
    let by_path = Req::get("/t/globex/api/cards").decide(&rules);
    assert_eq!(
        (by_path.tenant.as_deref(), by_path.route),
        (Some("globex"), None)
    );
}

#[test]
fn example_config_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let rules = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!rules.routes.is_empty());
}

/// The shape SPEC.md shows (and black-box checks use): with an admin tokens file, shadow and
/// compare on the route, and a SQLite store given by absolute path.
#[test]
fn spec_shaped_config_loads() {
    let f = Fixture::new();
    let tokens = f.write(
        "tokens.toml",
        "[tokens.ops]\nsecret = \"contract-write-token-0123456789\"\nrole = \"write\"\n\n[tokens.viewer]\nsecret = \"contract-read-token-0123456789\"\nrole = \"read\"\n",
    );
    let config = format!(
        r#"# keep-this-comment
[listen]
http = "127.0.0.1:18080"

[admin]
listen = "127.0.0.1:19901"
tokens_file = "{tokens}"

[tenant]
sources = [
  {{ header = "x-tenant-id" }},
  {{ host = "{{tenant}}.app.example.com" }},
]
unknown = "default"

[upstreams.legacy]
origins = ["http://127.0.0.1:18001"]
connect_timeout = "1s"
timeout = "10s"

[upstreams.cards]
origins = ["http://127.0.0.1:18002"]
connect_timeout = "1s"
timeout = "10s"

[default]
upstream = "legacy"

[[routes]]
name = "cards"
path = "/api/cards/{{*rest}}"
methods = ["GET", "POST"]
legacy = "legacy"
new = "cards"
tenants = ["acme"]
exclude = ["initech"]
percent = 10
fallback = true
shadow = {{ percent = 100, methods = ["GET"] }}
compare = {{ ignore = ["/generated_at", "/served_by", "/shadow"], unordered = ["/tags"] }}

[store]
url = "sqlite://{dir}/switchyard.db"
"#,
        tokens = tokens.display(),
        dir = f.dir.path().display(),
    );
    let rules = f.rules(&config);
    assert_eq!(rules.admin.tokens.len(), 2);
    assert_eq!(
        rules.store.url,
        format!("sqlite://{}/switchyard.db", f.dir.path().display())
    );
    let cards = rules.route("cards").unwrap();
    let compare = cards.shadow.as_ref().unwrap().compare.config();
    assert_eq!(compare.ignore, ["/generated_at", "/served_by", "/shadow"]);
    assert_eq!(compare.unordered, ["/tags"]);
    assert_eq!(
        Req::get("/api/cards/1")
            .tenant("acme")
            .decide(&rules)
            .upstream,
        "cards"
    );
    assert_eq!(
        Req::get("/api/cards/1")
            .tenant("initech")
            .decide(&rules)
            .upstream,
        "legacy"
    );
    let host = Req::get("/api/cards/1")
        .header("host", "acme.app.example.com")
        .decide(&rules);
    assert_eq!(host.upstream, "cards");
    assert_eq!(Req::get("/other").decide(&rules).upstream, "legacy");
    let on_new = (0..400)
        .filter(|i| {
            Req::get("/api/cards/1")
                .tenant(&format!("t{i}"))
                .decide(&rules)
                .side
                == Side::New
        })
        .count();
    assert!((20..=64).contains(&on_new), "{on_new} of 400 at 10%");
}
