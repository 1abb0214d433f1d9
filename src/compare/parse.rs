//! A strict, iterative JSON (RFC 8259) parser that writes a [`Tape`].
//!
//! Iterative (an explicit stack, no recursion) so nesting cannot overflow the call stack;
//! nesting beyond [`MAX_NESTING`] is rejected. It accepts exactly what serde_json accepts
//! (apart from that limit, which is 128 in serde_json), and reads numbers the same way:
//! integers that fit `u64` (or, negative, `i64`) exactly, everything else through serde_json's
//! own float parsing, so both paths see bit-identical values — the tests check this against
//! serde_json on generated documents.

use super::tape::{IN_ESCAPES, Tag, Tape, TooLarge};

/// Deepest nesting of arrays and objects accepted.
pub const MAX_NESTING: usize = 256;

/// Why a body is not JSON: what was wrong and at which byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub(crate) struct ParseError {
    pub(crate) what: &'static str,
    pub(crate) at: usize,
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    tape: Tape<'a>,
}

/// An open container: its node, whether it is an object, its children so far.
struct Open {
    at: usize,
    object: bool,
    count: u32,
}

/// Parses a whole body.
pub(crate) fn parse(body: &[u8]) -> Result<Tape<'_>, ParseError> {
    let src = std::str::from_utf8(body).map_err(|e| ParseError {
        what: "invalid UTF-8",
        at: e.valid_up_to(),
    })?;
    let mut p = Parser {
        src,
        bytes: body,
        pos: 0,
        tape: Tape {
            src,
            esc: String::new(),
            // About one node per 7 bytes in typical API responses.
            nodes: Vec::with_capacity(body.len() / 7 + 1),
        },
    };
    p.document()?;
    Ok(p.tape)
}

impl From<TooLarge> for ParseError {
    fn from(_: TooLarge) -> Self {
        ParseError {
            what: "document too large",
            at: 0,
        }
    }
}

// === impl Parser ===

