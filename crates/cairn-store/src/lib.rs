//! The chunk store: one embedded LanceDB table of chunks with their vectors, text and anchors,
//! a full-text index over them, and the two kinds of search the retriever fuses.
//!
//! This is the only crate that imports lancedb and arrow. It deliberately does not rank,
//! fuse or embed: it stores rows and answers "nearest vectors" and "best BM25 matches".
//! Predicates are built as expressions, never by pasting paths into SQL, so a quote in a
//! file name cannot break a filter.

mod rows;

pub use rows::{ChunkRow, KnownVector, StoredChunk, text_hash};

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use lancedb::expr::{col, lit};
use lancedb::index::Index;
use lancedb::index::scalar::{FtsIndexBuilder, FullTextSearchQuery};
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::table::optimize::OptimizeAction;
use lancedb::{Connection, DistanceType, Table};
use std::path::Path;

/// Lance refuses filters with more than 500 conditions: long lists are split into several
/// filters (an `IN` list item and each side of a pair count as conditions).
const MAX_LIST_PER_FILTER: usize = 200;
const MAX_PAIRS_PER_FILTER: usize = 100;

/// Bumped whenever the row layout changes; part of the table name, so a store written by an
/// older release is never read with the wrong columns.
pub const SCHEMA_VERSION: u32 = 2;

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

/// Copies a schema-1 table into the current layout (adding `text_hash`), then drops it.
/// The new table is created in one commit, so a crash leaves either the old table (migrated
/// again on the next open) or the new one.
async fn migrate_v1(db: &Connection, embedder_id: &str, new_name: &str, dimension: usize) -> Result<Table, StoreError> {
    let old_name = table_name(1, embedder_id);
    let old = db.open_table(&old_name).execute().await.map_err(op("open schema-1 table"))?;
    let batches: Vec<RecordBatch> = old
        .query()
        .execute()
        .await
        .map_err(op("read schema-1 table"))?
        .try_collect()
        .await
        .map_err(op("read schema-1 table"))?;
    let upgraded = batches
        .iter()
        .map(|b| rows::upgrade_v1(b, dimension))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Op { op: "migrate", reason: e })?;
    let mut upgraded: Vec<RecordBatch> = upgraded.into_iter().filter(|b| b.num_rows() > 0).collect();
    if upgraded.is_empty() {
        upgraded.push(RecordBatch::new_empty(rows::schema(dimension)));
    }
    let table = db.create_table(new_name, upgraded).execute().await.map_err(op("create migrated table"))?;
    table
        .create_index(&["search_text"], Index::FTS(FtsIndexBuilder::default()))
        .execute()
        .await
        .map_err(op("create full-text index"))?;
    drop(old);
    db.drop_table(&old_name, &[]).await.map_err(op("drop schema-1 table"))?;
    Ok(table)
}

/// One table per (schema version, embedder): vectors of two models never share a table.
pub struct Store {
    db: Connection,
    table_name: String,
    embedder_id: String,
    dimension: usize,
    table: tokio::sync::RwLock<Option<Table>>,
}

fn table_name(schema: u32, embedder_id: &str) -> String {
    let clean: String =
        embedder_id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    format!("chunks_v{schema}_{clean}")
}

impl Store {
    /// Opens (or prepares to create) the chunk table for this embedder in `dir`.
    pub async fn open(dir: &Path, embedder_id: &str, dimension: usize) -> Result<Store, StoreError> {
        let open_err = |reason: String| StoreError::Open { path: dir.display().to_string(), reason };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let uri = dir.to_str().ok_or_else(|| open_err("path is not valid UTF-8".into()))?;
        let db = lancedb::connect(uri).execute().await.map_err(|e| open_err(e.to_string()))?;
        let current = table_name(SCHEMA_VERSION, embedder_id);
        let names = db.table_names().execute().await.map_err(|e| open_err(e.to_string()))?;
        let table = if names.contains(&current) {
            Some(db.open_table(&current).execute().await.map_err(|e| open_err(e.to_string()))?)
        } else if names.contains(&table_name(1, embedder_id)) {
            Some(migrate_v1(&db, embedder_id, &current, dimension).await.map_err(|e| open_err(e.to_string()))?)
        } else {
            None
        };
        Ok(Store {
            db,
            table_name: current,
            embedder_id: embedder_id.to_owned(),
            dimension,
            table: tokio::sync::RwLock::new(table),
        })
    }

