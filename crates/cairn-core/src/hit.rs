//! What retrieval returns (`Hit`) and what an answer points to (`Citation`).

use crate::Anchor;
use serde::{Deserialize, Serialize};

/// One ranked chunk. `score` is the fused score; the per-retriever ranks are kept so a user
/// (and later the learned ranker) can see why it ranked where it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub chunk_id: String,
    pub path: String,
    pub ordinal: u32,
    pub text: String,
    pub anchor: Anchor,
    pub score: f32,
    /// 1-based rank in the vector list, if the chunk was there.
    pub vector_rank: Option<u32>,
    /// Cosine similarity of the query and the chunk, if known.
    pub vector_score: Option<f32>,
    /// 1-based rank in the full-text list, if the chunk was there.
    pub text_rank: Option<u32>,
    /// BM25 score, if known.
    pub text_score: Option<f32>,
    /// The document's title or heading line the passage was embedded with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    /// The ranker's features for this passage (names in `cairn_rank::FEATURE_NAMES`), for a
    /// "why this source" view; empty before ranking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<f32>,
}

/// A numbered source as shown under an answer: `[n]` in the text refers to `number`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    pub number: u32,
    /// The passage, for feedback on this source.
    #[serde(default)]
    pub chunk_id: String,
    pub path: String,
    pub anchor: Anchor,
    pub snippet: String,
    /// The ranked score it had when it was chosen, and the ranker's features then (the "why
    /// these sources" view); absent in answers stored by earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<f32>,
}
