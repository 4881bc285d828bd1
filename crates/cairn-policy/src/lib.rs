//! The administrator's policy: what Cairn may use and send, whatever the user's settings say.
//!
//! An administrator writes one TOML file in a system location (below); Cairn reads it at start
//! and every check here answers from it. Policy always wins over `settings.toml`: a setting the
//! policy forbids is refused with a [`Denied`] that names the rule, and locked settings are
//! pinned to the administrator's values. This crate reads that one file and nothing else: no
//! network, no settings, no clock. The engine asks it questions ("may this endpoint answer?",
//! "may this file leave the computer?") and applies the answers.
//!
//! # Where the policy lives
//!
//! | system | file |
//! |---|---|
//! | Linux and other Unix | `/etc/cairn/policy.toml` |
//! | macOS | `/Library/Application Support/Cairn/policy.toml` |
//! | Windows | `%ProgramData%\Cairn\policy.toml` (also `C:\ProgramData\Cairn\policy.toml`) |
//!
//! `$CAIRN_POLICY` may name another file, for machines where the administrator cannot write
//! the system location, and for tests. It is used only when there is no system policy file:
//! otherwise any user could escape the administrator's policy by setting a variable. A
//! `$CAIRN_POLICY` naming a file that does not exist fails closed (below), since someone meant
//! a policy to be there; so does a file named to [`Policy::load_from`] (`cairn policy check
//! FILE`) that is not there ("file not found").
//!
//! No file at the system location (and no `$CAIRN_POLICY`) means no policy: nothing is
//! restricted ([`Policy::none`]). A symbolic link there whose target is missing, or a missing
//! file under a linked folder whose target is missing, is not "no file": it fails closed.
//!
//! # Failing closed
//!
//! A policy file that cannot be read, is not valid TOML, has a key Cairn does not know (a typo
//! must not silently loosen the policy), a value of the wrong type, a negative or non-numeric
//! budget, or a pattern that cannot be used, is *malformed*. A malformed policy turns remote
//! chat and remote embeddings off, keeps every file local-only and asks for every
//! confirmation; the built-in model and servers on this computer keep working.
//! [`Policy::broken`] says which file, where in it and why.
//!
//! # The file
//!
//! ```toml
//! [providers]
//! allowed_kinds = ["local", "openai", "anthropic"]   # omitted = every kind
//! allowed_names = ["local", "company-gw"]           # provider names in the user's settings; omitted = any
//! allowed_models = ["gpt-4o-mini", "claude-*", "llama3*"]   # chat models (globs); omitted = any
//! allowed_embedding_models = ["text-embedding-3-*"]  # embedding models (globs); omitted = any
//! allowed_hosts = ["api.openai.com", "*.corp.example.com", "localhost"]   # endpoint hosts; omitted = any
//! remote_chat = true          # default true; false = only the built-in model and loopback servers answer
//! remote_embeddings = false   # default true; false = only the built-in embedder and loopback servers
//!
//! [budget]                    # hard caps in USD; the stricter of policy and user budget applies
//! daily_usd = 5.0
//! monthly_usd = 50.0
//! [budget.providers.openai]   # by provider name, as in the user's settings
//! daily_usd = 1.0
//!
//! [privacy]
//! local_only = ["/srv/hr/**", "**/confidential/**", "~/Private/**"]   # never sent to a remote provider
//!
//! [locked]                    # settings pinned to values: dotted keys into the user's settings.toml
//! "chat.provider" = "local"
//! "answer.min_confidence" = 0.4
//!
//! [confirm]
//! remote_chat = true          # ask before each question goes to a remote provider
//! new_provider = true         # adding a provider needs confirmation
//! ```
//!
//! Every section and key is optional. An empty list allows nothing (`allowed_models = []`
//! forbids every model). `allowed_kinds` and `allowed_names` apply to the built-in provider
//! too (kind and name `local`): leave `local` in unless the built-in models are meant to be off
//! as well, and search needs an embedding model.
//!
//! Patterns: `?` is one character, `*` any run of characters within one name, `**` any number
//! of whole names.
//! - Models are one name, matched case-sensitively: `claude-*` matches `claude-3-5-haiku`.
//! - Hosts are matched label by label, ignoring case and any port: `*.corp.example.com`
//!   matches `gw.corp.example.com` (one level) but neither `corp.example.com` nor
//!   `corp.example.com.evil.net`; `**.corp.example.com` matches it and every subdomain at any
//!   depth. IPv6 addresses are written bare or in brackets (`::1`, `[::1]`). A pattern with a
//!   scheme, path or port is malformed: the port would otherwise be ignored and allow more than
//!   was written.
//! - Local-only patterns are matched against absolute paths component by component, ignoring
//!   case (over-matching keeps a file home; under-matching on a case-insensitive disk would
//!   send it away). A pattern that matches a folder covers everything inside it, so
//!   `/srv/hr`, `/srv/hr/` and `/srv/hr/**` all cover `/srv/hr/pay/2025.xlsx` but not
//!   `/srv/hr2/x`. A pattern is absolute, starts with `~/` (the home folder) or with `**/`
//!   (any folder).
//! - `~/` is the user's home folder as the system records it, never `$HOME`, which any user
//!   can point elsewhere to walk around a pattern. On Unix it is the home field of the user's
//!   line in `/etc/passwd` (the user being the owner of `/proc/self`); on Windows
//!   `%USERPROFILE%`. Where it cannot be found that way (no `/proc`, as on macOS and most BSDs,
//!   or a user known only to LDAP, SSSD or Directory Services), `~/X` means `X` in *any*
//!   folder, as if written `**/X`: that covers the home folder wherever it is, at the cost of
//!   keeping other folders named `X` local too. Matching only `$HOME/X`, or `/home/*/X` and
//!   `/Users/*/X`, would miss homes elsewhere and could be walked around.
//! - Patterns are matched against paths both as written and with symbolic links resolved. When
//!   the policy is read, the literal leading folders of each absolute (or `~/`) pattern, up to
//!   the first `*` or `?`, are resolved ([`std::fs::canonicalize`], from the deepest one that
//!   exists); when that leads elsewhere the pattern also matches there. With `/tmp/hrlink`
//!   linking to `/data/hr`, `/tmp/hrlink/**` covers `/data/hr/pay.xlsx` too. Links below the
//!   first wildcard, and links created after the policy is read, are not followed this way;
//!   the engine also tests each file's own resolved path.
//!
//! Locked keys may be written quoted (`"chat.provider" = "local"`) or as tables
//! (`[locked.chat]` `provider = "local"`); a table value is locked key by key. Values inside
//! arrays of tables (one provider of `[[providers]]`) cannot be locked one by one.

