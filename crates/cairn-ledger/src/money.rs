//! `Money`: US dollars as whole nanodollars, exact under addition.

use serde::{Deserialize, Serialize};

/// An amount in nanodollars (10⁻⁹ USD). A call of one token at $0.005 per million tokens is
/// 5 nanodollars, so every listed price is exact per token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(pub i64);

impl Money {
    pub const ZERO: Money = Money(0);

    /// From dollars, rounded to the nearest nanodollar.
    pub fn from_dollars(d: f64) -> Money {
        Money((d * 1e9).round() as i64)
    }

    pub fn nanos(self) -> i64 {
        self.0
    }

    pub fn dollars(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// What `tokens` cost when this amount is the price of one million tokens.
    pub fn per_tokens(self, tokens: u64) -> Money {
        let total = i128::from(self.0) * i128::from(tokens);
        // Round half up to whole nanodollars.
        Money(((total + 500_000) / 1_000_000) as i64)
    }

    /// The share of `limit` this amount is (0.0 when there is no limit to speak of).
    pub fn fraction_of(self, limit: Money) -> f64 {
        if limit.0 <= 0 { 0.0 } else { self.0 as f64 / limit.0 as f64 }
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0.saturating_add(o.0))
    }
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, o: Money) {
        *self = *self + o;
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, o: Money) -> Money {
        Money(self.0.saturating_sub(o.0))
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}

/// `$1.25`, `$0.0042`, `$0.000015`: cents for amounts of a dollar or more, otherwise enough
/// digits to show two significant ones (a tiny call is never shown as `$0.00`).
impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let n = self.0.unsigned_abs();
        if n == 0 {
            return write!(f, "$0.00");
        }
        if n >= 1_000_000_000 || n.is_multiple_of(10_000_000) {
            let cents = (n + 5_000_000) / 10_000_000;
            return write!(f, "{sign}${}.{:02}", cents / 100, cents % 100);
        }
        // Below a dollar: as many decimals as it takes for two significant digits, at most 9.
        let mut decimals = 2;
        while decimals < 9 && n < 10u64.pow(9 - decimals as u32 + 1) {
            decimals += 1;
        }
        let scale = 10u64.pow(9 - decimals as u32);
        let rounded = (n + scale / 2) / scale;
        let whole = rounded / 10u64.pow(decimals as u32);
        let frac = rounded % 10u64.pow(decimals as u32);
        write!(f, "{sign}${whole}.{frac:0width$}", width = decimals)
    }
}
