#![allow(clippy::unwrap_used)]

use super::*;
use toml::Value;

const EXAMPLE: &str = include_str!("../../../docs/policy.example.toml");
const ETC: &str = "/etc/cairn/policy.toml";

fn policy(text: &str) -> Policy {
    let p = Policy::parse(text, Path::new(ETC)).with_home(Some(PathBuf::from("/home/ann")));
    assert_eq!(p.broken(), None, "{text}");
    p
}

fn broken(text: &str) -> String {
    let p = Policy::parse(text, Path::new(ETC));
    let why = p.broken().unwrap_or_else(|| panic!("{text} should be malformed")).to_owned();
    assert!(why.starts_with(ETC), "{why}");
    // Fail closed: remote off, built-in still on.
    let remote = Endpoint { provider: "gw", kind: "openai", model: "m", host: Some("api.openai.com"), remote: true };
    let denied = p.check_chat(&remote).unwrap_err();
    assert_eq!(denied.rule, MALFORMED);
    assert!(denied.message.contains(&why), "{denied}");
    assert_eq!(p.check_embeddings(&remote).unwrap_err().rule, MALFORMED);
    assert_eq!(p.check_chat(&BUILTIN), Ok(()));
    assert_eq!(p.check_embeddings(&BUILTIN), Ok(()));
    assert_eq!(p.local_only(Path::new("/home/ann/notes.md")), Some("**"));
    assert!(p.requires_confirmation(Confirm::NewProvider));
    why
}

const BUILTIN: Endpoint<'static> =
    Endpoint { provider: "local", kind: "local", model: "qwen", host: None, remote: false };

fn openai(model: &'static str, host: &'static str) -> Endpoint<'static> {
    Endpoint { provider: "gw", kind: "openai", model, host: Some(host), remote: !is_loopback(&normalize_host(host)) }
}

#[test]
fn the_example_file_is_a_valid_policy_with_every_rule() {
    let p = policy(EXAMPLE);
    assert_eq!(p.source(), ETC);
    assert!(!p.is_none());
    let b = p.budget();
    assert_eq!((b.daily_usd, b.monthly_usd), (Some(5.0), Some(50.0)));
    assert_eq!(b.providers["openai"], ProviderCap { daily_usd: Some(1.0), monthly_usd: None });
    assert_eq!(p.is_locked("chat.provider"), Some(&Value::String("local".into())));
    assert_eq!(p.is_locked("answer.min_confidence"), Some(&Value::Float(0.4)));
    assert_eq!(p.is_locked("chat"), None);
    assert_eq!(p.locked().count(), 2);
    assert!(p.requires_confirmation(Confirm::RemoteChat));
    assert!(p.requires_confirmation(Confirm::NewProvider));
    assert_eq!(p.local_only(Path::new("/home/ann/Private/diary.md")), Some("~/Private/**"));

    let summary = p.describe();
    assert_eq!(summary.source, ETC);
    assert_eq!(summary.broken, None);
    let rules: Vec<&str> = summary.rules.iter().map(|r| r.rule.as_str()).collect();
    for rule in [
        "providers.allowed_kinds",
        "providers.allowed_names",
        "providers.allowed_models",
        "providers.allowed_embedding_models",
        "providers.allowed_hosts",
        "providers.remote_chat",
        "providers.remote_embeddings",
        "budget.daily_usd",
        "budget.monthly_usd",
        "budget.providers.openai.daily_usd",
        "privacy.local_only",
        "locked.chat.provider",
        "locked.answer.min_confidence",
        "confirm.remote_chat",
        "confirm.new_provider",
    ] {
        assert!(rules.contains(&rule), "{rule} missing from {rules:?}");
    }
    let text = |rule: &str| summary.rules.iter().find(|r| r.rule == rule).unwrap().text.clone();
    assert_eq!(
        text("budget.daily_usd"),
        "at most $5.00 a day on all providers together (or the user's budget, if lower)"
    );
    assert_eq!(text("locked.chat.provider"), "the setting chat.provider is kept at \"local\"");
    assert_eq!(
        text("providers.remote_embeddings"),
        "passages are embedded only by the built-in model and servers on this computer"
    );
    // It can be shown as data (the desktop app and `--json`).
    let shown = toml::to_string(&summary).unwrap();
    assert!(shown.contains("chat models must match gpt-4o-mini, claude-*, llama3*"), "{shown}");
}

