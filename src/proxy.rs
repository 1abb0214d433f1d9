//! The request path, as named phases run in request order on one [`RequestCtx`]:
//!
//! ```text
//!  accept ─▶ framing ─▶ decide ─▶ body ─▶ shadow tap ─▶ forward ─▶ fallback ─▶ respond ─▶ record
//! (server)   400 on     route,    guard,   bounded      one        retry on    tunnel,     metrics,
//!            ambiguous  tenant,   buffer   copy for     attempt    legacy      tee,        access
//!            framing    side      for      the shadow   upstream   (policy     headers     log
//!                                 replay   worker                   in one place)
//! ```
//!
//! - **accept** is the listener's ([`crate::server`]): TLS, the HTTP/1 framing guard, limits.
//! - **framing**: a request the connection's framing guard found ambiguous or malformed is
//!   answered 400 and the connection closed ([`crate::framing`]); so is one whose target and
//!   `Host` name different hosts, the connection kept.
//! - **decide**: the pure [`RuleSet::decide`](crate::rules::RuleSet::decide) on ONE rule snapshot,
//!   taken when the request starts and kept to its end (its shadow copy included).
//! - **body**: the request body is guarded (stall timeout, size limit) and, when a fallback or
//!   a shadow copy may need it again, buffered under the route's limit ([`body_phase`]).
//! - **shadow tap**: the shadow worker gets a ticket, or records why it skipped.
//! - **forward**: one attempt on one upstream, the response streaming back ([`forward`]).
//! - **fallback**: whether and how a failed attempt on the new side is retried on legacy
//!   ([`fallback`]).
//! - **respond**: upgrades become a tunnel, the body is teed to the shadow ticket, debug and
//!   request-id headers are set ([`respond`]).
//! - **record**: per-route metrics, once per request.
//!
//! [`handle`] never fails: every error becomes an answer through the one table in
//! [`crate::error`], logged once. No lock is taken on this path: the snapshot is an atomic
//! load, counters are atomics, and shadow and traffic bookkeeping is lock-free.

mod body_phase;
mod ctx;
mod fallback;
mod forward;
mod respond;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::access_log::{self, AccessLog};
use crate::body::Body;
use crate::clock::Clock;
use crate::error::ProxyError;
use crate::framing::Fault;
use crate::head;
use crate::live::Live;
use crate::rules::RequestView;
use crate::shadow::{ShadowRequest, Shadower};
use crate::telemetry::Metrics;
use crate::trace::{ShadowTrace, SpanData, Tracer};
use crate::traffic::Traffic;

pub use ctx::RequestCtx;

/// Shared state of the request path.
pub struct Proxy {
    /// The live rules.
    pub live: Arc<Live>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The shadow worker.
    pub shadow: Arc<Shadower>,
    /// Recent requests per route and side, and the busiest tenants (admin API).
    pub traffic: Arc<Traffic>,
    /// The gateway's clock.
    pub clock: Clock,
    /// The JSON access log (written only when `[telemetry] access_log` is set).
    pub access_log: Arc<AccessLog>,
    /// The span exporter (used only when `[telemetry] otlp_endpoint` is set).
    pub tracer: Arc<Tracer>,
}

/// What the server knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    /// The client's address.
    pub peer: SocketAddr,
    /// True on the TLS listener.
    pub tls: bool,
    /// What the connection's HTTP/1 framing guard found wrong with this request's framing
    /// (the server asks the guard in request order, see [`crate::framing::FramingVerdict`]).
    pub framing_fault: Option<Fault>,
}

/// Serve one request. Never fails: every error becomes a JSON answer.
pub async fn handle(
    proxy: Arc<Proxy>,
    conn: Connection,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let snapshot = proxy.live.load();
    let mut ctx = RequestCtx::new(&snapshot, &proxy.clock, conn, &request);
    let response = match run(&proxy, &mut ctx, request).await {
        Ok(response) => response,
        Err(error) => {
            ctx.error = Some(error.kind());
            respond::error(&ctx, &error)
        }
    };
    let response = respond::finish(&ctx, response);
    record(&proxy, &ctx, &response);
    Ok(response)
}

/// The phases that may fail, in order.
async fn run(
    proxy: &Proxy,
    ctx: &mut RequestCtx<'_>,
    request: Request<Incoming>,
) -> Result<Response<Body>, ProxyError> {
    framing(ctx, &request)?;
    let mut request = request;
    let client_upgrade = ctx.upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, incoming) = request.into_parts();
    decide(proxy, ctx, &parts)?;
    let body = body_phase::prepare(ctx, &parts, incoming).await?;
    let ticket = tap(proxy, ctx, &parts);
    ctx.shadowed = ticket.is_some();
    let (response, served_by) = fallback::forward_with_fallback(proxy, ctx, parts, body).await?;
    respond::response(ctx, response, served_by, client_upgrade, ticket)
}

/// Framing: the guard found this request's framing ambiguous or malformed, or the request
/// names its host twice, differently.
fn framing(ctx: &RequestCtx<'_>, request: &Request<Incoming>) -> Result<(), ProxyError> {
    if let Some(fault) = ctx.conn.framing_fault {
        return Err(fault.into());
    }
    head::check_authority(request.uri(), request.headers())
}

