//! The composition root of a rule generation: config text → validated [`RuleSet`] → a
//! [`Snapshot`] with everything a request needs (upstream pools, per-route metric handles).
//!
//! [`build`] is the only way to make a snapshot, and every path that loads rules goes through
//! it: the first load at start, a reload (file, SIGHUP, admin, a new revision of a PostgreSQL
//! document), an admin edit's pre-write check, a rollback, and `switchyard check`. So they all
//! validate exactly the same things — config keys, files named by the config, compare tables,
//! TLS material of upstreams — and do it once: an admin edit swaps in the very snapshot it
//! validated before writing.
//!
//! ```text
//!   text ──config::load_str──▶ RuleSet ──Pools::build──▶ Candidate ──into_snapshot──▶ Snapshot
//!                 (pure, positions)      (reuses unchanged pools)        (generation, trigger)
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::clock::Clock;
use crate::config::{self, ConfigErrors};
use crate::rules::{Route, RuleSet};
use crate::telemetry::RouteMetrics;
use crate::upstream::{PoolError, Pools};

/// What caused a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The first load at start.
    Start,
    /// The config source changed: the file watcher, or a new revision of the document.
    File,
    /// SIGHUP.
    #[serde(rename = "sighup")]
    Signal,
    /// An admin API call (reload or an edit).
    Admin,
    /// A rollback to an earlier generation.
    Rollback,
    /// An automatic guard or rollout schedule.
    Guard,
}

// === impl Trigger ===

impl Trigger {
    /// Read back a stored name (unknown names count as source changes).
    pub fn parse(name: &str) -> Trigger {
        match name {
            "start" => Trigger::Start,
            "sighup" => Trigger::Signal,
            "admin" => Trigger::Admin,
            "rollback" => Trigger::Rollback,
            "guard" => Trigger::Guard,
            _ => Trigger::File,
        }
    }

    /// The name stored in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::File => "file",
            Trigger::Signal => "sighup",
            Trigger::Admin => "admin",
            Trigger::Rollback => "rollback",
            Trigger::Guard => "guard",
        }
    }
}

/// Why config text could not become a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The config itself: every problem with its `file:line:col`.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// An upstream's client could not be built (its CA file).
    #[error("{0}")]
    Pool(#[from] PoolError),
}

/// A compiled rule set with everything derived from it, not yet in force.
pub struct Candidate {
    pub rules: RuleSet,
    pub pools: Pools,
    pub route_metrics: Vec<RouteMetrics>,
    pub text: Arc<str>,
}

/// One compiled, immutable rule set in force, with everything derived from it.
pub struct Snapshot {
    /// Monotonically increasing; every successful (re)load increments it. With a PostgreSQL
    /// source it is the document's revision, the same on every replica.
    pub generation: u64,
    /// When this generation was swapped in.
    pub loaded_at: SystemTime,
    /// What caused it.
    pub trigger: Trigger,
    /// The compiled rules.
    pub rules: RuleSet,
    /// Upstream pools, reused across generations for unchanged upstreams.
    pub pools: Pools,
    /// The config text this generation was compiled from.
    pub text: Arc<str>,
    /// Request-metric handles by route index; the last one is for requests without a route.
    pub route_metrics: Vec<RouteMetrics>,
}

// === impl Candidate ===

impl Candidate {
    /// The config hash (text and every referenced file).
    pub fn hash(&self) -> &str {
        &self.rules.hash
    }

    /// Put the candidate in force as `generation`.
    pub fn into_snapshot(
        self,
        generation: u64,
        trigger: Trigger,
        loaded_at: SystemTime,
    ) -> Snapshot {
        Snapshot {
            generation,
            loaded_at,
            trigger,
            rules: self.rules,
            pools: self.pools,
            text: self.text,
            route_metrics: self.route_metrics,
        }
    }
}

// === impl Snapshot ===

impl Snapshot {
    /// The metric handles of `route` (or of the default upstream when there is none).
    pub fn metrics_for(&self, route: Option<&Route>) -> Option<&RouteMetrics> {
        match route {
            Some(r) => self.route_metrics.get(r.index),
            None => self.route_metrics.last(),
        }
    }
}

/// Compile `text` (named `source` in messages, its relative paths anchored at `source`'s
/// directory) into a candidate. Nothing is shared with `previous` except the pools of
/// unchanged upstreams, so a reload keeps warm connections.
pub fn build(
    text: &str,
    source: &Path,
    previous: Option<&Snapshot>,
    clock: &Clock,
) -> Result<Candidate, BuildError> {
    let rules = config::load_str(text, source)?;
    let pools = Pools::build(&rules.upstreams, previous.map(|p| &p.pools), clock)?;
    let route_metrics = rules
        .routes
        .iter()
        .map(|r| RouteMetrics::new(&r.name))
        .chain(std::iter::once(RouteMetrics::new("default")))
        .collect();
    Ok(Candidate {
        rules,
        pools,
        route_metrics,
        text: Arc::from(text),
    })
}

/// Read and build the config file at `path`: what `switchyard check` runs.
pub fn check_file(path: &Path) -> Result<Candidate, BuildError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        BuildError::Config(ConfigErrors::single(
            path,
            format!("cannot read config file: {e}"),
        ))
    })?;
    build(&text, path, None, &Clock::system())
}
