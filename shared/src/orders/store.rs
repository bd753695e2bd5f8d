//! Orders, instances and their running intervals, and customers' accounts and ledger, in the
//! database. Money is integer cents, so SQLite sums it exactly.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::error::{ApiError, ApiResult, Code};
use crate::identity::Principal;
use crate::money::Cents;
use crate::orders::instance::{Instance, InstanceStatus, RunningInterval, Suspension};
use crate::orders::ledger::{EntryKind, LedgerEntry};
use crate::orders::{AcceptedEula, Choice, Purchasable};
use crate::period::Period;
use crate::platform::clock::{self, rfc3339};
use crate::platform::ids::new_id;
use crate::platform::storage::{
    Database, Dialect, Row, RowLock, StorageError, Value, enum_from_str, enum_to_str, lock_key,
    lock_rows, serialize_on,
};

/// Writes an order, its running instance and the instance's first running interval; returns the
/// order id and the instance.
pub(crate) fn insert_order(
    db: &dyn Database,
    caller: &Principal,
    p: &Purchasable,
    choice: &Choice,
    tz: Tz,
    now: DateTime<Utc>,
) -> ApiResult<(String, Instance)> {
    let order_id = new_id("ord", now);
    let instance_id = new_id("si", now);
    let eula = p.agreement.eula();
    db.execute(
        "INSERT INTO orders (id, owner_id, product_id, template_id, plan_id, region, test, instance_id,
                             created_at, eula_source, eula_template_id, eula_digest, eula_accepted_at,
                             eula)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            order_id.clone().into(),
            caller.id.clone().into(),
            p.product.id.clone().into(),
            choice.template.id.clone().into(),
            choice.plan_id.clone().into(),
            choice.region.clone().into(),
            i64::from(p.test).into(),
            instance_id.clone().into(),
            rfc3339(now).into(),
            eula.source().into(),
            eula.template_id().into(),
            eula.digest().into(),
            rfc3339(now).into(),
            serde_json::to_string(eula)
                .map_err(ApiError::internal)?
                .into(),
        ],
    )?;
    db.execute(
        "INSERT INTO instances (id, order_id, owner_id, product_id, provider_id, template_id, plan_id, region, status, test, created_at, billing_timezone, resources, pricing_version)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
        &[
            instance_id.clone().into(),
            order_id.clone().into(),
            caller.id.clone().into(),
            p.product.id.clone().into(),
            p.product.provider_id.clone().into(),
            choice.template.id.clone().into(),
            choice.plan_id.clone().into(),
            choice.region.clone().into(),
            i64::from(p.test).into(),
            rfc3339(now).into(),
            tz.name().into(),
            serde_json::to_string(&choice.template.resources)
                .map_err(ApiError::internal)?
                .into(),
            p.pricing_version.into(),
        ],
    )?;
    db.execute(
        "INSERT INTO instance_intervals (instance_id, started_at) VALUES (?, ?)",
        &[instance_id.clone().into(), now.timestamp().into()],
    )?;
    Ok((order_id, find_instance(db, &instance_id)?))
}

const COLUMNS: &str = "id, order_id, owner_id, product_id, provider_id, template_id, plan_id, \
                       region, status, test, created_at, released_at, billing_timezone, resources, \
                       pricing_version";

fn instance_from_row(row: &Row) -> Result<Instance, StorageError> {
    Ok(Instance {
        id: row.text(0)?,
        order_id: row.text(1)?,
        owner_id: row.text(2)?,
        product_id: row.text(3)?,
        provider_id: row.text(4)?,
        template_id: row.text(5)?,
        plan_id: row.opt_text(6)?,
        region: row.text(7)?,
        status: enum_from_str(&row.text(8)?)?,
        test: row.int(9)? != 0,
        created_at: clock::stored(&row.text(10)?)?,
        released_at: row
            .opt_text(11)?
            .as_deref()
            .map(clock::stored)
            .transpose()?,
        billing_timezone: row.opt_text(12)?,
        resources: match row.opt_text(13)? {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| StorageError::other(format!("stored resources: {e}")))?,
            None => Vec::new(),
        },
        running_intervals: Vec::new(),
        suspensions: Vec::new(),
        eula: None,
        pricing_version: row.int(14)?,
    })
}

