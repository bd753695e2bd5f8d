//! `/api/v1/orders/...`, `/api/v1/instances/...` and `/api/v1/accounts/...`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::routes::{KeyUse, Route, get, post, post_keyed, route};
use super::{Ctx, Listed, Resp, created, ok, settlements};
use crate::billing::credit::{self, CreditRequest, Part};
use crate::billing::{self, BillFilter};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::export;
use crate::idempotency::Guard;
use crate::identity::Role;
use crate::orders::instance::{self, Action};
use crate::orders::ledger::{Account, LedgerEntry};
use crate::orders::{self, OrderRequest, ledger};

/// `/api/v1/orders/...`, `/api/v1/instances/...`, `/api/v1/accounts/...`, `/api/v1/billing/...`,
/// `/api/v1/bills/...` (their credit notes too), `/api/v1/credit-notes` and
/// `/api/v1/settlements/...` (served by `settlements`): the orders component's routes. A quote and a preview write nothing, so a key on them is ignored; a bill
/// run and a close are idempotent by construction and commit batch by batch, reading Prometheus
/// between batches, so a key is recorded, never held in one transaction with them.
pub(super) static ROUTES: &[Route] = &[
    route("orders/quote", &[post_keyed(quote, KeyUse::Ignored)]),
    route("orders", &[post(order)]),
    route("instances/{id}", &[get(instance)]),
    route("instances/{id}/actions", &[post(action)]),
    route(
        "instances/{id}/write-offs",
        &[get(write_offs), post(write_off)],
    ),
    route("instances/{id}/eula", &[get(eula)]),
    route("accounts/me", &[get(my_account)]),
    route("accounts/{id}/top-ups", &[post(top_up)]),
    route("billing/runs", &[post_keyed(bill_run, RECORDED)]),
    route("billing/preview", &[post_keyed(preview, KeyUse::Ignored)]),
    route("bills", &[get(bills)]),
    route("bills/{id}", &[get(bill)]),
    route("bills/{id}/usage", &[get(bill_usage)]),
    route("bills/{id}/credit-notes", &[post(credit)]),
    route("credit-notes", &[get(credit_notes)]),
    route("settlements", &[get(settlements::statements)]),
    route(
        "settlements/runs",
        &[post_keyed(settlements::close, RECORDED)],
    ),
    route("settlements/{id}", &[get(settlements::statement)]),
    route("settlements/{id}/payout", &[post(settlements::payout)]),
];

const RECORDED: KeyUse = KeyUse::Guarded(Guard::Recorded);

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

fn instance(ctx: &Ctx) -> ApiResult<Resp> {
    let id = ctx.param("id");
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
fn eula(ctx: &Ctx) -> ApiResult<Resp> {
    let id = ctx.param("id");
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    ok(&orders::accepted_eula(ctx.storage.db()?, &caller, id)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    action: Action,
}

fn action(ctx: &Ctx) -> ApiResult<Resp> {
    let id = ctx.param("id");
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let body: ActionBody = ctx.json()?;
    ok(&instance::perform(
        ctx.storage.db()?,
        &caller,
        id,
        body.action,
        &|| ctx.now_again(),
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
fn write_off(ctx: &Ctx) -> ApiResult<Resp> {
    let id = ctx.param("id");
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

fn write_offs(ctx: &Ctx) -> ApiResult<Resp> {
    let id = ctx.param("id");
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
    let account = ledger::account(db, &caller.id, ctx.now, ctx.config.arrears_grace_hours)?;
    let entries = ledger::ledger(db, &caller.id, page.cursor.as_deref(), page.fetch())?;
    ok(&AccountPage {
        account,
        ledger: page.envelope(entries, |e| &e.id),
    })
}

/// A customer's account and a page of its ledger, newest first.
#[derive(Serialize)]
struct AccountPage {
    account: Account,
    ledger: Listed<LedgerEntry>,
}

/// An account after a top-up, and the top-up's ledger entry.
#[derive(Serialize)]
struct ToppedUp {
    account: Account,
    entry: LedgerEntry,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopUp {
    amount: Decimal,
}

fn top_up(ctx: &Ctx) -> ApiResult<Resp> {
    let customer_id = ctx.param("id");
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator])?;
    let body: TopUp = ctx.json()?;
    let (account, entry) = billing::collection::top_up(
        ctx.storage.db()?,
        &caller,
        customer_id,
        body.amount,
        ctx.config.arrears_grace_hours,
        ctx.now,
    )?;
    created(&ToppedUp { account, entry })
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
        ctx.config,
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
fn bill_usage(ctx: &Ctx) -> ApiResult<Resp> {
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
        ctx.param("id"),
        item,
        page.cursor.as_deref(),
        page.limit,
    )?)
}

fn bill(ctx: &Ctx) -> ApiResult<Resp> {
    let id = ctx.param("id");
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    ok(&billing::find(ctx.storage.db()?, &caller, id)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreditBody {
    amount: Option<Decimal>,
    reason: Option<String>,
    #[serde(default)]
    applies_to: Part,
}

/// An operator's credit note on a bill: 201 with the note.
fn credit(ctx: &Ctx) -> ApiResult<Resp> {
    let bill_id = ctx.param("id");
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator])?;
    let body: CreditBody = ctx.json()?;
    let request = CreditRequest {
        amount: body.amount,
        reason: body.reason.as_deref(),
        applies_to: body.applies_to,
    };
    created(&credit::issue(
        ctx.storage.db()?,
        &caller,
        bill_id,
        &request,
        ctx.now,
    )?)
}

fn credit_notes(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let page = ctx.page()?;
    let items = credit::list(
        ctx.storage.db()?,
        &caller,
        ctx.query("bill_id"),
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |n| &n.id)
}
