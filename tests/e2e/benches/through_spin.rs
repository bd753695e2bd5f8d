//! Through the real runtime (issues 15 and 21): the app under `spin up`, driven over keep-alive
//! HTTP connections as providers' meters, customers' pages and an operator's bill run would, on
//! three deployments in one run on one machine — SQLite on one host, PostgreSQL (and Redis) on
//! one host, PostgreSQL on three hosts — next to the same pushes through the domain's handlers
//! in-process (the native path, SQLite).
//!
//! - ingestion, closed loop: `PushMeteringData` bodies of 100 fresh records, at 1, 4 and 16
//!   keep-alive connections, each sending its next push when the last is answered (records/s,
//!   p50, p99, max);
//! - ingestion, open loop: pushes offered at fixed rates whatever the answers, each push's
//!   latency counted from the moment it was due, so a backlog shows (p50, p99, max);
//! - reads at 16 connections: the categories, the catalog, an instance's usage, bills;
//! - a bill run over 10,000 instance-periods, `POST /api/v1/billing/runs`.
//!
//! `cargo bench -p e2e` (needs `spin` on PATH, and for PostgreSQL and Redis the variables
//! `.ci/services start` prints, as the end-to-end tests do); `THROUGH_SPIN=ingestion` (or
//! `open-loop`, `reads`, `bill-run`) runs one part, `THROUGH_SPIN_ON=sqlite` (or `postgres-1`,
//! `postgres-3`) one deployment. docs/BENCHMARKS.md has the numbers and the machine.

// Rates and timings are floats; no money is computed here.
#![allow(clippy::float_arithmetic)]

// The end-to-end tests' harness, shared with them: this bench uses a part of it.
#[allow(dead_code, unused_imports)]
#[path = "../tests/e2e/harness/mod.rs"]
mod harness;
#[path = "../../../shared/benches/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::native::TestApp;
use testkit::{Item, Market, Response, at};

use harness::{Deployment, HttpMarket, Manifest, Spin, SpinUp};
use support::{invoked_by_cargo_bench, machine};

const RECORDS_PER_PUSH: usize = 100;
/// Instances the pushes go round, as a provider's meter reporting its instances in turn.
const INSTANCES: usize = 64;
/// When the metered instances were ordered, and the hour their usage is pushed for.
const ORDERED: &str = "2026-03-27T06:00:00Z";
const HOUR: &str = "2026-03-27T07:00:00Z";
/// "Now" for the pushes: the 07:00 hour has ended and is still open for late data.
const PUSHED_AT: &str = "2026-03-27T08:30:00Z";
/// The bill run's instances: ordered at 05:00, their 05:00 hour closes at 07:00.
const BILLED_INSTANCES: usize = 10_000;
const BILLED_ORDERED: &str = "2026-03-27T05:00:00Z";
const BILLED_AS_OF: &str = "2026-03-27T07:00:00Z";
/// The open loop's offered rates, in records per second (a push is 100 records), each for
/// [`OPEN_LOOP_SECONDS`].
const OFFERED: [usize; 4] = [10_000, 15_000, 20_000, 25_000];
const OPEN_LOOP_SECONDS: usize = 10;
/// Connections the open loop sends over: enough that a due push rarely waits for one.
const OPEN_LOOP_CONNECTIONS: usize = 48;

/// A deployment under test: its hosts, whose clients the load spreads over (worker `w` talks to
/// host `w % hosts`).
struct Target {
    name: &'static str,
    hosts: Vec<String>,
    /// What runs the hosts, stopped when the target is dropped.
    _running: (Option<Spin>, Option<Deployment>),
}

impl Target {
    fn sqlite() -> Self {
        let spin = SpinUp::new(Manifest::repo().without_cron()).start();
        Target {
            name: "SQLite, 1 host",
            hosts: vec![spin.origin().to_owned()],
            _running: (Some(spin), None),
        }
    }

    fn postgres(hosts: usize, name: &'static str) -> Self {
        let deployment = Deployment::start(&Manifest::repo().without_cron(), hosts, |up| up);
        Target {
            name,
            hosts: deployment
                .hosts()
                .iter()
                .map(|h| h.origin().to_owned())
                .collect(),
            _running: (None, Some(deployment)),
        }
    }

    /// A client of host `w % hosts`, with connections of its own, at `now`.
    fn client(&self, w: usize, now: &str) -> HttpMarket {
        HttpMarket::new(&self.hosts[w % self.hosts.len()], harness::ADMIN_TOKEN).at(at(now))
    }
}

