//! `AnthropicChat` against a real local HTTP/1.1 server speaking the Messages API streaming wire
//! format (named server-sent events: `message_start`, `content_block_*`, `message_delta`,
//! `message_stop`, `ping`, `error`), with the failures the real API produces: 429 with
//! `retry-after`, 529 overloaded (as a status and as an in-stream `error` event), bad keys,
//! unknown models, cut streams, silence and malformed events. Each test checks what the user
//! sees and what the cost ledger would record. Not a test of the real API.
#![allow(clippy::unwrap_used)]

mod support;

use cairn_core::ErrorCode;
use cairn_llm::{
    AnthropicChat, AnthropicConfig, ChatMessage, ChatModel, ChatRequest, Completion, Finish, HttpSettings, LlmError,
    TimeoutPhase,
};
use serde_json::json;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};
use support::{End, Frame, Reply, event, serve};

const MODEL: &str = "claude-sonnet-4-5-20250929";
const KEY: &str = "sk-ant-api03-SECRET-KEY-abcdef0123456789";

fn message_start(input: u32, cache_read: u32, cache_write: u32) -> Frame {
    let data = json!({"type": "message_start", "message": {
        "id": "msg_01", "type": "message", "role": "assistant", "content": [], "model": MODEL,
        "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input, "cache_creation_input_tokens": cache_write,
                  "cache_read_input_tokens": cache_read, "output_tokens": 1}}});
    event("message_start", &data.to_string())
}

/// `message_start` from a proxy that strips usage.
fn message_start_without_usage() -> Frame {
    let data = json!({"type": "message_start", "message": {
        "id": "msg_01", "type": "message", "role": "assistant", "content": [], "model": MODEL,
        "stop_reason": null, "stop_sequence": null}});
    event("message_start", &data.to_string())
}

fn block_start() -> Frame {
    event(
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    )
}

fn ping() -> Frame {
    event("ping", r#"{"type": "ping"}"#)
}

fn text(t: &str) -> Frame {
    let data = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}});
    event("content_block_delta", &data.to_string())
}

fn block_stop() -> Frame {
    event("content_block_stop", r#"{"type":"content_block_stop","index":0}"#)
}

fn message_delta(stop_reason: &str, output: Option<u32>) -> Frame {
    let mut data = json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}});
    if let Some(n) = output {
        data["usage"] = json!({"output_tokens": n});
    }
    event("message_delta", &data.to_string())
}

fn message_stop() -> Frame {
    event("message_stop", r#"{"type":"message_stop"}"#)
}

fn stream_error(kind: &str, message: &str) -> Frame {
    let data = json!({"type": "error", "error": {"type": kind, "message": message}});
    event("error", &data.to_string())
}

/// A whole answer, as the API streams it.
fn answer(pieces: &[&str], stop: &str, output: Option<u32>) -> Vec<Frame> {
    let mut f = vec![message_start(25, 0, 0), block_start(), ping()];
    f.extend(pieces.iter().map(|p| text(p)));
    f.extend([block_stop(), message_delta(stop, output), message_stop()]);
    f
}

fn error_body(kind: &str, message: &str) -> String {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011"}).to_string()
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::system("Answer from the sources. Cite them as [n]."),
            ChatMessage::user(
                "[1] notes.md: The capital of France is Paris.\n\nQuestion: What is the capital of France?",
            ),
        ],
        max_tokens: 100,
        temperature: 0.0,
    }
}

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

fn chat_with(base: &str, http: HttpSettings) -> AnthropicChat {
    let mut cfg = AnthropicConfig::new("claude-sonnet-4-5");
    cfg.api_key = Some(KEY.to_owned());
    cfg.base_url = base.to_owned();
    cfg.http = http;
    AnthropicChat::new(cfg)
}

fn chat(base: &str) -> AnthropicChat {
    chat_with(base, settings())
}

fn collect(model: &AnthropicChat) -> (Result<Completion, LlmError>, Vec<String>) {
    let mut pieces = Vec::new();
    let r = model.generate(&request(), &mut |t| {
        pieces.push(t.to_owned());
        ControlFlow::Continue(())
    });
    (r, pieces)
}

/// What the user must never see.
fn assert_no_key(e: &LlmError) {
    assert!(!e.to_string().contains(KEY), "{e}");
    assert!(!format!("{e:?}").contains(KEY), "{e:?}");
}

