//! Bounded input: every body, list and value has a limit, checked before any work proportional
//! to the input, and a request over it is refused (a clear 4xx) with nothing changed.

use serde_json::json;
use testkit::Market;
use testkit::native::TestApp;

/// The JSON body limit (1 MiB): `api::JSON_BODY_MAX`.
const JSON_LIMIT: usize = 1_048_576;

#[test]
fn a_body_over_its_endpoints_limit_is_refused_before_routing_or_authentication() {
    let app = TestApp::new();
    let (provider, _, product) = app.draft_product();
    let before = app.snapshot();
    let over_json = vec![b' '; JSON_LIMIT + 1];
    for (method, path, content_type) in [
        ("POST", "/api/v1/metering", "application/json"),
        ("POST", "/api/v1/principals", "application/json"),
        ("POST", "/api/v1/no-such-route", "application/json"),
        (
            "PUT",
            &*format!("/api/v1/products/{product}/general"),
            "application/json",
        ),
    ] {
        app.call(method, path, None, Some(content_type), over_json.clone())
            .problem(413, "PayloadTooLarge");
    }
    // A medium's limit is its kind's: a logo may be 7.5 MiB, not a byte more.
    let logo = format!("/api/v1/products/{product}/media/logo");
    app.call(
        "PUT",
        &logo,
        Some(&provider),
        Some("image/png"),
        vec![0; 7_864_321],
    )
    .problem(413, "PayloadTooLarge");
    assert_eq!(app.snapshot(), before);
    // Exactly the limit is read (and refused for what it is, not its size).
    let at_limit = vec![b' '; JSON_LIMIT];
    let r = app.call(
        "POST",
        "/api/v1/metering",
        Some(&provider),
        Some("application/json"),
        at_limit,
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

/// A list over its limit is refused as a whole (`TooMany`) without its items being looked at:
/// a huge list costs no more than a list at the limit.
#[test]
fn lists_over_their_limits_are_refused_before_their_items_are_checked() {
    let app = TestApp::new();
    let (_, provider) = app.provider();
    let before = app.snapshot();
    let mut service = testkit::service_body();
    // 51 regions, every one of them invalid: only the count is reported.
    service["regions"] = json!(vec![""; 51]);
    let problem = app
        .post("/api/v1/services", &provider, service)
        .problem(400, "TooMany");
    assert_eq!(testkit::error_fields(&problem), ["regions"]);
    let mut service = testkit::service_body();
    service["templates"][0]["plans"] = json!(
        (0..21)
            .map(|i| json!({"id": format!("p{i}"), "name": "P"}))
            .collect::<Vec<_>>()
    );
    let problem = app
        .post("/api/v1/services", &provider, service)
        .problem(400, "TooMany");
    assert_eq!(testkit::error_fields(&problem), ["templates[0].plans"]);
    assert_eq!(app.snapshot(), before);

    let (token, _, product) = app.draft_product();
    let mut pricing = pricing_step();
    pricing["billable_items"][0]["tiers"] =
        json!(vec![json!({"up_to": "1", "unit_price": "-1"}); 21]);
    let problem = app
        .put(
            &format!("/api/v1/products/{product}/pricing"),
            &token,
            pricing,
        )
        .problem(400, "TooMany");
    assert_eq!(testkit::error_fields(&problem), ["billable_items[0].tiers"]);
}

fn pricing_step() -> serde_json::Value {
    testkit::step_bodies()
        .into_iter()
        .find(|(name, _)| *name == "pricing")
        .map(|(_, body)| body)
        .expect("a pricing step")
}

/// A record carries at most one entity per billable item in effect: more is refused before any
/// entity is looked at.
#[test]
fn a_record_with_more_entities_than_billable_items_is_refused() {
    let app = TestApp::new();
    let (provider, _, product) = app.published_product();
    let (_, customer) = app.funded_customer("10.00");
    let instance = app.order(&customer, &product);
    app.set_now(testkit::at("2026-03-27T08:40:00Z"));
    let before = app.snapshot();
    let entities: Vec<_> = (0..2)
        .map(|_| json!({"Key": "Frequency", "Value": "1"}))
        .collect();
    let push = json!({"ServiceInstanceId": instance, "Metering": [{
        "StartTime": testkit::unix("2026-03-27T08:00:00Z"),
        "EndTime": testkit::unix("2026-03-27T08:30:00Z"),
        "Entities": entities}]});
    let problem = app
        .post("/api/v1/metering", &provider, push)
        .problem(400, "TooMany");
    assert_eq!(testkit::error_fields(&problem), ["Metering[0].Entities"]);
    assert_eq!(app.snapshot(), before);
}
