//! Body comparison: decode, pick JSON / text / binary from the content types, compare.
//!
//! - Byte-equal bodies (after decoding) match without parsing.
//! - JSON when either side's content type says JSON (`application/json`, `*/*+json`,
//!   `text/json`) and both parse; when both claim JSON and one does not parse, one `body`
//!   difference. When neither parses, they are compared as text.
//! - JSON too, whatever the content types, when both bodies start like a JSON object or array
//!   and both parse (*sniffed*; [`body_mode`] tells which way a pair was compared).
//! - Text (`text/*`, XML, JavaScript, form data, YAML, NDJSON…, or no content type at all with
//!   a UTF-8 body) line by line with `similar`: one `text` difference summarising the first
//!   differing line on each side and how many lines differ. Text that is not UTF-8 is binary.
//! - Anything else by SHA-256 digest: one `binary` difference.
//! - A body cut at `max_body` is compared only as far as it goes: both cut and byte-equal is
//!   a match, anything else one `body` difference.

use std::fmt::Write as _;
use std::ops::ControlFlow::{self, Continue};
use std::time::Duration;

use http::HeaderMap;
use http::header::CONTENT_TYPE;
use serde::Serialize;
use sha2::{Digest, Sha256};
use similar::{Algorithm, DiffOp, TextDiff};

use super::parse::parse;
use super::tape::Tape;
use super::{Captured, CompareRules, Kind, Sink, json};
use crate::compare::decode::decode_with_limit;

type Flow = ControlFlow<()>;

/// Line diffs of very large, very different texts give up on minimality after this long
/// (similar then returns a correct but coarser diff).
const TEXT_DIFF_TIMEOUT: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Json,
    Text,
    Binary,
}

pub(crate) fn compare_body(
    p: &Captured,
    s: &Captured,
    rules: &CompareRules,
    sink: &mut Sink,
) -> Flow {
    if p.truncated || s.truncated {
        if p.truncated && s.truncated && p.body == s.body {
            return Continue(());
        }
        return sink.push_at(
            Kind::Body,
            "body",
            Some(describe_cut(p)),
            Some(describe_cut(s)),
        );
    }
    let decoded = |c: &Captured| {
        decode_with_limit(&c.headers, &c.body, rules.max_decoded)
            .map(|d| d.unwrap_or_else(|| c.body.clone()))
    };
    let (a, b) = match (decoded(p), decoded(s)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(ea), Err(eb)) => {
            let (ea, eb) = (ea.to_string(), eb.to_string());
            if ea == eb && p.body == s.body {
                return Continue(());
            }
            return sink.push_at(Kind::Body, "body", Some(ea), Some(eb));
        }
        (Err(e), Ok(b)) => {
            return sink.push_at(Kind::Body, "body", Some(e.to_string()), Some(len(&b)));
        }
        (Ok(a), Err(e)) => {
            return sink.push_at(Kind::Body, "body", Some(len(&a)), Some(e.to_string()));
        }
    };
    if a == b {
        return Continue(());
    }
    match plan(&p.headers, &s.headers, &a, &b) {
        Plan::Json { a, b, .. } => json::diff_tapes(&a, &b, rules, sink),
        Plan::InvalidJson { primary, shadow } => {
            sink.push_at(Kind::Body, "body", Some(primary), Some(shadow))
        }
        Plan::Text(ta, tb) => compare_text(ta, tb, sink),
        Plan::Binary => sink.push_at(Kind::Binary, "body", Some(digest(&a)), Some(digest(&b))),
    }
}

/// How the bodies of a pair were compared (for the sample view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyMode {
    /// Byte-equal after decoding: nothing to compare.
    Equal,
    /// Structurally, as a content type says.
    Json,
    /// Structurally although neither content type says JSON: both bodies parse as a JSON
    /// object or array.
    JsonSniffed,
    /// A content type says JSON and one body does not parse: one `body` difference.
    InvalidJson,
    /// Line by line.
    Text,
    /// By digest.
    Binary,
    /// Cut at `max_body`, or not decodable: compared as received.
    AsReceived,
}

// === impl BodyMode ===

impl BodyMode {
    /// A short phrase for people: `compared as JSON (sniffed)`.
    pub fn describe(self) -> &'static str {
        match self {
            BodyMode::Equal => "bodies are byte-equal",
            BodyMode::Json => "compared as JSON",
            BodyMode::JsonSniffed => {
                "compared as JSON (sniffed: no JSON content type, both bodies parse)"
            }
            BodyMode::InvalidJson => "JSON expected, one body does not parse",
            BodyMode::Text => "compared as text, line by line",
            BodyMode::Binary => "compared as binary, by digest",
            BodyMode::AsReceived => "compared as received (cut at max_body or not decodable)",
        }
    }
}

/// How [`compare_body`] compares the bodies of `p` and `s`.
pub fn body_mode(p: &Captured, s: &Captured, rules: &CompareRules) -> BodyMode {
    if p.truncated || s.truncated {
        return BodyMode::AsReceived;
    }
    let decoded = |c: &Captured| {
        decode_with_limit(&c.headers, &c.body, rules.max_decoded)
            .map(|d| d.unwrap_or_else(|| c.body.clone()))
    };
    let (Ok(a), Ok(b)) = (decoded(p), decoded(s)) else {
        return BodyMode::AsReceived;
    };
    if a == b {
        return BodyMode::Equal;
    }
    match plan(&p.headers, &s.headers, &a, &b) {
        Plan::Json { sniffed: false, .. } => BodyMode::Json,
        Plan::Json { sniffed: true, .. } => BodyMode::JsonSniffed,
        Plan::InvalidJson { .. } => BodyMode::InvalidJson,
        Plan::Text(..) => BodyMode::Text,
        Plan::Binary => BodyMode::Binary,
    }
}

