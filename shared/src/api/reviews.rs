//! `/api/v1/reviews/...`: submissions, the operators' queue, decisions and the history.

use serde::Deserialize;

use super::routes::{Route, get, post, route};
use super::{Ctx, Resp, created, ok};
use crate::error::ApiResult;
use crate::identity::Role;
use crate::review::{self, Decision, ReviewStatus, Stage};

/// `/api/v1/reviews/...`.
pub(super) static ROUTES: &[Route] = &[
    route("reviews", &[get(list), post(submit)]),
    route("reviews/{id}", &[get(find)]),
    route("reviews/{id}/decision", &[post(decide)]),
];

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

fn find(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider, Role::Operator])?;
    ok(&review::find(ctx.storage.db()?, &caller, ctx.param("id"))?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: Decision,
    reason: Option<String>,
}

fn decide(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator])?;
    let body: DecisionBody = ctx.json()?;
    ok(&review::decide(
        ctx.storage.db()?,
        &caller,
        ctx.param("id"),
        body.decision,
        body.reason.as_deref(),
        ctx.now,
    )?)
}
