//! A chat model behind an OpenAI-compatible HTTP API (`POST {base_url}/chat/completions`,
//! streamed as server-sent events). This is how OpenAI, Ollama, llama.cpp's server and LM Studio
//! plug in by configuration alone.
//!
//! Handles retries (429 honouring `Retry-After`, 5xx) only before the first token; after that a
//! broken stream is `StreamCut` carrying the partial answer. It does not speak the legacy
//! `/completions` API, tools, images, or `max_completion_tokens`-only models.

use crate::{ChatModel, ChatRequest, Completion, Finish, LlmError, estimate_tokens};
use reqwest::blocking::{Client, Response};
use serde::Deserialize;
use serde_json::json;
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::sync::Mutex;
use std::time::Duration;

/// Attempts per request (first try + retries), only while nothing has been streamed.
const MAX_ATTEMPTS: u32 = 3;
/// Backoff before retry n (1-based) is `BACKOFF_BASE * 2^(n-1)` unless `Retry-After` says.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// A `Retry-After` longer than this is not waited out: the error goes back to the caller.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Per-message formatting overhead when we have to count a prompt ourselves.
const TOKENS_PER_MESSAGE: usize = 4;

/// Where the server is and which model to ask.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// Up to and including the version, e.g. `http://localhost:11434/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    /// Longest wait for the response headers, and for each piece of the stream after that.
    /// It is not a limit on the whole answer, which may stream for longer.
    pub timeout: Duration,
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
            .field("timeout", &self.timeout)
            .field("context_window", &self.context_window)
            .finish()
    }
}

