//! Recent traffic per route, for the admin API: requests per side in one-minute ring buckets
//! (windows of 1 minute, 15 minutes and 1 hour) and the busiest tenants of each route.
//!
//! Memory is bounded whatever the traffic: 60 buckets × 2 sides per route, at most
//! [`MAX_ROUTES`] routes (names come from the config, so this only matters after many reloads
//! that rename routes), and at most [`TOP_K`] tenants per route and half-hour. Tenants are
//! tracked with the space-saving algorithm (Metwally et al.): a heavy hitter is never evicted
//! by the long tail, and each count carries its maximum over-estimate (`error`).
//!
//! The request path calls [`Traffic::record`] once per request and never waits on a lock: side
//! counters are lock-free (one packed atomic per bucket: minute tag and count, so a bucket is
//! reset and incremented in one compare-and-swap); the route table is an `ArcSwap` map copied
//! only when a new route appears; a tenant's hit goes into a bounded lock-free queue that a
//! background task (and every read) folds into the busiest-tenant tables. Should the queue
//! ever be full, the request that finds it so folds it in when nobody else is (a try-lock
//! that never waits), and otherwise drops its own hit, counted in [`Traffic::dropped_hits`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::clock::Clock;
use crate::rules::Side;

/// One-minute buckets kept per route and side: the longest window is one hour.
pub const WINDOW_MINUTES: usize = 60;
/// Tenants tracked per route and half-hour.
pub const TOP_K: usize = 50;
/// Routes tracked at most; requests on further routes are not counted here.
pub const MAX_ROUTES: usize = 4096;
/// The busiest-tenant tables rotate every half hour; a listing merges the current and the
/// previous one, so it covers the last 30 to 60 minutes.
const TENANT_EPOCH_SECS: u64 = 30 * 60;
const COUNT_MASK: u64 = 0xFFFF_FFFF;

/// Tenant hits waiting to be folded into the tables; a few hundred milliseconds of traffic.
const PENDING_HITS: usize = 8192;
/// How often the background task folds pending hits in.
const FOLD_EVERY: Duration = Duration::from_millis(200);

/// Per-route traffic counters of one gateway process.
pub struct Traffic {
    routes: ArcSwap<HashMap<Box<str>, Arc<RouteTraffic>>>,
    /// Serialises the copy-on-write of `routes` (rare: once per new route name).
    insert: Mutex<()>,
    clock: Clock,
    hits: SyncSender<TenantHit>,
    pending: Mutex<Receiver<TenantHit>>,
    /// Tenant hits dropped because the queue was full and being folded by someone else.
    dropped: AtomicU64,
}

/// One request of a tenant, on its way to the busiest-tenant table of its route.
struct TenantHit {
    route: Arc<RouteTraffic>,
    tenant: Box<str>,
    new: bool,
    epoch: u64,
}

/// Requests per side over one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SideCounts {
    pub legacy: u64,
    pub new: u64,
    /// `new / (legacy + new)`; `None` without requests.
    pub new_share: Option<f64>,
}

/// Requests per side over the last 1, 15 and 60 minutes (the current minute included).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Windows {
    #[serde(rename = "1m")]
    pub m1: SideCounts,
    #[serde(rename = "15m")]
    pub m15: SideCounts,
    #[serde(rename = "1h")]
    pub h1: SideCounts,
}

/// One of a route's busiest tenants over the last 30–60 minutes (estimates, see `error`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TenantTraffic {
    pub tenant: String,
    /// Requests counted; over-estimates by at most `error`.
    pub requests: u64,
    /// Of those, served by the new side.
    pub new: u64,
    /// Maximum over-estimate of `requests` (0 when the tenant was tracked from its first request).
    pub error: u64,
}

struct RouteTraffic {
    /// Indexed by [`side_index`].
    sides: [Ring; 2],
    tenants: Mutex<TopTenants>,
}

/// One-minute buckets, each packed as `(minute << 32) | count`.
struct Ring {
    slots: Box<[AtomicU64]>,
}

struct TopTenants {
    epoch: u64,
    current: SpaceSaving,
    previous: SpaceSaving,
}

#[derive(Default)]
struct SpaceSaving {
    entries: HashMap<Box<str>, Entry>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    count: u64,
    error: u64,
    new: u64,
}

// === impl Traffic ===

