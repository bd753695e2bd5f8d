//! `/api/v1/principals/...`, `/api/v1/me` and `/api/v1/webhooks/...` (handled in `webhooks`).

use serde::Serialize;

use super::routes::{KeyUse, Route, delete, get, post, post_keyed, put, route};
use super::{Ctx, Resp, created, ok, settlements, webhooks};
use crate::error::{ApiError, ApiResult, Code};
use crate::identity::{
    NewPrincipal, Principal, Role, create_principal, find_principal, list_principals, rotate_token,
    set_disabled,
};

/// `/api/v1/me`, `/api/v1/principals/...` and `/api/v1/webhooks/...`.
pub(super) static ROUTES: &[Route] = &[
    route("me", &[get(me)]),
    route(
        "principals",
        &[get(list), post_keyed(create, KeyUse::Refused)],
    ),
    route("principals/{id}", &[get(find)]),
    route(
        "principals/{id}/tokens",
        &[post_keyed(rotate, KeyUse::Refused)],
    ),
    Route {
        accepts: |p| matches!(p.get("action"), "disable" | "enable"),
        ..route("principals/{id}/{action}", &[post(disable_or_enable)])
    },
    route(
        "principals/{id}/commission",
        &[
            get(settlements::commission),
            put(settlements::set_commission),
        ],
    ),
    route("webhooks", &[get(webhooks::list), post(webhooks::create)]),
    route(
        "webhooks/{id}",
        &[get(webhooks::find), delete(webhooks::delete)],
    ),
    route("webhooks/{id}/deliveries", &[get(webhooks::deliveries)]),
];

fn me(ctx: &Ctx) -> ApiResult<Resp> {
    ok(&ctx.principal()?)
}

fn create(ctx: &Ctx) -> ApiResult<Resp> {
    ctx.principal()?.require(&[Role::Operator])?;
    let new: NewPrincipal = ctx.json()?;
    let (principal, token) = create_principal(ctx.storage.db()?, new, ctx.now)?;
    created(&Issued {
        principal,
        token: token.reveal(),
    })
}

fn list(ctx: &Ctx) -> ApiResult<Resp> {
    ctx.principal()?.require(&[Role::Operator])?;
    let page = ctx.page()?;
    let role = ctx.query_enum::<Role>("role", "one of operator, provider, customer, platform")?;
    let items = list_principals(
        ctx.storage.db()?,
        role,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |p| &p.id)
}

/// Operators see every principal; anyone else sees only itself (others are 404, never 403).
fn visible(ctx: &Ctx, caller: &Principal, id: &str) -> ApiResult<Principal> {
    if caller.id == id {
        return Ok(caller.clone());
    }
    if !caller.is_operator() {
        return Err(ApiError::not_found("principal"));
    }
    find_principal(ctx.storage.db()?, id)
}

fn find(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    ok(&visible(ctx, &caller, ctx.param("id"))?)
}

/// An operator disables a principal, or enables it again.
fn disable_or_enable(ctx: &Ctx) -> ApiResult<Resp> {
    ctx.principal()?.require(&[Role::Operator])?;
    ok(&set_disabled(
        ctx.storage.db()?,
        ctx.param("id"),
        ctx.param("action") == "disable",
        ctx.now,
    )?)
}

/// Rotation by an operator (for anyone) or by the principal itself. The built-in operator's token
/// is the `admin_token` variable: it is rotated by redeploying, not through the API.
fn rotate(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    let target = visible(ctx, &caller, ctx.param("id"))?;
    if target.built_in {
        return Err(ApiError::new(
            Code::BuiltInPrincipal,
            "the built-in operator's token is the admin_token variable; change it in the deployment",
        ));
    }
    let token = rotate_token(ctx.storage.db()?, &target.id, ctx.now)?;
    created(&Issued {
        principal: target,
        token: token.reveal(),
    })
}

/// A principal and its new token, shown this once.
#[derive(Serialize)]
struct Issued<'a> {
    principal: Principal,
    token: &'a str,
}
