//! OpenTelemetry traces: a span per request, W3C `traceparent` propagation, OTLP export.
//!
//! On with `[telemetry] otlp_endpoint` (a build with the `otel` cargo feature, on by default).
//! Each request gets a server span named `METHOD route` whose attributes say what the gateway
//! did: `switchyard.route`, `switchyard.side` (the side that answered), `switchyard.reason`
//! (why, as `switchyard explain` words it), `switchyard.upstream`, `http.response.status_code`,
//! `switchyard.fallback`, `switchyard.request_id`, `switchyard.shadowed`,
//! `switchyard.generation` and `switchyard.error` when the gateway answered itself. It covers
//! the request up to the response head, like `duration_ms` of the access log.
//!
//! - **Propagation**: a valid incoming `traceparent` is continued (same trace, its span as
//!   parent, its sampled flag obeyed); without one a new trace starts, sampled with
//!   `sample_ratio`. The request forwarded to whichever side serves (the fallback attempt
//!   too) carries a `traceparent` naming the gateway span as its parent.
//! - **Shadow copies** get their own client span, `shadow route`, in a trace of their own,
//!   linked to the primary's span and sent with their own `traceparent` and without the
//!   caller's `tracestate` (so the other side's work does not land in the client's trace),
//!   sampled when the primary was. A learned-noise self-check call of the same job carries
//!   the copy's `traceparent` too.
//! - **Off** (no `otlp_endpoint`): no trace state is made, no header is read or written; an
//!   incoming `traceparent` passes through untouched.
//!
//! Spans go to a bounded queue and are exported in batches (OTLP/HTTP protobuf, `POST
//! /v1/traces`) by a background task; a full queue drops the span and counts it in
//! `switchyard_trace_spans_total{result="dropped"}`. Endpoint, service name and ratio follow
//! reloads: each span carries the config it was made under.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, Method};
use tokio::sync::{mpsc, oneshot};

use crate::telemetry::Metrics;

#[cfg(feature = "otel")]
mod export;
#[cfg(feature = "otel")]
mod otlp;

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C vendor trace state, forwarded as it came with the caller's trace.
pub const TRACESTATE: &str = "tracestate";

/// Spans waiting for the exporter.
const QUEUE: usize = 8 * 1024;

/// The `[telemetry]` tracing settings, compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceConfig {
    /// Where spans are posted: the configured endpoint with `/v1/traces`.
    pub endpoint: http::Uri,
    /// The `service.name` resource attribute; default `switchyard`.
    pub service_name: String,
    /// New traces sampled, in basis points (0-10000); default 10000 (all).
    pub sample_bp: u32,
}

/// A trace id, a span id and the sampled flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl SpanContext {
    /// The `traceparent` naming this span as the parent of the next hop.
    pub fn traceparent(&self) -> HeaderValue {
        let mut text = [0u8; 55];
        text[..3].copy_from_slice(b"00-");
        hex_into(&self.trace_id, &mut text[3..35]);
        text[35] = b'-';
        hex_into(&self.span_id, &mut text[36..52]);
        text[52..].copy_from_slice(if self.sampled { b"-01" } else { b"-00" });
        HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The trace id in lowercase hex.
    pub fn trace_id_hex(&self) -> TraceIdHex {
        let mut text = [0u8; 32];
        hex_into(&self.trace_id, &mut text);
        TraceIdHex(text)
    }

    /// A new span in a new trace.
    fn root(sampled: bool) -> SpanContext {
        SpanContext {
            trace_id: new_id(),
            span_id: new_id(),
            sampled,
        }
    }
}

/// A trace id as 32 hex digits, on the stack.
pub struct TraceIdHex([u8; 32]);

impl TraceIdHex {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// One request's trace: made when it arrives (only with tracing on), ended at the record phase.
#[derive(Debug)]
pub struct RequestTrace {
    /// The gateway's span.
    pub span: SpanContext,
    /// The caller's span, from an incoming `traceparent`.
    pub parent: Option<[u8; 8]>,
    pub method: Method,
    start: SystemTime,
}

impl RequestTrace {
    /// The trace of a request that has just arrived: continues a valid incoming
    /// `traceparent`, else starts a trace sampled by `config`'s ratio.
    pub fn start(
        config: &TraceConfig,
        method: &Method,
        headers: &HeaderMap,
        now: SystemTime,
    ) -> RequestTrace {
        let incoming = headers
            .get(TRACEPARENT)
            .and_then(|v| parse_traceparent(v.as_bytes()));
        let (span, parent) = match incoming {
            Some(caller) => (
                SpanContext {
                    trace_id: caller.trace_id,
                    span_id: new_id(),
                    sampled: caller.sampled,
                },
                Some(caller.span_id),
            ),
            None => (SpanContext::root(sampled(config.sample_bp)), None),
        };
        RequestTrace {
            span,
            parent,
            method: method.clone(),
            start: now,
        }
    }

