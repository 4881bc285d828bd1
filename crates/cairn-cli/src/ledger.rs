//! `cairn costs`, `cairn budget`, `cairn providers`, `cairn prompts` and `cairn conversations`:
//! arguments in, engine calls, tables or JSON out.

use crate::render::{clean, one_line};
use anyhow::Context;
use cairn_engine::{
    BudgetStatus, CallRow, CostQuery, CostReport, Engine, GroupBy, Money, ProviderCheck, ProviderKind,
    ProviderSettings, Settings,
};
use clap::{Subcommand, ValueEnum};

#[derive(Clone, Copy, ValueEnum)]
pub enum By {
    Day,
    Provider,
    Model,
    Folder,
}

#[derive(clap::Args)]
pub struct CostsArgs {
    /// How to group the calls.
    #[arg(long, value_enum, default_value = "day")]
    by: By,
    /// First day included: YYYY-MM-DD, or 7d / 30d for the last days (default: 30d).
    #[arg(long, default_value = "30d")]
    since: String,
    /// Last day included, YYYY-MM-DD (default: today).
    #[arg(long)]
    until: Option<String>,
    /// CSV on stdout (for spreadsheets).
    #[arg(long, conflicts_with = "calls")]
    csv: bool,
    /// Every call instead of groups: the ledger's rows.
    #[arg(long)]
    calls: bool,
}

/// Milliseconds of local midnight starting `day` (YYYY-MM-DD), or `n` days ago for `Nd`.
fn day_start(spec: &str, what: &str) -> anyhow::Result<i64> {
    use chrono::{Local, NaiveDate, TimeZone};
    let date = if let Some(n) = spec.strip_suffix('d').and_then(|n| n.parse::<i64>().ok()) {
        Local::now().date_naive() - chrono::Duration::days((n - 1).max(0))
    } else {
        NaiveDate::parse_from_str(spec, "%Y-%m-%d")
            .with_context(|| format!("{what} `{spec}` is not a date like 2026-12-01 or a span like 7d"))?
    };
    let midnight = date.and_hms_opt(0, 0, 0).context("midnight")?;
    Ok(Local.from_local_datetime(&midnight).earliest().context("no such local time")?.timestamp_millis())
}

pub fn costs(engine: &Engine, args: CostsArgs, json: bool) -> anyhow::Result<()> {
    let from_ms = day_start(&args.since, "--since")?;
    let to_ms = match &args.until {
        Some(u) => day_start(u, "--until")? + 86_400_000,
        None => i64::MAX,
    };
    if args.calls {
        let rows = engine.calls(from_ms, to_ms)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            print_calls(&rows);
        }
        return Ok(());
    }
    let group_by = match args.by {
        By::Day => GroupBy::Day,
        By::Provider => GroupBy::Provider,
        By::Model => GroupBy::Model,
        By::Folder => GroupBy::Folder,
    };
    let report = engine.costs(CostQuery { from_ms, to_ms, group_by })?;
    if args.csv {
        print!("{}", report.to_csv());
    } else if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_costs(&report);
    }
    Ok(())
}

fn money_or_unpriced(cost: Money, unpriced: u64) -> String {
    if unpriced > 0 { format!("{cost} (+{unpriced} unpriced)") } else { cost.to_string() }
}

