//! Settlements: what the marketplace owes providers for a calendar month (docs/RULES.md §13). A
//! provider reads its own statement of any month; operators read every provider's (or one's),
//! close a month provider by provider, write off the periods that keep a provider's month open
//! and record payouts. Months are cut in the deployment's `billing_timezone` until first closed,
//! and a provider without a rate of its own is charged the deployment's `commission_rate`.

use http::StatusCode;
use maud::{Markup, html};

use super::listing::product_name;
use crate::billing;
use crate::console::form::field;
use crate::console::format::{money, percent, time};
use crate::console::http::{Req, Resp, html, redirect};
use crate::console::layout::{Chrome, page};
use crate::error::{ApiError, ApiResult, Code};
use crate::identity::{self, Principal, Role};
use crate::listing::product;
use crate::money::Cents;
use crate::platform::clock::rfc3339;
use crate::settlement::{self, Instants, Month, MonthStatus, OpenProvider, Statement};

/// A refused form of a month's page, shown beside the form (or above everything when the form
/// is no longer offered, as for a statement paid already).
enum Refused<'a> {
    Close(&'a ApiError),
    Payout {
        id: &'a str,
        reference: &'a str,
        error: &'a ApiError,
    },
    WriteOff {
        instance_id: &'a str,
        period_start: &'a str,
        reason: &'a str,
        error: &'a ApiError,
    },
}

impl Refused<'_> {
    fn error(&self) -> &ApiError {
        match self {
            Self::Close(e) => e,
            Self::Payout { error, .. } | Self::WriteOff { error, .. } => error,
        }
    }
}

/// A refusal's field errors, each with its code, or its detail when no field is at fault.
fn reasons(e: &ApiError) -> Markup {
    html! {
        @if e.errors.is_empty() { li { (e.detail) " " span.code { "(" (e.code.as_str()) ")" } } }
        @for f in &e.errors { li { (f.message) " " span.code { "(" (f.code.as_str()) ")" } } }
    }
}

/// A statement with the names of what it counts: its provider's, and each product's as its
/// provider typed it (shown as text, like everything a tenant typed).
struct Named<'a> {
    statement: &'a Statement,
    provider: String,
    products: Vec<String>,
}

fn or_id(found: ApiResult<String>, id: &str) -> ApiResult<String> {
    match found {
        Err(e) if e.code == Code::NotFound => Ok(id.to_owned()),
        other => other,
    }
}

fn provider_name(req: &Req, id: &str) -> ApiResult<String> {
    or_id(identity::find_principal(req.db()?, id).map(|p| p.name), id)
}

fn named<'a>(req: &Req, me: &Principal, statement: &'a Statement) -> ApiResult<Named<'a>> {
    let db = req.db()?;
    let products = statement
        .products
        .iter()
        .map(|p| {
            or_id(
                product::find(db, me, &p.product_id).map(|v| product_name(&v)),
                &p.product_id,
            )
        })
        .collect::<ApiResult<_>>()?;
    Ok(Named {
        statement,
        provider: provider_name(req, &statement.provider_id)?,
        products,
    })
}

/// Where a statement stands, in words.
fn standing(s: &Statement) -> String {
    match (s.status, &s.id, &s.paid_at) {
        (MonthStatus::Open, _, _) => {
            "open: computed live from the month's bills, at the rate in force for the month"
                .to_owned()
        }
        (MonthStatus::Closed, None, _) => "closed: nothing earned, nothing to pay".to_owned(),
        (MonthStatus::Closed, Some(_), Some(at)) => format!("closed and paid {}", time(at)),
        (MonthStatus::Closed, Some(_), None) => "closed, not paid yet".to_owned(),
    }
}

/// The id of a closed statement still to be paid.
fn payable(s: &Statement) -> Option<&str> {
    s.id.as_deref().filter(|_| s.paid_at.is_none())
}

/// The form recording a closed statement's payout; a refusal of it is shown under it, with what
/// was typed.
fn payout_form(chrome: &Chrome, id: &str, refused: Option<&Refused>) -> Markup {
    let (typed, error) = match refused {
        Some(Refused::Payout {
            id: refused_id,
            reference,
            error,
        }) if *refused_id == id => (*reference, Some(*error)),
        _ => ("", None),
    };
    let input = format!("reference-{id}");
    let described = error.map(|_| format!("{input}-error"));
    html! {
        form.inline method="post" action={ "/settlements/" (id) "/payout" } {
            (chrome.csrf_field())
            (crate::console::once::field())
            label for=(input) { "Payout reference" }
            input id=(input) name="reference" type="text" value=(typed) required maxlength="200"
                aria-invalid=[error.map(|_| "true")] aria-describedby=[described.as_deref()];
            button type="submit" { "Record payout" }
        }
        @if let (Some(e), Some(d)) = (error, &described) { ul.field-errors id=(d) { (reasons(e)) } }
    }
}

