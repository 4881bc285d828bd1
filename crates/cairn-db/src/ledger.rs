//! The cost ledger: one row per model call (chat, embedding, query embedding, provider test),
//! grouped under the question that caused it, with tokens, latency, dollars and outcome.
//!
//! Amounts are nanodollars as integers; `cost_nanos` is NULL when no price was known (the
//! call is still counted, and shown as unpriced). Grouping by calendar day is left to the
//! caller, who knows the user's time zone.

use crate::{Db, DbError};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// Generating an answer.
    Chat,
    /// Embedding passages while indexing.
    Embed,
    /// Embedding a question for search.
    EmbedQuery,
    /// `cairn providers test`.
    Probe,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Chat => "chat",
            CallKind::Embed => "embed",
            CallKind::EmbedQuery => "embed_query",
            CallKind::Probe => "probe",
        }
    }
    fn parse(s: &str) -> CallKind {
        match s {
            "embed" => CallKind::Embed,
            "embed_query" => CallKind::EmbedQuery,
            "probe" => CallKind::Probe,
            _ => CallKind::Chat,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
    /// Stopped by the user; whatever was generated is still billed.
    Cancelled,
    /// Not sent: a budget (or policy) said no. Costs nothing; `estimate_nanos` says what it
    /// would have cost.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Refused => "refused",
        }
    }
    fn parse(s: &str) -> Outcome {
        match s {
            "ok" => Outcome::Ok,
            "cancelled" => Outcome::Cancelled,
            "refused" => Outcome::Refused,
            _ => Outcome::Failed,
        }
    }
}

/// A call to record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    pub question_id: Option<i64>,
    pub at_ms: i64,
    pub kind: CallKind,
    /// The provider's name in settings (`local`, `ollama`, `openai`...).
    pub provider: String,
    pub model: String,
    /// `answer.v1`, for calls made from a prompt.
    pub prompt: Option<String>,
    pub prompt_hash: Option<String>,
    pub input_tokens: u64,
    pub cached_tokens: u64,
    pub output_tokens: u64,
    /// True when Cairn counted the tokens because the provider did not say.
    pub estimated: bool,
    pub latency_ms: u64,
    pub first_token_ms: Option<u64>,
    /// None: no price known for this model.
    pub cost_nanos: Option<i64>,
    /// The pre-flight estimate, for refused calls (and for comparison on others).
    pub estimate_nanos: Option<i64>,
    pub cache_hit: bool,
    /// What a cache hit saved: the cost of the call it replaced.
    pub saved_nanos: i64,
    pub outcome: Outcome,
    pub error_code: Option<String>,
    /// The folder an indexing call worked for.
    pub folder: Option<String>,
    pub attempts: u32,
}

/// A recorded call, with its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallRow {
    pub id: i64,
    #[serde(flatten)]
    pub call: CallRecord,
    /// The folders of the question's sources (for calls under a question).
    pub question_folders: Vec<String>,
}

const CALL_COLUMNS: &str = "c.id, c.question_id, c.at_ms, c.kind, c.provider, c.model, c.prompt, c.prompt_hash,
    c.input_tokens, c.cached_tokens, c.output_tokens, c.estimated, c.latency_ms, c.first_token_ms, c.cost_nanos,
    c.estimate_nanos, c.cache_hit, c.saved_nanos, c.outcome, c.error_code, c.folder, c.attempts, q.folders";

fn read_call(r: &rusqlite::Row<'_>) -> rusqlite::Result<CallRow> {
    let kind: String = r.get(3)?;
    let outcome: String = r.get(18)?;
    let folders: Option<String> = r.get(22)?;
    Ok(CallRow {
        id: r.get(0)?,
        call: CallRecord {
            question_id: r.get(1)?,
            at_ms: r.get(2)?,
            kind: CallKind::parse(&kind),
            provider: r.get(4)?,
            model: r.get(5)?,
            prompt: r.get(6)?,
            prompt_hash: r.get(7)?,
            input_tokens: r.get::<_, i64>(8)? as u64,
            cached_tokens: r.get::<_, i64>(9)? as u64,
            output_tokens: r.get::<_, i64>(10)? as u64,
            estimated: r.get(11)?,
            latency_ms: r.get::<_, i64>(12)? as u64,
            first_token_ms: r.get::<_, Option<i64>>(13)?.map(|v| v as u64),
            cost_nanos: r.get(14)?,
            estimate_nanos: r.get(15)?,
            cache_hit: r.get(16)?,
            saved_nanos: r.get(17)?,
            outcome: Outcome::parse(&outcome),
            error_code: r.get(19)?,
            folder: r.get(20)?,
            attempts: r.get(21)?,
        },
        question_folders: folders.and_then(|f| parse_list(&f)).unwrap_or_default(),
    })
}

fn parse_list(s: &str) -> Option<Vec<String>> {
    serde_json::from_str(s).ok()
}

