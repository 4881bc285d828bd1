//! API keys in the operating system's keyring, and nowhere else Cairn writes.
//!
//! A key is stored under service `cairn` and the provider's name as user, bound to the host of
//! the endpoint it was stored for: the stored value is `cairn-api-key/2 host=HOST`, a newline,
//! then the key ([`StoredKey`]). The host is not secret, but keeping it in the value rather than in
//! an attribute works the same in every store (the kernel keyring, the Keychain and the
//! Credential Manager have no attributes to search by) and needs no side file; the Secret
//! Service item's label names it too, for people browsing the keyring. A value without that
//! first line was stored by an earlier Cairn, which did not record the host (`host: None`).
//! Keys are kept in one persistent store per OS: the Secret Service on Linux (GNOME Keyring, KWallet, KeePassXC; kept on disk,
//! encrypted by the keyring daemon), with the kernel keyring as fallback where the Secret
//! Service does not answer; the Keychain on macOS; the Credential Manager on Windows.
//!
//! Why this crate exists: the `keyring` crate silently falls back to an in-memory mock store
//! when no platform store is compiled in, and its Linux default assumes a Secret Service.
//! Here every credential is built for a named backend that was probed first, and when none
//! answers, [`KeyStore::open`] fails with [`SecretError::NoBackend`], which says how to start one
//! or to use the environment instead ([`env_var`]). There is no in-memory store.
//!
//! No error from this crate contains key text: keys are never formatted into messages, and
//! messages from the platform are scrubbed of the key before they are kept.

use std::fmt;

/// The service name every Cairn key is stored under (the user name is the provider's).
pub const SERVICE: &str = "cairn";

/// Forces one backend: `secret-service` or `kernel` on Linux. Unset: the first that answers.
pub const BACKEND_VAR: &str = "CAIRN_KEYRING";

/// The first line of a stored value, before the host.
const FORMAT: &str = "cairn-api-key/2 host=";

/// A key read back from the keyring, with the endpoint host it was stored for. `Debug` never
/// shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub key: String,
    /// The host (`api.openai.com`, `127.0.0.1`, `[::1]`) the key was stored for; `None` for a key
    /// stored by an earlier Cairn, which did not record one.
    pub host: Option<String>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey").field("key", &"<redacted>").field("host", &self.host).finish()
    }
}

/// The value kept in the keyring for `key`, stored for `host`.
fn encode(host: &str, key: &str) -> String {
    format!("{FORMAT}{host}\n{key}")
}

/// Reads a stored value back; `None` when it is in no format this Cairn knows (written by a
/// newer one, or by hand), which is never taken for a key.
fn decode(value: &str) -> Option<StoredKey> {
    match value.split_once('\n') {
        Some((head, key)) => {
            let host = head.strip_prefix(FORMAT)?;
            let key = key.trim_end_matches(['\r', '\n']);
            (check_host(host).is_ok() && check_key("", key).is_ok_and(|k| k == key))
                .then(|| StoredKey { key: key.to_owned(), host: Some(host.to_owned()) })
        }
        // The earlier format: the bare key (which never holds whitespace).
        None => check_key("", value).ok().map(|key| StoredKey { key, host: None }),
    }
}

/// Refuses a host a key cannot be bound to: empty, or with whitespace or control characters.
pub fn check_host(host: &str) -> Result<(), SecretError> {
    if host.is_empty() || host.len() > 255 || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(SecretError::InvalidHost { host: host.escape_debug().to_string() });
    }
    Ok(())
}

