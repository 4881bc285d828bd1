//! A chat model behind the Anthropic Messages API (`POST {base_url}/v1/messages`, streamed as
//! server-sent events: `message_start`, `content_block_start`/`_delta`/`_stop`,
//! `message_delta`, `message_stop`, `ping`, `error`).
//!
//! System messages go into the top-level `system` field (the API has no system role);
//! consecutive messages of one role are joined so turns alternate. Usage comes from
//! `message_start` (input and cache tokens) and `message_delta` (output tokens, and on newer
//! API versions the input counts again); what is missing is estimated locally. Timeouts, retries
//! (529 "overloaded" and in-stream `overloaded_error` included) and the stream rules are shared
//! with the OpenAI-compatible client (see `http.rs`). Tools, images, extended thinking and
//! `cache_control` breakpoints are not sent; thinking and tool-input deltas are ignored.

use crate::http::{Call, HttpSettings, Item, Transport, UsagePatch, sample};
use crate::sse::SseEvent;
use crate::{ChatModel, ChatRequest, Completion, Finish, LlmError, Role, estimate_prompt, estimate_tokens, to_u32};
use serde_json::{Value, json};
use std::ops::ControlFlow;

/// The API version this client speaks (`anthropic-version` header).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Where the API is, which model to ask, with which key.
#[derive(Clone, PartialEq, Eq)]
pub struct AnthropicConfig {
    /// `https://api.anthropic.com` by default; `/v1/messages` is appended (a URL already ending
    /// in `/v1` gets `/messages` only).
    pub base_url: String,
    pub model: String,
    /// Sent as `x-api-key`; never printed (`Debug` redacts it, errors scrub it). `None` sends no
    /// key (for a proxy that adds its own).
    pub api_key: Option<String>,
    /// Timeouts and retries.
    pub http: HttpSettings,
    /// Tokens the model takes (prompt + answer). Default 200 000, the window of current Claude models.
    pub context_window: usize,
}

impl std::fmt::Debug for AnthropicConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("http", &self.http)
            .field("context_window", &self.context_window)
            .finish()
    }
}

impl AnthropicConfig {
    /// The public API, no key yet (set `api_key`), default [`HttpSettings`], a 200 000-token
    /// window.
    pub fn new(model: impl Into<String>) -> Self {
        AnthropicConfig {
            base_url: "https://api.anthropic.com".into(),
            model: model.into(),
            api_key: None,
            http: HttpSettings::default(),
            context_window: 200_000,
        }
    }

    /// From `CAIRN_ANTHROPIC_MODEL` and `CAIRN_ANTHROPIC_API_KEY` (falling back to
    /// `ANTHROPIC_API_KEY`), both required, else `None`; optionally `CAIRN_ANTHROPIC_BASE_URL`
    /// and `CAIRN_ANTHROPIC_CONTEXT`.
    pub fn from_env() -> Option<Self> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let var = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let key = var("CAIRN_ANTHROPIC_API_KEY").or_else(|| var("ANTHROPIC_API_KEY"))?;
        let mut cfg = AnthropicConfig::new(var("CAIRN_ANTHROPIC_MODEL")?);
        cfg.api_key = Some(key);
        if let Some(url) = var("CAIRN_ANTHROPIC_BASE_URL") {
            cfg.base_url = url;
        }
        if let Some(n) = var("CAIRN_ANTHROPIC_CONTEXT").and_then(|s| s.parse::<usize>().ok()).filter(|&n| n > 0) {
            cfg.context_window = n;
        }
        Some(cfg)
    }
}

/// The Anthropic Messages API.
pub struct AnthropicChat {
    cfg: AnthropicConfig,
    endpoint: String,
    transport: Transport,
}

impl std::fmt::Debug for AnthropicChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicChat").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl AnthropicChat {
    /// Cheap: no connection is made until the first `generate`.
    pub fn new(cfg: AnthropicConfig) -> Self {
        let base = cfg.base_url.trim_end_matches('/');
        let endpoint = if base.ends_with("/v1") { format!("{base}/messages") } else { format!("{base}/v1/messages") };
        let transport = Transport::new(cfg.http.clone(), cfg.api_key.clone());
        AnthropicChat { cfg, endpoint, transport }
    }

    pub fn config(&self) -> &AnthropicConfig {
        &self.cfg
    }
}

