//! Bill runs (issue 6, item 5): one closed hour over N instances × 2 items × 10 usage records
//! each, for N = 1,000, 10,000 and 100,000, timing `nestmarket::bill_run` as of the moment
//! the hour closes, next to a raw `SELECT instance_id, item_code, SUM(value) … GROUP BY` over the
//! same rows, measured in the same run on the same database file.
//!
//! The world is built through the API once — a provider's hourly product with two items (a
//! graduated `Frequency`, a volume `Storage`), a customer with an account, one order, its usage
//! pushed with `POST /api/v1/metering` — and then copied row for row by SQL into the real schema
//! until there are N instances (100 per product copy, 10 per customer). The instance ordered
//! through the API is billed with the copies, and every bill must equal its bill.
//!
//! `cargo bench -p nestmarket --bench bill_run`

// Rates and timings are floats; no money is computed here.
#![allow(clippy::float_arithmetic)]

mod support;

use std::path::Path;
use std::time::Duration;

use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at};

use nestmarket::Principal;
use nestmarket::platform::outbound::native::NativeOutbound;
use nestmarket::platform::storage::native::NativeBackend;
use nestmarket::platform::storage::{Backend, Storage};
use serde_json::json;
use support::{machine, median, secs, time};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const INSTANCES_PER_PRODUCT: usize = 100;
const INSTANCES_PER_CUSTOMER: usize = 10;
const RECORDS_PER_ITEM: i64 = 10;
/// (item, value of each of its 10 records): 1,500 calls → 1000 × 0.5 + 500 × 0.4 = 700.00;
/// 5,242,880 bytes = 5 MB → 5 × 0.01 = 0.05 (volume); and the template's resources for the
/// whole hour, 2 × ecs at 0.80/h = 1.60. A bill is 701.65.
const USAGE: [(&str, i64); 2] = [("Frequency", 150), ("Storage", 524_288)];
const BILL_CENTS: i64 = 70_165;
const REPS: usize = 3;

fn reps() -> usize {
    std::env::var("BILL_RUN_REPS").map_or(REPS, |v| v.parse().unwrap())
}

struct Template {
    app: TestApp,
    instance: String,
    customer_id: String,
    product: String,
}

/// The world through the API: one product, one customer with an account, one instance with its
/// 2 × 10 records pushed at 09:01.
fn template() -> Template {
    let app = TestApp::new();
    app.set_now(at("2026-03-27T08:00:00Z"));
    let storage = Item {
        code: "Storage",
        tier_mode: "volume",
        tiers: json!([{"up_to": "1024", "unit_price": "0.01"}, {"up_to": null, "unit_price": "0.008"}]),
        reporting: json!({"method": "service_provider"}),
    };
    let (provider, product) = app.product_with_items("hour", &[Item::frequency(), storage], true);
    let (customer_id, customer) = app.customer("enterprise");
    app.post(
        &format!("/api/v1/accounts/{customer_id}/top-ups"),
        ADMIN,
        json!({"amount": "1000.00"}),
    )
    .expect(201);
    let instance = app.order(&customer, &product);
    app.set_now(at("2026-03-27T09:01:00Z"));
    let t0 = at("2026-03-27T08:00:00Z").timestamp();
    let records: Vec<_> = (0..RECORDS_PER_ITEM)
        .map(|k| {
            json!({"StartTime": t0 + k * 360, "EndTime": t0 + (k + 1) * 360,
               "Entities": USAGE.iter().map(|(key, v)| json!({"Key": key, "Value": v.to_string()})).collect::<Vec<_>>()})
        })
        .collect();
    let pushed = app
        .post(
            "/api/v1/metering",
            &provider,
            json!({"ServiceInstanceId": instance, "Metering": records}),
        )
        .expect(200)
        .json();
    assert_eq!(pushed["accepted"], 20);
    Template {
        app,
        instance,
        customer_id,
        product,
    }
}

