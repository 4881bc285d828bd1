#![allow(clippy::unwrap_used)]

use super::*;

fn entry(vendor: &str, model: &str, from: &str, input: f64, output: f64) -> PriceEntry {
    PriceEntry { vendor: vendor.into(), model: model.into(), from: from.into(), input, cached_input: None, output }
}

#[test]
fn money_is_exact_and_reads_like_money() {
    let per_m = Money::from_dollars(0.15);
    assert_eq!(per_m.nanos(), 150_000_000);
    assert_eq!(per_m.per_tokens(1), Money(150));
    // A thousand one-token calls add up to exactly one thousand-token call.
    let many: Money = (0..1000).map(|_| per_m.per_tokens(1)).sum();
    assert_eq!(many, per_m.per_tokens(1000));
    for (nanos, shown) in [
        (0, "$0.00"),
        (1_500_000_000, "$1.50"),
        (50_000_000, "$0.05"),
        (123_456_789, "$0.12"),
        (4_200_000, "$0.0042"),
        (15_000, "$0.000015"),
        (7, "$0.000000007"),
        (12_345_678_901, "$12.35"),
    ] {
        assert_eq!(Money(nanos).to_string(), shown, "{nanos}");
    }
}

#[test]
fn usage_costs_fresh_cached_and_output_tokens_at_their_own_prices() {
    let table = PriceTable::new(Vec::new()).unwrap();
    let p = table.lookup("openai", "gpt-4o-mini", "2026-01-01").unwrap();
    // 12,000 prompt tokens of which 2,000 cached, 500 out:
    // 10,000 × $0.15/M + 2,000 × $0.075/M + 500 × $0.60/M = $0.0015 + $0.00015 + $0.0003.
    let cost = Usage { input: 12_000, cached: 2_000, output: 500 }.cost(&p);
    assert_eq!(cost, Money::from_dollars(0.00195));
    assert_eq!(cost.to_string(), "$0.0020");
    assert_eq!(Usage { input: 10, cached: 50, output: 0 }.cost(&p), p.cached_input.per_tokens(10), "cached ≤ input");
}

#[test]
fn the_most_specific_price_in_effect_on_the_day_applies() {
    let table = PriceTable::new(Vec::new()).unwrap();
    let dollars = |vendor: &str, model: &str, date: &str| {
        table.lookup(vendor, model, date).map(|p| (p.input.dollars(), p.output.dollars()))
    };
    assert_eq!(dollars("openai", "gpt-4o-mini-2024-07-18", "2026-01-01"), Some((0.15, 0.60)), "longest prefix");
    assert_eq!(dollars("openai", "gpt-4o-2024-08-06", "2026-01-01"), Some((2.50, 10.00)));
    assert_eq!(dollars("openai", "gpt-4o-mini", "2024-07-01"), None, "not yet in effect");
    assert_eq!(dollars("anthropic", "claude-opus-4-1-20250805", "2026-01-01"), Some((15.0, 75.0)));
    assert_eq!(dollars("anthropic", "claude-opus-4-5-20251101", "2026-01-01"), Some((5.0, 25.0)));
    assert_eq!(dollars("openai", "text-embedding-3-small", "2026-01-01"), Some((0.02, 0.0)));
    assert_eq!(dollars("openai", "llama3.1:8b", "2026-01-01"), None, "unknown model");
    assert_eq!(dollars("openrouter", "gpt-4o-mini", "2026-01-01"), None, "other vendors are not guessed");
}

