//! Learned noise: telling real mismatches from paths that differ on every call anyway.
//!
//! For a sampled share of idempotent requests the serving (primary) side is called a second
//! time and the two answers are diffed like a shadow pair. Per route and difference pattern
//! (`/items/*/updated_at`, `header:etag`, …) we count
//! - `cross_diffs` of `cross_total` primary-vs-shadow comparisons where the pattern differed,
//! - `self_diffs` of `self_total` primary-vs-primary-again comparisons where it differed,
//!
//! and [`classify`] decides, with a statistical test rather than fixed thresholds:
//! 1. no cross difference at all → [`NoiseVerdict::Noise`] (nothing real to report);
//! 2. fewer than [`MIN_SELF_SAMPLES`] self comparisons → [`NoiseVerdict::Undetermined`]:
//!    report the difference as real but unconfirmed;
//! 3. the path never differed in at least [`MIN_SELF_SAMPLES`] self comparisons → any cross
//!    difference is [`NoiseVerdict::Real`], even 1 in 500 (a stable field that sometimes
//!    differs between sides is exactly the bug shadowing is for);
//! 4. otherwise a one-sided **Fisher exact test** on the 2×2 table (differed / not × cross /
//!    self): if the cross rate is significantly above the self rate (p < [`ALPHA`] = 0.01) the
//!    path is real — the new side adds differences beyond the path's own noise — else noise.
//!    Fisher's test is exact at the small counts early in a rollout, where a z-test is not.
//!
//! [`NoiseModel`] keeps these counts in memory, bounded in keys (new keys past the cap are
//! dropped and counted). It takes a std `Mutex`: it is updated off the hot path, once per
//! comparison.
//!
//! [`suggest_ignore`] recognises values that look like timestamps, epoch times, UUIDs or
//! request ids, to offer the differing pattern as an `ignore` rule: a [`Difference`]'s
//! `pattern` (`/items/*/updated_at`, `header:x-request-id`) is directly a valid entry.

// The counts move to a windowed model with parking_lot's lock; until then std's.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::compare::{Diff, Difference};

mod stats;
mod suggest;

pub use stats::fisher_one_sided;
pub use suggest::suggest_ignore;

/// Self comparisons needed before a path that never differed within a side makes every cross
/// difference real (20 clean repeats: a path with a true self-difference rate of 15 % or more
/// would have shown up with probability above 96 %).
pub const MIN_SELF_SAMPLES: u64 = 20;

/// Significance level of the one-sided Fisher exact test.
pub const ALPHA: f64 = 0.01;

/// Default cap on (route, pattern) keys kept by a [`NoiseModel`].
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// Counts for one (route, pattern).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStats {
    pub cross_diffs: u64,
    pub cross_total: u64,
    pub self_diffs: u64,
    pub self_total: u64,
}

/// Whether a differing path is a real mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseVerdict {
    Real,
    Noise,
    /// Too few self comparisons to tell; report as real but unconfirmed.
    Undetermined,
}

impl NoiseVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            NoiseVerdict::Real => "real",
            NoiseVerdict::Noise => "noise",
            NoiseVerdict::Undetermined => "undetermined",
        }
    }
}

/// Decides real vs noise for one path (see the module docs for the rule).
pub fn classify(s: &PathStats) -> NoiseVerdict {
    let cross_diffs = s.cross_diffs.min(s.cross_total);
    let self_diffs = s.self_diffs.min(s.self_total);
    if cross_diffs == 0 {
        return NoiseVerdict::Noise;
    }
    if s.self_total < MIN_SELF_SAMPLES {
        return NoiseVerdict::Undetermined;
    }
    if self_diffs == 0 {
        return NoiseVerdict::Real;
    }
    if fisher_one_sided(cross_diffs, s.cross_total, self_diffs, s.self_total) < ALPHA {
        NoiseVerdict::Real
    } else {
        NoiseVerdict::Noise
    }
}

/// Bounded, thread-safe counts per (route, pattern).
#[derive(Debug)]
pub struct NoiseModel {
    inner: Mutex<Inner>,
    max_keys: usize,
}

#[derive(Debug, Default)]
struct Inner {
    routes: HashMap<String, RouteCounts>,
    /// Keys held: routes plus (route, pattern) pairs.
    keys: usize,
    dropped: u64,
}

