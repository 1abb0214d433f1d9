//! Live rules: the ONE `ArcSwap` holding the snapshot in force, generations with a bounded
//! history, and the reload pipeline (read → build → swap).
//!
//! Every request loads the snapshot once and keeps it to the end (its shadow copy included),
//! so a reload never mixes two rule versions in one request and never fails one in flight.
//! Snapshots are built by [`snapshot::build`](crate::snapshot::build) only; a reload that fails
//! anywhere before the swap leaves the running generation serving, and the error is logged
//! with `file:line:col`, counted, and kept for the status call.
//!
//! Writes (an admin edit, a rollback) build the new snapshot first, then write the document
//! with compare-and-set, then swap that same snapshot in: an invalid edit never reaches the
//! document, and nothing is compiled twice.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tokio::sync::watch as tokio_watch;

use crate::clock::Clock;
use crate::config::source::{Author, Base, Source, SourceError};
use crate::snapshot::{self, BuildError, Candidate};
use crate::telemetry::Metrics;

pub use crate::snapshot::{Snapshot, Trigger};

pub mod history;
pub mod watch;

pub use history::{HISTORY_LEN, HistoryEntry};

/// The last rejected reload.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReloadFailure {
    pub message: String,
    #[serde(with = "crate::clock::serde_epoch_ms")]
    pub since: SystemTime,
}

/// The result of a reload that did not fail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// The text does not build: config errors with positions, or an upstream's TLS material.
    #[error("{0}")]
    Build(#[from] BuildError),
    /// The document could not be read or written.
    #[error("{0}")]
    Source(SourceError),
    /// The document changed since the text an edit was computed from.
    #[error("the config changed since it was last read; re-read it and try again")]
    Conflict,
    /// A newer revision of a shared document than the one an edit was computed from exists:
    /// another edit won, or this replica has not loaded it yet.
    #[error(
        "revision {newest} is newer than revision {based_on} this change was computed from; nothing changed"
    )]
    Moved { based_on: u64, newest: u64 },
    #[error("generation {0} is not in the history")]
    UnknownGeneration(u64),
    /// The compile task died (a bug): nothing was changed.
    #[error("the rule compiler failed: {0}")]
    Compiler(#[from] tokio::task::JoinError),
}

impl From<SourceError> for ReloadError {
    fn from(error: SourceError) -> Self {
        match error {
            SourceError::Conflict => ReloadError::Conflict,
            SourceError::Moved { based_on, newest } => ReloadError::Moved { based_on, newest },
            other => ReloadError::Source(other),
        }
    }
}

/// The rules of the first load, built but not yet in force.
pub struct FirstLoad {
    pub candidate: Candidate,
    /// The document's revision, where the source numbers them.
    pub revision: Option<u64>,
}

/// The live rule state of one gateway process.
pub struct Live {
    source: Source,
    clock: Clock,
    current: ArcSwap<Snapshot>,
    history: Mutex<VecDeque<HistoryEntry>>,
    last_error: Mutex<Option<ReloadFailure>>,
    /// Serialises reloads: two reloads never compile against the same predecessor.
    reload_lock: tokio::sync::Mutex<()>,
    changed: tokio_watch::Sender<u64>,
    metrics: Arc<Metrics>,
    /// The generation this process started with (earlier ones came from the store).
    first_generation: u64,
}

// === impl Live ===

impl Live {
    /// Read the document of `source` and build it: the first load, before [`Live::start`]
    /// (the store the rules name is opened in between, and its history seeds `start`).
    pub async fn first_load(
        source: &Source,
        metrics: &Metrics,
        clock: &Clock,
    ) -> Result<FirstLoad, ReloadError> {
        let result = async {
            let document = source.read_at_start().await?;
            let name = source.name_for(document.revision);
            let error = match compile(name, document.text, None, clock).await {
                Ok(candidate) => {
                    return Ok(FirstLoad {
                        candidate,
                        revision: document.revision,
                    });
                }
                Err(error @ ReloadError::Build(_)) => error,
                Err(error) => return Err(error),
            };
            // A shared document whose newest revision does not build: a replica that served
            // an earlier one starts on its cached copy (the fleet loop then rejects the newest
            // like any bad revision: logged, counted, shown); a new replica cannot start.
            let cached = source
                .postgres()
                .and_then(|pg| pg.cached())
                .filter(|c| c.revision < document.revision);
            let Some(cached) = cached else {
                return Err(error);
            };
            tracing::error!(
                "revision {} does not build; starting on the cached revision {}:\n{error}",
                document.revision.unwrap_or(0),
                cached.revision.unwrap_or(0)
            );
            let name = source.name_for(cached.revision);
            let candidate = compile(name, cached.text, None, clock).await?;
            Ok(FirstLoad {
                candidate,
                revision: cached.revision,
            })
        }
        .await;
        if result.is_err() {
            metrics.reload("error");
        }
        result
    }

