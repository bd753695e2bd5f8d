//! docs/RULES.md R15.12–R15.17 through the HTTP handlers: signed webhooks. Each event is written in the
//! transaction of its change and delivered, signed, to the endpoints of the principals it
//! concerns (operators': all), right after the request and then by the schedule with backoff
//! for 72 hours; every attempt is listed.

use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{
    CUSTOMER_EVENTS, Delivery, Item, Market, PROVIDER_EVENTS, WebhookReceiver, at, str_of, usage,
};

fn app() -> TestApp {
    TestApp::with_config(|name| match name {
        "allow_clock_override" => Some("true".to_owned()),
        "webhook_hosts" => Some("http://127.0.0.1:*".to_owned()),
        // A customer a bill run leaves in arrears is suspended by that same run.
        "arrears_grace_hours" => Some("0".to_owned()),
        _ => None,
    })
}

fn types(deliveries: &[Delivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| str_of(&d.json()["type"]))
        .collect()
}

fn deliveries_of(app: &TestApp, token: &str, webhook: &str) -> Vec<Value> {
    app.every_page(&format!("/api/v1/webhooks/{webhook}/deliveries"), token, "")
}

#[test]
fn every_event_reaches_its_own_tenants_signed_and_nobody_elses() {
    let app = app();
    let (provider, _, product) = app.complete_product_with(|name, body| {
        if name == "pricing" {
            body["billing_period"] = json!("hour");
            let item = Item::running_time("1.00");
            body["billable_items"] = json!([{"code": item.code, "name": item.code,
                "tier_mode": item.tier_mode, "tiers": item.tiers}]);
        }
    });
    let provider_rx = WebhookReceiver::start();
    let (provider_hook, provider_secret) =
        app.webhook(&provider, provider_rx.url(), &PROVIDER_EVENTS);
    let operator_rx = WebhookReceiver::start();
    let (_, operator_secret) = app.webhook(ADMIN, operator_rx.url(), &PROVIDER_EVENTS);
    let (_, other) = app.provider();
    let other_rx = WebhookReceiver::start();
    app.webhook(&other, other_rx.url(), &PROVIDER_EVENTS);

    app.pass_category_review(&provider, &product);
    app.configure_and_publish(&provider, &product, &[Item::running_time("1.00")], true);
    let (customer_id, customer) = app.funded_customer("100.00");
    let customer_rx = WebhookReceiver::start();
    let (_, customer_secret) = app.webhook(&customer, customer_rx.url(), &CUSTOMER_EVENTS);
    let instance = app.order(&customer, &product);
    app.set_now(at("2026-03-27T09:30:00Z"));
    app.act(&customer, &instance, "release");
    app.bill_run("2026-03-27T11:00:00Z");
    app.set_now(at("2026-04-01T16:00:00Z"));
    let closing = app
        .post(
            "/api/v1/settlements/runs",
            ADMIN,
            json!({"month": "2026-03"}),
        )
        .expect(200)
        .json();
    let statement = str_of(&closing["items"][0]["id"]);
    app.post(
        &format!("/api/v1/settlements/{statement}/payout"),
        ADMIN,
        json!({"reference": "wire-1"}),
    )
    .expect(200);
    // Another customer, whose first bill takes it below zero: that bill run suspends its
    // instance.
    let (debtor_id, debtor) = app.funded_customer("0.50");
    let debtor_rx = WebhookReceiver::start();
    let (_, debtor_secret) = app.webhook(&debtor, debtor_rx.url(), &CUSTOMER_EVENTS);
    let debtor_instance = app.order(&debtor, &product);
    app.post(
        &format!("/api/v1/products/{product}/delist"),
        &provider,
        json!({"reason": "retired"}),
    )
    .expect(200);
    // Its 16:00 hour is billed once the late-data window after it has passed.
    app.set_now(at("2026-04-01T18:00:00Z"));
    let run = app.bill_run("2026-04-01T18:00:00Z");
    assert_eq!(run["suspended"], json!([debtor_instance]));
    // The operator credits part of the first customer's first bill.
    let first_bill = str_of(&customer_rx.deliveries()[2].json()["data"]["id"]);
    app.credit(&first_bill, "0.40", "an outage").expect(201);
    // Paying its arrears runs the debtor's instance again: no event (R15.12).
    app.top_up(&debtor_id, "10.00");

    let provider_got = provider_rx.deliveries();
    assert_eq!(
        types(&provider_got),
        [
            "review.decided",
            "review.decided",
            "product.published",
            "order.created",
            "instance.released",
            "bill.issued",
            "bill.issued",
            "settlement.closed",
            "settlement.paid",
            "order.created",
            "product.delisted",
            "bill.issued",
            "instance.suspended",
            "credit_note.issued",
        ],
        "in the order of their changes"
    );
    assert!(provider_got.iter().all(|d| d.signed_with(&provider_secret)));
    assert!(
        provider_got
            .iter()
            .all(|d| !d.signed_with(&customer_secret))
    );
    let customer_got = customer_rx.deliveries();
    assert_eq!(
        types(&customer_got),
        [
            "order.created",
            "instance.released",
            "bill.issued",
            "bill.issued",
            "credit_note.issued",
        ],
        "its credit note, not the other customer's suspension"
    );
    assert!(customer_got.iter().all(|d| d.signed_with(&customer_secret)));
    let debtor_got = debtor_rx.deliveries();
    assert_eq!(
        types(&debtor_got),
        ["order.created", "bill.issued", "instance.suspended"],
        "its suspension, not the other customer's credit note, and no resumption"
    );
    assert!(debtor_got.iter().all(|d| d.signed_with(&debtor_secret)));
    assert_eq!(types(&operator_rx.deliveries()), types(&provider_got));
    assert!(
        operator_rx
            .deliveries()
            .iter()
            .all(|d| d.signed_with(&operator_secret))
    );
    assert!(other_rx.deliveries().is_empty(), "another tenant's events");

    // The payload: {id, type, created_at, data}, the data what the API shows of the change.
    let order = customer_got[0].json();
    assert!(str_of(&order["id"]).starts_with("evt-"));
    assert_eq!(order["created_at"], "2026-03-27T08:00:00Z");
    assert_eq!(order["data"]["instance"]["id"], instance);
    assert_eq!(order["data"]["instance"]["owner_id"], customer_id);
    let bill = customer_got[2].json();
    assert_eq!(bill["data"]["instance_id"], instance);
    assert_eq!(bill["data"]["product_fees"], "1.00");
    let paid = provider_got[8].json();
    assert_eq!(paid["data"]["payout_reference"], "wire-1");
    let delisted = provider_got[10].json();
    assert_eq!(delisted["data"]["reason"], "retired");
    assert_eq!(delisted["data"]["product_id"], product);
    let suspended = debtor_got[2].json();
    assert_eq!(suspended["created_at"], "2026-04-01T18:00:00Z");
    assert_eq!(suspended["data"]["id"], debtor_instance);
    assert_eq!(suspended["data"]["status"], "suspended");
    assert_eq!(suspended["data"]["owner_id"], debtor_id);
    let credited = customer_got[4].json();
    assert_eq!(credited["data"]["bill_id"], first_bill);
    assert_eq!(credited["data"]["amount"], "0.40");
    assert_eq!(credited["data"]["customer_id"], customer_id);
    assert_eq!(credited["data"]["reason"], "an outage");

    // Every attempt is listed, newest event first, each delivered at its first attempt.
    let listed = deliveries_of(&app, &provider, &provider_hook);
    assert_eq!(listed.len(), 14);
    let ids: Vec<String> = listed.iter().map(|d| str_of(&d["event_id"])).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    for d in &listed {
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "{d}");
        assert_eq!(d["attempts"][0]["status_code"], 204);
        assert_eq!(d["next_attempt_at"], Value::Null);
    }
    // Another principal's webhook is 404, as a missing one.
    app.get(
        &format!("/api/v1/webhooks/{provider_hook}/deliveries"),
        &other,
    )
    .problem(404, "NotFound");
}

