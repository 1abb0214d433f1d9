//! The JSON Schema of the config file, as users write it: for editors (`switchyard config
//! schema`, `docs/config.schema.json`) and as the source of `docs/config.md`.
//!
//! One source of truth: the schema is derived from the raw serde structs of `file.rs` that
//! the loader itself deserializes, so a key cannot exist in one and not in the other; their
//! field doc comments are the descriptions. The raw structs keep positions (`Spanned`) and
//! read sizes leniently (`RawSize`); the small types below describe those values the way a
//! user writes them instead (`"512KiB"`, `"250ms"`, `"127.0.0.1:8080"`). The semantic checks
//! stay in `compile`: the schema helps an editor, `switchyard check` has the last word.
//!
//! `tests/config_docs.rs` keeps `config/example.toml`, `config/demo.toml`, `docs/config.md`
//! and `docs/config.schema.json` in step with this schema.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::file::{
    OneOrMany, RawAdmin, RawDefault, RawListen, RawRoute, RawShadowGlobal, RawStore, RawTelemetry,
    RawTenant, RawTenantWide, RawUpstream,
};
use super::units::RawSize;

/// The whole file. Schema only: the loader reads these sections one by one
/// (`config::parse_sections`), so one bad section does not hide errors in another.
#[derive(JsonSchema)]
#[schemars(
    deny_unknown_fields,
    title = "Switchyard config",
    description = "The config of a Switchyard gateway (TOML). Check a file with `switchyard check --config FILE`; relative file names are relative to the config file's directory."
)]
#[allow(dead_code)] // never built: it only describes the file
struct ConfigFile {
    /// Downstream listeners (clients connect here) and their limits.
    listen: Option<RawListen>,
    /// The admin API, `/metrics` and the dashboard: their own listener, token-protected.
    admin: Option<RawAdmin>,
    /// Who a request belongs to: tenant sources, and what to do without a tenant.
    tenant: Option<RawTenant>,
    /// Named pools of origins (`[upstreams.<name>]`, names of 1-64 letters, digits, '.', '_'
    /// or '-').
    upstreams: Option<BTreeMap<String, RawUpstream>>,
    /// The upstream for requests no route matches.
    default: Option<RawDefault>,
    /// Tenant-wide sides (`[tenants.<id>]`): a whole customer moved to new, or held on legacy,
    /// on every route.
    tenants: Option<BTreeMap<String, RawTenantWide>>,
    /// The routes (`[[routes]]`), each a slice of the API with a legacy and a new upstream.
    /// The most specific path pattern wins (static segments before parameters before
    /// catch-alls), then the route with more matchers (`host`, `methods`, each header), then
    /// file order.
    routes: Option<Vec<RawRoute>>,
    /// Shadow switches that hold for every route.
    shadow: Option<RawShadowGlobal>,
    /// Where shadow results, samples, the audit log and generations are kept.
    store: Option<RawStore>,
    /// The access log.
    telemetry: Option<RawTelemetry>,
}

/// The JSON Schema (draft 7, which editors and Taplo understand) of the config file.
pub fn json_schema() -> Schema {
    let schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<ConfigFile>();
    let mut value = serde_json::Value::from(schema);
    without_null(&mut value);
    Schema::try_from(value).unwrap_or_default()
}

/// TOML has no null: an optional key is one that is left out. The raw structs hold
/// `Option`s, which schemars describes as "this or null"; this removes the null alternative
/// (and `default: null`), so editors neither offer nor accept it. It also drops the Rust
/// integer formats (`int64`, `double`), which say nothing to a user.
fn without_null(value: &mut serde_json::Value) {
    use serde_json::Value;
    let Value::Object(node) = value else {
        if let Value::Array(items) = value {
            items.iter_mut().for_each(without_null);
        }
        return;
    };
    if let Some(Value::Array(types)) = node.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            node.insert("type".into(), only);
        }
    }
    let null = serde_json::json!({ "type": "null" });
    if let Some(Value::Array(alternatives)) = node.get_mut("anyOf")
        && alternatives.contains(&null)
    {
        alternatives.retain(|a| *a != null);
        if let [only] = alternatives.as_slice() {
            let only = only.clone();
            node.remove("anyOf");
            match only {
                // Draft 7 ignores the siblings of a `$ref` (the description, the default):
                // keep them beside an `allOf` of it instead.
                Value::Object(inner) if inner.contains_key("$ref") => {
                    node.insert("allOf".into(), Value::Array(vec![Value::Object(inner)]));
                }
                Value::Object(inner) => node.extend(inner),
                _ => {}
            }
        }
    }
    if node.get("default").is_some_and(Value::is_null) {
        node.remove("default");
    }
    if node.get("format").and_then(Value::as_str).is_some_and(|f| {
        matches!(
            f,
            "int8"
                | "int16"
                | "int32"
                | "int64"
                | "uint"
                | "uint8"
                | "uint16"
                | "uint32"
                | "uint64"
                | "float"
                | "double"
        )
    }) {
        node.remove("format");
    }
    node.values_mut().for_each(without_null);
}

