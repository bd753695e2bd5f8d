//! Write-offs: an operator closes an instance-period that can never be billed — its provider's
//! metrics answer nothing useful, its stored terms no longer parse — without a bill. Nothing is
//! deducted; the instance's billing cursor moves past the period exactly once, by the same
//! compare-and-set a bill run moves it by, so of a write-off and a bill of one period only one
//! can ever be written; who wrote it off, when and why is kept.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::billing::store::{self, CursorMove};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::Principal;
use crate::orders::instance::{self, Instance};
use crate::period::{BillingPeriod, Period};
use crate::platform::clock::rfc3339;
use crate::platform::ids::new_id;
use crate::platform::storage::{Database, transaction};
use crate::validate::Errors;

/// An instance-period closed without a bill.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WriteOff {
    pub id: String,
    pub instance_id: String,
    pub provider_id: String,
    pub product_id: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub period_start: DateTime<Utc>,
    #[serde(with = "crate::platform::clock::instant")]
    pub period_end: DateTime<Utc>,
    /// A test order's period: it never blocked a settlement.
    pub test: bool,
    pub reason: String,
    pub written_off_by: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub written_off_at: DateTime<Utc>,
}

/// The longest reason an operator may give.
pub(crate) const REASON_MAX: usize = 500;

/// The kind of the period a billing cursor stands on, from when it closes: an hour closes two
/// hours after it starts, a day at the end of the next day (46 to 50 hours). Read from the
/// cursor rather than from the product's terms, which may be what cannot be read.
fn kind_of_cursor(start: i64, close: i64) -> BillingPeriod {
    if close - start == 2 * 3_600 {
        BillingPeriod::Hour
    } else {
        BillingPeriod::Day
    }
}

/// An operator writes off the instance's period starting at `period_start`: created (`true`),
/// or the existing write-off of that period (`false`). Refused with 409 `PeriodAlreadyBilled`
/// when the period has a bill, and 409 `PeriodNotDue` unless it is the instance's next period to
/// bill and has closed (an earlier one must be billed or written off first; an open one may
/// still take usage).
pub(crate) fn write_off(
    db: &dyn Database,
    operator: &Principal,
    instance_id: &str,
    period_start: DateTime<Utc>,
    reason: Option<&str>,
    tz: Tz,
    now: DateTime<Utc>,
) -> ApiResult<(WriteOff, bool)> {
    let mut e = Errors::new();
    let reason = e.required("reason", &reason.map(str::to_owned)).cloned();
    if let Some(r) = &reason {
        e.text("reason", r, 1, REASON_MAX, Code::TooLong);
    }
    e.finish()?;
    let reason = reason.unwrap_or_default();
    let found = instance::find(db, operator, instance_id)?;
    let start = period_start.timestamp();
    transaction(db, |db| {
        // First the cursor, as a bill run holds it: a run or another write-off of the period in
        // flight commits before anything here is read, and this one finds its bill or write-off.
        store::lock_cursors(db, &[&found.id])?;
        if let Some(existing) = store::find_write_off(db, &found.id, start)? {
            return Ok((existing, false));
        }
        if store::find_by_period(db, &found.id, start)?.is_some() {
            return Err(ApiError::new(
                Code::PeriodAlreadyBilled,
                format!(
                    "the period of {} starting {} has a bill",
                    found.id,
                    rfc3339(period_start)
                ),
            ));
        }
        let (period, next) = due_period(db, &found, period_start, tz, now)?;
        let (next_start, next_close) = next.unwrap_or((period.end.timestamp(), None));
        let moved = store::move_cursors(
            db,
            &[CursorMove {
                instance_id: &found.id,
                from: start,
                next_start,
                next_close,
            }],
        )?;
        if moved.is_empty() {
            return Err(ApiError::internal(
                "a billing cursor moved inside a transaction",
            ));
        }
        let written = WriteOff {
            id: new_id("wo", now),
            instance_id: found.id.clone(),
            provider_id: found.provider_id.clone(),
            product_id: found.product_id.clone(),
            period_start: period.start,
            period_end: period.end,
            test: found.test,
            reason: reason.clone(),
            written_off_by: operator.id.clone(),
            written_off_at: now,
        };
        store::insert_write_off(db, &written, period.start.timestamp())?;
        Ok((written, true))
    })
}

/// The period starting at `start` if it is the instance's next to bill and has closed, with the
/// start and close time of the one after it (`None` once it is the instance's last).
#[allow(clippy::type_complexity)]
fn due_period(
    db: &dyn Database,
    instance: &Instance,
    start: DateTime<Utc>,
    tz: Tz,
    now: DateTime<Utc>,
) -> ApiResult<(Period, Option<(i64, Option<i64>)>)> {
    let not_due = |why: String| ApiError::new(Code::PeriodNotDue, why);
    let Some((next_start, Some(close))) = store::cursor(db, &instance.id)? else {
        return Err(not_due(format!(
            "every period of {} is billed or written off",
            instance.id
        )));
    };
    let zone = instance.zone(tz);
    let kind = kind_of_cursor(next_start, close);
    let period = Period::from_start(kind, zone, start).ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            "period_start",
            Code::InvalidPeriodStart,
            "not the start of a billing period of this instance",
        )])
    })?;
    let due = DateTime::from_timestamp(next_start, 0).unwrap_or_default();
    let closes = DateTime::from_timestamp(close, 0).unwrap_or_default();
    if start != due || now < closes {
        return Err(not_due(format!(
            "only the next period to bill of {} can be written off, once it has closed: the \
             period starting {}, closing {}",
            instance.id,
            rfc3339(due),
            rfc3339(closes)
        )));
    }
    let next = instance.period_after(&period, kind, zone).map(|n| {
        (
            n.start.timestamp(),
            Some(n.closes_at(kind, zone).timestamp()),
        )
    });
    Ok((period, next))
}

/// The write-offs of an instance the caller may see (its customer, its provider, operators),
/// oldest period first, by page.
pub(crate) fn list(
    db: &dyn Database,
    caller: &Principal,
    instance_id: &str,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<WriteOff>> {
    let found = instance::find(db, caller, instance_id)?;
    store::write_offs_of(db, &found.id, after, limit)
}
