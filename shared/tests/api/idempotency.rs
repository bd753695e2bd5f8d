//! Idempotency keys: a retried request that moves money or creates a resource has its effect
//! once, and gets the first response again; the same key with another request is refused.

use serde_json::json;
use testkit::native::{ADMIN, TestApp};
use testkit::{Market, Response, at};

fn post_with_key(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: serde_json::Value,
) -> Response {
    app.call_with_headers(
        "POST",
        path,
        Some(token),
        &[
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ],
        body.to_string().into_bytes(),
    )
}

#[test]
fn a_retried_top_up_credits_once_and_answers_as_the_first_time() {
    let app = TestApp::new();
    let (customer_id, customer) = app.customer("individual");
    let path = format!("/api/v1/accounts/{customer_id}/top-ups");
    let top_up = || {
        post_with_key(
            &app,
            &path,
            ADMIN,
            "top-up-7f3a",
            json!({"amount": "25.00"}),
        )
        .expect(201)
    };
    let first = top_up();
    let retry = top_up();
    assert_eq!(retry.json(), first.json());
    assert_eq!(app.balance(&customer), "25.00");
    assert_eq!(app.ledger(&customer).len(), 1);

    // The same key for another request is refused, and changes nothing.
    let before = app.snapshot();
    post_with_key(
        &app,
        &path,
        ADMIN,
        "top-up-7f3a",
        json!({"amount": "26.00"}),
    )
    .problem(409, "IdempotencyKeyReused");
    assert_eq!(app.snapshot(), before);

    // Keys are the caller's own: another operator's same key is another request.
    let (_, other_operator) = app.principal("operator", None);
    post_with_key(
        &app,
        &path,
        &other_operator,
        "top-up-7f3a",
        json!({"amount": "25.00"}),
    )
    .expect(201);
    assert_eq!(app.balance(&customer), "50.00");
}

#[test]
fn retries_racing_each_other_credit_once() {
    let app = TestApp::new();
    let (customer_id, customer) = app.customer("individual");
    let path = format!("/api/v1/accounts/{customer_id}/top-ups");
    let responses: Vec<Response> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| post_with_key(&app, &path, ADMIN, "race", json!({"amount": "1.00"})))
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for r in &responses {
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.json(), responses[0].json());
    }
    assert_eq!(app.balance(&customer), "1.00");
}

#[test]
fn a_retried_order_deploys_one_instance_and_a_retried_bill_run_replays_its_report() {
    let app = TestApp::with_config(|n| (n == "allow_clock_override").then(|| "true".to_owned()));
    let (_, _, product) = app.published_product();
    let (_, customer) = app.funded_customer("100.00");
    let order = json!({"product_id": product, "region": "cn-hangzhou", "accept_eula": true});
    let first =
        post_with_key(&app, "/api/v1/orders", &customer, "order-1", order.clone()).expect(201);
    let retry = post_with_key(&app, "/api/v1/orders", &customer, "order-1", order).expect(201);
    assert_eq!(
        retry.json()["instance"]["id"],
        first.json()["instance"]["id"]
    );
    assert_eq!(app.count("instances"), 1);

    app.set_now(at("2026-03-27T10:00:00Z"));
    let run = json!({"as_of": "2026-03-27T10:00:00Z"});
    let report =
        post_with_key(&app, "/api/v1/billing/runs", ADMIN, "run-10", run.clone()).expect(200);
    assert_eq!(report.json()["bills_written"], 1);
    let replay = post_with_key(&app, "/api/v1/billing/runs", ADMIN, "run-10", run).expect(200);
    assert_eq!(
        replay.json(),
        report.json(),
        "the first report, not a run of nothing"
    );
    assert_eq!(app.count("bills"), 1);
}

#[test]
fn a_refused_request_is_not_recorded_and_keys_are_checked() {
    let app = TestApp::new();
    let (customer_id, customer) = app.customer("individual");
    let path = format!("/api/v1/accounts/{customer_id}/top-ups");
    // A refusal changed nothing and is not replayed: the same request is refused again, for
    // what it is.
    for _ in 0..2 {
        post_with_key(&app, &path, ADMIN, "k", json!({"amount": "-1"}))
            .problem(400, "InvalidAmount");
    }
    assert_eq!(app.balance(&customer), "0.00");
    post_with_key(&app, &path, ADMIN, "with space", json!({"amount": "1.00"}))
        .problem(400, "InvalidValue");
    // A token is shown once: requests that issue one take no key.
    post_with_key(
        &app,
        "/api/v1/principals",
        ADMIN,
        "p-1",
        json!({"role": "provider", "name": "P"}),
    )
    .problem(400, "InvalidValue");
    // Without a token the key changes nothing: 401 as ever.
    app.call_with_headers(
        "POST",
        &path,
        None,
        &[
            ("content-type", "application/json"),
            ("idempotency-key", "k"),
        ],
        b"{}".to_vec(),
    )
    .problem(401, "Unauthorized");
}

