//! docs/RULES.md §3–§4 through the HTTP handlers: services, products, the five steps and media.

use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Market, error_fields, jpeg, pdf, png, service_body, step_bodies};

const LOGO_MAX: usize = 7_864_320;
const CERT_MAX: usize = 2_097_152;
const GUIDE_MAX: usize = 10_485_760;

fn step(name: &str) -> Value {
    step_bodies()
        .into_iter()
        .find(|(s, _)| *s == name)
        .unwrap()
        .1
}

#[test]
fn providers_register_services_and_see_only_their_own() {
    let app = TestApp::new();
    let (_, alice) = app.provider();
    let (_, bob) = app.provider();
    let svc = app
        .post("/api/v1/services", &alice, service_body())
        .expect(201)
        .json();
    let id = svc["id"].as_str().unwrap();
    assert!(id.starts_with("svc-"));
    assert_eq!(svc["templates"][0]["resources"][0]["hourly_fee"], "0.80");
    app.get(&format!("/api/v1/services/{id}"), &alice)
        .expect(200);
    app.get(&format!("/api/v1/services/{id}"), &bob)
        .problem(404, "NotFound");
    assert_eq!(
        app.get("/api/v1/services", &bob).expect(200).json()["items"],
        json!([])
    );
    assert_eq!(
        app.get("/api/v1/services", &alice).expect(200).json()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get("/api/v1/services", ADMIN).expect(200).json()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn invalid_services_report_every_error_and_store_nothing() {
    let app = TestApp::new();
    let (_, token) = app.provider();
    let (_, customer) = app.principal("customer", Some("individual"));
    let before = app.snapshot();
    let mut body = service_body();
    body["regions"] = json!([]);
    body["templates"][1]["id"] = json!("tpl-standard");
    let err = app
        .post("/api/v1/services", &token, body)
        .problem(400, "ValidationFailed");
    let fields = error_fields(&err);
    assert!(
        fields.contains(&"regions") && fields.contains(&"templates[1].id"),
        "{fields:?}"
    );
    let mut body = service_body();
    body["templates"] = json!([]);
    app.post("/api/v1/services", &token, body)
        .problem(400, "Required");
    let mut body = service_body();
    body["service_method"] = json!("shared");
    body.as_object_mut().unwrap().remove("name");
    let err = app
        .post("/api/v1/services", &token, body)
        .problem(400, "ValidationFailed");
    let fields = error_fields(&err);
    assert_eq!(fields, ["name", "service_method"]);
    app.post("/api/v1/services", &customer, service_body())
        .problem(403, "Forbidden");
    app.post("/api/v1/services", ADMIN, service_body())
        .problem(403, "Forbidden");
    assert_eq!(app.snapshot(), before);
}

#[test]
fn a_service_gets_one_product_only() {
    let app = TestApp::new();
    let (token, service_id, product_id) = app.draft_product();
    assert!(product_id.starts_with("prod-"));
    let before = app.snapshot();
    app.post(
        "/api/v1/products",
        &token,
        json!({"service_id": service_id}),
    )
    .problem(409, "ServiceAlreadyAssociated");
    assert_eq!(app.snapshot(), before);
}

#[test]
fn a_product_needs_a_service_of_ones_own() {
    let app = TestApp::new();
    let (_, other) = app.provider();
    let (_, alice) = app.provider();
    let svc = app
        .post("/api/v1/services", &alice, service_body())
        .expect(201)
        .json();
    let (_, customer) = app.principal("customer", Some("enterprise"));
    let before = app.snapshot();
    app.post("/api/v1/products", &other, json!({"service_id": svc["id"]}))
        .problem(404, "NotFound");
    app.post(
        "/api/v1/products",
        &other,
        json!({"service_id": "svc-missing"}),
    )
    .problem(404, "NotFound");
    app.post("/api/v1/products", &other, json!({}))
        .problem(400, "InvalidJson");
    app.post(
        "/api/v1/products",
        &customer,
        json!({"service_id": svc["id"]}),
    )
    .problem(403, "Forbidden");
    assert_eq!(app.snapshot(), before);
}

#[test]
fn two_racing_creations_for_one_service_leave_exactly_one_product() {
    let app = TestApp::new();
    let (_, token) = app.provider();
    let svc = app
        .post("/api/v1/services", &token, service_body())
        .expect(201)
        .json();
    let service_id = svc["id"].as_str().unwrap();
    let barrier = std::sync::Barrier::new(8);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    app.post(
                        "/api/v1/products",
                        &token,
                        json!({"service_id": service_id}),
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(app.count("products"), 1);
}

#[test]
fn a_product_goes_from_creation_to_all_five_steps_complete() {
    let app = TestApp::new();
    let (token, _, id) = app.draft_product();
    let path = format!("/api/v1/products/{id}");
    let view = app.get(&path, &token).expect(200).json();
    assert_eq!(view["status"], "draft");
    assert_eq!(view["complete"], false);
    assert_eq!(
        view["completeness"]["general"]["missing"],
        json!(["general", "media.logo", "media.user_guide"])
    );
    for (name, body) in step_bodies() {
        let view = app
            .put(&format!("{path}/{name}"), &token, body)
            .expect(200)
            .json();
        assert_eq!(
            view["completeness"][name]["complete"],
            name != "general",
            "{name}"
        );
    }
    app.put_bytes(
        &format!("{path}/media/logo"),
        &token,
        "image/png",
        png(290, 290, 4096),
    )
    .expect(200);
    let view = app.get(&path, &token).expect(200).json();
    assert_eq!(
        view["completeness"]["general"]["missing"],
        json!(["media.user_guide"])
    );
    app.put_bytes(
        &format!("{path}/media/user_guide"),
        &token,
        "application/pdf",
        pdf(2048),
    )
    .expect(200);
    let view = app.get(&path, &token).expect(200).json();
    assert_eq!(view["complete"], true, "{view}");
    assert_eq!(view["warnings"], json!([]));
    assert_eq!(
        view["steps"]["pricing"]["billable_items"][0]["tiers"][0]["unit_price"],
        "0.5"
    );
    assert_eq!(view["steps"]["pricing"]["currency"], "CNY");
    assert_eq!(
        app.get(&format!("{path}/access"), &token)
            .expect(200)
            .json()["data"]["product_name"],
        "Acme Vector DB"
    );
    let listed = app.get("/api/v1/products", &token).expect(200).json();
    assert_eq!(listed["items"][0]["id"], id.as_str());
    let drafts = app
        .get("/api/v1/products?status=draft", ADMIN)
        .expect(200)
        .json();
    assert_eq!(drafts["items"].as_array().unwrap().len(), 1);
    app.get("/api/v1/products?status=live", &token)
        .problem(400, "InvalidQuery");
}

#[test]
fn a_step_reports_all_field_errors_at_once_and_changes_nothing() {
    let app = TestApp::new();
    let (token, _, id) = app.draft_product();
    let before = app.snapshot();
    let err = app
        .put(&format!("/api/v1/products/{id}/general"), &token, json!({
            "short_description": "价".repeat(301),
            "highlights": "h".repeat(1001),
            "support_offered": {"service_scope": "", "time_range": "t", "business_scope": "b", "billing_scope": "b"}
        }))
        .problem(400, "ValidationFailed");
    let fields = error_fields(&err);
    for f in [
        "short_description",
        "highlights",
        "description",
        "support_offered.service_scope",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    assert_eq!(app.snapshot(), before);
}

#[test]
fn step_rules_carry_their_own_codes() {
    let app = TestApp::new();
    let (token, _, id) = app.draft_product();
    let put =
        |name: &str, body: Value| app.put(&format!("/api/v1/products/{id}/{name}"), &token, body);
    let before = app.snapshot();

    let mut general = step("general");
    general["short_description"] = json!("价".repeat(301));
    put("general", general.clone()).problem(400, "ShortDescriptionTooLong");
    general["short_description"] = json!("价".repeat(300));
    let mut access = step("access");
    access["service_method"] = json!("fully_managed");
    put("access", access).problem(400, "ServiceMethodMismatch");
    let mut access = step("access");
    access["service_template_id"] = json!("tpl-nope");
    put("access", access).problem(400, "UnknownTemplate");
    let mut pricing = step("pricing");
    pricing["pricing_plan"] = json!("subscription");
    put("pricing", pricing).problem(400, "UnsupportedPricingPlan");
    // Priced in a currency no account could pay: refused at the step, not by the first order.
    let mut pricing = step("pricing");
    pricing["currency"] = json!("USD");
    let usd = put("pricing", pricing).problem(400, "InvalidValue");
    assert_eq!(error_fields(&usd), ["currency"]);
    assert!(usd["detail"].as_str().unwrap().contains("CNY"), "{usd}");
    let mut category = step("category");
    category["category"] = json!("toys");
    put("category", category).problem(400, "UnknownCategory");
    let mut category = step("category");
    category["colour"] = json!("blue");
    put("category", category).problem(400, "UnknownField");
    assert_eq!(app.snapshot(), before);

    put("general", general).expect(200);
}

#[test]
fn a_private_template_is_accepted_with_a_warning() {
    let app = TestApp::new();
    let (token, _, id) = app.draft_product();
    let mut access = step("access");
    access["service_template_id"] = json!("tpl-internal");
    let view = app
        .put(&format!("/api/v1/products/{id}/access"), &token, access)
        .expect(200)
        .json();
    assert_eq!(view["warnings"][0]["code"], "PrivateTemplateSelected");
    assert_eq!(view["completeness"]["access"]["complete"], true);
}

#[test]
fn other_tenants_see_nothing_and_change_nothing() {
    let app = TestApp::new();
    let (token, service_id, id) = app.draft_product();
    app.put_bytes(
        &format!("/api/v1/products/{id}/media/logo"),
        &token,
        "image/png",
        png(290, 290, 100),
    )
    .expect(200);
    let (_, mallory) = app.provider();
    let before = app.snapshot();
    let path = format!("/api/v1/products/{id}");
    app.get(&path, &mallory).problem(404, "NotFound");
    app.get(&format!("{path}/access"), &mallory)
        .problem(404, "NotFound");
    app.get(&format!("{path}/media/logo"), &mallory)
        .problem(404, "NotFound");
    app.get(&format!("/api/v1/services/{service_id}"), &mallory)
        .problem(404, "NotFound");
    app.put(&format!("{path}/access"), &mallory, step("access"))
        .problem(404, "NotFound");
    app.put_bytes(
        &format!("{path}/media/logo"),
        &mallory,
        "image/png",
        png(290, 290, 100),
    )
    .problem(404, "NotFound");
    app.delete(&format!("{path}/media/logo"), &mallory)
        .problem(404, "NotFound");
    assert_eq!(
        app.get("/api/v1/products", &mallory).expect(200).json()["items"],
        json!([])
    );
    assert_eq!(app.snapshot(), before);
    // Customers and the platform are not listing roles at all.
    let (_, customer) = app.principal("customer", Some("individual"));
    app.get(&path, &customer).problem(403, "Forbidden");
    // Operators read every listing but do not write it.
    app.get(&path, ADMIN).expect(200);
    app.put(&format!("{path}/access"), ADMIN, step("access"))
        .problem(403, "Forbidden");
}

#[test]
fn the_listing_is_frozen_under_review_and_after_publication() {
    let app = TestApp::new();
    let (token, _, id) = app.draft_product();
    let path = format!("/api/v1/products/{id}");
    for (status, code) in [
        ("category_review", "ReviewPending"),
        ("feature_review", "ReviewPending"),
        ("published", "ListingNotEditable"),
    ] {
        app.force_status(&id, status);
        let before = app.snapshot();
        app.put(&format!("{path}/general"), &token, step("general"))
            .problem(409, code);
        app.put_bytes(
            &format!("{path}/media/logo"),
            &token,
            "image/png",
            png(290, 290, 100),
        )
        .problem(409, code);
        app.delete(&format!("{path}/media/logo"), &token)
            .problem(409, code);
        assert_eq!(app.snapshot(), before, "{status}");
    }
    for status in [
        "category_rejected",
        "self_test",
        "feature_rejected",
        "draft",
    ] {
        app.force_status(&id, status);
        app.put(&format!("{path}/general"), &token, step("general"))
            .expect(200);
    }
}

#[test]
fn media_are_stored_served_replaced_and_deleted() {
    let app = TestApp::new();
    let (token, _, id) = app.draft_product();
    let logo = format!("/api/v1/products/{id}/media/logo");
    let put = app
        .put_bytes(&logo, &token, "image/png", png(512, 256, 1000))
        .expect(200)
        .json();
    assert_eq!(put["warnings"][0]["code"], "LogoNotRecommendedSize");
    assert_eq!(put["media"]["width"], 512);
    let got = app.get(&logo, &token).expect(200);
    assert_eq!(got.header("content-type"), Some("image/png"));
    assert_eq!(got.body, png(512, 256, 1000));
    // A provider's bytes are never sniffed, rendered as a page of ours, or run.
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        got.header("content-security-policy"),
        Some("sandbox; default-src 'none'")
    );
    assert_eq!(
        got.header("content-disposition"),
        Some("inline; filename=\"logo.png\"")
    );
    // Replacing keeps one blob, not two.
    app.put_bytes(&logo, &token, "image/png", png(290, 290, 900))
        .expect(200);
    assert_eq!(app.backend.kv_len(), 1);
    assert_eq!(app.get(&logo, &token).expect(200).body.len(), 900);
    let view = app
        .get(&format!("/api/v1/products/{id}"), &token)
        .expect(200)
        .json();
    assert_eq!(view["warnings"], json!([]));
    assert_eq!(view["media"][0]["url"], logo.as_str());
    app.delete(&logo, &token).expect(204);
    app.get(&logo, &token).problem(404, "NotFound");
    assert_eq!(app.backend.kv_len(), 0);
    app.delete(&logo, &token).problem(404, "NotFound");
}

#[test]
fn media_limits_are_exact_to_the_byte() {
    let app = TestApp::new();
    let (token, _, id) = app.draft_product();
    let media = |rest: &str| format!("/api/v1/products/{id}/media/{rest}");
    type Make = fn(usize) -> Vec<u8>;
    let cases: [(&str, &str, Make, usize); 3] = [
        ("logo", "image/png", |n| png(290, 290, n), LOGO_MAX),
        ("certification/1", "image/jpeg", jpeg, CERT_MAX),
        ("user_guide", "application/pdf", pdf, GUIDE_MAX),
    ];
    for (slot, ct, make, max) in cases {
        let before = app.snapshot();
        app.put_bytes(&media(slot), &token, ct, make(max + 1))
            .problem(413, "PayloadTooLarge");
        assert_eq!(app.snapshot(), before, "{slot}");
        app.put_bytes(&media(slot), &token, ct, make(max))
            .expect(200);
    }
}

#[test]
fn media_are_checked_by_their_magic_bytes() {
    let app = TestApp::new();
    let (token, _, id) = app.draft_product();
    let media = |rest: &str| format!("/api/v1/products/{id}/media/{rest}");
    let before = app.snapshot();
    // A JPEG (or garbage) behind a PNG content type is not a PNG.
    app.put_bytes(&media("logo"), &token, "image/png", jpeg(100))
        .problem(415, "UnsupportedMediaType");
    app.put_bytes(&media("logo"), &token, "image/png", b"GIF89a....".to_vec())
        .problem(415, "UnsupportedMediaType");
    // A real JPEG is still not an acceptable logo.
    app.put_bytes(&media("logo"), &token, "image/jpeg", jpeg(100))
        .problem(415, "UnsupportedMediaType");
    app.put_bytes(
        &media("user_guide"),
        &token,
        "application/pdf",
        png(1, 1, 100),
    )
    .problem(415, "UnsupportedMediaType");
    app.put_bytes(&media("logo"), &token, "image/png", Vec::new())
        .expect(400);
    assert_eq!(app.snapshot(), before);
}

#[test]
fn six_certifications_fit_and_a_seventh_does_not() {
    let app = TestApp::new();
    let (token, _, id) = app.draft_product();
    for i in 1..=6 {
        app.put_bytes(
            &format!("/api/v1/products/{id}/media/certification/{i}"),
            &token,
            "image/png",
            png(10, 10, 100),
        )
        .expect(200);
    }
    let before = app.snapshot();
    app.put_bytes(
        &format!("/api/v1/products/{id}/media/certification/7"),
        &token,
        "image/png",
        png(10, 10, 100),
    )
    .problem(400, "InvalidMediaIndex");
    app.put_bytes(
        &format!("/api/v1/products/{id}/media/certification"),
        &token,
        "image/png",
        png(10, 10, 100),
    )
    .problem(400, "InvalidMediaIndex");
    app.put_bytes(
        &format!("/api/v1/products/{id}/media/logo/1"),
        &token,
        "image/png",
        png(10, 10, 100),
    )
    .problem(400, "InvalidMediaIndex");
    assert_eq!(app.snapshot(), before);
    let listed = app
        .get(&format!("/api/v1/products/{id}/media"), &token)
        .expect(200)
        .json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 6);
    assert_eq!(
        listed["items"][5]["url"],
        format!("/api/v1/products/{id}/media/certification/6")
    );
}

#[test]
fn categories_are_public() {
    let app = TestApp::new();
    let r = app
        .call("GET", "/api/v1/catalog/categories", None, None, vec![])
        .expect(200)
        .json();
    assert!(
        r["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "databases")
    );
}

#[test]
fn unknown_paths_and_methods() {
    let app = TestApp::new();
    let (token, _, id) = app.draft_product();
    app.get(&format!("/api/v1/products/{id}/nonsense"), &token)
        .problem(404, "NotFound");
    app.get(&format!("/api/v1/products/{id}/media/poster"), &token)
        .problem(404, "NotFound");
    let r = app.call(
        "POST",
        &format!("/api/v1/products/{id}/access"),
        Some(&token),
        None,
        vec![],
    );
    assert_eq!(r.header("allow"), Some("GET, PUT"));
    r.problem(405, "MethodNotAllowed");
}
