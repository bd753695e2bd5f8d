//! A provider's services and products: the product's overview with its per-step completeness,
//! warnings, submissions and review history.

use http::StatusCode;
use maud::{Markup, html};

use super::listing::{product_name, status, warnings};
use super::operator::history;
use crate::console::form::{Form, field};
use crate::console::format::{name_of, time, words};
use crate::console::http::{Req, Resp, html, redirect};
use crate::console::layout::{Chrome, page};
use crate::console::widgets::{next_page, paged};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{Principal, Role};
use crate::listing::product::{self, ProductView};
use crate::listing::service::{self, ServiceRequest};
use crate::listing::{ProductStatus, Step};
use crate::review::{self, Stage};
use crate::validate::parse_json;

const PAGE: usize = 50;

/// A service a provider may paste, as the platform describes it.
const SERVICE_EXAMPLE: &str = r#"{
  "name": "Acme Vector DB",
  "service_method": "private",
  "regions": ["cn-hangzhou"],
  "templates": [{"id": "tpl-standard", "name": "Standard", "visibility": "public",
    "resources": [{"type": "ecs", "spec": "ecs.g7.large", "count": 2, "hourly_fee": "0.80"}],
    "plans": [{"id": "plan-basic", "name": "Basic"}]}]
}"#;

fn services_page(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    spec: &str,
    problem: Option<&ApiError>,
) -> ApiResult<Resp> {
    let found = service::list(req.db()?, me, req.query("cursor"), PAGE + 1)?;
    let (services, next) = paged(found, PAGE, |s| s.id.clone());
    let values = serde_json::json!({ "spec": spec });
    let errors = problem.map_or(&[][..], |p| p.errors.as_slice());
    let form = Form::new(&values, errors);
    let content = html! {
        @if services.is_empty() { p { "No service yet." } }
        @for s in &services {
            @let spec = s.spec.get();
            section.card {
                h2 { (spec.name) }
                p.meta { (s.id) " · " (name_of(&spec.service_method)) " · regions " (spec.regions.join(", ")) }
                ul {
                    @for t in &spec.templates {
                        li { "Template " strong { (t.name) } " (" (name_of(&t.visibility)) "): "
                            (t.resources.len()) " resources, " (t.plans.len()) " plans" }
                    }
                }
            }
        }
        (next_page(req, next.as_deref()))
        @if me.role == Role::Provider {
            section {
                h2 { "Register a service" }
                p { "Paste the service as the platform describes it (JSON): its name, method, regions and templates with their resources and plans." }
                (form.summary(problem))
                form method="post" action="/services" {
                    (chrome.csrf_field())
                    (form.textarea("spec", "Service definition (JSON)", None))
                    button type="submit" { "Register" }
                }
            }
        }
    };
    let status = problem.map_or(StatusCode::OK, ApiError::status);
    Ok(html(status, page(chrome, "Services", content)))
}

/// `GET /services`.
pub(crate) fn services(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Provider, Role::Operator])?;
    services_page(req, chrome, me, SERVICE_EXAMPLE, None)
}

/// `POST /services`.
pub(crate) fn create_service(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Provider])?;
    let spec = field(req, "spec").unwrap_or_default();
    let created = parse_json::<ServiceRequest>(spec.as_bytes())
        .and_then(|request| service::create(req.db()?, me, request, req.now));
    match created {
        Ok(_) => redirect("/services"),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            services_page(req, chrome, me, &spec, Some(&e))
        }
        Err(e) => Err(e),
    }
}

/// `GET /products`: the provider's products with their status, and a new one from a service.
pub(crate) fn products(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Provider, Role::Operator])?;
    let db = req.db()?;
    let found = product::list(db, me, None, req.query("cursor"), PAGE + 1)?;
    let (items, next) = paged(found, PAGE, |p| p.id.clone());
    let mut views = Vec::with_capacity(items.len());
    for p in &items {
        views.push(product::find(db, me, &p.id)?);
    }
    let services = service::list(db, me, None, crate::console::pages::MANY)?;
    Ok(html(
        StatusCode::OK,
        page(
            chrome,
            "Products",
            html! {
                @if views.is_empty() { p { "No product yet." } }
                @else {
                    div.table-wrap {
                        table {
                            thead { tr {
                                th scope="col" { "Product" } th scope="col" { "Status" } th scope="col" { "Ready for review" }
                                th scope="col" { "Updated" }
                            } }
                            tbody {
                                @for v in &views {
                                    tr {
                                        td { a href={ "/products/" (v.product.id) } { (product_name(v)) } }
                                        td { span.status { (status(v)) } }
                                        td { (if v.complete { "yes" } else { "not yet" }) }
                                        td { (time(&v.product.updated_at)) }
                                    }
                                }
                            }
                        }
                    }
                }
                (next_page(req, next.as_deref()))
                @if me.role == Role::Provider {
                    section {
                        h2 { "List a service" }
                        @if services.is_empty() { p { a href="/services" { "Register a service" } " first." } }
                        @else {
                            form.narrow method="post" action="/products" {
                                (chrome.csrf_field())
                                div.field {
                                    label for="service_id" { "Service" }
                                    select id="service_id" name="service_id" {
                                        @for s in &services { option value=(s.id) { (s.spec.get().name) " (" (s.id) ")" } }
                                    }
                                }
                                button type="submit" { "Create a draft product" }
                            }
                        }
                    }
                }
            },
        ),
    ))
}

