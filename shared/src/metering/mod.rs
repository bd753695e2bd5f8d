//! Metering: usage reports and their records. Providers push usage compatible with Compute
//! Nest's `PushMeteringData`; the platform reports bill data, and its Time and Prometheus sources
//! are collected at bill time (`platform_usage`).
//!
//! A push is all-or-nothing: every record is validated first and any invalid one refuses the
//! whole request, naming the record and field. Accepted records are written in one transaction;
//! a record is identified by (instance, key, StartTime, EndTime), so a retried push counts once,
//! and the same identity with another value is refused rather than silently overwritten.

pub(crate) mod platform_usage;
pub(crate) mod push;
mod store;

use store::{Arrival, RecordKey};
pub(crate) mod units;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::Principal;
use crate::orders::{self, instance};
use crate::platform::clock;
use crate::platform::storage::{Database, transaction};
use crate::sales::{
    PLATFORM_BILL_SOURCE, PLATFORM_MEASURED_SOURCE, ReportingMethod, SERVICE_PROVIDER_SOURCE,
};
use push::MeteringContext;

/// The most records one push may carry, as in `PushMeteringData`.
pub(crate) const MAX_RECORDS: usize = 100;
/// Windows of hour and day products are longer than this (seconds).
pub(crate) const MIN_WINDOW_SECONDS: i64 = 300;
/// The largest value one record may carry (10^15: a petabyte in bytes, a quadrillion calls).
/// Bounding records keeps every period's sum far inside SQLite's 64-bit integers, so one
/// provider's absurd report cannot make totals, reads or bill runs fail.
pub(crate) const MAX_VALUE: i64 = 1_000_000_000_000_000;
/// How far in the future an `EndTime` may lie, for clock skew between provider and us.
pub(crate) const FUTURE_SKEW_SECONDS: i64 = 60;

/// The body of `POST /api/v1/metering`, in the cloud API's own field names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PushMeteringData {
    #[serde(rename = "ServiceInstanceId")]
    pub service_instance_id: String,
    /// The records, as the JSON string the cloud API sends or as the array itself.
    #[serde(rename = "Metering")]
    pub metering: Value,
}

/// One validated usage record: an amount of one item over one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct UsageRecord {
    /// The request field this record came from (`Metering[3].Entities`, `amount`), to name it
    /// in a conflict.
    #[serde(skip)]
    pub origin: String,
    pub item_code: String,
    pub start_time: i64,
    pub end_time: i64,
    /// The amount is `value` × 10^-`scale` (pushed values are integers: scale 0).
    pub value: i64,
    pub scale: u32,
    /// The start of the billing period the window lies in (Unix seconds).
    pub period_start: i64,
}

/// Counts of one stored push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Stored {
    pub accepted: usize,
    pub duplicates: usize,
}

/// One stored record, as `GET /api/v1/metering/usage` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StoredUsage {
    pub item_code: String,
    pub start_time: i64,
    pub end_time: i64,
    pub value: Decimal,
    #[serde(with = "crate::platform::clock::instant")]
    pub period_start: DateTime<Utc>,
    pub source: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub received_at: DateTime<Utc>,
}

/// An item's usage in one period: the raw sum as pushed, and the quantity in its price unit.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PeriodTotal {
    #[serde(with = "crate::platform::clock::instant")]
    pub period_start: DateTime<Utc>,
    pub item_code: String,
    pub raw_total: Decimal,
    /// In the price unit, at most 6 decimals.
    pub quantity: Decimal,
    /// The quantity as an exact fraction (`"1/3"`), when `quantity` is not all of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity_exact: Option<String>,
    pub price_unit: &'static str,
}

/// `value` × 10^-`scale`, exactly.
pub(crate) fn amount(value: i64, scale: i64) -> Decimal {
    Decimal::new(value, u32::try_from(scale).unwrap_or(0))
}

