//! `cairn key` against real keyrings: a D-Bus session bus and GNOME Keyring's Secret Service
//! started for each test inside a temporary home (the user's own keyring is never touched),
//! and the kernel keyring. What is checked is what a user would notice or fear: the provider
//! receives the key, the key survives a restart of the keyring daemon, `key list` says where
//! a key comes from without showing it, no file Cairn or the keyring writes holds the key in
//! plain text, no output shows it, and a missing keyring or key is said plainly.
//!
//! These tests need `dbus-daemon`, `dbus-send`, `gnome-keyring-daemon`, `keyctl` and `script`
//! (`scripts/setup.sh` installs them; `script` is in every Debian) and fail, rather than skip,
//! without them.

#![allow(clippy::unwrap_used)]

use cairn_e2e::provider_server::{ProviderServer, Reply, Usage};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A key no one else would write: `sk-cairn-` and 24 hex digits unique to this call, the
/// first 12 (checked for as a "prefix") differing between any two calls.
fn fresh_key() -> String {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mixed = (nanos ^ (n << 48) ^ u64::from(std::process::id())).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("sk-cairn-{mixed:016x}{:08x}", std::process::id())
}

/// A temporary home with its own session bus and, optionally, GNOME Keyring on it.
struct Desktop {
    root: tempfile::TempDir,
    bus: String,
    dbus: Child,
    keyring: Option<Child>,
    /// Everything every `cairn` run printed, to check no key was shown.
    printed: std::cell::RefCell<String>,
}

const KEYRING_PASSWORD: &str = "login-password-for-the-test";

impl Desktop {
    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }
    fn runtime(&self) -> PathBuf {
        self.root.path().join("run")
    }
    /// Where Cairn keeps its data by default under this home.
    fn data(&self) -> PathBuf {
        self.home().join(".local/share/cairn")
    }

    /// A session bus that activates nothing (no service files), so a Secret Service is there
    /// only when the test starts one.
    fn start(with_keyring: bool) -> Desktop {
        let root = tempfile::tempdir().unwrap();
        let (home, run) = (root.path().join("home"), root.path().join("run"));
        std::fs::create_dir_all(home.join(".local/share")).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        let conf = root.path().join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                run.display()
            ),
        )
        .unwrap();
        let mut dbus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon must be installed (scripts/setup.sh installs the `dbus` package)");
        let mut bus = String::new();
        BufReader::new(dbus.stdout.take().unwrap()).read_line(&mut bus).unwrap();
        let bus = bus.trim().to_owned();
        assert!(bus.starts_with("unix:"), "dbus-daemon printed no address: {bus:?}");
        let mut d = Desktop { root, bus, dbus, keyring: None, printed: Default::default() };
        if with_keyring {
            d.start_keyring();
        }
        d
    }

    fn session_env(&self, cmd: &mut Command) {
        for (k, _) in std::env::vars() {
            if k.starts_with("CAIRN_API_KEY_")
                || k.starts_with("CAIRN_OPENAI_")
                || ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CAIRN_KEYRING", "CAIRN_DATA_DIR", "DISPLAY"]
                    .contains(&k.as_str())
            {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.home())
            .env("XDG_DATA_HOME", self.home().join(".local/share"))
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("XDG_CACHE_HOME", self.home().join(".cache"))
            .env("XDG_RUNTIME_DIR", self.runtime())
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus);
    }

    /// GNOME Keyring's Secret Service, its login keyring unlocked with a known password (the
    /// first start creates it, encrypted, under `$XDG_DATA_HOME/keyrings`).
    fn start_keyring(&mut self) {
        let mut cmd = Command::new("gnome-keyring-daemon");
        cmd.args(["--foreground", "--unlock", "--components=secrets"]);
        self.session_env(&mut cmd);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon must be installed (scripts/setup.sh installs `gnome-keyring`)");
        child.stdin.take().unwrap().write_all(KEYRING_PASSWORD.as_bytes()).unwrap();
        self.keyring = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut ask = Command::new("dbus-send");
            ask.args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ]);
            self.session_env(&mut ask);
            let out = ask.output().expect("dbus-send must be installed (the `dbus` package)");
            if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
                return;
            }
            assert!(Instant::now() < deadline, "gnome-keyring-daemon did not take org.freedesktop.secrets");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop_keyring(&mut self) {
        if let Some(mut k) = self.keyring.take() {
            k.kill().ok();
            k.wait().ok();
        }
    }

    /// Runs `cairn` in this desktop session, with `stdin` as its standard input.
    fn cairn_with(&self, args: &[&str], stdin: &str, extra_env: &[(&str, &str)]) -> Output {
        self.run(Command::new(env!("CARGO_BIN_EXE_cairn")).args(args), stdin, extra_env)
    }

    fn cairn(&self, args: &[&str]) -> Output {
        self.cairn_with(args, "", &[])
    }

    fn run(&self, cmd: &mut Command, stdin: &str, extra_env: &[(&str, &str)]) -> Output {
        self.session_env(cmd);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let mut printed = self.printed.borrow_mut();
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Every regular file under the temporary root (home, data, runtime dir) that holds `text`.
    fn files_containing(&self, text: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![self.root.path().to_path_buf()];
        let mut seen = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    stack.push(path);
                } else if meta.is_file() {
                    seen += 1;
                    let bytes = std::fs::read(&path).unwrap();
                    if bytes.windows(text.len()).any(|w| w == text.as_bytes()) {
                        found.push(path);
                    }
                }
            }
        }
        assert!(seen > 0, "no files to search");
        found
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.stop_keyring();
        self.dbus.kill().ok();
        self.dbus.wait().ok();
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "cairn failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
}

