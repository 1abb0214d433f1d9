//! The one table from a failure on the request path to the answer the client gets.
//!
//! Every error the proxy can meet is a small noun here; [`ProxyError::status`] is the only place
//! that decides a status code, and [`ProxyError::answer`] the only place that renders the JSON
//! body `{error, kind, route, side, request_id}`. Upstream failures are 502/504, client faults
//! are 4xx; nothing on the request path panics or closes a connection without an answer.
//!
//! The body names what failed in a few words; the underlying cause (hyper's error chain, an
//! I/O error) is kept as the error's `source` for the log line and never sent to the client.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::rules::Side;

/// A boxed cause, kept for logs.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No origin of the upstream accepted a connection (refused, unreachable, DNS, TLS).
    #[error("upstream connection failed")]
    UpstreamConnect(#[source] Cause),
    /// The upstream took longer than its `timeout` to send response headers.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The upstream answered with something that is not HTTP, or broke off mid-answer.
    #[error("upstream protocol error")]
    UpstreamProtocol(#[source] Cause),
    /// Every origin of the upstream is ejected by passive health checks.
    #[error("no healthy origin")]
    NoHealthyOrigin,
    /// The config names an upstream that has no pool (cannot happen after validation).
    #[error("unknown upstream {0}")]
    UnknownUpstream(String),
    /// `[tenant] unknown = "reject"` and no tenant source matched.
    #[error("no tenant could be determined for this request")]
    UnknownTenant,
    /// Two framings at once: Content-Length with Transfer-Encoding, or either one given twice.
    #[error("ambiguous message framing")]
    AmbiguousFraming,
    /// Framing the gateway does not read one way, found before anything was forwarded: bare
    /// CR or LF, obs-fold, control bytes, a `Content-Length` that is not plain digits, a
    /// transfer coding other than a lone `chunked`, a bad chunk line or trailer.
    #[error("malformed message framing")]
    MalformedFraming,
    /// The request body failed after its head was forwarded: a bad chunk arriving later, an
    /// HTTP/2 length that the DATA frames contradict, a body cut short.
    #[error("malformed request body")]
    MalformedBody,
    /// The request body is larger than the limit that applies.
    #[error("request body too large")]
    BodyTooLarge,
    /// The client stopped sending its body for longer than `body_timeout`.
    #[error("request body timed out")]
    ClientTimeout,
    /// The request head cannot be forwarded as it is (a URI or header the upstream request
    /// cannot carry).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
}

/// Where an error happened, for its answer: the route and side that were being served.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    pub route: Option<&'a str>,
    pub side: Option<Side>,
    pub request_id: &'a str,
}

// === impl ProxyError ===

impl ProxyError {
    /// The status code the client receives.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::UpstreamConnect(_)
            | ProxyError::UpstreamProtocol(_)
            | ProxyError::NoHealthyOrigin
            | ProxyError::UnknownUpstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::UnknownTenant
            | ProxyError::AmbiguousFraming
            | ProxyError::MalformedFraming
            | ProxyError::MalformedBody
            | ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::ClientTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The short machine-readable kind used in the JSON body and the `kind` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            ProxyError::UpstreamConnect(_) => "connect",
            ProxyError::UpstreamTimeout => "timeout",
            ProxyError::UpstreamProtocol(_) => "protocol",
            ProxyError::NoHealthyOrigin => "no_healthy_origin",
            ProxyError::UnknownUpstream(_) => "unknown_upstream",
            ProxyError::UnknownTenant => "unknown_tenant",
            ProxyError::AmbiguousFraming => "ambiguous_framing",
            ProxyError::MalformedFraming => "malformed_framing",
            ProxyError::MalformedBody => "malformed_body",
            ProxyError::BodyTooLarge => "body_too_large",
            ProxyError::ClientTimeout => "client_timeout",
            ProxyError::BadRequest(_) => "bad_request",
        }
    }

    /// True when the failure came from the upstream (it counts towards upstream errors and
    /// may trigger a fallback); false when the client is at fault.
    pub fn is_upstream(&self) -> bool {
        match self {
            ProxyError::UpstreamConnect(_)
            | ProxyError::UpstreamTimeout
            | ProxyError::UpstreamProtocol(_)
            | ProxyError::NoHealthyOrigin
            | ProxyError::UnknownUpstream(_) => true,
            ProxyError::UnknownTenant
            | ProxyError::AmbiguousFraming
            | ProxyError::MalformedFraming
            | ProxyError::MalformedBody
            | ProxyError::BodyTooLarge
            | ProxyError::ClientTimeout
            | ProxyError::BadRequest(_) => false,
        }
    }

    /// True when the request never reached an origin, so any request may be retried on
    /// another side without risk of doing its work twice.
    pub fn never_reached_origin(&self) -> bool {
        matches!(
            self,
            ProxyError::UpstreamConnect(_) | ProxyError::NoHealthyOrigin
        )
    }

    /// The whole cause chain in one line, for logs (never for the client).
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            out.push_str(": ");
            out.push_str(&e.to_string());
            source = e.source();
        }
        out
    }

    /// The answer as HTTP/1.1 bytes, closing the connection: for the one answer written before
    /// there is a request to answer, to a head that took too long to arrive (408).
    pub fn raw_http1(&self) -> Vec<u8> {
        let answer = self.answer(Scope {
            route: None,
            side: None,
            request_id: "",
        });
        let status = answer.status();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            answer.body().len()
        )
        .into_bytes();
        out.extend_from_slice(answer.body());
        out
    }

    /// The answer: status, `content-type: application/json`, `x-request-id`, and the small
    /// body that names what failed, on which route and side, and the request id to grep the
    /// logs for.
    pub fn answer(&self, scope: Scope<'_>) -> Response<Bytes> {
        let body = serde_json::json!({
            "error": self.to_string(),
            "kind": self.kind(),
            "route": scope.route,
            "side": scope.side,
            "request_id": scope.request_id,
        });
        let mut response = Response::new(Bytes::from(body.to_string()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(value) = HeaderValue::from_str(scope.request_id) {
            headers.insert("x-request-id", value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_failures_are_5xx_and_client_faults_4xx() {
        let refused: Cause = "refused".into();
        assert_eq!(
            ProxyError::UpstreamConnect(refused).status(),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            ProxyError::UpstreamTimeout.status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(ProxyError::BodyTooLarge.status(), 413);
        assert_eq!(ProxyError::ClientTimeout.status(), 408);
        assert_eq!(ProxyError::AmbiguousFraming.status(), 400);
        assert_eq!(ProxyError::MalformedFraming.status(), 400);
        assert_eq!(ProxyError::MalformedBody.status(), 400);
        assert!(ProxyError::UpstreamTimeout.is_upstream());
        assert!(!ProxyError::BodyTooLarge.is_upstream());
        assert!(!ProxyError::MalformedBody.is_upstream());
        assert!(!ProxyError::MalformedFraming.is_upstream());
    }

    #[test]
    fn the_answer_names_the_failure_but_not_its_cause() {
        let cause: Cause = "hyper::Error(Io, secret internals)".into();
        let error = ProxyError::UpstreamProtocol(cause);
        let answer = error.answer(Scope {
            route: Some("cards"),
            side: Some(Side::New),
            request_id: "r1",
        });
        let body = String::from_utf8(answer.body().to_vec()).unwrap();
        assert!(body.contains("\"kind\":\"protocol\""), "{body}");
        assert!(body.contains("\"side\":\"new\""), "{body}");
        assert!(!body.contains("internals"), "{body}");
        assert!(error.chain().contains("secret internals"));
    }
}
