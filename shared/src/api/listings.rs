//! `/api/v1/services/...`, `/api/v1/products/...` and `/api/v1/catalog/...`.

use http::{Method, Response, StatusCode, header};
use serde::{Deserialize, Serialize};

use super::{Ctx, Resp, created, no_content, not_allowed, not_found, ok};
use crate::catalog::{self, CatalogFilter};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{Principal, Role};
use crate::listing::media::{self, MediaKind};
use crate::listing::service::{ServiceRequest, ServiceSpec};
use crate::listing::steps::PricingStep;
use crate::listing::{self, Media, Product, StoredStep};
use crate::listing::{ProductStatus, Step, Warning, categories, validate_step};
use crate::platform::ids::new_id;
use crate::platform::storage::{Database, transaction};
use crate::sales::{self, Associations, ReportingRequest, Setting};

pub fn route(ctx: &Ctx) -> ApiResult<Resp> {
    let segs: Vec<&str> = ctx.segments.iter().map(String::as_str).collect();
    match (segs.as_slice(), &ctx.method) {
        (["services"], &Method::POST) => create_service(ctx),
        (["services"], &Method::GET) => list_services(ctx),
        (["services"], _) => not_allowed("GET, POST"),
        (["services", id], &Method::GET) => get_service(ctx, id),
        (["services", _], _) => not_allowed("GET"),

        (["products"], &Method::POST) => create_product(ctx),
        (["products"], &Method::GET) => list_products(ctx),
        (["products"], _) => not_allowed("GET, POST"),
        (["products", id], &Method::GET) => get_product(ctx, id),
        (["products", _], _) => not_allowed("GET"),
        (["products", id, "media"], &Method::GET) => list_media(ctx, id),
        (["products", _, "media"], _) => not_allowed("GET"),
        (["products", id, "media", kind], m) => media_slot(ctx, id, kind, None, m),
        (["products", id, "media", kind, index], m) => media_slot(ctx, id, kind, Some(index), m),
        (["products", id, "billable-items"], &Method::GET) => billable_items(ctx, id),
        (["products", _, "billable-items"], _) => not_allowed("GET"),
        (["products", id, "billable-items", code, "reporting"], &Method::PUT) => {
            put_reporting(ctx, id, code)
        }
        (["products", id, "billable-items", code, "associations"], &Method::PUT) => {
            put_associations(ctx, id, code)
        }
        (
            [
                "products",
                _,
                "billable-items",
                _,
                "reporting" | "associations",
            ],
            _,
        ) => not_allowed("PUT"),
        (["products", id, step], m) => match Step::parse(step) {
            Some(step) if m == Method::PUT => put_step(ctx, id, step),
            Some(step) if m == Method::GET => get_step(ctx, id, step),
            Some(_) => not_allowed("GET, PUT"),
            None => not_found(),
        },

        (["catalog", "categories"], &Method::GET) => ok(&serde_json::json!({
            "items": categories::CATEGORIES
        })),
        (["catalog", "categories"], _) => not_allowed("GET"),
        (["catalog"], &Method::GET) => catalog_list(ctx),
        (["catalog"], _) => not_allowed("GET"),
        (["catalog", id], &Method::GET) => catalog_detail(ctx, id),
        (["catalog", _], _) => not_allowed("GET"),
        (["catalog", id, "media", kind], &Method::GET) => catalog_media(ctx, id, kind, None),
        (["catalog", id, "media", kind, index], &Method::GET) => {
            catalog_media(ctx, id, kind, Some(index))
        }
        (["catalog", _, "media", _] | ["catalog", _, "media", _, _], _) => not_allowed("GET"),
        _ => not_found(),
    }
}

/// Listing endpoints serve providers (their own products) and operators (all of them).
fn provider_or_operator(ctx: &Ctx) -> ApiResult<Principal> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider, Role::Operator])?;
    Ok(caller)
}

/// Only the product's provider writes its listing.
fn provider(ctx: &Ctx) -> ApiResult<Principal> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider])?;
    Ok(caller)
}

fn create_service(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = provider(ctx)?;
    let spec = ctx.json::<ServiceRequest>()?.validate()?;
    created(&listing::store::create_service(
        ctx.storage.db()?,
        &caller,
        spec,
        ctx.now,
    )?)
}

fn list_services(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let page = ctx.page()?;
    let items = listing::store::list_services(
        ctx.storage.db()?,
        &caller,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |s| &s.id)
}

