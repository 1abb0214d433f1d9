//! Status and header comparison.
//!
//! Header values are normalised where the header's grammar makes the difference meaningless:
//! media types compare case-insensitively with their parameters in any order, and comma-list
//! headers (`vary`, `allow`, `cache-control`, CORS lists, `content-language`) compare as sets
//! of lower-cased items. Other headers compare their trimmed values, in order. Values of
//! credential headers and of `redact = ["header:…"]` headers are rendered as keyed hashes.

use std::ops::ControlFlow::{self, Continue};

use http::{HeaderMap, HeaderName};

use super::redact::is_credential;
use super::{CompareRules, Kind, Sink, StatusMode};

type Flow = ControlFlow<()>;

/// Headers whose value is a comma-separated list where order and case carry no meaning.
const LIST_HEADERS: &[&str] = &[
    "access-control-allow-headers",
    "access-control-allow-methods",
    "access-control-expose-headers",
    "allow",
    "cache-control",
    "content-language",
    "vary",
];

pub(crate) fn compare_status(primary: u16, shadow: u16, mode: StatusMode, sink: &mut Sink) -> Flow {
    let equal = match mode {
        StatusMode::Exact => primary == shadow,
        StatusMode::Class => primary / 100 == shadow / 100,
    };
    if equal {
        return Continue(());
    }
    sink.push_at(
        Kind::Status,
        "status",
        Some(primary.to_string()),
        Some(shadow.to_string()),
    )
}

pub(crate) fn compare_headers(
    primary: &HeaderMap,
    shadow: &HeaderMap,
    rules: &CompareRules,
    sink: &mut Sink,
) -> Flow {
    for name in &rules.headers {
        let a = normalized(primary, name);
        let b = normalized(shadow, name);
        if a == b || (a.is_none() && rules.subset) {
            continue;
        }
        let hashed = is_credential(name.as_str()) || rules.redact_headers.contains(name);
        let render = |map: &HeaderMap, norm: Option<&String>| -> Option<String> {
            let norm = norm?;
            Some(if hashed {
                rules.key.tag(norm.as_bytes())
            } else {
                raw(map, name)
            })
        };
        sink.push_at(
            Kind::Header,
            &format!("header:{name}"),
            render(primary, a.as_ref()),
            render(shadow, b.as_ref()),
        )?;
    }
    Continue(())
}

/// The header's values as sent, joined with `, `.
fn raw(map: &HeaderMap, name: &HeaderName) -> String {
    let values: Vec<String> = map
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    values.join(", ")
}

/// The comparable form of a header; `None` when absent.
fn normalized(map: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut values = map
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .peekable();
    values.peek()?;
    let name = name.as_str();
    if name == "content-type" {
        let parts: Vec<String> = values.map(|v| media_type(&v)).collect();
        return Some(parts.join(", "));
    }
    if LIST_HEADERS.contains(&name) {
        let mut items: Vec<String> = values
            .flat_map(|v| {
                v.split(',')
                    .map(|item| item.trim().to_ascii_lowercase())
                    .filter(|item| !item.is_empty())
                    .collect::<Vec<_>>()
            })
            .collect();
        items.sort_unstable();
        items.dedup();
        return Some(items.join(","));
    }
    let parts: Vec<String> = values.map(|v| v.trim().to_owned()).collect();
    Some(parts.join(", "))
}

/// `Application/JSON;Charset="UTF-8"` → `application/json;charset=utf-8`; parameters sorted.
fn media_type(value: &str) -> String {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let mut params: Vec<String> = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim().trim_matches('"');
            // charset is case-insensitive; other parameters (boundary) are not.
            let v = if k == "charset" {
                v.to_ascii_lowercase()
            } else {
                v.to_owned()
            };
            Some(format!("{k}={v}"))
        })
        .collect();
    params.sort_unstable();
    let mut out = essence;
    for p in params {
        out.push(';');
        out.push_str(&p);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn media_types_normalise() {
        assert_eq!(
            media_type("Application/JSON; Charset=\"UTF-8\""),
            "application/json;charset=utf-8"
        );
        assert_eq!(
            media_type("multipart/form-data; boundary=AbC; a=1"),
            "multipart/form-data;a=1;boundary=AbC"
        );
    }

    #[test]
    fn list_headers_compare_as_sets() {
        let name = HeaderName::from_static("vary");
        let a = map(&[("vary", "Accept-Encoding, Origin")]);
        let b = map(&[("vary", "origin"), ("vary", "accept-encoding")]);
        assert_eq!(normalized(&a, &name), normalized(&b, &name));
        let cc = HeaderName::from_static("cache-control");
        let c = map(&[("cache-control", "no-cache, max-age=0")]);
        let d = map(&[("cache-control", "max-age=0,no-cache")]);
        assert_eq!(normalized(&c, &cc), normalized(&d, &cc));
        assert_eq!(normalized(&HeaderMap::new(), &cc), None);
    }

    #[test]
    fn other_headers_keep_order_and_case() {
        let loc = HeaderName::from_static("location");
        let a = map(&[("location", " /Cards/1 ")]);
        let b = map(&[("location", "/cards/1")]);
        assert_eq!(normalized(&a, &loc).as_deref(), Some("/Cards/1"));
        assert_ne!(normalized(&a, &loc), normalized(&b, &loc));
        assert_eq!(
            raw(&map(&[("location", "a"), ("location", "b")]), &loc),
            "a, b"
        );
    }
}
