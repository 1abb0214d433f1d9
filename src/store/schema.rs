//! Store URLs, connection pools and the embedded migrations.
//!
//! SQLite runs in WAL mode (readers never wait for the writer) with a busy timeout so the
//! rare concurrent writers (the batch writer, an admin audit append) queue instead of failing.
//! An in-memory SQLite database lives exactly as long as its one connection, so that pool is
//! pinned to a single connection that never expires.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::FutureExt;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use super::{Backend, Result, StoreError};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a SQLite connection waits for another writer's lock before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;
/// How long a caller waits for a pooled connection; the writer retries on top of this.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Readers (report, admin) plus the one batch writer.
const FILE_POOL_SIZE: u32 = 4;
const POSTGRES_POOL_SIZE: u32 = 8;

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    SqliteFile {
        path: PathBuf,
        params: Option<String>,
    },
    SqliteMemory,
    Postgres(String),
}

// === impl Target ===

impl Target {
    /// Parse `url`; a relative SQLite path is resolved against `base_dir`.
    pub(super) fn parse(url: &str, base_dir: &Path) -> Result<Target> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (file, params) = match rest.split_once('?') {
                Some((f, p)) => (f, Some(p.to_owned())),
                None => (rest, None),
            };
            if file == ":memory:" {
                return Ok(Target::SqliteMemory);
            }
            if file.is_empty() {
                return Err(StoreError::MissingSqlitePath);
            }
            let file = Path::new(file);
            let path = if file.is_absolute() {
                file.to_path_buf()
            } else {
                base_dir.join(file)
            };
            return Ok(Target::SqliteFile { path, params });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres(url.to_owned()));
        }
        let scheme = url.split_once(':').map_or("", |(s, _)| s).to_owned();
        Err(StoreError::UnsupportedUrl { scheme })
    }

    fn backend(&self) -> Backend {
        match self {
            Target::SqliteFile { .. } | Target::SqliteMemory => Backend::Sqlite,
            Target::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL handed to sqlx: an absolute, percent-encoded SQLite path created on demand.
    fn driver_url(&self) -> String {
        match self {
            Target::SqliteMemory => "sqlite::memory:".to_owned(),
            Target::SqliteFile { path, params } => {
                let mut url = format!("sqlite://{}", encode_path(&path.to_string_lossy()));
                let params = params.as_deref().unwrap_or("");
                let has_mode = params.split('&').any(|p| p.starts_with("mode="));
                let mut query: Vec<&str> = params.split('&').filter(|p| !p.is_empty()).collect();
                if !has_mode {
                    query.push("mode=rwc");
                }
                url.push('?');
                url.push_str(&query.join("&"));
                url
            }
            Target::Postgres(url) => url.clone(),
        }
    }

    fn pool_options(&self) -> AnyPoolOptions {
        let backend = self.backend();
        let base = AnyPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        let base = match self {
            Target::SqliteMemory => base
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
            Target::SqliteFile { .. } => base.max_connections(FILE_POOL_SIZE),
            Target::Postgres(_) => base.max_connections(POSTGRES_POOL_SIZE),
        };
        let file = matches!(self, Target::SqliteFile { .. });
        base.after_connect(move |conn, _meta| {
            async move {
                if backend == Backend::Sqlite {
                    conn.execute(sqlx::AssertSqlSafe(format!(
                        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                    )))
                    .await?;
                    if file {
                        // WAL is a property of the file; setting it again is a no-op.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                }
                Ok(())
            }
            .boxed()
        })
    }
}

/// Connect a pool for `target` (creating the SQLite file's directory if needed).
pub(super) async fn connect(target: &Target) -> Result<(AnyPool, Backend)> {
    sqlx::any::install_default_drivers();
    if let Target::SqliteFile { path, .. } = target
        && let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let options: AnyConnectOptions = target.driver_url().parse().map_err(StoreError::Connect)?;
    let pool = target
        .pool_options()
        .connect_with(options)
        .await
        .map_err(StoreError::Connect)?;
    Ok((pool, target.backend()))
}

/// A pool that connects on first use (no I/O now).
#[cfg(test)]
pub(super) fn connect_lazy(target: &Target) -> Result<(AnyPool, Backend)> {
    sqlx::any::install_default_drivers();
    let options: AnyConnectOptions = target.driver_url().parse().map_err(StoreError::Connect)?;
    let pool = target
        .pool_options()
        .acquire_timeout(Duration::from_millis(100))
        .connect_lazy_with(options);
    Ok((pool, target.backend()))
}

/// Bring the schema up to date with the migrations embedded for `backend`.
pub(super) async fn migrate(pool: &AnyPool, backend: Backend) -> Result<()> {
    let migrator = match backend {
        Backend::Sqlite => &SQLITE_MIGRATOR,
        Backend::Postgres => &POSTGRES_MIGRATOR,
    };
    migrator.run(pool).await?;
    Ok(())
}

/// Percent-encode the few characters that would end or confuse a URL path (the set sqlx
/// itself uses when it prints a SQLite URL), so any file name survives the round trip.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b' '
            | b'"'
            | b'#'
            | b'<'
            | b'>'
            | b'?'
            | b'`'
            | b'{'
            | b'}'
            | b'%'
            | 0..=0x1f
            | 0x7f => {
                out.push_str(&format!("%{b:02X}"));
            }
            _ => out.push(char::from(b)),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod url_tests {
    use super::*;

    #[test]
    fn relative_sqlite_path_resolves_against_base_dir() {
        let t = Target::parse("sqlite://data/sy.db", Path::new("/etc/sy")).unwrap();
        assert_eq!(
            t,
            Target::SqliteFile {
                path: PathBuf::from("/etc/sy/data/sy.db"),
                params: None
            }
        );
        assert_eq!(t.driver_url(), "sqlite:///etc/sy/data/sy.db?mode=rwc");
    }

    #[test]
    fn absolute_path_params_and_memory() {
        let t = Target::parse("sqlite:///var/lib/a b.db?mode=rw", Path::new("/x")).unwrap();
        assert_eq!(t.driver_url(), "sqlite:///var/lib/a%20b.db?mode=rw");
        assert_eq!(
            Target::parse("sqlite::memory:", Path::new("/")).unwrap(),
            Target::SqliteMemory
        );
        let pg = Target::parse("postgres://u:p@h/db", Path::new("/")).unwrap();
        assert_eq!(pg.backend(), Backend::Postgres);
    }

    #[test]
    fn unsupported_scheme_does_not_echo_credentials() {
        let err = Target::parse("mysql://root:hunter2@h/db", Path::new("/")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"mysql\""), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }
}
