//! Who may send what where: the administrator's policy (`cairn-policy`) applied to the user's
//! settings and providers, and the privacy gate that keeps local-only folders on the machine.
//!
//! The policy is read once when the engine opens (`$CAIRN_POLICY`, else the OS location). It
//! always wins: locked settings are applied over the file on every read and a save that would
//! change them is refused; a provider, model or endpoint it does not allow is refused before
//! anything is sent; its budget caps tighten the user's. A malformed policy fails closed.

use crate::settings::{LOCAL, ProviderKind, ProviderSettings, Settings};
use crate::{Engine, EngineError};
use cairn_core::Hit;
use cairn_policy::{Confirm, Denied, Endpoint, set_dotted, stricter};
use std::path::Path;

impl From<Denied> for EngineError {
    fn from(d: Denied) -> EngineError {
        EngineError::PolicyDenied(d.message)
    }
}

fn kind_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Openai => "openai",
        ProviderKind::Anthropic => "anthropic",
    }
}

/// The endpoint a configured provider's chat model is reached at.
fn endpoint<'a>(p: &'a ProviderSettings, model: &'a str, host: &'a str) -> Endpoint<'a> {
    Endpoint { provider: &p.name, kind: kind_name(p.kind), model, host: Some(host), remote: !p.is_local() }
}

fn local_verdict(policy: &cairn_policy::Policy, model: &str) -> Result<(), Denied> {
    match policy.check_chat(&Endpoint { provider: LOCAL, kind: "local", model, host: None, remote: false }) {
        Err(d) if d.rule == "providers.allowed_models" => Ok(()),
        other => other,
    }
}

/// A lock Cairn cannot apply: its dotted key, and a sentence naming it and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LockDefect {
    pub key: String,
    pub message: String,
}

/// Locked keys Cairn cannot apply (no such setting, or a value it cannot take), each with why.
/// Such a policy is defective: its other locks still apply, remote providers are refused (fail
/// closed), and the built-in models keep working. The policy never changes while an engine is
/// open, so the engine works this out once.
pub(crate) fn lock_defects(policy: &cairn_policy::Policy) -> Vec<LockDefect> {
    let Ok(base) = toml::Value::try_from(Settings::default()) else { return Vec::new() };
    policy
        .locked()
        .filter_map(|(key, value)| {
            let mut v = base.clone();
            let message = if set_dotted(&mut v, key, value.clone()).is_err() {
                format!("locked.{key}: not a setting")
            } else {
                // Only the type is checked here: whether a locked provider exists depends on
                // each user's settings, and is checked when it is used.
                let e = v.try_into::<Settings>().err()?;
                format!("locked.{key} = {value}: {}", e.message())
            };
            Some(LockDefect { key: key.to_owned(), message })
        })
        .collect()
}

/// The policy's view of the settings: locked values set (all but the `defects`), budget caps
/// the stricter of the two.
pub(crate) fn apply_policy(
    policy: &cairn_policy::Policy,
    defects: &[LockDefect],
    settings: Settings,
) -> Result<Settings, EngineError> {
    let mut s = settings;
    if policy.locked().next().is_some() {
        let mut value =
            toml::Value::try_from(&s).map_err(|e| EngineError::Internal(format!("settings as TOML: {e}")))?;
        for (key, locked) in policy.locked() {
            if !defects.iter().any(|d| d.key == key) {
                let _ = set_dotted(&mut value, key, locked.clone());
            }
        }
        s = value.try_into().map_err(|e: toml::de::Error| {
            EngineError::PolicyDenied(format!(
                "the administrator's policy ({}) cannot be applied: {}",
                policy.source(),
                e.message()
            ))
        })?;
    }
    let cap = policy.budget();
    s.budget.daily_usd = stricter(s.budget.daily_usd, cap.daily_usd);
    s.budget.monthly_usd = stricter(s.budget.monthly_usd, cap.monthly_usd);
    for (name, c) in &cap.providers {
        let b = s.budget.providers.entry(name.clone()).or_default();
        b.daily_usd = stricter(b.daily_usd, c.daily_usd);
        b.monthly_usd = stricter(b.monthly_usd, c.monthly_usd);
    }
    Ok(s)
}

/// A source that must not leave the machine, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Private {
    /// Index into the hits it was found in.
    pub index: usize,
    pub reason: String,
}

