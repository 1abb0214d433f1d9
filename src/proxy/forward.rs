//! Header hygiene and rewrites between the client (downstream) and the origin (upstream):
//! hop-by-hop headers removed (including those named in `Connection`), `X-Forwarded-*` and
//! `Via` added, the request id kept or generated, prefix and Host rewrites, and on the way back
//! `Location` / `Set-Cookie` rewrites where the route asks for them.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Method, Version};

use crate::proxy::upstream::Origin;
use crate::rules::{Rewrite, Side};

/// Header names that belong to one connection, never forwarded (RFC 9110 §7.6.1 plus the
/// legacy ones still seen in the wild).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
];

/// The client's override header: always removed before forwarding, valid or not.
pub const FORCE_HEADER: &str = "x-switchyard-force";
/// Marks a shadow copy; the loop guard.
pub const SHADOW_HEADER: &str = "x-switchyard-shadow";
/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

/// Is this an HTTP/1.1 upgrade request (WebSocket and friends)? An upgrade to `h2c` is not:
/// it changes the protocol of this one hop, and tunnelled to an origin it would open a raw h2
/// channel past the gateway's rules ("h2c smuggling"); it is forwarded as a plain request with
/// its `Upgrade` header stripped.
pub fn is_upgrade(version: Version, headers: &HeaderMap) -> bool {
    version == Version::HTTP_11
        && headers.get(header::UPGRADE).is_some_and(|v| {
            !v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|p| p.trim().to_ascii_lowercase().starts_with("h2c"))
            })
        })
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Remove hop-by-hop headers and every header the `Connection` header names. With `keep_upgrade`
/// the `Connection: upgrade` and `Upgrade` headers survive, as an upgrade needs them end to end.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|name| !(keep_upgrade && name == header::UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    // `TE: trailers` is end-to-end meaningful (gRPC); other TE values are not.
    let te_trailers = headers
        .get(header::TE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("trailers"));
    for name in &HOP_BY_HOP {
        if keep_upgrade && (name == header::CONNECTION || name == header::UPGRADE) {
            continue;
        }
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// What the forwarding step knows about the client side of the request.
pub struct Downstream<'a> {
    /// The client's IP as seen by this gateway.
    pub peer: Option<std::net::IpAddr>,
    /// True when the client reached us over TLS.
    pub tls: bool,
    /// The host the client asked for (Host header or the HTTP/2 authority), if any.
    pub host: Option<&'a str>,
}

/// The host the client asked for: the Host header, else the URI authority (HTTP/2).
pub fn client_host(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.as_str().to_string()))
}

/// Rewrite the request head for `origin`: absolute URI, path rewrites (new side only), Host,
/// forwarding headers, request id, hop-by-hop removal.
pub fn prepare_request(
    parts: &mut http::request::Parts,
    origin: &Origin,
    side: Side,
    rewrite: Option<&Rewrite>,
    downstream: &Downstream<'_>,
    request_id: &HeaderValue,
    upgrade: bool,
) -> Result<(), String> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(PathAndQuery::as_str)
        .unwrap_or("/");
    let rewritten = match (side, rewrite) {
        (Side::New, Some(rw)) => rewrite_path(path_and_query, rw),
        _ => path_and_query.to_string(),
    };
    let full = format!("{}{}", origin.base_path, rewritten);
    parts.uri = Uri::builder()
        .scheme(origin.scheme.clone())
        .authority(origin.authority.clone())
        .path_and_query(full)
        .build()
        .map_err(|e| format!("cannot build upstream URI: {e}"))?;

    let headers = &mut parts.headers;
    strip_hop_by_hop(headers, upgrade);
    headers.remove(FORCE_HEADER);

    let host_rewrite = match (side, rewrite) {
        (Side::New, Some(rw)) => rw.host.as_deref(),
        _ => None,
    };
    match host_rewrite.or(downstream.host) {
        Some(host) => {
            if let Ok(value) = HeaderValue::from_str(host) {
                headers.insert(header::HOST, value);
            }
        }
        None => {
            headers.remove(header::HOST);
        }
    }

    if let Some(peer) = downstream.peer {
        let prior = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let value = match prior {
            Some(prior) => format!("{prior}, {peer}"),
            None => peer.to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert("x-forwarded-for", value);
        }
    }
    let proto = if downstream.tls { "https" } else { "http" };
    headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    if let Some(host) = downstream.host.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert("x-forwarded-host", host);
    }
    append_via(headers, parts.version);
    headers.insert(REQUEST_ID, request_id.clone());
    // Upstreams speak HTTP/1.1 or h2 as the pool decides; the client's version does not carry.
    parts.version = Version::HTTP_11;
    Ok(())
}

fn append_via(headers: &mut HeaderMap, version: Version) {
    let ours = match version {
        Version::HTTP_2 => "2 switchyard",
        Version::HTTP_10 => "1.0 switchyard",
        _ => "1.1 switchyard",
    };
    let value = match headers.get(header::VIA).and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {ours}"),
        None => ours.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(header::VIA, value);
    }
}

/// Apply `strip_prefix` then `add_prefix` to a path (query kept).
pub fn rewrite_path(path_and_query: &str, rewrite: &Rewrite) -> String {
    let (path, query) = match path_and_query.find('?') {
        Some(i) => path_and_query.split_at(i),
        None => (path_and_query, ""),
    };
    let mut path = path;
    if let Some(prefix) = rewrite.strip_prefix.as_deref() {
        let prefix = prefix.trim_end_matches('/');
        if let Some(rest) = path.strip_prefix(prefix)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            path = rest;
        }
    }
    let path = if path.is_empty() { "/" } else { path };
    match rewrite.add_prefix.as_deref() {
        Some(add) => format!("{}{}{}", add.trim_end_matches('/'), path, query),
        None => format!("{path}{query}"),
    }
}

