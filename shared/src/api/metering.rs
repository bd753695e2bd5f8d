//! `/api/v1/metering/...`: `PushMeteringData`-compatible ingestion and usage reads.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::routes::{KeyUse, Route, get, post_keyed, route};
use super::{Ctx, Resp, ok};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::export;
use crate::idempotency::Guard;
use crate::identity::Role;
use crate::metering::{self, PlatformBill, PushMeteringData};
use crate::platform::ids::new_id;

/// `/api/v1/metering/...`. A push and a platform bill are idempotent by construction (a usage
/// record counts once) and validated before they take the write lock: a key is recorded, not
/// held in one transaction with them.
pub(super) static ROUTES: &[Route] = &[
    route("metering", &[post_keyed(push, RECORDED)]),
    route("metering/usage", &[get(usage)]),
    route(
        "metering/platform-bills",
        &[post_keyed(platform_bill, RECORDED)],
    ),
];

const RECORDED: KeyUse = KeyUse::Guarded(Guard::Recorded);

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
    ok(&metering::usage(
        ctx.storage.db()?,
        &caller,
        instance_id,
        range,
        page.cursor.as_deref(),
        page.limit,
    )?)
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
#[derive(Serialize)]
struct Reported<'a> {
    #[serde(rename = "RequestId")]
    request_id: &'a str,
    #[serde(rename = "Success")]
    success: bool,
    #[serde(flatten)]
    stored: metering::Stored,
}

fn push_result(request_id: &str, stored: metering::Stored) -> ApiResult<Resp> {
    ok(&Reported {
        request_id,
        success: true,
        stored,
    })
}