impl Engine {
    /// Refuses a save that changes a setting the policy locks (naming the rule).
    pub(crate) fn check_settings_change(&self, before: &Settings, after: &Settings) -> Result<(), EngineError> {
        if self.policy.locked().next().is_none() {
            return Ok(());
        }
        let as_toml = |s: &Settings| {
            toml::Value::try_from(s).map_err(|e| EngineError::Internal(format!("settings as TOML: {e}")))
        };
        self.policy.check_change(&as_toml(before)?, &as_toml(after)?)?;
        Ok(())
    }

    /// A defective policy (locks Cairn cannot apply) keeps remote providers off.
    fn check_policy_defects(&self, p: &ProviderSettings) -> Result<(), EngineError> {
        let defects = &self.policy_defects;
        if !p.is_local() && !defects.is_empty() {
            return Err(EngineError::PolicyDenied(format!(
                "the administrator's policy ({}) locks settings Cairn cannot apply ({}), so remote providers are off until it is fixed (provider `{}` is remote)",
                self.policy.source(),
                defects.iter().map(|d| d.message.as_str()).collect::<Vec<_>>().join("; "),
                p.name
            )));
        }
        Ok(())
    }

    /// May provider `p` (configured) answer with `model`?
    pub(crate) fn check_chat_provider(&self, p: &ProviderSettings) -> Result<(), EngineError> {
        self.check_policy_defects(p)?;
        let host = p.host();
        self.policy.check_chat(&endpoint(p, &p.model, &host))?;
        Ok(())
    }

    /// May the built-in model answer? Only `allowed_kinds` and `allowed_names` can say no:
    /// `allowed_models` lists the models people may reach through providers, and the built-in
    /// model never leaves the machine (an administrator who wants it off leaves "local" out of
    /// `allowed_kinds`).
    pub(crate) fn check_local_chat(&self, model: &str) -> Result<(), EngineError> {
        local_verdict(&self.policy, model)?;
        Ok(())
    }

    /// May `p` embed passages and questions?
    pub(crate) fn check_embedding_provider(&self, p: &ProviderSettings) -> Result<(), EngineError> {
        self.check_policy_defects(p)?;
        let host = p.host();
        let model = p.embedding_model.as_deref().unwrap_or_default();
        self.policy.check_embeddings(&endpoint(p, model, &host))?;
        Ok(())
    }

    /// Before a provider is added to the settings: the policy must allow it (for chat, and for
    /// embeddings when it has an embedding model), and confirm it when the policy says so; its
    /// `CAIRN_API_KEY_<NAME>` must not be another provider's (`keys::check_key_variable`).
    pub fn check_new_provider(&self, settings: &Settings, confirmed: bool) -> Result<(), EngineError> {
        let Some(p) = settings.providers.last() else { return Ok(()) };
        crate::keys::check_key_variable(settings)?;
        self.check_chat_provider(p)?;
        if p.embedding_model.is_some() {
            self.check_embedding_provider(p)?;
        }
        if !confirmed && self.policy.requires_confirmation(Confirm::NewProvider) {
            return Err(EngineError::ConfirmationRequired(format!(
                "the administrator's policy ({}) asks you to confirm adding provider `{}` ({}): run again with --yes",
                self.policy.source(),
                p.name,
                p.base_url()
            )));
        }
        Ok(())
    }

    /// A question may only go to the provider the policy locks `chat.provider` to (`--provider`
    /// and the environment's provider included).
    pub(crate) fn check_locked_provider(&self, chosen: &str) -> Result<(), EngineError> {
        if let Some(locked) = self.policy.is_locked("chat.provider").and_then(|v| v.as_str())
            && locked != chosen
        {
            return Err(EngineError::PolicyDenied(format!(
                "policy rule locked.chat.provider ({}) keeps questions on provider `{locked}`; `{chosen}` cannot answer",
                self.policy.source()
            )));
        }
        Ok(())
    }

    /// Under a hard budget from the policy, a call whose price is unknown cannot be allowed:
    /// nothing would count against the cap.
    pub(crate) fn check_unpriced_under_policy_cap(&self, provider: &str, model: &str) -> Result<(), EngineError> {
        let b = self.policy.budget();
        let capped = b.daily_usd.is_some()
            || b.monthly_usd.is_some()
            || b.providers.get(provider).is_some_and(|c| c.daily_usd.is_some() || c.monthly_usd.is_some());
        if capped {
            return Err(EngineError::PolicyDenied(format!(
                "the administrator's policy ({}) caps spending, and no price is known for {model} at provider `{provider}`: add its price (`price` in its [[providers]] entry, or [[prices]]) so the cap can be kept",
                self.policy.source()
            )));
        }
        Ok(())
    }

