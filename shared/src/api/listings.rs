//! `/api/v1/services/...`, `/api/v1/products/...` and `/api/v1/catalog/...`.

use http::{Method, Response, StatusCode};
use serde::Deserialize;

use super::{Ctx, Resp, created, no_content, not_allowed, not_found, ok};
use crate::catalog::delisting::{self, ListingChangeRequest};
use crate::catalog::{self, CatalogFilter};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{Principal, Role};
use crate::listing::media::MediaKind;
use crate::listing::product::{self, MediaFile};
use crate::listing::service::{self, ServiceRequest};
use crate::listing::{ProductStatus, Step, Warning, categories};
use crate::sales;

pub(super) fn route(ctx: &Ctx) -> ApiResult<Resp> {
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
        (["products", id, "pricing", "versions"], &Method::GET) => {
            let caller = provider_or_operator(ctx)?;
            ok(&serde_json::json!({
                "items": catalog::versions::versions(ctx.storage.db()?, &caller, id)?
            }))
        }
        (["products", _, "pricing", "versions"], _) => not_allowed("GET"),
        (["products", id, "availability"], &Method::GET) => {
            let caller = provider_or_operator(ctx)?;
            ok(&delisting::availability(ctx.storage.db()?, &caller, id)?)
        }
        (["products", _, "availability"], _) => not_allowed("GET"),
        (["products", id, action @ ("delist" | "relist")], &Method::POST) => {
            change_listing(ctx, id, action)
        }
        (["products", _, "delist" | "relist"], _) => not_allowed("POST"),
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
        (["catalog", id], &Method::GET) => ok(&catalog::detail(ctx.storage.db()?, id)?),
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

fn get_service(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
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

fn get_product(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    ok(&product::find(ctx.storage.db()?, &caller, id)?)
}

/// A provider or an operator takes a product out of the catalog, or brings it back.
fn change_listing(ctx: &Ctx, id: &str, action: &str) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let request: ListingChangeRequest = ctx.json()?;
    let db = ctx.storage.db()?;
    ok(&if action == "delist" {
        delisting::delist(db, &caller, id, &request, ctx.now)?
    } else {
        delisting::relist(db, &caller, id, &request, ctx.now)?
    })
}

/// The product's view after a step was written; for the pricing step of a published product,
/// the pricing version it became (`pricing_version`).
fn put_step(ctx: &Ctx, id: &str, step: Step) -> ApiResult<Resp> {
    let caller = provider(ctx)?;
    let body = ctx.json_bytes()?;
    if step == Step::Pricing {
        let db = ctx.storage.db()?;
        let notice = ctx.config.price_increase_notice_days;
        if let Some(version) = catalog::versions::reprice(db, &caller, id, body, notice, ctx.now)? {
            let mut view = serde_json::to_value(product::find(db, &caller, id)?)
                .map_err(ApiError::internal)?;
            view["pricing_version"] = serde_json::to_value(version).map_err(ApiError::internal)?;
            return ok(&view);
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

fn get_step(ctx: &Ctx, id: &str, step: Step) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    ok(&product::stored_step(ctx.storage.db()?, &caller, id, step)?)
}

fn list_media(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let items = product::media_of(ctx.storage.db()?, &caller, id)?;
    ok(&serde_json::json!({ "items": items }))
}

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
        Method::PUT => {
            let caller = provider(ctx)?;
            let media = product::upload_media(
                ctx.storage,
                &caller,
                id,
                kind,
                index,
                ctx.header("content-type"),
                &ctx.body,
                ctx.now,
            )?;
            let warnings: Vec<Warning> = media.warning().into_iter().collect();
            ok(&serde_json::json!({
                "url": media.url,
                "media": media.media,
                "warnings": warnings,
            }))
        }
        Method::GET => {
            let caller = provider_or_operator(ctx)?;
            media_response(product::media_file(
                ctx.storage,
                Some(&caller),
                id,
                kind,
                index,
            )?)
        }
        Method::DELETE => {
            let caller = provider(ctx)?;
            product::delete_media(ctx.storage, &caller, id, kind, index, ctx.now)?;
            no_content()
        }
        _ => not_allowed("GET, PUT, DELETE"),
    }
}

/// A medium with the content type it was checked to have, sandboxed ([`MediaFile::response`]).
fn media_response(file: MediaFile) -> ApiResult<Resp> {
    file.response(Response::builder().status(StatusCode::OK))
}

fn billable_items(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = provider_or_operator(ctx)?;
    let items = sales::items_of(ctx.storage.db()?, &caller, id)?;
    ok(&serde_json::json!({ "items": items }))
}

fn put_reporting(ctx: &Ctx, id: &str, code: &str) -> ApiResult<Resp> {
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

fn put_associations(ctx: &Ctx, id: &str, code: &str) -> ApiResult<Resp> {
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
    page.list(items, |v| v["id"].as_str().unwrap_or_default())
}

fn catalog_media(ctx: &Ctx, id: &str, kind: &str, index: Option<&str>) -> ApiResult<Resp> {
    let (kind, index) = media_path(kind, index)?;
    media_response(product::media_file(ctx.storage, None, id, kind, index)?)
}
