//! `LlmError`: everything that can go wrong loading or asking a chat model, with a stable code.
//!
//! Cancellation is not an error (it is `Finish::Cancelled` on an `Ok` completion), and a cut
//! stream keeps its partial text so an answer already shown to the user is never lost.

use cairn_core::ErrorCode;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The GGUF file is not there.
    #[error("model file not found: {} ({hint})", .path.display())]
    ModelMissing { path: PathBuf, hint: String },
    /// The file is there but llama.cpp could not load it (corrupt, unsupported architecture...).
    #[error("could not load model: {0}")]
    ModelLoad(String),
    /// Prompt plus `max_tokens` does not fit. Nothing was sent to the model.
    #[error("prompt needs {needed} tokens (answer included) but the model's window is {window}")]
    ContextOverflow { needed: usize, window: usize },
    /// The request itself is unusable (no messages, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The HTTP provider refused or failed: `status` is `None` when no HTTP answer came at all
    /// (connection refused, DNS, TLS). `message` is the server's `error.message` when it sent one.
    #[error("provider error{}: {message}", .status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Provider { status: Option<u16>, message: String },
    /// The provider sent nothing within the configured timeout.
    #[error("the model provider did not answer in time")]
    Timeout,
    /// The stream broke after it started; `partial` is everything received before the cut.
    #[error("the answer stream was cut after {} characters", .partial.chars().count())]
    StreamCut { partial: String },
    /// llama.cpp failed while evaluating (out of memory, decode error).
    #[error("generation failed: {0}")]
    Generation(String),
}

impl LlmError {
    /// The stable code callers branch on.
    pub fn code(&self) -> ErrorCode {
        match self {
            LlmError::ModelMissing { .. } | LlmError::ModelLoad(_) => ErrorCode::ModelMissing,
            LlmError::ContextOverflow { .. } | LlmError::InvalidRequest(_) => ErrorCode::InvalidInput,
            // Ollama and most servers answer 404 for a model name they do not have.
            LlmError::Provider { status: Some(404), .. } => ErrorCode::ModelMissing,
            LlmError::Provider { status: Some(400 | 413 | 422), .. } => ErrorCode::InvalidInput,
            LlmError::Provider { .. } | LlmError::Timeout | LlmError::StreamCut { .. } | LlmError::Generation(_) => {
                ErrorCode::ProviderUnavailable
            }
        }
    }

    /// The text that was already streamed before the failure, if any.
    pub fn partial_text(&self) -> Option<&str> {
        match self {
            LlmError::StreamCut { partial } => Some(partial),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let e = LlmError::Provider { status: Some(401), message: "bad key".into() };
        assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
        assert_eq!(e.to_string(), "provider error (HTTP 401): bad key");
        let e = LlmError::Provider { status: None, message: "refused".into() };
        assert_eq!(e.to_string(), "provider error: refused");
        assert_eq!(LlmError::Provider { status: Some(404), message: String::new() }.code(), ErrorCode::ModelMissing);
        assert_eq!(LlmError::ContextOverflow { needed: 9, window: 8 }.code(), ErrorCode::InvalidInput);
    }
}
