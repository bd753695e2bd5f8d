//! Metering ingestion compatible with Compute Nest's `PushMeteringData` (SPEC §10).
//!
//! A push is all-or-nothing: every record is validated first and any invalid one refuses the
//! whole request, naming the record and field. Accepted records are written in one transaction;
//! a record is identified by (instance, key, StartTime, EndTime), so a retried push counts once,
//! and the same identity with another value is refused rather than silently overwritten.

pub mod platform_usage;
pub mod units;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::metering::units::parse_value;
use crate::orders::Instance;
use crate::period::BillingPeriod;
use crate::period::{Period, window_within_one_period};
use crate::platform::storage::{Database, Value as SqlValue};
use crate::sales::{ItemSettings, ReportingMethod};
use crate::validate::parse_json;

/// The most records one push may carry, as in `PushMeteringData`.
pub const MAX_RECORDS: usize = 100;
/// Windows of hour and day products are longer than this (seconds).
pub const MIN_WINDOW_SECONDS: i64 = 300;
/// The largest value one record may carry (10^15: a petabyte in bytes, a quadrillion calls).
/// Bounding records keeps every period's sum far inside SQLite's 64-bit integers, so one
/// provider's absurd report cannot make totals, reads or bill runs fail.
pub const MAX_VALUE: i64 = 1_000_000_000_000_000;
/// How far in the future an `EndTime` may lie, for clock skew between provider and us.
pub const FUTURE_SKEW_SECONDS: i64 = 60;

/// The body of `POST /api/v1/metering`, in the cloud API's own field names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushMeteringData {
    #[serde(rename = "ServiceInstanceId")]
    pub service_instance_id: String,
    /// The records, as the JSON string the cloud API sends or as the array itself.
    #[serde(rename = "Metering")]
    pub metering: Value,
}

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

/// One validated usage record: an amount of one item over one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRecord {
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

/// Everything the validation of a push needs to know about its instance.
pub struct MeteringContext<'a> {
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
pub fn validate(push: PushMeteringData, ctx: &MeteringContext) -> ApiResult<Vec<UsageRecord>> {
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
        if start_at < created {
            err(
                "StartTime",
                Code::UsageBeforeOrder,
                "the instance did not exist yet".into(),
            );
            window_ok = false;
        }
        if released.is_some_and(|r| end_at > r) {
            err(
                "EndTime",
                Code::UsageAfterRelease,
                "the instance was released before this window ended".into(),
            );
            window_ok = false;
        }
        if record.entities.is_empty() {
            err("Entities", Code::Required, "at least one entity".into());
        }
        let period = Period::containing(ctx.billing_period, ctx.tz, start_at);
        for (j, entity) in record.entities.iter().enumerate() {
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
            if record.entities[..j].iter().any(|o| o.key == entity.key) {
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
    Ok(out)
}

impl MeteringContext<'_> {
    fn instance_created(&self) -> DateTime<Utc> {
        self.instance.created().unwrap_or(self.now)
    }

    fn instance_released(&self) -> Option<DateTime<Utc>> {
        self.instance.released()
    }
}

/// Refuses records for a period the instance has already been billed for (its billing cursor
/// has moved past it). The clock check of [`validate`] closes periods in time; this closes the
/// gap it leaves — a push whose clock read fell just before the close, committing after the bill
/// run — by asking the database, inside the push's transaction.
pub fn check_not_billed(
    db: &dyn Database,
    instance_id: &str,
    records: &[UsageRecord],
) -> ApiResult<()> {
    let rows = db.execute(
        "SELECT next_period_start FROM billing_cursors WHERE instance_id = ?",
        &[instance_id.into()],
    )?;
    let Some(next) = rows.first().map(|r| r.int(0)).transpose()? else {
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

/// Counts of one stored push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stored {
    pub accepted: usize,
    pub duplicates: usize,
}

/// Records per INSERT statement: 4 shared + 6 parameters a row stays under 999, the oldest
/// SQLite limit on bound parameters.
const ROWS_PER_STATEMENT: usize = 150;

/// Writes validated records. Must run in one transaction: a conflicting duplicate aborts the
/// whole push, naming the record.
///
/// The records go in with one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` per
/// [`ROWS_PER_STATEMENT`] (a statement per record cost more to prepare than to run). The rows it
/// returns are the accepted ones; every other record is compared with the stored row of its
/// identity, which is the one stored before or the first of its identity in this push, exactly
/// as if the records were inserted one by one.
pub fn store(
    db: &dyn Database,
    instance_id: &str,
    records: &[UsageRecord],
    source: &str,
    request_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<Stored> {
    let mut stored = Stored {
        accepted: 0,
        duplicates: 0,
    };
    let received_at = crate::platform::clock::rfc3339(now);
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO usage_records (instance_id, item_code, start_time, end_time, value, scale, period_start, source, request_id, received_at) VALUES ",
        );
        let mut params: Vec<SqlValue> = Vec::with_capacity(4 + 6 * chunk.len());
        params.extend([
            instance_id.into(),
            source.into(),
            request_id.into(),
            received_at.clone().into(),
        ]);
        for (i, r) in chunk.iter().enumerate() {
            let p = 5 + 6 * i;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(?1, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?2, ?3, ?4)",
                p,
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5
            ));
            params.extend([
                r.item_code.clone().into(),
                r.start_time.into(),
                r.end_time.into(),
                r.value.into(),
                i64::from(r.scale).into(),
                r.period_start.into(),
            ]);
        }
        sql.push_str(
            " ON CONFLICT (instance_id, item_code, start_time, end_time) DO NOTHING
              RETURNING item_code, start_time, end_time",
        );
        let inserted = db.execute(&sql, &params)?;
        let mut inserted: HashSet<(String, i64, i64)> = inserted
            .iter()
            .map(|row| Ok((row.text(0)?, row.int(1)?, row.int(2)?)))
            .collect::<Result<_, crate::platform::storage::StorageError>>()?;
        // Each identity is inserted at most once: its first record in the push is the accepted one.
        let rest: Vec<&UsageRecord> = chunk
            .iter()
            .filter(|r| !inserted.remove(&(r.item_code.clone(), r.start_time, r.end_time)))
            .collect();
        stored.accepted += chunk.len() - rest.len();
        if rest.is_empty() {
            continue;
        }
        let existing = stored_values(db, instance_id, &rest)?;
        for r in rest {
            let found = existing
                .get(&(r.item_code.clone(), r.start_time, r.end_time))
                .copied();
            if found == Some((r.value, i64::from(r.scale))) {
                stored.duplicates += 1;
                continue;
            }
            let stored_value = found.map_or_else(Default::default, |(v, s)| amount(v, s));
            let mut e = ApiError::new(
                Code::DuplicateRecordConflict,
                format!(
                    "{} ({} {}–{}) was already reported as {stored_value}; a record cannot change",
                    r.origin, r.item_code, r.start_time, r.end_time,
                ),
            );
            e.errors.push(FieldError::new(
                r.origin.clone(),
                Code::DuplicateRecordConflict,
                format!(
                    "{} conflicts with the stored value {stored_value}",
                    r.item_code
                ),
            ));
            return Err(e);
        }
    }
    Ok(stored)
}

