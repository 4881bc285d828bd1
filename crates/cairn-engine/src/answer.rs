//! Answering a question: retrieve, fit numbered sources (and the conversation so far) into the
//! model's window by real token counts, check the budget, stream the answer, record the call
//! in the ledger, then check that every citation points to a source the model was given.
//!
//! The order matters and is the same for every provider: nothing is sent that the model
//! cannot take, nothing is sent that the budget forbids (or it goes to the fallback), and
//! every call that was attempted leaves a ledger row — refused, failed, cancelled or cut
//! calls included, since a cancelled stream still costs what it generated.

use crate::providers::{Billing, Provider};
use crate::settings::{LOCAL, LocalOnlySources, Settings};
use crate::{Engine, EngineError};
use cairn_core::{Citation, Hit};
use cairn_db::{CallKind, CallRecord, Outcome, TurnRow};
use cairn_ledger::{Money, Usage, Verdict};
use cairn_llm::{ChatMessage, ChatRequest, Finish};
use cairn_prompts::{Prompt, Prompts, Role};
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The prompt answers are written with.
pub const ANSWER_PROMPT: &str = "answer";

/// Which model answers.
#[derive(Clone, Debug, Default)]
pub enum LlmChoice {
    /// The environment's provider when `CAIRN_OPENAI_BASE_URL` and `CAIRN_OPENAI_MODEL` are
    /// set, else `[chat] provider` from settings (the local model by default). When the local
    /// model cannot be loaded, the answer is the best passages, labelled as such.
    #[default]
    Auto,
    /// A provider by name (`local` or one in settings); it must work.
    Provider(String),
    /// The local llama.cpp provider with this GGUF file.
    Local(PathBuf),
    /// No model: return the best passages with citations.
    None,
}

#[derive(Clone, Debug)]
pub struct AskOptions {
    pub llm: LlmChoice,
    /// Most sources offered to the model; `None` uses settings.
    pub max_sources: Option<usize>,
    /// `None` uses settings.
    pub max_answer_tokens: Option<u32>,
    /// Continue this conversation (its earlier turns are the history); `None` starts one.
    pub conversation: Option<i64>,
    /// Look in the answer cache first (and store the answer there).
    pub use_cache: bool,
    /// Set to stop generating: the answer so far is kept and marked cancelled.
    pub cancel: Option<Arc<AtomicBool>>,
    /// The user has confirmed sending this question to a remote provider, for policies that
    /// ask for confirmation (`[confirm] remote_chat`).
    pub confirmed: bool,
}