/// Decide: route, tenant and side; count the request on its route.
fn decide<'s>(
    proxy: &Proxy,
    ctx: &mut RequestCtx<'s>,
    parts: &http::request::Parts,
) -> Result<(), ProxyError> {
    let rules = &ctx.snapshot.rules;
    let view = RequestView {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        peer: Some(ctx.conn.peer.ip()),
        sample: rand::random_range(0..10_000),
    };
    let decision = rules.decide(&view, ctx.now()).into_owned();
    if decision.reject.is_some() {
        ctx.decision = Some(decision);
        return Err(ProxyError::UnknownTenant);
    }
    if let Some(route) = decision.route {
        let now = ctx
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        proxy
            .traffic
            .record_at(&route.name, decision.side, decision.tenant.as_deref(), now);
    }
    ctx.served_side = decision.side;
    ctx.decision = Some(decision);
    Ok(())
}

/// Shadow tap: register a comparison when the decision asked for one.
fn tap(
    proxy: &Proxy,
    ctx: &RequestCtx<'_>,
    parts: &http::request::Parts,
) -> Option<crate::shadow::ShadowTicket> {
    let decision = ctx.decision.as_ref()?;
    let shadow_side = decision.shadow?;
    let route = decision.route?;
    proxy.shadow.tap(ShadowRequest {
        snapshot: ctx.snapshot,
        route,
        tenant: decision.tenant.as_deref(),
        primary_side: decision.side,
        shadow_side,
        parts,
        body: ctx.replay.as_ref(),
        downstream: &ctx.downstream(),
        trace: shadow_trace(proxy, ctx),
    })
}

/// The shadow copy's trace: its own span, linked to the request's (tracing on only).
fn shadow_trace(proxy: &Proxy, ctx: &RequestCtx<'_>) -> Option<ShadowTrace> {
    let trace = ctx.trace.as_ref()?;
    let config = ctx.snapshot.rules.telemetry.traces.as_ref()?;
    Some(ShadowTrace {
        span: trace.shadow(),
        primary: trace.span,
        request_id: ctx.request_id.to_str().unwrap_or("").to_owned(),
        config: config.clone(),
        tracer: proxy.tracer.clone(),
    })
}

/// Record: request metrics, once per request, on the route and side that answered; and the
/// access log line when it is on.
fn record(proxy: &Proxy, ctx: &RequestCtx<'_>, response: &Response<Body>) {
    let side = ctx.served_side;
    let elapsed = ctx.elapsed();
    let status = response.status().as_u16();
    if let Some(handles) = ctx.snapshot.metrics_for(ctx.route()) {
        handles.observe(&proxy.metrics, side, status, elapsed.as_secs_f64());
    }
    let telemetry = &ctx.snapshot.rules.telemetry;
    if let (Some(trace), Some(config)) = (&ctx.trace, &telemetry.traces)
        && trace.span.sampled
    {
        proxy
            .tracer
            .export(config, server_span(ctx, trace, status, elapsed));
    }
    if let (Some(target), Some((method, path))) = (&telemetry.access_log, &ctx.logged) {
        let trace_id = ctx.trace.as_ref().map(|t| t.span.trace_id_hex());
        let decision = ctx.decision.as_ref();
        let entry = access_log::Entry {
            ts: humantime::format_rfc3339_millis(ctx.now()).to_string(),
            request_id: ctx.request_id.to_str().unwrap_or(""),
            client: ctx.conn.peer.ip().to_string(),
            method: method.as_str(),
            host: ctx.host.as_ref().and_then(|h| h.to_str().ok()),
            path,
            route: ctx.route_name(),
            side: side.as_str(),
            reason: decision.map(|d| d.reason.as_str()),
            upstream: decision.map(|d| d.upstream),
            tenant: decision
                .and_then(|d| d.tenant.as_deref())
                .filter(|_| telemetry.access_log_tenants),
            status,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            fallback: ctx.fell_back,
            shadowed: ctx.shadowed,
            generation: ctx.snapshot.generation,
            error: ctx.error,
            trace_id: trace_id.as_ref().map(|t| t.as_str()),
        };
        proxy.access_log.log(target, &entry);
    }
}

/// The request's server span: what the gateway decided and how it ended.
fn server_span(
    ctx: &RequestCtx<'_>,
    trace: &crate::trace::RequestTrace,
    status: u16,
    elapsed: std::time::Duration,
) -> SpanData {
    let route = ctx.route_name();
    let decision = ctx.decision.as_ref();
    let mut span = SpanData::server(trace, format!("{} {route}", trace.method), elapsed);
    span.attr("http.request.method", trace.method.as_str())
        .attr("switchyard.route", route)
        .attr("switchyard.side", ctx.served_side.as_str())
        .attr("http.response.status_code", i64::from(status))
        .attr("switchyard.fallback", ctx.fell_back)
        .attr("switchyard.shadowed", ctx.shadowed)
        .attr(
            "switchyard.request_id",
            ctx.request_id.to_str().unwrap_or(""),
        )
        .attr(
            "switchyard.generation",
            i64::try_from(ctx.snapshot.generation).unwrap_or(i64::MAX),
        );
    if let Some(d) = decision {
        span.attr("switchyard.reason", d.reason.as_str())
            .attr("switchyard.upstream", d.upstream);
    }
    if let Some(error) = ctx.error {
        span.attr("switchyard.error", error);
    }
    span.error = status >= 500;
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<F, Fut>(_: F) -> usize
    where
        F: FnOnce(Arc<Proxy>, Connection, Request<Incoming>) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// hyper moves each request's future into place: a big one costs a big copy per request
    /// (the rare paths — connecting, HTTP/2, upgrades — are boxed to keep it down).
    #[test]
    fn the_request_future_stays_small() {
        let size = future_size(handle);
        assert!(size <= 6 * 1024, "the request future grew to {size} bytes");
    }
}
