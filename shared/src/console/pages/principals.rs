//! The operators' pages of principals: who may sign in, with which role; their tokens, whether
//! they are disabled, customers' top-ups and providers' commission rates.

use http::{Method, StatusCode};
use maud::{Markup, html};
use rust_decimal::Decimal;

use super::auth::local_path;
use crate::billing;
use crate::console::form::{Form, field};
use crate::console::format::{name_of, percent, time};
use crate::console::http::{Req, Resp, html, redirect};
use crate::console::layout::{Chrome, page};
use crate::console::widgets::{next_page, paged};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{self, NewPrincipal, Principal, Role};
use crate::settlement::{self, Commission, RateSource};

const PAGE: usize = 50;

/// What the principals page shows around its list.
#[derive(Default)]
struct Shown<'a> {
    /// What the new-principal form holds, and why it was refused.
    values: Option<&'a serde_json::Value>,
    create_refused: Option<&'a ApiError>,
    /// A refused action on a principal (disabling the built-in operator, a top-up).
    action_refused: Option<&'a ApiError>,
    /// A token issued this once.
    issued: Option<(&'a Principal, &'a str)>,
}

/// The path and query of the page being shown: where its forms come back to.
fn here(req: &Req) -> String {
    let path = format!("/{}", req.segments.join("/"));
    if req.query.is_empty() {
        return path;
    }
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&req.query)
        .finish();
    format!("{path}?{query}")
}

