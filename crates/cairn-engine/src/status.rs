//! What is indexed, per folder, and every file that is not, with its reason.

use crate::{Engine, EngineError};
use cairn_db::FileStatus;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct FolderStatus {
    pub path: String,
    pub files: usize,
    pub indexed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Waiting to be (re)indexed: seen changed, or interrupted by a crash.
    pub pending: usize,
    pub chunks: u64,
    /// The ignore files in effect in this folder (`.gitignore`, `.cairnignore`).
    pub ignore_files: Vec<String>,
    /// False when the folder cannot be read right now (unmounted drive, permissions).
    pub readable: bool,
    /// Why its passages never go to a remote provider (the user's label or the policy), if so.
    pub local_only: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProblemFile {
    pub path: String,
    pub status: FileStatus,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub data_dir: String,
    /// The embedder whose table searches read.
    pub embedder: Option<String>,
    /// Set while every file is being embedded again with a newly chosen embedder; searches
    /// switch to it when that is complete.
    pub reembedding_into: Option<String>,
    pub folders: Vec<FolderStatus>,
    /// Failed and skipped files, and indexed files that came with warnings.
    pub problems: Vec<ProblemFile>,
    /// Rules that leave files out, in every folder: built in, and the user's own.
    pub default_excludes: Vec<String>,
    pub user_excludes: Vec<String>,
    /// Changed paths the watcher has queued and not yet looked at.
    pub queued_changes: usize,
}

impl Engine {
    /// Reads only SQLite: works before any model is installed.
    pub fn status(&self) -> Result<Status, EngineError> {
        let db = self.db()?;
        let mut folders = Vec::new();
        let mut problems = Vec::new();
        let rows = db.folders()?;
        for f in &rows {
            let files = db.files_in(f.id)?;
            let count = |s: FileStatus| files.iter().filter(|x| x.status == s).count();
            folders.push(FolderStatus {
                path: f.path.clone(),
                files: files.len(),
                indexed: count(FileStatus::Indexed),
                failed: count(FileStatus::Failed),
                skipped: count(FileStatus::Skipped),
                pending: count(FileStatus::Pending),
                chunks: files.iter().map(|x| u64::from(x.chunks)).sum(),
                readable: std::fs::read_dir(&f.path).is_ok(),
                ignore_files: ignore_files(std::path::Path::new(&f.path)),
                local_only: self.local_only_reason(&f.path, &rows),
            });
            for x in files {
                if let Some(reason) = x.reason {
                    problems.push(ProblemFile { path: x.path, status: x.status, reason });
                }
            }
        }
        Ok(Status {
            data_dir: self.config.data_dir.display().to_string(),
            embedder: db.setting("embedder")?,
            reembedding_into: db.setting("embedder_target")?,
            folders,
            problems,
            default_excludes: cairn_ingest::DEFAULT_EXCLUDES.iter().map(|s| (*s).to_owned()).collect(),
            user_excludes: db.setting("excludes")?.and_then(|r| serde_json::from_str(&r).ok()).unwrap_or_default(),
            queued_changes: db.queued(usize::MAX)?.len(),
        })
    }
}

/// Ignore files anywhere in the folder (stops after 50; hidden folders are not entered).
fn ignore_files(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(root).into_iter().filter_entry(|e| {
        e.depth() == 0 || !e.file_type().is_dir() || !e.file_name().to_string_lossy().starts_with('.')
    });
    for e in walker.flatten() {
        let name = e.file_name().to_string_lossy();
        if e.file_type().is_file() && cairn_ingest::IGNORE_FILES.contains(&name.as_ref()) {
            out.push(e.path().display().to_string());
            if out.len() >= 50 {
                break;
            }
        }
    }
    out
}
