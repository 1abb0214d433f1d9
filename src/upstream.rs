//! Named upstream pools: one pooled hyper-util client per upstream, round-robin over its
//! origins, passive health (eject an origin after N consecutive connect failures for T), and
//! the connect / response-header timeouts.
//!
//! HTTP/1.1 requests go through [`h1`], whose connections are driven by the request's own task;
//! HTTP/2 upstreams and upgrades (WebSocket) use hyper's pooled client.
//!
//! Pools live in the rule snapshot but are built outside the pure config compile: on reload,
//! [`Pools::build`] reuses the pool of every upstream whose spec did not change, so a reload
//! causes no reconnect storm and keeps warm keep-alive connections.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::Body;
use crate::clock::Clock;
use crate::error::ProxyError;
use crate::rules::UpstreamSpec;
use crate::tls::{self, TlsError};

mod h1;

pub use h1::{DrivenBody, UpstreamBody};

type HttpsClient = Client<HttpsConnector<HttpConnector>, Body>;

/// One origin of a pool and its passive health.
#[derive(Debug)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// host:port.
    pub authority: Authority,
    /// Path prefix of the origin URL ("" when the URL has none).
    pub base_path: String,
    consecutive_failures: AtomicU32,
    /// Unix milliseconds until which the origin is ejected (0 = healthy).
    ejected_until_ms: AtomicU64,
    /// Idle HTTP/1.1 connections to this origin.
    idle: Arc<h1::IdleQueue>,
}

impl Origin {
    fn new(uri: &Uri, max_idle: usize) -> Option<Origin> {
        let scheme = uri.scheme().cloned()?;
        let authority = uri.authority().cloned()?;
        let base_path = uri.path().trim_end_matches('/').to_string();
        Some(Origin {
            scheme,
            authority,
            base_path,
            consecutive_failures: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            idle: Arc::new(h1::IdleQueue::new(max_idle)),
        })
    }

    /// True when the origin is not ejected at `now_ms`.
    pub fn is_healthy(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) <= now_ms
    }

    /// Consecutive connect failures so far.
    pub fn failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }
}

/// Why a pool could not be built.
#[derive(Debug, thiserror::Error)]
#[error("upstream {upstream}: {source}")]
pub struct PoolError {
    pub upstream: String,
    #[source]
    pub source: Box<TlsError>,
}

/// A pool: the spec it was built from, its origins and its client.
pub struct Pool {
    /// The spec this pool was built from; equal specs share a pool across reloads.
    pub spec: Arc<UpstreamSpec>,
    /// The origins, in config order.
    pub origins: Vec<Origin>,
    next: AtomicUsize,
    /// Ejection deadlines are wall-clock milliseconds from this clock.
    clock: Clock,
    /// HTTP/1.1 on connections driven by the request's task; `None` for HTTP/2 upstreams.
    h1: Option<h1::H1Client>,
    /// hyper's pooled client: HTTP/2 upstreams.
    client: HttpsClient,
    /// hyper's pooled client forced to HTTP/1.1, for upgrade (WebSocket) requests.
    client_h1: HttpsClient,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.spec.name)
            .field("origins", &self.origins)
            .finish()
    }
}