/// Undo a path rewrite for a path the upstream sent back (Location, cookie Path).
fn unrewrite_path(path: &str, rewrite: &Rewrite) -> String {
    let mut path = path.to_string();
    if let Some(add) = rewrite.add_prefix.as_deref() {
        let add = add.trim_end_matches('/');
        if let Some(rest) = path.strip_prefix(add)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            path = rest.to_string();
        }
    }
    if let Some(strip) = rewrite.strip_prefix.as_deref() {
        path = format!("{}{}", strip.trim_end_matches('/'), path);
    }
    path
}

/// Clean the response head: hop-by-hop removal, and Location / Set-Cookie rewrites when the
/// route asks for them (new side only, where the path rewrite applies).
pub fn prepare_response(
    headers: &mut HeaderMap,
    origin: &Origin,
    side: Side,
    rewrite: Option<&Rewrite>,
    downstream: &Downstream<'_>,
    upgrade: bool,
) {
    strip_hop_by_hop(headers, upgrade);
    let Some(rw) = rewrite else { return };
    if rw.location
        && let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok())
        && let Some(new) = rewrite_location(location, origin, side, rw, downstream)
        && let Ok(value) = HeaderValue::from_str(&new)
    {
        headers.insert(header::LOCATION, value);
    }
    if rw.cookie_domain.is_some() || (rw.cookie_path && side == Side::New) {
        let cookies: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| {
                v.to_str()
                    .ok()
                    .map(|c| rewrite_cookie(c, side, rw))
                    .and_then(|c| HeaderValue::from_str(&c).ok())
                    .unwrap_or_else(|| v.clone())
            })
            .collect();
        headers.remove(header::SET_COOKIE);
        for cookie in cookies {
            headers.append(header::SET_COOKIE, cookie);
        }
    }
}

fn rewrite_location(
    location: &str,
    origin: &Origin,
    side: Side,
    rw: &Rewrite,
    downstream: &Downstream<'_>,
) -> Option<String> {
    if location.starts_with('/') && !location.starts_with("//") {
        return (side == Side::New).then(|| unrewrite_path(location, rw));
    }
    let uri: Uri = location.parse().ok()?;
    if uri.authority()? != &origin.authority {
        return None;
    }
    let path = uri
        .path_and_query()
        .map(PathAndQuery::as_str)
        .unwrap_or("/");
    let path = if side == Side::New {
        unrewrite_path(path, rw)
    } else {
        path.to_string()
    };
    let scheme = if downstream.tls { "https" } else { "http" };
    let host = downstream.host?;
    Some(format!("{scheme}://{host}{path}"))
}

fn rewrite_cookie(cookie: &str, side: Side, rw: &Rewrite) -> String {
    cookie
        .split(';')
        .map(|attr| {
            let trimmed = attr.trim();
            let lower = trimmed.to_ascii_lowercase();
            if let Some(domain) = rw.cookie_domain.as_deref()
                && lower.starts_with("domain=")
            {
                return format!(" Domain={domain}");
            }
            if rw.cookie_path && side == Side::New && lower.starts_with("path=") {
                return format!(" Path={}", unrewrite_path(&trimmed[5..], rw));
            }
            attr.to_string()
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Is the method idempotent (RFC 9110 §9.2.2)? Such requests may be retried on legacy.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Keep a client's request id when it is sane, else make one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            // 128 random bits from the thread-local generator: no system call per request.
            let id = format!("{:032x}", rand::random::<u128>());
            HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw() -> Rewrite {
        Rewrite {
            strip_prefix: Some("/api".into()),
            add_prefix: None,
            host: None,
            location: true,
            cookie_domain: Some("app.example.com".into()),
            cookie_path: true,
        }
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert!(!h.contains_key("x-secret"));
        assert!(!h.contains_key(header::CONNECTION));
        assert!(!h.contains_key("keep-alive"));
        assert!(!h.contains_key(header::TRANSFER_ENCODING));
        assert_eq!(h.get(header::TE).unwrap(), "trailers");
        assert!(h.contains_key("x-keep"));
    }

    #[test]
    fn upgrade_keeps_its_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(Version::HTTP_11, &h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get(header::UPGRADE).unwrap(), "websocket");
        assert_eq!(h.get(header::CONNECTION).unwrap(), "upgrade");
    }

    #[test]
    fn prefix_rewrite_both_ways() {
        assert_eq!(rewrite_path("/api/cards/1?x=1", &rw()), "/cards/1?x=1");
        assert_eq!(rewrite_path("/api", &rw()), "/");
        assert_eq!(rewrite_path("/apix/1", &rw()), "/apix/1");
        assert_eq!(unrewrite_path("/cards/2", &rw()), "/api/cards/2");
    }

    #[test]
    fn cookie_rewrite_domain_and_path() {
        let c = rewrite_cookie(
            "sid=1; Domain=cards.internal; Path=/cards; HttpOnly",
            Side::New,
            &rw(),
        );
        assert_eq!(
            c,
            "sid=1; Domain=app.example.com; Path=/api/cards; HttpOnly"
        );
    }

    #[test]
    fn request_id_kept_or_generated() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(REQUEST_ID, HeaderValue::from_static(""));
        assert_eq!(request_id(&h).len(), 32);
    }
}
