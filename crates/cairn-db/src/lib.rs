//! Cairn's SQLite database: registered folders and the per-file index state that makes
//! re-indexing incremental and lets `cairn status` say why a file is not searchable.
//!
//! This is the only crate that imports rusqlite. It deliberately holds no chunks or vectors
//! (those live in the LanceDB store) and no parsing or embedding logic.

mod cache;
mod conversations;
mod learning;
mod ledger;
mod review;

pub use cache::CachedAnswer;
pub use conversations::{ConversationRow, TurnRow};
pub use learning::{ActivationRow, EvalRunRow, FeedbackRow, RankEventRow, RankerRow, Signal};
pub use ledger::{CallKind, CallRecord, CallRow, Outcome};
pub use review::{NewReview, ReviewRow};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// What happened to a file on its last indexing pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// Seen changed (or new) and queued; survives a crash, so a restart resumes the work.
    Pending,
    Indexed,
    Failed,
    Skipped,
}

impl FileStatus {
    fn as_str(self) -> &'static str {
        match self {
            FileStatus::Pending => "pending",
            FileStatus::Indexed => "indexed",
            FileStatus::Failed => "failed",
            FileStatus::Skipped => "skipped",
        }
    }
    fn parse(s: &str) -> FileStatus {
        match s {
            "indexed" => FileStatus::Indexed,
            "pending" => FileStatus::Pending,
            "skipped" => FileStatus::Skipped,
            _ => FileStatus::Failed,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FolderRow {
    pub id: i64,
    pub path: String,
    /// Labelled local-only by the user: its passages never reach a remote provider.
    pub local_only: bool,
}

/// The recorded state of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileRow {
    pub path: String,
    pub folder_id: i64,
    pub size: u64,
    pub mtime_ns: i64,
    /// blake3 of the content, hex. Empty when the file could not be read.
    pub hash: String,
    pub status: FileStatus,
    /// Why a file failed or was skipped; warnings for an indexed file.
    pub reason: Option<String>,
    pub chunks: u32,
}

const MIGRATIONS: &[&str] = &[
    // 1: folders and files.
    "CREATE TABLE folders (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        added_at INTEGER NOT NULL
     );
     CREATE TABLE files (
        path TEXT PRIMARY KEY,
        folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        hash TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        chunks INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
     );
     CREATE INDEX files_folder ON files(folder_id);",
    // 2: small key-value settings (the active embedder, so `status` works without loading it).
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 3: paths the watcher saw change, waiting to be looked at (files or whole folders).
    "CREATE TABLE queue (path TEXT PRIMARY KEY, enqueued_at INTEGER NOT NULL);",
    // 4: the cost ledger: every model call, grouped under the question that caused it.
    "CREATE TABLE questions (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        text TEXT NOT NULL,
        conversation_id INTEGER,
        folders TEXT NOT NULL DEFAULT '[]'
     );
     CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        question_id INTEGER REFERENCES questions(id) ON DELETE SET NULL,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt TEXT,
        prompt_hash TEXT,
        input_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        estimated INTEGER NOT NULL,
        latency_ms INTEGER NOT NULL,
        first_token_ms INTEGER,
        cost_nanos INTEGER,
        estimate_nanos INTEGER,
        cache_hit INTEGER NOT NULL,
        saved_nanos INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        error_code TEXT,
        folder TEXT,
        attempts INTEGER NOT NULL DEFAULT 1
     );
     CREATE INDEX calls_at ON calls(at_ms);
     CREATE INDEX calls_question ON calls(question_id);",
    // 5: caches: whole answers (keyed by everything that shaped them) and query vectors.
    "CREATE TABLE answer_cache (
        key TEXT PRIMARY KEY,
        answer TEXT NOT NULL,
        cost_nanos INTEGER,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        latency_ms INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE answer_cache_paths (
        key TEXT NOT NULL REFERENCES answer_cache(key) ON DELETE CASCADE,
        path TEXT NOT NULL,
        PRIMARY KEY (key, path)
     );
     CREATE INDEX answer_cache_by_path ON answer_cache_paths(path);
     CREATE TABLE query_vectors (
        embedder TEXT NOT NULL,
        query TEXT NOT NULL,
        vector BLOB NOT NULL,
        used_ms INTEGER NOT NULL,
        PRIMARY KEY (embedder, query)
     );",
    // 6: conversations: each turn's question and answer, for history and follow-ups.
    "CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
     );
     CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        question_id INTEGER REFERENCES questions(id) ON DELETE SET NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        answer_json TEXT NOT NULL,
        at_ms INTEGER NOT NULL
     );
     CREATE INDEX turns_conversation ON turns(conversation_id, id);",
    // 7: learning: what each search showed (candidates with their features at that moment),
    // the feedback given on it, ranker versions, and evaluation runs.
    "CREATE TABLE rank_events (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        question_id INTEGER REFERENCES questions(id) ON DELETE SET NULL,
        query TEXT NOT NULL,
        embedder TEXT NOT NULL,
        query_vector BLOB,
        ranker_version INTEGER,
        candidates TEXT NOT NULL,
        shown TEXT NOT NULL DEFAULT '[]'
     );
     CREATE INDEX rank_events_question ON rank_events(question_id);
     CREATE TABLE feedback (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        event_id INTEGER NOT NULL REFERENCES rank_events(id) ON DELETE CASCADE,
        target TEXT NOT NULL,
        chunk_id TEXT NOT NULL,
        path TEXT NOT NULL,
        signal TEXT NOT NULL,
        comment TEXT,
        UNIQUE (event_id, target, chunk_id)
     );
     CREATE INDEX feedback_path ON feedback(path);
     CREATE TABLE rankers (
        version INTEGER PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        model TEXT NOT NULL,
        train_events INTEGER NOT NULL,
        train_pairs INTEGER NOT NULL,
        feedback_upto INTEGER NOT NULL,
        params TEXT NOT NULL,
        metrics TEXT NOT NULL,
        decision TEXT NOT NULL,
        train_ms INTEGER NOT NULL
     );
     CREATE TABLE ranker_activations (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        version INTEGER NOT NULL,
        previous INTEGER,
        how TEXT NOT NULL,
        undone INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE eval_runs (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        dataset TEXT NOT NULL,
        ranker_version INTEGER,
        prompt_version TEXT,
        metrics TEXT NOT NULL
     );",
    // The user's privacy label: a local-only folder's text never goes to a remote provider.
    "ALTER TABLE folders ADD COLUMN local_only INTEGER NOT NULL DEFAULT 0;",
    // The review queue: answers flagged (automatically for low confidence, or by the user) and
    // the reviewer's verdict, which is also given to learning as feedback.
    "CREATE TABLE reviews (
        id INTEGER PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        event_id INTEGER REFERENCES rank_events(id) ON DELETE SET NULL,
        question_id INTEGER REFERENCES questions(id) ON DELETE SET NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        mode TEXT NOT NULL,
        sources TEXT NOT NULL,
        confidence REAL,
        reasons TEXT NOT NULL DEFAULT '[]',
        flagged_by TEXT NOT NULL,
        note TEXT,
        status TEXT NOT NULL DEFAULT 'open',
        reviewer_note TEXT,
        resolved_ms INTEGER
     );
     CREATE INDEX reviews_status ON reviews(status, id);
     CREATE INDEX reviews_event ON reviews(event_id);",
];