fn get_service(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    ok(&listing::store::find_service(
        ctx.storage.db()?,
        &caller,
        id,
    )?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProduct {
    service_id: String,
}

fn create_product(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = provider(ctx)?;
    let new: NewProduct = ctx.json()?;
    let db = ctx.storage.db()?;
    // Another provider's service is "not found", exactly like a service that does not exist.
    let service = listing::store::find_service(db, &caller, &new.service_id)?;
    let product = listing::store::create_product(db, &caller, &service.id, ctx.now)?;
    created(&view(ctx, product)?)
}

fn list_products(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let page = ctx.page()?;
    let status = ctx
        .query("status")
        .map(|s| {
            ProductStatus::parse(s).ok_or_else(|| {
                ApiError::validation(vec![FieldError::new(
                    "status",
                    Code::InvalidQuery,
                    "not a product status",
                )])
            })
        })
        .transpose()?;
    let items = listing::store::list_products(
        ctx.storage.db()?,
        &caller,
        status,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |p| &p.id)
}

fn get_product(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let product = listing::store::find_product(ctx.storage.db()?, &caller, id)?;
    ok(&view(ctx, product)?)
}

/// Whether one step is done, and what it still lacks.
#[derive(Serialize)]
struct Completeness {
    complete: bool,
    missing: Vec<String>,
}

/// `GET /api/v1/products/{id}`: every step, per-step completeness, warnings and media.
#[derive(Serialize)]
struct ProductView {
    #[serde(flatten)]
    product: Product,
    steps: serde_json::Map<String, serde_json::Value>,
    completeness: serde_json::Map<String, serde_json::Value>,
    /// All five steps valid and the required media (logo, user guide) uploaded: ready to submit.
    complete: bool,
    warnings: Vec<Warning>,
    media: Vec<MediaView>,
}

#[derive(Serialize)]
struct MediaView {
    #[serde(flatten)]
    media: Media,
    url: String,
}

fn media_url(product_id: &str, m: &Media) -> String {
    match m.index {
        Some(i) => format!(
            "/api/v1/products/{product_id}/media/{}/{i}",
            m.kind.as_str()
        ),
        None => format!("/api/v1/products/{product_id}/media/{}", m.kind.as_str()),
    }
}

fn view(ctx: &Ctx, product: Product) -> ApiResult<ProductView> {
    let db = ctx.storage.db()?;
    let stored: Vec<(Step, StoredStep)> = listing::store::steps(db, &product.id)?;
    let media = listing::store::media(db, &product.id)?;
    let mut steps = serde_json::Map::new();
    let mut completeness = serde_json::Map::new();
    let mut warnings = Vec::new();
    for (step, stored) in &stored {
        warnings.extend(stored.warnings.iter().cloned());
        steps.insert(step.as_str().to_owned(), stored.data.clone());
    }
    let missing = listing::missing_by_step(&stored, &media);
    let complete = missing.iter().all(|(_, m)| m.is_empty());
    for (step, missing) in missing {
        steps
            .entry(step.as_str())
            .or_insert(serde_json::Value::Null);
        let c = Completeness {
            complete: missing.is_empty(),
            missing,
        };
        completeness.insert(
            step.as_str().to_owned(),
            serde_json::to_value(c).map_err(ApiError::internal)?,
        );
    }
    warnings.extend(media.iter().filter_map(media_warning));
    let media = media
        .into_iter()
        .map(|m| MediaView {
            url: media_url(&product.id, &m),
            media: m,
        })
        .collect();
    Ok(ProductView {
        product,
        steps,
        completeness,
        complete,
        warnings,
        media,
    })
}

fn media_warning(m: &Media) -> Option<Warning> {
    match (m.kind, m.width, m.height) {
        (MediaKind::Logo, Some(w), Some(h)) => media::logo_size_warning(w, h),
        _ => None,
    }
}

fn put_step(ctx: &Ctx, id: &str, step: Step) -> ApiResult<Resp> {
    let caller = provider(ctx)?;
    let db = ctx.storage.db()?;
    let product = listing::store::find_product(db, &caller, id)?;
    if let Some(refusal) = product.status.edit_refusal() {
        return Err(refusal);
    }
    let service = listing::store::find_service(db, &caller, &product.service_id)?;
    let validated = validate_step(step, ctx.json_bytes()?, &service.spec)?;
    transaction(db, |db| {
        listing::store::lock_for_edit(db, &product.id, ctx.now)?;
        if step == Step::Pricing {
            listing::store::check_billing_period_change(db, &product.id, validated.data())?;
        }
        listing::store::save_step(db, &product.id, step, &validated, ctx.now)
    })?;
    let product = listing::store::find_product(db, &caller, id)?;
    ok(&view(ctx, product)?)
}

fn get_step(ctx: &Ctx, id: &str, step: Step) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let db = ctx.storage.db()?;
    let product = listing::store::find_product(db, &caller, id)?;
    listing::store::steps(db, &product.id)?
        .into_iter()
        .find(|(s, _)| *s == step)
        .map(|(_, stored)| ok(&stored))
        .unwrap_or_else(|| Err(ApiError::not_found("step")))
}

fn list_media(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let db = ctx.storage.db()?;
    let product = listing::store::find_product(db, &caller, id)?;
    let items: Vec<MediaView> = listing::store::media(db, &product.id)?
        .into_iter()
        .map(|m| MediaView {
            url: media_url(&product.id, &m),
            media: m,
        })
        .collect();
    ok(&serde_json::json!({ "items": items }))
}

/// `/products/{id}/media/{kind}[/{index}]`: single kinds take no index, multi kinds require one.
/// Parses `{kind}[/{index}]` of a media path; an unknown kind is 404.
fn media_path(kind: &str, index: Option<&str>) -> ApiResult<(MediaKind, Option<u32>)> {
    let kind = MediaKind::parse(kind).ok_or_else(|| ApiError::not_found("media kind"))?;
    let index = index
        .map(|i| {
            i.parse::<u32>().map_err(|_| {
                ApiError::validation(vec![FieldError::new(
                    "index",
                    Code::InvalidMediaIndex,
                    "the media index is a positive integer",
                )])
            })
        })
        .transpose()?;
    Ok((kind, index))
}

/// `/products/{id}/media/{kind}[/{index}]`: single kinds take no index, multi kinds require one.
fn media_slot(
    ctx: &Ctx,
    id: &str,
    kind: &str,
    index: Option<&str>,
    method: &Method,
) -> ApiResult<Resp> {
    let (kind, index) = media_path(kind, index)?;
    match *method {
        Method::PUT => put_media(ctx, id, kind, index),
        Method::GET => get_media(ctx, id, kind, index),
        Method::DELETE => delete_media(ctx, id, kind, index),
        _ => not_allowed("GET, PUT, DELETE"),
    }
}

fn put_media(ctx: &Ctx, id: &str, kind: MediaKind, index: Option<u32>) -> ApiResult<Resp> {
    let caller = provider(ctx)?;
    let db = ctx.storage.db()?;
    let product = listing::store::find_product(db, &caller, id)?;
    if let Some(refusal) = product.status.edit_refusal() {
        return Err(refusal);
    }
    let checked = media::check_upload(kind, index, ctx.header("content-type"), &ctx.body)?;
    // A fresh key per upload: the slot's old blob stays intact until the metadata pointing at
    // the new one has committed, so a failed upload leaves the listing exactly as it was.
    let blob_key = format!("media/{}/{}", product.id, new_id("blob", ctx.now));
    let kv = ctx.storage.kv()?;
    kv.set(&blob_key, &ctx.body)?;
    let saved = transaction(db, |db| {
        listing::store::lock_for_edit(db, &product.id, ctx.now)?;
        listing::store::put_media(db, &product.id, kind, index, &checked, &blob_key, ctx.now)
    });
    let (media, previous) = match saved {
        Ok(saved) => saved,
        Err(e) => {
            // Best effort: an orphaned blob is invisible (nothing points at it).
            let _ = kv.delete(&blob_key);
            return Err(e);
        }
    };
    if let Some(previous) = previous {
        let _ = kv.delete(&previous);
    }
    let warnings: Vec<Warning> = media_warning(&media).into_iter().collect();
    ok(&serde_json::json!({
        "url": media_url(&product.id, &media),
        "media": media,
        "warnings": warnings,
    }))
}

fn get_media(ctx: &Ctx, id: &str, kind: MediaKind, index: Option<u32>) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let product = listing::store::find_product(ctx.storage.db()?, &caller, id)?;
    serve_media(ctx, &product.id, kind, index)
}

