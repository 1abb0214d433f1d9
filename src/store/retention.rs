//! Retention: shadow aggregates and samples older than a maximum age go, and samples are capped
//! by count (oldest first). The audit log and the config history are not touched: the one is a
//! record of who changed what, the other prunes itself to the newest generations.

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use super::shadow::BUCKET_MS;
use super::{Result, Store};

/// Rows deleted by one [`Store::retain`] pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetainStats {
    /// Aggregate rows (outcome, skip, diff, self-diff and latency buckets).
    pub aggregate_rows: u64,
    pub samples_by_age: u64,
    pub samples_by_count: u64,
    /// Reservoir seen-counts of keys not offered a sample within the window.
    pub reservoir_rows: u64,
    /// Interned patterns and difference sets no result used within the window.
    pub interned_rows: u64,
}

/// Tables holding per-minute aggregates, all keyed by `bucket_ms`.
const AGGREGATE_TABLES: [&str; 6] = [
    "shadow_buckets",
    "shadow_skips",
    "shadow_diffs",
    "shadow_self_diffs",
    "shadow_latency",
    "shadow_set_counts",
];

/// Interned rows, kept while some result within the window used them. Patterns before sets:
/// the order the batch writer upserts them in.
const INTERNED_TABLES: [&str; 2] = ["shadow_patterns", "shadow_diff_sets"];

// === impl Store ===

impl Store {
    /// Delete aggregates and samples older than `max_age` at `now_ms`, then keep at most
    /// `max_samples` samples (the newest).
    pub async fn retain_at(
        &self,
        now_ms: i64,
        max_age: Duration,
        max_samples: usize,
    ) -> Result<RetainStats> {
        let age = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms.saturating_sub(age);
        let mut stats = RetainStats::default();
        let mut tx = self.pool().begin().await?;

        // A minute bucket goes once all of it is older than the cutoff.
        let last_expired_bucket = cutoff.saturating_sub(BUCKET_MS);
        for table in AGGREGATE_TABLES {
            let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE bucket_ms <= $1"
            )))
            .bind(last_expired_bucket)
            .execute(&mut *tx)
            .await?;
            stats.aggregate_rows += done.rows_affected();
        }

        // A set's last use is never newer than its patterns', and a counter row's minute never
        // newer than its set's last use: an interned row last used in or before the last
        // expired minute is no longer referenced by any counter row kept.
        for table in INTERNED_TABLES {
            let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE last_used_ms <= $1"
            )))
            .bind(last_expired_bucket)
            .execute(&mut *tx)
            .await?;
            stats.interned_rows += done.rows_affected();
        }

        stats.samples_by_age = sqlx::query("DELETE FROM shadow_samples WHERE at_ms < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        stats.reservoir_rows = sqlx::query("DELETE FROM shadow_reservoir WHERE last_seen_ms < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();

        // The (max_samples+1)-th newest sample and everything older go.
        let offset = i64::try_from(max_samples).unwrap_or(i64::MAX);
        let boundary = sqlx::query(
            "SELECT at_ms, id FROM shadow_samples ORDER BY at_ms DESC, id DESC LIMIT 1 OFFSET $1",
        )
        .bind(offset)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = boundary {
            let at: i64 = row.try_get("at_ms")?;
            let id: i64 = row.try_get("id")?;
            stats.samples_by_count = sqlx::query(
                "DELETE FROM shadow_samples WHERE at_ms < $1 OR (at_ms = $1 AND id <= $2)",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }

        tx.commit().await?;
        Ok(stats)
    }
}
