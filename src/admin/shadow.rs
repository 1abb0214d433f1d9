//! The shadow-diff reads of the admin API (read role): the report, the mismatch timeline and,
//! in [`super::sample`] and [`super::whatif`], one stored pair and a what-if re-evaluation.
//!
//! ```text
//! GET /admin/shadow/report?route=cards&tenant=acme&since=1h&until=&by_tenant=true&top=20
//! GET /admin/shadow/timeline?route=cards&since=6h&bucket=5m
//! ```
//!
//! The report is the store's [`Report`] with the verdict policy taken from the running rules
//! (a route's `shadow = { target_parity = 99.5 }`, 99 % by default; 100 compared requests
//! before `ready`; `[shadow] noise_window`) and paths classified by
//! [`crate::shadow::noise_flag`], the same statistical rule as the live pipeline. Outcomes are
//! derived when read ([`LiveRules`]): a difference the route's `compare` rules now ignore no
//! longer counts, and results written before their noise was learned count as noise once it is. Each route also carries `suggested_ignore`: noise paths whose
//! stored sample values look per-call by nature (timestamps, UUIDs, request ids — see
//! [`crate::shadow::noise::suggest_ignore`]), offered as `compare` `ignore` entries, and
//! `suggested_compare_ignore`, the route's `ignore` list with them added, ready to paste.
//! Without a store every call here answers 503.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::instant;
use super::sample::values_at;
use super::{AdminState, ApiError, query};
use crate::compare::CompareRules;
use crate::snapshot::Snapshot;
use crate::store::{
    DiffPath, NoiseFlag, PathCounts, PathRules, Report, ReportFilter, ReportPolicy, Store,
};

/// Compared requests a route needs before the report can call it `ready`.
pub const MIN_SAMPLES: u64 = 100;
/// Target parity of a route whose `shadow` table sets none.
pub const DEFAULT_TARGET_PARITY: f64 = 99.0;
/// Differing paths listed per route or tenant unless `top=` says otherwise.
const DEFAULT_TOP: usize = 20;
/// Largest `top=`.
const MAX_TOP: usize = 200;
/// Stored samples read per noise path to recognise its values.
const SAMPLES_PER_SUGGESTION: usize = 3;
/// Default window of the timeline.
const DEFAULT_TIMELINE_SINCE: &str = "6h";
/// Default bucket of the timeline.
const DEFAULT_BUCKET: &str = "5m";

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ReportQuery {
    route: Option<String>,
    tenant: Option<String>,
    /// Epoch milliseconds, RFC 3339, or a duration back from now (`1h`); default: all kept.
    since: Option<String>,
    until: Option<String>,
    by_tenant: bool,
    top: Option<usize>,
}

/// The store, or 503 with a message about shadow results.
pub(super) fn shadow_store(state: &AdminState) -> Result<&Store, ApiError> {
    state.store.as_ref().ok_or(ApiError::ShadowStoreUnavailable)
}

/// The report's view of the running rules: the statistical noise rule of the live pipeline,
/// and each route's compare rules, so a difference a route now ignores no longer counts.
/// `draft` stands in for one route's rules (what-if).
pub(super) struct LiveRules<'a> {
    snapshot: &'a Snapshot,
    draft: Option<(&'a str, &'a CompareRules)>,
}

impl<'a> LiveRules<'a> {
    pub(super) fn new(snapshot: &'a Snapshot) -> Self {
        LiveRules {
            snapshot,
            draft: None,
        }
    }

    /// The running rules with `route`'s compare rules replaced by `draft`.
    pub(super) fn with_draft(
        snapshot: &'a Snapshot,
        route: &'a str,
        draft: &'a CompareRules,
    ) -> Self {
        LiveRules {
            snapshot,
            draft: Some((route, draft)),
        }
    }
}

impl PathRules for LiveRules<'_> {
    fn noise(&self, counts: &PathCounts) -> NoiseFlag {
        crate::shadow::noise_flag(counts)
    }

    fn counts(&self, route: &str, pattern: &str, kind: &str) -> bool {
        if let Some((name, rules)) = self.draft
            && name == route
        {
            return rules.reports(pattern, kind);
        }
        // A route no longer configured keeps every difference it had.
        self.snapshot
            .rules
            .route(route)
            .and_then(|r| r.shadow.as_ref())
            .map(|p| &p.compare)
            .is_none_or(|rules| rules.reports(pattern, kind))
    }
}

