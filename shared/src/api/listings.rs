//! `/api/v1/services/...`, `/api/v1/products/...` and `/api/v1/catalog/...`.

use chrono::{DateTime, Utc};
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::routes::{Body, Route, Serve, delete, get, post, put, route};
use super::{Ctx, Items, Resp, created, no_content, ok};
use crate::catalog::delisting::{self, ListingChangeRequest};
use crate::catalog::{self, CatalogFilter};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{Principal, Role};
use crate::listing::media::MediaKind;
use crate::listing::product::{self, Media, MediaFile};
use crate::listing::service::{self, ServiceRequest};
use crate::listing::{ProductStatus, Step, Warning, categories};
use crate::platform::storage::Database;
use crate::sales;

/// `/api/v1/services/...`, `/api/v1/products/...` and `/api/v1/catalog/...`.
pub(super) static ROUTES: &[Route] = &[
    route("services", &[get(list_services), post(create_service)]),
    route("services/{id}", &[get(get_service)]),
    route("products", &[get(list_products), post(create_product)]),
    route("products/{id}", &[get(get_product)]),
    route("products/{id}/media", &[get(list_media)]),
    media_slot("products/{id}/media/{kind}"),
    media_slot("products/{id}/media/{kind}/{index}"),
    route("products/{id}/billable-items", &[get(billable_items)]),
    route(
        "products/{id}/billable-items/{code}/reporting",
        &[put(put_reporting)],
    ),
    route(
        "products/{id}/billable-items/{code}/associations",
        &[put(put_associations)],
    ),
    route("products/{id}/pricing/versions", &[get(pricing_versions)]),
    route("products/{id}/availability", &[get(availability)]),
    route("products/{id}/delist", &[post(delist)]),
    route("products/{id}/relist", &[post(relist)]),
    Route {
        accepts: |p| Step::parse(p.get("step")).is_some(),
        ..route("products/{id}/{step}", &[get(get_step), put(put_step)])
    },
    route("catalog/categories", &[get(categories)]),
    route("catalog", &[get(catalog_list)]),
    route("catalog/{id}", &[get(catalog_product)]),
    route("catalog/{id}/media/{kind}", &[get(catalog_media)]),
    route("catalog/{id}/media/{kind}/{index}", &[get(catalog_media)]),
];