/// What to do with two decoded bodies that differ.
enum Plan<'a> {
    Json {
        a: Tape<'a>,
        b: Tape<'a>,
        sniffed: bool,
    },
    InvalidJson {
        primary: String,
        shadow: String,
    },
    Text(&'a str, &'a str),
    Binary,
}

/// JSON when a content type says so and both parse; else JSON when both bodies *look* like a
/// JSON object or array and parse (a service that sends JSON as `text/plain` or with no
/// content type still gets a structural comparison — the bodies are already bounded by
/// `max_body` and the decode limit, and a parse fails fast on text); else text or binary.
fn plan<'a>(ha: &HeaderMap, hb: &HeaderMap, a: &'a [u8], b: &'a [u8]) -> Plan<'a> {
    let (ca, cb) = (class_of(ha, a), class_of(hb, b));
    let declared = ca == Class::Json || cb == Class::Json;
    if declared || (looks_like_json(a) && looks_like_json(b)) {
        match (parse(a), parse(b)) {
            (Ok(a), Ok(b)) => {
                return Plan::Json {
                    a,
                    b,
                    sniffed: !declared,
                };
            }
            (Err(e), Ok(_)) if ca == Class::Json && cb == Class::Json => {
                return Plan::InvalidJson {
                    primary: format!("invalid JSON: {e}"),
                    shadow: "valid JSON".into(),
                };
            }
            (Ok(_), Err(e)) if ca == Class::Json && cb == Class::Json => {
                return Plan::InvalidJson {
                    primary: "valid JSON".into(),
                    shadow: format!("invalid JSON: {e}"),
                };
            }
            _ => {}
        }
    }
    if ca != Class::Binary
        && cb != Class::Binary
        && let (Ok(ta), Ok(tb)) = (std::str::from_utf8(a), std::str::from_utf8(b))
    {
        return Plan::Text(ta, tb);
    }
    Plan::Binary
}

/// A body starting (after whitespace) with `{` or `[`: worth trying as JSON. Bare scalars
/// (`42`, `"ok"`, `true`) parse as JSON too but are better compared as text.
fn looks_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|c| !c.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

fn class_of(headers: &HeaderMap, body: &[u8]) -> Class {
    let Some(ct) = headers.get(CONTENT_TYPE) else {
        return if std::str::from_utf8(body).is_ok() {
            Class::Text
        } else {
            Class::Binary
        };
    };
    let ct = String::from_utf8_lossy(ct.as_bytes());
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "text/json" => Class::Json,
        e if e.ends_with("+json") => Class::Json,
        e if e.starts_with("text/") || e.ends_with("+xml") => Class::Text,
        "application/xml"
        | "application/javascript"
        | "application/ecmascript"
        | "application/x-www-form-urlencoded"
        | "application/x-ndjson"
        | "application/jsonl"
        | "application/yaml"
        | "application/x-yaml"
        | "application/graphql"
        | "application/csv" => Class::Text,
        _ => Class::Binary,
    }
}

/// One `text` difference: per side, how many lines only that side has and the first of them.
fn compare_text(a: &str, b: &str, sink: &mut Sink) -> Flow {
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .timeout(TEXT_DIFF_TIMEOUT)
        .diff_lines(a, b);
    let mut first: Option<(usize, usize)> = None;
    let (mut only_a, mut only_b) = (0usize, 0usize);
    for op in diff.ops() {
        let (old_index, new_index, old_len, new_len) = match *op {
            DiffOp::Equal { .. } => continue,
            DiffOp::Delete {
                old_index,
                old_len,
                new_index,
            } => (old_index, new_index, old_len, 0),
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => (old_index, new_index, 0, new_len),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => (old_index, new_index, old_len, new_len),
        };
        first.get_or_insert((old_index, new_index));
        only_a += old_len;
        only_b += new_len;
    }
    let Some((line_a, line_b)) = first else {
        return Continue(());
    };
    let side = |lines: &[&str], at: usize, only: usize| {
        let mut s = format!("line {}, {only} of {} lines differ", at + 1, lines.len());
        if only > 0 {
            let text = lines
                .get(at)
                .map_or("", |l| l.trim_end_matches(['\n', '\r']));
            let _ = write!(s, ": {text}");
        }
        s
    };
    sink.push_at(
        Kind::Text,
        "body",
        Some(side(diff.old_slices(), line_a, only_a)),
        Some(side(diff.new_slices(), line_b, only_b)),
    )
}

fn digest(body: &[u8]) -> String {
    format!(
        "sha256:{} ({} bytes)",
        hex::encode(Sha256::digest(body)),
        body.len()
    )
}

fn len(body: &[u8]) -> String {
    format!("{} bytes", body.len())
}

fn describe_cut(c: &Captured) -> String {
    if c.truncated {
        format!("cut at {} bytes (max_body)", c.body.len())
    } else {
        format!("{} bytes", c.body.len())
    }
}
