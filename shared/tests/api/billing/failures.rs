//! Bill runs that fail halfway, race each other or find instances far apart: each period is
//! billed once, and one instance's failure bills every other.

use chrono::{DateTime, Utc};
use nestmarket::platform::outbound::native::NativeOutbound;
use nestmarket::platform::storage::{
    Backend, Database, Dialect, Row, Storage, StorageError, Value as SqlValue,
};
use nestmarket::{Principal, bill_run};
use serde_json::json;
use testkit::native::ADMIN;
use testkit::{Item, Market, at};

use super::{T0, scalar, world};

/// A database that fails the `n`th bill insert, as a crash halfway through a run would.
struct FailingDb {
    inner: Box<dyn Database>,
    fail_at: std::cell::Cell<usize>,
}

impl Database for FailingDb {
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StorageError> {
        if sql.trim_start().starts_with("INSERT INTO bills") {
            let left = self.fail_at.get();
            self.fail_at.set(left.saturating_sub(1));
            if left == 1 {
                return Err(StorageError::other("disk I/O error (injected)"));
            }
        }
        self.inner.execute(sql, params)
    }

    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }

    fn begin(&self) -> Result<(), StorageError> {
        self.inner.begin()
    }

    fn commit(&self) -> Result<(), StorageError> {
        self.inner.commit()
    }

    fn rollback(&self) -> Result<(), StorageError> {
        self.inner.rollback()
    }
}

fn as_of(s: &str) -> DateTime<Utc> {
    at(s)
}

/// A write that fails inside a run (a disk error on one bill) is that instance's failure: the
/// run reports it and stops billing that instance there (its periods are billed in order), the
/// bills before it stay, and the next run bills the rest — each period once.
#[test]
fn a_bill_that_cannot_be_written_is_reported_and_the_next_run_bills_the_rest_once() {
    let w = world("hour", &[Item::frequency()]);
    for h in 8..20 {
        w.push(
            &format!("2026-03-27T{h:02}:00:00Z"),
            &format!("2026-03-27T{h:02}:30:00Z"),
            "Frequency",
            10,
        );
    }
    Storage::new(w.app.backend.clone()).db().unwrap();
    let failing = FailingDb {
        inner: w.app.backend.open_db().unwrap(),
        fail_at: std::cell::Cell::new(5),
    };
    let operator = Principal::built_in_operator();
    let config = w.app.config();
    let first = bill_run(
        &failing,
        &NativeOutbound,
        &config,
        as_of("2026-03-28T00:00:00Z"),
        as_of("2026-03-28T00:00:00Z"),
        &operator,
    )
    .unwrap();
    assert_eq!(first.bills_written, 4, "the four bills before the failure");
    assert_eq!(first.failures.len(), 1, "{:?}", first.failures);
    assert_eq!(first.failures[0].instance_id, w.instance);
    assert_eq!(first.failures[0].period_start, at("2026-03-27T12:00:00Z"));
    assert_eq!(
        serde_json::to_value(first.failures[0].code).unwrap(),
        "bill_not_written"
    );
    assert_eq!(w.bills().len(), 4, "the four bills before the failure stay");
    let report = bill_run(
        w.app.backend.open_db().unwrap().as_ref(),
        &NativeOutbound,
        &config,
        as_of("2026-03-28T00:00:00Z"),
        as_of("2026-03-28T00:00:00Z"),
        &operator,
    )
    .unwrap();
    assert_eq!(
        report.bills_written,
        15 - 4,
        "08:00 through 22:00 are closed at midnight"
    );
    assert_eq!(scalar(&w.app, "SELECT COUNT(*) FROM bills"), 15);
    assert_eq!(
        scalar(&w.app, "SELECT COUNT(DISTINCT period_start) FROM bills"),
        15
    );
    // Each of the 15 hours is deducted once: its resources (1.60), and 5.00 of usage in twelve.
    assert_eq!(
        scalar(
            &w.app,
            "SELECT COUNT(*) FROM ledger_entries WHERE kind = 'bill'"
        ),
        15
    );
    assert_eq!(w.balance(), "916.00");
}

#[test]
fn two_runs_at_once_bill_each_period_once() {
    let w = world("hour", &[Item::frequency()]);
    let (_, c2) = w.app.customer("enterprise");
    let product = w
        .app
        .get(&format!("/api/v1/instances/{}", w.instance), ADMIN)
        .expect(200)
        .json()["product_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut instances = vec![w.instance.clone()];
    for _ in 0..5 {
        instances.push(w.app.order(&c2, &product));
    }
    w.app.set_now(at("2026-03-27T08:31:00Z"));
    for i in &instances {
        let body = json!({"ServiceInstanceId": i, "Metering": [{"StartTime": at(T0).timestamp(),
            "EndTime": at(T0).timestamp() + 1800, "Entities": [{"Key": "Frequency", "Value": "3"}]}]});
        w.app
            .post("/api/v1/metering", &w.provider, body)
            .expect(200);
    }
    let barrier = std::sync::Barrier::new(4);
    let written: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    w.app
                        .post(
                            "/api/v1/billing/runs",
                            ADMIN,
                            json!({"as_of": "2026-03-27T14:00:00Z"}),
                        )
                        .expect(200)
                        .json()["bills_written"]
                        .as_u64()
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Hours 08:00–12:00 of six instances: 30 (instance, period) pairs, billed once between them.
    assert_eq!(written.iter().sum::<u64>(), 30, "{written:?}");
    assert_eq!(scalar(&w.app, "SELECT COUNT(*) FROM bills"), 30);
    assert_eq!(
        scalar(
            &w.app,
            "SELECT COUNT(DISTINCT instance_id || period_start) FROM bills"
        ),
        30
    );
    assert_eq!(
        scalar(
            &w.app,
            "SELECT COUNT(*) FROM ledger_entries WHERE kind = 'bill'"
        ),
        30,
        "one deduction per bill"
    );
}
/// One run bills every closed period of every instance, however far apart their cursors stand:
/// an instance days behind is caught up although another one's next period closes later than
/// each of its own (the run's keyset once stepped past them, billing one period per run).
#[test]
fn a_run_catches_up_instances_far_behind_others_in_one_run() {
    let w = world("hour", &[Item::running_time("1.00")]);
    let (_, product) = w
        .app
        .product_with_items("hour", &[Item::running_time("1.00")], true);
    w.app.set_now(at("2026-03-29T08:00:00Z"));
    let recent = w.app.order(&w.customer, &product);
    let report = w.run("2026-03-29T10:00:00Z");
    assert_eq!(report["failures"], json!([]), "{report}");
    // 08:00 on the 27th to 08:00 on the 29th for the first, the 08:00 hour for the second.
    assert_eq!(report["bills_written"], 49 + 1, "{report}");
    assert_eq!(w.app.bills(&w.customer, Some(&recent)).len(), 1);
}
