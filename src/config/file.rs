//! The config file as written: raw serde structs, no meaning attached yet.
//!
//! Every table denies unknown keys, so a typo is an error with the key's position instead of a
//! silently ignored setting. Values whose meaning is checked later (`compile.rs`) keep their
//! position with `toml::Spanned`, so a semantic error can point at the offending value.
//! Integers are read as `i64` and range-checked in `compile`, for the same reason: a negative
//! `workers` should be one collected error, not the end of the whole section.
//!
//! Sections are deserialized one by one (see `config::parse_sections`), so an unknown key in
//! `[listen]` does not hide an undefined upstream in a route.
//!
//! Every table also derives `JsonSchema`: the field doc comments below are the descriptions
//! users read in `docs/config.md` and in their editors (`switchyard config schema`), so they
//! talk about the config, not about the code. A field kept as `Spanned` or `RawSize` names
//! the schema of what a user writes with `#[schemars(with = …)]` (see `config::schema`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::schema::{
    Address, Cidr, Duration, FileName, GuardActionName, Origin, Percent, RouteStateName, SideName,
    Sticky, StoreUrl, TenantId, UnknownPolicyName,
};
use super::units::RawSize;

pub type Text = Spanned<String>;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    /// IP:port for plain HTTP (HTTP/1.1 and h2c). At least one of `http` and `https` is needed.
    #[schemars(with = "Option<Address>")]
    pub http: Option<Text>,
    /// IP:port for TLS (HTTP/1.1 and h2 via ALPN); needs `tls_cert` and `tls_key`.
    #[schemars(with = "Option<Address>")]
    pub https: Option<Text>,
    /// PEM certificate chain for `https`; reloaded when the file changes.
    #[schemars(with = "Option<FileName>")]
    pub tls_cert: Option<Text>,
    /// PEM private key for `https`; reloaded when the file changes.
    #[schemars(with = "Option<FileName>")]
    pub tls_key: Option<Text>,
    /// Runtime worker threads, 1-1024. Default: the machine's cores. Read at start only.
    #[schemars(with = "Option<i64>", range(min = 1, max = 1024))]
    pub workers: Option<Spanned<i64>>,
    /// Largest request header block (at least 1KiB); larger ones get 431.
    #[schemars(with = "Option<RawSize>", extend("default" = "64KiB"))]
    pub max_header_bytes: Option<Spanned<RawSize>>,
    /// Most request headers, 1-10000; more get 431.
    #[schemars(with = "Option<i64>", range(min = 1, max = 10000), extend("default" = 100))]
    pub max_headers: Option<Spanned<i64>>,
    /// Most client connections open at once on the data listeners (the admin listener is not
    /// counted), 1-1000000. At the limit new connections wait in the listen backlog until one
    /// closes, and the kernel refuses them once the backlog is full.
    #[schemars(with = "Option<i64>", range(min = 1, max = 1000000), extend("default" = 10000))]
    pub max_connections: Option<Spanned<i64>>,
    /// A client slower than this to send its request headers gets 408 and is disconnected.
    #[schemars(with = "Option<Duration>", extend("default" = "10s"))]
    pub header_read_timeout: Option<Text>,
    /// Keep-alive connections idle this long are closed.
    #[schemars(with = "Option<Duration>", extend("default" = "60s"))]
    pub idle_timeout: Option<Text>,
    /// A request body that stalls this long is abandoned (408).
    #[schemars(with = "Option<Duration>", extend("default" = "60s"))]
    pub body_timeout: Option<Text>,
    /// On shutdown, in-flight requests get this long to finish.
    #[schemars(with = "Option<Duration>", extend("default" = "30s"))]
    pub drain_timeout: Option<Text>,
    /// Largest request body; larger ones get 413. Default: unlimited, streamed.
    #[schemars(with = "Option<RawSize>")]
    pub max_request_body: Option<Spanned<RawSize>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// IP:port of the admin listener (API, `/metrics`, `/readyz`, dashboard). Keep it private.
    #[schemars(with = "Option<Address>", extend("default" = "127.0.0.1:9901"))]
    pub listen: Option<Text>,
    /// The admin tokens file: `[tokens.<name>] role = "read" | "write"` with
    /// `secret_sha256 = "<hex>"` (or `secret = "…"`, at least 8 characters, for local use).
    /// Without it every `/admin/*` call answers 401. Reloaded with the config.
    #[schemars(with = "Option<FileName>")]
    pub tokens_file: Option<Text>,
    /// Add `x-switchyard-route`, `x-switchyard-side` and `x-switchyard-generation` (and
    /// `x-switchyard-fallback`) to every response.
    #[schemars(extend("default" = false))]
    pub debug_headers: Option<bool>,
    /// A secret file that enables signed `x-switchyard-force` tester overrides (tokens
    /// `<side>.<expiry unix>.<base64url hmac-sha256>`, minted by `switchyard override-token`).
    /// Without it the header is stripped and ignored.
    #[schemars(with = "Option<FileName>")]
    pub override_secret_file: Option<Text>,
    /// Largest admin request body; larger ones get 413.
    #[schemars(with = "Option<RawSize>", extend("default" = "1MiB"))]
    pub max_body: Option<Spanned<RawSize>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTenant {
    /// Where the tenant id is found, tried in order; the first source that yields a valid id
    /// (1-128 letters, digits, '.', '_' or '-') wins. A source that finds nothing usable yields
    /// nothing, never a guess. Default: none (no request has a tenant).
    #[schemars(with = "Option<Vec<RawSource>>")]
    pub sources: Option<Vec<Spanned<RawSource>>>,
    /// No tenant found: `"default"` carries on without one, `"reject"` answers 400 on any
    /// matched route.
    #[schemars(with = "Option<UnknownPolicyName>", extend("default" = "default"))]
    pub unknown: Option<Text>,
    /// The tenant directory file: `[tenants.<id>]` tables of string attributes (`region`,
    /// `plan`, …) that route `cohorts` match.
    #[schemars(with = "Option<FileName>")]
    pub directory: Option<Text>,
}

