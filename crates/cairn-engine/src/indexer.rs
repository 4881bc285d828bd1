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
    Scanning { folder: String },
    FolderUnreadable { folder: String, reason: String },
    /// The work is known: `to_check` files will be read (new, changed or previously failed).
    Planned { to_check: usize, unchanged: usize, deleted: usize },
    FileIndexed { path: String, chunks: u32 },
    FileUnchanged { path: String },
    FileFailed { path: String, reason: String },
    FileSkipped { path: String, reason: String },
    /// Cumulative chunks embedded in this pass.
    Embedded { chunks: usize },
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
    pub unreadable_folders: Vec<(String, String)>,
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

fn parse_one(item: WorkItem, embedder: &dyn Embedder, limits: &ParseLimits) -> Parsed {
    let bytes = match std::fs::read(&item.path) {
        Ok(b) => b,
        Err(e) => return Parsed::Failed { item, hash: String::new(), reason: format!("cannot read: {e}") },
    };
    let hash = cairn_ingest::hash_bytes(&bytes);
    if let Some(k) = &item.known
        && k.hash == hash
        && k.status == FileStatus::Indexed
    {
        return Parsed::Same { item, hash };
    }
    let format = cairn_parse::format_for_path(&item.path).or_else(|| looks_like_text(&item.path, &bytes).then_some(Format::Text));
    let Some(format) = format else {
        let ext = item.path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_else(|| "no extension".into());
        return Parsed::Skipped { item, hash, reason: format!("unsupported file type ({ext})") };
    };
    let doc = match cairn_parse::parse(format, &bytes, limits) {
        Ok(d) => d,
        // An empty file is nothing to index, not a failure.
        Err(e) if e.code() == "empty" => return Parsed::Skipped { item, hash, reason: e.to_string() },
        Err(e) => return Parsed::Failed { item, hash, reason: e.to_string() },
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
        let started = Instant::now();
        let _lock = self.writer_lock()?;
        let embedder = self.embedder().await?.clone();
        let store = self.store().await?;
        let mut report = IndexReport::default();

        // 1. Scan every folder and decide what to look at.
        let folders = self.db()?.folders()?;
        let mut work = Vec::new();
        let mut gone = Vec::new();
        for folder in &folders {
            on_event(IndexEvent::Scanning { folder: folder.path.clone() });
            let root = PathBuf::from(&folder.path);
            let scan = match tokio::task::block_in_place(|| cairn_ingest::scan(&root, &cairn_ingest::ScanOptions::default())) {
                Ok(s) => s,
                Err(e) => {
                    // Never treat an unreadable folder as empty: its index entries stay.
                    let reason = e.to_string();
                    on_event(IndexEvent::FolderUnreadable { folder: folder.path.clone(), reason: reason.clone() });
                    report.unreadable_folders.push((folder.path.clone(), reason));
                    continue;
                }
            };
            let known: HashMap<String, FileRow> =
                self.db()?.files_in(folder.id)?.into_iter().map(|f| (f.path.clone(), f)).collect();
            let mut present = HashSet::new();
            for (path, reason) in &scan.problems {
                let key = path.to_string_lossy().to_string();
                present.insert(key.clone());
                on_event(IndexEvent::FileSkipped { path: key.clone(), reason: reason.clone() });
                report.skipped += 1;
                self.db()?.put_file(&FileRow {
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
            for f in scan.files {
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
                    k.size == f.size && k.mtime_ns == f.mtime_ns && k.status != FileStatus::Failed
                });
                if unchanged {
                    report.unchanged += 1;
                    continue;
                }
                work.push(WorkItem { path: f.path, key, folder_id: folder.id, size: f.size, mtime_ns: f.mtime_ns, known: prior });
            }
            gone.extend(known.into_keys().filter(|k| !present.contains(k)));
        }
        on_event(IndexEvent::Planned { to_check: work.len(), unchanged: report.unchanged, deleted: gone.len() });

        // 2. Deleted files leave the index first: they must not answer any more.
        for key in &gone {
            store.delete_path_except(key, None).await?;
            self.db()?.delete_file(key)?;
            report.deleted += 1;
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
                Parsed::Failed { item, hash, reason } | Parsed::Skipped { item, hash, reason } if hash.is_empty() => {
                    // Unreadable right now: keep whatever was indexed before, report the reason.
                    report.failed += 1;
                    let mut row = item.known.clone().unwrap_or_else(|| item.row(String::new(), FileStatus::Failed, None, 0));
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
            self.write_batch(embedder.as_ref(), std::mem::take(&mut pending), &mut embedded, &mut report, on_event).await?;
        }
        parser.join().map_err(|_| EngineError::Internal("the parser thread panicked".into()))?;

        on_event(IndexEvent::Finalizing);
        store.refresh_indexes().await?;
        report.chunks_embedded = embedded;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
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
        self.db()?.put_file(&item.row(hash, status, Some(reason.to_owned()), 0))?;
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
        let mut vectors = Vec::with_capacity(texts.len());
        for part in texts.chunks(EMBED_BATCH) {
            let v = tokio::task::block_in_place(|| embedder.embed(part))?;
            vectors.extend(v);
            *embedded += part.len();
            on_event(IndexEvent::Embedded { chunks: *embedded });
        }
        let mut vectors = vectors.into_iter();
        let mut rows = Vec::with_capacity(texts.len());
        for p in &batch {
            for d in &p.drafts {
                let vector = vectors.next().ok_or_else(|| EngineError::Internal("embedder returned fewer vectors than passages".into()))?;
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
