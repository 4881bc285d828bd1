//! A model provider on loopback for end-to-end tests: a real HTTP/1.1 server that speaks the
//! OpenAI chat-completions and Anthropic Messages streaming wire formats, scripted per
//! request, including the failures real providers produce (429 with Retry-After, 5xx, cut
//! streams, missing usage, slow tokens). It records every request it receives, so tests can
//! assert exactly what was sent. Not a mock of Cairn's own traits: Cairn's HTTP clients talk
//! to it over TCP as they would to the real services.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Token counts a scripted reply reports (or none, like servers that omit usage).
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub input: u32,
    pub output: u32,
    pub cached: u32,
}

/// One scripted reply.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A streamed OpenAI answer made of `pieces`; `usage` is sent in a final chunk when given.
    /// `cut_after` closes the connection after that many pieces, with no finish or `[DONE]`.
    OpenAi { pieces: Vec<String>, usage: Option<Usage>, gap: Duration, cut_after: Option<usize> },
    /// A streamed Anthropic Messages answer; usage is always sent, as Anthropic does.
    Anthropic { pieces: Vec<String>, usage: Usage, gap: Duration, cut_after: Option<usize> },
    /// A plain HTTP answer (errors).
    Status { code: u16, headers: Vec<(String, String)>, body: String },
}

impl Reply {
    pub fn openai(text: &str, usage: Option<Usage>) -> Reply {
        Reply::OpenAi { pieces: split(text), usage, gap: Duration::ZERO, cut_after: None }
    }
    pub fn anthropic(text: &str, usage: Usage) -> Reply {
        Reply::Anthropic { pieces: split(text), usage, gap: Duration::ZERO, cut_after: None }
    }
    pub fn status(code: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        Reply::Status {
            code,
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            body: body.to_owned(),
        }
    }
}

/// Splits text into word-sized stream pieces (each keeps its leading space).
fn split(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c == ' ' && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub struct ProviderServer {
    pub base_url: String,
    replies: Arc<Mutex<VecDeque<Reply>>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl ProviderServer {
    /// Starts serving on a free loopback port. With no scripted reply left, it answers
    /// `Reply::openai("OK [1]", ...)`.
    pub fn start() -> ProviderServer {
        Self::start_on(0)
    }

    /// Like `start`, on a given port (0: any free one).
    pub fn start_on(port: u16) -> ProviderServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let replies: Arc<Mutex<VecDeque<Reply>>> = Arc::default();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let (r, q) = (replies.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (r, q) = (r.clone(), q.clone());
                std::thread::spawn(move || serve(stream, &r, &q));
            }
        });
        ProviderServer { base_url: format!("http://127.0.0.1:{port}"), replies, requests }
    }

    /// Queues replies for the next requests, in order.
    pub fn push(&self, reply: Reply) {
        self.replies.lock().expect("replies").push_back(reply);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("requests").clone()
    }
}

fn serve(stream: TcpStream, replies: &Mutex<VecDeque<Reply>>, requests: &Mutex<Vec<Request>>) {
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    requests.lock().expect("requests").push(Request {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let reply = replies
        .lock()
        .expect("replies")
        .pop_front()
        .unwrap_or_else(|| Reply::openai("OK [1]", Some(Usage { input: 10, output: 2, cached: 0 })));
    let mut out = stream;
    let _ = respond(&mut out, reply);
}

fn respond(out: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Status { code, headers, body } => {
            let mut head = format!(
                "HTTP/1.1 {code} Scripted\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            out.write_all(format!("{head}\r\n{body}").as_bytes())?;
        }
        Reply::OpenAi { pieces, usage, gap, cut_after } => {
            sse_head(out)?;
            let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
                serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "scripted-model",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            };
            event(out, None, &chunk(serde_json::json!({"role": "assistant", "content": ""}), serde_json::Value::Null))?;
            for (i, p) in pieces.iter().enumerate() {
                if cut_after == Some(i) {
                    return out.flush();
                }
                std::thread::sleep(gap);
                event(out, None, &chunk(serde_json::json!({"content": p}), serde_json::Value::Null))?;
            }
            event(out, None, &chunk(serde_json::json!({}), serde_json::json!("stop")))?;
            if let Some(u) = usage {
                event(
                    out,
                    None,
                    &serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                    "model": "scripted-model", "choices": [],
                    "usage": {"prompt_tokens": u.input, "completion_tokens": u.output, "total_tokens": u.input + u.output,
                              "prompt_tokens_details": {"cached_tokens": u.cached}}}),
                )?;
            }
            out.write_all(b"data: [DONE]\n\n")?;
        }
        Reply::Anthropic { pieces, usage, gap, cut_after } => {
            sse_head(out)?;
            event(
                out,
                Some("message_start"),
                &serde_json::json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                "role": "assistant", "model": "scripted-claude", "content": [], "stop_reason": null,
                "usage": {"input_tokens": usage.input, "cache_read_input_tokens": usage.cached, "cache_creation_input_tokens": 0, "output_tokens": 1}}}),
            )?;
            event(
                out,
                Some("content_block_start"),
                &serde_json::json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            )?;
            for (i, p) in pieces.iter().enumerate() {
                if cut_after == Some(i) {
                    return out.flush();
                }
                std::thread::sleep(gap);
                event(
                    out,
                    Some("content_block_delta"),
                    &serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
                )?;
            }
            event(out, Some("content_block_stop"), &serde_json::json!({"type": "content_block_stop", "index": 0}))?;
            event(
                out,
                Some("message_delta"),
                &serde_json::json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": usage.output}}),
            )?;
            event(out, Some("message_stop"), &serde_json::json!({"type": "message_stop"}))?;
        }
    }
    out.flush()
}

fn sse_head(out: &mut TcpStream) -> std::io::Result<()> {
    // Close-delimited body: the stream ends when the connection does, so closing early is a cut.
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
    )
}

fn event(out: &mut TcpStream, name: Option<&str>, data: &serde_json::Value) -> std::io::Result<()> {
    let mut s = String::new();
    if let Some(n) = name {
        s.push_str(&format!("event: {n}\n"));
    }
    s.push_str(&format!("data: {data}\n\n"));
    out.write_all(s.as_bytes())?;
    out.flush()
}
