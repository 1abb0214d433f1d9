//! The pure half of the framing guard: a scanner that follows an HTTP/1 request stream byte by
//! byte and reports the first request whose framing is ambiguous or malformed.
//!
//! It is deliberately stricter than hyper (and than RFC 9112's "MAY accept" clauses): hyper
//! re-frames every request it forwards, so what matters is that the gateway's reading of the
//! byte stream is the only reading. Whatever two conforming parsers could read two ways —
//! bare CR or LF, obs-fold, control bytes, a transfer coding other than a lone `chunked`, a
//! `Content-Length` that is not plain digits, chunk lines that are not `HEX [; ext] CRLF` — is
//! refused instead of guessed at.
//!
//! The scanner consumes lines byte by byte and bodies in bulk, so its findings never depend on
//! how the stream was split into reads (the fuzz harness checks exactly that).

/// The HTTP/2 client preface: a connection starting with it carries h2 frames, which have their
/// own lengths.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A request head (or a trailer section) longer than this is refused. hyper's own head limit
/// (`max_header_bytes`, at most 1 MiB) answers 431 first for every configured value.
pub const MAX_HEAD: usize = 1024 * 1024 + 1024;
/// hyper refuses trailer sections longer than this; refusing them here too keeps the two in step.
const MAX_TRAILERS: usize = 16 * 1024;
/// Chunk extensions carry no meaning for the gateway (they are dropped when the body is
/// re-framed); more than this in one body is an attack on someone's parser.
const MAX_CHUNK_EXTENSIONS: usize = 4096;

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
    requests: u64,
    finding: Option<Finding>,
}

#[derive(Debug)]
enum State {
    /// Matching the h2 preface: bytes matched so far.
    Start(usize),
    /// Inside a request head.
    Head(Head),
    /// Inside a fixed-length body: bytes left.
    Fixed(u64),
    /// Chunked body: a chunk-size line; extension bytes of this body so far.
    ChunkLine(Line, usize),
    /// Chunked body: chunk data left; extension bytes so far.
    ChunkData(u64, usize),
    /// Chunked body: the CRLF after chunk data (`false`: CR expected, `true`: LF expected).
    ChunkEnd(bool, usize),
    /// Chunked body: the trailer section; bytes so far.
    Trailers(Line, usize),
    /// Not followed further: an HTTP/2 connection, or after a finding.
    Done,
}

/// One CRLF-terminated line being read.
#[derive(Debug, Default)]
struct Line {
    bytes: Vec<u8>,
    cr: bool,
}

enum LineStep {
    More,
    End,
    Bad,
}

impl Line {
    fn push(&mut self, b: u8) -> LineStep {
        if self.cr {
            self.cr = false;
            return if b == b'\n' {
                LineStep::End
            } else {
                LineStep::Bad
            };
        }
        match b {
            b'\r' => {
                self.cr = true;
                LineStep::More
            }
            b'\n' => LineStep::Bad,
            _ => {
                self.bytes.push(b);
                LineStep::More
            }
        }
    }
}

/// A request head being read, line by line; only what framing needs is kept.
#[derive(Debug, Default)]
struct Head {
    line: Line,
    size: usize,
    lines: usize,
    http10: bool,
    lengths: usize,
    length: u64,
    codings: usize,
    fault: Option<Fault>,
    /// True once the request line has begun (the request is counted).
    counted: bool,
}

impl Head {
    /// Judge one complete line of the head (not the final empty one).
    fn judge_line(&mut self, line: &[u8]) {
        self.lines += 1;
        if self.lines == 1 {
            if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
                self.fault(Fault::Malformed);
            }
            self.http10 = line.rsplit(|&b| b == b' ').next() == Some(b"HTTP/1.0");
            return;
        }
        let Some((name, value)) = field(line) else {
            self.fault(Fault::Malformed);
            return;
        };
        if name.eq_ignore_ascii_case(b"content-length") {
            self.lengths += 1;
            if value.contains(&b',') {
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
    fn finish(mut self) -> Result<State, Fault> {
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
            State::ChunkLine(Line::default(), 0)
        } else if self.length > 0 {
            State::Fixed(self.length)
        } else {
            State::Head(Head::default())
        })
    }
}

