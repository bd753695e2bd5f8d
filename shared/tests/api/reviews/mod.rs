//! docs/RULES.md §5–§7 through the HTTP handlers: the review lifecycle, sales settings and the
//! catalog.

use nestmarket::platform::storage::Backend;
use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Market, error_messages, png, step_bodies};

mod catalog;
mod sales;

fn status(app: &TestApp, token: &str, id: &str) -> String {
    app.get(&format!("/api/v1/products/{id}"), token)
        .expect(200)
        .json()["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_whole_review_path_to_the_catalog_with_its_history() {
    let app = TestApp::new();
    let (token, _, id) = app.complete_product();
    let product = format!("/api/v1/products/{id}");

    // Category review, rejected with a reason.
    let first = app.submit(&token, &id, "category");
    assert_eq!(status(&app, &token, &id), "category_review");
    let queue = app
        .get("/api/v1/reviews?status=pending", ADMIN)
        .expect(200)
        .json();
    assert_eq!(queue["items"][0]["id"], first.as_str());
    let rejected = app
        .decide(&first, "reject", Some("Vector databases belong in AI"))
        .expect(200)
        .json();
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(status(&app, &token, &id), "category_rejected");

    // Resubmitting the same category is refused; a changed one is accepted.
    let before = app.snapshot();
    app.post(
        "/api/v1/reviews",
        &token,
        json!({"product_id": id, "stage": "category"}),
    )
    .problem(409, "CategoryUnchanged");
    assert_eq!(app.snapshot(), before);
    let mut category = step_bodies()[2].1.clone();
    category["category"] = json!("ai_machine_learning");
    app.put(&format!("{product}/category"), &token, category)
        .expect(200);
    let second = app.submit(&token, &id, "category");
    app.decide(&second, "approve", None).expect(200);
    assert_eq!(status(&app, &token, &id), "self_test");

    // Sales settings during the self-test.
    let items = app
        .get(&format!("{product}/billable-items"), &token)
        .expect(200)
        .json();
    assert_eq!(items["items"][0]["code"], "Frequency");
    assert_eq!(items["items"][0]["in_effect"], false);
    assert_eq!(items["items"][0]["reporting"], Value::Null);
    let item = format!("{product}/billable-items/Frequency");
    // Time measures running time, not API calls: refused for this item.
    app.put(
        &format!("{item}/reporting"),
        &token,
        json!({"method": "compute_nest", "source": "time"}),
    )
    .problem(400, "InvalidReportingMethod");
    app.put(
        &format!("{item}/reporting"),
        &token,
        json!({"method": "compute_nest", "source": "bill"}),
    )
    .expect(200);
    let set = app
        .put(
            &format!("{item}/associations"),
            &token,
            json!({"templates": ["tpl-standard"], "plans": ["plan-pro"]}),
        )
        .expect(200)
        .json();
    assert_eq!(set["in_effect"], true);
    assert_eq!(
        set["reporting"],
        json!({"method": "compute_nest", "source": "bill"})
    );

    // Feature review: rejected, fixed, resubmitted, approved.
    let third = app.submit(&token, &id, "feature");
    app.decide(
        &third,
        "reject",
        Some("Report API calls yourself: bills do not measure them"),
    )
    .expect(200);
    assert_eq!(status(&app, &token, &id), "feature_rejected");
    app.put(
        &format!("{item}/reporting"),
        &token,
        json!({"method": "service_provider"}),
    )
    .expect(200);
    let fourth = app.submit(&token, &id, "feature");
    app.decide(&fourth, "approve", Some("Looks good"))
        .expect(200);
    assert_eq!(status(&app, &token, &id), "published");

    // In the catalog, without a token.
    let listed = app
        .call("GET", "/api/v1/catalog", None, None, vec![])
        .expect(200)
        .json();
    assert_eq!(listed["items"][0]["id"], id.as_str());
    assert_eq!(
        listed["items"][0]["platform_tag"]["id"],
        "compute_nest_service"
    );
    let detail = app
        .call("GET", &format!("/api/v1/catalog/{id}"), None, None, vec![])
        .expect(200)
        .json();
    assert_eq!(detail["product_name"], "Acme Vector DB");
    assert_eq!(detail["category"], "ai_machine_learning");
    assert_eq!(
        detail["pricing"]["billable_items"][0]["tiers"][1]["unit_price"],
        "0.4"
    );
    assert_eq!(
        detail["pricing"]["billable_items"][0]["price_unit"],
        "count"
    );
    let logo_url = detail["media"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "logo")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let logo = app.call("GET", &logo_url, None, None, vec![]).expect(200);
    assert_eq!(logo.header("content-type"), Some("image/png"));

    // The history: every step, with its actor and reason, oldest first.
    let provider_id = app.get("/api/v1/me", &token).expect(200).json()["id"].clone();
    let history = app
        .get(&format!("/api/v1/reviews?product_id={id}"), &token)
        .expect(200)
        .json();
    let steps: Vec<(String, String, Value, Value)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["history"].as_array().unwrap().clone())
        .map(|t| {
            (
                t["from"].as_str().unwrap().to_owned(),
                t["to"].as_str().unwrap().to_owned(),
                t["actor_id"].clone(),
                t["reason"].clone(),
            )
        })
        .collect();
    let admin = json!("usr-admin");
    let expected = [
        ("draft", "category_review", &provider_id, Value::Null),
        (
            "category_review",
            "category_rejected",
            &admin,
            json!("Vector databases belong in AI"),
        ),
        (
            "category_rejected",
            "category_review",
            &provider_id,
            Value::Null,
        ),
        ("category_review", "self_test", &admin, Value::Null),
        ("self_test", "feature_review", &provider_id, Value::Null),
        (
            "feature_review",
            "feature_rejected",
            &admin,
            json!("Report API calls yourself: bills do not measure them"),
        ),
        (
            "feature_rejected",
            "feature_review",
            &provider_id,
            Value::Null,
        ),
        ("feature_review", "published", &admin, json!("Looks good")),
    ];
    assert_eq!(steps.len(), expected.len(), "{steps:?}");
    for (got, want) in steps.iter().zip(expected.iter()) {
        assert_eq!(
            (got.0.as_str(), got.1.as_str(), &got.2, &got.3),
            (want.0, want.1, want.2, &want.3)
        );
    }
}

