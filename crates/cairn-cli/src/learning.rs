//! `cairn feedback`, `cairn learn`, `cairn ranker` and the learning evaluations
//! (`cairn eval golden`, `cairn eval learning`): arguments in, engine calls, tables or JSON out.

use crate::render::clean;
use cairn_engine::{
    AnswerEvalReport, ClaimResult, Comparison, Engine, FeedbackReceipt, GoldenReport, LearnReport, LearningPoint,
    LearningReport, ModeScores, RankerInfo, Signal,
};
use clap::{Subcommand, ValueEnum};

#[derive(Clone, Copy, ValueEnum)]
pub enum Judgement {
    /// The whole answer was right / helpful.
    Up,
    /// The whole answer was wrong / unhelpful.
    Down,
    /// Source N helped.
    Useful,
    /// Source N did not help.
    NotUseful,
    /// You opened source N (a weaker sign that it helped).
    Opened,
}

impl Judgement {
    fn signal(self) -> Signal {
        match self {
            Judgement::Up => Signal::Up,
            Judgement::Down => Signal::Down,
            Judgement::Useful => Signal::Useful,
            Judgement::NotUseful => Signal::NotUseful,
            Judgement::Opened => Signal::Opened,
        }
    }
}

#[derive(clap::Args)]
pub struct FeedbackArgs {
    /// The answer or search to judge: the number shown under it ("feedback: cairn feedback 12 …").
    event: i64,
    judgement: Judgement,
    /// For useful / not-useful / opened: the source's number as shown ([1], [2], …).
    source: Option<usize>,
    /// A note on what was wrong or right.
    #[arg(long, short = 'm')]
    comment: Option<String>,
}

#[derive(Subcommand)]
pub enum RankerCommand {
    /// Every ranker version: status, training data, metrics, and why it was or was not promoted.
    List {
        /// Also show each version's feature weights.
        #[arg(long)]
        weights: bool,
    },
    /// Make a version the active ranker (the current one is retired).
    Promote {
        /// The version, as listed: 3 or v3.
        #[arg(value_parser = parse_version)]
        version: i64,
    },
    /// Undo the latest promotion: the ranker it replaced is active again (repeat to go further back).
    Rollback,
}

fn parse_version(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['v', 'V']).unwrap_or(s);
    digits.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| format!("`{s}` is not a ranker version like 3 or v3"))
}

pub async fn feedback(engine: &Engine, args: FeedbackArgs, json: bool) -> anyhow::Result<()> {
    let receipt = engine.feedback(args.event, args.judgement.signal(), args.source, args.comment.as_deref()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&receipt)?);
    } else {
        print_receipt(&receipt);
    }
    Ok(())
}

fn print_receipt(r: &FeedbackReceipt) {
    match (&r.path, r.signal) {
        (Some(path), s) => {
            println!("recorded: {} for {} (on {})", s.as_str().replace('_', " "), clean(path), r.event_id)
        }
        (None, s) => println!("recorded: thumbs {} on {}", s.as_str(), r.event_id),
    }
    if let Some(l) = &r.retrained {
        println!("that was enough new feedback to retrain:");
        print_learn(l);
    }
    if let Some(e) = &r.retrain_error {
        println!("note: retraining was due but did not run: {}", clean(e));
    }
}

pub async fn learn(engine: &Engine, json: bool) -> anyhow::Result<()> {
    let report = engine.learn().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_learn(&report);
    }
    Ok(())
}

fn print_learn(l: &LearnReport) {
    println!(
        "ranker v{} trained on {} judged searches ({} pairs) in {} ms: {}",
        l.version, l.train_events, l.train_pairs, l.train_ms, l.status
    );
    println!("  {}", clean(&l.decision));
    if l.skipped_events > 0 {
        println!("  note: {} judged searches were left out: their records could not be read", l.skipped_events);
    }
}

pub fn ranker(engine: &Engine, what: RankerCommand, json: bool) -> anyhow::Result<()> {
    match what {
        RankerCommand::List { weights } => {
            let list = engine.rankers()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_rankers(&list, weights);
            }
        }
        RankerCommand::Promote { version } => {
            let changed = engine.promote_ranker(version)?;
            if json {
                println!("{}", serde_json::json!({ "active": version, "changed": changed }));
            } else if changed {
                println!("ranker v{version} is active: searches and answers use it from now on");
            } else {
                println!("ranker v{version} is already active");
            }
        }
        RankerCommand::Rollback => {
            let version = engine.rollback_ranker()?;
            if json {
                println!("{}", serde_json::json!({ "active": version, "automatic_promotion": "paused" }));
            } else {
                println!("rolled back: ranker v{version} is active again");
                println!(
                    "automatic retraining keeps training but will not promote until you run `cairn learn` or `cairn ranker promote`"
                );
            }
        }
    }
    Ok(())
}

