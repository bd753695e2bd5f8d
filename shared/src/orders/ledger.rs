//! Customer accounts and their ledger (SPEC §9). Money is stored as integer cents so that SQLite
//! sums it exactly; every balance change is a ledger entry written in the same transaction, so
//! the balance always equals the sum of the ledger.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::{ApiError, ApiResult, Code};
use crate::platform::clock::rfc3339;
use crate::platform::ids::IdSequence;
use crate::platform::storage::{Database, Row, Value};

/// The currency every account is kept in: the marketplace settles in CNY.
pub const ACCOUNT_CURRENCY: &str = "CNY";

/// An amount of money in whole cents: what balances and ledger entries hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cents(pub i64);

impl Cents {
    /// Exact conversion: refuses amounts with more than 2 decimal places or out of range.
    pub fn from_decimal(amount: Decimal) -> Option<Self> {
        let cents = amount.checked_mul(Decimal::ONE_HUNDRED)?;
        if cents.fract() != Decimal::ZERO {
            return None;
        }
        i64::try_from(cents).ok().map(Cents)
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }
}

impl Serialize for Cents {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_decimal().to_string())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub customer_id: String,
    pub currency: &'static str,
    pub balance: Cents,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    TopUp,
    Bill,
}

#[derive(Debug, Clone, Serialize)]
pub struct LedgerEntry {
    pub id: String,
    pub kind: EntryKind,
    /// Positive for top-ups, negative for bills.
    pub amount: Cents,
    pub balance_after: Cents,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub created_by: String,
    pub created_at: String,
}

/// The customer's account; one that never moved money reads as an empty account (reads write
/// nothing: the row is created by the first ledger entry).
pub fn account(db: &dyn Database, customer_id: &str, now: DateTime<Utc>) -> ApiResult<Account> {
    let rows = db.execute(
        "SELECT balance_cents, updated_at FROM accounts WHERE customer_id = ?",
        &[customer_id.into()],
    )?;
    let (balance, updated_at) = match rows.first() {
        Some(row) => (Cents(row.int(0)?), row.text(1)?),
        None => (Cents(0), rfc3339(now)),
    };
    Ok(Account {
        customer_id: customer_id.to_owned(),
        currency: ACCOUNT_CURRENCY,
        balance,
        updated_at,
    })
}

/// One balance change to record: a top-up, or a bill's deduction (negative).
pub struct Posting<'a> {
    pub customer_id: &'a str,
    pub kind: EntryKind,
    pub amount: Cents,
    pub reference: Option<&'a str>,
}

