//! docs/RULES.md §13 through the HTTP handlers and the schedule: a provider's monthly statement
//! is its products' fees less the commission, written once when its month closes — provider by
//! provider, never held up by another's unbillable instance — and paid once.

use nestmarket::platform::outbound::native::NativeOutbound;
use nestmarket::platform::storage::{Backend, Storage};
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
fn an_unbillable_instance_holds_up_its_own_providers_month_only() {
    let w = world();
    let Unbillable {
        provider_id: blocked,
        product: blocked_product,
        instance,
        ..
    } = unbillable(&w, "2026-03-31T15:00:00Z", "2026-03-31T15:30:00Z");
    w.at(MARCH_CLOSES);
    let closing = w.close("2026-03").expect(200).json();
    assert_eq!(closing["statements_written"], 2, "{closing}");
    assert!(
        !closing["closed"].to_string().contains(&blocked),
        "{closing}"
    );
    assert_eq!(
        closing["open"][0]["provider_id"],
        blocked.as_str(),
        "{closing}"
    );
    let blocking = &closing["open"][0]["blocking"];
    assert_eq!(blocking.as_array().unwrap().len(), 1, "{closing}");
    assert_eq!(blocking[0]["instance_id"], instance.as_str());
    assert_eq!(blocking[0]["period_start"], "2026-03-31T15:00:00Z");
    assert!(
        blocking[0]["reason"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{closing}"
    );
    // Every other provider's statement is written; the blocked one's is live.
    assert_eq!(w.statements(&w.provider_a.1, "2026-03")["status"], "closed");
    let march = w.statements(ADMIN, "2026-03");
    assert_eq!(march["status"], "open");
    assert_eq!(
        w.app
            .get(
                &format!("/api/v1/settlements?month=2026-03&provider_id={blocked}"),
                ADMIN
            )
            .expect(200)
            .json()["items"][0]["status"],
        "open"
    );
    // Closing again changes nothing while it is blocked.
    assert_eq!(
        w.close("2026-03").expect(200).json()["statements_written"],
        0
    );

    // An operator writes the period off: the provider's month closes, with nothing to pay and
    // the write-off on its statement.
    write_off(&w, ADMIN, &instance, "2026-03-31T15:00:00Z").expect(201);
    let closing = w.close("2026-03").expect(200).json();
    assert_eq!(closing["statements_written"], 1, "{closing}");
    assert_eq!(closing["open"], json!([]));
    let statement = w
        .app
        .get(
            &format!("/api/v1/settlements?month=2026-03&provider_id={blocked}"),
            ADMIN,
        )
        .expect(200)
        .json();
    let s = &statement["items"][0];
    assert_eq!(
        (&s["status"], &s["gross"]),
        (&json!("closed"), &json!("0.00"))
    );
    assert_eq!(s["write_off_count"], 1);
    let p = product(s, &blocked_product);
    assert_eq!(p["write_offs"]["count"], 1);
    assert_eq!(
        p["write_offs"]["periods"][0],
        json!({"instance_id": instance, "period_start": "2026-03-31T15:00:00Z",
               "reason": "its Prometheus answers nothing"})
    );
    assert_eq!(statement["status"], "closed");
    assert_eq!(w.statements(ADMIN, "2026-03")["status"], "closed");
}

#[test]
fn test_instances_never_hold_up_a_month() {
    let w = world();
    let unreachable = Item::prometheus_requests("http://127.0.0.1:1", "0.01");
    let (tester, product) = w.app.product_with_items("hour", &[unreachable], false);
    w.app.order(&tester, &product);
    w.at(MARCH_CLOSES);
    let report = w.app.bill_run(MARCH_CLOSES);
    assert!(
        !report["failures"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let closing = w.close("2026-03").expect(200).json();
    assert_eq!(closing["open"], json!([]), "{closing}");
    assert_eq!(w.statements(ADMIN, "2026-03")["status"], "closed");
}

#[test]
fn a_write_off_closes_one_due_period_without_a_bill_once() {
    let w = world();
    let u = unbillable(&w, "2026-03-31T14:00:00Z", "2026-03-31T15:30:00Z");
    let instance = u.instance.clone();
    let (_, stranger) = w.app.provider();
    w.at("2026-03-31T16:30:00Z");
    let path = format!("/api/v1/instances/{instance}/write-offs");
    let before = w.app.snapshot();
    // Operators only, a reason required, only the next period to bill once it has closed.
    for token in [&u.provider, &u.customer] {
        write_off(&w, token, &instance, "2026-03-31T14:00:00Z").problem(403, "Forbidden");
    }
    w.app
        .post(
            &path,
            ADMIN,
            json!({"period_start": "2026-03-31T14:00:00Z"}),
        )
        .problem(400, "Required");
    w.app
        .post(
            &path,
            ADMIN,
            json!({"period_start": "2026-03-31T14:00:00Z", "reason": "x".repeat(501)}),
        )
        .problem(400, "TooLong");
    write_off(&w, ADMIN, &instance, "2026-03-31T14:30:00Z").problem(400, "InvalidPeriodStart");
    // The 14:00 hour closed at 16:00, the 15:00 hour closes at 17:00.
    write_off(&w, ADMIN, &instance, "2026-03-31T15:00:00Z").problem(409, "PeriodNotDue");
    write_off(&w, ADMIN, "si-missing", "2026-03-31T14:00:00Z").problem(404, "NotFound");
    assert_eq!(
        w.app.snapshot(),
        before,
        "a refused write-off writes nothing"
    );

    let first = write_off(&w, ADMIN, &instance, "2026-03-31T14:00:00Z")
        .expect(201)
        .json();
    assert!(first["id"].as_str().unwrap().starts_with("wo-"), "{first}");
    assert_eq!(
        (
            &first["period_start"],
            &first["period_end"],
            &first["written_off_by"]
        ),
        (
            &json!("2026-03-31T14:00:00Z"),
            &json!("2026-03-31T15:00:00Z"),
            &json!("usr-admin")
        )
    );
    assert_eq!(first["written_off_at"], "2026-03-31T16:30:00Z");
    // Again: the same record, nothing more.
    let again = write_off(&w, ADMIN, &instance, "2026-03-31T14:00:00Z")
        .expect(200)
        .json();
    assert_eq!(again, first);
    assert_eq!(w.app.count("write_offs"), 1);
    // The 15:00 hour is next, once closed; the instance was released in it, so it is the last.
    write_off(&w, ADMIN, &instance, "2026-03-31T15:00:00Z").problem(409, "PeriodNotDue");
    w.at("2026-03-31T17:00:00Z");
    write_off(&w, ADMIN, &instance, "2026-03-31T15:00:00Z").expect(201);
    write_off(&w, ADMIN, &instance, "2026-03-31T16:00:00Z").problem(409, "PeriodNotDue");
    // Nothing was billed or deducted; a run finds nothing left of it.
    let report = w.app.bill_run("2026-03-31T17:00:00Z");
    assert!(!report.to_string().contains(&instance), "{report}");
    assert!(w.app.bills(ADMIN, Some(&instance)).is_empty());
    // A billed period cannot be written off.
    let billed = w.app.bills(ADMIN, None)[0].clone();
    write_off(
        &w,
        ADMIN,
        billed["instance_id"].as_str().unwrap(),
        billed["period_start"].as_str().unwrap(),
    )
    .problem(409, "PeriodAlreadyBilled");

    // The instance's customer, its provider and operators read them; nobody else.
    for token in [&u.customer, &u.provider, &ADMIN.to_owned()] {
        let listed = w.app.get(&path, token).expect(200).json();
        assert_eq!(listed["items"].as_array().unwrap().len(), 2);
        assert_eq!(listed["items"][0], first);
    }
    w.app.get(&path, &stranger).problem(404, "NotFound");
    let page = w
        .app
        .get(&format!("{path}?limit=1"), ADMIN)
        .expect(200)
        .json();
    assert_eq!(page["next_cursor"], first["id"]);
}

#[test]
fn operators_release_any_instance_and_only_release_it() {
    let w = world();
    let (_, customer) = w.app.funded_customer("10.00");
    let instance = w.app.order(&customer, &w.product_a);
    let action = |token: &str, action: &str| {
        w.app.post(
            &format!("/api/v1/instances/{instance}/actions"),
            token,
            json!({ "action": action }),
        )
    };
    action(ADMIN, "stop").problem(403, "Forbidden");
    action(&w.provider_a.1, "release").problem(403, "Forbidden");
    let released = action(ADMIN, "release").expect(200).json();
    assert_eq!(released["status"], "released");
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

impl World {
    /// The schedule's run at `instant`.
    fn scheduled(&self, instant: &str) -> Value {
        let storage = Storage::new(self.app.backend.clone());
        scheduled_run(
            storage.db().unwrap(),
            &NativeOutbound,
            &self.app.config(),
            at(instant),
        )
        .unwrap()
    }
}

/// The months a scheduled run tried to close, in the order it tried them.
fn months_tried(report: &Value) -> Vec<String> {
    report["settlement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| str_of(&c["month"]))
        .collect()
}

#[test]
fn the_schedule_closes_the_month_before_once_it_may() {
    let w = world();
    let early = w.scheduled("2026-04-01T15:55:00Z");
    assert!(
        !months_tried(&early).contains(&"2026-03".to_owned()),
        "{early}"
    );
    assert!(early["bill_run"]["bills_written"].as_i64().unwrap() > 0);
    let due = w.scheduled(MARCH_CLOSES);
    let march = due["settlement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["month"] == "2026-03")
        .unwrap_or_else(|| panic!("{due}"));
    assert_eq!(march["statements_written"], 2, "{due}");
    let later = w.scheduled("2026-04-01T16:05:00Z");
    assert_eq!(later["settlement"], json!([]), "{later}");
    assert_eq!(w.app.count("settlements"), 2);
}

#[test]
fn the_schedule_closes_every_month_with_an_open_provider_oldest_first() {
    let w = world();
    // A third provider's instance ran half an hour in February and can never be billed.
    let Unbillable {
        provider_id: blocked,
        instance,
        ..
    } = unbillable(&w, "2026-02-27T10:00:00Z", "2026-02-27T10:30:00Z");
    let first = w.scheduled("2026-05-02T00:00:00Z");
    let tried = months_tried(&first);
    assert_eq!(
        tried,
        ["2026-01", "2026-02", "2026-03", "2026-04"],
        "{first}"
    );
    for c in first["settlement"].as_array().unwrap() {
        let open = if c["month"] == "2026-01" {
            json!([])
        } else {
            json!([blocked])
        };
        assert_eq!(c["open"], open, "{c}");
    }
    // Every other provider's March and April are closed, although February is still open.
    for month in ["2026-03", "2026-04"] {
        assert_eq!(w.statements(&w.provider_a.1, month)["status"], "closed");
        assert_eq!(w.statements(&w.provider_b.1, month)["status"], "closed");
    }
    assert_eq!(w.app.count("settlements"), 4);
    // Once the period is written off, the next event closes February to April, oldest first,
    // for the provider that waited; then nothing is left to try.
    w.at("2026-05-02T00:00:00Z");
    write_off(&w, ADMIN, &instance, "2026-02-27T10:00:00Z").expect(201);
    let second = w.scheduled("2026-05-02T00:05:00Z");
    assert_eq!(
        months_tried(&second),
        ["2026-02", "2026-03", "2026-04"],
        "{second}"
    );
    assert_eq!(second["settlement"][0]["statements_written"], 1, "{second}");
    let february = w
        .app
        .get(
            &format!("/api/v1/settlements?month=2026-02&provider_id={blocked}"),
            ADMIN,
        )
        .expect(200)
        .json();
    assert_eq!(february["items"][0]["status"], "closed", "{february}");
    assert_eq!(february["items"][0]["write_off_count"], 1);
    assert_eq!(w.scheduled("2026-05-02T00:10:00Z")["settlement"], json!([]));
}

#[test]
fn a_rate_changed_after_closing_changes_no_written_statement() {
    let w = world();
    w.bill_within_march();
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
        "10.20"
    );
    // April is open: computed at the new rate. 23 hours of April 1st (Shanghai) are billed
    // (the last closes at 17:00 UTC); collected in April are those and March's last two.
    let april = &w.statements(&w.provider_a.1, "2026-04")["items"][0];
    assert_eq!(
        (&april["gross"], &april["collected"], &april["commission"]),
        (&json!("23.00"), &json!("25.00"), &json!("12.50"))
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

/// Every non-test bill with a period starting before `end`: (id, provider, product fees in cents).
fn bills_before(w: &World, end: &str) -> Vec<(String, String, i64)> {
    w.app
        .bills(ADMIN, None)
        .iter()
        .filter(|b| b["test"] == false && at(b["period_start"].as_str().unwrap()) < at(end))
        .map(|b| {
            (
                str_of(&b["id"]),
                str_of(&b["provider_id"]),
                cents(b["product_fees"].as_str().unwrap()),
            )
        })
        .collect()
}

/// The statements each bill is linked to.
fn statements_of_bills(w: &World) -> std::collections::BTreeMap<String, Vec<String>> {
    let db = w.app.backend.open_db().unwrap();
    let mut links: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for row in db
        .execute("SELECT bill_id, statement_id FROM statement_bills", &[])
        .unwrap()
    {
        links
            .entry(row.text(0).unwrap())
            .or_default()
            .push(row.text(1).unwrap());
    }
    links
}

/// Closes March in `from`, redeploys with `to` as the billing time zone, closes April when it
/// may: every bill of both months is in exactly one statement, March keeps the instants it
/// closed with, April starts where March ended, and the totals match the bills.
fn the_time_zone_changes_between_two_closes(
    from: &str,
    to: &str,
    march: [&str; 2],
    april_closes: &str,
) {
    let w = world();
    let zone = |tz: &str| {
        let tz = tz.to_owned();
        move |name: &str| match name {
            "allow_clock_override" => Some("true".to_owned()),
            "commission_rate" => Some("0.10".to_owned()),
            "billing_timezone" => Some(tz.clone()),
            _ => None,
        }
    };
    w.app.redeploy(zone(from));
    w.at("2026-04-02T00:00:00Z");
    let closing = w.close("2026-03").expect(200).json();
    assert_eq!(
        closing["period"],
        json!({"start": march[0], "end": march[1]}),
        "{closing}"
    );
    w.app.redeploy(zone(to));
    w.at(april_closes);
    let april = w.close("2026-04").expect(200).json();
    assert_eq!(april["period"]["start"], march[1], "{april}");
    assert_eq!(april["open"], json!([]), "{april}");
    // March is as it closed, whatever the zone now.
    let read = w.statements(ADMIN, "2026-03");
    assert_eq!(read["period"]["end"], march[1], "{read}");

    let end = str_of(&april["period"]["end"]);
    let bills = bills_before(&w, &end);
    let links = statements_of_bills(&w);
    for (id, _, _) in &bills {
        assert_eq!(
            links.get(id).map(Vec::len),
            Some(1),
            "{id} in {:?}",
            links.get(id)
        );
    }
    assert_eq!(
        links.len(),
        bills.len(),
        "no test bill and no later bill is settled"
    );
    for (provider, _) in [&w.provider_a, &w.provider_b] {
        let earned: i64 = bills
            .iter()
            .filter(|(_, p, _)| p == provider)
            .map(|(_, _, fees)| fees)
            .sum();
        let settled: i64 = ["2026-03", "2026-04"]
            .iter()
            .map(|m| {
                let s = w
                    .app
                    .get(
                        &format!("/api/v1/settlements?month={m}&provider_id={provider}"),
                        ADMIN,
                    )
                    .expect(200)
                    .json();
                assert_eq!(s["items"][0]["status"], "closed", "{s}");
                cents(s["items"][0]["gross"].as_str().unwrap())
            })
            .sum();
        assert_eq!(settled, earned, "{provider}");
    }
}

#[test]
fn a_closed_month_keeps_its_instants_when_the_time_zone_changes_shanghai_to_utc() {
    // The bills of [Mar 31 16:00Z, Apr 1 00:00Z) are April's: not in closed March, not lost.
    the_time_zone_changes_between_two_closes(
        "Asia/Shanghai",
        "UTC",
        ["2026-02-28T16:00:00Z", "2026-03-31T16:00:00Z"],
        "2026-05-02T00:00:00Z",
    );
}

#[test]
fn a_closed_month_keeps_its_instants_when_the_time_zone_changes_utc_to_shanghai() {
    // The bills of [Mar 31 16:00Z, Apr 1 00:00Z) were March's: April does not settle them again.
    the_time_zone_changes_between_two_closes(
        "UTC",
        "Asia/Shanghai",
        ["2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"],
        "2026-05-01T16:00:00Z",
    );
}

#[test]
fn a_month_settles_at_the_rate_in_force_for_it() {
    let w = world();
    let path = format!("/api/v1/principals/{}/commission", w.provider_a.0);
    // On April 1st (Shanghai) an operator sets 20% "from April on": March stays at 10%.
    w.at("2026-03-31T17:00:00Z");
    let set = w
        .app
        .put(&path, ADMIN, json!({"rate": "0.2"}))
        .expect(200)
        .json();
    assert_eq!(
        (&set["month"], &set["rate"], &set["source"]),
        (&json!("2026-04"), &json!("0.2"), &json!("provider"))
    );
    assert_eq!(set["rates"][0]["effective_from"], "2026-04");
    assert_eq!(
        w.statements(&w.provider_a.1, "2026-03")["items"][0]["rate"],
        "0.1"
    );
    assert_eq!(
        w.statements(&w.provider_a.1, "2026-04")["items"][0]["rate"],
        "0.2"
    );
    // From June on, back to the deployment's; May is still at 20%.
    w.app
        .put(
            &path,
            ADMIN,
            json!({"rate": null, "effective_from": "2026-06"}),
        )
        .expect(200);
    assert_eq!(
        w.statements(&w.provider_a.1, "2026-05")["items"][0]["rate"],
        "0.2"
    );
    assert_eq!(
        w.statements(&w.provider_a.1, "2026-06")["items"][0]["rate"],
        "0.1"
    );
    w.bill_within_march();
    w.at(MARCH_CLOSES);
    let closed = w.close("2026-03").expect(200).json();
    let a = closed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider_id"] == w.provider_a.0.as_str())
        .unwrap();
    assert_eq!(
        (&a["rate"], &a["commission"]),
        (&json!("0.1"), &json!("10.20"))
    );
    // A written month cannot change any more, nor one before it.
    let before = w.app.snapshot();
    for month in ["2026-03", "2026-01"] {
        w.app
            .put(
                &path,
                ADMIN,
                json!({"rate": "0.3", "effective_from": month}),
            )
            .problem(409, "MonthClosed");
    }
    for bad in ["2026-13", "April", ""] {
        w.app
            .put(&path, ADMIN, json!({"rate": "0.3", "effective_from": bad}))
            .problem(400, "InvalidValue");
    }
    assert_eq!(w.app.snapshot(), before);
    // The history, oldest month first; the provider reads its own.
    let own = w.app.get(&path, &w.provider_a.1).expect(200).json();
    let months: Vec<&Value> = own["rates"].as_array().unwrap().iter().collect();
    assert_eq!(months.len(), 2, "{own}");
    assert_eq!(
        (&months[0]["effective_from"], &months[0]["rate"]),
        (&json!("2026-04"), &json!("0.2"))
    );
    assert_eq!(
        (&months[1]["effective_from"], &months[1]["rate"]),
        (&json!("2026-06"), &Value::Null)
    );
    assert_eq!(
        (&own["month"], &own["rate"]),
        (&json!("2026-04"), &json!("0.2"))
    );
}

/// An instance whose stored terms no longer parse is written off without them: its period's
/// kind and boundaries come from its billing cursor.
#[test]
fn a_period_whose_terms_no_longer_parse_is_written_off_all_the_same() {
    let w = world();
    let u = unbillable(&w, "2026-03-31T15:00:00Z", "2026-03-31T15:30:00Z");
    w.app
        .backend
        .open_db()
        .unwrap()
        .execute(
            "UPDATE product_steps SET data = '{\"data\": {}, \"warnings\": []}'
             WHERE product_id = ? AND step = 'pricing'",
            &[u.product.clone().into()],
        )
        .unwrap();
    w.at(MARCH_CLOSES);
    let closing = w.close("2026-03").expect(200).json();
    let reason = &closing["open"][0]["blocking"][0]["reason"];
    assert!(reason.as_str().unwrap().contains("terms"), "{closing}");
    write_off(&w, ADMIN, &u.instance, "2026-03-31T15:00:00Z").expect(201);
    let closing = w.close("2026-03").expect(200).json();
    assert_eq!(closing["open"], json!([]), "{closing}");
    assert!(closing["closed"].to_string().contains(&u.provider_id));
}
