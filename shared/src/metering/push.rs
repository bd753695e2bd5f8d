//! The rules of a usage report, pure: a `PushMeteringData` push is validated whole (every bad
//! field named at once, nothing stored unless all is well), and a platform bill report becomes
//! the usage record of its item and period.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::listing::steps::BILLABLE_ITEMS_MAX;
use crate::metering::units::parse_value;
use crate::metering::{
    FUTURE_SKEW_SECONDS, MAX_RECORDS, MAX_VALUE, MIN_WINDOW_SECONDS, PushMeteringData, UsageRecord,
};
use crate::orders::instance::Instance;
use crate::orders::ledger::Cents;
use crate::period::{BillingPeriod, Period, window_within_one_period};
use crate::sales::{ItemSettings, PlatformSource, ReportingMethod};
use crate::validate::{Seen, parse_json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordBody {
    #[serde(rename = "StartTime")]
    start_time: i64,
    #[serde(rename = "EndTime")]
    end_time: i64,
    #[serde(rename = "Entities")]
    entities: Vec<EntityBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntityBody {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: Value,
}

/// Everything the validation of a push needs to know about its instance.
pub(crate) struct MeteringContext<'a> {
    pub instance: &'a Instance,
    pub items: &'a [ItemSettings],
    pub billing_period: BillingPeriod,
    pub tz: Tz,
    pub now: DateTime<Utc>,
}

fn records_of(metering: Value) -> ApiResult<Vec<Value>> {
    let array = match metering {
        Value::String(s) => parse_json::<Value>(s.as_bytes()).map_err(|mut e| {
            e.detail = format!("`Metering` is not a JSON array: {}", e.detail);
            e
        })?,
        other => other,
    };
    match array {
        Value::Array(records) => Ok(records),
        _ => Err(ApiError::validation(vec![FieldError::new(
            "Metering",
            Code::InvalidJson,
            "an array of records, or a JSON string holding one",
        )])),
    }
}

/// Validates a whole push. Input errors are one 400 listing every bad field; if the input is
/// valid but a record's period is closed for late data, the push is a 409 `PeriodClosed`.
pub(crate) fn validate(
    push: PushMeteringData,
    ctx: &MeteringContext,
) -> ApiResult<Vec<UsageRecord>> {
    let records = records_of(push.metering)?;
    if records.len() > MAX_RECORDS {
        return Err(ApiError::validation(vec![FieldError::new(
            "Metering",
            Code::TooManyRecords,
            format!(
                "at most {MAX_RECORDS} records per request, got {}",
                records.len()
            ),
        )]));
    }
    let mut errors = Vec::new();
    let mut closed = Vec::new();
    let mut suspended = Vec::new();
    let mut out = Vec::new();
    let created = ctx.instance_created();
    let released = ctx.instance_released();
    for (i, raw) in records.into_iter().enumerate() {
        let at = format!("Metering[{i}]");
        let record: RecordBody = match serde_path_to_error::deserialize(raw) {
            Ok(r) => r,
            Err(e) => {
                let path = e.path().to_string();
                let field = if path == "." {
                    at.clone()
                } else {
                    format!("{at}.{path}")
                };
                let message = e.into_inner().to_string();
                let code = if message.starts_with("unknown field") {
                    Code::UnknownField
                } else {
                    Code::InvalidJson
                };
                errors.push(FieldError::new(field, code, message));
                continue;
            }
        };
        let mut err = |field: &str, code: Code, message: String| {
            errors.push(FieldError::new(format!("{at}.{field}"), code, message));
        };
        let (start, end) = (record.start_time, record.end_time);
        let mut window_ok = true;
        if start < 0 || end <= start {
            err(
                "EndTime",
                Code::InvalidWindow,
                format!("EndTime {end} must be after StartTime {start}"),
            );
            window_ok = false;
        } else if end - start <= MIN_WINDOW_SECONDS {
            err(
                "EndTime",
                Code::WindowTooShort,
                format!("the window must be longer than {MIN_WINDOW_SECONDS} s"),
            );
            window_ok = false;
        }
        let (Some(start_at), Some(end_at)) = (
            DateTime::from_timestamp(start, 0),
            DateTime::from_timestamp(end, 0),
        ) else {
            err(
                "StartTime",
                Code::InvalidWindow,
                "not a valid Unix time".into(),
            );
            continue;
        };
        if window_ok && !window_within_one_period(ctx.billing_period, ctx.tz, start_at, end_at) {
            err(
                "EndTime",
                Code::WindowSpansPeriods,
                "a record lies within one billing period".into(),
            );
            window_ok = false;
        }
        if end > ctx.now.timestamp() + FUTURE_SKEW_SECONDS {
            err(
                "EndTime",
                Code::WindowInFuture,
                "usage cannot end in the future".into(),
            );
            window_ok = false;
        }
        // A window overlapping the instance's life is its usage, even when it is the whole
        // first (or last) hour a meter aligns its windows to; only one wholly outside it is not.
        if end_at <= created {
            err(
                "EndTime",
                Code::UsageBeforeOrder,
                "the window ends before the instance was ordered".into(),
            );
            window_ok = false;
        }
        if released.is_some_and(|r| start_at >= r) {
            err(
                "StartTime",
                Code::UsageAfterRelease,
                "the window starts after the instance was released".into(),
            );
            window_ok = false;
        }
        if record.entities.is_empty() {
            err("Entities", Code::Required, "at least one entity".into());
        }
        // At most one entity per billable item a product may have: more is refused before any
        // is looked at, so a record's work is bounded by a constant, not by the push. Within
        // the bound, an entity beyond the product's items is refused for what it is (an
        // unknown item, a key repeated).
        let entities = if record.entities.len() > BILLABLE_ITEMS_MAX {
            err(
                "Entities",
                Code::TooMany,
                format!(
                    "at most {BILLABLE_ITEMS_MAX} entities (one per billable item), got {}",
                    record.entities.len()
                ),
            );
            &[][..]
        } else {
            &record.entities[..]
        };
        let mut keys = Seen::default();
        let period = Period::containing(ctx.billing_period, ctx.tz, start_at);
        for (j, entity) in entities.iter().enumerate() {
            let field = format!("Entities[{j}]");
            match ctx
                .items
                .iter()
                .find(|s| s.item.code().as_str() == entity.key)
            {
                None => err(
                    &format!("{field}.Key"),
                    Code::UnknownBillableItem,
                    format!(
                        "{:?} is not a billable item in effect for this instance",
                        entity.key
                    ),
                ),
                Some(s) if s.reporting != Some(ReportingMethod::ServiceProvider) => err(
                    &format!("{field}.Key"),
                    Code::ItemNotReportedByProvider,
                    format!("{:?} is reported by the platform, not pushed", entity.key),
                ),
                Some(_) => {}
            }
            if !keys.first(&entity.key) {
                err(
                    &format!("{field}.Key"),
                    Code::Duplicate,
                    "the key appears twice in this record".into(),
                );
            }
            match parse_value(&entity.value) {
                Ok(v) => match i64::try_from(v).ok().filter(|v| *v <= MAX_VALUE).ok_or(()) {
                    Ok(value) if window_ok => out.push(UsageRecord {
                        origin: format!("{at}.Entities"),
                        item_code: entity.key.clone(),
                        start_time: start,
                        end_time: end,
                        value,
                        scale: 0,
                        period_start: period.start.timestamp(),
                    }),
                    Ok(_) => {}
                    Err(_) => err(
                        &format!("{field}.Value"),
                        Code::InvalidValue,
                        format!("at most {MAX_VALUE}"),
                    ),
                },
                Err(e) => err(&format!("{field}.Value"), Code::InvalidValue, e.to_string()),
            }
        }
        if window_ok && ctx.suspended_during(start, end) {
            suspended.push(FieldError::new(
                &at,
                Code::InstanceSuspended,
                "the instance was suspended for its customer's arrears during the whole window",
            ));
        }
        if window_ok && ctx.now >= period.closes_at(ctx.billing_period, ctx.tz) {
            closed.push(FieldError::new(
                &at,
                Code::PeriodClosed,
                format!(
                    "the period starting {} is closed for late data",
                    crate::platform::clock::rfc3339(period.start)
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if !closed.is_empty() {
        let mut e = ApiError::new(
            Code::PeriodClosed,
            "usage arrived after its period's late-data window",
        );
        e.errors = closed;
        return Err(e);
    }
    if !suspended.is_empty() {
        let mut e = ApiError::new(
            Code::InstanceSuspended,
            "usage inside a suspension of the instance: a suspended instance runs nothing",
        );
        e.errors = suspended;
        return Err(e);
    }
    Ok(out)
}

impl MeteringContext<'_> {
    fn instance_created(&self) -> DateTime<Utc> {
        self.instance.created().unwrap_or(self.now)
    }

    fn instance_released(&self) -> Option<DateTime<Utc>> {
        self.instance.released()
    }

    /// Whether the window `[start, end)` lies inside one of the instance's suspensions. (A
    /// suspension is dated when a bill run makes it, and an accepted window starts minutes
    /// before the push's clock, so one made after this check never holds a window it let
    /// through.)
    fn suspended_during(&self, start: i64, end: i64) -> bool {
        self.instance.suspended_during(start, end)
    }
}

/// Validates a platform bill report into the usage record of its item and period: the period
/// must be a period of the product, not closed for late data, and the amount whole cents.
#[allow(clippy::too_many_arguments)]
pub(crate) fn platform_bill_record(
    instance: &Instance,
    items: &[ItemSettings],
    kind: BillingPeriod,
    tz: Tz,
    period_start: DateTime<Utc>,
    amount: rust_decimal::Decimal,
    item_code: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<UsageRecord> {
    let invalid = |field: &str, code: Code, message: &str| {
        ApiError::validation(vec![FieldError::new(field, code, message)])
    };
    let period = Period::from_start(kind, tz, period_start).ok_or_else(|| {
        invalid(
            "period_start",
            Code::InvalidPeriodStart,
            "not the start of a billing period",
        )
    })?;
    let bill_items: Vec<&ItemSettings> = items
        .iter()
        .filter(|s| {
            matches!(
                s.reporting,
                Some(ReportingMethod::ComputeNest {
                    source: PlatformSource::Bill,
                    ..
                })
            )
        })
        .collect();
    let item = match (item_code, bill_items.as_slice()) {
        (Some(code), _) => bill_items
            .iter()
            .find(|s| s.item.code().as_str() == code)
            .ok_or_else(|| {
                invalid(
                    "item_code",
                    Code::UnknownBillableItem,
                    "not an in-effect item of the Bill source",
                )
            })?,
        (None, [only]) => only,
        (None, _) => {
            return Err(invalid(
                "item_code",
                Code::UnknownBillableItem,
                "name the item: the instance has no single Bill-sourced item",
            ));
        }
    };
    let cents = Cents::from_decimal(amount)
        .filter(|c| (0..=MAX_VALUE).contains(&c.0))
        .ok_or_else(|| {
            invalid(
                "amount",
                Code::InvalidAmount,
                "a non-negative amount with at most 2 decimal places",
            )
        })?;
    if period.start.timestamp() > now.timestamp() {
        return Err(invalid(
            "period_start",
            Code::WindowInFuture,
            "the period has not started",
        ));
    }
    // Only periods the instance lived in are ever billed: a bill for another would be lost.
    if instance.created().is_some_and(|c| period.end <= c) {
        return Err(invalid(
            "period_start",
            Code::UsageBeforeOrder,
            "the instance did not exist yet",
        ));
    }
    if instance.released().is_some_and(|r| r <= period.start) {
        return Err(invalid(
            "period_start",
            Code::UsageAfterRelease,
            "the instance was released before this period",
        ));
    }
    if now >= period.closes_at(kind, tz) {
        return Err(ApiError::new(
            Code::PeriodClosed,
            "the period is closed for late data",
        ));
    }
    if instance.suspended_during(period.start.timestamp(), period.end.timestamp()) {
        return Err(ApiError::new(
            Code::InstanceSuspended,
            "the instance was suspended for its customer's arrears during the whole period",
        ));
    }
    Ok(UsageRecord {
        origin: "amount".to_owned(),
        item_code: item.item.code().as_str().to_owned(),
        start_time: period.start.timestamp(),
        end_time: period.end.timestamp(),
        value: cents.0,
        scale: 2,
        period_start: period.start.timestamp(),
    })
}