/// Routing comes before the token, key or no key: a request without a valid token is answered
/// as if it had none (404 for an unknown path, 405 for another method, then 401), and its key is
/// not looked at.
#[test]
fn a_key_does_not_put_the_token_before_routing() {
    let app = TestApp::new();
    for token in [None, Some("nm_not-a-token")] {
        for key in ["k", "with space"] {
            let headers = [
                ("content-type", "application/json"),
                ("idempotency-key", key),
            ];
            let send =
                |path: &str| app.call_with_headers("POST", path, token, &headers, b"{}".to_vec());
            let r = send("/api/v1/me");
            assert_eq!(r.header("allow"), Some("GET"));
            r.problem(405, "MethodNotAllowed");
            send("/api/v1/services/").problem(405, "MethodNotAllowed");
            send("/api/v1/no-such-route").problem(404, "NotFound");
            send("/api/v1/services").problem(401, "Unauthorized");
            send("/api/v1/principals").problem(401, "Unauthorized");
        }
    }
}

/// Routing comes before the key too: a key used before, or a malformed one, sent by an
/// authenticated caller to a path or method no route takes is answered 404 or 405, not 409 or
/// 400; on a route, the key is checked.
#[test]
fn a_key_on_a_request_no_route_takes_is_not_looked_at() {
    let app = TestApp::new();
    let (customer_id, _) = app.customer("individual");
    let path = format!("/api/v1/accounts/{customer_id}/top-ups");
    post_with_key(&app, &path, ADMIN, "used", json!({"amount": "1.00"})).expect(201);
    for key in ["used", "with space"] {
        post_with_key(
            &app,
            &format!("{path}/"),
            ADMIN,
            key,
            json!({"amount": "1.00"}),
        )
        .problem(404, "NotFound");
        let r = post_with_key(&app, "/api/v1/me", ADMIN, key, json!({}));
        assert_eq!(r.header("allow"), Some("GET"));
        r.problem(405, "MethodNotAllowed");
    }
    post_with_key(&app, &path, ADMIN, "used", json!({"amount": "2.00"}))
        .problem(409, "IdempotencyKeyReused");
    post_with_key(&app, &path, ADMIN, "with space", json!({"amount": "2.00"}))
        .problem(400, "InvalidValue");
}

/// A quote and a preview write nothing: a key sent with one is ignored — not checked, not
/// recorded, never conflicting — and the request is served outside any write transaction.
#[test]
fn a_key_on_a_read_only_post_is_ignored_and_records_nothing() {
    let app = TestApp::with_config(|n| (n == "allow_clock_override").then(|| "true".to_owned()));
    let (_, _, product) = app.published_product();
    let (_, customer) = app.funded_customer("100.00");
    let instance = app.order(&customer, &product);
    let quote = |region: &str, key: &str| {
        post_with_key(
            &app,
            "/api/v1/orders/quote",
            &customer,
            key,
            json!({"product_id": product, "region": region, "accept_eula": true}),
        )
    };
    quote("cn-hangzhou", "q-1").expect(200);
    quote("cn-hangzhou", "with space").expect(200);
    let preview = |period_start: &str| {
        post_with_key(
            &app,
            "/api/v1/billing/preview",
            &customer,
            "q-1",
            json!({"instance_id": instance, "period_start": period_start}),
        )
    };
    preview("2026-03-27T08:00:00Z").expect(200);
    // The same key for another request is no conflict: nothing was recorded under it.
    preview("2026-03-27T09:00:00Z").expect(200);
    assert_eq!(app.count("idempotency_keys"), 0);
}

/// A key stands for its request 24 hours (Stripe's window): a retry within them replays, the
/// same key after them is a new request, and the bill run purges what expired.
#[test]
fn a_key_expires_after_24_hours_and_bill_runs_purge_it() {
    let app = TestApp::with_config(|n| (n == "allow_clock_override").then(|| "true".to_owned()));
    let (customer_id, customer) = app.customer("individual");
    let path = format!("/api/v1/accounts/{customer_id}/top-ups");
    let top_up = || post_with_key(&app, &path, ADMIN, "daily", json!({"amount": "5.00"}));
    app.set_now(at("2026-03-27T08:00:00Z"));
    let first = top_up().expect(201);
    app.set_now(at("2026-03-28T07:59:59Z"));
    assert_eq!(top_up().expect(201).json(), first.json(), "a replay");
    assert_eq!(app.balance(&customer), "5.00");
    app.set_now(at("2026-03-28T08:00:00Z"));
    let second = top_up().expect(201);
    assert_ne!(second.json(), first.json(), "a new request");
    assert_eq!(app.balance(&customer), "10.00");
    // The bill run purges the records a day old, and only those.
    app.set_now(at("2026-03-29T07:00:00Z"));
    post_with_key(&app, &path, ADMIN, "fresh", json!({"amount": "1.00"})).expect(201);
    assert_eq!(app.count("idempotency_keys"), 2);
    app.set_now(at("2026-03-29T08:00:00Z"));
    app.post(
        "/api/v1/billing/runs",
        ADMIN,
        json!({"as_of": "2026-03-29T08:00:00Z"}),
    )
    .expect(200);
    assert_eq!(app.count("idempotency_keys"), 1, "the fresh one stays");
    let replay = post_with_key(&app, &path, ADMIN, "fresh", json!({"amount": "1.00"}));
    assert_eq!(replay.expect(201).json()["account"]["balance"], "11.00");
    assert_eq!(app.balance(&customer), "11.00");
}
