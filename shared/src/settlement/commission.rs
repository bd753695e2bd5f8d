//! Commission rates with an effective month: an operator sets a provider's rate from a month
//! on, and keeps its history. A month settles at the rate in force for it — the latest set from
//! that month or before, else the deployment's `commission_rate` — so a rate set on 1 April
//! "from April on" settles nothing of March. A rate cannot take effect in a month the provider's
//! statement was written for already (409 `MonthClosed`): a written statement never changes.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::{Month, provider, store};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{self, Principal};
use crate::platform::clock::rfc3339;
use crate::platform::config::Config;
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

/// One change of a provider's rate: from `effective_from` on, `rate` (`None`: the deployment's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RateChange {
    pub(crate) effective_from: Month,
    pub(crate) rate: Option<Decimal>,
    pub(crate) set_by: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub(crate) set_at: DateTime<Utc>,
}

/// A provider's commission: the rate in force for `month` (the current one), and its history.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Commission {
    pub(crate) provider_id: String,
    pub(crate) month: Month,
    pub(crate) rate: Decimal,
    pub(crate) source: RateSource,
    /// Every rate an operator set, oldest month first.
    pub(crate) rates: Vec<RateChange>,
}

/// The rate `provider_id` settles `month` at, and whose it is.
fn in_force(
    db: &dyn Database,
    provider_id: &str,
    month: &Month,
    default: Decimal,
) -> ApiResult<(Decimal, RateSource)> {
    Ok(match store::rate_in_force(db, provider_id, month)? {
        Some(Some(rate)) => (rate, RateSource::Provider),
        _ => (default, RateSource::Default),
    })
}

/// The rate `provider_id` settles `month` at.
pub(crate) fn rate_for(
    db: &dyn Database,
    provider_id: &str,
    month: &Month,
    default: Decimal,
) -> ApiResult<Decimal> {
    Ok(in_force(db, provider_id, month, default)?.0)
}

fn commission(
    db: &dyn Database,
    provider_id: &str,
    month: Month,
    default: Decimal,
) -> ApiResult<Commission> {
    let (rate, source) = in_force(db, provider_id, &month, default)?;
    Ok(Commission {
        provider_id: provider_id.to_owned(),
        month,
        rate,
        source,
        rates: store::rate_changes(db, provider_id)?,
    })
}

/// A provider's commission, as an operator or the provider itself may read it; anyone else, or
/// a principal that is no provider, gets 404. The deployment's `config` gives the default rate
/// and the zone its months are cut in.
pub(crate) fn find_commission(
    db: &dyn Database,
    caller: &Principal,
    provider_id: &str,
    config: &Config,
    now: DateTime<Utc>,
) -> ApiResult<Commission> {
    let (default, tz) = (config.commission_rate, config.billing_timezone);
    if !(caller.is_operator() || caller.id == provider_id) {
        return Err(ApiError::not_found("provider"));
    }
    provider(db, provider_id)?;
    commission(db, provider_id, Month::containing(now, tz), default)
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, Code::InvalidValue, message)])
}

/// An operator sets a provider's rate (a decimal in [0, 1)), or with `None` returns it to the
/// deployment's, from `effective_from` on (`YYYY-MM`; by default the current month of the
/// deployment's `billing_timezone`).
pub(crate) fn set_commission(
    db: &dyn Database,
    operator: &Principal,
    provider_id: &str,
    (rate, effective_from): (Option<&str>, Option<&str>),
    config: &Config,
    now: DateTime<Utc>,
) -> ApiResult<Commission> {
    let (default, tz) = (config.commission_rate, config.billing_timezone);
    let rate = rate
        .map(|r| {
            crate::platform::config::commission_rate_exact(r).ok_or_else(|| {
                invalid(
                    "rate",
                    "a decimal from 0 up to (not including) 1, at most 6 decimal places",
                )
            })
        })
        .transpose()?;
    let current = Month::containing(now, tz);
    let from = match effective_from {
        Some(text) => Month::parse(text).map_err(|why| invalid("effective_from", &why))?,
        None => current,
    };
    provider(db, provider_id)?;
    transaction(db, |db| {
        // A close settling the provider's month holds its row from before it reads the rate
        // until its statement is written: this waits for it, then finds the month closed.
        identity::lock_principals(db, &[provider_id])?;
        if let Some(closed) = store::last_closed_month(db, provider_id)?
            && from.to_string() <= closed
        {
            return Err(ApiError::new(
                Code::MonthClosed,
                format!(
                    "{provider_id}'s statement of {closed} is written: a rate can take effect \
                     from a later month only"
                ),
            ));
        }
        store::set_rate(db, provider_id, &from, rate, &operator.id, &rfc3339(now))?;
        commission(db, provider_id, current, default)
    })
}
