//! Where the engine keeps its data and finds its models.

use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Holds `cairn.db` (SQLite) and `index/` (LanceDB).
    pub data_dir: PathBuf,
    /// Holds the embedding model, ONNX Runtime and the local chat model (see scripts/setup.sh).
    pub models_dir: PathBuf,
    /// ONNX Runtime threads for embedding; None uses every core.
    pub embed_threads: Option<usize>,
}

impl EngineConfig {
    /// `$CAIRN_DATA_DIR`, else the OS data directory (`$XDG_DATA_HOME/cairn` on Linux);
    /// models from `$CAIRN_MODELS_DIR`, else `<OS data dir>/cairn/models`.
    pub fn from_env() -> EngineConfig {
        let data_dir = std::env::var_os("CAIRN_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("cairn"));
        EngineConfig { data_dir, models_dir: cairn_embed::default_models_dir(), embed_threads: None }
    }

    pub fn with_data_dir(mut self, dir: PathBuf) -> EngineConfig {
        self.data_dir = dir;
        self
    }
}
