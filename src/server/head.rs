//! Request-head checks that keep one meaning for one request, run before anything else.
//!
//! A request can name its host twice: the authority of an absolute-form target (HTTP/1) or the
//! `:authority` pseudo-header (HTTP/2), and the `Host` header. RFC 9112 §3.2.2 tells a proxy to
//! prefer the target; RFC 9113 §8.3.1 calls a disagreement malformed. Switchyard picks tenants
//! and routes by `Host`, while a hop in front of it may have routed by the target, so a
//! disagreement is answered 400 instead of being resolved one way.

use http::uri::{Authority, Uri};
use http::{HeaderMap, header};

use crate::error::ProxyError;

/// `Err` when the target's authority and the `Host` header name different hosts or ports.
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
            "the request target and the Host header name different hosts".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(uri: &str, host: Option<&str>) -> bool {
        let mut headers = HeaderMap::new();
        if let Some(h) = host {
            headers.insert(header::HOST, h.parse().unwrap());
        }
        check_authority(&uri.parse().unwrap(), &headers).is_ok()
    }

    #[test]
    fn the_target_and_host_must_agree() {
        assert!(check("/a", Some("gw.test")));
        assert!(check("http://gw.test/a", None));
        assert!(check("http://GW.test:80/a", Some("gw.test")));
        assert!(check("https://gw.test/a", Some("gw.test:443")));
        assert!(check("http://user@gw.test/a", Some("gw.test")));
        assert!(!check("http://evil.example/a", Some("gw.test")));
        assert!(!check("http://gw.test:8080/a", Some("gw.test")));
        assert!(!check("http://gw.test/a", Some("gw.test, evil.example")));
    }
}
