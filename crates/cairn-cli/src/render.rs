//! Human-readable rendering of engine results. Plain text, aligned, no colour codes in pipes.

use cairn_engine::{Answer, AnswerMode, EvalReport, IndexReport, Status};

/// Text from documents and file names is data: control characters (ANSI escapes that could
/// clear or recolour the terminal, newlines in names) are shown as U+FFFD, never interpreted.
fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect()
}

/// Like `clean`, but keeps line breaks and tabs (for streamed and printed answers).
pub fn clean_keep_lines(text: &str) -> String {
    text.chars().map(|c| if c.is_control() && c != '\n' && c != '\t' { '\u{fffd}' } else { c }).collect()
}

fn name(path: &str) -> String {
    clean(path.rsplit('/').next().unwrap_or(path))
}

fn one_line(text: &str, max: usize) -> String {
    let flat = clean(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

pub fn index_report(r: &IndexReport) {
    let rate = if r.seconds > 0.0 { r.chunks_embedded as f64 / r.seconds } else { 0.0 };
    println!(
        "indexed {} files ({} passages) in {:.1}s — {} unchanged, {} deleted, {} failed, {} skipped; {} passages embedded ({rate:.1}/s)",
        r.indexed, r.chunks_written, r.seconds, r.unchanged, r.deleted, r.failed, r.skipped, r.chunks_embedded
    );
    for (folder, why) in &r.unreadable_folders {
        println!("unreadable: {folder}: {why} (its index was kept)");
    }
    if r.failed + r.skipped > 0 {
        println!("see `cairn status` for every file that was not indexed and why");
    }
}

pub fn status(s: &Status) {
    println!("data: {}", s.data_dir);
    println!("embedder: {}", s.embedder.as_deref().unwrap_or("(none yet: run `cairn index`)"));
    if s.folders.is_empty() {
        println!("no folders yet: `cairn add <folder>`");
        return;
    }
    println!();
    println!("{:>7} {:>7} {:>7} {:>8}  folder", "indexed", "failed", "skipped", "passages");
    for f in &s.folders {
        let mark = if f.readable { "" } else { "  (unreadable now)" };
        println!("{:>7} {:>7} {:>7} {:>8}  {}{mark}", f.indexed, f.failed, f.skipped, f.chunks, clean(&f.path));
    }
    if !s.problems.is_empty() {
        println!();
        for p in &s.problems {
            let kind = match p.status {
                cairn_db_status::Indexed => "warning",
                cairn_db_status::Failed => "failed",
                cairn_db_status::Skipped => "skipped",
            };
            println!("{kind:>7}  {}: {}", clean(&p.path), clean(&p.reason));
        }
    }
}

use cairn_engine::FileStatus as cairn_db_status;

pub fn hits(hits: &[cairn_core::Hit]) {
    if hits.is_empty() {
        println!("no matches");
    }
    for (i, h) in hits.iter().enumerate() {
        let why = match (h.vector_rank, h.text_rank) {
            (Some(v), Some(t)) => format!("vector #{v}, text #{t}"),
            (Some(v), None) => format!("vector #{v}"),
            (None, Some(t)) => format!("text #{t}"),
            (None, None) => String::new(),
        };
        println!("{:>2}. {}  {}  score {:.4} ({why})", i + 1, name(&h.path), clean(&h.anchor.label()), h.score);
        println!("    {}", one_line(&h.text, 200));
        println!("    {}", clean(&h.path));
    }
}

pub fn answer(a: &Answer, streamed: bool) {
    match &a.mode {
        AnswerMode::Generated { .. } => {
            if !streamed {
                println!("{}", clean_keep_lines(&a.text));
            }
            println!();
        }
        AnswerMode::Passages { reason } => {
            println!("No generated answer ({reason}). The best passages:");
            println!();
        }
    }
    if !a.invalid_citations.is_empty() {
        let list: Vec<String> = a.invalid_citations.iter().map(|n| format!("[{n}]")).collect();
        println!("note: the model cited {} which it was not given; ignored.", list.join(" "));
    }
    if let AnswerMode::Generated { model } = &a.mode {
        if a.cited.is_empty() {
            println!("note: the answer cites no source; check it against the sources below.");
        }
        if a.truncated {
            println!("note: the answer was cut at the token limit.");
        }
        println!("Sources ({model}, prompt {}):", a.prompt_version);
    } else {
        println!("Sources:");
    }
    let generated = matches!(a.mode, AnswerMode::Generated { .. });
    for c in &a.sources {
        let mark = if generated && a.cited.contains(&c.number) { "*" } else { " " };
        println!("{mark}[{}] {} ({})", c.number, name(&c.path), clean(&c.anchor.label()));
        println!("     {}", one_line(&c.snippet, 160));
    }
    if generated && !a.cited.is_empty() {
        println!("(* = cited in the answer)");
    }
}

pub fn eval(r: &EvalReport) {
    println!(
        "{} ({} split): {} documents, {} queries; indexing {:.0}s ({} passages embedded), queries {:.1}s",
        r.dataset, r.split, r.documents, r.queries, r.index_seconds, r.chunks_embedded, r.query_seconds
    );
    println!("{:<8} {:>8} {:>11}", "mode", "nDCG@10", "Recall@100");
    for m in &r.modes {
        println!("{:<8} {:>8.4} {:>11.4}", m.mode, m.ndcg_at_10, m.recall_at_100);
    }
}
