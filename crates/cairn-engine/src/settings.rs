//! The user's settings: which providers exist, which one answers and which one embeds, the
//! answer parameters, budgets and price overrides. Kept as `settings.toml` in the data folder,
//! next to the index it configures, so `--data-dir` isolates everything and the desktop app
//! and the CLI always agree.
//!
//! API keys are deliberately not settings: they come from the OS keyring or the environment
//! (`keys.rs`), and no field here can hold one (an unknown field such as `api_key` is
//! refused when the file is read).

use crate::EngineError;
use cairn_ledger::{BudgetLimits, BudgetRules, Money, PriceEntry};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The built-in provider: the embedded llama.cpp model (chat) or the local ONNX model
/// (embeddings). Always present, never needs a key, costs nothing.
pub const LOCAL: &str = "local";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub chat: ChatSettings,
    #[serde(default)]
    pub embeddings: EmbeddingSettings,
    #[serde(default)]
    pub answer: AnswerSettings,
    #[serde(default)]
    pub local: LocalSettings,
    #[serde(default)]
    pub budget: BudgetSettings,
    #[serde(default)]
    pub learning: LearningSettings,
    #[serde(default)]
    pub privacy: PrivacySettings,
    #[serde(default)]
    pub open: OpenSettings,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderSettings>,
    /// Price overrides and additions, layered over Cairn's table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<PriceSetting>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSettings {
    /// The provider that answers: `local` or the `name` of an entry in `[[providers]]`.
    #[serde(default = "local")]
    pub provider: String,
    /// Where a call goes when it would exceed a budget; unset means it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

