//! docs/RULES.md §8 through the HTTP handlers: quotes, orders, instances and accounts.

use chrono::Duration;
use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Market, at};

fn order_body(product: &str) -> Value {
    json!({"product_id": product, "region": "cn-hangzhou", "accept_eula": true})
}

#[test]
fn the_quote_is_the_order_confirmation() {
    let app = TestApp::new();
    let (_, _, product) = app.published_product();
    let (_, customer) = app.customer("individual");
    let q = app
        .post(
            "/api/v1/orders/quote",
            &customer,
            json!({"product_id": product, "region": "cn-shanghai"}),
        )
        .expect(200)
        .json();
    assert_eq!(q["template"]["id"], "tpl-standard");
    assert_eq!(q["region"], "cn-shanghai");
    assert_eq!(q["cloud_resources"][0]["spec"], "ecs.g7.large");
    assert_eq!(q["cloud_resources"][0]["hourly_fee"], "0.80");
    assert_eq!(q["cloud_resources_hourly_fee"], "1.60");
    assert_eq!(q["billing_period"], "hour");
    assert_eq!(q["currency"], "CNY");
    assert_eq!(q["billable_items"][0]["code"], "Frequency");
    assert_eq!(
        q["billable_items"][0]["tiers"][2],
        json!({"up_to": null, "unit_price": "0.2"})
    );
    assert_eq!(q["charged_at_confirmation"], "0.00");
    assert!(
        q["statement"]
            .as_str()
            .unwrap()
            .starts_with("Nothing is charged")
    );
    // The other template has no billable item in effect: it is not sold.
    app.post(
        "/api/v1/orders/quote",
        &customer,
        json!({"product_id": product, "region": "cn-shanghai", "template_id": "tpl-internal"}),
    )
    .problem(409, "TemplateNotOrderable");
}

#[test]
fn an_order_deploys_a_running_instance_and_charges_nothing() {
    let app = TestApp::new();
    let (_, _, product) = app.published_product();
    let (customer_id, customer) = app.customer("individual");
    app.post(
        &format!("/api/v1/accounts/{customer_id}/top-ups"),
        ADMIN,
        json!({"amount": "100.00"}),
    )
    .expect(201);
    let created = app
        .post("/api/v1/orders", &customer, order_body(&product))
        .expect(201)
        .json();
    let instance = &created["instance"];
    assert!(instance["id"].as_str().unwrap().starts_with("si-"));
    assert!(created["order"]["id"].as_str().unwrap().starts_with("ord-"));
    assert_eq!(instance["status"], "running");
    assert_eq!(instance["test"], false);
    assert_eq!(instance["region"], "cn-hangzhou");
    assert_eq!(instance["template_id"], "tpl-standard");
    assert_eq!(
        instance["running_intervals"],
        json!([{"started_at": app.now().timestamp(), "ended_at": null}])
    );
    let account = app.get("/api/v1/accounts/me", &customer).expect(200).json();
    assert_eq!(account["account"]["balance"], "100.00");
    assert_eq!(account["ledger"]["items"].as_array().unwrap().len(), 1);
}

