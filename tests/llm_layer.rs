//! The LLM layer end to end (issue 4; FAILURE-CLASSES 23–26): the real engine, embedder, store
//! and SQLite ledger, with providers on loopback that speak the real OpenAI and Anthropic wire
//! formats. Each test asks questions as a user would and checks what they see (the answer, its
//! sources and cost, the error) and what the ledger holds, dollar for dollar.

#![allow(clippy::unwrap_used)]

use cairn_e2e::provider_server::{ProviderServer, Reply, Usage};
use cairn_engine::{
    AnswerMode, AskOptions, CallKind, CostQuery, Engine, EngineConfig, EngineError, GroupBy, IndexEvent, LlmChoice,
    Money, Outcome, ProviderKind, ProviderPrice, ProviderSettings, Settings,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

fn models_dir() -> PathBuf {
    std::env::var_os("CAIRN_MODELS_DIR")
        .map(PathBuf::from)
        .expect("CAIRN_MODELS_DIR is not set: run the tests through scripts/test.sh, which fetches the models")
}

fn quiet(_: IndexEvent) {}

/// An engine over a small indexed folder of notes.
async fn engine_with_notes(tmp: &Path) -> Engine {
    let docs = tmp.join("notes");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("heron.md"),
        "# Heron division\n\nThe Heron division's quarterly revenue was 4.2 million dollars, up 8 percent.\n",
    )
    .unwrap();
    std::fs::write(docs.join("ferry.md"), "# Ferry\n\nThe ferry to the island leaves at seven every morning.\n")
        .unwrap();
    std::fs::write(docs.join("tides.md"), "# Tides\n\nSpring tides at the estuary reach four metres.\n").unwrap();
    let e = Engine::open(EngineConfig { data_dir: tmp.join("data"), models_dir: models_dir(), embed_threads: Some(2) })
        .unwrap();
    e.add_folder(&docs).unwrap();
    e.index(&quiet).await.unwrap();
    e
}

fn provider(name: &str, kind: ProviderKind, base_url: String, price: Option<(f64, f64, f64)>) -> ProviderSettings {
    ProviderSettings {
        name: name.into(),
        kind,
        base_url: Some(base_url),
        model: "scripted-model".into(),
        context_window: Some(8192),
        timeout_secs: Some(5),
        price: price.map(|(input, cached, output)| ProviderPrice { input, cached_input: Some(cached), output }),
        ..Default::default()
    }
}

fn configure(e: &Engine, f: impl FnOnce(&mut Settings)) {
    let mut s = e.settings().unwrap();
    f(&mut s);
    e.save_settings(&s).unwrap();
}

fn ask_with(llm: LlmChoice) -> AskOptions {
    AskOptions { llm, ..AskOptions::default() }
}

/// The chat call of a question (there is one per answered question; query embeddings aside).
fn chat_calls(e: &Engine, question_id: i64) -> Vec<cairn_engine::CallRecord> {
    e.calls_for_question(question_id)
        .unwrap()
        .into_iter()
        .map(|r| r.call)
        .filter(|c| c.kind == CallKind::Chat)
        .collect()
}

