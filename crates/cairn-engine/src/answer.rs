//! Answering a question: retrieve, fit numbered sources into the model's window, stream the
//! answer, then check that every citation points to a source the model was actually given.

use crate::{Engine, EngineError};
use cairn_core::{Citation, Hit};
use cairn_llm::{ChatMessage, ChatModel, ChatRequest, LlamaModelConfig, OpenAiChat, OpenAiConfig};
use serde::Serialize;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

/// The answer prompt, a versioned file reviewed like code. Its version is stamped on answers.
const ANSWER_PROMPT: &str = include_str!("../../../prompts/answer.v1.md");
pub const ANSWER_PROMPT_VERSION: &str = "answer.v1";
/// The small chat model `scripts/setup.sh` fetches into the models folder.
pub const DEFAULT_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Which model answers.
#[derive(Clone, Debug, Default)]
pub enum LlmChoice {
    /// An OpenAI-compatible server if `CAIRN_OPENAI_BASE_URL` and `CAIRN_OPENAI_MODEL` are set,
    /// else the local GGUF model (`CAIRN_LLM_GGUF` or the one setup fetched).
    #[default]
    Auto,
    Local(PathBuf),
    OpenAi(OpenAiConfig),
    /// No model: return the best passages with citations.
    None,
}

#[derive(Clone, Debug)]
pub struct AskOptions {
    pub llm: LlmChoice,
    /// Most sources offered to the model (fewer if the window is small).
    pub max_sources: usize,
    pub max_answer_tokens: u32,
}

