//! `cairn review list | resolve` and `cairn flag`: the queue of answers waiting for a person's
//! verdict, and flagging an answer into it. Arguments in, engine calls, text or JSON out.

use crate::render::{clean, clean_keep_lines, one_line};
use cairn_engine::{Engine, Resolution, Review, ReviewStatus, Verdict};
use clap::{Subcommand, ValueEnum};

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Flagged answers waiting for a verdict, oldest first (with --all, resolved ones too).
    List {
        #[arg(long)]
        all: bool,
    },
    /// Mark a flagged answer right or wrong. The verdict is feedback: right marks the answer up
    /// and the sources it cited useful, wrong marks it down and them not useful.
    Resolve {
        /// The review's number, as listed.
        id: i64,
        verdict: VerdictArg,
        /// What was right or wrong, for the record.
        #[arg(long, short = 'm')]
        note: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum VerdictArg {
    Right,
    Wrong,
}

#[derive(clap::Args)]
pub struct FlagArgs {
    /// The answer: the number shown under it ("feedback: cairn feedback 12 …").
    event: i64,
    /// What looks wrong.
    #[arg(long, short = 'm')]
    note: Option<String>,
}

pub async fn review(engine: &Engine, what: ReviewCommand, json: bool) -> anyhow::Result<()> {
    match what {
        ReviewCommand::List { all } => {
            let list = engine.reviews(if all { None } else { Some(ReviewStatus::Open) })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            if list.is_empty() {
                println!("{}", if all { "nothing has been flagged for review" } else { "no answers wait for review" });
                return Ok(());
            }
            for r in &list {
                print_review(r);
            }
            if list.iter().any(|r| r.status == ReviewStatus::Open) {
                println!("resolve with `cairn review resolve ID right|wrong [--note TEXT]`");
            }
        }
        ReviewCommand::Resolve { id, verdict, note } => {
            let verdict = match verdict {
                VerdictArg::Right => Verdict::Right,
                VerdictArg::Wrong => Verdict::Wrong,
            };
            let resolution = engine.resolve_review(id, verdict, note.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&resolution)?);
            } else {
                print_resolution(&resolution);
            }
        }
    }
    Ok(())
}

pub fn flag(engine: &Engine, args: FlagArgs, json: bool) -> anyhow::Result<()> {
    let review = engine.flag_answer(args.event, args.note.as_deref())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&review)?);
    } else {
        println!("answer {} is in the review queue as review {} (`cairn review list`)", args.event, review.id);
    }
    Ok(())
}

fn status(s: ReviewStatus) -> &'static str {
    match s {
        ReviewStatus::Open => "open",
        ReviewStatus::Right => "right",
        ReviewStatus::Wrong => "wrong",
    }
}

fn print_review(r: &Review) {
    let confidence = r.confidence.map(|c| format!("confidence {c:.2}")).unwrap_or_else(|| "no confidence".into());
    let answer = r.event_id.map(|e| format!("answer {e}")).unwrap_or_else(|| "answer record gone".into());
    println!(
        "review {}  {}  flagged by {}  {confidence}  {answer}  {}",
        r.id,
        status(r.status),
        r.flagged_by,
        crate::learning::date(r.created_ms)
    );
    println!("  question: {}", one_line(&r.question, 200));
    for (i, line) in clean_keep_lines(&r.answer).lines().enumerate() {
        println!("  {} {line}", if i == 0 { "answer:  " } else { "         " });
    }
    for why in &r.reasons {
        println!("  why: {}", clean(why));
    }
    for c in &r.sources {
        println!(
            "  [{}] {} ({}): {}",
            c.number,
            clean(file(&c.path)),
            clean(&c.anchor.label()),
            one_line(&c.snippet, 120)
        );
    }
    if let Some(n) = &r.note {
        println!("  note: {}", clean(n));
    }
    if let Some(n) = &r.reviewer_note {
        println!("  reviewer: {}", clean(n));
    }
    println!();
}

fn file(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn print_resolution(r: &Resolution) {
    println!("review {} marked {}", r.review.id, status(r.review.status));
    if r.feedback.is_empty() {
        println!("  the answer's record is gone, so nothing was given to learning");
    }
    for f in &r.feedback {
        match (&f.path, f.signal) {
            (Some(path), s) => println!("  feedback: {} for {}", s.as_str().replace('_', " "), clean(path)),
            (None, s) => println!("  feedback: thumbs {} on answer {}", s.as_str(), f.event_id),
        }
    }
    if let Some(l) = &r.retrained {
        println!("  that was enough new feedback to retrain: ranker v{} {}", l.version, l.status);
    }
}
