//! Delisting (docs/RULES.md R15.6–R15.9): a published product taken out of the catalog by its
//! provider or an operator takes no quotes or orders while its instances keep running and
//! billing; relisting brings it back, and an operator's delisting only an operator lifts. Both
//! are recorded with who, when and why.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::store;
use crate::error::{ApiError, ApiResult, Code};
use crate::identity::{Principal, Role};
use crate::listing::{self, ProductStatus, Reader};
use crate::platform::storage::{Database, enum_to_str, transaction};
use crate::validate::Errors;
use crate::webhook::{self, EventType, Tenants};

/// The body of `POST /api/v1/products/{id}/delist` and `…/relist`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListingChangeRequest {
    pub reason: Option<String>,
}

/// One delisting or relisting: who, when and why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ListingChange {
    pub action: ListingAction,
    pub actor_id: String,
    pub actor_role: Role,
    pub reason: String,
    #[serde(with = "crate::platform::clock::instant")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ListingAction {
    Delisted,
    Relisted,
}

/// Whether a product is in the catalog, the delisting that keeps it out, and its history.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Availability {
    pub product_id: String,
    pub listed: bool,
    pub delisting: Option<ListingChange>,
    pub history: Vec<ListingChange>,
}

const REASON_MAX: usize = 2_000;

fn reason_of(request: &ListingChangeRequest) -> ApiResult<String> {
    let mut e = Errors::new();
    let reason = request
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    match reason {
        None => e.add("reason", Code::ReasonRequired, "say why"),
        Some(r) => e.text("reason", r, 1, REASON_MAX, Code::TooLong),
    }
    e.finish()?;
    Ok(reason.unwrap_or_default().to_owned())
}

/// The product as the caller may change its availability: its provider's, or any for an
/// operator (another provider's is 404).
fn product_of(
    db: &dyn Database,
    caller: &Principal,
    product_id: &str,
) -> ApiResult<listing::Product> {
    caller.require(&[Role::Provider, Role::Operator])?;
    listing::find_product(db, Reader::Caller(caller), product_id)
}

/// Where a product stands in the catalog, for its provider or an operator.
pub(crate) fn availability(
    db: &dyn Database,
    caller: &Principal,
    product_id: &str,
) -> ApiResult<Availability> {
    let product = product_of(db, caller, product_id)?;
    availability_of(db, &product.id)
}

fn availability_of(db: &dyn Database, product_id: &str) -> ApiResult<Availability> {
    let history = store::listing_log(db, product_id)?;
    let delisting = store::delisting(db, product_id)?;
    let published =
        listing::find_product(db, Reader::Internal, product_id)?.status == ProductStatus::Published;
    Ok(Availability {
        product_id: product_id.to_owned(),
        listed: published && delisting.is_none(),
        delisting,
        history,
    })
}

/// Takes a published product out of the catalog (409 `ProductNotPublished`, or
/// `ProductDelisted` when it is out already), with a `product.delisted` event.
pub(crate) fn delist(
    db: &dyn Database,
    caller: &Principal,
    product_id: &str,
    request: &ListingChangeRequest,
    now: DateTime<Utc>,
) -> ApiResult<Availability> {
    let reason = reason_of(request)?;
    transaction(db, |db| {
        let product = product_of(db, caller, product_id)?;
        if product.status != ProductStatus::Published {
            return Err(ApiError::new(
                Code::ProductNotPublished,
                "only a published product is delisted",
            ));
        }
        let actor = (caller.id.as_str(), enum_to_str(&caller.role));
        if !store::delist(
            db,
            &product.id,
            (actor.0, &actor.1),
            &reason,
            now.timestamp(),
        )? {
            return Err(ApiError::new(
                Code::ProductDelisted,
                "the product is delisted already",
            ));
        }
        let view = availability_of(db, &product.id)?;
        let event = Delisted {
            product_id: product.id.clone(),
            provider_id: product.provider_id.clone(),
            delisted_by: caller.id.clone(),
            delisted_by_role: caller.role,
            reason: reason.clone(),
            delisted_at: now,
        };
        let tenants = Tenants {
            provider: Some(&product.provider_id),
            customer: None,
        };
        webhook::emit(db, EventType::ProductDelisted, tenants, &event, now)?;
        Ok(view)
    })
}

/// Brings a delisted product back (409 `NotDelisted` when it is not; `DelistedByOperator` when
/// a provider would lift an operator's delisting).
pub(crate) fn relist(
    db: &dyn Database,
    caller: &Principal,
    product_id: &str,
    request: &ListingChangeRequest,
    now: DateTime<Utc>,
) -> ApiResult<Availability> {
    let reason = reason_of(request)?;
    transaction(db, |db| {
        let product = product_of(db, caller, product_id)?;
        let Some(standing) = store::delisting(db, &product.id)? else {
            return Err(not_delisted());
        };
        if standing.actor_role == Role::Operator && !caller.is_operator() {
            return Err(ApiError::new(
                Code::DelistedByOperator,
                "an operator delisted the product: only an operator relists it",
            ));
        }
        let actor = (caller.id.as_str(), enum_to_str(&caller.role));
        let lifted = store::relist(
            db,
            &product.id,
            (actor.0, &actor.1),
            &reason,
            now.timestamp(),
        )?;
        // A relisting that raced this one lifted it first: this one lifts nothing.
        if !lifted {
            return Err(not_delisted());
        }
        availability_of(db, &product.id)
    })
}

fn not_delisted() -> ApiError {
    ApiError::new(Code::NotDelisted, "the product is not delisted")
}

/// What `product.delisted` carries.
#[derive(Debug, Serialize)]
struct Delisted {
    product_id: String,
    provider_id: String,
    delisted_by: String,
    delisted_by_role: Role,
    reason: String,
    #[serde(with = "crate::platform::clock::instant")]
    delisted_at: DateTime<Utc>,
}

/// 409 `ProductDelisted` for a product out of the catalog: what quotes and orders check.
pub(crate) fn check_listed(db: &dyn Database, product_id: &str) -> ApiResult<()> {
    match store::delisting(db, product_id)? {
        None => Ok(()),
        Some(_) => Err(ApiError::new(
            Code::ProductDelisted,
            "the product is delisted: it takes no new quotes or orders (its instances keep running)",
        )),
    }
}

/// Whether a product is out of the catalog (the public catalog answers 404 for it).
pub(crate) fn is_delisted(db: &dyn Database, product_id: &str) -> ApiResult<bool> {
    Ok(store::delisting(db, product_id)?.is_some())
}
