//! Credit notes (docs/RULES.md R11.17): an operator gives part of a bill back — usage priced
//! wrong, data that arrived after the late-data window, an outage the provider compensates. A
//! note credits the customer's account (a ledger entry of kind `credit`) once, never more than
//! the bill's total less earlier notes, and states which part of the bill it reduces: the one
//! named first, then the other. What the bill still owed of a part is forgiven first; the rest
//! gives back what was collected (a negative collection, dated now: the provider's statement of
//! the month the note is issued is reduced by its product-fee part), and that money pays the
//! customer's oldest bills still owed, as a top-up would. The note is news to the bill's
//! customer and provider (`credit_note.issued`), written with it.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::billing::collection::{self, Collection, split};
use crate::billing::write_off::REASON_MAX;
use crate::billing::{Bill, Split, scope, store};
use crate::error::{ApiError, ApiResult, Code};
use crate::identity::Principal;
use crate::money::Cents;
use crate::orders::ledger::{self, AMOUNT_MAX, EntryKind, Posting};
use crate::platform::ids::{IdSequence, new_id};
use crate::platform::storage::{Database, transaction};
use crate::validate::Errors;
use crate::webhook::{self, EventType, Tenants};

/// A part of a bill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Part {
    /// The product's fees: the provider's.
    #[default]
    ProductFees,
    /// The cloud resources' fees: the cloud's.
    ResourceFees,
}

/// Part of a bill given back to its customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CreditNote {
    pub id: String,
    pub bill_id: String,
    pub customer_id: String,
    pub provider_id: String,
    pub product_id: String,
    /// `product_fees + resource_fees`: what the customer's account was credited.
    pub amount: Cents,
    /// What it reduces of the bill's product fees (and of the provider's settlement).
    pub product_fees: Cents,
    /// What it reduces of the bill's cloud resources' fees.
    pub resource_fees: Cents,
    pub reason: String,
    /// The `credit` entry of the customer's ledger.
    pub ledger_entry_id: String,
    pub issued_by: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub issued_at: DateTime<Utc>,
}

/// What an operator asks to credit: `amount` (positive, at most 2 decimals), `reason`, and the
/// part it reduces first.
pub(crate) struct CreditRequest<'a> {
    pub amount: Option<Decimal>,
    pub reason: Option<&'a str>,
    pub applies_to: Part,
}

impl CreditRequest<'_> {
    /// The amount in cents and the reason, or 400 naming every invalid field.
    fn parse(&self) -> ApiResult<(Cents, String)> {
        let mut e = Errors::new();
        let amount = e.required("amount", &self.amount).and_then(|a| {
            let cents = Cents::from_decimal(*a).filter(|c| (1..=AMOUNT_MAX).contains(&c.0));
            if cents.is_none() {
                e.add(
                    "amount",
                    Code::InvalidAmount,
                    "a positive amount with at most 2 decimal places, at most 100000000.00",
                );
            }
            cents
        });
        let reason = e
            .required("reason", &self.reason.map(str::to_owned))
            .cloned();
        if let Some(r) = &reason {
            e.text("reason", r, 1, REASON_MAX, Code::TooLong);
        }
        e.finish()?;
        Ok((amount.unwrap_or(Cents(0)), reason.unwrap_or_default()))
    }
}

/// How `amount` reduces a bill whose parts have `left` to credit: the part named first, up to
/// what is left of it, then the other.
pub(crate) fn parts_of(amount: Cents, left: Split, first: Part) -> Split {
    match first {
        Part::ProductFees => split(amount, left),
        Part::ResourceFees => {
            let (resource, product) = split(amount, (left.1, left.0));
            (product, resource)
        }
    }
}