/// A copy of the template's database grown to `n` instances by copying its rows.
fn seed(t: &Template, path: &Path, n: usize) {
    let db = t.app.backend.open_db().unwrap();
    db.execute("VACUUM INTO ?", &[path.to_str().unwrap().into()])
        .unwrap();
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    let copies = n - 1;
    let products = copies.div_ceil(INSTANCES_PER_PRODUCT);
    let customers = copies.div_ceil(INSTANCES_PER_CUSTOMER);
    tx.execute("CREATE TEMP TABLE seq (i INTEGER PRIMARY KEY)", [])
        .unwrap();
    tx.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
         INSERT INTO seq SELECT i FROM n",
        [copies as i64],
    )
    .unwrap();
    let (p, c, i) = (
        t.product.as_str(),
        t.customer_id.as_str(),
        t.instance.as_str(),
    );
    // Suffixes keep every copy's id unique and in the same order as its number.
    let statements: &[(&str, usize)] = &[
        (
            "INSERT INTO services (id, provider_id, spec, created_at)
             SELECT s.id || printf('-%07d', q.i), s.provider_id, s.spec, s.created_at
             FROM services s JOIN products p ON p.service_id = s.id, seq q WHERE p.id = ?1 AND q.i < ?4",
            products,
        ),
        (
            "INSERT INTO products (id, service_id, provider_id, status, created_at, updated_at)
             SELECT p.id || printf('-%07d', q.i), p.service_id || printf('-%07d', q.i), p.provider_id,
                    p.status, p.created_at, p.updated_at
             FROM products p, seq q WHERE p.id = ?1 AND q.i < ?4",
            products,
        ),
        (
            "INSERT INTO product_steps (product_id, step, data, updated_at)
             SELECT s.product_id || printf('-%07d', q.i), s.step, s.data, s.updated_at
             FROM product_steps s, seq q WHERE s.product_id = ?1 AND q.i < ?4",
            products,
        ),
        (
            "INSERT INTO billable_item_settings (product_id, code, reporting, associations, updated_at)
             SELECT b.product_id || printf('-%07d', q.i), b.code, b.reporting, b.associations, b.updated_at
             FROM billable_item_settings b, seq q WHERE b.product_id = ?1 AND q.i < ?4",
            products,
        ),
        (
            "INSERT INTO principals (id, role, name, account_type, token_hash, created_at, token_issued_at)
             SELECT x.id || printf('-%07d', q.i), x.role, x.name, x.account_type,
                    x.token_hash || printf('-%07d', q.i), x.created_at, x.token_issued_at
             FROM principals x, seq q WHERE x.id = ?2 AND q.i < ?4",
            customers,
        ),
        (
            "INSERT INTO accounts (customer_id, balance_cents, updated_at)
             SELECT a.customer_id || printf('-%07d', q.i), a.balance_cents, a.updated_at
             FROM accounts a, seq q WHERE a.customer_id = ?2 AND q.i < ?4",
            customers,
        ),
        (
            "INSERT INTO orders (id, owner_id, product_id, template_id, plan_id, region, test, instance_id, created_at)
             SELECT o.id || printf('-%07d', q.i), o.owner_id || printf('-%07d', q.i / ?5),
                    o.product_id || printf('-%07d', q.i / ?6), o.template_id, o.plan_id, o.region, o.test,
                    o.instance_id || printf('-%07d', q.i), o.created_at
             FROM orders o, seq q WHERE o.instance_id = ?3",
            0,
        ),
        (
            "INSERT INTO instances (id, order_id, owner_id, product_id, provider_id, template_id, plan_id,
                                    region, status, test, created_at, released_at, billing_timezone,
                                    resources)
             SELECT x.id || printf('-%07d', q.i), x.order_id || printf('-%07d', q.i),
                    x.owner_id || printf('-%07d', q.i / ?5), x.product_id || printf('-%07d', q.i / ?6),
                    x.provider_id, x.template_id, x.plan_id, x.region, x.status, x.test, x.created_at,
                    x.released_at, x.billing_timezone, x.resources
             FROM instances x, seq q WHERE x.id = ?3",
            0,
        ),
        (
            "INSERT INTO instance_intervals (instance_id, started_at, ended_at)
             SELECT v.instance_id || printf('-%07d', q.i), v.started_at, v.ended_at
             FROM instance_intervals v, seq q WHERE v.instance_id = ?3 ORDER BY q.i, v.rowid",
            0,
        ),
        (
            "INSERT INTO billing_cursors (instance_id, next_period_start, next_close_at)
             SELECT b.instance_id || printf('-%07d', q.i), b.next_period_start, b.next_close_at
             FROM billing_cursors b, seq q WHERE b.instance_id = ?3",
            0,
        ),
        (
            "INSERT INTO usage_records (instance_id, item_code, start_time, end_time, value, scale,
                                        period_start, source, request_id, received_at)
             SELECT u.instance_id || printf('-%07d', q.i), u.item_code, u.start_time, u.end_time, u.value,
                    u.scale, u.period_start, u.source, u.request_id, u.received_at
             FROM seq q, usage_records u WHERE u.instance_id = ?3
             ORDER BY q.i, u.item_code, u.start_time, u.end_time",
            0,
        ),
    ];
    for (sql, limit) in statements {
        let mut stmt = tx.prepare(sql).unwrap();
        let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = Vec::new();
        let limit = *limit as i64;
        let per_customer = INSTANCES_PER_CUSTOMER as i64;
        let per_product = INSTANCES_PER_PRODUCT as i64;
        for (name, value) in [
            ("?1", &p as &dyn rusqlite::ToSql),
            ("?2", &c),
            ("?3", &i),
            ("?4", &limit),
            ("?5", &per_customer),
            ("?6", &per_product),
        ] {
            if stmt.parameter_index(name).unwrap().is_some() {
                params.push((name, value));
            }
        }
        stmt.execute(params.as_slice()).unwrap();
    }
    drop(tx.execute("DROP TABLE seq", []));
    tx.commit().unwrap();
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count("instances"), n as i64);
    assert_eq!(count("billing_cursors"), n as i64);
    assert_eq!(count("usage_records"), n as i64 * 2 * RECORDS_PER_ITEM);
}

