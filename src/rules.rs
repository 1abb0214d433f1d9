//! The rule set: an immutable, precompiled view of one config generation, and the pure
//! decision of which side serves a request.
//!
//! A `RuleSet` is built only by `config::load_file` / `config::load_str`, which validate
//! everything first; once built it never changes (the live module swaps whole rule sets).
//! `RuleSet::decide` (in `decide.rs`) is the hot path: no I/O, no locks, no clock other than
//! the `now` it is given, and allocation only where a tenant id has to be decoded (JWT claims,
//! upper-case host names).
//!
//! Submodules: `tenant` (tenant sources), `jwt` (JWT tenant source), `matcher` (route lookup),
//! `bucket` (sticky percentage buckets), `decide` (the decision and `explain`),
//! `override_token` (signed tester overrides).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};

use crate::compare::CompareRules;

mod bucket;
mod decide;
mod guard;
pub(crate) mod jwt;
pub(crate) mod matcher;
pub mod override_token;
pub(crate) mod tenant;

pub use bucket::bucket;
pub use decide::explain;
pub use guard::{GuardAction, GuardPolicy, Schedule};
pub use matcher::HostPattern;
pub use tenant::valid_tenant_id;

/// Header carrying a signed tester override (`override_token::mint`).
pub const FORCE_HEADER: HeaderName = HeaderName::from_static("x-switchyard-force");
/// Header marking a shadow copy; a request carrying it is never shadowed again (loop guard).
pub const SHADOW_HEADER: HeaderName = HeaderName::from_static("x-switchyard-shadow");

// === sides, states, reasons ===

/// Which side serves a request (ordered legacy first, as reports list them).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
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

    /// The side a shadow copy goes to.
    pub fn other(self) -> Side {
        match self {
            Side::Legacy => Side::New,
            Side::New => Side::Legacy,
        }
    }

    /// `"legacy"` or `"new"`, exactly.
    pub fn parse(text: &str) -> Option<Side> {
        match text {
            "legacy" => Some(Side::Legacy),
            "new" => Some(Side::New),
            _ => None,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Side {
    type Err = UnknownName;

    /// [`Side::parse`], with an error that says what is accepted.
    fn from_str(text: &str) -> Result<Side, UnknownName> {
        Side::parse(text).ok_or_else(|| UnknownName::new(text, "legacy or new"))
    }
}

/// A route's `state`: kill switch, rollout, or cut over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RouteState {
    Legacy,
    #[default]
    Rollout,
    New,
}

impl RouteState {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteState::Legacy => "legacy",
            RouteState::Rollout => "rollout",
            RouteState::New => "new",
        }
    }

    pub fn parse(text: &str) -> Option<RouteState> {
        match text {
            "legacy" => Some(RouteState::Legacy),
            "rollout" => Some(RouteState::Rollout),
            "new" => Some(RouteState::New),
            _ => None,
        }
    }
}

impl fmt::Display for RouteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RouteState {
    type Err = UnknownName;

    /// [`RouteState::parse`], with an error that says what is accepted.
    fn from_str(text: &str) -> Result<RouteState, UnknownName> {
        RouteState::parse(text).ok_or_else(|| UnknownName::new(text, "legacy, rollout or new"))
    }
}

/// A name that is not a [`Side`] or not a [`RouteState`]. Its text completes a sentence about
/// where the name came from: `--side` + ` must be legacy or new, not up`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be {expected}, not {given}")]
pub struct UnknownName {
    pub given: String,
    /// The accepted spellings, e.g. `legacy or new`.
    pub expected: &'static str,
}

impl UnknownName {
    fn new(given: &str, expected: &'static str) -> UnknownName {
        UnknownName {
            given: given.to_owned(),
            expected,
        }
    }
}