fn print_costs(r: &CostReport) {
    if r.total.calls == 0 {
        println!("no model calls recorded in this period");
        return;
    }
    let head = match r.group_by {
        GroupBy::Day => "day",
        GroupBy::Provider => "provider",
        GroupBy::Model => "provider / model",
        GroupBy::Folder => "folder",
    };
    let width = r.lines.iter().map(|l| l.key.chars().count()).max().unwrap_or(5).clamp(5, 60);
    println!(
        "{head:<width$}  {:>6}  {:>10}  {:>9}  {:>8}  {:>12}  {:>6}  {:>10}",
        "calls", "in tokens", "cached", "out", "cost", "cache", "saved"
    );
    for l in r.lines.iter().chain(std::iter::once(&r.total)) {
        if std::ptr::eq(l, &r.total) {
            println!("{}", "-".repeat(width + 74));
        }
        println!(
            "{:<width$}  {:>6}  {:>10}  {:>9}  {:>8}  {:>12}  {:>6}  {:>10}",
            one_line(&l.key, width),
            l.calls,
            l.input_tokens,
            l.cached_tokens,
            l.output_tokens,
            money_or_unpriced(l.cost, l.unpriced_calls),
            l.cache_hits,
            l.saved.to_string()
        );
    }
    let t = &r.total;
    let mut notes = Vec::new();
    if t.estimated_calls > 0 {
        notes.push(format!("{} calls with tokens counted by Cairn (the provider sent no usage)", t.estimated_calls));
    }
    if t.cancelled > 0 {
        notes.push(format!("{} cancelled (still billed for what they generated)", t.cancelled));
    }
    if t.failed > 0 {
        notes.push(format!("{} failed", t.failed));
    }
    if t.refused > 0 {
        notes.push(format!("{} refused by a budget (not sent)", t.refused));
    }
    if t.unpriced_calls > 0 {
        notes.push(format!(
            "{} calls to models with no known price: add one under [[prices]] in settings.toml",
            t.unpriced_calls
        ));
    }
    for n in notes {
        println!("note: {n}");
    }
}

fn print_calls(rows: &[CallRow]) {
    if rows.is_empty() {
        println!("no model calls recorded in this period");
        return;
    }
    println!(
        "{:>5}  {:<19}  {:<11}  {:<8}  {:<28}  {:>6}  {:>6}  {:>5}  {:>7}  {:>12}  outcome",
        "id", "time", "kind", "provider", "model", "in", "cached", "out", "ms", "cost"
    );
    for r in rows {
        let c = &r.call;
        let time = chrono::TimeZone::timestamp_millis_opt(&chrono::Local, c.at_ms)
            .single()
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let cost = match c.cost_nanos {
            Some(n) => Money(n).to_string(),
            None => "unpriced".into(),
        };
        let mut outcome =
            serde_json::to_value(c.outcome).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        if c.cache_hit {
            outcome = format!("cache hit (saved {})", Money(c.saved_nanos));
        }
        if let Some(code) = &c.error_code {
            outcome = format!("{outcome}: {code}");
        }
        if c.estimated {
            outcome.push_str(", tokens estimated");
        }
        if let (cairn_engine::Outcome::Refused, Some(e)) = (c.outcome, c.estimate_nanos) {
            outcome.push_str(&format!(", would have cost about {}", Money(e)));
        }
        let kind = serde_json::to_value(c.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        println!(
            "{:>5}  {:<19}  {:<11}  {:<8}  {:<28}  {:>6}  {:>6}  {:>5}  {:>7}  {:>12}  {}{}",
            r.id,
            time,
            kind,
            one_line(&c.provider, 8),
            one_line(&c.model, 28),
            c.input_tokens,
            c.cached_tokens,
            c.output_tokens,
            c.latency_ms,
            cost,
            outcome,
            c.question_id.map(|q| format!(" (question {q})")).unwrap_or_default()
        );
    }
}

#[derive(Subcommand)]
pub enum BudgetCommand {
    /// Caps, what has been spent against them, and what happens past them.
    Show,
    /// Set caps in dollars (0 = nothing may be spent); for one provider with --provider.
    Set {
        #[arg(long)]
        daily: Option<f64>,
        #[arg(long)]
        monthly: Option<f64>,
        #[arg(long)]
        provider: Option<String>,
        /// Warn when a cap is this full, 0 to 1.
        #[arg(long)]
        warn_at: Option<f64>,
        /// When a call would exceed a cap, answer with this provider (e.g. local) instead of refusing.
        #[arg(long)]
        fallback: Option<String>,
    },
    /// Remove caps (all of them, or one provider's).
    Clear {
        #[arg(long)]
        provider: Option<String>,
    },
}

pub fn budget(engine: &Engine, cmd: BudgetCommand, json: bool) -> anyhow::Result<()> {
    let mut s = engine.settings()?;
    match cmd {
        BudgetCommand::Show => {}
        BudgetCommand::Set { daily, monthly, provider, warn_at, fallback } => {
            match provider {
                Some(p) => {
                    let b = s.budget.providers.entry(p).or_default();
                    b.daily_usd = daily.or(b.daily_usd);
                    b.monthly_usd = monthly.or(b.monthly_usd);
                }
                None => {
                    s.budget.daily_usd = daily.or(s.budget.daily_usd);
                    s.budget.monthly_usd = monthly.or(s.budget.monthly_usd);
                }
            }
            if let Some(w) = warn_at {
                s.budget.warn_at = w;
            }
            if let Some(f) = fallback {
                s.chat.fallback = if f.is_empty() || f == "none" { None } else { Some(f) };
            }
            engine.save_settings(&s)?;
        }
        BudgetCommand::Clear { provider } => {
            match provider {
                Some(p) => {
                    s.budget.providers.remove(&p);
                }
                None => {
                    s.budget.daily_usd = None;
                    s.budget.monthly_usd = None;
                    s.budget.providers.clear();
                }
            }
            engine.save_settings(&s)?;
        }
    }
    let status = engine.budget_status()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_budget(&status);
    }
    Ok(())
}

