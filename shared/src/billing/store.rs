//! Bills and billing cursors in the database. Each instance's cursor is the next period to bill;
//! a run moves it by compare-and-set in the transaction that writes the bill, and `bills` is
//! UNIQUE on (instance, period): the two guards of exactly-once.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::billing::collection::{Collection, Owed};
use crate::billing::credit::CreditNote;
use crate::billing::write_off::WriteOff;
use crate::billing::{Bill, BillFilter, PartStanding, Parts};
use crate::error::{ApiError, ApiResult};
use crate::money::Cents;
use crate::orders::instance;
use crate::period::Period;
use crate::platform::clock::{self, rfc3339};
use crate::platform::storage::{
    Database, Row, RowLock, StorageError, Value, lock_free_rows, lock_rows,
};

/// A cursor due for billing: its instance and the period start it stands on.
pub(crate) struct DueCursor {
    pub(crate) instance_id: String,
    pub(crate) period_start: i64,
    pub(crate) close_at: i64,
}

/// Up to `limit` cursors whose period closed by `as_of`, in keyset order after `after`
/// (close time, instance id).
pub(crate) fn due_cursors(
    db: &dyn Database,
    as_of: i64,
    after: &(i64, String),
    limit: usize,
) -> ApiResult<Vec<DueCursor>> {
    let rows = db.execute(
        "SELECT instance_id, next_period_start, next_close_at FROM billing_cursors
         WHERE next_close_at IS NOT NULL AND next_close_at <= ?1
           AND (next_close_at > ?2 OR (next_close_at = ?2 AND instance_id > ?3))
         ORDER BY next_close_at, instance_id LIMIT ?4",
        &[
            as_of.into(),
            after.0.into(),
            after.1.clone().into(),
            (limit as i64).into(),
        ],
    )?;
    rows.iter()
        .map(|r| {
            Ok(DueCursor {
                instance_id: r.text(0)?,
                period_start: r.int(1)?,
                close_at: r.int(2)?,
            })
        })
        .collect()
}

/// Locks the cursors of these instances until the caller's transaction ends, before it reads
/// what it decides on (their usage, their bills, their write-offs), and answers the instances
/// whose cursors it holds. The first it waits for: its instance's gate alone
/// (`orders::instance::close_gate`: pushes arriving meanwhile queue behind it), then its row.
/// Each other one it takes only if nobody holds it — a push of its instance in flight, another
/// run's batch —, so it never waits for one instance while it holds others: the caller leaves
/// those for a transaction of their own. A push stores records only while it holds its
/// instance's cursor (shared), so once a cursor is held no push of its instance is in flight,
/// and none stores anything until the transaction ends: the usage read after this is all there
/// will be of the periods billed (ARCHITECTURE.md, Concurrency). On SQLite, where the
/// transaction holds the database's one write lock, every one.
pub(crate) fn lock_cursors(
    db: &dyn Database,
    instance_ids: &[&str],
) -> Result<HashSet<String>, StorageError> {
    let Some((first, others)) = instance_ids.split_first() else {
        return Ok(HashSet::new());
    };
    let cursors = ("billing_cursors", "instance_id");
    instance::close_gate(db, first)?;
    lock_rows(db, cursors, &[first], RowLock::Exclusive)?;
    let mut held = lock_free_rows(db, cursors, others)?;
    held.insert((*first).to_owned());
    Ok(held)
}

/// One cursor move: off `from` (a period start) onto `next_start`, closing at `next_close`
/// (`None` once the instance is fully billed).
pub(crate) struct CursorMove<'a> {
    pub(crate) instance_id: &'a str,
    pub(crate) from: i64,
    pub(crate) next_start: i64,
    pub(crate) next_close: Option<i64>,
}

/// Cursors per compare-and-set statement (4 parameters each, below SQLite's oldest limit of 999).
const CURSORS_PER_STATEMENT: usize = 200;

