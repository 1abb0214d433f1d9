//! Heartbeats and the fleet view: one row per replica and document in
//! `switchyard_config.replicas`, stamped with the database's clock.

use std::time::Duration;

use sqlx::Row;

use super::{PgSource, bounded, to_i64, to_u64};
use crate::config::source::SourceError;

/// A replica's heartbeat: what it serves and since when.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub revision: u64,
    pub loaded_at_ms: i64,
    pub started_at_ms: i64,
    /// The replica's admin listener address.
    pub admin: Option<String>,
    /// Whether its LISTEN connection is up.
    pub listening: bool,
    /// Why the newest revision was rejected, when it was.
    pub last_error: Option<String>,
}

/// A replica row of the fleet view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplicaRow {
    pub replica: String,
    pub revision: Option<u64>,
    pub loaded_at_ms: Option<i64>,
    pub started_at_ms: i64,
    pub last_seen_ms: i64,
    pub admin: Option<String>,
    pub version: Option<String>,
    pub listening: bool,
    pub last_error: Option<String>,
}

/// The fleet as the database sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetView {
    /// The database's clock, epoch milliseconds.
    pub now_ms: i64,
    /// The newest revision of the document (0: none yet).
    pub newest: u64,
    /// Replicas seen within the window, by name.
    pub replicas: Vec<ReplicaRow>,
}

// === impl PgSource ===

impl PgSource {
    /// Record this replica's heartbeat.
    pub async fn heartbeat(&self, beat: &Heartbeat) -> Result<(), SourceError> {
        let pool = self.ready().await?;
        bounded(
            sqlx::query(
                "INSERT INTO switchyard_config.replicas \
                 (document, replica, revision, loaded_at_ms, started_at_ms, last_seen_ms, admin, \
                  version, listening, last_error) \
                 VALUES ($1, $2, $3, $4, $5, switchyard_config.now_ms(), $6, $7, $8, $9) \
                 ON CONFLICT (document, replica) DO UPDATE SET \
                 revision = excluded.revision, loaded_at_ms = excluded.loaded_at_ms, \
                 started_at_ms = excluded.started_at_ms, last_seen_ms = excluded.last_seen_ms, \
                 admin = excluded.admin, version = excluded.version, \
                 listening = excluded.listening, last_error = excluded.last_error",
            )
            .bind(self.document())
            .bind(self.replica())
            .bind(to_i64(beat.revision))
            .bind(beat.loaded_at_ms)
            .bind(beat.started_at_ms)
            .bind(&beat.admin)
            .bind(env!("CARGO_PKG_VERSION"))
            .bind(beat.listening)
            .bind(&beat.last_error)
            .execute(&pool),
        )
        .await?;
        Ok(())
    }

    /// Remove this replica's heartbeat row (a clean shutdown: it is gone, not lagging).
    pub async fn leave(&self) -> Result<(), SourceError> {
        let pool = self.ready().await?;
        bounded(
            sqlx::query(
                "DELETE FROM switchyard_config.replicas WHERE document = $1 AND replica = $2",
            )
            .bind(self.document())
            .bind(self.replica())
            .execute(&pool),
        )
        .await?;
        Ok(())
    }

    /// The newest revision and every replica seen within `window`.
    pub async fn fleet(&self, window: Duration) -> Result<FleetView, SourceError> {
        let pool = self.ready().await?;
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let document = self.document().to_owned();
        bounded(async move {
            let (now_ms, newest): (i64, i64) = sqlx::query_as(
                "SELECT switchyard_config.now_ms(), COALESCE(MAX(revision), 0) \
                 FROM switchyard_config.revisions WHERE document = $1",
            )
            .bind(&document)
            .fetch_one(&pool)
            .await?;
            let rows = sqlx::query(
                "SELECT replica, revision, loaded_at_ms, started_at_ms, last_seen_ms, admin, \
                 version, listening, last_error FROM switchyard_config.replicas \
                 WHERE document = $1 AND last_seen_ms >= $2 ORDER BY replica",
            )
            .bind(&document)
            .bind(now_ms.saturating_sub(window_ms))
            .fetch_all(&pool)
            .await?;
            let replicas = rows
                .iter()
                .map(|row| {
                    Ok(ReplicaRow {
                        replica: row.try_get("replica")?,
                        revision: row.try_get::<Option<i64>, _>("revision")?.map(to_u64),
                        loaded_at_ms: row.try_get("loaded_at_ms")?,
                        started_at_ms: row.try_get("started_at_ms")?,
                        last_seen_ms: row.try_get("last_seen_ms")?,
                        admin: row.try_get("admin")?,
                        version: row.try_get("version")?,
                        listening: row.try_get("listening")?,
                        last_error: row.try_get("last_error")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?;
            Ok(FleetView {
                now_ms,
                newest: to_u64(newest),
                replicas,
            })
        })
        .await
    }
}
