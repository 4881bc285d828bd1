//! Features of a (question, passage) pair, computed from what retrieval already knows.
//!
//! Every feature is a plain number with a fixed meaning, so a stored feature vector can be read
//! back years later: the names are part of each ranker version, and a ranker whose names do not
//! match the engine's is refused rather than misapplied.

use serde::{Deserialize, Serialize};

/// Names of the features, in vector order. Append only: a new feature gets a new position.
pub const FEATURE_NAMES: [&str; 13] = [
    "vector_rr",     // 60 / (60 + vector rank); 0 when the vector retriever did not return it
    "text_rr",       // 60 / (60 + full-text rank); 0 when absent
    "vector_score",  // cosine similarity of question and passage (0 when unknown)
    "vector_gap",    // best cosine of this question minus this one (how far behind the leader)
    "text_norm",     // BM25 score / best BM25 score of this question (0 when absent)
    "both",          // 1 when both retrievers returned it
    "title_match",   // share of question terms found in the document's title or file name
    "heading_match", // share of question terms found in the passage's heading path
    "prior",         // ln(1 + useful marks) - ln(1 + not-useful marks) on this document
    "neighbour",     // highest cosine between this question and past questions it answered
    "recency",       // exp(-age / 1 year) of the file's last change; 0 when unknown
    "position",      // 1 / (1 + passage ordinal): the beginning of a document
    "length",        // ln(1 + characters) / 8
];

pub const N_FEATURES: usize = FEATURE_NAMES.len();

/// Index of a feature by name.
pub fn feature_index(name: &str) -> Option<usize> {
    FEATURE_NAMES.iter().position(|n| *n == name)
}

/// What is known about the question as a whole.
#[derive(Clone, Debug, Default)]
pub struct QuerySignals {
    /// Normalised terms of the question (see [`terms`]).
    pub terms: Vec<String>,
    /// Best cosine similarity among the vector candidates.
    pub top_vector: f32,
    /// Lowest cosine similarity among the vector candidates (the cut-off).
    pub floor_vector: f32,
    /// Best BM25 score among the full-text candidates.
    pub top_text: f32,
}

/// What is known about one candidate passage.
#[derive(Clone, Debug, Default)]
pub struct CandidateSignals<'a> {
    pub vector_rank: Option<u32>,
    pub vector_score: Option<f32>,
    pub text_rank: Option<u32>,
    pub text_score: Option<f32>,
    /// Document title and file name, as text.
    pub title: &'a str,
    /// Heading path of the passage, joined.
    pub heading: &'a str,
    /// Feedback on the document so far.
    pub useful: u32,
    pub not_useful: u32,
    /// Highest cosine similarity between this question and an earlier question for which this
    /// document was useful; `None` when it never was.
    pub neighbour: Option<f32>,
    /// Days since the file last changed, when known.
    pub age_days: Option<f32>,
    pub ordinal: u32,
    pub chars: usize,
}

