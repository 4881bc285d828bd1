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
}
