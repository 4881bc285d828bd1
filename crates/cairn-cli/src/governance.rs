//! `cairn policy` and `cairn local-only`: what the administrator's policy allows, and the
//! user's own privacy label on folders.

use cairn_engine::{Engine, Policy, PolicyCheck};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// The policy in force: where it comes from and every rule in plain terms.
    Show,
    /// Check a policy file (default: the one in force) and what it would allow of your providers,
    /// folders and settings. Exits with 2 when the file is malformed or refuses a provider you use.
    Check { file: Option<PathBuf> },
}

pub fn policy(engine: &Engine, cmd: PolicyCommand, json: bool) -> anyhow::Result<()> {
    let (check, show_only) = match cmd {
        PolicyCommand::Show => (engine.check_policy(None)?, true),
        PolicyCommand::Check { file } => {
            let loaded = file.as_deref().map(Policy::load_from);
            (engine.check_policy(loaded.as_ref())?, false)
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&check)?);
    } else {
        print(&check, show_only);
    }
    let refused = check.providers.iter().any(|p| p.chat.is_some());
    if !show_only && (check.policy.broken.is_some() || !check.defects.is_empty() || refused) {
        std::process::exit(2);
    }
    Ok(())
}

fn print(c: &PolicyCheck, show_only: bool) {
    println!("policy: {}", c.policy.source);
    if let Some(why) = &c.policy.broken {
        println!("MALFORMED: {why}");
        println!("until it is fixed, remote providers are off and every folder is local-only");
    }
    if c.policy.rules.is_empty() {
        println!("no rules: every provider, model and setting is allowed");
    }
    for r in &c.policy.rules {
        println!("  {:<36} {}", r.rule, r.text);
    }
    if !c.defects.is_empty() {
        println!("DEFECTIVE: these locks cannot be applied, so remote providers are off until they are fixed:");
        for d in &c.defects {
            println!("  {d}");
        }
    }
    if show_only {
        return;
    }
    println!("\nyour providers:");
    for p in &c.providers {
        let place = if p.remote { "remote" } else { "this computer" };
        match &p.chat {
            None => println!("  {:<16} ({place}) allowed", p.name),
            Some(why) => println!("  {:<16} ({place}) REFUSED: {why}", p.name),
        }
        if let Some(why) = &p.embeddings {
            println!("  {:<16} embeddings REFUSED: {why}", "");
        }
    }
    if !c.local_only.is_empty() {
        println!("\nlocal-only folders (never sent to a remote provider):");
        for (path, why) in &c.local_only {
            println!("  {path}  ({why})");
        }
    }
    if !c.overridden.is_empty() {
        println!("\nsettings the policy overrides:");
        for (key, file, locked) in &c.overridden {
            println!("  {key}: your settings say {file}, the policy keeps {locked}");
        }
    }
}

pub fn local_only(engine: &Engine, folder: PathBuf, off: bool, json: bool) -> anyhow::Result<()> {
    engine.set_local_only(&folder, !off)?;
    if json {
        println!("{}", serde_json::json!({ "folder": folder, "local_only": !off }));
    } else if off {
        println!("{} may be sent to remote providers again", folder.display());
    } else {
        println!(
            "{} is local-only: its passages are never sent to a remote provider (questions that need them are answered by the local model, or without them: [privacy] local_only_sources)",
            folder.display()
        );
    }
    Ok(())
}