/// One tenant source. Which kind it is follows from the keys present (checked in `compile`):
/// `header`, `host`, `path`, `cookie`, or `jwt_claim` (with `header` or `cookie` saying where the
/// token is).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    description = "One tenant source: exactly one of `header`, `host`, `path`, `cookie`, or a `jwt_claim` (read from the token in `header`, default authorization, or `cookie`)."
)]
pub struct RawSource {
    /// A header holding the tenant id, or, with `jwt_claim`, the header holding the token (a
    /// `Bearer ` prefix is stripped).
    #[schemars(with = "Option<String>")]
    pub header: Option<Text>,
    /// Only for a `header` source: the header is honoured only from peers inside these CIDRs
    /// (a load balancer that sets it). Without it, whatever the client sends is trusted.
    #[schemars(with = "Option<Vec<Cidr>>")]
    pub trusted_proxies: Option<Vec<Text>>,
    /// A host pattern with one `{tenant}` DNS label, such as `"{tenant}.app.example.com"`;
    /// case-insensitive, port ignored.
    #[schemars(with = "Option<String>")]
    pub host: Option<Text>,
    /// A path prefix with `{tenant}` as one whole segment, such as `"/t/{tenant}/"`.
    #[schemars(with = "Option<String>")]
    pub path: Option<Text>,
    /// A cookie holding the tenant id, or, with `jwt_claim`, the cookie holding the token.
    #[schemars(with = "Option<String>")]
    pub cookie: Option<Text>,
    /// The claim of a verified JWT that holds the tenant id. The token must verify with
    /// `jwks` or `hs256_secret_file` (the key pins the algorithm), `exp` is required, `exp`
    /// and `nbf` are checked with 60 s leeway; an invalid token yields no tenant.
    #[schemars(with = "Option<String>")]
    pub jwt_claim: Option<Text>,
    /// A JWKS file with the RS256 / ES256 keys that sign the tokens (chosen by `kid`).
    #[schemars(with = "Option<FileName>")]
    pub jwks: Option<Text>,
    /// A file holding the HS256 secret that signs the tokens.
    #[schemars(with = "Option<FileName>")]
    pub hs256_secret_file: Option<Text>,
    /// When set, the token's `iss` must equal it.
    #[schemars(with = "Option<String>")]
    pub issuer: Option<Text>,
    /// When set, the token's `aud` must contain it.
    #[schemars(with = "Option<String>")]
    pub audience: Option<Text>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// Origins of the pool (`http://` or `https://`, a host and port, no path), balanced
    /// across. Required, not empty.
    #[schemars(with = "Option<Vec<Origin>>")]
    pub origins: Option<Spanned<Vec<Text>>>,
    /// Time allowed to open a connection to an origin.
    #[schemars(with = "Option<Duration>", extend("default" = "1s"))]
    pub connect_timeout: Option<Text>,
    /// Time allowed until the response headers arrive (504 beyond).
    #[schemars(with = "Option<Duration>", extend("default" = "30s"))]
    pub timeout: Option<Text>,
    /// Pooled connections idle this long are closed.
    #[schemars(with = "Option<Duration>", extend("default" = "90s"))]
    pub idle_timeout: Option<Text>,
    /// Idle connections kept per origin, 0-100000.
    #[schemars(with = "Option<i64>", range(min = 0, max = 100000), extend("default" = 64))]
    pub max_idle_per_origin: Option<Spanned<i64>>,
    /// Consecutive connect failures before an origin is ejected from the pool.
    #[schemars(with = "Option<i64>", range(min = 1, max = 1000000), extend("default" = 5))]
    pub eject_after: Option<Spanned<i64>>,
    /// How long an ejected origin rests before it is tried again.
    #[schemars(with = "Option<Duration>", extend("default" = "10s"))]
    pub eject_for: Option<Text>,
    /// An extra CA certificate (PEM) trusted for `https` origins, besides the system roots.
    #[schemars(with = "Option<FileName>")]
    pub ca_file: Option<Text>,
    /// Talk HTTP/2 to this upstream (h2c, or ALPN over TLS).
    #[schemars(extend("default" = false))]
    pub http2: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefault {
    /// The upstream that serves requests no route matches, and a route's `legacy` when it
    /// names none. Default: the upstream called `legacy`, or the only upstream.
    #[schemars(with = "Option<String>")]
    pub upstream: Option<Text>,
}

/// `[tenants.<id>]` in the main config: tenant-wide settings.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(description = "Settings of one tenant on every route.")]
pub struct RawTenantWide {
    /// `"new"`: the tenant is cut over on every route that has a `new` upstream (checked like
    /// a route's `tenants`); `"legacy"`: held on legacy everywhere (checked like `exclude`).
    #[schemars(with = "Option<SideName>")]
    pub side: Option<Text>,
}

/// A route's `path`: one pattern or a list of them. Written by hand instead of
/// `#[serde(untagged)]` because untagged enums buffer the value and lose toml's spans.
#[derive(Debug)]
pub enum OneOrMany {
    /// A single pattern; its position is the enclosing `Spanned`'s.
    One(String),
    Many(Vec<Text>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PathVisitor;
        impl<'de> serde::de::Visitor<'de> for PathVisitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a path pattern or a list of path patterns")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Text>()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
        }
        deserializer.deserialize_any(PathVisitor)
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// The route's name: 1-64 letters, digits, '.', '_' or '-'; unique. Used in metrics
    /// labels, admin calls and the CLI. Required.
    #[schemars(with = "Option<String>")]
    pub name: Option<Text>,
    /// One path pattern or a list: `{id}` is one segment, `{*rest}` one or more (so
    /// `"/api/cards/{*rest}"` alone does not match `/api/cards`). Required.
    #[schemars(with = "Option<OneOrMany>")]
    pub path: Option<Spanned<OneOrMany>>,
    /// The sticky-bucket salt. Default: the route name. Routes sharing a salt move the same
    /// keys to new together.
    #[schemars(with = "Option<String>")]
    pub salt: Option<Text>,
    /// Methods the route matches (case-insensitive). Default: every method.
    #[schemars(with = "Option<Vec<String>>")]
    pub methods: Option<Spanned<Vec<Text>>>,
    /// The host the route matches: exact, or `*.suffix`. Default: any host.
    #[schemars(with = "Option<String>")]
    pub host: Option<Text>,
    /// Headers that must be present with exactly these values.
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub headers: Option<BTreeMap<Text, Text>>,
    /// The legacy upstream. Default: the `[default]` upstream.
    #[schemars(with = "Option<String>")]
    pub legacy: Option<Text>,
    /// The new upstream. Without it the route always serves from legacy.
    #[schemars(with = "Option<String>")]
    pub new: Option<Text>,
    /// Request and response rewrites, applied on the new side only.
    pub rewrite: Option<RawRewrite>,
    /// Tenants served by new (unless `state` or `exclude` say otherwise).
    #[schemars(with = "Option<Vec<TenantId>>")]
    pub tenants: Option<Vec<Text>>,
    /// Tenants kept on legacy, whatever else says (except `state = "new"` and a tester
    /// override).
    #[schemars(with = "Option<Vec<TenantId>>")]
    pub exclude: Option<Vec<Text>>,
    /// Tenant-directory attribute sets; a tenant matching every pair of one set is served by
    /// new. Needs `[tenant] directory`.
    #[schemars(with = "Option<Vec<BTreeMap<String, String>>>")]
    pub cohorts: Option<Vec<Spanned<BTreeMap<String, Text>>>>,
    /// Share of sticky keys served by new, 0-100 with 0.01 resolution; raising it never moves
    /// a key back to legacy.
    #[schemars(with = "Option<Percent>", extend("default" = 0))]
    pub percent: Option<Spanned<f64>>,
    /// `"legacy"` (kill switch: all legacy), `"rollout"` (tenants, cohorts and percent decide)
    /// or `"new"` (cut over: all new).
    #[schemars(with = "Option<RouteStateName>", extend("default" = "rollout"))]
    pub state: Option<Text>,
    /// The sticky-bucket key: `"tenant"`, `"header:<name>"` or `"cookie:<name>"`. A request
    /// without the key is not bucketed (legacy).
    #[schemars(with = "Option<Sticky>", extend("default" = "tenant"))]
    pub sticky: Option<Text>,
    /// Retry once on legacy when new fails to connect or answers 5xx, for idempotent requests
    /// and for bodies buffered under `fallback_buffer`.
    #[schemars(extend("default" = false))]
    pub fallback: Option<bool>,
    /// Largest request body buffered so a non-idempotent request can be retried on legacy.
    #[schemars(with = "Option<RawSize>", extend("default" = "64KiB"))]
    pub fallback_buffer: Option<Spanned<RawSize>>,
    /// Send a copy of selected requests to the other side and compare the answers. Needs both
    /// `legacy` and `new` upstreams.
    #[schemars(with = "Option<RawShadow>")]
    pub shadow: Option<Spanned<RawShadow>>,
    /// How the shadow comparison treats differences. Needs `shadow`.
    #[schemars(with = "Option<crate::compare::CompareConfig>")]
    pub compare: Option<Spanned<RawCompare>>,
    /// Automatic guard: watches the new side over a sliding window and trips the route back
    /// (or holds its schedule) when a threshold is crossed. Needs a `new` upstream. See the
    /// README, "Guarded rollouts".
    #[schemars(with = "Option<RawGuard>")]
    pub guard: Option<Spanned<RawGuard>>,
    /// Progressive schedule: raises `percent` one step after each bake period while the guard
    /// is healthy and the shadow verdict is not `not_ready`. Needs a `new` upstream.
    #[schemars(with = "Option<RawSchedule>")]
    pub rollout: Option<Spanned<RawSchedule>>,
}

/// A route's `guard` table. Rates are fractions (0.01 = 1 %); at least one `max_*` is needed.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGuard {
    /// Highest share of the new side's requests that may fail (5xx, or an upstream failure
    /// retried on legacy) over the window, 0-1.
    #[schemars(with = "Option<f64>", range(min = 0, max = 1))]
    pub max_error_rate: Option<Spanned<f64>>,
    /// Highest ratio of the new side's mean time to the response head over legacy's on the
    /// same route, over the window (2.0: twice as slow). At least 1.
    #[schemars(with = "Option<f64>", range(min = 1))]
    pub max_latency_ratio: Option<Spanned<f64>>,
    /// Highest share of shadow comparisons with real differences (learned noise and ignored
    /// paths excluded, as the report counts them) over the window, 0-1. Needs `shadow`.
    #[schemars(with = "Option<f64>", range(min = 0, max = 1))]
    pub max_mismatch_rate: Option<Spanned<f64>>,
    /// The sliding window each rate is measured over.
    #[schemars(with = "Option<Duration>", extend("default" = "5m"))]
    pub window: Option<Text>,
    /// Requests (or comparisons, for the mismatch rate) a window needs before that figure is
    /// judged; below it the figure neither trips the guard nor holds the schedule.
    #[schemars(with = "Option<i64>", range(min = 1, max = 1000000000), extend("default" = 200))]
    pub min_samples: Option<Spanned<i64>>,
    /// What a trip does: `"legacy"` sets the route's `state = "legacy"`; `"pause"` only
    /// stops its schedule from advancing.
    #[schemars(with = "Option<GuardActionName>", extend("default" = "legacy"))]
    pub action: Option<Text>,
    /// Written by the gateway when the guard trips; `switchyard guard rearm ROUTE` clears it.
    /// A tripped guard judges nothing until it is re-armed.
    #[schemars(extend("default" = false))]
    pub tripped: Option<bool>,
}

