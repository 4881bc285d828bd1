//! The review queue: answers flagged for a person to check, automatically (low confidence) or
//! by the user, and the reviewer's verdict.
//!
//! Sources, reasons and the answer are stored as the engine gives them (JSON for lists), so a
//! review shows what the user saw even after the files change.

use crate::{Db, DbError};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// One flagged answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReviewRow {
    pub id: i64,
    pub created_ms: i64,
    /// The answer's search (what feedback refers to); `None` once that record is gone.
    pub event_id: Option<i64>,
    pub question_id: Option<i64>,
    pub question: String,
    pub answer: String,
    /// How the answer came about: `generated`, `abstained` or `passages`.
    pub mode: String,
    /// JSON list of the sources listed under the answer.
    pub sources: String,
    pub confidence: Option<f64>,
    /// JSON list of the confidence's reasons.
    pub reasons: String,
    /// `auto` (confidence below the threshold) or `user`.
    pub flagged_by: String,
    pub note: Option<String>,
    /// `open`, `right` or `wrong`.
    pub status: String,
    pub reviewer_note: Option<String>,
    pub resolved_ms: Option<i64>,
}

/// What a new flag records.
#[derive(Clone, Debug, Default)]
pub struct NewReview<'a> {
    pub event_id: Option<i64>,
    pub question_id: Option<i64>,
    pub question: &'a str,
    pub answer: &'a str,
    pub mode: &'a str,
    pub sources_json: &'a str,
    pub confidence: Option<f64>,
    pub reasons_json: &'a str,
    pub flagged_by: &'a str,
    pub note: Option<&'a str>,
}

const COLUMNS: &str = "id, created_ms, event_id, question_id, question, answer, mode, sources, confidence, \
                       reasons, flagged_by, note, status, reviewer_note, resolved_ms";

fn read_review(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReviewRow> {
    Ok(ReviewRow {
        id: r.get(0)?,
        created_ms: r.get(1)?,
        event_id: r.get(2)?,
        question_id: r.get(3)?,
        question: r.get(4)?,
        answer: r.get(5)?,
        mode: r.get(6)?,
        sources: r.get(7)?,
        confidence: r.get(8)?,
        reasons: r.get(9)?,
        flagged_by: r.get(10)?,
        note: r.get(11)?,
        status: r.get(12)?,
        reviewer_note: r.get(13)?,
        resolved_ms: r.get(14)?,
    })
}

impl Db {
    /// Flags an answer. An answer already in the queue (same event) keeps its one row: it is
    /// opened again, a user's flag is recorded as such, and a new note replaces the old one.
    /// Returns the review id and whether the row is new.
    pub fn flag_review(&self, r: &NewReview<'_>) -> Result<(i64, bool), DbError> {
        let existing: Option<i64> = match r.event_id {
            Some(event) => self
                .conn
                .query_row("SELECT id FROM reviews WHERE event_id = ?1 ORDER BY id LIMIT 1", [event], |row| row.get(0))
                .optional()?,
            None => None,
        };
        if let Some(id) = existing {
            self.conn.execute(
                "UPDATE reviews SET status = 'open', resolved_ms = NULL, note = COALESCE(?2, note),
                 flagged_by = CASE WHEN ?3 = 'user' THEN 'user' ELSE flagged_by END WHERE id = ?1",
                params![id, r.note, r.flagged_by],
            )?;
            return Ok((id, false));
        }
        self.conn.execute(
            "INSERT INTO reviews (created_ms, event_id, question_id, question, answer, mode, sources, confidence,
                                  reasons, flagged_by, note, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'open')",
            params![
                crate::now_ms(),
                r.event_id,
                r.question_id,
                r.question,
                r.answer,
                r.mode,
                r.sources_json,
                r.confidence,
                r.reasons_json,
                r.flagged_by,
                r.note
            ],
        )?;
        Ok((self.conn.last_insert_rowid(), true))
    }

    /// Reviews with `status` (every one when `None`), oldest first.
    pub fn reviews(&self, status: Option<&str>) -> Result<Vec<ReviewRow>, DbError> {
        let mut st =
            self.conn.prepare(&format!("SELECT {COLUMNS} FROM reviews WHERE ?1 IS NULL OR status = ?1 ORDER BY id"))?;
        let rows = st.query_map([status], read_review)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn review(&self, id: i64) -> Result<Option<ReviewRow>, DbError> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {COLUMNS} FROM reviews WHERE id = ?1"), [id], read_review)
            .optional()?)
    }

    /// Records the reviewer's verdict (`right` or `wrong`) and note.
    pub fn resolve_review(&self, id: i64, status: &str, note: Option<&str>) -> Result<(), DbError> {
        self.conn.execute(
            "UPDATE reviews SET status = ?2, reviewer_note = ?3, resolved_ms = ?4 WHERE id = ?1",
            params![id, status, note, crate::now_ms()],
        )?;
        Ok(())
    }

    /// The stored answer (JSON) of a question, from its conversation turn.
    pub fn answer_json_for_question(&self, question_id: i64) -> Result<Option<String>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT answer_json FROM turns WHERE question_id = ?1 ORDER BY id DESC LIMIT 1",
                [question_id],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_flag_is_one_row_per_answer_reopened_when_flagged_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("cairn.db")).unwrap();
        let q = db.add_question("when does the ferry leave", None).unwrap();
        let event = db.add_rank_event(Some(q), "when does the ferry leave", "m", &[0.0], Some(1), "[]").unwrap();
        let new = NewReview {
            event_id: Some(event),
            question_id: Some(q),
            question: "when does the ferry leave",
            answer: "At nine [1].",
            mode: "generated",
            sources_json: "[]",
            confidence: Some(0.1),
            reasons_json: "[]",
            flagged_by: "auto",
            note: None,
        };
        let (id, created) = db.flag_review(&new).unwrap();
        assert!(created);
        db.resolve_review(id, "wrong", Some("it leaves at seven")).unwrap();
        assert!(db.reviews(Some("open")).unwrap().is_empty());
        let again = db.flag_review(&NewReview { flagged_by: "user", note: Some("still wrong?"), ..new }).unwrap();
        assert_eq!(again, (id, false), "the same answer is not queued twice");
        let open = db.reviews(Some("open")).unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].flagged_by.as_str(), open[0].note.as_deref()), ("user", Some("still wrong?")));
        assert_eq!(open[0].resolved_ms, None);
        assert_eq!(db.reviews(None).unwrap().len(), 1);
    }
}
