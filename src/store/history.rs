//! Config history: each loaded generation with its full config text, so `rollback` can return
//! to any of the last [`GENERATIONS_KEPT`] and a restart can continue the numbering.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, count_u64, to_i64};

/// How many generations the store keeps; older ones are pruned on every save.
pub const GENERATIONS_KEPT: i64 = 50;

/// One loaded rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationRecord {
    pub generation: u64,
    /// Hash of `content` (as computed by the config loader).
    pub hash: String,
    pub loaded_at_ms: i64,
    /// Where the config came from: a file path, an etcd key.
    pub source: String,
    /// The full config text.
    pub content: String,
    /// `start` | `file` | `admin` | `rollback` | `sighup`.
    pub origin: String,
}

/// A generation without its config text, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationSummary {
    pub generation: u64,
    pub hash: String,
    pub loaded_at_ms: i64,
    pub source: String,
    pub origin: String,
}

// === impl Store ===

impl Store {
    /// Record a generation (replacing one saved under the same number) and prune the history
    /// to the newest [`GENERATIONS_KEPT`], in one transaction.
    pub async fn save_generation(&self, record: &GenerationRecord) -> Result<()> {
        let generation = to_i64("generation", record.generation)?;
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO config_generations \
             (generation, hash, loaded_at_ms, source, content, origin) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (generation) DO UPDATE SET hash = excluded.hash, \
             loaded_at_ms = excluded.loaded_at_ms, source = excluded.source, \
             content = excluded.content, origin = excluded.origin",
        )
        .bind(generation)
        .bind(record.hash.clone())
        .bind(record.loaded_at_ms)
        .bind(record.source.clone())
        .bind(record.content.clone())
        .bind(record.origin.clone())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM config_generations WHERE generation NOT IN \
             (SELECT generation FROM config_generations ORDER BY generation DESC LIMIT $1)",
        )
        .bind(GENERATIONS_KEPT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest `limit` generations, newest first, without their config text.
    pub async fn list_generations(&self, limit: usize) -> Result<Vec<GenerationSummary>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT generation, hash, loaded_at_ms, source, origin FROM config_generations \
             ORDER BY generation DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GenerationSummary {
                    generation: count_u64(row.try_get("generation")?),
                    hash: row.try_get("hash")?,
                    loaded_at_ms: row.try_get("loaded_at_ms")?,
                    source: row.try_get("source")?,
                    origin: row.try_get("origin")?,
                })
            })
            .collect()
    }

    /// Generation `generation` with its config text, if still kept.
    pub async fn get_generation(&self, generation: u64) -> Result<Option<GenerationRecord>> {
        let Ok(generation) = i64::try_from(generation) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT generation, hash, loaded_at_ms, source, content, origin \
             FROM config_generations WHERE generation = $1",
        )
        .bind(generation)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// The newest generation, if any: lets a restarted gateway continue the numbering.
    pub async fn latest_generation(&self) -> Result<Option<GenerationRecord>> {
        let row = sqlx::query(
            "SELECT generation, hash, loaded_at_ms, source, content, origin \
             FROM config_generations ORDER BY generation DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }
}

fn record_from_row(row: &AnyRow) -> Result<GenerationRecord> {
    Ok(GenerationRecord {
        generation: count_u64(row.try_get("generation")?),
        hash: row.try_get("hash")?,
        loaded_at_ms: row.try_get("loaded_at_ms")?,
        source: row.try_get("source")?,
        content: row.try_get("content")?,
        origin: row.try_get("origin")?,
    })
}

// === impl GenerationSummary ===

impl From<&GenerationRecord> for GenerationSummary {
    fn from(r: &GenerationRecord) -> Self {
        GenerationSummary {
            generation: r.generation,
            hash: r.hash.clone(),
            loaded_at_ms: r.loaded_at_ms,
            source: r.source.clone(),
            origin: r.origin.clone(),
        }
    }
}