/// A route's `rollout` table: the schedule of percentages.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// Percentages the route moves through, strictly increasing, each above 0 and at most
    /// 100. Required.
    #[schemars(with = "Option<Vec<Percent>>")]
    pub steps: Option<Spanned<Vec<Spanned<f64>>>>,
    /// Time spent at each step before the next one.
    #[schemars(with = "Option<Duration>", extend("default" = "30m"))]
    pub bake: Option<Text>,
    /// Written by `switchyard rollout ROUTE --pause | --abort`; `--resume` clears it. A
    /// paused schedule does not advance.
    #[schemars(extend("default" = false))]
    pub paused: Option<bool>,
}

/// A route's `compare` table (how shadow answers are compared); compiled into
/// `compare::CompareRules` with every entry's position kept for error messages.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompare {
    pub ignore: Option<Vec<Text>>,
    pub unordered: Option<Vec<Text>>,
    pub keyed: Option<BTreeMap<Text, Text>>,
    pub redact: Option<Vec<Text>>,
    pub subset: Option<bool>,
    pub tolerance: Option<Spanned<f64>>,
    pub headers: Option<Vec<Text>>,
    pub status: Option<Text>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRewrite {
    /// A path prefix removed before forwarding, such as `"/api"`.
    #[schemars(with = "Option<String>")]
    pub strip_prefix: Option<Text>,
    /// A path prefix added before forwarding (after `strip_prefix`), such as `"/v2"`.
    #[schemars(with = "Option<String>")]
    pub add_prefix: Option<Text>,
    /// The `Host` sent upstream, `host[:port]`. Default: the client's.
    #[schemars(with = "Option<String>")]
    pub host: Option<Text>,
    /// Rewrite `Location` headers that point at the upstream back to the client's host.
    #[schemars(extend("default" = true))]
    pub location: Option<bool>,
    /// Rewrite the `Domain` attribute of `Set-Cookie` to this domain.
    #[schemars(with = "Option<String>")]
    pub cookie_domain: Option<Text>,
    /// Undo the path rewrite in the `Path` attribute of `Set-Cookie`.
    #[schemars(extend("default" = false))]
    pub cookie_path: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawShadow {
    /// Share of eligible requests shadowed, 0-100 with 0.01 resolution.
    #[schemars(with = "Option<Percent>", extend("default" = 100))]
    pub percent: Option<Spanned<f64>>,
    /// Sample by a sticky key (salted `"shadow:<salt>"`) instead of per request:
    /// `"tenant"`, `"header:<name>"` or `"cookie:<name>"`.
    #[schemars(with = "Option<Sticky>")]
    pub sticky: Option<Text>,
    /// Methods shadowed. Default GET, HEAD, OPTIONS; others need `unsafe_methods = true`.
    #[schemars(with = "Option<Vec<String>>")]
    pub methods: Option<Spanned<Vec<Text>>>,
    /// Allow shadowing methods with side effects (POST, PUT, …).
    #[schemars(extend("default" = false))]
    pub unsafe_methods: Option<bool>,
    /// Only these tenants are shadowed. Default (empty): all.
    #[schemars(with = "Option<Vec<TenantId>>")]
    pub tenants: Option<Vec<Text>>,
    /// These tenants are never shadowed.
    #[schemars(with = "Option<Vec<TenantId>>")]
    pub exclude: Option<Vec<Text>>,
    /// At most this many shadow requests per second on the route (1-1000000); beyond, skipped
    /// as `rate_limited`. Default: no limit.
    #[schemars(with = "Option<i64>", range(min = 1, max = 1000000))]
    pub rate_per_sec: Option<Spanned<i64>>,
    /// Largest body (request or either response) kept for comparison; larger ones are skipped
    /// as `body_too_large`.
    #[schemars(with = "Option<RawSize>", extend("default" = "1MiB"))]
    pub max_body: Option<Spanned<RawSize>>,
    /// Time allowed for the shadow request.
    #[schemars(with = "Option<Duration>", extend("default" = "5s"))]
    pub timeout: Option<Text>,
    /// Headers removed from the shadow copy (credentials).
    #[schemars(
        with = "Option<Vec<String>>",
        extend("default" = ["authorization", "cookie"])
    )]
    pub strip_headers: Option<Vec<Text>>,
    /// Headers set on the shadow copy (for example a read-only credential).
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub set_headers: Option<BTreeMap<Text, Text>>,
    /// Share of shadowed idempotent requests that also call the primary side a second time,
    /// to learn which paths differ between two calls of the same side (noise).
    #[schemars(with = "Option<Percent>", extend("default" = 10))]
    pub self_check_percent: Option<Spanned<f64>>,
    /// Parity (% of comparisons matching) the shadow report needs before it calls the route
    /// ready.
    #[schemars(with = "Option<Percent>", extend("default" = 99))]
    pub target_parity: Option<Spanned<f64>>,
}