/// The compare-and-set: moves each cursor that still stands on its `from`, and returns the
/// instances whose cursor moved — only the run that moved it bills that period.
pub(crate) fn move_cursors(db: &dyn Database, moves: &[CursorMove]) -> ApiResult<HashSet<String>> {
    let mut moved = HashSet::with_capacity(moves.len());
    for chunk in moves.chunks(CURSORS_PER_STATEMENT) {
        let mut params: Vec<Value> = Vec::with_capacity(4 * chunk.len());
        for m in chunk {
            params.extend([
                m.instance_id.into(),
                m.from.into(),
                m.next_start.into(),
                m.next_close.into(),
            ]);
        }
        let rows = db.execute(
            &format!(
                "UPDATE billing_cursors AS c SET next_period_start = v.column3, next_close_at = v.column4
                 FROM (VALUES {}) AS v
                 WHERE c.instance_id = v.column1 AND c.next_period_start = v.column2
                 RETURNING instance_id",
                vec![
                    "(CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))";
                    chunk.len()
                ]
                .join(", ")
            ),
            &params,
        )?;
        for row in &rows {
            moved.insert(row.text(0)?);
        }
    }
    Ok(moved)
}

/// Bills per INSERT statement (18 parameters each, below SQLite's oldest limit of 999).
const BILLS_PER_STATEMENT: usize = 55;

/// Inserts bills, [`BILLS_PER_STATEMENT`] per statement; `periods[i]` is `bills[i]`'s period.
pub(crate) fn insert(db: &dyn Database, bills: &[Bill], periods: &[&Period]) -> ApiResult<()> {
    for (chunk, chunk_periods) in bills
        .chunks(BILLS_PER_STATEMENT)
        .zip(periods.chunks(BILLS_PER_STATEMENT))
    {
        let mut params: Vec<Value> = Vec::with_capacity(18 * chunk.len());
        for (bill, period) in chunk.iter().zip(chunk_periods) {
            let lines = serde_json::to_string(&bill.lines).map_err(ApiError::internal)?;
            let resource_lines =
                serde_json::to_string(&bill.resource_lines).map_err(ApiError::internal)?;
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
                rfc3339(bill.created_at).into(),
                bill.product_fees.0.into(),
                bill.resource_fees.0.into(),
                resource_lines.into(),
                bill.parts.product_fees.uncollected.0.into(),
                bill.parts.resource_fees.uncollected.0.into(),
                bill.pricing_version.into(),
            ]);
        }
        db.execute(
            &format!(
                "INSERT INTO bills (id, instance_id, owner_id, provider_id, product_id, period_start, period_end,
                                    currency, total_cents, test, lines, created_at,
                                    product_fees_cents, resource_fees_cents, resource_lines,
                                    uncollected_product_cents, uncollected_resource_cents, pricing_version)
                 VALUES {}",
                vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
            ),
            &params,
        )?;
    }
    Ok(())
}

/// The bill of one (instance, period), if it was billed.
pub(crate) fn find_by_period(
    db: &dyn Database,
    instance_id: &str,
    period_start: i64,
) -> ApiResult<Option<Bill>> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM bills WHERE instance_id = ? AND period_start = ?"),
        &[instance_id.into(), period_start.into()],
    )?;
    rows.first().map(from_row).transpose()
}

const COLUMNS: &str = "id, instance_id, owner_id, provider_id, product_id, period_start, period_end, \
                       currency, total_cents, test, lines, created_at, product_fees_cents, \
                       resource_fees_cents, resource_lines, uncollected_product_cents, \
                       uncollected_resource_cents, pricing_version";

/// Unix seconds of column `i` as an instant.
fn instant(row: &Row, i: usize) -> ApiResult<DateTime<Utc>> {
    Ok(clock::from_unix(row.int(i)?)?)
}

