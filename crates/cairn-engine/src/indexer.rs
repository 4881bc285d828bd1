//! Indexing registered folders: scan, decide what changed, parse and chunk on one thread while
//! embedding on another, write new chunks before removing old ones, record each file's state.

use crate::{Engine, EngineError};
use cairn_core::{ChunkDraft, Document, Format};
use cairn_db::{FileRow, FileStatus};
use cairn_embed::Embedder;
use cairn_parse::{ChunkOptions, ParseLimits};
use cairn_store::ChunkRow;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

/// Chunks embedded per call to the model.
const EMBED_BATCH: usize = 64;
/// Chunks collected before a write to the store: fewer, larger commits keep LanceDB compact.
const WRITE_BATCH: usize = 512;

/// Progress of one indexing pass, for progress bars and logs.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum IndexEvent {
    Scanning {
        folder: String,
    },
    FolderUnreadable {
        folder: String,
        reason: String,
    },
    /// The work is known: `to_check` files will be read (new, changed or previously failed).
    Planned {
        to_check: usize,
        unchanged: usize,
        deleted: usize,
    },
    FileIndexed {
        path: String,
        chunks: u32,
    },
    FileUnchanged {
        path: String,
    },
    FileFailed {
        path: String,
        reason: String,
    },
    FileSkipped {
        path: String,
        reason: String,
    },
    /// The file changed while it was being read (a copy still in progress): left pending and
    /// looked at again later, never indexed half-written.
    FileChanging {
        path: String,
    },
    FileDeleted {
        path: String,
    },
    /// Every file is now in the newly chosen embedder's table, and searches read it.
    EmbedderSwitched {
        embedder: String,
    },
    /// Cumulative chunks embedded in this pass.
    Embedded {
        chunks: usize,
    },
    Finalizing,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct IndexReport {
    pub files_seen: usize,
    pub indexed: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub skipped: usize,
    pub deleted: usize,
    pub chunks_written: usize,
    /// Passages run through the embedding model in this pass (0 when nothing changed).
    pub chunks_embedded: usize,
    /// Passages whose vector was reused (same text already embedded, or the same file content
    /// under another name) instead of being computed again.
    pub chunks_reused: usize,
    /// Chunks found in the store with no file behind them (left by a crash) and removed.
    pub orphans_removed: usize,
    /// Files that were changing while read; the watcher looks at them again.
    pub retry: Vec<String>,
    /// Entries left out by ignore rules (hidden files, ignore files, excludes).
    pub ignored: usize,
    pub unreadable_folders: Vec<(String, String)>,
    /// Set when this pass completed a switch to another embedder: searches now read its table.
    pub switched_embedder: Option<String>,
    pub seconds: f64,
}

struct WorkItem {
    path: PathBuf,
    key: String,
    folder_id: i64,
    size: u64,
    mtime_ns: i64,
    known: Option<FileRow>,
}

impl WorkItem {
    /// The state to record for this file after this pass.
    fn row(&self, hash: String, status: FileStatus, reason: Option<String>, chunks: u32) -> FileRow {
        FileRow {
            path: self.key.clone(),
            folder_id: self.folder_id,
            size: self.size,
            mtime_ns: self.mtime_ns,
            hash,
            status,
            reason,
            chunks,
        }
    }
}

enum Parsed {
    Chunks { item: WorkItem, hash: String, drafts: Vec<ChunkDraft>, warnings: Vec<String> },
    Same { item: WorkItem, hash: String },
    Failed { item: WorkItem, hash: String, reason: String },
    Skipped { item: WorkItem, hash: String, reason: String },
    Changing { item: WorkItem },
}

/// What a pass will do: files to read, files that are gone. `verify`: read files whose size and
/// mtime match the records too (the watcher said they changed).
struct Plan {
    work: Vec<WorkItem>,
    gone: Vec<String>,
    verify: bool,
}