mod file;
mod folders;
mod glob;
mod locked;
pub use locked::set_dotted;

use file::Rules;
use folders::FolderPattern;
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable that may name a policy file when there is no system one.
pub const ENV_VAR: &str = "CAIRN_POLICY";

/// The rule a malformed policy denies remote use with.
pub const MALFORMED: &str = "malformed";

/// The policy in force: none, one read from a file, or a malformed one (fail closed).
#[derive(Clone, Debug)]
pub struct Policy {
    path: Option<PathBuf>,
    source: String,
    broken: Option<String>,
    rules: Rules,
    home: Option<PathBuf>,
    /// `rules.local_only`, one for one, ready to match.
    folders: Vec<FolderPattern>,
}

/// A model endpoint the engine is about to use: the provider's name and kind from the user's
/// settings, the model, the endpoint host and whether it leaves this computer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// The provider's name in the settings (`local` for the built-in models).
    pub provider: &'a str,
    /// `local`, `openai` or `anthropic`.
    pub kind: &'a str,
    pub model: &'a str,
    /// The endpoint host (`api.openai.com`, `localhost:11434`, `[::1]`); `None` for the
    /// built-in models.
    pub host: Option<&'a str>,
    /// Whether requests leave this computer. A host that is not loopback counts as remote
    /// whatever this says.
    pub remote: bool,
}

/// A refusal by the policy: which rule, and a sentence for the user naming the rule, the
/// policy file and what is allowed instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    /// The rule's key in the policy file (`providers.allowed_models`, `locked.chat.provider`),
    /// or [`MALFORMED`].
    pub rule: String,
    pub message: String,
}

