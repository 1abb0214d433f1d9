//! The comparison engine: `diff(primary, shadow, &CompareRules) -> Diff`. Pure — no I/O, no
//! clock apart from a time cap on line diffs of huge texts — so it is unit-, property- and
//! fuzz-tested and benchmarked on its own.
//!
//! What is compared, in this order:
//! 1. **status**, exactly or by class (`status = "class"`);
//! 2. **headers** in [`DEFAULT_HEADERS`] plus `headers = [...]`, minus `ignore = ["header:…"]`,
//!    names case-insensitive, values normalised where the header's grammar allows (media type
//!    parameters, comma lists in any order); `date`, `server` and hop-by-hop headers never;
//! 3. **the body**, after `Content-Encoding` is decoded (bounded, see [`decode`]):
//!    JSON structurally when a side's content type says JSON and both sides parse — or, whatever
//!    the content types, when both bodies are a JSON object or array (sniffed; see
//!    [`body_mode`]) —, other text line by line, anything else by SHA-256 digest. When both
//!    sides claim JSON and only one parses, that is one `body` difference.
//!
//! JSON differences carry a [`Kind`], the exact RFC 6901 pointer and the pointer with array
//! indices collapsed (`/items/*/price`, for aggregation):
//! - `value`: same type, different value (numbers compare by value: `1` equals `1.0`; integers
//!   exactly, even beyond 2^53; optional absolute `tolerance`);
//! - `type`: different JSON types (`null` counts as a type);
//! - `missing` / `extra`: a key or element only the primary / only the shadow has (`extra` is
//!   dropped in `subset` mode);
//! - `size`: an ordered array of another length (its common prefix is still compared);
//! - `order`: an ordered array holding the same elements in another order (one difference);
//! - `body`: a subtree nested deeper than [`MAX_DEPTH`] that differs, reported once.
//!
//! Arrays are ordered unless listed in `unordered` (multisets: unmatched elements are paired in
//! order of appearance and compared, the rest are `missing`/`extra` at their own side's index)
//! or `keyed` (matched on a key field regardless of position; elements without the key are
//! paired in order of appearance). Inside those arrays element indices carry no meaning, so a
//! pattern segment below them matches elements only with `*`. Paths of matched elements use
//! the primary's index.
//!
//! At most [`MAX_DIFFERENCES`] differences are reported; then `truncated` is set and the walk
//! stops. Values in differences are rendered short (≤ [`MAX_RENDERED`] characters) and
//! `redact` paths are rendered as keyed hashes; a redacted node is compared as one unit, so no
//! key or value below it leaks into a path. The hashes use the rules' key
//! ([`CompareRules::with_redact_key`], the per-process [`process_key`] by default): pass the
//! same key to [`redact_json`] when storing samples, and stored values and reported
//! differences agree.
//!
//! Bodies are parsed by a strict, iterative parser into a flat tape of nodes that borrows its
//! strings from the body (see `tape` and `parse`): it reads the same documents and the same
//! numbers as serde_json, allows nesting up to [`MAX_NESTING`], and costs a fraction of
//! building a `serde_json::Value`. A key repeated within one object is compared occurrence by
//! occurrence. A body without a content type that is not JSON is text (or binary if not UTF-8).
//! `benches/diff.rs` measures a 100 KiB pair, parsing included.

mod arrays;
mod body;
pub mod decode;
mod headers;
mod json;
mod parse;
mod pattern;
mod redact;
mod render;
mod rules;
mod tape;
mod value;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod proptests;
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;

use std::ops::ControlFlow;

use bytes::Bytes;
use http::HeaderMap;
use serde::{Deserialize, Serialize};

pub use body::{BodyMode, body_mode};
pub use redact::{
    CREDENTIAL_HEADERS, REDACTED_HEADER, redact_header_map, redact_headers, redact_headers_with,
    redact_json,
};
pub use rules::{
    CompareConfig, CompareEntry, CompareProblem, CompareRules, DEFAULT_HEADERS,
    DEFAULT_MAX_DECODED, MAX_PATTERNS, NEVER_COMPARED, StatusMode, process_key,
};

pub use parse::MAX_NESTING;

/// Differences reported per comparison before `truncated` is set.
pub const MAX_DIFFERENCES: usize = 100;
/// JSON nesting compared structurally; deeper subtrees are compared as a whole.
pub const MAX_DEPTH: usize = 128;
/// Characters kept of a rendered value.
pub const MAX_RENDERED: usize = 200;

/// One side's response, as captured for comparison.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as received (still `Content-Encoding`-encoded).
    pub body: Bytes,
    /// The body was cut at the route's `max_body`.
    pub truncated: bool,
}

