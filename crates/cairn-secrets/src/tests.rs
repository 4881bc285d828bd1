//! Against the real kernel keyring of the user running the tests (the Secret Service is tested
//! end to end in `cairn-cli/tests/keys.rs`, against a keyring daemon started for the test).
//! Key names are unique per run and every test removes what it stored.

#![allow(clippy::unwrap_used)]

use super::*;

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("test-{tag}-{}-{nanos}", std::process::id())
}

#[cfg(target_os = "linux")]
#[test]
fn a_key_in_the_kernel_keyring_is_read_back_replaced_and_removed() {
    let store = KeyStore::open_named("kernel").expect("the kernel keyring answers (keyctl works on the test machines)");
    assert_eq!(store.backend().id(), "kernel");
    let name = unique("kernel");
    assert_eq!(store.get(&name).unwrap(), None, "nothing stored yet");
    store.set(&name, "  sk-first-0123456789\n").unwrap();
    assert_eq!(store.get(&name).unwrap().as_deref(), Some("sk-first-0123456789"), "stored trimmed");
    store.set(&name, "sk-second-abcdef").unwrap();
    assert_eq!(store.get(&name).unwrap().as_deref(), Some("sk-second-abcdef"), "a second set replaces the key");
    // A fresh handle (as a new `cairn` process would open) sees the same key.
    let again = KeyStore::open_named("kernel").unwrap();
    assert_eq!(again.get(&name).unwrap().as_deref(), Some("sk-second-abcdef"));
    assert!(store.remove(&name).unwrap(), "removing a stored key says so");
    assert_eq!(store.get(&name).unwrap(), None, "gone after removal");
    assert!(!store.remove(&name).unwrap(), "removing again finds nothing");
}

#[cfg(target_os = "linux")]
#[test]
fn the_kernel_keyring_says_it_does_not_survive_a_reboot() {
    let store = KeyStore::open_named("kernel").unwrap();
    let b = store.backend();
    assert!(!b.survives_reboot());
    let text = b.describe();
    assert!(text.contains("never on disk") && text.contains("lost at reboot"), "{text}");
    if let Backend::KernelKeyring { expiry_secs: Some(secs) } = b {
        let proc = std::fs::read_to_string("/proc/sys/kernel/keys/persistent_keyring_expiry").unwrap();
        assert_eq!(*secs, proc.trim().parse::<u64>().unwrap());
        assert!(text.contains("kept across logouts until unused for"), "{text}");
    }
}

#[test]
fn keys_with_spaces_or_control_characters_are_refused_without_showing_them() {
    for bad in ["sk-abc def", "sk-abc\ndef", "sk-abc\u{7}def"] {
        let err = check_key("openai", bad).unwrap_err().to_string();
        assert!(err.starts_with("the API key for `openai` was not stored: character 7 of the key"), "{err}");
        assert!(!err.contains("sk-abc") && !err.contains("def"), "the error shows part of the key: {err}");
    }
    let err = check_key("openai", " \n").unwrap_err().to_string();
    assert_eq!(err, "the API key for `openai` was not stored: the key is empty");
    assert_eq!(check_key("openai", "sk-ok\r\n").unwrap(), "sk-ok");
}

#[test]
fn names_are_provider_names() {
    assert!(check_name("my-openai_2").is_ok());
    let err = check_name("../etc").unwrap_err().to_string();
    assert_eq!(err, "`../etc` cannot name a key: a provider name is letters, digits, `-` or `_`");
    assert!(check_name("").is_err());
    assert_eq!(env_var("my-openai"), "CAIRN_API_KEY_MY_OPENAI");
}

#[test]
fn an_unknown_backend_is_refused_with_the_choices() {
    let err = KeyStore::open_named("memory").unwrap_err().to_string();
    assert!(err.starts_with("CAIRN_KEYRING=memory is not a keyring Cairn knows: use `"), "{err}");
}

#[test]
fn platform_messages_are_scrubbed_of_the_key() {
    let text = "failed to store sk-live-123 for you".to_owned();
    assert_eq!(scrub(text, Some("sk-live-123")), "failed to store <redacted> for you");
    assert_eq!(human_secs(259_200), "3 days");
    assert_eq!(human_secs(3600), "1 hour");
}
