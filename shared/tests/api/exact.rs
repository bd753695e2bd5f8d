//! docs/RULES.md R11.14 through the HTTP handlers: a quantity converted to its price unit stays
//! an exact fraction until the line's final truncation to cents, and no bill, preview or usage
//! read shows a quantity or an amount with more than 6 decimals.

use chrono::Duration;
use proptest::prelude::*;
use serde_json::{Value, json};
use testkit::native::TestApp;
use testkit::{Item, Market, at, str_of};

const T0: &str = "2026-03-27T08:00:00Z";

/// A deployment with the test clock, at T0, and a funded customer.
fn app() -> (TestApp, String) {
    let app =
        TestApp::with_config(|name| (name == "allow_clock_override").then(|| "true".to_owned()));
    app.set_now(at(T0));
    let (_, customer) = app.funded_customer("100000.00");
    (app, customer)
}

/// Every `quantity`, `amount` and `*_exact` of a JSON document, wherever they are.
fn shown_numbers(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if let (true, Some(s)) =
                    (k.contains("quantity") || k.contains("amount"), v.as_str())
                {
                    out.push((k.clone(), s.to_owned()));
                }
                shown_numbers(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| shown_numbers(i, out)),
        _ => {}
    }
}

#[track_caller]
fn assert_at_most_six_decimals(doc: &Value) {
    let mut numbers = Vec::new();
    shown_numbers(doc, &mut numbers);
    assert!(!numbers.is_empty(), "{doc}");
    for (field, text) in numbers {
        if field.ends_with("_exact") {
            assert!(text.contains('/'), "{field}: {text} is no fraction");
            continue;
        }
        let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(decimals <= 6, "{field}: {text} in {doc}");
    }
}

#[test]
fn twenty_minutes_of_running_time_at_three_an_hour_bill_one_yuan() {
    let (app, customer) = app();
    let (_, product) = app.product_with_items("hour", &[Item::running_time("3.00")], true);
    let instance = app.order(&customer, &product);
    app.set_now(at(T0) + Duration::minutes(20));
    app.act(&customer, &instance, "release");
    let preview = app.preview(&customer, &instance, T0).expect(200).json();
    assert_eq!(preview["lines"][0]["amount"], "1.00", "{preview}");
    app.bill_run("2026-03-27T10:00:00Z");
    let bill = &app.bills(&customer, Some(&instance))[0];
    let line = &bill["lines"][0];
    assert_eq!(
        (&line["quantity"], &line["quantity_exact"], &line["amount"]),
        (&json!("0.333333"), &json!("1/3"), &json!("1.00")),
        "{bill}"
    );
    assert_eq!(line["breakdown"][0]["amount"], "1", "{bill}");
    // The resources are charged for the same 1,200 seconds: 2 × 0.80/h × ⅓ h = 0.5333… → 0.53.
    assert_eq!(bill["resource_lines"][0]["running_seconds"], 1_200);
    assert_eq!(bill["resource_lines"][0]["amount"], "0.53");
    assert_eq!(bill["total"], "1.53");
    assert_at_most_six_decimals(bill);
    assert_at_most_six_decimals(&preview);
}

