//! `StoreWriter`: shadow results go to the store off the hot path.
//!
//! Callers `try_send` into a bounded channel and never wait: a full channel drops the result
//! and counts it. One background task drains the channel into batches (up to `batch_max`
//! results, or whatever arrived within `batch_interval`) and writes each batch in one
//! transaction; a failing batch is retried with exponential backoff, then dropped and counted.
//! A slow or dead database therefore costs results, never latency. The same task runs
//! retention periodically, so only one task ever writes shadow data.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use super::samples::DEFAULT_RESERVOIR_K;
use super::{ShadowResult, Store};
use crate::clock::Clock;

/// How the writer batches, retries and retains.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Queue capacity; beyond it results are dropped (`dropped_full`).
    pub capacity: usize,
    /// Largest batch written in one transaction.
    pub batch_max: usize,
    /// A partial batch is written at least this often.
    pub batch_interval: Duration,
    /// Attempts after the first one before a batch is dropped (`dropped_error`).
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
    /// Samples kept per (route, pattern, kind).
    pub reservoir_k: usize,
    /// Periodic clean-up; `None` keeps everything.
    pub retention: Option<RetentionPolicy>,
    /// Retention's idea of now.
    pub clock: Clock,
}

/// What the periodic retention keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub max_age: Duration,
    pub max_samples: usize,
    /// How often retention runs.
    pub every: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            capacity: 10_000,
            batch_max: 500,
            batch_interval: Duration::from_millis(200),
            max_retries: 3,
            retry_backoff: Duration::from_millis(100),
            reservoir_k: DEFAULT_RESERVOIR_K,
            retention: Some(RetentionPolicy::default()),
            clock: Clock::system(),
        }
    }
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_samples: 10_000,
            every: Duration::from_secs(600),
        }
    }
}

/// Live counters, shared with the metrics exporter.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Results committed to the store.
    pub written: AtomicU64,
    /// Results refused because the queue was full.
    pub dropped_full: AtomicU64,
    /// Results lost with a batch that failed every attempt.
    pub dropped_error: AtomicU64,
    /// Batch write attempts after a failure.
    pub retries: AtomicU64,
}

/// A snapshot of [`WriterStats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WriterCounters {
    pub written: u64,
    pub dropped_full: u64,
    pub dropped_error: u64,
    pub retries: u64,
}

// === impl WriterStats ===

impl WriterStats {
    /// Read all counters.
    pub fn snapshot(&self) -> WriterCounters {
        WriterCounters {
            written: self.written.load(Ordering::Relaxed),
            dropped_full: self.dropped_full.load(Ordering::Relaxed),
            dropped_error: self.dropped_error.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

enum Msg {
    Result(Box<ShadowResult>),
    Flush(oneshot::Sender<()>),
}

/// Handle for queueing shadow results; cheap to clone. The background task ends once every
/// handle is dropped, after writing what was queued.
#[derive(Debug, Clone)]
pub struct StoreWriter {
    tx: mpsc::Sender<Msg>,
    stats: Arc<WriterStats>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Result(_) => f.write_str("Result"),
            Msg::Flush(_) => f.write_str("Flush"),
        }
    }
}

// === impl StoreWriter ===

impl StoreWriter {
    /// Start the background task on the current Tokio runtime.
    pub fn spawn(store: Store, config: WriterConfig) -> StoreWriter {
        let (tx, rx) = mpsc::channel(config.capacity.max(1));
        let stats = Arc::new(WriterStats::default());
        let task = Task {
            store,
            config,
            stats: Arc::clone(&stats),
            pending: Vec::new(),
        };
        tokio::spawn(task.run(rx));
        StoreWriter { tx, stats }
    }

    /// Queue `result` without waiting. `false` when it was dropped and counted: queue full
    /// (`dropped_full`) or writer task gone (`dropped_error`).
    pub fn try_send(&self, result: ShadowResult) -> bool {
        match self.tx.try_send(Msg::Result(Box::new(result))) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.stats.dropped_error.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Wait until everything queued before this call is written or dropped. For tests and
    /// graceful shutdown only: unlike `try_send` it waits for room in the queue.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            // An error here means the task ended, which also means nothing is pending.
            let _ = done.await;
        }
    }

    /// The live counters (for metrics).
    pub fn stats(&self) -> Arc<WriterStats> {
        Arc::clone(&self.stats)
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> WriterCounters {
        self.stats.snapshot()
    }
}

/// The one background task.
struct Task {
    store: Store,
    config: WriterConfig,
    stats: Arc<WriterStats>,
    pending: Vec<ShadowResult>,
}

// === impl Task ===

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut tick =
            tokio::time::interval(self.config.batch_interval.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let retention = self.config.retention;
        // `interval` panics on a zero period.
        let every = retention.map_or(Duration::from_secs(3600), |r| {
            r.every.max(Duration::from_millis(1))
        });
        // First run one period after start, not at start.
        let mut retain_tick = tokio::time::interval_at(self.config.clock.instant() + every, every);
        retain_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);

        loop {
            tokio::select! {
                // Order matters (`biased`): retention when due, so a busy queue cannot starve
                // it; then queued messages, so under load batches fill to `batch_max` instead of
                // being cut into slivers by the timer, which only writes a quiet queue's tail.
                biased;
                _ = retain_tick.tick(), if retention.is_some() => {
                    if let Some(policy) = retention {
                        self.retain(policy).await;
                    }
                }
                msg = rx.recv() => match msg {
                    Some(Msg::Result(r)) => {
                        self.pending.push(*r);
                        if self.pending.len() >= self.config.batch_max.max(1) {
                            self.write_pending().await;
                        }
                    }
                    Some(Msg::Flush(ack)) => {
                        self.write_pending().await;
                        let _ = ack.send(());
                    }
                    None => {
                        self.write_pending().await;
                        return;
                    }
                },
                _ = tick.tick() => self.write_pending().await,
            }
        }
    }

    /// Write the pending batch, retrying with backoff; drop and count it if all attempts fail.
    async fn write_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let n = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        let mut backoff = self.config.retry_backoff;
        let mut attempt = 0;
        loop {
            match self
                .store
                .write_shadow_batch(&batch, self.config.reservoir_k)
                .await
            {
                Ok(_) => {
                    self.stats.written.fetch_add(n, Ordering::Relaxed);
                    return;
                }
                Err(error) if attempt < self.config.max_retries => {
                    attempt += 1;
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%error, attempt, "shadow batch write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
                Err(error) => {
                    self.stats.dropped_error.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(%error, dropped = n, "shadow batch dropped after retries");
                    return;
                }
            }
        }
    }

    async fn retain(&self, policy: RetentionPolicy) {
        let now_ms = self.config.clock.now_ms();
        match self
            .store
            .retain_at(now_ms, policy.max_age, policy.max_samples)
            .await
        {
            Ok(stats) => tracing::debug!(?stats, "shadow store retention done"),
            Err(error) => tracing::warn!(%error, "shadow store retention failed"),
        }
    }
}
