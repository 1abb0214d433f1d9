//! Slow and abusive clients against the real gateway: slowloris heads, slow and stalled
//! bodies, a slow reader of a large response, connection floods past `max_connections`, too
//! many headers, and HTTP/2 rapid resets and stream floods. Timing runs on paused time: the
//! gateway's clock is tokio's, and time jumps ahead whenever every task waits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use support::h2wire::{
    self, CANCEL, DATA, END_HEADERS, END_STREAM, ENHANCE_YOUR_CALM, GOAWAY, H2, HEADERS, Outcome,
    REFUSED_STREAM, RST_STREAM,
};
use support::wire::{Conn, Read};
use support::*;
use switchyard::body::BoxError;
use switchyard::clock::Clock;

const WAIT: Duration = Duration::from_secs(30);

fn with_listen(extra: &str, upstream: &str) -> String {
    config(upstream, upstream, "").replace("workers = 2", &format!("workers = 2\n{extra}"))
}

fn expect_response(read: Read, label: &str) -> support::wire::RawResponse {
    match read {
        Read::Response(r) => r,
        other => panic!("{label}: no answer: {other:?}"),
    }
}

// === slowloris ===

/// A head that does not complete within `header_read_timeout` gets 408 and the connection
/// ends, even while bytes keep trickling in; so does a slow second head on a keep-alive
/// connection. A connection that sends nothing is closed without a word. Nothing reaches the
/// upstream.
#[tokio::test(start_paused = true)]
async fn slowloris_heads_get_408() {
    let legacy = Upstream::json("legacy").await;
    let gw = TestGateway::start_paused(&with_listen("header_read_timeout = \"2s\"", &legacy.url()))
        .await;
    let clock = Clock::tokio();

    // Trickling: a line every 500 ms, never the empty line that ends the head.
    let started = clock.instant();
    let mut conn = Conn::open(gw.http).await;
    assert!(conn.send(b"GET /slow HTTP/1.1\r\nHost: gw.test\r\n").await);
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(conn.send(format!("X-Drip-{i}: 1\r\n").as_bytes()).await);
    }
    let answer = expect_response(conn.read(WAIT).await, "trickle");
    assert_eq!(answer.status, 408, "{}", answer.text());
    let doc: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(doc["kind"], "client_timeout");
    assert!(answer.closes(), "{:?}", answer.headers);
    assert!(conn.closed_within(WAIT).await);
    let took = clock.instant() - started;
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // Keep-alive: the first request is served, the second head is too slow.
    let mut conn = Conn::open(gw.http).await;
    assert!(
        conn.send(b"GET /one HTTP/1.1\r\nHost: gw.test\r\n\r\n")
            .await
    );
    assert_eq!(expect_response(conn.read(WAIT).await, "first").status, 200);
    assert!(conn.send(b"GET /two HTTP/1.1\r\nHost: gw").await);
    let answer = expect_response(conn.read(WAIT).await, "second");
    assert_eq!(answer.status, 408, "{}", answer.text());

    // Silent: closed after the timeout, nothing written.
    let mut conn = Conn::open(gw.http).await;
    match conn.read(WAIT).await {
        Read::Closed(bytes) => assert!(bytes.is_empty(), "{bytes:?}"),
        other => panic!("silent connection: {other:?}"),
    }

    assert_eq!(legacy.hits(), 1, "only /one reached the upstream");
    // The gateway still serves.
    assert_eq!(get(&gw.url("/after"), &[]).await.status, 200);
    gw.shutdown().await;
}

/// An upgraded connection is a tunnel, not a slow head: bytes without a line end that the
/// client sent into it when the origin closes it get no 408 written after them.
#[tokio::test(start_paused = true)]
async fn a_tunnel_is_not_a_slow_head() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin_url = format!("http://{}", origin.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut stream, _) = origin.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        stream
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-test\r\nConnection: upgrade\r\n\r\n")
            .await
            .unwrap();
        // Take the client's first bytes, then reset the tunnel from this side: the gateway's
        // copy fails at once, without shutting the client's side down first.
        let mut buf = [0u8; 64];
        let _ = stream.read(&mut buf).await;
        #[allow(deprecated)]
        let _ = stream.set_linger(Some(Duration::ZERO));
    });
    let gw =
        TestGateway::start_paused(&with_listen("header_read_timeout = \"2s\"", &origin_url)).await;
    let mut client = tokio::net::TcpStream::connect(gw.http).await.unwrap();
    client
        .write_all(b"GET /tunnel HTTP/1.1\r\nHost: gw.test\r\nUpgrade: x-test\r\nConnection: upgrade\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            client.read(&mut byte).await.unwrap(),
            1,
            "closed before the 101"
        );
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    client
        .write_all(b"GET /not-a-head-but-tunnel-bytes")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, client.read_to_end(&mut rest)).await;
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    gw.shutdown().await;
}

