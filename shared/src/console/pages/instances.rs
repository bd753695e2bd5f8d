//! Instances: a customer's own (with stop, start and release), a provider's products' (with their
//! usage), and, for operators, all of them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use maud::{Markup, html};

use crate::billing::write_off;
use crate::console::chart::{Bar, bar_chart};
use crate::console::format::{name_of, time, unix_time};
use crate::console::http::{Req, Resp, redirect};
use crate::console::layout::{Chrome, ok};
use crate::console::widgets::{next_page, paged};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{Principal, Role};
use crate::listing::steps::Eula;
use crate::metering::{self, PeriodTotal};
use crate::orders::instance::{self, Action, Instance, InstanceStatus};
use crate::orders::{self, AcceptedEula, InstanceEula};

const PAGE: usize = 50;
/// The most recent periods a usage chart shows.
const CHART_PERIODS: usize = 48;

/// `GET /instances`.
pub(crate) fn list(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let found = instance::list(req.db()?, me, req.query("cursor"), PAGE + 1)?;
    let (items, next) = paged(found, PAGE, |i| i.id.clone());
    Ok(ok(
        chrome,
        "Instances",
        html! {
            @if items.is_empty() {
                p { "No instance yet." @if me.role == Role::Customer { " " a href="/catalog" { "Find a product to order." } } }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th scope="col" { "Instance" } th scope="col" { "Product" } th scope="col" { "Status" }
                            th scope="col" { "Region" } th scope="col" { "Ordered" }
                        } }
                        tbody {
                            @for i in &items {
                                tr {
                                    td { a href={ "/instances/" (i.id) } { (i.id) } @if i.test { " (test)" } }
                                    td { (i.product_id) }
                                    td { span.status { (name_of(&i.status)) } }
                                    td { (i.region) }
                                    td { (time(&i.created_at)) }
                                }
                            }
                        }
                    }
                }
            }
            (next_page(req, next.as_deref()))
        },
    ))
}

/// `GET /instances/{id}`: the instance, what its owner may do with it, and its usage per period.
pub(crate) fn show(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let db = req.db()?;
    let view = orders::view(db, me, id, req.config.billing_timezone, req.now)?;
    let (found, pricing) = (view.instance, view.pricing);
    // The chart shows the last 31 days' periods.
    let since = (req.now - chrono::Duration::days(31)).timestamp();
    let totals = metering::usage_totals(db, me, id, (since, i64::MAX))?;
    // The EULA its order accepted, whole; an order from before EULAs were recorded has none.
    let eula = match orders::accepted_eula(db, me, id) {
        Ok(e) => Some(e),
        Err(e) if e.code == Code::NotFound => None,
        Err(e) => return Err(e),
    };
    let written_off = write_off::list(db, me, id, None, PAGE)?;
    let owner = found.owner_id == me.id;
    let actions: &[(Action, &str)] = match found.status {
        InstanceStatus::Running => &[(Action::Stop, "Stop"), (Action::Release, "Release")],
        InstanceStatus::Stopped => &[(Action::Start, "Start"), (Action::Release, "Release")],
        // It runs again when a top-up ends its customer's arrears.
        InstanceStatus::Suspended => &[(Action::Release, "Release")],
        InstanceStatus::Released => &[],
    };
    Ok(ok(
        chrome,
        &format!("Instance {}", found.id),
        html! {
            dl {
                dt { "Status" } dd { span.status { (name_of(&found.status)) } @if found.test { " (test order)" } }
                dt { "Product" } dd { (found.product_id) }
                dt { "Template" } dd { (found.template_id) }
                @if let Some(plan) = &found.plan_id { dt { "Plan" } dd { (plan) } }
                dt { "Region" } dd { (found.region) }
                dt { "Ordered" } dd { (time(&found.created_at)) }
                @if let Some(r) = &found.released_at { dt { "Released" } dd { (time(r)) } }
                dt { "Prices" } dd { "version " (pricing.version) }
                @if let Some(next) = &pricing.upcoming {
                    dt { "Upcoming price change" }
                    dd.upcoming {
                        "Version " (next.version) @if next.raises_price { " (an increase)" }
                        " prices its periods from " (time(&next.applies_from))
                        " (in effect " (time(&next.effective_at)) ")"
                    }
                }
            }
            @if owner && !actions.is_empty() {
                div.actions {
                    @for (action, label) in actions {
                        form method="post" action={ "/instances/" (found.id) "/actions" } {
                            (chrome.csrf_field())
                            input type="hidden" name="action" value=(name_of(action));
                            button type="submit" class=[(*action == Action::Release).then_some("danger")] { (label) }
                        }
                    }
                }
            }
            @if found.status == InstanceStatus::Suspended {
                p.arrears role="status" { "Suspended: its customer's account is in arrears past the grace. It runs again as soon as a top-up brings the balance back to zero or above; meanwhile it is charged no resource fees and takes no usage." }
            }
            (running_time(&found))
            h2 { "Usage" }
            (usage_charts(&totals))
            @if !written_off.is_empty() {
                h2 { "Periods written off" }
                p.hint { "Periods that could not be billed, closed by an operator without a bill: nothing was deducted for them." }
                ul {
                    @for w in &written_off {
                        li { (time(&w.period_start)) " – " (time(&w.period_end)) ": " (w.reason) }
                    }
                }
            }
            p { a href={ "/bills?instance_id=" (found.id) } { "Bills of this instance" } " · "
                a.download href={ "/exports/usage?instance_id=" (found.id) } { "Download its usage (CSV)" } }
            (eula_section(found.eula.as_ref(), eula.as_ref()))
        },
    ))
}

