//! Reload triggers: a debounced file watch and SIGHUP.
//!
//! The watch is on the DIRECTORIES holding the config file and every file it names, not on the
//! files: editors replace files by write-and-rename, and Kubernetes swaps ConfigMaps through a
//! `..data` symlink, both of which a watch on the old inode would miss. Any event in a watched
//! directory triggers a reload; identical content makes no new generation, so spurious events
//! cost one read and one compile.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::new_debouncer;

use super::{Live, Trigger};

/// Quiet time after the last event before a reload.
const DEBOUNCE: Duration = Duration::from_millis(150);

fn watched_dirs(live: &Live) -> BTreeSet<PathBuf> {
    let snapshot = live.load();
    std::iter::once(live.source().path().to_path_buf())
        .chain(snapshot.rules.files.iter().cloned())
        .filter_map(|file| {
            let dir = file.parent().map(Path::to_path_buf)?;
            Some(if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            })
        })
        .collect()
}

/// The file names an event must touch to matter: the config file, the files it names, and
/// Kubernetes' `..data`-style entries. Everything else in those directories — the SQLite
/// store's own writes above all — is ignored, so it never causes a recompile.
fn watched_names(live: &Live) -> HashSet<OsString> {
    let snapshot = live.load();
    std::iter::once(live.source().path())
        .chain(snapshot.rules.files.iter().map(PathBuf::as_path))
        .filter_map(|file| file.file_name().map(OsString::from))
        .collect()
}

fn is_relevant(path: &Path, names: &HashSet<OsString>) -> bool {
    match path.file_name() {
        Some(name) => names.contains(name) || name.to_string_lossy().starts_with(".."),
        None => false,
    }
}

/// Watch the config file's directory (and those of the files it names) and reload on change.
/// Runs until the process ends; the watcher re-targets when a reload names new files.
pub fn spawn_file_watch(live: Arc<Live>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let names = Arc::new(Mutex::new(watched_names(&live)));
    let filter = names.clone();
    let debouncer = new_debouncer(
        DEBOUNCE,
        None,
        move |result: notify_debouncer_full::DebounceEventResult| {
            let Ok(events) = result else { return };
            let relevant = {
                let names = filter.lock();
                events
                    .iter()
                    .any(|e| !e.kind.is_access() && e.paths.iter().any(|p| is_relevant(p, &names)))
            };
            if relevant {
                // A full channel already holds a pending reload: dropping this wake-up loses nothing.
                let _ = tx.try_send(());
            }
        },
    );
    let mut debouncer = match debouncer {
        Ok(d) => d,
        Err(error) => {
            tracing::error!("file watch unavailable, reload with SIGHUP or the admin API: {error}");
            return;
        }
    };
    let mut dirs = watched_dirs(&live);
    for dir in &dirs {
        if let Err(error) = debouncer.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), "cannot watch: {error}");
        }
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            if let Err(error) = live.reload(Trigger::File).await {
                tracing::debug!("file-triggered reload rejected: {error}");
            }
            *names.lock() = watched_names(&live);
            let now = watched_dirs(&live);
            if now != dirs {
                for dir in dirs.difference(&now) {
                    let _ = debouncer.unwatch(dir);
                }
                for dir in now.difference(&dirs) {
                    if let Err(error) = debouncer.watch(dir, RecursiveMode::NonRecursive) {
                        tracing::warn!(dir = %dir.display(), "cannot watch: {error}");
                    }
                }
                dirs = now;
            }
        }
    });
}

/// Reload on SIGHUP.
pub fn spawn_sighup(live: Arc<Live>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP");
            return;
        };
        while hup.recv().await.is_some() {
            match live.reload(Trigger::Signal).await {
                Ok(outcome) => tracing::info!(?outcome, "SIGHUP reload"),
                Err(error) => tracing::warn!("SIGHUP reload rejected: {error}"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_config_its_files_and_configmap_entries_matter() {
        let names: HashSet<OsString> = ["gw.toml", "tenants.toml"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(is_relevant(Path::new("/etc/sy/gw.toml"), &names));
        assert!(is_relevant(Path::new("/etc/sy/tenants.toml"), &names));
        assert!(is_relevant(Path::new("/etc/sy/..data"), &names));
        assert!(is_relevant(Path::new("/etc/sy/..2026_11_29"), &names));
        assert!(!is_relevant(Path::new("/etc/sy/switchyard.db-wal"), &names));
        assert!(!is_relevant(Path::new("/etc/sy/.gw.toml.swp"), &names));
    }
}
