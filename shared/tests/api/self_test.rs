//! docs/RULES.md R8.17–R8.19, R5.12, R8.20 through the HTTP handlers: test deployments are
//! bounded in number and in time, and still show what they would have cost; after category
//! approval only the category itself is locked; a customer reads back the EULA it accepted.

use nestmarket::platform::storage::Backend;
use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at, str_of};

fn order_body(product: &str) -> Value {
    json!({"product_id": product, "region": "cn-hangzhou", "accept_eula": true})
}

fn app_with(limit: Option<&str>) -> TestApp {
    let limit = limit.map(str::to_owned);
    TestApp::with_config(move |name| match name {
        "allow_clock_override" => Some("true".to_owned()),
        "test_instance_limit" => limit.clone(),
        _ => None,
    })
}

#[test]
fn a_product_keeps_at_most_test_instance_limit_test_instances_alive() {
    let app = app_with(None);
    let (token, product) = app.product_with_items("hour", &[Item::running_time("1.00")], false);
    let instances: Vec<String> = (0..5).map(|_| app.order(&token, &product)).collect();
    let before = app.snapshot();
    let refused = app
        .post("/api/v1/orders", &token, order_body(&product))
        .problem(409, "TestInstanceLimit");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("5 test instances"),
        "{refused}"
    );
    assert_eq!(app.snapshot(), before, "a refused order writes nothing");
    // A stopped one still counts; a released one does not.
    app.act(&token, &instances[0], "stop");
    app.post("/api/v1/orders", &token, order_body(&product))
        .problem(409, "TestInstanceLimit");
    app.act(&token, &instances[0], "release");
    app.order(&token, &product);
    // The limit is the deployment's.
    let two = app_with(Some("2"));
    let (token, product) = two.product_with_items("hour", &[Item::running_time("1.00")], false);
    two.order(&token, &product);
    two.order(&token, &product);
    two.post("/api/v1/orders", &token, order_body(&product))
        .problem(409, "TestInstanceLimit");
}

#[test]
fn a_test_instance_is_released_by_the_first_bill_run_after_its_hours_and_shows_its_cost() {
    let app = app_with(None);
    let (token, product) = app.product_with_items("hour", &[Item::running_time("3.00")], false);
    let instance = app.order(&token, &product);
    // 72 hours after 08:00 on the 27th is 08:00 on the 30th; a run before it releases nothing.
    let early = app.bill_run("2026-03-30T07:59:59Z");
    assert!(early["bills_written"].as_i64().unwrap() > 0);
    assert_eq!(
        app.get(&format!("/api/v1/instances/{instance}"), &token)
            .expect(200)
            .json()["status"],
        "running"
    );
    app.bill_run("2026-03-30T12:00:00Z");
    let released = app
        .get(&format!("/api/v1/instances/{instance}"), &token)
        .expect(200)
        .json();
    assert_eq!(released["status"], "released", "{released}");
    assert_eq!(released["released_at"], "2026-03-30T08:00:00Z");
    // Billed through the hour before its release, 72 bills, each showing what it would have
    // cost: an hour of running time at 3.00 and of the template's resources (2 × 0.80).
    let bills = app.bills(&token, Some(&instance));
    assert_eq!(bills.len(), 72);
    let last = bills.last().unwrap();
    assert_eq!(last["period_start"], "2026-03-30T07:00:00Z");
    for bill in &bills {
        assert_eq!(bill["test"], true);
        assert_eq!(
            (
                &bill["product_fees"],
                &bill["resource_fees"],
                &bill["total"]
            ),
            (&json!("3.00"), &json!("1.60"), &json!("4.60")),
            "{bill}"
        );
        assert_eq!(bill["resource_lines"][0]["running_seconds"], 3_600);
    }
    assert_eq!(
        app.count("ledger_entries"),
        0,
        "a test bill deducts nothing"
    );
    // The next run bills nothing more of it.
    let later = app.bill_run("2026-03-31T12:00:00Z");
    assert!(!later.to_string().contains(&instance), "{later}");
    assert_eq!(app.bills(&token, Some(&instance)).len(), 72);
}