// === slow bodies ===

/// A body that arrives slowly but keeps coming is served whole; one that stalls longer than
/// `body_timeout` between frames gets 408, and the upstream it was streaming to is not blamed.
#[tokio::test(start_paused = true)]
async fn a_slow_body_is_served_and_a_stalled_one_gets_408() {
    let legacy = Upstream::json("legacy").await;
    // The upstream's own timeout runs from the request head; give the slow upload room.
    let cfg = with_listen("body_timeout = \"1s\"", &legacy.url())
        .replace("timeout = \"2s\"", "timeout = \"30s\"");
    let gw = TestGateway::start_paused(&cfg).await;
    let errors_before = gw.upstream_errors();

    let mut conn = Conn::open(gw.http).await;
    assert!(
        conn.send(b"POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 10\r\n\r\n")
            .await
    );
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(conn.send(b"x").await);
    }
    let answer = expect_response(conn.read(WAIT).await, "slow body");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let doc: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(doc["received"], 10);

    let mut conn = Conn::open(gw.http).await;
    assert!(
        conn.send(b"POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 10\r\n\r\nxyz")
            .await
    );
    let answer = expect_response(conn.read(WAIT).await, "stalled body");
    assert_eq!(answer.status, 408, "{}", answer.text());
    let doc: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(doc["kind"], "client_timeout");
    assert_eq!(
        gw.upstream_errors(),
        errors_before,
        "counted against legacy"
    );
    gw.shutdown().await;
}

// === a slow reader of a large response ===

/// What the upstream's response body has produced, and whether it was let go.
#[derive(Default)]
struct Produced {
    bytes: AtomicU64,
    released: AtomicBool,
}

struct Source {
    left: u64,
    produced: Arc<Produced>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.produced.released.store(true, Ordering::SeqCst);
    }
}

const CHUNK: usize = 64 * 1024;
const LARGE: u64 = 1024 * 1024 * 1024;

/// A client that reads a 1 GiB response slowly, then walks away: the gateway pulls from the
/// upstream only as fast as the client reads (what is in flight stays bounded by socket and
/// connection buffers, far below the body), and when the client goes, the upstream's
/// response is dropped and its connection let go.
#[tokio::test(start_paused = true)]
async fn a_slow_reader_is_fed_at_its_pace_and_its_upstream_released() {
    let produced = Arc::new(Produced::default());
    let shared = produced.clone();
    let upstream = Upstream::start(move |_req| {
        let source = Source {
            left: LARGE,
            produced: shared.clone(),
        };
        async move {
            let chunks = futures_util::stream::unfold(source, |mut source| async move {
                if source.left == 0 {
                    return None;
                }
                let n = source.left.min(CHUNK as u64);
                source.left -= n;
                source.produced.bytes.fetch_add(n, Ordering::SeqCst);
                let frame = Frame::data(Bytes::from(vec![b'x'; n as usize]));
                Some((Ok::<_, BoxError>(frame), source))
            });
            http::Response::new(switchyard::body::boxed(http_body_util::StreamBody::new(
                chunks,
            )))
        }
    })
    .await;
    let gw = TestGateway::start_paused(&config(&upstream.url(), &upstream.url(), "")).await;

    let mut stream = tokio::net::TcpStream::connect(gw.http).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /large HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        .await
        .unwrap();
    // In flight at most: the upstream's and the gateway's socket buffers on both hops, and
    // hyper's per-connection buffers; nowhere near the body.
    let bound = 64 * 1024 * 1024;
    let mut received = 0u64;
    let mut buf = vec![0u8; CHUNK];
    for _ in 0..64 {
        // A reader slower than the network: 64 KiB every 100 ms.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the response ended early");
        received += n as u64;
        let ahead = produced
            .bytes
            .load(Ordering::SeqCst)
            .saturating_sub(received);
        assert!(ahead < bound, "{ahead} bytes buffered ahead of the reader");
    }
    assert!(!produced.released.load(Ordering::SeqCst));
    assert!(produced.bytes.load(Ordering::SeqCst) < LARGE / 4);

    // The reader walks away mid-body: the upstream's response is dropped, its connection closed.
    drop(stream);
    let released = eventually(WAIT, || {
        let produced = produced.clone();
        async move { produced.released.load(Ordering::SeqCst) }
    })
    .await;
    assert!(released, "the upstream response was never let go");
    assert!(produced.bytes.load(Ordering::SeqCst) < LARGE / 4);
    // And the gateway serves on.
    let answer = get(&gw.url("/after"), &[]).await;
    assert_eq!(answer.status, 200);
    gw.shutdown().await;
}

