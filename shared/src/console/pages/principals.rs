//! The operators' page of principals: who may sign in, with which role; their tokens and
//! customers' top-ups.

use http::StatusCode;
use maud::html;
use rust_decimal::Decimal;

use super::catalog::{next_page, paged};
use crate::console::form::{Form, field};
use crate::console::format::{name_of, time};
use crate::console::http::{Req, Resp, html, redirect};
use crate::console::layout::{Chrome, page};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{self, NewPrincipal, Principal, Role};
use crate::orders::ledger;

const PAGE: usize = 50;

fn principals_page(
    req: &Req,
    chrome: &Chrome,
    values: &serde_json::Value,
    problem: Option<&ApiError>,
    issued: Option<(&Principal, &str)>,
) -> ApiResult<Resp> {
    let role = req
        .query("role")
        .and_then(|r| crate::platform::storage::enum_from_str::<Role>(r).ok());
    let found = identity::list_principals(req.db()?, role, req.query("cursor"), PAGE + 1)?;
    let (principals, next) = paged(found, PAGE, |p| p.id.clone());
    let errors = problem.map_or(&[][..], |p| p.errors.as_slice());
    let form = Form::new(values, errors);
    let content = html! {
        @if let Some((p, token)) = issued {
            div.notice role="status" {
                p { "The token of " strong { (p.name) } " (" (p.id) "). It is shown this once: hand it over now." }
                p { code.token { (token) } }
            }
        }
        section {
            h2 { "New principal" }
            (form.summary(problem))
            form.narrow method="post" action="/principals" {
                (chrome.csrf_field())
                (form.select("role", "Role", &[("provider", "Provider"), ("customer", "Customer"), ("operator", "Operator"), ("platform", "Platform")]))
                (form.text("name", "Name", None))
                (form.select("account_type", "Account type (customers only)", &[("", "None"), ("enterprise", "Enterprise"), ("individual", "Individual")]))
                button type="submit" { "Create and issue a token" }
            }
        }
        section {
            h2 { "Principals" }
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Since" }
                        th scope="col" { "Token" } th scope="col" { "Account" }
                    } }
                    tbody {
                        @for p in &principals {
                            tr {
                                td { (p.name) br; small { (p.id) } }
                                td { (name_of(&p.role)) @if let Some(a) = p.account_type { " (" (name_of(&a)) ")" } }
                                td { (time(&p.created_at)) }
                                td {
                                    form method="post" action={ "/principals/" (p.id) "/tokens" } {
                                        (chrome.csrf_field())
                                        button.secondary type="submit" aria-label={ "Rotate the token of " (p.name) } { "Rotate" }
                                    }
                                }
                                td {
                                    @if p.role == Role::Customer {
                                        form.inline method="post" action={ "/principals/" (p.id) "/top-ups" } {
                                            (chrome.csrf_field())
                                            label for={ "amount-" (p.id) } { "Top up (CNY)" }
                                            input id={ "amount-" (p.id) } name="amount" type="text" inputmode="decimal" size="8";
                                            button.secondary type="submit" { "Top up" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (next_page(req, next.as_deref()))
            p.hint { "Disabling a principal is not offered yet: it is being added to the API." }
        }
    };
    let status = problem.map_or(StatusCode::OK, ApiError::status);
    Ok(html(status, page(chrome, "Principals", content)))
}

/// `GET /principals`.
pub(crate) fn principals(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    principals_page(req, chrome, &serde_json::json!({}), None, None)
}

/// `POST /principals`: the new principal's token is shown once, on the answer.
pub(crate) fn create_principal(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    let form = req.form();
    let value = |name: &str| {
        form.iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.clone())
    };
    let new = NewPrincipal {
        role: value("role"),
        name: value("name"),
        account_type: value("account_type"),
    };
    let values =
        serde_json::json!({"role": new.role, "name": new.name, "account_type": new.account_type});
    match identity::create_principal(req.db()?, new, req.now) {
        Ok((p, token)) => principals_page(
            req,
            chrome,
            &serde_json::json!({}),
            None,
            Some((&p, token.reveal())),
        ),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            principals_page(req, chrome, &values, Some(&e), None)
        }
        Err(e) => Err(e),
    }
}

/// `POST /principals/{id}/tokens`: a new token, shown once; the old one and every console
/// session opened with it stop working.
pub(crate) fn rotate(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    let db = req.db()?;
    let target = identity::find_principal(db, id)?;
    let token = identity::rotate_token(db, &target.id, req.now)?;
    principals_page(
        req,
        chrome,
        &serde_json::json!({}),
        None,
        Some((&target, token.reveal())),
    )
}

/// `POST /principals/{id}/top-ups`.
pub(crate) fn top_up(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    let amount = field(req, "amount").unwrap_or_default();
    let amount: Decimal = amount.trim().parse().map_err(|_| {
        ApiError::validation(vec![FieldError::new(
            "amount",
            Code::InvalidAmount,
            "an amount such as 100.00",
        )])
    })?;
    match ledger::top_up(req.db()?, me, id, amount, req.now) {
        Ok(_) => redirect("/principals"),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            principals_page(req, chrome, &serde_json::json!({}), Some(&e), None)
        }
        Err(e) => Err(e),
    }
}
