//! What only a real server produces: many connections at once. Sixteen meters pushing into one
//! instance set; and hosts of one deployment (here two `spin up` on one state directory; three on
//! PostgreSQL in hosts.rs), all with the schedule, taking orders, pushes and bill runs at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Value, json};
use testkit::{Market, at, rfc3339, str_of, usage};

use crate::books::{Account, assert_account_agrees, billed_once, scheduled_runs};
use crate::harness::{Manifest, Spin, SpinUp, eventually, shared_app};

const PUSHERS: usize = 16;

/// Each pusher's own records of an instance (their sum, 62, is each pusher's share)…
const OWN_VALUES: [u64; 4] = [15, 15, 16, 16];
/// …and one record that every pusher sends: 16 × 62 + 9 = 1,001 API calls per instance.
const COMMON_VALUE: u64 = 9;

#[test]
fn sixteen_meters_pushing_at_once_store_every_record_exactly_once() {
    let app = shared_app();
    let t0 = at("2026-03-27T08:00:00Z");
    let market = app.at(t0);
    let (provider, _, product) = market.published_product();
    let account = Account::open(&market, "10000.00");
    let instances: Vec<String> = (0..4)
        .map(|_| market.order(&account.token, &product))
        .collect();
    // Distinct windows (a record's identity is its window) of the 08:00 hour: windows are
    // longer than 300 s, and may overlap.
    let window = |slot: usize| {
        let start = t0 + Duration::seconds(50 * i64::try_from(slot).expect("small"));
        (rfc3339(start), rfc3339(start + Duration::seconds(360)))
    };
    let (common_start, common_end) = window(PUSHERS * OWN_VALUES.len());

    // Each meter has its own connection, and pushes its whole batch twice, as a meter retrying
    // after a lost answer would.
    let counted: Vec<(u64, u64)> = std::thread::scope(|s| {
        let meters: Vec<_> = (0..PUSHERS)
            .map(|p| {
                let meter = market.at(at("2026-03-27T09:59:00Z"));
                let (provider, instances) = (&provider, &instances);
                let (common_start, common_end) = (&common_start, &common_end);
                s.spawn(move || {
                    let mut records =
                        vec![usage(common_start, common_end, "Frequency", COMMON_VALUE)];
                    for (k, value) in OWN_VALUES.iter().enumerate() {
                        let (start, end) = window(p * OWN_VALUES.len() + k);
                        records.push(usage(&start, &end, "Frequency", *value));
                    }
                    let (mut accepted, mut duplicates) = (0, 0);
                    for _ in 0..2 {
                        for instance in instances {
                            let pushed = meter
                                .push_usage(provider, instance, &records)
                                .expect(200)
                                .json();
                            assert_eq!(pushed["Success"], true, "{pushed}");
                            accepted += pushed["accepted"].as_u64().expect("accepted");
                            duplicates += pushed["duplicates"].as_u64().expect("duplicates");
                        }
                    }
                    (accepted, duplicates)
                })
            })
            .collect();
        meters
            .into_iter()
            .map(|m| m.join().expect("a meter"))
            .collect()
    });

    let distinct = instances.len() * (PUSHERS * OWN_VALUES.len() + 1);
    let sent = instances.len() * PUSHERS * 2 * (OWN_VALUES.len() + 1);
    let accepted: u64 = counted.iter().map(|c| c.0).sum();
    let duplicates: u64 = counted.iter().map(|c| c.1).sum();
    assert_eq!(usize::try_from(accepted).ok(), Some(distinct), "accepted");
    assert_eq!(usize::try_from(accepted + duplicates).ok(), Some(sent));

    for instance in &instances {
        assert_eq!(
            market.usage_totals(&provider, instance),
            json!([{"period_start": "2026-03-27T08:00:00Z", "item_code": "Frequency",
                    "raw_total": "1001", "quantity": "1001", "price_unit": "count"}])
        );
    }
    market.bill_run("2026-03-27T10:00:00Z");
    let bills = market.bills(&account.token, None);
    assert_eq!(bills.len(), instances.len(), "{bills:?}");
    for bill in billed_once(&bills).values() {
        // The usage, and an hour of the template's resources (2 × 0.80).
        assert_eq!(bill["product_fees"], "500.40", "{bill}");
        assert_eq!(bill["total"], "502.00", "{bill}");
    }
    assert_account_agrees(&market, &account, &bills);
    assert_eq!(market.balance(&account.token), "7992.00");
}

/// Usage windows pushed into an instance: six in the first hour, three in the second.
fn windows(t0: DateTime<Utc>) -> Vec<(String, String)> {
    let ten_minutes = |n: i64| t0 + Duration::minutes(10 * n);
    (0..6)
        .chain(6..9)
        .map(|n| rfc3339(ten_minutes(n)))
        .zip((1..7).chain(7..10).map(|n| rfc3339(ten_minutes(n))))
        .collect()
}

/// The start of the usage period (an hour) a window starting at `start` falls in.
fn hour_of(start: &str) -> String {
    rfc3339(
        at(start)
            .duration_trunc(Duration::hours(1))
            .expect("an hour"),
    )
}