/// Why a decision went the way it did (the rule of SPEC "Decision for a request" that applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No route matched: the `default` upstream.
    NoRoute,
    /// A valid signed `x-switchyard-force` token.
    Forced,
    /// Route `state = "legacy"`.
    StateLegacy,
    /// Route `state = "new"`.
    StateNew,
    /// Tenant in the route's `exclude` list, or held tenant-wide (`[tenants.<id>] side = "legacy"`).
    Excluded,
    /// Tenant in the route's `tenants` list.
    TenantListed,
    /// Tenant-wide cutover (`[tenants.<id>] side = "new"`).
    TenantCutover,
    /// Tenant matches one of the route's `cohorts`.
    Cohort,
    /// Sticky bucket below the route's percent.
    Bucket,
    /// Nothing moved this request: legacy.
    Default,
    /// The route has no `new` upstream.
    NoNewUpstream,
    /// `unknown = "reject"` and no tenant was found.
    UnknownTenant,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoRoute => "no_route",
            Reason::Forced => "forced",
            Reason::StateLegacy => "state_legacy",
            Reason::StateNew => "state_new",
            Reason::Excluded => "excluded",
            Reason::TenantListed => "tenant_listed",
            Reason::TenantCutover => "tenant_cutover",
            Reason::Cohort => "cohort",
            Reason::Bucket => "bucket",
            Reason::Default => "default",
            Reason::NoNewUpstream => "no_new_upstream",
            Reason::UnknownTenant => "unknown_tenant",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request the gateway must answer itself instead of forwarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reject {
    /// `unknown = "reject"` and no tenant source found a tenant: 400.
    UnknownTenant,
}

impl Reject {
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::UnknownTenant => "unknown_tenant",
        }
    }
}

/// What a sticky bucket is keyed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StickyKey {
    Tenant,
    Header(HeaderName),
    Cookie(String),
}

impl StickyKey {
    /// `tenant`, `header:<name>` or `cookie:<name>` (the config's `sticky`, as [`Display`]
    /// writes it back); `None` for anything else.
    ///
    /// [`Display`]: fmt::Display
    pub fn parse(text: &str) -> Option<StickyKey> {
        let text = text.trim();
        if text == "tenant" {
            Some(StickyKey::Tenant)
        } else if let Some(h) = text.strip_prefix("header:") {
            HeaderName::from_bytes(h.trim().as_bytes())
                .ok()
                .map(StickyKey::Header)
        } else if let Some(c) = text.strip_prefix("cookie:") {
            let c = c.trim();
            (!c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b'=')))
            .then(|| StickyKey::Cookie(c.to_owned()))
        } else {
            None
        }
    }
}

impl fmt::Display for StickyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StickyKey::Tenant => f.write_str("tenant"),
            StickyKey::Header(name) => write!(f, "header:{name}"),
            StickyKey::Cookie(name) => write!(f, "cookie:{name}"),
        }
    }
}

/// As its text: `"tenant"`, `"header:x-user"`, `"cookie:sid"`.
impl serde::Serialize for StickyKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for StickyKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<StickyKey, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        StickyKey::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "sticky must be \"tenant\", \"header:<name>\" or \"cookie:<name>\", not {text:?}"
            ))
        })
    }
}

// === the rule set ===

