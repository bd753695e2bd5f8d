//! The listing: what a provider fills in to sell a service on the marketplace (docs/RULES.md §4),
//! and the lifecycle states that decide when it may be edited (docs/RULES.md R5.2).
//!
//! The rules are pure: request bodies and uploaded bytes go in, validated values, normalized JSON
//! to store and warnings come out. Its `store.rs` (private) keeps products, services, steps and
//! media metadata; HTTP lives elsewhere.
//!
//! - [`steps`]: the five wizard steps, each validated whole ([`validate_step`]).
//! - [`categories`]: the fixed catalog categories a product is filed under.
//! - [`media`]: logo, screenshots, certifications, video and user guide, checked by magic bytes.
//! - [`mod@read`]: what the capabilities above read of a listing, typed ([`Listing`], [`Terms`]):
//!   the listing's store is its own, and only the listing reads its steps' JSON.

pub(crate) mod categories;
pub(crate) mod media;
pub(crate) mod product;
mod read;
pub(crate) mod service;
pub(crate) mod steps;
mod store;

pub(crate) use product::{Media, Product, StoredStep, missing_by_step};
pub(crate) use read::{
    Listing, Reader, Terms, find, find_product, lock_product, pricing_of, terms,
};
pub(crate) use steps::{ValidatedStep, validate_step};

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code};
use media::MediaKind;

/// Where a product stands in its review lifecycle (docs/RULES.md R5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProductStatus {
    Draft,
    CategoryReview,
    CategoryRejected,
    SelfTest,
    FeatureReview,
    FeatureRejected,
    Published,
}

impl ProductStatus {
    pub(crate) const ALL: [ProductStatus; 7] = [
        ProductStatus::Draft,
        ProductStatus::CategoryReview,
        ProductStatus::CategoryRejected,
        ProductStatus::SelfTest,
        ProductStatus::FeatureReview,
        ProductStatus::FeatureRejected,
        ProductStatus::Published,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Draft => "draft",
            ProductStatus::CategoryReview => "category_review",
            ProductStatus::CategoryRejected => "category_rejected",
            ProductStatus::SelfTest => "self_test",
            ProductStatus::FeatureReview => "feature_review",
            ProductStatus::FeatureRejected => "feature_rejected",
            ProductStatus::Published => "published",
        }
    }

    /// The inverse of [`as_str`](Self::as_str) (database column, `?status=` filter).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Why `edit` is refused in this state (409), or `None` when it may be made: nothing is
    /// edited under review; once published, only the category step's tags, SEO keywords and
    /// region selection ([`ProductStatus::category_locked`] keeps the category itself); a
    /// required medium (logo, user guide) may be replaced but no longer removed once the listing
    /// was submitted, so no published listing lacks one.
    pub(crate) fn refusal(self, edit: Edit) -> Option<ApiError> {
        if edit == Edit::Reprice {
            return (self != ProductStatus::Published).then(|| {
                ApiError::new(
                    Code::ProductNotPublished,
                    "prices change by version once the product is published",
                )
            });
        }
        let published_category =
            self == ProductStatus::Published && edit == Edit::Step(Step::Category);
        if let Some(refusal) = self.edit_refusal().filter(|_| !published_category) {
            return Some(refusal);
        }
        match edit {
            Edit::RemoveMedia(kind) if kind.is_required() && self != ProductStatus::Draft => {
                Some(ApiError::new(
                    Code::StepLocked,
                    format!(
                        "the listing was submitted: its {} can be replaced but not removed",
                        kind.as_str()
                    ),
                ))
            }
            _ => None,
        }
    }

    /// Whether a category review approved the category: it cannot change any more (nobody
    /// reviewed another), though the rest of the category step may.
    pub(crate) fn category_locked(self) -> bool {
        matches!(
            self,
            ProductStatus::SelfTest | ProductStatus::FeatureRejected | ProductStatus::Published
        )
    }

    /// The refusal of a category step that would change an approved category (409
    /// `StepLocked`).
    pub(crate) fn category_refusal() -> ApiError {
        ApiError::new(
            Code::StepLocked,
            "the category was approved in its review: it cannot change any more (its tags, SEO \
             keywords and region selection can)",
        )
    }

    /// Why any edit is refused in this state (409), or `None` when the listing is editable.
    fn edit_refusal(self) -> Option<ApiError> {
        match self {
            ProductStatus::CategoryReview | ProductStatus::FeatureReview => Some(ApiError::new(
                Code::ReviewPending,
                format!(
                    "the listing is under review ({}); wait for the decision before editing it",
                    self.as_str()
                ),
            )),
            ProductStatus::Published => Some(ApiError::new(
                Code::ListingNotEditable,
                "a published listing cannot be edited",
            )),
            ProductStatus::Draft
            | ProductStatus::CategoryRejected
            | ProductStatus::SelfTest
            | ProductStatus::FeatureRejected => None,
        }
    }
}

