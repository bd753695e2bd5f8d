//! `/api/v1/webhooks/...`: a principal's signed webhooks and their deliveries (served by the
//! identity component, in its route table).

use super::{Ctx, Resp, created, no_content, ok};
use crate::error::ApiResult;
use crate::identity::{Principal, Role};
use crate::webhook::{self, WebhookRequest};

/// Providers and customers subscribe to events of their own, operators to everyone's.
fn subscriber(ctx: &Ctx) -> ApiResult<Principal> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator, Role::Provider, Role::Customer])?;
    Ok(caller)
}

pub(super) fn create(ctx: &Ctx) -> ApiResult<Resp> {
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

pub(super) fn list(ctx: &Ctx) -> ApiResult<Resp> {
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

pub(super) fn find(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = subscriber(ctx)?;
    ok(&webhook::find(ctx.storage.db()?, &caller, ctx.param("id"))?)
}

pub(super) fn delete(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = subscriber(ctx)?;
    webhook::delete(ctx.storage.db()?, &caller, ctx.param("id"), ctx.now)?;
    no_content()
}

pub(super) fn deliveries(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = subscriber(ctx)?;
    let page = ctx.page()?;
    let items = webhook::deliveries(
        ctx.storage.db()?,
        &caller,
        ctx.param("id"),
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |d| &d.event_id)
}
