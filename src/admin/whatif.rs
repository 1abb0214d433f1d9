//! `POST /admin/shadow/whatif`: how would the report read under a draft `compare` table?
//!
//! ```text
//! curl -H "authorization: Bearer $READ_TOKEN" http://127.0.0.1:9901/admin/shadow/whatif \
//!      -d '{"route": "cards", "compare": {"ignore": ["/generated_at", "/request_id"]}}'
//! ```
//!
//! The route's report is projected by deriving its outcomes again from every stored result's
//! difference set under the draft (see `store::classify`): what the draft ignores (paths,
//! headers no longer compared, extras under `subset`) leaves the counts and the top paths
//! exactly. What a set cannot tell — a new `unordered` or `keyed` array, a `tolerance`, another
//! `status` mode — is estimated from the stored sample pairs (`Store::samples_for_route`, newest
//! first, at most `limit`), compared again with `compare::diff` under the running rules and
//! under the draft: a (pattern, kind) seen under the running rules and in none of the pairs
//! under the draft is *removed*, one only the draft finds is *added*, and the share of differing
//! pairs the draft makes clean beyond its ignore rules is credited to the projected parity
//! (`parity_estimated`). The verdict follows the report's rule (a real path left →
//! `not_ready`; too few compared → `insufficient_data`; parity under target → `not_ready`; else
//! `ready`). Only pairs that differed are stored, so the sample counts describe the differing
//! traffic, not all of it.
//!
//! Nothing changes: no config edit, no store write, no audit entry — which is why a read
//! token may call it (see `auth::READ_ONLY_POSTS`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::sample::captured;
use super::shadow::{LiveRules, build_report, filter, shadow_store};
use super::{AdminJson, AdminState, ApiError};
use crate::compare::{self, CompareConfig, CompareRules, Diff};
use crate::store::{Counts, NoiseFlag, Parity, RouteReport, Verdict, Z95, wilson_interval};

/// Stored pairs re-evaluated by default, and at most.
const DEFAULT_LIMIT: usize = 500;
const MAX_LIMIT: usize = 5_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatIfRequest {
    route: String,
    /// The draft `compare` table, as in the config file (JSON here).
    #[serde(default)]
    compare: Value,
    /// Window of the projected report (as in the report call); default: all kept.
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

/// (pattern, kind) → number of pairs showing it.
type PathTally = BTreeMap<(String, String), u64>;

/// What one set of rules finds in the evaluated pairs.
#[derive(Debug, Default)]
struct Tally {
    clean: u64,
    differing: u64,
    paths: PathTally,
}

/// `POST /admin/shadow/whatif {route, compare, since?, limit?}`.
pub async fn whatif(
    State(state): State<Arc<AdminState>>,
    AdminJson(request): AdminJson<WhatIfRequest>,
) -> Result<Json<Value>, ApiError> {
    let store = shadow_store(&state)?;
    let snapshot = state.live.load();
    let route = snapshot
        .rules
        .route(&request.route)
        .ok_or_else(|| ApiError::NotFound(format!("no route named {:?}", request.route)))?;
    let current = route
        .shadow
        .as_ref()
        .map(|p| p.compare.clone())
        .unwrap_or_default();
    let draft = draft_rules(
        &request.compare,
        snapshot.rules.shadow.redact_key.as_deref(),
    )?;
    let limit = request.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let samples = store.samples_for_route(&route.name, limit).await?;

    // One pair is stored under each (pattern, kind) it showed: evaluate each pair once.
    let mut seen = HashSet::new();
    let (mut before, mut after) = (Tally::default(), Tally::default());
    let mut fixed = 0u64;
    // Made clean by something the difference sets cannot show (not an ignore rule).
    let mut fixed_beyond_sets = 0u64;
    for s in &samples {
        let key = serde_json::to_string(&s.pair).unwrap_or_default();
        if !seen.insert(key) {
            continue;
        }
        let (p, sh) = (captured(&s.pair.primary), captured(&s.pair.shadow));
        let was = compare::diff(&p, &sh, &current);
        let now = compare::diff(&p, &sh, &draft);
        if !was.differences.is_empty() && now.differences.is_empty() {
            fixed += 1;
            if was
                .differences
                .iter()
                .any(|d| draft.reports(&d.pattern, d.kind.as_str()))
            {
                fixed_beyond_sets += 1;
            }
        }
        tally(&mut before, &was);
        tally(&mut after, &now);
    }
    let evaluated = seen.len() as u64;
    let removed: Vec<&(String, String)> = before
        .paths
        .keys()
        .filter(|k| !after.paths.contains_key(*k))
        .collect();
    let added: Vec<&(String, String)> = after
        .paths
        .keys()
        .filter(|k| !before.paths.contains_key(*k))
        .collect();

    let window = filter(
        Some(route.name.clone()),
        None,
        request.since.as_deref(),
        None,
        false,
        state.clock.now_ms(),
    )?;
    let report = build_report(store, &snapshot, &LiveRules::new(&snapshot), &window, 200).await?;
    let under_draft = LiveRules::with_draft(&snapshot, &route.name, &draft);
    let derived = build_report(store, &snapshot, &under_draft, &window, 200).await?;
    let removed_set: BTreeSet<(String, String)> = removed.iter().map(|k| (*k).clone()).collect();
    let projected = derived.routes.first().map(|r| {
        let share_fixed = if before.differing == 0 {
            0.0
        } else {
            fixed_beyond_sets as f64 / before.differing as f64
        };
        project(r, &removed_set, share_fixed)
    });
    let current_doc = report.routes.first().map(|r| {
        json!({
            "compared": r.scope.counts.compared,
            "parity": r.scope.parity,
            "verdict": r.scope.verdict,
            "verdict_reason": r.scope.verdict_reason,
            "top_paths": r.scope.top_paths.iter().map(path_doc).collect::<Vec<_>>(),
        })
    });
    let path_list = |keys: &[&(String, String)]| -> Vec<Value> {
        keys.iter()
            .map(|(p, k)| json!({"pattern": p, "kind": k}))
            .collect()
    };
    Ok(Json(json!({
        "route": route.name,
        "changed_nothing": true,
        "draft": draft.config(),
        "samples": {
            "evaluated": evaluated,
            "current": tally_doc(&before),
            "draft": tally_doc(&after),
            "made_clean": fixed,
        },
        "removed_paths": path_list(&removed),
        "added_paths": path_list(&added),
        "report": {
            "current": current_doc,
            "projected": projected,
        },
        "note": "outcomes derived again from every stored result under the draft (exact for ignore, headers and subset); other changes estimated from the stored sample pairs (only pairs that differed are stored)",
    })))
}

/// Compile the draft table with the running redaction key, or say what is wrong with it.
fn draft_rules(table: &Value, key: Option<&[u8]>) -> Result<CompareRules, ApiError> {
    let table = if table.is_null() {
        json!({})
    } else {
        table.clone()
    };
    let config: CompareConfig = serde_json::from_value(table)
        .map_err(|e| ApiError::BadRequest(format!("draft compare: {e}")))?;
    let rules = CompareRules::compile(&config).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        ApiError::BadRequest(format!("draft compare: {}", list.join("; ")))
    })?;
    Ok(match key {
        Some(key) => rules.with_redact_key(key),
        None => rules,
    })
}