const HERON: &str = "What was the Heron division's quarterly revenue?";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_of_local_remote_cached_cancelled_and_refused_calls_is_ledgered_to_the_nanodollar() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine_with_notes(tmp.path()).await;
    let server = ProviderServer::start();
    // $2.50 per million input tokens, $1.25 cached, $10 output.
    configure(&e, |s| {
        s.providers.push(provider(
            "remote",
            ProviderKind::Openai,
            format!("{}/v1", server.base_url),
            Some((2.5, 1.25, 10.0)),
        ));
        s.chat.provider = "remote".into();
    });

    // 1. The local model: free, exact token counts.
    let local = e.ask(HERON, &ask_with(LlmChoice::Provider("local".into())), &|_| {}).await.unwrap();
    assert!(matches!(&local.mode, AnswerMode::Generated { provider, .. } if provider == "local"));
    let row = &chat_calls(&e, local.question_id.unwrap())[0];
    assert_eq!((row.cost_nanos, row.estimated, row.outcome), (Some(0), false, Outcome::Ok));
    assert!(row.input_tokens > 0 && row.output_tokens > 0);

    // 2. The remote provider with usage: 1,200 prompt tokens (200 cached), 50 out.
    //    1,000 × $2.50/M + 200 × $1.25/M + 50 × $10/M = $0.0025 + $0.00025 + $0.0005 = $0.00325.
    server.push(Reply::openai(
        "Revenue was 4.2 million dollars [1].",
        Some(Usage { input: 1200, output: 50, cached: 200 }),
    ));
    let streamed = std::sync::Mutex::new(String::new());
    let paid = e.ask(HERON, &AskOptions::default(), &|t| streamed.lock().unwrap().push_str(t)).await.unwrap();
    assert_eq!(*streamed.lock().unwrap(), "Revenue was 4.2 million dollars [1].");
    assert_eq!(paid.cost, Some(Money(3_250_000)));
    assert_eq!((paid.prompt_tokens, paid.completion_tokens, paid.cached_tokens), (1200, 50, 200));
    assert_eq!(paid.sources.len(), 1, "exactly the cited source is listed");
    assert!(paid.sources[0].path.ends_with("heron.md"));
    let row = &chat_calls(&e, paid.question_id.unwrap())[0];
    assert_eq!((row.provider.as_str(), row.cost_nanos, row.estimated), ("remote", Some(3_250_000), false));
    assert_eq!(row.prompt.as_deref(), Some("answer.v2"));
    assert_eq!(row.prompt_hash.as_deref(), Some(paid.prompt_hash.as_str()));
    let requests = server.requests().len();

    // 3. The same question: answered from the cache, nothing sent, the saving recorded.
    let cached =
        e.ask("what was the heron division's quarterly revenue", &AskOptions::default(), &|_| {}).await.unwrap();
    assert!(cached.cache_hit);
    assert_eq!((cached.cost, cached.saved), (Some(Money::ZERO), Some(Money(3_250_000))));
    assert_eq!(cached.text, paid.text);
    assert_eq!(server.requests().len(), requests, "a cache hit must not call the provider");
    let row = &chat_calls(&e, cached.question_id.unwrap())[0];
    assert_eq!((row.cache_hit, row.cost_nanos, row.saved_nanos), (true, Some(0), 3_250_000));

    // 4. A cancelled stream: the user stops after five pieces; what was generated is billed,
    //    counted by Cairn because the provider never got to send usage.
    let long: String = (0..200).map(|i| format!(" word{i}")).collect();
    server.push(Reply::OpenAi {
        pieces: long.split_inclusive(' ').map(str::to_owned).collect(),
        usage: Some(Usage { input: 1, output: 1, cached: 0 }),
        gap: Duration::from_millis(20),
        cut_after: None,
    });
    let cancel = Arc::new(AtomicBool::new(false));
    let seen = AtomicUsize::new(0);
    let opts = AskOptions { cancel: Some(cancel.clone()), use_cache: false, ..AskOptions::default() };
    let stopped = e
        .ask("When does the ferry leave?", &opts, &|_| {
            if seen.fetch_add(1, Ordering::SeqCst) == 4 {
                cancel.store(true, Ordering::SeqCst);
            }
        })
        .await
        .unwrap();
    assert!(stopped.cancelled);
    assert!(stopped.text.split_whitespace().count() <= 6, "{}", stopped.text);
    let row = &chat_calls(&e, stopped.question_id.unwrap())[0];
    assert_eq!((row.outcome, row.estimated), (Outcome::Cancelled, true));
    let expected =
        Money::from_dollars(2.5).per_tokens(row.input_tokens) + Money::from_dollars(10.0).per_tokens(row.output_tokens);
    assert_eq!(row.cost_nanos, Some(expected.nanos()));
    assert!(row.output_tokens >= 1 && expected > Money::ZERO);
    assert_eq!(stopped.cost, Some(expected));

    // 5. A hard daily cap just above today's spending: the next call is refused before anything
    //    is sent, and the refusal is in the ledger with what it would have cost.
    let spent = e.budget_status().unwrap().spent_today;
    assert_eq!(spent, Money(3_250_000) + expected);
    configure(&e, |s| s.budget.daily_usd = Some(spent.dollars() + 0.0001));
    let before = server.requests().len();
    let err = e.ask("How high are the spring tides?", &AskOptions::default(), &|_| {}).await.unwrap_err();
    assert!(matches!(err, EngineError::BudgetExceeded(_)), "{err}");
    assert_eq!(err.code(), cairn_core::ErrorCode::BudgetExceeded);
    assert!(err.to_string().contains("would exceed today's budget"), "{err}");
    assert_eq!(server.requests().len(), before, "a refused call must not reach the provider");

    // 6. With a fallback, the same question is answered by the local model instead.
    configure(&e, |s| s.chat.fallback = Some("local".into()));
    let routed = e.ask("How high are the spring tides?", &AskOptions::default(), &|_| {}).await.unwrap();
    assert!(matches!(&routed.mode, AnswerMode::Generated { provider, .. } if provider == "local"));
    assert!(routed.warnings.iter().any(|w| w.contains("answered with `local` instead")), "{:?}", routed.warnings);

    // The report adds up: by provider, the remote total is the two billed calls.
    let report = e.costs(CostQuery { from_ms: 0, to_ms: i64::MAX, group_by: GroupBy::Provider }).unwrap();
    let remote = report.lines.iter().find(|l| l.key == "remote").unwrap();
    assert_eq!(remote.cost, Money(3_250_000) + expected);
    assert_eq!((remote.cache_hits, remote.saved, remote.cancelled, remote.refused), (1, Money(3_250_000), 1, 2));
    let local_line = report.lines.iter().find(|l| l.key == "local").unwrap();
    assert_eq!(local_line.cost, Money::ZERO);
    assert_eq!(report.total.cost, remote.cost);
    let csv = report.to_csv();
    let remote_row: Vec<&str> = csv.lines().find(|l| l.starts_with("remote,")).unwrap().split(',').collect();
    let nanos = remote.cost.nanos();
    assert_eq!(remote_row[6], format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000), "{csv}");
    assert!(csv.lines().last().unwrap().starts_with("total,"), "{csv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_streams_missing_usage_rate_limits_and_outages_are_reported_and_ledgered() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine_with_notes(tmp.path()).await;
    let server = ProviderServer::start();
    configure(&e, |s| {
        s.providers.push(provider(
            "remote",
            ProviderKind::Openai,
            format!("{}/v1", server.base_url),
            Some((1.0, 1.0, 2.0)),
        ));
        s.chat.provider = "remote".into();
        s.answer.cache = false;
    });

    // A stream cut midway keeps the partial answer and says so; what arrived is billed.
    server.push(Reply::OpenAi {
        pieces: ["The", " ferry", " leaves", " at", " seven."].map(String::from).to_vec(),
        usage: None,
        gap: Duration::ZERO,
        cut_after: Some(3),
    });
    let cut = e.ask("When does the ferry leave?", &AskOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(cut.text, "The ferry leaves");
    assert!(cut.interrupted.is_some(), "{cut:?}");
    let row = &chat_calls(&e, cut.question_id.unwrap())[0];
    assert_eq!((row.outcome, row.error_code.as_deref(), row.estimated), (Outcome::Failed, Some("stream_cut"), true));
    assert!(row.cost_nanos.unwrap() > 0);

    // No usage in the stream: Cairn counts, and says the figure is an estimate.
    server.push(Reply::openai("It leaves at seven [1].", None));
    let est = e.ask("When does the ferry leave?", &AskOptions::default(), &|_| {}).await.unwrap();
    assert!(est.tokens_estimated && est.prompt_tokens > 0 && est.completion_tokens > 0);
    let row = &chat_calls(&e, est.question_id.unwrap())[0];
    assert!(row.estimated);
    let want =
        Money::from_dollars(1.0).per_tokens(row.input_tokens) + Money::from_dollars(2.0).per_tokens(row.output_tokens);
    assert_eq!(row.cost_nanos, Some(want.nanos()));

    // 429 with Retry-After: waited out, asked again, answered; the ledger counts two attempts.
    server.push(Reply::status(
        429,
        &[("Retry-After", "1")],
        r#"{"error":{"message":"slow down","type":"rate_limit"}}"#,
    ));
    server.push(Reply::openai("Seven [1].", Some(Usage { input: 300, output: 3, cached: 0 })));
    let started = std::time::Instant::now();
    let retried = e.ask("When does the ferry leave?", &AskOptions::default(), &|_| {}).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900), "Retry-After was not honoured");
    assert_eq!(retried.text, "Seven [1].");
    assert_eq!(chat_calls(&e, retried.question_id.unwrap())[0].attempts, 2);

    // A provider that keeps failing: a clear error with a code, a failed row costing nothing.
    for _ in 0..3 {
        server.push(Reply::status(500, &[], r#"{"error":{"message":"upstream exploded"}}"#));
    }
    let err = e.ask("When does the ferry leave?", &AskOptions::default(), &|_| {}).await.unwrap_err();
    assert_eq!(err.code(), cairn_core::ErrorCode::ProviderUnavailable, "{err}");
    assert!(err.to_string().contains("upstream exploded"), "{err}");
    let failed = e.calls(0, i64::MAX).unwrap().into_iter().rev().find(|r| r.call.kind == CallKind::Chat).unwrap();
    assert_eq!((failed.call.outcome, failed.call.cost_nanos), (Outcome::Failed, Some(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_speaks_messages_and_bills_cache_reads_at_their_price() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine_with_notes(tmp.path()).await;
    let server = ProviderServer::start();
    // Claude-like prices: $3 input, $0.30 cache read, $15 output per million.
    configure(&e, |s| {
        s.providers.push(provider("claude", ProviderKind::Anthropic, server.base_url.clone(), Some((3.0, 0.3, 15.0))));
        s.chat.provider = "claude".into();
    });
    // Input 100 fresh + 900 cache reads, 50 out: 100 × 3 + 900 × 0.3 + 50 × 15 = $0.00132.
    server.push(Reply::anthropic("The ferry leaves at seven [1].", Usage { input: 100, output: 50, cached: 900 }));
    let a = e.ask("When does the ferry leave?", &AskOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(a.text, "The ferry leaves at seven [1].");
    assert_eq!((a.prompt_tokens, a.cached_tokens, a.completion_tokens), (1000, 900, 50));
    assert_eq!(a.cost, Some(Money(1_320_000)));
    let req = &server.requests()[0];
    assert_eq!(req.path, "/v1/messages");
    assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));
    let body = req.json();
    assert!(
        body["system"].as_str().unwrap().contains("sources provided with the question"),
        "the system prompt is a top-level field"
    );
    assert!(body["messages"].as_array().unwrap().iter().all(|m| m["role"] != "system"));
    assert_eq!(body["stream"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_that_the_window_cannot_take_and_history_is_trimmed_oldest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine_with_notes(tmp.path()).await;
    // Long notes that all match the question.
    let docs = tmp.path().join("notes");
    for i in 0..8 {
        let body = format!("Ferry timetable note {i}. ").repeat(60);
        std::fs::write(docs.join(format!("ferry-{i}.md")), format!("# Ferry {i}\n\n{body}\n")).unwrap();
    }
    e.index(&quiet).await.unwrap();
    let server = ProviderServer::start();
    let window = 900;
    configure(&e, |s| {
        let mut p = provider("small", ProviderKind::Openai, format!("{}/v1", server.base_url), Some((0.0, 0.0, 0.0)));
        p.context_window = Some(window);
        s.providers.push(p);
        s.chat.provider = "small".into();
        s.answer.max_answer_tokens = 100;
        s.answer.max_sources = 8;
        s.answer.cache = false;
    });
    // Cairn's count for a provider it cannot tokenize: 3 ASCII characters per token, rounded up.
    let estimate = |body: &serde_json::Value| -> usize {
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap().len().div_ceil(3) + 4)
            .sum::<usize>()
    };

    let first = e.ask("When does the ferry leave in the timetable?", &AskOptions::default(), &|_| {}).await.unwrap();
    let body = server.requests().last().unwrap().json();
    assert!(estimate(&body) + 100 <= window, "sent {} estimated tokens to a {window}-token window", estimate(&body));
    assert_eq!(body["max_tokens"], 100);
    assert!(
        first.warnings.iter().any(|w| w.contains("did not fit the model's context window")),
        "{:?}",
        first.warnings
    );
    assert!(first.considered.len() < 8);

    // A follow-up carries the conversation: the earlier question and answer precede it.
    let conv = first.conversation_id.unwrap();
    let opts = AskOptions { conversation: Some(conv), ..AskOptions::default() };
    e.ask("And on Sundays?", &opts, &|_| {}).await.unwrap();
    let body = server.requests().last().unwrap().json();
    let msgs = body["messages"].as_array().unwrap();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"], "{msgs:?}");
    assert_eq!(msgs[1]["content"], "When does the ferry leave in the timetable?");
    assert!(estimate(&body) + 100 <= window);

    // Many long turns later, the oldest ones are dropped to fit, never the question.
    for i in 0..6 {
        server.push(Reply::openai(&"A long answer about the ferry. ".repeat(12), None));
        e.ask(&format!("Follow-up number {i} about the ferry timetable?"), &opts, &|_| {}).await.unwrap();
    }
    e.ask("Last one?", &opts, &|_| {}).await.unwrap();
    let body = server.requests().last().unwrap().json();
    let msgs = body["messages"].as_array().unwrap();
    assert!(estimate(&body) + 100 <= window, "history overflowed the window");
    assert!(msgs.len() < 2 + 2 * 8, "no turn was trimmed: {} messages", msgs.len());
    assert!(msgs.last().unwrap()["content"].as_str().unwrap().contains("Last one?"));
    assert!(
        !msgs.iter().any(|m| m["content"] == "When does the ferry leave in the timetable?"),
        "the oldest turn should have been trimmed"
    );
}

/// Feedback on a generated answer refers to the sources as the user sees them: a model that
/// cites [3] before [1] gets its sources listed in that order, each under its own number, and
/// `useful 3` is about source [3] — also when the same answer later comes from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_on_an_answer_names_the_sources_by_the_numbers_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine_with_notes(tmp.path()).await;
    let server = ProviderServer::start();
    configure(&e, |s| {
        s.providers.push(provider("remote", ProviderKind::Openai, format!("{}/v1", server.base_url), None));
        s.chat.provider = "remote".into();
        s.learning.retrain_every = 0;
    });
    server.push(Reply::openai("Tides reach four metres [3]; revenue was 4.2 million [1].", None));
    let a = e.ask(HERON, &AskOptions::default(), &|_| {}).await.unwrap();
    let numbers: Vec<u32> = a.sources.iter().map(|c| c.number).collect();
    assert_eq!(numbers, [3, 1], "{:?}", a.sources);
    let event = a.event_id.expect("an answer has an event for feedback");
    let receipt = e.feedback(event, cairn_engine::Signal::Useful, Some(3), None).await.unwrap();
    assert_eq!(receipt.path.as_deref(), Some(a.sources[0].path.as_str()), "[3] is the source listed as [3]");
    let receipt = e.feedback(event, cairn_engine::Signal::NotUseful, Some(1), None).await.unwrap();
    assert_eq!(receipt.path.as_deref(), Some(a.sources[1].path.as_str()));
    // [2] was given to the model but not cited, so it was never listed: it cannot be judged.
    for n in [2, 7] {
        let err = e.feedback(event, cairn_engine::Signal::Useful, Some(n), None).await.unwrap_err();
        assert!(err.to_string().contains("it showed [1] [3]"), "{err}");
    }

    // The same question again is answered from the cache: its feedback is about this search.
    let again = e.ask(HERON, &AskOptions::default(), &|_| {}).await.unwrap();
    assert!(again.cache_hit);
    let second = again.event_id.expect("event");
    assert_ne!(second, event, "a cached answer still gets its own event");
    let receipt = e.feedback(second, cairn_engine::Signal::Useful, Some(3), None).await.unwrap();
    assert_eq!(receipt.event_id, second);
    assert_eq!(receipt.path.as_deref(), Some(a.sources[0].path.as_str()));
}
