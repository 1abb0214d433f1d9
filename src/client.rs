//! The admin client behind `switchyard status | rollout | reload | history | rollback | audit |
//! report`:
//! HTTP calls to a running gateway's admin API (`--admin URL`, token from
//! `SWITCHYARD_ADMIN_TOKEN` or `--token`), printed as readable tables or, with `--json`, as
//! the API's JSON. Any failure — 401, 403, 409, a refused connection — is ONE line on stderr
//! and a non-zero exit.
//!
//! Requests are built from, and answers read into, the types of [`crate::api`], the same ones
//! the handlers answer with; `--json` prints the answer exactly as it came.
//!
//! ```text
//! export SWITCHYARD_ADMIN_TOKEN=…
//! switchyard rollout cards --tenant acme --side new --reason "pilot"
//! switchyard rollout cards --percent 25 --dry-run
//! switchyard audit --route cards --limit 20
//! ```

pub mod fleet;
mod format;
mod report;

pub use report::{ReportArgs, ReportFormat};

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{
    AuditQuery, ErrorBody, RearmRequest, ReloadRequest, RollbackRequest, RolloutRequest,
    RoutesResponse, ScheduleAction, ScheduleRequest,
};
use crate::rules::{RouteState, Side};

/// Default admin API address (SPEC `[admin] listen`).
pub const DEFAULT_ADMIN: &str = "http://127.0.0.1:9901";
/// How long one call may take (a rollout compiles the whole config).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Options every admin client command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// The running gateway's admin API.
    #[arg(long, default_value = DEFAULT_ADMIN)]
    pub admin: String,
    /// Admin token (default: $SWITCHYARD_ADMIN_TOKEN).
    #[arg(long, env = "SWITCHYARD_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `switchyard rollout ROUTE …`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RolloutArgs {
    /// The route to change.
    pub route: String,
    /// Put this tenant on `--side` (on this route).
    #[arg(long, requires = "side")]
    pub tenant: Option<String>,
    /// legacy or new (with --tenant).
    #[arg(long, requires = "tenant")]
    pub side: Option<Side>,
    /// Sticky-bucket percentage, 0–100 (0.01 resolution).
    #[arg(long)]
    pub percent: Option<f64>,
    /// legacy (kill switch), rollout, or new (cut over).
    #[arg(long, conflicts_with = "off")]
    pub state: Option<RouteState>,
    /// Everything on legacy now: the same as --state legacy.
    #[arg(long)]
    pub off: bool,
    /// Add a tenant to the route's exclude list (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Show which tenants and what share of the last hour's traffic would move; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --state new: cut over even while the shadow verdict is not_ready (audited as
    /// forced).
    #[arg(long)]
    pub force: bool,
    /// Stop the route's rollout schedule from advancing.
    #[arg(long, group = "schedule")]
    pub pause: bool,
    /// Let the route's schedule advance again (after --abort: from its first step).
    #[arg(long, group = "schedule")]
    pub resume: bool,
    /// Every request of the route to legacy now, the schedule back to its start and paused.
    #[arg(long, group = "schedule")]
    pub abort: bool,
    /// Why: kept in the audit log.
    #[arg(long)]
    pub reason: Option<String>,
}

impl RolloutArgs {
    /// The body of `POST /admin/rollout` (the dry run goes in the query string).
    pub fn request(&self) -> RolloutRequest {
        RolloutRequest {
            route: Some(self.route.clone()),
            tenant: self.tenant.clone(),
            side: self.side,
            percent: self.percent,
            state: if self.off {
                Some(RouteState::Legacy)
            } else {
                self.state
            },
            exclude_add: self.exclude.clone(),
            reason: self.reason.clone(),
            force: self.force,
            ..RolloutRequest::default()
        }
    }

