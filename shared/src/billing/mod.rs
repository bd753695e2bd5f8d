//! Bill runs (SPEC §11): every closed, unbilled (instance, period) becomes exactly one bill,
//! priced by the product's tiers, and — unless it is a test order's — one ledger deduction in the
//! same transaction.
//!
//! Exactly-once rests on two guards, both in the database: each instance's billing cursor (the
//! next period to bill) is advanced by compare-and-set in the transaction that writes the bill,
//! and `bills` is UNIQUE on (instance, period). Two runs racing, a run repeated by the scheduler,
//! or a run that died halfway all leave one bill per (instance, period).

pub mod pricing;

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::Principal;
use crate::listing::steps::{Tier, TierMode};
use crate::metering::platform_usage::{self, PROMETHEUS_SCALE};
use crate::metering::units::to_price_unit;
use crate::metering::{self, UsageRecord};
use crate::orders::ledger::{self as accounts, ACCOUNT_CURRENCY, Cents, EntryKind, Posting};
use crate::orders::{self, Instance};
use crate::period::BillingPeriod;
use crate::period::Period;
use crate::platform::clock::rfc3339;
use crate::platform::ids::IdSequence;
use crate::platform::outbound::Outbound;
use crate::platform::storage::{Database, Row, Value, transaction};
use crate::sales::{ItemSettings, PlatformSource, ReportingMethod};
use pricing::TierCharge;

/// How many (instance, period) pairs one transaction bills: large enough that commits do not
/// dominate, small enough that a failed batch redoes little and the write lock is held for a
/// fraction of a second (~0.1 s on the benchmark machine, docs/BENCHMARKS.md). Bill and ledger
/// ids are random after their millisecond, so each batch writes into pages all over those
/// indexes; fewer, larger batches rewrite each page fewer times (500 → 2,000 took 100,000
/// instance-periods from ~95 to ~60 µs each).
pub const BATCH: usize = 2_000;

/// One priced billable item of a bill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillLine {
    pub code: String,
    pub name: String,
    pub price_unit: String,
    pub tier_mode: TierMode,
    /// Usage in the item's price unit.
    pub quantity: Decimal,
    /// Truncated to 2 decimals.
    pub amount: Decimal,
    pub breakdown: Vec<TierCharge>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bill {
    pub id: String,
    pub instance_id: String,
    pub owner_id: String,
    pub provider_id: String,
    pub product_id: String,
    pub period_start: String,
    pub period_end: String,
    pub currency: String,
    pub total: Cents,
    /// A test order's bill: shown, never deducted.
    pub test: bool,
    pub lines: Vec<BillLine>,
    pub created_at: String,
}

/// What one instance's terms say: its product's period kind, currency and in-effect items.
pub struct Terms {
    pub kind: BillingPeriod,
    pub currency: String,
    pub items: Vec<ItemSettings>,
}

pub fn terms(db: &dyn Database, instance: &Instance) -> ApiResult<Terms> {
    let (kind, currency, items) = orders::billing_terms(db, instance)?;
    Ok(Terms {
        kind,
        currency,
        items,
    })
}

/// Usage the platform measured for one (instance, period), gathered before the write
/// transaction (a Prometheus query must not run while holding the database's write lock).
fn collect(
    instance: &Instance,
    terms: &Terms,
    period: &Period,
    out: &dyn Outbound,
) -> Result<Vec<UsageRecord>, String> {
    let mut records = Vec::new();
    for s in &terms.items {
        let Some(ReportingMethod::ComputeNest { source, prometheus }) = &s.reporting else {
            continue;
        };
        let (value, scale) = match source {
            PlatformSource::Time => (
                platform_usage::running_seconds(&instance.running_intervals, period),
                0,
            ),
            PlatformSource::Prometheus => {
                let q = prometheus
                    .as_ref()
                    .ok_or("a Prometheus item without its query")?;
                let d = platform_usage::prometheus_increase(out, q, &instance.id, period)?;
                let mantissa = d
                    .checked_mul(Decimal::from(10i64.pow(PROMETHEUS_SCALE)))
                    .and_then(|m| i64::try_from(m.trunc()).ok())
                    .filter(|m| *m <= metering::MAX_VALUE)
                    .ok_or_else(|| format!("an increase of {d} is out of range"))?;
                (mantissa, PROMETHEUS_SCALE)
            }
            // Reported through POST /api/v1/metering/platform-bills.
            PlatformSource::Bill => continue,
        };
        records.push(UsageRecord {
            origin: "platform".to_owned(),
            item_code: s.item.code().as_str().to_owned(),
            start_time: period.start.timestamp(),
            end_time: period.end.timestamp(),
            value,
            scale,
            period_start: period.start.timestamp(),
        });
    }
    Ok(records)
}

