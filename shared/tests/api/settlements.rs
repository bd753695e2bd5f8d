//! docs/RULES.md §13 through the HTTP handlers and the schedule: a provider's monthly statement
//! is its products' fees less the commission, written once when the month closes, paid once.

use nestmarket::platform::outbound::native::NativeOutbound;
use nestmarket::platform::storage::Storage;
use nestmarket::scheduled_run;
use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at, cents, str_of};

/// When every period of March 2026 (Asia/Shanghai) is closed: the end of April 1st there.
const MARCH_CLOSES: &str = "2026-04-01T16:00:00Z";

/// Two providers' hourly products ordered by one customer at 08:00 UTC on March 27th, each
/// billed 1 unit per running hour: A's at 1.00, B's at 3.33. The deployment's commission is 10%.
struct World {
    app: TestApp,
    provider_a: (String, String),
    provider_b: (String, String),
    product_a: String,
    product_b: String,
}

fn world() -> World {
    let app = TestApp::with_config(|name| match name {
        "allow_clock_override" => Some("true".to_owned()),
        "commission_rate" => Some("0.10".to_owned()),
        _ => None,
    });
    let (token_a, product_a) = app.product_with_items("hour", &[Item::running_time("1.00")], true);
    let (token_b, product_b) = app.product_with_items("hour", &[Item::running_time("3.33")], true);
    let (_, customer) = app.funded_customer("10000.00");
    app.order(&customer, &product_a);
    app.order(&customer, &product_b);
    World {
        provider_a: (principal_id(&app, &token_a), token_a),
        provider_b: (principal_id(&app, &token_b), token_b),
        app,
        product_a,
        product_b,
    }
}

fn principal_id(app: &TestApp, token: &str) -> String {
    str_of(&app.get("/api/v1/me", token).expect(200).json()["id"])
}

impl World {
    fn close(&self, month: &str) -> testkit::Response {
        self.app
            .post("/api/v1/settlements/runs", ADMIN, json!({ "month": month }))
    }

    /// A month's statements as `token` sees them.
    fn statements(&self, token: &str, month: &str) -> Value {
        self.app
            .get(&format!("/api/v1/settlements?month={month}"), token)
            .expect(200)
            .json()
    }

    fn at(&self, instant: &str) {
        self.app.set_now(at(instant));
    }
}

fn product<'a>(statement: &'a Value, id: &str) -> &'a Value {
    statement["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["product_id"] == id)
        .unwrap_or_else(|| panic!("{id} in {statement}"))
}

#[test]
fn a_closed_month_settles_each_providers_product_fees_less_its_commission() {
    let w = world();
    w.app
        .put(
            &format!("/api/v1/principals/{}/commission", w.provider_b.0),
            ADMIN,
            json!({"rate": "0.15"}),
        )
        .expect(200);
    // A third provider's test order of its product in self-test: billed, never settled.
    let (tester_token, self_test) =
        w.app
            .product_with_items("hour", &[Item::running_time("50.00")], false);
    let tester = w.app.order(&tester_token, &self_test);
    w.at(MARCH_CLOSES);
    let closing = w.close("2026-03").expect(200).json();
    assert_eq!(closing["status"], "closed");
    assert_eq!(closing["statements_written"], 2, "{closing}");

    // March 27th 08:00 UTC to March 31st 16:00 UTC (midnight in Shanghai) is 104 hours.
    let a = w.statements(&w.provider_a.1, "2026-03");
    assert_eq!(a["status"], "closed");
    let a = &a["items"][0];
    assert_eq!(a["provider_id"], w.provider_a.0.as_str());
    assert_eq!(
        (&a["gross"], &a["commission"], &a["net"], &a["rate"]),
        (
            &json!("104.00"),
            &json!("10.40"),
            &json!("93.60"),
            &json!("0.1")
        )
    );
    assert_eq!(a["bill_count"], 104);
    assert_eq!(product(a, &w.product_a)["net"], "93.60");
    assert!(a["id"].as_str().unwrap().starts_with("stl-"));
    // 104 × 3.33 = 346.32; 15% of it is 51.948, the marketplace's share truncated to 51.94.
    let b = &w.statements(&w.provider_b.1, "2026-03")["items"][0];
    assert_eq!(
        (&b["gross"], &b["commission"], &b["net"], &b["rate"]),
        (
            &json!("346.32"),
            &json!("51.94"),
            &json!("294.38"),
            &json!("0.15")
        )
    );
    assert_eq!(product(b, &w.product_b)["gross"], "346.32");

    // The gross is the product fees of the month's bills: not their resource fees, not the
    // test order's, not April's.
    let bills = w.app.every_page("/api/v1/bills", ADMIN, "");
    let march_end = at("2026-03-31T16:00:00Z");
    let product_fees_of = |product: &str| -> i64 {
        bills
            .iter()
            .filter(|b| {
                b["product_id"] == product && at(b["period_start"].as_str().unwrap()) < march_end
            })
            .map(|b| cents(b["product_fees"].as_str().unwrap()))
            .sum()
    };
    assert_eq!(product_fees_of(&w.product_b), cents("346.32"));
    assert!(bills.iter().any(|b| b["instance_id"] == tester.as_str()));
    assert!(
        bills
            .iter()
            .any(|b| b["period_start"] == "2026-04-01T00:00:00Z")
    );
    assert!(bills.iter().all(|b| b["resource_fees"] == "1.60"));
}