/// A product's media slot: a file of its kind (an unknown kind is no slot) read, uploaded or
/// removed.
const fn media_slot(path: &'static str) -> Route {
    const SLOT: &[Serve] = &[get(get_media), put(put_media), delete(delete_media)];
    Route {
        accepts: |p| MediaKind::parse(p.get("kind")).is_some(),
        body: Body::MediaFile,
        ..route(path, SLOT)
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
    let request: ServiceRequest = ctx.json()?;
    created(&service::create(
        ctx.storage.db()?,
        &caller,
        request,
        ctx.now,
    )?)
}

fn list_services(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let page = ctx.page()?;
    let items = service::list(
        ctx.storage.db()?,
        &caller,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |s| &s.id)
}

fn get_service(ctx: &Ctx) -> ApiResult<Resp> {
    let id = ctx.param("id");
    let caller = provider_or_operator(ctx)?;
    ok(&service::find(ctx.storage.db()?, &caller, id)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProduct {
    service_id: String,
}

fn create_product(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = provider(ctx)?;
    let new: NewProduct = ctx.json()?;
    created(&product::create(
        ctx.storage.db()?,
        &caller,
        &new.service_id,
        ctx.now,
    )?)
}

fn list_products(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let page = ctx.page()?;
    let status = ctx.query_enum::<ProductStatus>("status", "not a product status")?;
    let items = product::list(
        ctx.storage.db()?,
        &caller,
        status,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |p| &p.id)
}

fn get_product(ctx: &Ctx) -> ApiResult<Resp> {
    let id = ctx.param("id");
    let caller = provider_or_operator(ctx)?;
    ok(&product::find(ctx.storage.db()?, &caller, id)?)
}

/// A provider or an operator takes a product out of the catalog.
fn delist(ctx: &Ctx) -> ApiResult<Resp> {
    change_availability(ctx, delisting::delist)
}

/// A provider or an operator brings a delisted product back.
fn relist(ctx: &Ctx) -> ApiResult<Resp> {
    change_availability(ctx, delisting::relist)
}

/// A change of a product's availability in the catalog: [`delisting::delist`] or
/// [`delisting::relist`].
type AvailabilityChange = fn(
    &dyn Database,
    &Principal,
    &str,
    &ListingChangeRequest,
    DateTime<Utc>,
) -> ApiResult<delisting::Availability>;

/// Delisting and relisting: who may, what they send, what they read back are the same.
fn change_availability(ctx: &Ctx, change: AvailabilityChange) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let request: ListingChangeRequest = ctx.json()?;
    ok(&change(
        ctx.storage.db()?,
        &caller,
        ctx.param("id"),
        &request,
        ctx.now,
    )?)
}

fn availability(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    ok(&delisting::availability(
        ctx.storage.db()?,
        &caller,
        ctx.param("id"),
    )?)
}

fn pricing_versions(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let items = catalog::versions::versions(ctx.storage.db()?, &caller, ctx.param("id"))?;
    ok(&Items { items })
}

/// A published product after a price change: its view and the version the change became.
#[derive(Serialize)]
struct Repriced {
    #[serde(flatten)]
    product: product::ProductView,
    pricing_version: catalog::versions::PricingVersion,
}

/// The step a path names (the route accepts only steps).
fn step_of(ctx: &Ctx) -> ApiResult<Step> {
    Step::parse(ctx.param("step")).ok_or_else(|| ApiError::not_found("route"))
}

/// The product's view after a step was written; for the pricing step of a published product,
/// the pricing version it became (`pricing_version`).
fn put_step(ctx: &Ctx) -> ApiResult<Resp> {
    let (id, step) = (ctx.param("id"), step_of(ctx)?);
    let caller = provider(ctx)?;
    let body = ctx.json_bytes()?;
    if step == Step::Pricing {
        let db = ctx.storage.db()?;
        let notice = ctx.config.price_increase_notice_days;
        if let Some(version) = catalog::versions::reprice(db, &caller, id, body, notice, ctx.now)? {
            return ok(&Repriced {
                product: product::find(db, &caller, id)?,
                pricing_version: version,
            });
        }
    }
    ok(&product::write_step(
        ctx.storage.db()?,
        &caller,
        id,
        step,
        body,
        ctx.now,
        &catalog::follow_step,
    )?)
}

fn get_step(ctx: &Ctx) -> ApiResult<Resp> {
    let (id, step) = (ctx.param("id"), step_of(ctx)?);
    let caller = provider_or_operator(ctx)?;
    ok(&product::stored_step(ctx.storage.db()?, &caller, id, step)?)
}

fn list_media(ctx: &Ctx) -> ApiResult<Resp> {
    let id = ctx.param("id");
    let caller = provider_or_operator(ctx)?;
    let items = product::media_of(ctx.storage.db()?, &caller, id)?;
    ok(&Items { items })
}

/// Parses `{kind}[/{index}]` of a media path; an unknown kind is 404.
fn media_path(ctx: &Ctx) -> ApiResult<(MediaKind, Option<u32>)> {
    let kind =
        MediaKind::parse(ctx.param("kind")).ok_or_else(|| ApiError::not_found("media kind"))?;
    let index = Some(ctx.param("index"))
        .filter(|i| !i.is_empty())
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

/// `PUT /products/{id}/media/{kind}[/{index}]`: single kinds take no index, multi kinds require
/// one.
fn put_media(ctx: &Ctx) -> ApiResult<Resp> {
    let (kind, index) = media_path(ctx)?;
    let caller = provider(ctx)?;
    let upload = product::Upload {
        kind,
        index,
        content_type: ctx.header("content-type"),
        bytes: &ctx.body,
    };
    let media = product::upload_media(ctx.storage, &caller, ctx.param("id"), upload, ctx.now)?;
    ok(&Uploaded {
        warnings: media.warning().into_iter().collect(),
        url: media.url,
        media: media.media,
    })
}

/// A medium as its upload answers it: where it is served, what it is, and any advice.
#[derive(Serialize)]
struct Uploaded {
    url: String,
    media: Media,
    warnings: Vec<Warning>,
}

fn get_media(ctx: &Ctx) -> ApiResult<Resp> {
    let (kind, index) = media_path(ctx)?;
    let caller = provider_or_operator(ctx)?;
    media_response(product::media_file(
        ctx.storage,
        Some(&caller),
        ctx.param("id"),
        kind,
        index,
    )?)
}

fn delete_media(ctx: &Ctx) -> ApiResult<Resp> {
    let (kind, index) = media_path(ctx)?;
    let caller = provider(ctx)?;
    product::delete_media(ctx.storage, &caller, ctx.param("id"), kind, index, ctx.now)?;
    no_content()
}

/// A medium with the content type it was checked to have, sandboxed ([`MediaFile::response`]).
fn media_response(file: MediaFile) -> ApiResult<Resp> {
    file.response(Response::builder().status(StatusCode::OK))
}

fn billable_items(ctx: &Ctx) -> ApiResult<Resp> {
    let id = ctx.param("id");
    let caller = provider_or_operator(ctx)?;
    let items = sales::items_of(ctx.storage.db()?, &caller, id)?;
    ok(&Items { items })
}

fn put_reporting(ctx: &Ctx) -> ApiResult<Resp> {
    let (id, code) = (ctx.param("id"), ctx.param("code"));
    let caller = provider(ctx)?;
    ok(&sales::set_reporting(
        ctx.storage.db()?,
        &caller,
        id,
        code,
        ctx.json_bytes()?,
        ctx.config.prometheus_origin.as_deref(),
        ctx.now,
    )?)
}

fn put_associations(ctx: &Ctx) -> ApiResult<Resp> {
    let (id, code) = (ctx.param("id"), ctx.param("code"));
    let caller = provider(ctx)?;
    ok(&sales::set_associations(
        ctx.storage.db()?,
        &caller,
        id,
        code,
        ctx.json_bytes()?,
        ctx.now,
    )?)
}

fn catalog_list(ctx: &Ctx) -> ApiResult<Resp> {
    let page = ctx.page()?;
    let filter = CatalogFilter {
        category: ctx.query("category").map(str::to_owned),
        tag: ctx.query("tag").map(str::to_owned),
        q: ctx
            .query("q")
            .map(str::to_owned)
            .filter(|q| !q.trim().is_empty()),
    };
    let items = catalog::search(
        ctx.storage.db()?,
        &filter,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |e| &e.summary.id)
}

fn catalog_media(ctx: &Ctx) -> ApiResult<Resp> {
    let (kind, index) = media_path(ctx)?;
    media_response(product::media_file(
        ctx.storage,
        None,
        ctx.param("id"),
        kind,
        index,
    )?)
}

fn categories(_: &Ctx) -> ApiResult<Resp> {
    ok(&Items {
        items: categories::CATEGORIES.to_vec(),
    })
}

fn catalog_product(ctx: &Ctx) -> ApiResult<Resp> {
    ok(&catalog::detail(ctx.storage.db()?, ctx.param("id"))?)
}
