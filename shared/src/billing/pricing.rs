//! Tiered pricing of one billable item for one period (docs/RULES.md R11.4, R11.5).
//!
//! A bill line is the period's quantity (already in the item's price unit, see
//! [`crate::metering::units`]) priced by the item's tier schedule. Every tier charge is kept
//! exact — to `Decimal`'s 28 significant digits — and only the line amount is truncated, toward
//! zero, to cents: the marketplace never rounds a customer's charge up. The breakdown is what the
//! customer sees on the bill, so it must add up to the exact amount the truncation started from.

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use crate::billing::{BillLine, Priced, ResourceLine};
use crate::error::{ApiError, ApiResult};
use crate::listing::service::Resource;
use crate::listing::steps::{Tier, TierMode};
use crate::metering::units::to_price_unit;
use crate::orders::Terms;
use crate::orders::ledger::Cents;

/// Money is charged in cents.
const MONEY_SCALE: u32 = 2;

/// One billable item's charge for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PricedLine {
    /// The period's usage in the item's price unit.
    pub quantity: Decimal,
    /// The exact charge truncated toward zero to 2 decimal places (always 2, e.g. `"500.00"`).
    pub amount: Decimal,
    /// The tiers the quantity was priced in, lowest first. Graduated lines list every tier up to
    /// the one the quantity falls in; volume lines list only that tier. A zero quantity falls in
    /// the first tier and shows it with quantity 0.
    pub breakdown: Vec<TierCharge>,
}

impl PricedLine {
    #[cfg(test)]
    /// The untruncated charge: the sum of the breakdown's amounts.
    pub(crate) fn exact_amount(&self) -> Result<Decimal, PricingError> {
        sum(self.breakdown.iter().map(|c| c.amount))
    }
}

/// The part of a line priced at one tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TierCharge {
    /// Position of the tier in the item's schedule, from 0.
    pub tier_index: usize,
    /// The tier's exclusive lower bound: the previous tier's `up_to`, or 0 for the first tier.
    pub from: Decimal,
    /// The tier's inclusive upper bound; `None` for the last, unbounded tier.
    pub up_to: Option<Decimal>,
    /// Units priced at this tier.
    pub quantity: Decimal,
    pub unit_price: Decimal,
    /// `quantity × unit_price`, not truncated.
    pub amount: Decimal,
}

/// Why a quantity could not be priced. None of these can come from a schedule the listing rules
/// accepted and usage the metering rules accepted, short of absurd magnitudes; callers should
/// treat them as internal errors of the bill run, not as customer input errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PricingError {
    /// Usage is never negative.
    NegativeQuantity,
    /// The schedule breaks the listing's tier rules: empty, bounds not strictly ascending and
    /// positive, a bounded last tier or an unbounded one before it, or a negative unit price.
    InvalidSchedule,
    /// The charge does not fit in a `Decimal`.
    Overflow,
}

impl fmt::Display for PricingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PricingError::NegativeQuantity => "a quantity to price must not be negative",
            PricingError::InvalidSchedule => {
                "the tier schedule is invalid: it needs strictly ascending positive bounds, \
                 an unbounded last tier and non-negative prices"
            }
            PricingError::Overflow => "the charge is too large to compute",
        })
    }
}

impl std::error::Error for PricingError {}

/// Prices `quantity` (in the item's price unit) by `tiers` in `mode`.
///
/// `up_to` is inclusive in both modes: with tiers up to 1,000 and up to 5,000, a quantity of
/// exactly 1,000 lies wholly in the first tier and 1,001 puts 1 unit in the second. Quantities
/// may be fractional (half an hour is 0.5).
pub(crate) fn price(
    tiers: &[Tier],
    mode: TierMode,
    quantity: Decimal,
) -> Result<PricedLine, PricingError> {
    if quantity.is_sign_negative() && !quantity.is_zero() {
        return Err(PricingError::NegativeQuantity);
    }
    check_schedule(tiers)?;
    let breakdown = match mode {
        TierMode::Graduated => graduated(tiers, quantity)?,
        TierMode::Volume => vec![volume(tiers, quantity)?],
    };
    let exact = sum(breakdown.iter().map(|c| c.amount))?;
    Ok(PricedLine {
        quantity,
        amount: money(exact)?,
        breakdown,
    })
}

