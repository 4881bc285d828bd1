//! From settings to a model that can answer: the provider a question goes to, how its calls
//! are priced, and where its key comes from.
//!
//! Precedence, most specific first: what the caller asks for (`cairn ask --provider`,
//! `--model FILE.gguf`), then the environment (`CAIRN_OPENAI_BASE_URL` + `CAIRN_OPENAI_MODEL`
//! define a provider named `env`), then `[chat] provider` in settings, then `local`.

use crate::settings::{LOCAL, ProviderKind, ProviderSettings, Settings};
use crate::{Engine, EngineError};
use cairn_ledger::{Money, Price, PriceTable};
use cairn_llm::{AnthropicChat, AnthropicConfig, ChatModel, HttpSettings, LlamaModelConfig, OpenAiChat, OpenAiConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The small chat model `scripts/setup.sh` fetches into the models folder.
pub const DEFAULT_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The name of the provider the environment defines.
pub const ENV_PROVIDER: &str = "env";

/// How a provider's calls are priced.
#[derive(Clone, Debug, PartialEq)]
pub enum Billing {
    /// On this machine: nothing to pay.
    Free,
    /// A known price (the user's, or the vendor's list price on the call's date).
    Priced(Price),
    /// A remote provider with no known price: calls are counted, dollars shown as unknown.
    Unpriced,
}

impl Billing {
    pub fn cost(&self, usage: &cairn_ledger::Usage) -> Option<Money> {
        match self {
            Billing::Free => Some(Money::ZERO),
            Billing::Priced(p) => Some(usage.cost(p)),
            Billing::Unpriced => None,
        }
    }
}

/// A provider ready to take a call.
#[derive(Clone)]
pub struct Provider {
    /// Its name in settings (`local`, `env`, `ollama`...): what the ledger and budgets use.
    pub name: String,
    pub model: Arc<dyn ChatModel>,
    /// The model name the ledger shows (`SmolLM2-135M-Instruct.Q4_1.gguf`, `gpt-4o-mini`).
    pub model_name: String,
    pub billing: Billing,
    /// False for the embedded model and servers on loopback: nothing leaves the machine.
    #[allow(dead_code)] // Read by the privacy gate (issue 6); set truthfully already.
    pub remote: bool,
    /// Set when the provider is called without a key: the message a refusal turns into.
    pub(crate) missing_key: Option<String>,
}

impl Provider {
    /// The engine's error for a failed call: a server that refuses a call sent without a key
    /// (HTTP 401/403) is reported as the missing key it is, saying how to store one.
    pub(crate) fn explain(&self, e: cairn_llm::LlmError) -> EngineError {
        match (&self.missing_key, e) {
            (Some(missing), cairn_llm::LlmError::AuthFailed { status, message }) => EngineError::NoApiKey {
                provider: self.name.clone(),
                message: format!("{missing}; its server refused the request without one (HTTP {status}: {message})"),
            },
            (_, e) => e.into(),
        }
    }
}

/// A provider's key, or what to say if a call without one is refused.
pub(crate) struct ProviderKey {
    pub(crate) key: Option<String>,
    /// Set when no key was found: the "no API key for provider ..." message.
    pub(crate) missing: Option<String>,
}

/// The API key for provider `p`, looked for in the environment, then the OS keyring, then the
/// vendor's variable (`keys.rs`). The vendors' own endpoints always want a key, so for them a
/// missing key is an error and nothing is sent; other servers (Ollama, a proxy) are sent no key
/// and say themselves whether they want one ([`Provider::explain`]).
pub(crate) fn api_key(p: &ProviderSettings) -> Result<ProviderKey, EngineError> {
    let found = crate::keys::lookup(p);
    if found.key.is_some() {
        return Ok(ProviderKey { key: found.key, missing: None });
    }
    let message =
        crate::keys::missing_key_message(&p.name, found.keyring_problem.as_deref(), found.other_host.as_deref());
    if p.vendor().is_some() {
        return Err(EngineError::NoApiKey { provider: p.name.clone(), message });
    }
    Ok(ProviderKey { key: None, missing: Some(message) })
}

/// Today as `YYYY-MM-DD` in the user's time zone: the date prices are looked up on.
pub(crate) fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

/// The provider `CAIRN_OPENAI_BASE_URL` and `CAIRN_OPENAI_MODEL` describe, if both are set.
pub(crate) fn env_provider() -> Option<ProviderSettings> {
    let cfg = OpenAiConfig::from_env()?;
    Some(ProviderSettings {
        name: ENV_PROVIDER.to_owned(),
        kind: ProviderKind::Openai,
        base_url: Some(cfg.base_url.clone()),
        model: cfg.model.clone(),
        context_window: Some(cfg.context_window),
        ..Default::default()
    })
}

impl Engine {
    /// The settings, with the environment's provider added when it is defined.
    pub(crate) fn effective_settings(&self) -> Result<Settings, EngineError> {
        let mut s = self.settings()?;
        if let Some(env) = env_provider() {
            s.providers.retain(|p| p.name != ENV_PROVIDER);
            s.providers.push(env);
            // A provider the policy locks is not replaced by the environment's.
            if self.policy().is_locked("chat.provider").is_none() {
                s.chat.provider = ENV_PROVIDER.to_owned();
            }
        }
        Ok(s)
    }

    pub(crate) fn price_table(&self, settings: &Settings) -> Result<PriceTable, EngineError> {
        PriceTable::new(settings.price_entries())
            .map_err(|e| EngineError::InvalidInput(format!("{}: {e}", Settings::path(&self.config.data_dir).display())))
    }

    /// How calls to `p` are priced today.
    pub(crate) fn billing(&self, p: &ProviderSettings, model: &str, prices: &PriceTable) -> Billing {
        if let Some(price) = &p.price {
            return Billing::Priced(Price {
                input: Money::from_dollars(price.input),
                cached_input: Money::from_dollars(price.cached_input.unwrap_or(price.input)),
                output: Money::from_dollars(price.output),
            });
        }
        let by_name = prices.lookup(&p.name, model, &today());
        if let Some(price) = by_name {
            return Billing::Priced(price);
        }
        if p.is_local() {
            return Billing::Free;
        }
        match p.vendor().and_then(|v| prices.lookup(v, model, &today())) {
            Some(price) => Billing::Priced(price),
            None => Billing::Unpriced,
        }
    }

    /// Loads provider `name` (`local` or a configured one). `local_model` overrides the GGUF
    /// file of the local provider.
    pub(crate) fn provider(
        &self,
        settings: &Settings,
        name: &str,
        local_model: Option<PathBuf>,
    ) -> Result<Provider, EngineError> {
        if name == LOCAL {
            let path = local_model.or_else(|| settings.local.model.clone()).unwrap_or_else(|| {
                std::env::var_os("CAIRN_LLM_GGUF")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| self.config.models_dir.join(DEFAULT_GGUF))
            });
            let file = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            self.check_local_chat(&file)?;
            let mut cfg = LlamaModelConfig::new(path.clone());
            cfg.context = settings.local.context.unwrap_or(4096);
            if let Some(t) = settings.local.threads {
                cfg.threads = Some(t as i32);
            }
            let model: Arc<dyn ChatModel> = Arc::new(cairn_llm::load_llama(&cfg)?);
            let model_name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            return Ok(Provider {
                name: LOCAL.to_owned(),
                model,
                model_name,
                billing: Billing::Free,
                remote: false,
                missing_key: None,
            });
        }
        let p = settings.provider(name).ok_or_else(|| {
            EngineError::InvalidInput(format!(
                "no provider named `{name}`: configured are {}",
                std::iter::once(LOCAL)
                    .chain(settings.providers.iter().map(|p| p.name.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        // The policy before anything else: a refused provider is never contacted.
        self.check_chat_provider(p)?;
        let prices = self.price_table(settings)?;
        let ProviderKey { key, missing } = api_key(p)?;
        let mut http = HttpSettings::default();
        if let Some(secs) = p.timeout_secs {
            http.connect_timeout = Duration::from_secs(secs.min(30));
            http.first_token_timeout = Duration::from_secs(secs);
        }
        let model: Arc<dyn ChatModel> = match p.kind {
            ProviderKind::Openai => {
                let mut cfg = OpenAiConfig::new(p.base_url(), p.model.clone());
                cfg.api_key = key;
                cfg.http = http;
                if let Some(w) = p.context_window {
                    cfg.context_window = w;
                }
                Arc::new(OpenAiChat::new(cfg))
            }
            ProviderKind::Anthropic => {
                let mut cfg = AnthropicConfig::new(p.model.clone());
                cfg.base_url = p.base_url();
                cfg.api_key = key;
                cfg.http = http;
                if let Some(w) = p.context_window {
                    cfg.context_window = w;
                }
                Arc::new(AnthropicChat::new(cfg))
            }
        };
        Ok(Provider {
            name: p.name.clone(),
            model,
            model_name: p.model.clone(),
            billing: self.billing(p, &p.model, &prices),
            remote: !p.is_local(),
            missing_key: missing,
        })
    }
}

/// The result of `cairn providers test` for one provider.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProviderCheck {
    pub name: String,
    /// `local`, `openai` or `anthropic`.
    pub kind: String,
    pub model: String,
    pub base_url: Option<String>,
    /// Whether the provider's traffic leaves this machine.
    pub remote: bool,
    /// `free`, `priced` or `unpriced`.
    pub billing: String,
    pub ok: bool,
    pub latency_ms: Option<u64>,
    pub first_token_ms: Option<u64>,
    /// Whether the provider reports token usage (so the ledger is exact, not estimated).
    pub usage_reported: Option<bool>,
    /// The model name the server answered with.
    pub served_model: Option<String>,
    pub error_code: Option<cairn_core::ErrorCode>,
    pub error: Option<String>,
}

impl Engine {
    /// Sends a one-token request to each provider (or just `only`) and says what happened.
    /// Each probe is a ledger row of kind `probe`.
    pub async fn test_providers(&self, only: Option<&str>) -> Result<Vec<ProviderCheck>, EngineError> {
        let settings = self.effective_settings()?;
        let mut names: Vec<String> =
            std::iter::once(LOCAL.to_owned()).chain(settings.providers.iter().map(|p| p.name.clone())).collect();
        if let Some(only) = only {
            if !names.iter().any(|n| n == only) {
                return Err(EngineError::InvalidInput(format!(
                    "no provider named `{only}`: configured are {}",
                    names.join(", ")
                )));
            }
            names.retain(|n| n == only);
        }
        let mut out = Vec::new();
        for name in names {
            let conf = settings.provider(&name);
            let mut check = ProviderCheck {
                name: name.clone(),
                kind: conf.map(|p| format!("{:?}", p.kind).to_lowercase()).unwrap_or_else(|| LOCAL.to_owned()),
                model: conf.map(|p| p.model.clone()).unwrap_or_default(),
                base_url: conf.map(ProviderSettings::base_url),
                remote: conf.is_some_and(|p| !p.is_local()),
                billing: String::new(),
                ok: false,
                latency_ms: None,
                first_token_ms: None,
                usage_reported: None,
                served_model: None,
                error_code: None,
                error: None,
            };
            let provider = tokio::task::block_in_place(|| self.provider(&settings, &name, None));
            let provider = match provider {
                Ok(p) => p,
                Err(e) => {
                    check.error_code = Some(e.code());
                    check.error = Some(e.to_string());
                    out.push(check);
                    continue;
                }
            };
            check.model = provider.model_name.clone();
            check.billing = match provider.billing {
                Billing::Free => "free",
                Billing::Priced(_) => "priced",
                Billing::Unpriced => "unpriced",
            }
            .to_owned();
            let started = std::time::Instant::now();
            let probe = tokio::task::block_in_place(|| provider.model.probe());
            let mut row = cairn_db::CallRecord {
                question_id: None,
                at_ms: cairn_db::now_ms(),
                kind: cairn_db::CallKind::Probe,
                provider: provider.name.clone(),
                model: provider.model_name.clone(),
                prompt: None,
                prompt_hash: None,
                input_tokens: 0,
                cached_tokens: 0,
                output_tokens: 0,
                estimated: false,
                latency_ms: started.elapsed().as_millis() as u64,
                first_token_ms: None,
                cost_nanos: Some(0),
                estimate_nanos: None,
                cache_hit: false,
                saved_nanos: 0,
                outcome: cairn_db::Outcome::Ok,
                error_code: None,
                folder: None,
                attempts: 1,
            };
            match probe {
                Ok(r) => {
                    let usage = cairn_ledger::Usage {
                        input: u64::from(r.prompt_tokens),
                        cached: 0,
                        output: u64::from(r.completion_tokens),
                    };
                    row.input_tokens = usage.input;
                    row.output_tokens = usage.output;
                    row.estimated = !r.usage_reported;
                    row.latency_ms = r.latency_ms;
                    row.first_token_ms = r.first_token_ms;
                    row.attempts = r.attempts;
                    row.cost_nanos = provider.billing.cost(&usage).map(Money::nanos);
                    check.ok = true;
                    check.latency_ms = Some(r.latency_ms);
                    check.first_token_ms = r.first_token_ms;
                    check.usage_reported = Some(r.usage_reported);
                    check.served_model = Some(r.model);
                }
                Err(e) => {
                    let e = provider.explain(e);
                    row.outcome = cairn_db::Outcome::Failed;
                    row.error_code = Some(crate::code_str(e.code()));
                    check.error_code = Some(e.code());
                    check.error = Some(e.to_string());
                }
            }
            self.record_call(&row)?;
            out.push(check);
        }
        Ok(out)
    }
}
