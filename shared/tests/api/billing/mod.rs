//! docs/RULES.md §10–§11 through the HTTP handlers and the bill-run operation: tiered, exactly-once
//! bills.

use chrono::Duration;
use nestmarket::platform::storage::{Backend, Value as SqlValue};
use proptest::prelude::*;
use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at};

mod bills;
mod failures;
mod prometheus;

const T0: &str = "2026-03-27T08:00:00Z";

/// A customer with 1,000.00 and an instance of an hourly product with `items`, ordered at 08:00.
struct World {
    app: TestApp,
    provider: String,
    customer: String,
    instance: String,
}

fn world(period: &str, items: &[Item]) -> World {
    let app =
        TestApp::with_config(|name| (name == "allow_clock_override").then(|| "true".to_owned()));
    app.set_now(at(T0));
    let (provider, product) = app.product_with_items(period, items, true);
    let (customer_id, customer) = app.customer("enterprise");
    app.post(
        &format!("/api/v1/accounts/{customer_id}/top-ups"),
        ADMIN,
        json!({"amount": "1000.00"}),
    )
    .expect(201);
    let instance = app.order(&customer, &product);
    World {
        app,
        provider,
        customer,
        instance,
    }
}

impl World {
    /// Pushes usage a minute after its window ends, as a provider's meter would.
    fn push(&self, start: &str, end: &str, key: &str, value: u64) {
        let after_window = at(end) + Duration::minutes(1);
        if self.app.now() < after_window {
            self.app.set_now(after_window);
        }
        let body = json!({"ServiceInstanceId": self.instance, "Metering": [{
            "StartTime": at(start).timestamp(), "EndTime": at(end).timestamp(),
            "Entities": [{"Key": key, "Value": value.to_string()}]}]});
        self.app
            .post("/api/v1/metering", &self.provider, body)
            .expect(200);
    }

    fn run(&self, as_of: &str) -> Value {
        self.app
            .post("/api/v1/billing/runs", ADMIN, json!({"as_of": as_of}))
            .expect(200)
            .json()
    }

    fn bills(&self) -> Vec<Value> {
        let r = self.app.get(
            &format!("/api/v1/bills?instance_id={}&limit=500", self.instance),
            &self.customer,
        );
        r.expect(200).json()["items"].as_array().unwrap().clone()
    }

