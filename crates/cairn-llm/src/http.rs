//! The streamed HTTP call both HTTP providers share: timeouts, retries, the SSE loop, usage
//! bookkeeping, cancellation. The providers only build the request and turn one SSE event into
//! [`Item`]s.
//!
//! Requests run on a private one-thread tokio runtime; the calling (blocking) thread waits on a
//! channel with a deadline of its own choosing. That is what lets three timeouts coexist:
//! connect (reqwest's connector), first token (absolute, from the request being sent to the
//! first text) and idle (the longest gap between pieces of the stream once text flows). Dropping
//! the [`Exchange`] tells the task to stop, and the task dropping the response closes the
//! connection, so a cancelled or timed-out stream costs the server nothing more.
//!
//! Retry policy, decided here once for both providers:
//! - only before the first text, never after (the user has seen it; a retry would repeat it);
//! - on 408, 409, 429 and every 5xx (529 included), on an in-stream error event of those kinds
//!   (Anthropic's `overloaded_error`), and on a connection refused, reset or closed before the
//!   answer began;
//! - not on timeouts (the wait already spent is the configured patience) nor on any other 4xx;
//! - the wait is `Retry-After` (or `retry-after-ms`) when the server sends it, else full-jitter
//!   exponential backoff; a `Retry-After` longer than `max_retry_wait` is not waited out, the
//!   error goes back at once carrying the wait so the UI can say "retry in N s".
//!
//! Malformed events (data that is not the JSON the protocol expects) never panic and are never
//! fatal on their own: they are skipped and counted. If the stream still ends normally with some
//! text, the completion carries a warning naming how many were skipped; if it ends with no text
//! at all, the call fails with `BadResponse` (an empty answer from an unreadable stream is not an
//! answer); if the stream is cut, the usual `StreamCut` rules apply.

use crate::backoff::{self, error_chain, full_jitter, human_duration, is_retryable_status};
use crate::sse::{SseDecoder, SseEvent};
use crate::{Completion, Finish, LlmError, TimeoutPhase, estimate_tokens, millis, to_u32};
use reqwest::header::HeaderMap;
use std::ops::ControlFlow;
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant, SystemTime};

/// Timeouts and retry policy of an HTTP provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// Longest wait for the TCP (and TLS) connection. Default 10 s.
    pub connect_timeout: Duration,
    /// Longest wait from sending the request to the first answer text (response headers and
    /// keep-alive events do not count). Covers a local server reading a long prompt. Default 120 s.
    pub first_token_timeout: Duration,
    /// Longest silence between pieces of the stream once text has started. Default 60 s.
    pub idle_timeout: Duration,
    /// Requests per call, first try included (so 3 = up to two retries). Default 3; 0 counts as 1.
    pub max_attempts: u32,
    /// Backoff before retry n without `Retry-After`: uniform in `[0, min(backoff_max,
    /// backoff_base * 2^(n-1))]`. Defaults 500 ms and 8 s.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The longest `Retry-After` waited out; a longer one is returned as the error. Default 30 s.
    pub max_retry_wait: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(10),
            first_token_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            max_attempts: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            max_retry_wait: Duration::from_secs(30),
        }
    }
}

/// Longest error body read (the message is in the first few hundred bytes).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// What a provider's event parser found in one SSE event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// Answer text, streamed to the caller as is.
    Text(String),
    /// The model name the server reports.
    Model(String),
    Usage(UsagePatch),
    /// Why the model stopped (the stream may still carry usage after this).
    Finish(Finish),
    Warning(String),
    /// The protocol's end-of-stream marker (`[DONE]`, `message_stop`).
    Done,
    /// An error reported inside the stream; `status` is the HTTP status it stands for.
    Error {
        status: Option<u16>,
        message: String,
    },
}