/// Where a form came from, if it is a principals page of this console; else `fallback`.
fn back_to(req: &Req, fallback: String) -> String {
    field(req, "next")
        .filter(|n| local_path(Some(n)).is_some() && n.starts_with("/principals"))
        .filter(|n| n.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or(fallback)
}

/// Whether a principal may sign in: since when it may not.
fn access(p: &Principal) -> Markup {
    html! {
        @match &p.disabled_at {
            Some(at) => { span.status.off { "disabled" } " since " (time(at)) }
            None => { span.status { "active" } }
        }
    }
}

/// The principals page again, saying why the operator's action was refused.
fn refused(req: &Req, chrome: &Chrome, e: &ApiError) -> ApiResult<Resp> {
    principals_page(
        req,
        chrome,
        Shown {
            action_refused: Some(e),
            ..Shown::default()
        },
    )
}

/// Disable or enable a principal, coming back to `next`.
fn access_form(chrome: &Chrome, p: &Principal, next: &str) -> Markup {
    let (action, label) = if p.disabled_at.is_some() {
        ("enable", "Enable")
    } else {
        ("disable", "Disable")
    };
    html! {
        form method="post" action={ "/principals/" (p.id) "/" (action) } {
            (chrome.csrf_field())
            input type="hidden" name="next" value=(next);
            @if p.disabled_at.is_some() {
                button.secondary type="submit" aria-label={ (label) " " (p.name) } { (label) }
            } @else {
                button.danger type="submit" aria-label={ (label) " " (p.name) } { (label) }
            }
        }
    }
}

fn rotate_form(chrome: &Chrome, p: &Principal) -> Markup {
    html! {
        form method="post" action={ "/principals/" (p.id) "/tokens" } {
            (chrome.csrf_field())
            button.secondary type="submit" aria-label={ "Rotate the token of " (p.name) } { "Rotate token" }
        }
    }
}

fn principals_page(req: &Req, chrome: &Chrome, shown: Shown) -> ApiResult<Resp> {
    let role = req
        .query("role")
        .and_then(|r| crate::platform::storage::enum_from_str::<Role>(r).ok());
    let found = identity::list_principals(req.db()?, role, req.query("cursor"), PAGE + 1)?;
    let (principals, next) = paged(found, PAGE, |p| p.id.clone());
    let empty = serde_json::json!({});
    let problem = shown.create_refused;
    let errors = problem.map_or(&[][..], |p| p.errors.as_slice());
    let form = Form::new(shown.values.unwrap_or(&empty), errors);
    let back = if req.method == Method::GET {
        here(req)
    } else {
        "/principals".to_owned()
    };
    let content = html! {
        @if let Some((p, token)) = shown.issued {
            div.notice role="status" {
                p { "The token of " strong { (p.name) } " (" (p.id) "). It is shown this once: hand it over now." }
                p { code.token { (token) } }
            }
        }
        @if let Some(e) = shown.action_refused {
            div.summary role="alert" tabindex="-1" {
                p { strong { (e.detail) } }
                @if !e.errors.is_empty() { ul { @for f in &e.errors { li { code { (f.field) } ": " (f.message) } } } }
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
            p.hint { "Disabling a principal stops its token and ends its console sessions at once; what it made stays (a provider's published products are still sold, its revenue still settled). Enabled again, it signs in anew." }
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Since" }
                        th scope="col" { "Access" } th scope="col" { "Actions" } th scope="col" { "Account" }
                    } }
                    tbody {
                        @for p in &principals {
                            tr {
                                td { a href={ "/principals/" (p.id) } { (p.name) } br; small { (p.id) } }
                                td { (name_of(&p.role)) @if let Some(a) = p.account_type { " (" (name_of(&a)) ")" } }
                                td { (time(&p.created_at)) }
                                td { (access(p)) }
                                td { div.actions { (rotate_form(chrome, p)) (access_form(chrome, p, &back)) } }
                                td {
                                    @if p.role == Role::Customer {
                                        form.inline method="post" action={ "/principals/" (p.id) "/top-ups" } {
                                            (chrome.csrf_field())
                                            (crate::console::once::field())
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
        }
    };
    let status = problem
        .or(shown.action_refused)
        .map_or(StatusCode::OK, ApiError::status);
    Ok(html(status, page(chrome, "Principals", content)))
}

/// `GET /principals`.
pub(crate) fn principals(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    principals_page(req, chrome, Shown::default())
}

/// A refused commission form: what was typed (rate, effective month) and why.
type RefusedRate<'a> = (&'a str, &'a str, &'a ApiError);

/// One principal: whether it may sign in, its token; a provider's commission rate in force, its
/// history, and the form setting it from a month on (shown again, with its errors, when
/// refused).
fn principal_page(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    id: &str,
    refused: Option<RefusedRate>,
) -> ApiResult<Resp> {
    let db = req.db()?;
    let p = identity::find_principal(db, id)?;
    let commission = match p.role {
        Role::Provider => Some(settlement::find_commission(
            db, me, &p.id, req.config, req.now,
        )?),
        _ => None,
    };
    let here = format!("/principals/{}", p.id);
    let content = html! {
        dl {
            dt { "Id" } dd { code { (p.id) } }
            dt { "Role" } dd { (name_of(&p.role)) @if let Some(a) = p.account_type { " (" (name_of(&a)) ")" } }
            dt { "Since" } dd { (time(&p.created_at)) }
            dt { "Access" } dd { (access(&p)) }
        }
        section {
            h2 { "Access" }
            p.hint { "Disabling stops its token and ends its console sessions at once; what it made stays. Enabled again, its token works again and it signs in anew." }
            div.actions { (access_form(chrome, &p, &here)) (rotate_form(chrome, &p)) }
        }
        @if let Some(c) = &commission {
            (commission_section(chrome, &p, c, req.config.commission_rate, refused))
        }
    };
    let status = refused.map_or(StatusCode::OK, |(_, _, e)| e.status());
    Ok(html(status, page(chrome, &p.name, content)))
}

/// A provider's commission: the rate in force this month and whose, its history, and the forms
/// setting its own rate (with a refusal's values and errors) or returning it to the
/// deployment's `default_rate`.
fn commission_section(
    chrome: &Chrome,
    p: &Principal,
    c: &Commission,
    default_rate: Decimal,
    refused: Option<RefusedRate>,
) -> Markup {
    let own_rate = (c.source == RateSource::Provider).then(|| c.rate.to_string());
    let values = match refused {
        Some((rate, month, _)) => serde_json::json!({ "rate": rate, "effective_from": month }),
        None => serde_json::json!({ "rate": own_rate, "effective_from": c.month }),
    };
    let errors = refused.map_or(&[][..], |(_, _, e)| e.errors.as_slice());
    let form = Form::new(&values, errors);
    html! {
        section {
            h2 { "Commission" }
            p { "In " (c.month) " the marketplace keeps " strong { (percent(c.rate)) } " of this provider's product fees"
                @match c.source {
                    RateSource::Provider => { ": a rate of its own (the deployment's is " (percent(default_rate)) ")." }
                    RateSource::Default => { ": the deployment's rate." }
                }
                " Each month settles at the rate in force for it: the latest set from that month or before." }
            @if !c.rates.is_empty() {
                div.table-wrap {
                    table {
                        caption { "Its rates" }
                        thead { tr { th scope="col" { "From" } th scope="col" { "Rate" } th scope="col" { "Set" } } }
                        tbody {
                            @for r in &c.rates {
                                tr {
                                    td { (r.effective_from) }
                                    td { @match r.rate { Some(rate) => { (percent(rate)) } None => { "the deployment's" } } }
                                    td { (time(&r.set_at)) br; small { (r.set_by) } }
                                }
                            }
                        }
                    }
                }
            }
            (form.summary(refused.map(|(_, _, e)| e)))
            form.narrow method="post" action={ "/principals/" (p.id) "/commission" } {
                (chrome.csrf_field())
                (form.text("rate", "Its own rate", Some("A decimal from 0 up to (not including) 1, at most 6 decimal places: 0.15 is 15%. Empty returns it to the deployment's rate.")))
                (form.text("effective_from", "From the month (YYYY-MM)", Some("The first month it settles; a month whose statement is written already cannot change.")))
                button type="submit" { "Set the rate" }
            }
            @if c.source == RateSource::Provider {
                form method="post" action={ "/principals/" (p.id) "/commission" } {
                    (chrome.csrf_field())
                    input type="hidden" name="rate" value="";
                    input type="hidden" name="effective_from" value=(c.month);
                    button.secondary type="submit" { "Use the deployment's rate (" (percent(default_rate)) ") from " (c.month) }
                }
            }
            p { a href={ "/settlements?provider_id=" (p.id) } { "Its statements" } }
        }
    }
}

/// `GET /principals/{id}`.
pub(crate) fn principal(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    principal_page(req, chrome, me, id, None)
}

/// `POST /principals/{id}/disable` and `/enable`: the principal's token and console sessions
/// stop at once, or its token works again. The built-in operator is the deployment's (409
/// `BuiltInPrincipal`, shown on the principals page; nothing changes).
pub(crate) fn set_disabled(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    id: &str,
    disabled: bool,
) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    match identity::set_disabled(req.db()?, id, disabled, req.now) {
        Ok(p) => redirect(&back_to(req, format!("/principals/{}", p.id))),
        Err(e) if e.status() == StatusCode::CONFLICT => refused(req, chrome, &e),
        Err(e) => Err(e),
    }
}

/// `POST /principals/{id}/commission`: a provider's own rate, or (empty) the deployment's, from
/// a month on (empty: the current one).
pub(crate) fn set_commission(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    id: &str,
) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    let typed = field(req, "rate").unwrap_or_default();
    let month = field(req, "effective_from").unwrap_or_default();
    let rate = Some(typed.trim()).filter(|r| !r.is_empty());
    let from = Some(month.trim()).filter(|m| !m.is_empty());
    let set = settlement::set_commission(req.db()?, me, id, (rate, from), req.config, req.now);
    match set {
        Ok(c) => redirect(&format!("/principals/{}", c.provider_id)),
        Err(e) if matches!(e.status(), StatusCode::BAD_REQUEST | StatusCode::CONFLICT) => {
            principal_page(req, chrome, me, id, Some((&typed, &month, &e)))
        }
        Err(e) => Err(e),
    }
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
            Shown {
                issued: Some((&p, token.reveal())),
                ..Shown::default()
            },
        ),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => principals_page(
            req,
            chrome,
            Shown {
                values: Some(&values),
                create_refused: Some(&e),
                ..Shown::default()
            },
        ),
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
        Shown {
            issued: Some((&target, token.reveal())),
            ..Shown::default()
        },
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
    let grace = req.config.arrears_grace_hours;
    match billing::collection::top_up(req.db()?, me, id, amount, grace, req.now) {
        Ok(_) => redirect("/principals"),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => refused(req, chrome, &e),
        Err(e) => Err(e),
    }
}
