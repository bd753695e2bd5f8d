//! Beyond one machine: three `spin up` hosts, each on its own port and state directory, one
//! PostgreSQL database and one Redis (`database=postgres`, deploy/runtime-config.postgres-redis.toml),
//! requests spread over the hosts round-robin. The same app, the same books: every
//! (instance, period) billed once, every balance the sum of its ledger, whatever runs where, dies
//! or waits for the database.

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use testkit::{Market, at, png, str_of, unix};

use crate::books::{Account, assert_account_agrees, billed_once};
use crate::concurrency::hosts_bill_each_period_once;
use crate::crash::{INSTANCES, backlog, bill_run_held_mid_way};
use crate::harness::{Deployment, Manifest, eventually, pg_ctl};
use crate::prometheus::{ORDERED_AT, prometheus_answering};
use crate::walkthrough::{
    assert_the_walk_through_ended, readme_admin_token, run_the_walk_through, walk_through,
};

const HOSTS: usize = 3;

/// Three hosts start together on an empty database, and the first requests reach all three at
/// once: each request's first use of the database migrates it, and the advisory lock makes them
/// take turns — the schema is built once, and every request is served.
#[test]
fn three_hosts_starting_together_on_an_empty_database_migrate_it_once() {
    // Without the console, whose page would answer the readiness probe out of the database.
    let manifest = Manifest::repo().without_cron().without_component("console");
    let deployment = Deployment::start(&manifest, HOSTS, |up| up);
    let market = deployment.market();
    let barrier = Barrier::new(HOSTS * 4);
    std::thread::scope(|s| {
        for i in 0..HOSTS * 4 {
            let (host, barrier) = (market.host(i % HOSTS), &barrier);
            s.spawn(move || {
                let client = host.on_real_clock();
                barrier.wait();
                let admin = client.admin_token().to_owned();
                client.get("/api/v1/principals", &admin).expect(200);
            });
        }
    });
    let database = deployment.database();
    // PostgreSQL's schema starts whole at version 22 (storage/postgres/migrations.rs), once;
    // later versions add a row each.
    assert_eq!(
        database.integer("SELECT COUNT(*) FROM schema_migrations"),
        database.integer("SELECT MAX(version) FROM schema_migrations") - 21
    );
    assert_eq!(
        database.integer(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public' \
             AND table_name IN ('usage_records', 'billing_cursors', 'bills', 'ledger_entries')"
        ),
        4
    );
}