    /// Chunk tables of other embedders (or older schemas) in the same folder: what switching
    /// models leaves behind until it is cleaned up.
    pub async fn other_tables(&self) -> Result<Vec<String>, StoreError> {
        let names = self.db.table_names().execute().await.map_err(op("list tables"))?;
        Ok(names.into_iter().filter(|n| n.starts_with("chunks_v") && *n != self.table_name).collect())
    }

    /// Drops another chunk table (after a switch of embedder has completed).
    pub async fn drop_table(&self, name: &str) -> Result<(), StoreError> {
        if name == self.table_name {
            return Err(StoreError::Op { op: "drop", reason: "refusing to drop the active table".into() });
        }
        self.db.drop_table(name, &[]).await.map_err(op("drop table"))
    }

    pub fn table_name(&self) -> &str {
        &self.table_name
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
        let batch: RecordBatch =
            rows::to_batch(rows, self.dimension).map_err(|e| StoreError::Op { op: "encode", reason: e.to_string() })?;
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

    /// Removes the chunks of exact versions (`path` with content `hash`).
    pub async fn delete_versions(&self, versions: &[(&str, &str)]) -> Result<(), StoreError> {
        for part in versions.chunks(MAX_PAIRS_PER_FILTER) {
            let pred = part
                .iter()
                .map(|(p, h)| col("path").eq(lit(*p)).and(col("file_hash").eq(lit(*h))))
                .reduce(|a, b| a.or(b));
            self.delete_where(pred).await?;
        }
        Ok(())
    }

    /// For each `(path, keep_hash)`, removes that path's chunks of any other content.
    pub async fn delete_older_versions(&self, keep: &[(&str, &str)]) -> Result<(), StoreError> {
        for part in keep.chunks(MAX_PAIRS_PER_FILTER) {
            let pred = part
                .iter()
                .map(|(p, h)| col("path").eq(lit(*p)).and(col("file_hash").not_eq(lit(*h))))
                .reduce(|a, b| a.or(b));
            self.delete_where(pred).await?;
        }
        Ok(())
    }

    /// Removes every chunk of these paths.
    pub async fn delete_paths(&self, paths: &[&str]) -> Result<(), StoreError> {
        for part in paths.chunks(MAX_LIST_PER_FILTER) {
            let list = part.iter().map(|p| lit(*p)).collect();
            self.delete_where(Some(col("path").in_list(list, false))).await?;
        }
        Ok(())
    }

    /// Vectors already computed for these file contents or passage texts: a renamed, moved
    /// or copied file (same `file_hash`) or an unchanged passage of an edited file (same
    /// `text_hash`) is not embedded again.
    pub async fn known_vectors(
        &self,
        file_hashes: &[&str],
        text_hashes: &[&str],
    ) -> Result<Vec<KnownVector>, StoreError> {
        let guard = self.table.read().await;
        let Some(t) = guard.as_ref() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (column, values) in [("file_hash", file_hashes), ("text_hash", text_hashes)] {
            for part in values.chunks(MAX_LIST_PER_FILTER) {
                if part.is_empty() {
                    continue;
                }
                let pred = col(column).in_list(part.iter().map(|h| lit(*h)).collect(), false);
                let batches: Vec<RecordBatch> = t
                    .query()
                    .only_if_expr(pred)
                    .select(Select::columns(rows::VECTOR_COLUMNS))
                    .execute()
                    .await
                    .map_err(op("vector lookup"))?
                    .try_collect()
                    .await
                    .map_err(op("vector lookup"))?;
                out.extend(
                    rows::vectors_from_batches(&batches).map_err(|e| StoreError::Op { op: "decode", reason: e })?,
                );
            }
        }
        Ok(out)
    }

    /// Every (path, file hash, chunk count) in the store: for consistency checks and for
    /// sweeping chunks whose file is no longer recorded.
    pub async fn versions(&self) -> Result<Vec<(String, String, usize)>, StoreError> {
        let guard = self.table.read().await;
        let Some(t) = guard.as_ref() else {
            return Ok(Vec::new());
        };
        let batches: Vec<RecordBatch> = t
            .query()
            .select(Select::columns(&["path", "file_hash", "ordinal"]))
            .execute()
            .await
            .map_err(op("list"))?
            .try_collect()
            .await
            .map_err(op("list"))?;
        let mut counts: std::collections::BTreeMap<(String, String), usize> = Default::default();
        for b in &batches {
            let s = |name: &str| {
                b.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<arrow_array::StringArray>().cloned())
            };
            let (Some(p), Some(h)) = (s("path"), s("file_hash")) else {
                return Err(StoreError::Op { op: "list", reason: "path or file_hash column missing".into() });
            };
            for i in 0..b.num_rows() {
                *counts.entry((p.value(i).to_owned(), h.value(i).to_owned())).or_default() += 1;
            }
        }
        Ok(counts.into_iter().map(|((p, h), n)| (p, h, n)).collect())
    }

