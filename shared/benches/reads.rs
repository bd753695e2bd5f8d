//! Reads by index (issue 19, item 6), on one database file in one run: the sum behind a
//! provider's open-month statement among 200,000 bills of 2,000 other providers, as the query
//! was (one for one provider or all: SQLite range-scans every tenant's bills of the month) and
//! as it is (by the provider's index); and the first page of an instance's usage among 100,000
//! records through the API, with `usage_records_in_order` and without it (dropped: the page
//! then sorts every record of its range).
//!
//! `cargo bench -p nestmarket --bench reads`

// Timings are floats; no money is computed here.
#![allow(clippy::float_arithmetic)]

mod support;

use std::time::Duration;

use nestmarket::platform::storage::Backend;
use serde_json::json;
use support::{machine, median, time};
use testkit::native::TestApp;
use testkit::{Market, at};

const OTHER_BILLS: i64 = 200_000;
const OTHER_PROVIDERS: i64 = 2_000;
const RECORDS: i64 = 100_000;
const REPS: usize = 21;

fn timed(app: &TestApp, path: &str, token: &str) -> Duration {
    let runs = (0..REPS)
        .map(|_| time(|| app.get(path, token).expect(200)).0)
        .collect();
    median(runs)
}

fn main() {
    if !support::invoked_by_cargo_bench() {
        return;
    }
    let app = TestApp::new();
    app.set_now(at("2026-03-27T08:00:00Z"));
    let (provider, _, product) = app.published_product();
    let provider_id = app.get("/api/v1/me", &provider).expect(200).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, customer) = app.funded_customer("1000.00");
    let instance = app.order(&customer, &product);
    let db = app.backend.open_db().unwrap();
    // The other tenants' bills stand for instances this bench does not create.
    db.execute("PRAGMA foreign_keys = OFF", &[]).unwrap();
    let march = at("2026-03-01T00:00:00+08:00").timestamp();
    // 700 hourly bills per instance, 100 per provider; the provider's own 100 bills too.
    let bills = |count: i64, provider: &str, prefix: &str| {
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
             INSERT INTO bills (id, instance_id, owner_id, provider_id, product_id, period_start,
                                period_end, currency, total_cents, test, lines, created_at,
                                product_fees_cents)
             SELECT ? || i, ? || (i / 700), 'usr-c', COALESCE(?, 'usr-p' || (i % ?)), 'prod-x',
                    ? + (i % 700) * 3600, ? + (i % 700) * 3600 + 3600, 'CNY', 100, 0, '[]',
                    '2026-04-01T00:00:00Z', 100
             FROM n",
            &[
                count.into(),
                format!("bill-{prefix}-").into(),
                format!("si-{prefix}-").into(),
                (!provider.is_empty()).then(|| provider.to_owned()).into(),
                OTHER_PROVIDERS.into(),
                march.into(),
                march.into(),
            ],
        )
        .unwrap();
    };
    bills(OTHER_BILLS, "", "other");
    bills(100, &provider_id, "own");
    let hour = at("2026-03-27T08:00:00Z").timestamp();
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
         INSERT INTO usage_records (instance_id, item_code, source, start_time, end_time, value,
                                    scale, period_start, request_id, received_at)
         SELECT ?, 'Frequency', 'provider', ? + (i % 24) * 3600 + i % 3000, ? + (i % 24) * 3600
                + 3000 + i, 1, 0, ? + (i % 24) * 3600, 'req-x', '2026-03-28T00:00:00Z'
         FROM n",
        &[
            RECORDS.into(),
            instance.as_str().into(),
            hour.into(),
            hour.into(),
            hour.into(),
        ],
    )
    .unwrap();
    db.execute("ANALYZE", &[]).unwrap();
    app.set_now(at("2026-03-31T08:00:00Z"));
    let statement = "/api/v1/settlements?month=2026-03";
    let page = format!("/api/v1/metering/usage?instance_id={instance}&limit=50");
    let own = app.get(statement, &provider).expect(200).json();
    assert_eq!(own["items"][0]["gross"], json!("100.00"), "{own}");
    // The statement's sum as it was read before (one query for one provider or all, which
    // SQLite answers by the month's index, every tenant's bills of the month) and as it is read
    // now (by the provider's index); both run raw on the same file.
    let sum = |sql: &str| {
        let runs = (0..REPS)
            .map(|_| {
                time(|| {
                    db.execute(
                        sql,
                        &[
                            provider_id.as_str().into(),
                            march.into(),
                            (march + 40 * 86_400).into(),
                        ],
                    )
                    .unwrap()
                })
                .0
            })
            .collect();
        median(runs)
    };
    let grouped = "GROUP BY provider_id, product_id ORDER BY provider_id, product_id";
    let sum_before = sum(&format!(
        "SELECT provider_id, product_id, SUM(product_fees_cents), COUNT(*) FROM bills
         WHERE test = 0 AND (?1 IS NULL OR provider_id = ?1)
           AND period_start >= ?2 AND period_start < ?3 {grouped}"
    ));
    let sum_after = sum(&format!(
        "SELECT provider_id, product_id, SUM(product_fees_cents), COUNT(*) FROM bills
         WHERE provider_id = ?1 AND period_start >= ?2 AND period_start < ?3 AND test = 0 {grouped}"
    ));
    let page_after = timed(&app, &page, &provider);
    db.execute("DROP INDEX usage_records_in_order", &[])
        .unwrap();
    let page_before = timed(&app, &page, &provider);
    println!("Machine: {}\n", machine());
    println!("| read | before | after |");
    println!("|---|---|---|");
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "| the sum behind a provider's open-month statement (its 100 bills among {OTHER_BILLS} of {OTHER_PROVIDERS} providers): the query as it was, as it is | {} | {} |",
        ms(sum_before),
        ms(sum_after)
    );

    println!(
        "| the first usage page through the API, 50 of an instance's {RECORDS} records: without, with `usage_records_in_order` | {} | {} |",
        ms(page_before),
        ms(page_after)
    );
}
