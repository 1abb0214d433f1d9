//! Store-level records of shadow comparisons. They do not depend on the comparison engine:
//! the shadow module converts its results into these and hands them to the
//! [`StoreWriter`](super::StoreWriter).
//!
//! Counting rules (used by the aggregation and the report alike):
//! - `compared` = results whose outcome is match, mismatch, noise-only or error; skipped
//!   results are counted apart, by reason. An error (the shadow side failed) counts against
//!   parity: a new side that fails is not ready.
//! - a pattern × kind is counted once per result, however many array elements matched it, so
//!   `count / compared` is the share of compared requests showing that difference.

use serde::{Deserialize, Serialize};

/// Width of an aggregation bucket: one minute.
pub const BUCKET_MS: i64 = 60_000;

/// Headers that never reach storage, whatever the caller's redaction did (defence in depth).
const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
];

/// The start of the one-minute bucket holding `at_ms`.
pub fn bucket_floor(at_ms: i64) -> i64 {
    at_ms - at_ms.rem_euclid(BUCKET_MS)
}

/// How one shadow comparison ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Both sides answered the same (after ignore rules).
    Match,
    /// At least one difference that is not known noise.
    Mismatch,
    /// Every difference was on a noise path.
    NoiseOnly,
    /// The shadow call or the comparison failed.
    Error,
    /// No comparison was made; see `skip_reason`.
    Skipped,
}

// === impl Outcome ===

impl Outcome {
    /// The snake_case name used in storage, metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Match => "match",
            Outcome::Mismatch => "mismatch",
            Outcome::NoiseOnly => "noise_only",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One finished (or skipped) shadow comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowResult {
    pub at_ms: i64,
    pub route: String,
    pub tenant: Option<String>,
    /// `"legacy"` or `"new"`: the side whose answer went to the client.
    pub primary_side: String,
    pub outcome: Outcome,
    /// `body_too_large`, `queue_full`, `rate_limited`, … when `outcome` is `Skipped`.
    pub skip_reason: Option<String>,
    pub error: Option<String>,
    pub primary_ms: Option<f64>,
    pub shadow_ms: Option<f64>,
    /// Differences found between primary and shadow.
    pub diffs: Vec<DiffRecord>,
    /// Present when the primary side was called a second time (learned noise).
    pub self_check: Option<SelfCheck>,
    /// A redacted request/response pair offered to the sample reservoir.
    pub sample: Option<SamplePair>,
}

/// One difference between primary and shadow, by normalised path pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffRecord {
    /// e.g. `/items/*/price`, `header:content-type`, `status`.
    pub pattern: String,
    /// `value`, `type`, `missing`, `extra`, …
    pub kind: String,
    pub primary: Option<String>,
    pub shadow: Option<String>,
}

/// Patterns that differed between two answers of the primary side.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SelfCheck {
    pub differing_patterns: Vec<String>,
}

/// Header list as stored: name/value pairs in their original order.
pub type SampleHeaders = Vec<(String, String)>;

/// A redacted request with both sides' responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplePair {
    pub method: String,
    pub uri: String,
    pub request_headers: SampleHeaders,
    pub request_body: Option<String>,
    pub primary: SampleResponse,
    pub shadow: SampleResponse,
}

/// One side's response in a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleResponse {
    /// `"legacy"` or `"new"`.
    pub side: String,
    pub status: u16,
    pub headers: SampleHeaders,
    /// Text, or a base64 marker for binary bodies (decided by the caller).
    pub body: String,
    pub elapsed_ms: f64,
}

// === impl ShadowResult ===

impl ShadowResult {
    /// The side the shadow copy went to: the other one.
    pub(super) fn shadow_side(&self) -> &str {
        match self.primary_side.as_str() {
            "legacy" => "new",
            "new" => "legacy",
            _ => "shadow",
        }
    }

    /// Tenant as a key column: `''` stands for "no tenant".
    pub(super) fn tenant_key(&self) -> &str {
        self.tenant.as_deref().unwrap_or("")
    }
}

// === impl SamplePair ===

impl SamplePair {
    /// A copy fit for storage: no credential headers on the request or either response, and
    /// finite timings (JSON has no NaN: it would be written as `null` and fail to read back).
    pub fn scrubbed(&self) -> SamplePair {
        let mut pair = self.clone();
        scrub_headers(&mut pair.request_headers);
        for side in [&mut pair.primary, &mut pair.shadow] {
            scrub_headers(&mut side.headers);
            if !side.elapsed_ms.is_finite() {
                side.elapsed_ms = 0.0;
            }
        }
        pair
    }
}

/// Drop `authorization`, `cookie`, `set-cookie` and `proxy-authorization` (any case).
pub fn scrub_headers(headers: &mut SampleHeaders) {
    headers.retain(|(name, _)| {
        let name = name.trim();
        !CREDENTIAL_HEADERS
            .iter()
            .any(|c| name.eq_ignore_ascii_case(c))
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn response(headers: &[(&str, &str)]) -> SampleResponse {
        SampleResponse {
            side: "legacy".into(),
            status: 200,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            body: "{}".into(),
            elapsed_ms: 1.0,
        }
    }

    #[test]
    fn credentials_are_scrubbed_from_every_header_list() {
        let pair = SamplePair {
            method: "GET".into(),
            uri: "/api/cards".into(),
            request_headers: vec![
                ("Authorization".into(), "Bearer s3cret".into()),
                ("COOKIE".into(), "session=abc".into()),
                ("Proxy-Authorization".into(), "Basic eA==".into()),
                ("accept".into(), "application/json".into()),
            ],
            request_body: None,
            primary: response(&[("Set-Cookie", "a=b"), ("content-type", "application/json")]),
            shadow: SampleResponse {
                elapsed_ms: f64::NAN,
                ..response(&[("set-cookie", "c=d"), ("x-request-id", "7")])
            },
        };
        let clean = pair.scrubbed();
        assert_eq!(
            clean.request_headers,
            vec![("accept".into(), "application/json".into())]
        );
        assert_eq!(
            clean.primary.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
        assert_eq!(
            clean.shadow.headers,
            vec![("x-request-id".to_string(), "7".to_string())]
        );
        let json = serde_json::to_string(&clean).unwrap();
        let back: SamplePair = serde_json::from_str(&json).unwrap();
        assert_eq!(back, clean);
        for secret in ["s3cret", "session=abc", "a=b", "c=d", "eA=="] {
            assert!(!json.contains(secret), "{secret} leaked: {json}");
        }
    }

    #[test]
    fn buckets_floor_to_the_minute_even_before_the_epoch() {
        assert_eq!(bucket_floor(0), 0);
        assert_eq!(bucket_floor(59_999), 0);
        assert_eq!(bucket_floor(60_000), 60_000);
        assert_eq!(bucket_floor(-1), -60_000);
    }
}