/// Token counts as reported; `None` means "not in this event". Later events override earlier
/// ones field by field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct UsagePatch {
    /// All prompt tokens, cached included (OpenAI's `prompt_tokens`).
    pub prompt: Option<u32>,
    /// Prompt tokens neither read from nor written to the cache (Anthropic's `input_tokens`);
    /// the total is this plus `cached` plus `cache_write`.
    pub prompt_uncached: Option<u32>,
    pub completion: Option<u32>,
    pub cached: Option<u32>,
    pub cache_write: Option<u32>,
}

impl UsagePatch {
    fn merge(&mut self, p: UsagePatch) {
        self.prompt = p.prompt.or(self.prompt);
        self.prompt_uncached = p.prompt_uncached.or(self.prompt_uncached);
        self.completion = p.completion.or(self.completion);
        self.cached = p.cached.or(self.cached);
        self.cache_write = p.cache_write.or(self.cache_write);
    }

    /// All prompt tokens, when the provider said.
    fn prompt_total(&self) -> Option<u32> {
        self.prompt.or_else(|| {
            self.prompt_uncached
                .map(|u| u.saturating_add(self.cached.unwrap_or(0)).saturating_add(self.cache_write.unwrap_or(0)))
        })
    }
}

/// The start of a bad event, for a warning a person can act on.
pub(crate) fn sample(data: &str) -> String {
    let s: String = data.chars().take(80).collect();
    if s.len() < data.len() { format!("{s:?}...") } else { format!("{s:?}") }
}

/// Turns one SSE event into items; `Err` describes a malformed event.
pub(crate) type Parser = fn(&SseEvent) -> Result<Vec<Item>, String>;

/// One streamed chat call, as a provider describes it.
pub(crate) struct Call<'a> {
    /// Builds the request (called once per attempt).
    pub build: &'a dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    pub parse: Parser,
    /// Our estimate of the prompt, used when the provider reports none.
    pub prompt_estimate: u32,
    /// The configured model name, used when the server does not name one.
    pub model: &'a str,
}

/// The process-wide runtime HTTP requests run on. One worker thread is plenty: it only moves
/// bytes between sockets and channels.
fn runtime() -> Result<&'static tokio::runtime::Runtime, LlmError> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cairn-llm-http")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| LlmError::Provider {
        status: None,
        message: format!("could not start the HTTP runtime: {e}"),
        retry_after: None,
    })
}

/// An HTTP client with its settings and the key to keep out of messages.
pub(crate) struct Transport {
    pub settings: HttpSettings,
    secret: Option<String>,
    client: Mutex<Option<reqwest::Client>>,
}

enum Failure {
    /// Nothing was streamed and the provider may succeed if asked again.
    Retry(LlmError),
    Final(LlmError),
}

impl Transport {
    pub(crate) fn new(settings: HttpSettings, secret: Option<String>) -> Self {
        Transport { settings, secret, client: Mutex::new(None) }
    }

