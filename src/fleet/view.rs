//! The fleet view: `GET /admin/fleet` and `switchyard fleet`.

use std::sync::atomic::Ordering;

use super::{Fleet, SEEN_WINDOW};
use crate::config::source::ReplicaRow;
use crate::live::Live;

/// One replica of the fleet view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    pub replica: String,
    /// The revision (generation) it serves.
    pub revision: Option<u64>,
    /// When it loaded that revision (epoch milliseconds).
    pub loaded_at: Option<i64>,
    pub started_at: i64,
    /// Its last heartbeat (epoch milliseconds, the database's clock).
    pub last_seen: i64,
    /// Revisions it is behind the newest.
    pub lag: u64,
    /// Whether its LISTEN connection is up (otherwise only the poll keeps it current).
    pub listening: bool,
    pub admin: Option<String>,
    pub version: Option<String>,
    /// Why it refuses the newest revision, when it does.
    pub last_error: Option<String>,
    /// The replica that answered this call.
    #[serde(rename = "self")]
    pub this: bool,
}

/// The answer of `GET /admin/fleet`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FleetAnswer {
    /// `file` or `postgres`.
    pub source: String,
    /// The document's name (PostgreSQL).
    pub document: Option<String>,
    /// The replica that answered.
    pub replica: String,
    /// The newest revision (as far as this replica knows when the database is down).
    pub newest_revision: u64,
    /// Whether the database answered; without it only this replica is listed.
    pub source_up: bool,
    /// Why the database did not answer.
    pub error: Option<String>,
    /// Replicas seen within the last minute.
    pub replicas: Vec<Member>,
}

pub(super) async fn answer(fleet: &Fleet, live: &Live) -> FleetAnswer {
    let serving = live.load().generation;
    let Some(pg) = &fleet.source else {
        return FleetAnswer {
            source: "file".into(),
            document: None,
            replica: fleet.replica.clone(),
            newest_revision: serving,
            source_up: true,
            error: None,
            replicas: vec![member(fleet, fleet.myself(live), serving)],
        };
    };
    match pg.fleet(SEEN_WINDOW).await {
        Ok(view) => {
            fleet.set_up(true, None);
            fleet.saw_newest(view.newest);
            let mut rows = view.replicas;
            // Listed even before its first heartbeat lands.
            if !rows.iter().any(|r| r.replica == fleet.replica) {
                rows.push(fleet.myself(live));
                rows.sort_by(|a, b| a.replica.cmp(&b.replica));
            }
            FleetAnswer {
                source: "postgres".into(),
                document: Some(pg.document().to_owned()),
                replica: fleet.replica.clone(),
                newest_revision: view.newest,
                source_up: true,
                error: None,
                replicas: rows
                    .into_iter()
                    .map(|row| member(fleet, row, view.newest))
                    .collect(),
            }
        }
        Err(error) => {
            fleet.set_up(false, Some(&error));
            let newest = fleet.newest.load(Ordering::Relaxed).max(serving);
            FleetAnswer {
                source: "postgres".into(),
                document: Some(pg.document().to_owned()),
                replica: fleet.replica.clone(),
                newest_revision: newest,
                source_up: false,
                error: Some(error.to_string()),
                replicas: vec![member(fleet, fleet.myself(live), newest)],
            }
        }
    }
}

fn member(fleet: &Fleet, row: ReplicaRow, newest: u64) -> Member {
    Member {
        lag: newest.saturating_sub(row.revision.unwrap_or(0)),
        this: row.replica == fleet.replica,
        replica: row.replica,
        revision: row.revision,
        loaded_at: row.loaded_at_ms,
        started_at: row.started_at_ms,
        last_seen: row.last_seen_ms,
        listening: row.listening,
        admin: row.admin,
        version: row.version,
        last_error: row.last_error,
    }
}
