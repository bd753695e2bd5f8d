//! Bill runs: every closed, unbilled (instance, period) becomes exactly one bill, priced by the
//! product's tiers, and — unless it is a test order's — one ledger deduction in the same
//! transaction.
//!
//! Exactly-once rests on two guards, both in the database: each instance's billing cursor (the
//! next period to bill) is advanced by compare-and-set in the transaction that writes the bill,
//! and `bills` is UNIQUE on (instance, period). Two runs racing, a run repeated by the scheduler,
//! or a run that died halfway all leave one bill per (instance, period).

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::billing::collection::{self, Collection};
use crate::billing::store::{self, CursorMove, DueCursor};
use crate::billing::{Bill, Failure, FailureCode, Parts, Priced, RunReport, pricing};
use crate::catalog::versions::VersionBook;
use crate::error::{ApiError, ApiResult};
use crate::idempotency;
use crate::identity::{Principal, throttle};
use crate::metering::platform_usage::{self, running_seconds};
use crate::metering::{self, UsageRecord};
use crate::money::Cents;
use crate::orders::instance::Instance;
use crate::orders::ledger::{self, EntryKind, Posting};
use crate::orders::{self, Terms};
use crate::period::Period;
use crate::platform::config::Config;
use crate::platform::ids::IdSequence;
use crate::platform::outbound::Outbound;
use crate::platform::storage::{Database, StorageError, StorageErrorKind, transaction};
use crate::webhook::{EventType, Outbox, Tenants};

/// How many (instance, period) pairs one transaction bills: large enough that commits do not
/// dominate, small enough that a failed batch redoes little and the write lock is held for a
/// fraction of a second (~0.1 s on the benchmark machine, docs/BENCHMARKS.md). Bill and ledger
/// ids are random after their millisecond, so each batch writes into pages all over those
/// indexes; fewer, larger batches rewrite each page fewer times (500 → 2,000 took 100,000
/// instance-periods from ~95 to ~60 µs each).
pub(crate) const BATCH: usize = 2_000;

struct Prepared {
    instance: Instance,
    /// Shared by the batch's instances of one product, template and plan.
    terms: Rc<Terms>,
    period: Period,
    next: Option<Period>,
    collected: Vec<UsageRecord>,
}

/// Bills every closed, unbilled (instance, period) as of `as_of`, oldest first, in batches,
/// after releasing the test instances that lived `test_instance_max_hours` by then; then
/// suspends the running instances of customers in arrears for `arrears_grace_hours`. `as_of`
/// decides which periods are closed; `now` is when the bills, ledger entries and suspensions
/// are written (a run as of yesterday still records today). The deployment's
/// `billing_timezone` cuts the periods of instances that did not record their own.
pub fn run(
    db: &dyn Database,
    out: &dyn Outbound,
    config: &Config,
    as_of: DateTime<Utc>,
    now: DateTime<Utc>,
    actor: &Principal,
) -> ApiResult<RunReport> {
    let tz = config.billing_timezone;
    let mut report = RunReport {
        as_of,
        ..RunReport::default()
    };
    let hours = config.test_instance_max_hours;
    report
        .failures
        .extend(housekeeping(db, tz, hours, as_of, now));
    // Passes of a keyset over (next_close_at, instance_id). Within a pass a billed cursor comes
    // round again while its next close lies past the key; one that fell behind the key (another
    // instance's cursor stood far ahead in the batch) is billed by the next pass. Instances that
    // failed are not tried again in this run. The run ends with a pass that bills nothing.
    let run = Run {
        db,
        out,
        tz,
        as_of,
        now,
        actor,
    };
    let mut failed: HashSet<String> = HashSet::new();
    while run.pass(&mut failed, &mut report)? > 0 {}
    // After the bills, which may have left balances below zero: arrears start, and those past
    // their grace suspend what runs. A failure here bills nothing less; the next run retries.
    match orders::arrears::suspend_overdue(db, config.arrears_grace_hours, now) {
        Ok(suspended) => report.suspended = suspended,
        Err(e) => eprintln!("bill run: arrears not suspended: {}", e.detail),
    }
    Ok(report)
}

/// What a run bills with: the database, the outbound port, the billing time zone, the instant
/// that decides which periods are closed, when it writes, and who runs it.
struct Run<'a> {
    db: &'a dyn Database,
    out: &'a dyn Outbound,
    tz: Tz,
    as_of: DateTime<Utc>,
    now: DateTime<Utc>,
    actor: &'a Principal,
}

