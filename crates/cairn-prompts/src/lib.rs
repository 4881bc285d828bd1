//! Prompts as code: every prompt Cairn sends is a versioned TOML file under `prompts/<id>/`,
//! loaded by id, rendered with named variables, and identified on every answer by id, version
//! and a hash of its text.
//!
//! A prompt file holds `id`, `version`, `purpose`, the `variables` it takes, and its
//! `[[messages]]` (a role and a template each; `{{name}}` marks a variable). Rendering is a
//! single pass: a value is inserted as it is and never expanded again, so a document that
//! contains `{{question}}` stays text. `prompts/prompts.lock` pins each (id, version) to its
//! hash; the tests fail when a prompt's text changes without a new version.
//!
//! This crate deliberately knows nothing of models, tokens or retrieval: it turns a prompt and
//! values into role-tagged strings.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The prompt files shipped with Cairn, compiled in so the binary and the desktop app carry
/// them. A test checks this list against the files in `prompts/`.
const BUILTIN: &[(&str, &str)] = &[
    ("answer/v1.toml", include_str!("../../../prompts/answer/v1.toml")),
    ("answer/v2.toml", include_str!("../../../prompts/answer/v2.toml")),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PromptError {
    #[error("prompt file {file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("no prompt with id `{id}`{}", .version.map(|v| format!(" and version {v}")).unwrap_or_default())]
    Unknown { id: String, version: Option<u32> },
    #[error("prompt {id} v{version} needs the variable `{name}`, which was not given")]
    MissingVariable { id: String, version: u32, name: String },
    #[error("prompt {id} v{version} was given `{name}`, which it does not declare")]
    UnexpectedVariable { id: String, version: u32, name: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageFile {
    role: Role,
    template: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptFile {
    id: String,
    version: u32,
    purpose: String,
    variables: Vec<String>,
    messages: Vec<MessageFile>,
}

/// One version of one prompt.
#[derive(Clone, Debug)]
pub struct Prompt {
    pub id: String,
    pub version: u32,
    pub purpose: String,
    pub variables: Vec<String>,
    /// Where it came from (`answer/v1.toml`), for messages.
    pub file: String,
    /// blake3 of the messages' roles and templates, hex, first 16 characters: what changes when
    /// the text does.
    pub hash: String,
    messages: Vec<(Role, String)>,
}

/// A rendered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Prompt {
    /// Parses a prompt file; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Prompt, PromptError> {
        let invalid = |reason: String| PromptError::Invalid { file: file.to_owned(), reason };
        let raw: PromptFile = toml::from_str(text).map_err(|e| invalid(e.message().to_owned()))?;
        if raw.id.is_empty() || !raw.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(invalid(format!("id `{}` must be letters, digits, `-` or `_`", raw.id)));
        }
        if raw.messages.is_empty() {
            return Err(invalid("it has no [[messages]]".into()));
        }
        let messages: Vec<(Role, String)> =
            raw.messages.into_iter().map(|m| (m.role, m.template.trim_end().to_owned())).collect();
        // Every `{{name}}` used must be declared, and every declared variable used.
        let mut used = Vec::new();
        for (_, t) in &messages {
            for piece in split(t) {
                if let Piece::Var(name) = piece
                    && !used.contains(&name)
                {
                    used.push(name);
                }
            }
        }
        for name in &used {
            if !raw.variables.iter().any(|v| v == name) {
                return Err(invalid(format!("the template uses `{{{{{name}}}}}`, which `variables` does not list")));
            }
        }
        for v in &raw.variables {
            if !used.contains(&v.as_str()) {
                return Err(invalid(format!("`{v}` is listed in `variables` but no template uses it")));
            }
        }
        let mut h = blake3::Hasher::new();
        for (role, t) in &messages {
            h.update(format!("{role:?}").as_bytes());
            h.update(&[0]);
            h.update(t.as_bytes());
            h.update(&[0]);
        }
        Ok(Prompt {
            id: raw.id,
            version: raw.version,
            purpose: raw.purpose,
            variables: raw.variables,
            file: file.to_owned(),
            hash: h.finalize().to_hex()[..16].to_owned(),
            messages,
        })
    }

    /// `answer.v1`: what answers are stamped with.
    pub fn label(&self) -> String {
        format!("{}.v{}", self.id, self.version)
    }

    /// The messages with every variable replaced by its value. Values are inserted as they are:
    /// text that looks like `{{name}}` inside a value is not expanded.
    pub fn render(&self, values: &[(&str, &str)]) -> Result<Vec<Message>, PromptError> {
        for (name, _) in values {
            if !self.variables.iter().any(|v| v == name) {
                return Err(PromptError::UnexpectedVariable {
                    id: self.id.clone(),
                    version: self.version,
                    name: (*name).to_owned(),
                });
            }
        }
        let mut out = Vec::with_capacity(self.messages.len());
        for (role, template) in &self.messages {
            let mut content = String::with_capacity(template.len());
            for piece in split(template) {
                match piece {
                    Piece::Text(t) => content.push_str(t),
                    Piece::Var(name) => match values.iter().find(|(n, _)| *n == name) {
                        Some((_, v)) => content.push_str(v),
                        None => {
                            return Err(PromptError::MissingVariable {
                                id: self.id.clone(),
                                version: self.version,
                                name: name.to_owned(),
                            });
                        }
                    },
                }
            }
            out.push(Message { role: *role, content });
        }
        Ok(out)
    }
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Splits a template into literal text and `{{name}}` markers (`name` of letters, digits and
/// `_`; anything else between braces stays text).
fn split(template: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        match after.find("}}") {
            Some(close)
                if !after[..close].is_empty()
                    && after[..close].chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                pieces.push(Piece::Text(&rest[..open]));
                pieces.push(Piece::Var(&after[..close]));
                rest = &after[close + 2..];
            }
            _ => {
                pieces.push(Piece::Text(&rest[..open + 2]));
                rest = after;
            }
        }
    }
    pieces.push(Piece::Text(rest));
    pieces
}

/// Every known prompt, by id and version.
#[derive(Clone, Debug)]
pub struct Prompts {
    by_id: BTreeMap<String, BTreeMap<u32, Prompt>>,
}

impl Prompts {
    /// The prompts compiled into Cairn.
    pub fn builtin() -> Prompts {
        let mut by_id: BTreeMap<String, BTreeMap<u32, Prompt>> = BTreeMap::new();
        for (file, text) in BUILTIN {
            // The tests parse every built-in file, so this cannot fail in a released build.
            let p = Prompt::parse(file, text).expect("built-in prompt files are checked by the tests");
            by_id.entry(p.id.clone()).or_default().insert(p.version, p);
        }
        Prompts { by_id }
    }

    /// Adds (or replaces) prompts from `*.toml` files under `dir` (`<id>/v<n>.toml`): a user's
    /// own versions. A bad file is an error naming it; nothing is half-loaded.
    pub fn with_dir(mut self, dir: &std::path::Path) -> Result<Prompts, PromptError> {
        let Ok(ids) = std::fs::read_dir(dir) else { return Ok(self) };
        let mut loaded = Vec::new();
        for entry in ids.flatten() {
            let Ok(files) = std::fs::read_dir(entry.path()) else { continue };
            for f in files.flatten() {
                let path = f.path();
                if path.extension().is_some_and(|e| e == "toml") {
                    let name = path.display().to_string();
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| PromptError::Invalid { file: name.clone(), reason: e.to_string() })?;
                    loaded.push(Prompt::parse(&name, &text)?);
                }
            }
        }
        for p in loaded {
            self.by_id.entry(p.id.clone()).or_default().insert(p.version, p);
        }
        Ok(self)
    }

    /// Prompt `id` at `version`, or its highest version when `version` is `None`.
    pub fn get(&self, id: &str, version: Option<u32>) -> Result<&Prompt, PromptError> {
        let versions = self.by_id.get(id);
        let found = match version {
            Some(v) => versions.and_then(|vs| vs.get(&v)),
            None => versions.and_then(|vs| vs.values().next_back()),
        };
        found.ok_or_else(|| PromptError::Unknown { id: id.to_owned(), version })
    }

    /// Every prompt, by id then version.
    pub fn all(&self) -> impl Iterator<Item = &Prompt> {
        self.by_id.values().flat_map(|vs| vs.values())
    }
}

#[cfg(test)]
mod tests;