#[test]
fn a_failed_delivery_is_retried_with_backoff_until_it_is_answered() {
    let app = app();
    let (_, _, product) = app.published_product();
    let (_, customer) = app.funded_customer("100.00");
    let rx = WebhookReceiver::answering(|n| if n <= 2 { 500 } else { 204 });
    let (hook, secret) = app.webhook(&customer, rx.url(), &["order.created"]);
    app.order(&customer, &product);
    // Tried right after the order: refused, and due again 10 s later.
    assert_eq!(rx.deliveries().len(), 1);
    let pending = &deliveries_of(&app, &customer, &hook)[0];
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["attempts"][0]["status_code"], 500);
    assert_eq!(pending["next_attempt_at"], "2026-03-27T08:00:10Z");
    // The schedule sends what is due, no earlier: 10 s, then 20 s after the next failure.
    app.scheduled_run(at("2026-03-27T08:00:05Z"));
    assert_eq!(rx.deliveries().len(), 1);
    app.scheduled_run(at("2026-03-27T08:00:10Z"));
    assert_eq!(rx.deliveries().len(), 2);
    app.scheduled_run(at("2026-03-27T08:00:29Z"));
    assert_eq!(rx.deliveries().len(), 2);
    app.scheduled_run(at("2026-03-27T08:00:30Z"));
    app.scheduled_run(at("2026-03-27T08:05:00Z"));
    let got = rx.deliveries();
    assert_eq!(got.len(), 3, "delivered once answered, then no more");
    assert!(got.iter().all(|d| d.signed_with(&secret)));
    assert!(
        got.iter().all(|d| d.json()["id"] == got[0].json()["id"]),
        "the same event each time"
    );
    let delivered = &deliveries_of(&app, &customer, &hook)[0];
    assert_eq!(delivered["status"], "delivered");
    let codes: Vec<&Value> = delivered["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(500), &json!(204)]);
}

