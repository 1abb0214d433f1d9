//! The pure half of the framing guard: a scanner that follows an HTTP/1 request stream and
//! reports the first request whose framing is ambiguous or malformed.
//!
//! It is deliberately stricter than hyper (and than RFC 9112's "MAY accept" clauses): hyper
//! re-frames every request it forwards, so what matters is that the gateway's reading of the
//! byte stream is the only reading. Whatever two conforming parsers could read two ways —
//! bare CR or LF, obs-fold, control bytes, a transfer coding other than a lone `chunked`, a
//! `Content-Length` that is not plain digits, chunk lines that are not `HEX [; ext] CRLF` — is
//! refused instead of guessed at.
//!
//! Lines (request lines, fields, chunk lines, trailers) are found with `memchr` and judged
//! where they lie in the read buffer; only a line that a read ends in the middle of is copied,
//! into one buffer per connection. Bodies are skipped in bulk. A head that arrives whole costs
//! no allocation, and the findings never depend on how the stream was split into reads (the
//! fuzz harness checks exactly that).

use memchr::memchr;

/// The HTTP/2 client preface: a connection starting with it carries h2 frames, which have their
/// own lengths.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A request head longer than this is refused whatever `max_header_bytes` allows: hyper's
/// limit (431) applies first for every value up to it, and no sound client sends more.
pub const MAX_HEAD: usize = 1024 * 1024 + 1024;
/// hyper refuses trailer sections longer than this; refusing them here too keeps the two in step.
const MAX_TRAILERS: usize = 16 * 1024;
/// Chunk extensions carry no meaning for the gateway (they are dropped when the body is
/// re-framed); more than this in one body is an attack on someone's parser.
const MAX_CHUNK_EXTENSIONS: usize = 4096;
/// The longest chunk-size line: a size with leading zeros and every extension byte allowed.
const MAX_CHUNK_LINE: usize = MAX_CHUNK_EXTENSIONS + 32;

/// What is wrong with a request's framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Two framings at once: `Content-Length` with `Transfer-Encoding`, or either one twice
    /// (as two fields or as a list).
    Ambiguous,
    /// Framing that is not HTTP/1.1 as the gateway reads it: bare CR or LF, obs-fold, control
    /// bytes, a bad `Content-Length`, a transfer coding other than `chunked`, a bad chunk.
    Malformed,
}

/// The first request of a connection with bad framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// 1-based index of the request on its connection.
    pub request: u64,
    /// What is wrong with it.
    pub fault: Fault,
}

/// Follows an HTTP/1 request byte stream; see the module docs.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    /// The start of a line that the last read ended in the middle of; empty (and never
    /// allocated) while lines arrive whole.
    partial: Vec<u8>,
    requests: u64,
    finding: Option<Finding>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Matching the h2 preface: bytes matched so far.
    Start(usize),
    /// Inside a request head.
    Head(Head),
    /// Inside a fixed-length body: bytes left.
    Fixed(u64),
    /// Chunked body: a chunk-size line; extension bytes of this body so far.
    ChunkLine(usize),
    /// Chunked body: chunk data left; extension bytes so far.
    ChunkData(u64, usize),
    /// Chunked body: the CRLF after chunk data (`false`: CR expected, `true`: LF expected).
    ChunkEnd(bool, usize),
    /// Chunked body: the trailer section; bytes so far.
    Trailers(usize),
    /// Not followed further: an HTTP/2 connection, or after a finding.
    Done,
}

/// A request head being read, line by line; only what framing needs is kept.
#[derive(Debug, Default, Clone, Copy)]
struct Head {
    /// Bytes of the complete lines so far, line feeds included.
    size: usize,
    /// Complete non-empty lines so far (the request line is the first).
    lines: usize,
    http10: bool,
    lengths: usize,
    length: u64,
    codings: usize,
    fault: Option<Fault>,
}

