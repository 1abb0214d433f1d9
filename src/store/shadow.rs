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
//! - a result that differed (`mismatch` or `noise_only` when written) is also counted under its
//!   difference set, from which the report derives its outcome when read; `outcome` is the
//!   live pipeline's verdict at the time (metrics, and results stored before difference sets).

use serde::{Deserialize, Serialize};

pub use crate::rules::Side;

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

/// Why a comparison was not made (the `reason` label of `switchyard_shadow_skipped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The request or a response body was over the route's `max_body`.
    BodyTooLarge,
    /// The shadow queue was full.
    QueueFull,
    /// The route's `rate_per_sec` was used up.
    RateLimited,
    /// Shadowing is switched off (`[shadow] enabled = false`) or shutting down.
    Disabled,
    /// The primary answer did not complete (or fell back to the other side).
    PrimaryIncomplete,
}

// === impl SkipReason ===

impl SkipReason {
    pub const ALL: [SkipReason; 5] = [
        SkipReason::BodyTooLarge,
        SkipReason::QueueFull,
        SkipReason::RateLimited,
        SkipReason::Disabled,
        SkipReason::PrimaryIncomplete,
    ];

    /// The snake_case name used in storage, metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::BodyTooLarge => "body_too_large",
            SkipReason::QueueFull => "queue_full",
            SkipReason::RateLimited => "rate_limited",
            SkipReason::Disabled => "disabled",
            SkipReason::PrimaryIncomplete => "primary_incomplete",
        }
    }

    /// The inverse of [`SkipReason::as_str`] (for rows read back from the store).
    pub fn parse(s: &str) -> Option<SkipReason> {
        SkipReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finished (or skipped) shadow comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowResult {
    pub at_ms: i64,
    pub route: String,
    pub tenant: Option<String>,
    /// The side whose answer went to the client.
    pub primary_side: Side,
    /// As classified live, when the result was made. The report does not trust it for
    /// results that differed: it derives their outcome again from `diffs` when it is read.
    pub outcome: Outcome,
    /// Why, when `outcome` is `Skipped`.
    pub skip_reason: Option<SkipReason>,
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
    pub side: Side,
    pub status: u16,
    pub headers: SampleHeaders,
    /// Text, or a base64 marker for binary bodies (decided by the caller).
    pub body: String,
    pub elapsed_ms: f64,
}

// === impl ShadowResult ===

impl ShadowResult {
    /// The side the shadow copy went to: the other one.
    pub(super) fn shadow_side(&self) -> Side {
        self.primary_side.other()
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
            side: Side::Legacy,
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
    fn skip_reasons_keep_their_names() {
        for r in SkipReason::ALL {
            assert_eq!(SkipReason::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert_eq!(SkipReason::parse("unknown"), None);
        let names: Vec<&str> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "body_too_large",
                "queue_full",
                "rate_limited",
                "disabled",
                "primary_incomplete"
            ]
        );
    }

    #[test]
    fn buckets_floor_to_the_minute_even_before_the_epoch() {
        assert_eq!(bucket_floor(0), 0);
        assert_eq!(bucket_floor(59_999), 0);
        assert_eq!(bucket_floor(60_000), 60_000);
        assert_eq!(bucket_floor(-1), -60_000);
    }
}
