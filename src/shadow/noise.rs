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
//! [`NoiseModel`] keeps these counts in memory over a sliding window (`[shadow] noise_window`,
//! 24 h by default), bounded in keys (keys without evidence left in the window make room; new
//! keys past the cap are dropped and counted). It takes a lock: it is updated off the hot
//! path, once per comparison. The shadow report does not read it: it classifies from the
//! store's per-minute counts with the same [`classify`] rule and the same window.
//!
//! [`suggest_ignore`] recognises values that look like timestamps, epoch times, UUIDs or
//! request ids, to offer the differing pattern as an `ignore` rule: a [`Difference`]'s
//! `pattern` (`/items/*/updated_at`, `header:x-request-id`) is directly a valid entry.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
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

/// Slices a noise window is cut into: evidence ages out a slice (a 24th of the window) at a
/// time.
pub const WINDOW_SLICES: usize = 24;

/// Default span of the evidence [`NoiseModel`] keeps.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Bounded, thread-safe counts per (route, pattern) over a sliding window.
///
/// Evidence ages: counts live in [`WINDOW_SLICES`] time slices and a slice older than the
/// window is forgotten, so a path that stops differing from itself is judged on its recent
/// self-checks and turns `real` again once it differs across sides. The cross totals the self
/// counts are tested against age the same way. Time is passed in (`now_ms`) by the caller.
#[derive(Debug)]
pub struct NoiseModel {
    inner: Mutex<Inner>,
    max_keys: usize,
}

#[derive(Debug)]
struct Inner {
    /// Width of one slice in milliseconds (window / [`WINDOW_SLICES`], at least 1).
    slice_ms: i64,
    routes: HashMap<String, RouteCounts>,
    /// Keys held: routes plus (route, pattern) pairs.
    keys: usize,
    dropped: u64,
    /// The slice of the last sweep for expired keys (at most one sweep per slice).
    swept: i64,
}

#[derive(Debug, Default)]
struct RouteCounts {
    /// (cross comparisons, self comparisons) made on the route.
    totals: Ring,
    /// (cross differences, self differences) per pattern.
    paths: HashMap<String, Ring>,
}

/// Two counters per time slice, in a ring indexed by slice number.
#[derive(Debug, Clone, Copy, Default)]
struct Ring {
    slots: [Slot; WINDOW_SLICES],
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The absolute slice number the counts belong to.
    slice: i64,
    cross: u32,
    same_side: u32,
}

#[derive(Clone, Copy)]
enum Pair {
    Cross,
    SameSide,
}

// === impl Ring ===

impl Ring {
    fn add(&mut self, slice: i64, pair: Pair) {
        let at = usize::try_from(slice.rem_euclid(WINDOW_SLICES as i64)).unwrap_or(0);
        let Some(slot) = self.slots.get_mut(at) else {
            return;
        };
        if slot.slice != slice {
            *slot = Slot {
                slice,
                cross: 0,
                same_side: 0,
            };
        }
        match pair {
            Pair::Cross => slot.cross = slot.cross.saturating_add(1),
            Pair::SameSide => slot.same_side = slot.same_side.saturating_add(1),
        }
    }

    /// (cross, same side) summed over the slices of the window ending with `slice`.
    fn sum(&self, slice: i64) -> (u64, u64) {
        let oldest = slice - (WINDOW_SLICES as i64 - 1);
        self.slots
            .iter()
            .filter(|s| (oldest..=slice).contains(&s.slice) && (s.cross, s.same_side) != (0, 0))
            .fold((0, 0), |(c, s), slot| {
                (c + u64::from(slot.cross), s + u64::from(slot.same_side))
            })
    }
}

// === impl NoiseModel ===

impl Default for NoiseModel {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_KEYS)
    }
}

impl NoiseModel {
    /// A model holding at most `max_keys` routes and (route, pattern) pairs, over the
    /// [`DEFAULT_WINDOW`].
    pub fn new(max_keys: usize) -> Self {
        Self::with_window(max_keys, DEFAULT_WINDOW)
    }

    /// A model keeping evidence for `window`.
    pub fn with_window(max_keys: usize, window: Duration) -> Self {
        NoiseModel {
            inner: Mutex::new(Inner {
                slice_ms: slice_ms(window),
                routes: HashMap::new(),
                keys: 0,
                dropped: 0,
                swept: i64::MIN,
            }),
            max_keys,
        }
    }

    /// Use `window` from now on (`[shadow] noise_window` after a reload). The slices of another
    /// window do not map onto the new one, so a change starts the learning afresh; the report
    /// reads its evidence from the store and is not affected.
    pub fn set_window(&self, window: Duration) {
        let mut inner = self.lock();
        let slice_ms = slice_ms(window);
        if inner.slice_ms != slice_ms {
            inner.slice_ms = slice_ms;
            inner.routes.clear();
            inner.keys = 0;
            inner.swept = i64::MIN;
        }
    }

