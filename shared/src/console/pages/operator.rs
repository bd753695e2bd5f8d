//! The operators' pages: the review queue and decisions, bill runs. (Principals are
//! `principals`, settlements `settlements`.)

use chrono::DateTime;
use http::StatusCode;
use maud::{Markup, html};

use super::listing::{product_name, whole};
use crate::billing;
use crate::console::form::{Form, field};
use crate::console::format::{name_of, time};
use crate::console::http::{Req, Resp, html, redirect};
use crate::console::layout::{Chrome, ok, page};
use crate::console::widgets::{next_page, paged};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{Principal, Role};
use crate::listing::product;
use crate::review::{self, Decision, ReviewStatus};

const PAGE: usize = 50;

/// `GET /reviews`: pending reviews, oldest first: the order they are worked in.
pub(crate) fn queue(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    let db = req.db()?;
    let found = review::list(
        db,
        me,
        None,
        Some(ReviewStatus::Pending),
        req.query("cursor"),
        PAGE + 1,
    )?;
    let (reviews, next) = paged(found, PAGE, |r| r.id.clone());
    let mut rows = Vec::with_capacity(reviews.len());
    for r in &reviews {
        rows.push((r, product_name(&product::find(db, me, &r.product_id)?)));
    }
    Ok(ok(
        chrome,
        "Review queue",
        html! {
            p { "Pending reviews, oldest first." }
            @if rows.is_empty() { p { "Nothing waits for review." } }
            @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th scope="col" { "Submitted" } th scope="col" { "Product" } th scope="col" { "Review" }
                        } }
                        tbody {
                            @for (r, name) in &rows {
                                tr {
                                    td { (time(&r.submitted_at)) }
                                    td { (name) }
                                    td { a href={ "/reviews/" (r.id) } { (name_of(&r.stage)) " review" } }
                                }
                            }
                        }
                    }
                }
            }
            (next_page(req, next.as_deref()))
        },
    ))
}

fn review_page(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    id: &str,
    problem: Option<&ApiError>,
    reason: &str,
) -> ApiResult<Resp> {
    let db = req.db()?;
    let r = review::find(db, me, id)?;
    let view = product::find(db, me, &r.product_id)?;
    let values = serde_json::json!({ "reason": reason });
    let errors = problem.map_or(&[][..], |p| p.errors.as_slice());
    let form = Form::new(&values, errors);
    let content = html! {
        dl {
            dt { "Product" } dd { (product_name(&view)) " (" (view.product.id) ")" }
            dt { "Stage" } dd { (name_of(&r.stage)) }
            dt { "Status" } dd { span.status { (name_of(&r.status)) } }
            dt { "Submitted" } dd { (time(&r.submitted_at)) " by " (r.submitted_by) }
            @if let Some(reason) = &r.reason { dt { "Reason" } dd { (reason) } }
        }
        @if r.status == ReviewStatus::Pending {
            section.decide {
                h2 { "Decision" }
                (form.summary(problem))
                form.narrow method="post" action={ "/reviews/" (r.id) "/decision" } {
                    (chrome.csrf_field())
                    (form.textarea("reason", "Reason", Some("Required to reject; shown to the provider.")))
                    div.actions {
                        button type="submit" name="decision" value="approve" { "Approve" }
                        button.danger type="submit" name="decision" value="reject" { "Reject" }
                    }
                }
            }
        }
        h2 { "History" }
        (history(&r.history))
        (whole(&view))
    };
    let status = problem.map_or(StatusCode::OK, ApiError::status);
    Ok(html(
        status,
        page(
            chrome,
            &format!("Review of {}", product_name(&view)),
            content,
        ),
    ))
}

/// A review's transitions: who moved the product from where to where, when and why.
pub(crate) fn history(records: &[review::TransitionRecord]) -> Markup {
    html! {
        ol.history {
            @for t in records {
                li {
                    (time(&t.at)) ": " (name_of(&t.from)) " → " strong { (name_of(&t.to)) } " by " (t.actor_id)
                    @if let Some(reason) = &t.reason { br; "Reason: " q { (reason) } }
                }
            }
        }
    }
}

/// `GET /reviews/{id}`: the listing under review, its media and user guide, and the decision.
pub(crate) fn review(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    review_page(req, chrome, me, id, None, "")
}

