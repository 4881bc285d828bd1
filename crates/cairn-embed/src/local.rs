//! The local embedder: all-MiniLM-L6-v2 (or a user's own BERT-style ONNX file) via fastembed.
//!
//! ONNX Runtime is loaded here, by us, before fastembed touches it: `ort` panics on first use
//! when the library is missing or too old, and we want an error that says what to run.

use crate::{EmbedError, Embedder, KNOWN_MINILM_SHA256, ModelFiles};
use cairn_core::TokenCounter;
use fastembed::{InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel};
use sha2::{Digest, Sha256};
use std::sync::{Mutex, OnceLock};

/// all-MiniLM-L6-v2 was trained on 256-token inputs; its tokenizer config claims 512, which
/// would silently degrade vectors for long passages.
const MAX_TOKENS: usize = 256;
const BATCH: usize = 32;

/// ONNX Runtime allows one environment per process; every embedder shares it.
static ORT_ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

pub struct LocalEmbedder {
    model: Mutex<TextEmbedding>,
    counter: MiniLmCounter,
    id: String,
    dimension: usize,
}

struct MiniLmCounter {
    tokenizer: tokenizers::Tokenizer,
}

impl TokenCounter for MiniLmCounter {
    fn count(&self, text: &str) -> usize {
        // Counting never truncates: the tokenizer was loaded with truncation and padding off.
        // WordPiece turns any word over 100 characters into one [UNK] token, so a 2 MB line
        // with no spaces would "fit" in 3 tokens and be embedded as nothing. Count at least one
        // token per 8 characters (English averages ~4.5) so such runs are split like any other.
        let floor = text.chars().count().div_ceil(8);
        match self.tokenizer.encode_fast(text, true) {
            Ok(enc) => enc.len().max(floor),
            // An input the tokenizer rejects cannot be embedded either; report it as too long
            // so chunking splits it further instead of passing it on.
            Err(_) => usize::MAX,
        }
    }
    fn max_tokens(&self) -> usize {
        MAX_TOKENS
    }
}

impl LocalEmbedder {
    /// Loads ONNX Runtime, the model and its tokenizer. `threads` limits ONNX Runtime's
    /// intra-op threads (None: all cores).
    pub fn load(files: &ModelFiles, threads: Option<usize>) -> Result<LocalEmbedder, EmbedError> {
        files.check()?;
        let env = ORT_ENV.get_or_init(|| init_runtime(files)).clone();
        let env =
            env.map_err(|reason| EmbedError::Runtime { path: files.ort_library.display().to_string(), reason })?;

        let onnx = std::fs::read(&files.onnx)
            .map_err(|e| EmbedError::Model { path: files.onnx.display().to_string(), reason: e.to_string() })?;
        let sha = hex(&Sha256::digest(&onnx));
        let id = if sha == KNOWN_MINILM_SHA256 {
            "all-MiniLM-L6-v2-int8".to_owned()
        } else {
            format!("onnx-{}", &sha[..16])
        };

        let read = |name: &str| {
            let path = files.tokenizer_dir.join(name);
            std::fs::read(&path)
                .map_err(|e| EmbedError::Tokenizer { path: path.display().to_string(), reason: e.to_string() })
        };
        let tokenizer_files = TokenizerFiles {
            tokenizer_file: read("tokenizer.json")?,
            config_file: read("config.json")?,
            special_tokens_map_file: read("special_tokens_map.json")?,
            tokenizer_config_file: read("tokenizer_config.json")?,
        };
        let mut tokenizer =
            tokenizers::Tokenizer::from_bytes(&tokenizer_files.tokenizer_file).map_err(|e| EmbedError::Tokenizer {
                path: files.tokenizer_dir.join("tokenizer.json").display().to_string(),
                reason: e.to_string(),
            })?;
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| EmbedError::Tokenizer {
            path: files.tokenizer_dir.display().to_string(),
            reason: e.to_string(),
        })?;

        // Mean pooling is essential: fastembed's user-defined default is CLS, which gives
        // plausible-looking but wrong vectors for MiniLM.
        let model = UserDefinedEmbeddingModel::new(onnx, tokenizer_files).with_pooling(Pooling::Mean);
        // No spinning: idle ONNX Runtime threads otherwise burn a core each between batches,
        // which a desktop user notices as a hot, slow machine.
        let mut options = InitOptionsUserDefined::new()
            .with_environment(env)
            .with_max_length(MAX_TOKENS)
            .with_session_config("session.intra_op.allow_spinning", "0");
        if let Some(t) = threads {
            options = options.with_intra_threads(t.max(1));
        }
        let mut embedding = TextEmbedding::try_new_from_user_defined(model, options)
            .map_err(|e| EmbedError::Model { path: files.onnx.display().to_string(), reason: e.to_string() })?;
        let probe = embedding
            .embed(["dimension probe"], None)
            .map_err(|e| EmbedError::Model { path: files.onnx.display().to_string(), reason: e.to_string() })?;
        let dimension = probe.first().map(Vec::len).unwrap_or(0);
        if dimension == 0 {
            return Err(EmbedError::Model {
                path: files.onnx.display().to_string(),
                reason: "model produced empty vectors".into(),
            });
        }
        Ok(LocalEmbedder {
            model: Mutex::new(embedding),
            counter: MiniLmCounter { tokenizer },
            id: format!("{id}/{dimension}"),
            dimension,
        })
    }
}

fn init_runtime(files: &ModelFiles) -> Result<ort::environment::Environment, String> {
    let builder = ort::init_from(&files.ort_library).map_err(|e| e.to_string())?;
    // ONNX Runtime's official builds may send usage telemetry to Microsoft (and on POSIX keep a
    // device id under ~/.cache/Microsoft). Nothing of the user's leaves the machine unless they
    // configure a remote model, so it is switched off.
    builder.with_name("cairn").with_telemetry(false).build().map_err(|e| e.to_string())
}

impl Embedder for LocalEmbedder {
    fn id(&self) -> &str {
        &self.id
    }
    fn dimension(&self) -> usize {
        self.dimension
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        for t in texts {
            let tokens = self.counter.count(t);
            if tokens > MAX_TOKENS {
                return Err(EmbedError::TooLong { tokens, max: MAX_TOKENS });
            }
        }
        let mut model = self.model.lock().map_err(|_| EmbedError::Inference("embedder lock poisoned".into()))?;
        model.embed(texts, Some(BATCH)).map_err(|e| EmbedError::Inference(e.to_string()))
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        // A query longer than the model takes is cut to fit: unlike a passage, nothing is lost
        // from the index, and refusing a long question would be worse for the user.
        let text = fit_query(&self.counter, text);
        let mut v = self.embed(&[text])?;
        v.pop().ok_or_else(|| EmbedError::Inference("model returned no vector".into()))
    }
    fn token_counter(&self) -> &dyn TokenCounter {
        &self.counter
    }
}

fn fit_query(counter: &MiniLmCounter, text: &str) -> String {
    if counter.count(text) <= MAX_TOKENS {
        return text.to_owned();
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let (mut lo, mut hi) = (0, words.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if counter.count(&words[..mid].join(" ")) <= MAX_TOKENS { lo = mid } else { hi = mid - 1 }
    }
    words[..lo].join(" ")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
