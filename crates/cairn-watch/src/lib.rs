//! Change notification for registered folders: the OS watcher (inotify, FSEvents,
//! ReadDirectoryChanges through `notify`) turned into debounced batches of paths to look at.
//!
//! It deliberately does not decide what a change means (created, renamed, saved atomically):
//! it only says *which paths* to look at again, and when the OS lost track (queue overflow,
//! watch limit) it says *rescan*. The engine compares those paths with its records, so every
//! editor's way of saving, and every rename or move, comes down to "look at these paths".

use notify::{EventKind, RecursiveMode, Watcher as _};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// What the watcher reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// These paths (files or folders, existing or not) changed; quiet for the debounce window.
    Paths(Vec<PathBuf>),
    /// Events were lost (kernel queue overflow, watch limit); everything must be rescanned.
    Rescan { reason: String },
}

#[derive(Clone, Debug)]
pub struct DebounceOptions {
    /// A batch is sent once no event has arrived for this long ...
    pub quiet: Duration,
    /// ... or once the oldest event in it is this old, whichever comes first (bursts of
    /// thousands of events still make progress).
    pub max_wait: Duration,
}

impl Default for DebounceOptions {
    fn default() -> Self {
        DebounceOptions { quiet: Duration::from_millis(400), max_wait: Duration::from_secs(3) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path}: {reason}")]
    Watch { path: String, reason: String },
    /// The system's limit on watched folders was reached (Linux: fs.inotify.max_user_watches).
    #[error(
        "cannot watch {path}: the system's limit on watched folders is reached; changes there are picked up by the periodic rescan (raise fs.inotify.max_user_watches to fix)"
    )]
    Limit { path: String },
}

/// Watches folders recursively. Dropping it stops the OS watcher and the debounce thread.
pub struct FolderWatcher {
    watcher: notify::RecommendedWatcher,
    watched: BTreeSet<PathBuf>,
}

