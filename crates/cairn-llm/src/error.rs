//! `LlmError`: everything that can go wrong loading or asking a chat model, with a stable code.
//!
//! Cancellation is not an error (it is `Finish::Cancelled` on an `Ok` completion), and a cut
//! stream keeps its partial text so an answer already shown to the user is never lost. Messages
//! are written for the person using the app; `code()` is for the code that decides what to do.
//! No variant ever holds an API key: every message that came from the network is scrubbed of
//! the configured key before it is put here.

use crate::backoff::{human_duration, wait_secs};
use cairn_core::ErrorCode;
use std::path::PathBuf;
use std::time::Duration;

/// Which wait ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// No connection (TCP and TLS) within `HttpSettings::connect_timeout`.
    Connect,
    /// No answer text within `HttpSettings::first_token_timeout` of sending the request.
    FirstToken,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The GGUF file is not there.
    #[error("model file not found: {} ({hint})", .path.display())]
    ModelMissing { path: PathBuf, hint: String },
    /// The file is there but llama.cpp could not load it (corrupt, unsupported architecture...).
    #[error("could not load model: {0}")]
    ModelLoad(String),
    /// Prompt plus `max_tokens` does not fit (counted here). Nothing was sent to the model.
    #[error("prompt needs {needed} tokens (answer included) but the model's window is {window}")]
    ContextOverflow { needed: usize, window: usize },
    /// The provider says the prompt is longer than the model takes (our estimate let it through).
    #[error("the provider says the prompt is too long for the model (HTTP {status}): {message}")]
    ProviderContextOverflow { status: u16, message: String },
    /// The request itself is unusable (no messages, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// 401: the key is wrong, revoked or missing. 403: the key may not use this model/endpoint.
    #[error("{}", auth_message(*.status, .message))]
    AuthFailed { status: u16, message: String },
    /// 429 after the allowed attempts, or with a `Retry-After` longer than we are willing to wait.
    /// `retry_after` is what the server asked for, so the UI can say "retry in N s".
    #[error("the provider is rate limiting requests (HTTP 429){}: {message}", retry_hint(*.retry_after))]
    RateLimited { retry_after: Option<Duration>, message: String },
    /// Any other failure of the HTTP provider. `status` is `None` when no HTTP answer came at
    /// all (connection refused, DNS, TLS, a connection closed before the answer began).
    /// `message` is the server's `error.message` when it sent one.
    #[error("{}", provider_message(*.status, .message, *.retry_after))]
    Provider { status: Option<u16>, message: String, retry_after: Option<Duration> },
    /// A wait ran out before any answer text arrived.
    #[error("{}", timeout_message(*.phase, *.after))]
    Timeout { phase: TimeoutPhase, after: Duration },
    /// The stream broke after text had been streamed. `partial` is everything received before
    /// the cut (already shown to the user through `on_token`); `partial_tokens` is its locally
    /// estimated token count and `prompt_tokens` the prompt's (reported by the provider when it
    /// said, else estimated), so the ledger can charge the call as estimated.
    #[error(
        "the answer broke off after {} characters (about {partial_tokens} tokens): {reason}",
        .partial.chars().count()
    )]
    StreamCut { partial: String, partial_tokens: u32, prompt_tokens: u32, reason: String },
    /// The provider answered 2xx but nothing in it could be read (only malformed events, not a
    /// server-sent-events stream, a JSON body of the wrong shape).
    #[error("the provider sent a response this client cannot read: {0}")]
    BadResponse(String),
    /// llama.cpp failed while evaluating (out of memory, decode error).
    #[error("generation failed: {0}")]
    Generation(String),
}

fn auth_message(status: u16, message: &str) -> String {
    if status == 403 {
        format!("the provider refused this API key access to the model (HTTP 403): {message}")
    } else {
        format!("the provider rejected the API key (HTTP {status}): {message}")
    }
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    retry_after.map(|d| format!(", retry in {} s", wait_secs(d).max(1))).unwrap_or_default()
}

fn provider_message(status: Option<u16>, message: &str, retry_after: Option<Duration>) -> String {
    let retry = retry_hint(retry_after);
    match status {
        None => format!("could not get an answer from the provider: {message}"),
        Some(404) => format!("the provider does not know this model or endpoint (HTTP 404): {message}"),
        Some(529) => format!("the provider is overloaded (HTTP 529){retry}: {message}"),
        Some(s) if s >= 500 => format!("the provider failed (HTTP {s}){retry}: {message}"),
        Some(s) if s >= 400 => format!("the provider refused the request (HTTP {s}): {message}"),
        Some(s) => format!("the provider answered HTTP {s}{retry}: {message}"),
    }
}

fn timeout_message(phase: TimeoutPhase, after: Duration) -> String {
    match phase {
        TimeoutPhase::Connect => format!("could not connect to the provider within {}", human_duration(after)),
        TimeoutPhase::FirstToken => {
            format!("the model sent no answer within {} of the request", human_duration(after))
        }
    }
}