type Identity = (String, i64, i64);

/// The stored (value, scale) of these records' identities, in one query.
fn stored_values(
    db: &dyn Database,
    instance_id: &str,
    records: &[&UsageRecord],
) -> ApiResult<HashMap<Identity, (i64, i64)>> {
    let mut sql = String::from(
        "SELECT item_code, start_time, end_time, value, scale FROM usage_records
         WHERE instance_id = ?1 AND (item_code, start_time, end_time) IN (VALUES ",
    );
    let mut params: Vec<SqlValue> = Vec::with_capacity(1 + 3 * records.len());
    params.push(instance_id.into());
    for (i, r) in records.iter().enumerate() {
        let p = 2 + 3 * i;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(?{}, ?{}, ?{})", p, p + 1, p + 2));
        params.extend([
            r.item_code.clone().into(),
            r.start_time.into(),
            r.end_time.into(),
        ]);
    }
    sql.push(')');
    db.execute(&sql, &params)?
        .iter()
        .map(|row| {
            Ok((
                (row.text(0)?, row.int(1)?, row.int(2)?),
                (row.int(3)?, row.int(4)?),
            ))
        })
        .collect::<Result<_, crate::platform::storage::StorageError>>()
        .map_err(Into::into)
}

/// One stored record, as `GET /api/v1/metering/usage` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredUsage {
    pub item_code: String,
    pub start_time: i64,
    pub end_time: i64,
    pub value: rust_decimal::Decimal,
    pub period_start: String,
    pub source: String,
    pub received_at: String,
}

/// An item's usage in one period: the raw sum as pushed, and the quantity in its price unit.
#[derive(Debug, Clone, Serialize)]
pub struct PeriodTotal {
    pub period_start: String,
    pub item_code: String,
    pub raw_total: rust_decimal::Decimal,
    pub quantity: rust_decimal::Decimal,
    pub price_unit: &'static str,
}

/// Records of an instance whose period starts in `[from, to)`, and their per-period totals.
pub fn usage(
    db: &dyn Database,
    instance_id: &str,
    from: i64,
    to: i64,
) -> ApiResult<(Vec<StoredUsage>, Vec<PeriodTotal>)> {
    let rows = db.execute(
        "SELECT item_code, start_time, end_time, value, period_start, source, received_at, scale
         FROM usage_records WHERE instance_id = ? AND period_start >= ? AND period_start < ?
         ORDER BY period_start, item_code, start_time",
        &[instance_id.into(), from.into(), to.into()],
    )?;
    let records = rows
        .iter()
        .map(|r| {
            Ok(StoredUsage {
                item_code: r.text(0)?,
                start_time: r.int(1)?,
                end_time: r.int(2)?,
                value: amount(r.int(3)?, r.int(7)?),
                period_start: crate::platform::clock::rfc3339(
                    DateTime::from_timestamp(r.int(4)?, 0).unwrap_or_default(),
                ),
                source: r.text(5)?,
                received_at: r.text(6)?,
            })
        })
        .collect::<Result<Vec<_>, crate::platform::storage::StorageError>>()?;
    let sums = period_totals(db, instance_id, from, to)?;
    let totals = sums
        .into_iter()
        .map(|(period_start, code, raw_total)| PeriodTotal {
            period_start: crate::platform::clock::rfc3339(
                DateTime::from_timestamp(period_start, 0).unwrap_or_default(),
            ),
            quantity: crate::metering::units::to_price_unit(&code, raw_total),
            price_unit: crate::sales::price_unit(&code),
            item_code: code,
            raw_total,
        })
        .collect();
    Ok((records, totals))
}

