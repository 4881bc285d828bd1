//! Settings pinned by `[locked]`, applied to and checked against the user's settings as a
//! generic TOML value, so this crate needs no knowledge of the settings' shape.

use crate::{Denied, Policy};
use toml::Value;

/// What a dotted key finds in a settings value.
enum Found<'a> {
    Value(&'a Value),
    Absent,
    /// Some prefix of the key holds a value that is not a table (`chat = "x"` for `chat.provider`).
    Blocked(String),
}

fn find<'a>(settings: &'a Value, key: &str) -> Found<'a> {
    let mut at = settings;
    let mut walked = Vec::new();
    for seg in key.split('.') {
        let Value::Table(t) = at else {
            return Found::Blocked(walked.join("."));
        };
        match t.get(seg) {
            Some(v) => at = v,
            None => return Found::Absent,
        }
        walked.push(seg);
    }
    Found::Value(at)
}

/// Equal as settings: an integer and a float of the same number are the same value (a locked
/// `1` and a setting written as `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Integer(i), Value::Float(f)) | (Value::Float(f), Value::Integer(i)) => *i as f64 == *f,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Table(x), Value::Table(y)) => {
            x.len() == y.len() && x.iter().all(|(k, a)| y.get(k).is_some_and(|b| same(a, b)))
        }
        (a, b) => a == b,
    }
}

impl Policy {
    /// Every locked setting and its value, by dotted key.
    pub fn locked(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.rules.locked.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value `key` (`chat.provider`) is locked to, if it is locked.
    pub fn is_locked(&self, key: &str) -> Option<&Value> {
        self.rules.locked.get(key)
    }

    /// Sets every locked key in `settings` (a table, the user's settings as TOML) to its
    /// locked value, creating tables on the way. Refused, after setting every key it can, when
    /// `settings` is not a table or a key runs into a value that is not a table.
    pub fn apply_locked(&self, settings: &mut Value) -> Result<(), Denied> {
        let mut first_error = None;
        for (key, value) in &self.rules.locked {
            if let Err(blocked) = set_dotted(settings, key, value.clone()) {
                let what = if blocked.is_empty() { "the settings are".to_owned() } else { format!("`{blocked}` is") };
                first_error.get_or_insert_with(|| {
                    self.deny(&format!("locked.{key}"), format!("cannot set {key} = {value}: {what} not a table"))
                });
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Whether the change from `before` to `after` (the user's settings as TOML) respects the
    /// locks: refused when `after` sets a locked key to another value than the locked one,
    /// naming the first such rule. A key absent from `after` is fine (the lock fills it in when
    /// the settings are loaded), and so is a different value that `before` already had: that
    /// is not this change's doing, and [`Policy::apply_locked`] overrides it on loading.
    pub fn check_change(&self, before: &Value, after: &Value) -> Result<(), Denied> {
        for (key, locked) in &self.rules.locked {
            let rule = format!("locked.{key}");
            match find(after, key) {
                Found::Absent => {}
                Found::Blocked(prefix) => {
                    let what = if prefix.is_empty() { "the settings".to_owned() } else { format!("`{prefix}`") };
                    return Err(
                        self.deny(&rule, format!("keeps {key} = {locked}; {what} cannot be replaced by a value"))
                    );
                }
                Found::Value(now) => {
                    let unchanged = matches!(find(before, key), Found::Value(was) if same(was, now));
                    if !same(now, locked) && !unchanged {
                        return Err(self.deny(&rule, format!("keeps {key} = {locked}; it cannot be set to {now}")));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Sets dotted `key` (`answer.max_sources`) in `settings`, creating tables on the way;
/// `Err(prefix)` when `prefix` holds something other than a table.
pub fn set_dotted(settings: &mut Value, key: &str, value: Value) -> Result<(), String> {
    let segs: Vec<&str> = key.split('.').collect();
    let mut at = settings;
    for (i, seg) in segs.iter().enumerate() {
        let Value::Table(t) = at else {
            return Err(segs[..i].join("."));
        };
        if i + 1 == segs.len() {
            t.insert((*seg).to_owned(), value);
            return Ok(());
        }
        at = t.entry(*seg).or_insert_with(|| Value::Table(toml::Table::new()));
    }
    Ok(())
}