/// A text gauge: `[########------------] 42%`.
fn gauge(used: f64) -> String {
    let filled = ((used.clamp(0.0, 1.0)) * 20.0).round() as usize;
    format!("[{}{}] {:>3.0}%", "#".repeat(filled), "-".repeat(20 - filled), used * 100.0)
}

fn print_budget(b: &BudgetStatus) {
    println!("spent today {}, this month {}", b.spent_today, b.spent_this_month);
    if b.gauges.is_empty() {
        println!("no budget caps set (cairn budget set --daily 1 --monthly 20)");
    }
    for g in &b.gauges {
        let scope = match (&g.provider, g.window) {
            (None, cairn_engine::BudgetWindow::Daily) => "today".to_owned(),
            (None, cairn_engine::BudgetWindow::Monthly) => "this month".to_owned(),
            (Some(p), cairn_engine::BudgetWindow::Daily) => format!("{p}, today"),
            (Some(p), cairn_engine::BudgetWindow::Monthly) => format!("{p}, this month"),
        };
        let flag = if g.used >= 1.0 {
            "  FULL"
        } else if g.used >= b.warn_at {
            "  warning"
        } else {
            ""
        };
        println!("{scope:<24} {} {} of {}{flag}", gauge(g.used), g.spent, g.limit);
    }
    match &b.fallback {
        Some(f) => println!("past a cap, questions are answered by `{f}`"),
        None => println!("past a cap, calls are refused (set a fallback: cairn budget set --fallback local)"),
    }
}