/// What one line did to a head.
enum HeadStep {
    /// A line of the head; more follow.
    More,
    /// An empty line before the request line (RFC 9112 §2.2): no request yet.
    Blank,
    /// The head ended: a fault, or how its body is framed.
    End(Result<State, Fault>),
}

// === impl Head ===

impl Head {
    /// Take one complete line (without its LF, with its CR). A line not ending in CR is a
    /// bare LF, the one fault that ends the head at once: its lines cannot be told apart.
    fn line(&mut self, line: &[u8]) -> Result<HeadStep, Fault> {
        self.size += line.len() + 1;
        let Some(line) = line.strip_suffix(b"\r") else {
            return Err(Fault::Malformed);
        };
        if line.is_empty() {
            if self.lines == 0 {
                *self = Head::default();
                return Ok(HeadStep::Blank);
            }
            return Ok(HeadStep::End(self.finish()));
        }
        self.lines += 1;
        if self.lines == 1 {
            if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
                self.fault(Fault::Malformed);
            }
            self.http10 = line.ends_with(b" HTTP/1.0");
        } else {
            self.field(line);
        }
        Ok(HeadStep::More)
    }

    /// Judge one field line.
    fn field(&mut self, line: &[u8]) {
        let Some((name, value)) = field(line) else {
            self.fault(Fault::Malformed);
            return;
        };
        if name.eq_ignore_ascii_case(b"content-length") {
            self.lengths += 1;
            if memchr(b',', value).is_some() {
                self.fault(Fault::Ambiguous);
            }
            match digits(value) {
                Some(n) => self.length = n,
                None => self.fault(Fault::Malformed),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.codings += 1;
            // Only a lone `chunked` is accepted: codings the gateway does not decode would
            // reach the origin without their header once the body is re-framed.
            if !value.eq_ignore_ascii_case(b"chunked") {
                self.fault(Fault::Malformed);
            }
        }
    }

    fn fault(&mut self, fault: Fault) {
        // Ambiguity is the more telling finding: keep it over a malformation.
        if self.fault != Some(Fault::Ambiguous) {
            self.fault = Some(fault);
        }
    }

    /// The verdict on a complete head: a fault, or how its body is framed.
    fn finish(&mut self) -> Result<State, Fault> {
        if self.lengths > 1 || self.codings > 1 || (self.lengths > 0 && self.codings > 0) {
            self.fault(Fault::Ambiguous);
        }
        if self.http10 && self.codings > 0 {
            // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing.
            self.fault(Fault::Malformed);
        }
        if let Some(fault) = self.fault {
            return Err(fault);
        }
        Ok(if self.codings > 0 {
            State::ChunkLine(0)
        } else if self.length > 0 {
            State::Fixed(self.length)
        } else {
            State::Head(Head::default())
        })
    }
}

/// Bytes allowed in a token (a field name): RFC 9110 §5.6.2.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    t
};

/// Bytes allowed in a field value: VCHAR, SP, HTAB and obs-text.
const FIELD_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b == 0x09 || (b >= 0x20 && b != 0x7f);
        b += 1;
    }
    t
};

/// A field line as `(name, value)` with the value's surrounding whitespace trimmed, or `None`
/// when it is not a valid field line (obs-fold, no colon, a name that is not a token, control
/// bytes in the value).
fn field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = memchr(b':', line)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| TCHAR[usize::from(b)]) {
        return None;
    }
    if !value.iter().all(|&b| FIELD_BYTE[usize::from(b)]) {
        return None;
    }
    Some((name, trim_ows(value)))
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// `1*DIGIT` as a u64; anything else (sign, hex, spaces inside, overflow) is `None`.
fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// A chunk-size line (without its CRLF): `1*HEXDIG [ BWS ";" ext ]`. Returns the size and the
/// number of extension bytes, or `None` when the line is malformed.
fn chunk_line(line: &[u8]) -> Option<(u64, usize)> {
    let hex_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if hex_end == 0 {
        return None;
    }
    let size = line[..hex_end].iter().try_fold(0u64, |n, &d| {
        let digit = (d as char).to_digit(16)?;
        n.checked_mul(16)?.checked_add(u64::from(digit))
    })?;
    match trim_ows(&line[hex_end..]) {
        [] => Some((size, 0)),
        [b';', ext @ ..] if ext.iter().all(|&b| FIELD_BYTE[usize::from(b)]) => {
            Some((size, ext.len()))
        }
        _ => None,
    }
}

