//! What model calls cost: a price table with effective dates, usage × price → dollars, and the
//! budget rules that decide whether a call may go ahead.
//!
//! Money is kept in whole nanodollars (`Money`), so sums over thousands of tiny calls are
//! exact and `cairn costs` adds up to the cent the same way every time. Prices are data
//! (`prices.toml`, compiled in, and the user's own entries layered on top); nothing here
//! reads the clock, the network or the database: the engine passes in the date, the usage
//! and the amounts already spent.

mod budget;
mod money;
mod prices;

pub use budget::{BudgetLimits, BudgetRules, OverBudget, Spent, Verdict, Window};
pub use money::Money;
pub use prices::{Price, PriceEntry, PriceError, PriceTable};

/// Tokens of one call, as the ledger records them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens in all, cached ones included.
    pub input: u64,
    /// Of `input`, how many the provider served from its prompt cache (billed lower).
    pub cached: u64,
    pub output: u64,
}

impl Usage {
    /// What this usage costs at `price`.
    pub fn cost(&self, price: &Price) -> Money {
        let cached = self.cached.min(self.input);
        let fresh = self.input - cached;
        price.input.per_tokens(fresh) + price.cached_input.per_tokens(cached) + price.output.per_tokens(self.output)
    }
}

#[cfg(test)]
mod tests;
