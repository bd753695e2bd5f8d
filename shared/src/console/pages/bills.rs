//! Bills: a customer's own, a provider's products', every bill for operators. A bill shows each
//! line's tier breakdown and the usage records it was priced from.

use http::StatusCode;
use maud::{Markup, html};
use rust_decimal::Decimal;

use crate::billing::credit::{self, CreditRequest, Part};
use crate::billing::{self, Bill, BillFilter, BillLine, ResourceLine, usage};
use crate::console::form::field;
use crate::console::format::{exactly, money, name_of, time, unix_time};
use crate::console::http::{Req, Resp, html, redirect};
use crate::console::layout::{Chrome, ok, page};
use crate::console::widgets::{next_page, paged};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::identity::{Principal, Role};
use crate::metering::{self, StoredUsage};

const PAGE: usize = 50;

/// `GET /bills[?instance_id=]`, oldest period first.
pub(crate) fn list(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let filter = BillFilter {
        instance_id: req.query("instance_id").map(str::to_owned),
        from: 0,
        to: i64::MAX,
    };
    let found = billing::list(req.db()?, me, &filter, req.query("cursor"), PAGE + 1)?;
    let (bills, next) = paged(found, PAGE, |b| b.id.clone());
    let title = match &filter.instance_id {
        Some(i) => format!("Bills of {i}"),
        None if me.role == Role::Provider => "Bills of your products".to_owned(),
        None => "Bills".to_owned(),
    };
    Ok(ok(
        chrome,
        &title,
        html! {
            @if bills.is_empty() { p { "No bill yet: bills are written once a billing period has closed." } }
            @else {
                div.table-wrap {
                    table {
                        thead { tr {
                            th scope="col" { "Bill" } th scope="col" { "Instance" } th scope="col" { "Period" }
                            th scope="col" { "Total" }
                        } }
                        tbody {
                            @for b in &bills {
                                tr {
                                    td { a href={ "/bills/" (b.id) } { (b.id) } @if b.test { " (test)" } }
                                    td { a href={ "/instances/" (b.instance_id) } { (b.instance_id) } }
                                    td { (time(&b.period_start)) " – " (time(&b.period_end)) }
                                    td.num { (b.total.to_decimal()) " " (b.currency) }
                                }
                            }
                        }
                    }
                }
            }
            (next_page(req, next.as_deref()))
            p { a.download href={ "/exports/bills" (instance_query(filter.instance_id.as_deref())) } { "Download these bills (CSV)" } }
        },
    ))
}

/// `?instance_id=…` of an export link, when the page has one.
fn instance_query(instance: Option<&str>) -> String {
    instance
        .map(|i| {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("instance_id", i)
                .finish();
            format!("?{query}")
        })
        .unwrap_or_default()
}

/// `GET /bills/{id}/usage?item=CODE[&cursor=]`: the records one line summed, a page at a time,
/// with the page's total against the line's quantity.
pub(crate) fn line_usage(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let item = req.query("item").unwrap_or_default();
    let page = usage::line_usage(req.db()?, me, id, item, req.query("cursor"), PAGE)?;
    Ok(ok(
        chrome,
        &format!("Usage of {} on bill {}", page.item_code, page.bill_id),
        html! {
            p { "The line's quantity: " strong { (exactly(page.line_quantity, page.line_quantity_exact.as_deref())) " " (page.price_unit) }
                " (" (name_of(&page.kind)) " records; their values are in the unit they were reported in)." }
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "From" } th scope="col" { "To" }
                        th scope="col" { "Value (as reported)" } th scope="col" { "Reported by" } th scope="col" { "Received" }
                    } }
                    tbody {
                        @for r in &page.items {
                            tr {
                                td { (unix_time(r.start_time)) }
                                td { (unix_time(r.end_time)) }
                                td.num { (r.value.normalize()) }
                                td { (r.source.replace('_', " ")) }
                                td { (time(&r.received_at)) }
                            }
                        }
                    }
                    tfoot { tr { th scope="row" colspan="2" { "This page" } td.num { (page.page_total.normalize()) } td {} td {} } }
                }
            }
            (next_page(req, page.next_cursor.as_deref()))
            p { a href={ "/bills/" (page.bill_id) } { "Back to the bill" } }
        },
    ))
}

/// The most usage records a bill's page lists (the API pages through them all).
const RECORDS_SHOWN: usize = 500;

/// What an operator typed in a refused credit note, and why it was refused.
struct RefusedCredit<'a> {
    amount: &'a str,
    reason: &'a str,
    applies_to: Part,
    error: &'a ApiError,
}

/// `GET /bills/{id}`: the lines, each with its tier breakdown, what was paid and credited,
/// and the usage behind them; operators get the credit-note form.
pub(crate) fn show(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    bill_page(req, chrome, me, id, None)
}

