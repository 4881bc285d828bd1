//! `cairn`: the command line over the Cairn engine.
//!
//! Thin by design: parse arguments, call the engine, render its plain-data results for people
//! (progress bars on stderr, tables on stdout) or as JSON with `--json`. No indexing, ranking or
//! prompting logic lives here.

mod governance;
mod keys;
mod learning;
mod ledger;
mod render;
mod review;

use anyhow::Context;
use cairn_engine::{AskOptions, Engine, EngineConfig, EngineError, IndexEvent, LlmChoice};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Parser)]
#[command(name = "cairn", version, about = "Ask questions about your own documents, with citations.")]
struct Cli {
    /// Where Cairn keeps its index and state (default: $CAIRN_DATA_DIR or ~/.local/share/cairn).
    #[arg(long, global = true, env = "CAIRN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Where the models are (default: $CAIRN_MODELS_DIR or ~/.local/share/cairn/models).
    #[arg(long, global = true, env = "CAIRN_MODELS_DIR")]
    models_dir: Option<PathBuf>,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register folders to index.
    Add { folders: Vec<PathBuf> },
    /// Unregister a folder and drop its chunks from the index.
    Remove { folder: PathBuf },
    /// Index registered folders (only new and changed files are read again).
    Index,
    /// Keep the index in step with the folders as they change, until Ctrl-C.
    Watch {
        /// Also rescan everything this often, in minutes, for folders whose changes raise no
        /// events (network shares, synced folders); 0 turns it off.
        #[arg(long, default_value_t = 15)]
        rescan_minutes: u64,
    },
    /// Folders, file and chunk counts, ignore rules, and every file that failed or was skipped, with why.
    Status,
    /// Check that the index agrees with its records (and, with --disk, with the files).
    Check {
        #[arg(long)]
        disk: bool,
    },
    /// Patterns (gitignore syntax) of files and folders to leave out of every folder.
    Exclude {
        #[command(subcommand)]
        what: ExcludeCommand,
    },
    /// Show the passages that best match a query.
    Search {
        query: String,
        /// How many passages to show (1 to 1000).
        #[arg(short = 'k', long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
    },
    /// Answer a question from your documents, citing numbered sources.
    Ask {
        question: String,
        /// Don't run a language model: show the best passages with citations.
        #[arg(long)]
        no_llm: bool,
        /// A GGUF chat model to run locally instead of the default.
        #[arg(long, value_name = "FILE", conflicts_with = "provider")]
        model: Option<PathBuf>,
        /// Answer with this provider (`local`, or a name from `cairn providers list`).
        #[arg(long, short = 'p')]
        provider: Option<String>,
        /// Most sources to give the model (1 to 50; default from settings, 6).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=50))]
        sources: Option<u16>,
        /// Longest answer, in tokens (default from settings, 384).
        #[arg(long, value_parser = clap::value_parser!(u32).range(16..=32768))]
        max_tokens: Option<u32>,
        /// Continue conversation ID (its earlier questions and answers are the context).
        #[arg(long, short = 'c', value_name = "ID")]
        conversation: Option<i64>,
        /// Ask the model even if the same question over the same sources was answered before.
        #[arg(long)]
        no_cache: bool,
        /// Confirm sending the question to a remote provider, when the administrator's policy
        /// asks for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// What model calls cost: by day, provider, model or folder, or every call.
    Costs(ledger::CostsArgs),
    /// Spending caps: show, set, clear.
    Budget {
        #[command(subcommand)]
        what: ledger::BudgetCommand,
    },
    /// Model providers: list, test, add, remove, use.
    Providers {
        #[command(subcommand)]
        what: ledger::ProvidersCommand,
    },
    /// API keys in the OS keyring: set (read from standard input), remove, list.
    Key {
        #[command(subcommand)]
        what: keys::KeyCommand,
    },
    /// The versioned prompts Cairn sends.
    Prompts {
        #[command(subcommand)]
        what: ledger::PromptsCommand,
    },
    /// Past conversations.
    Conversations {
        #[command(subcommand)]
        what: ledger::ConversationsCommand,
    },
    /// Judge an answer or search: thumbs up/down, or one source useful / not useful.
    Feedback(learning::FeedbackArgs),
    /// Put an answer in the review queue for a person to check.
    Flag(review::FlagArgs),
    /// The review queue: answers flagged by low confidence or by you; list, resolve right|wrong.
    Review {
        #[command(subcommand)]
        what: review::ReviewCommand,
    },
    /// Recent searches and answers with the number feedback refers to, and how many judgements each got.
    History {
        /// How many (1 to 10000), newest first.
        #[arg(short = 'n', long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=10000))]
        limit: u16,
    },
    /// Retrain the ranker from feedback now (it also retrains by itself every 20 source judgements
    /// and daily while watching: `[learning] retrain_every`, `retrain_hours` in settings.toml).
    Learn,
    /// Ranker versions: list, promote, roll back.
    Ranker {
        #[command(subcommand)]
        what: learning::RankerCommand,
    },
    /// The administrator's policy: show it, or check a policy file against your settings.
    Policy {
        #[command(subcommand)]
        what: governance::PolicyCommand,
    },
    /// Keep a folder's text on this computer: never sent to a remote provider (--off lifts it).
    LocalOnly {
        folder: PathBuf,
        #[arg(long)]
        off: bool,
    },
    /// Evaluate retrieval quality.
    Eval {
        #[command(subcommand)]
        what: EvalCommand,
    },
}

#[derive(Subcommand)]
enum ExcludeCommand {
    /// Leave out files matching these patterns, e.g. 'drafts/' or '*.log'.
    Add {
        patterns: Vec<String>,
    },
    /// Stop leaving them out.
    Remove {
        patterns: Vec<String>,
    },
    List,
}

#[derive(Subcommand)]
enum EvalCommand {
    /// A BEIR-format dataset folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), e.g. SciFact.
    /// Scores nDCG@10, Recall@10/100 and MRR for hybrid, vector-only and full-text-only
    /// retrieval, and the active ranker when it is a trained one; compared with the last run.
    Beir {
        dir: PathBuf,
        #[arg(long, default_value = "test")]
        split: String,
        /// Score only the first N judged queries.
        #[arg(long)]
        queries: Option<usize>,
    },
    /// Your golden set against your own index: one JSON object per line,
    /// {"question": "...", "expected": ["report.pdf", "notes/plan.pdf#page=3"]}.
    Golden {
        /// The golden set (JSON lines).
        file: PathBuf,
    },
    /// The learning proof on a BEIR dataset with train and test qrels: feedback simulated from
    /// the train queries only, Cairn's own retraining, scores on the test queries only. Use a
    /// data folder of its own (it erases that folder's feedback and rankers).
    Learning {
        dir: PathBuf,
        /// Learning-curve points: training queries judged before each retraining.
        #[arg(long, value_delimiter = ',', default_value = "100,200,400,100000")]
        curve: Vec<usize>,
        /// Score only the first N test queries.
        #[arg(long)]
        test_queries: Option<usize>,
    },
    /// Answer-level: ask each claim of a SciFact-style claims file against the dataset's corpus;
    /// the share of cited documents that are gold, and how often the answer declines on
    /// NOT_ENOUGH_INFO claims.
    Answers {
        dir: PathBuf,
        /// The claims (default: DIR/claims_dev.jsonl).
        #[arg(long)]
        claims: Option<PathBuf>,
        /// Only the first N claims (answers take seconds each with a local model).
        #[arg(long)]
        limit: Option<usize>,
        /// Answer with this provider (default: as `cairn ask` would).
        #[arg(long, short = 'p', conflicts_with = "no_llm")]
        provider: Option<String>,
        /// Run no model: measure only abstention by retrieval confidence (fast, every claim).
        #[arg(long)]
        no_llm: bool,
    },
}

fn main() {
    disable_runtime_telemetry();
    reset_sigpipe();
    let cli = Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            std::process::exit(1);
        }
    };
    if let Err(err) = runtime.block_on(run(cli)) {
        let code = err.downcast_ref::<EngineError>().map(|e| e.code());
        if json {
            let v = serde_json::json!({ "error": { "code": code, "message": format!("{err:#}") } });
            println!("{v}");
        } else {
            eprintln!("error: {err:#}");
        }
        std::process::exit(1);
    }
}

