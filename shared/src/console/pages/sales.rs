//! Sales settings per billable item: how its usage is reported, which templates and plans it
//! applies to, and whether it is in effect, and why.

use http::StatusCode;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::listing::{product_name, status};
use super::provider::steps_nav;
use crate::console::form::{Form, Kind, to_json};
use crate::console::format::{name_of, words};
use crate::console::http::{Req, Resp, html, redirect};
use crate::console::layout::{Chrome, page};
use crate::error::{ApiError, ApiResult};
use crate::identity::{Principal, Role};
use crate::listing::product;
use crate::listing::service;
use crate::sales::{self, ItemSettings, PlatformSource, ReportingMethod};

/// A refused setting of one item, shown again with what was sent.
struct Refused<'a> {
    code: &'a str,
    values: Value,
    problem: &'a ApiError,
}

fn reporting_text(r: Option<&ReportingMethod>) -> String {
    match r {
        None => "not set: every item needs one before the feature review".to_owned(),
        Some(ReportingMethod::ServiceProvider) => {
            "pushed by the provider (PushMeteringData)".to_owned()
        }
        Some(ReportingMethod::ComputeNest(PlatformSource::Prometheus(q))) => format!(
            "reported by the platform from Prometheus: {} at {}",
            q.selector.as_str(),
            q.endpoint.as_str()
        ),
        Some(ReportingMethod::ComputeNest(source)) => {
            format!("reported by the platform: {}", words(source.name()))
        }
    }
}

/// Whether the item bills anyone, and why.
fn effect(item: &ItemSettings) -> Markup {
    let a = &item.associations;
    let with = [
        (!a.templates.is_empty()).then(|| format!("templates {}", a.templates.join(", "))),
        (!a.plans.is_empty()).then(|| format!("plans {}", a.plans.join(", "))),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" and ");
    html! {
        @if item.in_effect {
            strong { "In effect" } ": billed to instances of " (with)
            @if item.automatic_association { " (automatically: the service has a single template)" }
        } @else {
            strong { "Not in effect" } ": associated with no template or plan, so no instance is billed for it"
        }
    }
}

/// The reporting form's values: the method as the API shows it.
fn reporting_values(item: &ItemSettings) -> Value {
    item.reporting
        .as_ref()
        .and_then(|r| serde_json::to_value(r).ok())
        .unwrap_or_else(|| json!({}))
}

fn item_section(
    chrome: &Chrome,
    product_id: &str,
    item: &ItemSettings,
    choices: &(Vec<String>, Vec<String>),
    editable: bool,
    refused: Option<&Refused>,
) -> Markup {
    let code = item.item.code().as_str();
    let mine = refused.filter(|r| r.code == code);
    let values = mine.map_or_else(|| reporting_values(item), |r| r.values.clone());
    let form = Form::new(
        &values,
        mine.map_or(&[][..], |r| r.problem.errors.as_slice()),
    );
    let action = |setting: &str| format!("/products/{product_id}/sales/{code}/{setting}");
    html! {
        section.item id={ "item-" (code) } {
            h2 { (item.item.name()) " (" code { (code) } ")" }
            p { "Priced per " (item.price_unit) ", " (name_of(&item.item.tier_mode())) " tiers." }
            p { "Reporting: " (reporting_text(item.reporting.as_ref())) "." }
            p { (effect(item)) "." }
            @if editable {
                (form.summary(mine.map(|r| r.problem)))
                form.narrow method="post" action=(action("reporting")) {
                    (chrome.csrf_field())
                    (form.select("method", "Reported by", &[("service_provider", "The provider, through PushMeteringData"), ("compute_nest", "The platform")]))
                    (form.select("source", "Platform source", &[("", "—"), ("time", "Running time (Period only)"), ("bill", "Bill data"), ("prometheus", "Prometheus")]))
                    (form.text("prometheus.endpoint", "Prometheus endpoint", None))
                    (form.text("prometheus.query", "Prometheus metric selector", None))
                    button type="submit" { "Save reporting of " (code) }
                }
                form.narrow method="post" action=(action("associations")) {
                    (chrome.csrf_field())
                    fieldset {
                        legend { "Applies to" }
                        @for t in &choices.0 {
                            div.field.check {
                                input type="checkbox" id={ "t-" (code) "-" (t) } name="templates" value=(t)
                                    checked[item.associations.templates.contains(t)];
                                label for={ "t-" (code) "-" (t) } { "Template " (t) }
                            }
                        }
                        @for p in &choices.1 {
                            div.field.check {
                                input type="checkbox" id={ "p-" (code) "-" (p) } name="plans" value=(p)
                                    checked[item.associations.plans.contains(p)];
                                label for={ "p-" (code) "-" (p) } { "Plan " (p) }
                            }
                        }
                    }
                    button type="submit" { "Save associations of " (code) }
                }
            }
        }
    }
}

