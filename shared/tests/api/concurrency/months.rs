//! Closing months while other requests run: an operator's rate, another month's close.

use serde_json::json;
use testkit::holding::until;
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at};

use super::id_of;

/// When every period of March 2026 (the default billing time zone, Asia/Shanghai) is closed.
const MARCH_CLOSES: &str = "2026-04-01T16:00:00Z";

/// An operator sets a provider's rate for March while March closes: the provider's statement is
/// written at the rate its history says for March — the new one, or the old one and the rate
/// refused (409 `MonthClosed`), whichever comes first; never a statement at the old rate beside
/// a history that says otherwise. On PostgreSQL the close is held where it links the statement
/// to its bills, after it read the rate, and the rate is set meanwhile.
#[test]
fn a_rate_set_while_its_month_closes_is_the_rate_of_its_statement_or_refused() {
    let app = TestApp::with_config(|name| (name == "commission_rate").then(|| "0.10".to_owned()));
    let (provider, product) = app.product_with_items("hour", &[Item::running_time("1.00")], true);
    let provider_id = id_of(&app, &provider);
    let (_, customer) = app.funded_customer("10000.00");
    app.order(&customer, &product);
    app.set_now(at(MARCH_CLOSES));
    app.bill_run(MARCH_CLOSES);
    let mut held = app.holding(&format!(
        "SELECT 1 FROM bills WHERE provider_id = '{provider_id}' FOR UPDATE"
    ));
    let path = format!("/api/v1/principals/{provider_id}/commission");
    let (closed, set) = std::thread::scope(|s| {
        let close = s.spawn(|| {
            app.post(
                "/api/v1/settlements/runs",
                ADMIN,
                json!({"month": "2026-03"}),
            )
        });
        held.until_waiting(1);
        let set = s.spawn(|| {
            app.put(
                &path,
                ADMIN,
                json!({"rate": "0.05", "effective_from": "2026-03"}),
            )
        });
        until("the rate set, or waiting for the close", || {
            set.is_finished() || held.waiting() >= 2
        });
        held.commit();
        (close.join().unwrap(), set.join().unwrap())
    });
    closed.expect(200);
    let statement = &app
        .get(
            &format!("/api/v1/settlements?month=2026-03&provider_id={provider_id}"),
            ADMIN,
        )
        .expect(200)
        .json()["items"][0];
    assert_eq!(statement["status"], "closed", "{statement}");
    match set.status {
        200 => assert_eq!(statement["rate"], "0.05", "the history says 5 % for March"),
        _ => {
            set.problem(409, "MonthClosed");
            assert_eq!(statement["rate"], "0.1");
        }
    }
}

/// The first closes of two adjacent months at once, on hosts told different billing time zones
/// (a rollout changing `billing_timezone`): the later month starts where the earlier one ends,
/// as frozen, whichever commits first — no gap between them for a bill to fall in, no overlap
/// for one to be settled twice. On PostgreSQL March's close (Asia/Shanghai) is held where it
/// links its bills, its instants frozen but not committed, while April's (UTC) arrives.
#[test]
fn first_closes_of_adjacent_months_at_once_leave_no_gap_between_them() {
    let app = TestApp::with_config(|name| (name == "commission_rate").then(|| "0.10".to_owned()));
    let (provider, product) = app.product_with_items("hour", &[Item::running_time("1.00")], true);
    let provider_id = id_of(&app, &provider);
    let (_, customer) = app.funded_customer("10000.00");
    app.order(&customer, &product);
    // When April may close in UTC, the later of the two zones; every period before it billed.
    let april_closes = "2026-05-02T00:00:00Z";
    app.set_now(at(april_closes));
    app.bill_run(april_closes);
    let march_ends_in_shanghai = at("2026-03-31T16:00:00Z").timestamp();
    let mut held = app.holding(&format!(
        "SELECT 1 FROM bills WHERE provider_id = '{provider_id}'
           AND period_start < {march_ends_in_shanghai} FOR UPDATE"
    ));
    let close =
        |month: &str| app.post("/api/v1/settlements/runs", ADMIN, json!({ "month": month }));
    let (march, april) = std::thread::scope(|s| {
        let march = s.spawn(|| close("2026-03"));
        held.until_waiting(1);
        app.redeploy(|name| match name {
            "commission_rate" => Some("0.10".to_owned()),
            "billing_timezone" => Some("UTC".to_owned()),
            _ => None,
        });
        let april = s.spawn(|| close("2026-04"));
        until("April closed, or waiting for March", || {
            april.is_finished() || held.waiting() >= 2
        });
        held.commit();
        (march.join().unwrap(), april.join().unwrap())
    });
    let (march, april) = (march.expect(200).json(), april.expect(200).json());
    assert_eq!(
        april["period"]["start"], march["period"]["end"],
        "March {} and April {}",
        march["period"], april["period"]
    );
}
