//! Who drives the guards and schedules. A single process drives its own; with the rules in
//! PostgreSQL exactly one replica of the fleet does: the one holding a session advisory lock
//! (keyed by the document's name) on a connection of its own. The lock lives as long as that
//! session, so a replica that dies or loses the database lets another one take over at its
//! next tick; the others keep serving the rules the driver writes.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::source::Source;
use crate::config::source::postgres::PgSource;

/// This replica's claim to drive.
pub enum Lead {
    /// Not shared: always drives.
    Single,
    /// One driver per shared document.
    Postgres(PgLead),
}

/// The advisory lock of one shared document.
pub struct PgLead {
    source: PgSource,
    key: i64,
    /// Kept between ticks, leading or not, so a follower does not reconnect each time.
    conn: tokio::sync::Mutex<Option<sqlx::PgConnection>>,
    leading: AtomicBool,
}

impl Lead {
    /// The claim that fits `source`.
    pub fn for_source(source: &Source) -> Lead {
        match source.postgres() {
            Some(pg) => Lead::Postgres(PgLead::new(pg.clone())),
            None => Lead::Single,
        }
    }

    /// Take or keep the lead; whether this replica drives now.
    pub async fn acquire(&self) -> bool {
        match self {
            Lead::Single => true,
            Lead::Postgres(pg) => pg.acquire().await,
        }
    }

    /// Whether this replica drove at its last tick.
    pub fn holds(&self) -> bool {
        match self {
            Lead::Single => true,
            Lead::Postgres(pg) => pg.leading.load(Ordering::Relaxed),
        }
    }

    /// Give the lead up (shutdown), so another replica takes it at its next tick.
    pub async fn release(&self) {
        if let Lead::Postgres(pg) = self {
            pg.release().await;
        }
    }
}

// === impl PgLead ===

impl PgLead {
    pub fn new(source: PgSource) -> PgLead {
        PgLead {
            key: lock_key(source.document()),
            source,
            conn: tokio::sync::Mutex::new(None),
            leading: AtomicBool::new(false),
        }
    }

    async fn acquire(&self) -> bool {
        let mut slot = self.conn.lock().await;
        let leading = self.leading.load(Ordering::Relaxed);
        let result = async {
            if slot.is_none() {
                *slot = Some(self.source.dedicated().await?);
            }
            let Some(conn) = slot.as_mut() else {
                return Ok(false);
            };
            if leading {
                PgSource::ping(conn).await.map(|()| true)
            } else {
                PgSource::try_lock(conn, self.key).await
            }
        }
        .await;
        let now = match result {
            Ok(now) => now,
            Err(error) => {
                // A lost session has lost its lock too: start over with a new connection.
                if leading {
                    tracing::warn!("guard lead lost: {error}");
                }
                *slot = None;
                false
            }
        };
        if now != leading {
            tracing::info!(
                document = self.source.document(),
                "{}",
                if now {
                    "this replica now drives guards and schedules"
                } else {
                    "this replica no longer drives guards and schedules"
                }
            );
        }
        self.leading.store(now, Ordering::Relaxed);
        now
    }

    async fn release(&self) {
        let conn = self.conn.lock().await.take();
        self.leading.store(false, Ordering::Relaxed);
        if let Some(conn) = conn {
            use sqlx::Connection;
            let _ = conn.close().await;
        }
    }
}

/// The advisory lock key of `document`: FNV-1a of a prefixed name, stable across versions and
/// machines (every replica must compute the same key).
fn lock_key(document: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "switchyard.guard:".bytes().chain(document.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_le_bytes(hash.to_le_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::source::SourceOptions;

    #[test]
    fn lock_keys_are_pinned() {
        // Replicas of different versions must agree on the key.
        assert_eq!(lock_key("main"), -5_131_897_698_988_158_347);
        assert_ne!(lock_key("main"), lock_key("staging"));
    }

    /// Two replicas on one document: exactly one drives; when it lets go, the other takes
    /// over. Needs `SWITCHYARD_TEST_PG`; skipped without it.
    #[tokio::test]
    async fn one_replica_of_a_fleet_drives() {
        let Ok(url) = std::env::var("SWITCHYARD_TEST_PG") else {
            return;
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}document=guard-lead-test");
        let source = |replica: &str| {
            let options = SourceOptions {
                replica: replica.into(),
                cache_dir: None,
            };
            Lead::Postgres(PgLead::new(PgSource::parse(&url, &options).unwrap()))
        };
        let (a, b) = (source("a"), source("b"));
        assert!(a.acquire().await);
        assert!(!b.acquire().await);
        assert!(a.acquire().await, "the driver keeps the lead");
        assert!(a.holds() && !b.holds());
        a.release().await;
        assert!(b.acquire().await);
        assert!(!a.acquire().await);
        b.release().await;
        a.release().await;
    }
}