    fn balance(&self) -> String {
        self.app
            .get("/api/v1/accounts/me", &self.customer)
            .expect(200)
            .json()["account"]["balance"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn bill_for(&self, period_start: &str) -> Value {
        self.bills()
            .into_iter()
            .find(|b| b["period_start"] == period_start)
            .unwrap_or_else(|| panic!("no bill for {period_start}"))
    }
}

fn scalar(app: &TestApp, sql: &str) -> i64 {
    match app.backend.open_db().unwrap().execute(sql, &[]).unwrap()[0].0[0] {
        SqlValue::Integer(n) => n,
        ref v => panic!("{v:?}"),
    }
}

#[test]
fn a_closed_hour_becomes_one_bill_with_its_tier_breakdown_and_ledger_deduction() {
    let w = world("hour", &[Item::frequency()]);
    w.push(
        "2026-03-27T08:00:00Z",
        "2026-03-27T08:30:00Z",
        "Frequency",
        600,
    );
    w.push(
        "2026-03-27T08:30:00Z",
        "2026-03-27T09:00:00Z",
        "Frequency",
        401,
    );
    // Hour 08:00 closes at 10:00: not yet billed at 09:59:59.
    assert_eq!(w.run("2026-03-27T09:59:59Z")["bills_written"], 0);
    let report = w.run("2026-03-27T10:00:00Z");
    assert_eq!(report["bills_written"], 1);
    let bill = w.bill_for("2026-03-27T08:00:00Z");
    // The usage (1,000 × 0.5 + 1 × 0.4) and an hour of the template's resources (2 × 0.80).
    assert_eq!(bill["product_fees"], "500.40");
    assert_eq!(bill["resource_fees"], "1.60");
    assert_eq!(bill["total"], "502.00");
    assert_eq!(bill["period_end"], "2026-03-27T09:00:00Z");
    assert_eq!(bill["test"], false);
    let line = &bill["lines"][0];
    assert_eq!(line["quantity"], "1001");
    assert_eq!(line["amount"], "500.40");
    assert_eq!(line["breakdown"][0]["quantity"], "1000");
    assert_eq!(line["breakdown"][1]["quantity"], "1");
    assert_eq!(w.balance(), "498.00");
    let me = w
        .app
        .get("/api/v1/accounts/me", &w.customer)
        .expect(200)
        .json();
    assert_eq!(me["ledger"]["items"][0]["kind"], "bill");
    assert_eq!(me["ledger"]["items"][0]["amount"], "-502.00");
    assert_eq!(me["ledger"]["items"][0]["reference"], bill["id"]);
    // The customer and the provider see it; a stranger does not.
    let id = bill["id"].as_str().unwrap();
    w.app
        .get(&format!("/api/v1/bills/{id}"), &w.customer)
        .expect(200);
    w.app
        .get(&format!("/api/v1/bills/{id}"), &w.provider)
        .expect(200);
    let (_, stranger) = w.app.customer("individual");
    w.app
        .get(&format!("/api/v1/bills/{id}"), &stranger)
        .problem(404, "NotFound");
    assert_eq!(
        w.app.get("/api/v1/bills", &stranger).expect(200).json()["items"],
        json!([])
    );
}

#[test]
fn running_again_bills_nothing_twice() {
    let w = world("hour", &[Item::frequency()]);
    w.push(
        "2026-03-27T08:00:00Z",
        "2026-03-27T08:30:00Z",
        "Frequency",
        10,
    );
    w.run("2026-03-27T12:00:00Z");
    let (bills, balance) = (w.bills(), w.balance());
    assert_eq!(
        bills.len(),
        3,
        "08:00, 09:00 and 10:00 (which closes at 12:00 exactly)"
    );
    assert_eq!(w.run("2026-03-27T12:00:00Z")["bills_written"], 0);
    assert_eq!(w.bills(), bills);
    assert_eq!(w.balance(), balance);
}

#[test]
fn catch_up_after_days_bills_every_hour_once_and_oldest_first() {
    let w = world("hour", &[Item::frequency()]);
    w.push(
        "2026-03-27T09:00:00Z",
        "2026-03-27T09:30:00Z",
        "Frequency",
        2,
    );
    let report = w.run("2026-03-30T08:00:00Z");
    // Hours 08:00 on the 27th through 06:00 on the 30th are closed: 16 + 24 + 24 + 7 = 71.
    assert_eq!(report["bills_written"], 71);
    let bills = w.bills();
    assert_eq!(bills.len(), 71);
    let starts: std::collections::BTreeSet<&str> = bills
        .iter()
        .map(|b| b["period_start"].as_str().unwrap())
        .collect();
    assert_eq!(starts.len(), 71);
    let nine = w.bill_for("2026-03-27T09:00:00Z");
    assert_eq!(nine["product_fees"], "1.00");
    assert_eq!(nine["total"], "2.60");
    // Every hour ran: each deducts its resources (1.60), the 09:00 hour its usage too.
    assert_eq!(w.balance(), "885.40");
    assert_eq!(
        scalar(
            &w.app,
            "SELECT COUNT(*) FROM ledger_entries WHERE kind = 'bill'"
        ),
        71
    );
}

#[test]
fn day_periods_turn_at_midnight_in_the_billing_time_zone() {
    let w = world("day", &[Item::frequency()]);
    // 15:30–15:59 UTC is the end of the Shanghai day of the 27th; 16:10 UTC is the 28th there.
    w.push(
        "2026-03-27T15:30:00Z",
        "2026-03-27T15:59:00Z",
        "Frequency",
        3,
    );
    w.push(
        "2026-03-27T16:10:00Z",
        "2026-03-27T16:40:00Z",
        "Frequency",
        5,
    );
    // The Shanghai day of the 27th (16:00 UTC on the 26th → 16:00 UTC on the 27th) closes at the
    // end of the next day: 16:00 UTC on the 28th.
    assert_eq!(w.run("2026-03-28T15:59:59Z")["bills_written"], 0);
    w.run("2026-03-28T16:00:00Z");
    assert_eq!(w.bill_for("2026-03-26T16:00:00Z")["product_fees"], "1.50");
    w.run("2026-03-29T16:00:00Z");
    assert_eq!(w.bill_for("2026-03-27T16:00:00Z")["product_fees"], "2.50");
}

#[test]
fn running_time_is_billed_from_the_instance_intervals() {
    let period = Item {
        code: "Period",
        tier_mode: "graduated",
        tiers: json!([{"up_to": null, "unit_price": "1.00"}]),
        reporting: json!({"method": "compute_nest", "source": "time"}),
    };
    let w = world("hour", &[period]);
    // Stopped at 08:30, started at 09:45, released at 10:15.
    let act = |at_time: &str, action: &str| {
        w.app.set_now(at(at_time));
        w.app
            .post(
                &format!("/api/v1/instances/{}/actions", w.instance),
                &w.customer,
                json!({"action": action}),
            )
            .expect(200);
    };
    act("2026-03-27T08:30:00Z", "stop");
    act("2026-03-27T09:45:00Z", "start");
    act("2026-03-27T10:15:00Z", "release");
    w.app.set_now(at("2026-03-28T00:00:00Z"));
    let report = w.run("2026-03-28T00:00:00Z");
    assert_eq!(
        report["bills_written"], 3,
        "08:00, 09:00 and 10:00; nothing after the release"
    );
    // 1,800 s of Period at 1.00/h, and of the resources (2 × 0.80/h) for as long.
    let eight = w.bill_for("2026-03-27T08:00:00Z");
    assert_eq!(eight["product_fees"], "0.50");
    assert_eq!(eight["resource_lines"][0]["running_seconds"], 1800);
    assert_eq!(eight["resource_fees"], "0.80");
    assert_eq!(w.bill_for("2026-03-27T09:00:00Z")["total"], "0.65");
    assert_eq!(w.bill_for("2026-03-27T10:00:00Z")["total"], "0.65");
    assert_eq!(w.run("2026-03-29T00:00:00Z")["bills_written"], 0);
    let usage = w
        .app
        .get(
            &format!("/api/v1/metering/usage?instance_id={}", w.instance),
            &w.provider,
        )
        .expect(200)
        .json();
    assert_eq!(usage["totals"][0]["quantity"], "0.5");
}

#[test]
fn platform_bills_are_reported_once_and_billed() {
    let fee = Item {
        code: "BillFee",
        tier_mode: "volume",
        tiers: json!([{"up_to": null, "unit_price": "1.1"}]),
        reporting: json!({"method": "compute_nest", "source": "bill"}),
    };
    let w = world("hour", &[fee]);
    let (_, platform) = w.app.principal("platform", None);
    w.app.set_now(at("2026-03-27T09:10:00Z"));
    let body = json!({"instance_id": w.instance, "period_start": "2026-03-27T08:00:00Z", "amount": "12.34"});
    assert_eq!(
        w.app
            .post("/api/v1/metering/platform-bills", &platform, body.clone())
            .expect(200)
            .json()["accepted"],
        1
    );
    assert_eq!(
        w.app
            .post("/api/v1/metering/platform-bills", &platform, body.clone())
            .expect(200)
            .json()["duplicates"],
        1
    );
    let before = w.app.snapshot();
    let mut changed = body.clone();
    changed["amount"] = json!("12.35");
    w.app
        .post("/api/v1/metering/platform-bills", &platform, changed)
        .problem(409, "DuplicateRecordConflict");
    let mut odd = body.clone();
    odd["period_start"] = json!("2026-03-27T08:30:00Z");
    w.app
        .post("/api/v1/metering/platform-bills", &platform, odd)
        .problem(400, "InvalidPeriodStart");
    w.app
        .post("/api/v1/metering/platform-bills", &w.customer, body)
        .problem(403, "Forbidden");
    assert_eq!(w.app.snapshot(), before);
    w.run("2026-03-27T10:00:00Z");
    assert_eq!(
        w.bill_for("2026-03-27T08:00:00Z")["product_fees"],
        "13.57",
        "12.34 × 1.1 = 13.574, truncated"
    );
}

#[test]
fn test_orders_are_billed_as_test_and_deduct_nothing() {
    let app =
        TestApp::with_config(|name| (name == "allow_clock_override").then(|| "true".to_owned()));
    app.set_now(at(T0));
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], false);
    let instance = app.order(&provider, &product);
    let body = json!({"ServiceInstanceId": instance, "Metering": [{"StartTime": at(T0).timestamp(),
        "EndTime": at(T0).timestamp() + 1800, "Entities": [{"Key": "Frequency", "Value": "100"}]}]});
    app.set_now(at("2026-03-27T09:00:00Z"));
    app.post("/api/v1/metering", &provider, body).expect(200);
    let report = app
        .post(
            "/api/v1/billing/runs",
            ADMIN,
            json!({"as_of": "2026-03-27T10:00:00Z"}),
        )
        .expect(200)
        .json();
    assert_eq!(report["test_bills"], 1);
    assert_eq!(report["deducted"], "0");
    let bills = app.get("/api/v1/bills", &provider).expect(200).json();
    assert_eq!(bills["items"][0]["test"], true);
    assert_eq!(bills["items"][0]["total"], "51.60");
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM ledger_entries"), 0);
}

