//! A guard against ambiguous HTTP/1 message framing, the root of request smuggling.
//!
//! hyper follows RFC 9112 leniently: with both `Content-Length` and `Transfer-Encoding` it lets
//! the latter win, it silently merges duplicate equal `Content-Length` headers, and it accepts
//! bare LF line endings, so the service never sees any of that. Switchyard answers such
//! requests with 400 (SPEC: "ambiguous framing → 400"), because an origin or another hop
//! might frame the same bytes differently.
//!
//! [`FramingGuard`] wraps a connection's byte stream and hands every byte read to a
//! [`Scanner`] (`framing/scan.rs`), which follows the HTTP/1 message structure — heads, fixed
//! and chunked bodies, trailers — and records the first request whose framing is ambiguous or
//! malformed. The service, counting requests on the connection, answers that request (and any
//! after it) with 400 and closes, before anything is forwarded. A fault in bytes that arrive
//! after the request was forwarded surfaces as an error of the request body instead
//! ([`crate::body::BodyFault::Malformed`]), also a 400 that never counts against the upstream.
//! HTTP/2 connections (the client preface) switch the guard off: h2 frames carry their own
//! lengths.
//!
//! The guard also answers slow heads. hyper's `header_read_timeout` closes a connection whose
//! request head is not complete in time, without a word. When that happens to a head that had
//! begun to arrive (a slowloris client, or a client on a bad link), the guard — dropped with
//! the connection, having seen no answer written since that head began — writes a 408 on its
//! way out, so the client learns why. A connection that sent nothing is closed silently.
//! Once hyper is done with a connection ([`FramingVerdict::release`]), whatever still flows
//! through it is an upgraded connection's tunnel: neither scanned nor answered.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ProxyError;

mod scan;

pub use scan::{Fault, Finding, Scanner};

/// What the guard found, shared with the connection's service.
#[derive(Debug, Default)]
pub struct FramingVerdict {
    /// The first finding, `request << 1 | malformed`; 0 = none.
    first_bad: AtomicU64,
    served: AtomicU64,
    /// The client has sent something.
    arrived: AtomicBool,
    /// hyper is done with the connection; the bytes left are a tunnel's (an upgrade).
    released: AtomicBool,
}

impl FramingVerdict {
    /// Call once per request, in order: the framing fault of this request, when it (or a
    /// request before it on the connection) was found faulty.
    pub fn next_fault(&self) -> Option<Fault> {
        let index = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let bad = self.first_bad.load(Ordering::Relaxed);
        let fault = if bad & 1 == 1 {
            Fault::Malformed
        } else {
            Fault::Ambiguous
        };
        (bad != 0 && index >= bad >> 1).then_some(fault)
    }

    /// True once the client sent its first bytes.
    pub fn has_bytes(&self) -> bool {
        self.arrived.load(Ordering::Relaxed)
    }

    /// hyper is done with the connection: what still flows through it, if anything, is an
    /// upgraded connection's tunnel, which the guard neither reads nor answers.
    pub fn release(&self) {
        self.released.store(true, Ordering::Relaxed);
    }

    fn record(&self, finding: Finding) {
        let code = finding.request << 1 | u64::from(finding.fault == Fault::Malformed);
        let _ = self
            .first_bad
            .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
    }
}

impl From<Fault> for ProxyError {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Ambiguous => ProxyError::AmbiguousFraming,
            Fault::Malformed => ProxyError::MalformedFraming,
        }
    }
}

/// A byte stream whose HTTP/1 framing is checked as it is read.
pub struct FramingGuard<S: AsyncWrite + Unpin> {
    inner: S,
    scanner: Scanner,
    verdict: Arc<FramingVerdict>,
    /// The request whose head is arriving, if one is.
    pending: Option<u64>,
    /// Something was written since that head began (an answer, a `100 Continue`).
    answered: bool,
    /// The client closed its side, the connection failed, or it was shut down.
    closed: bool,
    /// Bytes have arrived (told to the verdict once).
    arrived: bool,
}

impl<S: AsyncWrite + Unpin> FramingGuard<S> {
    /// Guard `inner`; the verdict is shared with the service of this connection.
    pub fn new(inner: S) -> (Self, Arc<FramingVerdict>) {
        let verdict = Arc::new(FramingVerdict::default());
        let guard = FramingGuard {
            inner,
            scanner: Scanner::new(),
            verdict: verdict.clone(),
            pending: None,
            answered: false,
            closed: false,
            arrived: false,
        };
        (guard, verdict)
    }

    fn scan(&mut self, bytes: &[u8]) {
        self.scanner.feed(bytes);
        if let Some(finding) = self.scanner.finding() {
            self.verdict.record(finding);
        }
        let pending = self.scanner.pending_head();
        if pending != self.pending {
            self.pending = pending;
            self.answered = false;
        }
    }

    /// hyper let go of the connection in the middle of a head without answering it.
    fn abandoned_head(&self) -> bool {
        self.pending.is_some()
            && !self.answered
            && !self.closed
            && self.scanner.is_following()
            && !self.verdict.released.load(Ordering::Relaxed)
    }
}

impl<S: AsyncWrite + Unpin> Drop for FramingGuard<S> {
    fn drop(&mut self) {
        if !self.abandoned_head() {
            return;
        }
        // Best effort, without waiting: the connection is going away. A small answer fits the
        // socket's send buffer.
        let answer = ProxyError::ClientTimeout.raw_http1();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut inner = Pin::new(&mut self.inner);
        let mut rest = &answer[..];
        while !rest.is_empty() {
            match inner.as_mut().poll_write(&mut cx, rest) {
                Poll::Ready(Ok(n)) if n > 0 => rest = &rest[n..],
                _ => break,
            }
        }
        let _ = inner.poll_flush(&mut cx);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for FramingGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &poll {
            Poll::Ready(Ok(())) if room && buf.filled().len() == before => this.closed = true,
            Poll::Ready(Ok(())) => {
                if !this.arrived {
                    this.arrived = true;
                    this.verdict.arrived.store(true, Ordering::Relaxed);
                }
                if this.scanner.is_following() && !this.verdict.released.load(Ordering::Relaxed) {
                    this.scan(&buf.filled()[before..]);
                }
            }
            Poll::Ready(Err(_)) => this.closed = true,
            _ => {}
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FramingGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.answered = true;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.closed = true;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.answered = true;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests;
