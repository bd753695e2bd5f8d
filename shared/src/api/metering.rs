//! `/api/v1/metering/...`: `PushMeteringData`-compatible ingestion and usage reads.

use chrono::{DateTime, Utc};
use http::Method;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::{Ctx, Resp, not_allowed, not_found, ok};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::export;
use crate::identity::Role;
use crate::metering::{self, PlatformBill, PushMeteringData};
use crate::platform::ids::new_id;

pub(super) fn route(ctx: &Ctx) -> ApiResult<Resp> {
    let segs: Vec<&str> = ctx.segments.iter().map(String::as_str).collect();
    match (segs.as_slice(), &ctx.method) {
        (["metering"], &Method::POST) => push(ctx),
        (["metering"], _) => not_allowed("POST"),
        (["metering", "usage"], &Method::GET) => usage(ctx),
        (["metering", "usage"], _) => not_allowed("GET"),
        (["metering", "platform-bills"], &Method::POST) => platform_bill(ctx),
        (["metering", "platform-bills"], _) => not_allowed("POST"),
        _ => not_found(),
    }
}

fn push(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider])?;
    let push: PushMeteringData = ctx.json()?;
    let request_id = new_id("req", ctx.now);
    let stored = metering::push(
        ctx.storage.db()?,
        &caller,
        push,
        &request_id,
        ctx.config.billing_timezone,
        ctx.now,
    )?;
    push_result(&request_id, stored)
}

fn usage(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider, Role::Customer, Role::Operator])?;
    let instance_id = ctx.query("instance_id").ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            "instance_id",
            Code::InvalidQuery,
            "is required",
        )])
    })?;
    let range = (ctx.time_bound("from", 0)?, ctx.time_bound("to", i64::MAX)?);
    let page = ctx.page()?;
    if ctx.wants_csv() {
        let db = ctx.storage.db()?;
        return export::usage(db, caller, instance_id, range, page.cursor);
    }
    let usage = metering::usage(
        ctx.storage.db()?,
        &caller,
        instance_id,
        range,
        page.cursor.as_deref(),
        page.limit,
    )?;
    ok(&serde_json::json!({
        "instance_id": instance_id,
        "records": usage.records,
        "totals": usage.totals,
        "next_cursor": usage.next_cursor,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlatformBillBody {
    instance_id: String,
    period_start: DateTime<Utc>,
    amount: Decimal,
    item_code: Option<String>,
}

fn platform_bill(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Platform, Role::Operator])?;
    let body: PlatformBillBody = ctx.json()?;
    let request_id = new_id("req", ctx.now);
    let bill = PlatformBill {
        instance_id: body.instance_id,
        period_start: body.period_start,
        amount: body.amount,
        item_code: body.item_code,
    };
    let stored = metering::report_platform_bill(
        ctx.storage.db()?,
        &caller,
        &bill,
        &request_id,
        ctx.config.billing_timezone,
        ctx.now,
    )?;
    push_result(&request_id, stored)
}

/// The answer to a stored report, in `PushMeteringData`'s shape plus our counts.
fn push_result(request_id: &str, stored: metering::Stored) -> ApiResult<Resp> {
    ok(&serde_json::json!({
        "RequestId": request_id,
        "Success": true,
        "accepted": stored.accepted,
        "duplicates": stored.duplicates,
    }))
}
