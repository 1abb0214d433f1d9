//! `GET /admin/shadow/samples/{id}`: one stored request/response pair, side by side.
//!
//! The pair was redacted before it was stored (credential headers dropped, `redact` paths
//! replaced by keyed hashes); this view adds the bodies pretty-printed, a line-aligned
//! side-by-side diff of them (`rows`, computed with `similar`), the differences the route's
//! *current* compare rules find in the pair and how the bodies were compared
//! (`body_compared_as`: `json`, `json_sniffed` when neither content type said JSON, `text`,
//! …, with `body_comparison` in words), and a copy-as-curl line that replays the request
//! through the gateway — without any credential: `authorization`, `cookie`, `x-switchyard-force`
//! and framing headers are left out, so the operator adds their own.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::{Value, json};
use similar::{DiffTag, TextDiff};

use super::shadow::shadow_store;
use super::{AdminState, ApiError};
use crate::compare::{self, Captured, CompareRules};
use crate::store::{SamplePair, SampleResponse};

/// Side-by-side rows returned at most (a 1 MiB body pretty-prints to many thousand lines).
pub const MAX_ROWS: usize = 2_000;

/// Request headers never put on the curl line: credentials, the signed side override, and
/// headers curl computes itself or that describe the original connection.
const CURL_SKIPPED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-switchyard-force",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "x-switchyard-shadow",
];

/// One line of the side-by-side view: the primary's line on the left, the shadow's on the
/// right (`None` where one side has no counterpart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// `equal`, `delete` (primary only), `insert` (shadow only) or `replace`.
    pub tag: &'static str,
    pub left: Option<String>,
    pub right: Option<String>,
}

/// `GET /admin/shadow/samples/{id}`.
pub async fn sample(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("sample id {id:?} is not a number")))?;
    let store = shadow_store(&state)?;
    let stored = store.sample(id).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "no stored sample {id} (it may have been rotated out; see the report's sample_ids)"
        ))
    })?;
    let snapshot = state.live.load();
    let mut pair = stored.pair;
    // The store dropped credential headers already; mask again in case of older rows.
    compare::redact_headers(&mut pair.request_headers);
    compare::redact_headers(&mut pair.primary.headers);
    compare::redact_headers(&mut pair.shadow.headers);
    let rules = snapshot
        .rules
        .route(&stored.route)
        .and_then(|r| r.shadow.as_ref())
        .map(|p| &p.compare);
    let (primary, shadow) = (captured(&pair.primary), captured(&pair.shadow));
    let differences = rules.map(|rules| compare::diff(&primary, &shadow, rules));
    let default = CompareRules::default();
    let mode = compare::body_mode(&primary, &shadow, rules.map_or(&default, |r| &**r));
    let (left, right) = (
        pretty_body(&pair.primary.body),
        pretty_body(&pair.shadow.body),
    );
    let (rows, truncated) = side_by_side(&left, &right, MAX_ROWS);
    let fallback_host = snapshot.rules.listen.http.map(|a| a.to_string());
    let curl = curl_line(&pair, fallback_host.as_deref());
    let side = |r: &SampleResponse, pretty: String| {
        json!({
            "side": r.side,
            "status": r.status,
            "headers": r.headers,
            "body": r.body,
            "pretty": pretty,
            "elapsed_ms": r.elapsed_ms,
        })
    };
    Ok(Json(json!({
        "id": stored.id,
        "route": stored.route,
        "tenant": stored.tenant,
        "pattern": stored.pattern,
        "kind": stored.kind,
        "at_ms": stored.at_ms,
        "request": {
            "method": pair.method,
            "uri": pair.uri,
            "headers": pair.request_headers,
            "body": pair.request_body,
        },
        "primary": side(&pair.primary, left),
        "shadow": side(&pair.shadow, right),
        "differences": differences.map(|d| d.differences),
        "body_compared_as": mode,
        "body_comparison": mode.describe(),
        "rows": rows,
        "rows_truncated": truncated,
        "curl": curl,
        "redacted": "credential headers removed and redact paths hashed before storage",
    })))
}