/// The bytes of a media slot, with the content type they were checked to have.
fn serve_media(
    ctx: &Ctx,
    product_id: &str,
    kind: MediaKind,
    index: Option<u32>,
) -> ApiResult<Resp> {
    let media = listing::store::find_media(ctx.storage.db()?, product_id, kind, index)?;
    let bytes = ctx
        .storage
        .kv()?
        .get(&media.blob_key)?
        .ok_or_else(|| ApiError::internal(format!("blob {} is missing", media.blob_key)))?;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, media.content_type)
        .body(bytes)
        .map_err(ApiError::internal)
}

fn delete_media(ctx: &Ctx, id: &str, kind: MediaKind, index: Option<u32>) -> ApiResult<Resp> {
    let caller = provider(ctx)?;
    let db = ctx.storage.db()?;
    let product = listing::store::find_product(db, &caller, id)?;
    let blob_key = transaction(db, |db| {
        listing::store::lock_for_edit(db, &product.id, ctx.now)?;
        listing::store::delete_media(db, &product.id, kind, index)
    })?;
    let _ = ctx.storage.kv()?.delete(&blob_key);
    no_content()
}

/// The pricing step of a product, which defines its billable items.
fn pricing(db: &dyn Database, product_id: &str) -> ApiResult<Option<PricingStep>> {
    listing::store::step_data(db, product_id, Step::Pricing)?
        .map(|data| PricingStep::from_stored(&data))
        .transpose()
}

