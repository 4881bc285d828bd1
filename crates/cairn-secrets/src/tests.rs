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
    store.set(&name, "api.example.com", "  sk-first-0123456789\n").unwrap();
    let first = store.get(&name).unwrap().unwrap();
    assert_eq!(first.key, "sk-first-0123456789", "stored trimmed");
    assert_eq!(first.host.as_deref(), Some("api.example.com"), "bound to the host it was stored for");
    store.set(&name, "127.0.0.1", "sk-second-abcdef").unwrap();
    let second = store.get(&name).unwrap().unwrap();
    assert_eq!((second.key.as_str(), second.host.as_deref()), ("sk-second-abcdef", Some("127.0.0.1")), "replaced");
    // A fresh handle (as a new `cairn` process would open) sees the same key.
    let again = KeyStore::open_named("kernel").unwrap();
    assert_eq!(again.get(&name).unwrap(), Some(second));
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

#[test]
fn a_stored_value_carries_its_host_and_the_earlier_bare_key_has_none() {
    let v = encode("api.openai.com", "sk-abc");
    assert_eq!(v, "cairn-api-key/2 host=api.openai.com\nsk-abc");
    assert_eq!(decode(&v), Some(StoredKey { key: "sk-abc".into(), host: Some("api.openai.com".into()) }));
    assert_eq!(decode(&encode("[::1]", "k")).unwrap().host.as_deref(), Some("[::1]"));
    // Stored by an earlier Cairn: the key alone, no host.
    assert_eq!(decode("sk-old-123"), Some(StoredKey { key: "sk-old-123".into(), host: None }));
    // Anything else is not taken for a key (and so never sent).
    for odd in
        ["cairn-api-key/3 host=a\nk", "cairn-api-key/2 host=\nk", "cairn-api-key/2 host=a\n", "two words", "a\nb c"]
    {
        assert_eq!(decode(odd), None, "{odd:?}");
    }
    assert!(!format!("{:?}", decode(&v).unwrap()).contains("sk-abc"));
    assert!(check_host("api.openai.com").is_ok());
    assert!(check_host("").is_err() && check_host("a b").is_err() && check_host("a\nb").is_err());
}
