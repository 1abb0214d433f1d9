//! Redaction: values at `redact` paths become `"redacted:<12 hex>"`, a truncated
//! HMAC-SHA256 of the value under a key, so equal values still compare equal while the value
//! itself never reaches storage. Credential headers are always replaced.
//!
//! The hashed bytes are a canonical rendering of the value — object keys sorted, integral
//! numbers written as integers — so `1` and `1.0`, or the same object with its keys in another
//! order, hash alike.

use std::fmt::Write as _;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::pattern::{Frame, PatternSet, Step};
use super::rules::CompareRules;
use super::tape::{Tag, Tape};
use super::value::{Num, push_json_str};

/// Headers that carry credentials: their values are never stored, compared or rendered.
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "proxy-authorization",
    "set-cookie",
];

/// What a credential header's value is replaced by.
pub const REDACTED_HEADER: &str = "redacted";

/// Hex digits kept from the MAC (48 bits: collisions between two different values at one path
/// are negligible, and the short form keeps rendered differences readable).
const HEX_DIGITS: usize = 12;

/// Canonical renderings stop descending here; values from parsed bodies never get this deep
/// (the parser limits nesting to 256).
const MAX_CANONICAL_DEPTH: usize = 256;

/// A keyed HMAC-SHA256, keyed once and cloned per value.
#[derive(Clone)]
pub(crate) struct RedactKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for RedactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedactKey(..)")
    }
}

// === impl RedactKey ===

impl RedactKey {
    pub(crate) fn new(key: &[u8]) -> Self {
        // HMAC zero-pads keys up to the block size and hashes longer ones first (RFC 2104);
        // doing that here uses the infallible fixed-size constructor.
        let mut block = [0u8; 64];
        if key.len() <= block.len() {
            block[..key.len()].copy_from_slice(key);
        } else {
            block[..32].copy_from_slice(&Sha256::digest(key));
        }
        RedactKey {
            mac: <Hmac<Sha256> as KeyInit>::new(&block.into()),
        }
    }

    /// `redacted:` followed by the first hex digits of the MAC of `bytes`.
    pub(crate) fn tag(&self, bytes: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(bytes);
        let out = mac.finalize().into_bytes();
        let mut s = String::with_capacity(9 + HEX_DIGITS);
        s.push_str("redacted:");
        for b in out.iter().take(HEX_DIGITS / 2) {
            let _ = write!(s, "{b:02x}");
        }
        s
    }

    /// The redacted form of a JSON value.
    pub(crate) fn tag_value(&self, v: &Value) -> String {
        match Tape::from_value(v) {
            Ok(t) => self.tag_node(&t, 0),
            Err(_) => self.tag(b"\0document too large"),
        }
    }

    /// The redacted form of node `v` of a tape.
    pub(crate) fn tag_node(&self, t: &Tape<'_>, v: usize) -> String {
        let mut buf = String::new();
        canonical(t, v, &mut buf, 0);
        self.tag(buf.as_bytes())
    }
}

fn canonical(t: &Tape<'_>, v: usize, out: &mut String, depth: usize) {
    match t.tag(v) {
        Tag::Null => out.push_str("null"),
        Tag::True => out.push_str("true"),
        Tag::False => out.push_str("false"),
        Tag::Int | Tag::Uint | Tag::Float => match t.num(v) {
            Num::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Num::Float(f) => {
                let _ = write!(out, "{f:e}");
            }
        },
        Tag::Str => push_json_str(out, t.str(v)),
        Tag::Arr => {
            out.push('[');
            if depth < MAX_CANONICAL_DEPTH {
                for (i, item) in t.items(v).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(t, item, out, depth + 1);
                }
            }
            out.push(']');
        }
        Tag::Obj => {
            // Sorted, so member order (which depends on the producer) does not matter.
            let mut entries: Vec<(&str, usize)> = t.entries(v).collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            if depth < MAX_CANONICAL_DEPTH {
                for (i, (k, item)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_str(out, k);
                    out.push(':');
                    canonical(t, item, out, depth + 1);
                }
            }
            out.push('}');
        }
    }
}

/// Replaces every value at a `redact` path of `rules` by `"redacted:<hex>"`, keyed by `key`
/// (use [`process_key`](super::process_key) or a configured key). A pattern covers the whole
/// node it names: redacting `/owner` hashes the entire owner object.
pub fn redact_json(value: &mut Value, rules: &CompareRules, key: &[u8]) {
    if !rules
        .patterns
        .has_role(|r| r == super::pattern::Role::Redact)
    {
        return;
    }
    let key = RedactKey::new(key);
    let mut arena = Vec::new();
    let root = rules.patterns.root(&mut arena);
    redact_node(value, &rules.patterns, &mut arena, root, 0, &key);
}

fn redact_node(
    value: &mut Value,
    patterns: &PatternSet,
    arena: &mut Vec<u16>,
    frame: Frame,
    depth: usize,
    key: &RedactKey,
) {
    // Frames empty out once no pattern can match below, which bounds the recursion by the
    // longest pattern (at most 128 segments).
    if frame.is_empty() {
        return;
    }
    let visit = |child: &mut Value, step: Step<'_>, arena: &mut Vec<u16>| {
        let mark = arena.len();
        let (cf, flags) = patterns.step(arena, frame, depth, step);
        if flags.redacted {
            *child = Value::String(key.tag_value(child));
        } else {
            redact_node(child, patterns, arena, cf, depth + 1, key);
        }
        arena.truncate(mark);
    };
    match value {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                visit(child, Step::Key(k), arena);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                visit(child, Step::Index(i), arena);
            }
        }
        _ => {}
    }
}

