//! The local copy of the last good revision: a replica restarted while the database is down
//! starts on it instead of not starting at all. One JSON file per document, replaced
//! atomically after every revision put in force.

use std::path::{Path, PathBuf};

use crate::config::source::{Document, SourceError, write_atomically};

#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    document: String,
    revision: u64,
    text: String,
}

/// The cache file of `document` in `dir`.
pub(super) fn file(dir: &Path, document: &str) -> PathBuf {
    dir.join(format!("switchyard-{document}.cache.json"))
}

pub(super) fn save(
    path: &Path,
    document: &str,
    revision: u64,
    text: &str,
) -> Result<(), SourceError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| SourceError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let cached = Cached {
        document: document.to_owned(),
        revision,
        text: text.to_owned(),
    };
    let json = serde_json::to_string(&cached).map_err(|e| SourceError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    write_atomically(path, &json)
}

/// The cached document, or why there is none.
pub(super) fn load(path: &Path, document: &str) -> Result<Document, String> {
    let json = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let cached: Cached = serde_json::from_str(&json).map_err(|e| format!("unreadable: {e}"))?;
    if cached.document != document {
        return Err(format!(
            "it holds document {:?}, not {document:?}",
            cached.document
        ));
    }
    Ok(Document {
        text: cached.text,
        revision: Some(cached.revision),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_good_revision_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(&dir.path().join("nested"), "main");
        assert!(load(&path, "main").is_err());
        save(&path, "main", 7, "[listen]\n").unwrap();
        save(&path, "main", 8, "[admin]\n").unwrap();
        let document = load(&path, "main").unwrap();
        assert_eq!(document.revision, Some(8));
        assert_eq!(document.text, "[admin]\n");
        assert!(load(&path, "other").unwrap_err().contains("main"));
    }
}
