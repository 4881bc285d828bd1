//! The engine: the one API both shells (the `cairn` CLI and the desktop app) call.
//!
//! It composes the leaf crates — scan, parse, chunk, embed, store, fuse, answer — and owns
//! the order of operations (new chunks before old ones go, state recorded per file). It
//! deliberately prints nothing and parses no command line: shells render its plain-data
//! results and progress events however they like.

mod answer;
mod check;
mod config;
mod error;
mod eval;
mod indexer;
mod status;
mod watch;

pub use answer::{Answer, AnswerMode, AskOptions, LlmChoice};
pub use cairn_db::FileStatus;
pub use cairn_llm::OpenAiConfig;
pub use check::Consistency;
pub use config::EngineConfig;
pub use error::EngineError;
pub use eval::{EvalReport, ModeScores};
pub use indexer::{IndexEvent, IndexReport, Scope};
pub use status::{FolderStatus, ProblemFile, Status};
pub use watch::{WatchEvent, WatchOptions};

use cairn_core::Hit;
use cairn_db::{Db, FolderRow};
use cairn_embed::{Embedder, LocalEmbedder, ModelFiles};
use cairn_retrieve::Fusion;
use cairn_store::Store;
use std::sync::{Arc, Mutex};

/// How many candidates each retriever contributes before fusion.
const CANDIDATES: usize = 100;

pub struct Engine {
    config: EngineConfig,
    db: Mutex<Db>,
    /// Loaded on first use: `add` and `status` work without any model on disk.
    embedder: tokio::sync::OnceCell<Arc<dyn Embedder>>,
    store: tokio::sync::OnceCell<Store>,
    fusion: Fusion,
    /// Files deleted from disk whose chunks are still being removed: never returned by search.
    retiring: Mutex<std::collections::HashSet<String>>,
}

/// How long old table versions are kept for readers in other processes before maintenance
/// deletes them.
const KEEP_VERSIONS_FOR: std::time::Duration = std::time::Duration::from_secs(10 * 60);

