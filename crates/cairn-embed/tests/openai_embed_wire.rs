//! `OpenAiEmbedder` against a real local HTTP/1.1 server speaking the OpenAI `/v1/embeddings`
//! wire format, with the failures real servers produce. Each test checks what the user would
//! see (vectors, error code and message) and the usage the cost ledger would record.
#![allow(clippy::unwrap_used)]

use cairn_core::ErrorCode;
use cairn_embed::{EmbedError, EmbedUsage, Embedder, OpenAiEmbedConfig, OpenAiEmbedder};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

enum Reply {
    Json { code: u16, headers: Vec<(&'static str, String)>, body: String },
    Hang(Duration),
}

fn ok(body: serde_json::Value) -> Reply {
    Reply::Json { code: 200, headers: vec![], body: body.to_string() }
}

fn status(code: u16, body: &str) -> Reply {
    Reply::Json { code, headers: vec![], body: body.into() }
}

#[derive(Clone, Debug)]
struct Recorded {
    head: String,
    body: serde_json::Value,
    at: Instant,
}

struct Server {
    url: String,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }
}

/// One scripted reply per connection, in order; then the listener closes.
fn serve(replies: Vec<Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    thread::spawn(move || {
        for reply in replies {
            let Ok((mut stream, _)) = listener.accept() else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            log2.lock().unwrap().push(Recorded { head, body, at: Instant::now() });
            match reply {
                Reply::Json { code, headers, body } => {
                    let mut out = format!(
                        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    out.push_str(&body);
                    let _ = stream.write_all(out.as_bytes());
                }
                Reply::Hang(d) => thread::sleep(d),
            }
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    Server { url: format!("http://127.0.0.1:{port}/v1"), log }
}

/// An answer exactly as OpenAI sends it, optionally listing the items in reverse.
fn embeddings(vectors: &[Vec<f32>], prompt_tokens: Option<u32>, reversed: bool) -> serde_json::Value {
    let mut data: Vec<_> =
        vectors.iter().enumerate().map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v})).collect();
    if reversed {
        data.reverse();
    }
    let mut body = json!({"object": "list", "data": data, "model": "text-embedding-3-small"});
    if let Some(n) = prompt_tokens {
        body["usage"] = json!({"prompt_tokens": n, "total_tokens": n});
    }
    body
}

fn config(url: &str) -> OpenAiEmbedConfig {
    let mut cfg = OpenAiEmbedConfig::new(url, "text-embedding-3-small");
    cfg.backoff_base = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(100);
    cfg.request_timeout = Duration::from_secs(5);
    cfg
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("passage number {i}")).collect()
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
}

#[test]
fn embeds_in_batches_normalises_and_reports_usage() {
    let server = serve(vec![
        ok(embeddings(&[vec![3.0, 4.0, 0.0], vec![0.0, 0.0, 2.0]], Some(10), false)),
        ok(embeddings(&[vec![1.0, 0.0, 0.0]], Some(5), true)),
    ]);
    let mut cfg = config(&server.url);
    cfg.api_key = Some("sk-embed".into());
    cfg.batch_size = 2;
    let e = OpenAiEmbedder::new(cfg);
    assert_eq!(e.id(), format!("openai:text-embedding-3-small@{}", server.url));
    assert_eq!(e.dimension(), 0, "not known before the first answer");
    let (vectors, usage) = e.embed_with_usage(&texts(3)).unwrap();
    assert_eq!(vectors.len(), 3);
    assert!(close(&vectors[0], &[0.6, 0.8, 0.0]), "{:?}", vectors[0]);
    assert!(close(&vectors[1], &[0.0, 0.0, 1.0]));
    assert!(close(&vectors[2], &[1.0, 0.0, 0.0]));
    assert_eq!(e.dimension(), 3);
    let expected = EmbedUsage { requests: 2, attempts: 2, texts: 3, prompt_tokens: 15, estimated_tokens: 0 };
    assert_eq!(usage, expected);
    assert_eq!(e.last_usage(), expected);
    assert_eq!(e.total_usage(), Some(expected));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].head.starts_with("POST /v1/embeddings HTTP/1.1\r\n"), "{}", reqs[0].head);
    assert!(reqs[0].head.to_ascii_lowercase().contains("authorization: bearer sk-embed\r\n"));
    assert_eq!(
        reqs[0].body,
        json!({"model": "text-embedding-3-small", "input": ["passage number 0", "passage number 1"]})
    );
    assert_eq!(reqs[1].body["input"], json!(["passage number 2"]));
}

