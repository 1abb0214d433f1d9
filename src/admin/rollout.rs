//! `POST /admin/rollout`: change one route's tenants / exclude / percent / state, or move a
//! tenant on every route (`scope: "tenant"` → `[tenants.<id>] side`), with a dry run that
//! says which tenants would move and what share of the last hour's traffic that is.
//!
//! The change is applied to the config text of the generation in force (`config_edit`),
//! then goes through `Live::write_and_load`: validated whole (the same build as any reload),
//! written with compare-and-set, swapped — or refused with the loader's errors (422) or a
//! conflict (409), changing nothing.
//!
//! Who moves: every tenant the config knows (directory, `[tenants.<id>]`, route lists) and
//! every tenant among the route's busiest in recent traffic, each decided under the old and
//! the new rules with the decision's tenant steps (state, exclude, lists, cutover, cohorts,
//! sticky bucket).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::Uri;

use super::api::audit_entry;
use super::{AdminJson, AdminState, ApiError, Caller, Write, query};
use crate::api::{
    Basis, ChangedRules, Moves, RolloutQuery, RolloutRequest, RolloutResponse, RolloutResult,
    RouteRules, Scope, TenantRules,
};
use crate::config::edit::{self as config_edit, Change, RouteChange};
use crate::config::source::Author;
use crate::live::{ReloadOutcome, Snapshot, Trigger};
use crate::rules::{self, Route, RouteState, RuleSet, Side, StickyKey};
use crate::snapshot::Candidate;
use crate::traffic::Traffic;

/// Moved tenants listed per direction and route (the counts are always whole).
const MOVED_LIST_LIMIT: usize = 1000;

/// A validated request: the text change and what it is about.
struct Plan {
    change: Change,
    /// The audit target: the route's name, or `tenant:<id>`.
    target: String,
    /// Tenants the request names: always considered for the moves.
    named: Vec<String>,
}

/// The rules after the change: the new snapshot, or a built candidate (dry run).
enum After {
    Snapshot(Arc<Snapshot>),
    Candidate(Box<Candidate>),
}

impl After {
    fn rules(&self) -> &RuleSet {
        match self {
            After::Snapshot(s) => &s.rules,
            After::Candidate(c) => &c.rules,
        }
    }
}

// === the handler ===

/// `POST /admin/rollout[?dry_run=true]`.
pub async fn rollout(
    State(state): State<Arc<AdminState>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    AdminJson(request): AdminJson<RolloutRequest>,
) -> Result<Json<RolloutResponse>, ApiError> {
    let q: RolloutQuery = query(&uri)?;
    let dry_run = request.dry_run || parse_flag(q.dry_run.as_deref())?;
    let write = if dry_run { Write::DryRun } else { Write::Edit };
    let _write = state.begin_write(write).await?;
    let live = &state.live;
    let before = live.load();
    let plan = plan(&request, &before.rules)?;
    let forced = match &plan.change {
        Change::Route { route, change }
            if change.state == Some(RouteState::New)
                && before
                    .rules
                    .route(route)
                    .is_some_and(|r| r.state != RouteState::New) =>
        {
            super::guard::gate(&state, &before, route, request.force).await?
        }
        _ => false,
    };
    let text = config_edit::apply(&before.text, &plan.change)?;

    let (result, after, generation) = if dry_run {
        let candidate = live.candidate(text).await?;
        (
            RolloutResult::DryRun,
            After::Candidate(Box::new(candidate)),
            None,
        )
    } else if text == *before.text {
        (
            RolloutResult::Unchanged,
            After::Snapshot(before.clone()),
            Some(before.generation),
        )
    } else {
        // The snapshot this write validated and put in force describes the change, even when
        // another reload follows it at once.
        let author = Author {
            name: Some(caller.name.clone()),
            reason: request.reason.clone(),
        };
        let (outcome, now) = live
            .write_and_load_as(Some(before.generation), text, Trigger::Admin, &author)
            .await?;
        let result = match outcome {
            ReloadOutcome::Applied { .. } => RolloutResult::Applied,
            ReloadOutcome::Unchanged { .. } => RolloutResult::Unchanged,
        };
        (result, After::Snapshot(now), Some(outcome.generation()))
    };

    let (before_doc, after_doc) = describe(&plan.change, &before.rules, after.rules());
    let note = note(&plan.change, after.rules());
    let traffic = state.traffic.clone();
    let before_snapshot = before.clone();
    let change = plan.change.clone();
    let named = plan.named.clone();
    // Deciding every known tenant twice is CPU work: off the async workers.
    let (moves, after) = tokio::task::spawn_blocking(move || {
        let moves = moves(
            &before_snapshot.rules,
            after.rules(),
            &change,
            &named,
            &traffic,
        );
        (moves, after)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    drop(after);

    // A cutover past a `not_ready` verdict says so in its audit entry.
    let mut after_audit = serde_json::to_value(&after_doc)
        .map_err(|e| ApiError::Internal(format!("audit document: {e}")))?;
    let mut reason = request.reason.clone();
    if forced {
        if let Some(doc) = after_audit.as_object_mut() {
            doc.insert("forced".into(), serde_json::Value::Bool(true));
        }
        let why = reason.take().unwrap_or_default();
        reason = Some(format!("forced past a not_ready verdict. {why}"));
    }
    let entry = audit_entry(
        &caller,
        "rollout",
        &plan.target,
        &before_doc,
        &after_audit,
        reason,
        generation,
        dry_run,
    )?;
    let audit_id = state.audit(entry).await?;
    Ok(Json(RolloutResponse {
        result,
        dry_run,
        target: plan.target,
        generation,
        previous_generation: before.generation,
        before: before_doc,
        after: after_doc,
        moves,
        note,
        audit_id,
    }))
}

fn parse_flag(value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("false") | Some("0") | Some("no") => Ok(false),
        Some("") | Some("true") | Some("1") | Some("yes") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "dry_run must be true or false, not {other:?}"
        ))),
    }
}