/// `POST /reviews/{id}/decision`: approve, or reject with a reason.
pub(crate) fn decide(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    let decision = match field(req, "decision").as_deref() {
        Some("approve") => Decision::Approve,
        Some("reject") => Decision::Reject,
        _ => {
            return Err(ApiError::validation(vec![FieldError::new(
                "decision",
                Code::InvalidValue,
                "approve or reject",
            )]));
        }
    };
    let reason = field(req, "reason").unwrap_or_default();
    match review::decide(req.db()?, me, id, decision, Some(&reason), req.now) {
        Ok(_) => redirect("/reviews"),
        Err(e) if e.status() == StatusCode::BAD_REQUEST || e.status() == StatusCode::CONFLICT => {
            review_page(req, chrome, me, id, Some(&e), &reason)
        }
        Err(e) => Err(e),
    }
}

fn bill_runs_page(
    chrome: &Chrome,
    values: &serde_json::Value,
    problem: Option<&ApiError>,
    report: Option<&billing::RunReport>,
) -> Resp {
    let errors = problem.map_or(&[][..], |p| p.errors.as_slice());
    let form = Form::new(values, errors);
    let content = html! {
        p { "The schedule bills every closed period every five minutes. A run started here does the same at once: every period closed by its date is billed exactly once, whatever else runs." }
        p.hint { "Past runs are not kept yet: a run's report is shown once, here." }
        (form.summary(problem))
        form.narrow method="post" action="/bill-runs" {
            (chrome.csrf_field())
            (crate::console::once::field())
            (form.text("as_of", "Bill periods closed by (RFC 3339; empty for now)", Some("e.g. 2026-03-27T10:00:00Z")))
            button type="submit" { "Run bills now" }
        }
        @if let Some(r) = report {
            section.report role="status" {
                h2 { "Run as of " (time(&r.as_of)) }
                dl {
                    dt { "Bills written" } dd { (r.bills_written) }
                    dt { "Test bills among them" } dd { (r.test_bills) }
                    dt { "Deducted" } dd { (r.deducted) " CNY" }
                    dt { "Suspended for arrears" } dd {
                        @if r.suspended.is_empty() { "none" }
                        @for (i, id) in r.suspended.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href={ "/instances/" (id) } { (id) }
                        }
                    }
                    dt { "Failures" } dd { (r.failures.len()) }
                }
                @if !r.failures.is_empty() {
                    h3 { "Not billed this time (retried next run)" }
                    div.table-wrap {
                        table {
                            thead { tr { th scope="col" { "Instance" } th scope="col" { "Period" } th scope="col" { "Why" } } }
                            tbody {
                                @for f in &r.failures {
                                    tr { td { (f.instance_id) } td { (time(&f.period_start)) } td { (f.reason) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let status = problem.map_or(StatusCode::OK, ApiError::status);
    html(status, page(chrome, "Bill runs", content))
}

/// `GET /bill-runs`.
pub(crate) fn bill_runs(_req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    Ok(bill_runs_page(chrome, &serde_json::json!({}), None, None))
}

/// `POST /bill-runs`: a run now, or as of a given instant.
pub(crate) fn run_bills(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    let given = field(req, "as_of").filter(|v| !v.trim().is_empty());
    let values = serde_json::json!({ "as_of": given });
    let as_of = match &given {
        None => Ok(req.now),
        Some(v) => DateTime::parse_from_rfc3339(v.trim())
            .map(|t| t.to_utc())
            .map_err(|_| {
                ApiError::validation(vec![FieldError::new(
                    "as_of",
                    Code::InvalidValue,
                    "an RFC 3339 instant",
                )])
            }),
    };
    let report = as_of.and_then(|as_of| {
        billing::check_as_of(as_of, req.real_now, req.config.allow_clock_override)?;
        billing::run(req.db()?, req.outbound, req.config, as_of, req.now, me)
    });
    match report {
        Ok(report) => Ok(bill_runs_page(chrome, &values, None, Some(&report))),
        Err(e) if e.status() == StatusCode::BAD_REQUEST || e.code == Code::AsOfInFuture => {
            Ok(bill_runs_page(chrome, &values, Some(&e), None))
        }
        Err(e) => Err(e),
    }
}
