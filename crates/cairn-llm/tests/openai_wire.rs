//! `OpenAiChat` against a real local HTTP/1.1 server speaking the OpenAI streaming wire format
//! (chunked server-sent events), including the failures real servers produce: rate limits,
//! 5xx, bad keys, cut streams, malformed events and silence. Each test checks what the user sees
//! (text, finish, error code and message) and what the cost ledger would record (tokens,
//! whether they were reported, attempts). Not a test of any real provider.
#![allow(clippy::unwrap_used)]

mod support;

use cairn_core::ErrorCode;
use cairn_llm::{
    ChatMessage, ChatModel, ChatRequest, Completion, Finish, HttpSettings, LlmError, OpenAiChat, OpenAiConfig,
    TimeoutPhase,
};
use std::ops::ControlFlow;
use std::time::{Duration, Instant, SystemTime};
use support::{End, Frame, Reply, data, serve};

const MODEL: &str = "gpt-4o-mini-2024-07-18";

/// A content delta exactly as OpenAI sends it.
fn delta(content: &str) -> Frame {
    data(
        &serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
            "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "delta": {"content": content}, "logprobs": null, "finish_reason": null}],
            "usage": null
        })
        .to_string(),
    )
}

fn role_chunk() -> Frame {
    data(
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    )
}

fn finish_chunk(reason: &str) -> Frame {
    data(&format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"{MODEL}","choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"{reason}"}}],"usage":null}}"#
    ))
}

/// The final usage chunk `stream_options.include_usage` asks for.
fn usage_chunk(prompt: u32, completion: u32, cached: u32) -> Frame {
    data(&format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"{MODEL}","choices":[],"usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":{cached},"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0}}}}}}"#,
        prompt + completion
    ))
}

fn done() -> Frame {
    data("[DONE]")
}

fn hello(with_usage: bool) -> Vec<Frame> {
    let mut e = vec![role_chunk(), delta("Hello"), delta(", "), delta("world"), delta("!"), finish_chunk("stop")];
    if with_usage {
        e.push(usage_chunk(21, 4, 0));
    }
    e.push(done());
    e
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::system("Answer from the sources."), ChatMessage::user("Say hello.")],
        max_tokens: 64,
        temperature: 0.0,
    }
}

/// Quick retries so the tests do not sleep for real backoff; generous timeouts otherwise.
fn settings() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(2),
        first_token_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..HttpSettings::default()
    }
}

fn chat_with(base: &str, key: Option<&str>, http: HttpSettings) -> OpenAiChat {
    let mut cfg = OpenAiConfig::new(format!("{base}/v1"), "gpt-4o-mini");
    cfg.api_key = key.map(str::to_owned);
    cfg.http = http;
    OpenAiChat::new(cfg)
}

fn chat(base: &str) -> OpenAiChat {
    chat_with(base, None, settings())
}

fn collect(model: &OpenAiChat) -> (Result<Completion, LlmError>, Vec<String>) {
    let mut pieces = Vec::new();
    let r = model.generate(&request(), &mut |t| {
        pieces.push(t.to_owned());
        ControlFlow::Continue(())
    });
    (r, pieces)
}

#[test]
fn streams_text_and_reports_usage() {
    let server = serve(vec![Reply::stream(hello(true))]);
    let model = chat_with(&server.base, Some("sk-test"), settings());
    let (r, pieces) = collect(&model);
    let c = r.unwrap();
    assert_eq!(pieces, ["Hello", ", ", "world", "!"]);
    assert_eq!(c.text, "Hello, world!");
    assert_eq!((c.prompt_tokens, c.completion_tokens, c.cached_prompt_tokens, c.usage_reported), (21, 4, 0, true));
    assert_eq!(c.finish, Finish::Stop);
    assert_eq!(c.model, MODEL);
    assert_eq!(c.attempts, 1);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let first = c.first_token_ms.unwrap();
    assert!(first <= c.latency_ms, "{first} > {}", c.latency_ms);

    let req = &server.requests()[0];
    assert!(req.head.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"), "{}", req.head);
    assert_eq!(req.header("authorization").as_deref(), Some("Bearer sk-test"));
    let body = req.json();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["content"], "Say hello.");
}

#[test]
fn cached_prompt_tokens_are_reported() {
    let events = vec![role_chunk(), delta("Cached."), finish_chunk("stop"), usage_chunk(2048, 3, 1920), done()];
    let server = serve(vec![Reply::stream(events)]);
    let c = collect(&chat(&server.base)).0.unwrap();
    assert_eq!(c.text, "Cached.");
    assert_eq!((c.prompt_tokens, c.cached_prompt_tokens, c.completion_tokens), (2048, 1920, 3));
    assert_eq!(c.cache_write_tokens, 0);
    assert!(c.usage_reported);
}

