//! Caches: whole answers, and query vectors.
//!
//! An answer is cached under a key the engine derives from everything that shaped it (the
//! normalised question, the sources' chunk ids and content hashes, the model, the prompt
//! version and the parameters), so a changed passage can never be answered from the cache.
//! The paths of its sources are kept beside it, and an indexing pass that changes or deletes
//! one of those files removes the entry at once: nothing stale lingers on disk either.

use crate::{Db, DbError};
use rusqlite::{OptionalExtension, params};

/// A cached answer: the engine's own serialisation, and what producing it cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedAnswer {
    pub answer_json: String,
    pub cost_nanos: Option<i64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub latency_ms: u64,
    pub created_ms: i64,
    pub hits: u64,
}

/// Most query vectors kept; the least recently used go first.
const MAX_QUERY_VECTORS: i64 = 5_000;

impl Db {
    pub fn cached_answer(&self, key: &str) -> Result<Option<CachedAnswer>, DbError> {
        let row = self
            .conn
            .query_row(
                "SELECT answer, cost_nanos, input_tokens, output_tokens, latency_ms, created_ms, hits
                 FROM answer_cache WHERE key = ?1",
                [key],
                |r| {
                    Ok(CachedAnswer {
                        answer_json: r.get(0)?,
                        cost_nanos: r.get(1)?,
                        input_tokens: r.get::<_, i64>(2)? as u64,
                        output_tokens: r.get::<_, i64>(3)? as u64,
                        latency_ms: r.get::<_, i64>(4)? as u64,
                        created_ms: r.get(5)?,
                        hits: r.get::<_, i64>(6)? as u64,
                    })
                },
            )
            .optional()?;
        if row.is_some() {
            self.conn.execute("UPDATE answer_cache SET hits = hits + 1 WHERE key = ?1", [key])?;
        }
        Ok(row)
    }

    /// Stores an answer and the files its sources came from.
    pub fn put_cached_answer(&mut self, key: &str, answer: &CachedAnswer, paths: &[String]) -> Result<(), DbError> {
        self.in_transaction(|db| {
            db.conn.execute(
                "INSERT OR REPLACE INTO answer_cache
                    (key, answer, cost_nanos, input_tokens, output_tokens, latency_ms, created_ms, hits)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
                params![
                    key,
                    answer.answer_json,
                    answer.cost_nanos,
                    answer.input_tokens as i64,
                    answer.output_tokens as i64,
                    answer.latency_ms as i64,
                    answer.created_ms
                ],
            )?;
            for p in paths {
                db.conn
                    .execute("INSERT OR IGNORE INTO answer_cache_paths (key, path) VALUES (?1, ?2)", params![key, p])?;
            }
            Ok(())
        })
    }

    /// Forgets every cached answer that used a passage of `path`; returns how many.
    pub fn invalidate_answers_for(&self, path: &str) -> Result<usize, DbError> {
        Ok(self.conn.execute(
            "DELETE FROM answer_cache WHERE key IN (SELECT key FROM answer_cache_paths WHERE path = ?1)",
            [path],
        )?)
    }

    pub fn cached_answer_count(&self) -> Result<usize, DbError> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM answer_cache", [], |r| r.get(0))?;
        Ok(n as usize)
    }

    pub fn clear_answer_cache(&self) -> Result<usize, DbError> {
        Ok(self.conn.execute("DELETE FROM answer_cache", [])?)
    }

    /// A stored query vector for `embedder`, if this exact query was embedded before.
    pub fn query_vector(&self, embedder: &str, query: &str) -> Result<Option<Vec<f32>>, DbError> {
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT vector FROM query_vectors WHERE embedder = ?1 AND query = ?2",
                params![embedder, query],
                |r| r.get(0),
            )
            .optional()?;
        let Some(blob) = blob else { return Ok(None) };
        self.conn.execute(
            "UPDATE query_vectors SET used_ms = ?3 WHERE embedder = ?1 AND query = ?2",
            params![embedder, query, crate::now_ms()],
        )?;
        Ok(Some(blob.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
    }

    pub fn put_query_vector(&self, embedder: &str, query: &str, vector: &[f32]) -> Result<(), DbError> {
        let blob: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.conn.execute(
            "INSERT OR REPLACE INTO query_vectors (embedder, query, vector, used_ms) VALUES (?1, ?2, ?3, ?4)",
            params![embedder, query, blob, crate::now_ms()],
        )?;
        self.conn.execute(
            "DELETE FROM query_vectors WHERE rowid IN
                (SELECT rowid FROM query_vectors ORDER BY used_ms DESC LIMIT -1 OFFSET ?1)",
            [MAX_QUERY_VECTORS],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_answer_leaves_the_cache_when_a_file_it_used_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("c.db")).unwrap();
        let a = CachedAnswer {
            answer_json: "{}".into(),
            cost_nanos: Some(42),
            input_tokens: 10,
            output_tokens: 5,
            latency_ms: 900,
            created_ms: 1,
            hits: 0,
        };
        db.put_cached_answer("k1", &a, &["/d/a.md".into(), "/d/b.md".into()]).unwrap();
        db.put_cached_answer("k2", &a, &["/d/c.md".into()]).unwrap();
        assert_eq!(db.cached_answer("k1").unwrap().unwrap().hits, 0);
        assert_eq!(db.cached_answer("k1").unwrap().unwrap().hits, 1);
        assert_eq!(db.invalidate_answers_for("/d/b.md").unwrap(), 1);
        assert!(db.cached_answer("k1").unwrap().is_none());
        assert!(db.cached_answer("k2").unwrap().is_some());
        assert_eq!(db.cached_answer_count().unwrap(), 1);
    }

    #[test]
    fn query_vectors_round_trip_per_embedder() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db")).unwrap();
        db.put_query_vector("e1", "tax?", &[0.5, -1.25, 3.0]).unwrap();
        assert_eq!(db.query_vector("e1", "tax?").unwrap(), Some(vec![0.5, -1.25, 3.0]));
        assert_eq!(db.query_vector("e2", "tax?").unwrap(), None);
    }
}
