//! The console's forms hold nobody up and take effect once: a form that moves money or deploys
//! carries a one-time token, so sending it twice does what sending it once did (docs/RULES.md
//! R14.1); form names are bounded before anything is built from them (R14.2); and after
//! signing in the console sends a visitor only to one of its own pages (R14.3).

use testkit::native::{ADMIN, TestApp};
use testkit::{Market, Response, at};

use crate::console::{Browser, MARCH_CLOSES, cookie_pair, csrf_of, settling};

/// The one-time token of the form posting to `action` on a page.
fn once_of(page: &Response, action: &str) -> String {
    let text = page.text();
    let form = text
        .find(&format!(r#"action="{action}""#))
        .unwrap_or_else(|| panic!("no form posting to {action}: {text}"));
    let rest = &text[form..];
    let at = rest
        .find(r#"name="_once" value=""#)
        .unwrap_or_else(|| panic!("no one-time token in the form to {action}"))
        + r#"name="_once" value=""#.len();
    rest[at..at + rest[at..].find('"').expect("a closing quote")].to_owned()
}

/// Sends the same form twice, as a double click does: both answers must be the first's.
fn twice(browser: &Browser, action: &str, form: &[(&str, &str)]) -> Response {
    let first = browser.post(action, form);
    let second = browser.post(action, form);
    assert_eq!(
        (second.status, second.header("location")),
        (first.status, first.header("location")),
        "{}",
        second.text()
    );
    assert!(second.header("content-security-policy").is_some());
    first
}

#[test]
fn an_order_a_top_up_and_a_bill_run_sent_twice_take_effect_once() {
    let app =
        TestApp::with_config(|name| (name == "allow_clock_override").then(|| "true".to_owned()));
    app.set_now(at("2026-03-27T08:00:00Z"));
    let (_, _, product) = app.published_product();
    let (customer_id, customer_token) = app.customer("enterprise");
    let mut operator = Browser::new(&app);
    operator.sign_in(ADMIN).expect(303);

    // The top-up of the principals page, twice: credited once.
    let page = operator.get("/principals?role=customer").expect(200);
    let top_up = format!("/principals/{customer_id}/top-ups");
    let once = once_of(&page, &top_up);
    twice(&operator, &top_up, &[("_once", &once), ("amount", "25.00")]).expect(303);
    assert_eq!(app.balance(&customer_token), "25.00");
    // The page again gives a fresh token: another top-up.
    let once = once_of(&operator.get("/principals?role=customer"), &top_up);
    operator
        .post(&top_up, &[("_once", &once), ("amount", "25.00")])
        .expect(303);
    assert_eq!(app.balance(&customer_token), "50.00");

    // The order's confirmation, twice: one instance, and both answers lead to it.
    let mut customer = Browser::new(&app);
    customer.sign_in(&customer_token).expect(303);
    let confirmation = customer
        .get(&format!(
            "/orders/new?product_id={product}&region=cn-hangzhou"
        ))
        .expect(200);
    let once = once_of(&confirmation, "/orders");
    let order = [
        ("_once", once.as_str()),
        ("product_id", product.as_str()),
        ("region", "cn-hangzhou"),
        ("accept_eula", "true"),
    ];
    let placed = twice(&customer, "/orders", &order).expect(303);
    assert!(
        placed
            .header("location")
            .unwrap()
            .starts_with("/instances/si-")
    );
    assert_eq!(app.count("instances"), 1);

    // A bill run, twice: the second answer is the first's report, not a run of nothing.
    app.set_now(at("2026-03-27T10:00:00Z"));
    operator.sign_in(ADMIN).expect(303);
    let once = once_of(&operator.get("/bill-runs").expect(200), "/bill-runs");
    let form = [("_once", once.as_str()), ("as_of", "2026-03-27T10:00:00Z")];
    let first = operator.post("/bill-runs", &form).expect(200);
    let again = operator.post("/bill-runs", &form).expect(200);
    assert_eq!(again.text(), first.text());
    assert!(first.text().contains("Bills written"), "{}", first.text());
    assert_eq!(app.count("bills"), 1);
    // The same token with another form is refused, and changes nothing.
    let before = app.snapshot();
    let reused = operator.post(&top_up, &[("_once", &once), ("amount", "1.00")]);
    assert_eq!(reused.status, 409, "{}", reused.text());
    assert_eq!(app.snapshot(), before);
}

#[test]
fn a_credit_note_sent_twice_credits_once_and_a_refused_one_is_shown_beside_its_form() {
    let w = settling();
    w.app.set_now(at("2026-03-27T11:00:00Z"));
    w.app.bill_run("2026-03-27T11:00:00Z");
    let bill = w.app.bills(ADMIN, None)[0]["id"]
        .as_str()
        .expect("a bill")
        .to_owned();
    let operator = w.signed_in(ADMIN);
    let path = format!("/bills/{bill}");
    let action = format!("{path}/credit-notes");
    let once = once_of(&operator.get(&path).expect(200), &action);
    let credit = [
        ("_once", once.as_str()),
        ("amount", "0.40"),
        ("reason", "a slow start"),
        ("applies_to", "product_fees"),
    ];
    let sent = twice(&operator, &action, &credit).expect(303);
    assert_eq!(sent.header("location"), Some(path.as_str()));
    let notes = w.app.get("/api/v1/credit-notes", ADMIN).expect(200).json();
    assert_eq!(notes["items"].as_array().unwrap().len(), 1, "{notes}");
    // Too much: the bill's page again, with why beside the form and what was typed.
    let once = once_of(&operator.get(&path).expect(200), &action);
    let before = w.app.snapshot();
    let refused = operator.post(
        &action,
        &[
            ("_once", &once),
            ("amount", "99.00"),
            ("reason", "too much"),
        ],
    );
    assert_eq!(refused.status, 409, "{}", refused.text());
    let text = refused.text();
    assert!(
        text.contains(r#"id="credit-error""#)
            && text.contains("CreditExceedsBill")
            && text.contains(r#"value="99.00""#),
        "{text}"
    );
    assert_eq!(w.app.snapshot(), before);
    // Customers see the note on their bill, without the form.
    let page = w.signed_in(&w.customer).get(&path).expect(200).text();
    assert!(
        page.contains("Credit notes") && page.contains("a slow start") && !page.contains(&action),
        "{page}"
    );
}

#[test]
fn a_close_and_a_payout_sent_twice_take_effect_once() {
    let w = settling();
    w.app.set_now(at(MARCH_CLOSES));
    let operator = w.signed_in(ADMIN);
    let page = operator.get("/settlements?month=2026-03").expect(200);
    let once = once_of(&page, "/settlements/close");
    twice(
        &operator,
        "/settlements/close",
        &[("_once", &once), ("month", "2026-03")],
    )
    .expect(303);
    assert_eq!(w.app.count("settlements"), 2);
    let (a, _) = w.march_statements();
    let page = operator.get("/settlements?month=2026-03").expect(200);
    let payout = format!("/settlements/{a}/payout");
    let once = once_of(&page, &payout);
    twice(
        &operator,
        &payout,
        &[("_once", &once), ("reference", "BANK-1")],
    )
    .expect(303);
    let statement = w
        .app
        .get(&format!("/api/v1/settlements/{a}"), ADMIN)
        .expect(200)
        .json();
    assert_eq!(statement["payout_reference"], "BANK-1", "{statement}");
    assert_eq!(w.app.count("settlements"), 2);
}

/// A provider's form with a name past the limits is 400 before anything is built from it:
/// `x[100000000]` would have allocated a list of a hundred million, a name of 500,000 segments
/// recursed as deep.
#[test]
fn a_form_with_names_past_the_limits_is_refused_before_anything_is_built() {
    let app = TestApp::new();
    let (token, _, product) = app.draft_product();
    let mut provider = Browser::new(&app);
    provider.sign_in(&token).expect(303);
    let step = format!("/products/{product}/steps/general");
    let before = app.snapshot();
    let deep = vec!["a"; 500_000].join(".");
    let many: Vec<(String, String)> = (0..1_001)
        .map(|i| (format!("f{i}"), "v".to_owned()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for form in [
        vec![("cases[100000000].title", "x")],
        vec![(deep.as_str(), "x")],
        many,
    ] {
        let refused = provider.post(&step, &form);
        assert_eq!(refused.status, 400, "{}", refused.text());
    }
    assert_eq!(app.snapshot(), before);
}

/// After signing in, `next` is followed only to a page of the console: `/%09/evil.example`
/// (a browser drops the tab of `/\t/evil.example`, leaving `//evil.example`) and the like lead
/// home instead.
#[test]
fn after_sign_in_only_the_consoles_own_pages_are_followed() {
    let app = TestApp::new();
    let (_, token) = app.provider();
    let sign_in = |next: &str| {
        let form = app.console("GET", "/sign-in", &[], Vec::new());
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("csrf", csrf_of(&form).as_str()),
                ("token", token.as_str()),
                ("next", next),
            ])
            .finish();
        let signed_in = app.console(
            "POST",
            "/sign-in",
            &[
                ("cookie", &cookie_pair(&form)),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            body.into_bytes(),
        );
        assert_eq!(signed_in.status, 303, "{}", signed_in.text());
        signed_in.header("location").unwrap_or_default().to_owned()
    };
    assert_eq!(sign_in("/products/prod-1/media"), "/products/prod-1/media");
    for foreign in [
        "/%09/evil.example",
        "/\t/evil.example",
        "/%2F%2Fevil.example",
        "//evil.example",
        "/\\evil.example",
        "/api/v1/me",
    ] {
        assert_eq!(sign_in(foreign), "/products", "{foreign:?}");
    }
    // The sign-in page does not carry it on either.
    let page = app.console(
        "GET",
        "/sign-in?next=%2F%2509%2Fevil.example",
        &[],
        Vec::new(),
    );
    assert!(!page.text().contains("evil.example"), "{}", page.text());
}
