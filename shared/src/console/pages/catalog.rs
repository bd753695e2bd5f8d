//! The public catalog: published products by search, category and tag, and a product's page
//! with its tiers and the hourly fees of the resources it deploys.

use maud::{Markup, html};
use serde_json::Value;

use crate::catalog::{self, CatalogFilter};
use crate::console::format::words;
use crate::console::http::{Req, Resp};
use crate::console::layout::{Chrome, ok};
use crate::error::ApiResult;
use crate::identity::Role;
use crate::listing::categories::CATEGORIES;

/// Products per catalog page.
const PAGE: usize = 24;

/// A JSON string's text (empty for anything else): catalog entries are JSON documents.
pub(crate) fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The link to the next page of a list, keeping the other query parameters.
pub(crate) fn next_page(req: &Req, next_cursor: Option<&str>) -> Markup {
    let Some(cursor) = next_cursor else {
        return html! {};
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in req.query.iter().filter(|(k, _)| k != "cursor") {
        query.append_pair(k, v);
    }
    query.append_pair("cursor", cursor);
    html! { p { a href={ "?" (query.finish()) } { "Next page →" } } }
}

/// `limit + 1` fetched rows: the page, and the cursor of the next one if there is one.
pub(crate) fn paged<T>(
    mut items: Vec<T>,
    limit: usize,
    id: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(&id);
        (items, next)
    } else {
        (items, None)
    }
}

/// `GET /catalog?q=&category=&tag=`.
pub(crate) fn list(req: &Req, chrome: &Chrome) -> ApiResult<Resp> {
    let filter = CatalogFilter {
        category: req.query("category").map(str::to_owned),
        tag: req.query("tag").map(str::to_owned),
        q: req.query("q").map(str::to_owned),
    };
    let found = catalog::search(req.db()?, &filter, req.query("cursor"), PAGE + 1)?;
    let (items, next) = paged(found, PAGE, |v| s(&v["id"]).to_owned());
    let current = filter.category.as_deref().unwrap_or("");
    Ok(ok(
        chrome,
        "Catalog",
        html! {
            form.filters method="get" action="/catalog" role="search" {
                div.field {
                    label for="q" { "Search" }
                    input id="q" name="q" type="search" value=(filter.q.as_deref().unwrap_or(""));
                }
                div.field {
                    label for="category" { "Category" }
                    select id="category" name="category" {
                        option value="" { "Any category" }
                        @for c in CATEGORIES {
                            option value=(c.id) selected[current == c.id] { (c.name) }
                        }
                    }
                }
                div.field {
                    label for="tag" { "Tag" }
                    input id="tag" name="tag" type="text" value=(filter.tag.as_deref().unwrap_or(""));
                }
                button type="submit" { "Find" }
            }
            @if items.is_empty() {
                p { "No published product matches." }
            }
            ul.cards {
                @for item in &items {
                    li.card {
                        img src=(s(&item["logo_url"])) alt="" width="64" height="64";
                        div {
                            h2 { a href={ "/catalog/" (s(&item["id"])) } { (s(&item["product_name"])) } }
                            p { (s(&item["short_description"])) }
                            p.meta {
                                (category_name(s(&item["category"])))
                                " · billed per " (s(&item["billing_period"]))
                                " in " (s(&item["currency"]))
                                @if item["enterprise_only"] == Value::Bool(true) { " · enterprises only" }
                            }
                            (tags(&item["tags"]))
                        }
                    }
                }
            }
            (next_page(req, next.as_deref()))
        },
    ))
}

fn category_name(id: &str) -> &str {
    CATEGORIES
        .iter()
        .find(|c| c.id == id)
        .map_or(id, |c| c.name)
}

fn tags(tags: &Value) -> Markup {
    html! {
        @if let Some(tags) = tags.as_array().filter(|t| !t.is_empty()) {
            ul.tags aria-label="Tags" {
                @for t in tags {
                    li { a href={ "/catalog?tag=" (form_urlencoded::byte_serialize(s(t).as_bytes()).collect::<String>()) } { (s(t)) } }
                }
            }
        }
    }
}

/// The tiers of one billable item, each from its lower bound (exclusive, the previous tier's
/// `up_to`) to its own (inclusive).
pub(crate) fn tier_table(item: &Value, currency: &str) -> Markup {
    let unit = s(&item["price_unit"]);
    let mut from = "0";
    let mut rows = Vec::new();
    for tier in item["tiers"].as_array().into_iter().flatten() {
        let range = match tier["up_to"].as_str() {
            Some(up_to) => format!("over {from} up to {up_to}"),
            None => format!("over {from}"),
        };
        rows.push((range, s(&tier["unit_price"])));
        from = s(&tier["up_to"]);
    }
    html! {
        div.table-wrap {
            table {
                caption { (s(&item["name"])) " (" code { (s(&item["code"])) } "), " (words(s(&item["tier_mode"]))) " tiers" }
                thead { tr { th scope="col" { "Usage (" (unit) ")" } th scope="col" { "Price per " (unit) } } }
                tbody {
                    @for (range, price) in &rows {
                        tr { td { (range) } td.num { (price) " " (currency) } }
                    }
                }
            }
        }
    }
}

