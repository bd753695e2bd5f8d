//! The product lifecycle (SPEC §7): every status change goes through [`transition`], and every
//! change is recorded in the append-only `product_transitions` history inside the transaction
//! that makes it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, Code};
use crate::identity::Principal;
use crate::listing::ProductStatus;
use crate::platform::clock::rfc3339;
use crate::platform::ids::new_id;
use crate::platform::storage::{Database, Row, StorageError};

/// Which review a submission asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Category,
    Feature,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

/// What can happen to a product: a provider's submission or an operator's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Submit(Stage),
    Decide(Stage, Decision),
}

/// The state machine of SPEC §7, and nothing else: which status `event` leads to from `from`.
/// Preconditions that need the listing itself (completeness, a changed category, sales
/// settings) are checked by the caller before the transition is written.
pub fn transition(from: ProductStatus, event: Event) -> ApiResult<ProductStatus> {
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
pub enum ReviewStatus {
    Pending,
    Approved,
    Rejected,
}

/// One entry of the history: who moved the product from where to where, when and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionRecord {
    pub actor_id: String,
    pub at: String,
    pub from: ProductStatus,
    pub to: ProductStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    pub id: String,
    pub product_id: String,
    pub stage: Stage,
    pub status: ReviewStatus,
    pub submitted_by: String,
    pub submitted_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub reason: Option<String>,
    pub history: Vec<TransitionRecord>,
}

use crate::platform::storage::{enum_from_str, enum_to_str};

const COLUMNS: &str = "r.id, r.product_id, r.stage, r.status, r.submitted_by, r.submitted_at, \
                       r.decided_by, r.decided_at, r.reason";

fn from_row(row: &Row) -> Result<Review, StorageError> {
    Ok(Review {
        id: row.text(0)?,
        product_id: row.text(1)?,
        stage: enum_from_str(&row.text(2)?)?,
        status: enum_from_str(&row.text(3)?)?,
        submitted_by: row.text(4)?,
        submitted_at: row.text(5)?,
        decided_by: row.opt_text(6)?,
        decided_at: row.opt_text(7)?,
        reason: row.opt_text(8)?,
        history: Vec::new(),
    })
}

fn status_of(s: &str) -> Result<ProductStatus, StorageError> {
    ProductStatus::parse(s).ok_or_else(|| StorageError::other(format!("unknown status {s:?}")))
}

/// Moves the product from `from` to `to` if it is still in `from` (compare-and-set), and appends
/// the history entry. Must run inside a transaction with the review row's change.
fn record(
    db: &dyn Database,
    product_id: &str,
    review_id: &str,
    actor: &Principal,
    (from, to): (ProductStatus, ProductStatus),
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let moved = db.execute(
        "UPDATE products SET status = ?, updated_at = ? WHERE id = ? AND status = ? RETURNING id",
        &[
            to.as_str().into(),
            rfc3339(now).into(),
            product_id.into(),
            from.as_str().into(),
        ],
    )?;
    if moved.is_empty() {
        return Err(ApiError::new(
            Code::InvalidTransition,
            "the product's status changed meanwhile; reload it and try again",
        ));
    }
    db.execute(
        "INSERT INTO product_transitions (product_id, review_id, actor_id, at, from_status, to_status, reason)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            product_id.into(),
            review_id.into(),
            actor.id.clone().into(),
            rfc3339(now).into(),
            from.as_str().into(),
            to.as_str().into(),
            reason.map(str::to_owned).into(),
        ],
    )?;
    Ok(())
}

