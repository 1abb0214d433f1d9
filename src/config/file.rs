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

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::units::RawSize;

pub type Text = Spanned<String>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    pub http: Option<Text>,
    pub https: Option<Text>,
    pub tls_cert: Option<Text>,
    pub tls_key: Option<Text>,
    pub workers: Option<Spanned<i64>>,
    pub max_header_bytes: Option<Spanned<RawSize>>,
    pub max_headers: Option<Spanned<i64>>,
    pub header_read_timeout: Option<Text>,
    pub idle_timeout: Option<Text>,
    pub body_timeout: Option<Text>,
    pub drain_timeout: Option<Text>,
    pub max_request_body: Option<Spanned<RawSize>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Option<Text>,
    pub tokens_file: Option<Text>,
    pub debug_headers: Option<bool>,
    pub override_secret_file: Option<Text>,
    pub max_body: Option<Spanned<RawSize>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenant {
    pub sources: Option<Vec<Spanned<RawSource>>>,
    pub unknown: Option<Text>,
    pub directory: Option<Text>,
}

/// One tenant source. Which kind it is follows from the keys present (checked in `compile`):
/// `header`, `host`, `path`, `cookie`, or `jwt_claim` (with `header` or `cookie` saying where the
/// token is).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub header: Option<Text>,
    pub trusted_proxies: Option<Vec<Text>>,
    pub host: Option<Text>,
    pub path: Option<Text>,
    pub cookie: Option<Text>,
    pub jwt_claim: Option<Text>,
    pub jwks: Option<Text>,
    pub hs256_secret_file: Option<Text>,
    pub issuer: Option<Text>,
    pub audience: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub origins: Option<Spanned<Vec<Text>>>,
    pub connect_timeout: Option<Text>,
    pub timeout: Option<Text>,
    pub idle_timeout: Option<Text>,
    pub max_idle_per_origin: Option<Spanned<i64>>,
    pub eject_after: Option<Spanned<i64>>,
    pub eject_for: Option<Text>,
    pub ca_file: Option<Text>,
    pub http2: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefault {
    pub upstream: Option<Text>,
}

/// `[tenants.<id>]` in the main config: tenant-wide settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenantWide {
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<Text>,
    pub path: Option<Spanned<OneOrMany>>,
    pub salt: Option<Text>,
    pub methods: Option<Spanned<Vec<Text>>>,
    pub host: Option<Text>,
    pub headers: Option<BTreeMap<Text, Text>>,
    pub legacy: Option<Text>,
    pub new: Option<Text>,
    pub rewrite: Option<RawRewrite>,
    pub tenants: Option<Vec<Text>>,
    pub exclude: Option<Vec<Text>>,
    pub cohorts: Option<Vec<Spanned<BTreeMap<String, Text>>>>,
    pub percent: Option<Spanned<f64>>,
    pub state: Option<Text>,
    pub sticky: Option<Text>,
    pub fallback: Option<bool>,
    pub fallback_buffer: Option<Spanned<RawSize>>,
    pub shadow: Option<Spanned<RawShadow>>,
    pub compare: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRewrite {
    pub strip_prefix: Option<Text>,
    pub add_prefix: Option<Text>,
    pub host: Option<Text>,
    pub location: Option<bool>,
    pub cookie_domain: Option<Text>,
    pub cookie_path: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShadow {
    pub percent: Option<Spanned<f64>>,
    pub sticky: Option<Text>,
    pub methods: Option<Spanned<Vec<Text>>>,
    pub unsafe_methods: Option<bool>,
    pub tenants: Option<Vec<Text>>,
    pub exclude: Option<Vec<Text>>,
    pub rate_per_sec: Option<Spanned<i64>>,
    pub max_body: Option<Spanned<RawSize>>,
    pub timeout: Option<Text>,
    pub strip_headers: Option<Vec<Text>>,
    pub set_headers: Option<BTreeMap<Text, Text>>,
    pub self_check_percent: Option<Spanned<f64>>,
    pub target_parity: Option<Spanned<f64>>,
}

/// The top-level `[shadow]` table: switches that hold for every route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShadowGlobal {
    pub enabled: Option<bool>,
    pub queue: Option<Spanned<i64>>,
    pub max_in_flight: Option<Spanned<i64>>,
    pub redact_key_file: Option<Text>,
    pub noise_window: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub url: Option<Text>,
    pub retention: Option<Text>,
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