#[test]
fn user_prices_override_and_dates_replace_earlier_prices() {
    let table = PriceTable::new(vec![
        entry("openai", "gpt-4o-mini", "2026-01-01", 0.10, 0.40),
        entry("openai", "gpt-4o-mini", "2026-06-01", 0.05, 0.20),
        entry("local-gpu", "*", "2000-01-01", 0.0, 0.0),
    ])
    .unwrap();
    let input = |model: &str, date: &str| table.lookup("openai", model, date).unwrap().input.dollars();
    assert_eq!(input("gpt-4o-mini", "2025-12-31"), 0.15, "before the user's price: the built-in one");
    assert_eq!(input("gpt-4o-mini", "2026-01-01"), 0.10);
    assert_eq!(input("gpt-4o-mini", "2026-07-04"), 0.05);
    assert_eq!(table.lookup("local-gpu", "anything", "2026-01-01"), Some(Price::FREE));
    let cached = table.lookup("openai", "gpt-4o-mini", "2026-07-04").unwrap().cached_input;
    assert_eq!(cached, Money::from_dollars(0.05), "no cached price given: same as input");
}

#[test]
fn bad_price_entries_are_refused_with_the_reason() {
    let err = |e: PriceEntry| PriceTable::new(vec![e]).unwrap_err().to_string();
    assert_eq!(
        err(entry("openai", "x", "June 2026", 1.0, 1.0)),
        "price table settings: openai x: `from` must be a date like 2025-01-31, not `June 2026`"
    );
    assert_eq!(
        err(entry("openai", "x", "2026-01-01", -1.0, 1.0)),
        "price table settings: openai x: `input` must be a price of zero or more, not -1"
    );
    assert_eq!(
        err(entry("openai", "gpt-*-mini", "2026-01-01", 1.0, 1.0)),
        "price table settings: openai: `model` must be a name, or a prefix ending in *: `gpt-*-mini`"
    );
}

fn rules() -> BudgetRules {
    let mut r = BudgetRules {
        global: BudgetLimits { daily: Some(Money::from_dollars(1.0)), monthly: Some(Money::from_dollars(10.0)) },
        ..Default::default()
    };
    r.providers.insert("anthropic".into(), BudgetLimits { daily: Some(Money::from_dollars(0.25)), monthly: None });
    r
}

#[test]
fn a_call_that_would_break_a_cap_is_refused_and_says_which() {
    let spent = Spent {
        day: Money::from_dollars(0.5),
        month: Money::from_dollars(9.9),
        provider_day: Money::ZERO,
        provider_month: Money::ZERO,
    };
    match rules().check("openai", spent, Money::from_dollars(0.2)) {
        Verdict::Refuse(o) => {
            assert_eq!((o.window, o.provider.as_deref()), (Window::Monthly, None));
            assert_eq!(
                o.to_string(),
                "this call (about $0.20) would exceed this month's budget of $10.00: $9.90 already spent"
            );
        }
        v => panic!("{v:?}"),
    }
    let spent = Spent { provider_day: Money::from_dollars(0.2), ..Default::default() };
    match rules().check("anthropic", spent, Money::from_dollars(0.06)) {
        Verdict::Refuse(o) => assert_eq!(
            o.to_string(),
            "this call (about $0.06) would exceed today's anthropic budget of $0.25: $0.20 already spent"
        ),
        v => panic!("{v:?}"),
    }
}

#[test]
fn warnings_start_at_eighty_percent_and_no_cap_means_no_limit() {
    let spent = Spent { day: Money::from_dollars(0.75), ..Default::default() };
    assert_eq!(rules().check("openai", spent, Money::from_dollars(0.01)), Verdict::Allow { warnings: Vec::new() });
    assert_eq!(
        rules().check("openai", spent, Money::from_dollars(0.1)),
        Verdict::Allow { warnings: vec!["85% of today's budget of $1.00 used ($0.85)".into()] }
    );
    let exact = Spent { day: Money::from_dollars(0.9), ..Default::default() };
    assert!(
        matches!(rules().check("openai", exact, Money::from_dollars(0.1)), Verdict::Allow { .. }),
        "reaching the cap exactly is allowed"
    );
    let lots = Spent { day: Money::from_dollars(1e6), month: Money::from_dollars(1e6), ..Default::default() };
    assert!(matches!(BudgetRules::default().check("x", lots, Money::from_dollars(5.0)), Verdict::Allow { .. }));
}
