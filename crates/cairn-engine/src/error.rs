//! The engine's error: one type with a code the shells branch on and a message people read.

use cairn_core::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Embed(#[from] cairn_embed::EmbedError),
    #[error(transparent)]
    Store(#[from] cairn_store::StoreError),
    #[error(transparent)]
    Db(#[from] cairn_db::DbError),
    #[error(transparent)]
    Llm(#[from] cairn_llm::LlmError),
    /// The OS keyring could not be opened or refused the operation; never holds key text.
    #[error(transparent)]
    Secret(#[from] cairn_secrets::SecretError),
    /// A provider needs an API key and none was found; the message says how to store one.
    #[error("{message}")]
    NoApiKey { provider: String, message: String },
    #[error("{0}")]
    InvalidInput(String),
    #[error("nothing is indexed yet: run `cairn add <folder>` and `cairn index` first")]
    NotIndexed,
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("internal error: {0}")]
    Internal(String),
    /// A model call would exceed a hard budget; nothing was sent.
    #[error("budget exceeded: {0}")]
    BudgetExceeded(String),
    #[error(
        "another cairn process (`cairn index` or `cairn watch`) is writing to the index in {0}; try again when it has finished (a running watcher already picks up every change)"
    )]
    Busy(String),
    /// The administrator's policy forbids it; the message names the rule and the policy file.
    #[error("{0}")]
    PolicyDenied(String),
    /// The policy wants the user to confirm this action first (`--yes`, or a dialog).
    #[error("{0}")]
    ConfirmationRequired(String),
}

impl EngineError {
    pub(crate) fn io(what: String, source: std::io::Error) -> EngineError {
        EngineError::Io { what, source }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::Embed(e) => e.code(),
            EngineError::Store(_) => ErrorCode::Store,
            EngineError::Db(_) => ErrorCode::Database,
            EngineError::Llm(e) => e.code(),
            EngineError::Secret(
                cairn_secrets::SecretError::NoBackend { .. } | cairn_secrets::SecretError::Backend { .. },
            ) => ErrorCode::ProviderUnavailable,
            EngineError::Secret(_) => ErrorCode::InvalidInput,
            EngineError::NoApiKey { .. } => ErrorCode::AuthFailed,
            EngineError::InvalidInput(_) => ErrorCode::InvalidInput,
            EngineError::NotIndexed => ErrorCode::NotIndexed,
            EngineError::Io { .. } => ErrorCode::Io,
            EngineError::Internal(_) => ErrorCode::Store,
            EngineError::Busy(_) => ErrorCode::Busy,
            EngineError::BudgetExceeded(_) => ErrorCode::BudgetExceeded,
            EngineError::PolicyDenied(_) => ErrorCode::PolicyDenied,
            EngineError::ConfirmationRequired(_) => ErrorCode::ConfirmationRequired,
        }
    }
}
