//! The price table: which price applies to a call, by vendor, model name and date.

use crate::Money;
use serde::Deserialize;

const BUILTIN: &str = include_str!("../prices.toml");

/// Dollars per million tokens for each kind of token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Price {
    pub input: Money,
    /// Input tokens served from the provider's prompt cache.
    pub cached_input: Money,
    pub output: Money,
}

impl Price {
    pub const FREE: Price = Price { input: Money::ZERO, cached_input: Money::ZERO, output: Money::ZERO };
}

/// One row of the table as written in TOML, in dollars per million tokens.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    pub vendor: String,
    /// Exact model name, or a prefix ending in `*`.
    pub model: String,
    /// `YYYY-MM-DD`: calls on or after this day use this price.
    pub from: String,
    pub input: f64,
    /// Defaults to `input` (no discount) when the vendor does not cache.
    #[serde(default)]
    pub cached_input: Option<f64>,
    #[serde(default)]
    pub output: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PriceError {
    #[error("price table {source_name}: {reason}")]
    Invalid { source_name: String, reason: String },
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    prices: Vec<PriceEntry>,
}

/// Prices to look calls up in: the user's entries first, then Cairn's built-in list.
#[derive(Clone, Debug)]
pub struct PriceTable {
    user: Vec<PriceEntry>,
    builtin: Vec<PriceEntry>,
}

impl PriceTable {
    /// Cairn's list (`prices.toml`) with the user's `entries` on top.
    pub fn new(user: Vec<PriceEntry>) -> Result<PriceTable, PriceError> {
        for e in &user {
            validate(e, "settings")?;
        }
        let builtin: File = toml::from_str(BUILTIN)
            .map_err(|e| PriceError::Invalid { source_name: "prices.toml".into(), reason: e.message().to_owned() })?;
        for e in &builtin.prices {
            validate(e, "prices.toml")?;
        }
        Ok(PriceTable { user, builtin: builtin.prices })
    }

    /// The price for `model` at `vendor` on `date` (`YYYY-MM-DD`), `None` when neither the
    /// user nor Cairn knows one. Among entries that match, the longest model pattern wins,
    /// then the latest `from` not after `date`; any user entry that matches beats every
    /// built-in one.
    pub fn lookup(&self, vendor: &str, model: &str, date: &str) -> Option<Price> {
        pick(&self.user, vendor, model, date).or_else(|| pick(&self.builtin, vendor, model, date)).map(|e| Price {
            input: Money::from_dollars(e.input),
            cached_input: Money::from_dollars(e.cached_input.unwrap_or(e.input)),
            output: Money::from_dollars(e.output),
        })
    }

    /// Every entry, the user's first: what `cairn costs prices` lists.
    pub fn entries(&self) -> impl Iterator<Item = (&PriceEntry, bool)> {
        self.user.iter().map(|e| (e, true)).chain(self.builtin.iter().map(|e| (e, false)))
    }
}

fn validate(e: &PriceEntry, source_name: &str) -> Result<(), PriceError> {
    let bad = |reason: String| PriceError::Invalid { source_name: source_name.to_owned(), reason };
    let date_ok = e.from.len() == 10
        && e.from.char_indices().all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
    if !date_ok {
        return Err(bad(format!("{} {}: `from` must be a date like 2025-01-31, not `{}`", e.vendor, e.model, e.from)));
    }
    for (name, v) in [("input", Some(e.input)), ("cached_input", e.cached_input), ("output", Some(e.output))] {
        if let Some(v) = v
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(bad(format!("{} {}: `{name}` must be a price of zero or more, not {v}", e.vendor, e.model)));
        }
    }
    if e.model.is_empty() || e.model.trim_end_matches('*').contains('*') {
        return Err(bad(format!("{}: `model` must be a name, or a prefix ending in *: `{}`", e.vendor, e.model)));
    }
    Ok(())
}

fn matches(pattern: &str, model: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => model.starts_with(prefix),
        None => pattern == model,
    }
}

fn pick<'a>(entries: &'a [PriceEntry], vendor: &str, model: &str, date: &str) -> Option<&'a PriceEntry> {
    entries
        .iter()
        .filter(|e| e.vendor == vendor && matches(&e.model, model) && e.from.as_str() <= date)
        // Exact names beat prefixes; longer prefixes beat shorter ones; later dates win.
        .max_by(|a, b| {
            let key = |e: &PriceEntry| (!e.model.ends_with('*'), e.model.len(), e.from.clone());
            key(a).cmp(&key(b))
        })
}