/// The request body: system text apart, turns merged so roles alternate.
fn request_body(model: &str, req: &ChatRequest) -> Result<Value, LlmError> {
    let system: Vec<&str> =
        req.messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect();
    let mut turns: Vec<(Role, String)> = Vec::new();
    for m in req.messages.iter().filter(|m| m.role != Role::System) {
        match turns.last_mut() {
            Some((role, content)) if *role == m.role => {
                content.push_str("\n\n");
                content.push_str(&m.content);
            }
            _ => turns.push((m.role, m.content.clone())),
        }
    }
    if !turns.iter().any(|(r, _)| *r == Role::User) {
        return Err(LlmError::InvalidRequest("the Anthropic API needs at least one user message".into()));
    }
    if req.max_tokens == 0 {
        return Err(LlmError::InvalidRequest("the Anthropic API needs max_tokens of at least 1".into()));
    }
    let messages: Vec<Value> =
        turns.iter().map(|(role, content)| json!({"role": role.as_str(), "content": content})).collect();
    let mut body = json!({
        "model": model,
        "max_tokens": req.max_tokens,
        "messages": messages,
        "stream": true,
        // The API takes 0..=1 (OpenAI's scale goes to 2).
        "temperature": req.temperature.clamp(0.0, 1.0),
    });
    if !system.is_empty() {
        body["system"] = Value::String(system.join("\n\n"));
    }
    Ok(body)
}

/// The HTTP status an Anthropic error type stands for (they match the documented statuses).
fn error_status(kind: &str) -> Option<u16> {
    Some(match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => return None,
    })
}

fn usage_patch(u: &Value, with_output: bool) -> UsagePatch {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    UsagePatch {
        prompt: None,
        prompt_uncached: n("input_tokens"),
        // message_start's output_tokens is a placeholder (1 or so); only message_delta's counts.
        completion: if with_output { n("output_tokens") } else { None },
        cached: n("cache_read_input_tokens"),
        cache_write: n("cache_creation_input_tokens"),
    }
}

/// One streamed event. Unknown event types are ignored (the API adds new ones); only data that
/// is not a JSON object is malformed.
fn parse_event(ev: &SseEvent) -> Result<Vec<Item>, String> {
    let data = ev.data.trim();
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(data).map_err(|e| format!("{e} in {}", sample(data)))?;
    if !v.is_object() {
        return Err(format!("not a JSON object: {}", sample(data)));
    }
    let kind = v.get("type").and_then(Value::as_str).or(ev.event.as_deref()).unwrap_or("");
    let mut items = Vec::new();
    match kind {
        "message_start" => {
            if let Some(m) = v.pointer("/message/model").and_then(Value::as_str) {
                items.push(Item::Model(m.to_owned()));
            }
            if let Some(u) = v.pointer("/message/usage") {
                items.push(Item::Usage(usage_patch(u, false)));
            }
        }
        "content_block_start" => {
            let block = v.get("content_block");
            if block.and_then(|b| b.get("type")).and_then(Value::as_str) == Some("text")
                && let Some(t) = block.and_then(|b| b.get("text")).and_then(Value::as_str)
            {
                items.push(Item::Text(t.to_owned()));
            }
        }
        "content_block_delta" => {
            if v.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta")
                && let Some(t) = v.pointer("/delta/text").and_then(Value::as_str)
            {
                items.push(Item::Text(t.to_owned()));
            }
        }
        "message_delta" => {
            match v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                Some("max_tokens") => items.push(Item::Finish(Finish::Length)),
                Some("model_context_window_exceeded") => {
                    items.push(Item::Warning("the answer stopped at the model's context window".into()));
                    items.push(Item::Finish(Finish::Length));
                }
                Some("refusal") => {
                    items.push(Item::Warning("the model declined to answer (stop reason: refusal)".into()));
                    items.push(Item::Finish(Finish::Stop));
                }
                Some(_) => items.push(Item::Finish(Finish::Stop)),
                None => {}
            }
            if let Some(u) = v.get("usage") {
                items.push(Item::Usage(usage_patch(u, true)));
            }
        }
        "message_stop" => items.push(Item::Done),
        "error" => {
            let err = v.get("error");
            let etype = err.and_then(|e| e.get("type")).and_then(Value::as_str).unwrap_or("error");
            let message = err
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .map_or_else(|| etype.to_owned(), str::to_owned);
            items.push(Item::Error { status: error_status(etype), message });
        }
        // ping, content_block_stop, and whatever comes next.
        _ => {}
    }
    Ok(items)
}

