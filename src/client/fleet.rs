//! `switchyard config push FILE`, `switchyard config pull` and `switchyard fleet`.
//!
//! Push and pull talk to a running replica's admin API (`--admin`, a write token for push):
//! the replica validates the text with the same build as a reload, writes it with
//! compare-and-set and audits it — the GitOps path, where CI pushes the reviewed file. With
//! `--config URL` (or `SWITCHYARD_CONFIG`) they go to the document itself instead, validated
//! here: how the first revision of a new fleet gets in, before any replica runs.
//!
//! ```text
//! switchyard config push deploy/gw.toml --reason "release 42"     # prints the new revision
//! switchyard config pull > gw.toml
//! switchyard config push gw.toml --config 'postgres://sy@db/sy?document=main'
//! switchyard fleet
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};

use super::format::{text, time};
use super::{AdminArgs, AdminClient, ClientError};
use crate::clock::Clock;
use crate::config::source::{Author, Base, Source, SourceError, SourceOptions};
use crate::config::{ConfigError, ConfigErrors};
use crate::snapshot::{self, BuildError};
use crate::term::{fail, table};

/// `switchyard config push FILE`.
#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// The whole new rule document (TOML).
    pub file: PathBuf,
    /// Refuse unless the newest revision is still this one (default: whatever is newest
    /// when the push is validated).
    #[arg(long)]
    pub base_revision: Option<u64>,
    /// Why: kept with the revision and in the audit log.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub target: Target,
}

/// `switchyard config pull`.
#[derive(Debug, Clone, clap::Args)]
pub struct PullArgs {
    /// A past revision instead of the newest.
    #[arg(long)]
    pub revision: Option<u64>,
    #[command(flatten)]
    pub target: Target,
}

/// Where push and pull go: the document itself (`--config`), or a replica's admin API.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// Write or read the document directly (`postgres://…?document=NAME`, or a file).
    #[arg(long, env = "SWITCHYARD_CONFIG", hide_env_values = true)]
    pub config: Option<String>,
    /// With --config: the author recorded with the revision (default: $USER).
    #[arg(long)]
    pub author: Option<String>,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Why a push or pull failed; `Display` is the one line (or the config errors) printed.
#[derive(Debug, thiserror::Error)]
pub enum FleetCliError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("{0}")]
    Invalid(#[from] BuildError),
    #[error("{0}")]
    Client(#[from] ClientError),
}

/// `switchyard config push FILE`: prints the new revision.
pub fn push(args: &PushArgs) -> ExitCode {
    run(async {
        let text = std::fs::read_to_string(&args.file).map_err(|source| FleetCliError::Read {
            path: args.file.clone(),
            source,
        })?;
        let line = match &args.target.config {
            Some(url) => push_direct(args, url, text).await?,
            None => push_via_admin(args, text).await?,
        };
        println!("{line}");
        Ok(())
    })
}

/// `switchyard config pull`: prints the document's text.
pub fn pull(args: &PullArgs) -> ExitCode {
    run(async {
        let text = match &args.target.config {
            Some(url) => {
                let source = Source::open(url, &SourceOptions::default())?;
                let text = match (args.revision, source.postgres()) {
                    (Some(n), Some(pg)) => pg.read_revision(n).await?,
                    _ => source.read().await?.text,
                };
                if let Some(pg) = source.postgres() {
                    pg.close().await;
                }
                text
            }
            None => {
                let client = client(&args.target.admin)?;
                let path = match args.revision {
                    Some(n) => format!("/admin/config?revision={n}"),
                    None => "/admin/config".to_owned(),
                };
                let answer = client.get(&path).await?;
                if answer["from"] == "in_force" {
                    eprintln!(
                        "switchyard: the config source is unreachable ({}); this is the text in force on the replica",
                        text_of(&answer["error"])
                    );
                }
                text_of(&answer["text"])
            }
        };
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
        Ok(())
    })
}

/// `switchyard fleet`: every replica seen in the last minute.
pub fn fleet(admin: &AdminArgs) -> ExitCode {
    run(async {
        let answer = client(admin)?.get("/admin/fleet").await?;
        if admin.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&answer).unwrap_or_default()
            );
        } else {
            print!("{}", render(&answer));
        }
        Ok(())
    })
}

/// The fleet view as a table.
pub fn render(answer: &Value) -> String {
    let mut out = String::new();
    let document = answer["document"]
        .as_str()
        .map(|d| format!(" document {d},"))
        .unwrap_or_default();
    out.push_str(&format!(
        "source {}:{document} newest revision {}\n",
        text(&answer["source"]),
        text(&answer["newest_revision"])
    ));
    if answer["source_up"] == false {
        out.push_str(&format!(
            "config database unreachable ({}): showing the answering replica only\n",
            text(&answer["error"])
        ));
    }
    let rows: Vec<Vec<String>> = answer["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let mark = if r["self"] == true { "*" } else { "" };
            vec![
                format!("{}{mark}", text(&r["replica"])),
                text(&r["revision"]),
                text(&r["lag"]),
                time(&r["loaded_at"]),
                time(&r["last_seen"]),
                if r["listening"] == true { "yes" } else { "no" }.to_owned(),
                text(&r["last_error"])
                    .lines()
                    .next()
                    .unwrap_or("-")
                    .to_owned(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "REPLICA",
            "REVISION",
            "LAG",
            "LOADED",
            "LAST SEEN",
            "LISTENING",
            "ERROR",
        ],
        &rows,
    ));
    out
}

