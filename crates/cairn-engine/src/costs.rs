//! The cost ledger from the engine's side: recording calls, what has been spent in the user's
//! calendar day and month, and `cairn costs` reports grouped by day, provider, model or folder.

use crate::providers::Billing;
use crate::{Engine, EngineError};
use cairn_db::{CallKind, CallRecord, CallRow, Outcome};
use cairn_embed::Embedder;
use cairn_ledger::{Money, Spent};
use chrono::{Datelike, Local, TimeZone};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// How a cost report groups calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Day,
    Provider,
    Model,
    /// Indexing calls by the folder they worked for; answers by the folders of their sources,
    /// split evenly when a question drew on several.
    Folder,
}

/// Which calls a report covers: `[from_ms, to_ms)`.
#[derive(Clone, Copy, Debug)]
pub struct CostQuery {
    pub from_ms: i64,
    pub to_ms: i64,
    pub group_by: GroupBy,
}

/// One group of calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CostLine {
    /// The day (`2026-12-04`), provider, model or folder.
    pub key: String,
    pub calls: u64,
    pub input_tokens: u64,
    pub cached_tokens: u64,
    pub output_tokens: u64,
    /// Calls whose token counts Cairn estimated (the provider did not report usage).
    pub estimated_calls: u64,
    pub cost: Money,
    /// Calls with no known price (their dollars are not in `cost`).
    pub unpriced_calls: u64,
    pub cache_hits: u64,
    /// What cache hits saved.
    pub saved: Money,
    pub failed: u64,
    pub cancelled: u64,
    pub refused: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct CostReport {
    pub group_by: GroupBy,
    pub from_ms: i64,
    pub to_ms: i64,
    pub lines: Vec<CostLine>,
    pub total: CostLine,
}

impl CostReport {
    /// The report as CSV, dollars with nine decimals so sums are exact.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "key,calls,input_tokens,cached_tokens,output_tokens,estimated_calls,cost_usd,unpriced_calls,cache_hits,saved_usd,failed,cancelled,refused\n",
        );
        for l in self.lines.iter().chain(std::iter::once(&self.total)) {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                csv_field(&l.key),
                l.calls,
                l.input_tokens,
                l.cached_tokens,
                l.output_tokens,
                l.estimated_calls,
                dollars(l.cost),
                l.unpriced_calls,
                l.cache_hits,
                dollars(l.saved),
                l.failed,
                l.cancelled,
                l.refused
            ));
        }
        out
    }
}

fn dollars(m: Money) -> String {
    let n = m.nanos();
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}.{:09}", n.unsigned_abs() / 1_000_000_000, n.unsigned_abs() % 1_000_000_000)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// Local midnight of today, of tomorrow, and the first of this and next month, in ms.
pub(crate) fn calendar_bounds(now_ms: i64) -> (i64, i64, i64, i64) {
    let now = Local.timestamp_millis_opt(now_ms).single().unwrap_or_else(Local::now);
    let midnight = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| Local.from_local_datetime(&t).earliest())
            .map(|t| t.timestamp_millis())
            .unwrap_or(now_ms)
    };
    let today = now.date_naive();
    let tomorrow = today.succ_opt().unwrap_or(today);
    let first = today.with_day(1).unwrap_or(today);
    let next_month = if first.month() == 12 {
        chrono::NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    (midnight(today), midnight(tomorrow), midnight(first), midnight(next_month.unwrap_or(tomorrow)))
}

