//! Keeping the index true to the disk (FAILURE-CLASSES 8–11, 13, 15–21), on the real engine:
//! the ONNX model, LanceDB, SQLite and the OS's file watcher. Each test does to a folder what
//! a user (or their editor) does, and checks what a search would show them.

#![allow(clippy::unwrap_used)]

use cairn_embed::{EmbedError, Embedder, LocalEmbedder, ModelFiles};
use cairn_engine::{Engine, EngineConfig, IndexEvent, IndexReport, Scope, WatchEvent, WatchOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn models_dir() -> PathBuf {
    std::env::var_os("CAIRN_MODELS_DIR")
        .map(PathBuf::from)
        .expect("CAIRN_MODELS_DIR is not set: run the tests through scripts/test.sh, which fetches the models")
}

fn engine(data: &Path) -> Engine {
    Engine::open(EngineConfig { data_dir: data.to_path_buf(), models_dir: models_dir(), embed_threads: Some(2) })
        .unwrap()
}

fn quiet(_: IndexEvent) {}

fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap()
}

/// File names among the top `k` hits for `query`.
async fn found(engine: &Engine, query: &str, k: usize) -> Vec<String> {
    match engine.search(query, k).await {
        Ok(hits) => hits.iter().map(|h| h.path.clone()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Polls until `cond` holds (the watcher works in the background); fails after 60 s.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

struct Watching {
    engine: Arc<Engine>,
    stop: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<WatchEvent>>>,
    task: tokio::task::JoinHandle<Result<(), cairn_engine::EngineError>>,
}

impl Watching {
    fn start(engine: Engine, opts: WatchOptions) -> Watching {
        let engine = Arc::new(engine);
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        let (e, s, ev) = (engine.clone(), stop.clone(), events.clone());
        let task = tokio::spawn(async move {
            let on_event = move |x: WatchEvent| ev.lock().unwrap().push(x);
            e.watch(opts, &on_event, &s).await
        });
        Watching { engine, stop, events, task }
    }

    /// Reports of the passes since the last call.
    fn take_reports(&self) -> Vec<IndexReport> {
        let mut ev = self.events.lock().unwrap();
        let out = ev
            .iter()
            .filter_map(|e| if let WatchEvent::Synced { report } = e { Some(report.clone()) } else { None })
            .collect();
        ev.clear();
        out
    }

    /// The reports so far, once the watcher has reported at least one pass: a change can be
    /// visible to search a moment before the pass that made it reports.
    async fn settled_reports(&self) -> Vec<IndexReport> {
        let events = self.events.clone();
        eventually("the watcher reports its pass", || {
            let ev = events.clone();
            async move { ev.lock().unwrap().iter().any(|e| matches!(e, WatchEvent::Synced { .. })) }
        })
        .await;
        self.take_reports()
    }

    fn indexed_events(&self, file: &str) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, WatchEvent::Index { progress: IndexEvent::FileIndexed { path, .. } } if name(path) == file))
            .count()
    }

    async fn stop(self) -> Arc<Engine> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap().unwrap();
        self.engine
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_follows_atomic_saves_renames_moves_and_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("notes folder");
    std::fs::create_dir_all(docs.join("projects/harbour")).unwrap();
    std::fs::write(docs.join("diary.md"), "# Diary\n\nThe lighthouse keeper polished the great lens at dawn.\n")
        .unwrap();
    std::fs::write(
        docs.join("projects/harbour/plan.txt"),
        "Dredging the harbour channel needs a permit from the port authority.\n",
    )
    .unwrap();
    let e = engine(&tmp.path().join("data"));
    e.add_folder(&docs).unwrap();
    let w = Watching::start(e, WatchOptions::default());
    let engine = w.engine.clone();
    eventually("the first scan indexes both files", || async {
        found(&engine, "lighthouse lens", 3).await.iter().any(|p| p.ends_with("diary.md"))
    })
    .await;
    // Class 19: a manual re-index while the watcher runs is told to wait, with a reason.
    let second = self::engine(&tmp.path().join("data"));
    let err = second.index(&quiet).await.unwrap_err();
    assert!(matches!(err, cairn_engine::EngineError::Busy(_)) && err.to_string().contains("cairn watch"), "{err}");
    drop(second);
    eventually("plan.txt searchable", || async {
        found(&engine, "harbour dredging permit", 3).await.iter().any(|p| p.ends_with("plan.txt"))
    })
    .await;
    w.take_reports();

    // An editor's atomic save (vim, VS Code, gedit): the new text goes to a temporary file
    // next to the original, a backup copy is left, and the temporary file is renamed over it.
    std::fs::write(docs.join(".diary.md.swp"), "swap").unwrap();
    std::fs::write(docs.join("diary.md~"), std::fs::read(docs.join("diary.md")).unwrap()).unwrap();
    std::fs::write(docs.join(".diary.md.tmp123"), "# Diary\n\nMarmots whistle from the scree above the glacier.\n")
        .unwrap();
    std::fs::rename(docs.join(".diary.md.tmp123"), docs.join("diary.md")).unwrap();
    std::fs::remove_file(docs.join(".diary.md.swp")).unwrap();
    eventually("the saved text is searchable", || async {
        found(&engine, "marmots whistle scree glacier", 3).await.first().is_some_and(|p| p.ends_with("diary.md"))
    })
    .await;
    eventually("the old text no longer answers", || async {
        !engine
            .search("lighthouse keeper polished the lens", 10)
            .await
            .unwrap()
            .iter()
            .any(|h| h.text.contains("lighthouse"))
    })
    .await;
    assert_eq!(w.indexed_events("diary.md"), 1, "one atomic save is indexed once");
    let status = engine.status().unwrap();
    assert_eq!(status.folders[0].indexed, 2, "the backup and temporary files are not indexed: {status:?}");

    // Renaming a file: the new name answers, the old one is gone, nothing is embedded again.
    w.take_reports();
    std::fs::rename(docs.join("diary.md"), docs.join("journal.md")).unwrap();
    eventually("the renamed file answers", || async {
        let f = found(&engine, "marmots whistle scree glacier", 10).await;
        f.iter().any(|p| p.ends_with("journal.md")) && !f.iter().any(|p| p.ends_with("diary.md"))
    })
    .await;
    let reports = w.settled_reports().await;
    assert_eq!(reports.iter().map(|r| r.chunks_embedded).sum::<usize>(), 0, "a rename re-embedded: {reports:?}");
    assert!(reports.iter().map(|r| r.chunks_reused).sum::<usize>() >= 1, "{reports:?}");

    // Moving a whole folder: every file moves with it, again without embedding.
    std::fs::create_dir_all(docs.join("archive")).unwrap();
    std::fs::rename(docs.join("projects/harbour"), docs.join("archive/harbour")).unwrap();
    eventually("the moved folder's file answers from its new place", || async {
        let f = found(&engine, "harbour dredging permit", 10).await;
        f.iter().any(|p| p.ends_with("archive/harbour/plan.txt")) && !f.iter().any(|p| p.contains("projects/harbour"))
    })
    .await;
    let reports = w.settled_reports().await;
    assert_eq!(reports.iter().map(|r| r.chunks_embedded).sum::<usize>(), 0, "a folder move re-embedded: {reports:?}");

    // Deleting: gone from results.
    std::fs::remove_file(docs.join("journal.md")).unwrap();
    eventually("the deleted file no longer answers", || async {
        !found(&engine, "marmots whistle scree glacier", 10).await.iter().any(|p| p.ends_with("journal.md"))
    })
    .await;

    let engine = w.stop().await;
    let c = engine.check(true).await.unwrap();
    assert!(c.is_clean(), "{c:?}");
    assert_eq!(c.files_indexed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_still_being_written_is_indexed_complete_and_the_rescan_catches_silent_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("share");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("readme.txt"), "A shared folder on a network drive.\n").unwrap();
    let e = engine(&tmp.path().join("data"));
    e.add_folder(&docs).unwrap();
    // No OS events at all (as on many network shares): only the periodic rescan sees changes.
    let opts =
        WatchOptions { events: false, rescan_every: Some(Duration::from_millis(500)), ..WatchOptions::default() };
    let w = Watching::start(e, opts);
    let engine = w.engine.clone();
    eventually("first scan", || async { !found(&engine, "network drive", 3).await.is_empty() }).await;

    // A large file copied in slowly: whatever the rescan sees midway, the end state is the
    // whole file, and its last part is searchable.
    let mut f = std::fs::File::create(docs.join("minutes.txt")).unwrap();
    for i in 0..30 {
        use std::io::Write;
        writeln!(f, "Item {i}: the committee discussed the budget for road repairs in ward {i}.").unwrap();
        f.sync_all().unwrap();
        std::thread::sleep(Duration::from_millis(60));
    }
    use std::io::Write;
    writeln!(f, "Finally the chair thanked the volunteers of the lifeboat station.").unwrap();
    drop(f);
    eventually("the end of the copied file is searchable", || async {
        found(&engine, "chair thanked the lifeboat station volunteers", 3)
            .await
            .first()
            .is_some_and(|p| p.ends_with("minutes.txt"))
    })
    .await;
    eventually("the index holds the finished file", || async { engine.check(true).await.unwrap().is_clean() }).await;
    w.stop().await;
}