/// Prices one period from the stored usage plus `extra` (platform usage not stored, for previews).
fn price_period(
    db: &dyn Database,
    instance: &Instance,
    terms: &Terms,
    period: &Period,
    extra: &[UsageRecord],
) -> ApiResult<(Vec<BillLine>, Cents)> {
    let start = period.start.timestamp();
    let mut raw: HashMap<String, Decimal> = HashMap::new();
    for (_, code, total) in metering::period_totals(db, &instance.id, start, start + 1)? {
        *raw.entry(code).or_default() += total;
    }
    for r in extra {
        *raw.entry(r.item_code.clone()).or_default() +=
            metering::amount(r.value, i64::from(r.scale));
    }
    price_totals(terms, &raw)
}

/// Prices raw usage totals per item code by the terms' in-effect items.
fn price_totals(
    terms: &Terms,
    raw: &HashMap<String, Decimal>,
) -> ApiResult<(Vec<BillLine>, Cents)> {
    let mut lines = Vec::new();
    for s in &terms.items {
        let code = s.item.code().as_str();
        let quantity = to_price_unit(code, raw.get(code).copied().unwrap_or_default());
        let priced = price_line(s.item.tiers(), s.item.tier_mode(), quantity)?;
        lines.push(BillLine {
            code: code.to_owned(),
            name: s.item.name().to_owned(),
            price_unit: s.price_unit.to_owned(),
            tier_mode: s.item.tier_mode(),
            quantity,
            amount: priced.amount,
            breakdown: priced.breakdown,
        });
    }
    let amounts: Vec<Decimal> = lines.iter().map(|l| l.amount).collect();
    let total = pricing::bill_total(&amounts).map_err(ApiError::internal)?;
    let total = Cents::from_decimal(total)
        .ok_or_else(|| ApiError::internal("a bill total beyond cents"))?;
    Ok((lines, total))
}

fn price_line(tiers: &[Tier], mode: TierMode, quantity: Decimal) -> ApiResult<pricing::PricedLine> {
    pricing::price(tiers, mode, quantity).map_err(ApiError::internal)
}

/// The next period to bill after `period`, or `None` once the instance's last period is billed
/// (the period in which it was released).
fn after(instance: &Instance, terms: &Terms, period: &Period, tz: Tz) -> Option<Period> {
    match instance.released() {
        Some(r) if r < period.end => None,
        _ => Some(period.next(terms.kind, tz)),
    }
}

/// Gives every instance without one a billing cursor at the period it was created in.
fn ensure_cursors(db: &dyn Database, tz: Tz) -> ApiResult<()> {
    let rows = db.execute(
        "SELECT id FROM instances WHERE id NOT IN (SELECT instance_id FROM billing_cursors)",
        &[],
    )?;
    for row in &rows {
        let instance = orders::find_unscoped(db, &row.text(0)?)?;
        open_cursor(db, &instance, tz)?;
    }
    Ok(())
}

/// Starts billing an instance: its first period is the one it was ordered in.
pub fn open_cursor(db: &dyn Database, instance: &Instance, tz: Tz) -> ApiResult<()> {
    let terms = terms(db, instance)?;
    let created = instance
        .created()
        .ok_or_else(|| ApiError::internal("an instance without running intervals"))?;
    let first = Period::containing(terms.kind, tz, created);
    db.execute(
        "INSERT INTO billing_cursors (instance_id, next_period_start, next_close_at) VALUES (?, ?, ?)
         ON CONFLICT (instance_id) DO NOTHING",
        &[
            instance.id.clone().into(),
            first.start.timestamp().into(),
            first.closes_at(terms.kind, tz).timestamp().into(),
        ],
    )?;
    Ok(())
}

