//! The report's reads: sums over the per-minute aggregate tables, grouped by route (or
//! route × tenant), for a time window. `matched` is the stored matches only, and mismatched /
//! noise-only are left at zero: the report derives all three from the difference sets. Sums are cast back to `BIGINT` because PostgreSQL widens
//! `SUM(bigint)` to `numeric`, which sqlx's `any` driver cannot decode.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::histogram::LatencyHistogram;
use super::report::{Counts, ReportFilter};
use super::shadow::{Side, SkipReason, bucket_floor};
use super::sql::Filter;
use super::{Result, Store, count_u64};

/// (route, tenant); the tenant is `""` when the report is not split by tenant.
pub(super) type ScopeKey = (String, String);

/// Raw sums per scope.
pub(super) type Scopes = BTreeMap<ScopeKey, RawScope>;

/// Raw sums for one scope.
#[derive(Debug, Default)]
pub(super) struct RawScope {
    pub counts: Counts,
    pub paths: Vec<RawPath>,
    /// side → histogram.
    pub latency: BTreeMap<Side, LatencyHistogram>,
    /// Differing results per difference set id (their outcome is derived on reading).
    pub sets: Vec<(i64, u64)>,
}

/// Sums for one (pattern, kind).
#[derive(Debug)]
pub(super) struct RawPath {
    pub pattern: String,
    pub kind: String,
    pub count: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

/// `route = …`, `tenant = …` and the bucket window of `filter`.
pub(super) fn window_filter(filter: &ReportFilter) -> Filter {
    let mut f = Filter::new();
    f.eq_opt("route", filter.route.as_deref());
    f.eq_opt("tenant", filter.tenant.as_deref());
    // Minute buckets: the one holding `since_ms` counts whole.
    f.ge_opt("bucket_ms", filter.since_ms.map(bucket_floor));
    f.le_opt("bucket_ms", filter.until_ms);
    f
}

fn key(row: &AnyRow, by_tenant: bool) -> Result<ScopeKey> {
    let route: String = row.try_get("route")?;
    let tenant: String = if by_tenant {
        row.try_get("tenant")?
    } else {
        String::new()
    };
    Ok((route, tenant))
}

fn sum(row: &AnyRow, column: &str) -> Result<u64> {
    let v: Option<i64> = row.try_get(column)?;
    Ok(v.map_or(0, count_u64))
}

// === impl Store ===

impl Store {
    /// Raw sums per route (or per route × tenant when `by_tenant`).
    pub(super) async fn load_scopes(
        &self,
        filter: &ReportFilter,
        by_tenant: bool,
    ) -> Result<Scopes> {
        let f = window_filter(filter);
        let w = f.where_sql();
        let group = if by_tenant { "route, tenant" } else { "route" };
        let mut scopes = Scopes::new();

        let rows = f
            .query(format!(
                "SELECT {group}, \
                 CAST(SUM(compared) AS BIGINT) AS compared, CAST(SUM(matched) AS BIGINT) AS matched, \
                 CAST(SUM(errors) AS BIGINT) AS errors, \
                 CAST(SUM(skipped) AS BIGINT) AS skipped, \
                 CAST(SUM(self_checked) AS BIGINT) AS self_checked \
                 FROM shadow_buckets{w} GROUP BY {group}"
            ))
            .fetch_all(self.pool())
            .await?;
        for row in &rows {
            let c = &mut scopes.entry(key(row, by_tenant)?).or_default().counts;
            c.compared = sum(row, "compared")?;
            c.matched = sum(row, "matched")?;
            c.errors = sum(row, "errors")?;
            c.skipped = sum(row, "skipped")?;
            c.self_checked = sum(row, "self_checked")?;
        }

        let rows = f
            .query(format!(
                "SELECT {group}, reason, CAST(SUM(count) AS BIGINT) AS n FROM shadow_skips{w} \
                 GROUP BY {group}, reason"
            ))
            .fetch_all(self.pool())
            .await?;
        for row in &rows {
            let reason: String = row.try_get("reason")?;
            // A reason this version does not know (a newer replica's) counts in `skipped` only.
            let Some(reason) = SkipReason::parse(&reason) else {
                continue;
            };
            let n = sum(row, "n")?;
            scopes
                .entry(key(row, by_tenant)?)
                .or_default()
                .counts
                .skipped_by_reason
                .insert(reason, n);
        }

        let rows = f
            .query(format!(
                "SELECT {group}, pattern, kind, CAST(SUM(count) AS BIGINT) AS n, \
                 MIN(first_seen_ms) AS first_seen_ms, MAX(last_seen_ms) AS last_seen_ms \
                 FROM shadow_diffs{w} GROUP BY {group}, pattern, kind"
            ))
            .fetch_all(self.pool())
            .await?;
        for row in &rows {
            let path = RawPath {
                pattern: row.try_get("pattern")?,
                kind: row.try_get("kind")?,
                count: sum(row, "n")?,
                first_seen_ms: row.try_get("first_seen_ms")?,
                last_seen_ms: row.try_get("last_seen_ms")?,
            };
            scopes
                .entry(key(row, by_tenant)?)
                .or_default()
                .paths
                .push(path);
        }

        let rows = f
            .query(format!(
                "SELECT {group}, side, bin, CAST(SUM(count) AS BIGINT) AS n FROM shadow_latency{w} \
                 GROUP BY {group}, side, bin"
            ))
            .fetch_all(self.pool())
            .await?;
        for row in &rows {
            let side: String = row.try_get("side")?;
            let Some(side) = Side::parse(&side) else {
                continue;
            };
            let bin: i64 = row.try_get("bin")?;
            let n = sum(row, "n")?;
            let scope = scopes.entry(key(row, by_tenant)?).or_default();
            // A negative or oversized bin (foreign data) is ignored by `add_to_bin`.
            let bin = usize::try_from(bin).unwrap_or(usize::MAX);
            scope.latency.entry(side).or_default().add_to_bin(bin, n);
        }

        let rows = f
            .query(format!(
                "SELECT {group}, set_id, CAST(SUM(count) AS BIGINT) AS n \
                 FROM shadow_set_counts{w} GROUP BY {group}, set_id"
            ))
            .fetch_all(self.pool())
            .await?;
        for row in &rows {
            let set_id: i64 = row.try_get("set_id")?;
            let n = sum(row, "n")?;
            scopes
                .entry(key(row, by_tenant)?)
                .or_default()
                .sets
                .push((set_id, n));
        }

        Ok(scopes)
    }
}