#[test]
fn streams_text_and_reports_usage() {
    let server = serve(vec![Reply::stream(answer(&["The capital ", "is Paris ", "[1]."], "end_turn", Some(9)))]);
    let model = chat(&server.base);
    let (r, pieces) = collect(&model);
    let c = r.unwrap();
    assert_eq!(pieces, ["The capital ", "is Paris ", "[1]."]);
    assert_eq!(c.text, "The capital is Paris [1].");
    assert_eq!(c.finish, Finish::Stop);
    assert_eq!(c.model, MODEL);
    assert_eq!((c.prompt_tokens, c.completion_tokens, c.usage_reported), (25, 9, true));
    assert_eq!((c.cached_prompt_tokens, c.cache_write_tokens), (0, 0));
    assert_eq!(c.attempts, 1);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(c.first_token_ms.unwrap() <= c.latency_ms);
    assert_eq!(model.id(), format!("anthropic:claude-sonnet-4-5@{}", server.base));

    let req = &server.requests()[0];
    assert!(req.head.starts_with("POST /v1/messages HTTP/1.1\r\n"), "{}", req.head);
    assert_eq!(req.header("x-api-key").as_deref(), Some(KEY));
    assert_eq!(req.header("anthropic-version").as_deref(), Some("2023-06-01"));
    assert!(req.header("authorization").is_none());
    let body = req.json();
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_tokens"], 100);
    assert_eq!(body["system"], "Answer from the sources. Cite them as [n].");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "the system prompt is not a message");
    assert_eq!(messages[0]["role"], "user");
}

#[test]
fn cache_reads_and_writes_are_counted() {
    let mut frames = vec![message_start(12, 2000, 150), block_start(), text("Paris.")];
    frames.extend([block_stop(), message_delta("end_turn", Some(3)), message_stop()]);
    let server = serve(vec![Reply::stream(frames)]);
    let c = collect(&chat(&server.base)).0.unwrap();
    assert_eq!(c.text, "Paris.");
    // input_tokens counts only the uncached part: the prompt is all three together.
    assert_eq!((c.prompt_tokens, c.cached_prompt_tokens, c.cache_write_tokens), (2162, 2000, 150));
    assert_eq!(c.completion_tokens, 3);
    assert!(c.usage_reported);
}

#[test]
fn without_usage_the_counts_are_estimated() {
    let mut frames = vec![message_start_without_usage(), block_start(), text("Paris.")];
    frames.extend([block_stop(), message_delta("end_turn", None), message_stop()]);
    let server = serve(vec![Reply::stream(frames)]);
    let model = chat(&server.base);
    let c = collect(&model).0.unwrap();
    assert_eq!(c.text, "Paris.");
    assert!(!c.usage_reported);
    assert_eq!(c.completion_tokens as usize, model.count_tokens("Paris."));
    let content: usize = request().messages.iter().map(|m| model.count_tokens(&m.content)).sum();
    assert!(c.prompt_tokens as usize > content, "{} vs {content}", c.prompt_tokens);
}

#[test]
fn max_tokens_is_a_length_finish() {
    let server = serve(vec![Reply::stream(answer(&["The capital of France is"], "max_tokens", Some(100)))]);
    let c = collect(&chat(&server.base)).0.unwrap();
    assert_eq!(c.finish, Finish::Length);
    assert_eq!(c.completion_tokens, 100);
}

#[test]
fn retries_429_honouring_retry_after() {
    let limited = Reply::status(
        429,
        "Too Many Requests",
        &error_body("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    )
    .with_header("retry-after", "1");
    let server = serve(vec![limited, Reply::stream(answer(&["Paris."], "end_turn", Some(2)))]);
    let c = collect(&chat(&server.base)).0.unwrap();
    assert_eq!(c.text, "Paris.");
    assert_eq!(c.attempts, 2);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].at - reqs[0].at >= Duration::from_millis(950), "retried after {:?}", reqs[1].at - reqs[0].at);
    assert_eq!(reqs[0].body, reqs[1].body);
}

#[test]
fn rate_limit_with_a_long_wait_tells_the_user_when_to_retry() {
    let limited = Reply::status(429, "Too Many Requests", &error_body("rate_limit_error", "Rate limited"))
        .with_header("retry-after", "45");
    let server = serve(vec![limited]);
    let e = collect(&chat(&server.base)).0.unwrap_err();
    assert_eq!(e.code(), ErrorCode::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(45)));
    assert_eq!(e.to_string(), "the provider is rate limiting requests (HTTP 429), retry in 45 s: Rate limited");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn overloaded_529_is_retried_with_backoff() {
    let overloaded = || Reply::status(529, "Overloaded", &error_body("overloaded_error", "Overloaded"));
    let server = serve(vec![overloaded(), overloaded(), Reply::stream(answer(&["Paris."], "end_turn", Some(2)))]);
    let c = collect(&chat(&server.base)).0.unwrap();
    assert_eq!(c.text, "Paris.");
    assert_eq!(c.attempts, 3);
    assert_eq!((c.prompt_tokens, c.completion_tokens), (25, 2));
}

