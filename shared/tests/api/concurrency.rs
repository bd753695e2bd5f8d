//! Races on the database, on both engines: SQLite serializes every writer, PostgreSQL runs them
//! at once and the app's locks make them take turns where it matters (docs/ARCHITECTURE.md,
//! Concurrency). Each test asserts what must hold whatever the interleaving.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use nestmarket::error::ApiError;
use nestmarket::platform::outbound::native::NativeOutbound;
use nestmarket::platform::storage::native::NativeBackend;
use nestmarket::platform::storage::{Backend, Dialect, Storage, transaction};
use nestmarket::{Principal, RunReport};
use serde_json::json;
use testkit::engine::{Engine, PostgresSchema, engine};
use testkit::holding::until;
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at, cents, str_of, unix};

/// The hour the races are about; it closes for billing at 10:00, once its late data is in.
const PERIOD: &str = "2026-03-27T08:00:00Z";
const CLOSES: &str = "2026-03-27T10:00:00Z";

/// The bill run the schedule starts as the hour closes, whatever the app's clock says: a push
/// whose clock read fell just before the close races it.
fn bill_run_at_the_close(app: &TestApp) -> RunReport {
    let storage = Storage::new(app.backend.clone());
    nestmarket::bill_run(
        storage.db().unwrap(),
        &NativeOutbound,
        &app.config(),
        at(CLOSES),
        at(CLOSES),
        &Principal::built_in_operator(),
    )
    .unwrap()
}

/// Pushes of an hour that race its bill run: every record the API acknowledged is in the
/// period's bill, and every push it refused (`PeriodClosed`, the period billed meanwhile) stored
/// nothing — no usage is lost to a billed period, none is billed after its bill.
#[test]
fn pushes_racing_the_bill_run_of_their_period_are_billed_or_refused_never_lost() {
    let app = TestApp::new();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = app.funded_customer("100000.00");
    let instances: Vec<String> = (0..4).map(|_| app.order(&customer, &product)).collect();
    // A minute before the 08:00 hour closes: it still takes late data, by the clock.
    app.set_now(at("2026-03-27T09:59:00Z"));
    let accepted: Vec<AtomicU64> = instances.iter().map(|_| AtomicU64::new(0)).collect();
    let pushes: Vec<AtomicU64> = instances.iter().map(|_| AtomicU64::new(0)).collect();
    let billed = AtomicBool::new(false);
    std::thread::scope(|s| {
        for (i, instance) in instances.iter().enumerate() {
            let (app, provider, accepted, pushes) = (&app, &provider, &accepted[i], &pushes[i]);
            s.spawn(move || {
                // One-record pushes, each window its own: 6 minutes from second k of the hour.
                for k in 0..3_000 {
                    let start = unix(PERIOD) + k;
                    let value = k % 7 + 1;
                    let record = json!({"StartTime": start, "EndTime": start + 360,
                        "Entities": [{"Key": "Frequency", "Value": value.to_string()}]});
                    let response = app.push_usage(provider, instance, &[record]);
                    pushes.fetch_add(1, Ordering::SeqCst);
                    match response.status {
                        200 => {
                            accepted.fetch_add(value.unsigned_abs(), Ordering::SeqCst);
                        }
                        409 => {
                            response.problem(409, "PeriodClosed");
                            return;
                        }
                        other => panic!("push answered {other}: {}", response.text()),
                    }
                }
                panic!("3,000 pushes and the period was never billed");
            });
        }
        s.spawn(|| {
            // Once every pusher is under way, the run bills the hour in the middle of them.
            while pushes.iter().any(|p| p.load(Ordering::SeqCst) < 20) {
                std::thread::yield_now();
            }
            let report = bill_run_at_the_close(&app);
            assert_eq!(report.bills_written, 4, "{report:?}");
            billed.store(true, Ordering::SeqCst);
        });
    });
    assert!(billed.load(Ordering::SeqCst));
    for (instance, accepted) in instances.iter().zip(&accepted) {
        let accepted = accepted.load(Ordering::SeqCst);
        let bills = app.bills(ADMIN, Some(instance));
        assert_eq!(bills.len(), 1, "{bills:?}");
        let line = &bills[0]["lines"][0];
        assert_eq!(line["code"], "Frequency");
        assert_eq!(
            str_of(&line["quantity"]).parse::<u64>().unwrap(),
            accepted,
            "the bill of {instance} counts every acknowledged record, and only those"
        );
        let totals = app.usage_totals(ADMIN, instance);
        assert_eq!(
            totals[0]["quantity"].as_str(),
            Some(accepted.to_string().as_str()),
            "the stored usage of {instance} is what was acknowledged: {totals}"
        );
    }
}