impl Traffic {
    /// Counters on `clock`. Call [`Traffic::spawn_folding`] from a runtime so tenant hits are
    /// folded in the background; reads fold what is pending anyway.
    pub fn new(clock: Clock) -> Traffic {
        let (hits, pending) = sync_channel(PENDING_HITS);
        Traffic {
            routes: ArcSwap::from_pointee(HashMap::new()),
            insert: Mutex::new(()),
            clock,
            hits,
            pending: Mutex::new(pending),
            dropped: AtomicU64::new(0),
        }
    }

    /// Fold pending tenant hits every [`FOLD_EVERY`] until `traffic` is dropped.
    pub fn spawn_folding(traffic: &Arc<Traffic>) {
        let weak: Weak<Traffic> = Arc::downgrade(traffic);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FOLD_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(traffic) = weak.upgrade() else {
                    return;
                };
                traffic.fold();
            }
        });
    }

    /// Count one request on `route`, decided for `side`, for `tenant` when one was found.
    pub fn record(&self, route: &str, side: Side, tenant: Option<&str>) {
        self.record_at(route, side, tenant, self.clock.now_secs());
    }

    /// [`Traffic::record`] for a request that arrived at `now` (seconds since the epoch): the
    /// request path already read the clock.
    pub fn record_at(&self, route: &str, side: Side, tenant: Option<&str>, now: u64) {
        let Some(counters) = self.route_or_insert(route) else {
            return;
        };
        if let Some(ring) = counters.sides.get(side_index(side)) {
            ring.add(now / 60);
        }
        let Some(tenant) = tenant else { return };
        let hit = TenantHit {
            route: counters,
            tenant: Box::from(tenant),
            new: side == Side::New,
            epoch: now / TENANT_EPOCH_SECS,
        };
        // A full queue: fold it now unless someone else is already doing so (then the hit
        // is dropped and counted; busiest tenants are an estimate and say so).
        if let Err(TrySendError::Full(hit)) = self.hits.try_send(hit) {
            match self.pending.try_lock() {
                Some(pending) => {
                    fold_from(&pending);
                    apply(hit);
                }
                None => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Fold every pending tenant hit into the tables.
    fn fold(&self) {
        fold_from(&self.pending.lock());
    }

    /// Tenant hits dropped so far (the queue was full while another fold ran).
    pub fn dropped_hits(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Requests per side on `route` over the last 1, 15 and 60 minutes.
    pub fn windows(&self, route: &str) -> Windows {
        let minute = self.clock.now_secs() / 60;
        let routes = self.routes.load();
        let Some(counters) = routes.get(route) else {
            return Windows::default();
        };
        let counts = |minutes: u64| {
            let legacy = counters.sides[0].sum(minute, minutes);
            let new = counters.sides[1].sum(minute, minutes);
            let total = legacy + new;
            SideCounts {
                legacy,
                new,
                new_share: (total > 0).then(|| new as f64 / total as f64),
            }
        };
        Windows {
            m1: counts(1),
            m15: counts(15),
            h1: counts(WINDOW_MINUTES as u64),
        }
    }

    /// The `n` busiest tenants of `route`, busiest first (ties by name).
    pub fn busiest(&self, route: &str, n: usize) -> Vec<TenantTraffic> {
        let mut all = self.tenants(route);
        all.truncate(n);
        all
    }

    /// Every tracked tenant of `route`, busiest first.
    pub fn tenants(&self, route: &str) -> Vec<TenantTraffic> {
        self.fold();
        let epoch = self.clock.now_secs() / TENANT_EPOCH_SECS;
        let routes = self.routes.load();
        let Some(counters) = routes.get(route) else {
            return Vec::new();
        };
        let merged = {
            let mut top = counters.tenants.lock();
            top.rotate(epoch);
            top.merged()
        };
        let mut out: Vec<TenantTraffic> = merged
            .into_iter()
            .map(|(tenant, e)| TenantTraffic {
                tenant,
                requests: e.count,
                new: e.new,
                error: e.error,
            })
            .collect();
        out.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.tenant.cmp(&b.tenant)));
        out
    }

    fn route_or_insert(&self, route: &str) -> Option<Arc<RouteTraffic>> {
        if let Some(found) = self.routes.load().get(route) {
            return Some(found.clone());
        }
        let _guard = self.insert.lock();
        let current = self.routes.load_full();
        if let Some(found) = current.get(route) {
            return Some(found.clone());
        }
        if current.len() >= MAX_ROUTES {
            return None;
        }
        let mut next = HashMap::clone(&current);
        let counters = Arc::new(RouteTraffic {
            sides: [Ring::new(), Ring::new()],
            tenants: Mutex::new(TopTenants {
                epoch: 0,
                current: SpaceSaving::default(),
                previous: SpaceSaving::default(),
            }),
        });
        next.insert(route.into(), counters.clone());
        self.routes.store(Arc::new(next));
        Some(counters)
    }
}

fn fold_from(pending: &Receiver<TenantHit>) {
    while let Ok(hit) = pending.try_recv() {
        apply(hit);
    }
}

fn apply(hit: TenantHit) {
    hit.route
        .tenants
        .lock()
        .record(hit.epoch, &hit.tenant, hit.new);
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Legacy => 0,
        Side::New => 1,
    }
}

