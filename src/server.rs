//! Listeners: plain HTTP (HTTP/1.1 and h2c) and TLS (ALPN h2 / http/1.1), each connection
//! served by hyper-util's auto builder with upgrades, limits from `[listen]`, and a graceful
//! drain on shutdown: stop accepting, let in-flight requests finish up to `drain_timeout`.
//!
//! This is the **accept** phase of the request path (see [`crate::proxy`]): every HTTP/1
//! connection's bytes pass the framing guard ([`crate::framing`]) before hyper parses them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::framing::{FramingGuard, FramingVerdict};
use crate::live::Live;
use crate::proxy::{self, Connection, Proxy};
use crate::rules::Limits;
use crate::tls::{self, CertResolver, TlsError};

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("no listener configured: set [listen] http or https")]
    NoListener,
}

/// The data listeners' bound addresses.
#[derive(Debug, Clone, Copy)]
pub struct Listeners {
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
}

impl Listeners {
    /// Bind the listeners of the rules in force and serve them (and swap the TLS certificate
    /// when a reload brings a new one) until `shutdown`; the tasks are pushed to `tasks`.
    pub async fn start(
        proxy: &Arc<Proxy>,
        shutdown: &watch::Receiver<bool>,
        tasks: &mut Vec<JoinHandle<()>>,
    ) -> Result<Listeners, ListenError> {
        let snapshot = proxy.live.load();
        let listen = &snapshot.rules.listen;
        // One count of client connections for both data listeners.
        let slots = Arc::new(Slots::default());
        let http = match listen.http {
            Some(addr) => {
                let listener = bind(addr).await?;
                let local = listener.local_addr().unwrap_or(addr);
                tasks.push(tokio::spawn(serve(
                    listener,
                    None,
                    proxy.clone(),
                    slots.clone(),
                    shutdown.clone(),
                )));
                Some(local)
            }
            None => None,
        };
        let https = match (listen.https, &listen.tls_cert, &listen.tls_key) {
            (Some(addr), Some(cert), Some(key)) => {
                let certified = tls::load_certified_key(cert, key)?;
                let resolver = CertResolver::new(certified);
                let acceptor = TlsAcceptor::from(tls::server_config(resolver.clone()));
                let listener = bind(addr).await?;
                let local = listener.local_addr().unwrap_or(addr);
                tasks.push(tokio::spawn(serve(
                    listener,
                    Some(acceptor),
                    proxy.clone(),
                    slots,
                    shutdown.clone(),
                )));
                tasks.push(tokio::spawn(swap_certificates(
                    proxy.live.clone(),
                    resolver,
                    (cert.clone(), key.clone()),
                    shutdown.clone(),
                )));
                Some(local)
            }
            // The config compiler refuses `https` without a certificate and key.
            _ => None,
        };
        if http.is_none() && https.is_none() {
            return Err(ListenError::NoListener);
        }
        Ok(Listeners { http, https })
    }
}

/// Bind a TCP listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ListenError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::Bind { addr, source })
}

/// HTTP/2 streams open at once on one connection.
pub const H2_MAX_STREAMS: u32 = 100;
/// HTTP/2 streams a client may reset before the gateway took them up (rapid reset).
pub const H2_MAX_PENDING_RESETS: usize = 20;
/// HTTP/2 streams the gateway may reset for a client's errors over a connection's life.
pub const H2_MAX_ERROR_RESETS: usize = 200;

/// The connection builder with the limits of the rules in force when the connection opened.
fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // hyper starts this clock whenever the connection waits for a request head, so it is
        // both the slow-header limit and the keep-alive idle limit: the shorter one applies.
        .header_read_timeout(limits.header_read_timeout.min(limits.idle_timeout))
        // hyper answers 431 when the header block outgrows this buffer; it refuses < 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        // Stream floods: streams past this many open at once are refused (REFUSED_STREAM).
        .max_concurrent_streams(H2_MAX_STREAMS)
        // Rapid reset: streams the client resets before they are served, and streams the
        // gateway resets for the client's errors, end the connection with ENHANCE_YOUR_CALM
        // past these counts.
        .max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS)
        .max_local_error_reset_streams(H2_MAX_ERROR_RESETS)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Client connections open on the data listeners, held against `[listen] max_connections`: an
/// atomic count, and a wake-up for an accept loop waiting for a free slot.
#[derive(Debug, Default)]
struct Slots {
    open: AtomicUsize,
    freed: Notify,
    /// An accept loop is waiting for a slot (the limit was reported once for this episode).
    full: AtomicBool,
}

/// One open connection's slot, given back when dropped.
struct Slot(Arc<Slots>);

