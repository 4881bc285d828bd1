//! The ranker: a linear score over standardised features, trained pairwise.
//!
//! Why pairwise: feedback says "this source was useful, that one was not" about passages shown
//! together for one question. Those are relative judgements, on a handful of passages per
//! question, with no complete relevance list: exactly what a pairwise loss uses, and it needs no
//! per-question calibration (a BM25 of 12 means different things for different questions).
//! Listwise losses want every shown passage judged; pointwise ones would learn how "easy" each
//! question was. Why linear: thirteen features, a few hundred to a few thousand judged pairs;
//! a linear model trains in milliseconds with Newton's method (deterministic, no learning
//! rate), cannot overfit far with an L2 penalty, and its weights can be read and shown to the
//! user in a "why these sources" view.

use crate::features::{FEATURE_NAMES, N_FEATURES, StoredCandidate};
use serde::{Deserialize, Serialize};

/// A linear ranker: `score(x) = Σ weights[i] · (x[i] - mean[i]) / scale[i]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearRanker {
    pub features: Vec<String>,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    pub weights: Vec<f32>,
}

impl LinearRanker {
    /// The untuned default: exactly reciprocal-rank fusion (k = 60, equal weights) of the two
    /// retrievers, expressed as a ranker: its score is the fused score `1/(60+r_v) + 1/(60+r_t)`
    /// and it orders candidates as `cairn_retrieve::fuse` does.
    pub fn fusion_default() -> LinearRanker {
        let mut weights = vec![0.0; N_FEATURES];
        weights[0] = 1.0 / 60.0; // vector_rr = 60 / (60 + rank)
        weights[1] = 1.0 / 60.0; // text_rr
        LinearRanker {
            features: FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            mean: vec![0.0; N_FEATURES],
            scale: vec![1.0; N_FEATURES],
            weights,
        }
    }

    /// A ranker stored by an earlier build, whose features are a prefix of this build's (they
    /// are append-only): the new features get weight 0, so it ranks exactly as it did.
    pub fn upgraded(mut self) -> LinearRanker {
        let n = self.features.len();
        let prefix = n < N_FEATURES
            && self.mean.len() == n
            && self.scale.len() == n
            && self.weights.len() == n
            && self.features.iter().zip(FEATURE_NAMES).all(|(a, b)| a == b);
        if prefix {
            self.features.extend(FEATURE_NAMES[n..].iter().map(|s| (*s).to_owned()));
            self.mean.resize(N_FEATURES, 0.0);
            self.scale.resize(N_FEATURES, 1.0);
            self.weights.resize(N_FEATURES, 0.0);
        }
        self
    }

    /// Refuses a ranker whose feature list is not the engine's (another build wrote it).
    pub fn check(&self) -> Result<(), String> {
        let names: Vec<&str> = self.features.iter().map(String::as_str).collect();
        if names != FEATURE_NAMES {
            return Err(format!("the ranker was trained on features {names:?}, this build computes {FEATURE_NAMES:?}"));
        }
        if self.mean.len() != N_FEATURES || self.scale.len() != N_FEATURES || self.weights.len() != N_FEATURES {
            return Err("the ranker's parameter lists do not match its features".into());
        }
        if self.weights.iter().chain(&self.mean).chain(&self.scale).any(|v| !v.is_finite()) {
            return Err("the ranker has non-finite parameters".into());
        }
        Ok(())
    }

    pub fn score(&self, x: &[f32]) -> f32 {
        x.iter().zip(&self.mean).zip(&self.scale).zip(&self.weights).map(|(((x, m), s), w)| w * (x - m) / s).sum()
    }

    /// Candidate indices, best first. Ties keep the given order (the fused order).
    pub fn order(&self, candidates: &[Vec<f32>]) -> Vec<usize> {
        let scores: Vec<f32> = candidates.iter().map(|x| self.score(x)).collect();
        let mut idx: Vec<usize> = (0..candidates.len()).collect();
        idx.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
        idx
    }