#[derive(Subcommand)]
pub enum ProvidersCommand {
    /// Configured providers, which one answers, and how each is priced.
    List,
    /// Send each provider (or one) a one-token request and report what happened.
    Test {
        name: Option<String>,
    },
    /// Add or replace a provider.
    Add {
        name: String,
        /// openai (any OpenAI-compatible server) or anthropic.
        #[arg(long, value_enum)]
        kind: Kind,
        /// e.g. http://localhost:11434/v1 (Ollama); default: the vendor's API.
        #[arg(long)]
        base_url: Option<String>,
        #[arg(long)]
        model: String,
        /// An embedding model served by the same provider (openai kind only).
        #[arg(long)]
        embedding_model: Option<String>,
        /// Tokens the model takes (prompt + answer).
        #[arg(long)]
        context_window: Option<usize>,
        /// Dollars per million input tokens, for models Cairn has no price for.
        #[arg(long, requires = "output_price")]
        input_price: Option<f64>,
        /// Dollars per million output tokens.
        #[arg(long, requires = "input_price")]
        output_price: Option<f64>,
        /// Treat it as remote even on this machine: a local proxy or gateway that forwards to a
        /// cloud service. Local-only folders and the policy's remote rules then apply to it.
        #[arg(long)]
        remote: bool,
        /// Confirm adding it when the administrator's policy asks for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    Remove {
        name: String,
    },
    /// Answer with this provider from now on (`local` for the built-in model).
    Use {
        name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    Openai,
    Anthropic,
}

pub async fn providers(engine: &Engine, cmd: ProvidersCommand, json: bool) -> anyhow::Result<()> {
    let mut s = engine.settings()?;
    match cmd {
        ProvidersCommand::List => {}
        ProvidersCommand::Test { name } => {
            let checks = engine.test_providers(name.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&checks)?);
            } else {
                print_checks(&checks);
            }
            if checks.iter().any(|c| !c.ok) {
                std::process::exit(2);
            }
            return Ok(());
        }
        ProvidersCommand::Add {
            name,
            kind,
            base_url,
            model,
            embedding_model,
            context_window,
            input_price,
            output_price,
            remote,
            yes,
        } => {
            s.providers.retain(|p| p.name != name);
            s.providers.push(ProviderSettings {
                name,
                kind: match kind {
                    Kind::Openai => ProviderKind::Openai,
                    Kind::Anthropic => ProviderKind::Anthropic,
                },
                base_url,
                model,
                embedding_model,
                context_window,
                price: input_price.map(|input| cairn_engine::ProviderPrice {
                    input,
                    cached_input: None,
                    output: output_price.unwrap_or(0.0),
                }),
                remote: remote.then_some(true),
                ..Default::default()
            });
            engine.check_new_provider(&s, yes)?;
            engine.save_settings(&s)?;
        }
        ProvidersCommand::Remove { name } => {
            if s.provider(&name).is_none() {
                anyhow::bail!("no provider named `{name}`");
            }
            s.providers.retain(|p| p.name != name);
            if s.chat.provider == name {
                s.chat.provider = cairn_engine::LOCAL.to_owned();
            }
            if s.chat.fallback.as_deref() == Some(name.as_str()) {
                s.chat.fallback = None;
            }
            s.budget.providers.remove(&name);
            engine.save_settings(&s)?;
            // The key stays (a provider is often removed and added again to change it; the key
            // is bound to its host, so a re-added provider pointing elsewhere is not sent it),
            // but nobody should believe it is gone.
            match engine.keyring_entry(&name) {
                Ok(Some(entry)) => eprintln!(
                    "note: the {} still holds an API key for `{name}`{}; delete it with `cairn key remove {name}`",
                    entry.keyring,
                    match &entry.host {
                        Some(host) => format!(" (sent only to {host})"),
                        None => String::new(),
                    }
                ),
                Ok(None) => {}
                Err(e) => eprintln!("note: could not check the OS keyring for a key for `{name}`: {e}"),
            }
        }
        ProvidersCommand::Use { name } => {
            s.chat.provider = name;
            engine.save_settings(&s)?;
        }
    }
    let s = engine.settings()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print_providers(&s);
    }
    Ok(())
}

fn print_providers(s: &Settings) {
    let mark = |n: &str| if s.chat.provider == n { "*" } else { " " };
    println!(
        "{}local      embedded llama.cpp ({})",
        mark("local"),
        s.local
            .model
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| cairn_engine::DEFAULT_GGUF.to_owned())
    );
    for p in &s.providers {
        let where_ = if p.is_local() { "this machine" } else { "remote" };
        let price = match &p.price {
            Some(pr) => format!(", ${}/${} per M tokens", pr.input, pr.output),
            None => String::new(),
        };
        println!(
            "{}{:<10} {:?} {} at {} ({where_}{price})",
            mark(&p.name),
            clean(&p.name),
            p.kind,
            clean(&p.model),
            clean(&p.base_url())
        );
    }
    println!("(* answers questions; change with `cairn providers use NAME`)");
    if std::env::var_os("CAIRN_OPENAI_BASE_URL").is_some() {
        println!("note: CAIRN_OPENAI_BASE_URL is set, so questions go to the `env` provider it describes");
    }
}

