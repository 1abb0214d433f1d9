//! Classifying differences when the report is read, not when they were written.
//!
//! The classification is the *current* one, whatever window a report covers: results written
//! before a field was learned as noise count as noise once it is, and a report of last week
//! reads last week's results in the light of what is known now. For each route the store sums
//! its evidence — compared results and self-checks, and per (pattern, kind) how many results
//! differed between primary and shadow, per pattern how many self-checks differed — over two
//! spans ending at the route's newest minute:
//! - the **noise window** (`ReportPolicy::noise_window_ms`, `[shadow] noise_window`, 24 h by
//!   default): evidence ages, so a field that stopped differing from itself is tested on its
//!   recent self-checks only and becomes `real` again when it differs across sides;
//! - **everything kept**, for a path that did not differ at all within the noise window (a bug
//!   fixed days ago, a field no longer sent): it is judged on the evidence of the time it
//!   differed, as the report always did.
//!
//! The window ends at the route's newest result rather than at the wall clock, so a route whose
//! traffic stopped keeps the classification it had instead of losing all evidence; and the
//! classification depends only on the route, never on the report's window, tenant or
//! grouping, so every view of a route (report, tenants, timeline, what-if) agrees.
//!
//! [`PathRules`] brings in what the store does not know: the statistical noise rule and the
//! route's current `compare` rules (a pattern the route now ignores no longer counts).

use std::collections::{BTreeSet, HashMap};

use sqlx::Row;

use super::diffsets::{self, StoredSet};
use super::report::{NoiseFlag, PathCounts};
use super::sql::Filter;
use super::{Outcome, Result, Store, count_u64};

/// What the report needs from the comparison engine and the running rules.
pub trait PathRules: Send + Sync {
    /// The noise rule: is a path that differed this often, against this evidence, noise?
    fn noise(&self, counts: &PathCounts) -> NoiseFlag;

    /// Whether a stored difference still counts under `route`'s current compare rules (false:
    /// the route now ignores it). Every difference counts by default.
    fn counts(&self, route: &str, pattern: &str, kind: &str) -> bool {
        let _ = (route, pattern, kind);
        true
    }
}

/// A bare noise rule: every stored difference counts.
impl<F> PathRules for F
where
    F: Fn(&PathCounts) -> NoiseFlag + Send + Sync,
{
    fn noise(&self, counts: &PathCounts) -> NoiseFlag {
        self(counts)
    }
}

/// Sums over the noise window (`recent`) and over everything kept (`all`).
#[derive(Debug, Default, Clone, Copy)]
struct Pair {
    recent: u64,
    all: u64,
}

/// One route's evidence.
#[derive(Debug, Default)]
struct Evidence {
    compared: Pair,
    self_checked: Pair,
    /// pattern → kind → results where primary and shadow differed there.
    cross: HashMap<String, HashMap<String, Pair>>,
    /// pattern → self-checks where two primary answers differed there.
    self_diffs: HashMap<String, Pair>,
}

/// How one (pattern, kind) of a route reads now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PathClass {
    pub flag: NoiseFlag,
    /// False when the route's current rules ignore the path.
    pub counted: bool,
    /// The evidence the flag was decided on.
    pub evidence: PathCounts,
}

/// Every route's path classes, decided once per report.
pub(super) struct Classes<'a> {
    rules: &'a dyn PathRules,
    routes: HashMap<String, RouteClasses>,
}

#[derive(Debug, Default)]
struct RouteClasses {
    evidence: Evidence,
    /// pattern → kind → class, for every path with evidence.
    paths: HashMap<String, HashMap<String, PathClass>>,
}

// === impl Classes ===

impl<'a> Classes<'a> {
    /// The class of `route`'s (pattern, kind). A path without any evidence (it cannot normally
    /// appear in a report) is `undetermined`.
    pub(super) fn path(&self, route: &str, pattern: &str, kind: &str) -> PathClass {
        if let Some(c) = self
            .routes
            .get(route)
            .and_then(|r| r.paths.get(pattern))
            .and_then(|k| k.get(kind))
        {
            return *c;
        }
        let ev = self.routes.get(route).map(|r| &r.evidence);
        PathClass {
            flag: NoiseFlag::Undetermined,
            counted: self.rules.counts(route, pattern, kind),
            evidence: PathCounts {
                cross_diffs: 0,
                cross_total: ev.map_or(0, |e| e.compared.all),
                self_diffs: 0,
                self_total: ev.map_or(0, |e| e.self_checked.all),
            },
        }
    }

    /// The outcome of a result of `route` that differed on `set`: a match when every
    /// difference is now ignored, noise-only when every remaining one is noise, else a mismatch.
    pub(super) fn outcome(&self, route: &str, set: &StoredSet) -> Outcome {
        let members = match set {
            StoredSet::Members(m) => m,
            StoredSet::LegacyNoiseOnly => return Outcome::NoiseOnly,
            StoredSet::LegacyMismatch | StoredSet::Unknown => return Outcome::Mismatch,
        };
        let mut counted = false;
        let mut all_noise = true;
        for (pattern, kind) in members {
            let c = self.path(route, pattern, kind);
            if !c.counted {
                continue;
            }
            counted = true;
            if c.flag != NoiseFlag::Noise {
                all_noise = false;
                break;
            }
        }
        match (counted, all_noise) {
            (false, _) => Outcome::Match,
            (true, true) => Outcome::NoiseOnly,
            (true, false) => Outcome::Mismatch,
        }
    }
}

