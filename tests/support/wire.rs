//! A raw HTTP/1 client over TCP for framing tests: write exact bytes, read exact answers.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One final response as it came off the wire (interim 1xx answers skipped and counted).
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// 1xx answers read before this one.
    pub interim: usize,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// What became of the connection after a response was expected.
#[derive(Debug)]
pub enum Read {
    Response(RawResponse),
    /// Closed (EOF or reset) before a complete response.
    Closed(Vec<u8>),
    /// Nothing complete within the wait.
    TimedOut(Vec<u8>),
}

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Conn {
    pub async fn open(addr: std::net::SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Write bytes; false when the peer has already closed.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok() && self.stream.flush().await.is_ok()
    }

    async fn fill(&mut self, deadline: tokio::time::Instant) -> bool {
        if self.eof {
            return false;
        }
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.eof = true;
                false
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => false,
        }
    }

    /// Read the next final response within `wait`.
    pub async fn read(&mut self, wait: Duration) -> Read {
        let deadline = switchyard::clock::Clock::system().instant() + wait;
        let mut interim = 0;
        loop {
            match parse(&self.buf) {
                Parsed::Done(mut response, used) => {
                    self.buf.drain(..used);
                    if (100..200).contains(&response.status) {
                        interim += 1;
                        continue;
                    }
                    response.interim = interim;
                    return Read::Response(response);
                }
                Parsed::UntilClose(mut response, head) if self.eof => {
                    response.body = self.buf[head..].to_vec();
                    response.interim = interim;
                    self.buf.clear();
                    return Read::Response(response);
                }
                _ => {}
            }
            if !self.fill(deadline).await {
                let rest = std::mem::take(&mut self.buf);
                return if self.eof {
                    Read::Closed(rest)
                } else {
                    Read::TimedOut(rest)
                };
            }
        }
    }

    /// True when the peer closes the connection within `wait` (bytes sent meanwhile are
    /// ignored).
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = switchyard::clock::Clock::system().instant() + wait;
        while !self.eof {
            if switchyard::clock::Clock::system().instant() >= deadline {
                return false;
            }
            self.fill(deadline).await;
        }
        true
    }
}

enum Parsed {
    Incomplete,
    Done(RawResponse, usize),
    /// No length: the body runs to the end of the connection.
    UntilClose(RawResponse, usize),
}

fn parse(buf: &[u8]) -> Parsed {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Parsed::Incomplete;
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut response = RawResponse {
        status,
        headers,
        body: Vec::new(),
        interim: 0,
    };
    let start = end + 4;
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Parsed::Done(response, start);
    }
    if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        let mut at = start;
        let mut body = Vec::new();
        loop {
            let Some(eol) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
                return Parsed::Incomplete;
            };
            let line = String::from_utf8_lossy(&buf[at..at + eol]);
            let size =
                usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
            at += eol + 2;
            if size == 0 {
                // Trailers, then an empty line.
                let Some(trailer_end) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
                    return Parsed::Incomplete;
                };
                if trailer_end != 0 {
                    let Some(e) = buf[at..].windows(4).position(|w| w == b"\r\n\r\n") else {
                        return Parsed::Incomplete;
                    };
                    at += e + 4;
                } else {
                    at += 2;
                }
                response.body = body;
                return Parsed::Done(response, at);
            }
            if buf.len() < at + size + 2 {
                return Parsed::Incomplete;
            }
            body.extend_from_slice(&buf[at..at + size]);
            at += size + 2;
        }
    }
    match response
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(n) if buf.len() >= start + n => {
            response.body = buf[start..start + n].to_vec();
            Parsed::Done(response, start + n)
        }
        Some(_) => Parsed::Incomplete,
        None => Parsed::UntilClose(response, start),
    }
}
