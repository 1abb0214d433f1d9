//! A raw HTTP/2 (h2c, prior knowledge) client that writes exact frames, so tests can send what
//! a well-behaved client library refuses to: connection-specific headers, a `content-length`
//! that disagrees with the DATA frames, CR LF inside values, rapid resets, stream floods.
//! Header blocks are HPACK literals without indexing and without Huffman coding.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const END_STREAM: u8 = 1;
pub const END_HEADERS: u8 = 4;
pub const PROTOCOL_ERROR: u32 = 1;
pub const COMPRESSION_ERROR: u32 = 9;
pub const CANCEL: u32 = 8;
pub const REFUSED_STREAM: u32 = 7;
pub const ENHANCE_YOUR_CALM: u32 = 11;

#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// What became of a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A response head; the status when it could be read (0 otherwise), and the body once the
    /// stream ended.
    Response(u16, Vec<u8>),
    Reset(u32),
    GoAway(u32),
    Closed,
    TimedOut,
}

pub struct H2 {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Frames read but not yet claimed by `outcome`.
    pub pending: Vec<Frame>,
    pub goaway: Option<u32>,
}

fn int(out: &mut Vec<u8>, prefix: u8, first: u8, mut value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// An HPACK block of literal fields (never indexed, no Huffman): any bytes go through.
pub fn block(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x10);
        int(&mut out, 7, 0, name.len());
        out.extend_from_slice(name);
        int(&mut out, 7, 0, value.len());
        out.extend_from_slice(value);
    }
    out
}

/// The `:status` of a response header block, when the server sent it in a form this reads:
/// indexed (200, 204, 206, 304, 400, 404, 500) or a literal with the `:status` name, raw or
/// Huffman-coded digits.
pub fn status(block: &[u8]) -> u16 {
    match block.first() {
        Some(0x88) => 200,
        Some(0x89) => 204,
        Some(0x8a) => 206,
        Some(0x8b) => 304,
        Some(0x8c) => 400,
        Some(0x8d) => 404,
        Some(0x8e) => 500,
        Some(0x48 | 0x08 | 0x18) => {
            let Some(&len) = block.get(1) else { return 0 };
            let value = &block[2..block.len().min(2 + usize::from(len & 0x7f))];
            if len & 0x80 == 0 {
                return std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            }
            // Huffman: '0'-'2' are 5-bit codes 0-2, '3'-'9' are 6-bit codes 25-31.
            let bits: Vec<u8> = value
                .iter()
                .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
                .collect();
            let (mut at, mut n, mut digits) = (0, 0u16, 0);
            while digits < 3 && at + 5 <= bits.len() {
                let v5 = bits[at..at + 5].iter().fold(0, |a, b| a << 1 | b);
                let digit = if v5 <= 2 {
                    at += 5;
                    v5
                } else if at + 6 <= bits.len() {
                    let v6 = v5 << 1 | bits[at + 5];
                    at += 6;
                    v6.saturating_sub(22)
                } else {
                    break;
                };
                n = n * 10 + u16::from(digit);
                digits += 1;
            }
            n
        }
        _ => 0,
    }
}