#[test]
fn after_category_approval_only_the_category_is_locked_published_or_not() {
    let app = TestApp::new();
    let (token, _, product) = app.self_test_product();
    let path = format!("/api/v1/products/{product}/category");
    let step = |category: &str, tags: Value, region: bool| {
        json!({"category": category, "tags": tags, "seo_keywords": ["vectors"],
               "region_selectable": region})
    };
    // In the self-test: tags, keywords and region selection change; the category does not.
    app.put(&path, &token, step("databases", json!(["vector"]), false))
        .expect(200);
    let before = app.snapshot();
    app.put(&path, &token, step("security", json!(["vector"]), false))
        .problem(409, "StepLocked");
    assert_eq!(app.snapshot(), before);
    // Published: the same, without a new review, and the catalog follows at once.
    app.configure_and_publish(&token, &product, &[Item::frequency()], true);
    app.put(
        &path,
        &token,
        step("databases", json!(["embeddings"]), true),
    )
    .expect(200);
    let status = app
        .get(&format!("/api/v1/products/{product}"), &token)
        .expect(200)
        .json()["status"]
        .clone();
    assert_eq!(status, "published");
    let found = app
        .get_anonymous("/api/v1/catalog?tag=embeddings")
        .expect(200)
        .json();
    assert_eq!(found["items"][0]["id"], product.as_str(), "{found}");
    assert_eq!(found["items"][0]["tags"], json!(["embeddings"]));
    assert!(
        app.get_anonymous("/api/v1/catalog?tag=vector")
            .expect(200)
            .json()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    app.put(&path, &token, step("security", json!(["embeddings"]), true))
        .problem(409, "StepLocked");
    // Other steps of a published listing stay frozen.
    let general = app
        .get(&format!("/api/v1/products/{product}/general"), &token)
        .expect(200)
        .json()["data"]
        .clone();
    app.put(
        &format!("/api/v1/products/{product}/general"),
        &token,
        general,
    )
    .problem(409, "ListingNotEditable");
    // The region selection a customer meets is the new one.
    let (_, customer) = app.funded_customer("10.00");
    app.post(
        "/api/v1/orders",
        &customer,
        json!({"product_id": product, "accept_eula": true}),
    )
    .problem(400, "Required");
}

#[test]
fn an_instance_shows_the_eula_its_order_accepted_and_its_text() {
    let app = TestApp::new();
    let (provider, _, product) = app.published_product_with(|step, body| {
        if step == "agreement" {
            body["eula"] = json!({"source": "template", "template_id": "eula-standard-v3",
                                  "amendments": "Support in English and Chinese."});
        }
    });
    let (_, customer) = app.funded_customer("10.00");
    app.set_now(at("2026-03-27T09:15:00Z"));
    let placed = app
        .post("/api/v1/orders", &customer, order_body(&product))
        .expect(201)
        .json();
    let instance = str_of(&placed["instance"]["id"]);
    let accepted = &placed["order"]["eula"];
    let path = format!("/api/v1/instances/{instance}/eula");
    for token in [&customer, &provider, &ADMIN.to_owned()] {
        let read = app
            .get(&format!("/api/v1/instances/{instance}"), token)
            .expect(200)
            .json();
        assert_eq!(&read["eula"], accepted, "{read}");
        let text = app.get(&path, token).expect(200).json();
        assert_eq!(
            text["eula"],
            json!({"source": "template", "template_id": "eula-standard-v3",
                   "amendments": "Support in English and Chinese."})
        );
        assert_eq!(text["digest"], accepted["digest"]);
        assert_eq!(text["accepted_at"], "2026-03-27T09:15:00Z");
    }
    // Strangers see nothing; the platform has no business with it.
    let (_, stranger) = app.customer("individual");
    app.get(&path, &stranger).problem(404, "NotFound");
    let (_, platform) = app.principal("platform", None);
    app.get(&path, &platform).problem(403, "Forbidden");
    // An order from before the EULA itself was recorded: the listing's agreement while it is
    // the one accepted.
    let db = app.backend.open_db().unwrap();
    db.execute("UPDATE orders SET eula = NULL", &[]).unwrap();
    assert_eq!(
        app.get(&path, &customer).expect(200).json()["eula"]["template_id"],
        "eula-standard-v3"
    );
    db.execute("UPDATE orders SET eula_digest = 'another'", &[])
        .unwrap();
    app.get(&path, &customer).problem(404, "NotFound");
}
