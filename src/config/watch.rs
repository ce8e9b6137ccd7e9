//! Telling when files changed: the config file (and SIGHUP, the signal operators send to mean
//! "reload"), or the folders a kind reads its own files from (workflow files).
//!
//! A file's folder is watched rather than the file, because editors and configuration tools
//! replace a file by renaming a new one over it, which a watch on the old file never sees.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// One save can end in more than one event (a rename and a close, say); this much quiet ends it.
const SETTLE: Duration = Duration::from_millis(5);

/// Changes to some files and folders.
pub struct FileWatch {
    changes: mpsc::Receiver<()>,
    // Watching stops when this is dropped.
    _watcher: Option<notify::RecommendedWatcher>,
}

impl FileWatch {
    /// Watches the config file at `path`, and listens for SIGHUP. A file that cannot be
    /// watched still reloads on SIGHUP; the reason is logged.
    pub fn config(path: &Path) -> Self {
        FileWatch::new(&[path.to_owned()], true)
    }

    /// Watches `targets`: a file, or every file directly in a folder. With `sighup`, SIGHUP
    /// counts as a change too.
    pub fn new(targets: &[PathBuf], sighup: bool) -> Self {
        let (sender, changes) = mpsc::channel(1);
        let watcher = watch(targets, sender.clone())
            .inspect_err(|error| {
                tracing::warn!(%error, targets = ?targets,
                    "cannot watch for changes; send SIGHUP to reload the config");
            })
            .ok();
        if sighup {
            tokio::spawn(forward_sighup(sender));
        }
        FileWatch {
            changes,
            _watcher: watcher,
        }
    }

    /// Waits for the next edit to settle. `None` when nothing can report one any more.
    pub async fn changed(&mut self) -> Option<()> {
        self.changes.recv().await?;
        loop {
            match tokio::time::timeout(SETTLE, self.changes.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) | Err(_) => return Some(()),
            }
        }
    }
}

/// A folder watched, and the one file in it that counts (`None`: any).
type Target = (PathBuf, Option<std::ffi::OsString>);

fn watch(
    targets: &[PathBuf],
    sender: mpsc::Sender<()>,
) -> Result<notify::RecommendedWatcher, notify::Error> {
    let targets: Vec<Target> = targets
        .iter()
        .map(|path| {
            let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
            if path.is_dir() {
                (path, None)
            } else {
                let folder = path
                    .parent()
                    .map(Path::to_owned)
                    .unwrap_or_else(|| PathBuf::from("."));
                let name = path.file_name().map(|n| n.to_owned());
                (folder, name)
            }
        })
        .collect();
    let wanted = targets.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !completes_an_edit(&event.kind) {
            return;
        }
        let counts = event.paths.iter().any(|path| {
            wanted.iter().any(|(folder, name)| match name {
                Some(name) => path.file_name() == Some(name.as_os_str()),
                None => path.parent() == Some(folder.as_path()),
            })
        });
        if counts {
            // A full channel already holds a change to report; one is enough.
            let _ = sender.try_send(());
        }
    })?;
    let mut folders: Vec<&PathBuf> = targets.iter().map(|(folder, _)| folder).collect();
    folders.sort();
    folders.dedup();
    for folder in folders {
        watcher.watch(folder, RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}

/// Whether `kind` ends an edit: a file renamed into place, created or removed, or closed after
/// writing. Writes in place (truncate, then data) come before their close: reading then would
/// see half a file.
fn completes_an_edit(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    matches!(
        kind,
        EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

async fn forward_sighup(sender: mpsc::Sender<()>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP");
        return;
    };
    while hangups.recv().await.is_some() {
        if sender.is_closed() {
            return;
        }
        let _ = sender.try_send(());
    }
}