/// One statement whole: where it stands, its totals, each product's share; the payout form for
/// operators while it is unpaid.
fn statement_section(
    chrome: &Chrome,
    me: &Principal,
    shown: &Named,
    refused: Option<&Refused>,
) -> Markup {
    let s = shown.statement;
    let heading = if me.is_operator() {
        shown.provider.clone()
    } else {
        "Your statement".to_owned()
    };
    html! {
        section.statement {
            h2 { (heading) }
            dl {
                dt { "Status" } dd { span.status { (standing(s)) } }
                @if let Some(id) = &s.id { dt { "Statement" } dd { code { (id) } } }
                @if me.is_operator() { dt { "Provider" } dd { code { (s.provider_id) } } }
                dt { "Commission rate" } dd { (percent(s.rate)) }
                dt { "Billed (gross)" } dd { (money(s.gross, s.currency)) }
                dt { "Collected" } dd { (money(s.collected, s.currency)) }
                dt { "Credited" } dd { (money(s.credited, s.currency)) }
                dt { "Uncollected" } dd { (money(s.uncollected, s.currency)) }
                dt { "Commission" } dd { (money(s.commission, s.currency)) }
                dt { "Net, paid out (the provider's)" } dd { strong { (money(s.net, s.currency)) } }
                dt { "Bills" } dd { (s.bill_count) }
                dt { "Periods written off" } dd { (s.write_off_count) }
                @if let Some(p) = &s.period { dt { "Month's instants" } dd { (span_text(p)) } }
                @if let Some(at) = &s.closed_at { dt { "Closed" } dd { (time(at)) } }
                @if let Some(at) = &s.paid_at { dt { "Paid" } dd { (time(at)) } }
                @if let Some(r) = &s.payout_reference { dt { "Payout reference" } dd { (r) } }
            }
            @if s.products.is_empty() {
                p { "No bill, collection or credit of its products in " (s.month) "." }
            } @else {
                (products_table(shown))
            }
            @if let Some(id) = payable(s).filter(|_| me.is_operator()) {
                h3 { "Record its payout" }
                p.hint { "Once the transfer is made: its bank reference, up to 200 characters. A statement is paid once." }
                (payout_form(chrome, id, refused))
            }
        }
    }
}

/// A statement's products: billed, collected, credited and still owed, the commission on what
/// was collected, and the net paid out.
fn products_table(shown: &Named) -> Markup {
    let s = shown.statement;
    let cur = s.currency;
    html! {
        div.table-wrap {
            table {
                caption { "Per product, " (s.month) }
                thead { tr {
                    th scope="col" { "Product" } th scope="col" { "Bills" } th scope="col" { "Billed" }
                    th scope="col" { "Collected" } th scope="col" { "Credited" } th scope="col" { "Uncollected" }
                    th scope="col" { "Commission" } th scope="col" { "Net" } th scope="col" { "Written off" }
                } }
                tbody {
                    @for (p, name) in s.products.iter().zip(&shown.products) {
                        tr {
                            td { (name) br; small { (p.product_id) } }
                            td.num { (p.bill_count) }
                            td.num { (money(p.gross, cur)) }
                            td.num { (money(p.collected, cur)) }
                            td.num { (money(p.credited, cur)) }
                            td.num { (money(p.uncollected, cur)) }
                            td.num { (money(p.commission, cur)) }
                            td.num { (money(p.net, cur)) }
                            td {
                                (p.write_offs.count)
                                @for w in &p.write_offs.periods {
                                    br; small { (time(&w.period_start)) " of " code { (w.instance_id) } ": " (w.reason) }
                                }
                            }
                        }
                    }
                }
                tfoot { tr {
                    th scope="row" { "Total" }
                    td.num { (s.bill_count) }
                    td.num { (money(s.gross, cur)) }
                    td.num { (money(s.collected, cur)) }
                    td.num { (money(s.credited, cur)) }
                    td.num { (money(s.uncollected, cur)) }
                    td.num { (money(s.commission, cur)) }
                    td.num { strong { (money(s.net, cur)) } }
                    td { (s.write_off_count) }
                } }
            }
        }
    }
}

