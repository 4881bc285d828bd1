//! Human review of answers: answers whose confidence fell below `[answer] min_confidence` are
//! queued automatically, users flag others, and a reviewer marks each right or wrong.
//!
//! A verdict is feedback like any other, given through `Engine::feedback` so retraining sees
//! it: *right* is a thumbs-up on the answer and marks each source it cited useful; *wrong* is a
//! thumbs-down and marks them not useful. Abstentions and passage lists cite nothing, so their
//! verdict is a thumbs-up or -down only.

use crate::answer::{Answer, AnswerMode};
use crate::{Engine, EngineError, FeedbackReceipt, LearnReport};
use cairn_core::{Citation, Hit};
use cairn_db::{NewReview, ReviewRow, Signal};
use serde::{Deserialize, Serialize};

/// Where a review stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewStatus {
    Open,
    Right,
    Wrong,
}

impl ReviewStatus {
    fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Open => "open",
            ReviewStatus::Right => "right",
            ReviewStatus::Wrong => "wrong",
        }
    }
    fn parse(s: &str) -> ReviewStatus {
        match s {
            "right" => ReviewStatus::Right,
            "wrong" => ReviewStatus::Wrong,
            _ => ReviewStatus::Open,
        }
    }
}

/// A reviewer's verdict on a flagged answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Right,
    Wrong,
}

/// A flagged answer as the reviewer sees it.
#[derive(Clone, Debug, Serialize)]
pub struct Review {
    pub id: i64,
    pub created_ms: i64,
    /// The answer's number for `cairn feedback`; `None` once its record is gone.
    pub event_id: Option<i64>,
    pub question_id: Option<i64>,
    pub question: String,
    pub answer: String,
    /// `generated`, `abstained` or `passages`.
    pub mode: String,
    /// The sources listed under the answer: those it cited, or the passages shown instead.
    pub sources: Vec<Citation>,
    pub confidence: Option<f32>,
    pub reasons: Vec<String>,
    /// `auto` (confidence below the threshold) or `user`.
    pub flagged_by: String,
    pub note: Option<String>,
    pub status: ReviewStatus,
    pub reviewer_note: Option<String>,
    pub resolved_ms: Option<i64>,
}

impl From<ReviewRow> for Review {
    fn from(r: ReviewRow) -> Review {
        Review {
            id: r.id,
            created_ms: r.created_ms,
            event_id: r.event_id,
            question_id: r.question_id,
            question: r.question,
            answer: r.answer,
            mode: r.mode,
            sources: serde_json::from_str(&r.sources).unwrap_or_default(),
            confidence: r.confidence.map(|c| c as f32),
            reasons: serde_json::from_str(&r.reasons).unwrap_or_default(),
            flagged_by: r.flagged_by,
            note: r.note,
            status: ReviewStatus::parse(&r.status),
            reviewer_note: r.reviewer_note,
            resolved_ms: r.resolved_ms,
        }
    }
}

/// What resolving a review did.
#[derive(Clone, Debug, Serialize)]
pub struct Resolution {
    pub review: Review,
    /// The feedback recorded for learning (none when the answer's record is gone).
    pub feedback: Vec<FeedbackReceipt>,
    /// Set when this feedback triggered a retraining.
    pub retrained: Option<LearnReport>,
}

