//! `OpenAiChat` against a real local HTTP/1.1 server speaking the OpenAI streaming wire format
//! (chunked server-sent events), including the failures real servers produce: rate limits,
//! 5xx, bad keys, cut streams and silence. Not a test of any real provider.
#![allow(clippy::unwrap_used)]

use cairn_core::ErrorCode;
use cairn_llm::{ChatMessage, ChatModel, ChatRequest, Finish, LlmError, OpenAiChat, OpenAiConfig};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// One scripted answer; the server serves one per connection, in order.
enum Reply {
    /// `200` streamed with chunked encoding: each event is sent as `data: <event>\n\n`.
    /// `done` appends `data: [DONE]`; `cut` drops the connection without ending the body.
    Sse { events: Vec<String>, done: bool, cut: bool },
    /// `200` SSE without chunked encoding, body ends when the server closes the socket.
    SseCloseDelimited { events: Vec<String> },
    /// Any status with extra headers and a body.
    Status { code: u16, reason: &'static str, headers: Vec<(&'static str, String)>, body: String },
    /// Read the request, then say nothing for this long.
    Hang(Duration),
    /// Start a chunked SSE stream with these events, then go silent for this long.
    SseThenHang { events: Vec<String>, hang: Duration },
}

struct Recorded {
    head: String,
    body: String,
}

/// Start the server; returns its base URL (`http://127.0.0.1:port/v1`) and the requests it got.
fn serve(replies: Vec<Reply>) -> (String, mpsc::Receiver<Recorded>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for reply in replies {
            let Ok((mut stream, _)) = listener.accept() else { return };
            let recorded = read_request(&mut stream);
            let _ = tx.send(recorded);
            respond(&mut stream, reply);
        }
    });
    (format!("http://127.0.0.1:{port}/v1"), rx)
}

fn read_request(stream: &mut TcpStream) -> Recorded {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    Recorded { head, body: String::from_utf8(body).unwrap() }
}

/// Write the scripted reply. Write errors end the reply quietly: a client that cancels or times
/// out closes its end, and that is what those tests are about.
fn respond(stream: &mut TcpStream, reply: Reply) {
    let _ = write_reply(stream, reply);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn write_reply(stream: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Sse { events, done, cut } => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
                        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            stream.write_all(head.as_bytes())?;
            let mut payloads: Vec<String> = events.iter().map(|e| format!("data: {e}\n\n")).collect();
            if done {
                payloads.push("data: [DONE]\n\n".into());
            }
            for p in payloads {
                stream.write_all(format!("{:x}\r\n{p}\r\n", p.len()).as_bytes())?;
                stream.flush()?;
                thread::sleep(Duration::from_millis(5));
            }
            if !cut {
                stream.write_all(b"0\r\n\r\n")?;
            }
        }
        Reply::SseCloseDelimited { events } => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
            stream.write_all(head.as_bytes())?;
            for e in events {
                stream.write_all(format!("data: {e}\n\n").as_bytes())?;
            }
        }
        Reply::Status { code, reason, headers, body } => {
            let mut out = format!(
                "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&body);
            stream.write_all(out.as_bytes())?;
        }
        Reply::Hang(d) => thread::sleep(d),
        Reply::SseThenHang { events, hang } => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
            stream.write_all(head.as_bytes())?;
            for e in events {
                let p = format!("data: {e}\n\n");
                stream.write_all(format!("{:x}\r\n{p}\r\n", p.len()).as_bytes())?;
            }
            stream.flush()?;
            thread::sleep(hang);
        }
    }
    Ok(())
}

/// A content delta exactly as OpenAI sends it.
fn delta(content: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "delta": {"content": content}, "logprobs": null, "finish_reason": null}],
        "usage": null
    })
    .to_string()
}

fn role_chunk() -> String {
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#.into()
}

fn finish_chunk(reason: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"{reason}"}}],"usage":null}}"#
    )
}

fn usage_chunk(prompt: u32, completion: u32) -> String {
    format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{}}}}}"#,
        prompt + completion
    )
}

fn hello_events(with_usage: bool) -> Vec<String> {
    let mut e = vec![role_chunk(), delta("Hello"), delta(", "), delta("world"), delta("!"), finish_chunk("stop")];
    if with_usage {
        e.push(usage_chunk(21, 4));
    }
    e
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::system("Answer from the sources."), ChatMessage::user("Say hello.")],
        max_tokens: 64,
        temperature: 0.0,
    }
}

fn chat(base_url: &str, key: Option<&str>, timeout: Duration) -> OpenAiChat {
    let mut cfg = OpenAiConfig::new(base_url, "gpt-4o-mini");
    cfg.api_key = key.map(str::to_owned);
    cfg.timeout = timeout;
    OpenAiChat::new(cfg)
}