#[test]
fn every_order_refusal_has_its_status_and_code_and_writes_nothing() {
    let app = TestApp::new();
    let (published_provider, _, published) = app.published_product();
    let (_, _, enterprise_only) = app.published_product_with(|step, body| {
        if step == "pricing" {
            body["enterprise_only"] = json!(true);
        }
    });
    let (_, _, fixed_region) = app.published_product_with(|step, body| {
        if step == "category" {
            body["region_selectable"] = json!(false);
        }
    });
    let (_, _, draft) = app.complete_product();
    let (_, individual) = app.customer("individual");
    let (_, enterprise) = app.customer("enterprise");
    let (_, broke) = app.customer("enterprise");
    // A bill of 2.10 (0.50 of usage, 1.60 of an hour's resources) deducted from an empty account
    // left this customer in arrears.
    {
        let ordered_at = app.now();
        let instance = app.order(&broke, &published);
        app.set_now(at("2026-03-27T08:40:00Z"));
        let push = json!({"ServiceInstanceId": instance, "Metering": [
            {"StartTime": at("2026-03-27T08:00:00Z").timestamp(), "EndTime": at("2026-03-27T08:30:00Z").timestamp(),
             "Entities": [{"Key": "Frequency", "Value": "1"}]}]});
        app.post("/api/v1/metering", &published_provider, push)
            .expect(200);
        app.set_now(at("2026-03-27T10:00:00Z"));
        app.post("/api/v1/billing/runs", ADMIN, json!({}))
            .expect(200);
        let me = app.get("/api/v1/accounts/me", &broke).expect(200).json();
        assert_eq!(me["account"]["balance"], "-2.10");
        app.set_now(ordered_at);
    }
    let before = app.snapshot();
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (&individual, order_body(&draft), 404, "NotFound"),
        (&individual, order_body("prod-missing"), 404, "NotFound"),
        (
            &individual,
            json!({"product_id": published, "region": "cn-hangzhou"}),
            400,
            "EulaNotAccepted",
        ),
        (
            &individual,
            json!({"product_id": published, "region": "cn-hangzhou", "accept_eula": false}),
            400,
            "EulaNotAccepted",
        ),
        (
            &individual,
            order_body(&enterprise_only),
            403,
            "EnterpriseOnly",
        ),
        (
            &individual,
            json!({"product_id": published, "accept_eula": true}),
            400,
            "Required",
        ),
        (
            &individual,
            json!({"product_id": published, "region": "us-east-1", "accept_eula": true}),
            400,
            "InvalidRegion",
        ),
        (
            &individual,
            order_body(&fixed_region),
            400,
            "RegionNotSelectable",
        ),
        (
            &individual,
            json!({"product_id": published, "region": "cn-hangzhou", "accept_eula": true, "template_id": "tpl-x"}),
            400,
            "UnknownTemplate",
        ),
        (
            &individual,
            json!({"product_id": published, "region": "cn-hangzhou", "accept_eula": true, "plan_id": "plan-x"}),
            400,
            "UnknownPlan",
        ),
        (
            &individual,
            json!({"product_id": published, "accept_eula": true, "coupon": "FREE"}),
            400,
            "UnknownField",
        ),
        (&broke, order_body(&published), 402, "AccountInArrears"),
        (ADMIN, order_body(&published), 403, "Forbidden"),
    ];
    for (token, body, status, code) in cases {
        app.post("/api/v1/orders", token, body.clone())
            .problem(status, code);
        assert_eq!(app.snapshot(), before, "{body}");
    }
    // The same customers can order where the rules allow it.
    app.post("/api/v1/orders", &enterprise, order_body(&enterprise_only))
        .expect(201);
    let fixed = app
        .post(
            "/api/v1/orders",
            &individual,
            json!({"product_id": fixed_region, "accept_eula": true}),
        )
        .expect(201)
        .json();
    assert_eq!(
        fixed["instance"]["region"], "cn-hangzhou",
        "the service's default region"
    );
}

#[test]
fn providers_place_test_orders_during_their_self_test_only() {
    let app = TestApp::new();
    let (token, _, product) = app.self_test_product();
    let item = format!("/api/v1/products/{product}/billable-items/Frequency");
    app.put(
        &format!("{item}/associations"),
        &token,
        json!({"templates": ["tpl-standard"]}),
    )
    .expect(200);
    let quote = app
        .post(
            "/api/v1/orders/quote",
            &token,
            json!({"product_id": product, "region": "cn-hangzhou"}),
        )
        .expect(200)
        .json();
    assert_eq!(quote["test"], true);
    let created = app
        .post("/api/v1/orders", &token, order_body(&product))
        .expect(201)
        .json();
    assert_eq!(created["instance"]["test"], true);
    assert_eq!(created["order"]["test"], true);
    // Another provider's product is not found; a customer cannot buy it before publication.
    let (_, mallory) = app.provider();
    let (_, customer) = app.customer("enterprise");
    let before = app.snapshot();
    app.post("/api/v1/orders", &mallory, order_body(&product))
        .problem(404, "NotFound");
    app.post("/api/v1/orders", &customer, order_body(&product))
        .problem(404, "NotFound");
    assert_eq!(app.snapshot(), before);
    // Outside the self-test the provider cannot order its own product.
    let (draft_token, _, draft) = app.complete_product();
    app.post("/api/v1/orders", &draft_token, order_body(&draft))
        .problem(409, "TestOrderNotAllowed");
    let (pub_token, _, published) = app.published_product();
    app.post("/api/v1/orders", &pub_token, order_body(&published))
        .problem(409, "TestOrderNotAllowed");
}

