//! The one table from an admin API failure to its answer: status code and JSON body
//! [`ErrorBody`] `{error, kind, status}` (plus `errors` with every config error for a rejected
//! change).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::{ErrorBody, ErrorKind};
use crate::config::edit::EditError;
use crate::config::source::SourceError;
use crate::fleet::WriteRefused;
use crate::live::ReloadError;
use crate::snapshot::BuildError;

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No usable `Authorization: Bearer` header, or an unknown token.
    #[error("{0}")]
    Unauthorized(String),
    /// A known token without the role the call needs.
    #[error("the token {name:?} has role read; {action} needs write")]
    Forbidden { name: String, action: String },
    #[error("request body larger than [admin] max_body ({limit} bytes)")]
    BodyTooLarge { limit: usize },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The change produced a config the loader rejects; nothing changed.
    #[error("the change was rejected, nothing changed: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The config file or the generation moved under the change; nothing changed.
    #[error(
        "nothing changed: the config file on disk is not the text of the running generation (edited and not loaded, or another change came first); reload or fix the file, then retry"
    )]
    Conflict,
    /// A newer revision of the shared document than the one the change was computed from.
    #[error(
        "nothing changed: revision {newest} of the shared config is newer than revision {based_on} this change was computed from (another change came first, or this replica refused revision {newest}: see GET /admin/status); re-read and retry"
    )]
    Moved { based_on: u64, newest: u64 },
    /// The config source's database cannot be reached: writes wait until it is back.
    #[error("{0}")]
    SourceUnavailable(String),
    #[error(
        "audit store unavailable: writes are refused because they could not be audited (see the gateway log; reads and traffic are unaffected)"
    )]
    StoreUnavailable,
    /// A shadow read (report, sample, timeline, what-if) without a store.
    #[error(
        "shadow store unavailable: the [store] could not be opened at start (see the gateway log), so no shadow results are kept or reported; traffic is unaffected"
    )]
    ShadowStoreUnavailable,
    /// The change is in force but its audit entry could not be stored.
    #[error(
        "the change is in force (generation {}) but its audit entry could not be stored: {message}; the entry was written to the gateway log",
        generation.map(|g| g.to_string()).unwrap_or_else(|| "unchanged".into())
    )]
    AuditFailed {
        generation: Option<u64>,
        message: String,
    },
    /// The promotion gate: `state = "new"` while the route's shadow verdict is `not_ready`.
    #[error(
        "route {route} is not ready to cut over: the shadow verdict is not_ready ({reason}); nothing changed (force it with --force, which the audit log records)"
    )]
    NotReady { route: String, reason: String },
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The status code the caller receives.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict | ApiError::Moved { .. } | ApiError::NotReady { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::StoreUnavailable
            | ApiError::ShadowStoreUnavailable
            | ApiError::SourceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::AuditFailed { .. } | ApiError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The machine-readable kind of the JSON body.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Unauthorized(_) => ErrorKind::Unauthorized,
            ApiError::Forbidden { .. } => ErrorKind::Forbidden,
            ApiError::BodyTooLarge { .. } => ErrorKind::BodyTooLarge,
            ApiError::BadRequest(_) => ErrorKind::BadRequest,
            ApiError::NotFound(_) => ErrorKind::NotFound,
            ApiError::Invalid(_) => ErrorKind::InvalidConfig,
            ApiError::Conflict | ApiError::Moved { .. } => ErrorKind::Conflict,
            ApiError::NotReady { .. } => ErrorKind::NotReady,
            ApiError::SourceUnavailable(_) => ErrorKind::SourceUnavailable,
            ApiError::StoreUnavailable | ApiError::ShadowStoreUnavailable => {
                ErrorKind::StoreUnavailable
            }
            ApiError::AuditFailed { .. } => ErrorKind::AuditFailed,
            ApiError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The JSON body the caller receives.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.to_string(),
            kind: self.kind(),
            status: self.status().as_u16(),
            errors: match self {
                ApiError::Invalid(errors) => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

impl From<ReloadError> for ApiError {
    fn from(error: ReloadError) -> Self {
        match error {
            // Config errors, and upstream clients built from the config: the text's fault.
            ReloadError::Build(BuildError::Config(errors)) => {
                ApiError::Invalid(errors.0.iter().map(ToString::to_string).collect())
            }
            ReloadError::Build(error @ BuildError::Pool(_)) => {
                ApiError::Invalid(vec![error.to_string()])
            }
            ReloadError::Conflict => ApiError::Conflict,
            ReloadError::Moved { based_on, newest } => ApiError::Moved { based_on, newest },
            ReloadError::Source(error @ SourceError::Unavailable(_)) => {
                ApiError::SourceUnavailable(format!(
                    "nothing changed: {error}; writes are refused until it is back (traffic and reads go on)"
                ))
            }
            ReloadError::UnknownGeneration(g) => ApiError::NotFound(format!(
                "generation {g} is not in the history (see GET /admin/history)"
            )),
            ReloadError::Source(_) | ReloadError::Compiler(_) => {
                ApiError::Internal(error.to_string())
            }
        }
    }
}

impl From<WriteRefused> for ApiError {
    fn from(error: WriteRefused) -> Self {
        ApiError::SourceUnavailable(error.to_string())
    }
}

impl From<EditError> for ApiError {
    fn from(error: EditError) -> Self {
        match error {
            EditError::NoRoute(_) => ApiError::NotFound(error.to_string()),
            EditError::BadPercent(_) | EditError::EmptyTenant => {
                ApiError::BadRequest(error.to_string())
            }
            // The running text did not parse or has an unusual shape: a file problem.
            EditError::Parse(_) | EditError::Shape(_) => ApiError::Invalid(vec![error.to_string()]),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        ApiError::Internal(format!("store: {error}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"switchyard-admin\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(ApiError::Conflict.status(), 409);
        assert_eq!(ApiError::StoreUnavailable.status(), 503);
        assert_eq!(ApiError::SourceUnavailable("down".into()).status(), 503);
        let moved = ApiError::Moved {
            based_on: 4,
            newest: 5,
        };
        assert_eq!(moved.status(), 409);
        assert!(moved.to_string().contains("revision 5"), "{moved}");
        assert_eq!(ApiError::Invalid(vec![]).status(), 422);
        assert_eq!(ApiError::BodyTooLarge { limit: 1 }.status(), 413);
        let forbidden = ApiError::Forbidden {
            name: "viewer".into(),
            action: "rollout".into(),
        };
        assert_eq!(forbidden.status(), 403);
        assert_eq!(
            forbidden.to_string(),
            "the token \"viewer\" has role read; rollout needs write"
        );
        let response = ApiError::Unauthorized("x".into()).into_response();
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
