//! Retrieval evaluation on a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).
//!
//! The corpus goes through the same chunk → embed → store path as a user's files, and queries
//! through the same retrievers and fusion as `cairn search`; relevance is judged per document
//! (best chunk). Scores are nDCG@10 and Recall@100, for vector-only, full-text-only and hybrid,
//! so a change to any one of them is visible. Later issues (learned ranking) build on this.

use crate::indexer::{IndexReport, Pending, chunk_document};
use crate::{Engine, EngineError, IndexEvent};
use cairn_core::{Block, Document};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;
use std::time::Instant;

#[derive(Clone, Debug, Serialize)]
pub struct ModeScores {
    pub mode: String,
    pub ndcg_at_10: f64,
    pub recall_at_100: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub dataset: String,
    pub split: String,
    pub documents: usize,
    pub queries: usize,
    pub chunks_embedded: usize,
    pub index_seconds: f64,
    pub query_seconds: f64,
    pub modes: Vec<ModeScores>,
}

const KEY_PREFIX: &str = "beir:";

fn read_jsonl(path: &Path) -> Result<Vec<serde_json::Value>, EngineError> {
    let file = std::fs::File::open(path).map_err(|e| EngineError::io(format!("opening {}", path.display()), e))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| EngineError::io(format!("reading {}", path.display()), e))?;
        if line.trim().is_empty() {
            continue;
        }
        let v = serde_json::from_str(&line)
            .map_err(|e| EngineError::InvalidInput(format!("{} line {}: {e}", path.display(), i + 1)))?;
        out.push(v);
    }
    Ok(out)
}

fn field(v: &serde_json::Value, name: &str) -> String {
    match &v[name] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// qrels: query id → (doc id → graded relevance).
fn read_qrels(path: &Path) -> Result<HashMap<String, HashMap<String, u32>>, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(format!("reading {}", path.display()), e))?;
    let mut out: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 || (i == 0 && cols[2].parse::<u32>().is_err()) {
            continue;
        }
        let rel = cols[2].trim().parse::<u32>().unwrap_or(0);
        if rel > 0 {
            out.entry(cols[0].to_owned()).or_default().insert(cols[1].to_owned(), rel);
        }
    }
    Ok(out)
}

/// nDCG@k with graded gains (2^rel - 1) and the ideal ranking from the judged documents.
pub(crate) fn ndcg_at(k: usize, ranked: &[String], relevant: &HashMap<String, u32>) -> f64 {
    let gain = |rel: u32| f64::from((1u32 << rel.min(16)) - 1);
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| relevant.get(d).map(|r| gain(*r) / ((i + 2) as f64).log2()).unwrap_or(0.0))
        .sum();
    let mut ideal: Vec<u32> = relevant.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal.iter().take(k).enumerate().map(|(i, r)| gain(*r) / ((i + 2) as f64).log2()).sum();
    if idcg == 0.0 { 0.0 } else { dcg / idcg }
}

pub(crate) fn recall_at(k: usize, ranked: &[String], relevant: &HashMap<String, u32>) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let top: HashSet<&String> = ranked.iter().take(k).collect();
    relevant.keys().filter(|d| top.contains(d)).count() as f64 / relevant.len() as f64
}

fn doc_ranking(hits: &[cairn_core::Hit]) -> Vec<String> {
    cairn_retrieve::best_per_document(hits)
        .into_iter()
        .map(|(p, _)| p.strip_prefix(KEY_PREFIX).unwrap_or(&p).to_owned())
        .collect()
}