/// Hard caps in dollars from `[budget]`. The engine applies the stricter of these and the
/// user's own budget ([`stricter`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PolicyBudget {
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    /// By provider name.
    pub providers: BTreeMap<String, ProviderCap>,
}

/// Caps for one provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProviderCap {
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
}

/// The lower of two caps; `None` is no cap.
pub fn stricter(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Actions the policy may require the user to confirm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// A question about to go to a remote provider.
    RemoteChat,
    /// Adding a provider to the settings.
    NewProvider,
}

/// The policy in plain terms, for `cairn policy show` and the desktop app.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicySummary {
    /// The policy file, or `none`.
    pub source: String,
    /// Why the file is malformed, when it is.
    pub broken: Option<String>,
    /// Every rule in force, in file order.
    pub rules: Vec<RuleSummary>,
}

/// One rule: its key in the file and what it means.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleSummary {
    pub rule: String,
    pub text: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Chat,
    Embeddings,
}

impl Policy {
    /// No policy: nothing is restricted.
    pub fn none() -> Policy {
        Policy {
            path: None,
            source: "no policy".into(),
            broken: None,
            rules: Rules::default(),
            home: folders::home_dir(),
            folders: Vec::new(),
        }
    }

    /// The system policy file for this operating system (the first of [`Policy::system_paths`]).
    pub fn system_path() -> PathBuf {
        let mut paths = Self::system_paths();
        if paths.is_empty() { PathBuf::from("/etc/cairn/policy.toml") } else { paths.swap_remove(0) }
    }

    /// Where a system policy may be, in the order they are tried.
    pub fn system_paths() -> Vec<PathBuf> {
        if cfg!(target_os = "macos") {
            vec![PathBuf::from("/Library/Application Support/Cairn/policy.toml")]
        } else if cfg!(windows) {
            // %ProgramData% can be changed by the user, so the usual place is tried too.
            let fixed = PathBuf::from(r"C:\ProgramData\Cairn\policy.toml");
            let mut paths: Vec<PathBuf> = std::env::var_os("ProgramData")
                .filter(|v| !v.is_empty())
                .map(|d| PathBuf::from(d).join("Cairn").join("policy.toml"))
                .into_iter()
                .collect();
            if !paths.contains(&fixed) {
                paths.push(fixed);
            }
            paths
        } else {
            vec![PathBuf::from("/etc/cairn/policy.toml")]
        }
    }

    /// The policy in force: the system file if there is one, else the file `$CAIRN_POLICY`
    /// names, else none. Never fails: a policy that cannot be read or understood is a
    /// fail-closed one ([`Policy::broken`] says why).
    pub fn load() -> Policy {
        Self::load_with(&Self::system_paths(), std::env::var_os(ENV_VAR))
    }

