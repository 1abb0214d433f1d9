//! A fleet of replicas sharing one rule document in PostgreSQL: replica identity, keeping
//! up with the newest revision, heartbeats, and the fleet view (`GET /admin/fleet`).
//!
//! Each replica learns of a new revision in two ways: a `LISTEN` connection woken by the
//! revisions table's insert trigger (milliseconds), and a poll every `?poll=` interval (5 s by
//! default) as the safety net — a lost notification or a half-open LISTEN connection never
//! leaves a replica behind for longer than one poll. Every pass also records a heartbeat (the
//! revision served and when it was loaded) and keeps the local cache of the last good revision.
//!
//! When the database cannot be reached, nothing on the request path notices: the snapshot in
//! force keeps serving, the admin API's reads go on, its writes answer 503 (see
//! [`Fleet::check_writable`]), `switchyard_config_source_up` drops to 0, and the loop retries
//! with a growing backoff until it can catch up on the newest revision by itself. A newest
//! revision that does not build is rejected like a bad file — logged as `revision N:line:col`,
//! counted, shown in the status — and not retried until a newer one appears.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::clock::{Clock, epoch_ms};
use crate::config::source::{PgSource, ReplicaRow, Source, SourceError};
use crate::live::Live;
use crate::telemetry::Metrics;

mod sync;
mod view;

pub use sync::Backoff;
pub use view::{FleetAnswer, Member};

/// A replica is listed by the fleet view when seen within this window.
pub const SEEN_WINDOW: Duration = Duration::from_secs(60);

/// This replica's default identity: the host name (in Kubernetes, the pod's name).
pub fn default_replica_id() -> String {
    let from_env = std::env::var("HOSTNAME").ok();
    let from_files = || {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|f| std::fs::read_to_string(f).ok())
    };
    from_env
        .or_else(from_files)
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "switchyard".to_owned())
}

pub use crate::api::Rejected;
use crate::api::SourceStatus;

/// Why an admin write cannot go ahead.
#[derive(Debug, thiserror::Error)]
pub enum WriteRefused {
    #[error(
        "the config database is unreachable: writes are refused until it is back ({reason}); traffic and reads go on with revision {serving}"
    )]
    SourceDown { reason: String, serving: u64 },
}

/// This replica's place in the fleet.
pub struct Fleet {
    replica: String,
    started_at: SystemTime,
    source: Option<PgSource>,
    metrics: Arc<Metrics>,
    clock: Clock,
    /// Whether the last call to the database succeeded.
    up: AtomicBool,
    /// Why it failed, while it does.
    down_reason: Mutex<Option<String>>,
    /// Whether the LISTEN connection is up.
    listening: AtomicBool,
    /// The newest revision seen (polls, notifications).
    newest: AtomicU64,
    rejected: Mutex<Option<Rejected>>,
    /// Wakes the sync loop: a notification, a reconnected listener, an admin write's catch-up.
    wake: Notify,
}

// === impl Fleet ===

impl Fleet {
    /// The fleet state of a replica named `replica` whose rules come from `source`.
    pub fn new(
        replica: String,
        source: &Source,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) -> Arc<Fleet> {
        let pg = source.postgres().cloned();
        // A file is always there; a database is up once a call to it succeeds.
        let up = pg.is_none();
        metrics.source_up.set(i64::from(up));
        Arc::new(Fleet {
            replica,
            started_at: clock.now(),
            source: pg,
            metrics,
            clock,
            up: AtomicBool::new(up),
            down_reason: Mutex::new(None),
            listening: AtomicBool::new(false),
            newest: AtomicU64::new(0),
            rejected: Mutex::new(None),
            wake: Notify::new(),
        })
    }

    /// This replica's identity.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Whether the config source answered the last call.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// The newest revision this replica would not load, if it is still the newest it knows.
    pub fn rejected(&self) -> Option<Rejected> {
        self.rejected.lock().clone()
    }

