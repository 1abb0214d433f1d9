//! The command line: `run`, `check`, `explain`, `demo`, `override-token`, and the admin
//! client commands that talk to a running gateway (`status`, `rollout`, `reload`, `history`,
//! `rollback`, `audit`, `report`; see [`crate::client`]), and `config schema`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue};
use clap::{Parser, Subcommand};

use crate::client::fleet::{PullArgs, PushArgs};
use crate::client::{self, AdminArgs, AuditArgs, Call, ReportArgs, RolloutArgs};
use std::sync::Arc;

use crate::clock::Clock;
use crate::config;
use crate::config::source::{PgSource, Source, SourceError, SourceOptions};
use crate::gateway::{Gateway, Options};
use crate::live::Live;
use crate::rules::{self, RequestView, Side};
use crate::snapshot;
use crate::telemetry::Metrics;
use crate::term::{fail, runtime, wait_for_signal};

/// Switchyard: route each tenant's traffic between a legacy monolith and new services.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve traffic with the rules in FILE (hot-reloaded on change and on SIGHUP), or in a
    /// PostgreSQL document shared by a fleet (`postgres://…/db?document=NAME`).
    Run {
        /// A config file (or `file://` URL), or `postgres://…?document=NAME[&poll=5s]`.
        #[arg(long, short, env = "SWITCHYARD_CONFIG", hide_env_values = true)]
        config: String,
        #[command(flatten)]
        replica: ReplicaArgs,
    },
    /// Validate FILE (or the newest revision of a PostgreSQL document): exit 0, or print
    /// `file:line:col: message` (`revision N:line:col: message`) for every error and exit 1.
    Check {
        #[arg(long, short, env = "SWITCHYARD_CONFIG", hide_env_values = true)]
        config: String,
    },
    /// The rule document: `config push FILE`, `config pull`, `config schema`.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Every replica sharing the rule document: the revision it serves and its lag.
    Fleet {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Print the decision for one request as JSON, without any network.
    Explain {
        #[arg(long, short)]
        config: PathBuf,
        /// A request header, `Name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// The client address, for `trusted_proxies` checks.
        #[arg(long, default_value = "127.0.0.1")]
        peer: std::net::IpAddr,
        method: String,
        url: String,
    },
    /// Run the gateway on config/demo.toml with stand-in legacy and new services and light
    /// synthetic traffic.
    Demo {
        /// Use this config instead of config/demo.toml.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
        /// No synthetic traffic.
        #[arg(long)]
        quiet: bool,
    },
    /// Mint a signed `x-switchyard-force` token with the configured override secret.
    OverrideToken {
        #[arg(long, short)]
        config: PathBuf,
        /// The side the token forces: legacy or new.
        #[arg(long)]
        side: Side,
        /// How long the token is valid, e.g. 1h, 15m.
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
    /// Show a running gateway's generation, reload errors, upstream health and routes.
    Status {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Change one route's rollout: a tenant's side, the percent, the state.
    Rollout {
        #[command(flatten)]
        rollout: RolloutArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Automatic guards: `guard rearm ROUTE` re-arms a tripped one.
    Guard {
        #[command(subcommand)]
        command: GuardCommand,
    },
    /// Re-read the config file of a running gateway now.
    Reload {
        /// Why: kept in the audit log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List a running gateway's config generations, newest first.
    History {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Return a running gateway to the rules of an earlier generation.
    Rollback {
        generation: u64,
        /// Why: kept in the audit log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show the audit log of admin changes, newest first.
    Audit {
        #[command(flatten)]
        filter: AuditArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show the shadow-diff report (per route: parity, verdict, top differing paths), or one
    /// stored sample pair as a diff with --sample ID.
    Report {
        #[command(flatten)]
        report: ReportArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// `switchyard guard …`
#[derive(Debug, Subcommand)]
pub enum GuardCommand {
    /// Re-arm ROUTE's tripped guard (a guard that sent the route to legacy puts it back in
    /// rollout at its percent).
    Rearm {
        route: String,
        /// Why: kept in the audit log.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// `switchyard config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the JSON Schema of the config file, for editors (see docs/config.md).
    Schema,
    /// Validate FILE with the same build as a reload and make it the newest revision
    /// (compare-and-set); prints the new revision.
    Push(PushArgs),
    /// Print the document's current text.
    Pull(PullArgs),
}

/// Who this replica is, and where it keeps the last good rules of a shared document.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplicaArgs {
    /// This replica's name in status, audit, revisions and `switchyard fleet` (default: the
    /// host name).
    #[arg(long, env = "SWITCHYARD_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// Where the last good revision of a PostgreSQL document is cached, so a restart while
    /// the database is down still serves the last rules.
    #[arg(long, env = "SWITCHYARD_CACHE_DIR", default_value = ".")]
    pub cache_dir: PathBuf,
}

/// Run the command line; the returned code is the process's exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    match cli.command {
        Command::Run { config, replica } => run(&config, &replica),
        Command::Check { config } => check(&config),
        Command::Explain {
            config,
            headers,
            peer,
            method,
            url,
        } => explain(&config, &headers, peer, &method, &url),
        Command::Demo {
            config,
            duration,
            quiet,
        } => crate::demo::main(config, duration, quiet),
        Command::OverrideToken { config, side, ttl } => override_token(&config, side, &ttl),
        Command::Status { admin } => client::main(&admin, Call::Status),
        Command::Rollout { rollout, admin } => client::main(&admin, Call::Rollout(rollout)),
        Command::Guard {
            command:
                GuardCommand::Rearm {
                    route,
                    reason,
                    admin,
                },
        } => client::main(&admin, Call::Rearm { route, reason }),
        Command::Reload { reason, admin } => client::main(&admin, Call::Reload { reason }),
        Command::History { admin } => client::main(&admin, Call::History),
        Command::Rollback {
            generation,
            reason,
            admin,
        } => client::main(&admin, Call::Rollback { generation, reason }),
        Command::Audit { filter, admin } => client::main(&admin, Call::Audit(filter)),
        Command::Report { report, admin } => client::main(&admin, Call::Report(report)),
        Command::Config { command } => match command {
            ConfigCommand::Schema => {
                print!("{}", config::schema::json_schema_text());
                ExitCode::SUCCESS
            }
            ConfigCommand::Push(args) => client::fleet::push(&args),
            ConfigCommand::Pull(args) => client::fleet::pull(&args),
        },
        Command::Fleet { admin } => client::fleet::fleet(&admin),
    }
}

/// A side or state flag naming neither is one line, like every other failure of a command
/// (`--side must be legacy or new, not up`); anything else is clap's own usage message.
fn usage_error(error: clap::Error) -> ExitCode {
    let unknown =
        std::error::Error::source(&error).and_then(|e| e.downcast_ref::<rules::UnknownName>());
    let flag = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.split_whitespace().next(),
        _ => None,
    };
    match (unknown, flag) {
        (Some(unknown), Some(flag)) => fail(format!("{flag} {unknown}")),
        _ => error.exit(),
    }
}

fn run(config: &str, replica: &ReplicaArgs) -> ExitCode {
    crate::telemetry::init_logging();
    let replica_id = replica
        .replica_id
        .clone()
        .unwrap_or_else(crate::config::source::default_replica_id);
    let options = SourceOptions {
        replica: replica_id.clone(),
        cache_dir: Some(replica.cache_dir.clone()),
    };
    let source = match Source::open(config, &options) {
        Ok(source) => source,
        Err(error) => return fail(error),
    };
    // The rules are read and built once, on a small runtime of their own: they say how many
    // worker threads the gateway's runtime gets.
    let boot = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => return fail(format!("cannot start the runtime: {error}")),
    };
    let metrics = Arc::new(Metrics::new());
    let clock = Clock::system();
    let first = boot.block_on(async {
        let first = Live::first_load(&source, &metrics, &clock).await;
        // Its connections belong to this runtime: the serving runtime opens its own.
        if let Some(pg) = source.postgres() {
            pg.close().await;
        }
        first
    });
    let first = match first {
        Ok(first) => first,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    drop(boot);
    let runtime = match runtime(first.candidate.rules.listen.workers) {
        Ok(rt) => rt,
        Err(error) => return fail(format!("cannot start the runtime: {error}")),
    };
    runtime.block_on(async move {
        let options = Options {
            watch: true,
            clock: Some(clock),
            replica_id: Some(replica_id),
        };
        let gateway = match Gateway::start_loaded(source, first, metrics, options).await {
            Ok(gateway) => gateway,
            Err(error) => return fail(error),
        };
        wait_for_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        gateway.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Validate exactly what a start or a reload would: the same build, upstream clients and
/// compare tables included.
fn check(config: &str) -> ExitCode {
    let source = match Source::parse(config) {
        Ok(source) => source,
        Err(error) => return fail(error),
    };
    let (name, checked) = match &source {
        Source::File(_) => (config.to_owned(), snapshot::check_file(source.path())),
        Source::Postgres(pg) => match check_document(pg) {
            Ok((revision, checked)) => (format!("revision {revision}"), checked),
            Err(error) => return fail(error),
        },
    };
    match checked {
        Ok(candidate) => {
            println!(
                "{name}: ok ({} routes, {} upstreams)",
                candidate.rules.routes.len(),
                candidate.rules.upstreams.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

/// Read the newest revision of a shared document and build it as a replica would.
fn check_document(
    pg: &PgSource,
) -> Result<(u64, Result<snapshot::Candidate, snapshot::BuildError>), SourceError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SourceError::Io {
            path: PathBuf::from("runtime"),
            source: e,
        })?;
    let document = runtime.block_on(async {
        let document = pg.read().await;
        pg.close().await;
        document
    })?;
    let revision = document.revision.unwrap_or(0);
    let source = Source::Postgres(pg.clone());
    let name = source.name_for(document.revision);
    let checked = snapshot::build(&document.text, &name, None, &Clock::system());
    Ok((revision, checked))
}

fn explain(
    config: &std::path::Path,
    headers: &[String],
    peer: std::net::IpAddr,
    method: &str,
    url: &str,
) -> ExitCode {
    let rules = match config::load_file(config) {
        Ok(rules) => rules,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let method: http::Method = match method.parse() {
        Ok(m) => m,
        Err(_) => return fail(format!("not an HTTP method: {method}")),
    };
    let uri: http::Uri = match url.parse() {
        Ok(u) => u,
        Err(error) => return fail(format!("not a URL: {url}: {error}")),
    };
    let mut map = http::HeaderMap::new();
    if let Some(authority) = uri.authority()
        && let Ok(value) = http::HeaderValue::from_str(authority.as_str())
    {
        map.insert(http::header::HOST, value);
    }
    for line in headers {
        let Some((name, value)) = line.split_once(':') else {
            return fail(format!("a header must look like 'Name: value': {line}"));
        };
        let name = match http::HeaderName::from_bytes(name.trim().as_bytes()) {
            Ok(n) => n,
            Err(_) => return fail(format!("bad header name in {line}")),
        };
        let value = match http::HeaderValue::from_str(value.trim()) {
            Ok(v) => v,
            Err(_) => return fail(format!("bad header value in {line}")),
        };
        map.append(name, value);
    }
    let view = RequestView {
        method: &method,
        uri: &uri,
        headers: &map,
        peer: Some(peer),
        sample: 0,
    };
    let decision = rules.decide(&view, Clock::system().now());
    let json = rules::explain(&rules, &decision, 1);
    match serde_json::to_string_pretty(&json) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => fail(error),
    }
}

fn override_token(config: &std::path::Path, side: Side, ttl: &str) -> ExitCode {
    let rules = match config::load_file(config) {
        Ok(rules) => rules,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let Some(secret) = rules.admin.override_secret.as_deref() else {
        return fail("[admin] override_secret_file is not set in this config");
    };
    let ttl = match humantime::parse_duration(ttl) {
        Ok(d) => d,
        Err(error) => return fail(format!("--ttl {ttl}: {error}")),
    };
    let expires = Clock::system().now() + ttl;
    let expires = expires
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    println!("{}", rules::override_token::mint(secret, side, expires));
    ExitCode::SUCCESS
}