fn mode_name(mode: &AnswerMode) -> &'static str {
    match mode {
        AnswerMode::Generated { .. } => "generated",
        AnswerMode::Abstained { .. } => "abstained",
        AnswerMode::Passages { .. } => "passages",
    }
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl Engine {
    /// Adds the support of a generated answer's statements (checked against the full text of
    /// `given`, numbered as the model saw them) to its retrieval confidence. Below
    /// `[answer] min_confidence` the answer is kept but marked `needs_review` and queued; a
    /// cancelled or cut-off answer is unfinished, so it is marked but not queued.
    pub(crate) fn assess_support(&self, answer: &mut Answer, given: &[&Hit]) -> Result<(), EngineError> {
        let texts: Vec<String> = given.iter().map(|h| format!("{}\n{}", h.context, h.text)).collect();
        let sources: Vec<&str> = texts.iter().map(String::as_str).collect();
        let retrieval = match answer.confidence.take() {
            Some(c) => c,
            None => {
                let hits: Vec<Hit> = given.iter().map(|h| (*h).clone()).collect();
                crate::confidence::from_retrieval(&answer.question, &hits)
            }
        };
        let confidence = crate::confidence::with_support(retrieval, &answer.text, &sources);
        let threshold = self.effective_settings()?.answer.min_confidence;
        answer.needs_review = confidence.score < threshold;
        answer.confidence = Some(confidence);
        if answer.needs_review && !answer.cancelled && answer.interrupted.is_none() {
            answer.review_id = Some(self.queue_for_review(answer, "auto", None)?.0);
        }
        Ok(())
    }

    /// Queues `answer` for review; `flagged_by` is `auto` or `user`. Returns the review id.
    pub(crate) fn queue_for_review(
        &self,
        answer: &Answer,
        flagged_by: &str,
        note: Option<&str>,
    ) -> Result<(i64, bool), EngineError> {
        let reasons: Vec<String> = answer.confidence.as_ref().map(|c| c.reasons.clone()).unwrap_or_default();
        Ok(self.db()?.flag_review(&NewReview {
            event_id: answer.event_id,
            question_id: answer.question_id,
            question: &answer.question,
            answer: &answer.text,
            mode: mode_name(&answer.mode),
            sources_json: &json(&answer.sources),
            confidence: answer.confidence.as_ref().map(|c| f64::from(c.score)),
            reasons_json: &json(&reasons),
            flagged_by,
            note,
        })?)
    }

    /// Flags the answer `event_id` (the number shown under it) for review, with an optional
    /// note on what looks wrong. Flagging an answer already queued reopens its review.
    pub fn flag_answer(&self, event_id: i64, note: Option<&str>) -> Result<Review, EngineError> {
        let answer = {
            let db = self.db()?;
            let event = db.rank_event(event_id)?.ok_or_else(|| {
                EngineError::InvalidInput(format!("there is no answer {event_id} to flag (see `cairn history`)"))
            })?;
            let question = event.question_id.ok_or_else(|| {
                EngineError::InvalidInput(format!(
                    "{event_id} is a search, not an answer: only answers can be flagged for review"
                ))
            })?;
            let stored = db.answer_json_for_question(question)?.ok_or_else(|| {
                EngineError::InvalidInput(format!("answer {event_id} was not recorded (it failed or was refused)"))
            })?;
            serde_json::from_str::<Answer>(&stored)
                .map_err(|e| EngineError::Internal(format!("the record of answer {event_id} is damaged: {e}")))?
        };
        let (id, _) = self.queue_for_review(&answer, "user", note)?;
        self.review(id)
    }

    /// One review by id.
    pub fn review(&self, id: i64) -> Result<Review, EngineError> {
        self.db()?.review(id)?.map(Review::from).ok_or_else(|| {
            EngineError::InvalidInput(format!("there is no review {id} (see `cairn review list --all`)"))
        })
    }

    /// Reviews with `status`, oldest first; every review when `None`.
    pub fn reviews(&self, status: Option<ReviewStatus>) -> Result<Vec<Review>, EngineError> {
        Ok(self.db()?.reviews(status.map(ReviewStatus::as_str))?.into_iter().map(Review::from).collect())
    }

    /// Records the reviewer's verdict and gives it to learning as feedback on the answer (and,
    /// for a generated answer, on each source it cited). Resolving again changes the verdict:
    /// the new judgements replace the old ones.
    pub async fn resolve_review(
        &self,
        id: i64,
        verdict: Verdict,
        note: Option<&str>,
    ) -> Result<Resolution, EngineError> {
        let review = self.review(id)?;
        let status = match verdict {
            Verdict::Right => ReviewStatus::Right,
            Verdict::Wrong => ReviewStatus::Wrong,
        };
        let mut feedback = Vec::new();
        let mut retrained = None;
        let live_event = match review.event_id {
            Some(e) => self.db()?.rank_event(e)?.map(|_| e),
            None => None,
        };
        if let Some(event) = live_event {
            let (answer_signal, source_signal) = match verdict {
                Verdict::Right => (Signal::Up, Signal::Useful),
                Verdict::Wrong => (Signal::Down, Signal::NotUseful),
            };
            let comment = note.map(|n| format!("review {id}: {n}")).unwrap_or_else(|| format!("review {id}"));
            let mut judgements = vec![(answer_signal, None)];
            if review.mode == "generated" {
                judgements.extend(review.sources.iter().map(|c| (source_signal, Some(c.number as usize))));
            }
            for (signal, source) in judgements {
                let receipt = self.feedback(event, signal, source, Some(&comment)).await?;
                if receipt.retrained.is_some() {
                    retrained = receipt.retrained.clone();
                }
                feedback.push(receipt);
            }
        }
        self.db()?.resolve_review(id, status.as_str(), note)?;
        Ok(Resolution { review: self.review(id)?, feedback, retrained })
    }
}