impl Engine {
    /// Indexes the dataset's corpus (once per data folder and embedder: a second run reuses it)
    /// and scores the `split` queries. `max_queries` limits the run for quick checks.
    pub async fn eval_beir(
        &self,
        dir: &Path,
        split: &str,
        max_queries: Option<usize>,
        on_event: &(dyn Fn(IndexEvent) + Send + Sync),
    ) -> Result<EvalReport, EngineError> {
        let _lock = self.writer_lock()?;
        let embedder = self.embedder().await?.clone();
        let store = self.store().await?;
        let corpus = read_jsonl(&dir.join("corpus.jsonl"))?;
        let queries = read_jsonl(&dir.join("queries.jsonl"))?;
        let qrels = read_qrels(&dir.join("qrels").join(format!("{split}.tsv")))?;

        // Index the corpus unless this exact corpus is already in this store.
        let started = Instant::now();
        let corpus_bytes =
            std::fs::read(dir.join("corpus.jsonl")).map_err(|e| EngineError::io("reading corpus".into(), e))?;
        let fingerprint = format!("{}:{}", cairn_ingest::hash_bytes(&corpus_bytes), embedder.id());
        let mut report = IndexReport::default();
        let mut embedded = 0;
        if self.db()?.setting("eval_corpus")?.as_deref() != Some(fingerprint.as_str()) {
            on_event(IndexEvent::Planned { to_check: corpus.len(), unchanged: 0, deleted: 0 });
            let mut batch = Vec::new();
            let mut batch_chunks = 0;
            for doc in &corpus {
                let id = field(doc, "_id");
                let title = field(doc, "title");
                let text = field(doc, "text");
                let hash = cairn_ingest::hash_bytes(format!("{title}\n{text}").as_bytes());
                let document = Document {
                    title: Some(title.clone()),
                    blocks: vec![Block { text, anchor: Default::default() }],
                    warnings: Vec::new(),
                };
                let drafts = tokio::task::block_in_place(|| chunk_document(document, &title, embedder.as_ref()));
                batch_chunks += drafts.len();
                batch.push(Pending { key: format!("{KEY_PREFIX}{id}"), hash, drafts, row: None });
                if batch_chunks >= 512 {
                    self.write_batch(
                        embedder.as_ref(),
                        std::mem::take(&mut batch),
                        &mut embedded,
                        &mut report,
                        on_event,
                    )
                    .await?;
                    batch_chunks = 0;
                }
            }
            if !batch.is_empty() {
                self.write_batch(embedder.as_ref(), batch, &mut embedded, &mut report, on_event).await?;
            }
            on_event(IndexEvent::Finalizing);
            store.refresh_indexes().await?;
            self.db()?.set_setting("eval_corpus", &fingerprint)?;
        }
        let index_seconds = started.elapsed().as_secs_f64();

        // Score the queries that have judgements in this split.
        let started = Instant::now();
        let mut judged: Vec<(String, String)> = queries
            .iter()
            .map(|q| (field(q, "_id"), field(q, "text")))
            .filter(|(id, _)| qrels.contains_key(id))
            .collect();
        if let Some(n) = max_queries {
            judged.truncate(n);
        }
        let modes = ["hybrid", "vector", "text"];
        let mut sums = vec![(0.0f64, 0.0f64); modes.len()];
        for (qid, text) in &judged {
            let q = text.clone();
            let e = embedder.clone();
            let vector = tokio::task::spawn_blocking(move || e.embed_query(&q))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))??;
            // Documents have several chunks: ask for more chunks than documents needed.
            let (by_vector, by_text) = tokio::join!(store.vector_search(&vector, 300), store.text_search(text, 300));
            let (by_vector, by_text) = (by_vector?, by_text?);
            let rankings = [
                doc_ranking(&cairn_retrieve::fuse(&by_vector, &by_text, self.fusion, 600)),
                doc_ranking(&cairn_retrieve::fuse(&by_vector, &[], self.fusion, 600)),
                doc_ranking(&cairn_retrieve::fuse(&[], &by_text, self.fusion, 600)),
            ];
            let rel = &qrels[qid];
            for (i, r) in rankings.iter().enumerate() {
                sums[i].0 += ndcg_at(10, r, rel);
                sums[i].1 += recall_at(100, r, rel);
            }
        }
        let n = judged.len().max(1) as f64;
        Ok(EvalReport {
            dataset: dir.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default(),
            split: split.to_owned(),
            documents: corpus.len(),
            queries: judged.len(),
            chunks_embedded: embedded,
            index_seconds,
            query_seconds: started.elapsed().as_secs_f64(),
            modes: modes
                .iter()
                .zip(sums)
                .map(|(m, (nd, rc))| ModeScores { mode: (*m).to_owned(), ndcg_at_10: nd / n, recall_at_100: rc / n })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcg_and_recall_match_hand_computed_values() {
        let rel: HashMap<String, u32> = [("a".to_owned(), 1), ("b".to_owned(), 1)].into();
        let ranked: Vec<String> = ["x", "a", "y", "b"].iter().map(|s| s.to_string()).collect();
        // DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3).
        let expect = (1.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at(10, &ranked, &rel) - expect).abs() < 1e-12);
        assert!((recall_at(2, &ranked, &rel) - 0.5).abs() < 1e-12);
        assert!((recall_at(100, &ranked, &rel) - 1.0).abs() < 1e-12);
        assert_eq!(ndcg_at(10, &["a".to_owned(), "b".to_owned()], &rel), 1.0);
    }
}
