//! The chunk store: one embedded LanceDB table of chunks with their vectors, text and anchors,
//! a full-text index over them, and the two kinds of search the retriever fuses.
//!
//! This is the only crate that imports lancedb and arrow. It deliberately does not rank,
//! fuse or embed: it stores rows and answers "nearest vectors" and "best BM25 matches".
//! Predicates are built as expressions, never by pasting paths into SQL, so a quote in a
//! file name cannot break a filter.

mod rows;

pub use rows::{ChunkRow, StoredChunk};

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use lancedb::expr::{col, lit};
use lancedb::index::Index;
use lancedb::index::scalar::{FtsIndexBuilder, FullTextSearchQuery};
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::table::optimize::OptimizeAction;
use lancedb::{Connection, DistanceType, Table};
use std::path::Path;

/// Bumped whenever the row layout changes; part of the table name, so a store written by an
/// older release is never read with the wrong columns.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the index at {path} could not be opened: {reason}")]
    Open { path: String, reason: String },
    #[error("index {op} failed: {reason}")]
    Op { op: &'static str, reason: String },
    #[error("vector has {got} dimensions, the index holds {want}")]
    Dimension { got: usize, want: usize },
}

fn op(op: &'static str) -> impl FnOnce(lancedb::Error) -> StoreError {
    move |e| StoreError::Op { op, reason: e.to_string() }
}

/// Runs a query for the chunk columns (plus the search's own `score_column`) and decodes the rows.
async fn read_chunks(
    query: impl QueryBase + ExecutableQuery,
    what: &'static str,
    score_column: Option<&str>,
) -> Result<Vec<StoredChunk>, StoreError> {
    let batches: Vec<RecordBatch> = query
        .select(Select::columns(rows::READ_COLUMNS))
        .execute()
        .await
        .map_err(op(what))?
        .try_collect()
        .await
        .map_err(op(what))?;
    rows::from_batches(&batches, score_column).map_err(|e| StoreError::Op { op: "decode", reason: e })
}

/// One table per (schema version, embedder): vectors of two models never share a table.
pub struct Store {
    db: Connection,
    table_name: String,
    embedder_id: String,
    dimension: usize,
    table: tokio::sync::RwLock<Option<Table>>,
}

fn table_name(embedder_id: &str) -> String {
    let clean: String = embedder_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    format!("chunks_v{SCHEMA_VERSION}_{clean}")
}

impl Store {
    /// Opens (or prepares to create) the chunk table for this embedder in `dir`.
    pub async fn open(dir: &Path, embedder_id: &str, dimension: usize) -> Result<Store, StoreError> {
        let open_err = |reason: String| StoreError::Open { path: dir.display().to_string(), reason };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let uri = dir.to_str().ok_or_else(|| open_err("path is not valid UTF-8".into()))?;
        let db = lancedb::connect(uri).execute().await.map_err(|e| open_err(e.to_string()))?;
        let table_name = table_name(embedder_id);
        let names = db.table_names().execute().await.map_err(|e| open_err(e.to_string()))?;
        let table = if names.contains(&table_name) {
            Some(db.open_table(&table_name).execute().await.map_err(|e| open_err(e.to_string()))?)
        } else {
            None
        };
        Ok(Store { db, table_name, embedder_id: embedder_id.to_owned(), dimension, table: tokio::sync::RwLock::new(table) })
    }

    pub fn embedder_id(&self) -> &str {
        &self.embedder_id
    }

