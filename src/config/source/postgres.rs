//! The rule document in PostgreSQL, shared by a fleet of replicas.
//!
//! `postgres://user:password@host:5432/db?document=main[&poll=5s]` names one document in one
//! database. The source keeps its own tables in the schema `switchyard_config` (created on
//! first use, under an advisory lock so replicas starting together do not race):
//!
//! - `revisions`: one row per revision of each document — text, sha256, author (the admin
//!   token's name, or the database role for a row inserted by hand), replica, reason, origin,
//!   time. The newest revision is the rules. An insert trigger sends
//!   `NOTIFY switchyard_config, 'document:revision'`, so even a revision inserted by hand with
//!   SQL reaches every replica at once.
//! - `replicas`: one heartbeat row per replica (see [`crate::fleet`]).
//!
//! A write appends revision `newest + 1` only if the newest is still the revision the edit was
//! computed from (compare-and-set, serialised per document by a transaction-scoped advisory
//! lock); otherwise it fails with [`SourceError::Moved`] and writes nothing.
//!
//! Times in these tables come from the database's clock, so replicas with skewed clocks still
//! agree on who was seen in the last minute. Every database call is bounded by a timeout: a
//! database that stops answering must not hold a reload or an admin call forever.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};

use super::{Author, Document, SourceError, SourceOptions};

mod cache;
mod replicas;
mod schema;

pub use replicas::{FleetView, Heartbeat, ReplicaRow};
pub use schema::{CHANNEL, SCHEMA};

/// Default interval of the safety-net poll (and of heartbeats).
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);
/// Bounds of `?poll=`: heartbeats must come well within the minute the fleet view covers.
const POLL_RANGE: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(20));
/// The longest one database call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a connection (connecting included).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections for reads, writes and heartbeats; the LISTEN connection is separate.
const POOL_SIZE: u32 = 2;

/// One revision of the document, as `history` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Revision {
    pub revision: u64,
    /// sha256 of the text; `None` for a row inserted by hand without one.
    pub hash: Option<String>,
    pub author: String,
    pub replica: Option<String>,
    pub reason: Option<String>,
    /// What wrote it: `admin`, `rollback`, `push`, or `sql` for a row inserted by hand.
    pub origin: String,
    pub created_at_ms: i64,
}

/// A PostgreSQL config source. Cheap to clone.
#[derive(Clone)]
pub struct PgSource {
    inner: Arc<Inner>,
}

struct Inner {
    described: String,
    document: String,
    poll: Duration,
    connect: PgConnectOptions,
    replica: String,
    cache: Option<PathBuf>,
    /// Made on first use, in the runtime that uses it (the CLI loads the rules on a boot
    /// runtime of its own, then [`PgSource::close`]s before serving on the main one).
    pool: Mutex<Option<PgPool>>,
    schema: tokio::sync::OnceCell<()>,
}

impl fmt::Debug for PgSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSource")
            .field("url", &self.inner.described)
            .field("replica", &self.inner.replica)
            .finish()
    }
}

// === impl PgSource ===