fn list_json(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

impl Db {
    /// Starts a question in the ledger; its calls are recorded under the returned id.
    pub fn add_question(&self, text: &str, conversation_id: Option<i64>) -> Result<i64, DbError> {
        self.conn.execute(
            "INSERT INTO questions (at_ms, text, conversation_id) VALUES (?1, ?2, ?3)",
            params![crate::now_ms(), text, conversation_id],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records the folders a question's sources came from (for costs by folder).
    pub fn set_question_folders(&self, question_id: i64, folders: &[String]) -> Result<(), DbError> {
        self.conn
            .execute("UPDATE questions SET folders = ?2 WHERE id = ?1", params![question_id, list_json(folders)])?;
        Ok(())
    }

    pub fn record_call(&self, c: &CallRecord) -> Result<i64, DbError> {
        self.conn.execute(
            "INSERT INTO calls (question_id, at_ms, kind, provider, model, prompt, prompt_hash, input_tokens,
                cached_tokens, output_tokens, estimated, latency_ms, first_token_ms, cost_nanos, estimate_nanos,
                cache_hit, saved_nanos, outcome, error_code, folder, attempts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
            params![
                c.question_id,
                c.at_ms,
                c.kind.as_str(),
                c.provider,
                c.model,
                c.prompt,
                c.prompt_hash,
                c.input_tokens as i64,
                c.cached_tokens as i64,
                c.output_tokens as i64,
                c.estimated,
                c.latency_ms as i64,
                c.first_token_ms.map(|v| v as i64),
                c.cost_nanos,
                c.estimate_nanos,
                c.cache_hit,
                c.saved_nanos,
                c.outcome.as_str(),
                c.error_code,
                c.folder,
                c.attempts,
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Nanodollars spent in `[from_ms, to_ms)`, by every provider or by one. Refused calls
    /// cost nothing; unpriced calls count as zero.
    pub fn spent(&self, from_ms: i64, to_ms: i64, provider: Option<&str>) -> Result<i64, DbError> {
        let total: Option<i64> = self.conn.query_row(
            "SELECT SUM(cost_nanos) FROM calls WHERE at_ms >= ?1 AND at_ms < ?2 AND (?3 IS NULL OR provider = ?3)",
            params![from_ms, to_ms, provider],
            |r| r.get(0),
        )?;
        Ok(total.unwrap_or(0))
    }

    /// Every call in `[from_ms, to_ms)`, oldest first.
    pub fn calls(&self, from_ms: i64, to_ms: i64) -> Result<Vec<CallRow>, DbError> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls c LEFT JOIN questions q ON q.id = c.question_id
             WHERE c.at_ms >= ?1 AND c.at_ms < ?2 ORDER BY c.at_ms, c.id"
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map(params![from_ms, to_ms], read_call)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The calls made for one question.
    pub fn calls_for_question(&self, question_id: i64) -> Result<Vec<CallRow>, DbError> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls c LEFT JOIN questions q ON q.id = c.question_id
             WHERE c.question_id = ?1 ORDER BY c.id"
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map([question_id], read_call)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A question's text, if it is in the ledger.
    pub fn question_text(&self, question_id: i64) -> Result<Option<String>, DbError> {
        Ok(self.conn.query_row("SELECT text FROM questions WHERE id = ?1", [question_id], |r| r.get(0)).optional()?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn call(provider: &str, at_ms: i64, cost: Option<i64>, outcome: Outcome) -> CallRecord {
        CallRecord {
            question_id: None,
            at_ms,
            kind: CallKind::Chat,
            provider: provider.into(),
            model: "m".into(),
            prompt: Some("answer.v2".into()),
            prompt_hash: Some("abc".into()),
            input_tokens: 100,
            cached_tokens: 10,
            output_tokens: 20,
            estimated: false,
            latency_ms: 5,
            first_token_ms: Some(2),
            cost_nanos: cost,
            estimate_nanos: None,
            cache_hit: false,
            saved_nanos: 0,
            outcome,
            error_code: None,
            folder: None,
            attempts: 1,
        }
    }

    #[test]
    fn calls_are_kept_under_their_question_and_summed_by_window_and_provider() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("c.db")).unwrap();
        let q = db.add_question("What \"is\" it?", None).unwrap();
        db.set_question_folders(q, &["/docs/it's \"here\"".into(), "/b".into()]).unwrap();
        let mut a = call("openai", 1_000, Some(1_500), Outcome::Ok);
        a.question_id = Some(q);
        db.record_call(&a).unwrap();
        db.record_call(&call("anthropic", 2_000, Some(700), Outcome::Cancelled)).unwrap();
        db.record_call(&call("anthropic", 3_000, None, Outcome::Refused)).unwrap();
        db.record_call(&call("openai", 9_000, Some(1), Outcome::Ok)).unwrap();
        assert_eq!(db.spent(0, 5_000, None).unwrap(), 2_200);
        assert_eq!(db.spent(0, 5_000, Some("anthropic")).unwrap(), 700);
        assert_eq!(db.spent(0, 10_000, Some("openai")).unwrap(), 1_501);
        let rows = db.calls_for_question(q).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].call, a);
        assert_eq!(rows[0].question_folders, vec!["/docs/it's \"here\"".to_string(), "/b".into()]);
        let all = db.calls(0, 5_000).unwrap();
        assert_eq!(
            all.iter().map(|r| r.call.outcome).collect::<Vec<_>>(),
            [Outcome::Ok, Outcome::Cancelled, Outcome::Refused]
        );
        assert_eq!(db.question_text(q).unwrap().as_deref(), Some("What \"is\" it?"));
    }
}