/// A folder with one document, indexed, and provider `name` on `server`.
fn index_and_add_provider(d: &Desktop, server: &ProviderServer, name: &str) {
    assert!(std::env::var_os("CAIRN_MODELS_DIR").is_some(), "run through scripts/test.sh (it sets CAIRN_MODELS_DIR)");
    let docs = d.root.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("herons.txt"), "Grey herons nest in colonies called heronries, high in tall trees.\n")
        .unwrap();
    ok(&d.cairn(&["add", docs.to_str().unwrap()]));
    ok(&d.cairn(&["index"]));
    let url = format!("{}/v1", server.base_url);
    ok(&d.cairn(&["providers", "add", name, "--kind", "openai", "--base-url", &url, "--model", "test-model"]));
}

/// Provider `name` (an OpenAI-compatible server at `url`), without indexing anything.
fn add_provider(d: &Desktop, name: &str, url: &str) {
    ok(&d.cairn(&["providers", "add", name, "--kind", "openai", "--base-url", url, "--model", "test-model"]));
}

fn reply() -> Reply {
    Reply::openai("Herons nest in heronries [1].", Some(Usage { input: 40, output: 8, cached: 0 }))
}

fn ask(d: &Desktop, name: &str, env: &[(&str, &str)]) -> Output {
    d.cairn_with(&["--json", "ask", "--no-cache", "--provider", name, "Where do herons nest?"], "", env)
}

