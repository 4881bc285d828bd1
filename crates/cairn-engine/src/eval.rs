//! Retrieval evaluation on a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).
//!
//! The corpus goes through the same chunk → embed → store path as a user's files, and queries
//! through the same retrievers and fusion as `cairn search`; relevance is judged per document
//! (best chunk). Scores are nDCG@10 and Recall@100, for vector-only, full-text-only and hybrid,
//! so a change to any one of them is visible. Later issues (learned ranking) build on this.

use crate::indexer::{IndexReport, Pending, chunk_document};
use crate::{Engine, EngineError, IndexEvent};
use cairn_core::{Block, Document, Hit};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;
use std::time::Instant;

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ModeScores {
    pub mode: String,
    pub ndcg_at_10: f64,
    pub recall_at_10: f64,
    pub recall_at_100: f64,
    pub mrr: f64,
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
    /// The ranker version of the `ranked` mode (the active one) and the answer prompt version.
    pub ranker_version: i64,
    pub prompt_version: String,
    /// The same dataset's previous run, and what changed since.
    pub previous: Option<Comparison>,
}

/// A run compared with the previous one on the same dataset.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub previous_run: i64,
    pub previous_at_ms: i64,
    pub previous_ranker: Option<i64>,
    /// (metric, before, after) for the headline mode.
    pub changes: Vec<(String, f64, f64)>,
    /// Metrics that fell by more than 0.005.
    pub regressions: Vec<String>,
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