/// The result of one comparison; empty means the responses match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub differences: Vec<Difference>,
    /// More than [`MAX_DIFFERENCES`] differences: the rest were not reported.
    pub truncated: bool,
}

/// One difference between the primary and the shadow response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub kind: Kind,
    /// Exact JSON Pointer (`/items/3/price`, `""` for the root), or `status`,
    /// `header:<name>`, `body`.
    pub path: String,
    /// `path` with array indices collapsed (`/items/*/price`), for aggregation.
    pub pattern: String,
    /// Short rendering of the primary's value; `None` when the primary has none.
    pub primary: Option<String>,
    /// Short rendering of the shadow's value; `None` when the shadow has none.
    pub shadow: Option<String>,
}

/// What differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Status,
    Header,
    Value,
    Type,
    Missing,
    Extra,
    Order,
    Size,
    Text,
    Binary,
    Body,
}

// === impl Kind ===

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Status,
        Kind::Header,
        Kind::Value,
        Kind::Type,
        Kind::Missing,
        Kind::Extra,
        Kind::Order,
        Kind::Size,
        Kind::Text,
        Kind::Binary,
        Kind::Body,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Status => "status",
            Kind::Header => "header",
            Kind::Value => "value",
            Kind::Type => "type",
            Kind::Missing => "missing",
            Kind::Extra => "extra",
            Kind::Order => "order",
            Kind::Size => "size",
            Kind::Text => "text",
            Kind::Binary => "binary",
            Kind::Body => "body",
        }
    }

    /// The inverse of [`Kind::as_str`] (for rows read back from the store).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Diff ===

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.differences.is_empty() && !self.truncated
    }

    /// How many reported differences are of `kind`.
    pub fn count(&self, kind: Kind) -> usize {
        self.differences.iter().filter(|d| d.kind == kind).count()
    }
}

/// Compares two captured responses under `rules`.
pub fn diff(primary: &Captured, shadow: &Captured, rules: &CompareRules) -> Diff {
    let mut sink = Sink::default();
    let _ = compare_all(primary, shadow, rules, &mut sink);
    sink.finish()
}

fn compare_all(
    primary: &Captured,
    shadow: &Captured,
    rules: &CompareRules,
    sink: &mut Sink,
) -> ControlFlow<()> {
    headers::compare_status(primary.status, shadow.status, rules.status, sink)?;
    headers::compare_headers(&primary.headers, &shadow.headers, rules, sink)?;
    body::compare_body(primary, shadow, rules, sink)
}

/// Compares two JSON documents under `rules` (the body part of [`diff`]); used by the
/// benchmark and to re-evaluate stored samples under new rules.
pub fn diff_json(
    primary: &serde_json::Value,
    shadow: &serde_json::Value,
    rules: &CompareRules,
) -> Diff {
    let mut sink = Sink::default();
    match (
        tape::Tape::from_value(primary),
        tape::Tape::from_value(shadow),
    ) {
        (Ok(a), Ok(b)) => {
            let _ = json::diff_tapes(&a, &b, rules, &mut sink);
        }
        _ => {
            let too_large = || Some(tape::TooLarge.to_string());
            let _ = sink.push_at(Kind::Body, "body", too_large(), too_large());
        }
    }
    sink.finish()
}

/// Collects differences up to [`MAX_DIFFERENCES`].
#[derive(Debug, Default)]
pub(crate) struct Sink {
    differences: Vec<Difference>,
    truncated: bool,
}

// === impl Sink ===

impl Sink {
    /// Adds a difference; breaks once the cap is reached, which stops the comparison.
    pub(crate) fn push(&mut self, d: Difference) -> ControlFlow<()> {
        if self.differences.len() >= MAX_DIFFERENCES {
            self.truncated = true;
            return ControlFlow::Break(());
        }
        self.differences.push(d);
        ControlFlow::Continue(())
    }

    /// A difference on a non-JSON part (`status`, `header:…`, `body`): path and pattern agree.
    pub(crate) fn push_at(
        &mut self,
        kind: Kind,
        path: &str,
        primary: Option<String>,
        shadow: Option<String>,
    ) -> ControlFlow<()> {
        self.push(Difference {
            kind,
            path: path.to_owned(),
            pattern: path.to_owned(),
            primary: primary.map(render::cap),
            shadow: shadow.map(render::cap),
        })
    }

    fn finish(self) -> Diff {
        Diff {
            differences: self.differences,
            truncated: self.truncated,
        }
    }
}