pub(crate) fn intervals(db: &dyn Database, instance_id: &str) -> ApiResult<Vec<RunningInterval>> {
    let rows = db.execute(
        "SELECT started_at, ended_at FROM instance_intervals WHERE instance_id = ? ORDER BY rowid",
        &[instance_id.into()],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            Ok(RunningInterval {
                started_at: r.int(0)?,
                ended_at: r.opt_int(1)?,
            })
        })
        .collect::<Result<_, StorageError>>()?)
}

/// An instance whatever its owner, with the EULA its order accepted.
pub(crate) fn find_instance(db: &dyn Database, id: &str) -> ApiResult<Instance> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM instances WHERE id = ?"),
        &[id.into()],
    )?;
    let mut instance = rows
        .first()
        .map(instance_from_row)
        .transpose()?
        .ok_or_else(|| ApiError::not_found("instance"))?;
    instance.running_intervals = intervals(db, id)?;
    instance.suspensions = suspensions_of(db, id)?;
    instance.eula = accepted_eula(db, &instance.order_id)?.map(|(accepted, _)| accepted);
    Ok(instance)
}

/// The EULA an order accepted, and the EULA itself as the order recorded it (JSON); `None` for
/// an order placed before EULAs were recorded, the JSON `None` before their text was.
pub(crate) fn accepted_eula(
    db: &dyn Database,
    order_id: &str,
) -> ApiResult<Option<(AcceptedEula, Option<String>)>> {
    let rows = db.execute(
        "SELECT eula_source, eula_template_id, eula_digest, eula_accepted_at, eula FROM orders
         WHERE id = ? AND eula_digest IS NOT NULL",
        &[order_id.into()],
    )?;
    rows.first()
        .map(|r| {
            Ok((
                AcceptedEula {
                    source: r.text(0)?,
                    template_id: r.opt_text(1)?,
                    digest: r.text(2)?,
                    accepted_at: clock::stored(&r.text(3)?)?,
                },
                r.opt_text(4)?,
            ))
        })
        .transpose()
}

/// Instances whatever their owner, by id, with their running intervals: two queries per
/// [`IDS_PER_QUERY`] ids instead of two per instance (bill runs read a batch at once). Ids not
/// found are absent from the map.
pub(crate) fn find_instances(
    db: &dyn Database,
    ids: &[String],
) -> ApiResult<HashMap<String, Instance>> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let params: Vec<Value> = chunk.iter().map(Into::into).collect();
        for row in &db.execute(
            &format!("SELECT {COLUMNS} FROM instances WHERE id IN ({marks})"),
            &params,
        )? {
            let instance = instance_from_row(row)?;
            found.insert(instance.id.clone(), instance);
        }
        // Ordered by rowid, as `intervals` reads them: the order they were opened in.
        for row in &db.execute(
            &format!(
                "SELECT instance_id, started_at, ended_at FROM instance_intervals
                 WHERE instance_id IN ({marks}) ORDER BY rowid"
            ),
            &params,
        )? {
            if let Some(instance) = found.get_mut(&row.text(0)?) {
                instance.running_intervals.push(RunningInterval {
                    started_at: row.int(1)?,
                    ended_at: row.opt_int(2)?,
                });
            }
        }
        for (id, suspensions) in suspensions(db, chunk)? {
            if let Some(instance) = found.get_mut(&id) {
                instance.suspensions = suspensions;
            }
        }
    }
    Ok(found)
}

/// The suspensions of one instance, oldest first.
pub(crate) fn suspensions_of(db: &dyn Database, id: &str) -> ApiResult<Vec<Suspension>> {
    Ok(suspensions(db, &[id.to_owned()])?
        .remove(id)
        .unwrap_or_default())
}

