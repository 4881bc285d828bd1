//! Keeping the index true to the disk while Cairn runs: the folder watcher's batches of
//! changed paths go through a durable queue in SQLite into scoped indexing passes; lost events
//! and folders that give none (network shares, synced folders) are caught by a full rescan.

use crate::indexer::{IndexEvent, IndexReport, Scope};
use crate::{Engine, EngineError};
use cairn_watch::{Change, DebounceOptions, FolderWatcher};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// A full rescan this often, for folders whose changes raise no events (None: never).
    pub rescan_every: Option<Duration>,
    /// Store compaction and cleanup of old versions this often.
    pub maintain_every: Duration,
    pub debounce: DebounceOptions,
    /// Listen to the OS's change events. Off: rely on the periodic rescan only (for file
    /// systems that raise no events, such as some network shares).
    pub events: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            rescan_every: Some(Duration::from_secs(15 * 60)),
            maintain_every: Duration::from_secs(30 * 60),
            debounce: DebounceOptions::default(),
            events: true,
        }
    }
}

/// What the watch loop reports, for a transcript (CLI) or status events (desktop app).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    /// Watching these folders (those that could not be watched are reported separately).
    Watching {
        folders: Vec<String>,
    },
    /// A folder cannot be watched; the periodic rescan covers it.
    NotWatched {
        folder: String,
        reason: String,
    },
    /// A full rescan starts, and why (startup, lost events, schedule).
    Rescan {
        reason: String,
    },
    /// Changed paths are being looked at.
    Changed {
        paths: Vec<String>,
    },
    /// Progress of the pass in hand.
    Index {
        progress: IndexEvent,
    },
    /// A pass finished.
    Synced {
        report: IndexReport,
    },
    /// A pass failed; the paths stay queued and are tried again.
    SyncFailed {
        reason: String,
    },
    Maintained {
        versions_removed: u64,
        bytes_removed: u64,
    },
    /// The scheduled retraining of the ranker ran (see `[learning] retrain_hours`).
    Learned {
        report: crate::LearnReport,
    },
    /// The scheduled retraining failed; searches keep the active ranker.
    LearnFailed {
        reason: String,
    },
}

impl Engine {
    /// Watches every registered folder until `stop` is set: a full pass first (which also
    /// resumes work a crash left pending), then each batch of changes as it settles.
    /// Holds the writer lock throughout: a second writer gets a clear `Busy` error.
    pub async fn watch(
        &self,
        opts: WatchOptions,
        on_event: &(dyn Fn(WatchEvent) + Send + Sync),
        stop: &AtomicBool,
    ) -> Result<(), EngineError> {
        let _lock = self.writer_lock()?;
        let (mut watcher, changes) =
            FolderWatcher::start(opts.debounce.clone()).map_err(|e| EngineError::Internal(e.to_string()))?;
        if opts.events {
            self.watch_folders(&mut watcher, on_event)?;
        }
        let index_event = |e: IndexEvent| on_event(WatchEvent::Index { progress: e });

        // Paths queued by an earlier run that stopped are covered by the full pass below.
        let leftover = self.db()?.queued(usize::MAX)?;
        on_event(WatchEvent::Rescan { reason: "start".into() });
        self.full_pass(on_event, &index_event).await;
        self.db()?.dequeue(&leftover)?;
        let mut last_rescan = Instant::now();
        let mut last_maintain = Instant::now();

        let changes = std::sync::Arc::new(std::sync::Mutex::new(changes));
        while !stop.load(Ordering::Relaxed) {
            let rx = changes.clone();
            let next = tokio::task::spawn_blocking(move || {
                rx.lock().map_err(|_| ()).and_then(|r| match r.recv_timeout(Duration::from_millis(250)) {
                    Ok(c) => Ok(Some(c)),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Ok(None),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(()),
                })
            })
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(|()| EngineError::Internal("the folder watcher stopped".into()))?;

            match next {
                Some(Change::Paths(paths)) => {
                    let keys: Vec<String> = paths.iter().map(|p| p.to_string_lossy().to_string()).collect();
                    // Durable first: a crash from here on leaves the paths queued for the next start.
                    self.db()?.enqueue(&keys)?;
                }
                Some(Change::Rescan { reason }) => {
                    on_event(WatchEvent::Rescan { reason });
                    let queued = self.db()?.queued(usize::MAX)?;
                    self.full_pass(on_event, &index_event).await;
                    self.db()?.dequeue(&queued)?;
                    last_rescan = Instant::now();
                }
                None => {}
            }
            let queued = self.db()?.queued(10_000)?;
            if !queued.is_empty() {
                on_event(WatchEvent::Changed { paths: queued.clone() });
                let scope = Scope::Paths(queued.iter().map(PathBuf::from).collect());
                match self.sync_locked(scope, &index_event).await {
                    Ok(report) => {
                        self.db()?.dequeue(&queued)?;
                        // Files caught mid-write go back in the queue for the next round.
                        if !report.retry.is_empty() {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            self.db()?.enqueue(&report.retry)?;
                        }
                        on_event(WatchEvent::Synced { report });
                    }
                    Err(e) => {
                        on_event(WatchEvent::SyncFailed { reason: e.to_string() });
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
            if opts.rescan_every.is_some_and(|every| last_rescan.elapsed() >= every) {
                // Folders registered meanwhile (by `cairn add` elsewhere) are watched from now on.
                if opts.events {
                    self.watch_folders(&mut watcher, on_event)?;
                }
                on_event(WatchEvent::Rescan { reason: "scheduled".into() });
                self.full_pass(on_event, &index_event).await;
                last_rescan = Instant::now();
            }
            if last_maintain.elapsed() >= opts.maintain_every {
                if let Ok(m) = self.maintain_store().await {
                    on_event(WatchEvent::Maintained {
                        versions_removed: m.versions_removed,
                        bytes_removed: m.bytes_removed,
                    });
                }
                match self.learn_if_due().await {
                    Ok(Some(report)) => on_event(WatchEvent::Learned { report }),
                    Ok(None) => {}
                    Err(e) => on_event(WatchEvent::LearnFailed { reason: e.to_string() }),
                }
                last_maintain = Instant::now();
            }
        }
        Ok(())
    }

    fn watch_folders(
        &self,
        watcher: &mut FolderWatcher,
        on_event: &(dyn Fn(WatchEvent) + Send + Sync),
    ) -> Result<(), EngineError> {
        let folders = self.db()?.folders()?;
        let mut watching = Vec::new();
        for f in &folders {
            match watcher.watch(std::path::Path::new(&f.path)) {
                Ok(()) => watching.push(f.path.clone()),
                Err(e) => on_event(WatchEvent::NotWatched { folder: f.path.clone(), reason: e.to_string() }),
            }
        }
        let registered: std::collections::HashSet<&str> = folders.iter().map(|f| f.path.as_str()).collect();
        let stale: Vec<PathBuf> =
            watcher.watched().filter(|p| !registered.contains(p.to_str().unwrap_or(""))).map(PathBuf::from).collect();
        for p in stale {
            watcher.unwatch(&p);
        }
        on_event(WatchEvent::Watching { folders: watching });
        Ok(())
    }

    async fn full_pass(
        &self,
        on_event: &(dyn Fn(WatchEvent) + Send + Sync),
        index_event: &(dyn Fn(IndexEvent) + Send + Sync),
    ) {
        match self.sync_locked(Scope::All, index_event).await {
            Ok(report) => on_event(WatchEvent::Synced { report }),
            Err(e) => on_event(WatchEvent::SyncFailed { reason: e.to_string() }),
        }
    }
}
