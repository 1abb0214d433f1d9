//! Listeners: plain HTTP (HTTP/1.1 and h2c) and TLS (ALPN h2 / http/1.1), each connection
//! served by hyper-util's auto builder with upgrades, limits from `[listen]`, and a graceful
//! drain on shutdown: stop accepting, let in-flight requests finish up to `drain_timeout`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::admin;
use crate::error::ProxyError;
use crate::live::{Live, Trigger};
use crate::proxy::{self, Connection, Proxy};
use crate::rules::Limits;
use crate::shadow::Shadower;
use crate::store::{GenerationRecord, RetentionPolicy, Store, StoreWriter, WriterConfig};
use crate::telemetry::Metrics;
use crate::tls::{self, CertResolver};
use crate::traffic::Traffic;

pub mod framing;
mod head;

use framing::{FramingGuard, FramingVerdict};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] crate::live::ReloadError),
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("no listener configured: set [listen] http or https")]
    NoListener,
    #[error("{0}")]
    Other(String),
}

/// Options that do not come from the config file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Watch the config file (and the files it names) for changes. On by default for `run`.
    pub watch: bool,
}

/// A running gateway: its bound addresses and the handle to stop it.
pub struct Gateway {
    /// The HTTP listener's address, when configured.
    pub http: Option<SocketAddr>,
    /// The TLS listener's address, when configured.
    pub https: Option<SocketAddr>,
    /// The admin listener's address.
    pub admin: SocketAddr,
    /// The live rules (tests and the admin API reload through it).
    pub live: Arc<Live>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The request path's shared state.
    pub proxy: Arc<Proxy>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Gateway {
    /// Load `config` and start every listener. Listen addresses with port 0 bind a free port;
    /// the bound addresses are in the returned value.
    pub async fn start(config: &Path, options: Options) -> Result<Gateway, StartError> {
        let metrics = Arc::new(Metrics::new());
        // The store is opened first so the history it keeps can seed this process's.
        let store = match crate::config::load_file(config) {
            Ok(rules) => open_store(&rules, config).await,
            Err(_) => None, // Live::start reports the config errors.
        };
        let past = match &store {
            Some(store) => stored_history(store).await,
            None => Vec::new(),
        };
        let live = Live::start_with(config, metrics.clone(), past)?;
        let snapshot = live.load();
        let rules = &snapshot.rules;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let writer = store.clone().map(|store| {
            StoreWriter::spawn(
                store,
                WriterConfig {
                    retention: Some(RetentionPolicy {
                        max_age: rules.store.retention,
                        max_samples: rules.store.max_samples,
                        ..RetentionPolicy::default()
                    }),
                    ..WriterConfig::default()
                },
            )
        });
        let shadow = Shadower::start(&snapshot, metrics.clone(), writer);
        if let Some(store) = &store {
            tasks.push(tokio::spawn(persist_history(
                live.clone(),
                store.clone(),
                shutdown_rx.clone(),
            )));
        }
        let proxy = Arc::new(Proxy {
            live: live.clone(),
            metrics: metrics.clone(),
            shadow,
            traffic: Arc::new(Traffic::new()),
            store,
        });

        let http = match rules.listen.http {
            Some(addr) => {
                let listener = bind(addr).await?;
                let local = listener.local_addr().unwrap_or(addr);
                tasks.push(tokio::spawn(serve(
                    listener,
                    None,
                    proxy.clone(),
                    shutdown_rx.clone(),
                )));
                Some(local)
            }
            None => None,
        };
        let https = match (
            rules.listen.https,
            &rules.listen.tls_cert,
            &rules.listen.tls_key,
        ) {
            (Some(addr), Some(cert), Some(key)) => {
                let certified = tls::load_certified_key(cert, key).map_err(StartError::Tls)?;
                let resolver = CertResolver::new(certified);
                let acceptor = TlsAcceptor::from(tls::server_config(resolver.clone()));
                let listener = bind(addr).await?;
                let local = listener.local_addr().unwrap_or(addr);
                tasks.push(tokio::spawn(serve(
                    listener,
                    Some(acceptor),
                    proxy.clone(),
                    shutdown_rx.clone(),
                )));
                tasks.push(tokio::spawn(swap_certificates(
                    live.clone(),
                    resolver,
                    (cert.clone(), key.clone()),
                    shutdown_rx.clone(),
                )));
                Some(local)
            }
            (Some(_), _, _) => {
                return Err(StartError::Tls(
                    "[listen] https needs tls_cert and tls_key".into(),
                ));
            }
            _ => None,
        };
        if http.is_none() && https.is_none() {
            return Err(StartError::NoListener);
        }
        let admin_listener = bind(rules.admin.listen).await?;
        let admin_addr = admin_listener.local_addr().unwrap_or(rules.admin.listen);
        tasks.push(tokio::spawn(admin::serve(
            admin_listener,
            proxy.clone(),
            shutdown_rx.clone(),
        )));
        if options.watch {
            crate::live::watch::spawn_file_watch(live.clone());
            crate::live::watch::spawn_sighup(live.clone());
        }
        tracing::info!(
            generation = snapshot.generation,
            http = ?http,
            https = ?https,
            admin = %admin_addr,
            "switchyard serving"
        );
        Ok(Gateway {
            http,
            https,
            admin: admin_addr,
            live,
            metrics,
            proxy,
            shutdown,
            tasks,
        })
    }

    /// Stop accepting, drain in-flight requests (bounded by `drain_timeout`), flush the shadow
    /// results, and return.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.proxy.shadow.close().await;
        if let Some(store) = &self.proxy.store {
            store.close().await;
        }
    }

