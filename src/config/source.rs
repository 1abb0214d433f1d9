//! Where the rule document lives, and how it is read and rewritten.
//!
//! The document is always the TOML text of the config, compiled by the same loader whatever
//! its home; only reading, writing and change notification differ:
//! - a **file** (`--config gw.toml` or `file:///etc/switchyard/gw.toml`): read from disk,
//!   rewritten atomically (temporary file, fsync, rename, fsync of the directory) keeping the
//!   file's permissions; a write is refused with [`SourceError::Conflict`] when the file no
//!   longer holds the text the edit was computed from (someone edited it by hand since).
//! - a **PostgreSQL document** (`postgres://user@db/name?document=main`, see [`postgres`]):
//!   one row per revision, the newest is the rules; writes append a revision with
//!   compare-and-set on the revision they were computed from, and every replica sharing the
//!   document learns of it through `LISTEN/NOTIFY` (and a poll). Its relative paths resolve
//!   against the process's working directory, and its config errors read
//!   `revision N:line:col: message`.
//!
//! Writes are compare-and-set on purpose: an admin edit is computed from the text in force,
//! and must never silently undo a change it did not see.

use std::path::{Path, PathBuf};

pub mod postgres;

pub use postgres::{FleetView, Heartbeat, PgSource, ReplicaRow, Revision};

/// Why the document could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The document changed since the text an edit was computed from.
    #[error("the config changed since it was last read; re-read it and try again")]
    Conflict,
    /// A newer revision than the one an edit was computed from is in the document.
    #[error(
        "revision {newest} is newer than revision {based_on} this change was computed from; nothing changed"
    )]
    Moved { based_on: u64, newest: u64 },
    /// The PostgreSQL source URL is malformed.
    #[error("config source {url}: {message}")]
    BadUrl { url: String, message: String },
    /// The database holding the document cannot be reached (or failed the query).
    #[error("the config database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The document has no revision yet.
    #[error(
        "the config document {document:?} has no revision yet: push one with `switchyard config push FILE --config URL`"
    )]
    Empty { document: String },
    #[error("the config document {document:?} has no revision {revision}")]
    NoRevision { document: String, revision: u64 },
    /// The document is unavailable and there is no usable local copy of it.
    #[error("{error}; and no cached copy at {}: {reason}", path.display())]
    NoCache {
        error: Box<SourceError>,
        path: PathBuf,
        reason: String,
    },
}

/// The document's text, and its revision where the source numbers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub text: String,
    /// The source's revision number (`None` for a file: generations are counted locally).
    pub revision: Option<u64>,
}

/// What a write is computed from: the text in force, and the revision to compare and set
/// against (`None`: append after whatever is newest, as a rollback does).
#[derive(Debug, Clone, Copy)]
pub struct Base<'a> {
    pub text: &'a str,
    pub revision: Option<u64>,
}

/// Who writes a revision and why (kept in the document's revision rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Author {
    /// The admin token's name, or the `--author` of `switchyard config push`.
    pub name: Option<String>,
    pub reason: Option<String>,
}

/// Per-process settings of a source: who this replica is and where it keeps its local copy.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// This replica's identity in revision rows and heartbeats.
    pub replica: String,
    /// Where the last good document is cached (PostgreSQL sources); `None`: no cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            replica: crate::fleet::default_replica_id(),
            cache_dir: None,
        }
    }
}

/// A config file on disk.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
}

/// Where the rule document lives.
#[derive(Debug, Clone)]
pub enum Source {
    File(FileSource),
    Postgres(PgSource),
}

// === impl Source ===

impl Source {
    /// The source named on the command line: a path, a `file://` URL, or
    /// `postgres://…?document=NAME`.
    pub fn parse(arg: &str) -> Result<Source, SourceError> {
        Source::open(arg, &SourceOptions::default())
    }

    /// [`Source::parse`] with this process's replica identity and cache directory.
    pub fn open(arg: &str, options: &SourceOptions) -> Result<Source, SourceError> {
        if let Some(path) = arg.strip_prefix("file://") {
            return Ok(Source::file(Path::new(path)));
        }
        if arg.starts_with("postgres://") || arg.starts_with("postgresql://") {
            return PgSource::parse(arg, options).map(Source::Postgres);
        }
        Ok(Source::file(Path::new(arg)))
    }

    /// A config file.
    pub fn file(path: &Path) -> Source {
        Source::File(FileSource {
            path: path.to_path_buf(),
        })
    }

