//! The request context: what the phases of one request share, instead of long argument lists.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Request};

use super::Connection;
use crate::body::FaultSlot;
use crate::clock::{Clock, Instant};
use crate::head::{self, Downstream};
use crate::rules::{Decision, Route, Side};
use crate::snapshot::Snapshot;
use crate::trace::RequestTrace;

/// One request's state, from accept to record.
pub struct RequestCtx<'s> {
    /// The rule snapshot the whole request runs on (its shadow copy included).
    pub snapshot: &'s Arc<Snapshot>,
    /// The connection it came on.
    pub conn: Connection,
    /// Kept from the client when sane, else made here; sent upstream and back.
    pub request_id: HeaderValue,
    /// The host the client asked for (Host header, or the HTTP/2 authority).
    pub host: Option<HeaderValue>,
    /// An HTTP/1.1 upgrade (WebSocket) request.
    pub upgrade: bool,
    /// Method and path, kept for the access log when it is on.
    pub logged: Option<(http::Method, String)>,
    /// A shadow copy of this request was queued.
    pub shadowed: bool,
    /// The error kind when the gateway answered itself.
    pub error: Option<&'static str>,
    /// The decision, once made (with the tenant owned: the request head moves on).
    pub decision: Option<Decision<'s, 'static>>,
    /// The side that answers: the decided one, or legacy after a fallback.
    pub served_side: Side,
    /// True when the new side failed and legacy answered.
    pub fell_back: bool,
    /// Where the request body's guard records a client fault (stall, size, broken framing).
    pub body_fault: FaultSlot,
    /// When the first upstream attempt started: the primary's latency a shadow comparison
    /// reports runs from here to the answer's head (fallback included).
    pub upstream_started: Option<Instant>,
    /// The request's trace, only when tracing is on (`[telemetry] otlp_endpoint`); boxed
    /// so the request future stays small when it is off.
    pub trace: Option<Box<RequestTrace>>,
    /// The whole request body when it was kept for a replay (fallback, shadow copy, a retry on
    /// a fresh connection); empty for a request without a body.
    pub replay: Option<Bytes>,
    clock: &'s Clock,
    started: Instant,
    now: SystemTime,
}

// === impl RequestCtx ===

impl<'s> RequestCtx<'s> {
    /// The context of a request that has just arrived.
    pub fn new<B>(
        snapshot: &'s Arc<Snapshot>,
        clock: &'s Clock,
        conn: Connection,
        request: &Request<B>,
    ) -> Self {
        let headers = request.headers();
        let mut ctx = RequestCtx {
            snapshot,
            conn,
            request_id: head::request_id(headers),
            host: head::client_host(request.uri(), headers),
            upgrade: head::is_upgrade(request.version(), headers),
            logged: snapshot
                .rules
                .telemetry
                .access_log
                .as_ref()
                .map(|_| (request.method().clone(), request.uri().path().to_owned())),
            shadowed: false,
            error: None,
            decision: None,
            served_side: Side::Legacy,
            fell_back: false,
            body_fault: FaultSlot::default(),
            upstream_started: None,
            replay: None,
            trace: None,
            clock,
            started: clock.instant(),
            now: clock.now(),
        };
        // Tracing off: one branch, nothing read or made.
        if let Some(config) = &snapshot.rules.telemetry.traces {
            ctx.trace = Some(Box::new(RequestTrace::start(
                config,
                request.method(),
                headers,
                ctx.now,
            )));
        }
        ctx
    }

    /// The matched route, if any.
    pub fn route(&self) -> Option<&'s Route> {
        self.decision.as_ref().and_then(|d| d.route)
    }

    /// The route's name, or `default` for requests without one.
    pub fn route_name(&self) -> &'s str {
        self.route().map_or("default", |r| r.name.as_str())
    }

    /// The wall time the request arrived.
    pub fn now(&self) -> SystemTime {
        self.now
    }

    /// The gateway's clock.
    pub fn clock(&self) -> &'s Clock {
        self.clock
    }

    /// Time since the request arrived.
    pub fn elapsed(&self) -> Duration {
        self.since(self.started)
    }

    /// A monotonic instant now.
    pub fn instant(&self) -> Instant {
        self.clock.instant()
    }

    /// Time since `earlier`.
    pub fn since(&self, earlier: Instant) -> Duration {
        self.clock.instant().saturating_duration_since(earlier)
    }

    /// What forwarding needs to know about the client side.
    pub fn downstream(&self) -> Downstream<'_> {
        Downstream {
            peer: Some(self.conn.peer.ip()),
            tls: self.conn.tls,
            host: self.host.as_ref(),
        }
    }
}
