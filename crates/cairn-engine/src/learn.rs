//! Learning from feedback: ranking with the active ranker, recording what each search showed,
//! taking feedback, retraining, and the ranker registry (promote only without regression,
//! roll back at will).
//!
//! Every search records an event: the question, its embedding, and its best candidates with
//! their feature vectors *as they were at that moment*, so training never re-runs old searches
//! and never sees feedback from the future. Training (`learn`) holds out every fifth judged
//! event, trains a candidate on the rest, and promotes it only when it ranks the held-out useful
//! sources higher than the active ranker does and does not lose on the user's golden set.

use crate::{Engine, EngineError};
use cairn_core::Hit;
use cairn_db::{Db, Signal};
use cairn_rank::{Event, FeedbackMetrics, Label, LinearRanker, StoredCandidate, TrainOptions};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// Candidates kept with each event for training (the ranked list's head).
const EVENT_CANDIDATES: usize = 50;
/// Every n-th judged event is held out to judge a candidate ranker.
const HOLD_OUT_EVERY: usize = 5;
/// Weight of an "opened" source as a useful judgement.
const OPENED_WEIGHT: f32 = 0.3;

/// Search results with the event feedback refers to.
#[derive(Clone, Debug, Serialize)]
pub struct Ranked {
    pub event_id: Option<i64>,
    pub ranker_version: i64,
    pub hits: Vec<Hit>,
    /// Set when the active ranker could not be used and the built-in one ranked instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// What the engine knows from feedback so far, loaded once per search (or per evaluation).
pub(crate) struct FeedbackSignals {
    docs: HashMap<String, (u32, u32)>,
    useful: Vec<(String, Vec<f32>)>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na.sqrt() * nb.sqrt()) }
}

impl FeedbackSignals {
    pub(crate) fn load(db: &Db, embedder: &str) -> Result<FeedbackSignals, EngineError> {
        Ok(FeedbackSignals { docs: db.document_feedback()?, useful: db.useful_question_vectors(embedder)? })
    }

    /// Per document: the highest similarity between `query` and a question it was useful for.
    fn neighbours(&self, query: &[f32]) -> HashMap<&str, f32> {
        let mut out: HashMap<&str, f32> = HashMap::new();
        for (path, v) in &self.useful {
            if v.len() != query.len() {
                continue;
            }
            let s = cosine(query, v);
            let e = out.entry(path.as_str()).or_insert(s);
            *e = e.max(s);
        }
        out
    }
}

fn file_label(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Feature vectors of fused candidates (see `cairn_rank::FEATURE_NAMES`).
pub(crate) fn candidate_features(
    query: &str,
    query_vector: &[f32],
    hits: &[Hit],
    signals: &FeedbackSignals,
    age_days: &dyn Fn(&str) -> Option<f32>,
) -> Vec<Vec<f32>> {
    let vector_scores = hits.iter().filter_map(|h| h.vector_score);
    let q = cairn_rank::QuerySignals {
        terms: cairn_rank::terms(query),
        top_vector: vector_scores.clone().fold(f32::MIN, f32::max).max(0.0),
        floor_vector: vector_scores.fold(f32::MAX, f32::min).min(1.0),
        top_text: hits.iter().filter_map(|h| h.text_score).fold(0.0, f32::max),
    };
    let neighbours = signals.neighbours(query_vector);
    hits.iter()
        .map(|h| {
            let title = format!("{} {}", h.context, file_label(&h.path));
            let heading = h.anchor.heading.join(" ");
            let (useful, not_useful) = signals.docs.get(&h.path).copied().unwrap_or((0, 0));
            cairn_rank::features(
                &q,
                &cairn_rank::CandidateSignals {
                    vector_rank: h.vector_rank,
                    vector_score: h.vector_score,
                    text_rank: h.text_rank,
                    text_score: h.text_score,
                    title: &title,
                    heading: &heading,
                    useful,
                    not_useful,
                    neighbour: neighbours.get(h.path.as_str()).copied(),
                    age_days: age_days(&h.path),
                    ordinal: h.ordinal,
                    chars: h.text.len(),
                },
            )
        })
        .collect()
}

/// Days since each candidate's file last changed, as the index recorded it (once per file).
pub(crate) fn file_ages(db: &Db, hits: &[Hit]) -> HashMap<String, f32> {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
    let mut ages = HashMap::new();
    for h in hits {
        if ages.contains_key(&h.path) {
            continue;
        }
        if let Ok(Some(row)) = db.file(&h.path) {
            ages.insert(h.path.clone(), ((now - row.mtime_ns) as f64 / 86_400e9) as f32);
        }
    }
    ages
}

/// Orders fused candidates by `ranker`; each hit's score becomes the ranker's score and its
/// features are kept for display.
pub(crate) fn apply_ranker(ranker: &LinearRanker, hits: Vec<Hit>, features: Vec<Vec<f32>>) -> Vec<Hit> {
    let order = ranker.order(&features);
    let mut slots: Vec<Option<(Hit, Vec<f32>)>> = hits.into_iter().zip(features).map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots[i].take())
        .map(|(mut h, f)| {
            h.score = ranker.score(&f);
            h.features = f;
            h
        })
        .collect()
}

