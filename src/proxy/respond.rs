//! Respond: turn the upstream's answer (or an error) into the client's answer — an upgrade
//! becomes a byte tunnel, the body is teed to the shadow ticket, and the request-id and debug
//! headers are set.

use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};

use super::ctx::RequestCtx;
use crate::body::{self, Body};
use crate::error::{ProxyError, Scope};
use crate::head::{REQUEST_ID, SHADOW_HEADER};
use crate::rules::Side;
use crate::shadow::ShadowTicket;
use crate::upstream::UpstreamBody;

/// The answer to forward: `response` came from `served_by`.
pub(super) fn response(
    ctx: &RequestCtx<'_>,
    mut response: Response<UpstreamBody>,
    served_by: Side,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    ticket: Option<ShadowTicket>,
) -> Result<Response<Body>, ProxyError> {
    if let Some(client_upgrade) = client_upgrade
        && response.status() == StatusCode::SWITCHING_PROTOCOLS
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(tunnel(client_upgrade, upstream_upgrade));
        let (head, _) = response.into_parts();
        return Ok(Response::from_parts(head, body::empty()));
    }
    let (mut head, upstream_body) = response.into_parts();
    let body = match ticket {
        Some(ticket) => {
            // The head arrived just now; the time is only read when a comparison needs it.
            let elapsed = ctx
                .upstream_started
                .map_or(Duration::ZERO, |started| ctx.since(started));
            ticket.tee_primary(&head, upstream_body, elapsed, served_by)
        }
        None => body::boxed(upstream_body),
    };
    head.headers.remove(SHADOW_HEADER);
    Ok(Response::from_parts(head, body))
}

/// The answer to a failure, through the one error table; logged once.
pub(super) fn error(ctx: &RequestCtx<'_>, error: &ProxyError) -> Response<Body> {
    let route = ctx.route().map(|r| r.name.as_str());
    let request_id = ctx.request_id.to_str().unwrap_or("");
    let side = ctx.decision.as_ref().map(|_| ctx.served_side);
    if error.is_upstream() {
        tracing::warn!(request_id, route, side = ?side, "{}", error.chain());
    } else {
        tracing::debug!(request_id, route, "{}", error.chain());
    }
    let mut response = error
        .answer(Scope {
            route,
            side,
            request_id,
        })
        .map(body::full);
    if matches!(
        error,
        ProxyError::AmbiguousFraming | ProxyError::MalformedFraming
    ) {
        // The bytes after a faulty head cannot be trusted to start a request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Headers every answer carries: the request id, and with `[admin] debug_headers` the route,
/// side, generation and fallback flag.
pub(super) fn finish(ctx: &RequestCtx<'_>, mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID, ctx.request_id.clone());
    if ctx.snapshot.rules.admin.debug_headers {
        if let Ok(v) = HeaderValue::from_str(ctx.route_name()) {
            headers.insert("x-switchyard-route", v);
        }
        headers.insert(
            "x-switchyard-side",
            HeaderValue::from_static(ctx.served_side.as_str()),
        );
        headers.insert(
            "x-switchyard-generation",
            HeaderValue::from(ctx.snapshot.generation),
        );
        if ctx.fell_back {
            headers.insert("x-switchyard-fallback", HeaderValue::from_static("1"));
        }
    }
    response
}

/// Join the client's and the upstream's upgraded connections and copy bytes both ways until
/// either side closes. Reloads do not touch it: the tunnel holds no rule snapshot.
async fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::debug!("upgrade failed: {error}");
            return;
        }
    };
    let mut client = hyper_util::rt::TokioIo::new(client);
    let mut upstream = hyper_util::rt::TokioIo::new(upstream);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!("upgraded connection ended: {error}");
    }
}
