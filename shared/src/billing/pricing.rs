//! Tiered pricing of one billable item for one period (docs/RULES.md R11.4, R11.5, R11.14).
//!
//! A bill line is the period's quantity — an exact fraction in the item's price unit, see
//! [`crate::metering::units`] — priced by the item's tier schedule. Every tier charge is kept
//! exact ([`Exact`]: `seconds × unit_price / 3600`, never a rounded quantity times a price) and
//! only the line amount is truncated, toward zero, to cents: the marketplace never rounds a
//! customer's charge up. The breakdown is what the customer sees on the bill; each quantity and
//! charge is shown with at most 6 decimals, and with its exact fraction beside it when those are
//! not the whole value, so it adds up to the exact amount the truncation started from.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use crate::billing::{BillLine, Priced, ResourceLine};
use crate::error::{ApiError, ApiResult};
use crate::exact::Exact;
use crate::listing::service::Resource;
use crate::listing::steps::{Tier, TierMode};
use crate::metering::units::to_price_unit;
use crate::money::Cents;
use crate::orders::Terms;

/// One billable item's charge for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PricedLine {
    /// The period's usage in the item's price unit, at most 6 decimals.
    pub quantity: Decimal,
    /// The quantity as an exact fraction (`"1/3"`), when `quantity` is not all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity_exact: Option<String>,
    /// The exact charge truncated toward zero to 2 decimal places (always 2, e.g. `"500.00"`).
    pub amount: Decimal,
    /// The tiers the quantity was priced in, lowest first. Graduated lines list every tier up to
    /// the one the quantity falls in; volume lines list only that tier. A zero quantity falls in
    /// the first tier and shows it with quantity 0.
    pub breakdown: Vec<TierCharge>,
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
    /// Units priced at this tier, at most 6 decimals.
    pub quantity: Decimal,
    /// The units as an exact fraction, when `quantity` is not all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity_exact: Option<String>,
    pub unit_price: Decimal,
    /// `quantity × unit_price`, not truncated to cents; at most 6 decimals.
    pub amount: Decimal,
    /// The charge as an exact fraction, when `amount` is not all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_exact: Option<String>,
}

impl TierCharge {
    /// The units, exactly.
    #[cfg(test)]
    pub(crate) fn exact_quantity(&self) -> Exact {
        exact_of(self.quantity, self.quantity_exact.as_deref())
    }

    /// The charge, exactly.
    #[cfg(test)]
    pub(crate) fn exact_amount(&self) -> Exact {
        exact_of(self.amount, self.amount_exact.as_deref())
    }
}

#[cfg(test)]
fn exact_of(shown: Decimal, fraction: Option<&str>) -> Exact {
    fraction
        .and_then(Exact::parse)
        .or_else(|| Exact::from_decimal(shown))
        .expect("a shown value is a non-negative decimal or fraction")
}

impl PricedLine {
    #[cfg(test)]
    /// The untruncated charge: the sum of the breakdown's amounts.
    pub(crate) fn exact_amount(&self) -> Result<Exact, PricingError> {
        sum(self.breakdown.iter().map(TierCharge::exact_amount))
    }
}

/// Why a quantity could not be priced. None of these can come from a schedule the listing rules
/// accepted and usage the metering rules accepted, short of absurd magnitudes; callers should
/// treat them as internal errors of the bill run, not as customer input errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PricingError {
    /// The schedule breaks the listing's tier rules: empty, bounds not strictly ascending and
    /// positive, a bounded last tier or an unbounded one before it, or a negative unit price.
    InvalidSchedule,
    /// The charge does not fit exact arithmetic.
    Overflow,
}

impl fmt::Display for PricingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PricingError::InvalidSchedule => {
                "the tier schedule is invalid: it needs strictly ascending positive bounds, \
                 an unbounded last tier and non-negative prices"
            }
            PricingError::Overflow => "the charge is too large to compute",
        })
    }
}

impl std::error::Error for PricingError {}

/// A decimal of the schedule as an exact fraction; a negative one breaks the schedule.
fn exact(d: Decimal) -> Result<Exact, PricingError> {
    Exact::from_decimal(d).ok_or(PricingError::InvalidSchedule)
}

