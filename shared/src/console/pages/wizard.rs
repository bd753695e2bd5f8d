//! The five-step listing wizard. Each step is one form whose inputs are named by the JSON paths
//! of the step's body; the domain validates the step whole, and every refused field is shown
//! beside its input at once, with a summary linking to each.

use http::StatusCode;
use maud::{Markup, html};
use serde_json::Value;

use super::listing::{product_name, warnings};
use super::provider::steps_nav;
use crate::console::form::{Form, Kind, to_json, value_at};
use crate::console::format::words;
use crate::console::http::{Req, Resp, html, redirect};
use crate::console::layout::{Chrome, page};
use crate::error::{ApiError, ApiResult};
use crate::identity::{Principal, Role};
use crate::listing::Step;
use crate::listing::categories::CATEGORIES;
use crate::listing::product::{self, ProductView};
use crate::listing::service::{self, Visibility};

fn step_of(segment: &str) -> ApiResult<Step> {
    Step::parse(segment).ok_or_else(|| ApiError::not_found("step"))
}

/// How each input of a step becomes JSON.
fn kind(name: &str) -> Kind {
    match name {
        "enterprise_only" | "region_selectable" => Kind::Bool,
        "tags" | "seo_keywords" => Kind::List,
        _ => Kind::Text,
    }
}

/// How many rows a repeated group shows: those it has, and a spare one to add with.
fn rows(values: &Value, path: &str) -> usize {
    value_at(values, path)
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
        + 1
}

fn access(form: &Form, templates: &[(String, String)]) -> Markup {
    let mut options: Vec<(&str, &str)> = vec![("", "No template chosen")];
    options.extend(
        templates
            .iter()
            .map(|(id, label)| (id.as_str(), label.as_str())),
    );
    html! {
        (form.text("product_name", "Product name", Some("1 to 60 characters, as customers will see it.")))
        (form.select("product_type", "Product type", &[("saas", "SaaS")]))
        (form.select("access_method", "Access method", &[("compute_nest", "Deployed by the platform (Compute Nest)")]))
        (form.select("service_method", "Service method", &[("private", "Private"), ("fully_managed", "Fully managed")]))
        (form.select("service_template_id", "Service template", &options))
        (form.text("acceleration_plan_id", "Acceleration plan id (optional)", None))
    }
}

fn general(form: &Form) -> Markup {
    html! {
        (form.textarea("short_description", "Short description", Some("At most 300 characters; shown in the catalog.")))
        (form.textarea("highlights", "Highlights", Some("At most 1,000 characters.")))
        (form.textarea("description", "Description", None))
        fieldset {
            legend { "Support offered" }
            (form.group_errors("support_offered"))
            (form.text("support_offered.service_scope", "Service scope", None))
            (form.text("support_offered.time_range", "Hours", None))
            (form.text("support_offered.business_scope", "Business scope", None))
            (form.text("support_offered.billing_scope", "Billing scope", None))
        }
        fieldset {
            legend { "Edition features (optional)" }
            (form.group_errors("edition_features"))
            @for i in 0..rows(form.values, "edition_features") {
                div.row {
                    (form.text(&format!("edition_features[{i}].edition"), "Edition", None))
                    (form.text(&format!("edition_features[{i}].description"), "What it offers", None))
                }
            }
        }
        fieldset {
            legend { "Cases (optional)" }
            (form.group_errors("cases"))
            @for i in 0..rows(form.values, "cases") {
                div.row {
                    (form.text(&format!("cases[{i}].title"), "Title", None))
                    (form.text(&format!("cases[{i}].description"), "Story", None))
                    (form.input(&format!("cases[{i}].url"), "Link", None, "url"))
                }
            }
        }
        (form.text("live_stream_id", "Live stream id (optional)", None))
    }
}

fn category(form: &Form) -> Markup {
    let options: Vec<(&str, &str)> = std::iter::once(("", "Choose a category"))
        .chain(CATEGORIES.iter().map(|c| (c.id, c.name)))
        .collect();
    html! {
        (form.select("category", "Category", &options))
        (form.checkbox("region_selectable", "Customers choose the region when ordering"))
        (form.text("tags", "Tags", Some("Up to 10, separated by commas.")))
        (form.text("seo_keywords", "Search keywords", Some("Up to 10, separated by commas.")))
        (form.textarea("seo_description", "Search description (optional)", Some("At most 300 characters.")))
    }
}

