//! Signed webhooks under Spin: the components that make a change deliver its events right after
//! the response, through `allowed_outbound_hosts = ["{{ webhook_hosts }}"]` (the variable holds
//! a local receiver's origin here), and the cron component retries what an endpoint refused.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::{
    CUSTOMER_EVENTS, Delivery, Item, Market, PROVIDER_EVENTS, WebhookReceiver, at, str_of,
};

use crate::harness::{HttpMarket, Manifest, SpinUp, eventually};

fn types(got: &[Delivery]) -> Vec<String> {
    let mut types: Vec<String> = got.iter().map(|d| str_of(&d.json()["type"])).collect();
    types.sort();
    types
}

/// A provider's product of one hourly item, its steps written and the provider's webhook
/// registered before the reviews: (provider token, product id, webhook secret).
fn provider_listening(market: &HttpMarket, receiver: &WebhookReceiver) -> (String, String, String) {
    let item = Item::running_time("1.00");
    let (provider, _, product) = market.complete_product_with(|name, body| {
        if name == "pricing" {
            body["billing_period"] = json!("hour");
            body["billable_items"] = json!([{"code": item.code, "name": item.code,
                "tier_mode": item.tier_mode, "tiers": item.tiers}]);
        }
    });
    let (_, secret) = market.webhook(&provider, receiver.url(), &PROVIDER_EVENTS);
    (provider, product, secret)
}

#[test]
fn every_event_reaches_its_receiver_signed_right_after_its_change() {
    let provider_rx = WebhookReceiver::start();
    let customer_rx = WebhookReceiver::start();
    let debtor_rx = WebhookReceiver::start();
    // One grant for every receiver: any port of the loopback address. A customer a bill run
    // leaves in arrears is suspended by that same run.
    let app = SpinUp::new(Manifest::repo().without_cron())
        .variable("webhook_hosts", "http://127.0.0.1:*")
        .variable("arrears_grace_hours", "0")
        .start();
    let market = app.market().at(at("2026-03-27T08:00:00Z"));
    let (provider, product, provider_secret) = provider_listening(&market, &provider_rx);
    market.pass_category_review(&provider, &product);
    market.configure_and_publish(&provider, &product, &[Item::running_time("1.00")], true);
    let (_, customer) = market.funded_customer("100.00");
    let (_, customer_secret) = market.webhook(&customer, customer_rx.url(), &CUSTOMER_EVENTS);
    let instance = market.order(&customer, &product);
    market.set_now(at("2026-03-27T09:30:00Z"));
    market.act(&customer, &instance, "release");
    market.bill_run("2026-03-27T11:00:00Z");
    market.set_now(at("2026-04-01T16:00:00Z"));
    let closing = market
        .post(
            "/api/v1/settlements/runs",
            market.admin_token(),
            json!({"month": "2026-03"}),
        )
        .expect(200)
        .json();
    let statement = closing["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["products"].to_string().contains(&product))
        .map(|s| str_of(&s["id"]))
        .unwrap_or_else(|| panic!("{closing}"));
    market
        .post(
            &format!("/api/v1/settlements/{statement}/payout"),
            market.admin_token(),
            json!({"reference": "wire-7"}),
        )
        .expect(200);
    // Another customer, whose first bill takes it below zero: that bill run suspends its
    // instance (its 16:00 hour is billed once the late-data window after it has passed).
    let (debtor_id, debtor) = market.funded_customer("0.50");
    let (_, debtor_secret) = market.webhook(&debtor, debtor_rx.url(), &CUSTOMER_EVENTS);
    let debtor_instance = market.order(&debtor, &product);
    market
        .post(
            &format!("/api/v1/products/{product}/delist"),
            &provider,
            json!({"reason": "retired"}),
        )
        .expect(200);
    market.set_now(at("2026-04-01T18:00:00Z"));
    let run = market.bill_run("2026-04-01T18:00:00Z");
    assert_eq!(run["suspended"], json!([debtor_instance]));
    // The operator credits part of the first customer's first bill; paying its arrears runs
    // the debtor's instance again, which is no event.
    let first_bill = str_of(&market.bills(&customer, Some(&instance))[0]["id"]);
    market.credit(&first_bill, "0.40", "an outage").expect(201);
    market.top_up(&debtor_id, "10.00");

    let within = Duration::from_secs(30);
    let got = provider_rx.wait_for(14, within);
    let mut expected = vec![
        "bill.issued",
        "bill.issued",
        "bill.issued",
        "credit_note.issued",
        "instance.released",
        "instance.suspended",
        "order.created",
        "order.created",
        "product.delisted",
        "product.published",
        "review.decided",
        "review.decided",
        "settlement.closed",
        "settlement.paid",
    ];
    expected.sort_unstable();
    assert_eq!(types(&got), expected);
    assert!(got.iter().all(|d| d.signed_with(&provider_secret)));
    assert!(
        got.iter()
            .all(|d| d.headers["content-type"] == "application/json")
    );
    let customer_got = customer_rx.wait_for(5, within);
    assert_eq!(
        types(&customer_got),
        [
            "bill.issued",
            "bill.issued",
            "credit_note.issued",
            "instance.released",
            "order.created"
        ],
        "its credit note, not the other customer's suspension"
    );
    assert!(customer_got.iter().all(|d| d.signed_with(&customer_secret)));
    let debtor_got = debtor_rx.wait_for(3, within);
    assert_eq!(
        types(&debtor_got),
        ["bill.issued", "instance.suspended", "order.created"],
        "its suspension, not the other customer's credit note, and no resumption"
    );
    assert!(debtor_got.iter().all(|d| d.signed_with(&debtor_secret)));
    let of = |got: &[Delivery], kind: &str| {
        got.iter()
            .map(Delivery::json)
            .find(|e| e["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let suspended = of(&debtor_got, "instance.suspended");
    assert_eq!(suspended["data"]["id"], debtor_instance);
    assert_eq!(suspended["data"]["status"], "suspended");
    let credited = of(&customer_got, "credit_note.issued");
    assert_eq!(credited["data"]["bill_id"], first_bill);
    assert_eq!(credited["data"]["amount"], "0.40");
    let delisted = of(&got, "product.delisted");
    assert_eq!(delisted["data"]["reason"], "retired");
    assert!(str_of(&delisted["id"]).starts_with("evt-"));
}

#[test]
fn the_schedule_retries_a_delivery_its_endpoint_refused() {
    let receiver = WebhookReceiver::answering(|n| if n == 1 { 500 } else { 204 });
    let app = SpinUp::new(Manifest::repo().cron_every_two_seconds())
        .variable("webhook_hosts", receiver.origin())
        .start();
    // The real clock: the schedule retries as of its own.
    let market = app.market();
    let (_, product) = market.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = market.funded_customer("100.00");
    let (hook, secret) = market.webhook(&customer, receiver.url(), &["order.created"]);
    market.order(&customer, &product);
    let got = receiver.wait_for(2, Duration::from_secs(60));
    assert_eq!(got.len(), 2, "refused once, then retried by the schedule");
    assert_eq!(got[0].answered, 500);
    assert_eq!(got[1].answered, 204);
    assert_eq!(got[0].body, got[1].body, "the same event, byte for byte");
    assert!(got.iter().all(|d| d.signed_with(&secret)));
    let deliveries: Value = eventually("the retry recorded", Duration::from_secs(10), || {
        let page = market
            .get(&format!("/api/v1/webhooks/{hook}/deliveries"), &customer)
            .expect(200)
            .json();
        (page["items"][0]["status"] == "delivered").then_some(page)
    });
    let codes: Vec<&Value> = deliveries["items"][0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(204)]);
}
