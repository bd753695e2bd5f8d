//! `/api/v1/orders/...`, `/api/v1/instances/...` and `/api/v1/accounts/...`.

use chrono::{DateTime, Utc};
use http::Method;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::{Ctx, Resp, created, not_allowed, not_found, ok};
use crate::billing::{self, BillFilter};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::export;
use crate::identity::Role;
use crate::orders::instance::{self, Action};
use crate::orders::{self, OrderRequest, ledger};

pub(super) fn route(ctx: &Ctx) -> ApiResult<Resp> {
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
        (["instances", id, "write-offs"], &Method::GET) => write_offs(ctx, id),
        (["instances", id, "write-offs"], &Method::POST) => write_off(ctx, id),
        (["instances", _, "write-offs"], _) => not_allowed("GET, POST"),
        (["instances", id, "eula"], &Method::GET) => eula(ctx, id),
        (["instances", _, "eula"], _) => not_allowed("GET"),
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
        (["bills", id, "usage"], &Method::GET) => bill_usage(ctx, id),
        (["bills", _, "usage"], _) => not_allowed("GET"),
        _ => not_found(),
    }
}

fn quote(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider])?;
    let req: OrderRequest = ctx.json()?;
    ok(&orders::quote(ctx.storage.db()?, &caller, &req)?)
}

fn order(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider])?;
    let req: OrderRequest = ctx.json()?;
    let placed = orders::place(
        ctx.storage.db()?,
        &caller,
        &req,
        ctx.config.billing_timezone,
        ctx.config.test_instance_limit,
        ctx.now,
    )?;
    created(&placed.view())
}

fn instance(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    ok(&orders::view(
        ctx.storage.db()?,
        &caller,
        id,
        ctx.config.billing_timezone,
        ctx.now,
    )?)
}

/// The EULA the instance's order accepted, whole.
fn eula(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    ok(&orders::accepted_eula(ctx.storage.db()?, &caller, id)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    action: Action,
}

fn action(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let body: ActionBody = ctx.json()?;
    ok(&instance::perform(
        ctx.storage.db()?,
        &caller,
        id,
        body.action,
        ctx.now,
    )?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteOffRequest {
    period_start: DateTime<Utc>,
    reason: Option<String>,
}

/// An operator writes off an instance-period that cannot be billed: 201 with the write-off, or
/// 200 with the one that period already has.
fn write_off(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator])?;
    let body: WriteOffRequest = ctx.json()?;
    let (written, new) = billing::write_off::write_off(
        ctx.storage.db()?,
        &caller,
        id,
        body.period_start,
        body.reason.as_deref(),
        ctx.config.billing_timezone,
        ctx.now,
    )?;
    if new { created(&written) } else { ok(&written) }
}

fn write_offs(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let page = ctx.page()?;
    let items = billing::write_off::list(
        ctx.storage.db()?,
        &caller,
        id,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |w| &w.id)
}

fn my_account(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer])?;
    let page = ctx.page()?;
    let db = ctx.storage.db()?;
    let account = ledger::account(db, &caller.id, ctx.now)?;
    let entries = ledger::ledger(db, &caller.id, page.cursor.as_deref(), page.fetch())?;
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
    let (account, entry) = ledger::top_up(
        ctx.storage.db()?,
        &caller,
        customer_id,
        body.amount,
        ctx.now,
    )?;
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
    billing::check_as_of(as_of, ctx.real_now, ctx.config.allow_clock_override)?;
    let report = billing::run(
        ctx.storage.db()?,
        ctx.outbound,
        ctx.config.billing_timezone,
        ctx.config.test_instance_max_hours,
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
    let instance = instance::find(db, &caller, &body.instance_id)?;
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
    if ctx.wants_csv() {
        return export::bills(ctx.storage.db()?, caller, filter, page.cursor);
    }
    let items = billing::list(
        ctx.storage.db()?,
        &caller,
        &filter,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |b| &b.id)
}

/// The records behind one line of a bill, a page at a time (`?item=CODE&limit=&cursor=`).
fn bill_usage(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let page = ctx.page()?;
    let item = ctx.query("item").ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            "item",
            Code::InvalidQuery,
            "the code of one of the bill's lines",
        )])
    })?;
    ok(&billing::usage::line_usage(
        ctx.storage.db()?,
        &caller,
        id,
        item,
        page.cursor.as_deref(),
        page.limit,
    )?)
}

fn bill(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    ok(&billing::find(ctx.storage.db()?, &caller, id)?)
}