fn pricing(form: &Form) -> Markup {
    html! {
        (form.select("pricing_plan", "Pricing plan", &[("by_usage", "Pay as you go")]))
        (form.checkbox("enterprise_only", "Sold to enterprise accounts only"))
        (form.select("billing_period", "Billing period", &[("hour", "Hour"), ("day", "Day")]))
        (form.text("currency", "Currency", Some("Three letters; CNY when empty.")))
        (form.group_errors("billable_items"))
        @for i in 0..rows(form.values, "billable_items") {
            @let item = format!("billable_items[{i}]");
            fieldset.item {
                legend { "Billable item " (i + 1) }
                (form.group_errors(&item))
                (form.text(&format!("{item}.code"), "Code (the metering key)", Some("A letter, then letters or digits: Frequency, Period, Storage…")))
                (form.text(&format!("{item}.name"), "Name", None))
                (form.select(&format!("{item}.tier_mode"), "Tier mode", &[("graduated", "Graduated: each unit at its tier"), ("volume", "Volume: all units at the tier of the total")]))
                (form.group_errors(&format!("{item}.tiers")))
                @for j in 0..rows(form.values, &format!("{item}.tiers")) {
                    @let tier = format!("{item}.tiers[{j}]");
                    div.row {
                        (form.text(&format!("{tier}.up_to"), &format!("Tier {} up to (empty: no limit)", j + 1), None))
                        (form.text(&format!("{tier}.unit_price"), &format!("Tier {} unit price", j + 1), None))
                    }
                }
            }
        }
        p.hint { "Leave a row empty to leave it out; save to get another." }
    }
}

fn agreement(form: &Form) -> Markup {
    html! {
        fieldset {
            legend { "End-user license agreement" }
            (form.group_errors("eula"))
            (form.select("eula.source", "Source", &[("template", "The marketplace's template"), ("custom", "Our own text")]))
            (form.text("eula.template_id", "Template id (template only)", None))
            (form.textarea("eula.amendments", "Amendments (template only, optional)", None))
            (form.textarea("eula.text", "Our EULA (own text only)", None))
        }
        (form.text("icp_filing", "ICP filing", None))
    }
}

/// Keeps only the EULA fields of the chosen source: the other source's inputs are not part of
/// the body.
fn eula_of_its_source(body: &mut Value) {
    let Some(eula) = body.get_mut("eula").and_then(Value::as_object_mut) else {
        return;
    };
    let keep: &[&str] = match eula.get("source").and_then(Value::as_str) {
        Some("custom") => &["source", "text"],
        _ => &["source", "template_id", "amendments"],
    };
    eula.retain(|k, _| keep.contains(&k.as_str()));
}

/// Drops the pricing form's spare item row left blank: its tier mode is a select, sent with its
/// first choice even when nothing else of the row was filled, which alone would make the row an
/// item with no code, name or tiers. A first row is kept, so that a blank form is refused beside
/// its fields.
fn spare_item_dropped(body: &mut Value) {
    let Some(items) = body.get_mut("billable_items").and_then(Value::as_array_mut) else {
        return;
    };
    let blank = |item: &Value| {
        item.as_object()
            .is_some_and(|fields| fields.keys().all(|k| k == "tier_mode"))
    };
    if items.len() > 1 && items.last().is_some_and(blank) {
        items.pop();
    }
}

fn wizard_page(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    view: &ProductView,
    step: Step,
    values: &Value,
    problem: Option<&ApiError>,
) -> ApiResult<Resp> {
    let form = Form::new(values, problem.map_or(&[][..], |p| p.errors.as_slice()));
    let fields = match step {
        Step::Access => {
            let service = service::find(req.db()?, me, &view.product.service_id)?;
            let templates: Vec<(String, String)> = service
                .spec
                .get()
                .templates
                .iter()
                .map(|t| {
                    let visibility = if t.visibility == Visibility::Public {
                        "public"
                    } else {
                        "private"
                    };
                    (t.id.clone(), format!("{} ({visibility})", t.name))
                })
                .collect();
            access(&form, &templates)
        }
        Step::General => general(&form),
        Step::Category => category(&form),
        Step::Pricing => pricing(&form),
        Step::Agreement => agreement(&form),
    };
    let content = html! {
        (steps_nav(view, Some(step)))
        (warnings(view))
        (form.summary(problem))
        form.wizard method="post" action={ "/products/" (view.product.id) "/steps/" (step.as_str()) } novalidate {
            (chrome.csrf_field())
            (fields)
            button type="submit" { "Save " (words(step.as_str())) }
        }
    };
    let title = format!("{}: {}", product_name(view), words(step.as_str()));
    let status = problem.map_or(StatusCode::OK, ApiError::status);
    Ok(html(status, page(chrome, &title, content)))
}

/// `GET /products/{id}/steps/{step}`: the step as stored.
pub(crate) fn show(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    id: &str,
    step: &str,
) -> ApiResult<Resp> {
    me.require(&[Role::Provider])?;
    let step = step_of(step)?;
    let view = product::find(req.db()?, me, id)?;
    // The form's inputs are named by the step's JSON paths: its stored shape fills them.
    let values = view
        .step(step)
        .map(serde_json::to_value)
        .transpose()
        .map_err(ApiError::internal)?
        .unwrap_or(Value::Null);
    wizard_page(req, chrome, me, &view, step, &values, None)
}