/// Top-ups of one customer racing the bill run that deducts its instances' bills: the balance
/// is the sum of the ledger, every entry there once.
#[test]
fn top_ups_racing_a_bill_run_keep_the_balance_the_sum_of_the_ledger() {
    let app = TestApp::new();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (customer_id, customer) = app.funded_customer("10.00");
    let instances: Vec<String> = (0..30).map(|_| app.order(&customer, &product)).collect();
    app.set_now(at("2026-03-27T08:31:00Z"));
    for instance in &instances {
        let record = json!({"StartTime": unix(PERIOD), "EndTime": unix(PERIOD) + 1800,
            "Entities": [{"Key": "Frequency", "Value": "3"}]});
        app.push_usage(&provider, instance, &[record]).expect(200);
    }
    app.set_now(at(CLOSES));
    let barrier = Barrier::new(3);
    std::thread::scope(|s| {
        s.spawn(|| {
            barrier.wait();
            assert_eq!(app.bill_run(CLOSES)["bills_written"], 30);
        });
        for _ in 0..2 {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..15 {
                    app.top_up(&customer_id, "1.00");
                }
            });
        }
    });
    let ledger = app.ledger(&customer);
    // The first top-up, thirty more, and a deduction per bill.
    assert_eq!(ledger.len(), 1 + 30 + 30);
    let sum: i64 = ledger.iter().map(|e| cents(&str_of(&e["amount"]))).sum();
    assert_eq!(cents(&app.balance(&customer)), sum);
    let billed: i64 = app
        .bills(&customer, None)
        .iter()
        .map(|b| cents(&str_of(&b["total"])))
        .sum();
    assert_eq!(sum, 1_000 + 3_000 - billed);
    // Entries are listed newest first; each balance_after follows from the one before it.
    let mut balance = 0;
    for entry in ledger.iter().rev() {
        balance += cents(&str_of(&entry["amount"]));
        assert_eq!(cents(&str_of(&entry["balance_after"])), balance, "{entry}");
    }
}

/// Hosts starting together on an empty database: each request's first use of the database
/// migrates it, once, and every one of them then finds the whole schema.
#[test]
fn many_connections_migrating_an_empty_database_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let schema;
    let backend = match engine() {
        Engine::Sqlite => NativeBackend::new(dir.path().join("db.sqlite")),
        Engine::Postgres => {
            schema = PostgresSchema::new();
            NativeBackend::postgres(schema.url())
        }
    };
    let barrier = Barrier::new(8);
    std::thread::scope(|s| {
        for _ in 0..8 {
            let (backend, barrier) = (backend.clone(), &barrier);
            s.spawn(move || {
                barrier.wait();
                let storage = Storage::new(backend);
                let db = storage.db().expect("migrated, or found migrated");
                db.execute("SELECT COUNT(*) FROM usage_records", &[])
                    .expect("the schema is whole");
            });
        }
    });
    let versions = |db: &dyn nestmarket::platform::storage::Database| {
        let rows = db
            .execute("SELECT COUNT(*), MAX(version) FROM schema_migrations", &[])
            .unwrap();
        (rows[0].int(0).unwrap(), rows[0].int(1).unwrap())
    };
    // Each version applied once: as a database migrated by one connection alone has them.
    let alone = TestApp::new();
    assert_eq!(
        versions(backend.open_db().unwrap().as_ref()),
        versions(alone.backend.open_db().unwrap().as_ref())
    );
}

/// Two transactions that lock the same two rows in opposite orders: on PostgreSQL the database
/// breaks the deadlock by undoing one (40P01), and `transaction` runs that one again — both
/// succeed. (On SQLite the second waits at `BEGIN IMMEDIATE`: there is no deadlock to break.)
#[test]
fn a_transaction_undone_to_break_a_deadlock_runs_again() {
    let app = TestApp::new();
    let ids: Vec<String> = (0..2).map(|_| app.principal("provider", None).0).collect();
    let both_hold_one = Barrier::new(2);
    let attempts = AtomicUsize::new(0);
    let postgres = app.dialect() == Dialect::Postgres;
    std::thread::scope(|s| {
        for order in [[0, 1], [1, 0]] {
            let (app, ids, both_hold_one, attempts) = (&app, &ids, &both_hold_one, &attempts);
            s.spawn(move || {
                let storage = Storage::new(app.backend.clone());
                let mut first = true;
                transaction(storage.db().unwrap(), |db| {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    let rename = |i: usize| {
                        db.execute(
                            "UPDATE principals SET name = 'renamed' WHERE id = ?",
                            &[ids[i].as_str().into()],
                        )
                    };
                    rename(order[0])?;
                    if postgres && first {
                        first = false;
                        both_hold_one.wait();
                    }
                    rename(order[1])?;
                    Ok::<_, ApiError>(())
                })
                .expect("done, on the first try or the next");
            });
        }
    });
    // On PostgreSQL one of the two was undone once and ran again.
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        if postgres { 3 } else { 2 }
    );
}

