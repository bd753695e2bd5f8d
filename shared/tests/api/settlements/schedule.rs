//! Closing a month again, at once, or on the schedule's own, and across a change of the
//! billing time zone: each statement is written once and closed months keep their instants.

use nestmarket::platform::outbound::native::NativeOutbound;
use nestmarket::platform::storage::{Backend, Storage};
use nestmarket::scheduled_run;
use serde_json::{Value, json};
use testkit::native::ADMIN;
use testkit::{Market, at, cents, str_of};

use super::{MARCH_CLOSES, Unbillable, World, unbillable, world, write_off};

#[test]
fn closing_twice_or_at_once_writes_each_statement_once() {
    let w = world();
    w.at(MARCH_CLOSES);
    std::thread::scope(|s| {
        let closes: Vec<_> = (0..6).map(|_| s.spawn(|| w.close("2026-03"))).collect();
        let written: i64 = closes
            .into_iter()
            .map(|c| {
                c.join().unwrap().expect(200).json()["statements_written"]
                    .as_i64()
                    .unwrap()
            })
            .sum();
        assert_eq!(written, 2);
    });
    let again = w.close("2026-03").expect(200).json();
    assert_eq!(again["statements_written"], 0);
    assert_eq!(again["items"].as_array().unwrap().len(), 2);
    assert_eq!(w.app.count("settlements"), 2);
}

impl World {
    /// The schedule's run at `instant`.
    fn scheduled(&self, instant: &str) -> Value {
        let storage = Storage::new(self.app.backend.clone());
        let run = scheduled_run(
            storage.db().unwrap(),
            &NativeOutbound,
            &self.app.config(),
            at(instant),
        )
        .unwrap();
        serde_json::to_value(run).unwrap()
    }
}

