//! Guards and schedules: their state in `GET /admin/status`, the evidence a trip records in
//! the audit log, and the calls that re-arm a guard and pause, resume or abort a schedule.

use serde::{Deserialize, Serialize};

use super::RouteRules;
use crate::rules::GuardAction;

/// One guarded or scheduled route in `GET /admin/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardStatus {
    pub route: String,
    pub state: GuardState,
    /// What a trip does; `null` for a route with a schedule and no guard.
    pub action: Option<GuardAction>,
    /// The last figures judged (by the replica driving the guards); `null` before the first.
    pub evidence: Option<Evidence>,
    /// The route's schedule; `null` without a `rollout` table.
    pub schedule: Option<ScheduleStatus>,
    /// Whether this replica drives the guards and schedules (in a fleet, one replica does).
    pub driving: bool,
}

/// A guard's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardState {
    /// Judging; the schedule (if any) advances.
    Armed,
    /// Tripped (`guard.tripped`): judges nothing until re-armed; the schedule holds.
    Tripped,
    /// The schedule is paused (`rollout.paused`).
    Paused,
}

impl GuardState {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardState::Armed => "armed",
            GuardState::Tripped => "tripped",
            GuardState::Paused => "paused",
        }
    }
}

/// A route's schedule: where it is and when it moves next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleStatus {
    /// Percentages, in order.
    pub steps: Vec<f64>,
    /// Steps reached so far (0 before the first).
    pub step: usize,
    pub percent: f64,
    /// `null` once the last step is reached.
    pub next_percent: Option<f64>,
    /// When the next step is due (epoch milliseconds), if nothing holds it; `null` on a
    /// replica that does not drive, after the last step, or while held.
    pub next_step_at_ms: Option<i64>,
    /// Why the schedule does not advance, when it does not.
    pub hold: Option<String>,
    pub paused: bool,
}

/// The figures a guard judged over its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// When they were read (epoch milliseconds).
    pub at_ms: i64,
    pub window_ms: u64,
    /// New-side requests in the window, counting those retried on legacy.
    pub requests: u64,
    /// Of those, 5xx answers and failures retried on legacy.
    pub failed: u64,
    pub error_rate: Option<f64>,
    /// Mean time to the response head per side, in milliseconds.
    pub new_mean_ms: Option<f64>,
    pub legacy_mean_ms: Option<f64>,
    pub latency_ratio: Option<f64>,
    /// Shadow comparisons in the window and those with real differences (report figures).
    pub compared: Option<u64>,
    pub mismatched: Option<u64>,
    pub mismatch_rate: Option<f64>,
    /// The thresholds crossed; empty when healthy.
    pub breached: Vec<Breach>,
}

/// One threshold crossed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    /// `error_rate`, `latency_ratio` or `mismatch_rate`.
    pub figure: String,
    pub value: f64,
    pub limit: f64,
}

/// The audit `after` document of a guard trip or a schedule step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardAudit {
    pub rules: Option<RouteRules>,
    /// The figures that tripped the guard, or that a step was judged on.
    pub evidence: Option<Evidence>,
    /// A state change made past a `not_ready` verdict with `force`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
}

/// The body of `POST /admin/guard/rearm`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RearmRequest {
    pub route: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of `POST /admin/schedule`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    pub route: String,
    pub action: ScheduleAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What `POST /admin/schedule` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleAction {
    /// Stop advancing (`rollout.paused = true`).
    Pause,
    /// Advance again; after an abort, the route is back in `rollout` from the first step.
    Resume,
    /// Every request to legacy: `state = "legacy"`, `percent = 0`, paused.
    Abort,
}

impl ScheduleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleAction::Pause => "pause",
            ScheduleAction::Resume => "resume",
            ScheduleAction::Abort => "abort",
        }
    }
}

/// The answer of `POST /admin/guard/rearm` and `POST /admin/schedule`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardChangeResponse {
    pub route: String,
    /// `rearm`, `pause`, `resume` or `abort`.
    pub action: String,
    /// Whether a new generation was put in force (false: already so).
    pub changed: bool,
    pub generation: u64,
    pub before: RouteRules,
    pub after: RouteRules,
    pub audit_id: i64,
}
