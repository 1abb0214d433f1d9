//! The audit log: every admin write — who (the token's name), when, what, before → after, why,
//! and the generation it produced. Appended directly (the admin call waits for it: a write
//! that cannot be audited should say so), listed newest first.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::Filter;
use super::{Result, Store, count_u64, to_i64};

/// Default and maximum number of entries one listing returns.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

/// One audited admin action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Assigned by the store; ignored by [`Store::append_audit`].
    #[serde(default)]
    pub id: i64,
    pub at_ms: i64,
    pub token_name: String,
    /// `rollout`, `reload`, `rollback`, …
    pub action: String,
    /// What was acted on, e.g. a route name.
    pub target: String,
    pub before: Value,
    pub after: Value,
    pub reason: Option<String>,
    pub generation: Option<u64>,
    pub dry_run: bool,
    /// The replica that made the change (its `--replica-id`).
    #[serde(default)]
    pub replica: Option<String>,
}

/// Which entries [`Store::list_audit`] returns; every field is optional (admin query string).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditFilter {
    /// At most this many (default 100, capped at 10 000).
    pub limit: Option<usize>,
    /// Only this target (route name …).
    #[serde(alias = "route")]
    pub target: Option<String>,
    /// Only this token name.
    pub token: Option<String>,
    /// Only entries at or after this instant.
    pub since_ms: Option<i64>,
    /// Only entries at or before this instant.
    pub until_ms: Option<i64>,
    /// Only this action.
    pub action: Option<String>,
}

// === impl Store ===

impl Store {
    /// Append `entry` (its `id` is ignored) and return the id it was stored under.
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<i64> {
        let generation = entry
            .generation
            .map(|g| to_i64("generation", g))
            .transpose()?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_log \
             (at_ms, token_name, action, target, before_json, after_json, reason, generation, dry_run, replica) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(entry.at_ms)
        .bind(entry.token_name.clone())
        .bind(entry.action.clone())
        .bind(entry.target.clone())
        .bind(serde_json::to_string(&entry.before)?)
        .bind(serde_json::to_string(&entry.after)?)
        .bind(entry.reason.clone())
        .bind(generation)
        .bind(i64::from(entry.dry_run))
        .bind(entry.replica.clone())
        .fetch_one(self.pool())
        .await?;
        Ok(id)
    }

    /// Entries matching `filter`, newest first.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let mut f = Filter::new();
        f.eq_opt("target", filter.target.as_deref());
        f.eq_opt("token_name", filter.token.as_deref());
        f.eq_opt("action", filter.action.as_deref());
        f.ge_opt("at_ms", filter.since_ms);
        f.le_opt("at_ms", filter.until_ms);
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        let limit = f.int(i64::try_from(limit).unwrap_or(i64::MAX));
        let sql = format!(
            "SELECT id, at_ms, token_name, action, target, before_json, after_json, reason, \
             generation, dry_run, replica FROM audit_log{} ORDER BY at_ms DESC, id DESC LIMIT {limit}",
            f.where_sql()
        );
        let rows = f.query(sql).fetch_all(self.pool()).await?;
        rows.iter().map(entry_from_row).collect()
    }
}

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry> {
    let before: String = row.try_get("before_json")?;
    let after: String = row.try_get("after_json")?;
    let generation: Option<i64> = row.try_get("generation")?;
    let dry_run: i64 = row.try_get("dry_run")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at_ms: row.try_get("at_ms")?,
        token_name: row.try_get("token_name")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        before: serde_json::from_str(&before)?,
        after: serde_json::from_str(&after)?,
        reason: row.try_get("reason")?,
        generation: generation.map(count_u64),
        dry_run: dry_run != 0,
        replica: row.try_get("replica")?,
    })
}