/// The environment variable that overrides the keyring for provider `name` (headless use):
/// `CAIRN_API_KEY_<NAME>`, upper case, `-` written as `_`.
pub fn env_var(name: &str) -> String {
    format!("CAIRN_API_KEY_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// Where keys are kept. Each variant is a store that outlives the process; there is no
/// in-memory one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The freedesktop Secret Service (`org.freedesktop.secrets` on the session D-Bus).
    SecretService,
    /// The Linux kernel's key retention service. `expiry_secs` is the persistent keyring's
    /// idle expiry (`/proc/sys/kernel/keys/persistent_keyring_expiry`) when the kernel has
    /// persistent keyrings; `None` when keys live only in the session keyring.
    KernelKeyring { expiry_secs: Option<u64> },
    /// The macOS login Keychain.
    Keychain,
    /// The Windows Credential Manager (generic credentials).
    CredentialManager,
}

impl Backend {
    /// A stable identifier for scripts and `--json` (`secret-service`, `kernel`, `keychain`,
    /// `credential-manager`); the values `CAIRN_KEYRING` accepts on Linux.
    pub fn id(&self) -> &'static str {
        match self {
            Backend::SecretService => "secret-service",
            Backend::KernelKeyring { .. } => "kernel",
            Backend::Keychain => "keychain",
            Backend::CredentialManager => "credential-manager",
        }
    }

    /// Whether a stored key survives a reboot.
    pub fn survives_reboot(&self) -> bool {
        !matches!(self, Backend::KernelKeyring { .. })
    }

    /// What the store is and how long a key lasts in it, for people.
    pub fn describe(&self) -> String {
        match self {
            Backend::SecretService => {
                "Secret Service (the desktop keyring: GNOME Keyring, KWallet or KeePassXC; kept on disk, encrypted by the keyring)"
                    .to_owned()
            }
            Backend::KernelKeyring { expiry_secs: Some(secs) } => format!(
                "kernel keyring (held in kernel memory, never on disk: kept across logouts until unused for {}, lost at reboot)",
                human_secs(*secs)
            ),
            Backend::KernelKeyring { expiry_secs: None } => {
                "kernel session keyring (held in kernel memory, never on disk: lost at logout and at reboot)".to_owned()
            }
            Backend::Keychain => "macOS Keychain (login keychain)".to_owned(),
            Backend::CredentialManager => "Windows Credential Manager".to_owned(),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn human_secs(secs: u64) -> String {
    let (n, unit) = if secs >= 86_400 && secs.is_multiple_of(86_400) {
        (secs / 86_400, "day")
    } else if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs >= 60 && secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// No persistent store answered. The message lists what was tried and why it failed.
    #[error(
        "no OS keyring to keep API keys in ({tried}). Start a Secret Service (GNOME Keyring, KWallet or KeePassXC) and try again, or give the key in the environment variable CAIRN_API_KEY_<NAME> instead"
    )]
    NoBackend { tried: String },
    /// `CAIRN_KEYRING` names a store this build does not know.
    #[error("{BACKEND_VAR}={value} is not a keyring Cairn knows: use {known}")]
    UnknownBackend { value: String, known: &'static str },
    /// A provider name that cannot be a key's name.
    #[error("`{name}` cannot name a key: {reason}")]
    InvalidName { name: String, reason: String },
    /// The endpoint host a key would be bound to is not a host name.
    #[error("`{host}` is not an endpoint host a key can be stored for")]
    InvalidHost { host: String },
    /// The keyring holds a value for this name in a format this Cairn does not know.
    #[error(
        "the keyring holds a value for `{name}` that is not a key this Cairn stored (perhaps a newer Cairn did): run `cairn key set {name}` again"
    )]
    UnknownFormat { name: String },
    /// The key text is unusable (empty, or with spaces or control characters in it). The
    /// message says why, never what the key was.
    #[error("the API key for `{name}` was not stored: {reason}")]
    InvalidKey { name: String, reason: String },
    /// The store answered but the operation failed (locked, refused, several matching items).
    #[error("{backend} could not {action} the key for `{name}`: {reason}")]
    Backend { backend: &'static str, action: &'static str, name: String, reason: String },
}

/// The keyring Cairn keeps API keys in.
#[derive(Clone, Debug)]
pub struct KeyStore {
    backend: Backend,
    /// Why each backend preferred to this one was not used (automatic choice only).
    passed_over: Vec<String>,
}

