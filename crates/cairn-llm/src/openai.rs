//! A chat model behind an OpenAI-compatible HTTP API (`POST {base_url}/chat/completions`,
//! streamed as server-sent events). This is how OpenAI, Ollama, llama.cpp's server, LM Studio,
//! vLLM and OpenRouter plug in by configuration alone.
//!
//! Asks for `stream_options.include_usage` so the last chunk carries `usage` (with
//! `prompt_tokens_details.cached_tokens` where the server caches prompts); servers that ignore
//! it get their usage estimated locally. Timeouts, retries and the stream rules are shared with
//! the Anthropic client (see `http.rs`). It does not speak the legacy `/completions` API, tools,
//! images, or `max_completion_tokens`-only models.

use crate::http::{Call, HttpSettings, Item, Transport, UsagePatch, sample};
use crate::sse::SseEvent;
use crate::{ChatModel, ChatRequest, Completion, Finish, LlmError, estimate_prompt, estimate_tokens, to_u32};
use serde_json::{Value, json};
use std::ops::ControlFlow;
use std::time::Duration;

/// Where the server is and which model to ask.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// Up to and including the version, e.g. `http://localhost:11434/v1`.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer`; never printed (`Debug` redacts it, errors scrub it).
    pub api_key: Option<String>,
    /// Timeouts and retries.
    pub http: HttpSettings,
    /// Tokens the served model takes (prompt + answer). The API does not say, so it is
    /// configured; the default (4096) matches Ollama's default `num_ctx`.
    pub context_window: usize,
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("http", &self.http)
            .field("context_window", &self.context_window)
            .finish()
    }
}

impl OpenAiConfig {
    /// No key, default [`HttpSettings`], 4096-token window.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            http: HttpSettings::default(),
            context_window: 4096,
        }
    }

    /// From `CAIRN_OPENAI_BASE_URL` and `CAIRN_OPENAI_MODEL` (both required, else `None`),
    /// `CAIRN_OPENAI_API_KEY` (falling back to `OPENAI_API_KEY`), and optionally
    /// `CAIRN_OPENAI_TIMEOUT_SECS` (first-token and idle timeouts) and `CAIRN_OPENAI_CONTEXT`.
    pub fn from_env() -> Option<Self> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let var = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut cfg = OpenAiConfig::new(var("CAIRN_OPENAI_BASE_URL")?, var("CAIRN_OPENAI_MODEL")?);
        cfg.api_key = var("CAIRN_OPENAI_API_KEY").or_else(|| var("OPENAI_API_KEY"));
        if let Some(secs) = var("CAIRN_OPENAI_TIMEOUT_SECS").and_then(|s| s.parse::<u64>().ok()).filter(|&s| s > 0) {
            cfg.http.first_token_timeout = Duration::from_secs(secs);
            cfg.http.idle_timeout = Duration::from_secs(secs);
        }
        if let Some(n) = var("CAIRN_OPENAI_CONTEXT").and_then(|s| s.parse::<usize>().ok()).filter(|&n| n > 0) {
            cfg.context_window = n;
        }
        Some(cfg)
    }
}

/// An OpenAI-compatible chat endpoint.
pub struct OpenAiChat {
    cfg: OpenAiConfig,
    endpoint: String,
    transport: Transport,
}

impl std::fmt::Debug for OpenAiChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiChat").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl OpenAiChat {
    /// Cheap: no connection is made until the first `generate`.
    pub fn new(cfg: OpenAiConfig) -> Self {
        let endpoint = format!("{}/chat/completions", cfg.base_url.trim_end_matches('/'));
        let transport = Transport::new(cfg.http.clone(), cfg.api_key.clone());
        OpenAiChat { cfg, endpoint, transport }
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.cfg
    }
}

/// One chunk of `chat.completion.chunk` stream. Read leniently through `Value`: fields that are
/// missing or `null` are simply absent; only data that is not JSON at all is malformed.
fn parse_event(ev: &SseEvent) -> Result<Vec<Item>, String> {
    let data = ev.data.trim();
    if data.is_empty() {
        return Ok(Vec::new());
    }
    if data == "[DONE]" {
        return Ok(vec![Item::Done]);
    }
    let v: Value = serde_json::from_str(data).map_err(|e| format!("{e} in {}", sample(data)))?;
    if !v.is_object() {
        return Err(format!("not a JSON object: {}", sample(data)));
    }
    let mut items = Vec::new();
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| err.as_str().map_or_else(|| err.to_string(), str::to_owned));
        // OpenRouter puts the HTTP status in `code`; OpenAI puts a name there.
        let status = err
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (400..600).contains(c));
        let status = status.or_else(|| {
            let kind = [err.get("type"), err.get("code")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ");
            if kind.contains("rate_limit") {
                Some(429)
            } else if kind.contains("overloaded") || kind.contains("server_error") {
                Some(503)
            } else {
                None
            }
        });
        items.push(Item::Error { status, message });
        return Ok(items);
    }
    if let Some(m) = v.get("model").and_then(Value::as_str) {
        items.push(Item::Model(m.to_owned()));
    }
    if let Some(choice) = v.get("choices").and_then(Value::as_array).and_then(|c| c.first()) {
        if let Some(piece) = choice.pointer("/delta/content").and_then(Value::as_str) {
            items.push(Item::Text(piece.to_owned()));
        }
        match choice.get("finish_reason").and_then(Value::as_str) {
            Some("length") => items.push(Item::Finish(Finish::Length)),
            Some("content_filter") => {
                items.push(Item::Warning("the provider's content filter stopped the answer".into()));
                items.push(Item::Finish(Finish::Stop));
            }
            Some(_) => items.push(Item::Finish(Finish::Stop)),
            None => {}
        }
    }
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        let n = |p: &str| u.pointer(p).and_then(Value::as_u64).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let prompt = n("/prompt_tokens");
        let completion = n("/completion_tokens");
        // Usage counts only when both halves are there: a partial object is ignored.
        if prompt.is_some() && completion.is_some() {
            items.push(Item::Usage(UsagePatch {
                prompt,
                completion,
                cached: n("/prompt_tokens_details/cached_tokens"),
                ..UsagePatch::default()
            }));
        }
    }
    Ok(items)
}

