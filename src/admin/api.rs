//! The admin calls apart from rollout: status, routes, history, audit (reads) and reload,
//! rollback (writes, audited).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::Uri;
use serde::Serialize;

use super::{AdminJson, AdminState, ApiError, Caller, Write, query};
use crate::api::{
    AuditQuery, AuditResponse, AuditStore, GenerationAudit, HistoryResponse, ReloadAudit,
    ReloadRequest, ReloadResponse, RollbackRequest, RollbackResponse, RouteRules, RouteView,
    RoutesQuery, RoutesResponse, ShadowSummary, StatusResponse, TenantList,
};
use crate::clock::epoch_ms;
use crate::config::source::Author;
use crate::live::{ReloadOutcome, Snapshot, Trigger};
use crate::rules::{Route, RuleSet};
use crate::store::{AuditEntry, AuditFilter};
use crate::traffic::Traffic;

/// How many tenant names a route listing shows per list (the counts are always whole).
const LIST_LIMIT: usize = 100;
/// Busiest tenants shown per route.
const BUSIEST: usize = 10;

/// `GET /admin/status`: the generation in force, the last failed reload, upstream health.
pub async fn status(State(state): State<Arc<AdminState>>) -> Json<StatusResponse> {
    let snapshot = state.live.load();
    Json(StatusResponse {
        generation: snapshot.generation,
        hash: snapshot.rules.hash.clone(),
        loaded_at: snapshot.loaded_at,
        trigger: snapshot.trigger,
        config: state.live.source().describe(),
        replica: state.fleet.replica().to_owned(),
        source: state.fleet.status(&state.live),
        routes: snapshot.rules.routes.len(),
        last_reload_error: state.live.last_error(),
        upstreams: snapshot.pools.health(),
        guards: state.guard.status(&snapshot),
        audit_store: if state.store.is_some() {
            AuditStore::Ok
        } else {
            AuditStore::Unavailable
        },
    })
}

/// `GET /admin/routes[?route=NAME]`: the effective rules of each route and its recent traffic.
pub async fn routes(
    State(state): State<Arc<AdminState>>,
    uri: Uri,
) -> Result<Json<RoutesResponse>, ApiError> {
    let q: RoutesQuery = query(&uri)?;
    let snapshot = state.live.load();
    if let Some(name) = &q.route
        && snapshot.rules.route(name).is_none()
    {
        return Err(ApiError::NotFound(format!("no route named {name:?}")));
    }
    let traffic = state.traffic.clone();
    // Listing who is on the new side walks every known tenant per route: CPU work, kept off
    // the async workers.
    let body = tokio::task::spawn_blocking(move || {
        let rules = &snapshot.rules;
        RoutesResponse {
            generation: snapshot.generation,
            routes: rules
                .routes
                .iter()
                .filter(|r| q.route.as_deref().is_none_or(|n| n == r.name))
                .map(|r| route_view(rules, r, &traffic))
                .collect(),
            tenant_sides: rules
                .known_tenants()
                .into_iter()
                .filter_map(|t| rules.tenant_side(&t).map(|s| (t, s)))
                .collect(),
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(body))
}

fn route_view(rules: &RuleSet, r: &Route, traffic: &Traffic) -> RouteView {
    let on_new = rules.tenants_on_new(r);
    RouteView {
        name: r.name.clone(),
        paths: r.paths.clone(),
        methods: r
            .methods
            .as_ref()
            .map(|m| m.iter().map(|m| m.as_str().to_owned()).collect()),
        salt: r.salt.clone(),
        sticky: r.sticky.clone(),
        legacy: r.legacy.clone(),
        new: r.new.clone(),
        rules: RouteRules::of(r),
        cohorts: r.cohorts.clone(),
        tenants_on_new: TenantList {
            count: on_new.len(),
            tenants: on_new.into_iter().take(LIST_LIMIT).collect(),
        },
        fallback: r.fallback,
        shadow: ShadowSummary {
            on: r.shadow.is_some() && rules.shadow.enabled,
            percent: r.shadow.as_ref().map(|s| f64::from(s.percent_bp) / 100.0),
        },
        traffic: traffic.windows(&r.name),
        busiest_tenants: traffic.busiest(&r.name, BUSIEST),
    }
}

/// `GET /admin/history`: past generations, newest first (a shared document's revisions).
pub async fn history(State(state): State<Arc<AdminState>>) -> Json<HistoryResponse> {
    Json(HistoryResponse {
        current: state.live.load().generation,
        generations: state.live.revisions().await,
    })
}

/// `GET /admin/audit?route=&token=&action=&since=&until=&limit=`: newest first.
pub async fn audit(
    State(state): State<Arc<AdminState>>,
    uri: Uri,
) -> Result<Json<AuditResponse>, ApiError> {
    let q: AuditQuery = query(&uri)?;
    let now = state.clock.now_ms();
    let filter = AuditFilter {
        limit: q.limit,
        target: q.route.or(q.target),
        token: q.token,
        since_ms: q.since.as_deref().map(|t| instant(t, now)).transpose()?,
        until_ms: q.until.as_deref().map(|t| instant(t, now)).transpose()?,
        action: q.action,
    };
    let entries = state.store()?.list_audit(&filter).await?;
    Ok(Json(AuditResponse { entries }))
}

/// An instant from the query string: epoch ms, RFC 3339, or a duration ago.
pub(super) fn instant(text: &str, now_ms: i64) -> Result<i64, ApiError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        let ago = i64::try_from(ago.as_millis()).unwrap_or(i64::MAX);
        return Ok(now_ms.saturating_sub(ago));
    }
    humantime::parse_rfc3339_weak(text)
        .map(epoch_ms)
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "not a time: {text:?} (epoch milliseconds, RFC 3339, or a duration such as 15m)"
            ))
        })
}