#[test]
fn no_policy_restricts_nothing() {
    let p = Policy::none();
    assert!(p.is_none());
    assert_eq!(p.source(), "no policy");
    let far =
        Endpoint { provider: "x", kind: "anthropic", model: "any", host: Some("api.anthropic.com"), remote: true };
    assert_eq!(p.check_chat(&far), Ok(()));
    assert_eq!(p.check_embeddings(&far), Ok(()));
    assert_eq!(p.local_only(Path::new("/srv/hr/pay.xlsx")), None);
    assert_eq!(*p.budget(), PolicyBudget::default());
    assert!(!p.requires_confirmation(Confirm::RemoteChat));
    assert_eq!(p.describe(), PolicySummary { source: "none".into(), broken: None, rules: Vec::new() });

    // An empty file is a policy that says nothing.
    let empty = Policy::parse("", Path::new(ETC));
    assert_eq!((empty.broken(), empty.check_chat(&far)), (None, Ok(())));
}

#[test]
fn each_rule_denies_by_name_and_says_what_is_allowed() {
    let p = policy(
        r#"
[providers]
allowed_kinds = ["local", "openai"]
allowed_names = ["local", "gw"]
allowed_models = ["gpt-4o-mini", "claude-*"]
allowed_embedding_models = ["text-embedding-3-*"]
allowed_hosts = ["api.openai.com", "localhost"]
"#,
    );
    let denied = |r: Result<(), Denied>| r.unwrap_err();

    let d = denied(p.check_chat(&openai("gpt-4o", "api.openai.com")));
    assert_eq!(d.rule, "providers.allowed_models");
    assert_eq!(
        d.to_string(),
        r#"policy rule providers.allowed_models (/etc/cairn/policy.toml) does not allow model "gpt-4o"; allowed: gpt-4o-mini, claude-*"#
    );
    assert_eq!(p.check_chat(&openai("gpt-4o-mini", "api.openai.com")), Ok(()));

    let claude =
        Endpoint { provider: "gw", kind: "anthropic", model: "claude-3", host: Some("api.openai.com"), remote: true };
    let d = denied(p.check_chat(&claude));
    assert_eq!(d.rule, "providers.allowed_kinds");
    assert!(
        d.message.contains(r#"does not allow provider kind "anthropic" (provider "gw"); allowed: local, openai"#),
        "{d}"
    );

    let other = Endpoint { provider: "router", ..openai("gpt-4o-mini", "api.openai.com") };
    let d = denied(p.check_chat(&other));
    assert_eq!(d.rule, "providers.allowed_names");
    assert!(d.message.ends_with(r#"does not allow provider "router"; allowed: local, gw"#), "{d}");

    let d = denied(p.check_chat(&openai("gpt-4o-mini", "openrouter.ai")));
    assert_eq!(d.rule, "providers.allowed_hosts");
    assert!(
        d.message
            .ends_with(r#"does not allow host "openrouter.ai" (provider "gw"); allowed: api.openai.com, localhost"#)
    );

    // Embeddings are checked against their own model list, not the chat models'.
    assert_eq!(p.check_embeddings(&openai("text-embedding-3-small", "api.openai.com")), Ok(()));
    let d = denied(p.check_embeddings(&openai("gpt-4o-mini", "api.openai.com")));
    assert_eq!(d.rule, "providers.allowed_embedding_models");

    // The built-in provider passes (its kind and name are listed, it has no host)...
    let builtin = Endpoint { model: "gpt-4o-mini", ..BUILTIN };
    assert_eq!(p.check_chat(&builtin), Ok(()));
    // ...but its model is still a model.
    assert_eq!(denied(p.check_chat(&BUILTIN)).rule, "providers.allowed_models");
}

#[test]
fn remote_use_can_be_switched_off_for_chat_and_embeddings_apart() {
    let p = policy("[providers]\nremote_chat = false\nremote_embeddings = true\n");
    let far = openai("gpt-4o", "api.openai.com");
    let d = p.check_chat(&far).unwrap_err();
    assert_eq!(d.rule, "providers.remote_chat");
    assert_eq!(
        d.message,
        "policy rule providers.remote_chat (/etc/cairn/policy.toml) does not allow remote chat: provider \"gw\" at api.openai.com is not on this computer; only the built-in models and servers on this computer may be used"
    );
    assert_eq!(p.check_embeddings(&far), Ok(()));
    assert_eq!(p.check_chat(&BUILTIN), Ok(()));
    for host in ["localhost:11434", "127.0.0.1", "[::1]:8080", "LOCALHOST"] {
        assert_eq!(p.check_chat(&openai("llama3", host)), Ok(()), "{host}");
    }
    // The caller's `remote: false` does not make a distant host local, and a name that
    // merely starts like a loopback address is not one.
    for host in ["api.openai.com", "127.evil.net", "localhost.evil.net", "192.168.1.20"] {
        let lying = Endpoint { remote: false, ..openai("llama3", host) };
        assert_eq!(p.check_chat(&lying).unwrap_err().rule, "providers.remote_chat", "{host}");
    }

    let p = policy("[providers]\nremote_embeddings = false\n");
    assert_eq!(p.check_embeddings(&far).unwrap_err().rule, "providers.remote_embeddings");
    assert_eq!(p.check_chat(&far), Ok(()));
}

#[test]
fn checks_run_in_order_remote_kind_name_model_host() {
    let mut text = r#"
[providers]
remote_chat = false
allowed_kinds = ["local"]
allowed_names = ["local"]
allowed_models = ["qwen"]
allowed_hosts = ["localhost"]
"#
    .to_owned();
    let mut p = policy(&text);
    let all_wrong = Endpoint { provider: "gw", kind: "openai", model: "gpt", host: Some("evil.net"), remote: true };
    for key in ["remote_chat", "allowed_kinds", "allowed_names", "allowed_models", "allowed_hosts"] {
        let d = p.check_chat(&all_wrong).unwrap_err();
        assert_eq!(d.rule, format!("providers.{key}"));
        // Drop the rule that fired and look at the next one.
        text = text.lines().filter(|l| !l.starts_with(key)).collect::<Vec<_>>().join("\n");
        p = policy(&text);
    }
    assert_eq!(p.check_chat(&all_wrong), Ok(()));
}

#[test]
fn host_patterns_match_labels_not_suffixes() {
    let p = policy(
        r#"[providers]
allowed_hosts = ["api.openai.com", "*.corp.example.com", "**.lab.example.org", "::1", "10.0.*.*"]"#,
    );
    let ok = |host: &'static str| p.check_chat(&openai("m", host)).is_ok();
    // One level of subdomain, not the domain itself, not a deeper level, not a suffix trick.
    assert!(ok("gw.corp.example.com"));
    assert!(!ok("corp.example.com"));
    assert!(!ok("a.b.corp.example.com"));
    assert!(!ok("corp.example.com.evil.net"));
    assert!(!ok("gw.corp.example.com.evil.net"));
    assert!(!ok("evilcorp.example.com"));
    assert!(!ok("gw-corp.example.com"));
    // `**` is the domain and any depth below it.
    assert!(ok("lab.example.org"));
    assert!(ok("a.b.c.lab.example.org"));
    assert!(!ok("xlab.example.org"));
    assert!(!ok("lab.example.org.evil.net"));
    // Case, ports and a trailing dot do not matter; a lookalike does.
    assert!(ok("API.OpenAI.COM"));
    assert!(ok("api.openai.com:443"));
    assert!(ok("api.openai.com."));
    assert!(!ok("api.openai.co"));
    assert!(!ok("api.openai.com.evil.net"));
    assert!(!ok("xapi.openai.com"));
    // IPv6 literals, bare or bracketed, with or without a port; IPv4 by octets.
    assert!(ok("::1"));
    assert!(ok("[::1]"));
    assert!(ok("[::1]:8080"));
    assert!(!ok("[::2]:8080"));
    assert!(ok("10.0.3.4"));
    assert!(!ok("10.1.3.4"));
    assert!(!ok("10.0.3.4.evil.net"));
    // Empty and malformed hosts never pass.
    assert!(!ok(""));
    assert!(!ok(".corp.example.com"));
    assert!(!ok("gw..corp.example.com"));
    // A host-less remote endpoint cannot be checked, so it is refused.
    let hostless = Endpoint { provider: "gw", kind: "openai", model: "m", host: None, remote: true };
    assert!(p.check_chat(&hostless).unwrap_err().message.contains("its endpoint host is unknown"));
}

#[test]
fn built_in_models_are_never_blocked_by_hosts_but_loopback_servers_are_checked() {
    let p = policy("[providers]\nallowed_hosts = [\"api.openai.com\"]\n");
    assert_eq!(p.check_chat(&BUILTIN), Ok(()));
    assert_eq!(p.check_embeddings(&BUILTIN), Ok(()));
    assert_eq!(p.check_chat(&openai("llama3", "localhost:11434")).unwrap_err().rule, "providers.allowed_hosts");
    let p = policy("[providers]\nallowed_hosts = [\"localhost\", \"[::1]\"]\n");
    assert_eq!(p.check_chat(&openai("llama3", "localhost:11434")), Ok(()));
    assert_eq!(p.check_chat(&openai("llama3", "::1")), Ok(()));
}

#[test]
fn model_patterns_are_globs_on_the_whole_name() {
    let p = policy(
        r#"[providers]
allowed_models = ["gpt-4o-mini", "claude-*", "llama3*", "qwen?.5-*b"]"#,
    );
    let ok = |model: &'static str| p.check_chat(&openai(model, "localhost")).is_ok();
    assert!(ok("gpt-4o-mini"));
    assert!(!ok("gpt-4o-mini-2024-07-18"), "an exact name is exact");
    assert!(!ok("gpt-4o"));
    assert!(ok("claude-3-5-haiku-20241022"));
    assert!(!ok("Claude-3"), "case matters");
    assert!(!ok("my-claude-3"));
    assert!(ok("llama3.1:8b"));
    assert!(ok("llama3"));
    assert!(ok("qwen2.5-7b"));
    assert!(!ok("qwen2.5-7"));
    assert!(!ok(""));
    let nothing = policy("[providers]\nallowed_kinds = []\n");
    assert_eq!(
        nothing.check_chat(&BUILTIN).unwrap_err().rule,
        "providers.allowed_kinds",
        "an empty list allows nothing"
    );
    let none = policy("[providers]\nallowed_models = []\n");
    let d = none.check_chat(&openai("gpt-4o", "localhost")).unwrap_err();
    assert!(d.message.ends_with("allowed: none"), "{d}");
}

#[test]
fn local_only_matches_whole_components_and_the_home_folder() {
    let p = policy(
        r#"[privacy]
local_only = ["/srv/hr/**", "**/confidential/**", "~/Private/**", "/data/legal", "/mnt/*/board/*.pdf"]"#,
    );
    let lo = |path: &str| p.local_only(Path::new(path));
    assert_eq!(lo("/srv/hr/pay/2025.xlsx"), Some("/srv/hr/**"));
    assert_eq!(lo("/srv/hr"), Some("/srv/hr/**"));
    assert_eq!(lo("/srv/hr2/pay.xlsx"), None, "component boundary");
    assert_eq!(lo("/srv/h/r/pay.xlsx"), None);
    assert_eq!(lo("/other/srv/hr/pay.xlsx"), None, "absolute patterns start at the root");
    assert_eq!(lo("/srv/x/../hr/pay.xlsx"), Some("/srv/hr/**"), "`..` cannot walk around a pattern");
    assert_eq!(lo("/SRV/HR/Pay.xlsx"), Some("/srv/hr/**"), "case is ignored");
    assert_eq!(lo("/home/bob/work/Confidential/plan.md"), Some("**/confidential/**"));
    assert_eq!(lo("/home/bob/work/confidential"), Some("**/confidential/**"));
    assert_eq!(lo("/home/bob/work/confidentials/plan.md"), None);
    assert_eq!(lo("/home/bob/confidential.md"), None);
    assert_eq!(lo("/home/ann/Private/diary.md"), Some("~/Private/**"));
    assert_eq!(lo("/home/ann/Privateer/diary.md"), None);
    assert_eq!(lo("/home/bob/Private/diary.md"), None, "~ is this user's home");
    // A folder without `/**` covers what is inside it too.
    assert_eq!(lo("/data/legal/2024/case.docx"), Some("/data/legal"));
    assert_eq!(lo("/data/legal-old/case.docx"), None);
    // `*` stays within one component.
    assert_eq!(lo("/mnt/nas/board/minutes.pdf"), Some("/mnt/*/board/*.pdf"));
    assert_eq!(lo("/mnt/nas/x/board/minutes.pdf"), None);
    assert_eq!(lo("/mnt/nas/board/minutes.docx"), None);
    assert_eq!(lo("/home/ann/notes.md"), None);

    // Without a known home folder (not in the user database), `~/Private` is any folder named
    // Private: too much rather than too little stays home.
    let homeless = p.clone().with_home(None);
    assert_eq!(homeless.local_only(Path::new("/Users/ann/Private/a.md")), Some("~/Private/**"));
    let home = Policy::parse("[privacy]\nlocal_only = [\"~\"]\n", Path::new(ETC)).with_home(Some("/home/ann".into()));
    assert_eq!(home.local_only(Path::new("/home/ann/x/y.md")), Some("~"));
    assert_eq!(home.local_only(Path::new("/home/annie/y.md")), None);
}

#[test]
fn malformed_policies_fail_closed_and_say_where_and_why() {
    let why = broken("[providers]\nremote_chat = tru\n");
    assert!(why.starts_with("/etc/cairn/policy.toml: line 2, column 15: "), "{why}");

    let why = broken("[providers]\nallowed_models = [\"gpt-4o-mini\"]\nremote_chats = true\n");
    assert!(why.starts_with("/etc/cairn/policy.toml: line 3, column 1: unknown field `remote_chats`"), "{why}");
    let why = broken("[provider]\nremote_chat = false\n");
    assert!(why.contains("line 1") && why.contains("unknown field `provider`"), "{why}");

    let why = broken("[providers]\nremote_chat = \"no\"\n");
    assert!(
        why.contains("line 2, column 15") && why.contains("invalid type: string \"no\", expected a boolean"),
        "{why}"
    );
    let why = broken("[providers]\nallowed_models = \"gpt-4o\"\n");
    assert!(why.contains("line 2") && why.contains("expected a sequence"), "{why}");

    let why = broken("[budget]\ndaily_usd = -1.0\n");
    assert_eq!(why, "/etc/cairn/policy.toml: line 2, column 13: budget.daily_usd = -1 must be zero or more dollars");
    let why = broken("[budget.providers.openai]\nmonthly_usd = nan\n");
    assert!(why.ends_with("budget.providers.openai.monthly_usd = NaN must be zero or more dollars"), "{why}");
    let why = broken("[budget]\nmonthly_usd = inf\n");
    assert!(why.contains("budget.monthly_usd = inf"), "{why}");

    let why = broken("[providers]\nallowed_kinds = [\"local\", \"opneai\"]\n");
    assert!(why.contains("line 2, column 27") && why.contains("unknown provider kind \"opneai\""), "{why}");
    let why = broken("[providers]\nallowed_hosts = [\"localhost:8080\"]\n");
    assert!(why.contains("has a port; ports are not matched"), "{why}");
    let why = broken("[providers]\nallowed_hosts = [\"https://api.openai.com\"]\n");
    assert!(why.contains("without scheme or path"), "{why}");
    let why = broken("[providers]\nallowed_hosts = [\".corp.example.com\"]\n");
    assert!(why.contains("**.example.com"), "{why}");
    let why = broken("[privacy]\nlocal_only = [\"confidential/**\"]\n");
    assert!(why.contains("must be an absolute path, start with ~/"), "{why}");
    let why = broken("[privacy]\nlocal_only = [\"~bob/x\"]\n");
    assert!(why.contains("another user's home"), "{why}");
    let why = broken("[locked]\n\"chat.provider\" = \"local\"\n[locked.chat]\nprovider = \"gw\"\n");
    assert!(why.contains("chat.provider"), "{why}");
    let why = broken("[locked]\n\"chat\" = \"x\"\n\"chat.provider\" = \"gw\"\n");
    assert!(why.contains("both lock the same setting"), "{why}");
    let why = broken("[locked]\n\"chat\" = \"x\"\n\"chat-x\" = 1\n\"chat.provider\" = \"gw\"\n");
    assert!(why.contains("\"chat\" and \"chat.provider\" both lock"), "{why}");
    let why = broken("[locked]\n\"chat..provider\" = \"x\"\n");
    assert!(why.contains("is not a settings key"), "{why}");

    let summary = Policy::parse("[budget]\ndaily_usd = -1\n", Path::new(ETC)).describe();
    assert_eq!(summary.source, ETC);
    assert!(summary.broken.is_some());
    assert_eq!(summary.rules[0].rule, MALFORMED);
}

#[test]
fn locked_settings_are_applied_and_changes_to_them_refused() {
    let p = policy(
        r#"
[locked]
"chat.provider" = "local"
"answer.min_confidence" = 0.4
[locked.answer]
max_tokens = 800
"#,
    );
    let mut settings: Value =
        toml::from_str("[chat]\nprovider = \"gw\"\n[embeddings]\nprovider = \"local\"\n").unwrap();
    p.apply_locked(&mut settings).unwrap();
    assert_eq!(settings["chat"]["provider"].as_str(), Some("local"));
    assert_eq!(settings["answer"]["min_confidence"].as_float(), Some(0.4), "missing tables are created");
    assert_eq!(settings["answer"]["max_tokens"].as_integer(), Some(800));
    assert_eq!(settings["embeddings"]["provider"].as_str(), Some("local"), "others untouched");

    let before = settings.clone();
    let mut after = before.clone();
    after["chat"]["provider"] = Value::String("gw".into());
    let d = p.check_change(&before, &after).unwrap_err();
    assert_eq!(d.rule, "locked.chat.provider");
    assert_eq!(
        d.message,
        r#"policy rule locked.chat.provider (/etc/cairn/policy.toml) keeps chat.provider = "local"; it cannot be set to "gw""#
    );

    // Unchanged locked values and changes elsewhere are fine, a float written for an integer too.
    let mut after = before.clone();
    after["embeddings"]["provider"] = Value::String("gw".into());
    after["answer"]["max_tokens"] = Value::Float(800.0);
    assert_eq!(p.check_change(&before, &after), Ok(()));
    // Removing a locked key is not an override: loading fills it in again.
    let mut after = before.clone();
    after["answer"].as_table_mut().unwrap().remove("min_confidence");
    assert_eq!(p.check_change(&before, &after), Ok(()));
    // A file written before the policy keeps its old value until loaded; editing something
    // else is not refused for it.
    let old: Value = toml::from_str("[chat]\nprovider = \"gw\"\n").unwrap();
    let mut edited = old.clone();
    edited.as_table_mut().unwrap().insert("other".into(), Value::Integer(1));
    assert_eq!(p.check_change(&old, &edited), Ok(()));
    // Replacing a table that holds a locked key is refused.
    let mut after = before.clone();
    after["chat"] = Value::String("gw".into());
    assert_eq!(p.check_change(&before, &after).unwrap_err().rule, "locked.chat.provider");

    let mut odd: Value = toml::from_str("chat = 3\n").unwrap();
    let d = p.apply_locked(&mut odd).unwrap_err();
    assert_eq!(d.rule, "locked.chat.provider");
    assert!(d.message.ends_with("cannot set chat.provider = \"local\": `chat` is not a table"), "{d}");
    assert_eq!(odd["answer"]["max_tokens"].as_integer(), Some(800), "the other locks are still applied");
}

#[test]
fn budgets_are_caps_and_the_stricter_applies() {
    let p = policy("[budget]\nmonthly_usd = 50\n[budget.providers.gw]\ndaily_usd = 0\n");
    assert_eq!(p.budget().daily_usd, None);
    assert_eq!(p.budget().monthly_usd, Some(50.0), "integers are dollars too");
    assert_eq!(p.budget().providers["gw"].daily_usd, Some(0.0));
    assert_eq!(stricter(Some(50.0), Some(20.0)), Some(20.0));
    assert_eq!(stricter(Some(5.0), None), Some(5.0));
    assert_eq!(stricter(None, Some(7.5)), Some(7.5));
    assert_eq!(stricter(None, None), None);
}

#[test]
fn policy_files_are_loaded_from_disk_and_the_system_file_wins() {
    let dir = tempfile::tempdir().unwrap();
    let system = dir.path().join("etc-policy.toml");
    let user = dir.path().join("user-policy.toml");
    std::fs::write(&system, "[providers]\nremote_chat = false\n").unwrap();
    std::fs::write(&user, "[providers]\nremote_chat = true\n").unwrap();

    let p = Policy::load_from(&system);
    assert_eq!(p.path(), Some(system.as_path()));
    assert_eq!(p.check_chat(&openai("m", "api.openai.com")).unwrap_err().rule, "providers.remote_chat");

    // $CAIRN_POLICY cannot replace a system policy...
    let p = Policy::load_with(std::slice::from_ref(&system), Some(user.clone().into()));
    assert_eq!(p.path(), Some(system.as_path()));
    // ...but is used where there is none.
    let absent = dir.path().join("absent.toml");
    let p = Policy::load_with(std::slice::from_ref(&absent), Some(user.clone().into()));
    assert_eq!(p.path(), Some(user.as_path()));
    assert!(Policy::load_with(std::slice::from_ref(&absent), None).is_none());
    assert!(Policy::load_with(std::slice::from_ref(&absent), Some("".into())).is_none());
    // A variable naming a missing file fails closed.
    let p = Policy::load_with(std::slice::from_ref(&absent), Some(absent.clone().into()));
    let why = p.broken().unwrap();
    assert!(why.contains("absent.toml") && why.contains("does not exist ($CAIRN_POLICY names it)"), "{why}");

    // Unreadable (here: a folder where the file should be) fails closed and names the file.
    let folder = dir.path().join("policy.toml");
    std::fs::create_dir(&folder).unwrap();
    let p = Policy::load_from(&folder);
    assert!(p.broken().unwrap().starts_with(&format!("{}: cannot be read", folder.display())));
    assert_eq!(p.check_chat(&openai("m", "api.openai.com")).unwrap_err().rule, MALFORMED);

    // A malformed file on disk names itself with the line.
    std::fs::write(&system, "[providers]\nremote_chat = false\nallowed = []\n").unwrap();
    let p = Policy::load_with(std::slice::from_ref(&system), Some(user.into()));
    assert!(
        p.broken().unwrap().starts_with(&format!("{}: line 3, column 1: unknown field `allowed`", system.display()))
    );
}

#[test]
fn the_system_location_follows_the_operating_system() {
    let path = Policy::system_path();
    if cfg!(target_os = "linux") {
        assert_eq!(path, PathBuf::from("/etc/cairn/policy.toml"));
    }
    assert!(path.ends_with("policy.toml"));
}

#[test]
fn a_policy_file_named_explicitly_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let p = Policy::load_from(&missing);
    assert!(!p.is_none(), "`cairn policy check /missing.toml` is not \"no policy\"");
    assert_eq!(p.path(), Some(missing.as_path()));
    assert_eq!(p.broken(), Some(format!("{}: file not found", missing.display()).as_str()));
    assert_eq!(p.check_chat(&openai("m", "api.openai.com")).unwrap_err().rule, MALFORMED);
    assert_eq!(p.local_only(Path::new("/home/ann/notes.md")), Some("**"));
    // Only the implicit system location may be missing.
    assert!(Policy::load_with(std::slice::from_ref(&missing), None).is_none());
}

#[cfg(unix)]
#[test]
fn a_dangling_symlink_at_the_system_location_fails_closed() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let permissive = dir.path().join("user.toml");
    std::fs::write(&permissive, "[providers]\nremote_chat = true\n").unwrap();

    // The file itself is a link to nothing: not "no policy", and $CAIRN_POLICY cannot step in.
    let system = dir.path().join("policy.toml");
    symlink(dir.path().join("gone.toml"), &system).unwrap();
    let p = Policy::load_with(std::slice::from_ref(&system), Some(permissive.clone().into()));
    assert_eq!(p.path(), Some(system.as_path()));
    let why = p.broken().unwrap();
    assert!(why.contains("is a symbolic link to something missing"), "{why}");
    assert_eq!(p.check_chat(&openai("m", "api.openai.com")).unwrap_err().rule, MALFORMED);
    assert!(Policy::load_from(&system).broken().unwrap().contains("symbolic link to something missing"));

    // A linked folder whose target is missing (/etc/cairn -> nowhere) is the same.
    let folder = dir.path().join("etc-cairn");
    symlink(dir.path().join("gone"), &folder).unwrap();
    let system = folder.join("policy.toml");
    let p = Policy::load_with(std::slice::from_ref(&system), Some(permissive.clone().into()));
    let why = p.broken().unwrap();
    assert!(why.contains(&format!("{} is a symbolic link to something missing", folder.display())), "{why}");

    // A link loop cannot be read either.
    let looped = dir.path().join("loop.toml");
    symlink(&looped, &looped).unwrap();
    let p = Policy::load_with(std::slice::from_ref(&looped), Some(permissive.clone().into()));
    assert!(p.broken().is_some(), "a link loop fails closed");

    // A link to a real policy is that policy.
    let real = dir.path().join("real.toml");
    std::fs::write(&real, "[providers]\nremote_chat = false\n").unwrap();
    let linked = dir.path().join("linked.toml");
    symlink(&real, &linked).unwrap();
    let p = Policy::load_with(std::slice::from_ref(&linked), Some(permissive.into()));
    assert_eq!((p.path(), p.broken()), (Some(linked.as_path()), None));
    assert_eq!(p.check_chat(&openai("m", "api.openai.com")).unwrap_err().rule, "providers.remote_chat");
}

#[cfg(unix)]
#[test]
fn patterns_naming_symlinked_folders_match_where_the_links_lead() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    // The engine stores folders canonicalised; so does this test (the temp folder itself may
    // be under a link, as /tmp is on macOS).
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let d = dir.display();
    std::fs::create_dir_all(dir.join("w1/hr/2025")).unwrap();
    std::fs::create_dir_all(dir.join("w1/board/nas")).unwrap();
    symlink("w1/hr", dir.join("hrlink")).unwrap();
    symlink(dir.join("w1"), dir.join("w1link")).unwrap();
    std::fs::create_dir(dir.join("plain")).unwrap();

    let text = format!(
        "[privacy]\nlocal_only = [\"{d}/hrlink/**\", \"{d}/w1link/later/**\", \"{d}/w1link/*/nas\", \"{d}/plain/**\"]\n"
    );
    let p = Policy::parse(&text, Path::new(ETC));
    assert_eq!(p.broken(), None);
    let lo = |path: PathBuf| p.local_only(&path).map(str::to_owned);
    let hr = format!("{d}/hrlink/**");
    // The folder as stored (canonical) and as written both match.
    assert_eq!(lo(dir.join("w1/hr/2025/pay.xlsx")), Some(hr.clone()));
    assert_eq!(lo(dir.join("w1/hr")), Some(hr.clone()));
    assert_eq!(lo(dir.join("hrlink/pay.xlsx")), Some(hr.clone()));
    assert_eq!(lo(dir.join("w1/hr2/pay.xlsx")), None, "component boundary still holds");
    assert_eq!(lo(dir.join("w1/x.md")), None);
    // A folder that does not exist yet under a linked parent is resolved through the parent.
    assert_eq!(lo(dir.join("w1/later/a.md")), Some(format!("{d}/w1link/later/**")));
    // Literal folders before a wildcard are resolved; the wildcard part is kept.
    assert_eq!(lo(dir.join("w1/board/nas/a.pdf")), Some(format!("{d}/w1link/*/nas")));
    assert_eq!(lo(dir.join("w1/board/x/a.pdf")), None);
    // Each form is listed for the administrator.
    let summary = p.describe();
    let texts: Vec<&str> = summary.rules.iter().map(|r| r.text.as_str()).collect();
    assert!(
        texts.contains(
            &format!("files under {hr} (and under {d}/w1/hr/**, where its symbolic links lead) are never sent to a remote provider")
                .as_str()
        ),
        "{texts:?}"
    );
    assert!(texts.contains(&format!("files under {d}/plain/** are never sent to a remote provider").as_str()));

    // A home folder reached through a link: `~/` resolves too.
    std::fs::create_dir_all(dir.join("homes/ann/Private")).unwrap();
    symlink(dir.join("homes/ann"), dir.join("ann")).unwrap();
    let p =
        Policy::parse("[privacy]\nlocal_only = [\"~/Private/**\"]\n", Path::new(ETC)).with_home(Some(dir.join("ann")));
    assert_eq!(p.local_only(&dir.join("homes/ann/Private/diary.md")), Some("~/Private/**"));
    assert_eq!(p.local_only(&dir.join("ann/Private/diary.md")), Some("~/Private/**"));
    assert_eq!(p.local_only(&dir.join("homes/ann/Public/a.md")), None);
}

#[test]
fn the_root_as_a_pattern_covers_everything() {
    let p = policy("[privacy]\nlocal_only = [\"/\"]\n");
    assert_eq!(p.local_only(Path::new("/home/ann/notes.md")), Some("/"));
    let home_is_root = policy("[privacy]\nlocal_only = [\"~\"]\n").with_home(Some("/".into()));
    assert_eq!(home_is_root.local_only(Path::new("/srv/x")), Some("~"));
}

#[test]
fn the_home_folder_is_read_from_the_user_database() {
    let passwd = "# comment\n\nroot:x:0:0:root:/root:/bin/bash\n+nis::::::\nann:x:1000:1000:Ann,,,:/home/ann:/bin/sh\n\
                  ann2:x:1000:1000::/srv/other:/bin/sh\nodd:x:1001:1001::relative:/bin/sh\nshort:x:1002\n";
    assert_eq!(folders::passwd_home(passwd, 0), Some(PathBuf::from("/root")));
    assert_eq!(folders::passwd_home(passwd, 1000), Some(PathBuf::from("/home/ann")), "first line wins");
    assert_eq!(folders::passwd_home(passwd, 1001), None, "a relative home is no home");
    assert_eq!(folders::passwd_home(passwd, 1002), None);
    assert_eq!(folders::passwd_home(passwd, 4242), None);
}

/// The review's case: `HOME=/tmp/x cairn ask` must not move `~/Private/**`. The test runs
/// itself again in a child process with `$HOME` pointing elsewhere (the environment cannot be
/// changed safely inside a running test process).
#[cfg(target_os = "linux")]
#[test]
fn home_variable_does_not_move_tilde_patterns() {
    const CHILD: &str = "CAIRN_POLICY_TEST_FAKE_HOME";
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let uid = folders::current_uid().expect("/proc/self is there on Linux");
    let expected = folders::passwd_home(&passwd, uid);
    let p = Policy::parse("[privacy]\nlocal_only = [\"~/Private/**\"]\n", Path::new(ETC));
    assert_eq!(p.home(), expected.as_deref());

    if let Some(fake) = std::env::var_os(CHILD) {
        let fake = PathBuf::from(fake);
        assert_eq!(std::env::var_os("HOME"), Some(fake.clone().into_os_string()));
        match &expected {
            Some(home) => {
                assert_ne!(home, &fake);
                assert_eq!(p.local_only(&home.join("Private/diary.md")), Some("~/Private/**"));
            }
            // Not in /etc/passwd: `~/Private` is any folder named Private, wherever $HOME is.
            None => assert_eq!(p.local_only(Path::new("/anywhere/Private/diary.md")), Some("~/Private/**")),
        }
        // Files in the fake home's Private are still covered when the home is unknown, and
        // the fake home is never taken as the home.
        assert_ne!(p.home(), Some(fake.as_path()));
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tests::home_variable_does_not_move_tilde_patterns", "--nocapture", "--test-threads=1"])
        .env("HOME", "/tmp/brk/fh")
        .env(CHILD, "/tmp/brk/fh")
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{log}");
    assert!(log.contains("1 passed"), "the child ran the test: {log}");
}