#[test]
fn bill_runs_are_for_operators_and_the_platform_and_not_dated_ahead() {
    let app = TestApp::new();
    let (_, customer) = app.customer("individual");
    let (_, platform) = app.principal("platform", None);
    app.post("/api/v1/billing/runs", &customer, json!({}))
        .problem(403, "Forbidden");
    app.post("/api/v1/billing/runs", &platform, json!({}))
        .expect(200);
    let ahead = (app.now() + Duration::hours(1)).to_rfc3339();
    app.post("/api/v1/billing/runs", ADMIN, json!({"as_of": ahead}))
        .problem(409, "AsOfInFuture");
    app.post("/api/v1/billing/runs", ADMIN, json!({"as_of": "yesterday"}))
        .problem(400, "InvalidJson");
}

#[test]
fn a_preview_prices_an_open_period_and_writes_nothing() {
    let w = world("hour", &[Item::frequency()]);
    w.push(
        "2026-03-27T08:00:00Z",
        "2026-03-27T08:30:00Z",
        "Frequency",
        5001,
    );
    w.app.set_now(at("2026-03-27T08:40:00Z"));
    let before = w.app.snapshot();
    let p = w
        .app
        .post(
            "/api/v1/billing/preview",
            &w.customer,
            json!({"instance_id": w.instance, "period_start": T0}),
        )
        .expect(200)
        .json();
    // Running time counts up to now in an open period: 40 minutes of the resources.
    assert_eq!(p["product_fees"], "2100.20");
    assert_eq!(p["resource_fees"], "1.06");
    assert_eq!(p["total"], "2101.26");
    assert_eq!(p["closed"], false);
    assert_eq!(w.app.snapshot(), before);
    w.app
        .post(
            "/api/v1/billing/preview",
            &w.customer,
            json!({"instance_id": w.instance, "period_start": "2026-03-27T08:15:00Z"}),
        )
        .problem(400, "InvalidPeriodStart");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Splitting the same usage across pushes never changes the bill, and running again never
    /// changes anything.
    #[test]
    fn splitting_usage_never_changes_the_bill(parts in prop::collection::vec(1u64..3000, 1..6)) {
        let total: u64 = parts.iter().sum();
        let whole = world("hour", &[Item::frequency()]);
        whole.push("2026-03-27T08:00:00Z", "2026-03-27T08:59:00Z", "Frequency", total);
        whole.run("2026-03-27T10:00:00Z");
        let split = world("hour", &[Item::frequency()]);
        for (i, v) in parts.iter().enumerate() {
            // Distinct windows (each longer than 5 minutes) inside the hour.
            let start = at(T0) + Duration::seconds(i as i64 * 60);
            let end = start + Duration::minutes(6);
            split.push(&start.to_rfc3339(), &end.to_rfc3339(), "Frequency", *v);
        }
        split.run("2026-03-27T10:00:00Z");
        split.run("2026-03-27T10:00:00Z");
        let (a, b) = (whole.bill_for("2026-03-27T08:00:00Z"), split.bill_for("2026-03-27T08:00:00Z"));
        prop_assert_eq!(&a["total"], &b["total"]);
        prop_assert_eq!(&a["lines"], &b["lines"]);
        prop_assert_eq!(whole.balance(), split.balance());
        prop_assert_eq!(split.bills().len(), 1);
    }
}