    fn load_with(system: &[PathBuf], env: Option<OsString>) -> Policy {
        for path in system {
            // Not following a link: a link whose target is missing is a policy someone meant
            // to be there, so it fails closed rather than counting as no policy.
            match std::fs::symlink_metadata(path) {
                Ok(_) => return Self::load_from(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if let Some(link) = dangling_link(path) {
                        return Self::failed(
                            path,
                            format!("cannot be read: {} is a symbolic link to something missing", link.display()),
                        );
                    }
                }
                Err(e) => return Self::failed(path, format!("cannot be read: {e}")),
            }
        }
        match env.filter(|v| !v.is_empty()).map(PathBuf::from) {
            None => Policy::none(),
            Some(path) => match std::fs::read_to_string(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Self::failed(&path, format!("does not exist (${ENV_VAR} names it)"))
                }
                Err(e) => Self::failed(&path, format!("cannot be read: {e}")),
                Ok(text) => Self::parse(&text, &path),
            },
        }
    }

    /// The policy in `path`. A file named explicitly must be there: a missing, unreadable or
    /// malformed one fails closed (a missing one with "file not found", or "a symbolic link to
    /// something missing"). Only the implicit system location may be absent ([`Policy::load`]).
    pub fn load_from(path: &Path) -> Policy {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match dangling_link(path) {
                Some(link) => Self::failed(
                    path,
                    format!("cannot be read: {} is a symbolic link to something missing", link.display()),
                ),
                None => Self::failed(path, "file not found".into()),
            },
            Err(e) => Self::failed(path, format!("cannot be read: {e}")),
        }
    }

    /// The policy written in `text`, read from `origin` (named in messages). Malformed text
    /// gives a fail-closed policy.
    pub fn parse(text: &str, origin: &Path) -> Policy {
        match file::parse(text) {
            Ok(rules) => {
                let home = folders::home_dir();
                Policy {
                    path: Some(origin.to_owned()),
                    source: origin.display().to_string(),
                    broken: None,
                    folders: compile(&rules.local_only, home.as_deref()),
                    rules,
                    home,
                }
            }
            Err(problem) => {
                let at = problem.span.and_then(|s| text.get(..s.start)).map(|before| {
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!("line {line}, column {column}: ")
                });
                Self::failed(origin, format!("{}{}", at.unwrap_or_default(), problem.reason))
            }
        }
    }

    fn failed(path: &Path, reason: String) -> Policy {
        Policy {
            path: Some(path.to_owned()),
            source: path.display().to_string(),
            broken: Some(format!("{}: {reason}", path.display())),
            rules: Rules::default(),
            home: folders::home_dir(),
            folders: Vec::new(),
        }
    }

    /// The same policy with `~/` in local-only patterns meaning `home` (`None`: any folder), for
    /// tests. Otherwise the home folder is the current user's in the system's user database
    /// (`/etc/passwd`; `%USERPROFILE%` on Windows), never `$HOME`.
    pub fn with_home(mut self, home: Option<PathBuf>) -> Policy {
        self.folders = compile(&self.rules.local_only, home.as_deref());
        self.home = home;
        self
    }

    /// The home folder `~/` in local-only patterns means; `None` when it is unknown and `~/X`
    /// means `X` in any folder.
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }

    /// The policy file's path, or `no policy`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The policy file, when there is one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether there is no policy at all.
    pub fn is_none(&self) -> bool {
        self.path.is_none()
    }

    /// Why the policy file is malformed (file, line and column when known, reason), when it is.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    fn deny(&self, rule: &str, says: String) -> Denied {
        Denied { rule: rule.to_owned(), message: format!("policy rule {rule} ({}) {says}", self.source) }
    }

    /// Whether `endpoint` may answer questions.
    pub fn check_chat(&self, endpoint: &Endpoint) -> Result<(), Denied> {
        self.check(endpoint, Use::Chat)
    }

    /// Whether `endpoint` may embed passages and questions.
    pub fn check_embeddings(&self, endpoint: &Endpoint) -> Result<(), Denied> {
        self.check(endpoint, Use::Embeddings)
    }

    /// Checks in order: remote use, kind, provider name, model, host.
    fn check(&self, e: &Endpoint, what: Use) -> Result<(), Denied> {
        let host = e.host.map(normalize_host);
        let remote = e.remote || host.as_deref().is_some_and(|h| !is_loopback(h));
        let r = &self.rules;
        if remote {
            if let Some(why) = &self.broken {
                return Err(Denied {
                    rule: MALFORMED.into(),
                    message: format!(
                        "the administrator's policy is malformed, so remote providers are off (provider \"{}\" is remote): {why}",
                        e.provider
                    ),
                });
            }
            let (allowed, rule, doing) = match what {
                Use::Chat => (r.remote_chat, "providers.remote_chat", "remote chat"),
                Use::Embeddings => (r.remote_embeddings, "providers.remote_embeddings", "remote embeddings"),
            };
            if allowed == Some(false) {
                let at = e.host.map(|h| format!(" at {h}")).unwrap_or_default();
                return Err(self.deny(
                    rule,
                    format!(
                        "does not allow {doing}: provider \"{}\"{at} is not on this computer; only the built-in models and servers on this computer may be used",
                        e.provider
                    ),
                ));
            }
        }
        if let Some(kinds) = &r.kinds
            && !kinds.iter().any(|k| k == e.kind)
        {
            return Err(self.deny(
                "providers.allowed_kinds",
                format!(
                    "does not allow provider kind \"{}\" (provider \"{}\"); allowed: {}",
                    e.kind,
                    e.provider,
                    list(kinds)
                ),
            ));
        }
        if let Some(names) = &r.names
            && !names.iter().any(|n| n == e.provider)
        {
            return Err(self.deny(
                "providers.allowed_names",
                format!("does not allow provider \"{}\"; allowed: {}", e.provider, list(names)),
            ));
        }
        let (models, rule) = match what {
            Use::Chat => (&r.models, "providers.allowed_models"),
            Use::Embeddings => (&r.embedding_models, "providers.allowed_embedding_models"),
        };
        if let Some(models) = models
            && !models.iter().any(|m| glob::name_matches(m, e.model))
        {
            return Err(self.deny(rule, format!("does not allow model \"{}\"; allowed: {}", e.model, list(models))));
        }
        if let Some(hosts) = &r.hosts
            && (remote || e.kind != "local")
        {
            let texts: Vec<String> = hosts.iter().map(|h| h.text.clone()).collect();
            let Some(host) = host else {
                return Err(self.deny(
                    "providers.allowed_hosts",
                    format!(
                        "cannot check provider \"{}\": its endpoint host is unknown; allowed: {}",
                        e.provider,
                        list(&texts)
                    ),
                ));
            };
            let labels: Vec<&str> = host.split('.').collect();
            let valid = !host.is_empty() && labels.iter().all(|l| !l.is_empty());
            if !valid || !hosts.iter().any(|p| glob::segments_match(&p.labels, &labels, false)) {
                return Err(self.deny(
                    "providers.allowed_hosts",
                    format!("does not allow host \"{host}\" (provider \"{}\"); allowed: {}", e.provider, list(&texts)),
                ));
            }
        }
        Ok(())
    }

    /// The local-only pattern `path` (absolute) falls under, if any: such a file is never sent
    /// to a remote provider. A malformed policy keeps every file local (`**`).
    pub fn local_only(&self, path: &Path) -> Option<&str> {
        if self.broken.is_some() {
            return Some("**");
        }
        let names = path_names(&path.to_string_lossy());
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.rules
            .local_only
            .iter()
            .zip(&self.folders)
            .find(|(_, f)| f.forms.iter().any(|form| glob::segments_match(form, &names, true)))
            .map(|(p, _)| p.as_str())
    }

    /// The hard caps from `[budget]`.
    pub fn budget(&self) -> &PolicyBudget {
        &self.rules.budget
    }

    /// Whether `action` needs the user's confirmation. A malformed policy asks for every one.
    pub fn requires_confirmation(&self, action: Confirm) -> bool {
        self.broken.is_some()
            || match action {
                Confirm::RemoteChat => self.rules.confirm_remote_chat,
                Confirm::NewProvider => self.rules.confirm_new_provider,
            } == Some(true)
    }

    /// Every rule in plain terms.
    pub fn describe(&self) -> PolicySummary {
        let mut rules = Vec::new();
        let mut add = |rule: &str, text: String| rules.push(RuleSummary { rule: rule.to_owned(), text });
        if self.broken.is_some() {
            add(
                MALFORMED,
                "the policy file is malformed: remote chat and remote embeddings are off, every file is local-only and every action needs confirmation until it is fixed".into(),
            );
        }
        let r = &self.rules;
        if let Some(v) = &r.kinds {
            add("providers.allowed_kinds", format!("only providers of kind {} may be used", or_none(v)));
        }
        if let Some(v) = &r.names {
            add("providers.allowed_names", format!("only the providers named {} may be used", or_none(v)));
        }
        if let Some(v) = &r.models {
            add("providers.allowed_models", format!("chat models must match {}", or_none(v)));
        }
        if let Some(v) = &r.embedding_models {
            add("providers.allowed_embedding_models", format!("embedding models must match {}", or_none(v)));
        }
        if let Some(v) = &r.hosts {
            let texts: Vec<String> = v.iter().map(|h| h.text.clone()).collect();
            add(
                "providers.allowed_hosts",
                format!("provider endpoints must be on a host matching {}", or_none(&texts)),
            );
        }
        match r.remote_chat {
            Some(false) => add(
                "providers.remote_chat",
                "questions go only to the built-in model and servers on this computer".into(),
            ),
            Some(true) => add("providers.remote_chat", "remote chat providers may be used".into()),
            None => {}
        }
        match r.remote_embeddings {
            Some(false) => add(
                "providers.remote_embeddings",
                "passages are embedded only by the built-in model and servers on this computer".into(),
            ),
            Some(true) => add("providers.remote_embeddings", "remote embedding providers may be used".into()),
            None => {}
        }
        let b = &r.budget;
        let cap = |v: f64, per: &str, whom: &str| {
            format!("at most {} a {per} {whom} (or the user's budget, if lower)", usd(v))
        };
        if let Some(v) = b.daily_usd {
            add("budget.daily_usd", cap(v, "day", "on all providers together"));
        }
        if let Some(v) = b.monthly_usd {
            add("budget.monthly_usd", cap(v, "month", "on all providers together"));
        }
        for (name, c) in &b.providers {
            if let Some(v) = c.daily_usd {
                add(&format!("budget.providers.{name}.daily_usd"), cap(v, "day", &format!("on provider \"{name}\"")));
            }
            if let Some(v) = c.monthly_usd {
                add(
                    &format!("budget.providers.{name}.monthly_usd"),
                    cap(v, "month", &format!("on provider \"{name}\"")),
                );
            }
        }
        for (p, f) in r.local_only.iter().zip(&self.folders) {
            let text = match &f.resolved {
                Some(real) => format!(
                    "files under {p} (and under {real}, where its symbolic links lead) are never sent to a remote provider"
                ),
                None => format!("files under {p} are never sent to a remote provider"),
            };
            add("privacy.local_only", text);
        }
        for (key, value) in &r.locked {
            add(&format!("locked.{key}"), format!("the setting {key} is kept at {value}"));
        }
        if r.confirm_remote_chat == Some(true) {
            add("confirm.remote_chat", "each question to a remote provider needs confirmation".into());
        }
        if r.confirm_new_provider == Some(true) {
            add("confirm.new_provider", "adding a provider needs confirmation".into());
        }
        PolicySummary {
            source: self.path.as_ref().map_or_else(|| "none".to_owned(), |p| p.display().to_string()),
            broken: self.broken.clone(),
            rules,
        }
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() { "(none: the list is empty)".to_owned() } else { items.join(", ") }
}