fn main() {
    if !invoked_by_cargo_bench() {
        return;
    }
    println!("# Through Spin\n\nMachine: {}\n", machine());
    let part = std::env::var("THROUGH_SPIN").ok();
    let runs = |name: &str| part.as_deref().is_none_or(|p| p == name);
    let on = std::env::var("THROUGH_SPIN_ON").ok();
    let deploys = |name: &str| on.as_deref().is_none_or(|d| d == name);
    if runs("ingestion") {
        native_ingestion();
    }
    for key in ["sqlite", "postgres-1", "postgres-3"] {
        if !deploys(key) {
            continue;
        }
        let target = match key {
            "sqlite" => Target::sqlite(),
            "postgres-1" => Target::postgres(1, "PostgreSQL, 1 host"),
            _ => Target::postgres(3, "PostgreSQL, 3 hosts"),
        };
        println!("\n# {}\n", target.name);
        let world = World::new(&target.client(0, ORDERED));
        let mut pushed = 0;
        if runs("ingestion") {
            pushed = ingestion(&target, &world, pushed);
        }
        if runs("open-loop") {
            pushed = open_loop(&target, &world, pushed);
        }
        world.check_stored(&target.client(0, PUSHED_AT), pushed);
        if runs("reads") {
            reads(&target, &world);
        }
        if runs("bill-run") {
            bill_run(&target, &world);
        }
    }
}

