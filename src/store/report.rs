//! The shadow report: per route (and per tenant on request) outcome counts, parity with a 95%
//! Wilson interval, latency percentiles per side, the top differing paths with their noise
//! classification and sample ids, and a cut-over verdict. One query layer serves both
//! databases: plain `SUM … GROUP BY` over the per-minute aggregates, merged in Rust.
//!
//! Outcomes are derived when the report is read. Compared, errors, skips, self-checks, latency
//! and stored matches are summed as written (no later knowledge changes them); each result that
//! differed is counted under its difference set, and each distinct set is classified once under
//! the current evidence and rules: every difference now ignored → matched, every remaining one
//! noise → noise only, else mismatched. A route whose only differences are learned noise
//! therefore reads its true parity once the noise is learned, including for the results written
//! while it was being learned.
//!
//! Whether a path is noise is decided by the comparison module's statistical rule, passed in
//! through [`PathRules`] with the route's current compare rules: how often the path differed
//! between primary and shadow (`cross_*`) and between two answers of the primary side
//! (`self_*`), route-wide (noise is a property of the primary service, not of a tenant) and
//! over the noise window (see [`super::classify`]). A `(pattern, kind)` row is classified on
//! its own count, so a noisy field that goes *missing* on the shadow side can still be real.
//!
//! Verdict, first rule that applies: a path classified `real` → `not_ready`; fewer than
//! `min_samples` compared → `insufficient_data`; parity below the route's target → `not_ready`;
//! otherwise `ready`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::classify::{Classes, PathRules};
use super::diffsets::StoredSet;
use super::histogram::LatencyHistogram;
use super::report_query::RawScope;
use super::samples::SampleIndex;
use super::shadow::{Side, SkipReason};
use super::stats::{Z95, wilson_interval};
use super::{Outcome, Result, Store};

/// Which shadow data a report covers; every field is optional (admin query string).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportFilter {
    pub route: Option<String>,
    /// Restrict every figure to this tenant (`""` = requests without a tenant).
    pub tenant: Option<String>,
    /// Minute resolution: the minute holding `since_ms` is included whole.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Add a per-tenant breakdown under each route.
    pub by_tenant: bool,
}

/// Thresholds for the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportPolicy {
    /// Target parity in percent per route name.
    pub target_parity: HashMap<String, f64>,
    /// Target parity for routes not in `target_parity` (99.0).
    pub default_target_parity: f64,
    /// Compared requests needed before a route can be `ready` (100).
    pub min_samples: u64,
    /// Differing paths listed per route or tenant (20).
    pub top_paths: usize,
    /// Span of the recent evidence the noise classification is decided on (24 h; see
    /// [`super::classify`]).
    pub noise_window_ms: i64,
}

/// Default span of the noise evidence: a day.
pub const DEFAULT_NOISE_WINDOW_MS: i64 = 24 * 3_600_000;

impl Default for ReportPolicy {
    fn default() -> Self {
        ReportPolicy {
            target_parity: HashMap::new(),
            default_target_parity: 99.0,
            min_samples: 100,
            top_paths: 20,
            noise_window_ms: DEFAULT_NOISE_WINDOW_MS,
        }
    }
}

/// How a differing path is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseFlag {
    /// A genuine difference between the two sides.
    Real,
    /// The primary side differs from itself there too (timestamps, ids).
    Noise,
    /// Not enough evidence either way.
    Undetermined,
}

/// Evidence handed to the noise rule for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PathCounts {
    /// Compared results where primary and shadow differed on this path (and kind).
    pub cross_diffs: u64,
    /// Compared results in scope.
    pub cross_total: u64,
    /// Self-checks where two primary answers differed on this path.
    pub self_diffs: u64,
    /// Self-checks made on the route.
    pub self_total: u64,
}

/// Outcome counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// matched + mismatched + noise_only + errors.
    pub compared: u64,
    pub matched: u64,
    pub mismatched: u64,
    pub noise_only: u64,
    pub errors: u64,
    pub skipped: u64,
    pub skipped_by_reason: BTreeMap<SkipReason, u64>,
    pub self_checked: u64,
}

/// Parity = (matched + noise_only) / compared, in percent, with its 95% Wilson interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parity {
    pub percent: Option<f64>,
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
    pub target: f64,
}

