//! Shadow traffic: a copy of a request sent to the other side, its answer compared with the
//! primary's, never returned to the client.
//!
//! Off the hot path by construction:
//! - the request body is copied only when it was already buffered under `max_body` (else the
//!   comparison is skipped with reason `body_too_large`);
//! - the primary response streams to the client through a [`Tee`] that keeps a bounded copy;
//! - jobs go through a bounded queue (`[shadow] queue`) with a bounded number in flight
//!   (`[shadow] max_in_flight`) and their own timeout; a full queue is a skip (`queue_full`),
//!   never a wait; a per-route rate cap skips with `rate_limited`.
//!
//! Each job runs on the rule snapshot its request started on.
//!
//! The comparison itself is the pure [`compare`] module; learned noise is [`noise`]; results
//! go to the store's batched writer.

pub mod compare;
pub mod decode;
pub mod noise;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};
use hyper::body::Incoming;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::live::Snapshot;
use crate::proxy::body::{self, Body, Capture, Tee};
use crate::proxy::forward::{self, Downstream};
use crate::rules::{Route, RuleSet, ShadowPolicy, Side};
use crate::store::{Outcome, ShadowResult, SkipReason, StoreWriter};
use crate::telemetry::Metrics;
use compare::{CompareConfig, CompareRules};
use noise::{NoiseModel, NoiseVerdict};

/// Compiled compare rules, by route index (routes without `compare` get the defaults).
#[derive(Debug, Default)]
pub struct RouteCompare {
    by_route: Vec<Arc<CompareRules>>,
}

impl RouteCompare {
    /// Compile every route's `compare` table.
    pub fn compile(rules: &RuleSet) -> Result<RouteCompare, String> {
        let mut by_route = Vec::with_capacity(rules.routes.len());
        let mut errors = Vec::new();
        for route in &rules.routes {
            let config: CompareConfig = match &route.compare {
                Some(value) => match value.clone().try_into() {
                    Ok(config) => config,
                    Err(error) => {
                        errors.push(format!("route {}: compare: {error}", route.name));
                        CompareConfig::default()
                    }
                },
                None => CompareConfig::default(),
            };
            match CompareRules::compile(&config) {
                Ok(compiled) => {
                    // Differences render redacted values with the same key the samples use,
                    // so a hash seen in a report can be found in a stored sample.
                    let compiled = match rules.shadow.redact_key.as_deref() {
                        Some(key) => compiled.with_redact_key(key),
                        None => compiled,
                    };
                    by_route.push(Arc::new(compiled))
                }
                Err(problems) => {
                    for p in problems {
                        errors.push(format!("route {}: compare: {p}", route.name));
                    }
                    by_route.push(Arc::new(CompareRules::default()));
                }
            }
        }
        if errors.is_empty() {
            Ok(RouteCompare { by_route })
        } else {
            Err(errors.join("\n"))
        }
    }

    /// The rules of route `index`.
    pub fn get(&self, index: usize) -> Option<&Arc<CompareRules>> {
        self.by_route.get(index)
    }
}

/// Skip reasons (the `reason` label of `switchyard_shadow_skipped_total`).
pub mod skip {
    use crate::store::SkipReason;

    pub const BODY_TOO_LARGE: SkipReason = SkipReason::BodyTooLarge;
    pub const QUEUE_FULL: SkipReason = SkipReason::QueueFull;
    pub const RATE_LIMITED: SkipReason = SkipReason::RateLimited;
    pub const DISABLED: SkipReason = SkipReason::Disabled;
    pub const PRIMARY_INCOMPLETE: SkipReason = SkipReason::PrimaryIncomplete;
}

/// Skipped comparisons written to the store per second, at most. Under overload nearly every
/// request is a skip; a row for each would turn an overload of the shadow side into an
/// overload of the store and of this process. The metric counts every skip; the report's
/// per-reason skip counts are exact up to this rate and a sample beyond it.
const SKIPS_STORED_PER_SEC: u32 = 50;

fn skip_budget() -> bool {
    static SECOND: AtomicU64 = AtomicU64::new(0);
    static USED: AtomicU32 = AtomicU32::new(0);
    let now = crate::util::now_ms() as u64 / 1000;
    if SECOND.swap(now, Ordering::Relaxed) != now {
        USED.store(0, Ordering::Relaxed);
    }
    USED.fetch_add(1, Ordering::Relaxed) < SKIPS_STORED_PER_SEC
}