    /// Appends rows. Callers add a document's new chunks *before* deleting its old ones
    /// (`delete_path_except`), so a failure in between leaves the old version searchable.
    pub async fn add(&self, rows: &[ChunkRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        for r in rows {
            if r.vector.len() != self.dimension {
                return Err(StoreError::Dimension { got: r.vector.len(), want: self.dimension });
            }
        }
        let batch: RecordBatch = rows::to_batch(rows, self.dimension).map_err(|e| StoreError::Op { op: "encode", reason: e.to_string() })?;
        let mut guard = self.table.write().await;
        match guard.as_ref() {
            Some(t) => {
                t.add(batch).execute().await.map_err(op("add"))?;
            }
            None => {
                let t = self.db.create_table(&self.table_name, batch).execute().await.map_err(op("create"))?;
                *guard = Some(t);
            }
        }
        Ok(())
    }

    /// Removes every chunk of `path` whose file hash is not `keep_hash` (None: all of them).
    pub async fn delete_path_except(&self, path: &str, keep_hash: Option<&str>) -> Result<(), StoreError> {
        let mut pred = col("path").eq(lit(path));
        if let Some(h) = keep_hash {
            pred = pred.and(col("file_hash").not_eq(lit(h)));
        }
        self.delete_where(Some(pred)).await
    }

    /// Removes the chunks of exact versions (`path` with content `hash`), in one commit.
    pub async fn delete_versions(&self, versions: &[(&str, &str)]) -> Result<(), StoreError> {
        let pred = versions
            .iter()
            .map(|(p, h)| col("path").eq(lit(*p)).and(col("file_hash").eq(lit(*h))))
            .reduce(|a, b| a.or(b));
        self.delete_where(pred).await
    }

    /// For each `(path, keep_hash)`, removes that path's chunks of any other content, in one commit.
    pub async fn delete_older_versions(&self, keep: &[(&str, &str)]) -> Result<(), StoreError> {
        let pred = keep
            .iter()
            .map(|(p, h)| col("path").eq(lit(*p)).and(col("file_hash").not_eq(lit(*h))))
            .reduce(|a, b| a.or(b));
        self.delete_where(pred).await
    }

    async fn delete_where(&self, pred: Option<lancedb::expr::DfExpr>) -> Result<(), StoreError> {
        let Some(pred) = pred else { return Ok(()) };
        let guard = self.table.read().await;
        let Some(t) = guard.as_ref() else { return Ok(()) };
        t.delete(&pred).await.map_err(op("delete"))?;
        Ok(())
    }

    pub async fn count(&self) -> Result<usize, StoreError> {
        let guard = self.table.read().await;
        match guard.as_ref() {
            Some(t) => t.count_rows(None).await.map_err(op("count")),
            None => Ok(0),
        }
    }

    /// Chunks of one file, in order (for status and tests).
    pub async fn chunks_of(&self, path: &str) -> Result<Vec<StoredChunk>, StoreError> {
        let guard = self.table.read().await;
        let Some(t) = guard.as_ref() else { return Ok(Vec::new()) };
        let mut out = read_chunks(t.query().only_if_expr(col("path").eq(lit(path))), "query", None).await?;
        out.sort_by_key(|c| c.ordinal);
        Ok(out)
    }

    /// The `k` chunks nearest to `vector` by cosine distance; score = cosine similarity.
    pub async fn vector_search(&self, vector: &[f32], k: usize) -> Result<Vec<StoredChunk>, StoreError> {
        if vector.len() != self.dimension {
            return Err(StoreError::Dimension { got: vector.len(), want: self.dimension });
        }
        let guard = self.table.read().await;
        let Some(t) = guard.as_ref() else { return Ok(Vec::new()) };
        let q = t.query().nearest_to(vector).map_err(op("vector search"))?.column("vector").distance_type(DistanceType::Cosine);
        let mut out = read_chunks(q.limit(k), "vector search", Some("_distance")).await?;
        for c in &mut out {
            c.score = 1.0 - c.score;
        }
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(out)
    }

    /// The `k` best BM25 matches for `query` over passage text and its context line.
    pub async fn text_search(&self, query: &str, k: usize) -> Result<Vec<StoredChunk>, StoreError> {
        let guard = self.table.read().await;
        let Some(t) = guard.as_ref() else { return Ok(Vec::new()) };
        if !self.has_fts_index(t).await? {
            return Ok(Vec::new());
        }
        let q = FullTextSearchQuery::new(query.to_owned())
            .with_column("search_text".to_owned())
            .map_err(|e| StoreError::Op { op: "text search", reason: e.to_string() })?;
        let mut out = read_chunks(t.query().full_text_search(q).limit(k), "text search", Some("_score")).await?;
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(out)
    }

    async fn has_fts_index(&self, t: &Table) -> Result<bool, StoreError> {
        let indices = t.list_indices().await.map_err(op("list indices"))?;
        Ok(indices.iter().any(|i| i.columns.iter().any(|c| c == "search_text")))
    }

    /// Brings indexes up to date with the rows added since they were built, compacts small
    /// fragments and drops old versions. Run after each indexing pass.
    pub async fn refresh_indexes(&self) -> Result<(), StoreError> {
        let guard = self.table.read().await;
        let Some(t) = guard.as_ref() else { return Ok(()) };
        if self.has_fts_index(t).await? {
            t.optimize(OptimizeAction::All).await.map_err(op("optimize"))?;
        } else {
            t.create_index(&["search_text"], Index::FTS(FtsIndexBuilder::default()))
                .execute()
                .await
                .map_err(op("create full-text index"))?;
        }
        Ok(())
    }
}
