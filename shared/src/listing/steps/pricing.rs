//! The pricing step: pay-as-you-go billable items with their tiered unit prices, the billing
//! period and the currency — the terms every bill of the product is priced by.

use super::*;
use crate::period::BillingPeriod;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TierRequest {
    /// Inclusive upper bound of the tier in the item's price unit; `null` (or absent) for the
    /// last, unbounded tier. A decimal string (`"100"`) or a JSON number.
    pub up_to: Option<Decimal>,
    /// Price per unit within the tier. A decimal string (`"0.5"`) or a JSON number.
    pub unit_price: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BillableItemRequest {
    pub code: Option<String>,
    pub name: Option<String>,
    pub tier_mode: Option<String>,
    pub tiers: Option<Vec<TierRequest>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PricingRequest {
    pub pricing_plan: Option<String>,
    pub enterprise_only: Option<bool>,
    pub billing_period: Option<String>,
    pub currency: Option<String>,
    pub billable_items: Option<Vec<BillableItemRequest>>,
}

/// How the product is charged. Only pay-as-you-go is sold through this marketplace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PricingPlan {
    ByUsage,
}

/// How a period's quantity meets the tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TierMode {
    /// Each unit is priced by the tier it falls in.
    Graduated,
    /// Every unit is priced at the tier the whole quantity falls in.
    Volume,
}

impl TierMode {}

/// One price tier. Within a [`BillableItem`] the tiers ascend strictly by `up_to` and only the
/// last is unbounded, so every quantity has exactly one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Tier {
    /// Inclusive upper bound in the item's price unit; `None` for the last tier.
    pub up_to: Option<Decimal>,
    /// Non-negative, at most 8 decimal places.
    pub unit_price: Decimal,
}

/// A billable item's code: the metering key providers push in `Entities[].Key`
/// (`^[A-Za-z][A-Za-z0-9]{0,63}$`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub(crate) struct ItemCode(String);

impl ItemCode {
    const MAX_CHARS: usize = 64;