    /// Before a question goes to remote provider `name`, when the policy asks for confirmation.
    pub(crate) fn check_remote_confirmed(&self, name: &str, confirmed: bool) -> Result<(), EngineError> {
        if !confirmed && self.policy.requires_confirmation(Confirm::RemoteChat) {
            return Err(EngineError::ConfirmationRequired(format!(
                "the administrator's policy ({}) asks you to confirm before a question and its sources go to the remote provider `{name}`: run again with --yes",
                self.policy.source()
            )));
        }
        Ok(())
    }

    /// Labels a registered folder local-only (or lifts the label). The path is matched however
    /// it is spelled.
    pub fn set_local_only(&self, path: &Path, local_only: bool) -> Result<(), EngineError> {
        let key = crate::folder_key(path);
        if !local_only && let Some(pattern) = self.policy.local_only(Path::new(&key)) {
            return Err(EngineError::PolicyDenied(format!(
                "{} is local-only by the administrator's policy (privacy.local_only = \"{pattern}\", {}); the label cannot be lifted",
                path.display(),
                self.policy.source()
            )));
        }
        if local_only {
            // A remote embedder would send the folder's text away at the next pass.
            let settings = self.settings()?;
            if let Some(p) = settings.provider(&settings.embeddings.provider) {
                return Err(EngineError::PolicyDenied(format!(
                    "{} cannot be local-only while passages are embedded by the remote provider `{}`: set [embeddings] provider = \"local\" first",
                    path.display(),
                    p.name
                )));
            }
        }
        if !self.db()?.set_local_only(&key, local_only)? {
            return Err(EngineError::InvalidInput(format!("{} is not a registered folder", path.display())));
        }
        Ok(())
    }

    /// Why `path` (an indexed file or a folder) must stay on this machine, if it must. Both the
    /// path as indexed and the file it resolves to are checked, so a symlink inside a public
    /// folder cannot carry a local-only file out.
    pub(crate) fn local_only_reason(&self, path: &str, folders: &[cairn_db::FolderRow]) -> Option<String> {
        let p = Path::new(path);
        let real = std::fs::canonicalize(p).ok();
        let candidates = std::iter::once(p).chain(real.as_deref().filter(|r| *r != p));
        for c in candidates {
            if let Some(f) = folders.iter().find(|f| f.local_only && c.starts_with(&f.path)) {
                return Some(format!("folder {} is labelled local-only", f.path));
            }
            if let Some(pattern) = self.policy.local_only(c) {
                return Some(format!("policy privacy.local_only \"{pattern}\" ({})", self.policy.source()));
            }
        }
        None
    }

    /// Whether the policy names any local-only paths (a malformed one makes everything local).
    fn policy_has_local_only(&self) -> bool {
        self.policy.broken().is_some() || self.policy.describe().rules.iter().any(|r| r.rule == "privacy.local_only")
    }

    /// The remote provider an evaluation would send dataset text to, if any: the embedder, or
    /// (for answer evaluations, `llm` given) the chat provider.
    pub(crate) fn remote_use(&self, llm: Option<&crate::LlmChoice>) -> Result<Option<String>, EngineError> {
        let settings = self.effective_settings()?;
        if let Some(p) = settings.provider(&settings.embeddings.provider)
            && !p.is_local()
        {
            return Ok(Some(p.name.clone()));
        }
        let chat = match llm {
            Some(crate::LlmChoice::Auto) => Some(settings.chat.provider.clone()),
            Some(crate::LlmChoice::Provider(name)) => Some(name.clone()),
            _ => None,
        };
        Ok(chat.and_then(|name| settings.provider(&name).filter(|p| !p.is_local()).map(|p| p.name.clone())))
    }

    /// A dataset folder evaluated with a remote model would send its text away: refused when the
    /// folder is local-only.
    pub(crate) fn check_dataset_may_leave(&self, dir: &Path, remote_use: Option<&str>) -> Result<(), EngineError> {
        let Some(provider) = remote_use else { return Ok(()) };
        let folders = self.db()?.folders()?;
        let key = crate::folder_key(dir);
        if let Some(why) = self.local_only_reason(&key, &folders) {
            return Err(EngineError::PolicyDenied(format!(
                "{} is local-only ({why}): its text cannot go to the remote provider `{provider}`; evaluate it with local models",
                dir.display()
            )));
        }
        Ok(())
    }

    /// Whether a stored turn's answer (its JSON) drew on local-only sources. A turn that cannot
    /// be read counts as private.
    pub(crate) fn turn_is_private(&self, answer_json: &str, folders: &[cairn_db::FolderRow]) -> bool {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(answer_json) else { return true };
        ["considered", "sources"].iter().any(|k| {
            v[k].as_array().is_some_and(|a| {
                a.iter().any(|c| c["path"].as_str().is_some_and(|p| self.local_only_reason(p, folders).is_some()))
            })
        })
    }

