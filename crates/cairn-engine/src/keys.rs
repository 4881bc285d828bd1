//! API keys: where a provider's key comes from, and the `cairn key set | remove | list`
//! operations on the OS keyring (`cairn-secrets`).
//!
//! Order, first found wins: `$CAIRN_API_KEY_<NAME>` (the headless override; for the `env`
//! provider also `$CAIRN_OPENAI_API_KEY`), then the OS keyring, then the vendor's own variable
//! for its own endpoint (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`). A keyring that cannot be
//! opened is not an error here: local use needs no key, so the problem is only reported when a
//! provider turns out to need a key that none of these gave.
//!
//! A key in the keyring is bound to the endpoint host it was stored for (`cairn-secrets`):
//! `cairn key set NAME` stores it for the host provider NAME points at (or, before `openai` or
//! `anthropic` is configured, for that vendor's endpoint), and a lookup for a provider that now
//! points elsewhere finds no key and says why. A key stored by an earlier Cairn, without a host,
//! is taken to be for the default endpoint of the provider's kind (`api.openai.com`,
//! `api.anthropic.com`): it keeps working there and nowhere else until `cairn key set` stores it
//! again, with its host.

use crate::providers::ENV_PROVIDER;
use crate::settings::{LOCAL, ProviderKind, ProviderSettings, Settings};
use crate::{Engine, EngineError};
use cairn_secrets::{KeyStore, SecretError, StoredKey};
use serde::Serialize;

/// Where a provider's key was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeySource {
    /// An environment variable, by name.
    Environment { variable: String },
    /// The OS keyring, by backend id (`secret-service`, `kernel`, `keychain`...).
    Keyring { backend: String },
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Environment { variable } => write!(f, "environment variable {variable}"),
            KeySource::Keyring { backend } => write!(f, "OS keyring ({backend})"),
        }
    }
}

/// The outcome of looking for a provider's key. `Debug` never shows the key.
pub(crate) struct KeyLookup {
    pub(crate) key: Option<String>,
    pub(crate) source: Option<KeySource>,
    /// Why the keyring could not be asked, when it could not.
    pub(crate) keyring_problem: Option<String>,
    /// Why the key in the keyring was not used: it was stored for another host.
    pub(crate) other_host: Option<String>,
}

impl std::fmt::Debug for KeyLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLookup")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("source", &self.source)
            .field("keyring_problem", &self.keyring_problem)
            .field("other_host", &self.other_host)
            .finish()
    }
}

fn read_var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The variables that override the keyring for `name`, most specific first.
fn override_vars(name: &str) -> Vec<String> {
    let mut vars = vec![cairn_secrets::env_var(name)];
    if name == ENV_PROVIDER {
        vars.push("CAIRN_OPENAI_API_KEY".to_owned());
    }
    vars
}

/// The vendor's own variable, honoured only for the vendor's own endpoint.
fn vendor_var(p: &ProviderSettings) -> Option<&'static str> {
    match p.vendor() {
        Some("openai") => Some("OPENAI_API_KEY"),
        Some("anthropic") => Some("ANTHROPIC_API_KEY"),
        _ => None,
    }
}

/// The default endpoint host of a provider kind: the vendor's own.
fn default_host(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Openai => "api.openai.com",
        ProviderKind::Anthropic => "api.anthropic.com",
    }
}

/// The kind of the vendor endpoint a key may be stored for before a provider of that name is
/// configured (`cairn key set openai` first, `cairn providers add openai ...` after).
fn vendor_name(name: &str) -> Option<ProviderKind> {
    match name {
        "openai" => Some(ProviderKind::Openai),
        "anthropic" => Some(ProviderKind::Anthropic),
        _ => None,
    }
}

/// Where a keyring key for a provider may be sent.
#[derive(Clone, Debug)]
struct KeyTarget {
    /// The provider's endpoint host: the only one its key is sent to.
    host: String,
    /// The host a key stored without one (by an earlier Cairn) is taken to be for.
    legacy_host: &'static str,
}

