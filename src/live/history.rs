//! Past generations: the bounded in-memory history (for `history` and `rollback`) and its
//! copy in the store, which seeds a restarted process so generation numbers keep counting and
//! rollback reaches past a restart.
//!
//! A PostgreSQL document keeps its own history — its revisions table, one list for the whole
//! fleet — so its generations are neither seeded from nor saved to the store, where replicas
//! sharing one store would interleave their numbers.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use super::{Live, Snapshot, Trigger};
use crate::clock::{epoch_ms, from_epoch_ms};
use crate::config::source::Revision;
use crate::store::{GenerationRecord, Store};

/// How many past generations stay available for history and rollback.
pub const HISTORY_LEN: usize = 50;

/// A past generation, kept for history and rollback.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    pub generation: u64,
    pub hash: String,
    #[serde(with = "crate::clock::serde_epoch_ms")]
    pub loaded_at: SystemTime,
    pub trigger: Trigger,
    /// Who wrote this revision of a shared document (an admin token's name, or the database
    /// role of a row inserted by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The replica that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip)]
    pub text: Arc<str>,
}

impl HistoryEntry {
    /// The history entry of a snapshot.
    pub fn of(snapshot: &Snapshot) -> HistoryEntry {
        HistoryEntry {
            generation: snapshot.generation,
            hash: snapshot.rules.hash.clone(),
            loaded_at: snapshot.loaded_at,
            trigger: snapshot.trigger,
            author: None,
            replica: None,
            reason: None,
            text: snapshot.text.clone(),
        }
    }

    /// A revision of a shared document (listed without its text; rollback reads it back).
    pub fn from_revision(revision: Revision) -> HistoryEntry {
        HistoryEntry {
            generation: revision.revision,
            hash: revision.hash.unwrap_or_default(),
            loaded_at: from_epoch_ms(revision.created_at_ms),
            trigger: match revision.origin.as_str() {
                "push" => Trigger::Admin,
                origin => Trigger::parse(origin),
            },
            author: Some(revision.author),
            replica: revision.replica,
            reason: revision.reason,
            text: Arc::from(""),
        }
    }
}

/// The generations kept in the store, oldest first, with their config texts. A store that
/// cannot be read gives an empty history (logged): the gateway starts anyway.
pub async fn stored(store: &Store) -> Vec<HistoryEntry> {
    let summaries = match store.list_generations(HISTORY_LEN).await {
        Ok(list) => list,
        Err(error) => {
            tracing::warn!("stored history unavailable: {error}");
            return Vec::new();
        }
    };
    let mut entries = Vec::with_capacity(summaries.len());
    for summary in summaries {
        if let Ok(Some(record)) = store.get_generation(summary.generation).await {
            entries.push(HistoryEntry {
                generation: record.generation,
                hash: record.hash,
                loaded_at: from_epoch_ms(record.loaded_at_ms),
                trigger: Trigger::parse(&record.origin),
                author: None,
                replica: None,
                reason: None,
                text: Arc::from(record.content),
            });
        }
    }
    entries.sort_by_key(|e| e.generation);
    entries
}

/// Save every generation (its full config text) in the store until `shutdown`; the
/// generation in force when shutdown comes is saved before this returns. Generations that
/// followed each other faster than the store wrote them are all saved, oldest first.
pub async fn persist(live: Arc<Live>, store: Store, mut shutdown: watch::Receiver<bool>) {
    let mut changed = live.subscribe();
    // Generations before this process's first came from the store.
    let mut saved = live.first_generation().saturating_sub(1);
    // Attempts left once shutdown has come: a store that is down must not hold the exit.
    let mut last_tries = 3;
    loop {
        let mut pending: Vec<HistoryEntry> = live
            .history()
            .into_iter()
            .filter(|e| e.generation > saved)
            .collect();
        pending.sort_by_key(|e| e.generation);
        for entry in pending {
            let record = GenerationRecord {
                generation: entry.generation,
                hash: entry.hash.clone(),
                loaded_at_ms: epoch_ms(entry.loaded_at),
                source: live.source().describe(),
                content: entry.text.to_string(),
                origin: entry.trigger.as_str().to_string(),
            };
            match store.save_generation(&record).await {
                Ok(()) => saved = entry.generation,
                Err(error) => {
                    tracing::warn!(
                        generation = record.generation,
                        "history not persisted: {error}"
                    );
                    break;
                }
            }
        }
        if *shutdown.borrow() {
            // Stop only once the generation in force is saved (a reload may have landed
            // while the previous one was being written).
            if live.load().generation <= saved || last_tries == 0 {
                return;
            }
            last_tries -= 1;
            continue;
        }
        tokio::select! {
            result = changed.changed() => if result.is_err() { return },
            // One more pass saves a generation swapped in just before shutdown.
            _ = shutdown.changed() => {},
        }
    }
}
