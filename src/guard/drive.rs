//! One tick of the driver: read each guarded or scheduled route's counters, judge the guard,
//! move the schedule, and apply what was decided through the edit pipeline.

use std::sync::Arc;

use super::judge::{self, Move, Parity, Reading};
use super::{Guard, Seen, Watch};
use crate::api::{Evidence, GuardAudit, RouteRules};
use crate::config::edit::{self as config_edit, Change, EditError, RouteChange};
use crate::config::source::Author;
use crate::live::{Live, ReloadError, ReloadOutcome, Snapshot, Trigger};
use crate::rules::{GuardAction, Route, RouteState};
use crate::store::{AuditEntry, Store};
use crate::telemetry::{Metrics, RequestLabels, RouteLabel, RouteSide};

/// The name guard and schedule changes carry in the audit log and the document's revisions.
pub const GUARD_AUTHOR: &str = "guard";

/// Why a guard's change was not applied (it is tried again at the next tick).
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("{0}")]
    Edit(#[from] EditError),
    #[error("{0}")]
    Reload(#[from] ReloadError),
    #[error("the shadow report could not be read: {0}")]
    Report(String),
    /// The change is in force (`generation`) but its audit entry went to the log only.
    #[error(
        "generation {generation} is in force but its audit entry could not be stored: {message}"
    )]
    Audit { generation: u64, message: String },
}

/// A route change applied and audited.
#[derive(Debug)]
pub struct Applied {
    pub generation: u64,
    pub changed: bool,
    pub before: Option<RouteRules>,
    pub after: Option<RouteRules>,
    pub audit_id: Option<i64>,
}

/// What an audit entry of [`apply_change`] says.
pub struct AuditNote<'a> {
    pub who: &'a str,
    pub action: &'a str,
    pub reason: Option<String>,
    pub evidence: Option<Evidence>,
    pub forced: bool,
    pub replica: &'a str,
}

/// Apply `change` to `route` through the operator's pipeline: edit the text of the generation
/// in force, write it with compare-and-set ([`Trigger::Guard`]), and audit it with the
/// evidence. Without a store the change is still made (a trip protects traffic) and the entry
/// goes to the log.
pub async fn apply_change(
    live: &Live,
    store: Option<&Store>,
    route: &str,
    change: RouteChange,
    note: AuditNote<'_>,
) -> Result<Applied, GuardError> {
    let before = live.load();
    let change = Change::Route {
        route: route.to_owned(),
        change,
    };
    let text = config_edit::apply(&before.text, &change)?;
    let rules_of = |s: &Snapshot| s.rules.route(route).map(RouteRules::of);
    if text == *before.text {
        return Ok(Applied {
            generation: before.generation,
            changed: false,
            before: rules_of(&before),
            after: rules_of(&before),
            audit_id: None,
        });
    }
    let author = Author {
        name: Some(note.who.to_owned()),
        reason: note.reason.clone(),
    };
    let (outcome, now) = live
        .write_and_load_as(Some(before.generation), text, Trigger::Guard, &author)
        .await?;
    let changed = matches!(outcome, ReloadOutcome::Applied { .. });
    let after = GuardAudit {
        rules: rules_of(&now),
        evidence: note.evidence,
        forced: note.forced,
    };
    let entry = AuditEntry {
        id: 0,
        at_ms: live.clock().now_ms(),
        token_name: note.who.to_owned(),
        action: note.action.to_owned(),
        target: route.to_owned(),
        before: serde_json::to_value(rules_of(&before)).unwrap_or_default(),
        after: serde_json::to_value(&after).unwrap_or_default(),
        reason: note.reason,
        generation: Some(outcome.generation()),
        dry_run: false,
        replica: Some(note.replica.to_owned()),
    };
    let audit_id = match store {
        Some(store) => match store.append_audit(&entry).await {
            Ok(id) => Some(id),
            Err(error) => {
                let record = serde_json::to_string(&entry).unwrap_or_default();
                tracing::error!("audit entry could not be stored ({error}): {record}");
                return Err(GuardError::Audit {
                    generation: outcome.generation(),
                    message: error.to_string(),
                });
            }
        },
        None => {
            let record = serde_json::to_string(&entry).unwrap_or_default();
            tracing::error!("no store: audit entry kept in the log only: {record}");
            None
        }
    };
    Ok(Applied {
        generation: outcome.generation(),
        changed,
        before: rules_of(&before),
        after: after.rules,
        audit_id,
    })
}

