//! A crash in the middle of a bill run: `kill -9` of the whole `spin up` process group while the
//! run waits on the provider's Prometheus, after its first batch committed and before the second
//! did; then a restart on the same state and a second run. Nothing is lost and nothing is
//! billed twice.

use std::time::Duration;

use serde_json::json;
use testkit::{Market, at};

use crate::books::{Account, assert_account_agrees, billed_once};
use crate::harness::{Manifest, SpinUp};
use crate::prometheus::{ORDERED_AT, product_counted_by, prometheus_answering};

const CUSTOMERS: usize = 8;
const INSTANCES: usize = 2_400;
/// The run's Prometheus query answered last before the crash. A run bills in batches of 2,000
/// instance-periods (`billing::BATCH`), each committed on its own after its queries: this one
/// is in the second batch.
const QUERIES_BEFORE_THE_CRASH: usize = 2_200;

#[test]
fn a_crash_in_the_middle_of_a_bill_run_loses_nothing_and_bills_nothing_twice() {
    let prometheus = prometheus_answering("10");
    let state = tempfile::tempdir().expect("a state directory");
    let start = || {
        SpinUp::new(Manifest::repo().without_cron())
            .variable("prometheus_origin", prometheus.origin())
            .state_dir(state.path())
            .start()
    };
    let mut first = start();
    let market = first.market().at(at(ORDERED_AT));
    let (_, product) = product_counted_by(&market, &prometheus);
    let accounts: Vec<Account> = (0..CUSTOMERS)
        .map(|_| Account::open(&market, "1000.00"))
        .collect();
    // The customers order at once, each on a connection of its own.
    std::thread::scope(|s| {
        for account in &accounts {
            let (buyer, product) = (market.at(at(ORDERED_AT)), &product);
            s.spawn(move || {
                for _ in 0..INSTANCES / CUSTOMERS {
                    buyer.order(&account.token, product);
                }
            });
        }
    });

    prometheus.hold(prometheus.requests().len() + QUERIES_BEFORE_THE_CRASH + 1);
    let operator = first.market();
    let run = std::thread::spawn(move || {
        let body = json!({"as_of": "2026-03-27T10:00:00Z"}).to_string();
        let admin = operator.admin_token().to_owned();
        operator.try_call(
            "POST",
            "/api/v1/billing/runs",
            Some(&admin),
            Some("application/json"),
            body.into_bytes(),
        )
    });
    assert!(
        prometheus.wait_until_held(Duration::from_secs(300)),
        "the run never asked its query {}:\n{}",
        QUERIES_BEFORE_THE_CRASH + 1,
        first.output()
    );
    first.kill();
    prometheus.release();
    let killed = run.join().expect("the run's thread");
    assert!(killed.is_err(), "the killed run answered: {killed:?}");
    drop(first);

    let second = start();
    let market = second.market();
    let admin = market.admin_token();
    let at_the_crash = market.bills(admin, None);
    assert!(
        !at_the_crash.is_empty() && at_the_crash.len() < INSTANCES,
        "the crash should leave the run half done: {} of {INSTANCES} bills",
        at_the_crash.len()
    );
    let report = market.bill_run("2026-03-27T10:00:00Z");
    assert_eq!(report["failures"], json!([]), "{report}");
    assert_eq!(
        report["bills_written"].as_u64(),
        u64::try_from(INSTANCES - at_the_crash.len()).ok(),
        "{report}"
    );

    let bills = market.bills(admin, None);
    let billed = billed_once(&bills);
    assert_eq!(billed.len(), INSTANCES);
    for ((_, period), bill) in &billed {
        assert_eq!(period, ORDERED_AT);
        // 10 requests × 0.01
        assert_eq!(bill["product_fees"], "0.10", "{bill}");
    }
    for before in &at_the_crash {
        assert!(bills.contains(before), "changed after the crash: {before}");
    }
    for account in &accounts {
        assert_account_agrees(&market, account, &bills);
        // 300 instances × (0.10 of requests + 1.60 of an hour's resources)
        assert_eq!(market.balance(&account.token), "490.00");
    }
}