/// What a run does before it bills, each step on its own so that none keeps the others (or the
/// billing) from running: purging expired idempotency keys and old counts of failed sign-ins,
/// opening the cursors of instances that have none, releasing test instances whose time ran
/// out. The instances whose cursor could not be opened are reported as of `as_of`.
fn housekeeping(
    db: &dyn Database,
    tz: Tz,
    test_instance_max_hours: u32,
    as_of: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<Failure> {
    if let Err(e) = idempotency::purge_expired(db, now) {
        eprintln!(
            "bill run: expired idempotency keys not purged: {}",
            e.detail
        );
    }
    if let Err(e) = throttle::purge(db, now) {
        eprintln!(
            "bill run: old counts of failed sign-ins not purged: {}",
            e.detail
        );
    }
    let failures = match orders::open_missing_billing_cursors(db, tz) {
        Ok(failed) => failed
            .into_iter()
            .map(|(instance_id, e)| {
                Failure::new(
                    &instance_id,
                    as_of,
                    FailureCode::CursorNotOpened,
                    format!("its billing cursor could not be opened: {}", e.detail),
                )
            })
            .collect(),
        Err(e) => {
            eprintln!(
                "bill run: instances without a cursor not read: {}",
                e.detail
            );
            Vec::new()
        }
    };
    if let Err(e) = orders::instance::expire_test_instances(db, test_instance_max_hours, as_of) {
        eprintln!(
            "bill run: expired test instances not released: {}",
            e.detail
        );
    }
    failures
}

impl Run<'_> {
    /// One pass of the keyset over the cursors due by `as_of`, a batch at a time, into
    /// `report`; how many bills it wrote. Instances in `failed` are skipped, and those that
    /// fail join them.
    fn pass(&self, failed: &mut HashSet<String>, report: &mut RunReport) -> ApiResult<usize> {
        let (db, tz) = (self.db, self.tz);
        let mut key: (i64, String) = (i64::MIN, String::new());
        let mut billed = 0;
        loop {
            let due = store::due_cursors(db, self.as_of.timestamp(), &key, BATCH)?;
            let Some(last) = due.last() else {
                return Ok(billed);
            };
            key = (last.close_at, last.instance_id.clone());
            let due: Vec<DueCursor> = due
                .into_iter()
                .filter(|c| !failed.contains(&c.instance_id))
                .collect();
            let mut failures = Vec::new();
            let (written, more) = match prepare(db, self.out, tz, &due, &mut failures) {
                Ok(batch) => bill(
                    db,
                    tz,
                    &batch.iter().collect::<Vec<_>>(),
                    self.actor,
                    self.now,
                ),
                Err(e) => (Vec::new(), failed_whole(&due, &e)),
            };
            failures.extend(more);
            failed.extend(failures.iter().map(|f| f.instance_id.clone()));
            report.failures.extend(failures);
            billed += written.len();
            for bill in written {
                report.bills_written += 1;
                if bill.test {
                    report.test_bills += 1;
                } else {
                    report.deducted += bill.total.to_decimal();
                }
            }
        }
    }
}

/// Every (instance, period) of a batch that could not be read or written as a whole (the
/// database failed, not an instance): each is reported and left for the next run.
fn failed_whole(due: &[DueCursor], e: &ApiError) -> Vec<Failure> {
    due.iter()
        .map(|c| {
            Failure::new(
                &c.instance_id,
                DateTime::from_timestamp(c.period_start, 0).unwrap_or_default(),
                FailureCode::BillNotWritten,
                format!("its batch could not be billed: {}", e.detail),
            )
        })
        .collect()
}

