//! docs/RULES.md §2 through the HTTP handlers: principals, tokens, roles.

use serde_json::json;
use testkit::native::{ADMIN, TestApp};
use testkit::{Market, error_fields};

#[test]
fn the_admin_token_is_the_built_in_operator() {
    let app = TestApp::new();
    let me = app.get("/api/v1/me", ADMIN).expect(200).json();
    assert_eq!(me["role"], "operator");
    assert_eq!(me["built_in"], true);
}

#[test]
fn requests_without_a_valid_token_are_401() {
    let app = TestApp::new();
    let r = app.call("GET", "/api/v1/me", None, None, vec![]);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    r.problem(401, "Unauthorized");
    app.get("/api/v1/me", "nm_not-a-token")
        .problem(401, "Unauthorized");
    app.call("GET", "/api/v1/me", None, None, vec![]);
    let r = app.call(
        "POST",
        "/api/v1/principals",
        None,
        Some("application/json"),
        b"{}".to_vec(),
    );
    r.problem(401, "Unauthorized");
}

#[test]
fn operators_create_principals_of_every_role_with_a_token_shown_once() {
    let app = TestApp::new();
    for (role, account_type) in [
        ("operator", None),
        ("provider", None),
        ("customer", Some("enterprise")),
        ("customer", Some("individual")),
        ("platform", None),
    ] {
        let (id, token) = app.principal(role, account_type);
        assert!(id.starts_with("usr-"));
        let me = app.get("/api/v1/me", &token).expect(200).json();
        assert_eq!(me["id"], id.as_str());
        assert_eq!(me["role"], role);
        assert_eq!(
            me["account_type"],
            account_type.map_or(json!(null), |a| json!(a))
        );
        // The token is never shown again, and never stored in the clear.
        let fetched = app
            .get(&format!("/api/v1/principals/{id}"), ADMIN)
            .expect(200);
        assert!(!String::from_utf8_lossy(&fetched.body).contains(&token));
        assert!(!app.snapshot().contains(&token));
    }
}

#[test]
fn invalid_principals_are_refused_and_nothing_is_written() {
    let app = TestApp::new();
    let before = app.snapshot();
    let cases = [
        (json!({"role": "customer", "name": "c"}), "Required"),
        (
            json!({"role": "provider", "name": "p", "account_type": "enterprise"}),
            "InvalidValue",
        ),
        (json!({"role": "provider", "name": ""}), "Required"),
        (
            json!({"role": "provider", "name": "x".repeat(101)}),
            "TooLong",
        ),
        (
            json!({"role": "provider", "name": "p", "nickname": "typo"}),
            "UnknownField",
        ),
        (json!({"role": "admin", "name": "p"}), "InvalidValue"),
        (json!({"name": "p"}), "Required"),
        (
            json!({"role": "customer", "name": "c", "account_type": "family"}),
            "InvalidValue",
        ),
        (json!({"role": 7, "name": "p"}), "InvalidJson"),
    ];
    for (body, code) in cases {
        app.post("/api/v1/principals", ADMIN, body)
            .problem(400, code);
    }
    let r = app.call(
        "POST",
        "/api/v1/principals",
        Some(ADMIN),
        Some("application/json"),
        b"{not json".to_vec(),
    );
    r.problem(400, "InvalidJson");
    let r = app.call(
        "POST",
        "/api/v1/principals",
        Some(ADMIN),
        Some("text/plain"),
        b"{}".to_vec(),
    );
    r.problem(415, "UnsupportedMediaType");
    assert_eq!(app.snapshot(), before);
}

#[test]
fn every_mistake_in_a_principal_is_reported_at_once() {
    let app = TestApp::new();
    let body = app
        .post(
            "/api/v1/principals",
            ADMIN,
            json!({"role": "customer", "name": ""}),
        )
        .problem(400, "Required");
    let fields = error_fields(&body);
    assert_eq!(fields, ["name", "account_type"]);
}

#[test]
fn the_unknown_field_is_named() {
    let app = TestApp::new();
    let body = app
        .post(
            "/api/v1/principals",
            ADMIN,
            json!({"role": "provider", "name": "p", "nmae": "x"}),
        )
        .problem(400, "UnknownField");
    assert_eq!(body["errors"][0]["field"], "nmae");
}

#[test]
fn only_operators_manage_principals() {
    let app = TestApp::new();
    for (role, account_type) in [
        ("provider", None),
        ("customer", Some("individual")),
        ("platform", None),
    ] {
        let (_, token) = app.principal(role, account_type);
        let before = app.snapshot();
        app.post(
            "/api/v1/principals",
            &token,
            json!({"role": "operator", "name": "me too"}),
        )
        .problem(403, "Forbidden");
        app.get("/api/v1/principals", &token)
            .problem(403, "Forbidden");
        assert_eq!(app.snapshot(), before);
    }
}