/// One connection; SQLite serialises writers, WAL lets readers go on meanwhile.
pub struct Db {
    conn: Connection,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let err = |e: &dyn std::fmt::Display| DbError::Open { path: path.display().to_string(), reason: e.to_string() };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| err(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| err(&e))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(|e| err(&e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| err(&e))?;
        let mut db = Db { conn };
        db.migrate()?;
        Ok(db)
    }

    fn migrate(&mut self) -> Result<(), DbError> {
        let version: i64 = self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let tx = self.conn.transaction()?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Registers a folder; registering it again is not an error.
    pub fn add_folder(&self, path: &str) -> Result<FolderRow, DbError> {
        self.conn.execute(
            "INSERT INTO folders (path, added_at) VALUES (?1, ?2) ON CONFLICT(path) DO NOTHING",
            params![path, now()],
        )?;
        let (id, local_only) =
            self.conn.query_row("SELECT id, local_only FROM folders WHERE path = ?1", [path], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? != 0))
            })?;
        Ok(FolderRow { id, path: path.to_owned(), local_only })
    }

    /// Unregisters a folder and forgets its files' state; returns the files it had.
    pub fn remove_folder(&self, path: &str) -> Result<Option<Vec<String>>, DbError> {
        let Some(id): Option<i64> =
            self.conn.query_row("SELECT id FROM folders WHERE path = ?1", [path], |r| r.get(0)).optional()?
        else {
            return Ok(None);
        };
        let files = self.files_in(id)?.into_iter().map(|f| f.path).collect();
        self.conn.execute("DELETE FROM files WHERE folder_id = ?1", [id])?;
        self.conn.execute("DELETE FROM folders WHERE id = ?1", [id])?;
        Ok(Some(files))
    }

    pub fn folders(&self) -> Result<Vec<FolderRow>, DbError> {
        let mut st = self.conn.prepare("SELECT id, path, local_only FROM folders ORDER BY path")?;
        let rows = st.query_map([], |r| {
            Ok(FolderRow { id: r.get(0)?, path: r.get(1)?, local_only: r.get::<_, i64>(2)? != 0 })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Labels a registered folder local-only (or not); false when no such folder is registered.
    pub fn set_local_only(&self, path: &str, local_only: bool) -> Result<bool, DbError> {
        let n = self
            .conn
            .execute("UPDATE folders SET local_only = ?1 WHERE path = ?2", params![local_only as i64, path])?;
        Ok(n > 0)
    }

    fn read_file(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRow> {
        let status: String = r.get(5)?;
        Ok(FileRow {
            path: r.get(0)?,
            folder_id: r.get(1)?,
            size: r.get::<_, i64>(2)? as u64,
            mtime_ns: r.get(3)?,
            hash: r.get(4)?,
            status: FileStatus::parse(&status),
            reason: r.get(6)?,
            chunks: r.get(7)?,
        })
    }

    pub fn files_in(&self, folder_id: i64) -> Result<Vec<FileRow>, DbError> {
        let mut st = self.conn.prepare(
            "SELECT path, folder_id, size, mtime_ns, hash, status, reason, chunks FROM files WHERE folder_id = ?1 ORDER BY path",
        )?;
        let rows = st.query_map([folder_id], Self::read_file)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Rows of `path` itself and of everything below it (`path` taken as a folder).
    pub fn files_under(&self, path: &str) -> Result<Vec<FileRow>, DbError> {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let mut st = self.conn.prepare(
            "SELECT path, folder_id, size, mtime_ns, hash, status, reason, chunks FROM files
             WHERE path = ?1 OR substr(path, 1, length(?2)) = ?2 ORDER BY path",
        )?;
        let rows = st.query_map(params![path, prefix], Self::read_file)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every recorded file, all folders.
    pub fn all_files(&self) -> Result<Vec<FileRow>, DbError> {
        let mut st = self
            .conn
            .prepare("SELECT path, folder_id, size, mtime_ns, hash, status, reason, chunks FROM files ORDER BY path")?;
        let rows = st.query_map([], Self::read_file)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks files as pending in one transaction-sized statement batch (callers wrap it).
    pub fn mark_pending(&self, path: &str) -> Result<(), DbError> {
        self.conn
            .execute("UPDATE files SET status = 'pending', updated_at = ?2 WHERE path = ?1", params![path, now()])?;
        Ok(())
    }

    /// Marks every indexed file pending (the embedder changed: everything is embedded again).
    pub fn mark_all_pending(&self) -> Result<usize, DbError> {
        Ok(self
            .conn
            .execute("UPDATE files SET status = 'pending', updated_at = ?1 WHERE status = 'indexed'", [now()])?)
    }

    /// Adds paths to the durable change queue (a path queued twice is one entry).
    pub fn enqueue(&self, paths: &[String]) -> Result<(), DbError> {
        let t = now();
        let mut st = self
            .conn
            .prepare_cached("INSERT INTO queue (path, enqueued_at) VALUES (?1, ?2) ON CONFLICT(path) DO NOTHING")?;
        for p in paths {
            st.execute(params![p, t])?;
        }
        Ok(())
    }

    /// The queued paths, oldest first.
    pub fn queued(&self, limit: usize) -> Result<Vec<String>, DbError> {
        let mut st = self.conn.prepare("SELECT path FROM queue ORDER BY enqueued_at, path LIMIT ?1")?;
        let rows = st.query_map([limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn dequeue(&self, paths: &[String]) -> Result<(), DbError> {
        let mut st = self.conn.prepare_cached("DELETE FROM queue WHERE path = ?1")?;
        for p in paths {
            st.execute([p])?;
        }
        Ok(())
    }

    pub fn clear_queue(&self) -> Result<(), DbError> {
        self.conn.execute("DELETE FROM queue", [])?;
        Ok(())
    }

    pub fn file(&self, path: &str) -> Result<Option<FileRow>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT path, folder_id, size, mtime_ns, hash, status, reason, chunks FROM files WHERE path = ?1",
                [path],
                Self::read_file,
            )
            .optional()?)
    }

    pub fn put_file(&self, f: &FileRow) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO files (path, folder_id, size, mtime_ns, hash, status, reason, chunks, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(path) DO UPDATE SET folder_id=?2, size=?3, mtime_ns=?4, hash=?5, status=?6, reason=?7, chunks=?8, updated_at=?9",
            params![f.path, f.folder_id, f.size as i64, f.mtime_ns, f.hash, f.status.as_str(), f.reason, f.chunks, now()],
        )?;
        Ok(())
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>, DbError> {
        Ok(self.conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
            params![key, value],
        )?;
        Ok(())
    }

    pub fn delete_setting(&self, key: &str) -> Result<(), DbError> {
        self.conn.execute("DELETE FROM settings WHERE key = ?1", [key])?;
        Ok(())
    }

    /// Files waiting to be (re)indexed, in every folder.
    pub fn pending_count(&self) -> Result<usize, DbError> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM files WHERE status = 'pending'", [], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// Every file path SQLite knows, in any state.
    pub fn all_paths(&self) -> Result<Vec<String>, DbError> {
        let mut stmt = self.conn.prepare("SELECT path FROM files")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Runs `f` inside one transaction: a batch of file states lands together or not at all.
    pub fn in_transaction<T>(&mut self, f: impl FnOnce(&Db) -> Result<T, DbError>) -> Result<T, DbError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    pub fn delete_file(&self, path: &str) -> Result<(), DbError> {
        self.conn.execute("DELETE FROM files WHERE path = ?1", [path])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn file_state_survives_reopen_and_folder_removal_forgets_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.db");
        {
            let db = Db::open(&path).unwrap();
            let f = db.add_folder("/docs/it's here").unwrap();
            assert_eq!(db.add_folder("/docs/it's here").unwrap().id, f.id, "adding twice is idempotent");
            db.put_file(&FileRow {
                path: "/docs/it's here/a.txt".into(),
                folder_id: f.id,
                size: 3,
                mtime_ns: 1,
                hash: "h".into(),
                status: FileStatus::Failed,
                reason: Some("binary content".into()),
                chunks: 0,
            })
            .unwrap();
        }
        let db = Db::open(&path).unwrap();
        let row = db.file("/docs/it's here/a.txt").unwrap().unwrap();
        assert_eq!(row.status, FileStatus::Failed);
        assert_eq!(row.reason.as_deref(), Some("binary content"));
        let removed = db.remove_folder("/docs/it's here").unwrap().unwrap();
        assert_eq!(removed, vec!["/docs/it's here/a.txt".to_string()]);
        assert!(db.file("/docs/it's here/a.txt").unwrap().is_none());
        assert!(db.folders().unwrap().is_empty());
    }
}