/// `POST /products/{id}/steps/{step}`: the step written whole, or shown again with every refusal.
pub(crate) fn save(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    id: &str,
    step: &str,
) -> ApiResult<Resp> {
    me.require(&[Role::Provider])?;
    let step = step_of(step)?;
    let mut body = to_json(&req.form(), kind)?;
    match step {
        Step::Agreement => eula_of_its_source(&mut body),
        Step::Pricing => spare_item_dropped(&mut body),
        _ => {}
    }
    let db = req.db()?;
    let body_bytes = body.to_string();
    // A published product's new prices are a pricing version (shown on its page).
    if step == Step::Pricing {
        let notice = req.config.price_increase_notice_days;
        match crate::catalog::versions::reprice(db, me, id, body_bytes.as_bytes(), notice, req.now)
        {
            Ok(Some(_)) => return redirect(&format!("/products/{id}")),
            Ok(None) => {}
            Err(e) if matches!(e.status().as_u16(), 400 | 409) => {
                let view = product::find(db, me, id)?;
                return wizard_page(req, chrome, me, &view, step, &body, Some(&e));
            }
            Err(e) => return Err(e),
        }
    }
    let written = product::write_step(
        db,
        me,
        id,
        step,
        body_bytes.as_bytes(),
        req.now,
        &crate::catalog::follow_step,
    );
    match written {
        Ok(_) => {
            let next = Step::ALL.iter().skip_while(|s| **s != step).nth(1);
            redirect(&match next {
                Some(next) => format!("/products/{id}/steps/{}", next.as_str()),
                None => format!("/products/{id}"),
            })
        }
        Err(e) if matches!(e.status().as_u16(), 400 | 409) => {
            let view = product::find(db, me, id)?;
            wizard_page(req, chrome, me, &view, step, &body, Some(&e))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_chosen_sources_eula_fields_are_sent() {
        let mut body = json!({"eula": {"source": "custom", "text": "t", "template_id": "x"}});
        eula_of_its_source(&mut body);
        assert_eq!(body, json!({"eula": {"source": "custom", "text": "t"}}));
        let mut body = json!({"eula": {"source": "template", "text": "t", "template_id": "x"}});
        eula_of_its_source(&mut body);
        assert_eq!(
            body,
            json!({"eula": {"source": "template", "template_id": "x"}})
        );
    }

    #[test]
    fn a_pricing_forms_spare_item_left_blank_is_no_item() {
        let form = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let mut body = to_json(&pairs, kind).expect("a form");
            spare_item_dropped(&mut body);
            body
        };
        let stored = [
            ("billable_items[0].code", "Frequency"),
            ("billable_items[0].name", "API calls"),
            ("billable_items[0].tier_mode", "graduated"),
            ("billable_items[0].tiers[0].unit_price", "0.6"),
            ("billable_items[0].tiers[1].unit_price", ""),
        ];
        let spare = [
            ("billable_items[1].code", ""),
            ("billable_items[1].name", ""),
            ("billable_items[1].tier_mode", "graduated"),
            ("billable_items[1].tiers[0].unit_price", ""),
        ];
        let body = form(&[&stored[..], &spare[..]].concat());
        assert_eq!(
            body["billable_items"],
            json!([{"code": "Frequency", "name": "API calls", "tier_mode": "graduated",
                    "tiers": [{"unit_price": "0.6"}]}])
        );
        // A second item filled in is one; a blank first row is kept, to be refused field by field.
        let named = [("billable_items[1].code", "Storage")];
        let body = form(&[&stored[..], &spare[..], &named[..]].concat());
        assert_eq!(body["billable_items"][1]["code"], "Storage");
        let body = form(&[
            ("billable_items[0].code", ""),
            ("billable_items[0].tier_mode", "graduated"),
        ]);
        assert_eq!(body["billable_items"], json!([{"tier_mode": "graduated"}]));
    }

    #[test]
    fn a_refused_pricing_step_shows_each_error_beside_its_tier() {
        let values = json!({"billable_items": [{"code": "Frequency", "tiers": [{"up_to": "10", "unit_price": "-1"}]}]});
        let errors = [crate::error::FieldError::new(
            "billable_items[0].tiers[0].unit_price",
            crate::error::Code::InvalidValue,
            "0 or more",
        )];
        let html = pricing(&Form::new(&values, &errors)).into_string();
        assert!(html.contains(r#"id="f-billable-items-0--tiers-0--unit-price" name="billable_items[0].tiers[0].unit_price" type="text" value="-1" aria-invalid="true""#), "{html}");
        assert!(html.contains("0 or more"));
        // A spare tier and a spare item to add with.
        assert!(html.contains(r#"name="billable_items[0].tiers[1].up_to""#));
        assert!(html.contains(r#"name="billable_items[1].code""#));
    }
}