/// `value` × 10^-`scale`, exactly.
pub fn amount(value: i64, scale: i64) -> rust_decimal::Decimal {
    rust_decimal::Decimal::new(value, u32::try_from(scale).unwrap_or(0))
}

/// Raw usage totals per (period start, item) of an instance, in the units it was reported in.
/// SQLite sums the integer mantissas per scale; the scales are combined here, exactly.
pub fn period_totals(
    db: &dyn Database,
    instance_id: &str,
    from: i64,
    to: i64,
) -> ApiResult<Vec<(i64, String, rust_decimal::Decimal)>> {
    let rows = db.execute(
        "SELECT period_start, item_code, scale, SUM(value / 1000000000), SUM(value % 1000000000)
         FROM usage_records
         WHERE instance_id = ? AND period_start >= ? AND period_start < ?
         GROUP BY period_start, item_code, scale ORDER BY period_start, item_code",
        &[instance_id.into(), from.into(), to.into()],
    )?;
    let mut out: Vec<(i64, String, rust_decimal::Decimal)> = Vec::new();
    for r in &rows {
        let (start, code, total) = (r.int(0)?, r.text(1)?, split_sum(r, 3, r.int(2)?)?);
        match out.last_mut() {
            Some((s, c, t)) if *s == start && *c == code => *t += total,
            _ => out.push((start, code, total)),
        }
    }
    Ok(out)
}

/// Raw usage totals per item of many (instance, period start) pairs, in the units they were
/// reported in: for each pair, the sums [`period_totals`] gives for that one period. One query
/// per period start and [`IDS_PER_QUERY`] instances (a bill run prices a whole batch at once,
/// and its instances mostly share a period); SQLite walks `usage_records_totals` in order, so
/// the GROUP BY needs no sort.
pub fn totals_of_periods(
    db: &dyn Database,
    periods: &[(&str, i64)],
) -> ApiResult<HashMap<(String, i64), HashMap<String, rust_decimal::Decimal>>> {
    let mut by_start: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for (id, start) in periods {
        by_start.entry(*start).or_default().push(id);
    }
    let mut out: HashMap<(String, i64), HashMap<String, rust_decimal::Decimal>> = HashMap::new();
    for (start, ids) in by_start {
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let mut params: Vec<SqlValue> = Vec::with_capacity(1 + chunk.len());
            params.push(start.into());
            params.extend(chunk.iter().map(|id| SqlValue::from(*id)));
            let rows = db.execute(
                &format!(
                    "SELECT instance_id, item_code, scale, SUM(value / 1000000000),
                            SUM(value % 1000000000) FROM usage_records
                     WHERE period_start = ? AND instance_id IN ({})
                     GROUP BY instance_id, item_code, scale",
                    vec!["?"; chunk.len()].join(", ")
                ),
                &params,
            )?;
            for r in &rows {
                *out.entry((r.text(0)?, start))
                    .or_default()
                    .entry(r.text(1)?)
                    .or_default() += split_sum(r, 3, r.int(2)?)?;
            }
        }
    }
    Ok(out)
}

/// A sum of mantissas that SQLite computed in two halves (`SUM(value / 10^9)` and
/// `SUM(value % 10^9)`, at `col` and `col + 1`): each half stays far inside 64 bits however many
/// records there are, where one `SUM(value)` could overflow and fail the query. Joined exactly.
fn split_sum(
    row: &crate::platform::storage::Row,
    col: usize,
    scale: i64,
) -> ApiResult<rust_decimal::Decimal> {
    let mantissa = i128::from(row.int(col)?) * 1_000_000_000 + i128::from(row.int(col + 1)?);
    rust_decimal::Decimal::try_from_i128_with_scale(mantissa, u32::try_from(scale).unwrap_or(0))
        .map_err(|_| ApiError::internal("a usage total beyond 28 digits"))
}

/// Instances per totals query: below 999, the oldest SQLite limit on bound parameters.
const IDS_PER_QUERY: usize = 500;

/// Validates a platform bill report into the usage record of its item and period: the period
/// must be a period of the product, not closed for late data, and the amount whole cents.
#[allow(clippy::too_many_arguments)]
pub fn platform_bill_record(
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
                    source: crate::sales::PlatformSource::Bill,
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
    let cents = crate::orders::ledger::Cents::from_decimal(amount)
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