/// Decide the class of every path of `ev` (`route`'s evidence).
fn classify(route: &str, ev: Evidence, rules: &dyn PathRules) -> RouteClasses {
    let mut paths: HashMap<String, HashMap<String, PathClass>> = HashMap::new();
    for (pattern, kinds) in &ev.cross {
        let own = ev.self_diffs.get(pattern).copied().unwrap_or_default();
        for (kind, cross) in kinds {
            let evidence = if cross.recent > 0 {
                PathCounts {
                    cross_diffs: cross.recent,
                    cross_total: ev.compared.recent,
                    self_diffs: own.recent,
                    self_total: ev.self_checked.recent,
                }
            } else {
                PathCounts {
                    cross_diffs: cross.all,
                    cross_total: ev.compared.all,
                    self_diffs: own.all,
                    self_total: ev.self_checked.all,
                }
            };
            let class = PathClass {
                flag: rules.noise(&evidence),
                counted: rules.counts(route, pattern, kind),
                evidence,
            };
            paths
                .entry(pattern.clone())
                .or_default()
                .insert(kind.clone(), class);
        }
    }
    RouteClasses {
        evidence: ev,
        paths,
    }
}

fn pair(row: &sqlx::any::AnyRow, recent: &str, all: &str) -> Result<Pair> {
    let get = |c: &str| -> Result<u64> {
        let v: Option<i64> = row.try_get(c)?;
        Ok(v.map_or(0, count_u64))
    };
    Ok(Pair {
        recent: get(recent)?,
        all: get(all)?,
    })
}

// === impl Store ===

impl Store {
    /// Classify every differing path of `route` (or of every route) with a noise window of
    /// `window_ms`.
    pub(super) async fn classes<'a>(
        &self,
        route: Option<&str>,
        window_ms: i64,
        rules: &'a dyn PathRules,
    ) -> Result<Classes<'a>> {
        let mut f = Filter::new();
        f.eq_opt("route", route);
        let ends = format!(
            "WITH ends AS (SELECT route, MAX(bucket_ms) AS end_ms FROM shadow_buckets{} \
             GROUP BY route) ",
            f.where_sql()
        );
        let w = f.int(window_ms.max(1));
        let recent = |table: &str, column: &str| {
            format!(
                "CAST(SUM(CASE WHEN {table}.bucket_ms > e.end_ms - {w} THEN {table}.{column} \
                 ELSE 0 END) AS BIGINT)"
            )
        };
        let mut evidence: HashMap<String, Evidence> = HashMap::new();

        let rows = f
            .query(format!(
                "{ends}SELECT b.route, \
                 CAST(SUM(b.compared) AS BIGINT) AS compared_all, {} AS compared_recent, \
                 CAST(SUM(b.self_checked) AS BIGINT) AS self_all, {} AS self_recent \
                 FROM shadow_buckets b JOIN ends e ON e.route = b.route \
                 WHERE b.bucket_ms <= e.end_ms GROUP BY b.route",
                recent("b", "compared"),
                recent("b", "self_checked"),
            ))
            .fetch_all(self.pool())
            .await?;
        for row in &rows {
            let ev = evidence.entry(row.try_get("route")?).or_default();
            ev.compared = pair(row, "compared_recent", "compared_all")?;
            ev.self_checked = pair(row, "self_recent", "self_all")?;
        }

        let rows = f
            .query(format!(
                "{ends}SELECT d.route, d.pattern, d.kind, \
                 CAST(SUM(d.count) AS BIGINT) AS n_all, {} AS n_recent \
                 FROM shadow_diffs d JOIN ends e ON e.route = d.route \
                 WHERE d.bucket_ms <= e.end_ms GROUP BY d.route, d.pattern, d.kind",
                recent("d", "count"),
            ))
            .fetch_all(self.pool())
            .await?;
        for row in &rows {
            let ev = evidence.entry(row.try_get("route")?).or_default();
            ev.cross
                .entry(row.try_get("pattern")?)
                .or_default()
                .insert(row.try_get("kind")?, pair(row, "n_recent", "n_all")?);
        }

        let rows = f
            .query(format!(
                "{ends}SELECT s.route, s.pattern, \
                 CAST(SUM(s.count) AS BIGINT) AS n_all, {} AS n_recent \
                 FROM shadow_self_diffs s JOIN ends e ON e.route = s.route \
                 WHERE s.bucket_ms <= e.end_ms GROUP BY s.route, s.pattern",
                recent("s", "count"),
            ))
            .fetch_all(self.pool())
            .await?;
        for row in &rows {
            let ev = evidence.entry(row.try_get("route")?).or_default();
            ev.self_diffs
                .insert(row.try_get("pattern")?, pair(row, "n_recent", "n_all")?);
        }

        let routes = evidence
            .into_iter()
            .map(|(route, ev)| {
                let classes = classify(&route, ev, rules);
                (route, classes)
            })
            .collect();
        Ok(Classes { rules, routes })
    }

    /// The difference sets behind `ids` (see [`diffsets::load`]).
    pub(super) async fn diff_sets(&self, ids: &BTreeSet<i64>) -> Result<HashMap<i64, StoredSet>> {
        diffsets::load(self.pool(), ids).await
    }
}