/// Reciprocal rank of the first relevant document (0 when none is ranked).
pub(crate) fn mrr(ranked: &[String], relevant: &HashMap<String, u32>) -> f64 {
    ranked.iter().position(|d| relevant.contains_key(d)).map(|i| 1.0 / (i + 1) as f64).unwrap_or(0.0)
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

/// Metric sums over queries, for one mode.
#[derive(Clone, Copy, Default)]
struct Sums {
    ndcg: f64,
    r10: f64,
    r100: f64,
    mrr: f64,
}

impl Sums {
    fn add(&mut self, ranked: &[String], rel: &HashMap<String, u32>) {
        self.ndcg += ndcg_at(10, ranked, rel);
        self.r10 += recall_at(10, ranked, rel);
        self.r100 += recall_at(100, ranked, rel);
        self.mrr += mrr(ranked, rel);
    }
    fn scores(self, mode: &str, n: usize) -> ModeScores {
        let n = n.max(1) as f64;
        ModeScores {
            mode: mode.to_owned(),
            ndcg_at_10: self.ndcg / n,
            recall_at_10: self.r10 / n,
            recall_at_100: self.r100 / n,
            mrr: self.mrr / n,
        }
    }
}

/// A BEIR dataset read from disk.
pub(crate) struct Beir {
    corpus: Vec<serde_json::Value>,
    corpus_bytes: Vec<u8>,
    queries: HashMap<String, String>,
    /// Query ids in file order.
    order: Vec<String>,
}

impl Beir {
    fn read(dir: &Path) -> Result<Beir, EngineError> {
        let corpus = read_jsonl(&dir.join("corpus.jsonl"))?;
        let corpus_bytes =
            std::fs::read(dir.join("corpus.jsonl")).map_err(|e| EngineError::io("reading corpus".into(), e))?;
        let raw = read_jsonl(&dir.join("queries.jsonl"))?;
        let order: Vec<String> = raw.iter().map(|q| field(q, "_id")).collect();
        let queries = raw.iter().map(|q| (field(q, "_id"), field(q, "text"))).collect();
        Ok(Beir { corpus, corpus_bytes, queries, order })
    }

    /// Judged queries of a split, in file order.
    fn judged(&self, qrels: &HashMap<String, HashMap<String, u32>>) -> Vec<(String, String)> {
        self.order
            .iter()
            .filter(|id| qrels.contains_key(*id))
            .map(|id| (id.clone(), self.queries.get(id).cloned().unwrap_or_default()))
            .collect()
    }
}

fn qrels_for(dir: &Path, split: &str) -> Result<HashMap<String, HashMap<String, u32>>, EngineError> {
    let path = dir.join("qrels").join(format!("{split}.tsv"));
    if !path.is_file() {
        return Err(EngineError::InvalidInput(format!("{} does not exist: no `{split}` split here", path.display())));
    }
    read_qrels(&path)
}

/// One point of a learning curve.
#[derive(Clone, Debug, Serialize)]
pub struct LearningPoint {
    /// Training queries whose feedback has been given so far.
    pub train_queries: usize,
    /// Feedback events (judged searches) and judgements recorded so far.
    pub judged_events: usize,
    pub judgements: usize,
    pub learn: crate::LearnReport,
    /// Test scores with the ranker active after this point's training.
    pub active_version: i64,
    pub test: ModeScores,
}

#[derive(Clone, Debug, Serialize)]
pub struct LearningReport {
    pub dataset: String,
    pub test_queries: usize,
    /// Untuned hybrid on the test split, before any feedback.
    pub baseline: ModeScores,
    pub points: Vec<LearningPoint>,
    /// Automatic retrainings triggered by feedback during the simulation.
    pub automatic_retrains: usize,
    pub simulate_seconds: f64,
    pub rankers: Vec<crate::RankerInfo>,
}

/// A golden set: questions with the files (optionally pages) that should answer them.
#[derive(Clone, Debug, Serialize)]
pub struct GoldenReport {
    pub file: String,
    pub questions: usize,
    pub ranker_version: i64,
    pub scores: ModeScores,
    pub per_question: Vec<GoldenQuestion>,
    pub previous: Option<Comparison>,
    /// Expected files that match no indexed file (a typo, or a file not indexed): they can
    /// never be found, so they only lower the score.
    pub unmatched: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GoldenQuestion {
    pub question: String,
    pub expected: Vec<String>,
    /// Rank of the first passage from an expected file (page), if in the top 100.
    pub first_rank: Option<usize>,
    pub ndcg_at_10: f64,
}

#[derive(Clone, Debug)]
struct Expected {
    label: String,
    file: String,
    page: Option<u32>,
}

impl Expected {
    fn parse(s: &str) -> Expected {
        let (file, page) = match s.rsplit_once("#page=") {
            Some((f, p)) => match p.trim().parse::<u32>() {
                Ok(n) => (f.to_owned(), Some(n)),
                Err(_) => (s.to_owned(), None),
            },
            None => (s.to_owned(), None),
        };
        Expected { label: s.to_owned(), file: file.replace('\\', "/"), page }
    }

    fn matches_file(&self, path: &str) -> bool {
        let path = path.replace('\\', "/");
        let file = self.file.trim_start_matches("./");
        path == file || path.ends_with(&format!("/{}", file.trim_start_matches('/')))
    }

    fn matches(&self, h: &Hit) -> bool {
        self.matches_file(&h.path) && self.page.is_none_or(|p| h.anchor.page == Some(p))
    }
}

fn read_golden(file: &Path) -> Result<Vec<(String, Vec<Expected>)>, EngineError> {
    let mut out = Vec::new();
    for (i, v) in read_jsonl(file)?.into_iter().enumerate() {
        let question = field(&v, "question");
        let expected: Vec<Expected> = v["expected"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e.as_str()).map(Expected::parse).collect())
            .unwrap_or_default();
        if question.trim().is_empty() || expected.is_empty() {
            return Err(EngineError::InvalidInput(format!(
                "{} line {}: each line needs \"question\" and a non-empty \"expected\" list of files",
                file.display(),
                i + 1
            )));
        }
        out.push((question, expected));
    }
    if out.is_empty() {
        return Err(EngineError::InvalidInput(format!("{} has no questions", file.display())));
    }
    Ok(out)
}

/// Scores one golden question's ranked passages: each expected item counts once, at the rank
/// of the first distinct (file, page) that satisfies it.
fn golden_scores(hits: &[Hit], expected: &[Expected]) -> (Sums, Option<usize>) {
    let mut seen = HashSet::new();
    let distinct: Vec<&Hit> = hits.iter().filter(|h| seen.insert((h.path.clone(), h.anchor.page))).collect();
    let mut found = vec![false; expected.len()];
    let mut gains = Vec::new();
    let mut first = None;
    for (rank, h) in distinct.iter().enumerate() {
        let mut gain = 0.0;
        for (i, e) in expected.iter().enumerate() {
            if !found[i] && e.matches(h) {
                found[i] = true;
                gain = 1.0;
                first.get_or_insert(rank + 1);
                break;
            }
        }
        gains.push(gain);
    }
    let dcg = |k: usize| -> f64 { gains.iter().take(k).enumerate().map(|(i, g)| g / ((i + 2) as f64).log2()).sum() };
    let idcg: f64 = (0..expected.len().min(10)).map(|i| 1.0 / ((i + 2) as f64).log2()).sum();
    let within = |k: usize| gains.iter().take(k).filter(|g| **g > 0.0).count() as f64 / expected.len() as f64;
    let sums = Sums {
        ndcg: dcg(10) / idcg,
        r10: within(10),
        r100: within(100),
        mrr: first.map(|r| 1.0 / r as f64).unwrap_or(0.0),
    };
    (sums, first)
}

impl Engine {
    /// Indexes the dataset's corpus unless this exact corpus is already in this store.
    /// Returns (passages embedded, seconds).
    async fn ensure_beir_corpus(
        &self,
        data: &Beir,
        on_event: &(dyn Fn(IndexEvent) + Send + Sync),
    ) -> Result<(usize, f64), EngineError> {
        let _lock = self.writer_lock()?;
        let embedder = self.embedder().await?.clone();
        let store = self.store().await?;
        let started = Instant::now();
        let fingerprint = format!("{}:{}", cairn_ingest::hash_bytes(&data.corpus_bytes), embedder.id());
        let mut report = IndexReport::default();
        let mut embedded = 0;
        if self.db()?.setting("eval_corpus")?.as_deref() != Some(fingerprint.as_str()) {
            on_event(IndexEvent::Planned { to_check: data.corpus.len(), unchanged: 0, deleted: 0 });
            let mut batch = Vec::new();
            let mut batch_chunks = 0;
            for doc in &data.corpus {
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
        Ok((embedded, started.elapsed().as_secs_f64()))
    }

    /// Scores queries in every mode: vector only, full text only, hybrid (untuned fusion), and
    /// `ranked` with `ranker` over the fused candidates when one is given.
    async fn score_beir(
        &self,
        judged: &[(String, String)],
        qrels: &HashMap<String, HashMap<String, u32>>,
        ranker: Option<&cairn_rank::LinearRanker>,
    ) -> Result<Vec<ModeScores>, EngineError> {
        let embedder = self.embedder().await?.clone();
        let store = self.store().await?;
        let signals = match ranker {
            Some(_) => Some(crate::learn::FeedbackSignals::load(&*self.db()?, embedder.id())?),
            None => None,
        };
        let mut sums = [Sums::default(); 4];
        for (qid, text) in judged {
            let q = text.clone();
            let e = embedder.clone();
            let vector = tokio::task::spawn_blocking(move || e.embed_query(&q))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))??;
            // Documents have several chunks: ask for more chunks than documents needed.
            let (by_vector, by_text) = tokio::join!(store.vector_search(&vector, 300), store.text_search(text, 300));
            let (by_vector, by_text) = (by_vector?, by_text?);
            let fused = cairn_retrieve::fuse(&by_vector, &by_text, self.fusion, 600);
            let rel = &qrels[qid];
            sums[0].add(&doc_ranking(&fused), rel);
            sums[1].add(&doc_ranking(&cairn_retrieve::fuse(&by_vector, &[], self.fusion, 600)), rel);
            sums[2].add(&doc_ranking(&cairn_retrieve::fuse(&[], &by_text, self.fusion, 600)), rel);
            if let (Some(ranker), Some(signals)) = (ranker, signals.as_ref()) {
                // The ranker sees what a live search gives it (the same candidate depth, so
                // the same feature distributions); the deeper fused list follows for recall.
                let live = crate::CANDIDATES;
                let head = cairn_retrieve::fuse(
                    &by_vector[..live.min(by_vector.len())],
                    &by_text[..live.min(by_text.len())],
                    self.fusion,
                    usize::MAX,
                );
                let features = crate::learn::candidate_features(text, &vector, &head, signals, &|_| None);
                let mut ranked = crate::learn::apply_ranker(ranker, head, features);
                let seen: HashSet<String> = ranked.iter().map(|h| h.chunk_id.clone()).collect();
                ranked.extend(fused.into_iter().filter(|h| !seen.contains(&h.chunk_id)));
                sums[3].add(&doc_ranking(&ranked), rel);
            }
        }
        let mut modes = vec![
            sums[0].scores("hybrid", judged.len()),
            sums[1].scores("vector", judged.len()),
            sums[2].scores("text", judged.len()),
        ];
        if ranker.is_some() {
            modes.push(sums[3].scores("ranked", judged.len()));
        }
        Ok(modes)
    }

    /// Compares a stored run with the previous run on the same dataset.
    fn compare_runs(&self, dataset: &str, run_id: i64, now: &ModeScores) -> Result<Option<Comparison>, EngineError> {
        let Some(prev) = self.db()?.previous_eval_run(dataset, run_id)? else { return Ok(None) };
        let Ok(before) = serde_json::from_str::<ModeScores>(&prev.metrics) else { return Ok(None) };
        let changes = vec![
            ("nDCG@10".to_owned(), before.ndcg_at_10, now.ndcg_at_10),
            ("Recall@10".to_owned(), before.recall_at_10, now.recall_at_10),
            ("Recall@100".to_owned(), before.recall_at_100, now.recall_at_100),
            ("MRR".to_owned(), before.mrr, now.mrr),
        ];
        let regressions = changes.iter().filter(|(_, b, a)| a < &(b - 0.005)).map(|(m, _, _)| m.clone()).collect();
        Ok(Some(Comparison {
            previous_run: prev.id,
            previous_at_ms: prev.at_ms,
            previous_ranker: prev.ranker_version,
            changes,
            regressions,
        }))
    }

    fn answer_prompt_label(&self) -> String {
        let pinned = self.settings().ok().and_then(|s| s.answer.prompt_version);
        self.prompts()
            .ok()
            .and_then(|p| p.get(crate::ANSWER_PROMPT, pinned).ok().map(|p| p.label()))
            .unwrap_or_default()
    }

    /// Indexes the dataset's corpus (once per data folder and embedder: a second run reuses it)
    /// and scores the `split` queries. `max_queries` limits the run for quick checks. The run
    /// is stored with the ranker and prompt versions and compared with the previous one.
    pub async fn eval_beir(
        &self,
        dir: &Path,
        split: &str,
        max_queries: Option<usize>,
        on_event: &(dyn Fn(IndexEvent) + Send + Sync),
    ) -> Result<EvalReport, EngineError> {
        self.check_dataset_may_leave(dir, self.remote_use(None)?.as_deref())?;
        let data = Beir::read(dir)?;
        let qrels = qrels_for(dir, split)?;
        let (embedded, index_seconds) = self.ensure_beir_corpus(&data, on_event).await?;
        let mut judged = data.judged(&qrels);
        if let Some(n) = max_queries {
            judged.truncate(n);
        }
        let started = Instant::now();
        let (version, ranker) = self.active_ranker()?;
        let builtin = ranker == cairn_rank::LinearRanker::fusion_default();
        let modes = self.score_beir(&judged, &qrels, (!builtin).then_some(&ranker)).await?;
        let query_seconds = started.elapsed().as_secs_f64();
        let dataset_name = dir.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let headline = modes.iter().find(|m| m.mode == "ranked").unwrap_or(&modes[0]).clone();
        let prompt_version = self.answer_prompt_label();
        let key = format!("beir:{dataset_name}/{split}/{}", judged.len());
        let run = self.db()?.add_eval_run(
            &key,
            Some(version),
            Some(&prompt_version),
            &serde_json::to_string(&headline).unwrap_or_default(),
        )?;
        let previous = self.compare_runs(&key, run, &headline)?;
        Ok(EvalReport {
            dataset: dataset_name,
            split: split.to_owned(),
            documents: data.corpus.len(),
            queries: judged.len(),
            chunks_embedded: embedded,
            index_seconds,
            query_seconds,
            modes,
            ranker_version: version,
            prompt_version,
            previous,
        })
    }

    /// Scores a golden set against the user's own index with `ranker` (the active one when
    /// `None`); searches made here are not recorded as feedback events.
    pub(crate) async fn golden_scores(
        &self,
        file: &Path,
        ranker: Option<&cairn_rank::LinearRanker>,
    ) -> Result<ModeScores, EngineError> {
        Ok(self.golden_run(file, ranker).await?.0)
    }

    async fn golden_run(
        &self,
        file: &Path,
        ranker: Option<&cairn_rank::LinearRanker>,
    ) -> Result<(ModeScores, Vec<GoldenQuestion>), EngineError> {
        let golden = read_golden(file)?;
        let active;
        let ranker = match ranker {
            Some(r) => r,
            None => {
                active = self.active_ranker()?.1;
                &active
            }
        };
        let (embedder, store, _) = self.reader().await?;
        if store.count().await? == 0 {
            return Err(EngineError::NotIndexed);
        }
        let signals = crate::learn::FeedbackSignals::load(&*self.db()?, embedder.id())?;
        let mut total = Sums::default();
        let mut per_question = Vec::new();
        for (question, expected) in &golden {
            let q = question.clone();
            let e = embedder.clone();
            let vector = tokio::task::spawn_blocking(move || e.embed_query(&q))
                .await
                .map_err(|e| EngineError::Internal(e.to_string()))??;
            let (by_vector, by_text) =
                tokio::join!(store.vector_search(&vector, 100), store.text_search(question, 100));
            let fused = cairn_retrieve::fuse(&by_vector?, &by_text?, self.fusion, usize::MAX);
            let ages = crate::learn::file_ages(&*self.db()?, &fused);
            let features =
                crate::learn::candidate_features(question, &vector, &fused, &signals, &|p| ages.get(p).copied());
            let ranked = crate::learn::apply_ranker(ranker, fused, features);
            let (sums, first) = golden_scores(&ranked, expected);
            total.ndcg += sums.ndcg;
            total.r10 += sums.r10;
            total.r100 += sums.r100;
            total.mrr += sums.mrr;
            per_question.push(GoldenQuestion {
                question: question.clone(),
                expected: expected.iter().map(|e| e.label.clone()).collect(),
                first_rank: first,
                ndcg_at_10: sums.ndcg,
            });
        }
        Ok((total.scores("golden", golden.len()), per_question))
    }

    /// `cairn eval golden FILE`: the active ranker on the user's golden set, stored and
    /// compared with the previous run on the same file.
    pub async fn eval_golden(&self, file: &Path) -> Result<GoldenReport, EngineError> {
        let (version, _) = self.active_ranker()?;
        let (scores, per_question) = self.golden_run(file, None).await?;
        let key = format!("golden:{}", std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned()).display());
        let prompt_version = self.answer_prompt_label();
        let run = self.db()?.add_eval_run(
            &key,
            Some(version),
            Some(&prompt_version),
            &serde_json::to_string(&scores).unwrap_or_default(),
        )?;
        let previous = self.compare_runs(&key, run, &scores)?;
        let paths = self.db()?.all_paths()?;
        let mut unmatched = Vec::new();
        for (_, expected) in read_golden(file)? {
            for e in expected {
                if !paths.iter().any(|p| e.matches_file(p)) && !unmatched.contains(&e.label) {
                    unmatched.push(e.label);
                }
            }
        }
        Ok(GoldenReport {
            unmatched,
            file: file.display().to_string(),
            questions: per_question.len(),
            ranker_version: version,
            scores,
            per_question,
            previous,
        })
    }

    /// The learning proof on a BEIR dataset: feedback is simulated from the `train` qrels only
    /// (a user reading the top 20 passages of each question marks the relevant ones useful and
    /// up to three irrelevant ones above them not useful), Cairn's own retraining runs as
    /// configured plus once at each curve point, and the active ranker is measured on the
    /// `test` queries only. Erases this data folder's feedback and rankers first, so it refuses
    /// a data folder that has folders of documents registered.
    pub async fn eval_learning(
        &self,
        dir: &Path,
        curve: &[usize],
        max_test: Option<usize>,
        on_event: &(dyn Fn(IndexEvent) + Send + Sync),
        on_point: &(dyn Fn(&LearningPoint) + Send + Sync),
    ) -> Result<LearningReport, EngineError> {
        self.check_dataset_may_leave(dir, self.remote_use(None)?.as_deref())?;
        if !self.db()?.folders()?.is_empty() {
            return Err(EngineError::InvalidInput(
                "the learning simulation erases feedback and rankers: run it with its own --data-dir, \
                 not one with your folders"
                    .into(),
            ));
        }
        let data = Beir::read(dir)?;
        let train = qrels_for(dir, "train")?;
        let test = qrels_for(dir, "test")?;
        self.ensure_beir_corpus(&data, on_event).await?;
        // A query judged in both splits, or whose text is also a test query, is never trained on.
        let test_texts: HashSet<String> =
            data.judged(&test).iter().map(|(_, t)| crate::answer::normalize_question(t)).collect();
        let train_queries: Vec<(String, String)> = data
            .judged(&train)
            .into_iter()
            .filter(|(id, t)| !test.contains_key(id) && !test_texts.contains(&crate::answer::normalize_question(t)))
            .collect();
        let mut test_queries = data.judged(&test);
        if let Some(n) = max_test {
            test_queries.truncate(n);
        }
        self.db()?.clear_learning()?;
        self.db()?.delete_setting(crate::learn::PAUSED)?;
        let baseline = self.score_beir(&test_queries, &test, None).await?.remove(0);

        let mut points = Vec::new();
        let mut done = 0;
        let mut automatic = 0;
        let started = Instant::now();
        let mut targets: Vec<usize> = curve.iter().map(|n| (*n).min(train_queries.len())).collect();
        targets.sort_unstable();
        targets.dedup();
        for target in targets {
            for (qid, text) in &train_queries[done..target] {
                automatic += self.simulate_feedback(text, &train[qid]).await?;
            }
            done = target;
            let learn = self.train(crate::learn::Trigger::Asked).await?;
            let (version, ranker) = self.active_ranker()?;
            let test_scores = self.score_beir(&test_queries, &test, Some(&ranker)).await?;
            let (judged_events, judgements) = {
                let db = self.db()?;
                let events = db.judged_events()?;
                (events.len(), events.iter().map(|(_, f)| f.len()).sum())
            };
            let point = LearningPoint {
                train_queries: target,
                judged_events,
                judgements,
                learn,
                active_version: version,
                test: test_scores.into_iter().find(|m| m.mode == "ranked").unwrap_or_else(|| baseline.clone()),
            };
            on_point(&point);
            points.push(point);
        }
        Ok(LearningReport {
            dataset: dir.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default(),
            test_queries: test_queries.len(),
            baseline,
            points,
            automatic_retrains: automatic,
            simulate_seconds: started.elapsed().as_secs_f64(),
            rankers: self.rankers()?,
        })
    }

    /// One simulated user: search, read the top 20, judge. Returns 1 when the feedback
    /// triggered an automatic retraining.
    async fn simulate_feedback(&self, text: &str, relevant: &HashMap<String, u32>) -> Result<usize, EngineError> {
        const READ: usize = 20;
        let ranked = match self.search_for(text, READ, None).await {
            Ok(r) => r,
            Err(EngineError::InvalidInput(_)) => return Ok(0),
            Err(e) => return Err(e),
        };
        let Some(event) = ranked.event_id else { return Ok(0) };
        let doc = |h: &Hit| h.path.strip_prefix(KEY_PREFIX).unwrap_or(&h.path).to_owned();
        let first_relevant = ranked.hits.iter().position(|h| relevant.contains_key(&doc(h)));
        let mut judged_docs = HashSet::new();
        let mut judgements = Vec::new();
        for (i, h) in ranked.hits.iter().enumerate() {
            let d = doc(h);
            if !judged_docs.insert(d.clone()) {
                continue;
            }
            if relevant.contains_key(&d) {
                judgements.push((i + 1, cairn_db::Signal::Useful));
            } else if first_relevant.is_some_and(|f| i < f)
                && judgements.iter().filter(|(_, s)| *s == cairn_db::Signal::NotUseful).count() < 3
            {
                judgements.push((i + 1, cairn_db::Signal::NotUseful));
            }
        }
        let mut retrained = 0;
        for (n, signal) in judgements {
            if self.feedback(event, signal, Some(n), None).await?.retrained.is_some() {
                retrained += 1;
            }
        }
        Ok(retrained)
    }
}

