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
    FUTURE_SKEW_SECONDS, MAX_RECORDS, MAX_VALUE, MIN_WINDOW_SECONDS, PlatformBill,
    PushMeteringData, UsageRecord,
};
use crate::money::Cents;
use crate::orders::instance::Instance;
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

/// What the validation of a push found: the input's errors (400), the records whose period is
/// closed for late data (409) and those inside a suspension of the instance (409), each named by
/// its field.
#[derive(Default)]
struct Findings {
    errors: Vec<FieldError>,
    closed: Vec<FieldError>,
    suspended: Vec<FieldError>,
}

impl Findings {
    fn error(&mut self, at: &str, field: &str, code: Code, message: impl Into<String>) {
        self.errors
            .push(FieldError::new(format!("{at}.{field}"), code, message));
    }

    /// Every input error in one 400; else, every record of a closed period in one 409; else,
    /// every record inside a suspension in one 409.
    fn finish(self) -> ApiResult<()> {
        if !self.errors.is_empty() {
            return Err(ApiError::validation(self.errors));
        }
        for (records, code, detail) in [
            (
                self.closed,
                Code::PeriodClosed,
                "usage arrived after its period's late-data window",
            ),
            (
                self.suspended,
                Code::InstanceSuspended,
                "usage inside a suspension of the instance: a suspended instance runs nothing",
            ),
        ] {
            if !records.is_empty() {
                let mut e = ApiError::new(code, detail);
                e.errors = records;
                return Err(e);
            }
        }
        Ok(())
    }
}

/// A record's window, and whether it may carry usage.
struct Window {
    start: i64,
    end: i64,
    period: Period,
    valid: bool,
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
    let mut found = Findings::default();
    let mut out = Vec::new();
    for (i, raw) in records.into_iter().enumerate() {
        let at = format!("Metering[{i}]");
        match record_of(&at, raw) {
            Ok(record) => out.extend(ctx.check_record(&at, &record, &mut found)),
            Err(e) => found.errors.push(e),
        }
    }
    found.finish()?;
    Ok(out)
}

/// One record of the `Metering` array, or the error naming where it does not parse.
fn record_of(at: &str, raw: Value) -> Result<RecordBody, FieldError> {
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            at.to_owned()
        } else {
            format!("{at}.{path}")
        };
        let message = e.into_inner().to_string();
        let code = if message.starts_with("unknown field") {
            Code::UnknownField
        } else {
            Code::InvalidJson
        };
        FieldError::new(field, code, message)
    })
}

