//! Races of a check and the write it guards, on both engines: each check is made again where
//! the write commits, behind a lock the other side takes too. On PostgreSQL a session of the
//! test's own holds the first request halfway while the second runs; on SQLite the two run at
//! once, in whatever order they come.

use serde_json::json;
use testkit::holding::until;
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, Response, at, unix};

use super::{PERIOD, push_one, usage_records};
use crate::console::Browser;
use crate::security::from;

/// A provider changes an item's reporting method while a push of it is in flight (a product
/// in self-test): the push is stored and the change refused (409 `ReportingMethodLocked`: the
/// test records pin the method), or the change made and the push refused (400
/// `ItemNotReportedByProvider`) — never both, which would price the provider's records and the
/// platform's of the same windows. On PostgreSQL the push is held (by a session of the test's
/// own) when the change arrives, twice: behind a bill run of its instance, before it reads how
/// its item is reported (the change goes first); and behind another push of its record, after
/// (the change waits for it).
#[test]
fn a_reporting_method_changed_while_a_push_is_in_flight_is_refused_or_the_push_is() {
    change_while_pushing(|instance| {
        format!("SELECT 1 FROM billing_cursors WHERE instance_id = '{instance}' FOR NO KEY UPDATE")
    });
    change_while_pushing(|instance| {
        format!(
            "INSERT INTO usage_records (instance_id, item_code, source, start_time, end_time,
                                        value, scale, period_start, request_id, received_at)
             VALUES ('{instance}', 'Frequency', 'service_provider', {start}, {end}, 3, 0,
                     {start}, 'req-held', '2026-03-27T08:30:00Z')",
            start = unix(PERIOD),
            end = unix(PERIOD) + 360
        )
    });
}

/// One play of the race: the push of a test instance held by what `holding` (of the instance)
/// runs, the change of its item's method arriving meanwhile, then the holding rolled back.
fn change_while_pushing(holding: impl Fn(&str) -> String) {
    let app = TestApp::new();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], false);
    let instance = app.order(&provider, &product);
    app.set_now(at("2026-03-27T08:30:00Z"));
    let mut held = app.holding(&holding(&instance));
    let reporting = format!("/api/v1/products/{product}/billable-items/Frequency/reporting");
    let (pushed, changed) = std::thread::scope(|s| {
        let push = s.spawn(|| push_one(&app, &provider, &instance, unix(PERIOD), 3));
        held.until_waiting(1);
        let change = s.spawn(|| {
            app.put(
                &reporting,
                &provider,
                json!({"method": "compute_nest", "source": "bill"}),
            )
        });
        until("the method changed, or waiting for the push", || {
            change.is_finished() || held.waiting() >= 2
        });
        drop(held);
        (push.join().unwrap(), change.join().unwrap())
    });
    let stored = usage_records(&app, &instance);
    if changed.status == 200 {
        pushed.problem(400, "ItemNotReportedByProvider");
        assert!(stored.is_empty(), "{stored:?}");
    } else {
        changed.problem(409, "ReportingMethodLocked");
        pushed.expect(200);
        assert_eq!(stored.len(), 1, "{stored:?}");
    }
}