/// Answer-level evaluation on SciFact-style claims: does the assistant cite the gold documents,
/// and does it hold back when the corpus holds no evidence (`NOT_ENOUGH_INFO`), by abstaining
/// on low confidence before any model runs or by the model declining?
#[derive(Clone, Debug, Serialize)]
pub struct AnswerEvalReport {
    pub claims_file: String,
    pub claims: usize,
    /// The model that answered (`provider (model)`), or why none did.
    pub answered_by: String,
    /// `[answer] min_confidence` during the run.
    pub min_confidence: f32,
    /// Claims with evidence in the corpus (SUPPORT / CONTRADICT labels).
    pub with_evidence: usize,
    /// Of the documents those answers cite, the share that are gold (micro average).
    pub cited_gold_share: f64,
    /// Answers to claims with evidence that cite at least one gold document.
    pub citing_gold: usize,
    /// Evidence claims Cairn abstained on (confidence below the threshold: wrongly held back),
    /// that the model declined (also wrongly), and answered citing nothing (unverifiable).
    pub evidence_abstained: usize,
    pub evidence_declined: usize,
    pub evidence_uncited: usize,
    /// Evidence claims answered but flagged for review (confidence below the threshold after
    /// checking the answer against its sources).
    pub evidence_flagged: usize,
    /// `NOT_ENOUGH_INFO` claims, and how each was treated.
    pub nei_claims: usize,
    /// Abstained on: retrieval confidence below the threshold, no model called (right).
    pub nei_abstained: usize,
    /// Declined by the model (right).
    pub nei_declined: usize,
    /// Answered with citations although the corpus holds no evidence (wrong).
    pub nei_answered: usize,
    /// Answered without citing anything (neither declined nor checkable).
    pub nei_uncited: usize,
    /// Answers to them, cited or not, flagged for review by their confidence (wrong, but
    /// caught for a person).
    pub nei_flagged: usize,
    /// Not abstained on and no model ran (`--no-llm`): the passages would go to a model.
    pub nei_passages: usize,
    /// Abstention by retrieval confidence alone at other thresholds, from the same run.
    pub sweep: Vec<AbstentionPoint>,
    pub seconds: f64,
    pub per_claim: Vec<ClaimResult>,
}

