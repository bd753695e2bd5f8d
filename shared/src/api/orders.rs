//! `/api/v1/orders/...`, `/api/v1/instances/...` and `/api/v1/accounts/...`.

use http::Method;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::{Ctx, Resp, created, not_allowed, not_found, ok};
use crate::accounts::{self, ACCOUNT_CURRENCY, EntryKind};
use crate::error::{ApiError, ApiResult, Code};
use crate::identity::{self, Role};
use crate::orders::{self, Action, OrderRequest};
use crate::storage::transaction;

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
        _ => not_found(),
    }
}

fn quote(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider])?;
    let req: OrderRequest = ctx.json()?;
    let db = ctx.storage.db()?;
    let p = orders::purchasable(db, &caller, &req.product_id)?;
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
        orders::place(db, &caller, &p, &choice, ctx.now)
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
        accounts::post(
            db,
            &customer.id,
            EntryKind::TopUp,
            amount,
            None,
            &caller.id,
            ctx.now,
        )
    })?;
    let account = accounts::account(db, &customer.id, ctx.now)?;
    created(&serde_json::json!({ "account": account, "entry": entry }))
}