/// An (instance, period) the run could not bill this time, and why; it is retried next run.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub instance_id: String,
    pub period_start: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub as_of: String,
    pub bills_written: usize,
    /// Test orders' bills among them (not deducted).
    pub test_bills: usize,
    /// Total deducted from customers' accounts.
    pub deducted: Decimal,
    pub failures: Vec<Failure>,
}

struct Prepared {
    instance: Instance,
    /// Shared by the batch's instances of one product, template and plan.
    terms: Rc<Terms>,
    period: Period,
    next: Option<Period>,
    collected: Vec<UsageRecord>,
}

/// Bills every closed, unbilled (instance, period) as of `as_of`, oldest first, in batches.
/// `as_of` decides which periods are closed; `now` is when the bills and ledger entries are
/// written (a run as of yesterday still records today).
pub fn run(
    db: &dyn Database,
    out: &dyn Outbound,
    tz: Tz,
    as_of: DateTime<Utc>,
    now: DateTime<Utc>,
    actor: &Principal,
) -> ApiResult<RunReport> {
    transaction(db, |db| ensure_cursors(db, tz))?;
    let mut report = RunReport {
        as_of: rfc3339(as_of),
        ..RunReport::default()
    };
    // Keyset over (next_close_at, instance_id): a billed instance's cursor moves past the key
    // and comes round again for its next closed period; a failed one stays behind it.
    let mut key: (i64, String) = (i64::MIN, String::new());
    loop {
        let due = db.execute(
            "SELECT instance_id, next_period_start, next_close_at FROM billing_cursors
             WHERE next_close_at IS NOT NULL AND next_close_at <= ?1
               AND (next_close_at > ?2 OR (next_close_at = ?2 AND instance_id > ?3))
             ORDER BY next_close_at, instance_id LIMIT ?4",
            &[
                as_of.timestamp().into(),
                key.0.into(),
                key.1.clone().into(),
                (BATCH as i64).into(),
            ],
        )?;
        let Some(last) = due.last() else { break };
        key = (last.int(2)?, last.text(0)?);
        let batch = prepare(db, out, tz, &due, &mut report.failures)?;
        let (written, failed) = transaction(db, |db| write_batch(db, tz, &batch, actor, now))?;
        report.failures.extend(failed);
        for bill in written {
            report.bills_written += 1;
            if bill.test {
                report.test_bills += 1;
            } else {
                report.deducted += bill.total.to_decimal();
            }
        }
    }
    Ok(report)
}

/// Reads what billing a batch needs, before its write transaction: its instances (two queries),
/// each distinct (product, template, plan)'s terms once, and the platform's usage. The terms are
/// read per batch, as before per instance, so a change of terms is seen by the next batch.
fn prepare(
    db: &dyn Database,
    out: &dyn Outbound,
    tz: Tz,
    due: &[Row],
    failures: &mut Vec<Failure>,
) -> ApiResult<Vec<Prepared>> {
    let ids = due
        .iter()
        .map(|row| row.text(0))
        .collect::<Result<Vec<_>, _>>()?;
    let mut instances = orders::find_many_unscoped(db, &ids)?;
    let mut cache: HashMap<(String, String, Option<String>), Rc<Terms>> = HashMap::new();
    let mut batch = Vec::with_capacity(due.len());
    for (row, id) in due.iter().zip(&ids) {
        let instance = instances
            .remove(id)
            .ok_or_else(|| ApiError::not_found("instance"))?;
        let key = (
            instance.product_id.clone(),
            instance.template_id.clone(),
            instance.plan_id.clone(),
        );
        let start = DateTime::from_timestamp(row.int(1)?, 0)
            .ok_or_else(|| ApiError::internal("bad cursor"))?;
        let mut fail = |reason: String| {
            failures.push(Failure {
                instance_id: instance.id.clone(),
                period_start: rfc3339(start),
                reason,
            })
        };
        // One instance's problem is reported and left for the next run; it never stops the
        // billing of the others.
        let terms = match cache.get(&key) {
            Some(t) => t.clone(),
            None => match terms(db, &instance) {
                Ok(t) => {
                    let t = Rc::new(t);
                    cache.insert(key, t.clone());
                    t
                }
                Err(e) => {
                    fail(format!("its terms could not be read: {}", e.detail));
                    continue;
                }
            },
        };
        let Some(period) = Period::from_start(terms.kind, tz, start) else {
            fail(
                "its next period does not start on a period boundary of the product (was the \
                  billing period or time zone changed?)"
                    .into(),
            );
            continue;
        };
        match collect(&instance, &terms, &period, out) {
            Ok(collected) => batch.push(Prepared {
                next: after(&instance, &terms, &period, tz),
                instance,
                terms,
                period,
                collected,
            }),
            Err(reason) => failures.push(Failure {
                instance_id: instance.id.clone(),
                period_start: rfc3339(period.start),
                reason,
            }),
        }
    }
    Ok(batch)
}

