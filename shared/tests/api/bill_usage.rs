//! docs/RULES.md R15.10 through the HTTP handlers: each line of a bill pages the exact records it
//! summed — pushed, platform bill data, running-time intervals, Prometheus samples — under the
//! bill's tenancy, and the pages' totals add up to the line.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use testkit::native::{ADMIN, TestApp};
use testkit::{Item, JsonServer, Market, at, prometheus_vector, str_of, usage};

/// Every page of one line's records: the records and the pages' totals.
fn pages(
    app: &TestApp,
    token: &str,
    bill: &str,
    item: &str,
    limit: usize,
) -> (Vec<Value>, Vec<Decimal>) {
    let (mut records, mut totals) = (Vec::new(), Vec::new());
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/bills/{bill}/usage?item={item}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get(&path, token).expect(200).json();
        records.extend(page["items"].as_array().unwrap().iter().cloned());
        totals.push(Decimal::from_str(&str_of(&page["page_total"])).unwrap());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (records, totals),
        }
    }
}

/// How many of the reported unit make one price unit of `code` (seconds in an hour for Period).
fn per_price_unit(code: &str) -> Decimal {
    if code == "Period" {
        Decimal::from(3600)
    } else {
        Decimal::ONE
    }
}

#[test]
fn the_usage_pages_of_every_line_add_up_to_the_line() {
    let app =
        TestApp::with_config(|name| (name == "allow_clock_override").then(|| "true".to_owned()));
    app.set_now(at("2026-03-27T08:00:00Z"));
    let prometheus = JsonServer::start(|_| prometheus_vector(0, Some("1234.5")));
    let fee = Item {
        code: "BillFee",
        tier_mode: "volume",
        tiers: json!([{"up_to": null, "unit_price": "1.1"}]),
        reporting: json!({"method": "compute_nest", "source": "bill"}),
    };
    let items = [
        Item::frequency(),
        Item::running_time("2.00"),
        Item::prometheus_requests(prometheus.origin(), "0.01"),
        fee,
    ];
    let (provider, product) = app.product_with_items("hour", &items, true);
    let (_, customer) = app.funded_customer("10000.00");
    let instance = app.order(&customer, &product);
    // Seven pushed records, a stop and a start (running 45 of 60 minutes), platform bill data.
    app.set_now(at("2026-03-27T08:42:00Z"));
    let pushed: Vec<Value> = (0..7)
        .map(|i| {
            let start = format!("2026-03-27T08:{:02}:00Z", i * 6);
            let end = format!("2026-03-27T08:{:02}:00Z", i * 6 + 6);
            usage(&start, &end, "Frequency", 100 + i)
        })
        .collect();
    app.push_usage(&provider, &instance, &pushed).expect(200);
    app.act(&customer, &instance, "stop");
    app.set_now(at("2026-03-27T08:57:00Z"));
    app.act(&customer, &instance, "start");
    let (_, platform) = app.principal("platform", None);
    app.set_now(at("2026-03-27T09:10:00Z"));
    app.post(
        "/api/v1/metering/platform-bills",
        &platform,
        json!({"instance_id": instance, "period_start": "2026-03-27T08:00:00Z",
               "amount": "12.34", "item_code": "BillFee"}),
    )
    .expect(200);
    app.bill_run("2026-03-27T10:00:00Z");
    let bill = app.bills(&customer, Some(&instance))[0].clone();
    let bill_id = str_of(&bill["id"]);

    let kinds = [
        ("Frequency", "pushed", 7),
        ("Period", "interval", 1),
        ("Requests", "sample", 1),
        ("BillFee", "platform_bill", 1),
    ];
    for (code, kind, count) in kinds {
        let line = bill["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["code"] == code)
            .unwrap_or_else(|| panic!("{code} in {bill}"));
        let quantity = Decimal::from_str(&str_of(&line["quantity"])).unwrap();
        assert!(quantity > Decimal::ZERO, "{code}: {line}");
        let (records, totals) = pages(&app, &customer, &bill_id, code, 2);
        assert_eq!(records.len(), count, "{code}");
        let summed: Decimal = records
            .iter()
            .map(|r| Decimal::from_str(&str_of(&r["value"])).unwrap())
            .sum();
        let paged: Decimal = totals.iter().sum();
        assert_eq!(
            paged, summed,
            "{code}: the pages' totals are their records'"
        );
        assert_eq!(
            (paged / per_price_unit(code)).round_dp(6),
            quantity,
            "{code}: the pages add up to the line"
        );
        let first = app
            .get(
                &format!("/api/v1/bills/{bill_id}/usage?item={code}"),
                &customer,
            )
            .expect(200)
            .json();
        assert_eq!(first["kind"], kind, "{code}");
        assert_eq!(first["line_quantity"], line["quantity"]);
    }
    // 45 minutes of running time: one interval record of 2,700 seconds.
    let (period, _) = pages(&app, &customer, &bill_id, "Period", 10);
    assert_eq!(period[0]["value"], "2700");
}

#[test]
fn a_lines_usage_is_its_bills_tenants_alone() {
    let app =
        TestApp::with_config(|name| (name == "allow_clock_override").then(|| "true".to_owned()));
    let (provider, product) = app.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = app.funded_customer("100.00");
    let instance = app.order(&customer, &product);
    app.set_now(at("2026-03-27T08:40:00Z"));
    app.push_usage(
        &provider,
        &instance,
        &[usage(
            "2026-03-27T08:00:00Z",
            "2026-03-27T08:30:00Z",
            "Frequency",
            3,
        )],
    )
    .expect(200);
    app.bill_run("2026-03-27T10:00:00Z");
    let bill = str_of(&app.bills(&customer, Some(&instance))[0]["id"]);
    let path = format!("/api/v1/bills/{bill}/usage?item=Frequency");
    for token in [&customer, &provider, ADMIN] {
        assert_eq!(
            app.get(&path, token).expect(200).json()["items"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
    let (_, stranger) = app.funded_customer("1.00");
    app.get(&path, &stranger).problem(404, "NotFound");
    let (_, other_provider) = app.provider();
    app.get(&path, &other_provider).problem(404, "NotFound");
    app.get(&format!("/api/v1/bills/{bill}/usage"), &customer)
        .problem(400, "InvalidQuery");
    app.get(
        &format!("/api/v1/bills/{bill}/usage?item=Storage"),
        &customer,
    )
    .problem(404, "NotFound");
    app.get(&format!("{path}&cursor=garbage"), &customer)
        .problem(400, "InvalidQuery");
}