/// Refuses names that are not provider names (letters, digits, `-`, `_`, at most 64).
pub fn check_name(name: &str) -> Result<(), SecretError> {
    let bad = |reason: &str| Err(SecretError::InvalidName { name: name.to_owned(), reason: reason.to_owned() });
    if name.is_empty() {
        return bad("the name is empty");
    }
    if name.len() > 64 {
        return bad("longer than 64 characters");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return bad("a provider name is letters, digits, `-` or `_`");
    }
    Ok(())
}

/// The key as it will be stored: surrounding whitespace (a pasted newline) removed. Refuses an
/// empty key and one with whitespace or control characters inside, which no provider issues
/// and which would corrupt the HTTP header it is sent in.
pub fn check_key(name: &str, key: &str) -> Result<String, SecretError> {
    let bad = |reason: String| Err(SecretError::InvalidKey { name: name.to_owned(), reason });
    let key = key.trim();
    if key.is_empty() {
        return bad("the key is empty".to_owned());
    }
    if let Some(pos) = key.chars().position(|c| c.is_whitespace() || c.is_control()) {
        return bad(format!("character {} of the key is a space or control character", pos + 1));
    }
    if key.len() > 16 * 1024 {
        return bad(format!("the key is {} bytes long, more than any provider issues (16 KiB)", key.len()));
    }
    Ok(key.to_owned())
}

/// Replaces every occurrence of `secret` in `text`.
fn scrub(text: String, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() && text.contains(s) => text.replace(s, "<redacted>"),
        _ => text,
    }
}

impl KeyStore {
    /// The store to use: the one `CAIRN_KEYRING` names, else the first that answers (on Linux
    /// the Secret Service, then the kernel keyring). Fails with [`SecretError::NoBackend`]
    /// when none does; never falls back to memory.
    pub fn open() -> Result<KeyStore, SecretError> {
        match std::env::var(BACKEND_VAR).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            Some(v) => KeyStore::open_named(&v),
            None => platform::open_auto(),
        }
    }

    /// Opens the store `id` names (see [`Backend::id`]), probing that it answers.
    pub fn open_named(id: &str) -> Result<KeyStore, SecretError> {
        platform::open_named(id)
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Why the stores preferred to this one were not used, e.g. `Secret Service: ...` when the
    /// kernel keyring was chosen because no Secret Service answered. Empty when the first
    /// choice (or the forced one) is in use.
    pub fn passed_over(&self) -> &[String] {
        &self.passed_over
    }

    /// Stores `key` for provider `name`, to be sent only to `host` (the provider's endpoint
    /// host), replacing any earlier one (and so migrating a key stored without a host). The key
    /// is checked with [`check_key`] first (and trimmed).
    pub fn set(&self, name: &str, host: &str, key: &str) -> Result<(), SecretError> {
        check_name(name)?;
        check_host(host)?;
        let key = check_key(name, key)?;
        let value = encode(host, &key);
        platform::set(&self.backend, name, host, &value).map_err(|e| self.failure("store", name, e, Some(&key)))
    }

    /// The key stored for `name`, if any, with the host it was stored for. Whether it may be
    /// sent to an endpoint is the caller's to decide, by that host.
    pub fn get(&self, name: &str) -> Result<Option<StoredKey>, SecretError> {
        check_name(name)?;
        match platform::get(&self.backend, name) {
            Ok(value) => match decode(&value) {
                Some(stored) => Ok(Some(stored)),
                None => Err(SecretError::UnknownFormat { name: name.to_owned() }),
            },
            Err(e) if platform::is_no_entry(&e) => Ok(None),
            Err(e) => Err(self.failure("read", name, e, None)),
        }
    }

    /// Deletes the key stored for `name`; false if there was none.
    pub fn remove(&self, name: &str) -> Result<bool, SecretError> {
        check_name(name)?;
        match platform::remove(&self.backend, name) {
            Ok(()) => Ok(true),
            Err(e) if platform::is_no_entry(&e) => Ok(false),
            Err(e) => Err(self.failure("remove", name, e, None)),
        }
    }

    fn failure(&self, action: &'static str, name: &str, e: platform::Error, secret: Option<&str>) -> SecretError {
        SecretError::Backend {
            backend: match self.backend {
                Backend::SecretService => "the Secret Service",
                Backend::KernelKeyring { .. } => "the kernel keyring",
                Backend::Keychain => "the Keychain",
                Backend::CredentialManager => "the Credential Manager",
            },
            action,
            name: name.to_owned(),
            reason: scrub(platform::reason(&e), secret),
        }
    }
}

