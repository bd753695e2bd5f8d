//! `/api/v1/orders/...`, `/api/v1/instances/...` and `/api/v1/accounts/...`.

use chrono::{DateTime, Utc};
use http::Method;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::{Ctx, Resp, created, not_allowed, not_found, ok};
use crate::billing::{self, BillFilter};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{self, Role};
use crate::orders::ledger::{self as accounts, ACCOUNT_CURRENCY, EntryKind, Posting};
use crate::orders::{self, Action, OrderRequest};
use crate::platform::storage::transaction;

pub fn route(ctx: &Ctx) -> ApiResult<Resp> {
    let segs: Vec<&str> = ctx.segments.iter().map(String::as_str).collect();
    match (segs.as_slice(), &ctx.method) {
        (["orders", "quote"], &Method::POST) => quote(ctx),
        (["orders", "quote"], _) => not_allowed("POST"),
        (["orders"], &Method::POST) => order(ctx),
        (["orders"], _) => not_allowed("POST"),
        (["instances", id], &Method::GET) => instance(ctx, id),
        (["instances", _], _) => not_allowed("GET"),
        (["instances", id, "actions"], &Method::POST) => action(ctx, id),
        (["instances", _, "actions"], _) => not_allowed("POST"),
        (["accounts", "me"], &Method::GET) => my_account(ctx),
        (["accounts", "me"], _) => not_allowed("GET"),
        (["accounts", id, "top-ups"], &Method::POST) => top_up(ctx, id),
        (["accounts", _, "top-ups"], _) => not_allowed("POST"),
        (["billing", "runs"], &Method::POST) => bill_run(ctx),
        (["billing", "runs"], _) => not_allowed("POST"),
        (["billing", "preview"], &Method::POST) => preview(ctx),
        (["billing", "preview"], _) => not_allowed("POST"),
        (["bills"], &Method::GET) => bills(ctx),
        (["bills"], _) => not_allowed("GET"),
        (["bills", id], &Method::GET) => bill(ctx, id),
        (["bills", _], _) => not_allowed("GET"),
        _ => not_found(),
    }
}

fn quote(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider])?;
    let req: OrderRequest = ctx.json()?;
    let db = ctx.storage.db()?;
    let p = orders::purchasable(db, &caller, &req.product_id)?;
    orders::check_account_type(&caller, &p)?;
    let choice = p.choose(&req)?;
    ok(&p.quote(db, &choice)?)
}

/// Places an order. Checks run in SPEC §9's order: the product (404), the EULA, the account
/// type, the region, the currency, then the balance — all inside the transaction that writes, so
/// a concurrent deduction cannot slip between the arrears check and the order.
fn order(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider])?;
    let req: OrderRequest = ctx.json()?;
    let db = ctx.storage.db()?;
    let (order_id, instance) = transaction(db, |db| {
        let p = orders::purchasable(db, &caller, &req.product_id)?;
        if req.accept_eula != Some(true) {
            return Err(ApiError::validation(vec![crate::error::FieldError::new(
                "accept_eula",
                Code::EulaNotAccepted,
                "the product's EULA must be accepted (`accept_eula: true`)",
            )]));
        }
        orders::check_account_type(&caller, &p)?;
        let choice = p.choose(&req)?;
        if !p.test {
            if p.pricing.currency() != ACCOUNT_CURRENCY {
                return Err(ApiError::new(
                    Code::CurrencyNotSupported,
                    format!(
                        "accounts are kept in {ACCOUNT_CURRENCY}; this product is priced in {}",
                        p.pricing.currency()
                    ),
                ));
            }
            let account = accounts::account(db, &caller.id, ctx.now)?;
            if account.balance.0 < 0 {
                return Err(ApiError::new(
                    Code::AccountInArrears,
                    format!(
                        "the account balance is {}: top up before ordering",
                        account.balance.to_decimal()
                    ),
                ));
            }
        }
        let placed = orders::place(db, &caller, &p, &choice, ctx.now)?;
        billing::open_cursor(db, &placed.1, ctx.config.billing_timezone)?;
        Ok(placed)
    })?;
    created(&serde_json::json!({
        "order": {"id": order_id, "product_id": instance.product_id, "test": instance.test,
                  "created_at": instance.created_at},
        "instance": instance,
    }))
}

fn instance(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    ok(&orders::find(ctx.storage.db()?, &caller, id)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    action: Action,
}

fn action(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider])?;
    let body: ActionBody = ctx.json()?;
    let db = ctx.storage.db()?;
    let instance = transaction(db, |db| {
        orders::perform(db, &caller, id, body.action, ctx.now)
    })?;
    ok(&instance)
}

fn my_account(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer])?;
    let page = ctx.page()?;
    let db = ctx.storage.db()?;
    let account = accounts::account(db, &caller.id, ctx.now)?;
    let entries = accounts::ledger(db, &caller.id, page.cursor.as_deref(), page.fetch())?;
    ok(&serde_json::json!({
        "account": account,
        "ledger": page.envelope(entries, |e| &e.id),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopUp {
    amount: Decimal,
}

fn top_up(ctx: &Ctx, customer_id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator])?;
    let body: TopUp = ctx.json()?;
    let amount = accounts::top_up_amount(body.amount)?;
    let db = ctx.storage.db()?;
    let customer = identity::find_principal(db, customer_id)?;
    if customer.role != Role::Customer {
        return Err(ApiError::not_found("customer account"));
    }
    let entry = transaction(db, |db| {
        let top_up = Posting {
            customer_id: &customer.id,
            kind: EntryKind::TopUp,
            amount,
            reference: None,
        };
        accounts::post(db, top_up, &caller.id, ctx.now)
    })?;
    let account = accounts::account(db, &customer.id, ctx.now)?;
    created(&serde_json::json!({ "account": account, "entry": entry }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    as_of: Option<DateTime<Utc>>,
}

/// An on-demand bill run, for deployments with an external scheduler. `as_of` defaults to now;
/// a future `as_of` would bill periods whose late data may still arrive, so it is refused unless
/// the deployment allows the test clock.
fn bill_run(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator, Role::Platform])?;
    let body: RunRequest = if ctx.body.is_empty() {
        RunRequest { as_of: None }
    } else {
        ctx.json()?
    };
    let as_of = body.as_of.unwrap_or(ctx.now);
    if as_of > ctx.real_now && !ctx.config.allow_clock_override {
        return Err(ApiError::validation(vec![FieldError::new(
            "as_of",
            Code::AsOfInFuture,
            "a bill run cannot be dated in the future",
        )]));
    }
    let report = billing::run(
        ctx.storage.db()?,
        ctx.outbound,
        ctx.config.billing_timezone,
        as_of,
        ctx.now,
        &caller,
    )?;
    ok(&report)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    instance_id: String,
    period_start: DateTime<Utc>,
}

fn preview(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let body: PreviewRequest = ctx.json()?;
    let db = ctx.storage.db()?;
    let instance = orders::find(db, &caller, &body.instance_id)?;
    ok(&billing::preview(
        db,
        ctx.outbound,
        ctx.config.billing_timezone,
        &instance,
        body.period_start,
        ctx.now,
    )?)
}

fn bills(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let page = ctx.page()?;
    let filter = BillFilter {
        instance_id: ctx.query("instance_id").map(str::to_owned),
        from: ctx.time_bound("from", 0)?,
        to: ctx.time_bound("to", i64::MAX)?,
    };
    let items = billing::list(
        ctx.storage.db()?,
        &caller,
        &filter,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |b| &b.id)
}

fn bill(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    ok(&billing::find(ctx.storage.db()?, &caller, id)?)
}