/// Lower-cased alphanumeric words of two or more characters, without a few very common English
/// words, each reduced by a light suffix stripper so "filings" meets "filing".
pub fn terms(text: &str) -> Vec<String> {
    const STOP: &[&str] = &[
        "the", "and", "for", "are", "was", "were", "with", "that", "this", "from", "what", "which", "how", "has",
        "have", "had", "its", "his", "her", "their", "our", "your", "not", "but", "into", "can", "does", "did", "any",
        "all", "of", "in", "on", "to", "is", "it", "as", "by", "an", "or", "be", "at", "do", "if", "so",
    ];
    let mut out: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.chars().count() < 2 {
            continue;
        }
        let lower = word.to_lowercase();
        if STOP.contains(&lower.as_str()) {
            continue;
        }
        let t = stem(&lower);
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn stem(w: &str) -> String {
    let long_enough = |base: &str| base.chars().count() >= 3;
    let mut t = w;
    if let Some(base) = t.strip_suffix('s')
        && !base.ends_with('s')
        && long_enough(base)
    {
        t = base;
    }
    for suffix in ["ing", "ed", "e"] {
        if let Some(base) = t.strip_suffix(suffix)
            && long_enough(base)
        {
            t = base;
            break;
        }
    }
    t.to_owned()
}

fn share_found(query: &[String], text: &str) -> f32 {
    if query.is_empty() || text.is_empty() {
        return 0.0;
    }
    let found = terms(text);
    let hits = query.iter().filter(|t| found.contains(t)).count();
    hits as f32 / query.len() as f32
}

/// The feature vector of one candidate, in [`FEATURE_NAMES`] order.
pub fn features(q: &QuerySignals, c: &CandidateSignals<'_>) -> Vec<f32> {
    let rr = |rank: Option<u32>| rank.map(|r| 60.0 / (60.0 + r as f32)).unwrap_or(0.0);
    let vector_score = c.vector_score.unwrap_or(0.0);
    // A passage the vector retriever did not return scores at most its cut-off.
    let vector_gap = match c.vector_score {
        Some(s) => q.top_vector - s,
        None => q.top_vector - q.floor_vector + 0.05,
    };
    let text_norm = match (c.text_score, q.top_text > 0.0) {
        (Some(s), true) => s / q.top_text,
        _ => 0.0,
    };
    let both = if c.vector_rank.is_some() && c.text_rank.is_some() { 1.0 } else { 0.0 };
    let prior = (1.0 + c.useful as f32).ln() - (1.0 + c.not_useful as f32).ln();
    let recency = c.age_days.map(|d| (-d.max(0.0) / 365.0).exp()).unwrap_or(0.0);
    let v = vec![
        rr(c.vector_rank),
        rr(c.text_rank),
        vector_score,
        vector_gap,
        text_norm,
        both,
        share_found(&q.terms, c.title),
        share_found(&q.terms, c.heading),
        prior,
        c.neighbour.unwrap_or(0.0),
        recency,
        1.0 / (1.0 + c.ordinal as f32),
        (1.0 + c.chars as f32).ln() / 8.0,
    ];
    debug_assert_eq!(v.len(), N_FEATURES);
    // A NaN score from a retriever must not poison training or the stored event.
    v.into_iter().map(|x| if x.is_finite() { x } else { 0.0 }).collect()
}

/// A candidate as stored with a feedback event: enough to train on it later without running the
/// search again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredCandidate {
    pub chunk_id: String,
    pub path: String,
    pub features: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_normalised_and_deduplicated() {
        assert_eq!(terms("The Filings, filing and FILED taxes!"), ["fil", "tax"]);
        assert_eq!(terms("a of é"), Vec::<String>::new());
        assert_eq!(terms("Café résumés"), ["café", "résumé"]);
        assert_eq!(terms("revenue revenues glasses"), ["revenu", "glass"]);
    }

    #[test]
    fn features_reflect_ranks_matches_and_feedback() {
        let q = QuerySignals {
            terms: terms("quarterly revenue Heron"),
            top_vector: 0.8,
            floor_vector: 0.3,
            top_text: 10.0,
        };
        let strong = CandidateSignals {
            vector_rank: Some(1),
            vector_score: Some(0.8),
            text_rank: Some(2),
            text_score: Some(5.0),
            title: "heron-quarterly.md",
            heading: "Revenue",
            useful: 3,
            not_useful: 0,
            neighbour: Some(0.9),
            age_days: Some(0.0),
            ordinal: 0,
            chars: 800,
            ..Default::default()
        };
        let f = features(&q, &strong);
        assert_eq!(f.len(), N_FEATURES);
        let at = |name: &str| f[feature_index(name).expect("known feature")];
        assert!((at("vector_rr") - 60.0 / 61.0).abs() < 1e-6);
        assert!((at("text_norm") - 0.5).abs() < 1e-6);
        assert_eq!(at("both"), 1.0);
        assert!((at("title_match") - 2.0 / 3.0).abs() < 1e-6, "heron and quarterly are in the file name");
        assert!((at("heading_match") - 1.0 / 3.0).abs() < 1e-6);
        assert!(at("prior") > 1.3);
        assert_eq!(at("recency"), 1.0);
        assert_eq!(at("position"), 1.0);

        let absent = CandidateSignals { not_useful: 2, ..Default::default() };
        let g = features(&q, &absent);
        assert_eq!(g[feature_index("vector_rr").expect("known")], 0.0);
        assert!(g[feature_index("vector_gap").expect("known")] > 0.5, "behind the vector cut-off");
        assert!(g[feature_index("prior").expect("known")] < 0.0);
        assert_eq!(g[feature_index("neighbour").expect("known")], 0.0);
    }
}