/// The Secret Service item's label.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn label(name: &str, host: &str) -> String {
    format!("Cairn API key for provider `{name}` (sent only to {host})")
}

#[cfg_attr(any(target_os = "macos", target_os = "windows"), allow(dead_code))]
fn no_backend(tried: Vec<String>) -> SecretError {
    SecretError::NoBackend { tried: tried.join("; ") }
}

#[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
mod native {
    //! What the three platforms share: `keyring` entries and its error type.
    pub use keyring::Error;

    pub fn is_no_entry(e: &Error) -> bool {
        matches!(e, Error::NoEntry)
    }

    /// A sentence about `e` that never includes secret bytes (`BadEncoding` carries them, so
    /// it is described, not shown; `Ambiguous` lists credentials, which hold no secrets).
    pub fn reason(e: &Error) -> String {
        match e {
            Error::NoEntry => "no key is stored".to_owned(),
            Error::BadEncoding(_) => "the stored value is not UTF-8 text".to_owned(),
            Error::Ambiguous(items) => format!(
                "{} items in the keyring match service `{}` and this name; remove the extra ones with the keyring's own tool",
                items.len(),
                super::SERVICE
            ),
            Error::NoStorageAccess(inner) => format!("the keyring is locked or refused access: {inner}"),
            Error::PlatformFailure(inner) => inner.to_string(),
            other => other.to_string(),
        }
    }
}

#[cfg(target_os = "linux")]
mod platform {
    pub use super::native::{Error, is_no_entry, reason};
    use super::{Backend, KeyStore, SERVICE, SecretError, no_backend};
    use keyring::Entry;
    use keyring::keyutils::KeyutilsCredential;
    use keyring::secret_service::SsCredential;

    const KNOWN: &str = "`secret-service` or `kernel`";
    /// A name no key is stored under: looking it up proves the store answers.
    const PROBE: &str = "cairn-probe";

    fn entry(backend: &Backend, name: &str) -> Result<Entry, Error> {
        Ok(match backend {
            Backend::KernelKeyring { .. } => {
                Entry::new_with_credential(Box::new(KeyutilsCredential::new_with_target(None, SERVICE, name)?))
            }
            _ => Entry::new_with_credential(Box::new(SsCredential::new_with_target(None, SERVICE, name)?)),
        })
    }

    /// Whether the Secret Service answers a search on the session bus.
    fn probe_secret_service() -> Result<Backend, String> {
        let backend = Backend::SecretService;
        match entry(&backend, PROBE).and_then(|e| e.get_password()) {
            Ok(_) | Err(Error::NoEntry | Error::Ambiguous(_)) => Ok(backend),
            Err(e) => Err(format!("Secret Service: {}", reason(&e))),
        }
    }

    /// Whether the kernel keyring takes requests, and whether keys also go into the user's
    /// persistent keyring (which outlives the login session until its idle expiry).
    fn probe_kernel() -> Result<Backend, String> {
        let cred = KeyutilsCredential::new_with_target(None, SERVICE, PROBE)
            .map_err(|e| format!("kernel keyring: {}", reason(&e)))?;
        let expiry_secs = cred.persistent.map(|_| {
            std::fs::read_to_string("/proc/sys/kernel/keys/persistent_keyring_expiry")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(3 * 86_400)
        });
        match Entry::new_with_credential(Box::new(cred)).get_password() {
            Ok(_) | Err(Error::NoEntry) => Ok(Backend::KernelKeyring { expiry_secs }),
            Err(e) => Err(format!("kernel keyring: {}", reason(&e))),
        }
    }

    pub fn open_auto() -> Result<KeyStore, SecretError> {
        let mut tried = Vec::new();
        for probe in [probe_secret_service, probe_kernel] {
            match probe() {
                Ok(backend) => return Ok(KeyStore { backend, passed_over: tried }),
                Err(why) => tried.push(why),
            }
        }
        Err(no_backend(tried))
    }

