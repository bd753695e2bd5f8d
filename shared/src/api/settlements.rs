//! `/api/v1/settlements/...`: providers' monthly statements and their payout; and a provider's
//! commission rate, `/api/v1/principals/{id}/commission` (routed here by the identity API).

use http::Method;
use serde::Deserialize;

use super::{Ctx, Resp, not_allowed, not_found, ok};
use crate::error::ApiResult;
use crate::export;
use crate::identity::Role;
use crate::settlement::{self, month_of};

pub(super) fn route(ctx: &Ctx) -> ApiResult<Resp> {
    let segs: Vec<&str> = ctx.segments.iter().map(String::as_str).collect();
    match (segs.as_slice(), &ctx.method) {
        (["settlements"], &Method::GET) => statements(ctx),
        (["settlements"], _) => not_allowed("GET"),
        (["settlements", "runs"], &Method::POST) => close(ctx),
        (["settlements", "runs"], _) => not_allowed("POST"),
        (["settlements", id], &Method::GET) => statement(ctx, id),
        (["settlements", _], _) => not_allowed("GET"),
        (["settlements", id, "payout"], &Method::POST) => payout(ctx, id),
        (["settlements", _, "payout"], _) => not_allowed("POST"),
        _ => not_found(),
    }
}

/// A month's statements (`?month=YYYY-MM`, this month by default; `?provider_id=` for an
/// operator): `{"month", "period", "status", "items"}`.
fn statements(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider, Role::Operator])?;
    let tz = ctx.config.billing_timezone;
    let month = month_of(ctx.query("month"), ctx.now, tz)?;
    let (status, span, items) = settlement::statements(
        ctx.storage.db()?,
        &caller,
        &month,
        ctx.query("provider_id"),
        tz,
        ctx.config.commission_rate,
    )?;
    if ctx.wants_csv() {
        return export::statements(&items);
    }
    ok(&serde_json::json!({
        "month": month.to_string(), "period": settlement::Instants::from(span),
        "status": status, "items": items,
    }))
}

fn statement(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider, Role::Operator])?;
    ok(&settlement::find(
        ctx.storage.db()?,
        &caller,
        id,
        ctx.config.billing_timezone,
    )?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseRequest {
    month: String,
}

fn close(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator, Role::Platform])?;
    let body: CloseRequest = ctx.json()?;
    let tz = ctx.config.billing_timezone;
    let month = month_of(Some(&body.month), ctx.now, tz)?;
    ok(&settlement::close(
        ctx.storage.db()?,
        ctx.outbound,
        &caller,
        &month,
        ctx.config,
        ctx.now,
    )?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayoutRequest {
    reference: Option<String>,
}

fn payout(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator])?;
    let body: PayoutRequest = ctx.json()?;
    ok(&settlement::pay(
        ctx.storage.db()?,
        &caller,
        id,
        body.reference.as_deref(),
        ctx.config.billing_timezone,
        ctx.now,
    )?)
}

pub(super) fn commission(ctx: &Ctx, provider_id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider, Role::Operator])?;
    ok(&settlement::find_commission(
        ctx.storage.db()?,
        &caller,
        provider_id,
        ctx.config.commission_rate,
        ctx.config.billing_timezone,
        ctx.now,
    )?)
}

/// `{"rate": "0.15"}` sets the provider's own rate; `{"rate": null}` returns it to the
/// deployment's; from `effective_from` (`YYYY-MM`, by default the current month) on.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommissionRequest {
    rate: Option<String>,
    effective_from: Option<String>,
}

pub(super) fn set_commission(ctx: &Ctx, provider_id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator])?;
    let body: CommissionRequest = ctx.json()?;
    ok(&settlement::set_commission(
        ctx.storage.db()?,
        &caller,
        provider_id,
        body.rate.as_deref(),
        body.effective_from.as_deref(),
        ctx.config.commission_rate,
        ctx.config.billing_timezone,
        ctx.now,
    )?)
}