/// What an indexing pass covers: every registered folder, or only some paths inside them
/// (files or folders; a path that no longer exists means it was deleted or moved away).
#[derive(Clone, Debug)]
pub enum Scope {
    All,
    Paths(Vec<PathBuf>),
}

/// A document ready to be embedded and written: the unit the store batch is built from.
pub(crate) struct Pending {
    pub key: String,
    pub hash: String,
    pub drafts: Vec<ChunkDraft>,
    /// What to record in SQLite once the chunks are safely in the store (None for eval docs).
    pub row: Option<FileRow>,
}

pub(crate) fn chunk_id(key: &str, hash: &str, ordinal: u32) -> String {
    let mut h = blake3::Hasher::new();
    h.update(key.as_bytes());
    h.update(&[0]);
    h.update(hash.as_bytes());
    h.update(&ordinal.to_le_bytes());
    h.finalize().to_hex()[..32].to_owned()
}

/// Parses and chunks one document with the embedder's own token counter.
pub(crate) fn chunk_document(mut doc: Document, fallback_title: &str, embedder: &dyn Embedder) -> Vec<ChunkDraft> {
    if doc.title.as_deref().map(str::trim).unwrap_or("").is_empty() {
        doc.title = Some(fallback_title.to_owned());
    }
    cairn_parse::chunk(&doc, embedder.token_counter(), &ChunkOptions::default())
}

/// Files without an extension (README, COPYING, NEWS) are read as text when their first 8 KB
/// are UTF-8 without NUL bytes; anything else without a known extension is skipped.
fn looks_like_text(path: &std::path::Path, bytes: &[u8]) -> bool {
    if path.extension().is_some() || bytes.is_empty() {
        return false;
    }
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        // A multi-byte character cut by the 8 KB window is fine; a bad byte is not.
        Err(e) => e.error_len().is_none(),
    }
}

fn parse_one(mut item: WorkItem, embedder: &dyn Embedder, limits: &ParseLimits) -> Parsed {
    let stat = |p: &std::path::Path| std::fs::metadata(p).map(|m| (m.len(), cairn_ingest::mtime_ns(&m)));
    let before = stat(&item.path);
    let bytes = match std::fs::read(&item.path) {
        Ok(b) => b,
        Err(e) => {
            return Parsed::Failed { item, hash: String::new(), reason: format!("cannot read: {e}") };
        }
    };
    // A file still being written (a large copy, a download) is not indexed half-done.
    match (before, stat(&item.path)) {
        (Ok(a), Ok(b)) if a == b && a.0 == bytes.len() as u64 => {
            (item.size, item.mtime_ns) = a;
        }
        _ => return Parsed::Changing { item },
    }
    let hash = cairn_ingest::hash_bytes(&bytes);
    if let Some(k) = &item.known
        && k.hash == hash
        && k.status == FileStatus::Indexed
    {
        return Parsed::Same { item, hash };
    }
    let format = cairn_parse::format_for_path(&item.path)
        .or_else(|| looks_like_text(&item.path, &bytes).then_some(Format::Text));
    let Some(format) = format else {
        let ext =
            item.path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_else(|| "no extension".into());
        return Parsed::Skipped { item, hash, reason: format!("unsupported file type ({ext})") };
    };
    let doc = match cairn_parse::parse_bounded(format, bytes, limits) {
        Ok(d) => d,
        // An empty file is nothing to index, not a failure.
        Err(e) if e.code() == "empty" => {
            return Parsed::Skipped { item, hash, reason: e.to_string() };
        }
        Err(e) => {
            return Parsed::Failed { item, hash, reason: e.to_string() };
        }
    };
    if doc.is_empty() {
        return Parsed::Skipped { item, hash, reason: "no text found".into() };
    }
    let warnings = doc.warnings.clone();
    let title = item.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let drafts = chunk_document(doc, &title, embedder);
    if drafts.is_empty() {
        return Parsed::Skipped { item, hash, reason: "no text found".into() };
    }
    Parsed::Chunks { item, hash, drafts, warnings }
}

