//! `POST /admin/reload`, `GET /admin/history`, `POST /admin/rollback`: config generations.

use serde::{Deserialize, Serialize};

use crate::live::{HistoryEntry, ReloadOutcome};

/// The body of `POST /admin/reload` (none at all is the same as `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReloadRequest {
    /// Why: kept in the audit log.
    pub reason: Option<String>,
}

/// The body of `POST /admin/rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The generation whose rules come back (as a new generation).
    pub generation: u64,
    /// Why: kept in the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The answer of `POST /admin/reload`: `{result, generation, hash}` of the outcome, and where
/// it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadResponse {
    #[serde(flatten)]
    pub outcome: ReloadOutcome,
    /// The generation in force before the call.
    pub previous_generation: u64,
    pub audit_id: i64,
}

/// The answer of `POST /admin/rollback`: the earlier rules are loaded as a new generation, and
/// the answer says so like a reload's.
pub type RollbackResponse = ReloadResponse;

/// The answer of `GET /admin/history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryResponse {
    /// The generation in force.
    pub current: u64,
    /// Past generations, newest first.
    pub generations: Vec<HistoryEntry>,
}