/// A bill's total from its lines' (already truncated) amounts. A total under 0.01 is 0: the
/// marketplace does not bill fractions of a cent.
pub(crate) fn bill_total(lines: &[Decimal]) -> Result<Decimal, PricingError> {
    let total = sum(lines.iter().copied())?;
    if total < Decimal::new(1, MONEY_SCALE) {
        return money(Decimal::ZERO);
    }
    money(total)
}

/// The listing validates schedules when they are saved; a stored schedule is re-checked here
/// because a wrong bill is worse than a failed bill run.
fn check_schedule(tiers: &[Tier]) -> Result<(), PricingError> {
    let Some((last, bounded)) = tiers.split_last() else {
        return Err(PricingError::InvalidSchedule);
    };
    if last.up_to.is_some() || tiers.iter().any(|t| t.unit_price.is_sign_negative()) {
        return Err(PricingError::InvalidSchedule);
    }
    let mut previous = Decimal::ZERO;
    for tier in bounded {
        match tier.up_to {
            Some(bound) if bound > previous => previous = bound,
            _ => return Err(PricingError::InvalidSchedule),
        }
    }
    Ok(())
}

/// Each unit at the tier it falls in: the quantity fills the tiers from the bottom.
fn graduated(tiers: &[Tier], quantity: Decimal) -> Result<Vec<TierCharge>, PricingError> {
    let mut breakdown = Vec::new();
    let mut from = Decimal::ZERO;
    for (tier_index, tier) in tiers.iter().enumerate() {
        let top = match tier.up_to {
            Some(bound) if bound < quantity => bound,
            _ => quantity,
        };
        let units = top.checked_sub(from).ok_or(PricingError::Overflow)?;
        breakdown.push(charge(tier_index, from, tier, units)?);
        if top == quantity {
            break;
        }
        from = top;
    }
    Ok(breakdown)
}

/// Every unit at the tier the whole quantity falls in.
fn volume(tiers: &[Tier], quantity: Decimal) -> Result<TierCharge, PricingError> {
    let tier_index = tiers
        .iter()
        .position(|t| t.up_to.is_none_or(|bound| quantity <= bound))
        .ok_or(PricingError::InvalidSchedule)?;
    let from = match tier_index.checked_sub(1) {
        Some(previous) => tiers[previous].up_to.ok_or(PricingError::InvalidSchedule)?,
        None => Decimal::ZERO,
    };
    charge(tier_index, from, &tiers[tier_index], quantity)
}

fn charge(
    tier_index: usize,
    from: Decimal,
    tier: &Tier,
    quantity: Decimal,
) -> Result<TierCharge, PricingError> {
    Ok(TierCharge {
        tier_index,
        from,
        up_to: tier.up_to,
        quantity,
        unit_price: tier.unit_price,
        amount: quantity
            .checked_mul(tier.unit_price)
            .ok_or(PricingError::Overflow)?,
    })
}

fn sum(mut amounts: impl Iterator<Item = Decimal>) -> Result<Decimal, PricingError> {
    amounts.try_fold(Decimal::ZERO, |total, a| {
        total.checked_add(a).ok_or(PricingError::Overflow)
    })
}

/// Truncates toward zero to cents and shows exactly 2 decimals (`"0.50"`, not `"0.5"`), as
/// money is shown in JSON.
fn money(amount: Decimal) -> Result<Decimal, PricingError> {
    let mut cents = amount.round_dp_with_strategy(MONEY_SCALE, RoundingStrategy::ToZero);
    cents.rescale(MONEY_SCALE);
    // `rescale` settles for a smaller scale when the value is too large to carry 2 decimals.
    if cents.scale() == MONEY_SCALE {
        Ok(cents)
    } else {
        Err(PricingError::Overflow)
    }
}