    /// Each feature's weight on its original scale (weight / scale), for display.
    pub fn contributions(&self, x: &[f32]) -> Vec<(String, f32)> {
        self.features
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), self.weights[i] * (x[i] - self.mean[i]) / self.scale[i]))
            .collect()
    }
}

/// A judgement on one shown candidate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Label {
    Useful,
    NotUseful,
}

/// One question's candidates in the order they were shown, with the judgements received.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Event {
    pub candidates: Vec<StoredCandidate>,
    /// (candidate index, label, weight). A weight below 1 marks a weaker signal (an opened
    /// source, a thumbs-up on the whole answer).
    pub labels: Vec<(usize, Label, f32)>,
    /// Indices of the candidates the user was shown (the sources under an answer, the hits of
    /// a search): what they looked at and left unmarked counts as less useful than what they
    /// marked useful.
    #[serde(default)]
    pub shown: Vec<usize>,
}

impl Event {
    fn positives(&self) -> impl Iterator<Item = (usize, f32)> + '_ {
        self.labels.iter().filter(|(_, l, _)| *l == Label::Useful).map(|(i, _, w)| (*i, *w))
    }
}

#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// L2 penalty per unit of pair weight.
    pub l2: f64,
    /// Weight of "a passage the user was shown and left unmarked is less useful than the one
    /// they marked useful" pairs, relative to an explicit not-useful mark.
    pub implicit_weight: f32,
    pub max_iterations: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions { l2: 1e-2, implicit_weight: 0.5, max_iterations: 30 }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainStats {
    pub events: usize,
    pub pairs: usize,
    pub iterations: usize,
    /// Final mean pairwise logistic loss (ln 2 = no better than chance).
    pub loss: f64,
}

#[derive(Debug, PartialEq)]
pub enum TrainError {
    /// No event has both a useful passage and something to compare it with.
    NoPairs,
    BadFeatures(String),
}

impl std::fmt::Display for TrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrainError::NoPairs => {
                f.write_str("no feedback to learn from yet: mark sources useful or not useful on a few answers first")
            }
            TrainError::BadFeatures(m) => write!(f, "stored features do not fit this build: {m}"),
        }
    }
}

/// (better, worse, weight) pairs of candidate indices within each event.
fn pairs(events: &[Event], opts: &TrainOptions) -> Vec<(usize, usize, usize, f32)> {
    let mut out = Vec::new();
    for (e, ev) in events.iter().enumerate() {
        let positive_paths: Vec<&str> = ev.positives().map(|(i, _)| ev.candidates[i].path.as_str()).collect();
        let judged: Vec<usize> = ev.labels.iter().map(|(i, _, _)| *i).collect();
        for (p, wp) in ev.positives() {
            for (n, l, wn) in &ev.labels {
                if *l == Label::NotUseful {
                    out.push((e, p, *n, wp.min(*wn)));
                }
            }
            // Passages the user saw (above the useful one, or anywhere in what was shown) and
            // did not mark were less useful, unless they come from a document marked useful.
            // Explicit not-useful marks alone would teach "lower is better": people mark what
            // they read first, above what helped. The unmarked ones below balance that.
            for (u, c) in ev.candidates.iter().enumerate() {
                if u == p || judged.contains(&u) || positive_paths.contains(&c.path.as_str()) {
                    continue;
                }
                if u < p || ev.shown.contains(&u) {
                    out.push((e, p, u, wp * opts.implicit_weight));
                }
            }
        }
    }
    out
}

