//! Previews: what a period would cost now, priced as a bill run would but written nowhere.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::billing::{BillLine, Priced, ResourceLine, pricing, store};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::metering::platform_usage::{self, running_seconds};
use crate::metering::{self, UsageRecord};
use crate::money::Cents;
use crate::orders::instance::Instance;
use crate::orders::{self, Terms};
use crate::period::Period;
use crate::platform::clock::rfc3339;
use crate::platform::outbound::Outbound;
use crate::platform::storage::Database;

/// What one period of an instance costs, or would cost if billed now
/// (`POST /api/v1/billing/preview`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Preview {
    pub instance_id: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub period_start: DateTime<Utc>,
    #[serde(with = "crate::platform::clock::instant")]
    pub period_end: DateTime<Utc>,
    /// Whether the period is closed for late data.
    pub closed: bool,
    /// The period's bill, once billed: the preview is then what the bill says.
    pub bill_id: Option<String>,
    pub currency: String,
    pub product_fees: Cents,
    pub resource_fees: Cents,
    pub total: Cents,
    pub test: bool,
    pub lines: Vec<BillLine>,
    pub resource_lines: Vec<ResourceLine>,
}

/// What a period would cost now, computed as a run would but written nowhere. For an open
/// period, running time counts up to `now`.
pub(crate) fn preview(
    db: &dyn Database,
    out: &dyn Outbound,
    tz: Tz,
    instance: &Instance,
    period_start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> ApiResult<Preview> {
    let terms = orders::terms_for_period(db, instance, period_start.timestamp())?;
    let tz = instance.zone(tz);
    let period = Period::from_start(terms.kind, tz, period_start).ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            "period_start",
            Code::InvalidPeriodStart,
            "not the start of a billing period of this product",
        )])
    })?;
    let summary = |priced: Priced, bill_id: Option<String>| Preview {
        instance_id: instance.id.clone(),
        period_start: period.start,
        period_end: period.end,
        closed: period.is_closed(terms.kind, tz, now),
        bill_id,
        currency: terms.currency.clone(),
        product_fees: priced.product_fees,
        resource_fees: priced.resource_fees,
        total: priced.total,
        test: instance.test,
        lines: priced.lines,
        resource_lines: priced.resource_lines,
    };
    // A billed period costs what its bill says; nothing is asked of the provider's Prometheus.
    if let Some(bill) = store::find_by_period(db, &instance.id, period.start.timestamp())? {
        let id = bill.id.clone();
        return Ok(summary(bill.into(), Some(id)));
    }
    let mut clipped = instance.clone();
    for i in &mut clipped.running_intervals {
        i.ended_at = Some(i.ended_at.unwrap_or(now.timestamp()).min(now.timestamp()));
    }
    let collected = platform_usage::collect(&clipped, &terms, &period, out).map_err(|reason| {
        // The reason names the provider's endpoint and the network error: for the log only.
        eprintln!(
            "preview of {} {}: {reason}",
            instance.id,
            rfc3339(period.start)
        );
        ApiError::new(
            Code::PlatformSourceUnavailable,
            "the usage metrics for this period could not be read; try again later",
        )
    })?;
    // Usage already collected for a closed period is stored; do not count it twice.
    let stored: Vec<String> = metering::period_totals(
        db,
        &instance.id,
        period.start.timestamp(),
        period.start.timestamp() + 1,
    )?
    .into_iter()
    .map(|(_, code, _)| code)
    .collect();
    let extra: Vec<UsageRecord> = collected
        .into_iter()
        .filter(|r| !stored.contains(&r.item_code))
        .collect();
    let running = running_seconds(&clipped.running_intervals, &period);
    Ok(summary(
        price_period(db, instance, &terms, &period, &extra, running)?,
        None,
    ))
}

/// Prices one period from the stored usage plus `extra` (platform usage not stored, for
/// previews) and the seconds the instance ran in it.
fn price_period(
    db: &dyn Database,
    instance: &Instance,
    terms: &Terms,
    period: &Period,
    extra: &[UsageRecord],
    running: i64,
) -> ApiResult<Priced> {
    let start = period.start.timestamp();
    let mut raw: HashMap<String, Decimal> = HashMap::new();
    for (_, code, total) in metering::period_totals(db, &instance.id, start, start + 1)? {
        *raw.entry(code).or_default() += total;
    }
    for r in extra {
        *raw.entry(r.item_code.clone()).or_default() +=
            metering::amount(r.value, i64::from(r.scale));
    }
    pricing::price_period(terms, &raw, &instance.resources, running)
}
