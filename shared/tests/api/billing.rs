//! docs/RULES.md §10–§11 through the HTTP handlers and the bill-run operation: tiered, exactly-once
//! bills.

use chrono::{DateTime, Duration, Utc};
use nestmarket::platform::outbound::native::NativeOutbound;
use nestmarket::platform::storage::{
    Backend, Database, Dialect, Row, Storage, StorageError, Value as SqlValue,
};
use nestmarket::{Principal, bill_run};
use proptest::prelude::*;
use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at};

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

/// A database that fails the `n`th bill insert, as a crash halfway through a run would.
struct FailingDb {
    inner: Box<dyn Database>,
    fail_at: std::cell::Cell<usize>,
}

impl Database for FailingDb {
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StorageError> {
        if sql.trim_start().starts_with("INSERT INTO bills") {
            let left = self.fail_at.get();
            self.fail_at.set(left.saturating_sub(1));
            if left == 1 {
                return Err(StorageError::other("disk I/O error (injected)"));
            }
        }
        self.inner.execute(sql, params)
    }

    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }

    fn begin(&self) -> Result<(), StorageError> {
        self.inner.begin()
    }

    fn commit(&self) -> Result<(), StorageError> {
        self.inner.commit()
    }

    fn rollback(&self) -> Result<(), StorageError> {
        self.inner.rollback()
    }
}

fn as_of(s: &str) -> DateTime<Utc> {
    at(s)
}

/// A write that fails inside a run (a disk error on one bill) is that instance's failure: the
/// run reports it and stops billing that instance there (its periods are billed in order), the
/// bills before it stay, and the next run bills the rest — each period once.
#[test]
fn a_bill_that_cannot_be_written_is_reported_and_the_next_run_bills_the_rest_once() {
    let w = world("hour", &[Item::frequency()]);
    for h in 8..20 {
        w.push(
            &format!("2026-03-27T{h:02}:00:00Z"),
            &format!("2026-03-27T{h:02}:30:00Z"),
            "Frequency",
            10,
        );
    }
    Storage::new(w.app.backend.clone()).db().unwrap();
    let failing = FailingDb {
        inner: w.app.backend.open_db().unwrap(),
        fail_at: std::cell::Cell::new(5),
    };
    let operator = Principal::built_in_operator();
    let tz = w.app.config().billing_timezone;
    let first = bill_run(
        &failing,
        &NativeOutbound,
        tz,
        72,
        as_of("2026-03-28T00:00:00Z"),
        as_of("2026-03-28T00:00:00Z"),
        &operator,
    )
    .unwrap();
    assert_eq!(first.bills_written, 4, "the four bills before the failure");
    assert_eq!(first.failures.len(), 1, "{:?}", first.failures);
    assert_eq!(first.failures[0].instance_id, w.instance);
    assert_eq!(first.failures[0].period_start, "2026-03-27T12:00:00Z");
    assert_eq!(
        serde_json::to_value(first.failures[0].code).unwrap(),
        "bill_not_written"
    );
    assert_eq!(w.bills().len(), 4, "the four bills before the failure stay");
    let report = bill_run(
        w.app.backend.open_db().unwrap().as_ref(),
        &NativeOutbound,
        tz,
        72,
        as_of("2026-03-28T00:00:00Z"),
        as_of("2026-03-28T00:00:00Z"),
        &operator,
    )
    .unwrap();
    assert_eq!(
        report.bills_written,
        15 - 4,
        "08:00 through 22:00 are closed at midnight"
    );
    assert_eq!(scalar(&w.app, "SELECT COUNT(*) FROM bills"), 15);
    assert_eq!(
        scalar(&w.app, "SELECT COUNT(DISTINCT period_start) FROM bills"),
        15
    );
    // Each of the 15 hours is deducted once: its resources (1.60), and 5.00 of usage in twelve.
    assert_eq!(
        scalar(
            &w.app,
            "SELECT COUNT(*) FROM ledger_entries WHERE kind = 'bill'"
        ),
        15
    );
    assert_eq!(w.balance(), "916.00");
}

