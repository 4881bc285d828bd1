//! Learning from feedback: what each search showed, what the user said about it, the ranker
//! versions trained from that, and evaluation runs.
//!
//! Candidates, ranker parameters and metrics are JSON written and read by the engine; this
//! module stores them as given and never interprets them.

use crate::{Db, DbError};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// A kind of feedback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Thumbs up / down on a whole answer.
    Up,
    Down,
    /// On one source.
    Useful,
    NotUseful,
    /// The user opened a source (implicit, weaker).
    Opened,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Up => "up",
            Signal::Down => "down",
            Signal::Useful => "useful",
            Signal::NotUseful => "not_useful",
            Signal::Opened => "opened",
        }
    }
    pub fn parse(s: &str) -> Option<Signal> {
        Some(match s {
            "up" => Signal::Up,
            "down" => Signal::Down,
            "useful" => Signal::Useful,
            "not_useful" => Signal::NotUseful,
            "opened" => Signal::Opened,
            _ => return None,
        })
    }
    /// The row's target: one answer-level judgement per event, one explicit judgement per
    /// source, and "opened" kept apart so opening a source never erases a judgement on it.
    fn target(self) -> &'static str {
        match self {
            Signal::Up | Signal::Down => "answer",
            Signal::Useful | Signal::NotUseful => "source",
            Signal::Opened => "opened",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RankEventRow {
    pub id: i64,
    pub at_ms: i64,
    pub question_id: Option<i64>,
    pub query: String,
    pub embedder: String,
    pub ranker_version: Option<i64>,
    /// JSON list of candidates in ranked order.
    pub candidates: String,
    /// JSON list of the chunk ids shown to the user, numbered from 1 in this order.
    pub shown: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FeedbackRow {
    pub id: i64,
    pub at_ms: i64,
    pub event_id: i64,
    pub signal: Signal,
    /// Empty for answer-level feedback.
    pub chunk_id: String,
    pub path: String,
    pub comment: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RankerRow {
    pub version: i64,
    pub created_ms: i64,
    /// `candidate`, `active`, `retired` or `rejected`.
    pub status: String,
    /// JSON of the model.
    pub model: String,
    pub train_events: i64,
    pub train_pairs: i64,
    /// The last feedback row id the training saw.
    pub feedback_upto: i64,
    pub params: String,
    pub metrics: String,
    /// Why it was promoted, kept as a candidate or rejected.
    pub decision: String,
    pub train_ms: i64,
}

/// One change of the active ranker: a promotion (automatic or by hand). A rollback undoes the
/// latest one still standing and reactivates the version it replaced.
#[derive(Clone, Debug, Serialize)]
pub struct ActivationRow {
    pub id: i64,
    pub at_ms: i64,
    pub version: i64,
    pub previous: Option<i64>,
    /// `trained` or `by hand`.
    pub how: String,
    pub undone: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalRunRow {
    pub id: i64,
    pub at_ms: i64,
    pub dataset: String,
    pub ranker_version: Option<i64>,
    pub prompt_version: Option<String>,
    pub metrics: String,
}

fn vector_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn blob_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn read_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<RankEventRow> {
    Ok(RankEventRow {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        question_id: r.get(2)?,
        query: r.get(3)?,
        embedder: r.get(4)?,
        ranker_version: r.get(5)?,
        candidates: r.get(6)?,
        shown: r.get(7)?,
    })
}

fn read_feedback(r: &rusqlite::Row<'_>) -> rusqlite::Result<FeedbackRow> {
    let signal: String = r.get(3)?;
    Ok(FeedbackRow {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        event_id: r.get(2)?,
        signal: Signal::parse(&signal).unwrap_or(Signal::Opened),
        chunk_id: r.get(4)?,
        path: r.get(5)?,
        comment: r.get(6)?,
    })
}

fn read_ranker(r: &rusqlite::Row<'_>) -> rusqlite::Result<RankerRow> {
    Ok(RankerRow {
        version: r.get(0)?,
        created_ms: r.get(1)?,
        status: r.get(2)?,
        model: r.get(3)?,
        train_events: r.get(4)?,
        train_pairs: r.get(5)?,
        feedback_upto: r.get(6)?,
        params: r.get(7)?,
        metrics: r.get(8)?,
        decision: r.get(9)?,
        train_ms: r.get(10)?,
    })
}

const EVENT_COLUMNS: &str = "id, at_ms, question_id, query, embedder, ranker_version, candidates, shown";
const FEEDBACK_COLUMNS: &str = "id, at_ms, event_id, signal, chunk_id, path, comment";
const RANKER_COLUMNS: &str =
    "version, created_ms, status, model, train_events, train_pairs, feedback_upto, params, metrics, decision, train_ms";

impl Db {
    /// Records what a search showed; returns the event id feedback refers to.
    pub fn add_rank_event(
        &self,
        question_id: Option<i64>,
        query: &str,
        embedder: &str,
        query_vector: &[f32],
        ranker_version: Option<i64>,
        candidates_json: &str,
    ) -> Result<i64, DbError> {
        self.conn.execute(
            "INSERT INTO rank_events (at_ms, question_id, query, embedder, query_vector, ranker_version, candidates)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                crate::now_ms(),
                question_id,
                query,
                embedder,
                vector_blob(query_vector),
                ranker_version,
                candidates_json
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records which passages the user was shown, in their displayed numbering.
    pub fn set_event_shown(&self, id: i64, shown_json: &str) -> Result<(), DbError> {
        self.conn.execute("UPDATE rank_events SET shown = ?2 WHERE id = ?1", params![id, shown_json])?;
        Ok(())
    }

    pub fn rank_event(&self, id: i64) -> Result<Option<RankEventRow>, DbError> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {EVENT_COLUMNS} FROM rank_events WHERE id = ?1"), [id], read_event)
            .optional()?)
    }

    /// The latest event recorded for a question (an answer's sources).
    pub fn rank_event_for_question(&self, question_id: i64) -> Result<Option<RankEventRow>, DbError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {EVENT_COLUMNS} FROM rank_events WHERE question_id = ?1 ORDER BY id DESC LIMIT 1"),
                [question_id],
                read_event,
            )
            .optional()?)
    }

    /// Records feedback; a new judgement of the same kind on the same answer or source
    /// replaces the old one (changing one's mind is not two votes).
    pub fn add_feedback(
        &self,
        event_id: i64,
        signal: Signal,
        chunk_id: &str,
        path: &str,
        comment: Option<&str>,
    ) -> Result<i64, DbError> {
        // Delete and insert rather than update, so the judgement gets a new id and counts as
        // new feedback for retraining; a comment given earlier is kept.
        let key = params![event_id, signal.target(), chunk_id];
        let old_comment: Option<String> = self
            .conn
            .query_row("SELECT comment FROM feedback WHERE event_id = ?1 AND target = ?2 AND chunk_id = ?3", key, |r| {
                r.get(0)
            })
            .optional()?
            .flatten();
        self.conn.execute("DELETE FROM feedback WHERE event_id = ?1 AND target = ?2 AND chunk_id = ?3", key)?;
        self.conn.execute(
            "INSERT INTO feedback (at_ms, event_id, target, chunk_id, path, signal, comment)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                crate::now_ms(),
                event_id,
                signal.target(),
                chunk_id,
                path,
                signal.as_str(),
                comment.map(str::to_owned).or(old_comment)
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn feedback_for_event(&self, event_id: i64) -> Result<Vec<FeedbackRow>, DbError> {
        let mut st =
            self.conn.prepare(&format!("SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE event_id = ?1 ORDER BY id"))?;
        let rows = st.query_map([event_id], read_feedback)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every event that received feedback, with its feedback, oldest first.
    pub fn judged_events(&self) -> Result<Vec<(RankEventRow, Vec<FeedbackRow>)>, DbError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM rank_events WHERE id IN (SELECT event_id FROM feedback) ORDER BY id"
        ))?;
        let events: Vec<RankEventRow> = st.query_map([], read_event)?.collect::<Result<_, _>>()?;
        let mut st = self.conn.prepare(&format!("SELECT {FEEDBACK_COLUMNS} FROM feedback ORDER BY event_id, id"))?;
        let mut feedback: std::collections::HashMap<i64, Vec<FeedbackRow>> = Default::default();
        for row in st.query_map([], read_feedback)? {
            let row = row?;
            feedback.entry(row.event_id).or_default().push(row);
        }
        Ok(events
            .into_iter()
            .map(|e| {
                let f = feedback.remove(&e.id).unwrap_or_default();
                (e, f)
            })
            .collect())
    }

    /// The latest `limit` events, newest first, each with how many judgements it received.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<(RankEventRow, i64)>, DbError> {
        let columns: Vec<String> = EVENT_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect();
        let mut st = self.conn.prepare(&format!(
            "SELECT {}, (SELECT COUNT(*) FROM feedback f WHERE f.event_id = e.id) FROM rank_events e
             ORDER BY e.id DESC LIMIT ?1",
            columns.join(", ")
        ))?;
        let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| Ok((read_event(r)?, r.get(8)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The highest feedback row id (0 when there is none): retraining counts what came after.
    pub fn last_feedback_id(&self) -> Result<i64, DbError> {
        Ok(self.conn.query_row("SELECT COALESCE(MAX(id), 0) FROM feedback", [], |r| r.get(0))?)
    }

    pub fn feedback_count_after(&self, id: i64) -> Result<i64, DbError> {
        Ok(self.conn.query_row("SELECT COUNT(*) FROM feedback WHERE id > ?1", [id], |r| r.get(0))?)
    }

    /// Per document: (useful, not useful) source judgements.
    pub fn document_feedback(&self) -> Result<std::collections::HashMap<String, (u32, u32)>, DbError> {
        let mut st = self.conn.prepare(
            "SELECT path, SUM(signal = 'useful'), SUM(signal = 'not_useful') FROM feedback
             WHERE target = 'source' GROUP BY path",
        )?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get::<_, u32>(1)?, r.get::<_, u32>(2)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (document, question vector) for every source marked useful, for questions embedded
    /// with `embedder`.
    pub fn useful_question_vectors(&self, embedder: &str) -> Result<Vec<(String, Vec<f32>)>, DbError> {
        let mut st = self.conn.prepare(
            "SELECT f.path, e.query_vector FROM feedback f JOIN rank_events e ON e.id = f.event_id
             WHERE f.signal = 'useful' AND e.embedder = ?1 AND e.query_vector IS NOT NULL",
        )?;
        let rows = st.query_map([embedder], |r| Ok((r.get::<_, String>(0)?, blob_vector(&r.get::<_, Vec<u8>>(1)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets every event and its feedback (the simulation starts from nothing).
    pub fn clear_learning(&self) -> Result<(), DbError> {
        self.conn.execute_batch("DELETE FROM feedback; DELETE FROM rank_events; DELETE FROM rankers;")?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn add_ranker(
        &self,
        status: &str,
        model: &str,
        train_events: i64,
        train_pairs: i64,
        feedback_upto: i64,
        params_json: &str,
        metrics: &str,
        decision: &str,
        train_ms: i64,
    ) -> Result<i64, DbError> {
        self.conn.execute(
            "INSERT INTO rankers (created_ms, status, model, train_events, train_pairs, feedback_upto, params, metrics, decision, train_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![crate::now_ms(), status, model, train_events, train_pairs, feedback_upto, params_json, metrics, decision, train_ms],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn rankers(&self) -> Result<Vec<RankerRow>, DbError> {
        let mut st = self.conn.prepare(&format!("SELECT {RANKER_COLUMNS} FROM rankers ORDER BY version"))?;
        let rows = st.query_map([], read_ranker)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn ranker(&self, version: i64) -> Result<Option<RankerRow>, DbError> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {RANKER_COLUMNS} FROM rankers WHERE version = ?1"), [version], read_ranker)
            .optional()?)
    }

    pub fn active_ranker(&self) -> Result<Option<RankerRow>, DbError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {RANKER_COLUMNS} FROM rankers WHERE status = 'active' ORDER BY version DESC LIMIT 1"),
                [],
                read_ranker,
            )
            .optional()?)
    }

    /// Makes `version` the only active ranker (the one it replaces becomes `retired`) and
    /// records the promotion, so a rollback can undo it.
    pub fn promote_ranker(&mut self, version: i64, how: &str) -> Result<(), DbError> {
        self.in_transaction(|db| {
            let previous: Option<i64> = db
                .conn
                .query_row("SELECT version FROM rankers WHERE status = 'active' AND version != ?1", [version], |r| {
                    r.get(0)
                })
                .optional()?;
            db.conn.execute(
                "UPDATE rankers SET status = 'retired' WHERE status = 'active' AND version != ?1",
                [version],
            )?;
            db.conn.execute("UPDATE rankers SET status = 'active' WHERE version = ?1", [version])?;
            db.conn.execute(
                "INSERT INTO ranker_activations (at_ms, version, previous, how) VALUES (?1, ?2, ?3, ?4)",
                params![crate::now_ms(), version, previous, how],
            )?;
            Ok(())
        })
    }

    /// The latest promotion not yet undone.
    pub fn last_activation(&self) -> Result<Option<ActivationRow>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, at_ms, version, previous, how, undone FROM ranker_activations
                 WHERE undone = 0 ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(ActivationRow {
                        id: r.get(0)?,
                        at_ms: r.get(1)?,
                        version: r.get(2)?,
                        previous: r.get(3)?,
                        how: r.get(4)?,
                        undone: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    /// Undoes promotion `activation`: its version becomes `rolled_back`, `previous` active.
    pub fn undo_activation(&mut self, activation: i64, version: i64, previous: i64) -> Result<(), DbError> {
        self.in_transaction(|db| {
            db.conn.execute("UPDATE ranker_activations SET undone = 1 WHERE id = ?1", [activation])?;
            db.conn.execute("UPDATE rankers SET status = 'rolled_back' WHERE version = ?1", [version])?;
            db.conn.execute("UPDATE rankers SET status = 'retired' WHERE status = 'active'", [])?;
            db.conn.execute("UPDATE rankers SET status = 'active' WHERE version = ?1", [previous])?;
            Ok(())
        })
    }

    pub fn set_ranker_status(&self, version: i64, status: &str) -> Result<(), DbError> {
        self.conn.execute("UPDATE rankers SET status = ?2 WHERE version = ?1", params![version, status])?;
        Ok(())
    }

    pub fn add_eval_run(
        &self,
        dataset: &str,
        ranker_version: Option<i64>,
        prompt_version: Option<&str>,
        metrics: &str,
    ) -> Result<i64, DbError> {
        self.conn.execute(
            "INSERT INTO eval_runs (at_ms, dataset, ranker_version, prompt_version, metrics) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![crate::now_ms(), dataset, ranker_version, prompt_version, metrics],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The latest run on `dataset` before `before_id` (the previous run, for a regression report).
    pub fn previous_eval_run(&self, dataset: &str, before_id: i64) -> Result<Option<EvalRunRow>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, at_ms, dataset, ranker_version, prompt_version, metrics FROM eval_runs
                 WHERE dataset = ?1 AND id < ?2 ORDER BY id DESC LIMIT 1",
                params![dataset, before_id],
                |r| {
                    Ok(EvalRunRow {
                        id: r.get(0)?,
                        at_ms: r.get(1)?,
                        dataset: r.get(2)?,
                        ranker_version: r.get(3)?,
                        prompt_version: r.get(4)?,
                        metrics: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("cairn.db")).expect("open");
        (dir, db)
    }

    #[test]
    fn a_changed_judgement_replaces_the_old_one_and_opening_keeps_it() {
        let (_d, db) = db();
        let e = db.add_rank_event(None, "q", "emb", &[0.5, -1.0], None, "[]").expect("event");
        db.add_feedback(e, Signal::Useful, "c1", "/a.md", None).expect("fb");
        db.add_feedback(e, Signal::Opened, "c1", "/a.md", None).expect("fb");
        let first = db.last_feedback_id().expect("id");
        db.add_feedback(e, Signal::NotUseful, "c1", "/a.md", Some("outdated")).expect("fb");
        assert!(db.last_feedback_id().expect("id") > first, "a changed judgement counts as new feedback");
        let rows = db.feedback_for_event(e).expect("rows");
        let signals: Vec<Signal> = rows.iter().map(|r| r.signal).collect();
        assert_eq!(signals, [Signal::Opened, Signal::NotUseful]);
        assert_eq!(db.document_feedback().expect("counts")["/a.md"], (0, 1));
        assert!(db.useful_question_vectors("emb").expect("vectors").is_empty());
        db.add_feedback(e, Signal::Useful, "c1", "/a.md", None).expect("fb");
        assert_eq!(db.useful_question_vectors("emb").expect("vectors"), [("/a.md".to_owned(), vec![0.5, -1.0])]);
        assert_eq!(db.judged_events().expect("events").len(), 1);
    }

    #[test]
    fn one_ranker_is_active_at_a_time_and_rollbacks_undo_promotions_in_order() {
        let (_d, mut db) = db();
        let a = db.add_ranker("active", "{}", 0, 0, 0, "{}", "{}", "built in", 0).expect("a");
        let b = db.add_ranker("candidate", "{}", 10, 40, 3, "{}", "{}", "trained", 5).expect("b");
        let c = db.add_ranker("candidate", "{}", 12, 44, 4, "{}", "{}", "trained", 5).expect("c");
        db.promote_ranker(b, "trained").expect("promote b");
        db.promote_ranker(c, "trained").expect("promote c");
        db.promote_ranker(a, "by hand").expect("promote a");
        let active = |db: &Db| db.active_ranker().expect("active").map(|r| r.version);
        assert_eq!(active(&db), Some(a));
        assert_eq!(db.ranker(c).expect("c").map(|r| r.status), Some("retired".to_owned()));
        // Undo a (back to c), undo c (back to b), undo b (back to a), then nothing.
        for (from, to) in [(a, c), (c, b), (b, a)] {
            let last = db.last_activation().expect("query").expect("a promotion to undo");
            assert_eq!((last.version, last.previous), (from, Some(to)));
            db.undo_activation(last.id, from, to).expect("undo");
            assert_eq!(active(&db), Some(to));
            assert_eq!(db.rankers().expect("rows").iter().filter(|r| r.status == "active").count(), 1);
        }
        assert!(db.last_activation().expect("query").is_none());
        assert_eq!(db.ranker(b).expect("b").map(|r| r.status), Some("rolled_back".to_owned()));
    }
}
