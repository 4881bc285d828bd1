//! API keys: where a provider's key comes from, and the `cairn key set | remove | list`
//! operations on the OS keyring (`cairn-secrets`).
//!
//! Order, first found wins: `$CAIRN_API_KEY_<NAME>` (the headless override; for the `env`
//! provider also `$CAIRN_OPENAI_API_KEY`), then the OS keyring, then the vendor's own variable
//! for its own endpoint (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`). A keyring that cannot be
//! opened is not an error here: local use needs no key, so the problem is only reported when a
//! provider turns out to need a key that none of these gave.

use crate::providers::ENV_PROVIDER;
use crate::settings::{LOCAL, ProviderSettings};
use crate::{Engine, EngineError};
use cairn_secrets::{KeyStore, SecretError};
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
}

impl std::fmt::Debug for KeyLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLookup")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("source", &self.source)
            .field("keyring_problem", &self.keyring_problem)
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

/// Finds the key for `p` (see the module comment for the order).
pub(crate) fn lookup(p: &ProviderSettings) -> KeyLookup {
    // The environment first, so headless use never touches D-Bus or the kernel keyring.
    for var in override_vars(&p.name) {
        if let Some(key) = read_var(&var) {
            return KeyLookup {
                key: Some(key),
                source: Some(KeySource::Environment { variable: var }),
                keyring_problem: None,
            };
        }
    }
    lookup_with(&p.name, vendor_var(p), &KeyStore::open())
}

fn lookup_with(name: &str, vendor_var: Option<&str>, store: &Result<KeyStore, SecretError>) -> KeyLookup {
    let env = |variable: String| KeySource::Environment { variable };
    for var in override_vars(name) {
        if let Some(key) = read_var(&var) {
            return KeyLookup { key: Some(key), source: Some(env(var)), keyring_problem: None };
        }
    }
    let mut keyring_problem = None;
    match store.as_ref().map(|s| (s, s.get(name))) {
        Ok((s, Ok(Some(key)))) => {
            let source = KeySource::Keyring { backend: s.backend().id().to_owned() };
            return KeyLookup { key: Some(key), source: Some(source), keyring_problem: None };
        }
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
        return KeyLookup { key: Some(key), source: Some(env(var.to_owned())), keyring_problem };
    }
    KeyLookup { key: None, source: None, keyring_problem }
}

/// What to tell someone whose provider `name` needs a key that was not found.
pub(crate) fn missing_key_message(name: &str, keyring_problem: Option<&str>) -> String {
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
    /// Whether the keyring holds a key for it (also when a variable overrides it); `None`
    /// when the keyring could not be asked.
    pub in_keyring: Option<bool>,
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
    /// Whether settings define this provider (a key may be stored before it is configured).
    pub configured: bool,
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

impl Engine {
    /// Refuses a name no key can be stored under (`local`, or not a provider name), so a
    /// shell can say so before asking for the key.
    pub fn check_key_name(&self, name: &str) -> Result<(), EngineError> {
        refuse_local(name)
    }

    /// Stores `key` for provider `name` in the OS keyring, replacing any earlier one.
    pub fn set_key(&self, name: &str, key: &str) -> Result<KeyChange, EngineError> {
        refuse_local(name)?;
        let store = KeyStore::open()?;
        store.set(name, key)?;
        self.key_change(name, &store, true)
    }

    /// Deletes the key stored for provider `name`; `changed` is false if there was none.
    pub fn remove_key(&self, name: &str) -> Result<KeyChange, EngineError> {
        refuse_local(name)?;
        let store = KeyStore::open()?;
        let removed = store.remove(name)?;
        self.key_change(name, &store, removed)
    }

    fn key_change(&self, name: &str, store: &KeyStore, changed: bool) -> Result<KeyChange, EngineError> {
        let settings = self.effective_settings()?;
        Ok(KeyChange {
            provider: name.to_owned(),
            keyring: KeyringInfo::of(store),
            changed,
            configured: settings.provider(name).is_some(),
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
            let found = lookup_with(&name, configured.and_then(vendor_var), &store);
            let in_keyring = match &store {
                Ok(s) => s.get(&name).ok().map(|k| k.is_some()),
                Err(_) => None,
            };
            keys.push(KeyStatus {
                provider: name.clone(),
                configured: configured.is_some(),
                source: found.source,
                variable: cairn_secrets::env_var(&name),
                in_keyring,
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
        let m = missing_key_message("my-openai", Some("no OS keyring to keep API keys in (...)"));
        assert_eq!(
            m,
            "no API key for provider `my-openai`: store one with `cairn key set my-openai` (kept in the OS keyring) or set the environment variable CAIRN_API_KEY_MY_OPENAI (the OS keyring could not be asked: no OS keyring to keep API keys in (...))"
        );
    }

    #[test]
    fn a_lookup_never_shows_the_key_in_debug_output() {
        let l = KeyLookup { key: Some("sk-secret-1".into()), source: None, keyring_problem: None };
        assert!(!format!("{l:?}").contains("sk-secret-1"));
    }
}
