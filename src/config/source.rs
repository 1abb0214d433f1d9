//! Where the rule document lives, and how it is read and rewritten.
//!
//! The document is always the TOML text of the config, compiled by the same loader whatever
//! its home; only reading, writing and change notification differ:
//! - a **file** (`--config gw.toml` or `file:///etc/switchyard/gw.toml`): read from disk,
//!   rewritten atomically (temporary file, fsync, rename, fsync of the directory) keeping the
//!   file's permissions; a write is refused with [`SourceError::Conflict`] when the file no
//!   longer holds the text the edit was computed from (someone edited it by hand since).
//!
//! Writes are compare-and-set on purpose: an admin edit is computed from the text in force,
//! and must never silently undo a change it did not see.

use std::path::{Path, PathBuf};

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
    #[error("{0}")]
    Unsupported(String),
}

/// The document's text, and its revision where the source numbers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub text: String,
    /// The source's revision number (`None` for a file: generations are counted locally).
    pub revision: Option<u64>,
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
}

// === impl Source ===

impl Source {
    /// The source named on the command line: a path, or a `file://` URL.
    pub fn parse(arg: &str) -> Result<Source, SourceError> {
        if let Some(path) = arg.strip_prefix("file://") {
            return Ok(Source::file(Path::new(path)));
        }
        if arg.starts_with("postgres://") || arg.starts_with("postgresql://") {
            return Err(SourceError::Unsupported(
                "a PostgreSQL config source is not supported by this build".into(),
            ));
        }
        Ok(Source::file(Path::new(arg)))
    }

    /// A config file.
    pub fn file(path: &Path) -> Source {
        Source::File(FileSource {
            path: path.to_path_buf(),
        })
    }

    /// The name config errors carry, and the anchor of the config's relative paths.
    pub fn path(&self) -> &Path {
        match self {
            Source::File(f) => &f.path,
        }
    }

    /// What to show an operator: the file's path.
    pub fn describe(&self) -> String {
        match self {
            Source::File(f) => f.path.display().to_string(),
        }
    }

    /// The current document.
    pub async fn read(&self) -> Result<Document, SourceError> {
        match self {
            Source::File(f) => f.read().map(|text| Document {
                text,
                revision: None,
            }),
        }
    }

    /// Replace the document with `text` if it still is `expected` (compare-and-set); returns
    /// the new revision where the source numbers them.
    pub async fn write(&self, text: &str, expected: &str) -> Result<Option<u64>, SourceError> {
        match self {
            Source::File(f) => {
                let on_disk = f.read()?;
                if on_disk != expected {
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
        source.write("a = 2\n", "a = 1\n").await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a = 2\n");
        // Computed from a text that is no longer there: refused, nothing written.
        let err = source.write("a = 3\n", "a = 1\n").await.unwrap_err();
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
