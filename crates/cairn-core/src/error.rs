//! Error codes that callers branch on. Messages are for people; codes are for code.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable reason. The CLI prints it in `--json` output and the desktop app
/// will branch on it, so variants are only ever added, never renamed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    #[error("model or runtime missing")]
    ModelMissing,
    #[error("provider unavailable")]
    ProviderUnavailable,
    #[error("not indexed")]
    NotIndexed,
    #[error("invalid input")]
    InvalidInput,
    #[error("store error")]
    Store,
    #[error("database error")]
    Database,
    #[error("i/o error")]
    Io,
    #[error("cancelled")]
    Cancelled,
    #[error("busy")]
    Busy,
    /// The provider refused the API key (HTTP 401) or its permissions (403).
    #[error("authentication failed")]
    AuthFailed,
    /// The provider is rate limiting us (HTTP 429); the error says when to retry if it knows.
    #[error("rate limited")]
    RateLimited,
    /// A connect or first-token wait ran out before any answer arrived.
    #[error("timed out")]
    Timeout,
    /// An answer stream broke midway; the partial text is kept.
    #[error("answer stream cut")]
    StreamCut,
    /// The prompt does not fit the model's context window.
    #[error("context window exceeded")]
    ContextOverflow,
    /// A model call would exceed a hard budget; nothing was sent.
    #[error("budget exceeded")]
    BudgetExceeded,
    /// An administrator's policy forbids this.
    #[error("denied by policy")]
    PolicyDenied,
    /// The administrator's policy asks the user to confirm this first.
    #[error("confirmation required")]
    ConfirmationRequired,
}
