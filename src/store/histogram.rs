//! A fixed log-scale latency histogram: 40 bins from 0.1 ms to 60 s (each ~40% wider than the
//! one before) plus an underflow and an overflow bin.
//!
//! The bin edges are constants, so histograms from different minutes, tenants or gateway
//! replicas add up bin by bin — in SQL, with `SUM(count) GROUP BY bin`. The store keeps one row
//! per non-empty bin (`shadow_latency`) rather than a JSON array per bucket: an upsert that
//! adds to a bin's count is atomic on both databases, whereas a JSON blob would need a
//! read-modify-write that loses counts when several replicas share one PostgreSQL, and could
//! not be summed by the database. Quantiles are estimated
//! by interpolating inside the bin that holds the rank (geometrically, matching the log scale),
//! so an estimate is never further off than one bin width (~±20% around the bin's middle).

use serde::Serialize;

/// Lowest edge of the log-scale range, in milliseconds.
pub const MIN_MS: f64 = 0.1;
/// Highest edge of the log-scale range, in milliseconds.
pub const MAX_MS: f64 = 60_000.0;
/// Number of log-scale bins between [`MIN_MS`] and [`MAX_MS`].
const LOG_BINS: usize = 40;
/// Total number of bins: underflow (`< 0.1 ms`), 40 log bins, overflow (`>= 60 s`).
pub const BIN_COUNT: usize = LOG_BINS + 2;

/// Ratio between consecutive bin edges: (MAX/MIN)^(1/40).
fn ratio() -> f64 {
    (MAX_MS / MIN_MS).powf(1.0 / LOG_BINS as f64)
}

/// The bin a latency in milliseconds falls into. NaN and negative values count as underflow.
pub fn bin_index(ms: f64) -> usize {
    if ms.is_nan() || ms < MIN_MS {
        return 0;
    }
    if ms >= MAX_MS {
        return BIN_COUNT - 1;
    }
    let i = ((ms / MIN_MS).ln() / ratio().ln()).floor();
    // `i` is in [0, 40) by construction; float rounding at an edge may nudge it by one.
    (i as usize).min(LOG_BINS - 1) + 1
}

/// `[low, high)` edges of bin `i` in milliseconds; the overflow bin's high edge is infinite.
pub fn bin_bounds_ms(i: usize) -> (f64, f64) {
    match i {
        0 => (0.0, MIN_MS),
        i if i > LOG_BINS => (MAX_MS, f64::INFINITY),
        i => {
            let r = ratio();
            (MIN_MS * r.powi(i as i32 - 1), MIN_MS * r.powi(i as i32))
        }
    }
}

/// Counts per bin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: vec![0; BIN_COUNT],
        }
    }
}

// === impl LatencyHistogram ===

impl LatencyHistogram {
    /// Count one observation.
    pub fn record(&mut self, ms: f64) {
        self.add_to_bin(bin_index(ms), 1);
    }

    /// Add `n` observations to bin `bin` (as read back from the store); unknown bins are
    /// ignored so a histogram written by a future layout cannot panic an old reader.
    pub fn add_to_bin(&mut self, bin: usize, n: u64) {
        if let Some(c) = self.counts.get_mut(bin) {
            *c = c.saturating_add(n);
        }
    }

    /// Merge another histogram into this one.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (bin, n) in other.counts.iter().enumerate() {
            self.add_to_bin(bin, *n);
        }
    }

    /// Number of observations.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Counts per bin, index = bin.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Estimated `q`-quantile (0 ≤ q ≤ 1) in milliseconds; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut before = 0.0;
        for (bin, &n) in self.counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let after = before + n as f64;
            if after >= rank {
                let f = ((rank - before) / n as f64).clamp(0.0, 1.0);
                let (lo, hi) = bin_bounds_ms(bin);
                return Some(if bin == 0 {
                    hi * f
                } else if hi.is_infinite() {
                    // Nothing is known above 60 s: report the edge rather than invent a value.
                    lo
                } else {
                    lo * (hi / lo).powf(f)
                });
            }
            before = after;
        }
        // Only reachable through float rounding at q = 1: the highest non-empty bin's top.
        self.counts
            .iter()
            .rposition(|&n| n > 0)
            .map(|b| bin_bounds_ms(b).1.min(MAX_MS))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn bins_cover_the_range_monotonically() {
        assert_eq!(bin_index(0.05), 0);
        assert_eq!(bin_index(-1.0), 0);
        assert_eq!(bin_index(f64::NAN), 0);
        assert_eq!(bin_index(0.1), 1);
        assert_eq!(bin_index(59_999.0), LOG_BINS);
        assert_eq!(bin_index(60_000.0), BIN_COUNT - 1);
        assert_eq!(bin_index(1e9), BIN_COUNT - 1);
        let mut last = 0;
        let mut ms = 0.01;
        while ms < 100_000.0 {
            let b = bin_index(ms);
            assert!(b >= last, "bin went backwards at {ms}");
            let (lo, hi) = bin_bounds_ms(b);
            assert!(
                lo <= ms * 1.000_001 && ms < hi * 1.000_001,
                "{ms} not in bin {b} [{lo},{hi})"
            );
            last = b;
            ms *= 1.07;
        }
        let (lo, hi) = bin_bounds_ms(LOG_BINS);
        assert!((hi - MAX_MS).abs() < 1e-6 && lo < hi);
    }

    #[test]
    fn quantiles_land_in_the_true_values_bin() {
        let mut h = LatencyHistogram::default();
        // 1..=1000 ms, uniform: p50 = 500, p95 = 950, p99 = 990.
        for v in 1..=1000 {
            h.record(f64::from(v));
        }
        assert_eq!(h.total(), 1000);
        for (q, truth) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let est = h.quantile(q).unwrap();
            let (lo, hi) = bin_bounds_ms(bin_index(truth));
            assert!(
                est >= lo * 0.999 && est <= hi * 1.001,
                "q{q}: {est} outside [{lo},{hi})"
            );
            assert!((est - truth).abs() / truth < 0.2, "q{q}: {est} vs {truth}");
        }
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
    }

    #[test]
    fn merge_adds_bin_by_bin_and_ignores_unknown_bins() {
        let mut a = LatencyHistogram::default();
        a.record(5.0);
        let mut b = LatencyHistogram::default();
        b.record(5.0);
        b.record(70_000.0);
        b.add_to_bin(999, 3);
        a.merge(&b);
        assert_eq!(a.total(), 3);
        assert_eq!(a.counts()[bin_index(5.0)], 2);
        assert_eq!(a.quantile(1.0), Some(MAX_MS));
    }
}
