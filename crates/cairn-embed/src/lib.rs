//! Turning text into vectors: the `Embedder` trait, the local all-MiniLM-L6-v2 model run
//! through fastembed on a run-time-loaded ONNX Runtime, and OpenAI-compatible HTTP embedding
//! endpoints (`OpenAiEmbedder`).
//!
//! This crate owns everything about model files: where they are looked for, how they are
//! verified, and the tokenizer that chunking counts against. It deliberately knows nothing
//! of documents, stores or files beyond the model's own.

mod local;
mod model_files;
mod remote;

pub use local::LocalEmbedder;
pub use model_files::{KNOWN_MINILM_SHA256, ModelFiles, default_models_dir};
pub use remote::{EstimatingCounter, OpenAiEmbedConfig, OpenAiEmbedder};

use cairn_core::{ErrorCode, TokenCounter};
use std::time::Duration;

/// What embedding calls consumed, for the cost ledger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmbedUsage {
    /// Successful requests (batches).
    pub requests: u64,
    /// HTTP requests made for them, retries included.
    pub attempts: u64,
    /// Passages embedded.
    pub texts: u64,
    /// Input tokens: as the provider reported them, or estimated when it did not.
    pub prompt_tokens: u64,
    /// The part of `prompt_tokens` that was estimated here.
    pub estimated_tokens: u64,
}

impl EmbedUsage {
    pub fn add(&mut self, other: EmbedUsage) {
        self.requests += other.requests;
        self.attempts += other.attempts;
        self.texts += other.texts;
        self.prompt_tokens += other.prompt_tokens;
        self.estimated_tokens += other.estimated_tokens;
    }
}

/// Something that maps passages to fixed-length, L2-normalised vectors.
pub trait Embedder: Send + Sync {
    /// Identifies the model *and its weights*: two embedders with the same id give the same
    /// vectors. The store refuses to mix ids in one table.
    fn id(&self) -> &str;
    fn dimension(&self) -> usize;
    /// Embeds a batch. Every text must already fit `token_counter().max_tokens()`; the
    /// embedder never truncates silently, it refuses.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// Embeds a search query (same model; kept separate for models that prefix queries).
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut v = self.embed(&[text.to_owned()])?;
        v.pop().ok_or_else(|| EmbedError::Inference("model returned no vector".into()))
    }
    fn token_counter(&self) -> &dyn TokenCounter;
    /// Everything this embedder has consumed since it was created, for embedders that are
    /// billed per token (`None` for the local model). The engine diffs it around calls.
    fn total_usage(&self) -> Option<EmbedUsage> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{what} not found at {path}. Run `scripts/setup.sh` to fetch the models, or set {env} to where yours are")]
    Missing { what: &'static str, path: String, env: &'static str },
    #[error(
        "ONNX Runtime could not be loaded from {path}: {reason}. Run `scripts/setup.sh`, or set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.24 or newer"
    )]
    Runtime { path: String, reason: String },
    #[error(
        "the embedding model at {path} could not be loaded: {reason}. It may be damaged: run `scripts/setup.sh` to fetch it again"
    )]
    Model { path: String, reason: String },
    #[error("the tokenizer at {path} could not be loaded: {reason}")]
    Tokenizer { path: String, reason: String },
    #[error("a passage of {tokens} tokens is longer than the model's {max} (chunking should have split it)")]
    TooLong { tokens: usize, max: usize },
    #[error("embedding failed: {0}")]
    Inference(String),
    /// An HTTP embedding provider failed; `message` is written for the user, `code` for the UI,
    /// `retry_after` is the wait the provider asked for (rate limits).
    #[error("{message}")]
    Remote { code: ErrorCode, status: Option<u16>, message: String, retry_after: Option<Duration> },
    /// The provider now answers with vectors of another length than this embedder's: the model
    /// behind the name changed, and its vectors must not be mixed with the stored ones.
    #[error(
        "the embedding provider ({id}) now returns {got}-dimension vectors instead of {expected}: the model behind that name changed. Configure it under a new name (or re-index) so the old and new vectors are not mixed"
    )]
    DimensionChanged { id: String, expected: usize, got: usize },
}

impl EmbedError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EmbedError::Missing { .. }
            | EmbedError::Runtime { .. }
            | EmbedError::Model { .. }
            | EmbedError::Tokenizer { .. } => ErrorCode::ModelMissing,
            EmbedError::TooLong { .. } => ErrorCode::InvalidInput,
            EmbedError::Inference(_) => ErrorCode::ProviderUnavailable,
            EmbedError::Remote { code, .. } => *code,
            EmbedError::DimensionChanged { .. } => ErrorCode::InvalidInput,
        }
    }
}