#[test]
fn an_incomplete_listing_cannot_be_submitted_and_the_refusal_says_what_is_missing() {
    let app = TestApp::new();
    let (token, _, id) = app.draft_product();
    app.put(
        &format!("/api/v1/products/{id}/access"),
        &token,
        step_bodies()[0].1.clone(),
    )
    .expect(200);
    app.put_bytes(
        &format!("/api/v1/products/{id}/media/logo"),
        &token,
        "image/png",
        png(290, 290, 64),
    )
    .expect(200);
    let before = app.snapshot();
    let err = app
        .post(
            "/api/v1/reviews",
            &token,
            json!({"product_id": id, "stage": "category"}),
        )
        .problem(400, "ListingIncomplete");
    let missing = error_messages(&err);
    for m in [
        "missing: general",
        "missing: media.user_guide",
        "missing: category",
        "missing: pricing",
        "missing: agreement",
    ] {
        assert!(missing.contains(&m), "{m} not in {missing:?}");
    }
    assert!(!missing.contains(&"missing: access"));
    assert!(!missing.contains(&"missing: media.logo"));
    assert_eq!(app.snapshot(), before);
}

#[test]
fn every_transition_outside_the_lifecycle_is_refused_and_changes_nothing() {
    let app = TestApp::new();
    let (token, _, id) = app.complete_product();
    // Submissions that the state machine does not allow from each status.
    let refused_submissions = [
        ("draft", "feature"),
        ("category_review", "category"),
        ("category_review", "feature"),
        ("category_rejected", "feature"),
        ("self_test", "category"),
        ("feature_review", "feature"),
        ("feature_review", "category"),
        ("feature_rejected", "category"),
        ("published", "category"),
        ("published", "feature"),
    ];
    for (from, stage) in refused_submissions {
        app.force_status(&id, from);
        let before = app.snapshot();
        app.post(
            "/api/v1/reviews",
            &token,
            json!({"product_id": id, "stage": stage}),
        )
        .problem(409, "InvalidTransition");
        assert_eq!(app.snapshot(), before, "{from} + submit {stage}");
    }
}

