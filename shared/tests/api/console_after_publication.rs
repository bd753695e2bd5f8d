//! The console's pages after publication, over the in-process market: a product's pricing
//! versions and upcoming change, delisting and relisting, a bill line's usage, the CSV downloads
//! and webhook management, each under the API's roles and tenancy.

use serde_json::json;
use testkit::native::TestApp;
use testkit::{Item, Market, WebhookReceiver, at, str_of, usage};

use crate::console::Browser;

fn app() -> TestApp {
    TestApp::with_config(|name| match name {
        "allow_clock_override" => Some("true".to_owned()),
        "price_increase_notice_days" => Some("2".to_owned()),
        "webhook_hosts" => Some("http://127.0.0.1:*".to_owned()),
        _ => None,
    })
}

#[test]
fn a_provider_changes_prices_and_delists_from_the_products_page() {
    let app = app();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = app.funded_customer("100.00");
    let instance = app.order(&customer, &product);
    let mut seller = Browser::new(&app);
    seller.sign_in(&provider).expect(303);
    let page = seller
        .get(&format!("/products/{product}"))
        .expect(200)
        .text();
    assert!(
        page.contains("Prices") && page.contains("Availability"),
        "{page}"
    );
    assert!(page.contains("Change the prices"));

    app.set_now(at("2026-03-27T09:00:00Z"));
    let saved = seller.post(
        &format!("/products/{product}/steps/pricing"),
        &[
            ("pricing_plan", "by_usage"),
            ("enterprise_only", "false"),
            ("billing_period", "hour"),
            ("billable_items[0].code", "Frequency"),
            ("billable_items[0].name", "Frequency"),
            ("billable_items[0].tier_mode", "graduated"),
            ("billable_items[0].tiers[0].unit_price", "0.9"),
        ],
    );
    assert_eq!(saved.status, 303, "{}", saved.text());
    let page = seller
        .get(&format!("/products/{product}"))
        .expect(200)
        .text();
    assert!(page.contains("(upcoming)"), "{page}");
    // The customer sees what comes to its instance, and from when.
    let mut shopper = Browser::new(&app);
    shopper.sign_in(&customer).expect(303);
    let shown = shopper
        .get(&format!("/instances/{instance}"))
        .expect(200)
        .text();
    assert!(
        shown.contains("Upcoming price change") && shown.contains("an increase"),
        "{shown}"
    );

    let delisted = seller.post(
        &format!("/products/{product}/delist"),
        &[("reason", "a new edition")],
    );
    assert_eq!(delisted.status, 303, "{}", delisted.text());
    let page = seller
        .get(&format!("/products/{product}"))
        .expect(200)
        .text();
    assert!(
        page.contains("delisted") && page.contains("a new edition"),
        "{page}"
    );
    app.get_anonymous(&format!("/api/v1/catalog/{product}"))
        .problem(404, "NotFound");
    seller
        .post(
            &format!("/products/{product}/relist"),
            &[("reason", "back")],
        )
        .expect(303);
    app.get_anonymous(&format!("/api/v1/catalog/{product}"))
        .expect(200);
    // A customer may not delist.
    shopper
        .post(&format!("/products/{product}/delist"), &[("reason", "no")])
        .expect(403);
}

#[test]
fn a_bill_line_links_to_its_usage_and_the_lists_download_as_csv() {
    let app = app();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = app.funded_customer("100.00");
    let instance = app.order(&customer, &product);
    app.set_now(at("2026-03-27T08:40:00Z"));
    app.push_usage(
        &provider,
        &instance,
        &[usage(
            "2026-03-27T08:00:00Z",
            "2026-03-27T08:30:00Z",
            "Frequency",
            42,
        )],
    )
    .expect(200);
    app.bill_run("2026-03-27T10:00:00Z");
    let bill = str_of(&app.bills(&customer, Some(&instance))[0]["id"]);
    let mut shopper = Browser::new(&app);
    shopper.sign_in(&customer).expect(303);
    let link = format!("/bills/{bill}/usage?item=Frequency");
    let page = shopper.get(&format!("/bills/{bill}")).expect(200).text();
    assert!(
        page.contains(&link.replace('&', "&amp;")) || page.contains(&link),
        "{page}"
    );
    let usage_page = shopper.get(&link).expect(200).text();
    assert!(
        usage_page.contains("42") && usage_page.contains("This page"),
        "{usage_page}"
    );
    let (_, stranger) = app.funded_customer("1.00");
    let mut other = Browser::new(&app);
    other.sign_in(&stranger).expect(303);
    assert_eq!(other.get(&link).status, 404);

    let csv = shopper.get("/exports/bills").expect(200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        csv.header("content-disposition"),
        Some("attachment; filename=\"bills.csv\"")
    );
    assert!(csv.text().starts_with("id,instance_id,"));
    assert!(csv.text().contains(&bill));
    let records = shopper
        .get(&format!("/exports/usage?instance_id={instance}"))
        .expect(200)
        .text();
    assert!(
        records.contains("Frequency,") && records.contains(",42,"),
        "{records}"
    );
    assert_eq!(
        other
            .get(&format!("/exports/usage?instance_id={instance}"))
            .status,
        404
    );
    assert!(
        other
            .get("/exports/bills")
            .expect(200)
            .text()
            .lines()
            .count()
            == 1
    );
    let mut seller = Browser::new(&app);
    seller.sign_in(&provider).expect(303);
    let statements = seller.get("/exports/settlements?month=2026-03").expect(200);
    assert!(statements.text().starts_with("id,provider_id,month,"));
}

#[test]
fn a_customer_adds_a_webhook_sees_its_secret_once_and_its_deliveries() {
    let app = app();
    let (_, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = app.funded_customer("100.00");
    let receiver = WebhookReceiver::start();
    let mut shopper = Browser::new(&app);
    shopper.sign_in(&customer).expect(303);
    let page = shopper.get("/webhooks").expect(200).text();
    assert!(
        page.contains("order.created") && !page.contains("settlement.closed"),
        "{page}"
    );
    let created = shopper.post(
        "/webhooks",
        &[
            ("url", receiver.url()),
            ("events", "order.created"),
            ("events", "bill.issued"),
        ],
    );
    let shown = created.expect(200).text();
    assert!(shown.contains("whsec_"), "the secret, once: {shown}");
    let listed = shopper.get("/webhooks").expect(200).text();
    assert!(!listed.contains("whsec_"), "never again: {listed}");
    let hooks = app.every_page("/api/v1/webhooks", &customer, "");
    let hook = str_of(&hooks[0]["id"]);
    assert_eq!(hooks[0]["events"], json!(["order.created", "bill.issued"]));
    app.order(&customer, &product);
    assert_eq!(receiver.deliveries().len(), 1);
    let deliveries = shopper.get(&format!("/webhooks/{hook}")).expect(200).text();
    assert!(deliveries.contains("answered 204"), "{deliveries}");
    // Refused with the reason beside the form.
    let refused = shopper.post(
        "/webhooks",
        &[
            ("url", "https://elsewhere.example/in"),
            ("events", "bill.issued"),
        ],
    );
    assert_eq!(refused.status, 409);
    assert!(
        refused.text().contains("may not call"),
        "{}",
        refused.text()
    );
    shopper
        .post(&format!("/webhooks/{hook}/delete"), &[])
        .expect(303);
    assert!(app.every_page("/api/v1/webhooks", &customer, "").is_empty());
}
