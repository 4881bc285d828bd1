//! Chat models behind one synchronous trait: an embedded llama.cpp model (`LlamaChat`), any
//! OpenAI-compatible HTTP server (`OpenAiChat`: OpenAI, Ollama, llama.cpp server, LM Studio,
//! vLLM, OpenRouter) and the Anthropic Messages API (`AnthropicChat`).
//!
//! This crate turns a list of chat messages into streamed text and honest token counts. It does
//! not build prompts, fit sources into the window, retrieve anything or know about citations:
//! the engine does that and calls [`ChatModel::generate`] from a blocking thread, forwarding each
//! piece of text through a channel. The API is synchronous on purpose; the HTTP providers run
//! their requests on a private one-thread runtime (as `reqwest::blocking` does) so that the
//! connect, first-token and idle timeouts can be enforced separately and a cancelled stream
//! drops its connection at once.

mod anthropic;
mod backoff;
mod error;
mod http;
mod llama;
mod openai;
mod sse;
mod utf8;

pub use anthropic::{ANTHROPIC_VERSION, AnthropicChat, AnthropicConfig};
pub use error::{LlmError, TimeoutPhase};
pub use http::HttpSettings;
pub use llama::{LlamaChat, LlamaModelConfig, default_threads, load_llama};
pub use openai::{OpenAiChat, OpenAiConfig};

use std::ops::ControlFlow;
use std::time::Instant;

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role name chat templates and the OpenAI API use.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage { role: Role::System, content: content.into() }
    }
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage { role: Role::User, content: content.into() }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage { role: Role::Assistant, content: content.into() }
    }
}

/// What to generate from. `temperature` 0 means greedy (deterministic for the local model).
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub max_tokens: u32,
    pub temperature: f32,
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// The model ended its answer (end-of-generation token, or the server said "stop").
    Stop,
    /// `max_tokens` was reached; the answer is probably cut short.
    Length,
    /// The caller's `on_token` returned `ControlFlow::Break`.
    Cancelled,
}

/// A finished (or cancelled) generation: what the user saw and what the ledger records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Everything streamed through `on_token`, concatenated.
    pub text: String,
    /// Prompt tokens, cached ones included (for Anthropic: `input_tokens` +
    /// `cache_read_input_tokens` + `cache_creation_input_tokens`).
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Of `prompt_tokens`, those the provider served from its prompt cache (OpenAI
    /// `usage.prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`).
    /// 0 for llama.cpp and for providers that do not say.
    pub cached_prompt_tokens: u32,
    /// Of `prompt_tokens`, those written to the prompt cache (Anthropic
    /// `cache_creation_input_tokens`, billed at a premium). 0 elsewhere.
    pub cache_write_tokens: u32,
    /// True when both counts came from the provider; false when this crate counted at least
    /// one of them (always exact for llama.cpp, where this is true; an estimate for an HTTP
    /// server that sent no usage, or for a cancelled stream, whose completion count is ours).
    pub usage_reported: bool,
    pub finish: Finish,
    /// The model that answered: the GGUF file name, or the model name the server reported.
    pub model: String,
    /// Milliseconds from the call to the first text, retries and backoff included. `None` when
    /// no text came (an empty answer).
    pub first_token_ms: Option<u64>,
    /// Milliseconds the whole call took, retries and backoff included.
    pub latency_ms: u64,
    /// HTTP requests made (1 without retries; always 1 for llama.cpp).
    pub attempts: u32,
    /// Things the user or the ledger should know that did not stop the answer, e.g. malformed
    /// stream events that were skipped, or a content filter that ended it.
    pub warnings: Vec<String>,
}

/// What `cairn providers test` shows for one provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    /// [`ChatModel::id`] of the provider probed.
    pub provider: String,
    /// The model name the server echoed (the configured one when it did not say).
    pub model: String,
    /// Milliseconds the whole probe took.
    pub latency_ms: u64,
    /// Milliseconds to the first text, when some came.
    pub first_token_ms: Option<u64>,
    /// True when the provider reported token usage in the stream (so the ledger is exact).
    pub usage_reported: bool,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub attempts: u32,
    /// What the model said (one token or so).
    pub text: String,
    pub warnings: Vec<String>,
}

/// A chat model. Implementations are synchronous and may block for a long time inside
/// `generate`; call it from a blocking thread.
pub trait ChatModel: Send + Sync {
    /// A stable label, e.g. `llama.cpp:SmolLM2-135M-Instruct.Q4_1.gguf`,
    /// `openai:gpt-4o-mini@http://localhost:11434/v1` or
    /// `anthropic:claude-sonnet-4-5@https://api.anthropic.com`.
    fn id(&self) -> String;
    /// Tokens the model can take: prompt and answer together.
    fn context_window(&self) -> usize;
    /// Tokens `text` costs. Exact for llama.cpp; a deliberate over-estimate for HTTP providers.
    fn count_tokens(&self, text: &str) -> usize;
    /// Generate an answer, calling `on_token` with each new piece of text as it arrives.
    /// Returning `ControlFlow::Break(())` from `on_token` stops generation (an HTTP stream is
    /// dropped, closing the connection); the result is then `Ok` with `Finish::Cancelled`, the
    /// text so far, and the completion tokens estimated.
    fn generate(
        &self,
        req: &ChatRequest,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Completion, LlmError>;

    /// A tiny real request (one answer token) to check the provider works: reachable, key
    /// accepted, model known, streaming usage present or not. The default generates one token
    /// through [`ChatModel::generate`], which is a faithful check for every provider here.
    fn probe(&self) -> Result<ProbeReport, LlmError> {
        let start = Instant::now();
        let req = ChatRequest { messages: vec![ChatMessage::user("Reply with OK.")], max_tokens: 1, temperature: 0.0 };
        let c = self.generate(&req, &mut |_| ControlFlow::Continue(()))?;
        Ok(ProbeReport {
            provider: self.id(),
            model: c.model,
            latency_ms: millis(start.elapsed()),
            first_token_ms: c.first_token_ms,
            usage_reported: c.usage_reported,
            prompt_tokens: c.prompt_tokens,
            completion_tokens: c.completion_tokens,
            attempts: c.attempts,
            text: c.text,
            warnings: c.warnings,
        })
    }
}

/// Whole milliseconds, saturating.
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Saturating `usize` to `u32` for token counts.
pub(crate) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A conservative token estimate for a tokenizer we cannot see: ASCII at 3 characters per token
/// (real BPE vocabularies average about 4) and every other character as a whole token (CJK is
/// about one token per character; accented Latin is over-counted, which is the safe side).
pub(crate) fn estimate_tokens(text: &str) -> usize {
    let (ascii, other) =
        text.chars().fold((0usize, 0usize), |(a, o), c| if c.is_ascii() { (a + 1, o) } else { (a, o + 1) });
    ascii.div_ceil(3) + other
}

/// Per-message formatting overhead when we count a prompt ourselves (role markers, separators).
const TOKENS_PER_MESSAGE: usize = 4;

/// A conservative estimate of a chat prompt for a tokenizer we cannot see.
pub(crate) fn estimate_prompt(messages: &[ChatMessage]) -> usize {
    messages.iter().map(|m| estimate_tokens(&m.content) + TOKENS_PER_MESSAGE).sum::<usize>() + 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_is_conservative() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 2);
        assert_eq!(estimate_tokens("日本語"), 3);
        assert_eq!(estimate_tokens("café"), 2);
    }
}