#[test]
fn counts_tokens_itself_when_usage_is_missing() {
    let server = serve(vec![Reply::stream(hello(false))]);
    let model = chat(&server.base);
    let c = collect(&model).0.unwrap();
    assert_eq!(c.text, "Hello, world!");
    assert!(!c.usage_reported);
    assert_eq!(c.completion_tokens as usize, model.count_tokens("Hello, world!"));
    // Two messages' content plus per-message overhead: never less than the content alone.
    let content = model.count_tokens("Answer from the sources.") + model.count_tokens("Say hello.");
    assert!(c.prompt_tokens as usize > content, "{} vs {content}", c.prompt_tokens);
    assert_eq!(c.cached_prompt_tokens, 0);
    assert!(server.requests()[0].header("authorization").is_none(), "no key, no header");
}

fn rate_limited(retry_after: &str) -> Reply {
    Reply::status(
        429,
        "Too Many Requests",
        r#"{"error":{"message":"Rate limit reached for gpt-4o-mini","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
    )
    .with_header("Retry-After", retry_after)
}

#[test]
fn retries_429_honouring_retry_after_seconds() {
    let server = serve(vec![rate_limited("1"), Reply::stream(hello(true))]);
    let start = Instant::now();
    let c = collect(&chat(&server.base)).0.unwrap();
    assert_eq!(c.text, "Hello, world!");
    assert_eq!(c.attempts, 2);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(950), "second request after {gap:?}");
    assert!(start.elapsed() < Duration::from_secs(4), "took {:?}", start.elapsed());
    assert_eq!(reqs[0].body, reqs[1].body, "the same request is repeated");
}

#[test]
fn retries_429_honouring_retry_after_as_a_date() {
    let at = SystemTime::now() + Duration::from_secs(2);
    let server = serve(vec![rate_limited(&support::http_date(at)), Reply::stream(hello(true))]);
    let c = collect(&chat(&server.base)).0.unwrap();
    assert_eq!(c.text, "Hello, world!");
    let reqs = server.requests();
    let gap = reqs[1].at - reqs[0].at;
    // The date has whole-second resolution: the wait is between 1 and 2 s.
    assert!(gap >= Duration::from_millis(900) && gap < Duration::from_secs(3), "second request after {gap:?}");
}

