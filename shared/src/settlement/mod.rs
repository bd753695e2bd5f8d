//! Provider settlement: what the marketplace owes each provider for a calendar month. A
//! provider earns its products' fees (the usage lines of their customers' bills, test orders'
//! aside), less the marketplace's commission; the cloud resources' fees are the cloud's and are
//! never settled to providers.
//!
//! A month is open until every period in it is closed for billing; its statements are computed
//! live meanwhile. Closing a month (an operator, the platform, or the schedule) first runs any
//! bill run still due, then writes each provider's statement once — the month's row and the
//! UNIQUE (provider, month) make racing or repeated closes write nothing twice — with the rate
//! in force. An operator then marks a statement paid, once.

mod month;
mod store;

pub(crate) use month::Month;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{self, Principal, Role};
use crate::orders::ledger::{ACCOUNT_CURRENCY, Cents};
use crate::platform::clock::rfc3339;
use crate::platform::config::Config;
use crate::platform::ids::new_id;
use crate::platform::outbound::Outbound;
use crate::platform::storage::{Database, transaction};

/// Whose rate a provider's commission is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RateSource {
    /// The deployment's `commission_rate`.
    Default,
    /// One an operator set for this provider.
    Provider,
}

/// The commission rate in force for a provider.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Commission {
    pub(crate) provider_id: String,
    pub(crate) rate: Decimal,
    pub(crate) source: RateSource,
}

/// The rate in force for `provider_id`: its own, else the deployment's.
pub(crate) fn commission(
    db: &dyn Database,
    provider_id: &str,
    default: Decimal,
) -> ApiResult<Commission> {
    Ok(match store::provider_rate(db, provider_id)? {
        Some(rate) => Commission {
            provider_id: provider_id.to_owned(),
            rate,
            source: RateSource::Provider,
        },
        None => Commission {
            provider_id: provider_id.to_owned(),
            rate: default,
            source: RateSource::Default,
        },
    })
}

/// A provider's commission, as an operator or the provider itself may read it; anyone else, or
/// a principal that is no provider, gets 404.
pub(crate) fn find_commission(
    db: &dyn Database,
    caller: &Principal,
    provider_id: &str,
    default: Decimal,
) -> ApiResult<Commission> {
    if !(caller.is_operator() || caller.id == provider_id) {
        return Err(ApiError::not_found("provider"));
    }
    provider(db, provider_id)?;
    commission(db, provider_id, default)
}

/// An operator sets a provider's own rate (a decimal in [0, 1)), or with `None` returns it to the
/// deployment's.
pub(crate) fn set_commission(
    db: &dyn Database,
    operator: &Principal,
    provider_id: &str,
    rate: Option<&str>,
    default: Decimal,
    now: DateTime<Utc>,
) -> ApiResult<Commission> {
    let rate = rate
        .map(|r| {
            crate::platform::config::commission_rate_exact(r).ok_or_else(|| {
                ApiError::validation(vec![FieldError::new(
                    "rate",
                    Code::InvalidValue,
                    "a decimal from 0 up to (not including) 1, at most 6 decimal places",
                )])
            })
        })
        .transpose()?;
    provider(db, provider_id)?;
    store::set_provider_rate(db, provider_id, rate, &operator.id, &rfc3339(now))?;
    commission(db, provider_id, default)
}

fn provider(db: &dyn Database, id: &str) -> ApiResult<Principal> {
    let principal = identity::find_principal(db, id)?;
    if principal.role == Role::Provider {
        Ok(principal)
    } else {
        Err(ApiError::not_found("provider"))
    }
}

/// Whether a month's statements are still computed live or were written when it closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MonthStatus {
    Open,
    Closed,
}

/// One product's share of a statement.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub(crate) struct ProductSettlement {
    pub(crate) product_id: String,
    /// The product fees of its customers' bills of the month (test orders' aside).
    pub(crate) gross: Cents,
    /// `gross × rate`, truncated to cents.
    pub(crate) commission: Cents,
    /// `gross − commission`: the provider's.
    pub(crate) net: Cents,
    pub(crate) bill_count: i64,
}

/// One product's fees over a month's bills, before commission.
pub(crate) struct ProductFees {
    pub(crate) product_id: String,
    pub(crate) gross: Cents,
    pub(crate) bill_count: i64,
}

/// What the marketplace owes one provider for one month.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Statement {
    /// Set once the month is closed and the statement written.
    pub(crate) id: Option<String>,
    pub(crate) provider_id: String,
    pub(crate) month: String,
    pub(crate) status: MonthStatus,
    pub(crate) currency: &'static str,
    /// The commission rate the statement is computed with (the one in force when it closed).
    pub(crate) rate: Decimal,
    pub(crate) products: Vec<ProductSettlement>,
    pub(crate) gross: Cents,
    pub(crate) commission: Cents,
    pub(crate) net: Cents,
    pub(crate) bill_count: i64,
    pub(crate) closed_at: Option<String>,
    pub(crate) paid_at: Option<String>,
    pub(crate) payout_reference: Option<String>,
}