/// The raw aggregate: every (instance, item) total of the hour.
fn raw_aggregate(path: &Path, period_start: i64) -> usize {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT instance_id, item_code, SUM(value) FROM usage_records WHERE period_start = ?1
             GROUP BY instance_id, item_code",
        )
        .unwrap();
    let rows = stmt
        .query_map([period_start], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .unwrap();
    rows.map(Result::unwrap).count()
}

/// Every instance has exactly one bill of 701.65 and one ledger deduction of it.
fn check_bills(path: &Path, n: usize, reference_instance: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(one("SELECT COUNT(*) FROM bills"), n as i64);
    assert_eq!(
        one("SELECT COUNT(DISTINCT instance_id) FROM bills"),
        n as i64
    );
    assert_eq!(
        one(&format!(
            "SELECT COUNT(*) FROM bills WHERE total_cents = {BILL_CENTS}"
        )),
        n as i64,
        "every bill is 701.65"
    );
    assert_eq!(
        one(&format!(
            "SELECT COUNT(*) FROM ledger_entries WHERE kind = 'bill' AND amount_cents = -{BILL_CENTS}"
        )),
        n as i64
    );
    // The lines (quantities, tier breakdowns) of every copy equal those of the API's instance.
    let reference: String = conn
        .query_row(
            "SELECT lines FROM bills WHERE instance_id = ?1",
            [reference_instance],
            |r| r.get(0),
        )
        .unwrap();
    let lines: serde_json::Value = serde_json::from_str(&reference).unwrap();
    assert_eq!(lines[0]["code"], "Frequency");
    assert_eq!(lines[0]["quantity"], "1500");
    assert_eq!(lines[0]["amount"], "700.00");
    assert_eq!(lines[1]["code"], "Storage");
    assert_eq!(lines[1]["quantity"], "5");
    assert_eq!(lines[1]["amount"], "0.05");
    let mut stmt = conn
        .prepare("SELECT COUNT(*) FROM bills WHERE lines = ?1")
        .unwrap();
    let same: i64 = stmt.query_row([&reference], |r| r.get(0)).unwrap();
    assert_eq!(same, n as i64, "every bill has the reference bill's lines");
}