    /// The shadow copy's span: a new trace linked to this request's span.
    pub fn shadow(&self) -> SpanContext {
        SpanContext::root(self.span.sampled)
    }
}

fn sampled(bp: u32) -> bool {
    bp >= 10_000 || (bp > 0 && rand::random_range(0..10_000u32) < bp)
}

/// A random, non-zero id.
fn new_id<const N: usize>() -> [u8; N] {
    loop {
        let id: [u8; N] = rand::random();
        if id.iter().any(|&b| b != 0) {
            return id;
        }
    }
}

fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex_from<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

/// A W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, lowercase): the caller's span. Ids of
/// all zeros and version `ff` are invalid; a later version may append fields after a `-`.
pub fn parse_traceparent(value: &[u8]) -> Option<SpanContext> {
    if value.len() < 55 || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let version: [u8; 1] = hex_from(&value[..2])?;
    if version[0] == 0xff || (version[0] == 0 && value.len() != 55) {
        return None;
    }
    if value.len() > 55 && value[55] != b'-' {
        return None;
    }
    let trace_id: [u8; 16] = hex_from(&value[3..35])?;
    let span_id: [u8; 8] = hex_from(&value[36..52])?;
    let flags: [u8; 1] = hex_from(&value[53..55])?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(SpanContext {
        trace_id,
        span_id,
        sampled: flags[0] & 1 == 1,
    })
}

/// What a span is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Server,
    Client,
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
}

/// A finished span, as exported.
#[derive(Clone, Debug)]
pub struct SpanData {
    pub context: SpanContext,
    pub parent: Option<[u8; 8]>,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: Vec<(&'static str, Value)>,
    /// Spans this one follows from (the primary's, for a shadow copy).
    pub links: Vec<SpanContext>,
    pub error: bool,
}

impl SpanData {
    /// The request's server span, ended `elapsed` after it started.
    pub fn server(trace: &RequestTrace, name: String, elapsed: Duration) -> SpanData {
        let start_ns = unix_ns(trace.start);
        SpanData {
            context: trace.span,
            parent: trace.parent,
            name,
            kind: SpanKind::Server,
            start_ns,
            end_ns: start_ns.saturating_add(u64::try_from(elapsed.as_nanos()).unwrap_or(0)),
            attributes: Vec::with_capacity(10),
            links: Vec::new(),
            error: false,
        }
    }