#[test]
fn overloaded_after_every_attempt_is_provider_unavailable() {
    let overloaded = || Reply::status(529, "Overloaded", &error_body("overloaded_error", "Overloaded"));
    let server = serve(vec![overloaded(), overloaded(), overloaded()]);
    let e = collect(&chat(&server.base)).0.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
    assert_eq!(e.to_string(), "the provider is overloaded (HTTP 529): Overloaded");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn an_overloaded_error_event_before_any_text_is_retried() {
    // HTTP 200, then `event: error` as the first thing in the stream.
    let first = vec![message_start(25, 0, 0), stream_error("overloaded_error", "Overloaded")];
    let server = serve(vec![Reply::stream(first), Reply::stream(answer(&["Paris."], "end_turn", Some(2)))]);
    let c = collect(&chat(&server.base)).0.unwrap();
    assert_eq!(c.text, "Paris.");
    assert_eq!(c.attempts, 2);
}

#[test]
fn an_error_event_mid_answer_keeps_the_partial_text() {
    let frames = vec![
        message_start(25, 0, 0),
        block_start(),
        text("The capital "),
        text("is "),
        stream_error("overloaded_error", "Overloaded"),
    ];
    let server = serve(vec![Reply::stream(frames), Reply::stream(answer(&["never"], "end_turn", Some(1)))]);
    let model = chat(&server.base);
    let (r, pieces) = collect(&model);
    let e = r.unwrap_err();
    assert_eq!(pieces.concat(), "The capital is ");
    assert_eq!(e.code(), ErrorCode::StreamCut);
    match &e {
        LlmError::StreamCut { partial, partial_tokens, prompt_tokens, reason } => {
            assert_eq!(partial, "The capital is ");
            assert_eq!(*partial_tokens as usize, model.count_tokens("The capital is "));
            assert_eq!(*prompt_tokens, 25, "the prompt count message_start reported");
            assert_eq!(reason, "the provider reported an error mid-answer: Overloaded");
        }
        other => panic!("expected StreamCut, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1, "text was shown: no retry");
}

#[test]
fn a_slow_first_token_times_out_even_with_pings() {
    let mut frames = vec![message_start(25, 0, 0)];
    for _ in 0..30 {
        frames.push(Frame::Pause(Duration::from_millis(100)));
        frames.push(ping());
    }
    frames.extend(answer(&["late"], "end_turn", Some(1)));
    let server = serve(vec![Reply::stream(frames)]);
    let http = HttpSettings { first_token_timeout: Duration::from_millis(700), ..settings() };
    let start = Instant::now();
    let e = collect(&chat_with(&server.base, http)).0.unwrap_err();
    let took = start.elapsed();
    assert!(matches!(e, LlmError::Timeout { phase: TimeoutPhase::FirstToken, .. }), "{e:?}");
    assert_eq!(e.code(), ErrorCode::Timeout);
    assert_eq!(e.to_string(), "the model sent no answer within 700 ms of the request");
    assert!(took >= Duration::from_millis(650) && took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn an_idle_gap_mid_stream_is_a_cut_with_the_partial_text() {
    let frames = vec![message_start(25, 0, 0), block_start(), text("Paris "), text("is the")];
    let server = serve(vec![Reply::Stream { frames, end: End::Hang(Duration::from_secs(4)) }]);
    let http = HttpSettings { idle_timeout: Duration::from_millis(400), ..settings() };
    let start = Instant::now();
    let model = chat_with(&server.base, http);
    let e = collect(&model).0.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
    match &e {
        LlmError::StreamCut { partial, partial_tokens, prompt_tokens, reason } => {
            assert_eq!(partial, "Paris is the");
            assert_eq!(*partial_tokens as usize, model.count_tokens("Paris is the"));
            assert_eq!(*prompt_tokens, 25);
            assert_eq!(reason, "the provider sent nothing for 400 ms");
        }
        other => panic!("expected StreamCut, got {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "the answer broke off after 12 characters (about 4 tokens): the provider sent nothing for 400 ms"
    );
}

#[test]
fn a_stream_cut_midway_keeps_the_partial_text() {
    let frames = vec![message_start(25, 0, 0), block_start(), text("Paris "), text("is")];
    let server = serve(vec![Reply::Stream { frames, end: End::Cut }]);
    let e = collect(&chat(&server.base)).0.unwrap_err();
    assert_eq!(e.code(), ErrorCode::StreamCut);
    assert_eq!(e.partial_text(), Some("Paris is"));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_connection_closed_before_any_text_is_retried() {
    let server = serve(vec![
        Reply::Stream { frames: vec![message_start(25, 0, 0)], end: End::Cut },
        Reply::stream(answer(&["Paris."], "end_turn", Some(2))),
    ]);
    let c = collect(&chat(&server.base)).0.unwrap();
    assert_eq!(c.text, "Paris.");
    assert_eq!(c.attempts, 2);
}

#[test]
fn a_malformed_event_is_skipped_with_a_warning() {
    let frames = vec![
        message_start(25, 0, 0),
        block_start(),
        text("Paris"),
        event("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"#),
        text("."),
        block_stop(),
        message_delta("end_turn", Some(3)),
        message_stop(),
    ];
    let server = serve(vec![Reply::stream(frames)]);
    let c = collect(&chat(&server.base)).0.unwrap();
    assert_eq!(c.text, "Paris.");
    assert_eq!((c.prompt_tokens, c.completion_tokens, c.usage_reported), (25, 3, true));
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].starts_with("skipped 1 malformed stream event from the provider (first: "),
        "{:?}",
        c.warnings
    );
}

#[test]
fn nothing_but_malformed_events_is_a_clear_error() {
    let frames =
        vec![event("message_start", "{not json"), event("content_block_delta", "<!doctype html>"), message_stop()];
    let server = serve(vec![Reply::stream(frames)]);
    let e = collect(&chat(&server.base)).0.unwrap_err();
    assert!(matches!(e, LlmError::BadResponse(_)), "{e:?}");
    assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
    assert!(
        e.to_string()
            .starts_with("the provider sent a response this client cannot read: no answer text; skipped 2 malformed"),
        "{e}"
    );
}

#[test]
fn cancelling_keeps_the_text_and_drops_the_connection() {
    let mut frames = vec![message_start(40, 30, 0), block_start(), text("Paris")];
    for i in 0..40 {
        frames.push(Frame::Pause(Duration::from_millis(50)));
        frames.push(text(&format!(" {i}")));
    }
    frames.extend([block_stop(), message_delta("end_turn", Some(41)), message_stop()]);
    let server = serve(vec![Reply::stream(frames)]);
    let model = chat(&server.base);
    let c = model.generate(&request(), &mut |_| ControlFlow::Break(())).unwrap();
    assert_eq!(c.text, "Paris");
    assert_eq!(c.finish, Finish::Cancelled);
    // The prompt count came with message_start; the answer's is ours: the figure is estimated.
    assert_eq!((c.prompt_tokens, c.cached_prompt_tokens), (70, 30));
    assert_eq!(c.completion_tokens as usize, model.count_tokens("Paris"));
    assert!(!c.usage_reported);
    let outcome = server.outcome(0, Duration::from_secs(5)).unwrap();
    assert!(outcome.client_hung_up && outcome.frames_written < outcome.frames_total, "{outcome:?}");
}

#[test]
fn a_bad_key_is_auth_failed_without_the_key() {
    // The message echoes the key, as a careless proxy might.
    let body = error_body("authentication_error", &format!("invalid x-api-key: {KEY}"));
    let server = serve(vec![Reply::status(401, "Unauthorized", &body)]);
    let model = chat(&server.base);
    let e = collect(&model).0.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuthFailed);
    assert_eq!(e.to_string(), "the provider rejected the API key (HTTP 401): invalid x-api-key: <redacted>");
    assert_no_key(&e);
    assert!(!format!("{model:?}").contains(KEY));
    assert!(!format!("{:?}", model.config()).contains(KEY));
    assert_eq!(server.requests().len(), 1, "401 is not retried");
}

#[test]
fn an_unknown_model_is_model_missing() {
    let body = error_body("not_found_error", "model: claude-nope");
    let server = serve(vec![Reply::status(404, "Not Found", &body)]);
    let e = collect(&chat(&server.base)).0.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ModelMissing);
    assert_eq!(e.to_string(), "the provider does not know this model or endpoint (HTTP 404): model: claude-nope");
    assert_no_key(&e);
}

#[test]
fn a_prompt_the_api_finds_too_long_is_context_overflow() {
    let body = error_body("invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum");
    let server = serve(vec![Reply::status(400, "Bad Request", &body)]);
    let e = collect(&chat(&server.base)).0.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ContextOverflow);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn probe_makes_a_one_token_request() {
    let server = serve(vec![Reply::stream(answer(&["OK"], "max_tokens", Some(1)))]);
    let model = chat(&server.base);
    let p = model.probe().unwrap();
    assert_eq!(p.model, MODEL);
    assert_eq!(p.provider, model.id());
    assert!(p.usage_reported);
    assert_eq!((p.prompt_tokens, p.completion_tokens, p.attempts), (25, 1, 1));
    assert_eq!(p.text, "OK");
    let body = server.requests()[0].json();
    assert_eq!(body["max_tokens"], 1);
    assert!(body.get("system").is_none());
}