    /// Ids that occur more than once (a duplicate chunk), for consistency checks.
    pub async fn duplicate_ids(&self) -> Result<usize, StoreError> {
        let guard = self.table.read().await;
        let Some(t) = guard.as_ref() else {
            return Ok(0);
        };
        let batches: Vec<RecordBatch> = t
            .query()
            .select(Select::columns(&["id"]))
            .execute()
            .await
            .map_err(op("list"))?
            .try_collect()
            .await
            .map_err(op("list"))?;
        let mut seen = std::collections::HashSet::new();
        let mut dups = 0;
        for b in &batches {
            let Some(ids) = b.column_by_name("id").and_then(|c| c.as_any().downcast_ref::<arrow_array::StringArray>())
            else {
                continue;
            };
            for i in 0..b.num_rows() {
                if !seen.insert(ids.value(i).to_owned()) {
                    dups += 1;
                }
            }
        }
        Ok(dups)
    }

    async fn delete_where(&self, pred: Option<lancedb::expr::DfExpr>) -> Result<(), StoreError> {
        let Some(pred) = pred else { return Ok(()) };
        let guard = self.table.read().await;
        let Some(t) = guard.as_ref() else {
            return Ok(());
        };
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
        let Some(t) = guard.as_ref() else {
            return Ok(Vec::new());
        };
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
        let Some(t) = guard.as_ref() else {
            return Ok(Vec::new());
        };
        let q = t
            .query()
            .nearest_to(vector)
            .map_err(op("vector search"))?
            .column("vector")
            .distance_type(DistanceType::Cosine);
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
        let Some(t) = guard.as_ref() else {
            return Ok(Vec::new());
        };
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

    /// Brings the full-text index up to date with the rows added since it was built (rows not
    /// yet in it are searched too, just more slowly). Run after each indexing pass.
    pub async fn refresh_indexes(&self) -> Result<(), StoreError> {
        let guard = self.table.read().await;
        let Some(t) = guard.as_ref() else {
            return Ok(());
        };
        if self.has_fts_index(t).await? {
            t.optimize(OptimizeAction::Index(Default::default())).await.map_err(op("optimize index"))?;
        } else {
            t.create_index(&["search_text"], Index::FTS(FtsIndexBuilder::default()))
                .execute()
                .await
                .map_err(op("create full-text index"))?;
        }
        Ok(())
    }

    /// Compacts small fragments into larger ones and deletes table versions older than
    /// `keep_versions_for`, so the folder does not grow with every edit. Only the holder of the
    /// writer lock may call this (it removes files no other writer can be using).
    pub async fn maintain(&self, keep_versions_for: std::time::Duration) -> Result<Maintenance, StoreError> {
        let guard = self.table.read().await;
        let Some(t) = guard.as_ref() else {
            return Ok(Maintenance::default());
        };
        let compact = t
            .optimize(OptimizeAction::Compact { options: Default::default(), remap_options: None })
            .await
            .map_err(op("compact"))?;
        let older_than = lancedb::table::optimize::Duration::from_std(keep_versions_for)
            .map_err(|e| StoreError::Op { op: "prune", reason: e.to_string() })?;
        let prune = t
            .optimize(OptimizeAction::Prune {
                older_than: Some(older_than),
                delete_unverified: Some(true),
                error_if_tagged_old_versions: Some(false),
            })
            .await
            .map_err(op("prune"))?;
        if self.has_fts_index(t).await? {
            t.optimize(OptimizeAction::Index(Default::default())).await.map_err(op("optimize index"))?;
        }
        Ok(Maintenance {
            fragments_removed: compact.compaction.as_ref().map(|c| c.fragments_removed).unwrap_or(0),
            fragments_added: compact.compaction.as_ref().map(|c| c.fragments_added).unwrap_or(0),
            versions_removed: prune.prune.as_ref().map(|p| p.old_versions).unwrap_or(0),
            bytes_removed: prune.prune.as_ref().map(|p| p.bytes_removed).unwrap_or(0),
        })
    }
}

/// What a maintenance run reclaimed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Maintenance {
    pub fragments_removed: usize,
    pub fragments_added: usize,
    pub versions_removed: u64,
    pub bytes_removed: u64,
}