    /// `--pause`, `--resume` or `--abort`: a call to `POST /admin/schedule` instead.
    pub fn schedule(&self) -> Option<ScheduleRequest> {
        let action = if self.pause {
            ScheduleAction::Pause
        } else if self.resume {
            ScheduleAction::Resume
        } else if self.abort {
            ScheduleAction::Abort
        } else {
            return None;
        };
        Some(ScheduleRequest {
            route: self.route.clone(),
            action,
            reason: self.reason.clone(),
        })
    }
}

/// `switchyard audit …` filters.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuditArgs {
    /// Only changes to this route.
    #[arg(long)]
    pub route: Option<String>,
    /// Only changes made with this token (its name).
    #[arg(long)]
    pub by: Option<String>,
    /// Only this action: rollout, reload, rollback, guard_trip, guard_rearm, schedule_step,
    /// schedule_pause, schedule_resume, schedule_abort.
    #[arg(long)]
    pub action: Option<String>,
    /// Only since: a duration back (15m, 2h), RFC 3339, or epoch milliseconds.
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many entries (newest first).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

impl AuditArgs {
    /// The query string of `GET /admin/audit`.
    pub fn query(&self) -> AuditQuery {
        AuditQuery {
            route: self.route.clone(),
            token: self.by.clone(),
            action: self.action.clone(),
            since: self.since.clone(),
            limit: Some(self.limit),
            ..AuditQuery::default()
        }
    }
}

/// One admin client call.
#[derive(Debug, Clone)]
pub enum Call {
    Status,
    Rollout(RolloutArgs),
    Reload {
        reason: Option<String>,
    },
    History,
    Rollback {
        generation: u64,
        reason: Option<String>,
    },
    Audit(AuditArgs),
    /// Re-arm a tripped guard.
    Rearm {
        route: String,
        reason: Option<String>,
    },
    /// The shadow report, or one stored sample (`--sample`).
    Report(ReportArgs),
}

impl Call {
    /// The call's path without its query string, for messages.
    fn name(&self) -> &'static str {
        match self {
            Call::Status => "/admin/status",
            Call::Rollout(args) if args.schedule().is_some() => "/admin/schedule",
            Call::Rollout(_) => "/admin/rollout",
            Call::Rearm { .. } => "/admin/guard/rearm",
            Call::Reload { .. } => "/admin/reload",
            Call::History => "/admin/history",
            Call::Rollback { .. } => "/admin/rollback",
            Call::Audit(_) => "/admin/audit",
            Call::Report(args) if args.sample.is_some() => "/admin/shadow/samples",
            Call::Report(_) => "/admin/shadow/report",
        }
    }
}

/// Why an admin call failed; `Display` is the one line the CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--admin must be an http:// URL such as {DEFAULT_ADMIN}, not {0:?}")]
    BadUrl(String),
    #[error("cannot reach the admin API at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("no answer from the admin API at {0} within {CALL_TIMEOUT:?}")]
    Timeout(String),
    /// The API answered with an error: `403 forbidden: the token "viewer" has role read; …`.
    #[error("{status} {reason}: {message}")]
    Status {
        status: u16,
        reason: String,
        message: String,
    },
    #[error("the admin API answered something that is not JSON: {0}")]
    Decode(String),
    /// JSON, but not the answer this client knows for the call: another version's gateway.
    #[error(
        "the admin API's answer to {path} is not what this client reads ({message}); is the gateway another version?"
    )]
    Unexpected { path: String, message: String },
    #[error("cannot encode the request body: {0}")]
    Encode(String),
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client of one gateway's admin API.
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: Client<HttpConnector, Full<Bytes>>,
}

// === impl AdminClient ===