impl FolderWatcher {
    /// Starts an OS watcher (no folders yet) and the thread that debounces its events.
    pub fn start(opts: DebounceOptions) -> Result<(FolderWatcher, Receiver<Change>), WatchError> {
        let (raw_tx, raw_rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
        let (tx, rx) = std::sync::mpsc::channel::<Change>();
        // Symlinked folders are not followed by the OS watcher: a link to `/` or to a huge share
        // would otherwise add watches on all of it. Changes behind links inside the folder are
        // picked up by the periodic rescan (which does follow links that stay inside).
        let config = notify::Config::default().with_follow_symlinks(false);
        let watcher = notify::RecommendedWatcher::new(
            move |e| {
                let _ = raw_tx.send(e);
            },
            config,
        )
        .map_err(|e| WatchError::Watch { path: String::new(), reason: e.to_string() })?;
        std::thread::Builder::new()
            .name("cairn-watch".into())
            .spawn(move || debounce(raw_rx, tx, opts))
            .map_err(|e| WatchError::Watch { path: String::new(), reason: e.to_string() })?;
        Ok((FolderWatcher { watcher, watched: BTreeSet::new() }, rx))
    }

    /// Watches `folder` and everything below it.
    pub fn watch(&mut self, folder: &Path) -> Result<(), WatchError> {
        if self.watched.contains(folder) {
            return Ok(());
        }
        match self.watcher.watch(folder, RecursiveMode::Recursive) {
            Ok(()) => {
                self.watched.insert(folder.to_path_buf());
                Ok(())
            }
            Err(e) => Err(match e.kind {
                notify::ErrorKind::MaxFilesWatch => WatchError::Limit { path: folder.display().to_string() },
                ref k => WatchError::Watch { path: folder.display().to_string(), reason: describe(k) },
            }),
        }
    }

    pub fn unwatch(&mut self, folder: &Path) {
        if self.watched.remove(folder) {
            let _ = self.watcher.unwatch(folder);
        }
    }

    pub fn watched(&self) -> impl Iterator<Item = &Path> {
        self.watched.iter().map(PathBuf::as_path)
    }
}

fn describe(kind: &notify::ErrorKind) -> String {
    match kind {
        notify::ErrorKind::Generic(s) => s.clone(),
        notify::ErrorKind::Io(e) => e.to_string(),
        notify::ErrorKind::PathNotFound => "the folder does not exist".into(),
        notify::ErrorKind::WatchNotFound => "not watched".into(),
        notify::ErrorKind::InvalidConfig(_) => "invalid watcher configuration".into(),
        notify::ErrorKind::MaxFilesWatch => "the watch limit is reached".into(),
    }
}

/// Collects raw events into batches: a path is reported once per batch, however many events
/// it had (an atomic save is create + modify + rename, a copy is hundreds of writes).
fn debounce(raw: Receiver<notify::Result<notify::Event>>, out: Sender<Change>, opts: DebounceOptions) {
    let mut batch: BTreeSet<PathBuf> = BTreeSet::new();
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    loop {
        let wait = match first {
            None => Duration::from_secs(3600),
            Some(f) => {
                let by_quiet = opts.quiet.saturating_sub(last.elapsed());
                let by_max = opts.max_wait.saturating_sub(f.elapsed());
                by_quiet.min(by_max)
            }
        };
        match raw.recv_timeout(wait) {
            Ok(Ok(event)) => {
                if event.need_rescan() {
                    batch.clear();
                    first = None;
                    if out.send(Change::Rescan { reason: "the system's event queue overflowed".into() }).is_err() {
                        return;
                    }
                    continue;
                }
                if matches!(event.kind, EventKind::Access(_)) {
                    continue;
                }
                if event.paths.is_empty() {
                    continue;
                }
                batch.extend(event.paths);
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
            }
            Ok(Err(e)) => {
                let reason = match e.kind {
                    notify::ErrorKind::MaxFilesWatch => "the system's limit on watched folders was reached".to_owned(),
                    ref k => format!("the watcher reported an error: {}", describe(k)),
                };
                if out.send(Change::Rescan { reason }).is_err() {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if first.is_some() {
                    let paths: Vec<PathBuf> = std::mem::take(&mut batch).into_iter().collect();
                    first = None;
                    if out.send(Change::Paths(paths)).is_err() {
                        return;
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                if !batch.is_empty() {
                    let _ = out.send(Change::Paths(batch.into_iter().collect()));
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn next_paths(rx: &Receiver<Change>) -> BTreeSet<PathBuf> {
        let mut all = BTreeSet::new();
        // Collect batches until the folder has been quiet for a second.
        while let Ok(c) = rx.recv_timeout(Duration::from_secs(2)) {
            match c {
                Change::Paths(p) => all.extend(p),
                Change::Rescan { reason } => panic!("unexpected rescan: {reason}"),
            }
        }
        all
    }

    #[test]
    fn edits_renames_and_deletes_come_out_as_debounced_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        let (mut w, rx) = FolderWatcher::start(DebounceOptions::default()).unwrap();
        w.watch(&root).unwrap();

        // An editor's atomic save: write a temporary file, rename it over the original.
        std::fs::write(root.join("sub/.notes.md.tmp"), "v2").unwrap();
        std::fs::rename(root.join("sub/.notes.md.tmp"), root.join("sub/notes.md")).unwrap();
        let seen = next_paths(&rx);
        assert!(seen.contains(&root.join("sub/notes.md")), "{seen:?}");

        // A burst of writes to one file is one path in one batch.
        for i in 0..200 {
            std::fs::write(root.join("burst.txt"), format!("{i}")).unwrap();
        }
        let batch = match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
            Change::Paths(p) => p,
            other => panic!("{other:?}"),
        };
        assert_eq!(batch.iter().filter(|p| p.ends_with("burst.txt")).count(), 1, "{batch:?}");
        let _ = next_paths(&rx);

        // Renaming a folder names both the old and the new place.
        std::fs::rename(root.join("sub"), root.join("moved")).unwrap();
        let seen = next_paths(&rx);
        assert!(seen.contains(&root.join("sub")) && seen.contains(&root.join("moved")), "{seen:?}");

        std::fs::remove_file(root.join("burst.txt")).unwrap();
        assert!(next_paths(&rx).contains(&root.join("burst.txt")));

        // A symlink to a tree outside the folder is not followed into.
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("link-out")).unwrap();
        let _ = next_paths(&rx);
        std::fs::write(outside.path().join("elsewhere.txt"), "x").unwrap();
        let seen = next_paths(&rx);
        assert!(!seen.iter().any(|p| p.ends_with("elsewhere.txt")), "{seen:?}");
    }

    #[test]
    fn lost_events_ask_for_a_rescan_and_endless_bursts_still_flush() {
        let (raw_tx, raw_rx) = std::sync::mpsc::channel();
        let (tx, rx) = std::sync::mpsc::channel();
        let opts = DebounceOptions { quiet: Duration::from_millis(300), max_wait: Duration::from_millis(800) };
        std::thread::spawn(move || debounce(raw_rx, tx, opts));
        // The kernel queue overflowed (inotify IN_Q_OVERFLOW): notify flags the event "rescan".
        raw_tx.send(Ok(notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan))).unwrap();
        assert!(matches!(rx.recv_timeout(Duration::from_secs(2)).unwrap(), Change::Rescan { .. }));
        // The watch limit was hit while watching a new subfolder.
        raw_tx.send(Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch))).unwrap();
        match rx.recv_timeout(Duration::from_secs(2)).unwrap() {
            Change::Rescan { reason } => assert!(reason.contains("limit"), "{reason}"),
            other => panic!("{other:?}"),
        }
        // Events every 50 ms never leave a quiet gap, yet a batch goes out after max_wait.
        let sender = std::thread::spawn(move || {
            for i in 0..40 {
                let e = notify::Event::new(EventKind::Modify(notify::event::ModifyKind::Any))
                    .add_path(PathBuf::from(format!("/f/{i}")));
                raw_tx.send(Ok(e)).unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        // The burst lasts 2 s; with max_wait 0.8 s the first batch holds only its first part.
        match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
            Change::Paths(p) => assert!(!p.is_empty() && p.len() < 40, "{} paths", p.len()),
            other => panic!("{other:?}"),
        }
        sender.join().unwrap();
    }

    #[test]
    fn a_missing_folder_cannot_be_watched_and_says_why() {
        let (mut w, _rx) = FolderWatcher::start(DebounceOptions::default()).unwrap();
        let err = w.watch(Path::new("/nonexistent/cairn")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cairn"), "{err}");
    }
}