/// One validated, precompiled config generation.
pub struct RuleSet {
    /// The config file.
    pub source: PathBuf,
    /// sha256 hex over the config text and every referenced file's content.
    pub hash: String,
    /// Every file the config names (tenant directory, JWKS, tokens, secrets, TLS cert/key, CA
    /// files): the reloader watches them.
    pub files: Vec<PathBuf>,
    pub listen: Listen,
    pub admin: Admin,
    pub upstreams: BTreeMap<String, Arc<UpstreamSpec>>,
    pub default_upstream: String,
    /// In file order; `Route::index` is the position here.
    pub routes: Vec<Route>,
    pub shadow: ShadowGlobal,
    pub store: StoreConfig,
    pub telemetry: Telemetry,
    pub(crate) tenant: tenant::TenantResolver,
    pub(crate) directory: tenant::Directory,
    pub(crate) matcher: matcher::Matcher,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("source", &self.source)
            .field("hash", &self.hash)
            .field("upstreams", &self.upstreams.keys().collect::<Vec<_>>())
            .field(
                "routes",
                &self.routes.iter().map(|r| &r.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Listen {
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Runtime worker threads; `None`: the machine's cores.
    pub workers: Option<usize>,
    pub limits: Limits,
}

/// Downstream (client) limits, keys directly under `[listen]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Default 64 KiB.
    pub max_header_bytes: usize,
    /// Default 100.
    pub max_headers: usize,
    /// Client connections open at once on the data listeners; default 10 000.
    pub max_connections: usize,
    /// Default 10 s.
    pub header_read_timeout: Duration,
    /// Default 60 s.
    pub idle_timeout: Duration,
    /// A stalled request body; default 60 s.
    pub body_timeout: Duration,
    /// Graceful shutdown deadline; default 30 s.
    pub drain_timeout: Duration,
    /// `None`: unlimited, streamed.
    pub max_request_body: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            max_request_body: None,
        }
    }
}

#[derive(Clone, PartialEq)]
pub struct Admin {
    /// Default 127.0.0.1:9901.
    pub listen: SocketAddr,
    pub tokens_file: Option<PathBuf>,
    /// The tokens of `tokens_file`, validated at load.
    pub tokens: Vec<AdminToken>,
    pub debug_headers: bool,
    /// Content of `override_secret_file`, surrounding whitespace trimmed.
    pub override_secret: Option<Vec<u8>>,
    /// Largest admin request body; default 1 MiB.
    pub max_body: usize,
}

// Secrets stay out of logs and panics.
impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("listen", &self.listen)
            .field("tokens_file", &self.tokens_file)
            .field("tokens", &self.tokens)
            .field("debug_headers", &self.debug_headers)
            .field(
                "override_secret",
                &self.override_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("max_body", &self.max_body)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    Read,
    Write,
}

/// One admin API token. Only the sha256 of its secret is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    pub name: String,
    pub role: AdminRole,
    pub secret_sha256: [u8; 32],
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A named pool of origins.
#[derive(Debug, PartialEq)]
pub struct UpstreamSpec {
    pub name: String,
    /// `http://` or `https://` URLs with a host and no path.
    pub origins: Vec<http::Uri>,
    /// Default 1 s.
    pub connect_timeout: Duration,
    /// Until response headers; default 30 s.
    pub timeout: Duration,
    /// Pooled connection idle time; default 90 s.
    pub idle_timeout: Duration,
    /// Default 64.
    pub max_idle_per_origin: usize,
    /// Consecutive connect failures before an origin is ejected; default 5.
    pub eject_after: u32,
    /// Default 10 s.
    pub eject_for: Duration,
    pub ca_file: Option<PathBuf>,
    /// Talk HTTP/2 (h2c or ALPN) to this upstream; default false.
    pub http2: bool,
}

/// A named slice of the API.
pub struct Route {
    pub name: String,
    /// Position in `RuleSet::routes` (file order).
    pub index: usize,
    /// Bucket salt; defaults to the route name.
    pub salt: String,
    pub legacy: String,
    pub new: Option<String>,
    pub state: RouteState,
    /// Basis points, 0..=10000.
    pub percent_bp: u32,
    pub rewrite: Rewrite,
    pub fallback: bool,
    /// Max body bytes buffered so a non-idempotent request can be retried; default 64 KiB.
    pub fallback_buffer: u64,
    pub shadow: Option<ShadowPolicy>,
    /// Path patterns as written.
    pub paths: Vec<String>,
    /// `None`: any method.
    pub methods: Option<Vec<Method>>,
    pub host: Option<HostPattern>,
    /// Header names lower-case; values matched exactly.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub tenants: BTreeSet<String>,
    pub exclude: BTreeSet<String>,
    /// Each table matches a tenant whose directory attributes include all of its pairs.
    pub cohorts: Vec<BTreeMap<String, String>>,
    pub sticky: StickyKey,
    /// The automatic guard (`guard` table).
    pub guard: Option<GuardPolicy>,
    /// The progressive schedule (`rollout` table).
    pub schedule: Option<Schedule>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .field("index", &self.index)
            .field("paths", &self.paths)
            .field("state", &self.state)
            .field("percent_bp", &self.percent_bp)
            .finish_non_exhaustive()
    }
}