/// A recorded search (or an answer's search), for history views.
#[derive(Clone, Debug, Serialize)]
pub struct SearchRecord {
    pub event_id: i64,
    pub at_ms: i64,
    pub query: String,
    pub question_id: Option<i64>,
    pub ranker_version: Option<i64>,
    pub judgements: i64,
}

/// Feedback as received.
#[derive(Clone, Debug, Serialize)]
pub struct FeedbackReceipt {
    pub feedback_id: i64,
    pub event_id: i64,
    pub signal: Signal,
    /// The source judged, for source-level feedback.
    pub path: Option<String>,
    /// Set when this feedback triggered a retraining.
    pub retrained: Option<LearnReport>,
    /// Set when a retraining was due but failed (the feedback is recorded all the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrain_error: Option<String>,
}

/// The outcome of a training run.
#[derive(Clone, Debug, Serialize)]
pub struct LearnReport {
    pub version: i64,
    /// `active` (promoted), `candidate` (kept, not promoted) or `rejected`.
    pub status: String,
    pub decision: String,
    pub train_events: usize,
    pub train_pairs: usize,
    pub train_ms: u64,
    /// Judged searches left out because their record could not be read.
    pub skipped_events: usize,
    pub metrics: RankerMetrics,
}

#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct RankerMetrics {
    pub held_out_events: usize,
    /// Held-out feedback: the active ranker's and the candidate's scores.
    pub held_out_active: Option<FeedbackMetrics>,
    pub held_out_candidate: Option<FeedbackMetrics>,
    /// Golden set nDCG@10: the active ranker's and the candidate's.
    pub golden_active: Option<f64>,
    pub golden_candidate: Option<f64>,
    /// Version of the ranker the candidate was compared with.
    pub compared_with: Option<i64>,
}

/// One registered ranker version.
#[derive(Clone, Debug, Serialize)]
pub struct RankerInfo {
    pub version: i64,
    pub created_ms: i64,
    pub status: String,
    pub train_events: i64,
    pub train_pairs: i64,
    pub train_ms: i64,
    pub decision: String,
    pub metrics: RankerMetrics,
    /// Feature weights on the standardised scale (which features this version trusts).
    pub weights: Vec<(String, f32)>,
}

/// Why a training runs: asked for (`cairn learn`) or by itself (feedback count, schedule).
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Trigger {
    Asked,
    Automatic,
}

/// Setting holding the version whose rollback paused automatic promotion.
pub(crate) const PAUSED: &str = "learning_paused_by_rollback";

const BUILT_IN: &str = "built in: reciprocal-rank fusion of the vector and full-text ranks (k = 60), untuned";

