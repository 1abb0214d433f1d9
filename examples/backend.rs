//! A small, fast HTTP backend for load benchmarks: the SAME origin behind Switchyard and nginx
//! in `bench/vs-nginx.sh`, so the only thing that differs between the two runs is the proxy.
//!
//! GET answers with a static body chosen by the LAST path segment — `/1k`, `/64k`, `/1m`, so
//! `/api/cards/1k` works too (routes rewrite or prefix paths; the size must survive that).
//! Other GETs get a short `ok`. Bodies are allocated once and cloned per response (`Bytes` is
//! reference-counted), so the backend spends no time building them. POST (and any other method
//! with a body) drains the body and answers with its length, to exercise request streaming.
//!
//! ```text
//! cargo build --release --example backend
//! target/release/examples/backend --listen 127.0.0.1:8001 --workers 1
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

/// The static bodies, built once.
struct Bodies {
    k1: Bytes,
    k64: Bytes,
    m1: Bytes,
}

impl Bodies {
    fn new() -> Self {
        // Printable, non-uniform content: compresses poorly, like real payloads, and is easy to
        // eyeball when debugging with curl.
        let make = |len: usize| -> Bytes {
            let pattern = b"switchyard-bench-0123456789abcdefghijklmnopqrstuvwxyz\n";
            pattern
                .iter()
                .copied()
                .cycle()
                .take(len)
                .collect::<Vec<u8>>()
                .into()
        };
        Self {
            k1: make(1024),
            k64: make(64 * 1024),
            m1: make(1024 * 1024),
        }
    }

    /// The body for a path, by its last non-empty segment.
    fn for_path(&self, path: &str) -> Option<Bytes> {
        let last = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
        match last {
            "1k" => Some(self.k1.clone()),
            "64k" => Some(self.k64.clone()),
            "1m" => Some(self.m1.clone()),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Args {
    listen: SocketAddr,
    workers: usize,
    /// Delay before every answer (a slow service, for the shadow bench).
    delay: std::time::Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut listen: SocketAddr = "127.0.0.1:8001"
        .parse()
        .map_err(|e| format!("default listen address: {e}"))?;
    let mut workers = 1usize;
    let mut delay = std::time::Duration::ZERO;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => {
                let v = value("--listen")?;
                listen = v.parse().map_err(|e| format!("--listen {v:?}: {e}"))?;
            }
            "--workers" => {
                let v = value("--workers")?;
                workers = v.parse().map_err(|e| format!("--workers {v:?}: {e}"))?;
                if workers == 0 {
                    return Err("--workers must be at least 1".into());
                }
            }
            "--delay-ms" => {
                let v = value("--delay-ms")?;
                let ms: u64 = v.parse().map_err(|e| format!("--delay-ms {v:?}: {e}"))?;
                delay = std::time::Duration::from_millis(ms);
            }
            "-h" | "--help" => {
                println!("usage: backend [--listen IP:PORT] [--workers N] [--delay-ms N]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        listen,
        workers,
        delay,
    })
}

fn response(status: StatusCode, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

async fn handle(
    bodies: Arc<Bodies>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return Ok(match bodies.for_path(req.uri().path()) {
            Some(body) => response(StatusCode::OK, "application/octet-stream", body),
            None => response(StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n")),
        });
    }
    // Count the body frame by frame instead of collecting it: a large upload costs no memory.
    let mut body = req.into_body();
    let mut len: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    len += data.len() as u64;
                }
            }
            Err(_) => {
                return Ok(response(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    Bytes::from_static(b"body error\n"),
                ));
            }
        }
    }
    Ok(response(
        StatusCode::OK,
        "text/plain",
        Bytes::from(format!("{len}\n")),
    ))
}

/// Serve until SIGTERM or SIGINT, then stop accepting and let every connection finish the
/// request it is on (a rolling restart, as `bench/soak.sh` does to the new side).
async fn serve(listener: TcpListener, delay: std::time::Duration) {
    let bodies = Arc::new(Bodies::new());
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let graceful = GracefulShutdown::new();
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            eprintln!("backend: SIGTERM handler: {error}");
            std::process::exit(1);
        }
    };
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    eprintln!("accept: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let _ = stream.set_nodelay(true);
        let bodies = bodies.clone();
        let service = service_fn(move |req| {
            let bodies = bodies.clone();
            async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                handle(bodies, req).await
            }
        });
        let served = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let watched = graceful.watch(served);
        // Errors here are client resets at the end of a benchmark run: nothing to report.
        tokio::spawn(async move {
            let _ = watched.await;
        });
    }
    drop(listener);
    // In-flight requests finish (bounded: a stuck client does not hold the exit forever).
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await;
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("backend: {message}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("backend: runtime: {error}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async {
        let listener = match TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(error) => {
                eprintln!("backend: bind {}: {error}", args.listen);
                std::process::exit(1);
            }
        };
        eprintln!(
            "backend listening on http://{} ({} worker(s))",
            args.listen, args.workers
        );
        serve(listener, args.delay).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_is_chosen_by_last_segment() {
        let b = Bodies::new();
        assert_eq!(b.for_path("/1k").map(|x| x.len()), Some(1024));
        assert_eq!(b.for_path("/api/cards/64k").map(|x| x.len()), Some(65536));
        assert_eq!(b.for_path("/v2/cards/1m/").map(|x| x.len()), Some(1 << 20));
        assert_eq!(b.for_path("/1k/other").map(|x| x.len()), None);
        assert_eq!(b.for_path("/").map(|x| x.len()), None);
    }

    #[test]
    fn clones_share_one_allocation() {
        let b = Bodies::new();
        let (x, y) = (b.for_path("/1m"), b.for_path("/1m"));
        assert_eq!(x.map(|x| x.as_ptr()), y.map(|y| y.as_ptr()));
    }
}