impl KeyTarget {
    fn of(p: &ProviderSettings) -> KeyTarget {
        KeyTarget { host: p.host(), legacy_host: default_host(p.kind) }
    }

    /// Whether `stored` may be sent to this endpoint: it was stored for its host (or, stored
    /// by an earlier Cairn without a host, this is the default endpoint of the kind).
    fn accepts(&self, stored: &StoredKey) -> bool {
        !self.host.is_empty() && stored.host.as_deref().unwrap_or(self.legacy_host) == self.host
    }

    /// For `name` in `settings`, or the vendor endpoint `openai` / `anthropic` name before
    /// they are configured. `None`: no endpoint, so no keyring key is ever sent.
    fn find(settings: &Settings, name: &str) -> Option<KeyTarget> {
        match settings.provider(name) {
            Some(p) => Some(KeyTarget::of(p)),
            None => vendor_name(name)
                .map(|kind| KeyTarget { host: default_host(kind).to_owned(), legacy_host: default_host(kind) }),
        }
    }
}

/// Why a key stored for another host is not sent to `target` (or anywhere, with no target).
fn other_host_message(name: &str, stored: &StoredKey, target: Option<&KeyTarget>) -> String {
    let legacy = target.map_or("its vendor's endpoint", |t| t.legacy_host);
    let was = match &stored.host {
        Some(h) => h.clone(),
        None => format!(
            "{legacy} (it was stored by an earlier Cairn, which did not record the host, so it is taken to be for the default endpoint)"
        ),
    };
    match target {
        Some(t) => format!(
            "the key stored for `{name}` was for {was}; the provider now points at {}: run `cairn key set {name}` again",
            if t.host.is_empty() { "no valid host" } else { &t.host }
        ),
        None => format!("the key stored for `{name}` was for {was}; no provider `{name}` is configured"),
    }
}

/// Finds the key for `p` (see the module comment for the order).
pub(crate) fn lookup(p: &ProviderSettings) -> KeyLookup {
    // The environment first, so headless use never touches D-Bus or the kernel keyring.
    for var in override_vars(&p.name) {
        if let Some(key) = read_var(&var) {
            return KeyLookup {
                key: Some(key),
                source: Some(KeySource::Environment { variable: var }),
                keyring_problem: None,
                other_host: None,
            };
        }
    }
    lookup_with(&p.name, Some(&KeyTarget::of(p)), vendor_var(p), &KeyStore::open())
}

fn lookup_with(
    name: &str,
    target: Option<&KeyTarget>,
    vendor_var: Option<&str>,
    store: &Result<KeyStore, SecretError>,
) -> KeyLookup {
    let env = |variable: String| KeySource::Environment { variable };
    for var in override_vars(name) {
        if let Some(key) = read_var(&var) {
            return KeyLookup { key: Some(key), source: Some(env(var)), keyring_problem: None, other_host: None };
        }
    }
    let mut keyring_problem = None;
    let mut other_host = None;
    match store.as_ref().map(|s| (s, s.get(name))) {
        // Sent only to the host it was stored for.
        Ok((s, Ok(Some(stored)))) if target.is_some_and(|t| t.accepts(&stored)) => {
            let source = KeySource::Keyring { backend: s.backend().id().to_owned() };
            return KeyLookup { key: Some(stored.key), source: Some(source), keyring_problem: None, other_host: None };
        }
        Ok((_, Ok(Some(stored)))) => other_host = Some(other_host_message(name, &stored, target)),
        // Nothing stored; if a preferred keyring was passed over, say so: the key may be there.
        Ok((s, Ok(None))) if !s.passed_over().is_empty() => {
            keyring_problem =
                Some(format!("only the {} was searched; {}", s.backend().describe(), s.passed_over().join("; ")))
        }
        Ok((_, Ok(None))) => {}
        Ok((_, Err(e))) => keyring_problem = Some(e.to_string()),
        Err(e) => keyring_problem = Some(e.to_string()),
    }
    if let Some(var) = vendor_var
        && let Some(key) = read_var(var)
    {
        return KeyLookup { key: Some(key), source: Some(env(var.to_owned())), keyring_problem, other_host };
    }
    KeyLookup { key: None, source: None, keyring_problem, other_host }
}

