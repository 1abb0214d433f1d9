//! Request and response heads between the client (downstream) and the origin (upstream):
//! header hygiene and rewrites. Hop-by-hop headers are removed (including those named in
//! `Connection`), `X-Forwarded-*` and `Via` added, the request id kept or generated, prefix and
//! Host rewrites applied, and on the way back `Location` / `Set-Cookie` rewritten where the
//! route asks for it.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Uri};
use http::{Method, Version};
use std::io::Write as _;

use crate::error::ProxyError;
use crate::rules::{Rewrite, Side};
use crate::upstream::Origin;

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

/// The client's override header (always removed before forwarding, valid or not) and the
/// header marking a shadow copy (the loop guard).
pub use crate::rules::{FORCE_HEADER, SHADOW_HEADER};
/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The forwarding headers set on every request sent upstream.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// `Err` when a request names its host twice, differently: the authority of an absolute-form
/// target (HTTP/1) or `:authority` (HTTP/2), and the `Host` header. RFC 9112 §3.2.2 tells a
/// proxy to prefer the target, RFC 9113 §8.3.1 calls a disagreement malformed; Switchyard
/// picks tenants and routes by `Host` while a hop in front of it may have routed by the target,
/// so a disagreement is refused instead of resolved one way.
pub fn check_authority(uri: &Uri, headers: &HeaderMap) -> Result<(), ProxyError> {
    let (Some(target), Some(host)) = (uri.authority(), headers.get(header::HOST)) else {
        return Ok(());
    };
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    let same = host
        .to_str()
        .ok()
        .and_then(|h| h.parse::<Authority>().ok())
        .is_some_and(|host| {
            host.host().eq_ignore_ascii_case(target.host())
                && host.port_u16().unwrap_or(default_port)
                    == target.port_u16().unwrap_or(default_port)
        });
    if same {
        Ok(())
    } else {
        Err(ProxyError::BadRequest(
            "the request target and the Host header name different hosts",
        ))
    }
}