impl ChatModel for AnthropicChat {
    fn id(&self) -> String {
        format!("anthropic:{}@{}", self.cfg.model, self.cfg.base_url.trim_end_matches('/'))
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
        let body = request_body(&self.cfg.model, req)?;
        let build = |client: &reqwest::Client| {
            let rb = client
                .post(&self.endpoint)
                .header("anthropic-version", ANTHROPIC_VERSION)
                .header("accept", "text/event-stream")
                .json(&body);
            match &self.cfg.api_key {
                Some(key) => rb.header("x-api-key", key),
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
    use crate::ChatMessage;

    #[test]
    fn system_goes_top_level_and_turns_alternate() {
        let req = ChatRequest {
            messages: vec![
                ChatMessage::system("Be brief."),
                ChatMessage::user("Sources: ..."),
                ChatMessage::user("Question?"),
                ChatMessage::system("Cite."),
            ],
            max_tokens: 10,
            temperature: 1.5,
        };
        let body = request_body("claude-x", &req).expect("body");
        assert_eq!(body["system"], "Be brief.\n\nCite.");
        assert_eq!(body["messages"].as_array().map(Vec::len), Some(1));
        assert_eq!(body["messages"][0]["role"], "user");
        assert_eq!(body["messages"][0]["content"], "Sources: ...\n\nQuestion?");
        assert_eq!(body["temperature"], 1.0);
        assert_eq!(body["stream"], true);
        let only_system = ChatRequest { messages: vec![ChatMessage::system("x")], max_tokens: 1, temperature: 0.0 };
        assert!(matches!(request_body("m", &only_system), Err(LlmError::InvalidRequest(_))));
    }

    #[test]
    fn events_become_items() {
        let ev = |event: &str, data: &str| SseEvent { event: Some(event.into()), data: data.into() };
        let start = r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":1}}}"#;
        let items = parse_event(&ev("message_start", start)).expect("start");
        assert_eq!(items[0], Item::Model("claude-sonnet-4-5-20250929".into()));
        let Item::Usage(u) = items[1] else { panic!("{items:?}") };
        assert_eq!((u.prompt_uncached, u.cached, u.cache_write, u.completion), (Some(12), Some(2000), Some(100), None));
        let delta = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#;
        assert_eq!(parse_event(&ev("content_block_delta", delta)), Ok(vec![Item::Text("Hi".into())]));
        let thinking = r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#;
        assert_eq!(parse_event(&ev("content_block_delta", thinking)), Ok(vec![]));
        let md = r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":15}}"#;
        let items = parse_event(&ev("message_delta", md)).expect("delta");
        assert_eq!(items[0], Item::Finish(Finish::Length));
        assert_eq!(items[1], Item::Usage(UsagePatch { completion: Some(15), ..UsagePatch::default() }));
        assert_eq!(parse_event(&ev("message_stop", r#"{"type":"message_stop"}"#)), Ok(vec![Item::Done]));
        assert_eq!(parse_event(&ev("ping", r#"{"type": "ping"}"#)), Ok(vec![]));
        let err = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            parse_event(&ev("error", err)),
            Ok(vec![Item::Error { status: Some(529), message: "Overloaded".into() }])
        );
        assert!(parse_event(&ev("content_block_delta", "{\"type\":\"content_block_delta\",")).is_err());
    }

    #[test]
    fn env_config_and_id() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        assert!(AnthropicConfig::from_vars(vars(&[("CAIRN_ANTHROPIC_MODEL", "m")])).is_none(), "key required");
        let c = AnthropicConfig::from_vars(vars(&[("CAIRN_ANTHROPIC_MODEL", "m"), ("ANTHROPIC_API_KEY", "sk-ant-k")]))
            .expect("config");
        assert_eq!(c.base_url, "https://api.anthropic.com");
        let chat = AnthropicChat::new(c.clone());
        assert_eq!(chat.id(), "anthropic:m@https://api.anthropic.com");
        assert_eq!(chat.endpoint, "https://api.anthropic.com/v1/messages");
        assert!(!format!("{chat:?}").contains("sk-ant-k"), "key must not be printed");
        let mut c2 = c;
        c2.base_url = "http://proxy/v1/".into();
        assert_eq!(AnthropicChat::new(c2).endpoint, "http://proxy/v1/messages");
    }
}
