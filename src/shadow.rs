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
//! The comparison itself is the pure [`crate::compare`] module; learned noise is [`noise`]; results
//! go to the store's batched writer.

pub mod noise;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::body::{self, Body, Capture, Tee};
use crate::clock::Clock;
use crate::head::{self, Downstream};
use crate::rules::{Route, RuleSet, Side};
use crate::snapshot::Snapshot;
use crate::store::{Outcome, ShadowResult, SkipReason, StoreWriter};
use crate::telemetry::Metrics;
use crate::trace::ShadowTrace;
use crate::upstream::UpstreamBody;
use noise::{NoiseModel, NoiseVerdict};

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

/// A count per second, lock-free: one atomic holding `(second << 32) | count`, so a new
/// second resets the count and takes the first unit in one compare-and-swap.
#[derive(Debug, Default)]
pub(crate) struct PerSecond(AtomicU64);

impl PerSecond {
    /// Take one unit of this second's `limit`; false when it is spent.
    pub(crate) fn take(&self, second: u64, limit: u32) -> bool {
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let (at, used) = (current >> 32, (current & 0xFFFF_FFFF) as u32);
            let next = if at == second & 0xFFFF_FFFF {
                if used >= limit {
                    return false;
                }
                current + 1
            } else {
                ((second & 0xFFFF_FFFF) << 32) | 1
            };
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }
}

/// Where skips are counted and recorded: metrics always, the store within a budget.
#[derive(Clone)]
pub(crate) struct SkipSink {
    metrics: Arc<Metrics>,
    writer: Option<StoreWriter>,
    clock: Clock,
    budget: Arc<PerSecond>,
}

impl SkipSink {
    /// Count a skipped comparison and record it for the report (skips by reason).
    pub(crate) fn record(
        &self,
        route: &str,
        tenant: Option<&str>,
        primary_side: Side,
        reason: SkipReason,
    ) {
        record_skip(self, route, tenant, primary_side, reason)
    }
}

