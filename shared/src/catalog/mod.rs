//! The public catalog (docs/RULES.md §7): published products only, readable without a token.
//!
//! Publication writes a `catalog_entries` row in the transaction that publishes the product, so
//! the listing, its filters and its search text are exactly those the operators approved. What
//! the catalog answers is typed ([`CatalogEntry`], [`CatalogProduct`]): the API serializes it,
//! the console reads its fields.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::listing::media::MediaKind;
use crate::listing::service::{ServiceMethod, Template};
use crate::listing::steps::{AgreementStep, CategoryStep, GeneralStep, PricingPlan};
use crate::listing::{self, Listing, Reader, Step, categories};
use crate::period::BillingPeriod;
use crate::platform::storage::Database;
use crate::sales::{self, PricedItem};

pub(crate) mod delisting;
mod store;
pub(crate) mod versions;

/// The mark of the publishing guide's "Verify the results": the product is a service deployed by the
/// platform, whose stability the platform ensures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct PlatformTag {
    pub id: &'static str,
    pub label: &'static str,
}

pub(crate) const PLATFORM_TAG: PlatformTag = PlatformTag {
    id: "compute_nest_service",
    label: "Compute Nest service: deployed by the platform, stability ensured",
};

fn platform_tag() -> PlatformTag {
    PLATFORM_TAG
}

/// What publication writes of a product, as the catalog lists it: kept with the entry, so a
/// list reads no listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Summary {
    pub id: String,
    pub product_name: String,
    pub short_description: String,
    /// A category id of `GET /api/v1/catalog/categories`.
    pub category: String,
    pub tags: Vec<String>,
    pub billing_period: BillingPeriod,
    pub currency: String,
    pub enterprise_only: bool,
    pub logo_url: String,
    /// The marketplace's own mark, the same on every product (read back as it is today).
    #[serde(skip_deserializing, default = "platform_tag")]
    pub platform_tag: PlatformTag,
}

/// A published product in the catalog's list (`GET /api/v1/catalog`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct CatalogEntry {
    #[serde(flatten)]
    pub summary: Summary,
    #[serde(with = "crate::platform::clock::instant")]
    pub published_at: DateTime<Utc>,
}

/// The published listing a customer reads before ordering (`GET /api/v1/catalog/{id}`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CatalogProduct {
    #[serde(flatten)]
    pub entry: CatalogEntry,
    pub general: GeneralStep,
    pub category_and_seo: CategoryStep,
    pub agreement: AgreementStep,
    pub service_method: ServiceMethod,
    pub region_selectable: bool,
    pub regions: Vec<String>,
    /// What a quote or an order may name as `template_id` / `plan_id` (the templates and plans
    /// some item bills), with the resources each template deploys.
    pub templates: Vec<Template>,
    pub pricing: CatalogPricing,
    pub media: Vec<CatalogMedia>,
}

/// How a published product is priced: by usage, per period, in the marketplace's currency,
/// item by item.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CatalogPricing {
    /// The version of these prices: the one new orders get.
    pub pricing_version: i64,
    pub pricing_plan: PricingPlan,
    pub billing_period: BillingPeriod,
    pub currency: String,
    pub enterprise_only: bool,
    /// The items in effect, each with its tiers.
    pub billable_items: Vec<PricedItem>,
}

/// A medium of a published product, at the catalog's address of its bytes.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CatalogMedia {
    pub kind: MediaKind,
    pub index: Option<u32>,
    pub content_type: String,
    pub url: String,
}

/// What the catalog keeps of a product: its category, tags, search text and summary.
struct Entry {
    category: &'static str,
    tags: Vec<String>,
    search_text: String,
    summary: Summary,
}

fn entry(listing: &Listing) -> ApiResult<Entry> {
    let product = &listing.product;
    let access = listing.access()?;
    let general = listing.general()?;
    let category = listing.category()?;
    let pricing = listing.pricing()?;
    let summary = Summary {
        id: product.id.clone(),
        product_name: access.product_name().to_owned(),
        short_description: general.short_description().to_owned(),
        category: category.category().id.to_owned(),
        tags: category.tags().to_vec(),
        billing_period: pricing.billing_period(),
        currency: pricing.currency().to_owned(),
        enterprise_only: pricing.enterprise_only(),
        logo_url: format!("/api/v1/catalog/{}/media/logo", product.id),
        platform_tag: PLATFORM_TAG,
    };
    let search_text = [
        access.product_name(),
        general.short_description(),
        &category.tags().join(" "),
        &category.seo_keywords().join(" "),
    ]
    .join("\n")
    .to_lowercase();
    Ok(Entry {
        category: category.category().id,
        tags: category.tags().to_vec(),
        search_text,
        summary,
    })
}

