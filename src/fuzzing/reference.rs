//! Input builders and simple reference models for the fuzz entry points.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, Method};
use sha2::Sha256;

use crate::compare::{
    Captured, CompareConfig, CompareRules, Diff, Kind, MAX_DIFFERENCES, diff_json, redact_json,
};
use crate::rules::valid_tenant_id;

// === JWT ===

pub const JWT_SECRET: &[u8] = b"switchyard-fuzz-secret";

/// An HS256 token over `claims` (any bytes) signed with [`JWT_SECRET`].
pub fn sign_hs256(claims: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims);
    let signing_input = format!("{header}.{payload}");
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(JWT_SECRET) else {
        return signing_input;
    };
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// The `org` of claims that are valid beyond doubt: a JSON object with only `org`, `exp`,
/// `sub` and `iat`, a valid tenant id in `org`, and an integer `exp` well in the future.
pub fn plainly_valid_org(claims: &[u8], now: SystemTime) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(claims).ok()?;
    let object = value.as_object()?;
    if !object
        .keys()
        .all(|k| matches!(k.as_str(), "org" | "exp" | "sub" | "iat"))
    {
        return None;
    }
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let exp = object.get("exp")?.as_u64()?;
    if exp < now + 3600 || exp > i64::MAX as u64 {
        return None;
    }
    if let Some(sub) = object.get("sub")
        && !sub.is_string()
    {
        return None;
    }
    if let Some(iat) = object.get("iat")
        && !iat.is_u64()
    {
        return None;
    }
    let org = object.get("org")?.as_str()?;
    valid_tenant_id(org).then(|| org.to_string())
}

// === routes ===

const STATIC: [&str; 4] = ["api", "a", "b", "x.y"];
const METHODS: [&str; 3] = ["GET", "POST", "PUT"];

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Static(&'static str),
    Param,
    CatchAll,
}

/// A route: its path patterns and, when restricted, its methods.
type RouteSpec = (Vec<Vec<Segment>>, Option<Vec<&'static str>>);

/// A route table and requests, built from fuzz bytes.
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<RouteSpec>,
    pub requests: Vec<(Method, String)>,
}

impl RouteTable {
    pub fn build(data: &[u8]) -> Option<RouteTable> {
        let mut bytes = data.iter().copied();
        let mut next = move || bytes.next();
        let count = next()? % 6 + 1;
        let mut routes = Vec::new();
        for _ in 0..count {
            let shape = next()?;
            let mut patterns = Vec::new();
            for _ in 0..=(shape & 1) {
                let spec = next()?;
                let len = spec % 4;
                let mut segments = Vec::new();
                for i in 0..len {
                    let pick = (spec >> (2 + 2 * i)) & 3;
                    segments.push(match pick {
                        0 | 1 => Segment::Static(STATIC[usize::from(next()? % 4)]),
                        _ => Segment::Param,
                    });
                }
                if spec & 0x80 != 0 {
                    segments.push(Segment::CatchAll);
                }
                patterns.push(segments);
            }
            let methods = match (shape >> 1) & 7 {
                0 => None,
                m => Some(
                    METHODS
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| (m >> i) & 1 == 1)
                        .map(|(_, m)| *m)
                        .collect(),
                ),
            };
            routes.push((patterns, methods));
        }
        let mut requests = Vec::new();
        while let Some(spec) = next() {
            let method = Method::from_bytes(METHODS[usize::from(spec % 3)].as_bytes()).ok()?;
            let len = (spec >> 2) % 5;
            let mut path = String::new();
            for _ in 0..len {
                path.push('/');
                let pick = next().unwrap_or(0);
                path.push_str(match pick % 6 {
                    0..=3 => STATIC[usize::from(pick % 4)],
                    4 => "c",
                    _ => "",
                });
            }
            if spec & 0x80 != 0 || path.is_empty() {
                path.push('/');
            }
            requests.push((method, path));
            if requests.len() == 8 {
                break;
            }
        }
        Some(RouteTable { routes, requests })
    }

    fn pattern_text(segments: &[Segment]) -> String {
        let mut out = String::new();
        for s in segments {
            out.push('/');
            out.push_str(match s {
                Segment::Static(s) => s,
                Segment::Param => "{id}",
                Segment::CatchAll => "{*rest}",
            });
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// The table as a config file.
    pub fn config(&self) -> String {
        let mut text = String::from(
            "[listen]\nhttp = \"127.0.0.1:0\"\n[upstreams.legacy]\norigins = [\"http://127.0.0.1:9\"]\n[default]\nupstream = \"legacy\"\n",
        );
        for (i, (patterns, methods)) in self.routes.iter().enumerate() {
            let paths: Vec<String> = patterns
                .iter()
                .map(|p| format!("{:?}", Self::pattern_text(p)))
                .collect();
            text.push_str(&format!(
                "[[routes]]\nname = \"r{i}\"\npath = [{}]\nlegacy = \"legacy\"\n",
                paths.join(", ")
            ));
            if let Some(methods) = methods {
                let list: Vec<String> = methods.iter().map(|m| format!("{m:?}")).collect();
                text.push_str(&format!("methods = [{}]\n", list.join(", ")));
            }
        }
        text
    }

    /// Names of the routes that match `method` and `path` by the reference.
    pub fn matching(&self, method: &Method, path: &str) -> Vec<String> {
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, (patterns, methods))| {
                methods
                    .as_ref()
                    .is_none_or(|m| m.contains(&method.as_str()))
                    && patterns.iter().any(|p| pattern_matches(p, path))
            })
            .map(|(i, _)| format!("r{i}"))
            .collect()
    }
}

