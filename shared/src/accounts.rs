//! Customer accounts and their ledger (SPEC §9). Money is stored as integer cents so that SQLite
//! sums it exactly; every balance change is a ledger entry written in the same transaction, so
//! the balance always equals the sum of the ledger.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult, Code};
use crate::ids::new_id;
use crate::storage::{Database, Row};

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

/// Adds `amount` (negative to deduct) to the balance and appends its ledger entry. Must run
/// inside the caller's transaction, together with whatever the entry records (a bill).
pub fn post(
    db: &dyn Database,
    customer_id: &str,
    kind: EntryKind,
    amount: Cents,
    reference: Option<&str>,
    actor_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<LedgerEntry> {
    db.execute(
        "INSERT INTO accounts (customer_id, balance_cents, updated_at) VALUES (?, 0, ?)
         ON CONFLICT (customer_id) DO NOTHING",
        &[customer_id.into(), rfc3339(now).into()],
    )?;
    let rows = db.execute(
        "UPDATE accounts SET balance_cents = balance_cents + ?, updated_at = ? WHERE customer_id = ?
         RETURNING balance_cents",
        &[amount.0.into(), rfc3339(now).into(), customer_id.into()],
    )?;
    let balance_after = Cents(
        rows.first()
            .ok_or_else(|| ApiError::internal("account vanished"))?
            .int(0)?,
    );
    let entry = LedgerEntry {
        id: new_id("led", now),
        kind,
        amount,
        balance_after,
        reference: reference.map(str::to_owned),
        created_by: actor_id.to_owned(),
        created_at: rfc3339(now),
    };
    db.execute(
        "INSERT INTO ledger_entries (id, customer_id, kind, amount_cents, balance_after_cents, reference, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            entry.id.clone().into(),
            customer_id.into(),
            crate::identity::enum_to_str(&entry.kind).into(),
            amount.0.into(),
            balance_after.0.into(),
            entry.reference.clone().into(),
            actor_id.into(),
            entry.created_at.clone().into(),
        ],
    )?;
    Ok(entry)
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
           AND (?2 IS NULL OR rowid < (SELECT rowid FROM ledger_entries WHERE id = ?2))
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
}