pub(crate) fn date(ms: i64) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "?".into())
}

fn pair(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{a:.3}→{b:.3}"),
        _ => "—".into(),
    }
}

fn print_rankers(list: &[RankerInfo], weights: bool) {
    println!(
        "{:>4} {:<11} {:<16} {:>7} {:>6} {:>14} {:>14}  decision",
        "ver", "status", "created", "events", "pairs", "held-out nDCG", "golden nDCG"
    );
    for r in list {
        let m = &r.metrics;
        let judged =
            |x: &Option<cairn_engine::FeedbackMetrics>| x.as_ref().filter(|x| x.events > 0).map(|x| x.ndcg_at_10);
        let held = pair(judged(&m.held_out_active), judged(&m.held_out_candidate));
        println!(
            "{:>4} {:<11} {:<16} {:>7} {:>6} {:>14} {:>14}  {}",
            format!("v{}", r.version),
            r.status,
            date(r.created_ms),
            r.train_events,
            r.train_pairs,
            held,
            pair(m.golden_active, m.golden_candidate),
            clean(&r.decision)
        );
        if weights {
            let w: Vec<String> =
                r.weights.iter().filter(|(_, w)| w.abs() > 1e-4).map(|(n, w)| format!("{n} {w:+.3}")).collect();
            println!("     weights: {}", if w.is_empty() { "(none)".into() } else { w.join(", ") });
        }
    }
    println!("(held-out and golden columns: the ranker it was compared with → this one)");
}

fn scores_header() {
    println!("{:<8} {:>8} {:>9} {:>10} {:>7}", "mode", "nDCG@10", "Recall@10", "Recall@100", "MRR");
}

fn scores_row(m: &ModeScores) {
    println!("{:<8} {:>8.4} {:>9.4} {:>10.4} {:>7.4}", m.mode, m.ndcg_at_10, m.recall_at_10, m.recall_at_100, m.mrr);
}

pub fn print_scores(modes: &[ModeScores]) {
    scores_header();
    for m in modes {
        scores_row(m);
    }
}

pub fn print_comparison(c: &Option<Comparison>) {
    let Some(c) = c else {
        println!("first run on this dataset: nothing to compare with");
        return;
    };
    let ranker = c.previous_ranker.map(|v| format!("ranker v{v}")).unwrap_or_else(|| "?".into());
    println!("compared with run {} ({}, {ranker}):", c.previous_run, date(c.previous_at_ms));
    for (metric, before, after) in &c.changes {
        println!("  {metric:<10} {before:.4} → {after:.4} ({:+.4})", after - before);
    }
    if c.regressions.is_empty() {
        println!("no regression");
    } else {
        println!("REGRESSION in {}", c.regressions.join(", "));
    }
}

pub fn print_golden(r: &GoldenReport) {
    println!("{}: {} questions, ranker v{}", clean(&r.file), r.questions, r.ranker_version);
    for q in &r.per_question {
        let rank = q.first_rank.map(|r| format!("#{r}")).unwrap_or_else(|| "not in the top 100".into());
        println!("  {:>5.3}  {:<20} {}", q.ndcg_at_10, rank, crate::render::one_line(&q.question, 70));
    }
    print_scores(std::slice::from_ref(&r.scores));
    print_comparison(&r.previous);
    for u in &r.unmatched {
        println!("warning: expected `{}` matches no indexed file (a typo, or not indexed yet?)", clean(u));
    }
}

pub fn print_point(p: &LearningPoint) {
    println!(
        "after {:>4} training queries ({} judged searches, {} judgements): {} v{} ({} ms); test nDCG@10 {:.4}, Recall@100 {:.4}, MRR {:.4}",
        p.train_queries,
        p.judged_events,
        p.judgements,
        p.learn.status,
        p.learn.version,
        p.learn.train_ms,
        p.test.ndcg_at_10,
        p.test.recall_at_100,
        p.test.mrr
    );
}