impl Statement {
    /// A statement of `provider_id` at `rate` from its products' gross fees and bill counts.
    fn compute(
        provider_id: &str,
        month: &Month,
        rate: Decimal,
        products: Vec<ProductFees>,
    ) -> ApiResult<Self> {
        let products = products
            .into_iter()
            .map(
                |ProductFees {
                     product_id,
                     gross,
                     bill_count,
                 }| {
                    let commission = (Decimal::from(gross.0) * rate).trunc();
                    let commission = Cents(
                        i64::try_from(commission)
                            .map_err(|_| ApiError::internal("a commission beyond cents"))?,
                    );
                    Ok(ProductSettlement {
                        product_id,
                        gross,
                        commission,
                        net: Cents(gross.0 - commission.0),
                        bill_count,
                    })
                },
            )
            .collect::<ApiResult<Vec<_>>>()?;
        let sum = |f: fn(&ProductSettlement) -> i64| Cents(products.iter().map(f).sum());
        Ok(Self {
            id: None,
            provider_id: provider_id.to_owned(),
            month: month.to_string(),
            status: MonthStatus::Open,
            currency: ACCOUNT_CURRENCY,
            rate,
            gross: sum(|p| p.gross.0),
            commission: sum(|p| p.commission.0),
            net: sum(|p| p.net.0),
            bill_count: products.iter().map(|p| p.bill_count).sum(),
            products,
            closed_at: None,
            paid_at: None,
            payout_reference: None,
        })
    }
}

/// A month's statements as the caller may see them: a provider its own (a statement of nothing
/// when it earned nothing), an operator every provider's that earned something, or one
/// provider's (404 for a principal that is no provider). An open month's are computed live at
/// today's rates.
pub(crate) fn statements(
    db: &dyn Database,
    caller: &Principal,
    month: &Month,
    provider_id: Option<&str>,
    tz: Tz,
    default_rate: Decimal,
) -> ApiResult<(MonthStatus, Vec<Statement>)> {
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
    if store::month_closed_at(db, month)?.is_some() {
        let mut closed = store::statements(db, month, scope)?;
        if closed.is_empty()
            && let Some(id) = scope
        {
            let mut nothing = Statement::compute(
                id,
                month,
                commission(db, id, default_rate)?.rate,
                Vec::new(),
            )?;
            nothing.status = MonthStatus::Closed;
            closed.push(nothing);
        }
        return Ok((MonthStatus::Closed, closed));
    }
    let open = live(db, month, scope, tz, default_rate)?;
    Ok((MonthStatus::Open, open))
}

/// The month's statements computed from its bills now, at today's rates; with a `scope`, that
/// provider's alone, earned something or not.
fn live(
    db: &dyn Database,
    month: &Month,
    scope: Option<&str>,
    tz: Tz,
    default_rate: Decimal,
) -> ApiResult<Vec<Statement>> {
    let (from, to) = (month.start(tz).timestamp(), month.end(tz).timestamp());
    let mut by_provider: Vec<(String, Vec<ProductFees>)> = Vec::new();
    for (provider_id, fees) in store::product_fees(db, scope, from, to)? {
        match by_provider.last_mut() {
            Some((p, products)) if *p == provider_id => products.push(fees),
            _ => by_provider.push((provider_id, vec![fees])),
        }
    }
    if let Some(id) = scope
        && by_provider.is_empty()
    {
        by_provider.push((id.to_owned(), Vec::new()));
    }
    by_provider
        .into_iter()
        .map(|(provider_id, products)| {
            let rate = commission(db, &provider_id, default_rate)?.rate;
            Statement::compute(&provider_id, month, rate, products)
        })
        .collect()
}

/// A written statement, if the caller may see it: its provider or an operator.
pub(crate) fn find(db: &dyn Database, caller: &Principal, id: &str) -> ApiResult<Statement> {
    let statement = store::statement(db, id)?;
    if caller.is_operator() || statement.provider_id == caller.id {
        Ok(statement)
    } else {
        Err(ApiError::not_found("statement"))
    }
}

/// What closing a month did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Closing {
    pub(crate) month: String,
    pub(crate) status: MonthStatus,
    /// Statements this close wrote (0 when the month was closed already).
    pub(crate) statements_written: usize,
    pub(crate) items: Vec<Statement>,
}

