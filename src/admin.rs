//! The admin listener: the operator's JSON API and `/metrics`.
//!
//! Every `/admin/*` call needs `Authorization: Bearer <token>` with a token from
//! `[admin] tokens_file` (loaded and reloaded with the config): none or unknown → 401, a read
//! token on a write call (any method but GET/HEAD, except the what-if re-evaluation
//! `POST /admin/shadow/whatif`, which changes nothing) → 403. Loopback is not trusted by itself;
//! without a tokens file the API answers 401 and says how to configure one. `/metrics` stays
//! open so Prometheus scrapers need no secret: it carries counters only, no tenant names —
//! keep the admin listener on a private address.
//!
//! The shadow-diff reads (`/admin/shadow/report`, `timeline`, `samples/{id}`, `whatif`) are in
//! [`shadow`], [`sample`] and [`whatif`]; `GET /` is the dashboard ([`dashboard`]), a static
//! page served without a token that holds no data and reads everything from this API.
//!
//! Every call but the shadow reads answers with a type of [`crate::api`], the contract it shares
//! with the admin client; `contract_tests` holds the router's answers to those types.
//!
//! Writes (`rollout`, `reload`, `rollback`) are serialised, go through the same
//! validate-then-swap pipeline as a hand edit of the config file (which they rewrite,
//! keeping its comments), and are recorded in the audit log of the store before they answer.
//! When the store could not be opened at start, writes answer 503: an unaudited change is
//! not made. Reads and traffic are unaffected. With the rules in PostgreSQL, writes also
//! answer 503 while that database cannot be reached, and each write first brings this replica
//! up to the newest revision, so it is computed from it ([`fleet`]: `GET /admin/fleet`,
//! `GET|POST /admin/config`).
//!
//! ```text
//! curl -H "authorization: Bearer $TOKEN" http://127.0.0.1:9901/admin/status
//! curl -H "authorization: Bearer $TOKEN" -d '{"route":"cards","tenant":"acme","side":"new"}' \
//!      'http://127.0.0.1:9901/admin/rollout?dry_run=true'
//! ```

mod api;
mod auth;
#[cfg(test)]
mod contract_tests;
mod dashboard;
mod error;
mod fleet;
mod guard;

use fleet::Write;
mod rollout;
mod sample;
mod shadow;
mod whatif;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Request, State};
use axum::http::header;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::fleet::Fleet;
use crate::guard::Guard;
use crate::live::Live;
use crate::store::{AuditEntry, Store};
use crate::telemetry::Metrics;
use crate::traffic::Traffic;

pub use auth::{Caller, Role};
pub use error::ApiError;
pub use sample::{Row, curl_line, side_by_side};
pub use shadow::{DEFAULT_TARGET_PARITY, MIN_SAMPLES, policy, route_figures};

/// What the admin API works with: the live rules, the store, recent traffic, metrics.
pub struct AdminState {
    pub live: Arc<Live>,
    /// `None` when the store could not be opened at start: writes are then refused (503).
    pub store: Option<Store>,
    pub traffic: Arc<Traffic>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    /// This replica in the fleet (its identity; the shared document's state).
    pub fleet: Arc<Fleet>,
    /// Guards and schedules: their state for `status`.
    pub guard: Arc<Guard>,
    /// Serialises admin writes: each edit is computed from the generation in force.
    writes: tokio::sync::Mutex<()>,
}

// === impl AdminState ===

impl AdminState {
    /// The admin API's state.
    pub fn new(
        live: Arc<Live>,
        store: Option<Store>,
        traffic: Arc<Traffic>,
        metrics: Arc<Metrics>,
        clock: Clock,
        fleet: Arc<Fleet>,
        guard: Arc<Guard>,
    ) -> Arc<AdminState> {
        Arc::new(AdminState {
            live,
            store,
            traffic,
            metrics,
            clock,
            fleet,
            guard,
            writes: tokio::sync::Mutex::new(()),
        })
    }

    /// The store, or 503: every write must be audited.
    fn store(&self) -> Result<&Store, ApiError> {
        self.store.as_ref().ok_or(ApiError::StoreUnavailable)
    }

    /// Append an audit entry; the caller has made its change already, so a failure here says
    /// so instead of hiding it (and the entry goes to the log, the last place it can be kept).
    async fn audit(&self, mut entry: AuditEntry) -> Result<i64, ApiError> {
        let store = self.store()?;
        entry.at_ms = self.clock.now_ms();
        entry.replica = Some(self.fleet.replica().to_owned());
        match store.append_audit(&entry).await {
            Ok(id) => Ok(id),
            Err(error) => {
                let record = serde_json::to_string(&entry).unwrap_or_default();
                tracing::error!("audit entry could not be stored ({error}): {record}");
                Err(ApiError::AuditFailed {
                    generation: entry.generation,
                    message: error.to_string(),
                })
            }
        }
    }
}

/// The admin router (also usable without a socket, e.g. with `tower::ServiceExt::oneshot`).
pub fn router(state: Arc<AdminState>) -> Router {
    let api = Router::new()
        .route("/admin/status", get(api::status))
        .route("/admin/routes", get(api::routes))
        .route("/admin/history", get(api::history))
        .route("/admin/audit", get(api::audit))
        .route("/admin/rollout", post(rollout::rollout))
        .route("/admin/reload", post(api::reload))
        .route("/admin/rollback", post(api::rollback))
        .route("/admin/guard/rearm", post(guard::rearm))
        .route("/admin/schedule", post(guard::schedule))
        .route("/admin/fleet", get(fleet::fleet))
        .route("/admin/config", get(fleet::pull).post(fleet::push))
        .route("/admin/shadow/report", get(shadow::report))
        .route("/admin/shadow/timeline", get(shadow::timeline))
        .route("/admin/shadow/samples/{id}", get(sample::sample))
        .route("/admin/shadow/whatif", post(whatif::whatif))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .merge(dashboard::router())
        .merge(api)
        .fallback(not_found)
        .with_state(state)
}

/// Serve the admin API on `listener` until shutdown.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let result = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await;
    if let Err(error) = result {
        tracing::error!("admin listener failed: {error}");
    }
}

async fn metrics(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!("no admin call {}", request.uri().path()))
}

/// A JSON request body, read up to `[admin] max_body` (413 beyond); an empty body reads as
/// `{}` so calls without parameters need none.
pub struct AdminJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AdminState>> for AdminJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<AdminState>) -> Result<Self, ApiError> {
        let limit = state.live.load().rules.admin.max_body;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::BodyTooLarge { limit });
        }
        let body = http_body_util::Limited::new(request.into_body(), limit);
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return Err(ApiError::BodyTooLarge { limit });
            }
            Err(error) => return Err(ApiError::BadRequest(format!("reading the body: {error}"))),
        };
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(AdminJson)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// Parse the query string into `T` (400 with the reason otherwise).
fn query<T: DeserializeOwned>(uri: &axum::http::Uri) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

/// Readiness for load balancers and Kubernetes probes: open like `/metrics`, and it tells
/// nothing but that the gateway is up with rules loaded.
async fn readyz() -> &'static str {
    "ready\n"
}