impl<'a> Parser<'a> {
    fn document(&mut self) -> Result<(), ParseError> {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            // One value: a scalar, an empty container, or the opening of a container.
            self.skip_ws();
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    if stack.len() >= MAX_NESTING {
                        return Err(self.err("nesting too deep"));
                    }
                    let object = open == b'{';
                    let close = if object { b'}' } else { b']' };
                    self.pos += 1;
                    let at = self
                        .tape
                        .push(if object { Tag::Obj } else { Tag::Arr }, 0, 0)?;
                    self.skip_ws();
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        self.tape.close(at, 0);
                    } else {
                        stack.push(Open {
                            at,
                            object,
                            count: 0,
                        });
                        if object {
                            self.key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => self.string()?,
                Some(b't') => self.literal(b"true", Tag::True)?,
                Some(b'f') => self.literal(b"false", Tag::False)?,
                Some(b'n') => self.literal(b"null", Tag::Null)?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(_) => return Err(self.err("expected value")),
                None => return Err(self.err("EOF while parsing a value")),
            }
            // A value is complete: count it, then close every container that ends here.
            loop {
                self.skip_ws();
                let Some(top) = stack.last_mut() else {
                    if self.pos < self.bytes.len() {
                        return Err(self.err("trailing characters"));
                    }
                    return Ok(());
                };
                top.count += 1;
                let close = if top.object { b'}' } else { b']' };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if top.object {
                            self.skip_ws();
                            self.key()?;
                        }
                        break;
                    }
                    Some(c) if c == close => {
                        self.pos += 1;
                        let (at, count) = (top.at, top.count);
                        stack.pop();
                        self.tape.close(at, count);
                    }
                    Some(_) if top.object => return Err(self.err("expected `,` or `}`")),
                    Some(_) => return Err(self.err("expected `,` or `]`")),
                    None => return Err(self.err("EOF while parsing")),
                }
            }
        }
    }

    /// A member's key and its colon.
    fn key(&mut self) -> Result<(), ParseError> {
        if self.peek() != Some(b'"') {
            return Err(self.err("key must be a string"));
        }
        self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.err("expected `:`"));
        }
        self.pos += 1;
        Ok(())
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn err(&self, what: &'static str) -> ParseError {
        ParseError { what, at: self.pos }
    }

    fn literal(&mut self, word: &[u8], tag: Tag) -> Result<(), ParseError> {
        if self.bytes.get(self.pos..self.pos + word.len()) != Some(word) {
            return Err(self.err("invalid literal"));
        }
        self.pos += word.len();
        self.tape.push(tag, 0, 0)?;
        Ok(())
    }

    /// A string, from its opening quote.
    fn string(&mut self) -> Result<(), ParseError> {
        self.pos += 1;
        let start = self.pos;
        self.pos += plain_run(self.bytes.get(start..).unwrap_or_default());
        match self.peek() {
            Some(b'"') => {}
            Some(b'\\') => return self.escaped_string(start),
            Some(_) => return Err(self.err("control character in string")),
            None => return Err(self.err("EOF while parsing a string")),
        }
        let len = u32::try_from(self.pos - start).map_err(|_| TooLarge)?;
        self.pos += 1;
        self.tape.push(Tag::Str, len, start as u64)?;
        Ok(())
    }

    /// The slow path for strings with escapes: decoded into the escape buffer.
    fn escaped_string(&mut self, start: usize) -> Result<(), ParseError> {
        let off = self.tape.esc.len();
        self.tape
            .esc
            .push_str(self.src.get(start..self.pos).unwrap_or_default());
        loop {
            match self.peek() {
                Some(b'"') => break,
                Some(b'\\') => {
                    self.pos += 1;
                    let simple = match self.peek() {
                        Some(b'"') => Some('"'),
                        Some(b'\\') => Some('\\'),
                        Some(b'/') => Some('/'),
                        Some(b'b') => Some('\u{8}'),
                        Some(b'f') => Some('\u{c}'),
                        Some(b'n') => Some('\n'),
                        Some(b'r') => Some('\r'),
                        Some(b't') => Some('\t'),
                        Some(b'u') => None,
                        _ => return Err(self.err("invalid escape")),
                    };
                    self.pos += 1;
                    let c = match simple {
                        Some(c) => c,
                        None => self.unicode_escape()?,
                    };
                    self.tape.esc.push(c);
                }
                Some(0..=0x1f) => return Err(self.err("control character in string")),
                Some(_) => {
                    // `"`, `\` and control bytes are ASCII, so the run ends on a char boundary.
                    let run = self.pos;
                    self.pos += plain_run(self.bytes.get(run..).unwrap_or_default());
                    self.tape
                        .esc
                        .push_str(self.src.get(run..self.pos).unwrap_or_default());
                }
                None => return Err(self.err("EOF while parsing a string")),
            }
        }
        self.pos += 1;
        let len = u32::try_from(self.tape.esc.len() - off).map_err(|_| TooLarge)?;
        self.tape.push(Tag::Str, len, off as u64 | IN_ESCAPES)?;
        Ok(())
    }

    /// After `\u`: one code unit, or a surrogate pair (lone surrogates are errors, as in
    /// serde_json).
    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(self.err("lone leading surrogate in hex escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&second) {
                    return Err(self.err("lone leading surrogate in hex escape"));
                }
                0x10000 + ((u32::from(first) - 0xd800) << 10) + (u32::from(second) - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(self.err("lone trailing surrogate in hex escape")),
            other => u32::from(other),
        };
        char::from_u32(code).ok_or_else(|| self.err("invalid unicode code point"))
    }

    fn hex4(&mut self) -> Result<u16, ParseError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("EOF while parsing a string"))?;
        let mut n: u16 = 0;
        for d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.err("invalid escape")),
            };
            n = (n << 4) | u16::from(v);
        }
        self.pos += 4;
        Ok(n)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        // Accumulated while scanning: the common small integer needs no second pass.
        let mut magnitude: Option<u64> = Some(0);
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    magnitude = magnitude
                        .and_then(|m| m.checked_mul(10))
                        .and_then(|m| m.checked_add(u64::from(d - b'0')));
                    self.pos += 1;
                }
            }
            _ => return Err(self.err("invalid number")),
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digits()?;
            integral = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.digits()?;
            integral = false;
        }
        if integral {
            match (negative, magnitude) {
                (false, Some(m)) => {
                    self.tape.push(Tag::Uint, 0, m)?;
                    return Ok(());
                }
                (true, Some(m)) if m > 0 && m <= 1 << 63 => {
                    let value = 0i64.wrapping_sub_unsigned(m);
                    self.tape.push(Tag::Int, 0, value as u64)?;
                    return Ok(());
                }
                _ => {}
            }
        }
        // Fractions, exponents, `-0` and integers beyond 64 bits: exactly as serde_json reads
        // them, so this tape and one built from a serde_json `Value` agree bit for bit.
        let text = self.src.get(start..self.pos).unwrap_or_default();
        let n: serde_json::Number = serde_json::from_str(text).map_err(|_| ParseError {
            what: "number out of range",
            at: start,
        })?;
        if let Some(u) = n.as_u64() {
            self.tape.push(Tag::Uint, 0, u)?;
        } else if let Some(i) = n.as_i64() {
            self.tape.push(Tag::Int, 0, i as u64)?;
        } else {
            self.tape
                .push(Tag::Float, 0, n.as_f64().unwrap_or(f64::NAN).to_bits())?;
        }
        Ok(())
    }

    fn digits(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err("invalid number"));
        }
        Ok(())
    }
}

/// Length of the leading run of bytes that need no attention inside a string (anything but
/// `"`, `\` and control characters), eight bytes at a time.
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `x` is zero ⇔ the matching high bit of `(x - ONES) & !x & HIGH` is set.
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut n = 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // Bytes below 0x20 have their top three bits clear; bytes >= 0x80 never match.
        let special = zero_byte(w ^ (ONES * u64::from(b'"')))
            | zero_byte(w ^ (ONES * u64::from(b'\\')))
            | zero_byte(w & (ONES * 0xe0));
        if special != 0 {
            return n + (special.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + chunks
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .unwrap_or(chunks.remainder().len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;