/// Adds `amount` (negative to deduct) to the balance and appends its ledger entry. Must run
/// inside the caller's transaction, together with whatever the entry records (a bill).
pub fn post(
    db: &dyn Database,
    posting: Posting,
    actor_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<LedgerEntry> {
    post_many(db, &[posting], actor_id, now)?
        .pop()
        .ok_or_else(|| ApiError::internal("a posting without its entry"))
}

/// Accounts (and the rows it inserts or updates) per statement: well under SQLite's 999
/// parameters.
const ROWS_PER_STATEMENT: usize = 100;

/// Posts many changes in the caller's transaction with a handful of statements: a bill run posts
/// thousands at once. Entries of one customer are applied in the given order, so each entry's
/// `balance_after` is the balance right after it, as if posted one by one.
pub fn post_many(
    db: &dyn Database,
    postings: &[Posting],
    actor_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<Vec<LedgerEntry>> {
    let at = rfc3339(now);
    let mut customers: Vec<&str> = postings.iter().map(|p| p.customer_id).collect();
    customers.sort_unstable();
    customers.dedup();
    let mut balances: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for chunk in customers.chunks(ROWS_PER_STATEMENT) {
        let mut params: Vec<Value> = Vec::with_capacity(2 * chunk.len());
        for c in chunk {
            params.extend([(*c).into(), at.clone().into()]);
        }
        db.execute(
            &format!(
                "INSERT INTO accounts (customer_id, balance_cents, updated_at) VALUES {}
                 ON CONFLICT (customer_id) DO NOTHING",
                vec!["(?, 0, ?)"; chunk.len()].join(", ")
            ),
            &params,
        )?;
        let ids: Vec<Value> = chunk.iter().map(|c| (*c).into()).collect();
        let rows = db.execute(
            &format!(
                "SELECT customer_id, balance_cents FROM accounts WHERE customer_id IN ({})",
                vec!["?"; chunk.len()].join(", ")
            ),
            &ids,
        )?;
        for row in &rows {
            balances.insert(row.text(0)?, row.int(1)?);
        }
    }
    let mut ids = IdSequence::new("led", now);
    let mut entries = Vec::with_capacity(postings.len());
    for p in postings {
        let balance = balances
            .get_mut(p.customer_id)
            .ok_or_else(|| ApiError::internal("account vanished"))?;
        *balance = balance
            .checked_add(p.amount.0)
            .ok_or_else(|| ApiError::internal("a balance beyond 64-bit cents"))?;
        entries.push(LedgerEntry {
            id: ids.next_id(),
            kind: p.kind,
            amount: p.amount,
            balance_after: Cents(*balance),
            reference: p.reference.map(str::to_owned),
            created_by: actor_id.to_owned(),
            created_at: at.clone(),
        });
    }
    for (chunk, posts) in entries
        .chunks(ROWS_PER_STATEMENT)
        .zip(postings.chunks(ROWS_PER_STATEMENT))
    {
        let mut params: Vec<Value> = Vec::with_capacity(8 * chunk.len());
        for (e, p) in chunk.iter().zip(posts) {
            params.extend([
                e.id.clone().into(),
                p.customer_id.into(),
                crate::platform::storage::enum_to_str(&e.kind).into(),
                e.amount.0.into(),
                e.balance_after.0.into(),
                e.reference.clone().into(),
                actor_id.into(),
                at.clone().into(),
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
    for chunk in customers.chunks(ROWS_PER_STATEMENT) {
        let mut params: Vec<Value> = vec![at.clone().into()];
        for c in chunk {
            params.extend([(*c).into(), balances[*c].into()]);
        }
        db.execute(
            &format!(
                "UPDATE accounts AS a SET balance_cents = v.column2, updated_at = ?
                 FROM (VALUES {}) AS v WHERE a.customer_id = v.column1",
                vec!["(?, ?)"; chunk.len()].join(", ")
            ),
            &params,
        )?;
    }
    Ok(entries)
}

/// The largest single top-up in cents (100,000,000.00): a guard against typos.
const TOP_UP_MAX: i64 = 10_000_000_000;

/// Validates a top-up amount: positive, at most 2 decimal places, at most 100,000,000.00.
pub fn top_up_amount(amount: Decimal) -> ApiResult<Cents> {
    let bad = |m: &str| {
        ApiError::validation(vec![crate::error::FieldError::new(
            "amount",
            Code::InvalidAmount,
            m,
        )])
    };
    let cents = Cents::from_decimal(amount).ok_or_else(|| bad("at most 2 decimal places"))?;
    if cents.0 <= 0 {
        return Err(bad("must be positive"));
    }
    if cents.0 > TOP_UP_MAX {
        return Err(bad("at most 100000000.00 per top-up"));
    }
    Ok(cents)
}

fn entry_from_row(row: &Row) -> ApiResult<LedgerEntry> {
    let kind = match row.text(1)?.as_str() {
        "top_up" => EntryKind::TopUp,
        "bill" => EntryKind::Bill,
        other => return Err(ApiError::internal(format!("unknown ledger kind {other}"))),
    };
    Ok(LedgerEntry {
        id: row.text(0)?,
        kind,
        amount: Cents(row.int(2)?),
        balance_after: Cents(row.int(3)?),
        reference: row.opt_text(4)?,
        created_by: row.text(5)?,
        created_at: row.text(6)?,
    })
}

/// Ledger entries, newest first (`after` is the last id of the previous page).
pub fn ledger(
    db: &dyn Database,
    customer_id: &str,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<LedgerEntry>> {
    let rows = db.execute(
        "SELECT id, kind, amount_cents, balance_after_cents, reference, created_by, created_at
         FROM ledger_entries
         WHERE customer_id = ?1
           AND (?2 IS NULL OR rowid < (SELECT rowid FROM ledger_entries WHERE id = ?2 AND customer_id = ?1))
         ORDER BY rowid DESC LIMIT ?3",
        &[
            customer_id.into(),
            after.map(str::to_owned).into(),
            (limit as i64).into(),
        ],
    )?;
    rows.iter().map(entry_from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_are_exact() {
        assert_eq!(
            Cents::from_decimal(Decimal::new(1234, 2)),
            Some(Cents(1234))
        );
        assert_eq!(Cents::from_decimal(Decimal::new(12345, 3)), None);
        assert_eq!(
            Cents::from_decimal(Decimal::new(12340, 3)),
            Some(Cents(1234))
        );
        assert_eq!(Cents(-5).to_decimal().to_string(), "-0.05");
    }

    #[test]
    fn top_ups_are_positive_cents() {
        assert!(top_up_amount(Decimal::new(1, 2)).is_ok());
        assert!(top_up_amount(Decimal::ZERO).is_err());
        assert!(top_up_amount(Decimal::new(-100, 2)).is_err());
        assert!(top_up_amount(Decimal::new(1, 3)).is_err());
        assert!(top_up_amount(Decimal::new(TOP_UP_MAX + 1, 2)).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Posting a batch at once leaves the balances and entries posting one by one would.
        #[test]
        fn a_batch_posts_as_one_by_one_would(
            changes in proptest::collection::vec((0usize..4, -50_000i64..50_000), 1..40)
        ) {
            use crate::platform::storage::Backend;
            use crate::platform::storage::native::NativeBackend;
            let now = chrono::Utc::now();
            let customers = ["usr-a", "usr-b", "usr-c", "usr-d"];
            let run = |batched: bool| {
                let dir = tempfile::tempdir().unwrap();
                let backend = NativeBackend::new(dir.path().join("db.sqlite"));
                let db = backend.open_db().unwrap();
                crate::platform::storage::migrations::migrate(db.as_ref()).unwrap();
                // These customers are not principals: only the ledger arithmetic is under test.
                db.execute("PRAGMA foreign_keys = OFF", &[]).unwrap();
                let refs: Vec<String> = (0..changes.len()).map(|i| format!("bill-{i}")).collect();
                let postings: Vec<Posting> = changes
                    .iter()
                    .zip(&refs)
                    .map(|((c, cents), r)| Posting {
                        customer_id: customers[*c],
                        kind: EntryKind::Bill,
                        amount: Cents(*cents),
                        reference: Some(r),
                    })
                    .collect();
                let entries: Vec<(i64, i64)> = if batched {
                    post_many(db.as_ref(), &postings, "usr-admin", now).unwrap()
                } else {
                    postings.into_iter().map(|p| post(db.as_ref(), p, "usr-admin", now).unwrap()).collect()
                }
                .iter()
                .map(|e| (e.amount.0, e.balance_after.0))
                .collect();
                let balances: Vec<i64> = customers
                    .iter()
                    .map(|c| account(db.as_ref(), c, now).unwrap().balance.0)
                    .collect();
                (entries, balances)
            };
            proptest::prop_assert_eq!(run(true), run(false));
        }
    }
}
