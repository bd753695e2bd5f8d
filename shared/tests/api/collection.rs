//! docs/RULES.md R11.18 and R13.10 through the HTTP handlers: a bill is collected to the
//! extent the customer's funds covered it, the rest when later top-ups do, oldest bill first;
//! a provider is paid, month by month, what was collected — each bill's product fees in
//! exactly one statement's collected amount, whatever bills, top-ups, credit notes and closes
//! came in whatever order.

use chrono::Duration;
use proptest::prelude::*;
use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at, cents, rfc3339, str_of};

/// A provider's hourly product: running time at 1.00 an hour, its template's resources at 1.60.
fn hourly(app: &TestApp) -> (String, String) {
    app.product_with_items("hour", &[Item::running_time("1.00")], true)
}

fn deployment() -> TestApp {
    TestApp::with_config(|name| match name {
        "allow_clock_override" => Some("true".to_owned()),
        "commission_rate" => Some("0.10".to_owned()),
        _ => None,
    })
}

fn run(app: &TestApp, instant: &str) -> Value {
    app.set_now(at(instant));
    app.bill_run(instant)
}

fn bill_of(app: &TestApp, token: &str, instance: &str, start: &str) -> Value {
    app.bills(token, Some(instance))
        .into_iter()
        .find(|b| b["period_start"] == start)
        .unwrap_or_else(|| panic!("no bill of {start}"))
}

/// What a statement settles, in the order a statement shows it.
fn settled(s: &Value) -> [Value; 6] {
    [
        &s["status"],
        &s["gross"],
        &s["collected"],
        &s["uncollected"],
        &s["commission"],
        &s["net"],
    ]
    .map(Value::clone)
}

/// A customer with 1.00 of funds runs a provider's hourly product four hours on March 31st
/// (UTC), 10:00 to 14:00, all in March in Shanghai; March closes owing most of it.
struct Owing {
    app: TestApp,
    provider: String,
    customer_id: String,
    customer: String,
    instance: String,
}

impl Owing {
    fn bill(&self, start: &str) -> Value {
        bill_of(&self.app, &self.customer, &self.instance, start)
    }
}

fn owing() -> Owing {
    let app = deployment();
    let (provider, product) = hourly(&app);
    let (customer_id, customer) = app.funded_customer("1.00");
    app.set_now(at("2026-03-31T10:00:00Z"));
    let instance = app.order(&customer, &product);
    app.set_now(at("2026-03-31T14:00:00Z"));
    app.act(&customer, &instance, "release");
    run(&app, "2026-03-31T15:59:00Z");
    app.set_now(at("2026-04-01T16:00:00Z"));
    app.post(
        "/api/v1/settlements/runs",
        ADMIN,
        json!({"month": "2026-03"}),
    )
    .expect(200);
    Owing {
        app,
        provider,
        customer_id,
        customer,
        instance,
    }
}

#[test]
fn a_bill_is_collected_to_the_extent_the_funds_covered_it_and_its_month_settles_that() {
    let w = owing();
    // The 1.00 of funds covered the first hour's product fees: its resources are owed, and
    // the other three hours whole.
    assert_eq!(
        w.bill("2026-03-31T10:00:00Z")["parts"],
        json!({"product_fees": {"credited": "0.00", "collected": "1.00", "uncollected": "0.00"},
               "resource_fees": {"credited": "0.00", "collected": "0.00", "uncollected": "1.60"}})
    );
    assert_eq!(w.bill("2026-03-31T13:00:00Z")["uncollected"], "2.60");
    assert_eq!(w.app.balance(&w.customer), "-9.40");
    // March closed with 1.00 collected and 3.00 of its product fees uncollected.
    assert_eq!(
        settled(&w.app.statement(&w.provider, "2026-03")),
        ["closed", "4.00", "1.00", "3.00", "0.10", "0.90"].map(|v| json!(v))
    );
    // A top-up of 2.00 pays the oldest bill first, each product fees first: the first hour's
    // resources (1.60), then 0.40 of the second hour's product fees.
    w.app.set_now(at("2026-04-10T00:00:00Z"));
    w.app.top_up(&w.customer_id, "2.00");
    assert_eq!(w.bill("2026-03-31T10:00:00Z")["uncollected"], "0.00");
    assert_eq!(
        w.bill("2026-03-31T11:00:00Z")["parts"]["product_fees"],
        json!({"credited": "0.00", "collected": "0.40", "uncollected": "0.60"})
    );
}

