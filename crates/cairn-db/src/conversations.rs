//! Conversations: the turns of a chat, so a follow-up question is asked with its history and
//! the desktop app can show past conversations.

use crate::{Db, DbError};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConversationRow {
    pub id: i64,
    pub title: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub turns: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TurnRow {
    pub id: i64,
    pub conversation_id: i64,
    pub question_id: Option<i64>,
    pub question: String,
    /// The answer's text as shown.
    pub answer: String,
    /// The engine's full answer (sources, citations, model, cost), serialised.
    pub answer_json: String,
    pub at_ms: i64,
}

impl Db {
    /// Starts a conversation titled after its first question.
    pub fn add_conversation(&self, title: &str) -> Result<i64, DbError> {
        let now = crate::now_ms();
        self.conn.execute(
            "INSERT INTO conversations (title, created_ms, updated_ms) VALUES (?1, ?2, ?2)",
            params![title, now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn conversation(&self, id: i64) -> Result<Option<ConversationRow>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT c.id, c.title, c.created_ms, c.updated_ms, (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id)
                 FROM conversations c WHERE c.id = ?1",
                [id],
                read_conversation,
            )
            .optional()?)
    }

    /// Conversations, most recently used first.
    pub fn conversations(&self, limit: usize) -> Result<Vec<ConversationRow>, DbError> {
        let mut st = self.conn.prepare(
            "SELECT c.id, c.title, c.created_ms, c.updated_ms, (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id)
             FROM conversations c ORDER BY c.updated_ms DESC, c.id DESC LIMIT ?1",
        )?;
        let rows = st.query_map([limit as i64], read_conversation)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn add_turn(&self, t: &TurnRow) -> Result<i64, DbError> {
        self.conn.execute(
            "INSERT INTO turns (conversation_id, question_id, question, answer, answer_json, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![t.conversation_id, t.question_id, t.question, t.answer, t.answer_json, t.at_ms],
        )?;
        let id = self.conn.last_insert_rowid();
        self.conn
            .execute("UPDATE conversations SET updated_ms = ?2 WHERE id = ?1", params![t.conversation_id, t.at_ms])?;
        Ok(id)
    }

    /// A conversation's turns, oldest first.
    pub fn turns(&self, conversation_id: i64) -> Result<Vec<TurnRow>, DbError> {
        let mut st = self.conn.prepare(
            "SELECT id, conversation_id, question_id, question, answer, answer_json, at_ms
             FROM turns WHERE conversation_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([conversation_id], |r| {
            Ok(TurnRow {
                id: r.get(0)?,
                conversation_id: r.get(1)?,
                question_id: r.get(2)?,
                question: r.get(3)?,
                answer: r.get(4)?,
                answer_json: r.get(5)?,
                at_ms: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn delete_conversation(&self, id: i64) -> Result<bool, DbError> {
        Ok(self.conn.execute("DELETE FROM conversations WHERE id = ?1", [id])? > 0)
    }
}

fn read_conversation(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConversationRow> {
    Ok(ConversationRow {
        id: r.get(0)?,
        title: r.get(1)?,
        created_ms: r.get(2)?,
        updated_ms: r.get(3)?,
        turns: r.get::<_, i64>(4)? as usize,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn turns_come_back_in_order_and_go_with_their_conversation() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db")).unwrap();
        let c = db.add_conversation("Net sales").unwrap();
        for (i, q) in ["What were net sales?", "And the year before?"].iter().enumerate() {
            db.add_turn(&TurnRow {
                id: 0,
                conversation_id: c,
                question_id: None,
                question: (*q).into(),
                answer: format!("answer {i}"),
                answer_json: "{}".into(),
                at_ms: 10 + i as i64,
            })
            .unwrap();
        }
        let turns = db.turns(c).unwrap();
        assert_eq!(
            turns.iter().map(|t| t.question.as_str()).collect::<Vec<_>>(),
            ["What were net sales?", "And the year before?"]
        );
        let conv = db.conversation(c).unwrap().unwrap();
        assert_eq!((conv.turns, conv.updated_ms), (2, 11));
        assert!(db.delete_conversation(c).unwrap());
        assert!(db.turns(c).unwrap().is_empty());
    }
}