/// Reads what billing a batch needs, before its write transaction: its instances (two queries),
/// each distinct (product, template, plan)'s terms once, and the platform's usage. The terms are
/// read per batch, as before per instance, so a change of terms is seen by the next batch.
fn prepare(
    db: &dyn Database,
    out: &dyn Outbound,
    tz: Tz,
    due: &[DueCursor],
    failures: &mut Vec<Failure>,
) -> ApiResult<Vec<Prepared>> {
    let ids: Vec<String> = due.iter().map(|c| c.instance_id.clone()).collect();
    let mut instances = orders::find_instances(db, &ids)?;
    let mut cache: HashMap<(String, String, Option<String>, i64), Rc<Terms>> = HashMap::new();
    let mut books: HashMap<String, VersionBook> = HashMap::new();
    let mut batch = Vec::with_capacity(due.len());
    for (cursor, id) in due.iter().zip(&ids) {
        let instance = instances
            .remove(id)
            .ok_or_else(|| ApiError::not_found("instance"))?;
        if !books.contains_key(&instance.product_id) {
            let book = VersionBook::of(db, &instance.product_id)?;
            books.insert(instance.product_id.clone(), book);
        }
        let (version, pricing) =
            books[&instance.product_id].for_period(instance.pricing_version, cursor.period_start);
        let key = (
            instance.product_id.clone(),
            instance.template_id.clone(),
            instance.plan_id.clone(),
            version,
        );
        let start = DateTime::from_timestamp(cursor.period_start, 0)
            .ok_or_else(|| ApiError::internal("bad cursor"))?;
        let mut fail = |code: FailureCode, reason: String| {
            failures.push(Failure::new(&instance.id, start, code, reason));
        };
        // One instance's problem is reported and left for the next run; it never stops the
        // billing of the others.
        let terms = match cache.get(&key) {
            Some(t) => t.clone(),
            None => match orders::terms_priced(db, &instance, version, pricing) {
                Ok(t) => {
                    let t = Rc::new(t);
                    cache.insert(key, t.clone());
                    t
                }
                Err(e) => {
                    fail(
                        FailureCode::TermsUnreadable,
                        format!("its terms could not be read: {}", e.detail),
                    );
                    continue;
                }
            },
        };
        let tz = instance.zone(tz);
        let Some(period) = Period::from_start(terms.kind, tz, start) else {
            fail(
                FailureCode::NotOnPeriodBoundary,
                "its next period does not start on a period boundary of the product (was the \
                  billing period or time zone changed?)"
                    .into(),
            );
            continue;
        };
        match platform_usage::collect(&instance, &terms, &period, out) {
            Ok(collected) => batch.push(Prepared {
                next: instance.period_after(&period, terms.kind, tz),
                instance,
                terms,
                period,
                collected,
            }),
            Err(reason) => failures.push(Failure::new(
                &instance.id,
                period.start,
                FailureCode::PlatformUsageUnavailable,
                reason,
            )),
        }
    }
    Ok(batch)
}

/// Why a batch's transaction failed: the transaction itself (the database: no instance is to
/// blame), or one of its steps, which some instance of the batch made fail.
enum BatchError {
    Transaction(StorageError),
    Step(FailureCode, ApiError),
}

impl From<StorageError> for BatchError {
    fn from(e: StorageError) -> Self {
        BatchError::Transaction(e)
    }
}

/// A step of writing a batch, failing as `code`.
fn step<T>(code: FailureCode, result: ApiResult<T>) -> Result<T, BatchError> {
    result.map_err(|e| BatchError::Step(code, e))
}

/// How often a batch's transaction is tried while the database stays busy past its statements'
/// own wait ([`crate::platform::storage::BUSY_TIMEOUT`]), and the first pause between tries
/// (doubled each time).
const TRIES: u32 = 3;
const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs `write` in a transaction, again after a pause while `BEGIN` or `COMMIT` finds the
/// database busy: a refused `BEGIN` or `COMMIT` leaves nothing written, so the batch is redone
/// from its start.
fn with_retries<T>(
    db: &dyn Database,
    write: impl Fn(&dyn Database) -> Result<T, BatchError>,
) -> Result<T, BatchError> {
    let mut pause = FIRST_PAUSE;
    for _ in 1..TRIES {
        match transaction(db, &write) {
            Err(BatchError::Transaction(e)) if e.kind == StorageErrorKind::Busy => {
                std::thread::sleep(pause);
                pause *= 2;
            }
            outcome => return outcome,
        }
    }
    transaction(db, &write)
}

/// Bills a batch in one transaction. The instances another transaction holds meanwhile (a push
/// in flight, another run) are billed after it, the same way: the batch waits only for its
/// first instance, before it holds any ([`store::lock_cursors`]). Should a step fail, the batch
/// is halved and each half billed on its own, down to the one instance that fails it, which is
/// reported: one tenant's fault — absurd usage, a conflicting record, a balance at its limit —
/// never keeps the others unbilled, and costs a few more transactions rather than one per
/// instance. Should the transaction itself fail (the database stayed busy), the batch is
/// reported whole and the next one billed.
fn bill(
    db: &dyn Database,
    tz: Tz,
    batch: &[&Prepared],
    actor: &Principal,
    now: DateTime<Utc>,
) -> (Vec<Bill>, Vec<Failure>) {
    if batch.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let failed = |code: FailureCode, reason: &str, batch: &[&Prepared]| -> Vec<Failure> {
        batch
            .iter()
            .map(|p| Failure::new(&p.instance.id, p.period.start, code, reason))
            .collect()
    };
    match with_retries(db, |db| write_batch(db, tz, batch, actor, now)) {
        Ok((mut bills, mut failures, busy)) => {
            let busy: Vec<&Prepared> = batch
                .iter()
                .filter(|p| busy.contains(&p.instance.id))
                .copied()
                .collect();
            let (more_bills, more_failures) = bill(db, tz, &busy, actor, now);
            bills.extend(more_bills);
            failures.extend(more_failures);
            (bills, failures)
        }
        Err(BatchError::Transaction(e)) => (
            Vec::new(),
            failed(
                FailureCode::BillNotWritten,
                &format!("its batch's transaction failed: {e}"),
                batch,
            ),
        ),
        Err(BatchError::Step(code, e)) if batch.len() == 1 => {
            (Vec::new(), failed(code, &e.detail, batch))
        }
        Err(BatchError::Step(..)) => {
            let (first, second) = batch.split_at(batch.len() / 2);
            let (mut bills, mut failures) = bill(db, tz, first, actor, now);
            let (more_bills, more_failures) = bill(db, tz, second, actor, now);
            bills.extend(more_bills);
            failures.extend(more_failures);
            (bills, failures)
        }
    }
}

