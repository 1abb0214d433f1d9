//! `GET /admin/audit`, and the documents the admin writes record as their `before`/`after`.
//!
//! An entry's `before` and `after` stay `serde_json::Value` in [`AuditEntry`]: each action
//! records its own shape, and the log keeps entries written by earlier versions. Today:
//!
//! | action | before / after |
//! |---|---|
//! | `rollout` | [`ChangedRules`](super::ChangedRules) (a route's rules or a tenant's side; `null` when absent) |
//! | `reload`, `rollback` | [`GenerationAudit`] / [`ReloadAudit`] |

use serde::{Deserialize, Serialize};

use crate::live::ReloadOutcome;
use crate::store::AuditEntry;

/// The query string of `GET /admin/audit`; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditQuery {
    /// Only changes to this route (the same as `target`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Only changes to this target: a route's name, `tenant:<id>`, `config`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Only changes made with this token (its name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Only this action: `rollout`, `reload`, `rollback`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Epoch milliseconds, RFC 3339, or a duration back from now (`15m`, `2h`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// At most this many, newest first (default 100, at most 10 000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// The answer of `GET /admin/audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditResponse {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
}

/// The `before` of a reload or rollback: the generation that was in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationAudit {
    pub generation: u64,
    pub hash: String,
}

/// The `after` of a reload or rollback: `{result, generation, hash}`, and for a rollback the
/// generation whose rules came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadAudit {
    #[serde(flatten)]
    pub outcome: ReloadOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<u64>,
}