struct Result_ {
    n: usize,
    run: Duration,
    raw: Duration,
}

fn main() {
    if !support::invoked_by_cargo_bench() {
        return;
    }
    let sizes: Vec<usize> = match std::env::var("BILL_RUN_SIZES") {
        Ok(v) => v.split(',').map(|s| s.trim().parse().unwrap()).collect(),
        Err(_) => SIZES.to_vec(),
    };
    let t = template();
    let dir = tempfile::tempdir().unwrap();
    let period_start = at("2026-03-27T08:00:00Z").timestamp();
    // The 08:00 hour closes at 10:00: as of then, exactly that hour of every instance is due.
    let as_of = at("2026-03-27T10:00:00Z");
    let operator = Principal::built_in_operator();
    let mut results = Vec::new();
    for &n in &sizes {
        let seeded = dir.path().join(format!("seed-{n}.db"));
        let (seed_time, ()) = time(|| seed(&t, &seeded, n));
        eprintln!("seeded {n} instances in {}", secs(seed_time));
        let (mut runs, mut raws) = (Vec::new(), Vec::new());
        for rep in 0..reps() {
            let path = dir.path().join(format!("run-{n}-{rep}.db"));
            std::fs::copy(&seeded, &path).unwrap();
            let (raw, groups) = time(|| raw_aggregate(&path, period_start));
            assert_eq!(groups, n * 2);
            let storage = Storage::new(NativeBackend::new(&path));
            let (run, report) = time(|| {
                nestmarket::bill_run(
                    storage.db().unwrap(),
                    &NativeOutbound,
                    &t.app.config(),
                    as_of,
                    as_of,
                    &operator,
                )
                .unwrap()
            });
            drop(storage);
            assert_eq!(report.bills_written, n, "{:?}", report.failures);
            assert!(report.failures.is_empty());
            check_bills(&path, n, &t.instance);
            eprintln!(
                "  n = {n}: bill run {}, raw aggregate {}",
                secs(run),
                secs(raw)
            );
            runs.push(run);
            raws.push(raw);
            std::fs::remove_file(&path).unwrap();
        }
        std::fs::remove_file(&seeded).unwrap();
        results.push(Result_ {
            n,
            run: median(runs),
            raw: median(raws),
        });
    }

    println!();
    println!("bill run: {}", machine());
    println!(
        "one closed hour, N instances × 2 items × {RECORDS_PER_ITEM} records, median of {}, file-backed SQLite",
        reps()
    );
    println!(
        "| instance-periods | bill run | per instance-period | raw SUM … GROUP BY | run / raw |"
    );
    println!(
        "|-----------------:|---------:|--------------------:|-------------------:|----------:|"
    );
    for r in &results {
        println!(
            "| {:>16} | {:>8} | {:>16.1} µs | {:>18} | {:>8.1}× |",
            r.n,
            secs(r.run),
            r.run.as_secs_f64() * 1e6 / r.n as f64,
            secs(r.raw),
            r.run.as_secs_f64() / r.raw.as_secs_f64()
        );
    }
    if let Some(r) = results.iter().find(|r| r.n == 10_000) {
        let within = results
            .iter()
            .all(|r| r.run.as_secs_f64() <= 5.0 * r.raw.as_secs_f64());
        println!(
            "goal 10,000 in < 5 s: {}; goal within 5× the raw aggregate: {}",
            if r.run.as_secs_f64() < 5.0 {
                "met"
            } else {
                "NOT met"
            },
            if within { "met" } else { "NOT met" }
        );
    }
}