/// The top-level `[shadow]` table: switches that hold for every route.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawShadowGlobal {
    /// Kill switch: `false` stops every route's shadow at once.
    #[schemars(extend("default" = true))]
    pub enabled: Option<bool>,
    /// Comparisons waiting, 1-1000000; when full, new ones are skipped (`queue_full`) and
    /// counted, never slowing a primary request.
    #[schemars(with = "Option<i64>", range(min = 1, max = 1000000), extend("default" = 1024))]
    pub queue: Option<Spanned<i64>>,
    /// Shadow requests in flight at once, 1-100000.
    #[schemars(with = "Option<i64>", range(min = 1, max = 100000), extend("default" = 64))]
    pub max_in_flight: Option<Spanned<i64>>,
    /// A secret file keying the digests that replace redacted values. Default: a key drawn
    /// at start (digests then differ between restarts).
    #[schemars(with = "Option<FileName>")]
    pub redact_key_file: Option<Text>,
    /// Learned noise is decided on this much recent evidence (at least 1m): a field that
    /// stops differing between two calls of the primary side is real again once this window
    /// no longer holds its noisy self-checks.
    #[schemars(with = "Option<Duration>", extend("default" = "24h"))]
    pub noise_window: Option<Text>,
}

/// The top-level `[telemetry]` table: the access log and traces.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    /// One JSON line per request: `"off"` (the default), `"stdout"`, `"stderr"` or a file path
    /// (appended; relative to the config file's directory).
    #[schemars(with = "Option<String>", extend("default" = "off"))]
    pub access_log: Option<Text>,
    /// Write tenant names into the access log (they may identify customers).
    #[schemars(extend("default" = false))]
    pub access_log_tenants: Option<bool>,
    /// Send OpenTelemetry traces (a span per request) to this OTLP/HTTP collector, such as
    /// `"http://127.0.0.1:4318"` (`/v1/traces` is added unless the URL ends with it). Unset:
    /// no tracing, and an incoming `traceparent` passes through untouched.
    #[schemars(with = "Option<String>")]
    pub otlp_endpoint: Option<Text>,
    /// The `service.name` the spans are reported under.
    #[schemars(with = "Option<String>", extend("default" = "switchyard"))]
    pub service_name: Option<Text>,
    /// Share of new traces recorded, 0.0-1.0; a request continuing a caller's trace follows
    /// the caller's sampled flag instead.
    #[schemars(with = "Option<f64>", range(min = 0.0, max = 1.0), extend("default" = 1.0))]
    pub sample_ratio: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `sqlite://FILE` (relative to the config file's directory; `sqlite::memory:` for none
    /// kept) or `postgres://…` shared by a fleet.
    #[schemars(with = "Option<StoreUrl>", extend("default" = "sqlite://switchyard.db"))]
    pub url: Option<Text>,
    /// Shadow results and samples older than this are deleted.
    #[schemars(with = "Option<Duration>", extend("default" = "7days"))]
    pub retention: Option<Text>,
    /// Stored response pairs kept at most, 0-100000000.
    #[schemars(
        with = "Option<i64>",
        range(min = 0, max = 100000000),
        extend("default" = 100000)
    )]
    pub max_samples: Option<Spanned<i64>>,
}