impl AdminClient {
    /// A client for the admin API at `base` (`http://host:port`).
    pub fn new(base: &str, token: Option<String>) -> Result<AdminClient, ClientError> {
        let trimmed = base.trim_end_matches('/');
        let valid = trimmed
            .strip_prefix("http://")
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
        if !valid {
            return Err(ClientError::BadUrl(base.to_owned()));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Ok(AdminClient {
            base: trimmed.to_owned(),
            token: token.filter(|t| !t.trim().is_empty()),
            http: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// Run one call and return the API's JSON answer as it came (`--json` prints it).
    pub async fn call(&self, call: &Call) -> Result<Value, ClientError> {
        match call {
            Call::Status => self.get("/admin/status").await,
            Call::Rollout(args) if let Some(body) = args.schedule() => {
                self.post("/admin/schedule", &body).await
            }
            Call::Rearm { route, reason } => {
                let body = RearmRequest {
                    route: route.clone(),
                    reason: reason.clone(),
                };
                self.post("/admin/guard/rearm", &body).await
            }
            Call::Rollout(args) => {
                let path = if args.dry_run {
                    "/admin/rollout?dry_run=true"
                } else {
                    "/admin/rollout"
                };
                self.post(path, &args.request()).await
            }
            Call::Reload { reason } => {
                let body = ReloadRequest {
                    reason: reason.clone(),
                };
                self.post("/admin/reload", &body).await
            }
            Call::History => self.get("/admin/history").await,
            Call::Rollback { generation, reason } => {
                let body = RollbackRequest {
                    generation: *generation,
                    reason: reason.clone(),
                };
                self.post("/admin/rollback", &body).await
            }
            Call::Audit(args) => {
                self.get(&format!("/admin/audit?{}", audit_query(&args.query())))
                    .await
            }
            Call::Report(args) => self.get(&args.path()).await,
        }
    }

    /// Run one call and read its answer as the API's type for it: [`StatusResponse`],
    /// [`RolloutResponse`], [`ReloadResponse`] (reload and rollback), [`HistoryResponse`],
    /// [`AuditResponse`].
    ///
    /// [`StatusResponse`]: crate::api::StatusResponse
    /// [`RolloutResponse`]: crate::api::RolloutResponse
    /// [`ReloadResponse`]: crate::api::ReloadResponse
    /// [`HistoryResponse`]: crate::api::HistoryResponse
    /// [`AuditResponse`]: crate::api::AuditResponse
    pub async fn read<T: DeserializeOwned>(&self, call: &Call) -> Result<T, ClientError> {
        let json = self.call(call).await?;
        decode(call.name(), json)
    }

    /// `GET /admin/routes`: every route's rules and recent traffic.
    pub async fn routes(&self) -> Result<RoutesResponse, ClientError> {
        let path = "/admin/routes";
        decode(path, self.get(path).await?)
    }

    /// The text printed for `call`: its answer, read as its API type, as tables and sentences.
    pub async fn render(&self, call: &Call) -> Result<String, ClientError> {
        Ok(match call {
            // `status` shows the routes too: one look at the whole migration.
            Call::Status => format::status(&self.read(call).await?, &self.routes().await?),
            Call::Rollout(args) if args.schedule().is_some() => {
                format::guard_change(&self.read(call).await?)
            }
            Call::Rearm { .. } => format::guard_change(&self.read(call).await?),
            Call::Rollout(_) => format::rollout(&self.read(call).await?),
            Call::Reload { .. } | Call::Rollback { .. } => format::reload(&self.read(call).await?),
            Call::History => format::history(&self.read(call).await?),
            Call::Audit(_) => format::audit(&self.read(call).await?),
            Call::Report(args) => report::render(args, &self.call(call).await?),
        })
    }

    /// `GET path` (with its query string).
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &impl Serialize) -> Result<Value, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Encode(e.to_string()))?;
        self.send(Method::POST, path, Some(body)).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut builder = Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", token.trim()));
        }
        let bytes = match body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(body)
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(bytes))
            .map_err(|_| ClientError::BadUrl(url.clone()))?;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| {
                let message = std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| e.to_string());
                ClientError::Connect {
                    url: self.base.clone(),
                    message,
                }
            })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Decode(e.to_string()))?
                .to_bytes();
            Ok::<_, ClientError>((status, body))
        };
        let (status, body) = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| ClientError::Timeout(self.base.clone()))??;
        if !status.is_success() {
            return Err(self.status_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|_| {
            ClientError::Decode(String::from_utf8_lossy(&body).chars().take(200).collect())
        })
    }

    fn status_error(&self, status: StatusCode, body: &[u8]) -> ClientError {
        // Not every failure is the API's own (a 405 from the router, a proxy in between):
        // then the body's first line or so says what happened.
        let answer: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let mut message = match &answer {
            Some(answer) => answer.error.clone(),
            None => String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(200)
                .collect(),
        };
        if let Some(errors) = answer.and_then(|a| a.errors)
            && errors.len() > 1
        {
            message = format!("{message} ({} errors)", errors.len());
        }
        if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
            message.push_str(" (set SWITCHYARD_ADMIN_TOKEN or pass --token)");
        }
        ClientError::Status {
            status: status.as_u16(),
            reason: status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase(),
            message,
        }
    }
}

