//! A scripted OpenAI-compatible provider on loopback for demonstrating the cost ledger from the
//! command line (the transcript in docs/transcripts/costs.md). It answers, in order: one answer
//! with full usage (1,200 prompt tokens of which 200 cached, 50 out), one slow 300-word answer
//! (for Ctrl-C), then short answers with usage. Usage: demo_provider [PORT] (default 18080).

use cairn_e2e::provider_server::{ProviderServer, Reply, Usage};
use std::time::Duration;

fn main() {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(18080);
    let server = ProviderServer::start_on(port);
    server.push(Reply::openai(
        "The Heron division's quarterly revenue was 4.2 million dollars [1].",
        Some(Usage { input: 1200, output: 50, cached: 200 }),
    ));
    let long: String = (0..300).map(|i| format!(" word{i}")).collect();
    server.push(Reply::OpenAi {
        pieces: long.split_inclusive(' ').map(str::to_owned).collect(),
        usage: Some(Usage { input: 1, output: 1, cached: 0 }),
        gap: Duration::from_millis(40),
        cut_after: None,
    });
    println!("{}/v1", server.base_url);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
