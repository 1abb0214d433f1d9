//! Guarded, progressive rollouts: per route, a guard that judges the new side over a sliding
//! window (error rate, latency against legacy, shadow mismatch rate) and trips the route back
//! to legacy — or holds its schedule — by itself, and a schedule that raises the route's
//! percent one step per bake period while the guard is healthy and the parity verdict allows.
//!
//! Nothing here is on the request path. A background task ([`Guard::spawn`]) reads the
//! per-route request counters and latency histograms each tick and keeps the readings in a
//! ring per route ([`judge::Ring`]); the mismatch rate and the verdict come from the shadow
//! report's derived figures. Every change it decides — a trip, a step — goes through the same
//! edit pipeline as an operator's rollout (`config::edit` → `Live::write_and_load_as` with
//! [`Trigger::Guard`] → audit), so it is persisted in the rule document, audited with its
//! evidence, and what a restart or another replica sees. In a fleet one replica drives
//! ([`lead`]); the others serve the rules it writes.
//!
//! Submodules: `judge` (pure figures and moves), `drive` (the tick and the edits), `lead`
//! (who drives).

mod drive;
pub mod judge;
mod lead;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{Evidence, GuardState, GuardStatus, ScheduleStatus};
use crate::clock::Clock;
use crate::live::{Live, Snapshot};
use crate::rules::Route;
use crate::store::Store;
use crate::telemetry::Metrics;

pub use drive::{Applied, AuditNote, GUARD_AUTHOR, GuardError, apply_change};
pub use judge::{Move, Reading, Ring};
pub use lead::Lead;

/// The longest pause between two ticks (a short window ticks more often).
const MAX_TICK: Duration = Duration::from_secs(10);
/// The shortest.
const MIN_TICK: Duration = Duration::from_secs(1);
/// Ticks per window: a trip comes at most a tenth of a window after the threshold is crossed.
const TICKS_PER_WINDOW: u32 = 10;

/// The guards and schedules of one gateway process.
pub struct Guard {
    live: Arc<Live>,
    metrics: Arc<Metrics>,
    store: Option<Store>,
    clock: Clock,
    lead: Lead,
    replica: String,
    watches: Mutex<HashMap<String, Watch>>,
}

/// What the driver remembers of one route between ticks.
#[derive(Debug, Default)]
struct Watch {
    ring: Ring,
    evidence: Option<Evidence>,
    /// When the route's current step began (or the schedule was last resumed or re-armed).
    since_ms: i64,
    /// The rules last seen, to notice a step, a pause or a re-arm made elsewhere.
    seen: Option<Seen>,
    /// The schedule's last move.
    last_move: Option<Move>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    percent_bp: u32,
    tripped: bool,
    paused: bool,
    state: crate::rules::RouteState,
}

impl Seen {
    fn of(route: &Route) -> Seen {
        Seen {
            percent_bp: route.percent_bp,
            tripped: route.guard.as_ref().is_some_and(|g| g.tripped),
            paused: route.schedule.as_ref().is_some_and(|s| s.paused),
            state: route.state,
        }
    }
}

// === impl Guard ===

impl Guard {
    pub fn new(
        live: Arc<Live>,
        metrics: Arc<Metrics>,
        store: Option<Store>,
        clock: Clock,
        lead: Lead,
        replica: String,
    ) -> Arc<Guard> {
        Arc::new(Guard {
            live,
            metrics,
            store,
            clock,
            lead,
            replica,
            watches: Mutex::new(HashMap::new()),
        })
    }

    /// Run the driver until shutdown.
    pub fn spawn(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let guard = self.clone();
        tokio::spawn(async move {
            loop {
                let pause = tick_interval(&guard.live.load());
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => break,
                }
                if *shutdown.borrow() {
                    break;
                }
                guard.tick().await;
            }
            guard.lead.release().await;
        })
    }

    /// Whether this replica drives (the last tick's answer).
    pub fn driving(&self) -> bool {
        self.lead.holds()
    }

    /// The state of every guarded or scheduled route of `snapshot`.
    pub fn status(&self, snapshot: &Snapshot) -> Vec<GuardStatus> {
        let driving = self.driving();
        let watches = self.watches.lock();
        snapshot
            .rules
            .routes
            .iter()
            .filter(|r| r.guard.is_some() || r.schedule.is_some())
            .map(|route| {
                let watch = watches.get(&route.name).filter(|_| driving);
                route_status(route, watch, driving)
            })
            .collect()
    }
}

fn route_status(route: &Route, watch: Option<&Watch>, driving: bool) -> GuardStatus {
    let tripped = route.guard.as_ref().is_some_and(|g| g.tripped);
    let paused = route.schedule.as_ref().is_some_and(|s| s.paused);
    let state = if tripped {
        GuardState::Tripped
    } else if paused {
        GuardState::Paused
    } else {
        GuardState::Armed
    };
    let pct = |bp: u32| f64::from(bp) / 100.0;
    let schedule = route.schedule.as_ref().map(|s| {
        // The rules' own holds show at once, on every replica; the bake's due time and the
        // verdict's hold are the driver's.
        let (next_step_at_ms, hold) = match (
            judge::held(route, s),
            watch.and_then(|w| w.last_move.as_ref()),
        ) {
            _ if s.next_step(route.percent_bp).is_none() => (None, None),
            (Some(why), _) => (None, Some(why)),
            (None, Some(Move::Wait { due_ms, .. })) => (Some(*due_ms), None),
            (None, Some(Move::Hold(why))) => (None, Some(why.clone())),
            (None, _) => (None, None),
        };
        ScheduleStatus {
            steps: s.steps_bp.iter().map(|bp| pct(*bp)).collect(),
            step: s.reached(route.percent_bp),
            percent: pct(route.percent_bp),
            next_percent: s.next_step(route.percent_bp).map(pct),
            next_step_at_ms,
            hold,
            paused: s.paused,
        }
    });
    GuardStatus {
        route: route.name.clone(),
        state,
        action: route.guard.as_ref().map(|g| g.action),
        evidence: watch.and_then(|w| w.evidence.clone()),
        schedule,
        driving,
    }
}

/// A tenth of the shortest guard window (or bake period), within [`MIN_TICK`, `MAX_TICK`].
fn tick_interval(snapshot: &Snapshot) -> Duration {
    snapshot
        .rules
        .routes
        .iter()
        .flat_map(|r| {
            let window = r.guard.as_ref().map(|g| g.window);
            let bake = r.schedule.as_ref().map(|s| s.bake);
            window.into_iter().chain(bake)
        })
        .map(|d| d / TICKS_PER_WINDOW)
        .min()
        .unwrap_or(MAX_TICK)
        .clamp(MIN_TICK, MAX_TICK)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