/// Changes applied to requests and responses on the new side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub strip_prefix: Option<String>,
    pub add_prefix: Option<String>,
    /// Replace Host on the new side.
    pub host: Option<String>,
    /// Rewrite Location headers pointing at the upstream back to the client's host; default true.
    pub location: bool,
    pub cookie_domain: Option<String>,
    pub cookie_path: bool,
}

impl Default for Rewrite {
    fn default() -> Self {
        Rewrite {
            strip_prefix: None,
            add_prefix: None,
            host: None,
            location: true,
            cookie_domain: None,
            cookie_path: false,
        }
    }
}

/// A route's `shadow` table.
#[derive(Clone, Debug)]
pub struct ShadowPolicy {
    pub percent_bp: u32,
    /// `None`: sampled per request (`RequestView::sample`).
    pub sticky: Option<StickyKey>,
    /// Default GET, HEAD, OPTIONS.
    pub methods: Vec<Method>,
    pub unsafe_methods: bool,
    /// Empty: every tenant.
    pub tenants: Vec<String>,
    pub exclude: Vec<String>,
    pub rate_per_sec: Option<u32>,
    /// Default 1 MiB.
    pub max_body: u64,
    /// Default 5 s.
    pub timeout: Duration,
    /// Removed from the shadow copy; default authorization, cookie.
    pub strip_headers: Vec<String>,
    /// Set on the shadow copy (replacement credentials).
    pub set_headers: Vec<(String, String)>,
    /// Share of shadowed idempotent requests whose primary side is called again to learn noise;
    /// default 10 %.
    pub self_check_percent_bp: u32,
    /// Parity (basis points of 100%) the shadow report wants before it says `ready`;
    /// default 99 %.
    pub target_parity_bp: u32,
    /// `"shadow:" + route salt`, so shadow sampling is independent of the rollout bucket.
    pub salt: String,
    /// The route's `compare` table, compiled (the defaults when the route has none).
    pub compare: Arc<CompareRules>,
}

/// The top-level `[shadow]` table.
#[derive(Clone, PartialEq)]
pub struct ShadowGlobal {
    /// Kill switch for every route's shadow; default true.
    pub enabled: bool,
    /// Default 1024.
    pub queue: usize,
    /// Default 64.
    pub max_in_flight: usize,
    /// Content of `redact_key_file`: key for digests that replace redacted values.
    pub redact_key: Option<Vec<u8>>,
    /// Span of the evidence learned noise is decided on; default 24 h.
    pub noise_window: Duration,
}

impl fmt::Debug for ShadowGlobal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShadowGlobal")
            .field("enabled", &self.enabled)
            .field("queue", &self.queue)
            .field("max_in_flight", &self.max_in_flight)
            .field("noise_window", &self.noise_window)
            .field(
                "redact_key",
                &self.redact_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The `[telemetry]` table.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Telemetry {
    /// Where the JSON access log goes; `None`: no access log (the default).
    pub access_log: Option<Arc<AccessLogTarget>>,
    /// Write tenant names into the access log; default false (they may identify customers).
    pub access_log_tenants: bool,
    /// OpenTelemetry traces; `None`: off (the default).
    pub traces: Option<Arc<crate::trace::TraceConfig>>,
}

/// Where access log lines are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessLogTarget {
    Stdout,
    Stderr,
    /// Appended to; relative paths are relative to the config file's directory.
    File(PathBuf),
}

