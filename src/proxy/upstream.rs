//! Named upstream pools: one pooled hyper-util client per upstream, round-robin over its
//! origins, passive health (eject an origin after N consecutive connect failures for T), and
//! the connect / response-header timeouts.
//!
//! Pools live in the rule snapshot but are built outside the pure config compile: on reload,
//! [`Pools::build`] reuses the pool of every upstream whose spec did not change, so a reload
//! causes no reconnect storm and keeps warm keep-alive connections.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::error::ProxyError;
use crate::proxy::body::Body;
use crate::rules::UpstreamSpec;
use crate::tls;

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
}

impl Origin {
    fn new(uri: &Uri) -> Option<Origin> {
        let scheme = uri.scheme().cloned()?;
        let authority = uri.authority().cloned()?;
        let base_path = uri.path().trim_end_matches('/').to_string();
        Some(Origin {
            scheme,
            authority,
            base_path,
            consecutive_failures: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
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

/// A pool: the spec it was built from, its origins and its client.
pub struct Pool {
    /// The spec this pool was built from; equal specs share a pool across reloads.
    pub spec: Arc<UpstreamSpec>,
    /// The origins, in config order.
    pub origins: Vec<Origin>,
    next: AtomicUsize,
    client: HttpsClient,
    /// A client forced to HTTP/1.1, for upgrade (WebSocket) requests.
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Pool {
    /// Build a pool for `spec`. Fails only when a CA file cannot be read.
    pub fn new(spec: Arc<UpstreamSpec>) -> Result<Pool, String> {
        let origins = spec.origins.iter().filter_map(Origin::new).collect();
        let client = build_client(&spec, spec.http2)?;
        let client_h1 = build_client(&spec, false)?;
        Ok(Pool {
            spec,
            origins,
            next: AtomicUsize::new(0),
            client,
            client_h1,
        })
    }

    /// Pick the next healthy origin round-robin; when every origin is ejected, the one whose
    /// ejection ends first is tried anyway (a pool never refuses outright while it has origins).
    pub fn pick(&self) -> Result<&Origin, ProxyError> {
        let n = self.origins.len();
        if n == 0 {
            return Err(ProxyError::NoHealthyOrigin);
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        for i in 0..n {
            let origin = &self.origins[(start + i) % n];
            if origin.is_healthy(now) {
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
    ) -> Result<Response<Incoming>, ProxyError> {
        let client = if upgrade {
            &self.client_h1
        } else {
            &self.client
        };
        let result = tokio::time::timeout(self.spec.timeout, client.request(request)).await;
        match result {
            Err(_) => Err(ProxyError::UpstreamTimeout),
            Ok(Ok(response)) => {
                origin.consecutive_failures.store(0, Ordering::Relaxed);
                Ok(response)
            }
            Ok(Err(error)) if error.is_connect() => {
                self.record_connect_failure(origin);
                Err(ProxyError::UpstreamConnect(error_chain(&error)))
            }
            Ok(Err(error)) => match crate::proxy::body::client_body_fault(&error) {
                // The client's body failed mid-stream: not the origin's fault, no health change.
                Some(fault) => Err(ProxyError::from(fault)),
                None => Err(ProxyError::UpstreamProtocol(error_chain(&error))),
            },
        }
    }

    fn record_connect_failure(&self, origin: &Origin) {
        let failures = origin.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.spec.eject_after.max(1) {
            let until = now_ms() + self.spec.eject_for.as_millis() as u64;
            origin.ejected_until_ms.store(until, Ordering::Relaxed);
            origin.consecutive_failures.store(0, Ordering::Relaxed);
            tracing::warn!(upstream = %self.spec.name, origin = %origin.authority, "origin ejected after {failures} consecutive connect failures");
        }
    }
}

/// The whole error chain in one line: hyper-util's top-level message alone says little.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

fn build_client(spec: &UpstreamSpec, http2: bool) -> Result<HttpsClient, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(spec.connect_timeout));
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));
    let tls = tls::client_config(spec.ca_file.as_deref())?;
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let connector = if http2 {
        builder.enable_all_versions().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    };
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

impl Pools {
    /// Build pools for `specs`, reusing those of `previous` whose spec is unchanged.
    pub fn build(
        specs: &BTreeMap<String, Arc<UpstreamSpec>>,
        previous: Option<&Pools>,
    ) -> Result<Pools, String> {
        let mut pools = HashMap::with_capacity(specs.len());
        for (name, spec) in specs {
            let reused = previous
                .and_then(|p| p.pools.get(name))
                .filter(|pool| *pool.spec == **spec)
                .cloned();
            let pool = match reused {
                Some(pool) => pool,
                None => {
                    Arc::new(Pool::new(spec.clone()).map_err(|e| format!("upstream {name}: {e}"))?)
                }
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

    /// Health of every origin: (upstream, origin, healthy, consecutive failures).
    pub fn health(&self) -> Vec<serde_json::Value> {
        let now = now_ms();
        let mut out: Vec<serde_json::Value> = self
            .pools
            .iter()
            .map(|(name, pool)| {
                let origins: Vec<serde_json::Value> = pool
                    .origins
                    .iter()
                    .map(|o| {
                        serde_json::json!({
                            "origin": format!("{}://{}", o.scheme, o.authority),
                            "healthy": o.is_healthy(now),
                            "consecutive_failures": o.failures(),
                        })
                    })
                    .collect();
                serde_json::json!({ "upstream": name, "origins": origins })
            })
            .collect();
        out.sort_by(|a, b| a["upstream"].as_str().cmp(&b["upstream"].as_str()));
        out
    }
}
