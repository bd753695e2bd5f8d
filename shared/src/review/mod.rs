//! The product lifecycle (docs/RULES.md §5): every status change goes through [`transition`], and
//! every change is recorded in the append-only `product_transitions` history inside the transaction
//! that makes it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog;
use crate::error::{ApiError, ApiResult, Code};
use crate::identity::Principal;
use crate::listing::{self, Listing, ProductStatus, Reader};
use crate::orders;
use crate::platform::ids::new_id;
use crate::platform::storage::{Database, RowLock, transaction};
use crate::sales;
use crate::validate::Errors;
use crate::webhook::{self, EventType, Tenants};

mod store;

/// Which review a submission asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Stage {
    Category,
    Feature,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Decision {
    Approve,
    Reject,
}

/// What can happen to a product: a provider's submission or an operator's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Submit(Stage),
    Decide(Stage, Decision),
}

/// The state machine of docs/RULES.md R5.1, and nothing else: which status `event` leads to from
/// `from`. Preconditions that need the listing itself (completeness, a changed category, sales
/// settings) are checked by the caller before the transition is written.
pub(crate) fn transition(from: ProductStatus, event: Event) -> ApiResult<ProductStatus> {
    use Decision::*;
    use Event::*;
    use ProductStatus::*;
    use Stage::*;
    let to = match (from, event) {
        (Draft | CategoryRejected, Submit(Category)) => Some(CategoryReview),
        (CategoryReview, Decide(Category, Approve)) => Some(SelfTest),
        (CategoryReview, Decide(Category, Reject)) => Some(CategoryRejected),
        (SelfTest | FeatureRejected, Submit(Feature)) => Some(FeatureReview),
        (FeatureReview, Decide(Feature, Approve)) => Some(Published),
        (FeatureReview, Decide(Feature, Reject)) => Some(FeatureRejected),
        _ => None,
    };
    to.ok_or_else(|| {
        ApiError::new(
            Code::InvalidTransition,
            format!(
                "a product in status {} cannot take {event:?}",
                from.as_str()
            ),
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ReviewStatus {
    Pending,
    Approved,
    Rejected,
}

/// One entry of the history: who moved the product from where to where, when and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TransitionRecord {
    pub actor_id: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub at: DateTime<Utc>,
    pub from: ProductStatus,
    pub to: ProductStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Review {
    pub id: String,
    pub product_id: String,
    pub stage: Stage,
    pub status: ReviewStatus,
    pub submitted_by: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub submitted_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    #[serde(with = "crate::platform::clock::instant::option")]
    pub decided_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub history: Vec<TransitionRecord>,
}

/// Which reviews a caller lists.
pub(crate) struct ReviewFilter<'a> {
    /// Only reviews of this provider's products (`None` for operators).
    pub provider_id: Option<&'a str>,
    pub product_id: Option<&'a str>,
    pub status: Option<ReviewStatus>,
}

/// A provider submits its product for review. The state machine decides first (a submission in
/// the wrong state is a conflict whatever the listing holds); then the listing's own
/// preconditions, all inside the transaction that opens the review, so a concurrent edit cannot
/// slip between check and submission.
pub(crate) fn submit(
    db: &dyn Database,
    provider: &Principal,
    product_id: &str,
    stage: Stage,
    now: DateTime<Utc>,
) -> ApiResult<Review> {
    transaction(db, |db| {
        listing::lock_product(db, product_id, RowLock::Exclusive)?;
        let listing = listing::find(db, Reader::Caller(provider), product_id)?;
        let product = &listing.product;
        let to = transition(product.status, Event::Submit(stage))?;
        let category = match stage {
            Stage::Category => Some(check_category_submission(db, &listing)?),
            Stage::Feature => {
                check_feature_submission(db, &listing)?;
                None
            }
        };
        let id = new_id("rev", now);
        store::insert_pending(
            db,
            &id,
            &product.id,
            stage,
            provider,
            category.as_deref(),
            now,
        )?;
        store::record_transition(
            db,
            &product.id,
            &id,
            provider,
            (product.status, to),
            None,
            now,
        )?;
        store::find(db, &id)
    })
}

/// A category review needs the whole listing: all five steps and the logo and user guide. A
/// resubmission after a rejection needs a changed category. Returns the category submitted.
fn check_category_submission(db: &dyn Database, listing: &Listing) -> ApiResult<String> {
    check_complete(db, listing)?;
    let category = listing.category()?.category().id.to_owned();
    let product = &listing.product;
    if product.status == ProductStatus::CategoryRejected
        && store::rejected_category(db, &product.id)?.as_deref() == Some(category.as_str())
    {
        return Err(ApiError::new(
            Code::CategoryUnchanged,
            format!("the category was rejected as `{category}`; change it before resubmitting"),
        ));
    }
    Ok(category)
}

/// Every step written, and the logo and user guide uploaded (400 `ListingIncomplete` per
/// missing part otherwise).
fn check_complete(db: &dyn Database, listing: &Listing) -> ApiResult<()> {
    let mut e = Errors::new();
    for (step, missing) in listing.missing(db)? {
        for m in missing {
            e.add(
                step.as_str(),
                Code::ListingIncomplete,
                format!("missing: {m}"),
            );
        }
    }
    e.finish().map_err(|mut err| {
        err.detail =
            "the listing is incomplete: every step and the logo and user guide are required".into();
        err
    })
}

/// A feature review needs the whole listing still (the self-test edits it), every billable
/// item's reporting method and one item in effect.
fn check_feature_submission(db: &dyn Database, listing: &Listing) -> ApiResult<()> {
    check_complete(db, listing)?;
    let pricing = listing.pricing()?;
    let items = sales::item_settings(db, &listing.product.id, &pricing, &listing.service.spec)?;
    let missing = sales::incomplete(&items);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(missing))
    }
}

/// The longest reason an operator may give.
const REASON_MAX: usize = 2_000;

/// An operator decides a pending review. A rejection must say why. Approving a feature review
/// publishes the product: its catalog entry is written in the same transaction.
pub(crate) fn decide(
    db: &dyn Database,
    operator: &Principal,
    review_id: &str,
    decision: Decision,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<Review> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let mut e = Errors::new();
    match (decision, reason) {
        (Decision::Reject, None) => {
            e.add("reason", Code::ReasonRequired, "a rejection must say why");
        }
        (_, Some(r)) => e.text("reason", r, 1, REASON_MAX, Code::TooLong),
        (Decision::Approve, None) => {}
    }
    e.finish()?;
    transaction(db, |db| {
        let review = store::find(db, review_id)?;
        let status = match decision {
            Decision::Approve => ReviewStatus::Approved,
            Decision::Reject => ReviewStatus::Rejected,
        };
        store::mark_decided(db, review_id, status, operator, reason, now)?;
        let from = match review.stage {
            Stage::Category => ProductStatus::CategoryReview,
            Stage::Feature => ProductStatus::FeatureReview,
        };
        let to = transition(from, Event::Decide(review.stage, decision))?;
        store::record_transition(
            db,
            &review.product_id,
            review_id,
            operator,
            (from, to),
            reason,
            now,
        )?;
        let product = listing::find_product(db, Reader::Caller(operator), &review.product_id)?;
        let tenants = Tenants {
            provider: Some(&product.provider_id),
            customer: None,
        };
        let decided = store::find(db, review_id)?;
        webhook::emit(db, EventType::ReviewDecided, tenants, &decided, now)?;
        if to == ProductStatus::Published {
            let listing = listing::find(db, Reader::Caller(operator), &review.product_id)?;
            catalog::publish(db, &listing, now)?;
            orders::instance::release_test_instances(db, &listing.product.id, now)?;
            let published = Published {
                product_id: listing.product.id.clone(),
                provider_id: listing.product.provider_id,
                published_at: now,
            };
            webhook::emit(db, EventType::ProductPublished, tenants, &published, now)?;
        }
        Ok(decided)
    })
}

/// What `product.published` carries.
#[derive(Debug, Serialize)]
struct Published {
    product_id: String,
    provider_id: String,
    #[serde(with = "crate::platform::clock::instant")]
    published_at: DateTime<Utc>,
}

/// A review, if the caller may see it: operators all, a provider those of its own products
/// (another provider's review is 404).
pub(crate) fn find(db: &dyn Database, caller: &Principal, id: &str) -> ApiResult<Review> {
    let review = store::find(db, id)?;
    listing::find_product(db, Reader::Caller(caller), &review.product_id)
        .map_err(|_| ApiError::not_found("review"))?;
    Ok(review)
}

/// Reviews the caller may see, in submission order: operators all, a provider its own
/// products'.
pub(crate) fn list(
    db: &dyn Database,
    caller: &Principal,
    product_id: Option<&str>,
    status: Option<ReviewStatus>,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Review>> {
    let filter = ReviewFilter {
        provider_id: (!caller.is_operator()).then_some(caller.id.as_str()),
        product_id,
        status,
    };
    store::list(db, &filter, after, limit)
}
#[cfg(test)]
mod tests {
    use super::*;
    use ProductStatus::*;

    const EVENTS: [Event; 6] = [
        Event::Submit(Stage::Category),
        Event::Submit(Stage::Feature),
        Event::Decide(Stage::Category, Decision::Approve),
        Event::Decide(Stage::Category, Decision::Reject),
        Event::Decide(Stage::Feature, Decision::Approve),
        Event::Decide(Stage::Feature, Decision::Reject),
    ];

    #[test]
    fn the_lifecycle_exactly() {
        let allowed = [
            (Draft, EVENTS[0], CategoryReview),
            (CategoryRejected, EVENTS[0], CategoryReview),
            (CategoryReview, EVENTS[2], SelfTest),
            (CategoryReview, EVENTS[3], CategoryRejected),
            (SelfTest, EVENTS[1], FeatureReview),
            (FeatureRejected, EVENTS[1], FeatureReview),
            (FeatureReview, EVENTS[4], Published),
            (FeatureReview, EVENTS[5], FeatureRejected),
        ];
        for from in ProductStatus::ALL {
            for event in EVENTS {
                let expected = allowed
                    .iter()
                    .find(|(f, e, _)| *f == from && *e == event)
                    .map(|(_, _, to)| *to);
                match (transition(from, event), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{from:?} {event:?}"),
                    (Err(e), None) => assert_eq!(e.code, Code::InvalidTransition),
                    (got, want) => panic!("{from:?} {event:?}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn published_is_final() {
        for event in EVENTS {
            assert!(transition(Published, event).is_err());
        }
    }
}