fn billable_items(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let db = ctx.storage.db()?;
    let product = listing::store::find_product(db, &caller, id)?;
    let service = listing::store::find_service(db, &caller, &product.service_id)?;
    let items = match pricing(db, &product.id)? {
        Some(p) => sales::item_settings(db, &product.id, &p, &service.spec)?,
        None => Vec::new(),
    };
    ok(&serde_json::json!({ "items": items }))
}

/// Writes one half of an item's sales settings: only in `self_test` and `feature_rejected`,
/// checked inside the transaction that writes.
fn put_setting(
    ctx: &Ctx,
    id: &str,
    code: &str,
    setting: impl FnOnce(&ServiceSpec) -> ApiResult<Setting>,
) -> ApiResult<Resp> {
    let caller = provider(ctx)?;
    let db = ctx.storage.db()?;
    let product = listing::store::find_product(db, &caller, id)?;
    let service = listing::store::find_service(db, &caller, &product.service_id)?;
    let setting = setting(&service.spec)?;
    let item = transaction(db, |db| {
        let product = listing::store::find_product(db, &caller, id)?;
        sales::settings_refusal(product.status).map_or(Ok(()), Err)?;
        let pricing =
            pricing(db, &product.id)?.ok_or_else(|| ApiError::not_found("billable item"))?;
        if pricing.billable_item(code).is_none() {
            return Err(ApiError::not_found("billable item"));
        }
        sales::save(db, &product.id, code, &setting, ctx.now)?;
        sales::item_settings(db, &product.id, &pricing, &service.spec)?
            .into_iter()
            .find(|s| s.item.code().as_str() == code)
            .ok_or_else(|| ApiError::not_found("billable item"))
    })?;
    ok(&item)
}

fn put_reporting(ctx: &Ctx, id: &str, code: &str) -> ApiResult<Resp> {
    put_setting(ctx, id, code, |_| {
        let request: ReportingRequest = ctx.json()?;
        let method = request.validate(code)?;
        sales::check_reachable(&method, ctx.config.prometheus_origin.as_deref())?;
        Ok(Setting::Reporting(method))
    })
}

fn put_associations(ctx: &Ctx, id: &str, code: &str) -> ApiResult<Resp> {
    put_setting(ctx, id, code, |service| {
        let request: Associations = ctx.json()?;
        Ok(Setting::Associations(request.validate(service)?))
    })
}

fn catalog_list(ctx: &Ctx) -> ApiResult<Resp> {
    let page = ctx.page()?;
    let category = ctx.query("category").map(str::to_owned);
    if let Some(c) = &category
        && categories::find(c).is_none()
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "category",
            Code::InvalidQuery,
            "not one of GET /api/v1/catalog/categories",
        )]));
    }
    let filter = CatalogFilter {
        category,
        tag: ctx.query("tag").map(str::to_owned),
        q: ctx
            .query("q")
            .map(str::to_owned)
            .filter(|q| !q.trim().is_empty()),
    };
    let items = catalog::list(
        ctx.storage.db()?,
        &filter,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |v| v["id"].as_str().unwrap_or_default())
}

fn catalog_detail(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let db = ctx.storage.db()?;
    let product = listing::store::find_published_product(db, id)?;
    let service = listing::store::find_service_unscoped(db, &product.service_id)?;
    ok(&catalog::detail(db, &product, &service.spec)?)
}

fn catalog_media(ctx: &Ctx, id: &str, kind: &str, index: Option<&str>) -> ApiResult<Resp> {
    let (kind, index) = media_path(kind, index)?;
    let product = listing::store::find_published_product(ctx.storage.db()?, id)?;
    serve_media(ctx, &product.id, kind, index)
}
