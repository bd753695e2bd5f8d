//! A crash in the middle of a bill run: `kill -9` of the whole `spin up` process group while the
//! run waits on the provider's Prometheus, after its first batch committed and before the second
//! did; then a restart on the same state and a second run. Nothing is lost and nothing is
//! billed twice.

use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;
use testkit::{JsonServer, Market, Response, at};

use crate::books::{Account, assert_account_agrees, billed_once};
use crate::harness::{HttpMarket, Manifest, SpinUp};
use crate::prometheus::{ORDERED_AT, product_counted_by, prometheus_answering};

pub(crate) const CUSTOMERS: usize = 8;
pub(crate) const INSTANCES: usize = 2_400;
/// The run's Prometheus query answered last before the crash. A run bills in batches of 2,000
/// instance-periods (`billing::BATCH`), each committed on its own after its queries: this one
/// is in the second batch.
const QUERIES_BEFORE_THE_CRASH: usize = 2_200;

/// The backlog a run is crashed in: a product counted by `prometheus`, [`CUSTOMERS`] customers
/// topped up with 1,000.00 and [`INSTANCES`] instances ordered at [`ORDERED_AT`] by them at once,
/// customer `c` on `buyer(c)`'s connection.
pub(crate) fn backlog(
    setup: &impl Market,
    prometheus: &JsonServer,
    buyer: impl Fn(usize) -> HttpMarket,
) -> Vec<Account> {
    let (_, product) = product_counted_by(setup, prometheus);
    let accounts: Vec<Account> = (0..CUSTOMERS)
        .map(|_| Account::open(setup, "1000.00"))
        .collect();
    std::thread::scope(|s| {
        for (c, account) in accounts.iter().enumerate() {
            let (buyer, product) = (buyer(c), &product);
            s.spawn(move || {
                for _ in 0..INSTANCES / CUSTOMERS {
                    buyer.order(&account.token, product);
                }
            });
        }
    });
    accounts
}

/// A bill run as of 10:00 sent by `operator` on a thread of its own, returned once `prometheus`
/// holds the run's query past its first batch: the moment to crash its host. The thread's
/// outcome is what became of the request (`context` says more should the run never get there).
pub(crate) fn bill_run_held_mid_way(
    operator: HttpMarket,
    prometheus: &JsonServer,
    context: impl Fn() -> String,
) -> JoinHandle<Result<Response, String>> {
    prometheus.hold(prometheus.requests().len() + QUERIES_BEFORE_THE_CRASH + 1);
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
        context()
    );
    run
}

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
    // The customers order at once, each on a connection of its own.
    let accounts = backlog(&market, &prometheus, |_| market.at(at(ORDERED_AT)));
    let run = bill_run_held_mid_way(first.market(), &prometheus, || first.output());
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
