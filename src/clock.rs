//! The one source of time: wall-clock readings (epoch milliseconds for the store, windows and
//! audit stamps) and monotonic instants (timeouts, latencies) come from a [`Clock`], handed to
//! every part that needs time, so windows, schedules, retention and ejection can be tested
//! without sleeping.
//!
//! - [`Clock::system`]: the real clocks; what the gateway runs on.
//! - [`Clock::tokio`]: follows tokio's clock, so `#[tokio::test(start_paused = true)]` and
//!   `tokio::time::advance` move wall time and instants together. Wall time starts at the real
//!   time when the clock is made.
//! - [`Clock::manual`]: stands still until [`ManualTime::advance`] moves it; for pure logic
//!   tested without a runtime.
//!
//! Direct reads of `SystemTime::now`/`Instant::now` elsewhere are refused by clippy
//! (`clippy.toml`): this module is the one place allowed to make them.

#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A monotonic instant (tokio's, so paused time moves it).
pub type Instant = tokio::time::Instant;

/// A handle on the time source. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Clock {
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    System,
    Tokio { wall: SystemTime, start: Instant },
    Manual(Arc<ManualTime>),
}

/// The hand that moves a [`Clock::manual`].
#[derive(Debug)]
pub struct ManualTime {
    /// Milliseconds since the epoch.
    now_ms: AtomicI64,
    /// The instant the clock was made; instants advance from it with `now_ms`.
    start: Instant,
    start_ms: i64,
}

impl ManualTime {
    /// Move the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Set the wall time (epoch milliseconds); instants follow the difference.
    pub fn set_ms(&self, ms: i64) {
        self.now_ms.store(ms, Ordering::Relaxed);
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

// === impl Clock ===

impl Clock {
    /// The real clocks.
    pub fn system() -> Clock {
        Clock {
            source: Source::System,
        }
    }

    /// A clock that follows tokio's (pausable) time; wall time starts now.
    pub fn tokio() -> Clock {
        Clock {
            source: Source::Tokio {
                wall: SystemTime::now(),
                start: Instant::now(),
            },
        }
    }

    /// A clock standing at `start_ms` (epoch milliseconds) until moved by the returned hand.
    pub fn manual(start_ms: i64) -> (Clock, Arc<ManualTime>) {
        let hand = Arc::new(ManualTime {
            now_ms: AtomicI64::new(start_ms),
            start: Instant::now(),
            start_ms,
        });
        let clock = Clock {
            source: Source::Manual(hand.clone()),
        };
        (clock, hand)
    }

    /// The wall time now.
    pub fn now(&self) -> SystemTime {
        match &self.source {
            Source::System => SystemTime::now(),
            Source::Tokio { wall, start } => *wall + start.elapsed(),
            Source::Manual(hand) => {
                let ms = hand.now_ms.load(Ordering::Relaxed);
                UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
            }
        }
    }

    /// Milliseconds since the Unix epoch now (0 before 1970).
    pub fn now_ms(&self) -> i64 {
        epoch_ms(self.now())
    }

    /// Seconds since the Unix epoch now.
    pub fn now_secs(&self) -> u64 {
        u64::try_from(self.now_ms() / 1000).unwrap_or(0)
    }

    /// A monotonic instant now, for timeouts and latencies.
    pub fn instant(&self) -> Instant {
        match &self.source {
            Source::System | Source::Tokio { .. } => Instant::now(),
            Source::Manual(hand) => {
                let moved = hand.now_ms.load(Ordering::Relaxed) - hand.start_ms;
                hand.start + Duration::from_millis(u64::try_from(moved).unwrap_or(0))
            }
        }
    }
}

/// Milliseconds since the Unix epoch of `t` (0 for a time before 1970).
pub fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The time of `ms` epoch milliseconds (the epoch itself for negative values).
pub fn from_epoch_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Serde adapter: a `SystemTime` as epoch milliseconds.
pub mod serde_epoch_ms {
    use std::time::SystemTime;

    /// Serialize as an integer of epoch milliseconds.
    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(super::epoch_ms(*t))
    }

    /// Deserialize from an integer of epoch milliseconds.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let ms = <i64 as serde::Deserialize>::deserialize(d)?;
        Ok(super::from_epoch_ms(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let (clock, hand) = Clock::manual(1_000_000);
        let i0 = clock.instant();
        assert_eq!(clock.now_ms(), 1_000_000);
        hand.advance(Duration::from_secs(90));
        assert_eq!(clock.now_ms(), 1_090_000);
        assert_eq!(clock.now_secs(), 1_090);
        assert_eq!(clock.instant() - i0, Duration::from_secs(90));
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = Clock::tokio();
        let before = clock.now_ms();
        let i0 = clock.instant();
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(clock.now_ms() - before, 3_600_000);
        assert_eq!(clock.instant() - i0, Duration::from_secs(3600));
    }
}