/// The suspensions of these instances (at most [`IDS_PER_QUERY`]), oldest first, by instance;
/// instances never suspended are absent.
fn suspensions(db: &dyn Database, ids: &[String]) -> ApiResult<HashMap<String, Vec<Suspension>>> {
    let marks = vec!["?"; ids.len()].join(", ");
    let params: Vec<Value> = ids.iter().map(Into::into).collect();
    let mut found: HashMap<String, Vec<Suspension>> = HashMap::new();
    for row in &db.execute(
        &format!(
            "SELECT instance_id, suspended_at, resumed_at FROM instance_suspensions
             WHERE instance_id IN ({marks}) ORDER BY instance_id, suspended_at"
        ),
        &params,
    )? {
        found.entry(row.text(0)?).or_default().push(Suspension {
            suspended_at: clock::from_unix(row.int(1)?)?,
            resumed_at: row.opt_int(2)?.map(clock::from_unix).transpose()?,
        });
    }
    Ok(found)
}

/// Ids per `IN (…)` list: below 999, the oldest SQLite limit on bound parameters.
const IDS_PER_QUERY: usize = 500;

/// The name of an instance's gate (`instance::close_gate`).
fn gate(instance_id: &str) -> String {
    format!("instance {instance_id}")
}

/// The key of the instance's gate, for a push's statement to take it shared.
pub(crate) fn gate_key(instance_id: &str) -> i64 {
    lock_key(&gate(instance_id))
}

/// Waits for the instance's gate and holds it alone until the caller's transaction ends.
pub(crate) fn close_gate(db: &dyn Database, instance_id: &str) -> Result<(), StorageError> {
    serialize_on(db, &gate(instance_id))
}

/// Locks these instances until the caller's transaction ends — each one's gate, then their
/// rows, in id order —, so their status is read as it is once concurrent actions and pushes of
/// them have committed ([`lock_rows`]).
pub(crate) fn lock_instances(db: &dyn Database, ids: &[&str]) -> ApiResult<()> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    for id in &sorted {
        close_gate(db, id)?;
    }
    Ok(lock_rows(
        db,
        ("instances", "id"),
        &sorted,
        RowLock::Exclusive,
    )?)
}

/// Moves an instance from `from` to `to` (compare-and-set: a concurrent action makes this one
/// fail rather than act on a stale status) and closes or opens its running interval at `now`.
pub(crate) fn move_instance(
    db: &dyn Database,
    id: &str,
    from: InstanceStatus,
    to: InstanceStatus,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    if move_instance_if(db, id, from, to, now)? {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::InvalidInstanceAction,
            "the instance changed meanwhile; retry",
        ))
    }
}

/// Moves an instance from `from` to `to` as [`move_instance`] does, if it still is `from`:
/// whether it moved (an instance acted on meanwhile is left as it is).
pub(crate) fn move_instance_if(
    db: &dyn Database,
    id: &str,
    from: InstanceStatus,
    to: InstanceStatus,
    now: DateTime<Utc>,
) -> ApiResult<bool> {
    let moved = db.execute(
        "UPDATE instances SET status = ?, released_at = CASE WHEN CAST(? AS TEXT) = 'released' THEN ? ELSE released_at END
         WHERE id = ? AND status = ? RETURNING id",
        &[
            enum_to_str(&to).into(),
            enum_to_str(&to).into(),
            rfc3339(now).into(),
            id.into(),
            enum_to_str(&from).into(),
        ],
    )?;
    if moved.is_empty() {
        return Ok(false);
    }
    let at = now.timestamp();
    match to {
        InstanceStatus::Running => {
            db.execute(
                "INSERT INTO instance_intervals (instance_id, started_at) VALUES (?, ?)",
                &[id.into(), at.into()],
            )?;
        }
        InstanceStatus::Stopped | InstanceStatus::Suspended | InstanceStatus::Released => {
            db.execute(
                &format!(
                    "UPDATE instance_intervals SET ended_at = {}(started_at, ?)
                     WHERE instance_id = ? AND ended_at IS NULL",
                    match db.dialect() {
                        Dialect::Sqlite => "MAX",
                        Dialect::Postgres => "GREATEST",
                    }
                ),
                &[at.into(), id.into()],
            )?;
        }
    }
    Ok(true)
}

/// Starts billing an instance at `first`, its first period, closing at `closes_at`. A cursor
/// already there is kept: a bill run may have opened it first.
pub(crate) fn open_billing_cursor(
    db: &dyn Database,
    instance_id: &str,
    first: &Period,
    closes_at: DateTime<Utc>,
) -> ApiResult<()> {
    db.execute(
        "INSERT INTO billing_cursors (instance_id, next_period_start, next_close_at) VALUES (?, ?, ?)
         ON CONFLICT (instance_id) DO NOTHING",
        &[
            instance_id.into(),
            first.start.timestamp().into(),
            closes_at.timestamp().into(),
        ],
    )?;
    Ok(())
}