/// Closes `month`: once every period in it is closed for billing (409 `MonthNotClosable`
/// before), after billing whatever is still due, and only when no period of it is left unbilled
/// (a failing instance keeps the month open: the statements would miss its bills). Writes each
/// provider's statement exactly once; a month closed already is answered with its statements.
pub(crate) fn close(
    db: &dyn Database,
    out: &dyn Outbound,
    actor: &Principal,
    month: &Month,
    tz: Tz,
    now: DateTime<Utc>,
    default_rate: Decimal,
) -> ApiResult<Closing> {
    if now < month.closes_at(tz) {
        return Err(ApiError::new(
            Code::MonthNotClosable,
            format!(
                "{month} can be closed from {}, when every period in it is closed for billing",
                rfc3339(month.closes_at(tz))
            ),
        ));
    }
    if store::month_closed_at(db, month)?.is_none() {
        crate::billing::run(db, out, tz, now, now, actor)?;
    }
    let end = month.end(tz).timestamp();
    let written = transaction(db, |db| {
        if store::month_closed_at(db, month)?.is_some() {
            return Ok(0);
        }
        let unbilled = store::instances_unbilled_before(db, end)?;
        if unbilled > 0 {
            return Err(ApiError::new(
                Code::MonthNotClosable,
                format!(
                    "{unbilled} instances have periods of {month} not billed yet (see the bill \
                     run's failures); bill them before closing"
                ),
            ));
        }
        let statements = live(db, month, None, tz, default_rate)?;
        let at = rfc3339(now);
        store::close_month(db, month, &actor.id, &at)?;
        for statement in &statements {
            store::insert_statement(db, &new_id("stl", now), statement, &at)?;
        }
        Ok(statements.len())
    })?;
    Ok(Closing {
        month: month.to_string(),
        status: MonthStatus::Closed,
        statements_written: written,
        items: store::statements(db, month, None)?,
    })
}

/// What the schedule does at `now` (the cron event's time), as the built-in operator: the bill
/// run as of `now` — a late or repeated event bills exactly what it should — then the close of
/// the month before, once it may close. Its report as JSON: `{"bill_run", "settlement"}`.
pub fn scheduled_run(
    db: &dyn Database,
    out: &dyn Outbound,
    config: &Config,
    now: DateTime<Utc>,
) -> ApiResult<serde_json::Value> {
    let tz = config.billing_timezone;
    let report = crate::billing::run(db, out, tz, now, now, &Principal::built_in_operator())?;
    let closing = close_due(db, out, tz, now, config.commission_rate)?;
    Ok(serde_json::json!({ "bill_run": report, "settlement": closing }))
}

/// The schedule's close: the month before `now`'s, once it may be closed and if it is not yet.
/// A month that cannot be closed yet (an instance still failing) is tried again next time.
fn close_due(
    db: &dyn Database,
    out: &dyn Outbound,
    tz: Tz,
    now: DateTime<Utc>,
    default_rate: Decimal,
) -> ApiResult<Option<Closing>> {
    let previous = Month::containing(now, tz).previous();
    if now < previous.closes_at(tz) || store::month_closed_at(db, &previous)?.is_some() {
        return Ok(None);
    }
    match close(
        db,
        out,
        &Principal::built_in_operator(),
        &previous,
        tz,
        now,
        default_rate,
    ) {
        Ok(closing) => Ok(Some(closing)),
        Err(e) if e.code == Code::MonthNotClosable => Ok(None),
        Err(e) => Err(e),
    }
}

/// The longest payout reference an operator may record.
const REFERENCE_MAX: usize = 200;

/// An operator records that a closed statement was paid, once (409 `AlreadyPaid` after).
pub(crate) fn pay(
    db: &dyn Database,
    operator: &Principal,
    id: &str,
    reference: Option<&str>,
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
        store::statement(db, id)
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

    fn fees(product_id: &str, gross: i64, bill_count: i64) -> ProductFees {
        ProductFees {
            product_id: product_id.to_owned(),
            gross: Cents(gross),
            bill_count,
        }
    }

    #[test]
    fn the_commission_is_truncated_to_cents_per_product() {
        // 15% of 346.32 is 51.948: the marketplace takes 51.94, the provider keeps 294.38.
        let rate = Decimal::new(15, 2);
        let s = Statement::compute(
            "usr-a",
            &month(),
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
        let s = Statement::compute("usr-a", &month(), Decimal::new(1, 1), Vec::new()).unwrap();
        assert_eq!(
            (s.gross, s.commission, s.net, s.bill_count),
            (Cents(0), Cents(0), Cents(0), 0)
        );
    }

    proptest! {
        #[test]
        fn net_and_commission_add_up_to_gross_and_the_marketplace_never_takes_more_than_its_rate(
            grosses in prop::collection::vec(0i64..=10_000_000_000, 0..8),
            rate_millionths in 0i64..1_000_000,
        ) {
            let rate = Decimal::new(rate_millionths, 6);
            let products = grosses.iter().enumerate().map(|(i, g)| fees(&format!("p{i}"), *g, 1)).collect();
            let s = Statement::compute("usr-a", &month(), rate, products).unwrap();
            for p in &s.products {
                prop_assert_eq!(p.commission.0 + p.net.0, p.gross.0);
                let exact = Decimal::from(p.gross.0) * rate;
                prop_assert!(Decimal::from(p.commission.0) <= exact);
                prop_assert!(exact < Decimal::from(p.commission.0 + 1));
            }
            prop_assert_eq!(s.gross.0, grosses.iter().sum::<i64>());
            prop_assert_eq!(s.commission.0 + s.net.0, s.gross.0);
        }
    }
}