fn record_skip(
    sink: &SkipSink,
    route: &str,
    tenant: Option<&str>,
    primary_side: Side,
    reason: SkipReason,
) {
    sink.metrics.shadow_skip(route, reason.as_str());
    let now_ms = sink.clock.now_ms();
    if let Some(writer) = &sink.writer
        && sink.budget.take(
            u64::try_from(now_ms / 1000).unwrap_or(0),
            SKIPS_STORED_PER_SEC,
        )
    {
        let _ = writer.try_send(ShadowResult {
            at_ms: now_ms,
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
    request: http::request::Parts,
    host: Option<http::HeaderValue>,
    peer: Option<std::net::IpAddr>,
    body: Bytes,
    self_check: bool,
    primary: oneshot::Receiver<PrimaryCapture>,
    /// The copy's span, when tracing is on.
    trace: Option<ShadowTrace>,
}

/// What the primary answered, captured while it streamed to the client.
pub(crate) struct PrimaryCapture {
    status: u16,
    headers: HeaderMap,
    body: Capture,
    elapsed: Duration,
}

/// A request the decision selected for shadowing, as the shadow tap sees it.
pub struct ShadowRequest<'a> {
    /// The snapshot the request runs on; the comparison runs on it too.
    pub snapshot: &'a Arc<Snapshot>,
    pub route: &'a Route,
    pub tenant: Option<&'a str>,
    /// The side serving the client.
    pub primary_side: Side,
    /// The side the copy goes to.
    pub shadow_side: Side,
    pub parts: &'a http::request::Parts,
    /// The whole request body when it was kept (`None`: too large to copy).
    pub body: Option<&'a Bytes>,
    pub downstream: &'a Downstream<'a>,
    /// The copy's trace, when tracing is on.
    pub trace: Option<ShadowTrace>,
}

/// The shadow worker: queue, concurrency bound, rate caps, noise model, result sink.
pub struct Shadower {
    queue: mpsc::Sender<Job>,
    /// Jobs enqueued and not yet finished (for flush and shutdown).
    pending: Arc<AtomicUsize>,
    /// Per-route rate windows, copied on write when a route name is first seen.
    rates: ArcSwap<HashMap<Box<str>, Arc<PerSecond>>>,
    noise: Arc<NoiseModel>,
    skips: SkipSink,
    worker: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A request selected for shadowing; turns the primary's body into a tee.
pub struct ShadowTicket {
    job: Job,
    queue: mpsc::Sender<Job>,
    pending: Arc<AtomicUsize>,
    skips: SkipSink,
    max_body: usize,
    capture: oneshot::Sender<PrimaryCapture>,
}

// === impl Shadower ===

impl Shadower {
    /// Start the worker with the queue sizes of `rules`. `writer` receives every result
    /// (None: metrics and noise only).
    pub fn start(
        rules: &RuleSet,
        metrics: Arc<Metrics>,
        writer: Option<StoreWriter>,
        clock: Clock,
    ) -> Arc<Shadower> {
        let (queue, rx) = mpsc::channel(rules.shadow.queue.max(1));
        let noise = Arc::new(NoiseModel::with_window(
            noise::DEFAULT_MAX_KEYS,
            rules.shadow.noise_window,
        ));
        let in_flight = Arc::new(Semaphore::new(rules.shadow.max_in_flight.max(1)));
        let pending = Arc::new(AtomicUsize::new(0));
        let skips = SkipSink {
            metrics,
            writer,
            clock,
            budget: Arc::new(PerSecond::default()),
        };
        let worker = tokio::spawn(worker::dispatch(
            rx,
            in_flight,
            pending.clone(),
            noise.clone(),
            skips.clone(),
        ));
        Arc::new(Shadower {
            queue,
            pending,
            rates: ArcSwap::from_pointee(HashMap::new()),
            noise,
            skips,
            worker: parking_lot::Mutex::new(Some(worker)),
        })
    }

    /// The learned-noise model (the report classifies with the same statistics).
    pub fn noise(&self) -> &Arc<NoiseModel> {
        &self.noise
    }

    /// Register a comparison for a request the decision selected, or record why it is skipped.
    pub fn tap(&self, req: ShadowRequest<'_>) -> Option<ShadowTicket> {
        let route = req.route;
        let policy = route.shadow.as_ref()?;
        let skipped = |reason| {
            self.skips
                .record(&route.name, req.tenant, req.primary_side, reason);
            None
        };
        if !req.snapshot.rules.shadow.enabled {
            return skipped(skip::DISABLED);
        }
        // A full queue is known now: skip before copying anything.
        if self.queue.capacity() == 0 {
            return skipped(skip::QUEUE_FULL);
        }
        let Some(body) = req.body.filter(|b| b.len() as u64 <= policy.max_body) else {
            return skipped(skip::BODY_TOO_LARGE);
        };
        if let Some(limit) = policy.rate_per_sec
            && !self.take_rate(&route.name, limit)
        {
            return skipped(skip::RATE_LIMITED);
        }
        // Learned noise: call the primary side again on a share of idempotent requests.
        let self_check = head::is_idempotent(&req.parts.method)
            && rand::random_range(0..10_000u32) < policy.self_check_percent_bp;
        let (capture, primary) = oneshot::channel();
        let job = Job {
            snapshot: req.snapshot.clone(),
            route_index: route.index,
            tenant: req.tenant.map(str::to_string),
            primary_side: req.primary_side,
            shadow_side: req.shadow_side,
            request: req.parts.clone(),
            host: req.downstream.host.cloned(),
            peer: req.downstream.peer,
            body: body.clone(),
            self_check,
            primary,
            trace: req.trace,
        };
        Some(ShadowTicket {
            job,
            queue: self.queue.clone(),
            pending: self.pending.clone(),
            skips: self.skips.clone(),
            max_body: usize::try_from(policy.max_body).unwrap_or(usize::MAX),
            capture,
        })
    }

    /// Take one unit of `route`'s rate for this second; lock-free (the route table is
    /// copied only when a route name is first seen).
    fn take_rate(&self, route: &str, limit: u32) -> bool {
        let second = self.skips.clock.now_secs();
        if let Some(window) = self.rates.load().get(route) {
            return window.take(second, limit);
        }
        let window = Arc::new(PerSecond::default());
        self.rates.rcu(|rates| {
            let mut rates = HashMap::clone(rates);
            rates
                .entry(Box::from(route))
                .or_insert_with(|| window.clone());
            rates
        });
        match self.rates.load().get(route) {
            Some(window) => window.take(second, limit),
            None => false,
        }
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
        if let Some(writer) = &self.skips.writer {
            writer.flush().await;
        }
    }

    /// At shutdown: let queued comparisons finish (up to 5 s), write their results, stop.
    pub async fn close(&self) {
        self.flush(Duration::from_secs(5)).await;
        if let Some(worker) = self.worker.lock().take() {
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

// === impl ShadowTicket ===

impl ShadowTicket {
    /// Enqueue the comparison and wrap the primary body so a bounded copy reaches it. When the
    /// queue is full the body is returned untouched and the skip counted.
    pub fn tee_primary(
        self,
        head: &http::response::Parts,
        upstream: UpstreamBody,
        elapsed: Duration,
        served: Side,
    ) -> Body {
        let route = self
            .job
            .snapshot
            .rules
            .routes
            .get(self.job.route_index)
            .map(|r| r.name.as_str())
            .unwrap_or_default();
        let tenant = self.job.tenant.as_deref();
        let primary_side = self.job.primary_side;
        if served != primary_side {
            // The primary fell back to legacy: comparing legacy with legacy means nothing.
            self.skips
                .record(route, tenant, primary_side, skip::PRIMARY_INCOMPLETE);
            return body::boxed(upstream);
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        let reason = match self.queue.try_reserve() {
            Ok(permit) => {
                let (tee, copied) = Tee::new(upstream, self.max_body);
                let status = head.status.as_u16();
                let headers = head.headers.clone();
                let capture = self.capture;
                permit.send(self.job);
                // The copy reaches the job when the client has read the whole body.
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
                return body::boxed(tee);
            }
            Err(mpsc::error::TrySendError::Full(())) => skip::QUEUE_FULL,
            Err(mpsc::error::TrySendError::Closed(())) => skip::DISABLED,
        };
        self.pending.fetch_sub(1, Ordering::AcqRel);
        self.skips.record(route, tenant, primary_side, reason);
        body::boxed(upstream)
    }
}