#[test]
fn a_bill_covered_only_by_a_later_top_up_moves_from_uncollected_to_collected_in_the_month_of_the_top_up()
 {
    let w = owing();
    let march = w.app.statement(&w.provider, "2026-03");
    w.app.set_now(at("2026-04-20T00:00:00Z"));
    let account = w.app.top_up(&w.customer_id, "100.00");
    assert_eq!(
        (&account["balance"], &account["arrears"]),
        (&json!("90.60"), &Value::Null)
    );
    for hour in 10..14 {
        let bill = w.bill(&format!("2026-03-31T{hour}:00:00Z"));
        assert_eq!(bill["uncollected"], "0.00");
    }
    // March's product fees collected in April are April's; March's written statement changes
    // nothing.
    let april = w.app.statement(&w.provider, "2026-04");
    assert_eq!(
        settled(&april),
        ["open", "0.00", "3.00", "0.00", "0.30", "2.70"].map(|v| json!(v))
    );
    assert_eq!(
        settled(&w.app.statement(&w.provider, "2026-03")),
        settled(&march)
    );
    // April closes with what it collected; every product fee is in exactly one of the two.
    w.app.set_now(at("2026-05-01T16:00:00Z"));
    let closing = w
        .app
        .post(
            "/api/v1/settlements/runs",
            ADMIN,
            json!({"month": "2026-04"}),
        )
        .expect(200)
        .json();
    assert_eq!(closing["statements_written"], 1, "{closing}");
    let april = w.app.statement(&w.provider, "2026-04");
    assert_eq!(april["collected"], "3.00");
    assert_eq!(
        cents(&str_of(&march["collected"])) + cents(&str_of(&april["collected"])),
        cents("4.00")
    );
}

/// One step of a customer's and an operator's month.
#[derive(Debug, Clone)]
enum Step {
    /// Time passes this many hours, and a bill run bills what closed.
    Bill(i64),
    /// The operator tops up a customer's account with this many cents.
    TopUp(usize, i64),
    /// The operator credits this many cents of a bill (its index among all of them), the
    /// resources' part first or not.
    Credit(usize, i64, bool),
    /// The oldest month not closed yet closes, if it may.
    Close,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1i64..=40).prop_map(Step::Bill),
        2 => (0usize..2, 1i64..=1_500).prop_map(|(c, a)| Step::TopUp(c, a)),
        2 => (0usize..100, 1i64..=300, any::<bool>()).prop_map(|(b, a, r)| Step::Credit(b, a, r)),
        1 => Just(Step::Close),
    ]
}