    /// Start keeping up with the shared document (nothing for a file source): the LISTEN
    /// connection, the poll, heartbeats and the local cache, until `shutdown`.
    pub fn spawn(
        self: &Arc<Self>,
        live: Arc<Live>,
        admin: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) -> Option<JoinHandle<()>> {
        let pg = self.source.clone()?;
        Some(tokio::spawn(sync::run(
            self.clone(),
            pg,
            live,
            admin.to_string(),
            shutdown,
        )))
    }

    /// Refuse an admin write while the database is known to be down (503); with `catch_up`,
    /// bring this replica up to the newest revision first, so an edit is computed from it.
    pub async fn check_writable(&self, live: &Live, catch_up: bool) -> Result<(), WriteRefused> {
        let Some(pg) = &self.source else {
            return Ok(());
        };
        let refused = |reason: String| WriteRefused::SourceDown {
            reason,
            serving: live.load().generation,
        };
        // Known to be down: answer at once rather than wait for a connection to time out.
        let known_down = self.down_reason.lock().clone();
        if let Some(reason) = known_down {
            return Err(refused(reason));
        }
        if !catch_up {
            return Ok(());
        }
        match sync::catch_up(self, pg, live).await {
            Ok(()) => Ok(()),
            Err(error) => Err(refused(error.to_string())),
        }
    }

    /// The source's part of `GET /admin/status`.
    pub fn status(&self, live: &Live) -> SourceStatus {
        let serving = live.load().generation;
        match &self.source {
            None => SourceStatus::File { up: true },
            Some(pg) => SourceStatus::Postgres {
                document: pg.document().to_owned(),
                up: self.is_up(),
                down_reason: self.down_reason.lock().clone(),
                listening: self.listening.load(Ordering::Relaxed),
                newest_revision: self.newest.load(Ordering::Relaxed).max(serving),
                poll_interval_ms: u64::try_from(pg.poll_interval().as_millis()).unwrap_or(u64::MAX),
                rejected: self.rejected(),
                cache: pg.cache_path().map(|p| p.display().to_string()),
            },
        }
    }

    /// Every replica seen in the last minute, with the revision it serves and its lag. Without
    /// the database, this replica alone (and `source_up: false`).
    pub async fn view(&self, live: &Live) -> FleetAnswer {
        view::answer(self, live).await
    }

    fn set_up(&self, up: bool, reason: Option<&SourceError>) {
        self.up.store(up, Ordering::Relaxed);
        self.metrics.source_up.set(i64::from(up));
        let mut slot = self.down_reason.lock();
        if up {
            if slot.take().is_some() {
                tracing::info!("config database reachable again");
            }
            return;
        }
        let message = reason.map_or_else(|| "no answer".to_owned(), ToString::to_string);
        if slot.is_none() {
            tracing::warn!(
                "config database unreachable, serving the rules in force and refusing admin writes until it is back: {message}"
            );
        }
        *slot = Some(message);
    }

    fn saw_newest(&self, revision: u64) {
        self.newest.fetch_max(revision, Ordering::Relaxed);
    }

    fn set_rejected(&self, rejected: Option<Rejected>) {
        *self.rejected.lock() = rejected;
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn started_at_ms(&self) -> i64 {
        epoch_ms(self.started_at)
    }

    /// This replica as the fleet view shows it, from its own state.
    fn myself(&self, live: &Live) -> ReplicaRow {
        let snapshot = live.load();
        ReplicaRow {
            replica: self.replica.clone(),
            revision: Some(snapshot.generation),
            loaded_at_ms: Some(epoch_ms(snapshot.loaded_at)),
            started_at_ms: self.started_at_ms(),
            last_seen_ms: self.now_ms(),
            admin: None,
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            listening: self.listening.load(Ordering::Relaxed),
            last_error: self.rejected().map(|r| r.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_named_after_their_host_by_default() {
        let name = default_replica_id();
        assert!(!name.is_empty());
        assert_eq!(name, name.trim());
    }
}