/// ONNX Runtime's official Linux builds carry Microsoft's 1DS telemetry (a device id under
/// ~/.cache/Microsoft and uploads to mobile.events.data.microsoft.com). Cairn promises that
/// nothing leaves the machine unless the user configures a remote model, so the runtime's own
/// switch is set before it can be loaded (the embedder also disables telemetry events through
/// the API).
#[allow(unsafe_code)] // Setting one variable first thing in main, before any thread exists.
fn disable_runtime_telemetry() {
    // SAFETY: no other thread exists yet, so nothing can read the environment concurrently.
    unsafe {
        std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
    }
}

/// `cairn search ... | head` must end quietly when `head` closes the pipe, as other Unix tools
/// do, instead of panicking in `println!`. Restoring the default SIGPIPE action does that.
#[allow(unsafe_code)] // One libc call at start-up, before any thread exists.
fn reset_sigpipe() {
    // SAFETY: setting a signal disposition to SIG_DFL has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Set by Ctrl-C or SIGTERM: `cairn watch` finishes the batch in hand and exits cleanly.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::Relaxed);
}

#[allow(unsafe_code)] // Installing a handler that only stores to an atomic (async-signal-safe).
fn stop_on_signals() {
    let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler does nothing but an atomic store, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = EngineConfig::from_env();
    if let Some(d) = cli.data_dir {
        config.data_dir = d;
    }
    if let Some(m) = cli.models_dir {
        config.models_dir = m;
    }
    let engine = Engine::open(config)?;
    let json = cli.json;
    match cli.command {
        Command::Add { folders } => {
            if folders.is_empty() {
                anyhow::bail!("name at least one folder: cairn add <folder>");
            }
            let mut added = Vec::new();
            for f in &folders {
                added.push(engine.add_folder(f)?);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&added)?);
            } else {
                for a in &added {
                    println!("added {}", a.path);
                }
                println!("run `cairn index` to index {}", if added.len() == 1 { "it" } else { "them" });
            }
        }
        Command::Remove { folder } => {
            let n = engine.remove_folder(&folder).await?;
            if json {
                println!("{}", serde_json::json!({ "removed": folder, "files": n }));
            } else {
                println!("removed {} ({n} files dropped from the index)", folder.display());
            }
        }
        Command::Index => {
            if engine.status()?.folders.is_empty() {
                anyhow::bail!("no folders to index yet: register one with `cairn add <folder>`");
            }
            let report = index_with_progress(&engine, json).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                render::index_report(&report);
            }
        }
        Command::Watch { rescan_minutes } => {
            if engine.status()?.folders.is_empty() {
                anyhow::bail!("no folders to watch yet: register one with `cairn add <folder>`");
            }
            stop_on_signals();
            let opts = cairn_engine::WatchOptions {
                rescan_every: (rescan_minutes > 0).then(|| std::time::Duration::from_secs(rescan_minutes * 60)),
                ..Default::default()
            };
            let on_event = |e: cairn_engine::WatchEvent| {
                if json {
                    if let Ok(line) = serde_json::to_string(&e) {
                        println!("{line}");
                    }
                } else if let Some(line) = render::watch_event(&e) {
                    println!("{} {line}", clock());
                }
                let _ = std::io::stdout().flush();
            };
            engine.watch(opts, &on_event, &STOP).await?;
            if !json {
                println!("{} stopped", clock());
            }
        }
        Command::Check { disk } => {
            let c = engine.check(disk).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                render::check(&c);
            }
            if !c.is_clean() {
                std::process::exit(2);
            }
        }
        Command::Exclude { what } => {
            let mut current = engine.excludes()?;
            match what {
                ExcludeCommand::Add { patterns } => {
                    for p in patterns {
                        if !current.contains(&p) {
                            current.push(p);
                        }
                    }
                    engine.set_excludes(&current)?;
                }
                ExcludeCommand::Remove { patterns } => {
                    let before = current.len();
                    current.retain(|p| !patterns.contains(p));
                    if current.len() + patterns.len() != before {
                        let missing: Vec<&String> =
                            patterns.iter().filter(|p| !engine.excludes().unwrap_or_default().contains(p)).collect();
                        anyhow::bail!("not an exclude pattern: {missing:?} (see `cairn exclude list`)");
                    }
                    engine.set_excludes(&current)?;
                }
                ExcludeCommand::List => {}
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&current)?);
            } else if current.is_empty() {
                println!("no excludes of your own (built-in rules: see `cairn status`)");
            } else {
                for p in &current {
                    println!("{p}");
                }
                println!("(takes effect at the next `cairn index` or while `cairn watch` runs)");
            }
        }
        Command::Status => {
            let status = engine.status()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                render::status(&status);
            }
        }
        Command::Search { query, limit } => {
            let ranked = engine.search_ranked(&query, usize::from(limit)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&ranked)?);
            } else {
                if let Some(w) = &ranked.warning {
                    eprintln!("warning: {}", render::clean(w));
                }
                render::hits(&ranked.hits);
                if let (Some(event), false) = (ranked.event_id, ranked.hits.is_empty()) {
                    println!(
                        "ranked by ranker v{}; feedback: `cairn feedback {event} useful|not-useful N`",
                        ranked.ranker_version
                    );
                }
            }
        }
        Command::Costs(args) => ledger::costs(&engine, args, json)?,
        Command::Budget { what } => ledger::budget(&engine, what, json)?,
        Command::Providers { what } => ledger::providers(&engine, what, json).await?,
        Command::Key { what } => keys::key(&engine, what, json)?,
        Command::Prompts { what } => ledger::prompts(&engine, what, json)?,
        Command::Conversations { what } => ledger::conversations(&engine, what, json)?,
        Command::Feedback(args) => learning::feedback(&engine, args, json).await?,
        Command::Flag(args) => review::flag(&engine, args, json)?,
        Command::Review { what } => review::review(&engine, what, json).await?,
        Command::Learn => learning::learn(&engine, json).await?,
        Command::Policy { what } => governance::policy(&engine, what, json)?,
        Command::LocalOnly { folder, off } => governance::local_only(&engine, folder, off, json)?,
        Command::History { limit } => learning::history(&engine, usize::from(limit), json)?,
        Command::Ranker { what } => learning::ranker(&engine, what, json)?,
        Command::Eval { what: EvalCommand::Golden { file } } => {
            let report = engine.eval_golden(&file).await.context("evaluation failed")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                learning::print_golden(&report);
            }
        }
        Command::Eval { what: EvalCommand::Answers { dir, claims, limit, provider, no_llm } } => {
            let bar = corpus_bar();
            let on_event = |e: IndexEvent| corpus_progress(&bar, e);
            let claims = claims.unwrap_or_else(|| dir.join("claims_dev.jsonl"));
            let llm = match (no_llm, provider) {
                (true, _) => LlmChoice::None,
                (false, Some(p)) => LlmChoice::Provider(p),
                (false, None) => LlmChoice::Auto,
            };
            let done = std::sync::atomic::AtomicUsize::new(0);
            let on_claim = |c: &cairn_engine::ClaimResult| {
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if !json {
                    bar.suspend(|| learning::print_claim(n, c));
                }
            };
            let report = engine
                .eval_answers(&dir, &claims, limit, llm, &on_event, &on_claim)
                .await
                .context("the answer evaluation failed")?;
            bar.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                learning::print_answers(&report);
            }
        }
        Command::Eval { what: EvalCommand::Learning { dir, curve, test_queries } } => {
            let bar = corpus_bar();
            let on_event = |e: IndexEvent| corpus_progress(&bar, e);
            let on_point = |p: &cairn_engine::LearningPoint| {
                if json {
                    return;
                }
                bar.suspend(|| learning::print_point(p));
            };
            let report = engine
                .eval_learning(&dir, &curve, test_queries, &on_event, &on_point)
                .await
                .context("the learning evaluation failed")?;
            bar.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                learning::print_learning(&report);
            }
        }
        Command::Ask { question, no_llm, model, provider, sources, max_tokens, conversation, no_cache, yes } => {
            let llm = if no_llm {
                LlmChoice::None
            } else if let Some(path) = model {
                LlmChoice::Local(path)
            } else if let Some(name) = provider {
                LlmChoice::Provider(name)
            } else {
                LlmChoice::Auto
            };
            // Ctrl-C stops the answer, keeps what was written, and still records its cost.
            stop_on_signals();
            let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = cancel.clone();
            tokio::spawn(async move {
                while !STOP.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            let opts = AskOptions {
                llm,
                max_sources: sources.map(usize::from),
                max_answer_tokens: max_tokens,
                conversation,
                use_cache: !no_cache,
                cancel: Some(cancel),
                confirmed: yes,
            };
            let streamed = Mutex::new(false);
            let on_token = |t: &str| {
                if !json {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(render::clean_keep_lines(t).as_bytes());
                    let _ = out.flush();
                    if let Ok(mut s) = streamed.lock() {
                        *s = true;
                    }
                }
            };
            let spinner = (!json).then(|| {
                let s = ProgressBar::new_spinner().with_message("retrieving and thinking…");
                s.enable_steady_tick(std::time::Duration::from_millis(120));
                s
            });
            let first = Mutex::new(spinner);
            let on_token_with_spinner = |t: &str| {
                if let Ok(mut s) = first.lock()
                    && let Some(sp) = s.take()
                {
                    sp.finish_and_clear();
                }
                on_token(t);
            };
            let mut answer = engine.ask(&question, &opts, &on_token_with_spinner).await;
            if let Ok(mut s) = first.lock()
                && let Some(sp) = s.take()
            {
                sp.finish_and_clear();
            }
            // The policy wants a confirmation: ask for it at a terminal, then try once more.
            if let Err(EngineError::ConfirmationRequired(msg)) = &answer
                && !json
                && std::io::IsTerminal::is_terminal(&std::io::stdin())
            {
                eprint!("{}\nsend it? [y/N] ", msg.trim_end_matches(": run again with --yes"));
                let mut reply = String::new();
                let _ = std::io::stdin().read_line(&mut reply);
                if matches!(reply.trim(), "y" | "Y" | "yes") {
                    let opts = AskOptions { confirmed: true, ..opts.clone() };
                    answer = engine.ask(&question, &opts, &on_token).await;
                }
            }
            let answer = answer?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                render::answer(&answer, streamed.lock().map(|s| *s).unwrap_or(false));
            }
        }
        Command::Eval { what: EvalCommand::Beir { dir, split, queries } } => {
            let bar = corpus_bar();
            let on_event = |e: IndexEvent| corpus_progress(&bar, e);
            let report = engine.eval_beir(&dir, &split, queries, &on_event).await.context("evaluation failed")?;
            bar.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                render::eval(&report);
            }
        }
    }
    Ok(())
}

