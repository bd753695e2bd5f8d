//! Customer accounts and their ledger (docs/RULES.md R8.13–R8.15). Money is stored as integer cents
//! so that SQLite sums it exactly; every balance change is a ledger entry written in the same
//! transaction, so the balance always equals the sum of the ledger.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, Code};
use crate::identity::{self, Principal, Role};
use crate::money::Cents;
use crate::orders::{arrears, store};
use crate::platform::clock::rfc3339;
use crate::platform::ids::IdSequence;
use crate::platform::storage::Database;

/// The currency every account is kept in: the marketplace's, the one products are priced in.
pub(crate) const ACCOUNT_CURRENCY: &str = crate::listing::steps::CURRENCY;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Account {
    pub customer_id: String,
    pub currency: &'static str,
    pub balance: Cents,
    #[serde(with = "crate::platform::clock::instant")]
    pub updated_at: DateTime<Utc>,
    /// Set while the balance is below zero after a bill run took it there.
    pub arrears: Option<Arrears>,
}

/// An account in arrears: since when, and when the next bill run suspends its running
/// instances unless a top-up brings the balance back to zero or above.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Arrears {
    #[serde(with = "crate::platform::clock::instant")]
    pub since: DateTime<Utc>,
    #[serde(with = "crate::platform::clock::instant")]
    pub suspension_deadline: DateTime<Utc>,
}