#[test]
fn a_delivery_is_given_up_72_hours_after_its_event() {
    let app = app();
    let (_, _, product) = app.published_product();
    let (_, customer) = app.funded_customer("100.00");
    let rx = WebhookReceiver::answering(|_| 503);
    let (hook, _) = app.webhook(&customer, rx.url(), &["order.created"]);
    app.order(&customer, &product);
    app.scheduled_run(at("2026-03-30T07:59:00Z"));
    assert_eq!(
        deliveries_of(&app, &customer, &hook)[0]["status"],
        "pending"
    );
    app.scheduled_run(at("2026-03-30T08:00:00Z"));
    let given_up = &deliveries_of(&app, &customer, &hook)[0];
    assert_eq!(given_up["status"], "failed", "{given_up}");
    assert_eq!(given_up["attempts"].as_array().unwrap().len(), 3);
    app.scheduled_run(at("2026-04-02T08:00:00Z"));
    assert_eq!(rx.deliveries().len(), 3);
}

#[test]
fn an_unreachable_endpoint_is_an_attempt_with_its_error() {
    let app = app();
    let (_, _, product) = app.published_product();
    let (_, customer) = app.funded_customer("100.00");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/gone", closed.local_addr().unwrap());
    drop(closed);
    let (hook, _) = app.webhook(&customer, &url, &["order.created"]);
    app.order(&customer, &product);
    let attempt = &deliveries_of(&app, &customer, &hook)[0]["attempts"][0];
    assert_eq!(attempt["status_code"], Value::Null);
    assert!(str_of(&attempt["error"]).contains("connect"), "{attempt}");
}

#[test]
fn a_refused_change_emits_nothing_and_a_deleted_webhook_gets_nothing_more() {
    let app = app();
    let (_, _, product) = app.published_product();
    let (_, customer) = app.funded_customer("100.00");
    let rx = WebhookReceiver::start();
    let (hook, _) = app.webhook(&customer, rx.url(), &["order.created"]);
    let events = app.count("webhook_events");
    app.post(
        "/api/v1/orders",
        &customer,
        json!({"product_id": product, "region": "cn-hangzhou"}),
    )
    .problem(400, "EulaNotAccepted");
    assert_eq!(app.count("webhook_events"), events);
    app.delete(&format!("/api/v1/webhooks/{hook}"), &customer)
        .expect(204);
    app.get(&format!("/api/v1/webhooks/{hook}"), &customer)
        .problem(404, "NotFound");
    app.order(&customer, &product);
    assert!(rx.deliveries().is_empty());
    assert_eq!(app.count("webhook_deliveries"), 0);
}

