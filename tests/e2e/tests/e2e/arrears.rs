//! Arrears under Spin, on the test clock and on the schedule's: a bill run that leaves a
//! customer's balance below zero starts its arrears, the first run past `arrears_grace_hours`
//! (the Spin variable) suspends its running instances — no resource fees, no usage while it
//! lasts — and a top-up back to zero or above resumes them.

use chrono::{Duration, DurationRound, Utc};
use serde_json::{Value, json};
use testkit::{Item, Market, at, cents, rfc3339, usage};

use crate::harness::{HttpMarket, Manifest, SpinUp, eventually};

/// The instance's bill of the hour starting at `start`.
fn bill_of(market: &HttpMarket, token: &str, instance: &str, start: &str) -> Value {
    market
        .bills(token, Some(instance))
        .into_iter()
        .find(|b| b["period_start"] == start)
        .unwrap_or_else(|| panic!("no bill of {start}"))
}

fn status(market: &HttpMarket, token: &str, instance: &str) -> Value {
    let path = format!("/api/v1/instances/{instance}");
    market.get(&path, token).expect(200).json()["status"].clone()
}

#[test]
fn a_customer_in_arrears_past_the_grace_is_suspended_by_a_bill_run_and_resumed_by_a_top_up() {
    let app = SpinUp::new(Manifest::repo().without_cron())
        .variable("arrears_grace_hours", "1")
        .start();
    let market = app.market().at(at("2026-03-27T08:00:00Z"));
    let items = [Item::running_time("1.00"), Item::frequency()];
    let (provider, product) = market.product_with_items("hour", &items, true);
    let (customer_id, customer) = market.funded_customer("3.00");
    let instance = market.order(&customer, &product);
    let run = |instant: &str| {
        market.set_now(at(instant));
        market.bill_run(instant)
    };
    // Two hours of 1.00 running time and 1.60 of resources take 3.00 to -2.20 at 11:00.
    run("2026-03-27T11:00:00Z");
    assert_eq!(
        market.account(&customer)["arrears"],
        json!({"since": "2026-03-27T11:00:00Z", "suspension_deadline": "2026-03-27T12:00:00Z"})
    );
    assert_eq!(run("2026-03-27T11:59:00Z")["suspended"], json!([]));
    assert_eq!(run("2026-03-27T12:00:00Z")["suspended"], json!([instance]));
    assert_eq!(status(&market, &customer, &instance), "suspended");
    market
        .post(
            &format!("/api/v1/instances/{instance}/actions"),
            &customer,
            json!({"action": "start"}),
        )
        .problem(402, "AccountInArrears");
    market.set_now(at("2026-03-27T12:40:00Z"));
    let window = usage(
        "2026-03-27T12:00:00Z",
        "2026-03-27T12:30:00Z",
        "Frequency",
        3,
    );
    market
        .push_usage(&provider, &instance, &[window])
        .problem(409, "InstanceSuspended");

    // Billed while suspended: the 11:00 hour ran, the 12:00 and 13:00 hours did not.
    run("2026-03-27T15:00:00Z");
    assert_eq!(
        bill_of(&market, &customer, &instance, "2026-03-27T11:00:00Z")["total"],
        "2.60"
    );
    for hour in ["2026-03-27T12:00:00Z", "2026-03-27T13:00:00Z"] {
        let bill = bill_of(&market, &customer, &instance, hour);
        assert_eq!(bill["resource_fees"], "0.00", "{bill}");
    }
    // A top-up to zero resumes it from then: half of the 15:00 hour is charged.
    market.set_now(at("2026-03-27T15:30:00Z"));
    let owed = -cents(&market.balance(&customer));
    let account = market.top_up(&customer_id, &format!("{}.{:02}", owed / 100, owed % 100));
    assert_eq!(account["arrears"], Value::Null);
    assert_eq!(status(&market, &customer, &instance), "running");
    run("2026-03-27T17:00:00Z");
    let bill = bill_of(&market, &customer, &instance, "2026-03-27T15:00:00Z");
    assert_eq!(
        (&bill["product_fees"], &bill["resource_fees"]),
        (&json!("0.50"), &json!("0.80"))
    );
}

#[test]
fn the_schedule_suspends_on_its_own_once_the_grace_is_over() {
    let state = tempfile::tempdir().expect("a state directory");
    // An instance ordered three hours ago by a customer without funds, made on an app without
    // the schedule.
    let ordered = Utc::now()
        .duration_trunc(Duration::hours(1))
        .expect("an hour")
        - Duration::hours(3);
    let (customer_id, customer, instance) = {
        let setup = SpinUp::new(Manifest::repo().without_cron())
            .state_dir(state.path())
            .start();
        let market = setup.market().at(ordered);
        let (_, product) = market.product_with_items("hour", &[Item::running_time("1.00")], true);
        let (customer_id, customer) = market.customer("enterprise");
        let instance = market.order(&customer, &product);
        (customer_id, customer, instance)
    };
    let app = SpinUp::new(Manifest::repo().cron_every_two_seconds())
        .state_dir(state.path())
        .variable("arrears_grace_hours", "0")
        .start();
    let market = app.market();
    // The schedule bills the closed hours, which leave the balance below zero; with no grace,
    // the same run suspends the instance.
    eventually(
        "the schedule's suspension",
        std::time::Duration::from_secs(120),
        || (status(&market, &customer, &instance) == "suspended").then_some(()),
    );
    let account = market.account(&customer);
    assert!(account["arrears"].is_object(), "{account}");
    // A top-up on the real clock resumes it.
    let owed = -cents(&market.balance(&customer));
    let topped = market.top_up(
        &customer_id,
        &format!("{}.{:02}", owed / 100 + 10, owed % 100),
    );
    assert_eq!(topped["arrears"], Value::Null, "{topped}");
    assert_eq!(status(&market, &customer, &instance), "running");
    let path = format!("/api/v1/instances/{instance}");
    let resumed = market.get(&path, &customer).expect(200).json();
    assert!(
        resumed["suspensions"][0]["resumed_at"].is_string(),
        "{resumed}"
    );
    let ordered_at = rfc3339(ordered);
    assert_eq!(resumed["created_at"], ordered_at);
}
