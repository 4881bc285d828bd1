//! Arrow encoding of chunk rows: the one place that knows the column layout.

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, StringBuilder, UInt32Builder};
use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use cairn_core::Anchor;
use std::sync::Arc;

/// A chunk as written: everything needed to cite it, plus its vector.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkRow {
    pub id: String,
    pub path: String,
    pub file_hash: String,
    pub ordinal: u32,
    pub text: String,
    pub context: String,
    pub anchor: Anchor,
    pub embedder: String,
    pub vector: Vec<f32>,
}

impl ChunkRow {
    /// What the embedder was given (and the full-text index reads): context line, then passage.
    pub fn embed_text(&self) -> String {
        if self.context.is_empty() { self.text.clone() } else { format!("{}\n{}", self.context, self.text) }
    }
}

/// Identity of the text a vector was computed from: equal texts share a vector, so an edit
/// re-embeds only the passages that changed and a copy of a file embeds nothing.
pub fn text_hash(embed_text: &str) -> String {
    blake3::hash(embed_text.as_bytes()).to_hex()[..32].to_owned()
}

/// A stored vector and what it was computed from, for reuse instead of re-embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct KnownVector {
    pub file_hash: String,
    pub ordinal: u32,
    pub text_hash: String,
    pub vector: Vec<f32>,
}

/// A chunk as read back from a search, with the search's own score (cosine similarity for
/// vector search, BM25 for full text).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredChunk {
    pub id: String,
    pub path: String,
    pub file_hash: String,
    pub ordinal: u32,
    pub text: String,
    pub context: String,
    pub anchor: Anchor,
    pub score: f32,
}

pub(crate) const READ_COLUMNS: &[&str] =
    &["id", "path", "file_hash", "ordinal", "text", "context", "page", "line_start", "line_end", "heading"];

/// Heading paths are stored joined with this separator (it does not occur in headings we keep).
const HEADING_SEP: &str = " \u{203a} ";

pub(crate) fn schema(dimension: usize) -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("file_hash", DataType::Utf8, false),
        Field::new("ordinal", DataType::UInt32, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("context", DataType::Utf8, false),
        // What the full-text index reads: the context line and the passage together, so a
        // title word finds the passages under it.
        Field::new("search_text", DataType::Utf8, false),
        // blake3 of `search_text` (what was embedded): the key for reusing vectors.
        Field::new("text_hash", DataType::Utf8, false),
        Field::new("page", DataType::UInt32, true),
        Field::new("line_start", DataType::UInt32, true),
        Field::new("line_end", DataType::UInt32, true),
        Field::new("heading", DataType::Utf8, false),
        Field::new("embedder", DataType::Utf8, false),
        Field::new(
            "vector",
            DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), dimension as i32),
            false,
        ),
    ]))
}

pub(crate) fn to_batch(rows: &[ChunkRow], dimension: usize) -> Result<RecordBatch, ArrowError> {
    let strings = |f: &dyn Fn(&ChunkRow) -> String| -> ArrayRef {
        let mut b = StringBuilder::new();
        for r in rows {
            b.append_value(f(r));
        }
        Arc::new(b.finish())
    };
    let opt_u32 = |f: &dyn Fn(&ChunkRow) -> Option<u32>| -> ArrayRef {
        let mut b = UInt32Builder::new();
        for r in rows {
            b.append_option(f(r));
        }
        Arc::new(b.finish())
    };
    let mut vectors = FixedSizeListBuilder::new(Float32Builder::new(), dimension as i32)
        .with_field(Arc::new(Field::new("item", DataType::Float32, true)));
    for r in rows {
        vectors.values().append_slice(&r.vector);
        vectors.append(true);
    }
    RecordBatch::try_new(
        schema(dimension),
        vec![
            strings(&|r| r.id.clone()),
            strings(&|r| r.path.clone()),
            strings(&|r| r.file_hash.clone()),
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.ordinal))),
            strings(&|r| r.text.clone()),
            strings(&|r| r.context.clone()),
            strings(&|r| r.embed_text()),
            strings(&|r| text_hash(&r.embed_text())),
            opt_u32(&|r| r.anchor.page),
            opt_u32(&|r| r.anchor.line_start),
            opt_u32(&|r| r.anchor.line_end),
            strings(&|r| r.anchor.heading.join(HEADING_SEP)),
            strings(&|r| r.embedder.clone()),
            Arc::new(vectors.finish()),
        ],
    )
}