fn money(c: i64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

/// The bills, customers, provider and months of one sequence of steps.
struct Books {
    app: TestApp,
    provider: String,
    /// Each customer's (id, token, instance).
    customers: Vec<(String, String, String)>,
    months: [&'static str; 3],
    closed: usize,
}

impl Books {
    fn new(funds: &[i64]) -> Self {
        let app = deployment();
        let (provider, product) = hourly(&app);
        app.set_now(at("2026-03-29T20:00:00Z"));
        let customers = funds
            .iter()
            .map(|f| {
                let (id, token) = app.customer("enterprise");
                if *f > 0 {
                    app.top_up(&id, &money(*f));
                }
                let instance = app.order(&token, &product);
                (id, token, instance)
            })
            .collect();
        Books {
            app,
            provider,
            customers,
            months: ["2026-03", "2026-04", "2026-05"],
            closed: 0,
        }
    }

    fn take(&mut self, step: &Step) {
        let app = &self.app;
        match step {
            Step::Bill(hours) => {
                let now = rfc3339(app.now() + Duration::hours(*hours));
                run(app, &now);
            }
            Step::TopUp(c, amount) => {
                app.top_up(&self.customers[*c].0, &money(*amount));
            }
            Step::Credit(b, amount, resources_first) => {
                let bills = app.bills(ADMIN, None);
                if bills.is_empty() {
                    return;
                }
                let part = if *resources_first {
                    "resource_fees"
                } else {
                    "product_fees"
                };
                let answer = app.post(
                    &format!(
                        "/api/v1/bills/{}/credit-notes",
                        str_of(&bills[b % bills.len()]["id"])
                    ),
                    ADMIN,
                    json!({"amount": money(*amount), "reason": "r", "applies_to": part}),
                );
                assert!(matches!(answer.status, 201 | 409), "{}", answer.text());
            }
            Step::Close => {
                let month = self.months[self.closed];
                let answer = app.post("/api/v1/settlements/runs", ADMIN, json!({"month": month}));
                if answer.status == 200 {
                    self.closed += 1;
                } else {
                    answer.problem(409, "MonthNotClosable");
                }
            }
        }
    }

    /// Every bill adds up, every customer's bills owe what its balance owes, every statement's
    /// net and commission add up to what it collected, and the statements of all months
    /// together collected exactly the bills' collected product fees.
    fn check(&self) {
        let bills = self.app.bills(ADMIN, None);
        let mut collected_product = 0;
        for b in &bills {
            for (part, fees) in [
                ("product_fees", "product_fees"),
                ("resource_fees", "resource_fees"),
            ] {
                let p = &b["parts"][part];
                let sum: i64 = ["credited", "collected", "uncollected"]
                    .iter()
                    .map(|k| cents(&str_of(&p[k])))
                    .sum();
                assert_eq!(sum, cents(&str_of(&b[fees])), "{b}");
            }
            collected_product += cents(&str_of(&b["parts"]["product_fees"]["collected"]));
        }
        for (id, token, _) in &self.customers {
            let owed: i64 = bills
                .iter()
                .filter(|b| b["owner_id"] == id.as_str())
                .map(|b| cents(&str_of(&b["uncollected"])))
                .sum();
            let balance = cents(&self.app.balance(token));
            assert_eq!(
                owed,
                (-balance).max(0),
                "what the bills owe is what the balance owes"
            );
        }
        let mut settled = 0;
        for month in self.months {
            let s = self.app.statement(&self.provider, month);
            let (collected, commission, net) = (
                cents(&str_of(&s["collected"])),
                cents(&str_of(&s["commission"])),
                cents(&str_of(&s["net"])),
            );
            assert_eq!(commission + net, collected, "{s}");
            settled += collected;
        }
        assert_eq!(settled, collected_product, "every statement of every month");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Whatever the sequence of bill runs, top-ups, credit notes and closes, what every bill
    /// still owes is what its customer's balance owes, and the provider's statements of every
    /// month, written or live, together collected exactly the bills' collected product fees.
    #[test]
    fn the_statements_add_up_to_the_collected_product_fees_whatever_the_bills_top_ups_and_credits(
        funds in prop::collection::vec(0i64..=1_000, 2),
        steps in prop::collection::vec(step(), 1..14),
    ) {
        let mut books = Books::new(&funds);
        for s in &steps {
            books.take(s);
        }
        books.check();
        // The customers leave; the months close late, and take nothing from those written
        // before.
        for (_, token, instance) in &books.customers {
            books.app.act(token, instance, "release");
        }
        books.app.set_now(at("2026-05-02T00:00:00Z"));
        while books.closed < 2 {
            books.take(&Step::Close);
        }
        books.check();
    }
}