/// Latency of one side, estimated from the log-scale histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    pub side: Side,
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// One differing path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffPath {
    pub pattern: String,
    pub kind: String,
    pub count: u64,
    /// count / compared.
    pub rate: f64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub classification: NoiseFlag,
    /// `classification == noise`, for consumers that want a flag.
    pub noise: bool,
    pub self_diffs: u64,
    pub sample_ids: Vec<i64>,
}

/// Cut-over verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ready,
    NotReady,
    InsufficientData,
}

/// Figures for one route, or one tenant of a route.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeReport {
    #[serde(flatten)]
    pub counts: Counts,
    pub parity: Parity,
    pub latency: Vec<LatencySummary>,
    /// Distinct (pattern, kind) rows in scope, before truncation to `top_paths`.
    pub differing_paths: usize,
    pub top_paths: Vec<DiffPath>,
    pub verdict: Verdict,
    pub verdict_reason: String,
}

/// One route's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteReport {
    pub route: String,
    #[serde(flatten)]
    pub scope: ScopeReport,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantReport>,
}

/// One tenant's share of a route.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantReport {
    /// `None` for requests without a tenant.
    pub tenant: Option<String>,
    #[serde(flatten)]
    pub scope: ScopeReport,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub routes: Vec<RouteReport>,
}

/// What every scope of one route shares.
struct ScopeContext<'a> {
    route: &'a str,
    classes: &'a Classes<'a>,
    sets: &'a HashMap<i64, StoredSet>,
    samples: &'a SampleIndex,
    target: f64,
    policy: &'a ReportPolicy,
}

// === impl Store ===

impl Store {
    /// Build the report for `filter`: outcomes derived from what each result differed on,
    /// paths classified by `rules` (see [`super::classify`]).
    pub async fn report(
        &self,
        filter: &ReportFilter,
        policy: &ReportPolicy,
        rules: &dyn PathRules,
    ) -> Result<Report> {
        let classes = self
            .classes(filter.route.as_deref(), policy.noise_window_ms, rules)
            .await?;
        let samples = self.sample_index(filter.route.as_deref()).await?;
        let routes_raw = self.load_scopes(filter, false).await?;
        let mut tenants_raw: BTreeMap<String, Vec<(String, RawScope)>> = BTreeMap::new();
        if filter.by_tenant {
            for ((route, tenant), raw) in self.load_scopes(filter, true).await? {
                tenants_raw.entry(route).or_default().push((tenant, raw));
            }
        }
        let set_ids: BTreeSet<i64> = routes_raw
            .values()
            .chain(tenants_raw.values().flatten().map(|(_, raw)| raw))
            .flat_map(|raw| raw.sets.iter().map(|(id, _)| *id))
            .collect();
        let sets = self.diff_sets(&set_ids).await?;

        let mut routes = Vec::with_capacity(routes_raw.len());
        for ((route, _), raw) in routes_raw {
            let target = policy
                .target_parity
                .get(&route)
                .copied()
                .unwrap_or(policy.default_target_parity);
            let scope_tenant = filter.tenant.as_deref();
            let ctx = ScopeContext {
                route: &route,
                classes: &classes,
                sets: &sets,
                samples: &samples,
                target,
                policy,
            };
            let scope = finish(&ctx, scope_tenant, raw);
            let mut tenants = Vec::new();
            for (tenant, raw) in tenants_raw.remove(&route).unwrap_or_default() {
                let scope = finish(&ctx, Some(&tenant), raw);
                tenants.push(TenantReport {
                    tenant: (!tenant.is_empty()).then_some(tenant),
                    scope,
                });
            }
            routes.push(RouteReport {
                route,
                scope,
                tenants,
            });
        }
        Ok(Report {
            since_ms: filter.since_ms,
            until_ms: filter.until_ms,
            routes,
        })
    }
}