/// What to tell someone whose provider `name` needs a key that was not found; `other_host`
/// when the keyring holds one for another host ([`KeyLookup::other_host`]).
pub(crate) fn missing_key_message(name: &str, keyring_problem: Option<&str>, other_host: Option<&str>) -> String {
    if let Some(why) = other_host {
        return format!(
            "no API key for provider `{name}`: {why} (or set the environment variable {})",
            cairn_secrets::env_var(name)
        );
    }
    let mut m = format!(
        "no API key for provider `{name}`: store one with `cairn key set {name}` (kept in the OS keyring) or set the environment variable {}",
        cairn_secrets::env_var(name)
    );
    if let Some(problem) = keyring_problem {
        if problem.starts_with("only the ") {
            m.push_str(&format!(" ({problem})"));
        } else {
            m.push_str(&format!(" (the OS keyring could not be asked: {problem})"));
        }
    }
    m
}

/// The keyring in use, as `cairn key` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct KeyringInfo {
    /// `secret-service`, `kernel`, `keychain` or `credential-manager`.
    pub id: String,
    pub description: String,
    pub survives_reboot: bool,
    /// Why preferred keyrings were not used (e.g. no Secret Service answered).
    pub passed_over: Vec<String>,
}

impl KeyringInfo {
    fn of(store: &KeyStore) -> KeyringInfo {
        let b = store.backend();
        KeyringInfo {
            id: b.id().to_owned(),
            description: b.describe(),
            survives_reboot: b.survives_reboot(),
            passed_over: store.passed_over().to_vec(),
        }
    }
}

/// One provider's key, as `cairn key list` shows it: where it comes from, never what it is.
#[derive(Clone, Debug, Serialize)]
pub struct KeyStatus {
    pub provider: String,
    /// Whether settings (or the environment's `env` provider) define this provider.
    pub configured: bool,
    /// Where the key used for calls comes from; `None`: no key.
    pub source: Option<KeySource>,
    /// The variable that would override the keyring.
    pub variable: String,
    /// Whether the keyring holds a key for it (also when a variable overrides it, and also
    /// when it is for another host); `None` when the keyring could not be asked.
    pub in_keyring: Option<bool>,
    /// The endpoint host the keyring's key is for (the assumed one for a key stored by an
    /// earlier Cairn); the key is sent nowhere else.
    pub keyring_host: Option<String>,
    /// The provider's endpoint host now.
    pub host: Option<String>,
    /// Why the keyring's key is not used, when it was stored for another host.
    pub other_host: Option<String>,
    /// Whether calls are refused without a key (the vendors' own endpoints); other servers
    /// are sent no key and say themselves whether they want one.
    pub needs_key: bool,
}

/// What `cairn key list` shows.
#[derive(Clone, Debug, Serialize)]
pub struct KeyReport {
    /// The keyring keys are stored in; `None` when none could be opened.
    pub keyring: Option<KeyringInfo>,
    /// Why no keyring could be opened.
    pub keyring_error: Option<String>,
    pub keys: Vec<KeyStatus>,
}

/// The receipt of `cairn key set` / `remove`.
#[derive(Clone, Debug, Serialize)]
pub struct KeyChange {
    pub provider: String,
    pub keyring: KeyringInfo,
    /// For `remove`: whether a key was there to remove. For `set`: true.
    pub changed: bool,
    /// Whether settings define this provider (a key for `openai` or `anthropic` may be stored
    /// before it is configured, for the vendor's endpoint).
    pub configured: bool,
    /// For `set`: the endpoint host the key was stored for, the only one it is sent to.
    pub host: Option<String>,
    /// A variable that is set and so overrides the keyring for this provider.
    pub overridden_by: Option<String>,
}

