//! Closing a month, provider by provider. A provider's statement is written once every non-test
//! period of its instances starting in the month is billed or written off; a provider whose
//! instance cannot be billed holds up its own statement only. Closing freezes the month's
//! instants the first time, writes each closable provider's statement and links its bills in one
//! transaction; UNIQUE (provider, month) and the bill-keyed `statement_bills` make racing or
//! repeated closes — the schedule's and an operator's — write nothing twice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;

use super::{Span, Statement, commission, earnings, span_of, store};
use crate::billing::{Failure, RunReport};
use crate::error::{ApiError, ApiResult, Code};
use crate::identity::{self, Principal};
use crate::period::{BillingPeriod, Period};
use crate::platform::clock::rfc3339;
use crate::platform::config::Config;
use crate::platform::ids::new_id;
use crate::platform::outbound::Outbound;
use crate::platform::storage::{Database, serialize_on, transaction};
use crate::settlement::{Instants, Month};
use crate::webhook::deliver::Report as DeliveryReport;
use crate::webhook::{self, EventType, Tenants};

/// A period that keeps its provider's month open, and why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Blocking {
    pub(crate) instance_id: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub(crate) period_start: DateTime<Utc>,
    pub(crate) reason: String,
}

/// A provider whose month is not closed yet, and the periods it waits on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OpenProvider {
    pub(crate) provider_id: String,
    pub(crate) blocking: Vec<Blocking>,
}

/// What closing a month did, and where each of its providers stands.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Closing {
    pub(crate) month: Month,
    /// The instants the month was frozen with.
    pub(crate) period: Instants,
    /// The providers whose statement of the month is written, now or before.
    pub(crate) closed: Vec<String>,
    /// The providers that wait on periods neither billed nor written off.
    pub(crate) open: Vec<OpenProvider>,
    /// Statements this close wrote (0 when every closable provider was closed already).
    pub(crate) statements_written: usize,
    /// The month's written statements.
    pub(crate) items: Vec<Statement>,
}

/// The bill run a close starts with: whatever is due at `now`.
fn bill_run(
    db: &dyn Database,
    out: &dyn Outbound,
    config: &Config,
    now: DateTime<Utc>,
    actor: &Principal,
) -> ApiResult<RunReport> {
    crate::billing::run(db, out, config, now, now, actor)
}

/// When `month` (within `span`) may be closed: once its last period is closed for billing, the
/// end of the day after it in `tz`.
fn closable_from(span: Span, tz: Tz) -> DateTime<Utc> {
    let end = DateTime::from_timestamp(span.end, 0).unwrap_or_default();
    Period::containing(BillingPeriod::Day, tz, end).end
}

/// When an operator may close `month` at the earliest.
pub(crate) fn closes_at(db: &dyn Database, month: &Month, tz: Tz) -> ApiResult<DateTime<Utc>> {
    Ok(closable_from(span_of(db, month, tz)?.0, tz))
}

/// Closes `month` for every provider that may close (409 `MonthNotClosable` before its last
/// period has ended), after billing whatever is due: answers which providers are closed and
/// which still wait, on what.
pub(crate) fn close(
    db: &dyn Database,
    out: &dyn Outbound,
    actor: &Principal,
    month: &Month,
    config: &Config,
    now: DateTime<Utc>,
) -> ApiResult<Closing> {
    let tz = config.billing_timezone;
    let from = closes_at(db, month, tz)?;
    if now < from {
        return Err(ApiError::new(
            Code::MonthNotClosable,
            format!(
                "{month} can be closed from {}, when every period in it is closed for billing",
                rfc3339(from)
            ),
        ));
    }
    let report = bill_run(db, out, config, now, actor)?;
    close_billed(
        db,
        actor,
        month,
        tz,
        now,
        config.commission_rate,
        &report.failures,
    )
}

/// What the first close of every month takes turns on ([`serialize_on`]), before its month's
/// own lock.
const FIRST_CLOSES: &str = "settlement close";

