//! The `compare = { … }` table of a route ([`CompareConfig`]) and its validated, precompiled form
//! ([`CompareRules`]).
//!
//! Pattern lists take RFC 6901 JSON Pointers with `*` wildcards (see the `pattern` module):
//! - `ignore`: a pointer ignores the node **and everything below it** (`/meta` ignores
//!   `/meta/x`); `header:<name>` stops comparing that header.
//! - `unordered`: arrays at these pointers are compared as multisets.
//! - `keyed = { "/items" = "id" }`: arrays at these pointers are matched element by element on
//!   the value of a field (`"id"`), or of a relative pointer inside the element (`"/ref/id"`).
//! - `redact`: values at these pointers (and `header:<name>` values) are replaced by a keyed
//!   hash before they are rendered or stored, so equal values still compare equal.
//! - `subset = true`: fields, headers and unordered elements only the shadow side has are fine.
//! - `tolerance`: absolute tolerance for numbers.
//! - `headers`: headers compared in addition to [`DEFAULT_HEADERS`].
//! - `status = "exact" | "class"`: compare status codes exactly or by class (2xx, 4xx, …).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use http::HeaderName;
use serde::{Deserialize, Serialize};

use super::pattern::{self, PatternSet, Role};
use super::redact::RedactKey;

/// Headers compared by default. Chosen because a client or a cache behaves differently when they
/// differ. Left out on purpose: `etag` and `last-modified` (every implementation computes its
/// own), `content-length` and `content-encoding` (framing and transport; bodies are compared
/// decoded), `set-cookie` (session values differ on every call; add it to `headers` to compare
/// it — its values are then rendered as hashes).
pub const DEFAULT_HEADERS: &[&str] = &[
    "access-control-allow-credentials",
    "access-control-allow-headers",
    "access-control-allow-methods",
    "access-control-allow-origin",
    "access-control-expose-headers",
    "allow",
    "cache-control",
    "content-disposition",
    "content-language",
    "content-type",
    "location",
    "vary",
    "www-authenticate",
];

/// Headers never compared, even when listed: they describe the connection or the moment, not
/// the answer (`date`, `server`, and the hop-by-hop headers of RFC 9110 §7.6.1).
pub const NEVER_COMPARED: &[&str] = &[
    "connection",
    "date",
    "keep-alive",
    "proxy-authenticate",
    "proxy-connection",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The most patterns one route may declare (keeps pattern ids in a `u16` and matching cheap).
pub const MAX_PATTERNS: usize = 1024;

/// Default cap on a body after `Content-Encoding` is decoded.
pub const DEFAULT_MAX_DECODED: usize = crate::compare::decode::DEFAULT_LIMIT;

/// How status codes are compared.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum StatusMode {
    /// `200` equals only `200`.
    #[default]
    Exact,
    /// `200` equals `201`: only the class (the hundreds digit) must agree.
    Class,
}

/// The `compare` table of a route, as written in the config file. The field docs are the
/// descriptions of `docs/config.md` and of the config's JSON Schema.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareConfig {
    /// JSON Pointers (with `*` wildcards) whose node and everything below it are not compared,
    /// and `header:<name>` entries for headers not compared.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// JSON Pointers of arrays compared as multisets (order ignored).
    #[serde(default)]
    pub unordered: Vec<String>,
    /// Arrays matched element by element on a key: `{ "/items" = "id" }`, or a relative
    /// pointer inside the element (`"/ref/id"`).
    #[serde(default)]
    pub keyed: BTreeMap<String, String>,
    /// JSON Pointers and `header:<name>` entries whose values are replaced by a keyed digest
    /// before they are rendered or stored (equal values still compare equal).
    #[serde(default)]
    pub redact: Vec<String>,
    /// Fields, headers and unordered elements only the shadow side has are not differences.
    #[serde(default)]
    pub subset: bool,
    /// Absolute tolerance for numbers: values at most this far apart are equal. Default: exact
    /// (`1` equals `1.0`).
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// Headers compared in addition to the default set (content-type, cache-control,
    /// location, vary, the CORS headers, …).
    #[serde(default)]
    pub headers: Vec<String>,
    /// `"exact"`: 200 equals only 200; `"class"`: only the class (2xx, 4xx, …) must agree.
    #[serde(default)]
    pub status: StatusMode,
}

/// Which entry of a `compare` table a problem is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareEntry {
    Ignore(usize),
    Redact(usize),
    Unordered(usize),
    /// A `keyed` entry, by its array pattern.
    Keyed(String),
    Headers(usize),
    Tolerance,
    /// The table as a whole (too many patterns).
    Table,
}