/// The same pushes through the domain's handlers in-process, on SQLite: the native path.
fn native_ingestion() {
    let native = NativeWorld::new();
    println!("## Ingestion in-process (native, SQLite): 100-record pushes, closed loop\n");
    println!("| path | connections | pushes | records/s | p50 | p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut next = 0;
    for (connections, pushes) in [(1, 300), (4, 1_000), (16, 3_000)] {
        let native_run = run(
            connections,
            pushes,
            |_| &native.app,
            |app, i| push(*app, &native.provider, native.push_body(next + i)),
        );
        next += pushes;
        native_run.print("in-process handler (native)", connections, RECORDS_PER_PUSH);
    }
}

/// The closed loop: each connection sends its next push once the last is answered. Returns how
/// many pushes were sent in all (`pushed` before).
fn ingestion(target: &Target, world: &World, mut pushed: usize) -> usize {
    println!("## Ingestion: 100-record pushes, closed loop\n");
    println!("| deployment | connections | pushes | records/s | p50 | p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (connections, pushes) in [(1, 300), (4, 1_000), (16, 3_000)] {
        let spin = run(
            connections,
            pushes,
            |w| target.client(w, PUSHED_AT),
            |m, i| push(m, &world.provider, world.push_body(pushed + i)),
        );
        pushed += pushes;
        spin.print(target.name, connections, RECORDS_PER_PUSH);
    }
    pushed
}

/// The open loop: pushes due at a fixed rate, whatever the answers; each push's latency is from
/// when it was due to its answer, so a push that waited for a connection, or behind others,
/// counts its wait.
fn open_loop(target: &Target, world: &World, mut pushed: usize) -> usize {
    println!("\n## Ingestion: 100-record pushes, open loop ({OPEN_LOOP_SECONDS} s per rate)\n");
    println!("| deployment | offered records/s | pushes | achieved records/s | p50 | p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for offered in OFFERED {
        let per_second = offered / RECORDS_PER_PUSH;
        let pushes = per_second * OPEN_LOOP_SECONDS;
        let interval = Duration::from_secs(1) / u32::try_from(per_second).expect("a rate");
        let result = run_paced(
            OPEN_LOOP_CONNECTIONS,
            pushes,
            |w| target.client(w, PUSHED_AT),
            Some(interval),
            |m, i| push(m, &world.provider, world.push_body(pushed + i)),
        );
        pushed += pushes;
        println!(
            "| {} | {offered} | {pushes} | {:.0} | {} | {} | {} |",
            target.name,
            result.rate() * RECORDS_PER_PUSH as f64,
            ms(result.quantile(0.5)),
            ms(result.quantile(0.99)),
            ms(result.quantile(1.0)),
        );
    }
    pushed
}

fn reads(target: &Target, world: &World) {
    println!("\n## Reads\n");
    println!("| read | connections | requests | requests/s | mean | p50 | p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    // One keep-alive connection, one request after another: a response that stalls (its body
    // held back behind a lone head, Nagle's algorithm against the client's delayed ACK) shows
    // here as ~40 ms, where a prompt one takes about a millisecond.
    let categories = run(
        1,
        500,
        |w| target.client(w, PUSHED_AT),
        |m, _| m.call_with_headers("GET", "/api/v1/catalog/categories", None, &[], Vec::new()),
    );
    categories.print_reads("GET /api/v1/catalog/categories", 1);
    let usage = format!(
        "/api/v1/metering/usage?instance_id={}&limit=100",
        world.read
    );
    for (what, path, token) in [
        (
            "GET /api/v1/catalog/categories",
            "/api/v1/catalog/categories",
            None,
        ),
        ("GET /api/v1/catalog", "/api/v1/catalog", None),
        (
            "GET usage, a page of 100 of 1,000 records",
            usage.as_str(),
            Some(world.provider.as_str()),
        ),
        (
            "GET /api/v1/bills",
            "/api/v1/bills?limit=50",
            Some(world.customer.as_str()),
        ),
    ] {
        let reads = run(
            16,
            2_000,
            |w| target.client(w, PUSHED_AT),
            |m, _| m.call_with_headers("GET", path, token, &[], Vec::new()),
        );
        reads.print_reads(what, 16);
    }
}

fn bill_run(target: &Target, world: &World) {
    println!("\n## Bill run over HTTP\n");
    let instances = world.order_many(target, BILLED_INSTANCES);
    let market = target.client(0, BILLED_AS_OF);
    let started = Instant::now();
    let report = market
        .post(
            "/api/v1/billing/runs",
            market.admin_token(),
            json!({ "as_of": BILLED_AS_OF }),
        )
        .expect(200)
        .json();
    let took = started.elapsed();
    assert_eq!(report["bills_written"], instances, "{report}");
    assert_eq!(report["failures"], json!([]));
    println!(
        "| deployment | instance-periods | bill run | per instance-period |\n|---|---:|---:|---:|\n| {} | {instances} | {:.2} s | {:.0} µs |",
        target.name,
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / instances as f64
    );
}

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

/// One `PushMeteringData` request of `provider`'s.
fn push(market: &impl Market, provider: &str, body: Vec<u8>) -> Response {
    market.call_with_headers("POST", "/api/v1/metering", Some(provider), JSON, body)
}

/// The marketplace the pushes and reads meet: a provider's hourly product with one item it
/// reports, [`INSTANCES`] instances ordered at [`ORDERED`], and a product billed by running time
/// for the bill run.
struct World {
    provider: String,
    customer: String,
    instances: Vec<String>,
    /// An instance with [`READ_RECORDS`] records of the 07:00 hour, whose usage the reads page.
    read: String,
    billed_product: String,
}

/// The records of the instance whose usage the reads page through.
const READ_RECORDS: usize = 1_000;

impl World {
    fn new(market: &HttpMarket) -> Self {
        let setup = market.at(at(ORDERED));
        let (provider, product) = setup.product_with_items("hour", &[Item::frequency()], true);
        let (_, billed_product) =
            setup.product_with_items("hour", &[Item::running_time("1.00")], true);
        let (_, customer) = setup.funded_customer("1000000.00");
        let instances = (0..INSTANCES)
            .map(|_| setup.order(&customer, &product))
            .collect();
        let read = setup.order(&customer, &product);
        let pushing = market.at(at(PUSHED_AT));
        for k in 0..READ_RECORDS / RECORDS_PER_PUSH {
            push(&pushing, &provider, push_body(&read, k)).expect(200);
        }
        World {
            provider,
            customer,
            instances,
            read,
            billed_product,
        }
    }

    /// Push `p`: the next 100 windows of the 07:00 hour of instance `p % INSTANCES`, none equal to
    /// another push's.
    fn push_body(&self, p: usize) -> Vec<u8> {
        push_body(&self.instances[p % INSTANCES], p / INSTANCES)
    }

    /// Every accepted record is stored: each instance's total is its records' count.
    fn check_stored(&self, market: &HttpMarket, pushes: usize) {
        let stored: usize = self
            .instances
            .iter()
            .map(|i| {
                let usage = market.usage_totals(&self.provider, i);
                usage[0]["raw_total"]
                    .as_str()
                    .and_then(|t| t.parse::<usize>().ok())
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(stored, pushes * RECORDS_PER_PUSH, "records stored");
    }

    /// `n` instances of the running-time product, ordered at 05:00 over 16 connections.
    fn order_many(&self, target: &Target, n: usize) -> usize {
        let ordered = run(
            16,
            n,
            |w| target.client(w, BILLED_ORDERED),
            |m, _| {
                let body = json!({"product_id": self.billed_product, "region": "cn-hangzhou",
                              "accept_eula": true});
                m.call_with_headers(
                    "POST",
                    "/api/v1/orders",
                    Some(&self.customer),
                    JSON,
                    body.to_string().into_bytes(),
                )
            },
        );
        println!(
            "{n} instances ordered first over 16 connections: {:.0} orders/s, p99 {}.\n",
            ordered.rate(),
            ms(ordered.quantile(0.99))
        );
        n
    }
}

/// A push of the `k`-th 100 windows of the 07:00 hour for `instance`: windows start at every
/// second of the hour's first 3,000 and end in its last 200, each (start, end) once.
fn push_body(instance: &str, k: usize) -> Vec<u8> {
    let hour = at(HOUR).timestamp();
    let metering: Vec<_> = (k * RECORDS_PER_PUSH..(k + 1) * RECORDS_PER_PUSH)
        .map(|g| {
            let (start, end) = (hour + (g % 3_000) as i64, hour + 3_600 - (g / 3_000) as i64);
            json!({"StartTime": start, "EndTime": end, "Entities": [{"Key": "Frequency", "Value": "1"}]})
        })
        .collect();
    json!({"ServiceInstanceId": instance, "Metering": metering})
        .to_string()
        .into_bytes()
}

/// The same marketplace in-process: the native path beside Spin's.
struct NativeWorld {
    app: TestApp,
    provider: String,
    instances: Vec<String>,
}

impl NativeWorld {
    fn new() -> Self {
        let app = TestApp::with_config(|n| (n == "allow_clock_override").then(|| "true".into()));
        app.set_now(at(ORDERED));
        let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
        let (_, customer) = app.funded_customer("100.00");
        let instances = (0..INSTANCES)
            .map(|_| app.order(&customer, &product))
            .collect();
        app.set_now(at(PUSHED_AT));
        NativeWorld {
            app,
            provider,
            instances,
        }
    }

    fn push_body(&self, p: usize) -> Vec<u8> {
        push_body(&self.instances[p % INSTANCES], p / INSTANCES)
    }
}

/// Latencies of `requests` requests sent over `connections` workers, each with its own client
/// (`client(worker)`), taking the next request number until all are sent (the closed loop).
fn run<C: Sync + Send, M: Fn(&C, usize) -> Response + Sync>(
    connections: usize,
    requests: usize,
    client: impl Fn(usize) -> C,
    send: M,
) -> Latencies {
    run_paced(connections, requests, client, None, send)
}

/// [`run`], or with `pace` the open loop: request `i` is due `i × pace` after the start, is
/// sent no earlier, and its latency runs from when it was due (a request that waited for a
/// worker counts its wait).
fn run_paced<C: Sync + Send, M: Fn(&C, usize) -> Response + Sync>(
    connections: usize,
    requests: usize,
    client: impl Fn(usize) -> C,
    pace: Option<Duration>,
    send: M,
) -> Latencies {
    let clients: Vec<C> = (0..connections).map(client).collect();
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let workers: Vec<_> = clients
            .iter()
            .map(|c| {
                let (next, send) = (&next, &send);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= requests {
                            return mine;
                        }
                        let due = match pace {
                            Some(pace) => {
                                let due = started + pace * u32::try_from(i).expect("a count");
                                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                    std::thread::sleep(wait);
                                }
                                due
                            }
                            None => Instant::now(),
                        };
                        let response = send(c, i);
                        mine.push(due.elapsed());
                        let text = response.text();
                        assert!(
                            (200..300).contains(&response.status),
                            "request {i}: {:.500}",
                            text
                        );
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker"))
            .collect()
    });
    let elapsed = started.elapsed();
    latencies.sort();
    Latencies {
        sorted: latencies,
        elapsed,
    }
}

struct Latencies {
    sorted: Vec<Duration>,
    elapsed: Duration,
}

impl Latencies {
    fn rate(&self) -> f64 {
        self.sorted.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn quantile(&self, q: f64) -> Duration {
        let i = ((self.sorted.len() as f64 * q).ceil() as usize).clamp(1, self.sorted.len());
        self.sorted[i - 1]
    }

    fn print(&self, path: &str, connections: usize, records_per_request: usize) {
        println!(
            "| {path} | {connections} | {} | {:.0} | {} | {} | {} |",
            self.sorted.len(),
            self.rate() * records_per_request as f64,
            ms(self.quantile(0.5)),
            ms(self.quantile(0.99)),
            ms(self.quantile(1.0)),
        );
    }

    fn print_reads(&self, what: &str, connections: usize) {
        let mean = self.sorted.iter().sum::<Duration>() / self.sorted.len().max(1) as u32;
        println!(
            "| {what} | {connections} | {} | {:.0} | {} | {} | {} | {} |",
            self.sorted.len(),
            self.rate(),
            ms(mean),
            ms(self.quantile(0.5)),
            ms(self.quantile(0.99)),
            ms(self.quantile(1.0)),
        );
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}