/// The close itself, after a bill run whose `failures` say why periods stayed unbilled.
fn close_billed(
    db: &dyn Database,
    actor: &Principal,
    month: &Month,
    tz: Tz,
    now: DateTime<Utc>,
    default_rate: Decimal,
    failures: &[Failure],
) -> ApiResult<Closing> {
    let at = rfc3339(now);
    let (span, written) = transaction(db, |db| {
        let span = freeze(db, month, tz, actor, &at)?;
        let waiting = store::unbilled_before(db, span.end, None)?;
        for u in &waiting {
            let failed = failures.iter().find(|f| {
                f.instance_id == u.instance_id && f.period_start == instant(u.period_start)
            });
            if let Some(f) = failed {
                store::remember_block(db, &u.instance_id, u.period_start, &f.reason, &at)?;
            }
        }
        let written_before: Vec<String> = store::statements(db, month, None)?
            .into_iter()
            .map(|s| s.provider_id)
            .collect();
        let closing: Vec<_> = earnings(db, None, span)?
            .into_iter()
            .filter(|(provider_id, _)| {
                !written_before.contains(provider_id)
                    && !waiting.iter().any(|u| &u.provider_id == provider_id)
            })
            .collect();
        // Each statement is written at the rate read here: an operator setting a closing
        // provider's rate waits until it is written, then finds the month closed.
        let providers: Vec<&str> = closing.iter().map(|(p, _)| p.as_str()).collect();
        identity::lock_principals(db, &providers)?;
        let mut written = 0;
        for (provider_id, products) in closing {
            let rate = commission::rate_for(db, &provider_id, month, default_rate)?;
            let mut statement = Statement::compute(&provider_id, month, span, rate, products)?;
            let id = new_id("stl", now);
            store::insert_statement(db, &id, &statement, span, &at)?;
            statement.id = Some(id);
            statement.closed_at = Some(now);
            webhook::emit(
                db,
                EventType::SettlementClosed,
                Tenants {
                    provider: Some(&provider_id),
                    customer: None,
                },
                &statement,
                now,
            )?;
            written += 1;
        }
        let open: std::collections::BTreeSet<&str> =
            waiting.iter().map(|u| u.provider_id.as_str()).collect();
        store::set_open_providers(db, month, open.len() as i64)?;
        Ok::<_, ApiError>((span, written))
    })?;
    let items = store::statements(db, month, None)?;
    Ok(Closing {
        month: *month,
        period: span.into(),
        closed: items.iter().map(|s| s.provider_id.clone()).collect(),
        open: open_providers(db, span, now, failures)?,
        statements_written: written,
        items,
    })
}

/// The month's instants, frozen by its first close, once this close may write its statements.
fn freeze(
    db: &dyn Database,
    month: &Month,
    tz: Tz,
    actor: &Principal,
    at: &str,
) -> ApiResult<Span> {
    // A month's first close freezes its instants from its neighbours' (`span_of`): the first
    // closes of any two months take turns, so each sees what the other froze and the months
    // tile time whatever zone each host was told (a rollout changing `billing_timezone`).
    // Later closes of a month read its frozen instants.
    if !span_of(db, month, tz)?.1 {
        serialize_on(db, FIRST_CLOSES)?;
    }
    // Racing closes take turns (on PostgreSQL, where writers run at once): the second sees the
    // statements the first wrote, and writes none twice.
    serialize_on(db, &format!("settlement close {month}"))?;
    store::freeze_month(db, month, span_of(db, month, tz)?.0, &actor.id, at)
}