async fn push_via_admin(args: &PushArgs, text: String) -> Result<String, FleetCliError> {
    let client = client(&args.target.admin)?;
    let body = json!({
        "text": text,
        "base_revision": args.base_revision,
        "reason": args.reason,
    });
    let answer = client
        .post("/admin/config", &body)
        .await
        .map_err(|e| match e {
            ClientError::Status {
                status,
                reason,
                message,
            } => ClientError::Status {
                status,
                reason,
                message: name_errors_after(&message, &args.file),
            },
            other => other,
        })?;
    Ok(format!(
        "{}: revision {} (was {}) via replica {}",
        text_of(&answer["result"]),
        text_of(&answer["generation"]),
        text_of(&answer["previous_generation"]),
        text_of(&answer["replica"]),
    ))
}

async fn push_direct(args: &PushArgs, url: &str, text: String) -> Result<String, FleetCliError> {
    let source = Source::open(url, &SourceOptions::default())?;
    let result = push_to(&source, args, text).await;
    if let Some(pg) = source.postgres() {
        pg.close().await;
    }
    result
}

async fn push_to(source: &Source, args: &PushArgs, text: String) -> Result<String, FleetCliError> {
    let current = match source.read().await {
        Ok(document) => Some(document),
        Err(SourceError::Empty { .. }) => None,
        Err(error) => return Err(error.into()),
    };
    let newest = current.as_ref().and_then(|d| d.revision).unwrap_or(0);
    let based_on = args.base_revision.unwrap_or(newest);
    // The same build as a reload; the text's relative paths resolve as they will where it
    // is loaded (a revision: the working directory).
    let next = source.is_revisioned().then_some(based_on + 1);
    let name = source.name_for(next);
    let checked = snapshot::build(&text, &name, None, &Clock::system());
    checked.map_err(|e| rename(e, &name, &args.file))?;
    if current.as_ref().is_some_and(|d| d.text == text) {
        return Ok(format!(
            "unchanged: revision {newest} already holds this text"
        ));
    }
    let author = Author {
        name: args
            .target
            .author
            .clone()
            .or_else(|| std::env::var("USER").ok()),
        reason: args.reason.clone(),
    };
    let base = Base {
        text: current.as_ref().map_or("", |d| d.text.as_str()),
        revision: Some(based_on),
    };
    match source.write(&text, base, &author, "push").await? {
        Some(revision) => Ok(format!("applied: revision {revision} (was {newest})")),
        None => Ok(format!("applied: {}", source.describe())),
    }
}

/// Config errors of the document itself, named after the file that was pushed.
fn rename(error: BuildError, name: &Path, file: &Path) -> BuildError {
    match error {
        BuildError::Config(errors) => BuildError::Config(ConfigErrors(
            errors
                .0
                .into_iter()
                .map(|e| ConfigError {
                    file: if e.file == name {
                        file.to_path_buf()
                    } else {
                        e.file
                    },
                    ..e
                })
                .collect(),
        )),
        other => other,
    }
}

/// `revision N:line:col` in a replica's answer → `FILE:line:col`.
fn name_errors_after(message: &str, file: &Path) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("revision ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "revision ".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(':') {
            out.push_str(&file.display().to_string());
            rest = &after[digits..];
        } else {
            out.push_str("revision ");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn client(admin: &AdminArgs) -> Result<AdminClient, ClientError> {
    AdminClient::new(&admin.admin, admin.token.clone())
}

fn text_of(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

fn run(work: impl Future<Output = Result<(), FleetCliError>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => return fail(format!("cannot start the runtime: {error}")),
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        // Config errors are lines of their own, as `switchyard check` prints them.
        Err(FleetCliError::Invalid(errors)) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
        Err(error) => fail(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_errors_are_named_after_the_pushed_file() {
        let message = "the change was rejected, nothing changed: revision 8:3:1: unknown key; revision 8:9:2: bad";
        assert_eq!(
            name_errors_after(message, Path::new("gw.toml")),
            "the change was rejected, nothing changed: gw.toml:3:1: unknown key; gw.toml:9:2: bad"
        );
        assert_eq!(
            name_errors_after("revision 5 is newer than revision 4", Path::new("x")),
            "revision 5 is newer than revision 4"
        );
    }

    #[test]
    fn the_fleet_table_marks_the_answering_replica() {
        let answer = json!({
            "source": "postgres", "document": "main", "newest_revision": 7, "source_up": true,
            "replicas": [
                {"replica": "gw-a", "revision": 7, "lag": 0, "loaded_at": 0, "last_seen": 0,
                 "listening": true, "last_error": null, "self": true},
                {"replica": "gw-b", "revision": 6, "lag": 1, "loaded_at": 0, "last_seen": 0,
                 "listening": false, "last_error": "revision 7:1:1: bad\nmore", "self": false},
            ],
        });
        let out = render(&answer);
        assert!(
            out.starts_with("source postgres: document main, newest revision 7\n"),
            "{out}"
        );
        assert!(out.contains("gw-a*"), "{out}");
        assert!(out.contains("revision 7:1:1: bad"), "{out}");
        assert!(!out.contains("more"), "{out}");
    }
}
