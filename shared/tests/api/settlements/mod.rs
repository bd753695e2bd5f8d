//! docs/RULES.md §13 through the HTTP handlers and the schedule: a provider's monthly statement
//! is its products' fees less the commission, written once when its month closes — provider by
//! provider, never held up by another's unbillable instance — and paid once.

use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at, cents, str_of};

mod commission;
mod schedule;
mod write_offs;

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

    /// A bill run the minute before March ends in Shanghai: it bills, and collects within
    /// March, every hour closed by then — 08:00 on the 27th to 13:00 on the 31st (UTC), 102
    /// hours. The last two hours close in April and are collected there.
    fn bill_within_march(&self) {
        self.at("2026-03-31T15:59:00Z");
        self.app.bill_run("2026-03-31T15:59:00Z");
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

/// A provider whose product's Prometheus cannot be reached, and its customer's instance,
/// ordered at `ordered` and released at `released`, that can never be billed.
struct Unbillable {
    provider_id: String,
    provider: String,
    product: String,
    instance: String,
    customer: String,
}

fn unbillable(w: &World, ordered: &str, released: &str) -> Unbillable {
    let unreachable = Item::prometheus_requests("http://127.0.0.1:1", "0.01");
    let before = w.app.now();
    w.at(ordered);
    let (token, product) = w.app.product_with_items("hour", &[unreachable], true);
    let (_, customer) = w.app.funded_customer("100.00");
    let instance = w.app.order(&customer, &product);
    w.at(released);
    w.app.act(&customer, &instance, "release");
    w.app.set_now(before);
    Unbillable {
        provider_id: principal_id(&w.app, &token),
        provider: token,
        product,
        instance,
        customer,
    }
}

fn write_off(w: &World, token: &str, instance: &str, period_start: &str) -> testkit::Response {
    w.app.post(
        &format!("/api/v1/instances/{instance}/write-offs"),
        token,
        json!({"period_start": period_start, "reason": "its Prometheus answers nothing"}),
    )
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
    w.bill_within_march();
    w.at(MARCH_CLOSES);
    let closing = w.close("2026-03").expect(200).json();
    assert_eq!(closing["statements_written"], 2, "{closing}");
    assert_eq!(closing["open"], json!([]), "{closing}");
    let mut closed = vec![w.provider_a.0.clone(), w.provider_b.0.clone()];
    closed.sort();
    assert_eq!(closing["closed"], json!(closed), "{closing}");
    // The month's instants are those of Asia/Shanghai, frozen now.
    assert_eq!(
        closing["period"],
        json!({"start": "2026-02-28T16:00:00Z", "end": "2026-03-31T16:00:00Z"})
    );

    // March 27th 08:00 UTC to March 31st 16:00 UTC (midnight in Shanghai) is 104 hours, billed
    // in March; 102 of them were collected in March, the commission taken of those.
    let a = w.statements(&w.provider_a.1, "2026-03");
    assert_eq!(a["status"], "closed");
    let a = &a["items"][0];
    assert_eq!(a["provider_id"], w.provider_a.0.as_str());
    assert_eq!(
        (&a["gross"], &a["collected"], &a["uncollected"]),
        (&json!("104.00"), &json!("102.00"), &json!("0.00"))
    );
    assert_eq!(
        (&a["commission"], &a["net"], &a["rate"]),
        (&json!("10.20"), &json!("91.80"), &json!("0.1"))
    );
    assert_eq!(a["bill_count"], 104);
    assert_eq!(product(a, &w.product_a)["net"], "91.80");
    assert!(a["id"].as_str().unwrap().starts_with("stl-"));
    // 102 × 3.33 = 339.66 collected; 15% of it is 50.949, the marketplace's share truncated
    // to 50.94.
    let b = &w.statements(&w.provider_b.1, "2026-03")["items"][0];
    assert_eq!(
        (
            &b["gross"],
            &b["collected"],
            &b["commission"],
            &b["net"],
            &b["rate"]
        ),
        (
            &json!("346.32"),
            &json!("339.66"),
            &json!("50.94"),
            &json!("288.72"),
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
