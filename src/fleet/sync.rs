//! The loops that keep a replica on the newest revision: one holds the LISTEN connection and
//! wakes the other on each announced revision; the other polls, loads, heartbeats and caches.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use super::{Fleet, Rejected};
use crate::clock::epoch_ms;
use crate::config::source::{Heartbeat, PgSource, SourceError};
use crate::live::{Live, ReloadError, Trigger};

/// First retry after a failure, and the longest wait between retries.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));
/// How long a clean shutdown waits to remove this replica's heartbeat row.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);

/// Exponential backoff between reconnection attempts: 100 ms doubling up to 2 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF.0 }
    }
}

impl Backoff {
    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF.1);
        wait
    }

    /// After a success: start small again.
    pub fn reset(&mut self) {
        self.next = BACKOFF.0;
    }
}

/// Keep up with the document until `shutdown`; on the way out, leave the fleet view.
pub(super) async fn run(
    fleet: Arc<Fleet>,
    pg: PgSource,
    live: Arc<Live>,
    admin: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let listener = tokio::spawn(listen(fleet.clone(), pg.clone(), shutdown.clone()));
    let mut changed = live.subscribe();
    let mut backoff = Backoff::default();
    let mut cached = None;
    loop {
        let wait = match pass(&fleet, &pg, &live, &admin, &mut cached).await {
            Ok(()) => {
                backoff.reset();
                pg.poll_interval()
            }
            Err(error) => {
                fleet.set_up(false, Some(&error));
                backoff.next_wait()
            }
        };
        tokio::select! {
            _ = fleet.wake.notified() => {}
            result = changed.changed() => if result.is_err() { break },
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
    }
    let _ = listener.await;
    match tokio::time::timeout(LEAVE_TIMEOUT, pg.leave()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!("heartbeat row not removed: {error}"),
        Err(_) => tracing::debug!("heartbeat row not removed: no answer"),
    }
    pg.close().await;
}

/// One pass: load a newer revision, record the heartbeat, keep the cache.
async fn pass(
    fleet: &Fleet,
    pg: &PgSource,
    live: &Live,
    admin: &str,
    cached: &mut Option<u64>,
) -> Result<(), SourceError> {
    cache(pg, live, cached).await;
    let newest = pg.newest().await?;
    fleet.set_up(true, None);
    fleet.saw_newest(newest);
    load_newer(fleet, live, newest).await?;
    let snapshot = live.load();
    let beat = pg
        .heartbeat(&Heartbeat {
            revision: snapshot.generation,
            loaded_at_ms: epoch_ms(snapshot.loaded_at),
            started_at_ms: fleet.started_at_ms(),
            admin: Some(admin.to_owned()),
            listening: fleet.listening.load(Ordering::Relaxed),
            last_error: fleet.rejected().map(|r| r.message),
        })
        .await;
    // After the heartbeat: the fleet view should not wait for a disk flush.
    cache(pg, live, cached).await;
    beat
}

/// Bring the replica up to the newest revision before an admin write.
pub(super) async fn catch_up(fleet: &Fleet, pg: &PgSource, live: &Live) -> Result<(), SourceError> {
    let newest = match pg.newest().await {
        Ok(newest) => newest,
        Err(error) => {
            fleet.set_up(false, Some(&error));
            return Err(error);
        }
    };
    fleet.saw_newest(newest);
    load_newer(fleet, live, newest).await
}

/// Reload when `newest` is ahead of the revision in force and not already rejected. A revision
/// that does not build is remembered (the reload logged and counted it), so polls do not
/// count the same failure again.
async fn load_newer(fleet: &Fleet, live: &Live, newest: u64) -> Result<(), SourceError> {
    if newest <= live.load().generation || fleet.rejected().is_some_and(|r| r.revision >= newest) {
        return Ok(());
    }
    match live.reload(Trigger::File).await {
        Ok(_) => {
            fleet.set_rejected(None);
            Ok(())
        }
        Err(ReloadError::Build(error)) => {
            fleet.set_rejected(Some(Rejected {
                revision: newest,
                message: error.to_string(),
            }));
            Ok(())
        }
        Err(ReloadError::Source(error)) => Err(error),
        Err(error) => {
            tracing::warn!("revision {newest} not loaded: {error}");
            Ok(())
        }
    }
}

/// Save the revision in force as the local copy, once per revision.
async fn cache(pg: &PgSource, live: &Live, cached: &mut Option<u64>) {
    let snapshot = live.load();
    if *cached == Some(snapshot.generation) {
        return;
    }
    match pg.save_cache(snapshot.generation, &snapshot.text).await {
        Ok(()) => *cached = Some(snapshot.generation),
        Err(error) => tracing::warn!("cannot cache revision {}: {error}", snapshot.generation),
    }
}

/// Hold a LISTEN connection; wake the sync loop on each revision of this document, and once
/// after every (re)connection to catch up on what was announced while it was away.
async fn listen(fleet: Arc<Fleet>, pg: PgSource, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Backoff::default();
    loop {
        let attempt = tokio::select! {
            attempt = pg.listen() => attempt,
            _ = shutdown.changed() => return,
        };
        let mut listener = match attempt {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!("LISTEN connection not established: {error}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_wait()) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        backoff.reset();
        fleet.listening.store(true, Ordering::Relaxed);
        fleet.wake.notify_one();
        loop {
            let received = tokio::select! {
                received = listener.try_recv() => received,
                _ = shutdown.changed() => return,
            };
            match received {
                Ok(Some(notification)) => {
                    if let Some(revision) = pg.announced(notification.payload()) {
                        tracing::debug!(revision, "revision announced");
                        fleet.saw_newest(revision);
                        fleet.wake.notify_one();
                    }
                }
                Ok(None) | Err(_) => {
                    fleet.listening.store(false, Ordering::Relaxed);
                    tracing::info!(
                        "LISTEN connection lost; reconnecting (the poll covers the gap)"
                    );
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut backoff = Backoff::default();
        let waits: Vec<u128> = (0..7).map(|_| backoff.next_wait().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), Duration::from_millis(100));
    }
}
