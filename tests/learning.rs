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

/// The team folder indexed, with `[learning] retrain_every` set.
async fn team_engine(tmp: &Path, retrain_every: u32) -> (Engine, PathBuf) {
    let docs = tmp.join("team");
    team_folder(&docs);
    let data = tmp.join("data");
    let engine = engine(&data);
    engine.add_folder(&docs).unwrap();
    engine.index(&quiet).await.unwrap();
    let mut settings = Settings::load(&data).unwrap();
    settings.learning.retrain_every = retrain_every;
    engine.save_settings(&settings).unwrap();
    (engine, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_retrains_the_ranker_and_the_registry_promotes_rejects_and_rolls_back() {
    let tmp = tempfile::tempdir().unwrap();
    // Learning only when asked, so the test controls when.
    let (engine, data) = team_engine(tmp.path(), 0).await;

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
    assert!(matches!(e, EngineError::InvalidInput(_)) && e.to_string().contains("showed [1] [2] [3]"), "{e}");
    let e = engine.feedback(first.event_id.unwrap(), Signal::Up, Some(1), None).await.unwrap_err();
    assert!(e.to_string().contains("whole answer"), "{e}");
    let e = engine.feedback(999_999, Signal::Down, None, None).await.unwrap_err();
    assert!(e.to_string().contains("999999"), "{e}");
    let e = engine.feedback(first.event_id.unwrap(), Signal::Down, None, None).await.unwrap_err();
    assert!(e.to_string().contains("is a search, not an answer"), "{e}");

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

    // Rollback walks back through promotions, not version numbers: v2 → v1 (by hand) → v3 (by
    // hand); rolling back returns to v1, then to v2.
    engine.promote_ranker(1).unwrap();
    engine.promote_ranker(3).unwrap();
    assert_eq!(engine.rollback_ranker().unwrap(), 1);
    assert_eq!(engine.rollback_ranker().unwrap(), v2);

    // Evaluation runs are kept and compared: the golden set again, under v2.
    let again = engine.eval_golden(&golden).await.unwrap();
    let cmp = again.previous.expect("compared with the first run");
    assert_eq!(cmp.previous_ranker, Some(v2));
    assert!(cmp.regressions.is_empty(), "same ranker, same scores: {cmp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_retrains_by_itself_every_n_judgements_and_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = {
        let (engine, data) = team_engine(tmp.path(), 8).await;
        for q in &TRAINING_QUESTIONS[..5] {
            judge(&engine, q).await;
        }
        data
    };
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

    // Roll back to the untuned ranker: automatic retraining then keeps its candidates without
    // promoting them (it would bring back what was just rolled back) until the user asks.
    let mut active = engine.rankers().unwrap().into_iter().find(|r| r.status == "active").unwrap().version;
    while active != 1 {
        active = engine.rollback_ranker().unwrap();
    }
    let e = engine.rollback_ranker().unwrap_err();
    assert!(e.to_string().contains("nothing to roll back to"), "{e}");
    judge(&engine, "paid time off days").await;
    let automatic = engine.learn_if_due().await.unwrap().expect("due");
    assert_eq!(automatic.status, "candidate", "{automatic:?}");
    assert!(automatic.decision.contains("paused"), "{}", automatic.decision);
    assert_eq!(engine.search_ranked("leave days", 3).await.unwrap().ranker_version, 1);
    let e = engine.learn().await.unwrap_err();
    assert!(e.to_string().contains("no new feedback since"), "the same judgements again: {e}");
    judge(&engine, "holiday allowance").await;
    let asked = engine.learn().await.unwrap();
    assert_eq!(asked.status, "active", "asking resumes promotion: {asked:?}");
}

/// A tiny BEIR dataset in the folder layout SciFact uses, where a keyword-stuffed commentary
/// outranks the study that answers each question: feedback from the train queries must teach
/// the ranker to prefer the study, which the test queries (never judged) then show.
fn tiny_beir(dir: &Path) {
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    let docs = [
        (
            "study-d",
            "Cholecalciferol trial",
            "Cholecalciferol supplementation raised mineral density of the hip in postmenopausal women in a randomised trial.",
        ),
        (
            "decoy-d",
            "Vitamin D and bone density: commentary",
            "Vitamin D and bone density. Vitamin D supplements and bone density. Does vitamin D improve bone density? Vitamin D, bone density.",
        ),
        (
            "study-a",
            "Low-dose acetylsalicylic acid trial",
            "Acetylsalicylic acid at 75 mg lowered the incidence of first cerebral infarction in adults over ten years.",
        ),
        (
            "decoy-a",
            "Aspirin and stroke: commentary",
            "Aspirin and stroke. Does aspirin prevent stroke? Aspirin stroke risk. Aspirin and the risk of stroke.",
        ),
        ("sleep", "Sleep and memory", "Sleep after learning improves memory consolidation."),
        ("tea", "Green tea", "Green tea catechins and weight loss in a small cohort."),
    ];
    let corpus: String =
        docs.iter().map(|(id, t, x)| format!("{}\n", serde_json::json!({"_id": id, "title": t, "text": x}))).collect();
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    let train = [
        "vitamin D bone density",
        "does vitamin D improve bone density",
        "vitamin D supplements and bone density",
        "bone density vitamin D women",
        "vitamin D for bones",
        "vitamin D supplementation bone",
        "aspirin stroke",
        "does aspirin prevent stroke",
        "aspirin and the risk of stroke",
        "aspirin stroke risk adults",
        "aspirin for stroke prevention",
        "low dose aspirin stroke",
    ];
    let test = ["vitamin D and bone density in women", "aspirin and stroke risk"];
    let mut queries = String::new();
    let mut train_qrels = String::from("query-id\tcorpus-id\tscore\n");
    for (i, q) in train.iter().enumerate() {
        queries += &format!("{}\n", serde_json::json!({"_id": format!("t{i}"), "text": q}));
        let relevant = if q.contains("aspirin") { "study-a" } else { "study-d" };
        train_qrels += &format!("t{i}\t{relevant}\t1\n");
    }
    let mut test_qrels = String::from("query-id\tcorpus-id\tscore\n");
    for (i, q) in test.iter().enumerate() {
        queries += &format!("{}\n", serde_json::json!({"_id": format!("x{i}"), "text": q}));
        let relevant = if q.contains("aspirin") { "study-a" } else { "study-d" };
        test_qrels += &format!("x{i}\t{relevant}\t1\n");
    }
    std::fs::write(dir.join("queries.jsonl"), queries).unwrap();
    std::fs::write(dir.join("qrels/train.tsv"), train_qrels).unwrap();
    std::fs::write(dir.join("qrels/test.tsv"), test_qrels).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_learning_proof_uses_train_feedback_and_test_scores_only() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("tiny");
    tiny_beir(&set);
    let data = tmp.path().join("data");
    let engine = engine(&data);
    let report = engine.eval_learning(&set, &[4, 100], None, &quiet, &|_| {}).await.unwrap();
    assert_eq!(report.test_queries, 2);
    assert_eq!(report.points.len(), 2, "100 is capped at the 12 training queries");
    assert_eq!(report.points[1].train_queries, 12);
    assert!(report.baseline.mrr < 1.0, "untuned, a commentary comes first: {:?}", report.baseline);
    // After all the train feedback a trained ranker is active and the test queries, which
    // nobody judged, find the studies first.
    let last = &report.points[1];
    assert!(last.active_version > 1, "{:?}", report.rankers);
    assert!(last.test.ndcg_at_10 > report.baseline.ndcg_at_10, "{:?} vs {:?}", last.test, report.baseline);
    assert_eq!(last.test.mrr, 1.0, "{:?}", last.test);
    // Only train queries went through the recording path: no test query left an event.
    let recorded = engine.searches(usize::MAX).unwrap();
    assert!(recorded.len() >= 12, "{recorded:?}");
    for q in ["vitamin D and bone density in women", "aspirin and stroke risk"] {
        assert!(recorded.iter().all(|r| r.query != q), "test query {q:?} was recorded");
    }
    // A data folder with the user's own folders is refused: the simulation erases feedback.
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    engine.add_folder(&mine).unwrap();
    let e = engine.eval_learning(&set, &[2], None, &quiet, &|_| {}).await.unwrap_err();
    assert!(e.to_string().contains("own --data-dir"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_level_evaluation_counts_gold_citations_and_declines() {
    use cairn_e2e::provider_server::{ProviderServer, Reply};
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("tiny");
    tiny_beir(&set);
    let claims = set.join("claims.jsonl");
    std::fs::write(
        &claims,
        [
            r#"{"id": "1", "claim": "Cholecalciferol raises hip mineral density in postmenopausal women.", "evidence": {"study-d": [{"label": "SUPPORT"}]}, "label": "SUPPORT"}"#,
            r#"{"id": "2", "claim": "Green tea cures insomnia.", "evidence": {}, "label": "NOT_ENOUGH_INFO"}"#,
            r#"{"id": "3", "claim": "Acetylsalicylic acid lowers first cerebral infarction.", "evidence": {"study-a": []}, "label": "SUPPORT"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let engine = engine(&data);
    let server = ProviderServer::start();
    let mut s = Settings::load(&data).unwrap();
    s.providers.push(cairn_engine::ProviderSettings {
        name: "scripted".into(),
        kind: cairn_engine::ProviderKind::Openai,
        base_url: Some(format!("{}/v1", server.base_url)),
        model: "scripted-model".into(),
        context_window: Some(8192),
        timeout_secs: Some(5),
        ..Default::default()
    });
    // Every claim goes to the model here (abstention by confidence is tested in confidence.rs).
    s.answer.min_confidence = 0.0;
    engine.save_settings(&s).unwrap();
    server.push(Reply::openai("It does [1][2].", None));
    server.push(Reply::openai("The sources do not say.", None));
    server.push(Reply::openai("Yes, it is true.", None));
    let seen = std::sync::Mutex::new(Vec::new());
    let report = engine
        .eval_answers(&set, &claims, None, cairn_engine::LlmChoice::Provider("scripted".into()), &quiet, &|c| {
            seen.lock().unwrap().push(c.id.clone())
        })
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["1", "2", "3"], "progress per claim");
    assert_eq!((report.claims, report.with_evidence, report.nei_claims), (3, 2, 1));
    let outcomes: Vec<&str> = report.per_claim.iter().map(|c| c.outcome.as_str()).collect();
    assert_eq!(outcomes, ["cited", "declined", "uncited"]);
    assert_eq!((report.nei_declined, report.nei_answered, report.nei_uncited), (1, 0, 0));
    assert_eq!((report.evidence_declined, report.evidence_uncited), (0, 1));
    // The gold share is computed from what the first answer cited: [1] and [2] of its sources.
    let first = &report.per_claim[0];
    assert!(!first.cited.is_empty() && first.cited.len() <= 2, "{first:?}");
    let gold = first.cited.iter().filter(|d| d.as_str() == "study-d").count();
    assert!((report.cited_gold_share - gold as f64 / first.cited.len() as f64).abs() < 1e-9, "{report:?}");
    assert_eq!(report.citing_gold, usize::from(gold > 0));
    assert!(report.answered_by.starts_with("scripted"), "{}", report.answered_by);
}