/// What abstaining below `threshold` (on retrieval confidence alone) does to each kind of claim.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AbstentionPoint {
    pub threshold: f32,
    /// Share of `NOT_ENOUGH_INFO` claims abstained on (the higher the better).
    pub nei_abstained: f64,
    /// Share of claims with evidence abstained on (lost answers: the lower the better).
    pub evidence_abstained: f64,
    /// The same among evidence claims whose gold document was among the sources found.
    pub found_evidence_abstained: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClaimResult {
    pub id: String,
    pub label: String,
    pub gold: Vec<String>,
    pub cited: Vec<String>,
    /// True when a gold document was among the sources retrieval found for the claim.
    pub gold_found: bool,
    /// `abstained`, `declined`, `cited`, `uncited` or `passages` (no model ran).
    pub outcome: String,
    /// Set when the answer's confidence put it in the review queue.
    pub flagged: bool,
    pub confidence: Option<crate::Confidence>,
    pub answer: String,
}

/// How an answer treated its claim: Cairn abstained (too little evidence to ask a model), the
/// model declined (said the sources do not hold the answer), cited sources, or wrote an answer
/// citing nothing; `passages` when no model ran and Cairn did not abstain.
pub(crate) fn outcome(a: &crate::Answer) -> &'static str {
    match a.mode {
        crate::AnswerMode::Abstained { .. } => "abstained",
        crate::AnswerMode::Passages { .. } => "passages",
        crate::AnswerMode::Generated { .. } if crate::confidence::is_decline(&a.text) => "declined",
        crate::AnswerMode::Generated { .. } if a.sources.is_empty() => "uncited",
        crate::AnswerMode::Generated { .. } => "cited",
    }
}

