//! docs/RULES.md R8.20 through the HTTP handlers: a bill run that leaves a customer's balance
//! below zero starts its arrears; past `arrears_grace_hours` the next bill run suspends its
//! running instances — no resource fees, no usage — and the top-up that brings the balance back
//! to zero or above resumes them. A customer below zero starts nothing.

use nestmarket::platform::storage::{Backend, transaction};
use serde_json::{Value, json};
use testkit::engine::{Engine, engine};
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at, cents, str_of, unix, usage};

/// A provider's hourly product (running time at 1.00 an hour and a pushed `Frequency`, its
/// template's resources at 1.60 an hour) and a customer topped up with 5.00 who orders two
/// instances at 08:00 on March 27th, stopping one at once.
struct Indebted {
    app: TestApp,
    provider: String,
    customer_id: String,
    customer: String,
    product: String,
    running: String,
    stopped: String,
}

fn indebted(grace_hours: &'static str) -> Indebted {
    let app = TestApp::with_config(move |name| match name {
        "allow_clock_override" => Some("true".to_owned()),
        "arrears_grace_hours" => Some(grace_hours.to_owned()),
        _ => None,
    });
    let items = [Item::running_time("1.00"), Item::frequency()];
    let (provider, product) = app.product_with_items("hour", &items, true);
    let (customer_id, customer) = app.funded_customer("5.00");
    let running = app.order(&customer, &product);
    let stopped = app.order(&customer, &product);
    app.act(&customer, &stopped, "stop");
    Indebted {
        app,
        provider,
        customer_id,
        customer,
        product,
        running,
        stopped,
    }
}

impl Indebted {
    fn run(&self, instant: &str) -> Value {
        self.app.set_now(at(instant));
        self.app.bill_run(instant)
    }

    fn instance(&self, id: &str) -> Value {
        let path = format!("/api/v1/instances/{id}");
        self.app.get(&path, &self.customer).expect(200).json()
    }

    fn act(&self, id: &str, action: &str) -> testkit::Response {
        self.app.post(
            &format!("/api/v1/instances/{id}/actions"),
            &self.customer,
            json!({ "action": action }),
        )
    }

    /// The running instance's bill of the hour starting at `start`.
    fn bill_of(&self, start: &str) -> Value {
        self.app
            .bills(&self.customer, Some(&self.running))
            .into_iter()
            .find(|b| b["period_start"] == start)
            .unwrap_or_else(|| panic!("no bill of {start}"))
    }
}

/// The world of [`indebted`] with a day's grace, taken into arrears at 11:00 on March 27th and
/// suspended by the first run from the deadline on, 11:00 on the 28th.
fn suspended() -> Indebted {
    let w = indebted("24");
    // Two hours at 2.60 take 5.00 to -0.20: arrears from this run, suspension a day later.
    let first = w.run("2026-03-27T11:00:00Z");
    assert_eq!(first["suspended"], json!([]));
    let account = w.app.account(&w.customer);
    assert_eq!(account["balance"], "-0.20");
    assert_eq!(
        account["arrears"],
        json!({"since": "2026-03-27T11:00:00Z", "suspension_deadline": "2026-03-28T11:00:00Z"})
    );
    // Usage of the 10:00 hour arrives before any suspension: it is the instance's.
    w.app.set_now(at("2026-03-28T10:30:00Z"));
    w.app
        .push_usage(
            &w.provider,
            &w.running,
            &[usage(
                "2026-03-28T10:00:00Z",
                "2026-03-28T10:20:00Z",
                "Frequency",
                10,
            )],
        )
        .expect(200);
    // A run before the deadline suspends nothing; the first from it on does.
    assert_eq!(w.run("2026-03-28T10:59:59Z")["suspended"], json!([]));
    let run = w.run("2026-03-28T11:00:00Z");
    assert_eq!(run["suspended"], json!([w.running]), "{run}");
    w
}