/// Total size in bytes of the files under `dir` (the store's footprint on disk).
pub fn disk_usage(dir: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        let Ok(rd) = std::fs::read_dir(p) else {
            return 0;
        };
        rd.flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path()),
                Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => 0,
            })
            .sum()
    }
    walk(dir)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cairn_core::Anchor;

    fn row(path: &str, ordinal: u32, text: &str, v: f32) -> ChunkRow {
        ChunkRow {
            id: format!("{path}#{ordinal}"),
            path: path.into(),
            file_hash: "h1".into(),
            ordinal,
            text: text.into(),
            context: "Guide".into(),
            anchor: Anchor { page: Some(ordinal + 1), ..Anchor::default() },
            embedder: "test/4".into(),
            vector: vec![v, 1.0, 0.0, 0.0],
        }
    }

    /// Class 22: a store written by the release before `text_hash` existed opens, is migrated
    /// in place, and answers both kinds of search.
    #[tokio::test]
    async fn a_schema_1_store_is_migrated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![
            row("/d/it's.md", 0, "salmon ladders help fish upstream", 0.1),
            row("/d/it's.md", 1, "otters eat crayfish", 0.9),
        ];
        let current = rows::to_batch(&rows, 4).unwrap();
        let v1_fields: Vec<_> = current.schema().fields().iter().filter(|f| f.name() != "text_hash").cloned().collect();
        let v1_columns: Vec<_> = current
            .schema()
            .fields()
            .iter()
            .zip(current.columns())
            .filter(|(f, _)| f.name() != "text_hash")
            .map(|(_, c)| c.clone())
            .collect();
        let v1 = RecordBatch::try_new(std::sync::Arc::new(arrow_schema::Schema::new(v1_fields)), v1_columns).unwrap();
        {
            let db = lancedb::connect(dir.path().to_str().unwrap()).execute().await.unwrap();
            db.create_table(&table_name(1, "test/4"), v1).execute().await.unwrap();
        }
        let store = Store::open(dir.path(), "test/4", 4).await.unwrap();
        assert_eq!(store.count().await.unwrap(), 2);
        assert_eq!(store.table_name(), "chunks_v2_test_4");
        assert!(store.other_tables().await.unwrap().is_empty(), "the schema-1 table is dropped after migrating");
        let hits = store.text_search("crayfish", 5).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].anchor.page, Some(2));
        let near = store.vector_search(&[0.1, 1.0, 0.0, 0.0], 1).await.unwrap();
        assert_eq!(near[0].text, "salmon ladders help fish upstream");
        let th = text_hash("Guide\notters eat crayfish");
        let known = store.known_vectors(&[], &[th.as_str()]).await.unwrap();
        assert_eq!(known.len(), 1);
        assert_eq!(known[0].vector, vec![0.9, 1.0, 0.0, 0.0]);
        // Opening again finds the migrated table.
        drop(store);
        assert_eq!(Store::open(dir.path(), "test/4", 4).await.unwrap().count().await.unwrap(), 2);
    }

    /// A batch of a thousand one-passage files is deleted and looked up without hitting
    /// Lance's limit on filter size.
    #[tokio::test]
    async fn large_batches_of_versions_and_paths_are_handled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "test/4", 4).await.unwrap();
        let rows: Vec<ChunkRow> =
            (0..1000).map(|i| row(&format!("/d/f{i}.txt"), 0, &format!("text {i}"), 0.5)).collect();
        store.add(&rows).await.unwrap();
        let paths: Vec<String> = rows.iter().map(|r| r.path.clone()).collect();
        let versions: Vec<(&str, &str)> = paths.iter().map(|p| (p.as_str(), "h1")).collect();
        store.delete_older_versions(&versions).await.unwrap();
        assert_eq!(store.count().await.unwrap(), 1000);
        let ths: Vec<String> = rows.iter().map(|r| text_hash(&r.embed_text())).collect();
        let th_refs: Vec<&str> = ths.iter().map(String::as_str).collect();
        assert_eq!(store.known_vectors(&["h1"], &th_refs).await.unwrap().len(), 2000);
        store.delete_versions(&versions[..600]).await.unwrap();
        assert_eq!(store.count().await.unwrap(), 400);
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        store.delete_paths(&refs).await.unwrap();
        assert_eq!(store.count().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_vector_of_the_wrong_dimension_is_refused_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "test/4", 4).await.unwrap();
        let mut r = row("/d/a.md", 0, "x", 0.5);
        r.vector = vec![1.0; 8];
        assert!(matches!(store.add(&[r]).await, Err(StoreError::Dimension { got: 8, want: 4 })));
        assert!(matches!(store.vector_search(&[1.0; 3], 1).await, Err(StoreError::Dimension { .. })));
    }
}
