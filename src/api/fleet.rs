//! `GET /admin/fleet`, `GET /admin/config`, `POST /admin/config`: the replicas sharing a rule
//! document, and the document itself.

use serde::{Deserialize, Serialize};

use crate::live::ReloadOutcome;

/// One replica of the fleet view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub replica: String,
    /// The revision (generation) it serves.
    pub revision: Option<u64>,
    /// When it loaded that revision (epoch milliseconds).
    pub loaded_at: Option<i64>,
    pub started_at: i64,
    /// Its last heartbeat (epoch milliseconds, the database's clock).
    pub last_seen: i64,
    /// Revisions it is behind the newest.
    pub lag: u64,
    /// Whether its LISTEN connection is up (otherwise only the poll keeps it current).
    pub listening: bool,
    pub admin: Option<String>,
    pub version: Option<String>,
    /// Why it refuses the newest revision, when it does.
    pub last_error: Option<String>,
    /// The replica that answered this call.
    #[serde(rename = "self")]
    pub this: bool,
}

/// The answer of `GET /admin/fleet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetAnswer {
    /// `file` or `postgres`.
    pub source: String,
    /// The document's name (PostgreSQL).
    pub document: Option<String>,
    /// The replica that answered.
    pub replica: String,
    /// The newest revision (as far as this replica knows when the database is down).
    pub newest_revision: u64,
    /// Whether the database answered; without it only this replica is listed.
    pub source_up: bool,
    /// Why the database did not answer.
    pub error: Option<String>,
    /// Replicas seen within the last minute.
    pub replicas: Vec<Member>,
}

/// The query of `GET /admin/config`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigQuery {
    /// A past revision of a shared document (default: the newest).
    pub revision: Option<u64>,
}

/// Where the text of `GET /admin/config` was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextFrom {
    /// The file, or the database, read now.
    Source,
    /// The database could not be reached: the text in force on the answering replica.
    InForce,
}

/// The answer of `GET /admin/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigText {
    pub revision: u64,
    pub text: String,
    pub from: TextFrom,
    /// Whether this newest text is the one serving (absent for a past revision, and when the
    /// source was not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_force: Option<bool>,
    /// Why the source could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The body of `POST /admin/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// The whole new document.
    pub text: String,
    /// Refuse (409) unless the newest revision is still this one; default: the revision the
    /// answering replica serves once it caught up.
    #[serde(default)]
    pub base_revision: Option<u64>,
    /// Why: kept with the revision and in the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The answer of `POST /admin/config`: like a reload's, and which replica wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    #[serde(flatten)]
    pub outcome: ReloadOutcome,
    /// The revision in force before the call.
    pub previous_generation: u64,
    pub audit_id: i64,
    pub replica: String,
}