#[derive(Clone, Debug, PartialEq)]
pub struct StoreConfig {
    /// Default `sqlite://switchyard.db`; SQLite paths resolved against the config's directory.
    pub url: String,
    /// Default 7 days.
    pub retention: Duration,
    /// Default 100 000.
    pub max_samples: usize,
}

// === a request and its decision ===

/// What `decide` needs to know about a request.
pub struct RequestView<'a> {
    pub method: &'a Method,
    pub uri: &'a http::Uri,
    pub headers: &'a http::HeaderMap,
    pub peer: Option<IpAddr>,
    /// 0..10000, random per request, for per-request shadow sampling; filled by the caller.
    pub sample: u16,
}

/// The decision for a request. `'r` borrows the rule set, `'t` the request head the tenant was
/// read from; [`Decision::into_owned`] frees it from the request so the head can move on.
#[derive(Debug)]
pub struct Decision<'r, 't> {
    pub route: Option<&'r Route>,
    pub tenant: Option<Cow<'t, str>>,
    pub side: Side,
    pub upstream: &'r str,
    pub reason: Reason,
    /// The side to shadow to (the other side), when the route's policy selects this request.
    pub shadow: Option<Side>,
    /// `Some` when the gateway must answer itself (400 for an unknown tenant).
    pub reject: Option<Reject>,
    pub forced: bool,
}

impl<'r> Decision<'r, '_> {
    /// The same decision, owning its tenant (no copy when it already does).
    pub fn into_owned(self) -> Decision<'r, 'static> {
        Decision {
            route: self.route,
            tenant: self.tenant.map(|t| Cow::Owned(t.into_owned())),
            side: self.side,
            upstream: self.upstream,
            reason: self.reason,
            shadow: self.shadow,
            reject: self.reject,
            forced: self.forced,
        }
    }
}

impl RuleSet {
    /// The route with this name.
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// The upstream serving `side` of `route`; the default upstream when there is no route, and
    /// the legacy upstream for the new side of a route without one.
    pub fn upstream_for<'a>(&'a self, route: Option<&'a Route>, side: Side) -> &'a str {
        match (route, side) {
            (None, _) => &self.default_upstream,
            (Some(r), Side::Legacy) => &r.legacy,
            (Some(r), Side::New) => r.new.as_deref().unwrap_or(&r.legacy),
        }
    }

    /// Tenant-wide side from `[tenants.<id>] side`.
    pub fn tenant_side(&self, tenant: &str) -> Option<Side> {
        self.directory.get(tenant).and_then(|t| t.side)
    }

    /// Directory attributes of a tenant (`region`, `plan`, …).
    pub fn tenant_attributes(&self, tenant: &str) -> Option<&BTreeMap<String, String>> {
        self.directory.get(tenant).map(|t| &t.attrs)
    }

    /// Every tenant the config knows: directory, `[tenants.<id>]` and route lists. Sorted.
    pub fn known_tenants(&self) -> Vec<String> {
        let mut all: BTreeSet<&str> = self.directory.ids().collect();
        for route in &self.routes {
            all.extend(route.tenants.iter().map(String::as_str));
            all.extend(route.exclude.iter().map(String::as_str));
        }
        all.into_iter().map(str::to_owned).collect()
    }

    /// Known tenants (see `known_tenants`) that `route` serves from the new side: listed,
    /// cut over, cohort members and, with a tenant-keyed sticky bucket, bucketed ones. Sorted.
    /// Excluded and held tenants are left out, and so is everything on a route in state legacy
    /// or without a new upstream.
    pub fn tenants_on_new(&self, route: &Route) -> Vec<String> {
        self.known_tenants()
            .into_iter()
            .filter(|t| decide::tenant_rule(self, route, t).0 == Side::New)
            .collect()
    }
}
