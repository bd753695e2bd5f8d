//! `/api/v1/webhooks/...`: a principal's signed webhooks and their deliveries.

use http::Method;

use super::{Ctx, Resp, created, no_content, not_allowed, not_found, ok};
use crate::error::ApiResult;
use crate::identity::{Principal, Role};
use crate::webhook::{self, WebhookRequest};

pub(super) fn route(ctx: &Ctx) -> ApiResult<Resp> {
    let segs: Vec<&str> = ctx.segments.iter().map(String::as_str).collect();
    match (segs.as_slice(), &ctx.method) {
        (["webhooks"], &Method::POST) => create(ctx),
        (["webhooks"], &Method::GET) => list(ctx),
        (["webhooks"], _) => not_allowed("GET, POST"),
        (["webhooks", id], &Method::GET) => {
            let caller = subscriber(ctx)?;
            ok(&webhook::find(ctx.storage.db()?, &caller, id)?)
        }
        (["webhooks", id], &Method::DELETE) => {
            let caller = subscriber(ctx)?;
            webhook::delete(ctx.storage.db()?, &caller, id, ctx.now)?;
            no_content()
        }
        (["webhooks", _], _) => not_allowed("GET, DELETE"),
        (["webhooks", id, "deliveries"], &Method::GET) => deliveries(ctx, id),
        (["webhooks", _, "deliveries"], _) => not_allowed("GET"),
        _ => not_found(),
    }
}

/// Providers and customers subscribe to events of their own, operators to everyone's.
fn subscriber(ctx: &Ctx) -> ApiResult<Principal> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator, Role::Provider, Role::Customer])?;
    Ok(caller)
}

fn create(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = subscriber(ctx)?;
    let request: WebhookRequest = ctx.json()?;
    created(&webhook::create(
        ctx.storage.db()?,
        &caller,
        request,
        ctx.config.webhook_hosts.as_deref(),
        ctx.now,
    )?)
}

fn list(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = subscriber(ctx)?;
    let page = ctx.page()?;
    let items = webhook::list(
        ctx.storage.db()?,
        &caller,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |w| &w.id)
}

fn deliveries(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = subscriber(ctx)?;
    let page = ctx.page()?;
    let items = webhook::deliveries(
        ctx.storage.db()?,
        &caller,
        id,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |d| &d.event_id)
}
