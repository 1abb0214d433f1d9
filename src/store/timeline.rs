//! Shadow outcomes over time: the per-minute aggregates folded into wider buckets (`5m`,
//! `1h`, …) per route, for the dashboard's mismatch-rate chart.
//!
//! The database groups by minute (`GROUP BY route, bucket_ms`, the same plain SQL on SQLite
//! and PostgreSQL); the fold into wider buckets happens here, so no database-specific date or
//! integer-division arithmetic is needed. A window of a day at one-minute resolution is at
//! most 1,440 rows per route, plus one row per minute and difference set: matched, mismatched
//! and noise-only are derived exactly as in the report (same classification, see
//! [`super::classify`]), so the chart and the report agree.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sqlx::Row;

use super::classify::PathRules;
use super::report::{ReportFilter, ReportPolicy, derive};
use super::report_query::window_filter;
use super::shadow::BUCKET_MS;
use super::{Result, Store, count_u64};

/// Outcome counts of one route in one time bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TimelinePoint {
    /// Start of the bucket, epoch milliseconds (a multiple of the bucket width).
    pub at_ms: i64,
    pub compared: u64,
    pub matched: u64,
    pub mismatched: u64,
    pub noise_only: u64,
    pub errors: u64,
    pub skipped: u64,
    /// `mismatched / compared`; `None` without comparisons.
    pub mismatch_rate: Option<f64>,
    /// `errors / compared`; `None` without comparisons.
    pub error_rate: Option<f64>,
}

/// One route's points, oldest first; buckets without any result are left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteTimeline {
    pub route: String,
    pub points: Vec<TimelinePoint>,
}

// === impl Store ===

impl Store {
    /// Outcome counts per route in buckets of `bucket_ms` (rounded up to whole minutes, at
    /// least one), within `filter`'s route, tenant and window (`by_tenant` is ignored);
    /// outcomes derived under `policy`'s noise window and `rules`, as in [`Store::report`].
    pub async fn timeline(
        &self,
        filter: &ReportFilter,
        bucket_ms: i64,
        policy: &ReportPolicy,
        rules: &dyn PathRules,
    ) -> Result<Vec<RouteTimeline>> {
        let width = bucket_width(bucket_ms);
        let classes = self
            .classes(filter.route.as_deref(), policy.noise_window_ms, rules)
            .await?;
        let f = window_filter(filter);
        let rows = f
            .query(format!(
                "SELECT route, bucket_ms, \
                 CAST(SUM(compared) AS BIGINT) AS compared, CAST(SUM(matched) AS BIGINT) AS matched, \
                 CAST(SUM(errors) AS BIGINT) AS errors, CAST(SUM(skipped) AS BIGINT) AS skipped \
                 FROM shadow_buckets{} GROUP BY route, bucket_ms",
                f.where_sql()
            ))
            .fetch_all(self.pool())
            .await?;
        let mut by_route: BTreeMap<String, BTreeMap<i64, TimelinePoint>> = BTreeMap::new();
        for row in &rows {
            let route: String = row.try_get("route")?;
            let minute: i64 = row.try_get("bucket_ms")?;
            let at_ms = minute - minute.rem_euclid(width);
            let p = by_route
                .entry(route)
                .or_default()
                .entry(at_ms)
                .or_insert_with(|| TimelinePoint {
                    at_ms,
                    ..TimelinePoint::default()
                });
            let n = |column: &str| -> Result<u64> {
                let v: Option<i64> = row.try_get(column)?;
                Ok(v.map_or(0, count_u64))
            };
            p.compared += n("compared")?;
            p.matched += n("matched")?;
            p.errors += n("errors")?;
            p.skipped += n("skipped")?;
        }

        // (route, point) → differing results per set.
        let mut differing: BTreeMap<(String, i64), Vec<(i64, u64)>> = BTreeMap::new();
        let rows = f
            .query(format!(
                "SELECT route, bucket_ms, set_id, CAST(SUM(count) AS BIGINT) AS n \
                 FROM shadow_set_counts{} GROUP BY route, bucket_ms, set_id",
                f.where_sql()
            ))
            .fetch_all(self.pool())
            .await?;
        for row in &rows {
            let route: String = row.try_get("route")?;
            let minute: i64 = row.try_get("bucket_ms")?;
            let n: Option<i64> = row.try_get("n")?;
            differing
                .entry((route, minute - minute.rem_euclid(width)))
                .or_default()
                .push((row.try_get("set_id")?, n.map_or(0, count_u64)));
        }
        let ids: BTreeSet<i64> = differing.values().flatten().map(|(id, _)| *id).collect();
        let sets = self.diff_sets(&ids).await?;
        for ((route, at_ms), counted) in &differing {
            let Some(p) = by_route.get_mut(route).and_then(|r| r.get_mut(at_ms)) else {
                continue;
            };
            (p.matched, p.mismatched, p.noise_only) =
                derive(&classes, &sets, route, p.matched, counted);
        }
        Ok(by_route
            .into_iter()
            .map(|(route, points)| RouteTimeline {
                route,
                points: points
                    .into_values()
                    .map(|mut p| {
                        let rate = |n: u64| (p.compared > 0).then(|| n as f64 / p.compared as f64);
                        p.mismatch_rate = rate(p.mismatched);
                        p.error_rate = rate(p.errors);
                        p
                    })
                    .collect(),
            })
            .collect())
    }
}

/// A bucket width in whole minutes, at least one.
fn bucket_width(bucket_ms: i64) -> i64 {
    let minutes = bucket_ms.max(1).saturating_add(BUCKET_MS - 1) / BUCKET_MS;
    minutes.max(1).saturating_mul(BUCKET_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_are_whole_minutes() {
        assert_eq!(bucket_width(0), BUCKET_MS);
        assert_eq!(bucket_width(-5), BUCKET_MS);
        assert_eq!(bucket_width(1), BUCKET_MS);
        assert_eq!(bucket_width(300_000), 300_000);
        assert_eq!(bucket_width(300_001), 360_000);
        assert!(bucket_width(i64::MAX) > 0);
    }
}