/// Two `spin up` processes on one state directory, both running the schedule every two seconds:
/// two hosts of one deployment on SQLite ([`hosts_bill_each_period_once`]).
#[test]
fn two_hosts_of_one_deployment_bill_each_period_once_with_every_accepted_record() {
    let state = tempfile::tempdir().expect("a state directory");
    let manifest = Manifest::repo().cron_every_two_seconds();
    let host = |_| {
        SpinUp::new(manifest.clone())
            .state_dir(state.path())
            .start()
    };
    let hosts: [Spin; 2] = [0, 1].map(host);
    hosts_bill_each_period_once(&hosts);
}

/// Hosts of one deployment, each running the schedule every two seconds: customers order on
/// each, the provider pushes usage into the hour the schedule is billing meanwhile, operators
/// run bills on every host at once. Afterwards every (instance, period) has one bill, which
/// counts exactly the usage whose push was accepted, and every account adds up.
pub(crate) fn hosts_bill_each_period_once(hosts: &[Spin]) {
    // The hour starting at t0 has closed (it closes 2 h after its start), so the schedule bills it
    // while the provider's meter, whose clock says 90 minutes past t0, still pushes into it.
    let t0 = Utc::now()
        .duration_trunc(Duration::hours(1))
        .expect("an hour")
        - Duration::hours(2);
    let setup = hosts[0].market().at(t0);
    let (provider, _, product) = setup.published_product();
    let accounts: Vec<Account> = (0..4).map(|_| Account::open(&setup, "10000.00")).collect();

    let ordering = AtomicBool::new(true);
    let (accepted, runs) = std::thread::scope(|s| {
        let operators: Vec<_> = hosts
            .iter()
            .map(|host| {
                let (market, ordering) = (host.market(), &ordering);
                s.spawn(move || {
                    let mut runs = 0;
                    while ordering.load(Ordering::Relaxed) {
                        let report = market.bill_run(&rfc3339(Utc::now()));
                        assert_eq!(report["failures"], json!([]), "{report}");
                        runs += 1;
                    }
                    runs
                })
            })
            .collect();
        let customers: Vec<_> = (0..8)
            .map(|w| {
                let host = &hosts[w % hosts.len()];
                let (buyer, meter) = (
                    host.market().at(t0),
                    host.market().at(t0 + Duration::minutes(90)),
                );
                let (account, product, provider) = (&accounts[w % 4], &product, &provider);
                s.spawn(move || {
                    // (instance, period start) → the usage accepted for it.
                    let mut accepted: BTreeMap<(String, String), u64> = BTreeMap::new();
                    for _ in 0..3 {
                        let instance = buyer.order(&account.token, product);
                        for (j, (start, end)) in windows(t0).into_iter().enumerate() {
                            let value = u64::try_from(10 * w + j + 1).expect("small");
                            let key = (instance.clone(), hour_of(&start));
                            let sum = accepted.entry(key).or_default();
                            let pushed = meter.push_usage(
                                provider,
                                &instance,
                                &[usage(&start, &end, "Frequency", value)],
                            );
                            if pushed.status == 409 {
                                // Billed already: refused, never lost.
                                pushed.problem(409, "PeriodClosed");
                            } else {
                                assert_eq!(pushed.expect(200).json()["accepted"], 1);
                                *sum += value;
                            }
                        }
                    }
                    accepted
                })
            })
            .collect();
        let accepted: BTreeMap<(String, String), u64> = customers
            .into_iter()
            .flat_map(|c| c.join().expect("a customer"))
            .collect();
        ordering.store(false, Ordering::Relaxed);
        let runs: Vec<u32> = operators
            .into_iter()
            .map(|o| o.join().expect("an operator"))
            .collect();
        (accepted, runs)
    });
    assert!(runs.iter().all(|r| *r > 0), "bill runs per host: {runs:?}");

    // Whatever is closed now gets billed; then the schedule fires again on its own, twice.
    let closed_by = Utc::now();
    hosts[hosts.len() - 1]
        .market()
        .bill_run(&rfc3339(closed_by));
    let firings = scheduled_runs(&hosts[0]);
    eventually(
        "two more scheduled bill runs",
        std::time::Duration::from_secs(60),
        || (scheduled_runs(&hosts[0]) >= firings + 2).then_some(()),
    );

    let market = hosts[0].market();
    let bills = market.bills(market.admin_token(), None);
    let billed = billed_once(&bills);
    for ((instance, period), usage) in &accepted {
        match billed.get(&(instance.clone(), period.clone())) {
            Some(bill) => assert_eq!(frequency(bill), *usage, "{bill}"),
            None => {
                assert!(
                    at(period) + Duration::hours(2) > closed_by,
                    "{instance} {period} closed but not billed"
                );
                assert_eq!(pushed_total(&market, &provider, instance, period), *usage);
            }
        }
    }
    assert!(
        billed.keys().all(|key| accepted.contains_key(key)),
        "bills of periods nobody used: {:?}",
        billed.keys()
    );
    for account in &accounts {
        assert_account_agrees(&market, account, &bills);
    }
}

/// The API calls a bill charges for.
fn frequency(bill: &Value) -> u64 {
    bill["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|line| line["code"] == "Frequency")
        .map_or(0, |line| {
            str_of(&line["quantity"]).parse().expect("a count")
        })
}

/// The API calls stored for an unbilled period.
fn pushed_total(market: &impl Market, provider: &str, instance: &str, period: &str) -> u64 {
    market
        .usage_totals(provider, instance)
        .as_array()
        .expect("totals")
        .iter()
        .find(|t| t["period_start"] == period && t["item_code"] == "Frequency")
        .map_or(0, |t| str_of(&t["quantity"]).parse().expect("a count"))
}
