//! Embeddings from an OpenAI-compatible HTTP endpoint (`POST {base_url}/embeddings` with
//! `{"model", "input": [...]}`, answered with `data[i].embedding` and `usage.prompt_tokens`):
//! OpenAI, Ollama, llama.cpp's server, LM Studio, vLLM and the like.
//!
//! Passages go in batches (by count and by estimated tokens). Each request is retried like a
//! chat request before anything is returned: 408, 409, 429 and 5xx, honouring `Retry-After`
//! (seconds or HTTP date, up to `max_retry_wait`; a longer wait comes back as the error, with the
//! wait in it), else full-jitter exponential backoff; a refused or reset connection is retried
//! too, a timeout is not. The vector dimension is configured or learnt from the first answer, and
//! a server that later answers with another dimension (the model behind the name was swapped) is
//! refused rather than mixed into the index. Vectors are L2-normalised here, since not every
//! server does it. The token counter is a conservative estimate (the real tokenizer is on the
//! server); passages over `max_tokens` are refused, never truncated.
//!
//! Blocking (`reqwest::blocking`): call it from a blocking thread, as the engine does for the
//! local model.

#[path = "../../cairn-llm/src/backoff.rs"]
mod backoff;

use crate::{EmbedError, EmbedUsage, Embedder};
use cairn_core::{ErrorCode, TokenCounter};
use reqwest::blocking::Client;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// Where the endpoint is, which model, and how patient to be.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenAiEmbedConfig {
    /// Up to and including the version, e.g. `https://api.openai.com/v1` or
    /// `http://localhost:11434/v1`; `/embeddings` is appended.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer`; never printed (`Debug` redacts it, errors scrub it).
    pub api_key: Option<String>,
    /// The vector length the model gives, when known. `None`: learnt from the first answer
    /// ([`OpenAiEmbedder::connect`] asks at once). Either way, a different length later is refused.
    pub dimension: Option<usize>,
    /// Longest passage in (estimated) tokens. Default 8191, OpenAI's limit for its embedding models.
    pub max_tokens: usize,
    /// Passages per request. Default 64.
    pub batch_size: usize,
    /// Estimated tokens per request. Default 100 000 (OpenAI allows 300 000).
    pub max_batch_tokens: usize,
    /// Longest wait for the TCP (and TLS) connection. Default 10 s.
    pub connect_timeout: Duration,
    /// Longest wait for a whole answer. Default 60 s.
    pub request_timeout: Duration,
    /// Requests per batch, first try included. Default 3; 0 counts as 1.
    pub max_attempts: u32,
    /// Full-jitter backoff base and ceiling. Defaults 500 ms and 8 s.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The longest `Retry-After` waited out. Default 30 s.
    pub max_retry_wait: Duration,
}

impl std::fmt::Debug for OpenAiEmbedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbedConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("dimension", &self.dimension)
            .field("max_tokens", &self.max_tokens)
            .field("batch_size", &self.batch_size)
            .field("max_batch_tokens", &self.max_batch_tokens)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl OpenAiEmbedConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiEmbedConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            dimension: None,
            max_tokens: 8191,
            batch_size: 64,
            max_batch_tokens: 100_000,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_attempts: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            max_retry_wait: Duration::from_secs(30),
        }
    }
}

/// A conservative estimate of a tokenizer we cannot see: ASCII at 3 characters per token (BPE
/// vocabularies average about 4), any other character a whole token, plus one for the end of
/// text. Over-counting only makes chunks a little smaller; under-counting would get passages
/// refused by the server.
#[derive(Clone, Copy, Debug)]
pub struct EstimatingCounter {
    pub max: usize,
}

impl TokenCounter for EstimatingCounter {
    fn count(&self, text: &str) -> usize {
        let (ascii, other) =
            text.chars().fold((0usize, 0usize), |(a, o), c| if c.is_ascii() { (a + 1, o) } else { (a, o + 1) });
        ascii.div_ceil(3) + other + 1
    }
    fn max_tokens(&self) -> usize {
        self.max
    }
}

