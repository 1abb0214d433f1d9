//! Live rules: the ONE `ArcSwap` holding the whole compiled rule snapshot, generations with a
//! bounded history, and the reload pipeline (read → parse → compile → validate → swap).
//!
//! Every request loads the snapshot once and keeps it to the end (its shadow copy included),
//! so a reload never mixes two rule versions in one request and never fails one in flight.
//! A reload that fails anywhere before the swap leaves the running generation serving; the
//! error is logged with `file:line:col`, counted, and kept for the status call.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio::sync::watch as tokio_watch;

use crate::config;
use crate::rules::RuleSet;
use crate::shadow::RouteCompare;
use crate::telemetry::{Metrics, RouteMetrics};
use crate::upstream::Pools;

pub mod watch;

/// How many past generations stay available for history and rollback.
pub const HISTORY_LEN: usize = 50;

/// What caused a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The first load at start.
    Start,
    /// The file watcher saw a change.
    File,
    /// SIGHUP.
    Signal,
    /// An admin API call (reload or an edit).
    Admin,
    /// A rollback to an earlier generation.
    Rollback,
}

impl Trigger {
    /// Read back a stored name (unknown names count as file changes).
    pub fn parse(name: &str) -> Trigger {
        match name {
            "start" => Trigger::Start,
            "sighup" => Trigger::Signal,
            "admin" => Trigger::Admin,
            "rollback" => Trigger::Rollback,
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
        }
    }
}

/// One compiled, immutable rule set in force, with everything derived from it.
pub struct Snapshot {
    /// Monotonically increasing; every successful (re)load increments it.
    pub generation: u64,
    /// When this generation was swapped in.
    pub loaded_at: SystemTime,
    /// What caused it.
    pub trigger: Trigger,
    /// The compiled rules.
    pub rules: RuleSet,
    /// Upstream pools, reused across generations for unchanged upstreams.
    pub pools: Pools,
    /// Compiled compare rules, by route index.
    pub compare: RouteCompare,
    /// The config text this generation was compiled from.
    pub text: Arc<str>,
    /// Request-metric handles by route index; the last one is for requests without a route.
    pub route_metrics: Vec<RouteMetrics>,
}

impl Snapshot {
    /// The metric handles of `route` (or of the default upstream when there is none).
    pub fn metrics_for(&self, route: Option<&crate::rules::Route>) -> Option<&RouteMetrics> {
        match route {
            Some(r) => self.route_metrics.get(r.index),
            None => self.route_metrics.last(),
        }
    }
}

/// A past generation, kept for history and rollback.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryEntry {
    pub generation: u64,
    pub hash: String,
    #[serde(with = "crate::util::epoch_ms")]
    pub loaded_at: SystemTime,
    pub trigger: Trigger,
    #[serde(skip)]
    pub text: Arc<str>,
}

/// The last rejected reload.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadFailure {
    pub message: String,
    #[serde(with = "crate::util::epoch_ms")]
    pub since: SystemTime,
}

/// The result of a reload that did not fail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum ReloadOutcome {
    /// A new generation is in force.
    Applied { generation: u64, hash: String },
    /// The content was identical to the running generation: nothing changed.
    Unchanged { generation: u64, hash: String },
}

impl ReloadOutcome {
    /// The generation in force after the reload.
    pub fn generation(&self) -> u64 {
        match self {
            ReloadOutcome::Applied { generation, .. }
            | ReloadOutcome::Unchanged { generation, .. } => *generation,
        }
    }
}

/// Why a reload was rejected (the running generation keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(#[from] config::ConfigErrors),
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{0}")]
    Build(String),
    #[error("generation {0} is not in the history")]
    UnknownGeneration(u64),
    #[error("the config file changed since it was last read; re-read it and try again")]
    Conflict,
}

/// The live rule state of one gateway process.
pub struct Live {
    path: PathBuf,
    current: ArcSwap<Snapshot>,
    history: Mutex<VecDeque<HistoryEntry>>,
    last_error: Mutex<Option<ReloadFailure>>,
    /// Serialises reloads: two reloads never compile against the same predecessor.
    reload_lock: tokio::sync::Mutex<()>,
    changed: tokio_watch::Sender<u64>,
    metrics: Arc<Metrics>,
}

impl Live {
    /// Load the config at `path` as generation 1. Errors are the config's own.
    pub fn start(path: &Path, metrics: Arc<Metrics>) -> Result<Arc<Live>, ReloadError> {
        Self::start_with(path, metrics, Vec::new())
    }

