//! Billing: bill runs turn each closed period of usage into exactly one bill, priced by the
//! product's tiers and deducted from the customer's account; previews price a period without
//! writing; bills are read by their customer, their product's provider and operators.
//!
//! - [`pricing`]: tiered pricing, exact, truncated to cents — where a bill is priced.
//! - [`mod@run`]: the bill run, exactly once per (instance, period).
//! - [`mod@preview`]: what a period would cost now.
//! - [`write_off`]: periods an operator closes without a bill.
//! - [`collection`]: what of a bill the customer's funds paid, and top-ups that pay the rest.
//! - [`credit`]: credit notes, which give part of a bill back.

pub(crate) mod collection;
pub(crate) mod credit;
pub(crate) mod preview;
pub(crate) mod pricing;
pub(crate) mod run;
mod store;
pub(crate) mod usage;
pub(crate) mod write_off;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{Principal, Role};
use crate::listing::steps::TierMode;
use crate::money::Cents;
use crate::platform::storage::Database;
use pricing::TierCharge;

pub(crate) use preview::preview;
pub(crate) use run::run;

/// One priced billable item of a bill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BillLine {
    pub code: String,
    pub name: String,
    pub price_unit: String,
    pub tier_mode: TierMode,
    /// Usage in the item's price unit, at most 6 decimals.
    pub quantity: Decimal,
    /// The usage as an exact fraction (`"1/3"`), when `quantity` is not all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity_exact: Option<String>,
    /// Truncated to 2 decimals.
    pub amount: Decimal,
    pub breakdown: Vec<TierCharge>,
}

/// One cloud resource of a bill: what the instance's template deploys, charged for the seconds
/// the instance ran in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ResourceLine {
    #[serde(rename = "type")]
    pub kind: String,
    pub spec: String,
    pub count: u32,
    pub hourly_fee: Decimal,
    /// Seconds the instance ran within the period (stops excluded).
    pub running_seconds: i64,
    /// `count × hourly_fee × running_seconds / 3600`, truncated to cents.
    pub amount: Decimal,
}

/// What one period of an instance costs: the product's fees (its billable items' lines, the
/// provider's revenue) and the cloud resources' fees (the cloud's), and their sum.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Priced {
    pub lines: Vec<BillLine>,
    pub product_fees: Cents,
    pub resource_lines: Vec<ResourceLine>,
    pub resource_fees: Cents,
    pub total: Cents,
}

impl From<Bill> for Priced {
    fn from(bill: Bill) -> Self {
        Priced {
            lines: bill.lines,
            product_fees: bill.product_fees,
            resource_lines: bill.resource_lines,
            resource_fees: bill.resource_fees,
            total: bill.total,
        }
    }
}

/// Where one part of a bill (its product fees, or its cloud resources' fees) stands: how much
/// credit notes gave back, how much the customer's funds paid, how much is still owed. The three
/// add up to the part's fees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct PartStanding {
    pub credited: Cents,
    pub collected: Cents,
    pub uncollected: Cents,
}

/// Where each part of a bill stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Parts {
    pub product_fees: PartStanding,
    pub resource_fees: PartStanding,
}

/// A bill's two parts as amounts: (product fees, resource fees).
pub(crate) type Split = (Cents, Cents);

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Bill {
    pub id: String,
    pub instance_id: String,
    pub owner_id: String,
    pub provider_id: String,
    pub product_id: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub period_start: DateTime<Utc>,
    #[serde(with = "crate::platform::clock::instant")]
    pub period_end: DateTime<Utc>,
    pub currency: String,
    /// The sum of the billable items' lines: what the provider earns (less commission).
    pub product_fees: Cents,
    /// The sum of the cloud resources' lines: what the cloud earns.
    pub resource_fees: Cents,
    /// `product_fees + resource_fees`: what is deducted.
    pub total: Cents,
    /// A test order's bill: shown, never deducted.
    pub test: bool,
    pub lines: Vec<BillLine>,
    pub resource_lines: Vec<ResourceLine>,
    #[serde(with = "crate::platform::clock::instant")]
    pub created_at: DateTime<Utc>,
    /// The version of the product's prices the bill was priced with.
    pub pricing_version: i64,
    /// The credit notes written on it, oldest first.
    pub credit_notes: Vec<credit::CreditNote>,
    /// What its credit notes gave back.
    pub credited: Cents,
    /// What the customer's funds paid of it, less what credit notes gave back of that.
    pub collected: Cents,
    /// What it still owes, collected as top-ups cover it (oldest bill first).
    pub uncollected: Cents,
    /// The same per part.
    pub parts: Parts,
}