#[test]
fn a_key_set_with_the_cli_reaches_the_provider_survives_a_keyring_restart_and_is_nowhere_in_plain_text() {
    let mut d = Desktop::start(true);
    let server = ProviderServer::start();
    index_and_add_provider(&d, &server, "herald");
    let key = fresh_key();

    // Stored from standard input (a pasted key ends with a newline).
    let out = d.cairn_with(&["key", "set", "herald"], &format!("{key}\n"), &[]);
    let text = ok(&out);
    assert!(text.contains("stored the API key for `herald` in the Secret Service"), "{text}");
    assert!(text.contains("it is sent only to 127.0.0.1"), "{text}");

    // `key list` says where the key comes from, and which keyring, without the key.
    let list = json(&d.cairn(&["--json", "key", "list"]));
    assert_eq!(list["keyring"]["id"], "secret-service", "{list}");
    assert_eq!(list["keyring"]["survives_reboot"], true);
    let herald = list["keys"].as_array().unwrap().iter().find(|k| k["provider"] == "herald").unwrap().clone();
    assert_eq!(herald["source"], serde_json::json!({"kind": "keyring", "backend": "secret-service"}), "{list}");
    assert_eq!(herald["in_keyring"], true);
    let human = ok(&d.cairn(&["key", "list"]));
    assert!(
        human.contains("keyring: Secret Service")
            && human.contains("herald")
            && human.contains("keyring (secret-service)"),
        "{human}"
    );

    // The provider receives it as a bearer token.
    server.push(reply());
    let answer = json(&ask(&d, "herald", &[]));
    assert!(answer["text"].as_str().unwrap().contains("heronries"), "{answer}");
    let sent = server.requests();
    assert_eq!(sent.last().unwrap().header("authorization"), Some(format!("Bearer {key}").as_str()));

    // The key lives on disk in the keyring, not in the daemon's memory: it is still there after
    // the daemon is stopped and started again (as at the next login).
    d.stop_keyring();
    d.start_keyring();
    server.push(reply());
    ok(&ask(&d, "herald", &[]));
    assert_eq!(server.requests().last().unwrap().header("authorization"), Some(format!("Bearer {key}").as_str()));

    // The environment variable overrides the keyring (headless use), and `key list` says so.
    let env_key = fresh_key();
    server.push(reply());
    ok(&ask(&d, "herald", &[("CAIRN_API_KEY_HERALD", &env_key)]));
    assert_eq!(server.requests().last().unwrap().header("authorization"), Some(format!("Bearer {env_key}").as_str()));
    let human = ok(&d.cairn_with(&["key", "list"], "", &[("CAIRN_API_KEY_HERALD", &env_key)]));
    assert!(human.contains("environment variable CAIRN_API_KEY_HERALD, overriding the one in the keyring"), "{human}");

    // The evidence: the key is in no file under the home, data, config and runtime folders in
    // plain text (the keyring's own file exists and is encrypted), and in no output.
    let keyring_file = d.home().join(".local/share/keyrings/login.keyring");
    assert!(keyring_file.is_file(), "GNOME Keyring wrote its keyring file");
    assert!(d.data().join("cairn.db").is_file() && d.data().join("settings.toml").is_file());
    assert_eq!(d.files_containing(&key), Vec::<PathBuf>::new(), "files holding the key");
    // Not even its distinctive part, e.g. a prefix in a log line.
    assert_eq!(d.files_containing(&key[9..21]), Vec::<PathBuf>::new());
    let printed = d.printed.borrow().clone();
    assert!(!printed.contains(&key[9..21]) && !printed.contains(&env_key[9..21]), "a key was printed:\n{printed}");

    // Removed: the next question to that provider is sent without a key, the server refuses
    // it, and the error says what is missing and how to fix it.
    let text = ok(&d.cairn(&["key", "remove", "herald"]));
    assert!(text.contains("removed the API key for `herald` from the Secret Service"), "{text}");
    let text = ok(&d.cairn(&["key", "remove", "herald"]));
    assert!(text.contains("holds no API key for `herald`: nothing removed"), "{text}");
    server.push(Reply::status(
        401,
        &[],
        r#"{"error":{"message":"missing bearer token","type":"invalid_request_error"}}"#,
    ));
    let out = ask(&d, "herald", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(server.requests().last().unwrap().header("authorization"), None, "no key was sent");
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("no API key for provider `herald`: store one with `cairn key set herald`"),
        "{message}"
    );
    assert!(message.contains("CAIRN_API_KEY_HERALD") && message.contains("HTTP 401"), "{message}");
    assert_eq!(err["error"]["code"], "auth_failed");
    let list = json(&d.cairn(&["--json", "key", "list"]));
    assert_eq!(list["keys"][0]["source"], serde_json::Value::Null, "{list}");
    assert_eq!(list["keys"][0]["in_keyring"], false, "{list}");
}

#[test]
fn at_a_terminal_the_key_is_asked_for_and_not_echoed() {
    let d = Desktop::start(true);
    let key = fresh_key();
    add_provider(&d, "herald", "http://127.0.0.1:9/v1");
    // `script` gives cairn a pseudo-terminal and copies everything the terminal shows, echo
    // included, to its standard output.
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &format!("{} key set herald", env!("CARGO_BIN_EXE_cairn")), "/dev/null"]);
    d.session_env(&mut cmd);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut screen = child.stdout.take().unwrap();
    let mut shown = Vec::new();
    let mut buf = [0u8; 256];
    // Type only once the prompt is on the screen, as a person would.
    while !String::from_utf8_lossy(&shown).contains("(typing is not shown): ") {
        let n = std::io::Read::read(&mut screen, &mut buf).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&shown));
        shown.extend_from_slice(&buf[..n]);
    }
    child.stdin.take().unwrap().write_all(format!("{key}\n").as_bytes()).unwrap();
    std::io::Read::read_to_end(&mut screen, &mut shown).unwrap();
    assert!(child.wait().unwrap().success());
    let screen = String::from_utf8_lossy(&shown);
    assert!(screen.contains("API key for `herald` (typing is not shown): "), "{screen}");
    assert!(screen.contains("stored the API key for `herald` in the Secret Service"), "{screen}");
    assert!(!screen.contains(&key[9..21]), "the key was echoed: {screen}");
    let list = json(&d.cairn(&["--json", "key", "list", "herald"]));
    assert_eq!(list["keys"][0]["source"]["kind"], "keyring", "{list}");
}