impl Default for ChatSettings {
    fn default() -> Self {
        ChatSettings { provider: local(), fallback: None }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSettings {
    /// `local` (the bundled MiniLM) or a provider of kind `openai` with `embedding_model` set.
    #[serde(default = "local")]
    pub provider: String,
}

impl Default for EmbeddingSettings {
    fn default() -> Self {
        EmbeddingSettings { provider: local() }
    }
}

fn local() -> String {
    LOCAL.to_owned()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerSettings {
    /// Most sources offered to the model (fewer when the window is small).
    #[serde(default = "default_max_sources")]
    pub max_sources: usize,
    #[serde(default = "default_max_answer_tokens")]
    pub max_answer_tokens: u32,
    #[serde(default)]
    pub temperature: f32,
    /// Pin the answer prompt to a version; unset uses the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_version: Option<u32>,
    /// Reuse an earlier answer to the same question over the same, unchanged sources.
    #[serde(default = "yes")]
    pub cache: bool,
    /// Share of the context window earlier turns of a conversation may take.
    #[serde(default = "default_history_share")]
    pub history_share: f32,
    /// Below this confidence (0 to 1) Cairn abstains before calling a model ("not enough
    /// evidence", with the best sources), and flags a generated answer for review. 0 turns
    /// both off. The default comes from the SciFact calibration (ARCHITECTURE.md, "Confidence
    /// and review").
    #[serde(default = "default_min_confidence")]
    pub min_confidence: f32,
}

impl Default for AnswerSettings {
    fn default() -> Self {
        AnswerSettings {
            max_sources: default_max_sources(),
            max_answer_tokens: default_max_answer_tokens(),
            temperature: 0.0,
            prompt_version: None,
            cache: true,
            history_share: default_history_share(),
            min_confidence: default_min_confidence(),
        }
    }
}

fn default_max_sources() -> usize {
    6
}
fn default_max_answer_tokens() -> u32 {
    384
}
fn default_history_share() -> f32 {
    0.25
}
/// The highest threshold that abstains on at most 10% of SciFact's train claims with evidence
/// (`scripts/calibrate_confidence.py`).
fn default_min_confidence() -> f32 {
    0.43
}
fn yes() -> bool {
    true
}

/// What happens when a question's best sources include passages from local-only folders
/// (labelled by the user with `cairn folder local-only`, or by the administrator's policy) and
/// the chosen provider is remote. Their text is never sent either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalOnlySources {
    /// Answer this question with the embedded local model, with every source.
    #[default]
    Local,
    /// Keep the remote provider and leave those sources out, with a notice.
    Omit,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    #[serde(default)]
    pub local_only_sources: LocalOnlySources,
}

/// How a cited source is opened at its page or line. The system opener can only open a file; a
/// command here, when set, opens it at the place cited. `{path}`, `{page}` and `{line}` are
/// replaced in each word of the command (the path stays one argument whatever it contains), e.g.
/// `pdf = "evince --page-index={page} {path}"`, `okular -p {page} {path}`,
/// `text = "gedit +{line} {path}"`, `code -g {path}:{line}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSettings {
    /// For PDF sources with a page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdf: Option<String>,
    /// For sources with lines (text, Markdown, code...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl OpenSettings {
    /// The command (program and arguments) that opens `path` at `page` or `line`, when one is
    /// configured for this kind of file and the place is known.
    pub fn command(&self, path: &str, page: Option<u32>, line: Option<u32>) -> Option<Vec<String>> {
        let is_pdf = path.to_ascii_lowercase().ends_with(".pdf");
        let (template, place, key) = match (is_pdf, page, line) {
            (true, Some(p), _) => (self.pdf.as_deref()?, p, "{page}"),
            (false, _, Some(l)) => (self.text.as_deref()?, l, "{line}"),
            _ => return None,
        };
        let words: Vec<String> =
            template.split_whitespace().map(|w| w.replace(key, &place.to_string()).replace("{path}", path)).collect();
        (!words.is_empty()).then_some(words)
    }
}

/// Learning the ranking from feedback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearningSettings {
    /// Retrain after this many new source judgements (0: never on that account).
    #[serde(default = "default_retrain_every")]
    pub retrain_every: u32,
    /// Also retrain on a schedule while Cairn runs (`cairn watch`, the desktop app): when this
    /// many hours have passed since the last training and feedback has come in since (0: off).
    #[serde(default = "default_retrain_hours")]
    pub retrain_hours: f64,
    /// Questions with the files (or pages) that should answer them, one JSON object per line
    /// (a relative path is relative to the data folder, where settings.toml is):
    /// `{"question": "...", "expected": ["report.pdf", "notes/plan.md#page=3"]}`. A candidate
    /// ranker that scores lower on it than the active one is never promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub golden_set: Option<PathBuf>,
    /// How much nDCG@10 on the golden set a candidate may lose and still be promoted.
    #[serde(default)]
    pub golden_tolerance: f64,
}

impl Default for LearningSettings {
    fn default() -> Self {
        LearningSettings {
            retrain_every: default_retrain_every(),
            retrain_hours: default_retrain_hours(),
            golden_set: None,
            golden_tolerance: 0.0,
        }
    }
}

fn default_retrain_every() -> u32 {
    20
}

fn default_retrain_hours() -> f64 {
    24.0
}

/// The embedded llama.cpp model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSettings {
    /// A GGUF file; unset uses the model `scripts/setup.sh` fetched (or `$CAIRN_LLM_GGUF`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// Context window in tokens (default 4096).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_usd: Option<f64>,
    /// Warn when a cap is this full (0.8 = 80%).
    #[serde(default = "default_warn_at")]
    pub warn_at: f64,
    /// Caps for single providers, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub providers: BTreeMap<String, ProviderBudget>,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings { daily_usd: None, monthly_usd: None, warn_at: default_warn_at(), providers: BTreeMap::new() }
    }
}

fn default_warn_at() -> f64 {
    0.8
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderBudget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_usd: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any server speaking OpenAI's chat completions API: OpenAI, Ollama, llama.cpp's server,
    /// LM Studio, vLLM, OpenRouter...
    #[default]
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
}