impl LlmError {
    /// The stable code callers branch on.
    pub fn code(&self) -> ErrorCode {
        match self {
            LlmError::ModelMissing { .. } | LlmError::ModelLoad(_) => ErrorCode::ModelMissing,
            LlmError::ContextOverflow { .. } | LlmError::ProviderContextOverflow { .. } => ErrorCode::ContextOverflow,
            LlmError::InvalidRequest(_) => ErrorCode::InvalidInput,
            LlmError::AuthFailed { .. } => ErrorCode::AuthFailed,
            LlmError::RateLimited { .. } => ErrorCode::RateLimited,
            LlmError::Timeout { .. } => ErrorCode::Timeout,
            LlmError::StreamCut { .. } => ErrorCode::StreamCut,
            // Ollama, OpenAI and Anthropic answer 404 for a model name they do not have.
            LlmError::Provider { status: Some(404), .. } => ErrorCode::ModelMissing,
            LlmError::Provider { status: Some(400 | 413 | 422), .. } => ErrorCode::InvalidInput,
            LlmError::Provider { .. } | LlmError::BadResponse(_) | LlmError::Generation(_) => {
                ErrorCode::ProviderUnavailable
            }
        }
    }

    /// The text that was already streamed before the failure, if any.
    pub fn partial_text(&self) -> Option<&str> {
        match self {
            LlmError::StreamCut { partial, .. } => Some(partial),
            _ => None,
        }
    }

    /// How long the provider asked us to wait before trying again, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } | LlmError::Provider { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The error for an HTTP status the provider answered (or an error event that stands for one).
    pub(crate) fn from_status(status: u16, message: String, retry_after: Option<Duration>) -> LlmError {
        match status {
            401 | 403 => LlmError::AuthFailed { status, message },
            429 => LlmError::RateLimited { retry_after, message },
            400 | 413 | 422 if looks_like_context_overflow(&message) => {
                LlmError::ProviderContextOverflow { status, message }
            }
            _ => LlmError::Provider { status: Some(status), message, retry_after },
        }
    }

    /// The same error with the key scrubbed from every message that may have come from the
    /// network. The partial answer is the model's text and is left alone.
    pub(crate) fn redacted(self, secret: Option<&str>) -> LlmError {
        use crate::backoff::redact;
        let r = |m: String| redact(&m, secret);
        match self {
            LlmError::ProviderContextOverflow { status, message } => {
                LlmError::ProviderContextOverflow { status, message: r(message) }
            }
            LlmError::AuthFailed { status, message } => LlmError::AuthFailed { status, message: r(message) },
            LlmError::RateLimited { retry_after, message } => {
                LlmError::RateLimited { retry_after, message: r(message) }
            }
            LlmError::Provider { status, message, retry_after } => {
                LlmError::Provider { status, message: r(message), retry_after }
            }
            LlmError::StreamCut { partial, partial_tokens, prompt_tokens, reason } => {
                LlmError::StreamCut { partial, partial_tokens, prompt_tokens, reason: r(reason) }
            }
            LlmError::BadResponse(m) => LlmError::BadResponse(r(m)),
            other => other,
        }
    }
}

/// What OpenAI, Anthropic, vLLM and llama.cpp's server say when the prompt does not fit.
fn looks_like_context_overflow(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "context length",
        "context_length_exceeded",
        "context window",
        "context size",
        "prompt is too long",
        "too many tokens",
        "maximum context",
    ]
    .iter()
    .any(|p| m.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let e = LlmError::from_status(401, "invalid x-api-key".into(), None);
        assert_eq!(e.code(), ErrorCode::AuthFailed);
        assert_eq!(e.to_string(), "the provider rejected the API key (HTTP 401): invalid x-api-key");
        assert_eq!(LlmError::from_status(403, "no".into(), None).code(), ErrorCode::AuthFailed);
        let e = LlmError::from_status(429, "slow down".into(), Some(Duration::from_millis(41_200)));
        assert_eq!(e.code(), ErrorCode::RateLimited);
        assert_eq!(e.to_string(), "the provider is rate limiting requests (HTTP 429), retry in 42 s: slow down");
        assert_eq!(e.retry_after(), Some(Duration::from_millis(41_200)));
        let e = LlmError::from_status(529, "Overloaded".into(), None);
        assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
        assert_eq!(e.to_string(), "the provider is overloaded (HTTP 529): Overloaded");
        let e = LlmError::Provider { status: None, message: "connection refused".into(), retry_after: None };
        assert_eq!(e.to_string(), "could not get an answer from the provider: connection refused");
        assert_eq!(LlmError::from_status(404, String::new(), None).code(), ErrorCode::ModelMissing);
        assert_eq!(LlmError::from_status(400, "bad temperature".into(), None).code(), ErrorCode::InvalidInput);
        let e = LlmError::from_status(400, "prompt is too long: 210000 tokens > 200000 maximum".into(), None);
        assert_eq!(e.code(), ErrorCode::ContextOverflow);
        assert_eq!(LlmError::ContextOverflow { needed: 9, window: 8 }.code(), ErrorCode::ContextOverflow);
        let e = LlmError::Timeout { phase: TimeoutPhase::FirstToken, after: Duration::from_secs(60) };
        assert_eq!(e.code(), ErrorCode::Timeout);
        assert_eq!(e.to_string(), "the model sent no answer within 60 s of the request");
        let e = LlmError::StreamCut {
            partial: "Paris is".into(),
            partial_tokens: 3,
            prompt_tokens: 20,
            reason: "the connection broke".into(),
        };
        assert_eq!(e.code(), ErrorCode::StreamCut);
        assert_eq!(e.to_string(), "the answer broke off after 8 characters (about 3 tokens): the connection broke");
        assert_eq!(e.partial_text(), Some("Paris is"));
    }

    #[test]
    fn redaction_reaches_every_message() {
        let e = LlmError::from_status(401, "Incorrect API key provided: sk-live-123456".into(), None);
        let e = e.redacted(Some("sk-live-123456"));
        assert_eq!(
            e.to_string(),
            "the provider rejected the API key (HTTP 401): Incorrect API key provided: <redacted>"
        );
    }
}