/// When the instance ran, and each time arrears suspended it.
fn running_time(found: &Instance) -> Markup {
    html! {
        h2 { "Running time" }
        ul {
            @for i in &found.running_intervals {
                li { "From " (unix_time(i.started_at)) " to "
                    @match i.ended_at { Some(end) => (unix_time(end)), None => "now" } }
            }
        }
        @if !found.suspensions.is_empty() {
            h2 { "Suspensions" }
            ul {
                @for s in &found.suspensions {
                    li { "Suspended " (time(&s.suspended_at)) " for arrears, "
                        @match &s.resumed_at { Some(r) => { "resumed " (time(r)) " by a top-up" }, None => "not resumed" } }
                }
            }
        }
    }
}

/// A chart per item of its usage per period, the most recent [`CHART_PERIODS`].
fn usage_charts(totals: &[PeriodTotal]) -> Markup {
    // Per item, its periods in order (the totals come oldest first).
    let mut by_item: BTreeMap<&str, (&str, Vec<Bar>)> = BTreeMap::new();
    for t in totals {
        let entry = by_item
            .entry(t.item_code.as_str())
            .or_insert_with(|| (t.price_unit, Vec::new()));
        entry.1.push(Bar {
            label: period_label(&t.period_start),
            value: t.quantity,
        });
    }
    html! {
        @if by_item.is_empty() { p { "No usage reported yet." } }
        @for (n, (code, (unit, bars))) in by_item.into_iter().enumerate() {
            @let recent = &bars[bars.len().saturating_sub(CHART_PERIODS)..];
            h3 { (code) }
            (bar_chart(&format!("usage-{n}"), code, unit, recent))
        }
    }
}

/// The agreement the order accepted: which, when, its digest, and the EULA itself.
fn eula_section(accepted: Option<&AcceptedEula>, whole: Option<&InstanceEula>) -> Markup {
    html! {
        section.eula {
            h2 { "End-user license agreement" }
            @match (accepted, whole) {
                (Some(a), Some(w)) => {
                    p { "Accepted with the order on " (time(&a.accepted_at)) "." }
                    dl {
                        @if let Some(t) = &a.template_id { dt { "Marketplace template" } dd { code { (t) } } }
                        dt { "SHA-256" } dd { code { (a.digest) } }
                    }
                    @match &w.eula {
                        Eula::Custom { text } => { blockquote.eula-text { (text) } }
                        Eula::Template { amendments: Some(amendments), .. } => {
                            h3 { "The provider's amendments" }
                            blockquote.eula-text { (amendments) }
                        }
                        Eula::Template { .. } => {}
                    }
                }
                (Some(a), None) => { p { "Accepted on " (time(&a.accepted_at)) "; its text was not recorded with the order." } }
                _ => { p { "The order was placed before accepted agreements were recorded." } }
            }
        }
    }
}

/// A period start as it labels a bar: `03-27 08:00`.
fn period_label(start: &DateTime<Utc>) -> String {
    start.format("%m-%d %H:%M").to_string()
}

/// `POST /instances/{id}/actions`: the owner stops, starts or releases it.
pub(crate) fn act(req: &Req, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Customer])?;
    let action = match crate::console::form::field(req, "action").as_deref() {
        Some("stop") => Action::Stop,
        Some("start") => Action::Start,
        Some("release") => Action::Release,
        _ => {
            return Err(ApiError::validation(vec![FieldError::new(
                "action",
                Code::InvalidValue,
                "one of stop, start, release",
            )]));
        }
    };
    instance::perform(req.db()?, me, id, action, &|| req.now_again())?;
    redirect(&format!("/instances/{id}"))
}
