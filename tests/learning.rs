//! End-to-end: feedback on real searches over a real index (the ONNX model, LanceDB, SQLite)
//! retrains the ranker, and the user sees the ranking change; the registry promotes only
//! without regression, rejects a candidate that would lose on the golden set, and rolls back.

#![allow(clippy::unwrap_used)]

use cairn_engine::{Engine, EngineConfig, EngineError, IndexEvent, Settings, Signal};
use std::path::{Path, PathBuf};

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

/// A team folder where the outdated handbook matches leave questions better, word for word,
/// than the current policy, which is what people actually need.
fn team_folder(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let files = [
        (
            "handbook-2019.md",
            "# Employee handbook 2019\n\n## Leave\n\nLeave days: every employee has 20 leave days a year. \
             Leave days are requested from your manager. Unused leave days expire. Leave for illness \
             and parental leave are described below. Leave days and holidays are counted in working days.\n",
        ),
        (
            "time-off-policy.md",
            "# Time off policy (current)\n\nStaff get 25 days of paid time off each year, booked in the \
             HR portal. Up to five unused days carry over to March. Sickness is reported to HR on the first day.\n",
        ),
        ("expenses.md", "# Expenses\n\nTravel and meals are reimbursed within 30 days when receipts are attached.\n"),
        ("security.md", "# Security\n\nLaptops use full-disk encryption. Passwords are at least 14 characters.\n"),
        ("onboarding.md", "# Onboarding\n\nNew staff meet their buddy on day one and get a laptop from IT.\n"),
        ("office.md", "# Office\n\nThe office opens at 8:00. Visitors sign in at reception.\n"),
    ];
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
}

const TRAINING_QUESTIONS: [&str; 10] = [
    "how many leave days do I get",
    "leave days per year",
    "can I carry over unused leave days",
    "how do I request leave days",
    "annual leave allowance",
    "how much leave do employees have",
    "what happens to unused leave",
    "where do I book my leave",
    "leave days for staff",
    "number of holidays per year",
];

async fn rank_of(engine: &Engine, query: &str, file: &str) -> usize {
    let ranked = engine.search_ranked(query, 6).await.unwrap();
    ranked.hits.iter().position(|h| name(&h.path) == file).map(|p| p + 1).unwrap_or(99)
}