impl Pool {
    /// Build a pool for `spec`. Fails only when a CA file cannot be read.
    pub fn new(spec: Arc<UpstreamSpec>, clock: Clock) -> Result<Pool, PoolError> {
        let origins = spec
            .origins
            .iter()
            .filter_map(|uri| Origin::new(uri, spec.max_idle_per_origin))
            .collect();
        let error = |source| PoolError {
            upstream: spec.name.clone(),
            source: Box::new(source),
        };
        let client = build_client(&spec, spec.http2).map_err(error)?;
        let client_h1 = build_client(&spec, false).map_err(error)?;
        let h1 = if spec.http2 {
            None
        } else {
            let connector = connector(&spec, false).map_err(error)?;
            Some(h1::H1Client::new(
                connector,
                spec.idle_timeout,
                clock.clone(),
            ))
        };
        Ok(Pool {
            spec,
            origins,
            next: AtomicUsize::new(0),
            clock,
            h1,
            client,
            client_h1,
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.now_ms()).unwrap_or(0)
    }

    /// Pick the next healthy origin round-robin; when every origin is ejected, the one whose
    /// ejection ends first is tried anyway (a pool never refuses outright while it has origins).
    pub fn pick(&self) -> Result<&Origin, ProxyError> {
        let n = self.origins.len();
        if n == 0 {
            return Err(ProxyError::NoHealthyOrigin);
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        // The clock is read only when some origin has been ejected at some point.
        let mut now = None;
        for i in 0..n {
            let origin = &self.origins[(start + i) % n];
            let until = origin.ejected_until_ms.load(Ordering::Relaxed);
            if until == 0 || until <= *now.get_or_insert_with(|| self.now_ms()) {
                return Ok(origin);
            }
        }
        self.origins
            .iter()
            .min_by_key(|o| o.ejected_until_ms.load(Ordering::Relaxed))
            .ok_or(ProxyError::NoHealthyOrigin)
    }

    /// Send `request` (its URI already absolute for `origin`) and wait for the response head,
    /// bounded by the upstream's `timeout`. Connect failures feed passive health.
    pub async fn send(
        &self,
        origin: &Origin,
        request: Request<Body>,
        upgrade: bool,
    ) -> Result<Response<UpstreamBody>, ProxyError> {
        let result = match (&self.h1, upgrade) {
            (Some(h1), false) => {
                // Pinned in place: the timeout wraps a reference, not a moved copy of the future.
                let sent = std::pin::pin!(h1.send(&origin.idle, request));
                match tokio::time::timeout(self.spec.timeout, sent).await {
                    Err(_) => Err(ProxyError::UpstreamTimeout),
                    Ok(Ok(response)) => Ok(response),
                    Ok(Err(error)) if error.is_connect() => {
                        Err(ProxyError::UpstreamConnect(Box::new(error)))
                    }
                    Ok(Err(error)) => Err(ProxyError::UpstreamProtocol(Box::new(error))),
                }
            }
            _ => {
                let client = if upgrade {
                    &self.client_h1
                } else {
                    &self.client
                };
                // hyper's pooled client: HTTP/2 and upgrades, the rarer paths; boxed so its
                // large future does not weigh on every request's.
                let sent = Box::pin(client.request(request));
                match tokio::time::timeout(self.spec.timeout, sent).await {
                    Err(_) => Err(ProxyError::UpstreamTimeout),
                    Ok(Ok(response)) => Ok(response.map(UpstreamBody::Pooled)),
                    Ok(Err(error)) if error.is_connect() => {
                        Err(ProxyError::UpstreamConnect(Box::new(error)))
                    }
                    Ok(Err(error)) => Err(ProxyError::UpstreamProtocol(Box::new(error))),
                }
            }
        };
        match &result {
            Ok(_) => origin.consecutive_failures.store(0, Ordering::Relaxed),
            Err(ProxyError::UpstreamConnect(_)) => self.record_connect_failure(origin),
            Err(_) => {}
        }
        result
    }

    fn record_connect_failure(&self, origin: &Origin) {
        let failures = origin.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.spec.eject_after.max(1) {
            let until = self.now_ms() + self.spec.eject_for.as_millis() as u64;
            origin.ejected_until_ms.store(until, Ordering::Relaxed);
            origin.consecutive_failures.store(0, Ordering::Relaxed);
            tracing::warn!(upstream = %self.spec.name, origin = %origin.authority, "origin ejected after {failures} consecutive connect failures");
        }
    }
}

/// A connector for the origins of `spec`: plain TCP or TLS (ALPN h2 too with `http2`).
fn connector(spec: &UpstreamSpec, http2: bool) -> Result<HttpsConnector<HttpConnector>, TlsError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(spec.connect_timeout));
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));
    let tls = tls::client_config(spec.ca_file.as_deref())?;
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    Ok(if http2 {
        builder.enable_all_versions().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    })
}

fn build_client(spec: &UpstreamSpec, http2: bool) -> Result<HttpsClient, TlsError> {
    let connector = connector(spec, http2)?;
    let mut client = Client::builder(TokioExecutor::new());
    client
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(spec.idle_timeout)
        .pool_max_idle_per_host(spec.max_idle_per_origin);
    if http2 {
        // Cleartext upstreams get prior-knowledge h2c; TLS upstreams negotiate by ALPN.
        let cleartext = spec.origins.iter().all(|o| o.scheme_str() == Some("http"));
        client.http2_only(cleartext);
    }
    Ok(client.build(connector))
}

/// Every upstream's pool, by name.
#[derive(Debug, Default, Clone)]
pub struct Pools {
    pools: HashMap<String, Arc<Pool>>,
}

/// One origin's passive health, for status reporting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OriginHealth {
    /// `scheme://authority`.
    pub origin: String,
    pub healthy: bool,
    pub consecutive_failures: u32,
}

/// One upstream's origins and their health.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpstreamHealth {
    pub upstream: String,
    pub origins: Vec<OriginHealth>,
}

impl Pools {
    /// Build pools for `specs`, reusing those of `previous` whose spec is unchanged.
    pub fn build(
        specs: &BTreeMap<String, Arc<UpstreamSpec>>,
        previous: Option<&Pools>,
        clock: &Clock,
    ) -> Result<Pools, PoolError> {
        let mut pools = HashMap::with_capacity(specs.len());
        for (name, spec) in specs {
            let reused = previous
                .and_then(|p| p.pools.get(name))
                .filter(|pool| *pool.spec == **spec)
                .cloned();
            let pool = match reused {
                Some(pool) => pool,
                None => Arc::new(Pool::new(spec.clone(), clock.clone())?),
            };
            pools.insert(name.clone(), pool);
        }
        Ok(Pools { pools })
    }

    /// The pool named `name`.
    pub fn get(&self, name: &str) -> Result<&Arc<Pool>, ProxyError> {
        self.pools
            .get(name)
            .ok_or_else(|| ProxyError::UnknownUpstream(name.to_string()))
    }

    /// Every pool, for status reporting.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<Pool>)> {
        self.pools.iter()
    }

    /// Health of every origin, by upstream name.
    pub fn health(&self) -> Vec<UpstreamHealth> {
        let mut out: Vec<UpstreamHealth> = self
            .pools
            .iter()
            .map(|(name, pool)| {
                let now = pool.now_ms();
                UpstreamHealth {
                    upstream: name.clone(),
                    origins: pool
                        .origins
                        .iter()
                        .map(|o| OriginHealth {
                            origin: format!("{}://{}", o.scheme, o.authority),
                            healthy: o.is_healthy(now),
                            consecutive_failures: o.failures(),
                        })
                        .collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.upstream.cmp(&b.upstream));
        out
    }
}