fn bill_page(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    id: &str,
    refused: Option<RefusedCredit>,
) -> ApiResult<Resp> {
    me.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let db = req.db()?;
    let bill = billing::find(db, me, id)?;
    let start = bill.period_start.timestamp();
    // The records behind the bill: its period's, the first RECORDS_SHOWN of them.
    let records = metering::usage(
        db,
        me,
        &bill.instance_id,
        (start, start + 1),
        None,
        RECORDS_SHOWN,
    )?
    .records;
    let status = refused
        .as_ref()
        .map_or(StatusCode::OK, |r| r.error.status());
    let content = html! {
        (summary(&bill))
        @for line in &bill.lines { (line_section(&bill.id, line, &bill.currency)) }
        @if !bill.resource_lines.is_empty() { (resources_section(&bill.resource_lines)) }
        (credits_section(&bill))
        @if me.is_operator() && !bill.test { (credit_form(chrome, &bill, refused.as_ref())) }
        h2 { "Usage behind this bill" }
        (usage_table(&records))
    };
    Ok(html(
        status,
        page(chrome, &format!("Bill {}", bill.id), content),
    ))
}

/// What the bill charged, and where it stands: credited, paid, still owed.
fn summary(bill: &Bill) -> Markup {
    let cur = &bill.currency;
    html! {
        dl {
            dt { "Instance" } dd { a href={ "/instances/" (bill.instance_id) } { (bill.instance_id) } }
            dt { "Period" } dd { (time(&bill.period_start)) " – " (time(&bill.period_end)) }
            dt { "Product fees" } dd { (money(bill.product_fees, cur)) }
            dt { "Cloud resources" } dd { (money(bill.resource_fees, cur)) }
            dt { "Total" } dd { strong { (money(bill.total, cur)) } }
            @if bill.test { dt { "Test order" } dd { "Shown, never deducted" } }
            @else {
                dt { "Credited" } dd { (money(bill.credited, cur)) }
                dt { "Paid" } dd { (money(bill.collected, cur)) }
                dt { "Still owed" } dd {
                    (money(bill.uncollected, cur))
                    @if bill.uncollected.0 > 0 { " — collected from your next top-up, oldest bill first" }
                }
            }
            dt { "Written" } dd { (time(&bill.created_at)) }
            dt { "Prices" } dd { "version " (bill.pricing_version) }
        }
    }
}

/// One billable item's line, with its tier breakdown and a link to the records it summed.
fn line_section(bill_id: &str, line: &BillLine, currency: &str) -> Markup {
    html! {
        section.line {
            h2 { (line.name) " (" code { (line.code) } ")" }
            p { (exactly(line.quantity, line.quantity_exact.as_deref())) " " (line.price_unit) ", " (name_of(&line.tier_mode))
                " tiers: " strong { (line.amount) " " (currency) } }
            p { a href={ "/bills/" (bill_id) "/usage?item=" (line.code) } { "The usage records of this line" } }
            div.table-wrap {
                table {
                    caption { "Tier breakdown of " (line.code) }
                    thead { tr {
                        th scope="col" { "Tier" } th scope="col" { "Range (" (line.price_unit) ")" }
                        th scope="col" { "Quantity" } th scope="col" { "Unit price" } th scope="col" { "Amount" }
                    } }
                    tbody {
                        @for c in &line.breakdown {
                            tr {
                                td { (c.tier_index + 1) }
                                td { "over " (c.from.normalize())
                                    @if let Some(up_to) = c.up_to { " up to " (up_to.normalize()) } }
                                td.num { (exactly(c.quantity, c.quantity_exact.as_deref())) }
                                td.num { (c.unit_price.normalize()) }
                                td.num { (exactly(c.amount, c.amount_exact.as_deref())) }
                            }
                        }
                    }
                }
            }
            p.hint { "The line's amount is the breakdown's sum truncated to cents." }
        }
    }
}

/// The cloud resources' lines: each resource for the time the instance ran.
fn resources_section(lines: &[ResourceLine]) -> Markup {
    html! {
        section.line {
            h2 { "Cloud resources" }
            div.table-wrap {
                table {
                    caption { "The template's resources, for the time the instance ran" }
                    thead { tr {
                        th scope="col" { "Resource" } th scope="col" { "Count" }
                        th scope="col" { "Hourly fee" } th scope="col" { "Ran (s)" }
                        th scope="col" { "Amount" }
                    } }
                    tbody {
                        @for r in lines {
                            tr {
                                td { (r.kind) " " code { (r.spec) } }
                                td.num { (r.count) }
                                td.num { (r.hourly_fee.normalize()) }
                                td.num { (r.running_seconds) }
                                td.num { (r.amount) }
                            }
                        }
                    }
                }
            }
            p.hint { "Each amount is count × hourly fee × seconds run ÷ 3,600, truncated to cents." }
        }
    }
}

