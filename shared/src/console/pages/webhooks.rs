//! Webhooks: a principal's endpoints for signed events, the secret shown once when one is made,
//! and each endpoint's deliveries with every attempt.

use http::StatusCode;
use maud::{Markup, html};

use crate::console::format::{time, unix_time};
use crate::console::http::{Req, Resp, html, redirect};
use crate::console::layout::{Chrome, page};
use crate::console::widgets::{next_page, paged};
use crate::error::{ApiError, ApiResult};
use crate::identity::{Principal, Role};
use crate::webhook::{self, EventType, Webhook, WebhookRequest};

const PAGE: usize = 50;

fn subscriber(me: &Principal) -> ApiResult<()> {
    me.require(&[Role::Provider, Role::Customer, Role::Operator])
}

/// The form that registers an endpoint: a URL and the event types the visitor's role may take.
fn new_form(chrome: &Chrome, me: &Principal, problem: Option<&ApiError>) -> Markup {
    html! {
        section {
            h2 { "Add an endpoint" }
            @if let Some(p) = problem {
                div.summary role="alert" tabindex="-1" { ul {
                    @for e in &p.errors { li { code { (e.field) } ": " (e.message) } }
                    @if p.errors.is_empty() { li { (p.detail) } }
                } }
            }
            form.narrow method="post" action="/webhooks" {
                (chrome.csrf_field())
                div.field {
                    label for="url" { "URL" }
                    input type="url" id="url" name="url" required maxlength="2000" placeholder="https://hooks.example.com/nestmarket";
                }
                fieldset {
                    legend { "Events" }
                    @for kind in EventType::ALL.into_iter().filter(|k| k.concerns(me.role)) {
                        div.field.check {
                            input type="checkbox" id={ "event-" (kind.as_str()) } name="events" value=(kind.as_str());
                            label for={ "event-" (kind.as_str()) } { code { (kind.as_str()) } }
                        }
                    }
                }
                button type="submit" { "Add" }
            }
        }
    }
}

fn list_page(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    created: Option<&Webhook>,
    problem: Option<&ApiError>,
) -> ApiResult<Resp> {
    let found = webhook::list(req.db()?, me, req.query("cursor"), PAGE + 1)?;
    let (hooks, next) = paged(found, PAGE, |w| w.id.clone());
    let content = html! {
        p.hint { "Each event is POSTed as JSON with a " code { "Nestmarket-Signature: t=…,v1=…" } " header: the hex HMAC-SHA256 of " code { "t.body" } " under the endpoint's secret. An endpoint that does not answer 2xx gets it again, with growing pauses, for 72 hours." }
        @if let Some(w) = created {
            div.created role="status" {
                p { "Endpoint " (w.id) " added. Its signing secret, shown this once:" }
                p { code.secret { (w.secret.as_deref().unwrap_or_default()) } }
            }
        }
        @if hooks.is_empty() { p { "No endpoint yet." } }
        @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Endpoint" } th scope="col" { "URL" } th scope="col" { "Events" } th scope="col" { "Added" } } }
                    tbody {
                        @for w in &hooks {
                            tr {
                                td { a href={ "/webhooks/" (w.id) } { (w.id) } }
                                td { code { (w.url) } }
                                td { @for e in &w.events { code { (e.as_str()) } " " } }
                                td { (time(&w.created_at)) }
                            }
                        }
                    }
                }
            }
        }
        (next_page(req, next.as_deref()))
        (new_form(chrome, me, problem))
    };
    let status = problem.map_or(StatusCode::OK, ApiError::status);
    Ok(html(status, page(chrome, "Webhooks", content)))
}

/// `GET /webhooks`.
pub(crate) fn list(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    subscriber(me)?;
    list_page(req, chrome, me, None, None)
}

/// `POST /webhooks`: the endpoint and its secret, shown once; a refusal beside the form.
pub(crate) fn create(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    subscriber(me)?;
    let form = req.form();
    let value = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let request = WebhookRequest {
        url: value("url"),
        events: Some(
            form.iter()
                .filter(|(k, _)| k == "events")
                .map(|(_, v)| v.clone())
                .collect(),
        ),
    };
    let hosts = req.config.webhook_hosts.as_deref();
    match webhook::create(req.db()?, me, request, hosts, req.now) {
        Ok(created) => list_page(req, chrome, me, Some(&created), None),
        Err(e) if matches!(e.status().as_u16(), 400 | 409) => {
            list_page(req, chrome, me, None, Some(&e))
        }
        Err(e) => Err(e),
    }
}

/// `GET /webhooks/{id}`: the endpoint's deliveries, newest first, each with every attempt.
pub(crate) fn show(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    subscriber(me)?;
    let db = req.db()?;
    let hook = webhook::find(db, me, id)?;
    let found = webhook::deliveries(db, me, id, req.query("cursor"), PAGE + 1)?;
    let (deliveries, next) = paged(found, PAGE, |d| d.event_id.clone());
    let content = html! {
        dl {
            dt { "URL" } dd { code { (hook.url) } }
            dt { "Events" } dd { @for e in &hook.events { code { (e.as_str()) } " " } }
            dt { "Added" } dd { (time(&hook.created_at)) }
        }
        h2 { "Deliveries" }
        @if deliveries.is_empty() { p { "Nothing delivered yet." } }
        @else {
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "Event" } th scope="col" { "Type" } th scope="col" { "Status" }
                        th scope="col" { "Attempts" } th scope="col" { "Next attempt" }
                    } }
                    tbody {
                        @for d in &deliveries {
                            tr {
                                td { code { (d.event_id) } }
                                td { code { (d.event_type.as_str()) } }
                                td { span.status { (crate::console::format::name_of(&d.status)) } }
                                td { ol {
                                    @for a in &d.attempts {
                                        li { (time(&a.attempted_at)) ": "
                                            @match (a.status_code, &a.error) {
                                                (Some(code), _) => { "answered " (code) }
                                                (None, Some(why)) => { "no answer (" (why) ")" }
                                                (None, None) => { "no answer" }
                                            }
                                        }
                                    }
                                } }
                                td { @if let Some(at) = &d.next_attempt_at { (time(at)) } }
                            }
                        }
                    }
                }
            }
        }
        (next_page(req, next.as_deref()))
        form method="post" action={ "/webhooks/" (hook.id) "/delete" } {
            (chrome.csrf_field())
            button.danger type="submit" { "Delete this endpoint" }
        }
        p.hint { "Times are " (unix_time(req.now.timestamp())) " now." }
    };
    Ok(html(
        StatusCode::OK,
        page(chrome, &format!("Webhook {}", hook.id), content),
    ))
}

/// `POST /webhooks/{id}/delete`.
pub(crate) fn delete(req: &Req, me: &Principal, id: &str) -> ApiResult<Resp> {
    subscriber(me)?;
    webhook::delete(req.db()?, me, id, req.now)?;
    redirect("/webhooks")
}