/// [`json_schema`] as pretty-printed JSON with a final newline: what `switchyard config
/// schema` prints and `docs/config.schema.json` holds.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// Top-level sections in the order the schema lists them (for the test that keeps the schema
/// and `parse_sections` in step).
pub fn sections() -> Vec<String> {
    json_schema()
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The sections `parse_sections` accepts, as it names them in its error message.
pub fn parsed_sections() -> Vec<String> {
    super::SECTIONS.split(", ").map(str::to_owned).collect()
}

// === value types: what users write ===

/// Implements `JsonSchema` for a schema-only type from a name and a `json_schema!` body.
macro_rules! value_type {
    ($(#[$meta:meta])* $ty:ident, $name:literal, $schema:tt) => {
        $(#[$meta])*
        pub struct $ty;

        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

value_type!(
    /// A duration as humantime reads it.
    Duration,
    "Duration",
    {
        "type": "string",
        "description": "A duration: numbers with units, such as \"250ms\", \"10s\", \"5m\", \"1h 30m\" or \"7days\" (units: ns, us, ms, s/sec/seconds, m/min/minutes, h/hr/hours, d/days, w/weeks, M/months, y/years). Must be greater than zero.",
        "pattern": "^\\s*([0-9]+(\\.[0-9]+)?\\s*[A-Za-zµ]+\\s*)+$",
        "examples": ["250ms", "10s", "5m", "1h 30m"]
    }
);

value_type!(
    /// An `IP:port` socket address.
    Address,
    "Address",
    {
        "type": "string",
        "description": "An IP address and port, such as \"0.0.0.0:8080\", \"127.0.0.1:9901\" or \"[::]:8080\" (no host names).",
        "pattern": "^\\s*(\\[[0-9A-Fa-f:.]+\\]|[0-9.]+):[0-9]{1,5}\\s*$",
        "examples": ["0.0.0.0:8080", "127.0.0.1:9901", "[::]:8080"]
    }
);

value_type!(
    /// A file the config names.
    FileName,
    "FileName",
    {
        "type": "string",
        "description": "A file name, relative to the config file's directory (absolute names are used as they are). The file must exist when the config is loaded; it is watched with the config.",
        "minLength": 1
    }
);

value_type!(
    /// An upstream origin.
    Origin,
    "Origin",
    {
        "type": "string",
        "description": "An origin: http:// or https://, a host and an optional port, no path, query or user info, such as \"http://127.0.0.1:8001\".",
        "pattern": "^\\s*https?://[^/?#@\\s]+/?\\s*$",
        "examples": ["http://127.0.0.1:8001", "https://cards.internal"]
    }
);

value_type!(
    /// A CIDR or a single address.
    Cidr,
    "Cidr",
    {
        "type": "string",
        "description": "An IP network in CIDR notation (\"10.0.0.0/8\", \"::1/128\") or a single address.",
        "examples": ["10.0.0.0/8", "127.0.0.1/32"]
    }
);

value_type!(
    /// A tenant id.
    TenantId,
    "TenantId",
    {
        "type": "string",
        "description": "A tenant id: 1-128 letters, digits, '.', '_' or '-'.",
        "pattern": "^[A-Za-z0-9._-]{1,128}$"
    }
);

value_type!(
    /// A percentage with 0.01 resolution.
    Percent,
    "Percent",
    {
        "type": "number",
        "description": "A percentage from 0 to 100 with a resolution of 0.01 (12.34 is fine, 12.345 is an error).",
        "minimum": 0,
        "maximum": 100
    }
);

value_type!(
    /// A sticky key.
    Sticky,
    "Sticky",
    {
        "type": "string",
        "description": "A sticky key: \"tenant\", \"header:<name>\" or \"cookie:<name>\".",
        "pattern": "^\\s*(tenant|header:.+|cookie:.+)\\s*$",
        "examples": ["tenant", "header:x-user-id", "cookie:session"]
    }
);

value_type!(
    /// A store URL.
    StoreUrl,
    "StoreUrl",
    {
        "type": "string",
        "description": "sqlite://FILE (relative to the config file's directory; query parameters kept), sqlite::memory:, or postgres://user@host/db.",
        "pattern": "^\\s*(sqlite:|postgres://|postgresql://)",
        "examples": ["sqlite://switchyard.db", "postgres://switchyard@db/switchyard"]
    }
);

/// A route's `state`.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)] // schema only: `rules::RouteState::parse` reads the value
pub enum RouteStateName {
    /// Kill switch: every request of the route goes to legacy.
    Legacy,
    /// Tenants, cohorts and the sticky percentage decide.
    Rollout,
    /// Cut over: every request of the route goes to new.
    New,
}

/// What a tripped guard does.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)] // schema only: `rules::GuardAction::parse` reads the value
pub enum GuardActionName {
    /// Set the route's `state = "legacy"`: every request of the route goes to legacy.
    Legacy,
    /// Stop the route's schedule from advancing; the traffic split is kept.
    Pause,
}

/// A tenant-wide side.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)] // schema only: `rules::Side::parse` reads the value
pub enum SideName {
    /// Held on legacy on every route.
    Legacy,
    /// Cut over on every route with a new upstream.
    New,
}

/// `[tenant] unknown`.
#[derive(JsonSchema)]
#[schemars(rename_all = "lowercase")]
#[allow(dead_code)] // schema only: `compile` reads the value
pub enum UnknownPolicyName {
    /// Carry on without a tenant (tenant rules and tenant buckets do not apply).
    Default,
    /// Answer 400 on any matched route.
    Reject,
}

impl JsonSchema for RawSize {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A size: a number of bytes, or a string with a unit: B, KiB, MiB, GiB, TiB (powers of 1024) or kB/KB, MB, GB, TB (powers of 1000), such as \"512KiB\" or \"10MB\". Whole numbers only.",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                {
                    "type": "string",
                    "pattern": "^\\s*[0-9]+\\s*(B|KiB|MiB|GiB|TiB|kB|KB|MB|GB|TB)?\\s*$"
                }
            ],
            "examples": ["64KiB", "1MiB", 65536]
        })
    }
}

impl JsonSchema for OneOrMany {
    fn schema_name() -> Cow<'static, str> {
        "PathPatterns".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A path pattern or a list of them. Patterns start with '/'; `{name}` matches one segment, `{*name}` one or more (at the end).",
            "anyOf": [
                { "type": "string", "pattern": "^/" },
                { "type": "array", "items": { "type": "string", "pattern": "^/" } }
            ],
            "examples": ["/api/cards/{id}", ["/api/cards", "/api/cards/{*rest}"]]
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::units::{parse_duration, parse_size};

    fn pattern(name: &str) -> regex::Regex {
        let schema = json_schema();
        let def = &schema.get("definitions").unwrap()[name];
        let p = def
            .get("pattern")
            .or_else(|| def["anyOf"][1].get("pattern"))
            .unwrap();
        regex::Regex::new(p.as_str().unwrap()).unwrap()
    }

    #[test]
    fn sections_match_the_loader() {
        let mut schema = sections();
        let mut parsed = parsed_sections();
        schema.sort();
        parsed.sort();
        assert_eq!(schema, parsed);
    }

    #[test]
    fn the_duration_pattern_accepts_what_the_loader_accepts() {
        let re = pattern("Duration");
        for text in [
            "250ms",
            "10s",
            "5m",
            "1h 30m",
            "7days",
            "1h30m",
            " 2 hours ",
            "1.5s",
        ] {
            assert!(parse_duration(text).is_ok(), "{text}");
            assert!(re.is_match(text), "{text}");
        }
        for text in ["", "5", "soon", "-1s", "1s;"] {
            assert!(parse_duration(text).is_err(), "{text}");
            assert!(!re.is_match(text), "{text}");
        }
    }

    #[test]
    fn the_size_pattern_accepts_what_the_loader_accepts() {
        let re = pattern("Size");
        for text in [
            "512KiB", "1MiB", "10MB", "100", "100B", "64 KiB", "3kB", " 1GiB ",
        ] {
            assert!(parse_size(&RawSize::Text(text.into())).is_ok(), "{text}");
            assert!(re.is_match(text), "{text}");
        }
        for text in ["", "KiB", "1.5MiB", "1mib", "-1", "12 parsecs"] {
            assert!(parse_size(&RawSize::Text(text.into())).is_err(), "{text}");
            assert!(!re.is_match(text), "{text}");
        }
    }

    #[test]
    fn enum_values_are_the_ones_the_loader_reads() {
        let schema = json_schema();
        let defs = schema.get("definitions").unwrap();
        let values = |name: &str| -> Vec<String> {
            defs[name]["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["const"].as_str().unwrap().to_owned())
                .collect()
        };
        let states = values("RouteStateName");
        assert_eq!(states.len(), 3);
        for s in &states {
            assert!(crate::rules::RouteState::parse(s).is_some(), "{s}");
        }
        let sides = values("SideName");
        assert_eq!(sides.len(), 2);
        for s in &sides {
            assert!(crate::rules::Side::parse(s).is_some(), "{s}");
        }
        assert_eq!(values("UnknownPolicyName"), ["default", "reject"]);
    }
}
