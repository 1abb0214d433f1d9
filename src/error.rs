//! The one table from a failure on the request path to the answer the client gets.
//!
//! Every error the proxy can meet is a small noun here; [`ProxyError::status`] is the only place
//! that decides a status code, and [`ProxyError::into_response`] the only place that renders the
//! JSON body `{error, route, side, request_id}`. Upstream failures are 502/504, client faults
//! are 4xx; nothing on the request path panics or closes a connection without an answer.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::proxy::body::{Body, full};

/// Why a request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No origin of the upstream accepted a connection (refused, unreachable, DNS, TLS).
    #[error("upstream connection failed: {0}")]
    UpstreamConnect(String),
    /// The upstream took longer than its `timeout` to send response headers.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The upstream answered with something that is not HTTP, or broke off mid-answer.
    #[error("upstream protocol error: {0}")]
    UpstreamProtocol(String),
    /// Every origin of the upstream is ejected by passive health checks.
    #[error("no healthy origin")]
    NoHealthyOrigin,
    /// The config names an upstream that has no pool (cannot happen after validation).
    #[error("unknown upstream {0}")]
    UnknownUpstream(String),
    /// `[tenant] unknown = "reject"` and no tenant source matched.
    #[error("no tenant could be determined for this request")]
    UnknownTenant,
    /// Both Content-Length and Transfer-Encoding, or Content-Length given twice.
    #[error("ambiguous message framing")]
    AmbiguousFraming,
    /// Framing the gateway does not read one way: a bad chunk, bare CR or LF, obs-fold,
    /// control bytes, an unknown transfer coding, or a request body the client broke off.
    #[error("malformed message framing")]
    MalformedFraming,
    /// The request body is larger than the limit that applies.
    #[error("request body too large")]
    BodyTooLarge,
    /// The client stopped sending its body for longer than `body_timeout`.
    #[error("request body timed out")]
    ClientTimeout,
    /// The request itself is malformed (bad URI, bad header value).
    #[error("bad request: {0}")]
    BadRequest(String),
}

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
            ProxyError::BodyTooLarge => "body_too_large",
            ProxyError::ClientTimeout => "client_timeout",
            ProxyError::BadRequest(_) => "bad_request",
        }
    }

    /// True when the failure came from the upstream (it counts towards upstream errors and
    /// may trigger a fallback); false when the client is at fault.
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            ProxyError::UpstreamConnect(_)
                | ProxyError::UpstreamTimeout
                | ProxyError::UpstreamProtocol(_)
                | ProxyError::NoHealthyOrigin
                | ProxyError::UnknownUpstream(_)
        )
    }

    /// Render the answer: status, `content-type: application/json`, and the small body that
    /// names what failed, on which route and side, and the request id to grep the logs for.
    pub fn into_response(
        &self,
        route: Option<&str>,
        side: Option<&str>,
        request_id: &str,
    ) -> Response<Body> {
        let body = serde_json::json!({
            "error": self.to_string(),
            "kind": self.kind(),
            "route": route,
            "side": side,
            "request_id": request_id,
        });
        let bytes = Bytes::from(body.to_string());
        let mut response = Response::new(full(bytes));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        response
    }
}

impl From<crate::proxy::body::BodyFault> for ProxyError {
    fn from(fault: crate::proxy::body::BodyFault) -> Self {
        use crate::proxy::body::BodyFault;
        match fault {
            BodyFault::TooLarge => ProxyError::BodyTooLarge,
            BodyFault::Stalled => ProxyError::ClientTimeout,
            BodyFault::Malformed => ProxyError::MalformedFraming,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_failures_are_5xx_and_client_faults_4xx() {
        assert_eq!(
            ProxyError::UpstreamConnect("refused".into()).status(),
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
        assert!(!ProxyError::MalformedFraming.is_upstream());
        assert!(ProxyError::UpstreamTimeout.is_upstream());
        assert!(!ProxyError::BodyTooLarge.is_upstream());
    }
}
