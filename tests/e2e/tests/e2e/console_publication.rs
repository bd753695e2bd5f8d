//! The console after publication, in a real browser (headless Chromium) against the app under
//! `spin up`: a provider adds a webhook (its secret shown once), raises a price — the version
//! and the date it reaches existing instances on the product's page, the change and its date
//! on a customer's instance — then delists and relists the product while the customer's catalog
//! stops and starts offering it, and the webhook receives the delisting signed with the secret
//! the page showed; a customer follows a bill's line to the usage it summed and downloads its
//! bills and usage as CSV. Set-up goes through the API; what the console shows is read in the
//! browser, with screenshots and a clean browser log as in `console.rs`.

use chrono::{DurationRound, TimeDelta, Utc};
use serde_json::Value;
use testkit::{Market, Response, WebhookReceiver, at, csv_rows, rfc3339, str_of, usage};

use crate::console::{DESKTOP, PHONE, sign_in};
use crate::harness::{Browser, HttpMarket, Manifest, PAGE_WITHIN, Spin, SpinUp, eventually};

/// An app of its own (a bill run bills every closed period of the deployment) that may call
/// webhooks at any port of the loopback address, where the tests' receivers listen; the price
/// increase notice is the deployment's default.
fn app() -> (Spin, HttpMarket) {
    let app = SpinUp::new(Manifest::repo().without_cron())
        .variable("webhook_hosts", "http://127.0.0.1:*")
        .start();
    let market = app.market();
    (app, market)
}

/// An instant of the API as the console writes it: `2026-03-27 08:00 UTC`.
fn as_shown(rfc3339: &Value) -> String {
    at(&str_of(rfc3339))
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// The value of the cookie `name` that `response` sets.
fn set_cookie(response: &http::Response<ureq::Body>, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no cookie {name} in {:?}", response.headers()))
        .to_owned()
}

/// A console session of `token` signed in over plain HTTP, as a browser does it: the sign-in
/// page's cookie and form token, then the form, whose redirect sets the session's cookie (read
/// from the redirect itself, so redirects are not followed). Returns the `Cookie` header.
fn console_session(market: &HttpMarket, token: &str) -> String {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build(),
    );
    let url = format!("{}/sign-in", market.origin());
    let mut form = agent.get(&url).call().expect("the sign-in page");
    let nonce = set_cookie(&form, "nestmarket_sign_in");
    let page = form.body_mut().read_to_string().expect("its HTML");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no form token on the sign-in page: {page}"));
    let signed_in = agent
        .post(&url)
        .header("cookie", format!("nestmarket_sign_in={nonce}"))
        .send_form([("csrf", csrf), ("next", ""), ("token", token)])
        .expect("the sign-in form answered");
    assert_eq!(signed_in.status(), 303, "{:?}", signed_in.headers());
    format!(
        "nestmarket_session={}",
        set_cookie(&signed_in, "nestmarket_session")
    )
}

/// What the download link `css` of the browser's page answers, fetched over HTTP with a
/// console session of `token`.
fn download(browser: &Browser, market: &HttpMarket, token: &str, css: &str) -> Response {
    let href = browser
        .find(css)
        .attribute("href")
        .unwrap_or_else(|| panic!("{css} links nowhere"));
    assert!(href.starts_with("/exports/"), "{href}");
    let session = console_session(market, token);
    let csv = market
        .call_with_headers(
            "GET",
            &href,
            None,
            &[("cookie", session.as_str())],
            Vec::new(),
        )
        .expect(200);
    assert_eq!(
        csv.header("content-disposition")
            .map(|d| d.starts_with("attachment; filename=")),
        Some(true),
        "{href} is a file to save"
    );
    csv
}

/// The customer's catalog, and whether it offers `product`.
fn catalog_offers(browser: &mut Browser, market: &HttpMarket, product: &str) -> bool {
    browser.open(&format!("{}/catalog", market.origin()), "Catalog");
    browser
        .try_find(&format!("a[href='/catalog/{product}']"))
        .is_some()
}

/// On the product's page, `action` (delist or relist) for `reason`; once the page offers `next`
/// instead, its text.
fn change_listing(seller: &mut Browser, action: &str, reason: &str, next: &str) -> String {
    seller.fill("#reason", reason);
    seller
        .find(&format!("form[action$='/{action}'] button"))
        .click();
    seller.wait_for_heading("Acme Vector DB");
    seller.find(&format!("form[action$='/{next}']"));
    seller.screenshot(&format!("{action}ed"));
    seller.text()
}