/// Opens a review: the product moves to `*_review` and a pending review row is created. The
/// partial unique index on pending reviews makes a double submission fail in the database too.
/// `category_snapshot` is the category at submission, compared on a later resubmission.
pub fn submit(
    db: &dyn Database,
    provider: &Principal,
    product_id: &str,
    from: ProductStatus,
    stage: Stage,
    category_snapshot: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<Review> {
    let to = transition(from, Event::Submit(stage))?;
    let id = new_id("rev", now);
    let inserted = db.execute(
        "INSERT INTO reviews (id, product_id, stage, status, submitted_by, submitted_at, category_snapshot)
         VALUES (?, ?, ?, 'pending', ?, ?, ?)",
        &[
            id.clone().into(),
            product_id.into(),
            enum_to_str(&stage).into(),
            provider.id.clone().into(),
            rfc3339(now).into(),
            category_snapshot.map(str::to_owned).into(),
        ],
    );
    match inserted {
        Err(e) if e.is_unique_violation() => {
            return Err(ApiError::new(
                Code::InvalidTransition,
                "a review is already pending",
            ));
        }
        other => {
            other?;
        }
    }
    record(db, product_id, &id, provider, (from, to), None, now)?;
    find(db, &id)
}

/// Decides a pending review. The review row is the compare-and-set: of two operators deciding
/// at once, the second finds it no longer pending and gets 409 `ReviewAlreadyDecided`.
pub fn decide(
    db: &dyn Database,
    operator: &Principal,
    review_id: &str,
    decision: Decision,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<Review> {
    let review = find(db, review_id)?;
    let status = match decision {
        Decision::Approve => ReviewStatus::Approved,
        Decision::Reject => ReviewStatus::Rejected,
    };
    let decided = db.execute(
        "UPDATE reviews SET status = ?, decided_by = ?, decided_at = ?, reason = ?
         WHERE id = ? AND status = 'pending' RETURNING id",
        &[
            enum_to_str(&status).into(),
            operator.id.clone().into(),
            rfc3339(now).into(),
            reason.map(str::to_owned).into(),
            review_id.into(),
        ],
    )?;
    if decided.is_empty() {
        return Err(ApiError::new(
            Code::ReviewAlreadyDecided,
            format!("review {review_id} was already decided"),
        ));
    }
    let from = match review.stage {
        Stage::Category => ProductStatus::CategoryReview,
        Stage::Feature => ProductStatus::FeatureReview,
    };
    let to = transition(from, Event::Decide(review.stage, decision))?;
    record(
        db,
        &review.product_id,
        review_id,
        operator,
        (from, to),
        reason,
        now,
    )?;
    find(db, review_id)
}

fn with_history(db: &dyn Database, mut reviews: Vec<Review>) -> ApiResult<Vec<Review>> {
    for review in &mut reviews {
        let rows = db.execute(
            "SELECT actor_id, at, from_status, to_status, reason FROM product_transitions
             WHERE review_id = ? ORDER BY seq",
            &[review.id.clone().into()],
        )?;
        review.history = rows
            .iter()
            .map(|r| {
                Ok(TransitionRecord {
                    actor_id: r.text(0)?,
                    at: r.text(1)?,
                    from: status_of(&r.text(2)?)?,
                    to: status_of(&r.text(3)?)?,
                    reason: r.opt_text(4)?,
                })
            })
            .collect::<Result<_, StorageError>>()?;
    }
    Ok(reviews)
}

pub fn find(db: &dyn Database, id: &str) -> ApiResult<Review> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM reviews r WHERE r.id = ?"),
        &[id.into()],
    )?;
    let review = rows
        .first()
        .map(from_row)
        .transpose()?
        .ok_or_else(|| ApiError::not_found("review"))?;
    Ok(with_history(db, vec![review])?.remove(0))
}

/// The category id the provider had when its last rejected category review was submitted.
pub fn rejected_category(db: &dyn Database, product_id: &str) -> ApiResult<Option<String>> {
    let rows = db.execute(
        "SELECT category_snapshot FROM reviews
         WHERE product_id = ? AND stage = 'category' AND status = 'rejected'
         ORDER BY rowid DESC LIMIT 1",
        &[product_id.into()],
    )?;
    Ok(rows.first().map(|r| r.opt_text(0)).transpose()?.flatten())
}

pub struct ReviewFilter<'a> {
    /// Only reviews of this provider's products (`None` for operators).
    pub provider_id: Option<&'a str>,
    pub product_id: Option<&'a str>,
    pub status: Option<ReviewStatus>,
}

/// Reviews in submission order (the table's insertion order: ids made in the same millisecond
/// by different instances do not sort by time), so a product's list reads as its history.
pub fn list(
    db: &dyn Database,
    filter: &ReviewFilter,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Review>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM reviews r JOIN products p ON p.id = r.product_id
             WHERE (?1 IS NULL OR p.provider_id = ?1) AND (?2 IS NULL OR r.product_id = ?2)
               AND (?3 IS NULL OR r.status = ?3)
               AND (?4 IS NULL OR r.rowid > (SELECT r2.rowid FROM reviews r2 JOIN products p2 ON p2.id = r2.product_id
                                    WHERE r2.id = ?4 AND (?1 IS NULL OR p2.provider_id = ?1)))
             ORDER BY r.rowid LIMIT ?5"
        ),
        &[
            filter.provider_id.map(str::to_owned).into(),
            filter.product_id.map(str::to_owned).into(),
            filter.status.map(|s| enum_to_str(&s)).into(),
            after.map(str::to_owned).into(),
            (limit as i64).into(),
        ],
    )?;
    let reviews = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    with_history(db, reviews)
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
    fn the_lifecycle_of_spec_7_exactly() {
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