/// A stored response as the comparison engine takes it.
pub(super) fn captured(r: &SampleResponse) -> Captured {
    let mut headers = HeaderMap::new();
    for (name, value) in &r.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(n, v);
        }
    }
    Captured {
        status: r.status,
        headers,
        body: Bytes::from(r.body.clone()),
        truncated: false,
    }
}

/// A body pretty-printed when it is JSON; other text as it is.
pub fn pretty_body(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| body.to_owned()),
        Err(_) => body.to_owned(),
    }
}

/// Line-aligned rows of `left` against `right` (at most `max` rows; `true` when cut).
pub fn side_by_side(left: &str, right: &str, max: usize) -> (Vec<Row>, bool) {
    let diff = TextDiff::from_lines(left, right);
    let (old, new) = (diff.old_slices(), diff.new_slices());
    let line = |s: Option<&&str>| s.map(|l| l.trim_end_matches(['\n', '\r']).to_owned());
    let mut rows = Vec::new();
    for op in diff.ops() {
        let (tag, a, b) = op.as_tag_tuple();
        let name = match tag {
            DiffTag::Equal => "equal",
            DiffTag::Delete => "delete",
            DiffTag::Insert => "insert",
            DiffTag::Replace => "replace",
        };
        for i in 0..a.len().max(b.len()) {
            if rows.len() >= max {
                return (rows, true);
            }
            let l = (i < a.len()).then(|| old.get(a.start + i)).flatten();
            let r = (i < b.len()).then(|| new.get(b.start + i)).flatten();
            let tag = match (name, l.is_some(), r.is_some()) {
                ("replace", true, false) => "delete",
                ("replace", false, true) => "insert",
                _ => name,
            };
            rows.push(Row {
                tag,
                left: line(l),
                right: line(r),
            });
        }
    }
    (rows, false)
}

/// The values a difference pattern takes in one stored response, rendered as in a
/// difference (JSON text: strings keep their quotes): `/a/*/b` in the JSON body,
/// `header:<name>` in the headers, `status`.
pub(super) fn values_at(r: &SampleResponse, pattern: &str) -> Vec<String> {
    if let Some(name) = pattern.strip_prefix("header:") {
        return r
            .headers
            .iter()
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect();
    }
    if pattern == "status" {
        return vec![r.status.to_string()];
    }
    if !pattern.is_empty() && !pattern.starts_with('/') {
        return Vec::new();
    }
    let Ok(doc) = serde_json::from_str::<Value>(&r.body) else {
        return Vec::new();
    };
    let segments: Vec<String> = pattern
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut nodes = vec![&doc];
    for seg in &segments {
        let mut next = Vec::new();
        for node in nodes {
            match (node, seg.as_str()) {
                (Value::Array(items), "*") => next.extend(items.iter()),
                (Value::Object(map), "*") => next.extend(map.values()),
                (Value::Array(items), s) => {
                    next.extend(s.parse::<usize>().ok().and_then(|i| items.get(i)))
                }
                (Value::Object(map), s) => next.extend(map.get(s)),
                _ => {}
            }
        }
        nodes = next;
    }
    nodes.into_iter().map(Value::to_string).collect()
}

/// A copy-as-curl line for the stored request, through the gateway, credentials removed.
/// The URL comes from the request itself when absolute, else from its `Host` header, else from
/// `fallback_host` (the gateway's own address).
pub fn curl_line(pair: &SamplePair, fallback_host: Option<&str>) -> String {
    let url = if pair.uri.starts_with("http://") || pair.uri.starts_with("https://") {
        pair.uri.clone()
    } else {
        let host = pair
            .request_headers
            .iter()
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.trim().to_owned())
            .or_else(|| fallback_host.map(str::to_owned))
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        format!("http://{host}{}", pair.uri)
    };
    let mut line = String::from("curl");
    if pair.method != "GET" {
        line.push_str(" -X ");
        line.push_str(&shell_quote(&pair.method));
    }
    line.push(' ');
    line.push_str(&shell_quote(&url));
    for (name, value) in &pair.request_headers {
        let lower = name.trim().to_ascii_lowercase();
        if CURL_SKIPPED.contains(&lower.as_str())
            || lower.starts_with("proxy-")
            || value == compare::REDACTED_HEADER
        {
            continue;
        }
        line.push_str(" -H ");
        line.push_str(&shell_quote(&format!("{}: {value}", name.trim())));
    }
    if let Some(body) = &pair.request_body {
        line.push_str(" --data-raw ");
        line.push_str(&shell_quote(body));
    }
    line
}