#[test]
fn a_webhook_is_an_allowed_url_and_the_callers_own_events() {
    let app = app();
    let (_, customer) = app.customer("individual");
    let refused = |body: Value| {
        app.post("/api/v1/webhooks", &customer, body)
            .expect(400)
            .json()
    };
    let outside = app
        .post(
            "/api/v1/webhooks",
            &customer,
            json!({"url": "https://hooks.example.com/in", "events": ["bill.issued"]}),
        )
        .problem(409, "WebhookHostNotAllowed");
    assert!(str_of(&outside["detail"]).contains("https://hooks.example.com:443"));
    for url in [
        "ftp://127.0.0.1/in",
        "http://user:pw@127.0.0.1:9/in",
        "not a url",
    ] {
        let p = refused(json!({"url": url, "events": ["bill.issued"]}));
        assert_eq!(p["errors"][0]["field"], "url", "{url}: {p}");
    }
    let url = "http://127.0.0.1:9/in";
    for (events, field) in [
        (json!([]), "events"),
        (json!(["bill.paid"]), "events[0]"),
        (json!(["settlement.closed"]), "events[0]"),
        (json!(["bill.issued", "bill.issued"]), "events[1]"),
    ] {
        let p = refused(json!({"url": url, "events": events}));
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }
    let created = app
        .post(
            "/api/v1/webhooks",
            &customer,
            json!({"url": url, "events": ["bill.issued"]}),
        )
        .expect(201)
        .json();
    let secret = str_of(&created["secret"]);
    assert!(secret.starts_with("whsec_") && secret.len() == 70);
    let id = str_of(&created["id"]);
    let shown = app
        .get(&format!("/api/v1/webhooks/{id}"), &customer)
        .expect(200)
        .json();
    assert_eq!(shown.get("secret"), None, "the secret is shown once");
    let listed = app.every_page("/api/v1/webhooks", &customer, "");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].get("secret"), None);
    assert_eq!(app.every_page("/api/v1/webhooks", ADMIN, "").len(), 1);
    let (_, other) = app.customer("individual");
    assert!(app.every_page("/api/v1/webhooks", &other, "").is_empty());
    app.delete(&format!("/api/v1/webhooks/{id}"), &other)
        .problem(404, "NotFound");
    for _ in 1..10 {
        app.webhook(&customer, url, &["bill.issued"]);
    }
    app.post(
        "/api/v1/webhooks",
        &customer,
        json!({"url": url, "events": ["bill.issued"]}),
    )
    .problem(409, "WebhookLimit");
    // A deployment that grants no webhook origin takes no webhook.
    app.redeploy(|_| None);
    app.post(
        "/api/v1/webhooks",
        &other,
        json!({"url": url, "events": ["bill.issued"]}),
    )
    .problem(409, "WebhookHostNotAllowed");
}

#[test]
fn a_bill_run_emits_one_event_per_bill_in_its_batches() {
    let app = app();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = app.funded_customer("1000.00");
    let rx = WebhookReceiver::start();
    app.webhook(&provider, rx.url(), &["bill.issued"]);
    let instances: Vec<String> = (0..3).map(|_| app.order(&customer, &product)).collect();
    app.set_now(at("2026-03-27T09:00:00Z"));
    for i in &instances {
        app.push_usage(
            &provider,
            i,
            &[usage(
                "2026-03-27T08:00:00Z",
                "2026-03-27T08:30:00Z",
                "Frequency",
                10,
            )],
        )
        .expect(200);
    }
    let report = app.bill_run("2026-03-27T12:00:00Z");
    let bills = report["bills_written"].as_u64().unwrap() as usize;
    assert!(bills >= 9, "{report}");
    let got = rx.deliveries();
    assert_eq!(got.len(), bills, "delivered right after the run");
    assert_eq!(rx.of_type("bill.issued").len(), bills);
    let mut ids: Vec<String> = got
        .iter()
        .map(|d| str_of(&d.json()["data"]["id"]))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), bills, "one event per bill");
}

#[test]
fn an_unreachable_endpoints_backlog_holds_up_no_other_endpoint() {
    let app = app();
    let (_, _, product) = app.published_product();
    let (_, customer) = app.funded_customer("1000.00");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/gone", closed.local_addr().unwrap());
    drop(closed);
    // A backlog of the dead endpoint's deliveries, more than a page, due before anything else.
    app.webhook(&customer, &dead, &["order.created"]);
    for _ in 0..110 {
        app.order(&customer, &product);
    }
    app.set_now(at("2026-03-27T08:00:01Z"));
    let live = WebhookReceiver::answering(|n| if n <= 10 { 500 } else { 204 });
    let (hook, _) = app.webhook(&customer, live.url(), &["order.created"]);
    for _ in 0..10 {
        app.order(&customer, &product);
    }
    assert_eq!(live.deliveries().len(), 10);
    app.scheduled_run(at("2026-03-27T08:05:00Z"));
    assert_eq!(
        live.deliveries().len(),
        20,
        "the live endpoint's deliveries retried, past the dead one's backlog"
    );
    let listed = deliveries_of(&app, &customer, &hook);
    assert!(listed.iter().all(|d| d["status"] == "delivered"));
}