#[test]
fn instances_stop_start_and_release_with_exact_running_intervals() {
    let app = TestApp::new();
    let (provider, _, product) = app.published_product();
    let (_, customer) = app.customer("individual");
    let t0 = app.now();
    let si = app.order(&customer, &product);
    let act = |action: &str| {
        app.post(
            &format!("/api/v1/instances/{si}/actions"),
            &customer,
            json!({"action": action}),
        )
    };
    app.set_now(t0 + Duration::seconds(1800));
    assert_eq!(act("stop").expect(200).json()["status"], "stopped");
    app.set_now(t0 + Duration::seconds(2400));
    assert_eq!(act("start").expect(200).json()["status"], "running");
    app.set_now(t0 + Duration::seconds(3000));
    let released = act("release").expect(200).json();
    assert_eq!(released["status"], "released");
    let t = t0.timestamp();
    assert_eq!(
        released["running_intervals"],
        json!([{"started_at": t, "ended_at": t + 1800}, {"started_at": t + 2400, "ended_at": t + 3000}])
    );
    let before = app.snapshot();
    for action in ["stop", "start", "release"] {
        act(action).problem(409, "InstanceReleased");
    }
    assert_eq!(app.snapshot(), before);
    // The provider of the product and operators see it; only its owner operates it.
    app.get(&format!("/api/v1/instances/{si}"), &provider)
        .expect(200);
    app.get(&format!("/api/v1/instances/{si}"), ADMIN)
        .expect(200);
    let (_, stranger) = app.customer("individual");
    app.get(&format!("/api/v1/instances/{si}"), &stranger)
        .problem(404, "NotFound");
}

#[test]
fn impossible_actions_are_conflicts_and_strangers_get_404() {
    let app = TestApp::new();
    let (provider, _, product) = app.published_product();
    let (_, customer) = app.customer("individual");
    let (_, stranger) = app.customer("individual");
    let si = app.order(&customer, &product);
    let path = format!("/api/v1/instances/{si}/actions");
    let before = app.snapshot();
    app.post(&path, &customer, json!({"action": "start"}))
        .problem(409, "InvalidInstanceAction");
    app.post(&path, &customer, json!({"action": "explode"}))
        .problem(400, "InvalidJson");
    app.post(&path, &stranger, json!({"action": "stop"}))
        .problem(404, "NotFound");
    app.post(&path, &provider, json!({"action": "stop"}))
        .problem(403, "Forbidden");
    app.post(
        "/api/v1/instances/si-missing/actions",
        &customer,
        json!({"action": "stop"}),
    )
    .problem(404, "NotFound");
    assert_eq!(app.snapshot(), before);
    app.post(&path, &customer, json!({"action": "stop"}))
        .expect(200);
    app.post(&path, &customer, json!({"action": "stop"}))
        .problem(409, "InvalidInstanceAction");
}

#[test]
fn top_ups_are_for_operators_and_must_be_whole_cents() {
    let app = TestApp::new();
    let (customer_id, customer) = app.customer("individual");
    let (provider_id, provider) = app.provider();
    let path = format!("/api/v1/accounts/{customer_id}/top-ups");
    let before = app.snapshot();
    for amount in [
        json!("0"),
        json!("-5.00"),
        json!("0.001"),
        json!("100000000.01"),
    ] {
        app.post(&path, ADMIN, json!({"amount": amount}))
            .problem(400, "InvalidAmount");
    }
    app.post(&path, ADMIN, json!({"amount": "ten"}))
        .problem(400, "InvalidJson");
    app.post(&path, &customer, json!({"amount": "5"}))
        .problem(403, "Forbidden");
    app.post(
        &format!("/api/v1/accounts/{provider_id}/top-ups"),
        ADMIN,
        json!({"amount": "5"}),
    )
    .problem(404, "NotFound");
    app.post(
        "/api/v1/accounts/usr-missing/top-ups",
        ADMIN,
        json!({"amount": "5"}),
    )
    .problem(404, "NotFound");
    app.get("/api/v1/accounts/me", &provider)
        .problem(403, "Forbidden");
    assert_eq!(app.snapshot(), before);
    let r = app
        .post(&path, ADMIN, json!({"amount": "12.5"}))
        .expect(201)
        .json();
    assert_eq!(r["account"]["balance"], "12.50");
    assert_eq!(r["entry"]["kind"], "top_up");
    assert_eq!(r["entry"]["amount"], "12.50");
}