// === validation ===

fn plan(request: &RolloutRequest, rules: &RuleSet) -> Result<Plan, ApiError> {
    let bad = |m: &str| Err(ApiError::BadRequest(m.to_owned()));
    let side = request.side;
    let mut named: Vec<String> = request.tenant.iter().cloned().collect();
    for list in [
        &request.tenants_add,
        &request.tenants_remove,
        &request.exclude_add,
        &request.exclude_remove,
    ] {
        named.extend(list.iter().cloned());
    }
    if let Some(t) = named.iter().find(|t| !rules::valid_tenant_id(t)) {
        return Err(ApiError::BadRequest(format!(
            "invalid tenant id {t:?}: 1–128 characters of A-Z a-z 0-9 . _ -"
        )));
    }
    if request.tenant.is_some() != side.is_some() {
        return bad("tenant and side go together: {\"tenant\": \"acme\", \"side\": \"new\"}");
    }
    match request.scope.unwrap_or_default() {
        Scope::Tenant => {
            let (Some(tenant), Some(side)) = (&request.tenant, side) else {
                return bad("scope tenant needs tenant and side");
            };
            let only_tenant = request.route.is_none()
                && named.len() == 1
                && request.percent.is_none()
                && request.state.is_none();
            if !only_tenant {
                return bad(
                    "scope tenant moves one tenant on every route: give only tenant, side (and reason)",
                );
            }
            return Ok(Plan {
                change: Change::TenantSide {
                    tenant: tenant.clone(),
                    side,
                },
                target: format!("tenant:{tenant}"),
                named,
            });
        }
        Scope::Route => {}
    }
    let Some(route) = request.route.clone() else {
        return bad("route is required (or scope \"tenant\" with tenant and side)");
    };
    if rules.route(&route).is_none() {
        let names: Vec<&str> = rules.routes.iter().map(|r| r.name.as_str()).collect();
        return Err(ApiError::NotFound(format!(
            "no route named {route:?}; routes: {}",
            names.join(", ")
        )));
    }
    let mut change = RouteChange {
        tenants_add: request.tenants_add.clone(),
        tenants_remove: request.tenants_remove.clone(),
        exclude_add: request.exclude_add.clone(),
        exclude_remove: request.exclude_remove.clone(),
        percent: request.percent,
        state: request.state,
        ..RouteChange::default()
    };
    // One tenant to one side: listed and not excluded, or excluded and not listed, so the
    // tenant lands on that side whatever the bucket or a cohort says.
    if let (Some(tenant), Some(side)) = (&request.tenant, side) {
        let (add, remove) = match side {
            Side::New => (&mut change.tenants_add, &mut change.exclude_remove),
            Side::Legacy => (&mut change.exclude_add, &mut change.tenants_remove),
        };
        add.push(tenant.clone());
        remove.push(tenant.clone());
        let (contradicting, other) = match side {
            Side::New => (&mut change.tenants_remove, &mut change.exclude_add),
            Side::Legacy => (&mut change.exclude_remove, &mut change.tenants_add),
        };
        contradicting.retain(|t| t != tenant);
        other.retain(|t| t != tenant);
    }
    if change.is_empty() {
        return bad(
            "nothing to change: give tenant+side, tenants_add/remove, exclude_add/remove, percent or state",
        );
    }
    Ok(Plan {
        change: Change::Route {
            route: route.clone(),
            change,
        },
        target: route,
        named,
    })
}

// === before → after ===

fn describe(
    change: &Change,
    before: &RuleSet,
    after: &RuleSet,
) -> (Option<ChangedRules>, Option<ChangedRules>) {
    match change {
        Change::Route { route, .. } => {
            let rules = |set: &RuleSet| {
                set.route(route)
                    .map(RouteRules::of)
                    .map(ChangedRules::Route)
            };
            (rules(before), rules(after))
        }
        Change::TenantSide { tenant, .. } => {
            let rules = |set: &RuleSet| {
                Some(ChangedRules::Tenant(TenantRules {
                    tenant: tenant.clone(),
                    side: set.tenant_side(tenant),
                }))
            };
            (rules(before), rules(after))
        }
    }
}

