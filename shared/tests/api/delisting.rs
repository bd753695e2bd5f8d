//! docs/RULES.md R15.6–R15.9 through the HTTP handlers: a delisted product takes no quotes or
//! orders while its instances keep running and billing; relisting brings it back, an operator's
//! delisting only an operator lifts, and both are recorded with who, when and why.

use serde_json::json;
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at, str_of, usage};

fn app() -> TestApp {
    TestApp::with_config(|name| (name == "allow_clock_override").then(|| "true".to_owned()))
}

#[test]
fn a_delisted_product_takes_no_orders_while_its_instances_keep_billing() {
    let app = app();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = app.funded_customer("100.00");
    let instance = app.order(&customer, &product);
    let delisted = app
        .post(
            &format!("/api/v1/products/{product}/delist"),
            &provider,
            json!({"reason": "a new edition replaces it"}),
        )
        .expect(200)
        .json();
    assert_eq!(delisted["listed"], false);
    assert_eq!(delisted["delisting"]["reason"], "a new edition replaces it");
    assert_eq!(delisted["delisting"]["actor_role"], "provider");
    assert_eq!(delisted["delisting"]["at"], "2026-03-27T08:00:00Z");

    // Out of the catalog, no quote, no order.
    let catalog = app.get_anonymous("/api/v1/catalog").expect(200).json();
    assert!(!catalog.to_string().contains(&product), "{catalog}");
    app.get_anonymous(&format!("/api/v1/catalog/{product}"))
        .problem(404, "NotFound");
    let body = json!({"product_id": product, "region": "cn-hangzhou", "accept_eula": true});
    app.post("/api/v1/orders/quote", &customer, body.clone())
        .problem(409, "ProductDelisted");
    let before = app.snapshot();
    app.post("/api/v1/orders", &customer, body.clone())
        .problem(409, "ProductDelisted");
    assert_eq!(app.snapshot(), before);
    app.post(
        &format!("/api/v1/products/{product}/delist"),
        &provider,
        json!({"reason": "again"}),
    )
    .problem(409, "ProductDelisted");

    // The instance keeps running, metering and billing.
    app.set_now(at("2026-03-27T08:40:00Z"));
    app.push_usage(
        &provider,
        &instance,
        &[usage(
            "2026-03-27T08:00:00Z",
            "2026-03-27T08:30:00Z",
            "Frequency",
            100,
        )],
    )
    .expect(200);
    app.bill_run("2026-03-27T10:00:00Z");
    let bills = app.bills(&customer, Some(&instance));
    assert_eq!(bills[0]["product_fees"], "50.00");
    app.act(&customer, &instance, "stop");

    // Relisted, it sells again.
    app.post(
        &format!("/api/v1/products/{product}/relist"),
        &provider,
        json!({"reason": "the new edition slipped"}),
    )
    .expect(200);
    app.post("/api/v1/orders", &customer, body).expect(201);
    app.get_anonymous(&format!("/api/v1/catalog/{product}"))
        .expect(200);
}

#[test]
fn an_operators_delisting_only_an_operator_lifts_and_every_change_is_recorded() {
    let app = app();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let path = |action: &str| format!("/api/v1/products/{product}/{action}");
    app.post(
        &path("relist"),
        &provider,
        json!({"reason": "nothing to lift"}),
    )
    .problem(409, "NotDelisted");
    app.post(&path("delist"), ADMIN, json!({"reason": "a complaint"}))
        .expect(200);
    app.set_now(at("2026-03-27T09:00:00Z"));
    app.post(&path("relist"), &provider, json!({"reason": "fixed"}))
        .problem(409, "DelistedByOperator");
    app.post(&path("relist"), ADMIN, json!({"reason": "resolved"}))
        .expect(200);
    app.post(&path("delist"), &provider, json!({"reason": "pause"}))
        .expect(200);
    let availability = app.get(&path("availability"), &provider).expect(200).json();
    let history: Vec<(String, String, String)> = availability["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                str_of(&c["action"]),
                str_of(&c["actor_role"]),
                str_of(&c["reason"]),
            )
        })
        .collect();
    let row = |a: &str, r: &str, why: &str| (a.to_owned(), r.to_owned(), why.to_owned());
    assert_eq!(
        history,
        [
            row("delisted", "operator", "a complaint"),
            row("relisted", "operator", "resolved"),
            row("delisted", "provider", "pause"),
        ]
    );
    assert_eq!(availability["history"][1]["at"], "2026-03-27T09:00:00Z");
    assert_eq!(availability["history"][0]["actor_id"], "usr-admin");
    assert_eq!(availability["listed"], false);
    // A provider's own delisting its provider lifts.
    app.post(&path("relist"), &provider, json!({"reason": "back"}))
        .expect(200);
}

#[test]
fn only_a_published_product_is_delisted_by_its_provider_or_an_operator_with_a_reason() {
    let app = app();
    let (provider, _, draft) = app.draft_product();
    app.post(
        &format!("/api/v1/products/{draft}/delist"),
        &provider,
        json!({"reason": "why not"}),
    )
    .problem(409, "ProductNotPublished");
    let (owner, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let path = format!("/api/v1/products/{product}/delist");
    app.post(&path, &owner, json!({}))
        .problem(400, "ReasonRequired");
    app.post(&path, &owner, json!({"reason": "  "}))
        .problem(400, "ReasonRequired");
    let (_, other) = app.provider();
    app.post(&path, &other, json!({"reason": "not mine"}))
        .problem(404, "NotFound");
    let (_, customer) = app.customer("enterprise");
    app.post(&path, &customer, json!({"reason": "no"}))
        .problem(403, "Forbidden");
    app.get(&format!("/api/v1/products/{product}/availability"), &owner)
        .expect(200);
}

/// Racing delistings, then racing relistings (R15.7, R15.9): one of each takes effect, the
/// others are refused, and the history records only what took effect.
#[test]
fn of_racing_delistings_or_relistings_one_takes_effect_and_the_history_says_so() {
    let app = app();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let race = |action: &str, refusal: &str| {
        let path = format!("/api/v1/products/{product}/{action}");
        let start = std::sync::Barrier::new(4);
        let answers: Vec<(u16, String)> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..4)
                .map(|i| {
                    let (app, path, provider, start) = (&app, &path, &provider, &start);
                    s.spawn(move || {
                        start.wait();
                        let r = app.post(path, provider, json!({"reason": format!("racer {i}")}));
                        let code = if r.status == 200 {
                            String::new()
                        } else {
                            r.code()
                        };
                        (r.status, code)
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let took_effect = answers.iter().filter(|(status, _)| *status == 200).count();
        assert_eq!(took_effect, 1, "{action}: {answers:?}");
        assert!(
            answers
                .iter()
                .all(|(status, code)| *status == 200 || (*status == 409 && code == refusal)),
            "{action}: {answers:?}"
        );
    };
    race("delist", "ProductDelisted");
    race("relist", "NotDelisted");
    let availability = app
        .get(
            &format!("/api/v1/products/{product}/availability"),
            &provider,
        )
        .expect(200)
        .json();
    let actions: Vec<String> = availability["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| str_of(&c["action"]))
        .collect();
    assert_eq!(actions, ["delisted", "relisted"]);
    assert_eq!(availability["listed"], true);
}