/// `{id}` is one non-empty segment, `{*rest}` one or more characters to the end.
fn pattern_matches(pattern: &[Segment], path: &str) -> bool {
    match path.strip_prefix('/') {
        Some(rest) if pattern.is_empty() => rest.is_empty(),
        Some(rest) => segments_match(pattern, rest),
        None => false,
    }
}

/// `rest` is the path after the `/` that precedes the pattern's first segment.
fn segments_match(pattern: &[Segment], rest: &str) -> bool {
    let Some((segment, tail)) = pattern.split_first() else {
        return false;
    };
    let (head, after) = match rest.split_once('/') {
        Some((head, after)) => (head, Some(after)),
        None => (rest, None),
    };
    let fits = match segment {
        Segment::CatchAll => return !rest.is_empty(),
        Segment::Static(s) => head == *s,
        Segment::Param => !head.is_empty(),
    };
    match (fits, tail.is_empty(), after) {
        (false, _, _) => false,
        (true, true, None) => true,
        (true, false, Some(after)) => segments_match(tail, after),
        (true, _, _) => false,
    }
}

// === framing ===

/// Read sizes from a seed: 1 to 17 bytes, in a fixed pseudo-random order.
pub fn splits(seed: u8) -> impl Iterator<Item = usize> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    std::iter::from_fn(move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        Some((state % 17) as usize + 1)
    })
}