impl PgSource {
    /// Parse `postgres://…?document=NAME[&poll=5s]`; other query parameters go to the driver
    /// (`sslmode`, …). Nothing connects yet.
    pub fn parse(url: &str, options: &SourceOptions) -> Result<PgSource, SourceError> {
        let shown = super::redact_url(url);
        let bad = |message: String| SourceError::BadUrl {
            url: shown.clone(),
            message,
        };
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut document = None;
        let mut poll = DEFAULT_POLL;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "document" => document = Some(value.to_owned()),
                "poll" => {
                    poll = humantime::parse_duration(value)
                        .map_err(|e| bad(format!("poll={value}: {e}")))?;
                    if poll < POLL_RANGE.0 || poll > POLL_RANGE.1 {
                        return Err(bad(format!(
                            "poll={value}: must be between {:?} and {:?}",
                            POLL_RANGE.0, POLL_RANGE.1
                        )));
                    }
                }
                _ => rest.push(pair),
            }
        }
        let document = document.ok_or_else(|| {
            bad("name the rule document: add ?document=NAME (e.g. ?document=main)".into())
        })?;
        if !valid_document_name(&document) {
            return Err(bad(format!(
                "document={document}: 1–64 characters of A-Z a-z 0-9 . _ -"
            )));
        }
        let driver_url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let connect = PgConnectOptions::from_str(&driver_url)
            .map_err(|e| bad(e.to_string()))?
            .application_name("switchyard");
        let shown_base = super::redact_url(base);
        Ok(PgSource {
            inner: Arc::new(Inner {
                described: format!("{shown_base}?document={document}"),
                cache: options
                    .cache_dir
                    .as_deref()
                    .map(|dir| cache::file(dir, &document)),
                document,
                poll,
                connect,
                replica: options.replica.clone(),
                pool: Mutex::new(None),
                schema: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// The URL (password masked) and document.
    pub fn describe(&self) -> String {
        self.inner.described.clone()
    }

    /// The document's name.
    pub fn document(&self) -> &str {
        &self.inner.document
    }

    /// This replica's identity.
    pub fn replica(&self) -> &str {
        &self.inner.replica
    }

    /// The safety-net poll interval.
    pub fn poll_interval(&self) -> Duration {
        self.inner.poll
    }

    /// Where the last good document is cached, if anywhere.
    pub fn cache_path(&self) -> Option<&Path> {
        self.inner.cache.as_deref()
    }

    fn pool(&self) -> PgPool {
        let mut slot = self.inner.pool.lock();
        slot.get_or_insert_with(|| {
            // No idle timeout and no lifetime: no maintenance task, so the pool can be made
            // outside a runtime; stale connections are caught by the test before acquire.
            PgPoolOptions::new()
                .max_connections(POOL_SIZE)
                .min_connections(0)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_lazy_with(self.inner.connect.clone())
        })
        .clone()
    }

    /// Close the connections; the next call opens new ones (in the runtime it runs on).
    pub async fn close(&self) {
        let pool = self.inner.pool.lock().take();
        if let Some(pool) = pool {
            pool.close().await;
        }
    }

    /// Create the schema if needed (once per process).
    async fn ready(&self) -> Result<PgPool, SourceError> {
        let pool = self.pool();
        self.inner
            .schema
            .get_or_try_init(|| bounded(schema::ensure(&pool)))
            .await?;
        Ok(pool)
    }

    /// The newest revision.
    pub async fn read(&self) -> Result<Document, SourceError> {
        let pool = self.ready().await?;
        let row = bounded(
            sqlx::query(
                "SELECT revision, text FROM switchyard_config.revisions \
                 WHERE document = $1 ORDER BY revision DESC LIMIT 1",
            )
            .bind(&self.inner.document)
            .fetch_optional(&pool),
        )
        .await?;
        let Some(row) = row else {
            return Err(SourceError::Empty {
                document: self.inner.document.clone(),
            });
        };
        Ok(Document {
            revision: Some(to_u64(row.try_get("revision").map_err(unavailable)?)),
            text: row.try_get("text").map_err(unavailable)?,
        })
    }

    /// The newest revision, or the cached copy of the last good one when the database
    /// cannot be reached.
    pub async fn read_or_cached(&self) -> Result<Document, SourceError> {
        let error = match self.read().await {
            Ok(document) => return Ok(document),
            Err(error @ SourceError::Unavailable(_)) => error,
            Err(other) => return Err(other),
        };
        let Some(path) = self.inner.cache.clone() else {
            return Err(error);
        };
        match cache::load(&path, &self.inner.document) {
            Ok(document) => {
                tracing::warn!(
                    cache = %path.display(),
                    revision = document.revision,
                    "{error}: starting on the cached copy of the last good revision"
                );
                Ok(document)
            }
            Err(reason) => Err(SourceError::NoCache {
                error: Box::new(error),
                path,
                reason,
            }),
        }
    }

    /// The local copy of the last good revision, if there is one.
    pub fn cached(&self) -> Option<Document> {
        let path = self.inner.cache.as_deref()?;
        cache::load(path, &self.inner.document).ok()
    }

    /// Keep `text` (revision `revision`, in force) as the local copy of the last good document.
    pub async fn save_cache(&self, revision: u64, text: &str) -> Result<(), SourceError> {
        let Some(path) = self.inner.cache.clone() else {
            return Ok(());
        };
        let (document, text) = (self.inner.document.clone(), text.to_owned());
        tokio::task::spawn_blocking(move || cache::save(&path, &document, revision, &text))
            .await
            .map_err(|e| SourceError::Io {
                path: self.inner.cache.clone().unwrap_or_default(),
                source: std::io::Error::other(e),
            })?
    }

    /// The number of the newest revision (0: none yet).
    pub async fn newest(&self) -> Result<u64, SourceError> {
        let pool = self.ready().await?;
        let newest: i64 = bounded(
            sqlx::query_scalar(
                "SELECT COALESCE(MAX(revision), 0) FROM switchyard_config.revisions \
                 WHERE document = $1",
            )
            .bind(&self.inner.document)
            .fetch_one(&pool),
        )
        .await?;
        Ok(to_u64(newest))
    }

    /// The text of revision `revision`.
    pub async fn read_revision(&self, revision: u64) -> Result<String, SourceError> {
        let pool = self.ready().await?;
        let text: Option<String> = bounded(
            sqlx::query_scalar(
                "SELECT text FROM switchyard_config.revisions \
                 WHERE document = $1 AND revision = $2",
            )
            .bind(&self.inner.document)
            .bind(to_i64(revision))
            .fetch_optional(&pool),
        )
        .await?;
        text.ok_or_else(|| SourceError::NoRevision {
            document: self.inner.document.clone(),
            revision,
        })
    }

    /// The newest `limit` revisions, newest first, without their texts.
    pub async fn revisions(&self, limit: usize) -> Result<Vec<Revision>, SourceError> {
        let pool = self.ready().await?;
        let rows = bounded(
            sqlx::query(
                "SELECT revision, hash, author, replica, reason, origin, created_at_ms \
                 FROM switchyard_config.revisions WHERE document = $1 \
                 ORDER BY revision DESC LIMIT $2",
            )
            .bind(&self.inner.document)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&pool),
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Revision {
                    revision: to_u64(row.try_get("revision")?),
                    hash: row.try_get("hash")?,
                    author: row.try_get("author")?,
                    replica: row.try_get("replica")?,
                    reason: row.try_get("reason")?,
                    origin: row.try_get("origin")?,
                    created_at_ms: row.try_get("created_at_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    /// Append `text` as the next revision if the newest is still `expected` (any newest when
    /// `None`); returns the new revision number. `origin` says what wrote it (`admin`,
    /// `rollback`, `push`).
    pub async fn write(
        &self,
        text: &str,
        expected: Option<u64>,
        author: &Author,
        origin: &str,
    ) -> Result<u64, SourceError> {
        let pool = self.ready().await?;
        let hash = hex::encode(Sha256::digest(text.as_bytes()));
        let name = author.name.clone().unwrap_or_else(|| "switchyard".into());
        let document = self.inner.document.clone();
        let replica = self.inner.replica.clone();
        let reason = author.reason.clone();
        let (text, origin) = (text.to_owned(), origin.to_owned());
        bounded(async move {
            let mut conn = pool.acquire().await?;
            let mut tx = conn.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('switchyard_config:' || $1))")
                .bind(&document)
                .execute(&mut *tx)
                .await?;
            let newest: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(revision), 0) FROM switchyard_config.revisions \
                 WHERE document = $1",
            )
            .bind(&document)
            .fetch_one(&mut *tx)
            .await?;
            let newest = to_u64(newest);
            if let Some(based_on) = expected
                && based_on != newest
            {
                return Ok(Err(SourceError::Moved { based_on, newest }));
            }
            let inserted = sqlx::query(
                "INSERT INTO switchyard_config.revisions \
                 (document, revision, text, hash, author, replica, reason, origin) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&document)
            .bind(to_i64(newest + 1))
            .bind(&text)
            .bind(&hash)
            .bind(&name)
            .bind(&replica)
            .bind(&reason)
            .bind(&origin)
            .execute(&mut *tx)
            .await;
            match inserted {
                // A row inserted by hand outside the lock took the number: another edit won.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Ok(Err(SourceError::Moved {
                        based_on: newest,
                        newest: newest + 1,
                    }));
                }
                other => other?,
            };
            tx.commit().await?;
            Ok(Ok(newest + 1))
        })
        .await?
    }

    /// A connection listening for new revisions (`NOTIFY switchyard_config`). It has a pool
    /// of its own: a held LISTEN connection must not starve reads and writes.
    pub async fn listen(&self) -> Result<PgListener, SourceError> {
        self.ready().await?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(self.inner.connect.clone());
        bounded(async move {
            let mut listener = PgListener::connect_with(&pool).await?;
            // A lost connection is reported, not silently replaced: the caller must catch up
            // on what it missed while it was gone.
            listener.eager_reconnect(false);
            listener.listen(CHANNEL).await?;
            Ok(listener)
        })
        .await
    }

    /// A connection of its own for a session advisory lock (the guard driver's lead): held
    /// for as long as the lock, and closing it is what releases the lock.
    pub async fn dedicated(&self) -> Result<sqlx::PgConnection, SourceError> {
        bounded(sqlx::PgConnection::connect_with(&self.inner.connect)).await
    }

    /// Try `pg_try_advisory_lock(key)` on `conn`, bounded like every call.
    pub async fn try_lock(conn: &mut sqlx::PgConnection, key: i64) -> Result<bool, SourceError> {
        bounded(
            sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(conn),
        )
        .await
    }

    /// Whether `conn` still answers (a held lock lives as long as its session).
    pub async fn ping(conn: &mut sqlx::PgConnection) -> Result<(), SourceError> {
        bounded(conn.ping()).await
    }

    /// The revision a notification announces, if it is about this document.
    pub fn announced(&self, payload: &str) -> Option<u64> {
        let (document, revision) = payload.rsplit_once(':')?;
        (document == self.inner.document)
            .then(|| revision.parse().ok())
            .flatten()
    }
}

