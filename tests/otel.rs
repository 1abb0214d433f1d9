//! OpenTelemetry traces against a small OTLP/HTTP receiver on loopback: the spans and their
//! attributes, parent and link relations, and the `traceparent` each upstream received.

#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use switchyard::body;
use tokio::sync::mpsc;

use support::*;

/// The OTLP messages the test reads (field numbers of opentelemetry-proto).
mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        #[prost(message, optional, tag = "1")]
        pub scope: Option<Scope>,
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Scope {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub version: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        #[prost(string, tag = "3")]
        pub trace_state: String,
        #[prost(bytes = "vec", tag = "4")]
        pub parent_span_id: Vec<u8>,
        #[prost(string, tag = "5")]
        pub name: String,
        #[prost(int32, tag = "6")]
        pub kind: i32,
        #[prost(fixed64, tag = "7")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "8")]
        pub end_time_unix_nano: u64,
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<KeyValue>,
        #[prost(message, repeated, tag = "13")]
        pub links: Vec<Link>,
        #[prost(message, optional, tag = "15")]
        pub status: Option<Status>,
        #[prost(fixed32, tag = "16")]
        pub flags: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Link {
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(int32, tag = "3")]
        pub code: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(oneof = "Value", tags = "1, 2, 3")]
        pub value: Option<Value>,
    }
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        String(String),
        #[prost(bool, tag = "2")]
        Bool(bool),
        #[prost(int64, tag = "3")]
        Int(i64),
    }
}

use proto::{ExportTraceServiceRequest, Span, Value};

const SERVER: i32 = 2;
const CLIENT: i32 = 3;

/// A received span with its batch's `service.name`.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

/// An OTLP/HTTP receiver: `POST /v1/traces` with a protobuf body, every span handed on.
struct Receiver {
    addr: SocketAddr,
    spans: mpsc::UnboundedReceiver<Received>,
}

impl Receiver {
    async fn start() -> Receiver {
        Self::answering(200).await
    }

    /// A receiver that decodes every batch and answers `status`.
    async fn answering(status: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, spans) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let tx = tx.clone();
                        async move { Ok::<_, Infallible>(receive(req, &tx, status).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, spans }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next span, within a bounded time.
    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.spans.recv())
            .await
            .expect("no span reached the receiver within 10 s")
            .expect("receiver closed")
    }

    /// The next `n` spans.
    async fn take(&mut self, n: usize) -> Vec<Received> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }
}

