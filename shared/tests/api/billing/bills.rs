//! Bills as their readers page through them, and what a bill charges for the cloud resources
//! an instance ran.

use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, Market, at};

use super::{T0, world};

#[test]
fn bills_are_listed_oldest_period_first_by_page() {
    let w = world("hour", &[Item::frequency()]);
    w.run("2026-03-27T15:00:00Z");
    let path = format!("/api/v1/bills?instance_id={}&limit=3", w.instance);
    let mut starts = Vec::new();
    let mut next = w.app.get(&path, &w.customer).expect(200).json();
    loop {
        starts.extend(
            next["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["period_start"].as_str().unwrap().to_owned()),
        );
        let Some(cursor) = next["next_cursor"].as_str() else {
            break;
        };
        next = w
            .app
            .get(&format!("{path}&cursor={cursor}"), &w.customer)
            .expect(200)
            .json();
    }
    let expected: Vec<String> = (8..=13)
        .map(|h| format!("2026-03-27T{h:02}:00:00Z"))
        .collect();
    assert_eq!(starts, expected);
    // Written when the run happened, whatever its as_of.
    let bill = &w.bills()[0];
    assert_eq!(
        bill["created_at"],
        w.app
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
}

#[test]
fn another_tenants_bill_id_is_no_cursor() {
    let w = world("hour", &[Item::frequency()]);
    let product = w
        .app
        .get(&format!("/api/v1/instances/{}", w.instance), ADMIN)
        .expect(200)
        .json()["product_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, stranger) = w.app.customer("individual");
    w.app.order(&stranger, &product);
    w.run("2026-03-27T12:00:00Z");
    let own = w.app.get("/api/v1/bills", &stranger).expect(200).json();
    assert_eq!(
        own["items"].as_array().unwrap().len(),
        3,
        "the stranger has bills of its own"
    );
    // Another customer's bill id must not position the stranger's listing.
    let theirs = w.bills()[0]["id"].as_str().unwrap().to_owned();
    let page = w
        .app
        .get(&format!("/api/v1/bills?cursor={theirs}"), &stranger)
        .expect(200)
        .json();
    assert_eq!(page["items"], json!([]));
}

/// Every bill has two parts: the product's fees (its usage lines) and the cloud resources'
/// fees — one line per resource of the template the instance was ordered with, charged
/// `count × hourly_fee` for the seconds it ran in the period, stops excluded. One deduction
/// takes the total; a period without usage or running time costs 0.00 and deducts nothing; and
/// the fees are the template's at order time, whatever the service says later.
#[test]
fn a_bill_charges_the_resources_for_the_seconds_the_instance_ran() {
    let app =
        TestApp::with_config(|name| (name == "allow_clock_override").then(|| "true".to_owned()));
    app.set_now(at(T0));
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = app.funded_customer("100.00");
    app.set_now(at("2026-03-27T08:30:00Z"));
    let instance = app.order(&customer, &product);
    // The provider raises the template's fee afterwards: running instances are not repriced.
    app.reprice_templates("0.80", "9.99");
    app.set_now(at("2026-03-27T09:40:00Z"));
    app.push_usage(
        &provider,
        &instance,
        &[
            testkit::usage(
                "2026-03-27T08:30:00Z",
                "2026-03-27T09:00:00Z",
                "Frequency",
                4,
            ),
            testkit::usage(
                "2026-03-27T09:00:00Z",
                "2026-03-27T09:30:00Z",
                "Frequency",
                2,
            ),
        ],
    )
    .expect(200);
    app.set_now(at("2026-03-27T10:00:00Z"));
    app.act(&customer, &instance, "stop");
    // By 12:00 the hours 08:00 to 10:00 have closed.
    let report = app.bill_run("2026-03-27T12:00:00Z");
    assert_eq!(report["bills_written"], 3, "{report}");

    let bills = app.bills(&customer, Some(&instance));
    let hour = |start: &str| {
        bills
            .iter()
            .find(|b| b["period_start"] == start)
            .unwrap()
            .clone()
    };
    // 08:00: from the order at 08:30, 1,800 s of 2 × ecs at 0.80/h.
    let eight = hour("2026-03-27T08:00:00Z");
    assert_eq!(eight["lines"][0]["code"], "Frequency");
    assert_eq!(eight["product_fees"], "2.00");
    assert_eq!(
        eight["resource_lines"],
        json!([{"type": "ecs", "spec": "ecs.g7.large", "count": 2, "hourly_fee": "0.80",
                "running_seconds": 1800, "amount": "0.80"}])
    );
    assert_eq!(eight["resource_fees"], "0.80");
    assert_eq!(eight["total"], "2.80");
    // 09:00: the whole hour.
    let nine = hour("2026-03-27T09:00:00Z");
    assert_eq!(nine["product_fees"], "1.00");
    assert_eq!(nine["resource_fees"], "1.60");
    assert_eq!(nine["total"], "2.60");
    // 10:00: stopped all hour, no usage.
    let ten = hour("2026-03-27T10:00:00Z");
    assert_eq!(ten["resource_lines"][0]["running_seconds"], 0);
    assert_eq!(ten["total"], "0.00");

    // One deduction per bill that costs something, of its total.
    let deductions: Vec<(Value, Value)> = app
        .ledger(&customer)
        .into_iter()
        .filter(|e| e["kind"] == "bill")
        .map(|e| (e["reference"].clone(), e["amount"].clone()))
        .collect();
    assert_eq!(deductions.len(), 2, "{deductions:?}");
    for bill in [&eight, &nine] {
        let amount = format!("-{}", bill["total"].as_str().unwrap());
        assert!(
            deductions.contains(&(bill["id"].clone(), json!(amount))),
            "{deductions:?}"
        );
    }
    assert_eq!(app.balance(&customer), "94.60");
}

#[test]
fn an_instance_released_on_a_period_boundary_is_billed_through_the_period_before() {
    let w = world("hour", &[Item::running_time("1.00")]);
    w.app.set_now(at("2026-03-27T10:00:00Z"));
    w.app.act(&w.customer, &w.instance, "release");
    let report = w.run("2026-03-27T14:00:00Z");
    assert_eq!(report["bills_written"], 2, "{report}");
    let periods: Vec<Value> = w
        .bills()
        .iter()
        .map(|b| b["period_start"].clone())
        .collect();
    assert_eq!(
        periods,
        [json!("2026-03-27T08:00:00Z"), json!("2026-03-27T09:00:00Z")]
    );
    // Nothing is left to bill: the next run finds nothing due.
    assert_eq!(w.run("2026-03-28T14:00:00Z")["bills_written"], 0);
}
