//! Body: the request body is guarded (a stall timeout between frames, the size limit) and,
//! when a fallback or the shadow copy may need it again, buffered under the route's limit so
//! it can be replayed. Anything larger streams through untouched.

use bytes::Bytes;
use http::header;
use http_body::Body as _;
use hyper::body::Incoming;

use super::ctx::RequestCtx;
use super::fallback;
use crate::body::{self, Body, BodyFault, Buffered, FaultSlot, GuardedBody};
use crate::error::ProxyError;

/// The guarded body to send; the whole body goes to `ctx.replay` when it was kept.
pub(super) async fn prepare(
    ctx: &mut RequestCtx<'_>,
    parts: &http::request::Parts,
    incoming: Incoming,
) -> Result<Body, ProxyError> {
    // hyper knows when there is no body at all (no Content-Length or a zero one on HTTP/1,
    // END_STREAM on the HTTP/2 headers): such a request replays trivially.
    if incoming.is_end_stream() {
        // Nothing to guard or keep.
        ctx.replay = Some(Bytes::new());
        return Ok(body::empty());
    }
    let limits = &ctx.snapshot.rules.listen.limits;
    let body = body::boxed(GuardedBody::new(
        incoming,
        limits.body_timeout,
        limits.max_request_body,
        ctx.body_fault.clone(),
        ctx.clock().clone(),
    ));
    // The shadow copy needs the body again, and so does a retry on legacy.
    let shadow_copy = ctx
        .decision
        .as_ref()
        .filter(|d| d.shadow.is_some())
        .and_then(|d| d.route)
        .and_then(|r| r.shadow.as_ref())
        .map_or(0, |p| p.max_body);
    let keep = fallback::replay_buffer(ctx).max(shadow_copy);
    if keep == 0 || declared_length(&parts.headers).is_some_and(|n| n > keep) {
        return Ok(body);
    }
    match body::buffer_up_to(body, keep).await {
        Ok(Buffered::Complete(bytes)) => {
            ctx.replay = Some(bytes.clone());
            Ok(body::full(bytes))
        }
        Ok(Buffered::TooLong(rest)) => Ok(rest),
        Err(_) => Err(client_fault(&ctx.body_fault)),
    }
}

/// The client's fault behind a failed body: 400, 408 or 413.
pub(super) fn client_fault(fault: &FaultSlot) -> ProxyError {
    match fault.get() {
        Some(BodyFault::TooLarge) => ProxyError::BodyTooLarge,
        Some(BodyFault::Stalled) => ProxyError::ClientTimeout,
        Some(BodyFault::Malformed) | None => ProxyError::MalformedBody,
    }
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}