impl OpenAiConfig {
    /// No key, 120 s timeout, 4096-token window.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout: Duration::from_secs(120),
            context_window: 4096,
        }
    }

    /// From `CAIRN_OPENAI_BASE_URL` and `CAIRN_OPENAI_MODEL` (both required, else `None`),
    /// `CAIRN_OPENAI_API_KEY` (falling back to `OPENAI_API_KEY`), and optionally
    /// `CAIRN_OPENAI_TIMEOUT_SECS` and `CAIRN_OPENAI_CONTEXT`.
    pub fn from_env() -> Option<Self> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let var = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut cfg = OpenAiConfig::new(var("CAIRN_OPENAI_BASE_URL")?, var("CAIRN_OPENAI_MODEL")?);
        cfg.api_key = var("CAIRN_OPENAI_API_KEY").or_else(|| var("OPENAI_API_KEY"));
        if let Some(secs) = var("CAIRN_OPENAI_TIMEOUT_SECS").and_then(|s| s.parse::<u64>().ok()).filter(|&s| s > 0) {
            cfg.timeout = Duration::from_secs(secs);
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
    /// Built on first use: a blocking client must not be created on an async runtime thread,
    /// and `generate` always runs on a blocking one.
    client: Mutex<Option<Client>>,
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
        OpenAiChat { cfg, endpoint, client: Mutex::new(None) }
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.cfg
    }

    fn client(&self) -> Result<Client, LlmError> {
        let mut slot = self.client.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = Client::builder()
            .timeout(self.cfg.timeout)
            .connect_timeout(self.cfg.timeout)
            .build()
            .map_err(|e| LlmError::Provider { status: None, message: format!("http client: {e}") })?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Send the request, retrying 429 and 5xx; returns a 2xx response ready to stream.
    fn connect(&self, body: &serde_json::Value) -> Result<Response, LlmError> {
        let client = self.client()?;
        let mut attempt = 1;
        loop {
            let mut rb = client.post(&self.endpoint).header("Accept", "text/event-stream").json(body);
            if let Some(key) = &self.cfg.api_key {
                rb = rb.bearer_auth(key);
            }
            let resp = rb.send().map_err(request_error)?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let retryable = status.as_u16() == 429 || status.is_server_error();
            let err = LlmError::Provider { status: Some(status.as_u16()), message: error_message(resp) };
            if !retryable || attempt >= MAX_ATTEMPTS {
                return Err(err);
            }
            let wait = retry_after.unwrap_or(BACKOFF_BASE * 2u32.pow(attempt - 1));
            if wait > MAX_RETRY_AFTER {
                return Err(err);
            }
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    fn prompt_estimate(&self, req: &ChatRequest) -> usize {
        req.messages.iter().map(|m| estimate_tokens(&m.content) + TOKENS_PER_MESSAGE).sum::<usize>() + 3
    }
}

/// Map a transport failure (no HTTP status) to our error.
fn request_error(e: reqwest::Error) -> LlmError {
    if e.is_timeout() { LlmError::Timeout } else { LlmError::Provider { status: None, message: error_chain(&e) } }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

/// True when an I/O error while reading the stream was the read timeout firing.
fn is_timeout(e: &std::io::Error) -> bool {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(s) = source {
        if let Some(re) = s.downcast_ref::<reqwest::Error>()
            && re.is_timeout()
        {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// The human message of an error response: `error.message` (OpenAI, llama.cpp, LM Studio),
/// `error` as a string (Ollama), else the start of the body, else the status reason.
fn error_message(resp: Response) -> String {
    let status = resp.status();
    let mut body = String::new();
    let _ = resp.take(64 * 1024).read_to_string(&mut body);
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
        let m = v.pointer("/error/message").or_else(|| v.get("error")).or_else(|| v.get("message"));
        if let Some(m) = m.and_then(|m| m.as_str()).filter(|m| !m.trim().is_empty()) {
            return m.trim().to_owned();
        }
    }
    let body = body.trim();
    if body.is_empty() {
        status.canonical_reason().unwrap_or("request failed").to_owned()
    } else {
        body.chars().take(300).collect()
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

/// Fields are optional so an odd usage object never costs us the chunk's text.
#[derive(Deserialize, Clone, Copy)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
}

/// How reading the stream ended.
enum End {
    Done,
    Cancelled,
    Eof,
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
        let prompt_estimate = self.prompt_estimate(req);
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
        let resp = self.connect(&body)?;

        let mut text = String::new();
        let mut usage: Option<(u32, u32)> = None;
        let mut finish: Option<Finish> = None;
        let mut model: Option<String> = None;
        let mut reader = BufReader::new(resp);
        let mut line = Vec::new();
        let mut data = String::new();

        // One SSE event per blank-line-terminated group of `data:` lines.
        let mut handle = |data: &str, text: &mut String| -> Result<Option<End>, LlmError> {
            let data = data.trim();
            if data.is_empty() {
                return Ok(None);
            }
            if data == "[DONE]" {
                return Ok(Some(End::Done));
            }
            // Unparseable events (keep-alives, vendor extras) are skipped, not fatal.
            let Ok(chunk) = serde_json::from_str::<Chunk>(data) else { return Ok(None) };
            if let Some(err) = chunk.error {
                let message =
                    err.get("message").and_then(|m| m.as_str()).map(str::to_owned).unwrap_or_else(|| err.to_string());
                if text.is_empty() {
                    return Err(LlmError::Provider { status: None, message });
                }
                return Err(LlmError::StreamCut { partial: std::mem::take(text) });
            }
            if chunk.model.as_deref().is_some_and(|m| !m.is_empty()) {
                model = chunk.model;
            }
            if let Some(u) = chunk.usage
                && let (Some(p), Some(c)) = (u.prompt_tokens, u.completion_tokens)
            {
                usage = Some((p, c));
            }
            if let Some(choice) = chunk.choices.into_iter().next() {
                if let Some(reason) = choice.finish_reason {
                    finish = Some(if reason == "length" { Finish::Length } else { Finish::Stop });
                }
                if let Some(piece) = choice.delta.and_then(|d| d.content).filter(|c| !c.is_empty()) {
                    text.push_str(&piece);
                    if on_token(&piece).is_break() {
                        return Ok(Some(End::Cancelled));
                    }
                }
            }
            Ok(None)
        };

        let end = loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => {
                    // A last event not followed by a blank line still counts.
                    let pending = std::mem::take(&mut data);
                    match handle(&pending, &mut text)? {
                        Some(end) => break end,
                        None => break End::Eof,
                    }
                }
                Ok(_) => {}
                Err(e) if is_timeout(&e) && text.is_empty() => return Err(LlmError::Timeout),
                Err(_) => return Err(LlmError::StreamCut { partial: text }),
            }
            let l = String::from_utf8_lossy(&line);
            let l = l.trim_end_matches(['\n', '\r']);
            if l.is_empty() {
                let pending = std::mem::take(&mut data);
                if let Some(end) = handle(&pending, &mut text)? {
                    break end;
                }
            } else if let Some(rest) = l.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            }
            // `event:`, `id:`, `retry:` and `:` comments carry nothing we need.
        };

        let finish = match end {
            End::Cancelled => Finish::Cancelled,
            End::Done => finish.unwrap_or(Finish::Stop),
            // The connection closed without [DONE]: complete only if the server said why it
            // stopped; otherwise the answer was cut.
            End::Eof => match finish {
                Some(f) => f,
                None => return Err(LlmError::StreamCut { partial: text }),
            },
        };
        let (prompt_tokens, completion_tokens, usage_reported) = match usage {
            Some((p, c)) => (p, c, true),
            None => (
                u32::try_from(prompt_estimate).unwrap_or(u32::MAX),
                u32::try_from(estimate_tokens(&text)).unwrap_or(u32::MAX),
                false,
            ),
        };
        Ok(Completion {
            text,
            prompt_tokens,
            completion_tokens,
            usage_reported,
            finish,
            model: model.unwrap_or_else(|| self.cfg.model.clone()),
        })
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
        assert_eq!(c.timeout, Duration::from_secs(7));
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
}