/// Trains a ranker on judged events. Deterministic: the same events give the same ranker.
pub fn train(events: &[Event], opts: &TrainOptions) -> Result<(LinearRanker, TrainStats), TrainError> {
    for ev in events {
        for c in &ev.candidates {
            if c.features.len() != N_FEATURES || c.features.iter().any(|v| !v.is_finite()) {
                return Err(TrainError::BadFeatures(format!(
                    "a stored candidate has {} features, this build has {N_FEATURES}",
                    c.features.len()
                )));
            }
        }
        if ev.labels.iter().any(|(i, _, _)| *i >= ev.candidates.len()) {
            return Err(TrainError::BadFeatures("a judgement points past the candidates".into()));
        }
    }
    let pairs = pairs(events, opts);
    if pairs.is_empty() {
        return Err(TrainError::NoPairs);
    }

    // Standardise over every stored candidate, so weights are comparable and the penalty fair.
    let rows: Vec<&Vec<f32>> = events.iter().flat_map(|e| e.candidates.iter().map(|c| &c.features)).collect();
    let n = rows.len() as f64;
    let mut mean = [0f64; N_FEATURES];
    for r in &rows {
        for (m, x) in mean.iter_mut().zip(r.iter()) {
            *m += f64::from(*x) / n;
        }
    }
    let mut var = [0f64; N_FEATURES];
    for r in &rows {
        for i in 0..N_FEATURES {
            var[i] += (f64::from(r[i]) - mean[i]).powi(2) / n;
        }
    }
    let scale: Vec<f64> = var.iter().map(|v| if v.sqrt() < 1e-6 { 1.0 } else { v.sqrt() }).collect();
    let z = |e: usize, i: usize| -> [f64; N_FEATURES] {
        let x = &events[e].candidates[i].features;
        let mut out = [0f64; N_FEATURES];
        for k in 0..N_FEATURES {
            out[k] = (f64::from(x[k]) - mean[k]) / scale[k];
        }
        out
    };
    let diffs: Vec<([f64; N_FEATURES], f64)> = pairs
        .iter()
        .map(|&(e, p, q, w)| {
            let (a, b) = (z(e, p), z(e, q));
            let mut d = [0f64; N_FEATURES];
            for k in 0..N_FEATURES {
                d[k] = a[k] - b[k];
            }
            (d, f64::from(w))
        })
        .collect();
    let total_weight: f64 = diffs.iter().map(|(_, w)| w).sum();
    let lambda = opts.l2 * total_weight;

    // Newton's method on the L2-penalised pairwise logistic loss.
    let mut w = [0f64; N_FEATURES];
    let mut iterations = 0;
    for _ in 0..opts.max_iterations {
        iterations += 1;
        let mut grad = [0f64; N_FEATURES];
        let mut hess = [[0f64; N_FEATURES]; N_FEATURES];
        for (d, pw) in &diffs {
            let s: f64 = d.iter().zip(&w).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-s).exp());
            for i in 0..N_FEATURES {
                grad[i] += pw * (p - 1.0) * d[i];
                for j in 0..N_FEATURES {
                    hess[i][j] += pw * p * (1.0 - p) * d[i] * d[j];
                }
            }
        }
        for i in 0..N_FEATURES {
            grad[i] += 2.0 * lambda * w[i];
            hess[i][i] += 2.0 * lambda;
        }
        let Some(step) = solve(hess, grad) else { break };
        let mut largest = 0f64;
        for i in 0..N_FEATURES {
            w[i] -= step[i];
            largest = largest.max(step[i].abs());
        }
        if largest < 1e-7 {
            break;
        }
    }
    let loss = diffs
        .iter()
        .map(|(d, pw)| {
            let s: f64 = d.iter().zip(&w).map(|(a, b)| a * b).sum();
            pw * (1.0 + (-s).exp()).ln()
        })
        .sum::<f64>()
        / total_weight;
    let ranker = LinearRanker {
        features: FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
        mean: mean.iter().map(|v| *v as f32).collect(),
        scale: scale.iter().map(|v| *v as f32).collect(),
        weights: w.iter().map(|v| *v as f32).collect(),
    };
    let used = events.iter().filter(|e| e.positives().next().is_some()).count();
    Ok((ranker, TrainStats { events: used, pairs: diffs.len(), iterations, loss }))
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting; `None` if singular.
fn solve(mut a: [[f64; N_FEATURES]; N_FEATURES], mut b: [f64; N_FEATURES]) -> Option<[f64; N_FEATURES]> {
    let n = N_FEATURES;
    for col in 0..n {
        let pivot = (col..n).max_by(|x, y| a[*x][col].abs().total_cmp(&a[*y][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row][col] / a[col][col];
            for k in col..n {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0f64; N_FEATURES];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

/// How well a ranker puts the documents marked useful first, in judged events. Scored by
/// document (each document at the rank of its best passage), as a user reads sources: which
/// of a useful document's passages comes first does not matter.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FeedbackMetrics {
    /// Events with at least one useful passage.
    pub events: usize,
    /// Mean reciprocal rank of the first useful document.
    pub mrr: f64,
    /// nDCG@10 with the useful documents as the relevant ones.
    pub ndcg_at_10: f64,
}

pub fn evaluate(ranker: &LinearRanker, events: &[Event]) -> FeedbackMetrics {
    let mut m = FeedbackMetrics::default();
    for ev in events {
        let mut useful: Vec<&str> = ev.positives().map(|(i, _)| ev.candidates[i].path.as_str()).collect();
        useful.sort_unstable();
        useful.dedup();
        if useful.is_empty() {
            continue;
        }
        let rows: Vec<Vec<f32>> = ev.candidates.iter().map(|c| c.features.clone()).collect();
        let mut documents: Vec<&str> = Vec::new();
        for i in ranker.order(&rows) {
            let path = ev.candidates[i].path.as_str();
            if !documents.contains(&path) {
                documents.push(path);
            }
        }
        let first = documents.iter().position(|d| useful.contains(d)).map(|p| p + 1);
        m.mrr += first.map(|r| 1.0 / r as f64).unwrap_or(0.0);
        let dcg: f64 = documents
            .iter()
            .take(10)
            .enumerate()
            .filter(|(_, d)| useful.contains(d))
            .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
            .sum();
        let idcg: f64 = (0..useful.len().min(10)).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
        m.ndcg_at_10 += dcg / idcg;
        m.events += 1;
    }
    if m.events > 0 {
        m.mrr /= m.events as f64;
        m.ndcg_at_10 /= m.events as f64;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::feature_index;

    fn cand(path: &str, f: &[(&str, f32)]) -> StoredCandidate {
        let mut features = vec![0.0; N_FEATURES];
        for (name, v) in f {
            features[feature_index(name).expect("known feature")] = *v;
        }
        StoredCandidate { chunk_id: format!("{path}#0"), path: path.into(), features }
    }

    /// Events where the useful passage is always the one with the strongest prior but never
    /// first by fusion: a trained ranker must learn to put it first.
    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let candidates = vec![
                    cand(&format!("a{i}"), &[("vector_rr", 0.98), ("text_rr", 0.97)]),
                    cand(&format!("b{i}"), &[("vector_rr", 0.96), ("text_rr", 0.95), ("prior", 1.5)]),
                    cand(&format!("c{i}"), &[("vector_rr", 0.95), ("prior", 0.2)]),
                    cand(&format!("d{i}"), &[("text_rr", 0.94), ("prior", -0.5)]),
                ];
                let labels = vec![(1, Label::Useful, 1.0), (0, Label::NotUseful, 1.0)];
                Event { candidates, labels, shown: vec![0, 1, 2] }
            })
            .collect()
    }

    #[test]
    fn the_default_ranker_is_reciprocal_rank_fusion() {
        let r = LinearRanker::fusion_default();
        assert!(r.check().is_ok());
        let rows = vec![
            cand("x", &[("vector_rr", 60.0 / 61.0)]).features,
            cand("y", &[("vector_rr", 60.0 / 63.0), ("text_rr", 60.0 / 62.0)]).features,
        ];
        // y is in both lists: 1/63 + 1/62 > 1/61.
        assert_eq!(r.order(&rows), [1, 0]);
        assert!((r.score(&rows[0]) - 1.0 / 61.0).abs() < 1e-7, "the score is the fused score");
    }

    #[test]
    fn training_learns_what_feedback_rewards_and_improves_held_out_events() {
        let train_set = events(40);
        let held_out = events(10);
        let before = evaluate(&LinearRanker::fusion_default(), &held_out);
        assert!((before.mrr - 0.5).abs() < 1e-9, "fusion puts the useful passage second: {before:?}");
        let (ranker, stats) = train(&train_set, &TrainOptions::default()).expect("trains");
        assert!(ranker.check().is_ok());
        assert!(stats.pairs >= 40 && stats.loss < 0.3, "{stats:?}");
        assert!(ranker.weights[feature_index("prior").expect("known")] > 0.0);
        let after = evaluate(&ranker, &held_out);
        assert_eq!(after.mrr, 1.0, "{after:?}");
        // Same data, same ranker.
        assert_eq!(train(&train_set, &TrainOptions::default()).expect("trains").0, ranker);
    }

    #[test]
    fn nothing_to_learn_from_is_a_clear_error() {
        let no_labels = vec![Event { candidates: events(1)[0].candidates.clone(), labels: vec![], shown: vec![0, 1] }];
        assert_eq!(train(&no_labels, &TrainOptions::default()).unwrap_err(), TrainError::NoPairs);
        assert!(TrainError::NoPairs.to_string().contains("mark sources useful"));
        let mut bad = events(1);
        bad[0].candidates[0].features.pop();
        assert!(matches!(train(&bad, &TrainOptions::default()), Err(TrainError::BadFeatures(_))));
    }

    #[test]
    fn a_ranker_from_another_feature_set_is_refused() {
        let mut r = LinearRanker::fusion_default();
        r.features[3] = "something_else".into();
        assert!(r.check().unwrap_err().contains("something_else"));
        let mut r = LinearRanker::fusion_default();
        r.weights[0] = f32::NAN;
        assert!(r.check().is_err());
    }

    #[test]
    fn a_ranker_from_before_a_feature_was_added_ranks_as_it_did() {
        let (trained, _) = train(&events(20), &TrainOptions::default()).expect("trains");
        let mut old = trained.clone();
        for v in [&mut old.mean, &mut old.scale, &mut old.weights] {
            v.pop();
        }
        old.features.pop();
        assert!(old.check().is_err(), "as stored, it does not fit");
        let up = old.clone().upgraded();
        assert!(up.check().is_ok());
        let rows: Vec<Vec<f32>> = events(1)[0].candidates.iter().map(|c| c.features.clone()).collect();
        let mut short = rows.clone();
        for r in &mut short {
            r.pop();
        }
        let score_old: Vec<f32> = short.iter().map(|x| old.score(x)).collect();
        let score_up: Vec<f32> = rows.iter().map(|x| up.score(x)).collect();
        assert_eq!(score_old, score_up);
        let mut renamed = old;
        renamed.features[0] = "other".into();
        assert!(renamed.upgraded().check().is_err(), "a different feature set is not a prefix");
    }

    #[test]
    fn unjudged_passages_from_a_useful_document_are_not_negatives() {
        let mut ev = events(1).remove(0);
        ev.candidates[0].path = ev.candidates[1].path.clone();
        ev.labels = vec![(1, Label::Useful, 1.0)];
        let p = pairs(&[ev], &TrainOptions::default());
        assert!(p.iter().all(|&(_, _, worse, _)| worse != 0), "{p:?}");
        assert_eq!(p.len(), 1, "c was shown and left unmarked; d was never shown: {p:?}");
        assert_eq!(p[0].2, 2);
    }
}
