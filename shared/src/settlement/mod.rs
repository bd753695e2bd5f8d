//! Provider settlement: what the marketplace owes each provider for a calendar month. A
//! provider earns its products' fees (the usage lines of their customers' bills, test orders'
//! aside), less the marketplace's commission; the cloud resources' fees are the cloud's and are
//! never settled to providers.
//!
//! A month closes provider by provider ([`mod@close`]): a provider's statement is written once
//! every non-test period of its instances in the month is billed or written off, so no other
//! provider's unbillable instance holds it up. The month's instants are frozen when it is first
//! closed — a later change of `billing_timezone` moves no closed month — and each bill belongs
//! to exactly one statement. Until a provider's statement is written it is computed live, at the
//! rate in force for the month ([`commission`]). An operator then marks a statement paid, once.

mod close;
mod commission;
mod month;
mod store;

pub use close::{MonthClosed, ScheduledRun, scheduled_run};
pub(crate) use close::{OpenProvider, close, closes_at, standing};
pub(crate) use commission::{Commission, RateChange, RateSource, find_commission, set_commission};
pub(crate) use month::Month;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{self, Principal, Role};
use crate::money::Cents;
use crate::orders::ledger::ACCOUNT_CURRENCY;
use crate::platform::clock::rfc3339;
use crate::platform::storage::{Database, transaction};
use crate::webhook::{self, EventType, Tenants};

fn provider(db: &dyn Database, id: &str) -> ApiResult<Principal> {
    let principal = identity::find_principal(db, id)?;
    if principal.role == Role::Provider {
        Ok(principal)
    } else {
        Err(ApiError::not_found("provider"))
    }
}

/// Whether a statement is still computed live or was written when its provider's month closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MonthStatus {
    Open,
    Closed,
}

/// A month's instants in Unix seconds, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: i64,
    pub(crate) end: i64,
}

/// A month's instants as shown: when it began and ended (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Instants {
    #[serde(with = "crate::platform::clock::instant")]
    pub(crate) start: DateTime<Utc>,
    #[serde(with = "crate::platform::clock::instant")]
    pub(crate) end: DateTime<Utc>,
}

impl From<Span> for Instants {
    fn from(span: Span) -> Self {
        let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or_default();
        Instants {
            start: at(span.start),
            end: at(span.end),
        }
    }
}

/// A month's instants: those it was frozen with when first closed, else cut now in `tz` — its
/// start where a frozen month before it ended, its end where a frozen month after it starts — so
/// that months tile time whatever zone each was cut in.
pub(crate) fn span_of(db: &dyn Database, month: &Month, tz: Tz) -> ApiResult<(Span, bool)> {
    let (before, after) = (month.previous(), month.next());
    let frozen = store::frozen_months(db, &before, &after)?;
    let find = |m: &Month| {
        let name = m.to_string();
        frozen
            .iter()
            .find(|(n, _, _)| *n == name)
            .and_then(|(_, span, _)| *span)
    };
    if let Some(span) = find(month) {
        return Ok((span, true));
    }
    let start = find(&before).map_or(month.start(tz).timestamp(), |s| s.end);
    let end = find(&after).map_or(month.end(tz).timestamp(), |s| s.start);
    Ok((Span { start, end }, false))
}

/// One written-off period of a statement's product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WrittenOffPeriod {
    pub(crate) instance_id: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub(crate) period_start: DateTime<Utc>,
    pub(crate) reason: String,
}

/// A product's periods of the month closed without a bill.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct WriteOffs {
    pub(crate) count: i64,
    pub(crate) periods: Vec<WrittenOffPeriod>,
}

/// One product's share of a statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredProduct")]
pub(crate) struct ProductSettlement {
    pub(crate) product_id: String,
    /// The product fees of its customers' bills of the month (test orders' aside): billed.
    pub(crate) gross: Cents,
    /// The product fees collected within the month, whichever month their bills are of, less
    /// what credit notes of the month gave back of what had been collected.
    pub(crate) collected: Cents,
    /// The product-fee parts of the credit notes issued within the month.
    pub(crate) credited: Cents,
    /// What the month's bills still owed of their product fees when the statement was computed
    /// (or written): collected in a later month's statement once top-ups cover it.
    pub(crate) uncollected: Cents,
    /// `collected × rate`, truncated to cents (toward zero).
    pub(crate) commission: Cents,
    /// `collected − commission`: the provider's.
    pub(crate) net: Cents,
    pub(crate) bill_count: i64,
    /// Its periods of the month an operator wrote off (statements written before write-offs
    /// existed have none).
    pub(crate) write_offs: WriteOffs,
}

