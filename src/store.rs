//! The durable store: audit log, config history, shadow results (aggregates, samples) and the
//! report that reads them — one interface over SQLite (default) and PostgreSQL (a fleet).
//!
//! One code path serves both databases: sqlx's `any` driver, hand-written `$N` placeholders,
//! time as epoch milliseconds (`BIGINT`), JSON as `TEXT`, no compile-time checked macros. The
//! only per-database text is the DDL: SQLite and PostgreSQL spell an auto-incrementing id
//! differently, so `migrations/sqlite` and `migrations/postgres` hold the same schema in two
//! dialects, both embedded with `sqlx::migrate!`.
//!
//! Shadow results never hit the database from the request path: callers hand them to a
//! [`StoreWriter`], whose bounded queue feeds one background task that writes batches in one
//! transaction each. A full queue or a failing database drops (and counts) results; it never
//! blocks or fails a caller.
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchyard::store::StoreError> {
//! use switchyard::store::{Store, StoreWriter, WriterConfig};
//! let store = Store::open("sqlite://switchyard.db", std::path::Path::new("/etc/switchyard")).await?;
//! let writer = StoreWriter::spawn(store.clone(), WriterConfig::default());
//! // shadow task: writer.try_send(result);   admin: store.append_audit(&entry).await?;
//! writer.flush().await;
//! # Ok(()) }
//! ```

mod audit;
mod batch;
mod classify;
mod diffsets;
mod histogram;
mod history;
mod report;
mod report_query;
mod retention;
mod samples;
mod schema;
mod shadow;
mod sql;
mod stats;
mod timeline;
mod writer;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;

use std::path::{Path, PathBuf};

use sqlx::AnyPool;

pub use audit::{AuditEntry, AuditFilter};
pub use batch::BatchStats;
pub use classify::PathRules;
pub use histogram::{BIN_COUNT, LatencyHistogram, bin_bounds_ms, bin_index};
pub use history::{GENERATIONS_KEPT, GenerationRecord, GenerationSummary};
pub use report::{
    Counts, DEFAULT_NOISE_WINDOW_MS, DiffPath, LatencySummary, NoiseFlag, Parity, PathCounts,
    Report, ReportFilter, ReportPolicy, RouteReport, ScopeReport, TenantReport, Verdict,
};
pub use retention::RetainStats;
pub use samples::{DEFAULT_RESERVOIR_K, StoredSample};
pub use shadow::{
    BUCKET_MS, DiffRecord, Outcome, SampleHeaders, SamplePair, SampleResponse, SelfCheck,
    ShadowResult, SkipReason, bucket_floor, scrub_headers,
};
pub use stats::{Z95, wilson_interval};
pub use timeline::{RouteTimeline, TimelinePoint};
pub use writer::{RetentionPolicy, StoreWriter, WriterConfig, WriterCounters, WriterStats};

/// Everything that can go wrong talking to the store. Connection URLs are never echoed back:
/// they may carry a password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "unsupported store URL scheme {scheme:?}: expected sqlite://FILE, sqlite::memory: or postgres://…"
    )]
    UnsupportedUrl { scheme: String },
    #[error("a sqlite: store URL needs a file name (or :memory:)")]
    MissingSqlitePath,
    #[error("cannot create the directory {path} for the SQLite store: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to the store: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("cannot encode or decode stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{what} {value} does not fit the store's signed 64-bit column")]
    OutOfRange { what: &'static str, value: u64 },
}

/// Result alias for store calls.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a [`Store`] talks to; only the DDL and connection set-up depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle on the durable store. Cheap to clone (a connection pool inside).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

// === impl Store ===

impl Store {
    /// Open (creating if needed) the store at `url` and bring its schema up to date.
    ///
    /// `sqlite://relative/or/abs.db` (relative to `base_dir`, normally the config file's
    /// directory), `sqlite::memory:` (tests), `postgres://user:pass@host/db`.
    pub async fn open(url: &str, base_dir: &Path) -> Result<Store> {
        let target = schema::Target::parse(url, base_dir)?;
        let (pool, backend) = schema::connect(&target).await?;
        schema::migrate(&pool, backend).await?;
        Ok(Store { pool, backend })
    }

    /// The database behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Close every connection; later calls fail with [`StoreError::Query`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A store whose pool connects on first use and never ran migrations: lets tests point a
    /// writer at a database that is down.
    #[cfg(test)]
    pub(crate) fn open_lazy_for_tests(url: &str, base_dir: &Path) -> Result<Store> {
        let target = schema::Target::parse(url, base_dir)?;
        let (pool, backend) = schema::connect_lazy(&target)?;
        Ok(Store { pool, backend })
    }
}

/// Counts are `BIGINT` (signed) in the database; they are never negative.
pub(crate) fn count_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Generation numbers are `u64` in Rust and `BIGINT` in the database.
pub(crate) fn to_i64(what: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { what, value })
}