/// The resources a template deploys and their hourly fees, charged by the cloud.
pub(crate) fn resources_table(resources: &Value, currency: &str) -> Markup {
    html! {
        @if resources.as_array().is_none_or(Vec::is_empty) {
            p { "This template deploys no billable cloud resource." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Resource" } th scope="col" { "Spec" } th scope="col" { "Count" } th scope="col" { "Hourly fee each" } } }
                    tbody {
                        @for r in resources.as_array().into_iter().flatten() {
                            tr {
                                td { (s(&r["type"])) } td { (s(&r["spec"])) } td.num { (r["count"]) }
                                td.num { (s(&r["hourly_fee"])) " " (currency) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /catalog/{id}`: a published product, and the way to order it.
pub(crate) fn product(req: &Req, chrome: &Chrome, id: &str) -> ApiResult<Resp> {
    let p = catalog::detail(req.db()?, id)?;
    let currency = s(&p["pricing"]["currency"]);
    let general = &p["general"];
    let name = s(&p["product_name"]).to_owned();
    let customer = chrome
        .principal
        .as_ref()
        .is_some_and(|p| p.role == Role::Customer);
    let region_selectable = p["region_selectable"] == Value::Bool(true);
    Ok(ok(
        chrome,
        &name,
        html! {
            div.product-head {
                img src=(s(&p["logo_url"])) alt={ (name) " logo" } width="96" height="96";
                div {
                    p.lead { (s(&general["short_description"])) }
                    p.meta { (category_name(s(&p["category"]))) " · " (s(&p["platform_tag"]["label"])) }
                    (tags(&p["tags"]))
                }
            }
            section {
                h2 { "Highlights" }
                p.prose { (s(&general["highlights"])) }
                h2 { "Description" }
                p.prose { (s(&general["description"])) }
            }
            @let screenshots: Vec<&Value> = p["media"].as_array().into_iter().flatten().filter(|m| m["kind"] == "screenshot").collect();
            @if !screenshots.is_empty() {
                section {
                    h2 { "Screenshots" }
                    ul.gallery { @for m in screenshots { li { img src=(s(&m["url"])) alt={ "Screenshot of " (name) }; } } }
                }
            }
            @for m in p["media"].as_array().into_iter().flatten().filter(|m| m["kind"] == "user_guide") {
                p { a href=(s(&m["url"])) { "User guide (PDF)" } }
            }
            section {
                h2 { "Pricing: pay as you go" }
                p { "Usage is billed per " (s(&p["pricing"]["billing_period"])) " in " (currency)
                    @if p["pricing"]["enterprise_only"] == Value::Bool(true) { ", to enterprise accounts only" } "." }
                @for item in p["pricing"]["billable_items"].as_array().into_iter().flatten() {
                    (tier_table(item, currency))
                }
            }
            section {
                h2 { "Cloud resources and their hourly fees" }
                @for t in p["templates"].as_array().into_iter().flatten() {
                    h3 { "Template " (s(&t["name"])) }
                    (resources_table(&t["resources"], currency))
                }
            }
            section {
                h2 { "Support" }
                dl {
                    dt { "Service scope" } dd { (s(&general["support_offered"]["service_scope"])) }
                    dt { "Hours" } dd { (s(&general["support_offered"]["time_range"])) }
                    dt { "Business scope" } dd { (s(&general["support_offered"]["business_scope"])) }
                    dt { "Billing scope" } dd { (s(&general["support_offered"]["billing_scope"])) }
                }
            }
            section {
                h2 { "Order" }
                @if customer {
                    form.narrow method="get" action="/orders/new" {
                        input type="hidden" name="product_id" value=(id);
                        div.field {
                            label for="template_id" { "Template" }
                            select id="template_id" name="template_id" {
                                @for t in p["templates"].as_array().into_iter().flatten() {
                                    option value=(s(&t["id"])) { (s(&t["name"])) }
                                }
                            }
                        }
                        @if region_selectable {
                            div.field {
                                label for="region" { "Region" }
                                select id="region" name="region" {
                                    @for r in p["regions"].as_array().into_iter().flatten() { option value=(s(r)) { (s(r)) } }
                                }
                            }
                        }
                        button type="submit" { "Review the order" }
                    }
                } @else {
                    p { "Sign in as a customer to order this product." }
                }
            }
        },
    ))
}