/// Fails on any passage containing POISON, like a model that errors midway through a batch.
struct Flaky {
    inner: LocalEmbedder,
}

impl Embedder for Flaky {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.iter().any(|t| t.contains("POISON")) {
            return Err(EmbedError::Inference("simulated failure".into()));
        }
        self.inner.embed(texts)
    }
    fn token_counter(&self) -> &dyn cairn_core::TokenCounter {
        self.inner.token_counter()
    }
}

/// A different model with another dimension (a bag of hashed words).
struct Hashing;

impl Embedder for Hashing {
    fn id(&self) -> &str {
        "hashing-test/64"
    }
    fn dimension(&self) -> usize {
        64
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0f32; 64];
                for w in t.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
                    let h = w.bytes().fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
                    v[(h % 64) as usize] += 1.0;
                }
                v
            })
            .collect())
    }
    fn token_counter(&self) -> &dyn cairn_core::TokenCounter {
        &cairn_core::WhitespaceCounter { max: 256 }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_re_embed_keeps_the_old_version_and_fts_covers_new_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("recipe.txt"), "Knead the rye dough and let it prove overnight.\n").unwrap();
    let data = tmp.path().join("data");
    let flaky = Arc::new(Flaky { inner: LocalEmbedder::load(&ModelFiles::in_dir(&models_dir()), Some(2)).unwrap() });
    let e = engine(&data).with_embedder(flaky);
    e.add_folder(&docs).unwrap();
    e.index(&quiet).await.unwrap();

    // Class 17: the edit cannot be embedded; the document must not go missing meanwhile.
    std::fs::write(docs.join("recipe.txt"), "POISON: bake at 250 degrees for forty minutes.\n").unwrap();
    assert!(e.index(&quiet).await.is_err());
    assert!(
        found(&e, "rye dough prove overnight", 3).await.iter().any(|p| p.ends_with("recipe.txt")),
        "the old version vanished"
    );

    // Class 18: rows added after the full-text index was built are found by full text.
    std::fs::write(docs.join("recipe.txt"), "Bake at 250 degrees for forty minutes.\n").unwrap();
    std::fs::write(docs.join("later.txt"), "The zyzzyva beetle lives among the ferns.\n").unwrap();
    e.index(&quiet).await.unwrap();
    let hits = e.search("zyzzyva", 3).await.unwrap();
    assert!(name(&hits[0].path) == "later.txt" && hits[0].text_rank == Some(1), "{hits:?}");
    assert!(e.check(true).await.unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_stays_small_and_another_embedder_never_mixes_vectors() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let data = tmp.path().join("data");
    {
        let e = engine(&data);
        e.add_folder(&docs).unwrap();
        for i in 0..6 {
            std::fs::write(
                docs.join(format!("n{i}.txt")),
                format!("Note {i} about tidal currents near the estuary.\n"),
            )
            .unwrap();
        }
        e.index(&quiet).await.unwrap();
        let (_, first) = e.compact(Duration::ZERO).await.unwrap();
        // Class 20: thirty edits, each its own pass, then maintenance.
        for round in 0..30 {
            std::fs::write(docs.join("n0.txt"), format!("Revision {round} of the note about tidal currents.\n"))
                .unwrap();
            e.index(&quiet).await.unwrap();
        }
        let (grown, after) = e.compact(Duration::ZERO).await.unwrap();
        assert!(grown > first, "edits must have added versions ({first} -> {grown})");
        assert!(
            after * 2 < grown && after < first * 2,
            "store not cleaned up: {first} after the first pass, {grown} after 30 edits, {after} after maintenance"
        );
        assert!(found(&e, "revision 29 tidal currents", 1).await[0].ends_with("n0.txt"));
        assert!(e.check(true).await.unwrap().is_clean());
    }

    // Class 21: another model with another dimension on the same data: no crash, no mixing,
    // everything re-embedded into its own table in the background while searches keep reading
    // the complete old one, one switch at the end, and switching back works.
    let e = engine(&data).with_embedder(Arc::new(Hashing));
    let minilm = e.status().unwrap().embedder.unwrap();
    assert!(
        found(&e, "revision 29 tidal currents", 1).await[0].ends_with("n0.txt"),
        "before the new table is built, searches read the old one with the old model"
    );
    let status = e.status().unwrap();
    assert_eq!(status.embedder.as_deref(), Some(minilm.as_str()));
    assert_eq!(status.reembedding_into.as_deref(), Some("hashing-test/64"));
    assert_eq!(status.folders[0].pending, 6, "every file waits to be embedded again");
    // A file deleted meanwhile is gone from answers even though the old table is not updated.
    std::fs::remove_file(docs.join("n5.txt")).unwrap();
    let r = e.sync(Scope::Paths(vec![docs.join("n5.txt")]), &quiet).await.unwrap();
    assert_eq!((r.deleted, r.switched_embedder.as_deref()), (1, None), "a partial pass does not switch: {r:?}");
    assert!(!found(&e, "note 5 about tidal currents near the estuary", 6).await.iter().any(|p| p.ends_with("n5.txt")));
    assert_eq!(e.status().unwrap().embedder.as_deref(), Some(minilm.as_str()));
    std::fs::write(docs.join("n5.txt"), "Note 5 about tidal currents near the estuary.\n").unwrap();
    let r = e.index(&quiet).await.unwrap();
    assert_eq!(r.indexed, 6, "{r:?}");
    assert_eq!(r.switched_embedder.as_deref(), Some("hashing-test/64"));
    let status = e.status().unwrap();
    assert_eq!((status.embedder.as_deref(), status.reembedding_into), (Some("hashing-test/64"), None));
    assert!(found(&e, "estuary tidal currents note 3", 6).await.iter().any(|p| p.ends_with("n3.txt")));
    assert!(e.check(false).await.unwrap().is_clean());
    drop(e);
    let e = engine(&data);
    let r = e.index(&quiet).await.unwrap();
    assert_eq!((r.indexed, r.chunks_embedded), (6, 0), "switching back reuses the first model's vectors: {r:?}");
    assert!(found(&e, "revision 29 tidal currents", 1).await[0].ends_with("n0.txt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_re_embed_only_changed_passages_and_copies_embed_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let sections: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "## Section {i}\n\n{}\n",
                format!("Paragraph {i} describes the maintenance of sluice gate number {i}. ").repeat(20)
            )
        })
        .collect();
    std::fs::write(docs.join("manual.md"), format!("# Manual\n\n{}", sections.join("\n"))).unwrap();
    let e = engine(&tmp.path().join("data"));
    e.add_folder(&docs).unwrap();
    let first = e.index(&quiet).await.unwrap();
    assert!(first.chunks_embedded >= 12, "{first:?}");

    let mut edited = sections.clone();
    edited[5] = "## Section 5\n\nThe sluice gate number 5 was replaced by a modern pump in 2024.\n".into();
    std::fs::write(docs.join("manual.md"), format!("# Manual\n\n{}", edited.join("\n"))).unwrap();
    let r = e.index(&quiet).await.unwrap();
    assert!(
        r.chunks_embedded >= 1 && r.chunks_embedded * 4 <= first.chunks_embedded,
        "an edit of one section re-embedded {} of {}",
        r.chunks_embedded,
        first.chunks_embedded
    );
    assert!(found(&e, "sluice gate replaced by a modern pump", 1).await[0].ends_with("manual.md"));

    std::fs::copy(docs.join("manual.md"), docs.join("manual copy.md")).unwrap();
    let r = e.index(&quiet).await.unwrap();
    assert_eq!((r.indexed, r.chunks_embedded), (1, 0), "{r:?}");
    let r = e.sync(Scope::Paths(vec![docs.join("manual copy.md")]), &quiet).await.unwrap();
    assert_eq!(r.unchanged, 1);

    // A same-size rewrite with the old modification time put back (`cp -p`, some sync tools):
    // a full rescan cannot tell, but when the watcher names the path it is read and hashed.
    let path = docs.join("note.txt");
    std::fs::write(&path, "The ferry leaves at seven.\n").unwrap();
    e.index(&quiet).await.unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, "The train leaves at eight.\n").unwrap();
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
    assert_eq!(e.index(&quiet).await.unwrap().indexed, 0, "size and mtime match: a rescan trusts them");
    let r = e.sync(Scope::Paths(vec![path.clone()]), &quiet).await.unwrap();
    assert_eq!(r.indexed, 1, "{r:?}");
    assert!(found(&e, "when does the train leave", 1).await[0].ends_with("note.txt"));
    assert!(e.check(true).await.unwrap().is_clean());
}
