//! Chat models behind one synchronous trait: an embedded llama.cpp model (`LlamaChat`) and any
//! OpenAI-compatible HTTP server (`OpenAiChat`: OpenAI, Ollama, llama.cpp server, LM Studio).
//!
//! This crate turns a list of chat messages into streamed text and honest token counts. It does
//! not build prompts, fit sources into the window, retrieve anything or know about citations:
//! the engine does that and calls [`ChatModel::generate`] from a blocking thread, forwarding each
//! piece of text through a channel. Nothing here is async on purpose.

mod error;
mod llama;
mod openai;
mod utf8;

pub use error::LlmError;
pub use llama::{LlamaChat, LlamaModelConfig, default_threads, load_llama};
pub use openai::{OpenAiChat, OpenAiConfig};

use std::ops::ControlFlow;

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

/// A finished (or cancelled) generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Everything streamed through `on_token`, concatenated.
    pub text: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// True when the counts came from the provider; false when this crate counted them (always
    /// exact for llama.cpp, an estimate for an HTTP server that sent no usage).
    pub usage_reported: bool,
    pub finish: Finish,
    /// The model that answered: the GGUF file name, or the model name the server reported.
    pub model: String,
}

/// A chat model. Implementations are synchronous and may block for a long time inside
/// `generate`; call it from a blocking thread.
pub trait ChatModel: Send + Sync {
    /// A stable label, e.g. `llama.cpp:SmolLM2-135M-Instruct.Q4_1.gguf` or
    /// `openai:gpt-4o-mini@http://localhost:11434/v1`.
    fn id(&self) -> String;
    /// Tokens the model can take: prompt and answer together.
    fn context_window(&self) -> usize;
    /// Tokens `text` costs. Exact for llama.cpp; a deliberate over-estimate for HTTP providers.
    fn count_tokens(&self, text: &str) -> usize;
    /// Generate an answer, calling `on_token` with each new piece of text as it arrives.
    /// Returning `ControlFlow::Break(())` from `on_token` stops generation; the result is then
    /// `Ok` with `Finish::Cancelled` and the text so far.
    fn generate(
        &self,
        req: &ChatRequest,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Completion, LlmError>;
}

/// A conservative token estimate for a tokenizer we cannot see: ASCII at 3 characters per token
/// (real BPE vocabularies average about 4) and every other character as a whole token (CJK is
/// about one token per character; accented Latin is over-counted, which is the safe side).
pub(crate) fn estimate_tokens(text: &str) -> usize {
    let (ascii, other) =
        text.chars().fold((0usize, 0usize), |(a, o), c| if c.is_ascii() { (a + 1, o) } else { (a, o + 1) });
    ascii.div_ceil(3) + other
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