/// Read the cumulative counters of `route` (without creating series for idle routes).
pub fn read(metrics: &Metrics, route: &str, at_ms: i64) -> Reading {
    let count = |side: &str, class: &str| {
        metrics
            .requests
            .get(&RequestLabels {
                route: route.to_owned(),
                side: side.to_owned(),
                status_class: class.to_owned(),
            })
            .map(|c| c.get())
            .unwrap_or(0)
    };
    let timing = |side: &str| {
        metrics
            .duration
            .get(&RouteSide {
                route: route.to_owned(),
                side: side.to_owned(),
            })
            .map(|h| h.totals())
            .unwrap_or((0, 0))
    };
    // A new-side failure retried on legacy is answered (and counted) as legacy: the fallback
    // counter is what still says the new side failed it.
    let retried = metrics
        .fallbacks
        .get(&RouteLabel {
            route: route.to_owned(),
        })
        .map(|c| c.get())
        .unwrap_or(0);
    let answered: u64 = ["1xx", "2xx", "3xx", "4xx", "5xx"]
        .iter()
        .map(|class| count("new", class))
        .sum();
    let (new_timed, new_nanos) = timing("new");
    let (legacy_timed, legacy_nanos) = timing("legacy");
    Reading {
        at_ms,
        new_requests: answered + retried,
        new_failed: count("new", "5xx") + retried,
        new_timed,
        new_nanos,
        legacy_timed,
        legacy_nanos,
    }
}

// === impl Guard: the tick ===

impl Guard {
    /// One round over every guarded or scheduled route, when this replica drives.
    pub async fn tick(self: &Arc<Self>) {
        if !self.lead.acquire().await {
            self.watches.lock().clear();
            return;
        }
        let snapshot = self.live.load();
        let now_ms = self.clock.now_ms();
        let routes: Vec<&Route> = snapshot
            .rules
            .routes
            .iter()
            .filter(|r| r.guard.is_some() || r.schedule.is_some())
            .collect();
        self.watches
            .lock()
            .retain(|name, _| routes.iter().any(|r| &r.name == name));
        for route in routes {
            if let Err(error) = self.tick_route(&snapshot, route, now_ms).await {
                tracing::warn!(route = %route.name, "guard: {error}; tried again at the next tick");
            }
        }
    }