/// Instances of a batch another transaction held: billed in one of their own.
type Busy = HashSet<String>;

/// Writes a batch in the caller's transaction, but for the instances whose cursors another
/// transaction holds, which it answers ([`store::lock_cursors`]). Exactly-once rests on the
/// cursors: one compare-and-set per batch chunk moves each due cursor off its period, and only
/// the instances whose cursor moved (RETURNING) are billed — a racing run that moved it first
/// bills it instead. `bills`' UNIQUE (instance, period) backs that up: a second bill fails the
/// whole batch.
fn write_batch(
    db: &dyn Database,
    tz: Tz,
    batch: &[&Prepared],
    actor: &Principal,
    now: DateTime<Utc>,
) -> Result<(Vec<Bill>, Vec<Failure>, Busy), BatchError> {
    // The batch's cursors first (PostgreSQL; on SQLite the transaction holds the write lock):
    // pushes check the cursor while they hold it, so no usage of these periods arrives now. A
    // cursor another transaction holds is left to a transaction of its own.
    let ids: Vec<&str> = batch.iter().map(|p| p.instance.id.as_str()).collect();
    let held = store::lock_cursors(db, &ids)?;
    let (batch, busy): (Vec<&Prepared>, Vec<&Prepared>) =
        batch.iter().partition(|p| held.contains(&p.instance.id));
    let busy: Busy = busy.iter().map(|p| p.instance.id.clone()).collect();
    let (priced, failures) = price_batch(db, &batch)?;
    let moves: Vec<CursorMove> = priced.iter().map(|(p, _)| cursor_move(p, tz)).collect();
    // The compare-and-set: only the run that moves the cursor off this period bills it.
    let moved = step(FailureCode::BillNotWritten, store::move_cursors(db, &moves))?;
    let billed: Vec<(&Prepared, Priced)> = priced
        .into_iter()
        .filter(|(p, _)| moved.contains(&p.instance.id))
        .collect();
    let mut ids = IdSequence::new("bill", now);
    let mut written = Vec::with_capacity(billed.len());
    for (p, priced) in billed.iter().cloned() {
        if !p.collected.is_empty() {
            step(
                FailureCode::PlatformUsageNotStored,
                metering::store_platform_usage(db, &p.instance.id, &p.collected, now),
            )?;
        }
        written.push(bill_of(p, priced, ids.next_id(), now));
    }
    let collections = step(
        FailureCode::DeductionNotPosted,
        deduct(db, &mut written, actor, now),
    )?;
    let periods: Vec<&Period> = billed.iter().map(|(p, _)| &p.period).collect();
    step(
        FailureCode::BillNotWritten,
        store::insert(db, &written, &periods),
    )?;
    let mut outbox = Outbox::new(now);
    for b in &written {
        let tenants = Tenants {
            provider: Some(&b.provider_id),
            customer: Some(&b.owner_id),
        };
        step(
            FailureCode::BillNotWritten,
            outbox.add(EventType::BillIssued, tenants, b),
        )?;
    }
    step(FailureCode::BillNotWritten, outbox.write(db))?;
    step(
        FailureCode::DeductionNotPosted,
        store::insert_collections(db, &collections),
    )?;
    Ok((written, failures, busy))
}

