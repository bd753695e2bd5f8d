//! Metering ingestion (issue 5, item 5): 100-record `PushMeteringData` pushes through the domain's
//! HTTP handler — a new `Storage` (a new SQLite connection) per request, as Spin opens them, over
//! a database file — in records per second, next to a raw rusqlite insert of the same rows into
//! the same schema, measured in the same run.
//!
//! `cargo bench -p nestmarket --bench ingestion`

// Rates and timings are floats; no money is computed here.
#![allow(clippy::float_arithmetic)]

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::Request;
use nestmarket::api::{self, Api};
use nestmarket::platform::outbound::native::NativeOutbound;
use nestmarket::platform::storage::{Backend, Storage};
use serde_json::json;
use support::{machine, median, time};
use testkit::native::TestApp;
use testkit::{Market, at};

const RECORDS_PER_PUSH: usize = 100;
const PUSHES_PER_REP: usize = 100;
const WARM_UP_PUSHES: usize = 10;
const REPS: usize = 5;
/// Instances the pushes rotate over.
const INSTANCES: usize = 20;

/// One stored row, as the handler writes it.
struct Row {
    start: i64,
    end: i64,
    value: i64,
}

/// Push `p` goes to instance `p % INSTANCES`, as a provider's meter reporting its instances in
/// turn; its records are that instance's next 100 windows of the 08:00 hour (distinct starts,
/// each window longer than 5 minutes), so no record repeats another.
fn push_rows(t0: i64, p: usize) -> Vec<Row> {
    let k = (p / INSTANCES) * RECORDS_PER_PUSH;
    (k..k + RECORDS_PER_PUSH)
        .map(|g| Row {
            start: t0 + g as i64,
            end: t0 + 3_600,
            value: (g % 97) as i64 + 1,
        })
        .collect()
}

fn push_body(instance: &str, rows: &[Row]) -> Vec<u8> {
    let metering: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({"StartTime": r.start, "EndTime": r.end,
                   "Entities": [{"Key": "Frequency", "Value": r.value.to_string()}]})
        })
        .collect();
    // As the cloud API sends it: `Metering` is a JSON string.
    json!({"ServiceInstanceId": instance, "Metering": serde_json::to_string(&metering).unwrap()})
        .to_string()
        .into_bytes()
}

fn push(app: &TestApp, token: &str, body: Vec<u8>, now: DateTime<Utc>) {
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/metering")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    // A fresh Storage per request: a new connection, like a fresh Spin instance.
    let storage = Storage::new(app.backend.clone());
    let resp = api::handle(
        Api::Metering,
        req,
        &storage,
        &NativeOutbound,
        &app.config(),
        &|| now,
    );
    assert_eq!(
        resp.status(),
        200,
        "{}",
        String::from_utf8_lossy(resp.body())
    );
}