impl MeteringContext<'_> {
    fn instance_created(&self) -> DateTime<Utc> {
        self.instance.created().unwrap_or(self.now)
    }

    /// One record, checked whole: its window, then each entity. Its usage records when all is
    /// well (the findings say why not otherwise).
    fn check_record(
        &self,
        at: &str,
        record: &RecordBody,
        found: &mut Findings,
    ) -> Vec<UsageRecord> {
        let Some(window) = self.check_window(at, record, found) else {
            return Vec::new();
        };
        let out = self.check_entities(at, record, &window, found);
        // (A suspension is dated when a bill run makes it, and an accepted window starts
        // minutes before the push's clock, so one made after this check never holds a window
        // it let through.)
        if window.valid && self.instance.suspended_during(window.start, window.end) {
            found.suspended.push(FieldError::new(
                at,
                Code::InstanceSuspended,
                "the instance was suspended for its customer's arrears during the whole window",
            ));
        }
        if window.valid && self.now >= window.period.closes_at(self.billing_period, self.tz) {
            found.closed.push(FieldError::new(
                at,
                Code::PeriodClosed,
                format!(
                    "the period starting {} is closed for late data",
                    crate::platform::clock::rfc3339(window.period.start)
                ),
            ));
        }
        out
    }

    /// The record's window: after its start and longer than the minimum, within one billing
    /// period, not in the future, and overlapping the instance's life. `None` when its times are
    /// no instants at all.
    fn check_window(&self, at: &str, record: &RecordBody, found: &mut Findings) -> Option<Window> {
        let (start, end) = (record.start_time, record.end_time);
        let mut refusals: Vec<(&str, Code, String)> = Vec::new();
        if start < 0 || end <= start {
            let message = format!("EndTime {end} must be after StartTime {start}");
            refusals.push(("EndTime", Code::InvalidWindow, message));
        } else if end - start <= MIN_WINDOW_SECONDS {
            let message = format!("the window must be longer than {MIN_WINDOW_SECONDS} s");
            refusals.push(("EndTime", Code::WindowTooShort, message));
        }
        let (Some(start_at), Some(end_at)) = (
            DateTime::from_timestamp(start, 0),
            DateTime::from_timestamp(end, 0),
        ) else {
            refusals.push((
                "StartTime",
                Code::InvalidWindow,
                "not a valid Unix time".into(),
            ));
            for (field, code, message) in refusals {
                found.error(at, field, code, message);
            }
            return None;
        };
        if refusals.is_empty()
            && !window_within_one_period(self.billing_period, self.tz, start_at, end_at)
        {
            let message = "a record lies within one billing period".into();
            refusals.push(("EndTime", Code::WindowSpansPeriods, message));
        }
        if end > self.now.timestamp() + FUTURE_SKEW_SECONDS {
            let message = "usage cannot end in the future".into();
            refusals.push(("EndTime", Code::WindowInFuture, message));
        }
        // A window overlapping the instance's life is its usage, even when it is the whole
        // first (or last) hour a meter aligns its windows to; only one wholly outside it is not.
        if end_at <= self.instance_created() {
            let message = "the window ends before the instance was ordered".into();
            refusals.push(("EndTime", Code::UsageBeforeOrder, message));
        }
        if self.instance.released().is_some_and(|r| start_at >= r) {
            let message = "the window starts after the instance was released".into();
            refusals.push(("StartTime", Code::UsageAfterRelease, message));
        }
        let valid = refusals.is_empty();
        for (field, code, message) in refusals {
            found.error(at, field, code, message);
        }
        Some(Window {
            start,
            end,
            period: Period::containing(self.billing_period, self.tz, start_at),
            valid,
        })
    }

    /// The record's entities: at least one, at most one per billable item a product may have
    /// (more is refused before any is looked at, so a record's work is bounded by a constant,
    /// not by the push); within the bound, each an item the provider pushes, once, with a value.
    fn check_entities(
        &self,
        at: &str,
        record: &RecordBody,
        window: &Window,
        found: &mut Findings,
    ) -> Vec<UsageRecord> {
        if record.entities.is_empty() {
            found.error(at, "Entities", Code::Required, "at least one entity");
        }
        let entities = if record.entities.len() > BILLABLE_ITEMS_MAX {
            let message = format!(
                "at most {BILLABLE_ITEMS_MAX} entities (one per billable item), got {}",
                record.entities.len()
            );
            found.error(at, "Entities", Code::TooMany, message);
            &[][..]
        } else {
            &record.entities[..]
        };
        let mut keys = Seen::default();
        let mut out = Vec::new();
        for (j, entity) in entities.iter().enumerate() {
            let field = format!("Entities[{j}]");
            self.check_key(at, &field, entity, found);
            if !keys.first(&entity.key) {
                let message = "the key appears twice in this record";
                found.error(at, &format!("{field}.Key"), Code::Duplicate, message);
            }
            let value = parse_value(&entity.value)
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    i64::try_from(v)
                        .ok()
                        .filter(|v| *v <= MAX_VALUE)
                        .ok_or_else(|| format!("at most {MAX_VALUE}"))
                });
            match value {
                Ok(value) if window.valid => out.push(UsageRecord {
                    origin: format!("{at}.Entities"),
                    item_code: entity.key.clone(),
                    start_time: window.start,
                    end_time: window.end,
                    value,
                    scale: 0,
                    period_start: window.period.start.timestamp(),
                }),
                Ok(_) => {}
                Err(why) => found.error(at, &format!("{field}.Value"), Code::InvalidValue, why),
            }
        }
        out
    }

    /// An entity's key names an item in effect for the instance that the provider pushes.
    fn check_key(&self, at: &str, field: &str, entity: &EntityBody, found: &mut Findings) {
        let key = &entity.key;
        let (code, message) = match self.items.iter().find(|s| s.item.code().as_str() == key) {
            None => (
                Code::UnknownBillableItem,
                format!("{key:?} is not a billable item in effect for this instance"),
            ),
            Some(s) if s.reporting != Some(ReportingMethod::ServiceProvider) => (
                Code::ItemNotReportedByProvider,
                format!("{key:?} is reported by the platform, not pushed"),
            ),
            Some(_) => return,
        };
        found.error(at, &format!("{field}.Key"), code, message);
    }
}