    /// Load the config at `path` as the generation after the newest of `past` (the history
    /// kept in the store), so generation numbers keep increasing across restarts and earlier
    /// generations stay available for rollback.
    pub fn start_with(
        path: &Path,
        metrics: Arc<Metrics>,
        mut past: Vec<HistoryEntry>,
    ) -> Result<Arc<Live>, ReloadError> {
        let text = read(path)?;
        past.sort_by_key(|e| e.generation);
        let first = past.last().map(|e| e.generation + 1).unwrap_or(1);
        let snapshot = match build(path, &text, None, first, Trigger::Start) {
            Ok(snapshot) => snapshot,
            Err(error) => {
                metrics.reload("error");
                return Err(error);
            }
        };
        metrics.reload("ok");
        metrics.generation.set(first as i64);
        let mut history = VecDeque::from(past);
        history.push_back(history_entry(&snapshot));
        while history.len() > HISTORY_LEN {
            history.pop_front();
        }
        let (changed, _) = tokio_watch::channel(first);
        Ok(Arc::new(Live {
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(snapshot),
            history: Mutex::new(history),
            last_error: Mutex::new(None),
            reload_lock: tokio::sync::Mutex::new(()),
            changed,
            metrics,
        }))
    }

    /// The snapshot in force. Call once per request and keep it.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The config file this gateway serves.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A receiver woken with the new generation number after each swap.
    pub fn subscribe(&self) -> tokio_watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The last rejected reload, if the latest attempt failed and nothing succeeded since.
    pub fn last_error(&self) -> Option<ReloadFailure> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Past generations, newest first.
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.history
            .lock()
            .map(|h| h.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Re-read the config file (and the files it names) and swap if it compiles.
    pub async fn reload(&self, trigger: Trigger) -> Result<ReloadOutcome, ReloadError> {
        let _guard = self.reload_lock.lock().await;
        let result = match read(&self.path) {
            Ok(text) => self.compile_and_swap(text, trigger).await,
            Err(error) => Err(error),
        };
        self.record(&result);
        result
    }

    /// Replace the config file with `text` and reload, refusing with [`ReloadError::Conflict`]
    /// when the file on disk is no longer the text of the running generation (someone edited
    /// it since). The new text is compiled BEFORE the file is written, so an invalid edit
    /// never reaches the disk.
    pub async fn write_and_reload(
        &self,
        text: String,
        trigger: Trigger,
    ) -> Result<ReloadOutcome, ReloadError> {
        let _guard = self.reload_lock.lock().await;
        let result = self.write_and_reload_locked(None, text, trigger).await;
        self.record(&result);
        result
    }

    /// [`Live::write_and_reload`] for an edit computed from generation `base`: refused with
    /// [`ReloadError::Conflict`] as well when another generation (a file edit, SIGHUP, a
    /// rollback) took over since, so an edit never silently undoes a change it did not see.
    pub async fn write_and_reload_from(
        &self,
        base: u64,
        text: String,
        trigger: Trigger,
    ) -> Result<ReloadOutcome, ReloadError> {
        let _guard = self.reload_lock.lock().await;
        let result = self
            .write_and_reload_locked(Some(base), text, trigger)
            .await;
        self.record(&result);
        result
    }

    async fn write_and_reload_locked(
        &self,
        base: Option<u64>,
        text: String,
        trigger: Trigger,
    ) -> Result<ReloadOutcome, ReloadError> {
        let running = self.load();
        if base.is_some_and(|b| b != running.generation) {
            return Err(ReloadError::Conflict);
        }
        let on_disk = read(&self.path)?;
        if *on_disk != *running.text {
            return Err(ReloadError::Conflict);
        }
        let path = self.path.clone();
        let check = text.clone();
        tokio::task::spawn_blocking(move || config::load_str(&check, &path))
            .await
            .map_err(|e| ReloadError::Build(e.to_string()))??;
        write_atomically(&self.path, &text)?;
        self.compile_and_swap(text, trigger).await
    }

    /// Return to the rules of an earlier generation: its text is written back to the config
    /// file (so the file stays the one source of truth and a restart keeps the rollback) and
    /// loaded as a new generation.
    pub async fn rollback(&self, generation: u64) -> Result<ReloadOutcome, ReloadError> {
        let text = self
            .history
            .lock()
            .ok()
            .and_then(|h| {
                h.iter()
                    .find(|e| e.generation == generation)
                    .map(|e| e.text.clone())
            })
            .ok_or(ReloadError::UnknownGeneration(generation))?;
        let _guard = self.reload_lock.lock().await;
        let result = async {
            let path = self.path.clone();
            let check = text.to_string();
            tokio::task::spawn_blocking(move || config::load_str(&check, &path))
                .await
                .map_err(|e| ReloadError::Build(e.to_string()))??;
            write_atomically(&self.path, &text)?;
            self.compile_and_swap(text.to_string(), Trigger::Rollback)
                .await
        }
        .await;
        self.record(&result);
        result
    }

    async fn compile_and_swap(
        &self,
        text: String,
        trigger: Trigger,
    ) -> Result<ReloadOutcome, ReloadError> {
        let previous = self.load();
        let path = self.path.clone();
        let prev = previous.clone();
        let generation = previous.generation + 1;
        // Compiling 10k tenants × 2k routes is CPU work: keep it off the request workers.
        let snapshot = tokio::task::spawn_blocking(move || {
            build(&path, &text, Some(&prev), generation, trigger)
        })
        .await
        .map_err(|e| ReloadError::Build(e.to_string()))??;
        if snapshot.rules.hash == previous.rules.hash {
            return Ok(ReloadOutcome::Unchanged {
                generation: previous.generation,
                hash: previous.rules.hash.clone(),
            });
        }
        let outcome = ReloadOutcome::Applied {
            generation,
            hash: snapshot.rules.hash.clone(),
        };
        let entry = history_entry(&snapshot);
        self.current.store(Arc::new(snapshot));
        if let Ok(mut history) = self.history.lock() {
            history.push_back(entry);
            while history.len() > HISTORY_LEN {
                history.pop_front();
            }
        }
        self.metrics.generation.set(generation as i64);
        self.changed.send_replace(generation);
        tracing::info!(generation, ?trigger, "rules reloaded");
        Ok(outcome)
    }

    fn record(&self, result: &Result<ReloadOutcome, ReloadError>) {
        match result {
            Ok(ReloadOutcome::Applied { .. }) => {
                self.metrics.reload("ok");
                self.set_error(None);
            }
            Ok(ReloadOutcome::Unchanged { .. }) => {
                self.metrics.reload("unchanged");
                self.set_error(None);
            }
            Err(ReloadError::Conflict) | Err(ReloadError::UnknownGeneration(_)) => {}
            Err(error) => {
                self.metrics.reload("error");
                tracing::error!(
                    "reload rejected, generation {} keeps serving:\n{error}",
                    self.load().generation
                );
                self.set_error(Some(ReloadFailure {
                    message: error.to_string(),
                    since: SystemTime::now(),
                }));
            }
        }
    }

    fn set_error(&self, failure: Option<ReloadFailure>) {
        if let Ok(mut slot) = self.last_error.lock() {
            match (&*slot, failure) {
                // Keep the first time of a run of failures: "failing since".
                (Some(old), Some(new)) if old.message == new.message => {}
                (_, new) => *slot = new,
            }
        }
    }
}

fn history_entry(snapshot: &Snapshot) -> HistoryEntry {
    HistoryEntry {
        generation: snapshot.generation,
        hash: snapshot.rules.hash.clone(),
        loaded_at: snapshot.loaded_at,
        trigger: snapshot.trigger,
        text: snapshot.text.clone(),
    }
}

fn read(path: &Path) -> Result<String, ReloadError> {
    std::fs::read_to_string(path).map_err(|e| ReloadError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Compile `text` into a full snapshot; nothing is shared with the running one except the
/// pools of unchanged upstreams.
fn build(
    path: &Path,
    text: &str,
    previous: Option<&Snapshot>,
    generation: u64,
    trigger: Trigger,
) -> Result<Snapshot, ReloadError> {
    let rules = config::load_str(text, path)?;
    let pools =
        Pools::build(&rules.upstreams, previous.map(|p| &p.pools)).map_err(ReloadError::Build)?;
    let compare = RouteCompare::compile(&rules).map_err(ReloadError::Build)?;
    let route_metrics = rules
        .routes
        .iter()
        .map(|r| RouteMetrics::new(&r.name))
        .chain(std::iter::once(RouteMetrics::new("default")))
        .collect();
    Ok(Snapshot {
        route_metrics,
        generation,
        loaded_at: SystemTime::now(),
        trigger,
        rules,
        pools,
        compare,
        text: Arc::from(text),
    })
}

/// Replace `path` with `text` so that readers see the old or the new file, never a torn
/// one: write a temporary file beside it, fsync, rename over, fsync the directory.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), ReloadError> {
    use std::io::Write;
    let io = |e: std::io::Error| ReloadError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "config".into());
    let tmp = dir.join(format!(".{name}.switchyard-{}.tmp", std::process::id()));
    {
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    // Keep the file's permissions: operators may have restricted who can read it.
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