/// A provider pushes usage of an instance of one of its products. The push is read and
/// validated whole before anything is written — its cost, proportional to the push, never
/// holds the database's write lock —; then only what may have changed meanwhile is checked
/// again (a release, a bill run), and the records are stored, all or none. The usual push (all
/// of it new) is one statement ([`store::insert_if_all_new`]); any other is a transaction that
/// tells duplicates from conflicts.
pub(crate) fn push(
    db: &dyn Database,
    provider: &Principal,
    request: PushMeteringData,
    request_id: &str,
    tz: Tz,
    now: DateTime<Utc>,
) -> ApiResult<Stored> {
    let instance = instance::find(db, provider, &request.service_instance_id)?;
    if instance.provider_id != provider.id {
        // A customer's own instance is visible to it, but only the provider meters it.
        return Err(ApiError::not_found("instance"));
    }
    let terms = orders::terms(db, &instance)?;
    let records = push::validate(
        request,
        &MeteringContext {
            instance: &instance,
            items: &terms.items,
            billing_period: terms.kind,
            tz: instance.zone(tz),
            now,
        },
    )?;
    let arrival = Arrival {
        instance_id: &instance.id,
        records: &records,
        source: SERVICE_PROVIDER_SOURCE,
        request_id,
        received_at: now,
    };
    if let Some(stored) = store::insert_if_all_new(db, &arrival)? {
        return Ok(stored);
    }
    transaction(db, |db| {
        check_still_open(db, &instance.id, &records)?;
        check_still_pushed(db, &instance.id, &records)?;
        store::insert(db, &arrival)
    })
}

/// Refuses, inside the write's transaction, records of items whose reporting method the
/// provider changed since the push was validated (`ItemNotReportedByProvider`, as it would
/// have been validated now): their usage now comes from another source, and records of both
/// would be priced.
fn check_still_pushed(
    db: &dyn Database,
    instance_id: &str,
    records: &[UsageRecord],
) -> ApiResult<()> {
    let pushed =
        store::items_reported_by(db, instance_id, records, &ReportingMethod::ServiceProvider)?;
    let refused: Vec<FieldError> = records
        .iter()
        .filter(|r| !pushed.contains(&r.item_code))
        .map(|r| {
            FieldError::new(
                r.origin.clone(),
                Code::ItemNotReportedByProvider,
                format!("{:?} is reported by the platform, not pushed", r.item_code),
            )
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(refused))
    }
}

/// The platform's bill data for one period of an instance (the Bill source).
pub(crate) struct PlatformBill {
    pub instance_id: String,
    pub period_start: DateTime<Utc>,
    /// The bill amount, at most 2 decimal places.
    pub amount: Decimal,
    /// Which item it is for; optional when the instance has exactly one Bill-sourced item.
    pub item_code: Option<String>,
}

/// The platform reports an instance's bill data for one period. Idempotent per (instance, item,
/// period): the same amount again is a duplicate, another amount a conflict.
pub(crate) fn report_platform_bill(
    db: &dyn Database,
    reporter: &Principal,
    bill: &PlatformBill,
    request_id: &str,
    tz: Tz,
    now: DateTime<Utc>,
) -> ApiResult<Stored> {
    transaction(db, |db| {
        let instance = instance::find(db, reporter, &bill.instance_id)?;
        let terms = orders::terms(db, &instance)?;
        let ctx = MeteringContext {
            instance: &instance,
            items: &terms.items,
            billing_period: terms.kind,
            tz: instance.zone(tz),
            now,
        };
        let record = push::platform_bill_record(&ctx, bill)?;
        let records = [record];
        check_still_open(db, &instance.id, &records)?;
        store::insert(
            db,
            &Arrival {
                instance_id: &instance.id,
                records: &records,
                source: PLATFORM_BILL_SOURCE,
                request_id,
                received_at: now,
            },
        )
    })
}