/// An edit of a listing, as its lifecycle may refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edit {
    /// A step written whole.
    Step(Step),
    /// A medium uploaded into a slot (new or replacing).
    PutMedia,
    /// A media slot emptied.
    RemoveMedia(MediaKind),
    /// New prices of a published product: a pricing version, without a new review.
    Reprice,
}

/// One of the five listing steps, as named in `PUT /api/v1/products/{id}/{step}`; ordered as
/// the wizard is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Step {
    Access,
    General,
    Category,
    Pricing,
    Agreement,
}

impl Step {
    /// The wizard's order; a product view lists its steps in this order.
    pub(crate) const ALL: [Step; 5] = [
        Step::Access,
        Step::General,
        Step::Category,
        Step::Pricing,
        Step::Agreement,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Step::Access => "access",
            Step::General => "general",
            Step::Category => "category",
            Step::Pricing => "pricing",
            Step::Agreement => "agreement",
        }
    }

    /// Parses a path segment; `None` means the route does not exist (404).
    pub(crate) fn parse(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|step| step.as_str() == segment)
    }
}

/// Why a listing is accepted but not as the marketplace recommends it. Stable identifiers, like
/// [`Code`], so clients can react to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum WarningCode {
    /// The access step names a private service template; customers are better served by a
    /// public one (the publishing guide: "We recommend that you select a public template").
    PrivateTemplateSelected,
    /// The logo is not 290 × 290 px, the size the catalog displays it at.
    LogoNotRecommendedSize,
}

/// Advice shown with an accepted listing (`GET /api/v1/products/{id}`): it never blocks a submit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Warning {
    /// The JSON path (`service_template_id`) or media slot (`media.logo`) the advice is about.
    pub field: String,
    pub code: WarningCode,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn statuses_round_trip_through_their_names_and_serde() {
        for status in ProductStatus::ALL {
            assert_eq!(ProductStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert_eq!(ProductStatus::parse("Draft"), None);
    }

    #[test]
    fn the_listing_is_editable_exactly_when_no_review_is_pending_and_it_is_not_published() {
        let pending = ProductStatus::CategoryReview.edit_refusal().unwrap();
        assert_eq!(pending.code, Code::ReviewPending);
        assert_eq!(pending.status(), StatusCode::CONFLICT);
        assert_eq!(
            ProductStatus::FeatureReview.edit_refusal().unwrap().code,
            Code::ReviewPending
        );
        let published = ProductStatus::Published.edit_refusal().unwrap();
        assert_eq!(published.code, Code::ListingNotEditable);
        assert_eq!(published.status(), StatusCode::CONFLICT);
        for editable in [
            ProductStatus::Draft,
            ProductStatus::CategoryRejected,
            ProductStatus::SelfTest,
            ProductStatus::FeatureRejected,
        ] {
            assert!(editable.edit_refusal().is_none(), "{editable:?}");
        }
    }

    #[test]
    fn the_category_is_locked_once_approved_and_required_media_once_submitted() {
        let code = |status: ProductStatus, edit| status.refusal(edit).map(|e| e.code);
        for status in [
            ProductStatus::SelfTest,
            ProductStatus::FeatureRejected,
            ProductStatus::Published,
        ] {
            // The step may be written (tags, keywords, region selection), not its category.
            assert_eq!(code(status, Edit::Step(Step::Category)), None);
            assert!(status.category_locked());
        }
        for status in [ProductStatus::SelfTest, ProductStatus::FeatureRejected] {
            assert_eq!(code(status, Edit::Step(Step::Pricing)), None);
        }
        assert_eq!(
            code(ProductStatus::Published, Edit::Step(Step::Pricing)),
            Some(Code::ListingNotEditable)
        );
        for status in [ProductStatus::Draft, ProductStatus::CategoryRejected] {
            assert_eq!(code(status, Edit::Step(Step::Category)), None);
            assert!(!status.category_locked());
        }
        for kind in [MediaKind::Logo, MediaKind::UserGuide] {
            assert_eq!(code(ProductStatus::Draft, Edit::RemoveMedia(kind)), None);
            for status in [
                ProductStatus::CategoryRejected,
                ProductStatus::SelfTest,
                ProductStatus::FeatureRejected,
            ] {
                assert_eq!(
                    code(status, Edit::RemoveMedia(kind)),
                    Some(Code::StepLocked)
                );
                assert_eq!(code(status, Edit::PutMedia), None);
            }
        }
        assert_eq!(
            code(
                ProductStatus::SelfTest,
                Edit::RemoveMedia(MediaKind::Screenshot)
            ),
            None
        );
        // Under review or published, the lifecycle's own refusal comes first.
        assert_eq!(
            code(ProductStatus::Published, Edit::RemoveMedia(MediaKind::Logo)),
            Some(Code::ListingNotEditable)
        );
    }

    #[test]
    fn steps_parse_from_their_path_segments() {
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert_eq!(Step::parse("media"), None);
        assert_eq!(Step::parse(""), None);
    }
}
