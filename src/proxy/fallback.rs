//! Fallback: the retry policy, in one place. A request the new side fails is retried once on
//! legacy when the route has `fallback = true`, the request is not an upgrade, its body can be
//! replayed (empty, or buffered under the route's `fallback_buffer`), and the failure allows
//! it:
//! - the new side could not be reached (connect failure, every origin ejected): always, the
//!   request never reached an origin;
//! - another upstream failure (timeout, broken answer): only for idempotent methods, since the
//!   new side may have done the work already;
//! - the new side answered 5xx: always (it said it did not do the work).
//!
//! A failure caused by the client (its body stalled, too large, or broken) is never retried.

use http::Response;

use super::Proxy;
use super::ctx::RequestCtx;
use super::forward;
use crate::body::{self, Body};
use crate::error::ProxyError;
use crate::head::{self, SHADOW_HEADER};
use crate::rules::Side;
use crate::telemetry::RouteLabel;
use crate::upstream::UpstreamBody;

/// Bytes of request body worth keeping so a retry can replay it (0: no retry is possible).
pub(super) fn replay_buffer(ctx: &RequestCtx<'_>) -> u64 {
    match ctx.route() {
        Some(route) if may_retry(ctx) => route.fallback_buffer,
        _ => 0,
    }
}

fn may_retry(ctx: &RequestCtx<'_>) -> bool {
    !ctx.upgrade
        && ctx
            .decision
            .as_ref()
            .is_some_and(|d| d.side == Side::New && d.route.is_some_and(|r| r.fallback))
}

/// Whether a first attempt that ended like `first` is retried on legacy.
fn should_retry(method: &http::Method, first: &Result<Response<UpstreamBody>, ProxyError>) -> bool {
    match first {
        Err(error) if error.never_reached_origin() => true,
        Err(error) if error.is_upstream() => head::is_idempotent(method),
        Err(_) => false,
        Ok(response) => response.status().is_server_error(),
    }
}

/// Forward on the decided side and, when the policy says so, once more on legacy. Returns the
/// response and the side that gave it.
pub(super) async fn forward_with_fallback(
    proxy: &Proxy,
    ctx: &mut RequestCtx<'_>,
    parts: http::request::Parts,
    body: Body,
) -> Result<(Response<UpstreamBody>, Side), ProxyError> {
    let (side, upstream) = match &ctx.decision {
        Some(d) => (d.side, d.upstream),
        None => (Side::Legacy, ctx.snapshot.rules.default_upstream.as_str()),
    };
    // Only a request that may be retried pays for a copy of its head.
    let retry = ctx
        .replay
        .clone()
        .filter(|_| may_retry(ctx))
        .map(|bytes| (parts.clone(), bytes));
    ctx.upstream_started = Some(ctx.instant());
    let first = forward::attempt(proxy, ctx, upstream, side, parts, body, ctx.upgrade).await;
    let Some((mut parts, bytes)) = retry.filter(|(p, _)| should_retry(&p.method, &first)) else {
        return first.map(|response| (response, side));
    };
    let route = ctx.route();
    if let Some(r) = route {
        proxy
            .metrics
            .fallbacks
            .get_or_create(&RouteLabel {
                route: r.name.clone(),
            })
            .inc();
    }
    ctx.served_side = Side::Legacy;
    ctx.fell_back = true;
    parts.headers.remove(SHADOW_HEADER);
    let legacy = ctx.snapshot.rules.upstream_for(route, Side::Legacy);
    let response = forward::attempt(
        proxy,
        ctx,
        legacy,
        Side::Legacy,
        parts,
        body::full(bytes),
        false,
    )
    .await;
    Ok((response?, Side::Legacy))
}