impl Arrears {
    /// Arrears since `since`, with `grace_hours` before instances are suspended.
    pub(crate) fn new(since: DateTime<Utc>, grace_hours: u32) -> Self {
        Arrears {
            since,
            suspension_deadline: since + chrono::TimeDelta::hours(i64::from(grace_hours)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EntryKind {
    TopUp,
    Bill,
    /// A credit note's credit.
    Credit,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LedgerEntry {
    pub id: String,
    pub kind: EntryKind,
    /// Positive for top-ups, negative for bills.
    pub amount: Cents,
    pub balance_after: Cents,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub created_by: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub created_at: DateTime<Utc>,
}

/// The customer's account, its arrears' suspension deadline `grace_hours` after they began;
/// one that never moved money reads as an empty account (reads write nothing: the row is
/// created by the first ledger entry).
pub(crate) fn account(
    db: &dyn Database,
    customer_id: &str,
    now: DateTime<Utc>,
    grace_hours: u32,
) -> ApiResult<Account> {
    let (balance, updated_at, arrears_since) =
        store::balance(db, customer_id)?.unwrap_or((Cents(0), now, None));
    Ok(Account {
        customer_id: customer_id.to_owned(),
        currency: ACCOUNT_CURRENCY,
        balance,
        updated_at,
        arrears: arrears_since.map(|since| Arrears::new(since, grace_hours)),
    })
}

/// One balance change to record: a top-up, or a bill's deduction (negative).
pub(crate) struct Posting<'a> {
    pub customer_id: &'a str,
    pub kind: EntryKind,
    pub amount: Cents,
    pub reference: Option<&'a str>,
}

/// Adds `amount` (negative to deduct) to the balance and appends its ledger entry. Must run
/// inside the caller's transaction, together with whatever the entry records (a bill).
pub(crate) fn post(
    db: &dyn Database,
    posting: Posting,
    actor_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<LedgerEntry> {
    post_many(db, &[posting], actor_id, now)?
        .pop()
        .ok_or_else(|| ApiError::internal("a posting without its entry"))
}

/// Posts many changes in the caller's transaction with a handful of statements: a bill run posts
/// thousands at once. Entries of one customer are applied in the given order, so each entry's
/// `balance_after` is the balance right after it, as if posted one by one. An account left
/// below zero is in arrears from `now` (unless it already was); one brought back to zero or
/// above is not any more, and the instances its arrears suspended run again from `now`.
pub(crate) fn post_many(
    db: &dyn Database,
    postings: &[Posting],
    actor_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<Vec<LedgerEntry>> {
    let at = rfc3339(now);
    let mut customers: Vec<&str> = postings.iter().map(|p| p.customer_id).collect();
    customers.sort_unstable();
    customers.dedup();
    let (mut balances, in_arrears) = store::open_accounts(db, &customers, &at)?;
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
            created_at: now,
        });
    }
    let owners: Vec<&str> = postings.iter().map(|p| p.customer_id).collect();
    store::insert_entries(db, &entries, &owners)?;
    let updated: Vec<(&str, i64)> = customers.iter().map(|c| (*c, balances[*c])).collect();
    store::set_balances(db, &updated, &at, now.timestamp())?;
    for (customer, balance) in updated {
        if balance >= 0 && in_arrears.contains(customer) {
            arrears::resume(db, customer, now)?;
        }
    }
    Ok(entries)
}

/// The largest single top-up or credit note in cents (100,000,000.00): a guard against typos.
pub(crate) const AMOUNT_MAX: i64 = 10_000_000_000;

/// Validates a top-up amount: positive, at most 2 decimal places, at most 100,000,000.00.
pub(crate) fn top_up_amount(amount: Decimal) -> ApiResult<Cents> {
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
    if cents.0 > AMOUNT_MAX {
        return Err(bad("at most 100000000.00 per top-up"));
    }
    Ok(cents)
}

/// An operator credits a customer's account, in the caller's transaction (the bills it pays
/// are collected in the same one). Only customers have accounts: anyone else is 404.
pub(crate) fn top_up(
    db: &dyn Database,
    operator: &Principal,
    customer_id: &str,
    amount: Decimal,
    now: DateTime<Utc>,
) -> ApiResult<LedgerEntry> {
    let amount = top_up_amount(amount)?;
    let customer = identity::find_principal(db, customer_id)?;
    if customer.role != Role::Customer {
        return Err(ApiError::not_found("customer account"));
    }
    let top_up = Posting {
        customer_id: &customer.id,
        kind: EntryKind::TopUp,
        amount,
        reference: None,
    };
    post(db, top_up, &operator.id, now)
}

/// Ledger entries, newest first (`after` is the last id of the previous page).
pub(crate) fn ledger(
    db: &dyn Database,
    customer_id: &str,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<LedgerEntry>> {
    store::ledger(db, customer_id, after, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_ups_are_positive_cents() {
        assert!(top_up_amount(Decimal::new(1, 2)).is_ok());
        assert!(top_up_amount(Decimal::ZERO).is_err());
        assert!(top_up_amount(Decimal::new(-100, 2)).is_err());
        assert!(top_up_amount(Decimal::new(1, 3)).is_err());
        assert!(top_up_amount(Decimal::new(AMOUNT_MAX + 1, 2)).is_err());
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
            let now = Utc::now();
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
                    .map(|c| account(db.as_ref(), c, now, 24).unwrap().balance.0)
                    .collect();
                (entries, balances)
            };
            proptest::prop_assert_eq!(run(true), run(false));
        }

        /// Whatever the sequence of top-ups and deductions, the balance is the sum of the ledger.
        #[test]
        fn the_balance_is_always_the_sum_of_the_ledger(
            changes in proptest::collection::vec((proptest::bool::ANY, 1i64..1_000_000), 1..12)
        ) {
            use crate::platform::storage::Backend;
            use crate::platform::storage::native::NativeBackend;
            let now = Utc::now();
            let dir = tempfile::tempdir().unwrap();
            let backend = NativeBackend::new(dir.path().join("db.sqlite"));
            let db = backend.open_db().unwrap();
            crate::platform::storage::migrations::migrate(db.as_ref()).unwrap();
            // The customer is not a principal: only the ledger arithmetic is under test.
            db.execute("PRAGMA foreign_keys = OFF", &[]).unwrap();
            for (i, (top_up, cents)) in changes.iter().enumerate() {
                let reference = format!("bill-{i}");
                let posting = if *top_up {
                    Posting { customer_id: "usr-c", kind: EntryKind::TopUp, amount: Cents(*cents), reference: None }
                } else {
                    Posting { customer_id: "usr-c", kind: EntryKind::Bill, amount: Cents(-cents), reference: Some(&reference) }
                };
                post(db.as_ref(), posting, "usr-admin", now).unwrap();
            }
            let entries = ledger(db.as_ref(), "usr-c", None, 500).unwrap();
            let ledger_sum: i64 = entries.iter().map(|e| e.amount.0).sum();
            let expected: i64 = changes.iter().map(|(up, c)| if *up { *c } else { -c }).sum();
            let balance = account(db.as_ref(), "usr-c", now, 24).unwrap().balance.0;
            proptest::prop_assert_eq!(balance, ledger_sum);
            proptest::prop_assert_eq!(balance, expected);
            proptest::prop_assert_eq!(entries[0].balance_after.0, balance);
        }
    }
}