/// The README's walk-through, as written, through three hosts: each of its requests goes to the
/// next host, so the logo it uploads on one is read back on another (the key-value store is
/// Redis), and every step finds what the previous one wrote on another host.
#[test]
fn the_walk_through_runs_through_three_hosts() {
    let admin = readme_admin_token();
    let deployment = Deployment::start(&Manifest::repo().without_cron(), HOSTS, |up| {
        up.variable("admin_token", &admin)
    });
    let origins: Vec<&str> = deployment.hosts().iter().map(|h| h.origin()).collect();
    let (_, calls) = walk_through();
    run_the_walk_through(&calls, &origins, || {
        deployment
            .hosts()
            .iter()
            .flat_map(|h| {
                ["identity", "listings", "reviews", "orders", "metering"]
                    .map(|c| format!("{c}: {}", h.component_log(c, "stderr")))
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    let market = deployment.market_as(&admin);
    assert_the_walk_through_ended(&market);

    // And a medium uploaded on one host is the same bytes on each of the others.
    let (provider, _, product) = market.draft_product();
    let logo = png(290, 290, 2048);
    let slot = format!("/api/v1/products/{product}/media/logo");
    market
        .host(0)
        .put_bytes(&slot, &provider, "image/png", logo.clone())
        .expect(200);
    for i in 1..HOSTS {
        assert_eq!(market.host(i).get(&slot, &provider).expect(200).body, logo);
    }
}

/// Bill runs started on all three hosts at once, and the schedule live on all three (every two
/// seconds), while customers order and the provider pushes on all three: every
/// (instance, period) has one bill with exactly the accepted usage, and every account adds up.
#[test]
fn three_hosts_with_the_schedule_bill_each_period_once() {
    let deployment = Deployment::start(&Manifest::repo().cron_every_two_seconds(), HOSTS, |up| up);
    hosts_bill_each_period_once(deployment.hosts());
}

/// `kill -9` of the host running a bill run, between its batches; the two others then run bills
/// at once: they finish it, and nothing is billed twice or lost.
#[test]
fn a_host_killed_in_the_middle_of_a_bill_run_leaves_the_others_to_finish_it() {
    let prometheus = prometheus_answering("10");
    let mut deployment = Deployment::start(&Manifest::repo().without_cron(), HOSTS, |up| {
        up.variable("prometheus_origin", prometheus.origin())
    });
    let market = deployment.market();
    market.set_now(at(ORDERED_AT));
    let accounts = backlog(&market, &prometheus, |c| {
        market.host(c % HOSTS).at(at(ORDERED_AT))
    });
    let run = bill_run_held_mid_way(market.host(0).on_real_clock(), &prometheus, String::new);
    deployment.host_mut(0).kill();
    prometheus.release();
    let killed = run.join().expect("the run's thread");
    assert!(killed.is_err(), "the killed run answered: {killed:?}");

    let admin = market.admin_token().to_owned();
    let at_the_crash = market.host(1).bills(&admin, None);
    assert!(
        !at_the_crash.is_empty() && at_the_crash.len() < INSTANCES,
        "the crash should leave the run half done: {} of {INSTANCES} bills",
        at_the_crash.len()
    );
    let written: Vec<u64> = std::thread::scope(|s| {
        let runs: Vec<_> = (1..HOSTS)
            .map(|i| {
                let host = market.host(i).on_real_clock();
                s.spawn(move || {
                    let report = host.bill_run("2026-03-27T10:00:00Z");
                    assert_eq!(report["failures"], json!([]), "{report}");
                    report["bills_written"].as_u64().expect("a count")
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().expect("a run")).collect()
    });
    assert_eq!(
        written.iter().sum::<u64>(),
        u64::try_from(INSTANCES - at_the_crash.len()).expect("small"),
        "{written:?}"
    );

    let survivor = market.host(2);
    let bills = survivor.bills(&admin, None);
    assert_eq!(billed_once(&bills).len(), INSTANCES);
    for before in &at_the_crash {
        assert!(bills.contains(before), "changed after the crash: {before}");
    }
    for account in &accounts {
        assert_account_agrees(survivor, account, &bills);
        // 300 instances × (0.10 of requests + 1.60 of an hour's resources)
        assert_eq!(survivor.balance(&account.token), "490.00");
    }
}

const PUSHERS: usize = 8;

/// PostgreSQL stopped under eight pushers spread over the three hosts, then started again:
/// while it is down every push is answered `503` with `Retry-After` (never a 500), and the
/// pushers retry as told; once it is back every record the API acknowledged is stored, once.
#[test]
fn postgres_restarted_under_eight_pushers_loses_no_acknowledged_record() {
    let deployment = Deployment::start(&Manifest::repo().without_cron(), HOSTS, |up| up);
    let market = deployment.market();
    market.set_now(at(ORDERED_AT));
    let (provider, _, product) = market.published_product();
    let account = Account::open(&market, "1000.00");
    let instances: Vec<String> = (0..PUSHERS)
        .map(|_| market.order(&account.token, &product))
        .collect();

    let acknowledged: Vec<AtomicUsize> = (0..PUSHERS).map(|_| AtomicUsize::new(0)).collect();
    let unavailable: Vec<AtomicUsize> = (0..PUSHERS).map(|_| AtomicUsize::new(0)).collect();
    let done = AtomicBool::new(false);
    let totals: Vec<u64> = std::thread::scope(|s| {
        let pushers: Vec<_> = instances
            .iter()
            .enumerate()
            .map(|(p, instance)| {
                let meter = market.host(p % HOSTS).at(at("2026-03-27T09:59:00Z"));
                let (provider, done) = (&provider, &done);
                let (acknowledged, unavailable) = (&acknowledged[p], &unavailable[p]);
                s.spawn(move || {
                    // Each record its own window of the 08:00 hour, retried until acknowledged.
                    let mut total = 0;
                    for k in 0..3_000 {
                        let start = unix(ORDERED_AT) + k;
                        let value = k % 5 + 1;
                        let record = json!({"StartTime": start, "EndTime": start + 360,
                            "Entities": [{"Key": "Frequency", "Value": value.to_string()}]});
                        loop {
                            let pushed =
                                meter.push_usage(provider, instance, std::slice::from_ref(&record));
                            match pushed.status {
                                200 => break,
                                503 => {
                                    let problem = pushed.json();
                                    assert_eq!(problem["code"], "StorageUnavailable");
                                    let wait = pushed.header("retry-after").expect("Retry-After");
                                    unavailable.fetch_add(1, Ordering::SeqCst);
                                    // As a client told to: after Retry-After seconds.
                                    std::thread::sleep(Duration::from_secs(
                                        wait.parse().expect("seconds"),
                                    ));
                                }
                                other => panic!("a push answered {other}: {}", pushed.text()),
                            }
                        }
                        total += value.unsigned_abs();
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                        if done.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                    total
                })
            })
            .collect();
        let all_past = |n: usize| {
            eventually(
                "every pusher acknowledged",
                Duration::from_secs(120),
                || {
                    acknowledged
                        .iter()
                        .all(|a| a.load(Ordering::SeqCst) >= n)
                        .then_some(())
                },
            );
        };
        all_past(20);
        pg_ctl("stop");
        eventually(
            "every pusher told to retry",
            Duration::from_secs(60),
            || {
                unavailable
                    .iter()
                    .all(|u| u.load(Ordering::SeqCst) > 0)
                    .then_some(())
            },
        );
        pg_ctl("start");
        let before: Vec<usize> = acknowledged
            .iter()
            .map(|a| a.load(Ordering::SeqCst))
            .collect();
        all_past(before.iter().max().copied().unwrap_or(0) + 20);
        done.store(true, Ordering::SeqCst);
        pushers
            .into_iter()
            .map(|p| p.join().expect("a pusher"))
            .collect()
    });

    let stored: BTreeMap<&String, u64> = instances
        .iter()
        .map(|instance| {
            let totals = market.usage_totals(&provider, instance);
            let quantity = str_of(&totals[0]["quantity"]).parse().expect("a count");
            (instance, quantity)
        })
        .collect();
    for (instance, total) in instances.iter().zip(&totals) {
        assert_eq!(
            stored[instance], *total,
            "{instance}: every acknowledged record stored, once"
        );
    }
}

/// spin.toml's `allowed_outbound_hosts = ["postgres://{{ postgres_host }}"]` is what lets a
/// component reach the database: without it Spin refuses the connection, and the component
/// answers 503 (the database out of its reach), while the others serve.
#[test]
fn without_its_postgres_grant_a_component_cannot_reach_the_database() {
    let manifest = Manifest::repo()
        .without_cron()
        .without("identity", "allowed_outbound_hosts");
    let deployment = Deployment::start(&manifest, 1, |up| up);
    let market = deployment.market();
    let admin = market.admin_token().to_owned();
    let refused = market.get("/api/v1/principals", &admin);
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.header("retry-after").is_some());
    market.get_anonymous("/api/v1/catalog").expect(200);
}