/// A configured model provider. `Default` leaves every optional field unset (for struct-update
/// syntax: `ProviderSettings { name, model, ..Default::default() }`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    pub name: String,
    pub kind: ProviderKind,
    /// Defaults: `https://api.openai.com/v1`, `https://api.anthropic.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The chat model.
    pub model: String,
    /// The embedding model, for providers that also embed (`kind = "openai"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
    /// Tokens the model takes, prompt and answer together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<usize>,
    /// Connecting, and waiting for the first token (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// This provider's prices, when Cairn's table does not know it (or knows it wrong).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<ProviderPrice>,
    /// Whether this provider's traffic leaves the machine. Unset: decided by the host (a
    /// loopback server is local). Set `true` for a local proxy or gateway that forwards to a
    /// cloud service (LiteLLM and the like): the privacy gate and the policy then treat it as
    /// remote. `false` changes nothing: a host that is not loopback is always remote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<bool>,
}

/// Dollars per million tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderPrice {
    pub input: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    #[serde(default)]
    pub output: f64,
}

/// A `[[prices]]` entry: same fields as Cairn's own table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSetting {
    pub vendor: String,
    pub model: String,
    pub from: String,
    pub input: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    #[serde(default)]
    pub output: f64,
}

impl ProviderSettings {
    pub fn base_url(&self) -> String {
        match (&self.base_url, self.kind) {
            (Some(u), _) => u.trim_end_matches('/').to_owned(),
            (None, ProviderKind::Openai) => "https://api.openai.com/v1".to_owned(),
            (None, ProviderKind::Anthropic) => "https://api.anthropic.com".to_owned(),
        }
    }

    /// The host part of the base URL (`api.openai.com`, `localhost`).
    pub fn host(&self) -> String {
        host_of(&self.base_url())
    }

    /// Whether the server runs on this machine (loopback): such calls cost nothing and never
    /// leave the computer.
    pub fn is_local(&self) -> bool {
        // `remote = true` makes a loopback server remote; nothing makes another host local.
        if self.remote == Some(true) {
            return false;
        }
        let host = self.host();
        // Only a real loopback address: `127.evil.example` is a name, not 127.0.0.0/8.
        host == "localhost"
            || host == "::1"
            || host == "[::1]"
            || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The vendor whose list prices apply: only the vendors' own endpoints have them.
    pub fn vendor(&self) -> Option<&'static str> {
        match self.host().as_str() {
            "api.openai.com" => Some("openai"),
            "api.anthropic.com" => Some("anthropic"),
            _ => None,
        }
    }
}

/// `https://user@host:port/path` → `host`, parsed by the same WHATWG URL parser the HTTP
/// client uses (so `http://a.example\\@127.0.0.1/` is `a.example`, as the request will go
/// there); IPv6 in brackets. Empty when the URL does not parse.
pub(crate) fn host_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match u.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(h) => h.to_string().to_ascii_lowercase(),
            None => String::new(),
        },
        Err(_) => String::new(),
    }
}