impl Default for AskOptions {
    fn default() -> Self {
        AskOptions { llm: LlmChoice::Auto, max_sources: 6, max_answer_tokens: 384 }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnswerMode {
    /// A model wrote the answer from the sources.
    Generated { model: String },
    /// No model answered; `text` lists the best passages. `reason` says why.
    Passages { reason: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct Answer {
    pub question: String,
    pub text: String,
    pub mode: AnswerMode,
    /// The numbered sources the model was given (or the passages shown), in number order.
    pub sources: Vec<Citation>,
    /// Source numbers the answer actually cites, valid ones only.
    pub cited: Vec<u32>,
    /// Numbers the model cited that were not among its sources; removed from `text`.
    pub invalid_citations: Vec<u32>,
    pub prompt_version: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// True when the answer stopped at the token limit.
    pub truncated: bool,
}

fn citation(number: u32, hit: &Hit) -> Citation {
    let snippet: String = hit.text.split_whitespace().collect::<Vec<_>>().join(" ");
    let snippet = match snippet.char_indices().nth(240) {
        Some((i, _)) => format!("{}…", &snippet[..i]),
        None => snippet,
    };
    Citation { number, path: hit.path.clone(), anchor: hit.anchor.clone(), snippet }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Finds `[n]`, `[n, m]` and `[n][m]` citation markers; returns (valid, invalid) numbers and
/// the text with invalid markers removed.
pub(crate) fn check_citations(text: &str, sources: usize) -> (Vec<u32>, Vec<u32>, String) {
    let mut valid = Vec::new();
    let mut invalid = Vec::new();
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
                let keep: Vec<u32> = ns.iter().copied().filter(|n| *n >= 1 && (*n as usize) <= sources).collect();
                for n in &ns {
                    if keep.contains(n) {
                        if !valid.contains(n) {
                            valid.push(*n);
                        }
                    } else if !invalid.contains(n) {
                        invalid.push(*n);
                    }
                }
                if !keep.is_empty() {
                    let list: Vec<String> = keep.iter().map(u32::to_string).collect();
                    out.push_str(&format!("[{}]", list.join(", ")));
                }
            }
            _ => out.push_str(&rest[open..open + 1 + close + 1]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    valid.sort_unstable();
    (valid, invalid, out)
}

impl Engine {
    fn load_chat_model(&self, choice: &LlmChoice) -> Result<Option<Arc<dyn ChatModel>>, EngineError> {
        let local = |path: PathBuf| -> Result<Arc<dyn ChatModel>, EngineError> {
            let mut cfg = LlamaModelConfig::new(path);
            cfg.context = 4096;
            Ok(Arc::new(cairn_llm::load_llama(&cfg)?))
        };
        let default_gguf = || {
            std::env::var_os("CAIRN_LLM_GGUF")
                .map(PathBuf::from)
                .unwrap_or_else(|| self.config.models_dir.join(DEFAULT_GGUF))
        };
        Ok(match choice {
            LlmChoice::None => None,
            LlmChoice::Local(p) => Some(local(p.clone())?),
            LlmChoice::OpenAi(cfg) => Some(Arc::new(OpenAiChat::new(cfg.clone()))),
            LlmChoice::Auto => match OpenAiConfig::from_env() {
                Some(cfg) => Some(Arc::new(OpenAiChat::new(cfg))),
                None => Some(local(default_gguf())?),
            },
        })
    }

    /// Answers `question` from the index. Tokens stream to `on_token` as they are generated.
    /// When no model can be loaded (or `LlmChoice::None`), the answer is the best passages,
    /// labelled as such; a model that fails mid-answer is an error carrying the partial text.
    pub async fn ask(
        &self,
        question: &str,
        opts: &AskOptions,
        on_token: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Answer, EngineError> {
        let hits = self.search(question, opts.max_sources.max(1)).await?;
        let passages = |reason: String, hits: &[Hit]| {
            let sources: Vec<Citation> = hits.iter().enumerate().map(|(i, h)| citation(i as u32 + 1, h)).collect();
            let text = sources
                .iter()
                .map(|c| format!("[{}] {} ({}): {}", c.number, file_name(&c.path), c.anchor.label(), c.snippet))
                .collect::<Vec<_>>()
                .join("\n");
            Answer {
                question: question.to_owned(),
                text,
                mode: AnswerMode::Passages { reason },
                cited: Vec::new(),
                sources,
                invalid_citations: Vec::new(),
                prompt_version: ANSWER_PROMPT_VERSION.into(),
                prompt_tokens: 0,
                completion_tokens: 0,
                truncated: false,
            }
        };
        if hits.is_empty() {
            return Ok(passages("nothing in the index matches the question".into(), &hits));
        }
        let model = match &opts.llm {
            LlmChoice::None => {
                return Ok(passages("answering without a language model (--no-llm)".into(), &hits));
            }
            choice => {
                let choice = choice.clone();
                match tokio::task::block_in_place(|| self.load_chat_model(&choice)) {
                    Ok(Some(m)) => m,
                    Ok(None) => return Ok(passages("no language model configured".into(), &hits)),
                    // A model the user named explicitly must work; only the default may fall back.
                    Err(e) if !matches!(choice, LlmChoice::Auto) => return Err(e),
                    Err(e) => {
                        return Ok(passages(format!("no language model could be loaded: {e}"), &hits));
                    }
                }
            }
        };

        // Fit the sources into the window: system prompt, question and answer budget first.
        let system = ANSWER_PROMPT.lines().filter(|l| !l.starts_with("<!--")).collect::<Vec<_>>().join("\n");
        let fixed = model.count_tokens(&system) + model.count_tokens(question) + opts.max_answer_tokens as usize + 64;
        if fixed >= model.context_window() {
            return Ok(passages("the question is too long for the model's context window".into(), &hits));
        }
        let mut budget = model.context_window() - fixed;
        let mut given: Vec<&Hit> = Vec::new();
        let mut blocks = Vec::new();
        for h in &hits {
            let n = given.len() + 1;
            let block = format!("[{n}] {} ({})\n{}", file_name(&h.path), h.anchor.label(), h.text.trim());
            let cost = model.count_tokens(&block) + 2;
            if cost > budget {
                continue;
            }
            budget -= cost;
            blocks.push(block);
            given.push(h);
        }
        if given.is_empty() {
            return Ok(passages("the sources do not fit the model's context window".into(), &hits));
        }
        let user = format!("Sources:\n\n{}\n\nQuestion: {}", blocks.join("\n\n"), question.trim());
        let req = ChatRequest {
            messages: vec![ChatMessage::system(system), ChatMessage::user(user)],
            max_tokens: opts.max_answer_tokens,
            temperature: 0.0,
        };
        let completion = tokio::task::block_in_place(|| {
            model.generate(&req, &mut |t| {
                on_token(t);
                ControlFlow::Continue(())
            })
        })?;
        let sources: Vec<Citation> = given.iter().enumerate().map(|(i, h)| citation(i as u32 + 1, h)).collect();
        let (cited, invalid, text) = check_citations(&completion.text, sources.len());
        Ok(Answer {
            question: question.to_owned(),
            text: text.trim().to_owned(),
            mode: AnswerMode::Generated { model: model.id() },
            sources,
            cited,
            invalid_citations: invalid,
            prompt_version: ANSWER_PROMPT_VERSION.into(),
            prompt_tokens: completion.prompt_tokens,
            completion_tokens: completion.completion_tokens,
            truncated: completion.finish == cairn_llm::Finish::Length,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_to_sources_never_given_are_removed_and_reported() {
        let (valid, invalid, text) = check_citations("Sales rose [1][7]. Margins fell [2, 9]. See [note].", 3);
        assert_eq!(valid, vec![1, 2]);
        assert_eq!(invalid, vec![7, 9]);
        assert_eq!(text, "Sales rose [1]. Margins fell [2]. See [note].");
        let (valid, invalid, _) = check_citations("No brackets closed [1", 3);
        assert!(valid.is_empty() && invalid.is_empty());
    }
}