#[test]
fn a_principal_sees_itself_but_another_is_404() {
    let app = TestApp::new();
    let (alice, alice_token) = app.provider();
    let (bob, _) = app.provider();
    app.get(&format!("/api/v1/principals/{alice}"), &alice_token)
        .expect(200);
    app.get(&format!("/api/v1/principals/{bob}"), &alice_token)
        .problem(404, "NotFound");
    app.get("/api/v1/principals/usr-nope", ADMIN)
        .problem(404, "NotFound");
}

#[test]
fn rotation_retires_the_old_token() {
    let app = TestApp::new();
    let (id, old) = app.provider();
    let rotated = app
        .post(&format!("/api/v1/principals/{id}/tokens"), ADMIN, json!({}))
        .expect(201)
        .json();
    let new = rotated["token"].as_str().unwrap();
    assert_ne!(new, old);
    app.get("/api/v1/me", &old).problem(401, "Unauthorized");
    app.get("/api/v1/me", new).expect(200);
    // A principal may rotate its own token, with the token it holds.
    let again = app
        .call(
            "POST",
            &format!("/api/v1/principals/{id}/tokens"),
            Some(new),
            None,
            vec![],
        )
        .expect(201)
        .json();
    app.get("/api/v1/me", new).problem(401, "Unauthorized");
    app.get("/api/v1/me", again["token"].as_str().unwrap())
        .expect(200);
}

#[test]
fn nobody_rotates_someone_elses_token_except_operators() {
    let app = TestApp::new();
    let (_, alice) = app.provider();
    let (bob, bob_token) = app.provider();
    let before = app.snapshot();
    app.post(
        &format!("/api/v1/principals/{bob}/tokens"),
        &alice,
        json!({}),
    )
    .problem(404, "NotFound");
    assert_eq!(app.snapshot(), before);
    app.get("/api/v1/me", &bob_token).expect(200);
    app.post("/api/v1/principals/usr-admin/tokens", ADMIN, json!({}))
        .problem(409, "BuiltInPrincipal");
}

#[test]
fn principals_are_listed_by_page_and_role() {
    let app = TestApp::new();
    let mut ids: Vec<String> = (0..3).map(|_| app.provider().0).collect();
    ids.sort();
    app.principal("customer", Some("individual"));
    let page1 = app
        .get("/api/v1/principals?role=provider&limit=2", ADMIN)
        .expect(200)
        .json();
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = app
        .get(
            &format!("/api/v1/principals?role=provider&limit=2&cursor={cursor}"),
            ADMIN,
        )
        .expect(200)
        .json();
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_eq!(page2["next_cursor"], json!(null));
    let mut seen: Vec<String> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["items"].as_array().unwrap())
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    assert_eq!(seen, ids);
    for bad in ["limit=0", "limit=501", "limit=x", "role=admin"] {
        app.get(&format!("/api/v1/principals?{bad}"), ADMIN)
            .problem(400, "InvalidQuery");
    }
    let all = app
        .get("/api/v1/principals?limit=500", ADMIN)
        .expect(200)
        .json();
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let app = TestApp::new();
    let r = app.call("DELETE", "/api/v1/me", Some(ADMIN), None, vec![]);
    assert_eq!(r.header("allow"), Some("GET"));
    r.problem(405, "MethodNotAllowed");
    let r = app.call("PUT", "/api/v1/principals", Some(ADMIN), None, vec![]);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    app.get("/api/v1/principals/x/y/z", ADMIN)
        .problem(404, "NotFound");
}

/// An operator disables a principal: its token stops working at once, what it made stays (its
/// published product is still sold), and enabling it gives the same token back its use.
#[test]
fn a_disabled_principals_token_stops_working_and_its_data_stays() {
    let app = TestApp::new();
    let (provider, _, product) = app.published_product();
    let provider_id = app.get("/api/v1/me", &provider).expect(200).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let disabled = app
        .post(
            &format!("/api/v1/principals/{provider_id}/disable"),
            ADMIN,
            json!({}),
        )
        .expect(200)
        .json();
    assert!(disabled["disabled_at"].is_string(), "{disabled}");
    app.get("/api/v1/me", &provider)
        .problem(401, "Unauthorized");
    app.get(&format!("/api/v1/products/{product}"), &provider)
        .problem(401, "Unauthorized");
    app.get_anonymous(&format!("/api/v1/catalog/{product}"))
        .expect(200);
    app.get(&format!("/api/v1/products/{product}"), ADMIN)
        .expect(200);

    // Only operators disable; the built-in operator is the deployment's.
    let (_, customer) = app.customer("individual");
    app.post(
        &format!("/api/v1/principals/{provider_id}/enable"),
        &customer,
        json!({}),
    )
    .problem(403, "Forbidden");
    app.post("/api/v1/principals/usr-admin/disable", ADMIN, json!({}))
        .problem(409, "BuiltInPrincipal");
    app.post("/api/v1/principals/usr-missing/disable", ADMIN, json!({}))
        .problem(404, "NotFound");

    let enabled = app
        .post(
            &format!("/api/v1/principals/{provider_id}/enable"),
            ADMIN,
            json!({}),
        )
        .expect(200)
        .json();
    assert!(enabled.get("disabled_at").is_none(), "{enabled}");
    app.get("/api/v1/me", &provider).expect(200);
}