// === impl Ring ===

impl Ring {
    fn new() -> Ring {
        Ring {
            slots: (0..WINDOW_MINUTES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, minute: u64) -> Option<&AtomicU64> {
        self.slots.get((minute % WINDOW_MINUTES as u64) as usize)
    }

    fn add(&self, minute: u64) {
        let tag = minute & COUNT_MASK;
        let Some(slot) = self.slot(minute) else {
            return;
        };
        // A bucket still holding an older minute is reset and counted in the same swap.
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
            if packed >> 32 == tag {
                // Saturate instead of spilling into the minute tag.
                (packed & COUNT_MASK < COUNT_MASK).then_some(packed + 1)
            } else {
                Some((tag << 32) | 1)
            }
        });
    }

    /// Requests over the `minutes` most recent minutes up to `now_minute`.
    fn sum(&self, now_minute: u64, minutes: u64) -> u64 {
        (0..minutes.min(WINDOW_MINUTES as u64))
            .filter_map(|back| now_minute.checked_sub(back))
            .filter_map(|minute| {
                let packed = self.slot(minute)?.load(Ordering::Relaxed);
                (packed >> 32 == minute & COUNT_MASK).then_some(packed & COUNT_MASK)
            })
            .sum()
    }
}

// === impl TopTenants ===

impl TopTenants {
    fn rotate(&mut self, epoch: u64) {
        if epoch == self.epoch {
            return;
        }
        self.previous = if epoch == self.epoch + 1 {
            std::mem::take(&mut self.current)
        } else {
            SpaceSaving::default()
        };
        self.current = SpaceSaving::default();
        self.epoch = epoch;
    }

    fn record(&mut self, epoch: u64, tenant: &str, new: bool) {
        // A hit folded late may belong to the half hour before: count it there or drop it.
        if epoch + 1 == self.epoch {
            self.previous.record(tenant, new);
            return;
        }
        if epoch < self.epoch {
            return;
        }
        self.rotate(epoch);
        self.current.record(tenant, new);
    }

    fn merged(&self) -> HashMap<String, Entry> {
        let mut out: HashMap<String, Entry> = HashMap::new();
        for (tenant, e) in self
            .previous
            .entries
            .iter()
            .chain(self.current.entries.iter())
        {
            let slot = out.entry(tenant.to_string()).or_default();
            slot.count += e.count;
            slot.error += e.error;
            slot.new += e.new;
        }
        out
    }
}