/// Prices `quantity` (in the item's price unit, exact) by `tiers` in `mode`.
///
/// `up_to` is inclusive in both modes: with tiers up to 1,000 and up to 5,000, a quantity of
/// exactly 1,000 lies wholly in the first tier and 1,001 puts 1 unit in the second. Quantities
/// may be fractional (a third of an hour is `1/3`).
pub(crate) fn price(
    tiers: &[Tier],
    mode: TierMode,
    quantity: Exact,
) -> Result<PricedLine, PricingError> {
    check_schedule(tiers)?;
    let charges = match mode {
        TierMode::Graduated => graduated(tiers, quantity)?,
        TierMode::Volume => vec![volume(tiers, quantity)?],
    };
    let exact = sum(charges.iter().map(|(_, amount)| *amount))?;
    Ok(PricedLine {
        quantity: quantity.shown(),
        quantity_exact: quantity.fraction(),
        amount: exact.trunc_cents().ok_or(PricingError::Overflow)?,
        breakdown: charges.into_iter().map(|(charge, _)| charge).collect(),
    })
}

/// A bill's total from its lines' (already truncated) amounts. A total under 0.01 is 0: the
/// marketplace does not bill fractions of a cent.
pub(crate) fn bill_total(lines: &[Decimal]) -> Result<Decimal, PricingError> {
    let total = sum(lines
        .iter()
        .map(|a| exact(*a))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter())?;
    total.trunc_cents().ok_or(PricingError::Overflow)
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

/// Each unit at the tier it falls in: the quantity fills the tiers from the bottom. Each charge
/// with its exact amount.
fn graduated(tiers: &[Tier], quantity: Exact) -> Result<Vec<(TierCharge, Exact)>, PricingError> {
    let mut breakdown = Vec::new();
    let mut from = Exact::ZERO;
    for (tier_index, tier) in tiers.iter().enumerate() {
        let top = match tier.up_to.map(exact).transpose()? {
            Some(bound) if bound < quantity => bound,
            _ => quantity,
        };
        let units = top.checked_sub(from).ok_or(PricingError::InvalidSchedule)?;
        breakdown.push(charge(tier_index, tiers, tier, units)?);
        if top == quantity {
            break;
        }
        from = top;
    }
    Ok(breakdown)
}

/// Every unit at the tier the whole quantity falls in.
fn volume(tiers: &[Tier], quantity: Exact) -> Result<(TierCharge, Exact), PricingError> {
    let mut tier_index = None;
    for (i, t) in tiers.iter().enumerate() {
        if t.up_to
            .map(exact)
            .transpose()?
            .is_none_or(|bound| quantity <= bound)
        {
            tier_index = Some(i);
            break;
        }
    }
    let tier_index = tier_index.ok_or(PricingError::InvalidSchedule)?;
    charge(tier_index, tiers, &tiers[tier_index], quantity)
}

/// The charge of `units` at the tier `tier_index` of `tiers`, and its exact amount.
fn charge(
    tier_index: usize,
    tiers: &[Tier],
    tier: &Tier,
    units: Exact,
) -> Result<(TierCharge, Exact), PricingError> {
    let from = match tier_index.checked_sub(1) {
        Some(previous) => tiers[previous].up_to.ok_or(PricingError::InvalidSchedule)?,
        None => Decimal::ZERO,
    };
    let amount = units
        .checked_mul(exact(tier.unit_price)?)
        .ok_or(PricingError::Overflow)?;
    Ok((
        TierCharge {
            tier_index,
            from,
            up_to: tier.up_to,
            quantity: units.shown(),
            quantity_exact: units.fraction(),
            unit_price: tier.unit_price,
            amount: amount.shown(),
            amount_exact: amount.fraction(),
        },
        amount,
    ))
}

fn sum(mut amounts: impl Iterator<Item = Exact>) -> Result<Exact, PricingError> {
    amounts.try_fold(Exact::ZERO, |total, a| {
        total.checked_add(a).ok_or(PricingError::Overflow)
    })
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
const SECONDS_PER_HOUR: u32 = 3_600;

/// A line per resource: `count × hourly_fee × running_seconds / 3600`, exact, each line
/// truncated (never rounded) to cents; and their sum.
pub(crate) fn price_resources(
    resources: &[Resource],
    running_seconds: i64,
) -> ApiResult<(Vec<ResourceLine>, Cents)> {
    let beyond = || ApiError::internal("a resource fee beyond exact arithmetic");
    let hours =
        Exact::ratio(Decimal::from(running_seconds), SECONDS_PER_HOUR).ok_or_else(beyond)?;
    let lines = resources
        .iter()
        .map(|r| {
            let amount = Exact::from_decimal(r.hourly_fee)
                .zip(Exact::whole(i64::from(r.count)))
                .and_then(|(fee, count)| fee.checked_mul(count))
                .and_then(|fee| fee.checked_mul(hours))
                .and_then(Exact::trunc_cents)
                .ok_or_else(beyond)?;
            Ok(ResourceLine {
                kind: r.kind.clone(),
                spec: r.spec.clone(),
                count: r.count,
                hourly_fee: r.hourly_fee,
                running_seconds,
                amount,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let total = Cents(
        lines
            .iter()
            .map(|l| Cents::from_decimal(l.amount).map(|c| c.0))
            .try_fold(0i64, |total, c| c.and_then(|c| total.checked_add(c)))
            .ok_or_else(|| ApiError::internal("resource fees beyond cents"))?,
    );
    Ok((lines, total))
}

/// Prices raw usage totals per item code (in the units they were reported in) by the terms'
/// in-effect items: a line per item, and their total.
fn price_usage(terms: &Terms, raw: &HashMap<String, Decimal>) -> ApiResult<(Vec<BillLine>, Cents)> {
    let mut lines = Vec::new();
    for s in &terms.items {
        let code = s.item.code().as_str();
        let quantity = to_price_unit(code, raw.get(code).copied().unwrap_or_default())
            .ok_or_else(|| ApiError::internal("a negative usage total"))?;
        let priced =
            price(s.item.tiers(), s.item.tier_mode(), quantity).map_err(ApiError::internal)?;
        lines.push(BillLine {
            code: code.to_owned(),
            name: s.item.name().to_owned(),
            price_unit: s.price_unit.to_owned(),
            tier_mode: s.item.tier_mode(),
            quantity: priced.quantity,
            quantity_exact: priced.quantity_exact,
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

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;

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

    fn x(s: &str) -> Exact {
        Exact::parse(s).unwrap()
    }

    fn amount(mode: TierMode, quantity: &str) -> Decimal {
        price(&schedule(), mode, x(quantity)).unwrap().amount
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
        let line = price(&schedule(), TierMode::Graduated, x("5001")).unwrap();
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
        let line = price(&schedule(), TierMode::Graduated, x("1000")).unwrap();
        assert_eq!(line.breakdown.len(), 1);
    }

    #[test]
    fn volume_breakdown_is_the_one_tier_of_the_whole_quantity() {
        let line = price(&schedule(), TierMode::Volume, x("1001")).unwrap();
        assert_eq!(
            line.breakdown,
            vec![TierCharge {
                tier_index: 1,
                from: d("1000"),
                up_to: Some(d("5000")),
                quantity: d("1001"),
                quantity_exact: None,
                unit_price: d("0.4"),
                amount: d("400.4"),
                amount_exact: None,
            }]
        );
    }

    #[test]
    fn the_line_amount_is_truncated_not_rounded() {
        let unbounded = [tier(None, "1")];
        let line = price(&unbounded, TierMode::Graduated, x("0.129")).unwrap();
        assert_eq!(line.amount, d("0.12"));
        assert_eq!(line.amount.to_string(), "0.12");
        assert_eq!(line.breakdown[0].amount, d("0.129"));
        let line = price(&unbounded, TierMode::Volume, x("0.999")).unwrap();
        assert_eq!(line.amount, d("0.99"));
    }

    #[test]
    fn half_an_hour_of_period_at_one_per_hour_bills_fifty_cents() {
        let hours = to_price_unit("Period", Decimal::from(1_800)).unwrap();
        let line = price(&[tier(None, "1.00")], TierMode::Graduated, hours).unwrap();
        assert_eq!(line.quantity, d("0.5"));
        assert_eq!(line.quantity_exact, None);
        assert_eq!(line.amount.to_string(), "0.50");
    }

    /// The cases: a quantity divided before it was priced lost a cent in each.
    #[test]
    fn running_time_is_priced_multiplication_first() {
        for (seconds, unit_price, amount, shown, fraction) in [
            (1_200, "3.00", "1.00", "0.333333", "1/3"),
            (400, "9.00", "1.00", "0.111111", "1/9"),
            (3_599, "3600.00", "3599.00", "0.999722", "3599/3600"),
        ] {
            let hours = to_price_unit("Period", Decimal::from(seconds)).unwrap();
            let line = price(&[tier(None, unit_price)], TierMode::Graduated, hours).unwrap();
            assert_eq!(
                line.amount.to_string(),
                amount,
                "{seconds} s at {unit_price}"
            );
            assert_eq!(line.quantity.to_string(), shown);
            assert_eq!(line.quantity_exact.as_deref(), Some(fraction));
            let json = serde_json::to_string(&line).unwrap();
            assert!(!json.contains("0.3333333"), "{json}");
        }
    }

    #[test]
    fn a_fraction_crossing_a_tier_bound_is_split_exactly() {
        // 5,400 s are 1.5 h: 1 h in the first tier, ½ h in the second.
        let hours = to_price_unit("Period", Decimal::from(5_400)).unwrap();
        let tiers = [tier(Some("1"), "3"), tier(None, "2")];
        let line = price(&tiers, TierMode::Graduated, hours).unwrap();
        assert_eq!(line.amount, d("4.00"));
        // 1,000 s are 5/18 h at 0.10: 1/36, shown 0.027777 with its fraction.
        let hours = to_price_unit("Period", Decimal::from(1_000)).unwrap();
        let line = price(&[tier(None, "0.10")], TierMode::Volume, hours).unwrap();
        let c = &line.breakdown[0];
        assert_eq!(
            (c.amount, c.amount_exact.as_deref()),
            (d("0.027777"), Some("1/36"))
        );
        assert_eq!(c.quantity_exact.as_deref(), Some("5/18"));
        assert_eq!(line.amount, d("0.02"));
    }

    #[test]
    fn zero_usage_costs_nothing_and_shows_the_first_tier() {
        for mode in [TierMode::Graduated, TierMode::Volume] {
            let line = price(&schedule(), mode, Exact::ZERO).unwrap();
            assert_eq!(line.amount.to_string(), "0.00");
            assert_eq!(line.breakdown.len(), 1);
            assert_eq!(line.breakdown[0].tier_index, 0);
            assert!(line.breakdown[0].quantity.is_zero());
        }
    }

    #[test]
    fn a_single_unbounded_tier_is_a_flat_unit_price() {
        for mode in [TierMode::Graduated, TierMode::Volume] {
            let line = price(&[tier(None, "0.00000125")], mode, x("1000000")).unwrap();
            assert_eq!(line.amount, d("1.25"));
            assert_eq!(line.breakdown.len(), 1);
            assert_eq!(line.breakdown[0].from, Decimal::ZERO);
            assert_eq!(line.breakdown[0].up_to, None);
        }
    }

    #[test]
    fn the_line_serializes_decimals_as_strings() {
        let line = price(&schedule(), TierMode::Graduated, x("1001")).unwrap();
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
                price(&bad, g, x("5")),
                Err(PricingError::InvalidSchedule),
                "{bad:?}"
            );
        }
        let huge = Exact::parse("999999999999999999999999999999999/7").unwrap();
        assert_eq!(
            price(&[tier(None, "99999999999999")], g, huge),
            Err(PricingError::Overflow)
        );
    }

    #[test]
    fn eighteen_integer_digits_at_an_ordinary_price_still_price() {
        let line = price(
            &schedule(),
            TierMode::Graduated,
            x("999999999999999999.123456"),
        )
        .unwrap();
        assert_eq!(line.amount, d("200000000000001099.82"));
    }

    // -----------------------------------------------------------------------------------------
    // Properties

    /// Quantities as converted usage has them: up to 100,000 units of up to 4 decimals, over 1
    /// or a conversion's divisor.
    fn quantity() -> impl Strategy<Value = Exact> {
        (
            0i64..1_000_000_000,
            0u32..=4,
            prop_oneof![Just(1u32), Just(3_600), Just(1_048_576)],
        )
            .prop_map(|(m, s, per)| Exact::ratio(Decimal::new(m, s), per).unwrap())
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
            let units = sum(line.breakdown.iter().map(TierCharge::exact_quantity)).unwrap();
            prop_assert_eq!(units, q);
            for c in &line.breakdown {
                let price = Exact::from_decimal(c.unit_price).unwrap();
                prop_assert_eq!(c.exact_amount(), c.exact_quantity().checked_mul(price).unwrap());
                let from = Exact::from_decimal(c.from).unwrap();
                let top = from.checked_add(c.exact_quantity()).unwrap();
                prop_assert!(c.up_to.is_none_or(|bound| top <= Exact::from_decimal(bound).unwrap()));
                prop_assert!(c.quantity.scale() <= 6 && c.amount.scale() <= 6);
            }
        }

        #[test]
        fn the_amount_is_the_exact_charge_truncated_to_cents(
            tiers in schedules(), mode in modes(), q in quantity()
        ) {
            let line = price(&tiers, mode, q).unwrap();
            let exact = line.exact_amount().unwrap();
            let amount = Exact::from_decimal(line.amount).unwrap();
            prop_assert!(amount <= exact);
            prop_assert!(exact < amount.checked_add(x("0.01")).unwrap());
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
            prop_assert_eq!(c.exact_quantity(), q);
            prop_assert!(Exact::from_decimal(c.from).unwrap() < q || c.tier_index == 0);
            prop_assert!(c.up_to.is_none_or(|top| q <= Exact::from_decimal(top).unwrap()));
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
            // The oracle in integers: cents = ⌊count × fee units × seconds × 100 / (3600 × 10^8)⌋.
            let cents = i128::from(count) * i128::from(fee_units) * i128::from(seconds) * 100
                / (3_600 * 100_000_000);
            for line in &lines {
                prop_assert_eq!(line.amount, Decimal::from_i128_with_scale(cents, 2));
                prop_assert_eq!(line.amount.scale(), 2);
            }
            prop_assert_eq!(total.to_decimal(), lines[0].amount + lines[1].amount);
        }
    }

    /// Terms of one `Period` item at `unit_price` an hour, reported by the platform's Time
    /// source.
    fn running_time_terms(unit_price: Decimal) -> Terms {
        let pricing = crate::listing::steps::PricingStep::from_stored(&serde_json::json!({
            "pricing_plan": "by_usage", "billing_period": "hour", "enterprise_only": false,
            "currency": "CNY",
            "billable_items": [{"code": "Period", "name": "Running time", "tier_mode": "graduated",
                                "tiers": [{"up_to": null, "unit_price": unit_price.to_string()}]}]
        }))
        .unwrap();
        Terms {
            kind: crate::period::BillingPeriod::Hour,
            currency: "CNY".into(),
            pricing_version: 1,
            items: vec![crate::sales::ItemSettings {
                item: pricing.billable_items()[0].clone(),
                price_unit: "hour",
                reporting: Some(crate::sales::ReportingMethod::ComputeNest(
                    crate::sales::PlatformSource::Time,
                )),
                associations: Default::default(),
                automatic_association: false,
                in_effect: true,
            }],
        }
    }

    proptest! {
        /// docs/RULES.md R11.14: for any running time of a day and any price the listing
        /// accepts, the running-time line is `⌊seconds × price / 3600⌋` in cents — computed here
        /// in integers — and the resources are charged for the same seconds.
        #[test]
        fn a_running_time_line_is_seconds_times_price_over_3600_truncated_to_cents(
            seconds in 0i64..=86_400,
            price_units in 0i64..=100_000_000_000_000,
        ) {
            let unit_price = Decimal::new(price_units, 8);
            let resource = Resource {
                kind: "ecs".into(), spec: "s".into(), count: 1, hourly_fee: unit_price,
            };
            let raw = HashMap::from([("Period".to_owned(), Decimal::from(seconds))]);
            let priced =
                price_period(&running_time_terms(unit_price), &raw, &[resource], seconds).unwrap();
            let cents = i128::from(seconds) * i128::from(price_units) * 100 / (3_600 * 100_000_000);
            let expected = Decimal::from_i128_with_scale(cents, 2);
            prop_assert_eq!(priced.lines[0].amount, expected);
            prop_assert_eq!(priced.resource_lines[0].amount, expected);
            prop_assert_eq!(priced.resource_lines[0].running_seconds, seconds);
            let hours = exact_of(priced.lines[0].quantity, priced.lines[0].quantity_exact.as_deref());
            prop_assert_eq!(hours, Exact::ratio(Decimal::from(seconds), 3_600).unwrap());
            prop_assert!(priced.lines[0].quantity.scale() <= 6);
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