/// A product's share as statements store it: those written before collections were kept
/// settled what was billed, which was their collected amount.
#[derive(Deserialize)]
struct StoredProduct {
    product_id: String,
    gross: Cents,
    collected: Option<Cents>,
    #[serde(default)]
    credited: Cents,
    #[serde(default)]
    uncollected: Cents,
    commission: Cents,
    net: Cents,
    bill_count: i64,
    #[serde(default)]
    write_offs: WriteOffs,
}

impl From<StoredProduct> for ProductSettlement {
    fn from(p: StoredProduct) -> Self {
        ProductSettlement {
            collected: p.collected.unwrap_or(p.gross),
            product_id: p.product_id,
            gross: p.gross,
            credited: p.credited,
            uncollected: p.uncollected,
            commission: p.commission,
            net: p.net,
            bill_count: p.bill_count,
            write_offs: p.write_offs,
        }
    }
}

/// One product's money in a month, before commission, and its write-offs.
#[derive(Default)]
pub(crate) struct ProductFees {
    pub(crate) product_id: String,
    pub(crate) gross: Cents,
    pub(crate) bill_count: i64,
    pub(crate) uncollected: Cents,
    pub(crate) collected: Cents,
    pub(crate) credited: Cents,
    pub(crate) write_offs: Vec<WrittenOffPeriod>,
}

/// What the marketplace owes one provider for one month: what was collected of its products'
/// fees in the month, less commission.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Statement {
    /// Set once the provider's month is closed and the statement written.
    pub(crate) id: Option<String>,
    pub(crate) provider_id: String,
    pub(crate) month: Month,
    /// The instants the month began and ended; the statement counts the bills of periods
    /// starting within them, and what was collected and credited within them.
    pub(crate) period: Option<Instants>,
    pub(crate) status: MonthStatus,
    pub(crate) currency: &'static str,
    /// The commission rate in force for the month (when written: the one it was written with).
    pub(crate) rate: Decimal,
    pub(crate) products: Vec<ProductSettlement>,
    pub(crate) gross: Cents,
    pub(crate) collected: Cents,
    pub(crate) credited: Cents,
    pub(crate) uncollected: Cents,
    pub(crate) commission: Cents,
    /// The payout: `collected − commission`.
    pub(crate) net: Cents,
    pub(crate) bill_count: i64,
    pub(crate) write_off_count: i64,
    #[serde(with = "crate::platform::clock::instant::option")]
    pub(crate) closed_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::platform::clock::instant::option")]
    pub(crate) paid_at: Option<DateTime<Utc>>,
    pub(crate) payout_reference: Option<String>,
}

