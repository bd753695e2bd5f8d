//! The web console in a real browser (headless Chromium) against the app under `spin up`: a
//! provider takes a product from creation to submission, fixing a refused step on the way; an
//! operator rejects a listing, then approves it, then sets a provider's commission, closes a
//! past month and records its payout, which the provider reads on its statement; a customer
//! orders, and after a bill run reads the bill's tier breakdown and the usage behind it. Each
//! test has its own app, since the customer's bill run bills every closed period of the
//! deployment. Every page visited is saved as a screenshot in `target/console-screenshots/`, and
//! the browser's log must stay clean.

use std::time::Duration;

use chrono::{Datelike, DurationRound, TimeDelta, Utc};
use serde_json::json;
use testkit::{Item, Market, pdf, rfc3339, service_body, str_of, usage};

use crate::harness::{Browser, HttpMarket, Manifest, PAGE_WITHIN, Spin, SpinUp, eventually};

/// Phone width: every page must work at 375 px.
pub(crate) const PHONE: u32 = 375;
pub(crate) const DESKTOP: u32 = 1280;

fn app() -> (Spin, HttpMarket) {
    let app = SpinUp::new(Manifest::repo().without_cron()).start();
    let market = app.market();
    (app, market)
}

/// Signs in with `token` and waits for the principal's home page, headed `home`.
pub(crate) fn sign_in(browser: &mut Browser, market: &HttpMarket, token: &str, home: &str) {
    browser.open(&format!("{}/sign-in", market.origin()), "Sign in");
    browser.fill("#token", token);
    browser.find("main form button[type=submit]").click();
    browser.wait_for_heading(home);
}