    fn client(&self) -> Result<(reqwest::Client, &'static tokio::runtime::Runtime), LlmError> {
        let rt = runtime()?;
        let mut slot = self.client.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = slot.as_ref() {
            return Ok((c.clone(), rt));
        }
        let _guard = rt.enter();
        let c = reqwest::Client::builder()
            .connect_timeout(self.settings.connect_timeout)
            .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Provider {
                status: None,
                message: format!("http client: {e}"),
                retry_after: None,
            })?;
        *slot = Some(c.clone());
        Ok((c, rt))
    }

    /// Run the call with retries; see the module docs for the policy.
    pub(crate) fn stream(
        &self,
        call: &Call<'_>,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Completion, LlmError> {
        let start = Instant::now();
        let secret = self.secret.as_deref();
        let (client, rt) = self.client()?;
        let max_attempts = self.settings.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(rt, &client, call, on_token, start) {
                Ok(mut c) => {
                    c.attempts = attempt;
                    c.latency_ms = millis(start.elapsed());
                    c.warnings = c.warnings.iter().map(|w| backoff::redact(w, secret)).collect();
                    return Ok(c);
                }
                Err(Failure::Final(e)) => return Err(e.redacted(secret)),
                Err(Failure::Retry(e)) => {
                    if attempt >= max_attempts {
                        return Err(e.redacted(secret));
                    }
                    let wait = match e.retry_after() {
                        Some(d) if d > self.settings.max_retry_wait => return Err(e.redacted(secret)),
                        Some(d) => d,
                        None => full_jitter(self.settings.backoff_base, self.settings.backoff_max, attempt),
                    };
                    std::thread::sleep(wait);
                }
            }
        }
    }

    fn attempt(
        &self,
        rt: &tokio::runtime::Runtime,
        client: &reqwest::Client,
        call: &Call<'_>,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
        call_start: Instant,
    ) -> Result<Completion, Failure> {
        let s = &self.settings;
        let first_deadline = Instant::now() + s.first_token_timeout;
        let first_timeout =
            || Failure::Final(LlmError::Timeout { phase: TimeoutPhase::FirstToken, after: s.first_token_timeout });
        let ex = Exchange::start(rt, (call.build)(client));

        let (status, headers) = match ex.recv_until(first_deadline) {
            None => return Err(first_timeout()),
            Some(Msg::Head { status, headers }) => (status, headers),
            Some(Msg::Failed { connect, timeout, retry, message }) => {
                let e = LlmError::Provider { status: None, message, retry_after: None };
                return Err(match (connect, timeout) {
                    (true, true) => {
                        Failure::Final(LlmError::Timeout { phase: TimeoutPhase::Connect, after: s.connect_timeout })
                    }
                    (false, true) => first_timeout(),
                    _ if retry => Failure::Retry(e),
                    _ => Failure::Final(e),
                });
            }
            Some(Msg::Data(_) | Msg::End | Msg::Broken(_)) => {
                let message = "the connection broke before the answer began".to_owned();
                return Err(Failure::Retry(LlmError::Provider { status: None, message, retry_after: None }));
            }
        };
        if !(200..300).contains(&status) {
            let body = ex.read_body(Instant::now() + s.idle_timeout, MAX_ERROR_BODY);
            let message = backoff::error_body_message(&body).unwrap_or_else(|| {
                reqwest::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|c| c.canonical_reason())
                    .unwrap_or("request failed")
                    .to_owned()
            });
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            let wait = backoff::retry_after(header("retry-after"), header("retry-after-ms"), SystemTime::now());
            let e = LlmError::from_status(status, message, wait);
            return Err(if is_retryable_status(status) { Failure::Retry(e) } else { Failure::Final(e) });
        }

        let mut st = StreamState::new(call, call_start);
        let mut sse = SseDecoder::default();
        let mut last_data = Instant::now();
        loop {
            let deadline = if st.text.is_empty() { first_deadline } else { last_data + s.idle_timeout };
            let (events, ended) = match ex.recv_until(deadline) {
                None if st.text.is_empty() => return Err(first_timeout()),
                None => {
                    let reason = format!("the provider sent nothing for {}", human_duration(s.idle_timeout));
                    return Err(Failure::Final(st.cut(reason)));
                }
                Some(Msg::Data(bytes)) => {
                    last_data = Instant::now();
                    (sse.feed(&bytes), false)
                }
                Some(Msg::End) => (sse.finish(), true),
                Some(Msg::Broken(m)) if st.text.is_empty() => {
                    let message = format!("the connection broke before the answer began: {m}");
                    return Err(Failure::Retry(LlmError::Provider { status: None, message, retry_after: None }));
                }
                Some(Msg::Broken(m)) => return Err(Failure::Final(st.cut(format!("the connection broke: {m}")))),
                Some(Msg::Head { .. } | Msg::Failed { .. }) => (Vec::new(), false),
            };
            for ev in &events {
                match st.handle(ev, call.parse, on_token)? {
                    Step::Continue => {}
                    Step::Done => return st.done(),
                    Step::Cancelled => return Ok(st.completion(Finish::Cancelled)),
                }
            }
            if ended {
                return st.eof();
            }
        }
    }
}

