//! docs/RULES.md R11.17 through the HTTP handlers: an operator's credit note gives part of a bill
//! back once, never more than is left of it, states the part it reduces, and reduces the
//! provider's statement of the month it is issued in; customers, providers and operators read
//! the notes they may see.

use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, Response, at, cents, str_of};

/// A provider's hourly product (running time at 1.00 an hour, its template's resources at 1.60)
/// ordered at 08:00 on March 27th by a customer topped up with `funds`; its 08:00 to 10:00 hours
/// billed at 12:00. The deployment's commission is 10%.
struct Billed {
    app: TestApp,
    provider: String,
    customer_id: String,
    customer: String,
    instance: String,
    bills: Vec<Value>,
}

fn billed(funds: &str) -> Billed {
    let app = TestApp::with_config(|name| match name {
        "allow_clock_override" => Some("true".to_owned()),
        "commission_rate" => Some("0.10".to_owned()),
        _ => None,
    });
    let (provider, product) = app.product_with_items("hour", &[Item::running_time("1.00")], true);
    let (customer_id, customer) = app.customer("enterprise");
    if funds != "0.00" {
        app.top_up(&customer_id, funds);
    }
    let instance = app.order(&customer, &product);
    app.set_now(at("2026-03-27T12:00:00Z"));
    app.bill_run("2026-03-27T12:00:00Z");
    let bills = app.bills(&customer, Some(&instance));
    assert_eq!(bills.len(), 3, "{bills:?}");
    Billed {
        app,
        provider,
        customer_id,
        customer,
        instance,
        bills,
    }
}

impl Billed {
    fn bill(&self, i: usize) -> String {
        str_of(&self.bills[i]["id"])
    }

    fn read(&self, i: usize) -> Value {
        let path = format!("/api/v1/bills/{}", self.bill(i));
        self.app.get(&path, &self.customer).expect(200).json()
    }

    fn credit_with_key(&self, i: usize, key: &str, body: Value) -> Response {
        self.app.call_with_headers(
            "POST",
            &format!("/api/v1/bills/{}/credit-notes", self.bill(i)),
            Some(ADMIN),
            &[
                ("content-type", "application/json"),
                ("idempotency-key", key),
            ],
            body.to_string().into_bytes(),
        )
    }
}

#[test]
fn a_credit_note_credits_once_under_a_retried_key_and_reduces_the_providers_statement() {
    let w = billed("100.00");
    // Three hours of 1.00 + 1.60, collected: 92.20 left.
    assert_eq!(w.app.balance(&w.customer), "92.20");
    let before = w.app.statement(&w.provider, "2026-03");
    assert_eq!(
        (&before["collected"], &before["commission"], &before["net"]),
        (&json!("3.00"), &json!("0.30"), &json!("2.70"))
    );
    w.app.set_now(at("2026-03-28T09:00:00Z"));
    let body = json!({"amount": "0.50", "reason": "A half hour of running time was ours"});
    let first = w.credit_with_key(0, "credit-1", body.clone()).expect(201);
    let retry = w.credit_with_key(0, "credit-1", body).expect(201);
    assert_eq!(retry.json(), first.json());
    let note = first.json();
    assert_eq!(
        (
            &note["amount"],
            &note["product_fees"],
            &note["resource_fees"]
        ),
        (&json!("0.50"), &json!("0.50"), &json!("0.00"))
    );
    assert_eq!(
        (&note["issued_by"], &note["issued_at"], &note["customer_id"]),
        (
            &json!("usr-admin"),
            &json!("2026-03-28T09:00:00Z"),
            &json!(w.customer_id)
        )
    );

    // Credited once: one `credit` entry, referencing the bill.
    assert_eq!(w.app.balance(&w.customer), "92.70");
    let ledger = w.app.ledger(&w.customer);
    let credits: Vec<&Value> = ledger.iter().filter(|e| e["kind"] == "credit").collect();
    assert_eq!(credits.len(), 1, "{ledger:?}");
    assert_eq!(
        (
            &credits[0]["amount"],
            &credits[0]["reference"],
            &credits[0]["id"]
        ),
        (&json!("0.50"), &json!(w.bill(0)), &note["ledger_entry_id"])
    );
    // The bill shows it: 0.50 of its product fees given back of what was collected.
    let bill = w.read(0);
    assert_eq!(bill["credit_notes"], json!([note]));
    assert_eq!(
        (&bill["credited"], &bill["collected"], &bill["uncollected"]),
        (&json!("0.50"), &json!("2.10"), &json!("0.00"))
    );
    assert_eq!(
        bill["parts"]["product_fees"],
        json!({"credited": "0.50", "collected": "0.50", "uncollected": "0.00"})
    );
    // The provider's March: what was collected less what the note gave back, the commission
    // taken of what remains.
    let after = w.app.statement(&w.provider, "2026-03");
    assert_eq!(
        (
            &after["gross"],
            &after["collected"],
            &after["credited"],
            &after["commission"],
            &after["net"]
        ),
        (
            &json!("3.00"),
            &json!("2.50"),
            &json!("0.50"),
            &json!("0.25"),
            &json!("2.25")
        )
    );
}