impl Slots {
    /// Take a slot, waiting while the limit in force is reached; `None` on shutdown.
    async fn take(
        self: &Arc<Self>,
        proxy: &Proxy,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<Slot> {
        let mut waited = false;
        loop {
            let limit = proxy.live.load().rules.listen.limits.max_connections;
            if self.open.fetch_add(1, Ordering::AcqRel) < limit {
                if !waited {
                    self.full.store(false, Ordering::Relaxed);
                }
                return Some(Slot(self.clone()));
            }
            self.open.fetch_sub(1, Ordering::AcqRel);
            waited = true;
            if !self.full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    limit,
                    "max_connections reached: new connections wait in the listen backlog"
                );
            }
            tokio::select! {
                _ = self.freed.notified() => {}
                // A reload may raise the limit.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return None,
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

/// Accept connections until shutdown, then drain.
async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    slots: Arc<Slots>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        // At `max_connections` the loop stops accepting: new connections wait in the kernel's
        // listen backlog until one closes, and the admin listener, apart, keeps answering.
        let Some(slot) = slots.take(&proxy, &mut shutdown).await else {
            break;
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let snapshot = proxy.live.load();
        let limits = &snapshot.rules.listen.limits;
        let builder = builder(limits);
        let handshake_timeout = limits.header_read_timeout;
        let first_bytes = limits.header_read_timeout.min(limits.idle_timeout);
        let conn = Connection {
            peer,
            tls: tls.is_some(),
            framing_fault: None,
        };
        let proxy = proxy.clone();
        match &tls {
            None => {
                let (io, verdict) = FramingGuard::new(stream);
                let served = builder
                    .serve_connection_with_upgrades(
                        TokioIo::new(io),
                        service(proxy, conn, verdict.clone()),
                    )
                    .into_owned();
                let watched = graceful.watch(served);
                tokio::spawn(async move {
                    let _slot = slot;
                    let served = first_bytes_within(first_bytes, &verdict, watched).await;
                    verdict.release();
                    if let Err(error) = served {
                        tracing::debug!(%peer, "connection ended: {error}");
                    }
                });
            }
            Some(acceptor) => {
                // The handshake runs in the connection's own task: a slow client must not
                // hold up the accept loop.
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _slot = slot;
                    let stream = match tokio::time::timeout(
                        handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, "TLS handshake failed: {error}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let (io, verdict) = FramingGuard::new(stream);
                    let served = builder
                        .serve_connection_with_upgrades(
                            TokioIo::new(io),
                            service(proxy, conn, verdict.clone()),
                        )
                        .into_owned();
                    let watched = watcher.watch(served);
                    let served = first_bytes_within(first_bytes, &verdict, watched).await;
                    verdict.release();
                    if let Err(error) = served {
                        tracing::debug!(%peer, "connection ended: {error}");
                    }
                });
            }
        }
    }
    drop(listener);
    let drain = proxy.live.load().rules.listen.limits.drain_timeout;
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain deadline of {drain:?} reached; closing remaining connections");
    }
}

/// Drive `connection`, dropping it (which closes it) when the client sent nothing within
/// `wait`: hyper-util reads the first bytes to tell HTTP/1 from HTTP/2 with no timer of its
/// own, and hyper's header timer only runs once it has them.
async fn first_bytes_within<F, E>(
    wait: Duration,
    verdict: &FramingVerdict,
    connection: F,
) -> Result<(), E>
where
    F: Future<Output = Result<(), E>>,
{
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = &mut connection => return result,
        () = tokio::time::sleep(wait) => {}
    }
    if !verdict.has_bytes() {
        return Ok(());
    }
    connection.await
}

/// The per-connection service: the framing guard is asked in request order (here, as hyper
/// hands each request over), then the proxy runs the request.
fn service(
    proxy: Arc<Proxy>,
    conn: Connection,
    verdict: Arc<FramingVerdict>,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<crate::body::Body>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<http::Response<crate::body::Body>, std::convert::Infallible>>
             + Send,
> + Clone {
    service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let conn = Connection {
            framing_fault: verdict.next_fault(),
            ..conn
        };
        proxy::handle(proxy.clone(), conn, request)
    })
}

/// Swap the TLS certificate when a new generation brings changed certificate files.
async fn swap_certificates(
    live: Arc<Live>,
    resolver: Arc<CertResolver>,
    mut files: (PathBuf, PathBuf),
    mut shutdown: watch::Receiver<bool>,
) {
    let mut changed = live.subscribe();
    let mut loaded = file_fingerprint(&files);
    loop {
        tokio::select! {
            result = changed.changed() => if result.is_err() { return },
            _ = shutdown.changed() => return,
        }
        let snapshot = live.load();
        let (Some(cert), Some(key)) = (
            &snapshot.rules.listen.tls_cert,
            &snapshot.rules.listen.tls_key,
        ) else {
            continue;
        };
        let now = (cert.clone(), key.clone());
        let fingerprint = file_fingerprint(&now);
        if now == files && fingerprint == loaded {
            continue;
        }
        match tls::load_certified_key(cert, key) {
            Ok(certified) => {
                resolver.swap(certified);
                files = now;
                loaded = fingerprint;
                tracing::info!(cert = %cert.display(), "TLS certificate swapped");
            }
            Err(error) => {
                tracing::error!("new TLS certificate rejected, the old one keeps serving: {error}")
            }
        }
    }
}

fn file_fingerprint((cert, key): &(PathBuf, PathBuf)) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(cert).unwrap_or_default(),
        std::fs::read(key).unwrap_or_default(),
    )
}