/// Prices one period of an instance: its usage — raw totals per item code, in the units they
/// were reported in — by the terms' in-effect items, and its cloud resources by the seconds it
/// ran in the period.
pub(crate) fn price_period(
    terms: &Terms,
    raw: &HashMap<String, Decimal>,
    resources: &[Resource],
    running_seconds: i64,
) -> ApiResult<Priced> {
    let (lines, product_fees) = price_usage(terms, raw)?;
    let (resource_lines, resource_fees) = price_resources(resources, running_seconds)?;
    let total = product_fees
        .0
        .checked_add(resource_fees.0)
        .map(Cents)
        .ok_or_else(|| ApiError::internal("a bill total beyond cents"))?;
    Ok(Priced {
        lines,
        product_fees,
        resource_lines,
        resource_fees,
        total,
    })
}

/// Seconds in an hour, the unit resource fees are quoted per.
const SECONDS_PER_HOUR: i64 = 3_600;

/// A line per resource: `count × hourly_fee × running_seconds / 3600`, exact, each line
/// truncated (never rounded) to cents; and their sum.
pub(crate) fn price_resources(
    resources: &[Resource],
    running_seconds: i64,
) -> ApiResult<(Vec<ResourceLine>, Cents)> {
    let lines = resources
        .iter()
        .map(|r| {
            let exact = Decimal::from(r.count)
                .checked_mul(r.hourly_fee)
                .and_then(|fee| fee.checked_mul(Decimal::from(running_seconds)))
                .and_then(|fee| fee.checked_div(Decimal::from(SECONDS_PER_HOUR)))
                .ok_or_else(|| ApiError::internal("a resource fee beyond exact arithmetic"))?;
            Ok(ResourceLine {
                kind: r.kind.clone(),
                spec: r.spec.clone(),
                count: r.count,
                hourly_fee: r.hourly_fee,
                running_seconds,
                amount: money(exact).map_err(ApiError::internal)?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let total = sum(lines.iter().map(|l| l.amount)).map_err(ApiError::internal)?;
    let total = Cents::from_decimal(total)
        .ok_or_else(|| ApiError::internal("resource fees beyond cents"))?;
    Ok((lines, total))
}

/// Prices raw usage totals per item code (in the units they were reported in) by the terms'
/// in-effect items: a line per item, and their total.
fn price_usage(terms: &Terms, raw: &HashMap<String, Decimal>) -> ApiResult<(Vec<BillLine>, Cents)> {
    let mut lines = Vec::new();
    for s in &terms.items {
        let code = s.item.code().as_str();
        let quantity = to_price_unit(code, raw.get(code).copied().unwrap_or_default());
        let priced = price_line(s.item.tiers(), s.item.tier_mode(), quantity)?;
        lines.push(BillLine {
            code: code.to_owned(),
            name: s.item.name().to_owned(),
            price_unit: s.price_unit.to_owned(),
            tier_mode: s.item.tier_mode(),
            quantity,
            amount: priced.amount,
            breakdown: priced.breakdown,
        });
    }
    let amounts: Vec<Decimal> = lines.iter().map(|l| l.amount).collect();
    let total = bill_total(&amounts).map_err(ApiError::internal)?;
    let total = Cents::from_decimal(total)
        .ok_or_else(|| ApiError::internal("a bill total beyond cents"))?;
    Ok((lines, total))
}

fn price_line(tiers: &[Tier], mode: TierMode, quantity: Decimal) -> ApiResult<PricedLine> {
    price(tiers, mode, quantity).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;
    use crate::metering::units::to_price_unit;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn tier(up_to: Option<&str>, unit_price: &str) -> Tier {
        Tier {
            up_to: up_to.map(d),
            unit_price: d(unit_price),
        }
    }

    /// The publishing guide's graduated example: 0.5 up to 1,000, 0.4 up to 5,000, 0.2 beyond.
    fn schedule() -> Vec<Tier> {
        vec![
            tier(Some("1000"), "0.5"),
            tier(Some("5000"), "0.4"),
            tier(None, "0.2"),
        ]
    }

    fn amount(mode: TierMode, quantity: &str) -> Decimal {
        price(&schedule(), mode, d(quantity)).unwrap().amount
    }

    #[test]
    fn graduated_prices_each_unit_by_its_tier_up_to_inclusive() {
        for (quantity, expected) in [
            ("999", "499.5"),
            ("1000", "500"),
            ("1001", "500.4"),
            ("5000", "2100"),
            ("5001", "2100.2"),
        ] {
            assert_eq!(
                amount(TierMode::Graduated, quantity),
                d(expected),
                "{quantity}"
            );
        }
    }

    #[test]
    fn volume_prices_every_unit_at_the_tier_of_the_whole_quantity() {
        for (quantity, expected) in [
            ("999", "499.5"),
            ("1000", "500"),
            ("1001", "400.4"),
            ("5000", "2000"),
            ("5001", "1000.2"),
        ] {
            assert_eq!(
                amount(TierMode::Volume, quantity),
                d(expected),
                "{quantity}"
            );
        }
    }

    #[test]
    fn graduated_breakdown_names_each_tier_and_its_bounds() {
        let line = price(&schedule(), TierMode::Graduated, d("5001")).unwrap();
        let rows: Vec<_> = line
            .breakdown
            .iter()
            .map(|c| (c.tier_index, c.from, c.up_to, c.quantity, c.amount))
            .collect();
        assert_eq!(
            rows,
            vec![
                (0, d("0"), Some(d("1000")), d("1000"), d("500")),
                (1, d("1000"), Some(d("5000")), d("4000"), d("1600")),
                (2, d("5000"), None, d("1"), d("0.2")),
            ]
        );
        // At exactly a bound the next tier is not touched.
        let line = price(&schedule(), TierMode::Graduated, d("1000")).unwrap();
        assert_eq!(line.breakdown.len(), 1);
    }

    #[test]
    fn volume_breakdown_is_the_one_tier_of_the_whole_quantity() {
        let line = price(&schedule(), TierMode::Volume, d("1001")).unwrap();
        assert_eq!(
            line.breakdown,
            vec![TierCharge {
                tier_index: 1,
                from: d("1000"),
                up_to: Some(d("5000")),
                quantity: d("1001"),
                unit_price: d("0.4"),
                amount: d("400.4"),
            }]
        );
    }

    #[test]
    fn the_line_amount_is_truncated_not_rounded() {
        let unbounded = [tier(None, "1")];
        let line = price(&unbounded, TierMode::Graduated, d("0.129")).unwrap();
        assert_eq!(line.amount, d("0.12"));
        assert_eq!(line.amount.to_string(), "0.12");
        assert_eq!(line.breakdown[0].amount, d("0.129"));
        let line = price(&unbounded, TierMode::Volume, d("0.999")).unwrap();
        assert_eq!(line.amount, d("0.99"));
    }

    #[test]
    fn half_an_hour_of_period_at_one_per_hour_bills_fifty_cents() {
        let hours = to_price_unit("Period", Decimal::from(1_800));
        let line = price(&[tier(None, "1.00")], TierMode::Graduated, hours).unwrap();
        assert_eq!(line.quantity, d("0.5"));
        assert_eq!(line.amount.to_string(), "0.50");
    }

    #[test]
    fn zero_usage_costs_nothing_and_shows_the_first_tier() {
        for mode in [TierMode::Graduated, TierMode::Volume] {
            let line = price(&schedule(), mode, Decimal::ZERO).unwrap();
            assert_eq!(line.amount.to_string(), "0.00");
            assert_eq!(line.breakdown.len(), 1);
            assert_eq!(line.breakdown[0].tier_index, 0);
            assert!(line.breakdown[0].quantity.is_zero());
        }
    }

    #[test]
    fn a_single_unbounded_tier_is_a_flat_unit_price() {
        for mode in [TierMode::Graduated, TierMode::Volume] {
            let line = price(&[tier(None, "0.00000125")], mode, d("1000000")).unwrap();
            assert_eq!(line.amount, d("1.25"));
            assert_eq!(line.breakdown.len(), 1);
            assert_eq!(line.breakdown[0].from, Decimal::ZERO);
            assert_eq!(line.breakdown[0].up_to, None);
        }
    }

    #[test]
    fn the_line_serializes_decimals_as_strings() {
        let line = price(&schedule(), TierMode::Graduated, d("1001")).unwrap();
        let json = serde_json::to_value(&line).unwrap();
        assert_eq!(json["quantity"], "1001");
        assert_eq!(json["amount"], "500.40");
        assert_eq!(json["breakdown"][0]["from"], "0");
        assert_eq!(json["breakdown"][1]["amount"], "0.4");
        assert_eq!(json["breakdown"][2]["up_to"], serde_json::Value::Null);
        let back: PricedLine = serde_json::from_value(json).unwrap();
        assert_eq!(back, line);
    }

    #[test]
    fn bill_total_sums_lines_and_drops_less_than_a_cent() {
        assert_eq!(
            bill_total(&[d("0.50"), d("2100.20")]).unwrap().to_string(),
            "2100.70"
        );
        assert_eq!(bill_total(&[]).unwrap().to_string(), "0.00");
        assert_eq!(
            bill_total(&[d("0.00"), d("0.00")]).unwrap().to_string(),
            "0.00"
        );
        assert_eq!(bill_total(&[d("0.01")]).unwrap(), d("0.01"));
        assert_eq!(bill_total(&[d("0.009")]).unwrap(), Decimal::ZERO);
    }

    #[test]
    fn invalid_inputs_are_refused_not_mispriced() {
        let g = TierMode::Graduated;
        assert_eq!(
            price(&schedule(), g, d("-1")),
            Err(PricingError::NegativeQuantity)
        );
        for bad in [
            vec![],
            vec![tier(Some("10"), "1")],
            vec![tier(None, "1"), tier(None, "1")],
            vec![
                tier(Some("10"), "1"),
                tier(Some("10"), "1"),
                tier(None, "1"),
            ],
            vec![tier(Some("0"), "1"), tier(None, "1")],
            vec![tier(None, "-1")],
        ] {
            assert_eq!(
                price(&bad, g, d("5")),
                Err(PricingError::InvalidSchedule),
                "{bad:?}"
            );
        }
        let huge = d("999999999999999999");
        assert_eq!(
            price(&[tier(None, "99999999999999")], g, huge),
            Err(PricingError::Overflow)
        );
        assert_eq!(
            bill_total(&[Decimal::MAX, d("1")]),
            Err(PricingError::Overflow)
        );
    }

    #[test]
    fn eighteen_integer_digits_at_an_ordinary_price_still_price() {
        let line = price(
            &schedule(),
            TierMode::Graduated,
            d("999999999999999999.123456"),
        )
        .unwrap();
        assert_eq!(line.amount, d("200000000000001099.82"));
    }

    // -----------------------------------------------------------------------------------------
    // Properties

    /// Quantities with up to 4 decimals, as converted usage has, up to 100,000 units.
    fn quantity() -> impl Strategy<Value = Decimal> {
        (0i64..1_000_000_000, 0u32..=4).prop_map(|(m, s)| Decimal::new(m, s))
    }

    /// Valid schedules of 1 to 5 tiers: ascending bounds, prices with up to 8 decimals.
    fn schedules() -> impl Strategy<Value = Vec<Tier>> {
        prop::collection::vec((1i64..50_000, 0i64..100_000_000, 0u32..=8), 1..=5).prop_map(|rows| {
            let last = rows.len() - 1;
            let mut bound = Decimal::ZERO;
            rows.into_iter()
                .enumerate()
                .map(|(i, (step, price, scale))| {
                    bound += Decimal::new(step, 1);
                    Tier {
                        up_to: (i < last).then_some(bound),
                        unit_price: Decimal::new(price, scale),
                    }
                })
                .collect()
        })
    }

    fn modes() -> impl Strategy<Value = TierMode> {
        prop_oneof![Just(TierMode::Graduated), Just(TierMode::Volume)]
    }

    proptest! {
        #[test]
        fn graduated_total_never_decreases_with_more_usage(
            tiers in schedules(), a in quantity(), b in quantity()
        ) {
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            let low = price(&tiers, TierMode::Graduated, low).unwrap();
            let high = price(&tiers, TierMode::Graduated, high).unwrap();
            prop_assert!(low.exact_amount().unwrap() <= high.exact_amount().unwrap());
            prop_assert!(low.amount <= high.amount);
        }

        #[test]
        fn graduated_breakdown_adds_up(tiers in schedules(), q in quantity()) {
            let line = price(&tiers, TierMode::Graduated, q).unwrap();
            let units: Decimal = line.breakdown.iter().map(|c| c.quantity).sum();
            prop_assert_eq!(units, q);
            for c in &line.breakdown {
                prop_assert_eq!(c.amount, c.quantity * c.unit_price);
                prop_assert!(c.from <= c.from + c.quantity);
                prop_assert!(c.up_to.is_none_or(|top| c.from + c.quantity <= top));
            }
        }

        #[test]
        fn the_amount_is_the_exact_charge_truncated_to_cents(
            tiers in schedules(), mode in modes(), q in quantity()
        ) {
            let line = price(&tiers, mode, q).unwrap();
            let exact = line.exact_amount().unwrap();
            prop_assert!(line.amount <= exact);
            prop_assert!(exact < line.amount + Decimal::new(1, 2));
            prop_assert_eq!(line.amount.scale(), 2);
        }

        #[test]
        fn pricing_is_deterministic(tiers in schedules(), mode in modes(), q in quantity()) {
            prop_assert_eq!(price(&tiers, mode, q), price(&tiers, mode, q));
        }

        #[test]
        fn volume_uses_exactly_the_tier_the_quantity_falls_in(
            tiers in schedules(), q in quantity()
        ) {
            let line = price(&tiers, TierMode::Volume, q).unwrap();
            let [c] = line.breakdown.as_slice() else {
                return Err(TestCaseError::fail("one tier expected"));
            };
            prop_assert_eq!(c.quantity, q);
            prop_assert!(c.from < q || c.tier_index == 0);
            prop_assert!(c.up_to.is_none_or(|top| q <= top));
        }

        #[test]
        fn a_resource_line_is_its_exact_fee_for_the_seconds_run_truncated_to_cents(
            count in 1u32..=10_000,
            fee_units in 0i64..=100_000_000_000_000,
            seconds in 0i64..=90_000,
        ) {
            let hourly_fee = Decimal::new(fee_units, 8);
            let resource = Resource {
                kind: "ecs".into(), spec: "ecs.g7.large".into(), count, hourly_fee,
            };
            let (lines, total) = price_resources(&[resource.clone(), resource], seconds).unwrap();
            let exact = Decimal::from(count) * hourly_fee * Decimal::from(seconds)
                / Decimal::from(3_600);
            for line in &lines {
                prop_assert!(line.amount <= exact);
                prop_assert!(exact < line.amount + Decimal::new(1, 2));
                prop_assert_eq!(line.amount.scale(), 2);
            }
            prop_assert_eq!(total.to_decimal(), lines[0].amount + lines[1].amount);
        }
    }

    #[test]
    fn resources_are_priced_by_the_second_and_each_line_truncated() {
        let resource = |count, fee: &str| Resource {
            kind: "ecs".into(),
            spec: "s".into(),
            count,
            hourly_fee: d(fee),
        };
        // 3 × 0.33333333/h for half an hour is 0.499999995: 0.49, not 0.50.
        let (lines, total) =
            price_resources(&[resource(3, "0.33333333"), resource(2, "0.80")], 1800).unwrap();
        assert_eq!(lines[0].amount, d("0.49"));
        assert_eq!(lines[1].amount, d("0.80"));
        assert_eq!(total, Cents(129));
        // A period it did not run costs nothing, and no resource nothing.
        assert_eq!(
            price_resources(&[resource(2, "0.80")], 0).unwrap().1,
            Cents(0)
        );
        assert_eq!(price_resources(&[], 3600).unwrap().1, Cents(0));
    }
}