/// Is this an HTTP/1.1 upgrade request (WebSocket and friends)? An upgrade to `h2c` is not:
/// it changes the protocol of this one hop, and tunnelled to an origin it would open a raw h2
/// channel past the gateway's rules ("h2c smuggling"); it is forwarded as a plain request with
/// its `Upgrade` header stripped.
pub fn is_upgrade(version: Version, headers: &HeaderMap) -> bool {
    version == Version::HTTP_11
        && headers.get(header::UPGRADE).is_some_and(|v| {
            !v.to_str().is_ok_and(|v| {
                v.split(',').any(|p| {
                    p.trim()
                        .get(..3)
                        .is_some_and(|p| p.eq_ignore_ascii_case("h2c"))
                })
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
    // Most messages carry none of them: one pass over the names finds out, so the common case
    // costs no lookups.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
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
    pub host: Option<&'a HeaderValue>,
}

impl Downstream<'_> {
    /// The host as text, when it is.
    pub fn host_str(&self) -> Option<&str> {
        self.host.and_then(|h| h.to_str().ok())
    }
}

/// The host the client asked for: the Host header, else the URI authority (HTTP/2).
pub fn client_host(uri: &Uri, headers: &HeaderMap) -> Option<HeaderValue> {
    match headers.get(header::HOST) {
        Some(host) => Some(host.clone()),
        None => uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    }
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
) -> Result<(), ProxyError> {
    let rewrite = rewrite.filter(|_| side == Side::New);
    parts.uri = upstream_uri(&parts.uri, origin, rewrite)?;

    let headers = &mut parts.headers;
    strip_hop_by_hop(headers, upgrade);
    headers.remove(FORCE_HEADER);

    // The client's Host goes through unchanged unless the route rewrites it (or it came as
    // the HTTP/2 authority).
    match rewrite.and_then(|rw| rw.host.as_deref()) {
        Some(host) => {
            if let Ok(value) = HeaderValue::from_str(host) {
                headers.insert(header::HOST, value);
            }
        }
        None => match downstream.host {
            Some(host) if !headers.contains_key(header::HOST) => {
                headers.insert(header::HOST, host.clone());
            }
            Some(_) => {}
            None => {
                headers.remove(header::HOST);
            }
        },
    }

    if let Some(peer) = downstream.peer {
        let value = match headers.get(X_FORWARDED_FOR).map(HeaderValue::as_bytes) {
            Some(prior) => {
                let mut joined = Vec::with_capacity(prior.len() + 41);
                joined.extend_from_slice(prior);
                let _ = write!(joined, ", {peer}");
                HeaderValue::from_bytes(&joined)
            }
            None => {
                let mut text = [0u8; 40];
                let mut at = &mut text[..];
                let _ = write!(at, "{peer}");
                let len = 40 - at.len();
                HeaderValue::from_bytes(&text[..len])
            }
        };
        if let Ok(value) = value {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    let proto = if downstream.tls { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = downstream.host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    append_via(headers, parts.version);
    headers.insert(REQUEST_ID, request_id.clone());
    // Upstreams speak HTTP/1.1 or h2 as the pool decides; the client's version does not carry.
    parts.version = Version::HTTP_11;
    Ok(())
}

/// The absolute URI on `origin` for a request's path and query, rewritten when asked. Without a
/// rewrite or an origin path prefix the path is reused as it is, without copying.
fn upstream_uri(uri: &Uri, origin: &Origin, rewrite: Option<&Rewrite>) -> Result<Uri, ProxyError> {
    let bad = |_| ProxyError::BadRequest("the path cannot be sent upstream");
    let path_and_query = match (rewrite, origin.base_path.is_empty(), uri.path_and_query()) {
        (None, true, Some(pq)) => pq.clone(),
        (rewrite, _, pq) => {
            let pq = pq.map(PathAndQuery::as_str).unwrap_or("/");
            let rewritten = match rewrite {
                Some(rw) => rewrite_path(pq, rw),
                None => pq.to_string(),
            };
            PathAndQuery::try_from(format!("{}{}", origin.base_path, rewritten)).map_err(bad)?
        }
    };
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(origin.scheme.clone());
    parts.authority = Some(origin.authority.clone());
    parts.path_and_query = Some(path_and_query);
    Uri::from_parts(parts).map_err(|_| ProxyError::BadRequest("the path cannot be sent upstream"))
}

fn append_via(headers: &mut HeaderMap, version: Version) {
    let ours = match version {
        Version::HTTP_2 => "2 switchyard",
        Version::HTTP_10 => "1.0 switchyard",
        _ => "1.1 switchyard",
    };
    let value = match headers.get(header::VIA).and_then(|v| v.to_str().ok()) {
        Some(prior) => HeaderValue::from_str(&format!("{prior}, {ours}")),
        None => Ok(HeaderValue::from_static(ours)),
    };
    if let Ok(value) = value {
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
    let host = downstream.host_str()?;
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

/// Keep a client's request id when it is sane, else make one: 128 random bits from the
/// thread-local generator (no system call per request), as 32 hex digits.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(id) = headers.get(REQUEST_ID).filter(|v| {
        let b = v.as_bytes();
        !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic())
    }) {
        return id.clone();
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    let bits = rand::random::<u128>();
    for (i, digit) in id.iter_mut().enumerate() {
        let nibble = (bits >> (124 - 4 * i)) & 0xf;
        *digit = HEX[nibble as usize];
    }
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority_ok(uri: &str, host: Option<&str>) -> bool {
        let mut headers = HeaderMap::new();
        if let Some(h) = host {
            headers.insert(header::HOST, h.parse().unwrap());
        }
        check_authority(&uri.parse().unwrap(), &headers).is_ok()
    }

    #[test]
    fn the_target_and_host_must_agree() {
        assert!(authority_ok("/a", Some("gw.test")));
        assert!(authority_ok("http://gw.test/a", None));
        assert!(authority_ok("http://GW.test:80/a", Some("gw.test")));
        assert!(authority_ok("https://gw.test/a", Some("gw.test:443")));
        assert!(authority_ok("http://user@gw.test/a", Some("gw.test")));
        assert!(!authority_ok("http://evil.example/a", Some("gw.test")));
        assert!(!authority_ok("http://gw.test:8080/a", Some("gw.test")));
        assert!(!authority_ok(
            "http://gw.test/a",
            Some("gw.test, evil.example")
        ));
    }

    #[test]
    fn an_h2c_upgrade_is_not_tunnelled() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(Version::HTTP_11, &headers));
        headers.insert(header::UPGRADE, HeaderValue::from_static("H2C"));
        assert!(!is_upgrade(Version::HTTP_11, &headers));
        headers.insert(header::UPGRADE, HeaderValue::from_static("foo, h2c"));
        assert!(!is_upgrade(Version::HTTP_11, &headers));
    }

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
