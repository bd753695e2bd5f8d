//! A long catch-up: one bill run over three months of closed hours, a batch per period.

use serde_json::json;
use testkit::{Item, Market, at};

use crate::books::{Account, assert_account_agrees, billed_once};
use crate::harness::{Manifest, SpinUp};

/// Every batch of a run shares the run's "now", so its bill and ledger ids must still never
/// repeat (they did with 16 random bits per batch: ~100 % for 2,000 batches, a 500 from
/// `UNIQUE constraint failed: bills.id`).
#[test]
fn a_three_month_catch_up_bills_every_hour_in_one_run() {
    let app = SpinUp::new(Manifest::repo().without_cron()).start();
    let market = app.market().at(at("2026-01-01T00:00:00Z"));
    let (_, product) = market.product_with_items("hour", &[Item::running_time("1.00")], true);
    let account = Account::open(&market, "10000.00");
    market.order(&account.token, &product);
    // Every hour from 2026-01-01T00:00 to 2026-03-31T22:00 has closed by 2026-04-01T00:00 (an
    // hour closes two hours after it starts).
    let report = market.bill_run("2026-04-01T00:00:00Z");
    assert_eq!(report["failures"], json!([]), "{report}");
    assert_eq!(report["bills_written"], 2_159, "{report}");
    let bills = market.bills(&account.token, None);
    assert_eq!(billed_once(&bills).len(), 2_159);
    assert_account_agrees(&market, &account, &bills);
    // Each hour an hour of running time (1.00) and of the template's resources (2 × 0.80).
    assert_eq!(market.balance(&account.token), "4386.60");
}