#[test]
fn a_credit_note_never_exceeds_what_is_left_of_its_bill_and_states_its_parts() {
    let w = billed("100.00");
    // The cloud resources' part first: 1.60 of it, then 0.40 of the product fees.
    let note = w
        .app
        .post(
            &format!("/api/v1/bills/{}/credit-notes", w.bill(1)),
            ADMIN,
            json!({"amount": "2.00", "reason": "The zone was down", "applies_to": "resource_fees"}),
        )
        .expect(201)
        .json();
    assert_eq!(
        (&note["product_fees"], &note["resource_fees"]),
        (&json!("0.40"), &json!("1.60"))
    );
    // 0.60 is left of 2.60: 0.61 is too much, and changes nothing.
    let before = w.app.snapshot();
    let refused = w
        .app
        .credit(&w.bill(1), "0.61", "more")
        .problem(409, "CreditExceedsBill");
    assert!(
        refused["detail"].as_str().unwrap().contains("at most 0.60"),
        "{refused}"
    );
    for (body, code) in [
        (json!({"amount": "0", "reason": "r"}), "InvalidAmount"),
        (json!({"amount": "0.001", "reason": "r"}), "InvalidAmount"),
        (json!({"amount": "-1.00", "reason": "r"}), "InvalidAmount"),
        (json!({"amount": "1.00"}), "Required"),
        (json!({"amount": "1.00", "reason": "  "}), "Required"),
        (
            json!({"amount": "1.00", "reason": "x".repeat(501)}),
            "TooLong",
        ),
        (
            json!({"amount": "1.00", "reason": "r", "applies_to": "total"}),
            "InvalidJson",
        ),
        (
            json!({"amount": "1.00", "reason": "r", "why": 1}),
            "UnknownField",
        ),
    ] {
        let path = format!("/api/v1/bills/{}/credit-notes", w.bill(1));
        w.app.post(&path, ADMIN, body).problem(400, code);
    }
    w.app
        .credit("bill-missing", "1.00", "r")
        .problem(404, "NotFound");
    let path = format!("/api/v1/bills/{}/credit-notes", w.bill(1));
    w.app
        .post(&path, &w.customer, json!({"amount": "1.00", "reason": "r"}))
        .problem(403, "Forbidden");
    w.app
        .post(&path, &w.provider, json!({"amount": "1.00", "reason": "r"}))
        .problem(403, "Forbidden");
    assert_eq!(w.app.snapshot(), before);
    // What is left, exactly, is creditable; then nothing is.
    w.app.credit(&w.bill(1), "0.60", "the rest").expect(201);
    w.app
        .credit(&w.bill(1), "0.01", "more")
        .problem(409, "CreditExceedsBill");
    let bill = w.read(1);
    assert_eq!(
        (&bill["credited"], &bill["collected"]),
        (&json!("2.60"), &json!("0.00"))
    );
}

#[test]
fn a_test_orders_bill_charged_nothing_and_has_nothing_to_credit() {
    let w = billed("100.00");
    let (tester, self_test) =
        w.app
            .product_with_items("hour", &[Item::running_time("1.00")], false);
    w.app.set_now(at("2026-03-27T12:00:00Z"));
    let test_instance = w.app.order(&tester, &self_test);
    w.app.set_now(at("2026-03-27T14:00:00Z"));
    w.app.bill_run("2026-03-27T14:00:00Z");
    let test_bill = str_of(&w.app.bills(&tester, Some(&test_instance))[0]["id"]);
    let refused = w
        .app
        .credit(&test_bill, "0.01", "r")
        .problem(409, "CreditExceedsBill");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("a test order's bill"),
        "{refused}"
    );
}

