//! Builder-style harness for integration tests: real hyper upstreams on loopback ports, the
//! real gateway started in-process on `127.0.0.1:0`, and a plain HTTP client.
#![allow(dead_code)]

pub mod h2wire;
pub mod recorder;
pub mod wire;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use switchyard::body::{self, Body};
use switchyard::gateway::{Gateway, Options};
use tokio::net::TcpListener;

type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync,
>;

/// A running upstream.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// An upstream answering with `handler`.
    pub async fn start<F, Fut>(handler: F) -> Upstream
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, Arc::new(move |req| Box::pin(handler(req))))
    }

    /// An upstream on a given listener (lets a test restart one on the same port).
    pub fn serve(listener: TcpListener, handler: Handler) -> Upstream {
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler(req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream { addr, hits, task }
    }

    /// An upstream answering JSON that names it: `{served_by, method, path, headers, received}`.
    pub async fn json(name: &'static str) -> Upstream {
        Self::start(move |req| async move { json_answer(name, req).await }).await
    }

    /// An upstream that always answers `status`.
    pub async fn status(status: u16) -> Upstream {
        Self::start(move |_req| async move {
            let mut r = Response::new(body::full("failing"));
            *r.status_mut() = StatusCode::from_u16(status).unwrap();
            r
        })
        .await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stop accepting (the port is closed afterwards).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The default JSON answer of a test upstream.
pub async fn json_answer(name: &str, req: Request<Incoming>) -> Response<Body> {
    let (parts, incoming) = req.into_parts();
    let received = incoming
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                serde_json::Value::String(v.to_str().unwrap_or("").to_string()),
            )
        })
        .collect();
    let doc = serde_json::json!({
        "served_by": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "headers": headers,
        "received": received,
    });
    let mut r = Response::new(body::full(doc.to_string()));
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

/// A gateway started in-process from a config text; `{LEGACY}`, `{NEW}` and other
/// placeholders are replaced by the caller before.
pub struct TestGateway {
    pub gateway: Option<Gateway>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub http: SocketAddr,
}

impl TestGateway {
    /// Write `config` (plus extra files) into a temp dir and start the gateway on it.
    pub async fn start(config: &str) -> TestGateway {
        Self::start_with(config, &[], false).await
    }

    /// Start on tokio's clock: under `start_paused` the gateway's wall time and instants move
    /// only with `tokio::time` (auto-advance or `advance`).
    pub async fn start_paused(config: &str) -> TestGateway {
        Self::start_opts(
            config,
            &[],
            Options {
                clock: Some(switchyard::clock::Clock::tokio()),
                ..Options::default()
            },
        )
        .await
    }

    pub async fn start_with(config: &str, files: &[(&str, &[u8])], watch: bool) -> TestGateway {
        Self::start_opts(
            config,
            files,
            Options {
                watch,
                ..Options::default()
            },
        )
        .await
    }

    pub async fn start_opts(
        config: &str,
        files: &[(&str, &[u8])],
        options: Options,
    ) -> TestGateway {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let path = dir.path().join("gw.toml");
        std::fs::write(&path, config).unwrap();
        let gateway = Gateway::start(&path, options)
            .await
            .unwrap_or_else(|e| panic!("gateway did not start: {e}\n{config}"));
        let http = gateway.http.or(gateway.https).unwrap();
        TestGateway {
            gateway: Some(gateway),
            dir,
            config: path,
            http,
        }
    }

    pub fn gw(&self) -> &Gateway {
        self.gateway.as_ref().unwrap()
    }

    /// The lines of `switchyard_upstream_errors_total`, to compare before and after a case
    /// (a client's fault must never count against an upstream).
    pub fn upstream_errors(&self) -> Vec<String> {
        self.gw()
            .metrics
            .render()
            .lines()
            .filter(|l| l.starts_with("switchyard_upstream_errors_total"))
            .map(str::to_string)
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub async fn shutdown(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }
}

/// A minimal config: one route `cards` on `/api/cards/{*rest}` between two upstreams.
pub fn config(legacy: &str, new: &str, route_extra: &str) -> String {
    format!(
        r#"
[listen]
http = "127.0.0.1:0"
workers = 2

[admin]
listen = "127.0.0.1:0"
debug_headers = true

[tenant]
sources = [{{ header = "x-tenant-id" }}, {{ host = "{{tenant}}.app.example.com" }}]

[upstreams.legacy]
origins = ["{legacy}"]
connect_timeout = "500ms"
timeout = "2s"

[upstreams.cards]
origins = ["{new}"]
connect_timeout = "500ms"
timeout = "2s"

[default]
upstream = "legacy"

[[routes]]
name = "cards"
path = ["/api/cards", "/api/cards/{{*rest}}"]
legacy = "legacy"
new = "cards"
tenants = ["acme"]
exclude = ["initech"]
fallback = true
{route_extra}
"#
    )
}

/// A plain HTTP/1.1 client.
pub fn client() -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
> {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

/// The answer of a request, body collected.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn served_by(&self) -> String {
        self.json()["served_by"].as_str().unwrap_or("").to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Send a request with headers and a body, and collect the answer.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Answer {
    let mut builder = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder.body(Full::new(body.into())).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), client().request(request))
        .await
        .expect("request timed out")
        .expect("request failed");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// GET with headers.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    send("GET", url, headers, Bytes::new()).await
}

/// Write raw bytes to the gateway and read what comes back until the connection closes or
/// `wait` passes.
pub async fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

/// Retry `check` until it holds or `within` passes (for state that settles, e.g. reloads).
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let clock = switchyard::clock::Clock::tokio();
    let deadline = clock.instant() + within;
    loop {
        if check().await {
            return true;
        }
        if clock.instant() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
