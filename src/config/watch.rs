//! Telling when the config file changed: the file watched through the operating system
//! (inotify), and SIGHUP, the signal operators send to mean "reload".
//!
//! The folder is watched rather than the file, because editors and configuration tools
//! replace a file by renaming a new one over it, which a watch on the old file never sees.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// One save can end in more than one event (a rename and a close, say); this much quiet ends it.
const SETTLE: Duration = Duration::from_millis(5);

/// Changes to one config file.
pub struct ConfigWatch {
    changes: mpsc::Receiver<()>,
    // Watching stops when this is dropped.
    _watcher: Option<notify::RecommendedWatcher>,
}

impl ConfigWatch {
    /// Watches `path` and listens for SIGHUP. A file that cannot be watched still reloads on
    /// SIGHUP; the reason is logged.
    pub fn new(path: &Path) -> Self {
        let (sender, changes) = mpsc::channel(1);
        let watcher = watch_file(path, sender.clone())
            .inspect_err(|error| {
                tracing::warn!(%error, file = %path.display(),
                    "cannot watch the config file; send SIGHUP to reload it");
            })
            .ok();
        tokio::spawn(forward_sighup(sender));
        ConfigWatch {
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

fn watch_file(
    path: &Path,
    sender: mpsc::Sender<()>,
) -> Result<notify::RecommendedWatcher, notify::Error> {
    let file: PathBuf = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let folder = file
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = file.file_name().map(|n| n.to_owned());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !completes_an_edit(&event.kind) {
            return;
        }
        if event
            .paths
            .iter()
            .any(|p| p.file_name().map(|n| n.to_owned()) == name)
        {
            // A full channel already holds a change to report; one is enough.
            let _ = sender.try_send(());
        }
    })?;
    watcher.watch(&folder, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Whether `kind` ends an edit: a file renamed into place or created, or closed after writing.
/// Writes in place (truncate, then data) come before their close: reading then would see half a
/// file.
fn completes_an_edit(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    matches!(
        kind,
        EventKind::Create(_)
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
