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
    pub chunks: u64,
    /// False when the folder cannot be read right now (unmounted drive, permissions).
    pub readable: bool,
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
    pub embedder: Option<String>,
    pub folders: Vec<FolderStatus>,
    /// Failed and skipped files, and indexed files that came with warnings.
    pub problems: Vec<ProblemFile>,
}

impl Engine {
    /// Reads only SQLite: works before any model is installed.
    pub fn status(&self) -> Result<Status, EngineError> {
        let db = self.db()?;
        let mut folders = Vec::new();
        let mut problems = Vec::new();
        for f in db.folders()? {
            let files = db.files_in(f.id)?;
            let count = |s: FileStatus| files.iter().filter(|x| x.status == s).count();
            folders.push(FolderStatus {
                path: f.path.clone(),
                files: files.len(),
                indexed: count(FileStatus::Indexed),
                failed: count(FileStatus::Failed),
                skipped: count(FileStatus::Skipped),
                chunks: files.iter().map(|x| u64::from(x.chunks)).sum(),
                readable: std::fs::read_dir(&f.path).is_ok(),
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
            folders,
            problems,
        })
    }
}