fn sales_page(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    id: &str,
    refused: Option<&Refused>,
) -> ApiResult<Resp> {
    let db = req.db()?;
    let view = product::find(db, me, id)?;
    let items = sales::items_of(db, me, id)?;
    let spec = service::find(db, me, &view.product.service_id)?.spec;
    let choices = (
        spec.get()
            .templates
            .iter()
            .map(|t| t.id.clone())
            .collect::<Vec<_>>(),
        spec.get()
            .templates
            .iter()
            .flat_map(|t| t.plans.iter().map(|p| p.id.clone()))
            .collect::<Vec<_>>(),
    );
    let refusal = sales::settings_refusal(view.product.status);
    let editable = refusal.is_none() && me.role == Role::Provider;
    let content = html! {
        (steps_nav(&view, None))
        p { "Status: " span.status { (status(&view)) } }
        @if let Some(r) = &refusal { p.hint { (r.detail) } }
        @if items.is_empty() { p { "Billable items come from the pricing step: write it first." } }
        @for item in &items { (item_section(chrome, id, item, &choices, editable, refused)) }
    };
    let status = refused.map_or(StatusCode::OK, |r| r.problem.status());
    Ok(html(
        status,
        page(
            chrome,
            &format!("{}: sales settings", product_name(&view)),
            content,
        ),
    ))
}

/// `GET /products/{id}/sales`.
pub(crate) fn show(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Provider, Role::Operator])?;
    sales_page(req, chrome, me, id, None)
}

/// The reporting body of the form: only what the chosen method and source take.
fn reporting_body(fields: &[(String, String)]) -> ApiResult<Value> {
    let mut body = to_json(fields, |_| Kind::Text)?;
    if let Some(o) = body.as_object_mut() {
        if o.get("method").and_then(Value::as_str) != Some("compute_nest") {
            o.remove("source");
        }
        if o.get("source").and_then(Value::as_str) != Some("prometheus") {
            o.remove("prometheus");
        }
    }
    Ok(body)
}

/// `POST /products/{id}/sales/{code}/{reporting|associations}`.
pub(crate) fn save(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    id: &str,
    code: &str,
    setting: &str,
) -> ApiResult<Resp> {
    me.require(&[Role::Provider])?;
    let fields = req.form();
    let db = req.db()?;
    let (values, saved) = match setting {
        "reporting" => {
            let body = reporting_body(&fields)?;
            let saved = sales::set_reporting(
                db,
                me,
                id,
                code,
                body.to_string().as_bytes(),
                req.config.prometheus_origin.as_deref(),
                req.now,
            );
            (body, saved)
        }
        "associations" => {
            let pick = |name: &str| {
                fields
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .collect::<Vec<_>>()
            };
            let body = json!({"templates": pick("templates"), "plans": pick("plans")});
            let saved =
                sales::set_associations(db, me, id, code, body.to_string().as_bytes(), req.now);
            (body, saved)
        }
        _ => return Err(ApiError::not_found("page")),
    };
    match saved {
        Ok(_) => redirect(&format!("/products/{id}/sales#item-{code}")),
        Err(e) if matches!(e.status().as_u16(), 400 | 409) => sales_page(
            req,
            chrome,
            me,
            id,
            Some(&Refused {
                code,
                values,
                problem: &e,
            }),
        ),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reporting_body_holds_only_what_its_method_takes() {
        let f = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            reporting_body(&f(&[
                ("method", "service_provider"),
                ("source", "time"),
                ("prometheus.query", "q")
            ]))
            .unwrap(),
            json!({"method": "service_provider"})
        );
        assert_eq!(
            reporting_body(&f(&[
                ("method", "compute_nest"),
                ("source", "prometheus"),
                ("prometheus.endpoint", "http://p"),
                ("prometheus.query", "q")
            ]))
            .unwrap(),
            json!({"method": "compute_nest", "source": "prometheus", "prometheus": {"endpoint": "http://p", "query": "q"}})
        );
    }
}
