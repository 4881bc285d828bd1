//! A scripted OpenAI-compatible provider on loopback that writes down every request it gets,
//! for the governance and keys transcripts (docs/transcripts/governance.md, keys.md): the
//! transcripts then show exactly which passages reached the "remote" provider, and what
//! credentials it was sent. Every answer is "The sources say so [1]." with usage.
//!
//! Usage: demo_gateway PORT LOGFILE [--key-from-stdin]
//!
//! The log gets, for each request, its path, its `authorization` header masked (scheme, the
//! token's first 3 characters and its length: `Bearer sk-…(len 40)`, never the token) and its
//! messages. With `--key-from-stdin` the gateway reads the key it expects from the first line
//! of standard input (so it is in no argument or environment variable), refuses a request
//! without that key with HTTP 401 as a real gateway would, and logs whether the key sent
//! matched.

use cairn_e2e::provider_server::{ProviderServer, Reply, Usage};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

fn main() {
    let mut args = std::env::args().skip(1);
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(18081);
    let log = args.next().unwrap_or_else(|| "gateway.log".into());
    let expected = if args.next().as_deref() == Some("--key-from-stdin") {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).expect("the expected key on standard input");
        let key = line.trim().to_owned();
        assert!(!key.is_empty(), "--key-from-stdin: standard input held no key");
        Some(key)
    } else {
        None
    };
    // The scripted answers come from a ProviderServer on another loopback port; this process
    // sits in front of it, writes each request down and checks its key before passing it on.
    let inner = ProviderServer::start();
    for _ in 0..50 {
        inner.push(Reply::openai("The sources say so [1].", Some(Usage { input: 400, output: 8, cached: 0 })));
    }
    let inner_addr = inner.base_url.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind loopback");
    println!("http://127.0.0.1:{}/v1", listener.local_addr().expect("local addr").port());
    let _ = std::io::stdout().flush();
    let state = Arc::new(Gateway { log, expected, inner_addr, count: Mutex::new(0) });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let state = state.clone();
        std::thread::spawn(move || state.serve(stream));
    }
}

struct Gateway {
    log: String,
    expected: Option<String>,
    inner_addr: String,
    /// Requests written down so far (also serialises writes to the log).
    count: Mutex<usize>,
}

impl Gateway {
    fn serve(&self, mut client: TcpStream) {
        let Ok(read_half) = client.try_clone() else { return };
        let mut reader = BufReader::new(read_half);
        let mut raw = Vec::new();
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        raw.extend_from_slice(line.as_bytes());
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut authorization = None;
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                break;
            }
            raw.extend_from_slice(h.as_bytes());
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.trim_end().split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "authorization" => authorization = Some(v.trim().to_owned()),
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        raw.extend_from_slice(&body);

        let token = authorization.as_deref().and_then(|a| a.strip_prefix("Bearer "));
        let accepted = match &self.expected {
            None => true,
            Some(key) => token == Some(key.as_str()),
        };
        self.write_down(&path, authorization.as_deref(), accepted, &body);

        if !accepted {
            let message = if authorization.is_none() { "missing bearer token" } else { "invalid API key" };
            let reply = format!(r#"{{"error":{{"message":"{message}","type":"invalid_request_error"}}}}"#);
            let _ = client.write_all(
                format!(
                    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                )
                .as_bytes(),
            );
            return;
        }
        // Passed on as received; the answer streams back until the scripted server closes.
        let Ok(mut upstream) = TcpStream::connect(&self.inner_addr) else { return };
        if upstream.write_all(&raw).is_err() {
            return;
        }
        let _ = std::io::copy(&mut upstream, &mut client);
        let _ = client.flush();
    }

    fn write_down(&self, path: &str, authorization: Option<&str>, accepted: bool, body: &[u8]) {
        let mut count = self.count.lock().expect("count");
        *count += 1;
        let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&self.log) else { return };
        let _ = writeln!(f, "=== request {} {}", *count, path);
        let verdict = match &self.expected {
            None => String::new(),
            Some(_) if accepted => " — matches the expected key".to_owned(),
            Some(_) => " — refused (401)".to_owned(),
        };
        let _ = writeln!(f, "authorization: {}{verdict}", authorization.map_or("(none)".to_owned(), mask));
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
        for m in json["messages"].as_array().cloned().unwrap_or_default() {
            let _ = writeln!(f, "--- {}\n{}", m["role"].as_str().unwrap_or("?"), m["content"].as_str().unwrap_or(""));
        }
    }
}

/// `Bearer sk-cairn-…` as `Bearer sk-…(len 40)`: the scheme, the token's first 3 characters
/// (a vendor prefix, nothing secret; none for a token under 16 characters) and its length in
/// characters.
fn mask(header: &str) -> String {
    let (scheme, token) = header.split_once(' ').unwrap_or(("", header));
    let len = token.chars().count();
    // A short token would be given away by its first characters: then only its length.
    let head: String = if len >= 16 { token.chars().take(3).collect() } else { String::new() };
    let shown = if scheme.is_empty() { String::new() } else { format!("{scheme} ") };
    format!("{shown}{head}…(len {len})")
}
