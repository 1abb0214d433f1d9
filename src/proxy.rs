//! The request path, in phases:
//!
//! 1. `handle` takes ONE rule snapshot for the whole request (its shadow copy included);
//! 2. `decide` (pure) picks route, tenant and side;
//! 3. the request body is guarded (stall timeout, size limit) and, when a fallback or a
//!    shadow copy may need it again, buffered under the route's limit;
//! 4. `forward` sends the request upstream and streams the response back;
//! 5. `fallback` retries on legacy when the new side failed before any byte reached the client;
//! 6. the shadow copy (if any) is handed to the shadow worker, off the hot path;
//! 7. every failure becomes an answer through the one table in [`crate::error`].
//!
//! `handle` never fails: it always answers, and logs once.

pub mod body;
pub mod forward;
pub mod upstream;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::error::ProxyError;
use crate::live::{Live, Snapshot};
use crate::rules::{Reject, RequestView, Route, Side};
use crate::shadow::{ShadowTicket, Shadower};
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::traffic::Traffic;
use body::{Body, Buffered, FaultSlot, GuardedBody};
use forward::{Downstream, SHADOW_HEADER};

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
    /// The durable store (audit log, shadow results), opened once at start; `None` when it
    /// could not be opened: admin writes are then refused, traffic is served as usual.
    pub store: Option<Store>,
}

/// What the server knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    /// The client's address.
    pub peer: SocketAddr,
    /// True on the TLS listener.
    pub tls: bool,
}

/// What a request was decided, owned so the request head can be rewritten afterwards.
struct Decided<'s> {
    route: Option<&'s Route>,
    tenant: Option<String>,
    side: Side,
    shadow: Option<Side>,
    reject: Option<Reject>,
}

/// Labels for the answer: which route and side served, for metrics and debug headers.
struct Served<'s> {
    route: Option<&'s Route>,
    side: Side,
    fallback: bool,
}

impl Served<'_> {
    fn route_name(&self) -> &str {
        self.route.map(|r| r.name.as_str()).unwrap_or("default")
    }
}

/// Serve one request. Never fails: every error becomes a JSON answer.
pub async fn handle(
    proxy: Arc<Proxy>,
    conn: Connection,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let snapshot = proxy.live.load();
    let request_id = forward::request_id(request.headers());
    let mut served = Served {
        route: None,
        side: Side::Legacy,
        fallback: false,
    };
    let result = handle_inner(&proxy, &snapshot, conn, request, &request_id, &mut served).await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            let route = served.route.map(|r| r.name.as_str());
            if error.is_upstream() {
                tracing::warn!(request_id = ?request_id, route, side = served.side.as_str(), "{error}");
            } else {
                tracing::debug!(request_id = ?request_id, route, "{error}");
            }
            error.into_response(
                route,
                Some(served.side.as_str()),
                request_id.to_str().unwrap_or(""),
            )
        }
    };
    if let Some(handles) = snapshot.metrics_for(served.route) {
        handles.observe(
            &proxy.metrics,
            served.side,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    let headers = response.headers_mut();
    headers.insert(forward::REQUEST_ID, request_id);
    if snapshot.rules.admin.debug_headers {
        if let Ok(v) = HeaderValue::from_str(served.route_name()) {
            headers.insert("x-switchyard-route", v);
        }
        headers.insert(
            "x-switchyard-side",
            HeaderValue::from_static(served.side.as_str()),
        );
        headers.insert(
            "x-switchyard-generation",
            HeaderValue::from(snapshot.generation),
        );
        if served.fallback {
            headers.insert("x-switchyard-fallback", HeaderValue::from_static("1"));
        }
    }
    Ok(response)
}

async fn handle_inner<'s>(
    proxy: &Proxy,
    snapshot: &'s Arc<Snapshot>,
    conn: Connection,
    request: Request<Incoming>,
    request_id: &HeaderValue,
    served: &mut Served<'s>,
) -> Result<Response<Body>, ProxyError> {
    check_framing(request.headers())?;
    let rules = &snapshot.rules;
    let mut request = request;
    let upgrade = forward::is_upgrade(request.version(), request.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, incoming) = request.into_parts();

    let decided = {
        let view = RequestView {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            peer: Some(conn.peer.ip()),
            sample: rand::random_range(0..10_000),
        };
        let d = rules.decide(&view, SystemTime::now());
        Decided {
            // Re-borrow the route from the snapshot: the decision's borrow also covers the
            // request head, which is rewritten below.
            route: d.route.and_then(|r| rules.routes.get(r.index)),
            tenant: d.tenant.map(|t| t.into_owned()),
            side: d.side,
            shadow: d.shadow,
            reject: d.reject,
        }
    };
    served.route = decided.route;
    served.side = decided.side;
    if decided.reject.is_some() {
        return Err(ProxyError::UnknownTenant);
    }
    if let Some(route) = decided.route {
        proxy
            .traffic
            .record(&route.name, decided.side, decided.tenant.as_deref());
    }

    let host = forward::client_host(&parts.uri, &parts.headers);
    let downstream = Downstream {
        peer: Some(conn.peer.ip()),
        tls: conn.tls,
        host: host.as_deref(),
    };

    let limits = &rules.listen.limits;
    let fault = FaultSlot::default();
    let mut body: Body = body::boxed(GuardedBody::new(
        incoming,
        limits.body_timeout,
        limits.max_request_body,
        fault.clone(),
    ));

    // The shadow copy needs the request body again: keep it when it is small enough.
    let route = decided.route;
    let shadow_policy = decided
        .shadow
        .and(route)
        .and_then(|r| r.shadow.as_ref().map(|p| (r, p)));
    // A fallback needs a replayable body: empty, or buffered under the route's limit.
    let may_fall_back = decided.side == Side::New && route.is_some_and(|r| r.fallback) && !upgrade;
    let want_copy = shadow_policy.map(|(_, p)| p.max_body).unwrap_or(0);
    let keep_limit = if may_fall_back {
        route.map(|r| r.fallback_buffer).unwrap_or(0).max(want_copy)
    } else {
        want_copy
    };
    let mut replay: Option<bytes::Bytes> = None;
    if body_is_empty(&parts.headers) {
        replay = Some(bytes::Bytes::new());
    } else if keep_limit > 0 && declared_length(&parts.headers).is_none_or(|n| n <= keep_limit) {
        body = match body::buffer_up_to(body, keep_limit).await {
            Ok(Buffered::Complete(bytes)) => {
                replay = Some(bytes.clone());
                body::full(bytes)
            }
            Ok(Buffered::TooLong(rest)) => rest,
            Err(_) => return Err(client_fault(&fault)),
        };
    }

    let ticket: Option<ShadowTicket> = match (shadow_policy, decided.shadow) {
        (Some((route, policy)), Some(shadow_side)) => proxy.shadow.begin(
            snapshot,
            route,
            policy,
            decided.tenant.as_deref(),
            decided.side,
            shadow_side,
            &parts,
            replay.as_ref(),
            &downstream,
        ),
        _ => None,
    };

    let primary_upstream = rules.upstream_for(route, decided.side);
    // Only a request that may be retried pays for a copy of its head.
    let retry_parts = may_fall_back.then(|| parts.clone());
    let started = Instant::now();
    let first = send(
        proxy,
        snapshot,
        primary_upstream,
        decided.side,
        route,
        parts,
        body,
        &downstream,
        request_id,
        upgrade,
    )
    .await;

    let retry = retry_parts.filter(|parts| {
        replay.is_some()
            && match &first {
                Err(ProxyError::UpstreamConnect(_)) | Err(ProxyError::NoHealthyOrigin) => true,
                Err(e) if e.is_upstream() => forward::is_idempotent(&parts.method),
                Ok((response, _)) if response.status().is_server_error() => true,
                _ => false,
            }
    });
    let (mut response, origin_side) = if let Some(mut parts) = retry {
        if let Some(r) = route {
            proxy
                .metrics
                .fallbacks
                .get_or_create(&crate::telemetry::RouteLabel {
                    route: r.name.clone(),
                })
                .inc();
        }
        served.side = Side::Legacy;
        served.fallback = true;
        let legacy_upstream = rules.upstream_for(route, Side::Legacy);
        let body = body::full(replay.clone().unwrap_or_default());
        parts.headers.remove(SHADOW_HEADER);
        send(
            proxy,
            snapshot,
            legacy_upstream,
            Side::Legacy,
            route,
            parts,
            body,
            &downstream,
            request_id,
            false,
        )
        .await
        .map_err(|e| fault_or(&fault, e))?
    } else {
        first.map_err(|e| fault_or(&fault, e))?
    };
    let elapsed = started.elapsed();

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
        Some(ticket) => ticket.tee_primary(&head, upstream_body, elapsed, origin_side),
        None => body::boxed(upstream_body),
    };
    head.headers.remove(SHADOW_HEADER);
    Ok(Response::from_parts(head, body))
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