#[test]
fn a_retry_after_longer_than_the_cap_is_returned_not_waited() {
    let server = serve(vec![rate_limited("120"), Reply::stream(hello(true))]);
    let start = Instant::now();
    let e = collect(&chat(&server.base)).0.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "waited {:?}", start.elapsed());
    assert_eq!(e.code(), ErrorCode::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(
        e.to_string(),
        "the provider is rate limiting requests (HTTP 429), retry in 120 s: Rate limit reached for gpt-4o-mini"
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn retries_5xx_before_streaming() {
    let err = || Reply::status(500, "Internal Server Error", r#"{"error":{"message":"The server had an error"}}"#);
    let server = serve(vec![err(), err(), Reply::stream(hello(true))]);
    let c = collect(&chat(&server.base)).0.unwrap();
    assert_eq!(c.text, "Hello, world!");
    assert_eq!(c.attempts, 3);
    assert_eq!((c.prompt_tokens, c.completion_tokens), (21, 4));
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn gives_up_after_three_attempts() {
    let err = || Reply::status(503, "Service Unavailable", "overloaded");
    let server = serve(vec![err(), err(), err(), err()]);
    let e = collect(&chat(&server.base)).0.unwrap_err();
    assert!(matches!(&e, LlmError::Provider { status: Some(503), message, .. } if message == "overloaded"), "{e:?}");
    assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
    assert_eq!(e.to_string(), "the provider failed (HTTP 503): overloaded");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn cut_stream_keeps_the_partial_answer() {
    let events = vec![role_chunk(), delta("The answer "), delta("is 4")];
    let server = serve(vec![Reply::Stream { frames: events, end: End::Cut }]);
    let model = chat(&server.base);
    let (r, pieces) = collect(&model);
    let e = r.unwrap_err();
    assert_eq!(pieces.concat(), "The answer is 4");
    assert_eq!(e.code(), ErrorCode::StreamCut);
    match &e {
        LlmError::StreamCut { partial, partial_tokens, prompt_tokens, reason } => {
            assert_eq!(partial, "The answer is 4");
            assert_eq!(*partial_tokens as usize, model.count_tokens("The answer is 4"));
            assert!(*prompt_tokens > 0);
            assert!(reason.contains("connection"), "{reason}");
        }
        other => panic!("expected StreamCut, got {other:?}"),
    }
    assert!(e.to_string().starts_with("the answer broke off after 15 characters"), "{e}");
    assert_eq!(server.requests().len(), 1, "a cut after text is never retried");
}

#[test]
fn close_without_done_or_finish_is_a_cut() {
    let server = serve(vec![Reply::CloseDelimited { frames: vec![delta("Half an ")] }]);
    let e = collect(&chat(&server.base)).0.unwrap_err();
    assert_eq!(e.partial_text(), Some("Half an "));
    assert_eq!(e.code(), ErrorCode::StreamCut);
}

#[test]
fn a_malformed_event_is_skipped_and_reported() {
    let events = vec![
        role_chunk(),
        delta("Hello"),
        data(r#"{"id":"chatcmpl-1","choices":[{"delta":{"content":"lost"#),
        delta(" again"),
        finish_chunk("stop"),
        usage_chunk(21, 3, 0),
        done(),
    ];
    let server = serve(vec![Reply::stream(events)]);
    let c = collect(&chat(&server.base)).0.unwrap();
    assert_eq!(c.text, "Hello again");
    assert_eq!(c.finish, Finish::Stop);
    assert_eq!((c.prompt_tokens, c.completion_tokens, c.usage_reported), (21, 3, true));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].starts_with("skipped 1 malformed stream event from the provider"), "{:?}", c.warnings);
}

#[test]
fn a_stream_of_only_malformed_events_is_an_error() {
    let events = vec![data("<html>Bad gateway</html>"), data("{oops"), done()];
    let server = serve(vec![Reply::stream(events)]);
    let e = collect(&chat(&server.base)).0.unwrap_err();
    assert!(matches!(e, LlmError::BadResponse(_)), "{e:?}");
    assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
    assert!(e.to_string().contains("skipped 2 malformed stream events"), "{e}");
}

#[test]
fn an_error_event_mid_answer_is_a_cut() {
    let events = vec![
        role_chunk(),
        delta("Partly "),
        data(r#"{"error":{"message":"Upstream provider disconnected","code":502}}"#),
        done(),
    ];
    let server = serve(vec![Reply::stream(events)]);
    let e = collect(&chat(&server.base)).0.unwrap_err();
    assert_eq!(e.partial_text(), Some("Partly "));
    assert!(e.to_string().contains("Upstream provider disconnected"), "{e}");
}

#[test]
fn bad_key_is_auth_failed_and_the_key_is_never_shown() {
    // Older OpenAI answers echoed the key; ours must not pass it on.
    let key = "sk-proj-THIS-IS-SECRET-0123456789";
    let body = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
    );
    let server = serve(vec![Reply::status(401, "Unauthorized", &body)]);
    let model = chat_with(&server.base, Some(key), settings());
    let e = collect(&model).0.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuthFailed);
    let shown = e.to_string();
    assert!(
        shown.starts_with("the provider rejected the API key (HTTP 401): Incorrect API key provided: <redacted>."),
        "{shown}"
    );
    assert!(!shown.contains(key) && !format!("{e:?}").contains(key), "{e:?}");
    assert!(!format!("{model:?}").contains(key));
    assert_eq!(server.requests().len(), 1, "401 is not retried");
}

#[test]
fn unknown_model_maps_to_model_missing() {
    // What Ollama's OpenAI-compatible endpoint answers for a model it has not pulled.
    let body = r#"{"error":{"message":"model \"llama9\" not found, try pulling it first","type":"api_error","param":null,"code":null}}"#;
    let server = serve(vec![Reply::status(404, "Not Found", body)]);
    let e = collect(&chat(&server.base)).0.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ModelMissing);
    assert_eq!(
        e.to_string(),
        "the provider does not know this model or endpoint (HTTP 404): model \"llama9\" not found, try pulling it first"
    );
}

#[test]
fn a_prompt_the_server_finds_too_long_is_context_overflow() {
    let body = r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130415 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
    let server = serve(vec![Reply::status(400, "Bad Request", body)]);
    let e = collect(&chat(&server.base)).0.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ContextOverflow);
    assert!(e.to_string().contains("maximum context length is 128000"), "{e}");
}

fn short_first_token() -> HttpSettings {
    HttpSettings { first_token_timeout: Duration::from_millis(600), ..settings() }
}

#[test]
fn silence_before_the_headers_is_a_first_token_timeout() {
    let server = serve(vec![Reply::Hang(Duration::from_secs(4)), Reply::stream(hello(true))]);
    let start = Instant::now();
    let e = collect(&chat_with(&server.base, None, short_first_token())).0.unwrap_err();
    assert!(matches!(e, LlmError::Timeout { phase: TimeoutPhase::FirstToken, .. }), "{e:?}");
    assert_eq!(e.code(), ErrorCode::Timeout);
    assert_eq!(e.to_string(), "the model sent no answer within 600 ms of the request");
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
    assert_eq!(server.requests().len(), 1, "a timeout is not retried");
}

#[test]
fn keep_alives_do_not_stretch_the_first_token_timeout() {
    // Connected, headers sent, comments every 100 ms, but no text.
    let mut frames = vec![role_chunk()];
    for _ in 0..30 {
        frames.push(Frame::Bytes(": keep-alive\n\n".into()));
        frames.push(Frame::Pause(Duration::from_millis(100)));
    }
    let server = serve(vec![Reply::stream(frames)]);
    let start = Instant::now();
    let e = collect(&chat_with(&server.base, None, short_first_token())).0.unwrap_err();
    assert!(matches!(e, LlmError::Timeout { phase: TimeoutPhase::FirstToken, .. }), "{e:?}");
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
}

#[test]
fn silence_mid_answer_is_an_idle_cut_with_the_partial_text() {
    let events = vec![role_chunk(), delta("Paris is "), delta("the capital")];
    let server = serve(vec![Reply::Stream { frames: events, end: End::Hang(Duration::from_secs(4)) }]);
    let http = HttpSettings { idle_timeout: Duration::from_millis(500), ..settings() };
    let start = Instant::now();
    let e = collect(&chat_with(&server.base, None, http)).0.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
    match &e {
        LlmError::StreamCut { partial, reason, .. } => {
            assert_eq!(partial, "Paris is the capital");
            assert_eq!(reason, "the provider sent nothing for 500 ms");
        }
        other => panic!("expected StreamCut, got {other:?}"),
    }
}

#[test]
fn cancelling_stops_the_stream_and_drops_the_connection() {
    let mut frames = vec![role_chunk(), delta("Hello")];
    for i in 0..40 {
        frames.push(Frame::Pause(Duration::from_millis(50)));
        frames.push(delta(&format!(" {i}")));
    }
    frames.push(done());
    let server = serve(vec![Reply::stream(frames)]);
    let model = chat(&server.base);
    let mut seen = 0;
    let c = model
        .generate(&request(), &mut |_| {
            seen += 1;
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!(seen, 1);
    assert_eq!(c.text, "Hello");
    assert_eq!(c.finish, Finish::Cancelled);
    assert!(!c.usage_reported);
    assert_eq!(c.completion_tokens as usize, model.count_tokens("Hello"), "a cancelled call still costs");
    let outcome = server.outcome(0, Duration::from_secs(5)).unwrap();
    assert!(outcome.client_hung_up, "{outcome:?}");
    assert!(outcome.frames_written < outcome.frames_total, "{outcome:?}");
}

#[test]
fn length_finish_is_reported() {
    let events = vec![role_chunk(), delta("Long"), finish_chunk("length"), usage_chunk(10, 1, 0), done()];
    let server = serve(vec![Reply::stream(events)]);
    let c = collect(&chat(&server.base)).0.unwrap();
    assert_eq!(c.finish, Finish::Length);
    assert_eq!((c.prompt_tokens, c.completion_tokens), (10, 1));
}

#[test]
fn refused_connection_is_a_provider_error_without_status() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = collect(&chat(&format!("http://127.0.0.1:{port}"))).0.unwrap_err();
    assert!(matches!(e, LlmError::Provider { status: None, .. }), "{e:?}");
    assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
    assert!(e.to_string().starts_with("could not get an answer from the provider: "), "{e}");
}

#[test]
fn oversized_request_is_refused_before_sending() {
    let server = serve(vec![]);
    let mut cfg = OpenAiConfig::new(format!("{}/v1", server.base), "m");
    cfg.context_window = 50;
    let model = OpenAiChat::new(cfg);
    let mut req = request();
    req.max_tokens = 40;
    let e = model.generate(&req, &mut |_| ControlFlow::Continue(())).unwrap_err();
    assert!(matches!(e, LlmError::ContextOverflow { window: 50, .. }), "{e:?}");
    assert_eq!(e.code(), ErrorCode::ContextOverflow);
    assert_eq!(server.requests().len(), 0);
}

#[test]
fn probe_reports_the_model_latency_and_usage() {
    let events = vec![role_chunk(), delta("OK"), finish_chunk("length"), usage_chunk(9, 1, 0), done()];
    let server = serve(vec![Reply::stream(events), Reply::stream(vec![role_chunk(), delta("OK"), done()])]);
    let model = chat(&server.base);
    let p = model.probe().unwrap();
    assert_eq!(p.provider, model.id());
    assert_eq!(p.model, MODEL);
    assert!(p.usage_reported);
    assert_eq!((p.prompt_tokens, p.completion_tokens, p.attempts), (9, 1, 1));
    assert_eq!(p.text, "OK");
    assert!(p.first_token_ms.unwrap() <= p.latency_ms);
    assert_eq!(server.requests()[0].json()["max_tokens"], 1);
    // A server that ignores stream_options: the probe says usage will be estimated.
    let p = model.probe().unwrap();
    assert!(!p.usage_reported);
}