fn from_row(row: &Row) -> ApiResult<Bill> {
    let ts = |i: usize| instant(row, i);
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
        created_at: clock::stored(&row.text(11)?)?,
        product_fees: Cents(row.int(12)?),
        resource_fees: Cents(row.int(13)?),
        resource_lines: serde_json::from_str(&row.text(14)?).map_err(ApiError::internal)?,
        credit_notes: Vec::new(),
        credited: Cents(0),
        collected: Cents(0),
        uncollected: Cents(0),
        // What each part still owes, as stored; the rest of its standing comes with its notes.
        parts: Parts {
            product_fees: PartStanding {
                uncollected: Cents(row.int(15)?),
                ..PartStanding::default()
            },
            resource_fees: PartStanding {
                uncollected: Cents(row.int(16)?),
                ..PartStanding::default()
            },
        },
        pricing_version: row.int(17)?,
    })
}

/// Bills with their standing: their credit notes (one query per [`IDS_PER_QUERY`] bills) and
/// what each part was credited, collected and still owes.
pub(crate) fn with_standing(db: &dyn Database, bills: Vec<Bill>) -> ApiResult<Vec<Bill>> {
    let ids: Vec<String> = bills.iter().map(|b| b.id.clone()).collect();
    let mut notes: HashMap<String, Vec<CreditNote>> = HashMap::new();
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let params: Vec<Value> = chunk.iter().map(Into::into).collect();
        let rows = db.execute(
            &format!(
                "SELECT {NOTE_COLUMNS} FROM credit_notes WHERE bill_id IN ({marks}) ORDER BY id"
            ),
            &params,
        )?;
        for row in &rows {
            let note = note_from_row(row)?;
            notes.entry(note.bill_id.clone()).or_default().push(note);
        }
    }
    Ok(bills
        .into_iter()
        .map(|mut b| {
            let of_bill = notes.remove(&b.id).unwrap_or_default();
            b.fill_standing(of_bill);
            b
        })
        .collect())
}

/// Bills per `IN (…)` list: below 999, the oldest SQLite limit on bound parameters.
const IDS_PER_QUERY: usize = 500;

/// A bill, if it is within the scope: `owner` and `provider` restrict it when given.
pub(crate) fn find(
    db: &dyn Database,
    id: &str,
    (owner, provider): (Option<String>, Option<String>),
) -> ApiResult<Bill> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM bills WHERE id = ?1
               AND (CAST(?2 AS TEXT) IS NULL OR owner_id = ?2) AND (CAST(?3 AS TEXT) IS NULL OR provider_id = ?3)"
        ),
        &[id.into(), owner.into(), provider.into()],
    )?;
    rows.first()
        .map(from_row)
        .transpose()?
        .ok_or_else(|| ApiError::not_found("bill"))
}

/// Bills oldest period first (then in the order they were written), so a list reads as a
/// statement; the cursor is the last bill's id.
pub(crate) fn list(
    db: &dyn Database,
    (owner, provider): (Option<String>, Option<String>),
    filter: &BillFilter,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Bill>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM bills
             WHERE (CAST(?1 AS TEXT) IS NULL OR owner_id = ?1) AND (CAST(?2 AS TEXT) IS NULL OR provider_id = ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR instance_id = ?3) AND period_start >= ?4 AND period_start < ?5
               AND (CAST(?6 AS TEXT) IS NULL OR (period_start, rowid) >
                                  (SELECT period_start, rowid FROM bills WHERE id = ?6
                                   AND (CAST(?1 AS TEXT) IS NULL OR owner_id = ?1)
                                   AND (CAST(?2 AS TEXT) IS NULL OR provider_id = ?2)))
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

/// Where an instance's billing cursor stands: its next period's start and close time (`None`
/// once every period is billed); `None` for an instance without a cursor.
pub(crate) fn cursor(
    db: &dyn Database,
    instance_id: &str,
) -> ApiResult<Option<(i64, Option<i64>)>> {
    let rows = db.execute(
        "SELECT next_period_start, next_close_at FROM billing_cursors WHERE instance_id = ?",
        &[instance_id.into()],
    )?;
    rows.first()
        .map(|r| Ok((r.int(0)?, r.opt_int(1)?)))
        .transpose()
}

/// Records a write-off of the period starting at `period_start`; UNIQUE (instance, period).
pub(crate) fn insert_write_off(
    db: &dyn Database,
    w: &WriteOff,
    period_start: i64,
) -> ApiResult<()> {
    let period_end = w.period_end.timestamp();
    db.execute(
        "INSERT INTO write_offs (id, instance_id, provider_id, product_id, period_start,
                                 period_end, test, reason, written_off_by, written_off_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            w.id.clone().into(),
            w.instance_id.clone().into(),
            w.provider_id.clone().into(),
            w.product_id.clone().into(),
            period_start.into(),
            period_end.into(),
            i64::from(w.test).into(),
            w.reason.clone().into(),
            w.written_off_by.clone().into(),
            rfc3339(w.written_off_at).into(),
        ],
    )?;
    Ok(())
}