/// An OpenAI-compatible embedding endpoint.
pub struct OpenAiEmbedder {
    cfg: OpenAiEmbedConfig,
    id: String,
    endpoint: String,
    counter: EstimatingCounter,
    /// 0 until known.
    dimension: AtomicUsize,
    /// Built on first use (a blocking client must not be built on an async runtime thread).
    client: Mutex<Option<Client>>,
    usage: Mutex<(EmbedUsage, EmbedUsage)>,
}

impl std::fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("id", &self.id)
            .field("cfg", &self.cfg)
            .field("dimension", &self.dimension.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// One request's result.
struct Answer {
    vectors: Vec<Vec<f32>>,
    tokens: u64,
    reported: bool,
    attempts: u32,
}

enum Failure {
    Retry(EmbedError),
    Final(EmbedError),
}

impl OpenAiEmbedder {
    /// Cheap, no request: `dimension()` is the configured one, or 0 until the first answer.
    pub fn new(cfg: OpenAiEmbedConfig) -> Self {
        let base = cfg.base_url.trim_end_matches('/').to_owned();
        OpenAiEmbedder {
            id: format!("openai:{}@{base}", cfg.model),
            endpoint: format!("{base}/embeddings"),
            counter: EstimatingCounter { max: cfg.max_tokens.max(1) },
            dimension: AtomicUsize::new(cfg.dimension.unwrap_or(0)),
            client: Mutex::new(None),
            usage: Mutex::new((EmbedUsage::default(), EmbedUsage::default())),
            cfg,
        }
    }

    /// `new`, then, if the dimension is not configured, one tiny request to learn it (the store
    /// needs it before the first passage is embedded). That request's tokens are in the usage.
    pub fn connect(cfg: OpenAiEmbedConfig) -> Result<Self, EmbedError> {
        let e = OpenAiEmbedder::new(cfg);
        if e.dimension() == 0 {
            e.embed(&["dimension probe".to_owned()])?;
        }
        Ok(e)
    }

    pub fn config(&self) -> &OpenAiEmbedConfig {
        &self.cfg
    }

    /// Embeds and says what it cost: the usage of exactly this call.
    pub fn embed_with_usage(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, EmbedUsage), EmbedError> {
        for t in texts {
            let tokens = self.counter.count(t);
            if tokens > self.counter.max {
                return Err(EmbedError::TooLong { tokens, max: self.counter.max });
            }
        }
        let mut usage = EmbedUsage::default();
        let mut out = Vec::with_capacity(texts.len());
        for batch in self.batches(texts) {
            let answer = self.request(batch);
            // Batches that succeeded before a failure stay in the usage: they were billed.
            let answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    self.record(usage);
                    return Err(e);
                }
            };
            usage.requests += 1;
            usage.attempts += u64::from(answer.attempts);
            usage.texts += batch.len() as u64;
            usage.prompt_tokens += answer.tokens;
            if !answer.reported {
                usage.estimated_tokens += answer.tokens;
            }
            out.extend(answer.vectors);
        }
        self.record(usage);
        Ok((out, usage))
    }

    /// The usage of the last `embed` call that made requests.
    pub fn last_usage(&self) -> EmbedUsage {
        self.usage.lock().unwrap_or_else(PoisonError::into_inner).1
    }

    fn record(&self, usage: EmbedUsage) {
        if usage.requests == 0 && usage.attempts == 0 {
            return;
        }
        let mut u = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        u.0.add(usage);
        u.1 = usage;
    }

    fn batches<'t>(&self, texts: &'t [String]) -> Vec<&'t [String]> {
        let (max_n, max_tokens) = (self.cfg.batch_size.max(1), self.cfg.max_batch_tokens.max(1));
        let mut out = Vec::new();
        let (mut start, mut tokens) = (0, 0);
        for (i, t) in texts.iter().enumerate() {
            let n = self.counter.count(t);
            if i > start && (i - start >= max_n || tokens + n > max_tokens) {
                out.push(&texts[start..i]);
                (start, tokens) = (i, 0);
            }
            tokens += n;
        }
        if start < texts.len() {
            out.push(&texts[start..]);
        }
        out
    }

    fn client(&self) -> Result<Client, EmbedError> {
        let mut slot = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = Client::builder()
            .connect_timeout(self.cfg.connect_timeout)
            .timeout(self.cfg.request_timeout)
            .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| remote(ErrorCode::ProviderUnavailable, None, format!("http client: {e}"), None))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// One batch, with retries.
    fn request(&self, batch: &[String]) -> Result<Answer, EmbedError> {
        let client = self.client()?;
        let secret = self.cfg.api_key.as_deref();
        let body = json!({"model": self.cfg.model, "input": batch});
        let max_attempts = self.cfg.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(&client, &body, batch) {
                Ok(mut a) => {
                    a.attempts = attempt;
                    return Ok(a);
                }
                Err(Failure::Final(e)) => return Err(redacted(e, secret)),
                Err(Failure::Retry(e)) => {
                    let asked = match &e {
                        EmbedError::Remote { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    if attempt >= max_attempts {
                        return Err(redacted(e, secret));
                    }
                    let wait = match asked {
                        Some(d) if d > self.cfg.max_retry_wait => return Err(redacted(e, secret)),
                        Some(d) => d,
                        None => backoff::full_jitter(self.cfg.backoff_base, self.cfg.backoff_max, attempt),
                    };
                    std::thread::sleep(wait);
                }
            }
        }
    }

    fn attempt(&self, client: &Client, body: &Value, batch: &[String]) -> Result<Answer, Failure> {
        let mut rb = client.post(&self.endpoint).json(body);
        if let Some(key) = &self.cfg.api_key {
            rb = rb.bearer_auth(key);
        }
        let resp = match rb.send() {
            Ok(r) => r,
            Err(e) if e.is_timeout() && e.is_connect() => {
                let m = format!(
                    "could not connect to the embedding provider within {}",
                    backoff::human_duration(self.cfg.connect_timeout)
                );
                return Err(Failure::Final(remote(ErrorCode::Timeout, None, m, None)));
            }
            Err(e) if e.is_timeout() => return Err(Failure::Final(self.timeout())),
            Err(e) => {
                let m = format!("could not reach the embedding provider: {}", backoff::error_chain(&e));
                return Err(Failure::Retry(remote(ErrorCode::ProviderUnavailable, None, m, None)));
            }
        };
        let status = resp.status().as_u16();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let wait = backoff::retry_after(
            header("retry-after").as_deref(),
            header("retry-after-ms").as_deref(),
            SystemTime::now(),
        );
        let text = match resp.text() {
            Ok(t) => t,
            Err(e) if e.is_timeout() => return Err(Failure::Final(self.timeout())),
            Err(e) => {
                let m = format!("the embedding provider's answer broke off: {}", backoff::error_chain(&e));
                return Err(Failure::Retry(remote(ErrorCode::ProviderUnavailable, Some(status), m, None)));
            }
        };
        if !(200..300).contains(&status) {
            let message = backoff::error_body_message(&text).unwrap_or_else(|| {
                reqwest::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|c| c.canonical_reason())
                    .unwrap_or("request failed")
                    .to_owned()
            });
            let e = status_error(status, &message, wait);
            return Err(if backoff::is_retryable_status(status) { Failure::Retry(e) } else { Failure::Final(e) });
        }
        self.parse(&text, batch).map_err(Failure::Final)
    }

    fn timeout(&self) -> EmbedError {
        let m = format!(
            "the embedding provider did not answer within {}",
            backoff::human_duration(self.cfg.request_timeout)
        );
        remote(ErrorCode::Timeout, None, m, None)
    }

    fn parse(&self, text: &str, batch: &[String]) -> Result<Answer, EmbedError> {
        let bad = |what: String| {
            remote(
                ErrorCode::ProviderUnavailable,
                None,
                format!("the embedding provider sent an unreadable answer: {what}"),
                None,
            )
        };
        let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("{e}")))?;
        let data = v.get("data").and_then(Value::as_array).ok_or_else(|| bad("no `data` list".into()))?;
        if data.len() != batch.len() {
            return Err(bad(format!("{} vectors for {} passages", data.len(), batch.len())));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; batch.len()];
        for (pos, item) in data.iter().enumerate() {
            let index = item.get("index").and_then(Value::as_u64).map_or(pos, |i| i as usize);
            let emb = item
                .get("embedding")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("item {pos} has no float `embedding`")))?;
            let vector: Vec<f32> = emb
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32))
                .collect::<Option<_>>()
                .ok_or_else(|| bad(format!("item {pos} has a non-number in its embedding")))?;
            match slots.get_mut(index) {
                Some(slot @ None) => *slot = Some(vector),
                _ => return Err(bad(format!("index {index} is out of range or repeated"))),
            }
        }
        let mut vectors: Vec<Vec<f32>> = slots.into_iter().flatten().collect();
        let got = vectors.first().map_or(0, Vec::len);
        if got == 0 {
            return Err(bad("empty vectors".into()));
        }
        if let Some(other) = vectors.iter().map(Vec::len).find(|&n| n != got) {
            return Err(bad(format!("vectors of {got} and {other} dimensions in one answer")));
        }
        match self.dimension.compare_exchange(0, got, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => {}
            Err(expected) if expected == got => {}
            Err(expected) => return Err(EmbedError::DimensionChanged { id: self.id.clone(), expected, got }),
        }
        for v in &mut vectors {
            normalise(v);
        }
        let reported = v.pointer("/usage/prompt_tokens").and_then(Value::as_u64);
        let tokens = reported.unwrap_or_else(|| batch.iter().map(|t| self.counter.count(t) as u64).sum());
        Ok(Answer { vectors, tokens, reported: reported.is_some(), attempts: 0 })
    }
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
}

