//! The body of every failed admin call.

use serde::{Deserialize, Serialize};

/// `{error, kind, status}`, plus `errors` for a change the config loader rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One line for a person.
    pub error: String,
    pub kind: ErrorKind,
    /// The HTTP status, repeated.
    pub status: u16,
    /// Every config error of a rejected change (kind `invalid_config` only; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
}

/// What went wrong, for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 401: no token, an unknown one, or none configured.
    Unauthorized,
    /// 403: a read token on a write call.
    Forbidden,
    /// 413: a body beyond `[admin] max_body`.
    BodyTooLarge,
    /// 400.
    BadRequest,
    /// 404: no such call, route or generation.
    NotFound,
    /// 422: the change makes a config the loader rejects; nothing changed.
    InvalidConfig,
    /// 409: the config moved under the change; nothing changed.
    Conflict,
    /// 409: `state = "new"` refused while the route's shadow verdict is `not_ready` (the
    /// promotion gate; `force` overrides it).
    NotReady,
    /// 503: the store is not open (writes, shadow reads).
    StoreUnavailable,
    /// 503: the PostgreSQL holding a shared rule document cannot be reached; writes are
    /// refused, the rules in force keep serving.
    SourceUnavailable,
    /// 500: the change is in force but its audit entry could not be stored.
    AuditFailed,
    /// 500.
    Internal,
}