    /// Add an attribute.
    pub fn attr(&mut self, key: &'static str, value: impl Into<Value>) -> &mut Self {
        self.attributes.push((key, value.into()));
        self
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// Nanoseconds since the epoch.
pub fn unix_ns(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What a shadow copy needs to trace itself.
#[derive(Debug)]
pub struct ShadowTrace {
    /// The copy's own span (a new trace).
    pub span: SpanContext,
    /// The primary's span, linked.
    pub primary: SpanContext,
    /// The primary's request id.
    pub request_id: String,
    pub config: Arc<TraceConfig>,
    pub tracer: Arc<Tracer>,
}

impl ShadowTrace {
    /// Export the copy's span, from `start` to `end`.
    pub fn finish(
        &self,
        name: String,
        start: SystemTime,
        end: SystemTime,
        build: impl FnOnce(&mut SpanData),
    ) {
        if !self.span.sampled {
            return;
        }
        let mut span = SpanData {
            context: self.span,
            parent: None,
            name,
            kind: SpanKind::Client,
            start_ns: unix_ns(start),
            end_ns: unix_ns(end),
            attributes: Vec::with_capacity(6),
            links: vec![self.primary],
            error: false,
        };
        span.attr("switchyard.request_id", self.request_id.as_str());
        build(&mut span);
        self.tracer.export(&self.config, span);
    }
}

/// What the exporter task is handed.
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
pub(crate) enum Queued {
    /// A finished span and the config it was made under.
    Span(Arc<TraceConfig>, SpanData),
    /// Answered once every span queued before it was posted.
    Flush(oneshot::Sender<()>),
}

/// The span queue and its exporter task.
pub struct Tracer {
    queue: mpsc::Sender<Queued>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer").finish_non_exhaustive()
    }
}

impl Tracer {
    /// Start the exporter task (a build without the `otel` feature has none: no config can
    /// turn tracing on there).
    pub fn start(metrics: Arc<Metrics>) -> Arc<Tracer> {
        let (queue, rx) = mpsc::channel(QUEUE);
        #[cfg(feature = "otel")]
        tokio::spawn(export::run(rx, metrics.clone()));
        #[cfg(not(feature = "otel"))]
        drop(rx);
        Arc::new(Tracer { queue, metrics })
    }

    /// Queue a finished span; never waits. A full queue drops it, counted.
    pub fn export(&self, config: &Arc<TraceConfig>, span: SpanData) {
        if self
            .queue
            .try_send(Queued::Span(config.clone(), span))
            .is_err()
        {
            self.metrics.count_spans("dropped", 1);
        }
    }

    /// Wait until the spans queued so far were posted (bounded by `within`); at shutdown.
    pub async fn flush(&self, within: Duration) {
        let (done, posted) = oneshot::channel();
        let _ = tokio::time::timeout(within, async {
            if self.queue.send(Queued::Flush(done)).await.is_ok() {
                let _ = posted.await;
            }
        })
        .await;
    }
}

/// The endpoint's `/v1/traces` URI, from the configured base (`http://host:4318`), which may
/// already name the path.
pub fn traces_endpoint(base: &str) -> Result<http::Uri, String> {
    let base = base.trim();
    let uri: http::Uri = base.parse().map_err(|e| format!("otlp_endpoint: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.authority().is_some() => {}
        _ => {
            return Err(format!(
                "otlp_endpoint: {base:?} is not an http:// or https:// URL with a host"
            ));
        }
    }
    if uri.query().is_some() {
        return Err("otlp_endpoint: no query string, please".into());
    }
    let path = uri.path().trim_end_matches('/');
    if path.ends_with("/v1/traces") {
        return Ok(uri);
    }
    let mut full = String::with_capacity(base.len() + 10);
    let _ = write!(
        full,
        "{}://{}{}/v1/traces",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", |a| a.as_str()),
        path
    );
    full.parse().map_err(|e| format!("otlp_endpoint: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let ctx = SpanContext {
            trace_id: *b"0123456789abcdef",
            span_id: *b"01234567",
            sampled: true,
        };
        let value = ctx.traceparent();
        assert_eq!(
            value.to_str().unwrap(),
            "00-30313233343536373839616263646566-3031323334353637-01"
        );
        assert_eq!(parse_traceparent(value.as_bytes()), Some(ctx));
        let unsampled = SpanContext {
            sampled: false,
            ..ctx
        };
        assert_eq!(
            parse_traceparent(unsampled.traceparent().as_bytes()),
            Some(unsampled)
        );
    }

    #[test]
    fn bad_traceparents_are_ignored() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(parse_traceparent(ok.as_bytes()).is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad.as_bytes()), None, "{bad}");
        }
        // A later version may carry more fields.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        assert!(parse_traceparent(later.as_bytes()).is_some());
    }

    #[test]
    fn endpoints_get_the_traces_path() {
        let ok = |s: &str| traces_endpoint(s).unwrap().to_string();
        assert_eq!(
            ok("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(ok("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(ok("https://c/otlp"), "https://c/otlp/v1/traces");
        assert_eq!(ok("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
        assert!(traces_endpoint("127.0.0.1:4318").is_err());
        assert!(traces_endpoint("ftp://c").is_err());
        assert!(traces_endpoint("http://c/?x=1").is_err());
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let metrics = Arc::new(Metrics::new());
        let (queue, _held) = mpsc::channel(1);
        let tracer = Tracer {
            queue,
            metrics: metrics.clone(),
        };
        let config = Arc::new(TraceConfig {
            endpoint: http::Uri::from_static("http://c/v1/traces"),
            service_name: "s".into(),
            sample_bp: 10_000,
        });
        let trace = RequestTrace::start(&config, &Method::GET, &HeaderMap::new(), UNIX_EPOCH);
        let span = SpanData::server(&trace, "GET r".into(), Duration::from_millis(1));
        tracer.export(&config, span.clone());
        tracer.export(&config, span);
        assert!(
            metrics
                .render()
                .contains("switchyard_trace_spans_total{result=\"dropped\"} 1"),
            "{}",
            metrics.render()
        );
    }

    #[test]
    fn sampling_by_ratio() {
        assert!(sampled(10_000));
        assert!(!sampled(0));
    }

    #[test]
    fn incoming_context_is_continued() {
        let config = TraceConfig {
            endpoint: http::Uri::from_static("http://c/v1/traces"),
            service_name: "s".into(),
            sample_bp: 0,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let trace = RequestTrace::start(&config, &Method::GET, &headers, UNIX_EPOCH);
        assert_eq!(
            trace.span.trace_id_hex().as_str(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            trace.parent,
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert!(trace.span.sampled, "the caller's flag wins over the ratio");
        let fresh = RequestTrace::start(&config, &Method::GET, &HeaderMap::new(), UNIX_EPOCH);
        assert!(!fresh.span.sampled);
        assert_eq!(fresh.parent, None);
        let shadow = trace.shadow();
        assert_ne!(shadow.trace_id, trace.span.trace_id);
        assert!(shadow.sampled);
    }
}
