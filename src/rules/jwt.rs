//! The JWT tenant source: a claim of a verified token names the tenant.
//!
//! Algorithms are pinned by the key, never taken from the token: an HS256 secret only verifies
//! HS256 tokens, a JWKS key only its own algorithm (RS256 or ES256), so `alg: none` or an
//! RS256/HS256 confusion cannot pass. `exp` is required; `exp` and `nbf` are checked against the
//! `now` given to `decide` (with a fixed 60 s leeway for clock skew) so the check is testable and
//! the decision stays pure; `iss` and `aud` are required and checked when configured. Anything
//! that fails yields no tenant from this source.
//!
//! Verifying a signature and decoding the claims costs microseconds, and a client sends the same
//! token on every request for its whole lifetime. So a verified token's tenant claim and times
//! are remembered in a small direct-mapped cache keyed by the token's exact bytes (compared in
//! full, never by hash alone): a repeat is a hash, a comparison and the time check against
//! `now`, which still runs on every request. The cache belongs to one rule generation, so new
//! keys after a reload start from an empty one; it never changes an answer, only its cost.

use std::collections::HashSet;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use http::HeaderName;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::RequestView;
use super::tenant::cookie;

/// Clock skew tolerated on `exp` and `nbf`, seconds.
pub const LEEWAY_SECS: u64 = 60;
/// Longer tokens are not looked at (a bound on work per request).
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Slots of the verified-token cache; with tokens up to [`MAX_CACHED_LEN`] it holds at most
/// 4 MiB of token bytes.
const CACHE_SLOTS: usize = 1024;
/// Longer tokens are verified every time instead of cached.
const MAX_CACHED_LEN: usize = 4 * 1024;

/// Where the token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenAt {
    /// A header; a `Bearer ` prefix is stripped.
    Header(HeaderName),
    Cookie(String),
}

pub(crate) struct JwtSource {
    claim: String,
    at: TokenAt,
    keys: Keys,
    cache: TokenCache,
}

/// Verified tokens by their bytes: direct-mapped, lock-free (a slot is swapped whole).
struct TokenCache {
    slots: Box<[ArcSwapOption<Verified>]>,
    hasher: foldhash::fast::FixedState,
}

/// What a verified token said: enough to answer again without verifying.
struct Verified {
    token: Box<str>,
    /// The claim's value, when it is a string.
    tenant: Option<Box<str>>,
    exp: f64,
    nbf: Option<f64>,
}

enum Keys {
    Hs256(Box<VerifyingKey>),
    Jwks(Vec<VerifyingKey>),
}

struct VerifyingKey {
    kid: Option<String>,
    key: DecodingKey,
    validation: Validation,
}

// Keys and secrets stay out of Debug output.
impl fmt::Debug for JwtSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match &self.keys {
            Keys::Hs256(_) => "hs256".to_owned(),
            Keys::Jwks(keys) => format!("jwks ({} keys)", keys.len()),
        };
        f.debug_struct("JwtSource")
            .field("claim", &self.claim)
            .field("at", &self.at)
            .field("keys", &keys)
            .finish()
    }
}

/// Why a JWT source's key material is not usable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("unusable HS256 secret: {0}")]
    Secret(#[source] jsonwebtoken::errors::Error),
    /// A problem in the JWKS document, at a 1-based position where one is known.
    #[error("{message}")]
    Jwks {
        line: usize,
        col: usize,
        message: String,
    },
}

/// What `iss` and `aud` must be, when configured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expect {
    pub(crate) issuer: Option<String>,
    pub(crate) audience: Option<String>,
}

fn validation(alg: Algorithm, expect: &Expect) -> Validation {
    let mut v = Validation::new(alg);
    // exp/nbf are checked in `check_times` against the caller's clock.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.required_spec_claims = HashSet::new();
    if let Some(iss) = &expect.issuer {
        v.set_issuer(&[iss]);
        v.required_spec_claims.insert("iss".to_owned());
    }
    match &expect.audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            v.required_spec_claims.insert("aud".to_owned());
        }
        // Without a configured audience there is nothing to compare an `aud` claim with.
        None => v.validate_aud = false,
    }
    v
}

impl JwtSource {
    /// A source verifying HS256 tokens with `secret`.
    pub(crate) fn hs256(
        claim: String,
        at: TokenAt,
        secret: &[u8],
        expect: &Expect,
    ) -> Result<Self, KeyError> {
        let key = DecodingKey::from_secret(secret).map_err(KeyError::Secret)?;
        let key = VerifyingKey {
            kid: None,
            key,
            validation: validation(Algorithm::HS256, expect),
        };
        Ok(JwtSource {
            claim,
            at,
            keys: Keys::Hs256(Box::new(key)),
            cache: TokenCache::new(),
        })
    }

    /// A source verifying RS256/ES256 tokens with the keys of a JWKS document. Keys for other
    /// algorithms or for encryption are skipped; a set without any usable key is an error.
    /// Errors carry the 1-based line and column in the JSON where known.
    pub(crate) fn jwks(
        claim: String,
        at: TokenAt,
        json: &str,
        expect: &Expect,
    ) -> Result<Self, KeyError> {
        let set: JwkSet = serde_json::from_str(json).map_err(|e| {
            // serde_json's message ends with " at line L column C"; the position has its own
            // place in the error.
            let text = e.to_string();
            let message = text.split(" at line ").next().unwrap_or(&text).to_owned();
            KeyError::Jwks {
                line: e.line().max(1),
                col: e.column().max(1),
                message: format!("invalid JWKS: {message}"),
            }
        })?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            if jwk.common.public_key_use == Some(jsonwebtoken::jwk::PublicKeyUse::Encryption) {
                continue;
            }
            let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
                (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
                (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                    if ec.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => continue,
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| {
                let kid = jwk.common.key_id.as_deref().unwrap_or("?");
                KeyError::Jwks {
                    line: 1,
                    col: 1,
                    message: format!("JWKS key {kid:?} is unusable: {e}"),
                }
            })?;
            keys.push(VerifyingKey {
                kid: jwk.common.key_id.clone(),
                key,
                validation: validation(alg, expect),
            });
        }
        if keys.is_empty() {
            return Err(KeyError::Jwks {
                line: 1,
                col: 1,
                message: "JWKS has no usable key: only RS256 (RSA) and ES256 (EC P-256) signing keys are supported".to_owned(),
            });
        }
        Ok(JwtSource {
            claim,
            at,
            keys: Keys::Jwks(keys),
            cache: TokenCache::new(),
        })
    }

