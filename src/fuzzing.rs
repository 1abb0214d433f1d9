//! Fuzz entry points, shared by every engine that drives them: the corpus replay and the
//! random runs of `tests/fuzz.rs` (stable `cargo test`), and the libFuzzer targets of `fuzz/`.
//!
//! Each function takes arbitrary bytes, never panics on them, and panics only when an
//! invariant breaks — that panic is the finding. Not part of the supported API.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::framing::{Fault, Finding, Scanner};
use crate::rules::{RequestView, RuleSet, valid_tenant_id};

mod reference;

/// A fuzz entry point.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, for the engines that pick one at run time.
pub const TARGETS: [(&str, Target); 5] = [
    ("config", config),
    ("tenant", tenant),
    ("matcher", matcher),
    ("diff", diff),
    ("framing", framing),
];

/// A fixed clock: decisions must not depend on when the fuzzer runs.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// A directory holding the files the fixed configs name (an HS256 secret).
fn workdir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("switchyard-fuzz-{}", std::process::id()));
        // A failure here shows up as a config error in the first run, not as a finding.
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("hs256.key"), reference::JWT_SECRET);
        dir
    })
}

// === config ===

/// The config loader: any text yields rules or errors, errors point inside the file, and the
/// same text always compiles to the same rules.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Configs name files; special files (an endless /dev/zero) are the operator's business.
    if ["/dev", "/proc", "/sys"].iter().any(|p| text.contains(p)) {
        return;
    }
    let path = workdir().join("fuzz.toml");
    match crate::config::load_str(text, &path) {
        Ok(rules) => {
            let again = crate::config::load_str(text, &path);
            assert!(
                again.as_ref().is_ok_and(|r| r.hash == rules.hash),
                "the same text compiled twice differs"
            );
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error list without errors");
            let lines = text.split('\n').count();
            for e in &errors.0 {
                assert!(e.line >= 1 && e.col >= 1, "position 0 in {e}");
                assert!(!e.message.is_empty(), "an empty message at {e}");
                if e.file == path {
                    assert!(
                        e.line <= lines,
                        "line {} of a {lines}-line file: {e}",
                        e.line
                    );
                }
            }
        }
    }
}

// === tenant ===

fn tenant_rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| {
        let text = r#"
[listen]
http = "127.0.0.1:0"
[tenant]
sources = [
  { jwt_claim = "org", header = "authorization", hs256_secret_file = "hs256.key" },
  { header = "x-tenant-id" },
  { host = "{tenant}.app.example.com" },
  { path = "/t/{tenant}/" },
  { cookie = "tenant" },
]
[upstreams.legacy]
origins = ["http://127.0.0.1:9"]
[upstreams.new]
origins = ["http://127.0.0.1:10"]
[default]
upstream = "legacy"
[[routes]]
name = "all"
path = ["/", "/{*rest}"]
legacy = "legacy"
new = "new"
percent = 50
"#;
        match crate::config::load_str(text, &workdir().join("tenant.toml")) {
            Ok(rules) => rules,
            Err(e) => panic!("the tenant harness config does not load: {e}"),
        }
    })
}

/// Tenant extraction through `RuleSet::decide` on a crafted request. Layout: byte 0 holds
/// flags (bit 0: add a JWT signed with the configured secret), then the request as text
/// (`METHOD TARGET` line, then `name: value` lines) up to a 0xff byte, then the JWT's claims.
/// A token signed with the right key whose claims are plainly valid must yield its `org`.
pub fn tenant(data: &[u8]) {
    let [flags, rest @ ..] = data else { return };
    let (head, claims) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Some((method, uri, mut headers)) = request_head(head) else {
        return;
    };
    if flags & 1 == 1 {
        let token = reference::sign_hs256(claims);
        let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) else {
            return;
        };
        headers.insert(http::header::AUTHORIZATION, value);
    }
    let rules = tenant_rules();
    let view = RequestView {
        method: &method,
        uri: &uri,
        headers: &headers,
        peer: None,
        sample: u16::from(*flags) * 39,
    };
    let first = rules.decide(&view, now());
    let again = rules.decide(&view, now());
    assert_eq!(
        first.tenant, again.tenant,
        "the tenant changed between two calls"
    );
    assert_eq!(first.side, again.side, "the side changed between two calls");
    if let Some(t) = &first.tenant {
        assert!(valid_tenant_id(t), "invalid tenant id {t:?}");
    }
    if flags & 1 == 1
        && let Some(org) = reference::plainly_valid_org(claims, now())
    {
        assert_eq!(
            first.tenant.as_deref(),
            Some(org.as_str()),
            "a valid signed token did not yield its claim"
        );
    }
}