pub(crate) fn from_batches(batches: &[RecordBatch], score_column: Option<&str>) -> Result<Vec<StoredChunk>, String> {
    let mut out = Vec::new();
    for b in batches {
        let s = |name: &str| -> Result<&StringArray, String> {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| format!("column {name} missing or not text"))
        };
        let u = |name: &str| -> Result<&UInt32Array, String> {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<UInt32Array>())
                .ok_or_else(|| format!("column {name} missing or not u32"))
        };
        let (id, path, hash, text, context, heading) =
            (s("id")?, s("path")?, s("file_hash")?, s("text")?, s("context")?, s("heading")?);
        let (ordinal, page, ls, le) = (u("ordinal")?, u("page")?, u("line_start")?, u("line_end")?);
        let score = match score_column {
            Some(name) => Some(
                b.column_by_name(name)
                    .and_then(|c| c.as_any().downcast_ref::<Float32Array>())
                    .ok_or_else(|| format!("column {name} missing"))?,
            ),
            None => None,
        };
        let opt = |a: &UInt32Array, i: usize| if a.is_null(i) { None } else { Some(a.value(i)) };
        for i in 0..b.num_rows() {
            let h = heading.value(i);
            out.push(StoredChunk {
                id: id.value(i).to_owned(),
                path: path.value(i).to_owned(),
                file_hash: hash.value(i).to_owned(),
                ordinal: ordinal.value(i),
                text: text.value(i).to_owned(),
                context: context.value(i).to_owned(),
                anchor: Anchor {
                    page: opt(page, i),
                    line_start: opt(ls, i),
                    line_end: opt(le, i),
                    heading: if h.is_empty() { Vec::new() } else { h.split(HEADING_SEP).map(str::to_owned).collect() },
                },
                score: score.map(|s| s.value(i)).unwrap_or(0.0),
            });
        }
    }
    Ok(out)
}

pub(crate) const VECTOR_COLUMNS: &[&str] = &["file_hash", "ordinal", "text_hash", "vector"];

pub(crate) fn vectors_from_batches(batches: &[RecordBatch]) -> Result<Vec<KnownVector>, String> {
    let mut out = Vec::new();
    for b in batches {
        let s = |name: &str| -> Result<&StringArray, String> {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| format!("column {name} missing or not text"))
        };
        let (hash, th) = (s("file_hash")?, s("text_hash")?);
        let ordinal = b
            .column_by_name("ordinal")
            .and_then(|c| c.as_any().downcast_ref::<UInt32Array>())
            .ok_or("column ordinal missing")?;
        let vectors = b
            .column_by_name("vector")
            .and_then(|c| c.as_any().downcast_ref::<FixedSizeListArray>())
            .ok_or("column vector missing")?;
        for i in 0..b.num_rows() {
            let v = vectors.value(i);
            let v = v.as_any().downcast_ref::<Float32Array>().ok_or("vector items are not f32")?;
            out.push(KnownVector {
                file_hash: hash.value(i).to_owned(),
                ordinal: ordinal.value(i),
                text_hash: th.value(i).to_owned(),
                vector: v.values().to_vec(),
            });
        }
    }
    Ok(out)
}

/// Rows of a schema-1 table (no `text_hash`) in today's layout, for the one-time migration.
pub(crate) fn upgrade_v1(batch: &RecordBatch, dimension: usize) -> Result<RecordBatch, String> {
    let search = batch
        .column_by_name("search_text")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or("schema-1 table without search_text")?;
    let mut hashes = StringBuilder::new();
    for i in 0..search.len() {
        hashes.append_value(text_hash(search.value(i)));
    }
    let hashes: ArrayRef = Arc::new(hashes.finish());
    let schema = schema(dimension);
    let mut columns = Vec::new();
    for f in schema.fields() {
        if f.name() == "text_hash" {
            columns.push(hashes.clone());
        } else {
            columns.push(
                batch.column_by_name(f.name()).ok_or_else(|| format!("schema-1 table without {}", f.name()))?.clone(),
            );
        }
    }
    RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())
}