/// Count a skipped comparison and record it for the report (skips by reason).
fn record_skip(
    metrics: &Metrics,
    writer: Option<&StoreWriter>,
    route: &str,
    tenant: Option<&str>,
    primary_side: Side,
    reason: SkipReason,
) {
    metrics.shadow_skip(route, reason.as_str());
    if let Some(writer) = writer
        && skip_budget()
    {
        let _ = writer.try_send(ShadowResult {
            at_ms: crate::util::now_ms(),
            route: route.to_string(),
            tenant: tenant.map(str::to_string),
            primary_side,
            outcome: Outcome::Skipped,
            skip_reason: Some(reason),
            error: None,
            primary_ms: None,
            shadow_ms: None,
            diffs: Vec::new(),
            self_check: None,
            sample: None,
        });
    }
}

/// One comparison waiting for the worker.
pub(crate) struct Job {
    snapshot: Arc<Snapshot>,
    route_index: usize,
    tenant: Option<String>,
    primary_side: Side,
    shadow_side: Side,
    method: Method,
    request: http::request::Parts,
    host: Option<String>,
    peer: Option<std::net::IpAddr>,
    body: Bytes,
    self_check: bool,
    primary: oneshot::Receiver<PrimaryCapture>,
}

/// What the primary answered, captured while it streamed to the client.
pub(crate) struct PrimaryCapture {
    status: u16,
    headers: HeaderMap,
    body: Capture,
    elapsed: Duration,
}