/// Every provider's statement of the month in one table, with a payout form on each closed,
/// unpaid one (operators).
fn overview(
    chrome: &Chrome,
    month: Month,
    status: MonthStatus,
    shown: &[Named],
    refused: Option<&Refused>,
) -> Markup {
    let total = |f: fn(&Statement) -> Cents| Cents(shown.iter().map(|n| f(n.statement).0).sum());
    let currency = shown
        .first()
        .map_or(crate::orders::ledger::ACCOUNT_CURRENCY, |n| {
            n.statement.currency
        });
    html! {
        @if shown.is_empty() {
            p { "No provider has a bill, a collection, a credit note or a write-off in " (month)
                @if status == MonthStatus::Open { " yet: bills are written as the month's periods close" } "." }
        } @else {
            div.table-wrap {
                table {
                    caption { "Every provider's statement of " (month) }
                    thead { tr {
                        th scope="col" { "Provider" } th scope="col" { "Bills" } th scope="col" { "Billed" }
                        th scope="col" { "Collected" } th scope="col" { "Uncollected" }
                        th scope="col" { "Commission" } th scope="col" { "Net" } th scope="col" { "Rate" }
                        th scope="col" { "Written off" } th scope="col" { "Payout" }
                    } }
                    tbody {
                        @for n in shown {
                            @let s = n.statement;
                            tr {
                                td {
                                    @if let Some(id) = &s.id { a href={ "/settlements/" (id) } { (n.provider) } }
                                    @else { a href={ "/settlements?month=" (month) "&provider_id=" (s.provider_id) } { (n.provider) } }
                                    br; small { (s.provider_id) }
                                }
                                td.num { (s.bill_count) }
                                td.num { (money(s.gross, s.currency)) }
                                td.num { (money(s.collected, s.currency)) }
                                td.num { (money(s.uncollected, s.currency)) }
                                td.num { (money(s.commission, s.currency)) }
                                td.num { (money(s.net, s.currency)) }
                                td.num { (percent(s.rate)) }
                                td.num { (s.write_off_count) }
                                td {
                                    @if s.status == MonthStatus::Open { "not closed yet" }
                                    @else if let Some(at) = &s.paid_at {
                                        "paid " (time(at))
                                        @if let Some(r) = &s.payout_reference { br; small { "ref. " (r) } }
                                    }
                                    @else if let Some(id) = payable(s) { (payout_form(chrome, id, refused)) }
                                }
                            }
                        }
                    }
                    tfoot { tr {
                        th scope="row" { "Total" }
                        td.num { (shown.iter().map(|n| n.statement.bill_count).sum::<i64>()) }
                        td.num { (money(total(|s| s.gross), currency)) }
                        td.num { (money(total(|s| s.collected), currency)) }
                        td.num { (money(total(|s| s.uncollected), currency)) }
                        td.num { (money(total(|s| s.commission), currency)) }
                        td.num { (money(total(|s| s.net), currency)) }
                        td {} td.num { (shown.iter().map(|n| n.statement.write_off_count).sum::<i64>()) } td {}
                    } }
                }
            }
        }
    }
}

/// The month picker (a plain GET form) and links to the months either side.
fn picker(
    typed: &str,
    month: Option<Month>,
    provider_id: Option<&str>,
    error: Option<&ApiError>,
) -> Markup {
    let link = |m: Month| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("month", &m.to_string());
        if let Some(p) = provider_id {
            query.append_pair("provider_id", p);
        }
        format!("/settlements?{}", query.finish())
    };
    html! {
        form.filters method="get" action="/settlements" {
            @if let Some(p) = provider_id { input type="hidden" name="provider_id" value=(p); }
            div.field.invalid[error.is_some()] {
                label for="month" { "Month (YYYY-MM)" }
                input id="month" name="month" type="text" value=(typed) size="8" pattern="[0-9]{4}-[0-9]{2}"
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "month-error")];
                @if let Some(e) = error { ul.field-errors id="month-error" { (reasons(e)) } }
            }
            button.secondary type="submit" { "Show" }
        }
        @if let Some(m) = month {
            nav.months aria-label="Months" {
                a href=(link(m.previous())) { "← " (m.previous()) }
                a href=(link(m.next())) { (m.next()) " →" }
                @if provider_id.is_some() { a href={ "/settlements?month=" (m) } { "Every provider" } }
            }
        }
    }
}

