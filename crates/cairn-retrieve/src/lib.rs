//! Ranking: fusing the vector and full-text candidate lists into one list of hits.
//!
//! Pure functions over candidates the store already returned: no I/O, no models. The learned
//! ranker will live here too, fed the same per-retriever ranks and scores kept on each `Hit`.

use cairn_core::Hit;
use cairn_store::StoredChunk;
use std::collections::HashMap;

/// Reciprocal-rank fusion parameters. With `k = 60` a first place is worth 1/61; weights let
/// one retriever count more than the other.
#[derive(Clone, Copy, Debug)]
pub struct Fusion {
    pub k: f32,
    pub vector_weight: f32,
    pub text_weight: f32,
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion { k: 60.0, vector_weight: 1.0, text_weight: 1.0 }
    }
}

/// Fuses the two ranked lists (best first) by weighted reciprocal rank and keeps `limit` hits.
/// Ties break by vector similarity, then by path and position, so results are deterministic.
pub fn fuse(vector: &[StoredChunk], text: &[StoredChunk], fusion: Fusion, limit: usize) -> Vec<Hit> {
    let mut by_id: HashMap<&str, Hit> = HashMap::new();
    let entry = |c: &StoredChunk| -> Hit {
        Hit {
            chunk_id: c.id.clone(),
            path: c.path.clone(),
            ordinal: c.ordinal,
            text: c.text.clone(),
            anchor: c.anchor.clone(),
            score: 0.0,
            vector_rank: None,
            vector_score: None,
            text_rank: None,
            text_score: None,
            context: c.context.clone(),
            features: Vec::new(),
        }
    };
    for (i, c) in vector.iter().enumerate() {
        let h = by_id.entry(&c.id).or_insert_with(|| entry(c));
        let rank = i as u32 + 1;
        h.vector_rank = Some(rank);
        h.vector_score = Some(c.score);
        h.score += fusion.vector_weight / (fusion.k + rank as f32);
    }
    for (i, c) in text.iter().enumerate() {
        let h = by_id.entry(&c.id).or_insert_with(|| entry(c));
        let rank = i as u32 + 1;
        h.text_rank = Some(rank);
        h.text_score = Some(c.score);
        h.score += fusion.text_weight / (fusion.k + rank as f32);
    }
    let mut hits: Vec<Hit> = by_id.into_values().collect();
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| b.vector_score.unwrap_or(-1.0).total_cmp(&a.vector_score.unwrap_or(-1.0)))
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.ordinal.cmp(&b.ordinal))
    });
    hits.truncate(limit);
    hits
}

/// Collapses chunk hits to documents (best chunk per path), keeping order. Used by evaluation,
/// where relevance is judged per document.
pub fn best_per_document(hits: &[Hit]) -> Vec<(String, f32)> {
    let mut seen = std::collections::HashSet::new();
    hits.iter().filter(|h| seen.insert(h.path.as_str())).map(|h| (h.path.clone(), h.score)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::Anchor;

    fn chunk(id: &str, score: f32) -> StoredChunk {
        StoredChunk {
            id: id.into(),
            path: format!("/{id}.txt"),
            file_hash: "h".into(),
            ordinal: 0,
            text: id.into(),
            context: String::new(),
            anchor: Anchor::default(),
            score,
        }
    }

    #[test]
    fn a_chunk_both_retrievers_like_beats_one_only_one_likes() {
        let vector = [chunk("a", 0.9), chunk("b", 0.8), chunk("c", 0.7)];
        let text = [chunk("c", 12.0), chunk("d", 9.0), chunk("b", 3.0)];
        let hits = fuse(&vector, &text, Fusion::default(), 10);
        let order: Vec<&str> = hits.iter().map(|h| h.chunk_id.as_str()).collect();
        // b: 1/62 + 1/63, c: 1/63 + 1/61 — c wins narrowly; both beat single-list a and d.
        assert_eq!(order, ["c", "b", "a", "d"]);
        let c = &hits[0];
        assert_eq!((c.vector_rank, c.text_rank), (Some(3), Some(1)));
        assert_eq!(fuse(&vector, &text, Fusion::default(), 2).len(), 2);
    }

    #[test]
    fn weights_shift_the_balance() {
        let vector = [chunk("a", 0.9)];
        let text = [chunk("d", 9.0)];
        let text_heavy = Fusion { text_weight: 2.0, ..Fusion::default() };
        assert_eq!(fuse(&vector, &text, text_heavy, 10)[0].chunk_id, "d");
        // Equal weights and equal ranks: the vector score breaks the tie.
        assert_eq!(fuse(&vector, &text, Fusion::default(), 10)[0].chunk_id, "a");
    }
}
