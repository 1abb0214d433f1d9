//! A guard against ambiguous HTTP/1 message framing, the root of request smuggling.
//!
//! hyper follows RFC 9112 leniently: with both `Content-Length` and `Transfer-Encoding` it lets
//! the latter win, and it silently merges duplicate equal `Content-Length` headers, so the
//! service never sees either. Switchyard answers both with 400 (SPEC: "ambiguous framing →
//! 400"), because an origin behind it might frame the same bytes differently.
//!
//! [`FramingGuard`] wraps a connection's byte stream and follows the HTTP/1 message structure
//! as bytes are read: it parses each request head for its framing headers, then skips the body
//! (fixed length or chunked) to find the next head. The index of the first ambiguous head is
//! recorded; the service, counting requests on the connection, answers that request with 400
//! and closes. HTTP/2 connections (the client preface) switch the guard off: h2 frames carry
//! their own lengths.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";
/// A head longer than this is left to hyper, which answers 431.
const MAX_HEAD: usize = 256 * 1024;

/// What the guard found, shared with the connection's service.
#[derive(Debug, Default)]
pub struct FramingVerdict {
    /// 1-based index of the first request head with ambiguous framing; 0 = none.
    first_ambiguous: AtomicU64,
    served: AtomicU64,
}

impl FramingVerdict {
    /// Call once per request, in order: true when this request's framing was ambiguous.
    pub fn next_is_ambiguous(&self) -> bool {
        let index = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let bad = self.first_ambiguous.load(Ordering::Relaxed);
        bad != 0 && index >= bad
    }
}

#[derive(Debug)]
enum State {
    /// Waiting for the first bytes: HTTP/2 preface or an HTTP/1 head.
    Start(Vec<u8>),
    /// Inside a request head.
    Head(Vec<u8>),
    /// Inside a fixed-length body: bytes left.
    Fixed(u64),
    /// Chunked body: reading a chunk-size line.
    ChunkSize(Vec<u8>),
    /// Chunked body: chunk data left, then CRLF.
    ChunkData(u64),
    /// Chunked body: the CRLF after chunk data; bytes of it left.
    ChunkEnd(u8),
    /// Chunked body: trailer section, until an empty line.
    Trailers(Vec<u8>),
    /// Not HTTP/1 (or past a verdict): stop looking.
    Off,
}

/// A byte stream whose HTTP/1 framing is checked as it is read.
pub struct FramingGuard<S> {
    inner: S,
    state: State,
    heads: u64,
    verdict: Arc<FramingVerdict>,
}

impl<S> FramingGuard<S> {
    /// Guard `inner`; the verdict is shared with the service of this connection.
    pub fn new(inner: S) -> (Self, Arc<FramingVerdict>) {
        let verdict = Arc::new(FramingVerdict::default());
        let guard = FramingGuard {
            inner,
            state: State::Start(Vec::new()),
            heads: 0,
            verdict: verdict.clone(),
        };
        (guard, verdict)
    }