/// The ids of instances without a billing cursor (ordered before cursors were opened at order
/// time).
pub(crate) fn instances_without_cursor(db: &dyn Database) -> ApiResult<Vec<String>> {
    db.execute(
        "SELECT id FROM instances WHERE id NOT IN (SELECT instance_id FROM billing_cursors)",
        &[],
    )?
    .iter()
    .map(|r| Ok(r.text(0)?))
    .collect()
}

// Accounts and the ledger

/// The customer's balance, when it last changed and since when it is in arrears, if the
/// account has a row (an account that never moved money has none: reads write nothing).
#[allow(clippy::type_complexity)]
pub(crate) fn balance(
    db: &dyn Database,
    customer_id: &str,
) -> ApiResult<Option<(Cents, DateTime<Utc>, Option<DateTime<Utc>>)>> {
    let rows = db.execute(
        "SELECT balance_cents, updated_at, arrears_since FROM accounts WHERE customer_id = ?",
        &[customer_id.into()],
    )?;
    rows.first()
        .map(|row| {
            let since = row.opt_int(2)?.map(clock::from_unix).transpose()?;
            Ok((Cents(row.int(0)?), clock::stored(&row.text(1)?)?, since))
        })
        .transpose()
}

/// The customer's balance (0 for an account that never moved money).
pub(crate) fn balance_cents(db: &dyn Database, customer_id: &str) -> ApiResult<Cents> {
    Ok(balance(db, customer_id)?.map_or(Cents(0), |(b, _, _)| b))
}

/// Accounts (and the rows it inserts or updates) per statement: well under SQLite's 999
/// parameters.
const ROWS_PER_STATEMENT: usize = 100;

/// The balances of these customers (sorted, each once), creating the accounts that have no row
/// yet at 0, locking them for the caller's transaction, and which of them are in arrears.
pub(crate) fn open_accounts(
    db: &dyn Database,
    customers: &[&str],
    at: &str,
) -> ApiResult<(HashMap<String, i64>, HashSet<String>)> {
    let mut balances = HashMap::with_capacity(customers.len());
    let mut in_arrears = HashSet::new();
    for chunk in customers.chunks(ROWS_PER_STATEMENT) {
        let mut params: Vec<Value> = Vec::with_capacity(2 * chunk.len());
        for c in chunk {
            params.extend([(*c).into(), at.into()]);
        }
        // Each account created, or its row locked (an upsert locks the row it updates) until
        // the caller's transaction ends, one after the other in the customers' order, new or
        // not: two postings never each hold an account the other waits for. A concurrent
        // posting to one of these waits, then reads the balance this one leaves.
        let rows = db.execute(
            &format!(
                "INSERT INTO accounts (customer_id, balance_cents, updated_at) VALUES {}
                 ON CONFLICT (customer_id) DO UPDATE SET balance_cents = accounts.balance_cents
                 RETURNING customer_id, balance_cents, arrears_since",
                vec!["(?, 0, ?)"; chunk.len()].join(", ")
            ),
            &params,
        )?;
        for row in &rows {
            if row.opt_int(2)?.is_some() {
                in_arrears.insert(row.text(0)?);
            }
            balances.insert(row.text(0)?, row.int(1)?);
        }
    }
    Ok((balances, in_arrears))
}

/// Appends ledger entries; `customers[i]` is `entries[i]`'s account.
pub(crate) fn insert_entries(
    db: &dyn Database,
    entries: &[LedgerEntry],
    customers: &[&str],
) -> ApiResult<()> {
    for (chunk, owners) in entries
        .chunks(ROWS_PER_STATEMENT)
        .zip(customers.chunks(ROWS_PER_STATEMENT))
    {
        let mut params: Vec<Value> = Vec::with_capacity(8 * chunk.len());
        for (e, customer) in chunk.iter().zip(owners) {
            params.extend([
                e.id.clone().into(),
                (*customer).into(),
                enum_to_str(&e.kind).into(),
                e.amount.0.into(),
                e.balance_after.0.into(),
                e.reference.clone().into(),
                e.created_by.clone().into(),
                rfc3339(e.created_at).into(),
            ]);
        }
        db.execute(
            &format!(
                "INSERT INTO ledger_entries (id, customer_id, kind, amount_cents, balance_after_cents,
                                             reference, created_by, created_at) VALUES {}",
                vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
            ),
            &params,
        )?;
    }
    Ok(())
}