/// One problem in a `compare` table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct CompareProblem {
    /// The entry, for positions.
    pub entry: CompareEntry,
    /// The entry as the user wrote it, e.g. `ignore[1] "meta"`.
    pub what: String,
    pub message: String,
}

fn problem(entry: CompareEntry, what: &str, message: impl Into<String>) -> CompareProblem {
    CompareProblem {
        entry,
        what: what.to_owned(),
        message: message.into(),
    }
}

/// Where the key of a keyed array element is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyField {
    Field(String),
    Pointer(String),
}

/// A validated, precompiled [`CompareConfig`]: cheap to match, immutable, shared by reference.
#[derive(Debug, Clone)]
pub struct CompareRules {
    config: CompareConfig,
    pub(crate) patterns: PatternSet,
    pub(crate) key_fields: Vec<KeyField>,
    /// Compared headers, lower case, sorted, without duplicates.
    pub(crate) headers: Vec<HeaderName>,
    /// Headers whose values are rendered as keyed hashes (`redact = ["header:…"]`).
    pub(crate) redact_headers: Vec<HeaderName>,
    pub(crate) subset: bool,
    pub(crate) tolerance: Option<f64>,
    pub(crate) status: StatusMode,
    pub(crate) key: Arc<RedactKey>,
    pub(crate) max_decoded: usize,
}

// === impl CompareRules ===

impl Default for CompareRules {
    fn default() -> Self {
        Self::build(&CompareConfig::default(), &mut Vec::new())
    }
}

impl CompareRules {
    /// Validates and precompiles a config. Every problem names the offending entry, e.g.
    /// `ignore[1] "meta": must start with "/" or "header:"`, and says which entry it is
    /// ([`CompareProblem::entry`]) so the config loader can point at its position.
    pub fn compile(cfg: &CompareConfig) -> Result<CompareRules, Vec<CompareProblem>> {
        let mut errors = Vec::new();
        let rules = Self::build(cfg, &mut errors);
        if errors.is_empty() {
            Ok(rules)
        } else {
            Err(errors)
        }
    }

    /// Replaces the per-process redaction key by a configured one (so hashes are stable across
    /// restarts and replicas). Use the key given to [`redact_json`](super::redact_json) for the
    /// stored samples, so both show the same hashes.
    #[must_use]
    pub fn with_redact_key(mut self, key: &[u8]) -> Self {
        self.key = Arc::new(RedactKey::new(key));
        self
    }

    /// Sets the cap on a body after `Content-Encoding` decoding (default 16 MiB).
    #[must_use]
    pub fn with_max_decoded(mut self, limit: usize) -> Self {
        self.max_decoded = limit;
        self
    }

    /// The config these rules were compiled from.
    pub fn config(&self) -> &CompareConfig {
        &self.config
    }

    /// Whether these rules would still report a stored difference of `kind` at `pattern`
    /// (`/items/*/price`, `header:etag`, `status`, `body`): false when an `ignore` entry covers
    /// the pattern, when the header is no longer compared, or for an `extra` field under
    /// `subset`. What only the bodies can tell (a new `unordered` or `keyed` array, a
    /// `tolerance`) is not known from a pattern, so such differences still count.
    pub fn reports(&self, pattern: &str, kind: &str) -> bool {
        if let Some(name) = pattern.strip_prefix("header:") {
            return self
                .headers
                .iter()
                .any(|h| h.as_str().eq_ignore_ascii_case(name.trim()));
        }
        if self.subset && kind == super::Kind::Extra.as_str() {
            return false;
        }
        !self.patterns.ignores(pattern)
    }

    /// The headers compared, lower case and sorted.
    pub fn compared_headers(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(HeaderName::as_str)
    }