#[test]
fn the_ledger_pages_newest_first() {
    let app = TestApp::new();
    let (customer_id, customer) = app.customer("enterprise");
    for amount in ["1.00", "2.00", "3.00"] {
        app.post(
            &format!("/api/v1/accounts/{customer_id}/top-ups"),
            ADMIN,
            json!({"amount": amount}),
        )
        .expect(201);
    }
    let page1 = app
        .get("/api/v1/accounts/me?limit=2", &customer)
        .expect(200)
        .json();
    let amounts: Vec<&str> = page1["ledger"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, ["3.00", "2.00"]);
    let cursor = page1["ledger"]["next_cursor"].as_str().unwrap();
    let page2 = app
        .get(
            &format!("/api/v1/accounts/me?limit=2&cursor={cursor}"),
            &customer,
        )
        .expect(200)
        .json();
    assert_eq!(page2["ledger"]["items"][0]["amount"], "1.00");
    assert_eq!(page2["ledger"]["next_cursor"], Value::Null);
    assert_eq!(page2["account"]["balance"], "6.00");
}

#[test]
fn an_individual_cannot_even_quote_an_enterprise_only_product() {
    let app = TestApp::new();
    let (_, _, product) = app.published_product_with(|step, body| {
        if step == "pricing" {
            body["enterprise_only"] = json!(true);
        }
    });
    let (_, individual) = app.customer("individual");
    let (_, enterprise) = app.customer("enterprise");
    let body = json!({"product_id": product, "region": "cn-hangzhou"});
    app.post("/api/v1/orders/quote", &individual, body.clone())
        .problem(403, "EnterpriseOnly");
    app.post("/api/v1/orders/quote", &enterprise, body)
        .expect(200);
}

#[test]
fn reading_an_account_writes_nothing() {
    let app = TestApp::new();
    let (_, customer) = app.customer("individual");
    let before = app.snapshot();
    let me = app.get("/api/v1/accounts/me", &customer).expect(200).json();
    assert_eq!(me["account"]["balance"], "0.00");
    assert_eq!(me["ledger"]["items"], json!([]));
    assert_eq!(app.snapshot(), before);
}

