//! HTTP/1.1 to an origin, driven by the request's own task.
//!
//! hyper's pooled client runs every upstream connection in a task of its own: each request
//! crosses from the request's task to the connection's task and back (a channel send and a
//! wake-up each way, and one more per body chunk). Here the connection future is polled by
//! whoever is waiting on it — the request's task while the response head is awaited, then the
//! response body's reader (the downstream connection's task) while the body streams — so a
//! proxied request stays on one task from the client's bytes to the origin's answer.
//!
//! Idle connections wait in a lock-free queue per origin (at most `max_idle_per_origin`). A
//! connection is reused only after its response body was read to the end and hyper reports it
//! ready for another request; before reuse it is polled once, so one the origin closed while
//! idle is noticed and dropped; one idle longer than the upstream's `idle_timeout` is dropped.
//! A request that a reused connection could not take (the origin closed it at that very
//! moment, before the request was written) is sent once more on a fresh connection: hyper hands
//! the unsent request back, so nothing is copied for the retry.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_queue::ArrayQueue;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tower::ServiceExt;

use crate::body::Body;
use crate::clock::{Clock, Instant};

type Io = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// Largest read buffer of an upstream connection (also the largest response head accepted).
const READ_BUFFER_MAX: usize = 64 * 1024;
type Conn = http1::Connection<Io, Body>;

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum H1Error {
    #[error("connect: {0}")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error("the connection closed before the answer began")]
    Closed,
}

/// One open connection: the request handle and the connection's I/O future.
pub(crate) struct H1Conn {
    sender: http1::SendRequest<Body>,
    conn: Pin<Box<Conn>>,
}

/// An idle connection in an origin's queue.
pub(crate) struct Idle {
    conn: H1Conn,
    since: Instant,
}

/// Idle connections of one origin.
pub(crate) struct IdleQueue {
    queue: ArrayQueue<Idle>,
}

impl std::fmt::Debug for IdleQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleQueue")
            .field("idle", &self.queue.len())
            .finish()
    }
}

impl IdleQueue {
    pub(crate) fn new(capacity: usize) -> IdleQueue {
        IdleQueue {
            queue: ArrayQueue::new(capacity.max(1)),
        }
    }

    /// A ready idle connection not older than `max_idle`, if any; stale or closed ones are
    /// dropped on the way.
    fn take(&self, now: Instant, max_idle: Duration) -> Option<H1Conn> {
        while let Some(mut idle) = self.queue.pop() {
            if now.saturating_duration_since(idle.since) >= max_idle {
                continue;
            }
            if idle.conn.still_open() {
                return Some(idle.conn);
            }
        }
        None
    }

    fn put(&self, conn: H1Conn, now: Instant) {
        // A full queue closes the connection (dropped here).
        let _ = self.queue.push(Idle { conn, since: now });
    }
}

impl H1Conn {
    /// Poll the connection once without waiting: false when the origin closed it (or it
    /// failed) while idle.
    fn still_open(&mut self) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        matches!(self.conn.as_mut().poll(&mut cx), Poll::Pending) && self.sender.is_ready()
    }
}

/// What a pool needs to open and keep HTTP/1.1 connections to its origins.
pub(crate) struct H1Client {
    connector: HttpsConnector<HttpConnector>,
    idle_timeout: Duration,
    clock: Clock,
}

impl H1Client {
    pub(crate) fn new(
        connector: HttpsConnector<HttpConnector>,
        idle_timeout: Duration,
        clock: Clock,
    ) -> H1Client {
        H1Client {
            connector,
            idle_timeout,
            clock,
        }
    }

    /// Send `request` (its URI absolute: scheme and authority pick the connection, the path
    /// goes on the request line) and return the response once its head arrived; the body
    /// streams from the connection, which goes back to `idle` when the body has been read.
    pub(crate) async fn send(
        &self,
        idle: &Arc<IdleQueue>,
        request: Request<Body>,
    ) -> Result<Response<UpstreamBody>, H1Error> {
        let (mut parts, body) = request.into_parts();
        let target = std::mem::take(&mut parts.uri);
        parts.uri = match target.path_and_query() {
            Some(pq) => http::Uri::from(pq.clone()),
            None => http::Uri::from_static("/"),
        };
        if !parts.headers.contains_key(http::header::HOST)
            && let Some(authority) = target.authority()
            && let Ok(host) = http::HeaderValue::from_str(authority.as_str())
        {
            parts.headers.insert(http::header::HOST, host);
        }
        let request = Request::from_parts(parts, body);
        let Some(conn) = idle.take(self.clock.instant(), self.idle_timeout) else {
            let conn = self.connect(&target).await?;
            return exchange(conn, request, idle, &self.clock)
                .await
                .map_err(Unsent::into_error);
        };
        match exchange(conn, request, idle, &self.clock).await {
            // The reused connection could not take the request: once more on a fresh one.
            Err(Unsent {
                request: Some(request),
                ..
            }) => {
                let conn = self.connect(&target).await?;
                exchange(conn, request, idle, &self.clock)
                    .await
                    .map_err(Unsent::into_error)
            }
            Err(unsent) => Err(unsent.into_error()),
            Ok(response) => Ok(response),
        }
    }