#[test]
fn an_open_months_statements_are_computed_live_and_written_by_nobody() {
    let w = world();
    w.at("2026-03-28T09:30:00Z");
    w.app
        .post("/api/v1/billing/runs", ADMIN, json!({}))
        .expect(200);
    let before = w.app.count("settlements");
    let open = w.statements(&w.provider_a.1, "2026-03");
    assert_eq!(open["status"], "open");
    assert_eq!(open["items"][0]["gross"], "24.00");
    assert_eq!(open["items"][0]["id"], Value::Null);
    assert_eq!(w.app.count("settlements"), before);
    // A provider that earned nothing reads a statement of nothing; so does a month to come.
    let (_, idle) = w.app.provider();
    let nothing = &w.statements(&idle, "2026-03")["items"][0];
    assert_eq!(
        (&nothing["gross"], &nothing["net"]),
        (&json!("0.00"), &json!("0.00"))
    );
    assert_eq!(w.statements(&idle, "2026-05")["items"][0]["bill_count"], 0);
    // Without `month`, the current one.
    let current = w
        .app
        .get("/api/v1/settlements", &w.provider_a.1)
        .expect(200)
        .json();
    assert_eq!(current["month"], "2026-03");
}

#[test]
fn a_month_cannot_close_before_every_period_in_it_is_closed() {
    let w = world();
    w.at("2026-04-01T15:59:59Z");
    let before = w.app.snapshot();
    w.close("2026-03").problem(409, "MonthNotClosable");
    assert_eq!(w.app.snapshot(), before, "nothing billed, nothing written");
    w.close("2026-04").problem(409, "MonthNotClosable");
    for bad in ["2026-3", "2026-13", "March"] {
        w.close(bad).problem(400, "InvalidValue");
    }
}

#[test]
fn a_month_with_an_instance_whose_bill_failed_stays_open() {
    let w = world();
    let unreachable = Item::prometheus_requests("http://127.0.0.1:1", "0.01");
    let (_, product) = w.app.product_with_items("hour", &[unreachable], true);
    let (_, customer) = w.app.funded_customer("100.00");
    w.app.order(&customer, &product);
    w.at(MARCH_CLOSES);
    let refused = w.close("2026-03").problem(409, "MonthNotClosable");
    assert!(
        refused["detail"].as_str().unwrap().contains("1 instances"),
        "{refused}"
    );
    assert_eq!(w.app.count("settlements"), 0);
    assert_eq!(w.statements(&w.provider_a.1, "2026-03")["status"], "open");
}