/// `METHOD TARGET` then `name: value` lines; `None` when the head is not a valid request.
fn request_head(text: &[u8]) -> Option<(Method, Uri, HeaderMap)> {
    let text = std::str::from_utf8(text).ok()?;
    let mut lines = text.split('\n');
    let mut start = lines.next()?.splitn(2, ' ');
    let method = Method::from_bytes(start.next()?.as_bytes()).ok()?;
    let uri: Uri = start.next()?.trim_end().parse().ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    Some((method, uri, headers))
}

// === matcher ===

/// The route matcher against a reference: route tables and request paths built from the bytes
/// (static segments, `{id}` and a final `{*rest}`; method lists). A found route must match the
/// request by the reference, and when no route is found no route may match.
pub fn matcher(data: &[u8]) {
    let Some(table) = reference::RouteTable::build(data) else {
        return;
    };
    let path = workdir().join("matcher.toml");
    // Conflicting patterns are config errors, reported as such: nothing to match then.
    let Ok(rules) = crate::config::load_str(&table.config(), &path) else {
        return;
    };
    let headers = HeaderMap::new();
    for (method, target) in &table.requests {
        let Ok(uri) = target.parse::<Uri>() else {
            continue;
        };
        let view = RequestView {
            method,
            uri: &uri,
            headers: &headers,
            peer: None,
            sample: 0,
        };
        let found = rules.decide(&view, now()).route.map(|r| r.name.clone());
        let matching: Vec<String> = table.matching(method, uri.path());
        match &found {
            Some(name) => assert!(
                matching.contains(name),
                "{method} {target}: found {name}, which does not match; matching {matching:?}\n{}",
                table.config()
            ),
            None => assert!(
                matching.is_empty(),
                "{method} {target}: no route found, but {matching:?} match\n{}",
                table.config()
            ),
        }
    }
}

// === diff ===

/// The JSON differ: never panics, a response equals itself, and without asymmetric rules the
/// differences of (a, b) and (b, a) agree kind by kind with missing and extra swapped. Layout:
/// byte 0 picks content types and encoding, byte 1 the rules, the rest is two bodies split at
/// the first 0xff.
pub fn diff(data: &[u8]) {
    reference::diff(data);
}

// === framing ===

/// The framing guard's scanner. Byte 0 picks the mode: even — arbitrary bytes, whose findings
/// must not depend on how the stream is split into reads (byte 1 seeds the splits); odd — a
/// stream of well-formed requests built from the bytes, which must pass with every request
/// counted, and must be flagged at the right request once an ambiguous one follows.
pub fn framing(data: &[u8]) {
    let [mode, seed, rest @ ..] = data else {
        return;
    };
    if mode & 1 == 0 {
        let whole = scan(rest, &mut std::iter::repeat(rest.len().max(1)));
        assert_eq!(
            scan(rest, &mut std::iter::repeat(1)),
            whole,
            "byte-by-byte reads change the verdict"
        );
        assert_eq!(
            scan(rest, &mut reference::splits(*seed)),
            whole,
            "read splits change the verdict"
        );
        return;
    }
    let (stream, count) = reference::well_formed_requests(rest);
    let (requests, finding) = scan(&stream, &mut reference::splits(*seed));
    assert_eq!(
        finding,
        None,
        "a well-formed stream was flagged: {:?}",
        String::from_utf8_lossy(&stream)
    );
    assert_eq!(requests, count, "requests miscounted");
    let mut smuggled = stream;
    smuggled.extend_from_slice(
        b"POST /next HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    let (_, finding) = scan(&smuggled, &mut reference::splits(seed.wrapping_add(1)));
    assert_eq!(
        finding,
        Some(Finding {
            request: count + 1,
            fault: Fault::Ambiguous
        }),
        "an ambiguous request after {count} good ones"
    );
}

fn scan(bytes: &[u8], sizes: &mut dyn Iterator<Item = usize>) -> (u64, Option<Finding>) {
    let mut scanner = Scanner::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        scanner.feed(&rest[..n]);
        rest = &rest[n..];
    }
    (scanner.requests(), scanner.finding())
}