#[test]
fn a_customer_in_arrears_past_the_grace_has_its_instances_suspended_without_fees_or_usage() {
    let w = suspended();
    let instance = w.instance(&w.running);
    assert_eq!(instance["status"], "suspended");
    assert_eq!(
        instance["suspensions"],
        json!([{"suspended_at": "2026-03-28T11:00:00Z", "resumed_at": null}])
    );
    let last = instance["running_intervals"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["ended_at"], unix("2026-03-28T11:00:00Z"));
    // The stopped instance stays stopped, and starts no more than the suspended one; the
    // suspended one does not stop; nothing is ordered.
    assert_eq!(w.instance(&w.stopped)["status"], "stopped");
    w.act(&w.stopped, "start").problem(402, "AccountInArrears");
    w.act(&w.running, "start").problem(402, "AccountInArrears");
    w.act(&w.running, "stop")
        .problem(409, "InvalidInstanceAction");
    let order = json!({"product_id": w.product, "region": "cn-hangzhou", "accept_eula": true});
    w.app
        .post("/api/v1/orders", &w.customer, order)
        .problem(402, "AccountInArrears");
    // A window inside the suspension is no usage of the instance.
    w.app.set_now(at("2026-03-28T12:40:00Z"));
    let before = w.app.snapshot();
    let refused = w
        .app
        .push_usage(
            &w.provider,
            &w.running,
            &[usage(
                "2026-03-28T12:00:00Z",
                "2026-03-28T12:30:00Z",
                "Frequency",
                5,
            )],
        )
        .problem(409, "InstanceSuspended");
    assert_eq!(refused["errors"][0]["field"], "Metering[0]");
    assert_eq!(w.app.snapshot(), before);
    // The hours before the suspension are billed with their resources; those inside it with
    // none, and no running time.
    w.run("2026-03-28T15:00:00Z");
    assert_eq!(w.bill_of("2026-03-28T10:00:00Z")["resource_fees"], "1.60");
    for hour in [
        "2026-03-28T11:00:00Z",
        "2026-03-28T12:00:00Z",
        "2026-03-28T13:00:00Z",
    ] {
        let bill = w.bill_of(hour);
        assert_eq!(
            (&bill["resource_fees"], &bill["total"]),
            (&json!("0.00"), &json!("0.00")),
            "{bill}"
        );
    }
}

#[test]
fn a_top_up_to_zero_or_above_ends_the_arrears_and_resumes_what_they_suspended() {
    let w = suspended();
    // A top-up that leaves the balance below zero ends nothing.
    let owed = -cents(&w.app.balance(&w.customer));
    w.app.set_now(at("2026-03-28T15:30:00Z"));
    w.app.top_up(&w.customer_id, "0.01");
    assert_eq!(w.instance(&w.running)["status"], "suspended");
    assert!(!w.app.account(&w.customer)["arrears"].is_null());
    // One to exactly zero ends the arrears: the instance runs again from the top-up.
    w.app.set_now(at("2026-03-28T16:00:00Z"));
    let rest = format!("{}.{:02}", (owed - 1) / 100, (owed - 1) % 100);
    let account = w.app.top_up(&w.customer_id, &rest);
    assert_eq!(
        (&account["balance"], &account["arrears"]),
        (&json!("0.00"), &Value::Null)
    );
    let resumed = w.instance(&w.running);
    assert_eq!(resumed["status"], "running");
    assert_eq!(
        resumed["suspensions"],
        json!([{"suspended_at": "2026-03-28T11:00:00Z", "resumed_at": "2026-03-28T16:00:00Z"}])
    );
    let last = resumed["running_intervals"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last,
        json!({"started_at": unix("2026-03-28T16:00:00Z"), "ended_at": null})
    );
    // The stopped instance may start again, and the hour from the top-up on is charged.
    assert_eq!(
        w.act(&w.stopped, "start").expect(200).json()["status"],
        "running"
    );
    w.run("2026-03-28T18:00:00Z");
    assert_eq!(w.bill_of("2026-03-28T16:00:00Z")["resource_fees"], "1.60");
}

#[test]
fn with_no_grace_the_run_that_takes_a_balance_below_zero_suspends_at_once_and_a_credit_resumes() {
    let w = indebted("0");
    let run = w.run("2026-03-27T11:00:00Z");
    assert_eq!(run["suspended"], json!([w.running]), "{run}");
    assert_eq!(
        w.app.account(&w.customer)["arrears"]["suspension_deadline"],
        "2026-03-27T11:00:00Z"
    );
    // A credit note that brings the balance back to zero ends the arrears as a top-up would.
    let bill = str_of(&w.bill_of("2026-03-27T09:00:00Z")["id"]);
    w.app.set_now(at("2026-03-27T11:30:00Z"));
    w.app.credit(&bill, "0.20", "a slow start").expect(201);
    assert_eq!(w.app.account(&w.customer)["arrears"], Value::Null);
    assert_eq!(w.instance(&w.running)["status"], "running");
    // The operator may release a suspended instance; nothing resumes it afterwards.
    w.run("2026-03-27T13:00:00Z");
    assert_eq!(w.instance(&w.running)["status"], "suspended");
    w.app
        .post(
            &format!("/api/v1/instances/{}/actions", w.running),
            ADMIN,
            json!({"action": "release"}),
        )
        .expect(200);
    w.app.top_up(&w.customer_id, "100.00");
    let released = w.instance(&w.running);
    assert_eq!(released["status"], "released");
    assert_eq!(released["suspensions"][1]["resumed_at"], Value::Null);
}