#[test]
fn a_decided_review_cannot_be_decided_again() {
    let app = TestApp::new();
    let (token, _, id) = app.complete_product();
    let review = app.submit(&token, &id, "category");
    app.decide(&review, "approve", None).expect(200);
    let before = app.snapshot();
    app.decide(&review, "reject", Some("changed my mind"))
        .problem(409, "ReviewAlreadyDecided");
    app.decide(&review, "approve", None)
        .problem(409, "ReviewAlreadyDecided");
    assert_eq!(app.snapshot(), before);
    assert_eq!(status(&app, &token, &id), "self_test");
    app.decide("rev-missing", "approve", None)
        .problem(404, "NotFound");
}

#[test]
fn a_rejection_needs_a_reason() {
    let app = TestApp::new();
    let (token, _, id) = app.complete_product();
    let review = app.submit(&token, &id, "category");
    let before = app.snapshot();
    app.decide(&review, "reject", None)
        .problem(400, "ReasonRequired");
    app.decide(&review, "reject", Some("   "))
        .problem(400, "ReasonRequired");
    app.post(
        &format!("/api/v1/reviews/{review}/decision"),
        ADMIN,
        json!({"decision": "maybe"}),
    )
    .problem(400, "InvalidJson");
    assert_eq!(app.snapshot(), before);
}