    fn build(cfg: &CompareConfig, errors: &mut Vec<CompareProblem>) -> CompareRules {
        let mut patterns = PatternSet::default();
        let mut ignored_headers = Vec::new();
        let mut redact_headers = Vec::new();
        let mut key_fields = Vec::new();

        for (i, entry) in cfg.ignore.iter().enumerate() {
            let at = Entry(CompareEntry::Ignore(i), format!("ignore[{i}] {entry:?}"));
            if let Some(name) = entry.strip_prefix("header:") {
                if let Some(h) = header_name(&at, name, errors) {
                    ignored_headers.push(h);
                }
            } else {
                add_pattern(&mut patterns, &at, entry, Role::Ignore, true, errors);
            }
        }
        for (i, entry) in cfg.redact.iter().enumerate() {
            let at = Entry(CompareEntry::Redact(i), format!("redact[{i}] {entry:?}"));
            if let Some(name) = entry.strip_prefix("header:") {
                if let Some(h) = header_name(&at, name, errors) {
                    redact_headers.push(h);
                }
            } else {
                add_pattern(&mut patterns, &at, entry, Role::Redact, true, errors);
            }
        }
        for (i, entry) in cfg.unordered.iter().enumerate() {
            let at = Entry(
                CompareEntry::Unordered(i),
                format!("unordered[{i}] {entry:?}"),
            );
            if cfg.keyed.contains_key(entry) {
                errors.push(at.problem("is also keyed; choose one"));
            }
            add_pattern(&mut patterns, &at, entry, Role::Unordered, false, errors);
        }
        for (path, field) in &cfg.keyed {
            let at = Entry(CompareEntry::Keyed(path.clone()), format!("keyed {path:?}"));
            let key = if field.is_empty() {
                errors.push(at.problem("the key field is empty"));
                continue;
            } else if field.starts_with('/') {
                if let Err(e) = pattern::parse_pointer(field) {
                    errors.push(at.problem(format!("key pointer {field:?} {e}")));
                    continue;
                }
                KeyField::Pointer(field.clone())
            } else {
                KeyField::Field(field.clone())
            };
            let Ok(id) = u16::try_from(key_fields.len()) else {
                errors.push(at.problem("too many keyed arrays"));
                continue;
            };
            key_fields.push(key);
            add_pattern(&mut patterns, &at, path, Role::Keyed(id), false, errors);
        }
        if patterns.len() > MAX_PATTERNS {
            errors.push(problem(
                CompareEntry::Table,
                &format!("{} patterns", patterns.len()),
                format!("at most {MAX_PATTERNS} per route"),
            ));
        }

        if let Some(t) = cfg.tolerance
            && !(t.is_finite() && t >= 0.0)
        {
            errors.push(problem(
                CompareEntry::Tolerance,
                &format!("tolerance {t}"),
                "must be a finite number >= 0",
            ));
        }

        let mut headers: Vec<HeaderName> = DEFAULT_HEADERS
            .iter()
            .map(|h| HeaderName::from_static(h))
            .collect();
        for (i, entry) in cfg.headers.iter().enumerate() {
            let at = Entry(CompareEntry::Headers(i), format!("headers[{i}] {entry:?}"));
            let Some(h) = header_name(&at, entry, errors) else {
                continue;
            };
            if NEVER_COMPARED.contains(&h.as_str()) {
                errors.push(at.problem(
                    "is never compared (date, server and hop-by-hop headers describe the connection, not the answer)",
                ));
                continue;
            }
            headers.push(h);
        }
        headers.retain(|h| !ignored_headers.contains(h));
        headers.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        headers.dedup();

        CompareRules {
            config: cfg.clone(),
            patterns,
            key_fields,
            headers,
            redact_headers,
            subset: cfg.subset,
            tolerance: cfg.tolerance.filter(|t| t.is_finite() && *t >= 0.0),
            status: cfg.status,
            key: process_redact_key(),
            max_decoded: DEFAULT_MAX_DECODED,
        }
    }
}

/// An entry being compiled: which one, and how to name it in a message.
struct Entry(CompareEntry, String);

impl Entry {
    fn problem(&self, message: impl Into<String>) -> CompareProblem {
        problem(self.0.clone(), &self.1, message)
    }
}

fn add_pattern(
    set: &mut PatternSet,
    at: &Entry,
    entry: &str,
    role: Role,
    header_allowed: bool,
    errors: &mut Vec<CompareProblem>,
) {
    match pattern::parse_pointer(entry) {
        Ok(segs) => set.push(segs, role),
        Err(pattern::PatternError::NoLeadingSlash) if header_allowed => {
            errors.push(at.problem("must start with \"/\" or \"header:\""));
        }
        Err(e) => errors.push(at.problem(e.to_string())),
    }
}

fn header_name(at: &Entry, name: &str, errors: &mut Vec<CompareProblem>) -> Option<HeaderName> {
    // HeaderName parsing lower-cases, so matching is case-insensitive.
    match HeaderName::from_bytes(name.trim().as_bytes()) {
        Ok(h) => Some(h),
        Err(_) => {
            errors.push(at.problem(format!("{name:?} is not a valid header name")));
            None
        }
    }
}

/// The per-process redaction key: 32 random bytes drawn on first use. Hashes made with it are
/// comparable within one process only; configure a key with
/// [`CompareRules::with_redact_key`] to compare across restarts or replicas.
pub fn process_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(rand::random)
}