fn remote(code: ErrorCode, status: Option<u16>, message: String, retry_after: Option<Duration>) -> EmbedError {
    EmbedError::Remote { code, status, message, retry_after }
}

fn status_error(status: u16, message: &str, retry_after: Option<Duration>) -> EmbedError {
    let retry = retry_after.map(|d| format!(", retry in {} s", backoff::wait_secs(d).max(1))).unwrap_or_default();
    let lower = message.to_ascii_lowercase();
    let too_long = ["maximum context length", "context length", "too many tokens", "input is too long"]
        .iter()
        .any(|p| lower.contains(p));
    let (code, text) = match status {
        401 => (ErrorCode::AuthFailed, format!("the embedding provider rejected the API key (HTTP 401): {message}")),
        403 => {
            (ErrorCode::AuthFailed, format!("the embedding provider refused this API key access (HTTP 403): {message}"))
        }
        429 => (
            ErrorCode::RateLimited,
            format!("the embedding provider is rate limiting requests (HTTP 429){retry}: {message}"),
        ),
        404 => (
            ErrorCode::ModelMissing,
            format!("the embedding provider does not know this model or endpoint (HTTP 404): {message}"),
        ),
        400 | 413 | 422 if too_long => (
            ErrorCode::ContextOverflow,
            format!("the embedding provider says a passage is too long (HTTP {status}): {message}"),
        ),
        s if s >= 500 => {
            (ErrorCode::ProviderUnavailable, format!("the embedding provider failed (HTTP {s}){retry}: {message}"))
        }
        s => (ErrorCode::InvalidInput, format!("the embedding provider refused the request (HTTP {s}): {message}")),
    };
    remote(code, Some(status), text, retry_after)
}