#[test]
fn connect_learns_the_dimension_and_a_change_is_refused() {
    let server = serve(vec![
        ok(embeddings(&[vec![0.5; 4]], Some(2), false)),
        ok(embeddings(&[vec![0.5; 4], vec![0.5; 4]], Some(8), false)),
        ok(embeddings(&[vec![0.5; 8]], Some(4), false)),
    ]);
    let e = OpenAiEmbedder::connect(config(&server.url)).unwrap();
    assert_eq!(e.dimension(), 4);
    assert_eq!(server.requests()[0].body["input"], json!(["dimension probe"]));
    assert_eq!(e.embed(&texts(2)).unwrap().len(), 2);
    let err = e.embed_query("what changed?").unwrap_err();
    assert!(matches!(err, EmbedError::DimensionChanged { expected: 4, got: 8, .. }), "{err:?}");
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(err.to_string().contains("now returns 8-dimension vectors instead of 4"), "{err}");
    assert_eq!(e.dimension(), 4, "the known dimension stays");
    // The probe and the batch were billed; the refused answer is not in the totals.
    assert_eq!(e.total_usage().unwrap().prompt_tokens, 10);
}

#[test]
fn a_configured_dimension_is_checked_on_the_first_answer() {
    let server = serve(vec![ok(embeddings(&[vec![1.0; 768]], Some(3), false))]);
    let mut cfg = config(&server.url);
    cfg.dimension = Some(1536);
    let e = OpenAiEmbedder::connect(cfg).unwrap();
    assert_eq!(e.dimension(), 1536);
    assert!(server.requests().is_empty(), "no probe when the dimension is configured");
    let err = e.embed(&texts(1)).unwrap_err();
    assert!(matches!(err, EmbedError::DimensionChanged { expected: 1536, got: 768, .. }), "{err:?}");
}

#[test]
fn rate_limits_are_waited_out_and_retried() {
    let limited = Reply::Json {
        code: 429,
        headers: vec![("Retry-After", "1".into())],
        body: r#"{"error":{"message":"Rate limit reached for text-embedding-3-small","type":"requests","code":"rate_limit_exceeded"}}"#.into(),
    };
    let server = serve(vec![limited, ok(embeddings(&[vec![1.0, 0.0]], Some(4), false))]);
    let e = OpenAiEmbedder::new(config(&server.url));
    let (v, usage) = e.embed_with_usage(&texts(1)).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!((usage.requests, usage.attempts, usage.prompt_tokens), (1, 2, 4));
    let reqs = server.requests();
    assert!(reqs[1].at - reqs[0].at >= Duration::from_millis(950), "{:?}", reqs[1].at - reqs[0].at);
    assert_eq!(reqs[0].body, reqs[1].body);
}

#[test]
fn a_long_retry_after_is_returned_with_the_wait() {
    let limited = Reply::Json {
        code: 429,
        headers: vec![("Retry-After", "90".into())],
        body: r#"{"error":{"message":"Rate limit reached"}}"#.into(),
    };
    let server = serve(vec![limited]);
    let start = Instant::now();
    let err = OpenAiEmbedder::new(config(&server.url)).embed(&texts(1)).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(err.code(), ErrorCode::RateLimited);
    assert!(matches!(err, EmbedError::Remote { retry_after: Some(d), .. } if d == Duration::from_secs(90)));
    assert_eq!(
        err.to_string(),
        "the embedding provider is rate limiting requests (HTTP 429), retry in 90 s: Rate limit reached"
    );
}