#[derive(Debug, Default)]
struct RouteCounts {
    cross_total: u64,
    self_total: u64,
    paths: HashMap<String, PathCounts>,
}

#[derive(Debug, Default, Clone, Copy)]
struct PathCounts {
    cross: u64,
    same_side: u64,
}

#[derive(Clone, Copy)]
enum Pair {
    Cross,
    SameSide,
}

// === impl NoiseModel ===

impl Default for NoiseModel {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_KEYS)
    }
}

impl NoiseModel {
    /// A model holding at most `max_keys` routes and (route, pattern) pairs.
    pub fn new(max_keys: usize) -> Self {
        NoiseModel {
            inner: Mutex::new(Inner::default()),
            max_keys,
        }
    }

    /// Records one primary-vs-shadow comparison of `route`.
    pub fn record_cross(&self, route: &str, diff: &Diff) {
        self.record(route, diff, Pair::Cross);
    }

    /// Records one primary-vs-primary-again comparison of `route`.
    pub fn record_self(&self, route: &str, diff: &Diff) {
        self.record(route, diff, Pair::SameSide);
    }

    fn record(&self, route: &str, diff: &Diff, pair: Pair) {
        // A pattern counts once per comparison, however many elements it differed at.
        let mut patterns: Vec<&str> = diff
            .differences
            .iter()
            .map(|d| d.pattern.as_str())
            .collect();
        patterns.sort_unstable();
        patterns.dedup();

        let mut inner = self.lock();
        let Inner {
            routes,
            keys,
            dropped,
        } = &mut *inner;
        if !routes.contains_key(route) {
            if *keys >= self.max_keys {
                *dropped += 1 + patterns.len() as u64;
                return;
            }
            *keys += 1;
            routes.insert(route.to_owned(), RouteCounts::default());
        }
        let Some(counts) = routes.get_mut(route) else {
            return;
        };
        match pair {
            Pair::Cross => counts.cross_total += 1,
            Pair::SameSide => counts.self_total += 1,
        }
        for pattern in patterns {
            let entry = match counts.paths.get_mut(pattern) {
                Some(e) => e,
                None if *keys >= self.max_keys => {
                    *dropped += 1;
                    continue;
                }
                None => {
                    *keys += 1;
                    counts.paths.entry(pattern.to_owned()).or_default()
                }
            };
            match pair {
                Pair::Cross => entry.cross += 1,
                Pair::SameSide => entry.same_side += 1,
            }
        }
    }

    /// The counts for one (route, pattern); zeros for an unknown route.
    pub fn stats(&self, route: &str, pattern: &str) -> PathStats {
        let inner = self.lock();
        inner
            .routes
            .get(route)
            .map(|r| r.stats(pattern))
            .unwrap_or_default()
    }

    /// [`classify`] of [`NoiseModel::stats`].
    pub fn classify(&self, route: &str, pattern: &str) -> NoiseVerdict {
        classify(&self.stats(route, pattern))
    }

    /// The verdict for each difference of `diff`, in order (one lock for all).
    pub fn verdicts(&self, route: &str, diff: &Diff) -> Vec<NoiseVerdict> {
        let inner = self.lock();
        let counts = inner.routes.get(route);
        diff.differences
            .iter()
            .map(|d: &Difference| {
                classify(&counts.map(|r| r.stats(&d.pattern)).unwrap_or_default())
            })
            .collect()
    }

    /// Every known pattern of `route` with its counts and verdict, sorted by pattern.
    pub fn patterns(&self, route: &str) -> Vec<(String, PathStats, NoiseVerdict)> {
        let inner = self.lock();
        let Some(r) = inner.routes.get(route) else {
            return Vec::new();
        };
        let mut out: Vec<_> = r
            .paths
            .keys()
            .map(|p| {
                let s = r.stats(p);
                (p.clone(), s, classify(&s))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Keys (routes and patterns) currently held.
    pub fn len(&self) -> usize {
        self.lock().keys
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pattern observations dropped because the key cap was reached.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Counts stay consistent even if a holder panicked: every update is a few increments.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RouteCounts {
    fn stats(&self, pattern: &str) -> PathStats {
        let p = self.paths.get(pattern).copied().unwrap_or_default();
        PathStats {
            cross_diffs: p.cross,
            cross_total: self.cross_total,
            self_diffs: p.same_side,
            self_total: self.self_total,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;