/// The usage records of the bill's period, as reported.
fn usage_table(records: &[StoredUsage]) -> Markup {
    html! {
        @if records.is_empty() { p { "No usage record in this period." } }
        @else {
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "Item" } th scope="col" { "From" } th scope="col" { "To" }
                        th scope="col" { "Value (as reported)" } th scope="col" { "Reported by" }
                    } }
                    tbody {
                        @for r in records {
                            tr {
                                td { code { (r.item_code) } }
                                td { (unix_time(r.start_time)) }
                                td { (unix_time(r.end_time)) }
                                td.num { (r.value.normalize()) }
                                td { (r.source.replace('_', " ")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The credit notes written on the bill.
fn credits_section(bill: &Bill) -> Markup {
    let cur = &bill.currency;
    html! {
        @if !bill.credit_notes.is_empty() {
            section.credits {
                h2 { "Credit notes" }
                div.table-wrap {
                    table {
                        caption { "What was given back of this bill" }
                        thead { tr {
                            th scope="col" { "Issued" } th scope="col" { "Credited" }
                            th scope="col" { "Of the product fees" } th scope="col" { "Of the cloud resources" }
                            th scope="col" { "Why" }
                        } }
                        tbody {
                            @for n in &bill.credit_notes {
                                tr {
                                    td { (time(&n.issued_at)) br; small { (n.id) } }
                                    td.num { strong { (money(n.amount, cur)) } }
                                    td.num { (money(n.product_fees, cur)) }
                                    td.num { (money(n.resource_fees, cur)) }
                                    td { (n.reason) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The operator's credit-note form; a refusal of it is shown under it, with what was typed.
fn credit_form(chrome: &Chrome, bill: &Bill, refused: Option<&RefusedCredit>) -> Markup {
    let left = bill.total - bill.credited;
    let (amount, reason, first) = refused.map_or(("", "", Part::ProductFees), |r| {
        (r.amount, r.reason, r.applies_to)
    });
    let error = refused.map(|r| r.error);
    let described = error.map(|_| "credit-error");
    html! {
        section.credit {
            h2 { "Issue a credit note" }
            p.hint { "Credits the customer's account (a ledger entry of kind credit), once; at most "
                (money(left, &bill.currency)) " is left to credit. What the bill still owed is forgiven first; "
                "the product-fee part reduces the provider's statement of this month." }
            form method="post" action={ "/bills/" (bill.id) "/credit-notes" } {
                (chrome.csrf_field())
                (crate::console::once::field())
                div.field {
                    label for="credit-amount" { "Amount (" (bill.currency) ")" }
                    input id="credit-amount" name="amount" type="text" inputmode="decimal" value=(amount) required
                        aria-invalid=[error.map(|_| "true")] aria-describedby=[described];
                }
                div.field {
                    label for="credit-reason" { "Why" }
                    input id="credit-reason" name="reason" type="text" value=(reason) required maxlength="500"
                        aria-invalid=[error.map(|_| "true")] aria-describedby=[described];
                }
                div.field {
                    label for="credit-part" { "Reduces first" }
                    select id="credit-part" name="applies_to" {
                        option value="product_fees" selected[first == Part::ProductFees] { "the product fees" }
                        option value="resource_fees" selected[first == Part::ResourceFees] { "the cloud resources' fees" }
                    }
                }
                button type="submit" { "Issue credit note" }
            }
            @if let Some(e) = error {
                ul.field-errors id="credit-error" role="alert" {
                    @if e.errors.is_empty() { li { (e.detail) " " span.code { "(" (e.code.as_str()) ")" } } }
                    @for f in &e.errors { li { (f.message) " " span.code { "(" (f.code.as_str()) ")" } } }
                }
            }
        }
    }
}

/// `POST /bills/{id}/credit-notes`: an operator's credit note; back to the bill, or the bill
/// again with the refusal beside the form.
pub(crate) fn credit(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    let amount = field(req, "amount").unwrap_or_default();
    let reason = field(req, "reason").unwrap_or_default();
    let applies_to = match field(req, "applies_to").as_deref() {
        Some("resource_fees") => Part::ResourceFees,
        _ => Part::ProductFees,
    };
    let parsed = amount.trim().parse::<Decimal>().map_err(|_| {
        ApiError::validation(vec![FieldError::new(
            "amount",
            Code::InvalidAmount,
            "an amount such as 10.00",
        )])
    });
    let request = |amount| CreditRequest {
        amount: Some(amount),
        reason: Some(reason.as_str()).filter(|r| !r.trim().is_empty()),
        applies_to,
    };
    match parsed.and_then(|a| credit::issue(req.db()?, me, id, &request(a), req.now)) {
        Ok(_) => redirect(&format!("/bills/{id}")),
        Err(e) if matches!(e.status().as_u16(), 400 | 409) => {
            let refused = RefusedCredit {
                amount: &amount,
                reason: &reason,
                applies_to,
                error: &e,
            };
            bill_page(req, chrome, me, id, Some(refused))
        }
        Err(e) => Err(e),
    }
}
