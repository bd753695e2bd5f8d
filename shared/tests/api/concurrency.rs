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
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at, cents, str_of, unix};

/// The hour the races are about; it closes for billing at 10:00, once its late data is in.
const PERIOD: &str = "2026-03-27T08:00:00Z";
const CLOSES: &str = "2026-03-27T10:00:00Z";

/// The bill run the schedule starts as the hour closes, whatever the app's clock says: a push
/// whose clock read fell just before the close races it.
fn bill_run_at_the_close(app: &TestApp) -> RunReport {
    let storage = Storage::new(app.backend.clone());
    let tz = app.config().billing_timezone;
    nestmarket::bill_run(
        storage.db().unwrap(),
        &NativeOutbound,
        tz,
        app.config().test_instance_max_hours,
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
