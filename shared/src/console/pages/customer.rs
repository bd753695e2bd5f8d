//! A customer's order confirmation and account.

use maud::html;

use crate::catalog;
use crate::console::format::{name_of, time};
use crate::console::http::{Req, Resp, html, redirect};
use crate::console::layout::{Chrome, ok, page};
use crate::console::widgets::{next_page, paged, resources_table, tier_table};
use crate::error::{ApiError, ApiResult};
use crate::identity::{Principal, Role};
use crate::listing::steps::Eula;
use crate::orders::{self, OrderRequest, ledger};

/// Ledger entries per page.
const PAGE: usize = 50;

fn order_request(fields: &[(String, String)], accept: bool) -> OrderRequest {
    let value = |name: &str| {
        fields
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    OrderRequest {
        product_id: value("product_id").unwrap_or_default(),
        template_id: value("template_id"),
        plan_id: value("plan_id"),
        region: value("region"),
        accept_eula: accept.then_some(value("accept_eula").as_deref() == Some("true")),
    }
}

/// The EULA as the customer accepts it.
fn eula(eula: &Eula) -> maud::Markup {
    html! {
        div.eula tabindex="0" role="region" aria-label="End-user license agreement" {
            @match eula {
                Eula::Custom { text } => { p.prose { (text) } }
                Eula::Template { template_id, amendments } => {
                    p { "The marketplace's standard EULA (" code { (template_id) } ")." }
                    @if let Some(a) = amendments {
                        p { strong { "Amended by the provider: " } }
                        p.prose { (a) }
                    }
                }
            }
        }
    }
}

/// The confirmation of an order as it stands: what will be deployed, what it costs, the EULA to
/// accept, and that nothing is charged now; `problem` is the refusal of a placing.
fn confirmation(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    order: &OrderRequest,
    problem: Option<&ApiError>,
) -> ApiResult<Resp> {
    let db = req.db()?;
    let quote = orders::quote(db, me, order)?;
    let agreement = catalog::detail(db, &order.product_id)?.agreement;
    let currency = quote.currency.as_str();
    let eula_refused = problem.is_some_and(|p| p.errors.iter().any(|e| e.field == "accept_eula"));
    let content = html! {
        @if let Some(p) = problem {
            div.summary role="alert" { p { strong { (p.detail) } } }
        }
        dl {
            dt { "Product" } dd { (quote.product_name) }
            dt { "Template" } dd { (quote.template.name) }
            @if let Some(plan) = &quote.plan_id { dt { "Plan" } dd { (plan) } }
            dt { "Region" } dd { (quote.region) }
            dt { "Billing period" } dd { (name_of(&quote.billing_period)) }
        }
        h2 { "Cloud resources" }
        (resources_table(quote.cloud_resources.iter().map(|r| &r.resource), currency))
        p { "Hourly fee of the resources: " strong { (quote.cloud_resources_hourly_fee) " " (currency) } }
        h2 { "Billable items" }
        @for item in &quote.billable_items {
            (tier_table(item, currency))
        }
        div.notice {
            p { strong { "Nothing is charged now: " (quote.charged_at_confirmation) " " (currency) " at confirmation." } }
            p { (quote.statement) }
        }
        h2 { "End-user license agreement" }
        (eula(agreement.eula()))
        form.narrow method="post" action="/orders" {
            (chrome.csrf_field())
            (crate::console::once::field())
            input type="hidden" name="product_id" value=(order.product_id);
            @if let Some(t) = &order.template_id { input type="hidden" name="template_id" value=(t); }
            @if let Some(p) = &order.plan_id { input type="hidden" name="plan_id" value=(p); }
            @if let Some(r) = &order.region { input type="hidden" name="region" value=(r); }
            div.field.check.invalid[eula_refused] {
                input id="accept_eula" name="accept_eula" type="checkbox" value="true"
                    aria-describedby=[eula_refused.then_some("accept_eula-error")];
                label for="accept_eula" { "I accept the end-user license agreement" }
                @if eula_refused {
                    ul.field-errors id="accept_eula-error" { li { "Accept the EULA to order." } }
                }
            }
            button type="submit" { "Place the order" }
        }
    };
    let status = problem.map_or(http::StatusCode::OK, ApiError::status);
    Ok(html(status, page(chrome, "Confirm your order", content)))
}

/// `GET /orders/new?product_id=&template_id=&region=`.
pub(crate) fn confirm(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Customer])?;
    confirmation(req, chrome, me, &order_request(&req.query, false), None)
}

/// `POST /orders`: the instance is deployed and nothing is charged.
pub(crate) fn place(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Customer])?;
    let order = order_request(&req.form(), true);
    let placed = orders::place(
        req.db()?,
        me,
        &order,
        req.config.billing_timezone,
        req.config.test_instance_limit,
        req.now,
    );
    match placed {
        Ok(placed) => redirect(&format!("/instances/{}", placed.instance.id)),
        // Refusals of this order (the EULA, arrears, a region) are shown on its confirmation.
        Err(e) if matches!(e.status().as_u16(), 400 | 402 | 409) => {
            confirmation(req, chrome, me, &order, Some(&e))
        }
        Err(e) => Err(e),
    }
}

/// `GET /account`: the balance and the ledger behind it, newest first.
pub(crate) fn account(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Customer])?;
    let db = req.db()?;
    let account = ledger::account(db, &me.id, req.now, req.config.arrears_grace_hours)?;
    let entries = ledger::ledger(db, &me.id, req.query("cursor"), PAGE + 1)?;
    let (entries, next) = paged(entries, PAGE, |e| e.id.clone());
    let suspended = account
        .arrears
        .as_ref()
        .is_some_and(|a| req.now >= a.suspension_deadline);
    Ok(ok(
        chrome,
        "Account",
        html! {
            @if let Some(a) = &account.arrears {
                div.arrears role="alert" {
                    p { strong { "Your account is in arrears" } " since " (time(&a.since)) ": its balance is below zero. "
                        "Top up to bring it back to zero or above: until then you cannot order or start an instance." }
                    @if suspended {
                        p { "The grace ended " (time(&a.suspension_deadline)) ": your running instances are suspended (no resource fees, no usage) and run again as soon as a top-up brings the balance back to zero or above." }
                    } @else {
                        p { "Suspension deadline: " strong { (time(&a.suspension_deadline)) } ". The first bill run from then on suspends your running instances unless the balance is back to zero or above." }
                    }
                }
            }
            p.balance {
                "Balance: " strong { (account.balance.to_decimal()) " " (account.currency) }
                @if account.balance.0 < 0 && account.arrears.is_none() { " — below zero: top up before ordering again" }
            }
            h2 { "Ledger" }
            @if entries.is_empty() { p { "No money has moved yet." } }
            @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "Amount" }
                            th scope="col" { "Balance after" } th scope="col" { "Reference" }
                        } }
                        tbody {
                            @for e in &entries {
                                tr {
                                    td { (time(&e.created_at)) }
                                    td { (name_of(&e.kind)) }
                                    td.num { (e.amount.to_decimal()) }
                                    td.num { (e.balance_after.to_decimal()) }
                                    td { @if let Some(r) = &e.reference { a href={ "/bills/" (r) } { (r) } } }
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
