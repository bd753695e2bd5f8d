//! How long a PostgreSQL session of the app waits for a lock, and how long a transaction may
//! idle: bounded, so a transaction left open — a component that trapped halfway, its session
//! back in the host's pool — holds others up for a while, not for ever.

use nestmarket::platform::storage::{Backend, Dialect};
use serde_json::json;
use testkit::Market;
use testkit::native::{ADMIN, TestApp};

/// The app's sessions' `lock_timeout` and `idle_in_transaction_session_timeout`.
fn time_limits(app: &TestApp) -> (String, String) {
    let db = app.backend.open_db().unwrap();
    let rows = db
        .execute(
            "SELECT current_setting('lock_timeout'),
                    current_setting('idle_in_transaction_session_timeout')",
            &[],
        )
        .unwrap();
    (rows[0].text(0).unwrap(), rows[0].text(1).unwrap())
}

/// A session waits at most 10 s for a lock (as long as a statement waits on SQLite) and a
/// transaction idles at most 30 s — unless the server sets its own (`ALTER ROLE … SET`), which
/// stand. (SQLite has nothing to set: the app waits for its lock itself, `wait_while_busy`.)
#[test]
fn postgres_sessions_wait_for_a_lock_and_idle_in_a_transaction_for_a_bounded_time() {
    let app = TestApp::new();
    if app.dialect() == Dialect::Sqlite {
        return;
    }
    assert_eq!(time_limits(&app), ("10s".to_owned(), "30s".to_owned()));
    let app = TestApp::with_server_settings(&[("lock_timeout", "200ms")]);
    assert_eq!(time_limits(&app), ("200ms".to_owned(), "30s".to_owned()));
}

/// A request that waits for a lock past the time limit is 503 `StorageUnavailable` with
/// `Retry-After`, having changed nothing. On PostgreSQL, a session of the test's own holds the
/// provider's row (a transaction left open, say) while an operator sets the provider's rate,
/// which waits for it (200 ms, the server's limit here). On SQLite the rate is set.
#[test]
fn a_request_waiting_for_a_lock_past_the_time_limit_is_unavailable_and_changes_nothing() {
    let app = TestApp::with_server_settings(&[("lock_timeout", "200ms")]);
    let (provider_id, _) = app.provider();
    let held = app.holding(&format!(
        "SELECT 1 FROM principals WHERE id = '{provider_id}' FOR UPDATE"
    ));
    let before = app.snapshot();
    let set = app.put(
        &format!("/api/v1/principals/{provider_id}/commission"),
        ADMIN,
        json!({"rate": "0.05"}),
    );
    if held.holds() {
        assert_eq!(set.header("retry-after"), Some("1"), "{}", set.text());
        set.problem(503, "StorageUnavailable");
        assert_eq!(app.snapshot(), before, "nothing changed");
    } else {
        set.expect(200);
    }
    drop(held);
}