impl Bill {
    /// Its standing from what each part still owes (`parts.*.uncollected`, as stored) and its
    /// credit notes: credited, collected and uncollected add up to each part's fees (a test
    /// order's bill owed nothing).
    fn fill_standing(&mut self, notes: Vec<credit::CreditNote>) {
        let uncollected = (
            self.parts.product_fees.uncollected,
            self.parts.resource_fees.uncollected,
        );
        let credited = notes.iter().fold((Cents(0), Cents(0)), |(p, r), n| {
            (p + n.product_fees, r + n.resource_fees)
        });
        let part = |fees: Cents, credited: Cents, uncollected: Cents| PartStanding {
            credited,
            collected: if self.test {
                Cents(0)
            } else {
                fees - credited - uncollected
            },
            uncollected,
        };
        self.parts = Parts {
            product_fees: part(self.product_fees, credited.0, uncollected.0),
            resource_fees: part(self.resource_fees, credited.1, uncollected.1),
        };
        let (p, r) = (self.parts.product_fees, self.parts.resource_fees);
        self.credited = p.credited + r.credited;
        self.collected = p.collected + r.collected;
        self.uncollected = p.uncollected + r.uncollected;
        self.credit_notes = notes;
    }
}

/// An (instance, period) the run could not bill this time, and why; it is retried next run.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The instance whose period was not billed.
    pub instance_id: String,
    /// The period left for the next run.
    #[serde(with = "crate::platform::clock::instant")]
    pub period_start: DateTime<Utc>,
    /// What went wrong, a stable name.
    pub code: FailureCode,
    /// Why, for an operator.
    pub reason: String,
}

impl Failure {
    /// The instance's period starting at `period_start` was not billed this time, as `code`
    /// says, for `reason`.
    pub(crate) fn new(
        instance_id: &str,
        period_start: DateTime<Utc>,
        code: FailureCode,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            instance_id: instance_id.to_owned(),
            period_start,
            code,
            reason: reason.into(),
        }
    }
}

/// What kept one instance's period from being billed. Every kind is about that instance alone:
/// the run bills everyone else and tries it again next time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// Its product's terms (pricing step, sales settings) could not be read.
    TermsUnreadable,
    /// Its next period does not start on a boundary of its product's periods.
    NotOnPeriodBoundary,
    /// The platform's measure of its usage (a Prometheus query) could not be read.
    PlatformUsageUnavailable,
    /// Its usage cannot be priced by its tiers (beyond the range of money).
    UsageUnpriceable,
    /// The platform usage measured for the period could not be stored.
    PlatformUsageNotStored,
    /// Its bill could not be written.
    BillNotWritten,
    /// The bill's deduction could not be posted to the customer's account.
    DeductionNotPosted,
    /// The instance had no billing cursor and one could not be opened (its terms or running
    /// intervals unreadable); reported as of the run's `as_of`.
    CursorNotOpened,
}

/// What a bill run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    /// The instant that decided which periods were closed.
    #[serde(with = "crate::platform::clock::instant")]
    pub as_of: DateTime<Utc>,
    /// Bills written by this run (none twice, whatever raced it).
    pub bills_written: usize,
    /// Test orders' bills among them (not deducted).
    pub test_bills: usize,
    /// Total deducted from customers' accounts.
    pub deducted: Decimal,
    /// Instances this run suspended: their customers' arrears outlasted the grace.
    pub suspended: Vec<String>,
    /// Periods this run could not bill; each is retried next run.
    pub failures: Vec<Failure>,
}

/// A bill run's `as_of` may not lie ahead of the wall clock (`real_now`, whatever `X-Clock-Now`
/// says): it would bill periods whose late data may still arrive. Only a deployment that allows
/// the test clock runs bills ahead.
pub(crate) fn check_as_of(
    as_of: DateTime<Utc>,
    real_now: DateTime<Utc>,
    allow_clock_override: bool,
) -> ApiResult<()> {
    if as_of > real_now && !allow_clock_override {
        return Err(ApiError::validation(vec![FieldError::new(
            "as_of",
            Code::AsOfInFuture,
            "a bill run cannot be dated in the future",
        )]));
    }
    Ok(())
}

/// Who sees which bills: a customer its own, a provider its products', operators all.
fn scope(caller: &Principal) -> (Option<String>, Option<String>) {
    match caller.role {
        Role::Operator => (None, None),
        Role::Provider => (None, Some(caller.id.clone())),
        _ => (Some(caller.id.clone()), None),
    }
}

/// A bill, if the caller may see it: its customer, its product's provider, or an operator.
pub(crate) fn find(db: &dyn Database, caller: &Principal, id: &str) -> ApiResult<Bill> {
    let bill = store::find(db, id, scope(caller))?;
    Ok(store::with_standing(db, vec![bill])?.remove(0))
}

pub(crate) struct BillFilter {
    pub instance_id: Option<String>,
    pub from: i64,
    pub to: i64,
}

/// The bills the caller may see, oldest period first (then in the order they were written), so
/// a list reads as a statement; the cursor is the last bill's id.
pub(crate) fn list(
    db: &dyn Database,
    caller: &Principal,
    filter: &BillFilter,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Bill>> {
    let bills = store::list(db, scope(caller), filter, after, limit)?;
    store::with_standing(db, bills)
}
