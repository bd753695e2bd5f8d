//! `/api/v1/reviews/...`: submissions, the operators' queue, decisions and the history.

use http::Method;
use serde::Deserialize;

use super::{Ctx, Resp, created, not_allowed, not_found, ok};
use crate::catalog;
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::Role;
use crate::listing::service::ServiceSpec;
use crate::listing::steps::{CategoryStep, PricingStep};
use crate::listing::{self, Product, ProductStatus, Step};
use crate::platform::storage::{Database, transaction};
use crate::review::{self, Decision, ReviewFilter, ReviewStatus, Stage};
use crate::sales;
use crate::validate::Errors;

pub fn route(ctx: &Ctx) -> ApiResult<Resp> {
    let segs: Vec<&str> = ctx.segments.iter().map(String::as_str).collect();
    match (segs.as_slice(), &ctx.method) {
        (["reviews"], &Method::POST) => submit(ctx),
        (["reviews"], &Method::GET) => list(ctx),
        (["reviews"], _) => not_allowed("GET, POST"),
        (["reviews", id], &Method::GET) => get(ctx, id),
        (["reviews", _], _) => not_allowed("GET"),
        (["reviews", id, "decision"], &Method::POST) => decide(ctx, id),
        (["reviews", _, "decision"], _) => not_allowed("POST"),
        _ => not_found(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    product_id: String,
    stage: Stage,
}

/// The preconditions of a submission that depend on the listing, checked inside the
/// submission's transaction so that a concurrent edit cannot slip between check and submit.
fn check_submission(
    db: &dyn Database,
    product: &Product,
    stage: Stage,
    service: &ServiceSpec,
) -> ApiResult<Option<String>> {
    match stage {
        Stage::Category => {
            let steps = listing::store::steps(db, &product.id)?;
            let media = listing::store::media(db, &product.id)?;
            let mut e = Errors::new();
            for (step, missing) in listing::missing_by_step(&steps, &media) {
                for m in missing {
                    e.add(
                        step.as_str(),
                        Code::ListingIncomplete,
                        format!("missing: {m}"),
                    );
                }
            }
            if !e.is_empty() {
                let mut err = e.finish().unwrap_err();
                err.detail = "the listing is incomplete: every step and the logo and user guide are required".into();
                return Err(err);
            }
            let category = CategoryStep::from_stored(
                &listing::store::step_data(db, &product.id, Step::Category)?.unwrap_or_default(),
            )?
            .category()
            .id
            .to_owned();
            if product.status == ProductStatus::CategoryRejected
                && review::rejected_category(db, &product.id)?.as_deref() == Some(category.as_str())
            {
                return Err(ApiError::new(
                    Code::CategoryUnchanged,
                    format!(
                        "the category was rejected as `{category}`; change it before resubmitting"
                    ),
                ));
            }
            Ok(Some(category))
        }
        Stage::Feature => {
            let pricing = PricingStep::from_stored(
                &listing::store::step_data(db, &product.id, Step::Pricing)?.unwrap_or_default(),
            )?;
            let items = sales::item_settings(db, &product.id, &pricing, service)?;
            let missing = sales::incomplete(&items);
            if !missing.is_empty() {
                return Err(ApiError::validation(missing));
            }
            Ok(None)
        }
    }
}

fn submit(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider])?;
    let body: Submission = ctx.json()?;
    let db = ctx.storage.db()?;
    let review = transaction(db, |db| {
        let product = listing::store::find_product(db, &caller, &body.product_id)?;
        // The state machine first: a submission in the wrong state is a conflict whatever the
        // listing holds.
        review::transition(product.status, review::Event::Submit(body.stage))?;
        let service = listing::store::find_service(db, &caller, &product.service_id)?;
        let category = check_submission(db, &product, body.stage, &service.spec)?;
        review::submit(
            db,
            &caller,
            &product.id,
            product.status,
            body.stage,
            category.as_deref(),
            ctx.now,
        )
    })?;
    created(&review)
}

fn list(ctx: &Ctx) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider, Role::Operator])?;
    let page = ctx.page()?;
    let status =
        ctx.query("status")
            .map(|s| {
                serde_json::from_value::<ReviewStatus>(serde_json::Value::String(s.to_owned()))
                    .map_err(|_| {
                        ApiError::validation(vec![FieldError::new(
                            "status",
                            Code::InvalidQuery,
                            "one of pending, approved, rejected",
                        )])
                    })
            })
            .transpose()?;
    let filter = ReviewFilter {
        provider_id: (!caller.is_operator()).then_some(caller.id.as_str()),
        product_id: ctx.query("product_id"),
        status,
    };
    let items = review::list(
        ctx.storage.db()?,
        &filter,
        page.cursor.as_deref(),
        page.fetch(),
    )?;
    page.list(items, |r| &r.id)
}

fn get(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Provider, Role::Operator])?;
    let db = ctx.storage.db()?;
    let review = review::find(db, id)?;
    // A provider may read reviews of its own products only; the product lookup is scoped.
    listing::store::find_product(db, &caller, &review.product_id)
        .map_err(|_| ApiError::not_found("review"))?;
    ok(&review)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: Decision,
    reason: Option<String>,
}

const REASON_MAX: usize = 2_000;

fn decide(ctx: &Ctx, id: &str) -> ApiResult<Resp> {
    let caller = ctx.principal()?;
    caller.require(&[Role::Operator])?;
    let body: DecisionBody = ctx.json()?;
    let reason = body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let mut e = Errors::new();
    match (body.decision, reason) {
        (Decision::Reject, None) => {
            e.add("reason", Code::ReasonRequired, "a rejection must say why")
        }
        (_, Some(r)) => e.text("reason", r, 1, REASON_MAX, Code::TooLong),
        (Decision::Approve, None) => {}
    }
    e.finish()?;
    let db = ctx.storage.db()?;
    let review = transaction(db, |db| {
        let review = review::decide(db, &caller, id, body.decision, reason, ctx.now)?;
        if review.stage == Stage::Feature && body.decision == Decision::Approve {
            let product = listing::store::find_product(db, &caller, &review.product_id)?;
            let service = listing::store::find_service(db, &caller, &product.service_id)?;
            catalog::publish(db, &product, &service.spec, ctx.now)?;
        }
        Ok::<_, ApiError>(review)
    })?;
    ok(&review)
}
