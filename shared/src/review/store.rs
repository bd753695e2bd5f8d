//! Reviews and the append-only transition history in the database.

use chrono::{DateTime, Utc};

use crate::error::{ApiError, ApiResult, Code};
use crate::identity::Principal;
use crate::listing::ProductStatus;
use crate::platform::clock::{self, rfc3339};
use crate::platform::storage::{Database, Row, StorageError, enum_from_str, enum_to_str};
use crate::review::{Review, ReviewFilter, ReviewStatus, Stage, TransitionRecord};

const COLUMNS: &str = "r.id, r.product_id, r.stage, r.status, r.submitted_by, r.submitted_at, \
                       r.decided_by, r.decided_at, r.reason";

fn from_row(row: &Row) -> Result<Review, StorageError> {
    Ok(Review {
        id: row.text(0)?,
        product_id: row.text(1)?,
        stage: enum_from_str(&row.text(2)?)?,
        status: enum_from_str(&row.text(3)?)?,
        submitted_by: row.text(4)?,
        submitted_at: clock::stored(&row.text(5)?)?,
        decided_by: row.opt_text(6)?,
        decided_at: row.opt_text(7)?.as_deref().map(clock::stored).transpose()?,
        reason: row.opt_text(8)?,
        history: Vec::new(),
    })
}

fn status_of(s: &str) -> Result<ProductStatus, StorageError> {
    ProductStatus::parse(s).ok_or_else(|| StorageError::other(format!("unknown status {s:?}")))
}

/// Opens a pending review. The partial unique index on pending reviews makes a double
/// submission fail in the database too, whatever races.
pub(crate) fn insert_pending(
    db: &dyn Database,
    id: &str,
    product_id: &str,
    stage: Stage,
    provider: &Principal,
    category_snapshot: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let inserted = db.execute(
        "INSERT INTO reviews (id, product_id, stage, status, submitted_by, submitted_at, category_snapshot)
         VALUES (?, ?, ?, 'pending', ?, ?, ?)",
        &[
            id.into(),
            product_id.into(),
            enum_to_str(&stage).into(),
            provider.id.clone().into(),
            rfc3339(now).into(),
            category_snapshot.map(str::to_owned).into(),
        ],
    );
    match inserted {
        Err(e) if e.is_unique_violation() => Err(ApiError::new(
            Code::InvalidTransition,
            "a review is already pending",
        )),
        other => Ok(other.map(drop)?),
    }
}

/// Decides a pending review: the review row is the compare-and-set, so of two operators deciding
/// at once the second finds it no longer pending (409 `ReviewAlreadyDecided`).
pub(crate) fn mark_decided(
    db: &dyn Database,
    review_id: &str,
    status: ReviewStatus,
    operator: &Principal,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
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
    Ok(())
}

/// Moves the product from `from` to `to` if it is still in `from` (compare-and-set), and appends
/// the history entry. Runs inside the transaction that changes the review row.
pub(crate) fn record_transition(
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
                    at: clock::stored(&r.text(1)?)?,
                    from: status_of(&r.text(2)?)?,
                    to: status_of(&r.text(3)?)?,
                    reason: r.opt_text(4)?,
                })
            })
            .collect::<Result<_, StorageError>>()?;
    }
    Ok(reviews)
}

pub(crate) fn find(db: &dyn Database, id: &str) -> ApiResult<Review> {
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
pub(crate) fn rejected_category(db: &dyn Database, product_id: &str) -> ApiResult<Option<String>> {
    let rows = db.execute(
        "SELECT category_snapshot FROM reviews
         WHERE product_id = ? AND stage = 'category' AND status = 'rejected'
         ORDER BY rowid DESC LIMIT 1",
        &[product_id.into()],
    )?;
    Ok(rows.first().map(|r| r.opt_text(0)).transpose()?.flatten())
}

/// Reviews in submission order (the table's insertion order: ids made in the same millisecond
/// by different instances do not sort by time), so a product's list reads as its history.
pub(crate) fn list(
    db: &dyn Database,
    filter: &ReviewFilter,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Review>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM reviews r JOIN products p ON p.id = r.product_id
             WHERE (CAST(?1 AS TEXT) IS NULL OR p.provider_id = ?1) AND (CAST(?2 AS TEXT) IS NULL OR r.product_id = ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR r.status = ?3)
               AND (CAST(?4 AS TEXT) IS NULL OR r.rowid > (SELECT r2.rowid FROM reviews r2 JOIN products p2 ON p2.id = r2.product_id
                                    WHERE r2.id = ?4 AND (CAST(?1 AS TEXT) IS NULL OR p2.provider_id = ?1)))
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
