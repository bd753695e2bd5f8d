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

/// A record carries at most 20 entities, one per billable item a product may have: more is
/// refused before any entity is looked at. Within that bound, entities beyond the product's own
/// items are refused one by one for what they are — as the schema's `maxItems` says, the bound
/// does not depend on the product.
#[test]
fn entities_are_bounded_by_the_most_items_a_product_may_have_and_extra_ones_refused_each() {
    let app = TestApp::new();
    let (provider, _, product) = app.published_product();
    let (_, customer) = app.funded_customer("10.00");
    let instance = app.order(&customer, &product);
    app.set_now(testkit::at("2026-03-27T08:40:00Z"));
    let before = app.snapshot();
    let push = |entities: Vec<serde_json::Value>| {
        json!({"ServiceInstanceId": instance, "Metering": [{
            "StartTime": testkit::unix("2026-03-27T08:00:00Z"),
            "EndTime": testkit::unix("2026-03-27T08:30:00Z"),
            "Entities": entities}]})
    };
    // The product has one item; three entities are within the bound, each judged on its own.
    let entities = vec![
        json!({"Key": "Frequency", "Value": "1"}),
        json!({"Key": "Frequency", "Value": "1"}),
        json!({"Key": "Storage", "Value": "1"}),
    ];
    let problem = app
        .post("/api/v1/metering", &provider, push(entities))
        .problem(400, "ValidationFailed");
    assert_eq!(
        testkit::error_fields(&problem),
        ["Metering[0].Entities[1].Key", "Metering[0].Entities[2].Key"]
    );
    assert_eq!(error_codes(&problem), ["Duplicate", "UnknownBillableItem"]);
    // 21 entities, every one of them invalid: only the count is reported.
    let entities = vec![json!({"Key": "", "Value": "x"}); 21];
    let problem = app
        .post("/api/v1/metering", &provider, push(entities))
        .problem(400, "TooMany");
    assert_eq!(testkit::error_fields(&problem), ["Metering[0].Entities"]);
    assert_eq!(app.snapshot(), before);
}

/// An item's associations name at most the 20 templates and 400 plans a service may have: more
/// is refused before any id is looked at. Within those bounds, more ids than the service has
/// are refused one by one (an unknown id, one listed twice).
#[test]
fn associations_are_bounded_by_what_a_service_may_have_and_extra_ids_refused_each() {
    let app = TestApp::new();
    let (token, _, product) = app.self_test_product();
    let associations = format!("/api/v1/products/{product}/billable-items/Frequency/associations");
    let before = app.snapshot();
    // The service has two templates and two plans.
    let problem = app
        .put(
            &associations,
            &token,
            json!({"templates": ["tpl-standard", "tpl-internal", "tpl-standard"]}),
        )
        .problem(400, "Duplicate");
    assert_eq!(testkit::error_fields(&problem), ["templates[2]"]);
    let problem = app
        .put(
            &associations,
            &token,
            json!({"templates": ["tpl-standard", "tpl-a", "tpl-b"],
                   "plans": ["plan-basic", "plan-pro", "plan-basic", "plan-x"]}),
        )
        .problem(400, "ValidationFailed");
    assert_eq!(
        testkit::error_fields(&problem),
        ["templates[1]", "templates[2]", "plans[2]", "plans[3]"]
    );
    assert_eq!(
        error_codes(&problem),
        [
            "UnknownTemplate",
            "UnknownTemplate",
            "Duplicate",
            "UnknownPlan"
        ]
    );
    let problem = app
        .put(
            &associations,
            &token,
            json!({"templates": vec![""; 21], "plans": vec![""; 401]}),
        )
        .problem(400, "TooMany");
    assert_eq!(testkit::error_fields(&problem), ["templates", "plans"]);
    assert_eq!(app.snapshot(), before);
}

/// A media slot's path takes a body up to its kind's limit whatever the method, so another
/// method with a file the slot would take is told the methods it has (405), and only a body
/// over the kind's limit is 413.
#[test]
fn another_method_on_a_media_slot_is_405_for_any_body_the_slot_would_take() {
    let app = TestApp::new();
    let (provider, _, product) = app.draft_product();
    let before = app.snapshot();
    let over_json = vec![0; JSON_LIMIT + 1];
    for path in [
        format!("/api/v1/products/{product}/media/logo"),
        format!("/api/v1/products/{product}/media/screenshot/1"),
    ] {
        for method in ["POST", "PATCH"] {
            let r = app.call(
                method,
                &path,
                Some(&provider),
                Some("image/png"),
                over_json.clone(),
            );
            assert_eq!(
                r.header("allow"),
                Some("GET, PUT, DELETE"),
                "{method} {path}"
            );
            r.problem(405, "MethodNotAllowed");
        }
    }
    let logo = format!("/api/v1/products/{product}/media/logo");
    app.call("POST", &logo, None, Some("image/png"), vec![0; 7_864_321])
        .problem(413, "PayloadTooLarge");
    assert_eq!(app.snapshot(), before);
}

/// The `code` of each error of a problem document, in order.
fn error_codes(problem: &serde_json::Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .expect("a problem document lists its errors")
        .iter()
        .map(|e| e["code"].as_str().expect("a code"))
        .collect()
}
