//! `/api/v1/settlements/...`: providers' monthly statements and their payout (in the orders
//! component's route table); and a provider's commission rate,
//! `/api/v1/principals/{id}/commission` (in the identity component's).

use serde::Deserialize;

use super::{Ctx, Resp, ok};
use crate::error::ApiResult;
use crate::export;
use crate::identity::Role;
use crate::settlement::{self, month_of};

/// A month's statements (`?month=YYYY-MM`, this month by default; `?provider_id=` for an
/// operator): `{"month", "period", "status", "items"}`.
pub(super) fn statements(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider, Role::Operator])?;
    let tz = ctx.config.billing_timezone;
    let month = month_of(ctx.query("month"), ctx.now, tz)?;
    let statements = settlement::statements(
        ctx.storage.db()?,
        &caller,
        &month,
        ctx.query("provider_id"),
        tz,
        ctx.config.commission_rate,
    )?;
    if ctx.wants_csv() {
        return export::statements(&statements.items);
    }
    ok(&statements)
}

pub(super) fn statement(ctx: &Ctx) -> ApiResult<Resp> {
    let id = ctx.param("id");
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

pub(super) fn close(ctx: &Ctx) -> ApiResult<Resp> {
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

pub(super) fn payout(ctx: &Ctx) -> ApiResult<Resp> {
    let id = ctx.param("id");
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

pub(super) fn commission(ctx: &Ctx) -> ApiResult<Resp> {
    let provider_id = ctx.param("id");
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider, Role::Operator])?;
    ok(&settlement::find_commission(
        ctx.storage.db()?,
        &caller,
        provider_id,
        ctx.config,
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

pub(super) fn set_commission(ctx: &Ctx) -> ApiResult<Resp> {
    let provider_id = ctx.param("id");
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator])?;
    let body: CommissionRequest = ctx.json()?;
    ok(&settlement::set_commission(
        ctx.storage.db()?,
        &caller,
        provider_id,
        (body.rate.as_deref(), body.effective_from.as_deref()),
        ctx.config,
        ctx.now,
    )?)
}