/// The principal id of a token's holder.
fn id_of(app: &TestApp, token: &str) -> String {
    str_of(&app.get("/api/v1/me", token).expect(200).json()["id"])
}

/// When every period of March 2026 (the default billing time zone, Asia/Shanghai) is closed.
const MARCH_CLOSES: &str = "2026-04-01T16:00:00Z";

/// An operator sets a provider's rate for March while March closes: the provider's statement is
/// written at the rate its history says for March — the new one, or the old one and the rate
/// refused (409 `MonthClosed`), whichever comes first; never a statement at the old rate beside
/// a history that says otherwise. On PostgreSQL the close is held where it links the statement
/// to its bills, after it read the rate, and the rate is set meanwhile.
#[test]
fn a_rate_set_while_its_month_closes_is_the_rate_of_its_statement_or_refused() {
    let app = TestApp::with_config(|name| (name == "commission_rate").then(|| "0.10".to_owned()));
    let (provider, product) = app.product_with_items("hour", &[Item::running_time("1.00")], true);
    let provider_id = id_of(&app, &provider);
    let (_, customer) = app.funded_customer("10000.00");
    app.order(&customer, &product);
    app.set_now(at(MARCH_CLOSES));
    app.bill_run(MARCH_CLOSES);
    let mut held = app.holding(&format!(
        "SELECT 1 FROM bills WHERE provider_id = '{provider_id}' FOR UPDATE"
    ));
    let path = format!("/api/v1/principals/{provider_id}/commission");
    let (closed, set) = std::thread::scope(|s| {
        let close = s.spawn(|| {
            app.post(
                "/api/v1/settlements/runs",
                ADMIN,
                json!({"month": "2026-03"}),
            )
        });
        held.until_waiting(1);
        let set = s.spawn(|| {
            app.put(
                &path,
                ADMIN,
                json!({"rate": "0.05", "effective_from": "2026-03"}),
            )
        });
        until("the rate set, or waiting for the close", || {
            set.is_finished() || held.waiting() >= 2
        });
        held.commit();
        (close.join().unwrap(), set.join().unwrap())
    });
    closed.expect(200);
    let statement = &app
        .get(
            &format!("/api/v1/settlements?month=2026-03&provider_id={provider_id}"),
            ADMIN,
        )
        .expect(200)
        .json()["items"][0];
    assert_eq!(statement["status"], "closed", "{statement}");
    match set.status {
        200 => assert_eq!(statement["rate"], "0.05", "the history says 5 % for March"),
        _ => {
            set.problem(409, "MonthClosed");
            assert_eq!(statement["rate"], "0.1");
        }
    }
}

/// Two test orders of a product with one test instance to go: one is placed, the other refused
/// (409 `TestInstanceLimit`), whatever the interleaving. On PostgreSQL both are held where they
/// write their order (behind the provider's row, which the order references), after the first
/// has counted the product's test instances.
#[test]
fn test_orders_at_once_keep_to_the_test_instance_limit() {
    let app = TestApp::with_config(|name| (name == "test_instance_limit").then(|| "1".to_owned()));
    let (provider, product) = app.product_with_items("hour", &[Item::running_time("1.00")], false);
    let mut held = app.holding(&format!(
        "SELECT 1 FROM principals WHERE id = '{}' FOR UPDATE",
        id_of(&app, &provider)
    ));
    let body = json!({"product_id": product, "region": "cn-hangzhou", "accept_eula": true});
    let placed = std::thread::scope(|s| {
        let orders: Vec<_> = (0..2)
            .map(|_| s.spawn(|| app.post("/api/v1/orders", &provider, body.clone())))
            .collect();
        held.until_waiting(2);
        held.commit();
        orders
            .into_iter()
            .map(|o| o.join().unwrap())
            .collect::<Vec<_>>()
    });
    let statuses: Vec<u16> = placed.iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&201) && statuses.contains(&409),
        "{statuses:?}"
    );
    let refused = placed.into_iter().find(|r| r.status == 409).unwrap();
    refused.problem(409, "TestInstanceLimit");
    assert_eq!(app.count("instances"), 1);
}

