//! The public catalog: published products by search, category and tag, and a product's page
//! with its tiers and the hourly fees of the resources it deploys.

use maud::{Markup, html};

use crate::catalog::{self, CatalogFilter, CatalogProduct};
use crate::console::format::name_of;
use crate::console::http::{Req, Resp};
use crate::console::layout::{Chrome, ok};
use crate::console::widgets::{category_name, next_page, paged, resources_table, tags, tier_table};
use crate::error::ApiResult;
use crate::identity::Role;
use crate::listing::categories::CATEGORIES;
use crate::listing::media::MediaKind;

/// Products per catalog page.
const PAGE: usize = 24;

/// `GET /catalog?q=&category=&tag=`.
pub(crate) fn list(req: &Req, chrome: &Chrome) -> ApiResult<Resp> {
    let filter = CatalogFilter {
        category: req.query("category").map(str::to_owned),
        tag: req.query("tag").map(str::to_owned),
        q: req.query("q").map(str::to_owned),
    };
    let found = catalog::search(req.db()?, &filter, req.query("cursor"), PAGE + 1)?;
    let (items, next) = paged(found, PAGE, |e| e.summary.id.clone());
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
                @for item in items.iter().map(|e| &e.summary) {
                    li.card {
                        img src=(item.logo_url) alt="" width="64" height="64";
                        div {
                            h2 { a href={ "/catalog/" (item.id) } { (item.product_name) } }
                            p { (item.short_description) }
                            p.meta {
                                (category_name(&item.category))
                                " · billed per " (name_of(&item.billing_period))
                                " in " (item.currency)
                                @if item.enterprise_only { " · enterprises only" }
                            }
                            (tags(&item.tags))
                        }
                    }
                }
            }
            (next_page(req, next.as_deref()))
        },
    ))
}

/// `GET /catalog/{id}`: a published product, and the way to order it.
pub(crate) fn product(req: &Req, chrome: &Chrome, id: &str) -> ApiResult<Resp> {
    let p = catalog::detail(req.db()?, id)?;
    let summary = &p.entry.summary;
    let general = &p.general;
    let support = general.support_offered();
    let name = summary.product_name.clone();
    let customer = chrome
        .principal
        .as_ref()
        .is_some_and(|p| p.role == Role::Customer);

    Ok(ok(
        chrome,
        &name,
        html! {
            div.product-head {
                img src=(summary.logo_url) alt={ (name) " logo" } width="96" height="96";
                div {
                    p.lead { (general.short_description()) }
                    p.meta { (category_name(&summary.category)) " · " (summary.platform_tag.label) }
                    (tags(&summary.tags))
                }
            }
            section {
                h2 { "Highlights" }
                p.prose { (general.highlights()) }
                h2 { "Description" }
                p.prose { (general.description()) }
            }
            @let screenshots: Vec<_> = p.media.iter().filter(|m| m.kind == MediaKind::Screenshot).collect();
            @if !screenshots.is_empty() {
                section {
                    h2 { "Screenshots" }
                    ul.gallery { @for m in screenshots { li { img src=(m.url) alt={ "Screenshot of " (name) }; } } }
                }
            }
            @for m in p.media.iter().filter(|m| m.kind == MediaKind::UserGuide) {
                p { a href=(m.url) { "User guide (PDF)" } }
            }
            (pricing_sections(&p))
            section {
                h2 { "Support" }
                dl {
                    dt { "Service scope" } dd { (support.service_scope()) }
                    dt { "Hours" } dd { (support.time_range()) }
                    dt { "Business scope" } dd { (support.business_scope()) }
                    dt { "Billing scope" } dd { (support.billing_scope()) }
                }
            }
            section {
                h2 { "Order" }
                @if customer { (order_form(&p, id)) }
                @else { p { "Sign in as a customer to order this product." } }
            }
        },
    ))
}

/// How the product is priced: each item's tiers, and each template's resources with their
/// hourly fees.
fn pricing_sections(p: &CatalogProduct) -> Markup {
    let currency = p.pricing.currency.as_str();
    html! {
        section {
            h2 { "Pricing: pay as you go" }
            p { "Usage is billed per " (name_of(&p.pricing.billing_period)) " in " (currency)
                @if p.pricing.enterprise_only { ", to enterprise accounts only" } "." }
            @for item in &p.pricing.billable_items {
                (tier_table(item, currency))
            }
        }
        section {
            h2 { "Cloud resources and their hourly fees" }
            @for t in &p.templates {
                h3 { "Template " (t.name) }
                (resources_table(&t.resources, currency))
            }
        }
    }
}

/// The form a customer reviews an order of the product with: a template, and the region when
/// the customer chooses it.
fn order_form(p: &CatalogProduct, id: &str) -> Markup {
    html! {
        form.narrow method="get" action="/orders/new" {
            input type="hidden" name="product_id" value=(id);
            div.field {
                label for="template_id" { "Template" }
                select id="template_id" name="template_id" {
                    @for t in &p.templates {
                        option value=(t.id) { (t.name) }
                    }
                }
            }
            @if p.region_selectable {
                div.field {
                    label for="region" { "Region" }
                    select id="region" name="region" {
                        @for r in &p.regions { option value=(r) { (r) } }
                    }
                }
            }
            button type="submit" { "Review the order" }
        }
    }
}
