//! The `billing` cron component (`[[trigger.cron]]`): each event's timestamp is "now", and the event
//! bills every closed, unbilled hour exactly once.
mod common;

use common::{ADMIN_TOKEN, Expect, Market, str_of, unix};
use serde_json::{Value, json};
use spin_test_host::ResponseExt;

const ORDERED_AT: &str = "2026-03-27T08:00:00Z";

/// A customer (1,000.00) with an instance ordered at 08:00 and 1,001 API calls pushed for the
/// 08:00 hour at 09:01: (market, provider token, customer token, instance id).
fn metered() -> (Market, String, String, String) {
    let market = Market::new("2026-03-27T07:00:00Z");
    let (provider, product) = market.published_product();
    market.set_now(ORDERED_AT);
    let (customer, instance) = market.customer_with_instance(&product, "1000.00");
    market.set_now("2026-03-27T09:01:00Z");
    let pushed = market
        .push_usage(
            &provider,
            &instance,
            "2026-03-27T08:00:00Z",
            "2026-03-27T09:00:00Z",
            1001,
        )
        .expect_status(200)
        .json();
    assert_eq!(pushed["accepted"], 1, "{pushed}");
    (market, provider, customer, instance)
}

fn cron_at(market: &Market, at: &str) {
    let timestamp = u64::try_from(unix(at)).expect("after 1970");
    market
        .app
        .cron(timestamp)
        .unwrap_or_else(|e| panic!("the cron event at {at} failed: {e:?}"));
}

fn assert_the_08_00_bill(bills: &[Value]) {
    assert_eq!(bills.len(), 1, "{bills:?}");
    let bill = &bills[0];
    assert_eq!(bill["period_start"], "2026-03-27T08:00:00Z", "{bill}");
    assert_eq!(bill["period_end"], "2026-03-27T09:00:00Z");
    assert_eq!(bill["total"], "500.40");
    assert_eq!(bill["lines"][0]["quantity"], "1001");
    assert_eq!(bill["lines"][0]["breakdown"][0]["quantity"], "1000");
    assert_eq!(bill["lines"][0]["breakdown"][1]["quantity"], "1");
}

#[test]
fn the_cron_event_bills_a_closed_hour_exactly_once() {
    let (market, _, customer, instance) = metered();

    // Before the hour closes (10:00), an event bills nothing.
    cron_at(&market, "2026-03-27T09:59:59Z");
    assert!(market.bills(&customer, &instance).is_empty());
    assert_eq!(market.balance(&customer), "1000.00");

    // The first event after the close bills it, with its tier breakdown, and deducts it.
    cron_at(&market, "2026-03-27T10:00:00Z");
    let bills = market.bills(&customer, &instance);
    assert_the_08_00_bill(&bills);
    assert_eq!(market.balance(&customer), "499.60");
    let account = market
        .get("/api/v1/accounts/me", Some(&customer))
        .expect_status(200)
        .json();
    let last = &account["ledger"]["items"][0];
    assert_eq!(last["kind"], "bill", "{account}");
    assert_eq!(last["amount"], "-500.40");
    assert_eq!(last["reference"], bills[0]["id"]);

    // The same event again, and a later one in the same hour, bill nothing more.
    cron_at(&market, "2026-03-27T10:00:00Z");
    cron_at(&market, "2026-03-27T10:05:00Z");
    assert_eq!(market.bills(&customer, &instance), bills);
    assert_eq!(market.balance(&customer), "499.60");

    // Nor does an on-demand run racing the schedule afterwards.
    let rerun = market
        .post(
            "/api/v1/billing/runs",
            ADMIN_TOKEN,
            json!({"as_of": "2026-03-27T10:05:00Z"}),
        )
        .expect_status(200)
        .json();
    assert_eq!(rerun["bills_written"], 0, "{rerun}");
    assert_eq!(market.bills(&customer, &instance), bills);
}

#[test]
fn a_late_cron_event_catches_up_on_every_closed_hour() {
    let (market, provider, customer, instance) = metered();
    // Missed events: at 12:00 the hours 08:00, 09:00 and 10:00 are closed.
    cron_at(&market, "2026-03-27T12:00:00Z");
    let bills = market.bills(&customer, &instance);
    let mut periods: Vec<(String, String)> = bills
        .iter()
        .map(|b| (str_of(&b["period_start"]), str_of(&b["total"])))
        .collect();
    periods.sort();
    assert_eq!(
        periods,
        [
            ("2026-03-27T08:00:00Z".to_owned(), "500.40".to_owned()),
            ("2026-03-27T09:00:00Z".to_owned(), "0.00".to_owned()),
            ("2026-03-27T10:00:00Z".to_owned(), "0.00".to_owned()),
        ]
    );
    assert_eq!(market.balance(&customer), "499.60");
    // Late usage for a billed (closed) hour is refused: a bill never changes.
    market.set_now("2026-03-27T12:00:00Z");
    market
        .push_usage(
            &provider,
            &instance,
            "2026-03-27T09:00:00Z",
            "2026-03-27T10:00:00Z",
            5,
        )
        .problem(409, "PeriodClosed");
    assert_eq!(market.bills(&customer, &instance).len(), 3);
}

#[test]
fn an_event_before_anything_closes_bills_nothing() {
    let (market, _, customer, instance) = metered();
    cron_at(&market, ORDERED_AT);
    cron_at(&market, "2026-03-27T09:30:00Z");
    assert!(market.bills(&customer, &instance).is_empty());
    assert_eq!(market.balance(&customer), "1000.00");
    // The operator's view agrees: no bill anywhere.
    let all = market
        .get("/api/v1/bills", Some(ADMIN_TOKEN))
        .expect_status(200)
        .json();
    assert_eq!(all["items"], json!([]));
}
