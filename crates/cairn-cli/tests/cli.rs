//! The `cairn` binary as a user and a script meet it: exit codes, `--json` shapes, messages
//! that name the file and the reason, and no panics on bad input or missing models.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn cairn(data: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.arg("--data-dir").arg(data).args(args);
    cmd.env_remove("CAIRN_OPENAI_BASE_URL").env_remove("CAIRN_OPENAI_MODEL");
    cmd.output().unwrap()
}

fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn add_index_status_search_and_ask_from_the_command_line() {
    assert!(std::env::var_os("CAIRN_MODELS_DIR").is_some(), "run through scripts/test.sh (it sets CAIRN_MODELS_DIR)");
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    cairn_e2e::mixed_folder(&docs).unwrap();
    let data = tmp.path().join("data");

    let added = stdout_json(&cairn(&data, &["--json", "add", docs.to_str().unwrap()]));
    assert_eq!(added[0]["path"], std::fs::canonicalize(&docs).unwrap().to_str().unwrap());

    let report = stdout_json(&cairn(&data, &["--json", "index"]));
    assert_eq!(report["indexed"], 6, "{report}");
    assert_eq!(report["failed"].as_u64().unwrap() + report["skipped"].as_u64().unwrap(), 4, "{report}");

    // Human status lists the broken file by name with its reason.
    let status = cairn(&data, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success());
    assert!(text.contains("broken.docx") && text.to_lowercase().contains("corrupt"), "{text}");
    assert!(text.contains("garbage.txt"), "{text}");

    let found = stdout_json(&cairn(&data, &["--json", "search", "Heron division revenue", "-k", "3"]));
    let hits = &found["hits"];
    assert!(found["event_id"].as_i64().is_some() && found["ranker_version"] == 1, "{found}");
    assert!(hits[0]["path"].as_str().unwrap().ends_with("report.pdf"), "{hits}");
    assert_eq!(hits[0]["anchor"]["page"], 2);

    let human = cairn(&data, &["search", "Heron division revenue", "-k", "3"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("report.pdf") && text.contains("p. 2"), "{text}");

    let answer = stdout_json(&cairn(&data, &["--json", "ask", "--no-llm", "What was the Heron revenue?"]));
    assert_eq!(answer["mode"]["kind"], "passages");
    assert!(answer["sources"][0]["path"].as_str().unwrap().ends_with("report.pdf"));
    let human = cairn(&data, &["ask", "--no-llm", "What was the Heron revenue?"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("No generated answer") && text.contains("[1] report.pdf (p. 2)"), "{text}");
}

#[test]
fn bad_input_gets_a_clear_error_and_no_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = cairn(&data, &["add", "/no/such/folder"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/folder") && !err.contains("panicked"), "{err}");

    let out = cairn(&data, &["--json", "search", "anything"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"]["message"].as_str().unwrap().len() > 10, "{v}");

    // Indexing with nothing registered says what to do first.
    let out = cairn(&data, &["index"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cairn add"), "{}", String::from_utf8_lossy(&out.stderr));

    // Out-of-range values are refused by name, not silently changed.
    let out = cairn(&data, &["search", "anything", "-k", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--limit"), "{}", String::from_utf8_lossy(&out.stderr));

    // Models missing: the message says what to run.
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("a.md"), "# A\n\ntext").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--data-dir")
        .arg(tmp.path().join("data2"))
        .arg("--models-dir")
        .arg(tmp.path().join("empty models"))
        .args(["add", docs.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--data-dir")
        .arg(tmp.path().join("data2"))
        .arg("--models-dir")
        .arg(tmp.path().join("empty models"))
        .arg("index")
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scripts/setup.sh") && !err.contains("panicked"), "{err}");
}

#[test]
fn an_answer_is_flagged_listed_and_resolved_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    cairn_e2e::mixed_folder(&docs).unwrap();
    let data = tmp.path().join("data");
    stdout_json(&cairn(&data, &["--json", "add", docs.to_str().unwrap()]));
    stdout_json(&cairn(&data, &["--json", "index"]));

    let empty = cairn(&data, &["review", "list"]);
    assert!(String::from_utf8_lossy(&empty.stdout).contains("no answers wait for review"));

    // A question the folder cannot answer: Cairn abstains and says why, with the closest passages.
    let human = cairn(&data, &["ask", "--no-llm", "Which composer wrote the Moonlight Sonata?"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("Not enough evidence in your files") && text.contains("why: confidence"), "{text}");

    let answer = stdout_json(&cairn(&data, &["--json", "ask", "--no-llm", "What was the Heron revenue?"]));
    let event = answer["event_id"].as_i64().unwrap().to_string();
    let flagged = cairn(&data, &["flag", &event, "--note", "which quarter?"]);
    let text = String::from_utf8_lossy(&flagged.stdout);
    assert!(flagged.status.success() && text.contains("review 1"), "{text}");
    let list = cairn(&data, &["review", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("review 1  open  flagged by user") && text.contains("note: which quarter?"), "{text}");
    assert!(text.contains("What was the Heron revenue?") && text.contains("report.pdf"), "{text}");

    let resolved = cairn(&data, &["review", "resolve", "1", "wrong", "--note", "not an answer"]);
    let text = String::from_utf8_lossy(&resolved.stdout);
    assert!(text.contains("review 1 marked wrong") && text.contains("thumbs down"), "{text}");
    let all = stdout_json(&cairn(&data, &["--json", "review", "list", "--all"]));
    assert_eq!((all[0]["status"].as_str(), all[0]["reviewer_note"].as_str()), (Some("wrong"), Some("not an answer")));
    let open = cairn(&data, &["review", "list"]);
    assert!(String::from_utf8_lossy(&open.stdout).contains("no answers wait for review"));

    let missing = cairn(&data, &["review", "resolve", "9", "right"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("there is no review 9"));
}

/// ONNX Runtime's Linux build carries Microsoft telemetry (a device id under ~/.cache/Microsoft,
/// uploads to a collector). Indexing and searching with the local embedder must leave no such
/// trace in the user's home: nothing of theirs leaves the machine unless they ask for it.
#[test]
fn the_local_embedder_leaves_no_telemetry_trace_in_the_home_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("heron.md"), "# Heron\n\nThe Heron division's revenue was 4.2 million dollars.\n")
        .unwrap();
    let data = tmp.path().join("data");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
        cmd.arg("--data-dir").arg(&data).args(args).env("HOME", &home).env_remove("ORT_DISABLE_TELEMETRY");
        cmd.env_remove("XDG_CACHE_HOME").env_remove("CAIRN_OPENAI_BASE_URL").env_remove("CAIRN_OPENAI_MODEL");
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["add", docs.to_str().unwrap()]);
    run(&["index"]);
    run(&["search", "Heron revenue"]);
    let traces: Vec<_> = walkdir(&home);
    assert!(traces.is_empty(), "files written under HOME: {traces:?}");
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}
