//! A latency histogram updated with atomics only, so observing a request takes no lock (the
//! metrics library's own histogram takes a write lock per observation).
//!
//! Buckets are fixed at 0.5 ms × 2^k (k = 0..16, up to ~16 s) plus `+Inf`; the sum is kept in
//! nanoseconds, exact for any realistic run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds in seconds; the last bucket (`+Inf`) is implicit.
const BOUNDS: [f64; 16] = [
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
    4.096, 8.192, 16.384,
];

/// A request-duration histogram; clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Per bucket (not cumulative); index `BOUNDS.len()` is `+Inf`.
    counts: [AtomicU64; BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    /// Count one observation of `seconds`.
    pub fn observe(&self, seconds: f64) {
        let bucket = BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BOUNDS.len());
        if let Some(count) = self.inner.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = (seconds.max(0.0) * 1e9) as u64;
        self.inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations so far and the sum of their durations in nanoseconds (guards take the
    /// difference of two readings for a window's mean).
    pub fn totals(&self) -> (u64, u64) {
        let count = self
            .inner
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        (count, self.inner.sum_nanos.load(Ordering::Relaxed))
    }

    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let buckets: Vec<(f64, u64)> = BOUNDS
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(&self.inner.counts)
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, c)| c).sum();
        let sum = self.inner.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (sum, count, buckets)
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_buckets() {
        let h = LatencyHistogram::default();
        h.observe(0.0001);
        h.observe(0.003);
        h.observe(100.0);
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 3);
        assert!((sum - 100.0031).abs() < 1e-6, "{sum}");
        assert_eq!(buckets[0], (0.0005, 1));
        assert_eq!(buckets[3], (0.004, 1));
        assert_eq!(buckets[16], (f64::MAX, 1));
    }
}
