//! A loopback upstream that records what reaches it: every raw byte read on its connections,
//! and every request as its own HTTP parser (hyper) read it. It answers
//! `{"path": <target>, "received": <body bytes>}`, except `/early`, which answers 401 at once
//! without reading the body (an origin that does not wait for `Expect: 100-continue` bodies).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use switchyard::body::{self, Body};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// One request as the upstream parsed it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub version: http::Version,
    /// Header names lower-case, in order.
    pub headers: Vec<(String, String)>,
    /// The body, or the error that cut it off.
    pub body: Result<Vec<u8>, String>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }
}

#[derive(Default)]
struct Log {
    requests: Mutex<Vec<Recorded>>,
    raw: Mutex<Vec<u8>>,
    heads: AtomicUsize,
}

pub struct Recorder {
    pub addr: SocketAddr,
    log: Arc<Log>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Log::default());
        let shared = log.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let log = shared.clone();
                tokio::spawn(async move {
                    let tap = Tap {
                        inner: stream,
                        log: log.clone(),
                    };
                    let service = service_fn(move |req| {
                        let log = log.clone();
                        async move { Ok::<_, Infallible>(answer(&log, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(tap), service)
                        .await;
                });
            }
        });
        Recorder { addr, log, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Request heads the upstream's parser dispatched.
    pub fn hits(&self) -> usize {
        self.log.heads.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.requests.lock().clone()
    }

    /// Every byte read on the upstream's connections so far.
    pub fn raw(&self) -> Vec<u8> {
        self.log.raw.lock().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(log: &Log, req: Request<Incoming>) -> Response<Body> {
    log.heads.fetch_add(1, Ordering::SeqCst);
    let (parts, incoming) = req.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let early = parts.uri.path().ends_with("/early");
    let body = if early {
        Ok(Vec::new())
    } else {
        incoming
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .map_err(|e| e.to_string())
    };
    let received = body.as_ref().map(Vec::len).unwrap_or(0);
    log.requests.lock().push(Recorded {
        method: parts.method.to_string(),
        target: target.clone(),
        version: parts.version,
        headers,
        body,
    });
    let doc = serde_json::json!({ "path": target, "received": received });
    let mut response = Response::new(body::full(doc.to_string()));
    if early {
        *response.status_mut() = http::StatusCode::UNAUTHORIZED;
    }
    response
}

/// The upstream side of a connection, copying every byte read into the log.
struct Tap {
    inner: TcpStream,
    log: Arc<Log>,
}

impl AsyncRead for Tap {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            this.log
                .raw
                .lock()
                .extend_from_slice(&buf.filled()[before..]);
        }
        poll
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