#[test]
fn without_a_secret_service_cairn_says_so_stores_nothing_and_the_environment_still_works() {
    let d = Desktop::start(false);
    let key = fresh_key();
    let force = [("CAIRN_KEYRING", "secret-service")];
    add_provider(&d, "herald", "http://127.0.0.1:9/v1");

    let out = d.cairn_with(&["key", "set", "herald"], &format!("{key}\n"), &force);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.starts_with("error: no OS keyring to keep API keys in (Secret Service: "), "{err}");
    assert!(err.contains("org.freedesktop.secrets"), "the reason names what is missing: {err}");
    assert!(err.contains("GNOME Keyring, KWallet or KeePassXC") && err.contains("CAIRN_API_KEY_"), "{err}");
    let out = d.cairn_with(&["--json", "key", "set", "herald"], &format!("{key}\n"), &force);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "provider_unavailable", "{v}");

    // `key list` says there is no keyring, and why.
    let list = json(&d.cairn_with(&["--json", "key", "list", "herald"], "", &force));
    assert_eq!(list["keyring"], serde_json::Value::Null);
    assert!(list["keyring_error"].as_str().unwrap().contains("no OS keyring"), "{list}");
    assert_eq!(list["keys"][0]["in_keyring"], serde_json::Value::Null);

    // A vendor's own endpoint is never called without a key: `providers test` fails at once
    // with the missing-key message instead of sending a request to api.openai.com.
    ok(&d.cairn(&["providers", "add", "openai", "--kind", "openai", "--model", "gpt-4o-mini"]));
    let out = d.cairn_with(&["--json", "providers", "test", "openai"], "", &force);
    assert_eq!(out.status.code(), Some(2));
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = checks[0]["error"].as_str().unwrap();
    assert!(message.starts_with("no API key for provider `openai`: store one with `cairn key set openai`"), "{checks}");
    assert!(message.contains("CAIRN_API_KEY_OPENAI"), "{message}");
    assert_eq!(checks[0]["error_code"], "auth_failed");
    assert_eq!(checks[0]["latency_ms"], serde_json::Value::Null, "nothing was sent: {checks}");
    ok(&d.cairn(&["providers", "remove", "openai"]));

    // Nothing was stored anywhere: no keyring file, no key in any file or output.
    assert!(!d.home().join(".local/share/keyrings").exists());
    assert_eq!(d.files_containing(&key), Vec::<PathBuf>::new());
    assert!(!d.printed.borrow().contains(&key[9..21]));

    // A provider keyed through the environment works without any keyring.
    let server = ProviderServer::start();
    index_and_add_provider(&d, &server, "herald");
    server.push(reply());
    let env = [("CAIRN_KEYRING", "secret-service"), ("CAIRN_API_KEY_HERALD", key.as_str())];
    ok(&ask(&d, "herald", &env));
    assert_eq!(server.requests().last().unwrap().header("authorization"), Some(format!("Bearer {key}").as_str()));
    // Without one, the refusal says both what is missing and why the keyring was not asked.
    server.push(Reply::status(401, &[], r#"{"error":{"message":"no key"}}"#));
    let out = ask(&d, "herald", &force);
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("no API key for provider `herald`"), "{message}");
    assert!(message.contains("(the OS keyring could not be asked: no OS keyring to keep API keys in"), "{message}");
}