impl Settings {
    /// `settings.toml` in `data_dir`.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("settings.toml")
    }

    /// Reads the settings; a missing file is the defaults. A file that does not parse or names
    /// something that does not exist is an error that says where and why.
    pub fn load(data_dir: &Path) -> Result<Settings, EngineError> {
        let path = Self::path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(e) => return Err(EngineError::io(format!("reading {}", path.display()), e)),
        };
        let settings: Settings = toml::from_str(&text).map_err(|e| {
            let at =
                e.span().map(|s| format!(" (line {})", text[..s.start].matches('\n').count() + 1)).unwrap_or_default();
            EngineError::InvalidInput(format!("{}{at}: {}", path.display(), e.message()))
        })?;
        settings.validate().map_err(|e| EngineError::InvalidInput(format!("{}: {e}", path.display())))?;
        Ok(settings)
    }

    /// Writes the settings atomically (temporary file, then rename), after validating them.
    pub fn save(&self, data_dir: &Path) -> Result<(), EngineError> {
        self.validate().map_err(EngineError::InvalidInput)?;
        let path = Self::path(data_dir);
        let body = toml::to_string_pretty(self).map_err(|e| EngineError::Internal(format!("writing settings: {e}")))?;
        let text = format!(
            "# Cairn settings. Edit by hand, or with `cairn providers`, `cairn budget` and the desktop app.\n# API keys are never stored here: `cairn key set NAME` keeps them in the OS keyring.\n\n{body}"
        );
        std::fs::create_dir_all(data_dir)
            .map_err(|e| EngineError::io(format!("creating {}", data_dir.display()), e))?;
        let tmp = data_dir.join(".settings.toml.tmp");
        std::fs::write(&tmp, text).map_err(|e| EngineError::io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| EngineError::io(format!("replacing {}", path.display()), e))?;
        Ok(())
    }

    /// Every name refers to something that exists and every number is in range.
    pub fn validate(&self) -> Result<(), String> {
        let l = &self.learning;
        if !(l.retrain_hours.is_finite() && l.retrain_hours >= 0.0) {
            return Err(format!("[learning] retrain_hours = {} must be 0 (off) or more hours", l.retrain_hours));
        }
        if !(0.0..=1.0).contains(&l.golden_tolerance) {
            return Err(format!(
                "[learning] golden_tolerance = {} must be between 0 and 1 (the nDCG@10 a candidate may lose)",
                l.golden_tolerance
            ));
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.providers {
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(format!("provider name `{}` must be letters, digits, `-` or `_`", p.name));
            }
            if p.name == LOCAL {
                return Err("`local` is the built-in provider; give yours another name".into());
            }
            if !names.insert(p.name.as_str()) {
                return Err(format!("two providers are named `{}`", p.name));
            }
            if p.model.trim().is_empty() {
                return Err(format!("provider `{}` needs a `model`", p.name));
            }
            let url = p.base_url();
            if !(url.starts_with("http://") || url.starts_with("https://")) || host_of(&url).is_empty() {
                return Err(format!("provider `{}`: base_url `{url}` must be an http:// or https:// address", p.name));
            }
            if p.embedding_model.is_some() && p.kind != ProviderKind::Openai {
                return Err(format!("provider `{}`: only `kind = \"openai\"` providers serve embeddings", p.name));
            }
        }
        let known = |n: &str| n == LOCAL || names.contains(n);
        if !known(&self.chat.provider) {
            return Err(format!("[chat] provider `{}` is not `local` or a configured provider", self.chat.provider));
        }
        if let Some(f) = &self.chat.fallback
            && !known(f)
        {
            return Err(format!("[chat] fallback `{f}` is not `local` or a configured provider"));
        }
        let e = &self.embeddings.provider;
        if e != LOCAL {
            match self.providers.iter().find(|p| &p.name == e) {
                None => return Err(format!("[embeddings] provider `{e}` is not `local` or a configured provider")),
                Some(p) if p.embedding_model.is_none() => {
                    return Err(format!("[embeddings] provider `{e}` has no `embedding_model`"));
                }
                Some(_) => {}
            }
        }
        for name in self.budget.providers.keys() {
            if !known(name) {
                return Err(format!("[budget.providers.{name}] names no configured provider"));
            }
        }
        let money = [self.budget.daily_usd, self.budget.monthly_usd]
            .into_iter()
            .chain(self.budget.providers.values().flat_map(|b| [b.daily_usd, b.monthly_usd]));
        for v in money.flatten() {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("a budget must be zero or more dollars, not {v}"));
            }
        }
        if !(self.budget.warn_at > 0.0 && self.budget.warn_at <= 1.0) {
            return Err(format!("[budget] warn_at must be between 0 and 1, not {}", self.budget.warn_at));
        }
        if self.answer.max_sources == 0 || self.answer.max_sources > 50 {
            return Err(format!("[answer] max_sources must be 1 to 50, not {}", self.answer.max_sources));
        }
        if self.answer.max_answer_tokens < 16 || self.answer.max_answer_tokens > 32_768 {
            return Err(format!(
                "[answer] max_answer_tokens must be 16 to 32768, not {}",
                self.answer.max_answer_tokens
            ));
        }
        if !(0.0..=2.0).contains(&self.answer.temperature) {
            return Err(format!("[answer] temperature must be 0 to 2, not {}", self.answer.temperature));
        }
        if !(0.0..=0.9).contains(&self.answer.history_share) {
            return Err(format!("[answer] history_share must be 0 to 0.9, not {}", self.answer.history_share));
        }
        if !(0.0..=1.0).contains(&self.answer.min_confidence) {
            return Err(format!(
                "[answer] min_confidence must be 0 (never abstain) to 1, not {}",
                self.answer.min_confidence
            ));
        }
        Ok(())
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderSettings> {
        self.providers.iter().find(|p| p.name == name)
    }

    pub(crate) fn budget_rules(&self) -> BudgetRules {
        let limits = |d: Option<f64>, m: Option<f64>| BudgetLimits {
            daily: d.map(Money::from_dollars),
            monthly: m.map(Money::from_dollars),
        };
        BudgetRules {
            global: limits(self.budget.daily_usd, self.budget.monthly_usd),
            providers: self
                .budget
                .providers
                .iter()
                .map(|(n, b)| (n.clone(), limits(b.daily_usd, b.monthly_usd)))
                .collect(),
            warn_at: self.budget.warn_at,
        }
    }

    pub(crate) fn price_entries(&self) -> Vec<PriceEntry> {
        self.prices
            .iter()
            .map(|p| PriceEntry {
                vendor: p.vendor.clone(),
                model: p.model.clone(),
                from: p.from.clone(),
                input: p.input,
                cached_input: p.cached_input,
                output: p.output,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn load(text: &str) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(Settings::path(dir.path()), text).unwrap();
        Settings::load(dir.path()).map_err(|e| e.to_string().replace(&dir.path().display().to_string(), "DIR"))
    }

    #[test]
    fn defaults_round_trip_and_a_missing_file_is_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Settings::load(dir.path()).unwrap(), Settings::default());
        let mut s = Settings::default();
        s.providers.push(ProviderSettings {
            name: "ollama".into(),
            kind: ProviderKind::Openai,
            base_url: Some("http://localhost:11434/v1".into()),
            model: "llama3.1:8b".into(),
            context_window: Some(8192),
            ..Default::default()
        });
        s.chat.provider = "ollama".into();
        s.budget.daily_usd = Some(1.5);
        s.save(dir.path()).unwrap();
        assert_eq!(Settings::load(dir.path()).unwrap(), s);
        let p = s.provider("ollama").unwrap();
        assert!(p.is_local());
        assert_eq!(p.vendor(), None);
    }

    #[test]
    fn learning_settings_out_of_range_are_refused() {
        let e = load("[learning]\nretrain_hours = -1\n").unwrap_err();
        assert!(e.contains("retrain_hours = -1 must be 0 (off) or more hours"), "{e}");
        let e = load("[learning]\ngolden_tolerance = 5\n").unwrap_err();
        assert!(e.contains("golden_tolerance = 5 must be between 0 and 1"), "{e}");
        let s = load("[learning]\nretrain_every = 0\nretrain_hours = 0.5\ngolden_set = \"golden.jsonl\"\n").unwrap();
        assert_eq!((s.learning.retrain_every, s.learning.retrain_hours), (0, 0.5));
    }

    #[test]
    fn mistakes_are_refused_with_where_and_why() {
        assert_eq!(
            load("[chat]\nprovider = \"gpt\"\n").unwrap_err(),
            "DIR/settings.toml: [chat] provider `gpt` is not `local` or a configured provider"
        );
        let err =
            load("[[providers]]\nname = \"o\"\nkind = \"openai\"\nmodel = \"m\"\napi_key = \"sk-123\"\n").unwrap_err();
        assert!(err.starts_with("DIR/settings.toml (line 5): unknown field `api_key`"), "{err}");
        assert_eq!(
            load("[[providers]]\nname = \"o\"\nkind = \"openai\"\nmodel = \"m\"\nbase_url = \"ftp://x\"\n")
                .unwrap_err(),
            "DIR/settings.toml: provider `o`: base_url `ftp://x` must be an http:// or https:// address"
        );
        assert_eq!(
            load("[budget]\ndaily_usd = -2\n").unwrap_err(),
            "DIR/settings.toml: a budget must be zero or more dollars, not -2"
        );
        let err = load("[[providers]]\nname = \"o\"\nkind = \"palm\"\nmodel = \"m\"\n").unwrap_err();
        assert!(err.contains("unknown variant `palm`"), "{err}");
    }

    #[test]
    fn a_source_opens_at_its_page_or_line_with_the_configured_command() {
        let open = OpenSettings {
            pdf: Some("evince --page-index={page} {path}".into()),
            text: Some("gedit +{line} {path}".into()),
        };
        assert_eq!(
            open.command("/docs/Q2 2023 AAPL.pdf", Some(4), None).unwrap(),
            vec!["evince", "--page-index=4", "/docs/Q2 2023 AAPL.pdf"],
            "the path stays one argument"
        );
        assert_eq!(open.command("/n/plan.md", None, Some(12)).unwrap(), vec!["gedit", "+12", "/n/plan.md"]);
        assert_eq!(open.command("/n/plan.md", None, None), None, "no line: the system opener");
        assert_eq!(OpenSettings::default().command("/a.pdf", Some(1), None), None);
        let load = |text: &str| toml::from_str::<Settings>(text).map(|s| s.open);
        assert_eq!(
            load("[open]\npdf = \"okular -p {page} {path}\"\n").unwrap().pdf.as_deref(),
            Some("okular -p {page} {path}")
        );
    }

    #[test]
    fn hosts_and_vendors_come_from_the_base_url() {
        assert_eq!(host_of("https://api.openai.com/v1"), "api.openai.com");
        assert_eq!(host_of("http://user:pw@LOCALHOST:11434/v1"), "localhost");
        assert_eq!(host_of("http://[::1]:8080/v1"), "[::1]");
        assert_eq!(host_of("http://127.0.0.1:1234"), "127.0.0.1");
        let p = |url: &str, kind| ProviderSettings {
            name: "p".into(),
            kind,
            base_url: Some(url.into()),
            model: "m".into(),
            ..Default::default()
        };
        assert_eq!(p("https://api.anthropic.com", ProviderKind::Anthropic).vendor(), Some("anthropic"));
        assert!(p("http://127.0.0.1:8080/v1", ProviderKind::Openai).is_local());
        assert!(!p("https://openrouter.ai/api/v1", ProviderKind::Openai).is_local());
        // The host the request really goes to, parsed as the HTTP client parses it.
        assert_eq!(host_of("http://192.0.2.2:28111\\@127.0.0.1/v1"), "192.0.2.2");
        assert!(!p("http://192.0.2.2:28111\\@127.0.0.1/v1", ProviderKind::Openai).is_local());
        assert_eq!(host_of("http://api.openai.com@evil.example/v1"), "evil.example");
        assert!(!p("http://127.evil.example/v1", ProviderKind::Openai).is_local());
        assert!(p("http://127.1.2.3:80/v1", ProviderKind::Openai).is_local());
        // `remote = false` cannot make another machine local; `true` makes loopback remote.
        let mut far = p("http://192.0.2.2:8080/v1", ProviderKind::Openai);
        far.remote = Some(false);
        assert!(!far.is_local());
        let mut gateway = p("http://localhost:4000/v1", ProviderKind::Openai);
        gateway.remote = Some(true);
        assert!(!gateway.is_local());
    }
}