/// A valid PNG of `width` × `height` pixels (one colour, stored uncompressed), as a browser
/// uploads it from disk.
fn real_png(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for b in bytes {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    let row: Vec<u8> = std::iter::once(0u8)
        .chain((0..width).flat_map(|_| [0x1F, 0x5F, 0xBF]))
        .collect();
    let raw: Vec<u8> = (0..height).flat_map(|_| row.clone()).collect();
    // zlib: a header, stored deflate blocks of at most 65,535 bytes, the Adler-32 of the data.
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend(len.to_le_bytes());
        zlib.extend((!len).to_le_bytes());
        zlib.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in &raw {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend(((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = width.to_be_bytes().to_vec();
    header.extend(height.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn a_provider_takes_a_product_from_creation_to_submission_fixing_a_refused_step() {
    let (_app, market) = app();
    let (_, provider) = market.provider();
    let service = str_of(
        &market
            .post("/api/v1/services", &provider, service_body())
            .expect(201)
            .json()["id"],
    );
    let mut browser = Browser::start("provider", DESKTOP);
    sign_in(&mut browser, &market, &provider, "Products");

    browser.choose("#service_id", &service);
    browser.find("form[action='/products'] button").click();
    browser.wait_for_heading("access");
    let product = browser
        .path()
        .split('/')
        .nth(2)
        .expect("/products/{id}/steps/access")
        .to_owned();
    browser.fill("#f-product-name", "Acme Vector DB");
    browser.choose("#f-service-template-id", "tpl-standard");
    browser.find("form.wizard button[type=submit]").click();
    browser.wait_for_heading("general");

    // Two mistakes at once: a short description over 300 characters, no highlights. Both are
    // shown beside their fields, and in the summary.
    browser.fill("#f-short-description", &"x".repeat(301));
    browser.fill("#f-description", "Everything about it.");
    for (field, text) in [
        ("service-scope", "7x24"),
        ("time-range", "always"),
        ("business-scope", "deployment"),
        ("billing-scope", "usage"),
    ] {
        browser.fill(&format!("#f-support-offered-{field}"), text);
    }
    browser.find("form.wizard button[type=submit]").click();
    browser.wait_for_heading("general");
    assert!(
        browser
            .find("#f-short-description-error")
            .text()
            .contains("ShortDescriptionTooLong"),
        "{}",
        browser.text()
    );
    assert!(
        browser
            .find("#f-highlights-error")
            .text()
            .contains("Required")
    );
    assert_eq!(
        browser.find_all(".summary li").len(),
        2,
        "{}",
        browser.text()
    );
    assert_eq!(
        browser
            .find("#f-short-description")
            .attribute("aria-invalid")
            .as_deref(),
        Some("true")
    );
    browser.fill("#f-short-description", "A managed vector database.");
    browser.fill("#f-highlights", "Fast, cheap, Chinese-ready.");
    browser.find("form.wizard button[type=submit]").click();
    browser.wait_for_heading("category");

    browser.choose("#f-category", "databases");
    browser.fill("#f-tags", "vector, ai");
    browser.find("form.wizard button[type=submit]").click();
    browser.wait_for_heading("pricing");
    browser.fill("#f-billable-items-0--code", "Frequency");
    browser.fill("#f-billable-items-0--name", "API calls");
    browser.fill("#f-billable-items-0--tiers-0--unit-price", "0.5");
    browser.find("form.wizard button[type=submit]").click();
    browser.wait_for_heading("agreement");
    browser.choose("#f-eula-source", "custom");
    browser.fill("#f-eula-text", "You agree.");
    browser.fill("#f-icp-filing", "ICP 12345678");
    browser.find("form.wizard button[type=submit]").click();
    browser.wait_for_heading("Acme Vector DB");
    browser.wait_for_text("missing: media.logo, media.user guide");

    // Media: a logo that is not 290 × 290 is taken, with the advice, and shown; then the guide.
    let files = tempfile::tempdir().expect("a directory for the uploads");
    let logo = files.path().join("logo.png");
    std::fs::write(&logo, real_png(200, 120)).expect("the logo file");
    let guide = files.path().join("guide.pdf");
    std::fs::write(&guide, pdf(2048)).expect("the guide file");
    browser.open(
        &format!("{}/products/{product}/media", market.origin()),
        "media",
    );
    for (slot, file) in [("logo", &logo), ("user_guide", &guide)] {
        browser.choose("#slot", slot);
        browser
            .find("#file")
            .type_text(file.to_str().expect("a UTF-8 path"));
        browser
            .find("form[enctype='multipart/form-data'] button")
            .click();
        browser.wait_for_heading("media");
    }
    let text = browser.text();
    assert!(
        text.contains("the logo is 200 × 120 px; 290 × 290 px is recommended"),
        "{text}"
    );
    let preview = browser.find("figure.medium img");
    assert_eq!(
        preview.attribute("src").as_deref(),
        Some(format!("/products/{product}/media/logo").as_str())
    );

    browser.open(
        &format!("{}/products/{product}", market.origin()),
        "Acme Vector DB",
    );
    browser.find("form[action$='/reviews'] button").click();
    browser.wait_for_text("Status: category review");
    let view = market
        .get(&format!("/api/v1/products/{product}"), &provider)
        .expect(200)
        .json();
    assert_eq!(view["status"], "category_review", "{view}");
    assert_eq!(
        view["steps"]["general"]["short_description"],
        "A managed vector database."
    );
}

#[test]
fn an_operator_rejects_a_listing_with_a_reason_then_approves_it() {
    let (_app, market) = app();
    let (provider, _, product) = market.complete_product();
    let review = market.submit(&provider, &product, "category");
    let mut browser = Browser::start("operator", DESKTOP);
    sign_in(&mut browser, &market, market.admin_token(), "Review queue");

    browser
        .find(&format!("a[href='/reviews/{review}']"))
        .click();
    browser.wait_for_heading("Review of Acme Vector DB");
    assert!(
        browser.text().contains("Open the user guide (PDF)"),
        "{}",
        browser.text()
    );
    // A rejection without a reason is refused beside the reason's field.
    browser.find("button[value=reject]").click();
    browser.wait_for_heading("Review of Acme Vector DB");
    assert!(
        browser
            .find("#f-reason-error")
            .text()
            .contains("a rejection must say why")
    );
    browser.fill(
        "#f-reason",
        "Vector search belongs under AI & Machine Learning.",
    );
    browser.find("button[value=reject]").click();
    browser.wait_for_heading("Review queue");
    assert!(
        browser
            .try_find(&format!("a[href='/reviews/{review}']"))
            .is_none()
    );

    // The provider moves the product to the category asked for and submits it again.
    market
        .put(
            &format!("/api/v1/products/{product}/category"),
            &provider,
            json!({"category": "ai_machine_learning", "tags": ["vector"]}),
        )
        .expect(200);
    let again = market.submit(&provider, &product, "category");
    browser.open(&format!("{}/reviews", market.origin()), "Review queue");
    browser.find(&format!("a[href='/reviews/{again}']")).click();
    browser.wait_for_heading("Review of Acme Vector DB");
    browser.find("button[value=approve]").click();
    browser.wait_for_heading("Review queue");

    let reviews = market
        .get(&format!("/api/v1/reviews?product_id={product}"), &provider)
        .expect(200)
        .json();
    assert_eq!(reviews["items"][0]["status"], "rejected", "{reviews}");
    assert_eq!(
        reviews["items"][0]["reason"],
        "Vector search belongs under AI & Machine Learning."
    );
    assert_eq!(reviews["items"][1]["status"], "approved", "{reviews}");
    let view = market
        .get(&format!("/api/v1/products/{product}"), &provider)
        .expect(200)
        .json();
    assert_eq!(view["status"], "self_test", "{view}");

    settle_a_past_month(&mut browser, &market);
}

/// The operator of `browser` sets a provider's commission from a past month on, closes that
/// month — another provider's instance that can never be billed waits on its period, until the
/// operator writes it off from the month's page — and records the payout; the provider then
/// reads its paid statement. The browser is on the real clock, so the month is one that could
/// close long ago (Asia/Shanghai, UTC+8 all year): its products were published and ordered then,
/// and released hours later.
fn settle_a_past_month(browser: &mut Browser, market: &HttpMarket) {
    let then = (Utc::now() + TimeDelta::hours(8) - TimeDelta::days(40)).date_naive();
    let month = then.format("%Y-%m").to_string();
    let ordered = then
        .with_day(10)
        .and_then(|d| d.and_hms_opt(2, 0, 0))
        .expect("the 10th, 10:00 in Shanghai")
        .and_utc();
    let past = market.at(ordered);
    let (provider, product) = past.product_with_items("hour", &[Item::running_time("1.00")], true);
    let provider_id = str_of(&market.get("/api/v1/me", &provider).expect(200).json()["id"]);
    let (_, customer) = past.funded_customer("100.00");
    let instance = past.order(&customer, &product);
    market
        .at(ordered + TimeDelta::hours(3))
        .act(&customer, &instance, "release");
    // Nothing answers at this path of the deployment's Prometheus origin.
    let nowhere = Item::prometheus_requests("http://127.0.0.1:9090/nothing", "0.01");
    let (_, broken) = past.product_with_items("hour", &[nowhere], true);
    let unbillable = past.order(&customer, &broken);
    market
        .at(ordered + TimeDelta::minutes(30))
        .act(&customer, &unbillable, "release");
    // A bill run within the month bills, and collects, the three hours then: a provider is
    // paid what was collected in the month.
    let billed = ordered + TimeDelta::hours(5);
    market.at(billed).bill_run(&rfc3339(billed));

    // 15% for this provider, on its page.
    browser.open(&format!("{}/principals", market.origin()), "Principals");
    browser
        .find(&format!("a[href='/principals/{provider_id}']"))
        .click();
    browser.wait_for_heading("a provider");
    assert!(browser.text().contains("the deployment's rate"));
    browser.fill("#f-rate", "0.15");
    browser.fill("#f-effective-from", &month);
    browser
        .find("form.narrow[action$='/commission'] button")
        .click();
    browser.wait_for_heading("a provider");
    let rates = browser.find("table").text();
    assert!(
        rates.contains(&month) && rates.contains("15%"),
        "{}",
        browser.text()
    );

    // The month closes (its three hours billed on the way) at that rate.
    let heading = format!("Settlements of {month}");
    browser.open(
        &format!("{}/settlements?month={month}", market.origin()),
        &heading,
    );
    browser
        .find("form[action='/settlements/close'] button")
        .click();
    browser.wait_for_heading(&heading);
    // The provider's statement is written; the other waits on its one period, with why, until
    // the operator writes it off; closing again closes it.
    browser.find("form[action$='/payout']");
    let waiting = browser.find("section.waiting").text();
    assert!(waiting.contains(&unbillable), "{waiting}");
    browser.screenshot("settlement month waiting on a period");
    browser.fill(
        &format!("#reason-{unbillable}"),
        "Its Prometheus answers nothing",
    );
    browser
        .find("form[action='/settlements/write-offs'] button")
        .click();
    browser.wait_for_heading(&heading);
    assert!(
        browser.try_find("section.waiting").is_none(),
        "{}",
        browser.text()
    );
    browser
        .find("form[action='/settlements/close'] button")
        .click();
    browser.wait_for_heading(&heading);
    eventually("the month closed", Duration::from_secs(20), || {
        browser
            .try_find("form[action='/settlements/close']")
            .is_none()
            .then_some(())
    });
    let statements = market
        .get(
            &format!("/api/v1/settlements?month={month}"),
            market.admin_token(),
        )
        .expect(200)
        .json();
    assert_eq!(statements["status"], "closed", "{statements}");
    let statement = statements["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|s| s["provider_id"] == provider_id.as_str())
        .map(|s| str_of(&s["id"]))
        .unwrap_or_else(|| panic!("the provider's statement in {statements}"));
    browser.fill(&format!("#reference-{statement}"), "BANK-E2E-0001");
    browser
        .find(&format!(
            "form[action='/settlements/{statement}/payout'] button"
        ))
        .click();
    browser.wait_for_heading(&heading);
    eventually("the payout recorded", Duration::from_secs(20), || {
        browser
            .try_find(&format!("#reference-{statement}"))
            .is_none()
            .then_some(())
    });
    assert!(
        browser.text().contains("BANK-E2E-0001"),
        "{}",
        browser.text()
    );

    // The provider finds the month with the picker and reads its statement, paid.
    browser.find("form[action='/sign-out'] button").click();
    browser.wait_for_heading("Sign in");
    sign_in(browser, market, &provider, "Products");
    browser.open(
        &format!("{}/settlements", market.origin()),
        "Settlements of",
    );
    browser.fill("#month", &month);
    browser.find("form.filters button").click();
    browser.wait_for_heading(&heading);
    let page = browser.text();
    for shown in [
        "Your statement",
        "closed and paid",
        "15%",
        "Collected",
        "Uncollected",
        "3.00 CNY",
        "0.45 CNY",
        "2.55 CNY",
        "BANK-E2E-0001",
        "Acme Vector DB",
    ] {
        assert!(page.contains(shown), "{shown:?} missing: {page}");
    }
}

/// The month (Asia/Shanghai, UTC+8 all year) an instant falls in, `YYYY-MM`.
fn shanghai_month(t: chrono::DateTime<Utc>) -> String {
    (t + TimeDelta::hours(8)).format("%Y-%m").to_string()
}

#[test]
fn an_operator_credits_a_bill_the_customer_reads_it_and_its_arrears_and_the_provider_its_collection()
 {
    let (_app, market) = app();
    // Ordered five hours ago by a customer with 1.00 of funds; three hours of 1.00 running
    // time and 1.60 of resources billed an hour ago leave the balance at -6.80: arrears, and
    // a suspension deadline a day after that run.
    let ordered = Utc::now()
        .duration_trunc(TimeDelta::hours(1))
        .expect("an hour")
        - TimeDelta::hours(5);
    let billed = ordered + TimeDelta::hours(4);
    let past = market.at(ordered);
    let (provider, product) = past.product_with_items("hour", &[Item::running_time("1.00")], true);
    let (_, customer) = past.funded_customer("1.00");
    let instance = past.order(&customer, &product);
    market.at(billed).bill_run(&rfc3339(billed));
    let bills = market.bills(&customer, Some(&instance));
    let first = str_of(&bills[0]["id"]);

    // The operator finds the bill and credits it: too much first, refused beside the form.
    let mut operator = Browser::start("operator-credit", DESKTOP);
    sign_in(&mut operator, &market, market.admin_token(), "Review queue");
    operator.open(&format!("{}/bills", market.origin()), "Bills");
    operator.find(&format!("a[href='/bills/{first}']")).click();
    operator.wait_for_heading("Bill bill-");
    operator.fill("#credit-amount", "100.00");
    operator.fill("#credit-reason", "An hour of ours");
    operator
        .find("form[action$='/credit-notes'] button")
        .click();
    operator.wait_for_heading("Bill bill-");
    assert!(
        operator
            .find("#credit-error")
            .text()
            .contains("CreditExceedsBill"),
        "{}",
        operator.text()
    );
    operator.fill("#credit-amount", "0.50");
    operator.choose("#credit-part", "resource_fees");
    operator
        .find("form[action$='/credit-notes'] button")
        .click();
    operator.wait_for_heading("Bill bill-");
    eventually("the credit note listed", PAGE_WITHIN, || {
        operator.try_find("section.credits").map(|_| ())
    });
    assert!(
        operator
            .find("section.credits")
            .text()
            .contains("An hour of ours")
    );

    // The customer reads the credit on its bill, the arrears and their deadline on its account.
    let mut browser = Browser::start("customer-arrears", PHONE);
    sign_in(&mut browser, &market, &customer, "Catalog");
    browser.open(&format!("{}/bills/{first}", market.origin()), "Bill bill-");
    let credits = browser.find("section.credits").text();
    assert!(
        credits.contains("0.50 CNY") && credits.contains("An hour of ours"),
        "{credits}"
    );
    assert!(browser.text().contains("Credited"), "{}", browser.text());
    browser.open(&format!("{}/account", market.origin()), "Account");
    let deadline = billed + TimeDelta::days(1);
    let arrears = browser.find(".arrears").text();
    assert!(
        arrears.contains("in arrears")
            && arrears.contains(&deadline.format("%Y-%m-%d %H:%M UTC").to_string()),
        "{arrears}"
    );
    assert!(browser.text().contains("credit"), "{}", browser.text());

    // The provider's statement of that month shows what was collected and what is owed.
    let mut provider_view = Browser::start("provider-collection", DESKTOP);
    sign_in(&mut provider_view, &market, &provider, "Products");
    let month = shanghai_month(billed);
    provider_view.open(
        &format!("{}/settlements?month={month}", market.origin()),
        &format!("Settlements of {month}"),
    );
    let statement = provider_view.find("section.statement").text();
    for shown in ["Collected", "Uncollected", "Credited"] {
        assert!(statement.contains(shown), "{shown:?} missing: {statement}");
    }
}

#[test]
fn a_customer_orders_and_reads_a_bills_tier_breakdown_and_usage_on_a_phone() {
    let (_app, market) = app();
    let (provider, _, product) = market.published_product();
    let (_, customer) = market.funded_customer("1000.00");
    let mut browser = Browser::start("customer", PHONE);
    sign_in(&mut browser, &market, &customer, "Catalog");

    browser
        .find(&format!("a[href='/catalog/{product}']"))
        .click();
    browser.wait_for_heading("Acme Vector DB");
    let page = browser.text();
    assert!(page.contains("over 1000 up to 5000"), "the tiers: {page}");
    assert!(
        page.contains("0.80 CNY"),
        "the hourly fee of a resource: {page}"
    );
    browser.choose("#region", "cn-hangzhou");
    browser.find("form[action='/orders/new'] button").click();
    browser.wait_for_heading("Confirm your order");
    assert!(
        browser.text().contains("Nothing is charged now: 0.00 CNY"),
        "{}",
        browser.text()
    );
    assert!(browser.find(".eula").text().contains("You agree."));
    // Without accepting the EULA the order is refused, and nothing is deployed.
    browser.find("form[action='/orders'] button").click();
    browser.wait_for_heading("Confirm your order");
    assert!(
        browser
            .find("#accept_eula-error")
            .text()
            .contains("Accept the EULA")
    );
    browser.find("#accept_eula").click();
    // Sent twice (a double click), the order deploys once: the form carries a one-time token.
    // Each click sends it into a window of its own, so that both submissions complete.
    browser.set_attribute("form[action='/orders']", "target", Some("_blank"));
    let (_, confirmation) = browser.windows();
    for opened in [2, 3] {
        browser.find("form[action='/orders'] button").click();
        eventually("a window of the order", PAGE_WITHIN, || {
            (browser.windows().0.len() == opened).then_some(())
        });
        // The new window is in front: the next click goes to the confirmation again.
        browser.switch_to(&confirmation);
    }
    let (windows, _) = browser.windows();
    let mut landed = Vec::new();
    for window in windows.iter().filter(|w| **w != confirmation) {
        browser.switch_to(window);
        browser.wait_for_heading("Instance si-");
        landed.push(browser.path());
        browser.close_window();
    }
    browser.switch_to(&confirmation);
    assert_eq!(
        landed[0], landed[1],
        "both submissions lead to one instance"
    );
    // The page itself sends it a third time, and lands on that instance too.
    browser.set_attribute("form[action='/orders']", "target", None);
    browser.find("form[action='/orders'] button").click();
    browser.wait_for_heading("Instance si-");
    assert_eq!(browser.path(), landed[0]);
    let instance = browser.path().trim_start_matches("/instances/").to_owned();
    browser.open(&format!("{}/instances", market.origin()), "Instances");
    let listed = browser.find_all("main a[href^='/instances/si-']");
    assert_eq!(listed.len(), 1, "one instance: {}", browser.text());

    // The provider reports 1,500 calls in the next hour; a bill run once it has closed.
    let ordered = Utc::now();
    let hour = ordered
        .duration_trunc(TimeDelta::hours(1))
        .expect("an hour");
    let (from, to) = (hour + TimeDelta::hours(1), hour + TimeDelta::minutes(70));
    market
        .at(to)
        .push_usage(
            &provider,
            &instance,
            &[usage(&rfc3339(from), &rfc3339(to), "Frequency", 1500)],
        )
        .expect(200);
    market.bill_run(&rfc3339(hour + TimeDelta::hours(3)));
    let bills = market.bills(&customer, Some(&instance));
    let billed = bills
        .iter()
        .find(|b| b["period_start"] == rfc3339(from))
        .unwrap_or_else(|| panic!("no bill of the reported hour: {bills:?}"));

    browser.open(&format!("{}/bills", market.origin()), "Bills");
    browser
        .find(&format!("a[href='/bills/{}']", str_of(&billed["id"])))
        .click();
    browser.wait_for_heading("Bill bill-");
    let page = browser.text();
    // The hour's usage (700.00) and the template's resources for the whole hour
    // (2 × 0.80/h = 1.60).
    for shown in [
        "700.00 CNY",
        "1.60 CNY",
        "701.60 CNY",
        "3600",
        "1500 count, graduated tiers",
        "over 0 up to 1000",
        "over 1000 up to 5000",
        "Usage behind this bill",
        "service provider",
    ] {
        assert!(
            page.contains(shown),
            "{shown:?} missing from the bill: {page}"
        );
    }
    // Whatever the first, partial hour's resources cost, the page shows the account's balance.
    let balance = market.balance(&customer);
    assert!(balance.starts_with("29"), "{balance}");
    browser.open(&format!("{}/account", market.origin()), "Account");
    assert!(
        browser.text().contains(&format!("Balance: {balance} CNY")),
        "{}",
        browser.text()
    );
    browser.open(
        &format!("{}/instances/{instance}", market.origin()),
        "Instance",
    );
    assert!(
        !browser.find_all("figure.chart svg rect.bar").is_empty(),
        "a usage chart"
    );
    assert!(browser.find("figure.chart table").text().contains("1500"));
    // The agreement the order accepted, whole.
    let eula = browser.find("section.eula").text();
    assert!(
        eula.contains("End-user license agreement") && eula.contains("You agree."),
        "{eula}"
    );
}