/// A field line as `(name, value)` with the value's surrounding whitespace trimmed, or `None`
/// when it is not a valid field line (obs-fold, no colon, a name that is not a token, control
/// bytes in the value).
fn field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|&b| b == b':')?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return None;
    }
    if !value.iter().all(|&b| is_field_byte(b)) {
        return None;
    }
    Some((name, trim_ows(value)))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// VCHAR, SP, HTAB or obs-text: what a field value may hold.
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80
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
    let rest = trim_ows(&line[hex_end..]);
    match rest {
        [] => Some((size, 0)),
        [b';', ext @ ..] if ext.iter().all(|&b| is_field_byte(b)) => Some((size, ext.len())),
        _ => None,
    }
}

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
            requests: 0,
            finding: None,
        }
    }

    /// The first request with bad framing, once found.
    pub fn finding(&self) -> Option<Finding> {
        self.finding
    }

    /// Request heads seen so far (complete or being read).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// False once the scanner stopped following the stream (HTTP/2, or after a finding).
    pub fn is_following(&self) -> bool {
        !matches!(self.state, State::Done)
    }

    /// Follow `bytes`, the next bytes read from the connection.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let state = std::mem::replace(&mut self.state, State::Done);
            let (next, used) = self.step(state, bytes);
            self.state = next;
            bytes = &bytes[used..];
            if matches!(self.state, State::Done) {
                return;
            }
        }
    }

    fn flag(&mut self, fault: Fault) -> State {
        if self.finding.is_none() {
            self.finding = Some(Finding {
                request: self.requests.max(1),
                fault,
            });
        }
        State::Done
    }

    /// Advance over some of `bytes` (never none); returns the next state and the bytes used.
    fn step(&mut self, state: State, bytes: &[u8]) -> (State, usize) {
        match state {
            State::Start(matched) => {
                let want = &H2_PREFACE[matched..];
                let n = want.len().min(bytes.len());
                if want[..n] == bytes[..n] {
                    if matched + n == H2_PREFACE.len() {
                        return (State::Done, n);
                    }
                    return (State::Start(matched + n), n);
                }
                // HTTP/1: replay the matched part of the preface as the start of a head.
                let mut head = State::Head(Head::default());
                for &b in &H2_PREFACE[..matched] {
                    head = match self.head_byte(head, b) {
                        State::Done => return (State::Done, 0),
                        next => next,
                    };
                }
                (head, 0)
            }
            State::Head(_) => {
                let mut state = state;
                for (i, &b) in bytes.iter().enumerate() {
                    state = self.head_byte(state, b);
                    if !matches!(state, State::Head(_)) {
                        return (state, i + 1);
                    }
                }
                (state, bytes.len())
            }
            State::Fixed(left) => {
                let take = left.min(bytes.len() as u64);
                let next = match left - take {
                    0 => State::Head(Head::default()),
                    rest => State::Fixed(rest),
                };
                (next, take as usize)
            }
            State::ChunkLine(mut line, ext) => {
                for (i, &b) in bytes.iter().enumerate() {
                    match line.push(b) {
                        LineStep::More if line.bytes.len() <= MAX_CHUNK_EXTENSIONS + 32 => {}
                        LineStep::More | LineStep::Bad => {
                            return (self.flag(Fault::Malformed), i + 1);
                        }
                        LineStep::End => {
                            let next = match chunk_line(&line.bytes) {
                                Some((size, more)) if ext + more <= MAX_CHUNK_EXTENSIONS => {
                                    if size == 0 {
                                        State::Trailers(Line::default(), 0)
                                    } else {
                                        State::ChunkData(size, ext + more)
                                    }
                                }
                                _ => self.flag(Fault::Malformed),
                            };
                            return (next, i + 1);
                        }
                    }
                }
                (State::ChunkLine(line, ext), bytes.len())
            }
            State::ChunkData(left, ext) => {
                let take = left.min(bytes.len() as u64);
                let next = match left - take {
                    0 => State::ChunkEnd(false, ext),
                    rest => State::ChunkData(rest, ext),
                };
                (next, take as usize)
            }
            State::ChunkEnd(lf, ext) => match (lf, bytes[0]) {
                (false, b'\r') => (State::ChunkEnd(true, ext), 1),
                (true, b'\n') => (State::ChunkLine(Line::default(), ext), 1),
                _ => (self.flag(Fault::Malformed), 1),
            },
            State::Trailers(mut line, mut size) => {
                for (i, &b) in bytes.iter().enumerate() {
                    size += 1;
                    if size > MAX_TRAILERS {
                        return (self.flag(Fault::Malformed), i + 1);
                    }
                    match line.push(b) {
                        LineStep::More => {}
                        LineStep::Bad => return (self.flag(Fault::Malformed), i + 1),
                        LineStep::End if line.bytes.is_empty() => {
                            return (State::Head(Head::default()), i + 1);
                        }
                        LineStep::End => {
                            if field(&line.bytes).is_none() {
                                return (self.flag(Fault::Malformed), i + 1);
                            }
                            line.bytes.clear();
                        }
                    }
                }
                (State::Trailers(line, size), bytes.len())
            }
            State::Done => (State::Done, bytes.len()),
        }
    }

    /// One byte of a request head.
    fn head_byte(&mut self, state: State, b: u8) -> State {
        let State::Head(mut head) = state else {
            return state;
        };
        // Empty lines before a request line (RFC 9112 §2.2) carry no request.
        if !head.counted && !head.line.cr && b != b'\r' {
            head.counted = true;
            self.requests += 1;
        }
        head.size += 1;
        if head.size > MAX_HEAD {
            return self.flag_head(&head, Fault::Malformed);
        }
        match head.line.push(b) {
            LineStep::More => State::Head(head),
            LineStep::Bad => self.flag_head(&head, Fault::Malformed),
            LineStep::End if head.line.bytes.is_empty() && head.lines == 0 => {
                State::Head(Head::default())
            }
            LineStep::End if head.line.bytes.is_empty() => match head.finish() {
                Ok(next) => next,
                Err(fault) => self.flag(fault),
            },
            LineStep::End => {
                let line = std::mem::take(&mut head.line.bytes);
                head.judge_line(&line);
                head.line.bytes = line;
                head.line.bytes.clear();
                State::Head(head)
            }
        }
    }

    /// A fault inside a head belongs to that head's request, even before its first byte counted
    /// it (a bare CR among the empty lines that may precede it).
    fn flag_head(&mut self, head: &Head, fault: Fault) -> State {
        if !head.counted {
            self.requests += 1;
        }
        self.flag(fault)
    }
}