fn redacted(e: EmbedError, secret: Option<&str>) -> EmbedError {
    match e {
        EmbedError::Remote { code, status, message, retry_after } => {
            EmbedError::Remote { code, status, message: backoff::redact(&message, secret), retry_after }
        }
        other => other,
    }
}

impl Embedder for OpenAiEmbedder {
    fn id(&self) -> &str {
        &self.id
    }
    fn dimension(&self) -> usize {
        self.dimension.load(Ordering::SeqCst)
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_with_usage(texts).map(|(v, _)| v)
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        // A query longer than the model takes is cut to fit (unlike a passage, nothing is lost
        // from the index). Rare at 8191 tokens; cut by characters, the estimate is per character.
        let mut q = text.to_owned();
        while self.counter.count(&q) > self.counter.max {
            let keep = q.chars().count() * 9 / 10;
            q = q.chars().take(keep).collect();
        }
        let mut v = self.embed(&[q])?;
        v.pop().ok_or_else(|| EmbedError::Inference("the embedding provider returned no vector".into()))
    }
    fn token_counter(&self) -> &dyn TokenCounter {
        &self.counter
    }
    fn total_usage(&self) -> Option<EmbedUsage> {
        Some(self.usage.lock().unwrap_or_else(PoisonError::into_inner).0)
    }
}