impl Engine {
    pub fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| EngineError::io(format!("creating data folder {}", config.data_dir.display()), e))?;
        let db = Db::open(&config.data_dir.join("cairn.db"))?;
        Ok(Engine {
            config,
            db: Mutex::new(db),
            embedder: tokio::sync::OnceCell::new(),
            store: tokio::sync::OnceCell::new(),
            fusion: Fusion::default(),
            retiring: Mutex::new(Default::default()),
        })
    }

    /// Uses `embedder` instead of loading the local model (tests, remote embedders).
    pub fn with_embedder(self, embedder: Arc<dyn Embedder>) -> Engine {
        let cell = tokio::sync::OnceCell::new();
        let _ = cell.set(embedder);
        Engine { embedder: cell, ..self }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub(crate) fn db(&self) -> Result<std::sync::MutexGuard<'_, Db>, EngineError> {
        self.db.lock().map_err(|_| EngineError::Internal("database lock poisoned by an earlier panic".into()))
    }

    pub(crate) async fn embedder(&self) -> Result<&Arc<dyn Embedder>, EngineError> {
        self.embedder
            .get_or_try_init(|| async {
                let files = ModelFiles::in_dir(&self.config.models_dir);
                let threads = self.config.embed_threads;
                let e = tokio::task::spawn_blocking(move || LocalEmbedder::load(&files, threads))
                    .await
                    .map_err(|e| EngineError::Internal(e.to_string()))??;
                Ok::<Arc<dyn Embedder>, EngineError>(Arc::new(e))
            })
            .await
    }

    pub(crate) async fn store(&self) -> Result<&Store, EngineError> {
        self.store
            .get_or_try_init(|| async {
                let e = self.embedder().await?;
                let store = Store::open(&self.config.data_dir.join("index"), e.id(), e.dimension()).await?;
                let db = self.db()?;
                // Another embedder's vectors live in another table and are never mixed with
                // these: every file is embedded again into this one (passages this model
                // embedded before, in an earlier switch, are reused).
                if db.setting("embedder")?.is_some_and(|prev| prev != e.id()) {
                    db.mark_all_pending()?;
                }
                db.set_setting("embedder", e.id())?;
                Ok::<Store, EngineError>(store)
            })
            .await
    }

    /// One writer per data folder, across processes: held for the length of an indexing pass.
    /// The lock is released when the returned file is dropped (or the process dies).
    pub(crate) fn writer_lock(&self) -> Result<std::fs::File, EngineError> {
        let path = self.config.data_dir.join("index.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| EngineError::io(format!("opening {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(EngineError::Busy(self.config.data_dir.display().to_string()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(EngineError::io(format!("locking {}", path.display()), e)),
        }
    }

    /// The user's exclude patterns (gitignore syntax), applied to every folder.
    pub fn excludes(&self) -> Result<Vec<String>, EngineError> {
        let raw = self.db()?.setting("excludes")?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()).unwrap_or_default())
    }

    /// Replaces the exclude patterns; a pattern that is not valid gitignore syntax is refused.
    pub fn set_excludes(&self, patterns: &[String]) -> Result<(), EngineError> {
        let opts = cairn_ingest::ScanOptions { excludes: patterns.to_vec(), ..Default::default() };
        if let Err(e) = cairn_ingest::scan(&std::env::temp_dir(), &opts)
            && matches!(e, cairn_ingest::ScanError::BadPattern { .. })
        {
            return Err(EngineError::InvalidInput(e.to_string()));
        }
        let json = serde_json::to_string(patterns).map_err(|e| EngineError::Internal(e.to_string()))?;
        self.db()?.set_setting("excludes", &json)?;
        Ok(())
    }

    /// Compacts the store and deletes old versions (the caller holds the writer lock).
    pub(crate) async fn maintain_store(&self) -> Result<cairn_store::Maintenance, EngineError> {
        let store = self.store().await?;
        Ok(store.maintain(KEEP_VERSIONS_FOR).await?)
    }

    /// Compacts the store now, deleting versions older than `keep_versions_for`; returns the
    /// store's size on disk before and after, in bytes.
    pub async fn compact(&self, keep_versions_for: std::time::Duration) -> Result<(u64, u64), EngineError> {
        let _lock = self.writer_lock()?;
        let dir = self.config.data_dir.join("index");
        let before = cairn_store::disk_usage(&dir);
        self.store().await?.maintain(keep_versions_for).await?;
        Ok((before, cairn_store::disk_usage(&dir)))
    }

    /// Registers a folder for indexing. The folder must exist and be readable, and must not
    /// overlap a registered folder (a file belongs to exactly one folder).
    pub fn add_folder(&self, path: &std::path::Path) -> Result<FolderRow, EngineError> {
        let canonical = std::fs::canonicalize(path)
            .map_err(|e| EngineError::InvalidInput(format!("cannot add {}: {e}", path.display())))?;
        if !canonical.is_dir() {
            return Err(EngineError::InvalidInput(format!("cannot add {}: not a folder", path.display())));
        }
        let text = canonical.to_str().ok_or_else(|| {
            EngineError::InvalidInput(format!("cannot add {}: path is not valid UTF-8", path.display()))
        })?;
        let db = self.db()?;
        for f in db.folders()? {
            let other = std::path::Path::new(&f.path);
            if other == canonical {
                return Ok(f);
            }
            if canonical.starts_with(other) {
                return Err(EngineError::InvalidInput(format!(
                    "cannot add {}: it is already indexed as part of {}",
                    path.display(),
                    f.path
                )));
            }
            if other.starts_with(&canonical) {
                return Err(EngineError::InvalidInput(format!(
                    "cannot add {}: it contains the registered folder {}; run `cairn remove {}` first",
                    path.display(),
                    f.path,
                    f.path
                )));
            }
        }
        Ok(db.add_folder(text)?)
    }

    /// Unregisters a folder and removes its chunks from the index. The folder may be gone
    /// from disk; the path is matched however it is spelled (relative, trailing slash, `//`).
    pub async fn remove_folder(&self, path: &std::path::Path) -> Result<usize, EngineError> {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| {
            let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            absolute.components().collect()
        });
        let key = canonical.to_string_lossy().to_string();
        let _lock = self.writer_lock()?;
        let files = self.db()?.remove_folder(&key)?;
        let Some(files) = files else {
            return Err(EngineError::InvalidInput(format!("{} is not a registered folder", path.display())));
        };
        let store = self.store().await?;
        for f in &files {
            store.delete_path_except(f, None).await?;
        }
        Ok(files.len())
    }

    /// Hybrid search: vector and full-text candidates fused by reciprocal rank.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<Hit>, EngineError> {
        let query = query.trim();
        if query.is_empty() {
            return Err(EngineError::InvalidInput("the query is empty".into()));
        }
        let embedder = self.embedder().await?.clone();
        let store = self.store().await?;
        if store.count().await? == 0 {
            return Err(EngineError::NotIndexed);
        }
        let q = query.to_owned();
        let vector = tokio::task::spawn_blocking(move || embedder.embed_query(&q))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        let (by_vector, by_text) = tokio::join!(
            store.vector_search(&vector, CANDIDATES.max(limit)),
            store.text_search(query, CANDIDATES.max(limit))
        );
        let retiring = self.retiring.lock().map(|r| r.clone()).unwrap_or_default();
        let keep = |c: &cairn_store::StoredChunk| !retiring.contains(&c.path);
        let by_vector: Vec<_> = by_vector?.into_iter().filter(keep).collect();
        let by_text: Vec<_> = by_text?.into_iter().filter(keep).collect();
        Ok(cairn_retrieve::fuse(&by_vector, &by_text, self.fusion, limit))
    }
}