enum Step {
    Continue,
    Done,
    Cancelled,
}

/// What one attempt has seen of the stream so far.
struct StreamState<'a> {
    call: &'a Call<'a>,
    call_start: Instant,
    text: String,
    model: Option<String>,
    usage: UsagePatch,
    finish: Option<Finish>,
    warnings: Vec<String>,
    malformed: usize,
    first_malformed: Option<String>,
    first_token_ms: Option<u64>,
}

impl<'a> StreamState<'a> {
    fn new(call: &'a Call<'a>, call_start: Instant) -> Self {
        StreamState {
            call,
            call_start,
            text: String::new(),
            model: None,
            usage: UsagePatch::default(),
            finish: None,
            warnings: Vec::new(),
            malformed: 0,
            first_malformed: None,
            first_token_ms: None,
        }
    }

    fn handle(
        &mut self,
        ev: &SseEvent,
        parse: Parser,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Step, Failure> {
        let items = match parse(ev) {
            Ok(items) => items,
            Err(what) => {
                self.malformed += 1;
                self.first_malformed.get_or_insert(what);
                return Ok(Step::Continue);
            }
        };
        for item in items {
            match item {
                Item::Text(t) if t.is_empty() => {}
                Item::Text(t) => {
                    self.first_token_ms.get_or_insert_with(|| millis(self.call_start.elapsed()));
                    self.text.push_str(&t);
                    if on_token(&t).is_break() {
                        return Ok(Step::Cancelled);
                    }
                }
                Item::Model(m) if m.is_empty() => {}
                Item::Model(m) => self.model = Some(m),
                Item::Usage(p) => self.usage.merge(p),
                Item::Finish(f) => self.finish = Some(f),
                Item::Warning(w) => {
                    if !self.warnings.contains(&w) {
                        self.warnings.push(w);
                    }
                }
                Item::Done => return Ok(Step::Done),
                Item::Error { status, message } if self.text.is_empty() => {
                    let e = match status {
                        Some(s) => LlmError::from_status(s, message, None),
                        None => LlmError::Provider { status: None, message, retry_after: None },
                    };
                    let retry = status.is_some_and(is_retryable_status);
                    return Err(if retry { Failure::Retry(e) } else { Failure::Final(e) });
                }
                Item::Error { message, .. } => {
                    let reason = format!("the provider reported an error mid-answer: {message}");
                    return Err(Failure::Final(self.cut(reason)));
                }
            }
        }
        Ok(Step::Continue)
    }

    fn malformed_note(&self) -> Option<String> {
        let first = self.first_malformed.as_deref()?;
        let n = self.malformed;
        let events = if n == 1 { "event" } else { "events" };
        Some(format!("skipped {n} malformed stream {events} from the provider (first: {first})"))
    }

    /// The end-of-stream marker arrived.
    fn done(mut self) -> Result<Completion, Failure> {
        if self.text.is_empty()
            && let Some(note) = self.malformed_note()
        {
            return Err(Failure::Final(LlmError::BadResponse(format!("no answer text; {note}"))));
        }
        let finish = self.finish.take().unwrap_or(Finish::Stop);
        Ok(self.completion(finish))
    }

    /// The connection closed without the end marker: complete only if the server said why it
    /// stopped; otherwise the answer was cut (or never began, which is worth a retry).
    fn eof(mut self) -> Result<Completion, Failure> {
        if self.finish.is_some() {
            return self.done();
        }
        if self.text.is_empty() {
            if let Some(note) = self.malformed_note() {
                return Err(Failure::Final(LlmError::BadResponse(format!("no answer text; {note}"))));
            }
            let message = "the connection closed before the answer began".to_owned();
            return Err(Failure::Retry(LlmError::Provider { status: None, message, retry_after: None }));
        }
        Err(Failure::Final(self.cut("the connection closed before the answer was complete".into())))
    }

    fn prompt_tokens(&self) -> u32 {
        self.usage.prompt_total().unwrap_or(self.call.prompt_estimate)
    }

    fn cut(&mut self, reason: String) -> LlmError {
        let reason = match self.malformed_note() {
            Some(note) => format!("{reason}; {note}"),
            None => reason,
        };
        let partial = std::mem::take(&mut self.text);
        LlmError::StreamCut {
            partial_tokens: to_u32(estimate_tokens(&partial)),
            partial,
            prompt_tokens: self.prompt_tokens(),
            reason,
        }
    }

    fn completion(mut self, finish: Finish) -> Completion {
        if let Some(note) = self.malformed_note() {
            self.warnings.push(note);
        }
        let prompt_tokens = self.prompt_tokens();
        let completion_tokens = self.usage.completion.unwrap_or_else(|| to_u32(estimate_tokens(&self.text)));
        Completion {
            usage_reported: self.usage.prompt_total().is_some() && self.usage.completion.is_some(),
            prompt_tokens,
            completion_tokens,
            cached_prompt_tokens: self.usage.cached.unwrap_or(0),
            cache_write_tokens: self.usage.cache_write.unwrap_or(0),
            finish,
            model: self.model.unwrap_or_else(|| self.call.model.to_owned()),
            first_token_ms: self.first_token_ms,
            latency_ms: 0,
            attempts: 0,
            warnings: self.warnings,
            text: self.text,
        }
    }
}

/// What the request task reports to the waiting thread.
enum Msg {
    /// The request could not be sent or no response head came. `retry` is false when asking
    /// again cannot help (the request could not even be built, e.g. a malformed URL).
    Failed {
        connect: bool,
        timeout: bool,
        retry: bool,
        message: String,
    },
    Head {
        status: u16,
        headers: HeaderMap,
    },
    Data(Vec<u8>),
    /// The body ended cleanly.
    End,
    /// The body broke (connection reset, bad chunked encoding...).
    Broken(String),
}

/// One request in flight on the runtime. Dropping it stops the task and closes the connection.
struct Exchange {
    rx: mpsc::Receiver<Msg>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Exchange {
    fn start(rt: &tokio::runtime::Runtime, request: reqwest::RequestBuilder) -> Exchange {
        let (tx, rx) = mpsc::channel();
        let (stop_tx, mut stop) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(async move {
            let sent = tokio::select! {
                r = request.send() => r,
                _ = &mut stop => return,
            };
            let mut resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Msg::Failed {
                        connect: e.is_connect(),
                        timeout: e.is_timeout(),
                        retry: !e.is_builder(),
                        message: error_chain(&e),
                    });
                    return;
                }
            };
            if tx.send(Msg::Head { status: resp.status().as_u16(), headers: resp.headers().clone() }).is_err() {
                return;
            }
            loop {
                let chunk = tokio::select! {
                    c = resp.chunk() => c,
                    _ = &mut stop => return,
                };
                let msg = match chunk {
                    Ok(Some(bytes)) => Msg::Data(bytes.to_vec()),
                    Ok(None) => Msg::End,
                    Err(e) => Msg::Broken(error_chain(&e)),
                };
                let last = !matches!(msg, Msg::Data(_));
                if tx.send(msg).is_err() || last {
                    return;
                }
            }
        });
        Exchange { rx, _stop: stop_tx }
    }

    /// The next message, or `None` when `deadline` passes first.
    fn recv_until(&self, deadline: Instant) -> Option<Msg> {
        match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Msg::Broken("the request task ended".into())),
        }
    }

    /// The rest of the body, up to `limit` bytes and `deadline`, lossily decoded.
    fn read_body(&self, deadline: Instant, limit: usize) -> String {
        let mut body = Vec::new();
        while let Some(Msg::Data(bytes)) = self.recv_until(deadline) {
            body.extend_from_slice(&bytes);
            if body.len() >= limit {
                body.truncate(limit);
                break;
            }
        }
        String::from_utf8_lossy(&body).into_owned()
    }
}
