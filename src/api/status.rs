//! `GET /admin/status` and `GET /admin/routes`: the generation in force and each route's
//! effective rules with its recent traffic.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{GuardStatus, RouteRules};
use crate::live::{ReloadFailure, Trigger};
use crate::rules::{Side, StickyKey};
use crate::traffic::{TenantTraffic, Windows};
use crate::upstream::UpstreamHealth;

/// The answer of `GET /admin/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusResponse {
    /// The generation in force.
    pub generation: u64,
    /// Its config hash.
    pub hash: String,
    /// When it was put in force (epoch milliseconds).
    #[serde(with = "crate::clock::serde_epoch_ms")]
    pub loaded_at: SystemTime,
    pub trigger: Trigger,
    /// Where the config comes from (the file's path, or the PostgreSQL document).
    pub config: String,
    /// This replica's name (`--replica-id`, default the host name).
    pub replica: String,
    /// The rule document's source and whether it can be reached.
    pub source: SourceStatus,
    /// How many routes the generation has.
    pub routes: usize,
    /// The last rejected reload, while the generation it failed to replace is in force; `null`
    /// otherwise.
    pub last_reload_error: Option<ReloadFailure>,
    /// Every upstream's origins and their passive health.
    pub upstreams: Vec<UpstreamHealth>,
    /// Every route with a `guard` or a `rollout` schedule, in file order.
    #[serde(default)]
    pub guards: Vec<GuardStatus>,
    pub audit_store: AuditStore,
}

/// The rule document's source: a file, or a PostgreSQL document shared by a fleet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceStatus {
    File {
        up: bool,
    },
    Postgres {
        /// The document's name (`?document=`).
        document: String,
        /// Whether the database answers; while it does not, admin writes are refused and the
        /// rules in force keep serving.
        up: bool,
        /// Why it is down.
        down_reason: Option<String>,
        /// Whether the LISTEN connection is open (else only the poll notices new revisions).
        listening: bool,
        /// The newest revision this replica knows of.
        newest_revision: u64,
        poll_interval_ms: u64,
        /// A newest revision this replica would not load.
        rejected: Option<Rejected>,
        /// The local cache file of the last good revision.
        cache: Option<String>,
    },
}

/// A newest revision of the shared document that does not build here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub revision: u64,
    pub message: String,
}

/// Whether the audit store is open (writes are refused with 503 while it is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditStore {
    Ok,
    Unavailable,
}

// === impl AuditStore ===

impl AuditStore {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditStore::Ok => "ok",
            AuditStore::Unavailable => "unavailable",
        }
    }
}

/// The query string of `GET /admin/routes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutesQuery {
    /// Only this route (404 when there is none of that name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// The answer of `GET /admin/routes[?route=NAME]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoutesResponse {
    pub generation: u64,
    /// In file order.
    pub routes: Vec<RouteView>,
    /// Tenants with a side on every route (`[tenants.<id>] side`), by tenant.
    pub tenant_sides: BTreeMap<String, Side>,
}

/// One route of `GET /admin/routes`: its effective rules, who is on the new side, and its
/// recent traffic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteView {
    pub name: String,
    /// Path patterns as written.
    pub paths: Vec<String>,
    /// `null`: any method.
    pub methods: Option<Vec<String>>,
    /// The sticky-bucket salt (the route's name unless set).
    pub salt: String,
    pub sticky: StickyKey,
    /// The upstream of each side; `new` is `null` on a route without a new side.
    pub legacy: String,
    pub new: Option<String>,
    /// `state`, `percent`, `tenants`, `exclude`: what a rollout changes.
    #[serde(flatten)]
    pub rules: RouteRules,
    /// Each table matches a tenant whose directory attributes include all of its pairs.
    pub cohorts: Vec<BTreeMap<String, String>>,
    /// Known tenants the route sends to the new side.
    pub tenants_on_new: TenantList,
    /// Whether a failed new side is retried on legacy.
    pub fallback: bool,
    pub shadow: ShadowSummary,
    /// Requests per side over the last 1, 15 and 60 minutes.
    pub traffic: Windows,
    /// The route's busiest tenants, busiest first (at most 10).
    pub busiest_tenants: Vec<TenantTraffic>,
}

/// A count of tenants with the first of their names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantList {
    /// All of them.
    pub count: usize,
    /// Sorted; at most 100.
    pub tenants: Vec<String>,
}

/// Whether a route is shadowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowSummary {
    /// The route has a `shadow` table and `[shadow]` is enabled.
    pub on: bool,
    /// The shadowed share of requests, 0–100; `null` without a `shadow` table.
    pub percent: Option<f64>,
}
