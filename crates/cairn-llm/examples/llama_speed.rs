//! Measures a GGUF chat model on this machine: load time, time to first token, generation speed.
//! Usage: `cargo run -p cairn-llm --example llama_speed -- <model.gguf> [max_tokens] [source_paragraphs] [threads]`
//! (`source_paragraphs` pads the question with RAG-like sources to measure prompt reading).
//! Not a benchmark suite; one greedy generation, printed to stdout (stderr should stay empty,
//! which doubles as a check that llama.cpp's logging is silenced).

use cairn_llm::{ChatMessage, ChatModel, ChatRequest, LlamaModelConfig, load_llama};
use std::ops::ControlFlow;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: llama_speed <model.gguf> [max_tokens]")?;
    let max_tokens: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(128);
    let paragraphs: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let threads: Option<i32> = args.next().map(|s| s.parse()).transpose()?;
    let sources: String = (1..=paragraphs)
        .map(|i| {
            format!(
                "[{i}] The lighthouse at Point Reyes was built in 1870 and guided ships through fog for \
                 over a century. Its first-order Fresnel lens, made in France, has 1,032 pieces of glass.\n"
            )
        })
        .collect();

    let t = Instant::now();
    let mut cfg = LlamaModelConfig::new(path);
    cfg.context = 8192;
    cfg.threads = threads;
    let model = load_llama(&cfg)?;
    println!(
        "loaded {} in {:.2}s (window {} tokens, {} threads)",
        model.id(),
        t.elapsed().as_secs_f64(),
        model.context_window(),
        model.threads()
    );

    let req = ChatRequest {
        messages: vec![
            ChatMessage::system("You are a helpful assistant."),
            ChatMessage::user(format!(
                "{sources}Write a detailed story about a lighthouse keeper who finds a message in a bottle."
            )),
        ],
        max_tokens,
        temperature: 0.0,
    };
    let start = Instant::now();
    let mut first = None;
    let c = model.generate(&req, &mut |_| {
        first.get_or_insert_with(|| start.elapsed());
        ControlFlow::Continue(())
    })?;
    let total = start.elapsed().as_secs_f64();
    let first = first.map_or(total, |d| d.as_secs_f64());
    let after_first = f64::from(c.completion_tokens.saturating_sub(1)) / (total - first).max(1e-9);
    println!(
        "prompt {} tokens, completion {} tokens ({:?}); first token after {:.3}s; {:.1} tokens/s after that; {:.2}s total",
        c.prompt_tokens, c.completion_tokens, c.finish, first, after_first, total
    );
    Ok(())
}
