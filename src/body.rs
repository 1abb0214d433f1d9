//! Bodies on the request path: the one boxed body type, and the wrappers that guard a streaming
//! request body (stall timeout, size limit) and tee a bounded copy for the shadow comparison.
//!
//! Bodies stream frame by frame in both directions; nothing here buffers a whole body except
//! [`buffer_up_to`], which the fallback uses only under the route's `fallback_buffer` limit.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};
use tokio::time::Sleep;

use crate::clock::Clock;

/// Errors carried inside bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every request and response the proxy handles.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Box any body whose error converts into [`BoxError`].
pub fn boxed<B>(body: B) -> Body
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// Why a client's request body was cut off; read by the proxy after a failed upstream call to
/// answer 400/408/413 instead of blaming the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BodyFault {
    /// No frame arrived within the body timeout.
    Stalled = 1,
    /// More bytes than the limit.
    TooLarge = 2,
    /// The body's framing was broken (a bad chunk size) or it ended before its length.
    Malformed = 3,
}

/// Shared slot where a [`GuardedBody`] records its fault (the first one wins). An atomic, not
/// a lock: it sits on the request path.
#[derive(Debug, Clone, Default)]
pub struct FaultSlot(Arc<AtomicU8>);

impl FaultSlot {
    fn set(&self, fault: BodyFault) {
        let _ = self
            .0
            .compare_exchange(0, fault as u8, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The fault, if the body failed.
    pub fn get(&self) -> Option<BodyFault> {
        match self.0.load(Ordering::Relaxed) {
            1 => Some(BodyFault::Stalled),
            2 => Some(BodyFault::TooLarge),
            3 => Some(BodyFault::Malformed),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("request body {0:?}")]
struct BodyFaultError(BodyFault);

pin_project_lite::pin_project! {
    /// A streaming request body with a stall timeout (time between frames) and an optional
    /// size limit. Either failure ends the stream with an error and records it in the slot.
    pub struct GuardedBody<B> {
        #[pin]
        inner: B,
        #[pin]
        stall: Sleep,
        timeout: Duration,
        limit: Option<u64>,
        seen: u64,
        fault: FaultSlot,
        clock: Clock,
    }
}

impl<B> GuardedBody<B> {
    /// Guard `inner`; faults are recorded in `fault`.
    pub fn new(
        inner: B,
        timeout: Duration,
        limit: Option<u64>,
        fault: FaultSlot,
        clock: Clock,
    ) -> Self {
        GuardedBody {
            inner,
            stall: tokio::time::sleep_until(clock.instant() + timeout),
            timeout,
            limit,
            seen: 0,
            fault,
            clock,
        }
    }
}

impl<B> HttpBody for GuardedBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.seen += data.len() as u64;
                    if this.limit.is_some_and(|limit| *this.seen > limit) {
                        this.fault.set(BodyFault::TooLarge);
                        return Poll::Ready(Some(Err(Box::new(BodyFaultError(
                            BodyFault::TooLarge,
                        )))));
                    }
                }
                let deadline = this.clock.instant() + *this.timeout;
                this.stall.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                // hyper reports a client's broken chunked framing or a body cut short as an
                // error of the incoming body: the client's fault, never the upstream's.
                this.fault.set(BodyFault::Malformed);
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if this.stall.poll(cx).is_ready() {
                    this.fault.set(BodyFault::Stalled);
                    return Poll::Ready(Some(Err(Box::new(BodyFaultError(BodyFault::Stalled)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Read a whole body if it is at most `limit` bytes. `Ok(None)` means it was longer: the bytes
/// read so far are returned in the error-free `Err` variant's place as a rebuilt stream so
/// nothing is lost.
pub async fn buffer_up_to(mut body: Body, limit: u64) -> Result<Buffered, BoxError> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() as u64 > limit {
                // Too long to keep: hand back what was read followed by the rest, unchanged.
                let head = buf.freeze();
                let rest = Prefixed {
                    head: Some(head),
                    rest: body,
                };
                return Ok(Buffered::TooLong(rest.boxed_unsync()));
            }
        }
    }
    Ok(Buffered::Complete(buf.freeze()))
}

/// The outcome of [`buffer_up_to`].
pub enum Buffered {
    /// The whole body, replayable.
    Complete(Bytes),
    /// Longer than the limit: the same bytes as a stream.
    TooLong(Body),
}

pin_project_lite::pin_project! {
    /// A body that first yields `head`, then the frames of `rest`.
    struct Prefixed {
        head: Option<Bytes>,
        #[pin]
        rest: Body,
    }
}

impl HttpBody for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Some(head) = this.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        this.rest.poll_frame(cx)
    }
}

/// A bounded copy of a body, filled while the body streams to its real reader.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    /// Bytes kept (at most the limit).
    pub bytes: Bytes,
    /// True when the body was longer than the limit (the copy is incomplete).
    pub truncated: bool,
    /// True when the body ended with an error or was dropped before its end.
    pub incomplete: bool,
}

pin_project_lite::pin_project! {
    /// Streams `inner` unchanged while keeping up to `limit` bytes; at the end (or on drop)
    /// the copy is sent on `done`. The reader of the stream never waits on the copy.
    pub struct Tee<B> {
        #[pin]
        inner: B,
        limit: usize,
        buf: BytesMut,
        truncated: bool,
        done: Option<tokio::sync::oneshot::Sender<Capture>>,
    }

    impl<B> PinnedDrop for Tee<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(done) = this.done.take() {
                let _ = done.send(Capture { bytes: std::mem::take(this.buf).freeze(), truncated: *this.truncated, incomplete: true });
            }
        }
    }
}

