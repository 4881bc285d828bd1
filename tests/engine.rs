//! End-to-end: a folder of mixed real formats goes through the real engine — the ONNX
//! embedding model, LanceDB, SQLite, poppler and the local GGUF chat model — and we check what
//! a user would see: search hits with the right file and page, bad files reported by name,
//! incremental re-indexing that embeds nothing when nothing changed, edits and deletes
//! reflected at once, and answers whose citations point only to sources the model was given.

#![allow(clippy::unwrap_used)]

use cairn_e2e::*;
use cairn_engine::{AnswerMode, AskOptions, Engine, EngineConfig, FileStatus, IndexEvent, LlmChoice};
use std::path::{Path, PathBuf};

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("CAIRN_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| {
        panic!("CAIRN_MODELS_DIR is not set: run the tests through scripts/test.sh, which fetches the models")
    });
    assert!(
        dir.join("all-MiniLM-L6-v2/model.onnx").is_file(),
        "no embedding model in {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

fn engine(data: &Path) -> Engine {
    Engine::open(EngineConfig { data_dir: data.to_path_buf(), models_dir: models_dir(), embed_threads: Some(2) })
        .unwrap()
}

fn quiet(_: IndexEvent) {}

fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap()
}

async fn top_file(engine: &Engine, query: &str) -> (String, cairn_core::Hit) {
    let hits = engine.search(query, 5).await.unwrap();
    assert!(!hits.is_empty(), "no hits for {query:?}");
    (name(&hits[0].path).to_owned(), hits[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_folder_is_indexed_searched_kept_in_sync_and_answered() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("my docs");
    mixed_folder(&docs).unwrap();
    let engine = engine(&tmp.path().join("data"));
    engine.add_folder(&docs).unwrap();

    // First pass: every good file indexed, every bad one reported with a reason.
    let report = engine.index(&quiet).await.unwrap();
    assert_eq!(report.indexed, 6, "{report:?}");
    assert!(report.chunks_embedded >= 6);
    let status = engine.status().unwrap();
    let reason = |file: &str| {
        status
            .problems
            .iter()
            .find(|p| name(&p.path) == file)
            .map(|p| (p.status, p.reason.clone()))
            .unwrap_or_else(|| panic!("{file} not reported: {:?}", status.problems))
    };
    let (st, why) = reason("broken.docx");
    assert_eq!(st, FileStatus::Failed);
    assert!(why.to_lowercase().contains("corrupt"), "{why}");
    assert!(reason("garbage.txt").1.contains("binary"), "{:?}", reason("garbage.txt"));
    assert!(reason("empty.txt").1.contains("empty"), "{:?}", reason("empty.txt"));
    assert!(reason("photo.png").1.contains("unsupported"), "{:?}", reason("photo.png"));
    assert_eq!(status.folders[0].indexed, 6);

    // Each fact is found in its own file; the PDF hit is anchored to page 2.
    let (file, hit) = top_file(&engine, "Heron division quarterly revenue").await;
    assert_eq!(file, "report.pdf");
    assert_eq!(hit.anchor.page, Some(2));
    assert_eq!(top_file(&engine, "Brücke über den Lachsbach").await.0, "brücke.txt");
    assert_eq!(top_file(&engine, "fog horn maintenance by the lighthouse keeper").await.0, "keeper.docx");
    assert_eq!(top_file(&engine, "feeding a sourdough starter").await.0, "bread.html");
    assert_eq!(top_file(&engine, "marmots hibernating").await.0, ODD_NAME);
    let (file, hit) = top_file(&engine, "reciprocal rank fusion of vector and full text search").await;
    assert_eq!(file, "notes.md");
    assert_eq!(hit.anchor.heading, vec!["Project notes".to_owned(), "Retrieval".to_owned()]);
    assert!(hit.anchor.line_start.is_some());
    // The extractor's error text and the broken file's content are nowhere in the index.
    let hits = engine.search("This text must never be indexed from a truncated file", 20).await.unwrap();
    assert!(hits.iter().all(|h| name(&h.path) != "broken.docx"));
    let hits = engine.search("do not index secret", 20).await.unwrap();
    assert!(hits.iter().all(|h| !h.text.contains("do not index")), "script text leaked into the index");

    // Nothing changed: nothing is embedded again.
    let again = engine.index(&quiet).await.unwrap();
    assert_eq!(again.chunks_embedded, 0, "{again:?}");
    assert_eq!(again.indexed, 0);

    // An edit re-embeds that file only; the old text stops answering.
    std::fs::write(
        docs.join("notes.md"),
        "# Project notes\n\n## Retrieval\n\nCairn ranks passages with a learned gradient boosted ranker.\n",
    )
    .unwrap();
    let edit = engine.index(&quiet).await.unwrap();
    assert_eq!(edit.indexed, 1, "{edit:?}");
    assert!(edit.chunks_embedded >= 1 && edit.chunks_embedded <= 2, "{edit:?}");
    assert_eq!(top_file(&engine, "gradient boosted ranker").await.0, "notes.md");
    let hits = engine.search("reciprocal rank fusion", 10).await.unwrap();
    assert!(hits.iter().all(|h| !h.text.contains("reciprocal rank fusion")), "stale text still searchable");

    // Deletes are gone from results at once, including the file with quotes in its name.
    std::fs::remove_file(docs.join("sub folder/bread.html")).unwrap();
    std::fs::remove_file(docs.join(ODD_NAME)).unwrap();
    let del = engine.index(&quiet).await.unwrap();
    assert_eq!(del.deleted, 2, "{del:?}");
    for q in ["sourdough starter rye flour", "marmot colony hibernates"] {
        let hits = engine.search(q, 20).await.unwrap();
        assert!(hits.iter().all(|h| name(&h.path) != "bread.html" && name(&h.path) != ODD_NAME), "{q}: {hits:?}");
    }

    // Without a model, the answer is the best passages, labelled as such.
    let passages = engine
        .ask(
            "What was the Heron division's quarterly revenue?",
            &AskOptions { llm: LlmChoice::None, ..AskOptions::default() },
            &|_| {},
        )
        .await
        .unwrap();
    assert!(matches!(passages.mode, AnswerMode::Passages { .. }));
    assert_eq!(name(&passages.sources[0].path), "report.pdf");

    // The local model answers, streaming, and every citation points to a source it was given.
    let streamed = std::sync::Mutex::new(String::new());
    let answer = engine
        .ask("What was the Heron division's quarterly revenue?", &AskOptions::default(), &|t| {
            streamed.lock().unwrap().push_str(t)
        })
        .await
        .unwrap();
    match &answer.mode {
        AnswerMode::Generated { provider, model } => {
            assert_eq!(provider, "local");
            assert!(model.contains("SmolLM2"), "{model}");
        }
        other => panic!("expected a generated answer, got {other:?}"),
    }
    assert!(!answer.text.trim().is_empty());
    assert!(!streamed.lock().unwrap().is_empty(), "nothing was streamed");
    assert!(!answer.considered.is_empty());
    assert!(
        answer.sources.iter().all(|c| answer.considered.contains(c)),
        "a listed source was never given: {answer:?}"
    );
    assert!(answer.considered.iter().any(|c| name(&c.path) == "report.pdf"), "the PDF was not among the sources");
    assert!(answer.considered.iter().all(|c| Path::new(&c.path).exists()), "a source points to a missing file");
    assert_eq!(answer.prompt_version, "answer.v2");
    assert_eq!((answer.cost, answer.cache_hit), (Some(cairn_engine::Money::ZERO), false), "the local model is free");
    assert!(answer.prompt_tokens > 0 && answer.completion_tokens > 0);

    // The same question again, asked differently only in case and spacing: the cache answers,
    // the model is not called, and the ledger says so.
    let again = engine
        .ask("  what was the heron division's QUARTERLY revenue ", &AskOptions::default(), &|_| {})
        .await
        .unwrap();
    assert!(again.cache_hit);
    assert_eq!(again.text, answer.text);
    let calls = engine.calls_for_question(again.question_id.unwrap()).unwrap();
    let chat: Vec<_> = calls.iter().filter(|c| c.call.kind == cairn_engine::CallKind::Chat).collect();
    assert_eq!(chat.len(), 1);
    assert!(chat[0].call.cache_hit && chat[0].call.input_tokens == 0);
    let first = engine.calls_for_question(answer.question_id.unwrap()).unwrap();
    let model_call = first.iter().find(|c| c.call.kind == cairn_engine::CallKind::Chat).unwrap();
    assert_eq!(
        (model_call.call.input_tokens, model_call.call.output_tokens),
        (u64::from(answer.prompt_tokens), u64::from(answer.completion_tokens))
    );
    assert_eq!(model_call.call.prompt.as_deref(), Some("answer.v2"));

    // An edit to a file the answer drew on takes the answer out of the cache.
    let pdf = docs.join("report.pdf");
    let bytes = std::fs::read(&pdf).unwrap();
    std::fs::write(&pdf, [bytes.as_slice(), b"\n%edited\n"].concat()).unwrap();
    engine.index(&quiet).await.unwrap();
    let third =
        engine.ask("What was the Heron division's quarterly revenue?", &AskOptions::default(), &|_| {}).await.unwrap();
    assert!(!third.cache_hit, "an answer over a changed file came from the cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_that_disappears_keeps_its_index() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("usb drive");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("trip.md"), "# Trip\n\nThe ferry to the island leaves at seven.\n").unwrap();
    let engine = engine(&tmp.path().join("data"));
    engine.add_folder(&docs).unwrap();
    engine.index(&quiet).await.unwrap();
    // The drive is unplugged: the folder vanishes. That is not "every file was deleted".
    std::fs::rename(&docs, tmp.path().join("elsewhere")).unwrap();
    let report = engine.index(&quiet).await.unwrap();
    assert_eq!(report.unreadable_folders.len(), 1);
    assert_eq!(report.deleted, 0);
    assert_eq!(top_file(&engine, "ferry to the island").await.0, "trip.md");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_models_give_an_error_that_says_what_to_run() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("a.txt"), "hello").unwrap();
    let engine = Engine::open(EngineConfig {
        data_dir: tmp.path().join("data"),
        models_dir: tmp.path().join("no models here"),
        embed_threads: Some(1),
    })
    .unwrap();
    engine.add_folder(&docs).unwrap();
    let err = engine.index(&quiet).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("scripts/setup.sh"), "{msg}");
    assert!(msg.contains("no models here"), "{msg}");
    assert_eq!(err.code(), cairn_core::ErrorCode::ModelMissing);
    // Status still works without any model.
    assert_eq!(engine.status().unwrap().folders.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_folders_links_long_lines_and_files_without_extensions() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(docs.join("sub")).unwrap();
    std::fs::write(docs.join("README"), "The pangolin sanctuary opens its gates at dawn.\n").unwrap();
    std::fs::write(docs.join("orig.txt"), "Quokkas are small wallabies from Rottnest Island.\n").unwrap();
    std::os::unix::fs::symlink("../orig.txt", docs.join("sub/alias.txt")).unwrap();
    // 300 KB without a single space: WordPiece would call it one [UNK] token.
    std::fs::write(docs.join("long line.txt"), "banana".repeat(50_000)).unwrap();
    let engine = engine(&tmp.path().join("data"));
    engine.add_folder(&docs).unwrap();

    // A folder inside (or around) a registered one is refused: a file belongs to one folder.
    let err = engine.add_folder(&docs.join("sub")).unwrap_err().to_string();
    assert!(err.contains("already indexed as part of"), "{err}");
    let err = engine.add_folder(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("contains the registered folder"), "{err}");

    let report = engine.index(&quiet).await.unwrap();
    assert_eq!(report.indexed, 3, "README, orig.txt and the long line: {report:?}");

    // Files without an extension are read as text when they are text.
    assert_eq!(top_file(&engine, "pangolin sanctuary gates").await.0, "README");
    // A symlinked file is indexed once and the link is reported.
    let hits = engine.search("quokkas wallabies", 10).await.unwrap();
    assert_eq!(hits.iter().filter(|h| h.text.contains("Quokkas")).count(), 1, "{hits:?}");
    let status = engine.status().unwrap();
    assert!(status.problems.iter().any(|p| p.path.ends_with("sub/alias.txt") && p.reason.contains("same file as")));
    // The long line is split into passages of bounded size, none silently lost.
    let long: Vec<_> = engine
        .search("bananabanana", 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|h| name(&h.path) == "long line.txt")
        .collect();
    assert!(long.len() > 10, "only {} passages for 300 KB", long.len());
    assert!(
        long.iter().all(|h| h.text.len() <= 4096),
        "a passage of {} bytes",
        long.iter().map(|h| h.text.len()).max().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_indexer_on_the_same_data_is_told_to_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("a.md"), "# A\n\nalpha").unwrap();
    let data = tmp.path().join("data");
    let engine = engine(&data);
    engine.add_folder(&docs).unwrap();
    // Another process holds the writer lock.
    let held =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(data.join("index.lock")).unwrap();
    held.try_lock().unwrap();
    let err = engine.index(&quiet).await.unwrap_err();
    assert_eq!(err.code(), cairn_core::ErrorCode::Busy);
    assert!(err.to_string().contains("another cairn process"), "{err}");
    drop(held);
    assert_eq!(engine.index(&quiet).await.unwrap().indexed, 1);
}