#[test]
fn a_provider_raises_a_price_then_delists_and_relists_while_its_webhook_and_a_customer_follow() {
    let (_app, market) = app();
    let receiver = WebhookReceiver::start();
    let (provider, _, product) = market.published_product();
    let (_, customer) = market.funded_customer("100.00");
    let instance = market.order(&customer, &product);
    let mut seller = Browser::start("publication-provider", DESKTOP);
    sign_in(&mut seller, &market, &provider, "Products");

    // An endpoint for delistings: its secret is on the page that made it, and never again.
    let hooks = format!("{}/webhooks", market.origin());
    seller.open(&hooks, "Webhooks");
    seller.fill("#url", receiver.url());
    seller.find("input[value='product.delisted']").click();
    seller.find("form[action='/webhooks'] button").click();
    seller.wait_for_heading("Webhooks");
    let secret = seller.find("div.created code.secret").text();
    assert!(secret.starts_with("whsec_"), "{}", seller.text());
    let hook = seller.find("main table a[href^='/webhooks/']").text();
    seller.open(&hooks, "Webhooks");
    seller.find(&format!("a[href='/webhooks/{hook}']"));
    assert!(seller.try_find("code.secret").is_none());
    assert!(!seller.text().contains(&secret), "{}", seller.text());

    // A raise of the first tier: version 2, for new orders at once and for existing instances
    // from the deployment's notice (90 days) on.
    let page = format!("{}/products/{product}", market.origin());
    seller.open(&page, "Acme Vector DB");
    assert!(
        seller.find_all("tr.upcoming").is_empty(),
        "{}",
        seller.text()
    );
    seller
        .find(&format!("a[href='/products/{product}/steps/pricing']"))
        .click();
    seller.wait_for_heading("pricing");
    let first_tier = "#f-billable-items-0--tiers-0--unit-price";
    assert_eq!(
        seller.find(first_tier).attribute("value").as_deref(),
        Some("0.5"),
        "the form holds the prices in force"
    );
    seller.fill(first_tier, "0.6");
    seller.find("form.wizard button[type=submit]").click();
    seller.wait_for_heading("Acme Vector DB");
    // The product's page, once the step's form has gone: the new version is the upcoming one.
    let upcoming = seller.find("tr.upcoming").text();
    seller.screenshot("a price raised");
    let versions = market
        .get(
            &format!("/api/v1/products/{product}/pricing/versions"),
            &provider,
        )
        .expect(200)
        .json();
    let raised = &versions["items"][1];
    assert_eq!(raised["version"], 2, "{versions}");
    assert_eq!(raised["raises_price"], true, "{versions}");
    assert_eq!(
        at(&str_of(&raised["effective_at"])) - at(&str_of(&raised["created_at"])),
        TimeDelta::days(90),
        "{versions}"
    );
    assert!(
        upcoming.starts_with("2 ")
            && upcoming.contains(&format!("{} (upcoming)", as_shown(&raised["effective_at"])))
            && upcoming.ends_with("yes"),
        "{upcoming}"
    );
    assert_eq!(
        seller.find_all("main table tbody tr").len(),
        2,
        "{}",
        seller.text()
    );

    // The customer's instance shows the change coming to it, and from which period.
    let mut shopper = Browser::start("publication-customer", PHONE);
    sign_in(&mut shopper, &market, &customer, "Catalog");
    shopper.open(
        &format!("{}/instances/{instance}", market.origin()),
        "Instance",
    );
    let outlook = market
        .get(&format!("/api/v1/instances/{instance}"), &customer)
        .expect(200)
        .json()["pricing"]
        .clone();
    assert_eq!(outlook["version"], 1, "{outlook}");
    assert_eq!(
        outlook["upcoming"]["effective_at"], raised["effective_at"],
        "{outlook}"
    );
    assert_eq!(
        shopper.find("dd.upcoming").text(),
        format!(
            "Version 2 (an increase) prices its periods from {} (in effect {})",
            as_shown(&outlook["upcoming"]["applies_from"]),
            as_shown(&outlook["upcoming"]["effective_at"]),
        )
    );
    assert!(catalog_offers(&mut shopper, &market, &product));

    // Delisted: out of the catalog, the instance still running, the endpoint told.
    seller.open(&page, "Acme Vector DB");
    let shown = change_listing(&mut seller, "delist", "A new edition replaces it", "relist");
    assert!(
        shown.contains("delisted by") && shown.contains("It takes no new orders"),
        "{shown}"
    );
    assert!(!catalog_offers(&mut shopper, &market, &product));
    market
        .get_anonymous(&format!("/api/v1/catalog/{product}"))
        .expect(404);
    let running = market
        .get(&format!("/api/v1/instances/{instance}"), &customer)
        .expect(200)
        .json();
    assert_eq!(running["status"], "running", "{running}");
    let got = receiver.wait_for(1, PAGE_WITHIN);
    assert_eq!(got.len(), 1, "the delisting delivered");
    let event = got[0].json();
    assert_eq!(event["type"], "product.delisted", "{event}");
    assert_eq!(event["data"]["reason"], "A new edition replaces it");
    assert!(
        got[0].signed_with(&secret),
        "signed with the secret the page showed"
    );

    // Relisted: offered again, at the prices new orders get.
    let shown = change_listing(&mut seller, "relist", "Back by demand", "delist");
    assert!(
        shown.contains("In the catalog, taking orders")
            && shown.contains("delisted by")
            && shown.contains("relisted by"),
        "the availability and its history: {shown}"
    );
    assert!(catalog_offers(&mut shopper, &market, &product));
    shopper
        .find(&format!("a[href='/catalog/{product}']"))
        .click();
    shopper.wait_for_heading("Acme Vector DB");
    let first_row = shopper
        .find_all("table tbody tr")
        .into_iter()
        .map(|row| row.text())
        .find(|row| row.starts_with("over 0 up to 1000"))
        .unwrap_or_else(|| panic!("no first tier: {}", shopper.text()));
    assert!(first_row.ends_with("0.6 CNY"), "{first_row}");
    shopper.find("form[action='/orders/new']");

    // The endpoint's page lists the delivery and its answer; deleted, it is gone.
    let answered = eventually("the delivery's attempt listed", PAGE_WITHIN, || {
        seller.open(&format!("{hooks}/{hook}"), "Webhook");
        let text = seller.find("main").text();
        text.contains("answered 204").then_some(text)
    });
    assert!(answered.contains("product.delisted"), "{answered}");
    seller
        .find(&format!("form[action='/webhooks/{hook}/delete'] button"))
        .click();
    seller.wait_for_heading("Webhooks");
    eventually("the endpoint gone", PAGE_WITHIN, || {
        seller.text().contains("No endpoint yet.").then_some(())
    });
    assert!(
        market
            .every_page("/api/v1/webhooks", &provider, "")
            .is_empty()
    );
}

