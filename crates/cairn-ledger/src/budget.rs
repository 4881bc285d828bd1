//! Budgets: daily and monthly caps, for all providers together and per provider, checked
//! before each call against what has been spent plus the call's estimated cost.

use crate::Money;
use serde::Serialize;
use std::collections::BTreeMap;

/// Caps for one scope (everything, or one provider). `None` means no cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetLimits {
    pub daily: Option<Money>,
    pub monthly: Option<Money>,
}

/// The user's (or the administrator's) budget rules.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetRules {
    pub global: BudgetLimits,
    /// By provider name as configured in settings.
    pub providers: BTreeMap<String, BudgetLimits>,
    /// Share of a cap at which the user is warned (0.8 = 80%).
    pub warn_at: f64,
}

impl Default for BudgetRules {
    fn default() -> Self {
        BudgetRules { global: BudgetLimits::default(), providers: BTreeMap::new(), warn_at: 0.8 }
    }
}

/// What has been spent so far today and this month (local calendar), overall and with the
/// provider about to be called.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    pub day: Money,
    pub month: Money,
    pub provider_day: Money,
    pub provider_month: Money,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    Daily,
    Monthly,
}

impl Window {
    fn noun(self) -> &'static str {
        match self {
            Window::Daily => "today's",
            Window::Monthly => "this month's",
        }
    }
}

/// A cap a call would break.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OverBudget {
    /// `None` for the overall cap, else the provider's name.
    pub provider: Option<String>,
    pub window: Window,
    pub limit: Money,
    pub spent: Money,
    pub estimate: Money,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scope = match &self.provider {
            Some(p) => format!("{} {p} budget", self.window.noun()),
            None => format!("{} budget", self.window.noun()),
        };
        write!(
            f,
            "this call (about {}) would exceed {scope} of {}: {} already spent",
            self.estimate, self.limit, self.spent
        )
    }
}

/// The decision for one call.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Go ahead; `warnings` name caps at or past the warning share once this call is made.
    Allow { warnings: Vec<String> },
    /// A hard cap would be exceeded: the call must not be made.
    Refuse(OverBudget),
}

impl BudgetRules {
    /// Checks a call to `provider` estimated at `estimate`, given what has been `spent`.
    pub fn check(&self, provider: &str, spent: Spent, estimate: Money) -> Verdict {
        let per = self.providers.get(provider).copied().unwrap_or_default();
        let caps = [
            (None, Window::Daily, self.global.daily, spent.day),
            (None, Window::Monthly, self.global.monthly, spent.month),
            (Some(provider), Window::Daily, per.daily, spent.provider_day),
            (Some(provider), Window::Monthly, per.monthly, spent.provider_month),
        ];
        let mut warnings = Vec::new();
        for (who, window, limit, spent) in caps {
            let Some(limit) = limit else { continue };
            let after = spent + estimate;
            if after > limit {
                return Verdict::Refuse(OverBudget {
                    provider: who.map(str::to_owned),
                    window,
                    limit,
                    spent,
                    estimate,
                });
            }
            let share = after.fraction_of(limit);
            if share >= self.warn_at {
                let scope = match who {
                    Some(p) => format!("{} {p} budget", window.noun()),
                    None => format!("{} budget", window.noun()),
                };
                warnings.push(format!("{:.0}% of {scope} of {limit} used ({after})", share * 100.0));
            }
        }
        Verdict::Allow { warnings }
    }
}