impl Engine {
    /// Brings the index up to date with every registered folder.
    pub async fn index(&self, on_event: &(dyn Fn(IndexEvent) + Send + Sync)) -> Result<IndexReport, EngineError> {
        self.sync(Scope::All, on_event).await
    }

    /// Brings the index up to date for `scope`, taking the writer lock for the pass.
    pub async fn sync(
        &self,
        scope: Scope,
        on_event: &(dyn Fn(IndexEvent) + Send + Sync),
    ) -> Result<IndexReport, EngineError> {
        let _lock = self.writer_lock()?;
        self.sync_locked(scope, on_event).await
    }

    /// Scan options from the user's settings (exclude patterns).
    pub(crate) fn scan_options(&self) -> Result<cairn_ingest::ScanOptions, EngineError> {
        Ok(cairn_ingest::ScanOptions { excludes: self.excludes()?, ..Default::default() })
    }

    /// Finds what changed under `start` (inside `folder`), records it as pending, and adds the
    /// work and the deletions to the plan. An unreadable folder plans nothing.
    fn plan(
        &self,
        folder: &cairn_db::FolderRow,
        start: &std::path::Path,
        opts: &cairn_ingest::ScanOptions,
        report: &mut IndexReport,
        plan: &mut Plan,
        on_event: &(dyn Fn(IndexEvent) + Send + Sync),
    ) -> Result<(), EngineError> {
        let Plan { work, gone, verify } = plan;
        let root = PathBuf::from(&folder.path);
        if start == root {
            on_event(IndexEvent::Scanning { folder: folder.path.clone() });
        }
        let scan = match tokio::task::block_in_place(|| cairn_ingest::scan_within(&root, start, opts)) {
            Ok(s) => s,
            Err(e @ cairn_ingest::ScanError::BadPattern { .. }) => {
                return Err(EngineError::InvalidInput(e.to_string()));
            }
            Err(e) => {
                // Never treat an unreadable folder as empty: its index entries stay.
                let reason = e.to_string();
                on_event(IndexEvent::FolderUnreadable { folder: folder.path.clone(), reason: reason.clone() });
                report.unreadable_folders.push((folder.path.clone(), reason));
                return Ok(());
            }
        };
        report.ignored += scan.ignored;
        let start_key = start.to_string_lossy().to_string();
        let known_rows =
            if start == root { self.db()?.files_in(folder.id)? } else { self.db()?.files_under(&start_key)? };
        let known: HashMap<String, FileRow> = known_rows.into_iter().map(|f| (f.path.clone(), f)).collect();
        let mut present = HashSet::new();
        let mut db = self.db()?;
        db.in_transaction(|db| {
            for (path, reason) in &scan.problems {
                let key = path.to_string_lossy().to_string();
                present.insert(key.clone());
                on_event(IndexEvent::FileSkipped { path: key.clone(), reason: reason.clone() });
                report.skipped += 1;
                db.put_file(&FileRow {
                    path: key,
                    folder_id: folder.id,
                    size: 0,
                    mtime_ns: 0,
                    hash: String::new(),
                    status: FileStatus::Skipped,
                    reason: Some(reason.clone()),
                    chunks: 0,
                })?;
            }
            for f in &scan.files {
                let Some(key) = f.path.to_str().map(str::to_owned) else {
                    let shown = f.path.to_string_lossy().to_string();
                    on_event(IndexEvent::FileSkipped { path: shown, reason: "file name is not valid UTF-8".into() });
                    report.skipped += 1;
                    continue;
                };
                report.files_seen += 1;
                present.insert(key.clone());
                let prior = known.get(&key).cloned();
                let unchanged = prior.as_ref().is_some_and(|k| {
                    k.size == f.size
                        && k.mtime_ns == f.mtime_ns
                        && matches!(k.status, FileStatus::Indexed | FileStatus::Skipped)
                });
                if unchanged && !*verify {
                    report.unchanged += 1;
                    continue;
                }
                if unchanged {
                    // The watcher saw this path change, yet size and mtime match (a same-size
                    // rewrite with the time restored, `cp -p`): read and hash it to be sure.
                    // Still indexed meanwhile, so not marked pending.
                    work.push(WorkItem {
                        path: f.path.clone(),
                        key,
                        folder_id: folder.id,
                        size: f.size,
                        mtime_ns: f.mtime_ns,
                        known: prior,
                    });
                    continue;
                }
                // Recorded before any work starts: a crash or kill from here on leaves the file
                // pending, and the next pass picks it up again.
                match &prior {
                    Some(_) => db.mark_pending(&key)?,
                    None => db.put_file(&FileRow {
                        path: key.clone(),
                        folder_id: folder.id,
                        size: 0,
                        mtime_ns: 0,
                        hash: String::new(),
                        status: FileStatus::Pending,
                        reason: None,
                        chunks: 0,
                    })?,
                }
                work.push(WorkItem {
                    path: f.path.clone(),
                    key,
                    folder_id: folder.id,
                    size: f.size,
                    mtime_ns: f.mtime_ns,
                    known: prior,
                });
            }
            for k in known.keys().filter(|k| !present.contains(*k)) {
                db.delete_file(k)?;
                gone.push(k.clone());
            }
            Ok(())
        })?;
        Ok(())
    }

