//! The schedule, live: a copy of spin.toml whose `[[trigger.cron]]` fires every two seconds. The
//! cron trigger plugin runs the billing component with the event's time as "now"; it bills
//! every closed period on its own, exactly once, however its runs and HTTP bill runs overlap.

use chrono::{DateTime, Datelike, Duration, DurationRound, Utc};
use serde_json::json;
use testkit::{Item, Market, rfc3339};

use crate::books::{Account, assert_account_agrees, billed_once, scheduled_runs};
use crate::harness::{Manifest, SpinUp, eventually};

const CUSTOMERS: usize = 4;
const INSTANCES_PER_CUSTOMER: usize = 50;
/// Each instance ran for this many periods (the last one half), two days ago: as many closed
/// periods to bill (a run bills them in one batch per period).
const HOURS: i64 = 10;

#[test]
fn the_schedule_bills_every_closed_period_on_its_own_once_while_http_runs_race_it() {
    let state = tempfile::tempdir().expect("a state directory");
    let t0 = Utc::now()
        .duration_trunc(Duration::hours(1))
        .expect("an hour")
        - Duration::days(2);

    // The backlog, made by an app without the schedule on a simulated clock (the schedule would
    // bill its past periods while it is being made): instances that ran HOURS hours, billed per
    // hour of running time, which the platform reports and no test push can race. Released
    // half-way through their last hour.
    let (accounts, instances, fresh) = {
        let setup = SpinUp::new(Manifest::repo().without_cron())
            .state_dir(state.path())
            .start();
        let market = setup.market().at(t0);
        let (_, product) = market.product_with_items("hour", &[Item::running_time("1.50")], true);
        let accounts: Vec<Account> = (0..CUSTOMERS)
            .map(|_| Account::open(&market, "2000.00"))
            .collect();
        let instances: Vec<(usize, String)> = (0..CUSTOMERS * INSTANCES_PER_CUSTOMER)
            .map(|i| {
                let owner = i % CUSTOMERS;
                (owner, market.order(&accounts[owner].token, &product))
            })
            .collect();
        market.set_now(t0 + Duration::hours(HOURS) - Duration::minutes(30));
        for (owner, instance) in &instances {
            market.act(&accounts[*owner].token, instance, "release");
        }
        // And one ordered just now: its first period closes in two hours, after this test.
        let fresh = setup.market().order(&accounts[0].token, &product);
        (accounts, instances, fresh)
    };

    let app = SpinUp::new(Manifest::repo().cron_every_two_seconds())
        .state_dir(state.path())
        .start();
    let market = app.market();
    let admin = market.admin_token();
    // No bill run has been asked for: the first bills are the schedule's.
    eventually(
        "the schedule's first bills",
        std::time::Duration::from_secs(120),
        || {
            let page = market
                .get("/api/v1/bills?limit=1", admin)
                .expect(200)
                .json();
            (page["items"] != json!([])).then_some(())
        },
    );
    // Operators' runs race the schedule's, and each other.
    std::thread::scope(|s| {
        for _ in 0..3 {
            let operator = market.on_real_clock();
            s.spawn(move || {
                for _ in 0..3 {
                    let report = operator.bill_run(&rfc3339(Utc::now()));
                    assert_eq!(report["failures"], json!([]), "{report}");
                }
            });
        }
    });
    let expected = instances.len() * usize::try_from(HOURS).expect("hours");
    let bills = eventually(
        "every closed period billed",
        std::time::Duration::from_secs(180),
        || {
            let bills = market.bills(admin, None);
            (bills.len() >= expected).then_some(bills)
        },
    );
    // Later events find nothing more to bill.
    let firings = scheduled_runs(&app);
    eventually(
        "two more scheduled bill runs",
        std::time::Duration::from_secs(60),
        || (scheduled_runs(&app) >= firings + 2).then_some(()),
    );
    assert_eq!(market.bills(admin, None), bills, "billed again");

    let billed = billed_once(&bills);
    assert_eq!(billed.len(), expected);
    for (_, instance) in &instances {
        for hour in 0..HOURS {
            let period = rfc3339(t0 + Duration::hours(hour));
            let bill = billed
                .get(&(instance.clone(), period.clone()))
                .unwrap_or_else(|| panic!("{instance} {period} is not billed"));
            let fees = if hour < HOURS - 1 { "1.50" } else { "0.75" };
            assert_eq!(bill["product_fees"], fees, "{bill}");
        }
    }
    assert!(
        market
            .bills(admin, None)
            .iter()
            .all(|b| b["instance_id"] != fresh.as_str())
    );
    for account in &accounts {
        assert_account_agrees(&market, account, &bills);
        // 2,000.00 − 50 instances × (9 × (1.50 + 1.60) + (0.75 + 0.80)): running time and the
        // template's resources, 2 × 0.80/h
        assert_eq!(market.balance(&account.token), "527.50");
    }

    // The schedule also closes the month before the bills' month (Asia/Shanghai, UTC+8 all
    // year), from the end of the 1st day after it: these bills are not that month's, so it
    // settles nothing. (On the 1st and 2nd of a month the bills are the previous month's.)
    let shanghai = |t: DateTime<Utc>| (t + Duration::hours(8)).date_naive();
    let bills_month = shanghai(t0).with_day(1).expect("a first day");
    let previous = (bills_month - Duration::days(1))
        .format("%Y-%m")
        .to_string();
    let statements = market
        .get(&format!("/api/v1/settlements?month={previous}"), admin)
        .expect(200)
        .json();
    let today = shanghai(Utc::now());
    let closable = bills_month < today.with_day(1).expect("a first day") || today.day() > 1;
    assert_eq!(
        statements["status"],
        if closable { "closed" } else { "open" },
        "{statements}"
    );
    assert_eq!(statements["items"], json!([]));
}