/// One frame as bytes.
pub fn frame_bytes(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The header block of a request on the gateway.
pub fn request_block(method: &str, path: &str, extra: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut fields: Vec<(&[u8], &[u8])> = vec![
        (b":method", method.as_bytes()),
        (b":scheme", b"http"),
        (b":authority", b"gw.test"),
        (b":path", path.as_bytes()),
    ];
    fields.extend_from_slice(extra);
    block(&fields)
}

impl H2 {
    /// Connect, send the preface and empty SETTINGS.
    pub async fn connect(addr: std::net::SocketAddr) -> H2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let mut h2 = H2 {
            stream,
            buf: Vec::new(),
            pending: Vec::new(),
            goaway: None,
        };
        h2.frame(SETTINGS, 0, 0, &[]).await;
        h2
    }

    /// Write one frame; false when the connection is gone.
    pub async fn frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> bool {
        self.write_raw(&frame_bytes(kind, flags, stream, payload))
            .await
    }

    /// Write bytes as they are (many frames at once); false when the connection is gone.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// Wait until the server's SETTINGS arrived (and were acknowledged) and ours were
    /// acknowledged: from then on the server's limits are in force. Other frames are kept.
    pub async fn settle(&mut self, wait: Duration) -> bool {
        let deadline = switchyard::clock::Clock::system().instant() + wait;
        let (mut theirs, mut ours) = (false, false);
        while !(theirs && ours) {
            let Some(frame) = self.next(deadline).await else {
                return false;
            };
            match (frame.kind, frame.flags & 1) {
                (SETTINGS, 0) => theirs = true,
                (SETTINGS, _) => ours = true,
                _ => self.pending.push(frame),
            }
        }
        true
    }

    /// A request head on `stream`: the pseudo-headers, then `extra` fields.
    pub async fn request(
        &mut self,
        stream: u32,
        method: &str,
        path: &str,
        extra: &[(&[u8], &[u8])],
        end_stream: bool,
    ) -> bool {
        let mut fields: Vec<(&[u8], &[u8])> = vec![
            (b":method", method.as_bytes()),
            (b":scheme", b"http"),
            (b":authority", b"gw.test"),
            (b":path", path.as_bytes()),
        ];
        fields.extend_from_slice(extra);
        let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
        self.frame(HEADERS, flags, stream, &block(&fields)).await
    }

    pub async fn data(&mut self, stream: u32, bytes: &[u8], end_stream: bool) -> bool {
        let flags = if end_stream { END_STREAM } else { 0 };
        self.frame(DATA, flags, stream, bytes).await
    }

    pub async fn reset(&mut self, stream: u32, code: u32) -> bool {
        self.frame(RST_STREAM, 0, stream, &code.to_be_bytes()).await
    }

    /// Read the next frame, answering SETTINGS and PING on the way. `None` on close or timeout.
    pub async fn next(&mut self, deadline: tokio::time::Instant) -> Option<Frame> {
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let frame = Frame {
                        kind: self.buf[3],
                        flags: self.buf[4],
                        stream: u32::from_be_bytes([
                            self.buf[5] & 0x7f,
                            self.buf[6],
                            self.buf[7],
                            self.buf[8],
                        ]),
                        payload: self.buf[9..9 + len].to_vec(),
                    };
                    self.buf.drain(..9 + len);
                    match frame.kind {
                        SETTINGS if frame.flags & 1 == 0 => {
                            self.frame(SETTINGS, 1, 0, &[]).await;
                        }
                        PING if frame.flags & 1 == 0 => {
                            let payload = frame.payload.clone();
                            self.frame(PING, 1, 0, &payload).await;
                        }
                        GOAWAY => {
                            let code = frame
                                .payload
                                .get(4..8)
                                .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                            self.goaway = Some(code);
                        }
                        _ => {}
                    }
                    return Some(frame);
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Wait for what becomes of `stream`: a complete response, a reset, a GOAWAY.
    pub async fn outcome(&mut self, stream: u32, wait: Duration) -> Outcome {
        let deadline = switchyard::clock::Clock::system().instant() + wait;
        let mut status = None;
        let mut body = Vec::new();
        let mut frames = std::mem::take(&mut self.pending).into_iter();
        loop {
            let frame = match frames.next() {
                Some(f) => f,
                None => match self.next(deadline).await {
                    Some(f) => f,
                    None if self.goaway.is_some() => {
                        return Outcome::GoAway(self.goaway.unwrap_or(0));
                    }
                    None => {
                        return match switchyard::clock::Clock::system().instant() >= deadline {
                            true => Outcome::TimedOut,
                            false => Outcome::Closed,
                        };
                    }
                },
            };
            if frame.stream != stream {
                if frame.kind == GOAWAY {
                    return Outcome::GoAway(self.goaway.unwrap_or(0));
                }
                if frame.stream != 0 {
                    self.pending.push(frame);
                }
                continue;
            }
            match frame.kind {
                HEADERS if status.is_none() => status = Some(status_of(&frame)),
                DATA => body.extend_from_slice(&frame.payload),
                RST_STREAM => {
                    let c = &frame.payload;
                    return Outcome::Reset(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                }
                _ => {}
            }
            if frame.flags & END_STREAM != 0 && matches!(frame.kind, HEADERS | DATA) {
                return Outcome::Response(status.unwrap_or(0), body);
            }
        }
    }
}

fn status_of(frame: &Frame) -> u16 {
    let mut block = &frame.payload[..];
    let mut pad = 0;
    if frame.flags & 0x8 != 0 {
        pad = usize::from(block[0]);
        block = &block[1..];
    }
    if frame.flags & 0x20 != 0 {
        block = &block[5..];
    }
    status(&block[..block.len() - pad])
}