/// Abstention shares at each threshold, from the claims' retrieval confidence.
pub(crate) fn abstention_sweep(claims: &[ClaimResult], thresholds: &[f32]) -> Vec<AbstentionPoint> {
    let retrieval = |c: &ClaimResult| c.confidence.as_ref().map(|c| c.retrieval).unwrap_or(0.0);
    let share = |t: f32, pick: &dyn Fn(&ClaimResult) -> bool| {
        let group: Vec<&ClaimResult> = claims.iter().filter(|c| pick(c)).collect();
        let below = group.iter().filter(|c| retrieval(c) < t).count();
        if group.is_empty() { 0.0 } else { below as f64 / group.len() as f64 }
    };
    thresholds
        .iter()
        .map(|&t| AbstentionPoint {
            threshold: t,
            nei_abstained: share(t, &|c| c.gold.is_empty()),
            evidence_abstained: share(t, &|c| !c.gold.is_empty()),
            found_evidence_abstained: share(t, &|c| !c.gold.is_empty() && c.gold_found),
        })
        .collect()
}

impl Engine {
    /// Asks each claim of `claims_file` (SciFact's `claims_dev.jsonl` layout: id, claim,
    /// cited_doc_ids, evidence, label) against the dataset's corpus in this data folder
    /// (indexed first if needed) and scores the citations, the abstentions and the declines.
    /// With `LlmChoice::None` no model runs: only abstention by retrieval confidence is measured.
    pub async fn eval_answers(
        &self,
        dir: &Path,
        claims_file: &Path,
        limit: Option<usize>,
        llm: crate::LlmChoice,
        on_event: &(dyn Fn(IndexEvent) + Send + Sync),
        on_claim: &(dyn Fn(&ClaimResult) + Send + Sync),
    ) -> Result<AnswerEvalReport, EngineError> {
        self.check_dataset_may_leave(dir, self.remote_use(Some(&llm))?.as_deref())?;
        let data = Beir::read(dir)?;
        self.ensure_beir_corpus(&data, on_event).await?;
        let mut claims = read_jsonl(claims_file)?;
        if let Some(n) = limit {
            claims.truncate(n);
        }
        if claims.is_empty() {
            return Err(EngineError::InvalidInput(format!("{} has no claims", claims_file.display())));
        }
        let started = Instant::now();
        let min_confidence = self.effective_settings()?.answer.min_confidence;
        let mut report = AnswerEvalReport {
            claims_file: claims_file.display().to_string(),
            claims: claims.len(),
            answered_by: String::new(),
            min_confidence,
            with_evidence: 0,
            cited_gold_share: 0.0,
            citing_gold: 0,
            evidence_abstained: 0,
            evidence_declined: 0,
            evidence_uncited: 0,
            evidence_flagged: 0,
            nei_claims: 0,
            nei_abstained: 0,
            nei_declined: 0,
            nei_answered: 0,
            nei_flagged: 0,
            nei_uncited: 0,
            nei_passages: 0,
            sweep: Vec::new(),
            seconds: 0.0,
            per_claim: Vec::new(),
        };
        let (mut cited_total, mut cited_gold) = (0usize, 0usize);
        let doc = |c: &cairn_core::Citation| c.path.strip_prefix(KEY_PREFIX).unwrap_or(&c.path).to_owned();
        for c in &claims {
            let claim = field(c, "claim");
            let label = field(c, "label");
            if claim.trim().is_empty() {
                return Err(EngineError::InvalidInput(format!(
                    "{}: claim {} has no text",
                    claims_file.display(),
                    field(c, "id")
                )));
            }
            let gold: Vec<String> = c["evidence"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
            let question = format!("Is this claim true? {claim}");
            let opts = crate::AskOptions { llm: llm.clone(), use_cache: false, ..Default::default() };
            let answer = self.ask(&question, &opts, &|_| {}).await?;
            let generated = matches!(answer.mode, crate::AnswerMode::Generated { .. });
            // The first model that answered; until one does, why none did.
            let by = match &answer.mode {
                crate::AnswerMode::Generated { provider, model } => Some(format!("{provider} ({model})")),
                crate::AnswerMode::Passages { reason } => Some(format!("no model: {reason}")),
                crate::AnswerMode::Abstained { .. } => None,
            };
            if let Some(by) = by
                && (report.answered_by.is_empty() || generated && report.answered_by.starts_with("no model:"))
            {
                report.answered_by = by;
            }
            let cited: Vec<String> = if generated {
                answer.sources.iter().map(doc).collect::<HashSet<_>>().into_iter().collect()
            } else {
                Vec::new()
            };
            let gold_found = answer.considered.iter().chain(&answer.sources).any(|s| gold.contains(&doc(s)));
            let outcome = outcome(&answer);
            let flagged = generated && answer.needs_review;
            if gold.is_empty() {
                report.nei_claims += 1;
                report.nei_flagged += usize::from(flagged);
                match outcome {
                    "abstained" => report.nei_abstained += 1,
                    "declined" => report.nei_declined += 1,
                    "cited" => report.nei_answered += 1,
                    "passages" => report.nei_passages += 1,
                    _ => report.nei_uncited += 1,
                }
            } else {
                report.with_evidence += 1;
                report.evidence_flagged += usize::from(flagged);
                match outcome {
                    "abstained" => report.evidence_abstained += 1,
                    "declined" => report.evidence_declined += 1,
                    "uncited" => report.evidence_uncited += 1,
                    _ => {}
                }
                let hits = cited.iter().filter(|d| gold.contains(d)).count();
                cited_total += cited.len();
                cited_gold += hits;
                if hits > 0 {
                    report.citing_gold += 1;
                }
            }
            let result = ClaimResult {
                id: field(c, "id"),
                label,
                gold,
                cited,
                gold_found,
                outcome: outcome.to_owned(),
                flagged,
                confidence: answer.confidence.clone(),
                answer: answer.text.chars().take(400).collect(),
            };
            on_claim(&result);
            report.per_claim.push(result);
        }
        report.cited_gold_share = if cited_total == 0 { 0.0 } else { cited_gold as f64 / cited_total as f64 };
        let mut thresholds: Vec<f32> = (1..10).map(|i| i as f32 / 10.0).collect();
        if !thresholds.iter().any(|t| (t - min_confidence).abs() < 1e-6) {
            thresholds.push(min_confidence);
            thresholds.sort_by(f32::total_cmp);
        }
        report.sweep = abstention_sweep(&report.per_claim, &thresholds);
        if report.answered_by.is_empty() {
            report.answered_by = "no model: Cairn abstained on every claim".into();
        }
        report.seconds = started.elapsed().as_secs_f64();
        let (version, _) = self.active_ranker()?;
        let metrics = serde_json::json!({
            "cited_gold_share": report.cited_gold_share, "citing_gold": report.citing_gold,
            "with_evidence": report.with_evidence, "nei_claims": report.nei_claims,
            "nei_declined": report.nei_declined, "nei_answered": report.nei_answered,
            "nei_uncited": report.nei_uncited, "answered_by": report.answered_by,
            "min_confidence": min_confidence, "nei_abstained": report.nei_abstained,
            "nei_flagged": report.nei_flagged, "evidence_abstained": report.evidence_abstained,
            "evidence_flagged": report.evidence_flagged,
        });
        self.db()?.add_eval_run(
            &format!("answers:{}/{}", claims_file.display(), claims.len()),
            Some(version),
            Some(&self.answer_prompt_label()),
            &metrics.to_string(),
        )?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(gold: &[&str], gold_found: bool, retrieval: f32) -> ClaimResult {
        ClaimResult {
            id: String::new(),
            label: String::new(),
            gold: gold.iter().map(|g| g.to_string()).collect(),
            cited: Vec::new(),
            gold_found,
            outcome: String::new(),
            flagged: false,
            confidence: Some(crate::Confidence { retrieval, ..Default::default() }),
            answer: String::new(),
        }
    }

    #[test]
    fn the_abstention_sweep_counts_each_kind_of_claim_below_each_threshold() {
        let claims = [
            claim(&[], false, 0.1),
            claim(&[], false, 0.35),
            claim(&[], false, 0.8),
            claim(&["d1"], true, 0.25),
            claim(&["d2"], false, 0.15),
            claim(&["d3"], true, 0.9),
            claim(&["d4"], true, 0.6),
        ];
        let sweep = abstention_sweep(&claims, &[0.2, 0.5]);
        assert_eq!(sweep[0].nei_abstained, 1.0 / 3.0);
        assert_eq!(sweep[0].evidence_abstained, 0.25);
        assert_eq!(sweep[0].found_evidence_abstained, 0.0, "the one lost at 0.2 had no gold document found");
        assert_eq!(sweep[1].nei_abstained, 2.0 / 3.0);
        assert_eq!(sweep[1].evidence_abstained, 0.5);
        assert_eq!(sweep[1].found_evidence_abstained, 1.0 / 3.0);
    }

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