#[test]
fn closing_twice_or_at_once_writes_each_statement_once() {
    let w = world();
    w.at(MARCH_CLOSES);
    std::thread::scope(|s| {
        let closes: Vec<_> = (0..6).map(|_| s.spawn(|| w.close("2026-03"))).collect();
        let written: i64 = closes
            .into_iter()
            .map(|c| {
                c.join().unwrap().expect(200).json()["statements_written"]
                    .as_i64()
                    .unwrap()
            })
            .sum();
        assert_eq!(written, 2);
    });
    let again = w.close("2026-03").expect(200).json();
    assert_eq!(again["statements_written"], 0);
    assert_eq!(again["items"].as_array().unwrap().len(), 2);
    assert_eq!(w.app.count("settlements"), 2);
}

#[test]
fn the_schedule_closes_the_month_before_once_it_may() {
    let w = world();
    let storage = Storage::new(w.app.backend.clone());
    let run = |instant: &str| {
        scheduled_run(
            storage.db().unwrap(),
            &NativeOutbound,
            &w.app.config(),
            at(instant),
        )
        .unwrap()
    };
    let early = run("2026-04-01T15:55:00Z");
    assert_eq!(early["settlement"], Value::Null);
    assert!(early["bill_run"]["bills_written"].as_i64().unwrap() > 0);
    let due = run(MARCH_CLOSES);
    assert_eq!(due["settlement"]["month"], "2026-03");
    assert_eq!(due["settlement"]["statements_written"], 2, "{due}");
    let later = run("2026-04-01T16:05:00Z");
    assert_eq!(later["settlement"], Value::Null);
    assert_eq!(w.app.count("settlements"), 2);
}

#[test]
fn a_rate_changed_after_closing_changes_no_written_statement() {
    let w = world();
    w.at(MARCH_CLOSES);
    w.close("2026-03").expect(200);
    let path = format!("/api/v1/principals/{}/commission", w.provider_a.0);
    let set = w
        .app
        .put(&path, ADMIN, json!({"rate": "0.5"}))
        .expect(200)
        .json();
    assert_eq!(
        (&set["rate"], &set["source"]),
        (&json!("0.5"), &json!("provider"))
    );
    assert_eq!(
        w.statements(&w.provider_a.1, "2026-03")["items"][0]["commission"],
        "10.40"
    );
    // April is open: computed at the new rate (23 hours of April 1st, Shanghai, are billed:
    // the last closes at 17:00 UTC).
    let april = &w.statements(&w.provider_a.1, "2026-04")["items"][0];
    assert_eq!(
        (&april["gross"], &april["commission"]),
        (&json!("23.00"), &json!("11.50"))
    );
    // Back to the deployment's.
    let reset = w
        .app
        .put(&path, ADMIN, json!({"rate": null}))
        .expect(200)
        .json();
    assert_eq!(
        (&reset["rate"], &reset["source"]),
        (&json!("0.1"), &json!("default"))
    );
    let own = w.app.get(&path, &w.provider_a.1).expect(200).json();
    assert_eq!(own["rate"], "0.1");
}

#[test]
fn a_commission_rate_is_a_fraction_below_one() {
    let w = world();
    let path = format!("/api/v1/principals/{}/commission", w.provider_a.0);
    let (customer, _) = w.app.customer("individual");
    let before = w.app.snapshot();
    for bad in ["1", "1.5", "-0.1", "0.1234567", "ten percent", ""] {
        w.app
            .put(&path, ADMIN, json!({ "rate": bad }))
            .problem(400, "InvalidValue");
    }
    w.app
        .put(&path, &w.provider_a.1, json!({"rate": "0"}))
        .problem(403, "Forbidden");
    w.app
        .put(
            &format!("/api/v1/principals/{customer}/commission"),
            ADMIN,
            json!({"rate": "0.2"}),
        )
        .problem(404, "NotFound");
    assert_eq!(w.app.snapshot(), before);
}