/// Document names: safe in a notification payload and a cache file name.
fn valid_document_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn unavailable(error: sqlx::Error) -> SourceError {
    SourceError::Unavailable(error)
}

/// Run one database call with [`CALL_TIMEOUT`].
async fn bounded<T>(call: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, SourceError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result.map_err(unavailable),
        Err(_) => Err(unavailable(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {CALL_TIMEOUT:?}"),
        )))),
    }
}

/// Revisions are `BIGINT` in the database and never negative.
fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> SourceOptions {
        SourceOptions {
            replica: "r1".into(),
            cache_dir: Some(PathBuf::from("/var/cache/sy")),
        }
    }

    #[test]
    fn urls_name_a_document_and_keep_driver_parameters() {
        let source = PgSource::parse(
            "postgres://sy:hunter2@db:5432/sy?sslmode=disable&document=main&poll=250ms",
            &options(),
        )
        .unwrap();
        assert_eq!(source.document(), "main");
        assert_eq!(source.poll_interval(), Duration::from_millis(250));
        assert_eq!(
            source.describe(),
            "postgres://sy:***@db:5432/sy?document=main"
        );
        assert!(!format!("{source:?}").contains("hunter2"));
        assert_eq!(
            source.cache_path().unwrap(),
            Path::new("/var/cache/sy/switchyard-main.cache.json")
        );
        let defaults = PgSource::parse("postgresql://db/sy?document=a.b-c_1", &options()).unwrap();
        assert_eq!(defaults.poll_interval(), DEFAULT_POLL);
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, says) in [
            ("postgres://sy:pw@db/sy", "?document=NAME"),
            ("postgres://db/sy?document=a/b", "document=a/b"),
            ("postgres://db/sy?document=", "document="),
            ("postgres://db/sy?document=m&poll=soon", "poll=soon"),
            ("postgres://db/sy?document=m&poll=1h", "between"),
        ] {
            let error = PgSource::parse(url, &options()).unwrap_err().to_string();
            assert!(error.contains(says), "{url}: {error}");
            assert!(!error.contains(":pw@"), "{error}");
        }
    }

    #[test]
    fn notifications_name_document_and_revision() {
        let source = PgSource::parse("postgres://db/sy?document=main", &options()).unwrap();
        assert_eq!(source.announced("main:42"), Some(42));
        assert_eq!(source.announced("other:42"), None);
        assert_eq!(source.announced("main:x"), None);
        assert_eq!(source.announced("garbage"), None);
    }
}
