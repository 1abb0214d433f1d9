//! Forward: one attempt of the request on one upstream, the response head returned with its
//! body still streaming. Upstream failures are counted here, once per attempt; a failure the
//! client's body caused (stalled, too large, broken framing) is the client's, and counts
//! against nobody.

use http::{Request, Response, StatusCode};

use super::Proxy;
use super::body_phase::client_fault;
use super::ctx::RequestCtx;
use crate::body::Body;
use crate::error::ProxyError;
use crate::head;
use crate::rules::Side;
use crate::trace::TRACEPARENT;
use crate::upstream::UpstreamBody;

/// Send `parts` + `body` to `upstream` as `side`.
pub(super) async fn attempt(
    proxy: &Proxy,
    ctx: &RequestCtx<'_>,
    upstream: &str,
    side: Side,
    mut parts: http::request::Parts,
    body: Body,
    upgrade: bool,
) -> Result<Response<UpstreamBody>, ProxyError> {
    let pool = ctx.snapshot.pools.get(upstream)?;
    let origin = pool.pick()?;
    let rewrite = ctx.route().map(|r| &r.rewrite);
    let downstream = ctx.downstream();
    head::prepare_request(
        &mut parts,
        origin,
        side,
        rewrite,
        &downstream,
        &ctx.request_id,
        upgrade,
    )?;
    if let Some(trace) = &ctx.trace {
        // The gateway's span is the parent of the upstream's work.
        parts.headers.insert(TRACEPARENT, trace.span.traceparent());
    }
    match pool
        .send(origin, Request::from_parts(parts, body), upgrade)
        .await
    {
        Ok(mut response) => {
            let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
            head::prepare_response(
                response.headers_mut(),
                origin,
                side,
                rewrite,
                &downstream,
                upgrade && switching,
            );
            Ok(response)
        }
        // The client's body broke the attempt: answer for the client, blame no upstream.
        Err(_) if ctx.body_fault.get().is_some() => Err(client_fault(&ctx.body_fault)),
        Err(error) => {
            proxy.metrics.upstream_error(upstream, error.kind());
            Err(error)
        }
    }
}