/// Cursors per compare-and-set statement (4 parameters each, below SQLite's oldest limit of 999).
const CURSORS_PER_STATEMENT: usize = 200;
/// Bills per INSERT statement (12 parameters each).
const BILLS_PER_STATEMENT: usize = 80;

/// Writes a batch in the caller's transaction. Exactly-once rests on the cursors: one
/// compare-and-set per batch chunk moves each due cursor off its period, and only the instances
/// whose cursor moved (RETURNING) are billed — a racing run that moved it first bills it instead.
/// `bills`' UNIQUE (instance, period) backs that up: a second bill fails the whole batch.
fn write_batch(
    db: &dyn Database,
    tz: Tz,
    batch: &[Prepared],
    actor: &Principal,
    now: DateTime<Utc>,
) -> ApiResult<(Vec<Bill>, Vec<Failure>)> {
    // Price first, from the usage stored so far plus what the platform measured: nothing can be
    // added meanwhile (this transaction holds the write lock, and pushes check the cursor). An
    // instance whose usage cannot be priced is reported and keeps its cursor.
    let periods: Vec<(&str, i64)> = batch
        .iter()
        .map(|p| (p.instance.id.as_str(), p.period.start.timestamp()))
        .collect();
    let totals = metering::totals_of_periods(db, &periods)?;
    let none = HashMap::new();
    let mut failures = Vec::new();
    let mut priced: Vec<(&Prepared, Vec<BillLine>, Cents)> = Vec::with_capacity(batch.len());
    for p in batch {
        let mut raw = totals
            .get(&(p.instance.id.clone(), p.period.start.timestamp()))
            .unwrap_or(&none)
            .clone();
        for r in &p.collected {
            *raw.entry(r.item_code.clone()).or_default() +=
                metering::amount(r.value, i64::from(r.scale));
        }
        match price_totals(&p.terms, &raw) {
            Ok((lines, total)) => priced.push((p, lines, total)),
            Err(e) => failures.push(Failure {
                instance_id: p.instance.id.clone(),
                period_start: rfc3339(p.period.start),
                reason: format!("its usage could not be priced: {}", e.detail),
            }),
        }
    }
    let mut moved: HashSet<String> = HashSet::with_capacity(priced.len());
    for chunk in priced.chunks(CURSORS_PER_STATEMENT) {
        let mut params: Vec<Value> = Vec::with_capacity(4 * chunk.len());
        for (p, _, _) in chunk {
            let (next_start, next_close) = match &p.next {
                Some(n) => (
                    n.start.timestamp(),
                    Some(n.closes_at(p.terms.kind, tz).timestamp()),
                ),
                None => (p.period.end.timestamp(), None),
            };
            params.extend([
                p.instance.id.clone().into(),
                p.period.start.timestamp().into(),
                next_start.into(),
                next_close.into(),
            ]);
        }
        // The compare-and-set: only the run that moves the cursor off this period bills it.
        let rows = db.execute(
            &format!(
                "UPDATE billing_cursors AS c SET next_period_start = v.column3, next_close_at = v.column4
                 FROM (VALUES {}) AS v
                 WHERE c.instance_id = v.column1 AND c.next_period_start = v.column2
                 RETURNING instance_id",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
            ),
            &params,
        )?;
        for row in &rows {
            moved.insert(row.text(0)?);
        }
    }
    let billed: Vec<(&Prepared, Vec<BillLine>, Cents)> = priced
        .into_iter()
        .filter(|(p, _, _)| moved.contains(&p.instance.id))
        .collect();
    let mut ids = IdSequence::new("bill", now);
    let mut written = Vec::with_capacity(billed.len());
    for (p, lines, total) in &billed {
        if !p.collected.is_empty() {
            metering::store(
                db,
                &p.instance.id,
                &p.collected,
                "platform",
                "bill-run",
                now,
            )?;
        }
        written.push(Bill {
            id: ids.next_id(),
            instance_id: p.instance.id.clone(),
            owner_id: p.instance.owner_id.clone(),
            provider_id: p.instance.provider_id.clone(),
            product_id: p.instance.product_id.clone(),
            period_start: rfc3339(p.period.start),
            period_end: rfc3339(p.period.end),
            currency: p.terms.currency.clone(),
            total: *total,
            test: p.instance.test,
            lines: lines.clone(),
            created_at: rfc3339(now),
        });
    }
    let periods: Vec<&Period> = billed.iter().map(|(p, _, _)| &p.period).collect();
    insert(db, &written, &periods)?;
    let deductions: Vec<Posting> = written
        .iter()
        .filter(|b| !b.test && b.total.0 > 0 && b.currency == ACCOUNT_CURRENCY)
        .map(|b| Posting {
            customer_id: &b.owner_id,
            kind: EntryKind::Bill,
            amount: Cents(-b.total.0),
            reference: Some(&b.id),
        })
        .collect();
    accounts::post_many(db, &deductions, &actor.id, now)?;
    Ok((written, failures))
}