/// Deducts the bills that charge something from their customers' accounts: each bill owes
/// what the balance before it did not cover (its standing set here) and the rest is
/// collected. Returns the collections, for once the bills are written.
fn deduct(
    db: &dyn Database,
    written: &mut [Bill],
    actor: &Principal,
    now: DateTime<Utc>,
) -> ApiResult<Vec<Collection>> {
    let charged: Vec<usize> = (0..written.len())
        .filter(|i| !written[*i].test && written[*i].total.0 > 0)
        .collect();
    let deductions: Vec<Posting> = charged
        .iter()
        .map(|i| Posting {
            customer_id: &written[*i].owner_id,
            kind: EntryKind::Bill,
            amount: Cents(-written[*i].total.0),
            reference: Some(&written[*i].id),
        })
        .collect();
    let entries = ledger::post_many(db, &deductions, &actor.id, now)?;
    let mut ids = IdSequence::new("col", now);
    let mut collections = Vec::with_capacity(charged.len());
    for (i, entry) in charged.into_iter().zip(&entries) {
        let bill = &mut written[i];
        let collected = collection::at_deduction(bill, entry.balance_after);
        bill.parts.product_fees.uncollected = bill.product_fees - collected.0;
        bill.parts.resource_fees.uncollected = bill.resource_fees - collected.1;
        if collected != (Cents(0), Cents(0)) {
            collections.push(Collection::of(&mut ids, bill, collected, &entry.id, now));
        }
    }
    for bill in written.iter_mut() {
        bill.fill_standing(Vec::new());
    }
    Ok(collections)
}

/// The periods of a batch that could be priced, each with its price.
type PricedBatch<'a> = Vec<(&'a Prepared, Priced)>;

/// Prices a batch from the usage stored so far plus what the platform measured: nothing can be
/// added meanwhile (the caller holds the write lock on SQLite, the batch's cursors on
/// PostgreSQL, and pushes check the cursor while they hold it). An instance whose usage cannot
/// be priced is reported and keeps its cursor.
fn price_batch<'a>(
    db: &dyn Database,
    batch: &[&'a Prepared],
) -> Result<(PricedBatch<'a>, Vec<Failure>), BatchError> {
    let periods: Vec<(&str, i64)> = batch
        .iter()
        .map(|p| (p.instance.id.as_str(), p.period.start.timestamp()))
        .collect();
    let totals = step(
        FailureCode::UsageUnpriceable,
        metering::totals_of_periods(db, &periods),
    )?;
    let none = HashMap::new();
    let mut failures = Vec::new();
    let mut priced = Vec::with_capacity(batch.len());
    for &p in batch {
        let mut raw = totals
            .get(&(p.instance.id.clone(), p.period.start.timestamp()))
            .unwrap_or(&none)
            .clone();
        for r in &p.collected {
            *raw.entry(r.item_code.clone()).or_default() +=
                metering::amount(r.value, i64::from(r.scale));
        }
        let running = running_seconds(&p.instance.running_intervals, &p.period);
        match pricing::price_period(&p.terms, &raw, &p.instance.resources, running) {
            Ok(period) => priced.push((p, period)),
            Err(e) => failures.push(Failure::new(
                &p.instance.id,
                p.period.start,
                FailureCode::UsageUnpriceable,
                format!("its usage could not be priced: {}", e.detail),
            )),
        }
    }
    Ok((priced, failures))
}

/// Where billing this period moves the instance's cursor: to its next period, or past its last.
fn cursor_move(p: &Prepared, tz: Tz) -> CursorMove<'_> {
    let (next_start, next_close) = match &p.next {
        Some(n) => (
            n.start.timestamp(),
            Some(n.closes_at(p.terms.kind, p.instance.zone(tz)).timestamp()),
        ),
        None => (p.period.end.timestamp(), None),
    };
    CursorMove {
        instance_id: &p.instance.id,
        from: p.period.start.timestamp(),
        next_start,
        next_close,
    }
}

/// The bill of one priced period.
fn bill_of(p: &Prepared, priced: Priced, id: String, now: DateTime<Utc>) -> Bill {
    Bill {
        id,
        instance_id: p.instance.id.clone(),
        owner_id: p.instance.owner_id.clone(),
        provider_id: p.instance.provider_id.clone(),
        product_id: p.instance.product_id.clone(),
        period_start: p.period.start,
        period_end: p.period.end,
        currency: p.terms.currency.clone(),
        product_fees: priced.product_fees,
        resource_fees: priced.resource_fees,
        total: priced.total,
        test: p.instance.test,
        lines: priced.lines,
        resource_lines: priced.resource_lines,
        created_at: now,
        pricing_version: p.terms.pricing_version,
        credit_notes: Vec::new(),
        credited: Cents(0),
        collected: Cents(0),
        uncollected: Cents(0),
        parts: Parts::default(),
    }
}