/// Two different pushes sent at once under one `Idempotency-Key`: one is stored, the other
/// refused (409 `IdempotencyKeyReused`) having stored nothing — the key stands for one request,
/// and the second never takes effect only to be told so. On PostgreSQL the first push is held
/// behind a bill run of its instance (a session of the test's own holding the cursor), its key
/// taken, when the second arrives.
#[test]
fn two_different_pushes_under_one_key_at_once_take_effect_once() {
    let app = TestApp::new();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = app.funded_customer("100.00");
    let instances: Vec<String> = (0..2).map(|_| app.order(&customer, &product)).collect();
    app.set_now(at("2026-03-27T08:30:00Z"));
    let mut held = app.holding(&format!(
        "SELECT 1 FROM billing_cursors WHERE instance_id = '{}' FOR NO KEY UPDATE",
        instances[0]
    ));
    let push = |instance: &str| {
        let record = json!({"StartTime": unix(PERIOD), "EndTime": unix(PERIOD) + 360,
            "Entities": [{"Key": "Frequency", "Value": "3"}]});
        let body = json!({"ServiceInstanceId": instance,
            "Metering": json!([record]).to_string()});
        app.call_with_headers(
            "POST",
            "/api/v1/metering",
            Some(&provider),
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "push-0001"),
            ],
            body.to_string().into_bytes(),
        )
    };
    let answers = std::thread::scope(|s| {
        let first = s.spawn(|| push(&instances[0]));
        held.until_waiting(1);
        let second = s.spawn(|| push(&instances[1]));
        until("the second push answered, or waiting", || {
            second.is_finished() || held.waiting() >= 2
        });
        held.commit();
        [first.join().unwrap(), second.join().unwrap()]
    });
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert!(
        statuses.contains(&200) && statuses.contains(&409),
        "{statuses:?}"
    );
    for (answer, instance) in answers.into_iter().zip(&instances) {
        let stored = usage_records(&app, instance);
        if answer.status == 200 {
            assert_eq!(stored.len(), 1, "{stored:?}");
        } else {
            answer.problem(409, "IdempotencyKeyReused");
            assert!(stored.is_empty(), "{instance}: {stored:?}");
        }
    }
}

/// A principal disabled while it signs in to the console keeps no session: the sign-in is
/// refused (401), or the session it opened is ended with the others — none works again once an
/// operator enables the principal. On PostgreSQL the disable (a session of the test's own) has
/// disabled the principal and ended its sessions, not yet committed, when the sign-in arrives;
/// on SQLite the operator disables it once the sign-in is answered.
#[test]
fn a_principal_disabled_while_it_signs_in_keeps_no_session() {
    let app = TestApp::new();
    let (id, token) = app.provider();
    let mut held = app.holding(&format!(
        "UPDATE principals SET disabled_at = '2026-03-27T08:00:00Z' WHERE id = '{id}';
         DELETE FROM console_sessions WHERE principal_id = '{id}'"
    ));
    let disabled_by_the_test = held.holds();
    let mut browser = Browser::new(&app);
    let signed_in = std::thread::scope(|s| {
        let sign_in = s.spawn(|| browser.sign_in(&token));
        until("the sign-in answered, or waiting for the disable", || {
            sign_in.is_finished() || held.waiting() >= 1
        });
        held.commit();
        sign_in.join().unwrap()
    });
    let principal = format!("/api/v1/principals/{id}");
    if !disabled_by_the_test {
        app.post(&format!("{principal}/disable"), ADMIN, json!({}))
            .expect(200);
    }
    assert!(
        [303, 401].contains(&signed_in.status),
        "{}",
        signed_in.text()
    );
    app.post(&format!("{principal}/enable"), ADMIN, json!({}))
        .expect(200);
    let after = browser.get("/products").expect(303);
    assert_eq!(after.header("location"), Some("/sign-in?next=%2Fproducts"));
}

/// Failed authentications from one address at once, with one failure to go before the limit:
/// one is 401, the others 429 `TooManyRequests` — each failure is counted with a count of its
/// own, so no more than ten in a minute are answered as failures, however many ran together.
/// On PostgreSQL the three attempts wait to count their failure behind a session of the test's
/// own holding the address's count, each having found nine before it authenticated.
#[test]
fn failed_authentications_at_once_past_the_limit_are_too_many() {
    let app = TestApp::new();
    for port in 0..9 {
        from(&app, &format!("10.0.0.7:{}", 5000 + port), "nm_guess").problem(401, "Unauthorized");
    }
    let mut held = app.holding("SELECT 1 FROM auth_failures WHERE client = '10.0.0.7' FOR UPDATE");
    let app = &app;
    let answers: Vec<Response> = std::thread::scope(|s| {
        let attempts: Vec<_> = (0..3)
            .map(|n| s.spawn(move || from(app, &format!("10.0.0.7:{}", 6000 + n), "nm_guess")))
            .collect();
        held.until_waiting(3);
        held.commit();
        attempts.into_iter().map(|a| a.join().unwrap()).collect()
    });
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [401, 429, 429]);
}
