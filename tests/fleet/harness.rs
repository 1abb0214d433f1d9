//! The fleet harness: a PostgreSQL database of the test's own (dropped afterwards), a TCP
//! proxy per replica in front of it that the test can cut (the database is unreachable) or
//! whose LISTEN connections it can mute (notifications are lost), and replicas as real
//! `switchyard run` processes reading the shared document through their proxy.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use sha2::Digest;
use sqlx::postgres::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::{self, Answer};

/// The write token `ops` and the read token `viewer` of every replica.
pub const WRITE: &str = "write-token-0123456789";
pub const READ: &str = "read-token-0123456789";
/// The document every test uses.
pub const DOCUMENT: &str = "main";
/// The safety-net poll of the test replicas.
pub const POLL: Duration = Duration::from_millis(500);

/// Fleet tests start processes and cut connections: one at a time keeps the convergence
/// figures honest and the machine unloaded.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// === TestDb ===

/// A database of the test's own on the `SWITCHYARD_TEST_PG` server.
pub struct TestDb {
    admin_url: String,
    pub name: String,
    /// The database's URL (direct, no proxy).
    pub url: String,
    /// `host:port` of the server.
    pub server: SocketAddr,
}

impl TestDb {
    /// A fresh database, or `None` (the test is skipped) without `SWITCHYARD_TEST_PG`.
    pub async fn create() -> Option<TestDb> {
        let Ok(admin_url) = std::env::var("SWITCHYARD_TEST_PG") else {
            assert!(
                std::env::var_os("SWITCHYARD_REQUIRE_PG").is_none(),
                "SWITCHYARD_REQUIRE_PG is set but SWITCHYARD_TEST_PG is not"
            );
            eprintln!("SWITCHYARD_TEST_PG is not set: fleet test skipped");
            return None;
        };
        let name = format!("switchyard_fleet_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPool::connect(&admin_url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let url = with_database(&admin_url, &name);
        let server = server_of(&admin_url);
        Some(TestDb {
            admin_url,
            name,
            url,
            server,
        })
    }

    /// The source URL of the shared document through `proxy`.
    pub fn source_url(&self, proxy: &PgProxy) -> String {
        let url = self
            .url
            .replace(&self.server.to_string(), &proxy.addr.to_string());
        format!("{url}?document={DOCUMENT}&poll={}ms", POLL.as_millis())
    }

    /// The source URL straight to the database.
    pub fn direct_source_url(&self) -> String {
        format!("{}?document={DOCUMENT}", self.url)
    }

    /// A pool straight to the database (no proxy), for hand-made SQL.
    pub async fn pool(&self) -> PgPool {
        PgPool::connect(&self.url).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a runtime of its own on another thread.
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(admin) = PgPool::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&admin)
                        .await;
                    admin.close().await;
                }
            });
        });
        let _ = done.join();
    }
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let slash = base.rfind('/').unwrap();
    let mut out = format!("{}/{name}", &base[..slash]);
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn server_of(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host = rest.split('/').next().unwrap();
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    host.replace("localhost", "127.0.0.1").parse().unwrap()
}

// === PgProxy ===

/// A TCP proxy in front of PostgreSQL that can be cut and restored, and that can swallow what
/// the server sends on LISTEN connections.
pub struct PgProxy {
    pub addr: SocketAddr,
    state: Arc<ProxyState>,
    accept: JoinHandle<()>,
}

#[derive(Default)]
struct ProxyState {
    cut: AtomicBool,
    mute_listeners: AtomicBool,
    connections: Mutex<Vec<JoinHandle<()>>>,
}

impl PgProxy {
    pub async fn start(server: SocketAddr) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState::default());
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                // Cut: the connection is accepted and closed at once, as a database that is
                // gone would refuse it.
                if shared.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let state = shared.clone();
                let task = tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(server).await {
                        pump(client, server, state).await;
                    }
                });
                shared.connections.lock().push(task);
            }
        });
        PgProxy {
            addr,
            state,
            accept,
        }
    }

    /// The database is unreachable: every connection is closed, new ones are refused.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        for task in self.state.connections.lock().drain(..) {
            task.abort();
        }
    }

    /// The database is reachable again.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }

    /// From now on, connections that sent `LISTEN` receive nothing more: notifications are
    /// lost while the connection looks healthy (a half-open connection, a lossy middlebox).
    pub fn mute_listeners(&self) {
        self.state.mute_listeners.store(true, Ordering::SeqCst);
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.state.connections.lock().drain(..) {
            task.abort();
        }
    }
}

