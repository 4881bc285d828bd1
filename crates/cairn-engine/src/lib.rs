//! The engine: the one API both shells (the `cairn` CLI and the desktop app) call.
//!
//! It composes the leaf crates — scan, parse, chunk, embed, store, fuse, answer — and owns
//! the order of operations (new chunks before old ones go, state recorded per file). It
//! deliberately prints nothing and parses no command line: shells render its plain-data
//! results and progress events however they like.

mod answer;
mod check;
mod confidence;
mod config;
mod containment;
mod costs;
mod error;
mod eval;
mod governance;
mod indexer;
mod keys;
mod learn;
mod providers;
mod review;
mod settings;
mod status;
mod watch;

pub use answer::{ANSWER_PROMPT, Answer, AnswerMode, AskOptions, LlmChoice};
pub use cairn_db::FileStatus;
pub use cairn_db::Signal;
pub use cairn_db::{CallKind, CallRecord, CallRow, ConversationRow, Outcome, TurnRow};
pub use cairn_ledger::{Money, Window as BudgetWindow};
pub use cairn_policy::Policy;
pub use cairn_prompts::{Prompt, Prompts};
pub use cairn_rank::{FEATURE_NAMES, FeedbackMetrics};
pub use check::Consistency;
pub use confidence::{ABSTAIN_TEXT, Confidence, RetrievalSignals};
pub use config::EngineConfig;
pub use costs::{BudgetGauge, BudgetStatus, CostLine, CostQuery, CostReport, GroupBy};
pub use error::EngineError;
pub use eval::{
    AbstentionPoint, AnswerEvalReport, ClaimResult, Comparison, EvalReport, GoldenQuestion, GoldenReport,
    LearningPoint, LearningReport, ModeScores,
};
pub use governance::{PolicyCheck, ProviderVerdict};
pub use indexer::{IndexEvent, IndexReport, Scope};
pub use keys::{KeyChange, KeyReport, KeySource, KeyStatus, KeyringEntry, KeyringInfo};
pub use learn::{FeedbackReceipt, LearnReport, Ranked, RankerInfo, RankerMetrics, SearchRecord};
pub use providers::ProviderCheck;
pub use providers::{Billing, DEFAULT_GGUF, ENV_PROVIDER};
pub use review::{Resolution, Review, ReviewStatus, Verdict};
pub use settings::{
    AnswerSettings, BudgetSettings, ChatSettings, EmbeddingSettings, LOCAL, LearningSettings, LocalOnlySources,
    LocalSettings, OpenSettings, PriceSetting, PrivacySettings, ProviderBudget, ProviderKind, ProviderPrice,
    ProviderSettings, Settings,
};
pub use status::{FolderStatus, ProblemFile, Status};
pub use watch::{WatchEvent, WatchOptions};

use cairn_core::Hit;
use cairn_db::{Db, FolderRow};
use cairn_embed::{Embedder, LocalEmbedder, ModelFiles};
use cairn_retrieve::Fusion;
use cairn_store::Store;
use std::sync::{Arc, Mutex};

/// An embedder and the table of its vectors.
type Reader = (Arc<dyn Embedder>, Arc<Store>);

/// How many candidates each retriever contributes before fusion.
pub(crate) const CANDIDATES: usize = 100;