fn collect(model: &OpenAiChat) -> (Result<cairn_llm::Completion, LlmError>, Vec<String>) {
    let mut pieces = Vec::new();
    let r = model.generate(&request(), &mut |t| {
        pieces.push(t.to_owned());
        ControlFlow::Continue(())
    });
    (r, pieces)
}

#[test]
fn streams_text_and_reports_usage() {
    let (url, requests) = serve(vec![Reply::Sse { events: hello_events(true), done: true, cut: false }]);
    let model = chat(&url, Some("sk-test"), Duration::from_secs(5));
    let (r, pieces) = collect(&model);
    let c = r.unwrap();
    assert_eq!(pieces, ["Hello", ", ", "world", "!"]);
    assert_eq!(c.text, "Hello, world!");
    assert_eq!((c.prompt_tokens, c.completion_tokens, c.usage_reported), (21, 4, true));
    assert_eq!(c.finish, Finish::Stop);
    assert_eq!(c.model, "gpt-4o-mini-2024-07-18");

    let req = requests.recv_timeout(Duration::from_secs(1)).unwrap();
    assert!(req.head.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"), "{}", req.head);
    assert!(req.head.to_ascii_lowercase().contains("authorization: bearer sk-test\r\n"), "{}", req.head);
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["content"], "Say hello.");
}

#[test]
fn counts_tokens_itself_when_usage_is_missing() {
    let (url, requests) = serve(vec![Reply::Sse { events: hello_events(false), done: true, cut: false }]);
    let model = chat(&url, None, Duration::from_secs(5));
    let c = collect(&model).0.unwrap();
    assert_eq!(c.text, "Hello, world!");
    assert!(!c.usage_reported);
    assert_eq!(c.completion_tokens as usize, model.count_tokens("Hello, world!"));
    // Two messages' content plus per-message overhead: never less than the content alone.
    let content = model.count_tokens("Answer from the sources.") + model.count_tokens("Say hello.");
    assert!(c.prompt_tokens as usize > content, "{} vs {content}", c.prompt_tokens);
    let req = requests.recv_timeout(Duration::from_secs(1)).unwrap();
    assert!(!req.head.to_ascii_lowercase().contains("authorization:"), "no key, no header");
}

#[test]
fn retries_429_honouring_retry_after() {
    let limited = Reply::Status {
        code: 429,
        reason: "Too Many Requests",
        headers: vec![("Retry-After", "1".into())],
        body: r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#.into(),
    };
    let (url, requests) = serve(vec![limited, Reply::Sse { events: hello_events(true), done: true, cut: false }]);
    let model = chat(&url, None, Duration::from_secs(5));
    let start = Instant::now();
    let c = collect(&model).0.unwrap();
    assert_eq!(c.text, "Hello, world!");
    assert!(start.elapsed() >= Duration::from_millis(950), "waited {:?}", start.elapsed());
    assert_eq!(requests.try_iter().count(), 2);
}

#[test]
fn retries_5xx_before_streaming() {
    let err = || Reply::Status {
        code: 500,
        reason: "Internal Server Error",
        headers: vec![],
        body: r#"{"error":{"message":"The server had an error"}}"#.into(),
    };
    let (url, requests) = serve(vec![err(), err(), Reply::Sse { events: hello_events(true), done: true, cut: false }]);
    let c = collect(&chat(&url, None, Duration::from_secs(5))).0.unwrap();
    assert_eq!(c.text, "Hello, world!");
    assert_eq!(requests.try_iter().count(), 3);
}

#[test]
fn gives_up_after_three_attempts() {
    let err = || Reply::Status { code: 503, reason: "Service Unavailable", headers: vec![], body: "overloaded".into() };
    let (url, requests) = serve(vec![err(), err(), err(), err()]);
    let e = collect(&chat(&url, None, Duration::from_secs(5))).0.unwrap_err();
    assert!(matches!(&e, LlmError::Provider { status: Some(503), message } if message == "overloaded"), "{e:?}");
    assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(requests.try_iter().count(), 3);
}

#[test]
fn cut_stream_keeps_the_partial_answer() {
    let events = vec![role_chunk(), delta("The answer "), delta("is 4")];
    let (url, _r) = serve(vec![Reply::Sse { events, done: false, cut: true }]);
    let (r, pieces) = collect(&chat(&url, None, Duration::from_secs(5)));
    match r {
        Err(LlmError::StreamCut { partial }) => assert_eq!(partial, "The answer is 4"),
        other => panic!("expected StreamCut, got {other:?}"),
    }
    assert_eq!(pieces.concat(), "The answer is 4");
}