impl ChatModel for OpenAiChat {
    fn id(&self) -> String {
        format!("openai:{}@{}", self.cfg.model, self.cfg.base_url.trim_end_matches('/'))
    }

    fn context_window(&self) -> usize {
        self.cfg.context_window
    }

    fn count_tokens(&self, text: &str) -> usize {
        estimate_tokens(text)
    }

    fn generate(
        &self,
        req: &ChatRequest,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Completion, LlmError> {
        if req.messages.is_empty() {
            return Err(LlmError::InvalidRequest("no messages".into()));
        }
        let prompt_estimate = estimate_prompt(&req.messages);
        let needed = prompt_estimate + req.max_tokens as usize;
        if needed > self.cfg.context_window {
            return Err(LlmError::ContextOverflow { needed, window: self.cfg.context_window });
        }
        let messages: Vec<_> =
            req.messages.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content})).collect();
        let body = json!({
            "model": self.cfg.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
        });
        let build = |client: &reqwest::Client| {
            let rb = client.post(&self.endpoint).header("Accept", "text/event-stream").json(&body);
            match &self.cfg.api_key {
                Some(key) => rb.bearer_auth(key),
                None => rb,
            }
        };
        let call = Call {
            build: &build,
            parse: parse_event,
            prompt_estimate: to_u32(prompt_estimate),
            model: &self.cfg.model,
        };
        self.transport.stream(&call, on_token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_config() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        assert!(OpenAiConfig::from_vars(vars(&[("CAIRN_OPENAI_MODEL", "m")])).is_none());
        assert!(
            OpenAiConfig::from_vars(vars(&[("CAIRN_OPENAI_BASE_URL", "http://x/v1"), ("CAIRN_OPENAI_MODEL", " ")]))
                .is_none()
        );
        let c = OpenAiConfig::from_vars(vars(&[
            ("CAIRN_OPENAI_BASE_URL", "http://x/v1/"),
            ("CAIRN_OPENAI_MODEL", "m"),
            ("OPENAI_API_KEY", "k2"),
            ("CAIRN_OPENAI_TIMEOUT_SECS", "7"),
            ("CAIRN_OPENAI_CONTEXT", "32768"),
        ]));
        let c = c.expect("config");
        assert_eq!(c.api_key.as_deref(), Some("k2"));
        assert_eq!(c.http.first_token_timeout, Duration::from_secs(7));
        assert_eq!(c.http.idle_timeout, Duration::from_secs(7));
        assert_eq!(c.http.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.context_window, 32768);
        assert_eq!(OpenAiChat::new(c.clone()).id(), "openai:m@http://x/v1");
        assert!(!format!("{c:?}").contains("k2"), "key must not be printed");
        let c = OpenAiConfig::from_vars(vars(&[
            ("CAIRN_OPENAI_BASE_URL", "u"),
            ("CAIRN_OPENAI_MODEL", "m"),
            ("CAIRN_OPENAI_API_KEY", "k1"),
            ("OPENAI_API_KEY", "k2"),
        ]));
        assert_eq!(c.and_then(|c| c.api_key).as_deref(), Some("k1"));
    }

    fn ev(data: &str) -> SseEvent {
        SseEvent { event: None, data: data.into() }
    }

    #[test]
    fn chunks_become_items() {
        let items = parse_event(&ev(
            r#"{"model":"m1","choices":[{"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#,
        ));
        assert_eq!(items, Ok(vec![Item::Model("m1".into()), Item::Text("Hi".into())]));
        let items = parse_event(&ev(
            r#"{"choices":[],"usage":{"prompt_tokens":30,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":16}}}"#,
        ));
        let usage = UsagePatch { prompt: Some(30), completion: Some(2), cached: Some(16), ..UsagePatch::default() };
        assert_eq!(items, Ok(vec![Item::Usage(usage)]));
        assert_eq!(parse_event(&ev("[DONE]")), Ok(vec![Item::Done]));
        assert!(parse_event(&ev("{\"choices\": [")).is_err());
        assert!(parse_event(&ev("42")).is_err());
        let items = parse_event(&ev(r#"{"error":{"message":"Upstream overloaded","code":502}}"#));
        assert_eq!(items, Ok(vec![Item::Error { status: Some(502), message: "Upstream overloaded".into() }]));
    }
}