impl<B: HttpBody> Tee<B> {
    fn finish(self: Pin<&mut Self>) {
        let this = self.project();
        if let Some(done) = this.done.take() {
            let _ = done.send(Capture {
                bytes: std::mem::take(this.buf).freeze(),
                truncated: *this.truncated,
                incomplete: false,
            });
        }
    }
}

impl<B> Tee<B> {
    /// Tee `inner`, keeping at most `limit` bytes.
    pub fn new(inner: B, limit: usize) -> (Self, tokio::sync::oneshot::Receiver<Capture>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tee = Tee {
            inner,
            limit,
            buf: BytesMut::new(),
            truncated: false,
            done: Some(tx),
        };
        (tee, rx)
    }
}

impl<B> HttpBody for Tee<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.as_mut().project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let room = this.limit.saturating_sub(this.buf.len());
                    if data.len() > room {
                        *this.truncated = true;
                    }
                    let keep = data.len().min(room);
                    this.buf.extend_from_slice(&data[..keep]);
                }
                // hyper stops polling once the body says it has ended, so the last frame
                // (not a final `None`) may be all the tee ever sees.
                if self.inner.is_end_stream() {
                    self.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => {
                self.finish();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn buffer_keeps_short_bodies_and_rebuilds_long_ones() {
        match buffer_up_to(full("hello"), 10).await.unwrap() {
            Buffered::Complete(b) => assert_eq!(&b[..], b"hello"),
            Buffered::TooLong(_) => panic!("short body reported too long"),
        }
        match buffer_up_to(full("hello world"), 4).await.unwrap() {
            Buffered::Complete(_) => panic!("long body buffered"),
            Buffered::TooLong(body) => {
                let all = body.collect().await.unwrap().to_bytes();
                assert_eq!(&all[..], b"hello world");
            }
        }
    }

    #[tokio::test]
    async fn tee_copies_up_to_limit_and_passes_everything() {
        let (tee, rx) = Tee::new(full("0123456789"), 4);
        let all = tee.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"0123456789");
        let capture = rx.await.unwrap();
        assert_eq!(&capture.bytes[..], b"0123");
        assert!(capture.truncated);
        assert!(!capture.incomplete);
    }

    #[tokio::test]
    async fn guarded_body_enforces_limit() {
        let fault = FaultSlot::default();
        let body = GuardedBody::new(
            full("0123456789"),
            Duration::from_secs(5),
            Some(4),
            fault.clone(),
            Clock::system(),
        );
        assert!(body.collect().await.is_err());
        assert_eq!(fault.get(), Some(BodyFault::TooLarge));
    }

    #[tokio::test]
    async fn guarded_body_records_a_broken_client_body() {
        let fault = FaultSlot::default();
        let broken = http_body_util::StreamBody::new(futures_util::stream::iter([
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Err::<Frame<Bytes>, BoxError>("invalid chunk size".into()),
        ]));
        let body = GuardedBody::new(
            broken,
            Duration::from_secs(5),
            None,
            fault.clone(),
            Clock::system(),
        );
        assert!(body.collect().await.is_err());
        assert_eq!(fault.get(), Some(BodyFault::Malformed));
    }

    #[tokio::test(start_paused = true)]
    async fn guarded_body_times_out_when_stalled() {
        let fault = FaultSlot::default();
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let stream = http_body_util::StreamBody::new(tokio_stream_from(rx));
        let body = GuardedBody::new(
            stream,
            Duration::from_secs(2),
            None,
            fault.clone(),
            Clock::tokio(),
        );
        assert!(body.collect().await.is_err());
        assert_eq!(fault.get(), Some(BodyFault::Stalled));
    }

    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
    ) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, BoxError>> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