pub struct Engine {
    config: EngineConfig,
    db: Mutex<Db>,
    /// The configured embedder, loaded on first use: `add` and `status` work without any model
    /// on disk. New passages are always embedded with it, into its own table.
    embedder: tokio::sync::OnceCell<Arc<dyn Embedder>>,
    /// The configured embedder's table.
    store: tokio::sync::OnceCell<Arc<Store>>,
    /// While the index is being re-embedded for a newly chosen embedder, searches keep reading
    /// the previous, complete table with the previous model: loaded on first search.
    previous: tokio::sync::Mutex<Option<Reader>>,
    /// Embedders handed in by the caller besides the configured one (tests, remote models):
    /// candidates for reading the previous table during a switch.
    known_embedders: Vec<Arc<dyn Embedder>>,
    fusion: Fusion,
    /// Files deleted from disk whose chunks are still being removed: never returned by search.
    retiring: Mutex<std::collections::HashSet<String>>,
    /// The administrator's policy, read when the engine opens.
    policy: cairn_policy::Policy,
    /// Its locks Cairn cannot apply (worked out once: the policy never changes while open).
    policy_defects: Vec<governance::LockDefect>,
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
            previous: tokio::sync::Mutex::new(None),
            known_embedders: Vec::new(),
            fusion: Fusion::default(),
            retiring: Mutex::new(Default::default()),
            policy_defects: Vec::new(),
            policy: cairn_policy::Policy::none(),
        }
        .with_policy(cairn_policy::Policy::load()))
    }

    /// Uses `policy` instead of the one at the system location (tests, `cairn policy check`).
    pub fn with_policy(self, policy: cairn_policy::Policy) -> Engine {
        let policy_defects = governance::lock_defects(&policy);
        Engine { policy, policy_defects, ..self }
    }

    pub fn policy(&self) -> &cairn_policy::Policy {
        &self.policy
    }

    /// Uses `embedder` instead of loading the local model (tests, remote embedders).
    pub fn with_embedder(self, embedder: Arc<dyn Embedder>) -> Engine {
        let cell = tokio::sync::OnceCell::new();
        let _ = cell.set(embedder);
        Engine { embedder: cell, ..self }
    }

    /// Makes `embedder` available for reading its table while the index moves to the configured
    /// one (the local model is always available).
    pub fn with_known_embedder(mut self, embedder: Arc<dyn Embedder>) -> Engine {
        self.known_embedders.push(embedder);
        self
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub(crate) fn db(&self) -> Result<std::sync::MutexGuard<'_, Db>, EngineError> {
        self.db.lock().map_err(|_| EngineError::Internal("database lock poisoned by an earlier panic".into()))
    }

    /// The embedder settings choose: the local MiniLM, or a provider's embedding model
    /// (`[embeddings] provider`), whose dimension is learnt with one request.
    pub(crate) async fn embedder(&self) -> Result<&Arc<dyn Embedder>, EngineError> {
        self.embedder
            .get_or_try_init(|| async {
                let settings = self.settings()?;
                if let Some(p) = settings.provider(&settings.embeddings.provider) {
                    self.check_embedding_provider(p)?;
                    self.check_remote_embedding(&p.name)?;
                    let cfg = self.remote_embed_config(p)?;
                    let e = tokio::task::spawn_blocking(move || cairn_embed::OpenAiEmbedder::connect(cfg))
                        .await
                        .map_err(|e| EngineError::Internal(e.to_string()))??;
                    return Ok::<Arc<dyn Embedder>, EngineError>(Arc::new(e));
                }
                let files = ModelFiles::in_dir(&self.config.models_dir);
                let threads = self.config.embed_threads;
                let e = tokio::task::spawn_blocking(move || LocalEmbedder::load(&files, threads))
                    .await
                    .map_err(|e| EngineError::Internal(e.to_string()))??;
                Ok::<Arc<dyn Embedder>, EngineError>(Arc::new(e))
            })
            .await
    }

    fn remote_embed_config(&self, p: &ProviderSettings) -> Result<cairn_embed::OpenAiEmbedConfig, EngineError> {
        let model = p
            .embedding_model
            .clone()
            .ok_or_else(|| EngineError::InvalidInput(format!("provider `{}` has no embedding_model", p.name)))?;
        let mut cfg = cairn_embed::OpenAiEmbedConfig::new(p.base_url(), model);
        cfg.api_key = providers::api_key(p)?.key;
        Ok(cfg)
    }

    /// The configured embedder's table, where every pass writes.
    ///
    /// Switching embedders: another embedder's vectors live in another table and are never
    /// mixed with these. The setting `embedder` names the *active* table, the one searches read;
    /// when the configured embedder differs, it is recorded as `embedder_target` and every file
    /// is marked pending once, so the next full pass embeds it again into the new table
    /// (reusing passages this model embedded in an earlier switch). Searches keep reading the
    /// active table until that pass completes; then `finish_embedder_switch` flips the setting.
    pub(crate) async fn store(&self) -> Result<&Arc<Store>, EngineError> {
        self.store
            .get_or_try_init(|| async {
                let e = self.embedder().await?;
                let store = Store::open(&self.config.data_dir.join("index"), e.id(), e.dimension()).await?;
                let db = self.db()?;
                match db.setting("embedder")? {
                    None => db.set_setting("embedder", e.id())?,
                    Some(active) if active == e.id() => db.delete_setting("embedder_target")?,
                    Some(_) => {
                        if db.setting("embedder_target")?.as_deref() != Some(e.id()) {
                            db.mark_all_pending()?;
                            db.set_setting("embedder_target", e.id())?;
                        }
                    }
                }
                Ok::<Arc<Store>, EngineError>(Arc::new(store))
            })
            .await
    }

    /// The embedder and table searches read: the active one, which is the configured one except
    /// while a switch of embedder is in progress. `true` when that is the previous table.
    pub(crate) async fn reader(&self) -> Result<(Arc<dyn Embedder>, Arc<Store>, bool), EngineError> {
        let embedder = self.embedder().await?.clone();
        let store = self.store().await?.clone();
        let active = self.db()?.setting("embedder")?;
        let Some(active) = active.filter(|a| a != embedder.id()) else {
            return Ok((embedder, store, false));
        };
        let mut previous = self.previous.lock().await;
        if let Some((e, s)) = previous.as_ref()
            && e.id() == active
        {
            return Ok((e.clone(), s.clone(), true));
        }
        let Some(old) = self.embedder_for(&active).await else {
            // The previous model is gone: read the new table, complete or not.
            return Ok((embedder, store, false));
        };
        let old_store = Arc::new(Store::open(&self.config.data_dir.join("index"), old.id(), old.dimension()).await?);
        *previous = Some((old.clone(), old_store.clone()));
        Ok((old, old_store, true))
    }

    /// An embedder whose id is `id`: one handed in, a configured provider's, or the local model
    /// when it is that one.
    async fn embedder_for(&self, id: &str) -> Option<Arc<dyn Embedder>> {
        if let Some(e) = self.known_embedders.iter().find(|e| e.id() == id) {
            return Some(e.clone());
        }
        let settings = self.settings().ok()?;
        for p in settings.providers.iter().filter(|p| p.embedding_model.is_some()) {
            let cfg = self.remote_embed_config(p).ok()?;
            if cairn_embed::OpenAiEmbedder::new(cfg.clone()).id() == id {
                let e =
                    tokio::task::spawn_blocking(move || cairn_embed::OpenAiEmbedder::connect(cfg)).await.ok()?.ok()?;
                return Some(Arc::new(e));
            }
        }
        let files = ModelFiles::in_dir(&self.config.models_dir);
        let threads = self.config.embed_threads;
        let local = tokio::task::spawn_blocking(move || LocalEmbedder::load(&files, threads)).await.ok()?.ok()?;
        (local.id() == id).then(|| Arc::new(local) as Arc<dyn Embedder>)
    }

    /// After a complete full pass: if the index was moving to another embedder and no file is
    /// left pending, searches switch to the new table in one step. Returns the new embedder id.
    pub(crate) async fn finish_embedder_switch(&self) -> Result<Option<String>, EngineError> {
        let target = {
            let db = self.db()?;
            let Some(target) = db.setting("embedder_target")? else { return Ok(None) };
            if db.pending_count()? > 0 {
                return Ok(None);
            }
            db.set_setting("embedder", &target)?;
            db.delete_setting("embedder_target")?;
            target
        };
        *self.previous.lock().await = None;
        Ok(Some(target))
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

    /// The query's vector: from the query-vector cache when this exact query was embedded by
    /// this model before, else from the model. Either way a ledger row says which.
    async fn query_vector(
        &self,
        embedder: &Arc<dyn Embedder>,
        query: &str,
        question_id: Option<i64>,
    ) -> Result<Vec<f32>, EngineError> {
        let started = std::time::Instant::now();
        let cached = self.db()?.query_vector(embedder.id(), query)?.filter(|v| v.len() == embedder.dimension());
        let hit = cached.is_some();
        let vector = match cached {
            Some(v) => v,
            None => {
                let (e, q) = (embedder.clone(), query.to_owned());
                let v = tokio::task::spawn_blocking(move || e.embed_query(&q))
                    .await
                    .map_err(|e| EngineError::Internal(e.to_string()))??;
                self.db()?.put_query_vector(embedder.id(), query, &v)?;
                v
            }
        };
        let tokens = embedder.token_counter().count(query) as u64;
        let (provider, billing) = self.embed_billing();
        let cost = billing.cost(&cairn_ledger::Usage { input: tokens, cached: 0, output: 0 });
        self.record_call(&cairn_db::CallRecord {
            question_id,
            at_ms: cairn_db::now_ms(),
            kind: cairn_db::CallKind::EmbedQuery,
            provider,
            model: embedder.id().to_owned(),
            prompt: None,
            prompt_hash: None,
            input_tokens: if hit { 0 } else { tokens },
            cached_tokens: 0,
            output_tokens: 0,
            estimated: false,
            latency_ms: started.elapsed().as_millis() as u64,
            first_token_ms: None,
            cost_nanos: Some(if hit { 0 } else { cost.map(Money::nanos).unwrap_or(0) }),
            estimate_nanos: None,
            cache_hit: hit,
            saved_nanos: if hit { cost.map(Money::nanos).unwrap_or(0) } else { 0 },
            outcome: cairn_db::Outcome::Ok,
            error_code: None,
            folder: None,
            attempts: u32::from(!hit),
        })?;
        Ok(vector)
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
        let key = folder_key(path);
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
        Ok(self.search_for(query, limit, None).await?.hits)
    }

    /// Search on behalf of a question (its query embedding is recorded under it).
    pub(crate) async fn search_for(
        &self,
        query: &str,
        limit: usize,
        question_id: Option<i64>,
    ) -> Result<learn::Ranked, EngineError> {
        let query = query.trim();
        if query.is_empty() {
            return Err(EngineError::InvalidInput("the query is empty".into()));
        }
        let (embedder, store, previous) = self.reader().await?;
        if store.count().await? == 0 {
            return Err(EngineError::NotIndexed);
        }
        let vector = self.query_vector(&embedder, query, question_id).await?;
        let (by_vector, by_text) = tokio::join!(
            store.vector_search(&vector, CANDIDATES.max(limit)),
            store.text_search(query, CANDIDATES.max(limit))
        );
        let retiring = self.retiring.lock().map(|r| r.clone()).unwrap_or_default();
        // The previous table is not updated during a switch: files deleted since are dropped.
        let known: Option<std::collections::HashSet<String>> = match previous {
            true => Some(self.db()?.all_paths()?.into_iter().collect()),
            false => None,
        };
        let keep = |c: &cairn_store::StoredChunk| {
            !retiring.contains(&c.path) && known.as_ref().is_none_or(|k| k.contains(&c.path))
        };
        let by_vector: Vec<_> = by_vector?.into_iter().filter(keep).collect();
        let by_text: Vec<_> = by_text?.into_iter().filter(keep).collect();
        // Every candidate goes to the ranker, which keeps `limit`.
        let fused = cairn_retrieve::fuse(&by_vector, &by_text, self.fusion, usize::MAX);
        self.rank_and_record(query, &vector, embedder.id(), fused, limit, question_id)
    }
}

/// An error code as the ledger and `--json` output spell it (`rate_limited`).
/// A registered folder's key however it is spelled (relative, trailing slash, `//`), even when
/// it is gone from disk.
pub(crate) fn folder_key(path: &std::path::Path) -> String {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        absolute.components().collect()
    });
    canonical.to_string_lossy().to_string()
}

pub(crate) fn code_str(code: cairn_core::ErrorCode) -> String {
    serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