/// Replaces the values of credential headers ([`CREDENTIAL_HEADERS`]) by `"redacted"`. Names
/// are matched case-insensitively.
pub fn redact_headers(headers: &mut [(String, String)]) {
    for (name, value) in headers.iter_mut() {
        if is_credential(name) {
            *value = REDACTED_HEADER.to_owned();
        }
    }
}

/// [`redact_headers`], plus the `redact = ["header:<name>"]` entries of `rules`, whose values
/// become keyed hashes.
pub fn redact_headers_with(headers: &mut [(String, String)], rules: &CompareRules, key: &[u8]) {
    redact_headers(headers);
    if rules.redact_headers.is_empty() {
        return;
    }
    let key = RedactKey::new(key);
    for (name, value) in headers.iter_mut() {
        if !is_credential(name)
            && rules
                .redact_headers
                .iter()
                .any(|h| h.as_str().eq_ignore_ascii_case(name))
        {
            *value = key.tag(value.as_bytes());
        }
    }
}

/// Replaces the values of credential headers in a header map by `"redacted"`.
pub fn redact_header_map(headers: &mut HeaderMap) {
    for name in CREDENTIAL_HEADERS {
        if headers.contains_key(*name) {
            headers.insert(*name, HeaderValue::from_static(REDACTED_HEADER));
        }
    }
}

pub(crate) fn is_credential(name: &str) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::compare::CompareConfig;
    use serde_json::json;

    fn rules(redact: &[&str]) -> CompareRules {
        let cfg = CompareConfig {
            redact: redact.iter().map(|s| s.to_string()).collect(),
            ..CompareConfig::default()
        };
        CompareRules::compile(&cfg).unwrap()
    }

    #[test]
    fn hmac_matches_rfc_4231_vector() {
        // RFC 4231 test case 2: key "Jefe".
        let key = RedactKey::new(b"Jefe");
        assert_eq!(
            key.tag(b"what do ya want for nothing?"),
            "redacted:5bdcc146bf60"
        );
        // Test case 6: a 131-byte key is hashed first.
        let long = RedactKey::new(&[0xaa; 131]);
        assert_eq!(
            long.tag(b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "redacted:60e431591ee0"
        );
    }

    #[test]
    fn redacts_wildcard_paths_and_whole_subtrees() {
        let r = rules(&["/owner", "/items/*/card"]);
        let mut v = json!({
            "owner": {"email": "a@example.com", "name": "A"},
            "items": [{"card": "4111", "qty": 1}, {"card": "5500", "qty": 2}],
            "keep": "me"
        });
        redact_json(&mut v, &r, b"k");
        let owner = v["owner"].as_str().unwrap();
        assert!(
            owner.starts_with("redacted:") && owner.len() == 21,
            "{owner}"
        );
        assert!(
            v["items"][0]["card"]
                .as_str()
                .unwrap()
                .starts_with("redacted:")
        );
        assert_ne!(v["items"][0]["card"], v["items"][1]["card"]);
        assert_eq!(v["items"][1]["qty"], 2);
        assert_eq!(v["keep"], "me");
        assert!(!v.to_string().contains("4111"));
    }

    #[test]
    fn equal_values_hash_equal_and_keys_matter() {
        let r = rules(&["/x"]);
        let mut a = json!({"x": {"b": 1, "a": [1.0, "s"]}});
        let mut b = json!({"x": {"a": [1, "s"], "b": 1.0}});
        redact_json(&mut a, &r, b"key-1");
        redact_json(&mut b, &r, b"key-1");
        assert_eq!(a, b);
        let mut c = json!({"x": {"b": 1, "a": [1.0, "s"]}});
        redact_json(&mut c, &r, b"key-2");
        assert_ne!(a, c);
        let mut d = json!({"x": "1"});
        let mut e = json!({"x": 1});
        redact_json(&mut d, &r, b"key-1");
        redact_json(&mut e, &r, b"key-1");
        assert_ne!(d, e, "a string and a number are different values");
    }

    #[test]
    fn credential_headers_are_always_replaced() {
        let mut h = vec![
            ("Authorization".to_string(), "Bearer secret".to_string()),
            ("cookie".to_string(), "sid=1".to_string()),
            ("Set-Cookie".to_string(), "sid=2".to_string()),
            ("Proxy-Authorization".to_string(), "Basic x".to_string()),
            ("x-api-key".to_string(), "k123".to_string()),
            ("accept".to_string(), "*/*".to_string()),
        ];
        let r = rules(&["header:X-API-Key"]);
        redact_headers_with(&mut h, &r, b"k");
        for (name, value) in &h[..4] {
            assert_eq!(value, REDACTED_HEADER, "{name}");
        }
        assert!(h[4].1.starts_with("redacted:"));
        assert_eq!(h[5].1, "*/*");

        let mut map = HeaderMap::new();
        map.append("authorization", HeaderValue::from_static("Bearer a"));
        map.append("set-cookie", HeaderValue::from_static("a=1"));
        map.append("set-cookie", HeaderValue::from_static("b=2"));
        map.append("accept", HeaderValue::from_static("*/*"));
        redact_header_map(&mut map);
        assert_eq!(map.get_all("set-cookie").iter().count(), 1);
        assert_eq!(map["authorization"], REDACTED_HEADER);
        assert_eq!(map["accept"], "*/*");
    }
}