// === connection floods ===

/// With `max_connections = 2`, a third connection is not taken up while two are open: it
/// waits in the listen backlog, the admin listener answers meanwhile, and it is served as
/// soon as one of the two closes.
#[tokio::test(start_paused = true)]
async fn connections_past_max_connections_wait_and_admin_still_answers() {
    let legacy = Upstream::json("legacy").await;
    let gw = TestGateway::start_paused(&with_listen(
        "max_connections = 2\nheader_read_timeout = \"60s\"",
        &legacy.url(),
    ))
    .await;
    let request = b"GET /held HTTP/1.1\r\nHost: gw.test\r\n\r\n";
    let mut first = Conn::open(gw.http).await;
    let mut second = Conn::open(gw.http).await;
    for conn in [&mut first, &mut second] {
        assert!(conn.send(request).await);
        assert_eq!(expect_response(conn.read(WAIT).await, "held").status, 200);
    }

    let mut third = Conn::open(gw.http).await;
    assert!(
        third
            .send(b"GET /third HTTP/1.1\r\nHost: gw.test\r\n\r\n")
            .await
    );
    match third.read(Duration::from_secs(5)).await {
        Read::TimedOut(bytes) => assert!(bytes.is_empty()),
        other => panic!("a third connection was taken up: {other:?}"),
    }
    let admin = get(&format!("http://{}/readyz", gw.gw().admin), &[]).await;
    assert_eq!(admin.status, 200, "the admin listener is not counted");
    let metrics = get(&format!("http://{}/metrics", gw.gw().admin), &[]).await;
    assert_eq!(metrics.status, 200);

    drop(first);
    let answer = expect_response(third.read(WAIT).await, "third");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let doc: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(doc["path"], "/third");
    // The second connection was never disturbed.
    assert!(second.send(request).await);
    assert_eq!(
        expect_response(second.read(WAIT).await, "second").status,
        200
    );
    drop((second, third));
    gw.shutdown().await;
}

// === too many headers ===

