//! The public catalog (SPEC §7): published products only, readable without a token.
//!
//! Publication writes a `catalog_entries` row in the transaction that publishes the product, so
//! the listing, its filters and its search text are exactly those the operators approved.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::listing::Step;
use crate::listing::service::ServiceSpec;
use crate::listing::steps::{AccessStep, CategoryStep, GeneralStep, PricingStep};
use crate::listing::{self, Product};
use crate::platform::clock::rfc3339;
use crate::platform::storage::{Database, Row};

/// The mark of the seed's "Verify the results": the product is a service deployed by the
/// platform, whose stability the platform ensures.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PlatformTag {
    pub id: &'static str,
    pub label: &'static str,
}

pub const PLATFORM_TAG: PlatformTag = PlatformTag {
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

/// Adds the product to the catalog. Runs inside the feature-approval transaction.
pub fn publish(
    db: &dyn Database,
    product: &Product,
    service: &ServiceSpec,
    now: DateTime<Utc>,
) -> ApiResult<()> {
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
    db.execute(
        "INSERT INTO catalog_entries (product_id, category, tags, search_text, summary, published_at)
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            product.id.clone().into(),
            category.category().id.into(),
            json!(category.tags()).to_string().into(),
            search_text.into(),
            summary.to_string().into(),
            rfc3339(now).into(),
        ],
    )?;
    Ok(())
}

#[derive(Debug, Default)]
pub struct CatalogFilter {
    pub category: Option<String>,
    pub tag: Option<String>,
    /// Case-insensitive substring of the name, short description, tags or SEO keywords.
    pub q: Option<String>,
}

fn summary(row: &Row) -> ApiResult<Value> {
    let mut s: Value = serde_json::from_str(&row.text(0)?).map_err(ApiError::internal)?;
    s["published_at"] = Value::String(row.text(1)?);
    Ok(s)
}

pub fn list(
    db: &dyn Database,
    filter: &CatalogFilter,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<Value>> {
    let rows = db.execute(
        "SELECT summary, published_at FROM catalog_entries
         WHERE (?1 IS NULL OR category = ?1)
           AND (?2 IS NULL OR EXISTS (SELECT 1 FROM json_each(tags) WHERE value = ?2))
           AND (?3 IS NULL OR instr(search_text, ?3) > 0)
           AND (?4 IS NULL OR product_id > ?4)
         ORDER BY product_id LIMIT ?5",
        &[
            filter.category.clone().into(),
            filter.tag.clone().into(),
            filter.q.as_ref().map(|q| q.to_lowercase()).into(),
            after.map(str::to_owned).into(),
            (limit as i64).into(),
        ],
    )?;
    rows.iter().map(summary).collect()
}

/// The catalog summary of a published product, or 404 for anything not published.
pub fn find(db: &dyn Database, product_id: &str) -> ApiResult<Value> {
    let rows = db.execute(
        "SELECT summary, published_at FROM catalog_entries WHERE product_id = ?",
        &[product_id.into()],
    )?;
    rows.first()
        .map(summary)
        .transpose()?
        .ok_or_else(|| ApiError::not_found("product"))
}

/// The published listing a customer reads before ordering: general information, media links,
/// the agreement, and the tier schedule of every billable item in effect.
pub fn detail(db: &dyn Database, product: &Product, service: &ServiceSpec) -> ApiResult<Value> {
    let mut out = find(db, &product.id)?;
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
    let items: Vec<_> = crate::sales::item_settings(db, &product.id, &pricing, service)?
        .into_iter()
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
    // What a quote or an order may name as `template_id` / `plan_id`, with the resources each
    // template deploys.
    out["templates"] = json!(service.get().templates);
    out["pricing"] = json!({
        "pricing_plan": "by_usage",
        "billing_period": pricing.billing_period(),
        "currency": pricing.currency(),
        "enterprise_only": pricing.enterprise_only(),
        "billable_items": items,
    });
    out["media"] = json!(media);
    Ok(out)
}