    /// The anchor of the config's relative paths: the file (its directory), or the working
    /// directory for a PostgreSQL document.
    pub fn path(&self) -> &Path {
        match self {
            Source::File(f) => &f.path,
            Source::Postgres(_) => Path::new("."),
        }
    }

    /// The name config errors of this text carry: the file, or `revision N` (whose relative
    /// paths then resolve against the working directory).
    pub fn name_for(&self, revision: Option<u64>) -> PathBuf {
        match (self, revision) {
            (Source::File(f), _) => f.path.clone(),
            (Source::Postgres(_), Some(n)) => PathBuf::from(format!("revision {n}")),
            (Source::Postgres(_), None) => PathBuf::from("revision (new)"),
        }
    }

    /// The PostgreSQL document, if that is where the rules live.
    pub fn postgres(&self) -> Option<&PgSource> {
        match self {
            Source::File(_) => None,
            Source::Postgres(pg) => Some(pg),
        }
    }

    /// Whether revisions are numbered by the source (and generations are those numbers).
    pub fn is_revisioned(&self) -> bool {
        self.postgres().is_some()
    }

    /// What to show an operator: the file's path, or the URL (password masked) and document.
    pub fn describe(&self) -> String {
        match self {
            Source::File(f) => f.path.display().to_string(),
            Source::Postgres(pg) => pg.describe(),
        }
    }

    /// The current document.
    pub async fn read(&self) -> Result<Document, SourceError> {
        match self {
            Source::File(f) => f.read().map(|text| Document {
                text,
                revision: None,
            }),
            Source::Postgres(pg) => pg.read().await,
        }
    }

    /// The document to start with: [`Source::read`], except that a PostgreSQL document that
    /// cannot be reached comes from the local cache of the last good revision, so a replica
    /// restarted during a database outage still serves the last rules.
    pub async fn read_at_start(&self) -> Result<Document, SourceError> {
        match self {
            Source::File(_) => self.read().await,
            Source::Postgres(pg) => pg.read_or_cached().await,
        }
    }

    /// Replace the document with `text` if it still is `base` (compare-and-set); returns
    /// the new revision where the source numbers them. `origin` (a trigger's name) says what
    /// wrote it.
    pub async fn write(
        &self,
        text: &str,
        base: Base<'_>,
        author: &Author,
        origin: &str,
    ) -> Result<Option<u64>, SourceError> {
        match self {
            Source::File(f) => {
                let on_disk = f.read()?;
                if on_disk != base.text {
                    return Err(SourceError::Conflict);
                }
                let (path, text) = (f.path.clone(), text.to_owned());
                tokio::task::spawn_blocking(move || write_atomically(&path, &text))
                    .await
                    .map_err(|e| SourceError::Io {
                        path: f.path.clone(),
                        source: std::io::Error::other(e),
                    })??;
                Ok(None)
            }
            Source::Postgres(pg) => pg
                .write(text, base.revision, author, origin)
                .await
                .map(Some),
        }
    }
}

// === impl FileSource ===

impl FileSource {
    fn read(&self) -> Result<String, SourceError> {
        std::fs::read_to_string(&self.path).map_err(|source| SourceError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Replace `path` with `text` so that readers see the old or the new file, never a torn
/// one: write a temporary file beside it, fsync, rename over, fsync the directory.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), SourceError> {
    use std::io::Write;
    let io = |source: std::io::Error| SourceError::Io {
        path: path.to_path_buf(),
        source,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_write_is_compare_and_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        let source = Source::file(&path);
        assert_eq!(source.read().await.unwrap().text, "a = 1\n");
        let base = |text| Base {
            text,
            revision: None,
        };
        let author = Author::default();
        source
            .write("a = 2\n", base("a = 1\n"), &author, "admin")
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a = 2\n");
        // Computed from a text that is no longer there: refused, nothing written.
        let err = source
            .write("a = 3\n", base("a = 1\n"), &author, "admin")
            .await
            .unwrap_err();
        assert!(matches!(err, SourceError::Conflict));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a = 2\n");
    }

    #[test]
    fn sources_from_the_command_line() {
        assert_eq!(
            Source::parse("file:///etc/sy/gw.toml").unwrap().path(),
            Path::new("/etc/sy/gw.toml")
        );
        assert_eq!(
            Source::parse("gw.toml").unwrap().path(),
            Path::new("gw.toml")
        );
    }
}