/// Refuses, inside the write's transaction, records that what committed since they were
/// validated has closed to them: a release (a window starting at or after it), a suspension for
/// arrears (a window inside it) or a bill run (a period the instance's billing cursor has moved
/// past). The clock checks of [`push::validate`] close periods in time; this closes the gap they
/// leave — a push whose clock read fell just before a release, a suspension or a period's close,
/// committing after it — by asking the database once it holds the instance.
fn check_still_open(
    db: &dyn Database,
    instance_id: &str,
    records: &[UsageRecord],
) -> ApiResult<()> {
    let (released, billed_until) = store::open_until(db, instance_id)?;
    if let Some(released) = released {
        let after: Vec<FieldError> = records
            .iter()
            .filter(|r| r.start_time >= released)
            .map(|r| {
                FieldError::new(
                    r.origin.clone(),
                    Code::UsageAfterRelease,
                    "the window starts after the instance was released",
                )
            })
            .collect();
        if !after.is_empty() {
            return Err(ApiError::validation(after));
        }
    }
    // Read once `open_until` holds the instance's gate: a suspension under way has committed.
    let suspensions = instance::suspensions(db, instance_id)?;
    let inside: Vec<FieldError> = records
        .iter()
        .filter(|r| {
            suspensions
                .iter()
                .any(|s| s.holds(r.start_time, r.end_time))
        })
        .map(|r| {
            FieldError::new(
                r.origin.clone(),
                Code::InstanceSuspended,
                "the instance was suspended for its customer's arrears during the whole window",
            )
        })
        .collect();
    if !inside.is_empty() {
        let mut e = ApiError::new(
            Code::InstanceSuspended,
            "usage inside a suspension of the instance: a suspended instance runs nothing",
        );
        e.errors = inside;
        return Err(e);
    }
    let Some(next) = billed_until else {
        return Ok(());
    };
    let billed: Vec<FieldError> = records
        .iter()
        .filter(|r| r.period_start < next)
        .map(|r| {
            FieldError::new(
                r.origin.clone(),
                Code::PeriodClosed,
                "its period is already billed",
            )
        })
        .collect();
    if billed.is_empty() {
        return Ok(());
    }
    let mut e = ApiError::new(
        Code::PeriodClosed,
        "usage arrived after its period was billed",
    );
    e.errors = billed;
    Err(e)
}

/// A page of an instance's usage: records and the totals of the periods they belong to
/// (`GET /api/v1/metering/usage`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UsagePage {
    pub(crate) instance_id: String,
    pub(crate) records: Vec<StoredUsage>,
    pub(crate) totals: Vec<PeriodTotal>,
    /// Where the next page starts, if there is one.
    pub(crate) next_cursor: Option<String>,
}

/// The totals per period and item of an instance's periods starting in `[from, to)`, oldest
/// first, as the caller may see them (its provider, its owner, an operator).
pub(crate) fn usage_totals(
    db: &dyn Database,
    caller: &Principal,
    instance_id: &str,
    periods: (i64, i64),
) -> ApiResult<Vec<PeriodTotal>> {
    let instance = instance::find(db, caller, instance_id)?;
    totals_of(db, &instance.id, periods)
}

fn totals_of(
    db: &dyn Database,
    instance_id: &str,
    (from, to): (i64, i64),
) -> ApiResult<Vec<PeriodTotal>> {
    store::period_totals(db, instance_id, from, to)?
        .into_iter()
        .map(|(period_start, code, raw_total)| {
            let quantity = units::to_price_unit(&code, raw_total)
                .ok_or_else(|| ApiError::internal("a negative usage total"))?;
            Ok(PeriodTotal {
                period_start: clock::from_unix(period_start)?,
                quantity: quantity.shown(),
                quantity_exact: quantity.fraction(),
                price_unit: crate::sales::price_unit(&code),
                item_code: code,
                raw_total,
            })
        })
        .collect()
}

