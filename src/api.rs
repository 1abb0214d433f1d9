//! The admin API's contract: the request and response body of every call, one type each, shared
//! by the handlers (`admin`, which build them and answer `Json(T)`) and the admin client
//! (`client`, which reads the answers back into them and renders them). A field added, renamed
//! or retyped here changes both sides at once, and `admin`'s contract tests hold every answer of
//! the real router to its type: it must read back and write out to the very same JSON.
//!
//! This is a leaf of data types. Domain values travel as themselves — a side is a
//! [`Side`](crate::rules::Side), a route state a [`RouteState`](crate::rules::RouteState), a
//! reload result a [`ReloadOutcome`](crate::live::ReloadOutcome) — so a spelling is defined once,
//! by the enum's serde attributes. A key sent as `null` is a plain `Option`; only keys that are
//! left out of the JSON are `skip_serializing_if`. `serde_json::Value` remains where a document
//! is free-form by nature: the `before`/`after` of an audit entry (each action records its own
//! shape: [`ChangedRules`], [`GenerationAudit`], [`ReloadAudit`], [`GuardAudit`]).
//!
//! Answers do not deny unknown fields, so a client reads a newer gateway; a field added later
//! should be `#[serde(default)]` so that a newer client reads an older gateway too.
//!
//! | call | request | answer |
//! |---|---|---|
//! | `GET /admin/status` | — | [`StatusResponse`] |
//! | `GET /admin/routes` | [`RoutesQuery`] | [`RoutesResponse`] |
//! | `POST /admin/rollout` | [`RolloutRequest`], [`RolloutQuery`] | [`RolloutResponse`] |
//! | `POST /admin/reload` | [`ReloadRequest`] | [`ReloadResponse`] |
//! | `GET /admin/history` | — | [`HistoryResponse`] |
//! | `POST /admin/rollback` | [`RollbackRequest`] | [`RollbackResponse`] |
//! | `GET /admin/audit` | [`AuditQuery`] | [`AuditResponse`] |
//! | `POST /admin/guard/rearm` | [`RearmRequest`] | [`GuardChangeResponse`] |
//! | `POST /admin/schedule` | [`ScheduleRequest`] | [`GuardChangeResponse`] |
//! | any failure | — | [`ErrorBody`] |
//!
//! The shadow-diff calls (`/admin/shadow/*`) are not described here.

mod audit;
mod error;
mod fleet;
mod generations;
mod guard;
mod rollout;
mod status;

pub use audit::{AuditQuery, AuditResponse, GenerationAudit, ReloadAudit};
pub use error::{ErrorBody, ErrorKind};
pub use fleet::{
    ConfigQuery, ConfigText, FleetAnswer, Member, PushRequest, PushResponse, TextFrom,
};
pub use generations::{
    HistoryResponse, ReloadRequest, ReloadResponse, RollbackRequest, RollbackResponse,
};
pub use guard::{
    Breach, Evidence, GuardAudit, GuardChangeResponse, GuardState, GuardStatus, RearmRequest,
    ScheduleAction, ScheduleRequest, ScheduleStatus,
};
pub use rollout::{
    Basis, ChangedRules, Moves, RolloutQuery, RolloutRequest, RolloutResponse, RolloutResult,
    RouteRules, Scope, TenantRules,
};
pub use status::{
    AuditStore, Rejected, RouteView, RoutesQuery, RoutesResponse, ShadowSummary, SourceStatus,
    StatusResponse, TenantList,
};