/// Inserts bills, [`BILLS_PER_STATEMENT`] per statement; `periods[i]` is `bills[i]`'s period.
fn insert(db: &dyn Database, bills: &[Bill], periods: &[&Period]) -> ApiResult<()> {
    for (chunk, chunk_periods) in bills
        .chunks(BILLS_PER_STATEMENT)
        .zip(periods.chunks(BILLS_PER_STATEMENT))
    {
        let mut params: Vec<Value> = Vec::with_capacity(12 * chunk.len());
        for (bill, period) in chunk.iter().zip(chunk_periods) {
            let lines = serde_json::to_string(&bill.lines).map_err(ApiError::internal)?;
            params.extend([
                bill.id.clone().into(),
                bill.instance_id.clone().into(),
                bill.owner_id.clone().into(),
                bill.provider_id.clone().into(),
                bill.product_id.clone().into(),
                period.start.timestamp().into(),
                period.end.timestamp().into(),
                bill.currency.clone().into(),
                bill.total.0.into(),
                i64::from(bill.test).into(),
                lines.into(),
                bill.created_at.clone().into(),
            ]);
        }
        db.execute(
            &format!(
                "INSERT INTO bills (id, instance_id, owner_id, provider_id, product_id, period_start, period_end,
                                    currency, total_cents, test, lines, created_at)
                 VALUES {}",
                vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
            ),
            &params,
        )?;
    }
    Ok(())
}