/// `$5.00`, `$0.005`.
fn usd(v: f64) -> String {
    if (v * 100.0).fract() == 0.0 { format!("${v:.2}") } else { format!("${v}") }
}

/// `API.OpenAI.com:443` → `api.openai.com`; `[::1]:8080` → `::1`; `example.com.` → `example.com`.
fn normalize_host(host: &str) -> String {
    let h = host.trim().to_lowercase();
    let h = if let Some(inner) = h.strip_prefix('[') {
        inner.split(']').next().unwrap_or("").to_owned()
    } else if h.matches(':').count() == 1 {
        h.split(':').next().unwrap_or("").to_owned()
    } else {
        h
    };
    h.strip_suffix('.').map(str::to_owned).unwrap_or(h)
}

/// `localhost`, 127.0.0.0/8 and `::1`: names that cannot leave this computer.
fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A path's components for matching: lower-cased, `.` and `..` resolved lexically, the
/// Windows verbatim prefix (`\\?\`, `\\?\UNC\`) dropped.
fn path_names(path: &str) -> Vec<String> {
    folders::split_names(path).into_iter().map(|n| n.to_lowercase()).collect()
}

fn compile(patterns: &[String], home: Option<&Path>) -> Vec<FolderPattern> {
    patterns.iter().map(|p| FolderPattern::new(p, home)).collect()
}

/// The symbolic link on the way to `path` (itself or a folder above it) whose target is
/// missing, if `path` is missing because of one.
fn dangling_link(path: &Path) -> Option<PathBuf> {
    path.ancestors().find_map(|a| {
        let link = std::fs::symlink_metadata(a).ok()?.file_type().is_symlink();
        (link && std::fs::metadata(a).is_err()).then(|| a.to_owned())
    })
}

#[cfg(test)]
mod tests;