/// How the bytes of one read continue the line begun in `partial`.
enum Taken<'a> {
    /// A line (LF excluded) and the bytes of this read it used (LF included). A line begun in
    /// an earlier read lies whole in `partial`; otherwise it is borrowed from the read itself.
    Line { line: &'a [u8], used: usize },
    /// No LF: every byte was kept in `partial`.
    More,
    /// The line is longer than allowed.
    TooLong,
}

/// Find the end of the current line in `bytes`. `limit` is the longest line allowed (LF
/// excluded); the bytes of an unfinished line are kept in `partial`.
fn take_line<'a>(partial: &'a mut Vec<u8>, bytes: &'a [u8], limit: usize) -> Taken<'a> {
    match memchr(b'\n', bytes) {
        Some(at) if partial.len() + at > limit => Taken::TooLong,
        Some(at) if partial.is_empty() => Taken::Line {
            line: &bytes[..at],
            used: at + 1,
        },
        Some(at) => {
            partial.extend_from_slice(&bytes[..at]);
            Taken::Line {
                line: &partial[..],
                used: at + 1,
            }
        }
        None if partial.len() + bytes.len() > limit => Taken::TooLong,
        None => {
            partial.extend_from_slice(bytes);
            Taken::More
        }
    }
}

// === impl Scanner ===

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

impl Scanner {
    /// A scanner at the start of a connection.
    pub fn new() -> Scanner {
        Scanner {
            state: State::Start(0),
            partial: Vec::new(),
            requests: 0,
            finding: None,
        }
    }

    /// The first request with bad framing, once found.
    pub fn finding(&self) -> Option<Finding> {
        self.finding
    }

    /// Request heads seen so far (counted once their request line is complete, or when a fault
    /// is found in them).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// False once the scanner stopped following the stream (HTTP/2, or after a finding).
    pub fn is_following(&self) -> bool {
        !matches!(self.state, State::Done)
    }

    /// The request (1-based) whose head has begun to arrive but is not complete; `None`
    /// between requests, inside bodies, and once the scanner stopped following.
    pub fn pending_head(&self) -> Option<u64> {
        match self.state {
            State::Start(matched) if matched > 0 => Some(1),
            State::Head(head) if head.lines > 0 => Some(self.requests),
            // Empty lines before a request line are not a request yet.
            State::Head(_) if self.partial.iter().any(|&b| b != b'\r') => Some(self.requests + 1),
            _ => None,
        }
    }