/// The shadow worker: queue, concurrency bound, rate caps, noise model, result sink.
pub struct Shadower {
    queue: mpsc::Sender<Job>,
    /// Jobs enqueued and not yet finished (for flush and shutdown).
    pending: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    rates: Mutex<HashMap<String, (u64, u32)>>,
    noise: Arc<NoiseModel>,
    writer: Option<StoreWriter>,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A request selected for shadowing; turns the primary's body into a tee.
pub struct ShadowTicket {
    job: Job,
    queue: mpsc::Sender<Job>,
    pending: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    writer: Option<StoreWriter>,
    max_body: usize,
    capture: oneshot::Sender<PrimaryCapture>,
}

impl Shadower {
    /// Start the worker. `writer` receives every result (None: metrics and noise only).
    pub fn start(
        snapshot: &Snapshot,
        metrics: Arc<Metrics>,
        writer: Option<StoreWriter>,
    ) -> Arc<Shadower> {
        let (queue, rx) = mpsc::channel(snapshot.rules.shadow.queue.max(1));
        let noise = Arc::new(NoiseModel::with_window(
            noise::DEFAULT_MAX_KEYS,
            snapshot.rules.shadow.noise_window,
        ));
        let in_flight = Arc::new(Semaphore::new(snapshot.rules.shadow.max_in_flight.max(1)));
        let pending = Arc::new(AtomicUsize::new(0));
        let worker = tokio::spawn(worker::dispatch(
            rx,
            in_flight,
            pending.clone(),
            metrics.clone(),
            noise.clone(),
            writer.clone(),
        ));
        Arc::new(Shadower {
            queue,
            pending,
            metrics,
            rates: Mutex::new(HashMap::new()),
            noise,
            writer,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// The learned-noise model (the report classifies with the same statistics).
    pub fn noise(&self) -> &Arc<NoiseModel> {
        &self.noise
    }

    /// Register a comparison for a request the decision selected, or record why it is skipped.
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        &self,
        snapshot: &Arc<Snapshot>,
        route: &Route,
        policy: &ShadowPolicy,
        tenant: Option<&str>,
        primary_side: Side,
        shadow_side: Side,
        parts: &http::request::Parts,
        body: Option<&Bytes>,
        downstream: &Downstream<'_>,
    ) -> Option<ShadowTicket> {
        let skipped = |reason| {
            record_skip(
                &self.metrics,
                self.writer.as_ref(),
                &route.name,
                tenant,
                primary_side,
                reason,
            );
            None
        };
        if !snapshot.rules.shadow.enabled {
            return skipped(skip::DISABLED);
        }
        // A full queue is known now: skip before copying anything.
        if self.queue.capacity() == 0 {
            return skipped(skip::QUEUE_FULL);
        }
        let Some(body) = body.filter(|b| b.len() as u64 <= policy.max_body) else {
            return skipped(skip::BODY_TOO_LARGE);
        };
        if let Some(limit) = policy.rate_per_sec
            && !self.take_rate(&route.name, limit)
        {
            return skipped(skip::RATE_LIMITED);
        }
        // Learned noise: call the primary side again on a share of idempotent requests.
        let self_check = forward::is_idempotent(&parts.method)
            && rand::random_range(0..10_000u32) < policy.self_check_percent_bp;
        let (capture, primary) = oneshot::channel();
        let job = Job {
            snapshot: snapshot.clone(),
            route_index: route.index,
            tenant: tenant.map(str::to_string),
            primary_side,
            shadow_side,
            method: parts.method.clone(),
            request: parts.clone(),
            host: downstream.host.map(str::to_string),
            peer: downstream.peer,
            body: body.clone(),
            self_check,
            primary,
        };
        Some(ShadowTicket {
            job,
            queue: self.queue.clone(),
            pending: self.pending.clone(),
            metrics: self.metrics.clone(),
            writer: self.writer.clone(),
            max_body: policy.max_body as usize,
            capture,
        })
    }

    fn take_rate(&self, route: &str, limit: u32) -> bool {
        let second = crate::util::now_ms() as u64 / 1000;
        let Ok(mut rates) = self.rates.lock() else {
            return false;
        };
        let slot = rates.entry(route.to_string()).or_insert((second, 0));
        if slot.0 != second {
            *slot = (second, 0);
        }
        if slot.1 >= limit {
            return false;
        }
        slot.1 += 1;
        true
    }

    /// Wait until every comparison enqueued so far has finished (bounded by `within`) and its
    /// result is in the store.
    pub async fn flush(&self, within: Duration) {
        let _ = tokio::time::timeout(within, async {
            while self.pending.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        if let Some(writer) = &self.writer {
            writer.flush().await;
        }
    }

    /// At shutdown: let queued comparisons finish (up to 5 s), write their results, stop.
    pub async fn close(&self) {
        self.flush(Duration::from_secs(5)).await;
        if let Some(worker) = self.worker.lock().ok().and_then(|mut w| w.take()) {
            worker.abort();
        }
    }
}

/// The report's noise rule: the same statistical test as the live classification.
pub fn noise_flag(counts: &crate::store::PathCounts) -> crate::store::NoiseFlag {
    let stats = noise::PathStats {
        cross_diffs: counts.cross_diffs,
        cross_total: counts.cross_total,
        self_diffs: counts.self_diffs,
        self_total: counts.self_total,
    };
    match noise::classify(&stats) {
        NoiseVerdict::Real => crate::store::NoiseFlag::Real,
        NoiseVerdict::Noise => crate::store::NoiseFlag::Noise,
        NoiseVerdict::Undetermined => crate::store::NoiseFlag::Undetermined,
    }
}

impl ShadowTicket {
    /// Enqueue the comparison and wrap the primary body so a bounded copy reaches it. When the
    /// queue is full the body is returned untouched and the skip counted.
    pub fn tee_primary(
        self,
        head: &http::response::Parts,
        upstream: Incoming,
        elapsed: Duration,
        served: Side,
    ) -> Body {
        let route = self
            .job
            .snapshot
            .rules
            .routes
            .get(self.job.route_index)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        let tenant = self.job.tenant.clone();
        let primary_side = self.job.primary_side;
        let skipped = |reason| {
            record_skip(
                &self.metrics,
                self.writer.as_ref(),
                &route,
                tenant.as_deref(),
                primary_side,
                reason,
            );
        };
        if served != self.job.primary_side {
            // The primary fell back to legacy: comparing legacy with legacy means nothing.
            skipped(skip::PRIMARY_INCOMPLETE);
            return body::boxed(upstream);
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        if let Err(error) = self.queue.try_send(self.job) {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            skipped(match error {
                mpsc::error::TrySendError::Full(_) => skip::QUEUE_FULL,
                mpsc::error::TrySendError::Closed(_) => skip::DISABLED,
            });
            return body::boxed(upstream);
        }
        let (tee, copied) = Tee::new(upstream, self.max_body);
        let status = head.status.as_u16();
        let headers = head.headers.clone();
        let capture = self.capture;
        tokio::spawn(async move {
            if let Ok(body) = copied.await {
                let _ = capture.send(PrimaryCapture {
                    status,
                    headers,
                    body,
                    elapsed,
                });
            }
        });
        body::boxed(tee)
    }
}