/// An hourly instance ordered at 08:00, billed by the running hour, and the customer's id: its
/// 08:00 hour closes at 10:00 ([`CLOSES`]).
fn running_instance(app: &TestApp) -> (String, String) {
    let (_, product) = app.product_with_items("hour", &[Item::running_time("1.00")], true);
    let (customer_id, customer) = app.funded_customer("100.00");
    (app.order(&customer, &product), customer_id)
}

fn write_off(app: &TestApp, instance: &str) -> testkit::Response {
    app.post(
        &format!("/api/v1/instances/{instance}/write-offs"),
        ADMIN,
        json!({"period_start": PERIOD, "reason": "its metrics answer nothing"}),
    )
}

/// An operator writes off the period a bill run is billing: the write-off is refused as billed
/// (409 `PeriodAlreadyBilled`) or the run leaves the period to it — never a 500. On PostgreSQL
/// the run is held where it deducts the bill (behind the customer's account), its cursor moved
/// and its bill written, when the write-off arrives.
#[test]
fn a_write_off_racing_the_bill_run_of_its_period_is_refused_as_billed() {
    let app = TestApp::new();
    let (instance, customer_id) = running_instance(&app);
    app.set_now(at(CLOSES));
    let mut held = app.holding(&format!(
        "SELECT 1 FROM accounts WHERE customer_id = '{customer_id}' FOR UPDATE"
    ));
    let (run, written_off) = std::thread::scope(|s| {
        let run = s.spawn(|| app.bill_run(CLOSES));
        held.until_waiting(1);
        let written_off = s.spawn(|| write_off(&app, &instance));
        until("the write-off answered, or waiting for the run", || {
            written_off.is_finished() || held.waiting() >= 2
        });
        held.commit();
        (run.join().unwrap(), written_off.join().unwrap())
    });
    let bills = app.bills(ADMIN, Some(&instance));
    match written_off.status {
        201 => assert!(bills.is_empty(), "{run}"),
        _ => {
            written_off.problem(409, "PeriodAlreadyBilled");
            assert_eq!(bills.len(), 1, "{run}");
        }
    }
}

/// Two operators write off the same period at once: one writes it off (201), the other gets
/// that write-off (200) — never a 500. On PostgreSQL both arrive while a bill run (a session of
/// the test's own) holds the instance's cursor.
#[test]
fn two_write_offs_of_one_period_at_once_write_it_off_once() {
    let app = TestApp::new();
    let (instance, _) = running_instance(&app);
    app.set_now(at(CLOSES));
    let mut held = app.holding(&format!(
        "SELECT 1 FROM billing_cursors WHERE instance_id = '{instance}' FOR NO KEY UPDATE"
    ));
    let answers = std::thread::scope(|s| {
        let both: Vec<_> = (0..2)
            .map(|_| s.spawn(|| write_off(&app, &instance)))
            .collect();
        held.until_waiting(2);
        held.commit();
        both.into_iter()
            .map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 201],
        "{:?}",
        answers.iter().map(|a| a.text()).collect::<Vec<_>>()
    );
    assert_eq!(answers[0].json()["id"], answers[1].json()["id"]);
    assert_eq!(app.count("write_offs"), 1);
}

/// A push of `instance` of one record, `value` in the window `[start, start + 360)`.
fn push_one(
    app: &TestApp,
    provider: &str,
    instance: &str,
    start: i64,
    value: u64,
) -> testkit::Response {
    let record = json!({"StartTime": start, "EndTime": start + 360,
        "Entities": [{"Key": "Frequency", "Value": value.to_string()}]});
    app.push_usage(provider, instance, &[record])
}