    /// The tenant named by a valid token's claim, if any.
    pub(crate) fn tenant(&self, req: &RequestView<'_>, now_unix: u64) -> Option<String> {
        let token = match &self.at {
            TokenAt::Header(name) => {
                let raw = req.headers.get(name)?.to_str().ok()?.trim();
                strip_bearer(raw)
            }
            TokenAt::Cookie(name) => cookie(req.headers, name)?,
        };
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return None;
        }
        if let Some(known) = self.cache.get(token) {
            return known.answer(now_unix);
        }
        let key = self.key_for(token)?;
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &key.validation).ok()?;
        let verified = Verified {
            token: Box::from(token),
            tenant: match data.claims.get(&self.claim) {
                Some(Value::String(s)) => Some(Box::from(s.as_str())),
                _ => None,
            },
            // `exp` is required (a token without a numeric one never verifies).
            exp: data.claims.get("exp")?.as_f64()?,
            nbf: match data.claims.get("nbf") {
                None => None,
                Some(nbf) => Some(nbf.as_f64()?),
            },
        };
        let answer = verified.answer(now_unix);
        self.cache.put(verified);
        answer
    }

    fn key_for(&self, token: &str) -> Option<&VerifyingKey> {
        match &self.keys {
            Keys::Hs256(key) => Some(key),
            Keys::Jwks(keys) => {
                let header = jsonwebtoken::decode_header(token).ok()?;
                match header.kid {
                    Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid.as_str())),
                    // Without a kid only an unambiguous set will do.
                    None if keys.len() == 1 => keys.first(),
                    None => None,
                }
            }
        }
    }
}

// === impl TokenCache ===

impl TokenCache {
    fn new() -> TokenCache {
        TokenCache {
            slots: (0..CACHE_SLOTS).map(|_| ArcSwapOption::empty()).collect(),
            hasher: foldhash::fast::FixedState::with_seed(rand::random()),
        }
    }

    fn slot(&self, token: &str) -> Option<&ArcSwapOption<Verified>> {
        let index = self.hasher.hash_one(token) as usize % self.slots.len();
        self.slots.get(index)
    }

    fn get(&self, token: &str) -> Option<Arc<Verified>> {
        self.slot(token)?
            .load_full()
            .filter(|known| *known.token == *token)
    }

    fn put(&self, verified: Verified) {
        if verified.token.len() > MAX_CACHED_LEN {
            return;
        }
        if let Some(slot) = self.slot(&verified.token) {
            slot.store(Some(Arc::new(verified)));
        }
    }
}

impl Verified {
    /// The tenant, if the token's times hold at `now`.
    fn answer(&self, now: u64) -> Option<String> {
        times_hold(self.exp, self.nbf, now)?;
        self.tenant.as_deref().map(str::to_owned)
    }
}

fn strip_bearer(value: &str) -> &str {
    match value.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => value[7..].trim_start(),
        _ => value,
    }
}

/// `exp` required and not passed; `nbf`, when present, reached. Both numeric.
#[cfg(test)]
fn check_times(claims: &Map<String, Value>, now: u64) -> Option<()> {
    let exp = claims.get("exp")?.as_f64()?;
    let nbf = match claims.get("nbf") {
        None => None,
        Some(nbf) => Some(nbf.as_f64()?),
    };
    times_hold(exp, nbf, now)
}

/// `exp` not passed and `nbf` reached at `now`, within the leeway.
fn times_hold(exp: f64, nbf: Option<f64>, now: u64) -> Option<()> {
    if exp + (LEEWAY_SECS as f64) < now as f64 {
        return None;
    }
    if nbf.is_some_and(|nbf| nbf > (now + LEEWAY_SECS) as f64) {
        return None;
    }
    Some(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bearer_prefix() {
        assert_eq!(strip_bearer("Bearer abc"), "abc");
        assert_eq!(strip_bearer("bearer  abc"), "abc");
        assert_eq!(strip_bearer("abc"), "abc");
        assert_eq!(strip_bearer("Bear"), "Bear");
    }

    #[test]
    fn times() {
        let claims = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(check_times(&claims(serde_json::json!({"exp": 1000})), 1000).is_some());
        assert!(check_times(&claims(serde_json::json!({"exp": 1000})), 1060).is_some());
        assert!(check_times(&claims(serde_json::json!({"exp": 1000})), 1061).is_none());
        assert!(check_times(&claims(serde_json::json!({})), 0).is_none());
        assert!(check_times(&claims(serde_json::json!({"exp": "soon"})), 0).is_none());
        assert!(
            check_times(&claims(serde_json::json!({"exp": 5000, "nbf": 2000})), 1000).is_none()
        );
        assert!(
            check_times(&claims(serde_json::json!({"exp": 5000, "nbf": 1050})), 1000).is_some()
        );
    }
}