#[test]
fn two_operators_deciding_at_once_exactly_one_wins() {
    let app = TestApp::new();
    let (token, _, id) = app.complete_product();
    let review = app.submit(&token, &id, "category");
    let operators: Vec<String> = (0..6).map(|_| app.principal("operator", None).1).collect();
    let barrier = std::sync::Barrier::new(operators.len());
    let results: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = operators
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let (app, review, barrier) = (&app, &review, &barrier);
                s.spawn(move || {
                    let (decision, reason) = if i % 2 == 0 {
                        ("approve", None)
                    } else {
                        ("reject", Some("no"))
                    };
                    let mut body = json!({ "decision": decision });
                    if let Some(r) = reason {
                        body["reason"] = json!(r);
                    }
                    barrier.wait();
                    let r = app.post(&format!("/api/v1/reviews/{review}/decision"), op, body);
                    let code = if r.status == 200 {
                        decision.to_owned()
                    } else {
                        r.code()
                    };
                    (r.status, code)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<_> = results.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter(|(s, _)| *s != 200)
            .all(|(s, c)| *s == 409 && c == "ReviewAlreadyDecided"),
        "{results:?}"
    );
    let expected = if winners[0].1 == "approve" {
        "self_test"
    } else {
        "category_rejected"
    };
    assert_eq!(status(&app, &token, &id), expected);
    let history = app
        .get(&format!("/api/v1/reviews/{review}"), ADMIN)
        .expect(200)
        .json();
    assert_eq!(
        history["history"].as_array().unwrap().len(),
        2,
        "one submission and one decision"
    );
}

#[test]
fn editing_is_refused_while_a_review_is_pending() {
    let app = TestApp::new();
    let (token, _, id) = app.complete_product();
    app.submit(&token, &id, "category");
    let before = app.snapshot();
    app.put(
        &format!("/api/v1/products/{id}/general"),
        &token,
        step_bodies()[1].1.clone(),
    )
    .problem(409, "ReviewPending");
    app.delete(&format!("/api/v1/products/{id}/media/logo"), &token)
        .problem(409, "ReviewPending");
    assert_eq!(app.snapshot(), before);
}

#[test]
fn reviews_respect_roles_and_tenants() {
    let app = TestApp::new();
    let (token, _, id) = app.complete_product();
    let (_, mallory) = app.provider();
    let (_, customer) = app.principal("customer", Some("enterprise"));
    let before = app.snapshot();
    app.post(
        "/api/v1/reviews",
        &mallory,
        json!({"product_id": id, "stage": "category"}),
    )
    .problem(404, "NotFound");
    app.post(
        "/api/v1/reviews",
        &customer,
        json!({"product_id": id, "stage": "category"}),
    )
    .problem(403, "Forbidden");
    app.post(
        "/api/v1/reviews",
        ADMIN,
        json!({"product_id": id, "stage": "category"}),
    )
    .problem(403, "Forbidden");
    assert_eq!(app.snapshot(), before);
    let review = app.submit(&token, &id, "category");
    let before = app.snapshot();
    app.post(
        &format!("/api/v1/reviews/{review}/decision"),
        &token,
        json!({"decision": "approve"}),
    )
    .problem(403, "Forbidden");
    app.get(&format!("/api/v1/reviews/{review}"), &mallory)
        .problem(404, "NotFound");
    assert_eq!(
        app.get("/api/v1/reviews", &mallory).expect(200).json()["items"],
        json!([])
    );
    app.get(&format!("/api/v1/reviews/{review}"), &token)
        .expect(200);
    app.get("/api/v1/reviews?status=open", ADMIN)
        .problem(400, "InvalidQuery");
    assert_eq!(app.snapshot(), before);
}

#[test]
fn the_history_is_append_only_in_the_database() {
    let app = TestApp::new();
    let (token, _, id) = app.complete_product();
    app.submit(&token, &id, "category");
    let db = app.backend.open_db().unwrap();
    let update = db.execute("UPDATE product_transitions SET reason = 'rewritten'", &[]);
    assert!(update.unwrap_err().message.contains("append-only"));
    assert!(db.execute("DELETE FROM product_transitions", &[]).is_err());
    assert_eq!(app.count("product_transitions"), 1);
}

#[test]
fn a_submitted_listing_keeps_its_logo_and_user_guide() {
    let app = TestApp::new();
    let (token, _, id) = app.complete_product();
    let logo = format!("/api/v1/products/{id}/media/logo");
    let guide = format!("/api/v1/products/{id}/media/user_guide");
    // A draft's media come and go.
    app.delete(&logo, &token).expect(204);
    app.put_bytes(&logo, &token, "image/png", png(290, 290, 64))
        .expect(200);
    let review = app.submit(&token, &id, "category");
    app.decide(&review, "reject", Some("Filed under the wrong category"))
        .expect(200);
    let screenshot = format!("/api/v1/products/{id}/media/screenshot/1");
    app.put_bytes(&screenshot, &token, "image/png", png(800, 600, 64))
        .expect(200);
    let before = app.snapshot();
    for required in [&logo, &guide] {
        let refused = app.delete(required, &token).problem(409, "StepLocked");
        assert!(
            refused["detail"].as_str().unwrap().contains("replaced"),
            "{refused}"
        );
    }
    assert_eq!(app.snapshot(), before, "nothing removed");
    // Replaced, yes; and optional media still go.
    app.put_bytes(&logo, &token, "image/png", png(290, 290, 96))
        .expect(200);
    app.delete(&screenshot, &token).expect(204);
    app.put(
        &format!("/api/v1/products/{id}/category"),
        &token,
        json!({"category": "ai_machine_learning", "tags": ["vector"], "region_selectable": true}),
    )
    .expect(200);
    app.pass_category_review(&token, &id);
    app.delete(&guide, &token).problem(409, "StepLocked");
}

#[test]
fn an_approved_category_is_locked() {
    let app = TestApp::new();
    let (token, _, id) = app.self_test_product();
    let mut category = step_bodies()
        .into_iter()
        .find(|(name, _)| *name == "category")
        .unwrap()
        .1;
    category["category"] = json!("ai_machine_learning");
    let before = app.snapshot();
    let refused = app
        .put(&format!("/api/v1/products/{id}/category"), &token, category)
        .problem(409, "StepLocked");
    assert!(
        refused["detail"].as_str().unwrap().contains("approved"),
        "{refused}"
    );
    assert_eq!(app.snapshot(), before);
    // The rest of the listing is still the provider's to improve during the self-test.
    let general = step_bodies()
        .into_iter()
        .find(|(name, _)| *name == "general")
        .unwrap()
        .1;
    app.put(&format!("/api/v1/products/{id}/general"), &token, general)
        .expect(200);
}

#[test]
fn a_feature_review_needs_the_whole_listing() {
    let app = TestApp::new();
    let (token, _, id) = app.self_test_product();
    app.configure_and_publish(&token, &id, &[testkit::Item::frequency()], false);
    // A listing that lost its logo before removal was locked (written by an older version).
    app.backend
        .open_db()
        .unwrap()
        .execute(
            "DELETE FROM product_media WHERE product_id = ? AND kind = 'logo'",
            &[id.as_str().into()],
        )
        .unwrap();
    let before = app.snapshot();
    let refused = app
        .post(
            "/api/v1/reviews",
            &token,
            json!({"product_id": id, "stage": "feature"}),
        )
        .problem(400, "ListingIncomplete");
    assert_eq!(error_messages(&refused), ["missing: media.logo"]);
    assert_eq!(app.snapshot(), before);
}