/// The whole main config after section-by-section deserialization. A section that failed to
/// deserialize is `None` here and its error is already collected; `failed` remembers which, so
/// dependent checks (say, "undefined upstream") stay quiet instead of piling on.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub listen: Option<Spanned<RawListen>>,
    pub admin: Option<RawAdmin>,
    pub tenant: Option<RawTenant>,
    /// Every upstream name, with its table when that table deserialized.
    pub upstreams: Vec<(Text, Option<RawUpstream>)>,
    pub default: Option<RawDefault>,
    pub tenants: Vec<(Text, Option<RawTenantWide>)>,
    /// Each `[[routes]]` entry with the span of its table.
    pub routes: Vec<(std::ops::Range<usize>, Option<RawRoute>)>,
    pub shadow: Option<RawShadowGlobal>,
    pub store: Option<RawStore>,
    pub telemetry: Option<RawTelemetry>,
    pub failed: Failed,
}

#[derive(Debug, Default)]
pub struct Failed {
    pub listen: bool,
    pub tenant: bool,
    pub upstreams: bool,
    pub default: bool,
    pub routes: bool,
}

// === referenced files ===

/// The tenant directory: `[tenants.<id>]` tables of string attributes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirectory {
    #[serde(default)]
    pub tenants: BTreeMap<Text, BTreeMap<Text, Text>>,
}

/// The admin tokens file: `[tokens.<name>] role = "read"|"write"`, with `secret_sha256 = "<hex>"`
/// or, for local use, `secret = "…"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    #[serde(default)]
    pub tokens: BTreeMap<Text, Spanned<RawToken>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    pub role: Text,
    pub secret: Option<Text>,
    pub secret_sha256: Option<Text>,
}