const WRITE_OFF_COLUMNS: &str = "id, instance_id, provider_id, product_id, period_start, \
                                 period_end, test, reason, written_off_by, written_off_at";

fn write_off_from_row(row: &Row) -> ApiResult<WriteOff> {
    let ts = |i: usize| instant(row, i);
    Ok(WriteOff {
        id: row.text(0)?,
        instance_id: row.text(1)?,
        provider_id: row.text(2)?,
        product_id: row.text(3)?,
        period_start: ts(4)?,
        period_end: ts(5)?,
        test: row.int(6)? != 0,
        reason: row.text(7)?,
        written_off_by: row.text(8)?,
        written_off_at: clock::stored(&row.text(9)?)?,
    })
}

/// The write-off of one (instance, period), if there is one.
pub(crate) fn find_write_off(
    db: &dyn Database,
    instance_id: &str,
    period_start: i64,
) -> ApiResult<Option<WriteOff>> {
    let rows = db.execute(
        &format!(
            "SELECT {WRITE_OFF_COLUMNS} FROM write_offs WHERE instance_id = ? AND period_start = ?"
        ),
        &[instance_id.into(), period_start.into()],
    )?;
    rows.first().map(write_off_from_row).transpose()
}

/// An instance's write-offs, oldest period first, after the write-off `after`.
pub(crate) fn write_offs_of(
    db: &dyn Database,
    instance_id: &str,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<WriteOff>> {
    let rows = db.execute(
        &format!(
            "SELECT {WRITE_OFF_COLUMNS} FROM write_offs
             WHERE instance_id = ?1
               AND (CAST(?2 AS TEXT) IS NULL OR period_start >
                    (SELECT period_start FROM write_offs WHERE id = ?2 AND instance_id = ?1))
             ORDER BY period_start LIMIT ?3"
        ),
        &[
            instance_id.into(),
            after.map(str::to_owned).into(),
            (limit as i64).into(),
        ],
    )?;
    rows.iter().map(write_off_from_row).collect()
}

// Credit notes and collections

const NOTE_COLUMNS: &str = "id, bill_id, customer_id, provider_id, product_id, product_cents, \
                            resource_cents, reason, ledger_entry_id, issued_by, issued_at";

fn note_from_row(row: &Row) -> ApiResult<CreditNote> {
    let (product, resource) = (Cents(row.int(5)?), Cents(row.int(6)?));
    Ok(CreditNote {
        id: row.text(0)?,
        bill_id: row.text(1)?,
        customer_id: row.text(2)?,
        provider_id: row.text(3)?,
        product_id: row.text(4)?,
        amount: product + resource,
        product_fees: product,
        resource_fees: resource,
        reason: row.text(7)?,
        ledger_entry_id: row.text(8)?,
        issued_by: row.text(9)?,
        issued_at: instant(row, 10)?,
    })
}

/// Records a credit note.
pub(crate) fn insert_credit_note(db: &dyn Database, note: &CreditNote) -> ApiResult<()> {
    db.execute(
        &format!(
            "INSERT INTO credit_notes ({NOTE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        &[
            note.id.clone().into(),
            note.bill_id.clone().into(),
            note.customer_id.clone().into(),
            note.provider_id.clone().into(),
            note.product_id.clone().into(),
            note.product_fees.0.into(),
            note.resource_fees.0.into(),
            note.reason.clone().into(),
            note.ledger_entry_id.clone().into(),
            note.issued_by.clone().into(),
            note.issued_at.timestamp().into(),
        ],
    )?;
    Ok(())
}

/// Credit notes oldest first after the note `after`: of `bill_id` when given, within the scope
/// (`owner` and `provider` restrict them when given).
pub(crate) fn credit_notes(
    db: &dyn Database,
    (owner, provider): (Option<String>, Option<String>),
    bill_id: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<CreditNote>> {
    let rows = db.execute(
        &format!(
            "SELECT {NOTE_COLUMNS} FROM credit_notes
             WHERE (CAST(?1 AS TEXT) IS NULL OR customer_id = ?1)
               AND (CAST(?2 AS TEXT) IS NULL OR provider_id = ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR bill_id = ?3) AND (CAST(?4 AS TEXT) IS NULL OR id > ?4)
             ORDER BY id LIMIT ?5"
        ),
        &[
            owner.into(),
            provider.into(),
            bill_id.map(str::to_owned).into(),
            after.map(str::to_owned).into(),
            (limit as i64).into(),
        ],
    )?;
    rows.iter().map(note_from_row).collect()
}

/// Sets what a bill's parts still owe.
pub(crate) fn set_uncollected(
    db: &dyn Database,
    bill_id: &str,
    (product, resource): (Cents, Cents),
) -> ApiResult<()> {
    db.execute(
        "UPDATE bills SET uncollected_product_cents = ?, uncollected_resource_cents = ? WHERE id = ?",
        &[product.0.into(), resource.0.into(), bill_id.into()],
    )?;
    Ok(())
}

/// The customer's bills that still owe something, oldest first: by period, then by id (by the
/// partial index `bills_uncollected`).
pub(crate) fn owed_by(db: &dyn Database, customer_id: &str) -> ApiResult<Vec<Owed>> {
    let rows = db.execute(
        "SELECT id, provider_id, product_id, uncollected_product_cents, uncollected_resource_cents
         FROM bills
         WHERE owner_id = ? AND uncollected_product_cents + uncollected_resource_cents > 0
         ORDER BY period_start, id",
        &[customer_id.into()],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Owed {
                bill_id: r.text(0)?,
                provider_id: r.text(1)?,
                product_id: r.text(2)?,
                owed: (Cents(r.int(3)?), Cents(r.int(4)?)),
            })
        })
        .collect()
}

/// Collections (and what credit notes gave back) per INSERT statement: 9 parameters each.
const COLLECTIONS_PER_STATEMENT: usize = 100;

/// Records movements of bills' money.
pub(crate) fn insert_collections(db: &dyn Database, collections: &[Collection]) -> ApiResult<()> {
    for chunk in collections.chunks(COLLECTIONS_PER_STATEMENT) {
        let mut params: Vec<Value> = Vec::with_capacity(9 * chunk.len());
        for c in chunk {
            params.extend([
                c.id.clone().into(),
                c.bill_id.clone().into(),
                c.customer_id.clone().into(),
                c.provider_id.clone().into(),
                c.product_id.clone().into(),
                c.amounts.0.0.into(),
                c.amounts.1.0.into(),
                c.ledger_entry_id.clone().into(),
                c.at.timestamp().into(),
            ]);
        }
        db.execute(
            &format!(
                "INSERT INTO collections (id, bill_id, customer_id, provider_id, product_id,
                                          product_cents, resource_cents, ledger_entry_id,
                                          collected_at)
                 VALUES {}",
                vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
            ),
            &params,
        )?;
    }
    Ok(())
}
