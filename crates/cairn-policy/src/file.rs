//! The policy file as written, and its checks: every pattern, number and locked key is
//! validated here, so a policy that loads is one the checks can apply as written.

use crate::glob::{Seg, segments};
use crate::{PolicyBudget, ProviderCap};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// Provider kinds Cairn knows; `allowed_kinds` may name only these.
pub(crate) const KINDS: [&str; 3] = ["local", "openai", "anthropic"];

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    providers: ProvidersFile,
    #[serde(default)]
    budget: BudgetFile,
    #[serde(default)]
    privacy: PrivacyFile,
    #[serde(default)]
    locked: toml::Table,
    #[serde(default)]
    confirm: ConfirmFile,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProvidersFile {
    allowed_kinds: Option<Vec<Spanned<String>>>,
    allowed_names: Option<Vec<String>>,
    allowed_models: Option<Vec<Spanned<String>>>,
    allowed_embedding_models: Option<Vec<Spanned<String>>>,
    allowed_hosts: Option<Vec<Spanned<String>>>,
    remote_chat: Option<bool>,
    remote_embeddings: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BudgetFile {
    daily_usd: Option<Spanned<f64>>,
    monthly_usd: Option<Spanned<f64>>,
    #[serde(default)]
    providers: BTreeMap<String, ProviderBudgetFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProviderBudgetFile {
    daily_usd: Option<Spanned<f64>>,
    monthly_usd: Option<Spanned<f64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PrivacyFile {
    #[serde(default)]
    local_only: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfirmFile {
    remote_chat: Option<bool>,
    new_provider: Option<bool>,
}

/// An endpoint host pattern: the text the administrator wrote and its labels.
#[derive(Clone, Debug)]
pub(crate) struct HostPattern {
    pub text: String,
    pub labels: Vec<Seg>,
}

/// A validated policy.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rules {
    pub kinds: Option<Vec<String>>,
    pub names: Option<Vec<String>>,
    pub models: Option<Vec<String>>,
    pub embedding_models: Option<Vec<String>>,
    pub hosts: Option<Vec<HostPattern>>,
    pub remote_chat: Option<bool>,
    pub remote_embeddings: Option<bool>,
    pub budget: PolicyBudget,
    pub local_only: Vec<String>,
    pub locked: BTreeMap<String, toml::Value>,
    pub confirm_remote_chat: Option<bool>,
    pub confirm_new_provider: Option<bool>,
}

/// A reason the file is malformed, with the byte range it is about when known.
pub(crate) struct Problem {
    pub span: Option<std::ops::Range<usize>>,
    pub reason: String,
}

impl Problem {
    fn at(span: std::ops::Range<usize>, reason: String) -> Problem {
        Problem { span: Some(span), reason }
    }
    fn plain(reason: String) -> Problem {
        Problem { span: None, reason }
    }
}

pub(crate) fn parse(text: &str) -> Result<Rules, Problem> {
    let file: File = toml::from_str(text).map_err(|e| Problem { span: e.span(), reason: e.message().to_owned() })?;
    let p = file.providers;
    let kinds = match p.allowed_kinds {
        None => None,
        Some(list) => {
            let mut kinds = Vec::new();
            for k in list {
                if !KINDS.contains(&k.get_ref().as_str()) {
                    let known = KINDS.join(", ");
                    let reason =
                        format!("providers.allowed_kinds: unknown provider kind \"{}\" (known: {known})", k.get_ref());
                    return Err(Problem::at(k.span(), reason));
                }
                kinds.push(k.into_inner());
            }
            Some(kinds)
        }
    };
    let models = p.allowed_models.map(|v| model_patterns(v, "providers.allowed_models")).transpose()?;
    let embedding_models =
        p.allowed_embedding_models.map(|v| model_patterns(v, "providers.allowed_embedding_models")).transpose()?;
    let hosts = p.allowed_hosts.map(|v| v.into_iter().map(host_pattern).collect::<Result<Vec<_>, _>>()).transpose()?;

    let b = file.budget;
    let mut budget = PolicyBudget {
        daily_usd: dollars(b.daily_usd, "budget.daily_usd")?,
        monthly_usd: dollars(b.monthly_usd, "budget.monthly_usd")?,
        providers: BTreeMap::new(),
    };
    for (name, cap) in b.providers {
        let cap = ProviderCap {
            daily_usd: dollars(cap.daily_usd, &format!("budget.providers.{name}.daily_usd"))?,
            monthly_usd: dollars(cap.monthly_usd, &format!("budget.providers.{name}.monthly_usd"))?,
        };
        budget.providers.insert(name, cap);
    }

    let mut local_only = Vec::new();
    for s in file.privacy.local_only {
        if let Some(why) = folder_pattern_problem(s.get_ref()) {
            return Err(Problem::at(s.span(), format!("privacy.local_only: pattern \"{}\" {why}", s.get_ref())));
        }
        local_only.push(s.into_inner());
    }

    let mut locked = BTreeMap::new();
    flatten_locked(&file.locked, "", &mut locked)?;
    for key in locked.keys() {
        let prefixes = key.match_indices('.').map(|(i, _)| &key[..i]);
        if let Some(outer) = prefixes.into_iter().find(|p| locked.contains_key(*p)) {
            return Err(Problem::plain(format!(
                "locked: \"{outer}\" and \"{key}\" both lock the same setting; lock one or the other"
            )));
        }
    }

    Ok(Rules {
        kinds,
        names: p.allowed_names,
        models,
        embedding_models,
        hosts,
        remote_chat: p.remote_chat,
        remote_embeddings: p.remote_embeddings,
        budget,
        local_only,
        locked,
        confirm_remote_chat: file.confirm.remote_chat,
        confirm_new_provider: file.confirm.new_provider,
    })
}

fn model_patterns(v: Vec<Spanned<String>>, rule: &str) -> Result<Vec<String>, Problem> {
    v.into_iter()
        .map(|m| {
            if m.get_ref().trim().is_empty() {
                Err(Problem::at(m.span(), format!("{rule}: an empty pattern matches no model; remove it")))
            } else {
                Ok(m.into_inner())
            }
        })
        .collect()
}

/// `api.openai.com`, `*.corp.example.com`, `**.corp.example.com`, `127.0.0.1`, `::1`, `[::1]`.
/// Schemes, ports and paths are refused rather than ignored: ignoring `localhost:8080` would
/// allow every port, which is looser than what was written.
fn host_pattern(s: Spanned<String>) -> Result<HostPattern, Problem> {
    let span = s.span();
    let text = s.into_inner();
    let bad = |why: &str| Err(Problem::at(span.clone(), format!("providers.allowed_hosts: \"{text}\" {why}")));
    let lower = text.trim().to_lowercase();
    if lower.is_empty() {
        return bad("is empty");
    }
    if lower.contains("://") || lower.contains('/') {
        return bad("is not a host: write the host alone, without scheme or path (api.openai.com)");
    }
    let host = if let Some(inner) = lower.strip_prefix('[') {
        match inner.strip_suffix(']') {
            Some(h) => h.to_owned(),
            None => return bad("is not a host: an IPv6 address in brackets must end with `]` and have no port"),
        }
    } else {
        if lower.matches(':').count() == 1 {
            return bad("has a port; ports are not matched, write the host alone");
        }
        lower.strip_suffix('.').unwrap_or(&lower).to_owned()
    };
    let labels = segments(&host, &['.']);
    if labels.iter().any(|l| matches!(l, Seg::Name(n) if n.is_empty())) {
        return bad("has an empty label; for every subdomain write **.example.com, for one level *.example.com");
    }
    Ok(HostPattern { text, labels })
}

/// Why a local-only pattern cannot be used, if it cannot.
fn folder_pattern_problem(p: &str) -> Option<&'static str> {
    let windows_absolute = cfg!(windows)
        && (p.starts_with('\\') || (p.len() >= 2 && p.as_bytes()[0].is_ascii_alphabetic() && p.as_bytes()[1] == b':'));
    if p.trim().is_empty() {
        Some("is empty")
    } else if p.starts_with('~') && !(p == "~" || p.starts_with("~/") || p.starts_with("~\\")) {
        Some("names another user's home (~user); write the absolute path")
    } else if !(p.starts_with('/') || p.starts_with('~') || p == "**" || p.starts_with("**/") || windows_absolute) {
        Some("must be an absolute path, start with ~/ (the home folder) or with **/ (any folder)")
    } else {
        None
    }
}

/// A budget cap in dollars: zero or more, and a number.
fn dollars(v: Option<Spanned<f64>>, key: &str) -> Result<Option<f64>, Problem> {
    match v {
        None => Ok(None),
        Some(v) if v.get_ref().is_finite() && *v.get_ref() >= 0.0 => Ok(Some(*v.get_ref())),
        Some(v) => Err(Problem::at(v.span(), format!("{key} = {} must be zero or more dollars", v.get_ref()))),
    }
}

/// `[locked]` entries as dotted keys: `"chat.provider" = "local"` and `[locked.chat]
/// provider = "local"` are the same lock; a table is locked value by value.
fn flatten_locked(table: &toml::Table, prefix: &str, out: &mut BTreeMap<String, toml::Value>) -> Result<(), Problem> {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        if !key
            .split('.')
            .all(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            return Err(Problem::plain(format!(
                "locked: \"{key}\" is not a settings key (dotted names of letters, digits, `_` or `-`, like \"chat.provider\")"
            )));
        }
        match v {
            toml::Value::Table(t) if t.is_empty() => {
                return Err(Problem::plain(format!("locked: \"{key}\" is an empty table and locks nothing")));
            }
            toml::Value::Table(t) => flatten_locked(t, &key, out)?,
            toml::Value::Float(f) if !f.is_finite() => {
                return Err(Problem::plain(format!("locked: \"{key}\" = {f} is not a usable number")));
            }
            v => {
                if out.insert(key.clone(), v.clone()).is_some() {
                    return Err(Problem::plain(format!("locked: \"{key}\" is locked twice")));
                }
            }
        }
    }
    Ok(())
}