/// The close form of an open month (operators), with the reason a close was refused beside it.
fn close_section(
    chrome: &Chrome,
    req: &Req,
    month: Month,
    refused: Option<&Refused>,
) -> ApiResult<Markup> {
    let error = match refused {
        Some(Refused::Close(e)) => Some(*e),
        _ => None,
    };
    let from = settlement::closes_at(req.db()?, &month, req.config.billing_timezone)?;
    let from = time(&from);
    Ok(html! {
        section.close {
            h2 { "Close " (month) }
            p { "Closing bills whatever is still due, then writes the statement of every provider whose periods of the month are all billed or written off, once, at the rate in force for the month; a provider still waiting on a period holds up its own statement only. "
                (month) " can be closed from " (from) ", once every period in it is closed for billing; the schedule closes it on its own as soon as it may, and again while a provider is open." }
            form method="post" action="/settlements/close" {
                (chrome.csrf_field())
                (crate::console::once::field())
                input type="hidden" name="month" value=(month.to_string());
                button type="submit" aria-describedby=[error.map(|_| "close-error")] { "Close " (month) }
            }
            @if let Some(e) = error { ul.field-errors id="close-error" role="alert" { (reasons(e)) } }
        }
    })
}

/// A month's instants, as a line: `2026-02-28 16:00 UTC – 2026-03-31 16:00 UTC`.
fn span_text(p: &Instants) -> String {
    format!("{} – {}", time(&p.start), time(&p.end))
}

/// The write-off form of one period that keeps its provider's month open; a refusal of it is
/// shown under it, with the reason typed.
fn write_off_form(
    chrome: &Chrome,
    month: Month,
    instance_id: &str,
    period_start: &str,
    refused: Option<&Refused>,
) -> Markup {
    let (typed, error) = match refused {
        Some(Refused::WriteOff {
            instance_id: i,
            period_start: p,
            reason,
            error,
        }) if *i == instance_id && *p == period_start => (*reason, Some(*error)),
        _ => ("", None),
    };
    let input = format!("reason-{instance_id}");
    let described = error.map(|_| format!("{input}-error"));
    html! {
        form.inline method="post" action="/settlements/write-offs" {
            (chrome.csrf_field())
            input type="hidden" name="month" value=(month.to_string());
            input type="hidden" name="instance_id" value=(instance_id);
            input type="hidden" name="period_start" value=(period_start);
            label for=(input) { "Why it cannot be billed" }
            input id=(input) name="reason" type="text" value=(typed) required maxlength="500"
                aria-invalid=[error.map(|_| "true")] aria-describedby=[described.as_deref()];
            button type="submit" { "Write off" }
        }
        @if let (Some(e), Some(d)) = (error, &described) { ul.field-errors id=(d) { (reasons(e)) } }
    }
}