#[test]
fn no_bill_preview_or_usage_read_shows_more_than_six_decimals() {
    let (app, customer) = app();
    let storage = Item {
        code: "Storage",
        tier_mode: "graduated",
        tiers: json!([{"up_to": "1", "unit_price": "0.123"}, {"up_to": null, "unit_price": "0.00000007"}]),
        reporting: json!({"method": "service_provider"}),
    };
    let (provider, product) =
        app.product_with_items("hour", &[storage, Item::running_time("0.07")], true);
    let instance = app.order(&customer, &product);
    app.set_now(at(T0) + Duration::seconds(1_001));
    app.act(&customer, &instance, "stop");
    // 3 MiB and 1 byte: 3 + 1/1048576 MB, whose decimal has 20 places.
    app.set_now(at("2026-03-27T09:01:00Z"));
    let record = testkit::usage(T0, "2026-03-27T09:00:00Z", "Storage", 3 * 1_048_576 + 1);
    app.push_usage(&provider, &instance, &[record]).expect(200);
    let preview = app.preview(&customer, &instance, T0).expect(200).json();
    assert_at_most_six_decimals(&preview);
    let usage = app
        .get(
            &format!("/api/v1/metering/usage?instance_id={instance}"),
            &customer,
        )
        .expect(200)
        .json();
    assert_at_most_six_decimals(&usage);
    assert_eq!(
        usage["totals"][0]["quantity_exact"], "3145729/1048576",
        "{usage}"
    );
    app.bill_run("2026-03-27T10:00:00Z");
    let bill = &app.bills(&customer, Some(&instance))[0];
    assert_at_most_six_decimals(bill);
    // 1 MB at 0.123 and 2 MB + 1 B at 0.00000007: 0.123 + 0.00000014 + 7/104857600000000.
    let storage_line = &bill["lines"][0];
    assert_eq!(storage_line["amount"], "0.12", "{bill}");
    // The second tier's charge is 0.00000014…: 0 to 6 places, exact beside it.
    assert_eq!(storage_line["breakdown"][1]["amount"], "0", "{bill}");
    assert_eq!(
        storage_line["breakdown"][1]["amount_exact"], "14680071/104857600000000",
        "{bill}"
    );
    // 1,001 s at 0.07/h is 0.019463…: 0.01.
    assert_eq!(bill["lines"][1]["quantity_exact"], "1001/3600");
    assert_eq!(bill["lines"][1]["amount"], "0.01");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// However the instance stops and starts, its bill's running-time line and its resources
    /// are priced from the same seconds, each `⌊seconds × price / 3600⌋` in cents.
    #[test]
    fn the_usage_and_the_resources_of_a_bill_are_priced_from_the_same_running_seconds(
        price_units in 0i64..=100_000_000_000_000,
        offsets in prop::collection::vec(1i64..400, 1..6),
    ) {
        let (app, customer) = app();
        let price = rust_decimal::Decimal::new(price_units, 8).normalize().to_string();
        let (_, product) = app.product_with_items("hour", &[Item::running_time(&price)], true);
        let instance = app.order(&customer, &product);
        let mut now = at(T0);
        for (i, offset) in offsets.iter().enumerate() {
            now += Duration::seconds(*offset);
            app.set_now(now);
            app.act(&customer, &instance, if i % 2 == 0 { "stop" } else { "start" });
        }
        app.bill_run("2026-03-27T10:00:00Z");
        let bill = &app.bills(&customer, Some(&instance))[0];
        let seconds = bill["resource_lines"][0]["running_seconds"].as_i64().unwrap();
        let expected_seconds: i64 = offsets.iter().step_by(2).sum::<i64>()
            + if offsets.len() % 2 == 0 { 3_600 - offsets.iter().sum::<i64>() } else { 0 };
        prop_assert_eq!(seconds, expected_seconds);
        let cents = i128::from(seconds) * i128::from(price_units) / (36 * 100_000_000);
        let amount = rust_decimal::Decimal::from_i128_with_scale(cents, 2).to_string();
        prop_assert_eq!(str_of(&bill["lines"][0]["amount"]), amount);
        let line = &bill["lines"][0];
        match line["quantity_exact"].as_str() {
            Some(hours) => {
                let (num, den) = hours.split_once('/').unwrap();
                prop_assert_eq!(
                    i128::from(seconds) * den.parse::<i128>().unwrap(),
                    num.parse::<i128>().unwrap() * 3_600
                );
            }
            None => {
                let hours: rust_decimal::Decimal = str_of(&line["quantity"]).parse().unwrap();
                prop_assert_eq!(hours * rust_decimal::Decimal::from(3_600), seconds.into());
            }
        }
    }
}