/// The verdict policy of the running rules: per-route target parity from `shadow`, the noise
/// window from `[shadow] noise_window`.
pub fn policy(snapshot: &Snapshot, top: usize) -> ReportPolicy {
    ReportPolicy {
        target_parity: snapshot
            .rules
            .routes
            .iter()
            .filter_map(|r| {
                let s = r.shadow.as_ref()?;
                Some((r.name.clone(), f64::from(s.target_parity_bp) / 100.0))
            })
            .collect(),
        default_target_parity: DEFAULT_TARGET_PARITY,
        min_samples: MIN_SAMPLES,
        top_paths: top,
        noise_window_ms: i64::try_from(snapshot.rules.shadow.noise_window.as_millis())
            .unwrap_or(i64::MAX),
    }
}

/// A report filter from query-string values.
pub(super) fn filter(
    route: Option<String>,
    tenant: Option<String>,
    since: Option<&str>,
    until: Option<&str>,
    by_tenant: bool,
    now_ms: i64,
) -> Result<ReportFilter, ApiError> {
    Ok(ReportFilter {
        route: route.filter(|r| !r.is_empty()),
        tenant,
        since_ms: since
            .filter(|s| !s.is_empty())
            .map(|t| instant(t, now_ms))
            .transpose()?,
        until_ms: until
            .filter(|s| !s.is_empty())
            .map(|t| instant(t, now_ms))
            .transpose()?,
        by_tenant,
    })
}

/// Build the report for `filter` under `rules` (normally [`LiveRules::new`]).
pub(super) async fn build_report(
    store: &Store,
    snapshot: &Snapshot,
    rules: &LiveRules<'_>,
    filter: &ReportFilter,
    top: usize,
) -> Result<Report, ApiError> {
    let policy = policy(snapshot, top);
    Ok(store.report(filter, &policy, rules).await?)
}

/// One route's report figures since `since_ms` (all kept results with `None`), derived under
/// the running rules exactly as `GET /admin/shadow/report` derives them: what guards judge
/// their mismatch rate on, and what the promotion gate and schedules read the verdict from.
/// `None` when the route has no stored results.
pub async fn route_figures(
    store: &Store,
    snapshot: &Snapshot,
    route: &str,
    since_ms: Option<i64>,
) -> crate::store::Result<Option<crate::store::ScopeReport>> {
    let filter = ReportFilter {
        route: Some(route.to_owned()),
        since_ms,
        ..ReportFilter::default()
    };
    let report = store
        .report(&filter, &policy(snapshot, 1), &LiveRules::new(snapshot))
        .await?;
    Ok(report
        .routes
        .into_iter()
        .find(|r| r.route == route)
        .map(|r| r.scope))
}

/// `GET /admin/shadow/report`: per route (× tenant) figures, verdict and suggestions.
pub async fn report(
    State(state): State<Arc<AdminState>>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let q: ReportQuery = query(&uri)?;
    let store = shadow_store(&state)?;
    let top = q.top.unwrap_or(DEFAULT_TOP).clamp(1, MAX_TOP);
    let filter = filter(
        q.route,
        q.tenant,
        q.since.as_deref(),
        q.until.as_deref(),
        q.by_tenant,
        state.clock.now_ms(),
    )?;
    let snapshot = state.live.load();
    let report = build_report(store, &snapshot, &LiveRules::new(&snapshot), &filter, top).await?;
    let mut suggestions = Vec::with_capacity(report.routes.len());
    for route in &report.routes {
        suggestions.push(suggest(store, &route.scope.top_paths).await?);
    }
    let guards = state.guard.status(&snapshot);
    let mut doc = serde_json::to_value(&report).map_err(|e| ApiError::Internal(e.to_string()))?;
    let routes = doc["routes"].as_array_mut().map(|v| v.iter_mut());
    for ((route_doc, route), suggested) in routes
        .into_iter()
        .flatten()
        .zip(&report.routes)
        .zip(suggestions)
    {
        let current = snapshot
            .rules
            .route(&route.route)
            .map(|r| state_ignore(&snapshot, r.index))
            .unwrap_or_default();
        let mut merged = current.clone();
        for s in &suggested {
            if let Some(p) = s["ignore"].as_str()
                && !merged.iter().any(|m| m == p)
            {
                merged.push(p.to_owned());
            }
        }
        route_doc["configured"] = json!(snapshot.rules.route(&route.route).is_some());
        route_doc["suggested_compare_ignore"] = if suggested.is_empty() {
            Value::Null
        } else {
            json!(merged)
        };
        route_doc["suggested_ignore"] = json!(suggested);
        // A trip or a held schedule next to the figures that explain it.
        route_doc["guard"] = json!(guards.iter().find(|g| g.route == route.route));
    }
    doc["generation"] = json!(snapshot.generation);
    doc["generated_at_ms"] = json!(state.clock.now_ms());
    doc["policy"] = json!({
        "min_samples": MIN_SAMPLES,
        "default_target_parity": DEFAULT_TARGET_PARITY,
        "top_paths": top,
    });
    Ok(Json(doc))
}