/// An instance's usage as the caller may see it (its provider, its owner, an operator): a page
/// of the records whose period starts in `[from, to)`, in order of period, item, source and
/// window, after `cursor`; and the complete totals of the periods the page's records are in.
pub(crate) fn usage(
    db: &dyn Database,
    caller: &Principal,
    instance_id: &str,
    (from, to): (i64, i64),
    cursor: Option<&str>,
    limit: usize,
) -> ApiResult<UsagePage> {
    let instance = instance::find(db, caller, instance_id)?;
    let after = cursor.map(parse_cursor).transpose()?;
    let mut page = store::records(
        db,
        &instance.id,
        (from, to),
        None,
        after.as_ref(),
        limit + 1,
    )?;
    let next_cursor = (page.len() > limit).then(|| {
        page.truncate(limit);
        page.last().map(|(_, key)| format_cursor(key))
    });
    let periods = match (page.first(), page.last()) {
        (Some((_, first)), Some((_, last))) => (first.period_start, last.period_start + 1),
        _ => (0, 0),
    };
    let totals = totals_of(db, &instance.id, periods)?;
    Ok(UsagePage {
        instance_id: instance.id,
        records: page.into_iter().map(|(record, _)| record).collect(),
        totals,
        next_cursor: next_cursor.flatten(),
    })
}

/// A page of the records of one item in one period of an instance: what a bill's line summed.
pub(crate) struct LinePage {
    pub(crate) records: Vec<StoredUsage>,
    pub(crate) next_cursor: Option<String>,
}

/// The records of `item` in the period starting at `period_start` of an instance, in order of
/// source and window, after `cursor`: unscoped (the caller checked the tenancy of the bill).
pub(crate) fn line_records(
    db: &dyn Database,
    instance_id: &str,
    period_start: i64,
    item: &str,
    cursor: Option<&str>,
    limit: usize,
) -> ApiResult<LinePage> {
    let after = match cursor {
        Some(c) => parse_cursor(c)?,
        None => RecordKey {
            period_start,
            item_code: item.to_owned(),
            source: String::new(),
            start_time: i64::MIN,
            end_time: i64::MIN,
        },
    };
    let mut page = store::records(
        db,
        instance_id,
        (period_start, period_start + 1),
        Some(item),
        Some(&after),
        limit + 1,
    )?;
    let next_cursor = (page.len() > limit)
        .then(|| {
            page.truncate(limit);
            page.last().map(|(_, key)| format_cursor(key))
        })
        .flatten();
    Ok(LinePage {
        records: page.into_iter().map(|(record, _)| record).collect(),
        next_cursor,
    })
}

/// A record's place as a cursor: `period.item.source.start.end` (item codes and sources are
/// letters, digits and underscores).
fn format_cursor(key: &RecordKey) -> String {
    format!(
        "{}.{}.{}.{}.{}",
        key.period_start, key.item_code, key.source, key.start_time, key.end_time
    )
}

fn parse_cursor(cursor: &str) -> ApiResult<RecordKey> {
    let parts: Vec<&str> = cursor.split('.').collect();
    let key = match parts.as_slice() {
        [period, item, source, start, end] => (|| {
            Some(RecordKey {
                period_start: period.parse().ok()?,
                item_code: (*item).to_owned(),
                source: (*source).to_owned(),
                start_time: start.parse().ok()?,
                end_time: end.parse().ok()?,
            })
        })(),
        _ => None,
    };
    key.ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            "cursor",
            Code::InvalidQuery,
            "the next_cursor of a previous page",
        )])
    })
}

/// Raw usage totals per (period start, item) of an instance, in the units it was reported in.
pub(crate) fn period_totals(
    db: &dyn Database,
    instance_id: &str,
    from: i64,
    to: i64,
) -> ApiResult<Vec<(i64, String, Decimal)>> {
    store::period_totals(db, instance_id, from, to)
}

/// Raw usage totals per item of many (instance, period start) pairs: what a bill run prices.
pub(crate) fn totals_of_periods(
    db: &dyn Database,
    periods: &[(&str, i64)],
) -> ApiResult<std::collections::HashMap<(String, i64), std::collections::HashMap<String, Decimal>>>
{
    store::totals_of_periods(db, periods)
}

/// Stores usage the platform measured (a bill run's Time and Prometheus records), in the
/// caller's transaction.
pub(crate) fn store_platform_usage(
    db: &dyn Database,
    instance_id: &str,
    records: &[UsageRecord],
    now: DateTime<Utc>,
) -> ApiResult<Stored> {
    store::insert(
        db,
        &Arrival {
            instance_id,
            records,
            source: PLATFORM_MEASURED_SOURCE,
            request_id: "bill-run",
            received_at: now,
        },
    )
}