/// Send one attempt to `upstream` and return the response head with its body streaming.
#[allow(clippy::too_many_arguments)]
async fn send(
    proxy: &Proxy,
    snapshot: &Snapshot,
    upstream: &str,
    side: Side,
    route: Option<&Route>,
    mut parts: http::request::Parts,
    body: Body,
    downstream: &Downstream<'_>,
    request_id: &HeaderValue,
    upgrade: bool,
) -> Result<(Response<Incoming>, Side), ProxyError> {
    let pool = snapshot.pools.get(upstream)?;
    let origin = pool.pick()?;
    let rewrite = route.map(|r| &r.rewrite);
    forward::prepare_request(
        &mut parts, origin, side, rewrite, downstream, request_id, upgrade,
    )
    .map_err(ProxyError::BadRequest)?;
    let result = pool
        .send(origin, Request::from_parts(parts, body), upgrade)
        .await;
    match result {
        Ok(mut response) => {
            let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
            forward::prepare_response(
                response.headers_mut(),
                origin,
                side,
                rewrite,
                downstream,
                upgrade && switching,
            );
            Ok((response, side))
        }
        Err(error) => {
            if error.is_upstream() {
                proxy.metrics.upstream_error(upstream, error.kind());
            }
            Err(error)
        }
    }
}

/// Reject ambiguous framing that reached us (hyper already refuses conflicting duplicates).
fn check_framing(headers: &http::HeaderMap) -> Result<(), ProxyError> {
    let lengths = headers.get_all(header::CONTENT_LENGTH).iter().count();
    if lengths > 1 || (lengths == 1 && headers.contains_key(header::TRANSFER_ENCODING)) {
        return Err(ProxyError::AmbiguousFraming);
    }
    Ok(())
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn body_is_empty(headers: &http::HeaderMap) -> bool {
    !headers.contains_key(header::TRANSFER_ENCODING) && declared_length(headers).unwrap_or(0) == 0
}

fn client_fault(fault: &FaultSlot) -> ProxyError {
    match fault.get() {
        Some(fault) => ProxyError::from(fault),
        None => ProxyError::BadRequest("the request body ended abruptly".into()),
    }
}

/// An upstream failure caused by the client's body (stalled, too large) is the client's fault.
fn fault_or(fault: &FaultSlot, error: ProxyError) -> ProxyError {
    match fault.get() {
        Some(_) => client_fault(fault),
        None => error,
    }
}