impl Statement {
    /// A statement of `provider_id` at `rate` from its products' money, bill counts and
    /// write-offs.
    fn compute(
        provider_id: &str,
        month: &Month,
        span: Span,
        rate: Decimal,
        products: Vec<ProductFees>,
    ) -> ApiResult<Self> {
        let products = products
            .into_iter()
            .map(|p| {
                let commission = (Decimal::from(p.collected.0) * rate).trunc();
                let commission = Cents(
                    i64::try_from(commission)
                        .map_err(|_| ApiError::internal("a commission beyond cents"))?,
                );
                Ok(ProductSettlement {
                    product_id: p.product_id,
                    gross: p.gross,
                    collected: p.collected,
                    credited: p.credited,
                    uncollected: p.uncollected,
                    commission,
                    net: p.collected - commission,
                    bill_count: p.bill_count,
                    write_offs: WriteOffs {
                        count: p.write_offs.len() as i64,
                        periods: p.write_offs,
                    },
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let sum = |f: fn(&ProductSettlement) -> i64| Cents(products.iter().map(f).sum());
        Ok(Self {
            id: None,
            provider_id: provider_id.to_owned(),
            month: *month,
            period: Some(span.into()),
            status: MonthStatus::Open,
            currency: ACCOUNT_CURRENCY,
            rate,
            gross: sum(|p| p.gross.0),
            collected: sum(|p| p.collected.0),
            credited: sum(|p| p.credited.0),
            uncollected: sum(|p| p.uncollected.0),
            commission: sum(|p| p.commission.0),
            net: sum(|p| p.net.0),
            bill_count: products.iter().map(|p| p.bill_count).sum(),
            write_off_count: products.iter().map(|p| p.write_offs.count).sum(),
            products,
            closed_at: None,
            paid_at: None,
            payout_reference: None,
        })
    }
}

/// Each provider's products of the month within `span` — what was billed, collected and
/// credited, and written off — by provider, then product; `scope` restricts it to one provider.
fn earnings(
    db: &dyn Database,
    scope: Option<&str>,
    span: Span,
) -> ApiResult<Vec<(String, Vec<ProductFees>)>> {
    let mut by_product: BTreeMap<(String, String), ProductFees> = BTreeMap::new();
    fn entry(
        by_product: &mut BTreeMap<(String, String), ProductFees>,
        provider: String,
        product: String,
    ) -> &mut ProductFees {
        by_product
            .entry((provider, product.clone()))
            .or_insert_with(|| ProductFees {
                product_id: product,
                ..ProductFees::default()
            })
    }
    for b in store::billed(db, scope, span)? {
        let fees = entry(&mut by_product, b.provider_id, b.product_id);
        (fees.gross, fees.bill_count, fees.uncollected) = (b.fees, b.count, b.owed);
    }
    for (provider, product, collected) in store::collected(db, scope, span)? {
        entry(&mut by_product, provider, product).collected = collected;
    }
    for (provider, product, credited) in store::credited(db, scope, span)? {
        entry(&mut by_product, provider, product).credited = credited;
    }
    for (provider, product, period) in store::write_offs(db, scope, span)? {
        entry(&mut by_product, provider, product)
            .write_offs
            .push(period);
    }
    let mut by_provider: Vec<(String, Vec<ProductFees>)> = Vec::new();
    for ((provider_id, _), fees) in by_product {
        match by_provider.last_mut() {
            Some((p, products)) if *p == provider_id => products.push(fees),
            _ => by_provider.push((provider_id, vec![fees])),
        }
    }
    Ok(by_provider)
}

/// A month's statements as one caller sees them (`GET /api/v1/settlements`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MonthStatements {
    pub(crate) month: Month,
    pub(crate) period: Instants,
    /// `closed` once every statement shown is written and no provider waits on a period.
    pub(crate) status: MonthStatus,
    pub(crate) items: Vec<Statement>,
}

/// A month's statements as the caller may see them: a provider its own (a statement of nothing
/// when it earned nothing), an operator every provider's that earned or wrote off something, or
/// one provider's (404 for a principal that is no provider). Written statements as written; the
/// others computed live at the rate in force for the month. The month is `closed` once every
/// statement shown is written and no provider of it waits on an unbilled period.
pub(crate) fn statements(
    db: &dyn Database,
    caller: &Principal,
    month: &Month,
    provider_id: Option<&str>,
    tz: Tz,
    default_rate: Decimal,
) -> ApiResult<MonthStatements> {
    let scope = match caller.role {
        Role::Operator => provider_id,
        Role::Provider => Some(caller.id.as_str()),
        _ => return Err(ApiError::forbidden()),
    };
    if let Some(id) = provider_id
        && caller.is_operator()
    {
        // A statement of nothing is for a provider that earned nothing, not for a stranger.
        provider(db, id)?;
    }
    let (span, frozen) = span_of(db, month, tz)?;
    let mut items = store::statements(db, month, scope)?;
    for statement in &mut items {
        statement.period.get_or_insert_with(|| span.into());
    }
    for (provider_id, products) in earnings(db, scope, span)? {
        if items.iter().all(|s| s.provider_id != provider_id) {
            let rate = commission::rate_for(db, &provider_id, month, default_rate)?;
            items.push(Statement::compute(
                &provider_id,
                month,
                span,
                rate,
                products,
            )?);
        }
    }
    items.sort_by(|a, b| a.provider_id.cmp(&b.provider_id));
    let waiting = !store::unbilled_before(db, span.end, scope)?.is_empty();
    let closed = frozen && !waiting && items.iter().all(|s| s.status == MonthStatus::Closed);
    if let (Some(id), true) = (scope, items.is_empty()) {
        let rate = commission::rate_for(db, id, month, default_rate)?;
        let mut nothing = Statement::compute(id, month, span, rate, Vec::new())?;
        if closed {
            nothing.status = MonthStatus::Closed;
        }
        items.push(nothing);
    }
    let status = if closed {
        MonthStatus::Closed
    } else {
        MonthStatus::Open
    };
    Ok(MonthStatements {
        month: *month,
        period: span.into(),
        status,
        items,
    })
}

/// A written statement, if the caller may see it: its provider or an operator.
pub(crate) fn find(
    db: &dyn Database,
    caller: &Principal,
    id: &str,
    tz: Tz,
) -> ApiResult<Statement> {
    let mut statement = store::statement(db, id)?;
    if !(caller.is_operator() || statement.provider_id == caller.id) {
        return Err(ApiError::not_found("statement"));
    }
    if statement.period.is_none() {
        statement.period = Some(span_of(db, &statement.month, tz)?.0.into());
    }
    Ok(statement)
}

/// The longest payout reference an operator may record.
const REFERENCE_MAX: usize = 200;

/// An operator records that a closed statement was paid, once (409 `AlreadyPaid` after).
pub(crate) fn pay(
    db: &dyn Database,
    operator: &Principal,
    id: &str,
    reference: Option<&str>,
    tz: Tz,
    now: DateTime<Utc>,
) -> ApiResult<Statement> {
    let mut e = crate::validate::Errors::new();
    let reference = e
        .required("reference", &reference.map(str::to_owned))
        .cloned();
    if let Some(r) = &reference {
        e.text("reference", r, 1, REFERENCE_MAX, Code::TooLong);
    }
    e.finish()?;
    let reference = reference.unwrap_or_default();
    transaction(db, |db| {
        store::statement(db, id)?;
        if !store::mark_paid(db, id, &operator.id, &reference, &rfc3339(now))? {
            return Err(ApiError::new(
                Code::AlreadyPaid,
                format!("statement {id} was already paid"),
            ));
        }
        let statement = find(db, operator, id, tz)?;
        webhook::emit(
            db,
            EventType::SettlementPaid,
            Tenants {
                provider: Some(&statement.provider_id),
                customer: None,
            },
            &statement,
            now,
        )?;
        Ok(statement)
    })
}

/// `YYYY-MM` of a request, or the month of `now` when absent.
pub(crate) fn month_of(text: Option<&str>, now: DateTime<Utc>, tz: Tz) -> ApiResult<Month> {
    match text {
        None => Ok(Month::containing(now, tz)),
        Some(text) => Month::parse(text).map_err(|why| {
            ApiError::validation(vec![FieldError::new("month", Code::InvalidValue, why)])
        }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn month() -> Month {
        Month::parse("2026-03").unwrap()
    }

    /// A product whose month's bills were `collected` in the month.
    fn fees(product_id: &str, collected: i64, bill_count: i64) -> ProductFees {
        ProductFees {
            product_id: product_id.to_owned(),
            gross: Cents(collected.max(0)),
            collected: Cents(collected),
            bill_count,
            ..ProductFees::default()
        }
    }

    const SPAN: Span = Span {
        start: 1_772_294_400,
        end: 1_774_972_800,
    };

    #[test]
    fn the_commission_is_truncated_to_cents_per_product() {
        // 15% of 346.32 is 51.948: the marketplace takes 51.94, the provider keeps 294.38.
        let rate = Decimal::new(15, 2);
        let s = Statement::compute(
            "usr-a",
            &month(),
            SPAN,
            rate,
            vec![fees("p1", 34_632, 104), fees("p2", 1, 1)],
        )
        .unwrap();
        assert_eq!(s.products[0].commission, Cents(5_194));
        assert_eq!(s.products[0].net, Cents(29_438));
        // One cent at 15% is no commission at all.
        assert_eq!(s.products[1].commission, Cents(0));
        assert_eq!(
            (s.gross, s.commission, s.net),
            (Cents(34_633), Cents(5_194), Cents(29_439))
        );
        assert_eq!(s.bill_count, 105);
        assert_eq!(s.status, MonthStatus::Open);
    }

    #[test]
    fn a_provider_that_earned_nothing_is_owed_nothing() {
        let s =
            Statement::compute("usr-a", &month(), SPAN, Decimal::new(1, 1), Vec::new()).unwrap();
        assert_eq!(
            (s.gross, s.commission, s.net, s.bill_count),
            (Cents(0), Cents(0), Cents(0), 0)
        );
    }

    proptest! {
        /// Whatever was collected — negative when credit notes gave back more than the month
        /// collected — commission and net add up to it, and the commission is its rate's share
        /// truncated toward zero: never a fraction of a cent more than the rate, taken or given
        /// back.
        #[test]
        fn net_and_commission_add_up_to_what_was_collected_and_the_commission_never_exceeds_the_rate(
            collected in prop::collection::vec(-10_000_000_000i64..=10_000_000_000, 0..8),
            rate_millionths in 0i64..1_000_000,
        ) {
            let rate = Decimal::new(rate_millionths, 6);
            let products = collected.iter().enumerate().map(|(i, c)| fees(&format!("p{i}"), *c, 1)).collect();
            let s = Statement::compute("usr-a", &month(), SPAN, rate, products).unwrap();
            for p in &s.products {
                prop_assert_eq!(p.commission.0 + p.net.0, p.collected.0);
                let exact = Decimal::from(p.collected.0) * rate;
                prop_assert!(Decimal::from(p.commission.0).abs() <= exact.abs());
                prop_assert!((exact - Decimal::from(p.commission.0)).abs() < Decimal::ONE);
            }
            prop_assert_eq!(s.collected.0, collected.iter().sum::<i64>());
            prop_assert_eq!(s.commission.0 + s.net.0, s.collected.0);
        }
    }
}