/// POSIX shell single quoting: `it's` → `'it'\''s'`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn response(body: &str, headers: &[(&str, &str)]) -> SampleResponse {
        SampleResponse {
            side: crate::rules::Side::Legacy,
            status: 200,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            body: body.into(),
            elapsed_ms: 1.0,
        }
    }

    #[test]
    fn values_follow_patterns_with_wildcards_and_headers() {
        let r = response(
            r#"{"id":"a1","items":[{"at":"2024-05-01T12:00:00Z"},{"at":"2024-05-02T12:00:00Z"}],"a/b":1}"#,
            &[
                ("X-Request-Id", "req_1"),
                ("content-type", "application/json"),
            ],
        );
        assert_eq!(values_at(&r, "/id"), vec!["\"a1\""]);
        assert_eq!(
            values_at(&r, "/items/*/at"),
            vec!["\"2024-05-01T12:00:00Z\"", "\"2024-05-02T12:00:00Z\""]
        );
        assert_eq!(
            values_at(&r, "/items/1/at"),
            vec!["\"2024-05-02T12:00:00Z\""]
        );
        assert_eq!(values_at(&r, "/a~1b"), vec!["1"]);
        assert_eq!(values_at(&r, "header:x-request-id"), vec!["req_1"]);
        assert_eq!(values_at(&r, "status"), vec!["200"]);
        assert!(values_at(&r, "/missing/deeper").is_empty());
        assert!(values_at(&response("not json", &[]), "/id").is_empty());
    }

    #[test]
    fn rows_align_changed_lines_side_by_side() {
        let (rows, cut) = side_by_side("a\nb\nc\n", "a\nB\nc\nd\n", 100);
        assert!(!cut);
        let tags: Vec<&str> = rows.iter().map(|r| r.tag).collect();
        assert_eq!(tags, ["equal", "replace", "equal", "insert"]);
        assert_eq!(rows[1].left.as_deref(), Some("b"));
        assert_eq!(rows[1].right.as_deref(), Some("B"));
        assert_eq!(rows[3].left, None);
        let (rows, cut) = side_by_side("a\nb\nc\n", "x\ny\nz\n", 2);
        assert!(cut);
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn curl_lines_carry_no_credentials_and_quote_safely() {
        let pair = SamplePair {
            method: "POST".into(),
            uri: "/api/cards/1?q=it's".into(),
            request_headers: vec![
                ("host".into(), "acme.app.example.com".into()),
                ("authorization".into(), "Bearer s3cret".into()),
                ("Cookie".into(), "sid=1".into()),
                ("x-switchyard-force".into(), "signed-token".into()),
                ("x-api-key".into(), "redacted".into()),
                ("x-tenant-id".into(), "acme".into()),
                ("content-length".into(), "2".into()),
            ],
            request_body: Some("{}".into()),
            primary: response("{}", &[]),
            shadow: response("{}", &[]),
        };
        let line = curl_line(&pair, None);
        assert_eq!(
            line,
            r#"curl -X 'POST' 'http://acme.app.example.com/api/cards/1?q=it'\''s' -H 'x-tenant-id: acme' --data-raw '{}'"#
        );
        for secret in ["s3cret", "sid=1", "signed-token", "redacted"] {
            assert!(!line.contains(secret), "{secret} in {line}");
        }
        let bare = SamplePair {
            method: "GET".into(),
            uri: "/x".into(),
            request_headers: vec![],
            request_body: None,
            ..pair
        };
        assert_eq!(
            curl_line(&bare, Some("127.0.0.1:9")),
            "curl 'http://127.0.0.1:9/x'"
        );
    }

    #[test]
    fn pretty_bodies() {
        assert_eq!(pretty_body(r#"{"a":1}"#), "{\n  \"a\": 1\n}");
        assert_eq!(pretty_body("plain"), "plain");
    }
}