fn tally(t: &mut Tally, diff: &Diff) {
    if diff.differences.is_empty() {
        t.clean += 1;
        return;
    }
    t.differing += 1;
    let keys: BTreeSet<(String, String)> = diff
        .differences
        .iter()
        .map(|d| (d.pattern.clone(), d.kind.as_str().to_owned()))
        .collect();
    for k in keys {
        *t.paths.entry(k).or_default() += 1;
    }
}

fn tally_doc(t: &Tally) -> Value {
    let mut paths: Vec<(&(String, String), &u64)> = t.paths.iter().collect();
    paths.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    json!({
        "clean": t.clean,
        "differing": t.differing,
        "paths": paths
            .into_iter()
            .map(|((p, k), n)| json!({"pattern": p, "kind": k, "pairs": n}))
            .collect::<Vec<_>>(),
    })
}

fn path_doc(p: &crate::store::DiffPath) -> Value {
    json!({
        "pattern": p.pattern,
        "kind": p.kind,
        "count": p.count,
        "rate": p.rate,
        "classification": p.classification,
        "noise": p.noise,
    })
}

/// The route's report derived under the draft, with `removed` paths gone and `share_fixed` of
/// the mismatched requests made clean by what the derivation cannot see.
fn project(r: &RouteReport, removed: &BTreeSet<(String, String)>, share_fixed: f64) -> Value {
    let scope = &r.scope;
    let paths: Vec<&crate::store::DiffPath> = scope
        .top_paths
        .iter()
        .filter(|p| !removed.contains(&(p.pattern.clone(), p.kind.clone())))
        .collect();
    let c: &Counts = &scope.counts;
    let credited = (c.mismatched as f64 * share_fixed.clamp(0.0, 1.0)).round() as u64;
    let good = (c.matched + c.noise_only + credited).min(c.compared);
    let interval = wilson_interval(good, c.compared, Z95);
    let parity = Parity {
        percent: (c.compared > 0).then(|| 100.0 * good as f64 / c.compared as f64),
        ci95_low: interval.map(|(lo, _)| 100.0 * lo),
        ci95_high: interval.map(|(_, hi)| 100.0 * hi),
        target: scope.parity.target,
    };
    let what = if credited > 0 {
        "estimated parity"
    } else {
        "parity"
    };
    let first_real = paths.iter().find(|p| p.classification == NoiseFlag::Real);
    let (verdict, reason) = if let Some(p) = first_real {
        (
            Verdict::NotReady,
            format!("real mismatching path {} ({}) remains", p.pattern, p.kind),
        )
    } else if c.compared < super::shadow::MIN_SAMPLES {
        (
            Verdict::InsufficientData,
            format!(
                "{} compared, {} needed",
                c.compared,
                super::shadow::MIN_SAMPLES
            ),
        )
    } else {
        let pct = parity.percent.unwrap_or(0.0);
        if pct < parity.target {
            (
                Verdict::NotReady,
                format!("{what} {pct:.2}% below target {:.2}%", parity.target),
            )
        } else {
            (
                Verdict::Ready,
                format!("{what} {pct:.2}% meets target {:.2}%", parity.target),
            )
        }
    };
    json!({
        "compared": c.compared,
        "matched": c.matched,
        "mismatched": c.mismatched,
        "noise_only": c.noise_only,
        "parity": parity,
        "parity_estimated": credited > 0,
        "verdict": verdict,
        "verdict_reason": reason,
        "top_paths": paths.into_iter().map(path_doc).collect::<Vec<_>>(),
    })
}