/// The progress bar of an evaluation's corpus indexing (hidden when the corpus is indexed already).
fn corpus_bar() -> ProgressBar {
    let bar = ProgressBar::new(0).with_style(bar_style("{msg} [{bar:40}] {pos}/{len} chunks ({per_sec}, eta {eta})"));
    bar.set_message("embedding corpus");
    bar
}

fn corpus_progress(bar: &ProgressBar, e: IndexEvent) {
    match e {
        IndexEvent::Embedded { chunks } => {
            if chunks as u64 > bar.length().unwrap_or(0) {
                bar.set_length(chunks as u64 + 512);
            }
            bar.set_position(chunks as u64);
        }
        IndexEvent::Finalizing => bar.set_message("building full-text index"),
        _ => {}
    }
}

/// Local wall-clock time for transcript lines (UTC when the offset is unknown).
fn clock() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("{:02}:{:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60, secs % 60)
}

async fn index_with_progress(engine: &Engine, json: bool) -> anyhow::Result<cairn_engine::IndexReport> {
    let bar = ProgressBar::new(0).with_style(bar_style("{spinner} {msg}"));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let state = Mutex::new((0u64, 0usize));
    let on_event = |e: IndexEvent| match e {
        IndexEvent::Scanning { folder } => bar.set_message(format!("scanning {folder}")),
        IndexEvent::FolderUnreadable { folder, reason } => {
            bar.println(format!("warning: {folder} is unreadable, its index is kept as it was: {reason}"))
        }
        IndexEvent::Planned { to_check, unchanged, deleted } => {
            bar.set_style(bar_style("{spinner} [{bar:40}] {pos}/{len} files  {msg}"));
            bar.set_length(to_check as u64);
            bar.set_message(format!("{unchanged} unchanged, {deleted} deleted"));
        }
        IndexEvent::FileIndexed { .. } | IndexEvent::FileUnchanged { .. } => bar.inc(1),
        IndexEvent::FileFailed { path, reason } => {
            bar.inc(1);
            if !json {
                bar.println(format!("failed  {path}: {reason}"));
            }
        }
        IndexEvent::FileSkipped { path, reason } => {
            bar.inc(1);
            if !json {
                bar.println(format!("skipped {path}: {reason}"));
            }
        }
        IndexEvent::Embedded { chunks } => {
            if let Ok(mut s) = state.lock() {
                s.1 = chunks;
            }
            bar.set_message(format!("{chunks} passages embedded"));
        }
        IndexEvent::FileChanging { path } => {
            bar.inc(1);
            if !json {
                bar.println(format!(
                    "busy    {path}: changed while being read (still being written?); will be indexed next time"
                ));
            }
        }
        IndexEvent::FileDeleted { .. } => {}
        IndexEvent::Finalizing => bar.set_message("updating the full-text index"),
        IndexEvent::EmbedderSwitched { embedder } => {
            if !json {
                bar.println(format!("every file is now embedded with {embedder}; searches use it from now on"));
            }
        }
    };
    let report = engine.index(&on_event).await?;
    bar.finish_and_clear();
    Ok(report)
}