async fn pump(client: TcpStream, server: TcpStream, state: Arc<ProxyState>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let listening = Arc::new(AtomicBool::new(false));
    let marks = listening.clone();
    let upstream = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if buf[..n].windows(6).any(|w| w == b"LISTEN") {
                marks.store(true, Ordering::SeqCst);
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let downstream = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if listening.load(Ordering::SeqCst) && state.mute_listeners.load(Ordering::SeqCst) {
                continue;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

// === Replica ===

/// A `switchyard run` process reading the shared document.
pub struct Replica {
    pub name: String,
    pub dir: PathBuf,
    pub source_url: String,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    /// Start replica `name` with its working directory (tokens file, cache) at `dir`.
    pub async fn start(name: &str, dir: &Path, source_url: &str) -> Replica {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("tokens.toml"), tokens_file()).unwrap();
        let mut child = Command::new(binary())
            .args(["run", "--replica-id", name, "--cache-dir", "."])
            .env("SWITCHYARD_CONFIG", source_url)
            .env("SWITCHYARD_LOG", "json")
            .env("RUST_LOG", "info,switchyard::fleet=debug")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addrs) = serving(&line) {
                    let _ = tx.send(addrs);
                }
                lines.lock().push(line);
            }
        });
        let started = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)))
            .await
            .unwrap();
        let Ok((http, admin)) = started else {
            let _ = child.kill();
            panic!("replica {name} did not start:\n{}", log.lock().join("\n"));
        };
        Replica {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            source_url: source_url.to_owned(),
            http,
            admin,
            child,
            log,
        }
    }

    /// Whether a notification announced `revision` to this replica.
    pub fn was_announced(&self, revision: u64) -> bool {
        self.log.lock().iter().any(|line| {
            serde_json::from_str::<Value>(line).is_ok_and(|v| {
                v["fields"]["message"] == "revision announced"
                    && v["fields"]["revision"] == revision
            })
        })
    }

    /// Kill the process (no clean shutdown: a crash, or a node going away).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        self.log.lock().join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Which upstream serves `tenant` on the `cards` route now.
    pub async fn side_of(&self, tenant: &str) -> String {
        support::get(&self.url("/api/cards/1"), &[("x-tenant-id", tenant)])
            .await
            .served_by()
    }

    /// Call the admin API with the write token.
    pub async fn admin(&self, method: &str, path: &str, body: Value) -> Answer {
        let url = format!("http://{}{path}", self.admin);
        let auth = format!("Bearer {WRITE}");
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        support::send(
            method,
            &url,
            &[
                ("authorization", auth.as_str()),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
    }

    /// `GET /admin/status`.
    pub async fn status(&self) -> Value {
        self.admin("GET", "/admin/status", Value::Null).await.json()
    }

    /// The generation (revision) in force.
    pub async fn generation(&self) -> u64 {
        self.status().await["generation"].as_u64().unwrap()
    }

    /// `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let answer = support::get(&format!("http://{}/metrics", self.admin), &[]).await;
        String::from_utf8_lossy(&answer.body).into_owned()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The binary replicas run: this build's, or `SWITCHYARD_TEST_BIN` (e.g. a release build,
/// for convergence figures).
fn binary() -> PathBuf {
    std::env::var_os("SWITCHYARD_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_switchyard")))
}

/// The addresses of a `switchyard serving` log line.
fn serving(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let value: Value = serde_json::from_str(line).ok()?;
    let fields = &value["fields"];
    if fields["message"] != "switchyard serving" {
        return None;
    }
    let http = fields["http"].as_str()?;
    let http = http
        .strip_prefix("Some(")?
        .strip_suffix(')')?
        .parse()
        .ok()?;
    let admin = fields["admin"].as_str()?.parse().ok()?;
    Some((http, admin))
}

fn tokens_file() -> String {
    let digest = hex::encode(sha2::Sha256::digest(READ.as_bytes()));
    format!(
        "[tokens.ops]\nrole = \"write\"\nsecret = \"{WRITE}\"\n\n\
         [tokens.viewer]\nrole = \"read\"\nsecret_sha256 = \"{digest}\"\n"
    )
}

/// The shared document: the harness's one-route config, with admin tokens from the
/// replica's working directory.
pub fn document(legacy: &str, new: &str) -> String {
    support::config(legacy, new, "").replace(
        "debug_headers = true\n",
        "debug_headers = true\ntokens_file = \"tokens.toml\"\n",
    )
}

/// Run the `switchyard` binary to completion; its exit success, stdout and stderr.
pub async fn cli(args: &[&str], env: &[(&str, &str)], dir: &Path) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("SWITCHYARD_CONFIG");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Seed the document with `text` through `switchyard config push --config` (the first
/// revision of a new fleet goes in this way); the revision it printed.
pub async fn seed(db: &TestDb, dir: &Path, text: &str) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("tokens.toml"), tokens_file()).unwrap();
    let file = dir.join("seed.toml");
    std::fs::write(&file, text).unwrap();
    let url = db.direct_source_url();
    let file = file.to_string_lossy().into_owned();
    let (ok, out, err) = cli(
        &[
            "config", "push", &file, "--author", "ci", "--reason", "seed",
        ],
        &[("SWITCHYARD_CONFIG", &url)],
        dir,
    )
    .await;
    assert!(ok, "seed push failed: {out}{err}");
    revision_in(&out)
}

/// The revision number in `applied: revision N (was M)`.
pub fn revision_in(line: &str) -> u64 {
    line.split("revision ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {line:?}"))
}

/// Retry `check` every few milliseconds until it holds; the time it took, or `None` after
/// `within`.
pub async fn time_until<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let clock = switchyard::clock::Clock::system();
    let start = clock.instant();
    loop {
        if check().await {
            return Some(clock.instant() - start);
        }
        if clock.instant() - start > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
