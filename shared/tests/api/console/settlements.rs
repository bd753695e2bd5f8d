//! The settlement pages: a provider's own statements, an operator closing a month, paying
//! statements, writing off the periods that keep a month open, and setting commission rates.

use serde_json::json;
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at};

use super::{Browser, MARCH_CLOSES, settling};

#[test]
fn a_provider_reads_its_own_statements_only_and_customers_have_none() {
    let w = settling();
    w.close_march();
    let (own, other) = w.march_statements();
    let provider = w.signed_in(&w.a.1);

    // March 27th 08:00 UTC to midnight in Shanghai on the 31st: 104 hours at 1.00 billed, 102
    // collected within March, 10% of those kept.
    let march = provider.get("/settlements?month=2026-03").expect(200);
    let text = march.text();
    for shown in [
        "Settlements of 2026-03",
        "Your statement",
        "closed, not paid yet",
        "104.00 CNY",
        "102.00 CNY",
        "10.20 CNY",
        "91.80 CNY",
        "<th scope=\"col\">Collected</th>",
        "<th scope=\"col\">Uncollected</th>",
        "10%",
        own.as_str(),
        "&lt;script&gt;alert(1)&lt;/script&gt;",
    ] {
        assert!(text.contains(shown), "{shown:?} missing: {text}");
    }
    assert!(!text.contains("<script"), "{text}");
    assert!(
        !text.contains("Beta DB") && !text.contains(&w.b.0),
        "{text}"
    );
    assert!(
        !text.contains("Record payout") && !text.contains("/settlements/close"),
        "operators' forms: {text}"
    );
    // Another provider's statement is no page of its, by id or by filter.
    let read = provider.get(&format!("/settlements/{own}")).expect(200);
    assert!(
        read.text().contains("Statement of 2026-03"),
        "{}",
        read.text()
    );
    assert_eq!(provider.get(&format!("/settlements/{other}")).status, 404);
    let filtered = provider
        .get(&format!("/settlements?month=2026-03&provider_id={}", w.b.0))
        .expect(200);
    assert!(filtered.text().contains(&own) && !filtered.text().contains(&other));
    // This month by default (April 2nd in Shanghai), computed live; a month that is none, 400.
    let april = provider.get("/settlements").expect(200).text();
    assert!(
        april.contains("Settlements of 2026-04") && april.contains("computed live"),
        "{april}"
    );
    let bad = provider
        .get("/settlements?month=2026-13")
        .expect(400)
        .text();
    assert!(
        bad.contains(r#"id="month-error""#) && bad.contains("a month as YYYY-MM"),
        "{bad}"
    );

    // Customers have no settlements, and no link to them.
    let (_, customer) = w.app.customer("individual");
    let shopper = w.signed_in(&customer);
    assert_eq!(shopper.get("/settlements").status, 403);
    assert_eq!(shopper.get(&format!("/settlements/{own}")).status, 403);
    assert!(
        !shopper
            .get("/catalog")
            .expect(200)
            .text()
            .contains(r#"href="/settlements""#)
    );
}

#[test]
fn an_operator_closes_a_month_and_records_each_payout_once() {
    let w = settling();
    let mut operator = w.signed_in(ADMIN);

    // Before its last day has closed, March cannot close: the reason beside the form, nothing
    // written.
    let before = w.app.snapshot();
    let early = operator.post("/settlements/close", &[("month", "2026-03")]);
    assert_eq!(early.status, 409, "{}", early.text());
    let text = early.text();
    assert!(
        text.contains(r#"id="close-error""#)
            && text.contains("can be closed from 2026-04-01T16:00:00Z")
            && text.contains("MonthNotClosable"),
        "{text}"
    );
    assert_eq!(w.app.snapshot(), before);

    // (A session lasts twelve hours: days later, the operator signs in again.) No bill run
    // has billed March yet: its live statements are empty.
    w.app.set_now(at("2026-03-31T15:59:00Z"));
    operator.sign_in(ADMIN).expect(303);
    let open = operator
        .get("/settlements?month=2026-03")
        .expect(200)
        .text();
    assert!(
        open.contains("Close 2026-03")
            && open.contains(
                "No provider has a bill, a collection, a credit note or a write-off in 2026-03 yet"
            ),
        "{open}"
    );
    w.bill_within_march();
    w.app.set_now(at(MARCH_CLOSES));
    operator.sign_in(ADMIN).expect(303);
    let closed = operator.post("/settlements/close", &[("month", "2026-03")]);
    assert_eq!(closed.status, 303, "{}", closed.text());
    assert_eq!(
        closed.header("location"),
        Some("/settlements?month=2026-03")
    );
    let (a, b) = w.march_statements();
    let month = operator
        .get("/settlements?month=2026-03")
        .expect(200)
        .text();
    for shown in [
        "Every provider's statement of 2026-03",
        "208.00 CNY",
        "204.00 CNY",
        "183.60 CNY",
        &format!(r#"action="/settlements/{a}/payout""#),
        &format!(r#"action="/settlements/{b}/payout""#),
    ] {
        assert!(month.contains(shown), "{shown:?} missing: {month}");
    }
    assert!(!month.contains("Close 2026-03"), "closed once: {month}");
    // April's first day was billed on the way: its statements are live, one provider's a link
    // to its own.
    let april = operator
        .get("/settlements?month=2026-04")
        .expect(200)
        .text();
    assert_eq!(april.matches("not closed yet").count(), 2, "{april}");
    let one = format!("/settlements?month=2026-04&amp;provider_id={}", w.b.0);
    assert!(april.contains(&one), "{april}");
    let b_april = operator
        .get(&format!("/settlements?month=2026-04&provider_id={}", w.b.0))
        .expect(200)
        .text();
    assert!(
        b_april.contains("Beta DB")
            && b_april.contains("open: computed live")
            && !b_april.contains(&w.a.0),
        "{b_april}"
    );

    // A payout needs its reference, of at most 200 characters; refused, nothing changes.
    let payout = format!("/settlements/{a}/payout");
    let before = w.app.snapshot();
    let blank = operator.post(&payout, &[("reference", "  ")]);
    assert_eq!(blank.status, 400, "{}", blank.text());
    assert!(
        blank
            .text()
            .contains(&format!(r#"id="reference-{a}-error""#))
            && blank.text().contains("(Required)"),
        "{}",
        blank.text()
    );
    let long = "x".repeat(201);
    let too_long = operator.post(&payout, &[("reference", &long)]);
    assert_eq!(too_long.status, 400);
    assert!(
        too_long.text().contains("(TooLong)") && too_long.text().contains(&long),
        "what was typed stays: {}",
        too_long.text()
    );
    assert_eq!(w.app.snapshot(), before);

    w.app.set_now(at("2026-04-02T09:00:00Z"));
    operator.sign_in(ADMIN).expect(303);
    let paid = operator.post(&payout, &[("reference", "<b>BANK-2026-04-0001</b>")]);
    assert_eq!(paid.status, 303, "{}", paid.text());
    let month = operator
        .get("/settlements?month=2026-03")
        .expect(200)
        .text();
    assert!(
        month.contains("paid 2026-04-02 09:00 UTC")
            && month.contains("&lt;b&gt;BANK-2026-04-0001&lt;/b&gt;")
            && !month.contains("<b>BANK"),
        "{month}"
    );
    assert!(!month.contains(&format!(r#"action="/settlements/{a}/payout""#)));
    let statement = w
        .app
        .get(&format!("/api/v1/settlements/{a}"), ADMIN)
        .expect(200)
        .json();
    assert_eq!(statement["payout_reference"], "<b>BANK-2026-04-0001</b>");

    // Once: again is refused with AlreadyPaid, and the first payout stands.
    let before = w.app.snapshot();
    let again = operator.post(&payout, &[("reference", "BANK-2026-04-0002")]);
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(
        again.text().contains("was already paid") && again.text().contains("(AlreadyPaid)"),
        "{}",
        again.text()
    );
    assert_eq!(w.app.snapshot(), before);

    // The statement's own page; the provider reads it paid.
    let page = operator
        .get(&format!("/settlements/{a}"))
        .expect(200)
        .text();
    assert!(
        page.contains("closed and paid 2026-04-02 09:00 UTC") && page.contains("91.80 CNY"),
        "{page}"
    );
    let unpaid = operator
        .get(&format!("/settlements/{b}"))
        .expect(200)
        .text();
    assert!(unpaid.contains("Record payout"), "{unpaid}");
    let provider = w.signed_in(&w.a.1);
    let own = provider
        .get("/settlements?month=2026-03")
        .expect(200)
        .text();
    assert!(
        own.contains("closed and paid") && own.contains("&lt;b&gt;BANK-2026-04-0001&lt;/b&gt;"),
        "{own}"
    );
}

#[test]
fn an_operator_sets_a_providers_commission_rate_and_returns_it_to_the_deployments() {
    let app = TestApp::with_config(|name| (name == "commission_rate").then(|| "0.10".to_owned()));
    let (provider, _) = app.provider();
    let operator = {
        let mut b = Browser::new(&app);
        b.sign_in(ADMIN).expect(303);
        b
    };
    let page = format!("/principals/{provider}");
    let shown = operator.get(&page).expect(200).text();
    assert!(
        shown.contains("10%") && shown.contains("the deployment's rate"),
        "{shown}"
    );
    assert!(shown.contains(&format!(r#"href="/settlements?provider_id={provider}""#)));

    let commission = format!("/principals/{provider}/commission");
    let before = app.snapshot();
    for wrong in ["1", "1.5", "-0.1", "0.1234567", "ten"] {
        let refused = operator.post(&commission, &[("rate", wrong)]);
        assert_eq!(refused.status, 400, "{wrong}: {}", refused.text());
        let text = refused.text();
        assert!(
            text.contains(r#"id="f-rate-error""#) && text.contains("(InvalidValue)"),
            "{text}"
        );
        assert!(text.contains(&format!(r#"value="{wrong}""#)), "{text}");
    }
    assert_eq!(app.snapshot(), before);

    let set = operator.post(&commission, &[("rate", "0.15")]);
    assert_eq!(set.status, 303, "{}", set.text());
    assert_eq!(set.header("location"), Some(page.as_str()));
    let shown = operator.get(&page).expect(200).text();
    assert!(
        shown.contains("15%") && shown.contains("a rate of its own"),
        "{shown}"
    );
    let rate = app
        .get(&format!("/api/v1/principals/{provider}/commission"), ADMIN)
        .expect(200)
        .json();
    assert_eq!(
        (&rate["rate"], &rate["source"]),
        (&json!("0.15"), &json!("provider"))
    );

    // Empty returns it to the deployment's.
    operator.post(&commission, &[("rate", "")]).expect(303);
    let rate = app
        .get(&format!("/api/v1/principals/{provider}/commission"), ADMIN)
        .expect(200)
        .json();
    assert_eq!(
        (&rate["rate"], &rate["source"]),
        (&json!("0.1"), &json!("default"))
    );

    // Only providers have a rate.
    let (customer, _) = app.customer("individual");
    let shown = operator
        .get(&format!("/principals/{customer}"))
        .expect(200)
        .text();
    assert!(!shown.contains("Commission"), "{shown}");
    assert_eq!(
        operator
            .post(
                &format!("/principals/{customer}/commission"),
                &[("rate", "0.2")]
            )
            .status,
        404
    );
}

#[test]
fn forged_settlement_and_principal_forms_change_nothing() {
    let w = settling();
    w.app.set_now(at(MARCH_CLOSES));
    let operator = w.signed_in(ADMIN);
    let before = w.app.snapshot();
    let (a, _) = (w.a.0.clone(), ());
    let forms: [(String, Vec<(&str, &str)>); 5] = [
        ("/settlements/close".to_owned(), vec![("month", "2026-03")]),
        (format!("/principals/{a}/commission"), vec![("rate", "0.5")]),
        (format!("/principals/{a}/disable"), vec![]),
        (format!("/principals/{a}/enable"), vec![]),
        (
            "/settlements/stl-x/payout".to_owned(),
            vec![("reference", "r")],
        ),
    ];
    for (path, form) in &forms {
        for token in [None, Some("0".repeat(64))] {
            let mut fields = form.clone();
            if let Some(t) = &token {
                fields.push(("csrf", t.as_str()));
            }
            let refused = operator.request("POST", path, &fields);
            assert_eq!(refused.status, 403, "{path}: {}", refused.text());
            assert!(refused.text().contains("this form expired"), "{path}");
        }
    }
    assert_eq!(w.app.snapshot(), before);
    // Nor may a provider post them with its own session's token.
    let provider = w.signed_in(&w.a.1);
    let before = w.app.snapshot();
    for (path, form) in &forms {
        assert_eq!(provider.post(path, form).status, 403, "{path}");
    }
    assert_eq!(w.app.snapshot(), before);
}

#[test]
fn an_operator_writes_off_the_period_that_keeps_a_providers_month_open() {
    let w = settling();
    // A third provider's customer's instance that can never be billed: its Prometheus cannot
    // be reached. It ran the last half hour of March (Shanghai).
    w.app.set_now(at("2026-03-31T15:00:00Z"));
    let unreachable = Item::prometheus_requests("http://127.0.0.1:1", "0.01");
    let (_, product) = w.app.product_with_items("hour", &[unreachable], true);
    let (_, customer) = w.app.funded_customer("10.00");
    let instance = w.app.order(&customer, &product);
    w.app.set_now(at("2026-03-31T15:30:00Z"));
    w.app.act(&customer, &instance, "release");
    w.app.set_now(at(MARCH_CLOSES));
    let operator = w.signed_in(ADMIN);
    operator
        .post("/settlements/close", &[("month", "2026-03")])
        .expect(303);
    // The two others are closed; the third waits on its 15:00 hour, with why and a form.
    let page = operator
        .get("/settlements?month=2026-03")
        .expect(200)
        .text();
    for shown in [
        "Waiting on unbilled periods",
        instance.as_str(),
        "2026-03-31 15:00 UTC",
        "unreachable",
        r#"action="/settlements/write-offs""#,
        "Close 2026-03",
    ] {
        assert!(page.contains(shown), "{shown:?} missing: {page}");
    }
    let form = |reason: &'static str| {
        vec![
            ("month", "2026-03"),
            ("instance_id", instance.as_str()),
            ("period_start", "2026-03-31T15:00:00Z"),
            ("reason", reason),
        ]
    };
    // A write-off needs its reason: refused beside the form, nothing written.
    let before = w.app.snapshot();
    let refused = operator.post("/settlements/write-offs", &form("  "));
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused
            .text()
            .contains(&format!(r#"id="reason-{instance}-error""#))
            && refused.text().contains("(Required)"),
        "{}",
        refused.text()
    );
    assert_eq!(w.app.snapshot(), before);
    // Written off: the next close writes the third statement, with the write-off on it.
    let written = operator.post("/settlements/write-offs", &form("Prometheus is gone"));
    assert_eq!(written.status, 303, "{}", written.text());
    assert_eq!(
        written.header("location"),
        Some("/settlements?month=2026-03")
    );
    let page = operator
        .get("/settlements?month=2026-03")
        .expect(200)
        .text();
    assert!(!page.contains("Waiting on unbilled periods"), "{page}");
    operator
        .post("/settlements/close", &[("month", "2026-03")])
        .expect(303);
    let page = operator
        .get("/settlements?month=2026-03")
        .expect(200)
        .text();
    assert!(!page.contains("Close 2026-03"), "{page}");
    let again = operator.post("/settlements/write-offs", &form("twice"));
    assert_eq!(again.status, 303, "the same write-off: {}", again.text());
    // Its customer sees the period on the instance's page.
    let shopper = w.signed_in(&customer);
    let shown = shopper
        .get(&format!("/instances/{instance}"))
        .expect(200)
        .text();
    assert!(
        shown.contains("Periods written off") && shown.contains("Prometheus is gone"),
        "{shown}"
    );
}

#[test]
fn a_commission_rate_is_set_from_a_month_and_a_written_month_keeps_its_own() {
    let w = settling();
    w.close_march();
    let operator = w.signed_in(ADMIN);
    let page = format!("/principals/{}", w.a.0);
    let shown = operator.get(&page).expect(200).text();
    // The current month of Shanghai is the form's default.
    assert!(
        shown.contains(r#"name="effective_from""#) && shown.contains(r#"value="2026-04""#),
        "{shown}"
    );
    let commission = format!("/principals/{}/commission", w.a.0);
    let before = w.app.snapshot();
    let refused = operator.post(
        &commission,
        &[("rate", "0.2"), ("effective_from", "2026-03")],
    );
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(
        refused
            .text()
            .contains("a rate can take effect from a later month only")
            && refused.text().contains(r#"value="2026-03""#),
        "{}",
        refused.text()
    );
    assert_eq!(w.app.snapshot(), before);
    let set = operator.post(
        &commission,
        &[("rate", "0.2"), ("effective_from", "2026-05")],
    );
    assert_eq!(set.status, 303, "{}", set.text());
    let shown = operator.get(&page).expect(200).text();
    assert!(
        shown.contains("Its rates") && shown.contains("2026-05") && shown.contains("20%"),
        "{shown}"
    );
    // April is still at the deployment's 10%.
    assert!(
        shown.contains("In 2026-04 the marketplace keeps"),
        "{shown}"
    );
}
