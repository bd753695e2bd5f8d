//! A bill line's usage (docs/RULES.md R15.10): the exact records the line summed — pushed by
//! the provider, reported as platform bill data, or measured by the platform (running-time
//! intervals, Prometheus samples) — paged, under the bill's tenancy. Nothing can be added to a
//! billed period (pushes and platform reports check the billing cursor), so the records of the
//! line's item in its period are exactly those the bill run priced.

use rust_decimal::Decimal;
use serde::Serialize;

use crate::billing::{self, BillLine};
use crate::error::{ApiError, ApiResult};
use crate::identity::Principal;
use crate::metering::{self, StoredUsage};
use crate::platform::storage::Database;
use crate::sales::{PlatformSource, ReportingMethod};

/// What kind of record a line summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RecordKind {
    /// Pushed by the provider (`PushMeteringData`).
    Pushed,
    /// Bill data the platform reported.
    PlatformBill,
    /// Running time the platform measured over the instance's running intervals.
    Interval,
    /// An increase the platform read from the provider's Prometheus.
    Sample,
}

/// One page of a line's records.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LineUsage {
    pub bill_id: String,
    pub item_code: String,
    pub price_unit: String,
    /// The line's quantity as the bill shows it (at most 6 decimals) and exactly.
    pub line_quantity: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_quantity_exact: Option<String>,
    pub kind: RecordKind,
    pub items: Vec<StoredUsage>,
    /// The sum of this page's values, in the unit they were reported in: the pages' totals add
    /// up to the line's quantity once converted to its price unit.
    pub page_total: Decimal,
    pub next_cursor: Option<String>,
}

/// The records behind the line of `item` of a bill the caller may see (404 for another
/// tenant's bill or an item the bill has no line of).
pub(crate) fn line_usage(
    db: &dyn Database,
    caller: &Principal,
    bill_id: &str,
    item: &str,
    cursor: Option<&str>,
    limit: usize,
) -> ApiResult<LineUsage> {
    let bill = billing::find(db, caller, bill_id)?;
    let line: &BillLine = bill
        .lines
        .iter()
        .find(|l| l.code == item)
        .ok_or_else(|| ApiError::not_found("bill line"))?;
    let period_start = bill.period_start.timestamp();
    let page = metering::line_records(db, &bill.instance_id, period_start, item, cursor, limit)?;
    Ok(LineUsage {
        kind: kind_of(db, &bill, item)?,
        page_total: page.records.iter().map(|r| r.value).sum(),
        bill_id: bill.id.clone(),
        item_code: line.code.clone(),
        price_unit: line.price_unit.clone(),
        line_quantity: line.quantity,
        line_quantity_exact: line.quantity_exact.clone(),
        items: page.records,
        next_cursor: page.next_cursor,
    })
}

/// How the line's item is reported, by the terms the bill was priced with.
fn kind_of(db: &dyn Database, bill: &billing::Bill, item: &str) -> ApiResult<RecordKind> {
    let instances = crate::orders::find_instances(db, std::slice::from_ref(&bill.instance_id))?;
    let instance = instances
        .get(&bill.instance_id)
        .ok_or_else(|| ApiError::not_found("instance"))?;
    let terms = crate::orders::terms(db, instance)?;
    let reporting = terms
        .items
        .iter()
        .find(|s| s.item.code().as_str() == item)
        .and_then(|s| s.reporting.as_ref());
    Ok(match reporting {
        Some(ReportingMethod::ComputeNest(source)) => match source {
            PlatformSource::Time => RecordKind::Interval,
            PlatformSource::Prometheus(_) => RecordKind::Sample,
            PlatformSource::Bill => RecordKind::PlatformBill,
        },
        _ => RecordKind::Pushed,
    })
}