/// Sets the balances of these accounts: one below zero is in arrears from `now` (Unix seconds)
/// unless it already was, one at zero or above is not.
pub(crate) fn set_balances(
    db: &dyn Database,
    balances: &[(&str, i64)],
    at: &str,
    now: i64,
) -> ApiResult<()> {
    for chunk in balances.chunks(ROWS_PER_STATEMENT) {
        let mut params: Vec<Value> = vec![at.into(), now.into()];
        for (c, cents) in chunk {
            params.extend([(*c).into(), (*cents).into()]);
        }
        db.execute(
            &format!(
                "UPDATE accounts AS a SET balance_cents = v.column2, updated_at = ?1,
                    arrears_since = CASE WHEN v.column2 < 0
                                         THEN COALESCE(a.arrears_since, CAST(?2 AS BIGINT))
                                         ELSE NULL END
                 FROM (VALUES {}) AS v WHERE a.customer_id = v.column1",
                vec!["(CAST(? AS TEXT), CAST(? AS BIGINT))"; chunk.len()].join(", ")
            ),
            &params,
        )?;
    }
    Ok(())
}

fn entry_from_row(row: &Row) -> ApiResult<LedgerEntry> {
    let kind: EntryKind = enum_from_str(&row.text(1)?)?;
    Ok(LedgerEntry {
        id: row.text(0)?,
        kind,
        amount: Cents(row.int(2)?),
        balance_after: Cents(row.int(3)?),
        reference: row.opt_text(4)?,
        created_by: row.text(5)?,
        created_at: clock::stored(&row.text(6)?)?,
    })
}