/// The run that would suspend a customer, while a top-up to it is under way (its account locked
/// by the posting, the balance back above zero but not committed yet): on PostgreSQL the run
/// waits for the account, then finds the arrears ended and suspends nothing; on SQLite the two
/// take turns whole. Either way no instance of an account out of arrears is left suspended.
#[test]
fn a_run_waits_for_a_top_up_under_way_and_suspends_nothing_it_paid_for() {
    let w = indebted("24");
    w.run("2026-03-27T11:00:00Z");
    // Everything closed by the deadline is billed first (a longer grace suspends nothing yet),
    // so that the racing run has nothing left to do but suspend.
    let deadline = "2026-03-28T11:00:00Z";
    w.app.redeploy(|name| match name {
        "allow_clock_override" => Some("true".to_owned()),
        "arrears_grace_hours" => Some("48".to_owned()),
        _ => None,
    });
    w.run(deadline);
    w.app
        .redeploy(|name| (name == "allow_clock_override").then(|| "true".to_owned()));
    let customer = w.customer_id.as_str();
    let db = w.app.backend.open_db().unwrap();
    let posting = "UPDATE accounts SET balance_cents = 100000, arrears_since = NULL
                   WHERE customer_id = ?";
    match engine() {
        Engine::Sqlite => {
            transaction(db.as_ref(), |db| db.execute(posting, &[customer.into()])).unwrap();
            w.run(deadline);
        }
        Engine::Postgres => std::thread::scope(|s| {
            transaction(db.as_ref(), |db| {
                db.execute(posting, &[customer.into()])?;
                let run = s.spawn(|| w.run(deadline));
                // The run is waiting on the account this transaction holds.
                let watcher = w.app.backend.open_db().unwrap();
                eventually("the run waiting for the account", || {
                    let waiting = watcher.execute(
                        "SELECT COUNT(*) FROM pg_stat_activity
                         WHERE wait_event_type = 'Lock' AND datname = current_database()",
                        &[],
                    );
                    waiting.is_ok_and(|rows| rows[0].int(0).unwrap_or(0) > 0)
                });
                assert!(!run.is_finished());
                Ok::<_, nestmarket::platform::storage::StorageError>(())
            })
            .unwrap();
        }),
    }
    let instance = w.instance(&w.running);
    assert_eq!(instance["status"], "running", "{instance}");
    assert_eq!(instance["suspensions"], json!([]), "{instance}");
}

/// A push whose validation found the instance running, while a run suspends it: the push's
/// window lies inside the suspension, so it is refused (409 `InstanceSuspended`), nothing
/// stored. On PostgreSQL the suspension (a session of the test's own) holds the instance's row
/// when the push arrives, and commits while the push waits to store its record; on SQLite there
/// is no race — the push comes first, and is the instance's usage.
#[test]
fn a_push_that_a_suspension_overtakes_stores_nothing_inside_it() {
    let w = indebted("24");
    let mut held = w.app.holding(&format!(
        "SELECT 1 FROM instances WHERE id = '{}' FOR UPDATE",
        w.running
    ));
    w.app.set_now(at("2026-03-27T11:40:00Z"));
    let window = usage(
        "2026-03-27T11:00:00Z",
        "2026-03-27T11:30:00Z",
        "Frequency",
        3,
    );
    let pushed = std::thread::scope(|s| {
        let push = s.spawn(|| w.app.push_usage(&w.provider, &w.running, &[window]));
        held.until_waiting(1);
        held.run(&format!(
            "UPDATE instances SET status = 'suspended' WHERE id = '{0}';
             INSERT INTO instance_suspensions (instance_id, suspended_at) VALUES ('{0}', {1})",
            w.running,
            unix("2026-03-27T11:00:00Z")
        ));
        held.commit();
        push.join().unwrap()
    });
    let stored = w.app.usage_totals(&w.provider, &w.running);
    if engine() == Engine::Postgres {
        pushed.problem(409, "InstanceSuspended");
        assert_eq!(stored, json!([]), "nothing stored");
    } else {
        pushed.expect(200);
        assert_eq!(stored.as_array().map(Vec::len), Some(1), "{stored}");
    }
}

/// Polls `done` until it holds, for at most 20 s.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(
            std::time::Instant::now() < give_up,
            "{what}: not within 20 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
