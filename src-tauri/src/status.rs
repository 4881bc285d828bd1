//! App-wide status, emitted as `cairn://status` events (see docs/app-api.md).

use crate::error::AppError;
use cairn_engine::{IndexEvent, IndexReport, WatchEvent};
use serde::Serialize;
use std::sync::Mutex;
use tauri::{AppHandle, Emitter};

pub const STATUS_EVENT: &str = "cairn://status";

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StatusEvent {
    /// An indexing pass (the watcher's or a re-index) is working on `folder`.
    Indexing {
        folder: String,
        done: usize,
        total: usize,
    },
    Watching {
        folders: Vec<String>,
    },
    /// A folder cannot be watched; the periodic rescan covers it.
    NotWatched {
        folder: String,
        reason: String,
    },
    /// A full rescan starts (reason: start, scheduled, lost events).
    Rescan {
        reason: String,
    },
    Synced {
        report: IndexReport,
    },
    BudgetWarning {
        message: String,
    },
    Error {
        code: String,
        message: String,
    },
    /// The watcher stopped (for a re-index, a folder removal, or because the app closes).
    WatchStopped,
    /// The window was closed: finishing the work in hand before exiting.
    Closing,
}

impl StatusEvent {
    pub fn error(e: &AppError) -> StatusEvent {
        StatusEvent::Error { code: e.code.clone(), message: e.message.clone() }
    }
}

/// Sends a status event to the UI; with `CAIRN_APP_TRACE` set, also prints it on stderr.
pub fn emit(app: &AppHandle, event: StatusEvent) {
    if std::env::var_os("CAIRN_APP_TRACE").is_some() {
        eprintln!("{STATUS_EVENT} {}", serde_json::to_string(&event).unwrap_or_default());
    }
    // Nobody listening (the window is gone) is not an error worth reporting.
    let _ = app.emit(STATUS_EVENT, event);
}

/// Turns a pass's per-file events into `indexing` counts: the folder being scanned, files
/// looked at so far, files planned.
#[derive(Debug, Default)]
pub struct Progress {
    state: Mutex<(String, usize, usize)>,
}

impl Progress {
    /// The status event this index event amounts to, if any.
    pub fn update(&self, e: &IndexEvent) -> Option<StatusEvent> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            IndexEvent::Scanning { folder } => {
                *s = (folder.clone(), 0, 0);
            }
            IndexEvent::Planned { to_check, .. } => {
                s.1 = 0;
                s.2 = *to_check;
            }
            IndexEvent::FileIndexed { .. }
            | IndexEvent::FileFailed { .. }
            | IndexEvent::FileSkipped { .. }
            | IndexEvent::FileChanging { .. } => {
                s.1 += 1;
                s.2 = s.2.max(s.1);
            }
            IndexEvent::FileUnchanged { .. } | IndexEvent::FileDeleted { .. } => {}
            IndexEvent::Finalizing => {
                s.1 = s.2;
            }
            IndexEvent::FolderUnreadable { folder, reason } => {
                return Some(StatusEvent::Error {
                    code: "io".into(),
                    message: format!("cannot read {folder}: {reason}"),
                });
            }
            _ => return None,
        }
        Some(StatusEvent::Indexing { folder: s.0.clone(), done: s.1, total: s.2 })
    }

    /// The status event a watch event amounts to, if any.
    pub fn watch_event(&self, e: WatchEvent) -> Option<StatusEvent> {
        match e {
            WatchEvent::Watching { folders } => Some(StatusEvent::Watching { folders }),
            WatchEvent::NotWatched { folder, reason } => Some(StatusEvent::NotWatched { folder, reason }),
            WatchEvent::Rescan { reason } => Some(StatusEvent::Rescan { reason }),
            WatchEvent::Index { progress } => self.update(&progress),
            WatchEvent::Synced { report } => Some(StatusEvent::Synced { report }),
            WatchEvent::SyncFailed { reason } => Some(StatusEvent::Error {
                code: "store".into(),
                message: format!("indexing failed (will retry): {}", crate::error::with_packaged_models_hint(reason)),
            }),
            WatchEvent::LearnFailed { reason } => Some(StatusEvent::Error {
                code: "store".into(),
                message: format!("retraining the ranker failed: {reason}"),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_files_of_the_planned_pass() {
        let p = Progress::default();
        p.update(&IndexEvent::Scanning { folder: "/docs".into() });
        let e = p.update(&IndexEvent::Planned { to_check: 2, unchanged: 5, deleted: 0 });
        assert!(matches!(e, Some(StatusEvent::Indexing { done: 0, total: 2, .. })));
        p.update(&IndexEvent::FileIndexed { path: "/docs/a.md".into(), chunks: 3 });
        let e = p.update(&IndexEvent::FileFailed { path: "/docs/b.pdf".into(), reason: "encrypted".into() });
        let v = serde_json::to_value(e).expect("serialises");
        assert_eq!(v, serde_json::json!({ "kind": "indexing", "folder": "/docs", "done": 2, "total": 2 }));
    }
}
