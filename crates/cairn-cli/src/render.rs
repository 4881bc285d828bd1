//! Human-readable rendering of engine results. Plain text, aligned, no colour codes in pipes.

use cairn_engine::{Answer, AnswerMode, EvalReport, IndexReport, Status};

/// Text from documents and file names is data: control characters (ANSI escapes that could
/// clear or recolour the terminal, newlines in names) are shown as U+FFFD, never interpreted.
pub fn clean(text: &str) -> String {
    unescape_tags(text).chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect()
}

/// Like `clean`, but keeps line breaks and tabs (for streamed and printed answers).
pub fn clean_keep_lines(text: &str) -> String {
    unescape_tags(text).chars().map(|c| if c.is_control() && c != '\n' && c != '\t' { '\u{fffd}' } else { c }).collect()
}

/// The engine escapes `<` that could open HTML in answers (for front ends that render it); a
/// terminal renders nothing, so the character is shown as written.
fn unescape_tags(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains("&lt;") {
        std::borrow::Cow::Owned(text.replace("&lt;", "<"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

fn name(path: &str) -> String {
    clean(path.rsplit('/').next().unwrap_or(path))
}

pub fn one_line(text: &str, max: usize) -> String {
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
    if r.chunks_reused > 0 {
        println!(
            "{} passages reused their stored vectors (unchanged text, or a renamed or copied file)",
            r.chunks_reused
        );
    }
    if r.orphans_removed > 0 {
        println!(
            "removed the leftover chunks of {} files that no longer exist (an earlier run was interrupted)",
            r.orphans_removed
        );
    }
    if !r.retry.is_empty() {
        println!(
            "{} files were changing while read (still being written?); run again once they are complete",
            r.retry.len()
        );
    }
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
    if let Some(target) = &s.reembedding_into {
        let pending: usize = s.folders.iter().map(|f| f.pending).sum();
        println!(
            "          moving to {target}: {pending} files still to embed; searches use the embedder above until `cairn index` completes"
        );
    }
    if s.folders.is_empty() {
        println!("no folders yet: `cairn add <folder>`");
        return;
    }
    println!();
    println!("{:>7} {:>7} {:>7} {:>7} {:>8}  folder", "indexed", "pending", "failed", "skipped", "passages");
    for f in &s.folders {
        let mut mark = if f.readable { String::new() } else { "  (unreadable now)".to_owned() };
        if let Some(why) = &f.local_only {
            mark.push_str(&format!("  [local-only: {why}]"));
        }
        println!(
            "{:>7} {:>7} {:>7} {:>7} {:>8}  {}{mark}",
            f.indexed,
            f.pending,
            f.failed,
            f.skipped,
            f.chunks,
            clean(&f.path)
        );
    }
    if s.queued_changes > 0 {
        println!("{} changed paths queued by the watcher, not yet looked at", s.queued_changes);
    }
    println!();
    println!("left out everywhere: hidden files, {}", s.default_excludes.join(" "));
    if !s.user_excludes.is_empty() {
        println!(
            "your excludes (`cairn exclude`): {}",
            s.user_excludes.iter().map(|e| clean(e)).collect::<Vec<_>>().join(" ")
        );
    }
    let files: Vec<&String> = s.folders.iter().flat_map(|f| f.ignore_files.iter()).collect();
    if !files.is_empty() {
        println!("ignore files: {}", files.iter().map(|f| clean(f)).collect::<Vec<_>>().join(", "));
    }
    if !s.problems.is_empty() {
        println!();
        for p in &s.problems {
            let kind = match p.status {
                cairn_db_status::Indexed => "warning",
                cairn_db_status::Failed => "failed",
                cairn_db_status::Skipped => "skipped",
                cairn_db_status::Pending => "pending",
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
        AnswerMode::Abstained { reason } => {
            println!("{}", clean(&a.text));
            println!("why: {}", clean(reason));
            println!();
        }
    }
    if a.cancelled {
        println!("note: stopped at your request; the answer above is unfinished.");
    }
    if let Some(why) = &a.interrupted {
        println!("note: the answer is incomplete, the stream broke: {}", clean(why));
    }
    if !a.invalid_citations.is_empty() {
        let list: Vec<String> = a.invalid_citations.iter().map(|n| format!("[{n}]")).collect();
        println!("note: the model cited {} which it was not given; removed.", list.join(" "));
    }
    for w in &a.warnings {
        println!("note: {}", clean(w));
    }
    if let AnswerMode::Generated { provider, model } = &a.mode {
        if a.truncated {
            println!("note: the answer was cut at the token limit.");
        }
        if a.sources.is_empty() {
            println!("note: the answer cites no source; check it against the passages the model was given:");
            for c in &a.considered {
                println!(" [{}] {} ({})", c.number, name(&c.path), clean(&c.anchor.label()));
            }
        } else {
            println!("Sources:");
            for c in &a.sources {
                println!(" [{}] {} ({})", c.number, name(&c.path), clean(&c.anchor.label()));
                println!("     {}", one_line(&c.snippet, 160));
            }
        }
        let cost = match (a.cache_hit, a.cost) {
            (true, _) => format!(
                "from the cache, saved {}",
                a.saved.map(|s| s.to_string()).unwrap_or_else(|| "an unpriced call".into())
            ),
            (false, Some(c)) => format!("{c}{}", if a.tokens_estimated { " (tokens estimated)" } else { "" }),
            (false, None) => "price unknown".to_owned(),
        };
        println!(
            "— {provider} ({}), prompt {}, {} + {} tokens, {cost}, {:.1} s; conversation {} (continue with `cairn ask -c {} \"...\"`)",
            clean(model),
            a.prompt_version,
            a.prompt_tokens,
            a.completion_tokens,
            a.latency_ms as f64 / 1000.0,
            a.conversation_id.unwrap_or(0),
            a.conversation_id.unwrap_or(0)
        );
    } else {
        println!("Sources:");
        for c in &a.sources {
            println!(" [{}] {} ({})", c.number, name(&c.path), clean(&c.anchor.label()));
            println!("     {}", one_line(&c.snippet, 160));
        }
    }
    if let (Some(c), AnswerMode::Generated { .. }) = (&a.confidence, &a.mode) {
        confidence(c, a);
    }
    if let (Some(event), false) = (a.event_id, a.sources.is_empty() && a.considered.is_empty()) {
        println!(
            "— feedback: `cairn feedback {event} up|down`, or `cairn feedback {event} useful|not-useful N` for source [N]; `cairn flag {event}` to have it reviewed"
        );
    }
}

/// The confidence line under a generated answer; a low one says why and where it went.
fn confidence(c: &cairn_engine::Confidence, a: &Answer) {
    let support = match c.support {
        Some(s) => format!(", support {s:.2}"),
        None => String::new(),
    };
    println!("confidence {:.2} (retrieval {:.2}{support})", c.score, c.retrieval);
    if a.needs_review {
        match a.review_id {
            Some(id) => println!("note: low confidence: check this answer; it is in the review queue as review {id}"),
            None => println!("note: low confidence: check this answer"),
        }
        // The summary and the first few statements; `--json` has them all.
        const SHOWN: usize = 4;
        for why in c.reasons.iter().skip(1).take(SHOWN) {
            println!("  {}", clean(why));
        }
        let more = c.reasons.len().saturating_sub(1 + SHOWN);
        if more > 0 {
            println!("  … and {more} more (all of them with --json)");
        }
    }
}

pub fn eval(r: &EvalReport) {
    println!(
        "{} ({} split): {} documents, {} queries; indexing {:.0}s ({} passages embedded), queries {:.1}s",
        r.dataset, r.split, r.documents, r.queries, r.index_seconds, r.chunks_embedded, r.query_seconds
    );
    crate::learning::print_scores(&r.modes);
    println!(
        "ranker v{} (`ranked` appears once a trained ranker is active), prompt {}",
        r.ranker_version, r.prompt_version
    );
    crate::learning::print_comparison(&r.previous);
}

pub fn check(c: &cairn_engine::Consistency) {
    println!(
        "{} files indexed, {} pending, {} passages; lost: {}, duplicate passages: {}, orphaned passages: {}{}",
        c.files_indexed,
        c.files_pending,
        c.chunks,
        c.lost.len(),
        c.duplicate_chunks,
        c.orphaned_chunks,
        if c.stale.is_empty() { String::new() } else { format!(", changed on disk since indexed: {}", c.stale.len()) }
    );
    for p in &c.lost {
        println!("  lost: {}", clean(p));
    }
    for p in &c.stale {
        println!("  stale: {}", clean(p));
    }
    println!(
        "{}",
        if c.is_clean() { "the index agrees with its records" } else { "problems found: run `cairn index` to repair" }
    );
}

/// One line of the `cairn watch` transcript, or None for events too small to show.
pub fn watch_event(e: &cairn_engine::WatchEvent) -> Option<String> {
    use cairn_engine::{IndexEvent as I, WatchEvent as W};
    Some(match e {
        W::Watching { folders } => {
            format!("watching {}", folders.iter().map(|f| clean(f)).collect::<Vec<_>>().join(", "))
        }
        W::NotWatched { folder, reason } => {
            format!("not watching {}: {} (the periodic rescan covers it)", clean(folder), clean(reason))
        }
        W::Rescan { reason } => format!("full scan ({})", clean(reason)),
        W::Changed { paths } => match paths.as_slice() {
            [one] => format!("changed: {}", clean(one)),
            many => format!("changed: {} paths", many.len()),
        },
        W::Index { progress: I::FileIndexed { path, chunks } } => {
            format!("  indexed {} ({chunks} passage{})", clean(path), if *chunks == 1 { "" } else { "s" })
        }
        W::Index { progress: I::FileDeleted { path } } => format!("  removed {}", clean(path)),
        W::Index { progress: I::FileFailed { path, reason } } => {
            format!("  failed  {}: {}", clean(path), clean(reason))
        }
        W::Index { progress: I::FileSkipped { path, reason } } => {
            format!("  skipped {}: {}", clean(path), clean(reason))
        }
        W::Index { progress: I::FileChanging { path } } => {
            format!("  {} is still being written; will look again", clean(path))
        }
        W::Index { progress: I::FolderUnreadable { folder, reason } } => {
            format!("  {} is unreadable, its index is kept: {}", clean(folder), clean(reason))
        }
        W::Index { .. } => return None,
        W::Synced { report: r } => format!(
            "  up to date: {} indexed, {} removed, {} unchanged; passages embedded {}, reused {} ({:.2}s)",
            r.indexed, r.deleted, r.unchanged, r.chunks_embedded, r.chunks_reused, r.seconds
        ),
        W::SyncFailed { reason } => format!("  failed: {} (will retry)", clean(reason)),
        W::Learned { report } => {
            format!("ranker retrained on schedule: v{} {}: {}", report.version, report.status, clean(&report.decision))
        }
        W::LearnFailed { reason } => {
            format!("scheduled retraining failed: {} (the active ranker stays)", clean(reason))
        }
        W::Maintained { versions_removed, bytes_removed } => {
            format!(
                "store maintenance: {versions_removed} old versions removed, {:.1} MB freed",
                *bytes_removed as f64 / 1e6
            )
        }
    })
}
