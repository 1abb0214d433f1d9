//! A 1 GiB body each way through the gateway with flat memory. Its own test binary, so the
//! process's RSS measures this test alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use support::*;
use switchyard::body as sbody;

/// Resident set size of this process, in bytes (Linux).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// A body of `total` bytes produced chunk by chunk, never held whole.
fn generated(total: u64) -> http_body_util::combinators::UnsyncBoxBody<Bytes, sbody::BoxError> {
    let chunk = Bytes::from(vec![b'z'; 64 * 1024]);
    let mut left = total;
    let stream = futures_util::stream::iter(std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let n = left.min(chunk.len() as u64);
        left -= n;
        Some(Ok::<_, sbody::BoxError>(Frame::data(
            chunk.slice(..n as usize),
        )))
    }));
    StreamBody::new(stream).boxed_unsync()
}

#[tokio::test]
async fn large_bodies_stream_both_ways_with_flat_memory() {
    const TOTAL: u64 = 1 << 30; // 1 GiB each way
    // Upstream: counts the request body as it streams, answers with a generated body.
    let upstream = Upstream::start(|req| async move {
        let mut body = req.into_body();
        let mut seen: u64 = 0;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(d) = frame.data_ref() {
                seen += d.len() as u64;
            }
        }
        assert_eq!(seen, TOTAL, "upstream saw a short request body");
        http::Response::new(generated(TOTAL))
    })
    .await;
    // The upstream answers once it has the whole GiB: its time to the response head is the
    // upload's, so the 2 s of the test config would be a race on a busy machine.
    let gw = TestGateway::start(
        &config(&upstream.url(), &upstream.url(), "")
            .replace("timeout = \"2s\"", "timeout = \"120s\""),
    )
    .await;
    let before = rss();

    let request = http::Request::post(gw.url("/upload"))
        .body(generated(TOTAL))
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::combinators::UnsyncBoxBody<Bytes, sbody::BoxError>>(
    );
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut seen: u64 = 0;
    let mut peak = before;
    while let Some(frame) = body.frame().await {
        if let Some(d) = frame.unwrap().data_ref() {
            seen += d.len() as u64;
            if seen % (64 << 20) < d.len() as u64 {
                peak = peak.max(rss());
            }
        }
    }
    assert_eq!(seen, TOTAL);
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 96 << 20,
        "memory grew by {} MiB while streaming 2 GiB",
        growth >> 20
    );
    gw.shutdown().await;
}