/// Well-formed requests built from `data` (the bodies carry arbitrary bytes, heads only safe
/// ones), serialized; and how many there are.
pub fn well_formed_requests(data: &[u8]) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut count = 0;
    let mut bytes = data;
    while let [spec, len, rest @ ..] = bytes {
        let body_len = usize::from(*len % 40).min(rest.len());
        let (body, tail) = rest.split_at(body_len);
        bytes = tail;
        count += 1;
        if spec & 0x40 != 0 {
            out.extend_from_slice(b"\r\n");
        }
        let http10 = spec & 3 == 3;
        let method = ["GET", "POST", "PUT", "POST"][usize::from(spec & 3)];
        out.extend_from_slice(method.as_bytes());
        out.extend_from_slice(format!(" /r{count}?q={spec} ").as_bytes());
        out.extend_from_slice(if http10 {
            b"HTTP/1.0\r\n"
        } else {
            b"HTTP/1.1\r\n"
        });
        out.extend_from_slice(b"Host: example.com\r\nX-Spec:\t");
        out.extend_from_slice(spec.to_string().as_bytes());
        out.extend_from_slice(b" \r\n");
        if http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        match (spec >> 2) & 3 {
            0 if body.is_empty() => out.extend_from_slice(b"\r\n"),
            1 | 2 if !http10 => {
                let case = if spec & 0x80 != 0 {
                    "Chunked"
                } else {
                    "chunked"
                };
                out.extend_from_slice(format!("Transfer-Encoding: {case}\r\n\r\n").as_bytes());
                for (i, chunk) in body.chunks(usize::from(spec % 7) + 1).enumerate() {
                    out.extend_from_slice(format!("{:x}", chunk.len()).as_bytes());
                    if i % 2 == 1 {
                        out.extend_from_slice(b";ext=\"v\"");
                    }
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n");
                if spec & 0x10 != 0 {
                    out.extend_from_slice(b"X-Trailer: done\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
            _ => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
        }
    }
    (out, count)
}

// === diff ===

const CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "text/plain",
    "application/octet-stream",
    "application/problem+json",
];
const ENCODINGS: [Option<&str>; 4] = [None, Some("gzip"), Some("br"), Some("deflate")];

fn compare_rules(selector: u8) -> CompareRules {
    let pick = |bit: u8, paths: &[&str]| -> Vec<String> {
        if selector & bit != 0 {
            paths.iter().map(|p| p.to_string()).collect()
        } else {
            Vec::new()
        }
    };
    let mut cfg = CompareConfig {
        ignore: pick(1, &["/a", "/*/b", "header:content-type"]),
        unordered: pick(2, &["/tags", "/*"]),
        redact: pick(4, &["/id", "/*/secret"]),
        subset: selector & 8 != 0,
        tolerance: (selector & 16 != 0).then_some(0.5),
        ..CompareConfig::default()
    };
    if selector & 32 != 0 {
        cfg.keyed.insert("/items".into(), "id".into());
        cfg.keyed.insert("/*/list".into(), "/k".into());
    }
    CompareRules::compile(&cfg).unwrap_or_default()
}

fn captured(body: &[u8], content_type: &'static str, encoding: Option<&'static str>) -> Captured {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    if let Some(e) = encoding {
        headers.insert("content-encoding", HeaderValue::from_static(e));
    }
    Captured {
        status: 200,
        headers,
        body: Bytes::copy_from_slice(body),
        truncated: false,
    }
}

fn counts(d: &Diff, swap: bool) -> BTreeMap<Kind, usize> {
    let mut out = BTreeMap::new();
    for x in &d.differences {
        let kind = match (swap, x.kind) {
            (true, Kind::Missing) => Kind::Extra,
            (true, Kind::Extra) => Kind::Missing,
            (_, k) => k,
        };
        *out.entry(kind).or_insert(0) += 1;
    }
    out
}

/// See [`super::diff`].
pub fn diff(data: &[u8]) {
    let [shape, selector, rest @ ..] = data else {
        return;
    };
    let (body_a, body_b) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, rest),
    };
    let ct = |n: u8| CONTENT_TYPES[usize::from(n) % CONTENT_TYPES.len()];
    let enc = ENCODINGS[usize::from(shape >> 4) % ENCODINGS.len()];
    let a = captured(body_a, ct(shape & 3), enc);
    let b = captured(body_b, ct((shape >> 2) & 3), enc);
    let rules = compare_rules(*selector);

    let ab = crate::compare::diff(&a, &b, &rules);
    assert!(ab.differences.len() <= MAX_DIFFERENCES);
    assert!(
        crate::compare::diff(&a, &a, &rules).is_empty(),
        "a response differs from itself"
    );
    let symmetric = *selector & (8 | 16) == 0;
    let ba = crate::compare::diff(&b, &a, &rules);
    if symmetric && !ab.truncated && !ba.truncated {
        assert_eq!(
            counts(&ab, false),
            counts(&ba, true),
            "asymmetric: {ab:#?} vs {ba:#?}"
        );
    }
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body_a) {
        assert!(diff_json(&v, &v, &rules).is_empty());
        redact_json(&mut v, &rules, b"fuzz-key");
        assert!(diff_json(&v, &v, &rules).is_empty());
    }
}