fn parse_ranker(json: &str, version: i64) -> Result<LinearRanker, EngineError> {
    let r: LinearRanker = serde_json::from_str::<LinearRanker>(json)
        .map_err(|e| EngineError::Internal(format!("ranker version {version} cannot be read: {e}")))?
        .upgraded();
    r.check().map_err(|e| EngineError::InvalidInput(format!("ranker version {version}: {e}")))?;
    Ok(r)
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl Engine {
    /// The ranker searches use, with its version. The built-in fusion ranker is version 1,
    /// registered on first use, so a rollback can always return to it.
    pub(crate) fn active_ranker(&self) -> Result<(i64, LinearRanker), EngineError> {
        let row = self.active_ranker_row()?;
        Ok((row.version, parse_ranker(&row.model, row.version)?))
    }

    /// Like `active_ranker`, but a stored ranker this build cannot use never stops searching:
    /// the built-in ranker stands in, with a warning saying so.
    fn ranker_for_search(&self) -> Result<(i64, LinearRanker, Option<String>), EngineError> {
        let row = self.active_ranker_row()?;
        Ok(match parse_ranker(&row.model, row.version) {
            Ok(r) => (row.version, r, None),
            Err(e) => {
                let builtin = self.db()?.rankers()?.first().map(|r| r.version).unwrap_or(1);
                let warning = format!(
                    "{e}; ranking with the built-in ranker (v{builtin}) instead: `cairn ranker rollback` or `cairn learn` fixes this"
                );
                (builtin, LinearRanker::fusion_default(), Some(warning))
            }
        })
    }

    fn active_ranker_row(&self) -> Result<cairn_db::RankerRow, EngineError> {
        let db = self.db()?;
        let row = match db.active_ranker()? {
            Some(r) => r,
            None => {
                let version = match db.rankers()?.first() {
                    Some(first) => first.version,
                    None => db.add_ranker(
                        "active",
                        &json(&LinearRanker::fusion_default()),
                        0,
                        0,
                        0,
                        "{}",
                        &json(&RankerMetrics::default()),
                        BUILT_IN,
                        0,
                    )?,
                };
                db.set_ranker_status(version, "active")?;
                db.ranker(version)?.ok_or_else(|| EngineError::Internal("the built-in ranker vanished".into()))?
            }
        };
        Ok(row)
    }

    /// Ranks fused candidates with the active ranker and records the event.
    pub(crate) fn rank_and_record(
        &self,
        query: &str,
        query_vector: &[f32],
        embedder_id: &str,
        fused: Vec<Hit>,
        limit: usize,
        question_id: Option<i64>,
    ) -> Result<Ranked, EngineError> {
        let (version, ranker, warning) = self.ranker_for_search()?;
        let features = {
            let db = self.db()?;
            let signals = FeedbackSignals::load(&db, embedder_id)?;
            let ages = file_ages(&db, &fused);
            candidate_features(query, query_vector, &fused, &signals, &|p| ages.get(p).copied())
        };
        let mut hits = apply_ranker(&ranker, fused, features);
        let stored: Vec<StoredCandidate> = hits
            .iter()
            .take(EVENT_CANDIDATES.max(limit))
            .map(|h| StoredCandidate {
                chunk_id: h.chunk_id.clone(),
                path: h.path.clone(),
                features: h.features.clone(),
            })
            .collect();
        hits.truncate(limit);
        let shown: Vec<&str> = hits.iter().map(|h| h.chunk_id.as_str()).collect();
        let db = self.db()?;
        let event_id =
            db.add_rank_event(question_id, query, embedder_id, query_vector, Some(version), &json(&stored))?;
        db.set_event_shown(event_id, &json(&shown))?;
        Ok(Ranked { event_id: Some(event_id), ranker_version: version, hits, warning })
    }

    /// Hybrid search ranked by the active ranker, with the event id feedback refers to.
    pub async fn search_ranked(&self, query: &str, limit: usize) -> Result<Ranked, EngineError> {
        self.search_for(query, limit, None).await
    }

    /// Records feedback on an answer or search (`event_id`): `up`/`down` on the whole answer, or
    /// `useful`/`not_useful`/`opened` on the source numbered `source` as it was shown. Retrains
    /// when `[learning] retrain_every` new judgements have come in since the last training.
    pub async fn feedback(
        &self,
        event_id: i64,
        signal: Signal,
        source: Option<usize>,
        comment: Option<&str>,
    ) -> Result<FeedbackReceipt, EngineError> {
        let (feedback_id, path) = {
            let db = self.db()?;
            let event = db.rank_event(event_id)?.ok_or_else(|| {
                EngineError::InvalidInput(format!("there is no answer or search {event_id} to give feedback on"))
            })?;
            match (signal, source) {
                (Signal::Up | Signal::Down, Some(_)) => {
                    return Err(EngineError::InvalidInput(format!(
                        "`{}` judges the whole answer; use `useful` or `not-useful` for one source",
                        signal.as_str()
                    )));
                }
                (Signal::Up | Signal::Down, None) if event.question_id.is_none() => {
                    return Err(EngineError::InvalidInput(format!(
                        "{event_id} is a search, not an answer: mark its results `useful N` or `not-useful N`"
                    )));
                }
                (Signal::Up | Signal::Down, None) => (db.add_feedback(event_id, signal, "", "", comment)?, None),
                (_, None) => {
                    return Err(EngineError::InvalidInput(format!(
                        "`{}` needs the number of the source it is about",
                        signal.as_str().replace('_', "-")
                    )));
                }
                (_, Some(n)) => {
                    let unreadable = |e: serde_json::Error| {
                        EngineError::Internal(format!("the record of {event_id} is damaged: {e}"))
                    };
                    let shown: Vec<String> = serde_json::from_str(&event.shown).map_err(unreadable)?;
                    let candidates: Vec<StoredCandidate> =
                        serde_json::from_str(&event.candidates).map_err(unreadable)?;
                    let chunk =
                        n.checked_sub(1).and_then(|i| shown.get(i)).filter(|c| !c.is_empty()).ok_or_else(|| {
                            let numbers: Vec<String> = shown
                                .iter()
                                .enumerate()
                                .filter(|(_, c)| !c.is_empty())
                                .map(|(i, _)| format!("[{}]", i + 1))
                                .collect();
                            EngineError::InvalidInput(format!(
                                "source {n} was not shown for {event_id}: it showed {}",
                                if numbers.is_empty() { "no sources".to_owned() } else { numbers.join(" ") }
                            ))
                        })?;
                    let path = candidates
                        .iter()
                        .find(|c| &c.chunk_id == chunk)
                        .map(|c| c.path.clone())
                        .ok_or_else(|| EngineError::Internal(format!("source {n} of {event_id} has no record")))?;
                    (db.add_feedback(event_id, signal, chunk, &path, comment)?, Some(path))
                }
            }
        };
        let every = self.settings()?.learning.retrain_every;
        let retrained = if every > 0 && matches!(signal, Signal::Useful | Signal::NotUseful | Signal::Opened) {
            let since = {
                let db = self.db()?;
                let upto = db.rankers()?.iter().map(|r| r.feedback_upto).max().unwrap_or(0);
                db.feedback_count_after(upto)?
            };
            if since >= i64::from(every) { Some(self.train(Trigger::Automatic).await) } else { None }
        } else {
            None
        };
        // The judgement is recorded whatever the retraining does; its failure is reported.
        let (retrained, retrain_error) = match retrained {
            Some(Ok(report)) => (Some(report), None),
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, None),
        };
        Ok(FeedbackReceipt { feedback_id, event_id, signal, path, retrained, retrain_error })
    }

    /// Judged events as training data: explicit judgements, and opened sources as weak ones.
    fn training_events(&self) -> Result<(Vec<Event>, i64, usize), EngineError> {
        let db = self.db()?;
        let upto = db.last_feedback_id()?;
        let mut out = Vec::new();
        let mut skipped = 0;
        for (event, feedback) in db.judged_events()? {
            let candidates: Vec<StoredCandidate> = match serde_json::from_str(&event.candidates) {
                Ok(c) => c,
                Err(_) => {
                    skipped += 1;
                    continue;
                }
            };
            let index: HashMap<&str, usize> =
                candidates.iter().enumerate().map(|(i, c)| (c.chunk_id.as_str(), i)).collect();
            let explicit: Vec<&str> = feedback
                .iter()
                .filter(|f| matches!(f.signal, Signal::Useful | Signal::NotUseful))
                .map(|f| f.chunk_id.as_str())
                .collect();
            let mut labels = Vec::new();
            for f in &feedback {
                let Some(&i) = index.get(f.chunk_id.as_str()) else { continue };
                match f.signal {
                    Signal::Useful => labels.push((i, Label::Useful, 1.0)),
                    Signal::NotUseful => labels.push((i, Label::NotUseful, 1.0)),
                    Signal::Opened if !explicit.contains(&f.chunk_id.as_str()) => {
                        labels.push((i, Label::Useful, OPENED_WEIGHT))
                    }
                    _ => {}
                }
            }
            if !labels.is_empty() {
                let shown_ids: Vec<String> = serde_json::from_str(&event.shown).unwrap_or_default();
                let shown = shown_ids.iter().filter_map(|c| index.get(c.as_str()).copied()).collect();
                out.push(Event { candidates, labels, shown });
            }
        }
        Ok((out, upto, skipped))
    }

    /// Trains a candidate ranker from all feedback so far and registers it: promoted when it
    /// beats the active ranker on held-out feedback without losing on the golden set,
    /// otherwise kept as a candidate (not enough evidence) or rejected (it would regress).
    pub async fn learn(&self) -> Result<LearnReport, EngineError> {
        // The same judgements would train the same ranker again.
        let last = self.db()?.rankers()?.into_iter().filter(|r| r.train_events > 0).last();
        if let Some(last) = last
            && last.feedback_upto >= self.db()?.last_feedback_id()?
        {
            return Err(EngineError::InvalidInput(format!(
                "no new feedback since v{} was trained on the same judgements: judge more sources first, \
                 or choose a version by hand (`cairn ranker promote N`)",
                last.version
            )));
        }
        self.train(Trigger::Asked).await
    }

    pub(crate) async fn train(&self, trigger: Trigger) -> Result<LearnReport, EngineError> {
        let started = Instant::now();
        // After a rollback, automatic retraining keeps its candidates without promoting them
        // (it would otherwise re-promote what the user just rolled back); asking resumes it.
        let paused = match trigger {
            Trigger::Asked => {
                self.db()?.delete_setting(PAUSED)?;
                None
            }
            Trigger::Automatic => self.db()?.setting(PAUSED)?,
        };
        let (events, upto, skipped_events) = self.training_events()?;
        let (train_set, held_out): (Vec<(usize, Event)>, Vec<(usize, Event)>) =
            events.into_iter().enumerate().partition(|(i, _)| (i + 1) % HOLD_OUT_EVERY != 0);
        let train_set: Vec<Event> = train_set.into_iter().map(|(_, e)| e).collect();
        let held_out: Vec<Event> = held_out.into_iter().map(|(_, e)| e).collect();
        let opts = TrainOptions::default();
        let (candidate, stats) = cairn_rank::train(&train_set, &opts).map_err(|e| {
            let thumbs_only = matches!(e, cairn_rank::TrainError::NoPairs) && upto > 0;
            EngineError::InvalidInput(if thumbs_only {
                "cannot train a ranker yet: thumbs on whole answers do not say which source helped; mark sources \
                 useful or not useful (`cairn feedback EVENT useful N`) on a few answers"
                    .to_owned()
            } else {
                format!("cannot train a ranker: {e}")
            })
        })?;
        let train_ms = started.elapsed().as_millis() as u64;

        let (active_version, active) = self.active_ranker()?;
        let mut metrics = RankerMetrics { compared_with: Some(active_version), ..Default::default() };
        let before = cairn_rank::evaluate(&active, &held_out);
        let after = cairn_rank::evaluate(&candidate, &held_out);
        metrics.held_out_events = after.events;
        let improves = after.events > 0 && after.ndcg_at_10 > before.ndcg_at_10 + 1e-9;
        let regresses = after.events > 0 && after.ndcg_at_10 < before.ndcg_at_10 - 1e-9;
        metrics.held_out_active = Some(before.clone());
        metrics.held_out_candidate = Some(after.clone());

        let settings = self.settings()?;
        let mut golden_drop = None;
        if let Some(golden) = settings.learning.golden_set.as_deref() {
            let golden = self.config.data_dir.join(golden);
            let named = |e: EngineError| {
                EngineError::InvalidInput(format!("[learning] golden_set = {} in settings.toml: {e}", golden.display()))
            };
            let a = self.golden_ndcg(&golden, &active).await.map_err(named)?;
            let c = self.golden_ndcg(&golden, &candidate).await.map_err(named)?;
            metrics.golden_active = Some(a);
            metrics.golden_candidate = Some(c);
            if c < a - settings.learning.golden_tolerance - 1e-9 {
                golden_drop = Some((a, c));
            }
        }
        let (status, decision) = if let Some((a, c)) = golden_drop {
            ("rejected", format!("rejected: golden-set nDCG@10 would fall from {a:.4} to {c:.4}"))
        } else if after.events == 0 {
            ("candidate", "kept as a candidate: no held-out feedback to judge it on yet".to_owned())
        } else if let Some(rolled_back) = paused.as_deref().filter(|_| improves) {
            (
                "candidate",
                format!(
                    "not promoted: held-out nDCG@10 {:.4} → {:.4}, but automatic promotion is paused since v{rolled_back} \
                     was rolled back; `cairn learn` or `cairn ranker promote` resumes it",
                    before.ndcg_at_10, after.ndcg_at_10
                ),
            )
        } else if improves {
            (
                "active",
                format!(
                    "promoted over v{active_version}: held-out nDCG@10 {:.4} → {:.4}, MRR {:.4} → {:.4} on {} events",
                    before.ndcg_at_10, after.ndcg_at_10, before.mrr, after.mrr, after.events
                ),
            )
        } else if regresses {
            (
                "rejected",
                format!(
                    "rejected: held-out nDCG@10 would fall from {:.4} to {:.4} on {} events",
                    before.ndcg_at_10, after.ndcg_at_10, after.events
                ),
            )
        } else {
            ("candidate", format!("kept as a candidate: no gain over v{active_version} on held-out feedback"))
        };
        let mut db = self.db()?;
        let version = db.add_ranker(
            if status == "active" { "candidate" } else { status },
            &json(&candidate),
            stats.events as i64,
            stats.pairs as i64,
            upto,
            &json(&serde_json::json!({"kind": "linear-pairwise-logistic", "l2": opts.l2,
                "implicit_weight": opts.implicit_weight,
                "hold_out_every": HOLD_OUT_EVERY, "loss": stats.loss, "iterations": stats.iterations})),
            &json(&metrics),
            &decision,
            train_ms as i64,
        )?;
        if status == "active" {
            db.promote_ranker(version, "trained")?;
        }
        Ok(LearnReport {
            version,
            status: status.to_owned(),
            decision,
            train_events: stats.events,
            train_pairs: stats.pairs,
            train_ms,
            skipped_events,
            metrics,
        })
    }

    /// The scheduled retraining: trains when `[learning] retrain_hours` have passed since the
    /// last training and feedback has come in since; `None` when it is not due (or when the new
    /// feedback holds nothing to learn from, such as thumbs only).
    pub async fn learn_if_due(&self) -> Result<Option<LearnReport>, EngineError> {
        let hours = self.settings()?.learning.retrain_hours;
        if hours <= 0.0 {
            return Ok(None);
        }
        let (new_feedback, last_ms) = {
            let db = self.db()?;
            let rows = db.rankers()?;
            let upto = rows.iter().map(|r| r.feedback_upto).max().unwrap_or(0);
            (db.feedback_count_after(upto)?, rows.iter().map(|r| r.created_ms).max().unwrap_or(0))
        };
        let due = (cairn_db::now_ms() - last_ms) as f64 >= hours * 3_600_000.0;
        if new_feedback == 0 || !due {
            return Ok(None);
        }
        match self.train(Trigger::Automatic).await {
            Ok(report) => Ok(Some(report)),
            Err(EngineError::InvalidInput(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The latest recorded searches, newest first, with how many judgements each received.
    pub fn searches(&self, limit: usize) -> Result<Vec<SearchRecord>, EngineError> {
        Ok(self
            .db()?
            .recent_events(limit)?
            .into_iter()
            .map(|(e, judgements)| SearchRecord {
                event_id: e.id,
                at_ms: e.at_ms,
                query: e.query,
                question_id: e.question_id,
                ranker_version: e.ranker_version,
                judgements,
            })
            .collect())
    }

    pub fn rankers(&self) -> Result<Vec<RankerInfo>, EngineError> {
        self.active_ranker_row()?;
        let rows = self.db()?.rankers()?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let model: Option<LinearRanker> = serde_json::from_str(&r.model).ok();
                RankerInfo {
                    version: r.version,
                    created_ms: r.created_ms,
                    status: r.status,
                    train_events: r.train_events,
                    train_pairs: r.train_pairs,
                    train_ms: r.train_ms,
                    decision: r.decision,
                    metrics: serde_json::from_str(&r.metrics).unwrap_or_default(),
                    weights: model.map(|m| m.features.into_iter().zip(m.weights).collect()).unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Makes `version` the active ranker by hand (the one it replaces is retired). Returns
    /// false when it was active already.
    pub fn promote_ranker(&self, version: i64) -> Result<bool, EngineError> {
        let mut db = self.db()?;
        let row =
            db.ranker(version)?.ok_or_else(|| EngineError::InvalidInput(format!("there is no ranker v{version}")))?;
        parse_ranker(&row.model, version)?;
        if row.status == "active" {
            return Ok(false);
        }
        db.promote_ranker(version, "by hand")?;
        db.delete_setting(PAUSED)?;
        Ok(true)
    }

    /// Undoes the latest promotion still standing: its ranker is marked `rolled_back` and the
    /// one it replaced is active again; repeated rollbacks walk back through the promotions in
    /// order. Automatic retraining then stops promoting until the user runs `cairn learn` or
    /// promotes a version. Works even when the current ranker cannot be read. Returns the
    /// version now active.
    pub fn rollback_ranker(&self) -> Result<i64, EngineError> {
        let current = self.active_ranker_row()?;
        let mut db = self.db()?;
        let nothing = || {
            EngineError::InvalidInput(format!(
                "v{} is active and no promotion is left to undo: there is nothing to roll back to",
                current.version
            ))
        };
        let last = db.last_activation()?.filter(|a| a.version == current.version).ok_or_else(nothing)?;
        let previous = last.previous.and_then(|v| db.ranker(v).ok().flatten()).ok_or_else(nothing)?;
        parse_ranker(&previous.model, previous.version)?;
        db.undo_activation(last.id, current.version, previous.version)?;
        db.set_setting(PAUSED, &current.version.to_string())?;
        Ok(previous.version)
    }

    /// nDCG@10 of `ranker` on a golden set (see `eval_golden`).
    async fn golden_ndcg(&self, file: &Path, ranker: &LinearRanker) -> Result<f64, EngineError> {
        Ok(self.golden_scores(file, Some(ranker)).await?.ndcg_at_10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str, path: &str, v: Option<u32>, t: Option<u32>) -> Hit {
        Hit {
            chunk_id: id.into(),
            path: path.into(),
            ordinal: 0,
            text: "text".into(),
            anchor: Default::default(),
            score: 0.0,
            vector_rank: v,
            vector_score: v.map(|r| 1.0 - r as f32 / 100.0),
            text_rank: t,
            text_score: t.map(|r| 10.0 / r as f32),
            context: String::new(),
            features: Vec::new(),
        }
    }

    #[test]
    fn the_default_ranker_keeps_the_fused_order_and_scores() {
        let hits = vec![
            hit("c", "/c", Some(3), Some(1)),
            hit("b", "/b", Some(2), Some(3)),
            hit("a", "/a", Some(1), None),
            hit("d", "/d", None, Some(2)),
        ];
        let signals = FeedbackSignals { docs: HashMap::new(), useful: Vec::new() };
        let f = candidate_features("q", &[1.0, 0.0], &hits, &signals, &|_| None);
        let ranked = apply_ranker(&LinearRanker::fusion_default(), hits, f);
        let order: Vec<&str> = ranked.iter().map(|h| h.chunk_id.as_str()).collect();
        assert_eq!(order, ["c", "b", "a", "d"]);
        assert!((ranked[0].score - (1.0 / 63.0 + 1.0 / 61.0)).abs() < 1e-6);
        assert_eq!(ranked[0].features.len(), cairn_rank::N_FEATURES);
    }

    #[test]
    fn neighbours_are_the_closest_earlier_question_per_document() {
        let signals = FeedbackSignals {
            docs: HashMap::new(),
            useful: vec![("/a".into(), vec![1.0, 0.0]), ("/a".into(), vec![0.6, 0.8]), ("/b".into(), vec![0.0, 1.0])],
        };
        let n = signals.neighbours(&[1.0, 0.0]);
        assert!((n["/a"] - 1.0).abs() < 1e-6);
        assert!(n["/b"].abs() < 1e-6);
        assert!(signals.neighbours(&[1.0, 0.0, 0.0]).is_empty(), "another model's vectors are ignored");
    }
}
