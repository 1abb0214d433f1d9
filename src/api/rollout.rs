//! `POST /admin/rollout`: the change asked for, and what it did (or, in a dry run, would do).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::rules::{Route, RouteState, Side};

/// The body of `POST /admin/rollout`. Removals apply before additions; keys left out change
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// With `side`: put this tenant on that side (route scope: the `tenants`/`exclude` lists;
    /// tenant scope: `[tenants.<id>] side`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// `route` when left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenants_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenants_remove: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude_remove: Vec<String>,
    /// 0..=100, 0.01 resolution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<RouteState>,
    /// Why: kept in the audit log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Same as `?dry_run=true`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Set `state = "new"` even while the route's shadow verdict is `not_ready` (recorded as
    /// forced in the audit log); without it that change answers 409.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// What a rollout changes: one route's rules, or one tenant's side on every route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Route,
    Tenant,
}

/// The query string of `POST /admin/rollout`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutQuery {
    /// `true`, `1`, `yes` or empty: a dry run; `false`, `0`, `no`: not (the handler checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<String>,
}

/// The answer of `POST /admin/rollout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutResponse {
    pub result: RolloutResult,
    pub dry_run: bool,
    /// The audit target: the route's name, or `tenant:<id>`.
    pub target: String,
    /// The generation in force after the change; `null` in a dry run.
    pub generation: Option<u64>,
    /// The generation the change was computed from.
    pub previous_generation: u64,
    /// The changed rules before and after; `null` when the route is not in that generation.
    pub before: Option<ChangedRules>,
    pub after: Option<ChangedRules>,
    /// Per route: who moves, and what share of the last hour's traffic that is.
    pub moves: Vec<Moves>,
    /// A word when the route's state overrides the lists; `null` otherwise.
    pub note: Option<String>,
    pub audit_id: i64,
}

/// What became of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutResult {
    /// A new generation is in force.
    Applied,
    /// The change was already in force: nothing was written.
    Unchanged,
    /// Computed and audited, nothing changed.
    DryRun,
}

// === impl RolloutResult ===

impl RolloutResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutResult::Applied => "applied",
            RolloutResult::Unchanged => "unchanged",
            RolloutResult::DryRun => "dry_run",
        }
    }
}

/// The rules a rollout changes, as its answer and its audit entry show them before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChangedRules {
    /// Scope `route`.
    Route(RouteRules),
    /// Scope `tenant`.
    Tenant(TenantRules),
}

/// The fields of a route that a rollout changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRules {
    pub state: RouteState,
    /// 0–100.
    pub percent: f64,
    pub tenants: BTreeSet<String>,
    pub exclude: BTreeSet<String>,
}

// === impl RouteRules ===

impl RouteRules {
    /// `route`'s rollout fields.
    pub fn of(route: &Route) -> RouteRules {
        RouteRules {
            state: route.state,
            percent: f64::from(route.percent_bp) / 100.0,
            tenants: route.tenants.clone(),
            exclude: route.exclude.clone(),
        }
    }
}

/// A tenant's side on every route (`[tenants.<id>] side`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRules {
    pub tenant: String,
    /// `null`: none, each route decides.
    pub side: Option<Side>,
}

/// Tenants that change sides on one route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moves {
    pub route: String,
    pub to_new_count: usize,
    pub to_legacy_count: usize,
    /// Sorted; at most 1000 (the counts are whole).
    pub to_new: Vec<String>,
    pub to_legacy: Vec<String>,
    /// Requests on the route over the last hour.
    pub requests_1h: u64,
    /// Of those, requests that would have been served by the other side after the change.
    pub moving_requests_1h: u64,
    /// `moving / requests`; `null` without traffic.
    pub share_1h: Option<f64>,
    pub basis: Basis,
}

/// How [`Moves::moving_requests_1h`] was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Exact: a whole side moves, counted by the side counters.
    SideCounters,
    /// A lower bound: only tenants tracked among the route's busiest are counted.
    BusiestTenants,
}