/// `2026-12-04` for a timestamp, in the user's time zone.
pub(crate) fn local_day(ms: i64) -> String {
    Local.timestamp_millis_opt(ms).single().map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

impl Engine {
    /// What has been spent today and this month, overall and with `provider`.
    pub(crate) fn spent(&self, provider: &str) -> Result<Spent, EngineError> {
        let (day0, day1, month0, month1) = calendar_bounds(cairn_db::now_ms());
        let db = self.db()?;
        Ok(Spent {
            day: Money(db.spent(day0, day1, None)?),
            month: Money(db.spent(month0, month1, None)?),
            provider_day: Money(db.spent(day0, day1, Some(provider))?),
            provider_month: Money(db.spent(month0, month1, Some(provider))?),
        })
    }

    pub(crate) fn record_call(&self, call: &CallRecord) -> Result<(), EngineError> {
        self.db()?.record_call(call)?;
        Ok(())
    }

    /// One ledger row per embedding request of an indexing pass, per folder it worked for.
    /// `idx` are the passages embedded (indices into `tokens_of` and `folder_of`).
    /// `reported` is what the provider said the request cost in tokens (remote embedders);
    /// without it the chunker's exact counts are used.
    #[allow(clippy::too_many_arguments)] // One call site; the pieces are all needed.
    pub(crate) fn record_embedding(
        &self,
        embedder: &dyn Embedder,
        idx: &[usize],
        tokens_of: &[usize],
        folder_of: &[Option<i64>],
        took: Duration,
        error: Option<&cairn_embed::EmbedError>,
        reported: Option<cairn_embed::EmbedUsage>,
    ) -> Result<(), EngineError> {
        let db = self.db()?;
        let folders: BTreeMap<i64, String> = db.folders()?.into_iter().map(|f| (f.id, f.path)).collect();
        let mut by_folder: BTreeMap<Option<i64>, u64> = BTreeMap::new();
        for &i in idx {
            *by_folder.entry(folder_of.get(i).copied().flatten()).or_default() +=
                tokens_of.get(i).copied().unwrap_or(0) as u64;
        }
        // Provider-reported tokens are shared out over folders in proportion to our counts.
        let ours: u64 = by_folder.values().sum();
        if let Some(r) = reported.filter(|r| r.prompt_tokens > 0 && ours > 0) {
            for t in by_folder.values_mut() {
                *t = *t * r.prompt_tokens / ours;
            }
        }
        let estimated = reported.is_some_and(|r| r.estimated_tokens > 0);
        let attempts = reported.map(|r| r.attempts.max(1) as u32).unwrap_or(1);
        let (provider, billing) = self.embed_billing();
        let share = took.as_millis() as u64 / by_folder.len().max(1) as u64;
        for (folder, tokens) in by_folder {
            let usage = cairn_ledger::Usage { input: tokens, cached: 0, output: 0 };
            db.record_call(&CallRecord {
                question_id: None,
                at_ms: cairn_db::now_ms(),
                kind: CallKind::Embed,
                provider: provider.clone(),
                model: embedder.id().to_owned(),
                prompt: None,
                prompt_hash: None,
                input_tokens: tokens,
                cached_tokens: 0,
                output_tokens: 0,
                estimated,
                latency_ms: share,
                first_token_ms: None,
                cost_nanos: if error.is_some() { Some(0) } else { billing.cost(&usage).map(Money::nanos) },
                estimate_nanos: None,
                cache_hit: false,
                saved_nanos: 0,
                outcome: if error.is_some() { Outcome::Failed } else { Outcome::Ok },
                error_code: error.map(|e| crate::code_str(e.code())),
                folder: folder.and_then(|f| folders.get(&f).cloned()),
                attempts,
            })?;
        }
        Ok(())
    }

    /// The configured embedder's provider name and billing: the local model is free; a
    /// provider's embedding model is priced like its chat calls.
    pub(crate) fn embed_billing(&self) -> (String, Billing) {
        let Ok(settings) = self.settings() else { return (crate::settings::LOCAL.to_owned(), Billing::Free) };
        match settings.provider(&settings.embeddings.provider) {
            Some(p) => {
                let model = p.embedding_model.clone().unwrap_or_default();
                let billing = match self.price_table(&settings) {
                    Ok(prices) => self.billing(p, &model, &prices),
                    Err(_) => Billing::Unpriced,
                };
                (p.name.clone(), billing)
            }
            None => (crate::settings::LOCAL.to_owned(), Billing::Free),
        }
    }

    /// Calls in `[from_ms, to_ms)`, oldest first: the ledger's rows.
    pub fn calls(&self, from_ms: i64, to_ms: i64) -> Result<Vec<CallRow>, EngineError> {
        Ok(self.db()?.calls(from_ms, to_ms)?)
    }

    /// The calls made for one question.
    pub fn calls_for_question(&self, question_id: i64) -> Result<Vec<CallRow>, EngineError> {
        Ok(self.db()?.calls_for_question(question_id)?)
    }

    /// The ledger grouped as asked.
    pub fn costs(&self, q: CostQuery) -> Result<CostReport, EngineError> {
        let rows = self.db()?.calls(q.from_ms, q.to_ms)?;
        let mut groups: BTreeMap<String, CostLine> = BTreeMap::new();
        let mut total = CostLine { key: "total".into(), ..Default::default() };
        for r in &rows {
            let c = &r.call;
            // (key, share of the call) pairs: a question over two folders is half in each.
            let keys: Vec<(String, i64, i64)> = match q.group_by {
                GroupBy::Day => vec![(local_day(c.at_ms), 1, 1)],
                GroupBy::Provider => vec![(c.provider.clone(), 1, 1)],
                GroupBy::Model => vec![(format!("{} / {}", c.provider, c.model), 1, 1)],
                GroupBy::Folder => match (&c.folder, r.question_folders.as_slice()) {
                    (Some(f), _) => vec![(f.clone(), 1, 1)],
                    (None, []) => vec![("(no folder)".to_owned(), 1, 1)],
                    (None, fs) => fs.iter().map(|f| (f.clone(), 1, fs.len() as i64)).collect(),
                },
            };
            for (key, num, den) in keys {
                let line = groups.entry(key.clone()).or_insert_with(|| CostLine { key, ..Default::default() });
                add(line, c, num, den);
            }
            add(&mut total, c, 1, 1);
        }
        let mut lines: Vec<CostLine> = groups.into_values().collect();
        if q.group_by != GroupBy::Day {
            lines.sort_by(|a, b| {
                b.cost.cmp(&a.cost).then_with(|| b.calls.cmp(&a.calls)).then_with(|| a.key.cmp(&b.key))
            });
        }
        Ok(CostReport { group_by: q.group_by, from_ms: q.from_ms, to_ms: q.to_ms, lines, total })
    }
}

/// Adds `num/den` of a call to a line (tokens and dollars are split; the call is counted in
/// each group it touches).
fn add(line: &mut CostLine, c: &CallRecord, num: i64, den: i64) {
    let part = |v: u64| (v as i64 * num / den) as u64;
    line.calls += 1;
    line.input_tokens += part(c.input_tokens);
    line.cached_tokens += part(c.cached_tokens);
    line.output_tokens += part(c.output_tokens);
    line.estimated_calls += u64::from(c.estimated);
    match c.cost_nanos {
        Some(n) => line.cost += Money(n * num / den),
        None if c.outcome != Outcome::Refused => line.unpriced_calls += 1,
        None => {}
    }
    line.cache_hits += u64::from(c.cache_hit);
    line.saved += Money(c.saved_nanos * num / den);
    match c.outcome {
        Outcome::Ok => {}
        Outcome::Failed => line.failed += 1,
        Outcome::Cancelled => line.cancelled += 1,
        Outcome::Refused => line.refused += 1,
    }
}

/// One cap and how full it is.
#[derive(Clone, Debug, Serialize)]
pub struct BudgetGauge {
    /// `None` for the overall cap, else the provider's name.
    pub provider: Option<String>,
    pub window: cairn_ledger::Window,
    pub limit: Money,
    pub spent: Money,
    /// `spent / limit`.
    pub used: f64,
}

/// What `cairn budget show` and the desktop's gauges display.
#[derive(Clone, Debug, Serialize)]
pub struct BudgetStatus {
    pub gauges: Vec<BudgetGauge>,
    pub spent_today: Money,
    pub spent_this_month: Money,
    pub warn_at: f64,
    /// Where calls go when a cap would be exceeded; `None`: they are refused.
    pub fallback: Option<String>,
}

impl Engine {
    pub fn budget_status(&self) -> Result<BudgetStatus, EngineError> {
        let settings = self.settings()?;
        let rules = settings.budget_rules();
        let (day0, day1, month0, month1) = calendar_bounds(cairn_db::now_ms());
        let db = self.db()?;
        let mut gauges = Vec::new();
        let mut scopes: Vec<(Option<String>, cairn_ledger::BudgetLimits)> = vec![(None, rules.global)];
        scopes.extend(rules.providers.iter().map(|(n, l)| (Some(n.clone()), *l)));
        for (provider, limits) in scopes {
            for (window, limit, from, to) in [
                (cairn_ledger::Window::Daily, limits.daily, day0, day1),
                (cairn_ledger::Window::Monthly, limits.monthly, month0, month1),
            ] {
                let Some(limit) = limit else { continue };
                let spent = Money(db.spent(from, to, provider.as_deref())?);
                gauges.push(BudgetGauge {
                    provider: provider.clone(),
                    window,
                    limit,
                    spent,
                    used: spent.fraction_of(limit),
                });
            }
        }
        Ok(BudgetStatus {
            gauges,
            spent_today: Money(db.spent(day0, day1, None)?),
            spent_this_month: Money(db.spent(month0, month1, None)?),
            warn_at: rules.warn_at,
            fallback: settings.chat.fallback.clone(),
        })
    }

    /// Conversations, most recent first.
    pub fn conversations(&self, limit: usize) -> Result<Vec<cairn_db::ConversationRow>, EngineError> {
        Ok(self.db()?.conversations(limit)?)
    }

    /// A conversation's turns, oldest first; an unknown id is an error.
    pub fn conversation(&self, id: i64) -> Result<(cairn_db::ConversationRow, Vec<cairn_db::TurnRow>), EngineError> {
        let db = self.db()?;
        let c =
            db.conversation(id)?.ok_or_else(|| EngineError::InvalidInput(format!("there is no conversation {id}")))?;
        Ok((c, db.turns(id)?))
    }

    pub fn delete_conversation(&self, id: i64) -> Result<(), EngineError> {
        if !self.db()?.delete_conversation(id)? {
            return Err(EngineError::InvalidInput(format!("there is no conversation {id}")));
        }
        Ok(())
    }
}