impl SpaceSaving {
    fn record(&mut self, tenant: &str, new: bool) {
        let new = u64::from(new);
        if let Some(e) = self.entries.get_mut(tenant) {
            e.count += 1;
            e.new += new;
            return;
        }
        if self.entries.len() < TOP_K {
            self.entries.insert(
                tenant.into(),
                Entry {
                    count: 1,
                    error: 0,
                    new,
                },
            );
            return;
        }
        // Replace the least counted tenant; the newcomer inherits its count as the error bound.
        let Some((victim, min)) = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.count)
            .map(|(k, e)| (k.clone(), e.count))
        else {
            return;
        };
        self.entries.remove(&victim);
        self.entries.insert(
            tenant.into(),
            Entry {
                count: min + 1,
                error: min,
                new,
            },
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Traffic on a manual clock, and a setter of the time in seconds.
    fn clocked(start: u64) -> (Traffic, impl Fn(u64)) {
        let (clock, hand) = Clock::manual(i64::try_from(start * 1000).unwrap());
        let set = move |secs: u64| hand.set_ms(i64::try_from(secs * 1000).unwrap());
        (Traffic::new(clock), set)
    }

    #[test]
    fn windows_count_per_side_and_forget_old_minutes() {
        let start = 1_700_000_000 / 3600 * 3600; // on an hour boundary
        let (t, now) = clocked(start);
        for _ in 0..3 {
            t.record("cards", Side::New, Some("acme"));
        }
        t.record("cards", Side::Legacy, None);
        let w = t.windows("cards");
        assert_eq!((w.m1.legacy, w.m1.new), (1, 3));
        assert_eq!(w.m1.new_share, Some(0.75));

        now(start + 10 * 60);
        t.record("cards", Side::Legacy, Some("globex"));
        let w = t.windows("cards");
        assert_eq!((w.m1.legacy, w.m1.new), (1, 0));
        assert_eq!((w.m15.legacy, w.m15.new), (2, 3));
        assert_eq!((w.h1.legacy, w.h1.new), (2, 3));

        // 20 minutes later the first minute left the 15-minute window, not the hour.
        now(start + 20 * 60);
        let w = t.windows("cards");
        assert_eq!((w.m15.legacy, w.m15.new), (1, 0));
        assert_eq!((w.h1.legacy, w.h1.new), (2, 3));

        // The ring wraps after an hour: a bucket reused for a new minute starts from zero.
        now(start + 60 * 60);
        t.record("cards", Side::New, None);
        let w = t.windows("cards");
        assert_eq!((w.h1.legacy, w.h1.new), (1, 1));
        assert_eq!(t.windows("unknown"), Windows::default());
    }

    #[test]
    fn busiest_tenants_survive_a_long_tail() {
        let (t, _) = clocked(1_800_000_000);
        for i in 0..2000 {
            t.record("cards", Side::New, Some("whale"));
            if i % 2 == 0 {
                t.record("cards", Side::Legacy, Some("dolphin"));
            }
            t.record("cards", Side::Legacy, Some(&format!("minnow-{i}")));
        }
        let top = t.busiest("cards", 3);
        assert_eq!(top[0].tenant, "whale");
        assert_eq!((top[0].requests, top[0].new, top[0].error), (2000, 2000, 0));
        assert_eq!(top[1].tenant, "dolphin");
        assert_eq!((top[1].requests, top[1].new), (1000, 0));
        assert!(t.tenants("cards").len() <= TOP_K);
        // A tail entry's count never under-estimates: count - error <= true count (1).
        let tail = t.tenants("cards");
        let last = tail.last().unwrap();
        assert!(last.requests - last.error <= 1, "{last:?}");
    }

    #[test]
    fn tenant_tables_rotate_every_half_hour() {
        let start = 1_800_000_000 / TENANT_EPOCH_SECS * TENANT_EPOCH_SECS;
        let (t, now) = clocked(start);
        t.record("cards", Side::New, Some("acme"));
        now(start + TENANT_EPOCH_SECS);
        t.record("cards", Side::New, Some("acme"));
        t.record("cards", Side::Legacy, Some("globex"));
        let top = t.busiest("cards", 10);
        assert_eq!(top[0].tenant, "acme");
        assert_eq!(top[0].requests, 2, "previous half hour still counted");
        now(start + 2 * TENANT_EPOCH_SECS);
        let top = t.busiest("cards", 10);
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].requests, 1, "the first half hour dropped");
        now(start + 5 * TENANT_EPOCH_SECS);
        assert!(t.busiest("cards", 10).is_empty(), "a long gap forgets all");
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        let t = Arc::new(Traffic::new(Clock::system()));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for _ in 0..5000 {
                        let side = if i % 2 == 0 { Side::New } else { Side::Legacy };
                        t.record("cards", side, Some("acme"));
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        let w = t.windows("cards");
        // The test may straddle a minute boundary: the 15-minute window holds both.
        assert_eq!(w.m15.legacy + w.m15.new, 20_000);
        // Tenant hits are exact unless the queue overflowed while another thread folded it.
        assert_eq!(t.busiest("cards", 1)[0].requests + t.dropped_hits(), 20_000);
    }
}
