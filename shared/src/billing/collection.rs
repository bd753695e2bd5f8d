//! Collection (docs/RULES.md R11.18): a bill's deduction is collected to the extent the
//! customer's funds covered it; the rest stays owed until a later top-up (or a credit note)
//! covers it, the customer's oldest bill first. A bill is collected product fees first, then its
//! cloud resources' fees: the provider waits on its payout, the cloud is the marketplace's own.
//!
//! Each movement of a bill's money is a [`Collection`], dated when it happened — negative when a
//! credit note gives back what was collected — and providers are paid what was collected in a
//! month ([`crate::settlement`]). What a customer's bills still owe is never more than what its
//! balance owes: a posting that raises the balance collects until it is not (exactly that, but
//! for what a customer owed before collections were kept, which the balance pays first).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::billing::{Bill, Split, store};
use crate::error::ApiResult;
use crate::identity::Principal;
use crate::money::Cents;
use crate::orders::ledger::{self, Account, LedgerEntry};
use crate::platform::ids::IdSequence;
use crate::platform::storage::{Database, transaction};

/// One movement of a bill's money: `amounts` of its parts collected (negative: given back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Collection {
    pub id: String,
    pub bill_id: String,
    pub customer_id: String,
    pub provider_id: String,
    pub product_id: String,
    pub amounts: Split,
    /// The ledger entry whose funds moved it.
    pub ledger_entry_id: Option<String>,
    /// When: the month a provider is paid it in.
    pub at: DateTime<Utc>,
}

impl Collection {
    /// `amounts` of `bill`'s parts, moved by the entry `entry_id` at `now`.
    pub(crate) fn of(
        ids: &mut IdSequence,
        bill: &Bill,
        amounts: Split,
        entry_id: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Collection {
            id: ids.next_id(),
            bill_id: bill.id.clone(),
            customer_id: bill.owner_id.clone(),
            provider_id: bill.provider_id.clone(),
            product_id: bill.product_id.clone(),
            amounts,
            ledger_entry_id: Some(entry_id.to_owned()),
            at: now,
        }
    }
}

/// A bill that still owes something, and what each part owes.
pub(crate) struct Owed {
    pub bill_id: String,
    pub provider_id: String,
    pub product_id: String,
    pub owed: Split,
}

/// `amount` (at most what the parts owe, all of it) taken from the parts, product fees first.
pub(crate) fn split(amount: Cents, (product, resource): Split) -> Split {
    let from_product = amount.0.clamp(0, product.0);
    let from_resource = (amount.0 - from_product).clamp(0, resource.0);
    (Cents(from_product), Cents(from_resource))
}

/// What of `bill` its deduction collected, the balance having gone to `balance_after`: what the
/// balance before covered of its total, product fees first.
pub(crate) fn at_deduction(bill: &Bill, balance_after: Cents) -> Split {
    let covered = Cents(balance_after.0.saturating_add(bill.total.0));
    split(covered, (bill.product_fees, bill.resource_fees))
}

/// After a posting raised the customer's balance to `balance_after` (in the caller's
/// transaction): its oldest bills that owe something are collected, dated `now`, until what
/// its bills owe is at most what the balance owes. Returns what was collected.
pub(crate) fn collect(
    db: &dyn Database,
    customer_id: &str,
    balance_after: Cents,
    entry_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<Vec<Collection>> {
    let owed = store::owed_by(db, customer_id)?;
    let total: Cents = owed.iter().map(|o| o.owed.0 + o.owed.1).sum();
    let mut left = total - Cents((-balance_after.0).max(0));
    let mut ids = IdSequence::new("col", now);
    let mut collected = Vec::new();
    for bill in owed {
        if left <= Cents(0) {
            break;
        }
        let taken = split(left, bill.owed);
        left = left - taken.0 - taken.1;
        let still = (bill.owed.0 - taken.0, bill.owed.1 - taken.1);
        store::set_uncollected(db, &bill.bill_id, still)?;
        collected.push(Collection {
            id: ids.next_id(),
            bill_id: bill.bill_id,
            customer_id: customer_id.to_owned(),
            provider_id: bill.provider_id,
            product_id: bill.product_id,
            amounts: taken,
            ledger_entry_id: Some(entry_id.to_owned()),
            at: now,
        });
    }
    store::insert_collections(db, &collected)?;
    Ok(collected)
}

/// An operator tops up a customer's account (R8.14), and what it covers of the customer's
/// bills is collected in the same transaction; a balance back at zero or above ends the
/// arrears and resumes what they suspended. The account after it (its arrears' deadline
/// `grace_hours` after they began) and the entry.
pub(crate) fn top_up(
    db: &dyn Database,
    operator: &Principal,
    customer_id: &str,
    amount: Decimal,
    grace_hours: u32,
    now: DateTime<Utc>,
) -> ApiResult<(Account, LedgerEntry)> {
    ledger::top_up_amount(amount)?;
    transaction(db, |db| {
        let entry = ledger::top_up(db, operator, customer_id, amount, now)?;
        collect(db, customer_id, entry.balance_after, &entry.id, now)?;
        Ok((ledger::account(db, customer_id, now, grace_hours)?, entry))
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_bill_is_collected_product_fees_first() {
        let parts = (Cents(500), Cents(200));
        assert_eq!(split(Cents(300), parts), (Cents(300), Cents(0)));
        assert_eq!(split(Cents(600), parts), (Cents(500), Cents(100)));
        assert_eq!(split(Cents(700), parts), (Cents(500), Cents(200)));
        assert_eq!(split(Cents(0), parts), (Cents(0), Cents(0)));
        assert_eq!(split(Cents(-5), parts), (Cents(0), Cents(0)));
    }

    proptest! {
        /// What is taken never exceeds what is owed nor the amount, and is all of the amount
        /// whenever the parts owe that much.
        #[test]
        fn a_split_takes_what_is_owed_and_no_more(
            amount in -1_000i64..100_000, product in 0i64..50_000, resource in 0i64..50_000,
        ) {
            let (p, r) = split(Cents(amount), (Cents(product), Cents(resource)));
            prop_assert!((0..=product).contains(&p.0) && (0..=resource).contains(&r.0));
            prop_assert_eq!(p.0 + r.0, amount.clamp(0, product + resource));
            prop_assert!(r.0 == 0 || p.0 == product, "product fees first");
        }
    }
}
