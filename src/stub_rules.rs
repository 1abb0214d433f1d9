// TEMPORARY stub matching the agreed rules/config API; replaced by the rules branch.
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Legacy,
    New,
}
impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Legacy => "legacy",
            Side::New => "new",
        }
    }
    pub fn other(self) -> Side {
        match self {
            Side::Legacy => Side::New,
            Side::New => Side::Legacy,
        }
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteState {
    Legacy,
    #[default]
    Rollout,
    New,
}
pub struct RuleSet {
    pub source: PathBuf,
    pub hash: String,
    pub files: Vec<PathBuf>,
    pub listen: Listen,
    pub admin: Admin,
    pub upstreams: BTreeMap<String, Arc<UpstreamSpec>>,
    pub default_upstream: String,
    pub routes: Vec<Route>,
    pub shadow: ShadowGlobal,
    pub store: StoreConfig,
}
pub struct Listen {
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub workers: Option<usize>,
    pub limits: Limits,
}
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub drain_timeout: Duration,
    pub max_request_body: Option<u64>,
}
pub struct Admin {
    pub listen: SocketAddr,
    pub tokens_file: Option<PathBuf>,
    pub debug_headers: bool,
    pub override_secret: Option<Vec<u8>>,
    pub max_body: usize,
}
#[derive(Debug, PartialEq)]
pub struct UpstreamSpec {
    pub name: String,
    pub origins: Vec<http::Uri>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub idle_timeout: Duration,
    pub max_idle_per_origin: usize,
    pub eject_after: u32,
    pub eject_for: Duration,
    pub ca_file: Option<PathBuf>,
    pub http2: bool,
}
pub struct Route {
    pub name: String,
    pub index: usize,
    pub salt: String,
    pub legacy: String,
    pub new: Option<String>,
    pub state: RouteState,
    pub percent_bp: u32,
    pub rewrite: Rewrite,
    pub fallback: bool,
    pub fallback_buffer: u64,
    pub shadow: Option<ShadowPolicy>,
    pub compare: Option<toml::Value>,
}
#[derive(Default)]
pub struct Rewrite {
    pub strip_prefix: Option<String>,
    pub add_prefix: Option<String>,
    pub host: Option<String>,
    pub location: bool,
    pub cookie_domain: Option<String>,
    pub cookie_path: bool,
}
pub struct ShadowPolicy {
    pub percent_bp: u32,
    pub methods: Vec<http::Method>,
    pub unsafe_methods: bool,
    pub tenants: Vec<String>,
    pub exclude: Vec<String>,
    pub rate_per_sec: Option<u32>,
    pub max_body: u64,
    pub timeout: Duration,
    pub strip_headers: Vec<String>,
    pub set_headers: Vec<(String, String)>,
    pub self_check_percent_bp: u32,
}
pub struct ShadowGlobal {
    pub enabled: bool,
    pub queue: usize,
    pub max_in_flight: usize,
    pub redact_key: Option<Vec<u8>>,
}
pub struct StoreConfig {
    pub url: String,
    pub retention: Duration,
    pub max_samples: usize,
}
pub struct RequestView<'a> {
    pub method: &'a http::Method,
    pub uri: &'a http::Uri,
    pub headers: &'a http::HeaderMap,
    pub peer: Option<IpAddr>,
    pub sample: u16,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    UnknownTenant,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    NoRoute,
    Forced,
    StateLegacy,
    StateNew,
    Excluded,
    TenantListed,
    TenantCutover,
    Cohort,
    Bucket,
    Default,
    NoNewUpstream,
    UnknownTenant,
}
impl Reason {
    pub fn as_str(self) -> &'static str {
        "stub"
    }
}
#[derive(Debug)]
pub struct Decision<'a> {
    pub route: Option<&'a Route>,
    pub tenant: Option<Cow<'a, str>>,
    pub side: Side,
    pub upstream: &'a str,
    pub reason: Reason,
    pub shadow: Option<Side>,
    pub reject: Option<Reject>,
    pub forced: bool,
}
impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}
impl RuleSet {
    pub fn decide<'a>(&'a self, req: &RequestView<'a>, _now: SystemTime) -> Decision<'a> {
        let tenant = req
            .headers
            .get("x-tenant-id")
            .and_then(|v| v.to_str().ok())
            .map(Cow::Borrowed);
        let route = self
            .routes
            .iter()
            .find(|r| req.uri.path().starts_with("/api/cards"));
        match route {
            None => Decision {
                route: None,
                tenant,
                side: Side::Legacy,
                upstream: &self.default_upstream,
                reason: Reason::NoRoute,
                shadow: None,
                reject: None,
                forced: false,
            },
            Some(r) => {
                let new = tenant.as_deref() == Some("acme");
                let side = if new { Side::New } else { Side::Legacy };
                Decision {
                    route: Some(r),
                    tenant,
                    side,
                    upstream: self.upstream_for(Some(r), side),
                    reason: Reason::Default,
                    shadow: None,
                    reject: None,
                    forced: false,
                }
            }
        }
    }
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }
    pub fn upstream_for<'a>(&'a self, route: Option<&'a Route>, side: Side) -> &'a str {
        match (route, side) {
            (Some(r), Side::New) => r.new.as_deref().unwrap_or(&r.legacy),
            (Some(r), Side::Legacy) => &r.legacy,
            (None, _) => &self.default_upstream,
        }
    }
}
pub fn explain(_rules: &RuleSet, d: &Decision, generation: u64) -> serde_json::Value {
    serde_json::json!({"route": d.route.map(|r| r.name.clone()), "side": d.side, "generation": generation})
}
pub mod config {
    use super::*;
    #[derive(Debug)]
    pub struct ConfigErrors(pub Vec<String>);
    impl std::fmt::Display for ConfigErrors {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0.join("\n"))
        }
    }
    impl std::error::Error for ConfigErrors {}
    pub fn load_file(path: &Path) -> Result<RuleSet, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors(vec![e.to_string()]))?;
        load_str(&text, path)
    }
    pub fn load_str(text: &str, path: &Path) -> Result<RuleSet, ConfigErrors> {
        let v: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigErrors(vec![format!("{}: {e}", path.display())]))?;
        let get =
            |k: &str, p: &str| -> Option<String> { v.get(k)?.get(p)?.as_str().map(String::from) };
        let mut upstreams = BTreeMap::new();
        if let Some(t) = v.get("upstreams").and_then(|t| t.as_table()) {
            for (name, u) in t {
                let origins = u
                    .get("origins")
                    .and_then(|o| o.as_array())
                    .map(|a| a.iter().filter_map(|x| x.as_str()?.parse().ok()).collect())
                    .unwrap_or_default();
                upstreams.insert(
                    name.clone(),
                    Arc::new(UpstreamSpec {
                        name: name.clone(),
                        origins,
                        connect_timeout: Duration::from_secs(1),
                        timeout: Duration::from_secs(10),
                        idle_timeout: Duration::from_secs(90),
                        max_idle_per_origin: 64,
                        eject_after: 5,
                        eject_for: Duration::from_secs(10),
                        ca_file: None,
                        http2: false,
                    }),
                );
            }
        }
        let tenants_new = text.contains("\"globex\"");
        let _ = tenants_new;
        Ok(RuleSet {
            source: path.to_path_buf(),
            hash: format!("{:x}", text.len()),
            files: vec![],
            listen: Listen {
                http: get("listen", "http").and_then(|s| s.parse().ok()),
                https: None,
                tls_cert: None,
                tls_key: None,
                workers: None,
                limits: Limits {
                    max_header_bytes: 65536,
                    max_headers: 100,
                    header_read_timeout: Duration::from_secs(10),
                    idle_timeout: Duration::from_secs(60),
                    body_timeout: Duration::from_secs(60),
                    drain_timeout: Duration::from_secs(30),
                    max_request_body: None,
                },
            },
            admin: Admin {
                listen: get("admin", "listen")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| "127.0.0.1:9901".parse().unwrap()),
                tokens_file: None,
                debug_headers: true,
                override_secret: None,
                max_body: 1 << 20,
            },
            upstreams,
            default_upstream: "legacy".into(),
            routes: vec![Route {
                name: "cards".into(),
                index: 0,
                salt: "cards".into(),
                legacy: "legacy".into(),
                new: Some("cards".into()),
                state: RouteState::Rollout,
                percent_bp: 1000,
                rewrite: Rewrite::default(),
                fallback: true,
                fallback_buffer: 65536,
                shadow: None,
                compare: None,
            }],
            shadow: ShadowGlobal {
                enabled: true,
                queue: 1024,
                max_in_flight: 64,
                redact_key: None,
            },
            store: StoreConfig {
                url: "sqlite::memory:".into(),
                retention: Duration::from_secs(86400),
                max_samples: 1000,
            },
        })
    }
}
pub mod override_token {
    use super::Side;
    pub fn mint(_secret: &[u8], side: Side, expires_unix: u64) -> String {
        format!("{}.{expires_unix}.x", side.as_str())
    }
}