#[test]
fn two_runs_at_once_bill_each_period_once() {
    let w = world("hour", &[Item::frequency()]);
    let (_, c2) = w.app.customer("enterprise");
    let product = w
        .app
        .get(&format!("/api/v1/instances/{}", w.instance), ADMIN)
        .expect(200)
        .json()["product_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut instances = vec![w.instance.clone()];
    for _ in 0..5 {
        instances.push(w.app.order(&c2, &product));
    }
    w.app.set_now(at("2026-03-27T08:31:00Z"));
    for i in &instances {
        let body = json!({"ServiceInstanceId": i, "Metering": [{"StartTime": at(T0).timestamp(),
            "EndTime": at(T0).timestamp() + 1800, "Entities": [{"Key": "Frequency", "Value": "3"}]}]});
        w.app
            .post("/api/v1/metering", &w.provider, body)
            .expect(200);
    }
    let barrier = std::sync::Barrier::new(4);
    let written: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    w.app
                        .post(
                            "/api/v1/billing/runs",
                            ADMIN,
                            json!({"as_of": "2026-03-27T14:00:00Z"}),
                        )
                        .expect(200)
                        .json()["bills_written"]
                        .as_u64()
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Hours 08:00–12:00 of six instances: 30 (instance, period) pairs, billed once between them.
    assert_eq!(written.iter().sum::<u64>(), 30, "{written:?}");
    assert_eq!(scalar(&w.app, "SELECT COUNT(*) FROM bills"), 30);
    assert_eq!(
        scalar(
            &w.app,
            "SELECT COUNT(DISTINCT instance_id || period_start) FROM bills"
        ),
        30
    );
    assert_eq!(
        scalar(
            &w.app,
            "SELECT COUNT(*) FROM ledger_entries WHERE kind = 'bill'"
        ),
        30,
        "one deduction per bill"
    );
}

/// A Prometheus-compatible server on loopback: it evaluates `sum(increase(...[Ns]))` for the
/// instance named in the query over per-instance counter samples, resets included, the way
/// Prometheus does (without extrapolation).
fn prometheus(samples: Vec<(String, Vec<(i64, f64)>)>) -> String {
    testkit::serve_json(move |target| {
        let query: Vec<(String, String)> =
            form_urlencoded::parse(target.split_once('?').map_or("", |q| q.1).as_bytes())
                .into_owned()
                .collect();
        let get = |k: &str| {
            query
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let (promql, time) = (get("query"), get("time").parse::<i64>().unwrap_or(0));
        let instance = promql
            .split("service_instance_id=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("");
        let range: i64 = promql
            .rsplit('[')
            .next()
            .and_then(|r| r.split('s').next())
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let points: Vec<f64> = samples
            .iter()
            .filter(|(i, _)| i == instance)
            .flat_map(|(_, s)| {
                s.iter()
                    .filter(|(t, _)| *t > time - range && *t <= time)
                    .map(|(_, v)| *v)
            })
            .collect();
        // Prometheus's own arithmetic (samples are floats); the app truncates the answer exactly.
        #[allow(clippy::float_arithmetic)]
        let increase: f64 = points
            .windows(2)
            .map(|w| if w[1] >= w[0] { w[1] - w[0] } else { w[1] })
            .sum();
        let result = if points.is_empty() {
            json!([])
        } else {
            json!([{"metric": {}, "value": [time, increase.to_string()]}])
        };
        json!({"status": "success", "data": {"resultType": "vector", "result": result}})
    })
}

fn requests_item(endpoint: &str) -> Item {
    Item {
        code: "Requests",
        tier_mode: "graduated",
        tiers: json!([{"up_to": null, "unit_price": "0.01"}]),
        reporting: json!({"method": "compute_nest", "source": "prometheus",
                          "prometheus": {"endpoint": endpoint, "query": "http_requests_total{job=\"api\"}"}}),
    }
}

#[test]
fn prometheus_usage_is_the_increase_over_the_period_counter_resets_included() {
    let w = world("hour", &[requests_item("http://127.0.0.1:1")]);
    let t = at(T0).timestamp();
    // Samples within 08:00–09:00: 100 → 400, a restart resets to 0, then → 250: increase 550.
    let url = prometheus(vec![(
        w.instance.clone(),
        vec![
            (t + 60, 100.0),
            (t + 1200, 400.0),
            (t + 1800, 0.0),
            (t + 3000, 250.0),
        ],
    )]);
    // The instance id is known only after ordering, so the server starts now; point the item
    // at it (the product is published, so the setting is written directly).
    let db = w.app.backend.open_db().unwrap();
    let reporting = json!({"method": "compute_nest", "source": "prometheus",
        "prometheus": {"endpoint": url, "query": "http_requests_total{job=\"api\"}"}})
    .to_string();
    db.execute(
        "UPDATE billable_item_settings SET reporting = ?",
        &[reporting.into()],
    )
    .unwrap();
    w.run("2026-03-27T10:00:00Z");
    let bill = w.bill_for("2026-03-27T08:00:00Z");
    assert_eq!(bill["lines"][0]["quantity"], "550");
    assert_eq!(bill["product_fees"], "5.50");
}

#[test]
fn an_unreachable_prometheus_records_nothing_and_is_retried_next_run() {
    let w = world("hour", &[requests_item("http://127.0.0.1:1")]);
    let report = w.run("2026-03-27T10:00:00Z");
    assert_eq!(report["bills_written"], 0);
    assert!(
        report["failures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{report}"
    );
    assert_eq!(scalar(&w.app, "SELECT COUNT(*) FROM usage_records"), 0);
    assert!(w.bills().is_empty());
    // Once the endpoint answers, the next run bills the period.
    let url = prometheus(vec![(
        w.instance.clone(),
        vec![
            (at(T0).timestamp() + 10, 1.0),
            (at(T0).timestamp() + 20, 3.0),
        ],
    )]);
    let reporting = json!({"method": "compute_nest", "source": "prometheus",
        "prometheus": {"endpoint": url, "query": "http_requests_total"}})
    .to_string();
    w.app
        .backend
        .open_db()
        .unwrap()
        .execute(
            "UPDATE billable_item_settings SET reporting = ?",
            &[reporting.into()],
        )
        .unwrap();
    let report = w.run("2026-03-27T10:00:00Z");
    assert_eq!(report["bills_written"], 1, "{report}");
    assert_eq!(
        w.bill_for("2026-03-27T08:00:00Z")["lines"][0]["quantity"],
        "2"
    );
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

#[test]
fn a_preview_of_a_billed_period_is_its_bill_and_an_unreadable_source_says_nothing_internal() {
    let w = world("hour", &[requests_item("http://127.0.0.1:1")]);
    w.app.set_now(at("2026-03-27T08:30:00Z"));
    let body = json!({"instance_id": w.instance, "period_start": T0});
    let r = w
        .app
        .post("/api/v1/billing/preview", &w.customer, body.clone())
        .problem(502, "PlatformSourceUnavailable");
    assert!(!r.to_string().contains("127.0.0.1"), "{r}");
    let url = prometheus(vec![(
        w.instance.clone(),
        vec![
            (at(T0).timestamp() + 10, 1.0),
            (at(T0).timestamp() + 20, 4.0),
        ],
    )]);
    let reporting = json!({"method": "compute_nest", "source": "prometheus",
        "prometheus": {"endpoint": url, "query": "http_requests_total"}})
    .to_string();
    let db = w.app.backend.open_db().unwrap();
    db.execute(
        "UPDATE billable_item_settings SET reporting = ?",
        &[reporting.clone().into()],
    )
    .unwrap();
    w.run("2026-03-27T10:00:00Z");
    let bill = w.bill_for("2026-03-27T08:00:00Z");
    // The endpoint goes away again; the billed period's preview no longer needs it.
    let gone = reporting.replace(&url, "http://127.0.0.1:1");
    db.execute(
        "UPDATE billable_item_settings SET reporting = ?",
        &[gone.into()],
    )
    .unwrap();
    w.app.set_now(at("2026-03-27T10:30:00Z"));
    let p = w
        .app
        .post("/api/v1/billing/preview", &w.customer, body)
        .expect(200)
        .json();
    assert_eq!(p["bill_id"], bill["id"]);
    assert_eq!(p["total"], bill["total"]);
    assert_eq!(p["product_fees"], "0.03");
}

/// A preview sent with an `Idempotency-Key` whose Prometheus cannot be read is the documented
/// 502, as without a key (not a 500), and is not recorded: once the endpoint answers, the same
/// request under the same key is priced.
#[test]
fn an_unreadable_source_is_502_under_an_idempotency_key_too_and_not_replayed() {
    let w = world("hour", &[requests_item("http://127.0.0.1:1")]);
    w.app.set_now(at("2026-03-27T08:30:00Z"));
    let body = json!({"instance_id": w.instance, "period_start": T0}).to_string();
    let preview = || {
        w.app.call_with_headers(
            "POST",
            "/api/v1/billing/preview",
            Some(&w.customer),
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "preview-1"),
            ],
            body.clone().into_bytes(),
        )
    };
    preview().problem(502, "PlatformSourceUnavailable");
    let url = prometheus(vec![(
        w.instance.clone(),
        vec![(at(T0).timestamp() + 10, 1.0)],
    )]);
    let reporting = json!({"method": "compute_nest", "source": "prometheus",
        "prometheus": {"endpoint": url, "query": "http_requests_total"}});
    w.app
        .backend
        .open_db()
        .unwrap()
        .execute(
            "UPDATE billable_item_settings SET reporting = ?",
            &[reporting.to_string().into()],
        )
        .unwrap();
    preview().expect(200);
}

#[test]
fn bills_are_listed_oldest_period_first_by_page() {
    let w = world("hour", &[Item::frequency()]);
    w.run("2026-03-27T15:00:00Z");
    let path = format!("/api/v1/bills?instance_id={}&limit=3", w.instance);
    let mut starts = Vec::new();
    let mut next = w.app.get(&path, &w.customer).expect(200).json();
    loop {
        starts.extend(
            next["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["period_start"].as_str().unwrap().to_owned()),
        );
        let Some(cursor) = next["next_cursor"].as_str() else {
            break;
        };
        next = w
            .app
            .get(&format!("{path}&cursor={cursor}"), &w.customer)
            .expect(200)
            .json();
    }
    let expected: Vec<String> = (8..=13)
        .map(|h| format!("2026-03-27T{h:02}:00:00Z"))
        .collect();
    assert_eq!(starts, expected);
    // Written when the run happened, whatever its as_of.
    let bill = &w.bills()[0];
    assert_eq!(
        bill["created_at"],
        w.app
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
}

#[test]
fn another_tenants_bill_id_is_no_cursor() {
    let w = world("hour", &[Item::frequency()]);
    let product = w
        .app
        .get(&format!("/api/v1/instances/{}", w.instance), ADMIN)
        .expect(200)
        .json()["product_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, stranger) = w.app.customer("individual");
    w.app.order(&stranger, &product);
    w.run("2026-03-27T12:00:00Z");
    let own = w.app.get("/api/v1/bills", &stranger).expect(200).json();
    assert_eq!(
        own["items"].as_array().unwrap().len(),
        3,
        "the stranger has bills of its own"
    );
    // Another customer's bill id must not position the stranger's listing.
    let theirs = w.bills()[0]["id"].as_str().unwrap().to_owned();
    let page = w
        .app
        .get(&format!("/api/v1/bills?cursor={theirs}"), &stranger)
        .expect(200)
        .json();
    assert_eq!(page["items"], json!([]));
}

/// Every bill has two parts: the product's fees (its usage lines) and the cloud resources'
/// fees — one line per resource of the template the instance was ordered with, charged
/// `count × hourly_fee` for the seconds it ran in the period, stops excluded. One deduction
/// takes the total; a period without usage or running time costs 0.00 and deducts nothing; and
/// the fees are the template's at order time, whatever the service says later.
#[test]
fn a_bill_charges_the_resources_for_the_seconds_the_instance_ran() {
    let app =
        TestApp::with_config(|name| (name == "allow_clock_override").then(|| "true".to_owned()));
    app.set_now(at(T0));
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = app.funded_customer("100.00");
    app.set_now(at("2026-03-27T08:30:00Z"));
    let instance = app.order(&customer, &product);
    // The provider raises the template's fee afterwards: running instances are not repriced.
    let db = app.backend.open_db().unwrap();
    db.execute(
        "UPDATE services SET spec = replace(spec, '\"0.80\"', '\"9.99\"')",
        &[],
    )
    .unwrap();
    app.set_now(at("2026-03-27T09:40:00Z"));
    app.push_usage(
        &provider,
        &instance,
        &[
            testkit::usage(
                "2026-03-27T08:30:00Z",
                "2026-03-27T09:00:00Z",
                "Frequency",
                4,
            ),
            testkit::usage(
                "2026-03-27T09:00:00Z",
                "2026-03-27T09:30:00Z",
                "Frequency",
                2,
            ),
        ],
    )
    .expect(200);
    app.set_now(at("2026-03-27T10:00:00Z"));
    app.act(&customer, &instance, "stop");
    // By 12:00 the hours 08:00 to 10:00 have closed.
    let report = app.bill_run("2026-03-27T12:00:00Z");
    assert_eq!(report["bills_written"], 3, "{report}");

    let bills = app.bills(&customer, Some(&instance));
    let hour = |start: &str| {
        bills
            .iter()
            .find(|b| b["period_start"] == start)
            .unwrap()
            .clone()
    };
    // 08:00: from the order at 08:30, 1,800 s of 2 × ecs at 0.80/h.
    let eight = hour("2026-03-27T08:00:00Z");
    assert_eq!(eight["lines"][0]["code"], "Frequency");
    assert_eq!(eight["product_fees"], "2.00");
    assert_eq!(
        eight["resource_lines"],
        json!([{"type": "ecs", "spec": "ecs.g7.large", "count": 2, "hourly_fee": "0.80",
                "running_seconds": 1800, "amount": "0.80"}])
    );
    assert_eq!(eight["resource_fees"], "0.80");
    assert_eq!(eight["total"], "2.80");
    // 09:00: the whole hour.
    let nine = hour("2026-03-27T09:00:00Z");
    assert_eq!(nine["product_fees"], "1.00");
    assert_eq!(nine["resource_fees"], "1.60");
    assert_eq!(nine["total"], "2.60");
    // 10:00: stopped all hour, no usage.
    let ten = hour("2026-03-27T10:00:00Z");
    assert_eq!(ten["resource_lines"][0]["running_seconds"], 0);
    assert_eq!(ten["total"], "0.00");

    // One deduction per bill that costs something, of its total.
    let deductions: Vec<(Value, Value)> = app
        .ledger(&customer)
        .into_iter()
        .filter(|e| e["kind"] == "bill")
        .map(|e| (e["reference"].clone(), e["amount"].clone()))
        .collect();
    assert_eq!(deductions.len(), 2, "{deductions:?}");
    for bill in [&eight, &nine] {
        let amount = format!("-{}", bill["total"].as_str().unwrap());
        assert!(
            deductions.contains(&(bill["id"].clone(), json!(amount))),
            "{deductions:?}"
        );
    }
    assert_eq!(app.balance(&customer), "94.60");
}

#[test]
fn an_instance_released_on_a_period_boundary_is_billed_through_the_period_before() {
    let w = world("hour", &[Item::running_time("1.00")]);
    w.app.set_now(at("2026-03-27T10:00:00Z"));
    w.app.act(&w.customer, &w.instance, "release");
    let report = w.run("2026-03-27T14:00:00Z");
    assert_eq!(report["bills_written"], 2, "{report}");
    let periods: Vec<Value> = w
        .bills()
        .iter()
        .map(|b| b["period_start"].clone())
        .collect();
    assert_eq!(
        periods,
        [json!("2026-03-27T08:00:00Z"), json!("2026-03-27T09:00:00Z")]
    );
    // Nothing is left to bill: the next run finds nothing due.
    assert_eq!(w.run("2026-03-28T14:00:00Z")["bills_written"], 0);
}

/// One run bills every closed period of every instance, however far apart their cursors stand:
/// an instance days behind is caught up although another one's next period closes later than
/// each of its own (the run's keyset once stepped past them, billing one period per run).
#[test]
fn a_run_catches_up_instances_far_behind_others_in_one_run() {
    let w = world("hour", &[Item::running_time("1.00")]);
    let (_, product) = w
        .app
        .product_with_items("hour", &[Item::running_time("1.00")], true);
    w.app.set_now(at("2026-03-29T08:00:00Z"));
    let recent = w.app.order(&w.customer, &product);
    let report = w.run("2026-03-29T10:00:00Z");
    assert_eq!(report["failures"], json!([]), "{report}");
    // 08:00 on the 27th to 08:00 on the 29th for the first, the 08:00 hour for the second.
    assert_eq!(report["bills_written"], 49 + 1, "{report}");
    assert_eq!(w.app.bills(&w.customer, Some(&recent)).len(), 1);
}