/// Ledger entries, newest first (`after` is the last id of the previous page).
pub(crate) fn ledger(
    db: &dyn Database,
    customer_id: &str,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<LedgerEntry>> {
    let rows = db.execute(
        "SELECT id, kind, amount_cents, balance_after_cents, reference, created_by, created_at
         FROM ledger_entries
         WHERE customer_id = ?1
           AND (CAST(?2 AS TEXT) IS NULL OR rowid < (SELECT rowid FROM ledger_entries WHERE id = ?2 AND customer_id = ?1))
         ORDER BY rowid DESC LIMIT ?3",
        &[
            customer_id.into(),
            after.map(str::to_owned).into(),
            (limit as i64).into(),
        ],
    )?;
    rows.iter().map(entry_from_row).collect()
}

/// Instance ids, oldest first after `after`: those of `owner` and/or of `provider`'s products
/// when given (the caller's scope), every instance when neither is.
pub(crate) fn list_instance_ids(
    db: &dyn Database,
    (owner, provider): (Option<String>, Option<String>),
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<String>> {
    let rows = db.execute(
        "SELECT id FROM instances
         WHERE (CAST(?1 AS TEXT) IS NULL OR owner_id = ?1) AND (CAST(?2 AS TEXT) IS NULL OR provider_id = ?2)
           AND (CAST(?3 AS TEXT) IS NULL OR id > ?3)
         ORDER BY id LIMIT ?4",
        &[
            owner.into(),
            provider.into(),
            after.map(str::to_owned).into(),
            (limit as i64).into(),
        ],
    )?;
    Ok(rows.iter().map(|r| r.text(0)).collect::<Result<_, _>>()?)
}

/// A product's test instances not yet released, with their status.
pub(crate) fn live_test_instances(
    db: &dyn Database,
    product_id: &str,
) -> ApiResult<Vec<(String, InstanceStatus)>> {
    let rows = db.execute(
        "SELECT id, status FROM instances
         WHERE product_id = ? AND test = 1 AND status != 'released' ORDER BY id",
        &[product_id.into()],
    )?;
    rows.iter()
        .map(|r| Ok((r.text(0)?, enum_from_str(&r.text(1)?)?)))
        .collect()
}

/// The test instances alive that were deployed at or before `deployed_by` (Unix seconds), with
/// their status and when they were deployed.
pub(crate) fn test_instances_deployed_by(
    db: &dyn Database,
    deployed_by: i64,
) -> ApiResult<Vec<(String, InstanceStatus, i64)>> {
    let rows = db.execute(
        "SELECT i.id, i.status, MIN(v.started_at) FROM instances i
         JOIN instance_intervals v ON v.instance_id = i.id
         WHERE i.test = 1 AND i.status <> 'released'
         GROUP BY i.id, i.status HAVING MIN(v.started_at) <= ? ORDER BY i.id",
        &[deployed_by.into()],
    )?;
    rows.iter()
        .map(|r| Ok((r.text(0)?, enum_from_str(&r.text(1)?)?, r.int(2)?)))
        .collect()
}

// Arrears

/// Every account below zero that is not in arrears yet is from `now`: a bill run's deductions
/// start them as they post, this catches accounts that were below zero before arrears were
/// kept.
pub(crate) fn start_arrears(db: &dyn Database, now: DateTime<Utc>) -> ApiResult<()> {
    db.execute(
        "UPDATE accounts SET arrears_since = ? WHERE balance_cents < 0 AND arrears_since IS NULL",
        &[now.timestamp().into()],
    )?;
    Ok(())
}

/// The customers in arrears since `since` or before; when `locked`, locked for the caller's
/// transaction in their order (as postings lock them): a top-up under way ends their arrears
/// first, or waits for this transaction and then resumes what it suspends.
pub(crate) fn overdue(
    db: &dyn Database,
    since: DateTime<Utc>,
    locked: bool,
) -> ApiResult<Vec<String>> {
    let lock = if locked { db.dialect().row_lock() } else { "" };
    let rows = db.execute(
        &format!(
            "SELECT customer_id FROM accounts WHERE arrears_since <= ? ORDER BY customer_id{lock}"
        ),
        &[since.timestamp().into()],
    )?;
    rows.iter().map(|r| Ok(r.text(0)?)).collect()
}

/// The running non-test instances of these customers, by id.
pub(crate) fn running_of(db: &dyn Database, customers: &[String]) -> ApiResult<Vec<String>> {
    let mut ids = Vec::new();
    for chunk in customers.chunks(IDS_PER_QUERY) {
        let params: Vec<Value> = chunk.iter().map(Into::into).collect();
        let rows = db.execute(
            &format!(
                "SELECT id FROM instances
                 WHERE owner_id IN ({}) AND status = 'running' AND test = 0 ORDER BY id",
                vec!["?"; chunk.len()].join(", ")
            ),
            &params,
        )?;
        for row in &rows {
            ids.push(row.text(0)?);
        }
    }
    Ok(ids)
}

/// The customer's suspended instances, by id.
pub(crate) fn suspended_instances(db: &dyn Database, customer_id: &str) -> ApiResult<Vec<String>> {
    let rows = db.execute(
        "SELECT id FROM instances WHERE owner_id = ? AND status = 'suspended' ORDER BY id",
        &[customer_id.into()],
    )?;
    rows.iter().map(|r| Ok(r.text(0)?)).collect()
}

/// Records the start of an instance's suspension.
pub(crate) fn open_suspension(
    db: &dyn Database,
    instance_id: &str,
    at: DateTime<Utc>,
) -> ApiResult<()> {
    db.execute(
        "INSERT INTO instance_suspensions (instance_id, suspended_at) VALUES (?, ?)",
        &[instance_id.into(), at.timestamp().into()],
    )?;
    Ok(())
}

/// Records the end of an instance's suspension.
pub(crate) fn close_suspension(
    db: &dyn Database,
    instance_id: &str,
    at: DateTime<Utc>,
) -> ApiResult<()> {
    db.execute(
        "UPDATE instance_suspensions SET resumed_at = ? WHERE instance_id = ? AND resumed_at IS NULL",
        &[at.timestamp().into(), instance_id.into()],
    )?;
    Ok(())
}