/// The user asks, reads, marks the current policy useful and the old handbook not useful.
async fn judge(engine: &Engine, query: &str) {
    let ranked = engine.search_ranked(query, 6).await.unwrap();
    let event = ranked.event_id.unwrap();
    for (i, h) in ranked.hits.iter().enumerate() {
        let signal = match name(&h.path) {
            "time-off-policy.md" => Signal::Useful,
            "handbook-2019.md" => Signal::NotUseful,
            _ => continue,
        };
        engine.feedback(event, signal, Some(i + 1), None).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_retrains_the_ranker_and_the_registry_promotes_rejects_and_rolls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("team");
    team_folder(&docs);
    let data = tmp.path().join("data");
    let engine = engine(&data);
    engine.add_folder(&docs).unwrap();
    engine.index(&quiet).await.unwrap();

    // Learning only when asked, so the test controls when.
    let mut settings = Settings::load(&data).unwrap();
    settings.learning.retrain_every = 0;
    engine.save_settings(&settings).unwrap();

    // Untuned, a new phrasing finds the old handbook first.
    let new_question = "how many days of leave can I take";
    let before = rank_of(&engine, new_question, "time-off-policy.md").await;
    assert_eq!(rank_of(&engine, new_question, "handbook-2019.md").await, 1, "the premise of the test");
    assert!(before > 1);
    let first = engine.search_ranked(new_question, 3).await.unwrap();
    assert_eq!(first.ranker_version, 1, "the built-in ranker is version 1");

    // Nothing to learn from yet: a clear error, no version registered.
    let err = engine.learn().await.unwrap_err();
    assert!(err.to_string().contains("mark sources useful"), "{err}");
    assert_eq!(engine.rankers().unwrap().len(), 1);

    // Bad feedback is refused with the reason.
    let e = engine.feedback(first.event_id.unwrap(), Signal::Useful, Some(9), None).await.unwrap_err();
    assert!(matches!(e, EngineError::InvalidInput(_)) && e.to_string().contains("showed 3"), "{e}");
    let e = engine.feedback(first.event_id.unwrap(), Signal::Up, Some(1), None).await.unwrap_err();
    assert!(e.to_string().contains("whole answer"), "{e}");
    let e = engine.feedback(999_999, Signal::Down, None, None).await.unwrap_err();
    assert!(e.to_string().contains("999999"), "{e}");

    for q in TRAINING_QUESTIONS {
        judge(&engine, q).await;
    }
    let report = engine.learn().await.unwrap();
    assert_eq!(report.status, "active", "{report:?}");
    assert!(report.decision.starts_with("promoted over v1"), "{}", report.decision);
    let v2 = report.version;
    assert_eq!(v2, 2);
    let held = report.metrics.held_out_candidate.as_ref().unwrap();
    let was = report.metrics.held_out_active.as_ref().unwrap();
    assert!(held.ndcg_at_10 > was.ndcg_at_10, "{:?}", report.metrics);

    // What the user notices: the question nobody judged now finds the current policy first.
    let after = engine.search_ranked(new_question, 6).await.unwrap();
    assert_eq!(after.ranker_version, v2);
    assert_eq!(name(&after.hits[0].path), "time-off-policy.md", "{:?}", after.hits);
    assert_eq!(after.hits[0].features.len(), cairn_engine::FEATURE_NAMES.len(), "features are kept for 'why'");

    // A golden set that insists on the handbook: the next candidate would lose on it, so it is
    // rejected, and the active ranker stays.
    let golden = tmp.path().join("golden.jsonl");
    std::fs::write(&golden, "{\"question\": \"leave days\", \"expected\": [\"handbook-2019.md\"]}\n").unwrap();
    let report = engine.eval_golden(&golden).await.unwrap();
    assert_eq!(report.ranker_version, v2);
    assert!(report.previous.is_none(), "first run on this file");
    let mut settings = Settings::load(&data).unwrap();
    settings.learning.golden_set = Some(golden.clone());
    engine.save_settings(&settings).unwrap();
    // Roll back first, so the candidate (trained as before) is compared with the untuned ranker,
    // which puts the handbook first: the candidate would regress the golden set.
    assert_eq!(engine.rollback_ranker().unwrap(), 1);
    assert_eq!(rank_of(&engine, new_question, "handbook-2019.md").await, 1, "rolled back: the old order");
    judge(&engine, "paid time off days").await;
    let rejected = engine.learn().await.unwrap();
    assert_eq!(rejected.status, "rejected", "{rejected:?}");
    assert!(rejected.decision.contains("golden-set nDCG@10 would fall"), "{}", rejected.decision);
    assert_eq!(engine.search_ranked(new_question, 3).await.unwrap().ranker_version, 1);

    // The registry tells the whole story, and a version can be promoted by hand.
    let list = engine.rankers().unwrap();
    let status: Vec<(i64, &str)> = list.iter().map(|r| (r.version, r.status.as_str())).collect();
    assert_eq!(status, [(1, "active"), (2, "rolled_back"), (3, "rejected")], "{list:?}");
    assert!(list[1].train_events >= 7 && list[1].train_pairs > 0);
    engine.promote_ranker(v2).unwrap();
    assert_eq!(engine.search_ranked(new_question, 3).await.unwrap().ranker_version, v2);
    let e = engine.promote_ranker(42).unwrap_err();
    assert!(e.to_string().contains("v42"), "{e}");

    // Evaluation runs are kept and compared: the golden set again, under v2.
    let again = engine.eval_golden(&golden).await.unwrap();
    let cmp = again.previous.expect("compared with the first run");
    assert_eq!(cmp.previous_ranker, Some(v2));
    assert!(cmp.regressions.is_empty(), "same ranker, same scores: {cmp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_retrains_by_itself_every_n_judgements_and_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("team");
    team_folder(&docs);
    let data = tmp.path().join("data");
    {
        let engine = engine(&data);
        engine.add_folder(&docs).unwrap();
        engine.index(&quiet).await.unwrap();
        let mut settings = Settings::load(&data).unwrap();
        settings.learning.retrain_every = 8;
        engine.save_settings(&settings).unwrap();
        for q in &TRAINING_QUESTIONS[..5] {
            judge(&engine, q).await;
        }
    }
    // A restart in between: the events and judgements are in SQLite.
    let engine = engine(&data);
    for q in &TRAINING_QUESTIONS[5..] {
        judge(&engine, q).await;
    }
    let list = engine.rankers().unwrap();
    assert!(list.len() >= 2, "20 judgements with retrain_every = 8 retrain at least once: {list:?}");
    assert_eq!(list.iter().filter(|r| r.status == "active").count(), 1, "{list:?}");
    let active = list.iter().find(|r| r.status == "active").unwrap();
    assert!(active.version > 1, "a trained ranker was promoted: {list:?}");
    let hits = engine.search("how many days of leave can I take", 3).await.unwrap();
    assert_eq!(name(&hits[0].path), "time-off-policy.md", "{hits:?}");

    // The schedule: not due while the last training is recent; due once the interval has
    // passed and there is feedback it has not seen; then not again until more comes in.
    assert!(engine.learn_if_due().await.unwrap().is_none(), "trained moments ago, 24 h interval");
    let mut settings = Settings::load(&data).unwrap();
    settings.learning.retrain_hours = 1e-9;
    engine.save_settings(&settings).unwrap();
    let trained = list.len();
    let scheduled = engine.learn_if_due().await.unwrap().expect("due: 4 judgements since the last training");
    assert_eq!(scheduled.version as usize, trained + 1);
    assert!(engine.learn_if_due().await.unwrap().is_none(), "nothing new since");
}

/// A tiny BEIR dataset in the folder layout SciFact uses: train and test queries about the same
/// documents, so the learning proof's machinery runs end to end in seconds.
fn tiny_beir(dir: &Path) {
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    let docs = [
        ("d1", "Vitamin D and bone density", "Vitamin D supplements increase bone mineral density in elderly women."),
        ("d2", "Bone density review (retracted)", "Bone density bone density vitamin vitamin supplements review."),
        ("d3", "Aspirin and stroke", "Low-dose aspirin reduces the risk of a first stroke in adults."),
        ("d4", "Stroke statistics", "Stroke stroke aspirin risk statistics tables for adults."),
        ("d5", "Sleep and memory", "Sleep after learning improves memory consolidation."),
    ];
    let corpus: String =
        docs.iter().map(|(id, t, x)| format!("{}\n", serde_json::json!({"_id": id, "title": t, "text": x}))).collect();
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    let queries = [
        ("1", "vitamin D bone density"),
        ("2", "do vitamin supplements help bones"),
        ("3", "aspirin stroke risk"),
        ("4", "does aspirin prevent stroke"),
        ("5", "bone density vitamin"),
        ("6", "stroke aspirin"),
    ];
    let q: String = queries.iter().map(|(id, t)| format!("{}\n", serde_json::json!({"_id": id, "text": t}))).collect();
    std::fs::write(dir.join("queries.jsonl"), q).unwrap();
    std::fs::write(dir.join("qrels/train.tsv"), "query-id\tcorpus-id\tscore\n1\td1\t1\n2\td1\t1\n3\td3\t1\n4\td3\t1\n")
        .unwrap();
    std::fs::write(dir.join("qrels/test.tsv"), "query-id\tcorpus-id\tscore\n5\td1\t1\n6\td3\t1\n").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_learning_proof_uses_train_feedback_and_test_scores_only() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("tiny");
    tiny_beir(&set);
    let data = tmp.path().join("data");
    let engine = engine(&data);
    let report = engine.eval_learning(&set, &[2, 100], None, &quiet, &|_| {}).await.unwrap();
    assert_eq!(report.test_queries, 2);
    assert_eq!(report.points.len(), 2, "100 is capped at the 4 training queries");
    assert_eq!(report.points[1].train_queries, 4);
    // Every judged search came from a training query; no test query was ever searched through
    // the recording path.
    assert!(report.points[1].judged_events <= 4, "{:?}", report.points[1]);
    let recorded = engine.rankers().unwrap();
    assert!(!recorded.is_empty());
    assert!(report.baseline.ndcg_at_10 > 0.0);
    // A data folder with the user's own folders is refused: the simulation erases feedback.
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    engine.add_folder(&mine).unwrap();
    let e = engine.eval_learning(&set, &[2], None, &quiet, &|_| {}).await.unwrap_err();
    assert!(e.to_string().contains("own --data-dir"), "{e}");
}
