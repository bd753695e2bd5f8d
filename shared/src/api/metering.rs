//! `/api/v1/metering/...`: `PushMeteringData`-compatible ingestion and usage reads.

use chrono::{DateTime, Utc};
use http::Method;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::{Ctx, Resp, not_allowed, not_found, ok};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::Role;
use crate::metering::{self, MeteringContext, PushMeteringData};
use crate::orders;
use crate::platform::ids::new_id;
use crate::platform::storage::transaction;

pub fn route(ctx: &Ctx) -> ApiResult<Resp> {
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

/// A provider pushes usage of an instance of one of its products. Validation and storage run in
/// one transaction, so a release committed meanwhile is seen and nothing is half-stored.
fn push(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider])?;
    let push: PushMeteringData = ctx.json()?;
    let request_id = new_id("req", ctx.now);
    let db = ctx.storage.db()?;
    let stored = transaction(db, |db| {
        let instance = orders::find(db, &caller, &push.service_instance_id)?;
        if instance.provider_id != caller.id {
            // A customer's own instance is visible to it, but only the provider meters it.
            return Err(ApiError::not_found("instance"));
        }
        let (billing_period, _, items) = orders::billing_terms(db, &instance)?;
        let records = metering::validate(
            push,
            &MeteringContext {
                instance: &instance,
                items: &items,
                billing_period,
                tz: ctx.config.billing_timezone,
                now: ctx.now,
            },
        )?;
        metering::check_not_billed(db, &instance.id, &records)?;
        metering::store(
            db,
            &instance.id,
            &records,
            "service_provider",
            &request_id,
            ctx.now,
        )
    })?;
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
    let (from, to) = (ctx.time_bound("from", 0)?, ctx.time_bound("to", i64::MAX)?);
    let db = ctx.storage.db()?;
    let instance = orders::find(db, &caller, instance_id)?;
    let (records, totals) = metering::usage(db, &instance.id, from, to)?;
    ok(&serde_json::json!({ "instance_id": instance.id, "records": records, "totals": totals }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlatformBill {
    instance_id: String,
    period_start: DateTime<Utc>,
    /// The bill amount, at most 2 decimal places.
    amount: Decimal,
    /// Which item it is for; optional when the instance has exactly one Bill-sourced item.
    item_code: Option<String>,
}

/// The platform reports an instance's bill data for one period (the Bill source). Idempotent per
/// (instance, item, period): the same amount again is a duplicate, another amount a conflict.
fn platform_bill(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Platform, Role::Operator])?;
    let body: PlatformBill = ctx.json()?;
    let request_id = new_id("req", ctx.now);
    let db = ctx.storage.db()?;
    let stored = transaction(db, |db| {
        let instance = orders::find(db, &caller, &body.instance_id)?;
        let (kind, _, items) = orders::billing_terms(db, &instance)?;
        let record = metering::platform_bill_record(
            &instance,
            &items,
            kind,
            ctx.config.billing_timezone,
            body.period_start,
            body.amount,
            body.item_code.as_deref(),
            ctx.now,
        )?;
        let records = [record];
        metering::check_not_billed(db, &instance.id, &records)?;
        metering::store(db, &instance.id, &records, "bill", &request_id, ctx.now)
    })?;
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