#[test]
fn server_errors_are_retried_then_reported() {
    let fail = || status(502, r#"{"error":{"message":"Bad gateway"}}"#);
    let server = serve(vec![fail(), ok(embeddings(&[vec![1.0]], None, false))]);
    let e = OpenAiEmbedder::new(config(&server.url));
    let (_, usage) = e.embed_with_usage(&texts(1)).unwrap();
    assert_eq!(usage.attempts, 2);
    // No usage in the answer: estimated, and marked so.
    assert!(usage.prompt_tokens > 0);
    assert_eq!(usage.estimated_tokens, usage.prompt_tokens);

    let server = serve(vec![fail(), fail(), fail()]);
    let err = OpenAiEmbedder::new(config(&server.url)).embed(&texts(1)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ProviderUnavailable);
    assert_eq!(err.to_string(), "the embedding provider failed (HTTP 502): Bad gateway");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn a_bad_key_is_auth_failed_and_never_shown() {
    let key = "sk-proj-EMBED-SECRET-987654321";
    let body = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {key}.","type":"invalid_request_error","code":"invalid_api_key"}}}}"#
    );
    let server = serve(vec![status(401, &body)]);
    let mut cfg = config(&server.url);
    cfg.api_key = Some(key.into());
    let e = OpenAiEmbedder::new(cfg);
    let err = e.embed(&texts(1)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthFailed);
    assert_eq!(
        err.to_string(),
        "the embedding provider rejected the API key (HTTP 401): Incorrect API key provided: <redacted>."
    );
    assert!(!format!("{err:?}").contains(key));
    assert!(!format!("{e:?}").contains(key));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn an_unknown_model_is_model_missing() {
    let server = serve(vec![status(404, r#"{"error":"model \"nomic-embed\" not found, try pulling it first"}"#)]);
    let err = OpenAiEmbedder::new(config(&server.url)).embed(&texts(1)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ModelMissing);
    assert!(err.to_string().contains("not found, try pulling it first"), "{err}");
}

#[test]
fn an_over_long_passage_is_refused_before_sending() {
    let server = serve(vec![]);
    let mut cfg = config(&server.url);
    cfg.max_tokens = 20;
    let e = OpenAiEmbedder::new(cfg);
    assert_eq!(e.token_counter().max_tokens(), 20);
    let long = "word ".repeat(40);
    assert!(e.token_counter().count(&long) > 20);
    let err = e.embed(&[long]).unwrap_err();
    assert!(matches!(err, EmbedError::TooLong { max: 20, .. }), "{err:?}");
    assert!(server.requests().is_empty());
    assert_eq!(e.total_usage(), Some(EmbedUsage::default()));
}

#[test]
fn silence_is_a_timeout() {
    let server = serve(vec![Reply::Hang(Duration::from_secs(3))]);
    let mut cfg = config(&server.url);
    cfg.request_timeout = Duration::from_millis(500);
    let start = Instant::now();
    let err = OpenAiEmbedder::new(cfg).embed(&texts(1)).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    assert_eq!(err.code(), ErrorCode::Timeout);
    assert_eq!(err.to_string(), "the embedding provider did not answer within 500 ms");
}

#[test]
fn an_unreadable_answer_is_a_clear_error() {
    let server = serve(vec![ok(json!({"object": "list", "data": [{"index": 0, "embedding": "AAAAAA=="}]}))]);
    let err = OpenAiEmbedder::new(config(&server.url)).embed(&texts(1)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ProviderUnavailable);
    assert!(
        err.to_string()
            .starts_with("the embedding provider sent an unreadable answer: item 0 has no float `embedding`"),
        "{err}"
    );
    let server = serve(vec![ok(embeddings(&[vec![1.0]], Some(1), false))]);
    let err = OpenAiEmbedder::new(config(&server.url)).embed(&texts(2)).unwrap_err();
    assert!(err.to_string().contains("1 vectors for 2 passages"), "{err}");
}
