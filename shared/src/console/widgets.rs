//! Pieces several pages show: a list's next-page link, a tier schedule, the resources a template
//! deploys, a product's tags, a category's name. Each renders typed values the domain hands out.

use maud::{Markup, html};

use crate::console::format::name_of;
use crate::console::http::Req;
use crate::listing::categories::CATEGORIES;
use crate::listing::service::Resource;
use crate::sales::PricedItem;

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

/// A category's name, from its id (the id itself for one the catalog does not know).
pub(crate) fn category_name(id: &str) -> &str {
    CATEGORIES
        .iter()
        .find(|c| c.id == id)
        .map_or(id, |c| c.name)
}

/// A product's tags, each a link to the catalog's products with it.
pub(crate) fn tags(tags: &[String]) -> Markup {
    html! {
        @if !tags.is_empty() {
            ul.tags aria-label="Tags" {
                @for t in tags {
                    li { a href={ "/catalog?tag=" (form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()) } { (t) } }
                }
            }
        }
    }
}

/// The tiers of one billable item, each from its lower bound (exclusive, the previous tier's
/// `up_to`) to its own (inclusive).
pub(crate) fn tier_table(item: &PricedItem, currency: &str) -> Markup {
    let unit = item.price_unit;
    let mut from = "0".to_owned();
    let mut rows = Vec::new();
    for tier in &item.tiers {
        let range = match tier.up_to {
            Some(up_to) => format!("over {from} up to {up_to}"),
            None => format!("over {from}"),
        };
        rows.push((range, tier.unit_price));
        from = tier.up_to.map(|u| u.to_string()).unwrap_or_default();
    }
    html! {
        div.table-wrap {
            table {
                caption { (item.name) " (" code { (item.code) } "), " (name_of(&item.tier_mode)) " tiers" }
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
pub(crate) fn resources_table<'a>(
    resources: impl IntoIterator<Item = &'a Resource>,
    currency: &str,
) -> Markup {
    let resources: Vec<&Resource> = resources.into_iter().collect();
    html! {
        @if resources.is_empty() {
            p { "This template deploys no billable cloud resource." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Resource" } th scope="col" { "Spec" } th scope="col" { "Count" } th scope="col" { "Hourly fee each" } } }
                    tbody {
                        @for r in resources {
                            tr {
                                td { (r.kind) } td { (r.spec) } td.num { (r.count) }
                                td.num { (r.hourly_fee) " " (currency) }
                            }
                        }
                    }
                }
            }
        }
    }
}
