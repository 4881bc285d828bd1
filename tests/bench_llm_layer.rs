//! Bench: what the LLM layer itself costs per question, apart from model time, and how fast a
//! cached answer comes back. Run with `scripts/bench_llm_layer.sh` (numbers go in
//! BENCHMARKS.md).
//!
//! A provider on loopback answers instantly, so nearly all of a call's time is Cairn's. In one
//! run, side by side:
//!   - reference: one raw HTTP request to that provider with reqwest (async), the stream read to the end;
//!   - `ChatModel::generate` through cairn-llm on the same request (the HTTP layer's overhead is
//!     the difference);
//!   - `Engine::search` for the question (retrieval: query embedding, vector + full-text, fusion);
//!   - `Engine::ask` end to end, cache off (retrieval, fitting, budget check, the call, ledger
//!     rows, citation check, conversation turn, cache write);
//!   - `Engine::ask` answered from the cache.
//! The layer's own overhead is ask − search − generate.

#![allow(clippy::unwrap_used)]

use cairn_e2e::provider_server::{ProviderServer, Reply, Usage};
use cairn_engine::{AskOptions, Engine, EngineConfig, ProviderKind, ProviderPrice, ProviderSettings};
use cairn_llm::{ChatMessage, ChatModel, ChatRequest, OpenAiChat, OpenAiConfig};
use std::time::{Duration, Instant};

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, v: Vec<Duration>) -> Duration {
    let p50 = percentile(v.clone(), 0.5);
    println!(
        "{name:<44} p50 {:>8.2} ms   p95 {:>8.2} ms   (n = {})",
        p50.as_secs_f64() * 1e3,
        percentile(v.clone(), 0.95).as_secs_f64() * 1e3,
        v.len()
    );
    p50
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("notes");
    std::fs::create_dir_all(&docs).unwrap();
    for i in 0..40 {
        std::fs::write(
            docs.join(format!("note-{i}.md")),
            format!(
                "# Note {i}\n\nThe ferry number {i} leaves the harbour at {} o'clock and costs {} euros.\n",
                6 + i % 12,
                3 + i
            ),
        )
        .unwrap();
    }
    let models = std::env::var_os("CAIRN_MODELS_DIR").expect("CAIRN_MODELS_DIR").into();
    let engine =
        Engine::open(EngineConfig { data_dir: tmp.path().join("data"), models_dir: models, embed_threads: Some(2) })
            .unwrap();
    engine.add_folder(&docs).unwrap();
    engine.index(&|_| {}).await.unwrap();
    let server = ProviderServer::start();
    let mut s = engine.settings().unwrap();
    s.providers.push(ProviderSettings {
        name: "loopback".into(),
        kind: ProviderKind::Openai,
        base_url: Some(format!("{}/v1", server.base_url)),
        model: "scripted-model".into(),
        context_window: Some(8192),
        price: Some(ProviderPrice { input: 2.5, cached_input: None, output: 10.0 }),
        ..Default::default()
    });
    s.chat.provider = "loopback".into();
    engine.save_settings(&s).unwrap();
    let answer = "The ferry leaves at seven [1] and costs five euros [2].";
    let reply = || Reply::openai(answer, Some(Usage { input: 900, output: 20, cached: 0 }));

    // A request like the ones ask sends (about 900 tokens of sources).
    let sources = "[1] note.md (line 3)\nThe ferry number 1 leaves the harbour at 7 o'clock.\n\n".repeat(30);
    let req = ChatRequest {
        messages: vec![
            ChatMessage::system("Answer from the sources."),
            ChatMessage::user(format!("{sources}\n\nQuestion: When?")),
        ],
        max_tokens: 384,
        temperature: 0.0,
    };
    let body = serde_json::json!({
        "model": "scripted-model", "stream": true, "max_tokens": 384, "temperature": 0.0,
        "messages": [{"role": "system", "content": "Answer from the sources."}, {"role": "user", "content": format!("{sources}\n\nQuestion: When?")}]
    });

    // Warm up every path once.
    server.push(reply());
    let _ =
        engine.ask("When does ferry 3 leave?", &AskOptions { use_cache: false, ..Default::default() }, &|_| {}).await;

    let mut raw = Vec::new();
    let client = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", server.base_url);
    for _ in 0..n {
        server.push(reply());
        let t = Instant::now();
        let text = client.post(&url).json(&body).send().await.unwrap().text().await.unwrap();
        raw.push(t.elapsed());
        assert!(text.contains("[DONE]"));
    }
    let chat = OpenAiChat::new(OpenAiConfig::new(format!("{}/v1", server.base_url), "scripted-model"));
    let mut generate = Vec::new();
    for _ in 0..n {
        server.push(reply());
        let t = Instant::now();
        let c =
            tokio::task::block_in_place(|| chat.generate(&req, &mut |_| std::ops::ControlFlow::Continue(())).unwrap());
        generate.push(t.elapsed());
        assert_eq!(c.text, answer);
    }
    let mut search = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        engine.search(&format!("When does ferry number {i} leave the harbour?"), 6).await.unwrap();
        search.push(t.elapsed());
    }
    let mut ask = Vec::new();
    for i in 0..n {
        server.push(reply());
        let q = format!("How much does ferry number {i} cost?");
        let t = Instant::now();
        let a = engine.ask(&q, &AskOptions::default(), &|_| {}).await.unwrap();
        ask.push(t.elapsed());
        assert!(!a.cache_hit && a.cost.is_some());
    }
    let mut hit = Vec::new();
    for i in 0..n {
        let q = format!("How much does ferry number {i} cost?");
        let t = Instant::now();
        let a = engine.ask(&q, &AskOptions::default(), &|_| {}).await.unwrap();
        hit.push(t.elapsed());
        assert!(a.cache_hit);
    }

    println!("LLM layer bench, {n} calls each, provider on loopback answering at once");
    let r = report("reference: raw reqwest request + stream", raw);
    let g = report("cairn-llm generate (same request)", generate);
    let s = report("engine search (retrieval only)", search);
    let a = report("engine ask, cache off (end to end)", ask);
    let h = report("engine ask, answered from the cache", hit);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("cairn-llm HTTP overhead over raw reqwest:      {:>8.2} ms (p50 difference)", ms(g) - ms(r));
    println!("layer overhead per question (ask − search − generate): {:>8.2} ms", ms(a) - ms(s) - ms(g));
    println!("cache hit vs a full ask:                       {:>8.1}x faster", ms(a) / ms(h));
}
