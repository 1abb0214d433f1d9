//! Body comparison: decode, pick JSON / text / binary from the content types, compare.
//!
//! - Byte-equal bodies (after decoding) match without parsing.
//! - JSON when either side's content type says JSON (`application/json`, `*/*+json`,
//!   `text/json`) and both parse; when both claim JSON and one does not parse, one `body`
//!   difference. When neither parses, they are compared as text.
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
use sha2::{Digest, Sha256};
use similar::{Algorithm, DiffOp, TextDiff};

use super::parse::parse;
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
    let (ca, cb) = (class_of(&p.headers, &a), class_of(&s.headers, &b));
    if ca == Class::Json || cb == Class::Json {
        match (parse(&a), parse(&b)) {
            (Ok(va), Ok(vb)) => return json::diff_tapes(&va, &vb, rules, sink),
            (Err(e), Ok(_)) if ca == Class::Json && cb == Class::Json => {
                return sink.push_at(
                    Kind::Body,
                    "body",
                    Some(format!("invalid JSON: {e}")),
                    Some("valid JSON".into()),
                );
            }
            (Ok(_), Err(e)) if ca == Class::Json && cb == Class::Json => {
                return sink.push_at(
                    Kind::Body,
                    "body",
                    Some("valid JSON".into()),
                    Some(format!("invalid JSON: {e}")),
                );
            }
            _ => {}
        }
    }
    if ca != Class::Binary
        && cb != Class::Binary
        && let (Ok(ta), Ok(tb)) = (std::str::from_utf8(&a), std::str::from_utf8(&b))
    {
        return compare_text(ta, tb, sink);
    }
    sink.push_at(Kind::Binary, "body", Some(digest(&a)), Some(digest(&b)))
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