    /// Put the first load in force as the generation after the newest of `past` (the history
    /// kept in the store), so generation numbers keep increasing across restarts and earlier
    /// generations stay available for rollback.
    pub fn start(
        source: Source,
        first: FirstLoad,
        metrics: Arc<Metrics>,
        clock: Clock,
        mut past: Vec<HistoryEntry>,
    ) -> Arc<Live> {
        past.sort_by_key(|e| e.generation);
        let generation = first
            .revision
            .unwrap_or_else(|| past.last().map_or(1, |e| e.generation + 1));
        let snapshot = first
            .candidate
            .into_snapshot(generation, Trigger::Start, clock.now());
        metrics.reload("ok");
        metrics.generation.set(snapshot.generation as i64);
        let mut history = VecDeque::from(past);
        history.retain(|e| e.generation < snapshot.generation);
        history.push_back(HistoryEntry::of(&snapshot));
        while history.len() > HISTORY_LEN {
            history.pop_front();
        }
        let first_generation = snapshot.generation;
        let (changed, _) = tokio_watch::channel(snapshot.generation);
        Arc::new(Live {
            source,
            clock,
            current: ArcSwap::from_pointee(snapshot),
            history: Mutex::new(history),
            last_error: Mutex::new(None),
            reload_lock: tokio::sync::Mutex::new(()),
            changed,
            metrics,
            first_generation,
        })
    }

    /// The generation this process started with; earlier ones in the history came from the
    /// store.
    pub fn first_generation(&self) -> u64 {
        self.first_generation
    }

    /// [`Live::first_load`] and [`Live::start`] without a stored history.
    pub async fn open(
        source: Source,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) -> Result<Arc<Live>, ReloadError> {
        let first = Live::first_load(&source, &metrics, &clock).await?;
        Ok(Live::start(source, first, metrics, clock, Vec::new()))
    }

    /// The snapshot in force. Call once per request and keep it.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Where the rules come from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The clock this gateway runs on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// A receiver woken with the new generation number after each swap.
    pub fn subscribe(&self) -> tokio_watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The last rejected reload, if the latest attempt failed and nothing succeeded since.
    pub fn last_error(&self) -> Option<ReloadFailure> {
        self.last_error.lock().clone()
    }

