//! The pure part of a guard and a schedule: counter readings kept per tick, their difference
//! over a window, the judgement of those figures against a route's thresholds, and the next
//! move of its schedule. No I/O and no clock: times come in as epoch milliseconds, so every
//! transition is tested without a runtime.

use std::collections::VecDeque;

use crate::api::{Breach, Evidence};
use crate::rules::{GuardPolicy, Route, RouteState, Schedule};
use crate::store::Verdict;

/// Cumulative counters of one route, read at one tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    pub at_ms: i64,
    /// New-side requests answered, plus those retried on legacy.
    pub new_requests: u64,
    /// New-side 5xx answers, plus requests retried on legacy.
    pub new_failed: u64,
    pub new_timed: u64,
    pub new_nanos: u64,
    pub legacy_timed: u64,
    pub legacy_nanos: u64,
}

/// Readings of one route over (a little more than) its window.
#[derive(Debug, Default)]
pub struct Ring {
    readings: VecDeque<Reading>,
}

impl Ring {
    /// Keep `reading`, dropping those no longer needed for a window of `window_ms` (the
    /// newest one at or before the window's start stays: it is the window's base).
    pub fn push(&mut self, reading: Reading, window_ms: i64) {
        self.readings.push_back(reading);
        let start = reading.at_ms - window_ms;
        while self.readings.len() > 1 && self.readings.get(1).is_some_and(|r| r.at_ms <= start) {
            self.readings.pop_front();
        }
    }

    /// Forget every reading (after a re-arm: figures from before it must not trip again).
    pub fn clear(&mut self) {
        self.readings.clear();
    }

    /// The counts between the window's base and the newest reading.
    pub fn delta(&self) -> Reading {
        match (self.readings.front(), self.readings.back()) {
            (Some(first), Some(last)) => Reading {
                at_ms: last.at_ms,
                new_requests: last.new_requests.saturating_sub(first.new_requests),
                new_failed: last.new_failed.saturating_sub(first.new_failed),
                new_timed: last.new_timed.saturating_sub(first.new_timed),
                new_nanos: last.new_nanos.saturating_sub(first.new_nanos),
                legacy_timed: last.legacy_timed.saturating_sub(first.legacy_timed),
                legacy_nanos: last.legacy_nanos.saturating_sub(first.legacy_nanos),
            },
            _ => Reading::default(),
        }
    }
}

/// Shadow figures of the window, from the report (real differences only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parity {
    pub compared: u64,
    pub mismatched: u64,
}

/// Judge one window of `delta` (and `parity`, for a mismatch threshold) against `policy`.
pub fn judge(policy: &GuardPolicy, delta: &Reading, parity: Option<Parity>) -> Evidence {
    let min = policy.min_samples;
    let ratio = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
    let mean_ms = |nanos: u64, n: u64| (n > 0).then(|| nanos as f64 / n as f64 / 1e6);
    let error_rate = ratio(delta.new_failed, delta.new_requests);
    let new_mean_ms = mean_ms(delta.new_nanos, delta.new_timed);
    let legacy_mean_ms = mean_ms(delta.legacy_nanos, delta.legacy_timed);
    let latency_ratio = match (new_mean_ms, legacy_mean_ms) {
        (Some(n), Some(l)) if l > 0.0 => Some(n / l),
        _ => None,
    };
    let mismatch_rate = parity.and_then(|p| ratio(p.mismatched, p.compared));
    let mut breached = Vec::new();
    let mut check = |figure: &str, value: Option<f64>, limit: Option<f64>, samples: bool| {
        if let (Some(value), Some(limit)) = (value, limit)
            && samples
            && value > limit
        {
            breached.push(Breach {
                figure: figure.to_owned(),
                value,
                limit,
            });
        }
    };
    check(
        "error_rate",
        error_rate,
        policy.max_error_rate,
        delta.new_requests >= min,
    );
    check(
        "latency_ratio",
        latency_ratio,
        policy.max_latency_ratio,
        delta.new_timed >= min && delta.legacy_timed >= min,
    );
    check(
        "mismatch_rate",
        mismatch_rate,
        policy.max_mismatch_rate,
        parity.is_some_and(|p| p.compared >= min),
    );
    Evidence {
        at_ms: delta.at_ms,
        window_ms: u64::try_from(policy.window.as_millis()).unwrap_or(u64::MAX),
        requests: delta.new_requests,
        failed: delta.new_failed,
        error_rate,
        new_mean_ms,
        legacy_mean_ms,
        latency_ratio,
        compared: parity.map(|p| p.compared),
        mismatched: parity.map(|p| p.mismatched),
        mismatch_rate,
        breached,
    }
}

/// What a schedule does at one tick.
#[derive(Clone, Debug, PartialEq)]
pub enum Move {
    /// Raise the percent to this step (basis points).
    Advance(u32),
    /// Baking: the next step is due at this time.
    Wait { due_ms: i64, to_bp: u32 },
    /// Not advancing, for this reason.
    Hold(String),
    /// The last step is reached.
    Done,
}

/// Why the rules themselves hold `route`'s schedule (paused, tripped, not in rollout).
pub fn held(route: &Route, schedule: &Schedule) -> Option<String> {
    if schedule.paused {
        return Some("paused".into());
    }
    if route.guard.as_ref().is_some_and(|g| g.tripped) {
        return Some("the guard tripped; `switchyard guard rearm` re-arms it".into());
    }
    if route.state != RouteState::Rollout {
        return Some(format!("route state is {}", route.state));
    }
    None
}

/// The schedule's move for `route` at `now_ms`, its current step reached at `since_ms`.
/// `verdict` is the route's parity verdict, read only when a step is due (`None`: not read,
/// or no store).
pub fn next_move(
    route: &Route,
    schedule: &Schedule,
    since_ms: i64,
    now_ms: i64,
    verdict: Option<Verdict>,
) -> Move {
    let Some(to_bp) = schedule.next_step(route.percent_bp) else {
        return Move::Done;
    };
    if let Some(why) = held(route, schedule) {
        return Move::Hold(why);
    }
    let bake_ms = i64::try_from(schedule.bake.as_millis()).unwrap_or(i64::MAX);
    let due_ms = since_ms.saturating_add(bake_ms);
    if now_ms < due_ms {
        return Move::Wait { due_ms, to_bp };
    }
    if verdict == Some(Verdict::NotReady) {
        return Move::Hold("the shadow verdict is not_ready".into());
    }
    Move::Advance(to_bp)
}

#[cfg(test)]
#[path = "judge_tests.rs"]
mod tests;
