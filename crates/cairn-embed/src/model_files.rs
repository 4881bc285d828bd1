//! Where the embedding model, its tokenizer and ONNX Runtime live on disk.
//!
//! `scripts/setup.sh` puts them in the models directory; a user may point elsewhere with
//! environment variables. This module only resolves and checks paths; loading is `local.rs`.

use crate::EmbedError;
use std::path::{Path, PathBuf};

/// sha256 of the int8 all-MiniLM-L6-v2 graph that `scripts/setup.sh` fetches. A file with this
/// hash gets a readable embedder id; any other file is still accepted (a user's own copy) and
/// is identified by its own hash, so vectors of two different files never mix.
pub const KNOWN_MINILM_SHA256: &str = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6";

/// The files one local embedder needs.
#[derive(Clone, Debug)]
pub struct ModelFiles {
    /// The ONNX graph.
    pub onnx: PathBuf,
    /// Folder holding tokenizer.json, config.json, special_tokens_map.json, tokenizer_config.json.
    pub tokenizer_dir: PathBuf,
    /// libonnxruntime.so (1.24 or newer).
    pub ort_library: PathBuf,
}

/// `$CAIRN_MODELS_DIR`, else `<XDG data dir>/cairn/models`.
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAIRN_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("cairn").join("models")
}

impl ModelFiles {
    /// The layout `scripts/setup.sh` writes, with per-file overrides from the environment:
    /// `CAIRN_EMBED_ONNX`, `CAIRN_EMBED_TOKENIZER_DIR`, `ORT_DYLIB_PATH`.
    pub fn in_dir(models_dir: &Path) -> ModelFiles {
        let minilm = models_dir.join("all-MiniLM-L6-v2");
        let env_path = |name: &str| std::env::var_os(name).map(PathBuf::from);
        ModelFiles {
            onnx: env_path("CAIRN_EMBED_ONNX").unwrap_or_else(|| minilm.join("model.onnx")),
            tokenizer_dir: env_path("CAIRN_EMBED_TOKENIZER_DIR").unwrap_or(minilm),
            ort_library: env_path("ORT_DYLIB_PATH")
                .unwrap_or_else(|| models_dir.join("onnxruntime").join("libonnxruntime.so")),
        }
    }

    /// Fails with a message naming the first missing file and what to run.
    pub fn check(&self) -> Result<(), EmbedError> {
        let need = [
            (&self.ort_library, "ONNX Runtime library", "ORT_DYLIB_PATH"),
            (&self.onnx, "embedding model", "CAIRN_EMBED_ONNX"),
        ];
        for (path, what, env) in need {
            if !path.is_file() {
                return Err(EmbedError::Missing { what, path: path.display().to_string(), env });
            }
        }
        for name in ["tokenizer.json", "config.json", "special_tokens_map.json", "tokenizer_config.json"] {
            let path = self.tokenizer_dir.join(name);
            if !path.is_file() {
                return Err(EmbedError::Missing {
                    what: "tokenizer file",
                    path: path.display().to_string(),
                    env: "CAIRN_EMBED_TOKENIZER_DIR",
                });
            }
        }
        Ok(())
    }
}