#[test]
fn a_customer_follows_a_bill_line_to_its_usage_and_downloads_bills_and_usage_on_a_phone() {
    let (_app, market) = app();
    let (provider, _, product) = market.published_product();
    let (_, customer) = market.funded_customer("1000.00");
    let instance = market.order(&customer, &product);
    // Three records in the next hour; a bill run once it has closed.
    let hour = Utc::now()
        .duration_trunc(TimeDelta::hours(1))
        .expect("an hour")
        + TimeDelta::hours(1);
    let records: Vec<Value> = [(0, 400), (20, 650), (40, 35)]
        .iter()
        .map(|(minute, calls)| {
            let from = hour + TimeDelta::minutes(*minute);
            usage(
                &rfc3339(from),
                &rfc3339(from + TimeDelta::minutes(20)),
                "Frequency",
                *calls,
            )
        })
        .collect();
    market
        .at(hour + TimeDelta::minutes(61))
        .push_usage(&provider, &instance, &records)
        .expect(200);
    market.bill_run(&rfc3339(hour + TimeDelta::hours(2)));
    let bills = market.bills(&customer, Some(&instance));
    let billed = bills
        .iter()
        .find(|b| b["period_start"] == rfc3339(hour))
        .unwrap_or_else(|| panic!("no bill of the reported hour: {bills:?}"));
    let bill = str_of(&billed["id"]);
    let line = &billed["lines"][0];
    assert_eq!(line["code"], "Frequency", "{billed}");

    let mut browser = Browser::start("publication-bill", PHONE);
    sign_in(&mut browser, &market, &customer, "Catalog");
    browser.open(&format!("{}/bills", market.origin()), "Bills");
    browser.find(&format!("a[href='/bills/{bill}']")).click();
    browser.wait_for_heading(&format!("Bill {bill}"));
    browser
        .find(&format!("a[href='/bills/{bill}/usage?item=Frequency']"))
        .click();
    browser.wait_for_heading(&format!("Usage of Frequency on bill {bill}"));
    // The line's quantity, and the records it summed adding up to it.
    let quantity = str_of(&line["quantity"]);
    assert_eq!(
        browser.find("main p strong").text(),
        format!("{quantity} {}", str_of(&line["price_unit"]))
    );
    assert_eq!(browser.find_all("main tbody tr").len(), records.len());
    assert_eq!(browser.find("tfoot td.num").text(), quantity);
    browser.find(&format!("a[href='/bills/{bill}']")).click();
    browser.wait_for_heading(&format!("Bill {bill}"));

    // The bills list's download is every bill of the customer, as the API lists them.
    browser.open(&format!("{}/bills", market.origin()), "Bills");
    let (header, rows) = download(&browser, &market, &customer, "a.download").csv();
    assert_eq!(header[..2], ["id", "instance_id"], "{header:?}");
    assert_eq!(rows, csv_rows(&header, &market.bills(&customer, None)));
    assert!(rows.iter().any(|r| r[0] == bill), "{rows:?}");

    // The instance's download is its usage records.
    browser.open(
        &format!("{}/instances/{instance}", market.origin()),
        "Instance",
    );
    let (header, rows) = download(&browser, &market, &customer, "a.download").csv();
    assert_eq!(header[0], "item_code", "{header:?}");
    assert_eq!(
        rows,
        csv_rows(&header, &market.usage_records(&customer, &instance))
    );
    assert_eq!(rows.len(), records.len());
}
