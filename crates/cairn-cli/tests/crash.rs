//! Crash trials (FAILURE-CLASSES 16): `cairn index` is killed with SIGKILL at a random moment
//! while the folder keeps changing; after a restart the index must agree with the disk — no
//! lost, duplicate or orphaned passages. CI runs a few trials; `scripts/crash_trials.sh` runs
//! 100 (CAIRN_CRASH_TRIALS) and reports the counts.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn cairn(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.arg("--data-dir").arg(data);
    cmd
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

/// xorshift: the trials are random but repeatable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const TOPICS: &[&str] = &["tides", "glaciers", "bees", "bridges", "lichens", "comets", "ferries", "orchards"];

fn document(rng: &mut Rng, n: u64) -> String {
    let mut s = format!("# Note {n}\n\n");
    for p in 0..(2 + rng.below(3)) {
        let topic = TOPICS[rng.below(TOPICS.len() as u64) as usize];
        s.push_str(&format!(
            "Paragraph {p} of note {n} is about {topic}: observation {} was recorded by station {} in season {}. {}\n\n",
            rng.below(1000),
            rng.below(50),
            rng.below(4),
            "Further remarks follow on method and weather. ".repeat(1 + rng.below(6) as usize)
        ));
    }
    s
}

/// Edits, renames, deletes and adds a few files, as a user would between two runs.
fn mutate(dir: &Path, rng: &mut Rng, next_id: &mut u64) {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for _ in 0..6 {
        let f = &files[rng.below(files.len() as u64) as usize];
        if f.exists() {
            let n = 10_000 + rng.below(1000);
            std::fs::write(f, document(rng, n)).unwrap();
        }
    }
    let victim = &files[rng.below(files.len() as u64) as usize];
    if victim.exists() {
        std::fs::rename(victim, dir.join(format!("renamed {}.md", *next_id))).unwrap();
        *next_id += 1;
    }
    let victim = &files[rng.below(files.len() as u64) as usize];
    if victim.exists() {
        std::fs::remove_file(victim).unwrap();
    }
    for _ in 0..4 {
        std::fs::write(dir.join(format!("new {}.md", *next_id)), document(rng, *next_id)).unwrap();
        *next_id += 1;
    }
}

#[test]
fn killing_the_indexer_at_random_moments_loses_and_duplicates_nothing() {
    assert!(std::env::var_os("CAIRN_MODELS_DIR").is_some(), "run through scripts/test.sh (it sets CAIRN_MODELS_DIR)");
    let trials: u64 = std::env::var("CAIRN_CRASH_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let data = tmp.path().join("data");
    let mut rng = Rng(0x5eed_cafe_f00d);
    for n in 0..40 {
        std::fs::write(docs.join(format!("note {n}.md")), document(&mut rng, n)).unwrap();
    }
    let mut next_id = 1000;
    assert!(cairn(&data).arg("add").arg(&docs).output().unwrap().status.success());

    let (mut killed, mut lost, mut dups, mut orphans, mut stale) = (0, 0u64, 0u64, 0u64, 0u64);
    for trial in 0..trials {
        if trial > 0 {
            mutate(&docs, &mut rng, &mut next_id);
        }
        // Loading the model takes about a second; kill anywhere from start-up to well into
        // embedding and writing.
        let delay = Duration::from_millis(200 + rng.below(if trial == 0 { 8000 } else { 2500 }));
        let mut child = cairn(&data).arg("index").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();

        // Restart and finish, then compare the store, the records and the disk.
        let out = cairn(&data).args(["--json", "index"]).output().unwrap();
        assert!(out.status.success(), "restart failed: {}", String::from_utf8_lossy(&out.stderr));
        let out = cairn(&data).args(["--json", "check", "--disk"]).output().unwrap();
        let c = json(&out);
        let on_disk = std::fs::read_dir(&docs).unwrap().count() as u64;
        let (l, d, o, s) = (
            c["lost"].as_array().unwrap().len() as u64,
            c["duplicate_chunks"].as_u64().unwrap(),
            c["orphaned_chunks"].as_u64().unwrap(),
            c["stale"].as_array().unwrap().len() as u64,
        );
        let missing = on_disk.saturating_sub(c["files_indexed"].as_u64().unwrap());
        eprintln!(
            "trial {trial}: killed after {} ms; {} files on disk, {} indexed; lost {l}, duplicate {d}, orphaned {o}, stale {s}, not indexed {missing}",
            delay.as_millis(),
            on_disk,
            c["files_indexed"]
        );
        lost += l + missing;
        dups += d;
        orphans += o;
        stale += s;
    }
    eprintln!(
        "crash trials: {trials} runs, {killed} killed mid-run; lost {lost}, duplicate chunks {dups}, orphaned chunks {orphans}, stale files {stale}"
    );
    assert_eq!((lost, dups, orphans, stale), (0, 0, 0, 0));
}