/// An operator issues a credit note on a bill (any bill: operators see all; another is 404):
/// 409 `CreditExceedsBill` beyond what is left to credit (a test order's bill charged nothing).
pub(crate) fn issue(
    db: &dyn Database,
    operator: &Principal,
    bill_id: &str,
    request: &CreditRequest,
    now: DateTime<Utc>,
) -> ApiResult<CreditNote> {
    let (amount, reason) = request.parse()?;
    transaction(db, |db| {
        let found = store::find(db, bill_id, scope(operator))?;
        // The credit is posted first: the customer's account, locked by it, orders the notes
        // of its bills, so the bill's standing read next is the one this note reduces.
        let credit = Posting {
            customer_id: &found.owner_id,
            kind: EntryKind::Credit,
            amount,
            reference: Some(&found.id),
        };
        let entry = ledger::post(db, credit, &operator.id, now)?;
        let bill = store::with_standing(db, vec![found])?.remove(0);
        let (product, resource) = (bill.parts.product_fees, bill.parts.resource_fees);
        let left = (
            bill.product_fees - product.credited,
            bill.resource_fees - resource.credited,
        );
        if bill.test || amount > left.0 + left.1 {
            return Err(exceeds(&bill, left));
        }
        let parts = parts_of(amount, left, request.applies_to);
        give_back(db, &bill, parts, &entry.id, now)?;
        collection::collect(db, &bill.owner_id, entry.balance_after, &entry.id, now)?;
        let note = CreditNote {
            id: new_id("cn", now),
            bill_id: bill.id.clone(),
            customer_id: bill.owner_id.clone(),
            provider_id: bill.provider_id.clone(),
            product_id: bill.product_id,
            amount,
            product_fees: parts.0,
            resource_fees: parts.1,
            reason: reason.clone(),
            ledger_entry_id: entry.id,
            issued_by: operator.id.clone(),
            issued_at: now,
        };
        store::insert_credit_note(db, &note)?;
        let tenants = Tenants {
            provider: Some(&note.provider_id),
            customer: Some(&note.customer_id),
        };
        webhook::emit(db, EventType::CreditNoteIssued, tenants, &note, now)?;
        Ok(note)
    })
}

fn exceeds(bill: &Bill, left: Split) -> ApiError {
    let detail = if bill.test {
        format!("{} is a test order's bill: it charged nothing", bill.id)
    } else {
        format!(
            "at most {} of {} is left to credit",
            (left.0 + left.1).to_decimal(),
            bill.id
        )
    };
    ApiError::new(Code::CreditExceedsBill, detail)
}

/// Reduces `bill`'s parts by `parts`: what a part still owed is forgiven first, the rest is
/// given back of what was collected (a negative collection by the entry `entry_id`).
fn give_back(
    db: &dyn Database,
    bill: &Bill,
    parts: Split,
    entry_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let owed = (
        bill.parts.product_fees.uncollected,
        bill.parts.resource_fees.uncollected,
    );
    let forgiven = (parts.0.min(owed.0), parts.1.min(owed.1));
    store::set_uncollected(db, &bill.id, (owed.0 - forgiven.0, owed.1 - forgiven.1))?;
    let returned = (forgiven.0 - parts.0, forgiven.1 - parts.1);
    if returned != (Cents(0), Cents(0)) {
        let mut ids = IdSequence::new("col", now);
        let refund = Collection::of(&mut ids, bill, returned, entry_id, now);
        store::insert_collections(db, &[refund])?;
    }
    Ok(())
}

/// The credit notes the caller may see, oldest first: a customer's own bills', a provider's
/// products' bills', every one for operators; of one bill with `bill_id`.
pub(crate) fn list(
    db: &dyn Database,
    caller: &Principal,
    bill_id: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<CreditNote>> {
    store::credit_notes(db, scope(caller), bill_id, after, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_reduces_the_part_it_names_first_then_the_other() {
        let left = (Cents(500), Cents(200));
        assert_eq!(
            parts_of(Cents(600), left, Part::ProductFees),
            (Cents(500), Cents(100))
        );
        assert_eq!(
            parts_of(Cents(600), left, Part::ResourceFees),
            (Cents(400), Cents(200))
        );
        assert_eq!(
            parts_of(Cents(150), left, Part::ResourceFees),
            (Cents(0), Cents(150))
        );
    }
}