/// `POST /admin/reload`: re-read the config file now.
pub async fn reload(
    State(state): State<Arc<AdminState>>,
    Extension(caller): Extension<Caller>,
    AdminJson(request): AdminJson<ReloadRequest>,
) -> Result<Json<ReloadResponse>, ApiError> {
    let _write = state.begin_write(Write::Reload).await?;
    let before = state.live.load();
    let outcome = state.live.reload(Trigger::Admin).await?;
    finish(
        &state,
        &caller,
        "reload",
        &before,
        outcome,
        request.reason,
        None,
    )
    .await
}

/// `POST /admin/rollback {generation}`: return to an earlier generation's rules (its text is
/// written back to the config file and loaded as a new generation).
pub async fn rollback(
    State(state): State<Arc<AdminState>>,
    Extension(caller): Extension<Caller>,
    AdminJson(request): AdminJson<RollbackRequest>,
) -> Result<Json<RollbackResponse>, ApiError> {
    let _write = state.begin_write(Write::Edit).await?;
    let before = state.live.load();
    let author = Author {
        name: Some(caller.name.clone()),
        reason: request.reason.clone(),
    };
    let outcome = state.live.rollback_as(request.generation, &author).await?;
    let to = Some(request.generation);
    finish(
        &state,
        &caller,
        "rollback",
        &before,
        outcome,
        request.reason,
        to,
    )
    .await
}

/// Audit a reload or rollback and answer with the outcome.
async fn finish(
    state: &AdminState,
    caller: &Caller,
    action: &str,
    before: &Snapshot,
    outcome: ReloadOutcome,
    reason: Option<String>,
    restored: Option<u64>,
) -> Result<Json<ReloadResponse>, ApiError> {
    let generation = outcome.generation();
    let entry = audit_entry(
        caller,
        action,
        "config",
        &GenerationAudit {
            generation: before.generation,
            hash: before.rules.hash.clone(),
        },
        &ReloadAudit {
            outcome: outcome.clone(),
            restored,
        },
        reason,
        Some(generation),
        false,
    )?;
    let audit_id = state.audit(entry).await?;
    Ok(Json(ReloadResponse {
        outcome,
        previous_generation: before.generation,
        audit_id,
    }))
}

/// One audit record, stamped now, with its `before` and `after` documents.
#[allow(clippy::too_many_arguments)]
pub(super) fn audit_entry(
    caller: &Caller,
    action: &str,
    target: &str,
    before: &impl Serialize,
    after: &impl Serialize,
    reason: Option<String>,
    generation: Option<u64>,
    dry_run: bool,
) -> Result<AuditEntry, ApiError> {
    Ok(AuditEntry {
        id: 0,
        // Stamped by `AdminState::audit` with the gateway's clock.
        at_ms: 0,
        token_name: caller.name.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        before: document(before)?,
        after: document(after)?,
        reason: reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty()),
        generation,
        dry_run,
        // Stamped by `AdminState::audit` with this replica's identity.
        replica: None,
    })
}

/// An audit document: typed where the call builds it, free-form JSON in the log.
fn document(doc: &impl Serialize) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(doc).map_err(|e| ApiError::Internal(format!("audit document: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn instants_from_the_query_string() {
        let now = 1_800_000_000_000;
        assert_eq!(instant("1700000000000", now).unwrap(), 1_700_000_000_000);
        assert_eq!(
            instant("2023-11-14T22:13:20Z", now).unwrap(),
            1_700_000_000_000
        );
        assert_eq!(now - instant("1h", now).unwrap(), 3_600_000);
        assert_eq!(instant("yesterday", now).unwrap_err().status(), 400);
    }
}