    /// Open a connection. The future is boxed: connecting (TCP, perhaps TLS) is the rare path,
    /// and its large state would otherwise be carried by every request's future.
    fn connect(
        &self,
        uri: &http::Uri,
    ) -> Pin<Box<dyn Future<Output = Result<H1Conn, H1Error>> + Send + 'static>> {
        let connector = self.connector.clone();
        let uri = uri.clone();
        Box::pin(async move {
            let io = connector.oneshot(uri).await.map_err(H1Error::Connect)?;
            // The read buffer grows with large bodies up to this, and an idle pooled connection
            // keeps what it grew to: hyper's default (~400 KiB) over 64 idle connections held
            // tens of MiB after a burst of large answers.
            let (sender, conn) = http1::Builder::new()
                .max_buf_size(READ_BUFFER_MAX)
                .handshake(io)
                .await
                .map_err(|e| H1Error::Connect(Box::new(e)))?;
            Ok(H1Conn {
                sender,
                conn: Box::pin(conn),
            })
        })
    }
}

/// A failed exchange, with the request when hyper could hand it back unsent.
struct Unsent {
    error: H1Error,
    request: Option<Request<Body>>,
}

impl Unsent {
    fn into_error(self) -> H1Error {
        self.error
    }
}

impl From<H1Error> for Unsent {
    fn from(error: H1Error) -> Unsent {
        Unsent {
            error,
            request: None,
        }
    }
}

impl H1Error {
    /// True when no connection could be made.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, H1Error::Connect(_))
    }
}

/// Send one request on `conn`, polling the connection while the response head is awaited.
async fn exchange(
    mut conn: H1Conn,
    request: Request<Body>,
    idle: &Arc<IdleQueue>,
    clock: &Clock,
) -> Result<Response<UpstreamBody>, Unsent> {
    // A fresh connection may not be ready at once; an idle one is.
    std::future::poll_fn(|cx| {
        if let Poll::Ready(Err(e)) = conn.conn.as_mut().poll(cx) {
            return Poll::Ready(Err(H1Error::Http(e)));
        }
        conn.sender.poll_ready(cx).map_err(H1Error::Http)
    })
    .await?;
    let mut answer = std::pin::pin!(conn.sender.try_send_request(request));
    let mut open = true;
    let response = std::future::poll_fn(|cx| {
        if open {
            match conn.conn.as_mut().poll(cx) {
                Poll::Pending => {}
                // The connection ended; the answer, if it came, is with the request handle.
                Poll::Ready(Ok(())) => open = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(H1Error::Http(e).into())),
            }
        }
        match answer.as_mut().poll(cx) {
            Poll::Ready(Ok(response)) => Poll::Ready(Ok(response)),
            Poll::Ready(Err(mut failed)) => Poll::Ready(Err(Unsent {
                request: failed.take_message(),
                error: H1Error::Http(failed.into_error()),
            })),
            Poll::Pending if !open => Poll::Ready(Err(H1Error::Closed.into())),
            Poll::Pending => Poll::Pending,
        }
    })
    .await?;
    let (head, incoming) = response.into_parts();
    let mut body = DrivenBody {
        incoming,
        conn: open.then_some(conn),
        idle: idle.clone(),
        clock: clock.clone(),
        done: false,
    };
    if body.incoming.is_end_stream() {
        body.finish();
    }
    Ok(Response::from_parts(head, UpstreamBody::Driven(body)))
}

/// A response body from an origin.
pub enum UpstreamBody {
    /// From a connection this body drives itself (HTTP/1.1).
    Driven(DrivenBody),
    /// From hyper's pooled client (HTTP/2 and upgrades), whose connections run on their own.
    Pooled(Incoming),
}

/// The body of a response on a connection polled by its reader: reading the body drives the
/// connection, and the end of the body returns the connection to its origin's idle queue.
pub struct DrivenBody {
    incoming: Incoming,
    /// `None` once returned to the queue or found closed.
    conn: Option<H1Conn>,
    idle: Arc<IdleQueue>,
    clock: Clock,
    done: bool,
}

impl DrivenBody {
    /// The body was read to its end: let hyper finish the exchange, then keep the connection
    /// if it is ready for another request.
    fn finish(&mut self) {
        self.done = true;
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if conn.still_open() {
            self.idle.put(conn, self.clock.instant());
        }
    }
}

impl HttpBody for DrivenBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        // What the connection already read waits in the body's channel; only when it is
        // empty does the connection need to read more.
        let mut frame = Pin::new(&mut this.incoming).poll_frame(cx);
        if frame.is_pending()
            && let Some(conn) = this.conn.as_mut()
        {
            match conn.conn.as_mut().poll(cx) {
                Poll::Pending => {}
                // Closed: what it read is already in the body channel.
                Poll::Ready(Ok(())) => this.conn = None,
                Poll::Ready(Err(e)) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            frame = Pin::new(&mut this.incoming).poll_frame(cx);
        }
        match &frame {
            Poll::Ready(None) => this.finish(),
            // The downstream writer stops polling once the body says it has ended, so the
            // last frame is where the connection goes back to the queue.
            Poll::Ready(Some(Ok(_))) if this.incoming.is_end_stream() => this.finish(),
            Poll::Ready(Some(Err(_))) => this.conn = None,
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

impl HttpBody for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Driven(body) => Pin::new(body).poll_frame(cx),
            UpstreamBody::Pooled(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Driven(body) => body.is_end_stream(),
            UpstreamBody::Pooled(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Driven(body) => body.size_hint(),
            UpstreamBody::Pooled(body) => body.size_hint(),
        }
    }
}