/// Adds the product to the catalog. Runs inside the feature-approval transaction.
pub(crate) fn publish(db: &dyn Database, listing: &Listing, now: DateTime<Utc>) -> ApiResult<()> {
    let e = entry(listing)?;
    store::insert_entry(
        db,
        &listing.product.id,
        e.category,
        &e.tags,
        &e.search_text,
        &e.summary,
        now,
    )
}

/// Keeps a published product's catalog entry in step with its category step (tags and SEO
/// keywords stay editable after publication, without a new review). Runs in the transaction that
/// writes the step; a product not in the catalog has nothing to follow.
pub(crate) fn follow_step(db: &dyn Database, product_id: &str, step: Step) -> ApiResult<()> {
    if step != Step::Category {
        return Ok(());
    }
    let listing = listing::find(db, Reader::Internal, product_id)?;
    if !listing.is_published() {
        return Ok(());
    }
    let e = entry(&listing)?;
    store::update_entry(
        db,
        product_id,
        e.category,
        &e.tags,
        &e.search_text,
        &e.summary,
    )
}

/// Published products matching the filter, in publication-id order. An unknown category is a
/// 400, so a typo does not read as "nothing in this category".
pub(crate) fn search(
    db: &dyn Database,
    filter: &CatalogFilter,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<CatalogEntry>> {
    if let Some(c) = &filter.category
        && categories::find(c).is_none()
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "category",
            Code::InvalidQuery,
            "not one of GET /api/v1/catalog/categories",
        )]));
    }
    store::list(db, filter, after, limit)
}

#[derive(Debug, Default)]
pub(crate) struct CatalogFilter {
    pub category: Option<String>,
    pub tag: Option<String>,
    /// Case-insensitive substring of the name, short description, tags or SEO keywords.
    pub q: Option<String>,
}

/// The published listing a customer reads before ordering: general information, media links,
/// the agreement, and the tier schedule of every billable item in effect.
pub(crate) fn detail(db: &dyn Database, product_id: &str) -> ApiResult<CatalogProduct> {
    let listing = listing::find(db, Reader::Public, product_id)?;
    if delisting::is_delisted(db, &listing.product.id)? {
        return Err(ApiError::not_found("product"));
    }
    let (product, service) = (&listing.product, listing.service.spec.get());
    let pricing = listing.pricing()?;
    let category = listing.category()?;
    let settings = sales::item_settings(db, &product.id, &pricing, &listing.service.spec)?;
    let media = listing
        .media(db)?
        .into_iter()
        .map(|m| {
            let kind = m.kind.as_str();
            let url = match m.index {
                Some(i) => format!("/api/v1/catalog/{}/media/{kind}/{i}", product.id),
                None => format!("/api/v1/catalog/{}/media/{kind}", product.id),
            };
            CatalogMedia {
                kind: m.kind,
                index: m.index,
                content_type: m.content_type,
                url,
            }
        })
        .collect();
    Ok(CatalogProduct {
        entry: store::find(db, &product.id)?,
        general: listing.general()?,
        agreement: listing.agreement()?,
        service_method: service.service_method,
        region_selectable: category.region_selectable(),
        regions: service.regions.clone(),
        templates: sales::orderable_templates(&settings, &service.templates),
        pricing: CatalogPricing {
            pricing_version: versions::current_version(db, &product.id)?,
            pricing_plan: pricing.pricing_plan(),
            billing_period: pricing.billing_period(),
            currency: pricing.currency().to_owned(),
            enterprise_only: pricing.enterprise_only(),
            billable_items: settings
                .iter()
                .filter(|s| s.in_effect)
                .map(PricedItem::from)
                .collect(),
        },
        category_and_seo: category,
        media,
    })
}