/// More than `max_headers` fields, or a header block over `max_header_bytes`, is 431; nothing
/// is forwarded and the gateway serves on.
#[tokio::test]
async fn too_many_headers_get_431() {
    let legacy = Upstream::json("legacy").await;
    let gw = TestGateway::start(&with_listen("max_headers = 50", &legacy.url())).await;
    let mut head = String::from("GET /many HTTP/1.1\r\nHost: gw.test\r\n");
    for i in 0..60 {
        head.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    head.push_str("\r\n");
    let mut conn = Conn::open(gw.http).await;
    assert!(conn.send(head.as_bytes()).await);
    let answer = expect_response(conn.read(WAIT).await, "many");
    assert_eq!(answer.status, 431);

    let big = format!(
        "GET /big HTTP/1.1\r\nHost: gw.test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let mut conn = Conn::open(gw.http).await;
    assert!(conn.send(big.as_bytes()).await);
    assert_eq!(expect_response(conn.read(WAIT).await, "big").status, 431);

    assert_eq!(legacy.hits(), 0);
    assert_eq!(get(&gw.url("/after"), &[]).await.status, 200);
    gw.shutdown().await;
}

// === HTTP/2 ===

/// What became of each stream: a response status, a reset code.
#[derive(Debug, Default)]
struct Streams {
    answered: Vec<u32>,
    reset: Vec<(u32, u32)>,
    goaway: Option<u32>,
}

/// Read frames until `done` holds for what was seen, the connection ends, or `wait` passes.
async fn watch(h2: &mut H2, wait: Duration, done: impl Fn(&Streams) -> bool) -> Streams {
    let deadline = Clock::system().instant() + wait;
    let mut seen = Streams::default();
    let pending = std::mem::take(&mut h2.pending);
    let mut pending = pending.into_iter();
    while !done(&seen) {
        let frame = match pending.next() {
            Some(frame) => frame,
            None => match h2.next(deadline).await {
                Some(frame) => frame,
                None => break,
            },
        };
        match frame.kind {
            HEADERS => seen.answered.push(frame.stream),
            RST_STREAM => {
                let code = frame
                    .payload
                    .get(..4)
                    .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                seen.reset.push((frame.stream, code));
            }
            GOAWAY => {
                seen.goaway = h2.goaway;
                break;
            }
            _ => {}
        }
    }
    seen.goaway = seen.goaway.or(h2.goaway);
    seen
}

/// Rapid reset: streams opened and reset at once, hundreds in one write. The connection ends
/// with ENHANCE_YOUR_CALM long before they are all taken up, few reach the upstream, and new
/// connections are served.
#[tokio::test]
async fn h2_rapid_reset_ends_the_connection() {
    let legacy = Upstream::json("legacy").await;
    let gw = TestGateway::start(&config(&legacy.url(), &legacy.url(), "")).await;
    let mut h2 = H2::connect(gw.http).await;
    assert!(h2.settle(WAIT).await);
    let streams = 1000u32;
    let mut burst = Vec::new();
    for i in 0..streams {
        let id = 2 * i + 1;
        let block = h2wire::request_block("GET", "/reset", &[]);
        burst.extend(h2wire::frame_bytes(
            HEADERS,
            END_HEADERS | END_STREAM,
            id,
            &block,
        ));
        burst.extend(h2wire::frame_bytes(
            RST_STREAM,
            0,
            id,
            &CANCEL.to_be_bytes(),
        ));
    }
    let _ = h2.write_raw(&burst).await;
    let seen = watch(&mut h2, WAIT, |_| false).await;
    assert_eq!(seen.goaway, Some(ENHANCE_YOUR_CALM), "{seen:?}");
    let hits = legacy.hits();
    eprintln!(
        "rapid reset: GOAWAY {:?} after {} answers and {} resets; {hits} of {streams} forwarded",
        seen.goaway,
        seen.answered.len(),
        seen.reset.len()
    );
    assert!(
        hits <= switchyard::server::H2_MAX_STREAMS as usize,
        "{hits} of {streams} reset streams were forwarded"
    );

    let mut fresh = H2::connect(gw.http).await;
    assert!(fresh.request(1, "GET", "/after", &[], true).await);
    assert!(matches!(
        fresh.outcome(1, WAIT).await,
        Outcome::Response(200, _)
    ));
    drop((h2, fresh));
    gw.shutdown().await;
}

/// A stream flood: more streams opened at once than the gateway allows. Those past the limit
/// are refused with REFUSED_STREAM and never forwarded; the ones taken up complete normally.
#[tokio::test]
async fn h2_streams_past_the_limit_are_refused() {
    let legacy = Upstream::json("legacy").await;
    let gw = TestGateway::start(&config(&legacy.url(), &legacy.url(), "")).await;
    let limit = switchyard::server::H2_MAX_STREAMS;
    let extra = 30u32;
    let mut h2 = H2::connect(gw.http).await;
    assert!(h2.settle(WAIT).await);
    // Streams that stay open: their bodies never end until told to.
    let mut burst = Vec::new();
    for i in 0..limit + extra {
        let block = h2wire::request_block("POST", "/flood", &[]);
        burst.extend(h2wire::frame_bytes(HEADERS, END_HEADERS, 2 * i + 1, &block));
    }
    assert!(h2.write_raw(&burst).await);
    let seen = watch(&mut h2, WAIT, |s| s.reset.len() as u32 >= extra).await;
    assert_eq!(seen.goaway, None, "{seen:?}");
    assert_eq!(seen.reset.len() as u32, extra, "{seen:?}");
    assert!(
        seen.reset.iter().all(|(_, code)| *code == REFUSED_STREAM),
        "{seen:?}"
    );

    // End every body; exactly the streams taken up are answered.
    let refused: Vec<u32> = seen.reset.iter().map(|(id, _)| *id).collect();
    let mut ends = Vec::new();
    for i in 0..limit + extra {
        let id = 2 * i + 1;
        if !refused.contains(&id) {
            ends.extend(h2wire::frame_bytes(DATA, END_STREAM, id, b""));
        }
    }
    assert!(h2.write_raw(&ends).await);
    let seen = watch(&mut h2, WAIT, |s| s.answered.len() as u32 >= limit).await;
    assert_eq!(seen.answered.len() as u32, limit, "{seen:?}");
    assert_eq!(legacy.hits(), limit as usize);
    drop(h2);
    gw.shutdown().await;
}
