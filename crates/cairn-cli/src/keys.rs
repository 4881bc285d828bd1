//! `cairn key set | remove | list`: API keys in the OS keyring.
//!
//! A key is read from standard input, never taken as an argument: arguments are visible to
//! every user in `ps` and end up in shell history. At a terminal the key is typed without
//! echo. Nothing here prints a key, or any part of one.

use cairn_engine::{Engine, KeyChange, KeyReport, KeySource};
use clap::Subcommand;
use std::io::{BufRead, IsTerminal};

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Store a provider's API key in the OS keyring, for the endpoint host the provider points
    /// at (it is sent to no other). The key is read from standard input (one line; typed
    /// without echo at a terminal), e.g. `printf %s "$KEY" | cairn key set openai`.
    Set { name: String },
    /// Delete a provider's API key from the OS keyring.
    Remove { name: String },
    /// Where each configured provider's key comes from (environment, keyring or missing), and
    /// which keyring is in use. Never shows a key.
    List {
        /// Also report these names (providers not configured yet).
        names: Vec<String>,
    },
}

pub fn key(engine: &Engine, cmd: KeyCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Set { name } => {
            // Checked before asking, so nobody types a key for a name that will be refused.
            engine.check_key_name(&name)?;
            let key = read_key(&name)?;
            let change = engine.set_key(&name, &key)?;
            report_change(&change, "stored", json)
        }
        KeyCommand::Remove { name } => {
            let change = engine.remove_key(&name)?;
            report_change(&change, if change.changed { "removed" } else { "absent" }, json)
        }
        KeyCommand::List { names } => {
            let report = engine.key_status(&names)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(&report);
            }
            Ok(())
        }
    }
}

fn report_change(change: &KeyChange, what: &str, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(change)?);
        return Ok(());
    }
    let (name, keyring) = (&change.provider, &change.keyring.description);
    match what {
        "stored" => {
            println!("stored the API key for `{name}` in the {keyring}");
            if let Some(host) = &change.host {
                println!("it is sent only to {host}; if the provider is pointed elsewhere, set the key again");
            }
        }
        "removed" => println!("removed the API key for `{name}` from the {keyring}"),
        _ => println!("the {keyring} holds no API key for `{name}`: nothing removed"),
    }
    if !change.keyring.survives_reboot {
        eprintln!("note: this keyring does not survive a reboot; store the key again after one");
    }
    if let Some(var) = &change.overridden_by {
        eprintln!("note: {var} is set in this environment and is used instead of the keyring");
    }
    if !change.configured && what == "stored" {
        eprintln!(
            "note: no provider `{name}` is configured yet: add it with `cairn providers add {name} ...` (the key is for {}, the vendor's own endpoint)",
            change.host.as_deref().unwrap_or("its vendor's endpoint")
        );
    }
    Ok(())
}

fn print_report(r: &KeyReport) {
    match (&r.keyring, &r.keyring_error) {
        (Some(k), _) => {
            println!("keyring: {}", k.description);
            for why in &k.passed_over {
                println!("  not used: {why}");
            }
        }
        (None, Some(e)) => println!("keyring: none usable: {e}"),
        (None, None) => println!("keyring: none"),
    }
    if r.keys.is_empty() {
        println!("no remote providers configured (`cairn providers add`); `local` needs no key");
        return;
    }
    let width = r.keys.iter().map(|k| k.provider.len()).max().unwrap_or(8).max(8);
    println!("{:<width$}  KEY FROM", "PROVIDER");
    for k in &r.keys {
        let mut from = match &k.source {
            Some(KeySource::Environment { variable }) => format!("environment variable {variable}"),
            Some(KeySource::Keyring { backend }) => format!("keyring ({backend})"),
            None if k.other_host.is_some() => format!("missing: {}", k.other_host.as_deref().unwrap_or_default()),
            None if k.needs_key => format!("missing: this provider needs one (`cairn key set {}`)", k.provider),
            None => "none (sent without a key)".to_owned(),
        };
        if matches!(k.source, Some(KeySource::Environment { .. })) && k.in_keyring == Some(true) {
            match &k.other_host {
                None => from.push_str(", overriding the one in the keyring"),
                Some(why) => from.push_str(&format!(" ({why})")),
            }
        }
        if !k.configured {
            from.push_str(" [not configured]");
        }
        println!("{:<width$}  {from}", k.provider);
    }
}

/// One line from standard input; at a terminal, asked for on stderr with echo turned off.
fn read_key(name: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let mut line = String::new();
    if stdin.is_terminal() {
        // Echo goes off before the prompt shows, so nothing typed after it is ever echoed.
        let _echo = EchoOff::new();
        eprint!("API key for `{name}` (typing is not shown): ");
        stdin.lock().read_line(&mut line)?;
        eprintln!();
    } else {
        stdin.lock().read_line(&mut line)?;
    }
    if line.trim().is_empty() {
        anyhow::bail!(
            "no API key on standard input: type it when asked, or pipe it in (`printf %s \"$KEY\" | cairn key set {name}`); it is never taken as an argument"
        );
    }
    Ok(line)
}

/// Terminal echo off while it lives, and back on when dropped or when Ctrl-C ends the process.
struct EchoOff {
    saved: Option<libc::termios>,
}

/// The settings to restore from the SIGINT handler.
static SAVED: std::sync::OnceLock<libc::termios> = std::sync::OnceLock::new();

#[allow(unsafe_code)]
extern "C" fn restore_and_die(sig: libc::c_int) {
    restore(SAVED.get());
    // SAFETY: resetting the disposition and re-raising are async-signal-safe.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

#[allow(unsafe_code)]
fn restore(saved: Option<&libc::termios>) {
    if let Some(t) = saved {
        // SAFETY: `t` is a termios read from this terminal; tcsetattr is async-signal-safe.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t);
        }
    }
}

impl EchoOff {
    #[allow(unsafe_code)]
    fn new() -> EchoOff {
        // SAFETY: termios is plain old data; tcgetattr fills it or fails, checked below.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut t) } != 0 {
            return EchoOff { saved: None };
        }
        let saved = *SAVED.get_or_init(|| t);
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        let handler = restore_and_die as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only calls async-signal-safe functions; `quiet` is a valid termios.
        unsafe {
            libc::signal(libc::SIGINT, handler);
            libc::signal(libc::SIGTERM, handler);
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet);
        }
        EchoOff { saved: Some(saved) }
    }
}

impl Drop for EchoOff {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        restore(self.saved.as_ref());
        // SAFETY: back to the default dispositions set before reading.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
        }
    }
}