    fn scan(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let state = std::mem::replace(&mut self.state, State::Off);
            let (next, used) = self.step(state, bytes);
            self.state = next;
            bytes = &bytes[used..];
            if matches!(self.state, State::Off) {
                return;
            }
        }
    }

    /// Advance over some of `bytes`; returns the next state and how many bytes were consumed.
    fn step(&mut self, state: State, bytes: &[u8]) -> (State, usize) {
        match state {
            State::Start(mut seen) => {
                let before = seen.len();
                let take = (H2_PREFACE.len() - before).min(bytes.len());
                seen.extend_from_slice(&bytes[..take]);
                if !H2_PREFACE.starts_with(&seen) {
                    // HTTP/1: what was read so far is the start of the first head.
                    seen.truncate(before);
                    return (State::Head(seen), 0);
                }
                if seen.len() == H2_PREFACE.len() {
                    return (State::Off, take);
                }
                (State::Start(seen), take)
            }
            // The common case: a whole head inside one read, judged where it lies.
            State::Head(head) if head.is_empty() => {
                match memchr::memmem::find(bytes, b"\r\n\r\n") {
                    Some(at) => (self.after_head(&bytes[..at + 4]), at + 4),
                    None if bytes.len() > MAX_HEAD => (State::Off, bytes.len()),
                    None => (State::Head(bytes.to_vec()), bytes.len()),
                }
            }
            State::Head(mut head) => {
                // Find the end of the head (CRLFCRLF), looking across the previous bytes too.
                let start = head.len().saturating_sub(3);
                head.extend_from_slice(bytes);
                match memchr::memmem::find(&head[start..], b"\r\n\r\n") {
                    Some(at) => {
                        let end = start + at + 4;
                        let used = bytes.len() - (head.len() - end);
                        head.truncate(end);
                        (self.after_head(&head), used)
                    }
                    None if head.len() > MAX_HEAD => (State::Off, bytes.len()),
                    None => (State::Head(head), bytes.len()),
                }
            }
            State::Fixed(left) => {
                let take = left.min(bytes.len() as u64);
                let rest = left - take;
                let next = if rest == 0 {
                    State::Head(Vec::new())
                } else {
                    State::Fixed(rest)
                };
                (next, take as usize)
            }
            State::ChunkSize(mut line) => match memchr::memchr(b'\n', bytes) {
                Some(at) => {
                    line.extend_from_slice(&bytes[..at]);
                    let text = String::from_utf8_lossy(&line);
                    let hex = text.split(';').next().unwrap_or("").trim();
                    match u64::from_str_radix(hex, 16) {
                        Ok(0) => (State::Trailers(Vec::new()), at + 1),
                        Ok(n) => (State::ChunkData(n), at + 1),
                        // Bad chunk size: hyper rejects the request itself.
                        Err(_) => (State::Off, at + 1),
                    }
                }
                None if line.len() > 1024 => (State::Off, bytes.len()),
                None => {
                    line.extend_from_slice(bytes);
                    (State::ChunkSize(line), bytes.len())
                }
            },
            State::ChunkData(left) => {
                let take = left.min(bytes.len() as u64);
                let rest = left - take;
                let next = if rest == 0 {
                    State::ChunkEnd(2)
                } else {
                    State::ChunkData(rest)
                };
                (next, take as usize)
            }
            State::ChunkEnd(left) => {
                let take = (left as usize).min(bytes.len());
                let rest = left - take as u8;
                let next = if rest == 0 {
                    State::ChunkSize(Vec::new())
                } else {
                    State::ChunkEnd(rest)
                };
                (next, take)
            }
            State::Trailers(mut line) => match memchr::memchr(b'\n', bytes) {
                Some(at) => {
                    line.extend_from_slice(&bytes[..at]);
                    let empty = line.iter().all(|&b| b == b'\r');
                    let next = if empty {
                        State::Head(Vec::new())
                    } else {
                        State::Trailers(Vec::new())
                    };
                    (next, at + 1)
                }
                None if line.len() > MAX_HEAD => (State::Off, bytes.len()),
                None => {
                    line.extend_from_slice(bytes);
                    (State::Trailers(line), bytes.len())
                }
            },
            State::Off => (State::Off, bytes.len()),
        }
    }

    /// Judge a complete head and pick how to skip its body.
    fn after_head(&mut self, head: &[u8]) -> State {
        // Blank lines before a request line are allowed (RFC 9112 §2.2) and carry no head.
        if head.iter().all(|b| *b == b'\r' || *b == b'\n') {
            return State::Head(Vec::new());
        }
        self.heads += 1;
        // Content-Length values seen (how many, and the first) and Transfer-Encoding.
        let (mut lengths, mut length) = (0usize, 0u64);
        let mut bad_length = false;
        let mut chunked = false;
        let mut transfer_encoding = false;
        for line in head.split(|&b| b == b'\n').skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = memchr::memchr(b':', line) else {
                continue;
            };
            let name = &line[..colon];
            if name.eq_ignore_ascii_case(b"content-length") {
                let value = String::from_utf8_lossy(&line[colon + 1..]);
                match value.trim().parse() {
                    Ok(n) => {
                        if lengths == 0 {
                            length = n;
                        }
                        lengths += 1;
                    }
                    Err(_) => bad_length = true,
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                let value = String::from_utf8_lossy(&line[colon + 1..]);
                transfer_encoding = true;
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            }
        }
        let ambiguous = lengths > 1 || (transfer_encoding && lengths > 0);
        if ambiguous {
            let _ = self.verdict.first_ambiguous.compare_exchange(
                0,
                self.heads,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            return State::Off;
        }
        if bad_length || (transfer_encoding && !chunked) {
            // hyper rejects these itself; the stream is not followed further.
            return State::Off;
        }
        if chunked {
            return State::ChunkSize(Vec::new());
        }
        if lengths > 0 && length > 0 {
            State::Fixed(length)
        } else {
            State::Head(Vec::new())
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FramingGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll
            && !matches!(this.state, State::Off)
        {
            this.scan(&buf.filled()[before..]);
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
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(input: &[u8], chunk: usize) -> (u64, u64) {
        let (mut guard, verdict) = FramingGuard::new(());
        for piece in input.chunks(chunk) {
            guard.scan(piece);
        }
        (guard.heads, verdict.first_ambiguous.load(Ordering::Relaxed))
    }

    #[test]
    fn follows_keep_alive_requests_with_bodies() {
        let input = b"POST /a HTTP/1.1\r\nContent-Length: 27\r\n\r\nContent-Length: 1\r\n\r\nxxxxxx\
GET /b HTTP/1.1\r\nHost: x\r\n\r\n\
POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n\n\r\n0\r\nX-T: 1\r\n\r\n\
GET /d HTTP/1.1\r\n\r\n";
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(verdicts(input, chunk), (4, 0), "chunk size {chunk}");
        }
    }

    #[test]
    fn flags_both_lengths_and_duplicates() {
        let both = b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(verdicts(both, 5).1, 2);
        let dup = b"POST /b HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc";
        assert_eq!(verdicts(dup, 4).1, 1);
    }

    #[test]
    fn http2_preface_switches_off() {
        let h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        let (heads, bad) = verdicts(h2, 3);
        assert_eq!((heads, bad), (0, 0));
    }

    #[test]
    fn verdict_applies_to_the_flagged_request_on() {
        let v = FramingVerdict::default();
        v.first_ambiguous.store(2, Ordering::Relaxed);
        assert!(!v.next_is_ambiguous());
        assert!(v.next_is_ambiguous());
    }
}