/// Read `json`, the answer to `call`, as `T`.
pub(crate) fn decode<T: DeserializeOwned>(call: &str, json: Value) -> Result<T, ClientError> {
    serde_json::from_value(json).map_err(|e| ClientError::Unexpected {
        path: call.to_owned(),
        message: e.to_string(),
    })
}

/// The query string of `GET /admin/audit`, filters in a fixed order.
fn audit_query(q: &AuditQuery) -> String {
    let mut pairs = Vec::new();
    if let Some(limit) = q.limit {
        pairs.push(format!("limit={limit}"));
    }
    let filters = [
        ("route", &q.route),
        ("target", &q.target),
        ("token", &q.token),
        ("action", &q.action),
        ("since", &q.since),
        ("until", &q.until),
    ];
    for (key, value) in filters {
        if let Some(value) = value {
            pairs.push(format!("{key}={}", encode(value)));
        }
    }
    pairs.join("&")
}

/// Percent-encode a query value (everything but unreserved characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Run `call` against the admin API and print the answer; the process's exit status.
pub fn main(args: &AdminArgs, call: Call) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => return crate::term::fail(format!("cannot start the runtime: {error}")),
    };
    let result = runtime.block_on(async {
        let client = AdminClient::new(&args.admin, args.token.clone())?;
        let json = args.json
            || matches!(&call, Call::Report(r) if r.format == ReportFormat::Json && r.sample.is_none());
        if json {
            let answer = client.call(&call).await?;
            let text = serde_json::to_string_pretty(&answer).unwrap_or_default();
            return Ok(format!("{text}\n"));
        }
        client.render(&call).await
    });
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => crate::term::fail(error),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rollout_flags_become_the_api_body() {
        let body = |args: &RolloutArgs| serde_json::to_value(args.request()).unwrap();
        let args = RolloutArgs {
            route: "cards".into(),
            tenant: Some("acme".into()),
            side: Some(Side::New),
            exclude: vec!["initech".into()],
            reason: Some("pilot".into()),
            ..RolloutArgs::default()
        };
        assert_eq!(
            body(&args),
            json!({"route": "cards", "tenant": "acme", "side": "new",
                   "exclude_add": ["initech"], "reason": "pilot"})
        );
        let off = RolloutArgs {
            route: "cards".into(),
            off: true,
            percent: Some(12.5),
            ..RolloutArgs::default()
        };
        assert_eq!(
            body(&off),
            json!({"route": "cards", "state": "legacy", "percent": 12.5})
        );
    }

    #[test]
    fn admin_urls_are_checked() {
        assert!(AdminClient::new("http://127.0.0.1:9901/", None).is_ok());
        for bad in ["https://x:1", "127.0.0.1:9901", "http://", "http://h/admin"] {
            assert!(
                matches!(AdminClient::new(bad, None), Err(ClientError::BadUrl(_))),
                "{bad}"
            );
        }
        assert_eq!(encode("a b&c/ü"), "a%20b%26c%2F%C3%BC");
    }
}
