//! Sample pairs: a reservoir of at most k redacted request/response pairs per
//! (route, pattern, kind), and the read side (`sample`, `samples_for_route`).
//!
//! Classic reservoir sampling (Algorithm R) kept in the database: `shadow_reservoir.seen`
//! counts the pairs offered for a key; the n-th offer is kept with probability k/n, replacing a
//! uniformly chosen stored one. The seen-count is bumped with an upsert before anything else
//! so that, on PostgreSQL, the row lock serialises concurrent writers (a fleet) on that key
//! until their transaction ends; SQLite has one writer anyway. A key whose stored samples were
//! removed by retention refills unconditionally until it holds k again.

use std::collections::HashMap;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Result, SamplePair, Store};

/// Default reservoir size per (route, pattern, kind).
pub const DEFAULT_RESERVOIR_K: usize = 5;

/// A stored sample pair with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSample {
    pub id: i64,
    pub route: String,
    pub tenant: Option<String>,
    /// The difference this pair illustrates; `""` with kind `match`/`error` for results
    /// without differences.
    pub pattern: String,
    pub kind: String,
    pub at_ms: i64,
    pub pair: SamplePair,
}

/// A pair offered to the reservoir of one key (already scrubbed and serialised).
#[derive(Debug, Clone)]
pub(super) struct SampleOffer {
    pub route: String,
    pub tenant: String,
    pub pattern: String,
    pub kind: String,
    pub at_ms: i64,
    pub pair_json: std::sync::Arc<String>,
}

/// Offer `offer` to its key's reservoir inside the caller's transaction; returns the new
/// sample's id when it was kept.
pub(super) async fn offer(
    conn: &mut AnyConnection,
    offer: &SampleOffer,
    k: usize,
    rng: &mut impl Rng,
) -> Result<Option<i64>> {
    if k == 0 {
        return Ok(None);
    }
    let seen: i64 = sqlx::query_scalar(
        "INSERT INTO shadow_reservoir (route, pattern, kind, seen, last_seen_ms) \
         VALUES ($1, $2, $3, 1, $4) \
         ON CONFLICT (route, pattern, kind) DO UPDATE SET seen = shadow_reservoir.seen + 1, \
         last_seen_ms = CASE WHEN excluded.last_seen_ms > shadow_reservoir.last_seen_ms \
         THEN excluded.last_seen_ms ELSE shadow_reservoir.last_seen_ms END \
         RETURNING seen",
    )
    .bind(offer.route.clone())
    .bind(offer.pattern.clone())
    .bind(offer.kind.clone())
    .bind(offer.at_ms)
    .fetch_one(&mut *conn)
    .await?;

    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM shadow_samples WHERE route = $1 AND pattern = $2 AND kind = $3 \
         ORDER BY id",
    )
    .bind(offer.route.clone())
    .bind(offer.pattern.clone())
    .bind(offer.kind.clone())
    .fetch_all(&mut *conn)
    .await?;

    if ids.len() >= k {
        let seen = u64::try_from(seen).unwrap_or(1).max(1);
        let j = rng.random_range(0..seen);
        let victim = usize::try_from(j)
            .ok()
            .filter(|j| *j < k)
            .and_then(|j| ids.get(j));
        let Some(victim) = victim else {
            return Ok(None); // j >= k: this offer is not kept.
        };
        // Also drop any surplus left over from a larger k in an earlier configuration.
        for id in std::iter::once(victim).chain(ids.get(k..).unwrap_or(&[])) {
            sqlx::query("DELETE FROM shadow_samples WHERE id = $1")
                .bind(*id)
                .execute(&mut *conn)
                .await?;
        }
    }

    let id: i64 = sqlx::query_scalar(
        "INSERT INTO shadow_samples (route, tenant, pattern, kind, at_ms, pair_json) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(offer.route.clone())
    .bind(offer.tenant.clone())
    .bind(offer.pattern.clone())
    .bind(offer.kind.clone())
    .bind(offer.at_ms)
    .bind(offer.pair_json.as_str().to_owned())
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(id))
}

const SAMPLE_COLUMNS: &str = "id, route, tenant, pattern, kind, at_ms, pair_json";

fn sample_from_row(row: &AnyRow) -> Result<StoredSample> {
    let tenant: String = row.try_get("tenant")?;
    let pair: String = row.try_get("pair_json")?;
    Ok(StoredSample {
        id: row.try_get("id")?,
        route: row.try_get("route")?,
        tenant: (!tenant.is_empty()).then_some(tenant),
        pattern: row.try_get("pattern")?,
        kind: row.try_get("kind")?,
        at_ms: row.try_get("at_ms")?,
        pair: serde_json::from_str(&pair)?,
    })
}

// === impl Store ===

impl Store {
    /// One stored pair by id.
    pub async fn sample(&self, id: i64) -> Result<Option<StoredSample>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SAMPLE_COLUMNS} FROM shadow_samples WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(sample_from_row).transpose()
    }

    /// The newest `limit` stored pairs of `route` (for a what-if re-evaluation).
    pub async fn samples_for_route(&self, route: &str, limit: usize) -> Result<Vec<StoredSample>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SAMPLE_COLUMNS} FROM shadow_samples WHERE route = $1 \
             ORDER BY at_ms DESC, id DESC LIMIT $2"
        )))
        .bind(route.to_owned())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(sample_from_row).collect()
    }

    /// Where the stored samples are (no pair text), for the report's sample id lists: one
    /// query, however many routes, tenants and paths the report has. Bounded by retention's
    /// sample cap.
    pub(super) async fn sample_index(&self, route: Option<&str>) -> Result<SampleIndex> {
        let mut f = super::sql::Filter::new();
        f.eq_opt("route", route);
        let sql = format!(
            "SELECT id, route, tenant, pattern, kind FROM shadow_samples{} ORDER BY id DESC",
            f.where_sql()
        );
        let rows = f.query(sql).fetch_all(self.pool()).await?;
        let mut index = SampleIndex::default();
        for row in &rows {
            let key = (
                row.try_get("route")?,
                row.try_get("pattern")?,
                row.try_get("kind")?,
            );
            let entry: (i64, String) = (row.try_get("id")?, row.try_get("tenant")?);
            index.0.entry(key).or_default().push(entry);
        }
        Ok(index)
    }
}

/// Sample ids (newest first) with their tenant, per (route, pattern, kind).
#[derive(Debug, Default)]
pub(super) struct SampleIndex(HashMap<(String, String, String), Vec<(i64, String)>>);

// === impl SampleIndex ===

impl SampleIndex {
    /// Ids for one key, restricted to `tenant` (`""` = no tenant) when given.
    pub(super) fn ids(
        &self,
        route: &str,
        pattern: &str,
        kind: &str,
        tenant: Option<&str>,
    ) -> Vec<i64> {
        let key = (route.to_owned(), pattern.to_owned(), kind.to_owned());
        self.0
            .get(&key)
            .map(|v| {
                v.iter()
                    .filter(|(_, t)| tenant.is_none_or(|want| want == t))
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default()
    }
}