/// `POST /products`.
pub(crate) fn create_product(req: &Req, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Provider])?;
    let service_id = field(req, "service_id").unwrap_or_default();
    let view = product::create(req.db()?, me, &service_id, req.now)?;
    redirect(&format!("/products/{}/steps/access", view.product.id))
}

/// The five steps with their completeness, linking to each step's form.
pub(crate) fn steps_nav(view: &ProductView, current: Option<Step>) -> Markup {
    html! {
        nav.steps aria-label="Listing steps" {
            ol {
                @for (i, step) in Step::ALL.into_iter().enumerate() {
                    @let c = &view.completeness[&step];
                    @let complete = c.complete;
                    li.complete[complete] {
                        a href={ "/products/" (view.product.id) "/steps/" (step.as_str()) }
                            aria-current=[(current == Some(step)).then_some("step")] {
                            (i + 1) ". " (words(step.as_str()))
                        }
                        " "
                        @if complete { span.done { "✓ complete" } }
                        @else {
                            span.missing { "missing: "
                                (c.missing.iter().map(|m| words(m)).collect::<Vec<_>>().join(", ")) }
                        }
                    }
                }
            }
            p { a href={ "/products/" (view.product.id) "/media" } { "Media" } " · "
                a href={ "/products/" (view.product.id) "/sales" } { "Sales settings" } " · "
                a href={ "/products/" (view.product.id) } { "Overview" } }
        }
    }
}

fn product_page(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    id: &str,
    problem: Option<&ApiError>,
) -> ApiResult<Resp> {
    let db = req.db()?;
    let view = product::find(db, me, id)?;
    let reviews = review::list(
        db,
        me,
        Some(&view.product.id),
        None,
        None,
        crate::console::pages::MANY,
    )?;
    let stage = match view.product.status {
        ProductStatus::Draft | ProductStatus::CategoryRejected => {
            Some((Stage::Category, "Submit for category review"))
        }
        ProductStatus::SelfTest | ProductStatus::FeatureRejected => {
            Some((Stage::Feature, "Submit for feature review"))
        }
        _ => None,
    };
    let form = Form::new(
        &serde_json::Value::Null,
        problem.map_or(&[][..], |p| p.errors.as_slice()),
    );
    let after_publication = super::pricing::section(req, chrome, me, id, view.product.status)?;
    let content = html! {
        p { "Status: " span.status { (status(&view)) } }
        (steps_nav(&view, None))
        (warnings(&view))
        @if me.role == Role::Provider {
            @if let Some((stage, label)) = stage {
                section {
                    (form.summary(problem))
                    form method="post" action={ "/products/" (view.product.id) "/reviews" } {
                        (chrome.csrf_field())
                        input type="hidden" name="stage" value=(name_of(&stage));
                        button type="submit" { (label) }
                    }
                }
            }
        }
        (after_publication)
        section {
            h2 { "Reviews" }
            @if reviews.is_empty() { p { "Not submitted yet." } }
            @for r in &reviews {
                article.review {
                    h3 { (words(&name_of(&r.stage))) " review: " (name_of(&r.status)) }
                    @if let Some(reason) = &r.reason { p { "Reason: " q { (reason) } } }
                    (history(&r.history))
                }
            }
        }
    };
    let status = problem.map_or(StatusCode::OK, ApiError::status);
    Ok(html(status, page(chrome, &product_name(&view), content)))
}

/// `GET /products/{id}`.
pub(crate) fn product(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Provider, Role::Operator])?;
    product_page(req, chrome, me, id, None)
}

/// `POST /products/{id}/reviews`: submits the listing for its next review; what is missing or
/// refused is shown on the product's page.
pub(crate) fn submit(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Provider])?;
    let stage = match field(req, "stage").as_deref() {
        Some("category") => Stage::Category,
        Some("feature") => Stage::Feature,
        _ => {
            return Err(ApiError::validation(vec![FieldError::new(
                "stage",
                Code::InvalidValue,
                "category or feature",
            )]));
        }
    };
    match review::submit(req.db()?, me, id, stage, req.now) {
        Ok(_) => redirect(&format!("/products/{id}")),
        Err(e) if matches!(e.status().as_u16(), 400 | 409) => {
            product_page(req, chrome, me, id, Some(&e))
        }
        Err(e) => Err(e),
    }
}
