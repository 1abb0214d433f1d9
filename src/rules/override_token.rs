//! Signed tester overrides for `x-switchyard-force`.
//!
//! A token is `"<side>.<expiry>.<mac>"`: the side (`new` or `legacy`), the expiry as Unix
//! seconds, and base64url (no padding) of HMAC-SHA256(secret, `"<side>.<expiry>"`). Only holders
//! of `[admin] override_secret_file` can mint one, and a token stops working at its expiry, so a
//! client can never pick a side by itself and a leaked token ages out.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Side;

type HmacSha256 = Hmac<Sha256>;

/// Longest token `verify` looks at: side (6) + dot + 20 digits + dot + 43 MAC characters fits
/// with room to spare; anything longer is rejected before any work.
const MAX_TOKEN_LEN: usize = 128;

/// A token forcing `side` until `expires_unix` (inclusive).
pub fn mint(secret: &[u8], side: Side, expires_unix: u64) -> String {
    let payload = format!("{}.{expires_unix}", side.as_str());
    let mac = URL_SAFE_NO_PAD.encode(sign(secret, payload.as_bytes()));
    format!("{payload}.{mac}")
}

/// The side a token forces, when it was minted with `secret` and has not expired at
/// `now_unix`. Expired, forged and malformed tokens give `None`. The MAC comparison is
/// constant-time.
pub fn verify(secret: &[u8], token: &str, now_unix: u64) -> Option<Side> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let (payload, mac_b64) = token.rsplit_once('.')?;
    let (side, expiry) = payload.split_once('.')?;
    let side = Side::parse(side)?;
    // Digits only: `u64::from_str` would also accept a leading '+'.
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let expiry: u64 = expiry.parse().ok()?;
    let mac = URL_SAFE_NO_PAD.decode(mac_b64).ok()?;
    let mut check = HmacSha256::new_from_slice(secret).ok()?;
    check.update(payload.as_bytes());
    check.verify_slice(&mac).ok()?;
    (now_unix <= expiry).then_some(side)
}

fn sign(secret: &[u8], payload: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail; an all-zero MAC would only make
    // every token unverifiable, never valid.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return [0; 32];
    };
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"override-secret-for-tests";

    #[test]
    fn valid_token_forces_its_side() {
        let token = mint(SECRET, Side::New, 1_000);
        assert!(token.starts_with("new.1000."));
        assert_eq!(verify(SECRET, &token, 999), Some(Side::New));
        assert_eq!(verify(SECRET, &token, 1_000), Some(Side::New));
        let token = mint(SECRET, Side::Legacy, 1_000);
        assert_eq!(verify(SECRET, &token, 10), Some(Side::Legacy));
    }

    #[test]
    fn expired_token_is_refused() {
        let token = mint(SECRET, Side::New, 1_000);
        assert_eq!(verify(SECRET, &token, 1_001), None);
    }

    #[test]
    fn forged_tokens_are_refused() {
        let token = mint(SECRET, Side::New, 1_000);
        // Another secret.
        assert_eq!(verify(b"another-secret", &token, 0), None);
        // Side flipped, expiry extended: the MAC no longer fits.
        let mac = token.rsplit_once('.').map(|(_, m)| m).unwrap_or_default();
        assert_eq!(verify(SECRET, &format!("legacy.1000.{mac}"), 0), None);
        assert_eq!(verify(SECRET, &format!("new.99999.{mac}"), 0), None);
        // Leading zeros change the signed bytes.
        assert_eq!(verify(SECRET, &format!("new.01000.{mac}"), 0), None);
        // One MAC character changed.
        let mut bytes = token.into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(verify(SECRET, &tampered, 0), None);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "new",
            "new.1000",
            "new..abc",
            "sideways.1000.AAAA",
            "new.+1000.AAAA",
            "new.-5.AAAA",
            "new.1000.not base64!",
            "new.1000.",
            &"x".repeat(500),
        ] {
            assert_eq!(verify(SECRET, bad, 0), None, "{bad:?}");
        }
    }
}
