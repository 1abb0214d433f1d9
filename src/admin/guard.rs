//! `POST /admin/guard/rearm`, `POST /admin/schedule`, and the promotion gate of
//! `POST /admin/rollout`: operator changes to guards and schedules, made through the same
//! pipeline as the guard's own (`guard::apply_change`) and audited under the caller's token.
//!
//! ```text
//! curl -H "authorization: Bearer $TOKEN" -d '{"route":"cards"}' http://127.0.0.1:9901/admin/guard/rearm
//! curl -H "authorization: Bearer $TOKEN" -d '{"route":"cards","action":"pause"}' http://127.0.0.1:9901/admin/schedule
//! ```

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};

use super::fleet::Write;
use super::{AdminJson, AdminState, ApiError, Caller};
use crate::api::{GuardChangeResponse, RearmRequest, ScheduleAction, ScheduleRequest};
use crate::config::edit::RouteChange;
use crate::guard::{AuditNote, GuardError, apply_change};
use crate::live::Snapshot;
use crate::rules::{GuardAction, Route, RouteState};
use crate::store::Verdict;

/// `POST /admin/guard/rearm`: clear `guard.tripped`; a guard that sent the route to legacy
/// also puts it back in `rollout` at its percent.
pub async fn rearm(
    State(state): State<Arc<AdminState>>,
    Extension(caller): Extension<Caller>,
    AdminJson(request): AdminJson<RearmRequest>,
) -> Result<Json<GuardChangeResponse>, ApiError> {
    let _write = state.begin_write(Write::Edit).await?;
    let snapshot = state.live.load();
    let route = route(&snapshot, &request.route)?;
    let Some(guard) = &route.guard else {
        return Err(ApiError::BadRequest(format!(
            "route {} has no guard",
            route.name
        )));
    };
    let back =
        guard.tripped && guard.action == GuardAction::Legacy && route.state == RouteState::Legacy;
    let change = RouteChange {
        guard_tripped: Some(false),
        state: back.then_some(RouteState::Rollout),
        ..RouteChange::default()
    };
    change_route(
        &state,
        &caller,
        &route.name,
        change,
        "guard_rearm",
        request.reason,
    )
    .await
}

/// `POST /admin/schedule`: pause, resume or abort a route's schedule.
pub async fn schedule(
    State(state): State<Arc<AdminState>>,
    Extension(caller): Extension<Caller>,
    AdminJson(request): AdminJson<ScheduleRequest>,
) -> Result<Json<GuardChangeResponse>, ApiError> {
    let _write = state.begin_write(Write::Edit).await?;
    let snapshot = state.live.load();
    let route = route(&snapshot, &request.route)?;
    if route.schedule.is_none() {
        return Err(ApiError::BadRequest(format!(
            "route {} has no rollout schedule",
            route.name
        )));
    }
    let change = match request.action {
        ScheduleAction::Pause => RouteChange {
            schedule_paused: Some(true),
            ..RouteChange::default()
        },
        // After an abort the route is in legacy: resuming puts it back in rollout, from the
        // first step.
        ScheduleAction::Resume => RouteChange {
            schedule_paused: Some(false),
            state: (route.state == RouteState::Legacy).then_some(RouteState::Rollout),
            ..RouteChange::default()
        },
        ScheduleAction::Abort => RouteChange {
            schedule_paused: Some(true),
            state: Some(RouteState::Legacy),
            percent: Some(0.0),
            ..RouteChange::default()
        },
    };
    let action = format!("schedule_{}", request.action.as_str());
    change_route(
        &state,
        &caller,
        &route.name,
        change,
        &action,
        request.reason,
    )
    .await
}

fn route<'s>(snapshot: &'s Snapshot, name: &str) -> Result<&'s Route, ApiError> {
    snapshot
        .rules
        .route(name)
        .ok_or_else(|| ApiError::NotFound(format!("no route named {name:?}")))
}

async fn change_route(
    state: &AdminState,
    caller: &Caller,
    route: &str,
    change: RouteChange,
    action: &str,
    reason: Option<String>,
) -> Result<Json<GuardChangeResponse>, ApiError> {
    let note = AuditNote {
        who: &caller.name,
        action,
        reason: reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty()),
        evidence: None,
        forced: false,
        replica: state.fleet.replica(),
    };
    let applied = apply_change(&state.live, state.store.as_ref(), route, change, note)
        .await
        .map_err(api_error)?;
    let (Some(before), Some(after)) = (applied.before, applied.after) else {
        return Err(ApiError::NotFound(format!("no route named {route:?}")));
    };
    Ok(Json(GuardChangeResponse {
        route: route.to_owned(),
        action: action.to_owned(),
        changed: applied.changed,
        generation: applied.generation,
        before,
        after,
        audit_id: applied.audit_id.unwrap_or(0),
    }))
}

fn api_error(error: GuardError) -> ApiError {
    match error {
        GuardError::Edit(e) => e.into(),
        GuardError::Reload(e) => e.into(),
        GuardError::Audit {
            generation,
            message,
        } => ApiError::AuditFailed {
            generation: Some(generation),
            message,
        },
        GuardError::Report(message) => ApiError::Internal(message),
    }
}

/// The promotion gate: `state = "new"` on a route whose shadow verdict (every kept result, as
/// the report derives it) is `not_ready` is refused unless forced. Returns whether the change
/// goes past a `not_ready` verdict (to be audited as forced).
pub(super) async fn gate(
    state: &AdminState,
    snapshot: &Snapshot,
    route: &str,
    force: bool,
) -> Result<bool, ApiError> {
    let Some(store) = &state.store else {
        return Ok(false);
    };
    let figures = super::shadow::route_figures(store, snapshot, route, None)
        .await
        .map_err(|e| ApiError::Internal(format!("shadow report: {e}")))?;
    match figures {
        Some(scope) if scope.verdict == Verdict::NotReady => {
            if force {
                Ok(true)
            } else {
                Err(ApiError::NotReady {
                    route: route.to_owned(),
                    reason: scope.verdict_reason,
                })
            }
        }
        _ => Ok(false),
    }
}