fn refuse_local(name: &str) -> Result<(), EngineError> {
    if name == LOCAL {
        return Err(EngineError::InvalidInput(format!(
            "`{LOCAL}` is the built-in model on this computer: it never needs an API key"
        )));
    }
    cairn_secrets::check_name(name)?;
    Ok(())
}

/// Refuses a new provider (the last in `settings`) whose `CAIRN_API_KEY_<NAME>` variable another
/// configured provider already reads: names that differ only in `-` / `_` or in case would
/// silently share one key.
pub(crate) fn check_key_variable(settings: &Settings) -> Result<(), EngineError> {
    let Some(new) = settings.providers.last() else { return Ok(()) };
    let var = cairn_secrets::env_var(&new.name);
    let names = settings.providers.iter().map(|p| p.name.as_str()).chain([ENV_PROVIDER, LOCAL]);
    if let Some(other) = names.filter(|n| *n != new.name).find(|n| cairn_secrets::env_var(n) == var) {
        return Err(EngineError::InvalidInput(format!(
            "provider `{}` would take its key from the environment variable {var}, which is already the variable of {}: names that differ only in `-`, `_` or case share one variable; choose another name",
            new.name,
            match other {
                ENV_PROVIDER => format!("the environment's provider `{ENV_PROVIDER}`"),
                LOCAL => format!("the built-in provider `{LOCAL}`"),
                _ => format!("provider `{other}` (or remove `{other}` first)"),
            }
        )));
    }
    Ok(())
}

/// A key the OS keyring holds for a provider, as `cairn providers remove` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct KeyringEntry {
    pub provider: String,
    /// The endpoint host it was stored for; `None` for a key stored by an earlier Cairn.
    pub host: Option<String>,
    /// The keyring, for people.
    pub keyring: String,
}

impl Engine {
    /// Refuses a name no key can be stored under (`local`, not a provider name, or a provider
    /// that is not configured: a key is stored for its endpoint host), so a shell can say so
    /// before asking for the key.
    pub fn check_key_name(&self, name: &str) -> Result<(), EngineError> {
        self.key_target(name).map(|_| ())
    }

    fn key_target(&self, name: &str) -> Result<KeyTarget, EngineError> {
        refuse_local(name)?;
        let settings = self.effective_settings()?;
        let target = KeyTarget::find(&settings, name).ok_or_else(|| {
            EngineError::InvalidInput(format!(
                "no provider named `{name}` is configured: add it first (`cairn providers add {name} ...`), since a key is stored for the endpoint host its provider points at and sent nowhere else (`openai` and `anthropic` may be set first, for the vendors' own endpoints)"
            ))
        })?;
        if let Some(p) = settings.provider(name) {
            cairn_secrets::check_host(&target.host).map_err(|_| {
                EngineError::InvalidInput(format!(
                    "provider `{name}` has no valid endpoint host ({}): fix its base URL first",
                    p.base_url()
                ))
            })?;
        }
        Ok(target)
    }

    /// Stores `key` for provider `name` in the OS keyring, for the endpoint host the provider
    /// points at now, replacing any earlier one.
    pub fn set_key(&self, name: &str, key: &str) -> Result<KeyChange, EngineError> {
        let target = self.key_target(name)?;
        let store = KeyStore::open()?;
        store.set(name, &target.host, key)?;
        self.key_change(name, &store, true, Some(target.host))
    }

    /// Deletes the key stored for provider `name`; `changed` is false if there was none.
    pub fn remove_key(&self, name: &str) -> Result<KeyChange, EngineError> {
        refuse_local(name)?;
        let store = KeyStore::open()?;
        let removed = store.remove(name)?;
        self.key_change(name, &store, removed, None)
    }