async fn receive(
    req: Request<Incoming>,
    tx: &mpsc::UnboundedSender<Received>,
    status: u16,
) -> Response<body::Body> {
    let bad = |status: u16| {
        Response::builder()
            .status(status)
            .body(body::empty())
            .unwrap()
    };
    if req.method() != http::Method::POST || req.uri().path() != "/v1/traces" {
        return bad(404);
    }
    if req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        != Some("application/x-protobuf")
    {
        return bad(415);
    }
    let bytes = req.into_body().collect().await.unwrap().to_bytes();
    let Ok(request) = ExportTraceServiceRequest::decode(bytes) else {
        return bad(400);
    };
    for rs in request.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for ss in rs.scope_spans {
            assert_eq!(
                ss.scope.as_ref().map(|s| s.name.as_str()),
                Some("switchyard")
            );
            for span in ss.spans {
                let _ = tx.send(Received {
                    service: service.clone(),
                    span,
                });
            }
        }
    }
    bad(status)
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn str_attr<'a>(span: &'a Span, key: &str) -> &'a str {
    match attr(span, key) {
        Some(Value::String(s)) => s,
        other => panic!("{key}: {other:?} in {span:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `(trace id, parent span id, flags)` of a `traceparent`.
fn parse(traceparent: &str) -> (String, String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

fn traced(cfg: String, receiver: &Receiver, extra: &str) -> String {
    format!(
        "{cfg}\n[telemetry]\notlp_endpoint = \"{}\"\n{extra}\n",
        receiver.endpoint()
    )
}

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn a_span_per_request_continues_the_callers_trace() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let mut receiver = Receiver::start().await;
    let cfg = traced(
        config(&legacy.url(), &new.url(), ""),
        &receiver,
        "service_name = \"edge\"\naccess_log = \"access.log\"",
    );
    let gw = TestGateway::start(&cfg).await;
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let a = get(
        &gw.url("/api/cards/7"),
        &[
            ("x-tenant-id", "acme"),
            ("x-request-id", "req-1"),
            ("traceparent", &caller),
        ],
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.served_by(), "cards");
    let sent = a.json()["headers"]["traceparent"]
        .as_str()
        .expect("the new side got a traceparent")
        .to_owned();
    let (trace, parent, flags) = parse(&sent);
    assert_eq!(trace, CALLER_TRACE, "the caller's trace is continued");
    assert_ne!(
        parent, CALLER_SPAN,
        "the upstream's parent is the gateway's span"
    );
    assert_eq!(flags, "01");

    let got = receiver.next().await;
    let span = &got.span;
    assert_eq!(got.service, "edge");
    assert_eq!(span.name, "GET cards");
    assert_eq!(span.kind, SERVER);
    assert_eq!(hex(&span.trace_id), CALLER_TRACE);
    assert_eq!(hex(&span.parent_span_id), CALLER_SPAN);
    assert_eq!(hex(&span.span_id), parent);
    assert_eq!(span.flags & 0x301, 0x301, "sampled, remote parent");
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    assert!(span.start_time_unix_nano > 1_600_000_000_000_000_000);
    assert_eq!(str_attr(span, "switchyard.route"), "cards");
    assert_eq!(str_attr(span, "switchyard.side"), "new");
    assert_eq!(str_attr(span, "switchyard.reason"), "tenant_listed");
    assert_eq!(str_attr(span, "switchyard.upstream"), "cards");
    assert_eq!(str_attr(span, "switchyard.request_id"), "req-1");
    assert_eq!(str_attr(span, "http.request.method"), "GET");
    assert_eq!(
        attr(span, "http.response.status_code"),
        Some(&Value::Int(200))
    );
    assert_eq!(attr(span, "switchyard.fallback"), Some(&Value::Bool(false)));
    assert_eq!(attr(span, "switchyard.shadowed"), Some(&Value::Bool(false)));
    assert_eq!(attr(span, "switchyard.generation"), Some(&Value::Int(1)));
    assert!(span.status.is_none(), "a 200 is no error");

    // The access log line names the trace.
    let log = gw.dir.path().join("access.log");
    let path = log.clone();
    assert!(
        eventually(Duration::from_secs(10), move || {
            let path = path.clone();
            async move { std::fs::read_to_string(&path).is_ok_and(|t| t.ends_with('\n')) }
        })
        .await,
        "no access log line"
    );
    let line = std::fs::read_to_string(&log).unwrap();
    let entry: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert_eq!(entry["trace_id"], CALLER_TRACE);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_fallback_carries_the_gateway_span_to_legacy_and_roots_new_traces() {
    let legacy = Upstream::json("legacy").await;
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<Option<String>>();
    let new = Upstream::start(move |req| {
        let seen_tx = seen_tx.clone();
        async move {
            let tp = req
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let _ = seen_tx.send(tp);
            Response::builder()
                .status(503)
                .body(body::full("down"))
                .unwrap()
        }
    })
    .await;
    let mut receiver = Receiver::start().await;
    let cfg = traced(config(&legacy.url(), &new.url(), ""), &receiver, "");
    let gw = TestGateway::start(&cfg).await;
    let a = get(&gw.url("/api/cards/7"), &[("x-tenant-id", "acme")]).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.served_by(), "legacy");
    let to_legacy = a.json()["headers"]["traceparent"]
        .as_str()
        .expect("legacy got a traceparent")
        .to_owned();
    let to_new = seen
        .recv()
        .await
        .unwrap()
        .expect("the new side got a traceparent");
    assert_eq!(
        to_new, to_legacy,
        "both attempts name the gateway span as parent"
    );

    let span = receiver.next().await.span;
    let (trace, parent, _) = parse(&to_legacy);
    assert_eq!(hex(&span.trace_id), trace);
    assert_eq!(hex(&span.span_id), parent);
    assert!(
        span.parent_span_id.is_empty(),
        "a new trace has a root span"
    );
    assert_eq!(span.flags & 0x301, 0x101, "sampled, no remote parent");
    assert_eq!(str_attr(&span, "switchyard.side"), "legacy");
    assert_eq!(attr(&span, "switchyard.fallback"), Some(&Value::Bool(true)));
    assert!(!str_attr(&span, "switchyard.request_id").is_empty());
    gw.shutdown().await;
}

#[tokio::test]
async fn the_shadow_copy_has_its_own_span_linked_to_the_primary() {
    let legacy = Upstream::json("legacy").await;
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<Option<String>>();
    let new = Upstream::start(move |req| {
        let seen_tx = seen_tx.clone();
        async move {
            let tp = req
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            assert!(
                req.headers().get("tracestate").is_none(),
                "the shadow copy's trace is not the caller's"
            );
            let _ = seen_tx.send(tp);
            json_answer("cards", req).await
        }
    })
    .await;
    let mut receiver = Receiver::start().await;
    let cfg = config(
        &legacy.url(),
        &new.url(),
        "shadow = { percent = 100, self_check_percent = 0 }\n",
    )
    .replace(
        "[default]",
        "[store]\nurl = \"sqlite::memory:\"\n\n[default]",
    );
    let gw = TestGateway::start(&traced(cfg, &receiver, "")).await;
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let a = get(
        &gw.url("/api/cards/9"),
        &[
            ("x-tenant-id", "globex"),
            ("traceparent", &caller),
            ("tracestate", "vendor=1"),
        ],
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.served_by(), "legacy");
    assert_eq!(
        a.json()["headers"]["tracestate"],
        "vendor=1",
        "the caller's trace state goes with the caller's trace"
    );
    let (_, primary_span, _) = parse(a.json()["headers"]["traceparent"].as_str().unwrap());

    let to_shadow = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("no shadow copy within 10 s")
        .unwrap()
        .expect("the shadow copy carries a traceparent");
    let (shadow_trace, shadow_parent, flags) = parse(&to_shadow);
    assert_ne!(
        shadow_trace, CALLER_TRACE,
        "the copy runs in a trace of its own"
    );
    assert_eq!(flags, "01");

    let spans = receiver.take(2).await;
    let primary = spans
        .iter()
        .find(|r| r.span.kind == SERVER)
        .map(|r| &r.span)
        .expect("the primary's span");
    let shadow = spans
        .iter()
        .find(|r| r.span.kind == CLIENT)
        .map(|r| &r.span)
        .expect("the shadow copy's span");
    assert_eq!(hex(&primary.trace_id), CALLER_TRACE);
    assert_eq!(hex(&primary.span_id), primary_span);
    assert_eq!(
        attr(primary, "switchyard.shadowed"),
        Some(&Value::Bool(true))
    );
    assert_eq!(str_attr(primary, "switchyard.reason"), "default");

    assert_eq!(shadow.name, "shadow cards");
    assert_eq!(hex(&shadow.trace_id), shadow_trace);
    assert_eq!(hex(&shadow.span_id), shadow_parent);
    assert!(shadow.parent_span_id.is_empty());
    assert_eq!(shadow.links.len(), 1);
    assert_eq!(hex(&shadow.links[0].trace_id), CALLER_TRACE);
    assert_eq!(hex(&shadow.links[0].span_id), primary_span);
    assert_eq!(str_attr(shadow, "switchyard.side"), "new");
    assert_eq!(str_attr(shadow, "switchyard.route"), "cards");
    assert_eq!(
        str_attr(shadow, "switchyard.request_id"),
        str_attr(primary, "switchyard.request_id")
    );
    assert_eq!(
        attr(shadow, "http.response.status_code"),
        Some(&Value::Int(200))
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn unsampled_requests_propagate_without_spans() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let mut receiver = Receiver::start().await;
    let cfg = traced(
        config(&legacy.url(), &new.url(), ""),
        &receiver,
        "sample_ratio = 0.0",
    );
    let gw = TestGateway::start(&cfg).await;
    let a = get(&gw.url("/api/cards/1"), &[("x-request-id", "not-sampled")]).await;
    let (_, _, flags) = parse(a.json()["headers"]["traceparent"].as_str().unwrap());
    assert_eq!(flags, "00", "the decision not to sample travels on");
    // A caller's sampled flag wins over the ratio.
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let b = get(
        &gw.url("/api/cards/2"),
        &[("x-request-id", "sampled"), ("traceparent", &caller)],
    )
    .await;
    assert_eq!(b.status, 200);
    // Spans leave in request order: the first to arrive is the second request's.
    let span = receiver.next().await.span;
    assert_eq!(str_attr(&span, "switchyard.request_id"), "sampled");
    gw.gw().proxy.tracer.flush(Duration::from_secs(10)).await;
    assert!(
        receiver.spans.try_recv().is_err(),
        "an unsampled request was exported"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn tracing_off_leaves_the_callers_traceparent_alone() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let gw = TestGateway::start(&config(&legacy.url(), &new.url(), "")).await;
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let a = get(
        &gw.url("/api/cards/1"),
        &[("x-tenant-id", "acme"), ("traceparent", &caller)],
    )
    .await;
    assert_eq!(a.json()["headers"]["traceparent"], caller.as_str());
    let b = get(&gw.url("/api/cards/1"), &[("x-tenant-id", "acme")]).await;
    assert!(b.json()["headers"].get("traceparent").is_none());
    gw.shutdown().await;
}

#[tokio::test]
async fn a_reload_moves_the_endpoint_and_bad_settings_are_refused() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let mut first = Receiver::start().await;
    let mut second = Receiver::start().await;
    let base = config(&legacy.url(), &new.url(), "");
    let gw = TestGateway::start(&traced(base.clone(), &first, "")).await;
    get(&gw.url("/api/cards/1"), &[("x-request-id", "one")]).await;
    assert_eq!(
        str_attr(&first.next().await.span, "switchyard.request_id"),
        "one"
    );

    std::fs::write(&gw.config, traced(base.clone(), &second, "")).unwrap();
    gw.gw().reload().await.expect("reload");
    get(&gw.url("/api/cards/1"), &[("x-request-id", "two")]).await;
    assert_eq!(
        str_attr(&second.next().await.span, "switchyard.request_id"),
        "two"
    );

    for bad in [
        "otlp_endpoint = \"127.0.0.1:4318\"",
        "otlp_endpoint = \"http://c:4318\"\nsample_ratio = 1.5",
        "otlp_endpoint = \"http://c:4318\"\nservice_name = \" \"",
    ] {
        std::fs::write(&gw.config, format!("{base}\n[telemetry]\n{bad}\n")).unwrap();
        assert!(gw.gw().reload().await.is_err(), "{bad} was accepted");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn spans_the_collector_refuses_are_counted_as_failed() {
    let legacy = Upstream::json("legacy").await;
    let new = Upstream::json("cards").await;
    let mut receiver = Receiver::answering(503).await;
    let cfg = traced(config(&legacy.url(), &new.url(), ""), &receiver, "");
    let gw = TestGateway::start(&cfg).await;
    let a = get(&gw.url("/api/cards/1"), &[("x-tenant-id", "acme")]).await;
    assert_eq!(
        a.status, 200,
        "a failing collector does not touch the request"
    );
    receiver.next().await;
    // The flush is answered once the batch before it was posted and counted.
    gw.gw().proxy.tracer.flush(Duration::from_secs(10)).await;
    let metrics = gw.gw().metrics.render();
    assert!(
        metrics.contains("switchyard_trace_spans_total{result=\"failed\"} 1"),
        "the refused span was not counted: {metrics}"
    );
    gw.shutdown().await;
}
