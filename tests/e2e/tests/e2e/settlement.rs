//! Settlement under Spin: a month closes provider by provider — a self-test instance whose
//! Prometheus answers nothing useful, or a customer's instance that can never be billed, holds
//! up nobody else — and the blocked provider closes once its period is written off; a month
//! keeps the instants it closed with when the deployment restarts in another time zone; and the
//! schedule closes every month that still has an open provider, oldest first, on its own.

use std::collections::BTreeMap;
use std::time::Duration as Wait;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use testkit::{
    Item, JsonServer, Market, at, cents, prometheus_vector, query_param, rfc3339, str_of,
};

use crate::harness::{HttpMarket, Manifest, SpinUp, eventually};

/// A stand-in Prometheus at the deployment's origin: its root answers every query with an
/// increase of 1, and its `/nothing` path with JSON that is no Prometheus answer.
fn prometheus_with_a_useless_path() -> JsonServer {
    JsonServer::start(|target| {
        if target.starts_with("/nothing") {
            json!({"nothing": "useful"})
        } else {
            let time = query_param(target, "time").and_then(|t| t.parse().ok());
            prometheus_vector(time.unwrap_or_default(), Some("1"))
        }
    })
}

/// A product whose `Requests` are counted at `endpoint`, taken through its reviews (or left in
/// its self-test): (provider id, provider token, product id).
fn counted_at(market: &HttpMarket, endpoint: &str, publish: bool) -> (String, String, String) {
    let (token, product) = market.product_with_items(
        "hour",
        &[Item::prometheus_requests(endpoint, "0.01")],
        publish,
    );
    let id = str_of(&market.get("/api/v1/me", &token).expect(200).json()["id"]);
    (id, token, product)
}