/// The providers whose statement of the month waits on periods neither billed nor written off,
/// each period with why; operators get a write-off form beside each.
fn waiting_section(
    chrome: &Chrome,
    me: &Principal,
    month: Month,
    open: &[OpenProvider],
    names: &[String],
    refused: Option<&Refused>,
) -> Markup {
    html! {
        section.waiting {
            h2 { "Waiting on unbilled periods" }
            p.hint { "A provider's statement is written once every period of its instances in the month is billed or written off. Writing a period off closes it without a bill: nothing is deducted, and the instance's billing moves on to its next period." }
            div.table-wrap {
                table {
                    caption { "Periods keeping a provider's " (month) " open" }
                    thead { tr {
                        th scope="col" { "Provider" } th scope="col" { "Instance" } th scope="col" { "Period from" }
                        th scope="col" { "Why" }
                        @if me.is_operator() { th scope="col" { "Write off" } }
                    } }
                    tbody {
                        @for (o, name) in open.iter().zip(names) {
                            @for b in &o.blocking {
                                tr {
                                    td { (name) br; small { (o.provider_id) } }
                                    td { a href={ "/instances/" (b.instance_id) } { (b.instance_id) } }
                                    td { (time(&b.period_start)) }
                                    td { (b.reason) }
                                    @if me.is_operator() {
                                        td { (write_off_form(chrome, month, &b.instance_id, &rfc3339(b.period_start), refused)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The providers of the month that wait on unbilled periods, as the caller may see them: an
/// operator every one (or the one it looks at), a provider itself.
fn open_providers(
    req: &Req,
    me: &Principal,
    month: Month,
    provider_id: Option<&str>,
) -> ApiResult<Vec<OpenProvider>> {
    let scope = if me.is_operator() {
        provider_id
    } else {
        Some(me.id.as_str())
    };
    Ok(
        settlement::standing(req.db()?, &month, req.config.billing_timezone, req.now)?
            .into_iter()
            .filter(|o| scope.is_none_or(|p| o.provider_id == p))
            .collect(),
    )
}

impl Refused<'_> {
    /// Whether the page still offers the form this refusal is of, to show it beside; one whose
    /// form is gone (a statement paid meanwhile, a period written off meanwhile) is shown above
    /// everything.
    fn has_its_form(
        &self,
        me: &Principal,
        status: MonthStatus,
        statements: &[Statement],
        open: &[OpenProvider],
    ) -> bool {
        match self {
            Refused::Close(_) => me.is_operator() && status == MonthStatus::Open,
            Refused::Payout { id, .. } => statements.iter().any(|s| payable(s) == Some(*id)),
            Refused::WriteOff {
                instance_id,
                period_start,
                ..
            } => open.iter().any(|o| {
                o.blocking.iter().any(|b| {
                    b.instance_id == *instance_id && rfc3339(b.period_start) == *period_start
                })
            }),
        }
    }
}

/// A month's statements as the caller may see them, with the forms of its role.
fn month_page(
    req: &Req,
    chrome: &Chrome,
    me: &Principal,
    month: Month,
    refused: Option<Refused>,
) -> ApiResult<Resp> {
    let provider_id = req.query("provider_id").filter(|_| me.is_operator());
    let tz = req.config.billing_timezone;
    let settlement::MonthStatements {
        period,
        status,
        items: statements,
        ..
    } = settlement::statements(
        req.db()?,
        me,
        &month,
        provider_id,
        tz,
        req.config.commission_rate,
    )?;
    let open = open_providers(req, me, month, provider_id)?;
    let open_names = open
        .iter()
        .map(|o| provider_name(req, &o.provider_id))
        .collect::<ApiResult<Vec<_>>>()?;
    let shown = statements
        .iter()
        .map(|s| named(req, me, s))
        .collect::<ApiResult<Vec<_>>>()?;
    let refused = refused.as_ref();
    let beside = refused.is_none_or(|r| r.has_its_form(me, status, &statements, &open));
    let title = match provider_id {
        Some(p) => format!("Settlements of {month}: {}", provider_name(req, p)?),
        None => format!("Settlements of {month}"),
    };
    let close = if me.is_operator() && status == MonthStatus::Open {
        Some(close_section(chrome, req, month, refused)?)
    } else {
        None
    };
    let mut download = form_urlencoded::Serializer::new(String::new());
    download.append_pair("month", &month.to_string());
    if let Some(p) = provider_id {
        download.append_pair("provider_id", p);
    }
    let download = download.finish();
    let content = html! {
        @if let Some(r) = refused.filter(|_| !beside) {
            div.summary role="alert" tabindex="-1" { ul { (reasons(r.error())) } }
        }
        (picker(&month.to_string(), Some(month), provider_id, None))
        p.lead {
            @match status {
                MonthStatus::Open => { span.status { "open" } " A provider's statement is computed live from the month's bills and collections, at the rate in force for the month, until it is written: once every period of the provider's instances in the month is billed or written off." }
                MonthStatus::Closed => { span.status { "closed" } " Every provider's statement was written when its month closed, at the rate in force for the month." }
            }
        }
        p.hint { (month) " runs " (span_text(&period)) ". "
            a.download href={ "/exports/settlements?" (download) } { "Download the statements (CSV)" } }
        @if me.role == Role::Provider {
            p.hint { "What your customers paid of your products' fees within the month — whichever month they were billed in, less what credit notes gave back — less the marketplace's commission: the payout. What was billed and is not paid yet is uncollected, paid out in the month a top-up collects it. The cloud resources' fees and test orders are never settled." }
        }
        @if let Some(c) = &close { (c) }
        @if !open.is_empty() { (waiting_section(chrome, me, month, &open, &open_names, refused)) }
        @if me.is_operator() && provider_id.is_none() {
            (overview(chrome, month, status, &shown, refused))
        } @else {
            @for n in &shown { (statement_section(chrome, me, n, refused)) }
        }
    };
    let status = refused.map_or(StatusCode::OK, |r| r.error().status());
    Ok(html(status, page(chrome, &title, content)))
}

/// `GET /settlements?month=YYYY-MM[&provider_id=]`: the month's statements (this month's by
/// default): a provider its own, an operator every provider's or one's.
pub(crate) fn month(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Provider, Role::Operator])?;
    let typed = req.query("month");
    match settlement::month_of(typed, req.now, req.config.billing_timezone) {
        Ok(month) => month_page(req, chrome, me, month, None),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            let provider_id = req.query("provider_id").filter(|_| me.is_operator());
            let content = picker(typed.unwrap_or_default(), None, provider_id, Some(&e));
            Ok(html(e.status(), page(chrome, "Settlements", content)))
        }
        Err(e) => Err(e),
    }
}

/// `GET /settlements/{id}`: one written statement, its provider's or any for operators (another
/// provider's is 404, like a missing one).
pub(crate) fn statement(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Provider, Role::Operator])?;
    let s = settlement::find(req.db()?, me, id, req.config.billing_timezone)?;
    let shown = named(req, me, &s)?;
    let title = if me.is_operator() {
        format!("Statement of {}: {}", s.month, shown.provider)
    } else {
        format!("Statement of {}", s.month)
    };
    let content = html! {
        p { a href={ "/settlements?month=" (s.month) } { "← Settlements of " (s.month) } }
        (statement_section(chrome, me, &shown, None))
    };
    Ok(html(StatusCode::OK, page(chrome, &title, content)))
}

/// `POST /settlements/close`: an operator closes a month; refused (409 `MonthNotClosable`), the
/// month's page again with the reason beside the form, nothing written.
pub(crate) fn close(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    let tz = req.config.billing_timezone;
    let typed = field(req, "month").unwrap_or_default();
    let month = settlement::month_of(Some(typed.trim()), req.now, tz)?;
    match settlement::close(req.db()?, req.outbound, me, &month, req.config, req.now) {
        Ok(_) => redirect(&format!("/settlements?month={month}")),
        Err(e) if matches!(e.status(), StatusCode::BAD_REQUEST | StatusCode::CONFLICT) => {
            month_page(req, chrome, me, month, Some(Refused::Close(&e)))
        }
        Err(e) => Err(e),
    }
}

/// `POST /settlements/{id}/payout`: an operator records a closed statement paid, with the
/// transfer's reference, once (409 `AlreadyPaid` after); the month's page again either way.
pub(crate) fn pay(req: &Req, chrome: &Chrome, me: &Principal, id: &str) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    let typed = field(req, "reference").unwrap_or_default();
    let reference = Some(typed.trim()).filter(|r| !r.is_empty());
    let db = req.db()?;
    let tz = req.config.billing_timezone;
    match settlement::pay(db, me, id, reference, tz, req.now) {
        Ok(paid) => redirect(&format!("/settlements?month={}", paid.month)),
        Err(e) if matches!(e.status(), StatusCode::BAD_REQUEST | StatusCode::CONFLICT) => {
            let month = settlement::find(db, me, id, tz)?.month;
            let refused = Refused::Payout {
                id,
                reference: &typed,
                error: &e,
            };
            month_page(req, chrome, me, month, Some(refused))
        }
        Err(e) => Err(e),
    }
}

/// `POST /settlements/write-offs`: an operator writes off a period that keeps a provider's month
/// open; the month's page again, with the refusal beside the period's form when refused.
pub(crate) fn write_off(req: &Req, chrome: &Chrome, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Operator])?;
    let tz = req.config.billing_timezone;
    let typed_month = field(req, "month").unwrap_or_default();
    let month = settlement::month_of(Some(typed_month.trim()), req.now, tz)?;
    let instance_id = field(req, "instance_id").unwrap_or_default();
    let period_start = field(req, "period_start").unwrap_or_default();
    let reason = field(req, "reason").unwrap_or_default();
    let start = chrono::DateTime::parse_from_rfc3339(&period_start)
        .map(|t| t.to_utc())
        .map_err(|_| {
            ApiError::validation(vec![crate::error::FieldError::new(
                "period_start",
                Code::InvalidPeriodStart,
                "not an RFC 3339 instant",
            )])
        });
    let written = start.and_then(|start| {
        billing::write_off::write_off(
            req.db()?,
            me,
            &instance_id,
            start,
            Some(reason.trim()).filter(|r| !r.is_empty()),
            tz,
            req.now,
        )
    });
    match written {
        Ok(_) => redirect(&format!("/settlements?month={month}")),
        Err(e) if matches!(e.status(), StatusCode::BAD_REQUEST | StatusCode::CONFLICT) => {
            let refused = Refused::WriteOff {
                instance_id: &instance_id,
                period_start: &period_start,
                reason: &reason,
                error: &e,
            };
            month_page(req, chrome, me, month, Some(refused))
        }
        Err(e) => Err(e),
    }
}