    /// Reload the rules now (tests; the file watch and SIGHUP do this in production).
    pub async fn reload(&self) -> Result<crate::live::ReloadOutcome, crate::live::ReloadError> {
        self.live.reload(Trigger::Admin).await
    }
}

/// Open the store of `[store] url`. A store that cannot be opened does not stop the gateway:
/// traffic matters more than shadow records; the failure is logged loudly, the comparisons
/// are then only counted in metrics, and the admin API refuses writes (503): an operator's
/// change that cannot be audited is not made.
async fn open_store(rules: &crate::rules::RuleSet, config: &Path) -> Option<Store> {
    let base = config.parent().unwrap_or(Path::new("."));
    match Store::open(&rules.store.url, base).await {
        Ok(store) => Some(store),
        Err(error) => {
            tracing::error!(url = %redact_url(&rules.store.url), "store unavailable, shadow results and history are not persisted, admin writes are refused (they could not be audited): {error}");
            None
        }
    }
}

/// A store URL fit for logs: the password of `postgres://user:password@host/db` masked.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// The generations kept in the store, oldest first, with their config texts.
async fn stored_history(store: &Store) -> Vec<crate::live::HistoryEntry> {
    let summaries = match store.list_generations(crate::live::HISTORY_LEN).await {
        Ok(list) => list,
        Err(error) => {
            tracing::warn!("stored history unavailable: {error}");
            return Vec::new();
        }
    };
    let mut entries = Vec::with_capacity(summaries.len());
    for summary in summaries {
        if let Ok(Some(record)) = store.get_generation(summary.generation).await {
            entries.push(crate::live::HistoryEntry {
                generation: record.generation,
                hash: record.hash,
                loaded_at: std::time::UNIX_EPOCH
                    + Duration::from_millis(record.loaded_at_ms.max(0) as u64),
                trigger: crate::live::Trigger::parse(&record.origin),
                text: Arc::from(record.content),
            });
        }
    }
    entries.sort_by_key(|e| e.generation);
    entries
}

/// Save every generation (its full config text) in the store: the history survives restarts
/// and is shared by a fleet on PostgreSQL.
async fn persist_history(live: Arc<Live>, store: Store, mut shutdown: watch::Receiver<bool>) {
    let mut changed = live.subscribe();
    let mut saved = 0;
    loop {
        let snapshot = live.load();
        if snapshot.generation != saved {
            let record = GenerationRecord {
                generation: snapshot.generation,
                hash: snapshot.rules.hash.clone(),
                loaded_at_ms: crate::util::epoch_ms(snapshot.loaded_at),
                source: live.path().display().to_string(),
                content: snapshot.text.to_string(),
                origin: snapshot.trigger.as_str().to_string(),
            };
            match store.save_generation(&record).await {
                Ok(()) => saved = snapshot.generation,
                Err(error) => {
                    tracing::warn!(
                        generation = record.generation,
                        "history not persisted: {error}"
                    )
                }
            }
        }
        if *shutdown.borrow() {
            // Stop only once the generation in force is saved (a reload may have landed
            // while the previous one was being written).
            if live.load().generation == saved {
                return;
            }
            continue;
        }
        tokio::select! {
            result = changed.changed() => if result.is_err() { return },
            // One more pass saves a generation swapped in just before shutdown.
            _ = shutdown.changed() => {},
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| StartError::Bind { addr, error })
}

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
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Accept connections until shutdown, then drain.
async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
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
        let conn = Connection {
            peer,
            tls: tls.is_some(),
        };
        let proxy = proxy.clone();
        match &tls {
            None => {
                let (io, verdict) = FramingGuard::new(stream);
                let served = builder
                    .serve_connection_with_upgrades(TokioIo::new(io), service(proxy, conn, verdict))
                    .into_owned();
                let watched = graceful.watch(served);
                tokio::spawn(async move {
                    if let Err(error) = watched.await {
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
                            service(proxy, conn, verdict),
                        )
                        .into_owned();
                    if let Err(error) = watcher.watch(served).await {
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

/// The per-connection service: the framing verdict first, then the proxy.
fn service(
    proxy: Arc<Proxy>,
    conn: Connection,
    verdict: Arc<FramingVerdict>,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<crate::proxy::body::Body>,
    Error = std::convert::Infallible,
    Future = impl Future<
        Output = Result<http::Response<crate::proxy::body::Body>, std::convert::Infallible>,
    > + Send,
> + Clone {
    service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let proxy = proxy.clone();
        let fault = verdict.next_fault();
        async move {
            if let Some(fault) = fault {
                let id = crate::proxy::forward::request_id(request.headers());
                let mut response =
                    ProxyError::from(fault).into_response(None, None, id.to_str().unwrap_or(""));
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
                return Ok(response);
            }
            if let Err(error) = head::check_authority(request.uri(), request.headers()) {
                let id = crate::proxy::forward::request_id(request.headers());
                return Ok(error.into_response(None, None, id.to_str().unwrap_or("")));
            }
            proxy::handle(proxy, conn, request).await
        }
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

#[cfg(test)]
mod tests {
    #[test]
    fn store_urls_are_logged_without_passwords() {
        assert_eq!(
            super::redact_url("postgres://sy:hunter2@db:5432/sy"),
            "postgres://sy:***@db:5432/sy"
        );
        assert_eq!(super::redact_url("sqlite://a.db"), "sqlite://a.db");
    }
}