fn invalid(field: &str, code: Code, message: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, code, message)])
}

/// Validates a platform bill report into the usage record of its item and period: the period
/// must be a period of the product the instance lived in, not closed for late data, and the
/// amount whole cents.
pub(crate) fn platform_bill_record(
    ctx: &MeteringContext,
    bill: &PlatformBill,
) -> ApiResult<UsageRecord> {
    let period = bill_period(ctx, bill.period_start)?;
    let item = bill_item(ctx.items, bill.item_code.as_deref())?;
    let cents = Cents::from_decimal(bill.amount)
        .filter(|c| (0..=MAX_VALUE).contains(&c.0))
        .ok_or_else(|| {
            invalid(
                "amount",
                Code::InvalidAmount,
                "a non-negative amount with at most 2 decimal places",
            )
        })?;
    if period.start.timestamp() > ctx.now.timestamp() {
        return Err(invalid(
            "period_start",
            Code::WindowInFuture,
            "the period has not started",
        ));
    }
    // Only periods the instance lived in are ever billed: a bill for another would be lost.
    if ctx.instance.created().is_some_and(|c| period.end <= c) {
        return Err(invalid(
            "period_start",
            Code::UsageBeforeOrder,
            "the instance did not exist yet",
        ));
    }
    if ctx.instance.released().is_some_and(|r| r <= period.start) {
        return Err(invalid(
            "period_start",
            Code::UsageAfterRelease,
            "the instance was released before this period",
        ));
    }
    if ctx.now >= period.closes_at(ctx.billing_period, ctx.tz) {
        return Err(ApiError::new(
            Code::PeriodClosed,
            "the period is closed for late data",
        ));
    }
    let (start, end) = (period.start.timestamp(), period.end.timestamp());
    if ctx.instance.suspended_during(start, end) {
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

/// The period a platform bill is for: one of the product's, by its start.
fn bill_period(ctx: &MeteringContext, start: DateTime<Utc>) -> ApiResult<Period> {
    Period::from_start(ctx.billing_period, ctx.tz, start).ok_or_else(|| {
        invalid(
            "period_start",
            Code::InvalidPeriodStart,
            "not the start of a billing period",
        )
    })
}

/// The item a platform bill is for: the one named, or the instance's only Bill-sourced item.
fn bill_item<'a>(items: &'a [ItemSettings], code: Option<&str>) -> ApiResult<&'a ItemSettings> {
    let mut bill_items = items
        .iter()
        .filter(|s| s.reporting == Some(ReportingMethod::ComputeNest(PlatformSource::Bill)));
    match code {
        Some(code) => bill_items
            .find(|s| s.item.code().as_str() == code)
            .ok_or_else(|| {
                invalid(
                    "item_code",
                    Code::UnknownBillableItem,
                    "not an in-effect item of the Bill source",
                )
            }),
        None => match (bill_items.next(), bill_items.next()) {
            (Some(only), None) => Ok(only),
            _ => Err(invalid(
                "item_code",
                Code::UnknownBillableItem,
                "name the item: the instance has no single Bill-sourced item",
            )),
        },
    }
}
