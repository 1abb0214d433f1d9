//! The admin client behind `switchyard status | rollout | reload | history | rollback | audit |
//! report`:
//! HTTP calls to a running gateway's admin API (`--admin URL`, token from
//! `SWITCHYARD_ADMIN_TOKEN` or `--token`), printed as readable tables or, with `--json`, as
//! the API's JSON. Any failure — 401, 403, 409, a refused connection — is ONE line on stderr
//! and a non-zero exit.
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
use serde_json::{Value, json};

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
    pub side: Option<String>,
    /// Sticky-bucket percentage, 0–100 (0.01 resolution).
    #[arg(long)]
    pub percent: Option<f64>,
    /// legacy (kill switch), rollout, or new (cut over).
    #[arg(long, conflicts_with = "off")]
    pub state: Option<String>,
    /// Everything on legacy now: the same as --state legacy.
    #[arg(long)]
    pub off: bool,
    /// Add a tenant to the route's exclude list (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Show which tenants and what share of the last hour's traffic would move; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Why: kept in the audit log.
    #[arg(long)]
    pub reason: Option<String>,
}

impl RolloutArgs {
    /// The JSON body of `POST /admin/rollout`.
    pub fn body(&self) -> Value {
        let state = if self.off {
            Some("legacy".to_owned())
        } else {
            self.state.clone()
        };
        let mut body = json!({ "route": self.route });
        let fields = [
            ("tenant", self.tenant.as_ref().map(|t| json!(t))),
            ("side", self.side.as_ref().map(|s| json!(s))),
            ("percent", self.percent.map(|p| json!(p))),
            ("state", state.map(|s| json!(s))),
            (
                "exclude_add",
                (!self.exclude.is_empty()).then(|| json!(self.exclude)),
            ),
            ("reason", self.reason.as_ref().map(|r| json!(r))),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                body[key] = value;
            }
        }
        body
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
    /// Only this action: rollout, reload, rollback.
    #[arg(long)]
    pub action: Option<String>,
    /// Only since: a duration back (15m, 2h), RFC 3339, or epoch milliseconds.
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many entries (newest first).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
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
    /// The shadow report, or one stored sample (`--sample`).
    Report(ReportArgs),
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

    /// Run one call and return the API's JSON answer.
    pub async fn call(&self, call: &Call) -> Result<Value, ClientError> {
        match call {
            Call::Status => self.get("/admin/status").await,
            Call::Rollout(args) => {
                let path = if args.dry_run {
                    "/admin/rollout?dry_run=true"
                } else {
                    "/admin/rollout"
                };
                self.post(path, &args.body()).await
            }
            Call::Reload { reason } => self.post("/admin/reload", &json!({"reason": reason})).await,
            Call::History => self.get("/admin/history").await,
            Call::Rollback { generation, reason } => {
                let body = json!({"generation": generation, "reason": reason});
                self.post("/admin/rollback", &body).await
            }
            Call::Audit(args) => {
                let mut q = format!("limit={}", args.limit);
                let filters = [
                    ("route", &args.route),
                    ("token", &args.by),
                    ("action", &args.action),
                    ("since", &args.since),
                ];
                for (key, value) in filters {
                    if let Some(value) = value {
                        q.push_str(&format!("&{key}={}", encode(value)));
                    }
                }
                self.get(&format!("/admin/audit?{q}")).await
            }
            Call::Report(args) => self.get(&args.path()).await,
        }
    }

    /// `GET path` (with its query string).
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut builder = Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", token.trim()));
        }
        let bytes = match body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(body.to_string())
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
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            return Err(self.status_error(status, json.as_ref(), &body));
        }
        json.ok_or_else(|| {
            ClientError::Decode(String::from_utf8_lossy(&body).chars().take(200).collect())
        })
    }

    fn status_error(&self, status: StatusCode, json: Option<&Value>, body: &[u8]) -> ClientError {
        let mut message = json
            .and_then(|j| j["error"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                String::from_utf8_lossy(body)
                    .trim()
                    .chars()
                    .take(200)
                    .collect()
            });
        if let Some(errors) = json.and_then(|j| j["errors"].as_array())
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
        let answer = client.call(&call).await?;
        // `status` shows the routes too: one look at the whole migration.
        let routes = match (&call, args.json) {
            (Call::Status, false) => Some(client.get("/admin/routes").await?),
            _ => None,
        };
        Ok::<_, ClientError>((answer, routes))
    });
    match result {
        Ok((answer, routes)) => {
            let json = args.json
                || matches!(&call, Call::Report(r) if r.format == ReportFormat::Json && r.sample.is_none());
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&answer).unwrap_or_default()
                );
            } else {
                print!("{}", format::render(&call, &answer, routes.as_ref()));
            }
            ExitCode::SUCCESS
        }
        Err(error) => crate::term::fail(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_flags_become_the_api_body() {
        let args = RolloutArgs {
            route: "cards".into(),
            tenant: Some("acme".into()),
            side: Some("new".into()),
            exclude: vec!["initech".into()],
            reason: Some("pilot".into()),
            ..RolloutArgs::default()
        };
        assert_eq!(
            args.body(),
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
            off.body(),
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