#[test]
fn a_providers_statements_and_rate_are_its_own() {
    let w = world();
    w.at(MARCH_CLOSES);
    let closed = w.close("2026-03").expect(200).json();
    let statement_of = |provider: &str| {
        closed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["provider_id"] == provider)
            .map(|s| str_of(&s["id"]))
            .unwrap()
    };
    let (a, b) = (statement_of(&w.provider_a.0), statement_of(&w.provider_b.0));
    // A sees its own, only: asking for B's by id or by filter shows nothing of B.
    let own = w.statements(&w.provider_a.1, "2026-03");
    assert_eq!(own["items"].as_array().unwrap().len(), 1);
    assert_eq!(own["items"][0]["id"], a.as_str());
    let filtered = w
        .app
        .get(
            &format!(
                "/api/v1/settlements?month=2026-03&provider_id={}",
                w.provider_b.0
            ),
            &w.provider_a.1,
        )
        .expect(200)
        .json();
    assert_eq!(filtered["items"][0]["provider_id"], w.provider_a.0.as_str());
    w.app
        .get(&format!("/api/v1/settlements/{b}"), &w.provider_a.1)
        .problem(404, "NotFound");
    w.app
        .get(
            &format!("/api/v1/principals/{}/commission", w.provider_b.0),
            &w.provider_a.1,
        )
        .problem(404, "NotFound");
    // The operator sees every provider's, or one's.
    assert_eq!(
        w.statements(ADMIN, "2026-03")["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let one = w
        .app
        .get(
            &format!(
                "/api/v1/settlements?month=2026-03&provider_id={}",
                w.provider_b.0
            ),
            ADMIN,
        )
        .expect(200)
        .json();
    assert_eq!(one["items"][0]["id"], b.as_str());
    // A statement of nothing is for a provider that earned nothing, not for anyone else.
    let (customer_id, customer) = w.app.customer("individual");
    for stranger in [customer_id.as_str(), "usr-nobody"] {
        for month in ["2026-03", "2026-04"] {
            w.app
                .get(
                    &format!("/api/v1/settlements?month={month}&provider_id={stranger}"),
                    ADMIN,
                )
                .problem(404, "NotFound");
        }
    }
    // Customers see none.
    w.app
        .get("/api/v1/settlements?month=2026-03", &customer)
        .problem(403, "Forbidden");
    w.app
        .get(&format!("/api/v1/settlements/{a}"), &customer)
        .problem(403, "Forbidden");
}

#[test]
fn a_statement_is_paid_once_by_an_operator() {
    let w = world();
    w.at(MARCH_CLOSES);
    let closed = w.close("2026-03").expect(200).json();
    let id = str_of(&closed["items"][0]["id"]);
    let payout = format!("/api/v1/settlements/{id}/payout");
    let before = w.app.snapshot();
    w.app
        .post(&payout, &w.provider_a.1, json!({"reference": "mine"}))
        .problem(403, "Forbidden");
    w.app
        .post(&payout, ADMIN, json!({}))
        .problem(400, "Required");
    w.app
        .post(&payout, ADMIN, json!({"reference": "x".repeat(201)}))
        .problem(400, "TooLong");
    w.app
        .post(
            "/api/v1/settlements/stl-missing/payout",
            ADMIN,
            json!({"reference": "r"}),
        )
        .problem(404, "NotFound");
    assert_eq!(w.app.snapshot(), before);
    w.at("2026-04-02T09:00:00Z");
    let paid = w
        .app
        .post(&payout, ADMIN, json!({"reference": "BANK-2026-04-0001"}))
        .expect(200)
        .json();
    assert_eq!(paid["paid_at"], "2026-04-02T09:00:00Z");
    assert_eq!(paid["payout_reference"], "BANK-2026-04-0001");
    let again = w
        .app
        .post(&payout, ADMIN, json!({"reference": "BANK-2026-04-0002"}))
        .problem(409, "AlreadyPaid");
    assert!(again["detail"].as_str().unwrap().contains(&id));
    let read = w
        .app
        .get(&format!("/api/v1/settlements/{id}"), ADMIN)
        .expect(200)
        .json();
    assert_eq!(read["payout_reference"], "BANK-2026-04-0001");
}