#[test]
fn credit_notes_are_listed_to_their_customer_provider_and_operators() {
    let w = billed("100.00");
    let first = str_of(&w.app.credit(&w.bill(0), "0.10", "one").expect(201).json()["id"]);
    w.app.set_now(at("2026-03-27T12:01:00Z"));
    let second = str_of(&w.app.credit(&w.bill(2), "0.20", "two").expect(201).json()["id"]);
    let ids = |token: &str, query: &str| -> Vec<String> {
        w.app
            .every_page(&format!("/api/v1/credit-notes{query}"), token, "")
            .iter()
            .map(|n| str_of(&n["id"]))
            .collect()
    };
    let both = vec![first.clone(), second.clone()];
    assert_eq!(ids(&w.customer, ""), both);
    assert_eq!(ids(&w.provider, ""), both);
    assert_eq!(ids(ADMIN, ""), both);
    assert_eq!(ids(ADMIN, &format!("?bill_id={}", w.bill(2))), [second]);
    // Pages follow the cursor, oldest first.
    let page = w
        .app
        .get("/api/v1/credit-notes?limit=1", &w.customer)
        .expect(200)
        .json();
    assert_eq!(
        (&page["items"][0]["id"], &page["next_cursor"]),
        (&json!(first), &json!(first))
    );
    // Another customer, another provider: nothing; the platform has no credit notes.
    let (_, stranger) = w.app.customer("individual");
    assert!(ids(&stranger, "").is_empty());
    assert!(ids(&stranger, &format!("?bill_id={}", w.bill(0))).is_empty());
    let (_, other_provider) = w.app.provider();
    assert!(ids(&other_provider, "").is_empty());
    let (_, platform) = w.app.principal("platform", None);
    w.app
        .get("/api/v1/credit-notes", &platform)
        .problem(403, "Forbidden");
    w.app
        .get("/api/v1/credit-notes?limit=0", &w.customer)
        .problem(400, "InvalidQuery");
}

#[test]
fn a_credit_on_an_unpaid_bill_forgives_what_it_owed_and_pays_the_oldest_bills_with_the_rest() {
    // 3.00 of funds for three bills of 2.60: the second is 0.40 paid (its product fees), the
    // third not at all.
    let w = billed("3.00");
    assert_eq!(w.app.balance(&w.customer), "-4.80");
    let owed = |i: usize| str_of(&w.read(i)["uncollected"]);
    assert_eq!(
        (owed(0), owed(1), owed(2)),
        ("0.00".into(), "2.20".into(), "2.60".into())
    );
    // A credit of the whole third bill forgives it: nothing was collected of it.
    let before = w.app.statement(&w.provider, "2026-03");
    w.app.credit(&w.bill(2), "2.60", "never ran").expect(201);
    assert_eq!(owed(2), "0.00");
    assert_eq!(w.read(2)["collected"], "0.00");
    let after = w.app.statement(&w.provider, "2026-03");
    assert_eq!(
        after["collected"], before["collected"],
        "nothing given back"
    );
    assert_eq!(
        (&after["credited"], &after["uncollected"]),
        (&json!("1.00"), &json!("0.60"))
    );
    // A credit of the first, paid, bill gives 1.00 back, which pays the second's oldest part
    // first: the 0.60 its product fees owed, then 0.40 of its resources.
    w.app
        .credit(&w.bill(0), "1.00", "an hour too many")
        .expect(201);
    assert_eq!(owed(1), "1.20");
    assert_eq!(
        w.read(1)["parts"]["product_fees"],
        json!({"credited": "0.00", "collected": "1.00", "uncollected": "0.00"})
    );
    assert_eq!(w.app.balance(&w.customer), "-1.20");
    // What the bills still owe is what the balance owes.
    let total_owed: i64 = (0..3).map(|i| cents(&owed(i))).sum();
    assert_eq!(total_owed, -cents(&w.app.balance(&w.customer)));
    let now = w.app.statement(&w.provider, "2026-03");
    // 1.40 collected before, 1.00 given back, 0.60 collected now.
    assert_eq!(
        (&now["collected"], &now["uncollected"]),
        (&json!("1.00"), &json!("0.00")),
        "{now}"
    );
    let instance = w
        .app
        .get(&format!("/api/v1/instances/{}", w.instance), &w.customer);
    assert_eq!(instance.expect(200).json()["status"], "running");
}
