//! A published product after its publication: its pricing versions (when each reaches existing
//! instances) and its availability — delisted or listed, by whom, when and why — with the forms
//! that delist and relist it.

use maud::{Markup, html};

use crate::catalog::delisting::{self, ListingChangeRequest};
use crate::catalog::versions;
use crate::console::form::field;
use crate::console::format::{name_of, time};
use crate::console::http::{Req, Resp, redirect};
use crate::console::layout::Chrome;
use crate::error::ApiResult;
use crate::identity::{Principal, Role};
use crate::listing::ProductStatus;

/// The section of a published product's page: its versions and its availability, with the
/// delist or relist form for whoever may use it.
pub(crate) fn section(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    id: &str,
    status: ProductStatus,
) -> ApiResult<Markup> {
    if status != ProductStatus::Published {
        return Ok(html! {});
    }
    let db = req.db()?;
    let versions = versions::versions(db, me, id)?;
    let availability = delisting::availability(db, me, id)?;
    let pending = |at: &chrono::DateTime<chrono::Utc>| *at > req.now;
    let operators_only = availability
        .delisting
        .as_ref()
        .is_some_and(|d| d.actor_role == Role::Operator && !me.is_operator());
    Ok(html! {
        section {
            h2 { "Prices" }
            p.hint { "New orders get the latest version at once. An existing instance gets a new version from its first billing period starting at or after the version's effective date: at once for a cut, after the notice period for an increase." }
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "Version" } th scope="col" { "Made" }
                        th scope="col" { "Existing instances from" } th scope="col" { "Increase" }
                    } }
                    tbody {
                        @for v in &versions {
                            tr.upcoming[pending(&v.effective_at)] {
                                td { (v.version) }
                                td { (time(&v.created_at)) }
                                td { (time(&v.effective_at)) @if pending(&v.effective_at) { " (upcoming)" } }
                                td { (if v.raises_price { "yes" } else { "no" }) }
                            }
                        }
                    }
                }
            }
            @if me.role == Role::Provider {
                p { a href={ "/products/" (id) "/steps/pricing" } { "Change the prices" } }
            }
        }
        section {
            h2 { "Availability" }
            @match &availability.delisting {
                Some(d) => p { span.status { "delisted" } " by " (d.actor_id) " (" (name_of(&d.actor_role)) ") on " (time(&d.at)) ": " q { (d.reason) } " It takes no new orders; its instances keep running and billing." },
                None => p { span.status { "listed" } " In the catalog, taking orders." },
            }
            @if !operators_only {
                @let action = if availability.delisting.is_some() { "relist" } else { "delist" };
                form.narrow method="post" action={ "/products/" (id) "/" (action) } {
                    (chrome.csrf_field())
                    div.field {
                        label for="reason" { "Why" }
                        input type="text" id="reason" name="reason" required maxlength="2000";
                    }
                    button type="submit" class=[(action == "delist").then_some("danger")] {
                        (if action == "delist" { "Delist" } else { "Relist" })
                    }
                }
            } @else {
                p.hint { "An operator delisted it: only an operator relists it." }
            }
            @if !availability.history.is_empty() {
                h3 { "History" }
                ul {
                    @for c in &availability.history {
                        li { (name_of(&c.action)) " by " (c.actor_id) " (" (name_of(&c.actor_role)) ") on " (time(&c.at)) ": " q { (c.reason) } }
                    }
                }
            }
        }
    })
}

/// `POST /products/{id}/delist` and `…/relist`: back to the product's page, which shows what
/// changed (or, refused, the error page says why).
pub(crate) fn change(req: &Req, me: &Principal, id: &str, delist: bool) -> ApiResult<Resp> {
    let request = ListingChangeRequest {
        reason: field(req, "reason"),
    };
    let db = req.db()?;
    if delist {
        delisting::delist(db, me, id, &request, req.now)?;
    } else {
        delisting::relist(db, me, id, &request, req.now)?;
    }
    redirect(&format!("/products/{id}"))
}