    /// The pass itself; the caller holds the writer lock.
    pub(crate) async fn sync_locked(
        &self,
        scope: Scope,
        on_event: &(dyn Fn(IndexEvent) + Send + Sync),
    ) -> Result<IndexReport, EngineError> {
        let started = Instant::now();
        let embedder = self.embedder().await?.clone();
        let store = self.store().await?;
        let mut report = IndexReport::default();
        let opts = self.scan_options()?;

        // 1. Scan and decide what to look at.
        let folders = self.db()?.folders()?;
        let mut plan = Plan { work: Vec::new(), gone: Vec::new(), verify: matches!(scope, Scope::Paths(_)) };
        match &scope {
            Scope::All => {
                report.orphans_removed = self.sweep_orphans(store).await?;
                for folder in &folders {
                    self.plan(folder, std::path::Path::new(&folder.path), &opts, &mut report, &mut plan, on_event)?;
                }
            }
            Scope::Paths(paths) => {
                let mut paths: Vec<PathBuf> = paths.clone();
                paths.sort();
                paths.dedup();
                // A path inside another listed path is covered by it.
                let mut covered: Vec<PathBuf> = Vec::new();
                for p in paths {
                    if covered.iter().any(|c| p.starts_with(c)) {
                        continue;
                    }
                    covered.push(p);
                }
                for p in &covered {
                    for folder in &folders {
                        let root = std::path::Path::new(&folder.path);
                        if p.starts_with(root) {
                            self.plan(folder, p, &opts, &mut report, &mut plan, on_event)?;
                        } else if root.starts_with(p) {
                            self.plan(folder, root, &opts, &mut report, &mut plan, on_event)?;
                        }
                    }
                }
            }
        }
        let Plan { work, gone, .. } = plan;
        on_event(IndexEvent::Planned { to_check: work.len(), unchanged: report.unchanged, deleted: gone.len() });

        // 2. Deleted files stop answering at once. Their chunks stay in the store until the new
        // chunks are written when there is other work, so a renamed or moved file (the same
        // content under a new name) reuses its vectors instead of being embedded again.
        self.retire(&gone);
        for key in &gone {
            report.deleted += 1;
            on_event(IndexEvent::FileDeleted { path: key.clone() });
        }
        if work.is_empty() {
            self.remove_retired(store, &gone).await?;
        }

        // 3. Parse and chunk on a worker thread while this task embeds and writes.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Parsed>(8);
        let parse_embedder = embedder.clone();
        let parser = std::thread::Builder::new()
            .name("cairn-parse".into())
            .spawn(move || {
                let limits = ParseLimits::default();
                for item in work {
                    if tx.send(parse_one(item, parse_embedder.as_ref(), &limits)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| EngineError::Internal(format!("starting the parser thread: {e}")))?;

        let mut pending: Vec<Pending> = Vec::new();
        let mut pending_chunks = 0;
        let mut embedded = 0usize;
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        loop {
            let rx2 = rx.clone();
            let next = tokio::task::spawn_blocking(move || rx2.lock().ok().and_then(|r| r.recv().ok()))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            let Some(parsed) = next else { break };
            match parsed {
                Parsed::Same { item, hash } => {
                    report.unchanged += 1;
                    let chunks = item.known.as_ref().map(|k| k.chunks).unwrap_or(0);
                    let reason = item.known.as_ref().and_then(|k| k.reason.clone());
                    self.db()?.put_file(&item.row(hash, FileStatus::Indexed, reason, chunks))?;
                    on_event(IndexEvent::FileUnchanged { path: item.key });
                }
                Parsed::Changing { item } => {
                    report.retry.push(item.key.clone());
                    on_event(IndexEvent::FileChanging { path: item.key });
                }
                Parsed::Failed { item, hash, reason } | Parsed::Skipped { item, hash, reason } if hash.is_empty() => {
                    // Unreadable right now: keep whatever was indexed before, report the reason.
                    report.failed += 1;
                    let mut row =
                        item.known.clone().unwrap_or_else(|| item.row(String::new(), FileStatus::Failed, None, 0));
                    row.status = FileStatus::Failed;
                    row.reason = Some(reason.clone());
                    self.db()?.put_file(&row)?;
                    on_event(IndexEvent::FileFailed { path: item.key, reason });
                }
                Parsed::Failed { item, hash, reason } => {
                    report.failed += 1;
                    self.record_unindexable(store, &item, hash, FileStatus::Failed, &reason).await?;
                    on_event(IndexEvent::FileFailed { path: item.key, reason });
                }
                Parsed::Skipped { item, hash, reason } => {
                    report.skipped += 1;
                    self.record_unindexable(store, &item, hash, FileStatus::Skipped, &reason).await?;
                    on_event(IndexEvent::FileSkipped { path: item.key, reason });
                }
                Parsed::Chunks { item, hash, drafts, warnings } => {
                    pending_chunks += drafts.len();
                    let reason = if warnings.is_empty() { None } else { Some(warnings.join("; ")) };
                    let row = item.row(hash.clone(), FileStatus::Indexed, reason, drafts.len() as u32);
                    pending.push(Pending { key: item.key, hash, drafts, row: Some(row) });
                    if pending_chunks >= WRITE_BATCH {
                        let batch = std::mem::take(&mut pending);
                        pending_chunks = 0;
                        self.write_batch(embedder.as_ref(), batch, &mut embedded, &mut report, on_event).await?;
                    }
                }
            }
        }
        if !pending.is_empty() {
            self.write_batch(embedder.as_ref(), std::mem::take(&mut pending), &mut embedded, &mut report, on_event)
                .await?;
        }
        parser.join().map_err(|_| EngineError::Internal("the parser thread panicked".into()))?;
        self.remove_retired(store, &gone).await?;

        on_event(IndexEvent::Finalizing);
        store.refresh_indexes().await?;
        if matches!(scope, Scope::All) {
            self.maintain_store().await?;
            if report.retry.is_empty()
                && let Some(id) = self.finish_embedder_switch().await?
            {
                on_event(IndexEvent::EmbedderSwitched { embedder: id.clone() });
                report.switched_embedder = Some(id);
            }
        }
        report.chunks_embedded = embedded;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Hides deleted files from search until their chunks are gone from the store.
    fn retire(&self, keys: &[String]) {
        if let Ok(mut r) = self.retiring.lock() {
            r.extend(keys.iter().cloned());
        }
    }

    async fn remove_retired(&self, store: &cairn_store::Store, keys: &[String]) -> Result<(), EngineError> {
        if keys.is_empty() {
            return Ok(());
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        store.delete_paths(&refs).await?;
        {
            let db = self.db()?;
            for k in keys {
                db.invalidate_answers_for(k)?;
            }
        }
        if let Ok(mut r) = self.retiring.lock() {
            for k in keys {
                r.remove(k);
            }
        }
        Ok(())
    }

    /// Chunks of files the database no longer knows (a crash between forgetting a deleted
    /// file and removing its chunks) are removed. Synthetic keys (evaluation corpora) are kept.
    async fn sweep_orphans(&self, store: &cairn_store::Store) -> Result<usize, EngineError> {
        let known: HashSet<String> = self.db()?.all_files()?.into_iter().map(|f| f.path).collect();
        let orphans: Vec<String> = store
            .versions()
            .await?
            .into_iter()
            .filter(|(p, _, _)| std::path::Path::new(p).is_absolute() && !known.contains(p))
            .map(|(p, _, _)| p)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let refs: Vec<&str> = orphans.iter().map(String::as_str).collect();
        store.delete_paths(&refs).await?;
        Ok(orphans.len())
    }

    /// A file that exists but yields nothing to index: its old chunks (of content that no
    /// longer exists) go, and the reason is recorded for `cairn status`.
    async fn record_unindexable(
        &self,
        store: &cairn_store::Store,
        item: &WorkItem,
        hash: String,
        status: FileStatus,
        reason: &str,
    ) -> Result<(), EngineError> {
        store.delete_path_except(&item.key, None).await?;
        let db = self.db()?;
        db.put_file(&item.row(hash, status, Some(reason.to_owned()), 0))?;
        db.invalidate_answers_for(&item.key)?;
        Ok(())
    }

    /// Embeds a batch of documents, writes their chunks, then removes each document's older
    /// chunks, then records the files as indexed. A crash before the last step leaves the old
    /// chunks or both versions, never neither; the next pass sees the old state and redoes it.
    pub(crate) async fn write_batch(
        &self,
        embedder: &dyn Embedder,
        batch: Vec<Pending>,
        embedded: &mut usize,
        report: &mut IndexReport,
        on_event: &(dyn Fn(IndexEvent) + Send + Sync),
    ) -> Result<(), EngineError> {
        let store = self.store().await?;
        let texts: Vec<String> = batch.iter().flat_map(|p| p.drafts.iter().map(ChunkDraft::embed_text)).collect();
        let text_hashes: Vec<String> = texts.iter().map(|t| cairn_store::text_hash(t)).collect();

        // Reuse what is already embedded: the same file content under another name (renamed,
        // moved, copied), or the same passage text (the unchanged parts of an edited file).
        let file_hashes: Vec<&str> = batch.iter().map(|p| p.hash.as_str()).collect();
        let th_refs: Vec<&str> = text_hashes.iter().map(String::as_str).collect();
        let mut by_text: HashMap<String, Vec<f32>> = HashMap::new();
        let mut by_file: HashMap<(String, u32), Vec<f32>> = HashMap::new();
        for k in store.known_vectors(&file_hashes, &th_refs).await? {
            if k.vector.len() == embedder.dimension() {
                by_file.insert((k.file_hash, k.ordinal), k.vector.clone());
                by_text.insert(k.text_hash, k.vector);
            }
        }
        let keys: Vec<(String, u32)> =
            batch.iter().flat_map(|p| p.drafts.iter().map(|d| (p.hash.clone(), d.ordinal))).collect();
        let mut missing: Vec<usize> = Vec::new();
        let mut queued: HashSet<&str> = HashSet::new();
        for (i, th) in text_hashes.iter().enumerate() {
            if by_text.contains_key(th) || by_file.contains_key(&keys[i]) {
                continue;
            }
            // Identical passages within the batch are embedded once.
            if queued.insert(th.as_str()) {
                missing.push(i);
            }
        }
        let to_embed: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
        // Which folder each passage works for, so the ledger can show indexing cost by folder.
        let folder_of: Vec<Option<i64>> =
            batch.iter().flat_map(|p| p.drafts.iter().map(|_| p.row.as_ref().map(|r| r.folder_id))).collect();
        let tokens_of: Vec<usize> = batch.iter().flat_map(|p| p.drafts.iter().map(|d| d.tokens)).collect();
        for (part, idx) in to_embed.chunks(EMBED_BATCH).zip(missing.chunks(EMBED_BATCH)) {
            let started = Instant::now();
            let before = embedder.total_usage();
            let v = tokio::task::block_in_place(|| embedder.embed(part));
            let reported = match (before, embedder.total_usage()) {
                (Some(b), Some(a)) => Some(cairn_embed::EmbedUsage {
                    requests: a.requests - b.requests,
                    attempts: a.attempts - b.attempts,
                    texts: a.texts - b.texts,
                    prompt_tokens: a.prompt_tokens - b.prompt_tokens,
                    estimated_tokens: a.estimated_tokens - b.estimated_tokens,
                }),
                _ => None,
            };
            let took = started.elapsed();
            self.record_embedding(embedder, idx, &tokens_of, &folder_of, took, v.as_ref().err(), reported)?;
            let v = v?;
            if v.len() != part.len() {
                return Err(EngineError::Internal("embedder returned fewer vectors than passages".into()));
            }
            for (vec, &i) in v.into_iter().zip(idx) {
                by_text.insert(text_hashes[i].clone(), vec);
            }
            *embedded += part.len();
            on_event(IndexEvent::Embedded { chunks: *embedded });
        }
        let mut vectors = Vec::with_capacity(texts.len());
        for (i, th) in text_hashes.iter().enumerate() {
            let v = by_text.get(th).or_else(|| by_file.get(&keys[i])).cloned();
            let v = v.ok_or_else(|| EngineError::Internal("a passage was left without a vector".into()))?;
            vectors.push(v);
        }
        report.chunks_reused += texts.len() - missing.len();
        let mut vectors = vectors.into_iter();
        let mut rows = Vec::with_capacity(texts.len());
        for p in &batch {
            for d in &p.drafts {
                let vector = vectors
                    .next()
                    .ok_or_else(|| EngineError::Internal("embedder returned fewer vectors than passages".into()))?;
                rows.push(ChunkRow {
                    id: chunk_id(&p.key, &p.hash, d.ordinal),
                    path: p.key.clone(),
                    file_hash: p.hash.clone(),
                    ordinal: d.ordinal,
                    text: d.text.clone(),
                    context: d.context.clone(),
                    anchor: d.anchor.clone(),
                    embedder: embedder.id().to_owned(),
                    vector,
                });
            }
        }
        // Leftovers of an interrupted earlier attempt at this same content would otherwise
        // duplicate: clear them, then write, then drop older versions.
        let versions: Vec<(&str, &str)> = batch.iter().map(|p| (p.key.as_str(), p.hash.as_str())).collect();
        store.delete_versions(&versions).await?;
        store.add(&rows).await?;
        store.delete_older_versions(&versions).await?;
        report.chunks_written += rows.len();
        let mut db = self.db()?;
        db.in_transaction(|db| {
            for p in &batch {
                if let Some(row) = &p.row {
                    db.put_file(row)?;
                }
            }
            Ok(())
        })?;
        // Answers built on these files' old passages are no longer true.
        for p in &batch {
            db.invalidate_answers_for(&p.key)?;
        }
        drop(db);
        for p in batch {
            if let Some(row) = p.row {
                report.indexed += 1;
                on_event(IndexEvent::FileIndexed { path: row.path, chunks: row.chunks });
            }
        }
        Ok(())
    }
}