fn print_checks(checks: &[ProviderCheck]) {
    for c in checks {
        let head = format!("{} ({} {})", c.name, c.kind, c.model);
        if c.ok {
            let usage = match c.usage_reported {
                Some(true) => "reports token usage",
                _ => "no usage reported: Cairn counts tokens itself",
            };
            println!(
                "ok    {head}: {} ms, first token {} ms, {usage}, {}",
                c.latency_ms.unwrap_or(0),
                c.first_token_ms.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
                match c.billing.as_str() {
                    "free" => "free",
                    "priced" => "priced",
                    _ => "no known price",
                }
            );
        } else {
            println!("FAIL  {head}: {}", clean(c.error.as_deref().unwrap_or("unknown error")));
        }
    }
}

#[derive(Subcommand)]
pub enum PromptsCommand {
    /// Every prompt version: id, version, hash, purpose.
    List,
    /// A prompt's text.
    Show {
        id: String,
        #[arg(long)]
        version: Option<u32>,
    },
}

pub fn prompts(engine: &Engine, cmd: PromptsCommand, json: bool) -> anyhow::Result<()> {
    let prompts = engine.prompts()?;
    match cmd {
        PromptsCommand::List => {
            let list: Vec<serde_json::Value> = prompts
                .all()
                .map(|p| serde_json::json!({ "id": p.id, "version": p.version, "hash": p.hash, "purpose": p.purpose, "file": p.file }))
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for p in prompts.all() {
                    println!("{:<12} v{:<3} {}  {}", p.id, p.version, p.hash, p.purpose);
                }
            }
        }
        PromptsCommand::Show { id, version } => {
            let p = prompts.get(&id, version)?;
            let values: Vec<(&str, String)> =
                p.variables.iter().map(|v| (v.as_str(), format!("{{{{{v}}}}}"))).collect();
            let refs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let messages = p.render(&refs)?;
            if json {
                let m: Vec<serde_json::Value> = messages
                    .iter()
                    .map(|m| serde_json::json!({ "role": format!("{:?}", m.role).to_lowercase(), "template": m.content }))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "id": p.id, "version": p.version, "hash": p.hash, "messages": m })
                    )?
                );
            } else {
                println!("{} (hash {}): {}", p.label(), p.hash, p.purpose);
                for m in messages {
                    println!("--- {:?} ---\n{}", m.role, m.content);
                }
            }
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum ConversationsCommand {
    /// Recent conversations.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// A conversation's questions and answers.
    Show {
        id: i64,
    },
    Delete {
        id: i64,
    },
}

pub fn conversations(engine: &Engine, cmd: ConversationsCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        ConversationsCommand::List { limit } => {
            let list = engine.conversations(limit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no conversations yet");
            } else {
                for c in list {
                    println!("{:>5}  {:>2} turns  {}", c.id, c.turns, one_line(&c.title, 100));
                }
                println!("(continue one with `cairn ask -c ID \"...\"`)");
            }
        }
        ConversationsCommand::Show { id } => {
            let (c, turns) = engine.conversation(id)?;
            if json {
                let turns: Vec<serde_json::Value> = turns
                    .iter()
                    .map(|t| serde_json::from_str(&t.answer_json).unwrap_or(serde_json::Value::Null))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "conversation": c, "turns": turns }))?
                );
            } else {
                println!("conversation {}: {}", c.id, one_line(&c.title, 100));
                for t in turns {
                    println!("\n> {}\n{}", one_line(&t.question, 200), crate::render::clean_keep_lines(&t.answer));
                }
            }
        }
        ConversationsCommand::Delete { id } => {
            engine.delete_conversation(id)?;
            if !json {
                println!("deleted conversation {id}");
            }
        }
    }
    Ok(())
}