pub fn print_learning(r: &LearningReport) {
    println!();
    println!(
        "{}: feedback simulated from the train qrels only, measured on {} test queries ({:.0} s, {} automatic retrainings)",
        r.dataset, r.test_queries, r.simulate_seconds, r.automatic_retrains
    );
    println!("{:>15} {:>8} {:>10} {:>7}  ranker", "train queries", "nDCG@10", "Recall@100", "MRR");
    println!(
        "{:>15} {:>8.4} {:>10.4} {:>7.4}  untuned fusion",
        0, r.baseline.ndcg_at_10, r.baseline.recall_at_100, r.baseline.mrr
    );
    for p in &r.points {
        println!(
            "{:>15} {:>8.4} {:>10.4} {:>7.4}  v{} active ({})",
            p.train_queries, p.test.ndcg_at_10, p.test.recall_at_100, p.test.mrr, p.active_version, p.learn.status
        );
    }
    println!();
    print_rankers(&r.rankers, true);
}

pub fn print_claim(n: usize, c: &ClaimResult) {
    let gold_cited = c.cited.iter().filter(|d| c.gold.contains(d)).count();
    let confidence = c.confidence.as_ref().map(|c| format!("confidence {:.2}", c.score)).unwrap_or_default();
    let flagged = if c.flagged { "  flagged for review" } else { "" };
    println!(
        "{n:>4}. claim {:<6} {:<16} {:<9}  cited {} ({} gold)  {confidence}{flagged}",
        c.id,
        c.label,
        c.outcome,
        c.cited.len(),
        gold_cited
    );
}

pub fn print_answers(r: &AnswerEvalReport) {
    let share = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    println!();
    println!(
        "{}: {} claims answered by {} in {:.0} s; abstaining below confidence {:.2}",
        clean(&r.claims_file),
        r.claims,
        clean(&r.answered_by),
        r.seconds,
        r.min_confidence
    );
    println!(
        "claims with evidence: {:>4}; abstained {} ({:.3}); answers citing a gold document {} ({:.2}); cited documents that are gold {:.2}; declined {}; cited nothing {}; flagged for review {}",
        r.with_evidence,
        r.evidence_abstained,
        share(r.evidence_abstained, r.with_evidence),
        r.citing_gold,
        share(r.citing_gold, r.with_evidence),
        r.cited_gold_share,
        r.evidence_declined,
        r.evidence_uncited,
        r.evidence_flagged
    );
    println!(
        "NOT_ENOUGH_INFO claims: {:>4}; abstained {} ({:.3}); declined {} ({:.3}); answered with citations anyway {} ({:.3}); answered citing nothing {} ({:.3}); answers flagged for review {}; no model ran on {} ({:.3})",
        r.nei_claims,
        r.nei_abstained,
        share(r.nei_abstained, r.nei_claims),
        r.nei_declined,
        share(r.nei_declined, r.nei_claims),
        r.nei_answered,
        share(r.nei_answered, r.nei_claims),
        r.nei_uncited,
        share(r.nei_uncited, r.nei_claims),
        r.nei_flagged,
        r.nei_passages,
        share(r.nei_passages, r.nei_claims)
    );
    println!("abstention by retrieval confidence alone, this run at other thresholds:");
    println!("  threshold  NOT_ENOUGH_INFO abstained  evidence claims lost  (gold found by retrieval)");
    for p in &r.sweep {
        let mark = if (p.threshold - r.min_confidence).abs() < 1e-6 { "  <- [answer] min_confidence" } else { "" };
        println!(
            "  {:>9.2}  {:>25.3}  {:>20.3}  {:>25.3}{mark}",
            p.threshold, p.nei_abstained, p.evidence_abstained, p.found_evidence_abstained
        );
    }
}

pub fn history(engine: &Engine, limit: usize, json: bool) -> anyhow::Result<()> {
    let list = engine.searches(limit)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("no searches or answers yet");
        return Ok(());
    }
    println!("{:>6} {:<16} {:>6} {:>10}  query", "id", "when", "ranker", "judgements");
    for r in &list {
        let ranker = r.ranker_version.map(|v| format!("v{v}")).unwrap_or_default();
        let kind = if r.question_id.is_some() { "ask" } else { "search" };
        println!(
            "{:>6} {:<16} {:>6} {:>10}  {kind}: {}",
            r.event_id,
            date(r.at_ms),
            ranker,
            r.judgements,
            crate::render::one_line(&r.query, 80)
        );
    }
    println!("judge one with `cairn feedback ID up|down` or `cairn feedback ID useful|not-useful N`");
    Ok(())
}