    /// Past generations, newest first.
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.history.lock().iter().rev().cloned().collect()
    }

    /// Re-read the document (and the files it names) and swap if it builds. A shared document
    /// whose database cannot be reached is rebuilt from the revision in force, so the files it
    /// names (tokens, secrets, the tenant directory) still reload during an outage.
    pub async fn reload(&self, trigger: Trigger) -> Result<ReloadOutcome, ReloadError> {
        let _guard = self.reload_lock.lock().await;
        let result = async {
            let running = self.load();
            let document = match self.source.read().await {
                Ok(document) => document,
                Err(SourceError::Unavailable(error)) if self.source.is_revisioned() => {
                    tracing::warn!(
                        "config database unavailable ({error}); reloading revision {} in force",
                        running.generation
                    );
                    crate::config::source::Document {
                        text: running.text.to_string(),
                        revision: Some(running.generation),
                    }
                }
                Err(error) => return Err(error.into()),
            };
            let name = self.source.name_for(document.revision);
            let candidate =
                compile(name, document.text, Some(running.clone()), &self.clock).await?;
            Ok(self.swap(candidate, document.revision, trigger).0)
        }
        .await;
        self.record(result.as_ref());
        result
    }

    /// Replace the document with `text`, computed from generation `base` (or from whatever is
    /// in force when `None`), and put it in force. The text is built first, so an invalid edit
    /// never reaches the document; the write is refused with [`ReloadError::Conflict`] when
    /// another generation took over since `base` or the document no longer holds the running
    /// text (someone edited it by hand), so an edit never silently undoes a change it did not
    /// see.
    pub async fn write(
        &self,
        base: Option<u64>,
        text: String,
        trigger: Trigger,
    ) -> Result<ReloadOutcome, ReloadError> {
        self.write_and_load(base, text, trigger)
            .await
            .map(|(outcome, _)| outcome)
    }

    /// [`Live::write`], also returning the snapshot the write put (or kept) in force — the very
    /// one that was validated, even if another reload follows it at once.
    pub async fn write_and_load(
        &self,
        base: Option<u64>,
        text: String,
        trigger: Trigger,
    ) -> Result<(ReloadOutcome, Arc<Snapshot>), ReloadError> {
        self.write_and_load_as(base, text, trigger, &Author::default())
            .await
    }

    /// [`Live::write_and_load`] on behalf of `author` (kept in a shared document's revision).
    pub async fn write_and_load_as(
        &self,
        base: Option<u64>,
        text: String,
        trigger: Trigger,
        author: &Author,
    ) -> Result<(ReloadOutcome, Arc<Snapshot>), ReloadError> {
        let _guard = self.reload_lock.lock().await;
        let result = self.write_locked(base, text, trigger, author).await;
        self.record(result.as_ref().map(|(outcome, _)| outcome));
        result
    }

    /// Build `text` into a candidate without putting it in force (dry runs, checks).
    pub async fn candidate(&self, text: String) -> Result<Candidate, ReloadError> {
        let running = self.load();
        let name = self.draft_name(&running);
        compile(name, text, Some(running), &self.clock).await
    }

    /// The name an edit's text carries in config errors: the file, or the revision it would
    /// become.
    fn draft_name(&self, running: &Snapshot) -> std::path::PathBuf {
        let next = self
            .source
            .is_revisioned()
            .then_some(running.generation + 1);
        self.source.name_for(next)
    }

    async fn write_locked(
        &self,
        base: Option<u64>,
        text: String,
        trigger: Trigger,
        author: &Author,
    ) -> Result<(ReloadOutcome, Arc<Snapshot>), ReloadError> {
        let running = self.load();
        let revisioned = self.source.is_revisioned();
        if let Some(based_on) = base
            && based_on != running.generation
        {
            return Err(if revisioned {
                ReloadError::Moved {
                    based_on,
                    newest: running.generation,
                }
            } else {
                ReloadError::Conflict
            });
        }
        let name = self.draft_name(&running);
        let candidate = compile(name, text, Some(running.clone()), &self.clock).await?;
        // A rollback of a shared document always appends a revision: it must also supersede a
        // newer revision that this replica rejected.
        let always = revisioned && base.is_none();
        if candidate.hash() == running.rules.hash && !always {
            let outcome = ReloadOutcome::Unchanged {
                generation: running.generation,
                hash: running.rules.hash.clone(),
            };
            return Ok((outcome, running));
        }
        let expected = Base {
            text: &running.text,
            revision: base,
        };
        let revision = self
            .source
            .write(&candidate.text, expected, author, trigger.as_str())
            .await?;
        Ok(self.swap(candidate, revision, trigger))
    }

    /// Return to the rules of an earlier generation: its text is written back to the document
    /// (so the document stays the one source of truth and a restart keeps the rollback) and
    /// loaded as a new generation.
    pub async fn rollback(&self, generation: u64) -> Result<ReloadOutcome, ReloadError> {
        self.rollback_as(generation, &Author::default()).await
    }

    /// [`Live::rollback`] on behalf of `author`. With a shared document every revision in the
    /// table can be returned to, not only those this process loaded.
    pub async fn rollback_as(
        &self,
        generation: u64,
        author: &Author,
    ) -> Result<ReloadOutcome, ReloadError> {
        let text = match self.source.postgres() {
            Some(pg) => match pg.read_revision(generation).await {
                Ok(text) => Some(text),
                Err(SourceError::NoRevision { .. }) => None,
                Err(error) => return Err(error.into()),
            },
            None => self
                .history
                .lock()
                .iter()
                .find(|e| e.generation == generation)
                .map(|e| e.text.to_string()),
        };
        let Some(text) = text else {
            return Err(ReloadError::UnknownGeneration(generation));
        };
        self.write_and_load_as(None, text, Trigger::Rollback, author)
            .await
            .map(|(outcome, _)| outcome)
    }

    /// Past generations, newest first: with a shared document, its revisions as the table
    /// keeps them (the same list on every replica), or this process's history when the
    /// database cannot be reached.
    pub async fn revisions(&self) -> Vec<HistoryEntry> {
        let Some(pg) = self.source.postgres() else {
            return self.history();
        };
        match pg.revisions(HISTORY_LEN).await {
            Ok(rows) => rows.into_iter().map(HistoryEntry::from_revision).collect(),
            Err(error) => {
                tracing::warn!("revision history unavailable, showing this replica's: {error}");
                self.history()
            }
        }
    }

    /// Put `candidate` in force unless it equals the running rules; returns the outcome and
    /// the snapshot in force after it.
    fn swap(
        &self,
        candidate: Candidate,
        revision: Option<u64>,
        trigger: Trigger,
    ) -> (ReloadOutcome, Arc<Snapshot>) {
        let previous = self.load();
        let unchanged = candidate.hash() == previous.rules.hash
            && revision.is_none_or(|r| r == previous.generation);
        // A shared document never goes back: a revision older than the one in force was read
        // before a newer one was swapped in by another path.
        let stale = revision.is_some_and(|r| r < previous.generation);
        if unchanged || stale {
            let outcome = ReloadOutcome::Unchanged {
                generation: previous.generation,
                hash: previous.rules.hash.clone(),
            };
            return (outcome, previous);
        }
        let generation = revision.unwrap_or(previous.generation + 1);
        let snapshot = candidate.into_snapshot(generation, trigger, self.clock.now());
        let outcome = ReloadOutcome::Applied {
            generation,
            hash: snapshot.rules.hash.clone(),
        };
        let entry = HistoryEntry::of(&snapshot);
        let snapshot = Arc::new(snapshot);
        self.current.store(snapshot.clone());
        {
            let mut history = self.history.lock();
            // The same revision rebuilt (a file it names changed) replaces its entry.
            history.retain(|e| e.generation != generation);
            history.push_back(entry);
            while history.len() > HISTORY_LEN {
                history.pop_front();
            }
        }
        self.metrics.generation.set(generation as i64);
        self.changed.send_replace(generation);
        tracing::info!(generation, trigger = trigger.as_str(), "rules reloaded");
        (outcome, snapshot)
    }

    fn record(&self, result: Result<&ReloadOutcome, &ReloadError>) {
        match result {
            Ok(ReloadOutcome::Applied { .. }) => {
                self.metrics.reload("ok");
                self.set_error(None);
            }
            Ok(ReloadOutcome::Unchanged { .. }) => {
                self.metrics.reload("unchanged");
                self.set_error(None);
            }
            Err(ReloadError::Conflict)
            | Err(ReloadError::Moved { .. })
            | Err(ReloadError::UnknownGeneration(_)) => {}
            Err(error) => {
                self.metrics.reload("error");
                tracing::error!(
                    "reload rejected, generation {} keeps serving:\n{error}",
                    self.load().generation
                );
                self.set_error(Some(ReloadFailure {
                    message: error.to_string(),
                    since: self.clock.now(),
                }));
            }
        }
    }

    fn set_error(&self, failure: Option<ReloadFailure>) {
        let mut slot = self.last_error.lock();
        match (&*slot, failure) {
            // Keep the first time of a run of failures: "failing since".
            (Some(old), Some(new)) if old.message == new.message => {}
            (_, new) => *slot = new,
        }
    }
}

/// Build `text` (named `name` in config errors) off the async workers: compiling 10k tenants
/// × 2k routes is CPU work.
async fn compile(
    path: std::path::PathBuf,
    text: String,
    previous: Option<Arc<Snapshot>>,
    clock: &Clock,
) -> Result<Candidate, ReloadError> {
    let clock = clock.clone();
    let candidate = tokio::task::spawn_blocking(move || {
        snapshot::build(&text, &path, previous.as_deref(), &clock)
    })
    .await??;
    Ok(candidate)
}