/// The `ignore` list of route `index` in the running rules.
fn state_ignore(snapshot: &Snapshot, index: usize) -> Vec<String> {
    snapshot
        .rules
        .routes
        .get(index)
        .and_then(|r| r.shadow.as_ref())
        .map(|p| p.compare.config().ignore.clone())
        .unwrap_or_default()
}

/// `ignore` suggestions for the noise paths among `paths`, from their stored samples.
async fn suggest(store: &Store, paths: &[DiffPath]) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for path in paths {
        if path.classification != NoiseFlag::Noise || !seen.insert(path.pattern.clone()) {
            continue;
        }
        let mut values = Vec::new();
        let mut used = Vec::new();
        for id in path.sample_ids.iter().take(SAMPLES_PER_SUGGESTION) {
            let Some(sample) = store.sample(*id).await? else {
                continue;
            };
            used.push(*id);
            for side in [&sample.pair.primary, &sample.pair.shadow] {
                values.extend(values_at(side, &path.pattern));
            }
        }
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        if let Some(kind) = crate::shadow::noise::suggest_ignore(&refs) {
            out.push(json!({
                "pattern": path.pattern,
                "looks_like": kind,
                "noise": true,
                "ignore": path.pattern,
                "examples": values.iter().take(2).collect::<Vec<_>>(),
                "sample_ids": used,
            }));
        }
    }
    Ok(out)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TimelineQuery {
    route: Option<String>,
    tenant: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// Bucket width: `1m`, `5m`, `1h`, … (whole minutes).
    bucket: Option<String>,
}

/// `GET /admin/shadow/timeline`: outcome counts and mismatch rate per route over time.
pub async fn timeline(
    State(state): State<Arc<AdminState>>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let q: TimelineQuery = query(&uri)?;
    let store = shadow_store(&state)?;
    let since = q.since.as_deref().unwrap_or(DEFAULT_TIMELINE_SINCE);
    let filter = filter(
        q.route,
        q.tenant,
        Some(since),
        q.until.as_deref(),
        false,
        state.clock.now_ms(),
    )?;
    let bucket_text = q.bucket.as_deref().unwrap_or(DEFAULT_BUCKET);
    let bucket = humantime::parse_duration(bucket_text)
        .ok()
        .filter(|d| {
            d.subsec_nanos() == 0
                && d.as_secs() % 60 == 0
                && (60..=7 * 24 * 3600).contains(&d.as_secs())
        })
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "bucket {bucket_text:?}: whole minutes from 1m to 7d, such as 5m or 1h"
            ))
        })?;
    let bucket_ms = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX);
    let snapshot = state.live.load();
    let routes = store
        .timeline(
            &filter,
            bucket_ms,
            &policy(&snapshot, DEFAULT_TOP),
            &LiveRules::new(&snapshot),
        )
        .await?;
    Ok(Json(json!({
        "since_ms": filter.since_ms,
        "until_ms": filter.until_ms,
        "bucket_ms": bucket_ms,
        "routes": routes,
    })))
}