fn close(market: &HttpMarket, month: &str) -> Value {
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

fn statement(market: &HttpMarket, month: &str, provider: &str) -> Value {
    let admin = market.admin_token().to_owned();
    market
        .get(
            &format!("/api/v1/settlements?month={month}&provider_id={provider}"),
            &admin,
        )
        .expect(200)
        .json()["items"][0]
        .clone()
}

/// The scenario: a provider in self-test points its item at a path of the deployment's
/// Prometheus origin that answers nothing useful and places a test order; another's customer
/// runs an instance that can never be billed. Every bill run reports both; every other
/// provider's month closes all the same, and the blocked provider's once an operator writes its
/// period off.
#[test]
fn an_unbillable_instance_holds_up_only_its_own_provider_and_a_write_off_closes_it() {
    let prometheus = prometheus_with_a_useless_path();
    let nothing = format!("{}/nothing", prometheus.origin());
    let app = SpinUp::new(Manifest::repo().without_cron())
        .variable("prometheus_origin", prometheus.origin())
        .start();
    let market = app.market().at(at("2026-03-31T10:00:00Z"));
    let admin = market.admin_token().to_owned();

    let (healthy, _, healthy_product) = counted_at(&market, prometheus.origin(), true);
    let (tester, tester_token, self_test) = counted_at(&market, &nothing, false);
    let test_instance = market.order(&tester_token, &self_test);
    let (blocked, _, broken) = counted_at(&market, &nothing, true);
    let (_, customer) = market.funded_customer("100.00");
    market.order(&customer, &healthy_product);
    market.set_now(at("2026-03-31T15:00:00Z"));
    let unbillable = market.order(&customer, &broken);
    market.set_now(at("2026-03-31T15:30:00Z"));
    market.act(&customer, &unbillable, "release");

    market.set_now(at("2026-04-01T16:00:00Z"));
    let run = market.bill_run("2026-04-01T16:00:00Z");
    let failing: Vec<&str> = run["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["instance_id"].as_str().unwrap())
        .collect();
    assert!(
        failing.contains(&test_instance.as_str()) && failing.contains(&unbillable.as_str()),
        "{run}"
    );

    let closing = close(&market, "2026-03");
    assert_eq!(closing["closed"], json!([healthy]), "{closing}");
    assert_eq!(closing["open"].as_array().unwrap().len(), 1, "{closing}");
    let open = &closing["open"][0];
    assert_eq!(open["provider_id"], blocked.as_str(), "{closing}");
    assert_eq!(
        (
            &open["blocking"][0]["instance_id"],
            &open["blocking"][0]["period_start"]
        ),
        (&json!(unbillable), &json!("2026-03-31T15:00:00Z"))
    );
    // The healthy provider's March and April close; the self-test provider holds up nothing.
    assert_eq!(statement(&market, "2026-03", &healthy)["status"], "closed");
    assert_eq!(statement(&market, "2026-03", &tester)["status"], "closed");
    assert_eq!(statement(&market, "2026-03", &blocked)["status"], "open");

    market
        .post(
            &format!("/api/v1/instances/{unbillable}/write-offs"),
            &admin,
            json!({"period_start": "2026-03-31T15:00:00Z",
                   "reason": "its Prometheus answers nothing useful"}),
        )
        .expect(201);
    let closing = close(&market, "2026-03");
    assert_eq!(closing["open"], json!([]), "{closing}");
    assert_eq!(closing["statements_written"], 1, "{closing}");
    let written = statement(&market, "2026-03", &blocked);
    assert_eq!(
        (
            &written["status"],
            &written["gross"],
            &written["write_off_count"]
        ),
        (&json!("closed"), &json!("0.00"), &json!(1)),
        "{written}"
    );
    // Nothing was deducted for the written-off period.
    assert!(market.bills(&admin, Some(&unbillable)).is_empty());
}

/// The bills of `provider` by the month whose instants contain their period's start: (count,
/// product fees in cents) per month.
fn bills_by_month(bills: &[Value], months: &[(String, Value)]) -> BTreeMap<String, (i64, i64)> {
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for bill in bills {
        let start = at(bill["period_start"].as_str().unwrap());
        let month = months
            .iter()
            .find(|(_, p)| {
                at(p["start"].as_str().unwrap()) <= start && start < at(p["end"].as_str().unwrap())
            })
            .map(|(m, _)| m.clone())
            .unwrap_or_else(|| panic!("{bill} is in no month"));
        let entry = out.entry(month).or_default();
        entry.0 += 1;
        entry.1 += cents(bill["product_fees"].as_str().unwrap());
    }
    out
}

/// The test: March closes under Asia/Shanghai, the deployment restarts with UTC, April
/// closes. The hours from March 31st 16:00 to midnight UTC — April in Shanghai, March in UTC —
/// are in April's statement, once, and every bill of both months in exactly one statement.
#[test]
fn a_closed_month_keeps_its_instants_when_the_deployment_restarts_in_another_zone() {
    let state = tempfile::tempdir().expect("a state directory");
    let start = |zone: &str| {
        SpinUp::new(Manifest::repo().without_cron())
            .variable("billing_timezone", zone)
            .state_dir(state.path())
            .start()
    };
    let shanghai = start("Asia/Shanghai");
    let market = shanghai.market().at(at("2026-03-31T10:00:00Z"));
    let (token, product) = market.product_with_items("hour", &[Item::running_time("1.00")], true);
    let provider = str_of(&market.get("/api/v1/me", &token).expect(200).json()["id"]);
    let (_, customer) = market.funded_customer("100.00");
    let instance = market.order(&customer, &product);
    market.set_now(at("2026-04-01T04:00:00Z"));
    market.act(&customer, &instance, "release");
    market.set_now(at("2026-04-02T00:00:00Z"));
    let march = close(&market, "2026-03");
    assert_eq!(
        march["period"],
        json!({"start": "2026-02-28T16:00:00Z", "end": "2026-03-31T16:00:00Z"}),
        "{march}"
    );
    drop(shanghai);

    let utc = start("UTC");
    let market = utc.market().at(at("2026-05-02T00:00:00Z"));
    let admin = market.admin_token().to_owned();
    let april = close(&market, "2026-04");
    assert_eq!(
        april["period"],
        json!({"start": "2026-03-31T16:00:00Z", "end": "2026-05-01T00:00:00Z"}),
        "{april}"
    );
    let months = vec![
        (
            "2026-03".to_owned(),
            statement(&market, "2026-03", &provider),
        ),
        (
            "2026-04".to_owned(),
            statement(&market, "2026-04", &provider),
        ),
    ];
    let periods: Vec<(String, Value)> = months
        .iter()
        .map(|(m, s)| (m.clone(), s["period"].clone()))
        .collect();
    // March is read back as it closed, whatever the zone now.
    assert_eq!(periods[0].1["end"], "2026-03-31T16:00:00Z");
    let bills = market.bills(&admin, Some(&instance));
    // 10:00 on March 31st to 03:00 on April 1st: 18 hours, 6 of them March's in Shanghai.
    assert_eq!(bills.len(), 18);
    let by_month = bills_by_month(&bills, &periods);
    assert_eq!(by_month["2026-03"], (6, 600), "{by_month:?}");
    assert_eq!(by_month["2026-04"], (12, 1_200), "{by_month:?}");
    for (month, s) in &months {
        assert_eq!(s["status"], "closed", "{s}");
        let (count, fees) = by_month[month];
        assert_eq!(s["bill_count"], count, "{month}: {s}");
        assert_eq!(cents(s["gross"].as_str().unwrap()), fees, "{month}: {s}");
    }
}

/// The `YYYY-MM` of the month `back` months before the one `now` is in, in Shanghai (UTC+8 all
/// year), and the UTC instant of its last day's 18:00 there (10:00 UTC).
fn month_back(now: DateTime<Utc>, back: u32) -> (String, DateTime<Utc>) {
    let local = (now + Duration::hours(8)).date_naive();
    let mut first = NaiveDate::from_ymd_opt(local.year(), local.month(), 1).expect("a first day");
    for _ in 0..back {
        first = (first - Duration::days(1))
            .with_day(1)
            .expect("a first day");
    }
    let next = (first + Duration::days(32))
        .with_day(1)
        .expect("a first day");
    let last_evening = (next - Duration::days(1))
        .and_hms_opt(18, 0, 0)
        .expect("18:00");
    (
        first.format("%Y-%m").to_string(),
        Utc.from_utc_datetime(&last_evening) - Duration::hours(8),
    )
}

/// The months a scheduled run tried to close, from the billing component's log: its report of
/// each run (`scheduled run: {…}`).
fn months_closed_by_the_schedule(log: &str) -> Vec<Vec<String>> {
    log.lines()
        .filter_map(|line| line.strip_prefix("scheduled run: "))
        .filter_map(|report| serde_json::from_str::<Value>(report).ok())
        .map(|report| {
            report["settlement"]
                .as_array()
                .map(|closes| closes.iter().map(|c| str_of(&c["month"])).collect())
                .unwrap_or_default()
        })
        .filter(|months: &Vec<String>| !months.is_empty())
        .collect()
}

/// The schedule, live: months three and two back have a healthy provider's bills and a blocked
/// provider's unbillable period. The schedule closes both months for the healthy provider on its
/// own, oldest first, and the blocked one's too once its period is written off — months before
/// the previous one, which it once never tried.
#[test]
fn the_schedule_closes_months_oldest_first_and_one_blocked_provider_blocks_nobody_else() {
    let prometheus = prometheus_with_a_useless_path();
    let nothing = format!("{}/nothing", prometheus.origin());
    let state = tempfile::tempdir().expect("a state directory");
    let (three_back, last_day) = month_back(Utc::now(), 3);
    let (two_back, _) = month_back(Utc::now(), 2);
    let (healthy, blocked, unbillable) = {
        let setup = SpinUp::new(Manifest::repo().without_cron())
            .variable("prometheus_origin", prometheus.origin())
            .state_dir(state.path())
            .start();
        let market = setup.market().at(last_day);
        let (healthy, _, product) = counted_at(&market, prometheus.origin(), true);
        let (blocked, _, broken) = counted_at(&market, &nothing, true);
        let (_, customer) = market.funded_customer("100.00");
        // Ten hours across the end of the month three back, into the next.
        let running = market.order(&customer, &product);
        let unbillable = market.order(&customer, &broken);
        market.set_now(last_day + Duration::minutes(30));
        market.act(&customer, &unbillable, "release");
        market.set_now(last_day + Duration::hours(10));
        market.act(&customer, &running, "release");
        (healthy, blocked, unbillable)
    };

    let app = SpinUp::new(Manifest::repo().cron_every_two_seconds())
        .variable("prometheus_origin", prometheus.origin())
        .state_dir(state.path())
        .start();
    let market = app.market();
    let admin = market.admin_token().to_owned();
    let closed =
        |month: &str, provider: &str| statement(&market, month, provider)["status"] == "closed";
    eventually(
        "the schedule closes the healthy provider's months",
        Wait::from_secs(120),
        || (closed(&three_back, &healthy) && closed(&two_back, &healthy)).then_some(()),
    );
    assert!(!closed(&three_back, &blocked));
    assert!(!closed(&two_back, &blocked));

    let period = rfc3339(last_day);
    market
        .post(
            &format!("/api/v1/instances/{unbillable}/write-offs"),
            &admin,
            json!({"period_start": period, "reason": "its Prometheus answers nothing useful"}),
        )
        .expect(201);
    eventually(
        "the schedule closes the blocked provider's months",
        Wait::from_secs(120),
        || (closed(&three_back, &blocked) && closed(&two_back, &blocked)).then_some(()),
    );
    let written = statement(&market, &three_back, &blocked);
    assert_eq!(written["write_off_count"], 1, "{written}");
    // Every scheduled run tried the months in order, oldest first.
    let runs = months_closed_by_the_schedule(&app.component_log("billing", "stdout"));
    assert!(!runs.is_empty());
    for months in &runs {
        let mut sorted = months.clone();
        sorted.sort();
        assert_eq!(months, &sorted, "{runs:?}");
    }
    assert!(runs[0].contains(&three_back), "{runs:?}");
}