/// A word when the route's state overrides the lists (the change is kept, but does nothing
/// until the state is `rollout`).
fn note(change: &Change, after: &RuleSet) -> Option<String> {
    let Change::Route { route, change } = change else {
        return None;
    };
    let r = after.route(route)?;
    let lists_or_percent = change.state.is_none();
    match r.state {
        RouteState::Rollout => None,
        state if lists_or_percent => Some(format!(
            "route {route} is in state {state}: tenant lists and percent apply once it is back in rollout"
        )),
        _ => None,
    }
}

// === who moves ===

/// The side a request of `tenant` on `route` gets from the tenant steps of the decision
/// (SPEC "Decision for a request", steps 3–7; no override header). Mirrors the engine's
/// own per-tenant rule, which `RuleSet::tenants_on_new` uses; a unit test holds the two equal.
pub fn tenant_side(rules: &RuleSet, route: &Route, tenant: &str) -> Side {
    if route.new.is_none() {
        return Side::Legacy;
    }
    match route.state {
        RouteState::Legacy => return Side::Legacy,
        RouteState::New => return Side::New,
        RouteState::Rollout => {}
    }
    let wide = rules.tenant_side(tenant);
    if route.exclude.contains(tenant) || wide == Some(Side::Legacy) {
        return Side::Legacy;
    }
    if route.tenants.contains(tenant) || wide == Some(Side::New) {
        return Side::New;
    }
    if !route.cohorts.is_empty()
        && rules
            .tenant_attributes(tenant)
            .is_some_and(|attrs| rules::tenant::in_cohort(attrs, &route.cohorts))
    {
        return Side::New;
    }
    let bucketed = route.sticky == StickyKey::Tenant
        && route.percent_bp > 0
        && rules::bucket(&route.salt, tenant) < route.percent_bp;
    if bucketed { Side::New } else { Side::Legacy }
}

fn moves(
    before: &RuleSet,
    after: &RuleSet,
    change: &Change,
    named: &[String],
    traffic: &Traffic,
) -> Vec<Moves> {
    match change {
        Change::Route { route, .. } => {
            let mut candidates: BTreeSet<String> = before.known_tenants().into_iter().collect();
            candidates.extend(after.known_tenants());
            candidates.extend(traffic.tenants(route).into_iter().map(|t| t.tenant));
            candidates.extend(named.iter().cloned());
            route_moves(before, after, route, &candidates, traffic)
                .into_iter()
                .collect()
        }
        // Only the named tenant can move, but on any route.
        Change::TenantSide { tenant, .. } => {
            let candidates = BTreeSet::from([tenant.clone()]);
            after
                .routes
                .iter()
                .filter_map(|r| route_moves(before, after, &r.name, &candidates, traffic))
                .filter(|m| m.to_new_count + m.to_legacy_count > 0)
                .collect()
        }
    }
}

fn route_moves(
    before: &RuleSet,
    after: &RuleSet,
    name: &str,
    candidates: &BTreeSet<String>,
    traffic: &Traffic,
) -> Option<Moves> {
    let (old, new) = (before.route(name)?, after.route(name)?);
    let mut to_new = Vec::new();
    let mut to_legacy = Vec::new();
    for tenant in candidates {
        match (
            tenant_side(before, old, tenant),
            tenant_side(after, new, tenant),
        ) {
            (Side::Legacy, Side::New) => to_new.push(tenant.clone()),
            (Side::New, Side::Legacy) => to_legacy.push(tenant.clone()),
            _ => {}
        }
    }
    let hour = traffic.windows(name).h1;
    let requests_1h = hour.legacy + hour.new;
    let whole_side = old.state != new.state && new.state != RouteState::Rollout;
    let (moving_requests_1h, basis) = if whole_side {
        let moving = match new.state {
            RouteState::Legacy => hour.new,
            _ => hour.legacy,
        };
        (moving, Basis::SideCounters)
    } else {
        let tracked: HashMap<String, u64> = traffic
            .tenants(name)
            .into_iter()
            .map(|t| (t.tenant, t.requests))
            .collect();
        let moving = to_new
            .iter()
            .chain(&to_legacy)
            .filter_map(|t| tracked.get(t))
            .sum::<u64>()
            .min(requests_1h);
        (moving, Basis::BusiestTenants)
    };
    let (to_new_count, to_legacy_count) = (to_new.len(), to_legacy.len());
    to_new.truncate(MOVED_LIST_LIMIT);
    to_legacy.truncate(MOVED_LIST_LIMIT);
    Some(Moves {
        route: name.to_owned(),
        to_new_count,
        to_legacy_count,
        to_new,
        to_legacy,
        requests_1h,
        moving_requests_1h,
        share_1h: (requests_1h > 0).then(|| moving_requests_1h as f64 / requests_1h as f64),
        basis,
    })
}

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;