    /// Records one primary-vs-shadow comparison of `route` made at `now_ms`.
    pub fn record_cross(&self, route: &str, diff: &Diff, now_ms: i64) {
        self.record(route, diff, Pair::Cross, now_ms);
    }

    /// Records one primary-vs-primary-again comparison of `route` made at `now_ms`.
    pub fn record_self(&self, route: &str, diff: &Diff, now_ms: i64) {
        self.record(route, diff, Pair::SameSide, now_ms);
    }

    fn record(&self, route: &str, diff: &Diff, pair: Pair, now_ms: i64) {
        // A pattern counts once per comparison, however many elements it differed at.
        let mut patterns: Vec<&str> = diff
            .differences
            .iter()
            .map(|d| d.pattern.as_str())
            .collect();
        patterns.sort_unstable();
        patterns.dedup();

        let mut inner = self.lock();
        let slice = now_ms.div_euclid(inner.slice_ms);
        let needed = usize::from(!inner.routes.contains_key(route))
            + patterns
                .iter()
                .filter(|p| {
                    inner
                        .routes
                        .get(route)
                        .is_none_or(|r| !r.paths.contains_key(**p))
                })
                .count();
        if inner.keys + needed > self.max_keys && inner.swept != slice {
            inner.sweep(slice);
        }
        let Inner {
            routes,
            keys,
            dropped,
            ..
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
        counts.totals.add(slice, pair);
        for pattern in patterns {
            let ring = match counts.paths.get_mut(pattern) {
                Some(r) => r,
                None if *keys >= self.max_keys => {
                    *dropped += 1;
                    continue;
                }
                None => {
                    *keys += 1;
                    counts.paths.entry(pattern.to_owned()).or_default()
                }
            };
            ring.add(slice, pair);
        }
    }

    /// The counts for one (route, pattern) within the window ending at `now_ms`; zeros for an
    /// unknown route.
    pub fn stats(&self, route: &str, pattern: &str, now_ms: i64) -> PathStats {
        let inner = self.lock();
        let slice = now_ms.div_euclid(inner.slice_ms);
        inner
            .routes
            .get(route)
            .map(|r| r.stats(pattern, slice))
            .unwrap_or_default()
    }

    /// [`classify`] of [`NoiseModel::stats`].
    pub fn classify(&self, route: &str, pattern: &str, now_ms: i64) -> NoiseVerdict {
        classify(&self.stats(route, pattern, now_ms))
    }

    /// The verdict for each difference of `diff`, in order (one lock for all).
    pub fn verdicts(&self, route: &str, diff: &Diff, now_ms: i64) -> Vec<NoiseVerdict> {
        let inner = self.lock();
        let slice = now_ms.div_euclid(inner.slice_ms);
        let counts = inner.routes.get(route);
        diff.differences
            .iter()
            .map(|d: &Difference| {
                classify(
                    &counts
                        .map(|r| r.stats(&d.pattern, slice))
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Every known pattern of `route` with its counts and verdict, sorted by pattern.
    pub fn patterns(&self, route: &str, now_ms: i64) -> Vec<(String, PathStats, NoiseVerdict)> {
        let inner = self.lock();
        let slice = now_ms.div_euclid(inner.slice_ms);
        let Some(r) = inner.routes.get(route) else {
            return Vec::new();
        };
        let mut out: Vec<_> = r
            .paths
            .keys()
            .map(|p| {
                let s = r.stats(p, slice);
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
        self.inner.lock()
    }
}

fn slice_ms(window: Duration) -> i64 {
    let ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    (ms / WINDOW_SLICES as i64).max(1)
}

impl Inner {
    /// Forget patterns (and routes) with no evidence left in the window ending with `slice`,
    /// so a full model makes room for live keys.
    fn sweep(&mut self, slice: i64) {
        self.swept = slice;
        let mut freed = 0;
        self.routes.retain(|_, r| {
            let before = r.paths.len();
            r.paths.retain(|_, ring| ring.sum(slice) != (0, 0));
            freed += before - r.paths.len();
            if r.paths.is_empty() && r.totals.sum(slice) == (0, 0) {
                freed += 1;
                false
            } else {
                true
            }
        });
        self.keys = self.keys.saturating_sub(freed);
    }
}

impl RouteCounts {
    fn stats(&self, pattern: &str, slice: i64) -> PathStats {
        let (cross_total, self_total) = self.totals.sum(slice);
        let (cross_diffs, self_diffs) = self
            .paths
            .get(pattern)
            .map_or((0, 0), |ring| ring.sum(slice));
        PathStats {
            cross_diffs,
            cross_total,
            self_diffs,
            self_total,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;
