//! Credit notes and collection under Spin, on the test clock: a credit note retried under its
//! `Idempotency-Key` credits once and reduces the provider's statement of its month; a bill
//! covered only by a later top-up is collected — and paid out — in the month of the top-up, and
//! every bill's product fees end in exactly one month's statement.

use serde_json::{Value, json};
use testkit::{Item, Market, at, cents, str_of};

use crate::harness::{HttpMarket, Manifest, SpinUp};

fn close(market: &HttpMarket, instant: &str, month: &str) -> Value {
    market.set_now(at(instant));
    let admin = market.admin_token().to_owned();
    market
        .post(
            "/api/v1/settlements/runs",
            &admin,
            json!({ "month": month }),
        )
        .expect(200)
        .json()
}

#[test]
fn a_retried_credit_note_credits_once_and_a_later_top_up_is_collected_in_its_month() {
    let app = SpinUp::new(Manifest::repo().without_cron())
        .variable("commission_rate", "0.10")
        .start();
    let market = app.market().at(at("2026-03-31T10:00:00Z"));
    let admin = market.admin_token().to_owned();
    let (provider, product) =
        market.product_with_items("hour", &[Item::running_time("1.00")], true);
    // 1.00 of funds for four hours of 1.00 and 1.60 of resources, 10:00 to 14:00 on the last
    // day of March in Shanghai: the first hour's product fees are collected, the rest owed.
    let (customer_id, customer) = market.funded_customer("1.00");
    let instance = market.order(&customer, &product);
    market.set_now(at("2026-03-31T14:00:00Z"));
    market.act(&customer, &instance, "release");
    market.set_now(at("2026-03-31T15:59:00Z"));
    market.bill_run("2026-03-31T15:59:00Z");
    let bills = market.bills(&customer, Some(&instance));
    assert_eq!(bills.len(), 4);
    assert_eq!(market.balance(&customer), "-9.40");

    // A credit note of 0.50 of the first hour's running time, sent twice under one key: it
    // gives 0.50 of what was collected back, once, and that pays the hour's resources.
    let path = format!("/api/v1/bills/{}/credit-notes", str_of(&bills[0]["id"]));
    let credit = || {
        market
            .call_with_headers(
                "POST",
                &path,
                Some(&admin),
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", "credit-2026-03-31"),
                ],
                json!({"amount": "0.50", "reason": "half an hour was ours"})
                    .to_string()
                    .into_bytes(),
            )
            .expect(201)
            .json()
    };
    let note = credit();
    assert_eq!(credit(), note);
    let credits = market
        .ledger(&customer)
        .into_iter()
        .filter(|e| e["kind"] == "credit")
        .count();
    assert_eq!(credits, 1);
    assert_eq!(market.balance(&customer), "-8.90");

    // March closes: 0.50 collected (1.00 less the 0.50 given back), 3.00 still owed.
    let closing = close(&market, "2026-04-01T16:00:00Z", "2026-03");
    assert_eq!(closing["statements_written"], 1, "{closing}");
    let march = market.statement(&provider, "2026-03");
    let figures = |s: &Value| {
        [
            "gross",
            "collected",
            "credited",
            "uncollected",
            "commission",
            "net",
        ]
        .map(|k| s[k].clone())
    };
    assert_eq!(
        figures(&march),
        ["4.00", "0.50", "0.50", "3.00", "0.05", "0.45"].map(|v| json!(v))
    );

    // In April a top-up covers the rest: March's product fees collected then are April's.
    market.set_now(at("2026-04-10T00:00:00Z"));
    market.top_up(&customer_id, "100.00");
    let april = market.statement(&provider, "2026-04");
    assert_eq!(
        figures(&april),
        ["0.00", "3.00", "0.00", "0.00", "0.30", "2.70"].map(|v| json!(v))
    );
    assert_eq!(
        figures(&market.statement(&provider, "2026-03")),
        figures(&march)
    );
    // Every bill's collected product fees are in exactly one of the two statements.
    let collected: i64 = market
        .bills(&customer, Some(&instance))
        .iter()
        .map(|b| cents(&str_of(&b["parts"]["product_fees"]["collected"])))
        .sum();
    assert_eq!(
        cents(&str_of(&march["collected"])) + cents(&str_of(&april["collected"])),
        collected
    );
    close(&market, "2026-05-01T16:00:00Z", "2026-04");
    assert_eq!(market.statement(&provider, "2026-04")["status"], "closed");
    assert_eq!(
        figures(&market.statement(&provider, "2026-04")),
        figures(&april)
    );
}
