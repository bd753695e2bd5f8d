//! docs/RULES.md R11.16: a bill run never stops as a whole. A batch whose transaction finds the
//! database busy is tried again after a pause, and failing that reported while the other
//! batches are billed; an instance whose billing cursor cannot be opened is reported and the
//! others are billed.

use std::cell::Cell;

use nestmarket::platform::outbound::native::NativeOutbound;
use nestmarket::platform::storage::{
    Backend, Database, Dialect, Row, Storage, StorageError, StorageErrorKind, Value as SqlValue,
};
use nestmarket::{Principal, RunReport, bill_run};
use serde_json::json;
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at};

const T0: &str = "2026-03-27T08:00:00Z";

/// An app on the test clock at [`T0`] and `n` instances of an hourly product, ordered then by a
/// funded customer.
fn instances(n: usize) -> (TestApp, Vec<String>) {
    let app =
        TestApp::with_config(|name| (name == "allow_clock_override").then(|| "true".to_owned()));
    app.set_now(at(T0));
    let (_, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (customer_id, customer) = app.customer("enterprise");
    app.post(
        &format!("/api/v1/accounts/{customer_id}/top-ups"),
        ADMIN,
        json!({"amount": "1000.00"}),
    )
    .expect(201);
    let ids = (0..n).map(|_| app.order(&customer, &product)).collect();
    Storage::new(app.backend.clone()).db().unwrap();
    (app, ids)
}

/// A connection on which the first `left` statements starting with `statement` find the
/// database busy, as when another connection held the lock past the statement's own wait.
struct BusyDb {
    inner: Box<dyn Database>,
    statement: &'static str,
    left: Cell<usize>,
}

impl Database for BusyDb {
    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StorageError> {
        if sql.starts_with(self.statement) && self.left.get() > 0 {
            self.left.set(self.left.get() - 1);
            return Err(StorageError {
                kind: StorageErrorKind::Busy,
                message: "database is locked (injected)".into(),
            });
        }
        self.inner.execute(sql, params)
    }

    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }

    /// Through `execute`, so that the transaction's `BEGIN` can find the database busy.
    fn begin(&self) -> Result<(), StorageError> {
        let begin = match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        self.execute(begin, &[]).map(drop)
    }
}

fn run(db: &dyn Database, app: &TestApp, as_of: &str) -> RunReport {
    bill_run(
        db,
        &NativeOutbound,
        &app.config(),
        at(as_of),
        at(as_of),
        &Principal::built_in_operator(),
    )
    .expect("a bill run never fails as a whole")
}

fn busy(app: &TestApp, statement: &'static str, times: usize) -> BusyDb {
    BusyDb {
        inner: app.backend.open_db().unwrap(),
        statement,
        left: Cell::new(times),
    }
}

#[test]
fn a_batch_that_finds_the_database_busy_is_retried_then_reported_and_the_run_goes_on() {
    let (app, ids) = instances(2);
    // BEGIN busy twice: the third try bills both instances' 08:00 (closed at 10:00).
    let report = run(&busy(&app, "BEGIN", 2), &app, "2026-03-27T10:00:00Z");
    assert_eq!(report.bills_written, 2, "{report:?}");
    assert!(report.failures.is_empty(), "{report:?}");

    // COMMIT busy through every try: the batch (both instances' 09:00) is reported, not the
    // run's failure, and nothing of it was written.
    let report = run(
        &busy(&app, "COMMIT", usize::MAX),
        &app,
        "2026-03-27T11:00:00Z",
    );
    assert_eq!(report.bills_written, 0);
    let mut failed: Vec<(String, String, String)> = report
        .failures
        .iter()
        .map(|f| {
            (
                f.instance_id.clone(),
                f.period_start
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                serde_json::to_value(f.code).unwrap().to_string(),
            )
        })
        .collect();
    failed.sort();
    let mut expected: Vec<(String, String, String)> = ids
        .iter()
        .map(|id| {
            (
                id.clone(),
                "2026-03-27T09:00:00Z".to_owned(),
                "\"bill_not_written\"".to_owned(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(failed, expected);
    assert!(report.failures[0].reason.contains("Busy"), "{report:?}");
    assert_eq!(app.count("bills"), 2);

    // The next run bills them, once.
    let report = run(
        app.backend.open_db().unwrap().as_ref(),
        &app,
        "2026-03-27T11:00:00Z",
    );
    assert_eq!(report.bills_written, 2, "{report:?}");
    assert_eq!(app.count("bills"), 4);
}

#[test]
fn an_instance_whose_cursor_cannot_be_opened_is_reported_and_the_others_are_billed() {
    let (app, ids) = instances(2);
    let db = app.backend.open_db().unwrap();
    // Two instances without a cursor (as before cursors were kept), one of which cannot have
    // one: its running intervals are gone, so nothing says when it started.
    db.execute("DELETE FROM billing_cursors", &[]).unwrap();
    db.execute(
        "DELETE FROM instance_intervals WHERE instance_id = ?",
        &[ids[0].as_str().into()],
    )
    .unwrap();
    let report = run(db.as_ref(), &app, "2026-03-27T10:00:00Z");
    assert_eq!(report.bills_written, 1, "{report:?}");
    assert_eq!(report.failures.len(), 1, "{report:?}");
    let failure = &report.failures[0];
    assert_eq!(failure.instance_id, ids[0]);
    assert_eq!(
        serde_json::to_value(failure.code).unwrap(),
        "cursor_not_opened"
    );
    assert_eq!(
        failure.period_start,
        at("2026-03-27T10:00:00Z"),
        "the run's as_of"
    );
    let billed = app
        .get(&format!("/api/v1/bills?instance_id={}", ids[1]), ADMIN)
        .expect(200)
        .json();
    assert_eq!(billed["items"].as_array().unwrap().len(), 1, "{billed}");
}