    /// The key the OS keyring holds for `name`, if any (never the key itself). `Ok(None)` also
    /// when no keyring can be opened: there is then nothing to report.
    pub fn keyring_entry(&self, name: &str) -> Result<Option<KeyringEntry>, EngineError> {
        refuse_local(name)?;
        let Ok(store) = KeyStore::open() else { return Ok(None) };
        Ok(store.get(name)?.map(|stored| KeyringEntry {
            provider: name.to_owned(),
            host: stored.host,
            keyring: store.backend().describe(),
        }))
    }

    fn key_change(
        &self,
        name: &str,
        store: &KeyStore,
        changed: bool,
        host: Option<String>,
    ) -> Result<KeyChange, EngineError> {
        let settings = self.effective_settings()?;
        Ok(KeyChange {
            provider: name.to_owned(),
            keyring: KeyringInfo::of(store),
            changed,
            configured: settings.provider(name).is_some(),
            host,
            overridden_by: override_vars(name).into_iter().find(|v| read_var(v).is_some()),
        })
    }

    /// Where each configured provider's key comes from, plus the providers in `extra`.
    pub fn key_status(&self, extra: &[String]) -> Result<KeyReport, EngineError> {
        let settings = self.effective_settings()?;
        let store = KeyStore::open();
        let mut names: Vec<String> = settings.providers.iter().map(|p| p.name.clone()).collect();
        for name in extra {
            refuse_local(name)?;
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        let mut keys = Vec::new();
        for name in names {
            let configured = settings.provider(&name);
            let target = KeyTarget::find(&settings, &name);
            let found = lookup_with(&name, target.as_ref(), configured.and_then(vendor_var), &store);
            let stored = match &store {
                Ok(s) => s.get(&name).ok(),
                Err(_) => None,
            };
            let keyring_host = match &stored {
                Some(Some(k)) => k.host.clone().or_else(|| target.as_ref().map(|t| t.legacy_host.to_owned())),
                _ => None,
            };
            // Said whenever the keyring's key is for another host, also when a variable is used.
            let other_host = match (&stored, &found.other_host) {
                (_, Some(why)) => Some(why.clone()),
                (Some(Some(k)), None) if !target.as_ref().is_some_and(|t| t.accepts(k)) => {
                    Some(other_host_message(&name, k, target.as_ref()))
                }
                _ => None,
            };
            keys.push(KeyStatus {
                provider: name.clone(),
                configured: configured.is_some(),
                source: found.source,
                variable: cairn_secrets::env_var(&name),
                in_keyring: stored.as_ref().map(Option::is_some),
                keyring_host,
                host: target.map(|t| t.host),
                other_host,
                needs_key: configured.is_some_and(|p| p.vendor().is_some()),
            });
        }
        let (keyring, keyring_error) = match &store {
            Ok(s) => (Some(KeyringInfo::of(s)), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(KeyReport { keyring, keyring_error, keys })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_message_for_a_missing_key_says_how_to_set_one_and_why_the_keyring_was_not_asked() {
        let m = missing_key_message("my-openai", Some("no OS keyring to keep API keys in (...)"), None);
        assert_eq!(
            m,
            "no API key for provider `my-openai`: store one with `cairn key set my-openai` (kept in the OS keyring) or set the environment variable CAIRN_API_KEY_MY_OPENAI (the OS keyring could not be asked: no OS keyring to keep API keys in (...))"
        );
    }

    fn provider(name: &str, kind: ProviderKind, base_url: Option<&str>) -> ProviderSettings {
        ProviderSettings {
            name: name.into(),
            kind,
            base_url: base_url.map(Into::into),
            model: "m".into(),
            ..Default::default()
        }
    }

    fn stored(host: Option<&str>) -> StoredKey {
        StoredKey { key: "sk-x".into(), host: host.map(Into::into) }
    }

    #[test]
    fn a_keyring_key_is_sent_only_to_the_host_it_was_stored_for() {
        let vendor = KeyTarget::of(&provider("openai", ProviderKind::Openai, None));
        let moved = KeyTarget::of(&provider("openai", ProviderKind::Openai, Some("http://192.0.2.2:28111/v1")));
        assert!(vendor.accepts(&stored(Some("api.openai.com"))));
        assert!(!moved.accepts(&stored(Some("api.openai.com"))));
        assert!(moved.accepts(&stored(Some("192.0.2.2"))));
        // Stored by an earlier Cairn: taken to be for the kind's default endpoint only.
        assert!(vendor.accepts(&stored(None)));
        assert!(!moved.accepts(&stored(None)));
        let claude = KeyTarget::of(&provider("claude", ProviderKind::Anthropic, None));
        assert!(claude.accepts(&stored(None)) && !claude.accepts(&stored(Some("api.openai.com"))));
        // A provider with no parsable host accepts nothing.
        let broken = KeyTarget::of(&provider("x", ProviderKind::Openai, Some("not a url")));
        assert!(!broken.accepts(&stored(Some(""))));

        assert_eq!(
            other_host_message("openai", &stored(Some("api.openai.com")), Some(&moved)),
            "the key stored for `openai` was for api.openai.com; the provider now points at 192.0.2.2: run `cairn key set openai` again"
        );
        let legacy = other_host_message("openai", &stored(None), Some(&moved));
        assert!(
            legacy.starts_with("the key stored for `openai` was for api.openai.com (it was stored by an earlier Cairn")
                && legacy.ends_with("now points at 192.0.2.2: run `cairn key set openai` again"),
            "{legacy}"
        );
        let m = missing_key_message("openai", None, Some("the key stored for `openai` was for api.openai.com; ..."));
        assert_eq!(
            m,
            "no API key for provider `openai`: the key stored for `openai` was for api.openai.com; ... (or set the environment variable CAIRN_API_KEY_OPENAI)"
        );
    }

    #[test]
    fn a_key_for_a_vendor_may_be_stored_before_its_provider_is_configured_but_no_other() {
        let settings = Settings::default();
        assert_eq!(KeyTarget::find(&settings, "openai").unwrap().host, "api.openai.com");
        assert_eq!(KeyTarget::find(&settings, "anthropic").unwrap().host, "api.anthropic.com");
        assert!(KeyTarget::find(&settings, "my-gw").is_none());
    }

    #[test]
    fn a_provider_whose_key_variable_another_reads_is_refused() {
        let mut settings = Settings::default();
        settings.providers.push(provider("my-gw", ProviderKind::Openai, Some("http://127.0.0.1:1/v1")));
        assert!(check_key_variable(&settings).is_ok());
        for clash in ["my_gw", "MY-GW", "My_Gw"] {
            let mut s = settings.clone();
            s.providers.push(provider(clash, ProviderKind::Openai, Some("http://localhost:2/v1")));
            let err = check_key_variable(&s).unwrap_err().to_string();
            assert!(
                err.contains(&format!("provider `{clash}` would take its key from the environment variable CAIRN_API_KEY_MY_GW, which is already the variable of provider `my-gw`")),
                "{err}"
            );
        }
        // A distinct name is not a clash.
        let mut s = settings.clone();
        s.providers.push(provider("my-gw2", ProviderKind::Openai, None));
        assert!(check_key_variable(&s).is_ok());
        let mut s = settings.clone();
        s.providers.push(provider("ENV", ProviderKind::Openai, None));
        assert!(check_key_variable(&s).unwrap_err().to_string().contains("the environment's provider `env`"));
    }

    #[test]
    fn a_lookup_never_shows_the_key_in_debug_output() {
        let l = KeyLookup { key: Some("sk-secret-1".into()), source: None, keyring_problem: None, other_host: None };
        assert!(!format!("{l:?}").contains("sk-secret-1"));
    }
}