#[test]
fn close_without_done_or_finish_is_a_cut() {
    let (url, _r) = serve(vec![Reply::SseCloseDelimited { events: vec![delta("Half an ")] }]);
    let e = collect(&chat(&url, None, Duration::from_secs(5))).0.unwrap_err();
    assert_eq!(e.partial_text(), Some("Half an "));
}

#[test]
fn bad_key_is_a_provider_error_with_the_message() {
    let body = r#"{"error":{"message":"Incorrect API key provided: sk-bad. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    let unauthorized = Reply::Status { code: 401, reason: "Unauthorized", headers: vec![], body: body.into() };
    let (url, requests) = serve(vec![unauthorized]);
    let e = collect(&chat(&url, Some("sk-bad"), Duration::from_secs(5))).0.unwrap_err();
    match &e {
        LlmError::Provider { status: Some(401), message } => {
            assert!(message.starts_with("Incorrect API key provided"), "{message}")
        }
        other => panic!("expected Provider 401, got {other:?}"),
    }
    assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
    assert_eq!(requests.try_iter().count(), 1, "401 is not retried");
}

#[test]
fn unknown_model_maps_to_model_missing() {
    // What Ollama's OpenAI-compatible endpoint answers for a model it has not pulled.
    let body = r#"{"error":{"message":"model \"llama9\" not found, try pulling it first","type":"api_error","param":null,"code":null}}"#;
    let (url, _r) = serve(vec![Reply::Status { code: 404, reason: "Not Found", headers: vec![], body: body.into() }]);
    let e = collect(&chat(&url, None, Duration::from_secs(5))).0.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ModelMissing);
    assert!(e.to_string().contains("not found, try pulling it first"), "{e}");
}

#[test]
fn silence_is_a_timeout() {
    let (url, _r) = serve(vec![Reply::Hang(Duration::from_secs(4))]);
    let start = Instant::now();
    let e = collect(&chat(&url, None, Duration::from_secs(1))).0.unwrap_err();
    assert!(matches!(e, LlmError::Timeout), "{e:?}");
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
}

#[test]
fn silence_after_the_headers_is_a_timeout() {
    let (url, _r) = serve(vec![Reply::SseThenHang { events: vec![role_chunk()], hang: Duration::from_secs(4) }]);
    let start = Instant::now();
    let e = collect(&chat(&url, None, Duration::from_secs(1))).0.unwrap_err();
    assert!(matches!(e, LlmError::Timeout), "{e:?}");
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
}

#[test]
fn silence_mid_answer_is_a_cut_with_the_partial_text() {
    let events = vec![role_chunk(), delta("Paris is "), delta("the capital")];
    let (url, _r) = serve(vec![Reply::SseThenHang { events, hang: Duration::from_secs(4) }]);
    let e = collect(&chat(&url, None, Duration::from_secs(1))).0.unwrap_err();
    assert!(matches!(&e, LlmError::StreamCut { partial } if partial == "Paris is the capital"), "{e:?}");
}

#[test]
fn cancelling_stops_the_stream() {
    let (url, _r) = serve(vec![Reply::Sse { events: hello_events(true), done: true, cut: false }]);
    let model = chat(&url, None, Duration::from_secs(5));
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
}

#[test]
fn length_finish_is_reported() {
    let events = vec![role_chunk(), delta("Long"), finish_chunk("length"), usage_chunk(10, 1)];
    let (url, _r) = serve(vec![Reply::Sse { events, done: true, cut: false }]);
    let c = collect(&chat(&url, None, Duration::from_secs(5))).0.unwrap();
    assert_eq!(c.finish, Finish::Length);
}

#[test]
fn refused_connection_is_a_provider_error_without_status() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = collect(&chat(&format!("http://127.0.0.1:{port}/v1"), None, Duration::from_secs(2))).0.unwrap_err();
    assert!(matches!(e, LlmError::Provider { status: None, .. }), "{e:?}");
    assert_eq!(e.code(), ErrorCode::ProviderUnavailable);
}

#[test]
fn oversized_request_is_refused_before_sending() {
    let (url, requests) = serve(vec![]);
    let mut cfg = OpenAiConfig::new(url, "m");
    cfg.context_window = 50;
    let model = OpenAiChat::new(cfg);
    let mut req = request();
    req.max_tokens = 40;
    let e = model.generate(&req, &mut |_| ControlFlow::Continue(())).unwrap_err();
    assert!(matches!(e, LlmError::ContextOverflow { window: 50, .. }), "{e:?}");
    assert_eq!(requests.try_iter().count(), 0);
}