fn instant(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

/// The providers waiting on unbilled periods before the end of `span`, each period with why:
/// this run's failure, else the last one a close saw, else when it closes.
fn open_providers(
    db: &dyn Database,
    span: Span,
    now: DateTime<Utc>,
    failures: &[Failure],
) -> ApiResult<Vec<OpenProvider>> {
    let mut by_provider: BTreeMap<String, Vec<Blocking>> = BTreeMap::new();
    for u in store::unbilled_before(db, span.end, None)? {
        let start = instant(u.period_start);
        let reason = failures
            .iter()
            .find(|f| f.instance_id == u.instance_id && f.period_start == start)
            .map(|f| f.reason.clone())
            .or(u.reason)
            .unwrap_or_else(|| {
                if u.closes_at > now.timestamp() {
                    format!(
                        "its period closes for billing at {}",
                        rfc3339(instant(u.closes_at))
                    )
                } else {
                    "not billed yet: the next bill run tries it".to_owned()
                }
            });
        by_provider
            .entry(u.provider_id)
            .or_default()
            .push(Blocking {
                instance_id: u.instance_id,
                period_start: start,
                reason,
            });
    }
    Ok(by_provider
        .into_iter()
        .map(|(provider_id, blocking)| OpenProvider {
            provider_id,
            blocking,
        })
        .collect())
}

/// Where a month's providers stand now, without closing anything (the settlement pages).
pub(crate) fn standing(
    db: &dyn Database,
    month: &Month,
    tz: Tz,
    now: DateTime<Utc>,
) -> ApiResult<Vec<OpenProvider>> {
    open_providers(db, span_of(db, month, tz)?.0, now, &[])
}

/// What a scheduled run did: its bill run, each month it closed, then the webhooks' deliveries
/// due.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduledRun {
    /// The bill run as of the event's time.
    pub bill_run: RunReport,
    /// The months closed, oldest first.
    pub settlement: Vec<MonthClosed>,
    /// The deliveries attempted.
    pub webhooks: DeliveryReport,
}

/// One month a scheduled run closed: how many statements it wrote, and which providers are
/// still open.
#[derive(Debug, Clone, Serialize)]
pub struct MonthClosed {
    /// `YYYY-MM`.
    pub month: String,
    /// Statements this close wrote.
    pub statements_written: usize,
    /// The providers still waiting on an unbilled period.
    pub open: Vec<String>,
}

/// What the schedule does at `now` (the cron event's time), as the built-in operator: the bill
/// run as of `now` — a late or repeated event bills exactly what it should — then the close of
/// every month that still has an open provider, oldest first, as far as each may close, then
/// the webhooks' deliveries due. Its report as JSON: `{"bill_run", "settlement": [{"month",
/// "statements_written", "open"}], "webhooks": {"attempted", "delivered", "failed"}}`.
pub fn scheduled_run(
    db: &dyn Database,
    out: &dyn Outbound,
    config: &Config,
    now: DateTime<Utc>,
) -> ApiResult<ScheduledRun> {
    let tz = config.billing_timezone;
    let operator = Principal::built_in_operator();
    let report = bill_run(db, out, config, now, &operator)?;
    let mut settled = Vec::new();
    for month in months_to_close(db, tz, now)? {
        let c = close_billed(
            db,
            &operator,
            &month,
            tz,
            now,
            config.commission_rate,
            &report.failures,
        )?;
        settled.push(MonthClosed {
            month: c.month.to_string(),
            statements_written: c.statements_written,
            open: c.open.into_iter().map(|o| o.provider_id).collect(),
        });
    }
    // Every delivery due, this run's events' and earlier failures' alike, outside any
    // transaction; one that fails waits for a later run.
    drop(webhook::take_emitted());
    let webhooks =
        webhook::deliver::deliver_due(db, out, now, webhook::deliver::Budget::SCHEDULED)?;
    Ok(ScheduledRun {
        bill_run: report,
        settlement: settled,
        webhooks,
    })
}

/// The months the schedule closes at `now`, oldest first: from the first with anything to
/// settle to the last that may close, skipping those whose last close left no provider open.
fn months_to_close(db: &dyn Database, tz: Tz, now: DateTime<Utc>) -> ApiResult<Vec<Month>> {
    let Some(first) = store::earliest_activity(db)? else {
        return Ok(Vec::new());
    };
    let mut last = Month::containing(now, tz).previous();
    if now < closes_at(db, &last, tz)? {
        last = last.previous();
    }
    let first = Month::containing(instant(first), tz).previous();
    if last < first {
        return Ok(Vec::new());
    }
    let done: Vec<String> = store::frozen_months(db, &first, &last)?
        .into_iter()
        .filter(|(_, span, open)| span.is_some() && *open == 0)
        .map(|(m, _, _)| m)
        .collect();
    let mut months = Vec::new();
    let mut month = first;
    while month <= last {
        if !done.contains(&month.to_string()) {
            months.push(month);
        }
        month = month.next();
    }
    Ok(months)
}
