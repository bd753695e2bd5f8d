//! The public catalog (docs/RULES.md §7): published products only, readable without a token.
//!
//! Publication writes a `catalog_entries` row in the transaction that publishes the product, so
//! the listing, its filters and its search text are exactly those the operators approved.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::listing::service::ServiceSpec;
use crate::listing::steps::{AccessStep, CategoryStep, GeneralStep, PricingStep};
use crate::listing::{self, Product};
use crate::listing::{Step, categories};
use crate::platform::storage::Database;

pub(crate) mod delisting;
mod store;
pub(crate) mod versions;

/// The mark of the publishing guide's "Verify the results": the product is a service deployed by the
/// platform, whose stability the platform ensures.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct PlatformTag {
    pub id: &'static str,
    pub label: &'static str,
}

pub(crate) const PLATFORM_TAG: PlatformTag = PlatformTag {
    id: "compute_nest_service",
    label: "Compute Nest service: deployed by the platform, stability ensured",
};

fn stored<T>(
    db: &dyn Database,
    product_id: &str,
    step: Step,
    parse: impl FnOnce(&Value) -> ApiResult<T>,
) -> ApiResult<T> {
    let data = listing::store::step_data(db, product_id, step)?.ok_or_else(|| {
        ApiError::internal(format!("published product {product_id} lacks {step:?}"))
    })?;
    parse(&data)
}

/// What the catalog keeps of a product: its category, tags (JSON), search text and summary.
struct Entry {
    category: &'static str,
    tags: String,
    search_text: String,
    summary: String,
}

fn entry(db: &dyn Database, product: &Product, service: &ServiceSpec) -> ApiResult<Entry> {
    let access = stored(db, &product.id, Step::Access, |v| {
        AccessStep::from_stored(v, service)
    })?;
    let general = stored(db, &product.id, Step::General, GeneralStep::from_stored)?;
    let category = stored(db, &product.id, Step::Category, CategoryStep::from_stored)?;
    let pricing = stored(db, &product.id, Step::Pricing, PricingStep::from_stored)?;
    let summary = json!({
        "id": product.id,
        "product_name": access.product_name(),
        "short_description": general.short_description(),
        "category": category.category().id,
        "tags": category.tags(),
        "billing_period": pricing.billing_period(),
        "currency": pricing.currency(),
        "enterprise_only": pricing.enterprise_only(),
        "logo_url": format!("/api/v1/catalog/{}/media/logo", product.id),
        "platform_tag": PLATFORM_TAG,
    });
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
        tags: json!(category.tags()).to_string(),
        search_text,
        summary: summary.to_string(),
    })
}

/// Adds the product to the catalog. Runs inside the feature-approval transaction.
pub(crate) fn publish(
    db: &dyn Database,
    product: &Product,
    service: &ServiceSpec,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let e = entry(db, product, service)?;
    store::insert_entry(
        db,
        &product.id,
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
    let product = listing::store::find_product_unscoped(db, product_id)?;
    if product.status != listing::ProductStatus::Published {
        return Ok(());
    }
    let service = listing::store::find_service_unscoped(db, &product.service_id)?;
    let e = entry(db, &product, &service.spec)?;
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
) -> ApiResult<Vec<Value>> {
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
pub(crate) fn detail(db: &dyn Database, product_id: &str) -> ApiResult<Value> {
    let product = listing::store::find_published_product(db, product_id)?;
    if delisting::is_delisted(db, &product.id)? {
        return Err(ApiError::not_found("product"));
    }
    let service = &listing::store::find_service_unscoped(db, &product.service_id)?.spec;
    let mut out = store::find(db, &product.id)?;
    let steps = listing::store::steps(db, &product.id)?;
    let data = |step: Step| {
        steps
            .iter()
            .find(|(s, _)| *s == step)
            .map(|(_, d)| d.data.clone())
            .unwrap_or(Value::Null)
    };
    let pricing = PricingStep::from_stored(&data(Step::Pricing))?;
    let category = CategoryStep::from_stored(&data(Step::Category))?;
    let settings = crate::sales::item_settings(db, &product.id, &pricing, service)?;
    let items: Vec<_> = settings
        .iter()
        .filter(|s| s.in_effect)
        .map(|s| {
            json!({
                "code": s.item.code(),
                "name": s.item.name(),
                "tier_mode": s.item.tier_mode(),
                "price_unit": s.price_unit,
                "tiers": s.item.tiers(),
            })
        })
        .collect();
    let media: Vec<Value> = listing::store::media(db, &product.id)?
        .into_iter()
        .map(|m| {
            let url = match m.index {
                Some(i) => format!(
                    "/api/v1/catalog/{}/media/{}/{i}",
                    product.id,
                    m.kind.as_str()
                ),
                None => format!("/api/v1/catalog/{}/media/{}", product.id, m.kind.as_str()),
            };
            json!({ "kind": m.kind, "index": m.index, "content_type": m.content_type, "url": url })
        })
        .collect();
    out["general"] = data(Step::General);
    out["category_and_seo"] = data(Step::Category);
    out["agreement"] = data(Step::Agreement);
    out["service_method"] = json!(service.get().service_method);
    out["region_selectable"] = json!(category.region_selectable());
    out["regions"] = json!(service.get().regions);
    // What a quote or an order may name as `template_id` / `plan_id` (the templates and plans
    // some item bills), with the resources each template deploys.
    out["templates"] = json!(crate::sales::orderable_templates(
        &settings,
        &service.get().templates
    ));
    out["pricing"] = json!({
        "pricing_version": versions::current_version(db, &product.id)?,
        "pricing_plan": "by_usage",
        "billing_period": pricing.billing_period(),
        "currency": pricing.currency(),
        "enterprise_only": pricing.enterprise_only(),
        "billable_items": items,
    });
    out["media"] = json!(media);
    Ok(out)
}