    pub fn open_named(id: &str) -> Result<KeyStore, SecretError> {
        let probe = match id {
            "secret-service" => probe_secret_service,
            "kernel" => probe_kernel,
            _ => return Err(SecretError::UnknownBackend { value: id.to_owned(), known: KNOWN }),
        };
        probe().map(|backend| KeyStore { backend, passed_over: Vec::new() }).map_err(|why| no_backend(vec![why]))
    }

    pub fn set(backend: &Backend, name: &str, host: &str, value: &str) -> Result<(), Error> {
        let entry = entry(backend, name)?;
        entry.set_password(value)?;
        if *backend == Backend::SecretService {
            // For people browsing the keyring (Seahorse): which provider and host the item is
            // for. Cosmetic, so a failure is ignored; the binding itself is in the value.
            let label = super::label(name, host);
            let _ = entry.update_attributes(&std::collections::HashMap::from([("label", label.as_str())]));
        }
        Ok(())
    }

    pub fn get(backend: &Backend, name: &str) -> Result<String, Error> {
        entry(backend, name)?.get_password()
    }

    pub fn remove(backend: &Backend, name: &str) -> Result<(), Error> {
        entry(backend, name)?.delete_credential()
    }
}

#[cfg(any(target_os = "macos", target_os = "windows"))]
mod platform {
    //! One native store, always present: no probe is needed.
    pub use super::native::{Error, is_no_entry, reason};
    use super::{Backend, KeyStore, SERVICE, SecretError};
    use keyring::Entry;

    #[cfg(target_os = "macos")]
    const NATIVE: Backend = Backend::Keychain;
    #[cfg(target_os = "windows")]
    const NATIVE: Backend = Backend::CredentialManager;

    pub fn open_auto() -> Result<KeyStore, SecretError> {
        Ok(KeyStore { backend: NATIVE, passed_over: Vec::new() })
    }

    pub fn open_named(id: &str) -> Result<KeyStore, SecretError> {
        if id == NATIVE.id() {
            return open_auto();
        }
        Err(SecretError::UnknownBackend {
            value: id.to_owned(),
            known: if cfg!(target_os = "macos") { "`keychain`" } else { "`credential-manager`" },
        })
    }

    /// `keyring` was built with only the native store for this OS, so its default builder is
    /// that store, not the mock.
    fn entry(name: &str) -> Result<Entry, Error> {
        Entry::new(SERVICE, name)
    }

    pub fn set(_: &Backend, name: &str, _host: &str, value: &str) -> Result<(), Error> {
        entry(name)?.set_password(value)
    }

    pub fn get(_: &Backend, name: &str) -> Result<String, Error> {
        entry(name)?.get_password()
    }

    pub fn remove(_: &Backend, name: &str) -> Result<(), Error> {
        entry(name)?.delete_credential()
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod platform {
    //! No persistent store is wired up on this OS: every open fails, nothing is kept in memory.
    use super::{Backend, KeyStore, SecretError, no_backend};

    #[derive(Debug)]
    pub enum Error {}

    pub fn is_no_entry(e: &Error) -> bool {
        match *e {}
    }

    pub fn reason(e: &Error) -> String {
        match *e {}
    }

    pub fn open_auto() -> Result<KeyStore, SecretError> {
        Err(no_backend(vec!["this operating system has no keyring support in Cairn".to_owned()]))
    }

    pub fn open_named(_: &str) -> Result<KeyStore, SecretError> {
        open_auto()
    }

    pub fn set(_: &Backend, _: &str, _: &str, _: &str) -> Result<(), Error> {
        unreachable!("no KeyStore can be opened on this OS")
    }

    pub fn get(_: &Backend, _: &str) -> Result<String, Error> {
        unreachable!("no KeyStore can be opened on this OS")
    }

    pub fn remove(_: &Backend, _: &str) -> Result<(), Error> {
        unreachable!("no KeyStore can be opened on this OS")
    }
}

#[cfg(test)]
mod tests;