    /// Checks the pattern by hand: a letter, then letters and digits, 64 characters at most.
    pub(crate) fn parse(code: &str) -> Result<Self, String> {
        let mut chars = code.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_alphabetic()) {
            return Err("must start with a letter (A-Z or a-z)".to_owned());
        }
        if !chars.all(|c| c.is_ascii_alphanumeric()) {
            return Err("may contain only letters A-Z, a-z and digits 0-9".to_owned());
        }
        // All ASCII by now, so bytes are characters.
        if code.len() > Self::MAX_CHARS {
            return Err(format!(
                "at most {} characters, got {}",
                Self::MAX_CHARS,
                code.len()
            ));
        }
        Ok(Self(code.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ItemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something a customer pays for by usage, with its tier schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct BillableItem {
    code: ItemCode,
    name: String,
    tier_mode: TierMode,
    tiers: Vec<Tier>,
}

impl BillableItem {
    pub(crate) fn code(&self) -> &ItemCode {
        &self.code
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn tier_mode(&self) -> TierMode {
        self.tier_mode
    }

    /// Never empty; ascending by `up_to`; the last (and only the last) has `up_to: None`.
    pub(crate) fn tiers(&self) -> &[Tier] {
        &self.tiers
    }
}

/// Step 4: how usage is priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PricingStep {
    pricing_plan: PricingPlan,
    enterprise_only: bool,
    billing_period: BillingPeriod,
    currency: String,
    billable_items: Vec<BillableItem>,
}

/// The most billable items a product may have: also the most entities a metering record may
/// carry (one per item), a bound known before the product is looked at.
pub(crate) const BILLABLE_ITEMS_MAX: usize = 20;
const ITEM_NAME_MAX: usize = 64;
/// Not bounded by the publishing guide; 20 tiers is far beyond any real price list and bounds the work per
/// bill line.
const TIERS_MAX: usize = 20;
/// docs/RULES.md R4.9: unit prices carry at most 8 decimal places.
const UNIT_PRICE_MAX_SCALE: u32 = 8;
/// The highest price of one unit (1,000,000): with pushed values bounded too, any period's
/// charge stays far inside the range of exact decimal arithmetic.
const UNIT_PRICE_MAX: i64 = 1_000_000;
/// The one currency of the marketplace: customers' accounts are kept in it, so a product is
/// priced in it (docs/RULES.md R4.8).
pub(crate) const CURRENCY: &str = "CNY";

const TIER_MODES: [(&str, TierMode); 2] = [
    ("graduated", TierMode::Graduated),
    ("volume", TierMode::Volume),
];

impl PricingStep {
    pub(crate) fn parse(request: PricingRequest) -> Result<Self, ApiError> {
        let mut e = Errors::new();
        let pricing_plan = choice(
            &mut e,
            "pricing_plan",
            &request.pricing_plan,
            &[("by_usage", PricingPlan::ByUsage)],
            Code::UnsupportedPricingPlan,
        );
        let enterprise_only = e
            .required("enterprise_only", &request.enterprise_only)
            .copied();
        let billing_period = choice(
            &mut e,
            "billing_period",
            &request.billing_period,
            &[("hour", BillingPeriod::Hour), ("day", BillingPeriod::Day)],
            Code::InvalidValue,
        );
        // Refused here, not discovered by the first customer: no account could pay another.
        let currency = request.currency.as_deref().unwrap_or(CURRENCY);
        if currency != CURRENCY {
            e.add(
                "currency",
                Code::InvalidValue,
                format!("accounts are kept in {CURRENCY}: a product is priced in {CURRENCY}"),
            );
        }

        let mut billable_items = Vec::new();
        if let Some(items) = e.required("billable_items", &request.billable_items) {
            if items.is_empty() {
                e.add(
                    "billable_items",
                    Code::Required,
                    "at least one billable item",
                );
            }
            let items = if e.list_within("billable_items", items.len(), BILLABLE_ITEMS_MAX) {
                items.as_slice()
            } else {
                &[]
            };
            let mut codes = Seen::default();
            for (i, item) in items.iter().enumerate() {
                let at = format!("billable_items[{i}]");
                if let Some(code) = &item.code
                    && !codes.first(code)
                {
                    e.add(
                        format!("{at}.code"),
                        Code::Duplicate,
                        format!("`{code}` is used by an earlier billable item"),
                    );
                }
                if let Some(item) = parse_billable_item(&mut e, &at, item) {
                    billable_items.push(item);
                }
            }
        }

        e.finish()?;
        let (Some(pricing_plan), Some(enterprise_only), Some(billing_period)) =
            (pricing_plan, enterprise_only, billing_period)
        else {
            return Err(missing_after_validation(Step::Pricing));
        };
        Ok(Self {
            pricing_plan,
            enterprise_only,
            billing_period,
            currency: currency.to_owned(),
            billable_items,
        })
    }

    pub(crate) fn from_stored(stored: &Value) -> Result<Self, ApiError> {
        Self::parse(stored_request(Step::Pricing, stored)?)
            .map_err(|e| stored_invalid(Step::Pricing, &e))
    }

    /// Only customers with an enterprise account may order the product.
    pub(crate) fn enterprise_only(&self) -> bool {
        self.enterprise_only
    }

    pub(crate) fn billing_period(&self) -> BillingPeriod {
        self.billing_period
    }

    /// ISO 4217 code: [`CURRENCY`], the only one a step accepts.
    pub(crate) fn currency(&self) -> &str {
        &self.currency
    }

    /// 1 to 20 items with unique codes.
    pub(crate) fn billable_items(&self) -> &[BillableItem] {
        &self.billable_items
    }

    pub(crate) fn billable_item(&self, code: &str) -> Option<&BillableItem> {
        self.billable_items.iter().find(|i| i.code.as_str() == code)
    }

    pub(crate) fn pricing_plan(&self) -> PricingPlan {
        self.pricing_plan
    }
}

/// Validates one item, reporting into `e`; `None` when anything about it is invalid.
fn parse_billable_item(
    e: &mut Errors,
    at: &str,
    item: &BillableItemRequest,
) -> Option<BillableItem> {
    let code_field = format!("{at}.code");
    let code = e
        .required(&code_field, &item.code)
        .and_then(|code| match ItemCode::parse(code) {
            Ok(code) => Some(code),
            Err(why) => {
                e.add(&code_field, Code::InvalidValue, why);
                None
            }
        });
    let name = required_text(
        e,
        &format!("{at}.name"),
        &item.name,
        ITEM_NAME_MAX,
        Code::TooLong,
    );
    let tier_mode = choice(
        e,
        &format!("{at}.tier_mode"),
        &item.tier_mode,
        &TIER_MODES,
        Code::InvalidValue,
    );
    let tiers_field = format!("{at}.tiers");
    let tiers = e
        .required(&tiers_field, &item.tiers)
        .and_then(|tiers| parse_tiers(e, &tiers_field, tiers));
    Some(BillableItem {
        code: code?,
        name: name?.to_owned(),
        tier_mode: tier_mode?,
        tiers: tiers?,
    })
}

/// The tier schedule rules (docs/RULES.md R4.9): at least one tier, strictly ascending positive
/// `up_to`, the last one unbounded — so that every quantity falls in exactly one tier.
fn parse_tiers(e: &mut Errors, at: &str, tiers: &[TierRequest]) -> Option<Vec<Tier>> {
    let Some(last) = tiers.len().checked_sub(1) else {
        e.add(
            at,
            Code::InvalidTiers,
            "at least one tier; the last has `up_to: null`",
        );
        return None;
    };
    if !e.list_within(at, tiers.len(), TIERS_MAX) {
        return None;
    }
    let mut valid = Vec::with_capacity(tiers.len());
    let mut previous_bound: Option<Decimal> = None;
    for (j, tier) in tiers.iter().enumerate() {
        let up_to_ok = check_bound(
            e,
            &format!("{at}[{j}].up_to"),
            tier.up_to,
            j == last,
            &mut previous_bound,
        );
        let unit_price = unit_price(e, &format!("{at}[{j}].unit_price"), tier.unit_price);
        if let (true, Some(unit_price)) = (up_to_ok, unit_price) {
            valid.push(Tier {
                up_to: tier.up_to.map(|b| b.normalize()),
                unit_price,
            });
        }
    }
    (valid.len() == tiers.len()).then_some(valid)
}

/// A tier's `up_to`: present on every tier but the last, positive, above the previous bound
/// (kept in `previous`). Whether it is.
fn check_bound(
    e: &mut Errors,
    field: &str,
    up_to: Option<Decimal>,
    last: bool,
    previous: &mut Option<Decimal>,
) -> bool {
    let refusal = match up_to {
        None if !last => "only the last tier is unbounded; this tier needs an `up_to`".to_owned(),
        Some(_) if last => {
            "the last tier must have `up_to: null` so that every quantity has a price".to_owned()
        }
        Some(bound) if bound <= Decimal::ZERO => "must be greater than 0".to_owned(),
        Some(bound) => {
            let below = previous.filter(|p| bound <= *p);
            *previous = Some(bound);
            match below {
                Some(p) => format!("tiers ascend strictly: must be greater than {p}"),
                None => return true,
            }
        }
        None => return true,
    };
    e.add(field, Code::InvalidTiers, refusal);
    false
}

/// A tier's unit price: given, not negative, at most [`UNIT_PRICE_MAX`] with at most
/// [`UNIT_PRICE_MAX_SCALE`] decimal places; normalized.
fn unit_price(e: &mut Errors, field: &str, price: Option<Decimal>) -> Option<Decimal> {
    let price = e.required(field, &price)?.normalize();
    let refusal = if price < Decimal::ZERO {
        "must not be negative".to_owned()
    } else if price > Decimal::from(UNIT_PRICE_MAX) {
        format!("at most {UNIT_PRICE_MAX}")
    } else if price.scale() > UNIT_PRICE_MAX_SCALE {
        format!(
            "at most {UNIT_PRICE_MAX_SCALE} decimal places, got {}",
            price.scale()
        )
    } else {
        return Some(price);
    };
    e.add(field, Code::InvalidValue, refusal);
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::steps::testing::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn pricing_is_normalized_and_readable_by_billing() {
        let body = with(
            pricing_with_tiers(json!([
                {"up_to": 100, "unit_price": 0.5},
                {"up_to": "1000.00", "unit_price": "0.2500"},
                {"unit_price": "0"}
            ])),
            "billing_period",
            json!("day"),
        );
        let stored = check(Step::Pricing, &body).unwrap();
        assert_eq!(stored.data()["currency"], json!("CNY"));
        assert_eq!(
            stored.data()["billable_items"][0]["tiers"],
            json!([
                {"up_to": "100", "unit_price": "0.5"},
                {"up_to": "1000", "unit_price": "0.25"},
                {"up_to": null, "unit_price": "0"}
            ])
        );
        let step = PricingStep::from_stored(stored.data()).unwrap();
        assert_eq!(step.pricing_plan(), PricingPlan::ByUsage);
        assert_eq!(step.billing_period(), BillingPeriod::Day);
        assert_eq!(step.currency(), "CNY");
        let item = step.billable_item("Frequency").unwrap();
        assert_eq!(item.tier_mode(), TierMode::Graduated);
        assert_eq!(item.tiers()[0].up_to, Some(Decimal::new(100, 0)));
        assert_eq!(item.tiers()[1].unit_price, Decimal::new(25, 2));
        assert_eq!(item.tiers()[2].up_to, None);
    }

    #[test]
    fn only_pay_as_you_go_is_supported() {
        let err = refusal(
            Step::Pricing,
            &with(pricing(), "pricing_plan", json!("subscription")),
        );
        assert_only(&err, "pricing_plan", Code::UnsupportedPricingPlan);
        let err = refusal(
            Step::Pricing,
            &with(pricing(), "billing_period", json!("month")),
        );
        assert_only(&err, "billing_period", Code::InvalidValue);
    }

    #[test]
    fn the_currency_is_the_one_accounts_are_kept_in() {
        let cny = check(Step::Pricing, &with(pricing(), "currency", json!("CNY"))).unwrap();
        assert_eq!(cny.data()["currency"], json!("CNY"));
        for other in ["USD", "cny", "CN", "CNYY", "人民币"] {
            let err = refusal(Step::Pricing, &with(pricing(), "currency", json!(other)));
            assert_only(&err, "currency", Code::InvalidValue);
            assert!(err.errors[0].message.contains("CNY"), "{err:?}");
        }
    }

    #[test]
    fn one_to_20_billable_items() {
        let items = |n: usize| {
            json!(
                (0..n)
                    .map(|i| item(&format!("Item{i}")))
                    .collect::<Vec<_>>()
            )
        };
        assert!(check(Step::Pricing, &with(pricing(), "billable_items", items(20))).is_ok());
        let err = refusal(Step::Pricing, &with(pricing(), "billable_items", items(21)));
        assert_only(&err, "billable_items", Code::TooMany);
        let err = refusal(Step::Pricing, &with(pricing(), "billable_items", items(0)));
        assert_only(&err, "billable_items", Code::Required);
    }

    #[test]
    fn billable_item_codes_are_unique_and_follow_the_metering_key_pattern() {
        let body = with(
            pricing(),
            "billable_items",
            json!([
                item("Frequency"),
                item("Frequency"),
                item("9lives"),
                item("Net_In")
            ]),
        );
        let err = refusal(Step::Pricing, &body);
        assert_eq!(
            errors_of(&err),
            vec![
                ("billable_items[1].code", Code::Duplicate),
                ("billable_items[2].code", Code::InvalidValue),
                ("billable_items[3].code", Code::InvalidValue),
            ]
        );
    }

    #[test]
    fn item_codes_are_a_letter_then_up_to_63_letters_or_digits() {
        for good in [
            "A",
            "Frequency",
            "NetworkIn",
            "x9",
            &format!("a{}", "b".repeat(63)),
        ] {
            assert_eq!(ItemCode::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "9a",
            "_a",
            "a-b",
            "a b",
            "é",
            "aé",
            &format!("a{}", "b".repeat(64)),
        ] {
            assert!(ItemCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tiers_ascend_strictly_and_only_the_last_is_unbounded() {
        let cases = [
            (json!([]), "billable_items[0].tiers"),
            (
                json!([{"up_to": "10", "unit_price": "1"}]),
                "billable_items[0].tiers[0].up_to",
            ),
            (
                json!([{"up_to": null, "unit_price": "1"}, {"up_to": null, "unit_price": "1"}]),
                "billable_items[0].tiers[0].up_to",
            ),
            (
                json!([
                    {"up_to": "10", "unit_price": "1"},
                    {"up_to": "10", "unit_price": "1"},
                    {"unit_price": "1"}
                ]),
                "billable_items[0].tiers[1].up_to",
            ),
            (
                json!([
                    {"up_to": "10", "unit_price": "1"},
                    {"up_to": "5", "unit_price": "1"},
                    {"unit_price": "1"}
                ]),
                "billable_items[0].tiers[1].up_to",
            ),
            (
                json!([{"up_to": "0", "unit_price": "1"}, {"unit_price": "1"}]),
                "billable_items[0].tiers[0].up_to",
            ),
            (
                json!([{"up_to": "-5", "unit_price": "1"}, {"unit_price": "1"}]),
                "billable_items[0].tiers[0].up_to",
            ),
        ];
        for (tiers, field) in cases {
            let err = refusal(Step::Pricing, &pricing_with_tiers(tiers.clone()));
            assert_only(&err, field, Code::InvalidTiers);
        }
        let tiers = |n: usize| {
            let mut tiers: Vec<Value> = (1..n)
                .map(|b| json!({"up_to": b.to_string(), "unit_price": "1"}))
                .collect();
            tiers.push(json!({"up_to": null, "unit_price": "1"}));
            pricing_with_tiers(json!(tiers))
        };
        assert!(check(Step::Pricing, &tiers(20)).is_ok());
        assert_only(
            &refusal(Step::Pricing, &tiers(21)),
            "billable_items[0].tiers",
            Code::TooMany,
        );
        let single = pricing_with_tiers(json!([{"up_to": null, "unit_price": "0.3"}]));
        assert!(check(Step::Pricing, &single).is_ok());
        let fractional = pricing_with_tiers(json!([
            {"up_to": "0.5", "unit_price": "1"},
            {"up_to": "0.75", "unit_price": "1"},
            {"up_to": null, "unit_price": "1"}
        ]));
        assert!(check(Step::Pricing, &fractional).is_ok());
    }

    proptest! {
        /// A price sent as a JSON number (which JSON parsers read as a binary float) is the
        /// decimal that was written: every price the marketplace accepts — at most a million,
        /// 8 places — has at most 14 significant digits, which a float's shortest form keeps.
        #[test]
        fn a_price_written_as_a_number_is_stored_exactly(mantissa in 0i64..=100_000_000_000_000) {
            let price = Decimal::new(mantissa, 8);
            let written: f64 = price.to_string().parse().unwrap();
            let body = pricing_with_tiers(json!([{"up_to": null, "unit_price": written}]));
            let stored = check(Step::Pricing, &body).unwrap();
            let tiers = &stored.data()["billable_items"][0]["tiers"];
            prop_assert_eq!(&tiers[0]["unit_price"], &json!(price.normalize().to_string()));
        }
    }

    #[test]
    fn unit_prices_are_0_to_a_million_with_at_most_8_decimal_places() {
        let price = |p: Value| pricing_with_tiers(json!([{"up_to": null, "unit_price": p}]));
        for ok in [
            json!("0.00000001"),
            json!("12.12345678"),
            json!("0.100000000"),
            json!(0),
            json!("1000000"),
        ] {
            assert!(check(Step::Pricing, &price(ok.clone())).is_ok(), "{ok}");
        }
        for bad in [
            json!("0.000000001"),
            json!(0.000000001),
            json!("-0.01"),
            json!("1000000.00000001"),
        ] {
            let err = refusal(Step::Pricing, &price(bad.clone()));
            assert_only(
                &err,
                "billable_items[0].tiers[0].unit_price",
                Code::InvalidValue,
            );
        }
        let err = refusal(Step::Pricing, &price(Value::Null));
        assert_only(
            &err,
            "billable_items[0].tiers[0].unit_price",
            Code::Required,
        );
        let err = refusal(Step::Pricing, &price(json!("cheap")));
        assert_only(
            &err,
            "billable_items[0].tiers[0].unit_price",
            Code::InvalidJson,
        );
    }

    #[test]
    fn a_wrong_tier_mode_is_reported_with_the_other_item_fields() {
        let mut body = pricing();
        body["billable_items"][0]["tier_mode"] = json!("flat");
        body["billable_items"][0]["name"] = json!("");
        let err = refusal(Step::Pricing, &body);
        assert_eq!(
            errors_of(&err),
            vec![
                ("billable_items[0].name", Code::Required),
                ("billable_items[0].tier_mode", Code::InvalidValue),
            ]
        );
    }

    /// Strictly ascending tier bounds and prices of up to 8 decimal places, up to the highest.
    fn ascending_tiers() -> impl Strategy<Value = Value> {
        let price = (0u32..=8)
            .prop_flat_map(|scale| (0i64..=UNIT_PRICE_MAX * 10i64.pow(scale), Just(scale)));
        (
            prop::collection::btree_set(1u64..1_000_000_000, 0..19),
            prop::collection::vec(price, 20),
        )
            .prop_map(|(bounds, prices)| {
                let bounds: Vec<Option<Decimal>> = bounds
                    .into_iter()
                    .map(|b| Some(Decimal::new(b as i64, 2)))
                    .chain([None])
                    .collect();
                let tiers: Vec<Value> = bounds
                    .iter()
                    .zip(prices)
                    .map(|(up_to, (mantissa, scale))| {
                        json!({"up_to": up_to, "unit_price": Decimal::new(mantissa, scale)})
                    })
                    .collect();
                json!(tiers)
            })
    }

    proptest! {
        #[test]
        fn ascending_tiers_are_accepted_and_stored_faithfully(tiers in ascending_tiers()) {
            let stored = check(Step::Pricing, &pricing_with_tiers(tiers.clone())).unwrap();
            let step = PricingStep::from_stored(stored.data()).unwrap();
            let given: Vec<TierRequest> = serde_json::from_value(tiers).unwrap();
            let kept = step.billable_items()[0].tiers();
            prop_assert_eq!(kept.len(), given.len());
            for (kept, given) in kept.iter().zip(&given) {
                prop_assert_eq!(kept.up_to, given.up_to);
                prop_assert_eq!(Some(kept.unit_price), given.unit_price);
            }
        }

        #[test]
        fn swapping_two_bounded_tiers_is_refused(
            tiers in ascending_tiers(),
            pick in any::<prop::sample::Index>(),
        ) {
            let mut tiers = tiers.as_array().unwrap().clone();
            prop_assume!(tiers.len() >= 3);
            // Two neighbours among the bounded tiers (the last, unbounded one stays in place).
            let i = pick.index(tiers.len() - 2);
            tiers.swap(i, i + 1);
            let err = refusal(Step::Pricing, &pricing_with_tiers(json!(tiers)));
            prop_assert_eq!(err.code, Code::InvalidTiers);
        }
    }
}