#[test]
fn with_only_the_kernel_keyring_a_key_outlives_the_login_session_that_stored_it() {
    let d = Desktop::start(false);
    let key = fresh_key();
    // Unique: the kernel keyring is shared by every process of this user.
    let name = format!("kt-{}", &fresh_key()[9..]);
    // Each command in a new anonymous session keyring, as separate logins would have.
    let in_new_session = |args: &[&str], stdin: &str| {
        let mut cmd = Command::new("keyctl");
        cmd.args(["session", "-", env!("CARGO_BIN_EXE_cairn")]).args(args);
        d.run(&mut cmd, stdin, &[])
    };

    add_provider(&d, &name, "http://127.0.0.1:9/v1");
    let out = in_new_session(&["key", "set", &name], &format!("{key}\n"));
    let text = ok(&out);
    assert!(text.contains(&format!("stored the API key for `{name}` in the kernel keyring")), "{text}");
    assert!(text.contains("never on disk") && text.contains("lost at reboot"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not survive a reboot"));

    let list = json(&in_new_session(&["--json", "key", "list", &name], ""));
    assert_eq!(list["keyring"]["id"], "kernel", "the Secret Service is absent, so the kernel keyring is used: {list}");
    assert_eq!(list["keyring"]["survives_reboot"], false);
    let why = list["keyring"]["passed_over"][0].as_str().unwrap();
    assert!(why.starts_with("Secret Service: ") && why.contains("org.freedesktop.secrets"), "{list}");
    assert_eq!(list["keys"][0]["source"], serde_json::json!({"kind": "keyring", "backend": "kernel"}), "{list}");

    assert_eq!(d.files_containing(&key), Vec::<PathBuf>::new());
    assert!(!d.printed.borrow().contains(&key[9..21]));

    let text = ok(&in_new_session(&["key", "remove", &name], ""));
    assert!(text.contains("removed the API key"), "{text}");
    let list = json(&in_new_session(&["--json", "key", "list", &name], ""));
    assert_eq!(list["keys"][0]["in_keyring"], false, "{list}");
}

#[test]
fn a_key_is_sent_only_to_the_host_it_was_stored_for() {
    let d = Desktop::start(true);
    // Two endpoints on two hosts: `127.0.0.1` and `localhost` (both loopback, so the test
    // sends nothing off the machine, but different host names to Cairn).
    let a = ProviderServer::start();
    let b = ProviderServer::start();
    index_and_add_provider(&d, &a, "gw");
    let key = fresh_key();

    // A key can only be stored for a configured provider (or a vendor's own endpoint).
    let out = d.cairn_with(&["key", "set", "nowhere"], &format!("{key}\n"), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no provider named `nowhere` is configured: add it first"), "{err}");

    let text = ok(&d.cairn_with(&["key", "set", "gw"], &format!("{key}\n"), &[]));
    assert!(text.contains("it is sent only to 127.0.0.1"), "{text}");
    a.push(reply());
    ok(&ask(&d, "gw", &[]));
    assert_eq!(a.requests().last().unwrap().header("authorization"), Some(format!("Bearer {key}").as_str()));

    // Removing the provider says the key is still in the keyring, and how to delete it.
    let out = d.cairn(&["providers", "remove", "gw"]);
    ok(&out);
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("still holds an API key for `gw` (sent only to 127.0.0.1); delete it with `cairn key remove gw`"),
        "{note}"
    );

    // The same name, re-added for another host: the key is not sent there. The request goes
    // out without a key, and the server's refusal becomes a message that says why.
    let url_b = b.base_url.replace("127.0.0.1", "localhost");
    add_provider(&d, "gw", &format!("{url_b}/v1"));
    b.push(Reply::status(401, &[], r#"{"error":{"message":"missing bearer token"}}"#));
    let out = ask(&d, "gw", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let sent = b.requests();
    assert_eq!(sent.len(), 1, "one request reached the new host");
    assert_eq!(sent[0].header("authorization"), None, "no key was sent to the new host");
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "no API key for provider `gw`: the key stored for `gw` was for 127.0.0.1; the provider now points at localhost: run `cairn key set gw` again"
        ),
        "{message}"
    );
    assert!(message.contains("HTTP 401"), "{message}");
    assert_eq!(err["error"]["code"], "auth_failed");
    assert_eq!(a.requests().len(), 1, "the old host got nothing more");

    // `key list` says the same.
    let list = json(&d.cairn(&["--json", "key", "list"]));
    let gw = list["keys"].as_array().unwrap().iter().find(|k| k["provider"] == "gw").unwrap().clone();
    assert_eq!(gw["source"], serde_json::Value::Null, "{list}");
    assert_eq!((gw["in_keyring"].clone(), gw["keyring_host"].clone()), (true.into(), "127.0.0.1".into()), "{list}");
    assert_eq!(gw["host"], "localhost");
    let human = ok(&d.cairn(&["key", "list"]));
    assert!(
        human.contains("missing: the key stored for `gw` was for 127.0.0.1; the provider now points at localhost"),
        "{human}"
    );

    // Setting the key again stores it for the new host, where it is then sent.
    let key_b = fresh_key();
    let text = ok(&d.cairn_with(&["key", "set", "gw"], &format!("{key_b}\n"), &[]));
    assert!(text.contains("it is sent only to localhost"), "{text}");
    b.push(reply());
    ok(&ask(&d, "gw", &[]));
    assert_eq!(b.requests().last().unwrap().header("authorization"), Some(format!("Bearer {key_b}").as_str()));
    assert_eq!(a.requests().len(), 1);

    // Names that differ only by `-` / `_` (or case) would share CAIRN_API_KEY_MY_GW: refused.
    add_provider(&d, "my-gw", &format!("{url_b}/v1"));
    let out = d.cairn(&[
        "providers",
        "add",
        "my_gw",
        "--kind",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("provider `my_gw` would take its key from the environment variable CAIRN_API_KEY_MY_GW, which is already the variable of provider `my-gw`"),
        "{err}"
    );
    let providers = ok(&d.cairn(&["providers", "list"]));
    assert!(!providers.contains("my_gw"), "{providers}");

    assert_eq!(d.files_containing(&key), Vec::<PathBuf>::new());
    assert_eq!(d.files_containing(&key_b), Vec::<PathBuf>::new());
    let printed = d.printed.borrow().clone();
    assert!(!printed.contains(&key[9..21]) && !printed.contains(&key_b[9..21]), "a key was printed:\n{printed}");
}

#[test]
fn a_key_stored_by_an_earlier_cairn_is_sent_only_to_the_default_endpoint_of_its_kind() {
    let d = Desktop::start(false);
    let server = ProviderServer::start();
    let key = fresh_key();
    // Unique: the kernel keyring is shared by every process of this user.
    let (near, vendor) = (format!("kl-{}", &fresh_key()[9..]), format!("kv-{}", &fresh_key()[9..]));
    index_and_add_provider(&d, &server, &near);
    // At the vendor's endpoint (never contacted here: only `key list` is run for it).
    ok(&d.cairn(&["providers", "add", &vendor, "--kind", "openai", "--model", "gpt-4o-mini"]));
    // In a new session keyring, the key is stored the way earlier versions stored it (the
    // bare key, under the provider's name, with no host), `cairn ARGS` runs, and `cairn key
    // remove` cleans up in the same session.
    let with_legacy_key = |name: &str, args: &[&str]| {
        let script = format!(
            "keyctl padd user keyring-rs:{name}@cairn @s >/dev/null || exit 9; \"$0\" \"$@\"; rc=$?; \"$0\" key remove {name} >/dev/null; exit $rc"
        );
        let mut cmd = Command::new("keyctl");
        cmd.args(["session", "-", "sh", "-c", &script, env!("CARGO_BIN_EXE_cairn")]).args(args);
        d.run(&mut cmd, &key, &[])
    };

    // For the vendor's endpoint (the default of its kind) the old key is still used.
    let list = json(&with_legacy_key(&vendor, &["--json", "key", "list", &vendor]));
    let row = list["keys"].as_array().unwrap().iter().find(|k| k["provider"] == vendor.as_str()).unwrap().clone();
    assert_eq!(row["source"], serde_json::json!({"kind": "keyring", "backend": "kernel"}), "{list}");
    assert_eq!(row["keyring_host"], "api.openai.com", "{list}");

    // For any other host it is not sent, and the message says why.
    server.push(Reply::status(401, &[], r#"{"error":{"message":"no key"}}"#));
    let out = with_legacy_key(&near, &["--json", "ask", "--no-cache", "--provider", &near, "Where do herons nest?"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(server.requests().last().unwrap().header("authorization"), None, "the old key was not sent");
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "the key stored for `{near}` was for api.openai.com (it was stored by an earlier Cairn"
        )) && message.contains(&format!("the provider now points at 127.0.0.1: run `cairn key set {near}` again")),
        "{message}"
    );
    let list = json(&d.cairn(&["--json", "key", "list", &near, &vendor]));
    assert!(list["keys"].as_array().unwrap().iter().all(|k| k["in_keyring"] == false), "cleaned up: {list}");
    assert!(!d.printed.borrow().contains(&key[9..21]));
}