/// While a push of one instance is in flight, a bill run bills the other instances of its batch:
/// it never waits for one instance while it holds the others (pushes to those would wait with
/// it). On PostgreSQL the push is a session of the test's own holding the instance's cursor
/// shared, as a push does; the other instance is billed while it holds it, and the held one once
/// it ends.
#[test]
fn a_bill_run_bills_the_rest_of_its_batch_while_a_push_holds_one_instance() {
    let app = TestApp::new();
    let (_, product) = app.product_with_items("hour", &[Item::running_time("1.00")], true);
    let (_, customer) = app.funded_customer("100.00");
    let mut instances: Vec<String> = (0..2).map(|_| app.order(&customer, &product)).collect();
    // The batch is in instance order: the one held is the second.
    instances.sort();
    let (free, busy) = (&instances[0], &instances[1]);
    let held = app.holding(&format!(
        "SELECT 1 FROM billing_cursors WHERE instance_id = '{busy}' FOR SHARE"
    ));
    let report = std::thread::scope(|s| {
        let run = s.spawn(|| bill_run_at_the_close(&app));
        until("the free instance billed while the other is held", || {
            app.bills(ADMIN, Some(free)).len() == 1
        });
        held.commit();
        run.join().unwrap()
    });
    assert_eq!(report.bills_written, 2, "{report:?}");
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(app.bills(ADMIN, Some(busy)).len(), 1);
}

/// A push that arrives while a bill run waits for its instance (another push still in flight)
/// waits behind the run, rather than passing it: pushes that keep coming cannot keep the run
/// waiting. On PostgreSQL, where the push in flight is a session of the test's own, it then
/// finds its period billed (409 `PeriodClosed`); whatever the order, the bill counts what was
/// stored, and only that.
#[test]
fn a_push_arriving_while_a_bill_run_waits_for_its_instance_waits_behind_it() {
    let app = TestApp::new();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = app.funded_customer("100.00");
    let instance = app.order(&customer, &product);
    app.set_now(at("2026-03-27T09:59:00Z"));
    push_one(&app, &provider, &instance, unix(PERIOD), 5).expect(200);
    let mut held = app.holding(&format!(
        "SELECT 1 FROM billing_cursors WHERE instance_id = '{instance}' FOR SHARE"
    ));
    let played = held.holds();
    let (report, late) = std::thread::scope(|s| {
        let run = s.spawn(|| bill_run_at_the_close(&app));
        held.until_waiting(1);
        let late = s.spawn(|| push_one(&app, &provider, &instance, unix(PERIOD) + 60, 7));
        until("the push answered, or waiting behind the run", || {
            late.is_finished() || held.waiting() >= 2
        });
        held.commit();
        (run.join().unwrap(), late.join().unwrap())
    });
    assert_eq!(report.bills_written, 1, "{report:?}");
    let billed = if played || late.status == 409 {
        late.problem(409, "PeriodClosed");
        "5"
    } else {
        late.expect(200);
        "12"
    };
    let bills = app.bills(ADMIN, Some(&instance));
    assert_eq!(str_of(&bills[0]["lines"][0]["quantity"]), billed);
}

/// A release is dated once it holds its instance, not when it was asked for: pushes in flight
/// meanwhile commit first (their windows before it), and pushes arriving meanwhile wait behind
/// it — so no record stored starts at or after the release. On PostgreSQL a push in flight (a
/// session of the test's own) holds the instance while the clock moves on ten minutes and
/// another push arrives: the release is dated then, and the push, before it, is stored.
#[test]
fn a_release_is_dated_once_it_holds_its_instance() {
    let app = TestApp::new();
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = app.funded_customer("100.00");
    let instance = app.order(&customer, &product);
    app.set_now(at("2026-03-27T08:30:00Z"));
    let mut held = app.holding(&format!(
        "SELECT 1 FROM instances WHERE id = '{instance}' FOR SHARE"
    ));
    let path = format!("/api/v1/instances/{instance}/actions");
    let played = held.holds();
    let (released, pushed) = std::thread::scope(|s| {
        let release = s.spawn(|| app.post(&path, &customer, json!({"action": "release"})));
        held.until_waiting(1);
        app.set_now(at("2026-03-27T08:40:00Z"));
        let push =
            s.spawn(|| push_one(&app, &provider, &instance, unix("2026-03-27T08:31:00Z"), 3));
        until("the push answered, or waiting behind the release", || {
            push.is_finished() || held.waiting() >= 2
        });
        held.commit();
        (release.join().unwrap(), push.join().unwrap())
    });
    let released_at = str_of(&released.expect(200).json()["released_at"]);
    if played {
        assert_eq!(released_at, "2026-03-27T08:40:00Z");
        pushed.expect(200);
    }
    let usage = app
        .get(
            &format!("/api/v1/metering/usage?instance_id={instance}"),
            ADMIN,
        )
        .expect(200)
        .json();
    for record in usage["records"].as_array().unwrap() {
        assert!(
            record["start_time"].as_i64().unwrap() < unix(&released_at),
            "{record} is after the release at {released_at}"
        );
    }
}