impl Default for AskOptions {
    fn default() -> Self {
        AskOptions {
            llm: LlmChoice::Auto,
            max_sources: None,
            max_answer_tokens: None,
            conversation: None,
            use_cache: true,
            cancel: None,
            confirmed: false,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnswerMode {
    /// A model wrote the answer from the sources.
    Generated { provider: String, model: String },
    /// No model answered; `text` lists the best passages. `reason` says why.
    Passages { reason: String },
    /// Retrieval found too little evidence (confidence below `[answer] min_confidence`), so no
    /// model was asked: `text` says so and `sources` lists the best passages. `reason` gives
    /// the confidence, the threshold and what lowered it.
    Abstained { reason: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Answer {
    pub question: String,
    /// The question's id in the ledger (its calls are grouped under it).
    pub question_id: Option<i64>,
    /// What feedback on this answer refers to (`cairn feedback <id> ...`); its sources are
    /// numbered as listed in `sources`.
    #[serde(default)]
    pub event_id: Option<i64>,
    /// The ranker version that ordered the sources.
    #[serde(default)]
    pub ranker_version: Option<i64>,
    pub conversation_id: Option<i64>,
    pub text: String,
    pub mode: AnswerMode,
    /// The sources the answer cites, numbered as the text now cites them (1, 2, ...); for
    /// passage answers, the passages shown.
    pub sources: Vec<Citation>,
    /// Every source the model was given, with the number it had in the prompt.
    pub considered: Vec<Citation>,
    /// Numbers the model cited that were not among its sources; removed from `text`.
    pub invalid_citations: Vec<u32>,
    /// `answer.v1`: the prompt id and version that produced this answer, and its hash.
    pub prompt_version: String,
    pub prompt_hash: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub cached_tokens: u32,
    /// True when Cairn counted tokens itself because the provider did not report usage.
    pub tokens_estimated: bool,
    /// What the answer cost; `None` when the provider's price is unknown.
    pub cost: Option<Money>,
    /// Served from the answer cache: no model was called.
    pub cache_hit: bool,
    /// For a cache hit, what the original answer cost.
    pub saved: Option<Money>,
    /// True when the answer stopped at the token limit.
    pub truncated: bool,
    /// True when the user stopped it.
    pub cancelled: bool,
    /// Set when the stream broke midway: the text is what arrived before the break.
    pub interrupted: Option<String>,
    /// Things the user should know: budget warnings, a fallback taken, sources left out.
    pub warnings: Vec<String>,
    pub latency_ms: u64,
    /// How far the answer can be trusted and why (retrieval, then support by its sources).
    #[serde(default)]
    pub confidence: Option<crate::Confidence>,
    /// The confidence of a generated answer fell below `[answer] min_confidence`: the text is
    /// kept, marked, and queued for review (`review_id`).
    #[serde(default)]
    pub needs_review: bool,
    #[serde(default)]
    pub review_id: Option<i64>,
}

fn citation(number: u32, hit: &Hit) -> Citation {
    let snippet: String = hit.text.split_whitespace().collect::<Vec<_>>().join(" ");
    let snippet = match snippet.char_indices().nth(240) {
        Some((i, _)) => format!("{}…", &snippet[..i]),
        None => snippet,
    };
    Citation {
        number,
        chunk_id: hit.chunk_id.clone(),
        path: hit.path.clone(),
        anchor: hit.anchor.clone(),
        snippet,
        score: Some(hit.score),
        features: hit.features.clone(),
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The answer given instead of one the evidence cannot carry: what was found is listed, and
/// the reason names the confidence, the threshold and what lowered it.
fn abstention(mut a: Answer, confidence: crate::Confidence, threshold: f32, hits: &[Hit]) -> Answer {
    a.sources = hits.iter().enumerate().map(|(i, h)| citation(i as u32 + 1, h)).collect();
    a.text = format!("{} The closest passages are listed below.", crate::confidence::ABSTAIN_TEXT);
    let why = confidence.reasons.join("; ");
    a.mode = AnswerMode::Abstained {
        reason: format!("confidence {:.2} is below the threshold {threshold:.2}: {why}", confidence.retrieval),
    };
    a.confidence = Some(confidence);
    a
}

/// Finds `[n]`, `[n, m]` and `[n][m]` citation markers; returns (valid, invalid) numbers and
/// the text with invalid markers removed.
#[cfg(test)]
pub(crate) fn check_citations(text: &str, sources: usize) -> (Vec<u32>, Vec<u32>, String) {
    let (valid, invalid, text) = rewrite_citations(text, sources, Some);
    let mut valid = valid;
    valid.sort_unstable();
    (valid, invalid, text)
}

/// Rewrites citation markers through `map` (a valid number to its new number); numbers out of
/// range are dropped and reported. Returns the valid numbers in order of first use.
fn rewrite_citations(text: &str, sources: usize, map: impl Fn(u32) -> Option<u32>) -> (Vec<u32>, Vec<u32>, String) {
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
    let mut dropped = false;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inner = &after[..close];
        let numbers: Option<Vec<u32>> = inner.split(',').map(|p| p.trim().parse::<u32>().ok()).collect();
        match numbers {
            Some(ns) if !ns.is_empty() => {
                let mut keep: Vec<u32> = Vec::new();
                for n in &ns {
                    if *n >= 1 && (*n as usize) <= sources {
                        if !valid.contains(n) {
                            valid.push(*n);
                        }
                        if let Some(m) = map(*n)
                            && !keep.contains(&m)
                        {
                            keep.push(m);
                        }
                    } else if !invalid.contains(n) {
                        invalid.push(*n);
                    }
                }
                if keep.is_empty() {
                    dropped = true;
                } else {
                    let list: Vec<String> = keep.iter().map(u32::to_string).collect();
                    out.push_str(&format!("[{}]", list.join(", ")));
                }
            }
            _ => out.push_str(&rest[open..open + 1 + close + 1]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    // Removing a whole marker can leave "fell ." or a double space behind.
    let out = if dropped { out.replace(" .", ".").replace("  ", " ") } else { out };
    (valid, invalid, out)
}

/// Checks the answer's citations against the sources it was given and returns the sources it
/// cites, in order of first use and with the numbers the text uses (the text streamed to the
/// user keeps its numbers), so the listed sources are exactly those the answer used. Markers
/// naming a source that was not given are removed from the text and returned.
/// Chunk ids by the number the user sees: slot n-1 holds the passage listed as `[n]` under
/// the answer (the cited sources, or every passage given when none was cited), empty where no
/// listed passage has that number.
pub(crate) fn shown_by_number(answer: &Answer) -> Vec<&str> {
    let listed = if answer.sources.is_empty() { &answer.considered } else { &answer.sources };
    let len = listed.iter().map(|c| c.number as usize).max().unwrap_or(0);
    let mut shown = vec![""; len];
    for c in listed {
        if let Some(slot) = (c.number as usize).checked_sub(1).and_then(|i| shown.get_mut(i)) {
            *slot = c.chunk_id.as_str();
        }
    }
    shown
}

pub(crate) fn cited_sources(text: &str, given: &[Citation]) -> (String, Vec<Citation>, Vec<u32>) {
    let (used, invalid, rewritten) = rewrite_citations(text, given.len(), Some);
    let cited = used.iter().map(|&n| given[n as usize - 1].clone()).collect();
    (rewritten.trim().to_owned(), cited, invalid)
}

/// The form of a question the answer cache is keyed on: case, spacing and final punctuation
/// do not make a different question.
pub(crate) fn normalize_question(q: &str) -> String {
    let lower = q.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    words.join(" ").trim_end_matches(['?', '!', '.', ' ']).to_owned()
}

/// What an answer depends on: change any of it and the cache misses.
struct CacheKey<'a> {
    question: &'a str,
    sources: &'a [&'a Hit],
    history: &'a [(String, String)],
    model: &'a str,
    prompt: &'a Prompt,
    max_tokens: u32,
    temperature: f32,
}

impl CacheKey<'_> {
    fn digest(&self) -> String {
        let mut h = blake3::Hasher::new();
        let mut field = |s: &str| {
            h.update(s.as_bytes());
            h.update(&[0]);
        };
        field(&normalize_question(self.question));
        for s in self.sources {
            field(&s.chunk_id);
            field(&blake3::hash(s.text.as_bytes()).to_hex());
        }
        field("history");
        for (q, a) in self.history {
            field(q);
            field(a);
        }
        field(self.model);
        field(&self.prompt.label());
        field(&self.prompt.hash);
        field(&self.max_tokens.to_string());
        field(&self.temperature.to_string());
        h.finalize().to_hex().to_string()
    }
}

/// The prompt's messages with sources and history, fitted to `p`'s window.
struct Fitted<'h> {
    request: ChatRequest,
    given: Vec<&'h Hit>,
    history: Vec<(String, String)>,
    /// Prompt tokens as counted here (exact for llama.cpp, an over-estimate for HTTP).
    prompt_tokens: usize,
    left_out: usize,
}

fn role(r: Role) -> cairn_llm::Role {
    match r {
        Role::System => cairn_llm::Role::System,
        Role::User => cairn_llm::Role::User,
        Role::Assistant => cairn_llm::Role::Assistant,
    }
}

/// Tokens a message costs beyond its text (role markers, separators) in chat templates.
const MESSAGE_OVERHEAD: usize = 8;

#[allow(clippy::too_many_arguments)] // One caller; a struct would only rename the arguments.
fn fit<'h>(
    p: &Provider,
    prompt: &Prompt,
    question: &str,
    hits: &'h [Hit],
    turns: &[(String, String)],
    max_tokens: u32,
    temperature: f32,
    history_share: f32,
) -> Result<Option<Fitted<'h>>, EngineError> {
    let model = &p.model;
    let window = model.context_window();
    let render = |sources: &str| {
        prompt
            .render(&[("sources", sources), ("question", question)])
            .map_err(|e| EngineError::Internal(format!("rendering the answer prompt: {e}")))
    };
    let empty = render("")?;
    let fixed: usize = empty.iter().map(|m| model.count_tokens(&m.content) + MESSAGE_OVERHEAD).sum::<usize>()
        + max_tokens as usize
        + 16;
    if fixed >= window {
        return Ok(None);
    }
    // Earlier turns, newest first, within their share of the window.
    let mut history_budget = ((window as f32) * history_share) as usize;
    let mut history: Vec<(String, String)> = Vec::new();
    let mut history_tokens = 0;
    for (q, a) in turns.iter().rev() {
        let cost = model.count_tokens(q) + model.count_tokens(a) + 2 * MESSAGE_OVERHEAD;
        if cost > history_budget || fixed + history_tokens + cost >= window {
            break;
        }
        history_budget -= cost;
        history_tokens += cost;
        history.push((q.clone(), a.clone()));
    }
    history.reverse();
    let mut budget = window - fixed - history_tokens;
    let mut given: Vec<&Hit> = Vec::new();
    let mut blocks = Vec::new();
    let mut left_out = 0;
    for h in hits {
        let n = given.len() + 1;
        let block = crate::containment::fence_hit(n, h);
        let cost = model.count_tokens(&block) + 2;
        if cost > budget {
            left_out += 1;
            continue;
        }
        budget -= cost;
        blocks.push(block);
        given.push(h);
    }
    if given.is_empty() {
        return Ok(None);
    }
    let rendered = render(&blocks.join("\n\n"))?;
    let mut messages: Vec<ChatMessage> = Vec::new();
    let last = rendered.len() - 1;
    for (i, m) in rendered.into_iter().enumerate() {
        if i == last {
            for (q, a) in &history {
                messages.push(ChatMessage::user(q.clone()));
                messages.push(ChatMessage::assistant(a.clone()));
            }
        }
        messages.push(ChatMessage { role: role(m.role), content: m.content });
    }
    let prompt_tokens = messages.iter().map(|m| model.count_tokens(&m.content) + MESSAGE_OVERHEAD).sum();
    Ok(Some(Fitted {
        request: ChatRequest { messages, max_tokens, temperature },
        given,
        history,
        prompt_tokens,
        left_out,
    }))
}

impl Engine {
    /// The settings file's current contents.
    /// The settings as they apply: the file's contents with the administrator's policy over them
    /// (locked values set, budget caps the stricter of the two).
    pub fn settings(&self) -> Result<Settings, EngineError> {
        crate::governance::apply_policy(&self.policy, &self.policy_defects, Settings::load(&self.config.data_dir)?)
    }

    /// Validates and saves new settings; a change to a setting the policy locks is refused.
    pub fn save_settings(&self, s: &Settings) -> Result<(), EngineError> {
        let before = Settings::load(&self.config.data_dir)?;
        self.check_settings_change(&before, s)?;
        s.save(&self.config.data_dir)
    }

    /// Every prompt: built in, plus the user's own under `<data>/prompts/<id>/v<n>.toml`.
    pub fn prompts(&self) -> Result<Prompts, EngineError> {
        Prompts::builtin()
            .with_dir(&self.config.data_dir.join("prompts"))
            .map_err(|e| EngineError::InvalidInput(e.to_string()))
    }

    /// The folders `paths` belong to.
    fn folders_of(&self, paths: &[&str]) -> Result<Vec<String>, EngineError> {
        let folders = self.db()?.folders()?;
        let mut out: Vec<String> = Vec::new();
        for p in paths {
            if let Some(f) = folders.iter().find(|f| std::path::Path::new(p).starts_with(&f.path))
                && !out.contains(&f.path)
            {
                out.push(f.path.clone());
            }
        }
        Ok(out)
    }

    /// Answers `question` from the index. Tokens stream to `on_token` as they are generated.
    /// When no model can be loaded (or `LlmChoice::None`), the answer is the best passages,
    /// labelled as such. A call a hard budget forbids is refused with `BudgetExceeded`, or
    /// goes to `[chat] fallback` when one is set.
    pub async fn ask(
        &self,
        question: &str,
        opts: &AskOptions,
        on_token: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Answer, EngineError> {
        let started = Instant::now();
        let question = question.trim();
        if question.is_empty() {
            return Err(EngineError::InvalidInput("the question is empty".into()));
        }
        let settings = self.effective_settings()?;
        let max_sources = opts.max_sources.unwrap_or(settings.answer.max_sources).max(1);
        let max_tokens = opts.max_answer_tokens.unwrap_or(settings.answer.max_answer_tokens);
        let prompts = self.prompts()?;
        let prompt = prompts
            .get(ANSWER_PROMPT, settings.answer.prompt_version)
            .map_err(|e| EngineError::InvalidInput(e.to_string()))?
            .clone();

        // The conversation so far: its turns are the history, and a short follow-up is
        // searched together with the question before it ("and the year before?").
        // Each turn is marked private when its answer drew on local-only sources: such a turn
        // is never sent as history to a remote provider.
        let (turns, private_turns): (Vec<(String, String)>, Vec<bool>) = match opts.conversation {
            Some(id) => {
                let rows = {
                    let db = self.db()?;
                    if db.conversation(id)?.is_none() {
                        return Err(EngineError::InvalidInput(format!("there is no conversation {id}")));
                    }
                    db.turns(id)?
                };
                let folders = self.db()?.folders()?;
                rows.into_iter()
                    .map(|t| {
                        let private = self.turn_is_private(&t.answer_json, &folders);
                        ((t.question, t.answer), private)
                    })
                    .unzip()
            }
            None => (Vec::new(), Vec::new()),
        };
        let query = match turns.last() {
            Some((prev, _)) if question.split_whitespace().count() < 8 => format!("{prev} {question}"),
            _ => question.to_owned(),
        };
        let question_id = self.db()?.add_question(question, opts.conversation)?;
        let ranked = self.search_for(&query, max_sources, Some(question_id)).await?;
        let hits = ranked.hits;

        let mut answer = Answer {
            question: question.to_owned(),
            question_id: Some(question_id),
            event_id: ranked.event_id,
            ranker_version: Some(ranked.ranker_version),
            conversation_id: opts.conversation,
            text: String::new(),
            mode: AnswerMode::Passages { reason: String::new() },
            sources: Vec::new(),
            considered: Vec::new(),
            invalid_citations: Vec::new(),
            prompt_version: prompt.label(),
            prompt_hash: prompt.hash.clone(),
            prompt_tokens: 0,
            completion_tokens: 0,
            cached_tokens: 0,
            tokens_estimated: false,
            cost: Some(Money::ZERO),
            cache_hit: false,
            saved: None,
            truncated: false,
            cancelled: false,
            interrupted: None,
            warnings: ranked.warning.into_iter().collect(),
            latency_ms: 0,
            confidence: None,
            needs_review: false,
            review_id: None,
        };
        let folders = self.folders_of(&hits.iter().map(|h| h.path.as_str()).collect::<Vec<_>>())?;
        self.db()?.set_question_folders(question_id, &folders)?;

        let passages = |mut a: Answer, reason: String, hits: &[Hit]| {
            a.sources = hits.iter().enumerate().map(|(i, h)| citation(i as u32 + 1, h)).collect();
            a.text = a
                .sources
                .iter()
                .map(|c| format!("[{}] {} ({}): {}", c.number, file_name(&c.path), c.anchor.label(), c.snippet))
                .collect::<Vec<_>>()
                .join("\n");
            // Document text shown as the answer: inert for any front end, like a model's answer.
            a.text = crate::containment::neutralize(&a.text).0;
            a.mode = AnswerMode::Passages { reason };
            a
        };
        if hits.is_empty() {
            let a = passages(answer, "nothing in the index matches the question".into(), &hits);
            return self.finish_turn(a, started);
        }
        // Too little evidence: abstain before any model is called (nothing to pay for, nothing
        // for a model to make up an answer from). Not on a follow-up in a conversation: its
        // answer may rest on the turns before, which retrieval does not see; the support check
        // after generation still applies.
        let confidence = crate::confidence::from_retrieval(&query, &hits);
        if turns.is_empty() && confidence.retrieval < settings.answer.min_confidence {
            let a = abstention(answer, confidence, settings.answer.min_confidence, &hits);
            return self.finish_turn(a, started);
        }
        answer.confidence = Some(confidence);

        // The providers to try: the chosen one, then the budget fallback.
        let primary = match &opts.llm {
            LlmChoice::None => {
                let a = passages(answer, "answering without a language model (--no-llm)".into(), &hits);
                return self.finish_turn(a, started);
            }
            LlmChoice::Auto => settings.chat.provider.clone(),
            LlmChoice::Provider(name) => name.clone(),
            LlmChoice::Local(_) => LOCAL.to_owned(),
        };
        self.check_locked_provider(&primary)?;
        let local_model = match &opts.llm {
            LlmChoice::Local(p) => Some(p.clone()),
            _ => None,
        };
        let mut candidates = vec![primary.clone()];
        if let Some(f) = &settings.chat.fallback
            && *f != primary
        {
            candidates.push(f.clone());
        }

        for (attempt, name) in candidates.iter().enumerate() {
            let is_last = attempt + 1 == candidates.len();
            let load = {
                let (settings, name, local_model) = (&settings, name.as_str(), local_model.clone());
                tokio::task::block_in_place(|| self.provider(settings, name, local_model))
            };
            let provider = match load {
                Ok(p) => p,
                // A model the user named must work; the default may fall back to passages. A
                // refusal by the policy is always said as such.
                Err(e)
                    if matches!(opts.llm, LlmChoice::Auto)
                        && attempt == 0
                        && !matches!(e, EngineError::PolicyDenied(_)) =>
                {
                    let a = passages(answer, format!("no language model could be loaded: {e}"), &hits);
                    return self.finish_turn(a, started);
                }
                Err(e) => return Err(e),
            };
            // The privacy gate: passages from local-only folders never reach a remote provider.
            let mut provider = provider;
            let gated: Vec<Hit>;
            let mut sources: &[Hit] = &hits;
            if provider.remote {
                let private = self.private_sources(&hits)?;
                if let Some(first) = private.first() {
                    let n = private.len();
                    match settings.privacy.local_only_sources {
                        LocalOnlySources::Local => {
                            let local = {
                                let (settings, local_model) = (&settings, local_model.clone());
                                tokio::task::block_in_place(|| self.provider(settings, LOCAL, local_model))
                            };
                            provider = local.map_err(|e| {
                                EngineError::PolicyDenied(format!(
                                    "{n} of the sources are local-only ({}), so this question cannot go to `{}`, and the local model could not answer instead: {e}",
                                    first.reason, provider.name
                                ))
                            })?;
                            answer.warnings.push(format!(
                                "{n} of the {} sources are local-only ({}): answered with the local model instead of `{name}`",
                                hits.len(),
                                first.reason
                            ));
                        }
                        LocalOnlySources::Omit => {
                            gated = hits
                                .iter()
                                .enumerate()
                                .filter(|(i, _)| !private.iter().any(|p| p.index == *i))
                                .map(|(_, h)| h.clone())
                                .collect();
                            answer.warnings.push(format!(
                                "{n} of the {} sources are local-only ({}) and were not sent to `{name}`",
                                hits.len(),
                                first.reason
                            ));
                            if gated.is_empty() {
                                let a = passages(
                                    answer,
                                    format!(
                                        "every source is local-only ({}) and `{name}` is a remote provider",
                                        first.reason
                                    ),
                                    &hits,
                                );
                                return self.finish_turn(a, started);
                            }
                            sources = &gated;
                        }
                    }
                }
            }
            let public_turns: Vec<(String, String)>;
            let mut history: &[(String, String)] = &turns;
            let private_count = private_turns.iter().filter(|p| **p).count();
            if provider.remote && private_count > 0 {
                public_turns = turns.iter().zip(&private_turns).filter(|(_, p)| !**p).map(|(t, _)| t.clone()).collect();
                history = &public_turns;
                answer.warnings.push(format!(
                    "{private_count} earlier turn(s) of this conversation drew on local-only sources and were not sent to `{}`",
                    provider.name
                ));
            }
            let fitted = fit(
                &provider,
                &prompt,
                question,
                sources,
                history,
                max_tokens,
                settings.answer.temperature,
                settings.answer.history_share,
            )?;
            let Some(fitted) = fitted else {
                let a =
                    passages(answer, "the question and sources do not fit the model's context window".into(), &hits);
                return self.finish_turn(a, started);
            };
            if fitted.left_out > 0 {
                answer.warnings.push(format!(
                    "{} of {} sources did not fit the model's context window and were left out",
                    fitted.left_out,
                    hits.len()
                ));
            }
            answer.considered = fitted.given.iter().enumerate().map(|(i, h)| citation(i as u32 + 1, h)).collect();

            // The cache: the same question over the same unchanged sources, model and prompt.
            let key = CacheKey {
                question,
                sources: &fitted.given,
                history: &fitted.history,
                model: &provider.model.id(),
                prompt: &prompt,
                max_tokens,
                temperature: settings.answer.temperature,
            }
            .digest();
            let caching = opts.use_cache && settings.answer.cache;
            if caching && let Some(hit) = self.cached(&key, &provider, &prompt, question_id)? {
                on_token(&hit.text);
                let mut hit = hit;
                hit.question = question.to_owned();
                hit.question_id = Some(question_id);
                hit.conversation_id = opts.conversation;
                // Feedback on this answer is about this search, ranked as it was now.
                hit.event_id = answer.event_id;
                hit.ranker_version = answer.ranker_version;
                hit.warnings.extend(answer.warnings.clone());
                return self.finish_turn(hit, started);
            }

            // The policy may want the user to confirm before anything leaves the machine.
            if provider.remote {
                self.check_remote_confirmed(&provider.name, opts.confirmed)?;
            }

            // The budget, before anything is sent.
            let estimate_usage = Usage { input: fitted.prompt_tokens as u64, cached: 0, output: u64::from(max_tokens) };
            let estimate = provider.billing.cost(&estimate_usage);
            if let Billing::Unpriced = provider.billing {
                // A hard cap from the policy cannot be kept for calls of unknown price.
                self.check_unpriced_under_policy_cap(&provider.name, &provider.model_name)?;
                answer.warnings.push(format!(
                    "no price is known for {} at provider `{}`: this answer's tokens are recorded but not its dollars (add a price in settings.toml)",
                    provider.model_name, provider.name
                ));
            }
            if let Some(estimate) = estimate.filter(|e| *e > Money::ZERO) {
                let spent = self.spent(&provider.name)?;
                match settings.budget_rules().check(&provider.name, spent, estimate) {
                    Verdict::Allow { warnings } => answer.warnings.extend(warnings),
                    Verdict::Refuse(over) => {
                        self.record_call(&CallRecord {
                            question_id: Some(question_id),
                            at_ms: cairn_db::now_ms(),
                            kind: CallKind::Chat,
                            provider: provider.name.clone(),
                            model: provider.model_name.clone(),
                            prompt: Some(prompt.label()),
                            prompt_hash: Some(prompt.hash.clone()),
                            input_tokens: 0,
                            cached_tokens: 0,
                            output_tokens: 0,
                            estimated: true,
                            latency_ms: 0,
                            first_token_ms: None,
                            cost_nanos: Some(0),
                            estimate_nanos: Some(estimate.nanos()),
                            cache_hit: false,
                            saved_nanos: 0,
                            outcome: Outcome::Refused,
                            error_code: Some("budget_exceeded".into()),
                            folder: None,
                            attempts: 0,
                        })?;
                        if is_last {
                            return Err(EngineError::BudgetExceeded(format!(
                                "{over}; raise the budget in settings.toml, wait, or set [chat] fallback = \"local\""
                            )));
                        }
                        answer.warnings.push(format!("{over}: answered with `{}` instead", candidates[attempt + 1]));
                        continue;
                    }
                }
            }

            return self.generate(
                answer,
                provider,
                fitted,
                &prompt,
                question_id,
                &key,
                caching,
                opts,
                on_token,
                started,
            );
        }
        Err(EngineError::Internal("no provider was tried".into()))
    }

    /// Streams the answer from `provider`, records the call, checks the citations.
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &self,
        mut answer: Answer,
        provider: Provider,
        fitted: Fitted<'_>,
        prompt: &Prompt,
        question_id: i64,
        cache_key: &str,
        caching: bool,
        opts: &AskOptions,
        on_token: &(dyn Fn(&str) + Send + Sync),
        started: Instant,
    ) -> Result<Answer, EngineError> {
        let cancel = opts.cancel.clone();
        let call_started = Instant::now();
        let result = tokio::task::block_in_place(|| {
            provider.model.generate(&fitted.request, &mut |t| {
                on_token(t);
                match cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                    true => ControlFlow::Break(()),
                    false => ControlFlow::Continue(()),
                }
            })
        });
        let mut row = CallRecord {
            question_id: Some(question_id),
            at_ms: cairn_db::now_ms(),
            kind: CallKind::Chat,
            provider: provider.name.clone(),
            model: provider.model_name.clone(),
            prompt: Some(prompt.label()),
            prompt_hash: Some(prompt.hash.clone()),
            input_tokens: 0,
            cached_tokens: 0,
            output_tokens: 0,
            estimated: true,
            latency_ms: call_started.elapsed().as_millis() as u64,
            first_token_ms: None,
            cost_nanos: None,
            estimate_nanos: None,
            cache_hit: false,
            saved_nanos: 0,
            outcome: Outcome::Ok,
            error_code: None,
            folder: None,
            attempts: 1,
        };
        let completion = match result {
            Ok(c) => c,
            Err(e) => {
                row.error_code = Some(crate::code_str(e.code()));
                row.outcome = Outcome::Failed;
                let Some(partial) = e.partial_text().map(str::to_owned) else {
                    // Nothing came back: providers do not bill a request that produced nothing.
                    row.cost_nanos = Some(0);
                    self.record_call(&row)?;
                    return Err(provider.explain(e));
                };
                // The stream broke midway: keep what arrived, and bill what was generated.
                let usage = Usage {
                    input: fitted.prompt_tokens as u64,
                    cached: 0,
                    output: provider.model.count_tokens(&partial) as u64,
                };
                row.input_tokens = usage.input;
                row.output_tokens = usage.output;
                row.cost_nanos = provider.billing.cost(&usage).map(Money::nanos);
                self.record_call(&row)?;
                answer.interrupted = Some(e.to_string());
                answer.warnings.push(format!("the answer was cut off before it finished: {e}"));
                answer.prompt_tokens = usage.input as u32;
                answer.completion_tokens = usage.output as u32;
                answer.tokens_estimated = true;
                answer.cost = row.cost_nanos.map(Money);
                return self.conclude(answer, &provider, &partial, &fitted.given, started);
            }
        };
        let usage = Usage {
            input: u64::from(completion.prompt_tokens),
            cached: u64::from(completion.cached_prompt_tokens),
            output: u64::from(completion.completion_tokens),
        };
        row.input_tokens = usage.input;
        row.cached_tokens = usage.cached;
        row.output_tokens = usage.output;
        row.estimated = !completion.usage_reported;
        row.latency_ms = completion.latency_ms;
        row.first_token_ms = completion.first_token_ms;
        row.attempts = completion.attempts;
        if !completion.model.is_empty() {
            row.model = completion.model.clone();
        }
        row.cost_nanos = provider.billing.cost(&usage).map(Money::nanos);
        row.outcome = if completion.finish == Finish::Cancelled { Outcome::Cancelled } else { Outcome::Ok };
        self.record_call(&row)?;
        answer.prompt_tokens = completion.prompt_tokens;
        answer.completion_tokens = completion.completion_tokens;
        answer.cached_tokens = completion.cached_prompt_tokens;
        answer.tokens_estimated = !completion.usage_reported;
        answer.cost = row.cost_nanos.map(Money);
        answer.truncated = completion.finish == Finish::Length;
        answer.cancelled = completion.finish == Finish::Cancelled;
        answer.warnings.extend(completion.warnings.iter().cloned());
        let cache = (caching && !answer.cancelled).then_some(cache_key);
        let cost = row.cost_nanos;
        let answer = self.conclude(answer, &provider, &completion.text, &fitted.given, started)?;
        if let Some(key) = cache {
            self.store_cached(key, &answer, cost, &row)?;
        }
        Ok(answer)
    }

    /// Citations checked and renumbered, the turn recorded.
    fn conclude(
        &self,
        mut answer: Answer,
        provider: &Provider,
        text: &str,
        given: &[&Hit],
        started: Instant,
    ) -> Result<Answer, EngineError> {
        // Nothing in an answer may load by itself in a front end (a planted instruction could
        // ask for an image whose URL carries data out).
        let (text, removed) = crate::containment::neutralize(text);
        if !removed.is_empty() {
            answer
                .warnings
                .push(format!("removed from the answer so nothing loads from outside: {}", removed.join(", ")));
        }
        let (text, cited, invalid) = cited_sources(&text, &answer.considered);
        answer.text = text;
        answer.sources = cited;
        answer.invalid_citations = invalid;
        answer.mode = AnswerMode::Generated { provider: provider.name.clone(), model: provider.model_name.clone() };
        self.assess_support(&mut answer, given)?;
        self.finish_turn(answer, started)
    }

    /// Records the answer as a turn of its conversation (starting one if needed).
    fn finish_turn(&self, mut answer: Answer, started: Instant) -> Result<Answer, EngineError> {
        answer.latency_ms = started.elapsed().as_millis() as u64;
        let db = self.db()?;
        let conversation = match answer.conversation_id {
            Some(id) => id,
            None => {
                let title: String = answer.question.chars().take(80).collect();
                db.add_conversation(&title)?
            }
        };
        answer.conversation_id = Some(conversation);
        if let Some(event) = answer.event_id {
            // Feedback numbers sources as the user sees them under the answer: `[n]` is the
            // passage that had number n in the prompt (cited sources keep their numbers).
            let shown = shown_by_number(&answer);
            db.set_event_shown(event, &serde_json::to_string(&shown).unwrap_or_else(|_| "[]".into()))?;
        }
        let json = serde_json::to_string(&answer).map_err(|e| EngineError::Internal(e.to_string()))?;
        db.add_turn(&TurnRow {
            id: 0,
            conversation_id: conversation,
            question_id: answer.question_id,
            question: answer.question.clone(),
            answer: answer.text.clone(),
            answer_json: json,
            at_ms: cairn_db::now_ms(),
        })?;
        Ok(answer)
    }

    /// A cached answer for `key`, recorded in the ledger as a hit with what it saved.
    fn cached(
        &self,
        key: &str,
        provider: &Provider,
        prompt: &Prompt,
        question_id: i64,
    ) -> Result<Option<Answer>, EngineError> {
        // The row's latency is the lookup's, as a call row's is the call's.
        let started = Instant::now();
        let Some(hit) = self.db()?.cached_answer(key)? else { return Ok(None) };
        let Ok(mut answer) = serde_json::from_str::<Answer>(&hit.answer_json) else { return Ok(None) };
        self.record_call(&CallRecord {
            question_id: Some(question_id),
            at_ms: cairn_db::now_ms(),
            kind: CallKind::Chat,
            provider: provider.name.clone(),
            model: provider.model_name.clone(),
            prompt: Some(prompt.label()),
            prompt_hash: Some(prompt.hash.clone()),
            input_tokens: 0,
            cached_tokens: 0,
            output_tokens: 0,
            estimated: false,
            latency_ms: started.elapsed().as_millis() as u64,
            first_token_ms: None,
            cost_nanos: Some(0),
            estimate_nanos: None,
            cache_hit: true,
            saved_nanos: hit.cost_nanos.unwrap_or(0),
            outcome: Outcome::Ok,
            error_code: None,
            folder: None,
            attempts: 0,
        })?;
        answer.cache_hit = true;
        answer.saved = hit.cost_nanos.map(Money);
        answer.cost = Some(Money::ZERO);
        answer.warnings = Vec::new();
        Ok(Some(answer))
    }

    fn store_cached(&self, key: &str, answer: &Answer, cost: Option<i64>, row: &CallRecord) -> Result<(), EngineError> {
        let json = serde_json::to_string(answer).map_err(|e| EngineError::Internal(e.to_string()))?;
        let paths: Vec<String> = answer.considered.iter().map(|c| c.path.clone()).collect();
        self.db()?.put_cached_answer(
            key,
            &cairn_db::CachedAnswer {
                answer_json: json,
                cost_nanos: cost,
                input_tokens: row.input_tokens,
                output_tokens: row.output_tokens,
                latency_ms: row.latency_ms,
                created_ms: cairn_db::now_ms(),
                hits: 0,
            },
            &paths,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: u32, path: &str) -> Citation {
        Citation {
            number: n,
            chunk_id: String::new(),
            path: path.into(),
            anchor: Default::default(),
            snippet: String::new(),
            score: None,
            features: Vec::new(),
        }
    }

    #[test]
    fn citations_to_sources_never_given_are_removed_and_reported() {
        let (valid, invalid, text) = check_citations("Sales rose [1][7]. Margins fell [2, 9]. See [note].", 3);
        assert_eq!(valid, vec![1, 2]);
        assert_eq!(invalid, vec![7, 9]);
        assert_eq!(text, "Sales rose [1]. Margins fell [2]. See [note].");
        let (valid, invalid, _) = check_citations("No brackets closed [1", 3);
        assert!(valid.is_empty() && invalid.is_empty());
    }

    #[test]
    fn feedback_numbers_are_the_numbers_the_user_sees() {
        let mut a: Answer = serde_json::from_value(serde_json::json!({
            "question": "q", "question_id": null, "conversation_id": null, "text": "",
            "mode": {"kind": "generated", "provider": "p", "model": "m"},
            "sources": [], "considered": [], "invalid_citations": [], "prompt_version": "",
            "prompt_hash": "", "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0,
            "tokens_estimated": false, "cost": null, "cache_hit": false, "saved": null,
            "truncated": false, "cancelled": false, "interrupted": null, "warnings": [], "latency_ms": 0
        }))
        .expect("an answer");
        let with_id = |n: u32, id: &str| Citation { chunk_id: id.into(), ..c(n, "/x") };
        a.considered = vec![with_id(1, "a"), with_id(2, "b"), with_id(3, "c")];
        assert_eq!(shown_by_number(&a), ["a", "b", "c"], "nothing cited: every passage given is listed");
        // Cited in the order [3], [1]: listed so, each under its own number; [2] is not listed.
        a.sources = vec![with_id(3, "c"), with_id(1, "a")];
        assert_eq!(shown_by_number(&a), ["a", "", "c"]);
    }

    #[test]
    fn listed_sources_are_exactly_the_cited_ones_in_order_of_use() {
        let given = [c(1, "/a"), c(2, "/b"), c(3, "/c"), c(4, "/d")];
        let (text, cited, invalid) =
            cited_sources("Costs fell [3]. Sales rose [1, 3] and [9]. Nothing from [2]? No.", &given);
        assert_eq!(text, "Costs fell [3]. Sales rose [1, 3] and. Nothing from [2]? No.");
        assert_eq!(
            cited.iter().map(|c| (c.number, c.path.as_str())).collect::<Vec<_>>(),
            [(3, "/c"), (1, "/a"), (2, "/b")]
        );
        assert_eq!(invalid, [9]);
        let (text, cited, _) = cited_sources("The sources do not say.", &given);
        assert_eq!((text.as_str(), cited.len()), ("The sources do not say.", 0));
    }

    #[test]
    fn questions_that_differ_only_in_case_spacing_or_final_punctuation_are_one() {
        assert_eq!(normalize_question("  When is the  filing DEADLINE?? "), "when is the filing deadline");
        assert_ne!(normalize_question("Is it due?"), normalize_question("Is it overdue?"));
    }
}