/// Inserts `rows` with one prepared statement, `per_tx` rows per transaction.
fn raw_insert(path: &std::path::Path, rows: &[(&str, &Row)], per_tx: usize, t0: i64) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    for chunk in rows.chunks(per_tx) {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO usage_records (instance_id, item_code, start_time, end_time, value, scale,
                                                period_start, source, request_id, received_at)
                     VALUES (?, 'Frequency', ?, ?, ?, 0, ?, 'service_provider', ?, ?)",
                )
                .unwrap();
            for (instance, r) in chunk {
                stmt.execute(rusqlite::params![
                    instance,
                    r.start,
                    r.end,
                    r.value,
                    t0,
                    "req-01J000000000000000000000",
                    "2026-03-27T09:59:00Z"
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

/// A copy of the app's database as it is now (before any push): same schema, same instance.
fn copy_of(app: &TestApp, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let db = app.backend.open_db().unwrap();
    db.execute("VACUUM INTO ?", &[path.to_str().unwrap().into()])
        .unwrap();
    path
}

fn rate(records: usize, d: Duration) -> f64 {
    records as f64 / d.as_secs_f64()
}

fn main() {
    if !support::invoked_by_cargo_bench() {
        return;
    }
    let app = TestApp::new();
    app.set_now(at("2026-03-27T08:00:00Z"));
    let (provider, _, product) = app.published_product();
    let (_, customer) = app.customer("individual");
    let instances: Vec<String> = (0..INSTANCES)
        .map(|_| app.order(&customer, &product))
        .collect();
    let t0 = at("2026-03-27T08:00:00Z").timestamp();
    // 09:59: the 08:00 hour is open for late data until 10:00, and every window has ended.
    let now = at("2026-03-27T09:59:00Z");
    let dir = tempfile::tempdir().unwrap();
    let one_tx = copy_of(&app, dir.path(), "raw-one-tx.db");
    let per_push = copy_of(&app, dir.path(), "raw-per-push.db");

    let pushes = WARM_UP_PUSHES + REPS * PUSHES_PER_REP;
    assert!(
        pushes / INSTANCES * RECORDS_PER_PUSH <= 3_000,
        "windows must stay longer than 5 minutes"
    );
    let work: Vec<(String, Vec<Row>)> = (0..pushes)
        .map(|p| (instances[p % INSTANCES].clone(), push_rows(t0, p)))
        .collect();
    let bodies: Vec<Vec<u8>> = work.iter().map(|(i, rows)| push_body(i, rows)).collect();
    let raw = |path: &std::path::Path, pushes: &[(String, Vec<Row>)], per_tx_is_push: bool| {
        let rows: Vec<(&str, &Row)> = pushes
            .iter()
            .flat_map(|(i, rows)| rows.iter().map(move |r| (i.as_str(), r)))
            .collect();
        let per_tx = if per_tx_is_push {
            RECORDS_PER_PUSH
        } else {
            rows.len()
        };
        raw_insert(path, &rows, per_tx, t0);
    };

    // Warm-up, then repetitions that interleave the three paths, so that a slow moment of the
    // disk hits all three alike.
    let (warm, measured) = (0..WARM_UP_PUSHES, WARM_UP_PUSHES..pushes);
    for p in warm.clone() {
        push(&app, &provider, bodies[p].clone(), now);
    }
    raw(&one_tx, &work[warm.clone()], false);
    raw(&per_push, &work[warm], true);
    let (mut handler, mut raw_one, mut raw_each) = (Vec::new(), Vec::new(), Vec::new());
    let measured: Vec<usize> = measured.collect();
    for rep in measured.chunks(PUSHES_PER_REP) {
        let rep_bodies: Vec<Vec<u8>> = rep.iter().map(|&p| bodies[p].clone()).collect();
        handler.push(
            time(|| {
                for body in rep_bodies {
                    push(&app, &provider, body, now);
                }
            })
            .0,
        );
        let range = rep[0]..rep[rep.len() - 1] + 1;
        raw_one.push(time(|| raw(&one_tx, &work[range.clone()], false)).0);
        raw_each.push(time(|| raw(&per_push, &work[range], true)).0);
    }
    assert_eq!(
        app.count("usage_records"),
        (pushes * RECORDS_PER_PUSH) as i64,
        "every record stored"
    );

    let per_rep = RECORDS_PER_PUSH * PUSHES_PER_REP;
    let (h, r, rp) = (
        rate(per_rep, median(handler)),
        rate(per_rep, median(raw_one)),
        rate(per_rep, median(raw_each)),
    );
    println!();
    println!("ingestion: {}", machine());
    println!(
        "{PUSHES_PER_REP} pushes of {RECORDS_PER_PUSH} records per repetition over {INSTANCES} instances, median of {REPS}, file-backed SQLite"
    );
    println!(
        "| path                                               | records/s | vs raw, one tx | vs raw, tx per 100 |"
    );
    println!(
        "|----------------------------------------------------|----------:|---------------:|-------------------:|"
    );
    let line = |name: &str, x: f64| {
        println!(
            "| {name:<50} | {x:>9.0} | {:>13.2}× | {:>17.2}× |",
            x / r,
            x / rp
        );
    };
    line("handler: POST /api/v1/metering, a connection each", h);
    line("raw rusqlite insert, all rows in one transaction", r);
    line("raw rusqlite insert, one transaction per 100 rows", rp);
    println!(
        "goal ≥ 20,000 records/s: {}; ≥ 1/4 of raw, all rows in one transaction: {}; ≥ 1/4 of raw, a transaction per 100 rows: {}",
        if h >= 20_000.0 { "met" } else { "NOT met" },
        if h >= r / 4.0 { "met" } else { "NOT met" },
        if h >= rp / 4.0 { "met" } else { "NOT met" }
    );
}