#[test]
fn customers_order_only_templates_some_item_bills() {
    let app = TestApp::new();
    // The service has two templates; the item is associated with `tpl-standard` alone.
    let (_, _, product) = app.published_product();
    let page = app
        .get_anonymous(&format!("/api/v1/catalog/{product}"))
        .expect(200)
        .json();
    let offered: Vec<&str> = page["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["tpl-standard"]);
    let (_, customer) = app.funded_customer("100.00");
    let internal = json!({"product_id": product, "region": "cn-hangzhou", "accept_eula": true,
                          "template_id": "tpl-internal"});
    let before = app.snapshot();
    let refused = app
        .post("/api/v1/orders", &customer, internal.clone())
        .problem(409, "TemplateNotOrderable");
    assert!(
        refused["detail"].as_str().unwrap().contains("tpl-internal"),
        "{refused}"
    );
    app.post("/api/v1/orders/quote", &customer, internal)
        .problem(409, "TemplateNotOrderable");
    assert_eq!(app.snapshot(), before);

    // An item of one plan only: the template is sold with that plan, not without.
    let per_plan = {
        let (token, _, id) = app.self_test_product();
        let item = format!("/api/v1/products/{id}/billable-items/Frequency");
        app.put(
            &format!("{item}/reporting"),
            &token,
            json!({"method": "service_provider"}),
        )
        .expect(200);
        app.put(
            &format!("{item}/associations"),
            &token,
            json!({"templates": [], "plans": ["plan-pro"]}),
        )
        .expect(200);
        // During the self-test the provider may try any template.
        let test_order = json!({"product_id": id, "region": "cn-hangzhou", "accept_eula": true,
                                "template_id": "tpl-internal"});
        app.post("/api/v1/orders", &token, test_order).expect(201);
        let review = app.submit(&token, &id, "feature");
        app.decide(&review, "approve", None).expect(200);
        id
    };
    let page = app
        .get_anonymous(&format!("/api/v1/catalog/{per_plan}"))
        .expect(200)
        .json();
    assert_eq!(page["templates"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["templates"][0]["plans"],
        json!([{"id": "plan-pro", "name": "Pro"}])
    );
    let order = |plan: Option<&str>| {
        let mut body = json!({"product_id": per_plan, "region": "cn-hangzhou",
                              "accept_eula": true, "template_id": "tpl-standard"});
        if let Some(p) = plan {
            body["plan_id"] = json!(p);
        }
        app.post("/api/v1/orders", &customer, body)
    };
    order(None).problem(409, "TemplateNotOrderable");
    order(Some("plan-basic")).problem(409, "TemplateNotOrderable");
    order(Some("plan-pro")).expect(201);
}

#[test]
fn publication_releases_the_test_instances() {
    let app = TestApp::with_config(|name| (name == "allow_clock_override").then(|| "true".into()));
    app.set_now(at("2026-03-27T08:00:00Z"));
    let items = [testkit::Item::running_time("1.00")];
    let (token, product) = app.product_with_items("hour", &items, false);
    let running = app.order(&token, &product);
    let stopped = app.order(&token, &product);
    app.set_now(at("2026-03-27T08:10:00Z"));
    app.act(&token, &stopped, "stop");
    let released = app.order(&token, &product);
    app.act(&token, &released, "release");
    // Published at 09:30: the self-test ends, and so do its instances.
    app.set_now(at("2026-03-27T09:30:00Z"));
    let review = app.submit(&token, &product, "feature");
    app.decide(&review, "approve", None).expect(200);
    for instance in [&running, &stopped] {
        let after = app
            .get(&format!("/api/v1/instances/{instance}"), &token)
            .expect(200)
            .json();
        assert_eq!(after["status"], "released", "{after}");
        assert_eq!(after["released_at"], "2026-03-27T09:30:00Z");
    }
    let kept = app
        .get(&format!("/api/v1/instances/{released}"), &token)
        .expect(200)
        .json();
    assert_eq!(
        kept["released_at"], "2026-03-27T08:10:00Z",
        "released before, untouched"
    );
    // Their last bills are of the hour of the publication: 08:00 and 09:00.
    app.bill_run("2026-03-28T00:00:00Z");
    let periods = |instance: &str| -> Vec<String> {
        app.bills(&token, Some(instance))
            .iter()
            .map(|b| b["period_start"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        periods(&running),
        ["2026-03-27T08:00:00Z", "2026-03-27T09:00:00Z"]
    );
    assert_eq!(
        periods(&stopped),
        ["2026-03-27T08:00:00Z", "2026-03-27T09:00:00Z"]
    );
    // The running one ran until the publication: 1.5 hours of running time over the two bills.
    let running_bills = app.bills(&token, Some(&running));
    assert_eq!(running_bills[1]["product_fees"], "0.50");
}

#[test]
fn an_order_records_the_eula_it_accepted() {
    let app = TestApp::new();
    let (_, _, custom) = app.published_product();
    let (_, _, templated) = app.published_product_with(|step, body| {
        if step == "agreement" {
            body["eula"] = json!({"source": "template", "template_id": "eula-standard-v3",
                                  "amendments": "Support in English and Chinese."});
        }
    });
    let (_, customer) = app.funded_customer("10.00");
    for (product, source, template_id) in [
        (&custom, "custom", Value::Null),
        (&templated, "template", json!("eula-standard-v3")),
    ] {
        // The confirmation shows what ordering accepts…
        let quote = app
            .post("/api/v1/orders/quote", &customer, order_body(product))
            .expect(200)
            .json();
        assert_eq!(quote["eula"]["source"], source, "{quote}");
        let digest = quote["eula_digest"].as_str().unwrap().to_owned();
        assert_eq!(digest.len(), 64);
        // …and the order keeps which EULA was accepted, and when.
        let placed = app
            .post("/api/v1/orders", &customer, order_body(product))
            .expect(201)
            .json();
        let eula = &placed["order"]["eula"];
        assert_eq!(
            (&eula["source"], &eula["template_id"], &eula["digest"]),
            (&json!(source), &template_id, &json!(digest))
        );
        assert_eq!(eula["accepted_at"], placed["order"]["created_at"]);
    }
    let quoted = |p: &str| {
        app.post("/api/v1/orders/quote", &customer, order_body(p))
            .expect(200)
            .json()
    };
    assert_eq!(quoted(&custom)["eula"]["text"], "You agree.");
    assert_eq!(
        quoted(&templated)["eula"]["amendments"],
        "Support in English and Chinese."
    );
    assert_ne!(
        quoted(&custom)["eula_digest"],
        quoted(&templated)["eula_digest"]
    );
}
