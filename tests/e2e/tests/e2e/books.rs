//! The books of a deployment, checked through the API after concurrency, a schedule or a crash:
//! every (instance, period) billed exactly once, every bill deducted exactly once, every balance
//! the sum of its ledger.

use std::collections::BTreeMap;

use serde_json::Value;
use testkit::{Market, cents, str_of};

use crate::harness::Spin;

/// A customer whose account a test checks: the operator topped it up by `topped_up` (cents).
pub(crate) struct Account {
    pub id: String,
    pub token: String,
    pub topped_up: i64,
}

impl Account {
    /// A new enterprise customer topped up with `amount`.
    pub(crate) fn open(market: &impl Market, amount: &str) -> Self {
        let (id, token) = market.funded_customer(amount);
        Account {
            id,
            token,
            topped_up: cents(amount),
        }
    }
}

/// The bills by (instance, period start); fails if any (instance, period) has two.
#[track_caller]
pub(crate) fn billed_once(bills: &[Value]) -> BTreeMap<(String, String), &Value> {
    let mut by_period = BTreeMap::new();
    for bill in bills {
        let key = (str_of(&bill["instance_id"]), str_of(&bill["period_start"]));
        if let Some(first) = by_period.insert(key.clone(), bill) {
            panic!("{key:?} is billed twice: {first} and {bill}");
        }
    }
    by_period
}

/// The customer's account agrees with the bills (all of them, anyone's): each of its non-zero
/// bills has exactly one ledger deduction of its total and nothing else is deducted, each entry's
/// `balance_after` follows from the one before, and the balance is the sum of the ledger — the
/// top-ups less the bills.
#[track_caller]
pub(crate) fn assert_account_agrees(market: &impl Market, account: &Account, bills: &[Value]) {
    let who = &account.id;
    let mut ledger = market.ledger(&account.token);
    ledger.reverse(); // oldest first
    let mut balance = 0;
    let mut top_ups = 0;
    let mut deductions: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for entry in &ledger {
        let amount = cents(&str_of(&entry["amount"]));
        balance += amount;
        assert_eq!(
            cents(&str_of(&entry["balance_after"])),
            balance,
            "{who}: the ledger does not add up at {entry}"
        );
        match entry["kind"].as_str() {
            Some("top_up") => top_ups += amount,
            Some("bill") => deductions
                .entry(str_of(&entry["reference"]))
                .or_default()
                .push(amount),
            _ => panic!("{who}: an unknown ledger entry {entry}"),
        }
    }
    assert_eq!(cents(&market.balance(&account.token)), balance, "{who}");
    assert_eq!(top_ups, account.topped_up, "{who}'s top-ups");
    let mut billed = 0;
    for bill in bills.iter().filter(|b| b["owner_id"] == who.as_str()) {
        let total = cents(&str_of(&bill["total"]));
        billed += total;
        let expected = if total == 0 || bill["test"] == true {
            vec![]
        } else {
            vec![-total]
        };
        let deducted = deductions.remove(&str_of(&bill["id"])).unwrap_or_default();
        assert_eq!(deducted, expected, "{who}: the deductions of {bill}");
    }
    assert!(
        deductions.is_empty(),
        "{who}: deductions for no bill of theirs: {deductions:?}"
    );
    assert_eq!(balance, account.topped_up - billed, "{who}'s balance");
}

/// The bill runs the schedule has made on the app's state directory (every host of it), from
/// the line the billing component logs per run.
pub(crate) fn scheduled_runs(app: &Spin) -> usize {
    app.component_log("billing", "stdout")
        .lines()
        .filter(|line| line.starts_with("scheduled run: "))
        .count()
}
