//! HTTP/1.1 connections to origins: kept and reused, dropped when the origin closes them, and a
//! request that meets a connection the origin just closed is sent again on a fresh one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use support::*;
use tokio::net::TcpListener;

/// An HTTP/1.1 origin that counts the connections it accepted; `close_after` > 0 makes it drop
/// a connection once it has been idle that long (as origins with a short keep-alive do), and
/// `one_shot` makes it answer `Connection: close`.
struct CountingOrigin {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingOrigin {
    async fn start(close_after: Option<Duration>, one_shot: bool) -> CountingOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = service_fn(move |_req: Request<Incoming>| async move {
                        let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                        if one_shot {
                            response
                                .headers_mut()
                                .insert("connection", "close".parse().unwrap());
                        }
                        Ok::<_, Infallible>(response)
                    });
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    if let Some(idle) = close_after {
                        builder
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(idle);
                    }
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        CountingOrigin {
            addr,
            connections,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for CountingOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn sequential_requests_share_one_connection() {
    let origin = CountingOrigin::start(None, false).await;
    let gw = TestGateway::start(&config(&origin.url(), &origin.url(), "")).await;
    for _ in 0..50 {
        let answer = get(&gw.url("/other"), &[]).await;
        assert_eq!(answer.status, 200);
        assert_eq!(&answer.body[..], b"ok");
    }
    assert_eq!(origin.connections(), 1, "the connection was not reused");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_connection_the_origin_closes_is_not_reused() {
    let origin = CountingOrigin::start(None, true).await;
    let gw = TestGateway::start(&config(&origin.url(), &origin.url(), "")).await;
    for _ in 0..10 {
        let answer = get(&gw.url("/other"), &[]).await;
        assert_eq!(answer.status, 200);
    }
    assert_eq!(origin.connections(), 10);
    gw.shutdown().await;
}

// Paused time: the origin's 50 ms and the 120 ms between requests pass as soon as nothing else
// can run.
#[tokio::test(start_paused = true)]
async fn connections_closed_while_idle_are_replaced_without_failing_a_request() {
    // The origin closes a connection after 50 ms without a request; the requests come 120 ms
    // apart, so every pooled connection is dead by the time it would be reused.
    let origin = CountingOrigin::start(Some(Duration::from_millis(50)), false).await;
    let gw = TestGateway::start_paused(&config(&origin.url(), &origin.url(), "")).await;
    for _ in 0..5 {
        let answer = get(&gw.url("/other"), &[]).await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    assert_eq!(origin.connections(), 5);
    gw.shutdown().await;
}