fn process_redact_key() -> Arc<RedactKey> {
    static KEY: OnceLock<Arc<RedactKey>> = OnceLock::new();
    KEY.get_or_init(|| Arc::new(RedactKey::new(process_key())))
        .clone()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn cfg(f: impl FnOnce(&mut CompareConfig)) -> CompareConfig {
        let mut c = CompareConfig::default();
        f(&mut c);
        c
    }

    #[test]
    fn default_rules_compare_the_default_headers() {
        let rules = CompareRules::compile(&CompareConfig::default()).unwrap();
        let names: Vec<&str> = rules.compared_headers().collect();
        assert_eq!(names, DEFAULT_HEADERS);
        assert_eq!(rules.status, StatusMode::Exact);
    }

    #[test]
    fn errors_name_each_offending_entry() {
        let c = cfg(|c| {
            c.ignore = vec!["/ok".into(), "meta".into(), "header:bad header".into()];
            c.unordered = vec!["header:x".into(), "/tags".into()];
            c.keyed.insert("/tags".into(), "id".into());
            c.keyed.insert("/items".into(), String::new());
            c.redact = vec!["/a~9".into()];
            c.tolerance = Some(-1.0);
            c.headers = vec!["Date".into(), "Transfer-Encoding".into()];
        });
        let errors = CompareRules::compile(&c).unwrap_err();
        let expected = [
            "ignore[1] \"meta\": must start with \"/\" or \"header:\"",
            "ignore[2] \"header:bad header\": \"bad header\" is not a valid header name",
            "redact[0] \"/a~9\": has an invalid escape",
            "unordered[0] \"header:x\": must start with \"/\"",
            "unordered[1] \"/tags\": is also keyed",
            "keyed \"/items\": the key field is empty",
            "tolerance -1: must be a finite number >= 0",
            "headers[0] \"Date\": is never compared",
            "headers[1] \"Transfer-Encoding\": is never compared",
        ];
        for want in expected {
            assert!(
                errors.iter().any(|e| e.to_string().starts_with(want)),
                "missing {want:?} in {errors:#?}"
            );
        }
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    }

    #[test]
    fn extra_and_ignored_headers_are_case_insensitive() {
        let c = cfg(|c| {
            c.headers = vec!["X-Api-Version".into(), "content-type".into()];
            c.ignore = vec!["header:Cache-Control".into()];
        });
        let rules = CompareRules::compile(&c).unwrap();
        let names: Vec<&str> = rules.compared_headers().collect();
        assert!(names.contains(&"x-api-version"));
        assert!(!names.contains(&"cache-control"));
        assert_eq!(names.iter().filter(|n| **n == "content-type").count(), 1);
    }

    #[test]
    fn config_round_trips_through_toml_and_rejects_unknown_keys() {
        let text = r#"
            ignore = ["/generated_at", "/items/*/updated_at", "header:etag"]
            unordered = ["/tags"]
            keyed = { "/items" = "id" }
            redact = ["/owner/email"]
            subset = true
            tolerance = 0.001
            headers = ["x-api-version"]
            status = "class"
        "#;
        let c: CompareConfig = toml::from_str(text).unwrap();
        assert_eq!(c.status, StatusMode::Class);
        assert_eq!(c.keyed.get("/items").map(String::as_str), Some("id"));
        assert!(CompareRules::compile(&c).is_ok());
        let empty: CompareConfig = toml::from_str("").unwrap();
        assert_eq!(empty, CompareConfig::default());
        assert!(toml::from_str::<CompareConfig>("ignored = []").is_err());
        assert!(toml::from_str::<CompareConfig>("status = \"fuzzy\"").is_err());
    }

    #[test]
    fn stored_differences_are_judged_by_the_current_rules() {
        let c = cfg(|c| {
            c.ignore = vec!["/meta".into(), "header:cache-control".into()];
            c.subset = true;
        });
        let rules = CompareRules::compile(&c).unwrap();
        assert!(!rules.reports("/meta/request_id", "value"));
        assert!(rules.reports("/price", "value"));
        assert!(
            !rules.reports("/new_field", "extra"),
            "subset allows extras"
        );
        assert!(rules.reports("/old_field", "missing"));
        assert!(!rules.reports("header:cache-control", "header"));
        assert!(rules.reports("header:Content-Type", "header"));
        assert!(
            !rules.reports("header:x-request-id", "header"),
            "not compared"
        );
        assert!(rules.reports("status", "status"));
        assert!(rules.reports("body", "text"));
        let plain = CompareRules::default();
        assert!(plain.reports("/new_field", "extra"));
        assert!(plain.reports("/meta/request_id", "value"));
    }

    #[test]
    fn keyed_accepts_field_or_relative_pointer() {
        let c = cfg(|c| {
            c.keyed.insert("/a".into(), "id".into());
            c.keyed.insert("/b".into(), "/ref/id".into());
        });
        let rules = CompareRules::compile(&c).unwrap();
        assert_eq!(
            rules.key_fields,
            vec![
                KeyField::Field("id".into()),
                KeyField::Pointer("/ref/id".into())
            ]
        );
    }
}