    /// Bytes held over from earlier reads (the start of an unfinished line).
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.partial.capacity()
    }

    /// Follow `bytes`, the next bytes read from the connection.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.is_following() {
            let used = self.step(bytes);
            bytes = &bytes[used..];
        }
    }

    /// Record `fault` for the current request and stop following.
    fn flag(&mut self, fault: Fault) {
        if self.finding.is_none() {
            self.finding = Some(Finding {
                request: self.requests.max(1),
                fault,
            });
        }
        self.state = State::Done;
        self.partial = Vec::new();
    }

    /// A fault in a head belongs to that head's request, even before its request line was
    /// complete (a bare LF among the empty lines that may precede it).
    fn flag_head(&mut self, head: &Head, fault: Fault) {
        if head.lines == 0 {
            self.requests += 1;
        }
        self.flag(fault);
    }

    /// Advance over some of `bytes`; returns how many were used. Using none is allowed only
    /// when the state changed.
    fn step(&mut self, bytes: &[u8]) -> usize {
        match self.state {
            State::Start(matched) => {
                let want = &H2_PREFACE[matched..];
                let n = want.len().min(bytes.len());
                if want[..n] == bytes[..n] {
                    self.state = if matched + n == H2_PREFACE.len() {
                        State::Done
                    } else {
                        State::Start(matched + n)
                    };
                    return n;
                }
                // HTTP/1: what matched of the preface is the start of a head.
                self.state = State::Head(Head::default());
                self.feed(&H2_PREFACE[..matched]);
                0
            }
            State::Head(mut head) => {
                let limit = MAX_HEAD.saturating_sub(head.size);
                let (line, used) = match take_line(&mut self.partial, bytes, limit) {
                    Taken::Line { line, used } => (line, used),
                    Taken::More => return bytes.len(),
                    Taken::TooLong => {
                        self.flag_head(&head, Fault::Malformed);
                        return bytes.len();
                    }
                };
                let before = head.lines;
                let step = head.line(line);
                self.partial.clear();
                if before == 0 && head.lines == 1 {
                    self.requests += 1;
                }
                match step {
                    Ok(HeadStep::More | HeadStep::Blank) => self.state = State::Head(head),
                    Ok(HeadStep::End(Ok(next))) => self.state = next,
                    Ok(HeadStep::End(Err(fault))) | Err(fault) => self.flag_head(&head, fault),
                }
                used
            }
            State::Fixed(left) => {
                let take = left.min(bytes.len() as u64);
                self.state = match left - take {
                    0 => State::Head(Head::default()),
                    rest => State::Fixed(rest),
                };
                take as usize
            }
            State::ChunkLine(ext) => {
                let (line, used) = match take_line(&mut self.partial, bytes, MAX_CHUNK_LINE) {
                    Taken::Line { line, used } => (line, used),
                    Taken::More => return bytes.len(),
                    Taken::TooLong => {
                        self.flag(Fault::Malformed);
                        return bytes.len();
                    }
                };
                let parsed = line.strip_suffix(b"\r").and_then(chunk_line);
                self.partial.clear();
                match parsed {
                    Some((size, more)) if ext + more <= MAX_CHUNK_EXTENSIONS => {
                        self.state = if size == 0 {
                            State::Trailers(0)
                        } else {
                            State::ChunkData(size, ext + more)
                        };
                    }
                    _ => self.flag(Fault::Malformed),
                }
                used
            }
            State::ChunkData(left, ext) => {
                let take = left.min(bytes.len() as u64);
                self.state = match left - take {
                    0 => State::ChunkEnd(false, ext),
                    rest => State::ChunkData(rest, ext),
                };
                take as usize
            }
            State::ChunkEnd(lf, ext) => {
                match (lf, bytes[0]) {
                    (false, b'\r') => self.state = State::ChunkEnd(true, ext),
                    (true, b'\n') => self.state = State::ChunkLine(ext),
                    _ => self.flag(Fault::Malformed),
                }
                1
            }
            State::Trailers(size) => {
                let limit = MAX_TRAILERS.saturating_sub(size);
                let (line, used) = match take_line(&mut self.partial, bytes, limit) {
                    Taken::Line { line, used } => (line, used),
                    Taken::More => return bytes.len(),
                    Taken::TooLong => {
                        self.flag(Fault::Malformed);
                        return bytes.len();
                    }
                };
                let size = size + line.len() + 1;
                let next = match line.strip_suffix(b"\r") {
                    Some([]) => Some(State::Head(Head::default())),
                    Some(line) if field(line).is_some() => Some(State::Trailers(size)),
                    _ => None,
                };
                self.partial.clear();
                match next {
                    Some(next) => self.state = next,
                    None => self.flag(Fault::Malformed),
                }
                used
            }
            State::Done => bytes.len(),
        }
    }
}
