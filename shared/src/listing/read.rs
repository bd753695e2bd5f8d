//! What the capabilities above read of a listing, typed: a product with its service and its
//! steps ([`Listing`]), and a product's pricing [`Terms`]. The listing's store is its own; here
//! — and nowhere else — stored step JSON becomes steps, each re-checked as it is read.

use crate::error::{ApiError, ApiResult};
use crate::identity::Principal;
use crate::listing::service::{Service, ServiceSpec};
use crate::listing::steps::{AccessStep, AgreementStep, CategoryStep, GeneralStep, PricingStep};
use crate::listing::{Media, Product, ProductStatus, Step, StoredStep, missing_by_step, store};
use crate::platform::storage::{Database, RowLock};

/// Who reads a product, and so which products exist for it (any other is 404).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reader<'a> {
    /// Its provider (its own products) or an operator (every one).
    Caller(&'a Principal),
    /// Anyone: published products only.
    Public,
    /// The marketplace itself, for a product it already knows of (an instance's, one being
    /// published): any product.
    Internal,
}

/// Locks the product's row until the caller's transaction ends, before the caller reads what
/// it decides on (the listing's `store::lock_product` says how each lock is used): `Exclusive`
/// for a submission or a sales setting, `Shared` for an order.
pub(crate) fn lock_product(db: &dyn Database, product_id: &str, how: RowLock) -> ApiResult<()> {
    store::lock_product(db, product_id, how)
}

/// The product as `reader` may see it.
pub(crate) fn find_product(db: &dyn Database, reader: Reader, id: &str) -> ApiResult<Product> {
    match reader {
        Reader::Caller(caller) => store::find_product(db, caller, id),
        Reader::Public => store::find_published_product(db, id),
        Reader::Internal => store::find_product_unscoped(db, id),
    }
}

/// A product with its service and its steps as written.
pub(crate) struct Listing {
    pub product: Product,
    pub service: Service,
    steps: Vec<(Step, StoredStep)>,
}

/// The listing of a product, as `reader` may see it (404 otherwise).
pub(crate) fn find(db: &dyn Database, reader: Reader, id: &str) -> ApiResult<Listing> {
    let product = find_product(db, reader, id)?;
    let service = store::find_service_unscoped(db, &product.service_id)?;
    let steps = store::steps(db, &product.id)?;
    Ok(Listing {
        product,
        service,
        steps,
    })
}

impl Listing {
    /// Whether the step was written.
    pub(crate) fn has(&self, step: Step) -> bool {
        self.steps.iter().any(|(s, _)| *s == step)
    }

    fn stored(&self, step: Step) -> ApiResult<&serde_json::Value> {
        self.steps
            .iter()
            .find(|(s, _)| *s == step)
            .map(|(_, stored)| &stored.data)
            .ok_or_else(|| {
                ApiError::internal(format!("{} lacks its {step:?} step", self.product.id))
            })
    }

    pub(crate) fn access(&self) -> ApiResult<AccessStep> {
        AccessStep::from_stored(self.stored(Step::Access)?, &self.service.spec)
    }

    pub(crate) fn general(&self) -> ApiResult<GeneralStep> {
        GeneralStep::from_stored(self.stored(Step::General)?)
    }

    pub(crate) fn category(&self) -> ApiResult<CategoryStep> {
        CategoryStep::from_stored(self.stored(Step::Category)?)
    }

    pub(crate) fn pricing(&self) -> ApiResult<PricingStep> {
        PricingStep::from_stored(self.stored(Step::Pricing)?)
    }

    pub(crate) fn agreement(&self) -> ApiResult<AgreementStep> {
        AgreementStep::from_stored(self.stored(Step::Agreement)?)
    }

    pub(crate) fn is_published(&self) -> bool {
        self.product.status == ProductStatus::Published
    }

    /// The listing's media (metadata; the bytes are served by the listing's own reads).
    pub(crate) fn media(&self, db: &dyn Database) -> ApiResult<Vec<Media>> {
        store::media(db, &self.product.id)
    }

    /// What the listing still lacks before a review, per step in wizard order (empty lists
    /// when nothing does).
    pub(crate) fn missing(&self, db: &dyn Database) -> ApiResult<Vec<(Step, Vec<String>)>> {
        Ok(missing_by_step(&self.steps, &self.media(db)?))
    }
}

/// What a product's usage is priced by: its pricing step, and the service whose templates and
/// plans its billable items are associated with.
pub(crate) struct Terms {
    pub product: Product,
    pub service: ServiceSpec,
    pub pricing: PricingStep,
}

/// The pricing terms of a product the marketplace knows of (an instance's), read alone: a push
/// needs only these, and descriptions and agreements can be long.
pub(crate) fn terms(db: &dyn Database, product_id: &str) -> ApiResult<Terms> {
    let product = store::find_product_unscoped(db, product_id)?;
    let service = store::find_service_unscoped(db, &product.service_id)?.spec;
    let pricing = PricingStep::from_stored(
        &store::step_data(db, &product.id, Step::Pricing)?
            .ok_or_else(|| ApiError::internal("an ordered product lacks its pricing step"))?,
    )?;
    Ok(Terms {
        product,
        service,
        pricing,
    })
}

/// The pricing step of a product, once written (it defines the product's billable items).
pub(crate) fn pricing_of(db: &dyn Database, product_id: &str) -> ApiResult<Option<PricingStep>> {
    store::step_data(db, product_id, Step::Pricing)?
        .map(|data| PricingStep::from_stored(&data))
        .transpose()
}