/// What a period would cost now, computed as a run would but written nowhere. For an open
/// period, running time counts up to `now`.
pub fn preview(
    db: &dyn Database,
    out: &dyn Outbound,
    tz: Tz,
    instance: &Instance,
    period_start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> ApiResult<serde_json::Value> {
    let terms = terms(db, instance)?;
    let period = Period::from_start(terms.kind, tz, period_start).ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            "period_start",
            Code::InvalidPeriodStart,
            "not the start of a billing period of this product",
        )])
    })?;
    let summary = |lines: &[BillLine], total: Cents, bill_id: Option<&str>| {
        serde_json::json!({
            "instance_id": instance.id,
            "period_start": rfc3339(period.start),
            "period_end": rfc3339(period.end),
            "closed": period.is_closed(terms.kind, tz, now),
            "bill_id": bill_id,
            "currency": terms.currency,
            "total": total,
            "test": instance.test,
            "lines": lines,
        })
    };
    // A billed period costs what its bill says; nothing is asked of the provider's Prometheus.
    let billed = db.execute(
        &format!("SELECT {COLUMNS} FROM bills WHERE instance_id = ? AND period_start = ?"),
        &[instance.id.clone().into(), period.start.timestamp().into()],
    )?;
    if let Some(row) = billed.first() {
        let bill = from_row(row)?;
        return Ok(summary(&bill.lines, bill.total, Some(&bill.id)));
    }
    let mut clipped = instance.clone();
    for i in &mut clipped.running_intervals {
        i.ended_at = Some(i.ended_at.unwrap_or(now.timestamp()).min(now.timestamp()));
    }
    let collected = collect(&clipped, &terms, &period, out).map_err(|reason| {
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
    let (lines, total) = price_period(db, instance, &terms, &period, &extra)?;
    Ok(summary(&lines, total, None))
}

const COLUMNS: &str = "id, instance_id, owner_id, provider_id, product_id, period_start, period_end, \
                       currency, total_cents, test, lines, created_at";

fn from_row(row: &Row) -> ApiResult<Bill> {
    let ts = |i: usize| -> ApiResult<String> {
        Ok(rfc3339(
            DateTime::from_timestamp(row.int(i)?, 0)
                .ok_or_else(|| ApiError::internal("bad time"))?,
        ))
    };
    Ok(Bill {
        id: row.text(0)?,
        instance_id: row.text(1)?,
        owner_id: row.text(2)?,
        provider_id: row.text(3)?,
        product_id: row.text(4)?,
        period_start: ts(5)?,
        period_end: ts(6)?,
        currency: row.text(7)?,
        total: Cents(row.int(8)?),
        test: row.int(9)? != 0,
        lines: serde_json::from_str(&row.text(10)?).map_err(ApiError::internal)?,
        created_at: row.text(11)?,
    })
}

/// Who sees which bills: a customer its own, a provider its products', operators all.
fn scope(caller: &Principal) -> (Option<String>, Option<String>) {
    match caller.role {
        crate::identity::Role::Operator => (None, None),
        crate::identity::Role::Provider => (None, Some(caller.id.clone())),
        _ => (Some(caller.id.clone()), None),
    }
}

pub fn find(db: &dyn Database, caller: &Principal, id: &str) -> ApiResult<Bill> {
    let (owner, provider) = scope(caller);
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM bills WHERE id = ?1
               AND (?2 IS NULL OR owner_id = ?2) AND (?3 IS NULL OR provider_id = ?3)"
        ),
        &[id.into(), owner.into(), provider.into()],
    )?;
    rows.first()
        .map(from_row)
        .transpose()?
        .ok_or_else(|| ApiError::not_found("bill"))
}

pub struct BillFilter {
    pub instance_id: Option<String>,
    pub from: i64,
    pub to: i64,
}

/// Bills oldest period first (then in the order they were written), so a list reads as a
/// statement; the cursor is the last bill's id.
pub fn list(
    db: &dyn Database,
    caller: &Principal,
    filter: &BillFilter,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Bill>> {
    let (owner, provider) = scope(caller);
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM bills
             WHERE (?1 IS NULL OR owner_id = ?1) AND (?2 IS NULL OR provider_id = ?2)
               AND (?3 IS NULL OR instance_id = ?3) AND period_start >= ?4 AND period_start < ?5
               AND (?6 IS NULL OR (period_start, rowid) >
                                  (SELECT period_start, rowid FROM bills WHERE id = ?6
                                   AND (?1 IS NULL OR owner_id = ?1)
                                   AND (?2 IS NULL OR provider_id = ?2)))
             ORDER BY period_start, rowid LIMIT ?7"
        ),
        &[
            owner.into(),
            provider.into(),
            filter.instance_id.clone().into(),
            filter.from.into(),
            filter.to.into(),
            after.map(str::to_owned).into(),
            (limit as i64).into(),
        ],
    )?;
    rows.iter().map(from_row).collect()
}

/// The run the `billing` cron component makes: as the built-in operator, as of the event's time.
pub fn scheduled_run(
    storage: &crate::platform::storage::Storage,
    out: &dyn Outbound,
    config: &crate::platform::config::Config,
    now: DateTime<Utc>,
) -> ApiResult<RunReport> {
    run(
        storage.db()?,
        out,
        config.billing_timezone,
        now,
        now,
        &Principal::built_in_operator(),
    )
}
