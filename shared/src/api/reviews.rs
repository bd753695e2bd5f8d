//! `/api/v1/reviews/...`: submissions, the operators' queue, decisions and the history.

use http::Method;
use serde::Deserialize;

use super::{Ctx, Resp, created, not_allowed, not_found, ok};
use crate::error::ApiResult;
use crate::identity::Role;
use crate::review::{self, Decision, ReviewStatus, Stage};

pub(super) fn route(ctx: &Ctx) -> ApiResult<Resp> {
    let segs: Vec<&str> = ctx.segments.iter().map(String::as_str).collect();
    match (segs.as_slice(), &ctx.method) {
        (["reviews"], &Method::POST) => submit(ctx),
        (["reviews"], &Method::GET) => list(ctx),
        (["reviews"], _) => not_allowed("GET, POST"),
        (["reviews", id], &Method::GET) => get(ctx, id),
        (["reviews", _], _) => not_allowed("GET"),
        (["reviews", id, "decision"], &Method::POST) => decide(ctx, id),
        (["reviews", _, "decision"], _) => not_allowed("POST"),
        _ => not_found(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    product_id: String,
    stage: Stage,
}

fn submit(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider])?;
    let body: Submission = ctx.json()?;
    created(&review::submit(
        ctx.storage.db()?,
        &caller,
        &body.product_id,
        body.stage,
        ctx.now,
    )?)
}

fn list(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider, Role::Operator])?;
    let page = ctx.page()?;
    let status = ctx.query_enum::<ReviewStatus>("status", "one of pending, approved, rejected")?;
    let items = review::list(
        ctx.storage.db()?,
        &caller,
        ctx.query("product_id"),
        status,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |r| &r.id)
}

fn get(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider, Role::Operator])?;
    ok(&review::find(ctx.storage.db()?, &caller, id)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: Decision,
    reason: Option<String>,
}

fn decide(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator])?;
    let body: DecisionBody = ctx.json()?;
    ok(&review::decide(
        ctx.storage.db()?,
        &caller,
        id,
        body.decision,
        body.reason.as_deref(),
        ctx.now,
    )?)
}