    async fn tick_route(
        &self,
        snapshot: &Snapshot,
        route: &Route,
        now_ms: i64,
    ) -> Result<(), GuardError> {
        let reading = read(&self.metrics, &route.name, now_ms);
        let window_ms = route
            .guard
            .as_ref()
            .map(|g| i64::try_from(g.window.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let delta = {
            let mut watches = self.watches.lock();
            let watch = watches.entry(route.name.clone()).or_insert_with(|| Watch {
                since_ms: now_ms,
                ..Watch::default()
            });
            observe(watch, route, now_ms);
            watch.ring.push(reading, window_ms);
            watch.ring.delta()
        };
        if let Some(policy) = route.guard.as_ref().filter(|g| !g.tripped)
            && route.state != RouteState::Legacy
        {
            let parity = match (&self.store, policy.max_mismatch_rate) {
                (Some(store), Some(_)) => {
                    let since = now_ms.saturating_sub(window_ms);
                    crate::admin::route_figures(store, snapshot, &route.name, Some(since))
                        .await
                        .map_err(|e| tracing::warn!(route = %route.name, "guard: report: {e}"))
                        .ok()
                        .map(|scope| {
                            scope.map_or(Parity::default(), |s| Parity {
                                compared: s.counts.compared,
                                mismatched: s.counts.mismatched,
                            })
                        })
                }
                _ => None,
            };
            let evidence = judge::judge(policy, &delta, parity);
            self.remember(&route.name, |w| w.evidence = Some(evidence.clone()));
            if !evidence.breached.is_empty() {
                return self.trip(route, policy.action, evidence).await;
            }
        }
        let Some(schedule) = &route.schedule else {
            return Ok(());
        };
        let since_ms = self
            .watches
            .lock()
            .get(&route.name)
            .map_or(now_ms, |w| w.since_ms);
        let mut step = judge::next_move(route, schedule, since_ms, now_ms, None);
        if let Move::Advance(_) = step {
            // The verdict is read only when a step is due: it is a report over every kept
            // result.
            let verdict = match &self.store {
                Some(store) => crate::admin::route_figures(store, snapshot, &route.name, None)
                    .await
                    .map_err(|e| GuardError::Report(e.to_string()))?
                    .map(|s| s.verdict),
                None => None,
            };
            step = judge::next_move(route, schedule, since_ms, now_ms, verdict);
        }
        self.remember(&route.name, |w| w.last_move = Some(step.clone()));
        if let Move::Advance(to_bp) = step {
            self.advance(route, to_bp).await?;
            // The new step's bake starts now, not when the next tick notices the new percent.
            self.remember(&route.name, |w| {
                w.since_ms = now_ms;
                if let Some(seen) = &mut w.seen {
                    seen.percent_bp = to_bp;
                }
            });
        }
        Ok(())
    }

    fn remember(&self, route: &str, f: impl FnOnce(&mut Watch)) {
        if let Some(w) = self.watches.lock().get_mut(route) {
            f(w);
        }
    }

    async fn trip(
        &self,
        route: &Route,
        action: GuardAction,
        evidence: Evidence,
    ) -> Result<(), GuardError> {
        let change = RouteChange {
            guard_tripped: Some(true),
            state: (action == GuardAction::Legacy).then_some(RouteState::Legacy),
            ..RouteChange::default()
        };
        let summary = evidence
            .breached
            .iter()
            .map(|b| format!("{} {:.4} > {}", b.figure, b.value, b.limit))
            .collect::<Vec<_>>()
            .join(", ");
        let note = AuditNote {
            who: GUARD_AUTHOR,
            action: "guard_trip",
            reason: Some(format!("guard tripped ({}): {summary}", action.as_str())),
            evidence: Some(evidence),
            forced: false,
            replica: &self.replica,
        };
        let applied =
            apply_change(&self.live, self.store.as_ref(), &route.name, change, note).await;
        // A trip whose audit entry failed is in force all the same: it is counted.
        let in_force = match &applied {
            Ok(applied) => applied.changed.then_some(applied.generation),
            Err(GuardError::Audit { generation, .. }) => Some(*generation),
            Err(_) => None,
        };
        if let Some(generation) = in_force {
            self.metrics
                .guard_tripped
                .get_or_create(&RouteLabel {
                    route: route.name.clone(),
                })
                .inc();
            tracing::warn!(route = %route.name, generation, "guard tripped: {summary}");
        }
        applied.map(|_| ())
    }

    async fn advance(&self, route: &Route, to_bp: u32) -> Result<(), GuardError> {
        // An unaudited step is not taken: unlike a trip, nothing is protected by it.
        if self.store.is_none() {
            self.remember(&route.name, |w| {
                w.last_move = Some(Move::Hold("the audit store is unavailable".into()))
            });
            return Ok(());
        }
        let evidence = self
            .watches
            .lock()
            .get(&route.name)
            .and_then(|w| w.evidence.clone());
        let percent = f64::from(to_bp) / 100.0;
        let change = RouteChange {
            percent: Some(percent),
            ..RouteChange::default()
        };
        let note = AuditNote {
            who: GUARD_AUTHOR,
            action: "schedule_step",
            reason: Some(format!(
                "schedule: percent {} → {percent}",
                f64::from(route.percent_bp) / 100.0
            )),
            evidence,
            forced: false,
            replica: &self.replica,
        };
        let applied =
            apply_change(&self.live, self.store.as_ref(), &route.name, change, note).await?;
        tracing::info!(route = %route.name, generation = applied.generation, percent, "schedule advanced");
        Ok(())
    }
}

/// Notice what changed in the route's rules since the last tick: a new step (from this driver
/// or an operator) restarts the bake; a re-arm or a resume restarts it too and forgets the
/// readings from before, which must not trip the guard again.
fn observe(watch: &mut Watch, route: &Route, now_ms: i64) {
    let seen = Seen::of(route);
    if let Some(before) = watch.seen
        && before != seen
    {
        watch.since_ms = now_ms;
        let rearmed = before.tripped && !seen.tripped;
        let back = before.state != RouteState::Rollout && seen.state == RouteState::Rollout;
        if rearmed || back {
            watch.ring.clear();
            watch.evidence = None;
        }
    }
    watch.seen = Some(seen);
}
