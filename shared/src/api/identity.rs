//! `/api/v1/principals/...` and `/api/v1/me`.

use http::Method;

use super::{Ctx, Resp, created, not_allowed, not_found, ok};
use crate::error::{ApiError, ApiResult, Code};
use crate::identity::{
    NewPrincipal, Principal, Role, create_principal, find_principal, list_principals, rotate_token,
    set_disabled,
};

pub(super) fn route(ctx: &Ctx) -> ApiResult<Resp> {
    let segs: Vec<&str> = ctx.segments.iter().map(String::as_str).collect();
    match (segs.as_slice(), &ctx.method) {
        (["me"], &Method::GET) => me(ctx),
        (["me"], _) => not_allowed("GET"),
        (["principals"], &Method::POST) => create(ctx),
        (["principals"], &Method::GET) => list(ctx),
        (["principals"], _) => not_allowed("GET, POST"),
        (["principals", id], &Method::GET) => get(ctx, id),
        (["principals", _], _) => not_allowed("GET"),
        (["principals", id, "tokens"], &Method::POST) => rotate(ctx, id),
        (["principals", _, "tokens"], _) => not_allowed("POST"),
        (["principals", id, action @ ("disable" | "enable")], &Method::POST) => {
            ctx.principal()?.require(&[Role::Operator])?;
            ok(&set_disabled(
                ctx.storage.db()?,
                id,
                *action == "disable",
                ctx.now,
            )?)
        }
        (["principals", _, "disable" | "enable"], _) => not_allowed("POST"),
        (["principals", id, "commission"], &Method::GET) => super::settlements::commission(ctx, id),
        (["principals", id, "commission"], &Method::PUT) => {
            super::settlements::set_commission(ctx, id)
        }
        (["principals", _, "commission"], _) => not_allowed("GET, PUT"),
        _ => not_found(),
    }
}

fn me(ctx: &Ctx) -> ApiResult<Resp> {
    ok(&ctx.principal()?)
}

fn create(ctx: &Ctx) -> ApiResult<Resp> {
    ctx.principal()?.require(&[Role::Operator])?;
    let new: NewPrincipal = ctx.json()?;
    let (principal, token) = create_principal(ctx.storage.db()?, new, ctx.now)?;
    created(&serde_json::json!({ "principal": principal, "token": token.reveal() }))
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

fn get(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    ok(&visible(ctx, &caller, id)?)
}

/// Rotation by an operator (for anyone) or by the principal itself. The built-in operator's token
/// is the `admin_token` variable: it is rotated by redeploying, not through the API.
fn rotate(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    let target = visible(ctx, &caller, id)?;
    if target.built_in {
        return Err(ApiError::new(
            Code::BuiltInPrincipal,
            "the built-in operator's token is the admin_token variable; change it in the deployment",
        ));
    }
    let token = rotate_token(ctx.storage.db()?, &target.id, ctx.now)?;
    created(&serde_json::json!({ "principal": target, "token": token.reveal() }))
}