    /// The hits whose text must not reach a remote provider.
    pub(crate) fn private_sources(&self, hits: &[Hit]) -> Result<Vec<Private>, EngineError> {
        let folders = self.db()?.folders()?;
        Ok(hits
            .iter()
            .enumerate()
            .filter_map(|(index, h)| self.local_only_reason(&h.path, &folders).map(|reason| Private { index, reason }))
            .collect())
    }

    /// Folders whose text a remote embedder must never see: refuses a remote embedder while any
    /// exists (labelled, or matched by the policy).
    pub(crate) fn check_remote_embedding(&self, provider: &str) -> Result<(), EngineError> {
        // Policy patterns can match files anywhere inside a folder (`**/confidential/**`): with
        // any such pattern, no passage may be embedded remotely.
        if self.policy_has_local_only() {
            return Err(EngineError::PolicyDenied(format!(
                "passages cannot be embedded by the remote provider `{provider}`: the administrator's policy ({}) keeps some files local-only (privacy.local_only); set [embeddings] provider = \"local\"",
                self.policy.source()
            )));
        }
        let folders = self.db()?.folders()?;
        if let Some((f, why)) = folders.iter().find_map(|f| self.local_only_reason(&f.path, &folders).map(|w| (f, w))) {
            return Err(EngineError::PolicyDenied(format!(
                "passages cannot be embedded by the remote provider `{provider}`: {} is local-only ({why}); set [embeddings] provider = \"local\"",
                f.path
            )));
        }
        Ok(())
    }
}

/// `cairn policy check`: a policy and what it means for this user's settings and folders.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PolicyCheck {
    pub policy: cairn_policy::PolicySummary,
    /// Each configured provider (the built-in one first): allowed, or the refusal.
    pub providers: Vec<ProviderVerdict>,
    /// Registered folders that are local-only, and why.
    pub local_only: Vec<(String, String)>,
    /// Settings in the user's file that the policy overrides: key, the file's value, the
    /// locked value.
    pub overridden: Vec<(String, String, String)>,
    /// Locks Cairn cannot apply (no such setting, or a value it cannot take): while there are
    /// any, remote providers are off.
    pub defects: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ProviderVerdict {
    pub name: String,
    pub remote: bool,
    /// `None`: allowed; else the policy's sentence.
    pub chat: Option<String>,
    pub embeddings: Option<String>,
}

impl Engine {
    /// What `policy` (or the policy in force) allows of the current settings and folders.
    pub fn check_policy(&self, policy: Option<&cairn_policy::Policy>) -> Result<PolicyCheck, EngineError> {
        let policy = policy.unwrap_or(&self.policy);
        let file = Settings::load(&self.config.data_dir)?;
        let deny = |r: Result<(), Denied>| r.err().map(|d| d.message);
        let mut providers = vec![ProviderVerdict {
            name: LOCAL.into(),
            remote: false,
            chat: deny(local_verdict(policy, crate::providers::DEFAULT_GGUF)),
            embeddings: None,
        }];
        for p in &file.providers {
            let host = p.host();
            providers.push(ProviderVerdict {
                name: p.name.clone(),
                remote: !p.is_local(),
                chat: deny(policy.check_chat(&endpoint(p, &p.model, &host))),
                embeddings: p
                    .embedding_model
                    .as_deref()
                    .and_then(|m| deny(policy.check_embeddings(&endpoint(p, m, &host)))),
            });
        }
        let folders = self.db()?.folders()?;
        let local_only = folders
            .iter()
            .filter_map(|f| {
                if f.local_only {
                    return Some((f.path.clone(), "labelled local-only".to_owned()));
                }
                policy.local_only(Path::new(&f.path)).map(|p| (f.path.clone(), format!("privacy.local_only \"{p}\"")))
            })
            .collect();
        let mut overridden = Vec::new();
        if let Ok(value) = toml::Value::try_from(&file) {
            for (key, locked) in policy.locked() {
                let mut at = Some(&value);
                for seg in key.split('.') {
                    at = at.and_then(|v| v.get(seg));
                }
                if let Some(now) = at
                    && now != locked
                {
                    overridden.push((key.to_owned(), now.to_string(), locked.to_string()));
                }
            }
        }
        Ok(PolicyCheck {
            policy: policy.describe(),
            providers,
            local_only,
            overridden,
            defects: lock_defects(policy).into_iter().map(|d| d.message).collect(),
        })
    }
}