/// Matched, mismatched and noise-only as they read now: stored matches, plus each differing
/// result's set classified under the current noise evidence and compare rules.
pub(super) fn derive(
    classes: &Classes<'_>,
    sets: &HashMap<i64, StoredSet>,
    route: &str,
    stored_matched: u64,
    counted: &[(i64, u64)],
) -> (u64, u64, u64) {
    let (mut matched, mut mismatched, mut noise_only) = (stored_matched, 0u64, 0u64);
    for (id, n) in counted {
        let outcome = sets
            .get(id)
            .map_or(Outcome::Mismatch, |set| classes.outcome(route, set));
        match outcome {
            Outcome::Match => matched += n,
            Outcome::NoiseOnly => noise_only += n,
            _ => mismatched += n,
        }
    }
    (matched, mismatched, noise_only)
}

/// Turn raw sums into a scope report: derived outcomes, parity, latency, classified paths,
/// verdict.
fn finish(ctx: &ScopeContext<'_>, tenant: Option<&str>, raw: RawScope) -> ScopeReport {
    let (target, policy) = (ctx.target, ctx.policy);
    let mut counts = raw.counts;
    (counts.matched, counts.mismatched, counts.noise_only) =
        derive(ctx.classes, ctx.sets, ctx.route, counts.matched, &raw.sets);
    let parity = parity(&counts, target);
    let latency = raw
        .latency
        .iter()
        .map(|(side, h)| summarize(*side, h))
        .collect();

    let mut paths: Vec<DiffPath> = raw
        .paths
        .into_iter()
        .filter_map(|p| {
            let class = ctx.classes.path(ctx.route, &p.pattern, &p.kind);
            if !class.counted {
                return None;
            }
            Some(DiffPath {
                rate: if counts.compared == 0 {
                    0.0
                } else {
                    p.count as f64 / counts.compared as f64
                },
                pattern: p.pattern,
                kind: p.kind,
                count: p.count,
                first_seen_ms: p.first_seen_ms,
                last_seen_ms: p.last_seen_ms,
                classification: class.flag,
                noise: class.flag == NoiseFlag::Noise,
                self_diffs: class.evidence.self_diffs,
                sample_ids: Vec::new(),
            })
        })
        .collect();
    paths.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| (&a.pattern, &a.kind).cmp(&(&b.pattern, &b.kind)))
    });

    // The verdict looks at every path, not only the listed top ones.
    let first_real = paths.iter().find(|p| p.classification == NoiseFlag::Real);
    let (verdict, verdict_reason) = if let Some(p) = first_real {
        let real = paths
            .iter()
            .filter(|p| p.classification == NoiseFlag::Real)
            .count();
        let reason = format!(
            "{real} real mismatching path(s), e.g. {} ({}) in {} of {} compared",
            p.pattern, p.kind, p.count, counts.compared
        );
        (Verdict::NotReady, reason)
    } else if counts.compared < policy.min_samples {
        let reason = format!(
            "{} compared, {} needed",
            counts.compared, policy.min_samples
        );
        (Verdict::InsufficientData, reason)
    } else {
        let pct = parity.percent.unwrap_or(0.0);
        if pct < target {
            (
                Verdict::NotReady,
                format!("parity {pct:.2}% below target {target:.2}%"),
            )
        } else {
            (
                Verdict::Ready,
                format!("parity {pct:.2}% meets target {target:.2}%"),
            )
        }
    };

    let differing_paths = paths.len();
    paths.truncate(policy.top_paths);
    for p in &mut paths {
        p.sample_ids = ctx.samples.ids(ctx.route, &p.pattern, &p.kind, tenant);
    }
    ScopeReport {
        counts,
        parity,
        latency,
        differing_paths,
        top_paths: paths,
        verdict,
        verdict_reason,
    }
}

/// Parity and its interval from the counts.
fn parity(c: &Counts, target: f64) -> Parity {
    let good = c.matched + c.noise_only;
    let interval = wilson_interval(good, c.compared, Z95);
    Parity {
        percent: (c.compared > 0).then(|| 100.0 * good as f64 / c.compared as f64),
        ci95_low: interval.map(|(lo, _)| 100.0 * lo),
        ci95_high: interval.map(|(_, hi)| 100.0 * hi),
        target,
    }
}

fn summarize(side: Side, h: &LatencyHistogram) -> LatencySummary {
    LatencySummary {
        side,
        count: h.total(),
        p50_ms: h.quantile(0.50),
        p95_ms: h.quantile(0.95),
        p99_ms: h.quantile(0.99),
    }
}
