//! The fleet calls: `GET /admin/fleet` (every replica seen in the last minute, the revision it
//! serves, its lag), `GET /admin/config` (the document's text) and `POST /admin/config` (push a
//! whole new text: validated by the same build as a reload, written with compare-and-set,
//! audited as `push`) — and the gate every admin write passes first.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::Uri;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::audit_entry;
use super::{AdminJson, AdminState, ApiError, Caller, query};
use crate::config::source::{Author, SourceError};
use crate::fleet::FleetAnswer;
use crate::live::{ReloadOutcome, Trigger};

/// What an admin write is about to do, for [`AdminState::begin_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    /// Computes nothing from the document and changes nothing (a dry run).
    DryRun,
    /// Re-reads the document: it needs the source, and reads the newest revision itself.
    Reload,
    /// Computes a new document from the one in force (rollout, push, rollback).
    Edit,
}

// === impl AdminState ===

impl AdminState {
    /// The gate of every admin write: the audit store is there, writes are serialised, and —
    /// unless nothing changes — the config source is reachable (503 otherwise); an edit of a
    /// shared document is first brought up to its newest revision, so it is computed from it.
    pub(super) async fn begin_write(
        &self,
        write: Write,
    ) -> Result<tokio::sync::MutexGuard<'_, ()>, ApiError> {
        self.store()?;
        let guard = self.writes.lock().await;
        if write != Write::DryRun {
            let catch_up = write == Write::Edit;
            self.fleet.check_writable(&self.live, catch_up).await?;
        }
        Ok(guard)
    }
}

/// `GET /admin/fleet`.
pub async fn fleet(State(state): State<Arc<AdminState>>) -> Json<FleetAnswer> {
    Json(state.fleet.view(&state.live).await)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PullQuery {
    /// A past revision of a shared document (default: the newest).
    revision: Option<u64>,
}

/// `GET /admin/config[?revision=N]`: the document's current text (or a past revision's).
/// When the database cannot be reached, the text in force is returned and `from` says so.
pub async fn pull(State(state): State<Arc<AdminState>>, uri: Uri) -> Result<Json<Value>, ApiError> {
    let q: PullQuery = query(&uri)?;
    let live = &state.live;
    let source = live.source();
    if let Some(revision) = q.revision {
        let Some(pg) = source.postgres() else {
            return Err(ApiError::BadRequest(
                "?revision= needs a PostgreSQL config source; a file has no revisions".into(),
            ));
        };
        let text = pg.read_revision(revision).await.map_err(|e| match e {
            SourceError::NoRevision { .. } => ApiError::NotFound(e.to_string()),
            other => ApiError::SourceUnavailable(other.to_string()),
        })?;
        return Ok(Json(
            json!({"revision": revision, "text": text, "from": "source"}),
        ));
    }
    let running = live.load();
    let answer = match source.read().await {
        Ok(document) => json!({
            "revision": document.revision.unwrap_or(running.generation),
            "text": document.text,
            "from": "source",
            "in_force": document.revision.is_none_or(|r| r == running.generation),
        }),
        Err(error) => json!({
            "revision": running.generation,
            "text": running.text.as_ref(),
            "from": "in_force",
            "error": error.to_string(),
        }),
    };
    Ok(Json(answer))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// The whole new document.
    text: String,
    /// Refuse (409) unless the newest revision is still this one; default: the revision this
    /// replica serves once it caught up.
    #[serde(default)]
    base_revision: Option<u64>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /admin/config {text, base_revision?, reason?}`: replace the document.
pub async fn push(
    State(state): State<Arc<AdminState>>,
    Extension(caller): Extension<Caller>,
    AdminJson(request): AdminJson<PushRequest>,
) -> Result<Json<Value>, ApiError> {
    let _write = state.begin_write(Write::Edit).await?;
    let before = state.live.load();
    let base = request.base_revision.unwrap_or(before.generation);
    let author = Author {
        name: Some(caller.name.clone()),
        reason: request.reason.clone(),
    };
    let (outcome, _) = state
        .live
        .write_and_load_as(Some(base), request.text, Trigger::Admin, &author)
        .await?;
    let (result, generation, hash) = match &outcome {
        ReloadOutcome::Applied { generation, hash } => ("applied", *generation, hash.clone()),
        ReloadOutcome::Unchanged { generation, hash } => ("unchanged", *generation, hash.clone()),
    };
    let entry = audit_entry(
        &caller,
        "push",
        "config",
        &json!({"generation": before.generation, "hash": before.rules.hash}),
        &json!({"generation": generation, "hash": hash, "result": result}),
        request.reason,
        Some(generation),
        false,
    )?;
    let audit_id = state.audit(entry).await?;
    let mut body = json!(outcome);
    body["previous_generation"] = json!(before.generation);
    body["audit_id"] = json!(audit_id);
    body["replica"] = json!(state.fleet.replica());
    Ok(Json(body))
}
