//! `cairn check`: does the store agree with the database, and the database with the disk?
//! The crash trials count their lost, duplicate and orphaned chunks with it.

use crate::{Engine, EngineError};
use cairn_db::FileStatus;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Consistency {
    pub files_indexed: usize,
    pub files_pending: usize,
    pub chunks: usize,
    /// Indexed files with fewer chunks in the store than recorded.
    pub lost: Vec<String>,
    /// Chunks beyond the recorded count: a second copy of a version, or a stale old version
    /// next to the current one.
    pub duplicate_chunks: usize,
    /// Chunks whose file the database does not know.
    pub orphaned_chunks: usize,
    /// Files whose content on disk differs from what is indexed (only with `disk`).
    pub stale: Vec<String>,
}

impl Consistency {
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty() && self.duplicate_chunks == 0 && self.orphaned_chunks == 0 && self.stale.is_empty()
    }
}

impl Engine {
    /// Compares the store with the recorded file states; with `disk`, also re-hashes every
    /// indexed file to find ones that changed without being re-indexed.
    pub async fn check(&self, disk: bool) -> Result<Consistency, EngineError> {
        let store = self.store().await?;
        let files = self.db()?.all_files()?;
        let mut out = Consistency::default();
        let mut stored: HashMap<String, Vec<(String, usize)>> = HashMap::new();
        for (path, hash, n) in store.versions().await? {
            out.chunks += n;
            stored.entry(path).or_default().push((hash, n));
        }
        out.duplicate_chunks += store.duplicate_ids().await?;
        for f in &files {
            let versions = stored.remove(&f.path).unwrap_or_default();
            match f.status {
                FileStatus::Indexed => {
                    out.files_indexed += 1;
                    let current = versions.iter().find(|(h, _)| *h == f.hash).map(|(_, n)| *n).unwrap_or(0);
                    if current < f.chunks as usize {
                        out.lost.push(f.path.clone());
                    }
                    out.duplicate_chunks += current.saturating_sub(f.chunks as usize);
                    out.duplicate_chunks +=
                        versions.iter().filter(|(h, _)| *h != f.hash).map(|(_, n)| n).sum::<usize>();
                    if disk {
                        let now = std::fs::read(&f.path).map(|b| cairn_ingest::hash_bytes(&b)).unwrap_or_default();
                        if now != f.hash {
                            out.stale.push(f.path.clone());
                        }
                    }
                }
                // Work in progress: its old version (if any) may still be there, nothing to count.
                FileStatus::Pending => out.files_pending += 1,
                FileStatus::Failed | FileStatus::Skipped => {
                    out.duplicate_chunks += versions.iter().map(|(_, n)| n).sum::<usize>();
                }
            }
        }
        out.orphaned_chunks = stored
            .iter()
            .filter(|(p, _)| std::path::Path::new(p).is_absolute())
            .flat_map(|(_, v)| v.iter().map(|(_, n)| n))
            .sum();
        Ok(out)
    }
}
