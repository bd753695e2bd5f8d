//! docs/RULES.md §6: sales settings of billable items, configured during the self-test and
//! complete before the feature review.

use serde_json::json;
use testkit::native::{ADMIN, TestApp};
use testkit::{Market, error_fields, service_body, step_bodies};

#[test]
fn sales_settings_are_only_configured_during_the_self_test() {
    let app = TestApp::new();
    let (token, _, id) = app.complete_product();
    let item = format!("/api/v1/products/{id}/billable-items/Frequency");
    for from in [
        "draft",
        "category_review",
        "category_rejected",
        "feature_review",
        "published",
    ] {
        app.force_status(&id, from);
        let before = app.snapshot();
        app.put(
            &format!("{item}/reporting"),
            &token,
            json!({"method": "service_provider"}),
        )
        .problem(409, "SalesSettingsNotEditable");
        app.put(
            &format!("{item}/associations"),
            &token,
            json!({"templates": ["tpl-standard"]}),
        )
        .problem(409, "SalesSettingsNotEditable");
        assert_eq!(app.snapshot(), before, "{from}");
    }
    for from in ["self_test", "feature_rejected"] {
        app.force_status(&id, from);
        app.put(
            &format!("{item}/reporting"),
            &token,
            json!({"method": "service_provider"}),
        )
        .expect(200);
    }
}

#[test]
fn sales_settings_are_validated_and_bad_ones_change_nothing() {
    let app = TestApp::new();
    let (token, _, id) = app.self_test_product();
    let items = format!("/api/v1/products/{id}/billable-items");
    let (_, mallory) = app.provider();
    let before = app.snapshot();
    for (body, code) in [
        (json!({"method": "compute_nest"}), "Required"),
        (
            json!({"method": "compute_nest", "source": "prometheus"}),
            "Required",
        ),
        (
            json!({"method": "service_provider", "source": "bill"}),
            "InvalidReportingMethod",
        ),
        (json!({"method": "both"}), "InvalidReportingMethod"),
        (
            json!({"method": "service_provider", "extra": 1}),
            "UnknownField",
        ),
    ] {
        app.put(&format!("{items}/Frequency/reporting"), &token, body)
            .problem(400, code);
    }
    app.put(
        &format!("{items}/Frequency/associations"),
        &token,
        json!({"templates": ["tpl-nope"]}),
    )
    .problem(400, "UnknownTemplate");
    app.put(
        &format!("{items}/Frequency/associations"),
        &token,
        json!({"plans": ["plan-nope"]}),
    )
    .problem(400, "UnknownPlan");
    app.put(
        &format!("{items}/Storage/reporting"),
        &token,
        json!({"method": "service_provider"}),
    )
    .problem(404, "NotFound");
    app.put(
        &format!("{items}/Frequency/reporting"),
        &mallory,
        json!({"method": "service_provider"}),
    )
    .problem(404, "NotFound");
    app.get(&items, &mallory).problem(404, "NotFound");
    assert_eq!(app.snapshot(), before);
    // Prometheus needs its endpoint and query; setting a method replaces the previous one.
    let prom = json!({"method": "compute_nest", "source": "prometheus",
        "prometheus": {"endpoint": "http://127.0.0.1:9090", "query": "requests_total{job=\"api\"}"}});
    app.put(
        &format!("{items}/Frequency/reporting"),
        &token,
        prom.clone(),
    )
    .expect(200);
    let listed = app.get(&items, &token).expect(200).json();
    assert_eq!(listed["items"][0]["reporting"], prom);
    app.put(
        &format!("{items}/Frequency/reporting"),
        &token,
        json!({"method": "service_provider"}),
    )
    .expect(200);
    let listed = app.get(&items, ADMIN).expect(200).json();
    assert_eq!(
        listed["items"][0]["reporting"],
        json!({"method": "service_provider"})
    );
}

#[test]
fn feature_review_needs_every_reporting_method_and_an_item_in_effect() {
    let app = TestApp::new();
    let (token, _, id) = app.self_test_product();
    let item = format!("/api/v1/products/{id}/billable-items/Frequency");
    let before = app.snapshot();
    let err = app
        .post(
            "/api/v1/reviews",
            &token,
            json!({"product_id": id, "stage": "feature"}),
        )
        .problem(400, "SalesSettingsIncomplete");
    let fields = error_fields(&err);
    assert_eq!(
        fields,
        ["billable_items.Frequency.reporting", "billable_items"]
    );
    assert_eq!(app.snapshot(), before);
    app.put(
        &format!("{item}/reporting"),
        &token,
        json!({"method": "service_provider"}),
    )
    .expect(200);
    let err = app
        .post(
            "/api/v1/reviews",
            &token,
            json!({"product_id": id, "stage": "feature"}),
        )
        .problem(400, "SalesSettingsIncomplete");
    assert_eq!(err["errors"][0]["field"], "billable_items");
    app.put(
        &format!("{item}/associations"),
        &token,
        json!({"plans": ["plan-basic"]}),
    )
    .expect(200);
    app.submit(&token, &id, "feature");
}

#[test]
fn a_single_template_service_associates_its_items_automatically() {
    let app = TestApp::new();
    let (_, token) = app.provider();
    let mut service = service_body();
    service["templates"].as_array_mut().unwrap().truncate(1);
    let svc = app
        .post("/api/v1/services", &token, service)
        .expect(201)
        .json();
    let product = app
        .post("/api/v1/products", &token, json!({"service_id": svc["id"]}))
        .expect(201)
        .json();
    let id = product["id"].as_str().unwrap();
    app.put(
        &format!("/api/v1/products/{id}/pricing"),
        &token,
        step_bodies()[3].1.clone(),
    )
    .expect(200);
    let items = app
        .get(&format!("/api/v1/products/{id}/billable-items"), &token)
        .expect(200)
        .json();
    assert_eq!(
        items["items"][0]["associations"]["templates"],
        json!(["tpl-standard"])
    );
    assert_eq!(items["items"][0]["automatic_association"], true);
    assert_eq!(items["items"][0]["in_effect"], true);
}

#[test]
fn sales_settings_authenticate_before_reading_the_body() {
    let app = TestApp::new();
    let (_, _, id) = app.self_test_product();
    let path = format!("/api/v1/products/{id}/billable-items/Frequency/reporting");
    let r = app.call(
        "PUT",
        &path,
        None,
        Some("application/json"),
        b"{not json".to_vec(),
    );
    r.problem(401, "Unauthorized");
}

#[test]
fn prometheus_endpoints_must_be_reachable_by_bill_runs() {
    let app = TestApp::with_config(|name| {
        (name == "prometheus_origin").then(|| "http://127.0.0.1:9090".to_owned())
    });
    let (token, _, id) = app.self_test_product();
    let path = format!("/api/v1/products/{id}/billable-items/Frequency/reporting");
    let prometheus = |endpoint: &str| {
        json!({"method": "compute_nest", "source": "prometheus",
               "prometheus": {"endpoint": endpoint, "query": "requests_total"}})
    };
    let before = app.snapshot();
    for outside in [
        "http://prometheus.internal:9090",
        "http://127.0.0.1:90901",
        "https://127.0.0.1:9090",
    ] {
        app.put(&path, &token, prometheus(outside))
            .problem(400, "InvalidReportingMethod");
    }
    assert_eq!(app.snapshot(), before);
    app.put(&path, &token, prometheus("http://127.0.0.1:9090"))
        .expect(200);
    app.put(&path, &token, prometheus("http://127.0.0.1:9090/prom"))
        .expect(200);
}