/// The months a scheduled run tried to close, in the order it tried them.
fn months_tried(report: &Value) -> Vec<String> {
    report["settlement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| str_of(&c["month"]))
        .collect()
}

#[test]
fn the_schedule_closes_the_month_before_once_it_may() {
    let w = world();
    let early = w.scheduled("2026-04-01T15:55:00Z");
    assert!(
        !months_tried(&early).contains(&"2026-03".to_owned()),
        "{early}"
    );
    assert!(early["bill_run"]["bills_written"].as_i64().unwrap() > 0);
    let due = w.scheduled(MARCH_CLOSES);
    let march = due["settlement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["month"] == "2026-03")
        .unwrap_or_else(|| panic!("{due}"));
    assert_eq!(march["statements_written"], 2, "{due}");
    let later = w.scheduled("2026-04-01T16:05:00Z");
    assert_eq!(later["settlement"], json!([]), "{later}");
    assert_eq!(w.app.count("settlements"), 2);
}

#[test]
fn the_schedule_closes_every_month_with_an_open_provider_oldest_first() {
    let w = world();
    // A third provider's instance ran half an hour in February and can never be billed.
    let Unbillable {
        provider_id: blocked,
        instance,
        ..
    } = unbillable(&w, "2026-02-27T10:00:00Z", "2026-02-27T10:30:00Z");
    let first = w.scheduled("2026-05-02T00:00:00Z");
    let tried = months_tried(&first);
    assert_eq!(
        tried,
        ["2026-01", "2026-02", "2026-03", "2026-04"],
        "{first}"
    );
    for c in first["settlement"].as_array().unwrap() {
        let open = if c["month"] == "2026-01" {
            json!([])
        } else {
            json!([blocked])
        };
        assert_eq!(c["open"], open, "{c}");
    }
    // Every other provider's March and April are closed, although February is still open.
    for month in ["2026-03", "2026-04"] {
        assert_eq!(w.statements(&w.provider_a.1, month)["status"], "closed");
        assert_eq!(w.statements(&w.provider_b.1, month)["status"], "closed");
    }
    assert_eq!(w.app.count("settlements"), 4);
    // Once the period is written off, the next event closes February to April, oldest first,
    // for the provider that waited; then nothing is left to try.
    w.at("2026-05-02T00:00:00Z");
    write_off(&w, ADMIN, &instance, "2026-02-27T10:00:00Z").expect(201);
    let second = w.scheduled("2026-05-02T00:05:00Z");
    assert_eq!(
        months_tried(&second),
        ["2026-02", "2026-03", "2026-04"],
        "{second}"
    );
    assert_eq!(second["settlement"][0]["statements_written"], 1, "{second}");
    let february = w
        .app
        .get(
            &format!("/api/v1/settlements?month=2026-02&provider_id={blocked}"),
            ADMIN,
        )
        .expect(200)
        .json();
    assert_eq!(february["items"][0]["status"], "closed", "{february}");
    assert_eq!(february["items"][0]["write_off_count"], 1);
    assert_eq!(w.scheduled("2026-05-02T00:10:00Z")["settlement"], json!([]));
}

/// Every non-test bill with a period starting before `end`: (id, provider, product fees in cents).
fn bills_before(w: &World, end: &str) -> Vec<(String, String, i64)> {
    w.app
        .bills(ADMIN, None)
        .iter()
        .filter(|b| b["test"] == false && at(b["period_start"].as_str().unwrap()) < at(end))
        .map(|b| {
            (
                str_of(&b["id"]),
                str_of(&b["provider_id"]),
                cents(b["product_fees"].as_str().unwrap()),
            )
        })
        .collect()
}

/// The statements each bill is linked to.
fn statements_of_bills(w: &World) -> std::collections::BTreeMap<String, Vec<String>> {
    let db = w.app.backend.open_db().unwrap();
    let mut links: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for row in db
        .execute("SELECT bill_id, statement_id FROM statement_bills", &[])
        .unwrap()
    {
        links
            .entry(row.text(0).unwrap())
            .or_default()
            .push(row.text(1).unwrap());
    }
    links
}

/// Closes March in `from`, redeploys with `to` as the billing time zone, closes April when it
/// may: every bill of both months is in exactly one statement, March keeps the instants it
/// closed with, April starts where March ended, and the totals match the bills.
fn the_time_zone_changes_between_two_closes(
    from: &str,
    to: &str,
    march: [&str; 2],
    april_closes: &str,
) {
    let w = world();
    let zone = |tz: &str| {
        let tz = tz.to_owned();
        move |name: &str| match name {
            "allow_clock_override" => Some("true".to_owned()),
            "commission_rate" => Some("0.10".to_owned()),
            "billing_timezone" => Some(tz.clone()),
            _ => None,
        }
    };
    w.app.redeploy(zone(from));
    w.at("2026-04-02T00:00:00Z");
    let closing = w.close("2026-03").expect(200).json();
    assert_eq!(
        closing["period"],
        json!({"start": march[0], "end": march[1]}),
        "{closing}"
    );
    w.app.redeploy(zone(to));
    w.at(april_closes);
    let april = w.close("2026-04").expect(200).json();
    assert_eq!(april["period"]["start"], march[1], "{april}");
    assert_eq!(april["open"], json!([]), "{april}");
    // March is as it closed, whatever the zone now.
    let read = w.statements(ADMIN, "2026-03");
    assert_eq!(read["period"]["end"], march[1], "{read}");

    let end = str_of(&april["period"]["end"]);
    let bills = bills_before(&w, &end);
    let links = statements_of_bills(&w);
    for (id, _, _) in &bills {
        assert_eq!(
            links.get(id).map(Vec::len),
            Some(1),
            "{id} in {:?}",
            links.get(id)
        );
    }
    assert_eq!(
        links.len(),
        bills.len(),
        "no test bill and no later bill is settled"
    );
    for (provider, _) in [&w.provider_a, &w.provider_b] {
        let earned: i64 = bills
            .iter()
            .filter(|(_, p, _)| p == provider)
            .map(|(_, _, fees)| fees)
            .sum();
        let settled: i64 = ["2026-03", "2026-04"]
            .iter()
            .map(|m| {
                let s = w
                    .app
                    .get(
                        &format!("/api/v1/settlements?month={m}&provider_id={provider}"),
                        ADMIN,
                    )
                    .expect(200)
                    .json();
                assert_eq!(s["items"][0]["status"], "closed", "{s}");
                cents(s["items"][0]["gross"].as_str().unwrap())
            })
            .sum();
        assert_eq!(settled, earned, "{provider}");
    }
}

#[test]
fn a_closed_month_keeps_its_instants_when_the_time_zone_changes_shanghai_to_utc() {
    // The bills of [Mar 31 16:00Z, Apr 1 00:00Z) are April's: not in closed March, not lost.
    the_time_zone_changes_between_two_closes(
        "Asia/Shanghai",
        "UTC",
        ["2026-02-28T16:00:00Z", "2026-03-31T16:00:00Z"],
        "2026-05-02T00:00:00Z",
    );
}

#[test]
fn a_closed_month_keeps_its_instants_when_the_time_zone_changes_utc_to_shanghai() {
    // The bills of [Mar 31 16:00Z, Apr 1 00:00Z) were March's: April does not settle them again.
    the_time_zone_changes_between_two_closes(
        "UTC",
        "Asia/Shanghai",
        ["2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"],
        "2026-05-01T16:00:00Z",
    );
}
